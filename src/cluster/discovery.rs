//! What init learns about the cluster before the library accepts calls:
//! that the seeds are Redis Cluster nodes (ORS supports nothing else), the
//! slot map, the server versions (UNLINK exists from 4.0 on), and where the
//! deployment is below what ORS recommends.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cluster::cluster_nodes::parse_cluster_nodes;
use crate::cluster::restore_acl;
use crate::cluster::topology::SlotMap;
use crate::cluster::{Budget, ConnectionSet};
use crate::config::{Config, NodeAddr};
use crate::connection::ConnectParams;
use crate::error::{Error, ErrorKind, ReplyClass, Result};
use crate::logging;
use crate::recommend;
use crate::reply::Value;

/// What init found.
pub struct Discovery {
    pub map: SlotMap,
    /// Every master answered INFO with a version of 4.0 or newer.
    pub use_unlink: bool,
}

/// Parses an `INFO` reply into its `field:value` lines.
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Refuses anything that is not a cluster node, from its INFO fields.
pub fn check_is_cluster(node: &NodeAddr, fields: &HashMap<String, String>) -> Result<()> {
    let mode = fields.get("redis_mode").map(String::as_str);
    if mode == Some("sentinel") {
        return Err(Error::config(format!(
            "node {node} is a Redis Sentinel; ORS persistence needs a Redis Cluster (Sentinel is not supported)"
        )));
    }
    if fields.get("cluster_enabled").map(String::as_str) == Some("0") || mode == Some("standalone")
    {
        return Err(Error::config(format!(
            "node {node} is a standalone Redis (cluster_enabled:0); ORS persistence needs a Redis Cluster \
             (cluster-enabled yes, at least 3 masters)"
        )));
    }
    Ok(())
}

/// Finds the slot map through the seeds, then checks every master. Each of
/// the two phases takes at most `redis-connect-timeout` +
/// `redis-socket-timeout`: the seeds are tried at once, and so are the
/// masters. Fails fast on authentication, TLS and "not a cluster".
pub fn discover(config: &Config, params: &ConnectParams) -> Result<Discovery> {
    let (seed, map) = init_slot_map(&config.nodes, params)?;
    let found = check_masters(&map, params)?;
    if !found.unreachable.is_empty() && found.unreachable.len() == map.masters.len() {
        return Err(unreachable_masters_error(&seed, &found.unreachable));
    }

    let mut warnings = found.warnings;
    let use_unlink = found.use_unlink;
    if map.masters.len() < recommend::MIN_MASTERS {
        warnings.push(format!(
            "only {} master(s); ORS recommends at least {} masters with replicas",
            map.masters.len(),
            recommend::MIN_MASTERS
        ));
    }
    // CLUSTER SLOTS leaves out replicas that have not synced yet (7.0), so
    // count them from CLUSTER NODES where the user may run it.
    let replica_counts = found.replica_counts;
    let replicas_of = |m: &crate::cluster::topology::Master| {
        replica_counts
            .as_ref()
            .and_then(|c| c.get(&m.addr).copied())
            .unwrap_or(m.replicas.len())
    };
    for m in &map.masters {
        if replicas_of(m) < recommend::MIN_REPLICAS {
            warnings.push(format!(
                "master {} has no replica: its sessions are lost if it fails",
                m.addr
            ));
        }
    }
    let unserved = map.unserved_slots();
    if unserved > 0 {
        warnings.push(format!(
            "{unserved} of 16384 slots are not served: calls for them fail with ORS_ERR_CLUSTER"
        ));
    }
    tracing::info!(
        masters = map.masters.len(),
        delete_command = if use_unlink { "UNLINK" } else { "DEL" },
        "cluster topology: {}",
        map.describe(replicas_of)
    );
    for w in &warnings {
        tracing::warn!("deployment below ORS recommendations: {w}");
    }
    // Before any takeover: the restore's permission (restore_acl.rs).
    if let Some(master) = map.masters.first() {
        let deadline = Instant::now() + params.connect_timeout + params.socket_timeout;
        if restore_acl::listing_refused(&master.addr, params, deadline) {
            tracing::warn!("{}", restore_acl::advice(config.username.as_deref()));
        }
    }
    if let Some(w) = wait_replicas_warning(config.wait_replicas, &map, replicas_of) {
        tracing::warn!(wait_replicas = config.wait_replicas, "{w}");
        warnings.push(w);
    }
    Ok(Discovery { map, use_unlink })
}

/// A warning when `wait-replicas` asks for more replicas than some master
/// has: every write to its slots would then end in ORS_ERR_NOT_DURABLE.
pub fn wait_replicas_warning(
    wait_replicas: u32,
    map: &SlotMap,
    replicas_of: impl Fn(&crate::cluster::topology::Master) -> usize,
) -> Option<String> {
    let short: Vec<String> = map
        .masters
        .iter()
        .filter(|m| replicas_of(m) < wait_replicas as usize)
        .map(|m| format!("{} has {}", m.addr, replicas_of(m)))
        .collect();
    if short.is_empty() {
        return None;
    }
    Some(format!(
        "wait-replicas={wait_replicas} exceeds the replicas of {} of {} master(s) ({}): every put \
         and del on their slots will return ORS_ERR_NOT_DURABLE after waiting wait-timeout; \
         lower wait-replicas or add replicas",
        short.len(),
        map.masters.len(),
        short.join(", ")
    ))
}

/// What to do when the cluster announces addresses this host cannot reach:
/// said by init's error and warnings and by the operator's `doctor`.
pub const ADDRESS_MAP_ADVICE: &str = "if the cluster announces addresses this host cannot reach \
     (NAT, containers, a tunnel), map each to one it can with \
     redis-address-map='announced:port=reachable:port;...'";

/// The error when a seed gave the slot map but no master in it can be
/// reached: the cluster most likely announces addresses that are its own
/// (behind NAT, in containers), so the message names them and the key that
/// maps them. `ORS_ERR_CONNECTION`, as for seeds that cannot be reached.
pub fn unreachable_masters_error(seed: &NodeAddr, unreachable: &[(NodeAddr, Error)]) -> Error {
    let addrs: Vec<String> = unreachable.iter().map(|(a, _)| a.to_string()).collect();
    let why: Vec<&str> = unreachable
        .iter()
        .map(|(_, e)| e.message.as_str())
        .collect();
    Error::new(
        ErrorKind::Connection,
        format!(
            "seed {seed} gave the slot map, but no master it announces can be reached from this \
             host ({}): {}; {ADDRESS_MAP_ADVICE}",
            addrs.join(", "),
            why.join("; ")
        ),
    )
}

/// Init's slot map, and the seed that gave it: the first map a seed gives.
/// The seeds that gave none are logged; without a map, the error says why
/// (see `no_slot_map_error`).
fn init_slot_map(seeds: &[NodeAddr], params: &ConnectParams) -> Result<(NodeAddr, SlotMap)> {
    let log_refusals = |refusals: &[(NodeAddr, Error)]| {
        for (seed, e) in refusals.iter().filter(|(_, e)| !is_decisive(e)) {
            tracing::warn!(node = %seed, error = %e, "seed node unusable");
        }
    };
    match find_slot_map(seeds, params, SeedChoice::FirstToAnswer) {
        Ok(found) => {
            log_refusals(&found.refusals);
            Ok((found.seed, found.map))
        }
        Err(refusals) => {
            log_refusals(&refusals);
            Err(no_slot_map_error(&refusals))
        }
    }
}

/// Asks every node of `nodes` at once for its slot map with `params`, all
/// within one `redis-connect-timeout` + `redis-socket-timeout`: what a
/// reconfigure checks before it applies new credentials, TLS files or
/// seeds. A refusal that another try would not change (authentication, TLS,
/// not a cluster node) from any node is the error, naming the node: ACL
/// users live on each node, and a node left out of a password rotation
/// must stop it before any connection uses the new password. Nodes that do
/// not answer are logged; at least one must take the settings.
pub fn check_nodes(nodes: &[NodeAddr], params: &ConnectParams) -> Result<()> {
    let deadline = Instant::now() + params.connect_timeout + params.socket_timeout;
    let answers = ask_each(nodes.iter(), |node| read_slot_map(node, params, deadline));
    let mut refusals = Vec::new();
    let mut took = 0;
    for (node, answer) in nodes.iter().zip(answers) {
        let result = match answer {
            Some((result, lines)) => {
                logging::requeue(lines);
                result.map(|_| ())
            }
            None => Err(Error::new(
                ErrorKind::Connection,
                format!("cannot start a thread to ask node {node}"),
            )),
        };
        match result {
            Ok(()) => took += 1,
            Err(e) if is_decisive(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "node not checked with the new settings");
                refusals.push((node.clone(), e));
            }
        }
    }
    if took == 0 {
        return Err(no_slot_map_error(&refusals));
    }
    Ok(())
}

/// Runs `ask` on every node at once, each on a thread of its own, and
/// returns each answer in the nodes' order with the log lines it wrote
/// (for the caller to pass on); `None` where a thread could not be started
/// or panicked.
fn ask_each<'n, T: Send>(
    nodes: impl Iterator<Item = &'n NodeAddr>,
    ask: impl Fn(&NodeAddr) -> T + Sync,
) -> Vec<Option<(T, logging::Captured)>> {
    let ask = &ask;
    std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .map(|node| {
                std::thread::Builder::new()
                    .name("ors-redis-check".into())
                    .spawn_scoped(scope, move || logging::capture(|| ask(node)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.ok().and_then(|h| h.join().ok()))
            .collect()
    })
}

/// A seed's refusal that no other seed would change (wrong password, TLS,
/// not a cluster): it ends init's search at once, and it is the error
/// reported when no seed gives a map.
pub fn is_decisive(e: &Error) -> bool {
    matches!(e.kind, ErrorKind::Auth | ErrorKind::Tls | ErrorKind::Config)
}

/// The error when no seed gave a slot map, from every seed's refusal (in
/// seed order), with one of the statuses the header lists for init: a
/// decisive refusal as it is; a seed's "no slots assigned" stays
/// `ORS_ERR_CLUSTER`; timeouts, lost connections and odd replies are
/// `ORS_ERR_CONNECTION`.
pub fn no_slot_map_error(refusals: &[(NodeAddr, Error)]) -> Error {
    if let Some((_, e)) = refusals.iter().find(|(_, e)| is_decisive(e)) {
        return e.clone();
    }
    if !refusals.is_empty() && refusals.iter().all(|(_, e)| e.kind == ErrorKind::Timeout) {
        return Error::new(
            ErrorKind::Connection,
            format!(
                "every seed node in redis-nodes timed out ({}): check that they are reachable \
                 from this host and redis-connect-timeout",
                refusals
                    .iter()
                    .map(|(seed, _)| seed.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let kind = if refusals.iter().any(|(_, e)| e.kind == ErrorKind::Cluster) {
        ErrorKind::Cluster
    } else {
        ErrorKind::Connection
    };
    let details: Vec<&str> = refusals.iter().map(|(_, e)| e.message.as_str()).collect();
    Error::new(
        kind,
        format!(
            "no seed node in redis-nodes could be used: {}",
            if details.is_empty() {
                "no seed nodes".to_string()
            } else {
                details.join("; ")
            }
        ),
    )
}

/// What the masters told init.
struct MasterChecks {
    use_unlink: bool,
    warnings: Vec<String>,
    replica_counts: Option<HashMap<NodeAddr, usize>>,
    /// The masters no connection could be opened to (refused, timed out),
    /// and why.
    unreachable: Vec<(NodeAddr, Error)>,
}

/// INFO (version, AOF, eviction policy) and CLUSTER NODES (replica counts)
/// from every master at once, within one connect and one socket timeout.
fn check_masters(map: &SlotMap, params: &ConnectParams) -> Result<MasterChecks> {
    let deadline = Instant::now() + params.connect_timeout + params.socket_timeout;
    let answers = ask_each(map.masters.iter().map(|m| &m.addr), |node| {
        ask_master(node, params, deadline)
    });
    let mut checks = MasterChecks {
        use_unlink: true,
        warnings: Vec::new(),
        replica_counts: None,
        unreachable: Vec::new(),
    };
    for (master, answer) in map.masters.iter().zip(answers) {
        let (info, nodes) = match answer {
            Some((MasterAnswer::Unreachable(e), lines)) => {
                logging::requeue(lines);
                checks.warnings.push(format!(
                    "master {} cannot be reached from this host ({}); {ADDRESS_MAP_ADVICE}",
                    master.addr, e.message
                ));
                checks.use_unlink = false;
                checks.unreachable.push((master.addr.clone(), e));
                continue;
            }
            Some((MasterAnswer::Answered(info, nodes), lines)) => {
                logging::requeue(lines);
                (info, nodes)
            }
            None => (
                Err(Error::new(ErrorKind::Internal, "the check's thread failed")),
                None,
            ),
        };
        if checks.replica_counts.is_none() {
            checks.replica_counts = nodes.map(|text| count_replicas(&text, &master.addr));
        }
        let fields = match info {
            Ok(f) => f,
            Err(e) if e.kind == ErrorKind::Auth => return Err(e),
            Err(e) => {
                checks.warnings.push(format!(
                    "master {}: cannot read INFO ({})",
                    master.addr, e.message
                ));
                checks.use_unlink = false;
                continue;
            }
        };
        if !fields
            .get("redis_version")
            .is_some_and(|v| recommend::has_unlink(v))
        {
            checks.use_unlink = false;
        }
        tracing::info!(
            node = %master.addr,
            version = fields.get("redis_version").map(String::as_str).unwrap_or("?"),
            "master"
        );
        checks
            .warnings
            .extend(deployment_warnings(&master.addr.to_string(), &fields));
    }
    Ok(checks)
}

/// What one master told init.
enum MasterAnswer {
    /// No connection: refused or timed out.
    Unreachable(Error),
    /// Its INFO fields, and its CLUSTER NODES text if it lets us read it.
    Answered(Result<HashMap<String, String>>, Option<String>),
}

fn ask_master(node: &NodeAddr, params: &ConnectParams, deadline: Instant) -> MasterAnswer {
    let mut conns = ConnectionSet::default();
    let fields =
        query_by(&mut conns, node, params, deadline, &[b"INFO"]).and_then(|reply| match reply {
            Value::BulkString(b) => Ok(parse_info(&String::from_utf8_lossy(&b))),
            other => Err(Error::new(
                ErrorKind::Server,
                format!("unexpected INFO reply: {other:?}"),
            )),
        });
    if conns.open_count() == 0 {
        // No connection left: none could be opened, or it was lost.
        return match fields {
            Err(e) if matches!(e.kind, ErrorKind::Connection | ErrorKind::Timeout) => {
                MasterAnswer::Unreachable(e)
            }
            fields => MasterAnswer::Answered(fields, None),
        };
    }
    let nodes = match query_by(&mut conns, node, params, deadline, &[b"CLUSTER", b"NODES"]) {
        Ok(Value::BulkString(text)) => Some(String::from_utf8_lossy(&text).into_owned()),
        _ => None,
    };
    MasterAnswer::Answered(fields, nodes)
}

/// One request to `node` whose reply must come before `deadline`.
fn query_by(
    conns: &mut ConnectionSet,
    node: &NodeAddr,
    params: &ConnectParams,
    deadline: Instant,
    args: &[&[u8]],
) -> Result<Value> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(
            Error::new(ErrorKind::Timeout, "init's time for this node ran out").at_node(node),
        );
    }
    conns.query(node, params, &Budget::until(deadline, left), args)
}

/// What INFO of one master says against ORS's recommendations.
pub fn deployment_warnings(addr: &str, fields: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    if recommend::aof_on_in_info(fields) != Some(true) {
        out.push(format!(
            "master {addr}: AOF is off (appendonly no); ORS recommends AOF so sessions survive a restart"
        ));
    }
    // Before 3.2 INFO has no maxmemory_policy; nothing to check then.
    if let Some(policy) = fields.get("maxmemory_policy") {
        if recommend::evicts_sessions(policy) {
            out.push(format!(
                "master {addr}: maxmemory-policy is {policy}; every session key has a TTL, so \
                 eviction can drop live sessions: use {}",
                recommend::EVICTION_POLICY
            ));
        }
    }
    out
}

/// Parses `CLUSTER NODES` lines (`<id> <ip:port@cport[,host]> <flags> <master-id> ...`)
/// into the number of healthy replicas of each master.
pub fn count_replicas(text: &str, asked: &NodeAddr) -> HashMap<NodeAddr, usize> {
    let nodes = parse_cluster_nodes(text, asked);
    nodes
        .iter()
        .filter(|n| n.is_master())
        .filter_map(|master| {
            let healthy_replicas = nodes
                .iter()
                .filter(|r| r.is_replica() && !r.is_failed())
                .filter(|r| r.master_id.as_deref() == Some(master.id.as_str()))
                .count();
            let addr = master.addr.as_ref()?;
            // Keyed by address and by host name: the slot map names
            // masters by either (`cluster-preferred-endpoint-type`).
            let by_name = master.hostname.as_ref().map(|name| {
                let named = NodeAddr {
                    host: name.clone(),
                    port: addr.port,
                };
                (named, healthy_replicas)
            });
            Some([Some((addr.clone(), healthy_replicas)), by_name])
        })
        .flatten()
        .flatten()
        .collect()
}

/// Which slot map the seed loop takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedChoice {
    /// The first map to come back, whichever seed it is from (init: the
    /// quickest start). A decisive refusal (`is_decisive`) ends the search.
    FirstToAnswer,
    /// The map of the first seed in the list that gives one, once every
    /// seed before it has refused (the operator command: a report that
    /// names the same seed on every run while the cluster is the same).
    FirstInOrder,
}

/// A slot map the seed loop found: which seed gave it, the map, and the
/// seeds that refused before the choice was made, with why (in seed order;
/// for `FirstInOrder`, exactly the seeds before `seed`).
pub struct SeedMap {
    pub seed: NodeAddr,
    pub map: SlotMap,
    pub refusals: Vec<(NodeAddr, Error)>,
}

/// The seed loop, for init and the operator command alike: asks every node
/// of `seeds` at once, all within one `redis-connect-timeout` +
/// `redis-socket-timeout`, and takes a map as `choice` says. A seed still
/// connecting when the choice is made is left to finish on its own (within
/// that same deadline); nothing of its is used. Without a map: every seed's
/// refusal in seed order, a seed that did not answer in time as a timeout.
pub fn find_slot_map(
    seeds: &[NodeAddr],
    params: &ConnectParams,
    choice: SeedChoice,
) -> std::result::Result<SeedMap, Vec<(NodeAddr, Error)>> {
    let deadline = Instant::now() + params.connect_timeout + params.socket_timeout;
    let mut tally = Tally::new(choice, seeds.len());
    let (tx, rx) = mpsc::channel();
    for (index, seed) in seeds.iter().enumerate() {
        let (tx, seed, params) = (tx.clone(), seed.clone(), params.clone());
        let spawned = std::thread::Builder::new()
            .name("ors-redis-seed".into())
            .spawn(move || {
                let (result, lines) = logging::capture(|| read_slot_map(&seed, &params, deadline));
                let _ = tx.send((index, result, lines));
            });
        if let Err(e) = spawned {
            let e = Error::new(
                ErrorKind::Connection,
                format!("cannot start a thread to ask seed {}: {e}", seeds[index]),
            );
            tally.record(index, Err(e));
        }
    }
    drop(tx);
    while tally.verdict().is_none() {
        // Every seed's own deadline is `deadline`; the margin is for its
        // thread to report.
        let wait = deadline.saturating_duration_since(Instant::now()) + SEED_REPORT_MARGIN;
        let Ok((index, result, lines)) = rx.recv_timeout(wait) else {
            tally.give_up_waiting(seeds);
            break;
        };
        logging::requeue(lines);
        tally.record(index, result);
    }
    tally.into_outcome(seeds)
}

/// How long past its deadline a seed's thread may take to report.
const SEED_REPORT_MARGIN: Duration = Duration::from_millis(100);

/// The seeds' answers so far, and the choice they make: the seed loop's
/// rule, apart from its threads and clock.
struct Tally {
    choice: SeedChoice,
    answers: Vec<Option<Result<SlotMap>>>,
}

/// What the answers so far decide.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The map of the seed at this index.
    Map(usize),
    NoMap,
}

impl Tally {
    fn new(choice: SeedChoice, seeds: usize) -> Tally {
        Tally {
            choice,
            answers: (0..seeds).map(|_| None).collect(),
        }
    }

    fn record(&mut self, index: usize, answer: Result<SlotMap>) {
        if let Some(slot) = self.answers.get_mut(index) {
            *slot = Some(answer);
        }
    }

    /// Seeds that did not answer by the deadline count as timed out.
    fn give_up_waiting(&mut self, seeds: &[NodeAddr]) {
        for (seed, answer) in seeds.iter().zip(&mut self.answers) {
            if answer.is_none() {
                *answer = Some(Err(Error::new(
                    ErrorKind::Timeout,
                    format!("node {seed}: no answer in time"),
                )));
            }
        }
    }

    fn verdict(&self) -> Option<Verdict> {
        let is_map = |a: &Option<Result<SlotMap>>| matches!(a, Some(Ok(_)));
        match self.choice {
            SeedChoice::FirstToAnswer => {
                // Answers are recorded one at a time and judged after each,
                // so at most one map is ever in.
                if let Some(index) = self.answers.iter().position(is_map) {
                    return Some(Verdict::Map(index));
                }
                let decisive =
                    |a: &Option<Result<SlotMap>>| matches!(a, Some(Err(e)) if is_decisive(e));
                if self.answers.iter().any(decisive) {
                    return Some(Verdict::NoMap);
                }
            }
            SeedChoice::FirstInOrder => {
                for (index, answer) in self.answers.iter().enumerate() {
                    match answer {
                        None => return None,
                        Some(Ok(_)) => return Some(Verdict::Map(index)),
                        Some(Err(_)) => {}
                    }
                }
            }
        }
        self.answers
            .iter()
            .all(Option::is_some)
            .then_some(Verdict::NoMap)
    }

    fn into_outcome(
        self,
        seeds: &[NodeAddr],
    ) -> std::result::Result<SeedMap, Vec<(NodeAddr, Error)>> {
        let verdict = self.verdict();
        let chosen = match verdict {
            Some(Verdict::Map(index)) => Some(index),
            _ => None,
        };
        let considered = match (self.choice, chosen) {
            (SeedChoice::FirstInOrder, Some(index)) => index,
            _ => seeds.len(),
        };
        let mut map = None;
        let mut refusals = Vec::new();
        for (index, (seed, answer)) in seeds.iter().zip(self.answers).enumerate() {
            match answer {
                Some(Ok(m)) if Some(index) == chosen => map = Some((seed.clone(), m)),
                Some(Err(e)) if index < considered => refusals.push((seed.clone(), e)),
                _ => {}
            }
        }
        match map {
            Some((seed, map)) => Ok(SeedMap {
                seed,
                map,
                refusals,
            }),
            None => Err(refusals),
        }
    }
}

/// Reads the slot map from one seed before `deadline`, refusing a node that
/// is not a cluster node (standalone, Sentinel) with a config error.
fn read_slot_map(seed: &NodeAddr, params: &ConnectParams, deadline: Instant) -> Result<SlotMap> {
    let mut conns = ConnectionSet::default();
    let info =
        query_by(&mut conns, seed, params, deadline, &[b"INFO"]).and_then(|reply| match reply {
            Value::BulkString(b) => Ok(parse_info(&String::from_utf8_lossy(&b))),
            other => Err(Error::new(
                ErrorKind::Server,
                format!("unexpected INFO reply: {other:?}"),
            )),
        });
    match info {
        Ok(fields) => check_is_cluster(seed, &fields)?,
        // A least-privilege ACL user may not run INFO; CLUSTER SLOTS tells too.
        Err(e) if e.is_reply(ReplyClass::NoPerm) => {}
        Err(e) => return Err(e),
    }
    let reply = query_by(&mut conns, seed, params, deadline, &[b"CLUSTER", b"SLOTS"]).map_err(|e| {
        if e.is_reply(ReplyClass::ClusterDisabled) {
            Error::config(format!(
                "node {seed} is a standalone Redis (cluster support disabled); ORS persistence needs a Redis Cluster"
            ))
        } else {
            e
        }
    })?;
    let map = SlotMap::parse(&reply, seed)?;
    if map.masters.is_empty() {
        return Err(Error::new(
            ErrorKind::Cluster,
            format!("node {seed} reports no slots assigned: the cluster is not set up yet"),
        ));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_cluster_checks() {
        let node = NodeAddr::parse("127.0.0.1:7010").unwrap();
        let standalone = parse_info("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n# Cluster\r\ncluster_enabled:0\r\n");
        assert_eq!(standalone["redis_version"], "7.0.15");
        let e = check_is_cluster(&node, &standalone).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("standalone"));
        let sentinel = parse_info("redis_mode:sentinel\r\n");
        assert!(check_is_cluster(&node, &sentinel)
            .unwrap_err()
            .message
            .contains("Sentinel"));
        let cluster = parse_info("redis_mode:cluster\r\ncluster_enabled:1\r\n");
        assert!(check_is_cluster(&node, &cluster).is_ok());
    }

    #[test]
    fn replicas_are_counted_from_cluster_nodes() {
        let text = "\
15d0 127.0.0.1:7300@17300 master,fail - 1 1 1 disconnected
4ab5 127.0.0.1:7302@17302 master - 0 1 3 connected 10923-16383
b58f 127.0.0.1:7301@17301,node-b myself,master - 0 1 2 connected 5461-10922
f933 127.0.0.1:7305@17305 slave 4ab5 0 1 3 connected
2f27 127.0.0.1:7304@17304 slave b58f 0 1 2 connected
dead 127.0.0.1:7303@17303 slave,fail b58f 0 1 2 disconnected
";
        let counts = count_replicas(text, &NodeAddr::parse("127.0.0.1:7301").unwrap());
        assert_eq!(counts[&NodeAddr::parse("127.0.0.1:7302").unwrap()], 1);
        assert_eq!(
            counts[&NodeAddr::parse("127.0.0.1:7301").unwrap()],
            1,
            "a failed replica does not count"
        );
        assert_eq!(counts[&NodeAddr::parse("127.0.0.1:7300").unwrap()], 0);
        let old = count_replicas(
            "abc :7000 myself,master - 0 0 0 connected 0-16383\n",
            &NodeAddr::parse("10.0.0.1:7000").unwrap(),
        );
        assert_eq!(old[&NodeAddr::parse("10.0.0.1:7000").unwrap()], 0);
    }

    fn seeds(n: usize) -> Vec<NodeAddr> {
        (1..=n)
            .map(|i| NodeAddr::parse(&format!("10.0.0.{i}:7000")).unwrap())
            .collect()
    }

    fn refusal(kind: ErrorKind) -> Result<SlotMap> {
        Err(Error::new(kind, format!("{kind:?}")))
    }

    /// A one-master map whose seed is `seed` (its only master's address).
    fn map_from(seed: &NodeAddr) -> Result<SlotMap> {
        let reply = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(16383),
            Value::Array(vec![
                Value::BulkString(seed.host.as_bytes().to_vec()),
                Value::Int(i64::from(seed.port)),
            ]),
        ])]);
        SlotMap::parse(&reply, seed)
    }

    fn refused_seeds(r: &[(NodeAddr, Error)]) -> Vec<String> {
        r.iter().map(|(s, _)| s.to_string()).collect()
    }

    #[test]
    fn first_to_answer_takes_the_first_map_in_whichever_seed_it_is() {
        let s = seeds(3);
        let mut tally = Tally::new(SeedChoice::FirstToAnswer, 3);
        tally.record(0, refusal(ErrorKind::Connection));
        assert_eq!(tally.verdict(), None);
        tally.record(2, map_from(&s[2]));
        assert_eq!(tally.verdict(), Some(Verdict::Map(2)));
        let found = tally.into_outcome(&s).ok().unwrap();
        assert_eq!(found.seed, s[2]);
        assert_eq!(found.map.masters[0].addr.to_string(), "10.0.0.3:7000");
        assert_eq!(refused_seeds(&found.refusals), ["10.0.0.1:7000"]);
    }

    #[test]
    fn first_to_answer_ends_at_a_decisive_refusal() {
        for kind in [ErrorKind::Auth, ErrorKind::Tls, ErrorKind::Config] {
            let mut tally = Tally::new(SeedChoice::FirstToAnswer, 3);
            tally.record(1, refusal(kind));
            assert_eq!(tally.verdict(), Some(Verdict::NoMap), "{kind:?}");
            let refusals = tally.into_outcome(&seeds(3)).err().unwrap();
            assert_eq!(no_slot_map_error(&refusals).kind, kind);
        }
        let mut tally = Tally::new(SeedChoice::FirstToAnswer, 2);
        tally.record(0, refusal(ErrorKind::Timeout));
        assert_eq!(tally.verdict(), None, "a timeout is no reason to stop");
    }

    #[test]
    fn first_in_order_waits_for_every_seed_before_the_map() {
        let s = seeds(4);
        let mut tally = Tally::new(SeedChoice::FirstInOrder, 4);
        tally.record(2, map_from(&s[2]));
        tally.record(3, refusal(ErrorKind::Connection));
        assert_eq!(tally.verdict(), None, "seeds 1 and 2 may still answer");
        tally.record(1, map_from(&s[1]));
        assert_eq!(tally.verdict(), None);
        tally.record(0, refusal(ErrorKind::Auth));
        assert_eq!(
            tally.verdict(),
            Some(Verdict::Map(1)),
            "not stopped by Auth"
        );
        let found = tally.into_outcome(&s).ok().unwrap();
        assert_eq!(found.seed, s[1]);
        assert_eq!(
            refused_seeds(&found.refusals),
            ["10.0.0.1:7000"],
            "only the seeds before the chosen one"
        );
    }

    #[test]
    fn seeds_silent_at_the_deadline_are_timeouts() {
        let s = seeds(3);
        let mut tally = Tally::new(SeedChoice::FirstInOrder, 3);
        tally.record(1, map_from(&s[1]));
        tally.give_up_waiting(&s);
        let found = tally.into_outcome(&s).ok().unwrap();
        assert_eq!(found.seed, s[1]);
        assert_eq!(found.refusals[0].1.kind, ErrorKind::Timeout);

        let mut tally = Tally::new(SeedChoice::FirstToAnswer, 3);
        tally.record(2, refusal(ErrorKind::Connection));
        tally.give_up_waiting(&s);
        assert_eq!(tally.verdict(), Some(Verdict::NoMap));
        let refusals = tally.into_outcome(&s).err().unwrap();
        assert_eq!(
            refused_seeds(&refusals),
            ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]
        );
        assert_eq!(refusals[0].1.kind, ErrorKind::Timeout);
        assert!(refusals[0].1.message.contains("no answer in time"));
    }

    #[test]
    fn no_seeds_no_map() {
        for choice in [SeedChoice::FirstToAnswer, SeedChoice::FirstInOrder] {
            let tally = Tally::new(choice, 0);
            assert_eq!(tally.verdict(), Some(Verdict::NoMap));
            let e = no_slot_map_error(&tally.into_outcome(&[]).err().unwrap());
            assert!(e.message.contains("no seed nodes"), "{}", e.message);
        }
    }

    #[test]
    fn without_a_map_init_returns_a_status_the_header_lists_for_init() {
        let s = seeds(2);
        let timeout = || Error::new(ErrorKind::Timeout, "connect timed out");
        let e = no_slot_map_error(&[(s[0].clone(), timeout()), (s[1].clone(), timeout())]);
        assert_eq!(e.kind, ErrorKind::Connection);
        assert!(e.message.contains("every seed node"), "{}", e.message);
        for (other, want) in [
            (ErrorKind::Server, ErrorKind::Connection),
            (ErrorKind::Connection, ErrorKind::Connection),
            (ErrorKind::Internal, ErrorKind::Connection),
            (ErrorKind::Cluster, ErrorKind::Cluster),
            (ErrorKind::Auth, ErrorKind::Auth),
        ] {
            let e = no_slot_map_error(&[
                (s[0].clone(), timeout()),
                (s[1].clone(), Error::new(other, "x")),
            ]);
            assert_eq!(e.kind, want, "{other:?}");
        }
        let e = no_slot_map_error(&[
            (s[0].clone(), Error::new(ErrorKind::Connection, "refused")),
            (s[1].clone(), Error::new(ErrorKind::Tls, "bad certificate")),
        ]);
        assert_eq!(
            e.message, "bad certificate",
            "the decisive refusal, as it is"
        );
    }

    #[test]
    fn masters_announced_out_of_reach_are_named_with_the_key_to_set() {
        let s = seeds(1);
        let announced = NodeAddr::parse("10.9.0.1:7000").unwrap();
        let e = unreachable_masters_error(
            &s[0],
            &[(
                announced.clone(),
                Error::new(ErrorKind::Timeout, "connect timed out").at_node(&announced),
            )],
        );
        assert_eq!(e.kind, ErrorKind::Connection);
        for part in [
            "seed 10.0.0.1:7000 gave the slot map, but no master it announces can be reached",
            "(10.9.0.1:7000): node 10.9.0.1:7000: connect timed out",
            "redis-address-map='announced:port=reachable:port;...'",
        ] {
            assert!(e.message.contains(part), "{}", e.message);
        }
    }

    #[test]
    fn deployment_warnings_follow_ors_recommendations() {
        let good = parse_info("aof_enabled:1\r\nmaxmemory_policy:noeviction\r\n");
        assert!(deployment_warnings("n", &good).is_empty());
        let weak = parse_info("aof_enabled:0\r\nmaxmemory_policy:volatile-lru\r\n");
        let w = deployment_warnings("n", &weak);
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("AOF is off"));
        assert!(w[1].contains("volatile-lru"));
    }
}
