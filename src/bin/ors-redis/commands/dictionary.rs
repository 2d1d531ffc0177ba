//! `ors-redis dictionary train`: a zstd dictionary trained on the cluster's
//! own sessions, measured on sessions it was not trained on, and stored
//! under `ORS:<cluster-name>:dict:<id>` for `compression-dictionary=<id>`
//! (docs/compression.md, "Dictionaries").
//!
//! The sample is spread over the sorted ids (so over every master and every
//! ORS node's ids); one session in five is kept out of the training to
//! measure it, so that the figures are what new sessions will see, not what
//! the dictionary memorised.

use std::sync::Arc;

use serde::Serialize;

use ors_redis::dictionaries;
use ors_redis::dictionary::{self, Dictionary, DICTIONARY_TTL};
use ors_redis::envelope::{self, Algorithm, Compression};
use ors_redis::operator::{Error, ErrorKind, KeyBuilder, Result};

use crate::cli::DictionaryCommand;
use crate::cluster::Cluster;
use crate::ctx::{failure, Ctx, EXIT_OK};
use crate::output::{self, Table};
use crate::progress::{with_progress, ProgressFn};

/// What the figures call small: the sizes a dictionary helps most.
const SMALL_BYTES: usize = 2048;
/// The level the figures are measured at (`compression-level`'s default).
const LEVEL: i32 = 3;
/// `compression-min-bytes` with a dictionary: with one, even a session of
/// a hundred bytes shrinks by half (without, the default 256 holds).
const DICTIONARY_MIN_BYTES: usize = 64;
/// The fewest sessions a training reads: four in five train (zstd's
/// trainer wants many), one in five measures.
const MIN_SESSIONS: usize = 20;

pub(crate) fn run(ctx: &Ctx, command: &DictionaryCommand) -> i32 {
    let DictionaryCommand::Train {
        bytes,
        sample,
        dry_run,
        prefix,
    } = command;
    match train(ctx, *bytes as usize, *sample, *dry_run, prefix.as_bytes()) {
        Ok(report) => {
            if ctx.json {
                output::json("dictionary_train", true, &report);
            } else {
                output::print(&to_text(&report));
            }
            EXIT_OK
        }
        Err(e) => failure(ctx, "dictionary_train", &e),
    }
}

/// What a training did and measured.
#[derive(Debug, Serialize)]
struct Report {
    id: String,
    key: String,
    dictionary_bytes: usize,
    trained_on: usize,
    measured_on: usize,
    /// Stored in the cluster (not with --dry-run).
    stored: bool,
    ttl_days: u64,
    small: Saving,
    all: Saving,
    config: String,
}

/// Stored bytes over given bytes, envelope included, on the held-out
/// sessions of one size class.
#[derive(Debug, Default, Serialize)]
struct Saving {
    sessions: usize,
    given_bytes: u64,
    zstd_bytes: u64,
    zstd_dictionary_bytes: u64,
}

impl Saving {
    fn add(&mut self, given: usize, zstd: usize, with_dictionary: usize) {
        self.sessions += 1;
        self.given_bytes += given as u64;
        self.zstd_bytes += zstd as u64;
        self.zstd_dictionary_bytes += with_dictionary as u64;
    }

    fn saved(&self, stored: u64) -> f64 {
        if self.given_bytes == 0 {
            0.0
        } else {
            100.0 * (1.0 - stored as f64 / self.given_bytes as f64)
        }
    }
}

fn train(ctx: &Ctx, max_bytes: usize, sample: u64, dry_run: bool, prefix: &[u8]) -> Result<Report> {
    let mut admin = Cluster::connect(ctx.config.clone())?;
    let values = with_progress("sampling", ctx.quiet, |progress| {
        sample_values(&mut admin, sample, prefix, progress)
    })?;
    if values.len() < MIN_SESSIONS {
        return Err(Error::new(
            ErrorKind::Cluster,
            format!(
                "{} session(s) of cluster name {} read: training needs at least {MIN_SESSIONS} \
                 (train once ORS has stored a day's sessions)",
                values.len(),
                ctx.config.cluster_name.as_str()
            ),
        ));
    }
    let (held_out, training): (Vec<_>, Vec<_>) = values
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 5 == 4);
    let training: Vec<Vec<u8>> = training.into_iter().map(|(_, v)| v).collect();
    let held_out: Vec<Vec<u8>> = held_out.into_iter().map(|(_, v)| v).collect();
    let bytes = dictionary::train(&training, max_bytes)?;
    let trained = Arc::new(Dictionary::new(&bytes)?);
    let (small, all) = measure(&trained, &held_out)?;
    if !dry_run {
        dictionaries::store(&admin.client, &trained)?;
    }
    let id = dictionary::format_id(trained.id());
    Ok(Report {
        key: String::from_utf8_lossy(&admin.client.keys.dictionary_key(trained.id())).into_owned(),
        dictionary_bytes: bytes.len(),
        trained_on: training.len(),
        measured_on: held_out.len(),
        stored: !dry_run,
        ttl_days: DICTIONARY_TTL.as_secs() / 86_400,
        small,
        all,
        config: format!(
            "compression=zstd compression-dictionary={id} compression-min-bytes={DICTIONARY_MIN_BYTES}"
        ),
        id,
    })
}

/// Up to `sample` values (as ORS gave them) of the sessions whose id starts
/// with `prefix`, spread over the ids.
fn sample_values(
    admin: &mut Cluster,
    sample: u64,
    prefix: &[u8],
    progress: &mut ProgressFn<'_>,
) -> Result<Vec<Vec<u8>>> {
    let listing = admin.list_sessions(prefix, progress)?;
    let per_master = listing.strided_sample(sample, &KeyBuilder::new(&admin.config().cluster_name));
    let mut values = Vec::new();
    admin.read_sampled(&listing.masters, &per_master, &mut |_, _, value| {
        values.push(value.to_vec())
    })?;
    Ok(values)
}

/// zstd at `LEVEL` with and without `trained`, on `held_out`: the small
/// sessions, and all of them.
fn measure(trained: &Arc<Dictionary>, held_out: &[Vec<u8>]) -> Result<(Saving, Saving)> {
    let settings = Compression {
        algorithm: Algorithm::Zstd,
        level: LEVEL,
        min_bytes: 0,
        dictionary: Some(trained.id()),
    };
    let encoder = trained.encoder(LEVEL)?;
    let (mut small, mut all) = (Saving::default(), Saving::default());
    let (mut out, mut out_dictionary) = (Vec::new(), Vec::new());
    for value in held_out {
        let zstd = envelope::seal(&settings, None, value, &mut out).len();
        let with = envelope::seal(&settings, Some(&encoder), value, &mut out_dictionary).len();
        all.add(value.len(), zstd, with);
        if value.len() <= SMALL_BYTES {
            small.add(value.len(), zstd, with);
        }
    }
    Ok((small, all))
}

fn to_text(r: &Report) -> String {
    let mut out = format!(
        "Dictionary {} ({} bytes), trained on {} session(s), measured on {} others.\n\n",
        r.id, r.dictionary_bytes, r.trained_on, r.measured_on
    );
    let mut table = Table::new(&["SESSIONS", "COUNT", "ZSTD-3 SAVES", "WITH THE DICTIONARY"]);
    for (name, s) in [("up to 2 KiB", &r.small), ("all", &r.all)] {
        table.row(vec![
            name.to_string(),
            s.sessions.to_string(),
            format!("{:.1}%", s.saved(s.zstd_bytes)),
            format!("{:.1}%", s.saved(s.zstd_dictionary_bytes)),
        ]);
    }
    out.push_str(&table.render());
    if r.stored {
        out.push_str(&format!(
            "\nStored as {} (TTL {} days; every ORS writing with it stores it again).\n\
             To write with it, in every ORS's persistence section:\n  {}\n",
            r.key, r.ttl_days, r.config
        ));
    } else {
        out.push_str("\n--dry-run: not stored.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savings_are_measured_on_sessions_the_dictionary_did_not_see() {
        let sessions: Vec<Vec<u8>> = (0..300)
            .map(|i| {
                format!(
                    "{{\"session\":\"{i:08x}\",\"queue\":\"VQ_Sales_{}\",\"state\":\"routing\",\
                     \"attached\":{{\"Language\":\"en-US\",\"Segment\":\"gold\",\"n\":{}}}}}",
                    i % 7,
                    i * 7919
                )
                .into_bytes()
            })
            .collect();
        let trained =
            Arc::new(Dictionary::new(&dictionary::train(&sessions[..240], 4096).unwrap()).unwrap());
        let (small, all) = measure(&trained, &sessions[240..]).unwrap();
        assert_eq!((small.sessions, all.sessions), (60, 60));
        assert!(
            small.saved(small.zstd_dictionary_bytes) > small.saved(small.zstd_bytes) + 10.0,
            "{small:?}"
        );
        let text = to_text(&Report {
            id: "1a2b3c4d".into(),
            key: "ORS:T:dict:1a2b3c4d".into(),
            dictionary_bytes: 4096,
            trained_on: 240,
            measured_on: 60,
            stored: true,
            ttl_days: 90,
            small,
            all,
            config: "compression=zstd compression-dictionary=1a2b3c4d compression-min-bytes=64"
                .into(),
        });
        assert!(text.contains("compression-dictionary=1a2b3c4d"), "{text}");
        assert!(text.contains("up to 2 KiB"), "{text}");
    }
}
