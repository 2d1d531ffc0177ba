//! What the operator command (`ors-redis`, `src/bin/ors-redis/`, built with
//! the `cli` feature) uses of the library, and nothing more: the config, one
//! node's connection, the slot map and the key layout, so that the command
//! speaks to the cluster exactly as the library does, and the library's
//! bulk read (`BulkRead` over a `Client::connect`ed client) for the export.
//! Its own one-thread cluster view, checks and output live in the binary.

pub use crate::bulk::{Batch, BulkRead, Owner, Record, Want};
pub use crate::client::Client;
pub use crate::cluster_nodes::{address_by_hostname_like, parse_cluster_nodes, ClusterNode};
pub use crate::config::{Config, LogLevel, NodeAddr};
pub use crate::connection::{ConnectParams, NodeConnection};
pub use crate::discovery::{
    find_slot_map, no_slot_map_error, parse_info, parse_version, SeedChoice,
};
pub use crate::error::{Error, ErrorKind, ReplyClass, Result};
pub use crate::keys::{key_slot, ClusterName, KeyBuilder, SessionId};
pub use crate::logging::install as install_logging;
pub use crate::reply::{Bulk, ServerError, Value};
pub use crate::resp::pack_command;
pub use crate::router::redirect::{send_asking, Redirect};
pub use crate::scan::{NodeCursor, Page};
pub use crate::topology::SlotMap;
