//! The commands, one module each: `doctor`, `capacity` and `sessions`
//! (whose subcommands share the session layout and the stream).

pub mod capacity;
pub mod doctor;
pub mod sessions;
