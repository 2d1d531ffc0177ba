//! The bulk read: every session of this cluster name (whose id has a given
//! prefix), read from all masters at once, for a backup ORS that takes over
//! (`ors_session_restore`), a restarting one that lists its ids
//! (`ors_session_scan`) and the operator's export.
//!
//! One worker thread per master reads the slots of one node at a time,
//! a batch of slots per round trip pair (`node_read.rs`), on connections of
//! its own; `plan.rs` keeps which slots are left and which node each worker
//! reads. Workers hand the sessions of whole slots over a bounded queue of
//! batches to the caller's thread, which runs the host's callback with no
//! lock held. Memory is bounded by the queue and the batch size, not by the
//! number of sessions.
//!
//! Workers stop when the read ends, fails or is dropped, and when the
//! library is shut down (they check between slices of every wait, and
//! shutdown waits for them: `live::Worker`).

mod batch;
mod node_read;
mod plan;
#[cfg(test)]
mod scripted_tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::client::Client;
use crate::cluster::ConnectionSet;
use crate::config::NodeAddr;
use crate::connection::SLICE;
use crate::error::{Error, ErrorKind, Result};
use crate::live;
use crate::logging;
use crate::stats::{self, Call};

pub use batch::{Batch, Record};

pub use node_read::Want;
use node_read::{NodeReader, Outcome};
use plan::{Claim, Plan, Work};

/// Sessions a batch aims at: enough that a round trip carries hundreds of
/// reads, few enough that a worker's batch stays small.
const BATCH_SESSIONS: usize = 512;
/// Bytes of values a batch aims at (see `QUEUED_PER_MASTER` for how many
/// batches a read holds).
const BATCH_BYTES: usize = 2 << 20;
/// Slots per batch at most (ids only: a listing is small).
const MAX_BATCH_SLOTS: usize = 256;
/// Batches waiting for the caller per master: with one batch being filled
/// per worker and one with the caller, a read holds at most (masters +
/// workers + 1) batches, whatever the number of sessions, and reuses them.
const QUEUED_PER_MASTER: usize = 2;
/// Workers at most, whatever the number of masters.
const MAX_WORKERS: usize = 16;
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Whose read this is: the library's (it ends with a shutdown of that
/// generation) or the operator command's.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    /// A restore or scan of the library.
    Library {
        /// The init it belongs to: its shutdown ends the read.
        generation: u64,
    },
    /// An export of the operator command.
    Operator,
}

struct Shared {
    client: Arc<Client>,
    prefix: Vec<u8>,
    want: Want,
    owner: Owner,
    /// Batches waiting for the caller at most (and emptied ones kept).
    max_ready: usize,
    stop: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    plan: Plan,
    ready: std::collections::VecDeque<Batch>,
    /// Emptied batches, for the workers to fill again.
    spare: Vec<Batch>,
    /// The read's error is a node refusing to list a slot's keys.
    listing_refused: bool,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || match self.owner {
                Owner::Library { generation } => !live::is_live(generation),
                Owner::Operator => false,
            }
    }

    fn interrupted() -> Error {
        Error::new(ErrorKind::NotInitialized, "the bulk read was stopped")
    }
}

/// A bulk read's error, as its caller reports it: a stop because the
/// library was shut down says so (`what`: "restore", "scan").
pub(crate) fn interrupted(e: Error, what: &str) -> Error {
    if e.kind == ErrorKind::NotInitialized {
        Error::new(
            ErrorKind::NotInitialized,
            format!(
                "the library was shut down during the {what} (by its callback or another \
                 thread); sessions after that point were not reported"
            ),
        )
    } else {
        e
    }
}

/// A bulk read under way. Dropping it stops its workers and waits for them.
pub struct BulkRead {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    started: Instant,
    last_progress: Instant,
    /// Sessions handed over so far, in all and per node.
    handed: u64,
    per_node: Vec<(NodeAddr, u64)>,
}

impl BulkRead {
    /// Starts reading the sessions whose id starts with `prefix`.
    pub fn start(client: Arc<Client>, prefix: &[u8], want: Want, owner: Owner) -> Result<BulkRead> {
        // The prefix must be one an id can start with.
        client
            .keys
            .session_pattern(prefix)
            .map_err(Error::invalid)?;
        let masters = client.topology.current().masters.len();
        let workers = (masters * plan::READERS_PER_NODE).clamp(1, MAX_WORKERS);
        let shared = Arc::new(Shared {
            prefix: prefix.to_vec(),
            want,
            owner,
            max_ready: masters.max(1) * QUEUED_PER_MASTER,
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                plan: Plan::new(client.config.op_timeout),
                ready: Default::default(),
                spare: Vec::new(),
                listing_refused: false,
            }),
            changed: Condvar::new(),
            client,
        });
        let mut read = BulkRead {
            shared: shared.clone(),
            handles: Vec::with_capacity(workers),
            started: Instant::now(),
            last_progress: Instant::now(),
            handed: 0,
            per_node: Vec::new(),
        };
        for index in 0..workers {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ors-redis-bulk-{index}"))
                .spawn(move || work(&shared, index));
            match spawned {
                Ok(handle) => read.handles.push(handle),
                // Fewer workers still read every slot.
                Err(e) if index > 0 => {
                    tracing::warn!(error = %e, workers = index, "bulk read: could not start more worker threads");
                    break;
                }
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::LocalResource,
                        format!("cannot start a worker thread: {e}"),
                    ))
                }
            }
        }
        tracing::info!(
            masters,
            workers = read.handles.len(),
            prefix = %String::from_utf8_lossy(prefix),
            "bulk read started"
        );
        Ok(read)
    }

    /// The next batch of sessions, waiting for one; `None` once every slot
    /// was read. Log lines of the workers are queued on this thread.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        let mut state = self.shared.state.lock();
        loop {
            if let Some(mut batch) = state.ready.pop_front() {
                self.shared.changed.notify_all();
                drop(state);
                if let Some(lines) = batch.log.take() {
                    logging::requeue(lines);
                }
                self.count(&batch);
                return Ok(Some(batch));
            }
            if let Some(e) = &state.plan.error {
                return Err(e.clone());
            }
            if state.plan.slots_left() == 0 {
                drop(state);
                self.finished();
                return Ok(None);
            }
            if self.shared.stopped() {
                return Err(Shared::interrupted());
            }
            // Workers end only when the read does: all gone with slots
            // left means they panicked (their claims are never reported).
            if self.handles.iter().all(|h| h.is_finished()) {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "the bulk read's worker threads stopped before every slot was read \
                     (a bug in ors-redis, please report)",
                ));
            }
            self.shared.changed.wait_for(&mut state, SLICE);
        }
    }

    /// Gives an emptied batch back, for its memory to be used again.
    pub fn recycle(&self, mut batch: Batch) {
        batch.clear();
        let mut state = self.shared.state.lock();
        // Every batch stays in circulation: freeing and allocating
        // megabyte buffers from many threads fragments the host's heap,
        // which then grows with the number of sessions read.
        if state.spare.len() < self.shared.max_ready + self.handles.len() {
            state.spare.push(batch);
        }
    }

    fn count(&mut self, batch: &Batch) {
        let n = batch.len() as u64;
        self.handed += n;
        if let Some(node) = &batch.node {
            match self.per_node.iter_mut().find(|(a, _)| a == node) {
                Some(entry) => entry.1 += n,
                None => self.per_node.push((node.clone(), n)),
            }
        }
        if self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.last_progress = Instant::now();
            let left = self.shared.state.lock().plan.slots_left();
            tracing::info!(
                sessions = self.handed,
                slots_left = left,
                seconds = format_args!("{:.1}", self.started.elapsed().as_secs_f64()),
                per_master = %self.describe_nodes(),
                "bulk read in progress"
            );
        }
    }

    fn finished(&self) {
        tracing::info!(
            sessions = self.handed,
            seconds = format_args!("{:.2}", self.started.elapsed().as_secs_f64()),
            per_master = %self.describe_nodes(),
            "bulk read done"
        );
    }

    fn describe_nodes(&self) -> String {
        let mut parts: Vec<String> = self
            .per_node
            .iter()
            .map(|(node, n)| format!("{node}={n}"))
            .collect();
        parts.sort();
        parts.join(" ")
    }

    /// Sessions handed over so far.
    pub fn sessions(&self) -> u64 {
        self.handed
    }

    /// Whether the read failed because a node refused `CLUSTER
    /// GETKEYSINSLOT` (the scan then pages with `SCAN` instead).
    pub fn listing_refused(&self) -> bool {
        self.shared.state.lock().listing_refused
    }
}

impl Drop for BulkRead {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// One worker: claims a node's slots, reads them, hands them over, until
/// nothing is left or the read stops.
fn work(shared: &Shared, index: usize) {
    // Declared first, dropped last: after the connections are closed.
    let _registered = match shared.owner {
        Owner::Library { .. } => Some(live::Worker::enter()),
        Owner::Operator => None,
    };
    let mut conns = ConnectionSet::default();
    let mut reader = NodeReader::new(shared.client.clone(), &shared.prefix, shared.want);
    let stopped = || shared.stopped().then(Shared::interrupted);
    let mut sessions_per_slot: f64 = 16.0;
    let mut bytes_per_session: f64 = 1024.0;
    loop {
        if shared.stopped() {
            break;
        }
        // Between batches, every connection is idle: the place to take
        // settings that `ors_redis_reconfigure` changed.
        if let Owner::Library { .. } = shared.owner {
            if let Some(newer) = live::newer_settings(&reader.client) {
                conns.renew(&reader.client.params, &newer.params);
                reader.client = newer;
            }
        }
        let client = reader.client.clone();
        let map = client.topology.current();
        let max_slots = match shared.want {
            Want::Ids => MAX_BATCH_SLOTS,
            _ => {
                let by_count = BATCH_SESSIONS as f64 / sessions_per_slot.max(0.01);
                let by_bytes =
                    BATCH_BYTES as f64 / (sessions_per_slot * bytes_per_session).max(1.0);
                (by_count.min(by_bytes) as usize).clamp(1, MAX_BATCH_SLOTS)
            }
        };
        let claim = shared
            .state
            .lock()
            .plan
            .claim(&map, index, max_slots, Instant::now());
        let work = match claim {
            Claim::Finished => break,
            Claim::Wait { unserved } => {
                if unserved {
                    let deadline = Instant::now() + client.config.socket_timeout;
                    conns.refresh_map(&client, map.epoch, None, deadline);
                }
                let mut state = shared.state.lock();
                let wait = state
                    .plan
                    .next_retry()
                    .map_or(SLICE, |t| t.saturating_duration_since(Instant::now()))
                    .clamp(Duration::from_millis(1), SLICE);
                shared.changed.wait_for(&mut state, wait);
                continue;
            }
            Claim::Work(work) => work,
        };
        let mut batch = shared.state.lock().spare.pop().unwrap_or_default();
        batch.node = Some(work.node.clone());
        let began = Instant::now();
        let (outcome, lines) =
            logging::capture(|| reader.read(&mut conns, &work, &mut batch, &stopped));
        batch.log = Some(lines);
        if !outcome.done.is_empty() && !batch.is_empty() {
            let slots = outcome.done.len() as f64;
            sessions_per_slot = 0.5 * sessions_per_slot + 0.5 * (batch.len() as f64 / slots);
            bytes_per_session =
                0.5 * bytes_per_session + 0.5 * (batch.value_bytes() as f64 / batch.len() as f64);
        }
        match hand_over(shared, &map, &work, began, batch, outcome) {
            Next::Stop => break,
            Next::Claim => {}
            Next::RefreshFirst { avoid_node } => {
                let deadline = Instant::now() + client.config.socket_timeout;
                let avoid = avoid_node.then_some(&work.node);
                conns.refresh_map(&client, map.epoch, avoid, deadline);
            }
        }
    }
    shared.changed.notify_all();
}

/// What a worker does after handing a batch over.
enum Next {
    /// The read is over for this worker.
    Stop,
    Claim,
    /// Has the slot map reloaded first (asking the node just read last
    /// when `avoid_node`).
    RefreshFirst {
        avoid_node: bool,
    },
}

/// Queues a worker's batch (waiting while the queue is full) and reports
/// its outcome to the plan.
fn hand_over(
    shared: &Shared,
    map: &crate::cluster::topology::SlotMap,
    work: &Work,
    began: Instant,
    batch: Batch,
    outcome: Outcome,
) -> Next {
    let node = &work.node;
    let Outcome {
        done,
        again,
        larger,
        stale_map,
        node_error,
        fatal,
        listed,
        listing_refused,
    } = outcome;
    stats::add(Call::RestorePages, listed);
    let mut state = shared.state.lock();
    // Sessions go to the queue before their slots count as done, so that
    // the caller never sees every slot done with sessions still to come.
    if !done.is_empty() {
        while state.ready.len() >= shared.max_ready {
            if shared.stopped() || state.plan.error.is_some() {
                return Next::Stop;
            }
            shared.changed.wait_for(&mut state, SLICE);
        }
        state.ready.push_back(batch);
    } else if let Some(lines) = batch.log.filter(|l| !l.is_empty()) {
        // Nothing to hand over but the log lines.
        let mut empty = Batch::default();
        empty.log = Some(lines);
        state.ready.push_back(empty);
    }
    state.plan.report(work, &done);
    for (slot, count) in larger {
        if let Err(e) = state.plan.grow_count(slot, count) {
            state.plan.error.get_or_insert(e);
        }
    }
    if let Some(e) = fatal {
        if state.plan.error.is_none() {
            state.listing_refused = listing_refused;
        }
        state.plan.error.get_or_insert(e);
    }
    let retried = !again.is_empty();
    if let Some(e) = node_error {
        tracing::debug!(node = %node, error = %e, slots = again.len(), "bulk read: node failed, its slots will be read again");
        state.plan.node_failed(map, node, e, began, Instant::now());
    }
    shared.changed.notify_all();
    drop(state);
    if retried {
        stats::bump(Call::RestoreRetries);
    }
    if stale_map || retried {
        Next::RefreshFirst {
            avoid_node: !stale_map,
        }
    } else {
        Next::Claim
    }
}
