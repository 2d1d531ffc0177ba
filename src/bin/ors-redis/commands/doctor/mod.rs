//! `ors-redis doctor`: the live cluster against what ORS recommends. The
//! facts are gathered from every node (`facts.rs`), judged without I/O
//! (`checks.rs`; `ors_options.rs` for ORS's own options of a
//! `--config-file`), and printed here as a table or one JSON envelope.

mod catalog;
mod checks;
mod facts;
mod ors_options;

use serde::Serialize;

use self::checks::Check;
use self::facts::{Facts, NodeFacts};
use crate::cluster::Cluster;
use crate::ctx::{Ctx, EXIT_FAIL, EXIT_OK};
use crate::output::{self, Status, Table};

/// `result` of `doctor --json`.
#[derive(Serialize)]
struct Report<'a> {
    cluster_name: &'a str,
    /// The node that gave the slot map; null when none did.
    seed: Option<&'a str>,
    /// The worst status of all checks.
    status: Status,
    /// Masters serving slots and not marked failed, and the other nodes.
    masters: usize,
    replicas: usize,
    /// Nodes marked failed or not answering.
    nodes_down: usize,
    summary: Summary,
    checks: &'a [Check],
    nodes: Vec<NodeOut<'a>>,
}

#[derive(Serialize)]
struct Summary {
    pass: usize,
    warn: usize,
    fail: usize,
}

#[derive(Serialize)]
struct NodeOut<'a> {
    node: &'a str,
    role: &'static str,
    master: Option<&'a str>,
    reachable: bool,
    error: Option<&'a str>,
    marked: Option<&'a str>,
    version: Option<&'a str>,
    round_trip_ms: Option<f64>,
    aof: Option<bool>,
    appendfsync: Option<&'a str>,
    maxmemory_policy: Option<&'a str>,
    used_memory: Option<u64>,
    maxmemory: Option<u64>,
    cluster_state: Option<&'a str>,
    /// Commands this node refused for lack of ACL permission.
    denied: &'a [String],
}

pub(crate) fn run(ctx: &Ctx) -> i32 {
    let mut checks = ors_options::evaluate(&ctx.config, ctx.file.as_ref());
    let facts = match Cluster::connect_seeds(ctx.config.clone()) {
        Ok(mut admin) => {
            let facts = facts::gather(&mut admin);
            checks.extend(checks::evaluate(&facts));
            Some(facts)
        }
        // No seed gave a slot map: each seed's reason is a finding.
        Err(refusals) => {
            checks.extend(checks::seed_checks(&refusals));
            None
        }
    };
    let worst = checks::worst(&checks);
    let (masters, replicas) = facts.as_ref().map_or((0, 0), checks::node_counts);
    let report = Report {
        cluster_name: ctx.config.cluster_name.as_str(),
        seed: facts.as_ref().map(|f| f.seed.as_str()),
        status: worst,
        masters,
        replicas,
        nodes_down: facts.as_ref().map_or(0, checks::nodes_down),
        summary: Summary {
            pass: count(&checks, Status::Pass),
            warn: count(&checks, Status::Warn),
            fail: count(&checks, Status::Fail),
        },
        checks: &checks,
        nodes: facts
            .as_ref()
            .map(|f| f.nodes.iter().map(node_out).collect())
            .unwrap_or_default(),
    };
    if ctx.json {
        output::json("doctor", worst != Status::Fail, &report);
    } else {
        output::print(&to_text(&report, facts.as_ref()));
    }
    if worst == Status::Fail {
        EXIT_FAIL
    } else {
        EXIT_OK
    }
}

fn count(checks: &[Check], status: Status) -> usize {
    checks.iter().filter(|c| c.status == status).count()
}

fn to_text(r: &Report<'_>, facts: Option<&Facts>) -> String {
    let mut out = match facts {
        Some(f) => format!(
            "ors-redis doctor: cluster-name {}, {} masters and {} replicas{} (from {} of {})\n\n",
            r.cluster_name,
            r.masters,
            r.replicas,
            match r.nodes_down {
                0 => String::new(),
                n => format!(", {n} node(s) down"),
            },
            f.topology_source,
            f.seed
        ),
        None => format!(
            "ors-redis doctor: cluster-name {}: no node of redis-nodes gave a slot map\n\n",
            r.cluster_name
        ),
    };
    let mut table = Table::new(&["CHECK", "NODE", "STATUS", "DETAIL"]);
    for c in r.checks {
        table.row(vec![
            c.id.to_string(),
            c.node.clone().unwrap_or_else(|| "-".to_string()),
            c.status.as_str().to_uppercase(),
            c.detail.clone(),
        ]);
    }
    out.push_str(&table.render());
    out.push_str(&format!(
        "\nresult: {} ({} pass, {} warn, {} fail)\n",
        r.status.as_str().to_uppercase(),
        r.summary.pass,
        r.summary.warn,
        r.summary.fail
    ));
    out
}

fn node_out(n: &NodeFacts) -> NodeOut<'_> {
    let info = |field: &str| n.info.get(field).map(String::as_str);
    let info_num = |field: &str| n.info.get(field).and_then(|v| v.parse::<u64>().ok());
    NodeOut {
        node: &n.name,
        role: n.role.as_str(),
        master: n.master.as_deref(),
        reachable: n.error.is_none() && n.addr.is_some(),
        error: n.error.as_deref(),
        marked: n.marked.as_deref(),
        version: info("redis_version"),
        round_trip_ms: n.round_trip().map(|d| d.as_secs_f64() * 1000.0),
        aof: n.aof_on(),
        appendfsync: n.appendfsync.as_deref(),
        maxmemory_policy: n.eviction_policy(),
        used_memory: info_num("used_memory"),
        maxmemory: info_num("maxmemory"),
        cluster_state: n.cluster_info.get("cluster_state").map(String::as_str),
        denied: &n.denied,
    }
}
