//! What init learns about the cluster before the library accepts calls:
//! that the seeds are Redis Cluster nodes (ORS supports nothing else), the
//! slot map, the server versions (UNLINK exists from 4.0 on), and where the
//! deployment is below what ORS recommends.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cluster_nodes::parse_cluster_nodes;
use crate::config::{Config, NodeAddr};
use crate::connection::{ConnectParams, NodeConnection};
use crate::error::{Error, ErrorKind, ReplyClass, Result};
use crate::logging;
use crate::reply::Value;
use crate::topology::SlotMap;

/// What init found.
pub struct Discovery {
    pub map: SlotMap,
    /// Every master answered INFO with a version of 4.0 or newer.
    pub use_unlink: bool,
}

/// A `redis_version` as (major, minor, patch).
pub type Version = (u32, u32, u32);

pub fn parse_version(text: &str) -> Option<Version> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
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
    let map = find_slot_map(&config.nodes, params)?;
    let found = check_masters(&map, params)?;

    let mut warnings = found.warnings;
    let use_unlink = found.use_unlink;
    if map.masters.len() < 3 {
        warnings.push(format!(
            "only {} master(s); ORS recommends at least 3 masters with replicas",
            map.masters.len()
        ));
    }
    // CLUSTER SLOTS leaves out replicas that have not synced yet (7.0), so
    // count them from CLUSTER NODES where the user may run it.
    let replica_counts = found.replica_counts;
    let replicas_of = |m: &crate::topology::Master| {
        replica_counts
            .as_ref()
            .and_then(|c| c.get(&*m.addr).copied())
            .unwrap_or(m.replicas.len())
    };
    for m in &map.masters {
        if replicas_of(m) == 0 {
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
    replicas_of: impl Fn(&crate::topology::Master) -> usize,
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

/// Asks every seed at once and takes the first slot map that comes back.
/// Seeds still connecting when one answered are left to finish on their
/// own (each within its deadline); nothing of theirs is used.
fn find_slot_map(seeds: &[NodeAddr], params: &ConnectParams) -> Result<SlotMap> {
    let deadline = Instant::now() + params.connect_timeout + params.socket_timeout;
    let (tx, rx) = mpsc::channel();
    let mut errors: Vec<Option<Error>> = vec![None; seeds.len()];
    let mut answered = 0;
    for (index, seed) in seeds.iter().enumerate() {
        let (tx, seed, params) = (tx.clone(), seed.clone(), params.clone());
        let spawned = std::thread::Builder::new()
            .name("ors-redis-seed".into())
            .spawn(move || {
                let (result, lines) =
                    logging::capture(|| read_slot_map_by(&seed, &params, deadline));
                let _ = tx.send((index, result, lines));
            });
        if let Err(e) = spawned {
            errors[index] = Some(Error::new(
                ErrorKind::Connection,
                format!("cannot start a thread to ask seed {}: {e}", seeds[index]),
            ));
            answered += 1;
        }
    }
    drop(tx);
    while answered < seeds.len() {
        // Every seed's own deadline is `deadline`; the margin is for its
        // thread to report.
        let wait = deadline.saturating_duration_since(Instant::now()) + SEED_REPORT_MARGIN;
        let Ok((index, result, lines)) = rx.recv_timeout(wait) else {
            break;
        };
        answered += 1;
        logging::requeue(lines);
        match result {
            Ok(map) => return Ok(map),
            Err(e) if matches!(e.kind, ErrorKind::Auth | ErrorKind::Tls | ErrorKind::Config) => {
                return Err(e)
            }
            Err(e) => {
                tracing::warn!(node = %seeds[index], error = %e, "seed node unusable");
                errors[index] = Some(e);
            }
        }
    }
    Err(no_seed_error(seeds, &errors))
}

/// How long past its deadline a seed's thread may take to report.
const SEED_REPORT_MARGIN: Duration = Duration::from_millis(100);

/// Init's error when no seed gave a slot map, with one of the statuses the
/// header lists for init: a seed's "no slots assigned" stays
/// `ORS_ERR_CLUSTER`; timeouts, lost connections and odd replies are
/// `ORS_ERR_CONNECTION`.
fn no_seed_error(seeds: &[NodeAddr], errors: &[Option<Error>]) -> Error {
    let timed_out = |e: &Option<Error>| e.as_ref().is_none_or(|e| e.kind == ErrorKind::Timeout);
    if !seeds.is_empty() && errors.iter().all(timed_out) {
        return Error::new(
            ErrorKind::Connection,
            format!(
                "every seed node in redis-nodes timed out ({}): check that they are reachable \
                 from this host and redis-connect-timeout",
                seeds
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let kind = if errors
        .iter()
        .flatten()
        .any(|e| e.kind == ErrorKind::Cluster)
    {
        ErrorKind::Cluster
    } else {
        ErrorKind::Connection
    };
    let details: Vec<String> = seeds
        .iter()
        .zip(errors)
        .map(|(seed, e)| match e {
            Some(e) => e.message.clone(),
            None => format!("node {seed}: no answer in time"),
        })
        .collect();
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
    replica_counts: Option<HashMap<String, usize>>,
}

/// INFO (version, AOF, eviction policy) and CLUSTER NODES (replica counts)
/// from every master at once, within one connect and one socket timeout.
fn check_masters(map: &SlotMap, params: &ConnectParams) -> Result<MasterChecks> {
    let deadline = Instant::now() + params.connect_timeout + params.socket_timeout;
    let answers: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = map
            .masters
            .iter()
            .map(|master| {
                std::thread::Builder::new()
                    .name("ors-redis-check".into())
                    .spawn_scoped(scope, move || {
                        logging::capture(|| ask_master(&master.node, params, deadline))
                    })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().ok(),
                Err(_) => None,
            })
            .collect()
    });
    let mut checks = MasterChecks {
        use_unlink: true,
        warnings: Vec::new(),
        replica_counts: None,
    };
    for (master, answer) in map.masters.iter().zip(answers) {
        let (info, nodes) = match answer {
            Some(((info, nodes), lines)) => {
                logging::requeue(lines);
                (info, nodes)
            }
            None => (
                Err(Error::new(ErrorKind::Internal, "the check's thread failed")),
                None,
            ),
        };
        if checks.replica_counts.is_none() {
            checks.replica_counts = nodes.map(|text| count_replicas(&text, &master.node));
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
        let version = fields.get("redis_version").and_then(|v| parse_version(v));
        match version {
            Some(v) if v >= (4, 0, 0) => {}
            _ => checks.use_unlink = false,
        }
        tracing::info!(
            node = %master.addr,
            version = fields.get("redis_version").map(String::as_str).unwrap_or("?"),
            "master"
        );
        checks
            .warnings
            .extend(deployment_warnings(&master.addr, &fields));
    }
    Ok(checks)
}

/// One master's INFO fields, and its CLUSTER NODES text if it lets us read it.
type MasterAnswer = (Result<HashMap<String, String>>, Option<String>);

fn ask_master(node: &NodeAddr, params: &ConnectParams, deadline: Instant) -> MasterAnswer {
    let mut conn = match NodeConnection::open(node, params, deadline) {
        Ok(c) => c,
        Err(e) => return (Err(e), None),
    };
    let fields = query_by(&mut conn, deadline, &[b"INFO"]).and_then(|reply| match reply {
        Value::BulkString(b) => Ok(parse_info(&String::from_utf8_lossy(&b))),
        other => Err(Error::new(
            ErrorKind::Server,
            format!("unexpected INFO reply: {other:?}"),
        )),
    });
    let nodes = match query_by(&mut conn, deadline, &[b"CLUSTER", b"NODES"]) {
        Ok(Value::BulkString(text)) => Some(String::from_utf8_lossy(&text).into_owned()),
        _ => None,
    };
    (fields, nodes)
}

/// One request whose reply must come before `deadline`.
fn query_by(conn: &mut NodeConnection, deadline: Instant, args: &[&[u8]]) -> Result<Value> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::new(
            ErrorKind::Timeout,
            "init's time for this node ran out",
        ));
    }
    conn.set_timeout(left)?;
    conn.query(args)
}

/// What INFO of one master says against ORS's recommendations.
pub fn deployment_warnings(addr: &str, fields: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    if fields.get("aof_enabled").map(String::as_str) != Some("1") {
        out.push(format!(
            "master {addr}: AOF is off (appendonly no); ORS recommends AOF so sessions survive a restart"
        ));
    }
    match fields.get("maxmemory_policy").map(String::as_str) {
        Some("noeviction") => {}
        Some(policy) => out.push(format!(
            "master {addr}: maxmemory-policy is {policy}; every session key has a TTL, so eviction \
             can drop live sessions: use noeviction"
        )),
        // Before 3.2 INFO has no maxmemory_policy; nothing to check then.
        None => {}
    }
    out
}

/// Parses `CLUSTER NODES` lines (`<id> <ip:port@cport[,host]> <flags> <master-id> ...`)
/// into the number of healthy replicas of each master, keyed by `host:port`.
pub fn count_replicas(text: &str, asked: &NodeAddr) -> HashMap<String, usize> {
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
            Some((master.addr.as_ref()?.to_string(), healthy_replicas))
        })
        .collect()
}

/// The first seed that gave a slot map: which one, its map, and the seeds
/// before it that did not, with why.
pub struct SeedMap {
    pub seed: NodeAddr,
    pub map: SlotMap,
    pub refusals: Vec<(NodeAddr, Error)>,
}

/// The seed loop: asks the seeds in order until one gives a slot map.
/// `refused` hears of each seed that did not; returning `true` ends the loop
/// at once (that refusal is then the last one). Without a map: every refusal.
pub fn first_slot_map(
    seeds: &[NodeAddr],
    params: &ConnectParams,
    refused: &mut dyn FnMut(&NodeAddr, &Error) -> bool,
) -> std::result::Result<SeedMap, Vec<(NodeAddr, Error)>> {
    let mut refusals = Vec::new();
    for seed in seeds {
        match read_slot_map(seed, params) {
            Ok(map) => {
                return Ok(SeedMap {
                    seed: seed.clone(),
                    map,
                    refusals,
                })
            }
            Err(e) => {
                let stop = refused(seed, &e);
                refusals.push((seed.clone(), e));
                if stop {
                    break;
                }
            }
        }
    }
    Err(refusals)
}

/// Reads the slot map from one seed, refusing a node that is not a cluster
/// node (standalone, Sentinel) with a config error.
pub fn read_slot_map(seed: &NodeAddr, params: &ConnectParams) -> Result<SlotMap> {
    let deadline = Instant::now() + params.connect_timeout + params.socket_timeout;
    read_slot_map_by(seed, params, deadline)
}

/// `read_slot_map`, done before `deadline`.
fn read_slot_map_by(seed: &NodeAddr, params: &ConnectParams, deadline: Instant) -> Result<SlotMap> {
    let mut conn = NodeConnection::open(seed, params, deadline)?;
    let info = query_by(&mut conn, deadline, &[b"INFO"]).and_then(|reply| match reply {
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
        Err(e) => return Err(e.at_node(&seed.to_string())),
    }
    let reply = query_by(&mut conn, deadline, &[b"CLUSTER", b"SLOTS"]).map_err(|e| {
        if e.is_reply(ReplyClass::ClusterDisabled) {
            Error::config(format!(
                "node {seed} is a standalone Redis (cluster support disabled); ORS persistence needs a Redis Cluster"
            ))
        } else {
            e.at_node(&seed.to_string())
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
    fn versions() {
        assert_eq!(parse_version("7.0.15"), Some((7, 0, 15)));
        assert_eq!(parse_version("3.0"), Some((3, 0, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(parse_version("3.2.6").unwrap() < (4, 0, 0));
        assert!(parse_version("4.0.0").unwrap() >= (4, 0, 0));
    }

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
        assert_eq!(counts["127.0.0.1:7302"], 1);
        assert_eq!(
            counts["127.0.0.1:7301"], 1,
            "a failed replica does not count"
        );
        assert_eq!(counts["127.0.0.1:7300"], 0);
        let old = count_replicas(
            "abc :7000 myself,master - 0 0 0 connected 0-16383\n",
            &NodeAddr::parse("10.0.0.1:7000").unwrap(),
        );
        assert_eq!(old["10.0.0.1:7000"], 0);
    }

    #[test]
    fn init_without_a_seed_returns_a_status_the_header_lists_for_init() {
        let seeds: Vec<NodeAddr> = ["10.0.0.1:7000", "10.0.0.2:7000"]
            .iter()
            .map(|s| NodeAddr::parse(s).unwrap())
            .collect();
        let timeout = || Some(Error::new(ErrorKind::Timeout, "connect timed out"));
        let e = no_seed_error(&seeds, &[timeout(), None]);
        assert_eq!(e.kind, ErrorKind::Connection);
        assert!(e.message.contains("every seed node"), "{}", e.message);
        for (other, want) in [
            (ErrorKind::Server, ErrorKind::Connection),
            (ErrorKind::Connection, ErrorKind::Connection),
            (ErrorKind::Internal, ErrorKind::Connection),
            (ErrorKind::Cluster, ErrorKind::Cluster),
        ] {
            let e = no_seed_error(&seeds, &[timeout(), Some(Error::new(other, "x"))]);
            assert_eq!(e.kind, want, "{other:?}");
            assert!(e.message.contains("no answer") || e.message.contains("timed out"));
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
