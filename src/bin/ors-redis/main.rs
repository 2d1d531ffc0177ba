//! `ors-redis`: the operator command. It takes the same config as the
//! library (`--config`, `--config-file` or `ORS_REDIS_CONFIG`) and runs one
//! of `doctor`, `capacity` or `sessions ...` against the live cluster. The
//! cluster work is in the library (`ors_redis::admin`); this binary parses
//! the command line and prints tables or JSON.

mod args;
mod capacity;
mod doctor;
mod help;
mod output;
mod sessions;
mod settings;
mod term;

use std::io::Write;

use ors_redis::config::Config;
use ors_redis::logging;

use crate::args::Parsed;

/// Exit statuses: 0 success, 1 a failed check or operation, 2 usage/config.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// What every command gets.
pub struct Ctx {
    pub config: Config,
    pub json: bool,
    pub quiet: bool,
    pub args: Parsed,
}

impl Ctx {
    /// A note for the operator on stderr (not with --quiet).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("ors-redis: {text}");
        }
    }
}

fn main() {
    let code = run(std::env::args_os().skip(1).collect());
    // Output may be a closed pipe (`| head`): nothing more to say then.
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn run(raw: Vec<std::ffi::OsString>) -> i32 {
    let args = match args::parse(raw) {
        Ok(a) => a,
        Err(e) => return usage_error(&e, "ors-redis --help"),
    };
    if args.flag("version") {
        println!("ors-redis {}", env!("CARGO_PKG_VERSION"));
        return EXIT_OK;
    }
    let command = args.word(0);
    let sub = args.word(1);
    if command.as_deref() == Some("help") {
        return match help_text(args.word(1).as_deref(), args.word(2).as_deref()) {
            Some(text) => print_help(text),
            None => usage_error("no such command", "ors-redis --help"),
        };
    }
    let Some(command) = command else {
        if args.flag("help") {
            return print_help(help::TOP);
        }
        eprint!("{}", help::TOP);
        return EXIT_USAGE;
    };
    let Some(text) = help_text(Some(&command), sub.as_deref()) else {
        return match (command.as_str(), sub) {
            ("sessions", Some(sub)) => usage_error(
                &format!("unknown sessions subcommand '{sub}'"),
                "ors-redis sessions --help",
            ),
            _ => usage_error(&format!("unknown command '{command}'"), "ors-redis --help"),
        };
    };
    if args.flag("help") {
        return print_help(text);
    }
    let allowed: &[&str] = match (command.as_str(), sub.as_deref()) {
        ("doctor", _) => &[],
        ("capacity", _) => &["ors-pairs", "sessions", "avg-bytes", "sample", "ors-memory"],
        ("sessions", Some("list" | "count")) => &["prefix"],
        ("sessions", Some("get")) => &["raw", "escaped"],
        ("sessions", Some("purge")) => &["yes"],
        _ => &[],
    };
    let name = match (command.as_str(), sub.as_deref()) {
        ("sessions", Some(sub)) => format!("sessions {sub}"),
        _ => command.clone(),
    };
    let see = format!("ors-redis {name} --help");
    if command == "sessions" && sub.is_none() {
        return usage_error(
            "sessions needs a subcommand: list, count, get, del or purge",
            &see,
        );
    }
    if let Err(e) = args.only(&name, allowed) {
        return usage_error(&e, &see);
    }
    if args.flag("raw") && args.flag("escaped") {
        return usage_error("--raw and --escaped exclude each other", &see);
    }
    let want_words = match (command.as_str(), sub.as_deref()) {
        ("sessions", Some("get" | "del")) => 3,
        ("sessions", _) => 2,
        _ => 1,
    };
    if args.words.len() > want_words {
        return usage_error(
            &format!(
                "unexpected argument '{}'",
                term::escape(&args.words[want_words])
            ),
            &see,
        );
    }
    if args.words.len() < want_words {
        return usage_error(&format!("{name} needs a session id"), &see);
    }
    let capacity_plan = match command.as_str() {
        "capacity" => match capacity::options(&args) {
            Ok(plan) => Some(plan),
            Err(e) => return usage_error(&e, &see),
        },
        _ => None,
    };
    let config = match settings::load(args.value("config"), args.value("config-file")) {
        Ok(c) => c,
        Err(e) => return usage_error(&e, &see),
    };
    // The library's own warnings (at the config's log-level) go to stderr.
    logging::install(config.log_level);
    let ctx = Ctx {
        config,
        json: args.flag("json"),
        quiet: args.flag("quiet"),
        args,
    };
    match (command.as_str(), sub.as_deref()) {
        ("doctor", _) => doctor::run(&ctx),
        ("capacity", _) => match capacity_plan {
            Some((plan, sample)) => capacity::run(&ctx, plan, sample),
            None => usage_error("capacity: no plan", &see),
        },
        ("sessions", Some(sub)) => sessions::run(&ctx, sub),
        _ => usage_error(&format!("unknown command '{name}'"), "ors-redis --help"),
    }
}

/// The help of `command [sub]`; `None` for an unknown one.
fn help_text(command: Option<&str>, sub: Option<&str>) -> Option<&'static str> {
    Some(match (command, sub) {
        (None, _) => help::TOP,
        (Some("doctor"), _) => help::DOCTOR,
        (Some("capacity"), _) => help::CAPACITY,
        (Some("sessions"), None) => help::SESSIONS,
        (Some("sessions"), Some("list")) => help::SESSIONS_LIST,
        (Some("sessions"), Some("count")) => help::SESSIONS_COUNT,
        (Some("sessions"), Some("get")) => help::SESSIONS_GET,
        (Some("sessions"), Some("del")) => help::SESSIONS_DEL,
        (Some("sessions"), Some("purge")) => help::SESSIONS_PURGE,
        _ => return None,
    })
}

fn print_help(text: &str) -> i32 {
    print!("{text}");
    EXIT_OK
}

pub fn usage_error(message: &str, see: &str) -> i32 {
    eprintln!("ors-redis: {message} (see {see})");
    EXIT_USAGE
}

/// Prints an error: a config or argument problem (status 2), or the
/// cluster said no or could not be reached (status 1).
pub fn failure(error: &ors_redis::error::Error) -> i32 {
    eprintln!("ors-redis: {}", error.message);
    if matches!(
        error.kind,
        ors_redis::error::ErrorKind::Config | ors_redis::error::ErrorKind::InvalidArgument
    ) {
        EXIT_USAGE
    } else {
        EXIT_FAIL
    }
}
