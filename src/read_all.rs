//! Every session of this cluster name, for `ors_session_scan` (the ids)
//! and `ors_session_restore` (ids and values): the bulk read (`bulk/`,
//! worker threads listing every slot), or, where the nodes refuse to list
//! slots (an ACL rule from before the restore, without
//! `+cluster|getkeysinslot`), `SCAN` pages one master after another
//! (`scan.rs`), said once at `warn`. Which of the two runs is decided here;
//! ffi.rs only checks the C arguments and calls the host.
//!
//! Every session reaches `report` on the calling thread, between batches,
//! with no lock of the library held (`true` from it stops the read); the
//! lines logged so far go to `deliver_logs` before the sessions after them
//! (ffi.rs delivers them to the host's logger).

use crate::bulk::{self, BulkRead, Owner, Record, Want};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::SessionId;
use crate::lifecycle;
use crate::live;
use crate::scan::{self, Scan};
use crate::session;
use crate::stats::{self, Call};

/// The ids of every session whose id starts with `prefix` (each
/// NUL-terminated for C), for `ors_session_scan`.
pub(crate) fn ids(
    prefix: &[u8],
    deliver_logs: fn(),
    report: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<()> {
    let client = live::live_client()?;
    let generation = client.generation;
    let owner = Owner::Library { generation };
    let mut read = BulkRead::start(client, prefix, Want::Ids, owner)?;
    let mut each = |record: Record<'_>| report(record.id_nul);
    match drive(&mut read, generation, "scan", deliver_logs, &mut each) {
        Err(e) if read.listing_refused() && read.sessions() == 0 => {
            drop(read);
            scan_by_pages(prefix, &e, deliver_logs, report)
        }
        other => other,
    }
}

/// Every session whose id starts with `prefix`, with its value, for
/// `ors_session_restore`; each one reported counts in `restored`.
pub(crate) fn sessions(
    prefix: &[u8],
    deliver_logs: fn(),
    report: &mut dyn FnMut(Record<'_>) -> bool,
) -> Result<()> {
    let client = live::live_client()?;
    let generation = client.generation;
    let owner = Owner::Library { generation };
    let mut read = BulkRead::start(client, prefix, Want::Values, owner)?;
    let mut each = |record: Record<'_>| {
        stats::bump(Call::Restored);
        report(record)
    };
    match drive(&mut read, generation, "restore", deliver_logs, &mut each) {
        Err(e) if read.listing_refused() && read.sessions() == 0 => {
            drop(read);
            restore_by_pages(prefix, &e, deliver_logs, &mut each)
        }
        other => other,
    }
}

/// The scan where nodes refuse to list slots (`refused`): `SCAN` pages,
/// one master after another.
fn scan_by_pages(
    prefix: &[u8],
    refused: &Error,
    deliver_logs: fn(),
    report: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<()> {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(error = %refused, "ors_session_scan pages with SCAN instead (one master at a time; add +cluster|getkeysinslot and +exists to the ACL rule to list slots)");
    }
    let mut scan = lifecycle::with_client(|c, _| Scan::new(c, prefix))?;
    let mut id = Vec::new();
    loop {
        let page = lifecycle::with_client(|c, calls| scan.next_page(c, &mut calls.routes))
            .map_err(scan::interrupted)?;
        let Some(page) = page else {
            return Ok(());
        };
        // No lock is held between pages: lines logged so far go out.
        deliver_logs();
        for session_id in page {
            id.clear();
            id.extend_from_slice(&session_id);
            id.push(0);
            if report(&id) {
                return Ok(());
            }
            // The callback may have shut the library down.
            scan.check_live()?;
        }
    }
}

/// Hands every session of a bulk read to `report` (true: stop), on this
/// thread between batches, with no lock of the library held.
fn drive(
    read: &mut BulkRead,
    generation: u64,
    what: &str,
    deliver_logs: fn(),
    report: &mut dyn FnMut(Record<'_>) -> bool,
) -> Result<()> {
    let interrupted = |e: Error| bulk::interrupted(e, what);
    let shut_down = || interrupted(Error::new(ErrorKind::NotInitialized, "shut down"));
    loop {
        let Some(batch) = read.next_batch().map_err(interrupted)? else {
            return Ok(());
        };
        if batch.is_empty() {
            // Only log lines: they go out with the next sessions, or when
            // the call returns.
            read.recycle(batch);
            continue;
        }
        // No lock is held between batches: lines logged so far go out
        // before the host's callback sees the batch's sessions.
        deliver_logs();
        // The logger may have shut the library down.
        if !live::is_live(generation) {
            return Err(shut_down());
        }
        for record in batch.records() {
            if report(record) {
                return Ok(());
            }
            // The callback may have shut the library down.
            if !live::is_live(generation) {
                return Err(shut_down());
            }
        }
        read.recycle(batch);
    }
}
/// The restore where nodes refuse to list slots (`refused`: an ACL rule
/// from before the restore, without `+cluster|getkeysinslot`): the ids by
/// `SCAN` pages, one master after another (`Scan`: every session that
/// lives through it once, the pass repeated when the slot map changes),
/// and each value read by its own `GET` through the router. The cluster is
/// scanned once per range of slots (`scan::slot_passes`), so the ids
/// remembered stay bounded. Exact, but a round trip per session, one
/// master at a time: said once.
fn restore_by_pages(
    prefix: &[u8],
    refused: &Error,
    deliver_logs: fn(),
    report: &mut dyn FnMut(Record<'_>) -> bool,
) -> Result<()> {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let keys = lifecycle::with_client(|c, calls| Ok(scan::keys_on_masters(c, &mut calls.routes)))?;
    let passes = scan::slot_passes(keys);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(error = %refused, passes = passes.len(), "ors_session_restore reads by SCAN pages and one GET per session instead, \
             one master at a time (slower: the ACL rule lacks +cluster|getkeysinslot, which lists a slot's keys \
             in one round trip; add it with ACL SETUSER <user> +cluster|getkeysinslot)");
    }
    for slots in passes {
        let mut scan = lifecycle::with_client(|c, _| Scan::of_slots(c, prefix, slots))?;
        if restore_pass(&mut scan, deliver_logs, report)? {
            break;
        }
    }
    Ok(())
}

/// One pass of `restore_by_pages`; true when `report` asked to stop.
fn restore_pass(
    scan: &mut Scan,
    deliver_logs: fn(),
    report: &mut dyn FnMut(Record<'_>) -> bool,
) -> Result<bool> {
    let mut id = Vec::new();
    loop {
        let page = lifecycle::with_client(|c, calls| scan.next_page(c, &mut calls.routes))
            .map_err(scan::interrupted)?;
        let Some(page) = page else {
            return Ok(false);
        };
        deliver_logs();
        for session_id in page {
            // A key no ORS session id names is not one of ours: left out.
            let Ok(session) = SessionId::parse(&session_id) else {
                continue;
            };
            let value = lifecycle::with_client(|c, calls| session::get(c, calls, session))
                .map_err(|e| bulk::interrupted(e, "restore"))?;
            // Deleted or expired since the SCAN saw it: not living through.
            let Some(value) = value else { continue };
            id.clear();
            id.extend_from_slice(&session_id);
            id.push(0);
            let record = Record {
                id: &session_id,
                id_nul: &id,
                value: value.as_slice(),
                pttl_ms: None,
            };
            if report(record) {
                return Ok(true);
            }
            scan.check_live()?;
        }
    }
}
