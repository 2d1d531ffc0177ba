//! The output: aligned text tables for people, one JSON envelope for
//! scripts, and the writes themselves, which end the command quietly when
//! stdout is a closed pipe (`| head -1`).

use std::fmt::Write as _;
use std::io::{ErrorKind as IoErrorKind, Write};

use serde::Serialize;

use ors_redis::operator::Error;

/// The JSON document's shape version: bumped when a field changes meaning
/// or goes away (new fields do not bump it). docs/operators.md has the
/// field reference.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Every command's JSON: `{"schema_version", "command", "ok", "result"}`,
/// plus `error` when the command could not do its work.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    schema_version: u32,
    command: &'a str,
    ok: bool,
    result: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorOut<'a>>,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    kind: String,
    message: &'a str,
}

/// Prints `result` in the envelope.
pub(crate) fn json<T: Serialize>(command: &str, ok: bool, result: &T) {
    emit_json(&Envelope {
        schema_version: SCHEMA_VERSION,
        command,
        ok,
        result: Some(result),
        error: None,
    });
}

/// The envelope of a command that ended in an error (`result` null).
pub(crate) fn json_error(command: &str, error: &Error) {
    emit_json(&Envelope::<()> {
        schema_version: SCHEMA_VERSION,
        command,
        ok: false,
        result: None,
        error: Some(ErrorOut {
            kind: snake_case(&format!("{:?}", error.kind)),
            message: &error.message,
        }),
    });
}

/// `InvalidArgument` -> `invalid_argument`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn emit_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            print(&text);
        }
        Err(e) => note(&format!("cannot write JSON: {e}")),
    }
}

/// Text on stdout.
pub(crate) fn print(text: &str) {
    write_bytes(text.as_bytes());
}

/// Bytes on stdout. A closed pipe ends the process at once and quietly
/// with 141 (128 + SIGPIPE, what a shell shows for a program killed by
/// it); any other write error with 1.
pub(crate) fn write_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|_| out.flush()) {
        stdout_failed(&e);
    }
}

pub(crate) fn flush() {
    if let Err(e) = std::io::stdout().lock().flush() {
        stdout_failed(&e);
    }
}

/// Ends the command after a failed write to stdout: quietly with 141 on a
/// closed pipe, else with 1 and the reason.
pub(crate) fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == IoErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    let _ = writeln!(std::io::stderr(), "ors-redis: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// `ors-redis: <text>` on stderr; a closed stderr is no reason to stop.
pub(crate) fn note(text: &str) {
    note_raw(&format!("ors-redis: {text}\n"));
}

pub(crate) fn note_raw(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Columns padded to their widest cell, two spaces apart; the last column
/// is not padded (it holds the long details).
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Self {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// A table without a header row (key-value lists).
    pub(crate) fn plain() -> Self {
        Table { rows: Vec::new() }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    let _ = write!(line, "{cell}{:pad$}  ", "");
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The outcome of one check, as the operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// `1536` -> `1.5 KiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_leave_the_last_column_free() {
        let mut t = Table::new(&["CHECK", "STATUS", "DETAIL"]);
        t.row(vec!["aof".into(), "PASS".into(), "appendonly yes".into()]);
        t.row(vec!["cluster state".into(), "FAIL".into(), "".into()]);
        assert_eq!(
            t.render(),
            "CHECK          STATUS  DETAIL\n\
             aof            PASS    appendonly yes\n\
             cluster state  FAIL\n"
        );
        assert_eq!(Table::plain().render(), "");
    }

    #[test]
    fn error_kinds_are_snake_case() {
        assert_eq!(snake_case("InvalidArgument"), "invalid_argument");
        assert_eq!(snake_case("Connection"), "connection");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
