//! What ORS recommends of the Redis Cluster under it, in one place: init's
//! start-up warnings (`discovery`) and the operator command's `doctor` and
//! `capacity` (through `operator`) judge a deployment by these rules, each
//! in its own words.

use std::collections::HashMap;
use std::time::Duration;

/// At least this many masters (ORS's sizing rule), each with a replica.
///
/// cbindgen:ignore
pub const MIN_MASTERS: usize = 3;

/// About one master per this many ORS HA pairs ("3 nodes per 9 pairs").
///
/// cbindgen:ignore
pub const ORS_PAIRS_PER_MASTER: u64 = 3;

/// The masters ORS's sizing rule asks for `ors_pairs` HA pairs: one per
/// `ORS_PAIRS_PER_MASTER` pairs, and never fewer than `MIN_MASTERS`.
pub fn masters_for(ors_pairs: u64) -> u64 {
    ors_pairs
        .div_ceil(ORS_PAIRS_PER_MASTER)
        .max(MIN_MASTERS as u64)
}

/// Every master has at least this many replicas (on another host): a
/// master without one loses its sessions when it fails.
///
/// cbindgen:ignore
pub const MIN_REPLICAS: usize = 1;

/// The eviction policy: every session key has a TTL, so any other policy
/// (`volatile-*` included) may evict live sessions under memory pressure.
///
/// cbindgen:ignore
pub const EVICTION_POLICY: &str = "noeviction";

/// Whether a `maxmemory-policy` may evict live sessions.
pub fn evicts_sessions(policy: &str) -> bool {
    policy != EVICTION_POLICY
}

/// AOF on every node (a replica that is promoted too): without it, the
/// sessions written since the last snapshot are lost when a node restarts.
/// Whether INFO's fields say AOF is on (`aof_enabled:1`); `None` when INFO
/// does not tell.
pub fn aof_on_in_info(fields: &HashMap<String, String>) -> Option<bool> {
    fields.get("aof_enabled").map(|v| v == "1")
}

/// `appendfsync no` leaves the writes to the OS (up to ~30 s of sessions
/// lost on a crash); `everysec` is the usual choice.
pub fn fsync_leaves_it_to_the_os(appendfsync: &str) -> bool {
    appendfsync == "no"
}

/// A `redis_version` as (major, minor, patch).
pub type Version = (u32, u32, u32);

/// Reads `major.minor[.patch]` (a missing patch is 0).
pub(crate) fn parse_version(text: &str) -> Option<Version> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// UNLINK exists from this version on; before it, a delete is DEL, which
/// blocks the node while it frees the value.
///
/// cbindgen:ignore
pub const UNLINK_SINCE: Version = (4, 0, 0);

/// Whether a server of this `redis_version` has UNLINK (an unreadable
/// version counts as one without).
pub fn has_unlink(version: &str) -> bool {
    parse_version(version).is_some_and(|v| v >= UNLINK_SINCE)
}

/// A PING round trip above this is slow: ORS writes on every state change.
///
/// cbindgen:ignore
pub const SLOW_ROUND_TRIP: Duration = Duration::from_millis(5);

/// A master's `used_memory` share of `maxmemory` (percent) from which it is
/// a warning, and a failure: with noeviction, writes fail at maxmemory.
///
/// cbindgen:ignore
pub const MEMORY_WARN_PERCENT: f64 = 75.0;
///
/// cbindgen:ignore
pub const MEMORY_FAIL_PERCENT: f64 = 90.0;

/// `maxmemory` over the session data itself: fragmentation, replication
/// backlog and client buffers.
///
/// cbindgen:ignore
pub const MEMORY_HEADROOM: f64 = 1.3;

/// A projection above this share of a master's memory budget is a warning.
///
/// cbindgen:ignore
pub const PROJECTION_WARN_PERCENT: f64 = 80.0;

/// Without maxmemory a node may grow to its host's RAM, and the AOF
/// rewrite's fork may need as much again (copy on write): a projection
/// above this share of the node's part of the host's RAM is a warning.
///
/// cbindgen:ignore
pub const HOST_WARN_PERCENT: f64 = 50.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("7.0.15"), Some((7, 0, 15)));
        assert_eq!(parse_version("3.0"), Some((3, 0, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(!has_unlink("3.2.6"));
        assert!(has_unlink("4.0.0"));
        assert!(!has_unlink("unknown"));
    }

    #[test]
    fn masters_by_ors_pairs() {
        assert_eq!(masters_for(0), 3);
        assert_eq!(masters_for(9), 3);
        assert_eq!(masters_for(10), 4);
        assert_eq!(masters_for(12), 4);
    }

    #[test]
    fn eviction_and_fsync() {
        assert!(!evicts_sessions("noeviction"));
        assert!(evicts_sessions("volatile-lru"));
        assert!(fsync_leaves_it_to_the_os("no"));
        assert!(!fsync_leaves_it_to_the_os("everysec"));
    }
}
