//! How discovery asks nodes: each node on a thread of its own, at once,
//! and each request bounded by the check's one deadline.

use std::time::Instant;

use crate::cluster::{Budget, ConnectionSet};
use crate::config::NodeAddr;
use crate::connection::ConnectParams;
use crate::error::{Error, ErrorKind, Result};
use crate::logging;
use crate::reply::Value;

/// Runs `ask` on every node at once, each on a thread of its own, and
/// returns each answer in the nodes' order with the log lines it wrote
/// (for the caller to pass on); `None` where a thread could not be started
/// or panicked.
pub(super) fn ask_each<'n, T: Send>(
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

/// One request to `node` whose reply must come before `deadline`.
pub(super) fn query_by(
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
