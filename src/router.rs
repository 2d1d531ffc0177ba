//! Routes one command to the master of its slot and retries it under one
//! deadline (`op-timeout`) for the whole call. What each failure leads to
//! is retry.rs's verdict; this file carries it out:
//!
//! - MOVED: the slot lives elsewhere; retry there at once and ask for a
//!   (single-flight, rate-limited) slot-map refresh.
//! - ASK: one key is being migrated; send `ASKING` and the command to the
//!   target, once, without touching the map.
//! - TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN: a transient cluster state;
//!   back off a few milliseconds (growing) and retry.
//! - A connection lost mid-request: abort it, refresh the map from another
//!   node (a replica may have been promoted) and retry.
//! - No reply within `redis-socket-timeout`, or a connect refused or timed
//!   out: the node's health records it (cluster/health.rs). Once the node
//!   is marked unavailable, with `node-fail-fast=true` (the default) this
//!   call and every later call of its slots return `ORS_ERR_UNAVAILABLE` at
//!   once, and calls waiting on it give up at their next slice; with
//!   `false`, the call goes on as after a lost connection (riding out a
//!   failover within `op-timeout`).
//! - A late reply: each attempt's `Budget` carries a `Watch::Slot`
//!   (cluster/budget.rs), asked between slices of the wait
//!   (connection/wire.rs): the map is re-read at a bounded rate from the
//!   silent master's replicas (the one promoted knows first); once the map
//!   serves the slot elsewhere, the connection is aborted and the call
//!   retried there at once, without waiting out `redis-socket-timeout` on a
//!   master that may never answer.
//!
//! When the deadline passes, the call fails with the status of the last
//! cause: a connection problem, a timeout, or a cluster state.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::cluster::health::{Marked, NodeHealth, LATENCY_SAMPLE};
use crate::cluster::topology::{SlotMap, Topology};
use crate::cluster::{Budget, ConnectionSet, Watch};
use crate::config::NodeAddr;
use crate::connection::Exchange;
use crate::error::{Cause, Error, ErrorKind, ReplyClass, Result};
use crate::probe;
use crate::reply::ServerError;
use crate::retry::{self, Backoff, Next};
use crate::stats::{self, Call};

#[cfg(test)]
mod scripted_tests;

use crate::cluster::redirect::{self, Redirect};

/// How close to the call's deadline a timeout counts as the call's own.
const CALL_END_SLACK: Duration = Duration::from_millis(20);

/// What routing keeps on a thread from call to call.
#[derive(Default)]
pub struct Routes {
    /// The thread's connections, one per node.
    pub conns: ConnectionSet,
    /// The slot map this thread routes with (see `slot_map`).
    map: Option<Arc<SlotMap>>,
    /// Reused for the address of the node a command goes to.
    target: NodeAddr,
    /// Counts answered requests: one in `LATENCY_SAMPLE` is timed.
    answered: u32,
}

impl Routes {
    /// The slot map to route with: the thread's cached one, replaced when
    /// the shared topology has a newer epoch (an atomic load, no lock). On a
    /// change, connections to nodes that are no longer masters are closed.
    pub fn slot_map(&mut self, topology: &Topology) -> &SlotMap {
        current_map(&mut self.map, &mut self.conns, topology)
    }

    /// The node that the last routed call's last attempt went to (after a
    /// MOVED or ASK, the node redirected to).
    pub fn last_node(&self) -> &NodeAddr {
        &self.target
    }
}

/// `Routes::slot_map` on the fields, so that the map can stay borrowed
/// while the connections are used.
#[inline]
fn current_map<'m>(
    map: &'m mut Option<Arc<SlotMap>>,
    conns: &mut ConnectionSet,
    topology: &Topology,
) -> &'m SlotMap {
    let epoch = topology.epoch();
    // A borrow, not an Arc clone: cloning would bump one shared counter
    // from every thread on every call.
    if map.as_ref().is_none_or(|map| map.epoch != epoch) {
        let newer = topology.current();
        conns.keep_masters_of(&newer);
        *map = Some(newer);
    }
    map.get_or_insert_with(|| topology.current())
}

/// What one attempt on one node produced.
pub enum Reply<T> {
    /// What the attempt read from the node's answer.
    Done(T),
    /// An error reply: the router decides whether it is a redirect, a
    /// transient state, or final.
    Error(ServerError),
}

/// One attempt: send the command on the exchange (this thread's connection
/// to the node) and read its replies (after an ASK, the router has sent
/// ASKING and had it answered first).
pub(crate) type Attempt<'a, T> = dyn FnMut(&mut Exchange<'_, '_>) -> Result<Reply<T>> + 'a;

/// Whether an earlier attempt of a call may have been applied: its request
/// was sent whole and its reply never read (the connection failed or timed
/// out in between). A retry then answers for a node that may already have
/// done the work: a delete finds nothing, a `SET NX` finds its own key. A
/// call whose answer a retry can change keeps one of these across its
/// attempts ([`Unanswered::reading`] around each attempt's reads) and asks
/// [`Unanswered::earlier`] before it reports "nothing was there".
#[derive(Debug, Default)]
pub struct Unanswered(Cell<bool>);

impl Unanswered {
    /// `read`, the reads of an attempt whose request was sent: if it fails,
    /// this attempt may have been applied.
    #[inline]
    pub fn reading<T>(&self, read: impl FnOnce() -> Result<T>) -> Result<T> {
        let result = read();
        if result.is_err() {
            self.0.set(true);
        }
        result
    }

    /// Marks the call: a request was sent and its reply not read.
    pub fn mark(&self) {
        self.0.set(true);
    }

    /// An attempt before this one may have been applied.
    #[inline]
    pub fn earlier(&self) -> bool {
        self.0.get()
    }
}

/// Runs `attempt` against the master of `slot` until it succeeds, fails for
/// good, or the call's deadline passes. `reply_budget` is how long one reply
/// may take (the socket timeout, plus `wait-timeout` for a WAIT).
#[inline]
pub fn route<T>(
    client: &Client,
    routes: &mut Routes,
    slot: u16,
    reply_budget: Duration,
    attempt: &mut Attempt<'_, T>,
) -> Result<T> {
    // The node address is copied into a buffer the thread reuses: no
    // allocation, and no shared reference count bumped by every thread.
    let mut addr = std::mem::take(&mut routes.target);
    let result = route_with(client, routes, slot, reply_budget, attempt, &mut addr);
    routes.target = addr;
    result
}

#[inline]
fn route_with<T>(
    client: &Client,
    routes: &mut Routes,
    slot: u16,
    reply_budget: Duration,
    attempt: &mut Attempt<'_, T>,
    addr: &mut NodeAddr,
) -> Result<T> {
    // One clock read per attempt: it also starts the attempt's reply budget.
    let mut now = Instant::now();
    let deadline = now + client.config.op_timeout;
    let fail_fast = client.config.node_fail_fast;
    let mut redirect: Option<Redirect> = None;
    // The health of a redirect's target (found by address, off the hot path).
    let mut redirect_health: Option<Arc<NodeHealth>> = None;
    let mut backoff = Backoff::default();
    let mut last_error: Option<Error> = None;
    let mut attempts: u32 = 0;
    loop {
        if attempts > 0 {
            now = Instant::now();
            if now >= deadline {
                return Err(gave_up(last_error, attempts, client.config.op_timeout));
            }
        }
        attempts += 1;
        if attempts > 1 {
            stats::bump(Call::Retries);
        }
        let map = current_map(&mut routes.map, &mut routes.conns, &client.topology);
        let epoch = map.epoch;
        let (asking, health) = match redirect.take() {
            Some(to) => {
                *addr = to.addr;
                let health = redirect_health.insert(client.topology.health.of(addr));
                (to.ask, &*health)
            }
            None => match map.route(slot) {
                Some((master, health)) => {
                    addr.clone_from(&master.addr);
                    (false, health)
                }
                None => {
                    last_error = Some(Error::new(
                        ErrorKind::Cluster,
                        format!("slot {slot} is not served by any master"),
                    ));
                    routes.conns.refresh_map(client, epoch, None, deadline);
                    backoff.pause(deadline);
                    continue;
                }
            },
        };
        if fail_fast && health.is_sick() {
            health.failed_fast(&|node| probe::start(client.generation, node));
            return Err(health.unavailable_error(true));
        }
        let budget = Budget {
            started: now,
            deadline,
            reply: reply_budget,
            watch: Watch::Slot {
                reach: client.into(),
                slot,
                seen_epoch: epoch,
                health,
                fail_fast,
            },
        };
        let result = routes.conns.exchange(addr, &client.params, &budget, |x| {
            attempt_asking(x, asking, attempt)
        });
        let error = match result {
            Ok(Reply::Done(value)) => {
                answered(&mut routes.answered, health, now);
                return Ok(value);
            }
            Ok(Reply::Error(e)) => {
                answered(&mut routes.answered, health, now);
                e
            }
            Err(e) => {
                health.errored();
                // A wait that ended within a timer tick of the call's
                // deadline was ended by the deadline (Windows' socket
                // timeouts can fire ~15 ms early): the call's, not the node's.
                let expired = Instant::now() + CALL_END_SLACK >= deadline;
                match retry::after(&e, expired) {
                    Next::GiveUp if expired => {
                        return Err(gave_up(Some(e), attempts, client.config.op_timeout))
                    }
                    Next::GiveUp => return Err(e),
                    Next::NodeFailed => {
                        let start = |node| probe::start(client.generation, node);
                        let prober: Option<&dyn Fn(Arc<NodeHealth>)> =
                            if fail_fast { Some(&start) } else { None };
                        let marked = health.failed(&e, client.config.node_fail_count, prober);
                        if fail_fast && marked == Marked::Sick {
                            return Err(e.counted_as(ErrorKind::Unavailable).with_advice(
                                "; the node is marked unavailable (node-fail-fast=true): \
                                 calls to its slots fail at once until it answers a probe \
                                 or its slots move",
                            ));
                        }
                    }
                    Next::Refresh | Next::Redirect | Next::Backoff => {}
                }
                tracing::debug!(node = %addr, slot, attempt = attempts, error = %e, "retrying after a connection error");
                last_error = Some(e);
                // A newer map seen while waiting serves the slot elsewhere:
                // go there at once.
                if client.topology.epoch() == epoch {
                    routes
                        .conns
                        .refresh_map(client, epoch, Some(addr), deadline);
                    backoff.pause(deadline);
                }
                continue;
            }
        };
        let class = error.class();
        match retry::after_reply(class) {
            Next::Redirect => {
                if let Some(to) = Redirect::of(&error, addr) {
                    // "MOVED" and "ASK" as the messages: operators (and the
                    // chaos tests) count these lines.
                    if to.ask {
                        tracing::debug!(node = %addr, slot, to = %to.addr, "ASK");
                    } else {
                        tracing::debug!(node = %addr, slot, to = %to.addr, "MOVED");
                        let stale =
                            current_map(&mut routes.map, &mut routes.conns, &client.topology)
                                .master_of(slot)
                                .is_none_or(|m| m.addr != to.addr);
                        if stale {
                            routes.conns.refresh_map(client, epoch, None, deadline);
                        }
                    }
                    redirect = Some(to);
                    continue;
                }
                // A MOVED/ASK whose target is no host:port: the node's error.
                return Err(error.to_error().at_node(addr));
            }
            Next::Backoff | Next::Refresh => {}
            Next::GiveUp | Next::NodeFailed => return Err(error.to_error().at_node(addr)),
        }
        tracing::debug!(
            node = %addr,
            slot,
            attempt = attempts,
            code = error.code(),
            "transient cluster state, backing off"
        );
        last_error = Some(error.to_error().at_node(addr));
        if class == ReplyClass::ClusterDown {
            routes
                .conns
                .refresh_map(client, epoch, Some(addr), deadline);
        }
        backoff.pause(deadline);
    }
}

/// Counts a request `health`'s node answered, timing one in
/// `LATENCY_SAMPLE` (the attempt began at `started`).
#[inline(always)]
fn answered(count: &mut u32, health: &NodeHealth, started: Instant) {
    *count = count.wrapping_add(1);
    if count.is_multiple_of(LATENCY_SAMPLE) {
        health.answered_in(started.elapsed());
    } else {
        health.answered();
    }
}

/// `attempt`, behind an ASKING when the redirect was an ASK.
#[inline]
fn attempt_asking<T>(
    exchange: &mut Exchange<'_, '_>,
    asking: bool,
    attempt: &mut Attempt<'_, T>,
) -> Result<Reply<T>> {
    if asking {
        redirect::send_asking(exchange, |x, packed| x.send(packed), |x| x.receive())?;
    }
    attempt(exchange)
}

/// Runs `pass` (work that spans several nodes, such as a SCAN of every
/// master, which cannot be resumed elsewhere) again from the start while it
/// fails the way a failover makes calls fail (`retry::may_repeat`), with
/// the slot map reloaded in between, until op-timeout. The last error is
/// returned as it is.
pub fn retry_pass<T>(client: &Client, mut pass: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + client.config.op_timeout;
    let mut backoff = Backoff::default();
    let mut attempts: u32 = 0;
    loop {
        let epoch = client.topology.epoch();
        attempts += 1;
        match pass() {
            Err(e) if retry::may_repeat(&e) && Instant::now() < deadline => {
                tracing::debug!(attempt = attempts, error = %e, "pass failed, again with the slot map reloaded");
                stats::bump(Call::Retries);
                // Over connections of its own: the pass's may be spoiled.
                ConnectionSet::default().refresh_map(client, epoch, None, deadline);
                backoff.pause(deadline);
            }
            other => return other,
        }
    }
}

fn gave_up(last: Option<Error>, attempts: u32, op_timeout: Duration) -> Error {
    let ms = op_timeout.as_millis();
    match last {
        Some(mut e) => {
            // A late reply given up on for a newer map, with no time left to
            // go there: the call ran out of time, no connection failed.
            if e.cause == Some(Cause::SlotMoved) {
                e.kind = ErrorKind::Timeout;
            }
            e.message = format!(
                "gave up after {attempts} attempt(s) in op-timeout {ms} ms; last error: {}",
                e.message
            );
            e
        }
        None => Error::new(ErrorKind::Timeout, format!("op-timeout of {ms} ms passed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn giving_up_names_the_last_cause() {
        let t = Duration::from_millis(5000);
        let e = gave_up(Some(Error::new(ErrorKind::Connection, "refused")), 7, t);
        assert_eq!(e.kind, ErrorKind::Connection);
        assert!(e.message.contains("7 attempt(s)") && e.message.contains("refused"));
        assert_eq!(gave_up(None, 0, t).kind, ErrorKind::Timeout);
        let c = gave_up(Some(Error::new(ErrorKind::Cluster, "CLUSTERDOWN")), 3, t);
        assert_eq!(c.kind, ErrorKind::Cluster);
        // Given up for a newer map at the deadline: the call's time ran out.
        let moved = Error {
            cause: Some(Cause::SlotMoved),
            ..Error::new(ErrorKind::Connection, "slot moved: connection aborted")
        };
        assert_eq!(gave_up(Some(moved), 2, t).kind, ErrorKind::Timeout);
    }
}
