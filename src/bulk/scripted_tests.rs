//! One node's read of a few slots (`node_read.rs`) against nodes in memory
//! (`connection::scripted`): a stable batch, a MOVED probe, a slot that
//! starts migrating between its listing and its reads, an error reply
//! inside the pipeline, a slot being migrated read on both nodes with
//! `ASKING` on the target, a failure on the target, a full listing and a
//! lost connection, each in milliseconds and without a server. The live
//! clusters of the chaos tests check the same paths under real migrations.

use std::sync::Arc;

use crate::client::Client;
use crate::cluster::topology::SlotMap;
use crate::cluster::ConnectionSet;
use crate::config::{Config, NodeAddr};
use crate::connection::scripted::{array, bulk, error, int, Answer, Nodes, NIL};
use crate::connection::ConnectParams;
use crate::error::Error;

use super::batch::Batch;
use super::node_read::{NodeReader, Outcome, Want};
use super::plan::Work;

const A: &str = "10.0.0.1:7000";
const B: &str = "10.0.0.2:7000";
/// The count each slot is listed with.
const COUNT: u32 = 100;

/// A client of cluster name `T` whose slot map says A serves every slot.
fn client() -> Arc<Client> {
    let config = Config::parse(&format!(
        "redis-nodes={A} cluster-name=T op-timeout=300 \
         redis-socket-timeout=100 redis-connect-timeout=100"
    ))
    .unwrap();
    let params = ConnectParams::from_config(&config).unwrap();
    let slots = "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$8\r\n10.0.0.1\r\n:7000\r\n";
    let reply = crate::reply::ReplyReader::new()
        .read_value(&mut slots.as_bytes())
        .unwrap();
    let map = SlotMap::parse(&reply, &NodeAddr::parse(A).unwrap()).unwrap();
    Arc::new(Client::new(config, params, map, true, 1))
}

/// The key of session `id`.
fn key(id: &str) -> String {
    format!("ORS:T:{{{id}}}")
}

/// The listing command of `slot`, as a scripted node sees it.
fn listing(slot: u16) -> String {
    format!("CLUSTER GETKEYSINSLOT {slot} {COUNT}")
}

/// The GET of `slot`'s probe key, as a scripted node sees it.
fn probe(client: &Client, slot: u16) -> String {
    format!(
        "GET {}",
        String::from_utf8_lossy(&client.keys.slot_probe_key(slot))
    )
}

/// A node answering from `table` (command, reply); anything else is an
/// error reply that names the command, so that a test sees it.
fn answers(table: Vec<(String, Vec<u8>)>) -> impl FnMut(&str) -> Answer + Send + 'static {
    move |c: &str| match table.iter().find(|(command, _)| command == c) {
        Some((_, reply)) => Answer::Reply(reply.clone()),
        None => Answer::Reply(error(&format!("ERR unexpected {c}"))),
    }
}

/// Reads `slots` from A, as a bulk read's worker would.
fn read(
    client: &Arc<Client>,
    conns: &mut ConnectionSet,
    slots: &[u16],
    want: Want,
    batch: &mut Batch,
) -> Outcome {
    let work = Work {
        node: NodeAddr::parse(A).unwrap(),
        slots: slots.iter().map(|&s| (s, COUNT)).collect(),
    };
    let not_stopped = || None::<Error>;
    let started = std::time::Instant::now();
    let out = NodeReader::new(client.clone(), b"", want).read(conns, &work, batch, &not_stopped);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(100),
        "a scripted read takes milliseconds: {:?}",
        started.elapsed()
    );
    out
}

/// The batch's sessions: (id, value, pttl).
fn records(batch: &Batch) -> Vec<(String, String, Option<i64>)> {
    batch
        .records()
        .map(|r| {
            (
                String::from_utf8_lossy(r.id).into_owned(),
                String::from_utf8_lossy(r.value).into_owned(),
                r.pttl_ms,
            )
        })
        .collect()
}

/// One of `records`.
fn rec(id: &str, value: &str, pttl_ms: Option<i64>) -> (String, String, Option<i64>) {
    (id.into(), value.into(), pttl_ms)
}

fn get(id: &str) -> String {
    format!("GET {}", key(id))
}

fn pttl(id: &str) -> String {
    format!("PTTL {}", key(id))
}

/// Slot 1 holds sessions a and b, slot 2 holds c, all on A, neither
/// migrating, unless `change` answers a command otherwise.
fn two_slots_on_a(
    client: &Client,
    change: &[(String, Vec<u8>)],
) -> impl FnMut(&str) -> Answer + Send + 'static {
    let mut table: Vec<(String, Vec<u8>)> = change.to_vec();
    table.extend([
        (listing(1), array(&[&key("a"), &key("b")])),
        (probe(client, 1), NIL.to_vec()),
        (listing(2), array(&[&key("c")])),
        (probe(client, 2), NIL.to_vec()),
        (get("a"), bulk("va")),
        (get("b"), bulk("vb")),
        (get("c"), bulk("vc")),
    ]);
    answers(table)
}

fn fine(out: &Outcome) {
    assert!(out.fatal.is_none(), "{:?}", out.fatal);
    assert!(out.node_error.is_none(), "{:?}", out.node_error);
    assert!(!out.stale_map);
}

#[test]
fn a_stable_batch_is_listed_then_read() {
    let client = client();
    let nodes = Nodes::default();
    nodes.node(A, two_slots_on_a(&client, &[]));
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[1, 2], Want::Values, &mut batch);
    fine(&out);
    assert_eq!((out.done, out.again, out.listed), (vec![1, 2], vec![], 2));
    assert_eq!(
        records(&batch),
        [
            rec("a", "va", None),
            rec("b", "vb", None),
            rec("c", "vc", None)
        ]
    );
    // Every listing and probe first, then every read.
    assert_eq!(
        nodes.asked_of(A),
        [
            listing(1),
            probe(&client, 1),
            listing(2),
            probe(&client, 2),
            get("a"),
            get("b"),
            get("c")
        ]
    );
}

#[test]
fn a_moved_probe_reads_the_slot_again_under_a_newer_map() {
    let client = client();
    let nodes = Nodes::default();
    let moved = (probe(&client, 2), error(&format!("MOVED 2 {B}")));
    nodes.node(A, two_slots_on_a(&client, &[moved]));
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[1, 2], Want::Values, &mut batch);
    assert!(out.stale_map, "MOVED: the map is behind");
    assert!(out.fatal.is_none() && out.node_error.is_none());
    assert_eq!((out.done, out.again), (vec![1], vec![2]));
    assert_eq!(records(&batch).len(), 2, "a and b only");
    assert!(
        !nodes.asked_of(A).contains(&get("c")),
        "a slot the node no longer serves is not read"
    );
    assert!(nodes.asked_of(B).is_empty());
}

#[test]
fn a_slot_that_starts_migrating_mid_batch_is_dropped_whole() {
    // The probe said stable; by the time b is read, it has moved to B.
    let client = client();
    let nodes = Nodes::default();
    let ask = (get("b"), error(&format!("ASK 1 {B}")));
    nodes.node(A, two_slots_on_a(&client, &[ask]));
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[1, 2], Want::Values, &mut batch);
    fine(&out);
    assert_eq!((out.done, out.again), (vec![2], vec![1]));
    assert_eq!(
        records(&batch),
        [rec("c", "vc", None)],
        "a, read before b's ASK, is cut with its slot: no slot is handed on in part"
    );
    assert!(nodes.asked_of(B).is_empty(), "read again later, as a whole");
}

#[test]
fn wrongtype_for_one_key_leaves_it_out_and_keeps_its_slot() {
    let client = client();
    let nodes = Nodes::default();
    let wrongtype = (
        get("a"),
        error("WRONGTYPE Operation against a key holding the wrong kind of value"),
    );
    nodes.node(A, two_slots_on_a(&client, &[wrongtype]));
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[1, 2], Want::Values, &mut batch);
    fine(&out);
    assert_eq!((out.done, out.again), (vec![1, 2], vec![]));
    let ids: Vec<String> = records(&batch).into_iter().map(|r| r.0).collect();
    assert_eq!(ids, ["b", "c"]);
}

#[test]
fn a_refused_get_is_fatal_and_every_reply_is_still_read() {
    let client = client();
    let nodes = Nodes::default();
    let refused = (
        get("a"),
        error("NOPERM this user has no permissions to run the 'get' command"),
    );
    nodes.node(A, two_slots_on_a(&client, &[refused]));
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[1, 2], Want::Values, &mut batch);
    let fatal = out.fatal.expect("a refused GET ends the read");
    assert!(fatal.message.contains("GET refused"), "{}", fatal.message);
    assert!(!out.listing_refused);
    assert_eq!((out.done, out.again), (vec![2], vec![1]));
    assert_eq!(records(&batch), [rec("c", "vc", None)]);

    // The connection stayed in step: the next read on it gets its own replies.
    batch.clear();
    let out = read(&client, &mut conns, &[2], Want::Values, &mut batch);
    fine(&out);
    assert_eq!(records(&batch), [rec("c", "vc", None)]);
}

/// Slot 3 is being migrated from A to B: A still holds a and b (b moves
/// before it is read), B already holds c.
fn slot_3_migrating(client: &Client, nodes: &Nodes, b_answers: Vec<(String, Vec<u8>)>) {
    let ask = || error(&format!("ASK 3 {B}"));
    nodes.node(
        A,
        answers(vec![
            (listing(3), array(&[&key("a"), &key("b")])),
            (probe(client, 3), ask()),
            (get("a"), bulk("va")),
            (pttl("a"), int(1000)),
            (get("b"), ask()),
            (pttl("b"), ask()),
            (get("c"), ask()),
            (pttl("c"), ask()),
        ]),
    );
    // B answers ASKING whatever follows; the rest from its table.
    let mut table = answers(b_answers);
    nodes.node(B, move |c| match c {
        "ASKING" => Answer::Reply(b"+OK\r\n".to_vec()),
        c => table(c),
    });
}

#[test]
fn a_migrating_slot_is_read_on_both_nodes_with_asking_on_the_target() {
    let client = client();
    let nodes = Nodes::default();
    slot_3_migrating(
        &client,
        &nodes,
        vec![
            (listing(3), array(&[&key("c")])),
            (get("b"), bulk("vb")),
            (pttl("b"), int(2000)),
            (get("c"), bulk("vc")),
            (pttl("c"), int(3000)),
        ],
    );
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[3], Want::ValuesAndTtl, &mut batch);
    fine(&out);
    assert_eq!((out.done, out.again), (vec![3], vec![]));
    assert_eq!(
        records(&batch),
        [
            rec("a", "va", Some(1000)),
            rec("b", "vb", Some(2000)),
            rec("c", "vc", Some(3000))
        ]
    );
    // Every key is asked of the source first, the target's listing included.
    assert_eq!(
        nodes.asked_of(A)[2..],
        [
            get("a"),
            pttl("a"),
            get("b"),
            pttl("b"),
            get("c"),
            pttl("c")
        ]
    );
    // On the target, each command behind its own ASKING.
    assert_eq!(
        nodes.asked_of(B),
        [
            listing(3),
            "ASKING".into(),
            get("b"),
            "ASKING".into(),
            pttl("b"),
            "ASKING".into(),
            get("c"),
            "ASKING".into(),
            pttl("c")
        ]
    );
}

#[test]
fn a_failure_on_the_target_reads_the_migrating_slot_again_whole() {
    let client = client();
    let nodes = Nodes::default();
    slot_3_migrating(
        &client,
        &nodes,
        vec![
            (listing(3), array(&[&key("c")])),
            (get("b"), bulk("vb")),
            (
                get("c"),
                error("TRYAGAIN Multiple keys request during rehashing of slot"),
            ),
        ],
    );
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[3], Want::Values, &mut batch);
    assert!(out.fatal.is_none() && !out.stale_map);
    assert!(out.node_error.is_some(), "TRYAGAIN: the node pauses");
    assert_eq!((out.done, out.again), (vec![], vec![3]));
    assert!(batch.is_empty(), "a and b are cut with the slot");
}

#[test]
fn a_full_listing_is_listed_again_with_a_larger_count() {
    let client = client();
    let nodes = Nodes::default();
    let full: Vec<String> = (0..COUNT).map(|i| key(&format!("s{i}"))).collect();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let full = (listing(1), array(&full));
    nodes.node(A, two_slots_on_a(&client, &[full]));
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[1, 2], Want::Values, &mut batch);
    fine(&out);
    assert_eq!(out.larger, [(1, COUNT)]);
    assert_eq!((out.done, out.again), (vec![2], vec![1]));
    assert!(
        !nodes
            .asked_of(A)
            .iter()
            .any(|c| c.starts_with("GET ORS:T:{s")),
        "a listing that may be cut short is not read"
    );
}

#[test]
fn a_lost_connection_keeps_the_slots_read_whole_before_it() {
    let client = client();
    let nodes = Nodes::default();
    let mut answer = two_slots_on_a(&client, &[]);
    let c = get("c");
    nodes.node(A, move |command| {
        if command == c {
            Answer::Close
        } else {
            answer(command)
        }
    });
    nodes.dial_here();
    let (mut conns, mut batch) = (ConnectionSet::default(), Batch::default());

    let out = read(&client, &mut conns, &[1, 2], Want::Values, &mut batch);
    assert!(out.fatal.is_none());
    assert!(
        out.node_error.is_some(),
        "the node pauses before it is read again"
    );
    assert_eq!((out.done, out.again), (vec![1], vec![2]));
    let ids: Vec<String> = records(&batch).into_iter().map(|r| r.0).collect();
    assert_eq!(ids, ["a", "b"]);
}
