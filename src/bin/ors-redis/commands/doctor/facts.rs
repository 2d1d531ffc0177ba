//! What `doctor` asks of every node: CLUSTER NODES, INFO, CLUSTER INFO,
//! CONFIG GET and PING round trips, gathered into [`Facts`] for the checks
//! (`checks.rs`), which do no I/O.

use std::collections::HashMap;
use std::time::Duration;

use ors_redis::operator::{
    key_slot, parse_info, recommend, restore_acl, Error, ErrorKind, KeyBuilder, NodeAddr,
    NodeCursor, Page, Reply, ReplyClass, Value,
};
use ors_redis::{dictionary, envelope};

use crate::cluster::Cluster;
use crate::commands::sessions::store::packed;

/// PINGs per node; the median is reported.
pub(super) const PINGS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Role {
    Master,
    Replica,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "replica",
        }
    }
}

/// What one node told us (or why it told nothing).
#[derive(Debug, Clone)]
pub(super) struct NodeFacts {
    /// `host:port`, or a description for a node without address.
    pub name: String,
    pub addr: Option<NodeAddr>,
    pub role: Role,
    /// A replica's master, when known.
    pub master: Option<String>,
    /// The master serves slots.
    pub serves_slots: bool,
    /// CLUSTER NODES flags that mark the node failed (`fail`, `fail?`, ...).
    pub marked: Option<String>,
    /// Why the node could not be asked.
    pub error: Option<String>,
    pub round_trips: Vec<Duration>,
    pub info: HashMap<String, String>,
    pub cluster_info: HashMap<String, String>,
    /// From CONFIG GET; `None` when the server refused it.
    pub appendonly: Option<String>,
    pub appendfsync: Option<String>,
    pub maxmemory_policy: Option<String>,
    /// Whether the node answered PING on a connection without credentials
    /// (only asked when the config has a password).
    pub open_without_auth: Option<bool>,
    /// Commands refused for lack of ACL permission (`ping`, `config|get`).
    pub denied: Vec<String>,
    /// This node's view of the slot map (each range with its master's id,
    /// sorted), from its own CLUSTER NODES.
    pub slot_view: Option<Vec<String>>,
    /// Slots this node has open: "slot 0 migrating to 127.0.0.1:7001".
    pub open_slots: Vec<String>,
}

impl NodeFacts {
    pub(super) fn new(name: String, addr: Option<NodeAddr>, role: Role) -> Self {
        NodeFacts {
            name,
            addr,
            role,
            master: None,
            serves_slots: false,
            marked: None,
            error: None,
            round_trips: Vec::new(),
            info: HashMap::new(),
            cluster_info: HashMap::new(),
            appendonly: None,
            appendfsync: None,
            maxmemory_policy: None,
            open_without_auth: None,
            denied: Vec::new(),
            slot_view: None,
            open_slots: Vec::new(),
        }
    }

    /// Not there to serve: marked failed by the cluster, or not answering.
    pub(super) fn down(&self) -> bool {
        self.marked.is_some() || self.error.is_some()
    }

    pub(super) fn reachable(&self) -> bool {
        self.error.is_none() && self.addr.is_some()
    }

    /// The median PING round trip.
    pub(super) fn round_trip(&self) -> Option<Duration> {
        let mut sorted = self.round_trips.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }

    /// `appendonly` from CONFIG GET, else from INFO (`aof_enabled`).
    pub(super) fn aof_on(&self) -> Option<bool> {
        match self.appendonly.as_deref() {
            Some(v) => Some(v == "yes"),
            None => recommend::aof_on_in_info(&self.info),
        }
    }

    pub(super) fn eviction_policy(&self) -> Option<&str> {
        self.maxmemory_policy
            .as_deref()
            .or_else(|| self.info.get("maxmemory_policy").map(String::as_str))
    }

    pub(super) fn info_u64(&self, field: &str) -> Option<u64> {
        self.info.get(field).and_then(|v| v.parse().ok())
    }
}

/// Everything `evaluate` needs.
#[derive(Debug, Clone)]
pub(super) struct Facts {
    pub seed: String,
    pub nodes: Vec<NodeFacts>,
    pub unserved_slots: usize,
    /// Seeds tried first that gave no slot map, and why.
    pub seed_errors: Vec<(NodeAddr, Error)>,
    /// How the config authenticates ("ACL user 'ors'", "password"), if at all.
    pub auth: Option<String>,
    pub tls: bool,
    /// Where the node list came from: CLUSTER NODES, or CLUSTER SLOTS when
    /// CLUSTER NODES was refused.
    pub topology_source: &'static str,
    /// A master refused `CLUSTER GETKEYSINSLOT` (NOPERM): what the restore
    /// lacks and the ACL line that adds it (`restore_acl::advice`).
    pub restore_lacks: Option<String>,
    /// Sampled sessions whose value is compressed (in the envelope), or
    /// why none could be sampled.
    pub envelopes: std::result::Result<EnvelopeSample, String>,
}

/// How many of a sample of stored sessions are compressed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct EnvelopeSample {
    pub sampled: u64,
    pub enveloped: u64,
    /// The compression dictionaries the sampled values name: id (8 hex
    /// digits), how many values name it, and whether the cluster holds it.
    pub dictionaries: Vec<NamedDictionary>,
}

/// A dictionary the sampled values name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NamedDictionary {
    pub id: String,
    pub values: u64,
    pub present: bool,
}

/// Sessions sampled per master (the first SCAN pages), for the envelope count.
pub(super) const ENVELOPE_SAMPLE_PER_MASTER: usize = 200;
/// SCAN pages asked per master at most while sampling.
const ENVELOPE_SAMPLE_PAGES: usize = 20;

/// Asks every node of the cluster for what [`evaluate`] checks.
pub(super) fn gather(admin: &mut Cluster) -> Facts {
    let (mut nodes, topology_source) = node_list(admin);
    let check_auth = admin.config().password.is_some();
    for node in &mut nodes {
        let Some(addr) = node.addr.clone() else {
            continue;
        };
        if let Err(e) = ask_node(admin, &addr, node, check_auth) {
            node.error = Some(e.message);
        }
    }
    // The restore's permission, asked of one master (restore_acl.rs).
    let master = admin.map().masters.first().map(|m| m.addr.clone());
    let refused = master.is_some_and(|m| {
        matches!(
            admin.query(&m, &[b"CLUSTER", b"GETKEYSINSLOT", b"0", b"0"]),
            Err(e) if is_denied(&e)
        )
    });
    Facts {
        restore_lacks: refused.then(|| restore_acl::advice(admin.config().username.as_deref())),
        seed: admin.seed.to_string(),
        nodes,
        seed_errors: admin.seed_errors.clone(),
        unserved_slots: admin.map().unserved_slots(),
        auth: match (&admin.config().username, &admin.config().password) {
            (Some(user), Some(_)) => Some(format!("ACL user '{user}'")),
            (None, Some(_)) => Some("password (requirepass or the default user)".to_string()),
            _ => None,
        },
        tls: admin.config().tls.enabled,
        topology_source,
        envelopes: sample_envelopes(admin).map_err(|e| e.message),
    }
}

/// Reads the first bytes (`GETRANGE key 0 21`, whatever the value's size) of
/// up to [`ENVELOPE_SAMPLE_PER_MASTER`] sessions per master and counts
/// those in the compressed values' envelope: where a site stands before an
/// older ors-redis, which does not read them, could meet one. The
/// dictionaries they name are looked for (`PTTL` of each key): a value
/// whose dictionary is gone cannot be read.
fn sample_envelopes(admin: &mut Cluster) -> ors_redis::operator::Result<EnvelopeSample> {
    let pattern = KeyBuilder::new(&admin.config().cluster_name)
        .session_pattern(b"")
        .map_err(Error::invalid)?;
    let last = (envelope::HEADER_LEN + 3).to_string();
    let mut named: std::collections::BTreeMap<u32, u64> = Default::default();
    let mut out = EnvelopeSample::default();
    for node in admin.masters() {
        let mut cursor = NodeCursor::default();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for _ in 0..ENVELOPE_SAMPLE_PAGES {
            if cursor.is_done() || keys.len() >= ENVELOPE_SAMPLE_PER_MASTER {
                break;
            }
            let reply = admin.query(&node, &cursor.command(&pattern))?;
            let page = Page::parse(reply).ok_or_else(|| {
                Error::new(
                    ErrorKind::Server,
                    format!("node {node}: unexpected SCAN reply"),
                )
            })?;
            keys.extend(cursor.advance(page).map_err(|e| e.at_node(&node))?);
        }
        keys.truncate(ENVELOPE_SAMPLE_PER_MASTER);
        let commands: Vec<Vec<&[u8]>> = keys
            .iter()
            .map(|k| vec![&b"GETRANGE"[..], k, b"0", last.as_bytes()])
            .collect();
        for reply in admin.pipeline(&node, &commands)? {
            if let Value::BulkString(prefix) = reply {
                out.sampled += 1;
                out.enveloped += u64::from(envelope::is_sealed(&prefix));
                if let Some(id) = envelope::dictionary_named(&prefix) {
                    *named.entry(id).or_default() += 1;
                }
            }
        }
    }
    let client = admin.client.clone();
    for (id, values) in named {
        let key = client.keys.dictionary_key(id);
        let pttl: [&[u8]; 2] = [b"PTTL", &key];
        let command = packed(&pttl);
        let (_, reply) = admin.route(key_slot(&key), &mut |x| {
            x.send(&command)?;
            match x.receive()? {
                Value::Int(ms) => Ok(Reply::Done(ms)),
                Value::ServerError(e) => Ok(Reply::Error(e)),
                other => Err(Error::new(
                    ErrorKind::Server,
                    format!("unexpected PTTL reply {other:?}"),
                )),
            }
        })?;
        out.dictionaries.push(NamedDictionary {
            id: dictionary::format_id(id),
            values,
            present: reply != -2,
        });
    }
    Ok(out)
}

fn ask_node(
    admin: &mut Cluster,
    addr: &NodeAddr,
    node: &mut NodeFacts,
    check_auth: bool,
) -> ors_redis::operator::Result<()> {
    // A command the ACL refuses is noted, and the others are still asked.
    let refused = |e: Error, node: &mut NodeFacts, command: &str| {
        if is_denied(&e) {
            node.denied.push(command.to_string());
            Ok(())
        } else {
            Err(e)
        }
    };
    for _ in 0..PINGS {
        match admin.ping(addr) {
            Ok(d) => node.round_trips.push(d),
            Err(e) => {
                refused(e, node, "ping")?;
                break;
            }
        }
    }
    match admin.info(addr, None) {
        Ok(info) => node.info = info,
        Err(e) => refused(e, node, "info")?,
    }
    match admin.query(addr, &[b"CLUSTER", b"INFO"]) {
        Ok(reply) => {
            if let Some(text) = reply.text() {
                node.cluster_info = parse_info(&text);
            }
        }
        Err(e) => refused(e, node, "cluster|info")?,
    }
    match admin.query(addr, &[b"CLUSTER", b"NODES"]) {
        Ok(reply) => {
            if let Some(text) = reply.text() {
                let (view, open) = slot_view(&text);
                node.slot_view = Some(view);
                node.open_slots = open;
            }
        }
        Err(e) => refused(e, node, "cluster|nodes")?,
    }
    for (name, field) in [
        ("appendonly", &mut node.appendonly),
        ("appendfsync", &mut node.appendfsync),
        ("maxmemory-policy", &mut node.maxmemory_policy),
    ] {
        match admin.config_get(addr, name) {
            Ok(value) => *field = value,
            Err(e) if is_denied(&e) => {
                if !node.denied.iter().any(|d| d == "config|get") {
                    node.denied.push("config|get".to_string());
                }
            }
            Err(e) => return Err(e),
        }
    }
    if check_auth {
        node.open_without_auth = admin.answers_without_auth(addr).ok();
    }
    Ok(())
}

fn is_denied(e: &Error) -> bool {
    e.is_reply(ReplyClass::NoPerm)
}

/// From one node's CLUSTER NODES: its view of the slot map (each slot range
/// with its master's id, sorted) and the slots it has open, as
/// `redis-cli --cluster check` reads them (`[0->-id]` migrating,
/// `[0-<-id]` importing).
pub(super) fn slot_view(text: &str) -> (Vec<String>, Vec<String>) {
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_ascii_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 8)
        .collect();
    let addr_of = |id: &str| {
        lines
            .iter()
            .find(|f| f[0] == id)
            .map(|f| f[1].split(['@', ',']).next().unwrap_or(id).to_string())
            .unwrap_or_else(|| format!("id {id}"))
    };
    let mut view = Vec::new();
    let mut open = Vec::new();
    for f in &lines {
        let myself = f[2].split(',').any(|flag| flag == "myself");
        for entry in &f[8..] {
            match entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
                Some(inner) if myself => {
                    if let Some((slot, to)) = inner.split_once("->-") {
                        open.push(format!("slot {slot} migrating to {}", addr_of(to)));
                    } else if let Some((slot, from)) = inner.split_once("-<-") {
                        open.push(format!("slot {slot} importing from {}", addr_of(from)));
                    }
                }
                Some(_) => {}
                None => view.push(format!("{entry} {}", f[0])),
            }
        }
    }
    view.sort_unstable();
    (view, open)
}

/// Every node of the cluster, masters first, from CLUSTER NODES (asked of
/// the seed, then of each master), or from the slot map when every node
/// refuses CLUSTER NODES.
fn node_list(admin: &mut Cluster) -> (Vec<NodeFacts>, &'static str) {
    let mut askable = vec![admin.seed.clone()];
    askable.extend(admin.masters().into_iter().filter(|m| *m != admin.seed));
    for asked in &askable {
        let Ok(list) = admin.cluster_nodes(asked) else {
            continue;
        };
        let names: HashMap<&str, String> = list
            .iter()
            .map(|n| (n.id.as_str(), n.addr_text()))
            .collect();
        let mut nodes: Vec<NodeFacts> = list
            .iter()
            .filter(|n| n.is_master() || n.is_replica())
            .map(|n| {
                let role = if n.is_master() {
                    Role::Master
                } else {
                    Role::Replica
                };
                let mut facts = NodeFacts::new(n.addr_text(), n.addr.clone(), role);
                facts.serves_slots = n.is_master() && n.slots > 0;
                facts.master = n
                    .master_id
                    .as_deref()
                    .map(|id| names.get(id).cloned().unwrap_or_else(|| format!("id {id}")));
                if n.is_failed() {
                    facts.marked = Some(n.flags.join(","));
                }
                facts
            })
            .collect();
        sort_nodes(&mut nodes);
        return (nodes, "CLUSTER NODES");
    }
    let mut nodes = Vec::new();
    for m in &admin.map().masters {
        let mut facts = NodeFacts::new(m.addr.to_string(), Some(m.addr.clone()), Role::Master);
        facts.serves_slots = true;
        nodes.push(facts);
        for r in &m.replicas {
            let mut facts = NodeFacts::new(r.to_string(), Some(r.clone()), Role::Replica);
            facts.master = Some(m.addr.to_string());
            nodes.push(facts);
        }
    }
    sort_nodes(&mut nodes);
    (nodes, "CLUSTER SLOTS")
}

fn sort_nodes(nodes: &mut [NodeFacts]) {
    nodes.sort_by(|a, b| {
        let key = |n: &NodeFacts| {
            (
                n.role,
                n.addr.as_ref().map(|a| (a.host.clone(), a.port)),
                n.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}
