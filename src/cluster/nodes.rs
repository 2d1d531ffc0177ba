//! One thread's connections, one per node it talks to, opened on first
//! use and never shared with another thread; and the one way a request
//! reaches a node (`exchange`).

use std::time::Instant;

use super::budget::Budget;
use crate::client::Client;
use crate::cluster::topology::SlotMap;
use crate::config::NodeAddr;
use crate::connection::{ConnectParams, Exchange, Late, NodeConnection};
use crate::error::Result;
use crate::reply::Value;
use crate::resp::pack_command;

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
    #[inline]
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
    pub fn refresh_map(
        &mut self,
        client: &Client,
        seen_epoch: u64,
        avoid: Option<&NodeAddr>,
        deadline: Instant,
    ) {
        let params = &client.params;
        client
            .topology
            .refresh(seen_epoch, avoid, deadline, &mut |node| {
                let budget = Budget::until(deadline, params.socket_timeout);
                self.query(node, params, &budget, &[b"CLUSTER", b"SLOTS"])
            });
    }

    /// Where this thread's connection to `addr` is; opened if it has none.
    #[inline]
    fn index_or_open(
        &mut self,
        addr: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
        late: &mut Late<'_>,
    ) -> Result<usize> {
        if let Some(index) = self.conns.iter().position(|(a, _)| a == addr) {
            return Ok(index);
        }
        let conn = NodeConnection::open_with(addr, params, deadline, late)?;
        tracing::debug!(node = %addr, "connected");
        self.conns.push((addr.clone(), conn));
        Ok(self.conns.len() - 1)
    }
}
