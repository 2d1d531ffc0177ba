//! What init learns about the cluster before the library accepts calls:
//! that the seeds are Redis Cluster nodes (ORS supports nothing else), the
//! slot map, the server versions (UNLINK exists from 4.0 on), and where the
//! deployment is below what ORS recommends.

use std::collections::HashMap;
use std::time::Instant;

use crate::cluster_nodes::parse_cluster_nodes;
use crate::config::{Config, NodeAddr};
use crate::connection::{ConnectParams, NodeConnection};
use crate::error::{Error, ErrorKind, ReplyClass, Result};
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

fn info(conn: &mut NodeConnection) -> Result<HashMap<String, String>> {
    match conn.query(&[b"INFO"])? {
        Value::BulkString(b) => Ok(parse_info(&String::from_utf8_lossy(&b))),
        other => Err(Error::new(
            ErrorKind::Server,
            format!("unexpected INFO reply: {other:?}"),
        )),
    }
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

/// Connects to the seeds in turn until one gives a slot map, then checks
/// every master. Fails fast on authentication, TLS and "not a cluster".
pub fn discover(config: &Config, params: &ConnectParams) -> Result<Discovery> {
    let stops = |e: &Error| matches!(e.kind, ErrorKind::Auth | ErrorKind::Tls | ErrorKind::Config);
    let found = first_slot_map(&config.nodes, params, &mut |seed, e| {
        if !stops(e) {
            tracing::warn!(node = %seed, error = %e, "seed node unusable, trying the next");
        }
        stops(e)
    });
    let map = match found {
        Ok(found) => found.map,
        Err(mut refusals) => {
            let e = refusals
                .pop()
                .map(|(_, e)| e)
                .unwrap_or_else(|| Error::new(ErrorKind::Connection, "no seed nodes"));
            if stops(&e) {
                return Err(e);
            }
            return Err(Error::new(
                e.kind,
                format!(
                    "no seed node in redis-nodes could be used; last error: {}",
                    e.message
                ),
            ));
        }
    };

    let mut warnings = Vec::new();
    let mut use_unlink = true;
    let deadline_for = || Instant::now() + params.connect_timeout;
    for master in &map.masters {
        let fields =
            NodeConnection::open(&master.node, params, deadline_for()).and_then(|mut c| {
                c.set_timeout(params.socket_timeout)?;
                info(&mut c)
            });
        let fields = match fields {
            Ok(f) => f,
            Err(e) if e.kind == ErrorKind::Auth => return Err(e),
            Err(e) => {
                warnings.push(format!(
                    "master {}: cannot read INFO ({})",
                    master.addr, e.message
                ));
                use_unlink = false;
                continue;
            }
        };
        let version = fields.get("redis_version").and_then(|v| parse_version(v));
        match version {
            Some(v) if v >= (4, 0, 0) => {}
            _ => use_unlink = false,
        }
        tracing::info!(
            node = %master.addr,
            version = fields.get("redis_version").map(String::as_str).unwrap_or("?"),
            "master"
        );
        warnings.extend(deployment_warnings(&master.addr, &fields));
    }
    if map.masters.len() < 3 {
        warnings.push(format!(
            "only {} master(s); ORS recommends at least 3 masters with replicas",
            map.masters.len()
        ));
    }
    // CLUSTER SLOTS leaves out replicas that have not synced yet (7.0), so
    // count them from CLUSTER NODES where the user may run it.
    let replica_counts = replica_counts(&map, params);
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
    Ok(Discovery { map, use_unlink })
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

/// Live replicas per master address, from `CLUSTER NODES` of any master.
fn replica_counts(map: &SlotMap, params: &ConnectParams) -> Option<HashMap<String, usize>> {
    for master in &map.masters {
        let reply = NodeConnection::open(
            &master.node,
            params,
            Instant::now() + params.connect_timeout,
        )
        .and_then(|mut c| {
            c.set_timeout(params.socket_timeout)?;
            c.query(&[b"CLUSTER", b"NODES"])
        });
        if let Ok(Value::BulkString(text)) = reply {
            return Some(count_replicas(
                &String::from_utf8_lossy(&text),
                &master.node,
            ));
        }
    }
    None
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
    let mut conn = NodeConnection::open(seed, params, Instant::now() + params.connect_timeout)?;
    conn.set_timeout(params.socket_timeout)?;
    match info(&mut conn) {
        Ok(fields) => check_is_cluster(seed, &fields)?,
        // A least-privilege ACL user may not run INFO; CLUSTER SLOTS tells too.
        Err(e) if e.is_reply(ReplyClass::NoPerm) => {}
        Err(e) => return Err(e.at_node(&seed.to_string())),
    }
    let reply = conn.query(&[b"CLUSTER", b"SLOTS"]).map_err(|e| {
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
