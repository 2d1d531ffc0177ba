//! The library's lifecycle: init builds a `Client` (config, slot map, what
//! the servers support), shutdown retires it, and every call runs against the
//! client of the current generation with its thread's own state (threads.rs
//! attaches and detaches it).
//!
//! Locks: `LIFECYCLE` serialises init and shutdown; `CURRENT` is held only for
//! a moment (never while waiting on a thread), so a thread attaching to a new
//! generation cannot deadlock with a shutdown that waits for that thread. The
//! hot path reads one atomic (`ACTIVE_GENERATION`) and locks only its own
//! thread's state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::client::Client;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::logging;
use crate::session::Calls;
use crate::stats;
use crate::threads;

static LIFECYCLE: Mutex<()> = Mutex::new(());
static CURRENT: Mutex<Option<Arc<Client>>> = Mutex::new(None);
/// The generation of the live client; 0 when not initialized.
static ACTIVE_GENERATION: AtomicU64 = AtomicU64::new(0);
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

pub fn init(config_text: &str) -> Result<()> {
    let _lifecycle = LIFECYCLE.lock();
    if ACTIVE_GENERATION.load(Ordering::SeqCst) != 0 {
        return Err(Error::new(
            ErrorKind::AlreadyInitialized,
            "ors_redis_init: already initialized (call ors_redis_shutdown first)",
        ));
    }
    let config = Config::parse(config_text)?;
    logging::install(config.log_level);
    let generation = NEXT_GENERATION.fetch_add(1, Ordering::SeqCst);
    let client = Client::connect(config, generation)?;
    tracing::info!(
        cluster_name = client.config.cluster_name.as_str(),
        "ors-redis {} initialized",
        env!("CARGO_PKG_VERSION")
    );
    stats::reset_calls();
    *CURRENT.lock() = Some(Arc::new(client));
    ACTIVE_GENERATION.store(generation, Ordering::SeqCst);
    Ok(())
}

pub fn shutdown() -> Result<()> {
    let _lifecycle = LIFECYCLE.lock();
    {
        let mut current = CURRENT.lock();
        if ACTIVE_GENERATION.load(Ordering::SeqCst) == 0 {
            return Err(not_initialized());
        }
        ACTIVE_GENERATION.store(0, Ordering::SeqCst);
        current.take();
    }
    // Bulk-read workers see generation 0 within a slice of their wait and
    // close their sockets as they exit.
    bulk_workers_gone();
    // Each lock waits for the call in flight on that thread; then its
    // sockets close. Calls that start from now on see generation 0.
    let mut closed = 0;
    threads::for_each_thread(|state| {
        closed += state.calls.routes.conns.open_count();
        state.reset();
    });
    tracing::info!(connections_closed = closed, "ors-redis shut down");
    Ok(())
}

fn not_initialized() -> Error {
    Error::new(
        ErrorKind::NotInitialized,
        "ors-redis is not initialized (call ors_redis_init first)",
    )
}

/// Runs `f` with the live client and this thread's state for calls.
pub fn with_client<T>(f: impl FnOnce(&Client, &mut Calls) -> Result<T>) -> Result<T> {
    threads::with_thread(|state| {
        let generation = ACTIVE_GENERATION.load(Ordering::SeqCst);
        if generation == 0 {
            if state.generation != 0 {
                state.reset();
            }
            return Err(not_initialized());
        }
        if state.generation != generation {
            // First call on this thread since init: attach to the client.
            let client = CURRENT.lock().clone();
            match client {
                Some(c) if c.generation == generation => state.attach(c),
                _ => {
                    state.reset();
                    return Err(not_initialized());
                }
            }
        }
        let client = state.client.as_deref().ok_or_else(not_initialized)?;
        f(client, &mut state.calls)
    })
    .unwrap_or_else(|| {
        Err(Error::new(
            ErrorKind::NotInitialized,
            "this thread is exiting; its connections are closed",
        ))
    })
}

/// The live client, for work that outlives one lock of this thread's
/// state: a bulk read's workers, and its caller between callbacks.
pub fn live_client() -> Result<Arc<Client>> {
    let generation = ACTIVE_GENERATION.load(Ordering::SeqCst);
    match &*CURRENT.lock() {
        Some(c) if generation != 0 && c.generation == generation => Ok(c.clone()),
        _ => Err(not_initialized()),
    }
}

/// Bulk-read worker threads running now (their sockets are not in any
/// thread's state: shutdown waits for them to exit instead).
static BULK_WORKERS: Mutex<usize> = Mutex::new(0);
static BULK_WORKER_EXITED: Condvar = Condvar::new();

/// Held by a bulk-read worker thread while it may hold sockets.
pub struct BulkWorker(());

impl BulkWorker {
    pub fn enter() -> BulkWorker {
        *BULK_WORKERS.lock() += 1;
        BulkWorker(())
    }
}

impl Drop for BulkWorker {
    fn drop(&mut self) {
        let mut running = BULK_WORKERS.lock();
        *running -= 1;
        if *running == 0 {
            BULK_WORKER_EXITED.notify_all();
        }
    }
}

/// Waits until no bulk-read worker runs: each checks the generation
/// between slices of every wait, so this takes a slice, or a connect
/// attempt at most.
fn bulk_workers_gone() {
    let mut running = BULK_WORKERS.lock();
    while *running > 0 {
        BULK_WORKER_EXITED.wait(&mut running);
    }
}

/// Whether the client of `generation` is still the live one (a scan checks
/// this after each callback, which may have shut the library down).
pub fn is_live(generation: u64) -> bool {
    ACTIVE_GENERATION.load(Ordering::SeqCst) == generation
}

/// The live client's slot-map reload count (for the stats).
pub fn topology_refreshes() -> Result<u64> {
    match &*CURRENT.lock() {
        Some(c) if ACTIVE_GENERATION.load(Ordering::SeqCst) == c.generation => {
            Ok(c.topology.refresh_count())
        }
        _ => Err(not_initialized()),
    }
}

/// After a caught panic: close this thread's connections, which may be in
/// the middle of a reply.
pub fn reset_this_thread() {
    threads::with_thread(|state| state.reset());
}
