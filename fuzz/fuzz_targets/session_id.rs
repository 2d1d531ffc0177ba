//! Session ids and cluster names come from ORS: validation must never panic,
//! and what it accepts must make a key whose hash tag is the session id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ors_redis::keys::{key_slot, ClusterName, KeyBuilder, SessionId};

fuzz_target!(|data: &[u8]| {
    let (name, id) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"ORS_EU"[..], data),
    };
    let Ok(id) = SessionId::parse(id) else {
        return;
    };
    assert!(!id
        .as_bytes()
        .iter()
        .any(|&b| b == b'{' || b == b'}' || b.is_ascii_control()));
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    if let Ok(cluster) = ClusterName::parse(name) {
        let key = KeyBuilder::new(&cluster).key(id);
        assert_eq!(key_slot(&key), id.slot());
        assert!(key.starts_with(b"ORS:"));
    }
});
