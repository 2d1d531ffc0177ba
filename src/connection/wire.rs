//! A transport as the reply reader and the writers see it: every blocking
//! read or write is cut into slices of at most `SLICE` and bounded by a
//! deadline, and between slices a `Late` check may give the connection up
//! (the waiting vocabulary is in wait.rs, below every other layer).
//! A slice that ends without data (EAGAIN) leaves the stream, rustls' state
//! and the reader's partial reply as they were, so waiting simply goes on.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::stream::Transport;
use super::wait::{Late, WaitError, MIN_TIMEOUT, SLICE};
use crate::error::Error;

/// What a connection keeps for its wires from one to the next.
pub(super) struct WaitState {
    /// The SO_RCVTIMEO/SO_SNDTIMEO the socket has now.
    timeout: Duration,
    /// Set when the `Late` check stopped a read made through `Read`, whose
    /// error type cannot carry it. Kept here, not in the `Wire`, so that a
    /// wire has nothing to drop (no unwinding path on every read).
    interrupted: Option<Error>,
}

impl WaitState {
    /// For a socket whose timeout is `timeout` now.
    pub(super) fn new(timeout: Duration) -> Self {
        WaitState {
            timeout,
            interrupted: None,
        }
    }

    /// The `Late` check's error, if it stopped a read made through `Read`.
    pub(super) fn take_interruption(&mut self) -> Option<Error> {
        self.interrupted.take()
    }
}

/// One read's or one write's view of a transport (see the module doc).
pub(super) struct Wire<'w, 'l> {
    stream: &'w mut dyn Transport,
    state: &'w mut WaitState,
    deadline: Instant,
    late: &'w mut Late<'l>,
    /// System calls made so far.
    pub ops: u32,
}

impl<'w, 'l> Wire<'w, 'l> {
    #[inline]
    pub(super) fn new(
        stream: &'w mut dyn Transport,
        state: &'w mut WaitState,
        deadline: Instant,
        late: &'w mut Late<'l>,
    ) -> Self {
        Wire {
            stream,
            state,
            deadline,
            late,
            ops: 0,
        }
    }

    /// Runs `op` (one read or write) until it gives anything but the end of
    /// a slice, the deadline passes or the `Late` check gives up.
    ///
    /// The first call goes without a clock read (the hot path makes one
    /// write and one read): it can overrun the deadline by one slice at
    /// most. Every later one is bounded by what is left. Only that first
    /// call is inlined into the callers; the rest is out of line.
    #[inline(always)]
    pub(super) fn wait<R>(
        &mut self,
        mut op: impl FnMut(&mut dyn Transport) -> io::Result<R>,
    ) -> std::result::Result<R, WaitError> {
        if self.ops == 0 {
            self.ops = 1;
            match op(&mut *self.stream) {
                Ok(r) => return Ok(r),
                Err(e) => self.failed(e)?,
            }
        }
        self.wait_more(op)
    }

    /// `wait` after its first call: each call bounded by what is left.
    #[inline(never)]
    fn wait_more<R>(
        &mut self,
        mut op: impl FnMut(&mut dyn Transport) -> io::Result<R>,
    ) -> std::result::Result<R, WaitError> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::from(io::ErrorKind::TimedOut).into());
            }
            // Only when less is left than the socket waits anyway.
            if left < self.state.timeout {
                self.set_timeout(left)?;
            }
            self.ops += 1;
            match op(&mut *self.stream) {
                Ok(r) => return Ok(r),
                Err(e) => self.failed(e)?,
            }
        }
    }

    /// A call failed with `err`: `Ok` to call again (the end of a slice,
    /// after the `Late` check said to keep waiting, or EINTR), else why the
    /// wait ends.
    #[cold]
    fn failed(&mut self, err: io::Error) -> std::result::Result<(), WaitError> {
        if is_slice_end(&err) {
            (self.late)().map_err(WaitError::Interrupted)?;
            let left = self.deadline.saturating_duration_since(Instant::now());
            let slice = SLICE.min(left);
            if self.state.timeout < slice {
                self.set_timeout(slice)?;
            }
            Ok(())
        } else if err.kind() == io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(WaitError::Io(err))
        }
    }

    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        let timeout = timeout.max(MIN_TIMEOUT);
        self.stream.set_timeouts(timeout)?;
        self.state.timeout = timeout;
        Ok(())
    }
}

/// For the reply reader. An interruption is kept in the `WaitState` (see
/// `take_interruption`); the reader sees an I/O error and stops.
impl Read for Wire<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.wait(|s| s.read(buf)) {
            Ok(n) => Ok(n),
            Err(WaitError::Io(e)) => Err(e),
            Err(WaitError::Interrupted(e)) => {
                self.state.interrupted = Some(e);
                Err(io::ErrorKind::Other.into())
            }
        }
    }
}

/// A socket timeout ran out: EAGAIN on Unix, WSAETIMEDOUT on Windows.
fn is_slice_end(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
