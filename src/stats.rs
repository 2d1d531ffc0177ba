//! Live counters for `ors_redis_get_stats`.
//!
//! `Call` is the one list of call counters: the stripes, the reset at init,
//! the snapshot and the tests all follow it, and the C struct
//! (`ffi::ors_redis_stats`) is filled from it (a test there checks that each
//! counter lands in a field of its own).
//!
//! Call counters are striped: each thread adds to one of a few cache-line
//! sized stripes (chosen once per thread), so the hot path is an uncontended
//! atomic add, never a process-wide lock, and a read sums the stripes.
//! The two gauges (sockets open, threads attached) change only when a
//! connection opens or closes, or a thread attaches or detaches.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Declares `Call` and `Call::ALL` from one list, so that no variant can be
/// missing from `ALL` (`bump` would then index past its stripe and panic).
macro_rules! calls {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// The counters of calls, in the order of `ors_redis_stats`'s fields.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Call {
            $($(#[$doc])* $name,)*
        }

        impl Call {
            /// Every call counter, in declaration order (a counter's index).
            pub(crate) const ALL: [Call; [$(Call::$name),*].len()] = [$(Call::$name),*];
        }
    };
}

calls! {
    /// Calls made since init.
    Puts,
    Gets,
    Dels,
    /// Outcomes of get.
    Hits,
    Misses,
    /// Calls (put, get, del, scan) that returned a negative status.
    Errors,
    /// Attempts repeated after MOVED, ASK, TRYAGAIN, CLUSTERDOWN or a lost
    /// connection (scans' restarted passes included).
    Retries,
    /// Sessions handed to `ors_session_restore`'s callback.
    Restored,
    /// Slots listed by bulk reads (restore, scan, export): a bulk read's pages.
    RestorePages,
    /// Batches of a bulk read with slots to read again (a failover, a
    /// migration, a lost connection).
    RestoreRetries,
    /// Calls that returned `ORS_ERR_UNAVAILABLE` at once, unsent, because
    /// their node is marked unavailable.
    FastFailures,
    /// Times a node was marked unavailable.
    NodeTrips,
}

impl Call {
    const COUNT: usize = Call::ALL.len();
}

/// One stripe of call counters, on a cache line of its own.
#[repr(align(128))]
struct Stripe([AtomicU64; Call::COUNT]);

const STRIPES: usize = 16;

static COUNTERS: [Stripe; STRIPES] =
    [const { Stripe([const { AtomicU64::new(0) }; Call::COUNT]) }; STRIPES];

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);
static CONNECTIONS_OPEN: AtomicU64 = AtomicU64::new(0);
static THREADS_CONNECTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static MY_STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

/// Adds one to `call`'s counter, on this thread's stripe.
pub(crate) fn bump(call: Call) {
    add(call, 1);
}

/// Adds `n` to `call`'s counter, on this thread's stripe.
pub(crate) fn add(call: Call, n: u64) {
    let stripe = MY_STRIPE.try_with(|i| *i).unwrap_or(0);
    COUNTERS[stripe].0[call as usize].fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn connection_opened() {
    CONNECTIONS_OPEN.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn connection_closed() {
    CONNECTIONS_OPEN.fetch_sub(1, Ordering::Relaxed);
}

pub(crate) fn thread_attached() {
    THREADS_CONNECTED.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn thread_detached() {
    THREADS_CONNECTED.fetch_sub(1, Ordering::Relaxed);
}

/// Zeroes the call counters (at init: they count "since init").
pub(crate) fn reset_calls() {
    COUNTERS
        .iter()
        .flat_map(|s| &s.0)
        .for_each(|c| c.store(0, Ordering::Relaxed));
}

/// A consistent-enough reading of every counter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    calls: [u64; Call::COUNT],
    pub connections_open: u64,
    pub threads_connected: u64,
}

impl Snapshot {
    pub(crate) fn get(&self, call: Call) -> u64 {
        self.calls[call as usize]
    }

    #[cfg(test)]
    pub(crate) fn set(&mut self, call: Call, value: u64) {
        self.calls[call as usize] = value;
    }
}

pub(crate) fn snapshot() -> Snapshot {
    let mut calls = [0u64; Call::COUNT];
    for stripe in &COUNTERS {
        for (sum, counter) in calls.iter_mut().zip(&stripe.0) {
            *sum += counter.load(Ordering::Relaxed);
        }
    }
    Snapshot {
        calls,
        connections_open: CONNECTIONS_OPEN.load(Ordering::Relaxed),
        threads_connected: THREADS_CONNECTED.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_adds_up_across_threads_on_its_own() {
        let before = snapshot();
        let threads: Vec<_> = Call::ALL
            .iter()
            .enumerate()
            .map(|(i, &call)| {
                std::thread::spawn(move || {
                    for _ in 0..(i + 1) * 1000 {
                        bump(call);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let after = snapshot();
        // Other tests of this process may count calls too: at least, then.
        for (i, &call) in Call::ALL.iter().enumerate() {
            assert!(
                after.get(call) - before.get(call) >= (i as u64 + 1) * 1000,
                "{call:?}"
            );
        }
    }

    /// Each counter's index (what `bump` and `Snapshot` index by, and the
    /// order of the C struct's fields) is its place in `ALL`. The match has
    /// no wildcard: a new counter does not compile until it is placed here.
    #[test]
    fn every_call_is_in_the_list_at_its_index() {
        let index = |call: Call| match call {
            Call::Puts => 0,
            Call::Gets => 1,
            Call::Dels => 2,
            Call::Hits => 3,
            Call::Misses => 4,
            Call::Errors => 5,
            Call::Retries => 6,
            Call::Restored => 7,
            Call::RestorePages => 8,
            Call::RestoreRetries => 9,
            Call::FastFailures => 10,
            Call::NodeTrips => 11,
        };
        for (i, &call) in Call::ALL.iter().enumerate() {
            assert_eq!(index(call), i, "{call:?}");
            assert_eq!(call as usize, i, "{call:?}");
        }
    }
}
