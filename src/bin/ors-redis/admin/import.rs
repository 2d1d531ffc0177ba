//! Writing sessions into the cluster in bulk, for `sessions import`: a
//! batch of entries goes out as `SET key value PX ttl NX` (no `NX` with
//! `--overwrite`), pipelined, one pipeline per master that serves them.
//! A nil reply is a session that was there already and is kept. MOVED and
//! ASK send an entry on to the node they name (after `ASKING` for ASK); a
//! master that does not answer, or a cluster down for the moment, is ridden
//! out within op-timeout with the slot map read again, as the library does.
//!
//! A batch resent after a connection broke mid-pipeline may find some of
//! its own sessions already written: without `--overwrite` they are then
//! counted as kept, not as imported (the data is the same either way).

use std::collections::HashMap;
use std::time::Instant;

use ors_redis::operator::{Error, ErrorKind, NodeAddr, Redirect, ReplyClass, Result, Value};

use super::sessions::MAX_REDIRECTS;
use super::{server_error, unexpected, Admin, RETRY_PAUSE};
use crate::stream::now_ms;

/// One session to write.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// When it expires, in milliseconds since the Unix epoch; `None`: no
    /// TTL (as the export found it). The TTL sent is what is left of it
    /// when the pipeline goes out.
    pub expires_at_ms: Option<u64>,
    pub slot: u16,
    /// The line of the stream it came from, for messages.
    pub line: u64,
}

/// What a batch came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub imported: u64,
    /// Their TTL ran out before they could be written.
    pub expired: u64,
    /// Without `--overwrite`: a session of that id was there already.
    pub kept_existing: u64,
    /// Refused by the server (an error reply other than a redirect or a
    /// passing cluster state: OOM, a wrong type...).
    pub failed: u64,
    pub first_failure: Option<String>,
}

/// Where an entry goes next.
#[derive(Debug, Clone)]
enum Route {
    /// To the master of its slot in the slot map.
    Slot,
    /// Where a redirect sent it; `asking` for ASK.
    To { node: NodeAddr, asking: bool },
}

impl Admin {
    /// Writes `entries`; an error is what stops the import (the ACL refuses
    /// SET, the cluster stays down past op-timeout, redirects go round).
    pub fn write_entries(&mut self, entries: Vec<Entry>, overwrite: bool) -> Result<Tally> {
        let deadline = Instant::now() + self.config.op_timeout;
        let mut tally = Tally::default();
        let mut pending: Vec<(Entry, Route)> =
            entries.into_iter().map(|e| (e, Route::Slot)).collect();
        let mut redirect_rounds = 0;
        while !pending.is_empty() {
            let mut next = Vec::new();
            // Why the round left entries to send again after a pause.
            let mut trouble: Option<Error> = None;
            let mut moved = false;
            for (node, mut group) in self.group(pending, &mut next, &mut trouble) {
                let now = now_ms();
                let before = group.len();
                group.retain(|(e, _)| e.expires_at_ms.is_none_or(|at| at > now));
                tally.expired += (before - group.len()) as u64;
                let ttls: Vec<String> = group
                    .iter()
                    .map(|(e, _)| {
                        e.expires_at_ms
                            .map(|at| (at - now).to_string())
                            .unwrap_or_default()
                    })
                    .collect();
                let mut commands: Vec<Vec<&[u8]>> = Vec::with_capacity(group.len());
                for ((e, asking), ttl) in group.iter().zip(&ttls) {
                    if *asking {
                        commands.push(vec![b"ASKING"]);
                    }
                    let mut set: Vec<&[u8]> = vec![b"SET", &e.key, &e.value];
                    if e.expires_at_ms.is_some() {
                        set.extend([&b"PX"[..], ttl.as_bytes()]);
                    }
                    if !overwrite {
                        set.push(b"NX");
                    }
                    commands.push(set);
                }
                let replies = match self.pipeline(&node, &commands) {
                    Ok(r) => r,
                    Err(e) if e.is_retryable() => {
                        trouble.get_or_insert(e);
                        next.extend(group.into_iter().map(|(e, _)| (e, Route::Slot)));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut replies = replies.into_iter();
                for (entry, asking) in group {
                    if asking {
                        if let Some(Value::ServerError(e)) = replies.next() {
                            return Err(server_error(&node, &e, &[b"ASKING"]));
                        }
                    }
                    match replies.next() {
                        Some(Value::Okay) => tally.imported += 1,
                        Some(Value::SimpleString(s)) if s == "OK" => tally.imported += 1,
                        Some(Value::Nil) => tally.kept_existing += 1,
                        Some(Value::ServerError(e)) => {
                            if let Some(to) = Redirect::of(&e, &node) {
                                moved |= !to.ask;
                                next.push((
                                    entry,
                                    Route::To {
                                        node: to.addr,
                                        asking: to.ask,
                                    },
                                ));
                            } else if e.class().is_transient() {
                                trouble.get_or_insert(e.to_error().at_node(&node));
                                next.push((entry, Route::Slot));
                            } else if matches!(e.class(), ReplyClass::NoPerm | ReplyClass::NoAuth) {
                                return Err(server_error(&node, &e, &[b"SET"]));
                            } else {
                                tally.failed += 1;
                                tally.first_failure.get_or_insert_with(|| {
                                    format!("line {}: node {node}: {}", entry.line, e.text())
                                });
                            }
                        }
                        _ => return Err(unexpected(&node, "SET")),
                    }
                }
            }
            pending = next;
            if pending.is_empty() {
                break;
            }
            match trouble {
                Some(e) => {
                    if Instant::now() + RETRY_PAUSE >= deadline {
                        return Err(e);
                    }
                    tracing::debug!(error = %e.message, left = pending.len(), "writing again after a pause");
                    std::thread::sleep(RETRY_PAUSE);
                    if let Err(e) = self.refresh() {
                        tracing::debug!(error = %e.message, "no slot map yet");
                    }
                }
                None => {
                    redirect_rounds += 1;
                    if redirect_rounds > MAX_REDIRECTS {
                        return Err(Error::new(
                            ErrorKind::Cluster,
                            format!(
                                "{} session(s) still redirected after {MAX_REDIRECTS} redirects \
                                 (is the cluster resharding?)",
                                pending.len()
                            ),
                        ));
                    }
                    if moved {
                        // MOVED: the map is out of date; ASK leaves it alone.
                        if let Err(e) = self.refresh() {
                            tracing::debug!(error = %e.message, "slot map not read again");
                        }
                    }
                }
            }
        }
        Ok(tally)
    }

    /// The entries by the node they go to, in the order first met. An entry
    /// whose slot no master serves goes to `unserved` with a reason.
    fn group(
        &self,
        pending: Vec<(Entry, Route)>,
        unserved: &mut Vec<(Entry, Route)>,
        trouble: &mut Option<Error>,
    ) -> Vec<(NodeAddr, Vec<(Entry, bool)>)> {
        let mut groups: Vec<(NodeAddr, Vec<(Entry, bool)>)> = Vec::new();
        let mut index: HashMap<NodeAddr, usize> = HashMap::new();
        for (entry, route) in pending {
            let (node, asking) = match route {
                Route::To { node, asking } => (node, asking),
                Route::Slot => match self.map.master_of(entry.slot) {
                    Some(m) => (m.addr.clone(), false),
                    None => {
                        trouble.get_or_insert_with(|| {
                            Error::new(
                                ErrorKind::Cluster,
                                format!(
                                    "slot {} is not served by any master (run ors-redis doctor)",
                                    entry.slot
                                ),
                            )
                        });
                        unserved.push((entry, Route::Slot));
                        continue;
                    }
                },
            };
            // An ASK entry has its ASKING right before it in the pipeline.
            let at = *index.entry(node.clone()).or_insert_with(|| {
                groups.push((node, Vec::new()));
                groups.len() - 1
            });
            groups[at].1.push((entry, asking));
        }
        groups
    }
}
