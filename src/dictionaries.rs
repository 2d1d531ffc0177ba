//! The compression dictionaries in the cluster. Each is stored under
//! `ORS:<cluster-name>:dict:<id>` (keys.rs), found by the id an envelope
//! names, checked against it and cached for the whole process ([`find`]).
//!
//! The writer's dictionary (`compression-dictionary`, with
//! `compression=zstd`) is a [`Writing`]: loaded at init (or reconfigure),
//! then stored again with a fresh TTL of [`DICTIONARY_TTL`] every
//! [`dictionary::KEEP_EVERY`] by a keeper thread, which also puts the key back if it was
//! deleted. A put names the dictionary only while the key is known to
//! outlive the value: the last store's send time plus the TTL must be past
//! the value's own expiry (its TTL, the call's op-timeout and a margin).
//! A store can only lengthen the key's life (every store sets the same TTL,
//! from a later moment), so another process's store never shortens what
//! this one counted on. A put whose TTL the dictionary cannot cover (the
//! keeper could not store it for weeks, or a TTL near 90 days) is written
//! with zstd alone. docs/compression.md gives the operator's side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::client::Client;
use crate::config::Config;
use crate::dictionary::{self, now_ms, Dictionary, Writing, DICTIONARY_TTL, RETRY_EVERY};
use crate::envelope::Algorithm;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::key_slot;
use crate::live;
use crate::reply::{Bulk, Value};
use crate::resp::pack_command;
use crate::router::{route, Reply, Routes};

/// How often the keeper looks whether its client is still the live one
/// (shutdown waits for it, as for a prober).
const TICK: Duration = Duration::from_millis(25);
/// Dictionaries a process keeps for reading (a site has one or a few).
const CACHE_MAX: usize = 64;

static CACHE: Mutex<Vec<Arc<Dictionary>>> = Mutex::new(Vec::new());

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

/// The writer's dictionary that `config` asks for, not loaded yet; `None`
/// unless `compression=zstd` with `compression-dictionary`.
pub fn writing_for(config: &Config) -> Option<Writing> {
    let compression = &config.compression;
    let id = compression.dictionary?;
    (compression.algorithm == Algorithm::Zstd).then(|| Writing::new(id, compression.level))
}

/// Whether `writing` is the dictionary `config` asks for.
fn serves(writing: &Writing, config: &Config) -> bool {
    config.compression.algorithm == Algorithm::Zstd
        && config.compression.dictionary == Some(writing.id())
        && config.compression.level == writing.level()
}

/// Loads the writer's dictionary (the first time: [`find`]), then stores
/// it again with a fresh TTL.
pub fn keep(writing: &Writing, client: &Client) -> Result<()> {
    let dictionary = match writing.dictionary() {
        Some(dictionary) => dictionary.clone(),
        None => writing.load(find(client, writing.id())?)?,
    };
    let sent = now_ms();
    store(client, &dictionary)?;
    writing.stored(sent);
    Ok(())
}

/// The writer's dictionary of `client` (a new init's, or a reconfigure's,
/// where `previous` is the live client's): the previous one when the
/// settings still ask for it, else a new one, loaded and stored now (a
/// failure is logged, and the keeper tries again). Returns it when new,
/// for [`start_keeper`] once the client is live.
pub(crate) fn attach(client: &mut Client, previous: Option<&Client>) -> Option<Arc<Writing>> {
    if let Some(kept) = previous
        .and_then(|p| p.dictionary.as_ref())
        .filter(|w| serves(w, &client.config))
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
    let writing = Arc::new(writing_for(&client.config)?);
    if let Err(e) = keep(&writing, client) {
        tracing::warn!(
            dictionary = %dictionary::format_id(writing.id()),
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
/// [`dictionary::KEEP_EVERY`] (every [`RETRY_EVERY`] while that fails) and ends when the
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
    let mut next = Instant::now() + writing.next_store_in();
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
        if let Err(e) = keep(writing, &client) {
            tracing::warn!(
                dictionary = %dictionary::format_id(writing.id()),
                error = %e.message,
                "compression-dictionary: could not store it again; trying again in {}s",
                RETRY_EVERY.as_secs()
            );
        }
        next = Instant::now() + writing.next_store_in();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
