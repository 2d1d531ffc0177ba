//! ors-redis: session persistence for Genesys Orchestration Server (ORS) on a
//! Redis Cluster, behind a C ABI (`include/ors_redis.h`).
//!
//! # Layout
//!
//! A call goes down this list: `ffi` checks the pointers, catches panics and
//! maps errors to status codes; `session` makes put/get/del Redis commands
//! (`keys`: validated ids, the key and its slot); `router` sends a command to
//! its slot's master and retries it under one deadline; `cluster/` is the
//! one way to a node; `connection/` is one socket to one node.
//!
//! ```text
//! ffi.rs, status.rs       the C ABI: exports, status codes
//! lifecycle.rs, client.rs init, reconfigure, shutdown; what they established
//! live.rs                 the live client and the worker threads, as threads and workers find them
//! threads.rs, fork.rs     each thread's state (its connections); after fork()
//! session.rs, keys.rs     put/get/del as commands; ids, keys, slots
//! read_all.rs             scan and restore: the bulk read, or SCAN pages where listing is refused
//! scan.rs, bulk/          the scan's SCAN pager; the restore's parallel read of every slot
//! router.rs               slot -> master, MOVED/ASK/TRYAGAIN, retries within op-timeout
//! retry.rs                what follows each kind of failure (one verdict for every caller)
//! probe.rs                the prober of a node marked unavailable
//! cluster/                the node layer: a thread's connections and the one
//!                         request path (nodes.rs, budget.rs), the slot map
//!                         (topology.rs), each node's health (health.rs),
//!                         redirects, init's discovery, CLUSTER NODES
//! connection.rs, connection/
//!                         one node: connect (socket.rs), TLS (stream.rs, tls.rs),
//!                         deadline-bounded waits (wait.rs, wire.rs)
//! envelope.rs             compressed values: the one sealer and opener (docs/compression.md)
//! dictionary.rs           a zstd dictionary: its id, its digests, training
//! dictionaries.rs         dictionaries in the cluster: found by id, cached; the writer's, kept alive
//! reply.rs, resp.rs       the RESP2 reader and encoder; malloc_buf.rs values handed to C
//! config/                 the config string: one table of keys (options.rs), addresses
//! error.rs                errors classified once; stats.rs, logging.rs
//! recommend.rs            what ORS recommends of a deployment (init's warnings, doctor)
//! operator.rs             what the operator command (src/bin/ors-redis/, feature cli) uses
//! ```

// The C ABI: the exports (ffi) and the status codes they return (status).
pub mod ffi;
pub mod status;
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
mod cluster;
mod connection;
pub mod dictionaries;
pub mod dictionary;
pub mod envelope;
mod fork;
mod lifecycle;
mod live;
mod logging;
mod malloc_buf;
mod probe;
mod read_all;
mod recommend;
mod retry;
mod router;
mod scan;
mod session;
mod stats;
mod threads;
mod tls;

// The unit tests' allocator, which can refuse large allocations.
#[cfg(test)]
mod alloc_limit;
