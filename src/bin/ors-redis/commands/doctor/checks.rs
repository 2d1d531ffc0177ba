//! `doctor`'s checks: [`evaluate`] turns the [`Facts`] into pass/warn/fail
//! rows, without I/O, so that the rules are unit-tested. The rules are
//! ORS's recommendations (`ors_redis::operator::recommend`, which init's
//! warnings use too): every slot served and `cluster_state:ok`; at least 3
//! masters; every master with a replica on another host (the same host is a
//! warning: a host failure loses both); AOF on everywhere (a promoted
//! replica must have it too); `maxmemory-policy noeviction` (every session
//! key has a TTL, so even `volatile-*` policies evict live sessions);
//! authentication and TLS in use; one server version everywhere; round
//! trips under 5 ms.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use ors_redis::operator::recommend;
use ors_redis::operator::{Error, ErrorKind, NodeAddr, ADDRESS_MAP_ADVICE};

use super::facts::{Facts, NodeFacts, Role};
use crate::output::{human_bytes, Status};

const ALL_SLOTS: usize = 16384;

/// One row of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Check {
    /// snake_case, stable: scripts match on it.
    pub id: &'static str,
    /// The node it is about; `None` for the whole cluster.
    pub node: Option<String>,
    pub status: Status,
    pub detail: String,
}

pub(super) fn check(id: &'static str, node: Option<&str>, status: Status, detail: String) -> Check {
    debug_assert!(
        super::catalog::CHECKS.contains(&id),
        "{id} is not in doctor's catalog"
    );
    Check {
        id,
        node: node.map(str::to_string),
        status,
        detail,
    }
}

/// The checks, in the order the report shows them.
pub(super) fn evaluate(facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    seeds(facts, &mut out);
    reachability(facts, &mut out);
    failovers(facts, &mut out);
    permissions(facts, &mut out);
    restore(facts, &mut out);
    cluster_state(facts, &mut out);
    open_slots(facts, &mut out);
    slot_maps(facts, &mut out);
    masters(facts, &mut out);
    replicas(facts, &mut out);
    aof(facts, &mut out);
    appendfsync(facts, &mut out);
    eviction(facts, &mut out);
    memory(facts, &mut out);
    versions(facts, &mut out);
    auth(facts, &mut out);
    tls(facts, &mut out);
    round_trips(facts, &mut out);
    compressed_values(facts, &mut out);
    out
}

/// How many sampled sessions are compressed: before any is, an older
/// ors-redis (which does not read the envelope) may still run; once some
/// are, every reader must be on a version that reads them
/// (docs/compression.md).
fn compressed_values(facts: &Facts, out: &mut Vec<Check>) {
    let (status, detail) = match &facts.envelopes {
        Err(e) => (Status::Warn, format!("could not sample the sessions: {e}")),
        Ok(s) if s.sampled == 0 => (Status::Pass, "no session to sample".to_string()),
        Ok(s) if s.enveloped == 0 => (
            Status::Pass,
            format!(
                "0 of {} sampled sessions compressed: any ors-redis version reads them",
                s.sampled
            ),
        ),
        Ok(s) => {
            let missing: Vec<String> = s
                .dictionaries
                .iter()
                .filter(|d| !d.present)
                .map(|d| format!("{} ({} of them)", d.id, d.values))
                .collect();
            let named: Vec<String> = s
                .dictionaries
                .iter()
                .map(|d| format!("{} ({})", d.id, d.values))
                .collect();
            let share = format!(
                "{} of {} sampled sessions compressed ({:.0}%)",
                s.enveloped,
                s.sampled,
                100.0 * s.enveloped as f64 / s.sampled as f64
            );
            if !missing.is_empty() {
                (
                    Status::Fail,
                    format!(
                        "{share}; they name compression dictionary {}, which is not in the \
                         cluster: those sessions cannot be read (docs/compression.md)",
                        missing.join(", ")
                    ),
                )
            } else {
                let dictionaries = if named.is_empty() {
                    String::new()
                } else {
                    format!(", with dictionary {} (present)", named.join(", "))
                };
                (
                    Status::Pass,
                    format!(
                        "{share}{dictionaries}: every ORS and tool of this cluster name must run \
                         a version that reads compressed values (docs/compression.md)"
                    ),
                )
            }
        }
    };
    out.push(check("compressed_values", None, status, detail));
}

fn reachable(facts: &Facts) -> impl Iterator<Item = &NodeFacts> {
    facts.nodes.iter().filter(|n| n.reachable())
}

/// "on all 6 nodes" or "on 127.0.0.1:7000, 127.0.0.1:7001".
fn where_(names: &[&str], total: usize) -> String {
    if names.len() == total && total > 1 {
        format!("on all {total} nodes")
    } else {
        format!("on {}", names.join(", "))
    }
}

fn reachability(facts: &Facts, out: &mut Vec<Check>) {
    for n in &facts.nodes {
        if let Some(flags) = &n.marked {
            out.push(check(
                "node",
                Some(&n.name),
                Status::Fail,
                format!("the cluster marks this {} as {flags}", n.role.as_str()),
            ));
        }
        if let Some(e) = &n.error {
            out.push(check(
                "node",
                Some(&n.name),
                Status::Fail,
                format!("{} not reachable: {e}", n.role.as_str()),
            ));
        }
    }
    // The seed answered, yet no node it names can be reached: the nodes
    // announce addresses of their own network.
    let mut announced = facts.nodes.iter().filter(|n| n.addr.is_some()).peekable();
    if announced.peek().is_some() && announced.all(|n| n.error.is_some()) {
        out.push(check(
            "address_map",
            None,
            Status::Fail,
            format!(
                "seed {} answered, but no node the cluster announces can be reached from this \
                 host; {ADDRESS_MAP_ADVICE}",
                facts.seed
            ),
        ));
    }
}

fn cluster_state(facts: &Facts, out: &mut Vec<Check>) {
    let asked: Vec<&NodeFacts> = reachable(facts)
        .filter(|n| !n.cluster_info.is_empty())
        .collect();
    let not_ok: Vec<String> = asked
        .iter()
        .filter(|n| n.cluster_info.get("cluster_state").map(String::as_str) != Some("ok"))
        .map(|n| {
            format!(
                "{} (cluster_state:{})",
                n.name,
                n.cluster_info
                    .get("cluster_state")
                    .map(String::as_str)
                    .unwrap_or("?")
            )
        })
        .collect();
    let slots_ok = asked
        .iter()
        .filter_map(|n| {
            n.cluster_info
                .get("cluster_slots_ok")?
                .parse::<usize>()
                .ok()
        })
        .min();
    let served = ALL_SLOTS - facts.unserved_slots.min(ALL_SLOTS);
    let mut problems = Vec::new();
    if facts.unserved_slots > 0 {
        problems.push(format!(
            "{} of {ALL_SLOTS} slots have no master: sessions hashing there cannot be stored",
            facts.unserved_slots
        ));
    }
    if let Some(ok) = slots_ok.filter(|&ok| ok < ALL_SLOTS) {
        problems.push(format!(
            "only {ok} of {ALL_SLOTS} slots are ok (the others are on failing masters)"
        ));
    }
    if !not_ok.is_empty() {
        problems.push(format!("state not ok on {}", not_ok.join(", ")));
    }
    // Refused by the ACL: the `permission` row says so.
    let refused = facts
        .nodes
        .iter()
        .any(|n| n.denied.iter().any(|d| d == "cluster|info"));
    if asked.is_empty() && !refused {
        problems.push("no node answered CLUSTER INFO".to_string());
    }
    // A check that saw nothing does not pass.
    if asked.is_empty() && refused && problems.is_empty() {
        out.push(check(
            "cluster_state",
            None,
            Status::Warn,
            format!(
                "not checked: CLUSTER INFO refused (see the permission row); \
                 {served} of {ALL_SLOTS} slots served in the slot map"
            ),
        ));
        return;
    }
    if problems.is_empty() {
        out.push(check(
            "cluster_state",
            None,
            Status::Pass,
            format!(
                "cluster_state:ok on {} node(s); {served} of {ALL_SLOTS} slots served",
                asked.len()
            ),
        ));
    } else {
        out.push(check(
            "cluster_state",
            None,
            Status::Fail,
            problems.join("; "),
        ));
    }
}

/// The masters serving slots and up, and the replicas: the one count that
/// the header, the JSON and the `masters` row all show.
pub(super) fn node_counts(facts: &Facts) -> (usize, usize) {
    let masters = serving_masters(facts).filter(|m| !m.down()).count();
    let replicas = facts
        .nodes
        .iter()
        .filter(|n| n.role == Role::Replica)
        .count();
    (masters, replicas)
}

/// Nodes marked failed or not answering.
pub(super) fn nodes_down(facts: &Facts) -> usize {
    facts.nodes.iter().filter(|n| n.down()).count()
}

fn serving_masters(facts: &Facts) -> impl Iterator<Item = &NodeFacts> {
    facts
        .nodes
        .iter()
        .filter(|n| n.role == Role::Master && n.serves_slots)
}

/// The replicas of `master` that can take over: up, linked, not failed.
fn working_replicas<'f>(facts: &'f Facts, master: &NodeFacts) -> Vec<&'f NodeFacts> {
    facts
        .nodes
        .iter()
        .filter(|r| r.role == Role::Replica && r.master.as_deref() == Some(master.name.as_str()))
        .filter(|r| !r.down())
        .collect()
}

/// A row for each seed of redis-nodes that gave no slot map, and why.
pub(super) fn seed_checks(refusals: &[(NodeAddr, Error)]) -> Vec<Check> {
    refusals
        .iter()
        .map(|(seed, e)| seed_check(seed, e, Status::Fail))
        .collect()
}

fn seed_check(seed: &NodeAddr, e: &Error, status: Status) -> Check {
    let detail = match e.kind {
        ErrorKind::Connection | ErrorKind::Timeout => {
            format!("not reachable: {}", e.message)
        }
        _ => e.message.clone(),
    };
    check("seed", Some(&seed.to_string()), status, detail)
}

fn seeds(facts: &Facts, out: &mut Vec<Check>) {
    // The cluster answered through a later seed: an earlier one that is no
    // cluster node is a mistake in redis-nodes; one that is down, a warning.
    for (seed, e) in &facts.seed_errors {
        let status = if e.kind == ErrorKind::Config {
            Status::Fail
        } else {
            Status::Warn
        };
        out.push(seed_check(seed, e, status));
    }
}

fn failovers(facts: &Facts, out: &mut Vec<Check>) {
    for m in serving_masters(facts).filter(|m| m.down()) {
        let why = match (&m.marked, &m.error) {
            (Some(flags), _) => format!("marked {flags}"),
            (None, Some(e)) => format!("not reachable: {e}"),
            (None, None) => "down".to_string(),
        };
        let replicas = working_replicas(facts, m);
        let detail = match replicas.first() {
            Some(r) => format!(
                "master {} down ({why}); replica {} is taking over: its slots are unavailable until \
                 the replica is promoted (cluster-node-timeout plus an election, usually seconds)",
                m.name, r.name
            ),
            None => format!(
                "master {} down ({why}) and no working replica to take over: its slots stay \
                 unavailable until it returns",
                m.name
            ),
        };
        out.push(check("failover", Some(&m.name), Status::Fail, detail));
    }
}

fn permissions(facts: &Facts, out: &mut Vec<Check>) {
    let mut by_denied: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for n in facts.nodes.iter().filter(|n| !n.denied.is_empty()) {
        let lacks = n
            .denied
            .iter()
            .map(|d| format!("+{d}"))
            .collect::<Vec<_>>()
            .join(" ");
        by_denied.entry(lacks).or_default().push(n.name.as_str());
    }
    for (lacks, names) in by_denied {
        out.push(check(
            "permission",
            None,
            Status::Fail,
            format!(
                "permission denied: the ACL lacks {lacks} {}: what those commands show is not \
                 checked (the operator's read-only ACL rule: docs/operators.md)",
                where_(&names, facts.nodes.len())
            ),
        ));
    }
}

/// The restore's permission, for the user doctor runs as (give it the
/// library's credentials to check the library's rule): a warning, since the
/// restore still works, by SCAN, much slower.
fn restore(facts: &Facts, out: &mut Vec<Check>) {
    if let Some(lacks) = &facts.restore_lacks {
        out.push(check("restore", None, Status::Warn, lacks.clone()));
    }
}

fn open_slots(facts: &Facts, out: &mut Vec<Check>) {
    let mut open = Vec::new();
    let mut asked = 0;
    for n in reachable(facts).filter(|n| n.slot_view.is_some()) {
        asked += 1;
        open.extend(n.open_slots.iter().map(|s| format!("{s} (on {})", n.name)));
    }
    if asked == 0 {
        return;
    }
    if open.is_empty() {
        out.push(check(
            "open_slots",
            None,
            Status::Pass,
            format!("no slot migrating or importing on {asked} node(s)"),
        ));
    } else {
        out.push(check(
            "open_slots",
            None,
            Status::Warn,
            format!(
                "{}: a resharding is under way or was left unfinished (finish it, or \
                 redis-cli --cluster fix); sessions in those slots go through ASK redirects",
                open.join("; ")
            ),
        ));
    }
}

fn slot_maps(facts: &Facts, out: &mut Vec<Check>) {
    let mut views: BTreeMap<&[String], Vec<&str>> = BTreeMap::new();
    for n in reachable(facts) {
        if let Some(view) = &n.slot_view {
            views
                .entry(view.as_slice())
                .or_default()
                .push(n.name.as_str());
        }
    }
    let asked: usize = views.values().map(Vec::len).sum();
    if asked == 0 {
        return;
    }
    if views.len() == 1 {
        out.push(check(
            "slot_map",
            None,
            Status::Pass,
            format!("{asked} node(s) agree on the slot map"),
        ));
        return;
    }
    let mut groups: Vec<&Vec<&str>> = views.values().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let text = groups
        .iter()
        .map(|g| g.join(", "))
        .collect::<Vec<_>>()
        .join(" | ");
    out.push(check(
        "slot_map",
        None,
        Status::Fail,
        format!(
            "the nodes disagree on the slot map ({} views: {text}); a failover or resharding \
             is under way, or the cluster is split",
            views.len()
        ),
    ));
}

fn masters(facts: &Facts, out: &mut Vec<Check>) {
    let (n, _) = node_counts(facts);
    let down = serving_masters(facts).filter(|m| m.down()).count();
    let down_text = if down > 0 {
        format!(" ({down} more down)")
    } else {
        String::new()
    };
    if n >= recommend::MIN_MASTERS {
        out.push(check(
            "masters",
            None,
            Status::Pass,
            format!(
                "{n} masters serve the slots{down_text} (ORS: at least {})",
                recommend::MIN_MASTERS
            ),
        ));
    } else {
        out.push(check(
            "masters",
            None,
            Status::Fail,
            format!(
                "only {n} master(s) serve the slots{down_text}; ORS recommends at least {}, each with a replica",
                recommend::MIN_MASTERS
            ),
        ));
    }
}

fn replicas(facts: &Facts, out: &mut Vec<Check>) {
    // A master that is down has its `failover` row instead.
    for m in serving_masters(facts).filter(|m| !m.down()) {
        let healthy: Vec<&NodeFacts> = facts
            .nodes
            .iter()
            .filter(|r| r.role == Role::Replica && r.master.as_deref() == Some(m.name.as_str()))
            .filter(|r| r.marked.is_none() && r.reachable())
            // A replica whose link to the master is down has stale data.
            .filter(|r| r.info.get("master_link_status").is_none_or(|s| s == "up"))
            .collect();
        let same_host = |r: &&NodeFacts| match (&r.addr, &m.addr) {
            (Some(a), Some(b)) => a.host == b.host,
            _ => false,
        };
        let names: Vec<&str> = healthy.iter().map(|r| r.name.as_str()).collect();
        let (status, detail) = if healthy.is_empty() {
            (
                Status::Fail,
                "no working replica (or none reachable): this master's sessions are lost if it fails".to_string(),
            )
        } else if healthy.iter().all(same_host) {
            (
                Status::Warn,
                format!(
                    "{} replica(s) ({}), all on the same host as the master: a host failure loses both",
                    healthy.len(),
                    names.join(", ")
                ),
            )
        } else {
            (
                Status::Pass,
                format!(
                    "{} replica(s) ({}), on another host",
                    healthy.len(),
                    names.join(", ")
                ),
            )
        };
        out.push(check("replicas", Some(&m.name), status, detail));
    }
}

fn aof(facts: &Facts, out: &mut Vec<Check>) {
    let nodes: Vec<&NodeFacts> = reachable(facts).collect();
    if nodes.is_empty() {
        return;
    }
    let names = |keep: &dyn Fn(&NodeFacts) -> bool| -> Vec<&str> {
        nodes
            .iter()
            .filter(|n| keep(n))
            .map(|n| n.name.as_str())
            .collect()
    };
    let off = names(&|n| n.aof_on() == Some(false));
    let unknown = names(&|n| n.aof_on().is_none());
    let write_errors = names(&|n| {
        n.info
            .get("aof_last_write_status")
            .is_some_and(|s| s != "ok")
    });
    let total = nodes.len();
    // Every finding is shown: one problem does not hide another.
    let mut problems = Vec::new();
    let mut status = Status::Pass;
    if !off.is_empty() {
        status = Status::Fail;
        problems.push(format!(
            "appendonly no {}: sessions written since the last snapshot are lost when a node \
             restarts; set appendonly yes",
            where_(&off, total)
        ));
    }
    if !write_errors.is_empty() {
        status = Status::Fail;
        problems.push(format!(
            "the last AOF write failed {} (disk full or not writable?)",
            where_(&write_errors, total)
        ));
    }
    if !unknown.is_empty() {
        status = status.max(Status::Warn);
        problems.push(format!(
            "cannot tell whether AOF is on {} (neither CONFIG GET nor INFO told)",
            where_(&unknown, total)
        ));
    }
    let detail = if problems.is_empty() {
        format!("appendonly yes {}", where_(&names(&|_| true), total))
    } else {
        problems.join("; ")
    };
    out.push(check("aof", None, status, detail));
}

fn appendfsync(facts: &Facts, out: &mut Vec<Check>) {
    let with_aof: Vec<&NodeFacts> = reachable(facts)
        .filter(|n| n.aof_on() == Some(true))
        .collect();
    if with_aof.is_empty() {
        return;
    }
    // `None`: CONFIG GET refused. Kept apart from what servers answer, so
    // that no server's text is taken for our own placeholder.
    let mut fsync: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for n in &with_aof {
        fsync
            .entry(n.appendfsync.as_deref())
            .or_default()
            .push(n.name.as_str());
    }
    let refused = fsync.remove(&None);
    let text = fsync
        .iter()
        .map(|(mode, names)| (mode.unwrap_or_default(), names))
        .chain(
            refused
                .iter()
                .map(|names| ("unknown (CONFIG GET refused)", names)),
        )
        .map(|(mode, names)| format!("appendfsync {mode} {}", where_(names, with_aof.len())))
        .collect::<Vec<_>>()
        .join("; ");
    let (status, detail) = if fsync
        .keys()
        .any(|mode| mode.is_some_and(recommend::fsync_leaves_it_to_the_os))
    {
        (
            Status::Warn,
            format!(
                "{text}: the OS decides when to write (up to ~30 s of sessions lost on a \
                 crash); everysec is the usual choice"
            ),
        )
    } else if refused.is_some() {
        (Status::Warn, text)
    } else {
        (Status::Pass, text)
    };
    out.push(check("appendfsync", None, status, detail));
}

fn eviction(facts: &Facts, out: &mut Vec<Check>) {
    let nodes: Vec<&NodeFacts> = reachable(facts).collect();
    if nodes.is_empty() {
        return;
    }
    // `None`: neither CONFIG GET nor INFO told.
    let mut by_policy: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for n in &nodes {
        by_policy
            .entry(n.eviction_policy())
            .or_default()
            .push(n.name.as_str());
    }
    let bad: Vec<String> = by_policy
        .iter()
        .filter_map(|(p, names)| {
            p.filter(|p| recommend::evicts_sessions(p))
                .map(|p| (p, names))
        })
        .map(|(p, names)| format!("{p} {}", where_(names, nodes.len())))
        .collect();
    let (status, detail) = if !bad.is_empty() {
        (
            Status::Fail,
            format!(
                "{}: under memory pressure Redis evicts keys, and every session key has a TTL, \
                 so live sessions can vanish; set maxmemory-policy {}",
                bad.join("; "),
                recommend::EVICTION_POLICY
            ),
        )
    } else if let Some(names) = by_policy.get(&None) {
        (
            Status::Warn,
            format!(
                "cannot tell the policy {} (CONFIG GET refused, INFO has no maxmemory_policy)",
                where_(names, nodes.len())
            ),
        )
    } else {
        (
            Status::Pass,
            format!("noeviction on all {} node(s)", nodes.len()),
        )
    };
    out.push(check("maxmemory_policy", None, status, detail));
}

fn memory(facts: &Facts, out: &mut Vec<Check>) {
    for m in reachable(facts).filter(|n| n.role == Role::Master && n.serves_slots) {
        let (Some(used), Some(max)) = (m.info_u64("used_memory"), m.info_u64("maxmemory")) else {
            continue;
        };
        if max == 0 {
            out.push(check(
                "memory",
                Some(&m.name),
                Status::Pass,
                format!(
                    "used {}, no maxmemory limit (see ors-redis capacity)",
                    human_bytes(used)
                ),
            ));
            continue;
        }
        let percent = used as f64 * 100.0 / max as f64;
        let status = if percent >= recommend::MEMORY_FAIL_PERCENT {
            Status::Fail
        } else if percent >= recommend::MEMORY_WARN_PERCENT {
            Status::Warn
        } else {
            Status::Pass
        };
        let mut detail = format!(
            "used {} of maxmemory {} ({percent:.1}%)",
            human_bytes(used),
            human_bytes(max)
        );
        if status != Status::Pass {
            detail.push_str(": with noeviction, writes fail once maxmemory is reached");
        }
        out.push(check("memory", Some(&m.name), status, detail));
    }
}

fn versions(facts: &Facts, out: &mut Vec<Check>) {
    let nodes: Vec<&NodeFacts> = reachable(facts).collect();
    let mut by_version: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in &nodes {
        by_version
            .entry(
                n.info
                    .get("redis_version")
                    .map(String::as_str)
                    .unwrap_or("unknown"),
            )
            .or_default()
            .push(n.name.as_str());
    }
    if by_version.is_empty() {
        return;
    }
    let text = by_version
        .iter()
        .map(|(v, names)| format!("{v} {}", where_(names, nodes.len())))
        .collect::<Vec<_>>()
        .join("; ");
    let old = by_version.keys().any(|v| !recommend::has_unlink(v));
    let (status, detail) = if old {
        (
            Status::Warn,
            format!("{text}: before 4.0 there is no UNLINK (deletes block the node with DEL)"),
        )
    } else if by_version.len() > 1 {
        (
            Status::Warn,
            format!("mixed versions: {text}; finish the upgrade so every node behaves alike"),
        )
    } else {
        (Status::Pass, text)
    };
    out.push(check("version", None, status, detail));
}

fn auth(facts: &Facts, out: &mut Vec<Check>) {
    let Some(how) = &facts.auth else {
        out.push(check(
            "auth",
            None,
            Status::Warn,
            "no password in the config: anyone who reaches the nodes can read and delete \
             sessions (set requirepass or ACL users, and password= / username=)"
                .to_string(),
        ));
        return;
    };
    let open: Vec<&str> = reachable(facts)
        .filter(|n| n.open_without_auth == Some(true))
        .map(|n| n.name.as_str())
        .collect();
    let total = reachable(facts).count();
    if open.is_empty() {
        out.push(check(
            "auth",
            None,
            Status::Pass,
            format!("{how}; the nodes refuse clients without credentials"),
        ));
    } else {
        out.push(check(
            "auth",
            None,
            Status::Warn,
            format!(
                "{how}, but {} answer without credentials (the default user has no password)",
                where_(&open, total)
            ),
        ));
    }
}

fn tls(facts: &Facts, out: &mut Vec<Check>) {
    if facts.tls {
        out.push(check(
            "tls",
            None,
            Status::Pass,
            "tls-enabled=true".to_string(),
        ));
        return;
    }
    let loopback = facts
        .nodes
        .iter()
        .filter_map(|n| n.addr.as_ref())
        .all(|a| is_loopback(&a.host));
    let mut detail =
        "TLS off: sessions and the password cross the network in clear text".to_string();
    if loopback {
        detail.push_str(" (every node is on loopback here)");
    }
    out.push(check("tls", None, Status::Warn, detail));
}

fn round_trips(facts: &Facts, out: &mut Vec<Check>) {
    for n in reachable(facts) {
        let Some(median) = n.round_trip() else {
            continue;
        };
        let max = n.round_trips.iter().max().copied().unwrap_or(median);
        let text = format!(
            "PING {} ms (median of {}, max {} ms)",
            millis(median),
            n.round_trips.len(),
            millis(max)
        );
        if median >= recommend::SLOW_ROUND_TRIP {
            out.push(check(
                "latency",
                Some(&n.name),
                Status::Warn,
                format!(
                    "{text}: above {} ms; ORS writes on every state change, keep Redis close",
                    recommend::SLOW_ROUND_TRIP.as_millis()
                ),
            ));
        } else {
            out.push(check("latency", Some(&n.name), Status::Pass, text));
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// Milliseconds with two decimals.
pub(super) fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The overall result: the worst status of all checks.
pub(super) fn worst(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Pass)
}

#[cfg(test)]
mod tests {
    use super::super::facts::{slot_view, PINGS};
    use super::*;
    use ors_redis::operator::parse_info;

    fn node(name: &str, role: Role, master: Option<&str>) -> NodeFacts {
        let addr = NodeAddr::parse(name).unwrap();
        let mut n = NodeFacts::new(name.to_string(), Some(addr), role);
        n.serves_slots = role == Role::Master;
        n.master = master.map(str::to_string);
        n.round_trips = vec![Duration::from_micros(80); PINGS];
        n.info = parse_info(
            "redis_version:7.0.15\r\naof_enabled:1\r\nmaxmemory_policy:noeviction\r\n\
             used_memory:1048576\r\nmaxmemory:0\r\nmaster_link_status:up\r\n",
        );
        n.cluster_info = parse_info("cluster_state:ok\r\ncluster_slots_ok:16384\r\n");
        n.appendonly = Some("yes".into());
        n.appendfsync = Some("everysec".into());
        n.maxmemory_policy = Some("noeviction".into());
        n
    }

    fn healthy(hosts_apart: bool) -> Facts {
        let other = if hosts_apart { "10.0.0.2" } else { "10.0.0.1" };
        let mut nodes = Vec::new();
        for i in 0..3 {
            nodes.push(node(&format!("10.0.0.1:700{i}"), Role::Master, None));
            nodes.push(node(
                &format!("{other}:701{i}"),
                Role::Replica,
                Some(&format!("10.0.0.1:700{i}")),
            ));
        }
        Facts {
            seed: "10.0.0.1:7000".into(),
            nodes,
            seed_errors: Vec::new(),
            unserved_slots: 0,
            auth: Some("ACL user 'ors'".into()),
            tls: true,
            topology_source: "CLUSTER NODES",
            restore_lacks: None,
            envelopes: Ok(super::super::facts::EnvelopeSample {
                sampled: 600,
                enveloped: 0,
                dictionaries: Vec::new(),
            }),
        }
    }

    #[test]
    fn compressed_values_are_counted() {
        let detail = |envelopes| {
            let mut facts = healthy(true);
            facts.envelopes = envelopes;
            let checks = evaluate(&facts);
            let c = checks.iter().find(|c| c.id == "compressed_values").unwrap();
            (c.status, c.detail.clone())
        };
        let (status, text) = detail(Ok(super::super::facts::EnvelopeSample {
            sampled: 600,
            enveloped: 150,
            dictionaries: Vec::new(),
        }));
        assert_eq!(status, Status::Pass);
        assert!(
            text.starts_with("150 of 600 sampled sessions compressed (25%):"),
            "{text}"
        );
        let named = |present| super::super::facts::NamedDictionary {
            id: "1a2b3c4d".into(),
            values: 40,
            present,
        };
        let (status, text) = detail(Ok(super::super::facts::EnvelopeSample {
            sampled: 600,
            enveloped: 150,
            dictionaries: vec![named(true)],
        }));
        assert_eq!(status, Status::Pass);
        assert!(
            text.contains("with dictionary 1a2b3c4d (40) (present)"),
            "{text}"
        );
        let (status, text) = detail(Ok(super::super::facts::EnvelopeSample {
            sampled: 600,
            enveloped: 150,
            dictionaries: vec![named(false)],
        }));
        assert_eq!(status, Status::Fail);
        assert!(
            text.contains("dictionary 1a2b3c4d (40 of them), which is not in the cluster"),
            "{text}"
        );
        let (_, text) = detail(Ok(Default::default()));
        assert_eq!(text, "no session to sample");
        let (status, text) = detail(Err("NOPERM".into()));
        assert_eq!(status, Status::Warn);
        assert!(text.contains("NOPERM"));
    }

    fn status_of(checks: &[Check], name: &str) -> Vec<Status> {
        checks
            .iter()
            .filter(|c| c.id == name)
            .map(|c| c.status)
            .collect()
    }

    #[test]
    fn a_healthy_cluster_passes() {
        let checks = evaluate(&healthy(true));
        for c in &checks {
            assert_eq!(c.status, Status::Pass, "{c:?}");
        }
        assert_eq!(status_of(&checks, "replicas").len(), 3);
        assert_eq!(status_of(&checks, "latency").len(), 6);
        assert_eq!(worst(&checks), Status::Pass);
    }

    #[test]
    fn no_announced_node_reachable_names_the_address_map() {
        let mut facts = healthy(true);
        facts.nodes[0].error = Some("connection refused".into());
        let one_down = evaluate(&facts);
        assert!(status_of(&one_down, "address_map").is_empty());
        for n in &mut facts.nodes {
            n.error = Some("connection refused".into());
        }
        let checks = evaluate(&facts);
        assert_eq!(status_of(&checks, "address_map"), vec![Status::Fail]);
        let advice = checks.iter().find(|c| c.id == "address_map").unwrap();
        assert!(advice.detail.contains("redis-address-map"), "{advice:?}");
    }

    #[test]
    fn replicas_on_the_same_host_warn() {
        let checks = evaluate(&healthy(false));
        assert_eq!(status_of(&checks, "replicas"), vec![Status::Warn; 3]);
        assert_eq!(worst(&checks), Status::Warn);
    }

    #[test]
    fn every_row_is_a_declared_check_in_the_declared_order() {
        let mut weak = healthy(false);
        weak.nodes.retain(|n| n.role == Role::Master);
        for facts in [healthy(true), healthy(false), weak] {
            let order: Vec<usize> = evaluate(&facts)
                .iter()
                .map(|c| {
                    super::super::catalog::CHECKS
                        .iter()
                        .position(|id| *id == c.id)
                        .unwrap_or_else(|| panic!("{} is not in doctor's catalog", c.id))
                })
                .collect();
            assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
        }
    }

    #[test]
    fn a_weak_cluster_fails() {
        let mut facts = healthy(true);
        facts.nodes.retain(|n| n.role == Role::Master);
        for n in &mut facts.nodes {
            n.appendonly = Some("no".into());
            n.maxmemory_policy = Some("allkeys-lru".into());
        }
        facts.auth = None;
        facts.tls = false;
        let checks = evaluate(&facts);
        assert_eq!(status_of(&checks, "replicas"), vec![Status::Fail; 3]);
        assert_eq!(status_of(&checks, "aof"), vec![Status::Fail]);
        assert_eq!(status_of(&checks, "maxmemory_policy"), vec![Status::Fail]);
        assert_eq!(status_of(&checks, "auth"), vec![Status::Warn]);
        assert_eq!(status_of(&checks, "tls"), vec![Status::Warn]);
        let eviction = checks.iter().find(|c| c.id == "maxmemory_policy").unwrap();
        assert!(eviction.detail.contains("allkeys-lru on all 3 nodes"));
        assert_eq!(worst(&checks), Status::Fail);
    }

    #[test]
    fn cluster_state_slots_and_masters() {
        let mut facts = healthy(true);
        facts.unserved_slots = 100;
        facts.nodes[2].serves_slots = false;
        facts.nodes[0].cluster_info = parse_info("cluster_state:fail\r\n");
        let checks = evaluate(&facts);
        let state = checks.iter().find(|c| c.id == "cluster_state").unwrap();
        assert_eq!(state.status, Status::Fail);
        assert!(state.detail.contains("100 of 16384 slots"));
        assert!(state.detail.contains("10.0.0.1:7000 (cluster_state:fail)"));
        assert_eq!(status_of(&checks, "masters"), vec![Status::Fail]);
    }

    #[test]
    fn unreachable_and_failed_nodes_fail() {
        let mut facts = healthy(true);
        facts.nodes[1].error = Some("connection refused".into());
        facts.nodes[3].marked = Some("slave,fail".into());
        let checks = evaluate(&facts);
        assert_eq!(status_of(&checks, "node"), vec![Status::Fail; 2]);
        // Neither an unreachable nor a failed replica counts.
        assert_eq!(
            status_of(&checks, "replicas"),
            vec![Status::Fail, Status::Fail, Status::Pass]
        );
    }

    #[test]
    fn a_failover_is_described_and_counted_once() {
        let mut facts = healthy(true);
        facts.nodes[0].error = Some("connection refused".into());
        let checks = evaluate(&facts);
        let failover: Vec<&Check> = checks.iter().filter(|c| c.id == "failover").collect();
        assert_eq!(failover.len(), 1);
        assert!(
            failover[0].detail.starts_with(
                "master 10.0.0.1:7000 down (not reachable: connection refused); \
                 replica 10.0.0.2:7010 is taking over"
            ),
            "{}",
            failover[0].detail
        );
        // Not also "no working replica" for the master being replaced.
        assert_eq!(status_of(&checks, "replicas"), vec![Status::Pass; 2]);
        assert_eq!(node_counts(&facts), (2, 3));
        let masters = checks.iter().find(|c| c.id == "masters").unwrap();
        assert!(
            masters
                .detail
                .starts_with("only 2 master(s) serve the slots (1 more down)"),
            "{}",
            masters.detail
        );
    }

    #[test]
    fn a_restore_without_its_permission_warns_with_the_acl_line() {
        let mut facts = healthy(true);
        facts.restore_lacks = Some("the ACL rule lacks +cluster|getkeysinslot".into());
        assert_eq!(status_of(&evaluate(&facts), "restore"), vec![Status::Warn]);
        assert!(status_of(&evaluate(&healthy(true)), "restore").is_empty());
    }

    /// CLUSTER INFO refused everywhere: the state was not seen, so the row
    /// does not pass (it said "cluster_state:ok on 0 node(s)").
    #[test]
    fn a_refused_cluster_info_does_not_pass() {
        let mut facts = healthy(true);
        for n in &mut facts.nodes {
            n.cluster_info.clear();
            n.denied = vec!["cluster|info".into()];
        }
        let checks = evaluate(&facts);
        let state = checks.iter().find(|c| c.id == "cluster_state").unwrap();
        assert_eq!(state.status, Status::Warn, "{}", state.detail);
        assert!(state.detail.starts_with("not checked"), "{}", state.detail);
    }

    #[test]
    fn permissions_open_slots_and_slot_maps() {
        let mut facts = healthy(true);
        for n in &mut facts.nodes {
            n.denied = vec!["ping".into(), "config|get".into()];
            n.slot_view = Some(vec!["0-5460 a".into()]);
        }
        facts.nodes[2].slot_view = Some(vec!["0-5460 b".into()]);
        facts.nodes[0].open_slots = vec!["slot 0 migrating to 10.0.0.1:7001".into()];
        let checks = evaluate(&facts);
        let denied = checks.iter().find(|c| c.id == "permission").unwrap();
        assert!(
            denied
                .detail
                .starts_with("permission denied: the ACL lacks +ping +config|get on all 6 nodes"),
            "{}",
            denied.detail
        );
        assert_eq!(status_of(&checks, "open_slots"), vec![Status::Warn]);
        assert_eq!(status_of(&checks, "slot_map"), vec![Status::Fail]);
        let (view, open) = slot_view(
            "a1 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-b2]\n\
             b2 10.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [5461-<-a1]\n",
        );
        assert_eq!(view, ["0-5460 a1", "5461-10922 b2"]);
        assert_eq!(open, ["slot 5461 migrating to 10.0.0.1:7001"]);
    }

    #[test]
    fn a_seed_that_is_no_cluster_node_is_a_row() {
        let seed = NodeAddr::parse("10.0.0.9:6379").unwrap();
        let rows = seed_checks(&[(
            seed.clone(),
            Error::new(ErrorKind::Connection, "cannot connect"),
        )]);
        assert_eq!(rows[0].id, "seed");
        assert_eq!(rows[0].node.as_deref(), Some("10.0.0.9:6379"));
        assert_eq!(rows[0].detail, "not reachable: cannot connect");
        let mut facts = healthy(true);
        facts.seed_errors = vec![(
            seed,
            Error::config("node 10.0.0.9:6379 is a Redis Sentinel"),
        )];
        assert_eq!(status_of(&evaluate(&facts), "seed"), vec![Status::Fail]);
    }

    #[test]
    fn only_a_refused_config_get_is_unknown() {
        let detail = |checks: &[Check], id: &str| {
            let c = checks.iter().find(|c| c.id == id).unwrap();
            (c.status, c.detail.clone())
        };
        let mut facts = healthy(true);
        facts.nodes[0].appendfsync = None;
        facts.nodes[1].maxmemory_policy = None;
        facts.nodes[1].info.remove("maxmemory_policy");
        let checks = evaluate(&facts);
        let (status, text) = detail(&checks, "appendfsync");
        assert_eq!(status, Status::Warn);
        assert!(
            text.ends_with("appendfsync unknown (CONFIG GET refused) on 10.0.0.1:7000"),
            "{text}"
        );
        let (status, text) = detail(&checks, "maxmemory_policy");
        assert_eq!(status, Status::Warn);
        assert!(
            text.contains("cannot tell the policy on 10.0.0.2:7010"),
            "{text}"
        );
        // A server's own word is never taken for our placeholder.
        let mut facts = healthy(true);
        for n in &mut facts.nodes {
            n.appendfsync = Some("unknown-mode".into());
        }
        facts.nodes[1].maxmemory_policy = Some("unknown".into());
        let checks = evaluate(&facts);
        let (status, text) = detail(&checks, "appendfsync");
        assert_eq!(status, Status::Pass, "{text}");
        assert!(!text.contains("refused"), "{text}");
        let (status, text) = detail(&checks, "maxmemory_policy");
        assert_eq!(status, Status::Fail, "{text}");
        assert!(text.starts_with("unknown on 10.0.0.2:7010"), "{text}");
    }

    #[test]
    fn fsync_memory_versions_latency_and_auth() {
        let mut facts = healthy(true);
        facts.nodes[0].appendfsync = Some("no".into());
        facts.nodes[0]
            .info
            .insert("maxmemory".into(), "1100000".into());
        facts.nodes[2]
            .info
            .insert("redis_version".into(), "6.2.6".into());
        facts.nodes[4].round_trips = vec![Duration::from_millis(12); PINGS];
        facts.nodes[5].open_without_auth = Some(true);
        let checks = evaluate(&facts);
        assert_eq!(status_of(&checks, "aof"), vec![Status::Pass]);
        assert_eq!(status_of(&checks, "appendfsync"), vec![Status::Warn]);
        let memory = checks.iter().find(|c| c.id == "memory").unwrap();
        assert_eq!(memory.status, Status::Fail);
        assert!(memory.detail.contains("95.3%"), "{}", memory.detail);
        let version = checks.iter().find(|c| c.id == "version").unwrap();
        assert_eq!(version.status, Status::Warn);
        assert!(version.detail.contains("6.2.6 on 10.0.0.1:7001"));
        assert!(checks.iter().any(|c| c.id == "latency"
            && c.status == Status::Warn
            && c.node.as_deref() == Some("10.0.0.1:7002")));
        assert_eq!(status_of(&checks, "auth"), vec![Status::Warn]);
    }

    #[test]
    fn milliseconds() {
        assert_eq!(millis(Duration::from_micros(1234)), "1.23");
    }
}
