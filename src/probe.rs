//! The prober of a node marked unavailable (cluster/health.rs explains the
//! design): one thread per tripped node, whatever the number of threads
//! that meet it. It sends `PING` on a connection of its own, a probe at
//! most every `node-probe-interval`, each bounded by
//! `min(redis-socket-timeout, PROBE_TIMEOUT)`; between probes and while a
//! probe waits it re-reads the slot map (50 ms apart at most, process-wide:
//! `Topology::refresh_while_late`), so that the first call after a
//! promotion finds the new master. It ends when the node answers, when the
//! map no longer has it as a master, or when the library is shut down
//! (shutdown waits for it, as for a bulk read's workers: it holds sockets).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::cluster::health::NodeHealth;
use crate::cluster::{Budget, ConnectionSet, Watch};
use crate::error::{Error, ErrorKind};
use crate::live;

/// The longest a probe waits: past it a new probe (and a new TCP connect,
/// whose SYN goes out at once instead of at the kernel's next retransmit)
/// is better than waiting on.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the pause between probes looks at the map and the library.
const TICK: Duration = Duration::from_millis(25);

/// Starts the prober of `node`, for the init of `generation`.
pub(crate) fn start(generation: u64, node: Arc<NodeHealth>) {
    let probed = node.clone();
    let spawned = std::thread::Builder::new()
        .name("ors-redis-probe".into())
        .spawn(move || run(generation, probed));
    if let Err(e) = spawned {
        tracing::warn!(node = %node.addr, error = %e, "could not start the node's prober; the next failure tries again");
        node.prober_failed();
    }
}

fn run(generation: u64, node: Arc<NodeHealth>) {
    let _holds_sockets = live::Worker::enter();
    let mut conns = Connections::default();
    loop {
        probe_until_done(generation, &node, &mut conns);
        if !node.prober_ends() {
            return;
        }
    }
}

/// The prober's connections: one to the node it probes, and others to the
/// nodes it reads the slot map from (kept, not one per read).
#[derive(Default)]
struct Connections {
    probe: ConnectionSet,
    map: RefCell<ConnectionSet>,
}

/// Probes `node` until it is well, no longer a master, or the library of
/// `generation` is gone.
fn probe_until_done(generation: u64, node: &NodeHealth, conns: &mut Connections) {
    loop {
        let Some(client) = live::live_client()
            .ok()
            .filter(|c| c.generation == generation)
        else {
            return;
        };
        if !node.is_sick() || slots_moved(&client, node) {
            return;
        }
        let started = Instant::now();
        let timeout = client.config.socket_timeout.min(PROBE_TIMEOUT);
        let deadline = started + timeout;
        let map_conns = &conns.map;
        let watch = || look_around(&client, node, generation, deadline, map_conns);
        let budget = Budget::until(deadline, timeout).watching(Watch::Stop(&watch));
        node.probed();
        match conns
            .probe
            .query(&node.addr, &client.params, &budget, &[b"PING"])
        {
            Ok(_) => {
                node.well_again("it answered a probe");
                return;
            }
            Err(e) => tracing::debug!(node = %node.addr, error = %e, "probe: no answer"),
        }
        // The pause until the next probe, looking at the map meanwhile.
        let next = started + client.config.node_probe_interval;
        loop {
            let now = Instant::now();
            if now >= next {
                break;
            }
            if look_around(&client, node, generation, next, &conns.map).is_some() {
                return;
            }
            std::thread::sleep(TICK.min(next - now));
        }
    }
}

/// Between slices of a probe and of the pause: re-reads the map (rate
/// limited, never from the node itself, over `map_conns`); an error when
/// the probe is to end (the node's slots moved, the library was shut down
/// or the node is well).
fn look_around(
    client: &Client,
    node: &NodeHealth,
    generation: u64,
    deadline: Instant,
    map_conns: &RefCell<ConnectionSet>,
) -> Option<Error> {
    if !live::is_live(generation) {
        return Some(Error::new(
            ErrorKind::NotInitialized,
            "the library was shut down",
        ));
    }
    if !node.is_sick() {
        return Some(Error::new(ErrorKind::Connection, "the node is well again"));
    }
    // Asked between slices of the probe's own wait, on other connections;
    // a read of the map is never asked from inside another.
    if let Ok(mut conns) = map_conns.try_borrow_mut() {
        client
            .topology
            .refresh_while_late(&node.addr, deadline, &mut |n| {
                let budget = Budget::until(deadline, client.params.socket_timeout);
                conns.query(n, &client.params, &budget, &[b"CLUSTER", b"SLOTS"])
            });
    }
    slots_moved(client, node).then(|| Error::new(ErrorKind::Connection, "its slots moved"))
}

/// Whether the map no longer has `node` as a master: it is forgotten (well),
/// and the calls of its slots go to their new masters.
fn slots_moved(client: &Client, node: &NodeHealth) -> bool {
    if client.topology.current().is_master(&node.addr) {
        return false;
    }
    node.well_again("the slot map no longer has it as a master");
    true
}
