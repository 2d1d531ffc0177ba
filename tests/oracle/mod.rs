//! redis-rs as the oracle of our RESP2 reader, shared by the property test
//! (`tests/redis_oracle.rs`) and the fuzz target `reply_oracle`.
//!
//! The claim checked: whatever our reader accepts, `redis::parse_redis_value`
//! accepts too, with an equal value. Where our reader refuses what redis-rs
//! takes (RESP3, negative lengths other than -1, deeper nesting, ...) nothing
//! is claimed; the differences are listed in `src/reply.rs`.

#![allow(dead_code)] // each user takes what it needs

use ors_redis::reply::{Bulk, ReplyReader, ServerError, Trickle, Value};

pub(crate) mod encode;

/// Our value for redis-rs's, or `None` for a type RESP2 does not have.
pub(crate) fn from_redis(value: redis::Value) -> Option<Value> {
    Some(match value {
        redis::Value::Nil => Value::Nil,
        redis::Value::Int(n) => Value::Int(n),
        redis::Value::BulkString(b) => Value::BulkString(b),
        redis::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(from_redis)
                .collect::<Option<Vec<_>>>()?,
        ),
        redis::Value::Okay => Value::Okay,
        redis::Value::SimpleString(s) => Value::SimpleString(s),
        redis::Value::ServerError(e) => Value::ServerError(ServerError::new(match e.details() {
            Some(details) => format!("{} {details}", e.code()),
            None => e.code().to_string(),
        })),
        _ => return None,
    })
}

/// Whether a value holds a status or error line that our reader converted
/// lossily (U+FFFD): redis-rs refuses a line that is not UTF-8 (listed in
/// src/reply.rs). A line that held U+FFFD itself is skipped too.
fn lossy(value: &Value) -> bool {
    match value {
        Value::SimpleString(s) => s.contains('\u{fffd}'),
        Value::ServerError(e) => e.text().contains('\u{fffd}'),
        Value::Array(items) => items.iter().any(lossy),
        _ => false,
    }
}

/// Reads the first reply of `bytes` with our reader (as a value, and as a
/// GET's bulk string), delivered `step` bytes at a time, and with redis-rs;
/// an error describes the disagreement. Returns whether our reader accepted.
pub(crate) fn check(bytes: &[u8], step: usize) -> Result<bool, String> {
    let ours = ReplyReader::new().read_value(&mut Trickle { bytes, step });
    let bulk = ReplyReader::new().read_bulk(&mut Trickle { bytes, step });
    let Ok(ours) = ours else {
        return match bulk {
            Ok(_) => Err(format!(
                "{bytes:?}: read_bulk accepted what read_value refused"
            )),
            Err(_) => Ok(false),
        };
    };
    let as_bulk = match bulk {
        Ok(Bulk::Data(buf)) => Value::BulkString(buf.as_slice().to_vec()),
        Ok(Bulk::Nil) => Value::Nil,
        Ok(Bulk::Other(value)) => value,
        Err(e) => {
            return Err(format!(
                "{bytes:?}: read_bulk refused ({e:?}) what read_value read"
            ))
        }
    };
    if as_bulk != ours {
        return Err(format!(
            "{bytes:?}: read_bulk {as_bulk:?}, read_value {ours:?}"
        ));
    }
    if lossy(&ours) {
        return Ok(true);
    }
    match redis::parse_redis_value(bytes) {
        Ok(theirs) => match from_redis(theirs.clone()) {
            Some(theirs) if theirs == ours => Ok(true),
            _ => Err(format!("{bytes:?}: ours {ours:?}, redis-rs {theirs:?}")),
        },
        Err(e) => Err(format!("{bytes:?}: ours {ours:?}, redis-rs refused: {e}")),
    }
}
