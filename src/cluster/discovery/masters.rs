//! Every master of the slot map asked at once: `INFO` (version, AOF,
//! eviction policy) and `CLUSTER NODES` (replica counts), and which
//! masters cannot be reached at all.

use std::collections::HashMap;
use std::time::Instant;

use super::address_map::ADDRESS_MAP_ADVICE;
use super::advice::deployment_warnings;
use super::ask::{ask_each, query_by};
use super::info::read_info;
use crate::cluster::cluster_nodes::parse_cluster_nodes;
use crate::cluster::topology::SlotMap;
use crate::cluster::ConnectionSet;
use crate::config::NodeAddr;
use crate::connection::ConnectParams;
use crate::error::{Error, ErrorKind, Result};
use crate::logging;
use crate::recommend;
use crate::reply::Value;

/// What the masters told init.
pub(super) struct MasterChecks {
    pub(super) use_unlink: bool,
    pub(super) warnings: Vec<String>,
    pub(super) replica_counts: Option<HashMap<NodeAddr, usize>>,
    /// The masters no connection could be opened to (refused, timed out),
    /// and why.
    pub(super) unreachable: Vec<(NodeAddr, Error)>,
}

/// INFO (version, AOF, eviction policy) and CLUSTER NODES (replica counts)
/// from every master at once, within one connect and one socket timeout.
pub(super) fn check_masters(map: &SlotMap, params: &ConnectParams) -> Result<MasterChecks> {
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
    let fields = read_info(&mut conns, node, params, deadline);
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

/// Parses `CLUSTER NODES` lines (`<id> <ip:port@cport[,host]> <flags> <master-id> ...`)
/// into the number of healthy replicas of each master.
pub(crate) fn count_replicas(text: &str, asked: &NodeAddr) -> HashMap<NodeAddr, usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
