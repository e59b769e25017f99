//! Reporting: everything tandem tells the user about a sync.
//!
//! A [`Reporter`] is shared by all worker threads. Each change (`copy`, `mkdir`,
//! `symlink`, `meta`, `delete`, `rename`), warning and per-entry error goes through it;
//! it counts them (see `counts`) and renders them in the chosen [`Format`]: human
//! lines (itemized with `-v`, errors only with `-q`) or one JSON object per line on
//! stdout. It is only output: it keeps no list of what failed (callers that act on
//! failures get an `outcome::Outcome` from the code that failed), and it knows only
//! the output options ([`OutputOptions`]), not the run's configuration.
//! Output goes through [`Reporter::line_out`] / [`Reporter::line_err`] so a progress
//! display can interleave with it.

use std::io::IsTerminal;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::counts::{counts_json, human_cycle, human_summary, summary_json, Counters, Summary};
use crate::exit::Exit;
use crate::lock::lock;
use crate::outcome::Failures;
use crate::plan::{Change, ChangeKind};
use crate::progress::{Display, Mode, NoProgress, Progress};
use crate::relpath::{shown, text};
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

/// What the user asked of the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    pub format: Format,
    /// `-v` (1) or `-vv` (2).
    pub verbose: u8,
    pub quiet: bool,
    /// Changes are only planned: itemize them even without `-v`, and say so in the
    /// summary.
    pub dry_run: bool,
    pub progress: Mode,
    /// Start each stderr line with a local RFC 3339 timestamp (watch mode writing to a
    /// file rather than a terminal).
    pub timestamps: bool,
    /// stderr is systemd's journal (`JOURNAL_STREAM`): each line starts with its syslog
    /// priority (`<3>` errors, `<4>` warnings, `<6>` the rest) and carries no timestamp
    /// (the journal keeps its own).
    pub journal: bool,
}

/// Syslog priorities, for lines written to the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    Error = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

/// Whether stderr is the journal stream systemd passed (`JOURNAL_STREAM=DEV:INODE`
/// naming stderr itself, so a redirected stderr is not taken for the journal).
pub fn journal_stream() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let v = v.to_string_lossy();
    let Some((dev, ino)) = v.split_once(':') else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    // (st_dev and st_ino are not u64 on every platform.)
    #[allow(clippy::unnecessary_cast)]
    match rustix::fs::fstat(rustix::stdio::stderr()) {
        Ok(st) => st.st_dev as u64 == dev && st.st_ino as u64 == ino,
        Err(_) => false,
    }
}

pub struct Reporter {
    opts: OutputOptions,
    /// SOURCE and DEST as shown in front of a relative path.
    src_shown: String,
    dst_shown: String,
    counters: Arc<Counters>,
    start: Instant,
    progress: Box<dyn Progress>,
    /// Colour for human messages on stderr (a terminal, and no NO_COLOR).
    colour: bool,
    out_lock: Mutex<()>,
    /// Counts at the end of the previous watch cycle.
    last_cycle: Mutex<Summary>,
    /// Watch-mode cycle lines printed so far (they are numbered on their own).
    syncs_shown: AtomicU64,
    /// Watch mode's end: SOURCE's entries at the last look, and the cycles run.
    watched: Mutex<Option<(u64, u64)>>,
    /// A service's mirror: its name, in front of each line (`tandem: [NAME] …`) and in
    /// each JSON event (`"pair"`).
    label: Option<String>,
    /// The last error reported, with its time (for a service's status).
    last_error: Mutex<Option<(String, String)>>,
}

/// One line of the itemized listing (`-v`, `--dry-run`): `copy a/b.txt (3 bytes)`,
/// `mkdir a/`, `symlink a/l -> target`, `meta a/b.txt`, `delete a/old`,
/// `rename a -> b`.
pub fn itemize(c: &Change) -> String {
    let path = shown(&c.path);
    match &c.kind {
        ChangeKind::Copy { bytes } => format!("copy {path} ({bytes} bytes)"),
        ChangeKind::Mkdir => format!("mkdir {path}/"),
        ChangeKind::Symlink { target } => format!("symlink {path} -> {}", shown(target)),
        ChangeKind::Meta => format!("meta {path}"),
        ChangeKind::Delete => format!("delete {path}"),
        ChangeKind::Rename { from } => format!("rename {} -> {path}", shown(from)),
        ChangeKind::Hardlink { target } => format!("hardlink {path} => {}", shown(target)),
    }
}

impl Reporter {
    /// A reporter for a run from `source` to `dest` (as they are shown to people).
    pub fn new(opts: OutputOptions, source: &str, dest: &str) -> Self {
        let counters = Arc::new(Counters::default());
        // A bar needs a terminal: asked for elsewhere, plain lines are what fits.
        let mode = match opts.progress.resolve() {
            Mode::Bar if !std::io::stderr().is_terminal() => Mode::Lines,
            m => m,
        };
        let quiet_progress = opts.quiet && opts.format == Format::Human;
        let progress: Box<dyn Progress> = match mode {
            Mode::Bar | Mode::Lines if !quiet_progress => {
                Box::new(Display::new(mode, opts.format == Format::Json, opts.timestamps, counters.clone()))
            }
            _ => Box::new(NoProgress),
        };
        let colour =
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Reporter {
            opts,
            src_shown: shown(source.as_bytes()),
            dst_shown: shown(dest.as_bytes()),
            counters,
            start: Instant::now(),
            progress,
            colour,
            out_lock: Mutex::new(()),
            last_cycle: Mutex::new(Summary::default()),
            syncs_shown: AtomicU64::new(0),
            watched: Mutex::new(None),
            label: None,
            last_error: Mutex::new(None),
        }
    }

    /// The same reporter for one mirror of a service: its lines say which.
    pub fn labelled(mut self, name: &str) -> Self {
        self.label = Some(name.to_string());
        self
    }

    /// The last error reported (message, local time), if any.
    pub fn last_error(&self) -> Option<(String, String)> {
        lock(&self.last_error).clone()
    }

    fn note_error(&self, message: String) {
        *lock(&self.last_error) = Some((message, crate::sys::local_timestamp()));
    }

    /// `tandem: ` and, for a service's mirror, `[NAME] `.
    fn lead(&self) -> String {
        match &self.label {
            Some(l) => format!("tandem: [{l}] "),
            None => "tandem: ".to_string(),
        }
    }

    /// The progress display (scanning, copy totals, current file, watch status).
    pub fn progress(&self) -> &dyn Progress {
        &*self.progress
    }

    /// `-vv` detail on stderr.
    pub fn debug(&self, message: &str) {
        if self.opts.verbose >= 2 && !self.opts.quiet {
            self.line_at(Priority::Debug, &format!("{}debug: {message}", self.lead()));
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

    /// Writes one line to stdout, whole (a service's mirror's behind `[NAME] `).
    pub fn line_out(&self, line: &str) {
        match (&self.label, self.opts.format) {
            (Some(l), Format::Human) => self.raw_out(&format!("[{l}] {line}")),
            _ => self.raw_out(line),
        }
    }

    fn raw_out(&self, line: &str) {
        let _g = lock(&self.out_lock);
        self.progress.suspend(&mut || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        });
    }

    /// Writes one line to stderr, whole (behind a timestamp for a service's log).
    pub fn line_err(&self, line: &str) {
        self.line_at(Priority::Info, line)
    }

    /// Writes one line to stderr, whole: behind its syslog priority for the journal,
    /// behind a timestamp for a service's log file.
    pub fn line_at(&self, priority: Priority, line: &str) {
        let stamped;
        let line = if self.opts.journal {
            stamped = format!("<{}>{line}", priority as u8);
            &stamped
        } else if self.opts.timestamps {
            stamped = format!("{} {line}", crate::sys::local_timestamp());
            &stamped
        } else {
            line
        };
        let _g = lock(&self.out_lock);
        self.progress.suspend(&mut || {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        });
    }

    /// Writes one JSON event, with the time it happened.
    fn json(&self, mut v: Value) {
        if let Some(l) = &self.label {
            v["pair"] = json!(l);
        }
        v["time"] = json!(crate::sys::local_timestamp());
        self.raw_out(&v.to_string());
    }

    fn full_path(&self, side: Side, rel: &[u8]) -> String {
        let root = match side {
            Side::Source => &self.src_shown,
            Side::Dest => &self.dst_shown,
        };
        if rel.is_empty() || rel == b"." {
            return root.clone();
        }
        format!("{root}/{}", shown(rel))
    }

    /// One change done (or, in a dry run, planned).
    pub fn change(&self, path: &[u8], kind: &ChangeKind) {
        self.count_change(path, kind);
        self.print_change(path, kind);
    }

    /// Whether [`Reporter::print_change`] prints anything (an itemized line or a JSON
    /// event), so that a caller need not hold changes back to print them in order.
    pub fn prints_changes(&self) -> bool {
        match self.opts.format {
            Format::Json => true,
            Format::Human => (self.opts.verbose > 0 || self.opts.dry_run) && !self.opts.quiet,
        }
    }

    /// The counting half of [`Reporter::change`] (summary, progress).
    pub fn count_change(&self, path: &[u8], kind: &ChangeKind) {
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
            ChangeKind::Hardlink { .. } => {
                c.linked.fetch_add(1, Relaxed);
            }
        }
    }

    /// The printing half of [`Reporter::change`]: the itemized line or JSON event.
    pub fn print_change(&self, path: &[u8], kind: &ChangeKind) {
        match self.opts.format {
            Format::Json => {
                let mut v = json!({ "event": kind.event(), "path": text(path) });
                match kind {
                    ChangeKind::Copy { bytes } => v["bytes"] = json!(bytes),
                    ChangeKind::Symlink { target } => v["target"] = json!(text(target)),
                    ChangeKind::Rename { from } => v["from"] = json!(text(from)),
                    ChangeKind::Hardlink { target } => v["target"] = json!(text(target)),
                    _ => {}
                }
                self.json(v);
            }
            Format::Human => {
                if (self.opts.verbose > 0 || self.opts.dry_run) && !self.opts.quiet {
                    self.line_out(&itemize(&Change { path: path.to_vec(), kind: kind.clone() }));
                }
            }
        }
    }

    /// A per-entry error: counted (exit status 3) and shown with its full path.
    pub fn error(&self, side: Side, rel: &[u8], message: &str) {
        self.counters.errors.fetch_add(1, Relaxed);
        self.note_error(format!("{}: {message}", self.full_path(side, rel)));
        match self.opts.format {
            Format::Json => self.json(json!({
                "event": "error",
                "path": text(rel),
                "side": side.name(),
                "message": message,
            })),
            Format::Human => self.line_at(
                Priority::Error,
                &format!(
                    "{}{} {}: {message}",
                    self.lead(),
                    self.paint("31", "error:"),
                    self.full_path(side, rel)
                ),
            ),
        }
    }

    /// Something skipped that is not a failure (special files).
    pub fn warning(&self, side: Side, rel: &[u8], message: &str) {
        self.counters.warnings.fetch_add(1, Relaxed);
        match self.opts.format {
            Format::Json => self.json(json!({
                "event": "warning",
                "path": text(rel),
                "side": side.name(),
                "message": message,
            })),
            Format::Human if !self.opts.quiet => self.line_at(
                Priority::Warning,
                &format!(
                    "{}{} {}: {message}",
                    self.lead(),
                    self.paint("33", "warning:"),
                    self.full_path(side, rel)
                ),
            ),
            Format::Human => {}
        }
    }

    /// An entry left out by an ignore rule (`--explain-ignored`): `exclude PATH (in
    /// SOURCE: RULE)` (an entry not synced) or `exclude PATH (in DEST: RULE)` (an entry
    /// left alone) on stdout, or an `excluded` JSON event with its side.
    pub fn excluded(&self, side: Side, rel: &[u8], rule: &str) {
        match self.opts.format {
            Format::Json => self.json(json!({
                "event": "excluded",
                "path": text(rel),
                "side": side.name(),
                "rule": rule,
            })),
            Format::Human if !self.opts.quiet => {
                let side = match side {
                    Side::Source => "SOURCE",
                    Side::Dest => "DEST",
                };
                self.line_out(&format!("exclude {} (in {side}: {})", shown(rel), shown(rule.as_bytes())))
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
        self.note_error(message.to_string());
        if self.opts.format == Format::Json {
            self.json(json!({ "event": "error", "path": "", "side": "", "message": message }));
        }
        self.line_at(Priority::Error, &format!("{}{message}", self.lead()));
    }

    /// A service's mirror could not go on (its first sync failed, say): an error line
    /// that does not end the service (`retry` says when it is tried again).
    pub fn pair_failed(&self, message: &str) {
        self.note_error(message.to_string());
        match self.opts.format {
            Format::Json => {
                self.json(json!({ "event": "error", "path": "", "side": "", "message": message }))
            }
            Format::Human => self.line_at(Priority::Error, &format!("{}{message}", self.lead())),
        }
    }

    /// The counts so far.
    pub fn summary_counts(&self) -> Summary {
        self.counters.summary()
    }

    /// A one-shot run's plan: how many SOURCE entries it changes (for `unchanged`).
    pub fn set_planned(&self, entries: u64) {
        let _ = self.counters.planned.set(entries);
    }

    /// Watch mode: which strategy runs, and why (stderr line, or a `strategy` event).
    pub fn strategy(&self, name: &str, reason: &str) {
        match self.opts.format {
            Format::Json => self.json(json!({ "event": "strategy", "name": name, "reason": reason })),
            Format::Human if !self.opts.quiet => {
                self.line_err(&format!("{}watching with {name}: {reason}", self.lead()))
            }
            Format::Human => {}
        }
    }

    /// Watch mode: a non-fatal notice (fallbacks, skipped cycles).
    pub fn notice(&self, message: &str) {
        match self.opts.format {
            Format::Json => self.json(json!({ "event": "notice", "message": message })),
            Format::Human if !self.opts.quiet => self.line_err(&format!("{}{message}", self.lead())),
            Format::Human => {}
        }
    }

    /// Watch mode: the end of one sync cycle. Reports what this cycle did: a `cycle`
    /// JSON event (`verify`: it was a full verification of DEST), or, when it changed
    /// anything, one line on stderr; those lines are numbered on their own, without
    /// gaps.
    pub fn cycle(&self, number: u64, elapsed: Duration, verify: bool) {
        let now = self.summary_counts();
        let d = {
            let mut last = lock(&self.last_cycle);
            let d = now.since(&last);
            *last = now;
            d
        };
        match self.opts.format {
            Format::Json => {
                let mut v = json!({ "event": "cycle", "cycle": number, "verify": verify });
                counts_json(&mut v, &d, elapsed);
                self.json(v);
            }
            Format::Human if !self.opts.quiet && d.changed_anything() => {
                let n = self.syncs_shown.fetch_add(1, Relaxed) + 1;
                let line = human_cycle(n, &d, elapsed);
                match &self.label {
                    Some(l) => self.line_err(&line.replacen("tandem: ", &format!("tandem: [{l}] "), 1)),
                    None => self.line_err(&line),
                }
            }
            Format::Human => {}
        }
    }

    /// Watch mode's end: SOURCE's entry count at the last look, and how many cycles
    /// ran (the summary's `scanned` and `cycles`).
    pub fn set_watched(&self, entries: u64, cycles: u64) {
        *lock(&self.watched) = Some((entries, cycles));
    }

    /// The run ends with a fatal error: it counts as one in the summary.
    pub fn count_fatal(&self) {
        self.counters.errors.fetch_add(1, Relaxed);
    }

    /// Watch mode: deletions held back by `--max-delete` (a `warning` line, or a
    /// `refused` JSON event), with a few example paths.
    pub fn deletions_held(&self, deletes: u64, max: u64, examples: &[Vec<u8>]) {
        match self.opts.format {
            Format::Json => self.json(json!({
                "event": "refused",
                "deletes": deletes,
                "max_delete": max,
                "examples": examples.iter().map(|p| text(p)).collect::<Vec<_>>(),
            })),
            Format::Human if !self.opts.quiet => {
                let shown_examples: Vec<String> = examples.iter().map(|p| shown(p)).collect();
                self.line_at(Priority::Warning, &format!(
                    "{}{} holding back {} (more than --max-delete {max}), e.g. {}; DEST keeps them until the count is within the limit",
                    self.lead(),
                    self.paint("33", "warning:"),
                    crate::counts::count(deletes, "deletion", "deletions"),
                    shown_examples.join(", ")
                ))
            }
            Format::Human => {}
        }
    }

    /// The end-of-run summary: one line on stderr, or a `summary` JSON event.
    pub fn summary(&self, exit: Exit) {
        self.progress.finish();
        let dry_run = self.opts.dry_run;
        let mut s = self.summary_counts();
        let watched = *lock(&self.watched);
        if let Some((entries, _)) = watched {
            s.scanned = entries;
            s.planned = None;
        }
        let cycles = watched.map(|(_, c)| c);
        let elapsed = self.elapsed();
        match self.opts.format {
            Format::Json => {
                let mut v = summary_json(&s, elapsed, dry_run, exit.code());
                if let Some(c) = cycles {
                    v["cycles"] = json!(c);
                }
                self.json(v)
            }
            // (People count the `sync #N` lines they saw: the cycles that changed
            // something.)
            Format::Human if !self.opts.quiet => {
                let syncs = cycles.map(|_| self.syncs_shown.load(Relaxed));
                let line = human_summary(&s, elapsed, dry_run, syncs);
                match &self.label {
                    Some(l) => self.line_err(&line.replacen("tandem: ", &format!("tandem: [{l}] "), 1)),
                    None => self.line_err(&line),
                }
            }
            Format::Human => {}
        }
    }
}

/// With `--json`, a run that stops before it starts (a configuration error) still
/// ends stdout with an `error` and a `summary` event.
pub fn json_failure(message: &str, exit: Exit) {
    let time = crate::sys::local_timestamp();
    let mut out = std::io::stdout().lock();
    let error = json!({ "event": "error", "path": "", "side": "", "message": message, "time": time });
    let mut summary = summary_json(&Summary::default(), Duration::ZERO, false, exit.code());
    summary["errors"] = json!(1);
    summary["time"] = json!(time);
    let _ = writeln!(out, "{error}");
    let _ = writeln!(out, "{summary}");
}

/// Adapts the reporter to one side's scan.
pub struct SideSink<'a> {
    pub reporter: &'a Reporter,
    pub side: Side,
    /// Count scanned entries (SOURCE only, so the summary counts what is mirrored).
    pub count: bool,
    /// Where the paths that could not be read are recorded, for a caller that acts on
    /// them (watch mode); `None` when nobody does.
    pub failures: Option<&'a Failures>,
}

impl ScanSink for SideSink<'_> {
    fn scan_error(&self, path: &[u8], err: &std::io::Error) {
        self.reporter.error(self.side, path, &crate::sys::describe(err));
        if let Some(f) = self.failures {
            f.failed(path);
        }
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
