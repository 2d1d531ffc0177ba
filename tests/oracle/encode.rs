//! A writer of replies, to make test input for the RESP2 reader: shared by
//! the reader's unit tests (src/reply.rs) and the oracle test. Test code
//! only: the library's one RESP writer is src/resp.rs, for commands.

use super::Value;

/// Appends the RESP2 bytes of `value` (nil as `$-1`).
pub(crate) fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Nil => out.extend_from_slice(b"$-1\r\n"),
        Value::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Value::BulkString(b) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            items.iter().for_each(|item| encode(item, out));
        }
        Value::Okay => out.extend_from_slice(b"+OK\r\n"),
        Value::SimpleString(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        Value::ServerError(e) => out.extend_from_slice(format!("-{}\r\n", e.text()).as_bytes()),
    }
}
