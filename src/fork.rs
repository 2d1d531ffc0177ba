//! The fork generation: how many forks separate this process from the one
//! that loaded the library. Sockets and thread states of an older generation
//! are the parent's (see threads.rs, which bumps it in the child, and
//! connection.rs, which never resets a parent's connection).

use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped in the child of every fork.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// This process's fork generation (one atomic load: cheap enough for every
/// call).
pub(crate) fn generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Called in the child of a fork (async-signal-safe: one atomic add). Only
/// Unix forks: elsewhere the generation stays 0.
#[cfg(unix)]
pub(crate) fn forked() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}
