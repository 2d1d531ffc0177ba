//! `ors-redis sessions list|count|get|del|purge`.

use std::io::Write;

use ors_redis::admin::sessions::{Session, Ttl};
use ors_redis::admin::Admin;
use ors_redis::config::NodeAddr;
use ors_redis::keys::SessionId;

use crate::output::{Json, Table};
use crate::term::{self, with_progress};
use crate::{failure, usage_error, Ctx, EXIT_FAIL, EXIT_OK, EXIT_USAGE};

/// On a terminal, text values are shown up to this size, binary ones as a
/// hexdump up to `MAX_HEXDUMP`; redirect stdout for the whole value.
const MAX_TEXT: usize = 64 * 1024;
const MAX_HEXDUMP: usize = 4096;

pub fn run(ctx: &Ctx, sub: &str) -> i32 {
    // A bad id is a usage error, whether or not the cluster is up.
    let id = match sub {
        "get" | "del" => match session_id(ctx) {
            Ok(id) => Some(id),
            Err(code) => return code,
        },
        _ => None,
    };
    let mut admin = match Admin::connect(ctx.config.clone()) {
        Ok(a) => a,
        Err(e) => return failure(&e),
    };
    match (sub, id) {
        ("list", _) => list(ctx, &mut admin, false),
        ("count", _) => list(ctx, &mut admin, true),
        ("get", Some(id)) => get(ctx, &mut admin, id),
        ("del", Some(id)) => del(ctx, &mut admin, id),
        ("purge", _) => purge(ctx, &mut admin),
        _ => usage_error(
            &format!("unknown sessions subcommand '{sub}'"),
            "ors-redis sessions --help",
        ),
    }
}

/// A session id for JSON: the text, and base64 of the bytes when they are
/// not UTF-8 (the text is then escaped).
fn id_fields(id: &[u8]) -> Vec<(&'static str, Json)> {
    let mut fields = vec![("id", Json::from(term::show_id(id)))];
    if std::str::from_utf8(id).is_err() {
        fields.push(("id_base64", term::base64(id).into()));
    }
    fields
}

/// `[{"node": ..., "<what>": n}, ...]`.
fn per_master_json(masters: &[NodeAddr], counts: &[u64], what: &str) -> Json {
    Json::Arr(
        masters
            .iter()
            .zip(counts)
            .map(|(node, n)| {
                Json::obj(vec![("node", node.to_string().into()), (what, (*n).into())])
            })
            .collect(),
    )
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

fn list(ctx: &Ctx, admin: &mut Admin, count_only: bool) -> i32 {
    let prefix = ctx.args.value("prefix").unwrap_or("");
    let what = if count_only { "counting" } else { "listing" };
    let result = with_progress(what, ctx.quiet, |progress| {
        admin.list_sessions(prefix.as_bytes(), progress)
    });
    let listing = match result {
        Ok(l) => l,
        Err(e) => return failure(&e),
    };
    let cluster = ctx.config.cluster_name.as_str();
    let total = listing.ids.len();
    if ctx.json {
        let mut fields = vec![
            ("cluster_name", Json::from(cluster)),
            ("prefix", prefix.into()),
            ("count", total.into()),
        ];
        fields.push((
            "masters",
            per_master_json(&listing.masters, &listing.per_master, "sessions"),
        ));
        if !count_only {
            let sessions = listing
                .ids
                .iter()
                .map(|(id, master)| {
                    let mut f = id_fields(id);
                    f.push((
                        "master",
                        listing.masters.get(*master).map(|m| m.to_string()).into(),
                    ));
                    Json::obj(f)
                })
                .collect();
            fields.push(("sessions", Json::Arr(sessions)));
        }
        print!("{}", Json::obj(fields).render());
        return EXIT_OK;
    }
    let what = if prefix.is_empty() {
        format!("cluster-name {cluster}")
    } else {
        format!("cluster-name {cluster} with prefix '{prefix}'")
    };
    if count_only {
        print!(
            "{}",
            per_master_table(&listing.masters, &listing.per_master, "SESSIONS")
        );
        ctx.note(&format!("{total} session(s) of {what}"));
    } else {
        let mut table = Table::new(&["SESSION ID", "MASTER"]);
        for (id, master) in &listing.ids {
            let node = listing
                .masters
                .get(*master)
                .map(|m| m.to_string())
                .unwrap_or_default();
            table.row(vec![term::show_id(id), node]);
        }
        print!("{}", table.render());
        ctx.note(&format!("{total} session(s) of {what}"));
    }
    EXIT_OK
}

/// The session id argument, validated as the library does.
fn session_id(ctx: &Ctx) -> Result<SessionId<'_>, i32> {
    let raw = ctx.args.words.get(2).map(Vec::as_slice).unwrap_or_default();
    SessionId::parse(raw).map_err(|e| {
        usage_error(
            &format!("'{}': {e}", term::escape(raw)),
            "ors-redis sessions --help",
        )
    })
}

fn get(ctx: &Ctx, admin: &mut Admin, id: SessionId<'_>) -> i32 {
    let raw = id.as_bytes();
    let session = match admin.get_session(id) {
        Ok(Some(s)) => s,
        Ok(None) => {
            if ctx.json {
                let mut f = id_fields(raw);
                f.push(("found", false.into()));
                print!("{}", Json::obj(f).render());
            }
            eprintln!(
                "ors-redis: no session '{}' in cluster-name {}",
                term::show_id(raw),
                ctx.config.cluster_name.as_str()
            );
            return EXIT_FAIL;
        }
        Err(e) => return failure(&e),
    };
    let ttl_text = match session.ttl {
        Ttl::Seconds(s) => format!("{s} s ({})", term::duration_text(s)),
        Ttl::Persistent => {
            "none (this key has no TTL: the library never writes one like that)".into()
        }
    };
    if ctx.json {
        print!("{}", get_json(raw, &session).render());
        return EXIT_OK;
    }
    let raw_out = ctx.args.flag("raw") || (!ctx.args.flag("escaped") && !term::stdout_is_tty());
    if raw_out {
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(&session.value)
            .and_then(|_| stdout.flush())
            .is_err()
        {
            return EXIT_FAIL;
        }
        ctx.note(&format!(
            "session '{}': {} bytes, ttl {ttl_text}, on {}",
            term::show_id(raw),
            session.value.len(),
            session.node
        ));
        return EXIT_OK;
    }
    let mut table = Table::plain();
    table.row(vec!["session".into(), term::show_id(raw)]);
    table.row(vec!["key".into(), term::escape(&session.key)]);
    table.row(vec!["node".into(), session.node.to_string()]);
    table.row(vec![
        "size".into(),
        format!("{} bytes", session.value.len()),
    ]);
    table.row(vec!["ttl".into(), ttl_text]);
    let mut out = table.render();
    let value = &session.value;
    if term::is_text(value) {
        let shown = &value[..value.len().min(MAX_TEXT)];
        out.push_str("value (text):\n");
        // Newlines and tabs stay; the rest of what is not printable is escaped.
        out.push_str(&term::escape_keeping(shown, &['\n', '\t']));
        out.push('\n');
        if value.len() > MAX_TEXT {
            out.push_str(&more(value.len() - MAX_TEXT));
        }
    } else {
        out.push_str("value (binary, hexdump):\n");
        out.push_str(&term::hexdump(&value[..value.len().min(MAX_HEXDUMP)]));
        if value.len() > MAX_HEXDUMP {
            out.push_str(&more(value.len() - MAX_HEXDUMP));
        }
    }
    print!("{out}");
    EXIT_OK
}

fn more(bytes: usize) -> String {
    format!("... {bytes} more bytes not shown (redirect stdout, or --raw, for the whole value)\n")
}

fn get_json(raw: &[u8], s: &Session) -> Json {
    let mut f = id_fields(raw);
    f.push(("found", true.into()));
    f.push(("key", term::escape(&s.key).into()));
    f.push(("node", s.node.to_string().into()));
    f.push(("bytes", s.value.len().into()));
    f.push((
        "ttl_seconds",
        match s.ttl {
            Ttl::Seconds(n) => Json::from(n),
            Ttl::Persistent => Json::Null,
        },
    ));
    match std::str::from_utf8(&s.value) {
        Ok(text) => {
            f.push(("encoding", "utf-8".into()));
            f.push(("value", text.into()));
        }
        Err(_) => {
            f.push(("encoding", "base64".into()));
            f.push(("value", term::base64(&s.value).into()));
        }
    }
    Json::obj(f)
}

fn del(ctx: &Ctx, admin: &mut Admin, id: SessionId<'_>) -> i32 {
    let raw = id.as_bytes();
    let deleted = match admin.delete_session(id) {
        Ok(d) => d,
        Err(e) => return failure(&e),
    };
    if ctx.json {
        let mut f = id_fields(raw);
        f.push(("deleted", deleted.is_some().into()));
        if let Some((node, command)) = &deleted {
            f.push(("node", node.to_string().into()));
            f.push(("command", (*command).into()));
        }
        print!("{}", Json::obj(f).render());
    }
    match deleted {
        Some((node, command)) => {
            if !ctx.json {
                println!(
                    "deleted session '{}' ({command} on {node})",
                    term::show_id(raw)
                );
            }
            EXIT_OK
        }
        None => {
            eprintln!(
                "ors-redis: no session '{}' in cluster-name {}",
                term::show_id(raw),
                ctx.config.cluster_name.as_str()
            );
            EXIT_FAIL
        }
    }
}

fn purge(ctx: &Ctx, admin: &mut Admin) -> i32 {
    let cluster = ctx.config.cluster_name.as_str();
    let masters = admin.masters();
    if !ctx.args.flag("yes") {
        let result = with_progress("counting", ctx.quiet, |progress| {
            admin.count_cluster_keys(progress)
        });
        let per_master = match result {
            Ok(c) => c,
            Err(e) => return failure(&e),
        };
        let total: u64 = per_master.iter().sum();
        if ctx.json {
            print!(
                "{}",
                Json::obj(vec![
                    ("cluster_name", cluster.into()),
                    ("purged", false.into()),
                    ("would_delete", total.into()),
                ])
                .render()
            );
        }
        eprintln!(
            "ors-redis: purge would delete {total} key(s) under ORS:{cluster}: on {} master(s); \
             nothing was deleted. Stop every ORS that uses cluster-name {cluster}, then run \
             'ors-redis sessions purge --yes'.",
            masters.len()
        );
        return EXIT_USAGE;
    }
    let result = with_progress("purging", ctx.quiet, |progress| admin.purge(progress));
    let report = match result {
        Ok(r) => r,
        Err(e) => return failure(&e),
    };
    if ctx.json {
        let per_master = per_master_json(&report.masters, &report.deleted_per_master, "deleted");
        print!(
            "{}",
            Json::obj(vec![
                ("cluster_name", cluster.into()),
                ("purged", true.into()),
                ("deleted", report.deleted.into()),
                ("masters", per_master),
                ("passes", u64::from(report.passes).into()),
                ("verified", report.verified.into()),
                ("found_in_last_pass", report.found_in_last_pass.into()),
            ])
            .render()
        );
    } else {
        print!(
            "{}",
            per_master_table(&report.masters, &report.deleted_per_master, "DELETED")
        );
        if report.verified {
            println!(
                "purged ORS:{cluster}: - {} key(s) deleted; pass {} found none left",
                report.deleted, report.passes
            );
        }
    }
    if report.verified {
        EXIT_OK
    } else {
        eprintln!(
            "ors-redis: keys under ORS:{cluster}: kept appearing ({} in pass {}): is an ORS still writing? \
             Stop it and purge again.",
            report.found_in_last_pass, report.passes
        );
        EXIT_FAIL
    }
}
