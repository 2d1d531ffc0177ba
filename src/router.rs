//! Routes one command to the master of its slot and retries it under one
//! deadline (`op-timeout`) for the whole call.
//!
//! - MOVED: the slot lives elsewhere; retry there at once and ask for a
//!   (single-flight, rate-limited) slot-map refresh.
//! - ASK: one key is being migrated; send `ASKING` and the command to the
//!   target, once, without touching the map.
//! - TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN: a transient cluster state;
//!   back off a few milliseconds (growing) and retry.
//! - A refused, reset or timed-out connection: abort it, refresh the map
//!   from another node (a replica may have been promoted) and retry.
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
use crate::cluster::topology::{SlotMap, Topology};
use crate::cluster::{Budget, ConnectionSet, Watch};
use crate::config::NodeAddr;
use crate::connection::Exchange;
use crate::error::{Error, ErrorKind, ReplyClass, Result};
use crate::reply::ServerError;
use crate::stats::{self, Call};

#[cfg(test)]
mod scripted_tests;

use crate::cluster::redirect::{self, Redirect};

/// What routing keeps on a thread from call to call.
#[derive(Default)]
pub struct Routes {
    pub conns: ConnectionSet,
    /// The slot map this thread routes with (see `slot_map`).
    map: Option<Arc<SlotMap>>,
    /// Reused for the address of the node a command goes to.
    target: NodeAddr,
}

impl Routes {
    /// The slot map to route with: the thread's cached one, replaced when
    /// the shared topology has a newer epoch (an atomic load, no lock). On a
    /// change, connections to nodes that are no longer masters are closed.
    pub fn slot_map(&mut self, topology: &Topology) -> &SlotMap {
        let epoch = topology.epoch();
        // A borrow, not an Arc clone: cloning would bump one shared counter
        // from every thread on every call.
        if self.map.as_ref().is_none_or(|map| map.epoch != epoch) {
            let map = topology.current();
            self.conns.keep_masters_of(&map);
            self.map = Some(map);
        }
        self.map.get_or_insert_with(|| topology.current())
    }

    /// The node that the last routed call's last attempt went to (after a
    /// MOVED or ASK, the node redirected to).
    pub fn last_node(&self) -> &NodeAddr {
        &self.target
    }
}

/// What one attempt on one node produced.
pub enum Reply<T> {
    Done(T),
    /// An error reply: the router decides whether it is a redirect, a
    /// transient state, or final.
    Error(ServerError),
}

/// One attempt: send the command on the exchange (this thread's connection
/// to the node) and read its replies (after an ASK, the router has sent
/// ASKING and had it answered first).
pub type Attempt<'a, T> = dyn FnMut(&mut Exchange<'_, '_>) -> Result<Reply<T>> + 'a;

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

const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

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
    let mut redirect: Option<Redirect> = None;
    let mut backoff = FIRST_BACKOFF;
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
        let map = routes.slot_map(&client.topology);
        let epoch = map.epoch;
        let asking = match redirect.take() {
            Some(to) => {
                *addr = to.addr;
                to.ask
            }
            None => match map.master_of(slot) {
                Some(master) => {
                    addr.clone_from(&master.addr);
                    false
                }
                None => {
                    last_error = Some(Error::new(
                        ErrorKind::Cluster,
                        format!("slot {slot} is not served by any master"),
                    ));
                    routes.conns.refresh_map(client, epoch, None, deadline);
                    backoff = pause(backoff, deadline);
                    continue;
                }
            },
        };
        let budget = Budget {
            started: now,
            deadline,
            reply: reply_budget,
            watch: Watch::Slot {
                client,
                slot,
                seen_epoch: epoch,
            },
        };
        let result = routes.conns.exchange(addr, &client.params, &budget, |x| {
            attempt_asking(x, asking, attempt)
        });
        let error = match result {
            Ok(Reply::Done(value)) => return Ok(value),
            Err(e) if e.is_retryable() => {
                tracing::debug!(node = %addr, slot, attempt = attempts, error = %e, "retrying after a connection error");
                last_error = Some(e);
                // A newer map seen while waiting serves the slot elsewhere:
                // go there at once.
                if client.topology.epoch() == epoch {
                    routes
                        .conns
                        .refresh_map(client, epoch, Some(addr), deadline);
                    backoff = pause(backoff, deadline);
                }
                continue;
            }
            Err(e) => return Err(e),
            Ok(Reply::Error(e)) => e,
        };
        if let Some(to) = Redirect::of(&error, addr) {
            // "MOVED" and "ASK" as the messages: operators (and the chaos
            // tests) count these lines.
            if to.ask {
                tracing::debug!(node = %addr, slot, to = %to.addr, "ASK");
            } else {
                tracing::debug!(node = %addr, slot, to = %to.addr, "MOVED");
            }
            if !to.ask {
                let stale = routes
                    .slot_map(&client.topology)
                    .master_of(slot)
                    .is_none_or(|m| m.addr != to.addr);
                if stale {
                    routes.conns.refresh_map(client, epoch, None, deadline);
                }
            }
            redirect = Some(to);
            continue;
        }
        let class = error.class();
        if !class.is_transient() {
            return Err(error.to_error().at_node(addr));
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
        backoff = pause(backoff, deadline);
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
/// fails the way a failover makes calls fail (`Error::is_retryable`), with
/// the slot map reloaded in between, until op-timeout. The last error is
/// returned as it is.
pub fn retry_pass<T>(client: &Client, mut pass: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + client.config.op_timeout;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts: u32 = 0;
    loop {
        let epoch = client.topology.epoch();
        attempts += 1;
        match pass() {
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tracing::debug!(attempt = attempts, error = %e, "pass failed, again with the slot map reloaded");
                stats::bump(Call::Retries);
                // Over connections of its own: the pass's may be spoiled.
                ConnectionSet::default().refresh_map(client, epoch, None, deadline);
                backoff = pause(backoff, deadline);
            }
            other => return other,
        }
    }
}

/// Sleeps for `backoff` (never past the deadline) and returns the next one.
fn pause(backoff: Duration, deadline: Instant) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(backoff.min(left));
    (backoff * 2).min(MAX_BACKOFF)
}

fn gave_up(last: Option<Error>, attempts: u32, op_timeout: Duration) -> Error {
    let ms = op_timeout.as_millis();
    match last {
        Some(mut e) => {
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
    }
}
