//! The terminal side: is a stream a terminal, the scan progress indicator,
//! and showing bytes that may not be text (session ids and values).

use std::io::Write;
use std::time::{Duration, Instant};

use ors_redis::admin::sessions::{ProgressFn, ScanProgress};

pub fn stdout_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor; fd 1 may be closed, which
    // it reports as "not a terminal".
    unsafe { libc::isatty(libc::STDOUT_FILENO) == 1 }
}

pub fn stderr_is_tty() -> bool {
    // SAFETY: as above, for fd 2.
    unsafe { libc::isatty(libc::STDERR_FILENO) == 1 }
}

/// How often the indicator redraws on a terminal.
const TTY_EVERY: Duration = Duration::from_millis(100);
/// Without a terminal: the first plain line after this, then one each
/// `LINE_EVERY`, so that a short scan prints nothing.
const LINE_AFTER: Duration = Duration::from_secs(2);
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// Redraw one line in place (stderr is a terminal).
    Tty,
    /// Plain lines now and then (stderr is a file or a pipe).
    Lines,
}

/// The progress of a scan over the masters, on stderr.
pub struct Progress {
    mode: Mode,
    what: &'static str,
    started: Instant,
    last: Option<Instant>,
    keys: u64,
    drawn: bool,
}

impl Progress {
    pub fn new(what: &'static str, quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Off
        } else if stderr_is_tty() {
            Mode::Tty
        } else {
            Mode::Lines
        };
        Progress::with_mode(what, mode, Instant::now())
    }

    fn with_mode(what: &'static str, mode: Mode, started: Instant) -> Self {
        Progress {
            mode,
            what,
            started,
            last: None,
            keys: 0,
            drawn: false,
        }
    }

    pub fn update(&mut self, p: &ScanProgress<'_>) {
        self.update_at(p, Instant::now(), &mut std::io::stderr());
    }

    fn update_at(&mut self, p: &ScanProgress<'_>, now: Instant, out: &mut dyn Write) {
        self.keys = p.keys;
        let due = match (self.mode, self.last) {
            (Mode::Off, _) => false,
            (Mode::Tty, None) => true,
            (Mode::Tty, Some(last)) => now.duration_since(last) >= TTY_EVERY,
            (Mode::Lines, None) => now.duration_since(self.started) >= LINE_AFTER,
            (Mode::Lines, Some(last)) => now.duration_since(last) >= LINE_EVERY,
        };
        if !due {
            return;
        }
        self.last = Some(now);
        self.drawn = true;
        let text = format!(
            "{}: master {}/{} ({}), {} keys so far",
            self.what, p.master, p.masters, p.node, p.keys
        );
        // Progress output is best effort: a closed stderr is no reason to stop.
        let _ = match self.mode {
            Mode::Tty => write!(out, "\r\x1b[2K{text}"),
            _ => writeln!(out, "ors-redis: {text}"),
        };
        let _ = out.flush();
    }

    /// Clears the line on a terminal; closes a series of plain lines.
    pub fn finish(&mut self) {
        self.finish_to(&mut std::io::stderr());
    }

    fn finish_to(&mut self, out: &mut dyn Write) {
        if !self.drawn {
            return;
        }
        let _ = match self.mode {
            Mode::Tty => write!(out, "\r\x1b[2K"),
            _ => writeln!(out, "ors-redis: {}: done, {} keys", self.what, self.keys),
        };
        let _ = out.flush();
        self.drawn = false;
    }
}

/// Runs `scan` with a progress indicator for it, cleared afterwards.
pub fn with_progress<T>(
    what: &'static str,
    quiet: bool,
    scan: impl FnOnce(&mut ProgressFn<'_>) -> T,
) -> T {
    let mut progress = Progress::new(what, quiet);
    let result = scan(&mut |p| progress.update(p));
    progress.finish();
    result
}

/// Bytes as readable text: UTF-8 as it is, except control characters,
/// backslashes and bytes that are not UTF-8, which become `\xNN` (and `\\`).
pub fn escape(bytes: &[u8]) -> String {
    escape_keeping(bytes, &[])
}

/// As [`escape`], but the control characters in `keep` stay as they are
/// (tabs and newlines of a text value shown on a terminal).
pub fn escape_keeping(bytes: &[u8], keep: &[char]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if keep.contains(&c) => out.push(c),
                c if c.is_control() && (c as u32) < 0x100 => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// An id for display: as it is when it is plain UTF-8 text (the usual
/// case), else escaped.
pub fn show_id(id: &[u8]) -> String {
    match std::str::from_utf8(id) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => escape(id),
    }
}

/// Whether a value reads as text: UTF-8 whose only control characters are
/// newlines, tabs and carriage returns.
pub fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|t| {
        t.chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
    })
}

/// `hexdump -C` style: offset, 16 bytes in hex, the printable ones as text.
pub fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:08x}  ", row * 16));
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

/// Standard base64 with padding (RFC 4648), for binary values in JSON.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `2591990` -> `29d 23h 59m 50s`.
pub fn duration_text(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ors_redis::config::NodeAddr;

    #[test]
    fn escaping_is_lossless_and_readable() {
        assert_eq!(escape(b"plain-id"), "plain-id");
        assert_eq!(escape("sess-é".as_bytes()), "sess-é");
        assert_eq!(escape(b"a\nb\\c\xff\x01"), "a\\x0ab\\\\c\\xff\\x01");
        assert_eq!(show_id(b"a\\b"), "a\\b");
        assert_eq!(
            escape_keeping(b"a\tb\n\\x09\x01", &['\t', '\n']),
            "a\tb\n\\\\x09\\x01"
        );
        assert_eq!(show_id(b"a\xffb"), "a\\xffb");
        assert!(is_text(b"line 1\nline 2\ttab"));
        assert!(!is_text(b"nul\0inside"));
        assert!(!is_text(b"\xff\xfe"));
    }

    #[test]
    fn hexdump_rows() {
        let dump = hexdump(b"0123456789abcdef\x00\xff");
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(
            lines[0],
            "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|"
        );
        assert!(lines[1].starts_with("00000010  00 ff   "));
        assert!(lines[1].ends_with("|..|"));
        assert_eq!(lines[0].find('|'), lines[1].find('|'), "columns line up");
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648, section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(59), "59s");
        assert_eq!(duration_text(2_591_990), "29d 23h 59m 50s");
        assert_eq!(duration_text(3600), "1h 0m 0s");
    }

    fn step(progress: &mut Progress, at: Instant, keys: u64, out: &mut Vec<u8>) {
        let node = NodeAddr::parse("127.0.0.1:7000").unwrap();
        let p = ScanProgress {
            node: &node,
            master: 1,
            masters: 3,
            keys,
        };
        progress.update_at(&p, at, out);
    }

    #[test]
    fn a_terminal_gets_one_line_redrawn_then_cleared() {
        let t0 = Instant::now();
        let mut p = Progress::with_mode("counting", Mode::Tty, t0);
        let mut out = Vec::new();
        step(&mut p, t0, 1000, &mut out);
        step(&mut p, t0 + Duration::from_millis(10), 2000, &mut out);
        step(&mut p, t0 + Duration::from_millis(200), 3000, &mut out);
        p.finish_to(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\r\x1b[2K").count(), 3, "{text:?}");
        assert!(text.contains("master 1/3 (127.0.0.1:7000), 1000 keys so far"));
        assert!(!text.contains("2000 keys"));
        assert!(!text.contains('\n'));
    }

    #[test]
    fn a_pipe_gets_plain_lines_for_long_scans_only() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut short = Progress::with_mode("counting", Mode::Lines, t0);
        step(&mut short, t0 + Duration::from_millis(500), 10, &mut out);
        short.finish_to(&mut out);
        assert!(out.is_empty());

        let mut long = Progress::with_mode("counting", Mode::Lines, t0);
        step(&mut long, t0 + Duration::from_secs(3), 5000, &mut out);
        step(&mut long, t0 + Duration::from_secs(4), 6000, &mut out);
        step(&mut long, t0 + Duration::from_secs(9), 7000, &mut out);
        long.finish_to(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "ors-redis: counting: master 1/3 (127.0.0.1:7000), 5000 keys so far\n\
             ors-redis: counting: master 1/3 (127.0.0.1:7000), 7000 keys so far\n\
             ors-redis: counting: done, 7000 keys\n"
        );
        let mut off = Progress::with_mode("counting", Mode::Off, t0);
        let mut out = Vec::new();
        step(&mut off, t0 + Duration::from_secs(60), 1, &mut out);
        off.finish_to(&mut out);
        assert!(out.is_empty());
    }
}
