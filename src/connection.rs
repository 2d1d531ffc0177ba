//! One connection to one cluster node, owned by one thread.
//!
//! redis-rs does the socket, the RESP2 parser (and later TLS); we do the
//! handshake (AUTH, so that the server's own refusal text reaches the caller)
//! and keep every read bounded: a connection never waits longer than the
//! caller's remaining deadline.

use std::time::{Duration, Instant};

use redis::io::tcp::TcpSettings;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};

use crate::config::{Config, NodeAddr, Secret};
use crate::error::{classify_reply_error, Error, ErrorKind, Result};
use crate::resp;
use crate::stats;

/// What every connection of this library needs to know to open and
/// authenticate, taken from the config once at init.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub connect_timeout: Duration,
    pub socket_timeout: Duration,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl ConnectParams {
    pub fn from_config(config: &Config) -> Self {
        ConnectParams {
            connect_timeout: config.connect_timeout,
            socket_timeout: config.socket_timeout,
            username: config.username.clone(),
            password: config.password.clone(),
        }
    }
}

/// A connection to one node, with the read timeout it currently has (so that
/// the hot path does not repeat a `setsockopt` that changes nothing).
pub struct NodeConnection {
    conn: redis::Connection,
    read_timeout: Duration,
}

/// The smallest timeout we hand to a socket: zero would mean "block forever".
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

impl NodeConnection {
    /// Opens and authenticates a connection to `addr`, all of it within
    /// `connect-timeout` and before `deadline`.
    pub fn open(addr: &NodeAddr, params: &ConnectParams, deadline: Instant) -> Result<Self> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(ErrorKind::Timeout, "no time left to connect")
                .at_node(&addr.to_string()));
        }
        let budget = params.connect_timeout.min(remaining).max(MIN_TIMEOUT);
        let info = ConnectionAddr::Tcp(addr.host.clone(), addr.port)
            .into_connection_info()
            .map_err(Error::from)?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true))
            // CLIENT SETINFO would go out before AUTH and fail on servers that
            // require a password (and on versions before 7.2).
            .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let started = Instant::now();
        let conn = redis::Client::open(info)
            .and_then(|client| client.get_connection_with_timeout(budget))
            .map_err(|e| connect_error(e, addr, budget))?;
        stats::connection_opened();
        let mut node = NodeConnection {
            conn,
            read_timeout: Duration::ZERO,
        };
        // The handshake shares the connect budget.
        let left = budget.saturating_sub(started.elapsed()).max(MIN_TIMEOUT);
        node.set_timeout(left)?;
        if let Some(password) = &params.password {
            node.authenticate(params.username.as_deref(), password)
                .map_err(|e| e.at_node(&addr.to_string()))?;
        }
        Ok(node)
    }

    /// Sets the read and write timeout for the next request.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        let timeout = timeout.max(MIN_TIMEOUT);
        if timeout != self.read_timeout {
            self.conn
                .set_read_timeout(Some(timeout))
                .map_err(Error::from)?;
            self.conn
                .set_write_timeout(Some(timeout))
                .map_err(Error::from)?;
            self.read_timeout = timeout;
        }
        Ok(())
    }

    /// Sends bytes that hold one or more packed commands, without waiting.
    pub fn send(&mut self, packed: &[u8]) -> Result<()> {
        self.conn.send_packed_command(packed).map_err(Error::from)
    }

    /// Reads one reply. An error reply comes back as `Value::ServerError`.
    pub fn receive(&mut self) -> Result<Value> {
        self.conn.recv_response().map_err(Error::from)
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
            Value::ServerError(err) => Err(reply_error(&err)),
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
            Err(e)
                if username == Some("default") && e.message.contains("wrong number of arguments") =>
            {
                self.query(&[b"AUTH", pass]).map(|_| ())
            }
            Err(e) if e.message.contains("wrong number of arguments") => Err(Error::new(
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

/// Turns an error reply into our error, with its full text.
pub fn reply_error(err: &redis::ServerError) -> Error {
    let code = err.code();
    let full = match err.details() {
        Some(detail) => format!("{code} {detail}"),
        None => code.to_string(),
    };
    classify_reply_error(code, &full)
}

fn connect_error(err: redis::RedisError, addr: &NodeAddr, budget: Duration) -> Error {
    let mut e = Error::from(err);
    if e.kind == ErrorKind::Timeout {
        e.message = format!(
            "connect timed out after {} ms (check that the node is up and reachable)",
            budget.as_millis()
        );
    } else if e.kind == ErrorKind::Connection {
        e.message = format!("cannot connect: {}", e.message);
    }
    e.at_node(&addr.to_string())
}
