//! Waiting for a running watcher: until DEST agrees with SOURCE, or until a marker
//! change proves that a later cycle ran.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::proc::Proc;
use super::{kind_of, tree_diff, Kind};

/// How long DEST may take to catch up with one change (or one batch).
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

pub type Row = (PathBuf, Kind, u32, u64, i64, i64);

/// A cheap listing that tolerates entries vanishing under it (`None` then).
pub fn quick_listing(root: &Path) -> Option<Vec<Row>> {
    fn rec(root: &Path, rel: &Path, out: &mut Vec<Row>) -> Option<()> {
        let m = fs::symlink_metadata(root.join(rel)).ok()?;
        let k = kind_of(&m);
        let mode = if k == Kind::Symlink { 0 } else { m.mode() & 0o7777 };
        let size = if k == Kind::File { m.len() } else { 0 };
        out.push((rel.to_path_buf(), k, mode, size, m.mtime(), m.mtime_nsec()));
        if k == Kind::Dir {
            let mut names: Vec<OsString> = fs::read_dir(root.join(rel))
                .ok()?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .ok()?;
            names.sort();
            for n in names {
                rec(root, &rel.join(n), out)?;
            }
        }
        Some(())
    }
    let mut out = Vec::new();
    rec(root, Path::new(""), &mut out)?;
    Some(out)
}

/// The util tree comparison, made safe against concurrent changes (a race
/// shows as a difference rather than a panic).
pub fn diff_now(src: &Path, dst: &Path, ignore: &[&Path]) -> Vec<String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tree_diff(src, dst, ignore)))
        .unwrap_or_else(|_| vec!["(tree changed while being compared)".to_string()])
}

pub fn synced(src: &Path, dst: &Path, ignore: &[&Path]) -> bool {
    if ignore.is_empty() {
        match (quick_listing(src), quick_listing(dst)) {
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
    diff_now(src, dst, ignore).is_empty()
}

/// Waits until DEST equals SOURCE (util comparison: types, modes, ns mtimes,
/// contents, targets); fails with the remaining differences.
#[track_caller]
pub fn wait_synced(w: &Proc, src: &Path, dst: &Path, what: &str) {
    wait_synced_ignoring(w, src, dst, &[], what, SYNC_TIMEOUT);
}

#[track_caller]
pub fn wait_synced_ignoring(
    w: &Proc,
    src: &Path,
    dst: &Path,
    ignore: &[&Path],
    what: &str,
    timeout: Duration,
) {
    w.wait_for_explained(
        &format!("[{what}] DEST to converge to SOURCE"),
        timeout,
        |_| synced(src, dst, ignore),
        || {
            let diffs = diff_now(src, dst, ignore);
            format!(
                "{} differences (SOURCE vs DEST):\n  - {}\n  SOURCE = {}\n  DEST   = {}",
                diffs.len(),
                diffs.join("\n  - "),
                src.display(),
                dst.display(),
            )
        },
    );
}

/// Proves that a sync cycle ran after everything done so far: writes a new
/// marker file `name` into SOURCE and waits until DEST has it. What must not
/// be synced can then be checked at once, without an observation window.
#[track_caller]
pub fn sync_marker(w: &Proc, src: &Path, dst: &Path, name: &str) {
    let content = format!("marker {name}\n");
    fs::write(src.join(name), &content).unwrap_or_else(|e| panic!("write marker {name}: {e}"));
    w.wait_for(&format!("the marker {name} in DEST (a later cycle)"), SYNC_TIMEOUT, |_| {
        fs::read(dst.join(name)).is_ok_and(|d| d == content.as_bytes())
    });
}
