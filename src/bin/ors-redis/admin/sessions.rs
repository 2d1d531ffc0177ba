//! One ORS cluster's sessions, for operators: list and count them, read or
//! delete one, and purge every key of the cluster name when it is
//! decommissioned.
//!
//! Listings are `SCAN cursor MATCH pattern COUNT 1000` on every master, never
//! `KEYS` (which blocks a node while it walks its whole keyspace). `SCAN` may
//! return a key twice, so ids are deduplicated. Deleting keys during a `SCAN`
//! is safe: keys present for the whole scan are still returned.

use std::collections::{HashMap, HashSet};

use ors_redis::operator::{
    key_slot, Error, ErrorKind, KeyBuilder, NodeAddr, NodeCursor, Page, Redirect, ReplyClass,
    Result, SessionId, Value,
};

use super::{server_error, Admin, Read};

/// MOVED/ASK redirects followed for one command.
pub(super) const MAX_REDIRECTS: usize = 5;
/// Purge scans again until a pass finds nothing, at most this often.
const MAX_PURGE_PASSES: u32 = 4;

/// Where a scan is, for a progress indicator.
pub struct ScanProgress<'a> {
    pub node: &'a NodeAddr,
    /// 1-based number of the master being scanned.
    pub master: usize,
    pub masters: usize,
    /// Keys returned so far, all masters together (repeats included).
    pub keys: u64,
}

pub type ProgressFn<'a> = dyn FnMut(&ScanProgress<'_>) + 'a;

/// What a page visitor of [`Admin::scan_keys`] gets: the admin handle (to
/// run commands), the master's index and address, and the keys of one page.
pub type PageFn<'a> = dyn FnMut(&mut Admin, usize, &NodeAddr, Vec<Vec<u8>>) -> Result<()> + 'a;

/// A session's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Seconds(u64),
    /// The key has no TTL (the library never writes one like that).
    Persistent,
}

/// One session as stored.
#[derive(Debug, Clone)]
pub struct Session {
    pub key: Vec<u8>,
    pub node: NodeAddr,
    pub value: Vec<u8>,
    pub ttl: Ttl,
}

/// The sessions a scan found, each with the index of its master.
#[derive(Debug, Default)]
pub struct Listing {
    /// Sorted by id.
    pub ids: Vec<(Vec<u8>, usize)>,
    pub masters: Vec<NodeAddr>,
    pub per_master: Vec<u64>,
}

/// What a purge did.
#[derive(Debug, Default)]
pub struct PurgeReport {
    pub masters: Vec<NodeAddr>,
    pub deleted_per_master: Vec<u64>,
    pub deleted: u64,
    pub passes: u32,
    /// The last pass found no key left.
    pub verified: bool,
    /// Keys the last pass still found (when not verified).
    pub found_in_last_pass: u64,
}

impl Admin {
    /// Runs `SCAN ... MATCH pattern` to the end on every master, handing
    /// each page of keys to `visit`.
    pub fn scan_keys(
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
        Page::parse(reply).ok_or_else(|| {
            Error::new(
                ErrorKind::Server,
                format!("node {node}: unexpected SCAN reply"),
            )
        })
    }

    /// The sessions of this cluster name whose id starts with `id_prefix`,
    /// each once. A failover during the scan: scanned again from the start.
    pub fn list_sessions(
        &mut self,
        id_prefix: &[u8],
        progress: &mut ProgressFn<'_>,
    ) -> Result<Listing> {
        self.riding_out(|admin| admin.list_sessions_once(id_prefix, &mut *progress))
    }

    fn list_sessions_once(
        &mut self,
        id_prefix: &[u8],
        progress: &mut ProgressFn<'_>,
    ) -> Result<Listing> {
        let layout = KeyBuilder::new(&self.config.cluster_name);
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
    pub fn count_cluster_keys(&mut self, progress: &mut ProgressFn<'_>) -> Result<Vec<u64>> {
        self.riding_out(|admin| admin.count_cluster_keys_once(&mut *progress))
    }

    fn count_cluster_keys_once(&mut self, progress: &mut ProgressFn<'_>) -> Result<Vec<u64>> {
        let pattern = KeyBuilder::new(&self.config.cluster_name).cluster_pattern();
        let mut per_master = vec![0u64; self.map.masters.len()];
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
    pub fn get_session(&mut self, id: SessionId<'_>) -> Result<Option<Session>> {
        let key = KeyBuilder::new(&self.config.cluster_name).key(id);
        let (node, reply) = self.on_key_slot(&key, &[b"GET", &key], Read::SessionValue)?;
        let value = match reply {
            Value::Nil => return Ok(None),
            Value::BulkString(v) => v,
            _ => return Err(unexpected_reply(&node, "GET")),
        };
        let (node, reply) = self.on_key_slot(&key, &[b"TTL", &key], Read::Reply)?;
        let ttl = match reply {
            Value::Int(n) if n >= 0 => Ttl::Seconds(n as u64),
            Value::Int(-1) => Ttl::Persistent,
            // -2: it expired or was deleted between GET and TTL.
            Value::Int(_) => return Ok(None),
            _ => return Err(unexpected_reply(&node, "TTL")),
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
    pub fn delete_session(
        &mut self,
        id: SessionId<'_>,
    ) -> Result<Option<(NodeAddr, &'static str)>> {
        let key = KeyBuilder::new(&self.config.cluster_name).key(id);
        let (node, reply, command) = match self.on_key_slot(&key, &[b"UNLINK", &key], Read::Reply) {
            Ok((node, reply)) => (node, reply, "UNLINK"),
            Err(e) if e.is_reply(ReplyClass::UnknownCommand) => {
                let (node, reply) = self.on_key_slot(&key, &[b"DEL", &key], Read::Reply)?;
                (node, reply, "DEL")
            }
            Err(e) => return Err(e),
        };
        match reply {
            Value::Int(n) if n > 0 => Ok(Some((node, command))),
            Value::Int(_) => Ok(None),
            _ => Err(unexpected_reply(&node, command)),
        }
    }

    /// Deletes every key under `ORS:<cluster-name>:` on every master, then
    /// scans again until a pass finds nothing left (at most
    /// `MAX_PURGE_PASSES` passes).
    pub fn purge(&mut self, progress: &mut ProgressFn<'_>) -> Result<PurgeReport> {
        let pattern = KeyBuilder::new(&self.config.cluster_name).cluster_pattern();
        let masters = self.masters();
        let mut report = PurgeReport {
            deleted_per_master: vec![0; masters.len()],
            masters,
            ..PurgeReport::default()
        };
        let mut without_unlink: HashSet<String> = HashSet::new();
        for pass in 1..=MAX_PURGE_PASSES {
            report.passes = pass;
            let mut found: u64 = 0;
            let per_master = &mut report.deleted_per_master;
            self.scan_keys(&pattern, progress, &mut |admin, index, node, keys| {
                found += keys.len() as u64;
                let deleted = admin.delete_keys(node, &keys, &mut without_unlink)?;
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
    fn delete_keys(
        &mut self,
        node: &NodeAddr,
        keys: &[Vec<u8>],
        without_unlink: &mut HashSet<String>,
    ) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let node_key = node.to_string();
        // At most two rounds: UNLINK, then DEL if the node has no UNLINK.
        for _ in 0..2 {
            let command: &[u8] = if without_unlink.contains(&node_key) {
                b"DEL"
            } else {
                b"UNLINK"
            };
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
                        ReplyClass::UnknownCommand if command == b"UNLINK" => {
                            retry_with_del = true;
                            break;
                        }
                        _ => return Err(e.to_error().at_node(&node_key)),
                    },
                    _ => return Err(unexpected_reply(node, "UNLINK")),
                }
            }
            if !retry_with_del {
                return Ok(deleted);
            }
            without_unlink.insert(node_key.clone());
        }
        Ok(0)
    }

    /// Runs one command on the master of `key`'s slot, following MOVED and
    /// ASK redirects, and riding out a failover like the library.
    pub fn on_key_slot(
        &mut self,
        key: &[u8],
        args: &[&[u8]],
        read: Read,
    ) -> Result<(NodeAddr, Value)> {
        self.riding_out(|admin| admin.on_key_slot_once(key, args, read))
    }

    fn on_key_slot_once(
        &mut self,
        key: &[u8],
        args: &[&[u8]],
        read: Read,
    ) -> Result<(NodeAddr, Value)> {
        let slot = key_slot(key);
        let mut node = self
            .map
            .master_of(slot)
            .map(|m| m.addr.clone())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Cluster,
                    format!("slot {slot} is not served by any master (run ors-redis doctor)"),
                )
            })?;
        let mut asking = false;
        for _ in 0..=MAX_REDIRECTS {
            let reply = self.asking_query(&node, asking, args, read)?;
            let Value::ServerError(e) = reply else {
                return Ok((node, reply));
            };
            let Some(to) = Redirect::of(&e, &node) else {
                return Err(server_error(&node, &e, args));
            };
            node = to.addr;
            asking = to.ask;
        }
        Err(Error::new(
            ErrorKind::Cluster,
            format!(
                "slot {slot}: still redirected after {MAX_REDIRECTS} redirects (is the cluster resharding?)"
            ),
        ))
    }
}

fn unexpected_reply(node: &NodeAddr, what: &str) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("node {node}: unexpected {what} reply"),
    )
}
