//! The value envelope: how a value the library stores compressed is told
//! from a value stored as ORS gave it, and the one code that seals and opens
//! it. Every reader (get, the bulk read behind restore and export, the
//! operator command) opens values here; every writer (put, import) seals
//! them here. docs/compression.md gives the format, the rollout rule and the
//! odds that a plain value looks like an envelope.
//!
//! ```text
//! offset  size  field
//!  0      8     MAGIC  00 89 'O' 'R' 'S' 'z' 0d 0a
//!  8      4     xxh32 (seed 0) of every byte from offset 12 to the end
//! 12      1     version (1)
//! 13      1     algorithm: 0 stored, 1 lz4 (block), 2 zstd (frame),
//!                 3 zstd with a dictionary (its id, 4 bytes LE, then the frame)
//! 14      4     the original length, little-endian
//! 18      ...   the payload
//! ```
//!
//! A value that does not start with MAGIC is plain and returned as stored.
//! A value that does is opened: a checksum, version, algorithm or length
//! that does not hold is an error (`ErrorKind::Server`), never a guess; an
//! original length above `max-value-bytes` is `ErrorKind::TooLarge`, found
//! before anything is allocated for it. A value written with a dictionary
//! names it by id; the opener asks its caller's [`Find`] for it (the
//! process's cache, or the cluster: dictionaries.rs).

use std::cell::RefCell;
use std::sync::Arc;

use crate::dictionary::{self, Dictionary, Encoder};
use crate::error::{Error, ErrorKind, Result};
use crate::malloc_buf::MallocBuf;
use crate::resp::KEEP_BUFFER_BYTES;

/// The envelope's first bytes. NUL first (no text value starts with it),
/// then a byte that is not valid at the start of UTF-8 and a CR LF that any
/// text-mode mangling of a stored value breaks.
pub const MAGIC: [u8; 8] = *b"\x00\x89ORSz\r\n";
/// The whole header: magic, checksum, version, algorithm, original length.
pub const HEADER_LEN: usize = 18;
const VERSION: u8 = 1;
const CHECKED_FROM: usize = 12;
/// A dictionary's id, at the start of a payload compressed with it.
const DICTIONARY_ID_LEN: usize = 4;

/// Where an opener finds the dictionary an envelope names by id.
pub type Find<'a> = &'a dyn Fn(u32) -> Result<Arc<Dictionary>>;

/// A [`Find`] for where no dictionary can be fetched (tests, tools that
/// read no cluster): a value that names one is an error that says so.
pub fn no_dictionaries(id: u32) -> Result<Arc<Dictionary>> {
    Err(Error::new(
        ErrorKind::Server,
        format!(
            "value compressed with dictionary {}, which is not available here",
            dictionary::format_id(id)
        ),
    ))
}

/// `compression`: what put and import write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Values are stored as given (the default).
    Off,
    /// lz4 blocks: less CPU per call, a smaller saving.
    Lz4,
    /// zstd frames at `compression-level`, with the dictionary if one is set.
    Zstd,
}

impl Algorithm {
    /// The algorithm a `compression` value names (any case; `none` is `off`).
    pub fn parse(text: &str) -> Option<Algorithm> {
        Some(match text.to_ascii_lowercase().as_str() {
            "off" | "none" => Algorithm::Off,
            "lz4" => Algorithm::Lz4,
            "zstd" => Algorithm::Zstd,
            _ => return None,
        })
    }

    /// The name as `compression` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Off => "off",
            Algorithm::Lz4 => "lz4",
            Algorithm::Zstd => "zstd",
        }
    }
}

/// The algorithm byte of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Payload {
    /// The value itself, enveloped only because it starts with MAGIC (so
    /// that a reader does not take it for a corrupt envelope).
    Stored = 0,
    Lz4 = 1,
    Zstd = 2,
    /// A zstd frame compressed with a dictionary, after the dictionary's id.
    ZstdDictionary = 3,
}

impl Payload {
    fn of(byte: u8) -> Option<Payload> {
        match byte {
            0 => Some(Payload::Stored),
            1 => Some(Payload::Lz4),
            2 => Some(Payload::Zstd),
            3 => Some(Payload::ZstdDictionary),
            _ => None,
        }
    }
}

/// The writer's settings: `compression`, `compression-level`,
/// `compression-min-bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// `compression`: what put and import write.
    pub algorithm: Algorithm,
    /// zstd's level (lz4 has none).
    pub level: i32,
    /// Values shorter than this stay plain.
    pub min_bytes: usize,
    /// `compression-dictionary`: the id of the zstd dictionary to write
    /// with (dictionaries.rs loads it; `seal` is handed its encoder).
    pub dictionary: Option<u32>,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            algorithm: Algorithm::Off,
            level: 3,
            min_bytes: 256,
            dictionary: None,
        }
    }
}

/// Whether `stored` is an envelope (to be opened) rather than a plain value.
#[inline]
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(&MAGIC)
}

/// What `settings` stores for `value`: `value` itself (the very slice) when
/// compression is off, the value is short, or its envelope would not be
/// smaller; otherwise its envelope, built in `out`. With zstd and a
/// `dictionary`, the value is compressed with it (and names it).
#[inline]
pub fn seal<'a>(
    settings: &Compression,
    dictionary: Option<&Encoder>,
    value: &'a [u8],
    out: &'a mut Vec<u8>,
) -> &'a [u8] {
    if settings.algorithm == Algorithm::Off {
        return value;
    }
    match seal_slow(settings, dictionary, value, out) {
        true => out,
        false => value,
    }
}

/// Builds the envelope of `value` in `out`; false when `value` is stored
/// plain. A value that starts with MAGIC is always enveloped (as stored,
/// when compressing does not pay), so that it reads back as given.
#[cold]
fn seal_slow(
    settings: &Compression,
    dictionary: Option<&Encoder>,
    value: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    // The buffer of a large value is not kept past the next small one
    // (the calls' other buffers follow the same rule: resp.rs).
    if out.capacity() > KEEP_BUFFER_BYTES && value.len() < KEEP_BUFFER_BYTES / 2 {
        *out = Vec::new();
    }
    let looks_sealed = is_sealed(value);
    if (value.len() < settings.min_bytes && !looks_sealed) || value.len() > u32::MAX as usize {
        return false;
    }
    let (payload, compressed) = match compress(settings, dictionary, value, out) {
        Some((payload, n)) if HEADER_LEN + n < value.len() => (payload, n),
        _ if looks_sealed => (Payload::Stored, store(value, out)),
        _ => return false,
    };
    out.truncate(HEADER_LEN + compressed);
    write_header(out, payload, value.len());
    true
}

fn store(value: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    out.resize(HEADER_LEN, 0);
    out.extend_from_slice(value);
    value.len()
}

/// Compresses `value` into `out` after room for the header; the payload's
/// kind and length, or `None` when the codec fails.
fn compress(
    settings: &Compression,
    dictionary: Option<&Encoder>,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Option<(Payload, usize)> {
    out.clear();
    match (settings.algorithm, dictionary) {
        (Algorithm::Off, _) => None,
        (Algorithm::Lz4, _) => {
            out.resize(
                HEADER_LEN + lz4_flex::block::get_maximum_output_size(value.len()),
                0,
            );
            let n = lz4_flex::block::compress_into(value, &mut out[HEADER_LEN..]).ok()?;
            Some((Payload::Lz4, n))
        }
        (Algorithm::Zstd, None) => {
            out.resize(HEADER_LEN + zstd::zstd_safe::compress_bound(value.len()), 0);
            let n = with_zstd_compressor(settings.level, |c| {
                c.compress_to_buffer(value, &mut out[HEADER_LEN..]).ok()
            })?;
            Some((Payload::Zstd, n))
        }
        (Algorithm::Zstd, Some(dictionary)) => {
            let frame_at = HEADER_LEN + DICTIONARY_ID_LEN;
            out.resize(frame_at + zstd::zstd_safe::compress_bound(value.len()), 0);
            out[HEADER_LEN..frame_at].copy_from_slice(&dictionary.id().to_le_bytes());
            let n = with_zstd_compressor(settings.level, |c| {
                c.context_mut()
                    .compress_using_cdict(&mut out[frame_at..], value, dictionary.cdict())
                    .ok()
            })?;
            Some((Payload::ZstdDictionary, DICTIONARY_ID_LEN + n))
        }
    }
}

fn write_header(out: &mut [u8], payload: Payload, original_len: usize) {
    out[..8].copy_from_slice(&MAGIC);
    out[12] = VERSION;
    out[13] = payload as u8;
    out[14..18].copy_from_slice(&(original_len as u32).to_le_bytes());
    let sum = xxhash_rust::xxh32::xxh32(&out[CHECKED_FROM..], 0);
    out[8..12].copy_from_slice(&sum.to_le_bytes());
}

/// A checked envelope, ready to open.
#[derive(Debug, Clone, Copy)]
struct Header {
    payload: Payload,
    original_len: usize,
}

/// Checks the envelope `stored` (which starts with MAGIC): its checksum,
/// version and algorithm, and that its original length is at most `max`.
fn check(stored: &[u8], max: usize) -> Result<Header> {
    if stored.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            stored.len()
        )));
    }
    let word = |at: usize| {
        u32::from_le_bytes([stored[at], stored[at + 1], stored[at + 2], stored[at + 3]])
    };
    let sum = xxhash_rust::xxh32::xxh32(&stored[CHECKED_FROM..], 0);
    if sum != word(8) {
        return Err(corrupt(format!(
            "checksum {:08x}, expected {:08x} ({} bytes)",
            sum,
            word(8),
            stored.len()
        )));
    }
    if stored[12] != VERSION {
        return Err(corrupt(format!(
            "format version {}: this library reads version {VERSION} (a newer ors-redis wrote it)",
            stored[12]
        )));
    }
    let payload = Payload::of(stored[13])
        .ok_or_else(|| corrupt(format!("unknown algorithm {}", stored[13])))?;
    let original_len = word(14) as usize;
    if original_len > max {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "compressed value of {} bytes would decompress to {original_len} bytes, \
                 larger than max-value-bytes ({max})",
                stored.len()
            ),
        ));
    }
    Ok(Header {
        payload,
        original_len,
    })
}

fn corrupt(detail: String) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("corrupt compressed value (ors-redis envelope): {detail}"),
    )
}

/// The dictionary a stored value names, from its first 22 bytes at least
/// (the operator's doctor reads no more): `None` for a plain value or one
/// compressed without a dictionary. Nothing is checked but the magic and
/// the algorithm byte: it says where to look, not that the value is sound.
pub fn dictionary_named(stored: &[u8]) -> Option<u32> {
    let id = stored.get(HEADER_LEN..HEADER_LEN + DICTIONARY_ID_LEN)?;
    (is_sealed(stored) && stored[13] == Payload::ZstdDictionary as u8)
        .then(|| u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
}

/// The original length of `stored` when it is an envelope (checked, and at
/// most `max`); `None` for a plain value.
pub fn sealed_len(stored: &[u8], max: usize) -> Result<Option<usize>> {
    if !is_sealed(stored) {
        return Ok(None);
    }
    check(stored, max).map(|h| Some(h.original_len))
}

/// Decompresses the envelope `stored` into `out`, whose length is the one
/// [`sealed_len`] returned; any other outcome is a corrupt envelope (or,
/// for a value written with a dictionary, `find`'s error).
fn open_checked(stored: &[u8], header: Header, out: &mut [u8], find: Find<'_>) -> Result<()> {
    let payload = &stored[HEADER_LEN..];
    let got = match header.payload {
        Payload::Stored if payload.len() == out.len() => {
            out.copy_from_slice(payload);
            Ok(out.len())
        }
        Payload::Stored => Err(format!("{} stored bytes", payload.len())),
        Payload::Lz4 => {
            lz4_flex::block::decompress_into(payload, out).map_err(|e| format!("lz4: {e}"))
        }
        Payload::Zstd => with_zstd_decompressor(|d| d.decompress(out, payload).map_err(zstd_error)),
        Payload::ZstdDictionary if payload.len() < DICTIONARY_ID_LEN => Err(format!(
            "{} bytes, too short for a dictionary id",
            payload.len()
        )),
        Payload::ZstdDictionary => {
            let (id, frame) = payload.split_at(DICTIONARY_ID_LEN);
            let id = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
            let dictionary = find(id)?;
            with_zstd_decompressor(|d| {
                d.decompress_using_ddict(out, frame, dictionary.ddict())
                    .map_err(|code| {
                        format!(
                            "{} (dictionary {})",
                            zstd_error(code),
                            dictionary::format_id(id)
                        )
                    })
            })
        }
    };
    match got {
        Ok(n) if n == out.len() => Ok(()),
        Ok(n) => Err(corrupt(format!(
            "{n} bytes decompressed, the header says {}",
            out.len()
        ))),
        Err(detail) => Err(corrupt(detail)),
    }
}

fn zstd_error(code: zstd::zstd_safe::ErrorCode) -> String {
    format!("zstd: {}", zstd::zstd_safe::get_error_name(code))
}

/// The value ORS gave, from what a node stored: `stored` itself when plain,
/// else the envelope opened (at most `max` bytes).
pub fn open<'s>(
    stored: &'s [u8],
    max: usize,
    find: Find<'_>,
) -> Result<std::borrow::Cow<'s, [u8]>> {
    if !is_sealed(stored) {
        return Ok(std::borrow::Cow::Borrowed(stored));
    }
    let header = check(stored, max)?;
    let mut out = vec![0u8; header.original_len];
    open_checked(stored, header, &mut out, find)?;
    Ok(std::borrow::Cow::Owned(out))
}

/// [`open`] for a value read into a `malloc`'d buffer (the get path): a
/// plain value is handed back as it is.
#[inline]
pub fn open_malloc(stored: MallocBuf, max: usize, find: Find<'_>) -> Result<MallocBuf> {
    if !is_sealed(stored.as_slice()) {
        return Ok(stored);
    }
    open_malloc_slow(&stored, max, find)
}

#[cold]
fn open_malloc_slow(stored: &MallocBuf, max: usize, find: Find<'_>) -> Result<MallocBuf> {
    let stored = stored.as_slice();
    let header = check(stored, max)?;
    let len = header.original_len;
    let out_of_memory = || {
        Error::new(
            ErrorKind::LocalResource,
            format!("out of memory: could not allocate {len} bytes to decompress a value"),
        )
    };
    let mut out = MallocBuf::new(len).ok_or_else(out_of_memory)?;
    let room = out.unfilled_mut(len).map_err(|_| out_of_memory())?;
    open_checked(stored, header, room, find)?;
    out.advance(len);
    Ok(out)
}

/// Opens, in place, the value that takes the bytes of `values` from `start`
/// to the end (the bulk read's arena); returns its length as ORS gave it.
/// `scratch` keeps the envelope meanwhile, reused from value to value.
pub fn open_in_arena(
    values: &mut Vec<u8>,
    start: usize,
    max: usize,
    scratch: &mut Vec<u8>,
    find: Find<'_>,
) -> Result<usize> {
    let stored = &values[start..];
    if !is_sealed(stored) {
        return Ok(stored.len());
    }
    let header = check(stored, max)?;
    scratch.clear();
    scratch.extend_from_slice(stored);
    values.truncate(start);
    values.resize(start + header.original_len, 0);
    let opened = open_checked(scratch, header, &mut values[start..], find);
    if opened.is_err() {
        values.truncate(start);
    }
    opened.map(|()| header.original_len)
}

thread_local! {
    /// This thread's zstd contexts (a context costs far more to make than
    /// to reuse), with the level the compressor is set to.
    static ZSTD_COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { RefCell::new(None) };
}

fn with_zstd_compressor<T>(
    level: i32,
    f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> Option<T>,
) -> Option<T> {
    ZSTD_COMPRESSOR
        .try_with(|cell| {
            let mut cell = cell.try_borrow_mut().ok()?;
            match &mut *cell {
                Some((at, _)) if *at == level => {}
                Some((at, c)) => {
                    c.set_compression_level(level).ok()?;
                    *at = level;
                }
                None => *cell = Some((level, zstd::bulk::Compressor::new(level).ok()?)),
            }
            cell.as_mut().and_then(|(_, c)| f(c))
        })
        .ok()
        .flatten()
}

fn with_zstd_decompressor<T>(
    f: impl FnOnce(&mut zstd::zstd_safe::DCtx<'static>) -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    let run = |cell: &RefCell<Option<zstd::zstd_safe::DCtx<'static>>>| {
        let mut cell = cell
            .try_borrow_mut()
            .map_err(|_| "zstd context busy".to_string())?;
        if cell.is_none() {
            *cell = Some(
                zstd::zstd_safe::DCtx::try_create()
                    .ok_or_else(|| "zstd: out of memory for a context".to_string())?,
            );
        }
        match cell.as_mut() {
            Some(d) => f(d),
            None => Err("zstd: no context".to_string()),
        }
    };
    ZSTD_DECOMPRESSOR
        .try_with(run)
        .unwrap_or_else(|_| Err("zstd: this thread is exiting".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn settings(algorithm: Algorithm) -> Compression {
        Compression {
            algorithm,
            level: 3,
            min_bytes: 64,
            dictionary: None,
        }
    }

    /// Session-like text: compresses well, as ORS's data models do.
    fn text(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0u32;
        while out.len() < len {
            out.extend_from_slice(
                format!(
                    "<data id=\"var{i}\" expr=\"'value {}'\"/>\n",
                    i * 7919 % 1000
                )
                .as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn sealed(algorithm: Algorithm, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(&settings(algorithm), None, value, &mut out).to_vec()
    }

    #[test]
    fn the_checksum_is_xxh32() {
        // The reference's published vectors.
        assert_eq!(xxhash_rust::xxh32::xxh32(b"", 0), 0x02cc_5d05);
        assert_eq!(xxhash_rust::xxh32::xxh32(b"a", 0), 0x550d_7456);
        assert_eq!(xxhash_rust::xxh32::xxh32(b"abc", 0), 0x32d1_53ff);
    }

    #[test]
    fn round_trips_every_algorithm_and_size() {
        for algorithm in [Algorithm::Lz4, Algorithm::Zstd] {
            for len in [200, 257, 1000, 4096, 70_000, 300_000] {
                let value = text(len);
                let stored = sealed(algorithm, &value);
                assert!(is_sealed(&stored), "{algorithm:?} {len}");
                assert!(stored.len() < value.len(), "{algorithm:?} {len}");
                assert_eq!(sealed_len(&stored, MAX).unwrap(), Some(len));
                assert_eq!(&*open(&stored, MAX, &no_dictionaries).unwrap(), &value[..]);
                let mut buf = MallocBuf::new(stored.len()).unwrap();
                buf.push(&stored).unwrap();
                assert_eq!(
                    open_malloc(buf, MAX, &no_dictionaries).unwrap().as_slice(),
                    &value[..]
                );
                let mut arena = b"before".to_vec();
                arena.extend_from_slice(&stored);
                let n =
                    open_in_arena(&mut arena, 6, MAX, &mut Vec::new(), &no_dictionaries).unwrap();
                assert_eq!(n, len);
                assert_eq!(&arena[..6], b"before");
                assert_eq!(&arena[6..], &value[..]);
            }
        }
    }

    #[test]
    fn off_short_and_incompressible_values_stay_plain() {
        let value = text(1000);
        let mut out = Vec::new();
        let off = seal(&settings(Algorithm::Off), None, &value, &mut out);
        assert_eq!(
            off.as_ptr(),
            value.as_ptr(),
            "off stores the very bytes given"
        );
        assert_eq!(sealed(Algorithm::Zstd, &value[..63]), &value[..63]);
        // xorshift bytes do not compress.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for algorithm in [Algorithm::Lz4, Algorithm::Zstd] {
            assert_eq!(sealed(algorithm, &noise), noise);
        }
        for value in [&b""[..], b"plain", &noise] {
            assert_eq!(&*open(value, MAX, &no_dictionaries).unwrap(), value);
            assert_eq!(sealed_len(value, MAX).unwrap(), None);
        }
    }

    #[test]
    fn plain_values_with_part_of_the_magic_are_returned_as_stored() {
        for n in 0..MAGIC.len() {
            let mut value = MAGIC[..n].to_vec();
            value.extend_from_slice(b"rest of a plain value");
            assert_eq!(
                &*open(&value, MAX, &no_dictionaries).unwrap(),
                &value[..],
                "{n} magic bytes"
            );
            // One byte off at the end of the magic.
            let mut near = MAGIC.to_vec();
            near[n] ^= 0x01;
            assert_eq!(&*open(&near, MAX, &no_dictionaries).unwrap(), &near[..]);
        }
    }

    #[test]
    fn values_that_start_with_the_magic_round_trip_whatever_the_settings() {
        let mut value = MAGIC.to_vec();
        value.extend_from_slice(b"x");
        for algorithm in [Algorithm::Lz4, Algorithm::Zstd] {
            let stored = sealed(algorithm, &value);
            assert_eq!(stored.len(), HEADER_LEN + value.len(), "stored as is");
            assert_eq!(&*open(&stored, MAX, &no_dictionaries).unwrap(), &value[..]);
            let mut long = MAGIC.to_vec();
            long.extend_from_slice(&text(2000));
            assert_eq!(
                &*open(&sealed(algorithm, &long), MAX, &no_dictionaries).unwrap(),
                &long[..]
            );
        }
    }

    #[test]
    fn truncated_envelopes_are_corrupt() {
        for algorithm in [Algorithm::Lz4, Algorithm::Zstd] {
            let stored = sealed(algorithm, &text(3000));
            for len in [8, 12, 17, 18, 19, stored.len() - 1] {
                let e = open(&stored[..len], MAX, &no_dictionaries).unwrap_err();
                assert_eq!(e.kind, ErrorKind::Server, "{len}: {}", e.message);
                assert!(
                    e.message.contains("corrupt compressed value"),
                    "{}",
                    e.message
                );
            }
        }
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        for algorithm in [Algorithm::Lz4, Algorithm::Zstd] {
            let value = text(600);
            let stored = sealed(algorithm, &value);
            for at in 8..stored.len() {
                for bit in [0x01, 0x80] {
                    let mut bad = stored.clone();
                    bad[at] ^= bit;
                    let e = open(&bad, MAX, &no_dictionaries).unwrap_err();
                    assert_eq!(e.kind, ErrorKind::Server, "byte {at}: {}", e.message);
                }
            }
        }
    }

    /// A header whose checksum holds but whose payload the codec refuses
    /// (what a writer bug would store) is an error, not a wrong value.
    #[test]
    fn a_checksummed_bad_payload_is_corrupt() {
        for payload in [Payload::Lz4, Payload::Zstd, Payload::Stored] {
            let mut bad = vec![0u8; HEADER_LEN];
            bad.extend_from_slice(b"\xff\xff\xff not a payload");
            write_header(&mut bad, payload, 50);
            let e = open(&bad, MAX, &no_dictionaries).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Server, "{payload:?}: {}", e.message);
        }
        // A length that disagrees with the payload.
        let mut stored = sealed(Algorithm::Zstd, &text(1000));
        write_header(&mut stored, Payload::Zstd, 999);
        assert_eq!(
            open(&stored, MAX, &no_dictionaries).unwrap_err().kind,
            ErrorKind::Server
        );
        write_header(&mut stored, Payload::Zstd, 1001);
        assert_eq!(
            open(&stored, MAX, &no_dictionaries).unwrap_err().kind,
            ErrorKind::Server
        );
    }

    #[test]
    fn unknown_versions_and_algorithms_are_named() {
        let mut stored = sealed(Algorithm::Lz4, &text(1000));
        stored[13] = 9;
        let sum = xxhash_rust::xxh32::xxh32(&stored[CHECKED_FROM..], 0);
        stored[8..12].copy_from_slice(&sum.to_le_bytes());
        assert!(open(&stored, MAX, &no_dictionaries)
            .unwrap_err()
            .message
            .contains("unknown algorithm 9"));
        stored[12] = 2;
        let sum = xxhash_rust::xxh32::xxh32(&stored[CHECKED_FROM..], 0);
        stored[8..12].copy_from_slice(&sum.to_le_bytes());
        assert!(open(&stored, MAX, &no_dictionaries)
            .unwrap_err()
            .message
            .contains("format version 2"));
    }

    #[test]
    fn an_oversized_length_is_refused_before_any_allocation() {
        let value = vec![b'a'; 200_000];
        let stored = sealed(Algorithm::Zstd, &value);
        assert!(stored.len() < 100);
        let e = open(&stored, 199_999, &no_dictionaries).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge);
        assert!(
            e.message.contains("max-value-bytes (199999)"),
            "{}",
            e.message
        );
        assert_eq!(sealed_len(&stored, 200_000).unwrap(), Some(200_000));
        // A forged length near 4 GiB: refused, nothing allocated for it
        // (the unit tests' allocator refuses huge allocations).
        let mut forged = stored.clone();
        write_header(&mut forged, Payload::Zstd, u32::MAX as usize);
        assert_eq!(
            open(&forged, MAX, &no_dictionaries).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        let mut arena = forged.clone();
        let e = open_in_arena(&mut arena, 0, MAX, &mut Vec::new(), &no_dictionaries).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge);
        assert_eq!(arena, forged, "the arena is untouched");
    }

    /// The thread's compressor takes each new level: its output is what a
    /// fresh compressor at that level gives.
    #[test]
    fn a_level_change_takes_effect() {
        let value = text(20_000);
        for level in [1, 19, 3, 1] {
            let mut out = Vec::new();
            let at = Compression {
                level,
                ..settings(Algorithm::Zstd)
            };
            let stored = seal(&at, None, &value, &mut out);
            let fresh = zstd::bulk::Compressor::new(level)
                .unwrap()
                .compress(&value)
                .unwrap();
            assert_eq!(&stored[HEADER_LEN..], &fresh[..], "level {level}");
            assert_eq!(&*open(stored, MAX, &no_dictionaries).unwrap(), &value[..]);
        }
    }

    /// A value written with a dictionary names it, opens only with it, and
    /// is smaller than without it (small values gain most).
    #[test]
    fn a_dictionary_value_names_its_dictionary() {
        let samples = crate::dictionary::tests::samples(400);
        let trained = crate::dictionary::train(&samples[..300], 4096).unwrap();
        let dict = Arc::new(Dictionary::new(&trained).unwrap());
        let encoder = dict.encoder(3).unwrap();
        let value = &samples[350];
        let mut out = Vec::new();
        let stored = seal(&settings(Algorithm::Zstd), Some(&encoder), value, &mut out).to_vec();
        assert_eq!(stored[13], Payload::ZstdDictionary as u8);
        assert_eq!(&stored[18..22], &dict.id().to_le_bytes());
        assert_eq!(dictionary_named(&stored[..22]), Some(dict.id()));
        assert_eq!(dictionary_named(&stored[..21]), None);
        assert_eq!(dictionary_named(&sealed(Algorithm::Zstd, value)), None);
        assert_eq!(dictionary_named(value), None);
        let without = sealed(Algorithm::Zstd, value);
        assert!(
            stored.len() * 2 < without.len(),
            "{} bytes with the dictionary, {} without",
            stored.len(),
            without.len()
        );
        let found = |id: u32| {
            if id == dict.id() {
                Ok(dict.clone())
            } else {
                no_dictionaries(id)
            }
        };
        assert_eq!(&*open(&stored, MAX, &found).unwrap(), &value[..]);
        let mut buf = MallocBuf::new(stored.len()).unwrap();
        buf.push(&stored).unwrap();
        assert_eq!(
            open_malloc(buf, MAX, &found).unwrap().as_slice(),
            &value[..]
        );
        let mut arena = b"x".to_vec();
        arena.extend_from_slice(&stored);
        assert_eq!(
            open_in_arena(&mut arena, 1, MAX, &mut Vec::new(), &found).unwrap(),
            value.len()
        );
        assert_eq!(&arena[1..], &value[..]);

        // Without it: an error that names it.
        let e = open(&stored, MAX, &no_dictionaries).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Server);
        assert!(
            e.message.contains(&crate::dictionary::format_id(dict.id())),
            "{}",
            e.message
        );
        // Another dictionary handed over under its id: refused, never a wrong value.
        let other = Arc::new(
            Dictionary::new(&crate::dictionary::train(&samples[100..], 2048).unwrap()).unwrap(),
        );
        let e = open(&stored, MAX, &|_| Ok(other.clone())).unwrap_err();
        assert!(
            e.message.contains("corrupt compressed value"),
            "{}",
            e.message
        );
        // Every flipped bit is caught here too.
        for at in 8..stored.len() {
            let mut bad = stored.clone();
            bad[at] ^= 0x10;
            assert!(open(&bad, MAX, &found).is_err(), "byte {at}");
        }
        // lz4 has no dictionary: the value is sealed as without one.
        let mut out = Vec::new();
        let lz4 = seal(&settings(Algorithm::Lz4), Some(&encoder), value, &mut out).to_vec();
        assert_eq!(lz4, sealed(Algorithm::Lz4, value));
    }

    #[test]
    fn algorithms_parse() {
        assert_eq!(Algorithm::parse("ZSTD"), Some(Algorithm::Zstd));
        assert_eq!(Algorithm::parse("lz4"), Some(Algorithm::Lz4));
        assert_eq!(Algorithm::parse("off"), Some(Algorithm::Off));
        assert_eq!(Algorithm::parse("gzip"), None);
    }
}
