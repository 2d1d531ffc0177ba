//! The envelope reader meets whatever a node returns: opening must never
//! panic, never allocate past max-value-bytes, and what it returns for a
//! plain value is that value; what the writer seals opens to the value it
//! was given. The first byte chooses the case; the checksum is recomputed in
//! one case so that the decoders themselves see arbitrary payloads behind a
//! header that checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ors_redis::envelope::{
    is_sealed, open, seal, sealed_len, Algorithm, Compression, HEADER_LEN,
};

/// max-value-bytes for the run: well under fuzz/run.sh's malloc limit.
const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        // As stored: a plain value comes back as it is.
        0 => check_open(rest),
        // Behind the magic, with a checksum that holds.
        1 => {
            let mut stored = ors_redis::envelope::MAGIC.to_vec();
            stored.extend_from_slice(&[0; 4]);
            stored.extend_from_slice(rest);
            if stored.len() >= HEADER_LEN {
                let sum = xxhash_rust::xxh32::xxh32(&stored[12..], 0);
                stored[8..12].copy_from_slice(&sum.to_le_bytes());
            }
            check_open(&stored);
        }
        // Sealed by the writer, then opened.
        m => {
            let settings = Compression {
                algorithm: if m == 2 { Algorithm::Lz4 } else { Algorithm::Zstd },
                level: 1 + i32::from(rest.first().copied().unwrap_or(0) % 5),
                min_bytes: 0,
            };
            let mut out = Vec::new();
            let stored = seal(&settings, rest, &mut out);
            assert!(stored.len() <= rest.len() || is_sealed(rest));
            assert_eq!(&*open(stored, MAX).expect("what seal wrote opens"), rest);
        }
    }
});

fn check_open(stored: &[u8]) {
    match open(stored, MAX) {
        Ok(value) => {
            assert!(value.len() <= MAX.max(stored.len()));
            if !is_sealed(stored) {
                assert_eq!(&*value, stored);
            } else {
                assert_eq!(sealed_len(stored, MAX).ok().flatten(), Some(value.len()));
            }
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
}
