//! One thread's connections, one per node it talks to, opened on first
//! use and never shared with another thread.

use std::time::Instant;

use crate::config::NodeAddr;
use crate::connection::{ConnectParams, Late, NodeConnection};
use crate::error::{Error, ErrorKind, Result};
use crate::reply::Value;
use crate::resp::pack_command;
use crate::topology::SlotMap;

#[derive(Default)]
pub struct ConnectionSet {
    /// A handful of nodes: a linear search by address beats hashing it.
    conns: Vec<(Box<str>, NodeConnection)>,
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
    }

    /// One command on `node`, over this set's connection to it (opened on
    /// first use): its reply, or its error reply as an error that names the
    /// ACL permission a NOPERM lacks. For requests outside a routed call
    /// (the operator's questions to one node); the wait is bounded as in
    /// [`ConnectionSet::exchange`].
    pub fn query(
        &mut self,
        node: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
        command: &[&[u8]],
    ) -> Result<Value> {
        match self
            .pipeline(node, params, deadline, &[command.to_vec()])?
            .pop()
        {
            Some(Value::ServerError(e)) => Err(e.to_error_for(command).at_node(&node.to_string())),
            Some(value) => Ok(value),
            None => {
                Err(Error::new(ErrorKind::Internal, "no reply read").at_node(&node.to_string()))
            }
        }
    }

    /// `commands` to `node` in one write, and one reply each; error replies
    /// come back as `Value::ServerError`, for the caller to judge.
    pub fn pipeline(
        &mut self,
        node: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
        commands: &[Vec<&[u8]>],
    ) -> Result<Vec<Value>> {
        let mut packed = Vec::new();
        for args in commands {
            pack_command(&mut packed, args);
        }
        self.exchange(node, params, deadline, |conn| {
            conn.send(&packed)?;
            (0..commands.len()).map(|_| conn.receive()).collect()
        })
    }

    /// Runs `exchange` on this set's connection to `node`, opened (and
    /// authenticated) on first use. The exchange may take the socket timeout,
    /// and never past `deadline`. After an error the connection is aborted
    /// (it may be in the middle of a reply) and the error names the node.
    pub fn exchange<T>(
        &mut self,
        node: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
        exchange: impl FnOnce(&mut NodeConnection) -> Result<T>,
    ) -> Result<T> {
        let addr = node.to_string();
        // Errors of opening a connection name their node already.
        let conn = self.connection(&addr, params, deadline)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let result = conn
            .set_timeout(params.socket_timeout.min(left))
            .and_then(|()| exchange(conn));
        match result {
            Ok(value) => {
                conn.settle();
                Ok(value)
            }
            Err(e) => {
                self.drop_connection(&addr);
                Err(e.at_node(&addr))
            }
        }
    }
}
