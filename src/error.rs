//! The crate's one error type, the classifiers for socket errors and for
//! Redis error replies, and the single mapping to the C status codes.
//!
//! Messages say what failed, on which node and what to check. They are built
//! from our own words and from server error texts; a password is never passed
//! into one (see `config::Config` and `connection::authenticate`).

use std::fmt;
use std::io;

use crate::status::*;

/// What went wrong, in the classes the C API distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    Config,
    NotInitialized,
    AlreadyInitialized,
    Connection,
    Timeout,
    Auth,
    Tls,
    Cluster,
    TooLarge,
    NotDurable,
    Server,
    Internal,
}

impl ErrorKind {
    /// The one place where error classes become C status codes.
    pub fn status(self) -> i32 {
        match self {
            ErrorKind::InvalidArgument => ORS_ERR_INVALID_ARGUMENT,
            ErrorKind::Config => ORS_ERR_CONFIG,
            ErrorKind::NotInitialized => ORS_ERR_NOT_INITIALIZED,
            ErrorKind::AlreadyInitialized => ORS_ERR_ALREADY_INITIALIZED,
            ErrorKind::Connection => ORS_ERR_CONNECTION,
            ErrorKind::Timeout => ORS_ERR_TIMEOUT,
            ErrorKind::Auth => ORS_ERR_AUTH,
            ErrorKind::Tls => ORS_ERR_TLS,
            ErrorKind::Cluster => ORS_ERR_CLUSTER,
            ErrorKind::TooLarge => ORS_ERR_TOO_LARGE,
            ErrorKind::NotDurable => ORS_ERR_NOT_DURABLE,
            ErrorKind::Server => ORS_ERR_SERVER,
            ErrorKind::Internal => ORS_ERR_INTERNAL,
        }
    }
}

/// An error with its class and a message for `ors_last_error()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn status(&self) -> i32 {
        self.kind.status()
    }

    /// Prefixes the message with where it happened ("node 127.0.0.1:7000: ...").
    pub fn at_node(mut self, node: &str) -> Self {
        self.message = format!("node {node}: {}", self.message);
        self
    }

    /// Whether the connection it came from was left out of step (a reply
    /// not read to its end: a value over `max-value-bytes`), so that it must
    /// be closed although the call is not repeated.
    pub fn spoils_connection(&self) -> bool {
        self.kind == ErrorKind::TooLarge
    }

    /// Whether a call may succeed if repeated (on a fresh connection or after a
    /// topology refresh), as opposed to a definite answer.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Cluster
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Classifies an I/O error of a socket: a timeout is ours to report as
/// `Timeout`, everything else (refused, reset, EOF) is a lost connection.
pub fn from_io(err: &io::Error, what: &str) -> Error {
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            Error::new(ErrorKind::Timeout, format!("{what}: timed out"))
        }
        _ => Error::new(ErrorKind::Connection, format!("{what}: {err}")),
    }
}

/// What the router should do about an error reply from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// `MOVED <slot> <host:port>`: the slot lives elsewhere now.
    Moved { slot: u16, addr: String },
    /// `ASK <slot> <host:port>`: this one key is being migrated; ask there once.
    Ask { slot: u16, addr: String },
}

/// Parses `MOVED 3999 127.0.0.1:7002` / `ASK 3999 127.0.0.1:7002`. The
/// `code` is the first word of the error reply, `detail` the rest.
pub fn parse_redirect(code: &str, detail: &str) -> Option<Redirect> {
    let mut words = detail.split_ascii_whitespace();
    let slot: u16 = words.next()?.parse().ok()?;
    let addr = words.next()?.to_string();
    if slot as usize >= crate::keys::SLOT_COUNT || addr.is_empty() {
        return None;
    }
    // Redis 7 may send ":7002" when the node does not know its own IP yet;
    // the node that answered is on the same host.
    match code {
        "MOVED" => Some(Redirect::Moved { slot, addr }),
        "ASK" => Some(Redirect::Ask { slot, addr }),
        _ => None,
    }
}

/// The one classifier for error replies (`-CODE detail`) from Redis.
/// `full` is the whole error text as the server sent it.
pub fn classify_reply_error(code: &str, full: &str) -> Error {
    let kind = match code {
        "NOAUTH" | "WRONGPASS" | "NOPERM" => ErrorKind::Auth,
        // Transient cluster states: the router backs off and retries these.
        "CLUSTERDOWN" | "TRYAGAIN" | "MASTERDOWN" | "LOADING" => ErrorKind::Cluster,
        "MOVED" | "ASK" => ErrorKind::Cluster,
        "ERR" if is_auth_text(full) => ErrorKind::Auth,
        _ => ErrorKind::Server,
    };
    Error::new(kind, format!("Redis replied: {full}"))
}

/// Pre-6.0 servers answer AUTH failures with plain `-ERR` texts.
fn is_auth_text(full: &str) -> bool {
    let lower = full.to_ascii_lowercase();
    lower.contains("invalid password")
        || lower.contains("without any password configured")
        || lower.contains("invalid username-password")
        || lower.contains("authentication required")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_its_contract_status() {
        let table = [
            (ErrorKind::InvalidArgument, -1),
            (ErrorKind::Config, -2),
            (ErrorKind::NotInitialized, -3),
            (ErrorKind::AlreadyInitialized, -4),
            (ErrorKind::Connection, -5),
            (ErrorKind::Timeout, -6),
            (ErrorKind::Auth, -7),
            (ErrorKind::Tls, -8),
            (ErrorKind::Cluster, -9),
            (ErrorKind::TooLarge, -10),
            (ErrorKind::NotDurable, -11),
            (ErrorKind::Server, -12),
            (ErrorKind::Internal, -99),
        ];
        for (kind, status) in table {
            assert_eq!(kind.status(), status, "{kind:?}");
        }
    }

    #[test]
    fn reply_errors_are_classified() {
        let cases = [
            ("NOAUTH", "NOAUTH Authentication required.", ErrorKind::Auth),
            (
                "WRONGPASS",
                "WRONGPASS invalid username-password pair or user is disabled.",
                ErrorKind::Auth,
            ),
            (
                "NOPERM",
                "NOPERM this user has no permissions to run the 'set' command",
                ErrorKind::Auth,
            ),
            (
                "ERR",
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ErrorKind::Auth,
            ),
            ("ERR", "ERR Client sent AUTH, but no password is set", ErrorKind::Server),
            ("ERR", "ERR invalid password", ErrorKind::Auth),
            ("CLUSTERDOWN", "CLUSTERDOWN The cluster is down", ErrorKind::Cluster),
            ("TRYAGAIN", "TRYAGAIN Multiple keys request during rehashing of slot", ErrorKind::Cluster),
            ("LOADING", "LOADING Redis is loading the dataset in memory", ErrorKind::Cluster),
            ("MASTERDOWN", "MASTERDOWN Link with MASTER is down", ErrorKind::Cluster),
            ("WRONGTYPE", "WRONGTYPE Operation against a key holding the wrong kind of value", ErrorKind::Server),
            ("ERR", "ERR unknown command 'UNLINK'", ErrorKind::Server),
        ];
        for (code, text, kind) in cases {
            let err = classify_reply_error(code, text);
            assert_eq!(err.kind, kind, "{text}");
            assert!(err.message.contains(text));
        }
    }

    #[test]
    fn redirects_are_parsed() {
        assert_eq!(
            parse_redirect("MOVED", "3999 127.0.0.1:7002"),
            Some(Redirect::Moved {
                slot: 3999,
                addr: "127.0.0.1:7002".into()
            })
        );
        assert_eq!(
            parse_redirect("ASK", "0 [::1]:7000"),
            Some(Redirect::Ask {
                slot: 0,
                addr: "[::1]:7000".into()
            })
        );
        assert_eq!(parse_redirect("MOVED", "16384 127.0.0.1:7002"), None);
        assert_eq!(parse_redirect("MOVED", "12"), None);
        assert_eq!(parse_redirect("MOVED", "x 127.0.0.1:1"), None);
        assert_eq!(parse_redirect("ERR", "1 127.0.0.1:1"), None);
    }

    #[test]
    fn io_errors_split_into_timeout_and_connection() {
        let t = from_io(&io::Error::from(io::ErrorKind::WouldBlock), "read");
        assert_eq!(t.kind, ErrorKind::Timeout);
        let c = from_io(
            &io::Error::from(io::ErrorKind::ConnectionRefused),
            "connect",
        );
        assert_eq!(c.kind, ErrorKind::Connection);
        let r = from_io(&io::Error::from(io::ErrorKind::ConnectionReset), "read");
        assert_eq!(r.kind, ErrorKind::Connection);
        assert!(c.is_retryable() && t.is_retryable());
        assert!(!Error::invalid("x").is_retryable());
    }
}
