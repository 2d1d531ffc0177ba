//! One thread's connections, one per node it talks to, opened on first
//! use and never shared with another thread. After `ors_redis_reconfigure`
//! changed the credentials, each is logged in again on its next use (see
//! `renew`).

use std::time::Instant;

use crate::config::NodeAddr;
use crate::connection::{ConnectParams, Late, NodeConnection, Renewal};
use crate::error::{Error, Result};
use crate::topology::SlotMap;

#[derive(Default)]
pub struct ConnectionSet {
    /// A handful of nodes: a linear search by address beats hashing it.
    conns: Vec<(Box<str>, NodeConnection)>,
    /// Connections logged in with credentials that changed since: each is
    /// logged in again when a call next needs its node (never on the hot
    /// path: a node missing from `conns` is the path that opens one). No
    /// node is in both lists.
    stale: Vec<(Box<str>, NodeConnection)>,
}

impl ConnectionSet {
    pub fn open_count(&self) -> usize {
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

    /// This thread's connection to `addr`, opened if it has none.
    pub fn connection(
        &mut self,
        addr: &str,
        params: &ConnectParams,
        deadline: Instant,
    ) -> Result<&mut NodeConnection> {
        self.connection_with(addr, params, deadline, &mut || Ok(()))
    }

    /// `connection`, asking `late` between slices of a slow connect.
    pub fn connection_with(
        &mut self,
        addr: &str,
        params: &ConnectParams,
        deadline: Instant,
        late: &mut Late<'_>,
    ) -> Result<&mut NodeConnection> {
        let index = match self.index_of(addr) {
            Some(index) => index,
            None if self.reauthenticated(addr, params, deadline) => self.conns.len() - 1,
            None => {
                let node = NodeAddr::parse(addr).map_err(|e| {
                    Error::new(
                        crate::error::ErrorKind::Cluster,
                        format!("bad node address from the cluster: {e}"),
                    )
                })?;
                let conn = NodeConnection::open_with(&node, params, deadline, late)?;
                tracing::debug!(node = addr, "connected");
                self.conns.push((addr.into(), conn));
                self.conns.len() - 1
            }
        };
        Ok(&mut self.conns[index].1)
    }

    /// Logs the stale connection to `addr`, if there is one, in again and
    /// moves it to the live ones: whether it did. One that fails is
    /// aborted; the caller then opens a new one, which reports why.
    #[cold]
    fn reauthenticated(&mut self, addr: &str, params: &ConnectParams, deadline: Instant) -> bool {
        let Some(index) = self.stale.iter().position(|(a, _)| **a == *addr) else {
            return false;
        };
        let (addr, mut conn) = self.stale.swap_remove(index);
        match conn.reauthenticate(params, deadline) {
            Ok(()) => {
                tracing::debug!(node = &*addr, "logged in again with the new credentials");
                self.conns.push((addr, conn));
                true
            }
            Err(e) => {
                tracing::debug!(node = &*addr, error = %e, "logging in again failed; opening a new connection");
                conn.abort();
                false
            }
        }
    }

    /// Where this thread's connection to `addr` is, if it has one.
    fn index_of(&self, addr: &str) -> Option<usize> {
        self.conns.iter().position(|(a, _)| **a == *addr)
    }

    /// Aborts the connection to `addr` (after an error left it in an
    /// unknown state, perhaps with a request unanswered).
    pub fn drop_connection(&mut self, addr: &str) {
        if let Some(index) = self.index_of(addr) {
            self.conns.swap_remove(index).1.abort();
            tracing::debug!(node = addr, "connection aborted after an error");
        }
        self.stale.retain(|(a, _)| **a != *addr);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::connection::scripted::{dial_with, Answer, Script, ScriptedStream};

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

    #[test]
    fn changed_credentials_log_in_again_on_next_use_and_a_refusal_reopens() {
        let (seen, opened) = node();
        let deadline = || Instant::now() + Duration::from_secs(1);
        let addr = "127.0.0.1:7000";
        let old = params("username=ors password=old-pw");
        let mut conns = ConnectionSet::default();
        conns.connection(addr, &old, deadline()).unwrap();
        assert_eq!(*opened.lock().unwrap(), 1);

        // Same credentials: nothing sent, nothing opened.
        let timeouts = params("username=ors password=old-pw op-timeout=9");
        conns.renew(&old, &timeouts);
        conns.connection(addr, &timeouts, deadline()).unwrap();
        assert!(seen.lock().unwrap().is_empty());

        // A new password: the same connection, logged in again.
        let new = params("username=ors password=new-pw");
        conns.renew(&timeouts, &new);
        assert_eq!(conns.open_count(), 1);
        conns.connection(addr, &new, deadline()).unwrap();
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [vec![b"AUTH".to_vec(), b"ors".to_vec(), b"new-pw".to_vec()]]
        );
        assert_eq!(*opened.lock().unwrap(), 1);
        // Logged in once: the next use sends nothing.
        conns.connection(addr, &new, deadline()).unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);

        // A password the node refuses: that connection is given up, a new one opened.
        let refused = params("username=ors password=refused");
        conns.renew(&new, &refused);
        conns.connection(addr, &refused, deadline()).unwrap();
        assert_eq!(*opened.lock().unwrap(), 2);
        assert_eq!(conns.open_count(), 1);

        // What is fixed at open (max-value-bytes): closed now, reopened on use.
        let larger = params("username=ors password=refused max-value-bytes=9");
        conns.renew(&refused, &larger);
        assert_eq!(conns.open_count(), 0);
        conns.connection(addr, &larger, deadline()).unwrap();
        assert_eq!(*opened.lock().unwrap(), 3);
    }

    #[test]
    fn stale_connections_follow_the_slot_map_and_errors() {
        let (_seen, opened) = node();
        let deadline = Instant::now() + Duration::from_secs(1);
        let (old, new) = (params("password=a"), params("password=b"));
        let mut conns = ConnectionSet::default();
        conns.connection("127.0.0.1:7000", &old, deadline).unwrap();
        conns.connection("127.0.0.1:7001", &old, deadline).unwrap();
        conns.renew(&old, &new);
        conns.drop_connection("127.0.0.1:7001");
        assert_eq!(conns.open_count(), 1);
        conns.connection("127.0.0.1:7001", &new, deadline).unwrap();
        assert_eq!(
            *opened.lock().unwrap(),
            3,
            "a dropped stale connection is not reused"
        );
    }
}
