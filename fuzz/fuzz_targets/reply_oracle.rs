//! redis-rs as the oracle of the RESP2 reader: whatever our reader accepts,
//! `redis::parse_redis_value` reads to an equal value (the comparison, and
//! the differences it leaves out, are in tests/oracle/mod.rs and
//! src/reply.rs). The first input byte sets how the socket splits the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/oracle/mod.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    if let Err(disagreement) = oracle::check(bytes, (step as usize % 13) + 1) {
        panic!("{disagreement}");
    }
});
