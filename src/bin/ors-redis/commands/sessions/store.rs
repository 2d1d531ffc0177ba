//! One ORS cluster's sessions, for operators: list and count them, read or
//! delete one, and purge every key of the cluster name when it is
//! decommissioned.
//!
//! Listings are `SCAN cursor MATCH pattern COUNT 1000` on every master, never
//! `KEYS` (which blocks a node while it walks its whole keyspace). `SCAN` may
//! return a key twice, so ids are deduplicated. Deleting keys during a `SCAN`
//! is safe: keys present for the whole scan are still returned. One
//! session's read or delete goes through the library's router.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use ors_redis::operator::{
    pack_command, Bulk, Error, ErrorKind, KeyBuilder, NodeAddr, NodeCursor, Page, Reply,
    ReplyClass, Result, ServerError, SessionId, Value,
};
use ors_redis::{dictionaries, envelope};

use crate::cluster::{unexpected, Cluster};
use crate::progress::{ProgressFn, ScanProgress};

/// Purge scans again until a pass finds nothing, at most this often.
const MAX_PURGE_PASSES: u32 = 4;

/// What a page visitor of [`Cluster::scan_keys`] gets: the cluster handle (to
/// run commands), the master's index and address, and the keys of one page.
pub(crate) type PageFn<'a> =
    dyn FnMut(&mut Cluster, usize, &NodeAddr, Vec<Vec<u8>>) -> Result<()> + 'a;

/// A session's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ttl {
    Seconds(u64),
    /// The key has no TTL (the library never writes one like that).
    Persistent,
}

/// One session as stored.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub key: Vec<u8>,
    pub node: NodeAddr,
    pub value: Vec<u8>,
    pub ttl: Ttl,
}

/// The sessions a scan found, each with the index of its master.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Sorted by id.
    pub ids: Vec<(Vec<u8>, usize)>,
    pub masters: Vec<NodeAddr>,
    pub per_master: Vec<u64>,
}

/// What a purge did.
#[derive(Debug, Default)]
pub(crate) struct PurgeReport {
    pub masters: Vec<NodeAddr>,
    pub deleted_per_master: Vec<u64>,
    pub deleted: u64,
    pub passes: u32,
    /// The last pass found no key left.
    pub verified: bool,
    /// Keys the last pass still found (when not verified).
    pub found_in_last_pass: u64,
}

impl Listing {
    /// The keys of up to `limit` of the listed sessions, evenly strided
    /// over the sorted ids (so spread over every master and every ORS
    /// node's ids), grouped by master (in `masters` order).
    pub(crate) fn strided_sample(&self, limit: u64, layout: &KeyBuilder) -> Vec<Vec<Vec<u8>>> {
        let total = self.ids.len() as u64;
        let picks = limit.min(total);
        let mut per_master: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.masters.len()];
        for j in 0..picks {
            let Some((id, master)) = usize::try_from(j * total / picks)
                .ok()
                .and_then(|i| self.ids.get(i))
            else {
                continue;
            };
            if let (Ok(id), Some(list)) = (SessionId::parse(id), per_master.get_mut(*master)) {
                list.push(layout.key(id));
            }
        }
        per_master
    }
}

/// Sampled sessions read per pipeline (`Cluster::read_sampled`).
const SAMPLE_READ_BATCH: usize = 50;

/// What `Cluster::read_sampled` hands on: a key, its stored bytes, and the
/// value as ORS gave it.
pub(crate) type SampleFn<'a> = dyn FnMut(&[u8], &[u8], &[u8]) + 'a;

impl Cluster {
    /// Reads the stored values of `keys[i]` on `masters[i]` (a pipeline of
    /// GETs at a time) and hands `visit` each key, its stored bytes and the
    /// value as ORS gave it (a compressed one opened, its dictionary found
    /// in the cluster). A key gone since it was listed, or not a string, is
    /// passed over.
    pub(crate) fn read_sampled(
        &mut self,
        masters: &[NodeAddr],
        keys: &[Vec<Vec<u8>>],
        visit: &mut SampleFn<'_>,
    ) -> Result<()> {
        let max = self.config().max_value_bytes;
        let client = self.client.clone();
        let find = |id| dictionaries::find(&client, id);
        for (node, keys) in masters.iter().zip(keys) {
            for batch in keys.chunks(SAMPLE_READ_BATCH) {
                let commands: Vec<Vec<&[u8]>> =
                    batch.iter().map(|k| vec![&b"GET"[..], k]).collect();
                for (key, reply) in batch.iter().zip(self.pipeline(node, &commands)?) {
                    let Value::BulkString(stored) = reply else {
                        continue;
                    };
                    let value = envelope::open(&stored, max, &find).map_err(|e| e.at_node(node))?;
                    visit(key, &stored, &value);
                }
            }
        }
        Ok(())
    }

    /// Runs `SCAN ... MATCH pattern` to the end on every master, handing
    /// each page of keys to `visit`.
    pub(crate) fn scan_keys(
        &mut self,
        pattern: &[u8],
        progress: &mut ProgressFn<'_>,
        visit: &mut PageFn<'_>,
    ) -> Result<()> {
        let masters = self.masters();
        let mut seen: u64 = 0;
        for (index, node) in masters.iter().enumerate() {
            // The paging rule (cursors, the end, the cap) is scan.rs's.
            let mut cursor = NodeCursor::default();
            while !cursor.is_done() {
                let page = self.scan_page(node, &cursor.command(pattern))?;
                let keys = cursor.advance(page).map_err(|e| e.at_node(&node))?;
                seen += keys.len() as u64;
                visit(self, index, node, keys)?;
                progress(&ScanProgress {
                    node,
                    master: index + 1,
                    masters: masters.len(),
                    keys: seen,
                });
            }
        }
        Ok(())
    }

    fn scan_page(&mut self, node: &NodeAddr, command: &[&[u8]]) -> Result<Page> {
        let reply = self.query(node, command)?;
        Page::parse(reply).ok_or_else(|| unexpected(node, "SCAN"))
    }

    /// The sessions of this cluster name whose id starts with `id_prefix`,
    /// each once. A failover during the scan: scanned again from the start.
    pub(crate) fn list_sessions(
        &mut self,
        id_prefix: &[u8],
        progress: &mut ProgressFn<'_>,
    ) -> Result<Listing> {
        self.retry_pass(|admin| admin.list_sessions_once(id_prefix, &mut *progress))
    }

    fn list_sessions_once(
        &mut self,
        id_prefix: &[u8],
        progress: &mut ProgressFn<'_>,
    ) -> Result<Listing> {
        let layout = KeyBuilder::new(&self.config().cluster_name);
        let pattern = layout.session_pattern(id_prefix).map_err(Error::invalid)?;
        let masters = self.masters();
        let mut found: HashMap<Vec<u8>, usize> = HashMap::new();
        self.scan_keys(&pattern, progress, &mut |_, index, _, keys| {
            for key in keys {
                if let Some(id) = layout.session_id(&key) {
                    found.entry(id.to_vec()).or_insert(index);
                }
            }
            Ok(())
        })?;
        let mut per_master = vec![0u64; masters.len()];
        for &index in found.values() {
            if let Some(n) = per_master.get_mut(index) {
                *n += 1;
            }
        }
        let mut ids: Vec<(Vec<u8>, usize)> = found.into_iter().collect();
        ids.sort_unstable();
        Ok(Listing {
            ids,
            masters,
            per_master,
        })
    }

    /// Every key under `ORS:<cluster-name>:` (sessions or not), per master.
    pub(crate) fn count_cluster_keys(&mut self, progress: &mut ProgressFn<'_>) -> Result<Vec<u64>> {
        self.retry_pass(|admin| admin.count_cluster_keys_once(&mut *progress))
    }

    fn count_cluster_keys_once(&mut self, progress: &mut ProgressFn<'_>) -> Result<Vec<u64>> {
        let pattern = KeyBuilder::new(&self.config().cluster_name).cluster_pattern();
        let mut per_master = vec![0u64; self.map().masters.len()];
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        self.scan_keys(&pattern, progress, &mut |_, index, _, keys| {
            for key in keys {
                if seen.insert(key) {
                    if let Some(n) = per_master.get_mut(index) {
                        *n += 1;
                    }
                }
            }
            Ok(())
        })?;
        Ok(per_master)
    }

    /// One session's value and TTL; `None` when there is no such session.
    pub(crate) fn get_session(&mut self, id: SessionId<'_>) -> Result<Option<Session>> {
        let key = KeyBuilder::new(&self.config().cluster_name).key(id);
        let get: [&[u8]; 2] = [b"GET", &key];
        // A value longer than max-value-bytes is refused before it is
        // read, and the connection dropped, as the library does.
        let get_bytes = packed(&get);
        let (read_from, value) = self.route(id.slot(), &mut |x| {
            x.send(&get_bytes)?;
            match x.receive_bulk()? {
                Bulk::Data(value) => Ok(Reply::Done(Some(value.as_slice().to_vec()))),
                Bulk::Nil => Ok(Reply::Done(None)),
                Bulk::Other(Value::ServerError(e)) => refused(e, &get),
                Bulk::Other(_) => Err(unexpected_reply("GET")),
            }
        })?;
        let Some(stored) = value else {
            return Ok(None);
        };
        // What ORS gave: a compressed value opened, a plain one as stored.
        let client = self.client.clone();
        let find = |id| dictionaries::find(&client, id);
        let value = envelope::open(&stored, self.config().max_value_bytes, &find)
            .map_err(|e| e.at_node(&read_from))?
            .into_owned();
        let ttl_command: [&[u8]; 2] = [b"TTL", &key];
        let ttl_bytes = packed(&ttl_command);
        let (node, ttl) = self.route(id.slot(), &mut |x| {
            x.send(&ttl_bytes)?;
            match x.receive()? {
                Value::Int(n) => Ok(Reply::Done(n)),
                Value::ServerError(e) => refused(e, &ttl_command),
                _ => Err(unexpected_reply("TTL")),
            }
        })?;
        let ttl = match ttl {
            n if n >= 0 => Ttl::Seconds(n as u64),
            -1 => Ttl::Persistent,
            // -2: it expired or was deleted between GET and TTL.
            _ => return Ok(None),
        };
        Ok(Some(Session {
            key,
            node,
            value,
            ttl,
        }))
    }

    /// Deletes one session with `UNLINK` (`DEL` where the server has no
    /// UNLINK, before 4.0). Returns the node and command, or `None` when
    /// there was no such session.
    pub(crate) fn delete_session(
        &mut self,
        id: SessionId<'_>,
    ) -> Result<Option<(NodeAddr, &'static str)>> {
        let key = KeyBuilder::new(&self.config().cluster_name).key(id);
        let delete = |cluster: &mut Cluster, command: &'static str| {
            let args: [&[u8]; 2] = [command.as_bytes(), &key];
            let bytes = packed(&args);
            cluster
                .route(id.slot(), &mut |x| {
                    x.send(&bytes)?;
                    match x.receive()? {
                        Value::Int(n) => Ok(Reply::Done(n > 0)),
                        Value::ServerError(e) => refused(e, &args),
                        _ => Err(unexpected_reply(command)),
                    }
                })
                .map(|(node, deleted)| deleted.then_some((node, command)))
        };
        let use_unlink = &self.client.clone().use_unlink;
        if use_unlink.load(Ordering::Relaxed) {
            match delete(self, "UNLINK") {
                Err(e) if e.is_reply(ReplyClass::UnknownCommand) => {
                    use_unlink.store(false, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        delete(self, "DEL")
    }

    /// Deletes every key under `ORS:<cluster-name>:` on every master, then
    /// scans again until a pass finds nothing left (at most
    /// `MAX_PURGE_PASSES` passes).
    pub(crate) fn purge(&mut self, progress: &mut ProgressFn<'_>) -> Result<PurgeReport> {
        let pattern = KeyBuilder::new(&self.config().cluster_name).cluster_pattern();
        let masters = self.masters();
        let mut report = PurgeReport {
            deleted_per_master: vec![0; masters.len()],
            masters,
            ..PurgeReport::default()
        };
        for pass in 1..=MAX_PURGE_PASSES {
            report.passes = pass;
            let mut found: u64 = 0;
            let per_master = &mut report.deleted_per_master;
            self.scan_keys(&pattern, progress, &mut |admin, index, node, keys| {
                found += keys.len() as u64;
                let deleted = admin.delete_keys(node, &keys)?;
                if let Some(n) = per_master.get_mut(index) {
                    *n += deleted;
                }
                Ok(())
            })?;
            report.found_in_last_pass = found;
            if found == 0 {
                report.verified = true;
                break;
            }
        }
        report.deleted = report.deleted_per_master.iter().sum();
        Ok(report)
    }

    /// Deletes `keys` on `node`, one command each in one pipeline. Keys that
    /// moved away (MOVED/ASK) are left for the next pass.
    fn delete_keys(&mut self, node: &NodeAddr, keys: &[Vec<u8>]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let client = self.client.clone();
        // At most two rounds: UNLINK, then DEL if the node has no UNLINK.
        for _ in 0..2 {
            let unlink = client.use_unlink.load(Ordering::Relaxed);
            let command: &[u8] = if unlink { b"UNLINK" } else { b"DEL" };
            let commands: Vec<Vec<&[u8]>> = keys.iter().map(|k| vec![command, k]).collect();
            let replies = self.pipeline(node, &commands)?;
            let mut deleted = 0;
            let mut retry_with_del = false;
            for reply in replies {
                match reply {
                    Value::Int(n) if n > 0 => deleted += 1,
                    Value::Int(_) => {}
                    Value::ServerError(e) => match e.class() {
                        ReplyClass::Moved | ReplyClass::Ask => continue,
                        ReplyClass::UnknownCommand if unlink => {
                            retry_with_del = true;
                            break;
                        }
                        _ => return Err(e.to_error().at_node(&node.to_string())),
                    },
                    _ => return Err(unexpected(node, "UNLINK")),
                }
            }
            if !retry_with_del {
                return Ok(deleted);
            }
            client.use_unlink.store(false, Ordering::Relaxed);
        }
        Ok(0)
    }
}

/// An error reply to a routed command: the router's to judge (a redirect,
/// a passing cluster state, or final), except a NOPERM, which names the ACL
/// permission it lacks.
pub(super) fn refused<T>(e: ServerError, args: &[&[u8]]) -> Result<Reply<T>> {
    if e.class() == ReplyClass::NoPerm {
        Err(e.to_error_for(args))
    } else {
        Ok(Reply::Error(e))
    }
}

/// `args` as the bytes of one command.
pub(crate) fn packed(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    pack_command(&mut out, args);
    out
}

/// A reply of a shape the command does not expect (the router names the
/// node).
pub(super) fn unexpected_reply(what: &str) -> Error {
    Error::new(ErrorKind::Server, format!("unexpected {what} reply"))
}
