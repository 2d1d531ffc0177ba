//! What every command gets and how it ends: the context (config and output
//! flags), the exit statuses, and the one way a usage problem or a failure
//! is reported.

use ors_redis::operator::{Config, Error, ErrorKind};

use crate::output;
use crate::settings::FileConfig;

/// Exit statuses: 0 success, 1 a failed check or operation, 2 usage/config.
pub(crate) const EXIT_OK: i32 = 0;
pub(crate) const EXIT_FAIL: i32 = 1;
pub(crate) const EXIT_USAGE: i32 = 2;

/// What every command gets.
pub(crate) struct Ctx {
    pub config: Config,
    /// What `--config-file` held beyond the config (for doctor's checks of
    /// ORS's options); `None` without a file.
    pub file: Option<FileConfig>,
    pub json: bool,
    pub quiet: bool,
}

impl Ctx {
    /// A note for the operator on stderr (not with --quiet).
    pub(crate) fn note(&self, text: &str) {
        if !self.quiet {
            output::note(text);
        }
    }
}

/// Reports a usage problem on stderr and returns its exit status.
pub(crate) fn usage_error(message: &str) -> i32 {
    output::note(&format!("{message} (see ors-redis --help)"));
    EXIT_USAGE
}

/// The status of an error that ends a command: a config or argument
/// problem is 2, the cluster saying no or not answering is 1.
pub(crate) fn exit_code(error: &Error) -> i32 {
    if matches!(error.kind, ErrorKind::Config | ErrorKind::InvalidArgument) {
        EXIT_USAGE
    } else {
        EXIT_FAIL
    }
}

/// Prints an error that ends a command (as the JSON envelope with --json)
/// and returns its exit status.
pub(crate) fn failure(ctx: &Ctx, command: &str, error: &Error) -> i32 {
    if ctx.json {
        output::json_error(command, error);
    }
    output::note(&error.message);
    exit_code(error)
}
