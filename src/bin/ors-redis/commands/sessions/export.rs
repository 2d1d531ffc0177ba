//! `ors-redis sessions export`: one cluster name's sessions out to a
//! stream (`stream.rs`), with a progress display and a summary.
//!
//! [`Cluster::export_source`] is the one place that reads them: the
//! library's bulk read (`ors_session_restore`'s engine), every master at
//! once, each slot's keys listed and their values and TTLs read pipelined,
//! each session exactly once even while a master fails over or slots
//! migrate. A session gone or expired meanwhile is left out. The command
//! only writes what it is handed.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use ors_redis::operator::{BulkRead, Error, ErrorKind, KeyBuilder, Owner, Result, Want};

use super::{IO_BUFFER, REDRAW_EVERY};
use crate::cluster::Cluster;
use crate::ctx::{failure, usage_error, Ctx, EXIT_OK};
use crate::output::{self, human_bytes};
use crate::progress::TransferProgress;
use crate::stream::{now_ms, Writer};

const EXPORT: &str = "sessions_export";

/// One session as the export reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exported<'a> {
    pub id: &'a [u8],
    pub value: &'a [u8],
    /// As PTTL gives it: milliseconds left, or -1 for a key without TTL.
    pub pttl_ms: i64,
}

/// What the export's source hands on, a batch at a time.
pub(super) type BatchFn<'a> = dyn FnMut(&[Exported<'_>]) -> Result<()> + 'a;

impl Cluster {
    /// Every session whose id starts with `id_prefix`, handed to `batch` a
    /// few hundred at a time, each once. An error of `batch` stops the
    /// export.
    pub(crate) fn export_source(
        &mut self,
        id_prefix: &[u8],
        batch: &mut BatchFn<'_>,
    ) -> Result<()> {
        let client = self.client.clone();
        let mut read = BulkRead::start(client, id_prefix, Want::ValuesAndTtl, Owner::Operator)?;
        while let Some(sessions) = read.next_batch()? {
            let out: Vec<Exported<'_>> = sessions
                .records()
                .filter_map(|r| {
                    // -2: gone since the GET; 0: expiring now.
                    let pttl_ms = r.pttl_ms.filter(|&ms| ms > 0 || ms == -1)?;
                    Some(Exported {
                        id: r.id,
                        value: r.value,
                        pttl_ms,
                    })
                })
                .collect();
            batch(&out)?;
            drop(out);
            read.recycle(sessions);
        }
        Ok(())
    }
}

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

pub(super) fn export(ctx: &Ctx, prefix: &str, file: Option<&Path>) -> i32 {
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
    let mut admin = match Cluster::connect(ctx.config.clone()) {
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
