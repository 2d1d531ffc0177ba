//! Replies come from the network: the RESP2 reader must never panic, and it
//! must decode the same bytes to the same values however the socket splits
//! them. (A lying length allocates only what really arrives: the fuzzer's
//! malloc limit would catch it otherwise.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use ors_redis::reply::{Bulk, ReadError, ReplyReader, Trickle, Value};

/// Every value the bytes decode to, then how decoding ended.
fn decode(bytes: &[u8], step: usize, as_bulk: bool) -> (Vec<Value>, String) {
    let mut src = Trickle { bytes, step };
    let mut reader = ReplyReader::new();
    let mut values = Vec::new();
    for _ in 0..64 {
        let next = if as_bulk {
            reader.read_bulk(&mut src).map(|bulk| match bulk {
                Bulk::Data(buf) => Value::BulkString(buf.as_slice().to_vec()),
                Bulk::Nil => Value::Nil,
                Bulk::Other(value) => value,
            })
        } else {
            reader.read_value(&mut src)
        };
        match next {
            Ok(value) => values.push(value),
            Err(ReadError::Closed) => return (values, "closed".into()),
            Err(ReadError::Protocol(why)) => return (values, why),
            Err(ReadError::Io(e)) => return (values, e.to_string()),
            Err(e @ ReadError::TooLarge { .. }) => return (values, format!("{e:?}")),
        }
    }
    (values, "limit".into())
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let whole = decode(bytes, usize::MAX, false);
    let split = decode(bytes, (step as usize % 13) + 1, false);
    assert_eq!(whole, split);
    // A bulk string read into a malloc'd buffer is the same bulk string.
    assert_eq!(decode(bytes, (step as usize % 7) + 1, true), whole);
});
