//! Operator tools over a live cluster, behind the `ors-redis` command: a
//! health check against what ORS recommends (`doctor`), sizing
//! (`capacity`), and inspecting, removing, exporting or importing one ORS
//! cluster's sessions (`sessions`).
//!
//! Unlike the data path, this is a one-shot tool, and an [`Admin`] is one
//! thread's view of the cluster (an import runs one per master, each on its
//! own thread): it reads the slot map once, opens a connection to each node
//! it talks to on first use, and follows a MOVED or ASK it meets instead of
//! retrying under a deadline. Nothing here touches the library's global state (`client`), so
//! a process may use both.

pub mod capacity;
pub mod doctor;
pub mod export;
pub mod import;
pub mod sessions;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ors_redis::operator::{
    address_by_hostname_like, find_slot_map, no_slot_map_error, pack_command, parse_cluster_nodes,
    parse_info, send_asking, Bulk, ClusterNode, Config, ConnectParams, Error, ErrorKind, NodeAddr,
    NodeConnection, ReplyClass, Result, SeedChoice, ServerError, SlotMap, Value,
};

/// The outcome of one check, as the operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Between two tries of an operation while a master fails over.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// How a command's reply is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Any reply (a bulk string up to Redis's own limit, 512 MB).
    Reply,
    /// A session's value, a GET's reply: a bulk string longer than
    /// `max-value-bytes` is refused (`ORS_ERR_TOO_LARGE`) before it is
    /// read, and the connection dropped, as the library does.
    SessionValue,
}

/// A one-thread view of the cluster: the config, the slot map read at
/// connect, and a connection per node talked to so far.
pub struct Admin {
    pub config: Config,
    /// The node that gave the slot map.
    pub seed: NodeAddr,
    pub map: SlotMap,
    /// Seeds tried before `seed` that gave no slot map, and why.
    pub seed_errors: Vec<(NodeAddr, Error)>,
    params: ConnectParams,
    conns: HashMap<String, NodeConnection>,
}

impl Admin {
    /// Reads the slot map from the first seed that gives one, for a
    /// command that needs the cluster: one error when none does, as init's.
    pub fn connect(config: Config) -> Result<Admin> {
        Admin::connect_seeds(config).map_err(|refusals| no_slot_map_error(&refusals))
    }

    /// Reads the slot map of the first seed in redis-nodes order that gives
    /// one (all are asked at once); the seeds before it that did not are
    /// kept in `seed_errors`. Without any slot map: every seed's reason.
    pub fn connect_seeds(config: Config) -> std::result::Result<Admin, Vec<(NodeAddr, Error)>> {
        let params = match ConnectParams::from_config(&config) {
            Ok(p) => p,
            Err(e) => {
                return Err(vec![(
                    config.nodes.first().cloned().unwrap_or(NodeAddr {
                        host: String::new(),
                        port: 0,
                    }),
                    e,
                )])
            }
        };
        let found = find_slot_map(&config.nodes, &params, SeedChoice::FirstInOrder)?;
        for (seed, e) in &found.refusals {
            tracing::debug!(seed = %seed, error = %e.message, "seed gave no slot map");
        }
        tracing::info!(seed = %found.seed, masters = found.map.masters.len(), "slot map read");
        Ok(Admin {
            seed: found.seed,
            map: found.map,
            params,
            conns: HashMap::new(),
            seed_errors: found.refusals,
            config,
        })
    }

    /// Reads the slot map again (after a failover moved slots): the first
    /// map from any node known so far (masters, replicas, seeds), each
    /// asked once.
    pub fn refresh(&mut self) -> Result<()> {
        let mut candidates = self.masters();
        for m in &self.map.masters {
            candidates.extend(m.replicas.iter().cloned());
        }
        candidates.extend(self.config.nodes.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|node| seen.insert(node.to_string()));
        let found = find_slot_map(&candidates, &self.params, SeedChoice::FirstToAnswer)
            .map_err(|refusals| no_slot_map_error(&refusals))?;
        tracing::info!(node = %found.seed, "slot map read again");
        self.map = found.map;
        Ok(())
    }

    /// Runs `op` again, with the slot map read again, while it fails the
    /// way a failover makes things fail (a master that does not answer, a
    /// cluster down for the moment), until op-timeout: as the library does.
    pub fn riding_out<T>(&mut self, mut op: impl FnMut(&mut Admin) -> Result<T>) -> Result<T> {
        let deadline = Instant::now() + self.config.op_timeout;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match op(self) {
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Cluster
                    ) && Instant::now() + RETRY_PAUSE < deadline =>
                {
                    tracing::debug!(attempt, error = %e.message, "retrying with the slot map read again");
                    std::thread::sleep(RETRY_PAUSE);
                    if let Err(e) = self.refresh() {
                        tracing::debug!(error = %e.message, "no slot map yet");
                    }
                }
                other => return other,
            }
        }
    }

    /// The addresses of the masters, in slot-map order.
    pub fn masters(&self) -> Vec<NodeAddr> {
        self.map.masters.iter().map(|m| m.node.clone()).collect()
    }

    /// This tool's connection to `node`, opened (and authenticated) on first use.
    pub fn connection(&mut self, node: &NodeAddr) -> Result<&mut NodeConnection> {
        let key = node.to_string();
        if !self.conns.contains_key(&key) {
            let deadline = Instant::now() + self.config.op_timeout;
            let conn = NodeConnection::open(node, &self.params, deadline)?;
            self.conns.insert(key.clone(), conn);
        }
        let timeout = self.config.socket_timeout;
        let conn = self
            .conns
            .get_mut(&key)
            .ok_or_else(|| Error::new(ErrorKind::Internal, "connection vanished"))?;
        conn.set_timeout(timeout)?;
        Ok(conn)
    }

    /// Forgets the connection to `node` (after an error left it in an
    /// unknown state); the next use opens a new one.
    pub fn drop_connection(&mut self, node: &NodeAddr) {
        self.conns.remove(&node.to_string());
    }

    /// One command on `node`; an error reply is an error.
    pub fn query(&mut self, node: &NodeAddr, args: &[&[u8]]) -> Result<Value> {
        match self.pipeline(node, &[args.to_vec()])?.pop() {
            Some(Value::ServerError(e)) => Err(server_error(node, &e, args)),
            Some(value) => Ok(value),
            None => Err(unexpected(node, "pipeline")),
        }
    }

    /// Sends `commands` in one write and reads one reply for each. Error
    /// replies come back as `Value::ServerError`, for the caller to judge.
    /// After an I/O error the connection is dropped: it may be in the middle
    /// of a reply.
    pub fn pipeline(&mut self, node: &NodeAddr, commands: &[Vec<&[u8]>]) -> Result<Vec<Value>> {
        let mut packed = Vec::new();
        for args in commands {
            pack_command(&mut packed, args);
        }
        self.on_connection(node, |conn| exchange(conn, &packed, commands.len()))
    }

    /// One command on `node`, behind an ASKING when `ask` (the library's,
    /// its refusal an error), its reply read as `read` says. The command's
    /// error reply comes back as `Value::ServerError`, for the caller to
    /// judge.
    pub fn asking_query(
        &mut self,
        node: &NodeAddr,
        ask: bool,
        args: &[&[u8]],
        read: Read,
    ) -> Result<Value> {
        let mut packed = Vec::new();
        pack_command(&mut packed, args);
        self.on_connection(node, |conn| {
            if ask {
                send_asking(conn, |c, b| c.send(b), |c| c.receive())?;
            }
            conn.send(&packed)?;
            Ok(match read {
                Read::Reply => conn.receive()?,
                Read::SessionValue => match conn.receive_bulk()? {
                    Bulk::Data(value) => Value::BulkString(value.as_slice().to_vec()),
                    Bulk::Nil => Value::Nil,
                    Bulk::Other(reply) => reply,
                },
            })
        })
    }

    /// Runs `exchange` on this tool's connection to `node`. After an error
    /// the connection is dropped (it may be in the middle of a reply) and
    /// the error names the node (errors of opening it name it already).
    fn on_connection<T>(
        &mut self,
        node: &NodeAddr,
        exchange: impl FnOnce(&mut NodeConnection) -> Result<T>,
    ) -> Result<T> {
        let conn = self.connection(node)?;
        exchange(conn).map_err(|e| {
            self.drop_connection(node);
            e.at_node(&node.to_string())
        })
    }

    /// `INFO [section]` as `field -> value`.
    pub fn info(
        &mut self,
        node: &NodeAddr,
        section: Option<&str>,
    ) -> Result<HashMap<String, String>> {
        let reply = match section {
            Some(s) => self.query(node, &[b"INFO", s.as_bytes()])?,
            None => self.query(node, &[b"INFO"])?,
        };
        text_of(&reply)
            .map(|t| parse_info(&t))
            .ok_or_else(|| unexpected(node, "INFO"))
    }

    /// `CONFIG GET name`: `None` when the server refuses (CONFIG renamed)
    /// or does not know the parameter; an ACL refusal is an error, to be
    /// reported as one.
    pub fn config_get(&mut self, node: &NodeAddr, name: &str) -> Result<Option<String>> {
        match self.query(node, &[b"CONFIG", b"GET", name.as_bytes()]) {
            Ok(Value::Array(items)) => Ok(items.get(1).and_then(text_of)),
            Ok(_) => Ok(None),
            Err(e) if e.is_reply(ReplyClass::NoPerm) => Err(e),
            Err(e) if matches!(e.kind, ErrorKind::Server | ErrorKind::Auth) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The time of one `PING` round trip (the connection is opened first,
    /// outside the measurement).
    pub fn ping(&mut self, node: &NodeAddr) -> Result<Duration> {
        self.connection(node)?;
        let started = Instant::now();
        self.query(node, &[b"PING"])?;
        Ok(started.elapsed())
    }

    /// `CLUSTER NODES` as asked of `node`.
    pub fn cluster_nodes(&mut self, node: &NodeAddr) -> Result<Vec<ClusterNode>> {
        let reply = self.query(node, &[b"CLUSTER", b"NODES"])?;
        let text = text_of(&reply).ok_or_else(|| unexpected(node, "CLUSTER NODES"))?;
        let mut nodes = parse_cluster_nodes(&text, node);
        let hosts: Vec<&str> = self
            .map
            .masters
            .iter()
            .map(|m| m.node.host.as_str())
            .collect();
        address_by_hostname_like(&mut nodes, &hosts);
        Ok(nodes)
    }

    /// Whether `node` answers a PING without authentication (a connection
    /// opened without username and password).
    pub fn answers_without_auth(&self, node: &NodeAddr) -> Result<bool> {
        let mut params = self.params.clone();
        params.username = None;
        params.password = None;
        let deadline = Instant::now() + self.config.op_timeout;
        let mut conn = NodeConnection::open(node, &params, deadline)?;
        conn.set_timeout(self.config.socket_timeout)?;
        match conn.query(&[b"PING"]) {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ErrorKind::Auth => Ok(false),
            Err(e) => Err(e.at_node(&node.to_string())),
        }
    }
}

/// A server's error reply as an error; a NOPERM names the ACL permission
/// that is missing (`permission denied: the ACL lacks +ping`), so that a
/// refusal is reported as what it is.
pub fn server_error(node: &NodeAddr, e: &ServerError, args: &[&[u8]]) -> Error {
    let mut error = e.to_error();
    if e.class() == ReplyClass::NoPerm {
        // The class stays: callers match on it, not on these words.
        error.message = format!(
            "node {node}: permission denied: the ACL lacks +{}",
            acl_name(args)
        );
        return error;
    }
    error.at_node(&node.to_string())
}

/// The ACL name of a command: `ping`, `cluster|nodes`, `memory|usage`.
pub fn acl_name(args: &[&[u8]]) -> String {
    let word = |i: usize| {
        args.get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .unwrap_or_default()
    };
    let command = word(0);
    match command.as_str() {
        "cluster" | "config" | "memory" | "client" | "object" => format!("{command}|{}", word(1)),
        _ => command,
    }
}

fn exchange(conn: &mut NodeConnection, packed: &[u8], replies: usize) -> Result<Vec<Value>> {
    conn.send(packed)?;
    (0..replies).map(|_| conn.receive()).collect()
}

fn unexpected(node: &NodeAddr, what: &str) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("node {node}: unexpected {what} reply"),
    )
}

/// The text of a bulk, simple or verbatim string reply.
pub fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
