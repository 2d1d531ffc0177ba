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
use crate::resp::{give_back_if_large, Command};
use crate::router::{route, Reply, Routes};

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

/// What a thread's calls keep from one call to the next: routing (its
/// connections and slot map) and the command encoder's buffers.
#[derive(Default)]
pub struct Calls {
    pub routes: Routes,
    cmd: Command,
    /// Where TLS joins a put's parts into one record.
    scratch: Vec<u8>,
}

impl Calls {
    /// Closes every connection and gives back every buffer.
    pub fn clear(&mut self) {
        *self = Calls::default();
    }
}

pub fn put(
    client: &Client,
    calls: &mut Calls,
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
    let Calls {
        routes,
        cmd,
        scratch,
    } = calls;
    // The value is left out of the command: it is sent from the caller's buffer.
    cmd.start(5).arg(b"SET");
    key_arg(cmd, client, id);
    cmd.external_arg(data.len())
        .arg(b"EX")
        .arg_u64(ttl.0 as u64);
    wait_for_replicas(cmd, client);
    let result = route_write(
        client,
        routes,
        id,
        &mut |conn| conn.send_parts(cmd.parts(data), scratch),
        &|first, wait_reply| match first {
            Value::Okay => check_wait(wait_reply, wait).map(Reply::Done),
            Value::ServerError(e) => Ok(Reply::Error(e)),
            other => Err(unexpected("SET", &other)),
        },
    );
    cmd.trim();
    give_back_if_large(scratch);
    result.map_err(naming("SET"))
}

pub fn get(client: &Client, calls: &mut Calls, id: SessionId<'_>) -> Result<Option<MallocBuf>> {
    let Calls { routes, cmd, .. } = calls;
    cmd.start(2).arg(b"GET");
    key_arg(cmd, client, id);
    let result = route(
        client,
        routes,
        id.slot(),
        client.config.socket_timeout,
        &mut |conn| {
            conn.send(cmd.bytes())?;
            match conn.receive_bulk()? {
                Bulk::Data(value) => Ok(Reply::Done(Some(value))),
                Bulk::Nil => Ok(Reply::Done(None)),
                Bulk::Other(Value::ServerError(e)) => Ok(Reply::Error(e)),
                Bulk::Other(other) => Err(unexpected("GET", &other)),
            }
        },
    );
    result.map_err(naming("GET"))
}

/// Returns whether a session was removed.
pub fn del(client: &Client, calls: &mut Calls, id: SessionId<'_>) -> Result<bool> {
    let use_unlink = client.use_unlink.load(Ordering::Relaxed);
    match del_with(client, calls, id, use_unlink) {
        // A server without UNLINK (before 4.0) in a cluster we took for newer.
        Err(e) if use_unlink && e.is_reply(ReplyClass::UnknownCommand) => {
            tracing::warn!("a server does not know UNLINK; using DEL from now on");
            client.use_unlink.store(false, Ordering::Relaxed);
            del_with(client, calls, id, false)
        }
        other => other,
    }
}

fn del_with(client: &Client, calls: &mut Calls, id: SessionId<'_>, unlink: bool) -> Result<bool> {
    let wait = client.config.wait_replicas;
    let command = if unlink { "UNLINK" } else { "DEL" };
    let Calls { routes, cmd, .. } = calls;
    cmd.start(2).arg(command.as_bytes());
    key_arg(cmd, client, id);
    wait_for_replicas(cmd, client);
    let result = route_write(
        client,
        routes,
        id,
        &mut |conn| conn.send(cmd.bytes()),
        &|first, wait_reply| match first {
            // Nothing was removed: there is no write to wait for.
            Value::Int(0) => Ok(Reply::Done(false)),
            Value::Int(_) => check_wait(wait_reply, wait).map(|()| Reply::Done(true)),
            Value::ServerError(e) => Ok(Reply::Error(e)),
            other => Err(unexpected(command, &other)),
        },
    );
    result.map_err(naming(command))
}

/// The session's key as the next argument, built in place.
fn key_arg(cmd: &mut Command, client: &Client, id: SessionId<'_>) {
    let keys = &client.keys;
    cmd.arg_with(keys.key_len(id.as_bytes().len()), |out| {
        keys.push_key(id, out)
    });
}

/// Routes a write to the session's master: `send` writes the command (and
/// its WAIT, when `wait-replicas` asks for one), `judge` reads the command's
/// reply and WAIT's.
fn route_write<T>(
    client: &Client,
    routes: &mut Routes,
    id: SessionId<'_>,
    send: &mut dyn FnMut(&mut Exchange<'_, '_>) -> Result<()>,
    judge: &dyn Fn(Value, Option<Value>) -> Result<Reply<T>>,
) -> Result<T> {
    let wait = client.config.wait_replicas;
    let reply_budget = client.config.socket_timeout + write_wait_budget(client);
    route(client, routes, id.slot(), reply_budget, &mut |conn| {
        send(conn)?;
        let reply = read_replies(conn, wait)?;
        judge(reply.first, reply.wait)
    })
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

/// `WAIT replicas timeout` after a write, when `wait-replicas` asks for it.
fn append_wait(cmd: &mut Command, replicas: u32, timeout_ms: u64) {
    if replicas == 0 {
        return;
    }
    cmd.then(3)
        .arg(b"WAIT")
        .arg_u64(replicas as u64)
        .arg_u64(timeout_ms);
}

/// `append_wait` with the client's settings.
fn wait_for_replicas(cmd: &mut Command, client: &Client) {
    let config = &client.config;
    append_wait(
        cmd,
        config.wait_replicas,
        config.wait_timeout.as_millis() as u64,
    );
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
/// step whatever they say: the command's, WAIT's.
fn read_replies(conn: &mut Exchange<'_, '_>, wait: u32) -> Result<Replies> {
    let first = conn.receive()?;
    let wait_reply = if wait > 0 {
        Some(conn.receive()?)
    } else {
        None
    };
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
        let mut cmd = Command::default();
        cmd.start(1).arg(b"X");
        append_wait(&mut cmd, 0, 100);
        assert_eq!(cmd.bytes(), b"*1\r\n$1\r\nX\r\n");
        append_wait(&mut cmd, 1, 100);
        assert_eq!(
            cmd.bytes(),
            b"*1\r\n$1\r\nX\r\n*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n100\r\n"
        );
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
