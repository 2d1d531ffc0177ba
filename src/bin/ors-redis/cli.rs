//! The command line, declared once: clap derives the parser, the help of
//! every command, "did you mean", the `ORS_REDIS_CONFIG` fallback and the
//! shell completions from these types and their doc comments.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_STATUS: &str = "\
Exit status: 0 success (checks passed or warned); 1 a check failed, or the
operation did not succeed; 2 usage or config error. On a closed pipe
(`| head`) the command stops quietly.";

/// The operator command of ors-redis, session persistence for Genesys
/// Orchestration Server (ORS) on a Redis Cluster.
#[derive(Debug, Parser)]
#[command(name = "ors-redis", version, after_help = EXIT_STATUS)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The library's config string, as ORS passes it:
    /// 'redis-nodes=10.0.0.1:7000;10.0.0.2:7000 cluster-name=ORS_EU'
    #[arg(
        short = 'c',
        long,
        global = true,
        value_name = "STRING",
        env = "ORS_REDIS_CONFIG",
        hide_env_values = true
    )]
    pub config: Option<String>,
    /// ORS's persistence section as key=value lines ('#' comments; in a
    /// file with [sections], only [persistence] is read)
    #[arg(short = 'f', long, global = true, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// One JSON document on stdout (schema_version, command, ok, result)
    /// instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress display or notes on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log more on stderr: -v info, -vv debug, -vvv trace (else the
    /// config's log-level)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check the live cluster against what ORS recommends
    ///
    /// One row per finding with pass, warn or fail and the reason:
    ///
    ///   seed              a node of redis-nodes that is no cluster node
    ///                     (standalone, Sentinel) or cannot be reached
    ///   node              every node reachable and not marked failed
    ///   failover          a master down and the replica taking over
    ///   permission        commands the ACL user may not run
    ///   cluster_state     cluster_state:ok everywhere, all 16384 slots served
    ///   open_slots        no slot migrating or importing (resharding left open)
    ///   slot_map          every node sees the same slot map
    ///   masters           at least 3 masters serving slots
    ///   replicas          each master has a working replica on another host
    ///                     (on the same host: warn, as on a local test cluster)
    ///   aof               appendonly yes on every node, replicas too
    ///   appendfsync       everysec or always (no: warn)
    ///   maxmemory_policy  noeviction everywhere (every session key has a
    ///                     TTL, so even volatile-* policies evict live sessions)
    ///   memory            used_memory below 75% of maxmemory (90%: fail)
    ///   version           one server version, 4.0 or newer (UNLINK)
    ///   auth              a password, and nodes that refuse clients without one
    ///   tls               tls-enabled=true (otherwise warn)
    ///   latency           PING round trip, median of 5 (5 ms or more: warn)
    ///
    /// Exit status: 0 every check passed or warned; 1 any check failed (the
    /// cluster cannot be reached, a seed is no cluster node); 2 usage or
    /// config error.
    #[command(verbatim_doc_comment)]
    Doctor,
    /// Size the cluster: ORS's rules and a projection measured on it
    ///
    /// ORS's sizing rules, turned into numbers for your plan:
    ///   - at least 3 Redis masters, and about 3 per 9 ORS HA pairs:
    ///     masters = max(3, ceil(pairs / 3)), each with a replica on another host;
    ///   - each Redis node with memory similar to an ORS application node's.
    ///
    /// Then a projection measured on this cluster: the sessions of this
    /// cluster name are counted on every master (SCAN), up to --sample of
    /// them measured with MEMORY USAGE (+72 bytes each for the TTL entry and
    /// table slots), or with STRLEN and an estimate where MEMORY USAGE is
    /// refused (the output says which). Each master's memory is projected
    /// for its share of the planned sessions and compared with its budget:
    /// its maxmemory, or, without one, the host's RAM divided by the Redis
    /// nodes on that host (the output says which).
    ///
    /// SIZE: bytes, or with a K, M, G or T suffix (powers of 1024).
    ///
    /// Exit status: 0 the projection fits; 1 a master would go over its
    /// budget, or fewer than 3 masters; 2 usage or config error.
    #[command(verbatim_doc_comment)]
    Capacity(CapacityArgs),
    /// Inspect, clean up, export and import one ORS cluster name's sessions
    ///
    /// The sessions of the cluster name in the config, stored under
    /// ORS:<cluster-name>:{<session-id>}. Listings use SCAN on every master,
    /// never KEYS; each id is reported once. Long scans show progress on
    /// stderr (redrawn on a terminal, plain lines otherwise, none with
    /// TERM=dumb or --quiet).
    #[command(subcommand, verbatim_doc_comment)]
    Sessions(SessionsCommand),
    /// Compression dictionaries for compression=zstd (docs/compression.md)
    #[command(subcommand, verbatim_doc_comment)]
    Dictionary(DictionaryCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// e.g. ors-redis completions bash > /etc/bash_completion.d/ors-redis
    #[command(verbatim_doc_comment)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CapacityArgs {
    /// ORS HA pairs (primary + backup) that use this cluster
    #[arg(long, value_name = "N", value_parser = |s: &str| number(s, 1, 1_000_000))]
    pub ors_pairs: Option<u64>,
    /// Sessions to plan for, all ORS nodes together (default for the
    /// projection: as many as now)
    #[arg(long, value_name = "N", value_parser = |s: &str| number(s, 0, 1_000_000_000_000))]
    pub sessions: Option<u64>,
    /// Average session size, for the rules (4096, 4K, ...)
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| size(s, 512 << 20))]
    pub avg_bytes: Option<u64>,
    /// Memory of one ORS application node (16G, ...)
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| size(s, 1 << 50))]
    pub ors_memory: Option<u64>,
    /// Sessions to measure at most (0: none)
    #[arg(long, value_name = "N", default_value = "1000",
          value_parser = |s: &str| number(s, 0, 1_000_000))]
    pub sample: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// The session ids, sorted, with their master
    ///
    /// --prefix P keeps the ids that start with P (taken literally: * ? [ ]
    /// are not wildcards). The number found goes to stderr unless --quiet.
    ///
    /// Exit status: 0 listed (even none); 1 the cluster could not be
    /// scanned; 2 usage or config error.
    #[command(verbatim_doc_comment)]
    List {
        /// Only ids starting with this text
        #[arg(long, value_name = "P", default_value = "")]
        prefix: String,
    },
    /// How many sessions, per master and in total
    ///
    /// Exit status: 0 counted; 1 the cluster could not be scanned; 2 usage
    /// or config error.
    #[command(verbatim_doc_comment)]
    Count {
        /// Only ids starting with this text
        #[arg(long, value_name = "P", default_value = "")]
        prefix: String,
    },
    /// One session's value and TTL
    ///
    /// When stdout is not a terminal the value goes out raw, byte for byte
    /// (ors-redis sessions get ID > state.bin), and a summary line goes to
    /// stderr. On a terminal it is shown as text (control characters escaped
    /// as \xNN) or, for binary values, as a hexdump. With --json: the TTL
    /// and the value (as text when it is UTF-8, else base64: see "encoding").
    ///
    /// Exit status: 0 found; 1 no such session (or an error); 2 usage or
    /// config error.
    #[command(verbatim_doc_comment)]
    Get {
        /// The session id (after -- if it starts with -)
        id: OsString,
        /// The value byte for byte, also on a terminal
        #[arg(long, conflicts_with = "escaped")]
        raw: bool,
        /// The value escaped or as a hexdump, also off a terminal
        #[arg(long)]
        escaped: bool,
    },
    /// Delete one session (UNLINK; DEL before Redis 4.0)
    ///
    /// Exit status: 0 deleted; 1 no such session (or an error); 2 usage or
    /// config error.
    #[command(verbatim_doc_comment)]
    Del {
        /// The session id
        id: OsString,
    },
    /// Write every session (id, value, TTL) as one stream
    ///
    /// The stream is JSON lines (docs/operators.md, "The session stream"):
    /// a header with the cluster name and the time, one line per session
    /// with its value in base64 and its remaining TTL, and an end line.
    /// It goes to --file, or to stdout when that is not a terminal; a
    /// summary goes to stderr. With --json the envelope goes to stdout, so
    /// the stream needs --file.
    ///
    /// Exit status: 0 every session written; 1 the cluster could not be
    /// read or the output not written (the stream then has no end line,
    /// and import says so); 2 usage or config error.
    #[command(verbatim_doc_comment)]
    Export {
        /// Only ids starting with this text
        #[arg(long, value_name = "P", default_value = "")]
        prefix: String,
        /// Write the stream to this file (created or replaced) instead of stdout
        #[arg(long, value_name = "F")]
        file: Option<PathBuf>,
    },
    /// Write the sessions of a stream into the cluster, keeping each TTL
    ///
    /// Reads a stream of 'sessions export' from --file, or from stdin when
    /// that is not a terminal, and writes each session under the config's
    /// cluster name with SET ... PX <ttl> NX, pipelined to every master at
    /// once. Each session keeps the TTL it had at the export, less the time
    /// since: one whose TTL ran out meanwhile is skipped (counted as
    /// expired). A session that exists already is kept (counted as kept
    /// existing) unless --overwrite. The summary goes to stdout.
    ///
    /// Exit status: 0 every session imported, kept or expired; 1 some were
    /// refused, the stream was cut short or has a bad line (the lines
    /// before it were imported), or the cluster failed; 2 usage or config
    /// error, or the input is no session stream (nothing was written).
    #[command(verbatim_doc_comment)]
    Import {
        /// Read the stream from this file instead of stdin
        #[arg(long, value_name = "F")]
        file: Option<PathBuf>,
        /// Replace sessions that exist already (else they are kept)
        #[arg(long)]
        overwrite: bool,
        /// Import a stream whose header names another cluster name, under
        /// the config's
        #[arg(long)]
        rename: bool,
    },
    /// Delete every key under ORS:<cluster-name>: (decommissioning)
    ///
    /// Stop every ORS that uses this cluster name first. It scans again
    /// afterwards until a pass finds nothing left (at most 4 passes).
    /// Without --yes nothing is deleted: it counts what it would delete,
    /// says so, and exits with status 2.
    ///
    /// Exit status: 0 purged and verified; 1 keys kept appearing (is an ORS
    /// still writing?) or an error; 2 without --yes, usage or config error.
    #[command(verbatim_doc_comment)]
    Purge {
        /// Really delete
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DictionaryCommand {
    /// Train a zstd dictionary on this cluster's sessions and store it
    ///
    /// Reads up to --sample sessions (spread over every master), trains a
    /// dictionary of at most --bytes on four in five of them and measures
    /// zstd level 3 with and without it on the fifth: sessions up to 2 KiB,
    /// and all. Then stores it under ORS:<cluster-name>:dict:<id> with a
    /// TTL of 90 days (every ORS that writes with it stores it again) and
    /// prints the config line that uses it:
    ///   compression=zstd compression-dictionary=<id> compression-min-bytes=64
    /// Every reader of this version finds a dictionary by the id a value
    /// names; set it on the writers only.
    ///
    /// Exit status: 0 trained (and stored, unless --dry-run); 1 too few
    /// sessions to train on, or the cluster failed; 2 usage or config error.
    #[command(verbatim_doc_comment)]
    Train {
        /// Largest dictionary size (16K, ...)
        #[arg(long, value_name = "SIZE", default_value = "16K",
              value_parser = |s: &str| size(s, 1 << 20))]
        bytes: u64,
        /// Sessions to read at most
        #[arg(long, value_name = "N", default_value = "5000",
              value_parser = |s: &str| number(s, 20, 1_000_000))]
        sample: u64,
        /// Measure only: do not store the dictionary
        #[arg(long)]
        dry_run: bool,
        /// Only sessions whose id starts with this text (one ORS
        /// application's, say)
        #[arg(long, value_name = "P", default_value = "")]
        prefix: String,
    },
}

/// Digits, with `_` or `,` allowed as separators (`200_000`), in `min..=max`.
fn number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    match parse_number(text) {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {min} to {max}")),
    }
}

/// Bytes, or with a K, M, G or T suffix (powers of 1024), at most `max`.
fn size(text: &str, max: u64) -> Result<u64, String> {
    match parse_size(text) {
        Some(n) if n <= max => Ok(n),
        _ => Err(format!(
            "must be a size in bytes (e.g. 4096, 4K, 16G), at most {max}"
        )),
    }
}

fn parse_number(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(|c| !matches!(c, '_' | ',')).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, shift) = match t.chars().last()?.to_ascii_uppercase() {
        'K' => (&t[..t.len() - 1], 10),
        'M' => (&t[..t.len() - 1], 20),
        'G' => (&t[..t.len() - 1], 30),
        'T' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    parse_number(number)?.checked_mul(1u64 << shift)
}

impl SessionsCommand {
    /// `sessions list` etc. as the JSON envelope's `command`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SessionsCommand::List { .. } => "sessions_list",
            SessionsCommand::Count { .. } => "sessions_count",
            SessionsCommand::Get { .. } => "sessions_get",
            SessionsCommand::Del { .. } => "sessions_del",
            SessionsCommand::Purge { .. } => "sessions_purge",
            SessionsCommand::Export { .. } => "sessions_export",
            SessionsCommand::Import { .. } => "sessions_import",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn numbers_and_sizes() {
        assert_eq!(number("200_000", 0, u64::MAX), Ok(200_000));
        assert!(number("-5", 0, 10).is_err());
        assert!(number("11", 0, 10).unwrap_err().contains("from 0 to 10"));
        assert_eq!(size("4K", u64::MAX), Ok(4096));
        assert_eq!(size("16GiB", u64::MAX), Ok(16 << 30));
        for bad in ["", "x", "1.5", "K", "99999999999T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("2m"), Some(2 << 20));
    }

    #[test]
    fn options_anywhere_and_ids_after_a_double_dash() {
        let cli = Cli::try_parse_from(["ors-redis", "--json", "sessions", "list", "--prefix=ab"])
            .unwrap();
        assert!(cli.global.json);
        assert!(
            matches!(cli.command, Command::Sessions(SessionsCommand::List { prefix }) if prefix == "ab")
        );
        let cli = Cli::try_parse_from(["ors-redis", "sessions", "get", "--", "-odd-id"]).unwrap();
        assert!(
            matches!(cli.command, Command::Sessions(SessionsCommand::Get { id, .. }) if id == "-odd-id")
        );
        let e = Cli::try_parse_from(["ors-redis", "doctr"]).unwrap_err();
        assert!(e.to_string().contains("doctor"), "did you mean: {e}");
    }
}
