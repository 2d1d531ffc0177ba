//! Per-thread connection sets, and the registry that lets shutdown reach them.
//!
//! Each native thread that calls the library gets, on its first call, a
//! `ThreadState` behind a mutex of its own: the calling thread is the only one
//! that locks it on the hot path, so it is never contended there. Shutdown
//! locks each one in turn, which waits for the call in flight on that thread
//! and then closes its sockets. A thread's sockets close when it exits, from
//! its thread-local destructor.

use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use crate::client::Client;
use crate::config::NodeAddr;
use crate::connection::{ConnectParams, NodeConnection};
use crate::error::{Error, Result};
use crate::topology::{SlotMap, Topology};

/// Opens a connection to a node in memory (unit tests).
#[cfg(test)]
pub type Dial = dyn FnMut(&str) -> Result<NodeConnection> + Send;

/// One thread's connections (one per node it talks to), the slot map it
/// routes with, and buffers reused from call to call.
#[derive(Default)]
pub struct ConnectionSet {
    /// A handful of nodes: a linear search by address beats hashing it.
    conns: Vec<(Box<str>, NodeConnection)>,
    map: Option<Arc<SlotMap>>,
    /// Reused by the router for the address of the node it sends to.
    pub target: String,
    /// Reused for packing commands.
    pub cmd: Vec<u8>,
    /// Reused for building keys.
    pub key: Vec<u8>,
    /// Reused to join a command's parts for TLS.
    pub scratch: Vec<u8>,
    /// Opens connections instead of `NodeConnection::open` (unit tests).
    #[cfg(test)]
    pub dial: Option<Box<Dial>>,
}

/// Buffers that grew past this for a large value are given back afterwards,
/// so that one multi-MiB session does not pin memory in every thread.
const KEEP_BUFFER_BYTES: usize = 256 * 1024;

impl ConnectionSet {
    /// Closes every connection.
    pub fn clear(&mut self) {
        self.conns.clear();
        self.map = None;
        self.cmd = Vec::new();
        self.key = Vec::new();
        self.scratch = Vec::new();
        self.target = String::new();
    }

    pub fn open_count(&self) -> usize {
        self.conns.len()
    }

    pub fn trim_buffers(&mut self) {
        if self.cmd.capacity() > KEEP_BUFFER_BYTES {
            self.cmd = Vec::new();
        }
        if self.scratch.capacity() > KEEP_BUFFER_BYTES {
            self.scratch = Vec::new();
        }
    }

    /// The slot map to route with: the thread's cached one, replaced when
    /// the shared topology has a newer epoch (an atomic load, no lock). On a
    /// change, connections to nodes that are no longer masters are closed.
    pub fn slot_map(&mut self, topology: &Topology) -> &SlotMap {
        let epoch = topology.epoch();
        // A borrow, not an Arc clone: cloning would bump one shared counter
        // from every thread on every call.
        if self.map.as_ref().is_none_or(|map| map.epoch != epoch) {
            let map = topology.current();
            self.conns.retain(|(addr, _)| map.is_master(addr));
            self.map = Some(map);
        }
        self.map.get_or_insert_with(|| topology.current())
    }

    /// This thread's connection to `addr`, opened if it has none.
    pub fn connection(
        &mut self,
        addr: &str,
        params: &ConnectParams,
        deadline: Instant,
    ) -> Result<&mut NodeConnection> {
        let index = match self.index_of(addr) {
            Some(index) => index,
            None => {
                let node = NodeAddr::parse(addr).map_err(|e| {
                    Error::new(
                        crate::error::ErrorKind::Cluster,
                        format!("bad node address from the cluster: {e}"),
                    )
                })?;
                #[cfg(test)]
                if let Some(dial) = &mut self.dial {
                    let conn = dial(addr)?;
                    self.conns.push((addr.into(), conn));
                    return Ok(&mut self.conns.last_mut().expect("just pushed").1);
                }
                let conn = NodeConnection::open(&node, params, deadline)?;
                tracing::debug!(node = addr, "connected");
                self.conns.push((addr.into(), conn));
                self.conns.len() - 1
            }
        };
        Ok(&mut self.conns[index].1)
    }

    /// Where this thread's connection to `addr` is, if it has one.
    fn index_of(&self, addr: &str) -> Option<usize> {
        self.conns.iter().position(|(a, _)| **a == *addr)
    }

    /// Closes the connection to `addr` (after an error left it in an
    /// unknown state).
    pub fn drop_connection(&mut self, addr: &str) {
        if let Some(index) = self.index_of(addr) {
            self.conns.swap_remove(index);
            tracing::debug!(node = addr, "connection closed after an error");
        }
    }
}

/// What a thread holds: the library generation it is attached to, the client
/// of that generation, and its connections.
#[derive(Default)]
pub struct ThreadState {
    pub generation: u64,
    pub client: Option<Arc<Client>>,
    pub conns: ConnectionSet,
}

impl ThreadState {
    /// Detaches from the client and closes every socket.
    pub fn reset(&mut self) {
        if self.generation != 0 {
            crate::stats::thread_detached();
        }
        self.generation = 0;
        self.client = None;
        self.conns.clear();
    }
}

struct ThreadSlot {
    state: Mutex<ThreadState>,
}

/// Lives in thread-local storage; dropping it (thread exit) closes the
/// thread's sockets.
struct Registration(Arc<ThreadSlot>);

impl Registration {
    fn new() -> Self {
        let slot = Arc::new(ThreadSlot {
            state: Mutex::new(ThreadState::default()),
        });
        REGISTRY.lock().add(Arc::downgrade(&slot));
        Registration(slot)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Lines logged while the state is locked reach the host's logger
        // after the lock is released (it may call the library).
        let call = crate::logging::enter_call();
        self.0.state.lock().reset();
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

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    slots: Vec::new(),
    prune_at: 64,
});

thread_local! {
    static THREAD: Registration = Registration::new();
}

/// Runs `f` on this thread's state, holding its lock. `None` when the thread
/// is already tearing down its thread-locals.
pub fn with_thread<R>(f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
    THREAD
        .try_with(|reg| {
            let mut state = reg.0.state.lock();
            f(&mut state)
        })
        .ok()
}

/// Runs `f` on every live thread's state, one at a time; each lock waits for
/// the call in flight on that thread. Used by shutdown.
pub fn for_each_thread(mut f: impl FnMut(&mut ThreadState)) {
    let slots: Vec<Arc<ThreadSlot>> = REGISTRY
        .lock()
        .slots
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for slot in slots {
        f(&mut slot.state.lock());
    }
}
