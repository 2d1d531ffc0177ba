//! `ors-redis capacity`: ORS's sizing rules turned into numbers, a
//! measurement of the live cluster and a projection (`measure.rs`), printed
//! here as tables or one JSON envelope.

mod compression;
mod measure;
mod memory;

use serde::Serialize;

use self::measure::{self as capacity, Limit, Measured, Method, Plan, Projection, Recommendation};
use crate::cli::CapacityArgs;
use crate::cluster::Cluster;
use crate::ctx::{failure, Ctx, EXIT_FAIL, EXIT_OK};
use crate::output::{self, human_bytes, Status, Table};
use crate::progress::with_progress;

/// Everything the report shows.
struct Report {
    plan: Plan,
    sample_limit: u64,
    rec: Recommendation,
    measured: Measured,
    planned: u64,
    /// Bytes a session costs, and where the figure comes from.
    per_session: Option<(f64, &'static str)>,
    projections: Vec<Projection>,
    findings: Vec<(Status, String)>,
}

impl Report {
    fn worst(&self) -> Status {
        self.projections
            .iter()
            .map(|p| p.status)
            .chain(self.findings.iter().map(|(s, _)| *s))
            .max()
            .unwrap_or(Status::Pass)
    }
}

pub(crate) fn run(ctx: &Ctx, args: &CapacityArgs) -> i32 {
    let plan = Plan {
        ors_pairs: args.ors_pairs,
        sessions: args.sessions,
        avg_bytes: args.avg_bytes,
        ors_memory: args.ors_memory,
    };
    let sample_limit = args.sample;
    let mut admin = match Cluster::connect(ctx.config.clone()) {
        Ok(a) => a,
        Err(e) => return failure(ctx, "capacity", &e),
    };
    let measured = with_progress("sampling", ctx.quiet, |progress| {
        capacity::measure(&mut admin, sample_limit, progress)
    });
    let measured = match measured {
        Ok(m) => m,
        Err(e) => return failure(ctx, "capacity", &e),
    };
    let key_len = measured
        .sample
        .average_key()
        .map(|k| k.round() as u64)
        .unwrap_or_else(|| capacity::typical_key_len(&ctx.config.cluster_name));
    let rec = capacity::recommend(&plan, measured.masters.len(), key_len);
    let planned = plan.sessions.unwrap_or(measured.sessions);
    let per_session = match (measured.sample.bytes_per_session(), rec.bytes_per_session) {
        (Some(b), _) => Some((b, "measured")),
        (None, Some(b)) => Some((b as f64, "--avg-bytes, estimated")),
        (None, None) => None,
    };
    let projections = per_session
        .map(|(bytes, _)| capacity::project(&measured.masters, bytes, planned))
        .unwrap_or_default();
    let findings = capacity::findings(&plan, &rec, &measured.masters);
    let report = Report {
        plan,
        sample_limit,
        rec,
        measured,
        planned,
        per_session,
        projections,
        findings,
    };
    if ctx.json {
        output::json(
            "capacity",
            report.worst() != Status::Fail,
            &to_json(ctx, &report),
        );
    } else {
        output::print(&to_text(ctx, &report));
    }
    if report.worst() == Status::Fail {
        EXIT_FAIL
    } else {
        EXIT_OK
    }
}

/// The compression table: now, then each algorithm and level.
fn compression_text(c: &compression::CompressionSample, m: &Measured) -> String {
    let mut out = format!(
        "\nCompression, on the {} sampled session(s): {} stored compressed now, \
         stored/given {:.2}\n",
        c.sessions,
        c.enveloped,
        c.ratio_now()
    );
    let mut headers = vec!["SETTING", "STORED/GIVEN", "PER SESSION"];
    let names: Vec<String> = m
        .masters
        .iter()
        .map(|u| format!("SAVED ON {}", u.node))
        .collect();
    headers.extend(names.iter().map(String::as_str));
    let mut table = Table::new(&headers);
    let mut now = vec![
        "now".to_string(),
        format!("{:.2}", c.ratio_now()),
        format!("{:.0} B", c.bytes_per_session_now),
    ];
    now.extend(m.masters.iter().map(|_| "-".to_string()));
    table.row(now);
    for choice in &c.options {
        let mut row = vec![
            choice.name.clone(),
            format!("{:.2}", choice.ratio),
            format!("{:.0} B", choice.bytes_per_session),
        ];
        row.extend(
            m.masters
                .iter()
                .map(|u| signed_bytes(c.saved_on(choice, u.sessions))),
        );
        table.row(row);
    }
    out.push_str(&table.render());
    out.push_str("(compression=, compression-level=: docs/compression.md)\n");
    out
}

fn signed_bytes(n: f64) -> String {
    if n < 0.0 {
        format!("-{}", human_bytes((-n) as u64))
    } else {
        human_bytes(n as u64)
    }
}

fn method_text(m: &Method) -> String {
    match m {
        Method::MemoryUsage => {
            "MEMORY USAGE (+72 B each for the TTL entry and hash-table slots)".to_string()
        }
        Method::Estimate(why) => format!("STRLEN + estimated Redis overhead ({why})"),
    }
}

fn limit_text(limit: Limit) -> String {
    match limit {
        Limit::Maxmemory(n) => format!("maxmemory {}", human_bytes(n)),
        Limit::HostShare { ram, nodes } => format!(
            "{} (host RAM {} / {nodes} nodes)",
            human_bytes(ram / nodes.max(1)),
            human_bytes(ram)
        ),
        Limit::Unknown => "unknown".to_string(),
    }
}

fn given<T: std::fmt::Display>(
    value: Option<T>,
    option: &str,
    show: impl Fn(T) -> String,
) -> String {
    match value {
        Some(v) => format!("{} ({option})", show(v)),
        None => format!("not given ({option})"),
    }
}

fn to_text(ctx: &Ctx, r: &Report) -> String {
    let mut out = format!(
        "ors-redis capacity: cluster-name {}, {} masters\n\nORS sizing rules\n",
        ctx.config.cluster_name.as_str(),
        r.measured.masters.len()
    );
    let mut rules = Table::plain();
    rules.row(vec![
        "  ORS HA pairs".into(),
        given(r.plan.ors_pairs, "--ors-pairs", |n| n.to_string()),
    ]);
    rules.row(vec![
        "  masters".into(),
        format!(
            "{}: at least 3, about 3 per 9 ORS HA pairs, each with a replica on another host \
             ({} redis-server instances)",
            r.rec.masters, r.rec.instances
        ),
    ]);
    rules.row(vec![
        "  memory per node".into(),
        format!(
            "similar to an ORS application node: {}",
            given(r.plan.ors_memory, "--ors-memory", human_bytes)
        ),
    ]);
    rules.row(vec![
        "  planned sessions".into(),
        match (r.plan.sessions, r.plan.avg_bytes, r.rec.bytes_per_session) {
            (Some(n), Some(avg), Some(each)) => format!(
                "{n} (--sessions) of {avg} B (--avg-bytes): about {} each in Redis",
                human_bytes(each)
            ),
            (sessions, avg, _) => format!(
                "{}, {}",
                given(sessions, "--sessions", |n| n.to_string()),
                given(avg, "--avg-bytes", |n| format!("{n} B"))
            ),
        },
    ]);
    if let (Some(data), Some(max)) = (r.rec.data_per_master, r.rec.maxmemory_per_master) {
        rules.row(vec![
            "  data per master".into(),
            format!(
                "{} on {} masters; maxmemory at least {} (30% headroom)",
                human_bytes(data),
                r.rec.masters,
                human_bytes(max)
            ),
        ]);
    }
    out.push_str(&rules.render());

    out.push_str("\nMeasured on this cluster\n");
    let s = &r.measured.sample;
    let mut measured = Table::plain();
    measured.row(vec![
        "  sessions now".into(),
        format!("{} (SCAN of every master)", r.measured.sessions),
    ]);
    measured.row(vec![
        "  sampled".into(),
        if s.sessions == 0 {
            format!("none (--sample {})", r.sample_limit)
        } else {
            format!("{} session(s), with {}", s.sessions, method_text(&s.method))
        },
    ]);
    if let (Some(value), Some(key), Some(each)) =
        (s.average_value(), s.average_key(), s.bytes_per_session())
    {
        measured.row(vec![
            "  average value".into(),
            format!("{value:.0} B (key {key:.0} B)"),
        ]);
        measured.row(vec![
            "  per session in Redis".into(),
            format!("{each:.0} B"),
        ]);
    }
    measured.row(vec![
        "  projection".into(),
        match r.per_session {
            Some((each, source)) => format!(
                "{} sessions ({}) at {each:.0} B ({source}), spread evenly over {} masters",
                r.planned,
                if r.plan.sessions.is_some() {
                    "--sessions"
                } else {
                    "as many as now"
                },
                r.measured.masters.len()
            ),
            None => "none: no session to measure; give --avg-bytes".to_string(),
        },
    ]);
    out.push_str(&measured.render());
    if let Some(c) = &r.measured.compression {
        out.push_str(&compression_text(c, &r.measured));
    }

    if !r.projections.is_empty() {
        out.push('\n');
        let mut table = Table::new(&[
            "MASTER",
            "SESSIONS NOW",
            "USED NOW",
            "PLANNED",
            "PROJECTED",
            "LIMIT",
            "USE",
            "STATUS",
            "NOTE",
        ]);
        for p in &r.projections {
            table.row(vec![
                p.node.to_string(),
                p.sessions_now.to_string(),
                human_bytes(p.used_now),
                p.sessions_planned.to_string(),
                human_bytes(p.projected),
                limit_text(p.limit),
                p.percent
                    .map(|x| format!("{x:.1}%"))
                    .unwrap_or_else(|| "-".into()),
                p.status.as_str().to_uppercase(),
                p.note.clone(),
            ]);
        }
        out.push_str(&table.render());
    }
    if !r.findings.is_empty() {
        out.push('\n');
        for (status, text) in &r.findings {
            out.push_str(&format!("{}  {text}\n", status.as_str().to_uppercase()));
        }
    }
    out.push_str(&format!(
        "\nresult: {}\n",
        r.worst().as_str().to_uppercase()
    ));
    out
}

/// `result` of `capacity --json`.
#[derive(Serialize)]
struct CapacityOut<'a> {
    cluster_name: &'a str,
    masters_now: usize,
    status: Status,
    plan: PlanOut,
    rules: RulesOut,
    measured: MeasuredOut,
    projection: ProjectionOut,
    /// Null without a sample.
    compression: Option<CompressionOut>,
    findings: Vec<FindingOut<'a>>,
}

#[derive(Serialize)]
struct CompressionOut {
    sampled: u64,
    compressed_now: u64,
    stored_over_given_now: f64,
    bytes_per_session_now: f64,
    settings: Vec<CompressionChoiceOut>,
}

#[derive(Serialize)]
struct CompressionChoiceOut {
    setting: String,
    stored_over_given: f64,
    bytes_per_session: f64,
    /// Per master (as `projection.masters`), bytes saved against now.
    saved_bytes_per_master: Vec<f64>,
}

#[derive(Serialize)]
struct PlanOut {
    ors_pairs: Option<u64>,
    sessions: Option<u64>,
    avg_bytes: Option<u64>,
    ors_memory: Option<u64>,
    sample: u64,
}

#[derive(Serialize)]
struct RulesOut {
    masters: u64,
    instances: u64,
    bytes_per_session: Option<u64>,
    data_per_master: Option<u64>,
    maxmemory_per_master: Option<u64>,
}

#[derive(Serialize)]
struct MeasuredOut {
    sessions: u64,
    sampled: u64,
    /// `memory_usage` or `estimate`.
    method: &'static str,
    method_note: Option<String>,
    average_value_bytes: Option<f64>,
    average_key_bytes: Option<f64>,
    bytes_per_session: Option<f64>,
}

#[derive(Serialize)]
struct ProjectionOut {
    sessions: u64,
    bytes_per_session: Option<f64>,
    /// `measured` or `avg_bytes_estimate`.
    source: Option<&'static str>,
    masters: Vec<MasterOut>,
}

#[derive(Serialize)]
struct MasterOut {
    node: String,
    sessions_now: u64,
    used_memory: u64,
    sessions_planned: u64,
    projected_bytes: u64,
    /// What the budget is: `maxmemory`, `host_memory_share` (the host's RAM
    /// divided by the cluster's nodes on it) or `unknown`.
    budget: &'static str,
    budget_bytes: Option<u64>,
    host_memory: Option<u64>,
    nodes_on_host: Option<u64>,
    percent: Option<f64>,
    status: Status,
    note: String,
}

#[derive(Serialize)]
struct FindingOut<'a> {
    status: Status,
    detail: &'a str,
}

fn master_out(p: &Projection) -> MasterOut {
    let (budget, host_memory, nodes_on_host) = match p.limit {
        Limit::Maxmemory(_) => ("maxmemory", None, None),
        Limit::HostShare { ram, nodes } => ("host_memory_share", Some(ram), Some(nodes)),
        Limit::Unknown => ("unknown", None, None),
    };
    MasterOut {
        node: p.node.to_string(),
        sessions_now: p.sessions_now,
        used_memory: p.used_now,
        sessions_planned: p.sessions_planned,
        projected_bytes: p.projected,
        budget,
        budget_bytes: p.limit.bytes(),
        host_memory,
        nodes_on_host,
        percent: p.percent,
        status: p.status,
        note: p.note.clone(),
    }
}

fn to_json<'a>(ctx: &'a Ctx, r: &'a Report) -> CapacityOut<'a> {
    let s = &r.measured.sample;
    let (method, method_note) = match &s.method {
        Method::MemoryUsage => ("memory_usage", None),
        Method::Estimate(why) => ("estimate", Some(why.clone())),
    };
    CapacityOut {
        cluster_name: ctx.config.cluster_name.as_str(),
        masters_now: r.measured.masters.len(),
        status: r.worst(),
        plan: PlanOut {
            ors_pairs: r.plan.ors_pairs,
            sessions: r.plan.sessions,
            avg_bytes: r.plan.avg_bytes,
            ors_memory: r.plan.ors_memory,
            sample: r.sample_limit,
        },
        rules: RulesOut {
            masters: r.rec.masters,
            instances: r.rec.instances,
            bytes_per_session: r.rec.bytes_per_session,
            data_per_master: r.rec.data_per_master,
            maxmemory_per_master: r.rec.maxmemory_per_master,
        },
        measured: MeasuredOut {
            sessions: r.measured.sessions,
            sampled: s.sessions,
            method,
            method_note,
            average_value_bytes: s.average_value(),
            average_key_bytes: s.average_key(),
            bytes_per_session: s.bytes_per_session(),
        },
        projection: ProjectionOut {
            sessions: r.planned,
            bytes_per_session: r.per_session.map(|(b, _)| b),
            source: r.per_session.map(|(_, src)| match src {
                "measured" => "measured",
                _ => "avg_bytes_estimate",
            }),
            masters: r.projections.iter().map(master_out).collect(),
        },
        compression: r.measured.compression.as_ref().map(|c| CompressionOut {
            sampled: c.sessions,
            compressed_now: c.enveloped,
            stored_over_given_now: c.ratio_now(),
            bytes_per_session_now: c.bytes_per_session_now,
            settings: c
                .options
                .iter()
                .map(|choice| CompressionChoiceOut {
                    setting: choice.name.clone(),
                    stored_over_given: choice.ratio,
                    bytes_per_session: choice.bytes_per_session,
                    saved_bytes_per_master: r
                        .measured
                        .masters
                        .iter()
                        .map(|u| c.saved_on(choice, u.sessions).round())
                        .collect(),
                })
                .collect(),
        }),
        findings: r
            .findings
            .iter()
            .map(|(status, detail)| FindingOut {
                status: *status,
                detail,
            })
            .collect(),
    }
}
