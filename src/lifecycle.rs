//! The library's lifecycle: init builds a `Client` (config, slot map, what
//! the servers support), reconfigure replaces it by one with new settings
//! (same slot map), shutdown retires it, and every call runs against the
//! live client with its thread's own state (threads.rs attaches and
//! detaches it).
//!
//! Locks: `LIFECYCLE` serialises init, reconfigure and shutdown; `CURRENT`
//! is held only for a moment (never while waiting on a thread), so a thread
//! attaching to a new client cannot deadlock with a shutdown that waits for
//! that thread. The hot path reads one atomic (`ACTIVE_SETTINGS`) and locks
//! only its own thread's state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::client::Client;
use crate::cluster::health::NodeFigures;
use crate::config::{self, Config, OnChange};
use crate::dictionaries;
use crate::error::{Error, ErrorKind, Result};
use crate::live;
use crate::logging;
use crate::session::Calls;
use crate::stats;
use crate::threads;

static LIFECYCLE: Mutex<()> = Mutex::new(());
/// Numbers both generations and settings, so that no two clients share one.
static NEXT_NUMBER: AtomicU64 = AtomicU64::new(1);

pub(crate) fn init(config_text: &str) -> Result<()> {
    let _lifecycle = LIFECYCLE.lock();
    if live::generation() != 0 {
        return Err(Error::new(
            ErrorKind::AlreadyInitialized,
            "ors_redis_init: already initialized (call ors_redis_shutdown first)",
        ));
    }
    let config = Config::parse(config_text)?;
    logging::install(config.log_level);
    let generation = NEXT_NUMBER.fetch_add(1, Ordering::SeqCst);
    let mut client = Client::connect(config, generation)?;
    let new_dictionary = dictionaries::attach(&mut client, None);
    tracing::info!(
        cluster_name = client.config.cluster_name.as_str(),
        "ors-redis {} initialized",
        env!("CARGO_PKG_VERSION")
    );
    stats::reset_calls();
    live::publish(Arc::new(client));
    if let Some(writing) = new_dictionary {
        dictionaries::start_keeper(generation, writing);
    }
    Ok(())
}

/// Applies a new config string to the running library. Nothing changes
/// unless all of it can be applied: a key that cannot change live, a bad
/// value, an unreadable TLS file, or a node that refuses the new
/// credentials or TLS settings is the error. A call in flight finishes on
/// the settings it started with; each thread's next call takes the new
/// ones (its connections are logged in again or reopened as the change
/// needs: `ConnectionSet::renew`).
pub(crate) fn reconfigure(config_text: &str) -> Result<()> {
    let _lifecycle = LIFECYCLE.lock();
    let current = live::live_client()?;
    let Some(mut client) = reconfigured(&current, config_text).map_err(|mut e| {
        e.message = format!("ors_redis_reconfigure: nothing changed: {}", e.message);
        e
    })?
    else {
        tracing::debug!("ors_redis_reconfigure: the config is the one in use");
        return Ok(());
    };
    let changed = client.config.changes_from(&current.config);
    logging::install(client.config.log_level);
    if config::changes_ask(&changed, OnChange::sets_seeds) {
        client.topology.set_seeds(&client.config.nodes);
    }
    let new_dictionary = dictionaries::attach(&mut client, Some(&current));
    tracing::info!(changed = %changed.join(", "), "ors-redis reconfigured");
    let generation = client.generation;
    live::publish(Arc::new(client));
    if let Some(writing) = new_dictionary {
        dictionaries::start_keeper(generation, writing);
    }
    Ok(())
}

/// The client that `config_text` makes of `current`; `None` when nothing
/// changes.
fn reconfigured(current: &Client, config_text: &str) -> Result<Option<Client>> {
    let config = Config::parse(config_text)?;
    let changed = config.live_changes_from(&current.config)?;
    if changed.is_empty() {
        return Ok(None);
    }
    let settings = NEXT_NUMBER.fetch_add(1, Ordering::SeqCst);
    current.reconfigured(config, &changed, settings).map(Some)
}

pub(crate) fn shutdown() -> Result<()> {
    let _lifecycle = LIFECYCLE.lock();
    if !live::retire() {
        return Err(live::not_initialized());
    }
    // Bulk-read workers and probers see generation 0 within a slice of
    // their wait and close their sockets as they exit.
    live::workers_gone();
    // Each lock waits for the call in flight on that thread; then its
    // sockets close. Calls that start from now on see generation 0.
    let mut closed = 0;
    threads::for_each_thread(|state| {
        closed += state.calls.routes.conns.open_count();
        state.reset();
    });
    tracing::info!(connections_closed = closed, "ors-redis shut down");
    Ok(())
}

/// Runs `f` with the live client and this thread's state for calls.
pub(crate) fn with_client<T>(f: impl FnOnce(&Client, &mut Calls) -> Result<T>) -> Result<T> {
    threads::with_thread(|state| {
        let settings = live::settings();
        if settings == 0 {
            if state.generation != 0 {
                state.reset();
            }
            return Err(live::not_initialized());
        }
        if state.settings != settings {
            // First call on this thread since init or since a reconfigure:
            // take the live client (this one, or one newer still).
            let client = live::current();
            match client {
                Some(c) => state.adopt(c),
                None => {
                    state.reset();
                    return Err(live::not_initialized());
                }
            }
        }
        let client = state.client.as_deref().ok_or_else(live::not_initialized)?;
        f(client, &mut state.calls)
    })
    .unwrap_or_else(|| {
        Err(Error::new(
            ErrorKind::NotInitialized,
            "this thread is exiting; its connections are closed",
        ))
    })
}

/// The live client's slot-map reload count (for the stats).
pub(crate) fn topology_refreshes() -> Result<u64> {
    live::live_client().map(|c| c.topology.refresh_count())
}

/// The live client's nodes' health and figures (for the node stats).
pub(crate) fn node_figures() -> Result<Vec<NodeFigures>> {
    let client = live::live_client()?;
    let map = client.topology.current();
    Ok(client
        .topology
        .health
        .all()
        .iter()
        .map(|n| n.figures(map.is_master(&n.addr)))
        .collect())
}

/// After a caught panic: close this thread's connections, which may be in
/// the middle of a reply.
pub(crate) fn reset_this_thread() {
    threads::with_thread(|state| state.reset());
}
