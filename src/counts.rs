//! The counts of a run, and the summaries made of them.
//!
//! [`Counters`] are shared, lock-free tallies that the reporter adds to as changes
//! happen and that the progress display reads; a [`Summary`] is a plain copy of them
//! at one moment (the end of a run, or the difference over one watch cycle). This
//! module also owns how counts read: `1,204`, `1.5 MiB`, `0:27`, the summary line, and
//! the count fields of `cycle` and `summary` JSON events.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

/// The running tallies of one run.
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
    /// Entries a one-shot run's plan had to change (set once, after planning).
    pub planned: OnceLock<u64>,
}

/// A plain copy of the counters.
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

impl Counters {
    /// The counts now.
    pub fn summary(&self) -> Summary {
        Summary {
            scanned: self.scanned.load(Relaxed),
            copied: self.copied.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            mkdirs: self.mkdirs.load(Relaxed),
            symlinks: self.symlinks.load(Relaxed),
            metas: self.metas.load(Relaxed),
            deleted: self.deleted.load(Relaxed),
            renamed: self.renamed.load(Relaxed),
            root_metas: self.root_metas.load(Relaxed),
            errors: self.errors.load(Relaxed),
            warnings: self.warnings.load(Relaxed),
            planned: self.planned.get().copied(),
        }
    }
}

impl Summary {
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

    /// What happened between `earlier` and `self` (one watch cycle).
    pub fn since(&self, earlier: &Summary) -> Summary {
        Summary {
            scanned: self.scanned - earlier.scanned,
            copied: self.copied - earlier.copied,
            bytes: self.bytes - earlier.bytes,
            mkdirs: self.mkdirs - earlier.mkdirs,
            symlinks: self.symlinks - earlier.symlinks,
            metas: self.metas - earlier.metas,
            deleted: self.deleted - earlier.deleted,
            renamed: self.renamed - earlier.renamed,
            root_metas: self.root_metas - earlier.root_metas,
            errors: self.errors - earlier.errors,
            warnings: self.warnings - earlier.warnings,
            planned: None,
        }
    }

    /// Anything was changed, or failed.
    pub fn changed_anything(&self) -> bool {
        self.copied + self.mkdirs + self.symlinks + self.metas + self.deleted + self.renamed + self.errors > 0
    }
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

/// `1,234,567`
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

/// `0:27`, `1:02:03`
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Bytes per second over `elapsed`.
pub fn throughput(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (bytes as f64 / secs) as u64
    }
}

/// Adds a sync's counts to a JSON event.
pub fn counts_json(v: &mut Value, s: &Summary, elapsed: Duration) {
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
pub fn summary_json(s: &Summary, elapsed: Duration, dry_run: bool, exit_code: i32) -> Value {
    let mut v = json!({ "event": "summary" });
    counts_json(&mut v, s, elapsed);
    v["warnings"] = json!(s.warnings);
    v["dry_run"] = json!(dry_run);
    v["exit_code"] = json!(exit_code);
    v
}

/// The end-of-run line for people.
pub fn human_summary(s: &Summary, elapsed: Duration, dry_run: bool) -> String {
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

/// One watch cycle's line for people.
pub fn human_cycle(number: u64, d: &Summary, elapsed: Duration) -> String {
    format!(
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
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(clock(Duration::from_secs(27)), "0:27");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}
