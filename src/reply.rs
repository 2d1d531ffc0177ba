//! RESP2 replies: the value a node answers, and the reader that decodes it
//! from a connection's socket.
//!
//! Why our own reader rather than redis-rs's parser: that parser (through
//! combine's buffered reader) zero-fills its read buffer before every
//! socket read, which would be most of a call's instructions
//! (bench/README.md, "Where the time goes", has the figures), and it hands
//! a GET's value back as a `Vec`, to be copied again into the `malloc`'d
//! buffer C receives. This reader keeps one buffer per connection, zeroed
//! once when it is made, and reads a bulk string straight into the
//! destination the caller chose.
//!
//! Only RESP2 is spoken (we never send `HELLO 3`), on every server version.
//! Replies from the network are untrusted: lengths, nesting and line sizes
//! are bounded, and anything malformed is a protocol error (the connection
//! is then dropped, since it is no longer in step).
//!
//! redis-rs's `parse_redis_value` is this reader's oracle in the tests
//! (`tests/redis_oracle.rs`, fuzz target `reply_oracle`): whatever this
//! reader accepts, redis-rs reads to an equal value. Known differences, all
//! places where this reader is the stricter one, except the last:
//! - a length below -1 (`$-2`, `*-5`) is a protocol error here, nil there;
//! - RESP3 types (`%`, `~`, `_`, `,`, `#`, `!`, `=`, `(`, `>`, `|`) are
//!   errors here: we never send `HELLO 3`;
//! - nesting deeper than 8 levels is refused here (redis-rs: 100);
//! - a bulk string above 512 MB (Redis's `proto-max-bulk-len`), or a GET's
//!   above `max-value-bytes`, is refused here before it is read;
//! - numbers: no sign `+`, no spaces, no bare LF as a line end here;
//! - a status or error line that is not UTF-8 is read lossily here (U+FFFD)
//!   and refused by redis-rs; the oracle skips such lines.

use std::fmt;
use std::io::{self, Read};
use std::ops::Range;

use crate::error::{Error, ReplyClass};
use crate::malloc_buf::{MallocBuf, OutOfMemory};

/// One RESP2 reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `$-1` or `*-1`.
    Nil,
    /// `:<n>`.
    Int(i64),
    /// `$<len>` and that many bytes.
    BulkString(Vec<u8>),
    /// `*<n>` and that many replies.
    Array(Vec<Value>),
    /// `+OK`, the commonest status, without an allocation.
    Okay,
    /// `+<text>`: any other status.
    SimpleString(String),
    /// `-<text>`: an error reply.
    ServerError(ServerError),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Int(n) => write!(f, "int({n})"),
            Value::BulkString(b) => write!(f, "bulk({:?})", String::from_utf8_lossy(b)),
            Value::Array(items) => f.debug_list().entries(items).finish(),
            Value::Okay => write!(f, "OK"),
            Value::SimpleString(s) => write!(f, "status({s:?})"),
            Value::ServerError(e) => write!(f, "error({:?})", e.text()),
        }
    }
}

/// An error reply (`-CODE detail`): the code is its first word. Its class
/// is decided here, once, as the reply is read.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ServerError {
    text: String,
    class: ReplyClass,
}

impl ServerError {
    /// An error reply of this text (without the `-`), classified.
    pub fn new(text: impl Into<String>) -> ServerError {
        let text = text.into();
        let class = ReplyClass::of(&text);
        ServerError { text, class }
    }

    /// Its class, decided from its code when it was read.
    pub fn class(&self) -> ReplyClass {
        self.class
    }

    /// This reply as the call's error, with its full text.
    pub fn to_error(&self) -> Error {
        Error::from_reply(self.class, &self.text)
    }

    /// `MOVED`, `ERR`, `NOPERM`, ...
    pub fn code(&self) -> &str {
        self.text.split(' ').next().unwrap_or("")
    }

    /// What follows the code, if anything.
    pub fn details(&self) -> Option<&str> {
        self.text.split_once(' ').map(|(_, detail)| detail)
    }

    /// The whole reply line, code included.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// This reply to `args` as an error: a NOPERM names the ACL permission
    /// that is missing (`permission denied: the ACL lacks +cluster|nodes`),
    /// so that an operator can fix the rule; the class stays (callers match
    /// on it, not on these words). Other replies as [`ServerError::to_error`].
    pub fn to_error_for(&self, args: &[&[u8]]) -> Error {
        let mut error = self.to_error();
        if self.class == ReplyClass::NoPerm {
            error.message = format!("permission denied: the ACL lacks +{}", acl_name(args));
        }
        error
    }
}

/// The ACL name of a command: `ping`, `cluster|nodes`, `memory|usage`.
pub fn acl_name(args: &[&[u8]]) -> String {
    let word = |i: usize| {
        args.get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .unwrap_or_default()
    };
    let command = word(0);
    match command.as_str() {
        "cluster" | "config" | "memory" | "client" | "object" => format!("{command}|{}", word(1)),
        _ => command,
    }
}

impl Value {
    /// The text of a bulk, simple or verbatim string reply (bytes that are
    /// not UTF-8 read lossily).
    pub fn text(&self) -> Option<String> {
        match self {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            Value::Okay => Some("OK".to_string()),
            _ => None,
        }
    }
}

/// What went wrong reading a reply.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed (timeout, reset, TLS alert).
    Io(io::Error),
    /// The node closed the connection.
    Closed,
    /// The bytes are not RESP2 (or break one of our bounds).
    Protocol(String),
    /// A bulk string read with [`ReplyReader::read_bulk`] announced more
    /// bytes than the reader takes (`max-value-bytes`). Its bytes are left
    /// unread: the connection is out of step and must be closed.
    TooLarge {
        /// The length the reply announced.
        len: usize,
        /// The reader's limit.
        max: usize,
    },
}

/// A reply that was expected to be a bulk string: the bytes, in a buffer
/// that can go to C, or whatever else came instead.
pub enum Bulk {
    /// The string's bytes.
    Data(MallocBuf),
    /// `$-1`: for a GET, no such key.
    Nil,
    /// Any other reply, such as an error.
    Other(Value),
}

/// A reply that was expected to be a bulk string, read by
/// [`ReplyReader::read_bulk_append`].
#[derive(Debug)]
pub enum Appended {
    /// This many bytes were appended.
    Data(usize),
    /// `$-1`: nothing appended.
    Nil,
    /// Any other reply, such as an error; nothing appended.
    Other(Value),
}

/// Bytes read per `read` call; also the buffer each connection keeps.
const BUFFER_BYTES: usize = 8 * 1024;
/// A status or error line longer than this is not a Redis reply.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Redis's own limit (`proto-max-bulk-len`, 512 MB by default).
const MAX_BULK_BYTES: usize = 512 * 1024 * 1024;
/// Deep enough for every reply we ask for (CLUSTER SLOTS nests 3 levels).
const MAX_DEPTH: usize = 8;
/// An array header is not trusted for more preallocation than this.
const MAX_PREALLOCATED_ITEMS: usize = 1024;

/// Decodes replies from a byte stream, buffering what it read ahead.
pub struct ReplyReader {
    buf: Vec<u8>,
    /// The largest bulk string `read_bulk` takes (a GET's value).
    max_value: usize,
    /// `buf[start..end]` is read but not yet consumed.
    start: usize,
    end: usize,
}

impl Default for ReplyReader {
    fn default() -> Self {
        ReplyReader::new()
    }
}

enum Header {
    Status(Range<usize>),
    Error(Range<usize>),
    Int(i64),
    Bulk(Option<usize>),
    Array(Option<usize>),
}

impl ReplyReader {
    /// A reader that takes bulk strings up to Redis's own limit (512 MB).
    pub fn new() -> ReplyReader {
        ReplyReader::with_max_value(MAX_BULK_BYTES)
    }

    /// A reader whose [`ReplyReader::read_bulk`] refuses values longer than
    /// `max` bytes before allocating anything for them.
    pub fn with_max_value(max: usize) -> ReplyReader {
        ReplyReader {
            buf: vec![0; BUFFER_BYTES],
            max_value: max.min(MAX_BULK_BYTES),
            start: 0,
            end: 0,
        }
    }

    /// Reads one whole reply.
    pub fn read_value(&mut self, src: &mut impl Read) -> Result<Value, ReadError> {
        let header = self.header(src)?;
        self.value(src, header, 0)
    }

    /// Reads one reply that should be a bulk string, straight into a
    /// `malloc`'d buffer; anything else is returned as a value. A bulk string
    /// longer than the reader's `max_value` is [`ReadError::TooLarge`].
    pub fn read_bulk(&mut self, src: &mut impl Read) -> Result<Bulk, ReadError> {
        match self.header(src)? {
            Header::Bulk(None) => Ok(Bulk::Nil),
            Header::Bulk(Some(len)) if len > self.max_value => Err(ReadError::TooLarge {
                len,
                max: self.max_value,
            }),
            Header::Bulk(Some(len)) => {
                let mut out = MallocBuf::new(len).ok_or_else(|| {
                    out_of_memory(&format!(
                        "out of memory: could not allocate the buffer of a {len}-byte value"
                    ))
                })?;
                self.bulk_body(src, &mut MallocDest(&mut out))?;
                Ok(Bulk::Data(out))
            }
            other => self.value(src, other, 0).map(Bulk::Other),
        }
    }

    /// Reads one reply that should be a bulk string, appending its bytes to
    /// `out` (a bulk read's arena, reused from batch to batch): `Data(len)`
    /// is the number of bytes appended. A bulk string longer than the
    /// reader's `max_value` is [`ReadError::TooLarge`]. On an error `out` may
    /// hold part of the value after its old length: the caller truncates.
    pub fn read_bulk_append(
        &mut self,
        src: &mut impl Read,
        out: &mut Vec<u8>,
    ) -> Result<Appended, ReadError> {
        match self.header(src)? {
            Header::Bulk(None) => Ok(Appended::Nil),
            Header::Bulk(Some(len)) if len > self.max_value => Err(ReadError::TooLarge {
                len,
                max: self.max_value,
            }),
            Header::Bulk(Some(len)) => {
                let start = out.len();
                let mut dest = VecDest {
                    vec: out,
                    len: start + len,
                    filled: start,
                };
                dest.grow(len.min(BUFFER_BYTES))?;
                self.bulk_body(src, &mut dest)?;
                Ok(Appended::Data(len))
            }
            other => self.value(src, other, 0).map(Appended::Other),
        }
    }

    fn value(
        &mut self,
        src: &mut impl Read,
        header: Header,
        depth: usize,
    ) -> Result<Value, ReadError> {
        Ok(match header {
            Header::Status(line) => {
                let line = &self.buf[line];
                if line == b"OK" {
                    Value::Okay
                } else {
                    Value::SimpleString(String::from_utf8_lossy(line).into_owned())
                }
            }
            Header::Error(line) => Value::ServerError(ServerError::new(
                String::from_utf8_lossy(&self.buf[line]).into_owned(),
            )),
            Header::Int(n) => Value::Int(n),
            Header::Bulk(None) | Header::Array(None) => Value::Nil,
            Header::Bulk(Some(len)) => {
                let mut out = Vec::new();
                let mut dest = VecDest {
                    vec: &mut out,
                    len,
                    filled: 0,
                };
                // Not trusted for more than a buffer's worth up front.
                dest.grow(len.min(BUFFER_BYTES))?;
                self.bulk_body(src, &mut dest)?;
                Value::BulkString(out)
            }
            Header::Array(Some(count)) => {
                if depth >= MAX_DEPTH {
                    return Err(protocol(format!(
                        "a reply nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                let too_many = || {
                    out_of_memory(&format!(
                        "out of memory: could not allocate the room for a {count}-item reply array"
                    ))
                };
                let mut items = Vec::new();
                items
                    .try_reserve_exact(count.min(MAX_PREALLOCATED_ITEMS))
                    .map_err(|_| too_many())?;
                for _ in 0..count {
                    let header = self.header(src)?;
                    let item = self.value(src, header, depth + 1)?;
                    // `push` aborts the process when growing fails, and the
                    // count came from the network.
                    items.try_reserve(1).map_err(|_| too_many())?;
                    items.push(item);
                }
                Value::Array(items)
            }
        })
    }

    /// Reads a type byte and its line.
    fn header(&mut self, src: &mut impl Read) -> Result<Header, ReadError> {
        let line = self.line(src)?;
        let Some((&kind, _)) = self.buf[line.clone()].split_first() else {
            return Err(protocol("an empty reply line".to_string()));
        };
        let rest = line.start + 1..line.end;
        Ok(match kind {
            b'+' => Header::Status(rest),
            b'-' => Header::Error(rest),
            b':' => Header::Int(self.integer(rest)?),
            b'$' => Header::Bulk(self.length(rest, MAX_BULK_BYTES, "bulk string")?),
            b'*' => Header::Array(self.length(rest, usize::MAX, "array")?),
            other => {
                return Err(protocol(format!(
                    "unexpected reply type byte 0x{other:02x} (is this a Redis node?)"
                )))
            }
        })
    }

    /// A length: -1 is nil, anything else negative or above `max` is an error.
    fn length(
        &self,
        digits: Range<usize>,
        max: usize,
        what: &str,
    ) -> Result<Option<usize>, ReadError> {
        match self.integer(digits)? {
            -1 => Ok(None),
            n if n < 0 => Err(protocol(format!("{what} of negative length {n}"))),
            n if n as u64 > max as u64 => Err(protocol(format!(
                "{what} of {n} bytes is larger than the protocol allows"
            ))),
            n => Ok(Some(n as usize)),
        }
    }

    fn integer(&self, digits: Range<usize>) -> Result<i64, ReadError> {
        parse_i64(&self.buf[digits.clone()]).ok_or_else(|| {
            protocol(format!(
                "not a number: {:?}",
                String::from_utf8_lossy(&self.buf[digits])
            ))
        })
    }

    /// The next line (without its CRLF), as a range of `buf`, valid until
    /// the next read from the socket.
    fn line(&mut self, src: &mut impl Read) -> Result<Range<usize>, ReadError> {
        // Bytes before `scanned` (relative to `start`) hold no '\n'.
        let mut scanned = 0;
        loop {
            let unread = &self.buf[self.start + scanned..self.end];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                let newline = self.start + scanned + i;
                if newline == self.start || self.buf[newline - 1] != b'\r' {
                    return Err(protocol("a reply line not ended by CRLF".to_string()));
                }
                let line = self.start..newline - 1;
                self.start = newline + 1;
                return Ok(line);
            }
            scanned = self.end - self.start;
            self.fill(src)?;
        }
    }

    /// Reads more bytes after what is buffered, making room first.
    fn fill(&mut self, src: &mut impl Read) -> Result<(), ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_LINE_BYTES {
                let bigger = (self.buf.len() * 2).min(MAX_LINE_BYTES);
                self.buf.resize(bigger, 0);
            } else {
                return Err(protocol(format!(
                    "a reply line longer than {MAX_LINE_BYTES} bytes"
                )));
            }
        }
        let n = read_some(src, &mut self.buf[self.end..])?;
        self.end += n;
        Ok(())
    }

    /// Reads a bulk string's `len` bytes and its CRLF into `dest`. Small
    /// remainders go through the buffer (one read also brings what follows);
    /// large ones are read straight into `dest`.
    fn bulk_body(&mut self, src: &mut impl Read, dest: &mut dyn Dest) -> Result<(), ReadError> {
        loop {
            let missing = dest.missing();
            let buffered = self.end - self.start;
            let take = missing.min(buffered);
            dest.push(&self.buf[self.start..self.start + take])?;
            self.start += take;
            let missing = missing - take;
            if missing == 0 {
                break;
            }
            if missing >= BUFFER_BYTES / 2 {
                let n = read_some(src, dest.unfilled_mut()?)?;
                dest.advance(n);
            } else {
                self.fill(src)?;
            }
        }
        while self.end - self.start < 2 {
            self.fill(src)?;
        }
        if &self.buf[self.start..self.start + 2] != b"\r\n" {
            return Err(protocol("a bulk string not ended by CRLF".to_string()));
        }
        self.start += 2;
        Ok(())
    }
}

/// Where a bulk string's bytes go. Growing it may fail: the length came
/// from the network, so a failed allocation is an error, never a panic or
/// an abort.
trait Dest {
    fn missing(&self) -> usize;
    fn push(&mut self, bytes: &[u8]) -> Result<(), ReadError>;
    /// Zeroed room for a direct read; then `advance` by what was read.
    fn unfilled_mut(&mut self) -> Result<&mut [u8], ReadError>;
    fn advance(&mut self, n: usize);
}

/// Largest zero-filled stretch made ready for one direct read: a lying
/// length must not make us zero (and commit) 512 MB before a byte arrives.
const DIRECT_READ_CHUNK: usize = 1024 * 1024;

struct VecDest<'a> {
    /// `vec[..filled]` is value (after whatever `vec` held before, for
    /// `read_bulk_append`); past that, zeroes made ready for reads.
    vec: &'a mut Vec<u8>,
    /// Where the bulk string ends in `vec`.
    len: usize,
    filled: usize,
}

impl Dest for VecDest<'_> {
    fn missing(&self) -> usize {
        self.len - self.filled
    }
    fn push(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        let in_place = (self.vec.len() - self.filled).min(bytes.len());
        self.vec[self.filled..self.filled + in_place].copy_from_slice(&bytes[..in_place]);
        self.grow(bytes.len() - in_place)?;
        self.vec.extend_from_slice(&bytes[in_place..]);
        self.filled += bytes.len();
        Ok(())
    }
    fn unfilled_mut(&mut self) -> Result<&mut [u8], ReadError> {
        let want = self.filled + (self.len - self.filled).min(DIRECT_READ_CHUNK);
        if self.vec.len() < want {
            self.grow(want - self.vec.len())?;
            self.vec.resize(want, 0);
        }
        Ok(&mut self.vec[self.filled..])
    }
    fn advance(&mut self, n: usize) {
        self.filled += n;
    }
}

impl VecDest<'_> {
    /// `Vec`'s own growth aborts the process when memory runs out.
    fn grow(&mut self, more: usize) -> Result<(), ReadError> {
        self.vec.try_reserve(more).map_err(|_| {
            out_of_memory(&format!(
                "out of memory: could not allocate the room for a {}-byte reply string",
                self.len
            ))
        })
    }
}

struct MallocDest<'a>(&'a mut MallocBuf);

impl Dest for MallocDest<'_> {
    fn missing(&self) -> usize {
        self.0.len() - self.0.filled()
    }
    fn push(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        self.0.push(bytes).map_err(malloc_failed)
    }
    fn unfilled_mut(&mut self) -> Result<&mut [u8], ReadError> {
        self.0
            .unfilled_mut(DIRECT_READ_CHUNK)
            .map_err(malloc_failed)
    }
    fn advance(&mut self, n: usize) {
        self.0.advance(n);
    }
}

/// One `read`, retried on EINTR; 0 bytes means the peer closed.
fn read_some(src: &mut impl Read, into: &mut [u8]) -> Result<usize, ReadError> {
    loop {
        match src.read(into) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

fn protocol(message: String) -> ReadError {
    ReadError::Protocol(message)
}

/// An allocation for a reply failed: an I/O error of kind `OutOfMemory`, so
/// that it is classified with the host's other shortages (error.rs).
fn out_of_memory(message: &str) -> ReadError {
    ReadError::Io(io::Error::new(io::ErrorKind::OutOfMemory, message))
}

fn malloc_failed(e: OutOfMemory) -> ReadError {
    out_of_memory(&e.to_string())
}

/// A decimal integer, optionally negative, without overflow.
fn parse_i64(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = (d - b'0') as i64;
        n = n.checked_mul(10)?;
        n = if negative {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

/// A byte source that hands out its bytes `step` at a time, as a socket
/// may: for the unit tests and the fuzz target.
#[doc(hidden)]
pub struct Trickle<'a> {
    pub bytes: &'a [u8],
    pub step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

// The tests' writer of replies lives with the test code, so that the
// library keeps one RESP writer (resp.rs, for commands).
#[cfg(test)]
#[path = "../tests/oracle/encode.rs"]
mod encode;

#[cfg(test)]
mod tests {
    use super::encode::encode;
    use super::*;

    fn read_all(bytes: &[u8], step: usize) -> Result<Vec<Value>, ReadError> {
        let mut src = Trickle { bytes, step };
        let mut reader = ReplyReader::new();
        let mut values = Vec::new();
        while !src.bytes.is_empty() || reader.start < reader.end {
            values.push(reader.read_value(&mut src)?);
        }
        Ok(values)
    }

    fn protocol_error(bytes: &[u8]) -> String {
        match read_all(bytes, 3) {
            Err(ReadError::Protocol(m)) => m,
            other => panic!(
                "{:?}: expected a protocol error, got {other:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    /// A deterministic mix of every kind of value, some larger than the buffer.
    fn samples() -> Vec<Value> {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        vec![
            Value::Okay,
            Value::Int(0),
            Value::Int(-1),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Nil,
            Value::BulkString(Vec::new()),
            Value::BulkString(b"with\r\nCRLF\0and NUL".to_vec()),
            Value::BulkString(vec![b'x'; BUFFER_BYTES - 3]),
            Value::BulkString(vec![b'y'; BUFFER_BYTES * 3 + 1]),
            Value::BulkString(big),
            Value::SimpleString("QUEUED".into()),
            Value::ServerError(ServerError::new("MOVED 3999 127.0.0.1:7002")),
            Value::ServerError(ServerError::new("ERR")),
            Value::Array(vec![]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                Value::Array(vec![
                    Value::BulkString(b"127.0.0.1".to_vec()),
                    Value::Int(7000),
                    Value::BulkString(b"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca".to_vec()),
                ]),
            ]),
        ]
    }

    #[test]
    fn decodes_every_kind_however_the_bytes_arrive() {
        let values = samples();
        let mut bytes = Vec::new();
        values.iter().for_each(|v| encode(v, &mut bytes));
        for step in [1, 2, 3, 7, 100, 4096, 8191, 8192, 65536, usize::MAX] {
            let got = read_all(&bytes, step).unwrap_or_else(|e| panic!("step {step}: {e:?}"));
            assert_eq!(got, values, "step {step}");
        }
    }

    /// `read_bulk_append` puts each value after the last in one arena, and
    /// reads every other reply as a value, however the bytes arrive.
    #[test]
    fn bulk_strings_are_appended_to_an_arena() {
        let values = samples();
        let mut bytes = Vec::new();
        values.iter().for_each(|v| encode(v, &mut bytes));
        for step in [1, 3, 100, 8192, usize::MAX] {
            let mut src = Trickle {
                bytes: &bytes,
                step,
            };
            let mut reader = ReplyReader::new();
            let mut arena = b"before".to_vec();
            let mut expected = arena.clone();
            for value in &values {
                match (
                    reader.read_bulk_append(&mut src, &mut arena).unwrap(),
                    value,
                ) {
                    (Appended::Data(n), Value::BulkString(b)) => {
                        assert_eq!(n, b.len());
                        expected.extend_from_slice(b);
                    }
                    (Appended::Nil, Value::Nil) => {}
                    (Appended::Other(got), want) => assert_eq!(&got, want),
                    (got, want) => panic!("step {step}: {got:?} for {want:?}"),
                }
                assert_eq!(arena, expected, "step {step}");
            }
        }
        let mut reader = ReplyReader::with_max_value(4);
        let mut arena = Vec::new();
        let got = reader.read_bulk_append(&mut &b"$5\r\nhello\r\n"[..], &mut arena);
        assert!(
            matches!(got, Err(ReadError::TooLarge { len: 5, max: 4 })),
            "{got:?}"
        );
    }

    #[test]
    fn bulk_strings_go_straight_into_malloc_buffers() {
        for len in [
            0,
            1,
            1024,
            4096,
            BUFFER_BYTES - 5,
            BUFFER_BYTES,
            3 * BUFFER_BYTES + 7,
            2_000_000,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let mut bytes = Vec::new();
            encode(&Value::BulkString(data.clone()), &mut bytes);
            bytes.extend_from_slice(b"$-1\r\n-ERR no\r\n:7\r\n");
            for step in [1, 5, 4096, usize::MAX] {
                if step == 1 && len > 100_000 {
                    continue;
                }
                let mut src = Trickle {
                    bytes: &bytes,
                    step,
                };
                let mut reader = ReplyReader::new();
                match reader.read_bulk(&mut src) {
                    Ok(Bulk::Data(buf)) => assert!(buf.as_slice() == data, "len {len} step {step}"),
                    _ => panic!("len {len} step {step}: not data"),
                }
                assert!(matches!(reader.read_bulk(&mut src), Ok(Bulk::Nil)));
                match reader.read_bulk(&mut src) {
                    Ok(Bulk::Other(Value::ServerError(e))) => assert_eq!(e.code(), "ERR"),
                    _ => panic!("expected the error reply"),
                }
                assert_eq!(reader.read_value(&mut src).unwrap(), Value::Int(7));
            }
        }
    }

    #[test]
    fn error_replies_split_into_code_and_details() {
        let e = ServerError::new("ASK 12 127.0.0.1:7001");
        assert_eq!((e.code(), e.details()), ("ASK", Some("12 127.0.0.1:7001")));
        let e = ServerError::new("CLUSTERDOWN");
        assert_eq!((e.code(), e.details()), ("CLUSTERDOWN", None));
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        assert!(protocol_error(b"!3\r\nabc\r\n").contains("type byte 0x21"));
        assert!(protocol_error(b"+OK\n").contains("CRLF"));
        assert!(protocol_error(b"\r\n").contains("empty"));
        assert!(protocol_error(b":12a\r\n").contains("not a number"));
        assert!(protocol_error(b":99999999999999999999\r\n").contains("not a number"));
        assert!(protocol_error(b":-\r\n").contains("not a number"));
        assert!(protocol_error(b"$-2\r\n").contains("negative"));
        assert!(protocol_error(b"$3\r\nabcd\r\n").contains("CRLF"));
        assert!(protocol_error(b"$999999999999\r\n").contains("larger than the protocol allows"));
        assert!(protocol_error(b"*-5\r\n").contains("negative"));
        assert!(protocol_error(&b"*1\r\n".repeat(MAX_DEPTH + 1)).contains("deeper"));
        let mut long = b"+".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES + 10));
        assert!(protocol_error(&long).contains("longer than"));
    }

    #[test]
    fn huge_announced_arrays_and_bulks_do_not_allocate_up_front() {
        // The peer closes long before: we must fail on the close, not on memory.
        for bytes in [&b"*2000000000\r\n:1\r\n"[..], b"$500000000\r\nabc"] {
            assert!(matches!(read_all(bytes, 64), Err(ReadError::Closed)));
        }
        let mut src = Trickle {
            bytes: b"$500000000\r\nabc",
            step: 64,
        };
        assert!(matches!(
            ReplyReader::new().read_bulk(&mut src),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn values_over_the_limit_are_refused_before_any_allocation() {
        let mut bytes = Vec::new();
        encode(&Value::BulkString(b"0123456789a".to_vec()), &mut bytes);
        let read = |max: usize, bytes: &[u8]| {
            let mut src = Trickle { bytes, step: 4 };
            ReplyReader::with_max_value(max).read_bulk(&mut src)
        };
        assert!(matches!(read(11, &bytes), Ok(Bulk::Data(b)) if b.as_slice() == b"0123456789a"));
        assert!(matches!(
            read(10, &bytes),
            Err(ReadError::TooLarge { len: 11, max: 10 })
        ));
        // 500 MB announced, 3 bytes sent: refused on the header, where the
        // unlimited reader waits for the bytes (and meets the close).
        assert!(matches!(
            read(64 << 20, b"$500000000\r\nabc"),
            Err(ReadError::TooLarge {
                len: 500_000_000,
                max: 67_108_864
            })
        ));
        // Only a GET's value is limited: other replies keep the protocol's bound.
        let mut src = Trickle {
            bytes: &bytes,
            step: 4,
        };
        assert_eq!(
            ReplyReader::with_max_value(1).read_value(&mut src).unwrap(),
            Value::BulkString(b"0123456789a".to_vec())
        );
    }

    #[test]
    fn a_failed_allocation_is_an_out_of_memory_error() {
        let e = malloc_failed(OutOfMemory { len: 10, cap: 8 });
        match e {
            ReadError::Io(e) => {
                assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
                assert!(e.to_string().contains("10-byte value"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_array_too_large_for_memory_is_an_out_of_memory_error() {
        const ITEMS: usize = 100_000;
        const LIMIT: usize = 1 << 20;
        assert!(ITEMS * std::mem::size_of::<Value>() > 2 * LIMIT);
        let mut bytes = format!("*{ITEMS}\r\n").into_bytes();
        bytes.extend(b":1\r\n".repeat(ITEMS));
        let mut src = Trickle {
            bytes: &bytes,
            step: usize::MAX,
        };
        let mut reader = ReplyReader::new();
        // Allocations above 1 MiB fail: the items' vector cannot grow to
        // hold them all.
        let got = crate::alloc_limit::with_limit(LIMIT, || reader.read_value(&mut src));
        match got {
            Err(ReadError::Io(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
                assert!(e.to_string().contains("100000-item"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_close_mid_reply_is_reported() {
        for bytes in [&b"+O"[..], b"$5\r\nab", b"*2\r\n:1\r\n", b"$2\r\nab\r"] {
            assert!(
                matches!(read_all(bytes, 1), Err(ReadError::Closed)),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn integers_parse_exactly() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"+1"), None);
    }
}
