//! The three session operations, each one round trip to the session's master:
//! `SET key value EX ttl`, `GET key`, `UNLINK key` (or `DEL` before Redis
//! 4.0). With `wait-replicas > 0`, writes are followed by `WAIT n timeout` in
//! the same pipeline on the same connection, so WAIT counts the replicas that
//! have this very write.

use std::sync::atomic::Ordering;

use crate::client::Client;
use crate::connection::Exchange;
use crate::dictionaries;
use crate::envelope::{self, Algorithm};
use crate::error::{Error, ErrorKind, ReplyClass, Result};
use crate::keys::{KeyBuilder, SessionId};
use crate::malloc_buf::MallocBuf;
use crate::reply::{Bulk, Value};
use crate::resp::{give_back_if_large, Command};
use crate::router::{route, Reply, Routes, Unanswered};

/// A put's time-to-live: `ttl_seconds == 0` means the configured default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ttl(u32);

impl Ttl {
    pub(crate) fn from_request(ttl_seconds: u32, default_secs: u32) -> Ttl {
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
pub(crate) struct Calls {
    pub routes: Routes,
    cmd: Command,
    /// Where TLS joins a put's parts into one record.
    scratch: Vec<u8>,
    /// Where a put's value is compressed (`envelope::seal`).
    sealed: Vec<u8>,
}

impl Calls {
    /// Closes every connection and gives back every buffer.
    pub(crate) fn clear(&mut self) {
        *self = Calls::default();
    }
}

#[inline]
pub(crate) fn put(
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
        sealed,
    } = calls;
    let data = match client.config.compression.algorithm {
        Algorithm::Off => data,
        _ => seal(client, data, ttl, sealed),
    };
    pack_set(cmd, &client.keys, id, data.len(), ttl, WaitFor::of(client));
    let result = route_write(
        client,
        routes,
        id,
        &mut |conn| conn.send_parts(cmd.parts(data), scratch),
        &|first, wait_reply, _| match first {
            Value::Okay => check_wait(wait_reply, wait).map(Reply::Done),
            Value::ServerError(e) => Ok(Reply::Error(e)),
            other => Err(unexpected("SET", &other)),
        },
    );
    cmd.trim();
    give_back_if_large(scratch);
    result.map_err(naming("SET"))
}

/// What a put with compression on stores for `data` (the value itself, or
/// its envelope in `sealed`): with the writer's dictionary while it is
/// known to outlive a value of `ttl`.
fn seal<'a>(client: &Client, data: &'a [u8], ttl: Ttl, sealed: &'a mut Vec<u8>) -> &'a [u8] {
    let dictionary = client
        .dictionary
        .as_deref()
        .and_then(|w| w.for_value(ttl.0, client.config.op_timeout));
    envelope::seal(&client.config.compression, dictionary, data, sealed)
}

#[inline]
pub(crate) fn get(
    client: &Client,
    calls: &mut Calls,
    id: SessionId<'_>,
) -> Result<Option<MallocBuf>> {
    let Calls { routes, cmd, .. } = calls;
    pack_get(cmd, &client.keys, id);
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
    match result {
        // A compressed value (put with compression on): opened, out of line.
        Ok(Some(stored)) if envelope::is_sealed(stored.as_slice()) => {
            let find = |id| dictionaries::find(client, id);
            envelope::open_malloc(stored, client.config.max_value_bytes, &find)
                .map(Some)
                .map_err(|e| e.at_node(routes.last_node()))
        }
        other => other.map_err(naming("GET")),
    }
}

/// Returns whether a session was removed.
#[inline]
pub(crate) fn del(client: &Client, calls: &mut Calls, id: SessionId<'_>) -> Result<bool> {
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
    pack_del(cmd, &client.keys, id, command, WaitFor::of(client));
    let result = route_write(
        client,
        routes,
        id,
        &mut |conn| conn.send(cmd.bytes()),
        &|first, wait_reply, earlier| match first {
            // An earlier attempt's UNLINK may have removed it, its reply
            // lost with the connection: "removed", not "there was none".
            Value::Int(0) if earlier => check_wait(wait_reply, wait).map(|()| Reply::Done(true)),
            // Nothing was removed: there is no write to wait for.
            Value::Int(0) => Ok(Reply::Done(false)),
            Value::Int(_) => check_wait(wait_reply, wait).map(|()| Reply::Done(true)),
            Value::ServerError(e) => Ok(Reply::Error(e)),
            other => Err(unexpected(command, &other)),
        },
    );
    result.map_err(naming(command))
}

// The commands, packed into the thread's encoder. Kept apart from the
// routing so that a test checks these very bytes against redis-rs.

/// `SET key <value> EX ttl`, then WAIT: the value (`value_len` bytes) is
/// left out, to be sent from the caller's buffer (`Command::parts`).
fn pack_set(
    cmd: &mut Command,
    keys: &KeyBuilder,
    id: SessionId<'_>,
    value_len: usize,
    ttl: Ttl,
    wait: WaitFor,
) {
    cmd.start(5).arg(b"SET");
    key_arg(cmd, keys, id);
    cmd.external_arg(value_len).arg(b"EX").arg_u64(ttl.0 as u64);
    wait.append(cmd);
}

/// `GET key`.
fn pack_get(cmd: &mut Command, keys: &KeyBuilder, id: SessionId<'_>) {
    cmd.start(2).arg(b"GET");
    key_arg(cmd, keys, id);
}

/// `UNLINK key` or `DEL key` (`command`), then WAIT.
fn pack_del(cmd: &mut Command, keys: &KeyBuilder, id: SessionId<'_>, command: &str, wait: WaitFor) {
    cmd.start(2).arg(command.as_bytes());
    key_arg(cmd, keys, id);
    wait.append(cmd);
}

/// The session's key as the next argument, built in place.
fn key_arg(cmd: &mut Command, keys: &KeyBuilder, id: SessionId<'_>) {
    cmd.arg_with(keys.key_len(id.as_bytes().len()), |out| {
        keys.push_key(id, out)
    });
}

/// Routes a write to the session's master: `send` writes the command (and
/// its WAIT, when `wait-replicas` asks for one), `judge` reads the command's
/// reply and WAIT's, told whether an earlier attempt may have been applied
/// (see [`Unanswered`]).
fn route_write<T>(
    client: &Client,
    routes: &mut Routes,
    id: SessionId<'_>,
    send: &mut dyn FnMut(&mut Exchange<'_, '_>) -> Result<()>,
    judge: &dyn Fn(Value, Option<Value>, bool) -> Result<Reply<T>>,
) -> Result<T> {
    let wait = client.config.wait_replicas;
    let reply_budget = client.config.socket_timeout + write_wait_budget(client);
    let unanswered = Unanswered::default();
    route(client, routes, id.slot(), reply_budget, &mut |conn| {
        let earlier = unanswered.earlier();
        send(conn)?;
        let reply = unanswered.reading(|| read_replies(conn, wait))?;
        judge(reply.first, reply.wait, earlier)
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

/// The `WAIT replicas timeout` that follows a write in the same pipeline;
/// none when `replicas` is 0.
#[derive(Debug, Clone, Copy)]
struct WaitFor {
    replicas: u32,
    timeout_ms: u64,
}

impl WaitFor {
    /// The client's `wait-replicas` and `wait-timeout`.
    fn of(client: &Client) -> WaitFor {
        WaitFor {
            replicas: client.config.wait_replicas,
            timeout_ms: client.config.wait_timeout.as_millis() as u64,
        }
    }

    fn append(self, cmd: &mut Command) {
        if self.replicas == 0 {
            return;
        }
        cmd.then(3)
            .arg(b"WAIT")
            .arg_u64(self.replicas as u64)
            .arg_u64(self.timeout_ms);
    }
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
        let wait = |replicas| WaitFor {
            replicas,
            timeout_ms: 100,
        };
        wait(0).append(&mut cmd);
        assert_eq!(cmd.bytes(), b"*1\r\n$1\r\nX\r\n");
        wait(1).append(&mut cmd);
        assert_eq!(
            cmd.bytes(),
            b"*1\r\n$1\r\nX\r\n*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n100\r\n"
        );
    }

    /// The bytes put, get and del send, from the very functions they call,
    /// are byte for byte what redis-rs packs for the same commands (its
    /// `get_packed_command`, and `get_packed_pipeline` for a write followed
    /// by WAIT): ids and values binary, empty and large, one encoder reused
    /// from call to call as a thread reuses its own.
    #[test]
    fn commands_are_packed_as_redis_rs_packs_them() {
        let keys = KeyBuilder::new(&crate::keys::ClusterName::parse("ORS_EU").unwrap());
        let mut cmd = Command::default();
        // xorshift64*: deterministic inputs, so a failure reruns identically.
        let mut seed = 0x5e55_1015_c0de_0015_u64;
        let mut next = move || {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let mut checked = 0;
        for case in 0..600u64 {
            let id_len = [1, 2, 36, 1024][case as usize % 4] as u64;
            // Any byte an id may hold: none below 0x20, no DEL, no brace.
            let id: Vec<u8> = (0..1 + next() % id_len)
                .map(|_| 0x20 + (next() % 0xe0) as u8)
                .filter(|b| !matches!(b, b'{' | b'}' | 0x7f))
                .collect();
            let Ok(id) = SessionId::parse(&id) else {
                continue;
            };
            let value_len = match case % 5 {
                0 => 0,
                1 => 300_000, // past the encoder's kept buffer
                _ => next() % 3000,
            };
            let value: Vec<u8> = (0..value_len).map(|_| next() as u8).collect();
            // 0 stands for the default TTL.
            let ttl = Ttl::from_request(if next() % 3 == 0 { 0 } else { next() as u32 }, 2_592_000);
            let wait = WaitFor {
                replicas: (next() % 3) as u32,
                timeout_ms: next() % 100_000,
            };
            let key = keys.key(id);
            let then_wait = |pipe: &mut redis::Pipeline| {
                if wait.replicas > 0 {
                    pipe.cmd("WAIT").arg(wait.replicas).arg(wait.timeout_ms);
                }
                pipe.get_packed_pipeline()
            };

            pack_set(&mut cmd, &keys, id, value.len(), ttl, wait);
            let parts = cmd.parts(&value);
            assert_eq!(
                parts[1], value,
                "the value is sent from the caller's buffer"
            );
            let set = then_wait(
                redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .arg("EX")
                    .arg(ttl.0),
            );
            assert_eq!(parts.concat(), set, "SET, case {case}");
            cmd.trim();

            pack_get(&mut cmd, &keys, id);
            let get = redis::cmd("GET").arg(&key).get_packed_command();
            assert_eq!(cmd.bytes(), get, "GET, case {case}");
            assert_eq!(cmd.parts(b"").concat(), get);

            for command in ["UNLINK", "DEL"] {
                pack_del(&mut cmd, &keys, id, command, wait);
                let del = then_wait(redis::pipe().cmd(command).arg(&key));
                assert_eq!(cmd.bytes(), del, "{command}, case {case}");
            }
            checked += 1;
        }
        // Only an id whose every byte was dropped is refused.
        assert!(checked > 580, "{checked} cases checked");
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
