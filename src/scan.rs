//! Finding a cluster name's sessions, for an ORS that restarts: `SCAN` with
//! `MATCH` and `COUNT` on every master (never `KEYS`, which blocks a node).
//!
//! `SCAN` may return a key more than once, so ids already reported are
//! remembered. If the slot map changes during a pass (failover, resharding),
//! keys may have moved behind the cursor: the pass is repeated, and only ids
//! not yet reported are reported.
//!
//! The scan hands out ids a page at a time, so that the caller can run the
//! host's callback between pages without holding this thread's lock (the
//! callback may well call `ors_session_get`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use crate::reply::Value;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{ClusterName, KeyBuilder};
use crate::resp;
use crate::stats::{self, Call};
use crate::threads::ConnectionSet;

/// Keys asked of a node per SCAN round trip.
const SCAN_COUNT: &[u8] = b"1000";
/// Passes repeated because the topology changed, at most.
const MAX_PASSES: u32 = 4;

pub struct Scan {
    keys: KeyBuilder,
    /// The MATCH pattern of the ids asked for (`KeyBuilder::session_pattern`).
    pattern: Vec<u8>,
    masters: Vec<Arc<str>>,
    master: usize,
    cursor: Vec<u8>,
    pass: u32,
    pass_epoch: u64,
    started: bool,
    seen: HashSet<Vec<u8>>,
}

/// The key prefix (`ORS:<cluster-name>:{`) and the MATCH pattern of the
/// sessions whose id starts with `id_prefix`. Kept for the operator command
/// until it calls `KeyBuilder` itself.
pub fn session_pattern(cluster: &ClusterName, id_prefix: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let keys = KeyBuilder::new(cluster);
    let pattern = keys.session_pattern(id_prefix).map_err(Error::invalid)?;
    let prefix = pattern[..keys.key_len(0) - 1].to_vec();
    Ok((prefix, pattern))
}

impl Scan {
    pub fn new(keys: &KeyBuilder, id_prefix: &[u8]) -> Result<Scan> {
        let pattern = keys.session_pattern(id_prefix).map_err(Error::invalid)?;
        Ok(Scan {
            keys: keys.clone(),
            pattern,
            masters: Vec::new(),
            master: 0,
            cursor: b"0".to_vec(),
            pass: 0,
            pass_epoch: 0,
            started: false,
            seen: HashSet::new(),
        })
    }

    fn start_pass(&mut self, client: &Client, conns: &mut ConnectionSet) {
        let map = conns.slot_map(&client.topology);
        self.masters = map.masters.iter().map(|m| m.addr.clone()).collect();
        self.pass_epoch = map.epoch;
        self.master = 0;
        self.cursor = b"0".to_vec();
        self.pass += 1;
        self.started = true;
    }

    /// The next ids not reported yet, or `None` when every master is done.
    pub fn next_page(
        &mut self,
        client: &Client,
        conns: &mut ConnectionSet,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        if !self.started {
            self.start_pass(client, conns);
        }
        loop {
            if self.master >= self.masters.len() {
                if client.topology.epoch() != self.pass_epoch && self.pass < MAX_PASSES {
                    tracing::info!(
                        pass = self.pass,
                        "slot map changed during the scan: scanning again"
                    );
                    self.start_pass(client, conns);
                    continue;
                }
                return Ok(None);
            }
            let addr = self.masters[self.master].clone();
            let keys = match self.scan_once(client, conns, &addr) {
                Ok(keys) => keys,
                Err(e) if e.is_retryable() && self.pass < MAX_PASSES => {
                    // A cursor means nothing on another node: start over
                    // (ids already reported are not reported again).
                    tracing::warn!(node = &*addr, error = %e, "scan interrupted, starting a new pass");
                    stats::bump(Call::Retries);
                    conns.drop_connection(&addr);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    self.start_pass(client, conns);
                    continue;
                }
                Err(e) => return Err(e.at_node(&addr)),
            };
            let mut page = Vec::new();
            for key in keys {
                if let Some(id) = self.keys.session_id(&key) {
                    if self.seen.insert(id.to_vec()) {
                        page.push(id.to_vec());
                    }
                }
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
    }

    /// One `SCAN cursor MATCH pattern COUNT n` on `addr`; moves the cursor
    /// (and on to the next master when it comes back to 0).
    fn scan_once(
        &mut self,
        client: &Client,
        conns: &mut ConnectionSet,
        addr: &str,
    ) -> Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + client.config.op_timeout;
        let conn = conns.connection(addr, &client.params, deadline)?;
        conn.set_timeout(client.config.socket_timeout)?;
        let mut packed = Vec::with_capacity(64 + self.pattern.len());
        resp::pack_command(
            &mut packed,
            &[
                b"SCAN",
                &self.cursor,
                b"MATCH",
                &self.pattern,
                b"COUNT",
                SCAN_COUNT,
            ],
        );
        let reply = match conn.request(&packed)? {
            Value::ServerError(e) => return Err(crate::connection::reply_error(&e)),
            other => other,
        };
        let bad = || Error::new(ErrorKind::Server, "unexpected SCAN reply");
        let Value::Array(mut parts) = reply else {
            return Err(bad());
        };
        if parts.len() != 2 {
            return Err(bad());
        }
        let keys = parts.pop().ok_or_else(bad)?;
        let cursor = match parts.pop().ok_or_else(bad)? {
            Value::BulkString(c) => c,
            Value::SimpleString(c) => c.into_bytes(),
            _ => return Err(bad()),
        };
        let Value::Array(keys) = keys else {
            return Err(bad());
        };
        if cursor == b"0" {
            self.master += 1;
        }
        self.cursor = cursor;
        Ok(keys
            .into_iter()
            .filter_map(|k| match k {
                Value::BulkString(k) => Some(k),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_matched_literally() {
        let keys = KeyBuilder::new(&ClusterName::parse("EU").unwrap());
        let scan = Scan::new(&keys, br"a*b?c[d]e\f").unwrap();
        assert_eq!(scan.pattern, br"ORS:EU:{a\*b\?c\[d\]e\\f*".to_vec());
        let all = Scan::new(&keys, b"").unwrap();
        assert_eq!(all.pattern, b"ORS:EU:{*".to_vec());
        let e = Scan::new(&keys, b"a{").err().unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(Scan::new(&keys, b"a\n").is_err());
    }
}
