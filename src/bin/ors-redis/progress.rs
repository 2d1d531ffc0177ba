//! The progress of a scan over the masters, on stderr: redrawn in place by
//! `indicatif` on a terminal, plain lines now and then when stderr is a file
//! or a pipe, nothing with `--quiet` or `TERM=dumb` (a terminal that cannot
//! redraw). It has no colours, so `NO_COLOR` needs nothing more.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::admin::sessions::{ProgressFn, ScanProgress};

/// Without a terminal: the first plain line after this, then one each
/// `LINE_EVERY`, so that a short scan prints nothing.
const LINE_AFTER: Duration = Duration::from_secs(2);
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// Redrawn in place (stderr is a terminal).
    Terminal,
    /// Plain lines now and then (stderr is a file or a pipe).
    Lines,
}

impl Mode {
    pub fn for_stderr(quiet: bool) -> Mode {
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
    keys: u64,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(what: &'static str, mode: Mode, started: Instant) -> Self {
        let bar = (mode == Mode::Terminal).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        Progress {
            mode,
            what,
            started,
            last: None,
            keys: 0,
            bar,
        }
    }

    fn text(&self, p: &ScanProgress<'_>) -> String {
        format!(
            "{}: master {}/{} ({}), {} keys so far",
            self.what, p.master, p.masters, p.node, p.keys
        )
    }

    fn update(&mut self, p: &ScanProgress<'_>, now: Instant, out: &mut dyn Write) {
        self.keys = p.keys;
        match self.mode {
            Mode::Off => {}
            Mode::Terminal => {
                if let Some(bar) = &self.bar {
                    bar.set_message(self.text(p));
                }
            }
            Mode::Lines => {
                let due = match self.last {
                    None => now.duration_since(self.started) >= LINE_AFTER,
                    Some(last) => now.duration_since(last) >= LINE_EVERY,
                };
                if due {
                    self.last = Some(now);
                    // Best effort: a closed stderr is no reason to stop.
                    let _ = writeln!(out, "ors-redis: {}", self.text(p));
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
            let _ = writeln!(out, "ors-redis: {}: done, {} keys", self.what, self.keys);
            self.last = None;
        }
    }
}

/// Runs `scan` with a progress display for it, cleared afterwards.
pub fn with_progress<T>(
    what: &'static str,
    quiet: bool,
    scan: impl FnOnce(&mut ProgressFn<'_>) -> T,
) -> T {
    let mut progress = Progress::new(what, Mode::for_stderr(quiet), Instant::now());
    let result = scan(&mut |p| progress.update(p, Instant::now(), &mut std::io::stderr()));
    progress.finish(&mut std::io::stderr());
    result
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
        let mut short = Progress::new("counting", Mode::Lines, t0);
        step(&mut short, t0 + Duration::from_millis(500), 10, &mut out);
        short.finish(&mut out);
        assert!(out.is_empty());

        let mut long = Progress::new("counting", Mode::Lines, t0);
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
        let mut off = Progress::new("counting", Mode::Off, t0);
        let mut out = Vec::new();
        step(&mut off, t0 + Duration::from_secs(60), 1, &mut out);
        off.finish(&mut out);
        assert!(out.is_empty());
    }
}
