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
//!
//! A scan may be limited to a range of slots ([`Scan::of_slots`]): the
//! restore that cannot list slots ([`slot_passes`]) scans the cluster once
//! per range, so that the ids it remembers stay bounded (those of one
//! range), whatever the number of sessions.

use std::collections::HashSet;
use std::ops::Range;

use crate::reply::Value;

use crate::client::Client;
use crate::cluster::Budget;
use crate::config::NodeAddr;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{KeyBuilder, SessionId};
use crate::retry;
use crate::router::Routes;
use crate::stats::{self, Call};

/// Keys asked of a node per SCAN round trip.
const SCAN_COUNT: &[u8] = b"1000";
/// SCAN pages asked of one node, at most (10^11 keys at 1000 a page): a
/// bound on a node that never returns cursor 0, not a limit anyone meets.
const MAX_PAGES_PER_NODE: u64 = 100_000_000;
/// Passes repeated because the topology changed, at most.
const MAX_PASSES: u32 = 4;
/// Ids a scan limited to a range of slots aims to remember at most (a few
/// tens of MB): [`slot_passes`] cuts the slots into ranges this size.
pub(crate) const MAX_IDS_PER_PASS: u64 = 250_000;
/// Every slot.
const ALL_SLOTS: Range<u16> = 0..16384;

/// The slot ranges to scan one after the other so that each holds about
/// `MAX_IDS_PER_PASS` of `keys` keys at most (keys spread evenly over the
/// slots: a key's slot is a hash of its id).
pub(crate) fn slot_passes(keys: u64) -> Vec<Range<u16>> {
    let passes = keys.div_ceil(MAX_IDS_PER_PASS).clamp(1, 16384);
    let width = 16384u64.div_ceil(passes);
    (0..16384u64)
        .step_by(width as usize)
        .map(|lo| lo as u16..(lo + width).min(16384) as u16)
        .collect()
}

/// The keys the masters hold (`INFO keyspace`, every cluster name's), for
/// [`slot_passes`]; a master that does not say counts as none.
pub(crate) fn keys_on_masters(client: &Client, routes: &mut Routes) -> u64 {
    let map = routes.slot_map(&client.topology);
    let masters: Vec<NodeAddr> = map.masters.iter().map(|m| m.addr.clone()).collect();
    let budget = Budget::of_request(&client.config);
    masters
        .iter()
        .filter_map(|addr| {
            let reply = routes
                .conns
                .query(addr, &client.params, &budget, &[b"INFO", b"keyspace"])
                .ok()?;
            let Value::BulkString(text) = reply else {
                return None;
            };
            Some(keyspace_keys(&String::from_utf8_lossy(&text)))
        })
        .sum()
}

/// The sum of `keys=` of INFO keyspace's `db<n>:` lines.
fn keyspace_keys(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("db"))
        .filter_map(|l| {
            l.split_once("keys=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

pub(crate) struct Scan {
    /// The library generation the scan started in: a shutdown (and a new
    /// init) ends it.
    generation: u64,
    keys: KeyBuilder,
    /// The MATCH pattern of the ids asked for (`KeyBuilder::session_pattern`).
    pattern: Vec<u8>,
    masters: Vec<NodeAddr>,
    master: usize,
    /// Where the scan of `masters[master]` is.
    node: NodeCursor,
    pass: u32,
    pass_epoch: u64,
    started: bool,
    seen: HashSet<Vec<u8>>,
    /// The slots whose sessions are reported (all but for `of_slots`).
    slots: Range<u16>,
}

impl Scan {
    pub(crate) fn new(client: &Client, id_prefix: &[u8]) -> Result<Scan> {
        Scan::of(&client.keys, client.generation, id_prefix)
    }

    /// A scan that reports the sessions of `slots` alone (ids that are not
    /// session ids are left out).
    pub(crate) fn of_slots(client: &Client, id_prefix: &[u8], slots: Range<u16>) -> Result<Scan> {
        let mut scan = Scan::of(&client.keys, client.generation, id_prefix)?;
        scan.slots = slots;
        Ok(scan)
    }

    fn of(keys: &KeyBuilder, generation: u64, id_prefix: &[u8]) -> Result<Scan> {
        let pattern = keys.session_pattern(id_prefix).map_err(Error::invalid)?;
        Ok(Scan {
            generation,
            keys: keys.clone(),
            pattern,
            masters: Vec::new(),
            master: 0,
            node: NodeCursor::default(),
            pass: 0,
            pass_epoch: 0,
            started: false,
            seen: HashSet::new(),
            slots: ALL_SLOTS,
        })
    }

    fn start_pass(&mut self, client: &Client, routes: &mut Routes) {
        let map = routes.slot_map(&client.topology);
        self.masters = map.masters.iter().map(|m| m.addr.clone()).collect();
        self.pass_epoch = map.epoch;
        self.master = 0;
        self.node = NodeCursor::default();
        self.pass += 1;
        self.started = true;
    }

    /// The next ids not reported yet, or `None` when every master is done.
    pub(crate) fn next_page(
        &mut self,
        client: &Client,
        routes: &mut Routes,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        if client.generation != self.generation {
            return Err(shut_down());
        }
        if !self.started {
            self.start_pass(client, routes);
        }
        loop {
            if self.master >= self.masters.len() {
                if client.topology.epoch() != self.pass_epoch && self.pass < MAX_PASSES {
                    tracing::info!(
                        pass = self.pass,
                        "slot map changed during the scan: scanning again"
                    );
                    self.start_pass(client, routes);
                    continue;
                }
                return Ok(None);
            }
            let addr = self.masters[self.master].clone();
            let keys = match self.scan_once(client, routes, &addr) {
                Ok(keys) => keys,
                Err(e) if retry::may_repeat(&e) && self.pass < MAX_PASSES => {
                    // A cursor means nothing on another node: start over
                    // (ids already reported are not reported again).
                    tracing::warn!(node = %addr, error = %e, "scan interrupted, starting a new pass");
                    stats::bump(Call::Retries);
                    std::thread::sleep(retry::PASS_PAUSE);
                    self.start_pass(client, routes);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut page = Vec::new();
            for key in keys {
                if let Some(id) = self.keys.session_id(&key).filter(|id| self.wants(id)) {
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

    /// Whether `id` is in the scan's slots.
    fn wants(&self, id: &[u8]) -> bool {
        self.slots == ALL_SLOTS
            || SessionId::parse(id).is_ok_and(|s| self.slots.contains(&s.slot()))
    }

    /// An error if the library was shut down since the scan started (by
    /// the host's callback, say).
    pub(crate) fn check_live(&self) -> Result<()> {
        if crate::live::is_live(self.generation) {
            Ok(())
        } else {
            Err(shut_down())
        }
    }

    /// One page of `SCAN` on `addr`; moves the cursor (and on to the next
    /// master when the node is done).
    fn scan_once(
        &mut self,
        client: &Client,
        routes: &mut Routes,
        addr: &NodeAddr,
    ) -> Result<Vec<Vec<u8>>> {
        let budget = Budget::of_request(&client.config);
        let command = self.node.command(&self.pattern);
        let reply = routes
            .conns
            .query(addr, &client.params, &budget, &command)?;
        let page = Page::parse(reply)
            .ok_or_else(|| Error::new(ErrorKind::Server, "unexpected SCAN reply").at_node(addr))?;
        let keys = self.node.advance(page).map_err(|e| e.at_node(addr))?;
        if self.node.is_done() {
            self.master += 1;
            self.node = NodeCursor::default();
        }
        Ok(keys)
    }
}

/// A scan's call that failed because the library is not initialized: it
/// was shut down during the scan.
pub(crate) fn interrupted(e: Error) -> Error {
    if e.kind == ErrorKind::NotInitialized {
        shut_down()
    } else {
        e
    }
}

fn shut_down() -> Error {
    Error::new(
        ErrorKind::NotInitialized,
        "the library was shut down during the scan (by its callback or another thread); \
         ids after that point were not reported",
    )
}

/// The paging of one node's SCAN, the one rule the library's scan and the
/// operator command's follow (each with its own I/O): start at cursor 0,
/// ask next for the cursor each page returns, stop when a page returns 0,
/// and give up after `MAX_PAGES_PER_NODE` pages.
#[derive(Debug)]
pub struct NodeCursor {
    /// The cursor of the next page.
    cursor: Vec<u8>,
    pages: u64,
    max_pages: u64,
    done: bool,
}

impl Default for NodeCursor {
    fn default() -> Self {
        NodeCursor::with_max_pages(MAX_PAGES_PER_NODE)
    }
}

impl NodeCursor {
    fn with_max_pages(max_pages: u64) -> Self {
        NodeCursor {
            cursor: b"0".to_vec(),
            pages: 0,
            max_pages,
            done: false,
        }
    }

    /// The command that asks for the next page.
    pub fn command<'a>(&'a self, pattern: &'a [u8]) -> [&'a [u8]; 6] {
        Page::command(&self.cursor, pattern)
    }

    /// Takes the page the last command returned: its keys, or an error
    /// when the node is still not done after the most pages allowed.
    pub fn advance(&mut self, page: Page) -> Result<Vec<Vec<u8>>> {
        self.pages += 1;
        self.done = page.is_last();
        if !self.done && self.pages >= self.max_pages {
            return Err(Error::new(
                ErrorKind::Server,
                format!(
                    "SCAN did not finish after {} pages (cursor {})",
                    self.pages,
                    String::from_utf8_lossy(&page.cursor)
                ),
            ));
        }
        self.cursor = page.cursor;
        Ok(page.keys)
    }

    /// Whether the node returned its last page.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// One page of `SCAN cursor MATCH pattern COUNT 1000`, the one place that
/// asks for and reads one (the library's scan and the operator command's).
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    /// Where the next page starts; `0` when the node has no more.
    pub cursor: Vec<u8>,
    /// The page's keys that match the pattern.
    pub keys: Vec<Vec<u8>>,
}

impl Page {
    /// The command that asks for the page at `cursor`.
    pub fn command<'a>(cursor: &'a [u8], pattern: &'a [u8]) -> [&'a [u8]; 6] {
        [b"SCAN", cursor, b"MATCH", pattern, b"COUNT", SCAN_COUNT]
    }

    /// The page in a SCAN reply (`[cursor, [key, ...]]`), if it is one.
    pub fn parse(reply: Value) -> Option<Page> {
        let Value::Array(parts) = reply else {
            return None;
        };
        let [cursor, Value::Array(keys)] = <[Value; 2]>::try_from(parts).ok()? else {
            return None;
        };
        let cursor = match cursor {
            Value::BulkString(c) => c,
            Value::SimpleString(c) => c.into_bytes(),
            _ => return None,
        };
        let keys = keys
            .into_iter()
            .filter_map(|k| match k {
                Value::BulkString(k) => Some(k),
                _ => None,
            })
            .collect();
        Some(Page { cursor, keys })
    }

    /// Whether this is the node's last page.
    pub fn is_last(&self) -> bool {
        self.cursor == b"0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ClusterName;

    /// The ranges cover every slot once, and each holds at most about
    /// `MAX_IDS_PER_PASS` of the keys.
    #[test]
    fn slot_passes_cover_every_slot_once_in_bounded_ranges() {
        for keys in [
            0,
            1,
            MAX_IDS_PER_PASS,
            MAX_IDS_PER_PASS + 1,
            3_000_000,
            u64::MAX / 2,
        ] {
            let passes = slot_passes(keys);
            assert_eq!(passes.first().unwrap().start, 0);
            assert_eq!(passes.last().unwrap().end, 16384);
            assert!(passes.windows(2).all(|w| w[0].end == w[1].start), "{keys}");
            let widest = passes
                .iter()
                .map(|r| u64::from(r.end - r.start))
                .max()
                .unwrap();
            assert!(
                widest * keys / 16384 <= MAX_IDS_PER_PASS + keys / 16384 + 1,
                "{keys}: {widest}"
            );
        }
        assert_eq!(slot_passes(10).len(), 1);
        assert_eq!(slot_passes(3_000_000).len(), 12);
        assert_eq!(
            keyspace_keys(
                "# Keyspace\r\ndb0:keys=120,expires=100,avg_ttl=5\r\ndb1:keys=3,expires=0\r\n"
            ),
            123
        );
    }

    #[test]
    fn pages_are_read_from_scan_replies() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![
            bulk("17"),
            Value::Array(vec![bulk("ORS:EU:{a}"), Value::Int(3), bulk("ORS:EU:{b}")]),
        ]);
        let page = Page::parse(reply).unwrap();
        assert_eq!(page.cursor, b"17");
        assert_eq!(page.keys, [b"ORS:EU:{a}".to_vec(), b"ORS:EU:{b}".to_vec()]);
        assert!(!page.is_last());
        let last = Page::parse(Value::Array(vec![bulk("0"), Value::Array(vec![])])).unwrap();
        assert!(last.is_last() && last.keys.is_empty());
        for bad in [
            Value::Nil,
            Value::Array(vec![bulk("0")]),
            Value::Array(vec![bulk("0"), bulk("k")]),
            Value::Array(vec![Value::Int(0), Value::Array(vec![])]),
            Value::Array(vec![bulk("0"), Value::Array(vec![]), Value::Nil]),
        ] {
            assert_eq!(Page::parse(bad.clone()), None, "{bad:?}");
        }
        assert_eq!(
            Page::command(b"5", b"ORS:EU:{*")
                .iter()
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
                .join(" "),
            "SCAN 5 MATCH ORS:EU:{* COUNT 1000"
        );
    }

    fn page(cursor: &str, keys: &[&str]) -> Page {
        Page {
            cursor: cursor.as_bytes().to_vec(),
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn a_node_is_paged_from_cursor_0_until_it_returns_0() {
        let mut node = NodeCursor::default();
        assert_eq!(node.command(b"p")[1], b"0");
        assert_eq!(node.advance(page("17", &["a"])).unwrap(), [b"a".to_vec()]);
        assert!(!node.is_done());
        assert_eq!(node.command(b"p")[1], b"17");
        assert_eq!(node.advance(page("5", &[])).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(node.command(b"p")[1], b"5");
        assert_eq!(node.advance(page("0", &["b"])).unwrap(), [b"b".to_vec()]);
        assert!(node.is_done());
    }

    #[test]
    fn a_node_that_never_returns_0_is_given_up_after_the_cap() {
        let mut node = NodeCursor::with_max_pages(3);
        assert!(node.advance(page("1", &["a"])).is_ok());
        assert!(node.advance(page("2", &[])).is_ok());
        let e = node.advance(page("1", &[])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Server);
        assert!(e.message.contains("after 3 pages"), "{}", e.message);
        // A last page at the cap is no error.
        let mut node = NodeCursor::with_max_pages(2);
        assert!(node.advance(page("1", &[])).is_ok());
        assert!(node.advance(page("0", &["z"])).is_ok());
        assert!(node.is_done());
    }

    /// A page's command, packed as `NodeConnection::query` packs it, is
    /// what redis-rs packs for `SCAN cursor MATCH pattern COUNT 1000`.
    #[test]
    fn page_commands_are_packed_as_redis_rs_packs_them() {
        let keys = KeyBuilder::new(&ClusterName::parse("EU").unwrap());
        let cursors = [0, 1, 17, 1 << 40, u64::MAX];
        let prefixes: [&[u8]; 5] = [b"", b"a", br"a*b?c[d]e\f", b"\xc3\xa9 x", &[b'z'; 1024]];
        for cursor in cursors {
            for prefix in prefixes {
                let cursor = cursor.to_string();
                let pattern = keys.session_pattern(prefix).unwrap();
                let mut ours = Vec::new();
                crate::resp::pack_command(&mut ours, &Page::command(cursor.as_bytes(), &pattern));
                let theirs = redis::cmd("SCAN")
                    .arg(&cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .get_packed_command();
                assert_eq!(ours, theirs, "{cursor} {prefix:?}");
            }
        }
    }

    #[test]
    fn the_prefix_is_matched_literally() {
        let keys = KeyBuilder::new(&ClusterName::parse("EU").unwrap());
        let scan = Scan::of(&keys, 1, br"a*b?c[d]e\f").unwrap();
        assert_eq!(scan.pattern, br"ORS:EU:{a\*b\?c\[d\]e\\f*".to_vec());
        let all = Scan::of(&keys, 1, b"").unwrap();
        assert_eq!(all.pattern, b"ORS:EU:{*".to_vec());
        let e = Scan::of(&keys, 1, b"a{").err().unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(Scan::of(&keys, 1, b"a\n").is_err());
    }
}
