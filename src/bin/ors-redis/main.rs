//! `ors-redis`: the operator command (built with the `cli` feature). It takes
//! the same config as the library (`--config`, `--config-file` or
//! `ORS_REDIS_CONFIG`) and runs `doctor`, `capacity` or `sessions ...`
//! against the live cluster.
//!
//! Layout: `cli` (the arguments), `ctx` (what every command gets, exit
//! statuses, failures), `commands/` (one module per command, its checks and
//! its output together), `cluster` (a thread's handle on the library's node
//! layer, `ors_redis::operator`), and the shared pieces: `output` (tables,
//! the JSON envelope), `progress`, `settings` (where the config comes
//! from), `stream` (the session stream) and `text`.

mod cli;
mod cluster;
mod commands;
mod ctx;
mod output;
mod progress;
mod settings;
mod stream;
mod text;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use ors_redis::operator::{install_logging, Config, LogLevel};

use crate::cli::{Cli, Command, Global};
use crate::commands::{capacity, dictionary, doctor, sessions};
use crate::ctx::{usage_error, Ctx, EXIT_OK, EXIT_USAGE};
use crate::settings::FileConfig;

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
    let (config, file) = match load_config(&cli.global, config_from_env) {
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
        file,
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    match command {
        Command::Doctor => doctor::run(&ctx),
        Command::Capacity(args) => capacity::run(&ctx, &args),
        Command::Sessions(sub) => sessions::run(&ctx, &sub),
        Command::Dictionary(sub) => dictionary::run(&ctx, &sub),
        Command::Completions { .. } => EXIT_OK,
    }
}

/// The config, and what the `--config-file` held beyond it.
fn load_config(
    global: &Global,
    config_from_env: bool,
) -> Result<(Config, Option<FileConfig>), String> {
    let mut from_file = None;
    let config = match (&global.config, &global.config_file) {
        (Some(_), Some(_)) if !config_from_env => {
            return Err("give --config or --config-file, not both".to_string())
        }
        (_, Some(file)) => from_file
            .insert(settings::from_file(file)?)
            .conninfo
            .clone(),
        (Some(text), None) => text.clone(),
        (None, None) => {
            return Err(format!(
                "no config: give --config 'redis-nodes=... cluster-name=...', \
                 --config-file FILE, or set {}",
                settings::ENV_VAR
            ))
        }
    };
    let config = Config::parse(&config).map_err(|e| e.message)?;
    Ok((config, from_file))
}
