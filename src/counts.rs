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
    /// `-H`: names linked to another (hard links made).
    pub linked: AtomicU64,
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
    pub linked: u64,
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
            linked: self.linked.load(Relaxed),
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
            + self.linked
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
            linked: self.linked - earlier.linked,
            root_metas: self.root_metas - earlier.root_metas,
            errors: self.errors - earlier.errors,
            warnings: self.warnings - earlier.warnings,
            planned: None,
        }
    }

    /// Anything was changed, or failed.
    pub fn changed_anything(&self) -> bool {
        self.copied
            + self.mkdirs
            + self.symlinks
            + self.metas
            + self.deleted
            + self.renamed
            + self.linked
            + self.errors
            > 0
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
    v["hardlinked"] = json!(s.linked);
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

/// `1 file`, `2 files`, `1,204 files`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `3 files copied (1.5 MiB, 12.0 MiB/s)`: the rate only when something was copied
/// for real.
fn copied_text(s: &Summary, elapsed: Duration, dry_run: bool) -> String {
    let files = count(s.copied, "file", "files");
    if dry_run || s.copied == 0 {
        format!("{files} copied ({})", human_bytes(s.bytes))
    } else {
        format!("{files} copied ({}, {}/s)", human_bytes(s.bytes), human_bytes(throughput(s.bytes, elapsed)))
    }
}

/// What was changed, as people read it: `1 file copied (…), 0 dirs created, …`.
fn changes_text(s: &Summary, elapsed: Duration, dry_run: bool) -> String {
    format!(
        "{}, {} created, {}, {}, {} renamed, {}{} deleted, {}",
        copied_text(s, elapsed, dry_run),
        count(s.mkdirs, "dir", "dirs"),
        count(s.symlinks, "symlink", "symlinks"),
        count(s.metas, "attribute fix", "attribute fixes"),
        thousands(s.renamed),
        // -H only: a count that is there when links were made.
        if s.linked > 0 { format!("{} hard-linked, ", thousands(s.linked)) } else { String::new() },
        thousands(s.deleted),
        count(s.errors, "error", "errors"),
    )
}

/// The end-of-run line for people. `syncs`: watch mode's number of syncs that changed
/// something (then `scanned` is SOURCE's entry count at the last look, and the
/// changes are totals over all of them).
pub fn human_summary(s: &Summary, elapsed: Duration, dry_run: bool, syncs: Option<u64>) -> String {
    let mut line = match syncs {
        None => format!(
            "tandem: {}{} scanned, {} unchanged, {} in {:.2}s",
            if dry_run { "dry run: " } else { "" },
            count(s.scanned, "entry", "entries"),
            thousands(s.unchanged()),
            changes_text(s, elapsed, dry_run),
            elapsed.as_secs_f64()
        ),
        Some(n) => format!(
            "tandem: {} scanned at the last look; over {}: {} in {:.2}s",
            count(s.scanned, "entry", "entries"),
            count(n, "sync", "syncs"),
            changes_text(s, elapsed, dry_run),
            elapsed.as_secs_f64()
        ),
    };
    if s.warnings > 0 {
        line.push_str(&format!(", {} skipped", thousands(s.warnings)));
    }
    line
}

/// One watch cycle's line for people.
pub fn human_cycle(number: u64, d: &Summary, elapsed: Duration) -> String {
    format!("tandem: sync #{number}: {} in {:.3}s", changes_text(d, elapsed, false), elapsed.as_secs_f64())
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
    fn counts_read_naturally() {
        let one = Summary { scanned: 1, copied: 1, bytes: 1, symlinks: 1, errors: 1, ..Summary::default() };
        let line = human_summary(&one, Duration::from_secs(1), false, None);
        assert!(line.contains("1 entry scanned") && line.contains("1 file copied (1 B, 1 B/s)"), "{line}");
        assert!(line.contains("1 symlink,") && line.contains("1 error in"), "{line}");
        let dry = human_summary(&one, Duration::from_secs(1), true, None);
        assert!(dry.contains("1 file copied (1 B)") && !dry.contains("/s"), "{dry}");
        let none = human_summary(&Summary::default(), Duration::from_secs(1), false, None);
        assert!(none.contains("0 files copied (0 B),") && none.contains("0 errors in"), "{none}");
        let watch = human_summary(&one, Duration::from_secs(1), false, Some(3));
        assert!(watch.contains("1 entry scanned at the last look; over 3 syncs: 1 file copied"), "{watch}");
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
