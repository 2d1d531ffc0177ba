//! The crate's one error type, the classifiers for socket errors and for
//! Redis error replies, and the single mapping to the C status codes.
//!
//! An error reply's class is decided once, from its text, when the reply is
//! read (`ReplyClass::of`, called by `reply::ServerError::new`); a TLS
//! failure's from `rustls::Error`'s variants (`tls::failure`). Later code
//! matches on `Error::cause`, never on the message.
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
    /// A bad argument from the caller (NULL, a bad session id or name).
    InvalidArgument,
    /// A bad config string, or a target that is not a Redis Cluster.
    Config,
    /// Called before init or after shutdown.
    NotInitialized,
    /// Init called while initialized.
    AlreadyInitialized,
    /// No node reachable, or the connection to one lost.
    Connection,
    /// A local resource ran out (file descriptors, buffers, memory, local
    /// ports): `ORS_ERR_CONNECTION`, but repeating the call's attempts would
    /// only fail the same way for the whole op-timeout.
    LocalResource,
    /// A deadline passed: the call's op-timeout or a socket's.
    Timeout,
    /// Authentication or an ACL refused.
    Auth,
    /// The TLS handshake or the certificate check failed (see `TlsFailure`).
    Tls,
    /// The cluster is down or a slot unserved, after the retries.
    Cluster,
    /// A value longer than `max-value-bytes`.
    TooLarge,
    /// The write applied, but fewer replicas than `wait-replicas`
    /// acknowledged it within `wait-timeout`.
    NotDurable,
    /// Any other error reply from a node.
    Server,
    /// The node is marked unavailable (cluster/health.rs): the call was
    /// not sent.
    Unavailable,
    /// A bug inside the library (a caught panic, a thread that failed).
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
            ErrorKind::Connection | ErrorKind::LocalResource => ORS_ERR_CONNECTION,
            ErrorKind::Timeout => ORS_ERR_TIMEOUT,
            ErrorKind::Auth => ORS_ERR_AUTH,
            ErrorKind::Tls => ORS_ERR_TLS,
            ErrorKind::Cluster => ORS_ERR_CLUSTER,
            ErrorKind::TooLarge => ORS_ERR_TOO_LARGE,
            ErrorKind::NotDurable => ORS_ERR_NOT_DURABLE,
            ErrorKind::Server => ORS_ERR_SERVER,
            ErrorKind::Unavailable => ORS_ERR_UNAVAILABLE,
            ErrorKind::Internal => ORS_ERR_INTERNAL,
        }
    }
}

/// The class of an error reply (`-CODE detail`), finer than its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyClass {
    /// `MOVED <slot> <host:port>`: the slot lives elsewhere now.
    Moved,
    /// `ASK <slot> <host:port>`: one key is being migrated.
    Ask,
    /// `TRYAGAIN`: a multi-key command during a slot's migration.
    TryAgain,
    /// `CLUSTERDOWN`: the cluster is not serving (the slot map may be stale).
    ClusterDown,
    /// `MASTERDOWN`: a replica whose master link is down.
    MasterDown,
    /// `LOADING`: the node is loading its dataset into memory.
    Loading,
    /// `NOAUTH`: authentication required.
    NoAuth,
    /// `WRONGPASS`: a wrong user name or password (Redis 6 on).
    WrongPass,
    /// `NOPERM`: the ACL user may not run this command or touch this key.
    NoPerm,
    /// An AUTH refused in a plain `-ERR` (before Redis 6), or sent to a
    /// server that has no password configured.
    AuthRefused,
    /// `ERR unknown command` (UNLINK before Redis 4.0).
    UnknownCommand,
    /// `ERR wrong number of arguments` (AUTH user pass before Redis 6).
    WrongArity,
    /// `ERR This instance has cluster support disabled`: a standalone node.
    ClusterDisabled,
    /// Any other error reply.
    Other,
}

impl ReplyClass {
    /// The one place where the text of an error reply is looked at.
    pub fn of(text: &str) -> ReplyClass {
        let code = text.split(' ').next().unwrap_or("");
        match code {
            "MOVED" => ReplyClass::Moved,
            "ASK" => ReplyClass::Ask,
            "TRYAGAIN" => ReplyClass::TryAgain,
            "CLUSTERDOWN" => ReplyClass::ClusterDown,
            "MASTERDOWN" => ReplyClass::MasterDown,
            "LOADING" => ReplyClass::Loading,
            "NOAUTH" => ReplyClass::NoAuth,
            "WRONGPASS" => ReplyClass::WrongPass,
            "NOPERM" => ReplyClass::NoPerm,
            "ERR" => {
                let lower = text.to_ascii_lowercase();
                if is_auth_text(&lower) {
                    ReplyClass::AuthRefused
                } else if lower.contains("unknown command") {
                    ReplyClass::UnknownCommand
                } else if lower.contains("wrong number of arguments") {
                    ReplyClass::WrongArity
                } else if lower.contains("cluster support disabled") {
                    ReplyClass::ClusterDisabled
                } else {
                    ReplyClass::Other
                }
            }
            _ => ReplyClass::Other,
        }
    }

    /// A transient cluster state: the router backs off and retries.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ReplyClass::TryAgain
                | ReplyClass::ClusterDown
                | ReplyClass::MasterDown
                | ReplyClass::Loading
        )
    }

    fn kind(self) -> ErrorKind {
        match self {
            ReplyClass::NoAuth
            | ReplyClass::WrongPass
            | ReplyClass::NoPerm
            | ReplyClass::AuthRefused => ErrorKind::Auth,
            ReplyClass::Moved | ReplyClass::Ask => ErrorKind::Cluster,
            c if c.is_transient() => ErrorKind::Cluster,
            _ => ErrorKind::Server,
        }
    }
}

/// Pre-6.0 servers answer AUTH failures with plain `-ERR` texts (`lower`
/// is the reply in lower case).
fn is_auth_text(lower: &str) -> bool {
    lower.contains("invalid password")
        || lower.contains("without any password configured")
        || lower.contains("invalid username-password")
        || lower.contains("authentication required")
}

/// Why a TLS connection failed, from `rustls::Error`'s variants
/// (`tls::failure`), with what the operator should check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// Not signed by a CA we trust (or a bad signature).
    UnknownIssuer,
    /// Expired or not valid yet.
    OutsideValidity,
    /// The certificate does not name the host (or `tls-sni`).
    WrongName,
    /// The server refused the handshake: most likely it wants a client certificate.
    ClientCertificateWanted,
    /// What came back is not TLS.
    NotTls,
    /// Any other TLS error: no advice to add.
    Other,
}

impl TlsFailure {
    /// A hint for the operator, appended to the message.
    pub fn advice(self) -> &'static str {
        match self {
            TlsFailure::UnknownIssuer => {
                " (the node's certificate is not signed by a CA in tls-cacert/tls-cacertdir)"
            }
            TlsFailure::OutsideValidity => {
                " (the node's certificate is outside its validity period)"
            }
            TlsFailure::WrongName => {
                " (the node's certificate does not name this host: fix the certificate or set tls-sni)"
            }
            TlsFailure::ClientCertificateWanted => {
                " (the node may require a client certificate: set tls-cert and tls-key)"
            }
            TlsFailure::NotTls => " (the node does not seem to speak TLS on this port)",
            TlsFailure::Other => "",
        }
    }
}

/// What an error is beyond its kind, when it came from a server reply or
/// from TLS: what later code matches on instead of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// An error reply of this class.
    Reply(ReplyClass),
    /// A TLS failure of this kind.
    Tls(TlsFailure),
    /// Connecting to the node failed (refused, unreachable, timed out):
    /// the node, not one connection, is in trouble (see retry.rs).
    Connect,
    /// A late reply given up on because a newer slot map serves the slot
    /// elsewhere: go there (see retry.rs); the call's own time, not the
    /// node, ends it if none is left.
    SlotMoved,
}

/// An error with its class and a message for `ors_last_error()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The class, which decides the C status code.
    pub kind: ErrorKind,
    /// What failed, where, and what to check; never a password.
    pub message: String,
    /// The reply class or TLS failure behind it, if any.
    pub cause: Option<Cause>,
}

/// The crate's result, with its one error type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with no cause.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// The error of a server's error reply, with its full text.
    pub fn from_reply(class: ReplyClass, text: &str) -> Self {
        Error {
            kind: class.kind(),
            message: format!("Redis replied: {text}"),
            cause: Some(Cause::Reply(class)),
        }
    }

    /// A TLS failure; the message gets the failure's advice appended.
    pub fn tls(failure: TlsFailure, message: impl fmt::Display) -> Self {
        Error {
            kind: ErrorKind::Tls,
            message: format!("{message}{}", failure.advice()),
            cause: Some(Cause::Tls(failure)),
        }
    }

    /// The same error, its cause kept, counted as `kind`: for a caller that
    /// knows what a reply means better than its code says (an `ERR` to AUTH
    /// is an authentication failure).
    pub fn counted_as(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Appends what the operator should check to the message.
    pub fn with_advice(mut self, advice: &str) -> Self {
        self.message.push_str(advice);
        self
    }

    /// Whether this error is a server reply of class `class`.
    pub fn is_reply(&self, class: ReplyClass) -> bool {
        self.cause == Some(Cause::Reply(class))
    }

    /// The same error, marked as a failure to connect (see `Cause::Connect`)
    /// when it is a connection problem or a timeout; others keep their cause.
    pub fn at_connect(mut self) -> Self {
        if self.cause.is_none() && matches!(self.kind, ErrorKind::Connection | ErrorKind::Timeout) {
            self.cause = Some(Cause::Connect);
        }
        self
    }

    /// Whether it is a node's answer (an error reply), read whole: the
    /// connection it came on is still in step.
    pub fn is_answer(&self) -> bool {
        matches!(self.cause, Some(Cause::Reply(_)))
    }

    /// An invalid argument (`ErrorKind::InvalidArgument`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// A config error (`ErrorKind::Config`).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// The C status code of its kind.
    pub fn status(&self) -> i32 {
        self.kind.status()
    }

    /// Prefixes the message with where it happened ("node 127.0.0.1:7000: ...").
    pub fn at_node(mut self, node: &(impl fmt::Display + ?Sized)) -> Self {
        self.message = format!("node {node}: {}", self.message);
        self
    }

    /// Whether the connection it came from was left out of step (a reply
    /// not read to its end: a value over `max-value-bytes`, or an allocation
    /// that failed mid-reply), so that it must be closed although the call
    /// is not repeated.
    pub fn spoils_connection(&self) -> bool {
        matches!(self.kind, ErrorKind::TooLarge | ErrorKind::LocalResource)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Classifies an I/O error of a socket: a timeout is ours to report as
/// `Timeout`; a local shortage (see `local_shortage`) is `LocalResource`;
/// everything else (refused, reset, EOF) is a lost connection.
pub fn from_io(err: &io::Error, what: &str) -> Error {
    if let Some(advice) = local_shortage(err) {
        return Error::new(
            ErrorKind::LocalResource,
            format!("{what}: {err} ({advice})"),
        );
    }
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            Error::new(ErrorKind::Timeout, format!("{what}: timed out"))
        }
        _ => Error::new(ErrorKind::Connection, format!("{what}: {err}")),
    }
}

/// Errors of this host, not of the network or a node: out of file
/// descriptors, socket buffers, memory or local ports. Returns what to check.
pub fn local_shortage(err: &io::Error) -> Option<&'static str> {
    if err.kind() == io::ErrorKind::OutOfMemory {
        return Some("this process is out of memory");
    }
    let code = err.raw_os_error()?;
    #[cfg(unix)]
    let advice = match code {
        libc::EMFILE => Some(
            "this process has no free file descriptor: raise its limit (ulimit -n) or close files",
        ),
        libc::ENFILE => Some("the system's file table is full"),
        libc::ENOBUFS | libc::ENOMEM => Some("the system is out of socket buffers or memory"),
        libc::EADDRNOTAVAIL => Some("no local address or port is free for a new connection"),
        libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT => {
            Some("this host does not support the node's address family")
        }
        _ => None,
    };
    #[cfg(windows)]
    let advice = match code {
        // WSAEMFILE, WSAENOBUFS, WSAEADDRNOTAVAIL, WSAEAFNOSUPPORT
        10024 => Some("this process has no free socket handle"),
        10055 => Some("the system is out of socket buffers"),
        10049 => Some("no local address or port is free for a new connection"),
        10047 => Some("this host does not support the node's address family"),
        _ => None,
    };
    #[cfg(not(any(unix, windows)))]
    let advice = {
        let _ = code;
        None
    };
    advice
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
            (ErrorKind::LocalResource, -5),
            (ErrorKind::Timeout, -6),
            (ErrorKind::Auth, -7),
            (ErrorKind::Tls, -8),
            (ErrorKind::Cluster, -9),
            (ErrorKind::TooLarge, -10),
            (ErrorKind::NotDurable, -11),
            (ErrorKind::Server, -12),
            (ErrorKind::Unavailable, -13),
            (ErrorKind::Internal, -99),
        ];
        for (kind, status) in table {
            assert_eq!(kind.status(), status, "{kind:?}");
        }
    }

    #[test]
    fn reply_errors_are_classified() {
        use ReplyClass::*;
        let cases = [
            ("NOAUTH Authentication required.", NoAuth, ErrorKind::Auth),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                WrongPass,
                ErrorKind::Auth,
            ),
            (
                "NOPERM this user has no permissions to run the 'set' command",
                NoPerm,
                ErrorKind::Auth,
            ),
            (
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                AuthRefused,
                ErrorKind::Auth,
            ),
            ("ERR Client sent AUTH, but no password is set", Other, ErrorKind::Server),
            ("ERR invalid password", AuthRefused, ErrorKind::Auth),
            ("CLUSTERDOWN The cluster is down", ClusterDown, ErrorKind::Cluster),
            ("TRYAGAIN Multiple keys request during rehashing of slot", TryAgain, ErrorKind::Cluster),
            ("LOADING Redis is loading the dataset in memory", Loading, ErrorKind::Cluster),
            ("MASTERDOWN Link with MASTER is down", MasterDown, ErrorKind::Cluster),
            ("MOVED 3999 127.0.0.1:7002", Moved, ErrorKind::Cluster),
            ("ASK 3999 127.0.0.1:7002", Ask, ErrorKind::Cluster),
            ("WRONGTYPE Operation against a key holding the wrong kind of value", Other, ErrorKind::Server),
            ("ERR unknown command 'UNLINK'", UnknownCommand, ErrorKind::Server),
            (
                "ERR unknown command 'UNLINK', with args beginning with: 'ORS:x:{1}' ",
                UnknownCommand,
                ErrorKind::Server,
            ),
            ("ERR wrong number of arguments for 'auth' command", WrongArity, ErrorKind::Server),
            ("ERR This instance has cluster support disabled", ClusterDisabled, ErrorKind::Server),
            ("ERR", Other, ErrorKind::Server),
            ("", Other, ErrorKind::Server),
        ];
        for (text, class, kind) in cases {
            assert_eq!(ReplyClass::of(text), class, "{text}");
            let err = Error::from_reply(class, text);
            assert_eq!(err.kind, kind, "{text}");
            assert!(err.is_reply(class));
            assert!(err.message.contains(text));
        }
        // The class survives the node being named.
        assert!(Error::from_reply(NoPerm, "NOPERM x")
            .at_node("127.0.0.1:7000")
            .is_reply(NoPerm));
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
    }

    #[cfg(unix)]
    #[test]
    fn local_shortages_are_not_retried_and_name_the_cause() {
        for code in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::EADDRNOTAVAIL,
        ] {
            let e = from_io(&io::Error::from_raw_os_error(code), "connect");
            assert_eq!(e.kind, ErrorKind::LocalResource, "{code}");
            assert_eq!(e.status(), ORS_ERR_CONNECTION);
            assert!(!crate::retry::may_repeat(&e));
        }
        let e = from_io(&io::Error::from_raw_os_error(libc::EMFILE), "connect");
        assert!(e.message.contains("ulimit -n"), "{}", e.message);
        assert!(e.message.to_lowercase().contains("too many open files"));
        // A refusal or an unreachable network is the network's, retried.
        for code in [libc::ECONNREFUSED, libc::ENETUNREACH, libc::EHOSTUNREACH] {
            let e = from_io(&io::Error::from_raw_os_error(code), "connect");
            assert_eq!(e.kind, ErrorKind::Connection, "{code}");
        }
    }

    #[test]
    fn a_reply_left_unread_or_a_failed_allocation_spoils_the_connection() {
        assert!(Error::new(ErrorKind::TooLarge, "x").spoils_connection());
        assert!(Error::new(ErrorKind::LocalResource, "x").spoils_connection());
        assert!(!Error::new(ErrorKind::Server, "x").spoils_connection());
        assert!(!Error::new(ErrorKind::NotDurable, "x").spoils_connection());
    }
}
