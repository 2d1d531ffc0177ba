//! Log lines: the library logs through `tracing`; this module is the
//! subscriber that filters them by `log-level` and hands each line to the
//! callback set with `ors_redis_set_logger`, or writes it to stderr.
//!
//! The level is an atomic read on every event, so it can change at each init
//! without rebuilding anything but tracing's callsite cache.
//!
//! The host's callback may call any export, so it never runs while the
//! library holds a lock: a line logged inside a library call is queued on
//! its thread and delivered when the export has released everything (see
//! `ffi::panic_boundary`), or between pages of a scan. Lines logged by the
//! callback's own library calls join the same queue and the same delivery
//! loop. `set_sink` returns only once no invocation of the previous callback
//! is running, so the host may free its `user_data`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::{c_char, c_void, CString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use once_cell::sync::OnceCell;
use parking_lot::{Condvar, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogLevel;

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);
static INSTALLED: OnceCell<bool> = OnceCell::new();

/// A C callback for log lines: level 1 (error) to 5 (trace), the line, and
/// the caller's pointer.
pub(crate) type LogFn =
    unsafe extern "C" fn(level: i32, message: *const c_char, user_data: *mut c_void);

#[derive(Clone, Copy)]
struct Sink {
    callback: LogFn,
    user_data: usize,
}

/// The host's callback, and which of its invocations are running: a new
/// `set_sink` waits until no invocation of an older sink runs any more.
struct SinkState {
    sink: Option<Sink>,
    /// Bumped by every `set_sink`; an invocation runs under the version it
    /// started with.
    version: u64,
    running: Vec<Running>,
}

/// Invocations of one sink version: `active` in the host's callback, of
/// which `stalled` are inside `set_sink` themselves (they called it from the
/// callback) and so cannot make progress until it returns.
struct Running {
    version: u64,
    active: usize,
    stalled: usize,
}

impl SinkState {
    fn entry(&mut self, version: u64) -> &mut Running {
        let index = match self.running.iter().position(|r| r.version == version) {
            Some(index) => index,
            None => {
                self.running.push(Running {
                    version,
                    active: 0,
                    stalled: 0,
                });
                self.running.len() - 1
            }
        };
        &mut self.running[index]
    }

    fn prune(&mut self) {
        self.running.retain(|r| r.active > 0 || r.stalled > 0);
    }

    /// Whether an invocation of a version older than `version` is running
    /// host code (not stalled in `set_sink`).
    fn older_running(&self, version: u64) -> bool {
        self.running
            .iter()
            .any(|r| r.version < version && r.active > r.stalled)
    }
}

static SINK: Mutex<SinkState> = Mutex::new(SinkState {
    sink: None,
    version: 0,
    running: Vec::new(),
});
static SINK_CHANGED: Condvar = Condvar::new();

/// Lines queued on one thread at most; more are counted and dropped.
const MAX_PENDING: usize = 1024;
/// Lines delivered by one drain at most: a callback whose library calls log
/// a line each time would otherwise loop forever.
const MAX_DELIVERED: usize = 4096;

/// A line waiting for delivery.
struct Pending {
    level: u8,
    text: String,
}

/// This thread's side of logging.
struct Local {
    /// Library calls in progress on this thread (nested ones come from the
    /// host's callbacks).
    depth: Cell<u32>,
    /// Inside `deliver_pending`: lines logged now wait for its loop.
    delivering: Cell<bool>,
    /// The sink version whose callback this thread is running, if any.
    invocation: Cell<Option<u64>>,
    pending: RefCell<VecDeque<Pending>>,
    dropped: Cell<u64>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            depth: Cell::new(0),
            delivering: Cell::new(false),
            invocation: Cell::new(None),
            pending: RefCell::new(VecDeque::new()),
            dropped: Cell::new(0),
        }
    };
}

/// Installs the subscriber (once per process) and sets the level.
pub fn install(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    ensure_installed();
}

/// Routes lines to `callback` (with `user_data`), or back to stderr for None.
///
/// Returns once no invocation of an older callback is running on another
/// thread, so the host may free the old `user_data`. An invocation on this
/// thread (the callback itself called us) is not waited for, nor one on a
/// thread that is itself inside this function from its callback: waiting
/// for those would never end.
pub(crate) fn set_sink(callback: Option<LogFn>, user_data: *mut c_void) {
    let mine = LOCAL.try_with(|l| l.invocation.get()).ok().flatten();
    let mut state = SINK.lock();
    state.sink = callback.map(|callback| Sink {
        callback,
        user_data: user_data as usize,
    });
    state.version += 1;
    let version = state.version;
    if let Some(v) = mine {
        state.entry(v).stalled += 1;
        SINK_CHANGED.notify_all();
    }
    while state.older_running(version) {
        SINK_CHANGED.wait(&mut state);
    }
    if let Some(v) = mine {
        state.entry(v).stalled -= 1;
        state.prune();
    }
    drop(state);
    ensure_installed();
}

/// Marks this thread as inside a library call until the guard drops: lines
/// logged meanwhile are queued, since the call may hold locks, and
/// delivered by `deliver_pending` once it holds none.
pub(crate) struct CallGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

pub(crate) fn enter_call() -> CallGuard {
    let _ = LOCAL.try_with(|l| l.depth.set(l.depth.get() + 1));
    CallGuard {
        _not_send: std::marker::PhantomData,
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|l| l.depth.set(l.depth.get().saturating_sub(1)));
    }
}

/// Whether lines wait for `deliver_pending` on this thread.
pub(crate) fn has_pending() -> bool {
    LOCAL
        .try_with(|l| {
            !l.delivering.get() && (!l.pending.borrow().is_empty() || l.dropped.get() > 0)
        })
        .unwrap_or(false)
}

/// Hands this thread's queued lines to the sink. The caller holds no lock
/// of the library. Lines that the callback's own library calls log are
/// delivered by this loop too (not by a nested one), up to `MAX_DELIVERED`.
pub(crate) fn deliver_pending() {
    let started = LOCAL.try_with(|l| !l.delivering.replace(true));
    if started != Ok(true) {
        return;
    }
    let mut delivered = 0;
    loop {
        let next = LOCAL.with(|l| {
            let mut pending = l.pending.borrow_mut();
            if delivered >= MAX_DELIVERED && !pending.is_empty() {
                l.dropped.set(l.dropped.get() + pending.len() as u64);
                pending.clear();
            }
            pending.pop_front().or_else(|| {
                let dropped = l.dropped.replace(0);
                (dropped > 0).then(|| Pending {
                    level: 2,
                    text: format!(
                        "ors-redis WARN ors_redis::logging: {dropped} log lines dropped (too many \
                         logged during one call or by the log callback's own calls)"
                    ),
                })
            })
        });
        let Some(line) = next else { break };
        deliver(line.level, line.text);
        delivered += 1;
    }
    LOCAL.with(|l| l.delivering.set(false));
}

/// Lines logged on a helper thread of the library, to be delivered on the
/// thread that called the library (the host's callback only ever runs on
/// threads that call the library).
pub(crate) struct Captured(Vec<Pending>);

impl Captured {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Runs `f` with this thread's lines kept back, and returns them.
pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (T, Captured) {
    let guard = enter_call();
    let out = f();
    drop(guard);
    let lines = LOCAL
        .try_with(|l| {
            l.dropped.set(0);
            l.pending.borrow_mut().drain(..).collect()
        })
        .unwrap_or_default();
    (out, Captured(lines))
}

/// Queues lines captured on a helper thread as if logged here.
pub(crate) fn requeue(captured: Captured) {
    for line in captured.0 {
        enqueue(line);
    }
}

/// Queues a line; delivers at once when this thread is not inside a call.
fn enqueue(line: Pending) {
    let mut line = Some(line);
    let queued = LOCAL.try_with(|l| {
        let mut pending = l.pending.borrow_mut();
        if pending.len() >= MAX_PENDING {
            l.dropped.set(l.dropped.get() + 1);
        } else if let Some(line) = line.take() {
            pending.push_back(line);
        }
        l.depth.get() == 0
    });
    match (queued, line) {
        (Ok(true), _) => deliver_pending(),
        (Ok(false), _) => {}
        // This thread is exiting and its thread-locals are gone: no call of
        // ours is in progress here, so deliver now.
        (Err(_), Some(line)) => deliver(line.level, line.text),
        (Err(_), None) => {}
    }
}

/// Hands one line to the host's callback, or to stderr.
fn deliver(level: u8, text: String) {
    let sink = {
        let mut state = SINK.lock();
        match state.sink {
            Some(sink) => {
                let version = state.version;
                state.entry(version).active += 1;
                Some((sink, version))
            }
            None => None,
        }
    };
    let Some((sink, version)) = sink else {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
        return;
    };
    let text = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
    let outer = LOCAL
        .try_with(|l| l.invocation.replace(Some(version)))
        .ok()
        .flatten();
    // SAFETY: the callback and its user_data were given together by the host
    // through ors_redis_set_logger, which documents that the callback may be
    // called from any thread that calls the library; set_sink does not return
    // while this invocation runs (unless it is this very invocation calling it).
    unsafe { (sink.callback)(level as i32, text.as_ptr(), sink.user_data as *mut c_void) };
    let _ = LOCAL.try_with(|l| l.invocation.set(outer));
    let mut state = SINK.lock();
    state.entry(version).active -= 1;
    state.prune();
    SINK_CHANGED.notify_all();
}

fn ensure_installed() {
    let ours =
        *INSTALLED.get_or_init(|| tracing::subscriber::set_global_default(LineSubscriber).is_ok());
    if ours {
        tracing::callsite::rebuild_interest_cache();
    }
    // Otherwise the host installed its own tracing subscriber: our events go
    // there and it does its own filtering.
}

/// The number ORS sees for a level: `ORS_LOG_ERROR` 1 ... `ORS_LOG_TRACE` 5.
fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn level_name(number: u8) -> &'static str {
    match number {
        1 => "ERROR",
        2 => "WARN",
        3 => "INFO",
        4 => "DEBUG",
        _ => "TRACE",
    }
}

struct LineSubscriber;

impl Subscriber for LineSubscriber {
    fn register_callsite(&self, _meta: &'static Metadata<'static>) -> Interest {
        // The level can change at runtime: ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        level_number(meta.level()) <= LEVEL.load(Ordering::Relaxed)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = level_number(event.metadata().level());
        let mut line = Line::default();
        event.record(&mut line);
        let text = format!(
            "ors-redis {} {}: {}{}",
            level_name(level),
            event.metadata().target(),
            line.message,
            line.fields
        );
        enqueue(Pending { level, text });
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// An event's message followed by its fields as ` key=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}
