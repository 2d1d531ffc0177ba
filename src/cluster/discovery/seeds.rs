//! The seed loop, for init and the operator command alike: every seed
//! asked at once for the slot map, the rule that picks a map (or ends the
//! search at a refusal no other seed would change), and the error when no
//! seed gives one.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ask::query_by;
use super::info::{check_is_cluster, read_info};
use crate::cluster::topology::SlotMap;
use crate::cluster::ConnectionSet;
use crate::config::NodeAddr;
use crate::connection::ConnectParams;
use crate::error::{Error, ErrorKind, ReplyClass, Result};
use crate::logging;

/// Init's slot map, and the seed that gave it: the first map a seed gives.
/// The seeds that gave none are logged; without a map, the error says why
/// (see `no_slot_map_error`).
pub(super) fn init_slot_map(
    seeds: &[NodeAddr],
    params: &ConnectParams,
) -> Result<(NodeAddr, SlotMap)> {
    let log_refusals = |refusals: &[(NodeAddr, Error)]| {
        for (seed, e) in refusals.iter().filter(|(_, e)| !is_decisive(e)) {
            tracing::warn!(node = %seed, error = %e, "seed node unusable");
        }
    };
    match find_slot_map(seeds, params, SeedChoice::FirstToAnswer) {
        Ok(found) => {
            log_refusals(&found.refusals);
            Ok((found.seed, found.map))
        }
        Err(refusals) => {
            log_refusals(&refusals);
            Err(no_slot_map_error(&refusals))
        }
    }
}

/// A seed's refusal that no other seed would change (wrong password, TLS,
/// not a cluster): it ends init's search at once, and it is the error
/// reported when no seed gives a map.
pub(super) fn is_decisive(e: &Error) -> bool {
    matches!(e.kind, ErrorKind::Auth | ErrorKind::Tls | ErrorKind::Config)
}

/// The error when no seed gave a slot map, from every seed's refusal (in
/// seed order), with one of the statuses the header lists for init: a
/// decisive refusal as it is; a seed's "no slots assigned" stays
/// `ORS_ERR_CLUSTER`; timeouts, lost connections and odd replies are
/// `ORS_ERR_CONNECTION`.
pub fn no_slot_map_error(refusals: &[(NodeAddr, Error)]) -> Error {
    if let Some((_, e)) = refusals.iter().find(|(_, e)| is_decisive(e)) {
        return e.clone();
    }
    if !refusals.is_empty() && refusals.iter().all(|(_, e)| e.kind == ErrorKind::Timeout) {
        return Error::new(
            ErrorKind::Connection,
            format!(
                "every seed node in redis-nodes timed out ({}): check that they are reachable \
                 from this host and redis-connect-timeout",
                refusals
                    .iter()
                    .map(|(seed, _)| seed.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let kind = if refusals.iter().any(|(_, e)| e.kind == ErrorKind::Cluster) {
        ErrorKind::Cluster
    } else {
        ErrorKind::Connection
    };
    let details: Vec<&str> = refusals.iter().map(|(_, e)| e.message.as_str()).collect();
    Error::new(
        kind,
        format!(
            "no seed node in redis-nodes could be used: {}",
            if details.is_empty() {
                "no seed nodes".to_string()
            } else {
                details.join("; ")
            }
        ),
    )
}

/// Which slot map the seed loop takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedChoice {
    /// The first map to come back, whichever seed it is from (init: the
    /// quickest start). A decisive refusal (`is_decisive`) ends the search.
    FirstToAnswer,
    /// The map of the first seed in the list that gives one, once every
    /// seed before it has refused (the operator command: a report that
    /// names the same seed on every run while the cluster is the same).
    FirstInOrder,
}

/// A slot map the seed loop found: which seed gave it, the map, and the
/// seeds that refused before the choice was made, with why (in seed order;
/// for `FirstInOrder`, exactly the seeds before `seed`).
pub struct SeedMap {
    /// The seed that gave the map.
    pub seed: NodeAddr,
    /// The map, read with `CLUSTER SLOTS`.
    pub map: SlotMap,
    /// The seeds that refused, each with its error.
    pub refusals: Vec<(NodeAddr, Error)>,
}

/// The seed loop, for init and the operator command alike: asks every node
/// of `seeds` at once, all within one `redis-connect-timeout` +
/// `redis-socket-timeout`, and takes a map as `choice` says. A seed still
/// connecting when the choice is made is left to finish on its own (within
/// that same deadline); nothing of its is used. Without a map: every seed's
/// refusal in seed order, a seed that did not answer in time as a timeout.
pub fn find_slot_map(
    seeds: &[NodeAddr],
    params: &ConnectParams,
    choice: SeedChoice,
) -> std::result::Result<SeedMap, Vec<(NodeAddr, Error)>> {
    let deadline = Instant::now() + params.connect_timeout + params.socket_timeout;
    let mut tally = Tally::new(choice, seeds.len());
    let (tx, rx) = mpsc::channel();
    for (index, seed) in seeds.iter().enumerate() {
        let (tx, seed, params) = (tx.clone(), seed.clone(), params.clone());
        let spawned = std::thread::Builder::new()
            .name("ors-redis-seed".into())
            .spawn(move || {
                let (result, lines) = logging::capture(|| read_slot_map(&seed, &params, deadline));
                let _ = tx.send((index, result, lines));
            });
        if let Err(e) = spawned {
            let e = Error::new(
                ErrorKind::Connection,
                format!("cannot start a thread to ask seed {}: {e}", seeds[index]),
            );
            tally.record(index, Err(e));
        }
    }
    drop(tx);
    while tally.verdict().is_none() {
        // Every seed's own deadline is `deadline`; the margin is for its
        // thread to report.
        let wait = deadline.saturating_duration_since(Instant::now()) + SEED_REPORT_MARGIN;
        let Ok((index, result, lines)) = rx.recv_timeout(wait) else {
            tally.give_up_waiting(seeds);
            break;
        };
        logging::requeue(lines);
        tally.record(index, result);
    }
    tally.into_outcome(seeds)
}

/// How long past its deadline a seed's thread may take to report.
const SEED_REPORT_MARGIN: Duration = Duration::from_millis(100);

/// The seeds' answers so far, and the choice they make: the seed loop's
/// rule, apart from its threads and clock.
struct Tally {
    choice: SeedChoice,
    answers: Vec<Option<Result<SlotMap>>>,
}

/// What the answers so far decide.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The map of the seed at this index.
    Map(usize),
    NoMap,
}

impl Tally {
    fn new(choice: SeedChoice, seeds: usize) -> Tally {
        Tally {
            choice,
            answers: (0..seeds).map(|_| None).collect(),
        }
    }

    fn record(&mut self, index: usize, answer: Result<SlotMap>) {
        if let Some(slot) = self.answers.get_mut(index) {
            *slot = Some(answer);
        }
    }

    /// Seeds that did not answer by the deadline count as timed out.
    fn give_up_waiting(&mut self, seeds: &[NodeAddr]) {
        for (seed, answer) in seeds.iter().zip(&mut self.answers) {
            if answer.is_none() {
                *answer = Some(Err(Error::new(
                    ErrorKind::Timeout,
                    format!("node {seed}: no answer in time"),
                )));
            }
        }
    }

    fn verdict(&self) -> Option<Verdict> {
        let is_map = |a: &Option<Result<SlotMap>>| matches!(a, Some(Ok(_)));
        match self.choice {
            SeedChoice::FirstToAnswer => {
                // Answers are recorded one at a time and judged after each,
                // so at most one map is ever in.
                if let Some(index) = self.answers.iter().position(is_map) {
                    return Some(Verdict::Map(index));
                }
                let decisive =
                    |a: &Option<Result<SlotMap>>| matches!(a, Some(Err(e)) if is_decisive(e));
                if self.answers.iter().any(decisive) {
                    return Some(Verdict::NoMap);
                }
            }
            SeedChoice::FirstInOrder => {
                for (index, answer) in self.answers.iter().enumerate() {
                    match answer {
                        None => return None,
                        Some(Ok(_)) => return Some(Verdict::Map(index)),
                        Some(Err(_)) => {}
                    }
                }
            }
        }
        self.answers
            .iter()
            .all(Option::is_some)
            .then_some(Verdict::NoMap)
    }

    fn into_outcome(
        self,
        seeds: &[NodeAddr],
    ) -> std::result::Result<SeedMap, Vec<(NodeAddr, Error)>> {
        let verdict = self.verdict();
        let chosen = match verdict {
            Some(Verdict::Map(index)) => Some(index),
            _ => None,
        };
        let considered = match (self.choice, chosen) {
            (SeedChoice::FirstInOrder, Some(index)) => index,
            _ => seeds.len(),
        };
        let mut map = None;
        let mut refusals = Vec::new();
        for (index, (seed, answer)) in seeds.iter().zip(self.answers).enumerate() {
            match answer {
                Some(Ok(m)) if Some(index) == chosen => map = Some((seed.clone(), m)),
                Some(Err(e)) if index < considered => refusals.push((seed.clone(), e)),
                _ => {}
            }
        }
        match map {
            Some((seed, map)) => Ok(SeedMap {
                seed,
                map,
                refusals,
            }),
            None => Err(refusals),
        }
    }
}

/// Reads the slot map from one seed before `deadline`, refusing a node that
/// is not a cluster node (standalone, Sentinel) with a config error.
pub(super) fn read_slot_map(
    seed: &NodeAddr,
    params: &ConnectParams,
    deadline: Instant,
) -> Result<SlotMap> {
    let mut conns = ConnectionSet::default();
    let info = read_info(&mut conns, seed, params, deadline);
    match info {
        Ok(fields) => check_is_cluster(seed, &fields)?,
        // A least-privilege ACL user may not run INFO; CLUSTER SLOTS tells too.
        Err(e) if e.is_reply(ReplyClass::NoPerm) => {}
        Err(e) => return Err(e),
    }
    let reply = query_by(&mut conns, seed, params, deadline, &[b"CLUSTER", b"SLOTS"]).map_err(|e| {
        if e.is_reply(ReplyClass::ClusterDisabled) {
            Error::config(format!(
                "node {seed} is a standalone Redis (cluster support disabled); ORS persistence needs a Redis Cluster"
            ))
        } else {
            e
        }
    })?;
    let map = SlotMap::parse(&reply, seed)?;
    if map.masters.is_empty() {
        return Err(Error::new(
            ErrorKind::Cluster,
            format!("node {seed} reports no slots assigned: the cluster is not set up yet"),
        ));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Value;

    fn seeds(n: usize) -> Vec<NodeAddr> {
        (1..=n)
            .map(|i| NodeAddr::parse(&format!("10.0.0.{i}:7000")).unwrap())
            .collect()
    }

    fn refusal(kind: ErrorKind) -> Result<SlotMap> {
        Err(Error::new(kind, format!("{kind:?}")))
    }

    /// A one-master map whose seed is `seed` (its only master's address).
    fn map_from(seed: &NodeAddr) -> Result<SlotMap> {
        let reply = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(16383),
            Value::Array(vec![
                Value::BulkString(seed.host.as_bytes().to_vec()),
                Value::Int(i64::from(seed.port)),
            ]),
        ])]);
        SlotMap::parse(&reply, seed)
    }

    fn refused_seeds(r: &[(NodeAddr, Error)]) -> Vec<String> {
        r.iter().map(|(s, _)| s.to_string()).collect()
    }

    #[test]
    fn first_to_answer_takes_the_first_map_in_whichever_seed_it_is() {
        let s = seeds(3);
        let mut tally = Tally::new(SeedChoice::FirstToAnswer, 3);
        tally.record(0, refusal(ErrorKind::Connection));
        assert_eq!(tally.verdict(), None);
        tally.record(2, map_from(&s[2]));
        assert_eq!(tally.verdict(), Some(Verdict::Map(2)));
        let found = tally.into_outcome(&s).ok().unwrap();
        assert_eq!(found.seed, s[2]);
        assert_eq!(found.map.masters[0].addr.to_string(), "10.0.0.3:7000");
        assert_eq!(refused_seeds(&found.refusals), ["10.0.0.1:7000"]);
    }

    #[test]
    fn first_to_answer_ends_at_a_decisive_refusal() {
        for kind in [ErrorKind::Auth, ErrorKind::Tls, ErrorKind::Config] {
            let mut tally = Tally::new(SeedChoice::FirstToAnswer, 3);
            tally.record(1, refusal(kind));
            assert_eq!(tally.verdict(), Some(Verdict::NoMap), "{kind:?}");
            let refusals = tally.into_outcome(&seeds(3)).err().unwrap();
            assert_eq!(no_slot_map_error(&refusals).kind, kind);
        }
        let mut tally = Tally::new(SeedChoice::FirstToAnswer, 2);
        tally.record(0, refusal(ErrorKind::Timeout));
        assert_eq!(tally.verdict(), None, "a timeout is no reason to stop");
    }

    #[test]
    fn first_in_order_waits_for_every_seed_before_the_map() {
        let s = seeds(4);
        let mut tally = Tally::new(SeedChoice::FirstInOrder, 4);
        tally.record(2, map_from(&s[2]));
        tally.record(3, refusal(ErrorKind::Connection));
        assert_eq!(tally.verdict(), None, "seeds 1 and 2 may still answer");
        tally.record(1, map_from(&s[1]));
        assert_eq!(tally.verdict(), None);
        tally.record(0, refusal(ErrorKind::Auth));
        assert_eq!(
            tally.verdict(),
            Some(Verdict::Map(1)),
            "not stopped by Auth"
        );
        let found = tally.into_outcome(&s).ok().unwrap();
        assert_eq!(found.seed, s[1]);
        assert_eq!(
            refused_seeds(&found.refusals),
            ["10.0.0.1:7000"],
            "only the seeds before the chosen one"
        );
    }

    #[test]
    fn seeds_silent_at_the_deadline_are_timeouts() {
        let s = seeds(3);
        let mut tally = Tally::new(SeedChoice::FirstInOrder, 3);
        tally.record(1, map_from(&s[1]));
        tally.give_up_waiting(&s);
        let found = tally.into_outcome(&s).ok().unwrap();
        assert_eq!(found.seed, s[1]);
        assert_eq!(found.refusals[0].1.kind, ErrorKind::Timeout);

        let mut tally = Tally::new(SeedChoice::FirstToAnswer, 3);
        tally.record(2, refusal(ErrorKind::Connection));
        tally.give_up_waiting(&s);
        assert_eq!(tally.verdict(), Some(Verdict::NoMap));
        let refusals = tally.into_outcome(&s).err().unwrap();
        assert_eq!(
            refused_seeds(&refusals),
            ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]
        );
        assert_eq!(refusals[0].1.kind, ErrorKind::Timeout);
        assert!(refusals[0].1.message.contains("no answer in time"));
    }

    #[test]
    fn no_seeds_no_map() {
        for choice in [SeedChoice::FirstToAnswer, SeedChoice::FirstInOrder] {
            let tally = Tally::new(choice, 0);
            assert_eq!(tally.verdict(), Some(Verdict::NoMap));
            let e = no_slot_map_error(&tally.into_outcome(&[]).err().unwrap());
            assert!(e.message.contains("no seed nodes"), "{}", e.message);
        }
    }

    #[test]
    fn without_a_map_init_returns_a_status_the_header_lists_for_init() {
        let s = seeds(2);
        let timeout = || Error::new(ErrorKind::Timeout, "connect timed out");
        let e = no_slot_map_error(&[(s[0].clone(), timeout()), (s[1].clone(), timeout())]);
        assert_eq!(e.kind, ErrorKind::Connection);
        assert!(e.message.contains("every seed node"), "{}", e.message);
        for (other, want) in [
            (ErrorKind::Server, ErrorKind::Connection),
            (ErrorKind::Connection, ErrorKind::Connection),
            (ErrorKind::Internal, ErrorKind::Connection),
            (ErrorKind::Cluster, ErrorKind::Cluster),
            (ErrorKind::Auth, ErrorKind::Auth),
        ] {
            let e = no_slot_map_error(&[
                (s[0].clone(), timeout()),
                (s[1].clone(), Error::new(other, "x")),
            ]);
            assert_eq!(e.kind, want, "{other:?}");
        }
        let e = no_slot_map_error(&[
            (s[0].clone(), Error::new(ErrorKind::Connection, "refused")),
            (s[1].clone(), Error::new(ErrorKind::Tls, "bad certificate")),
        ]);
        assert_eq!(
            e.message, "bad certificate",
            "the decisive refusal, as it is"
        );
    }
}
