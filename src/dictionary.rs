//! A zstd dictionary as the envelope uses it: its bytes, its id, and what
//! zstd digests of it to compress (`Encoder`, for one level) and to
//! decompress (`Dictionary`). Nothing here talks to a node: dictionaries.rs
//! stores and finds them in the cluster, the operator command trains them
//! (`ors-redis dictionary train`). docs/compression.md says why and when.
//!
//! The id is the xxh32 of the bytes, so a reader checks what it fetched
//! against the id the envelope names: a dictionary that is not the one a
//! value was written with is refused, never used to decode garbage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::{Lazy, OnceCell};

use crate::error::{Error, ErrorKind, Result};

/// The largest dictionary the library loads (zstd's own guidance is about
/// 100 KiB; the operator command trains 16 KiB by default).
pub(crate) const MAX_DICTIONARY_BYTES: usize = 1 << 20;
/// The fewest samples a training is given: zstd's trainer needs many
/// examples of what repeats.
pub(crate) const MIN_TRAINING_SAMPLES: usize = 16;

/// How long a stored dictionary lives after its last store: 90 days, three
/// times `default-ttl`'s default, so that every value a put may write
/// names it. The same for every process, so that a store only lengthens
/// the key's life.
pub const DICTIONARY_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// How often a writer stores its dictionary again.
pub const KEEP_EVERY: Duration = Duration::from_secs(600);
/// How soon a writer tries again after a load or store failed.
pub const RETRY_EVERY: Duration = Duration::from_secs(30);
/// Between a put's own deadline and the dictionary's expiry: clocks of the
/// host and the node tick at slightly different rates.
const MARGIN: Duration = Duration::from_secs(60);

static PROCESS_START: Lazy<Instant> = Lazy::new(Instant::now);

/// Milliseconds on the process's monotonic clock.
pub(crate) fn now_ms() -> u64 {
    PROCESS_START.elapsed().as_millis() as u64
}

/// The id of a dictionary of `bytes`: the one a key and an envelope name.
pub fn id_of(bytes: &[u8]) -> u32 {
    xxhash_rust::xxh32::xxh32(bytes, 0)
}

/// How an id is written in a key, a config and a message: 8 hex digits.
pub fn format_id(id: u32) -> String {
    format!("{id:08x}")
}

/// An id as `format_id` writes it (8 hex digits, either case).
pub fn parse_id(text: &str) -> Option<u32> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// A dictionary, checked against its id and ready to decompress with.
pub struct Dictionary {
    id: u32,
    bytes: Box<[u8]>,
    ddict: zstd::zstd_safe::DDict<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dictionary({}, {} bytes)",
            format_id(self.id),
            self.bytes.len()
        )
    }
}

impl Dictionary {
    /// The dictionary of `bytes`, whose id is computed.
    pub fn new(bytes: &[u8]) -> Result<Dictionary> {
        Dictionary::named(id_of(bytes), bytes)
    }

    /// The dictionary a key (or an envelope) names `id`, from the bytes
    /// found there: refused unless they are that dictionary.
    pub fn named(id: u32, bytes: &[u8]) -> Result<Dictionary> {
        let bad = |detail: String| {
            Error::new(
                ErrorKind::Server,
                format!("compression dictionary {}: {detail}", format_id(id)),
            )
        };
        if bytes.is_empty() || bytes.len() > MAX_DICTIONARY_BYTES {
            return Err(bad(format!(
                "{} bytes (1 to {MAX_DICTIONARY_BYTES} expected)",
                bytes.len()
            )));
        }
        if id_of(bytes) != id {
            return Err(bad(format!(
                "the stored bytes are dictionary {}, not this one (overwritten or corrupt)",
                format_id(id_of(bytes))
            )));
        }
        let ddict = zstd::zstd_safe::DDict::try_create(bytes)
            .ok_or_else(|| bad("zstd cannot load it".into()))?;
        Ok(Dictionary {
            id,
            bytes: bytes.into(),
            ddict,
        })
    }

    /// Its id (the xxh32 of its bytes).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The bytes stored in the cluster.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What zstd decompresses a value of this dictionary with.
    pub(crate) fn ddict(&self) -> &zstd::zstd_safe::DDict<'static> {
        &self.ddict
    }

    /// What a writer at `level` compresses with.
    pub fn encoder(&self, level: i32) -> Result<Encoder> {
        let cdict = zstd::zstd_safe::CDict::try_create(&self.bytes, level).ok_or_else(|| {
            Error::new(
                ErrorKind::LocalResource,
                format!(
                    "compression dictionary {}: zstd cannot prepare it at level {level}",
                    format_id(self.id)
                ),
            )
        })?;
        Ok(Encoder {
            id: self.id,
            level,
            cdict,
        })
    }
}

/// A dictionary digested for compressing at one level.
pub struct Encoder {
    id: u32,
    level: i32,
    cdict: zstd::zstd_safe::CDict<'static>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoder({}, level {})", format_id(self.id), self.level)
    }
}

impl Encoder {
    /// The id of the dictionary it compresses with.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The zstd level it compresses at.
    pub fn level(&self) -> i32 {
        self.level
    }

    pub(crate) fn cdict(&self) -> &zstd::zstd_safe::CDict<'static> {
        &self.cdict
    }
}

/// The dictionary a writer compresses with (`compression-dictionary`), once
/// loaded, and how long its key is known to stay in the cluster
/// (dictionaries.rs loads and stores it).
pub struct Writing {
    id: u32,
    level: i32,
    loaded: OnceCell<(Arc<Dictionary>, Encoder)>,
    /// Until when (`now_ms`) the stored dictionary is known to live: the
    /// send time of the last store that succeeded, plus the TTL.
    kept_until_ms: AtomicU64,
}

impl Writing {
    /// The writer's dictionary `id` at zstd `level`, not loaded yet.
    pub fn new(id: u32, level: i32) -> Writing {
        Writing {
            id,
            level,
            loaded: OnceCell::new(),
            kept_until_ms: AtomicU64::new(0),
        }
    }

    /// The id of the dictionary (`compression-dictionary`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The zstd level it compresses at (`compression-level`).
    pub fn level(&self) -> i32 {
        self.level
    }

    /// The dictionary, once loaded.
    pub fn dictionary(&self) -> Option<&Arc<Dictionary>> {
        self.loaded.get().map(|(dictionary, _)| dictionary)
    }

    /// Takes the dictionary read from the cluster (the first load wins).
    pub fn load(&self, dictionary: Arc<Dictionary>) -> Result<Arc<Dictionary>> {
        let encoder = dictionary.encoder(self.level)?;
        let _ = self.loaded.set((dictionary.clone(), encoder));
        Ok(self.dictionary().cloned().unwrap_or(dictionary))
    }

    /// A store of the dictionary sent at `sent_ms` (`now_ms`) succeeded.
    pub fn stored(&self, sent_ms: u64) {
        self.kept_until_ms.fetch_max(
            sent_ms + DICTIONARY_TTL.as_millis() as u64,
            Ordering::Relaxed,
        );
    }

    /// The encoder for a value that lives `ttl_secs` and is written within
    /// `op_timeout`: `None` while the dictionary is not loaded, or not known
    /// to outlive such a value.
    #[inline]
    pub fn for_value(&self, ttl_secs: u32, op_timeout: Duration) -> Option<&Encoder> {
        let (_, encoder) = self.loaded.get()?;
        let needed =
            now_ms() + u64::from(ttl_secs) * 1000 + (op_timeout + MARGIN).as_millis() as u64;
        (needed <= self.kept_until_ms.load(Ordering::Relaxed)).then_some(encoder)
    }

    /// How long until the keeper stores it again: soon while it is not
    /// loaded or its last store is older than one period.
    pub fn next_store_in(&self) -> Duration {
        let fresh = self.loaded.get().is_some()
            && self.kept_until_ms.load(Ordering::Relaxed)
                >= now_ms() + (DICTIONARY_TTL - KEEP_EVERY).as_millis() as u64;
        if fresh {
            KEEP_EVERY
        } else {
            RETRY_EVERY
        }
    }
}

/// Trains a dictionary of at most `max_bytes` on `samples` (sessions as
/// ORS gave them): zstd's trainer (`ZDICT_trainFromBuffer`).
pub fn train<S: AsRef<[u8]>>(samples: &[S], max_bytes: usize) -> Result<Vec<u8>> {
    if samples.len() < MIN_TRAINING_SAMPLES {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "training a dictionary needs at least {MIN_TRAINING_SAMPLES} sessions, got {}",
                samples.len()
            ),
        ));
    }
    if !(256..=MAX_DICTIONARY_BYTES).contains(&max_bytes) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("a dictionary is 256 to {MAX_DICTIONARY_BYTES} bytes, not {max_bytes}"),
        ));
    }
    zstd::dict::from_samples(samples, max_bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "zstd could not train a dictionary on {} sessions: {e} (more, or more alike, sessions help)",
                samples.len()
            ),
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Session-like samples that share a vocabulary, as one site's do.
    pub(crate) fn samples(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                format!(
                    "{{\"session\":\"{i:08x}-4f2a\",\"state\":\"routing\",\"queue\":\"VQ_Sales_{}\",\
                     \"events\":[{{\"name\":\"interaction.added\",\"at\":{}}},{{\"name\":\"routing.target\",\
                     \"target\":\"Agent_{}@StatServer\"}}],\"attached\":{{\"CustomerSegment\":\"gold\",\
                     \"Language\":\"en-US\",\"CallerId\":\"+1555{:07}\"}}}}",
                    i % 7,
                    1_700_000_000 + i * 37,
                    i % 50,
                    i * 7919 % 10_000_000
                )
                .into_bytes()
            })
            .collect()
    }

    #[test]
    fn ids_are_8_hex_digits() {
        assert_eq!(format_id(0x1a2b_3c4d), "1a2b3c4d");
        assert_eq!(format_id(7), "00000007");
        assert_eq!(parse_id("1A2B3C4D"), Some(0x1a2b_3c4d));
        for bad in ["", "1a2b3c4", "1a2b3c4d5", "1a2b3c4g", "+1a2b3c4"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_dictionary_is_checked_against_its_id() {
        let bytes = train(&samples(200), 4096).unwrap();
        assert!(bytes.len() <= 4096);
        let dict = Dictionary::new(&bytes).unwrap();
        assert_eq!(dict.id(), id_of(&bytes));
        assert!(Dictionary::named(dict.id(), &bytes).is_ok());
        let e = Dictionary::named(dict.id() ^ 1, &bytes).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Server);
        assert!(e.message.contains("not this one"), "{}", e.message);
        let e = Dictionary::named(0, b"").unwrap_err();
        assert!(e.message.contains("0 bytes"), "{}", e.message);
        assert_eq!(dict.encoder(3).unwrap().level(), 3);
    }

    fn writing_with(kept_until_ms: u64) -> Writing {
        let bytes = train(&samples(100), 2048).unwrap();
        let writing = Writing::new(id_of(&bytes), 3);
        writing
            .load(Arc::new(Dictionary::new(&bytes).unwrap()))
            .unwrap();
        writing
            .kept_until_ms
            .store(kept_until_ms, Ordering::Relaxed);
        writing
    }

    /// A put names the dictionary only while the stored key outlives the
    /// value: its TTL, the call's op-timeout and the margin.
    #[test]
    fn a_value_names_the_dictionary_only_while_the_key_outlives_it() {
        let op = Duration::from_secs(5);
        let day = 24 * 3600;
        let fresh = writing_with(0);
        fresh.stored(now_ms());
        assert!(fresh.for_value(3600, op).is_some());
        assert!(
            fresh.for_value(30 * day, op).is_some(),
            "default-ttl's default"
        );
        assert!(fresh.for_value(89 * day, op).is_some());
        assert!(
            fresh.for_value(90 * day, op).is_none(),
            "no room for the margin"
        );
        let stale = writing_with(now_ms() + 2 * 3600 * 1000);
        assert!(stale.for_value(3600, op).is_some());
        assert!(stale.for_value(2 * 3600, op).is_none());
        let kept = fresh.kept_until_ms.load(Ordering::Relaxed);
        fresh.stored(now_ms().saturating_sub(1000));
        assert_eq!(
            fresh.kept_until_ms.load(Ordering::Relaxed),
            kept,
            "an older store never shortens what a newer one gave"
        );
        let never = writing_with(0);
        assert!(never.for_value(1, op).is_none());
        assert_eq!(fresh.next_store_in(), KEEP_EVERY);
        assert_eq!(stale.next_store_in(), RETRY_EVERY);
        let unloaded = Writing::new(1, 3);
        unloaded.stored(now_ms());
        assert!(unloaded.for_value(1, op).is_none());
        assert_eq!(unloaded.next_store_in(), RETRY_EVERY);
    }

    #[test]
    fn training_needs_enough_samples_and_a_sane_size() {
        let e = train(&samples(3), 4096).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("at least 16"), "{}", e.message);
        assert!(train(&samples(100), 10).is_err());
        assert!(train(&samples(100), MAX_DICTIONARY_BYTES + 1).is_err());
    }
}
