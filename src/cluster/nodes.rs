//! One thread's connections, one per node it talks to, opened on first
//! use and never shared with another thread; and the one way a request
//! reaches a node (`exchange`). After `ors_redis_reconfigure` changed the
//! credentials, each connection is logged in again on its next use (see
//! `renew`).

use std::time::Instant;

use super::budget::{Budget, Reach};
use crate::cluster::topology::SlotMap;
use crate::config::NodeAddr;
use crate::connection::{ConnectParams, Exchange, Late, NodeConnection, Renewal};
use crate::error::{Error, Result};
use crate::reply::Value;
use crate::resp::pack_command;

/// One thread's connections, one per node.
#[derive(Default)]
pub struct ConnectionSet {
    /// A handful of nodes: a linear search by address beats hashing it.
    conns: Vec<(NodeAddr, NodeConnection)>,
    /// Connections logged in with credentials that changed since: each is
    /// logged in again when a request next needs its node (never on the hot
    /// path: a node missing from `conns` is the path that opens one). No
    /// node is in both lists.
    stale: Vec<(NodeAddr, NodeConnection)>,
}

impl ConnectionSet {
    /// Connections open, stale ones included.
    pub(crate) fn open_count(&self) -> usize {
        self.conns.len() + self.stale.len()
    }

    /// Closes the connections to nodes that are no longer masters in `map`.
    pub fn keep_masters_of(&mut self, map: &SlotMap) {
        self.conns.retain(|(addr, _)| map.is_master(addr));
        self.stale.retain(|(addr, _)| map.is_master(addr));
    }

    /// Makes the connections, opened with `old`, fit `new`: kept as they
    /// are, logged in again on their next use, or closed (each is idle:
    /// every reply it was asked for was read).
    pub fn renew(&mut self, old: &ConnectParams, new: &ConnectParams) {
        match new.renewal_from(old) {
            Renewal::Keep => {}
            Renewal::Reauthenticate => self.stale.append(&mut self.conns),
            Renewal::Reopen => {
                self.conns.clear();
                self.stale.clear();
            }
        }
    }

    /// Runs `f` on this thread's connection to `node` (opened first if it
    /// has none) within `budget`, whose watch is asked between slices of a
    /// wait that runs long, the connect's included.
    ///
    /// Afterwards the connection is kept when `f` succeeded or failed with a
    /// node's answer (`Error::is_answer`: `f` reads every reply it asked for
    /// before it judges one), and aborted otherwise: a connection error, a
    /// wait given up by the watch, a reply that left it out of step
    /// (`Error::spoils_connection`), with a request possibly unanswered.
    /// Errors of `f` name the node; a connect's errors already do.
    // Inlined into each session call with `f` (bench/callgrind.sh counts
    // the instructions of put, get and del).
    #[inline(always)]
    pub fn exchange<R>(
        &mut self,
        node: &NodeAddr,
        params: &ConnectParams,
        budget: &Budget<'_>,
        f: impl FnOnce(&mut Exchange<'_, '_>) -> Result<R>,
    ) -> Result<R> {
        let mut late = || budget.watch.check(node, budget.deadline);
        let index = self.index_or_open(node, params, budget.deadline, &mut late)?;
        let conn = &mut self.conns[index].1;
        conn.begin(budget.started, budget.deadline, budget.reply);
        let outcome = f(&mut Exchange::new(conn, &mut late));
        match outcome {
            Ok(value) => {
                conn.settle();
                Ok(value)
            }
            Err(e) => {
                if e.is_answer() && !e.spoils_connection() {
                    conn.settle();
                } else {
                    self.conns.swap_remove(index).1.abort();
                    self.stale.retain(|(a, _)| a != node);
                    tracing::debug!(node = %node, "connection aborted after an error");
                }
                Err(e.at_node(node))
            }
        }
    }

    /// One command whose error reply is a failure (outside the data path:
    /// CLUSTER SLOTS, INFO, SCAN, the operator's questions); a NOPERM names
    /// the ACL permission it lacks.
    pub fn query(
        &mut self,
        node: &NodeAddr,
        params: &ConnectParams,
        budget: &Budget<'_>,
        args: &[&[u8]],
    ) -> Result<Value> {
        let mut packed = Vec::new();
        pack_command(&mut packed, args);
        self.exchange(node, params, budget, |x| {
            x.send(&packed)?;
            match x.receive()? {
                Value::ServerError(err) => Err(err.to_error_for(args)),
                value => Ok(value),
            }
        })
    }

    /// `commands` in one write, and one reply each; error replies come back
    /// as `Value::ServerError`, for the caller to judge.
    pub fn pipeline(
        &mut self,
        node: &NodeAddr,
        params: &ConnectParams,
        budget: &Budget<'_>,
        commands: &[Vec<&[u8]>],
    ) -> Result<Vec<Value>> {
        let mut packed = Vec::new();
        for args in commands {
            pack_command(&mut packed, args);
        }
        self.exchange(node, params, budget, |x| {
            x.send(&packed)?;
            (0..commands.len()).map(|_| x.receive()).collect()
        })
    }

    /// Has the slot map reloaded (single flight, rate-limited: see
    /// `Topology::refresh`) over these connections. `avoid`: a node that
    /// just failed, asked last.
    pub fn refresh_map<'r>(
        &mut self,
        reach: impl Into<Reach<'r>>,
        seen_epoch: u64,
        avoid: Option<&NodeAddr>,
        deadline: Instant,
    ) {
        let Reach { topology, params } = reach.into();
        topology.refresh(seen_epoch, avoid, deadline, &mut |node| {
            let budget = Budget::until(deadline, params.socket_timeout);
            self.query(node, params, &budget, &[b"CLUSTER", b"SLOTS"])
        });
    }

    /// Where this thread's connection to `addr` is; opened if it has none.
    #[inline(always)]
    fn index_or_open(
        &mut self,
        addr: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
        late: &mut Late<'_>,
    ) -> Result<usize> {
        match self.conns.iter().position(|(a, _)| a == addr) {
            Some(index) => Ok(index),
            None => self.open(addr, params, deadline, late),
        }
    }

    /// A connection to `addr`, which this thread has none to: a stale one
    /// logged in again, or a new one.
    #[cold]
    #[inline(never)]
    fn open(
        &mut self,
        addr: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
        late: &mut Late<'_>,
    ) -> Result<usize> {
        if self.reauthenticated(addr, params, deadline) {
            return Ok(self.conns.len() - 1);
        }
        let conn =
            NodeConnection::open_with(addr, params, deadline, late).map_err(Error::at_connect)?;
        tracing::debug!(node = %addr, "connected");
        self.conns.push((addr.clone(), conn));
        Ok(self.conns.len() - 1)
    }

    /// Logs the stale connection to `addr`, if there is one, in again and
    /// moves it to the live ones: whether it did. One that fails is
    /// aborted; the caller then opens a new one, which reports why.
    #[cold]
    fn reauthenticated(
        &mut self,
        addr: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
    ) -> bool {
        let Some(index) = self.stale.iter().position(|(a, _)| a == addr) else {
            return false;
        };
        let (addr, mut conn) = self.stale.swap_remove(index);
        match conn.reauthenticate(params, deadline) {
            Ok(()) => {
                tracing::debug!(node = %addr, "logged in again with the new credentials");
                self.conns.push((addr, conn));
                true
            }
            Err(e) => {
                tracing::debug!(node = %addr, error = %e, "logging in again failed; opening a new connection");
                conn.abort();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::connection::scripted::{dial_with, Answer, Script, ScriptedStream};
    use crate::error::{Error, ErrorKind};

    fn params(extra: &str) -> ConnectParams {
        let config = Config::parse(&format!("redis-nodes=h:1 cluster-name=T {extra}")).unwrap();
        ConnectParams::from_config(&config).unwrap()
    }

    /// The commands a scripted node got, each as its arguments.
    type Commands = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

    /// A scripted node that refuses the password "refused" and takes any
    /// other: the commands it got, and how many connections were opened.
    fn node() -> (Commands, Arc<Mutex<u32>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let opened = Arc::new(Mutex::new(0));
        let (log, count) = (seen.clone(), opened.clone());
        dial_with(Box::new(move |_addr: &str| {
            *count.lock().unwrap() += 1;
            let log = log.clone();
            let script: Box<Script> = Box::new(move |args: &[Vec<u8>]| {
                log.lock().unwrap().push(args.to_vec());
                if args.last().map(Vec::as_slice) == Some(b"refused") {
                    Answer::Reply(b"-WRONGPASS invalid username-password pair\r\n".to_vec())
                } else {
                    Answer::Reply(b"+OK\r\n".to_vec())
                }
            });
            Ok(NodeConnection::scripted(ScriptedStream::new(Arc::new(
                Mutex::new(script),
            ))))
        }));
        (seen, opened)
    }

    /// A request to `addr` that needs nothing but the connection.
    fn use_node(conns: &mut ConnectionSet, addr: &str, params: &ConnectParams) {
        let node = NodeAddr::parse(addr).unwrap();
        let budget = Budget::of(Duration::from_secs(1));
        conns.exchange(&node, params, &budget, |_| Ok(())).unwrap();
    }

    /// A request to `addr` whose connection is lost.
    fn lose_node(conns: &mut ConnectionSet, addr: &str, params: &ConnectParams) {
        let node = NodeAddr::parse(addr).unwrap();
        let budget = Budget::of(Duration::from_secs(1));
        let lost = conns.exchange(&node, params, &budget, |_| {
            Err::<(), _>(Error::new(ErrorKind::Connection, "lost"))
        });
        assert!(lost.is_err());
    }

    #[test]
    fn changed_credentials_log_in_again_on_next_use_and_a_refusal_reopens() {
        let (seen, opened) = node();
        let addr = "127.0.0.1:7000";
        let old = params("username=ors password=old-pw");
        let mut conns = ConnectionSet::default();
        use_node(&mut conns, addr, &old);
        assert_eq!(*opened.lock().unwrap(), 1);

        // Same credentials: nothing sent, nothing opened.
        let timeouts = params("username=ors password=old-pw op-timeout=9");
        conns.renew(&old, &timeouts);
        use_node(&mut conns, addr, &timeouts);
        assert!(seen.lock().unwrap().is_empty());

        // A new password: the same connection, logged in again.
        let new = params("username=ors password=new-pw");
        conns.renew(&timeouts, &new);
        assert_eq!(conns.open_count(), 1);
        use_node(&mut conns, addr, &new);
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [vec![b"AUTH".to_vec(), b"ors".to_vec(), b"new-pw".to_vec()]]
        );
        assert_eq!(*opened.lock().unwrap(), 1);
        // Logged in once: the next use sends nothing.
        use_node(&mut conns, addr, &new);
        assert_eq!(seen.lock().unwrap().len(), 1);

        // A password the node refuses: that connection is given up, a new one opened.
        let refused = params("username=ors password=refused");
        conns.renew(&new, &refused);
        use_node(&mut conns, addr, &refused);
        assert_eq!(*opened.lock().unwrap(), 2);
        assert_eq!(conns.open_count(), 1);

        // What is fixed at open (max-value-bytes): closed now, reopened on use.
        let larger = params("username=ors password=refused max-value-bytes=9");
        conns.renew(&refused, &larger);
        assert_eq!(conns.open_count(), 0);
        use_node(&mut conns, addr, &larger);
        assert_eq!(*opened.lock().unwrap(), 3);
    }

    #[test]
    fn stale_connections_follow_the_slot_map_and_errors() {
        let (_seen, opened) = node();
        let (old, new) = (params("password=a"), params("password=b"));
        let mut conns = ConnectionSet::default();
        use_node(&mut conns, "127.0.0.1:7000", &old);
        use_node(&mut conns, "127.0.0.1:7001", &old);
        conns.renew(&old, &new);
        lose_node(&mut conns, "127.0.0.1:7001", &new);
        assert_eq!(conns.open_count(), 1);
        use_node(&mut conns, "127.0.0.1:7001", &new);
        assert_eq!(
            *opened.lock().unwrap(),
            3,
            "a dropped stale connection is not reused"
        );
    }
}
