//! The live client, as every thread and worker finds it: the `Client` that
//! the last init or reconfigure published, its numbers (one atomic load on
//! the hot path), and the worker threads that hold sockets outside any
//! calling thread's state (a bulk read's readers, a node's prober), which
//! shutdown waits for. lifecycle.rs publishes and retires; everything else
//! only reads, so that a worker can ask "is my init still live?" without
//! depending on the lifecycle above it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::fork;

static CURRENT: Mutex<Option<Arc<Client>>> = Mutex::new(None);
/// The generation of the live client; 0 when not initialized.
static ACTIVE_GENERATION: AtomicU64 = AtomicU64::new(0);
/// The settings number of the live client (see `Client::settings`); 0 when
/// not initialized. Stored after `CURRENT`: a thread that sees a number
/// finds that client, or a newer one, in `CURRENT`.
static ACTIVE_SETTINGS: AtomicU64 = AtomicU64::new(0);

/// Worker threads running now that may hold sockets.
static WORKERS: Mutex<Running> = Mutex::new(Running {
    fork_generation: 0,
    count: 0,
});
static WORKER_EXITED: Condvar = Condvar::new();

pub(crate) fn not_initialized() -> Error {
    Error::new(
        ErrorKind::NotInitialized,
        "ors-redis is not initialized (call ors_redis_init first)",
    )
}

/// Makes `client` the live one (init, and each reconfigure).
pub(crate) fn publish(client: Arc<Client>) {
    let (generation, settings) = (client.generation, client.settings);
    *CURRENT.lock() = Some(client);
    ACTIVE_GENERATION.store(generation, Ordering::SeqCst);
    ACTIVE_SETTINGS.store(settings, Ordering::SeqCst);
}

/// Retires the live client (shutdown): whether there was one.
pub(crate) fn retire() -> bool {
    let mut current = CURRENT.lock();
    if ACTIVE_GENERATION.load(Ordering::SeqCst) == 0 {
        return false;
    }
    ACTIVE_GENERATION.store(0, Ordering::SeqCst);
    ACTIVE_SETTINGS.store(0, Ordering::SeqCst);
    current.take();
    true
}

/// The live client's generation; 0 when not initialized.
pub(crate) fn generation() -> u64 {
    ACTIVE_GENERATION.load(Ordering::SeqCst)
}

/// The live client's settings number; 0 when not initialized (the hot
/// path's one atomic load).
#[inline]
pub(crate) fn settings() -> u64 {
    ACTIVE_SETTINGS.load(Ordering::SeqCst)
}

/// The client published last (a thread adopting new settings).
pub(crate) fn current() -> Option<Arc<Client>> {
    CURRENT.lock().clone()
}

/// The live client, for work that outlives one lock of a thread's state:
/// a bulk read's workers and its caller between callbacks, a prober.
pub(crate) fn live_client() -> Result<Arc<Client>> {
    let generation = generation();
    match &*CURRENT.lock() {
        Some(c) if generation != 0 && c.generation == generation => Ok(c.clone()),
        _ => Err(not_initialized()),
    }
}

/// Whether the client of `generation` is still the live one (a scan checks
/// this after each callback, which may have shut the library down).
pub(crate) fn is_live(generation: u64) -> bool {
    ACTIVE_GENERATION.load(Ordering::SeqCst) == generation
}

/// The live client when it has other settings than `client` but belongs to
/// the same init (a bulk read's worker takes it between batches).
pub(crate) fn newer_settings(client: &Client) -> Option<Arc<Client>> {
    if ACTIVE_SETTINGS.load(Ordering::Relaxed) == client.settings {
        return None;
    }
    CURRENT
        .lock()
        .clone()
        .filter(|c| c.generation == client.generation && c.settings != client.settings)
}

/// The worker threads of one process. Counted per fork generation: a
/// forked child has none of its parent's threads (a prober, a dictionary's
/// keeper), so its shutdown must not wait for them.
#[derive(Debug)]
struct Running {
    fork_generation: u64,
    count: usize,
}

impl Running {
    /// The count of the process of fork generation `now`.
    fn of(&mut self, now: u64) -> &mut usize {
        if self.fork_generation != now {
            self.fork_generation = now;
            self.count = 0;
        }
        &mut self.count
    }
}

/// Held by a worker thread while it may hold sockets.
pub(crate) struct Worker(());

impl Worker {
    pub(crate) fn enter() -> Worker {
        *WORKERS.lock().of(fork::generation()) += 1;
        Worker(())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut running = WORKERS.lock();
        let count = running.of(fork::generation());
        *count = count.saturating_sub(1);
        if *count == 0 {
            WORKER_EXITED.notify_all();
        }
    }
}

/// Waits until no worker of this process runs: each checks the generation
/// between slices of every wait, so this takes a slice, or a connect
/// attempt at most.
pub(crate) fn workers_gone() {
    let mut running = WORKERS.lock();
    while *running.of(fork::generation()) > 0 {
        WORKER_EXITED.wait(&mut running);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_counts_none_of_its_parents_workers() {
        let mut running = Running {
            fork_generation: 0,
            count: 0,
        };
        *running.of(0) += 2;
        assert_eq!(*running.of(0), 2);
        assert_eq!(*running.of(1), 0, "the child of a fork");
        *running.of(1) += 1;
        assert_eq!(*running.of(1), 1);
    }
}
