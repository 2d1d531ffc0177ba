//! ors-redis: session persistence for Genesys Orchestration Server (ORS) on a
//! Redis Cluster, behind a C ABI (`include/ors_redis.h`).
//!
//! The data path, top to bottom: `ffi` (pointers, panics, status codes) ->
//! `session` (put/get/del as Redis commands) -> `keys` (validated ids, key
//! and slot) -> `router` (slot -> master, retries under one deadline) ->
//! `connection_set` (this thread's connections) -> `connection` (one node).
//! `topology` holds the process's one slot map, `client` what init
//! established, `lifecycle` init and shutdown, `threads` each thread's state.
//! `recommend` is what ORS recommends of the deployment, which init's
//! warnings (`discovery`) and the operator command judge by. `operator` is
//! the small surface the operator command (`ors-redis`, the `cli` feature)
//! builds on: the router and a thread's connections, not a client of its own.

// The C ABI (exports and status constants).
pub mod ffi;
mod status;
// The operator command's (`ors-redis`) small, deliberate surface.
pub mod operator;
// Pure parsing and encoding, also reached by the fuzz targets and the
// integration tests.
pub mod config;
pub mod error;
pub mod keys;
pub mod reply;
pub mod resp;

mod bulk;
mod client;
mod cluster_nodes;
mod connection;
mod connection_set;
mod discovery;
mod fork;
mod lifecycle;
mod logging;
mod malloc_buf;
mod recommend;
mod router;
mod scan;
mod session;
mod stats;
mod threads;
mod tls;
mod topology;

// The unit tests' allocator, which can refuse large allocations.
#[cfg(test)]
mod alloc_limit;
