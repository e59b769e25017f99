//! Crash safety: SIGKILL in the middle of copying large files must never
//! leave a torn file under its final name, and a rerun must converge.

mod util;

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use util::*;

const FILES: usize = 8;
const FILE_LEN: usize = 64 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;

/// Relative names of the big files (two live in a subdirectory).
fn big_names() -> Vec<PathBuf> {
    (0..FILES)
        .map(|i| {
            if i < 6 {
                PathBuf::from(format!("big{i}.bin"))
            } else {
                PathBuf::from(format!("sub/big{i}.bin"))
            }
        })
        .collect()
}

/// Each 1 MiB chunk is a shared random block stamped with (file, chunk), so
/// any mix-up or truncation shows as a content mismatch.
fn write_big(path: &Path, file_idx: usize, block: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = BufWriter::with_capacity(CHUNK, File::create(path).unwrap());
    let mut chunk = block.to_vec();
    for c in 0..FILE_LEN / CHUNK {
        chunk[..8].copy_from_slice(&(file_idx as u64).to_le_bytes());
        chunk[8..16].copy_from_slice(&(c as u64).to_le_bytes());
        w.write_all(&chunk).unwrap();
    }
    w.flush().unwrap();
}

/// Race-tolerant recursive listing of names (entries may be renamed or
/// removed while we look).
fn scan_names(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(r.clone());
            }
            out.push(r);
        }
    }
    out.sort();
    out
}

/// Start a run, SIGKILL it as soon as `trigger(names in DEST)` holds, and
/// return whether it was actually killed mid-run.
fn run_and_kill(src: &Path, dst: &Path, trigger: impl Fn(&[PathBuf]) -> bool) -> bool {
    let p = Proc::spawn(&[OsStr::new("-q"), src.as_os_str(), dst.as_os_str()]);
    // Ending on its own first is an outcome too (the caller decides).
    p.wait_for("a temp file or a final file in DEST (or the end of the run)", Duration::from_secs(60), |p| {
        trigger(&scan_names(dst)) || p.exited().is_some()
    });
    if !p.kill9() {
        eprintln!("note: tandem finished before it could be killed ({:?})", p.exited());
        return false;
    }
    let names = scan_names(dst);
    let temps = names.iter().filter(|n| n.file_name().map(is_temp_name).unwrap_or(false)).count();
    eprintln!("killed tandem ({:?}); DEST now has {} entries, {temps} temp files", p.exited(), names.len());
    true
}

/// Every non-temporary file in DEST must be complete and identical to its
/// SOURCE counterpart; directories must exist in SOURCE too.
#[track_caller]
fn assert_no_torn_files(src: &Path, dst: &Path) {
    if !exists_nofollow(dst) {
        return;
    }
    let mut bad = Vec::new();
    for (rel, m) in walk(dst) {
        if rel.file_name().map(is_temp_name).unwrap_or(false) {
            continue;
        }
        let kind = kind_of(&m);
        let sm = fs::symlink_metadata(src.join(&rel));
        match (kind, sm) {
            (_, Err(_)) => bad.push(format!("{rel:?}: not in SOURCE ({kind:?})")),
            (Kind::File, Ok(sm)) => {
                if !sm.is_file() {
                    bad.push(format!("{rel:?}: file in DEST, not in SOURCE"));
                } else if !same_content(&src.join(&rel), &dst.join(&rel)).unwrap() {
                    bad.push(format!("{rel:?}: TORN ({} of {} bytes, or wrong content)", m.len(), sm.len()));
                }
            }
            (Kind::Dir, Ok(sm)) if sm.is_dir() => {}
            (k, Ok(_)) => bad.push(format!("{rel:?}: unexpected {k:?}")),
        }
    }
    assert!(bad.is_empty(), "DEST after SIGKILL has bad entries:\n  {}", bad.join("\n  "));
}

#[test]
fn kill_during_copy_leaves_no_torn_files() {
    let sb = Sandbox::new_fast();
    let (src, dst) = (sb.src(), sb.dst());
    let block = pseudo_random(CHUNK, 0xC0FFEE);
    for (i, name) in big_names().iter().enumerate() {
        write_big(&src.join(name), i, &block);
    }
    Tree::create(&src).file("small.txt", "small\n").stamp_all();

    // Round 1: kill as soon as anything shows up in DEST.
    let killed1 = run_and_kill(&src, &dst, |names| {
        names.iter().any(|n| n.file_name().map(is_temp_name).unwrap_or(false))
            || big_names().iter().any(|b| names.contains(b))
    });
    assert_no_torn_files(&src, &dst);

    // Round 2: from the partial state, kill once some file has landed under
    // its final name (others are typically still in flight).
    let killed2 = run_and_kill(&src, &dst, |names| big_names().iter().any(|b| names.contains(b)));
    assert_no_torn_files(&src, &dst);
    if !(killed1 || killed2) {
        skip("kill_during_copy_leaves_no_torn_files", "copies finished too fast to interrupt");
    }

    // Final run converges and cleans up temporaries.
    run_timeout([src.as_path(), dst.as_path()], Duration::from_secs(300)).ok();
    assert_trees_equal(&src, &dst);
    let leftovers: Vec<OsString> = temp_files(sb.path()).into_iter().map(|p| p.into_os_string()).collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

/// Exit status 1 (fatal): a one-shot run interrupted by SIGINT stops cleanly — the file
/// being copied is abandoned and its temporary removed, nothing is torn — and says why.
#[test]
fn sigint_during_one_shot_copy_exits_1_without_temporaries() {
    let sb = Sandbox::new_fast();
    let (src, dst) = (sb.src(), sb.dst());
    let block = pseudo_random(CHUNK, 0xBEEF);
    for (i, name) in big_names().iter().enumerate() {
        write_big(&src.join(name), i, &block);
    }
    let p = Proc::spawn(&[&src, &dst]);
    // Interrupt while a temporary is being written.
    p.wait_for("a temporary file in DEST", Duration::from_secs(60), |_| {
        scan_names(&dst).iter().any(|n| n.file_name().map(is_temp_name).unwrap_or(false))
    });
    let status = p.stop(libc::SIGINT, RUN_TIMEOUT);
    let stderr = p.stderr().join("\n");
    if status.code() == Some(0) {
        skip(
            "sigint_during_one_shot_copy_exits_1_without_temporaries",
            "the copy finished before the signal",
        );
        return;
    }
    assert_eq!(status.code(), Some(1), "interrupted run must exit 1; stderr:\n{stderr}");
    assert!(stderr.contains("interrupted"), "no word of the interruption:\n{stderr}");
    let temps: Vec<PathBuf> =
        scan_names(&dst).into_iter().filter(|n| n.file_name().map(is_temp_name).unwrap_or(false)).collect();
    assert!(temps.is_empty(), "temporaries left after SIGINT: {temps:?}");
    assert_no_torn_files(&src, &dst);
}
