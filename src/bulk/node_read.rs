//! Reading a few slots' sessions from the node that serves them, pipelined:
//! one write lists every slot (`CLUSTER GETKEYSINSLOT`), one write asks
//! for every value (`GET`, and `PTTL` when the TTL is wanted).
//!
//! Each slot's listing is followed by a GET of the slot's probe key
//! (`KeyBuilder::slot_probe_key`), a key no session has: the node answers
//! nil while it serves the slot and is not migrating it, `MOVED` when it no
//! longer serves it, `ASK` while it migrates it. So a listing is known to
//! be whole. A slot being migrated is listed on both nodes and its keys are
//! read where they are (`read_migrating`). A slot whose read is cut short
//! (a redirect, a lost connection) is dropped from the batch whole and read
//! again later: its sessions are handed on together, once.

use std::collections::HashSet;
use std::sync::Arc;

use crate::client::Client;
use crate::cluster::redirect::{send_asking, Redirect};
use crate::cluster::{Budget, ConnectionSet, Stopped, Watch};
use crate::config::NodeAddr;
use crate::connection::Exchange;
use crate::dictionaries;
use crate::dictionary::Dictionary;
use crate::envelope;
use crate::error::{Error, ErrorKind, ReplyClass, Result};
use crate::reply::{Appended, ServerError, Value};
use crate::resp::{pack_command, push_bulk, push_bulk_decimal, push_header};
use crate::retry::{self, Next};

use super::batch::Batch;
use super::plan::Work;

/// What a bulk read asks of each session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The ids alone (`ors_session_scan`).
    Ids,
    /// Ids and values (`ors_session_restore`).
    Values,
    /// Ids, values and remaining TTLs (the operator's export).
    ValuesAndTtl,
}

/// What became of one claim.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Slots read whole: their sessions are in the batch.
    pub done: Vec<u16>,
    /// Slots to read again, from whoever serves them then.
    pub again: Vec<u16>,
    /// Slots whose listing was full: to list again with a larger count
    /// (the count they were listed with).
    pub larger: Vec<(u16, u32)>,
    /// A node said MOVED: the slot map is stale.
    pub stale_map: bool,
    /// The node failed (no answer, a lost connection, a transient cluster
    /// state): it pauses before it is read again.
    pub node_error: Option<Error>,
    /// The read cannot go on (refused by ACL, a value too large, ...).
    pub fatal: Option<Error>,
    /// Slots listed (the counter of pages).
    pub listed: u64,
    /// The fatal error is the node refusing `CLUSTER GETKEYSINSLOT`.
    pub listing_refused: bool,
}

/// A slot's fate after a reply.
enum Verdict {
    Fine,
    /// Read the slot again; `stale` when the map is behind.
    Again {
        stale: bool,
        pause: Option<Error>,
    },
    Fatal(Error),
    /// The node refused the listing itself (an ACL without
    /// `cluster|getkeysinslot`, a service that disabled it): fatal too.
    Refused(Error),
}

/// The command that lists a slot's keys, as errors name it.
const LISTING: &str = "CLUSTER GETKEYSINSLOT";

/// The part of a read that stays the same from claim to claim.
pub(super) struct NodeReader<'a> {
    /// The live client when the worker last looked (see `bulk::work`).
    pub client: Arc<Client>,
    pub prefix: &'a [u8],
    pub want: Want,
    packed: Vec<u8>,
}

/// A slot's reply, or its verdict when it was an error.
type SlotReply<T> = std::result::Result<T, (u16, Verdict)>;

/// A slot's listing, and what its probe said: `None` (served here, not
/// migrating) or the node it is being migrated to.
type ListingReply = (SlotReply<Listed>, SlotReply<Option<NodeAddr>>);

/// One slot's listing, as read.
struct Listed {
    slot: u16,
    count: u32,
    keys: Vec<Vec<u8>>,
}

impl<'a> NodeReader<'a> {
    pub(super) fn new(client: Arc<Client>, prefix: &'a [u8], want: Want) -> Self {
        NodeReader {
            client,
            prefix,
            want,
            packed: Vec::new(),
        }
    }

    /// One exchange's budget: the reply timeout, never more than
    /// `op-timeout`, ended early when the read is stopped.
    fn budget<'s>(&self, stopped: &'s Stopped<'s>) -> Budget<'s> {
        let config = &self.client.config;
        Budget::of(config.socket_timeout.min(config.op_timeout)).watching(Watch::Stop(stopped))
    }

    /// Reads `work`'s slots from `work.node` into `batch`.
    pub(super) fn read(
        &mut self,
        conns: &mut ConnectionSet,
        work: &Work,
        batch: &mut Batch,
        stopped: &Stopped<'_>,
    ) -> Outcome {
        let node = &work.node;
        let client = self.client.clone();
        let params = &client.params;
        let mut out = Outcome::default();
        // Listing: GETKEYSINSLOT and the probe, for every slot.
        self.packed.clear();
        for &(slot, count) in &work.slots {
            pack_listing(&mut self.packed, slot, count);
            let probe = self.client.keys.slot_probe_key(slot);
            pack_command(&mut self.packed, &[b"GET", &probe]);
        }
        let budget = self.budget(stopped);
        let listed = match conns.exchange(node, params, &budget, |x| self.list(x, work)) {
            Ok(listed) => listed,
            Err(e) => {
                out.again.extend(work.slots.iter().map(|&(slot, _)| slot));
                out.node_error = Some(e);
                return out;
            }
        };
        out.listed = work.slots.len() as u64;
        let mut stable = Vec::new();
        let mut migrating = Vec::new();
        for (listing, probe) in listed {
            match (listing, probe) {
                (Err((slot, verdict)), _) | (Ok(_), Err((slot, verdict))) => {
                    out.again.push(slot);
                    self.judge_slot(&mut out, verdict);
                }
                (Ok(listed), Ok(None)) => stable.push(listed),
                (Ok(listed), Ok(Some(target))) => migrating.push((listed, target)),
            }
        }
        stable.retain(|l| self.whole_or_larger(&mut out, l));
        migrating.retain(|(l, _)| self.whole_or_larger(&mut out, l));
        if out.fatal.is_some() {
            return out;
        }
        if !stable.is_empty() {
            self.pack_values(&stable);
            let budget = self.budget(stopped);
            let read = conns.exchange(node, params, &budget, |x| {
                self.read_values(x, node, &stable, batch, &mut out)
            });
            if let Err(e) = read {
                out.node_error = Some(e);
                out.again.extend(migrating.iter().map(|(l, _)| l.slot));
                return out;
            }
        }
        for (listed, target) in migrating {
            if out.fatal.is_some() {
                break;
            }
            let mark = batch.mark();
            match self.read_migrating(conns, node, &target, &listed, batch, stopped) {
                Ok(Verdict::Fine) => out.done.push(listed.slot),
                Ok(verdict) => {
                    batch.cut(mark);
                    out.again.push(listed.slot);
                    self.judge_slot(&mut out, verdict);
                }
                Err(e) => {
                    batch.cut(mark);
                    out.again.push(listed.slot);
                    out.node_error = Some(e);
                }
            }
        }
        out
    }

    /// Sends the packed listing and reads, per slot, the listing and what
    /// the probe says: `None` (the node serves the slot, not migrating),
    /// `Some(target)` (migrating to target).
    fn list(&self, x: &mut Exchange<'_, '_>, work: &Work) -> Result<Vec<ListingReply>> {
        let node = &work.node;
        x.send(&self.packed)?;
        let mut replies = Vec::with_capacity(work.slots.len());
        for &(slot, count) in &work.slots {
            let listing = match x.receive()? {
                Value::Array(items) => Ok(Listed {
                    slot,
                    count,
                    keys: items
                        .into_iter()
                        .filter_map(|item| match item {
                            Value::BulkString(key) => Some(key),
                            _ => None,
                        })
                        .collect(),
                }),
                Value::ServerError(e) => Err((slot, verdict_of(&e, node, LISTING))),
                other => Err((
                    slot,
                    Verdict::Fatal(Error::new(
                        ErrorKind::Server,
                        format!("unexpected CLUSTER GETKEYSINSLOT reply from {node}: {other:?}"),
                    )),
                )),
            };
            let probe = match x.receive()? {
                Value::ServerError(e) => match Redirect::of(&e, node) {
                    Some(to) if to.ask => Ok(Some(to.addr)),
                    _ => Err((slot, verdict_of(&e, node, "GET"))),
                },
                _ => Ok(None),
            };
            replies.push((listing, probe));
        }
        Ok(replies)
    }

    /// Records what a slot read again says about the node and the map.
    fn judge_slot(&self, out: &mut Outcome, verdict: Verdict) {
        match verdict {
            Verdict::Fine => {}
            Verdict::Again { stale, pause } => {
                out.stale_map |= stale;
                if pause.is_some() {
                    out.node_error = pause;
                }
            }
            Verdict::Fatal(e) => {
                out.fatal.get_or_insert(e);
            }
            Verdict::Refused(e) => {
                out.listing_refused = true;
                out.fatal.get_or_insert(e);
            }
        }
    }

    /// Keeps a listing that is whole; a full one is listed again with a
    /// larger count.
    fn whole_or_larger(&self, out: &mut Outcome, listed: &Listed) -> bool {
        if out.again.contains(&listed.slot) {
            return false;
        }
        if listed.keys.len() as u64 >= listed.count as u64 {
            out.again.push(listed.slot);
            out.larger.push((listed.slot, listed.count));
            return false;
        }
        true
    }

    /// The session id of a listed key, if it is one of ours with the prefix.
    fn id_of<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        session_id_of(&self.client, self.prefix, key)
    }

    /// Packs the reads (`pack_reads`) of the stable slots' keys.
    fn pack_values(&mut self, stable: &[Listed]) {
        self.packed.clear();
        let (client, prefix, want) = (self.client.clone(), self.prefix, self.want);
        for listed in stable {
            for key in listed
                .keys
                .iter()
                .filter(|k| session_id_of(&client, prefix, k).is_some())
            {
                pack_reads(&mut self.packed, key, want);
            }
        }
    }

    /// Asks for the values (and TTLs) of the stable slots' keys, packed by
    /// `pack_values`, in one write and adds each slot read whole to the
    /// batch. An I/O error ends the read: slots read whole before it are
    /// done, the rest read again.
    fn read_values(
        &self,
        x: &mut Exchange<'_, '_>,
        node: &NodeAddr,
        stable: &[Listed],
        batch: &mut Batch,
        out: &mut Outcome,
    ) -> Result<()> {
        let want = self.want;
        if !self.packed.is_empty() {
            x.send(&self.packed)?;
        }
        for (i, listed) in stable.iter().enumerate() {
            let mark = batch.mark();
            let mut verdict = Verdict::Fine;
            for key in &listed.keys {
                let Some(id) = self.id_of(key) else { continue };
                let got = match read_session(x, batch, id, want, self.max_value(), &self.find()) {
                    Ok(got) => got,
                    Err(e) => {
                        batch.cut(mark);
                        out.again.extend(stable[i..].iter().map(|l| l.slot));
                        return Err(e);
                    }
                };
                if let Err(e) = got {
                    if matches!(verdict, Verdict::Fine) {
                        verdict = self.refused_verdict(e, id, node);
                    }
                }
            }
            if matches!(verdict, Verdict::Fine) {
                out.done.push(listed.slot);
            } else {
                batch.cut(mark);
                out.again.push(listed.slot);
                self.judge_slot(out, verdict);
            }
        }
        Ok(())
    }

    /// Where a value written with a compression dictionary finds it.
    fn find(&self) -> impl Fn(u32) -> Result<Arc<Dictionary>> + '_ {
        |id| dictionaries::find(&self.client, id)
    }

    /// The largest value the read takes (`max-value-bytes`), compressed
    /// values as they decompress.
    fn max_value(&self) -> usize {
        self.client.config.max_value_bytes
    }

    /// What a session that could not be read means for its slot: an error
    /// reply is judged by [`Self::value_verdict`]; a value that cannot be
    /// opened (a corrupt or oversized envelope) ends the read, naming the
    /// node and the session.
    fn refused_verdict(&self, refused: Refused, id: &[u8], node: &NodeAddr) -> Verdict {
        match refused {
            Refused::Reply(e) => self.value_verdict(&e, id),
            Refused::Value(e) => Verdict::Fatal(
                e.with_advice(&format!(" (session '{}')", String::from_utf8_lossy(id)))
                    .at_node(node),
            ),
        }
    }

    /// What an error reply to a session's GET or PTTL means for its slot.
    fn value_verdict(&self, e: &ServerError, id: &[u8]) -> Verdict {
        if e.code() == "WRONGTYPE" {
            // Not a session ORS wrote: said, and left out.
            tracing::warn!(
                session = %String::from_utf8_lossy(id),
                "restore: the key of this session id is not a string; skipped"
            );
            return Verdict::Fine;
        }
        if let Some(verdict) = read_again(e, None) {
            return verdict;
        }
        match e.class() {
            // The scan's EXISTS refused (an ACL rule made for SCAN paging,
            // without +exists): the scan pages with SCAN instead.
            ReplyClass::NoPerm if self.want == Want::Ids => Verdict::Refused(
                naming(e.to_error(), "EXISTS")
                    .with_advice(" (the ACL user needs +exists, see docs/security.md)"),
            ),
            _ => Verdict::Fatal(naming(e.to_error(), "GET")),
        }
    }

    /// A slot being migrated from `source` to `target`: its keys are listed
    /// on both (a key moves one way only, so together they hold every key
    /// the slot had when the source was listed), then each is read on the
    /// source, and those the source redirects are read on the target after
    /// `ASKING`. An I/O error is the read's error, naming the node.
    fn read_migrating(
        &mut self,
        conns: &mut ConnectionSet,
        source: &NodeAddr,
        target: &NodeAddr,
        listed: &Listed,
        batch: &mut Batch,
        stopped: &Stopped<'_>,
    ) -> Result<Verdict> {
        let client = self.client.clone();
        let params = &client.params;
        tracing::debug!(
            slot = listed.slot,
            node = %source,
            to = %target,
            "restore: slot being migrated, reading both nodes"
        );
        // The target's listing.
        self.packed.clear();
        pack_listing(&mut self.packed, listed.slot, listed.count);
        let budget = self.budget(stopped);
        let reply = conns.exchange(target, params, &budget, |x| {
            x.send(&self.packed)?;
            x.receive()
        })?;
        let target_keys = match reply {
            Value::Array(items) => items,
            Value::ServerError(e) => return Ok(verdict_of(&e, target, LISTING)),
            other => {
                return Ok(Verdict::Fatal(Error::new(
                    ErrorKind::Server,
                    format!("unexpected CLUSTER GETKEYSINSLOT reply from {target}: {other:?}"),
                )))
            }
        };
        if target_keys.len() as u64 >= listed.count as u64 {
            // Listed again with a larger count (the caller sees no special
            // case: the same slot on the same source, next time).
            return Ok(Verdict::Again {
                stale: false,
                pause: None,
            });
        }
        let mut seen = HashSet::new();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let target_keys = target_keys.into_iter().filter_map(|v| match v {
            Value::BulkString(k) => Some(k),
            _ => None,
        });
        for key in listed.keys.iter().cloned().chain(target_keys) {
            if self.id_of(&key).is_some() && seen.insert(key.clone()) {
                keys.push(key);
            }
        }
        // Every key on the source first; every reply is read before the
        // first error reply is judged.
        let want = self.want;
        self.packed.clear();
        for key in &keys {
            pack_reads(&mut self.packed, key, want);
        }
        let mut elsewhere: Vec<&[u8]> = Vec::new();
        let budget = self.budget(stopped);
        let verdict = conns.exchange(source, params, &budget, |x| {
            if !keys.is_empty() {
                x.send(&self.packed)?;
            }
            let mut verdict = Verdict::Fine;
            for key in &keys {
                let Some(id) = self.id_of(key) else { continue };
                match read_session(x, batch, id, want, self.max_value(), &self.find())? {
                    Ok(()) => {}
                    Err(Refused::Reply(e))
                        if matches!(e.class(), ReplyClass::Ask | ReplyClass::Moved) =>
                    {
                        elsewhere.push(key)
                    }
                    Err(e) => {
                        if matches!(verdict, Verdict::Fine) {
                            verdict = self.refused_verdict(e, id, source);
                        }
                    }
                }
            }
            Ok(verdict)
        })?;
        if !matches!(verdict, Verdict::Fine) {
            return Ok(verdict);
        }
        // Then those the source no longer holds, on the target.
        for key in elsewhere {
            let Some(id) = self.id_of(key) else { continue };
            let budget = self.budget(stopped);
            let verdict = conns.exchange(target, params, &budget, |x| {
                self.read_asking(x, target, key, id, batch)
            })?;
            if !matches!(verdict, Verdict::Fine) {
                return Ok(verdict);
            }
        }
        Ok(Verdict::Fine)
    }

    /// Reads one key on `target` that its slot's source no longer holds,
    /// each command behind an `ASKING`.
    fn read_asking(
        &self,
        x: &mut Exchange<'_, '_>,
        target: &NodeAddr,
        key: &[u8],
        id: &[u8],
        batch: &mut Batch,
    ) -> Result<Verdict> {
        let ask_for = |x: &mut Exchange<'_, '_>, command: &[&[u8]]| -> Result<()> {
            send_asking(x, |x, packed| x.send(packed), |x| x.receive())?;
            let mut packed = Vec::new();
            pack_command(&mut packed, command);
            x.send(&packed)
        };
        ask_for(x, &[b"GET", key])?;
        match x.receive_bulk_append(&mut batch.values)? {
            Appended::Data(n) => match batch.open_appended(n, self.max_value(), &self.find()) {
                Ok(len) => batch.push_appended(id, len, None),
                Err(e) => return Ok(self.refused_verdict(Refused::Value(e), id, target)),
            },
            Appended::Nil => return Ok(Verdict::Fine),
            Appended::Other(Value::ServerError(e)) => return Ok(self.value_verdict(&e, id)),
            Appended::Other(other) => {
                return Ok(Verdict::Fatal(unexpected_get_reply(target, &other)))
            }
        }
        if self.want == Want::ValuesAndTtl {
            ask_for(x, &[b"PTTL", key])?;
            match x.receive()? {
                Value::Int(-2) => batch.pop(),
                Value::Int(ms) => batch.set_last_pttl(ms),
                Value::ServerError(e) => return Ok(self.value_verdict(&e, id)),
                other => return Ok(Verdict::Fatal(unexpected_get_reply(target, &other))),
            }
        }
        Ok(Verdict::Fine)
    }
}

/// The session id of a listed key, if it is one of ours with the prefix.
fn session_id_of<'k>(client: &Client, prefix: &[u8], key: &'k [u8]) -> Option<&'k [u8]> {
    client
        .keys
        .session_id(key)
        .filter(|id| id.starts_with(prefix))
}

/// Packs `CLUSTER GETKEYSINSLOT slot count`.
fn pack_listing(packed: &mut Vec<u8>, slot: u16, count: u32) {
    push_header(packed, b'*', 4);
    push_bulk(packed, b"CLUSTER");
    push_bulk(packed, b"GETKEYSINSLOT");
    push_bulk_decimal(packed, slot.into());
    push_bulk_decimal(packed, count.into());
}

/// Packs what is asked of one listed key: `EXISTS` for its id alone (a
/// listing may still hold a key whose TTL ran out; EXISTS expires it),
/// else `GET`, and `PTTL` for the TTL.
fn pack_reads(packed: &mut Vec<u8>, key: &[u8], want: Want) {
    match want {
        Want::Ids => pack_command(packed, &[b"EXISTS", key]),
        Want::Values => pack_command(packed, &[b"GET", key]),
        Want::ValuesAndTtl => {
            pack_command(packed, &[b"GET", key]);
            pack_command(packed, &[b"PTTL", key]);
        }
    }
}

/// Why one session could not be read, the connection still in step.
enum Refused {
    /// An error reply to its GET or PTTL.
    Reply(ServerError),
    /// Its value could not be opened (`envelope`).
    Value(Error),
}

/// Reads the replies `pack_reads` asked for one session into the batch,
/// compressed values opened (at most `max` bytes). The outer error is an
/// I/O error (the connection is out of step); the inner one says why the
/// session was not read.
fn read_session(
    x: &mut Exchange<'_, '_>,
    batch: &mut Batch,
    id: &[u8],
    want: Want,
    max: usize,
    find: envelope::Find<'_>,
) -> Result<std::result::Result<(), Refused>> {
    if want == Want::Ids {
        return Ok(match x.receive()? {
            Value::Int(0) => Ok(()),
            Value::Int(_) => {
                batch.push_appended(id, 0, None);
                Ok(())
            }
            Value::ServerError(e) => Err(Refused::Reply(e)),
            other => Err(Refused::Reply(ServerError::new(format!(
                "ERR unexpected EXISTS reply {other:?}"
            )))),
        });
    }
    let with_ttl = want == Want::ValuesAndTtl;
    let before = batch.values.len();
    let got = match x.receive_bulk_append(&mut batch.values) {
        Ok(got) => got,
        Err(e) => {
            batch.values.truncate(before);
            return Err(match e.kind {
                ErrorKind::TooLarge => e.with_advice(&format!(
                    " (session '{}'; raise max-value-bytes to restore it)",
                    String::from_utf8_lossy(id)
                )),
                _ => e,
            });
        }
    };
    let mut failed = None;
    let pushed = match got {
        Appended::Data(n) => match batch.open_appended(n, max, find) {
            Ok(len) => {
                batch.push_appended(id, len, None);
                true
            }
            Err(e) => {
                failed = Some(Refused::Value(e));
                false
            }
        },
        Appended::Nil => false,
        Appended::Other(Value::ServerError(e)) => {
            failed = Some(Refused::Reply(e));
            false
        }
        Appended::Other(other) => {
            failed = Some(Refused::Reply(ServerError::new(format!(
                "ERR unexpected GET reply {other:?}"
            ))));
            false
        }
    };
    if with_ttl {
        match x.receive()? {
            // Gone between GET and PTTL: expired or deleted meanwhile.
            Value::Int(-2) if pushed => batch.pop(),
            Value::Int(ms) if pushed => batch.set_last_pttl(ms),
            Value::ServerError(e) if failed.is_none() => {
                if pushed {
                    batch.pop();
                }
                failed = Some(Refused::Reply(e));
            }
            _ => {}
        }
    }
    Ok(match failed {
        Some(e) => Err(e),
        None => Ok(()),
    })
}

fn unexpected_get_reply(node: &NodeAddr, reply: &Value) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("unexpected GET reply from {node}: {reply:?}"),
    )
}

/// What a redirect or a transient state means for a slot, by the one
/// verdict of retry.rs: read it again (MOVED: the map is stale; ASK: a
/// migration began; TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN: the node
/// pauses); `None` for any other error.
fn read_again(e: &ServerError, node: Option<&NodeAddr>) -> Option<Verdict> {
    Some(match retry::after_reply(e.class()) {
        Next::Redirect => Verdict::Again {
            stale: e.class() == ReplyClass::Moved,
            pause: None,
        },
        Next::Backoff | Next::Refresh | Next::NodeFailed => Verdict::Again {
            stale: false,
            pause: Some(match node {
                Some(node) => e.to_error().at_node(node),
                None => e.to_error(),
            }),
        },
        Next::GiveUp => return None,
    })
}

/// An error reply to a listing or a probe.
fn verdict_of(e: &ServerError, node: &NodeAddr, command: &str) -> Verdict {
    if let Some(verdict) = read_again(e, Some(node)) {
        return verdict;
    }
    if command == LISTING {
        return Verdict::Refused(naming(e.to_error(), command).at_node(node).with_advice(
            " (a restore lists each slot's keys: the ACL user needs \
                     +cluster|getkeysinslot, see docs/security.md)",
        ));
    }
    Verdict::Fatal(naming(e.to_error(), command).at_node(node))
}

/// `e`, saying which command it refused.
fn naming(mut e: Error, command: &str) -> Error {
    e.message = format!("{command} refused: {}", e.message);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands a bulk read sends, packed as redis-rs packs them.
    #[test]
    fn commands_are_packed_as_redis_rs_packs_them() {
        for (slot, count) in [(0u16, 1000u32), (9, 16_000), (16383, 1 << 24)] {
            let mut ours = Vec::new();
            pack_listing(&mut ours, slot, count);
            let theirs = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(count)
                .get_packed_command();
            assert_eq!(ours, theirs, "{slot} {count}");
        }
        let key: &[u8] = b"ORS:EU:{a b\r\n}";
        let mut theirs = redis::pipe();
        for (want, commands) in [
            (Want::Ids, &["EXISTS"][..]),
            (Want::Values, &["GET"][..]),
            (Want::ValuesAndTtl, &["GET", "PTTL"][..]),
        ] {
            let mut ours = Vec::new();
            pack_reads(&mut ours, key, want);
            theirs.clear();
            for command in commands {
                theirs.cmd(command).arg(key);
            }
            assert_eq!(ours, theirs.get_packed_pipeline(), "{want:?}");
        }
    }
}
