//! `ors-redis sessions import`: a session stream (`stream.rs`) back into a
//! cluster, with a progress display and a summary.
//!
//! The stream is read on this thread; each master's sessions go, a batch
//! at a time, to a thread of its own ([`Cluster::write_entries`]): every
//! master is written at once. A batch goes out as `SET key value PX ttl NX`
//! (no `NX` with `--overwrite`), pipelined to the master of each entry's
//! slot in the slot map. A nil reply is a session that was there already
//! and is kept. An entry that comes back redirected (MOVED, ASK) or refused
//! for a passing cluster state, or whose pipeline was cut short, is written
//! again on its own through the library's router, which follows redirects
//! and rides out failovers within op-timeout.
//!
//! An entry resent after a connection broke mid-pipeline (or whose routed
//! SET lost its reply) may find its own session already written: a `SET NX`
//! that then finds the key counts the entry as imported, since the first
//! send may well have written it (`Unanswered`): a retry does not turn
//! "imported" into "kept".

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use ors_redis::dictionaries;
use ors_redis::envelope;
use ors_redis::operator::{
    may_repeat, Error, KeyBuilder, NodeAddr, Reply, ReplyClass, Result, ServerError, SessionId,
    Unanswered, Value,
};

use super::store::{packed, unexpected_reply};
use super::{IO_BUFFER, REDRAW_EVERY};
use crate::cluster::Cluster;
use crate::ctx::{failure, usage_error, Ctx, EXIT_FAIL, EXIT_OK};
use crate::output::{self, Table};
use crate::progress::TransferProgress;
use crate::stream::{now_ms, Reader};

/// An import hands a master's sessions to its thread this many at a time,
/// or fewer when their values reach `BATCH_BYTES`.
const BATCH_ENTRIES: usize = 256;
const BATCH_BYTES: usize = 1 << 20;
/// Batches waiting for each master's thread: enough to keep it busy while
/// the stream is read, few enough to bound the memory held.
const QUEUED_BATCHES: usize = 4;

const IMPORT: &str = "sessions_import";

/// One session to write.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// When it expires, in milliseconds since the Unix epoch; `None`: no
    /// TTL (as the export found it). The TTL sent is what is left of it
    /// when the command goes out.
    pub expires_at_ms: Option<u64>,
    pub slot: u16,
    /// The line of the stream it came from, for messages.
    pub line: u64,
}

impl Entry {
    /// Its `SET`, with `ttl` (milliseconds left, when it has a TTL).
    fn set_command<'a>(&'a self, ttl: &'a str, overwrite: bool) -> Vec<&'a [u8]> {
        let mut set: Vec<&[u8]> = vec![b"SET", &self.key, &self.value];
        if self.expires_at_ms.is_some() {
            set.extend([&b"PX"[..], ttl.as_bytes()]);
        }
        if !overwrite {
            set.push(b"NX");
        }
        set
    }

    /// The milliseconds it has left at `now` (empty without a TTL), or
    /// `None` when it has expired.
    fn ttl_at(&self, now: u64) -> Option<String> {
        match self.expires_at_ms {
            None => Some(String::new()),
            Some(at) if at > now => Some((at - now).to_string()),
            Some(_) => None,
        }
    }
}

/// What a batch came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
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

impl Tally {
    /// Counts what writing `entry` on `node` came to.
    fn add(&mut self, entry: &Entry, node: &NodeAddr, written: Written) {
        match written {
            Written::Imported => self.imported += 1,
            Written::Kept => self.kept_existing += 1,
            Written::Refused(e) => {
                self.failed += 1;
                self.first_failure.get_or_insert_with(|| {
                    format!("line {}: node {node}: {}", entry.line, e.text())
                });
            }
        }
    }
}

/// What a SET came to.
enum Written {
    Imported,
    Kept,
    Refused(ServerError),
}

/// A SET's reply: what it came to, or an error reply for the router to
/// judge (a redirect, a passing cluster state). An ACL or authentication
/// refusal stops the import.
fn judge_set(reply: Value) -> Result<std::result::Result<Written, ServerError>> {
    match reply {
        Value::Okay => Ok(Ok(Written::Imported)),
        Value::SimpleString(s) if s == "OK" => Ok(Ok(Written::Imported)),
        Value::Nil => Ok(Ok(Written::Kept)),
        Value::ServerError(e) => {
            let class = e.class();
            if matches!(class, ReplyClass::Moved | ReplyClass::Ask) || class.is_transient() {
                Ok(Err(e))
            } else if matches!(class, ReplyClass::NoPerm | ReplyClass::NoAuth) {
                Err(e.to_error_for(&[b"SET"]))
            } else {
                Ok(Ok(Written::Refused(e)))
            }
        }
        _ => Err(unexpected_reply("SET")),
    }
}

impl Cluster {
    /// Writes `entries`; an error is what stops the import (the ACL refuses
    /// SET, the cluster stays down past op-timeout).
    pub(crate) fn write_entries(&mut self, entries: Vec<Entry>, overwrite: bool) -> Result<Tally> {
        let mut tally = Tally::default();
        // Entries for the router, one by one.
        let mut one_by_one = Vec::new();
        for (node, group) in self.by_master(entries, &mut one_by_one) {
            let now = now_ms();
            let mut sent = Vec::with_capacity(group.len());
            let mut ttls = Vec::with_capacity(group.len());
            for entry in group {
                match entry.ttl_at(now) {
                    Some(ttl) => {
                        ttls.push(ttl);
                        sent.push(entry);
                    }
                    None => tally.expired += 1,
                }
            }
            let commands: Vec<Vec<&[u8]>> = sent
                .iter()
                .zip(&ttls)
                .map(|(e, ttl)| e.set_command(ttl, overwrite))
                .collect();
            let replies = match self.pipeline(&node, &commands) {
                Ok(r) => r,
                Err(e) if may_repeat(&e) => {
                    tracing::debug!(error = %e.message, entries = sent.len(), "pipeline cut short: writing its entries one by one");
                    // Sent, their replies not all read: any may be written.
                    one_by_one.extend(sent.into_iter().map(|entry| (entry, true)));
                    continue;
                }
                Err(e) => return Err(e),
            };
            drop(commands);
            for (entry, reply) in sent.into_iter().zip(replies) {
                match judge_set(reply).map_err(|e| e.at_node(&node.to_string()))? {
                    Ok(written) => tally.add(&entry, &node, written),
                    Err(_) => one_by_one.push((entry, false)),
                }
            }
        }
        for (entry, sent_before) in one_by_one {
            self.write_routed(&entry, overwrite, sent_before, &mut tally)?;
        }
        Ok(tally)
    }

    /// Writes one entry through the library's router; `sent_before`: a
    /// pipeline sent it and lost its reply.
    fn write_routed(
        &mut self,
        entry: &Entry,
        overwrite: bool,
        sent_before: bool,
        tally: &mut Tally,
    ) -> Result<()> {
        let Some(ttl) = entry.ttl_at(now_ms()) else {
            tally.expired += 1;
            return Ok(());
        };
        let set = entry.set_command(&ttl, overwrite);
        let packed = packed(&set);
        let unanswered = Unanswered::default();
        if sent_before {
            unanswered.mark();
        }
        let (node, written) = self.route(entry.slot, &mut |x| {
            let earlier = unanswered.earlier();
            x.send(&packed)?;
            Ok(match judge_set(unanswered.reading(|| x.receive())?)? {
                // The key an earlier send of this entry may have written.
                Ok(Written::Kept) if earlier => Reply::Done(Written::Imported),
                Ok(written) => Reply::Done(written),
                Err(e) => Reply::Error(e),
            })
        })?;
        tally.add(entry, &node, written);
        Ok(())
    }

    /// The entries by the master of their slot in the slot map, in the
    /// order first met. An entry whose slot no master serves goes to
    /// `unserved`, for the router to wait for one.
    fn by_master(
        &self,
        entries: Vec<Entry>,
        unserved: &mut Vec<(Entry, bool)>,
    ) -> Vec<(NodeAddr, Vec<Entry>)> {
        let map = self.map();
        let mut groups: Vec<(NodeAddr, Vec<Entry>)> = Vec::new();
        for entry in entries {
            let Some(master) = map.master_of(entry.slot) else {
                unserved.push((entry, false));
                continue;
            };
            match groups.iter_mut().find(|(node, _)| *node == master.addr) {
                Some((_, group)) => group.push(entry),
                None => groups.push((master.addr.clone(), vec![entry])),
            }
        }
        groups
    }
}

/// `result` of `sessions import --json`.
#[derive(Serialize, Default)]
struct ImportOut {
    cluster_name: String,
    source_cluster_name: String,
    exported_at_ms: u64,
    overwrite: bool,
    /// Session lines read.
    read: u64,
    imported: u64,
    kept_existing: u64,
    expired: u64,
    failed: u64,
    first_failure: Option<String>,
    /// The end line was read: the stream was whole.
    complete: bool,
    /// Why the import stopped before the end of the stream.
    error: Option<String>,
    seconds: f64,
}

/// Counts the bytes read from the input, for the progress bar.
struct Counted<R> {
    inner: R,
    bytes: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

pub(super) fn import(ctx: &Ctx, file: Option<&Path>, overwrite: bool, rename: bool) -> i32 {
    let (input, size, source): (Box<dyn Read>, Option<u64>, String) = match file {
        None if io::stdin().is_terminal() => {
            return usage_error(
                "stdin is a terminal: give --file F, or pipe a stream in (< sessions.jsonl)",
            )
        }
        None => (Box::new(io::stdin()), None, "stdin".to_string()),
        Some(path) => match File::open(path) {
            Ok(f) => {
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(f), size, path.display().to_string())
            }
            Err(e) => return usage_error(&format!("cannot open {}: {e}", path.display())),
        },
    };
    let bytes_read = Rc::new(Cell::new(0u64));
    let counted = Counted {
        inner: input,
        bytes: Rc::clone(&bytes_read),
    };
    let buffered = BufReader::with_capacity(IO_BUFFER, counted);
    let mut reader = match Reader::new(buffered, ctx.config.max_value_bytes) {
        Ok(r) => r,
        Err(e) => return failure(ctx, IMPORT, &Error::invalid(format!("{source}: {e}"))),
    };
    let cluster = ctx.config.cluster_name.as_str();
    let header = reader.header().clone();
    if header.cluster_name != cluster && !rename {
        let why = format!(
            "{source} holds the sessions of cluster-name {}, the config says {cluster}: \
             give --rename to import them under {cluster}",
            header.cluster_name
        );
        return failure(ctx, IMPORT, &Error::invalid(why));
    }
    let admin = match Cluster::connect(ctx.config.clone()) {
        Ok(a) => a,
        Err(e) => return failure(ctx, IMPORT, &e),
    };
    let started = Instant::now();
    let mut out = ImportOut {
        cluster_name: cluster.to_string(),
        source_cluster_name: header.cluster_name.clone(),
        exported_at_ms: header.exported_at_ms,
        overwrite,
        ..ImportOut::default()
    };
    let mut progress = TransferProgress::new("importing", ctx.quiet, size);
    let mut show = |out: &ImportOut| progress.update(&counts_text(out), Some(bytes_read.get()));
    run_import(&source, &admin, &mut reader, overwrite, &mut out, &mut show);
    show(&out);
    drop(progress);
    out.seconds = started.elapsed().as_secs_f64();
    let ok = out.complete && out.error.is_none() && out.failed == 0;
    if ctx.json {
        output::json(IMPORT, ok, &out);
    } else {
        output::print(&summary(&out, &source));
    }
    if let Some(e) = &out.error {
        output::note(e);
    }
    if let Some(e) = &out.first_failure {
        output::note(&format!(
            "{} session(s) refused; the first: {e}",
            out.failed
        ));
    }
    if ok {
        EXIT_OK
    } else {
        EXIT_FAIL
    }
}

fn counts_text(out: &ImportOut) -> String {
    format!(
        "{} read, {} imported, {} kept, {} expired, {} failed",
        out.read, out.imported, out.kept_existing, out.expired, out.failed
    )
}

fn summary(out: &ImportOut, source: &str) -> String {
    let mut table = Table::plain();
    let rows = [
        ("read", out.read, "session lines of the stream"),
        ("imported", out.imported, ""),
        (
            "kept existing",
            out.kept_existing,
            if out.overwrite {
                ""
            } else {
                "there already, and kept (--overwrite replaces them)"
            },
        ),
        ("expired", out.expired, "their TTL ran out since the export"),
        ("failed", out.failed, "refused by the cluster"),
    ];
    for (what, n, note) in rows {
        table.row(vec![what.into(), n.to_string(), note.into()]);
    }
    let mut text = format!(
        "ors-redis sessions import: cluster-name {}, from {source} (cluster-name {}, exported {})\n\n",
        out.cluster_name,
        out.source_cluster_name,
        utc_text(out.exported_at_ms)
    );
    text.push_str(&table.render());
    let state = match (&out.error, out.complete) {
        (Some(_), _) => "stopped early",
        (None, true) => "done",
        (None, false) => "incomplete stream",
    };
    text.push_str(&format!("\nresult: {state} in {:.1} s\n", out.seconds));
    text
}

/// What the threads of an import share.
#[derive(Default)]
struct Shared {
    imported: AtomicU64,
    /// Their TTL ran out since the export (found when read or when written).
    expired: AtomicU64,
    kept_existing: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
    /// What stopped a thread; the import stops with it.
    fatal: Mutex<Option<Error>>,
    stop: AtomicBool,
}

impl Shared {
    fn add(&self, t: Tally) {
        self.imported.fetch_add(t.imported, Ordering::Relaxed);
        self.expired.fetch_add(t.expired, Ordering::Relaxed);
        self.kept_existing
            .fetch_add(t.kept_existing, Ordering::Relaxed);
        self.failed.fetch_add(t.failed, Ordering::Relaxed);
        if let (Some(f), Ok(mut first)) = (t.first_failure, self.first_failure.lock()) {
            first.get_or_insert(f);
        }
    }

    fn fail(&self, e: Error) {
        if let Ok(mut fatal) = self.fatal.lock() {
            fatal.get_or_insert(e);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    fn counts_into(&self, out: &mut ImportOut) {
        out.imported = self.imported.load(Ordering::Relaxed);
        out.expired = self.expired.load(Ordering::Relaxed);
        out.kept_existing = self.kept_existing.load(Ordering::Relaxed);
        out.failed = self.failed.load(Ordering::Relaxed);
    }
}

/// Reads the stream to its end (or to what stops the import) and writes
/// its sessions, each master's by a thread of its own. The counts and
/// what stopped it go into `out`.
fn run_import<R: io::BufRead>(
    source: &str,
    admin: &Cluster,
    reader: &mut Reader<R>,
    overwrite: bool,
    out: &mut ImportOut,
    show: &mut dyn FnMut(&ImportOut),
) {
    let masters = admin.masters();
    if masters.is_empty() {
        out.error = Some("the slot map has no master".into());
        return;
    }
    // The thread of each slot's master; an unserved slot's sessions go to
    // the first, whose writing waits for a master within op-timeout.
    let map = admin.map();
    let thread_of: Vec<usize> = (0..16384u16)
        .map(|slot| {
            map.master_of(slot)
                .and_then(|m| masters.iter().position(|n| *n == m.addr))
                .unwrap_or(0)
        })
        .collect();
    let keys = KeyBuilder::new(&admin.config().cluster_name);
    let compression = admin.config().compression;
    let op_timeout = admin.config().op_timeout;
    // The target's dictionary (compression-dictionary), loaded and stored
    // again with a fresh TTL; without it, zstd alone.
    let dictionary = dictionaries::writing_for(admin.config()).filter(|w| match dictionaries::keep(w, &admin.client) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e.message, "compression-dictionary: not used by this import");
            false
        }
    });
    let mut sealed = Vec::new();
    let exported_at = reader.header().exported_at_ms;
    let shared = Shared::default();
    let mut stream_error: Option<String> = None;
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(masters.len());
        for _ in &masters {
            let (tx, rx) = sync_channel::<Vec<Entry>>(QUEUED_BATCHES);
            let shared = &shared;
            let mut cluster = admin.for_thread();
            scope.spawn(move || write_batches(&mut cluster, rx, overwrite, shared));
            senders.push(tx);
        }
        let mut batches: Vec<Vec<Entry>> = masters.iter().map(|_| Vec::new()).collect();
        let mut batch_bytes = vec![0usize; masters.len()];
        let mut last_redraw = Instant::now();
        while !shared.stop.load(Ordering::Relaxed) {
            let record = match reader.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => {
                    out.complete = true;
                    break;
                }
                Err(e) => {
                    stream_error = Some(format!("{source}: {e}"));
                    break;
                }
            };
            out.read += 1;
            let line = reader.line();
            let Ok(id) = SessionId::parse(&record.id) else {
                stream_error = Some(format!("line {line}: not a session id"));
                break;
            };
            let expires_at_ms = if record.pttl_ms == -1 {
                None
            } else {
                let at = exported_at.saturating_add(record.pttl_ms.unsigned_abs());
                if at <= now_ms() {
                    shared.expired.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Some(at)
            };
            let slot = id.slot();
            let to = thread_of.get(usize::from(slot)).copied().unwrap_or(0);
            // Written as the target's config writes (compressed or not);
            // the stream holds what ORS gave.
            let as_given = record.value.as_ptr();
            let ttl_secs = expires_at_ms.map_or(u32::MAX, |at| {
                u32::try_from(at.saturating_sub(now_ms()).div_ceil(1000)).unwrap_or(u32::MAX)
            });
            let encoder = dictionary
                .as_ref()
                .and_then(|w| w.for_value(ttl_secs, op_timeout));
            let value = if envelope::seal(&compression, encoder, &record.value, &mut sealed)
                .as_ptr()
                == as_given
            {
                record.value
            } else {
                sealed.clone()
            };
            batch_bytes[to] += value.len();
            batches[to].push(Entry {
                key: keys.key(id),
                value,
                expires_at_ms,
                slot,
                line,
            });
            if batches[to].len() >= BATCH_ENTRIES || batch_bytes[to] >= BATCH_BYTES {
                batch_bytes[to] = 0;
                let batch = std::mem::take(&mut batches[to]);
                if senders[to].send(batch).is_err() {
                    // Its thread stopped: `fatal` says why.
                    break;
                }
            }
            if last_redraw.elapsed() >= REDRAW_EVERY {
                last_redraw = Instant::now();
                shared.counts_into(out);
                show(out);
            }
        }
        // What was read goes out, also before a bad line; not after a
        // thread stopped the import.
        if !shared.stop.load(Ordering::Relaxed) {
            for (tx, batch) in senders.iter().zip(batches) {
                if !batch.is_empty() && tx.send(batch).is_err() {
                    break;
                }
            }
        }
        drop(senders);
    });
    shared.counts_into(out);
    if let Ok(mut first) = shared.first_failure.lock() {
        out.first_failure = first.take();
    }
    let fatal = shared.fatal.lock().ok().and_then(|mut f| f.take());
    out.error = fatal.map(|e| e.message).or(stream_error);
    if out.error.is_some() {
        out.complete = false;
    }
}

/// One master's thread: writes the batches it is handed until there are
/// no more, or until an error stops the import.
fn write_batches(
    admin: &mut Cluster,
    batches: Receiver<Vec<Entry>>,
    overwrite: bool,
    shared: &Shared,
) {
    for batch in batches {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        match admin.write_entries(batch, overwrite) {
            Ok(tally) => shared.add(tally),
            Err(e) => return shared.fail(e),
        }
    }
}

/// Milliseconds since the epoch as UTC, `2026-01-01 00:00:00 UTC`.
fn utc_text(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_767_225_600_000), "2026-01-01 00:00:00 UTC");
        assert_eq!(
            utc_text(951_782_400_000 + 86_399_999),
            "2000-02-29 23:59:59 UTC"
        );
        assert_eq!(utc_text(4_107_542_400_000), "2100-03-01 00:00:00 UTC");
    }

    #[test]
    fn the_summary_names_every_count() {
        let out = ImportOut {
            cluster_name: "NEW".into(),
            source_cluster_name: "OLD".into(),
            exported_at_ms: 1_767_225_600_000,
            read: 10,
            imported: 6,
            kept_existing: 2,
            expired: 1,
            failed: 1,
            complete: true,
            ..ImportOut::default()
        };
        let text = summary(&out, "s.jsonl");
        assert!(text.starts_with(
            "ors-redis sessions import: cluster-name NEW, from s.jsonl (cluster-name OLD, exported 2026-01-01 00:00:00 UTC)"
        ), "{text}");
        for row in [
            "read           10",
            "imported       6",
            "kept existing  2",
            "expired        1",
            "failed         1",
        ] {
            assert!(text.contains(row), "{row}: {text}");
        }
        assert!(text.contains("result: done"), "{text}");
        assert_eq!(
            counts_text(&out),
            "10 read, 6 imported, 2 kept, 1 expired, 1 failed"
        );
    }
}
