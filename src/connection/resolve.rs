//! Host-name resolution for connects, bounded by the connect's budget.
//!
//! The system resolver (`getaddrinfo`) blocks for as long as the resolver
//! configuration lets it (glibc: `timeout:5 attempts:2`, 10 s and more per
//! name), and no deadline can be given to it. So a lookup runs on a helper
//! thread of its own and the connecting thread waits for it at most what its
//! budget allows; a lookup that outlives its waiter finishes in the
//! background and its answer still lands in the cache.
//!
//! The cache keeps the last answer of each name:
//! - an answer younger than `max_age` is used without asking again;
//! - an older answer is used at once while the name is asked again in the
//!   background: a connect after a reset (every connection closed at once,
//!   the resolver silent) must not spend its call's budget on lookups, one
//!   name after another, when the last known addresses still answer;
//! - an answer whose addresses all failed to connect (a failover or a
//!   replaced node may have moved the name) is asked again, waiting at most
//!   half the budget, so that the other half is left for the connect to the
//!   known addresses if the resolver does not answer;
//! - a name that stops resolving keeps its last known addresses, reported
//!   once (one warn line: when a lookup fails, or has been waited for half
//!   a budget) until it resolves again (one info line); while it fails,
//!   connects use the known addresses without waiting and the name is asked
//!   again in the background at most every `retry`;
//! - a name never resolved fails the connect: `ORS_ERR_TIMEOUT` when the
//!   resolver does not answer within the budget, `ORS_ERR_CONNECTION` when
//!   it says the name does not exist.
//!
//! Bounds: one lookup in flight per name (waiters join it), at most
//! `max_names` names (the least recently used one without a lookup in
//! flight makes room), so at most `max_names` helper threads ever exist, and
//! at most `MAX_ADDRS` addresses per answer.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};

use super::wait::{Late, SLICE};
use crate::error::{Error, ErrorKind, Result};
use crate::fork;

/// Addresses kept of one answer (a managed service's configuration endpoint
/// answers with every node; the connect tries them in turn).
const MAX_ADDRS: usize = 16;

/// How long answers are trusted and how much is kept.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// An answer older than this is asked again at the next connect.
    pub max_age: Duration,
    /// While a name does not resolve, how often it is asked again.
    pub retry: Duration,
    /// Names kept (and so helper threads at most).
    pub max_names: usize,
}

impl Limits {
    pub(super) const DEFAULT: Limits = Limits {
        max_age: Duration::from_secs(5),
        retry: Duration::from_secs(1),
        max_names: 256,
    };
}

/// What a lookup answers: the addresses, or why there are none.
type Answer = std::result::Result<Arc<[IpAddr]>, String>;

/// The lookup function: the system resolver, or a stand-in in unit tests.
type LookupFn = dyn Fn(&str) -> io::Result<Vec<IpAddr>> + Send + Sync;

/// One lookup in flight, shared by its helper thread and its waiters.
struct Pending {
    answer: Mutex<Option<Answer>>,
    done: Condvar,
    /// A lookup started before a fork has no thread in the child: it is
    /// abandoned there.
    fork_generation: u64,
}

/// The last known addresses of a name.
struct Known {
    addrs: Arc<[IpAddr]>,
    at: Instant,
}

#[derive(Default)]
struct Entry {
    known: Option<Known>,
    lookup: Option<Arc<Pending>>,
    /// When the last lookup started (paces the retries of a failing name).
    started: Option<Instant>,
    /// A connect to every known address failed: ask again before the next.
    suspect: bool,
    /// The name stopped resolving and this was reported (once).
    failing: bool,
    used: Option<Instant>,
}

/// Host names and their addresses; one per process (`resolve`), others in
/// unit tests.
pub(super) struct Resolver {
    lookup: Arc<LookupFn>,
    limits: Limits,
    names: Arc<Mutex<HashMap<String, Entry>>>,
}

static SYSTEM: Lazy<Resolver> =
    Lazy::new(|| Resolver::new(Arc::new(system_lookup), Limits::DEFAULT));

/// The addresses of `host` (an IP address as it is), within `budget`,
/// asking `late` between slices of the wait.
pub(super) fn resolve(host: &str, budget: Duration, late: &mut Late<'_>) -> Result<Arc<[IpAddr]>> {
    SYSTEM.resolve(host, budget, late)
}

/// Every address of `host` failed to connect: its name is asked again
/// before the next connect.
pub(super) fn connect_failed(host: &str) {
    SYSTEM.connect_failed(host)
}

fn system_lookup(host: &str) -> io::Result<Vec<IpAddr>> {
    Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
}

impl Resolver {
    pub(super) fn new(lookup: Arc<LookupFn>, limits: Limits) -> Resolver {
        Resolver {
            lookup,
            limits,
            names: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub(super) fn resolve(
        &self,
        host: &str,
        budget: Duration,
        late: &mut Late<'_>,
    ) -> Result<Arc<[IpAddr]>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Arc::from([ip]));
        }
        let now = Instant::now();
        let (pending, known) = {
            let mut names = self.names.lock();
            let entry = self.entry(&mut names, host, now)?;
            if entry
                .lookup
                .as_ref()
                .is_some_and(|p| p.fork_generation != fork::generation())
            {
                entry.lookup = None;
            }
            let known = entry.known.as_ref().map(|k| k.addrs.clone());
            let fresh = entry
                .known
                .as_ref()
                .is_some_and(|k| now.duration_since(k.at) < self.limits.max_age);
            if let Some(addrs) = &known {
                if fresh && !entry.suspect {
                    return Ok(addrs.clone());
                }
                if entry.failing {
                    // Known to fail: no wait, a retry in the background now and then.
                    if entry.lookup.is_none()
                        && entry
                            .started
                            .is_none_or(|t| now.duration_since(t) >= self.limits.retry)
                    {
                        self.start(entry, host, now)?;
                    }
                    return Ok(addrs.clone());
                }
                if !entry.suspect {
                    // Aged: used as it is, asked again in the background.
                    match entry.started.filter(|_| entry.lookup.is_some()) {
                        None => {
                            self.start(entry, host, now)?;
                        }
                        Some(t) if now.duration_since(t) >= budget / 2 => {
                            let why = format!(
                                "the resolver gave no answer within {} ms",
                                now.duration_since(t).as_millis()
                            );
                            report_failing(entry, host, &why);
                        }
                        Some(_) => {}
                    }
                    return Ok(addrs.clone());
                }
            }
            let pending = match &entry.lookup {
                Some(p) => p.clone(),
                None => self.start(entry, host, now)?,
            };
            (pending, known)
        };
        // With addresses to fall back on, half the budget is left to connect.
        let wait = if known.is_some() { budget / 2 } else { budget };
        let answer = wait_for(&pending, now + wait, late)?;
        let (why, kind) = match answer {
            Some(Ok(addrs)) => return Ok(addrs),
            Some(Err(why)) => (why, ErrorKind::Connection),
            None => (
                format!("the resolver gave no answer within {} ms", wait.as_millis()),
                ErrorKind::Timeout,
            ),
        };
        let Some(addrs) = known else {
            return Err(Error::new(
                kind,
                format!("cannot resolve host '{host}': {why} (check the DNS resolver, /etc/resolv.conf, /etc/hosts)"),
            ));
        };
        if let Some(entry) = self.names.lock().get_mut(host) {
            report_failing(entry, host, &why);
        }
        Ok(addrs)
    }

    pub(super) fn connect_failed(&self, host: &str) {
        if let Some(entry) = self.names.lock().get_mut(host) {
            entry.suspect = true;
        }
    }

    /// The entry of `host`, made if new; a full cache first drops the least
    /// recently used name that has no lookup in flight.
    fn entry<'m>(
        &self,
        names: &'m mut HashMap<String, Entry>,
        host: &str,
        now: Instant,
    ) -> Result<&'m mut Entry> {
        if !names.contains_key(host) {
            if names.len() >= self.limits.max_names {
                let oldest = names
                    .iter()
                    .filter(|(_, e)| e.lookup.is_none())
                    .min_by_key(|(_, e)| e.used)
                    .map(|(name, _)| name.clone());
                let Some(oldest) = oldest else {
                    return Err(Error::new(
                        ErrorKind::LocalResource,
                        format!(
                            "cannot resolve host '{host}': {} host names are being resolved \
                             already",
                            names.len()
                        ),
                    ));
                };
                names.remove(&oldest);
            }
            names.insert(host.to_string(), Entry::default());
        }
        let entry = names.get_mut(host).expect("inserted above");
        entry.used = Some(now);
        Ok(entry)
    }

    /// Starts the lookup of `host` on a helper thread, which stores its
    /// answer in the cache and then wakes its waiters.
    fn start(&self, entry: &mut Entry, host: &str, now: Instant) -> Result<Arc<Pending>> {
        let pending = Arc::new(Pending {
            answer: Mutex::new(None),
            done: Condvar::new(),
            fork_generation: fork::generation(),
        });
        let lookup = self.lookup.clone();
        let names = self.names.clone();
        let mine = pending.clone();
        let name = host.to_string();
        std::thread::Builder::new()
            .name("ors-resolve".into())
            .spawn(move || {
                let answer: Answer = match lookup(&name) {
                    Ok(found) => {
                        // Without duplicates (an address per socket type), in order.
                        let mut addrs: Vec<IpAddr> = Vec::new();
                        for ip in found {
                            if !addrs.contains(&ip) && addrs.len() < MAX_ADDRS {
                                addrs.push(ip);
                            }
                        }
                        if addrs.is_empty() {
                            Err("the name has no address".to_string())
                        } else {
                            Ok(addrs.into())
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                store(&names, &name, &mine, &answer);
                *mine.answer.lock() = Some(answer);
                mine.done.notify_all();
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::LocalResource,
                    format!("cannot resolve host '{host}': cannot start a thread: {e}"),
                )
            })?;
        entry.lookup = Some(pending.clone());
        entry.started = Some(now);
        Ok(pending)
    }
}

/// A name with known addresses that does not resolve: said once, until it
/// resolves again.
fn report_failing(entry: &mut Entry, host: &str, why: &str) {
    if !entry.failing {
        entry.failing = true;
        tracing::warn!(
            host,
            "host name does not resolve ({why}): its last known addresses are used \
             until it resolves again"
        );
    }
}

/// A lookup's answer, into the cache (if the name is still there and this
/// is its lookup).
fn store(
    names: &Mutex<HashMap<String, Entry>>,
    host: &str,
    pending: &Arc<Pending>,
    answer: &Answer,
) {
    let mut names = names.lock();
    let Some(entry) = names.get_mut(host) else {
        return;
    };
    if !entry
        .lookup
        .as_ref()
        .is_some_and(|p| Arc::ptr_eq(p, pending))
    {
        return;
    }
    entry.lookup = None;
    if let (Err(why), Some(_)) = (answer, &entry.known) {
        report_failing(entry, host, why);
    }
    if let Ok(addrs) = answer {
        entry.known = Some(Known {
            addrs: addrs.clone(),
            at: Instant::now(),
        });
        entry.suspect = false;
        if entry.failing {
            entry.failing = false;
            tracing::info!(host, "host name resolves again");
        }
    }
}

/// Waits for `pending`'s answer until `until`, in slices, asking `late`
/// between them; `None` when the time is up first.
fn wait_for(pending: &Pending, until: Instant, late: &mut Late<'_>) -> Result<Option<Answer>> {
    let mut answer = pending.answer.lock();
    loop {
        if let Some(a) = answer.as_ref() {
            return Ok(Some(a.clone()));
        }
        let now = Instant::now();
        if now >= until {
            return Ok(None);
        }
        let slice = until.min(now + SLICE);
        pending.done.wait_until(&mut answer, slice);
        if answer.is_none() && Instant::now() < until {
            parking_lot::MutexGuard::unlocked(&mut answer, &mut *late)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::connection::wait::keep_waiting;

    /// A resolver over a table the test changes: a name maps to addresses,
    /// to an error, or to "hang" (no answer until released).
    struct Fake {
        table: Mutex<HashMap<String, Option<Vec<IpAddr>>>>,
        hang: Mutex<bool>,
        released: Condvar,
        calls: AtomicUsize,
    }

    impl Fake {
        fn new() -> Arc<Fake> {
            Arc::new(Fake {
                table: Mutex::new(HashMap::new()),
                hang: Mutex::new(false),
                released: Condvar::new(),
                calls: AtomicUsize::new(0),
            })
        }
        fn set(&self, name: &str, addrs: Option<&[&str]>) {
            self.table.lock().insert(
                name.to_string(),
                addrs.map(|a| a.iter().map(|s| s.parse().unwrap()).collect()),
            );
        }
        fn hang(&self, on: bool) {
            *self.hang.lock() = on;
            self.released.notify_all();
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
        fn resolver(self: &Arc<Self>, limits: Limits) -> Resolver {
            let fake = self.clone();
            Resolver::new(
                Arc::new(move |name: &str| {
                    fake.calls.fetch_add(1, Ordering::SeqCst);
                    let mut hang = fake.hang.lock();
                    while *hang {
                        fake.released.wait(&mut hang);
                    }
                    drop(hang);
                    match fake.table.lock().get(name) {
                        Some(Some(addrs)) => Ok(addrs.clone()),
                        _ => Err(io::Error::other("Name or service not known")),
                    }
                }),
                limits,
            )
        }
    }

    fn limits() -> Limits {
        Limits {
            max_age: Duration::from_millis(200),
            retry: Duration::from_millis(100),
            max_names: 4,
        }
    }

    fn resolve(r: &Resolver, host: &str, budget_ms: u64) -> Result<Vec<String>> {
        r.resolve(host, Duration::from_millis(budget_ms), &mut keep_waiting)
            .map(|a| a.iter().map(|ip| ip.to_string()).collect())
    }

    #[test]
    fn ip_addresses_are_not_looked_up() {
        let fake = Fake::new();
        let r = fake.resolver(limits());
        assert_eq!(resolve(&r, "127.0.0.11", 10).unwrap(), ["127.0.0.11"]);
        assert_eq!(resolve(&r, "::1", 10).unwrap(), ["::1"]);
        assert_eq!(fake.calls(), 0);
    }

    #[test]
    fn answers_are_cached_until_they_age_and_then_asked_again() {
        let fake = Fake::new();
        fake.set(
            "redis-cfg",
            Some(&["127.0.0.11", "127.0.0.12", "127.0.0.11"]),
        );
        let r = fake.resolver(limits());
        // Duplicates go, the order stays.
        assert_eq!(
            resolve(&r, "redis-cfg", 1000).unwrap(),
            ["127.0.0.11", "127.0.0.12"]
        );
        assert_eq!(resolve(&r, "redis-cfg", 1000).unwrap().len(), 2);
        assert_eq!(fake.calls(), 1, "a fresh answer is not asked again");
        fake.set("redis-cfg", Some(&["127.0.0.13"]));
        std::thread::sleep(Duration::from_millis(250));
        // Aged: used at once, asked again in the background.
        assert_eq!(resolve(&r, "redis-cfg", 1000).unwrap().len(), 2);
        let deadline = Instant::now() + Duration::from_secs(5);
        while resolve(&r, "redis-cfg", 1000).unwrap() != ["127.0.0.13"] {
            assert!(Instant::now() < deadline, "never asked again");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(fake.calls(), 2);
    }

    #[test]
    fn a_failed_connect_makes_the_name_asked_again() {
        let fake = Fake::new();
        fake.set("redis-1", Some(&["127.0.0.11"]));
        let r = fake.resolver(limits());
        resolve(&r, "redis-1", 1000).unwrap();
        // The node moved (a failover, a replaced node).
        fake.set("redis-1", Some(&["127.0.0.21"]));
        assert_eq!(resolve(&r, "redis-1", 1000).unwrap(), ["127.0.0.11"]);
        r.connect_failed("redis-1");
        assert_eq!(resolve(&r, "redis-1", 1000).unwrap(), ["127.0.0.21"]);
        assert_eq!(fake.calls(), 2);
    }

    #[test]
    fn a_silent_resolver_costs_at_most_the_budget() {
        let fake = Fake::new();
        fake.hang(true);
        let r = fake.resolver(limits());
        let started = Instant::now();
        let e = resolve(&r, "redis-1", 150).unwrap_err();
        let took = started.elapsed();
        assert_eq!(e.kind, ErrorKind::Timeout, "{}", e.message);
        assert!(
            e.message.contains("no answer within 150 ms"),
            "{}",
            e.message
        );
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        // Waiters join the lookup in flight: one helper thread per name.
        for _ in 0..5 {
            assert!(resolve(&r, "redis-1", 20).is_err());
        }
        assert_eq!(fake.calls(), 1);
        // Its answer, however late, lands in the cache.
        fake.set("redis-1", Some(&["127.0.0.11"]));
        fake.hang(false);
        let deadline = Instant::now() + Duration::from_secs(5);
        while r.names.lock()["redis-1"].known.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(resolve(&r, "redis-1", 10).unwrap(), ["127.0.0.11"]);
        assert_eq!(fake.calls(), 1);
    }

    #[test]
    fn a_name_that_stops_resolving_keeps_its_last_addresses() {
        let fake = Fake::new();
        fake.set("redis-2", Some(&["127.0.0.12"]));
        let r = fake.resolver(limits());
        resolve(&r, "redis-2", 1000).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        // The resolver stops answering: the first connect (after a reset,
        // say) uses the known address without waiting, and so do the next
        // ones; once the lookup has been waited for half a budget, the name
        // is reported as failing.
        fake.hang(true);
        let started = Instant::now();
        assert_eq!(resolve(&r, "redis-2", 200).unwrap(), ["127.0.0.12"]);
        let first = started.elapsed();
        assert!(first < Duration::from_millis(50), "{first:?}");
        assert!(!r.names.lock()["redis-2"].failing);
        std::thread::sleep(Duration::from_millis(110));
        assert_eq!(resolve(&r, "redis-2", 200).unwrap(), ["127.0.0.12"]);
        assert!(r.names.lock()["redis-2"].failing);
        let started = Instant::now();
        for _ in 0..20 {
            assert_eq!(resolve(&r, "redis-2", 200).unwrap(), ["127.0.0.12"]);
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(fake.calls(), 2, "one lookup in flight per name");
        // It answers "no such name": still the known address.
        fake.set("redis-2", None);
        fake.hang(false);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(resolve(&r, "redis-2", 200).unwrap(), ["127.0.0.12"]);
        // It resolves again, elsewhere: the next retry finds it.
        fake.set("redis-2", Some(&["127.0.0.22"]));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = resolve(&r, "redis-2", 200).unwrap();
            if got == ["127.0.0.22"] {
                break;
            }
            assert!(Instant::now() < deadline, "never re-resolved");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!r.names.lock()["redis-2"].failing);
    }

    #[test]
    fn a_name_never_resolved_fails_with_the_resolvers_reason() {
        let fake = Fake::new();
        let r = fake.resolver(limits());
        let e = resolve(&r, "redis-9", 1000).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Connection);
        assert!(
            e.message.contains("cannot resolve host 'redis-9'")
                && e.message.contains("Name or service not known"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_cache_holds_a_bounded_number_of_names() {
        let fake = Fake::new();
        for i in 0..10 {
            fake.set(&format!("n{i}"), Some(&["127.0.0.1"]));
        }
        let r = fake.resolver(limits());
        for i in 0..10 {
            resolve(&r, &format!("n{i}"), 1000).unwrap();
            assert!(r.names.lock().len() <= 4);
        }
        // The most recent names stay.
        assert!(r.names.lock().contains_key("n9"));
        // Names with a lookup in flight are never dropped: when all are,
        // a new name is refused instead of piling up threads.
        fake.hang(true);
        for i in 20..24 {
            let _ = resolve(&r, &format!("h{i}"), 5);
        }
        let e = resolve(&r, "h99", 5).unwrap_err();
        assert_eq!(e.kind, ErrorKind::LocalResource, "{}", e.message);
        // The last lookups run on threads that may not have started yet
        // (a loaded host, wine): wait for them, boundedly, then count.
        let until = Instant::now() + Duration::from_secs(2);
        while fake.calls() < 14 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(fake.calls(), 14);
        fake.hang(false);
    }

    #[test]
    fn late_ends_the_wait() {
        let fake = Fake::new();
        fake.hang(true);
        let r = fake.resolver(limits());
        let started = Instant::now();
        let mut asked = 0;
        let e = r
            .resolve("redis-3", Duration::from_secs(5), &mut || {
                asked += 1;
                Err(Error::new(ErrorKind::Cluster, "moved"))
            })
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cluster);
        assert_eq!(asked, 1);
        assert!(started.elapsed() < Duration::from_secs(1));
        fake.hang(false);
    }
}
