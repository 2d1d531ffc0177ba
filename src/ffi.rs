//! The C ABI: check pointers, catch panics, call the typed Rust API, map the
//! result to a status code and remember the message for `ors_last_error()`.
//! Nothing here knows about Redis.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::bulk::Record;
use crate::cluster::health::NodeFigures;
use crate::error::{Error, Result};
use crate::keys::SessionId;
use crate::lifecycle;
use crate::logging;
use crate::read_all;
use crate::session::{self, Ttl};
use crate::stats::{self, Call};
use crate::status::*;

/// Log level of a line passed to an `ors_log_fn`: an error.
pub const ORS_LOG_ERROR: i32 = 1;
/// Log level: a warning (a failover, a deployment below recommendations).
pub const ORS_LOG_WARN: i32 = 2;
/// Log level: information (the topology found at init).
pub const ORS_LOG_INFO: i32 = 3;
/// Log level: debugging (each retry).
pub const ORS_LOG_DEBUG: i32 = 4;
/// Log level: tracing.
pub const ORS_LOG_TRACE: i32 = 5;

/// Called by `ors_session_scan` once per session id (NUL-terminated, valid
/// during the call only). Return 0 to go on, anything else to stop.
///
/// It runs on the thread that called `ors_session_scan`, with no lock of the
/// library held: it may call any function of the library, `ors_session_put`,
/// `ors_session_get`, `ors_session_del` and `ors_redis_shutdown` included.
#[allow(non_camel_case_types)]
pub type ors_scan_fn =
    Option<unsafe extern "C" fn(session_id: *const c_char, user_data: *mut c_void) -> i32>;

/// Called by `ors_session_restore` once per session: its id
/// (NUL-terminated) and its value (`len` bytes at `data`; `data` is never
/// NULL, even when `len == 0`), both valid during the call only. Return 0 to
/// go on, anything else to stop.
///
/// It runs on the thread that called `ors_session_restore`, with no lock of
/// the library held: it may call any function of the library (put, get, del,
/// even `ors_redis_shutdown`).
#[allow(non_camel_case_types)]
pub type ors_restore_fn = Option<
    unsafe extern "C" fn(
        session_id: *const c_char,
        data: *const u8,
        len: usize,
        user_data: *mut c_void,
    ) -> i32,
>;

/// Receives the library's log lines: `level` is one of `ORS_LOG_ERROR` ..
/// `ORS_LOG_TRACE`; `message` is NUL-terminated and valid during the call only.
///
/// It runs on a thread that called the library, with no lock of the library
/// held, and may call any function of the library (see
/// `ors_redis_set_logger`).
#[allow(non_camel_case_types)]
pub type ors_log_fn =
    Option<unsafe extern "C" fn(level: i32, message: *const c_char, user_data: *mut c_void)>;

/// Counters filled by `ors_redis_get_stats`.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct ors_redis_stats {
    /// Calls of put made since init.
    pub puts: u64,
    /// Calls of get made since init.
    pub gets: u64,
    /// Calls of del made since init.
    pub dels: u64,
    /// Gets that found their session (`ORS_OK`).
    pub hits: u64,
    /// Gets that found none (`ORS_NOT_FOUND`).
    pub misses: u64,
    /// Calls of put, get, del and scan that returned a negative status.
    pub errors: u64,
    /// Attempts repeated after MOVED, ASK, TRYAGAIN, CLUSTERDOWN or a lost connection.
    pub retries: u64,
    /// Slot-map reloads.
    pub topology_refreshes: u64,
    /// Sockets open now.
    pub connections_open: u64,
    /// Threads holding a connection set now.
    pub threads_connected: u64,
    /// Sessions handed to `ors_session_restore`'s callbacks since init.
    pub restored: u64,
    /// Slots listed by restores and scans (their pages).
    pub restore_pages: u64,
    /// Batches of slots a restore or scan read again (after a failover, a
    /// migration or a lost connection).
    pub restore_retries: u64,
    /// Calls that returned `ORS_ERR_UNAVAILABLE` at once because their node
    /// is marked unavailable (`node-fail-fast=true`).
    pub fast_failures: u64,
    /// Times a node was marked unavailable.
    pub node_trips: u64,
}

/// `ors_node_stats.state`: the node answers.
pub const ORS_NODE_WELL: i32 = 0;
/// `ors_node_stats.state`: the node is marked unavailable and being probed.
pub const ORS_NODE_UNAVAILABLE: i32 = 1;

/// One node's health and figures, filled by `ors_redis_get_node_stats`.
/// Latencies are of requests to the node as a call sees them (send to last
/// reply, as OpenTelemetry's `db.client.operation.duration`), in
/// microseconds, of one request in 8 (a uniform sample), from a histogram
/// whose buckets are at most 12.5% wide (a percentile is its bucket's top).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct ors_node_stats {
    /// The node as the cluster announces it, `host:port` (`[v6]:port`),
    /// NUL-terminated; cut short to fit (a host name over 250 bytes).
    pub node: [c_char; 264],
    /// `ORS_NODE_WELL` or `ORS_NODE_UNAVAILABLE`.
    pub state: i32,
    /// 1 when the current slot map has the node as a master, else 0.
    pub is_master: i32,
    /// When the node was marked unavailable, in milliseconds since the Unix
    /// epoch; 0 while it is well.
    pub unavailable_since_ms: u64,
    /// Requests sent to the node since init (retries included).
    pub requests: u64,
    /// Requests that got no usable answer (a timeout, a lost connection).
    pub errors: u64,
    /// Calls refused at once, unsent, while the node was marked unavailable.
    pub fast_failures: u64,
    /// Times the node was marked unavailable.
    pub trips: u64,
    /// Probes sent while it was unavailable.
    pub probes: u64,
    /// The window the percentiles cover, in milliseconds: since the newest
    /// earlier read of these figures at least 60 s ago (or the oldest
    /// one); 0 on the first read, whose percentiles cover all since init.
    pub window_ms: u64,
    /// Answered requests timed in the window (one in 8 of each thread's
    /// requests is timed: a uniform sample).
    pub window_requests: u64,
    /// Half of the window's requests took at most this (microseconds).
    pub latency_p50_us: u64,
    /// 99% of them took at most this.
    pub latency_p99_us: u64,
    /// 99.9% of them took at most this.
    pub latency_p999_us: u64,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NULs cannot be shown through a C string; replace them.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
}

/// Maps a result to its status, recording the message of an error.
fn finish(result: Result<i32>) -> i32 {
    match result {
        Ok(status) => status,
        Err(e) => {
            set_last_error(&e.message);
            e.status()
        }
    }
}

/// Runs an export's body, turning a panic into `ORS_ERR_INTERNAL` and a fresh
/// connection set for this thread (its sockets may be mid-reply). Lines
/// logged inside reach the host's logger after the body has released every
/// lock of the library, before the export returns.
fn panic_boundary(body: impl FnOnce() -> Result<i32>) -> i32 {
    let call = logging::enter_call();
    let status = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => finish(result),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let _ = catch_unwind(lifecycle::reset_this_thread);
            set_last_error(&format!(
                "internal error (a bug in ors-redis, please report): {what}"
            ));
            ORS_ERR_INTERNAL
        }
    };
    drop(call);
    deliver_log_lines();
    status
}

/// Hands this thread's queued log lines to the host's logger; the caller
/// holds no lock of the library. The logger may call the library itself:
/// this call's `ors_last_error()` text is kept across it.
fn deliver_log_lines() {
    if !logging::has_pending() {
        return;
    }
    let saved = LAST_ERROR.try_with(|slot| slot.borrow().clone()).ok();
    let _ = catch_unwind(logging::deliver_pending);
    if let Some(saved) = saved {
        let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = saved);
    }
}

/// A put, get, del or scan: counted in the stats (a scan has no counter of
/// its own in `ors_redis_stats`), and in `errors` when it returns a negative
/// status.
fn data_call(counter: Option<Call>, body: impl FnOnce() -> Result<i32>) -> i32 {
    if let Some(call) = counter {
        stats::bump(call);
    }
    let status = panic_boundary(body);
    if status < 0 {
        stats::bump(Call::Errors);
    }
    status
}

// Pointer helpers. Each turns a C pointer argument into a Rust reference,
// returning ORS_ERR_INVALID_ARGUMENT for NULL instead of asserting. They are
// private and only called with the exports' own arguments, whose validity the
// C contract (include/ors_redis.h) puts on the caller.

/// A NUL-terminated C string argument.
fn c_str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a CStr> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the contract requires a NUL-terminated string
    // that outlives the call.
    Ok(unsafe { CStr::from_ptr(ptr) })
}

/// A config string (init, reconfigure).
fn config_arg<'a>(ptr: *const c_char) -> Result<&'a str> {
    c_str_arg(ptr, "config")?
        .to_str()
        .map_err(|_| Error::config("config: the string is not valid UTF-8"))
}

/// A session id, reading at most 1025 bytes of it.
fn session_id_arg<'a>(ptr: *const c_char) -> Result<SessionId<'a>> {
    if ptr.is_null() {
        return Err(Error::invalid("session_id is NULL"));
    }
    const LIMIT: usize = 1025;
    // SAFETY: non-NULL and NUL-terminated per the contract; strnlen stops at
    // the NUL or after LIMIT bytes, whichever comes first.
    let len = unsafe { libc::strnlen(ptr, LIMIT) };
    if len == LIMIT {
        return Err(Error::invalid("session id is longer than 1024 bytes"));
    }
    // SAFETY: strnlen just read these `len` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    SessionId::parse(bytes).map_err(Error::invalid)
}

/// A `(data, len)` byte buffer argument; `data` may be NULL when `len` is 0.
fn bytes_arg<'a>(data: *const u8, len: usize) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Error::invalid("data is NULL but len is not 0"));
    }
    // SAFETY: non-NULL; the contract requires `len` readable bytes that stay
    // valid for the call.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// An out-parameter.
fn out_arg<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL; the contract requires a writable, aligned pointer
    // that no one else uses during the call.
    Ok(unsafe { &mut *ptr })
}

/// An array of `len` entries for the library to fill (NULL only with
/// `len == 0`), as uninitialised memory: nothing is read from it.
fn out_array_arg<'a, T>(ptr: *mut T, len: usize, what: &str) -> Result<&'a mut [MaybeUninit<T>]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Error::invalid(format!(
            "{what} is NULL with a capacity of {len}"
        )));
    }
    // SAFETY: non-NULL; the contract requires a writable, aligned array of
    // at least `len` entries that no one else uses during the call; as
    // `MaybeUninit`, its contents need not be initialised.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<T>>(), len) })
}

/// Initializes the library: parses `config`, connects to the seed nodes,
/// reads the slot map and checks the deployment (warnings are logged).
///
/// `config`: a NUL-terminated `key=value ...` string (see README); the
/// library copies what it needs, the caller keeps ownership.
///
/// Returns `ORS_OK`; `ORS_ERR_INVALID_ARGUMENT` if `config` is NULL;
/// `ORS_ERR_CONFIG` for a malformed config (unknown, duplicate or missing
/// key, bad value) or a target that is not a Redis Cluster;
/// `ORS_ERR_ALREADY_INITIALIZED`; `ORS_ERR_CONNECTION`, `ORS_ERR_AUTH` or
/// `ORS_ERR_TLS` when no seed node can be used (`ORS_ERR_CONNECTION` also
/// when every seed timed out: init never returns `ORS_ERR_TIMEOUT`);
/// `ORS_ERR_CLUSTER` when the cluster serves no slots. No other status
/// (but `ORS_ERR_INTERNAL`, a bug).
///
/// Time: the seeds are tried at once and the first slot map wins, so init
/// fails within `redis-connect-timeout` + `redis-socket-timeout` when no
/// seed can be used (about one `redis-connect-timeout` when none answers).
/// The masters are then checked at once, within as much again: init returns
/// within 2 x (`redis-connect-timeout` + `redis-socket-timeout`) in all.
///
/// Logs the topology it found, and warns where the deployment is below
/// ORS's recommendations and when `wait-replicas` exceeds the replicas of
/// some master (its puts and dels would all return `ORS_ERR_NOT_DURABLE`).
/// Thread-safe; may be called again after `ors_redis_shutdown`.
///
/// fork: a child may go on calling the library without a new init. After
/// `fork()` the child never uses a socket of its parent: its first call
/// starts on fresh connections, and the parent's are left untouched (the
/// child only closes its copies of their descriptors: no shutdown, no reset,
/// no socket option changed). The child's calls and its `ors_redis_shutdown`
/// never wait for threads of the parent, which do not exist in the child.
/// Not supported: forking from inside a callback of the library, or while
/// another thread is inside `ors_redis_init` or `ors_redis_shutdown`.
#[no_mangle]
pub extern "C" fn ors_redis_init(config: *const c_char) -> i32 {
    panic_boundary(|| {
        let text = config_arg(config)?;
        lifecycle::init(text).map(|()| ORS_OK)
    })
}

/// Applies a changed config to the running library, without a restart: how
/// ORS passes on what its configuration server changed (a rotated password
/// above all).
///
/// `config`: a whole config string, as for `ors_redis_init` (the keys left
/// out take their defaults); the caller keeps ownership. These keys can
/// change: `redis-nodes` (the seeds that slot-map refreshes ask last),
/// `username`, `password`, `tls-cacert`, `tls-cacertdir`, `tls-cert`,
/// `tls-key`, `tls-sni`, `redis-connect-timeout`, `redis-socket-timeout`,
/// `op-timeout`, `default-ttl`, `wait-replicas`, `wait-timeout`,
/// `max-value-bytes` and `log-level`. `cluster-name` and `tls-enabled`
/// cannot (they take `ors_redis_shutdown`, then `ors_redis_init`).
///
/// All or nothing: before anything changes, the new TLS files are read and,
/// when credentials, TLS files or seeds changed, every node of the slot map
/// and every new seed is asked for its slot map with the new settings, all
/// at once within one `redis-connect-timeout` + `redis-socket-timeout`; a
/// node that refuses them fails the reconfigure (ACL users live on each
/// node: one left out of a password rotation stops it here, not in a later
/// call). Nodes that do not answer are logged; at least one must take the
/// new settings.
///
/// Once it returns `ORS_OK`, every new connection uses the new settings;
/// each thread's connections are logged in again with `AUTH` on their next
/// use (a changed password or username), or closed and reopened (changed
/// TLS files, `max-value-bytes`, a password removed); a call in flight
/// finishes on the settings it started with. So a password rotates with no
/// failed call: add the new password on every node (`ACL SETUSER ors
/// >new`), call `ors_redis_reconfigure` with it, then remove the old one
/// (`ACL SETUSER ors <old`).
///
/// Returns `ORS_OK` (also when nothing changed); `ORS_ERR_INVALID_ARGUMENT`
/// if `config` is NULL; `ORS_ERR_NOT_INITIALIZED`; `ORS_ERR_CONFIG` for a
/// malformed config (the key named, as for init), a key that cannot change
/// live (each one named), or a TLS file that cannot be read;
/// `ORS_ERR_AUTH`, `ORS_ERR_TLS` or `ORS_ERR_CONFIG` when a node refuses the
/// new settings (named in `ors_last_error()`); `ORS_ERR_CONNECTION` or
/// `ORS_ERR_CLUSTER` when no node could be asked. After any error nothing
/// changed. Thread-safe; serialised with init and shutdown.
#[no_mangle]
pub extern "C" fn ors_redis_reconfigure(config: *const c_char) -> i32 {
    panic_boundary(|| {
        let text = config_arg(config)?;
        lifecycle::reconfigure(text).map(|()| ORS_OK)
    })
}

/// Stops the library: waits for calls in flight on other threads, then
/// closes every connection of every thread.
///
/// Returns `ORS_OK`, or `ORS_ERR_NOT_INITIALIZED` (and does nothing else)
/// when not initialized. Thread-safe. It may be called from the logger or
/// a scan callback, even on a line logged inside a call on the same thread:
/// callbacks run with no lock held, so it never waits on its own thread.
#[no_mangle]
pub extern "C" fn ors_redis_shutdown() -> i32 {
    panic_boundary(|| lifecycle::shutdown().map(|()| ORS_OK))
}

/// Stores `len` bytes from `data` as the session's value, replacing any
/// previous value and its TTL (one `SET key value EX ttl`).
///
/// `session_id`: NUL-terminated, 1 to 1024 bytes, no control characters, no
/// `{` or `}`. `data`: read only during the call; may be NULL when `len` is
/// 0 (stores an empty value). `ttl_seconds`: 0 means `default-ttl`.
///
/// Returns `ORS_OK`; `ORS_ERR_INVALID_ARGUMENT`; `ORS_ERR_TOO_LARGE`;
/// `ORS_ERR_NOT_INITIALIZED`; `ORS_ERR_NOT_DURABLE` (with `wait-replicas`);
/// `ORS_ERR_CONNECTION`, `ORS_ERR_TIMEOUT`, `ORS_ERR_CLUSTER`,
/// `ORS_ERR_AUTH`, `ORS_ERR_SERVER`. Thread-safe.
///
/// Time: every put, get and del returns within `op-timeout` (plus
/// scheduling noise), whatever the network does: retries, connects, reads
/// and writes share that one deadline, and a reply may take at most
/// `redis-socket-timeout` from the moment its request was sent. When this
/// process cannot open a socket (out of file descriptors, `EMFILE`, and the
/// like) the call fails at once with `ORS_ERR_CONNECTION` naming the cause.
///
/// A failed write never takes effect later: a put or del that returned an
/// error may have been applied before it returned, never after. The library
/// aborts (resets) every connection it gives up on, so no request of a
/// failed call is left in flight to be delivered when the network heals.
/// One case no client can close: a master whose process is frozen (SIGSTOP,
/// a paused VM) while its kernel already holds the request applies it when
/// it resumes, after the call returned (the kernel hands the process the
/// bytes it received before the reset); that is before any request sent
/// after the resume, and lost anyway if the master was failed over meanwhile.
///
/// Measured under blackholed, half-open, reset, trickling and partitioned
/// links and frozen masters (no call longer than `op-timeout` + 250 ms, no
/// zombie write, failover picked up in a median under 100 ms): the figures
/// and how to rerun them are in docs/reliability.md (ctest label `netfault`).
#[no_mangle]
pub extern "C" fn ors_session_put(
    session_id: *const c_char,
    data: *const u8,
    len: usize,
    ttl_seconds: u32,
) -> i32 {
    data_call(Some(Call::Puts), || {
        let id = session_id_arg(session_id)?;
        let value = bytes_arg(data, len)?;
        lifecycle::with_client(|c, calls| {
            let ttl = Ttl::from_request(ttl_seconds, c.config.default_ttl_secs);
            session::put(c, calls, id, value, ttl)
        })
        .map(|()| ORS_OK)
    })
}

/// Reads a session's value.
///
/// On `ORS_OK`, `*data` points to a new buffer of `*len` bytes (non-NULL even
/// when `*len` is 0) that the caller owns and releases with `ors_free`. On
/// `ORS_NOT_FOUND` or an error, `*data` is NULL and `*len` is 0.
///
/// Returns `ORS_OK`, `ORS_NOT_FOUND`; `ORS_ERR_INVALID_ARGUMENT` (NULL
/// `data`/`len`, bad id); `ORS_ERR_NOT_INITIALIZED`; `ORS_ERR_TOO_LARGE` (the
/// stored value is longer than `max-value-bytes`); `ORS_ERR_CONNECTION`,
/// `ORS_ERR_TIMEOUT`, `ORS_ERR_CLUSTER`, `ORS_ERR_AUTH`, `ORS_ERR_SERVER`.
/// Thread-safe. Returns within `op-timeout`, as `ors_session_put` says.
#[no_mangle]
pub extern "C" fn ors_session_get(
    session_id: *const c_char,
    data: *mut *mut u8,
    len: *mut usize,
) -> i32 {
    data_call(Some(Call::Gets), || {
        // On any error the outputs read NULL and 0: clear whichever was given
        // before complaining about the other.
        let mut out_data = out_arg(data, "data");
        let mut out_len = out_arg(len, "len");
        if let Ok(d) = &mut out_data {
            **d = std::ptr::null_mut();
        }
        if let Ok(l) = &mut out_len {
            **l = 0;
        }
        let (out_data, out_len) = (out_data?, out_len?);
        let id = session_id_arg(session_id)?;
        let value = lifecycle::with_client(|c, calls| session::get(c, calls, id))?;
        let Some(value) = value else {
            stats::bump(Call::Misses);
            return Ok(ORS_NOT_FOUND);
        };
        // Read straight into a malloc'd buffer: the caller frees it with ors_free.
        let (buf, buf_len) = value.into_raw();
        *out_data = buf;
        *out_len = buf_len;
        stats::bump(Call::Hits);
        Ok(ORS_OK)
    })
}

/// Deletes a session (`UNLINK`, or `DEL` on servers before Redis 4.0).
///
/// Returns `ORS_OK` when a session was removed, `ORS_NOT_FOUND` when there
/// was none; `ORS_ERR_INVALID_ARGUMENT`; `ORS_ERR_NOT_INITIALIZED`;
/// `ORS_ERR_NOT_DURABLE` (with `wait-replicas`); `ORS_ERR_CONNECTION`,
/// `ORS_ERR_TIMEOUT`, `ORS_ERR_CLUSTER`, `ORS_ERR_AUTH`, `ORS_ERR_SERVER`.
/// Thread-safe. Returns within `op-timeout`; a del that returned an error
/// may have been applied before it returned, never after (see
/// `ors_session_put`, with its one exception).
#[no_mangle]
pub extern "C" fn ors_session_del(session_id: *const c_char) -> i32 {
    data_call(Some(Call::Dels), || {
        let id = session_id_arg(session_id)?;
        let removed = lifecycle::with_client(|c, calls| session::del(c, calls, id))?;
        Ok(if removed { ORS_OK } else { ORS_NOT_FOUND })
    })
}

/// Releases a buffer returned by `ors_session_get`. `ors_free(NULL)` does
/// nothing. Thread-safe (any thread may free any buffer).
#[no_mangle]
pub extern "C" fn ors_free(data: *mut u8) {
    if !data.is_null() {
        // SAFETY: every buffer handed out by ors_session_get comes from
        // libc::malloc, and the caller frees it once.
        unsafe { libc::free(data.cast()) };
    }
}

/// A message about the last call on this thread that returned an error;
/// empty when there was none. Never NULL, never contains a password. The
/// string belongs to the library and stays valid until the next call of the
/// library on the same thread.
#[no_mangle]
pub extern "C" fn ors_last_error() -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|slot| slot.borrow().as_ptr())
            .unwrap_or(c"".as_ptr())
    })
    .unwrap_or(c"".as_ptr())
}

/// The name of a status constant, e.g. `"ORS_NOT_FOUND"`, or
/// `"ORS_UNKNOWN_STATUS"` for any other value. Static storage; never NULL.
#[no_mangle]
pub extern "C" fn ors_status_name(status: i32) -> *const c_char {
    status_name(status).as_ptr().cast()
}

/// The library version, e.g. `"0.1.0"`. Static storage; never NULL.
#[no_mangle]
pub extern "C" fn ors_redis_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Calls `fn` once for each live session of this cluster name whose id
/// starts with `id_prefix` (NULL or `""`: all), over every master (never
/// `KEYS`). Each id is reported once, even while a master fails over or
/// slots migrate. The prefix is literal text (no glob). The masters are read
/// in parallel, as by `ors_session_restore` (values left out): worker threads
/// list each hash slot's keys with `CLUSTER GETKEYSINSLOT`; where a node
/// refuses that command (an ACL rule without `+cluster|getkeysinslot`), the
/// scan pages through each master with `SCAN ... MATCH` instead, and says so
/// once at `warn`. `fn` runs on the calling thread between batches, with no
/// lock of the library held: it may call any function of the library on the
/// same thread (put, get, del, even shutdown); it returns 0 to go on,
/// anything else to stop early. `user_data` is passed through untouched.
/// Log lines of the scan reach the logger between batches.
///
/// Returns `ORS_OK` (also after an early stop); `ORS_ERR_INVALID_ARGUMENT`
/// (`fn` NULL, a prefix no id can have); `ORS_ERR_NOT_INITIALIZED` (also if
/// the library is shut down during the scan, by `fn` or another thread: no
/// id is reported after that, and `ors_last_error()` says so); `ORS_ERR_CONNECTION`,
/// `ORS_ERR_TIMEOUT`, `ORS_ERR_CLUSTER`, `ORS_ERR_AUTH`, `ORS_ERR_SERVER`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ors_session_scan(
    id_prefix: *const c_char,
    r#fn: ors_scan_fn,
    user_data: *mut c_void,
) -> i32 {
    data_call(None, || {
        let callback = r#fn.ok_or_else(|| Error::invalid("fn is NULL"))?;
        let prefix = prefix_arg(id_prefix)?;
        let mut report = |id_nul: &[u8]| call_scan_fn(callback, id_nul, user_data) != 0;
        read_all::ids(prefix, deliver_log_lines, &mut report).map(|()| ORS_OK)
    })
}

/// What a backup ORS calls at takeover: calls `fn` once for each live
/// session of this cluster name whose id starts with `id_prefix` (NULL or
/// `""`: all; literal text, no glob), with its value. Every session that
/// lives through the whole restore is reported exactly once, even while a
/// master fails over or slots migrate; one deleted or expired meanwhile may
/// be missing. The order is unspecified.
///
/// The masters are read in parallel by worker threads of the library, on
/// connections of their own (closed when the restore returns), each
/// listing a batch of hash slots (`CLUSTER GETKEYSINSLOT`) and reading their
/// values pipelined; the sessions reach `fn` on the calling thread, with no
/// lock of the library held, so `fn` may call any function of the library.
/// Memory stays bounded whatever the number of sessions. No single wait is
/// longer than `op-timeout`: a master that does not answer for `op-timeout`
/// (and is not replaced by a failover meanwhile) fails the restore with
/// `ORS_ERR_TIMEOUT` or `ORS_ERR_CONNECTION`, and `ors_last_error()` names
/// the node and the slots not read. Progress is logged at `info` every two
/// seconds; `ors_redis_get_stats` counts `restored`, `restore_pages` and
/// `restore_retries`.
///
/// The ACL user needs `+cluster|getkeysinslot` and `+get` (docs/security.md);
/// without `+cluster|getkeysinslot` the restore reads by `SCAN` pages and
/// one `GET` per session instead, one master at a time: exact, but slower
/// (init warns about it, with the ACL line that adds the permission).
///
/// Returns `ORS_OK` (also after `fn` stopped it early);
/// `ORS_ERR_INVALID_ARGUMENT` (`fn` NULL, a prefix no id can have);
/// `ORS_ERR_NOT_INITIALIZED` (also if the library is shut down during the
/// restore, by `fn` or another thread: nothing is reported after that);
/// `ORS_ERR_TOO_LARGE` (a session longer than `max-value-bytes`, named in
/// `ors_last_error()`); `ORS_ERR_CONNECTION`, `ORS_ERR_TIMEOUT`,
/// `ORS_ERR_CLUSTER`, `ORS_ERR_AUTH`, `ORS_ERR_SERVER`. Thread-safe.
#[no_mangle]
pub extern "C" fn ors_session_restore(
    id_prefix: *const c_char,
    r#fn: ors_restore_fn,
    user_data: *mut c_void,
) -> i32 {
    data_call(None, || {
        let callback = r#fn.ok_or_else(|| Error::invalid("fn is NULL"))?;
        let prefix = prefix_arg(id_prefix)?;
        let mut report = |record: Record<'_>| call_restore_fn(callback, record, user_data) != 0;
        read_all::sessions(prefix, deliver_log_lines, &mut report).map(|()| ORS_OK)
    })
}

/// Runs the host's restore callback on one session.
fn call_restore_fn(
    callback: unsafe extern "C" fn(*const c_char, *const u8, usize, *mut c_void) -> i32,
    record: Record<'_>,
    user_data: *mut c_void,
) -> i32 {
    // SAFETY: the host gave `callback` and `user_data` together; the id is
    // NUL-terminated and the value `len` bytes long (a non-NULL pointer even
    // when empty: a slice's pointer is never NULL), both outliving the call.
    // No lock of ours is held, so the callback may call the library.
    unsafe {
        callback(
            record.id_nul.as_ptr().cast(),
            record.value.as_ptr(),
            record.value.len(),
            user_data,
        )
    }
}

/// A scan's or a restore's `id_prefix`: NULL is `""`, all sessions.
fn prefix_arg<'a>(id_prefix: *const c_char) -> Result<&'a [u8]> {
    if id_prefix.is_null() {
        Ok(&[])
    } else {
        Ok(c_str_arg(id_prefix, "id_prefix")?.to_bytes())
    }
}

/// Runs the host's scan callback on one NUL-terminated id.
fn call_scan_fn(
    callback: unsafe extern "C" fn(*const c_char, *mut c_void) -> i32,
    id: &[u8],
    user_data: *mut c_void,
) -> i32 {
    // SAFETY: the host gave `callback` and `user_data` together; `id` is
    // NUL-terminated and outlives the call. No lock of ours is held, so the
    // callback may call the library.
    unsafe { callback(id.as_ptr().cast(), user_data) }
}

/// Routes the library's log lines to `fn` (with `user_data`), filtered by
/// `log-level` (`warn` until init sets it); `fn == NULL` restores the
/// default, lines to stderr. May be called before init, and at any time.
///
/// `fn` is called on a thread that called the library, never while the
/// library holds a lock: a line logged inside a call is delivered on that
/// thread once the call has released its locks, before it returns (a scan
/// also delivers between pages). So `fn` may call any function of the
/// library, even `ors_redis_shutdown` on a line logged inside a put, or
/// `ors_redis_set_logger`; the lines those nested calls log are delivered
/// after the current one, by the same loop (at most 4096 lines per call; a
/// line says how many were dropped beyond that). The `ors_last_error()` of
/// the call that logged is kept across `fn`. `fn` must not block for long.
///
/// Once this function returns, the previous `fn` is not running on any
/// other thread and will never be called again, so its `user_data` may be
/// freed. Called from inside `fn` itself, it does not wait for that
/// invocation (the caller), which is the one still running.
///
/// Returns `ORS_OK`.
#[no_mangle]
pub extern "C" fn ors_redis_set_logger(r#fn: ors_log_fn, user_data: *mut c_void) -> i32 {
    panic_boundary(|| {
        logging::set_sink(r#fn, user_data);
        Ok(ORS_OK)
    })
}

/// Fills `*out` with the library's counters (call counters count since the
/// last init). Reading them takes no lock that calls wait for.
///
/// Returns `ORS_OK`; `ORS_ERR_INVALID_ARGUMENT` if `out` is NULL;
/// `ORS_ERR_NOT_INITIALIZED`.
#[no_mangle]
pub extern "C" fn ors_redis_get_stats(out: *mut ors_redis_stats) -> i32 {
    panic_boundary(|| {
        let out = out_arg(out, "out")?;
        let refreshes = lifecycle::topology_refreshes()?;
        *out = c_stats(&stats::snapshot(), refreshes);
        Ok(ORS_OK)
    })
}

/// The C struct of a snapshot: each of `stats::Call`'s counters into its field.
fn c_stats(s: &stats::Snapshot, topology_refreshes: u64) -> ors_redis_stats {
    ors_redis_stats {
        puts: s.get(Call::Puts),
        gets: s.get(Call::Gets),
        dels: s.get(Call::Dels),
        hits: s.get(Call::Hits),
        misses: s.get(Call::Misses),
        errors: s.get(Call::Errors),
        retries: s.get(Call::Retries),
        topology_refreshes,
        connections_open: s.connections_open,
        threads_connected: s.threads_connected,
        restored: s.get(Call::Restored),
        restore_pages: s.get(Call::RestorePages),
        restore_retries: s.get(Call::RestoreRetries),
        fast_failures: s.get(Call::FastFailures),
        node_trips: s.get(Call::NodeTrips),
    }
}

/// Fills up to `capacity` entries at `out` with the health and figures of
/// each node the library has met (the masters of the slot map, and nodes
/// met before), and sets `*count` to how many nodes there are (more than
/// `capacity`: call again with a larger array). `out` may be NULL when
/// `capacity` is 0, to ask for the count. Reading them takes no lock that
/// calls wait for.
///
/// Returns `ORS_OK`; `ORS_ERR_INVALID_ARGUMENT` if `count` is NULL, or
/// `out` is NULL with `capacity > 0`; `ORS_ERR_NOT_INITIALIZED`.
#[no_mangle]
pub extern "C" fn ors_redis_get_node_stats(
    out: *mut ors_node_stats,
    capacity: usize,
    count: *mut usize,
) -> i32 {
    panic_boundary(|| {
        let count = out_arg(count, "count")?;
        let out = out_array_arg(out, capacity, "out")?;
        let figures = lifecycle::node_figures()?;
        *count = figures.len();
        for (slot, f) in out.iter_mut().zip(&figures) {
            slot.write(c_node_stats(f));
        }
        Ok(ORS_OK)
    })
}

/// The C struct of one node's figures.
fn c_node_stats(f: &NodeFigures) -> ors_node_stats {
    let mut node = [0 as c_char; 264];
    let name = f.addr.to_string();
    for (dst, &b) in node.iter_mut().zip(name.as_bytes().iter().take(263)) {
        *dst = b as c_char;
    }
    ors_node_stats {
        node,
        state: if f.sick {
            ORS_NODE_UNAVAILABLE
        } else {
            ORS_NODE_WELL
        },
        is_master: i32::from(f.is_master),
        unavailable_since_ms: f.unavailable_since_unix_ms(),
        requests: f.requests,
        errors: f.errors,
        fast_failures: f.fast_failures,
        trips: f.trips,
        probes: f.probes,
        window_ms: f.window_ms,
        window_requests: f.window_requests,
        latency_p50_us: f.p50_us,
        latency_p99_us: f.p99_us,
        latency_p999_us: f.p999_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_counter_lands_in_a_field_of_its_own() {
        // Give each counter a distinct power of two: the struct must hold
        // each exactly once (the other fields are zero).
        let mut snapshot = stats::Snapshot::default();
        for (i, &call) in Call::ALL.iter().enumerate() {
            snapshot.set(call, 1 << i);
        }
        let c = c_stats(&snapshot, 0);
        // The call counters' fields, in the order of `Call::ALL`.
        let calls = [
            c.puts,
            c.gets,
            c.dels,
            c.hits,
            c.misses,
            c.errors,
            c.retries,
            c.restored,
            c.restore_pages,
            c.restore_retries,
            c.fast_failures,
            c.node_trips,
        ];
        let others = [
            c.topology_refreshes,
            c.connections_open,
            c.threads_connected,
        ];
        // These fields are the struct (no field left out of this test).
        assert_eq!(
            std::mem::size_of::<ors_redis_stats>(),
            (calls.len() + others.len()) * 8
        );
        let all = (1u64 << Call::ALL.len()) - 1;
        assert_eq!(calls.iter().chain(&others).fold(0, |acc, f| acc | f), all);
        assert_eq!(calls.iter().chain(&others).sum::<u64>(), all);
        let in_order: Vec<u64> = (0..Call::ALL.len()).map(|i| 1 << i).collect();
        assert_eq!(calls[..], in_order);
    }

    fn last_error() -> String {
        // SAFETY: ors_last_error never returns NULL and the string stays
        // valid until this thread's next call.
        unsafe { CStr::from_ptr(ors_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_internal_with_a_message_and_the_library_goes_on() {
        let status = panic_boundary(|| panic!("boom in a test"));
        assert_eq!(status, ORS_ERR_INTERNAL);
        assert!(last_error().contains("boom in a test"), "{}", last_error());
        assert_eq!(panic_boundary(|| Ok(ORS_OK)), ORS_OK);
    }

    #[test]
    fn errors_become_statuses_and_messages() {
        assert_eq!(ors_session_del(std::ptr::null()), ORS_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("session_id is NULL"));
        assert_eq!(
            ors_session_put(c"a{b".as_ptr(), std::ptr::null(), 0, 0),
            ORS_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("brace"));
        assert_eq!(
            ors_redis_get_stats(std::ptr::null_mut()),
            ORS_ERR_INVALID_ARGUMENT
        );
        let mut count = 7usize;
        let null = std::ptr::null_mut();
        assert_eq!(
            ors_redis_get_node_stats(null, 0, std::ptr::null_mut()),
            ORS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            ors_redis_get_node_stats(null, 4, &mut count),
            ORS_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("out is NULL"), "{}", last_error());
        assert_eq!(
            ors_redis_get_node_stats(null, 0, &mut count),
            ORS_ERR_NOT_INITIALIZED
        );
        assert_eq!(count, 7, "left as it was on an error");
    }
}
