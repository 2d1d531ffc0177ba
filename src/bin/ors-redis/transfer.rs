//! `ors-redis sessions export` and `sessions import`: one cluster name's
//! sessions out to a stream (`stream.rs`) and back into a cluster, with a
//! progress display and a summary.
//!
//! The export writes what [`Admin::export_source`] hands it. The import
//! reads the stream on this thread and hands each master's sessions, a
//! batch at a time, to a thread of its own that writes them
//! ([`Admin::write_entries`]): every master is written at once.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use ors_redis::operator::{Config, Error, ErrorKind, KeyBuilder, SessionId};

use crate::admin::import::{Entry, Tally};
use crate::admin::{human_bytes, Admin};
use crate::output::{self, Table};
use crate::progress::TransferProgress;
use crate::stream::{now_ms, Reader, Writer};
use crate::{failure, usage_error, Ctx, EXIT_FAIL, EXIT_OK};

/// An import hands a master's sessions to its thread this many at a time,
/// or fewer when their values reach `BATCH_BYTES`.
const BATCH_ENTRIES: usize = 256;
const BATCH_BYTES: usize = 1 << 20;
/// Batches waiting for each master's thread: enough to keep it busy while
/// the stream is read, few enough to bound the memory held.
const QUEUED_BATCHES: usize = 4;
/// Buffer of the stream's input and output.
const IO_BUFFER: usize = 1 << 20;
/// The progress display is brought up to date at most this often.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

const EXPORT: &str = "sessions_export";
const IMPORT: &str = "sessions_import";

// ------------------------------------------------------------------ export

/// `result` of `sessions export --json`.
#[derive(Serialize)]
struct ExportOut<'a> {
    cluster_name: &'a str,
    prefix: &'a str,
    file: String,
    sessions: u64,
    value_bytes: u64,
    exported_at_ms: u64,
    seconds: f64,
}

/// Where the stream goes, for messages.
enum Destination {
    File(String),
    Stdout,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::File(path) => f.write_str(path),
            Destination::Stdout => f.write_str("stdout"),
        }
    }
}

/// Where the stream goes.
enum Output {
    File(File),
    Stdout(io::Stdout),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::File(f) => f.write(buf),
            Output::Stdout(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::File(f) => f.flush(),
            Output::Stdout(s) => s.flush(),
        }
    }
}

pub fn export(ctx: &Ctx, prefix: &str, file: Option<&Path>) -> i32 {
    let cluster = ctx.config.cluster_name.as_str();
    if let Err(why) = KeyBuilder::new(&ctx.config.cluster_name).session_pattern(prefix.as_bytes()) {
        return usage_error(&format!("--prefix: {why}"));
    }
    let output = match file {
        None if ctx.json => {
            return usage_error("--json puts its document on stdout: give the stream a --file")
        }
        None if io::stdout().is_terminal() => {
            return usage_error(
                "stdout is a terminal: give --file F, or redirect stdout (> sessions.jsonl)",
            )
        }
        None => Output::Stdout(io::stdout()),
        Some(path) => match File::create(path) {
            Ok(f) => Output::File(f),
            Err(e) => return usage_error(&format!("cannot create {}: {e}", path.display())),
        },
    };
    let mut admin = match Admin::connect(ctx.config.clone()) {
        Ok(a) => a,
        Err(e) => return failure(ctx, EXPORT, &e),
    };
    let started = Instant::now();
    let exported_at_ms = now_ms();
    let destination = match file {
        Some(path) => Destination::File(path.display().to_string()),
        None => Destination::Stdout,
    };
    let out = BufWriter::with_capacity(IO_BUFFER, output);
    let mut writer = match Writer::new(out, cluster, exported_at_ms) {
        Ok(w) => w,
        Err(e) => return write_failed(ctx, &destination, &e),
    };
    let mut progress = TransferProgress::new("exporting", ctx.quiet, None);
    let mut value_bytes = 0u64;
    let mut write_error: Option<io::Error> = None;
    let mut last_redraw = started;
    let read = admin.export_source(prefix.as_bytes(), &mut |batch| {
        for s in batch {
            if let Err(e) = writer.record(s.id, s.value, s.pttl_ms) {
                write_error = Some(e);
                return Err(Error::new(ErrorKind::Internal, "the output failed"));
            }
            value_bytes += s.value.len() as u64;
        }
        if last_redraw.elapsed() >= REDRAW_EVERY {
            last_redraw = Instant::now();
            progress.update(&export_counts(writer.records(), value_bytes), None);
        }
        Ok(())
    });
    progress.update(&export_counts(writer.records(), value_bytes), None);
    drop(progress);
    if let Some(e) = write_error {
        return write_failed(ctx, &destination, &e);
    }
    let sessions = writer.records();
    if let Err(e) = read {
        // What was read goes out, without the end line: an import of it
        // then says that the export did not finish.
        let _ = writer.flush();
        return failure(ctx, EXPORT, &e);
    }
    let finished = writer.finish().and_then(|out| match out.into_inner() {
        Ok(Output::File(f)) => f.sync_all(),
        Ok(Output::Stdout(_)) => Ok(()),
        Err(e) => Err(e.into_error()),
    });
    if let Err(e) = finished {
        return write_failed(ctx, &destination, &e);
    }
    let seconds = started.elapsed().as_secs_f64();
    if ctx.json {
        let out = ExportOut {
            cluster_name: cluster,
            prefix,
            file: destination.to_string(),
            sessions,
            value_bytes,
            exported_at_ms,
            seconds,
        };
        output::json(EXPORT, true, &out);
    }
    ctx.note(&format!(
        "exported {sessions} session(s) of cluster-name {cluster} to {destination} \
         ({} of values) in {seconds:.1} s",
        human_bytes(value_bytes)
    ));
    EXIT_OK
}

fn export_counts(sessions: u64, value_bytes: u64) -> String {
    format!("{sessions} sessions, {}", human_bytes(value_bytes))
}

/// The stream could not be written: a closed pipe ends the command quietly
/// (141), anything else is a failure that names the destination.
fn write_failed(ctx: &Ctx, destination: &Destination, e: &io::Error) -> i32 {
    if let Destination::Stdout = destination {
        output::stdout_failed(e);
    }
    // The kind of a local failure: a full disk, a file not writable.
    let error = Error::new(
        ErrorKind::LocalResource,
        format!("cannot write {destination}: {e}"),
    );
    failure(ctx, EXPORT, &error)
}

// ------------------------------------------------------------------ import

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

pub fn import(ctx: &Ctx, file: Option<&Path>, overwrite: bool, rename: bool) -> i32 {
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
    let admin = match Admin::connect(ctx.config.clone()) {
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
    run_import(
        &source,
        &ctx.config,
        &admin,
        &mut reader,
        overwrite,
        &mut out,
        &mut show,
    );
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
    config: &Config,
    admin: &Admin,
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
    let thread_of: Vec<usize> = (0..16384u16)
        .map(|slot| {
            admin
                .map
                .master_of(slot)
                .and_then(|m| masters.iter().position(|n| *n == m.addr))
                .unwrap_or(0)
        })
        .collect();
    let keys = KeyBuilder::new(&config.cluster_name);
    let exported_at = reader.header().exported_at_ms;
    let shared = Shared::default();
    let mut stream_error: Option<String> = None;
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(masters.len());
        for _ in &masters {
            let (tx, rx) = sync_channel::<Vec<Entry>>(QUEUED_BATCHES);
            let shared = &shared;
            let config = config.clone();
            scope.spawn(move || write_batches(config, rx, overwrite, shared));
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
            batch_bytes[to] += record.value.len();
            batches[to].push(Entry {
                key: keys.key(id),
                value: record.value,
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
fn write_batches(config: Config, batches: Receiver<Vec<Entry>>, overwrite: bool, shared: &Shared) {
    let mut admin = match Admin::connect(config) {
        Ok(a) => a,
        Err(e) => return shared.fail(e),
    };
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
