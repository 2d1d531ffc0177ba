//! What compression would save, measured on the sampled sessions: each is
//! read (`GET`), opened when it is already compressed (the library's
//! `envelope`, as every reader), and sealed again with each algorithm and
//! level the library offers, with this config's `compression-min-bytes`.
//! Each size goes through the same per-session memory estimate as the
//! projection (`estimate_session_bytes`), so "saved per node" is in the
//! same terms as the sizing next to it.

use ors_redis::envelope::{self, Algorithm, Compression};
use ors_redis::operator::{NodeAddr, Result};

use super::memory::estimate_session_bytes;
use crate::cluster::Cluster;

/// The settings measured: lz4, and zstd at the levels worth choosing from.
pub(super) const OPTIONS: &[(Algorithm, i32)] = &[
    (Algorithm::Lz4, 0),
    (Algorithm::Zstd, 1),
    (Algorithm::Zstd, 3),
    (Algorithm::Zstd, 9),
];

/// One algorithm and level on the sample.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Choice {
    pub name: String,
    /// Stored bytes with it, over the values' own bytes (1.0: no gain).
    pub ratio: f64,
    /// Estimated Redis bytes per session with it.
    pub bytes_per_session: f64,
}

/// What the sample holds and what each option would make of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct CompressionSample {
    pub sessions: u64,
    /// Sessions already stored compressed.
    pub enveloped: u64,
    /// The values as ORS gave them, and as stored now.
    pub value_bytes: u64,
    pub stored_bytes: u64,
    /// Estimated Redis bytes per session as stored now.
    pub bytes_per_session_now: f64,
    pub options: Vec<Choice>,
}

impl CompressionSample {
    /// Stored bytes over the values' own bytes, as stored now.
    pub(super) fn ratio_now(&self) -> f64 {
        ratio(self.stored_bytes, self.value_bytes)
    }

    /// Bytes a master holding `sessions` sessions would save with `option`
    /// against now (negative: it would grow).
    pub(super) fn saved_on(&self, option: &Choice, sessions: u64) -> f64 {
        (self.bytes_per_session_now - option.bytes_per_session) * sessions as f64
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

pub(super) fn option_name(algorithm: Algorithm, level: i32) -> String {
    match algorithm {
        Algorithm::Zstd => format!("zstd-{level}"),
        other => other.name().to_string(),
    }
}

/// Reads the sampled keys (`keys[i]` on `masters[i]`) and measures them.
pub(super) fn measure(
    admin: &mut Cluster,
    masters: &[NodeAddr],
    keys: &[Vec<Vec<u8>>],
) -> Result<CompressionSample> {
    let mut tally = Tally::new(admin.config().compression.min_bytes);
    admin.read_sampled(masters, keys, &mut |key, stored, value| {
        tally.add(key.len() as u64, stored, value)
    })?;
    Ok(tally.finish())
}

/// Sums over the sample, one slot per option.
struct Tally {
    min_bytes: usize,
    sealed: Vec<u8>,
    out: CompressionSample,
    memory_now: u64,
    option_bytes: Vec<u64>,
    option_memory: Vec<u64>,
}

impl Tally {
    fn new(min_bytes: usize) -> Tally {
        Tally {
            min_bytes,
            sealed: Vec::new(),
            out: CompressionSample::default(),
            memory_now: 0,
            option_bytes: vec![0; OPTIONS.len()],
            option_memory: vec![0; OPTIONS.len()],
        }
    }

    fn add(&mut self, key_len: u64, stored: &[u8], value: &[u8]) {
        let o = &mut self.out;
        o.sessions += 1;
        o.enveloped += u64::from(envelope::is_sealed(stored));
        o.value_bytes += value.len() as u64;
        o.stored_bytes += stored.len() as u64;
        self.memory_now += estimate_session_bytes(key_len, stored.len() as u64);
        for (i, &(algorithm, level)) in OPTIONS.iter().enumerate() {
            let settings = Compression {
                algorithm,
                level: level.max(1),
                min_bytes: self.min_bytes,
                dictionary: None,
            };
            let len = envelope::seal(&settings, None, value, &mut self.sealed).len() as u64;
            self.option_bytes[i] += len;
            self.option_memory[i] += estimate_session_bytes(key_len, len);
        }
    }

    fn finish(self) -> CompressionSample {
        let mut out = self.out;
        let n = out.sessions.max(1) as f64;
        out.bytes_per_session_now = self.memory_now as f64 / n;
        out.options = OPTIONS
            .iter()
            .enumerate()
            .map(|(i, &(algorithm, level))| Choice {
                name: option_name(algorithm, level),
                ratio: ratio(self.option_bytes[i], out.value_bytes),
                bytes_per_session: self.option_memory[i] as f64 / n,
            })
            .collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_measured_against_what_is_stored_now() {
        let text: Vec<u8> = (0..3000)
            .flat_map(|i| format!("<var name=\"v{}\">{}</var>", i % 40, i % 7).into_bytes())
            .take(3000)
            .collect();
        let mut t = Tally::new(256);
        t.add(40, &text, &text);
        t.add(40, b"short", b"short");
        let mut sealed = Vec::new();
        let zstd = Compression {
            algorithm: Algorithm::Zstd,
            level: 3,
            min_bytes: 256,
            dictionary: None,
        };
        let stored = envelope::seal(&zstd, None, &text, &mut sealed).to_vec();
        t.add(40, &stored, &text);
        let s = t.finish();
        assert_eq!((s.sessions, s.enveloped), (3, 1));
        assert_eq!(s.value_bytes, 6005);
        assert!(s.ratio_now() < 0.7, "{}", s.ratio_now());
        let names: Vec<&str> = s.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["lz4", "zstd-1", "zstd-3", "zstd-9"]);
        for o in &s.options {
            assert!(o.ratio < 0.5, "{o:?}");
            assert!(o.bytes_per_session < s.bytes_per_session_now, "{o:?}");
            assert!(s.saved_on(o, 1000) > 0.0);
        }
    }
}
