//! `ors-redis sessions list|count|get|del|purge`, printed here from what
//! `store.rs` finds; `export` and `import` (the session stream) are
//! `export.rs`'s and `import.rs`'s.

mod export;
mod import;
pub(crate) mod store;

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use serde::Serialize;

use ors_redis::operator::{KeyBuilder, NodeAddr, SessionId};

use self::store::{Session, Ttl};
use crate::cli::SessionsCommand;
use crate::cluster::Cluster;
use crate::ctx::{failure, usage_error, Ctx, EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::output::{self, Table};
use crate::progress::with_progress;
use crate::text;

/// Buffer of the stream's input and output.
const IO_BUFFER: usize = 1 << 20;
/// The progress display of an export or import is brought up to date at
/// most this often.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// On a terminal, text values are shown up to this size, binary ones as a
/// hexdump up to `MAX_HEXDUMP`; redirect stdout for the whole value.
const MAX_TEXT: usize = 64 * 1024;
const MAX_HEXDUMP: usize = 4096;

pub(crate) fn run(ctx: &Ctx, sub: &SessionsCommand) -> i32 {
    let name = sub.name();
    // They check their input and output before they connect.
    match sub {
        SessionsCommand::Export { prefix, file } => {
            return export::export(ctx, prefix, file.as_deref())
        }
        SessionsCommand::Import {
            file,
            overwrite,
            rename,
        } => return import::import(ctx, file.as_deref(), *overwrite, *rename),
        _ => {}
    }
    // A bad id is a usage error, whether or not the cluster is up.
    let id = match sub {
        SessionsCommand::Get { id, .. } | SessionsCommand::Del { id } => {
            match SessionId::parse(id.as_bytes()) {
                Ok(id) => Some(id),
                Err(e) => return usage_error(&format!("'{}': {e}", text::escape(id.as_bytes()))),
            }
        }
        _ => None,
    };
    let mut admin = match Cluster::connect(ctx.config.clone()) {
        Ok(a) => a,
        Err(e) => return failure(ctx, name, &e),
    };
    match (sub, id) {
        (SessionsCommand::List { prefix }, _) => list(ctx, &mut admin, prefix, false),
        (SessionsCommand::Count { prefix }, _) => list(ctx, &mut admin, prefix, true),
        (SessionsCommand::Get { raw, escaped, .. }, Some(id)) => {
            get(ctx, &mut admin, id, *raw, *escaped)
        }
        (SessionsCommand::Del { .. }, Some(id)) => del(ctx, &mut admin, id),
        (SessionsCommand::Purge { yes }, _) => purge(ctx, &mut admin, *yes),
        _ => usage_error("no session id"),
    }
}

/// A session id for JSON: the text (escaped when it is not plain UTF-8),
/// and base64 of the bytes when they are not UTF-8.
#[derive(Serialize)]
struct IdOut {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_base64: Option<String>,
}

fn id_out(id: &[u8]) -> IdOut {
    IdOut {
        id: text::show_id(id),
        id_base64: std::str::from_utf8(id).is_err().then(|| text::base64(id)),
    }
}

#[derive(Serialize)]
struct MasterCount {
    node: String,
    count: u64,
}

fn per_master(masters: &[NodeAddr], counts: &[u64]) -> Vec<MasterCount> {
    masters
        .iter()
        .zip(counts)
        .map(|(node, n)| MasterCount {
            node: node.to_string(),
            count: *n,
        })
        .collect()
}

/// One row per master and a total.
fn per_master_table(masters: &[NodeAddr], counts: &[u64], what: &str) -> String {
    let mut table = Table::new(&["MASTER", what]);
    for (node, n) in masters.iter().zip(counts) {
        table.row(vec![node.to_string(), n.to_string()]);
    }
    table.row(vec!["total".into(), counts.iter().sum::<u64>().to_string()]);
    table.render()
}

#[derive(Serialize)]
struct ListOut<'a> {
    cluster_name: &'a str,
    prefix: &'a str,
    count: usize,
    masters: Vec<MasterCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<Vec<ListedSession>>,
}

#[derive(Serialize)]
struct ListedSession {
    #[serde(flatten)]
    id: IdOut,
    master: Option<String>,
}

fn list(ctx: &Ctx, admin: &mut Cluster, prefix: &str, count_only: bool) -> i32 {
    let name = if count_only {
        "sessions_count"
    } else {
        "sessions_list"
    };
    let what = if count_only { "counting" } else { "listing" };
    let result = with_progress(what, ctx.quiet, |progress| {
        admin.list_sessions(prefix.as_bytes(), progress)
    });
    let listing = match result {
        Ok(l) => l,
        Err(e) => return failure(ctx, name, &e),
    };
    let cluster = ctx.config.cluster_name.as_str();
    let total = listing.ids.len();
    if ctx.json {
        let sessions = (!count_only).then(|| {
            listing
                .ids
                .iter()
                .map(|(id, master)| ListedSession {
                    id: id_out(id),
                    master: listing.masters.get(*master).map(|m| m.to_string()),
                })
                .collect()
        });
        let out = ListOut {
            cluster_name: cluster,
            prefix,
            count: total,
            masters: per_master(&listing.masters, &listing.per_master),
            sessions,
        };
        output::json(name, true, &out);
        return EXIT_OK;
    }
    if count_only {
        output::print(&per_master_table(
            &listing.masters,
            &listing.per_master,
            "SESSIONS",
        ));
    } else {
        let mut table = Table::new(&["SESSION ID", "MASTER"]);
        for (id, master) in &listing.ids {
            let node = listing
                .masters
                .get(*master)
                .map(|m| m.to_string())
                .unwrap_or_default();
            table.row(vec![text::show_id(id), node]);
        }
        output::print(&table.render());
    }
    let what = if prefix.is_empty() {
        format!("cluster-name {cluster}")
    } else {
        format!("cluster-name {cluster} with prefix '{prefix}'")
    };
    ctx.note(&format!("{total} session(s) of {what}"));
    EXIT_OK
}

/// `result` of `sessions get --json`.
#[derive(Serialize)]
struct GetOut {
    #[serde(flatten)]
    id: IdOut,
    found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
    /// Null for a key without TTL (which the library never writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<Option<u64>>,
    /// `utf-8` or `base64`: how `value` holds the bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

fn get(ctx: &Ctx, admin: &mut Cluster, id: SessionId<'_>, raw: bool, escaped: bool) -> i32 {
    let bytes = id.as_bytes();
    let session = match admin.get_session(id) {
        Ok(Some(s)) => s,
        Ok(None) => {
            if ctx.json {
                let out = GetOut {
                    id: id_out(bytes),
                    found: false,
                    key: None,
                    node: None,
                    bytes: None,
                    ttl_seconds: None,
                    encoding: None,
                    value: None,
                };
                output::json("sessions_get", false, &out);
            }
            output::note(&format!(
                "no session '{}' in cluster-name {}",
                text::show_id(bytes),
                ctx.config.cluster_name.as_str()
            ));
            return EXIT_FAIL;
        }
        Err(e) => return failure(ctx, "sessions_get", &e),
    };
    let ttl_text = match session.ttl {
        Ttl::Seconds(s) => format!("{s} s ({})", text::duration_text(s)),
        Ttl::Persistent => {
            "none (this key has no TTL: the library never writes one like that)".into()
        }
    };
    if ctx.json {
        output::json("sessions_get", true, &get_out(bytes, &session));
        return EXIT_OK;
    }
    if raw || (!escaped && !std::io::stdout().is_terminal()) {
        output::write_bytes(&session.value);
        ctx.note(&format!(
            "session '{}': {} bytes, ttl {ttl_text}, on {}",
            text::show_id(bytes),
            session.value.len(),
            session.node
        ));
        return EXIT_OK;
    }
    let mut table = Table::plain();
    table.row(vec!["session".into(), text::show_id(bytes)]);
    table.row(vec!["key".into(), text::escape(&session.key)]);
    table.row(vec!["node".into(), session.node.to_string()]);
    table.row(vec![
        "size".into(),
        format!("{} bytes", session.value.len()),
    ]);
    table.row(vec!["ttl".into(), ttl_text]);
    let mut out = table.render();
    let value = &session.value;
    if text::is_text(value) {
        let shown = &value[..value.len().min(MAX_TEXT)];
        out.push_str("value (text):\n");
        // Newlines and tabs stay; the rest of what is not printable is escaped.
        out.push_str(&text::escape_keeping(shown, &['\n', '\t']));
        out.push('\n');
        if value.len() > MAX_TEXT {
            out.push_str(&more(value.len() - MAX_TEXT));
        }
    } else {
        out.push_str("value (binary, hexdump):\n");
        out.push_str(&text::hexdump(&value[..value.len().min(MAX_HEXDUMP)]));
        if value.len() > MAX_HEXDUMP {
            out.push_str(&more(value.len() - MAX_HEXDUMP));
        }
    }
    output::print(&out);
    EXIT_OK
}

fn more(bytes: usize) -> String {
    format!("... {bytes} more bytes not shown (redirect stdout, or --raw, for the whole value)\n")
}

fn get_out(id: &[u8], s: &Session) -> GetOut {
    let (encoding, value) = match std::str::from_utf8(&s.value) {
        Ok(text) => ("utf-8", text.to_string()),
        Err(_) => ("base64", text::base64(&s.value)),
    };
    GetOut {
        id: id_out(id),
        found: true,
        key: Some(text::escape(&s.key)),
        node: Some(s.node.to_string()),
        bytes: Some(s.value.len()),
        ttl_seconds: Some(match s.ttl {
            Ttl::Seconds(n) => Some(n),
            Ttl::Persistent => None,
        }),
        encoding: Some(encoding),
        value: Some(value),
    }
}

/// `result` of `sessions del --json`.
#[derive(Serialize)]
struct DelOut {
    #[serde(flatten)]
    id: IdOut,
    deleted: bool,
    node: Option<String>,
    /// UNLINK, or DEL on a server without UNLINK.
    redis_command: Option<&'static str>,
}

fn del(ctx: &Ctx, admin: &mut Cluster, id: SessionId<'_>) -> i32 {
    let bytes = id.as_bytes();
    let deleted = match admin.delete_session(id) {
        Ok(d) => d,
        Err(e) => return failure(ctx, "sessions_del", &e),
    };
    if ctx.json {
        let out = DelOut {
            id: id_out(bytes),
            deleted: deleted.is_some(),
            node: deleted.as_ref().map(|(node, _)| node.to_string()),
            redis_command: deleted.as_ref().map(|(_, command)| *command),
        };
        output::json("sessions_del", deleted.is_some(), &out);
    }
    match deleted {
        Some((node, command)) => {
            if !ctx.json {
                output::print(&format!(
                    "deleted session '{}' ({command} on {node})\n",
                    text::show_id(bytes)
                ));
            }
            EXIT_OK
        }
        None => {
            output::note(&format!(
                "no session '{}' in cluster-name {}",
                text::show_id(bytes),
                ctx.config.cluster_name.as_str()
            ));
            EXIT_FAIL
        }
    }
}

/// `result` of `sessions purge --json`.
#[derive(Serialize)]
struct PurgeOut<'a> {
    cluster_name: &'a str,
    /// False without --yes: nothing was deleted.
    purged: bool,
    /// Without --yes: the keys a purge would delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    would_delete: Option<u64>,
    deleted: u64,
    masters: Vec<MasterCount>,
    passes: u32,
    /// The last pass found no key left.
    verified: bool,
    found_in_last_pass: u64,
}

fn purge(ctx: &Ctx, admin: &mut Cluster, yes: bool) -> i32 {
    let cluster = ctx.config.cluster_name.as_str();
    let keys = KeyBuilder::new(&ctx.config.cluster_name);
    let under = keys.cluster_prefix();
    let masters = admin.masters();
    if !yes {
        let result = with_progress("counting", ctx.quiet, |progress| {
            admin.count_cluster_keys(progress)
        });
        let counts = match result {
            Ok(c) => c,
            Err(e) => return failure(ctx, "sessions_purge", &e),
        };
        let total: u64 = counts.iter().sum();
        if ctx.json {
            let out = PurgeOut {
                cluster_name: cluster,
                purged: false,
                would_delete: Some(total),
                deleted: 0,
                masters: per_master(&masters, &counts),
                passes: 0,
                verified: false,
                found_in_last_pass: total,
            };
            output::json("sessions_purge", false, &out);
        }
        output::note(&format!(
            "purge would delete {total} key(s) under {under} on {} master(s); \
             nothing was deleted. Stop every ORS that uses cluster-name {cluster}, then run \
             'ors-redis sessions purge --yes'.",
            masters.len()
        ));
        return EXIT_USAGE;
    }
    let result = with_progress("purging", ctx.quiet, |progress| admin.purge(progress));
    let report = match result {
        Ok(r) => r,
        Err(e) => return failure(ctx, "sessions_purge", &e),
    };
    if ctx.json {
        let out = PurgeOut {
            cluster_name: cluster,
            purged: true,
            would_delete: None,
            deleted: report.deleted,
            masters: per_master(&report.masters, &report.deleted_per_master),
            passes: report.passes,
            verified: report.verified,
            found_in_last_pass: report.found_in_last_pass,
        };
        output::json("sessions_purge", report.verified, &out);
    } else {
        let mut text = per_master_table(&report.masters, &report.deleted_per_master, "DELETED");
        if report.verified {
            text.push_str(&format!(
                "purged {under} - {} key(s) deleted; pass {} found none left\n",
                report.deleted, report.passes
            ));
        }
        output::print(&text);
    }
    if report.verified {
        EXIT_OK
    } else {
        output::note(&format!(
            "keys under {under} kept appearing ({} in pass {}): is an ORS still writing? \
             Stop it and purge again.",
            report.found_in_last_pass, report.passes
        ));
        EXIT_FAIL
    }
}
