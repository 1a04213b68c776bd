//! Progress of a long load on the terminal (stderr): on a terminal, one line redrawn every
//! second with the phase, rows so far, rows per second and, where the total is known, the
//! time left; elsewhere (a log file, CI) one plain line per finished phase. A few lines of our
//! own rather than a progress-bar crate: one counter and one line are all a seed shows.
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The progress of the current phase, shared with the ticker that draws it.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    /// Whether anything is shown at all (off in tests and libraries' callers that ask so).
    shown: bool,
    terminal: bool,
    rows: AtomicU64,
    phase: Mutex<Phase>,
    started: Instant,
    stop: AtomicBool,
}

struct Phase {
    name: String,
    total: Option<u64>,
    /// What is counted: rows, or statements.
    unit: &'static str,
    since: Instant,
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Progress {
    /// Progress on stderr (redrawn on a terminal, a line per phase elsewhere).
    pub fn stderr() -> Self {
        let p = Self::new(true, std::io::stderr().is_terminal());
        if p.inner.terminal {
            let ticker = p.clone();
            std::thread::spawn(move || {
                while !ticker.inner.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    ticker.draw();
                }
            });
        }
        p
    }

    /// Nothing shown (tests, `serve --demo`).
    pub fn hidden() -> Self {
        Self::new(false, false)
    }

    fn new(shown: bool, terminal: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                shown,
                terminal,
                rows: AtomicU64::new(0),
                phase: Mutex::new(Phase {
                    name: String::new(),
                    total: None,
                    unit: "rows",
                    since: Instant::now(),
                }),
                started: Instant::now(),
                stop: AtomicBool::new(false),
            }),
        }
    }

    /// Ends the current phase (reporting it) and starts `name`, of `total` rows if known.
    pub fn phase(&self, name: &str, total: Option<u64>) {
        self.phase_of(name, total, "rows");
    }

    /// Like [`Progress::phase`], counting `unit` (statements, say) instead of rows.
    pub fn phase_of(&self, name: &str, total: Option<u64>, unit: &'static str) {
        self.end_phase();
        let mut p = self.inner.phase.lock().unwrap_or_else(|e| e.into_inner());
        p.name = name.to_owned();
        p.total = total;
        p.unit = unit;
        p.since = Instant::now();
        self.inner.rows.store(0, Ordering::Relaxed);
    }

    /// Rows done in the current phase so far.
    pub fn set(&self, rows: u64) {
        self.inner.rows.store(rows, Ordering::Relaxed);
    }

    fn end_phase(&self) {
        if !self.inner.shown {
            return;
        }
        let p = self.inner.phase.lock().unwrap_or_else(|e| e.into_inner());
        if p.name.is_empty() {
            return;
        }
        let rows = self.inner.rows.load(Ordering::Relaxed);
        let secs = p.since.elapsed().as_secs_f64();
        let rows_text = match (rows, p.unit) {
            (0, _) => String::new(),
            (_, "rows") => format!(
                ": {} rows, {}/s",
                thousands(rows),
                thousands((rows as f64 / secs.max(1e-3)) as u64)
            ),
            (_, unit) => format!(": {rows} {unit}"),
        };
        let mut err = std::io::stderr().lock();
        let clear = if self.inner.terminal { "\r\x1b[2K" } else { "" };
        let _ = writeln!(err, "{clear}seed: {}{rows_text} in {secs:.1} s", p.name);
    }

    /// Ends the last phase and stops redrawing.
    pub fn done(&self) {
        self.end_phase();
        self.inner.stop.store(true, Ordering::Relaxed);
        if self.inner.shown {
            let _ = writeln!(
                std::io::stderr().lock(),
                "seed: done in {:.1} s",
                self.inner.started.elapsed().as_secs_f64()
            );
        }
        let mut p = self.inner.phase.lock().unwrap_or_else(|e| e.into_inner());
        p.name.clear();
    }

    fn draw(&self) {
        let p = self.inner.phase.lock().unwrap_or_else(|e| e.into_inner());
        if p.name.is_empty() {
            return;
        }
        let rows = self.inner.rows.load(Ordering::Relaxed);
        let secs = p.since.elapsed().as_secs_f64();
        let rate = rows as f64 / secs.max(1e-3);
        let mut line = format!("seed: {} {:.0} s", p.name, secs);
        match (rows, p.unit, p.total.filter(|t| *t > 0)) {
            (0, _, _) => {}
            (_, "rows", total) => {
                line.push_str(&format!(
                    ", {} rows, {}/s",
                    thousands(rows),
                    thousands(rate as u64)
                ));
                if let Some(total) = total {
                    let left = total.saturating_sub(rows) as f64 / rate.max(1.0);
                    line.push_str(&format!(
                        " ({:.0}%, {:.0} s left)",
                        100.0 * rows as f64 / total as f64,
                        left
                    ));
                }
            }
            (_, unit, Some(total)) => line.push_str(&format!(", {rows} of {total} {unit}")),
            (_, unit, None) => line.push_str(&format!(", {rows} {unit}")),
        }
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{line}");
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }
}
