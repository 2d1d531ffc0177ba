//! Per-thread state (the client a thread is attached to and what its calls
//! keep), attaching and detaching, and the registry that lets shutdown
//! reach every thread.
//!
//! Each native thread that calls the library gets, on its first call, a
//! `ThreadState` behind a mutex of its own: the calling thread is the only one
//! that locks it on the hot path, so it is never contended there. Shutdown
//! locks each one in turn, which waits for the call in flight on that thread
//! and then closes its sockets. A thread's sockets close when it exits, from
//! its thread-local destructor.
//!
//! fork: the child of a process that used the library inherits its sockets
//! and its thread states, some perhaps locked by threads that do not exist
//! in the child. A `pthread_atfork` child handler bumps the fork generation;
//! in the child, a thread's first call leaves its inherited state behind
//! (its descriptors are closed plainly, never shut down or reset, so the
//! parent's connections are untouched) and starts on fresh connections, and
//! shutdown skips the states of the parent's other threads instead of
//! waiting for their locks.

use std::cell::RefCell;
use std::sync::{Arc, PoisonError, Weak};

use parking_lot::Mutex;

use crate::client::Client;
use crate::session::Calls;

/// What a thread holds: the library generation it is attached to, the client
/// of that generation (and the settings number of that client), and what
/// its calls keep (connections, slot map, buffers).
#[derive(Default)]
pub(crate) struct ThreadState {
    pub generation: u64,
    /// `Client::settings` of `client`; 0 when detached.
    pub settings: u64,
    pub client: Option<Arc<Client>>,
    pub calls: Calls,
}

impl ThreadState {
    /// Takes `client`, the live one: attaches to it when it belongs to
    /// another init than this thread's, or keeps the thread's connections
    /// and slot map when only its settings are new (each connection is kept,
    /// logged in again on its next use, or closed, as the change needs).
    pub(crate) fn adopt(&mut self, client: Arc<Client>) {
        match &self.client {
            Some(old) if old.generation == client.generation => {
                self.calls.routes.conns.renew(&old.params, &client.params);
                self.settings = client.settings;
                self.client = Some(client);
            }
            _ => self.attach(client),
        }
    }

    /// Attaches this thread to `client` (its first call since an init).
    fn attach(&mut self, client: Arc<Client>) {
        self.reset();
        self.generation = client.generation;
        self.settings = client.settings;
        self.client = Some(client);
        crate::stats::thread_attached();
    }

    /// Detaches from the client and closes every socket.
    pub(crate) fn reset(&mut self) {
        if self.generation != 0 {
            crate::stats::thread_detached();
        }
        self.generation = 0;
        self.settings = 0;
        self.client = None;
        self.calls.clear();
    }
}

use crate::fork::generation as fork_generation;

struct ThreadSlot {
    state: Mutex<ThreadState>,
    /// The fork generation the slot was made in.
    fork_generation: u64,
}

/// Lives in thread-local storage; dropping it (thread exit) closes the
/// thread's sockets.
struct Registration(Arc<ThreadSlot>);

impl Registration {
    fn new() -> Self {
        watch_forks();
        let slot = Arc::new(ThreadSlot {
            state: Mutex::new(ThreadState::default()),
            fork_generation: fork_generation(),
        });
        registry().add(Arc::downgrade(&slot));
        Registration(slot)
    }

    fn inherited(&self) -> bool {
        self.0.fork_generation != fork_generation()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Lines logged while the state is locked reach the host's logger
        // after the lock is released (it may call the library).
        let call = crate::logging::enter_call();
        if !self.inherited() {
            self.0.state.lock().reset();
        } else if let Some(mut state) = self.0.state.try_lock() {
            // Made before a fork: closing our copies of the descriptors
            // leaves the parent's connections as they are (connection.rs).
            state.reset();
        } else {
            // Locked by a thread of the parent, which does not exist here:
            // its state may be half-changed, so it is never touched.
            std::mem::forget(self.0.clone());
        }
        drop(call);
        crate::logging::deliver_pending();
    }
}

/// Weak references to every thread's slot; dead ones are pruned as it grows.
struct Registry {
    slots: Vec<Weak<ThreadSlot>>,
    prune_at: usize,
}

impl Registry {
    fn add(&mut self, slot: Weak<ThreadSlot>) {
        if self.slots.len() >= self.prune_at {
            self.slots.retain(|w| w.strong_count() > 0);
            // Amortised: prune again when the live set has doubled.
            self.prune_at = (self.slots.len() * 2).max(64);
        }
        self.slots.push(slot);
    }
}

/// A std mutex (a futex): held across fork by the atfork handlers below,
/// then released in the child by a plain store, whoever waited for it.
static REGISTRY: std::sync::Mutex<Registry> = std::sync::Mutex::new(Registry {
    slots: Vec::new(),
    prune_at: 64,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    static THREAD: RefCell<Registration> = RefCell::new(Registration::new());
}

/// In a forked child, replaces this thread's inherited registration (left
/// behind as `Registration::drop` says) by a fresh one.
fn renew_after_fork(cell: &RefCell<Registration>) {
    if !cell.borrow().inherited() {
        return;
    }
    // Borrowed already only when a fork happened inside one of our
    // callbacks on this thread: then the renewal waits for the next call.
    if let Ok(mut reg) = cell.try_borrow_mut() {
        let inherited = std::mem::replace(&mut *reg, Registration::new());
        drop(reg);
        drop(inherited);
    }
}

/// Runs `f` on this thread's state, holding its lock. `None` when the thread
/// is already tearing down its thread-locals.
pub(crate) fn with_thread<R>(f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
    THREAD
        .try_with(|cell| {
            renew_after_fork(cell);
            let reg = cell.borrow();
            let mut state = reg.0.state.lock();
            f(&mut state)
        })
        .ok()
}

/// Runs `f` on every live thread's state, one at a time; each lock waits for
/// the call in flight on that thread. Used by shutdown. In a forked child,
/// the states of the parent's other threads are skipped: those threads do
/// not exist here, and one may have held its lock at the fork.
pub(crate) fn for_each_thread(mut f: impl FnMut(&mut ThreadState)) {
    let _ = THREAD.try_with(renew_after_fork);
    let generation = fork_generation();
    let slots: Vec<Arc<ThreadSlot>> = registry()
        .slots
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|slot| slot.fork_generation == generation)
        .collect();
    for slot in slots {
        f(&mut slot.state.lock());
    }
}

/// Registers the fork handlers, once per process.
fn watch_forks() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: the handlers are `extern "C"` functions that live as
            // long as the process; they take one lock and touch one atomic.
            let rc = unsafe {
                libc::pthread_atfork(
                    Some(fork_handlers::prepare),
                    Some(fork_handlers::parent),
                    Some(fork_handlers::child),
                )
            };
            if rc != 0 {
                tracing::warn!(
                    code = rc,
                    "pthread_atfork failed: a forked child must not call the library"
                );
            }
        });
    }
}

/// The registry is locked across fork (prepare) and released on both sides,
/// so the child never inherits it held by a thread it does not have.
#[cfg(unix)]
mod fork_handlers {
    use std::cell::RefCell;
    use std::sync::MutexGuard;

    use super::{registry, Registry};

    thread_local! {
        static HELD: RefCell<Option<MutexGuard<'static, Registry>>> = const { RefCell::new(None) };
    }

    pub(super) extern "C" fn prepare() {
        let guard = registry();
        let _ = HELD.try_with(|held| *held.borrow_mut() = Some(guard));
    }

    pub(super) extern "C" fn parent() {
        let _ = HELD.try_with(|held| held.borrow_mut().take());
    }

    pub(super) extern "C" fn child() {
        crate::fork::forked();
        let _ = HELD.try_with(|held| held.borrow_mut().take());
    }
}
