//! `ors-redis capacity`: the sizing rules ORS documents turned into numbers,
//! and a projection from sessions measured on the live cluster.
//!
//! ORS's rules: at least 3 Redis nodes (masters), about 3 of them per 9 ORS
//! HA pairs, each with memory similar to an ORS application node's. The
//! measurement samples real session keys of the cluster name (`SCAN`) and
//! asks `MEMORY USAGE` (Redis 4.0+) what each costs; where the server has no
//! `MEMORY USAGE` (or refuses it) the cost is estimated from `STRLEN` and the
//! key's length with the allocator's size classes.

use super::compression::{self, CompressionSample};
use super::memory::estimate_session_bytes;
use ors_redis::operator::recommend::{
    self, HOST_WARN_PERCENT, MEMORY_HEADROOM, PROJECTION_WARN_PERCENT,
};

use ors_redis::operator::{ClusterName, Error, KeyBuilder, NodeAddr, ReplyClass, Result, Value};

use crate::cluster::Cluster;
use crate::output::{human_bytes, Status};
use crate::progress::ProgressFn;

const MIN_MASTERS: u64 = recommend::MIN_MASTERS as u64;
/// What a session costs beyond `MEMORY USAGE` (which counts key, value and
/// the main table's entry): the TTL's entry in the expires table and the
/// bucket slots of both tables. Measured on Redis 7.0 with 20 000 keys of
/// 10 B to 20 KB: `used_memory` grew by `MEMORY USAGE` + 66 to 76 bytes a key.
const TTL_AND_TABLE_BYTES: u64 = 72;
/// Keys measured per pipeline.
const SAMPLE_BATCH: usize = 100;

/// The length of a session key with a typical ORS session id (32
/// characters), for estimates before any session exists.
pub(super) fn typical_key_len(cluster: &ClusterName) -> u64 {
    KeyBuilder::new(cluster).key_len(32) as u64
}

/// How the sampled sessions were measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Method {
    /// `MEMORY USAGE key SAMPLES 0`, plus the TTL entry and table slots.
    MemoryUsage,
    /// `STRLEN` and the key length, through [`estimate_session_bytes`];
    /// the reason why `MEMORY USAGE` was not used.
    Estimate(String),
}

/// The sessions sampled and what they cost.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub method: Method,
    pub sessions: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
    pub memory_bytes: u64,
}

impl Sample {
    fn average(&self, total: u64) -> Option<f64> {
        (self.sessions > 0).then(|| total as f64 / self.sessions as f64)
    }

    /// Bytes one session costs in Redis, on average.
    pub(super) fn bytes_per_session(&self) -> Option<f64> {
        self.average(self.memory_bytes)
    }

    pub(super) fn average_value(&self) -> Option<f64> {
        self.average(self.value_bytes)
    }

    pub(super) fn average_key(&self) -> Option<f64> {
        self.average(self.key_bytes)
    }
}

/// One master's sessions and memory now.
#[derive(Debug, Clone)]
pub(super) struct MasterUsage {
    pub node: NodeAddr,
    pub sessions: u64,
    pub used_memory: u64,
    /// 0: no limit.
    pub maxmemory: u64,
    /// The host's RAM as the server sees it (0: unknown).
    pub system_memory: u64,
    /// Redis nodes of this cluster on the master's host (itself included),
    /// which share that RAM.
    pub nodes_on_host: u64,
}

/// What was measured on the cluster.
#[derive(Debug, Clone)]
pub(super) struct Measured {
    pub sample: Sample,
    /// What compression would save on the sample (none without a sample).
    pub compression: Option<CompressionSample>,
    pub masters: Vec<MasterUsage>,
    pub sessions: u64,
}

/// One per measured key: key length, value length, `MEMORY USAGE` if known.
struct KeyCost {
    key_len: u64,
    value_len: u64,
    usage: Option<u64>,
}

/// Counts the sessions of this cluster name on every master, measures up to
/// `sample_limit` of them (evenly strided over the sorted ids, so spread over
/// every master and every ORS node's ids), and reads each master's memory
/// figures.
pub(super) fn measure(
    admin: &mut Cluster,
    sample_limit: u64,
    progress: &mut ProgressFn<'_>,
) -> Result<Measured> {
    let listing = admin.list_sessions(b"", progress)?;
    let total = listing.ids.len() as u64;
    let picks = sample_limit.min(total);
    let to_sample =
        listing.strided_sample(sample_limit, &KeyBuilder::new(&admin.config().cluster_name));
    let masters = listing.masters;
    let sessions_per_master = listing.per_master;

    let mut costs = Vec::new();
    let mut no_memory_usage: Option<String> = None;
    for (node, keys) in masters.iter().zip(&to_sample) {
        for batch in keys.chunks(SAMPLE_BATCH) {
            measure_batch(admin, node, batch, &mut no_memory_usage, &mut costs)?;
        }
    }
    let sample = summarize(&costs, no_memory_usage);
    let compression = if picks > 0 {
        Some(compression::measure(admin, &masters, &to_sample)?)
    } else {
        None
    };

    let hosts = node_hosts(admin);
    let mut usage = Vec::with_capacity(masters.len());
    for (node, sessions) in masters.into_iter().zip(sessions_per_master) {
        let nodes_on_host = hosts.iter().filter(|h| **h == node.host).count().max(1) as u64;
        let info = admin.info(&node, Some("memory"))?;
        let field = |name: &str| info.get(name).and_then(|v| v.parse::<u64>().ok());
        usage.push(MasterUsage {
            sessions,
            used_memory: field("used_memory").unwrap_or(0),
            maxmemory: field("maxmemory").unwrap_or(0),
            system_memory: field("total_system_memory").unwrap_or(0),
            nodes_on_host,
            node,
        });
    }
    Ok(Measured {
        sample,
        compression,
        sessions: total,
        masters: usage,
    })
}

/// The host of every node of the cluster, from CLUSTER NODES (which lists
/// every node), else from the slot map.
fn node_hosts(admin: &mut Cluster) -> Vec<String> {
    let seed = admin.seed.clone();
    match admin.cluster_nodes(&seed) {
        Ok(nodes) => nodes
            .iter()
            .filter(|n| !n.is_failed())
            .filter_map(|n| n.addr.as_ref().map(|a| a.host.clone()))
            .collect(),
        Err(_) => admin
            .map()
            .masters
            .iter()
            .flat_map(|m| std::iter::once(&m.addr).chain(m.replicas.iter()))
            .map(|n| n.host.clone())
            .collect(),
    }
}

/// `MEMORY USAGE` and `STRLEN` of a batch of keys in one pipeline (only
/// `STRLEN` once a server refused `MEMORY USAGE`).
fn measure_batch(
    admin: &mut Cluster,
    node: &NodeAddr,
    keys: &[Vec<u8>],
    no_memory_usage: &mut Option<String>,
    costs: &mut Vec<KeyCost>,
) -> Result<()> {
    let with_usage = no_memory_usage.is_none();
    let mut commands: Vec<Vec<&[u8]>> = Vec::with_capacity(keys.len() * 2);
    for key in keys {
        commands.push(vec![b"STRLEN", key]);
        if with_usage {
            commands.push(vec![b"MEMORY", b"USAGE", key, b"SAMPLES", b"0"]);
        }
    }
    let replies = admin.pipeline(node, &commands)?;
    let per_key = if with_usage { 2 } else { 1 };
    for (key, replies) in keys.iter().zip(replies.chunks(per_key)) {
        let usage = match replies.get(1) {
            Some(Value::Int(n)) if *n > 0 => Some(*n as u64),
            // Expired or deleted since the scan.
            Some(Value::Nil) => continue,
            Some(Value::ServerError(e)) if no_memory_usage.is_none() => {
                let e = e
                    .to_error_for(&[b"MEMORY", b"USAGE"])
                    .at_node(&node.to_string());
                *no_memory_usage = Some(format!("MEMORY USAGE refused: {}", e.message));
                None
            }
            _ => None,
        };
        let value_len = match replies.first() {
            Some(&Value::Int(n)) => n,
            // Without STRLEN either, there is nothing to measure with.
            Some(Value::ServerError(e)) if e.class() == ReplyClass::NoPerm => {
                let e = e.to_error_for(&[b"STRLEN"]).at_node(&node.to_string());
                let memory_usage = no_memory_usage
                    .clone()
                    .unwrap_or_else(|| "MEMORY USAGE not tried".to_string());
                return Err(Error::new(
                    e.kind,
                    format!(
                        "{memory_usage}; and STRLEN too ({}): the sessions cannot be measured; \
                         give the operator's ACL rule (docs/operators.md) or --sample 0",
                        e.message
                    ),
                ));
            }
            // The key is not a string (not a session): skip it.
            _ => continue,
        };
        costs.push(KeyCost {
            key_len: key.len() as u64,
            value_len: value_len.max(0) as u64,
            usage,
        });
    }
    Ok(())
}

/// One method for the whole sample: `MEMORY USAGE` only if every key has it.
fn summarize(costs: &[KeyCost], no_memory_usage: Option<String>) -> Sample {
    let method = match no_memory_usage {
        Some(why) => Method::Estimate(why),
        None if costs.iter().any(|c| c.usage.is_none()) => {
            Method::Estimate("MEMORY USAGE gave no figure for some keys".to_string())
        }
        None => Method::MemoryUsage,
    };
    let memory_bytes = costs
        .iter()
        .map(|c| match (&method, c.usage) {
            (Method::MemoryUsage, Some(usage)) => usage + TTL_AND_TABLE_BYTES,
            _ => estimate_session_bytes(c.key_len, c.value_len),
        })
        .sum();
    Sample {
        method,
        sessions: costs.len() as u64,
        key_bytes: costs.iter().map(|c| c.key_len).sum(),
        value_bytes: costs.iter().map(|c| c.value_len).sum(),
        memory_bytes,
    }
}

/// The operator's plan (command-line options).
#[derive(Debug, Clone, Default)]
pub(super) struct Plan {
    pub ors_pairs: Option<u64>,
    pub sessions: Option<u64>,
    pub avg_bytes: Option<u64>,
    pub ors_memory: Option<u64>,
}

/// ORS's rules applied to the plan.
#[derive(Debug, Clone)]
pub(super) struct Recommendation {
    pub masters: u64,
    /// Masters plus one replica each.
    pub instances: u64,
    /// `--avg-bytes` plus Redis's overhead, estimated.
    pub bytes_per_session: Option<u64>,
    /// Planned sessions × bytes per session / masters.
    pub data_per_master: Option<u64>,
    /// `data_per_master` with headroom.
    pub maxmemory_per_master: Option<u64>,
}

/// `key_len`: the session keys' length (measured, or a typical one).
pub(super) fn recommend(plan: &Plan, masters_now: usize, key_len: u64) -> Recommendation {
    let masters = match plan.ors_pairs {
        Some(pairs) => recommend::masters_for(pairs),
        None => MIN_MASTERS.max(masters_now as u64),
    };
    let bytes_per_session = plan
        .avg_bytes
        .map(|avg| estimate_session_bytes(key_len, avg));
    let data_per_master = match (plan.sessions, bytes_per_session) {
        (Some(sessions), Some(bytes)) => {
            Some(sessions.saturating_mul(bytes).div_ceil(masters.max(1)))
        }
        _ => None,
    };
    Recommendation {
        masters,
        instances: masters * 2,
        bytes_per_session,
        data_per_master,
        maxmemory_per_master: data_per_master.map(|d| (d as f64 * MEMORY_HEADROOM).ceil() as u64),
    }
}

/// What a master's memory is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    Maxmemory(u64),
    /// No maxmemory: the host's RAM divided by the cluster's Redis nodes on
    /// that host, which share it.
    HostShare {
        ram: u64,
        nodes: u64,
    },
    Unknown,
}

impl Limit {
    /// The budget in bytes.
    pub(super) fn bytes(self) -> Option<u64> {
        match self {
            Limit::Maxmemory(n) => Some(n),
            Limit::HostShare { ram, nodes } => Some(ram / nodes.max(1)),
            Limit::Unknown => None,
        }
    }
}

/// One master's memory once it holds its share of the planned sessions.
#[derive(Debug, Clone)]
pub(super) struct Projection {
    pub node: NodeAddr,
    pub sessions_now: u64,
    pub sessions_planned: u64,
    pub used_now: u64,
    pub projected: u64,
    pub limit: Limit,
    pub percent: Option<f64>,
    pub status: Status,
    pub note: String,
}

/// Spreads `planned` sessions evenly over the masters (the hash tag is the
/// session id) at `per_session` bytes each, on top of what each master
/// holds besides its current sessions.
pub(super) fn project(masters: &[MasterUsage], per_session: f64, planned: u64) -> Vec<Projection> {
    let n = masters.len() as u64;
    masters
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let share = planned
                .checked_div(n)
                .map_or(0, |q| q + u64::from((i as u64) < planned % n));
            let current = m.sessions as f64 * per_session;
            let baseline = (m.used_memory as f64 - current).max(0.0);
            let projected = (baseline + share as f64 * per_session).round() as u64;
            let limit = if m.maxmemory > 0 {
                Limit::Maxmemory(m.maxmemory)
            } else if m.system_memory > 0 {
                Limit::HostShare {
                    ram: m.system_memory,
                    nodes: m.nodes_on_host,
                }
            } else {
                Limit::Unknown
            };
            let (percent, status, note) = match limit {
                Limit::Maxmemory(max) => {
                    let p = projected as f64 * 100.0 / max as f64;
                    let (status, note) = if p >= 100.0 {
                        (
                            Status::Fail,
                            "above maxmemory: with noeviction, writes would fail",
                        )
                    } else if p >= PROJECTION_WARN_PERCENT {
                        (Status::Warn, "little headroom under maxmemory")
                    } else {
                        (Status::Pass, "fits under maxmemory")
                    };
                    (Some(p), status, note)
                }
                Limit::HostShare { ram, nodes } => {
                    let share = (ram / nodes.max(1)).max(1);
                    let p = projected as f64 * 100.0 / share as f64;
                    let (status, note) = if p >= 100.0 {
                        (Status::Fail, "no maxmemory, and above its share of the host's RAM")
                    } else if p >= HOST_WARN_PERCENT {
                        (
                            Status::Warn,
                            "no maxmemory; over half its share of the host's RAM (an AOF rewrite fork may need as much again)",
                        )
                    } else {
                        (Status::Pass, "no maxmemory set; compared with its share of the host's RAM")
                    };
                    (Some(p), status, note)
                }
                Limit::Unknown => (None, Status::Warn, "no maxmemory and host RAM unknown"),
            };
            Projection {
                node: m.node.clone(),
                sessions_now: m.sessions,
                sessions_planned: share,
                used_now: m.used_memory,
                projected,
                limit,
                percent,
                status,
                note: note.to_string(),
            }
        })
        .collect()
}

/// What the operator should act on, beyond the per-master projection.
pub(super) fn findings(
    plan: &Plan,
    rec: &Recommendation,
    masters: &[MasterUsage],
) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    let now = masters.len() as u64;
    if now < MIN_MASTERS {
        out.push((
            Status::Fail,
            format!("{now} master(s); ORS needs at least {MIN_MASTERS}"),
        ));
    } else if now < rec.masters {
        out.push((
            Status::Warn,
            format!(
                "{now} masters now; {} ORS HA pairs call for {} (about 3 per 9 pairs)",
                plan.ors_pairs.unwrap_or(0),
                rec.masters
            ),
        ));
    } else if plan.ors_pairs.is_some() {
        out.push((
            Status::Pass,
            format!(
                "{now} masters, enough for the {} ORS HA pairs",
                plan.ors_pairs.unwrap_or(0)
            ),
        ));
    }
    if let (Some(ors), Some(need)) = (plan.ors_memory, rec.maxmemory_per_master) {
        if need > ors {
            out.push((
                Status::Warn,
                format!(
                    "the planned sessions need {} per master (with headroom), more than an ORS node's {}: plan more masters",
                    human_bytes(need),
                    human_bytes(ors)
                ),
            ));
        }
    }
    if let Some(ors) = plan.ors_memory {
        let small: Vec<String> = masters
            .iter()
            .filter(|m| m.system_memory > 0 && m.system_memory < ors)
            .map(|m| m.node.to_string())
            .collect();
        if !small.is_empty() {
            out.push((
                Status::Warn,
                format!(
                    "the host of {} has less RAM than an ORS node ({}); ORS recommends similar memory",
                    small.join(", "),
                    human_bytes(ors)
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ors_rule_for_masters() {
        assert_eq!(recommend::masters_for(0), 3);
        assert_eq!(recommend::masters_for(1), 3);
        assert_eq!(recommend::masters_for(9), 3);
        assert_eq!(recommend::masters_for(10), 4);
        assert_eq!(recommend::masters_for(12), 4);
        assert_eq!(recommend::masters_for(27), 9);
    }

    /// The estimate against `used_memory` growth per key measured on Redis
    /// 7.0.15 (20 000 keys with a TTL, 27-32 byte keys).
    #[test]
    fn the_estimate_is_close_to_measured_memory() {
        for (key_len, value_len, measured) in [
            (29u64, 10u64, 180u64),
            (30, 100, 272),
            (31, 1000, 1200),
            (31, 4000, 4272),
            (32, 20000, 20650),
        ] {
            let estimate = estimate_session_bytes(key_len, value_len) as f64;
            let error = (estimate - measured as f64).abs() / measured as f64;
            assert!(error < 0.05, "{value_len}: {estimate} vs {measured}");
        }
    }

    #[test]
    fn samples_use_one_method() {
        let costs = [
            KeyCost {
                key_len: 31,
                value_len: 1000,
                usage: Some(1128),
            },
            KeyCost {
                key_len: 31,
                value_len: 1000,
                usage: Some(1128),
            },
        ];
        let s = summarize(&costs, None);
        assert_eq!(s.method, Method::MemoryUsage);
        assert_eq!(s.bytes_per_session(), Some(1200.0));
        assert_eq!(s.average_value(), Some(1000.0));
        let s = summarize(&costs, Some("refused".into()));
        assert!(matches!(s.method, Method::Estimate(_)));
        assert_eq!(s.bytes_per_session(), Some(1192.0));
        assert_eq!(summarize(&[], None).bytes_per_session(), None);
    }

    fn master(port: u16, sessions: u64, used: u64, max: u64) -> MasterUsage {
        MasterUsage {
            node: NodeAddr {
                host: "10.0.0.1".into(),
                port,
            },
            sessions,
            used_memory: used,
            maxmemory: max,
            system_memory: 64 << 30,
            nodes_on_host: 6,
        }
    }

    #[test]
    fn projection_spreads_sessions_and_compares_with_the_limit() {
        let masters = [
            master(7000, 100, 1_100_000, 10_000_000),
            master(7001, 100, 1_100_000, 0),
            master(7002, 100, 1_100_000, 2_000_000),
        ];
        // 1000 B a session; 1 000 000 B of each master is not sessions.
        let p = project(&masters, 1000.0, 10_000);
        assert_eq!(
            p.iter().map(|p| p.sessions_planned).collect::<Vec<_>>(),
            [3334, 3333, 3333]
        );
        assert_eq!(p[0].projected, 1_000_000 + 3_334_000);
        assert_eq!(p[0].status, Status::Pass);
        // Six nodes share the host: each gets a sixth of its RAM.
        assert_eq!(
            p[1].limit,
            Limit::HostShare {
                ram: 64 << 30,
                nodes: 6
            }
        );
        assert_eq!(p[1].limit.bytes(), Some((64 << 30) / 6));
        assert_eq!(p[1].status, Status::Pass);
        let big = [master(7001, 0, 6 << 30, 0)];
        assert_eq!(
            project(&big, 1000.0, 0)[0].status,
            Status::Warn,
            "6 GiB of a 10.7 GiB share"
        );
        assert_eq!(p[2].status, Status::Fail);
        let p = project(&masters, 1000.0, 21_000);
        assert_eq!(p[0].status, Status::Warn);
    }

    #[test]
    fn recommendations_and_findings() {
        let plan = Plan {
            ors_pairs: Some(12),
            sessions: Some(100_000),
            avg_bytes: Some(4000),
            ors_memory: Some(100 << 20),
        };
        let rec = recommend(&plan, 3, 31);
        assert_eq!(rec.masters, 4);
        assert_eq!(rec.instances, 8);
        assert_eq!(rec.bytes_per_session, Some(4264));
        assert_eq!(rec.data_per_master, Some(106_600_000));
        let masters = [
            master(7000, 0, 0, 0),
            master(7001, 0, 0, 0),
            master(7002, 0, 0, 0),
        ];
        let f = findings(&plan, &rec, &masters);
        assert!(f
            .iter()
            .any(|(s, t)| *s == Status::Warn && t.contains("call for 4")));
        assert!(f
            .iter()
            .any(|(s, t)| *s == Status::Warn && t.contains("plan more masters")));
        let few = findings(
            &Plan::default(),
            &recommend(&Plan::default(), 2, 31),
            &masters[..2],
        );
        assert_eq!(few[0].0, Status::Fail);
    }
}
