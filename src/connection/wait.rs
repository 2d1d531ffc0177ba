//! The vocabulary of a bounded wait, at the bottom of the connection layers:
//! how long one blocking call waits (`SLICE`), the smallest socket timeout,
//! the `Late` check asked between slices, and why a wait ends without its
//! result. Name resolution, the TCP connect and the reply-side `Wire` all
//! wait in these terms; this file imports none of them, so the layers above
//! run one way (resolve -> socket -> stream -> wire).

use std::io;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long one blocking read or write waits before the clock and the slot
/// map are looked at again. A healthy node answers in well under a
/// millisecond, so a slice only runs out while a reply is late; the socket
/// keeps this timeout from call to call (no `setsockopt` on the hot path).
pub(crate) const SLICE: Duration = Duration::from_millis(25);

/// The smallest timeout we hand to a socket: zero would mean "block forever".
pub(super) const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Asked between slices while a reply (or a write) is late: `Ok` to keep
/// waiting, an error to give this connection up (`ConnectionSet::exchange`
/// then aborts it). The check is a request's `Watch` (cluster/budget.rs):
/// e.g. a newer slot map serves the slot elsewhere, or a bulk read stopped.
pub(crate) type Late<'a> = dyn FnMut() -> Result<()> + 'a;

/// Keeps waiting: for exchanges that have nothing else to look at.
pub(super) fn keep_waiting() -> Result<()> {
    Ok(())
}

/// Why a wait ended without its result.
#[derive(Debug)]
pub(super) enum WaitError {
    /// The transport failed, or the deadline passed (`TimedOut`).
    Io(io::Error),
    /// The `Late` check gave the connection up: its error, as it was.
    Interrupted(Error),
}

impl From<io::Error> for WaitError {
    fn from(err: io::Error) -> Self {
        WaitError::Io(err)
    }
}
