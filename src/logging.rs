//! Log lines: the library logs through `tracing`; this module is the
//! subscriber that filters them by `log-level` and writes them out (to
//! stderr by default).
//!
//! The level is an atomic read on every event, so it can change at each init
//! without rebuilding anything but tracing's callsite cache.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use once_cell::sync::OnceCell;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogLevel;

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);
static INSTALLED: OnceCell<bool> = OnceCell::new();

/// Installs the subscriber (once per process) and sets the level.
pub fn install(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    let ours =
        *INSTALLED.get_or_init(|| tracing::subscriber::set_global_default(LineSubscriber).is_ok());
    if !ours {
        // The host process installed its own tracing subscriber; our events
        // go there and it does its own filtering.
        return;
    }
    tracing::callsite::rebuild_interest_cache();
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
            "ors-redis {} {}: {}{}\n",
            level_name(level),
            event.metadata().target(),
            line.message,
            line.fields
        );
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
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
