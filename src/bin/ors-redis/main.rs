//! `ors-redis`: the operator command (built with the `cli` feature). It takes
//! the same config as the library (`--config`, `--config-file` or
//! `ORS_REDIS_CONFIG`) and runs `doctor`, `capacity` or `sessions ...`
//! against the live cluster. `admin` is its one-thread view of the cluster
//! (on `ors_redis::operator`, the library's small surface for it); the
//! other modules turn the findings into tables or one JSON envelope.

mod admin;
mod capacity;
mod cli;
mod doctor;
mod output;
mod progress;
mod sessions;
mod settings;
mod stream;
mod text;
mod transfer;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use ors_redis::operator::{install_logging, Config, Error, ErrorKind, LogLevel};

use crate::cli::{Cli, Command, Global, SessionsCommand};

/// Exit statuses: 0 success, 1 a failed check or operation, 2 usage/config.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// What every command gets.
pub struct Ctx {
    pub config: Config,
    pub json: bool,
    pub quiet: bool,
}

impl Ctx {
    /// A note for the operator on stderr (not with --quiet).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            output::note(text);
        }
    }
}

fn main() {
    let code = run();
    output::flush();
    std::process::exit(code);
}

fn run() -> i32 {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        // --help and --version print and exit 0; usage errors exit 2.
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let text = e.render().to_string();
            if e.use_stderr() {
                output::note_raw(&text);
            } else {
                output::print(&text);
            }
            return code;
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    // --config-file wins over ORS_REDIS_CONFIG; --config with it is a mistake.
    let config_from_env = matches.value_source("config") == Some(ValueSource::EnvVariable);
    let command = match cli.command {
        Command::Completions { shell } => {
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ors-redis", &mut buffer);
            output::write_bytes(&buffer);
            return EXIT_OK;
        }
        command => command,
    };
    let config = match load_config(&cli.global, config_from_env) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    // The library's log lines (and the command's own) go to stderr, at the
    // config's log-level, or as -v asks.
    install_logging(match cli.global.verbose {
        0 => config.log_level,
        1 => LogLevel::Info,
        2 => LogLevel::Debug,
        _ => LogLevel::Trace,
    });
    let ctx = Ctx {
        config,
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    match command {
        Command::Doctor => doctor::run(&ctx),
        Command::Capacity(args) => capacity::run(&ctx, &args),
        Command::Sessions(sub) => sessions::run(&ctx, &sub),
        Command::Completions { .. } => EXIT_OK,
    }
}

fn load_config(global: &Global, config_from_env: bool) -> Result<Config, String> {
    let config = match (&global.config, &global.config_file) {
        (Some(_), Some(_)) if !config_from_env => {
            return Err("give --config or --config-file, not both".to_string())
        }
        (_, Some(file)) => settings::from_file(file)?,
        (Some(text), None) => text.clone(),
        (None, None) => {
            return Err(format!(
                "no config: give --config 'redis-nodes=... cluster-name=...', \
                 --config-file FILE, or set {}",
                settings::ENV_VAR
            ))
        }
    };
    Config::parse(&config).map_err(|e| e.message)
}

pub fn usage_error(message: &str) -> i32 {
    output::note(&format!("{message} (see ors-redis --help)"));
    EXIT_USAGE
}

/// The status of an error that ends a command: a config or argument
/// problem is 2, the cluster saying no or not answering is 1.
pub fn exit_code(error: &Error) -> i32 {
    if matches!(error.kind, ErrorKind::Config | ErrorKind::InvalidArgument) {
        EXIT_USAGE
    } else {
        EXIT_FAIL
    }
}

/// Prints an error that ends a command (as the JSON envelope with --json)
/// and returns its exit status.
pub fn failure(ctx: &Ctx, command: &str, error: &Error) -> i32 {
    if ctx.json {
        output::json_error(command, error);
    }
    output::note(&error.message);
    exit_code(error)
}

/// `sessions list` etc. for the envelope's `command`.
pub fn sessions_name(sub: &SessionsCommand) -> &'static str {
    match sub {
        SessionsCommand::List { .. } => "sessions_list",
        SessionsCommand::Count { .. } => "sessions_count",
        SessionsCommand::Get { .. } => "sessions_get",
        SessionsCommand::Del { .. } => "sessions_del",
        SessionsCommand::Purge { .. } => "sessions_purge",
        SessionsCommand::Export { .. } => "sessions_export",
        SessionsCommand::Import { .. } => "sessions_import",
    }
}
