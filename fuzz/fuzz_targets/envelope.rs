//! The envelope reader meets whatever a node returns: opening must never
//! panic, never allocate past max-value-bytes, and what it returns for a
//! plain value is that value; what the writer seals opens to the value it
//! was given. The first byte chooses the case; the checksum is recomputed in
//! two cases so that the decoders themselves see arbitrary payloads behind a
//! header that checks, with and without a dictionary.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use ors_redis::dictionary::{Dictionary, Encoder};
use ors_redis::envelope::{is_sealed, open, seal, sealed_len, Algorithm, Compression, HEADER_LEN};
use ors_redis::operator::Result;

/// max-value-bytes for the run: well under fuzz/run.sh's malloc limit.
const MAX: usize = 1 << 20;

/// One dictionary for the whole run, trained on session-like text.
fn dictionary() -> &'static (Arc<Dictionary>, Encoder) {
    static DICTIONARY: OnceLock<(Arc<Dictionary>, Encoder)> = OnceLock::new();
    DICTIONARY.get_or_init(|| {
        let samples: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                format!(
                    "{{\"session\":\"{i:06}\",\"queue\":\"VQ_{}\",\"state\":\"routing\"}}",
                    i % 9
                )
                .into_bytes()
            })
            .collect();
        let bytes = ors_redis::dictionary::train(&samples, 2048).expect("training");
        let dictionary = Arc::new(Dictionary::new(&bytes).expect("a trained dictionary loads"));
        let encoder = dictionary.encoder(3).expect("an encoder");
        (dictionary, encoder)
    })
}

/// Finds the run's dictionary by its id, and nothing else.
fn find(id: u32) -> Result<Arc<Dictionary>> {
    let (dictionary, _) = dictionary();
    if id == dictionary.id() {
        Ok(dictionary.clone())
    } else {
        ors_redis::envelope::no_dictionaries(id)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 6 {
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
        // A checked header naming the run's dictionary, then any frame.
        4 => {
            let mut stored = ors_redis::envelope::MAGIC.to_vec();
            stored.extend_from_slice(&[0, 0, 0, 0, 1, 3]);
            stored.extend_from_slice(&rest.get(..4).unwrap_or_default().to_vec());
            stored.extend_from_slice(&dictionary().0.id().to_le_bytes());
            stored.extend_from_slice(rest.get(4..).unwrap_or_default());
            if stored.len() >= HEADER_LEN {
                let sum = xxhash_rust::xxh32::xxh32(&stored[12..], 0);
                stored[8..12].copy_from_slice(&sum.to_le_bytes());
            }
            check_open(&stored);
        }
        // Sealed with the dictionary, then opened.
        5 => {
            let settings = Compression {
                algorithm: Algorithm::Zstd,
                level: 3,
                min_bytes: 0,
                dictionary: None,
            };
            let mut out = Vec::new();
            let stored = seal(&settings, Some(&dictionary().1), rest, &mut out);
            assert!(stored.len() <= rest.len() || is_sealed(rest));
            assert_eq!(
                &*open(stored, MAX, &find).expect("what seal wrote opens"),
                rest
            );
        }
        // Sealed by the writer, then opened.
        m => {
            let settings = Compression {
                algorithm: if m == 2 {
                    Algorithm::Lz4
                } else {
                    Algorithm::Zstd
                },
                level: 1 + i32::from(rest.first().copied().unwrap_or(0) % 5),
                min_bytes: 0,
                dictionary: None,
            };
            let mut out = Vec::new();
            let stored = seal(&settings, None, rest, &mut out);
            assert!(stored.len() <= rest.len() || is_sealed(rest));
            assert_eq!(
                &*open(stored, MAX, &find).expect("what seal wrote opens"),
                rest
            );
        }
    }
});

fn check_open(stored: &[u8]) {
    match open(stored, MAX, &find) {
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
