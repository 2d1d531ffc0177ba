//! Which slots a bulk read still has to read, who is reading which node,
//! and when a node has failed for too long. Pure bookkeeping, no I/O: the
//! workers claim work here and report what became of it.
//!
//! A slot is the unit of exactness: its sessions are handed on only once all
//! of them were read from the node that served it, so a slot whose read
//! failed (a failover, a migration, a lost connection) is simply read again,
//! whole, and no session is reported twice.

use std::time::{Duration, Instant};

use crate::cluster::topology::SlotMap;
use crate::config::NodeAddr;
use crate::error::{Error, ErrorKind};
use crate::keys::SLOT_COUNT;

/// Keys `CLUSTER GETKEYSINSLOT` is asked for at first; a slot that returns
/// this many is listed again with a larger count.
pub(crate) const FIRST_LISTING_COUNT: u32 = 1000;
/// The largest count asked for (a slot holding more keys than this, ours or
/// anyone's, cannot be listed whole).
pub(crate) const MAX_LISTING_COUNT: u32 = 1 << 24;

/// Workers reading one node at once: one pipelined connection per node
/// keeps up with the node, and a second reader adds batches in flight
/// (memory) for no clear gain (bench/README.md, "Restore").
pub(crate) const READERS_PER_NODE: usize = 1;

/// Work handed to one worker: slots all served by `node` in the map it
/// claimed them from, each with the count to list it with.
#[derive(Debug)]
pub(super) struct Work {
    pub node: NodeAddr,
    pub slots: Vec<(u16, u32)>,
}

#[derive(Debug)]
pub(super) enum Claim {
    Work(Work),
    /// Nothing to claim now: every node with slots left is being read by
    /// another worker or pausing after a failure. `unserved` slots have no
    /// master in the map (the map should be read again).
    Wait {
        unserved: bool,
    },
    /// Every slot is done (or the read failed or stopped).
    Finished,
}

pub(super) struct Plan {
    /// Slots not yet read.
    todo: Vec<bool>,
    /// Slots a worker is reading now (claimed, not yet reported).
    in_flight: Vec<bool>,
    left: usize,
    /// Listing counts above the first, for slots found to be large.
    counts: Vec<(u16, u32)>,
    /// Nodes a worker is reading now (one worker per node: one pipelined
    /// connection per node is what the node serves fastest).
    busy: Vec<NodeAddr>,
    /// Nodes that failed, since when, and not to be tried again before when.
    failing: Vec<Failing>,
    /// Since when some slot left has had no master in the map.
    unserved_since: Option<Instant>,
    /// How long a node may keep failing (`op-timeout`).
    give_up_after: Duration,
    /// Set once: the read's error (ends it).
    pub error: Option<Error>,
}

struct Failing {
    node: NodeAddr,
    since: Instant,
    not_before: Instant,
    pause: Duration,
    last: Error,
}

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(200);

impl Plan {
    pub(super) fn new(give_up_after: Duration) -> Plan {
        Plan {
            todo: vec![true; SLOT_COUNT],
            in_flight: vec![false; SLOT_COUNT],
            left: SLOT_COUNT,
            counts: Vec::new(),
            busy: Vec::new(),
            failing: Vec::new(),
            unserved_since: None,
            give_up_after,
            error: None,
        }
    }

    pub(super) fn slots_left(&self) -> usize {
        self.left
    }

    pub(super) fn is_finished(&self) -> bool {
        self.error.is_some() || self.left == 0
    }

    /// Up to `max_slots` slots left of one master that no worker reads now,
    /// the masters tried from `first` on (so that workers spread).
    pub(super) fn claim(
        &mut self,
        map: &SlotMap,
        first: usize,
        max_slots: usize,
        now: Instant,
    ) -> Claim {
        if self.is_finished() {
            return Claim::Finished;
        }
        let masters = map.masters.len();
        for i in 0..masters {
            let master = &map.masters[(first + i) % masters];
            if self.busy.iter().filter(|b| **b == master.addr).count() >= READERS_PER_NODE {
                continue;
            }
            if self
                .failing
                .iter()
                .any(|f| f.node == master.addr && now < f.not_before)
            {
                continue;
            }
            let mut slots = Vec::new();
            'ranges: for &(start, end) in &master.ranges {
                for slot in start..=end {
                    if self.todo[slot as usize] && !self.in_flight[slot as usize] {
                        self.in_flight[slot as usize] = true;
                        slots.push((slot, self.count_of(slot)));
                        if slots.len() >= max_slots {
                            break 'ranges;
                        }
                    }
                }
            }
            if !slots.is_empty() {
                self.busy.push(master.addr.clone());
                return Claim::Work(Work {
                    node: master.addr.clone(),
                    slots,
                });
            }
        }
        let unserved = (0..SLOT_COUNT as u16)
            .any(|slot| self.todo[slot as usize] && map.master_of(slot).is_none());
        if !unserved {
            self.unserved_since = None;
        } else {
            let since = *self.unserved_since.get_or_insert(now);
            if now.duration_since(since) >= self.give_up_after {
                let slots = self.describe_slots(|slot| map.master_of(slot).is_none());
                self.error = Some(Error::new(
                    ErrorKind::Cluster,
                    format!(
                        "slots {slots} had no master for {} ms (op-timeout); \
                         their sessions were not read",
                        self.give_up_after.as_millis()
                    ),
                ));
                return Claim::Finished;
            }
        }
        Claim::Wait { unserved }
    }

    fn count_of(&self, slot: u16) -> u32 {
        self.counts
            .iter()
            .find(|(s, _)| *s == slot)
            .map_or(FIRST_LISTING_COUNT, |(_, c)| *c)
    }

    /// What became of a claim, once per claim: `done` slots were read and
    /// handed on; the claim's other slots are to be read again (from
    /// whoever serves them then).
    pub(super) fn report(&mut self, work: &Work, done: &[u16]) {
        if let Some(i) = self.busy.iter().position(|b| *b == work.node) {
            self.busy.swap_remove(i);
        }
        for &(slot, _) in &work.slots {
            self.in_flight[slot as usize] = false;
        }
        for &slot in done {
            if std::mem::replace(&mut self.todo[slot as usize], false) {
                self.left -= 1;
            }
        }
        if !done.is_empty() {
            self.failing.retain(|f| f.node != work.node);
        }
    }

    /// A slot turned out larger than its listing count: list it again with
    /// a larger one.
    pub(super) fn grow_count(&mut self, slot: u16, listed: u32) -> Result<(), Error> {
        if listed >= MAX_LISTING_COUNT {
            return Err(Error::new(
                ErrorKind::Server,
                format!(
                    "slot {slot} holds more than {MAX_LISTING_COUNT} keys: it cannot be listed"
                ),
            ));
        }
        let count = listed.saturating_mul(16).min(MAX_LISTING_COUNT);
        match self.counts.iter_mut().find(|(s, _)| *s == slot) {
            Some(entry) => entry.1 = count,
            None => self.counts.push((slot, count)),
        }
        Ok(())
    }

    /// `node` failed (no answer, a lost connection, a transient cluster
    /// state) in a read that began at `began` (its claim reported): it
    /// pauses, growing, before it is claimed again. Once it has failed for
    /// `give_up_after` since the first failed read began, without a slot
    /// read, the read fails with an error naming the node and the slots it
    /// still holds in `map`.
    pub(super) fn node_failed(
        &mut self,
        map: &SlotMap,
        node: &NodeAddr,
        error: Error,
        began: Instant,
        now: Instant,
    ) {
        let entry = match self.failing.iter_mut().position(|f| f.node == *node) {
            Some(i) => &mut self.failing[i],
            None => {
                self.failing.push(Failing {
                    node: node.clone(),
                    since: began,
                    not_before: now,
                    pause: FIRST_PAUSE,
                    last: error.clone(),
                });
                self.failing.last_mut().expect("just pushed")
            }
        };
        entry.not_before = now + entry.pause;
        entry.pause = (entry.pause * 2).min(MAX_PAUSE);
        entry.last = error;
        if now.duration_since(entry.since) < self.give_up_after {
            return;
        }
        let mut error = entry.last.clone();
        let slots =
            self.describe_slots(|slot| map.master_of(slot).is_some_and(|m| m.addr == *node));
        error.message = format!(
            "node {node} failed for {} ms (op-timeout) and still serves slots {slots}, \
             whose sessions were not read; last error: {}",
            self.give_up_after.as_millis(),
            error.message
        );
        self.error = Some(error);
    }

    /// When the earliest pausing node may be claimed again.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.failing.iter().map(|f| f.not_before).min()
    }

    /// The slots left for which `pick` holds, as ranges (`0-5460, 10923`),
    /// at most a few ranges spelled out.
    fn describe_slots(&self, pick: impl Fn(u16) -> bool) -> String {
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for slot in 0..SLOT_COUNT as u16 {
            if !self.todo[slot as usize] || !pick(slot) {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => ranges.push((slot, slot)),
            }
        }
        const SHOWN: usize = 8;
        let mut text: Vec<String> = ranges
            .iter()
            .take(SHOWN)
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        if ranges.len() > SHOWN {
            text.push(format!("and {} more ranges", ranges.len() - SHOWN));
        }
        if text.is_empty() {
            "(none)".to_string()
        } else {
            text.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Value;

    /// A map of `masters` masters splitting the slots evenly, on ports 7000...
    fn map(owners: &[(u16, u16, u16)]) -> SlotMap {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(
            owners
                .iter()
                .map(|&(start, end, port)| {
                    Value::Array(vec![
                        Value::Int(start as i64),
                        Value::Int(end as i64),
                        Value::Array(vec![bulk("127.0.0.1"), Value::Int(port as i64)]),
                    ])
                })
                .collect(),
        );
        let asked = crate::config::NodeAddr::parse("127.0.0.1:7000").unwrap();
        SlotMap::parse(&reply, &asked).unwrap()
    }

    fn three() -> SlotMap {
        map(&[(0, 5460, 7000), (5461, 10922, 7001), (10923, 16383, 7002)])
    }

    fn work(claim: Claim) -> Work {
        match claim {
            Claim::Work(w) => w,
            other => panic!("expected work, got {other:?}"),
        }
    }

    #[test]
    fn each_master_is_read_by_at_most_readers_per_node_workers_and_no_slot_by_two() {
        let map = three();
        let now = Instant::now();
        let mut plan = Plan::new(Duration::from_secs(5));
        let claims: Vec<Work> = (0..3 * READERS_PER_NODE)
            .map(|_| work(plan.claim(&map, 0, 100, now)))
            .collect();
        for (i, w) in claims.iter().enumerate() {
            let port = 7000 + i / READERS_PER_NODE;
            assert_eq!(w.node.to_string(), format!("127.0.0.1:{port}"), "claim {i}");
            // A node's later readers get the slots after the earlier ones'.
            let readers_before = i - (i / READERS_PER_NODE) * READERS_PER_NODE;
            let first = [0, 5461, 10923][i / READERS_PER_NODE] + 100 * readers_before as u16;
            assert_eq!(w.slots[0], (first, FIRST_LISTING_COUNT), "claim {i}");
            assert_eq!(w.slots.len(), 100);
        }
        let mut all: Vec<u16> = claims
            .iter()
            .flat_map(|w| w.slots.iter().map(|s| s.0))
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a slot was claimed twice");
        assert!(matches!(
            plan.claim(&map, 0, 100, now),
            Claim::Wait { unserved: false }
        ));
        // Done slots are not claimed again; the claim's others are.
        let a = &claims[0];
        let done: Vec<u16> = a.slots[..60].iter().map(|s| s.0).collect();
        plan.report(a, &done);
        let again = work(plan.claim(&map, 0, 100, now));
        assert_eq!(again.slots[0].0, 60);
        let after = 100 * READERS_PER_NODE as u16;
        assert_eq!(
            again.slots[40].0, after,
            "slots 100..{after} are still claimed"
        );
        assert_eq!(plan.slots_left(), SLOT_COUNT - 60);
    }

    #[test]
    fn the_read_finishes_when_every_slot_is_done() {
        let map = three();
        let now = Instant::now();
        let mut plan = Plan::new(Duration::from_secs(5));
        for _ in 0..100 {
            match plan.claim(&map, 1, 4096, now) {
                Claim::Work(w) => {
                    let done: Vec<u16> = w.slots.iter().map(|s| s.0).collect();
                    plan.report(&w, &done);
                }
                Claim::Finished => break,
                Claim::Wait { .. } => panic!("nothing is busy"),
            }
        }
        assert_eq!(plan.slots_left(), 0);
        assert!(plan.is_finished() && plan.error.is_none());
    }

    #[test]
    fn a_failing_node_pauses_and_after_op_timeout_fails_the_read_naming_it() {
        let map = three();
        let t0 = Instant::now();
        let mut plan = Plan::new(Duration::from_millis(1000));
        let w = work(plan.claim(&map, 2, 10, t0));
        assert_eq!(w.node.to_string(), "127.0.0.1:7002");
        let lost = || Error::new(ErrorKind::Timeout, "no reply");
        plan.report(&w, &[]);
        plan.node_failed(&map, &w.node, lost(), t0, t0);
        assert!(plan.error.is_none());
        // Paused: the other masters are claimed, not this one.
        let other = work(plan.claim(&map, 2, 10, t0));
        assert_eq!(other.node.to_string(), "127.0.0.1:7000");
        plan.report(&other, &[]);
        let t1 = t0 + Duration::from_millis(50);
        let again = work(plan.claim(&map, 2, 10, t1));
        assert_eq!(again.node.to_string(), "127.0.0.1:7002");
        let t2 = t0 + Duration::from_millis(1000);
        plan.report(&again, &[]);
        plan.node_failed(&map, &again.node, lost(), t1, t2);
        let e = plan.error.clone().expect("failed for op-timeout");
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("node 127.0.0.1:7002"), "{}", e.message);
        assert!(e.message.contains("slots 10923-16383"), "{}", e.message);
        assert!(matches!(plan.claim(&map, 0, 10, t1), Claim::Finished));
    }

    #[test]
    fn a_slot_read_resets_its_nodes_failures() {
        let map = three();
        let t0 = Instant::now();
        let mut plan = Plan::new(Duration::from_millis(1000));
        let w = work(plan.claim(&map, 0, 10, t0));
        plan.report(&w, &[]);
        plan.node_failed(
            &map,
            &w.node,
            Error::new(ErrorKind::Connection, "reset"),
            t0,
            t0,
        );
        let t1 = t0 + Duration::from_millis(900);
        let w = work(plan.claim(&map, 0, 10, t1));
        plan.report(&w, &[w.slots[0].0]);
        let w = work(plan.claim(&map, 0, 10, t1));
        plan.report(&w, &[]);
        let t2 = t0 + Duration::from_millis(1500);
        plan.node_failed(
            &map,
            &w.node,
            Error::new(ErrorKind::Connection, "reset"),
            t2,
            t2,
        );
        assert!(plan.error.is_none());
    }

    #[test]
    fn unserved_slots_wait_then_fail_the_read() {
        let map = map(&[(0, 16000, 7000)]);
        let t0 = Instant::now();
        let mut plan = Plan::new(Duration::from_millis(500));
        let w = work(plan.claim(&map, 0, 20000, t0));
        let done: Vec<u16> = w.slots.iter().map(|s| s.0).collect();
        plan.report(&w, &done);
        assert!(matches!(
            plan.claim(&map, 0, 10, t0),
            Claim::Wait { unserved: true }
        ));
        assert!(matches!(
            plan.claim(&map, 0, 10, t0 + Duration::from_millis(500)),
            Claim::Finished
        ));
        let e = plan.error.unwrap();
        assert_eq!(e.kind, ErrorKind::Cluster);
        assert!(e.message.contains("slots 16001-16383"), "{}", e.message);
    }

    #[test]
    fn large_slots_are_listed_again_with_a_larger_count() {
        let map = three();
        let now = Instant::now();
        let mut plan = Plan::new(Duration::from_secs(5));
        let w = work(plan.claim(&map, 0, 1, now));
        plan.grow_count(0, FIRST_LISTING_COUNT).unwrap();
        plan.report(&w, &[]);
        let w = work(plan.claim(&map, 0, 1, now));
        assert_eq!(w.slots, [(0, FIRST_LISTING_COUNT * 16)]);
        assert!(plan.grow_count(0, MAX_LISTING_COUNT).is_err());
    }
}
