//! Reporting: everything tandem tells the user about a sync, and the counts behind the
//! summary and the exit status.
//!
//! A [`Reporter`] is shared by all worker threads. Each change (`copy`, `mkdir`,
//! `symlink`, `meta`, `delete`), warning and per-entry error goes through it; it counts
//! them and renders them in the chosen [`Format`]: human lines (itemized with `-v`,
//! errors only with `-q`) or one JSON object per line on stdout. Errors are remembered
//! (counted) so the run can go on and the exit status is decided at the end.
//! Output goes through [`Reporter::line_out`] / [`Reporter::line_err`] so a progress
//! display can later interleave with it.

use std::io::IsTerminal;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::Config;
use crate::plan::ChangeKind;
use crate::progress::{thousands, Display, Mode, NoProgress, Progress};
use crate::snapshot::ScanSink;

/// How output is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// Which tree an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Dest,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Dest => "dest",
        }
    }
}

/// The counters of one sync.
#[derive(Default, Debug)]
pub struct Counters {
    pub scanned: AtomicU64,
    pub copied: AtomicU64,
    pub bytes: AtomicU64,
    pub mkdirs: AtomicU64,
    pub symlinks: AtomicU64,
    pub metas: AtomicU64,
    pub deleted: AtomicU64,
    pub renamed: AtomicU64,
    /// Attribute fixes of DEST's root itself (not a scanned entry).
    pub root_metas: AtomicU64,
    pub errors: AtomicU64,
    pub warnings: AtomicU64,
    pub pattern_errors: AtomicU64,
    /// See [`Reporter::set_planned`]; `u64::MAX` until set.
    pub planned: AtomicU64,
}

/// A plain copy of the counters, for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub scanned: u64,
    pub copied: u64,
    pub bytes: u64,
    pub mkdirs: u64,
    pub symlinks: u64,
    pub metas: u64,
    pub deleted: u64,
    pub renamed: u64,
    pub root_metas: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Entries the plan had to change (one-shot runs; unknown in watch cycles).
    pub planned: Option<u64>,
}

pub struct Reporter {
    format: Format,
    verbose: u8,
    quiet: bool,
    /// Changes are only planned: itemize them even without `-v`.
    dry_run: bool,
    src_root: PathBuf,
    dst_root: PathBuf,
    counters: Arc<Counters>,
    start: Instant,
    progress: Box<dyn Progress>,
    /// Colour for human messages on stderr (a terminal, and no NO_COLOR).
    colour: bool,
    out_lock: Mutex<()>,
    /// Paths that failed since the last [`Reporter::take_failed`] (watch mode retries them).
    failed: Mutex<Vec<Vec<u8>>>,
    /// Operations skipped without an error (watch mode).
    not_done: Mutex<Vec<Vec<u8>>>,
    /// Counts at the end of the previous watch cycle.
    last_cycle: Mutex<Summary>,
}

/// Lossy text for a path that may not be UTF-8 (for JSON, which escapes the rest).
pub fn text(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// A name as shown in human output: lossy UTF-8 with control characters escaped
/// (`\n`, `\t`, `\x1b`, …), so a hostile name can neither split a line nor send
/// escape sequences to a terminal.
pub fn shown(path: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(path);
    if !lossy.chars().any(char::is_control) {
        return lossy.into_owned();
    }
    let mut out = String::with_capacity(lossy.len() + 8);
    for c in lossy.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl Reporter {
    pub fn new(cfg: &Config) -> Self {
        let counters = Arc::new(Counters { planned: AtomicU64::new(u64::MAX), ..Counters::default() });
        // A bar needs a terminal: asked for elsewhere, plain lines are what fits.
        let mode = match cfg.progress.resolve() {
            Mode::Bar if !std::io::stderr().is_terminal() => Mode::Lines,
            m => m,
        };
        let quiet_progress = cfg.quiet && cfg.format == Format::Human;
        let progress: Box<dyn Progress> = match mode {
            Mode::Bar | Mode::Lines if !quiet_progress => {
                Box::new(Display::new(mode, cfg.format == Format::Json, counters.clone()))
            }
            _ => Box::new(NoProgress),
        };
        let colour =
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Reporter {
            format: cfg.format,
            verbose: cfg.verbose,
            quiet: cfg.quiet,
            dry_run: cfg.dry_run,
            src_root: cfg.source.clone(),
            dst_root: cfg.dest.clone(),
            counters,
            start: Instant::now(),
            progress,
            colour,
            out_lock: Mutex::new(()),
            failed: Mutex::new(Vec::new()),
            not_done: Mutex::new(Vec::new()),
            last_cycle: Mutex::new(Summary::default()),
        }
    }

    /// The progress display (scanning, copy totals, current file, watch status).
    pub fn progress(&self) -> &dyn Progress {
        &*self.progress
    }

    /// `-vv` detail on stderr.
    pub fn debug(&self, message: &str) {
        if self.verbose >= 2 && !self.quiet {
            self.line_err(&format!("tandem: debug: {message}"));
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn errors(&self) -> u64 {
        self.counters.errors.load(Relaxed)
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Writes one line to stdout, whole.
    pub fn line_out(&self, line: &str) {
        let _g = self.out_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.progress.suspend(&mut || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        });
    }

    /// Writes one line to stderr, whole.
    pub fn line_err(&self, line: &str) {
        let _g = self.out_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.progress.suspend(&mut || {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        });
    }

    fn json(&self, v: Value) {
        self.line_out(&v.to_string());
    }

    fn full_path(&self, side: Side, rel: &[u8]) -> String {
        let root = match side {
            Side::Source => &self.src_root,
            Side::Dest => &self.dst_root,
        };
        if rel.is_empty() || rel == b"." {
            return shown(root.as_os_str().as_encoded_bytes());
        }
        format!("{}/{}", shown(root.as_os_str().as_encoded_bytes()), shown(rel))
    }

    /// One change done (or, in a dry run, planned).
    pub fn change(&self, path: &[u8], kind: &ChangeKind) {
        let c = &self.counters;
        match kind {
            ChangeKind::Copy { bytes } => {
                c.copied.fetch_add(1, Relaxed);
                c.bytes.fetch_add(*bytes, Relaxed);
            }
            ChangeKind::Mkdir => {
                c.mkdirs.fetch_add(1, Relaxed);
            }
            ChangeKind::Symlink { .. } => {
                c.symlinks.fetch_add(1, Relaxed);
            }
            ChangeKind::Meta => {
                c.metas.fetch_add(1, Relaxed);
                if path == b"." {
                    c.root_metas.fetch_add(1, Relaxed);
                }
            }
            ChangeKind::Delete => {
                c.deleted.fetch_add(1, Relaxed);
            }
            ChangeKind::Rename { .. } => {
                c.renamed.fetch_add(1, Relaxed);
            }
        }
        match self.format {
            Format::Json => {
                let mut v = json!({ "event": kind.event(), "path": text(path) });
                match kind {
                    ChangeKind::Copy { bytes } => v["bytes"] = json!(bytes),
                    ChangeKind::Symlink { target } => v["target"] = json!(text(target)),
                    ChangeKind::Rename { from } => v["from"] = json!(text(from)),
                    _ => {}
                }
                self.json(v);
            }
            Format::Human => {
                if (self.verbose > 0 || self.dry_run) && !self.quiet {
                    self.line_out(&crate::plan::itemize(&crate::plan::Change {
                        path: path.to_vec(),
                        kind: kind.clone(),
                    }));
                }
            }
        }
    }

    /// A per-entry error: counted (exit status 3) and shown with its full path.
    pub fn error(&self, side: Side, rel: &[u8], message: &str) {
        self.counters.errors.fetch_add(1, Relaxed);
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).push(rel.to_vec());
        match self.format {
            Format::Json => self.json(json!({
                "event": "error",
                "path": text(rel),
                "side": side.name(),
                "message": message,
            })),
            Format::Human => self.line_err(&format!(
                "tandem: {} {}: {message}",
                self.paint("31", "error:"),
                self.full_path(side, rel)
            )),
        }
    }

    /// Something skipped that is not a failure (special files).
    pub fn warning(&self, side: Side, rel: &[u8], message: &str) {
        self.counters.warnings.fetch_add(1, Relaxed);
        match self.format {
            Format::Json => self.json(json!({
                "event": "warning",
                "path": text(rel),
                "side": side.name(),
                "message": message,
            })),
            Format::Human if !self.quiet => self.line_err(&format!(
                "tandem: {} {}: {message}",
                self.paint("33", "warning:"),
                self.full_path(side, rel)
            )),
            Format::Human => {}
        }
    }

    /// An entry left out by an ignore rule (`--explain-ignored`): `exclude PATH (RULE)`
    /// on stdout, or an `excluded` JSON event.
    pub fn excluded(&self, side: Side, rel: &[u8], rule: &str) {
        match self.format {
            Format::Json => self.json(json!({
                "event": "excluded",
                "path": text(rel),
                "side": side.name(),
                "rule": rule,
            })),
            Format::Human if !self.quiet => {
                self.line_out(&format!("exclude {} ({})", shown(rel), shown(rule.as_bytes())))
            }
            Format::Human => {}
        }
    }

    /// An ignore pattern that cannot be parsed: reported now, the run stops with exit
    /// status 2 after the scan.
    pub fn pattern_error(&self, err: &crate::ignore::PatternError) {
        self.counters.pattern_errors.fetch_add(1, Relaxed);
        self.fatal(&err.to_string());
    }

    pub fn pattern_errors(&self) -> u64 {
        self.counters.pattern_errors.load(Relaxed)
    }

    /// A problem that stops the run before or instead of applying (guards, fatal errors).
    pub fn fatal(&self, message: &str) {
        if self.format == Format::Json {
            self.json(json!({ "event": "error", "path": "", "side": "", "message": message }));
        }
        self.line_err(&format!("tandem: {message}"));
    }

    pub fn summary_counts(&self) -> Summary {
        let c = &self.counters;
        Summary {
            scanned: c.scanned.load(Relaxed),
            copied: c.copied.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
            mkdirs: c.mkdirs.load(Relaxed),
            symlinks: c.symlinks.load(Relaxed),
            metas: c.metas.load(Relaxed),
            deleted: c.deleted.load(Relaxed),
            renamed: c.renamed.load(Relaxed),
            root_metas: c.root_metas.load(Relaxed),
            errors: c.errors.load(Relaxed),
            warnings: c.warnings.load(Relaxed),
            planned: match c.planned.load(Relaxed) {
                u64::MAX => None,
                n => Some(n),
            },
        }
    }

    /// A one-shot run's plan: how many SOURCE entries it changes (for `unchanged`).
    pub fn set_planned(&self, entries: u64) {
        self.counters.planned.store(entries, Relaxed);
    }

    /// Records that `rel`'s operation did not happen, without reporting an error (a
    /// SOURCE file that vanished before it could be copied, in watch mode).
    pub fn note_not_done(&self, rel: &[u8]) {
        self.not_done.lock().unwrap_or_else(|e| e.into_inner()).push(rel.to_vec());
    }

    /// Paths noted by [`Reporter::note_not_done`] since the last call.
    pub fn take_not_done(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.not_done.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Paths whose operation failed since the last call.
    pub fn take_failed(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.failed.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Watch mode: which strategy runs, and why (stderr line, or a `strategy` event).
    pub fn strategy(&self, name: &str, reason: &str) {
        match self.format {
            Format::Json => self.json(json!({ "event": "strategy", "name": name, "reason": reason })),
            Format::Human if !self.quiet => self.line_err(&format!("tandem: watching with {name}: {reason}")),
            Format::Human => {}
        }
    }

    /// Watch mode: a non-fatal notice (fallbacks, skipped cycles).
    pub fn notice(&self, message: &str) {
        match self.format {
            Format::Json => self.json(json!({ "event": "notice", "message": message })),
            Format::Human if !self.quiet => self.line_err(&format!("tandem: {message}")),
            Format::Human => {}
        }
    }

    /// Watch mode: the end of one sync cycle. Reports what this cycle did (when it did
    /// anything): a `cycle` JSON event, or one line on stderr.
    pub fn cycle(&self, number: u64, elapsed: Duration) {
        let now = self.summary_counts();
        let mut last = self.last_cycle.lock().unwrap_or_else(|e| e.into_inner());
        let d = Summary {
            scanned: now.scanned - last.scanned,
            copied: now.copied - last.copied,
            bytes: now.bytes - last.bytes,
            mkdirs: now.mkdirs - last.mkdirs,
            symlinks: now.symlinks - last.symlinks,
            metas: now.metas - last.metas,
            deleted: now.deleted - last.deleted,
            renamed: now.renamed - last.renamed,
            root_metas: now.root_metas - last.root_metas,
            errors: now.errors - last.errors,
            warnings: now.warnings - last.warnings,
            planned: None,
        };
        *last = now;
        drop(last);
        let changed = d.copied + d.mkdirs + d.symlinks + d.metas + d.deleted + d.renamed + d.errors > 0;
        match self.format {
            Format::Json => {
                let mut v = json!({ "event": "cycle", "cycle": number });
                counts_json(&mut v, &d, elapsed);
                self.json(v);
            }
            Format::Human if !self.quiet && changed => self.line_err(&format!(
                "tandem: sync #{number}: {} copied ({}), {} dirs created, {} symlinks, {} attribute fixes, {} deleted, {} renamed, {} errors in {:.3}s",
                d.copied,
                human_bytes(d.bytes),
                d.mkdirs,
                d.symlinks,
                d.metas,
                d.deleted,
                d.renamed,
                d.errors,
                elapsed.as_secs_f64()
            )),
            Format::Human => {}
        }
    }

    /// The end-of-run summary: one line on stderr, or a `summary` JSON event.
    pub fn summary(&self, exit_code: i32) {
        self.progress.finish();
        let dry_run = self.dry_run;
        let s = self.summary_counts();
        let elapsed = self.elapsed();
        match self.format {
            Format::Json => self.json(summary_json(&s, elapsed, dry_run, exit_code)),
            Format::Human if !self.quiet => self.line_err(&human_summary(&s, elapsed, dry_run)),
            Format::Human => {}
        }
    }
}

/// With `--json`, a run that stops before it starts (a configuration error) still
/// ends stdout with an `error` and a `summary` event.
pub fn json_failure(message: &str, exit_code: i32) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", json!({ "event": "error", "path": "", "side": "", "message": message }));
    let _ = writeln!(out, "{}", summary_json(&Summary::default(), Duration::ZERO, false, exit_code));
}

/// Adds a sync's counts to a JSON event.
fn counts_json(v: &mut Value, s: &Summary, elapsed: Duration) {
    v["scanned"] = json!(s.scanned);
    v["copied"] = json!(s.copied);
    v["bytes"] = json!(s.bytes);
    v["mkdir"] = json!(s.mkdirs);
    v["symlink"] = json!(s.symlinks);
    v["meta"] = json!(s.metas);
    v["deleted"] = json!(s.deleted);
    v["renamed"] = json!(s.renamed);
    v["unchanged"] = json!(s.unchanged());
    v["errors"] = json!(s.errors);
    v["elapsed_ms"] = json!(elapsed.as_millis() as u64);
    v["bytes_per_sec"] = json!(throughput(s.bytes, elapsed));
}

/// The `summary` event: the counts, warnings, whether it was a dry run, the exit status.
fn summary_json(s: &Summary, elapsed: Duration, dry_run: bool, exit_code: i32) -> Value {
    let mut v = json!({ "event": "summary" });
    counts_json(&mut v, s, elapsed);
    v["warnings"] = json!(s.warnings);
    v["dry_run"] = json!(dry_run);
    v["exit_code"] = json!(exit_code);
    v
}

/// `1.5 MiB` style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl Summary {
    /// Entries that needed nothing.
    /// Entries that needed nothing: scanned, minus those that were changed or had to
    /// be (done, failed, or refused), minus special files skipped.
    pub fn unchanged(&self) -> u64 {
        let done = self.copied
            + self.mkdirs
            + self.symlinks
            + self.metas.saturating_sub(self.root_metas)
            + self.renamed
            + self.errors;
        let not_in_sync = self.planned.map_or(done, |p| p.max(done));
        self.scanned.saturating_sub(not_in_sync + self.warnings)
    }
}

/// Bytes per second over `elapsed`.
fn throughput(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (bytes as f64 / secs) as u64
    }
}

fn human_summary(s: &Summary, elapsed: Duration, dry_run: bool) -> String {
    let mut line = format!(
        "tandem: {}{} entries scanned, {} unchanged, {} files copied ({}, {}/s), {} dirs created, {} symlinks, {} attribute fixes, {} renamed, {} deleted, {} errors in {:.2}s",
        if dry_run { "dry run: " } else { "" },
        thousands(s.scanned),
        thousands(s.unchanged()),
        thousands(s.copied),
        human_bytes(s.bytes),
        human_bytes(throughput(s.bytes, elapsed)),
        thousands(s.mkdirs),
        thousands(s.symlinks),
        thousands(s.metas),
        thousands(s.renamed),
        thousands(s.deleted),
        thousands(s.errors),
        elapsed.as_secs_f64()
    );
    if s.warnings > 0 {
        line.push_str(&format!(", {} skipped", thousands(s.warnings)));
    }
    line
}

/// Adapts the reporter to one side's scan.
pub struct SideSink<'a> {
    pub reporter: &'a Reporter,
    pub side: Side,
    /// Count scanned entries (SOURCE only, so the summary counts what is mirrored).
    pub count: bool,
}

impl ScanSink for SideSink<'_> {
    fn scan_error(&self, path: &[u8], err: &std::io::Error) {
        self.reporter.error(self.side, path, &crate::sys::describe(err));
    }

    fn special(&self, path: &[u8], what: &str) {
        self.reporter.warning(self.side, path, &format!("skipping {what} (special files are not copied)"));
    }

    fn scanned(&self, n: u64) {
        if self.count {
            self.reporter.counters.scanned.fetch_add(n, Relaxed);
        }
    }

    fn pattern_error(&self, err: &crate::ignore::PatternError) {
        self.reporter.pattern_error(err);
    }

    fn excluded(&self, path: &[u8], hit: &crate::ignore::Hit<'_>) {
        self.reporter.excluded(self.side, path, &hit.describe());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped_for_people() {
        assert_eq!(shown(b"plain name"), "plain name");
        assert_eq!(shown(b"a\nb"), "a\\nb");
        assert_eq!(shown(b"esc\x1b[31mred"), "esc\\x1b[31mred");
        assert_eq!(shown(b"bad\xffname"), "bad\u{fffd}name");
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
