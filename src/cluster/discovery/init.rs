//! Init's sequence: the slot map from the seeds, then every master's
//! answers, then what init warns about; what it found is a `Discovery`.

use std::time::Instant;

use super::address_map::unreachable_masters_error;
use super::advice::{map_warnings, wait_replicas_warning};
use super::masters::check_masters;
use super::restore_acl;
use super::seeds::init_slot_map;
use crate::cluster::topology::{Master, SlotMap};
use crate::config::Config;
use crate::connection::ConnectParams;
use crate::error::Result;

/// What init found.
pub(crate) struct Discovery {
    pub map: SlotMap,
    /// Every master answered INFO with a version of 4.0 or newer.
    pub use_unlink: bool,
}

/// Finds the slot map through the seeds, then checks every master. Each of
/// the two phases takes at most `redis-connect-timeout` +
/// `redis-socket-timeout`: the seeds are tried at once, and so are the
/// masters. Fails fast on authentication, TLS and "not a cluster".
pub(crate) fn discover(config: &Config, params: &ConnectParams) -> Result<Discovery> {
    let (seed, map) = init_slot_map(&config.nodes, params)?;
    let found = check_masters(&map, params)?;
    if !found.unreachable.is_empty() && found.unreachable.len() == map.masters.len() {
        return Err(unreachable_masters_error(&seed, &found.unreachable));
    }

    let mut warnings = found.warnings;
    let use_unlink = found.use_unlink;
    // CLUSTER SLOTS leaves out replicas that have not synced yet (7.0), so
    // count them from CLUSTER NODES where the user may run it.
    let replica_counts = found.replica_counts;
    let replicas_of = |m: &Master| {
        replica_counts
            .as_ref()
            .and_then(|c| c.get(&m.addr).copied())
            .unwrap_or(m.replicas.len())
    };
    warnings.extend(map_warnings(&map, replicas_of));
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
