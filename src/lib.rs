//! ors-redis: session persistence for Genesys Orchestration Server (ORS) on a
//! Redis Cluster, behind a C ABI (`include/ors_redis.h`).
//!
//! The data path, top to bottom: `ffi` (pointers, panics, status codes) ->
//! `session` (put/get/del as Redis commands) -> `keys` (validated ids, key
//! and slot) -> `router` (slot -> master, retries under one deadline) ->
//! `threads` (this thread's connections) -> `connection` (one node).
//! `topology` holds the process's one slot map, `client` the lifecycle.
//! `operator` is the small surface the operator command (`ors-redis`, the
//! `cli` feature) builds on.

pub mod client;
pub mod cluster_nodes;
pub mod config;
pub mod connection;
pub mod discovery;
pub mod error;
pub mod ffi;
pub mod keys;
pub mod logging;
pub mod malloc_buf;
pub mod operator;
pub mod reply;
pub mod resp;
pub mod router;
pub mod scan;
pub mod session;
pub mod stats;
pub mod status;
pub mod threads;
pub mod tls;
pub mod topology;
