//! The TCP socket under a connection and the platform calls on it: a connect
//! bounded by a budget that waits in slices, the socket timeouts, and the
//! abort on close. Every `unsafe` of the connection code is in this file.

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
    use std::os::fd::{AsRawFd, FromRawFd};

    use super::wait::SLICE;

    let deadline = Instant::now() + budget;
    // SAFETY: plain socket(2); the descriptor is owned by `tcp` right after.
    let fd = unsafe {
        libc::socket(
            if sockaddr.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            },
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: `fd` is a socket we just opened and own nowhere else.
    let tcp = unsafe { TcpStream::from_raw_fd(fd) };
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sockaddr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `storage` holds a sockaddr of `len` bytes.
    let rc = unsafe {
        libc::connect(
            tcp.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err.into());
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::from(io::ErrorKind::TimedOut).into());
            }
            let mut pfd = libc::pollfd {
                fd: tcp.as_raw_fd(),
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
        if let Some(err) = tcp.take_error()? {
            return Err(err.into());
        }
    }
    tcp.set_nonblocking(false)?;
    Ok(tcp)
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
#[cfg(unix)]
pub(super) fn abort_on_close(tcp: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open (owned by `tcp`), and `optval` points to
    // a `linger` of the length given.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(windows)]
pub(super) fn abort_on_close(tcp: &TcpStream) -> io::Result<()> {
    use std::os::windows::io::AsRawSocket;
    /// Winsock's `struct linger`.
    #[repr(C)]
    struct Linger {
        l_onoff: u16,
        l_linger: u16,
    }
    const SOL_SOCKET: i32 = 0xffff;
    const SO_LINGER: i32 = 0x0080;
    #[link(name = "ws2_32")]
    extern "system" {
        fn setsockopt(s: usize, level: i32, optname: i32, optval: *const u8, optlen: i32) -> i32;
    }
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the socket is open (owned by `tcp`), and `optval` points to a
    // `linger` of the length given.
    let rc = unsafe {
        setsockopt(
            tcp.as_raw_socket() as usize,
            SOL_SOCKET,
            SO_LINGER,
            (&linger as *const Linger).cast(),
            std::mem::size_of::<Linger>() as i32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(any(unix, windows)))]
pub(super) fn abort_on_close(_tcp: &TcpStream) -> io::Result<()> {
    Ok(())
}
