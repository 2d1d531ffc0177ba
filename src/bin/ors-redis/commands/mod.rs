//! The commands, one module each: `doctor`, `capacity`, `dictionary` and `sessions`
//! (whose subcommands share the session layout and the stream).

pub(crate) mod capacity;
pub(crate) mod dictionary;
pub(crate) mod doctor;
pub(crate) mod sessions;
