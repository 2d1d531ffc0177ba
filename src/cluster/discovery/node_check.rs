//! Reconfigure's check: every node asked for its slot map with the new
//! settings before any connection uses them.

use std::time::Instant;

use super::ask::ask_each;
use super::seeds::{is_decisive, no_slot_map_error, read_slot_map};
use crate::config::NodeAddr;
use crate::connection::ConnectParams;
use crate::error::{Error, ErrorKind, Result};
use crate::logging;

/// Asks every node of `nodes` at once for its slot map with `params`, all
/// within one `redis-connect-timeout` + `redis-socket-timeout`: what a
/// reconfigure checks before it applies new credentials, TLS files or
/// seeds. A refusal that another try would not change (authentication, TLS,
/// not a cluster node) from any node is the error, naming the node: ACL
/// users live on each node, and a node left out of a password rotation
/// must stop it before any connection uses the new password. Nodes that do
/// not answer are logged; at least one must take the settings.
pub(crate) fn check_nodes(nodes: &[NodeAddr], params: &ConnectParams) -> Result<()> {
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
