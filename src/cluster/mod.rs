//! The cluster as the library talks to it: which node serves which slot,
//! and one thread's connections to those nodes.
//!
//! - `nodes.rs`: `ConnectionSet`, one thread's connections, one per node,
//!   and `exchange`, the one way a request reaches a node: opened on first
//!   use, bounded by a `Budget`, aborted when left out of step, the node
//!   named in its errors; `Reach`, what it needs of the cluster (the slot
//!   map, the connect parameters), so that nothing here needs a `Client`.
//! - `budget.rs`: a request's `Budget` (deadline, reply timeout) and its
//!   `Watch`, what may end a late wait early (a newer slot map, a stop).
//! - `topology.rs`: the process's one slot map, and its refresh.
//! - `health.rs`: each node's health, shared by every thread (a node that
//!   fails is marked unavailable and probed), and its figures.
//! - `redirect.rs`: MOVED and ASK.
//! - `discovery/`: what init learns of the cluster (seeds, the first slot
//!   map, ORS's deployment checks, the restore's ACL permission) and
//!   reconfigure's check of the nodes.
//! - `cluster_nodes.rs`: `CLUSTER NODES`, parsed.

mod budget;
pub(crate) mod cluster_nodes;
pub(crate) mod discovery;
pub(crate) mod health;
mod nodes;
pub(crate) mod redirect;
pub(crate) mod topology;

pub use budget::Budget;
pub(crate) use budget::{Reach, Stopped, Watch};
pub use nodes::ConnectionSet;
