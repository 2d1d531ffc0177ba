//! The commands, one module each: `doctor`, `capacity` and `sessions`
//! (whose subcommands share the session layout and the stream).

pub(crate) mod capacity;
pub(crate) mod doctor;
pub(crate) mod sessions;
