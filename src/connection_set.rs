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
