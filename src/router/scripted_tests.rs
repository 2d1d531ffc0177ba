//! The router against nodes in memory (`connection::scripted`): MOVED,
//! ASK, TRYAGAIN, CLUSTERDOWN, a lost connection and a silent node, each
//! within the call's deadline, without a server; and node health (a node
//! marked unavailable, calls that fail fast).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::cluster::topology::SlotMap;
use crate::config::{Config, NodeAddr};
use crate::connection::scripted::{bulk, error, Answer, Nodes};
use crate::connection::ConnectParams;
use crate::error::{Error, ErrorKind};
use crate::keys::SessionId;
use crate::session;
use crate::session::Calls;

const A: &str = "10.0.0.1:7000";
const B: &str = "10.0.0.2:7000";
const C: &str = "10.0.0.3:7000";
const OP_TIMEOUT_MS: u64 = 300;
/// What a call may take beyond op-timeout (scheduling noise).
const SLACK: Duration = Duration::from_millis(250);

/// A session id and its slot.
fn id() -> SessionId<'static> {
    SessionId::parse(b"session-1").unwrap()
}

/// `CLUSTER SLOTS` of a map where `master` serves every slot.
fn slots_reply(master: &str, replicas: &[&str]) -> Vec<u8> {
    let node = |addr: &str| {
        let (host, port) = addr.rsplit_once(':').unwrap();
        format!("*2\r\n${}\r\n{host}\r\n:{port}\r\n", host.len())
    };
    let mut out = format!("*1\r\n*{}\r\n:0\r\n:16383\r\n", 3 + replicas.len());
    out.push_str(&node(master));
    replicas.iter().for_each(|r| out.push_str(&node(r)));
    out.into_bytes()
}

/// A connection set whose connections (and every other this thread opens,
/// the router's probes too) go to `nodes`.
fn connections(nodes: &Nodes) -> Calls {
    nodes.dial_here();
    Calls::default()
}

/// A client that waits for a node in trouble within op-timeout
/// (`node-fail-fast=false`, the behaviour these tests were written for).
fn client(master: &str, replicas: &[&str]) -> Client {
    client_with(master, replicas, "node-fail-fast=false")
}

/// A client with `extra` keys (`redis-socket-timeout` 100 ms unless given).
fn client_with(master: &str, replicas: &[&str], extra: &str) -> Client {
    let socket = if extra.contains("redis-socket-timeout") {
        ""
    } else {
        "redis-socket-timeout=100"
    };
    let config = Config::parse(&format!(
        "redis-nodes={master} cluster-name=T op-timeout={OP_TIMEOUT_MS} \
         redis-connect-timeout=100 {socket} {extra}"
    ))
    .unwrap();
    let params = ConnectParams::from_config(&config).unwrap();
    let mut reader = crate::reply::ReplyReader::new();
    let reply = reader
        .read_value(&mut &slots_reply(master, replicas)[..])
        .unwrap();
    let map = SlotMap::parse(&reply, &NodeAddr::parse(master).unwrap()).unwrap();
    Client::new(config, params, map, true, 1)
}

/// Runs a GET of `id()`, checking that it returns within the deadline.
fn get(client: &Client, conns: &mut Calls) -> crate::error::Result<Option<Vec<u8>>> {
    let started = Instant::now();
    let result = session::get(client, conns, id()).map(|v| v.map(|b| b.as_slice().to_vec()));
    let took = started.elapsed();
    assert!(
        took <= Duration::from_millis(OP_TIMEOUT_MS) + SLACK,
        "the call took {took:?}, op-timeout is {OP_TIMEOUT_MS} ms"
    );
    result
}

/// Runs a put of `id()` with `value`, checking that it returns within the
/// deadline.
fn put(client: &Client, conns: &mut Calls, value: &[u8]) -> crate::error::Result<()> {
    let started = Instant::now();
    let result = session::put(
        client,
        conns,
        id(),
        value,
        session::Ttl::from_request(60, 60),
    );
    let took = started.elapsed();
    assert!(
        took <= Duration::from_millis(OP_TIMEOUT_MS) + SLACK,
        "the call took {took:?}, op-timeout is {OP_TIMEOUT_MS} ms"
    );
    result
}

#[test]
fn moved_goes_to_the_new_master_and_refreshes_the_map() {
    let nodes = Nodes::default();
    let slot = id().slot();
    nodes.node(A, move |c| match c {
        c if c.starts_with("GET") => Answer::Reply(error(&format!("MOVED {slot} {B}"))),
        "CLUSTER SLOTS" => Answer::Reply(slots_reply(B, &[])),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    nodes.node(B, |c| match c {
        c if c.starts_with("GET") => Answer::Reply(bulk("value")),
        "CLUSTER SLOTS" => Answer::Reply(slots_reply(B, &[])),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client(A, &[]);
    let mut conns = connections(&nodes);

    assert_eq!(get(&client, &mut conns).unwrap(), Some(b"value".to_vec()));
    assert_eq!(nodes.count(A, "GET"), 1);
    assert_eq!(nodes.count(B, "GET"), 1);
    assert_eq!(client.topology.refresh_count(), 1, "one CLUSTER SLOTS");
    assert_eq!(
        client
            .topology
            .current()
            .master_of(slot)
            .unwrap()
            .addr
            .to_string(),
        B
    );
    // The next call goes to the new master at once.
    assert_eq!(get(&client, &mut conns).unwrap(), Some(b"value".to_vec()));
    assert_eq!(nodes.count(A, "GET"), 1);
    assert_eq!(nodes.count(B, "GET"), 2);
}

/// A answers every GET of the session with `ASK <slot> B`.
fn a_asks_for_b(nodes: &Nodes) {
    let slot = id().slot();
    nodes.node(A, move |c| match c {
        c if c.starts_with("GET") => Answer::Reply(error(&format!("ASK {slot} {B}"))),
        _ => Answer::Reply(error("ERR unexpected")),
    });
}

#[test]
fn ask_sends_one_asking_to_the_target_and_leaves_the_map_alone() {
    let nodes = Nodes::default();
    a_asks_for_b(&nodes);
    nodes.node(B, |c| match c {
        "ASKING" => Answer::Reply(b"+OK\r\n".to_vec()),
        c if c.starts_with("GET") => Answer::Reply(bulk("migrating")),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client(A, &[]);
    let mut conns = connections(&nodes);

    for call in 1..=2 {
        assert_eq!(
            get(&client, &mut conns).unwrap(),
            Some(b"migrating".to_vec())
        );
        // ASKING right before the command, once per redirected call.
        let to_b = nodes.asked_of(B);
        assert_eq!(to_b.len(), 2 * call, "{to_b:?}");
        assert_eq!(to_b[2 * call - 2], "ASKING");
        assert!(to_b[2 * call - 1].starts_with("GET "), "{to_b:?}");
        // The map still sends the slot to A.
        assert_eq!(nodes.count(A, "GET"), call);
    }
    assert_eq!(client.topology.refresh_count(), 0);
    assert_eq!(client.topology.epoch(), 1);
}

#[test]
fn an_asking_refused_is_the_calls_error_and_the_connection_stays_in_step() {
    let nodes = Nodes::default();
    a_asks_for_b(&nodes);
    nodes.node(B, |c| match c {
        "ASKING" => Answer::Reply(error(
            "NOPERM this user has no permissions to run the 'asking' command",
        )),
        c if c.starts_with("GET") => Answer::Reply(bulk("x")),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client(A, &[]);
    let mut conns = connections(&nodes);
    let e = get(&client, &mut conns).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(e.message.contains("NOPERM"), "{}", e.message);
    assert_eq!(nodes.count(B, "ASKING"), 1, "never repeated");
}

#[test]
fn after_an_asking_refused_the_command_is_not_sent_and_the_next_call_reads_its_own_replies() {
    let nodes = Nodes::default();
    a_asks_for_b(&nodes);
    let mut askings = 0;
    nodes.node(B, move |c| match c {
        "ASKING" => {
            askings += 1;
            match askings {
                1 => Answer::Reply(error("NOPERM no 'asking' for this user")),
                _ => Answer::Reply(b"+OK\r\n".to_vec()),
            }
        }
        c if c.starts_with("GET") => Answer::Reply(bulk("value")),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client(A, &[]);
    let mut conns = connections(&nodes);
    assert_eq!(get(&client, &mut conns).unwrap_err().kind, ErrorKind::Auth);
    assert_eq!(
        nodes.count(B, "GET"),
        0,
        "without ASKING it would be redirected back"
    );
    // Out of step, this call would take a reply for another command's.
    assert_eq!(get(&client, &mut conns).unwrap(), Some(b"value".to_vec()));
    let to_b = nodes.asked_of(B);
    assert_eq!(to_b.len(), 3, "{to_b:?}");
    assert_eq!(to_b[..2], ["ASKING", "ASKING"]);
    assert!(to_b[2].starts_with("GET "), "{to_b:?}");
}

/// A answers every SET of the session with `ASK <slot> B`; B answers ASKING
/// with `asking`.
fn a_write_asked_for_b(asking: &'static str) -> (Nodes, Client, crate::error::Result<()>) {
    let nodes = Nodes::default();
    let slot = id().slot();
    nodes.node(A, move |c| match c {
        c if c.starts_with("SET") => Answer::Reply(error(&format!("ASK {slot} {B}"))),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    nodes.node(B, move |c| match c {
        "ASKING" => Answer::Reply(asking.as_bytes().to_vec()),
        c if c.starts_with("SET") => Answer::Reply(b"+OK\r\n".to_vec()),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client(A, &[]);
    let mut conns = connections(&nodes);
    let result = put(&client, &mut conns, b"v");
    (nodes, client, result)
}

#[test]
fn a_write_on_ask_sends_one_asking_right_before_it() {
    let (nodes, client, result) = a_write_asked_for_b("+OK\r\n");
    result.unwrap();
    let to_b = nodes.asked_of(B);
    assert_eq!(to_b.len(), 2, "{to_b:?}");
    assert_eq!(to_b[0], "ASKING");
    assert!(to_b[1].starts_with("SET "), "{to_b:?}");
    assert_eq!(client.topology.refresh_count(), 0);
}

#[test]
fn a_write_whose_asking_is_refused_fails_with_that_refusal() {
    let (nodes, _, result) = a_write_asked_for_b("-NOPERM no 'asking' for this user\r\n");
    let e = result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{}", e.message);
    assert!(e.message.contains("NOPERM"), "{}", e.message);
    assert_eq!(nodes.count(B, "ASKING"), 1, "never repeated");
    assert_eq!(
        nodes.count(B, "SET"),
        0,
        "not sent after ASKING was refused"
    );
}

/// `reply` to every GET, for ever: the call gives up at its deadline with
/// the cluster state as its cause, after retrying with a growing pause.
fn transient_until_the_deadline(reply: &'static str) -> (Nodes, Client, Error) {
    let nodes = Nodes::default();
    nodes.node(A, move |c| match c {
        c if c.starts_with("GET") => Answer::Reply(error(reply)),
        "CLUSTER SLOTS" => Answer::Reply(slots_reply(A, &[])),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client(A, &[]);
    let mut conns = connections(&nodes);
    let started = Instant::now();
    let e = get(&client, &mut conns).unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_millis(OP_TIMEOUT_MS),
        "gave up early"
    );
    assert_eq!(e.kind, ErrorKind::Cluster, "{}", e.message);
    assert!(e.message.contains(reply), "{}", e.message);
    assert!(e.message.contains("gave up after"), "{}", e.message);
    // Backing off: 2, 4, 8 ... 100 ms between attempts, not a busy loop.
    let attempts = nodes.count(A, "GET");
    assert!((4..=20).contains(&attempts), "{attempts} attempts");
    (nodes, client, e)
}

#[test]
fn tryagain_is_retried_until_the_deadline() {
    let (nodes, client, _) =
        transient_until_the_deadline("TRYAGAIN Multiple keys request during rehashing of slot");
    // A transient state of one slot is no reason to reload the map.
    assert_eq!(nodes.count(A, "CLUSTER SLOTS"), 0);
    assert_eq!(client.topology.refresh_count(), 0);
}

#[test]
fn clusterdown_is_retried_until_the_deadline_and_asks_for_the_map() {
    let (nodes, _, _) = transient_until_the_deadline("CLUSTERDOWN The cluster is down");
    assert!(nodes.count(A, "CLUSTER SLOTS") >= 1);
}

#[test]
fn tryagain_then_an_answer_succeeds() {
    let nodes = Nodes::default();
    let mut left = 2;
    nodes.node(A, move |c| match c {
        c if c.starts_with("GET") && left > 0 => {
            left -= 1;
            Answer::Reply(error("TRYAGAIN"))
        }
        c if c.starts_with("GET") => Answer::Reply(b"$-1\r\n".to_vec()),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client(A, &[]);
    let mut conns = connections(&nodes);
    assert_eq!(get(&client, &mut conns).unwrap(), None);
    assert_eq!(nodes.count(A, "GET"), 3);
}

/// B, A's replica, has been promoted: its map has B serve every slot.
fn b_is_promoted(nodes: &Nodes) {
    nodes.node(B, |c| match c {
        "CLUSTER SLOTS" => Answer::Reply(slots_reply(B, &[])),
        c if c.starts_with("GET") => Answer::Reply(bulk("promoted")),
        _ => Answer::Reply(error("ERR unexpected")),
    });
}

#[test]
fn a_lost_connection_asks_another_node_for_the_map() {
    let nodes = Nodes::default();
    // A fails mid-call; its replica B has taken over.
    nodes.node(A, |c| match c {
        c if c.starts_with("GET") => Answer::Close,
        "CLUSTER SLOTS" => Answer::Reply(slots_reply(A, &[B])),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    b_is_promoted(&nodes);
    let client = client(A, &[B]);
    let mut conns = connections(&nodes);

    assert_eq!(
        get(&client, &mut conns).unwrap(),
        Some(b"promoted".to_vec())
    );
    // The node that failed is asked last: B answered first.
    assert_eq!(nodes.count(A, "CLUSTER SLOTS"), 0);
    assert_eq!(nodes.count(B, "CLUSTER SLOTS"), 1);
    assert_eq!(nodes.count(A, "GET"), 1);
    assert_eq!(nodes.count(B, "GET"), 1);
    assert_eq!(client.topology.epoch(), 2);
}

#[test]
fn a_node_down_for_good_fails_the_call_at_its_deadline_as_a_connection_error() {
    let nodes = Nodes::default();
    nodes.node(C, |_| Answer::Close);
    nodes.down(C);
    let client = client(C, &[]);
    let mut conns = connections(&nodes);
    let started = Instant::now();
    let e = get(&client, &mut conns).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(OP_TIMEOUT_MS));
    assert_eq!(e.kind, ErrorKind::Connection, "{}", e.message);
    assert!(e.message.contains("refused"), "{}", e.message);
}

#[test]
fn a_silent_node_times_out_within_the_deadline() {
    let nodes = Nodes::default();
    nodes.node(A, |_| Answer::Silence);
    let client = client(A, &[]);
    let mut conns = connections(&nodes);
    let e = get(&client, &mut conns).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{}", e.message);
}

#[test]
fn a_value_reply_of_the_wrong_type_is_final() {
    let nodes = Nodes::default();
    nodes.node(A, |_| Answer::Reply(b":1\r\n".to_vec()));
    let client = client(A, &[]);
    let mut conns = connections(&nodes);
    let e = get(&client, &mut conns).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(nodes.count(A, "GET"), 1, "not retried");
}

#[test]
fn a_silent_master_is_given_up_once_a_replica_has_the_slot() {
    let nodes = Nodes::default();
    nodes.node(A, |_| Answer::Silence);
    b_is_promoted(&nodes);
    let client = client(A, &[B]);
    let mut conns = connections(&nodes);
    let started = Instant::now();
    assert_eq!(
        get(&client, &mut conns).unwrap(),
        Some(b"promoted".to_vec())
    );
    // Not the socket timeout (100 ms) of a reply that never comes: the
    // replica's map, read while waiting, moved the call.
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert!(nodes.count(B, "CLUSTER SLOTS") >= 1);
    assert_eq!(nodes.count(B, "GET"), 1);
}

/// A thread that sees new settings of the same init keeps its connections
/// and slot map, and logs a connection in again before its next command.
#[test]
fn new_settings_log_the_threads_connection_in_again_before_its_next_command() {
    let nodes = Nodes::default();
    nodes.node(A, |command| {
        if command.starts_with("AUTH") {
            Answer::Reply(b"+OK\r\n".to_vec())
        } else {
            Answer::Reply(bulk("v"))
        }
    });
    let first = Arc::new(client(A, &[]));
    let mut state = crate::threads::ThreadState {
        generation: first.generation,
        settings: first.settings,
        client: Some(first.clone()),
        calls: connections(&nodes),
    };
    get(&first, &mut state.calls).unwrap();

    let config = Config::parse(&format!(
        "redis-nodes={A} cluster-name=T op-timeout={OP_TIMEOUT_MS} username=ors password=new-pw"
    ))
    .unwrap();
    let second = Arc::new(Client {
        generation: first.generation,
        settings: 7,
        params: ConnectParams::from_config(&config).unwrap(),
        config,
        keys: first.keys.clone(),
        topology: first.topology.clone(),
        use_unlink: first.use_unlink.clone(),
        dictionary: None,
    });
    state.adopt(second.clone());
    assert_eq!(state.settings, 7);
    assert_eq!(
        state.calls.routes.conns.open_count(),
        1,
        "the connection is kept"
    );
    get(&second, &mut state.calls).unwrap();
    get(&second, &mut state.calls).unwrap();
    let asked = nodes.asked_of(A);
    assert_eq!(asked.len(), 4, "{asked:?}");
    assert!(asked[0].starts_with("GET "), "{asked:?}");
    assert_eq!(asked[1], "AUTH ors new-pw");
    assert!(
        asked[2].starts_with("GET ") && asked[3].starts_with("GET "),
        "{asked:?}"
    );
}

// With node-fail-fast=true (the default): a node that fails is marked
// unavailable for every thread, and calls of its slots return at once.

#[test]
fn a_silent_node_is_marked_and_the_next_calls_return_at_once_unsent() {
    let nodes = Nodes::default();
    nodes.node(A, |_| Answer::Silence);
    let client = client_with(A, &[], "");
    let mut conns = connections(&nodes);
    let started = Instant::now();
    let e = get(&client, &mut conns).unwrap_err();
    let first = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{}", e.message);
    assert!(
        e.message.contains(A) && e.message.contains("node-fail-fast"),
        "{}",
        e.message
    );
    // It waited for redis-socket-timeout (100 ms), not op-timeout (300 ms).
    assert!(first >= Duration::from_millis(100), "{first:?}");
    assert!(first < Duration::from_millis(250), "{first:?}");
    for _ in 0..100 {
        let started = Instant::now();
        let e = get(&client, &mut conns).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable, "{}", e.message);
        assert!(e.message.contains("marked unavailable"), "{}", e.message);
        assert!(
            started.elapsed() < Duration::from_millis(20),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(nodes.count(A, "GET"), 1, "the later calls were not sent");
    let health = client.topology.health.of(&NodeAddr::parse(A).unwrap());
    let figures = health.figures(true);
    assert!(figures.sick);
    assert_eq!((figures.trips, figures.fast_failures), (1, 100));
}

#[test]
fn a_node_that_refuses_connections_is_marked_at_once() {
    let nodes = Nodes::default();
    nodes.node(A, |_| Answer::Close);
    nodes.down(A);
    let client = client_with(A, &[], "");
    let mut conns = connections(&nodes);
    let started = Instant::now();
    let e = get(&client, &mut conns).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{}", e.message);
    assert!(e.message.contains("refused"), "{}", e.message);
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_lost_connection_is_no_node_failure_and_is_retried() {
    let nodes = Nodes::default();
    let mut first = true;
    nodes.node(A, move |c| match c {
        c if c.starts_with("GET") && std::mem::take(&mut first) => Answer::Close,
        c if c.starts_with("GET") => Answer::Reply(bulk("v")),
        "CLUSTER SLOTS" => Answer::Reply(slots_reply(A, &[])),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client_with(A, &[], "");
    let mut conns = connections(&nodes);
    assert_eq!(get(&client, &mut conns).unwrap(), Some(b"v".to_vec()));
    assert!(!client
        .topology
        .health
        .of(&NodeAddr::parse(A).unwrap())
        .is_sick());
}

#[test]
fn with_a_fail_count_of_two_one_timeout_does_not_mark() {
    let nodes = Nodes::default();
    let mut calls = 0;
    nodes.node(A, move |c| match c {
        c if c.starts_with("GET") => {
            calls += 1;
            if calls == 1 {
                Answer::Silence
            } else {
                Answer::Reply(bulk("v"))
            }
        }
        "CLUSTER SLOTS" => Answer::Reply(slots_reply(A, &[])),
        _ => Answer::Reply(error("ERR unexpected")),
    });
    let client = client_with(A, &[], "node-fail-count=2");
    let mut conns = connections(&nodes);
    // The first attempt times out (one failure); the retry succeeds.
    assert_eq!(get(&client, &mut conns).unwrap(), Some(b"v".to_vec()));
    let health = client.topology.health.of(&NodeAddr::parse(A).unwrap());
    assert!(!health.is_sick());
    assert_eq!(health.figures(true).trips, 0);
}

#[test]
fn a_call_that_times_out_on_its_own_deadline_does_not_mark_the_node() {
    let nodes = Nodes::default();
    nodes.node(A, |_| Answer::Silence);
    // The socket timeout (1000 ms) is above op-timeout (300 ms): the call's
    // deadline ends the wait, which says nothing of the node.
    let client = client_with(A, &[], "redis-socket-timeout=1000");
    let mut conns = connections(&nodes);
    let e = get(&client, &mut conns).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{}", e.message);
    assert!(!client
        .topology
        .health
        .of(&NodeAddr::parse(A).unwrap())
        .is_sick());
}
