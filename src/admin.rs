//! Operator tools over a live cluster, behind the `ors-redis` command: a
//! health check against what ORS recommends (`doctor`), sizing
//! (`capacity`), and inspecting or removing one ORS cluster's sessions
//! (`sessions`).
//!
//! Unlike the data path, this is a one-shot tool on one thread: [`Admin`]
//! reads the slot map once, opens a connection to each node it talks to on
//! first use, and follows a MOVED or ASK it meets instead of retrying under a
//! deadline. Nothing here touches the library's global state (`client`), so
//! a process may use both.

pub mod capacity;
pub mod doctor;
pub mod sessions;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::reply::Value;

use crate::config::{Config, NodeAddr};
use crate::connection::{reply_error, ConnectParams, NodeConnection};
use crate::discovery::{parse_info, read_slot_map};
use crate::error::{Error, ErrorKind, Result};
use crate::resp;
use crate::topology::SlotMap;

/// The outcome of one check, as the operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// A one-thread view of the cluster: the config, the slot map read at
/// connect, and a connection per node talked to so far.
pub struct Admin {
    pub config: Config,
    /// The node that gave the slot map.
    pub seed: NodeAddr,
    pub map: SlotMap,
    params: ConnectParams,
    conns: HashMap<String, NodeConnection>,
}

impl Admin {
    /// Reads the slot map from the first seed that gives one. Fails at once
    /// on an authentication problem or a node that is not a cluster node.
    pub fn connect(config: Config) -> Result<Admin> {
        let params = ConnectParams::from_config(&config)?;
        let mut last_error: Option<Error> = None;
        for seed in &config.nodes {
            match read_slot_map(seed, &params) {
                Ok(map) => {
                    return Ok(Admin {
                        seed: seed.clone(),
                        map,
                        params,
                        conns: HashMap::new(),
                        config,
                    });
                }
                Err(e)
                    if matches!(e.kind, ErrorKind::Auth | ErrorKind::Tls | ErrorKind::Config) =>
                {
                    return Err(e)
                }
                Err(e) => last_error = Some(e),
            }
        }
        let e = last_error.unwrap_or_else(|| Error::new(ErrorKind::Connection, "no seed nodes"));
        Err(Error::new(
            e.kind,
            format!(
                "no node in redis-nodes could be used; last error: {}",
                e.message
            ),
        ))
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
            Some(Value::ServerError(e)) => Err(reply_error(&e).at_node(&node.to_string())),
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
            resp::pack_command(&mut packed, args);
        }
        // Errors of opening the connection name the node already.
        let conn = self.connection(node)?;
        match exchange(conn, &packed, commands.len()) {
            Ok(replies) => Ok(replies),
            Err(e) => {
                self.drop_connection(node);
                Err(e.at_node(&node.to_string()))
            }
        }
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

    /// `CONFIG GET name`: `None` when the server refuses (CONFIG renamed or
    /// forbidden by ACL) or does not know the parameter.
    pub fn config_get(&mut self, node: &NodeAddr, name: &str) -> Result<Option<String>> {
        match self.query(node, &[b"CONFIG", b"GET", name.as_bytes()]) {
            Ok(Value::Array(items)) => Ok(items.get(1).and_then(text_of)),
            Ok(_) => Ok(None),
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
        Ok(parse_cluster_nodes(&text, node))
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

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: String,
    /// `None` for a node the cluster knows no address of (`noaddr`).
    pub addr: Option<NodeAddr>,
    pub flags: Vec<String>,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    pub connected: bool,
    /// Number of slots this node serves (a master).
    pub slots: usize,
}

impl ClusterNode {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn is_master(&self) -> bool {
        self.has_flag("master")
    }

    pub fn is_replica(&self) -> bool {
        self.has_flag("slave")
    }

    /// Marked failed (or suspected), without an address, or not yet joined.
    pub fn is_failed(&self) -> bool {
        ["fail", "fail?", "noaddr", "handshake"]
            .iter()
            .any(|f| self.has_flag(f))
    }

    pub fn addr_text(&self) -> String {
        match &self.addr {
            Some(a) => a.to_string(),
            None => format!("(no address, id {})", self.id),
        }
    }
}

/// Parses `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags>
/// <master-id> <ping> <pong> <epoch> <link-state> <slot>...`. `asked` is the
/// node that answered (Redis 3.x-4.x shows ":port" for itself before it
/// knows its IP).
pub fn parse_cluster_nodes(text: &str, asked: &NodeAddr) -> Vec<ClusterNode> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let endpoint = fields[1].split(['@', ',']).next().unwrap_or("");
        let addr = match endpoint.strip_prefix(':') {
            Some("0") | Some("") => None,
            Some(port) => NodeAddr::parse(&format!("{}:{port}", asked.host)).ok(),
            None => NodeAddr::parse(endpoint).ok(),
        };
        let slots = fields[8..]
            .iter()
            // Migrating/importing entries look like "[5461->-<id>]".
            .filter(|s| !s.starts_with('['))
            .map(|s| match s.split_once('-') {
                Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                    (Ok(a), Ok(b)) if b >= a => b - a + 1,
                    _ => 0,
                },
                None => usize::from(s.parse::<usize>().is_ok()),
            })
            .sum();
        out.push(ClusterNode {
            id: fields[0].to_string(),
            addr,
            flags: fields[2].split(',').map(str::to_string).collect(),
            master_id: Some(fields[3]).filter(|m| *m != "-").map(str::to_string),
            connected: fields[7] == "connected",
            slots,
        });
    }
    out
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

    #[test]
    fn cluster_nodes_lines_are_parsed() {
        let text = "\
f033 127.0.0.1:7064@17064 slave 020a 0 1795655072111 1 connected
3a2b 127.0.0.1:7061@17061,node-b master - 0 1795655072111 2 connected 5461-10922
020a :7060@17060 myself,master - 0 1795655071000 1 connected 0-5460 16383 [93->-3a2b]
dead :0@0 master,fail,noaddr - 0 1 4 disconnected
short line
";
        let asked = NodeAddr::parse("10.0.0.1:7060").unwrap();
        let nodes = parse_cluster_nodes(text, &asked);
        assert_eq!(nodes.len(), 4);
        assert!(nodes[0].is_replica() && !nodes[0].is_master());
        assert_eq!(nodes[0].master_id.as_deref(), Some("020a"));
        assert_eq!(
            nodes[1].addr.as_ref().unwrap().to_string(),
            "127.0.0.1:7061"
        );
        assert_eq!(nodes[1].slots, 5462);
        assert_eq!(nodes[1].master_id, None);
        assert_eq!(nodes[2].addr.as_ref().unwrap().to_string(), "10.0.0.1:7060");
        assert_eq!(nodes[2].slots, 5462);
        assert!(nodes[3].addr.is_none() && nodes[3].is_failed() && !nodes[3].connected);
        assert!(nodes[3].addr_text().contains("dead"));
    }
}
