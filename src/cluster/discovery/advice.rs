//! Where the deployment is below what ORS recommends, in words init logs
//! at `warn`: too few masters, a master without a replica, slots no one
//! serves, AOF off, an evicting memory policy, `wait-replicas` above what
//! a master has. The figures live in `recommend.rs`.

use std::collections::HashMap;

use crate::cluster::topology::{Master, SlotMap};
use crate::recommend;

/// What the slot map says against ORS's recommendations: too few masters,
/// masters without a replica (`replicas_of` counts them), unserved slots.
pub(super) fn map_warnings(map: &SlotMap, replicas_of: impl Fn(&Master) -> usize) -> Vec<String> {
    let mut warnings = Vec::new();
    if map.masters.len() < recommend::MIN_MASTERS {
        warnings.push(format!(
            "only {} master(s); ORS recommends at least {} masters with replicas",
            map.masters.len(),
            recommend::MIN_MASTERS
        ));
    }
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
    warnings
}

/// A warning when `wait-replicas` asks for more replicas than some master
/// has: every write to its slots would then end in ORS_ERR_NOT_DURABLE.
pub(super) fn wait_replicas_warning(
    wait_replicas: u32,
    map: &SlotMap,
    replicas_of: impl Fn(&Master) -> usize,
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

/// What INFO of one master says against ORS's recommendations.
pub(super) fn deployment_warnings(addr: &str, fields: &HashMap<String, String>) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::discovery::parse_info;

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
