//! The sessions a worker hands to the caller: every id and value of a few
//! slots in two arenas, reused from batch to batch, so that a bulk read
//! allocates nothing per session once it runs.

use std::ops::Range;

use crate::config::NodeAddr;
use crate::envelope;
use crate::error::Error;
use crate::logging::Captured;
use crate::resp;

/// One session as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The session id.
    pub id: &'a [u8],
    /// The id followed by a NUL, for C.
    pub id_nul: &'a [u8],
    /// The value as put was given it (opened, if it was stored compressed).
    pub value: &'a [u8],
    /// The remaining time to live in ms, when asked for (`Want::ValuesAndTtl`);
    /// -1 for a key without one.
    pub pttl_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct Item {
    /// The id in `ids`, its NUL after it.
    id: Range<usize>,
    value: Range<usize>,
    pttl_ms: Option<i64>,
}

/// The sessions of a few slots of one node, read together.
#[derive(Default)]
pub struct Batch {
    /// The node the sessions were read from.
    pub node: Option<NodeAddr>,
    ids: Vec<u8>,
    pub(super) values: Vec<u8>,
    items: Vec<Item>,
    /// Log lines of the worker, delivered on the caller's thread.
    pub(super) log: Option<Captured>,
    /// Where a compressed value waits while it is opened in the arena.
    scratch: Vec<u8>,
}

/// Where a batch stood before a slot was added: the slot is cut off again
/// if it cannot be read whole.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    ids: usize,
    values: usize,
    items: usize,
}

impl Batch {
    /// Sessions held.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// No session held.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of values held.
    pub fn value_bytes(&self) -> usize {
        self.values.len()
    }

    /// The sessions, in the order they were added.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.items.iter().map(|item| Record {
            id: &self.ids[item.id.clone()],
            id_nul: &self.ids[item.id.start..item.id.end + 1],
            value: &self.values[item.value.clone()],
            pttl_ms: item.pttl_ms,
        })
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.node = None;
        self.ids.clear();
        self.values.clear();
        self.items.clear();
        self.log = None;
    }

    /// Where the batch stands now, for `cut`.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            ids: self.ids.len(),
            values: self.values.len(),
            items: self.items.len(),
        }
    }

    /// Drops everything added since `mark`.
    pub fn cut(&mut self, mark: Mark) {
        self.ids.truncate(mark.ids);
        self.values.truncate(mark.values);
        self.items.truncate(mark.items);
    }

    /// Adds a session whose value is the `value_len` bytes last appended
    /// to the value arena.
    pub fn push_appended(&mut self, id: &[u8], value_len: usize, pttl_ms: Option<i64>) {
        let id_start = self.ids.len();
        self.ids.extend_from_slice(id);
        self.ids.push(0);
        let end = self.values.len();
        self.items.push(Item {
            id: id_start..id_start + id.len(),
            value: end - value_len..end,
            pttl_ms,
        });
    }

    /// Opens the `stored_len` bytes last appended to the value arena (a
    /// compressed value becomes the value ORS gave, at most `max` bytes,
    /// with the dictionary `find` gives where it names one);
    /// returns the value's length. On an error those bytes are dropped.
    pub fn open_appended(
        &mut self,
        stored_len: usize,
        max: usize,
        find: envelope::Find<'_>,
    ) -> Result<usize, Error> {
        let start = self.values.len() - stored_len;
        let opened = envelope::open_in_arena(&mut self.values, start, max, &mut self.scratch, find);
        if opened.is_err() {
            self.values.truncate(start);
        }
        resp::give_back_if_large(&mut self.scratch);
        opened
    }

    /// Sets the time to live of the last session added.
    pub fn set_last_pttl(&mut self, pttl_ms: i64) {
        if let Some(item) = self.items.last_mut() {
            item.pttl_ms = Some(pttl_ms);
        }
    }

    /// Drops the last session added (its key was gone by the time its TTL
    /// was asked for).
    pub fn pop(&mut self) {
        if let Some(item) = self.items.pop() {
            self.ids.truncate(item.id.start);
            self.values.truncate(item.value.start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_added_cut_and_read_back() {
        let mut batch = Batch::default();
        batch.values.extend_from_slice(b"one");
        batch.push_appended(b"a", 3, None);
        let mark = batch.mark();
        batch.values.extend_from_slice(b"");
        batch.push_appended(b"bb", 0, Some(5));
        batch.values.extend_from_slice(b"three");
        batch.push_appended(b"c", 5, None);
        batch.set_last_pttl(-1);
        assert_eq!(batch.len(), 3);
        let records: Vec<Record<'_>> = batch.records().collect();
        assert_eq!(records[1].id, b"bb");
        assert_eq!(records[1].id_nul, b"bb\0");
        assert_eq!(records[1].value, b"");
        assert_eq!(records[1].pttl_ms, Some(5));
        assert_eq!(records[2].value, b"three");
        assert_eq!(records[2].pttl_ms, Some(-1));
        batch.pop();
        assert_eq!(batch.len(), 2);
        batch.cut(mark);
        let records: Vec<Record<'_>> = batch.records().collect();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (records[0].id_nul, records[0].value),
            (&b"a\0"[..], &b"one"[..])
        );
        assert_eq!(batch.value_bytes(), 3);
        batch.clear();
        assert!(batch.is_empty());
    }
}
