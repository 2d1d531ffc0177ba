//! The operator command's handle on the cluster, a thin layer on the
//! library's node layer (`ors_redis::operator`): the slot map from the seed
//! loop, a `Client` on it, and this thread's `Routes` (its connections, one
//! per node asked, opened on first use, and its copy of the slot map).
//!
//! - A question to one node (INFO, CONFIG GET, a SCAN page, a pipeline)
//!   goes over the thread's `ConnectionSet`, which bounds the wait, drops a
//!   spoiled connection and names the node in an error.
//! - A session's read or write goes through the library's router, which
//!   follows MOVED and ASK and rides out TRYAGAIN and failovers within
//!   op-timeout.
//! - A pass over every master (a SCAN listing) is repeated from the start
//!   as the library's `retry_pass` says.
//!
//! Nothing here touches the library's global state, so a process may use
//! both. An import's threads each get a handle of their own on the same
//! client ([`Cluster::for_thread`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ors_redis::operator::{
    address_by_hostname_like, find_slot_map, no_slot_map_error, parse_cluster_nodes, parse_info,
    retry_pass, route, Budget, ClusterNode, Config, ConnectParams, ConnectionSet, Error, ErrorKind,
    Exchange, NodeAddr, Reply, ReplyClass, Result, Routes, SeedChoice, SlotMap, Value,
};

/// One attempt of a routed command (see `ors_redis::operator::route`).
pub(crate) type Attempt<'a, T> = dyn FnMut(&mut Exchange<'_, '_>) -> Result<Reply<T>> + 'a;

/// A thread's view of the cluster.
pub(crate) struct Cluster {
    pub client: Arc<ors_redis::operator::Client>,
    /// The node that gave the slot map.
    pub seed: NodeAddr,
    /// Seeds tried before `seed` that gave no slot map, and why.
    pub seed_errors: Vec<(NodeAddr, Error)>,
    routes: Routes,
}

impl Cluster {
    /// Reads the slot map from the first seed that gives one, for a
    /// command that needs the cluster: one error when none does, as init's.
    pub(crate) fn connect(config: Config) -> Result<Cluster> {
        Cluster::connect_seeds(config).map_err(|refusals| no_slot_map_error(&refusals))
    }

    /// Reads the slot map of the first seed in redis-nodes order that gives
    /// one (all are asked at once); the seeds before it that did not are
    /// kept in `seed_errors`. Without any slot map: every seed's reason.
    pub(crate) fn connect_seeds(
        mut config: Config,
    ) -> std::result::Result<Cluster, Vec<(NodeAddr, Error)>> {
        // The command is no routing thread: it waits for a node in trouble
        // within op-timeout, as before node health existed, rather than
        // failing fast (its process has no prober: the library is not
        // initialized in it).
        config.node_fail_fast = false;
        let params = ConnectParams::from_config(&config)
            .map_err(|e| vec![(config.nodes.first().cloned().unwrap_or_default(), e)])?;
        let found = find_slot_map(&config.nodes, &params, SeedChoice::FirstInOrder)?;
        for (seed, e) in &found.refusals {
            tracing::debug!(seed = %seed, error = %e.message, "seed gave no slot map");
        }
        tracing::info!(seed = %found.seed, masters = found.map.masters.len(), "slot map read");
        let client = ors_redis::operator::Client::new(config, params, found.map, true, 0);
        Ok(Cluster {
            client: Arc::new(client),
            seed: found.seed,
            seed_errors: found.refusals,
            routes: Routes::default(),
        })
    }

    /// A handle on the same client for another thread: connections of its
    /// own, the slot map shared.
    pub(crate) fn for_thread(&self) -> Cluster {
        Cluster {
            client: self.client.clone(),
            seed: self.seed.clone(),
            seed_errors: Vec::new(),
            routes: Routes::default(),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.client.config
    }

    /// The current slot map (reloaded by the router and `retry_pass`).
    pub(crate) fn map(&self) -> Arc<SlotMap> {
        self.client.topology.current()
    }

    /// The addresses of the masters, in slot-map order.
    pub(crate) fn masters(&self) -> Vec<NodeAddr> {
        self.map().masters.iter().map(|m| m.addr.clone()).collect()
    }

    /// Runs `pass` (over every master) again from the start while it fails
    /// as a failover makes things fail, until op-timeout: the library's rule.
    pub(crate) fn retry_pass<T>(
        &mut self,
        mut pass: impl FnMut(&mut Cluster) -> Result<T>,
    ) -> Result<T> {
        let client = self.client.clone();
        retry_pass(&client, || pass(self))
    }

    /// Runs `attempt` on the master of `slot` through the library's router;
    /// returns the node that answered, and what the attempt made of it.
    pub(crate) fn route<T>(
        &mut self,
        slot: u16,
        attempt: &mut Attempt<'_, T>,
    ) -> Result<(NodeAddr, T)> {
        let client = &*self.client;
        let value = route(
            client,
            &mut self.routes,
            slot,
            client.config.socket_timeout,
            attempt,
        )?;
        Ok((self.routes.last_node().clone(), value))
    }

    /// The budget of one question to a node.
    fn budget(&self) -> Budget<'static> {
        Budget::of_request(&self.client.config)
    }

    /// One command on `node`; an error reply is an error (a NOPERM names
    /// the ACL permission it lacks).
    pub(crate) fn query(&mut self, node: &NodeAddr, args: &[&[u8]]) -> Result<Value> {
        let budget = self.budget();
        self.routes
            .conns
            .query(node, &self.client.params, &budget, args)
    }

    /// Sends `commands` in one write and reads one reply for each. Error
    /// replies come back as `Value::ServerError`, for the caller to judge.
    pub(crate) fn pipeline(
        &mut self,
        node: &NodeAddr,
        commands: &[Vec<&[u8]>],
    ) -> Result<Vec<Value>> {
        let budget = self.budget();
        self.routes
            .conns
            .pipeline(node, &self.client.params, &budget, commands)
    }

    /// `INFO [section]` as `field -> value`.
    pub(crate) fn info(
        &mut self,
        node: &NodeAddr,
        section: Option<&str>,
    ) -> Result<HashMap<String, String>> {
        let reply = match section {
            Some(s) => self.query(node, &[b"INFO", s.as_bytes()])?,
            None => self.query(node, &[b"INFO"])?,
        };
        reply
            .text()
            .map(|t| parse_info(&t))
            .ok_or_else(|| unexpected(node, "INFO"))
    }

    /// `CONFIG GET name`: `None` when the server refuses (CONFIG renamed)
    /// or does not know the parameter; an ACL refusal is an error, to be
    /// reported as one.
    pub(crate) fn config_get(&mut self, node: &NodeAddr, name: &str) -> Result<Option<String>> {
        match self.query(node, &[b"CONFIG", b"GET", name.as_bytes()]) {
            Ok(Value::Array(items)) => Ok(items.get(1).and_then(Value::text)),
            Ok(_) => Ok(None),
            Err(e) if e.is_reply(ReplyClass::NoPerm) => Err(e),
            Err(e) if matches!(e.kind, ErrorKind::Server | ErrorKind::Auth) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The time of one `PING` round trip (the connection is opened first,
    /// outside the measurement).
    pub(crate) fn ping(&mut self, node: &NodeAddr) -> Result<Duration> {
        let budget = self.budget();
        self.routes
            .conns
            .exchange(node, &self.client.params, &budget, |_| Ok(()))?;
        let started = Instant::now();
        self.query(node, &[b"PING"])?;
        Ok(started.elapsed())
    }

    /// `CLUSTER NODES` as asked of `node`.
    pub(crate) fn cluster_nodes(&mut self, node: &NodeAddr) -> Result<Vec<ClusterNode>> {
        let reply = self.query(node, &[b"CLUSTER", b"NODES"])?;
        let text = reply
            .text()
            .ok_or_else(|| unexpected(node, "CLUSTER NODES"))?;
        let mut nodes = parse_cluster_nodes(&text, node);
        let map = self.map();
        let hosts: Vec<&str> = map.masters.iter().map(|m| m.addr.host.as_str()).collect();
        address_by_hostname_like(&mut nodes, &hosts);
        Ok(nodes)
    }

    /// Whether `node` answers a PING without authentication (a connection
    /// opened without username and password, and closed afterwards).
    pub(crate) fn answers_without_auth(&self, node: &NodeAddr) -> Result<bool> {
        let mut params = self.client.params.clone();
        params.username = None;
        params.password = None;
        match ConnectionSet::default().query(node, &params, &self.budget(), &[b"PING"]) {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ErrorKind::Auth => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A reply of a shape the command does not expect.
pub(crate) fn unexpected(node: &NodeAddr, what: &str) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("node {node}: unexpected {what} reply"),
    )
}
