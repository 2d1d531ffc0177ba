//! The process's one slot map (slot -> master), read from `CLUSTER SLOTS`.
//!
//! `CLUSTER SLOTS` exists in every cluster-capable Redis (3.0 on); its node
//! entries grew over time (node ids from 3.2 on, host names and a metadata
//! map from 7.0 on), so the first two fields of each entry are relied on, and
//! the metadata's `ip` only for a node whose endpoint is `?` (see `node_of`).
//!
//! Threads keep an `Arc` of the map they route with and compare its epoch with
//! an atomic counter on each call: no lock on the hot path. A refresh is
//! single-flight (one thread asks the cluster, the others wait for its answer
//! or go on with a direct redirect) and rate-limited, so that many threads
//! that hit MOVED at once cause one `CLUSTER SLOTS`, not one each.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::health::{Health, NodeHealth};
use crate::config::NodeAddr;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::SLOT_COUNT;
use crate::reply::Value;

/// At most one slot-map reload per interval, whatever the number of threads.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);
/// While some thread waits on a late reply, the map is re-read at most this
/// often (a failover is then seen within this, plus a slice of the wait).
const LATE_REFRESH_INTERVAL: Duration = Duration::from_millis(50);
const UNSERVED: u16 = u16::MAX;

/// A master with the slots it serves and its replicas.
#[derive(Debug, Clone)]
pub struct Master {
    pub addr: NodeAddr,
    pub replicas: Vec<NodeAddr>,
    pub ranges: Vec<(u16, u16)>,
}

/// An immutable snapshot of who serves which slot.
#[derive(Debug)]
pub struct SlotMap {
    /// Its place in the `Topology`'s sequence of maps (0 until installed):
    /// a newer map has a higher one.
    pub epoch: u64,
    /// The masters that serve slots, each with its ranges and replicas.
    pub masters: Vec<Master>,
    slots: Vec<u16>,
    /// Each master's health, in `masters`' order, once the map is
    /// installed in a `Topology` (empty before: `route` then finds none).
    health: Vec<Arc<NodeHealth>>,
}

impl SlotMap {
    /// Parses a `CLUSTER SLOTS` reply; `asked` is the node that sent it (see
    /// `NodeAddr::reported` for an endpoint without a host).
    pub fn parse(reply: &Value, asked: &NodeAddr) -> Result<SlotMap> {
        let bad = |what: &str| {
            Error::new(
                ErrorKind::Cluster,
                format!("unexpected CLUSTER SLOTS reply from {asked}: {what}"),
            )
        };
        let Value::Array(ranges) = reply else {
            return Err(bad("not an array"));
        };
        // Each range holds a slot, so there are no more ranges (and no more
        // masters) than slots: a master's index then fits the map's u16
        // entries and never meets UNSERVED.
        if ranges.len() > SLOT_COUNT {
            return Err(bad(&format!(
                "{} slot ranges, for {SLOT_COUNT} slots",
                ranges.len()
            )));
        }
        let mut masters: Vec<Master> = Vec::new();
        let mut index_of: HashMap<NodeAddr, u16> = HashMap::new();
        let mut slots = vec![UNSERVED; SLOT_COUNT];
        for range in ranges {
            let Value::Array(fields) = range else {
                return Err(bad("a range is not an array"));
            };
            if fields.len() < 3 {
                return Err(bad("a range has fewer than 3 fields"));
            }
            let start = int_of(&fields[0]).ok_or_else(|| bad("bad start slot"))?;
            let end = int_of(&fields[1]).ok_or_else(|| bad("bad end slot"))?;
            if start < 0 || end < start || end >= SLOT_COUNT as i64 {
                return Err(bad("slot range out of bounds"));
            }
            let master = node_of(&fields[2], asked).ok_or_else(|| bad("bad master entry"))?;
            let replicas: Vec<NodeAddr> = fields[3..]
                .iter()
                .filter_map(|f| node_of(f, asked))
                .collect();
            let index = match index_of.get(&master) {
                Some(&i) => i,
                None => {
                    // Below SLOT_COUNT: checked on the number of ranges above.
                    let i = masters.len() as u16;
                    index_of.insert(master.clone(), i);
                    masters.push(Master {
                        addr: master,
                        replicas: Vec::new(),
                        ranges: Vec::new(),
                    });
                    i
                }
            };
            let m = &mut masters[usize::from(index)];
            m.ranges.push((start as u16, end as u16));
            for r in replicas {
                if !m.replicas.contains(&r) {
                    m.replicas.push(r);
                }
            }
            for slot in &mut slots[start as usize..=end as usize] {
                *slot = index;
            }
        }
        masters.iter_mut().for_each(|m| m.ranges.sort_unstable());
        Ok(SlotMap {
            epoch: 0,
            masters,
            slots,
            health: Vec::new(),
        })
    }

    /// The master that serves `slot`, if any does.
    pub fn master_of(&self, slot: u16) -> Option<&Master> {
        match self.slots.get(slot as usize) {
            Some(&i) if i != UNSERVED => self.masters.get(i as usize),
            _ => None,
        }
    }

    /// The master of `slot` and its health (a map installed in a
    /// `Topology` has both).
    #[inline]
    pub fn route(&self, slot: u16) -> Option<(&Master, &Arc<NodeHealth>)> {
        match self.slots.get(slot as usize) {
            Some(&i) if i != UNSERVED => {
                let i = i as usize;
                Some((self.masters.get(i)?, self.health.get(i)?))
            }
            _ => None,
        }
    }

    /// Points each master at its health in `health`.
    fn attach(&mut self, health: &Health) {
        self.health = self.masters.iter().map(|m| health.of(&m.addr)).collect();
    }

    /// Whether `addr` is one of the masters.
    pub fn is_master(&self, addr: &NodeAddr) -> bool {
        self.masters.iter().any(|m| m.addr == *addr)
    }

    /// How many slots no master serves.
    pub fn unserved_slots(&self) -> usize {
        self.slots.iter().filter(|&&s| s == UNSERVED).count()
    }

    /// One line per master, for the init log; `replicas` tells how many
    /// replicas a master has (CLUSTER SLOTS may not list all of them yet).
    pub fn describe(&self, replicas: impl Fn(&Master) -> usize) -> String {
        let mut lines = Vec::new();
        for m in &self.masters {
            let ranges: Vec<String> = m
                .ranges
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            lines.push(format!(
                "master {} slots [{}] replicas {}",
                m.addr,
                ranges.join(","),
                replicas(m)
            ));
        }
        lines.join("; ")
    }
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// A node entry: `[endpoint, port, id?, metadata?]`. The endpoint is what
/// `cluster-preferred-endpoint-type` says: an IP address, a host name, or
/// none (NULL for `unknown-endpoint`, `?` for a node without a host name
/// when host names are preferred, empty for a node that does not know its
/// address yet). A node without an endpoint is on the asked node's host,
/// except that `?` takes the metadata's `ip` when there is one: the asked
/// node's host may be a name that resolves to every node (a managed
/// service's configuration endpoint), or another node's host name.
fn node_of(v: &Value, asked: &NodeAddr) -> Option<NodeAddr> {
    let Value::Array(f) = v else { return None };
    let host = match f.first()? {
        Value::Nil => String::new(),
        endpoint => text_of(endpoint)?,
    };
    let port = int_of(f.get(1)?)?;
    let port = u16::try_from(port).ok().filter(|&p| p != 0)?;
    if host == "?" {
        if let Some(ip) = f.get(3).and_then(|meta| metadata(meta, "ip")) {
            if !ip.is_empty() && ip != "?" {
                return Some(NodeAddr { host: ip, port });
            }
        }
    }
    Some(NodeAddr::reported(&host, port, asked))
}

/// A field of a node's metadata map (RESP2: a flat array of names and values).
fn metadata(meta: &Value, name: &str) -> Option<String> {
    let Value::Array(pairs) = meta else {
        return None;
    };
    pairs
        .chunks_exact(2)
        .find(|pair| text_of(&pair[0]).as_deref() == Some(name))
        .and_then(|pair| text_of(&pair[1]))
}

/// The rate limit: whether `interval` has passed since `last` (which then
/// becomes now).
fn due(last: &mut Option<Instant>, interval: Duration) -> bool {
    if last.is_some_and(|t| t.elapsed() < interval) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Answered,
    NoAnswer,
    OutOfTime,
}

/// Whom a refresh asks, in order: the masters (starting at `rotation`, so
/// that refreshes spread over the cluster), then every replica, then the
/// seeds; each node once, and `avoid` (a node that just failed) last.
fn refresh_candidates(
    map: &SlotMap,
    seeds: &[NodeAddr],
    rotation: usize,
    avoid: Option<&NodeAddr>,
) -> Vec<NodeAddr> {
    let mut candidates: Vec<NodeAddr> = map.masters.iter().map(|m| m.addr.clone()).collect();
    if !candidates.is_empty() {
        let start = rotation % candidates.len();
        candidates.rotate_left(start);
    }
    for m in &map.masters {
        candidates.extend(m.replicas.iter().cloned());
    }
    candidates.extend(seeds.iter().cloned());
    let mut seen = BTreeSet::new();
    candidates.retain(|c| seen.insert(c.clone()));
    if let Some(avoid) = avoid {
        // Stable partition: the failed node goes last.
        let (last, mut first): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|c| c == avoid);
        first.extend(last);
        candidates = first;
    }
    candidates
}

/// Whom a refresh for a late reply from `silent` asks: the replicas of
/// `silent` first (the one promoted reports the new map before anyone),
/// then every other node; never `silent`, which is not answering.
fn late_candidates(map: &SlotMap, seeds: &[NodeAddr], silent: &NodeAddr) -> Vec<NodeAddr> {
    let mut candidates: Vec<NodeAddr> = map
        .masters
        .iter()
        .filter(|m| m.addr == *silent)
        .flat_map(|m| m.replicas.iter().cloned())
        .collect();
    candidates.extend(refresh_candidates(map, seeds, 0, None));
    let mut seen = BTreeSet::new();
    candidates.retain(|c| c != silent && seen.insert(c.clone()));
    candidates
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    /// The last refresh made for a late reply (`refresh_while_late`).
    last_late: Option<Instant>,
    /// Rotates the node asked first, so refreshes spread over the cluster.
    next_candidate: usize,
}

/// The shared topology: the current map, its epoch, and the refresh gate.
pub struct Topology {
    /// `redis-nodes`, asked last by a refresh; `ors_redis_reconfigure` may
    /// replace them.
    seeds: RwLock<Arc<[NodeAddr]>>,
    current: RwLock<Arc<SlotMap>>,
    epoch: AtomicU64,
    refresh: Mutex<RefreshState>,
    refreshes: AtomicU64,
    /// Every node's health: the maps' masters point into it.
    pub health: Health,
}

impl Topology {
    pub fn new(seeds: Vec<NodeAddr>, mut initial: SlotMap) -> Self {
        initial.epoch = 1;
        let health = Health::default();
        initial.attach(&health);
        Topology {
            seeds: RwLock::new(seeds.into()),
            current: RwLock::new(Arc::new(initial)),
            epoch: AtomicU64::new(1),
            refresh: Mutex::new(RefreshState::default()),
            refreshes: AtomicU64::new(0),
            health,
        }
    }

    /// Replaces the seeds that refreshes ask after every node of the map.
    pub fn set_seeds(&self, seeds: &[NodeAddr]) {
        *self.seeds.write() = seeds.into();
    }

    fn seeds(&self) -> Arc<[NodeAddr]> {
        self.seeds.read().clone()
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn current(&self) -> Arc<SlotMap> {
        self.current.read().clone()
    }

    /// How many times the map was reloaded since init.
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Reloads the map unless another thread already did since `seen_epoch`
    /// or one was attempted less than `MIN_REFRESH_INTERVAL` ago. `avoid` is a
    /// node that just failed: it is asked last. `fetch` runs `CLUSTER SLOTS`
    /// on a node over the calling thread's own connections.
    pub fn refresh(
        &self,
        seen_epoch: u64,
        avoid: Option<&NodeAddr>,
        deadline: Instant,
        fetch: &mut dyn FnMut(&NodeAddr) -> Result<Value>,
    ) {
        // Why: a call whose deadline has passed (its last attempt timed out
        // on a frozen node) can ask no node; it must neither use up the
        // rate-limit slot nor log that no node answered.
        if Instant::now() >= deadline {
            return;
        }
        // Single flight: if another thread is refreshing, wait for its result.
        let mut state = match self.refresh.try_lock() {
            Some(state) => state,
            None => {
                drop(self.refresh.try_lock_until(deadline));
                return;
            }
        };
        if self.epoch() != seen_epoch {
            return;
        }
        if !due(&mut state.last_attempt, MIN_REFRESH_INTERVAL) {
            return;
        }
        let old = self.current();
        let rotation = state.next_candidate;
        state.next_candidate = state.next_candidate.wrapping_add(1);
        let mut candidates = refresh_candidates(&old, &self.seeds(), rotation, avoid);
        // Nodes marked unavailable are asked last: each would cost a wait.
        let (sick, mut well): (Vec<_>, Vec<_>) =
            candidates.into_iter().partition(|c| self.health.is_sick(c));
        well.extend(sick);
        candidates = well;
        if self.ask(&old, &candidates, deadline, fetch) == Asked::NoAnswer {
            tracing::warn!("slot map refresh: no node answered CLUSTER SLOTS");
        }
    }

    /// Re-reads the map for a thread whose reply from `silent` is late: at
    /// most every `LATE_REFRESH_INTERVAL` process-wide, never waiting for
    /// another thread's refresh (the caller goes back to its wait), asking
    /// the silent node's replicas first and never the silent node itself.
    pub fn refresh_while_late(
        &self,
        silent: &NodeAddr,
        deadline: Instant,
        fetch: &mut dyn FnMut(&NodeAddr) -> Result<Value>,
    ) {
        if Instant::now() >= deadline {
            return;
        }
        let Some(mut state) = self.refresh.try_lock() else {
            return;
        };
        if !due(&mut state.last_late, LATE_REFRESH_INTERVAL) {
            return;
        }
        let old = self.current();
        let mut candidates = late_candidates(&old, &self.seeds(), silent);
        // Never a node marked unavailable: the caller is waiting already,
        // and one more wait on a silent node is what it must not get.
        candidates.retain(|c| !self.health.is_sick(c));
        if self.ask(&old, &candidates, deadline, fetch) == Asked::NoAnswer {
            tracing::debug!(
                node = %silent,
                "slot map refresh while a reply is late: no node answered"
            );
        }
    }

    /// Asks `candidates` in turn for `CLUSTER SLOTS` until one gives a map,
    /// and installs it.
    fn ask(
        &self,
        old: &SlotMap,
        candidates: &[NodeAddr],
        deadline: Instant,
        fetch: &mut dyn FnMut(&NodeAddr) -> Result<Value>,
    ) -> Asked {
        for (asked, node) in candidates.iter().enumerate() {
            if Instant::now() >= deadline {
                // Why: running out of the call's time is not "no node answered".
                tracing::debug!(asked, "slot map refresh: the call's deadline passed");
                return Asked::OutOfTime;
            }
            match fetch(node).and_then(|reply| SlotMap::parse(&reply, node)) {
                Ok(map) if map.masters.is_empty() => {
                    tracing::debug!(node = %node, "CLUSTER SLOTS: no slots assigned, asking another node");
                }
                Ok(map) => {
                    self.install(old, map, node);
                    return Asked::Answered;
                }
                Err(e) => {
                    tracing::debug!(node = %node, error = %e, "slot map refresh: node did not answer");
                }
            }
        }
        Asked::NoAnswer
    }

    fn install(&self, old: &SlotMap, mut map: SlotMap, from: &NodeAddr) {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let changed = (0..SLOT_COUNT as u16)
            .filter(|&s| old.master_of(s).map(|m| &m.addr) != map.master_of(s).map(|m| &m.addr))
            .count();
        if changed == 0 {
            tracing::debug!(node = %from, "slot map refreshed: unchanged");
            return;
        }
        let gone: Vec<String> = old
            .masters
            .iter()
            .filter(|m| !map.is_master(&m.addr))
            .map(|m| m.addr.to_string())
            .collect();
        let new: Vec<String> = map
            .masters
            .iter()
            .filter(|m| !old.is_master(&m.addr))
            .map(|m| m.addr.to_string())
            .collect();
        if !gone.is_empty() || !new.is_empty() {
            tracing::warn!(
                node = %from,
                slots_moved = changed,
                "cluster masters changed (failover?): no longer master [{}], new master [{}]",
                gone.join(","),
                new.join(",")
            );
        } else {
            tracing::info!(node = %from, slots_moved = changed, "slot map changed (resharding)");
        }
        map.attach(&self.health);
        let mut current = self.current.write();
        map.epoch = current.epoch + 1;
        let epoch = map.epoch;
        *current = Arc::new(map);
        self.epoch.store(epoch, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn node(host: &str, port: i64, extra: Vec<Value>) -> Value {
        let mut f = vec![bulk(host), Value::Int(port)];
        f.extend(extra);
        Value::Array(f)
    }

    fn asked() -> NodeAddr {
        NodeAddr::parse("127.0.0.1:7000").unwrap()
    }

    /// A reply of one one-slot range per entry of `slots`, each with a
    /// master of its own.
    fn one_master_per_range(slots: impl Iterator<Item = usize>) -> Value {
        Value::Array(
            slots
                .enumerate()
                .map(|(i, slot)| {
                    let host = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
                    Value::Array(vec![
                        Value::Int(slot as i64),
                        Value::Int(slot as i64),
                        node(&host, 7000, vec![]),
                    ])
                })
                .collect(),
        )
    }

    #[test]
    fn more_ranges_than_slots_is_a_bad_reply() {
        let map = SlotMap::parse(&one_master_per_range(0..SLOT_COUNT), &asked()).unwrap();
        assert_eq!(map.masters.len(), SLOT_COUNT);
        assert_eq!(
            map.master_of(16383).unwrap().addr.to_string(),
            "10.0.63.255:7000"
        );
        // One range more (slot 0 again, by a master of its own).
        let reply = one_master_per_range((0..SLOT_COUNT).chain([0]));
        let e = SlotMap::parse(&reply, &asked()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cluster);
        assert!(e.message.contains("16385 slot ranges"), "{}", e.message);
    }

    #[test]
    fn parses_redis_3_0_entries_without_ids() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8191),
                node("127.0.0.1", 7000, vec![]),
                node("127.0.0.1", 7003, vec![]),
            ]),
            Value::Array(vec![
                Value::Int(8192),
                Value::Int(16383),
                node("127.0.0.1", 7001, vec![]),
            ]),
        ]);
        let map = SlotMap::parse(&reply, &asked()).unwrap();
        assert_eq!(map.masters.len(), 2);
        assert_eq!(map.master_of(0).unwrap().addr.to_string(), "127.0.0.1:7000");
        assert_eq!(
            map.master_of(8191).unwrap().addr.to_string(),
            "127.0.0.1:7000"
        );
        assert_eq!(
            map.master_of(8192).unwrap().addr.to_string(),
            "127.0.0.1:7001"
        );
        assert_eq!(map.master_of(0).unwrap().replicas[0].port, 7003);
        assert_eq!(map.unserved_slots(), 0);
    }

    #[test]
    fn parses_redis_7_entries_with_ids_and_metadata() {
        // RESP2 sends the metadata map as a flat array.
        let meta = Value::Array(vec![bulk("hostname"), bulk("node-a")]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5),
                node("127.0.0.1", 7000, vec![bulk("abc123"), meta.clone()]),
                node("127.0.0.1", 7003, vec![bulk("def456"), meta]),
            ]),
            // Same master, a second range.
            Value::Array(vec![
                Value::Int(10),
                Value::Int(10),
                node("127.0.0.1", 7000, vec![bulk("abc123")]),
            ]),
            // Unknown endpoint: the host that was asked.
            Value::Array(vec![
                Value::Int(11),
                Value::Int(20),
                node("?", 7002, vec![]),
            ]),
            Value::Array(vec![Value::Int(21), Value::Int(30), node("", 7004, vec![])]),
            // NULL (unknown-endpoint): the host asked, whatever the metadata.
            Value::Array(vec![
                Value::Int(31),
                Value::Int(31),
                Value::Array(vec![
                    Value::Nil,
                    Value::Int(7005),
                    bulk("ghi789"),
                    Value::Array(vec![bulk("ip"), bulk("10.0.0.5")]),
                ]),
            ]),
        ]);
        let map = SlotMap::parse(&reply, &asked()).unwrap();
        assert_eq!(map.masters.len(), 4);
        assert_eq!(map.masters[0].ranges, vec![(0, 5), (10, 10)]);
        assert!(map.master_of(6).is_none());
        assert_eq!(
            map.master_of(15).unwrap().addr.to_string(),
            "127.0.0.1:7002"
        );
        assert_eq!(
            map.master_of(25).unwrap().addr.to_string(),
            "127.0.0.1:7004"
        );
        assert_eq!(
            map.master_of(31).unwrap().addr.to_string(),
            "127.0.0.1:7005"
        );
        assert_eq!(map.unserved_slots(), 16384 - 6 - 1 - 10 - 10 - 1);
        assert!(map
            .describe(|m| m.replicas.len())
            .contains("master 127.0.0.1:7000 slots [0-5,10] replicas 1"));
    }

    #[test]
    fn host_name_endpoints_and_their_unknown_ones() {
        // cluster-preferred-endpoint-type hostname: the name, the ip in the
        // metadata; a node without a name is `?`, and is reached at its ip,
        // not at the asked node's host (here a name resolving to every node).
        let meta = |ip: &str| Value::Array(vec![bulk("ip"), bulk(ip)]);
        let entry = |host: &str, port, id: &str, m: Value| node(host, port, vec![bulk(id), m]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8191),
                entry("redis-1", 6379, "a", meta("10.0.0.1")),
                entry("redis-4", 6379, "d", meta("10.0.0.4")),
            ]),
            Value::Array(vec![
                Value::Int(8192),
                Value::Int(16383),
                entry("?", 6380, "b", meta("10.0.0.2")),
                entry("?", 6381, "e", Value::Array(vec![])),
            ]),
        ]);
        let seed = NodeAddr::parse("redis-cfg.example:6379").unwrap();
        let map = SlotMap::parse(&reply, &seed).unwrap();
        assert_eq!(map.master_of(0).unwrap().addr.to_string(), "redis-1:6379");
        assert_eq!(map.master_of(0).unwrap().replicas[0].host, "redis-4");
        assert_eq!(
            map.master_of(9000).unwrap().addr.to_string(),
            "10.0.0.2:6380"
        );
        // No ip to go by: the asked node's host, as before.
        assert_eq!(
            map.master_of(9000).unwrap().replicas[0].to_string(),
            "redis-cfg.example:6381"
        );
    }

    #[test]
    fn rejects_garbage() {
        for reply in [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(1)])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(5),
                Value::Int(1),
                node("h", 1, vec![]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(16384),
                node("h", 1, vec![]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(1),
                node("h", 0, vec![]),
            ])]),
        ] {
            assert!(SlotMap::parse(&reply, &asked()).is_err(), "{reply:?}");
        }
    }

    fn one_master_map(port: i64) -> Value {
        Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(16383),
            node("127.0.0.1", port, vec![]),
        ])])
    }

    #[test]
    fn refresh_is_rate_limited_and_skips_when_someone_else_refreshed() {
        let seeds = vec![asked()];
        let topo = Topology::new(
            seeds,
            SlotMap::parse(&one_master_map(7000), &asked()).unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(1);
        let calls = std::cell::Cell::new(0);
        let mut fetch = |_: &NodeAddr| {
            calls.set(calls.get() + 1);
            Ok(one_master_map(7001))
        };
        topo.refresh(1, None, deadline, &mut fetch);
        assert_eq!(topo.epoch(), 2);
        assert_eq!(
            topo.current().master_of(0).unwrap().addr.to_string(),
            "127.0.0.1:7001"
        );
        // A thread that saw epoch 1 does not refresh again: the map is newer.
        topo.refresh(1, None, deadline, &mut fetch);
        // Rate limit: right after a refresh, another is skipped.
        topo.refresh(2, None, deadline, &mut fetch);
        assert_eq!(calls.get(), 1);
        assert_eq!(topo.refresh_count(), 1);
        std::thread::sleep(MIN_REFRESH_INTERVAL);
        topo.refresh(2, None, deadline, &mut fetch);
        assert_eq!(calls.get(), 2);
        assert_eq!(topo.epoch(), 2, "an unchanged map keeps its epoch");
    }

    #[test]
    fn refresh_after_the_deadline_asks_nobody_and_keeps_the_rate_limit_slot() {
        let topo = Topology::new(
            vec![asked()],
            SlotMap::parse(&one_master_map(7000), &asked()).unwrap(),
        );
        let calls = std::cell::Cell::new(0);
        let mut fetch = |_: &NodeAddr| {
            calls.set(calls.get() + 1);
            Ok(one_master_map(7001))
        };
        topo.refresh(1, None, Instant::now(), &mut fetch);
        assert_eq!(calls.get(), 0);
        // A thread with time left is not rate-limited by the one without.
        topo.refresh(1, None, Instant::now() + Duration::from_secs(1), &mut fetch);
        assert_eq!(calls.get(), 1);
        assert_eq!(topo.epoch(), 2);
    }

    #[test]
    fn refresh_asks_the_failed_node_last() {
        let topo = Topology::new(
            vec![NodeAddr::parse("127.0.0.1:7005").unwrap()],
            SlotMap::parse(
                &Value::Array(vec![
                    Value::Array(vec![
                        Value::Int(0),
                        Value::Int(99),
                        node("127.0.0.1", 7000, vec![]),
                    ]),
                    Value::Array(vec![
                        Value::Int(100),
                        Value::Int(16383),
                        node("127.0.0.1", 7001, vec![]),
                    ]),
                ]),
                &asked(),
            )
            .unwrap(),
        );
        let mut asked_nodes = Vec::new();
        let mut fetch = |n: &NodeAddr| {
            asked_nodes.push(n.to_string());
            Err(Error::new(ErrorKind::Connection, "refused"))
        };
        topo.refresh(
            1,
            Some(&NodeAddr::parse("127.0.0.1:7000").unwrap()),
            Instant::now() + Duration::from_secs(1),
            &mut fetch,
        );
        assert_eq!(
            asked_nodes,
            ["127.0.0.1:7001", "127.0.0.1:7005", "127.0.0.1:7000"]
        );
        assert_eq!(topo.epoch(), 1);

        // New seeds (ors_redis_reconfigure): asked from the next refresh on.
        topo.set_seeds(&[NodeAddr::parse("127.0.0.1:7009").unwrap()]);
        asked_nodes.clear();
        std::thread::sleep(MIN_REFRESH_INTERVAL);
        let mut fetch = |n: &NodeAddr| {
            asked_nodes.push(n.to_string());
            Err(Error::new(ErrorKind::Connection, "refused"))
        };
        topo.refresh(1, None, Instant::now() + Duration::from_secs(1), &mut fetch);
        assert_eq!(
            asked_nodes.last().map(String::as_str),
            Some("127.0.0.1:7009")
        );
        assert!(
            !asked_nodes.iter().any(|n| n == "127.0.0.1:7005"),
            "{asked_nodes:?}"
        );
    }

    fn two_masters_with_replicas() -> SlotMap {
        let range = |start, end, master, replica| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                node("127.0.0.1", master, vec![]),
                node("127.0.0.1", replica, vec![]),
            ])
        };
        let reply = Value::Array(vec![
            range(0, 99, 7000, 7003),
            range(100, 16383, 7001, 7004),
        ]);
        SlotMap::parse(&reply, &asked()).unwrap()
    }

    #[test]
    fn a_late_reply_asks_the_silent_masters_replicas_first_and_never_the_silent_node() {
        let seeds = [
            NodeAddr::parse("127.0.0.1:7000").unwrap(),
            NodeAddr::parse("127.0.0.1:7009").unwrap(),
        ];
        let order: Vec<String> = late_candidates(
            &two_masters_with_replicas(),
            &seeds,
            &NodeAddr::parse("127.0.0.1:7001").unwrap(),
        )
        .iter()
        .map(|n| n.to_string())
        .collect();
        assert_eq!(
            order,
            [
                "127.0.0.1:7004",
                "127.0.0.1:7000",
                "127.0.0.1:7003",
                "127.0.0.1:7009"
            ]
        );
    }

    #[test]
    fn late_refreshes_are_rate_limited_and_install_the_promoted_map() {
        let topo = Topology::new(vec![asked()], two_masters_with_replicas());
        let deadline = Instant::now() + Duration::from_secs(1);
        let asked_nodes = std::cell::RefCell::new(Vec::new());
        let mut fetch = |n: &NodeAddr| {
            asked_nodes.borrow_mut().push(n.to_string());
            Ok(one_master_map(7004))
        };
        topo.refresh_while_late(
            &NodeAddr::parse("127.0.0.1:7001").unwrap(),
            deadline,
            &mut fetch,
        );
        topo.refresh_while_late(
            &NodeAddr::parse("127.0.0.1:7001").unwrap(),
            deadline,
            &mut fetch,
        );
        assert_eq!(*asked_nodes.borrow(), ["127.0.0.1:7004"]);
        assert_eq!(topo.epoch(), 2);
        assert_eq!(
            topo.current().master_of(500).unwrap().addr.to_string(),
            "127.0.0.1:7004"
        );
        std::thread::sleep(LATE_REFRESH_INTERVAL);
        topo.refresh_while_late(
            &NodeAddr::parse("127.0.0.1:7004").unwrap(),
            deadline,
            &mut fetch,
        );
        let asked_nodes = asked_nodes.borrow();
        assert_eq!(asked_nodes.len(), 2, "{asked_nodes:?}");
        assert_ne!(asked_nodes[1], "127.0.0.1:7004");
    }

    #[test]
    fn refreshes_never_wait_on_a_node_marked_unavailable() {
        let topo = Topology::new(vec![asked()], two_masters_with_replicas());
        let deadline = Instant::now() + Duration::from_secs(1);
        // Another master's reply is late; 7000 is marked unavailable.
        let sick = NodeAddr::parse("127.0.0.1:7000").unwrap();
        let e = Error::new(ErrorKind::Timeout, "no reply");
        topo.health.of(&sick).failed(&e, 1, None);
        let asked_nodes = std::cell::RefCell::new(Vec::new());
        let mut silent = |n: &NodeAddr| {
            asked_nodes.borrow_mut().push(n.to_string());
            Err(Error::new(ErrorKind::Timeout, "no reply"))
        };
        topo.refresh_while_late(
            &NodeAddr::parse("127.0.0.1:7001").unwrap(),
            deadline,
            &mut silent,
        );
        assert!(!asked_nodes.borrow().is_empty());
        assert!(
            !asked_nodes.borrow().contains(&"127.0.0.1:7000".to_string()),
            "{:?}",
            asked_nodes.borrow()
        );
        // A refresh after a failure asks it, but last.
        asked_nodes.borrow_mut().clear();
        topo.refresh(topo.epoch(), None, deadline, &mut silent);
        let asked_nodes = asked_nodes.borrow();
        assert_eq!(
            asked_nodes.last().map(String::as_str),
            Some("127.0.0.1:7000"),
            "{asked_nodes:?}"
        );
    }
}
