//! One connection to one cluster node, owned by one thread.
//!
//! The socket (plain TCP or rustls TLS) and the reply reader (src/reply.rs)
//! are ours. redis-rs's `Connection` was used first and dropped: it always
//! verifies the certificate against the host it connects to, so `tls-sni`
//! (verify another name) is impossible with it, and its parser cost more
//! than half of a call's instructions (see reply.rs). We also do the
//! handshake (AUTH, so that the server's own refusal text reaches the
//! caller) and keep every read bounded: a connection never waits longer than
//! the caller's remaining deadline.

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};

use crate::config::{Config, NodeAddr, Secret};
use crate::error::{from_io, Error, ErrorKind, ReplyClass, Result};
use crate::reply::{Bulk, ReadError, ReplyReader, Value};
use crate::resp;
use crate::stats;
use crate::tls::{self, TlsClient};

/// What every connection of this library needs to know to open and
/// authenticate, taken from the config once at init.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub connect_timeout: Duration,
    pub socket_timeout: Duration,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Set when `tls-enabled=true`; CA files were read once, at init.
    pub tls: Option<Arc<TlsClient>>,
    /// `max-value-bytes`: a GET's reply announcing more is not read.
    pub max_value_bytes: usize,
}

impl ConnectParams {
    pub fn from_config(config: &Config) -> Result<Self> {
        let tls = if config.tls.enabled {
            Some(Arc::new(TlsClient::from_settings(&config.tls)?))
        } else {
            None
        };
        Ok(ConnectParams {
            connect_timeout: config.connect_timeout,
            socket_timeout: config.socket_timeout,
            username: config.username.clone(),
            password: config.password.clone(),
            tls,
            max_value_bytes: config.max_value_bytes,
        })
    }
}

#[cfg(test)]
pub mod scripted;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// A node in memory (unit tests of the router).
    #[cfg(test)]
    Scripted(scripted::ScriptedStream),
}

impl Stream {
    fn set_timeouts(&mut self, timeout: Duration) -> Result<()> {
        match self {
            Stream::Plain(s) => set_socket_timeouts(s, timeout),
            Stream::Tls(s) => set_socket_timeouts(&s.sock, timeout),
            #[cfg(test)]
            Stream::Scripted(s) => {
                s.timeout = timeout;
                Ok(())
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            #[cfg(test)]
            Stream::Scripted(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            #[cfg(test)]
            Stream::Scripted(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            #[cfg(test)]
            Stream::Scripted(s) => s.flush(),
        }
    }
}

/// Classifies a socket error; a TLS alert or certificate problem inside it
/// is `ORS_ERR_TLS`.
fn io_failure(err: &io::Error, what: &str) -> Error {
    if let Some(tls_err) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return tls::failure(tls_err);
    }
    from_io(err, what)
}

/// A connection to one node, with the read timeout it currently has (so that
/// the hot path does not repeat a `setsockopt` that changes nothing).
pub struct NodeConnection {
    stream: Stream,
    reader: ReplyReader,
    read_timeout: Duration,
}

/// The smallest timeout we hand to a socket: zero would mean "block forever".
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

impl NodeConnection {
    /// Opens (TCP, then TLS if configured) and authenticates a connection to
    /// `addr`, all of it within `connect-timeout` and before `deadline`.
    pub fn open(addr: &NodeAddr, params: &ConnectParams, deadline: Instant) -> Result<Self> {
        let node = addr.to_string();
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(ErrorKind::Timeout, "no time left to connect").at_node(&node));
        }
        let budget = params.connect_timeout.min(remaining).max(MIN_TIMEOUT);
        let started = Instant::now();
        let tcp = connect_tcp(addr, budget).map_err(|e| e.at_node(&node))?;
        let left = budget.saturating_sub(started.elapsed()).max(MIN_TIMEOUT);
        set_socket_timeouts(&tcp, left).map_err(|e| e.at_node(&node))?;
        let stream = match &params.tls {
            None => Stream::Plain(tcp),
            Some(tls) => tls_handshake(tls, addr, tcp, budget).map_err(|e| e.at_node(&node))?,
        };
        stats::connection_opened();
        let mut conn = NodeConnection {
            stream,
            reader: ReplyReader::with_max_value(params.max_value_bytes),
            read_timeout: left,
        };
        // The handshake shares the connect budget.
        let left = budget.saturating_sub(started.elapsed()).max(MIN_TIMEOUT);
        conn.set_timeout(left)?;
        if let Some(password) = &params.password {
            conn.authenticate(params.username.as_deref(), password)
                .map_err(|e| e.at_node(&node))?;
        }
        Ok(conn)
    }

    /// A connection to a node in memory, answering from its script.
    #[cfg(test)]
    pub fn scripted(stream: scripted::ScriptedStream) -> Self {
        stats::connection_opened();
        NodeConnection {
            read_timeout: stream.timeout,
            stream: Stream::Scripted(stream),
            reader: ReplyReader::new(),
        }
    }

    /// Sets the read and write timeout for the next request.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        let timeout = timeout.max(MIN_TIMEOUT);
        if timeout != self.read_timeout {
            self.stream.set_timeouts(timeout)?;
            self.read_timeout = timeout;
        }
        Ok(())
    }

    /// Sends bytes that hold one or more packed commands, without waiting.
    pub fn send(&mut self, packed: &[u8]) -> Result<()> {
        self.stream
            .write_all(packed)
            .and_then(|()| self.stream.flush())
            .map_err(|e| io_failure(&e, "write"))
    }

    /// Sends a command whose middle part is the caller's value: one `writev`
    /// of the three parts on plain TCP, so the value is never copied. TLS
    /// encrypts into records of its own anyway: there the parts are joined
    /// in `scratch` first, so that they go out as one record, not three.
    pub fn send_parts(&mut self, parts: [&[u8]; 3], scratch: &mut Vec<u8>) -> Result<()> {
        if let Stream::Plain(tcp) = &mut self.stream {
            return write_all_vectored(tcp, parts).map_err(|e| io_failure(&e, "write"));
        }
        scratch.clear();
        parts
            .iter()
            .for_each(|part| scratch.extend_from_slice(part));
        self.send(scratch)
    }

    /// Reads one reply. An error reply comes back as `Value::ServerError`.
    pub fn receive(&mut self) -> Result<Value> {
        self.reader
            .read_value(&mut self.stream)
            .map_err(read_failure)
    }

    /// Reads one reply that should be a bulk string (a GET's), straight into
    /// a buffer that can be handed to C.
    pub fn receive_bulk(&mut self) -> Result<Bulk> {
        self.reader
            .read_bulk(&mut self.stream)
            .map_err(read_failure)
    }

    /// Sends one packed command and reads its reply.
    pub fn request(&mut self, packed: &[u8]) -> Result<Value> {
        self.send(packed)?;
        self.receive()
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
            Err(e) if e.is_reply(ReplyClass::WrongArity) => Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "{} (this server predates Redis 6 and has no ACL users: configure 'password' alone)",
                    e.message
                ),
            )),
            Err(e) if e.kind == ErrorKind::Server => {
                // Any other refusal of AUTH is an authentication problem.
                Err(Error::new(ErrorKind::Auth, e.message))
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for NodeConnection {
    fn drop(&mut self) {
        stats::connection_closed();
    }
}

/// A failed read leaves the connection out of step: every kind of failure
/// is one the router drops the connection for.
fn read_failure(err: ReadError) -> Error {
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

/// `write_all` for several buffers (std's `write_all_vectored` is not
/// stable): retries after short writes.
fn write_all_vectored(tcp: &mut TcpStream, parts: [&[u8]; 3]) -> io::Result<()> {
    let mut slices = parts.map(IoSlice::new);
    let mut slices: &mut [IoSlice<'_>] = &mut slices;
    while !slices.is_empty() {
        match tcp.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn set_socket_timeouts(tcp: &TcpStream, timeout: Duration) -> Result<()> {
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| from_io(&e, "setting socket timeouts"))
}

/// Connects to the first address of `addr` that answers within `budget`.
fn connect_tcp(addr: &NodeAddr, budget: Duration) -> Result<TcpStream> {
    let resolved: Vec<_> = (addr.host.as_str(), addr.port)
        .to_socket_addrs()
        .map_err(|e| Error::new(ErrorKind::Connection, format!("cannot resolve host: {e}")))?
        .collect();
    let mut last: Option<io::Error> = None;
    for sockaddr in resolved {
        match TcpStream::connect_timeout(&sockaddr, budget) {
            Ok(tcp) => {
                tcp.set_nodelay(true)
                    .map_err(|e| from_io(&e, "setting TCP_NODELAY"))?;
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "connect timed out after {} ms (check that the node is up and reachable)",
                    budget.as_millis()
                ),
            )
        }
        Some(e) => Error::new(ErrorKind::Connection, format!("cannot connect: {e}")),
        None => Error::new(
            ErrorKind::Connection,
            "the host name resolves to no address",
        ),
    })
}

/// Runs the TLS handshake to completion within the connect budget, so that a
/// bad certificate fails the connect, not the first request.
fn tls_handshake(
    tls: &TlsClient,
    addr: &NodeAddr,
    mut tcp: TcpStream,
    budget: Duration,
) -> Result<Stream> {
    let name = tls.server_name(&addr.host)?;
    let mut conn = ClientConnection::new(tls.config.clone(), name)
        .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS setup: {e}")))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| {
            let failure = io_failure(&e, "TLS handshake");
            match failure.kind {
                ErrorKind::Timeout => Error::new(
                    ErrorKind::Timeout,
                    format!("TLS handshake timed out after {} ms", budget.as_millis()),
                ),
                ErrorKind::Tls => failure,
                // Closed or reset mid-handshake: most likely not a TLS port.
                _ => Error::new(
                    ErrorKind::Tls,
                    format!(
                        "TLS handshake failed: {} (does the node listen with TLS on this port?)",
                        failure.message
                    ),
                ),
            }
        })?;
    }
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
}
