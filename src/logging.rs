//! Log lines: the library logs through `tracing`; this module is the
//! subscriber that filters them by `log-level` and hands each line to the
//! callback set with `ors_redis_set_logger`, or writes it to stderr.
//!
//! The level is an atomic read on every event, so it can change at each init
//! without rebuilding anything but tracing's callsite cache.

use std::ffi::{c_char, c_void, CString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use once_cell::sync::OnceCell;
use parking_lot::RwLock;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogLevel;

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);
static INSTALLED: OnceCell<bool> = OnceCell::new();

/// A C callback for log lines: level 1 (error) to 5 (trace), the line, and
/// the caller's pointer.
pub type LogFn = unsafe extern "C" fn(level: i32, message: *const c_char, user_data: *mut c_void);

#[derive(Clone, Copy)]
struct Sink {
    callback: LogFn,
    user_data: usize,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Installs the subscriber (once per process) and sets the level.
pub fn install(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    ensure_installed();
}

/// Routes lines to `callback` (with `user_data`), or back to stderr for None.
pub fn set_sink(callback: Option<LogFn>, user_data: *mut c_void) {
    *SINK.write() = callback.map(|callback| Sink {
        callback,
        user_data: user_data as usize,
    });
    ensure_installed();
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
        // Copied out so that the callback runs without our lock held (it may
        // call ors_redis_set_logger itself).
        let sink = *SINK.read();
        match sink {
            Some(sink) => {
                let text = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
                // SAFETY: the callback and its user_data were given together
                // by the host through ors_redis_set_logger, which documents
                // that the callback may be called from any calling thread.
                unsafe {
                    (sink.callback)(level as i32, text.as_ptr(), sink.user_data as *mut c_void)
                };
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
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
