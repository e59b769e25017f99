//! Progress displays on stderr: a live bar for terminals, plain periodic lines for logs,
//! or nothing.
//!
//! [`Progress`] is the small interface the rest of the program talks to (scanning,
//! copy totals, the file being copied, the watch-mode status line, and `suspend` so
//! itemized lines and errors never garble the bar). [`NoProgress`] does nothing;
//! [`Display`] draws an indicatif bar (`--progress bar`, the default on a terminal) or
//! prints one line at most every second (`--progress lines`, or a `progress` JSON event
//! with `--json`). A ticker thread reads the shared counters, so copying never waits on
//! the display.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::counts::{clock, human_bytes, thousands, Counters};
use crate::lock::lock;

/// `--progress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A bar on a terminal, nothing otherwise.
    Auto,
    /// A live bar (files, bytes, throughput, ETA, current file); plain lines where
    /// stderr is not a terminal.
    Bar,
    /// One plain line at most every second (for logs).
    Lines,
    /// No progress display.
    None,
}

impl Mode {
    /// What `auto` means here and now.
    pub fn resolve(self) -> Mode {
        match self {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Bar,
            Mode::Auto => Mode::None,
            m => m,
        }
    }
}

/// How often `--progress lines` prints: once a second is what a log can bear.
const LINE_PERIOD: Duration = Duration::from_secs(1);
/// How often the bar is redrawn (10 Hz, indicatif's own refresh rate for stderr).
const BAR_PERIOD: Duration = Duration::from_millis(100);
/// How often the ticker thread wakes: short enough that `finish` never waits long.
const TICKER_STEP: Duration = Duration::from_millis(50);

pub trait Progress: Send + Sync {
    /// Scanning has started (a spinner with the entry count).
    fn scanning(&self) {}
    /// Copying starts: this many files and bytes to copy.
    fn start_copy(&self, _files: u64, _bytes: u64) {}
    /// A streaming run starts (`stream`): scanning and copying go on together, and
    /// the totals grow by [`Progress::planned`] as directories are read.
    fn start_stream(&self) {}
    /// A streaming run planned this many more files and bytes to copy.
    fn planned(&self, _files: u64, _bytes: u64) {}
    /// This file is being copied now.
    fn current(&self, _path: &[u8]) {}
    /// Watch mode: waiting for changes; `text` describes the strategy and last sync.
    fn status(&self, _text: &str) {}
    /// Whether it shows totals planned (a streaming run then needs every size).
    fn shows_totals(&self) -> bool {
        false
    }
    /// Runs `f` (which prints) with the display out of the way.
    fn suspend(&self, f: &mut dyn FnMut()) {
        f()
    }
    /// Removes the display for good.
    fn finish(&self) {}
}

/// No display at all.
pub struct NoProgress;

impl Progress for NoProgress {}

enum Phase {
    Idle,
    Scanning,
    /// `streaming`: the totals are what has been planned so far (they grow); until
    /// a first copy is planned, the display reads as scanning.
    Copying {
        files: u64,
        bytes: u64,
        byte_base: u64,
        files_base: u64,
        since: Instant,
        current: String,
        streaming: bool,
    },
    Watching(String),
}

struct Inner {
    lines: bool,
    json: bool,
    timestamps: bool,
    counters: Arc<Counters>,
    phase: Mutex<Phase>,
    bar: Option<ProgressBar>,
    stop: AtomicBool,
}

/// The bar or the lines.
pub struct Display {
    inner: Arc<Inner>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Display {
    /// `mode` must be `Bar` or `Lines`; `json` sends lines as `progress` events to stdout.
    /// `timestamps`: start plain lines with a local RFC 3339 timestamp.
    pub fn new(mode: Mode, json: bool, timestamps: bool, counters: Arc<Counters>) -> Display {
        let bar = (mode == Mode::Bar).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            b.set_style(spinner_style());
            b
        });
        let inner = Arc::new(Inner {
            lines: mode == Mode::Lines,
            json,
            timestamps,
            counters,
            phase: Mutex::new(Phase::Idle),
            bar,
            stop: AtomicBool::new(false),
        });
        let t = inner.clone();
        let ticker = std::thread::Builder::new()
            .name("tandem-progress".into())
            .spawn(move || {
                let period = if t.lines { LINE_PERIOD } else { BAR_PERIOD };
                let step = TICKER_STEP;
                let mut waited = Duration::ZERO;
                while !t.stop.load(Relaxed) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited >= period {
                        waited = Duration::ZERO;
                        t.tick();
                    }
                }
            })
            .ok();
        Display { inner, ticker: Mutex::new(ticker) }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Inner {
    fn tick(&self) {
        let phase = lock(&self.phase);
        match &*phase {
            Phase::Idle => {}
            Phase::Copying { files: 0, streaming: true, .. } | Phase::Scanning => {
                let n = self.counters.scanned.load(Relaxed);
                let text = format!("scanning: {} entries", thousands(n));
                if let Some(b) = &self.bar {
                    b.set_message(text);
                    b.tick();
                } else if self.lines {
                    self.line(&text, serde_json::json!({"event":"progress","phase":"scan","scanned":n}));
                }
            }
            Phase::Copying { files, bytes, byte_base, files_base, since, current, streaming } => {
                let done_files = self.counters.copied.load(Relaxed).saturating_sub(*files_base);
                let done_bytes = crate::sys::bytes_copied().saturating_sub(*byte_base).min(*bytes);
                let secs = since.elapsed().as_secs_f64().max(0.001);
                let rate = done_bytes as f64 / secs;
                let eta = if rate > 0.0 && *bytes > done_bytes {
                    Duration::from_secs_f64((*bytes - done_bytes) as f64 / rate)
                } else {
                    Duration::ZERO
                };
                let text = format!(
                    "copied {}/{} files, {}/{}, {}/s, ETA {}",
                    thousands(done_files),
                    thousands(*files),
                    human_bytes(done_bytes),
                    human_bytes(*bytes),
                    human_bytes(rate as u64),
                    clock(eta)
                );
                if let Some(b) = &self.bar {
                    b.set_length((*bytes).max(1));
                    b.set_position(done_bytes);
                    b.set_message(format!("{text}  {current}"));
                } else if self.lines {
                    let mut event = serde_json::json!({
                        "event": "progress",
                        "phase": "copy",
                        "files_done": done_files,
                        "files_total": files,
                        "bytes_done": done_bytes,
                        "bytes_total": bytes,
                        "bytes_per_sec": rate as u64,
                        "eta_secs": eta.as_secs(),
                    });
                    if *streaming {
                        // The totals so far, and how far the reading has come.
                        event["scanned"] = serde_json::json!(self.counters.scanned.load(Relaxed));
                    }
                    self.line(&text, event);
                }
            }
            Phase::Watching(text) => {
                if let Some(b) = &self.bar {
                    b.set_message(text.clone());
                    b.tick();
                }
            }
        }
    }

    fn line(&self, text: &str, mut json: serde_json::Value) {
        if self.json {
            json["time"] = serde_json::json!(crate::sys::local_timestamp());
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{json}");
        } else if self.timestamps {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{} tandem: {text}", crate::sys::local_timestamp());
        } else {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "tandem: {text}");
        }
    }

    fn set(&self, p: Phase) {
        *lock(&self.phase) = p;
    }
}

impl Progress for Display {
    fn scanning(&self) {
        if let Some(b) = &self.inner.bar {
            b.set_style(spinner_style());
            b.set_message("scanning");
        }
        self.inner.set(Phase::Scanning);
    }

    fn start_copy(&self, files: u64, bytes: u64) {
        if files == 0 {
            self.inner.set(Phase::Idle);
            return;
        }
        if let Some(b) = &self.inner.bar {
            b.set_style(bar_style());
            b.set_length(bytes.max(1));
            b.set_position(0);
        }
        self.inner.set(Phase::Copying {
            files,
            bytes,
            byte_base: crate::sys::bytes_copied(),
            files_base: self.inner.counters.copied.load(Relaxed),
            since: Instant::now(),
            current: String::new(),
            streaming: false,
        });
    }

    fn start_stream(&self) {
        if let Some(b) = &self.inner.bar {
            b.set_style(spinner_style());
            b.set_message("scanning");
        }
        self.inner.set(Phase::Copying {
            files: 0,
            bytes: 0,
            byte_base: crate::sys::bytes_copied(),
            files_base: self.inner.counters.copied.load(Relaxed),
            since: Instant::now(),
            current: String::new(),
            streaming: true,
        });
    }

    fn shows_totals(&self) -> bool {
        true
    }

    fn planned(&self, more_files: u64, more_bytes: u64) {
        if more_files == 0 {
            return;
        }
        if let Phase::Copying { files, bytes, streaming: true, .. } = &mut *lock(&self.inner.phase) {
            if *files == 0 {
                if let Some(b) = &self.inner.bar {
                    b.set_style(bar_style());
                }
            }
            *files += more_files;
            *bytes = bytes.saturating_add(more_bytes);
        }
    }

    fn current(&self, path: &[u8]) {
        if self.inner.bar.is_none() {
            return;
        }
        if let Phase::Copying { current, .. } = &mut *lock(&self.inner.phase) {
            current.clear();
            current.push_str(&crate::relpath::shown(path));
        }
    }

    fn status(&self, text: &str) {
        if let Some(b) = &self.inner.bar {
            b.set_style(spinner_style());
            b.set_message(text.to_string());
        }
        self.inner.set(Phase::Watching(text.to_string()));
    }

    fn suspend(&self, f: &mut dyn FnMut()) {
        match &self.inner.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    fn finish(&self) {
        self.inner.stop.store(true, Relaxed);
        if let Some(t) = lock(&self.ticker).take() {
            let _ = t.join();
        }
        if let Some(b) = &self.inner.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.finish();
    }
}
