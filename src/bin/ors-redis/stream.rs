//! The session stream of `sessions export` and `sessions import`: JSON
//! lines, one header, one line per session, one end line. docs/operators.md
//! ("The session stream") is its reference; this module is its one reader
//! and writer.
//!
//! ```text
//! {"format":"ors-redis-sessions","version":1,"cluster_name":"ORS_EU","exported_at_ms":1767225600000}
//! {"id":"00AB12CD-node7","value":"AAFiaW7/YXJ5gA==","pttl_ms":2591990000}
//! {"id_b64":"c2Vzcy3/","value":"","pttl_ms":3600000}
//! {"end":true,"records":2}
//! ```
//!
//! A value is standard base64 with padding (RFC 4648), so any byte
//! survives. An id is a JSON string when it is UTF-8, else `id_b64`.
//! `pttl_ms` is what the session had left at `exported_at_ms` (the writer
//! adds the time from the header to the read), so the session expires at
//! `exported_at_ms + pttl_ms`; -1 is a key without TTL. The end line tells
//! a whole stream from one cut short. The reader is strict: an unknown
//! field, a bad base64, an invalid session id or anything after the end
//! line is an error that names its line.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use ors_redis::operator::SessionId;

/// The header's `format`.
pub(crate) const FORMAT: &str = "ors-redis-sessions";
/// The header's `version`: bumped when a reader of this version could no
/// longer read the stream right.
pub(crate) const VERSION: u32 = 1;
/// A line may hold, beside its value's base64, an id (at most 1024 bytes,
/// as base64 or with `"` and `\` escaped) and the field names.
const LINE_OVERHEAD: usize = 4096;

/// The first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    pub format: String,
    pub version: u32,
    pub cluster_name: String,
    /// Milliseconds since the Unix epoch, when the export began.
    pub exported_at_ms: u64,
}

/// One session read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub id: Vec<u8>,
    pub value: Vec<u8>,
    /// What it had left at the header's `exported_at_ms`; -1: no TTL.
    pub pttl_ms: i64,
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Writes a stream: the header at once, a line per [`Writer::record`], the
/// end line at [`Writer::finish`].
pub(crate) struct Writer<W: Write> {
    out: W,
    exported_at_ms: u64,
    records: u64,
    line: String,
}

impl<W: Write> Writer<W> {
    pub(crate) fn new(mut out: W, cluster_name: &str, exported_at_ms: u64) -> io::Result<Self> {
        let header = Header {
            format: FORMAT.to_string(),
            version: VERSION,
            cluster_name: cluster_name.to_string(),
            exported_at_ms,
        };
        let mut line = serde_json::to_string(&header).map_err(io::Error::other)?;
        line.push('\n');
        out.write_all(line.as_bytes())?;
        Ok(Writer {
            out,
            exported_at_ms,
            records: 0,
            line,
        })
    }

    /// One session, `pttl_ms` as PTTL gave it just now (-1: no TTL).
    pub(crate) fn record(&mut self, id: &[u8], value: &[u8], pttl_ms: i64) -> io::Result<()> {
        self.record_at(id, value, pttl_ms, now_ms())
    }

    /// As [`Writer::record`], with a PTTL read at `read_at_ms`.
    pub(crate) fn record_at(
        &mut self,
        id: &[u8],
        value: &[u8],
        pttl_ms: i64,
        read_at_ms: u64,
    ) -> io::Result<()> {
        let line = &mut self.line;
        line.clear();
        match std::str::from_utf8(id) {
            Ok(text) => {
                line.push_str("{\"id\":");
                line.push_str(&serde_json::to_string(text).map_err(io::Error::other)?);
            }
            Err(_) => {
                line.push_str("{\"id_b64\":\"");
                STANDARD.encode_string(id, line);
                line.push('"');
            }
        }
        line.push_str(",\"value\":\"");
        STANDARD.encode_string(value, line);
        line.push_str("\",\"pttl_ms\":");
        let pttl = if pttl_ms > 0 {
            let since_header = read_at_ms.saturating_sub(self.exported_at_ms);
            pttl_ms.saturating_add(i64::try_from(since_header).unwrap_or(i64::MAX))
        } else {
            pttl_ms
        };
        line.push_str(&pttl.to_string());
        line.push_str("}\n");
        self.out.write_all(line.as_bytes())?;
        self.records += 1;
        Ok(())
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Flushes the records written so far, without the end line (an export
    /// that failed: the stream is then seen as cut short).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Writes the end line and flushes; returns the output.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        writeln!(self.out, "{{\"end\":true,\"records\":{}}}", self.records)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Why a stream cannot be read on.
#[derive(Debug)]
pub(crate) struct StreamError {
    /// 1-based; the header is line 1.
    pub line: u64,
    pub message: String,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Any one line of a stream after the header, as it is parsed: which
/// fields are there decides whether it is a record or the end line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id_b64: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Option<Cow<'a, str>>,
    pttl_ms: Option<i64>,
    end: Option<bool>,
    records: Option<u64>,
}

/// Reads a stream strictly, a record at a time.
pub(crate) struct Reader<R: BufRead> {
    input: R,
    header: Header,
    /// The number of the line last read.
    line_no: u64,
    max_value_bytes: usize,
    max_line: usize,
    records: u64,
    ended: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> Reader<R> {
    /// Reads and checks the header. Values longer than `max_value_bytes`
    /// (the config's max-value-bytes) are refused, and so no line can make
    /// the reader hold more than about 4/3 of that.
    pub(crate) fn new(input: R, max_value_bytes: usize) -> Result<Self, StreamError> {
        let mut reader = Reader {
            input,
            header: Header {
                format: String::new(),
                version: 0,
                cluster_name: String::new(),
                exported_at_ms: 0,
            },
            line_no: 0,
            max_value_bytes,
            max_line: max_value_bytes
                .div_ceil(3)
                .saturating_mul(4)
                .saturating_add(LINE_OVERHEAD),
            records: 0,
            ended: false,
            buf: Vec::new(),
        };
        if !reader.read_line()? {
            return Err(reader.bad("the input is empty (no ors-redis-sessions header)".into()));
        }
        reader.header = reader.parse_header()?;
        Ok(reader)
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The number of the line last read.
    pub(crate) fn line(&self) -> u64 {
        self.line_no
    }

    /// The next record; `None` after the end line (and nothing after it).
    pub(crate) fn next_record(&mut self) -> Result<Option<Record>, StreamError> {
        if self.ended {
            return Ok(None);
        }
        if !self.read_line()? {
            let message = format!(
                "the stream ends without its end line after {} record(s): the export did not \
                 finish, or the file was cut short",
                self.records
            );
            return Err(self.bad(message));
        }
        if !is_object(&self.buf) {
            return Err(self.bad("not a session line: a JSON object {...} expected".into()));
        }
        let parsed: Line<'_> = match serde_json::from_slice(&self.buf) {
            Ok(l) => l,
            Err(e) => return Err(self.bad(format!("not a session line: {}", json_error(&e)))),
        };
        let end = self.end_line(&parsed)?;
        if let Some(records) = end {
            if records != self.records {
                let message = format!(
                    "the end line says {records} record(s), the stream holds {}",
                    self.records
                );
                return Err(self.bad(message));
            }
            self.ended = true;
            if self.read_line()? {
                return Err(self.bad("something after the end line".into()));
            }
            return Ok(None);
        }
        let record = self.record(parsed)?;
        self.records += 1;
        Ok(Some(record))
    }

    /// `Some(records)` for the end line, `None` for a record line.
    fn end_line(&self, l: &Line<'_>) -> Result<Option<u64>, StreamError> {
        let record_fields =
            l.id.is_some() || l.id_b64.is_some() || l.value.is_some() || l.pttl_ms.is_some();
        match (l.end, l.records) {
            (None, None) => Ok(None),
            (Some(true), Some(n)) if !record_fields => Ok(Some(n)),
            _ => {
                Err(self.bad("an end line is {\"end\":true,\"records\":N} and nothing else".into()))
            }
        }
    }

    fn record(&self, l: Line<'_>) -> Result<Record, StreamError> {
        let id = match (l.id, l.id_b64) {
            (Some(text), None) => text.into_owned().into_bytes(),
            (None, Some(b64)) => STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| self.bad(format!("id_b64 is not base64: {e}")))?,
            _ => return Err(self.bad("a session line has either id or id_b64".into())),
        };
        if let Err(why) = SessionId::parse(&id) {
            return Err(self.bad(why));
        }
        let Some(value) = l.value else {
            return Err(self.bad("no value".into()));
        };
        let value = STANDARD
            .decode(value.as_bytes())
            .map_err(|e| self.bad(format!("value is not base64: {e}")))?;
        if value.len() > self.max_value_bytes {
            return Err(self.bad(format!(
                "the value is {} bytes, more than max-value-bytes ({}); raise max-value-bytes \
                 in the config to import it",
                value.len(),
                self.max_value_bytes
            )));
        }
        let pttl_ms = match l.pttl_ms {
            Some(n) if n > 0 || n == -1 => n,
            Some(n) => {
                return Err(self.bad(format!(
                    "pttl_ms is {n}: a positive number of milliseconds, or -1 for no TTL"
                )))
            }
            None => return Err(self.bad("no pttl_ms".into())),
        };
        Ok(Record { id, value, pttl_ms })
    }

    fn parse_header(&self) -> Result<Header, StreamError> {
        let parsed = if is_object(&self.buf) {
            serde_json::from_slice(&self.buf).map_err(|e| json_error(&e))
        } else {
            Err("a JSON object {...} expected".to_string())
        };
        let header: Header = parsed.map_err(|e| {
            self.bad(format!(
                "not an ors-redis-sessions header ({e}); is this a file that \
                 'ors-redis sessions export' wrote?"
            ))
        })?;
        if header.format != FORMAT {
            return Err(self.bad(format!("format is '{}', not '{FORMAT}'", header.format)));
        }
        if header.version != VERSION {
            return Err(self.bad(format!(
                "version {} of the format; this ors-redis reads version {VERSION}",
                header.version
            )));
        }
        Ok(header)
    }

    /// Reads the next line into `buf`, without its `\n`; false at the end
    /// of the input. A line longer than `max_line` is an error.
    fn read_line(&mut self) -> Result<bool, StreamError> {
        self.buf.clear();
        let limit = u64::try_from(self.max_line).unwrap_or(u64::MAX);
        let read = (&mut self.input)
            .take(limit.saturating_add(1))
            .read_until(b'\n', &mut self.buf);
        self.line_no += 1;
        match read {
            // At the end, `line_no` is that of the line that is missing.
            Ok(0) => Ok(false),
            Ok(_) => {
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                    Ok(true)
                } else if self.buf.len() > self.max_line {
                    Err(self.bad(format!(
                        "longer than {} bytes: a value bigger than max-value-bytes ({}), or \
                         not a session stream",
                        self.max_line, self.max_value_bytes
                    )))
                } else {
                    // The last line without its newline: cut short.
                    let message = "the input ends in the middle of a line: the export did not \
                                   finish, or the file was cut short"
                        .to_string();
                    Err(self.bad(message))
                }
            }
            Err(e) => Err(self.bad(format!("cannot read: {e}"))),
        }
    }

    fn bad(&self, message: String) -> StreamError {
        StreamError {
            line: self.line_no,
            message,
        }
    }
}

/// Whether a line is a JSON object: serde would also read a struct from an
/// array of its fields in order, which the format does not allow.
fn is_object(line: &[u8]) -> bool {
    line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// serde_json's message, its position given within the line (a stream's
/// line is one JSON document, so its "line 1" says nothing).
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => format!("{} at column {}", &text[..at], e.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_225_600_000;

    fn write(records: &[(&[u8], &[u8], i64)]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), "ORS_EU", T0).unwrap();
        for (id, value, pttl) in records {
            w.record_at(id, value, *pttl, T0).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, StreamError> {
        let mut r = Reader::new(bytes, 1 << 20)?;
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec);
        }
        Ok(out)
    }

    fn error_of(text: &str) -> StreamError {
        read_all(text.as_bytes()).unwrap_err()
    }

    const HEADER: &str = r#"{"format":"ors-redis-sessions","version":1,"cluster_name":"ORS_EU","exported_at_ms":1767225600000}"#;

    #[test]
    fn the_documented_example_reads() {
        let text = format!(
            "{HEADER}\n{}\n{}\n{}\n",
            r#"{"id":"00AB12CD-node7","value":"AAFiaW7/YXJ5gA==","pttl_ms":2591990000}"#,
            r#"{"id_b64":"c2Vzcy3/","value":"","pttl_ms":3600000}"#,
            r#"{"end":true,"records":2}"#
        );
        let mut r = Reader::new(text.as_bytes(), 1024).unwrap();
        assert_eq!(r.header().cluster_name, "ORS_EU");
        assert_eq!(r.header().exported_at_ms, T0);
        let a = r.next_record().unwrap().unwrap();
        assert_eq!(a.id, b"00AB12CD-node7");
        assert_eq!(a.value, b"\x00\x01bin\xffary\x80");
        assert_eq!(a.pttl_ms, 2_591_990_000);
        let b = r.next_record().unwrap().unwrap();
        assert_eq!(
            (b.id.as_slice(), b.value.as_slice()),
            (&b"sess-\xff"[..], &b""[..])
        );
        assert!(r.next_record().unwrap().is_none());
        assert!(r.next_record().unwrap().is_none(), "stays at the end");
        // What the writer writes for the same sessions is that text.
        let written = write(&[
            (b"00AB12CD-node7", b"\x00\x01bin\xffary\x80", 2_591_990_000),
            (b"sess-\xff", b"", 3_600_000),
        ]);
        assert_eq!(String::from_utf8(written).unwrap(), text);
    }

    #[test]
    fn binary_and_empty_values_round_trip() {
        let every_byte: Vec<u8> = (0..=255u8).collect();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let records: Vec<(&[u8], &[u8], i64)> = vec![
            (b"a", b"", 1),
            (b"b", &every_byte, 60_000),
            (b"c", &big, -1),
            (b"d", b"\n\r\"\\{}", i64::MAX),
        ];
        let back = read_all(&write(&records)).unwrap();
        assert_eq!(back.len(), records.len());
        for (rec, (id, value, pttl)) in back.iter().zip(&records) {
            assert_eq!((rec.id.as_slice(), rec.value.as_slice()), (*id, *value));
            assert_eq!(rec.pttl_ms, *pttl);
        }
    }

    #[test]
    fn ids_with_every_allowed_byte_round_trip() {
        let allowed: Vec<u8> = (0..=255u8)
            .filter(|b| SessionId::parse(&[*b]).is_ok())
            .collect();
        assert_eq!(allowed.len(), 256 - 33 - 2, "no controls, DEL or braces");
        // Every ASCII one in a UTF-8 id ("\\ and \" escaped), every byte in
        // one that is not UTF-8, and each byte alone.
        let ascii: Vec<u8> = allowed.iter().copied().filter(u8::is_ascii).collect();
        let mut ids = vec![
            ascii,
            allowed.clone(),
            "sess-é-✓-\u{2028}".as_bytes().to_vec(),
        ];
        ids.extend(allowed.iter().map(|b| vec![*b]));
        let records: Vec<(&[u8], &[u8], i64)> =
            ids.iter().map(|id| (id.as_slice(), &b"v"[..], 5)).collect();
        let bytes = write(&records);
        let text = String::from_utf8(bytes.clone()).expect("the stream is UTF-8 text");
        assert!(text.contains(r##"{"id":" !\"#$%&"##), "{text}");
        let back = read_all(&bytes).unwrap();
        let back_ids: Vec<Vec<u8>> = back.into_iter().map(|r| r.id).collect();
        assert_eq!(back_ids, ids);
    }

    #[test]
    fn pttl_is_as_of_the_header() {
        let mut w = Writer::new(Vec::new(), "X", T0).unwrap();
        w.record_at(b"later", b"", 10_000, T0 + 2_500).unwrap();
        w.record_at(b"clock-back", b"", 10_000, T0 - 1).unwrap();
        w.record_at(b"no-ttl", b"", -1, T0 + 2_500).unwrap();
        let back = read_all(&w.finish().unwrap()).unwrap();
        let pttls: Vec<i64> = back.iter().map(|r| r.pttl_ms).collect();
        assert_eq!(pttls, [12_500, 10_000, -1]);
    }

    #[test]
    fn bad_lines_name_their_line() {
        let rec = r#"{"id":"a","value":"dg==","pttl_ms":5}"#;
        let end1 = r#"{"end":true,"records":1}"#;
        for (text, line, words) in [
            (String::new(), 1, "empty"),
            ("hello\n".to_string(), 1, "not an ors-redis-sessions header"),
            (
                HEADER.replace("ors-redis-sessions", "other") + "\n",
                1,
                "format is 'other'",
            ),
            (
                HEADER.replace("\"version\":1", "\"version\":2") + "\n",
                1,
                "version 2",
            ),
            (
                format!("{HEADER}\n{rec}\n"),
                3,
                "without its end line after 1",
            ),
            (format!("{HEADER}\n{rec}"), 2, "in the middle of a line"),
            (format!("{HEADER}\n\n{end1}\n"), 2, "not a session line"),
            (
                format!("{HEADER}\n{{\"id\":\"a\"\n"),
                2,
                "not a session line",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("pttl_ms", "ttl")),
                2,
                "unknown field `ttl`",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("dg==", "dg=")),
                2,
                "value is not base64",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("dg==", "d*==")),
                2,
                "value is not base64",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("\"a\"", "\"a{b\"")),
                2,
                "brace",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("\"a\"", "\"\"")),
                2,
                "session id is empty",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("\"a\"", "\"a\\u0001\"")),
                2,
                "control character",
            ),
            (
                format!(
                    "{HEADER}\n{}\n",
                    rec.replace("\"id\":\"a\"", "\"id_b64\":\"!\"")
                ),
                2,
                "id_b64 is not base64",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("\"id\":\"a\",", "")),
                2,
                "either id or id_b64",
            ),
            (
                format!(
                    "{HEADER}\n{}\n",
                    rec.replace("\"id\":\"a\"", "\"id\":\"a\",\"id_b64\":\"YQ==\"")
                ),
                2,
                "either id or id_b64",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("\"value\":\"dg==\",", "")),
                2,
                "no value",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace(":5}", ":0}")),
                2,
                "pttl_ms is 0",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace(":5}", ":-2}")),
                2,
                "pttl_ms is -2",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace(":5}", ":5.5}")),
                2,
                "not a session line",
            ),
            (
                format!("{HEADER}\n{}\n", rec.replace("\"a\"", "\"a\",\"id\":\"b\"")),
                2,
                "duplicate field",
            ),
            (
                format!("{HEADER}\n{rec}\n{rec}\n{end1}\n"),
                4,
                "says 1 record(s), the stream holds 2",
            ),
            (
                format!("{HEADER}\n{rec}\n{end1}\n{rec}\n"),
                4,
                "after the end line",
            ),
            (
                format!("{HEADER}\n{rec}\n{{\"end\":false,\"records\":1}}\n"),
                3,
                "an end line is",
            ),
            (
                format!("{HEADER}\n{{\"end\":true,\"records\":0,\"id\":\"a\"}}\n"),
                2,
                "an end line is",
            ),
            (
                format!("{HEADER}\n[1,2]\n"),
                2,
                "not a session line: a JSON object",
            ),
            (
                format!("{HEADER}\n[\"a\",null,\"dg==\",5,null,null]\n"),
                2,
                "a JSON object",
            ),
            (
                "[\"ors-redis-sessions\",1,\"A\",5]\n".to_string(),
                1,
                "a JSON object",
            ),
            (
                format!("{HEADER}\n{{\"id\":1}}\n"),
                2,
                "expected a string at column 7",
            ),
            (format!("{HEADER}\nnull\n"), 2, "not a session line"),
        ] {
            let e = error_of(&text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(words), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
        }
    }

    #[test]
    fn values_beyond_max_value_bytes_are_refused() {
        let bytes = write(&[(b"a", &[7u8; 100], 5)]);
        let mut r = Reader::new(bytes.as_slice(), 99).unwrap();
        let e = r.next_record().unwrap_err();
        assert!(
            e.to_string()
                .contains("100 bytes, more than max-value-bytes (99)"),
            "{e}"
        );
        // A line far longer than any value could make is refused before it
        // is held whole.
        let long = format!("{HEADER}\n{}\n", "x".repeat(LINE_OVERHEAD + 200));
        let mut r = Reader::new(long.as_bytes(), 10).unwrap();
        let e = r.next_record().unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("longer than"), "{e}");
        assert_eq!(
            Reader::new(bytes.as_slice(), 100)
                .unwrap()
                .next_record()
                .unwrap()
                .unwrap()
                .value
                .len(),
            100
        );
    }

    #[test]
    fn a_failing_input_is_an_error_not_a_panic() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let e = Reader::new(io::BufReader::new(Broken), 10).err().unwrap();
        assert_eq!(e.to_string(), "line 1: cannot read: disk on fire");
    }
}
