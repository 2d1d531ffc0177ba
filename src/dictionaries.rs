//! The compression dictionaries in the cluster. Each is stored under
//! `ORS:<cluster-name>:dict:<id>` (keys.rs), found by the id an envelope
//! names, checked against it and cached for the whole process ([`find`]).
//!
//! The writer's dictionary (`compression-dictionary`, with
//! `compression=zstd`) is a [`Writing`]: loaded at init (or reconfigure),
//! then stored again with a fresh TTL of [`DICTIONARY_TTL`] every
//! [`KEEP_EVERY`] by a keeper thread, which also puts the key back if it was
//! deleted. A put names the dictionary only while the key is known to
//! outlive the value: the last store's send time plus the TTL must be past
//! the value's own expiry (its TTL, the call's op-timeout and a margin).
//! A store can only lengthen the key's life (every store sets the same TTL,
//! from a later moment), so another process's store never shortens what
//! this one counted on. A put whose TTL the dictionary cannot cover (the
//! keeper could not store it for weeks, or a TTL near 90 days) is written
//! with zstd alone. docs/compression.md gives the operator's side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::{Lazy, OnceCell};
use parking_lot::Mutex;

use crate::client::Client;
use crate::config::Config;
use crate::dictionary::{self, Dictionary, Encoder};
use crate::envelope::Algorithm;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::key_slot;
use crate::live;
use crate::reply::{Bulk, Value};
use crate::resp::pack_command;
use crate::router::{route, Reply, Routes};

/// How long a stored dictionary lives after its last store: 90 days, three
/// times `default-ttl`'s default, so that every value a put may write
/// names it. The same for every process, so that a store only lengthens
/// the key's life.
pub const DICTIONARY_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// How often a writer stores its dictionary again.
pub const KEEP_EVERY: Duration = Duration::from_secs(600);
/// How soon a writer tries again after a load or store failed.
const RETRY_EVERY: Duration = Duration::from_secs(30);
/// Between a put's own deadline and the dictionary's expiry: clocks of the
/// host and the node tick at slightly different rates.
const MARGIN: Duration = Duration::from_secs(60);
/// How often the keeper looks whether its client is still the live one
/// (shutdown waits for it, as for a prober).
const TICK: Duration = Duration::from_millis(25);
/// Dictionaries a process keeps for reading (a site has one or a few).
const CACHE_MAX: usize = 64;

static CACHE: Mutex<Vec<Arc<Dictionary>>> = Mutex::new(Vec::new());
static PROCESS_START: Lazy<Instant> = Lazy::new(Instant::now);

/// Milliseconds on the process's monotonic clock.
fn now_ms() -> u64 {
    PROCESS_START.elapsed().as_millis() as u64
}

/// The dictionary `id`, from the process's cache or else read from the
/// cluster of `client` (one `GET`, on a connection of its own: a bulk read
/// asks for it in the middle of a pipeline).
pub fn find(client: &Client, id: u32) -> Result<Arc<Dictionary>> {
    if let Some(found) = CACHE.lock().iter().find(|d| d.id() == id) {
        return Ok(found.clone());
    }
    let key = client.keys.dictionary_key(id);
    let Some(bytes) = get(client, &key)? else {
        return Err(Error::new(
            ErrorKind::Server,
            format!(
                "value compressed with dictionary {}, which is not in the cluster (key {}): \
                 it was deleted or expired, or the cluster lost it (docs/compression.md)",
                dictionary::format_id(id),
                String::from_utf8_lossy(&key)
            ),
        ));
    };
    let found = Arc::new(Dictionary::named(id, &bytes)?);
    remember(found.clone());
    Ok(found)
}

fn remember(dictionary: Arc<Dictionary>) {
    let mut cache = CACHE.lock();
    if cache.iter().any(|d| d.id() == dictionary.id()) {
        return;
    }
    if cache.len() >= CACHE_MAX {
        cache.remove(0);
    }
    cache.push(dictionary);
}

/// Stores `dictionary` in the cluster of `client` with a TTL of
/// [`DICTIONARY_TTL`] (the operator command's training, and the keeper).
pub fn store(client: &Client, dictionary: &Arc<Dictionary>) -> Result<()> {
    let key = client.keys.dictionary_key(dictionary.id());
    let ttl = DICTIONARY_TTL.as_secs().to_string();
    let mut command = Vec::new();
    pack_command(
        &mut command,
        &[b"SET", &key, dictionary.bytes(), b"EX", ttl.as_bytes()],
    );
    let mut routes = Routes::default();
    route(
        client,
        &mut routes,
        key_slot(&key),
        client.config.socket_timeout,
        // The same bytes again: a retry after a lost reply changes nothing.
        &mut |conn| {
            conn.send(&command)?;
            match conn.receive()? {
                Value::Okay => Ok(Reply::Done(Stored)),
                Value::ServerError(e) => Ok(Reply::Error(e)),
                other => Err(unexpected("SET", &other)),
            }
        },
    )?;
    remember(dictionary.clone());
    Ok(())
}

/// What a store's `route` returns: a type of its own, so that its
/// instance of the generic router is not the one a put calls (a second
/// caller of that instance makes the compiler stop inlining it into the
/// put: +100 instructions per put with compression off, callgrind).
struct Stored;

fn get(client: &Client, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut command = Vec::new();
    pack_command(&mut command, &[b"GET", key]);
    let mut routes = Routes::default();
    route(
        client,
        &mut routes,
        key_slot(key),
        client.config.socket_timeout,
        &mut |conn| {
            conn.send(&command)?;
            match conn.receive_bulk()? {
                Bulk::Data(value) => Ok(Reply::Done(Some(value.as_slice().to_vec()))),
                Bulk::Nil => Ok(Reply::Done(None)),
                Bulk::Other(Value::ServerError(e)) => Ok(Reply::Error(e)),
                Bulk::Other(other) => Err(unexpected("GET", &other)),
            }
        },
    )
}

fn unexpected(command: &str, reply: &Value) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("unexpected reply to {command} of a compression dictionary: {reply:?}"),
    )
}

/// The dictionary a writer compresses with, and how long it is known to
/// stay in the cluster.
pub struct Writing {
    id: u32,
    level: i32,
    loaded: OnceCell<(Arc<Dictionary>, Encoder)>,
    /// Until when (`now_ms`) the stored dictionary is known to live: the
    /// send time of the last store that succeeded, plus the TTL.
    kept_until_ms: AtomicU64,
}

impl Writing {
    /// The writer's dictionary that `config` asks for, not loaded yet;
    /// `None` unless `compression=zstd` with `compression-dictionary`.
    pub fn for_config(config: &Config) -> Option<Writing> {
        let id = config.compression.dictionary?;
        (config.compression.algorithm == Algorithm::Zstd).then_some(Writing {
            id,
            level: config.compression.level,
            loaded: OnceCell::new(),
            kept_until_ms: AtomicU64::new(0),
        })
    }

    /// The id of the dictionary (`compression-dictionary`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether this writer's dictionary is the one `config` asks for.
    fn serves(&self, config: &Config) -> bool {
        config.compression.algorithm == Algorithm::Zstd
            && config.compression.dictionary == Some(self.id)
            && config.compression.level == self.level
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

    /// Loads the dictionary (the first time: [`find`]), then stores it
    /// again with a fresh TTL.
    pub fn keep(&self, client: &Client) -> Result<()> {
        let dictionary = match self.loaded.get() {
            Some((dictionary, _)) => dictionary.clone(),
            None => {
                let dictionary = find(client, self.id)?;
                let encoder = dictionary.encoder(self.level)?;
                let _ = self.loaded.set((dictionary.clone(), encoder));
                dictionary
            }
        };
        let sent = now_ms();
        store(client, &dictionary)?;
        self.kept_until_ms
            .fetch_max(sent + DICTIONARY_TTL.as_millis() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// The writer's dictionary of `client` (a new init's, or a reconfigure's,
/// where `previous` is the live client's): the previous one when the
/// settings still ask for it, else a new one, loaded and stored now (a
/// failure is logged, and the keeper tries again). Returns it when new,
/// for [`start_keeper`] once the client is live.
pub(crate) fn attach(client: &mut Client, previous: Option<&Client>) -> Option<Arc<Writing>> {
    if let Some(kept) = previous
        .and_then(|p| p.dictionary.as_ref())
        .filter(|w| w.serves(&client.config))
    {
        client.dictionary = Some(kept.clone());
        return None;
    }
    let compression = &client.config.compression;
    if let (Some(id), algorithm) = (compression.dictionary, compression.algorithm) {
        if algorithm != Algorithm::Zstd {
            tracing::warn!(
                dictionary = %dictionary::format_id(id),
                compression = algorithm.name(),
                "compression-dictionary is set, but only compression=zstd writes with a dictionary"
            );
        }
    }
    let writing = Arc::new(Writing::for_config(&client.config)?);
    if let Err(e) = writing.keep(client) {
        tracing::warn!(
            dictionary = %dictionary::format_id(writing.id),
            error = %e.message,
            "compression-dictionary: cannot use it yet; values are written with zstd alone until it can be loaded (tried again every {}s)",
            RETRY_EVERY.as_secs()
        );
    }
    client.dictionary = Some(writing.clone());
    Some(writing)
}

/// Starts the keeper of `writing`, the writer's dictionary of the live
/// client of `generation`: it stores the dictionary again every
/// [`KEEP_EVERY`] (every [`RETRY_EVERY`] while that fails) and ends when the
/// live client no longer writes with it, or at shutdown.
pub(crate) fn start_keeper(generation: u64, writing: Arc<Writing>) {
    let spawned = std::thread::Builder::new()
        .name("ors-redis-dict".into())
        .spawn(move || keep_while_live(generation, &writing));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the compression dictionary's keeper: it is stored again at the next init or reconfigure");
    }
}

fn keep_while_live(generation: u64, writing: &Arc<Writing>) {
    let _holds_sockets = live::Worker::enter();
    let mut next = Instant::now() + next_keep(writing);
    loop {
        let client = loop {
            let Some(client) = live::live_client()
                .ok()
                .filter(|c| c.generation == generation)
                .filter(|c| {
                    c.dictionary
                        .as_ref()
                        .is_some_and(|w| Arc::ptr_eq(w, writing))
                })
            else {
                return;
            };
            let now = Instant::now();
            if now >= next {
                break client;
            }
            drop(client);
            std::thread::sleep(TICK.min(next - now));
        };
        if let Err(e) = writing.keep(&client) {
            tracing::warn!(
                dictionary = %dictionary::format_id(writing.id),
                error = %e.message,
                "compression-dictionary: could not store it again; trying again in {}s",
                RETRY_EVERY.as_secs()
            );
        }
        next = Instant::now() + next_keep(writing);
    }
}

/// How long until the keeper stores `writing` again: soon while it is not
/// loaded or its last store is older than one period.
fn next_keep(writing: &Writing) -> Duration {
    let fresh = writing.loaded.get().is_some()
        && writing.kept_until_ms.load(Ordering::Relaxed)
            >= now_ms() + (DICTIONARY_TTL - KEEP_EVERY).as_millis() as u64;
    if fresh {
        KEEP_EVERY
    } else {
        RETRY_EVERY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writing_with(kept_until_ms: u64) -> Writing {
        let samples = crate::dictionary::tests::samples(100);
        let bytes = crate::dictionary::train(&samples, 2048).unwrap();
        let dictionary = Arc::new(Dictionary::new(&bytes).unwrap());
        let encoder = dictionary.encoder(3).unwrap();
        let writing = Writing {
            id: dictionary.id(),
            level: 3,
            loaded: OnceCell::new(),
            kept_until_ms: AtomicU64::new(kept_until_ms),
        };
        let _ = writing.loaded.set((dictionary, encoder));
        writing
    }

    /// A put names the dictionary only while the stored key outlives the
    /// value: its TTL, the call's op-timeout and the margin.
    #[test]
    fn a_value_names_the_dictionary_only_while_the_key_outlives_it() {
        let op = Duration::from_secs(5);
        let day = 24 * 3600;
        let fresh = writing_with(now_ms() + DICTIONARY_TTL.as_millis() as u64);
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
        let never = writing_with(0);
        assert!(never.for_value(1, op).is_none());
        assert_eq!(next_keep(&fresh), KEEP_EVERY);
        assert_eq!(next_keep(&stale), RETRY_EVERY);
        let unloaded = Writing {
            loaded: OnceCell::new(),
            ..writing_with(u64::MAX)
        };
        assert!(unloaded.for_value(1, op).is_none());
        assert_eq!(next_keep(&unloaded), RETRY_EVERY);
    }

    #[test]
    fn the_cache_is_bounded_and_finds_by_id() {
        let samples = crate::dictionary::tests::samples(100);
        let bytes = crate::dictionary::train(&samples, 1024).unwrap();
        let first = Arc::new(Dictionary::new(&bytes).unwrap());
        remember(first.clone());
        remember(first.clone());
        assert_eq!(
            CACHE.lock().iter().filter(|d| d.id() == first.id()).count(),
            1
        );
        for n in 0..CACHE_MAX as u8 {
            let mut other = bytes.clone();
            other.push(n);
            remember(Arc::new(Dictionary::new(&other).unwrap()));
        }
        assert!(CACHE.lock().len() <= CACHE_MAX);
    }
}
