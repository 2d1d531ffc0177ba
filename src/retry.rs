//! What happens after a failure, decided once per kind of error (as
//! redis-rs's `RetryMethod` is), and asked by every caller that repeats
//! work: the router (session calls), `retry_pass` (work over several nodes),
//! the scan, and the operator command's import. Callers differ only in what
//! "again" means to them (one command, a pass, a batch); the verdict and the
//! pauses are these.
//!
//! The bulk read keeps a rule of its own on purpose: a takeover wants every
//! session, so a node that fails is paused (growing, 10 ms to 200 ms:
//! `bulk/plan.rs`'s `Plan::node_failed`) and its slots read again until it
//! has failed for `op-timeout`, whatever `node-fail-fast` says; its error
//! replies get their verdict from `after_reply` (`bulk/node_read.rs`).

use std::time::{Duration, Instant};

use crate::error::{Cause, Error, ErrorKind, ReplyClass};

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// MOVED or ASK: go where the reply says, at once.
    Redirect,
    /// A transient cluster state (TRYAGAIN, LOADING, MASTERDOWN): pause a
    /// little (growing) and try the same node again.
    Backoff,
    /// CLUSTERDOWN, or a connection lost mid-request: reload the slot map
    /// (another node may serve the slot now), pause, and try again.
    Refresh,
    /// The node did not answer within its own budget
    /// (`redis-socket-timeout`, `redis-connect-timeout`) or refused the
    /// connection: the node, not one connection, is in trouble. Mark it
    /// (cluster/health.rs); with `node-fail-fast=true` a session call then
    /// gives up with `ORS_ERR_UNAVAILABLE`, otherwise it goes on as after
    /// `Refresh` (riding out a failover).
    NodeFailed,
    /// A definite answer, or a failure that repeating cannot mend.
    GiveUp,
}

impl Next {
    /// Whether the work may be repeated at all.
    pub(crate) fn repeats(self) -> bool {
        self != Next::GiveUp
    }
}

/// The verdict for `error`. `call_expired`: the call's own deadline
/// (`op-timeout`) has passed, so a timeout is the call's, not the node's (a
/// node only slow for less than `redis-socket-timeout` is never marked).
pub(crate) fn after(error: &Error, call_expired: bool) -> Next {
    match error.cause {
        Some(Cause::Reply(class)) => return after_reply(class),
        Some(Cause::Connect) if !call_expired => return Next::NodeFailed,
        Some(Cause::SlotMoved) => return Next::Refresh,
        _ => {}
    }
    match error.kind {
        ErrorKind::Timeout if call_expired => Next::GiveUp,
        ErrorKind::Timeout => Next::NodeFailed,
        ErrorKind::Connection => Next::Refresh,
        // A map that does not serve the slot, a bad CLUSTER SLOTS reply.
        ErrorKind::Cluster => Next::Refresh,
        _ => Next::GiveUp,
    }
}

/// The verdict for an error reply of `class`.
pub(crate) fn after_reply(class: ReplyClass) -> Next {
    match class {
        ReplyClass::Moved | ReplyClass::Ask => Next::Redirect,
        ReplyClass::ClusterDown => Next::Refresh,
        ReplyClass::TryAgain | ReplyClass::Loading | ReplyClass::MasterDown => Next::Backoff,
        _ => Next::GiveUp,
    }
}

/// Whether work that failed with `error` may be repeated (for callers that
/// repeat a whole pass or batch, with the map reloaded in between).
pub fn may_repeat(error: &Error) -> bool {
    after(error, false).repeats()
}

/// The first pause of a call's backoff, and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// How long a pass (a scan of every master) waits before it starts again
/// after a failure: a failover takes longer than a call's backoff steps.
pub(crate) const PASS_PAUSE: Duration = Duration::from_millis(50);

/// A call's growing pauses between attempts: 2 ms, doubling, up to 100 ms,
/// never past the call's deadline.
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_PAUSE }
    }
}

impl Backoff {
    /// Sleeps for the next pause (never past `deadline`).
    pub(crate) fn pause(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(self.next.min(left));
        self.next = (self.next * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_one_verdict() {
        use ReplyClass::*;
        let reply = |class| Error::from_reply(class, "X");
        assert_eq!(after(&reply(Moved), false), Next::Redirect);
        assert_eq!(after(&reply(Ask), false), Next::Redirect);
        assert_eq!(after(&reply(ClusterDown), false), Next::Refresh);
        for class in [TryAgain, Loading, MasterDown] {
            assert_eq!(after(&reply(class), false), Next::Backoff, "{class:?}");
        }
        for class in [NoAuth, WrongPass, NoPerm, Other, UnknownCommand] {
            assert_eq!(after(&reply(class), false), Next::GiveUp, "{class:?}");
        }
        let lost = Error::new(ErrorKind::Connection, "reset by peer");
        assert_eq!(after(&lost, false), Next::Refresh);
        // Refused or timed out while connecting: the node's trouble.
        assert_eq!(after(&lost.clone().at_connect(), false), Next::NodeFailed);
        let moved = Error {
            cause: Some(Cause::SlotMoved),
            ..Error::new(ErrorKind::Connection, "the slot moved")
        };
        assert_eq!(after(&moved, false), Next::Refresh);
        let late = Error::new(ErrorKind::Timeout, "no reply");
        assert_eq!(after(&late, false), Next::NodeFailed);
        // Once the call's own deadline passed, a timeout is the call's.
        assert_eq!(after(&late, true), Next::GiveUp);
        assert_eq!(after(&late.clone().at_connect(), true), Next::GiveUp);
        for kind in [
            ErrorKind::Auth,
            ErrorKind::Tls,
            ErrorKind::TooLarge,
            ErrorKind::LocalResource,
            ErrorKind::Unavailable,
            ErrorKind::InvalidArgument,
        ] {
            let e = Error::new(kind, "x");
            assert_eq!(after(&e, false), Next::GiveUp, "{kind:?}");
            assert!(!may_repeat(&e), "{kind:?}");
        }
        // A TLS failure at connect stays a TLS failure.
        let tls = Error::tls(crate::error::TlsFailure::UnknownIssuer, "handshake").at_connect();
        assert_eq!(after(&tls, false), Next::GiveUp);
        assert!(may_repeat(&late) && may_repeat(&lost));
    }

    #[test]
    fn backoff_grows_and_never_sleeps_past_the_deadline() {
        let mut b = Backoff::default();
        let t = Instant::now();
        b.pause(t + Duration::from_secs(5));
        b.pause(t + Duration::from_secs(5));
        assert_eq!(b.next, Duration::from_millis(8));
        for _ in 0..10 {
            b.pause(Instant::now());
        }
        assert_eq!(b.next, MAX_PAUSE);
        assert!(t.elapsed() < Duration::from_millis(200));
    }
}
