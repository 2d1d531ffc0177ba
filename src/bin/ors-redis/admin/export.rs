//! What `sessions export` reads: every session of the cluster name with its
//! value and remaining TTL, in batches. [`Admin::export_source`] is the one
//! place that reads them; the command only writes what it is handed.
//!
//! It runs on the listing's `SCAN` (master after master, a page at a time)
//! and reads each page's sessions with `GET` and `PTTL` in one pipeline on
//! the page's master. A session gone between the SCAN and the GET, or
//! expired, is left out; one whose slot moved away meanwhile is read where
//! MOVED or ASK sends it.

use std::collections::HashSet;

use ors_redis::operator::{Error, ErrorKind, KeyBuilder, ReplyClass, Result, Value};

use super::{server_error, unexpected, Admin, Read};

/// One session as the export reads it.
#[derive(Debug, Clone, Copy)]
pub struct Exported<'a> {
    pub id: &'a [u8],
    pub value: &'a [u8],
    /// As PTTL gives it: milliseconds left, or -1 for a key without TTL.
    pub pttl_ms: i64,
}

/// What the export's source hands on, a batch at a time.
pub type BatchFn<'a> = dyn FnMut(&[Exported<'_>]) -> Result<()> + 'a;

impl Admin {
    /// Every session whose id starts with `id_prefix`, handed to `batch` a
    /// page (up to about 1000) at a time, each session once per master
    /// (SCAN may repeat a key). An error of `batch` stops the export.
    pub fn export_source(&mut self, id_prefix: &[u8], batch: &mut BatchFn<'_>) -> Result<()> {
        let layout = KeyBuilder::new(&self.config.cluster_name);
        let pattern = layout.session_pattern(id_prefix).map_err(Error::invalid)?;
        let max_value = self.config.max_value_bytes;
        // The ids seen on the master being scanned: a key lives on one
        // master, so the set is emptied when the scan moves on.
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut current_master = usize::MAX;
        self.scan_keys(&pattern, &mut |_| {}, &mut |admin, index, node, keys| {
            if index != current_master {
                seen.clear();
                current_master = index;
            }
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| {
                    layout
                        .session_id(k)
                        .is_some_and(|id| seen.insert(id.to_vec()))
                })
                .collect();
            if keys.is_empty() {
                return Ok(());
            }
            let mut commands: Vec<Vec<&[u8]>> = Vec::with_capacity(keys.len() * 2);
            for key in &keys {
                commands.push(vec![b"GET", key]);
                commands.push(vec![b"PTTL", key]);
            }
            let replies = admin.pipeline(node, &commands)?;
            let mut read: Vec<(Vec<u8>, Value, Value)> = Vec::with_capacity(keys.len());
            let mut replies = replies.into_iter();
            for key in keys {
                let (value, pttl) = match (replies.next(), replies.next()) {
                    (Some(Value::ServerError(e)), _) | (_, Some(Value::ServerError(e)))
                        if matches!(e.class(), ReplyClass::Moved | ReplyClass::Ask) =>
                    {
                        // The slot moved during the scan: read it where it is now.
                        let (_, value) = admin.on_key_slot(&key, &[b"GET", &key], Read::Reply)?;
                        let (_, pttl) = admin.on_key_slot(&key, &[b"PTTL", &key], Read::Reply)?;
                        (value, pttl)
                    }
                    (Some(Value::ServerError(e)), _) => {
                        return Err(server_error(node, &e, &[b"GET"]))
                    }
                    (_, Some(Value::ServerError(e))) => {
                        return Err(server_error(node, &e, &[b"PTTL"]))
                    }
                    (Some(value), Some(pttl)) => (value, pttl),
                    _ => return Err(unexpected(node, "GET")),
                };
                read.push((key, value, pttl));
            }
            let mut out: Vec<Exported<'_>> = Vec::with_capacity(read.len());
            for (key, value, pttl) in &read {
                let pttl_ms = match pttl {
                    // -2: gone since the GET; 0: expiring now.
                    Value::Int(n) if *n > 0 || *n == -1 => *n,
                    Value::Int(_) => continue,
                    _ => return Err(unexpected(node, "PTTL")),
                };
                let value = match value {
                    Value::BulkString(v) => v.as_slice(),
                    Value::Nil => continue,
                    _ => return Err(unexpected(node, "GET")),
                };
                let id = layout.session_id(key).unwrap_or_default();
                if value.len() > max_value {
                    return Err(Error::new(
                        ErrorKind::TooLarge,
                        format!(
                            "session '{}' is {} bytes, more than max-value-bytes ({max_value}); \
                             raise max-value-bytes in the config to export it",
                            crate::text::show_id(id),
                            value.len()
                        ),
                    ));
                }
                out.push(Exported { id, value, pttl_ms });
            }
            batch(&out)
        })
    }
}
