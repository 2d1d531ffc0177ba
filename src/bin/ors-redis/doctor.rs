//! `ors-redis doctor`: prints the checks of `ors_redis::admin::doctor`.

use ors_redis::admin::doctor::{self, Check, Facts, NodeFacts, Role};
use ors_redis::admin::{Admin, Status};
use ors_redis::error::ErrorKind;

use crate::output::{Json, Table};
use crate::{failure, Ctx, EXIT_FAIL, EXIT_OK};

pub fn run(ctx: &Ctx) -> i32 {
    let (facts, checks) = match Admin::connect(ctx.config.clone()) {
        Ok(mut admin) => {
            let facts = doctor::gather(&mut admin);
            let checks = doctor::evaluate(&facts);
            (Some(facts), checks)
        }
        Err(e) if e.kind == ErrorKind::Config => return failure(&e),
        // Unreachable or refused: that is the doctor's first finding.
        Err(e) => {
            let seeds: Vec<String> = ctx.config.nodes.iter().map(|n| n.to_string()).collect();
            let check = Check {
                name: "connect",
                node: seeds.join(";"),
                status: Status::Fail,
                detail: e.message,
            };
            (None, vec![check])
        }
    };
    let worst = doctor::worst(&checks);
    if ctx.json {
        print!("{}", to_json(ctx, facts.as_ref(), &checks, worst).render());
    } else {
        print!("{}", to_text(ctx, facts.as_ref(), &checks, worst));
    }
    if worst == Status::Fail {
        EXIT_FAIL
    } else {
        EXIT_OK
    }
}

fn counts(checks: &[Check]) -> [(Status, usize); 3] {
    [Status::Pass, Status::Warn, Status::Fail]
        .map(|s| (s, checks.iter().filter(|c| c.status == s).count()))
}

fn to_text(ctx: &Ctx, facts: Option<&Facts>, checks: &[Check], worst: Status) -> String {
    let mut out = String::new();
    match facts {
        Some(f) => {
            let masters = f.nodes.iter().filter(|n| n.role == Role::Master).count();
            let replicas = f.nodes.len() - masters;
            out.push_str(&format!(
                "ors-redis doctor: cluster-name {}, {masters} masters and {replicas} replicas \
                 (from {} of {})\n\n",
                f.cluster_name, f.topology_source, f.seed
            ));
        }
        None => out.push_str(&format!(
            "ors-redis doctor: cluster-name {}\n\n",
            ctx.config.cluster_name.as_str()
        )),
    }
    let mut table = Table::new(&["CHECK", "NODE", "STATUS", "DETAIL"]);
    for c in checks {
        table.row(vec![
            c.name.to_string(),
            c.node.clone(),
            c.status.as_str().to_uppercase(),
            c.detail.clone(),
        ]);
    }
    out.push_str(&table.render());
    let summary: Vec<String> = counts(checks)
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    out.push_str(&format!(
        "\nresult: {} ({})\n",
        worst.as_str().to_uppercase(),
        summary.join(", ")
    ));
    out
}

fn to_json(ctx: &Ctx, facts: Option<&Facts>, checks: &[Check], worst: Status) -> Json {
    let summary = Json::Obj(
        counts(checks)
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), Json::from(*n)))
            .collect(),
    );
    let checks_json: Vec<Json> = checks
        .iter()
        .map(|c| {
            Json::obj(vec![
                ("check", c.name.into()),
                ("node", c.node.as_str().into()),
                ("status", c.status.as_str().into()),
                ("detail", c.detail.as_str().into()),
            ])
        })
        .collect();
    let nodes: Vec<Json> = facts
        .map(|f| f.nodes.iter().map(node_json).collect())
        .unwrap_or_default();
    Json::obj(vec![
        ("command", "doctor".into()),
        ("cluster_name", ctx.config.cluster_name.as_str().into()),
        ("seed", facts.map(|f| f.seed.clone()).into()),
        ("result", worst.as_str().into()),
        ("ok", (worst != Status::Fail).into()),
        ("summary", summary),
        ("checks", Json::Arr(checks_json)),
        ("nodes", Json::Arr(nodes)),
    ])
}

fn node_json(n: &NodeFacts) -> Json {
    let info = |field: &str| Json::from(n.info.get(field).cloned());
    let info_num = |field: &str| Json::from(n.info.get(field).and_then(|v| v.parse::<u64>().ok()));
    Json::obj(vec![
        ("node", n.name.as_str().into()),
        ("role", n.role.as_str().into()),
        ("master", n.master.clone().into()),
        ("reachable", (n.error.is_none() && n.addr.is_some()).into()),
        ("error", n.error.clone().into()),
        ("marked", n.marked.clone().into()),
        ("version", info("redis_version")),
        (
            "round_trip_ms",
            n.round_trip().map(|d| d.as_secs_f64() * 1000.0).into(),
        ),
        ("aof", n.aof_on().into()),
        ("appendfsync", n.appendfsync.clone().into()),
        (
            "maxmemory_policy",
            n.eviction_policy().map(str::to_string).into(),
        ),
        ("used_memory", info_num("used_memory")),
        ("maxmemory", info_num("maxmemory")),
        (
            "cluster_state",
            n.cluster_info.get("cluster_state").cloned().into(),
        ),
    ])
}
