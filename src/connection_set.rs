//! One thread's connections, one per node it talks to, opened on first
//! use and never shared with another thread.

use std::time::Instant;

use crate::config::NodeAddr;
use crate::connection::{ConnectParams, Late, NodeConnection};
use crate::error::Result;
use crate::topology::SlotMap;

#[derive(Default)]
pub struct ConnectionSet {
    /// A handful of nodes: a linear search by address beats hashing it.
    conns: Vec<(NodeAddr, NodeConnection)>,
}

impl ConnectionSet {
    pub fn open_count(&self) -> usize {
        self.conns.len()
    }

    /// Closes the connections to nodes that are no longer masters in `map`.
    pub fn keep_masters_of(&mut self, map: &SlotMap) {
        self.conns.retain(|(addr, _)| map.is_master(addr));
    }

    /// This thread's connection to `addr`, opened if it has none.
    pub fn connection(
        &mut self,
        addr: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
    ) -> Result<&mut NodeConnection> {
        self.connection_with(addr, params, deadline, &mut || Ok(()))
    }

    /// `connection`, asking `late` between slices of a slow connect.
    pub fn connection_with(
        &mut self,
        addr: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
        late: &mut Late<'_>,
    ) -> Result<&mut NodeConnection> {
        let index = match self.index_of(addr) {
            Some(index) => index,
            None => {
                let conn = NodeConnection::open_with(addr, params, deadline, late)?;
                tracing::debug!(node = %addr, "connected");
                self.conns.push((addr.clone(), conn));
                self.conns.len() - 1
            }
        };
        Ok(&mut self.conns[index].1)
    }

    /// Where this thread's connection to `addr` is, if it has one.
    fn index_of(&self, addr: &NodeAddr) -> Option<usize> {
        self.conns.iter().position(|(a, _)| a == addr)
    }

    /// Aborts the connection to `addr` (after an error left it in an
    /// unknown state, perhaps with a request unanswered).
    pub fn drop_connection(&mut self, addr: &NodeAddr) {
        if let Some(index) = self.index_of(addr) {
            self.conns.swap_remove(index).1.abort();
            tracing::debug!(node = %addr, "connection aborted after an error");
        }
    }
}
