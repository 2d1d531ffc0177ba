//! The TCP socket under a connection and the platform calls on it: a connect
//! bounded by a budget that waits in slices, the socket timeouts, and the
//! abort on close. Every `unsafe` of the connection code is in this file (the
//! poll of a connect in progress); socket2 makes the rest of the socket calls.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::resolve;
use super::wait::{Late, WaitError, MIN_TIMEOUT};
use crate::config::NodeAddr;
use crate::error::{from_io, local_shortage, Error, ErrorKind, Result};

/// Connects to the first address of `addr` that answers within `budget`
/// (host-name resolution included, see resolve.rs), with TCP_NODELAY set.
/// Several addresses share the budget: each gets an even share of what is
/// left, so that a silent first address leaves time for the others. A
/// `late` check that gives up ends the connect with its own error.
pub(super) fn connect(addr: &NodeAddr, budget: Duration, late: &mut Late<'_>) -> Result<TcpStream> {
    let deadline = Instant::now() + budget;
    let resolved = resolve::resolve(&addr.host, budget, late)?;
    let mut last: Option<io::Error> = None;
    for (i, ip) in resolved.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let share = (left / (resolved.len() - i) as u32).max(MIN_TIMEOUT);
        match connect_sliced(&SocketAddr::new(*ip, addr.port), share, late) {
            Ok(tcp) => {
                tcp.set_nodelay(true)
                    .map_err(|e| from_io(&e, "setting TCP_NODELAY"))?;
                return Ok(tcp);
            }
            Err(WaitError::Interrupted(e)) => return Err(e),
            Err(WaitError::Io(e)) => last = Some(e),
        }
    }
    // The name may have moved (a failover, a replaced node): ask again next time.
    resolve::connect_failed(&addr.host);
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
        Some(e) if local_shortage(&e).is_some() => from_io(&e, "cannot open a connection"),
        Some(e) => Error::new(ErrorKind::Connection, format!("cannot connect: {e}")),
        None => Error::new(
            ErrorKind::Connection,
            "the host name resolves to no address",
        ),
    })
}

/// A TCP connect bounded by `budget` that waits in slices, asking `late`
/// between them (Linux: a non-blocking connect and poll).
#[cfg(target_os = "linux")]
fn connect_sliced(
    sockaddr: &SocketAddr,
    budget: Duration,
    late: &mut Late<'_>,
) -> std::result::Result<TcpStream, WaitError> {
    use std::os::fd::AsRawFd;

    use socket2::{Domain, SockAddr, Socket, Type};

    use super::wait::SLICE;

    let deadline = Instant::now() + budget;
    // socket2 opens it close-on-exec and owns the descriptor.
    let socket = Socket::new(Domain::for_address(*sockaddr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    if let Err(err) = socket.connect(&SockAddr::from(*sockaddr)) {
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err.into());
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::from(io::ErrorKind::TimedOut).into());
            }
            let mut pfd = libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            let wait = SLICE.min(left).as_millis().max(1) as libc::c_int;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, wait) };
            if n > 0 {
                break;
            }
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err.into());
                }
                continue;
            }
            late().map_err(WaitError::Interrupted)?;
        }
        if let Some(err) = socket.take_error()? {
            return Err(err.into());
        }
    }
    socket.set_nonblocking(false)?;
    Ok(socket.into())
}

/// Elsewhere a blocking connect with a timeout: `late` is not asked.
#[cfg(not(target_os = "linux"))]
fn connect_sliced(
    sockaddr: &SocketAddr,
    budget: Duration,
    _late: &mut Late<'_>,
) -> std::result::Result<TcpStream, WaitError> {
    Ok(TcpStream::connect_timeout(sockaddr, budget)?)
}

/// Sets the socket's read and write timeouts (`timeout` is not zero, which
/// would mean "block forever").
pub(super) fn set_timeouts(tcp: &TcpStream, timeout: Duration) -> io::Result<()> {
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))
}

/// Makes the next close of `tcp` an abort: SO_LINGER {on, 0} turns close
/// into a reset (RST) that discards the send queue, instead of a FIN after
/// which the kernel keeps retransmitting queued requests until the peer
/// acknowledges them, however late.
#[cfg(any(unix, windows))]
pub(super) fn abort_on_close(tcp: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO))
}

#[cfg(not(any(unix, windows)))]
pub(super) fn abort_on_close(_tcp: &TcpStream) -> io::Result<()> {
    Ok(())
}
