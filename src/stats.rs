//! Live counters for `ors_redis_get_stats`.
//!
//! Call counters are striped: each thread adds to one of a few cache-line
//! sized stripes (chosen once per thread), so the hot path is an uncontended
//! atomic add, never a process-wide lock, and a read sums the stripes.
//! The two gauges (sockets open, threads attached) change only when a
//! connection opens or closes, or a thread attaches or detaches.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One stripe of call counters, on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
pub struct Stripe {
    pub puts: AtomicU64,
    pub gets: AtomicU64,
    pub dels: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub errors: AtomicU64,
    pub retries: AtomicU64,
    pub scans: AtomicU64,
}

const STRIPES: usize = 16;

static COUNTERS: [Stripe; STRIPES] = [const {
    Stripe {
        puts: AtomicU64::new(0),
        gets: AtomicU64::new(0),
        dels: AtomicU64::new(0),
        hits: AtomicU64::new(0),
        misses: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        scans: AtomicU64::new(0),
    }
}; STRIPES];

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);
static CONNECTIONS_OPEN: AtomicU64 = AtomicU64::new(0);
static THREADS_CONNECTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static MY_STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

/// Adds one to the counter `pick` selects, on this thread's stripe.
pub fn bump(pick: impl FnOnce(&Stripe) -> &AtomicU64) {
    let stripe = MY_STRIPE.try_with(|i| *i).unwrap_or(0);
    pick(&COUNTERS[stripe]).fetch_add(1, Ordering::Relaxed);
}

pub fn connection_opened() {
    CONNECTIONS_OPEN.fetch_add(1, Ordering::Relaxed);
}

pub fn connection_closed() {
    CONNECTIONS_OPEN.fetch_sub(1, Ordering::Relaxed);
}

pub fn thread_attached() {
    THREADS_CONNECTED.fetch_add(1, Ordering::Relaxed);
}

pub fn thread_detached() {
    THREADS_CONNECTED.fetch_sub(1, Ordering::Relaxed);
}

/// Zeroes the call counters (at init: they count "since init").
pub fn reset_calls() {
    for s in &COUNTERS {
        for c in [
            &s.puts, &s.gets, &s.dels, &s.hits, &s.misses, &s.errors, &s.retries, &s.scans,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A consistent-enough reading of every counter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub puts: u64,
    pub gets: u64,
    pub dels: u64,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub retries: u64,
    pub connections_open: u64,
    pub threads_connected: u64,
}

pub fn snapshot() -> Snapshot {
    let sum = |pick: fn(&Stripe) -> &AtomicU64| -> u64 {
        COUNTERS
            .iter()
            .map(|s| pick(s).load(Ordering::Relaxed))
            .sum()
    };
    Snapshot {
        puts: sum(|s| &s.puts),
        gets: sum(|s| &s.gets),
        dels: sum(|s| &s.dels),
        hits: sum(|s| &s.hits),
        misses: sum(|s| &s.misses),
        errors: sum(|s| &s.errors),
        retries: sum(|s| &s.retries),
        connections_open: CONNECTIONS_OPEN.load(Ordering::Relaxed),
        threads_connected: THREADS_CONNECTED.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_add_up_across_threads() {
        let before = snapshot();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        bump(|s| &s.retries);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert!(snapshot().retries - before.retries >= 8000);
    }
}
