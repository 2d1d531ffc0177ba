//! One connection to one cluster node, owned by one thread.
//!
//! `NodeConnection` opens a socket (plain TCP or rustls TLS), authenticates
//! with AUTH when a password is set (so that the server's own refusal text
//! reaches the caller), sends packed commands and reads replies with the
//! library's reply reader (src/reply.rs). Every read and write is bounded: a
//! connection never waits longer than the caller's remaining deadline, and
//! waits in slices so that a late reply can be given up on when the slot map
//! moves (see `Late`).
//!
//! A connection given up on (an error, a timeout, a request possibly still
//! unanswered) is aborted with a reset, never closed gracefully: a graceful
//! close leaves the request in the kernel's send queue, retransmitted until
//! the node takes it, possibly long after the call returned an error.
//!
//! The parts, in `connection/`:
//! - `params.rs`: what opening a connection needs, taken from the config (at
//!   init and at each reconfigure), and what a change means for open ones;
//! - `socket.rs`: the TCP connect, socket timeouts and abort on close, with
//!   all the platform `unsafe`;
//! - `resolve.rs`: host-name resolution bounded by the connect's budget, with
//!   a bounded cache that keeps a name's last known addresses;
//! - `stream.rs`: the `Transport` a connection reads and writes (plain TCP,
//!   TLS), the TLS handshake, and the classification of I/O errors;
//! - `wait.rs`: the waiting vocabulary every layer shares (`SLICE`, `Late`,
//!   `WaitError`), at the bottom: it imports none of the files here;
//! - `wire.rs`: the sliced, deadline-bounded wait on a transport;
//! - `scripted.rs` (unit tests only): a node in memory, one more `Transport`.

use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

use crate::config::{NodeAddr, Secret};
use crate::error::{from_io, Error, ErrorKind, ReplyClass, Result};
use crate::fork;
use crate::reply::{Appended, Bulk, ReadError, ReplyReader, Value};
use crate::resp;
use crate::stats;

mod params;
mod resolve;
#[cfg(test)]
pub(crate) mod scripted;
mod socket;
mod stream;
mod wait;
mod wire;

pub use params::ConnectParams;
pub(crate) use params::Renewal;
use stream::{io_failure, Transport};
use wait::{keep_waiting, WaitError, MIN_TIMEOUT};
pub(crate) use wait::{Late, SLICE};
use wire::{WaitState, Wire};

/// A connection to one node.
///
/// Deadlines: `begin` gives the call's deadline and how long one reply may
/// take (`redis-socket-timeout`, plus `wait-timeout` for a WAIT). Writes may
/// use what is left of the call; a reply is due `reply_budget` after the
/// request went out, and never after the call's deadline. Every blocking
/// read and write waits at most a `SLICE`, and less when less time is left.
pub struct NodeConnection {
    stream: Box<dyn Transport>,
    /// `stream.framed()`, asked once.
    framed: bool,
    reader: ReplyReader,
    /// What the connection's wires keep from one to the next.
    wait: WaitState,
    call_deadline: Instant,
    reply_budget: Duration,
    reply_deadline: Instant,
    /// A request went out whose replies may not all have been read: closing
    /// now must abort (reset) the connection, or the kernel would go on
    /// delivering the request after the call gave up on it.
    unsettled: bool,
    /// The fork generation the socket was opened in (see threads.rs): after a
    /// fork, the child only closes its copy of the descriptor.
    fork_generation: u64,
}

impl NodeConnection {
    /// Opens (TCP, then TLS if configured) and authenticates a connection to
    /// `addr`, all of it within `connect-timeout` and before `deadline`.
    pub fn open(addr: &NodeAddr, params: &ConnectParams, deadline: Instant) -> Result<Self> {
        Self::open_with(addr, params, deadline, &mut keep_waiting)
    }

    /// `open`, asking `late` between slices of a TCP connect that takes long
    /// (a silent node: the slot may have moved meanwhile).
    pub fn open_with(
        addr: &NodeAddr,
        params: &ConnectParams,
        deadline: Instant,
        late: &mut Late<'_>,
    ) -> Result<Self> {
        #[cfg(test)]
        if let Some(conn) = scripted::dial(addr) {
            return conn;
        }
        // The cluster's own address names the node; the map only says
        // where to dial it, and messages show both.
        let dial = params.dial_address(addr);
        let node = if dial == addr {
            addr.to_string()
        } else {
            format!("{addr} (announced; dialled as {dial} per redis-address-map)")
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(ErrorKind::Timeout, "no time left to connect").at_node(&node));
        }
        let budget = params.connect_timeout.min(remaining).max(MIN_TIMEOUT);
        let started = Instant::now();
        let connect_deadline = started + budget;
        let setting_timeouts = |e: io::Error| from_io(&e, "setting socket timeouts").at_node(&node);
        let tcp = socket::connect(dial, budget, late).map_err(|e| e.at_node(&node))?;
        // The TLS handshake blocks in rustls: it gets the whole rest of the budget.
        let left = budget.saturating_sub(started.elapsed()).max(MIN_TIMEOUT);
        socket::set_timeouts(&tcp, left).map_err(setting_timeouts)?;
        let mut stream: Box<dyn Transport> = match &params.tls {
            None => Box::new(tcp),
            // The certificate names the node as the cluster announces it
            // (a tunnel's local end is no name a certificate holds).
            Some(tls) => {
                stream::tls_handshake(tls, addr, tcp, budget).map_err(|e| e.at_node(&node))?
            }
        };
        let timeout = SLICE.min(left);
        stream.set_timeouts(timeout).map_err(setting_timeouts)?;
        let mut conn = NodeConnection::with_transport(
            stream,
            ReplyReader::with_max_value(params.max_value_bytes),
            timeout,
        );
        // The handshake shares the connect budget.
        conn.begin(started, connect_deadline, budget);
        if let Some(password) = &params.password {
            conn.authenticate(params.username.as_deref(), password)
                .map_err(|e| e.at_node(&node))?;
        }
        Ok(conn)
    }

    /// A connection to a node in memory, answering from its script.
    #[cfg(test)]
    pub fn scripted(mut stream: scripted::ScriptedStream) -> Self {
        // As `open_with` leaves a socket: waits in slices.
        // A scripted node's timeouts cannot fail.
        let _ = stream.set_timeouts(SLICE);
        NodeConnection::with_transport(Box::new(stream), ReplyReader::new(), SLICE)
    }

    /// A connection on `stream`, whose socket timeout is `timeout` now; no
    /// call has begun on it.
    fn with_transport(stream: Box<dyn Transport>, reader: ReplyReader, timeout: Duration) -> Self {
        stats::connection_opened();
        let now = Instant::now();
        NodeConnection {
            framed: stream.framed(),
            stream,
            reader,
            wait: WaitState::new(timeout),
            call_deadline: now,
            reply_budget: Duration::ZERO,
            reply_deadline: now,
            unsettled: false,
            fork_generation: fork::generation(),
        }
    }

    /// Starts a call's attempt on this connection at `now`: nothing may
    /// wait past `call_deadline`, and one reply may take `reply_budget` from
    /// the moment its request was sent (a request that goes out in one
    /// write counts as sent at `now`: no clock read on the hot path).
    pub fn begin(&mut self, now: Instant, call_deadline: Instant, reply_budget: Duration) {
        self.call_deadline = call_deadline;
        self.reply_budget = reply_budget;
        self.reply_deadline = call_deadline.min(now + reply_budget);
    }

    /// The next exchange (request and reply) may take `timeout` from now.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        let now = Instant::now();
        self.begin(now, now + timeout, timeout);
        Ok(())
    }

    /// Every reply asked for was read (or the attempt ended without a
    /// connection error): an ordinary close is safe again.
    pub fn settle(&mut self) {
        self.unsettled = false;
    }

    /// Closes a connection given up on with a reset: the kernel discards
    /// what is still queued to send instead of retransmitting it later.
    pub fn abort(mut self) {
        self.unsettled = true;
    }

    /// Sends bytes that hold one or more packed commands, without waiting.
    pub fn send(&mut self, packed: &[u8]) -> Result<()> {
        self.send_with(packed, &mut keep_waiting)
    }

    fn send_with(&mut self, packed: &[u8], late: &mut Late<'_>) -> Result<()> {
        self.unsettled = true;
        let framed = self.framed;
        let mut wire = self.wire(self.call_deadline, late);
        let mut rest = packed;
        while !rest.is_empty() {
            match wire.wait(|s| s.write(rest)) {
                Ok(0) => return Err(io_failure(&io::ErrorKind::WriteZero.into(), "write")),
                Ok(n) => rest = &rest[n..],
                Err(e) => return Err(write_failure(e)),
            }
        }
        // Plain TCP has nothing to flush: no call, no clock read.
        if framed {
            wire.wait(|s| s.flush()).map_err(write_failure)?;
        }
        if wire.ops > 1 {
            self.sent();
        }
        Ok(())
    }

    /// Sends a command whose middle part is the caller's value: one `writev`
    /// of the three parts on plain TCP, so the value is never copied. TLS
    /// encrypts into records of its own anyway: there the parts are joined
    /// in `scratch` first, so that they go out as one record, not three.
    // Inlined, as the reading chain below: a put's one write and one read
    // pay for no call frames of ours (bench/callgrind.sh counts them).
    #[inline]
    fn send_parts_with(
        &mut self,
        parts: [&[u8]; 3],
        scratch: &mut Vec<u8>,
        late: &mut Late<'_>,
    ) -> Result<()> {
        if self.framed {
            scratch.clear();
            parts
                .iter()
                .for_each(|part| scratch.extend_from_slice(part));
            return self.send_with(scratch, late);
        }
        self.unsettled = true;
        let mut wire = self.wire(self.call_deadline, late);
        let mut slices = parts.map(IoSlice::new);
        let mut slices: &mut [IoSlice<'_>] = &mut slices;
        while !slices.is_empty() {
            match wire.wait(|s| s.write_vectored(slices)) {
                Ok(0) => return Err(io_failure(&io::ErrorKind::WriteZero.into(), "write")),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) => return Err(write_failure(e)),
            }
        }
        if wire.ops > 1 {
            self.sent();
        }
        Ok(())
    }

    /// A request that took more than one write went out now: its reply is
    /// due within the reply budget from now.
    fn sent(&mut self) {
        self.reply_deadline = self.call_deadline.min(Instant::now() + self.reply_budget);
    }

    fn wire<'w>(&'w mut self, deadline: Instant, late: &'w mut Late<'_>) -> Wire<'w, 'w> {
        Wire::new(&mut *self.stream, &mut self.wait, deadline, late)
    }

    /// Reads one reply. An error reply comes back as `Value::ServerError`.
    pub fn receive(&mut self) -> Result<Value> {
        self.receive_with(&mut keep_waiting)
    }

    /// Reads one reply that should be a bulk string (a GET's): one longer
    /// than `max-value-bytes` is `ErrorKind::TooLarge` and spoils the
    /// connection, as in the session calls.
    pub fn receive_bulk(&mut self) -> Result<Bulk> {
        self.receive_bulk_with(&mut keep_waiting)
    }

    #[inline(always)]
    fn receive_with(&mut self, late: &mut Late<'_>) -> Result<Value> {
        self.read_reply(late, |reader, wire| reader.read_value(wire))
    }

    #[inline(always)]
    fn receive_bulk_with(&mut self, late: &mut Late<'_>) -> Result<Bulk> {
        self.read_reply(late, |reader, wire| reader.read_bulk(wire))
    }

    fn receive_bulk_append_with(
        &mut self,
        out: &mut Vec<u8>,
        late: &mut Late<'_>,
    ) -> Result<Appended> {
        self.read_reply(late, |reader, wire| reader.read_bulk_append(wire, out))
    }

    /// Runs the reply reader on the socket, bounded by the reply's deadline.
    #[inline(always)]
    fn read_reply<T>(
        &mut self,
        late: &mut Late<'_>,
        read: impl FnOnce(&mut ReplyReader, &mut Wire<'_, '_>) -> std::result::Result<T, ReadError>,
    ) -> Result<T> {
        let mut wire = Wire::new(&mut *self.stream, &mut self.wait, self.reply_deadline, late);
        match read(&mut self.reader, &mut wire) {
            Ok(value) => Ok(value),
            Err(e) => Err(read_failure(e, self.wait.take_interruption())),
        }
    }

    /// Sends one packed command and reads its reply.
    pub fn request(&mut self, packed: &[u8]) -> Result<Value> {
        self.send(packed)?;
        let value = self.receive()?;
        self.settle();
        Ok(value)
    }

    /// A command whose error reply is a failure (used outside the data path:
    /// handshake, topology, init checks).
    pub fn query(&mut self, args: &[&[u8]]) -> Result<Value> {
        let mut packed = Vec::new();
        resp::pack_command(&mut packed, args);
        match self.request(&packed)? {
            Value::ServerError(err) => Err(err.to_error()),
            value => Ok(value),
        }
    }

    /// Logs in again with `params`' username and password (after
    /// `ors_redis_reconfigure` changed them), before `deadline`; the reply
    /// may take `redis-socket-timeout`. Any failure leaves the connection
    /// to be aborted: a new one then says whether the node takes the
    /// credentials.
    pub fn reauthenticate(&mut self, params: &ConnectParams, deadline: Instant) -> Result<()> {
        let Some(password) = &params.password else {
            // Logging out takes a new connection (`Renewal::Reopen`).
            return Err(Error::new(
                ErrorKind::Internal,
                "no password to log in again with",
            ));
        };
        self.begin(Instant::now(), deadline, params.socket_timeout);
        self.authenticate(params.username.as_deref(), password)
    }

    fn authenticate(&mut self, username: Option<&str>, password: &Secret) -> Result<()> {
        let pass = password.expose().as_bytes();
        let reply = match username {
            Some(user) => self.query(&[b"AUTH", user.as_bytes(), pass]),
            None => self.query(&[b"AUTH", pass]),
        };
        match reply {
            Ok(_) => Ok(()),
            // Before Redis 6 there are no ACL users: AUTH takes one argument.
            // The "default" user is what a one-argument AUTH means anyway.
            Err(e) if username == Some("default") && e.is_reply(ReplyClass::WrongArity) => {
                self.query(&[b"AUTH", pass]).map(|_| ())
            }
            Err(e) if e.is_reply(ReplyClass::WrongArity) => Err(e
                .counted_as(ErrorKind::Auth)
                .with_advice(
                " (this server predates Redis 6 and has no ACL users: configure 'password' alone)",
            )),
            // Any other refusal of AUTH is an authentication problem; the
            // reply's class stays for whoever looks further.
            Err(e) if e.kind == ErrorKind::Server => Err(e.counted_as(ErrorKind::Auth)),
            Err(e) => Err(e),
        }
    }
}

/// One attempt's view of a connection, as the session operations use it:
/// while a reply or a write is late, `late` is asked between slices whether
/// to keep waiting.
pub struct Exchange<'c, 'l> {
    conn: &'c mut NodeConnection,
    late: &'c mut Late<'l>,
}

// Each method forwards to the connection and is inlined into the session
// calls, with the connection's part of the chain (see `send_parts_with`).
impl<'c, 'l> Exchange<'c, 'l> {
    /// An attempt on `conn`; `late` decides how long a late reply is waited for.
    pub fn new(conn: &'c mut NodeConnection, late: &'c mut Late<'l>) -> Self {
        Exchange { conn, late }
    }

    /// Sends bytes that hold one or more packed commands.
    #[inline(always)]
    pub fn send(&mut self, packed: &[u8]) -> Result<()> {
        self.conn.send_with(packed, self.late)
    }

    /// Sends a command whose middle part is the caller's value (see
    /// `NodeConnection::send_parts_with`).
    #[inline(always)]
    pub fn send_parts(&mut self, parts: [&[u8]; 3], scratch: &mut Vec<u8>) -> Result<()> {
        self.conn.send_parts_with(parts, scratch, self.late)
    }

    /// Reads one reply. An error reply comes back as `Value::ServerError`.
    #[inline(always)]
    pub fn receive(&mut self) -> Result<Value> {
        self.conn.receive_with(self.late)
    }

    /// Reads one reply that should be a bulk string (a GET's), straight into
    /// a buffer that can be handed to C.
    #[inline(always)]
    pub fn receive_bulk(&mut self) -> Result<Bulk> {
        self.conn.receive_bulk_with(self.late)
    }

    /// Reads one reply that should be a bulk string, appending its bytes to
    /// `out` (see `ReplyReader::read_bulk_append`).
    pub fn receive_bulk_append(&mut self, out: &mut Vec<u8>) -> Result<Appended> {
        self.conn.receive_bulk_append_with(out, self.late)
    }
}

impl Drop for NodeConnection {
    fn drop(&mut self) {
        stats::connection_closed();
        // After a fork the socket is the parent's too: the child only closes
        // its descriptor, which leaves the parent's connection as it is.
        if self.unsettled && self.fork_generation == fork::generation() {
            // Best effort: if it fails, the close below is a graceful one.
            let _ = self.stream.abort_on_close();
        }
        // TLS: no close_notify is sent on drop (rustls sends one only when
        // asked), so an aborted TLS connection ends with the reset alone.
    }
}

/// A failed or interrupted write.
#[cold]
fn write_failure(err: WaitError) -> Error {
    match err {
        WaitError::Io(e) => io_failure(&e, "write"),
        WaitError::Interrupted(e) => e,
    }
}

/// A failed read leaves the connection out of step: every kind of failure
/// is one the router drops the connection for. When the `Late` check gave
/// up (`interrupted`), its error is the failure, not the reader's.
#[cold]
fn read_failure(err: ReadError, interrupted: Option<Error>) -> Error {
    if let Some(late) = interrupted {
        return late;
    }
    match err {
        ReadError::Io(e) => io_failure(&e, "read"),
        ReadError::Closed => Error::new(ErrorKind::Connection, "the node closed the connection"),
        ReadError::Protocol(why) => {
            Error::new(ErrorKind::Connection, format!("unreadable reply: {why}"))
        }
        ReadError::TooLarge { len, max } => Error::new(
            ErrorKind::TooLarge,
            format!("the value is {len} bytes, more than max-value-bytes ({max}); the connection was closed"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::thread;

    fn params() -> ConnectParams {
        ConnectParams {
            connect_timeout: Duration::from_secs(1),
            socket_timeout: Duration::from_secs(1),
            username: None,
            password: None,
            tls: None,
            max_value_bytes: 64 * 1024 * 1024,
            address_map: Arc::default(),
        }
    }

    /// A node on loopback that runs `serve` on the one connection it accepts.
    fn node(serve: impl FnOnce(TcpStream) + Send + 'static) -> (NodeAddr, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || serve(listener.accept().unwrap().0));
        (
            NodeAddr {
                host: "127.0.0.1".into(),
                port,
            },
            handle,
        )
    }

    fn silent(tcp: TcpStream) {
        thread::sleep(Duration::from_millis(1500));
        drop(tcp);
    }

    const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

    fn connect(addr: &NodeAddr) -> NodeConnection {
        NodeConnection::open(addr, &params(), Instant::now() + Duration::from_secs(1)).unwrap()
    }

    /// A PING with the call's and the reply's budgets: the receive's error
    /// and how long it took from the start of the attempt.
    fn failed_ping(
        conn: &mut NodeConnection,
        call: Duration,
        reply: Duration,
    ) -> (Error, Duration) {
        let now = Instant::now();
        conn.begin(now, now + call, reply);
        assert_eq!(conn.reply_deadline, now + call.min(reply));
        conn.send(PING).unwrap();
        let e = conn.receive().unwrap_err();
        (e, now.elapsed())
    }

    /// What `authenticate` makes of a node that answers every command with
    /// the error reply `reply`.
    fn auth_refused_with(reply: &str, username: Option<&str>) -> Error {
        let reply = format!("-{reply}\r\n").into_bytes();
        let script: Box<scripted::Script> =
            Box::new(move |_: &[Vec<u8>]| scripted::Answer::Reply(reply.clone()));
        let stream = scripted::ScriptedStream::new(Arc::new(std::sync::Mutex::new(script)));
        let mut conn = NodeConnection::scripted(stream);
        conn.set_timeout(Duration::from_secs(1)).unwrap();
        let config = crate::config::Config::parse(
            "redis-nodes=127.0.0.1:7000 cluster-name=T password=secret",
        )
        .unwrap();
        conn.authenticate(username, config.password.as_ref().unwrap())
            .unwrap_err()
    }

    #[test]
    fn a_refused_auth_keeps_the_replys_class() {
        let e = auth_refused_with(
            "ERR wrong number of arguments for 'auth' command",
            Some("ors"),
        );
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.is_reply(ReplyClass::WrongArity), "{e:?}");
        assert!(
            e.message.contains("configure 'password' alone"),
            "{}",
            e.message
        );
        let e = auth_refused_with("ERR Client sent AUTH, but no password is set", None);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.is_reply(ReplyClass::Other), "{e:?}");
        // Already an authentication class: left as it is.
        let e = auth_refused_with("WRONGPASS invalid username-password pair", Some("ors"));
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.is_reply(ReplyClass::WrongPass), "{e:?}");
        assert!(!e.message.contains("secret"));
    }

    /// `params()` with `redis-address-map` set to `map`.
    fn params_with_map(map: &str) -> ConnectParams {
        let mut params = params();
        params.address_map = Arc::new(crate::config::AddressMap::parse(map).unwrap());
        params
    }

    #[test]
    fn a_mapped_node_is_dialled_where_the_map_says_and_named_as_announced() {
        let (reachable, server) = node(|mut tcp| {
            let mut buf = [0u8; 64];
            let n = tcp.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], PING);
            tcp.write_all(b"+PONG\r\n").unwrap();
        });
        // A name that never resolves: only the reachable address is dialled.
        let announced = NodeAddr::parse("node-1.nat.invalid:7000").unwrap();
        let params = params_with_map(&format!("{announced}={reachable}"));
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut conn = NodeConnection::open(&announced, &params, deadline).unwrap();
        conn.set_timeout(Duration::from_secs(1)).unwrap();
        assert!(matches!(conn.query(&[b"PING"]).unwrap(), Value::SimpleString(s) if s == "PONG"));
        server.join().unwrap();

        // Nothing listens where the map points: the message names both.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let params = params_with_map(&format!("{announced}={closed}"));
        let e = NodeConnection::open(&announced, &params, deadline)
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::Connection);
        assert!(
            e.message.starts_with(&format!(
                "node node-1.nat.invalid:7000 (announced; dialled as {closed} per redis-address-map): "
            )),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_reply_is_due_its_budget_after_the_request_and_never_after_the_call() {
        let (addr, server) = node(silent);
        let mut conn = connect(&addr);
        let (e, took) = failed_ping(
            &mut conn,
            Duration::from_secs(5),
            Duration::from_millis(150),
        );
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_millis(150) + SLICE * 2,
            "{took:?}"
        );
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn a_trickling_reply_cannot_stretch_the_call() {
        let (addr, server) = node(|mut tcp| {
            let _ = tcp.write_all(b"$100000\r\n");
            for _ in 0..200 {
                if tcp.write_all(b"x").is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(5));
            }
        });
        let mut conn = connect(&addr);
        let (e, took) = failed_ping(
            &mut conn,
            Duration::from_millis(300),
            Duration::from_secs(10),
        );
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert!(took < Duration::from_millis(300) + SLICE * 2, "{took:?}");
        drop(conn);
        server.join().unwrap();
    }

    /// A connection to a node that reads nothing and never answers, with
    /// 5 s for the call.
    fn to_a_silent_node() -> (NodeConnection, thread::JoinHandle<()>) {
        let (addr, server) = node(silent);
        let mut conn = connect(&addr);
        let now = Instant::now();
        conn.begin(now, now + Duration::from_secs(5), Duration::from_secs(5));
        (conn, server)
    }

    /// A `Late` check that says to keep waiting `patience` times, then gives
    /// the connection up; `asked` counts how often it was asked.
    fn gives_up_after(patience: u32, asked: &Cell<u32>) -> impl FnMut() -> Result<()> + '_ {
        move || {
            asked.set(asked.get() + 1);
            if asked.get() <= patience {
                Ok(())
            } else {
                Err(Error::new(ErrorKind::Connection, "the slot moved"))
            }
        }
    }

    #[test]
    fn a_late_check_can_give_the_connection_up_between_slices() {
        let now = Instant::now();
        let (mut conn, server) = to_a_silent_node();
        let asked = Cell::new(0);
        let mut late = gives_up_after(2, &asked);
        let mut exchange = Exchange::new(&mut conn, &mut late);
        exchange.send(PING).unwrap();
        let e = exchange.receive().unwrap_err();
        assert_eq!(e.message, "the slot moved");
        assert!(now.elapsed() < SLICE * 6, "{:?}", now.elapsed());
        assert_eq!(asked.get(), 3);
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn a_late_check_can_give_up_a_write_that_does_not_go_out() {
        // The node reads nothing: the socket buffers fill, the write waits
        // in slices.
        let (mut conn, server) = to_a_silent_node();
        let asked = Cell::new(0);
        let mut late = gives_up_after(0, &asked);
        let big = vec![b'x'; 64 << 20];
        let e = Exchange::new(&mut conn, &mut late).send(&big).unwrap_err();
        assert_eq!(e.message, "the slot moved");
        assert_eq!(asked.get(), 1);
        conn.abort();
        server.join().unwrap();
    }

    /// What the server reads after the client closed: the request, then a
    /// reset (abort) or an end of file (graceful close).
    fn close_as_seen_by_the_node(abort: bool) -> io::ErrorKind {
        let (closed, wait_close) = std::sync::mpsc::channel();
        let (seen, result) = std::sync::mpsc::channel();
        let (accepted, wait_accept) = std::sync::mpsc::channel();
        let (addr, server) = node(move |mut tcp| {
            accepted.send(()).unwrap();
            wait_close.recv().unwrap();
            let mut buf = [0u8; 64];
            let n = tcp.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], PING, "the request is read first either way");
            let end = match tcp.read(&mut buf) {
                Ok(0) => io::ErrorKind::UnexpectedEof,
                Ok(_) => io::ErrorKind::Other,
                Err(e) => e.kind(),
            };
            seen.send(end).unwrap();
        });
        let mut conn = connect(&addr);
        conn.set_timeout(Duration::from_secs(1)).unwrap();
        conn.send(PING).unwrap();
        // Windows (wine too) fails an accept() of a connection reset before
        // it was accepted: close only once the node holds it.
        wait_accept.recv().unwrap();
        if abort {
            conn.abort();
        } else {
            conn.settle();
            drop(conn);
        }
        closed.send(()).unwrap();
        server.join().unwrap();
        result.recv().unwrap()
    }

    #[test]
    fn a_connection_given_up_on_is_reset_and_a_settled_one_closed() {
        // Under wine a node's recv() reports the reset as an end of file, so
        // on Windows the reset is checked from the Linux side instead
        // (c_tests/windows/run-wine-tests.sh: no socket of a stopped master
        // left in CLOSE-WAIT).
        #[cfg(not(windows))]
        assert_eq!(
            close_as_seen_by_the_node(true),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(
            close_as_seen_by_the_node(false),
            io::ErrorKind::UnexpectedEof
        );
    }
}
