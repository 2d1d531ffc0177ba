//! Per-node health, shared by every thread of the process: one sick node
//! must never stall the threads that route calls.
//!
//! A node is marked unavailable ("tripped") when `node-fail-count` requests
//! in a row failed on it the way a node fails (retry.rs's
//! `Next::NodeFailed`: no reply within `redis-socket-timeout`, a connect
//! refused or timed out). From then on, with `node-fail-fast=true`, session
//! calls whose slot it serves return `ORS_ERR_UNAVAILABLE` at once, and
//! calls already waiting on it give up at their next wait slice. Calls to
//! other nodes never wait on it.
//!
//! Recovery: one prober thread per tripped node (whatever the number of
//! threads meeting it) sends `PING` on a connection of its own, at most
//! every `node-probe-interval`, each probe bounded by
//! `min(redis-socket-timeout, 500 ms)` so that a new TCP connect goes out
//! soon after a network fault heals. While it waits it re-reads the slot map
//! (every 50 ms at most, from the node's replicas first): a failover or a
//! resharding that moves the node's slots is seen at once, and calls go to
//! the new master. A node answering again is well at once; so is one whose
//! slots all moved elsewhere (it is forgotten: if it comes back as a
//! master it starts well). A call of the host's that succeeds on a tripped
//! node (possible with `node-fail-fast=false`) also makes it well.
//!
//! Why a background probe rather than one caller's call with a short
//! timeout: a caller's probe would stall that caller (an ORS routing
//! thread) for the probe's timeout, once per probe interval, and a probe
//! whose caller has gone cannot go on re-reading the map.
//!
//! Figures per node: requests, errors, fast failures, trips, probes, and a
//! latency histogram (microseconds, 8 buckets per power of two: at most
//! 12.5% wide, exact below 8 µs) of one request in `LATENCY_SAMPLE`, whose
//! percentiles `figures` computes over a recent window (`WINDOW`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::config::NodeAddr;
use crate::error::{Error, ErrorKind};
use crate::fork;
use crate::stats::{self, Call};

/// The state word's flag for "tripped"; the low bits count failures in a row.
const SICK: u32 = 1 << 31;

/// The window over which `figures` computes latency percentiles: the
/// counts since the newest snapshot at least this old.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// How often a read of the figures keeps a snapshot of the histogram.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(10);

/// One answered request in this many (per thread) has its latency recorded:
/// reading the clock after a reply and turning two instants into a
/// duration cost about 80 instructions, a third of the budget a call may
/// grow by (bench/callgrind.sh), while a uniform sample of one in eight
/// still gives thousands of samples per second and node at ORS's rates.
pub(crate) const LATENCY_SAMPLE: u32 = 8;

/// The latency histogram's buckets: values under 8 µs exactly, then 8 per
/// power of two up to 2^29 µs (about 9 minutes), the last one open.
pub(crate) const BUCKETS: usize = 8 + 27 * 8;

/// The bucket of a latency of `us` microseconds.
#[inline]
pub(crate) fn bucket(us: u64) -> usize {
    if us < 8 {
        return us as usize;
    }
    let log = 63 - us.leading_zeros() as u64; // >= 3
    let sub = (us >> (log - 3)) & 7;
    (((log - 2) * 8 + sub) as usize).min(BUCKETS - 1)
}

/// The largest latency (microseconds) that falls in bucket `index`.
pub(crate) fn bucket_top(index: usize) -> u64 {
    if index < 8 {
        return index as u64;
    }
    let log = (index / 8 + 2) as u64;
    let sub = (index % 8) as u64;
    ((8 + sub + 1) << (log - 3)) - 1
}

/// Why and since when a node is tripped.
#[derive(Debug, Clone)]
struct Trip {
    at: Instant,
    /// The same moment on the wall clock, for the host's figures.
    wall: SystemTime,
    cause: String,
}

/// One node's health and figures, shared by every thread.
pub struct NodeHealth {
    pub addr: NodeAddr,
    /// `SICK` | failures in a row: one load on the hot path.
    state: AtomicU32,
    trip: Mutex<Option<Trip>>,
    /// `fork::generation() + 1` of the process whose prober runs; 0: none.
    prober: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    fast_failures: AtomicU64,
    trips: AtomicU64,
    probes: AtomicU64,
    latency: Box<[AtomicU64; BUCKETS]>,
    /// Histogram snapshots kept by `figures`, oldest first.
    window: Mutex<VecDeque<(Instant, Box<[u64; BUCKETS]>)>>,
}

impl std::fmt::Debug for NodeHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHealth")
            .field("addr", &self.addr)
            .field("sick", &self.is_sick())
            .finish_non_exhaustive()
    }
}

/// What the router does after recording a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// The node is still taken as well.
    Well,
    /// The node is tripped (by this failure or an earlier one).
    Sick,
}

impl NodeHealth {
    fn new(addr: NodeAddr) -> NodeHealth {
        NodeHealth {
            addr,
            state: AtomicU32::new(0),
            trip: Mutex::new(None),
            prober: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            fast_failures: AtomicU64::new(0),
            trips: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            latency: Box::new([const { AtomicU64::new(0) }; BUCKETS]),
            window: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether the node is tripped.
    #[inline(always)]
    pub fn is_sick(&self) -> bool {
        self.state.load(Ordering::Relaxed) & SICK != 0
    }

    /// A request answered: counted, and the failures in a row (or the
    /// trip) cleared.
    #[inline(always)]
    pub fn answered(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.state.load(Ordering::Relaxed) != 0 {
            self.well_again("a call succeeded on it");
        }
    }

    /// A request answered after `took`, one in `LATENCY_SAMPLE` (see there).
    #[inline]
    pub fn answered_in(&self, took: Duration) {
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        self.latency[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.answered();
    }

    /// A request that got an error (any error: the figures' `errors`).
    pub fn errored(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A call refused at once because the node is tripped: counted, and
    /// its prober started if this process runs none (a forked child).
    pub fn failed_fast(self: &Arc<Self>, probe: &dyn Fn(Arc<NodeHealth>)) {
        self.fast_failures.fetch_add(1, Ordering::Relaxed);
        stats::bump(Call::FastFailures);
        self.ensure_prober(probe);
    }

    /// A request failed the way a node fails (`cause`); `threshold` such
    /// failures in a row trip it. With `probe` (`node-fail-fast=true`) the
    /// prober is started (one per node) when tripped; without, the calls
    /// that still go to the node find it well again (and a later switch to
    /// fail-fast starts the prober at the first call refused).
    pub fn failed(
        self: &Arc<Self>,
        cause: &Error,
        threshold: u32,
        probe: Option<&dyn Fn(Arc<NodeHealth>)>,
    ) -> Marked {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & SICK != 0 {
                if let Some(probe) = probe {
                    self.ensure_prober(probe);
                }
                return Marked::Sick;
            }
            let failures = (state & !SICK).saturating_add(1).min(SICK - 1);
            let next = if failures >= threshold.max(1) {
                SICK | failures
            } else {
                failures
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if next & SICK != 0 => break,
                Ok(_) => return Marked::Well,
                Err(seen) => state = seen,
            }
        }
        *self.trip.lock() = Some(Trip {
            at: Instant::now(),
            wall: SystemTime::now(),
            cause: cause.message.clone(),
        });
        self.trips.fetch_add(1, Ordering::Relaxed);
        stats::bump(Call::NodeTrips);
        match probe {
            Some(probe) => {
                tracing::warn!(
                    node = %self.addr,
                    "node marked unavailable: {}; calls to its slots fail fast with \
                     ORS_ERR_UNAVAILABLE (node-fail-fast=true) until it answers a probe or its \
                     slots move",
                    cause.message
                );
                self.ensure_prober(probe);
            }
            None => tracing::warn!(
                node = %self.addr,
                "node marked unavailable: {}; calls to its slots wait for it within op-timeout \
                 (node-fail-fast=false)",
                cause.message
            ),
        }
        Marked::Sick
    }

    /// Makes the node well: it answered (`why`), or its slots moved.
    pub fn well_again(&self, why: &str) {
        let before = self.state.swap(0, Ordering::AcqRel);
        if before & SICK == 0 {
            return;
        }
        let since = self.trip.lock().take();
        let down = since.map(|t| t.at.elapsed()).unwrap_or_default();
        tracing::info!(
            node = %self.addr,
            unavailable_ms = down.as_millis() as u64,
            "node well again ({why}) after {} ms; calls to its slots go through",
            down.as_millis()
        );
    }

    /// The error of a call refused because the node is tripped; `named`:
    /// the message begins with the node (a wait given up on it is named
    /// by `ConnectionSet::exchange` instead).
    pub fn unavailable_error(&self, named: bool) -> Error {
        let (since, cause) = match &*self.trip.lock() {
            Some(t) => (t.at.elapsed().as_millis(), t.cause.clone()),
            None => (0, "it failed".to_string()),
        };
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "{}marked unavailable {since} ms ago ({cause}); the call gave up on it at once \
                 (node-fail-fast=true): it is being probed, and calls go through once it \
                 answers or its slots move",
                if named {
                    format!("node {}: ", self.addr)
                } else {
                    String::new()
                }
            ),
        )
    }

    /// Counts a probe sent.
    pub fn probed(&self) {
        self.probes.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts `probe` on a thread of its own unless this process already
    /// runs one for the node (a forked child starts its own: its parent's
    /// thread is not in it).
    fn ensure_prober(self: &Arc<Self>, probe: &dyn Fn(Arc<NodeHealth>)) {
        let mine = fork::generation() + 1;
        let running = self.prober.load(Ordering::Acquire);
        if running == mine {
            return;
        }
        if self
            .prober
            .compare_exchange(running, mine, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            probe(self.clone());
        }
    }

    /// Called by the prober as it ends: whether it must go on after all (the
    /// node was tripped again meanwhile, and no other prober took it).
    pub fn prober_ends(&self) -> bool {
        let mine = fork::generation() + 1;
        self.prober.store(0, Ordering::Release);
        self.is_sick()
            && self
                .prober
                .compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// A prober could not be started: the next failure tries again.
    pub fn prober_failed(&self) {
        self.prober.store(0, Ordering::Release);
    }

    /// The node's figures now, percentiles over the recent window.
    pub fn figures(&self, is_master: bool) -> NodeFigures {
        let now = Instant::now();
        let counts: Box<[u64; BUCKETS]> = Box::new(std::array::from_fn(|i| {
            self.latency[i].load(Ordering::Relaxed)
        }));
        let mut window = self.window.lock();
        if window
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= SNAPSHOT_EVERY)
        {
            window.push_back((now, counts.clone()));
        }
        // Keep the newest snapshot at least WINDOW old, and all after it.
        while window.len() > 1 && now.duration_since(window[1].0) >= WINDOW {
            window.pop_front();
        }
        // The base: the newest snapshot at least WINDOW old, else the
        // oldest. On the first read it is the one just taken, and the
        // counts since init stand in for the window (`window_ms` 0).
        let (recent, window_ms) = match window.front() {
            Some((at, base)) if *at < now => (
                (0..BUCKETS)
                    .map(|i| counts[i].saturating_sub(base[i]))
                    .collect::<Vec<u64>>(),
                now.duration_since(*at).as_millis() as u64,
            ),
            _ => (counts.to_vec(), 0),
        };
        drop(window);
        let trip = self.trip.lock().clone();
        NodeFigures {
            addr: self.addr.clone(),
            sick: self.is_sick(),
            is_master,
            unavailable_since: trip.as_ref().map(|t| t.wall),
            cause: trip.map(|t| t.cause),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            fast_failures: self.fast_failures.load(Ordering::Relaxed),
            trips: self.trips.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
            window_ms,
            window_requests: recent.iter().sum(),
            p50_us: percentile(&recent, 0.50),
            p99_us: percentile(&recent, 0.99),
            p999_us: percentile(&recent, 0.999),
        }
    }
}

/// The latency (microseconds, a bucket's top) under which a share `q` of
/// the counted requests fell; 0 when none were counted.
pub(crate) fn percentile(counts: &[u64], q: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return bucket_top(i);
        }
    }
    bucket_top(counts.len() - 1)
}

/// One node's figures, as `ors_redis_get_node_stats` hands them over.
#[derive(Debug, Clone)]
pub struct NodeFigures {
    pub addr: NodeAddr,
    pub sick: bool,
    pub is_master: bool,
    pub unavailable_since: Option<SystemTime>,
    pub cause: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub fast_failures: u64,
    pub trips: u64,
    pub probes: u64,
    /// How long the window of the percentiles is (0: since init).
    pub window_ms: u64,
    pub window_requests: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
}

impl NodeFigures {
    /// When the node was tripped, in milliseconds since the Unix epoch; 0
    /// when it is well.
    pub fn unavailable_since_unix_ms(&self) -> u64 {
        self.unavailable_since
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// Every node's health in one init: the slot maps point into it, so that a
/// call finds its master's health without a lookup.
#[derive(Default)]
pub struct Health {
    nodes: Mutex<Vec<Arc<NodeHealth>>>,
}

impl Health {
    /// The health of `addr`, made on first use.
    pub fn of(&self, addr: &NodeAddr) -> Arc<NodeHealth> {
        let mut nodes = self.nodes.lock();
        if let Some(n) = nodes.iter().find(|n| n.addr == *addr) {
            return n.clone();
        }
        let n = Arc::new(NodeHealth::new(addr.clone()));
        nodes.push(n.clone());
        n
    }

    /// Whether `addr` is marked unavailable (a refresh of the map does not
    /// wait on it: see `Topology::refresh`).
    pub fn is_sick(&self, addr: &NodeAddr) -> bool {
        self.nodes
            .lock()
            .iter()
            .any(|n| n.addr == *addr && n.is_sick())
    }

    /// Every node known, in the order first met.
    pub fn all(&self) -> Vec<Arc<NodeHealth>> {
        self.nodes.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn node() -> Arc<NodeHealth> {
        Arc::new(NodeHealth::new(NodeAddr::parse("127.0.0.1:7000").unwrap()))
    }

    #[test]
    fn buckets_are_exact_below_8_us_and_at_most_an_eighth_wide_above() {
        for us in 0..8 {
            assert_eq!(bucket(us), us as usize);
            assert_eq!(bucket_top(bucket(us)), us);
        }
        let mut last = 0;
        for us in 8..200_000u64 {
            let b = bucket(us);
            assert!(b >= last, "buckets grow with the value");
            last = b;
            let top = bucket_top(b);
            assert!(top >= us, "{us} µs lies under its bucket's top {top}");
            assert!(
                (top - us) as f64 <= us as f64 / 8.0 + 1.0,
                "{us} µs: top {top}"
            );
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_top(bucket(8)), 8);
        assert_eq!(bucket_top(bucket(100)), 103);
    }

    #[test]
    fn percentiles_come_from_the_counts() {
        let mut counts = vec![0u64; BUCKETS];
        counts[bucket(100)] = 990;
        counts[bucket(2000)] = 9;
        counts[bucket(50_000)] = 1;
        assert_eq!(percentile(&counts, 0.5), bucket_top(bucket(100)));
        assert_eq!(percentile(&counts, 0.99), bucket_top(bucket(100)));
        assert_eq!(percentile(&counts, 0.999), bucket_top(bucket(2000)));
        assert_eq!(percentile(&counts, 1.0), bucket_top(bucket(50_000)));
        assert_eq!(percentile(&vec![0; BUCKETS], 0.5), 0);
    }

    #[test]
    fn a_node_trips_after_the_threshold_once_and_one_prober_runs() {
        let n = node();
        let started = AtomicUsize::new(0);
        let probe = |_: Arc<NodeHealth>| {
            started.fetch_add(1, Ordering::Relaxed);
        };
        let e = Error::new(ErrorKind::Timeout, "no reply within 1000 ms");
        assert_eq!(n.failed(&e, 3, Some(&probe)), Marked::Well);
        assert_eq!(n.failed(&e, 3, Some(&probe)), Marked::Well);
        assert!(!n.is_sick());
        assert_eq!(n.failed(&e, 3, Some(&probe)), Marked::Sick);
        assert!(n.is_sick());
        // 64 more failures: still one trip, still one prober.
        for _ in 0..64 {
            assert_eq!(n.failed(&e, 3, Some(&probe)), Marked::Sick);
        }
        assert_eq!(started.load(Ordering::Relaxed), 1);
        let f = n.figures(true);
        assert_eq!(f.trips, 1);
        assert!(f.sick && f.unavailable_since_unix_ms() > 0);
        let msg = n.unavailable_error(true).message;
        assert!(
            msg.contains("127.0.0.1:7000") && msg.contains("no reply within 1000 ms"),
            "{msg}"
        );
        assert_eq!(n.unavailable_error(false).kind, ErrorKind::Unavailable);

        // The prober ends with the node well: nothing more to do.
        n.well_again("it answered a probe");
        assert!(!n.is_sick());
        assert!(!n.prober_ends());
        // Tripped again: a new prober.
        assert_eq!(n.failed(&e, 1, Some(&probe)), Marked::Sick);
        assert_eq!(started.load(Ordering::Relaxed), 2);
        assert_eq!(n.figures(true).trips, 2);
    }

    #[test]
    fn without_fail_fast_no_prober_starts_until_a_call_is_refused() {
        let n = node();
        let started = AtomicUsize::new(0);
        let probe = |_: Arc<NodeHealth>| {
            started.fetch_add(1, Ordering::Relaxed);
        };
        let e = Error::new(ErrorKind::Timeout, "late");
        assert_eq!(n.failed(&e, 1, None), Marked::Sick);
        assert_eq!(n.failed(&e, 1, None), Marked::Sick);
        assert_eq!(started.load(Ordering::Relaxed), 0);
        // node-fail-fast turned on live: the first refused call starts it.
        n.failed_fast(&probe);
        n.failed_fast(&probe);
        assert_eq!(started.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_success_clears_the_failures_in_a_row() {
        let n = node();
        let probe = |_: Arc<NodeHealth>| {};
        let e = Error::new(ErrorKind::Timeout, "late");
        n.failed(&e, 2, Some(&probe));
        n.answered();
        assert_eq!(
            n.failed(&e, 2, Some(&probe)),
            Marked::Well,
            "the count started over"
        );
        assert_eq!(n.failed(&e, 2, Some(&probe)), Marked::Sick);
        n.answered();
        assert!(!n.is_sick(), "a call that succeeded makes it well");
    }

    #[test]
    fn a_prober_that_ends_while_the_node_was_tripped_again_goes_on() {
        let n = node();
        let probe = |_: Arc<NodeHealth>| {};
        n.failed(&Error::new(ErrorKind::Timeout, "late"), 1, Some(&probe));
        // The prober runs (claimed); the node is still sick when it ends.
        assert!(n.prober_ends(), "it claims the node again");
        assert!(!n.prober_ends() || n.is_sick());
    }

    #[test]
    fn figures_count_and_take_percentiles() {
        let n = node();
        for _ in 0..99 {
            n.answered_in(Duration::from_micros(120));
        }
        n.answered_in(Duration::from_millis(30));
        n.errored();
        n.failed_fast(&|_| {});
        let f = n.figures(true);
        assert_eq!(f.requests, 101);
        assert_eq!(f.errors, 1);
        assert_eq!(f.fast_failures, 1);
        assert_eq!(f.window_requests, 100);
        assert_eq!(f.p50_us, bucket_top(bucket(120)));
        assert_eq!(f.p999_us, bucket_top(bucket(30_000)));
        assert!(!f.sick && f.unavailable_since_unix_ms() == 0);
    }
}
