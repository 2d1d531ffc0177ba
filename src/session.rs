//! The three session operations, each one round trip to the session's master:
//! `SET key value EX ttl`, `GET key`, `UNLINK key` (or `DEL` before Redis
//! 4.0). With `wait-replicas > 0`, writes are followed by `WAIT n timeout` in
//! the same pipeline on the same connection, so WAIT counts the replicas that
//! have this very write.

use std::sync::atomic::Ordering;

use crate::client::Client;
use crate::connection::Exchange;
use crate::error::{Error, ErrorKind, ReplyClass, Result};
use crate::keys::SessionId;
use crate::malloc_buf::MallocBuf;
use crate::reply::{Bulk, Value};
use crate::resp::{push_bulk, push_bulk_decimal, push_header};
use crate::router::redirect::{check_asking, ASKING};
use crate::router::{route, Reply};
use crate::threads::ConnectionSet;

/// A put's time-to-live: `ttl_seconds == 0` means the configured default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(u32);

impl Ttl {
    pub fn from_request(ttl_seconds: u32, default_secs: u32) -> Ttl {
        Ttl(if ttl_seconds == 0 {
            default_secs
        } else {
            ttl_seconds
        })
    }
}

pub fn put(
    client: &Client,
    conns: &mut ConnectionSet,
    id: SessionId<'_>,
    data: &[u8],
    ttl: Ttl,
) -> Result<()> {
    let max = client.config.max_value_bytes;
    if data.len() > max {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "value of {} bytes is larger than max-value-bytes ({max})",
                data.len()
            ),
        ));
    }
    let wait = client.config.wait_replicas;
    let wait_ms = client.config.wait_timeout.as_millis() as u64;

    // Command bytes: `buf[..tail_start]` ends just before the value, the
    // rest follows it. The value itself is sent from the caller's buffer.
    let mut buf = std::mem::take(&mut conns.cmd);
    let mut scratch = std::mem::take(&mut conns.scratch);
    buf.clear();
    client.keys.write_key(id, &mut conns.key);
    push_header(&mut buf, b'*', 5);
    push_bulk(&mut buf, b"SET");
    push_bulk(&mut buf, &conns.key);
    push_header(&mut buf, b'$', data.len());
    let tail_start = buf.len();
    buf.extend_from_slice(b"\r\n$2\r\nEX\r\n");
    push_bulk_decimal(&mut buf, ttl.0 as u64);
    append_wait(&mut buf, wait, wait_ms);

    let (head, tail) = buf.split_at(tail_start);
    let result = route_write(
        client,
        conns,
        id,
        &mut |conn| conn.send_parts([head, data, tail], &mut scratch),
        &|first, wait_reply| match first {
            Value::Okay => check_wait(wait_reply, wait).map(Reply::Done),
            Value::ServerError(e) => Ok(Reply::Error(e)),
            other => Err(unexpected("SET", &other)),
        },
    );
    conns.cmd = buf;
    conns.scratch = scratch;
    conns.trim_buffers();
    result.map_err(naming("SET"))
}

pub fn get(
    client: &Client,
    conns: &mut ConnectionSet,
    id: SessionId<'_>,
) -> Result<Option<MallocBuf>> {
    let mut buf = std::mem::take(&mut conns.cmd);
    buf.clear();
    client.keys.write_key(id, &mut conns.key);
    push_header(&mut buf, b'*', 2);
    push_bulk(&mut buf, b"GET");
    push_bulk(&mut buf, &conns.key);
    let result = route(
        client,
        conns,
        id.slot(),
        client.config.socket_timeout,
        &mut |conn, asking| {
            if asking {
                conn.send(ASKING)?;
            }
            conn.send(&buf)?;
            // Both replies are read before either is judged: the connection
            // stays in step.
            let asking_reply = if asking { Some(conn.receive()?) } else { None };
            let reply = conn.receive_bulk()?;
            if let Some(asking_reply) = asking_reply {
                check_asking(asking_reply)?;
            }
            match reply {
                Bulk::Data(value) => Ok(Reply::Done(Some(value))),
                Bulk::Nil => Ok(Reply::Done(None)),
                Bulk::Other(Value::ServerError(e)) => Ok(Reply::Error(e)),
                Bulk::Other(other) => Err(unexpected("GET", &other)),
            }
        },
    );
    conns.cmd = buf;
    result.map_err(naming("GET"))
}

/// Returns whether a session was removed.
pub fn del(client: &Client, conns: &mut ConnectionSet, id: SessionId<'_>) -> Result<bool> {
    let use_unlink = client.use_unlink.load(Ordering::Relaxed);
    match del_with(client, conns, id, use_unlink) {
        // A server without UNLINK (before 4.0) in a cluster we took for newer.
        Err(e) if use_unlink && e.is_reply(ReplyClass::UnknownCommand) => {
            tracing::warn!("a server does not know UNLINK; using DEL from now on");
            client.use_unlink.store(false, Ordering::Relaxed);
            del_with(client, conns, id, false)
        }
        other => other,
    }
}

fn del_with(
    client: &Client,
    conns: &mut ConnectionSet,
    id: SessionId<'_>,
    unlink: bool,
) -> Result<bool> {
    let wait = client.config.wait_replicas;
    let command = if unlink { "UNLINK" } else { "DEL" };
    let mut buf = std::mem::take(&mut conns.cmd);
    buf.clear();
    client.keys.write_key(id, &mut conns.key);
    push_header(&mut buf, b'*', 2);
    push_bulk(&mut buf, command.as_bytes());
    push_bulk(&mut buf, &conns.key);
    append_wait(
        &mut buf,
        wait,
        client.config.wait_timeout.as_millis() as u64,
    );
    let result = route_write(
        client,
        conns,
        id,
        &mut |conn| conn.send(&buf),
        &|first, wait_reply| match first {
            // Nothing was removed: there is no write to wait for.
            Value::Int(0) => Ok(Reply::Done(false)),
            Value::Int(_) => check_wait(wait_reply, wait).map(|()| Reply::Done(true)),
            Value::ServerError(e) => Ok(Reply::Error(e)),
            other => Err(unexpected(command, &other)),
        },
    );
    conns.cmd = buf;
    result.map_err(naming(command))
}

/// Routes a write to the session's master: `send` writes the command (and
/// its WAIT, when `wait-replicas` asks for one), `judge` reads the command's
/// reply and WAIT's. ASKING is sent first when the router says so.
fn route_write<T>(
    client: &Client,
    conns: &mut ConnectionSet,
    id: SessionId<'_>,
    send: &mut dyn FnMut(&mut Exchange<'_, '_>) -> Result<()>,
    judge: &dyn Fn(Value, Option<Value>) -> Result<Reply<T>>,
) -> Result<T> {
    let wait = client.config.wait_replicas;
    let reply_budget = client.config.socket_timeout + write_wait_budget(client);
    route(
        client,
        conns,
        id.slot(),
        reply_budget,
        &mut |conn, asking| {
            if asking {
                conn.send(ASKING)?;
            }
            send(conn)?;
            let reply = read_replies(conn, asking, wait)?;
            judge(reply.first, reply.wait)
        },
    )
}

/// Says which command a refusal was for: an ACL `NOPERM` reply does not.
fn naming(command: &'static str) -> impl Fn(Error) -> Error {
    move |mut e| {
        if matches!(e.kind, ErrorKind::Auth | ErrorKind::Server) {
            e.message = format!("{command} refused: {}", e.message);
        }
        e
    }
}

fn append_wait(buf: &mut Vec<u8>, replicas: u32, timeout_ms: u64) {
    if replicas == 0 {
        return;
    }
    push_header(buf, b'*', 3);
    push_bulk(buf, b"WAIT");
    push_bulk_decimal(buf, replicas as u64);
    push_bulk_decimal(buf, timeout_ms);
}

fn write_wait_budget(client: &Client) -> std::time::Duration {
    if client.config.wait_replicas > 0 {
        client.config.wait_timeout
    } else {
        std::time::Duration::ZERO
    }
}

struct Replies {
    first: Value,
    wait: Option<Value>,
}

/// Reads every reply the attempt asked for, so that the connection stays in
/// step whatever they say: ASKING's (checked), the command's, WAIT's.
fn read_replies(conn: &mut Exchange<'_, '_>, asking: bool, wait: u32) -> Result<Replies> {
    let asking_reply = if asking { Some(conn.receive()?) } else { None };
    let first = conn.receive()?;
    let wait_reply = if wait > 0 {
        Some(conn.receive()?)
    } else {
        None
    };
    if let Some(reply) = asking_reply {
        check_asking(reply)?;
    }
    Ok(Replies {
        first,
        wait: wait_reply,
    })
}

fn check_wait(reply: Option<Value>, wanted: u32) -> Result<()> {
    match reply {
        None => Ok(()),
        Some(Value::Int(n)) if n >= wanted as i64 => Ok(()),
        Some(Value::Int(n)) => Err(Error::new(
            ErrorKind::NotDurable,
            format!("the master applied the write but only {n} of {wanted} replica(s) acknowledged it within wait-timeout"),
        )),
        Some(Value::ServerError(e)) => Err(e.to_error()),
        Some(other) => Err(unexpected("WAIT", &other)),
    }
}

fn unexpected(command: &str, reply: &Value) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("unexpected reply to {command}: {reply:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_zero_means_the_default() {
        assert_eq!(Ttl::from_request(0, 2_592_000), Ttl(2_592_000));
        assert_eq!(Ttl::from_request(60, 2_592_000), Ttl(60));
    }

    #[test]
    fn wait_is_appended_only_when_asked() {
        let mut buf = Vec::new();
        append_wait(&mut buf, 0, 100);
        assert!(buf.is_empty());
        append_wait(&mut buf, 1, 100);
        assert_eq!(buf, b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n100\r\n");
    }

    #[test]
    fn wait_replies_decide_durability() {
        assert!(check_wait(None, 0).is_ok());
        assert!(check_wait(Some(Value::Int(2)), 1).is_ok());
        let e = check_wait(Some(Value::Int(0)), 1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotDurable);
        assert!(e.message.contains("only 0 of 1"));
    }
}
