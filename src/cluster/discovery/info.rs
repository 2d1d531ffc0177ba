//! A node's `INFO`, read and parsed, and the refusal of a node that is
//! not a Redis Cluster node (standalone, Sentinel: ORS supports neither).

use std::collections::HashMap;
use std::time::Instant;

use super::ask::query_by;
use crate::cluster::ConnectionSet;
use crate::config::NodeAddr;
use crate::connection::ConnectParams;
use crate::error::{Error, ErrorKind, Result};
use crate::reply::Value;

/// Parses an `INFO` reply into its `field:value` lines.
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Refuses anything that is not a cluster node, from its INFO fields.
pub(super) fn check_is_cluster(node: &NodeAddr, fields: &HashMap<String, String>) -> Result<()> {
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

/// `INFO` of `node`, parsed, before `deadline`.
pub(super) fn read_info(
    conns: &mut ConnectionSet,
    node: &NodeAddr,
    params: &ConnectParams,
    deadline: Instant,
) -> Result<HashMap<String, String>> {
    query_by(conns, node, params, deadline, &[b"INFO"]).and_then(|reply| match reply {
        Value::BulkString(b) => Ok(parse_info(&String::from_utf8_lossy(&b))),
        other => Err(Error::new(
            ErrorKind::Server,
            format!("unexpected INFO reply: {other:?}"),
        )),
    })
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
}
