//! The progress of a scan over the masters, or of an export or import, on
//! stderr: redrawn in place by `indicatif` on a terminal (a bar when the
//! size of the input is known), plain lines now and then when stderr is a file
//! or a pipe, nothing with `--quiet` or `TERM=dumb` (a terminal that cannot
//! redraw). It has no colours, so `NO_COLOR` needs nothing more.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use ors_redis::operator::NodeAddr;

/// Where a scan over the masters is, for a progress indicator.
pub(crate) struct ScanProgress<'a> {
    pub node: &'a NodeAddr,
    /// 1-based number of the master being scanned.
    pub master: usize,
    pub masters: usize,
    /// Keys returned so far, all masters together (repeats included).
    pub keys: u64,
}

pub(crate) type ProgressFn<'a> = dyn FnMut(&ScanProgress<'_>) + 'a;

/// Without a terminal: the first plain line after this, then one each
/// `LINE_EVERY`, so that a short scan prints nothing.
const LINE_AFTER: Duration = Duration::from_secs(2);
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Off,
    /// Redrawn in place (stderr is a terminal).
    Terminal,
    /// Plain lines now and then (stderr is a file or a pipe).
    Lines,
}

impl Mode {
    pub(crate) fn for_stderr(quiet: bool) -> Mode {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            if dumb {
                Mode::Off
            } else {
                Mode::Terminal
            }
        } else {
            Mode::Lines
        }
    }
}

struct Progress {
    mode: Mode,
    what: &'static str,
    started: Instant,
    last: Option<Instant>,
    /// What the closing line says after "done, ".
    done: String,
    bar: Option<ProgressBar>,
    /// The bar's length (also for the percentage of plain lines).
    total: Option<u64>,
}

impl Progress {
    /// `total`: the length of a bar (bytes of an input file); without one,
    /// a line of text only.
    fn new(what: &'static str, mode: Mode, started: Instant, total: Option<u64>) -> Self {
        let bar = (mode == Mode::Terminal).then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "[{bar:20}] {percent:>3}% eta {eta:<3} {wide_msg}"
            } else {
                "{msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .progress_chars("=> "),
            );
            bar
        });
        Progress {
            mode,
            what,
            started,
            last: None,
            done: String::new(),
            bar,
            total,
        }
    }

    fn scan_text(&self, p: &ScanProgress<'_>) -> String {
        format!(
            "{}: master {}/{} ({}), {} keys so far",
            self.what, p.master, p.masters, p.node, p.keys
        )
    }

    fn update(&mut self, p: &ScanProgress<'_>, now: Instant, out: &mut dyn Write) {
        self.done = format!("{} keys", p.keys);
        let text = self.scan_text(p);
        self.show(&text, None, now, out);
    }

    /// Shows `text` (which starts with `what`), and the bar at `position`.
    fn show(&mut self, text: &str, position: Option<u64>, now: Instant, out: &mut dyn Write) {
        match self.mode {
            Mode::Off => {}
            Mode::Terminal => {
                if let Some(bar) = &self.bar {
                    bar.set_message(text.to_string());
                    if let Some(p) = position {
                        bar.set_position(p);
                    }
                }
            }
            Mode::Lines => {
                let due = match self.last {
                    None => now.duration_since(self.started) >= LINE_AFTER,
                    Some(last) => now.duration_since(last) >= LINE_EVERY,
                };
                if due {
                    self.last = Some(now);
                    let percent = match (position, self.total) {
                        (Some(p), Some(total)) if total > 0 => {
                            format!(", {}%", p.saturating_mul(100) / total)
                        }
                        _ => String::new(),
                    };
                    // Best effort: a closed stderr is no reason to stop.
                    let _ = writeln!(out, "ors-redis: {text}{percent}");
                }
            }
        }
    }

    /// Clears the line on a terminal; closes a series of plain lines.
    fn finish(&mut self, out: &mut dyn Write) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.last.is_some() {
            let _ = writeln!(out, "ors-redis: {}: done, {}", self.what, self.done);
            self.last = None;
        }
    }
}

/// Runs `scan` with a progress display for it, cleared afterwards.
pub(crate) fn with_progress<T>(
    what: &'static str,
    quiet: bool,
    scan: impl FnOnce(&mut ProgressFn<'_>) -> T,
) -> T {
    let mut progress = Progress::new(what, Mode::for_stderr(quiet), Instant::now(), None);
    let result = scan(&mut |p| progress.update(p, Instant::now(), &mut std::io::stderr()));
    progress.finish(&mut std::io::stderr());
    result
}

/// The progress of an export or an import: a line of counts, and a bar
/// when the size of the input is known (an import from a file). Cleared
/// when dropped.
pub(crate) struct TransferProgress(Progress);

impl TransferProgress {
    pub(crate) fn new(what: &'static str, quiet: bool, total_bytes: Option<u64>) -> Self {
        TransferProgress(Progress::new(
            what,
            Mode::for_stderr(quiet),
            Instant::now(),
            total_bytes,
        ))
    }

    /// `counts` says where the transfer is ("12000 sessions, ..."); the
    /// bar stands at `position` bytes of the input.
    pub(crate) fn update(&mut self, counts: &str, position: Option<u64>) {
        let text = format!("{}: {counts}", self.0.what);
        self.0.done = counts.to_string();
        self.0
            .show(&text, position, Instant::now(), &mut std::io::stderr());
    }
}

impl Drop for TransferProgress {
    fn drop(&mut self) {
        self.0.finish(&mut std::io::stderr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ors_redis::operator::NodeAddr;

    fn step(progress: &mut Progress, at: Instant, keys: u64, out: &mut Vec<u8>) {
        let node = NodeAddr::parse("127.0.0.1:7000").unwrap();
        let p = ScanProgress {
            node: &node,
            master: 1,
            masters: 3,
            keys,
        };
        progress.update(&p, at, out);
    }

    #[test]
    fn a_pipe_gets_plain_lines_for_long_scans_only() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut short = Progress::new("counting", Mode::Lines, t0, None);
        step(&mut short, t0 + Duration::from_millis(500), 10, &mut out);
        short.finish(&mut out);
        assert!(out.is_empty());

        let mut long = Progress::new("counting", Mode::Lines, t0, None);
        step(&mut long, t0 + Duration::from_secs(3), 5000, &mut out);
        step(&mut long, t0 + Duration::from_secs(4), 6000, &mut out);
        step(&mut long, t0 + Duration::from_secs(9), 7000, &mut out);
        long.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "ors-redis: counting: master 1/3 (127.0.0.1:7000), 5000 keys so far\n\
             ors-redis: counting: master 1/3 (127.0.0.1:7000), 7000 keys so far\n\
             ors-redis: counting: done, 7000 keys\n"
        );
        let mut off = Progress::new("counting", Mode::Off, t0, None);
        let mut out = Vec::new();
        step(&mut off, t0 + Duration::from_secs(60), 1, &mut out);
        off.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_transfer_with_a_known_size_gives_its_percentage() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut p = Progress::new("importing", Mode::Lines, t0, Some(1000));
        p.done = "40 read".into();
        p.show(
            "importing: 40 read",
            Some(250),
            t0 + Duration::from_secs(3),
            &mut out,
        );
        p.finish(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ors-redis: importing: 40 read, 25%\nors-redis: importing: done, 40 read\n"
        );
    }
}
