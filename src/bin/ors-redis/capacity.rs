//! `ors-redis capacity`: prints the rules, the measurement and the
//! projection of `ors_redis::admin::capacity`.

use ors_redis::admin::capacity::{self, Limit, Measured, Method, Plan, Projection, Recommendation};
use ors_redis::admin::{human_bytes, Admin, Status};

use crate::args::Parsed;
use crate::output::{Json, Table};
use crate::term::with_progress;
use crate::{failure, Ctx, EXIT_FAIL, EXIT_OK};

const DEFAULT_SAMPLE: u64 = 1000;
const MAX_SAMPLE: u64 = 1_000_000;

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

/// The plan and the sample size from the options (checked before the
/// config is loaded, so that a typo is named first).
pub fn options(a: &Parsed) -> Result<(Plan, u64), String> {
    let plan = Plan {
        ors_pairs: a.number("ors-pairs", 1, 1_000_000)?,
        sessions: a.number("sessions", 0, 1_000_000_000_000)?,
        avg_bytes: a.size("avg-bytes", 512 << 20)?,
        ors_memory: a.size("ors-memory", 1 << 50)?,
    };
    let sample = a.number("sample", 0, MAX_SAMPLE)?.unwrap_or(DEFAULT_SAMPLE);
    Ok((plan, sample))
}

pub fn run(ctx: &Ctx, plan: Plan, sample_limit: u64) -> i32 {
    let mut admin = match Admin::connect(ctx.config.clone()) {
        Ok(a) => a,
        Err(e) => return failure(&e),
    };
    let measured = with_progress("sampling", ctx.quiet, |progress| {
        capacity::measure(&mut admin, sample_limit, progress)
    });
    let measured = match measured {
        Ok(m) => m,
        Err(e) => return failure(&e),
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
        print!("{}", to_json(ctx, &report).render());
    } else {
        print!("{}", to_text(ctx, &report));
    }
    if report.worst() == Status::Fail {
        EXIT_FAIL
    } else {
        EXIT_OK
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
        Limit::HostMemory(n) => format!("host RAM {}", human_bytes(n)),
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

fn to_json(ctx: &Ctx, r: &Report) -> Json {
    let s = &r.measured.sample;
    let (method, method_note) = match &s.method {
        Method::MemoryUsage => ("memory-usage", None),
        Method::Estimate(why) => ("estimate", Some(why.clone())),
    };
    let projections = r
        .projections
        .iter()
        .map(|p| {
            let (kind, bytes) = match p.limit {
                Limit::Maxmemory(n) => ("maxmemory", Some(n)),
                Limit::HostMemory(n) => ("host-memory", Some(n)),
                Limit::Unknown => ("unknown", None),
            };
            Json::obj(vec![
                ("node", p.node.to_string().into()),
                ("sessions_now", p.sessions_now.into()),
                ("used_memory", p.used_now.into()),
                ("sessions_planned", p.sessions_planned.into()),
                ("projected_bytes", p.projected.into()),
                ("limit", kind.into()),
                ("limit_bytes", bytes.into()),
                ("percent", p.percent.into()),
                ("status", p.status.as_str().into()),
                ("note", p.note.as_str().into()),
            ])
        })
        .collect();
    let findings = r
        .findings
        .iter()
        .map(|(status, text)| {
            Json::obj(vec![
                ("status", status.as_str().into()),
                ("detail", text.as_str().into()),
            ])
        })
        .collect();
    Json::obj(vec![
        ("command", "capacity".into()),
        ("cluster_name", ctx.config.cluster_name.as_str().into()),
        ("masters_now", r.measured.masters.len().into()),
        (
            "plan",
            Json::obj(vec![
                ("ors_pairs", r.plan.ors_pairs.into()),
                ("sessions", r.plan.sessions.into()),
                ("avg_bytes", r.plan.avg_bytes.into()),
                ("ors_memory", r.plan.ors_memory.into()),
                ("sample", r.sample_limit.into()),
            ]),
        ),
        (
            "rules",
            Json::obj(vec![
                ("masters", r.rec.masters.into()),
                ("instances", r.rec.instances.into()),
                ("bytes_per_session", r.rec.bytes_per_session.into()),
                ("data_per_master", r.rec.data_per_master.into()),
                ("maxmemory_per_master", r.rec.maxmemory_per_master.into()),
            ]),
        ),
        (
            "measured",
            Json::obj(vec![
                ("sessions", r.measured.sessions.into()),
                ("sampled", s.sessions.into()),
                ("method", method.into()),
                ("method_note", method_note.into()),
                ("average_value_bytes", s.average_value().into()),
                ("average_key_bytes", s.average_key().into()),
                ("bytes_per_session", s.bytes_per_session().into()),
            ]),
        ),
        (
            "projection",
            Json::obj(vec![
                ("sessions", r.planned.into()),
                ("bytes_per_session", r.per_session.map(|(b, _)| b).into()),
                ("source", r.per_session.map(|(_, src)| src).into()),
                ("masters", Json::Arr(projections)),
            ]),
        ),
        ("findings", Json::Arr(findings)),
        ("result", r.worst().as_str().into()),
    ])
}
