//! How long a request to a node may take, and what may end its wait early.
//!
//! Every request the library sends goes through `ConnectionSet::exchange`
//! with a `Budget`: the attempt's start, the call's deadline, how long one
//! reply may take, and a `Watch` that is looked at between slices of a wait
//! that runs long (connection/wire.rs). The watch is data, not a callback
//! built by the caller: what each kind means lives here.

use std::time::{Duration, Instant};

use super::health::NodeHealth;
use super::topology::Topology;
use crate::config::{Config, NodeAddr};
use crate::connection::{ConnectParams, NodeConnection};
use crate::error::{Cause, Error, ErrorKind, Result};
use crate::reply::Value;

/// What the node layer needs of the cluster to reach its nodes: the
/// process's slot map (with each node's health, `Topology::health`) and how
/// to connect. A `Client` lends one (`From<&Client>`, in client.rs); a test
/// makes its own, without a client.
#[derive(Clone, Copy)]
pub struct Reach<'a> {
    pub topology: &'a Topology,
    pub params: &'a ConnectParams,
}

/// One request's (or one pipelined batch's) time.
pub struct Budget<'a> {
    /// When the attempt began: a request that goes out in one write counts
    /// as sent then (no clock read on the hot path).
    pub started: Instant,
    /// Nothing waits past this: the call's `op-timeout`.
    pub deadline: Instant,
    /// How long one reply may take once its request went out
    /// (`redis-socket-timeout`, plus `wait-timeout` for a WAIT).
    pub reply: Duration,
    /// What may give the request up before `deadline`.
    pub watch: Watch<'a>,
}

impl<'a> Budget<'a> {
    /// `reply` from now for the reply, and at most that for everything.
    pub fn of(reply: Duration) -> Budget<'a> {
        let started = Instant::now();
        Budget {
            started,
            deadline: started + reply,
            reply,
            watch: Watch::Nothing,
        }
    }

    /// One request outside a routed call (a scan's page, an operator's
    /// question): the socket timeout for its reply, `op-timeout` for all of
    /// it, the connect included.
    pub fn of_request(config: &Config) -> Budget<'a> {
        Budget::until(Instant::now() + config.op_timeout, config.socket_timeout)
    }

    /// `reply` for the reply, never past `deadline`.
    pub fn until(deadline: Instant, reply: Duration) -> Budget<'a> {
        let started = Instant::now();
        Budget {
            started,
            deadline,
            reply: reply.min(deadline.saturating_duration_since(started)),
            watch: Watch::Nothing,
        }
    }

    /// The same budget, given up early as `watch` says.
    pub(crate) fn watching(mut self, watch: Watch<'a>) -> Budget<'a> {
        self.watch = watch;
        self
    }
}

/// Work that can be stopped (a bulk read): its error once it is.
pub(crate) type Stopped<'a> = dyn Fn() -> Option<Error> + 'a;

/// What may give a late request up before its budget runs out.
pub enum Watch<'a> {
    /// Nothing: the budget is waited out.
    Nothing,
    /// The request is for `slot`, routed with the slot map of `seen_epoch`:
    /// it is given up once a newer map serves the slot elsewhere, and
    /// meanwhile the map is re-read (process-wide, at a bounded rate) from
    /// the nodes that learn of a failover first, over fresh connections:
    /// never the silent node, never the connection that waits.
    ///
    /// With `fail_fast` (`node-fail-fast`), it is also given up once the
    /// node is marked unavailable (by another thread's request:
    /// cluster/health.rs).
    Slot {
        reach: Reach<'a>,
        slot: u16,
        seen_epoch: u64,
        health: &'a NodeHealth,
        fail_fast: bool,
    },
    /// The request belongs to work that can be stopped.
    Stop(&'a Stopped<'a>),
}

impl Watch<'_> {
    /// Asked between slices while `node` is late: `Ok` to keep waiting.
    pub fn check(&self, node: &NodeAddr, deadline: Instant) -> Result<()> {
        match *self {
            Watch::Nothing => Ok(()),
            Watch::Stop(stopped) => stopped().map_or(Ok(()), Err),
            Watch::Slot {
                reach,
                slot,
                seen_epoch,
                health,
                fail_fast,
            } => {
                if fail_fast && health.is_sick() {
                    return Err(health.unavailable_error(false));
                }
                slot_moved(reach, slot, node, seen_epoch, deadline)
            }
        }
    }
}

/// The longest a waiting call spends re-reading the map at one slice: a
/// replica answers `CLUSTER SLOTS` in about a millisecond, and a node that
/// does not must not keep the call from its own reply (nor make it late
/// enough to look like its node's fault).
const LATE_REFRESH_BUDGET: Duration = Duration::from_millis(50);

/// The `Watch::Slot` check.
fn slot_moved(
    reach: Reach<'_>,
    slot: u16,
    node: &NodeAddr,
    seen_epoch: u64,
    deadline: Instant,
) -> Result<()> {
    let moved = || {
        if reach.topology.epoch() == seen_epoch {
            return None;
        }
        let map = reach.topology.current();
        map.master_of(slot)
            .filter(|m| m.addr != *node)
            .map(|m| m.addr.clone())
    };
    let mut to = moved();
    if to.is_none() {
        // The caller is waiting on its own reply: the re-read may hold it
        // up a little, never long (a node it asks may be silent too).
        let until = deadline.min(Instant::now() + LATE_REFRESH_BUDGET);
        reach
            .topology
            .refresh_while_late(node, until, &mut |n| probe_map(reach.params, n, until));
        to = moved();
    }
    match to {
        None => Ok(()),
        Some(to) => Err(Error {
            cause: Some(Cause::SlotMoved),
            ..Error::new(
                ErrorKind::Connection,
                format!(
                    "no answer yet, and the slot map now has slot {slot} on {to}: connection aborted"
                ),
            )
        }),
    }
}

/// `CLUSTER SLOTS` over a connection of its own, closed afterwards (the
/// re-reads of the map while a reply is late).
fn probe_map(params: &ConnectParams, node: &NodeAddr, deadline: Instant) -> Result<Value> {
    let mut conn = NodeConnection::open(node, params, deadline)?;
    let left = deadline.saturating_duration_since(Instant::now());
    conn.set_timeout(params.socket_timeout.min(left))?;
    conn.query(&[b"CLUSTER", b"SLOTS"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::{SlotMap, Topology};

    fn addr(text: &str) -> NodeAddr {
        NodeAddr::parse(text).unwrap()
    }

    /// A topology whose one master, `master`, serves every slot.
    fn topology(master: &NodeAddr) -> Topology {
        let reply = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(16383),
            Value::Array(vec![
                Value::BulkString(master.host.as_bytes().to_vec()),
                Value::Int(i64::from(master.port)),
            ]),
        ])]);
        Topology::new(vec![], SlotMap::parse(&reply, master).unwrap())
    }

    /// The slot watch needs a slot map and connect params, not a client.
    #[test]
    fn a_slot_watch_gives_up_once_a_newer_map_serves_the_slot_elsewhere() {
        let (a, b) = (addr("127.0.0.1:7001"), addr("127.0.0.1:7002"));
        let topology = topology(&a);
        let config = Config::parse("redis-nodes=h:1 cluster-name=T").unwrap();
        let params = ConnectParams::from_config(&config).unwrap();
        let health = topology.health.of(&b);
        let past = Instant::now();
        let watch = |seen_epoch, fail_fast| Watch::Slot {
            reach: Reach {
                topology: &topology,
                params: &params,
            },
            slot: 5,
            seen_epoch,
            health: &health,
            fail_fast,
        };
        let now = topology.epoch();
        // Routed with an older map that had slot 5 on b: the map now says a.
        let e = watch(now.wrapping_sub(1), false)
            .check(&b, past)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Connection);
        assert!(
            e.message.contains("slot 5 on 127.0.0.1:7001"),
            "{}",
            e.message
        );
        // Routed with the current map: keep waiting (no time left to re-read it).
        assert!(watch(now, false).check(&b, past).is_ok());
        // Marked unavailable by another thread: given up with fail_fast only.
        let cause = Error::new(ErrorKind::Timeout, "no reply");
        health.failed(&cause, 1, None);
        assert!(watch(now, false).check(&b, past).is_ok());
        let e = watch(now, true).check(&b, past).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    }
}
