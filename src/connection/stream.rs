//! What a connection reads and writes: a `Transport`, which is plain TCP or
//! rustls TLS over TCP (and, in unit tests, a scripted node). Here too: the
//! TLS handshake, and how the transport's I/O errors are classified.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rustls::{ClientConnection, StreamOwned};

use super::socket;
use crate::config::NodeAddr;
use crate::error::{from_io, Error, ErrorKind, Result, TlsFailure};
use crate::tls::{self, TlsClient};

/// A byte stream to one node, with the socket controls a connection needs.
/// `NodeConnection` holds it as `Box<dyn Transport>`, so a scripted node in
/// tests is one more implementation, not one more case of every call.
pub(super) trait Transport: Read + Write + Send {
    /// Sets the read and write timeouts of the socket underneath.
    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()>;

    /// Makes the next close an abort (a reset that discards the send queue).
    fn abort_on_close(&self) -> io::Result<()>;

    /// Whether written bytes are framed into records (TLS). Then a command's
    /// parts are joined before they are written, so that they go out as one
    /// record, and `flush` sends what the framing holds back. Otherwise
    /// `write_vectored` writes all parts at once and `flush` has nothing to do.
    fn framed(&self) -> bool;
}

impl Transport for TcpStream {
    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()> {
        socket::set_timeouts(self, timeout)
    }

    fn abort_on_close(&self) -> io::Result<()> {
        socket::abort_on_close(self)
    }

    fn framed(&self) -> bool {
        false
    }
}

/// TLS over TCP: rustls's client state and the socket it owns.
type TlsStream = StreamOwned<ClientConnection, TcpStream>;

impl Transport for TlsStream {
    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()> {
        socket::set_timeouts(&self.sock, timeout)
    }

    fn abort_on_close(&self) -> io::Result<()> {
        socket::abort_on_close(&self.sock)
    }

    fn framed(&self) -> bool {
        true
    }
}

/// Runs the TLS handshake to completion within the connect budget, so that a
/// bad certificate fails the connect, not the first request.
pub(super) fn tls_handshake(
    tls: &TlsClient,
    addr: &NodeAddr,
    mut tcp: TcpStream,
    budget: Duration,
) -> Result<Box<dyn Transport>> {
    let name = tls.server_name(&addr.host)?;
    let mut conn = ClientConnection::new(tls.config.clone(), name).map_err(|e| tls::failure(&e))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| handshake_failure(&e, budget))?;
    }
    Ok(Box::new(StreamOwned::new(conn, tcp)))
}

/// A handshake's I/O error: rustls's own are classified by `tls::failure`
/// (in `io_failure`), a local shortage (EMFILE, memory) stays what it is,
/// and a connection closed or reset mid-handshake most likely reached a
/// port that does not speak TLS.
fn handshake_failure(err: &io::Error, budget: Duration) -> Error {
    let failure = io_failure(err, "TLS handshake");
    match failure.kind {
        ErrorKind::Timeout => Error::new(
            ErrorKind::Timeout,
            format!("TLS handshake timed out after {} ms", budget.as_millis()),
        ),
        ErrorKind::Connection => Error::tls(
            TlsFailure::NotTls,
            format_args!("TLS handshake failed: {}", failure.message),
        ),
        _ => failure,
    }
}

/// Classifies a transport's I/O error; a TLS alert or certificate problem
/// inside it (rustls reports those as I/O errors) is `ORS_ERR_TLS`.
pub(super) fn io_failure(err: &io::Error, what: &str) -> Error {
    if let Some(tls_err) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return tls::failure(tls_err);
    }
    from_io(err, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_handshake_is_classified_once() {
        use crate::error::Cause;
        let budget = Duration::from_millis(1500);
        let failed = |e: io::Error| handshake_failure(&e, budget);
        // Closed or reset by the peer: not a TLS port, as a TLS failure class.
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::UnexpectedEof] {
            let e = failed(io::Error::from(kind));
            assert_eq!(e.kind, ErrorKind::Tls, "{kind:?}");
            assert_eq!(e.cause, Some(Cause::Tls(TlsFailure::NotTls)), "{kind:?}");
            assert!(e.message.contains("speak TLS"), "{}", e.message);
        }
        // A shortage of this host is not the node's TLS.
        #[cfg(unix)]
        {
            let e = failed(io::Error::from_raw_os_error(libc::EMFILE));
            assert_eq!(e.kind, ErrorKind::LocalResource);
            assert!(e.message.contains("ulimit -n"), "{}", e.message);
        }
        let e = failed(io::Error::from(io::ErrorKind::OutOfMemory));
        assert_eq!(e.kind, ErrorKind::LocalResource);
        // rustls's errors keep their own class.
        let e = failed(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        ));
        assert_eq!(e.cause, Some(Cause::Tls(TlsFailure::OutsideValidity)));
        let e = failed(io::Error::from(io::ErrorKind::WouldBlock));
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("1500 ms"), "{}", e.message);
    }
}
