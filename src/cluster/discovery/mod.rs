//! What init learns about the cluster before the library accepts calls,
//! and what a reconfigure checks before it applies new settings. One file
//! per concern:
//!
//! - `init.rs`: `discover`, init's sequence (seeds, then masters, then
//!   the warnings), and what it found (`Discovery`).
//! - `seeds.rs`: the seed loop (`find_slot_map`), for init and the
//!   operator command: every seed asked at once for the slot map, which
//!   refusals end the search, and the error when no seed gives a map.
//! - `masters.rs`: every master asked at once for INFO and CLUSTER NODES
//!   (versions, AOF, eviction, replica counts, reachability).
//! - `info.rs`: INFO read and parsed; a node that is not a cluster node
//!   (standalone, Sentinel) refused.
//! - `advice.rs`: the warnings where the deployment is below what ORS
//!   recommends (`recommend.rs` holds the figures).
//! - `address_map.rs`: the error and advice when the cluster announces
//!   addresses this host cannot reach (`redis-address-map`).
//! - `restore_acl.rs`: whether the ACL lets the restore list a slot's keys.
//! - `node_check.rs`: reconfigure's check of every node with new
//!   credentials, TLS files or seeds.
//! - `ask.rs`: how these ask nodes: one thread per node, one request under
//!   the check's deadline.

mod address_map;
mod advice;
mod ask;
mod info;
mod init;
mod masters;
mod node_check;
pub mod restore_acl;
mod seeds;

pub use address_map::ADDRESS_MAP_ADVICE;
pub use info::parse_info;
pub(crate) use init::discover;
#[cfg(test)]
pub(crate) use masters::count_replicas;
pub(crate) use node_check::check_nodes;
pub use seeds::{find_slot_map, no_slot_map_error, SeedChoice, SeedMap};
