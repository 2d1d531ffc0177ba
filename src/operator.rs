//! What the operator command (`ors-redis`, `src/bin/ors-redis/`, built with
//! the `cli` feature) uses of the library, and nothing more, so that the
//! command speaks to the cluster exactly as the library does: the config,
//! the seed loop and slot map, a `Client` with its router (MOVED, ASK,
//! TRYAGAIN and failovers ridden out under op-timeout) and a thread's
//! `ConnectionSet` (every question to one node), the key layout, the bulk
//! read for the export, and ORS's recommendations (`recommend`), which
//! init's warnings use too. The command's checks and output live in the
//! binary.

pub use crate::bulk::{Batch, BulkRead, Owner, Record, Want};
pub use crate::client::Client;
pub use crate::cluster::cluster_nodes::{
    address_by_hostname_like, parse_cluster_nodes, ClusterNode,
};
pub use crate::cluster::discovery::restore_acl;
pub use crate::cluster::discovery::{
    find_slot_map, no_slot_map_error, parse_info, SeedChoice, SeedMap, ADDRESS_MAP_ADVICE,
};
pub use crate::cluster::redirect::Redirect;
pub use crate::cluster::topology::SlotMap;
pub use crate::cluster::{Budget, ConnectionSet};
pub use crate::config::{Config, LogLevel, NodeAddr};
pub use crate::connection::{ConnectParams, Exchange};
pub use crate::error::{Error, ErrorKind, ReplyClass, Result};
pub use crate::keys::{key_slot, ClusterName, KeyBuilder, SessionId};
pub use crate::logging::install as install_logging;
pub use crate::reply::{Bulk, ServerError, Value};
pub use crate::resp::pack_command;
pub use crate::retry::may_repeat;
pub use crate::router::{retry_pass, route, Reply, Routes, Unanswered};
pub use crate::scan::{NodeCursor, Page};

/// ORS's recommendations for the deployment (`crate::recommend`).
pub mod recommend {
    pub use crate::recommend::*;
}
