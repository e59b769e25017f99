//! Watch mode (`--watch`, `--poll`): real `tandem` processes on real temporary
//! trees, driven through `util::Proc`. Every test waits for conditions with a
//! timeout (`Proc::wait_for`), never for a fixed time: what must *not* be
//! synced is checked after a marker change made later has arrived.
//!
//! Strategies under test: native (`--watch --debounce 0`, inotify) and
//! polling (`--poll 100ms`); a bindfs FUSE mount stands in for a network
//! share (auto-detected as "poll").

mod robust;
mod util;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use robust::{seed_for, Rng};
use serde_json::Value;
use util::*;

/// How long a stopped watcher may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Test gate: timing-sensitive tests run alone, everything else shares.
// ---------------------------------------------------------------------------

static GATE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    GATE.write().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// `--watch --debounce 0`
    Native,
    /// `--poll 100ms`
    Poll,
}

impl Strategy {
    fn args(self) -> Vec<&'static str> {
        match self {
            Strategy::Native => vec!["--watch", "--debounce", "0"],
            Strategy::Poll => vec!["--poll", "100ms"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Strategy::Native => "native",
            Strategy::Poll => "poll",
        }
    }
}

// ---------------------------------------------------------------------------
// A running watcher (`util::Proc`)
// ---------------------------------------------------------------------------

/// `tandem --json STRATEGY-ARGS EXTRA... SOURCE DEST`, waiting for the
/// initial sync (cycle 0) and checking the strategy chosen.
fn start_json(strategy: Strategy, extra: &[&str], src: &Path, dst: &Path) -> Proc {
    let mut args: Vec<OsString> = vec!["--json".into()];
    args.extend(strategy.args().into_iter().map(OsString::from));
    args.extend(extra.iter().map(OsString::from));
    args.push(src.into());
    args.push(dst.into());
    let w = Proc::spawn(&args);
    w.wait_initial_sync(SYNC_TIMEOUT);
    expect_strategy(&w, strategy.name());
    w
}

fn expect_strategy(w: &Proc, name: &str) {
    let evs = w.events();
    let strat = events_named(&evs, "strategy");
    assert_eq!(strat.len(), 1, "expected one strategy event\n{}", w.dump());
    assert_eq!(
        strat[0]["name"].as_str(),
        Some(name),
        "wrong strategy (expected {name}): {}\n{}",
        strat[0],
        w.dump()
    );
    assert!(
        strat[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "strategy without reason: {}",
        strat[0]
    );
}

/// The human strategy line on stderr (`tandem: watching with ...`), once printed.
fn strategy_line(w: &Proc) -> String {
    let is_it = |l: &str| l.starts_with("tandem: watching with ");
    w.wait_for("the strategy line on stderr", SYNC_TIMEOUT, |w| w.any_stderr(is_it));
    w.stderr().into_iter().find(|l| is_it(l)).unwrap()
}

/// SIGINT, then: exit 0, a JSON summary as the last line, no temp files.
fn finish_json(w: Proc, dst: &Path) {
    let st = w.stop(libc::SIGINT, STOP_TIMEOUT);
    assert_eq!(st.code(), Some(0), "watcher did not exit 0 after SIGINT\n{}", w.dump());
    let out = w.stdout();
    let last: Value = serde_json::from_str(out.last().map(String::as_str).unwrap_or(""))
        .unwrap_or_else(|e| panic!("last stdout line is not JSON ({e})\n{}", w.dump()));
    assert_eq!(event_name(&last), "summary", "last line is not the summary\n{}", w.dump());
    assert_eq!(last["exit_code"].as_i64(), Some(0), "summary exit_code\n{}", w.dump());
    let tmp = temp_files(dst);
    assert!(tmp.is_empty(), "temporary files left in DEST: {tmp:?}\n{}", w.dump());
}

fn ino(path: &Path) -> u64 {
    lstat(path).ino()
}

/// Inode of every entry below `root` (root excluded), by relative path.
fn inodes(root: &Path) -> Vec<(PathBuf, u64)> {
    walk(root).into_iter().filter(|(r, _)| !r.as_os_str().is_empty()).map(|(r, m)| (r, m.ino())).collect()
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").trim_start_matches("./").trim_end_matches('/').to_string()
}

// ---------------------------------------------------------------------------
// 1. Every kind of change is mirrored
// ---------------------------------------------------------------------------

fn mv(t: &Tree, from: &str, to: &str) {
    fs::rename(t.p(from), t.p(to)).unwrap_or_else(|e| panic!("rename {from} -> {to}: {e}"));
}

fn every_change(strategy: Strategy) {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.file("keep.txt", "keep me\n")
        .file("other.txt", "other file\n")
        .file("d1/a.txt", "a in d1\n")
        .file("d1/sub/b.txt", "b in d1/sub\n")
        .dir("d1/empty")
        .file("d2/c.txt", "c in d2\n")
        .file_mode("exec.sh", "#!/bin/sh\n", 0o755)
        .symlink("link0", "keep.txt");
    t.stamp_all();
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(strategy, &[], &src, &dst);
    wait_synced(&w, &src, &dst, "initial sync");

    type Step = (&'static str, Box<dyn Fn(&Tree)>);
    let steps: Vec<Step> = vec![
        (
            "create file",
            Box::new(|t| {
                t.file("new.txt", "fresh\n");
            }),
        ),
        (
            "create file in new nested dirs",
            Box::new(|t| {
                t.file("n1/n2/n3/deep.txt", "deep\n");
            }),
        ),
        (
            "modify, same size",
            Box::new(|t| {
                t.rewrite("new.txt", "FRESH\n");
            }),
        ),
        (
            "modify, different size",
            Box::new(|t| {
                t.rewrite("new.txt", "a longer content now\n");
            }),
        ),
        (
            "append",
            Box::new(|t| {
                let mut f = fs::OpenOptions::new().append(true).open(t.p("keep.txt")).unwrap();
                f.write_all(b"appended line\n").unwrap();
            }),
        ),
        (
            "truncate to zero",
            Box::new(|t| {
                t.rewrite("other.txt", "");
            }),
        ),
        (
            "mtime only (touch)",
            Box::new(|t| {
                t.mtime("exec.sh", BASE_SECS + 77, 987_654_321);
            }),
        ),
        (
            "delete file",
            Box::new(|t| {
                t.remove("new.txt");
            }),
        ),
        ("rename file", Box::new(|t| mv(t, "keep.txt", "kept.txt"))),
        ("rename file across dirs", Box::new(|t| mv(t, "kept.txt", "d2/moved.txt"))),
        ("rename file over an existing file", Box::new(|t| mv(t, "d2/c.txt", "d2/moved.txt"))),
        ("rename directory with contents", Box::new(|t| mv(t, "d1", "d1-renamed"))),
        ("move directory into another", Box::new(|t| mv(t, "d1-renamed", "d2/inner"))),
        (
            "mkdir",
            Box::new(|t| {
                t.dir("empty1");
            }),
        ),
        (
            "mkdir -p",
            Box::new(|t| {
                t.dir("e/f/g");
            }),
        ),
        (
            "recursive delete",
            Box::new(|t| {
                t.remove("d2");
            }),
        ),
        (
            "chmod file",
            Box::new(|t| {
                t.chmod("other.txt", 0o600);
            }),
        ),
        (
            "chmod file +x",
            Box::new(|t| {
                t.chmod("other.txt", 0o755);
            }),
        ),
        (
            "chmod dir",
            Box::new(|t| {
                t.chmod("e/f", 0o700);
            }),
        ),
        (
            "symlink create",
            Box::new(|t| {
                t.symlink("link1", "other.txt");
            }),
        ),
        (
            "symlink re-point (rm + ln)",
            Box::new(|t| {
                t.symlink("link1", "exec.sh");
            }),
        ),
        (
            "symlink re-point (atomic rename)",
            Box::new(|t| {
                symlink("e/f/g", t.p(".link1.new")).unwrap();
                mv(t, ".link1.new", "link1");
            }),
        ),
        (
            "dangling symlink",
            Box::new(|t| {
                t.symlink("dangling", "no/such/file");
            }),
        ),
        (
            "symlink to a directory",
            Box::new(|t| {
                t.symlink("dirlink", "e");
            }),
        ),
        (
            "file -> dir",
            Box::new(|t| {
                t.remove("other.txt");
                t.file("other.txt/inside.txt", "now a directory\n");
            }),
        ),
        (
            "dir -> file",
            Box::new(|t| {
                t.remove("n1");
                t.file("n1", "now a file\n");
            }),
        ),
        (
            "symlink -> file",
            Box::new(|t| {
                t.file("link0", "was a symlink\n");
            }),
        ),
        (
            "file -> symlink",
            Box::new(|t| {
                t.symlink("exec.sh", "link0");
            }),
        ),
        (
            "dir -> symlink",
            Box::new(|t| {
                t.remove("empty1");
                t.symlink("empty1", "e");
            }),
        ),
        (
            "several changes at once",
            Box::new(|t| {
                t.file("batch/1", "1").file("batch/2", "22").symlink("batch/3", "1");
                t.remove("e");
                t.rewrite("n1", "now a file, rewritten\n");
                t.chmod("batch", 0o750);
            }),
        ),
    ];
    for (label, step) in &steps {
        step(&t);
        wait_synced(&w, &src, &dst, &format!("{} / {label}", strategy.name()));
    }
    finish_json(w, &dst);
}

#[test]
fn native_mirrors_every_kind_of_change() {
    every_change(Strategy::Native);
}

#[test]
fn poll_mirrors_every_kind_of_change() {
    every_change(Strategy::Poll);
}

// ---------------------------------------------------------------------------
// 2. Renames are renames (inodes kept, `rename` events)
// ---------------------------------------------------------------------------

const RENAME_BIG: usize = 50 * 1024 * 1024;
const RENAME_FILES: usize = 2000;

fn renames_are_renames(strategy: Strategy, extra: &[&str]) {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.file("a/big.bin", pseudo_random(RENAME_BIG, 7)).dir("b");
    for i in 0..RENAME_FILES {
        t.file(format!("many/s{:02}/f{i:04}.txt", i / 100), format!("file {i}\n"));
    }
    t.stamp_all();
    let (src, dst) = (sb.src(), sb.dst());
    // Native: the default debounce (renames across directories arrive as two events).
    let mut args: Vec<&str> = vec!["--json"];
    args.extend(match strategy {
        Strategy::Native => vec!["--watch"],
        Strategy::Poll => vec!["--poll", "100ms"],
    });
    args.extend(extra);
    let srcs = src.to_str().unwrap().to_string();
    let dsts = dst.to_str().unwrap().to_string();
    args.push(&srcs);
    args.push(&dsts);
    let w = Proc::spawn(&args);
    w.wait_initial_sync(SYNC_TIMEOUT);
    expect_strategy(&w, strategy.name());
    wait_synced(&w, &src, &dst, "initial sync");

    let check = |w: &Proc, mark: usize, from: &str, to: &str| {
        // DEST can match before tandem has printed the events of that cycle: wait for
        // the end of the cycle that did the rename.
        w.wait_for_explained(
            &format!("[{}] a rename event to {to} and the end of its cycle", strategy.name()),
            Duration::from_secs(10),
            |w| {
                let evs = w.events_since(mark);
                events_named(&evs, "rename").iter().any(|e| s(e, "path") == to)
                    && events_named(&evs, "cycle").iter().any(|c| c["renamed"].as_u64().unwrap_or(0) > 0)
            },
            || {
                let evs = w.events_since(mark);
                format!(
                    "events after the rename:\n  {}",
                    evs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  ")
                )
            },
        );
        let evs = w.events_since(mark);
        let renames: Vec<&Value> = events_named(&evs, "rename");
        assert!(
            renames.iter().any(|e| s(e, "from") == from && s(e, "path") == to),
            "[{}] no rename event {from} -> {to}; events after the rename:\n  {}\n{}",
            strategy.name(),
            evs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "),
            w.dump()
        );
        let copies: Vec<String> = events_named(&evs, "copy")
            .into_iter()
            .map(|e| s(e, "path"))
            .filter(|p| p == to || p.starts_with(&format!("{to}/")))
            .collect();
        assert!(
            copies.is_empty(),
            "[{}] renamed entries were copied again: {copies:?}\n{}",
            strategy.name(),
            w.dump()
        );
    };

    // A 50 MiB file, renamed in place, then moved to another directory.
    for (from, to) in [("a/big.bin", "a/big-renamed.bin"), ("a/big-renamed.bin", "b/big-moved.bin")] {
        let before = ino(&dst.join(from));
        let mark = w.mark();
        mv(&t, from, to);
        wait_synced(&w, &src, &dst, &format!("{} / rename {from} -> {to}", strategy.name()));
        check(&w, mark, from, to);
        assert_eq!(
            ino(&dst.join(to)),
            before,
            "[{}] DEST {to} has a new inode (was copied)",
            strategy.name()
        );
    }

    // A directory of 2,000 files, moved into another directory under a new name.
    let before = inodes(&dst.join("many"));
    let dir_ino = ino(&dst.join("many"));
    let mark = w.mark();
    mv(&t, "many", "b/many-moved");
    wait_synced(&w, &src, &dst, &format!("{} / rename many -> b/many-moved", strategy.name()));
    check(&w, mark, "many", "b/many-moved");
    assert_eq!(
        ino(&dst.join("b/many-moved")),
        dir_ino,
        "[{}] DEST directory has a new inode",
        strategy.name()
    );
    let after = inodes(&dst.join("b/many-moved"));
    assert_eq!(after.len(), before.len());
    let changed: Vec<&PathBuf> =
        before.iter().zip(&after).filter(|(a, b)| a != b).map(|(a, _)| &a.0).collect();
    assert!(changed.is_empty(), "[{}] entries with new inodes after the move: {changed:?}", strategy.name());
    finish_json(w, &dst);
}

#[test]
fn native_renames_keep_inodes() {
    renames_are_renames(Strategy::Native, &[]);
}

#[test]
fn poll_renames_keep_inodes() {
    renames_are_renames(Strategy::Poll, &[]);
}

/// `mv d/x y` where `y` exists (rename(2) replaces it): a directory over an
/// empty directory, then over an entry of another type (file <-> symlink).
fn rename_over_other_type(strategy: Strategy) {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.symlink("d/link", "somewhere")
        .file("d/file", "a file\n")
        .file("b", "b is a file\n")
        .symlink("g", "g is a symlink")
        .file("k", "keep\n")
        .file("d/sub/inner.txt", "inner\n")
        .dir("e");
    t.stamp_all();
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(strategy, &[], &src, &dst);
    wait_synced(&w, &src, &dst, "initial sync");
    mv(&t, "d/sub", "e"); // a directory replaces an empty directory
    wait_synced(&w, &src, &dst, &format!("{} / mv d/sub e (dir over an empty dir)", strategy.name()));
    mv(&t, "d/link", "b"); // a symlink replaces a file
    wait_synced(&w, &src, &dst, &format!("{} / mv d/link b (symlink over a file)", strategy.name()));
    mv(&t, "d/file", "g"); // a file replaces a symlink
    wait_synced(&w, &src, &dst, &format!("{} / mv d/file g (file over a symlink)", strategy.name()));
    finish_json(w, &dst);
}

#[test]
fn native_rename_over_entry_of_other_type() {
    rename_over_other_type(Strategy::Native);
}

#[test]
fn poll_rename_over_entry_of_other_type() {
    rename_over_other_type(Strategy::Poll);
}

/// A symlink whose mtime changes and which is moved within one cycle: the
/// rename in DEST must also carry the new mtime.
fn symlink_touched_then_moved(watch_args: &[&str], tag: &str) {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.symlink("a/link", "target").dir("b").file("k", "keep\n");
    t.stamp_all();
    let (src, dst) = (sb.src(), sb.dst());
    let mut args: Vec<OsString> = vec!["--json".into()];
    args.extend(watch_args.iter().map(OsString::from));
    args.push(src.clone().into());
    args.push(dst.clone().into());
    let w = Proc::spawn(&args);
    w.wait_initial_sync(SYNC_TIMEOUT);
    wait_synced(&w, &src, &dst, "initial sync");
    t.mtime("a/link", BASE_SECS + 12_345, 678_901_234);
    mv(&t, "a/link", "b/moved");
    wait_synced(&w, &src, &dst, &format!("{tag} / touch -h a/link; mv a/link b/moved"));
    finish_json(w, &dst);
}

/// Entries made in a directory just before the directory is renamed: a cycle reads
/// the directory at its old name (seeing the new entries; a large directory takes a
/// few milliseconds), the rename lands, and the cycle then reads the parent without
/// it and the new parent with it. The rename is done in DEST first; the plan made for
/// the old name must then be done at the new one, or those entries are missing in
/// DEST until a verification (without that, this failed on this machine every time,
/// with `DEST/p1/d: No such file or directory` among its errors). The renames are
/// timed to land after the debounce at varied offsets, so that some fall inside the
/// read.
#[test]
fn native_entries_made_just_before_their_directory_is_renamed() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    const N: usize = 24;
    for i in 0..N {
        for f in 0..3000 {
            t.file(format!("p{i}/d/f{f}"), "");
        }
        t.dir(format!("q{i}"));
    }
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(Strategy::Native, &["--debounce", "30ms"], &src, &dst);
    wait_synced(&w, &src, &dst, "initial sync");
    for i in 0..N {
        t.file(format!("p{i}/d/new"), format!("new {i}\n")).symlink(format!("p{i}/d/link"), "f0");
        t.file(format!("p{i}/x"), "x\n").file(format!("q{i}/y"), "y\n");
        // After the debounce, at offsets from 30 to 76 ms (the workload's timing, not
        // a wait for a condition), then time for that cycle before the next pair.
        std::thread::sleep(Duration::from_micros(30_000 + i as u64 * 2_000));
        mv(&t, &format!("p{i}/d"), &format!("q{i}/e"));
        std::thread::sleep(Duration::from_millis(150));
    }
    wait_synced(&w, &src, &dst, "entries made, then their directory renamed");
    finish_json(w, &dst);
}

#[test]
fn native_symlink_touched_then_moved() {
    symlink_touched_then_moved(&["--watch"], "native");
}

#[test]
fn poll_symlink_touched_then_moved() {
    symlink_touched_then_moved(&["--poll", "100ms"], "poll");
}

// ---------------------------------------------------------------------------
// 3. Randomized sequences converge
// ---------------------------------------------------------------------------

/// Applies random operations to SOURCE. Every content write gives the file a
/// size it never had before, so that "same size, same coarse mtime" (which no
/// size+mtime comparison can see) never arises.
struct Fuzzer {
    rng: Rng,
    root: PathBuf,
    writes: u64,
    names: u64,
    log: Vec<String>,
}

impl Fuzzer {
    /// Everything in SOURCE except `anchor`, which is never touched: an empty
    /// SOURCE would (rightly) stop the syncs, see the empty-SOURCE guard.
    fn entries(&self) -> Vec<(PathBuf, Kind)> {
        walk(&self.root)
            .into_iter()
            .filter(|(r, _)| r != Path::new("anchor"))
            .map(|(r, m)| (r, kind_of(&m)))
            .collect()
    }

    fn content(&mut self) -> Vec<u8> {
        self.writes += 1;
        let len = self.writes as usize * 16 + self.rng.below(16);
        pseudo_random(len, self.rng.next())
    }

    fn name(&mut self) -> String {
        // A small pool (collisions, type changes) or a fresh name.
        if self.rng.below(3) == 0 {
            format!("p{}", self.rng.below(6))
        } else {
            self.names += 1;
            format!("n{}", self.names)
        }
    }

    fn step(&mut self) {
        let all = self.entries();
        let dirs: Vec<PathBuf> = all
            .iter()
            .filter(|(r, k)| *k == Kind::Dir && r.components().count() < 4)
            .map(|(r, _)| r.clone())
            .collect();
        let files: Vec<PathBuf> =
            all.iter().filter(|(_, k)| *k == Kind::File).map(|(r, _)| r.clone()).collect();
        let nondirs: Vec<PathBuf> =
            all.iter().filter(|(_, k)| *k != Kind::Dir).map(|(r, _)| r.clone()).collect();
        let subdirs: Vec<PathBuf> = all
            .iter()
            .filter(|(r, k)| *k == Kind::Dir && !r.as_os_str().is_empty())
            .map(|(r, _)| r.clone())
            .collect();
        let others: Vec<PathBuf> =
            all.iter().filter(|(r, _)| !r.as_os_str().is_empty()).map(|(r, _)| r.clone()).collect();
        let root = self.root.clone();
        let p = |r: &Path| root.join(r);
        let dir = self.rng.pick(&dirs).cloned().unwrap_or_default();
        let roll = self.rng.below(100);
        let desc = match roll {
            // create (or replace anything by) a file
            0..=19 => {
                let rel = dir.join(self.name());
                let data = self.content();
                remove_any(&p(&rel));
                fs::write(p(&rel), data).unwrap();
                format!("create {rel:?}")
            }
            // modify in place (rewrite or append)
            20..=34 => {
                let Some(rel) = self.rng.pick(&files).cloned() else { return };
                let data = self.content();
                if self.rng.below(2) == 0 {
                    fs::write(p(&rel), data).unwrap();
                    format!("rewrite {rel:?}")
                } else {
                    let mut f = fs::OpenOptions::new().append(true).open(p(&rel)).unwrap();
                    f.write_all(&data).unwrap();
                    format!("append {rel:?}")
                }
            }
            // save like an editor: write a temp file, rename it over the file
            35..=38 => {
                let Some(rel) = self.rng.pick(&files).cloned() else { return };
                let data = self.content();
                let tmp = rel.with_file_name(".swp-save");
                fs::write(p(&tmp), data).unwrap();
                fs::rename(p(&tmp), p(&rel)).unwrap();
                format!("save {rel:?}")
            }
            // delete a file or symlink
            39..=46 => {
                let Some(rel) = self.rng.pick(&nondirs).cloned() else { return };
                fs::remove_file(p(&rel)).unwrap();
                format!("rm {rel:?}")
            }
            // rename anything anywhere
            47..=58 => {
                let Some(from) = self.rng.pick(&others).cloned() else { return };
                let to = dir.join(self.name());
                if to.starts_with(&from) {
                    return;
                }
                let from_dir = lstat(&p(&from)).is_dir();
                match fs::symlink_metadata(p(&to)) {
                    // rename(2) replaces non-directories, and empty directories by directories
                    Ok(m) if m.is_dir() != from_dir => return,
                    Ok(m) if m.is_dir() && fs::read_dir(p(&to)).unwrap().next().is_some() => return,
                    _ => {}
                }
                fs::rename(p(&from), p(&to)).unwrap_or_else(|e| panic!("rename {from:?} -> {to:?}: {e}"));
                format!("mv {from:?} {to:?}")
            }
            // mkdir
            59..=66 => {
                let rel = dir.join(self.name());
                if exists_nofollow(&p(&rel)) {
                    return;
                }
                fs::create_dir(p(&rel)).unwrap();
                format!("mkdir {rel:?}")
            }
            // rm -r
            67..=70 => {
                let Some(rel) = self.rng.pick(&subdirs).cloned() else { return };
                fs::remove_dir_all(p(&rel)).unwrap();
                format!("rm -r {rel:?}")
            }
            // chmod
            71..=78 => {
                let Some(rel) = self.rng.pick(&others).cloned() else { return };
                let m = lstat(&p(&rel));
                let mode = if m.is_dir() {
                    [0o755, 0o700, 0o750, 0o775][self.rng.below(4)]
                } else if m.is_file() {
                    [0o644, 0o600, 0o755, 0o640, 0o700][self.rng.below(5)]
                } else {
                    return;
                };
                chmod(&p(&rel), mode);
                format!("chmod {mode:o} {rel:?}")
            }
            // symlink: new, or re-point an existing one; sometimes dangling
            79..=88 => {
                let target = match self.rng.pick(&others) {
                    Some(t) if self.rng.below(4) != 0 => t.clone(),
                    _ => PathBuf::from(format!("missing/{}", self.rng.below(100))),
                };
                let rel = match self.rng.pick(&all) {
                    Some((r, Kind::Symlink)) if self.rng.below(2) == 0 => r.clone(),
                    _ => dir.join(self.name()),
                };
                if lstat_is_dir(&p(&rel)) {
                    return;
                }
                remove_any(&p(&rel));
                symlink(&target, p(&rel)).unwrap();
                format!("ln -s {target:?} {rel:?}")
            }
            // explicit mtime (touch -d)
            89..=94 => {
                let Some(rel) = self.rng.pick(&all).map(|(r, _)| r.clone()) else { return };
                let secs = BASE_SECS + self.rng.below(1_000_000) as i64;
                let nanos = self.rng.below(1_000_000_000) as u32;
                set_mtime(&p(&rel), secs, nanos);
                format!("touch {rel:?}")
            }
            // a file becomes a directory (or the reverse)
            _ => {
                let Some(rel) = self.rng.pick(&others).cloned() else { return };
                let was_dir = lstat(&p(&rel)).is_dir();
                remove_any(&p(&rel));
                if was_dir {
                    let data = self.content();
                    fs::write(p(&rel), data).unwrap();
                    format!("dir->file {rel:?}")
                } else {
                    fs::create_dir(p(&rel)).unwrap();
                    let data = self.content();
                    fs::write(p(&rel).join("inner"), data).unwrap();
                    format!("->dir {rel:?}")
                }
            }
        };
        self.log.push(desc);
    }
}

fn lstat_is_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false)
}

fn randomized(strategy: Strategy) {
    let _g = shared();
    let test = format!("{}_random_operations_converge", strategy.name());
    let seed = seed_for(&test);
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.file("anchor", "never touched\n").file("seed.txt", "x").file("d/one", "1").dir("d/e");
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(strategy, &[], &src, &dst);
    wait_synced(&w, &src, &dst, "initial sync");
    let mut fz = Fuzzer { rng: Rng::new(seed), root: src.clone(), writes: 0, names: 0, log: Vec::new() };
    const ROUNDS: usize = 6;
    const OPS: usize = 150;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let from = fz.log.len();
        for _ in 0..OPS {
            fz.step();
            // Mostly no pause; sometimes a few milliseconds.
            if fz.rng.below(100) < 15 {
                std::thread::sleep(Duration::from_millis(1 + fz.rng.below(5) as u64));
            }
        }
        let ops = &fz.log[from..];
        let keep = if std::env::var_os("TANDEM_TEST_FULL_OUTPUT").is_some() { ops.len() } else { 40 };
        let last = ops[ops.len().saturating_sub(keep)..].join("; ");
        wait_synced(
            &w,
            &src,
            &dst,
            &format!("{test} seed {seed} round {round}, {} ops; the last ones: {last}", ops.len()),
        );
    }
    eprintln!("{test}: {} operations mirrored in {:?}", fz.log.len(), started.elapsed());
    finish_json(w, &dst);
}

#[test]
fn native_random_operations_converge() {
    randomized(Strategy::Native);
}

#[test]
fn poll_random_operations_converge() {
    randomized(Strategy::Poll);
}

// ---------------------------------------------------------------------------
// 4. A FUSE mount (bindfs) stands in for a network share
// ---------------------------------------------------------------------------

#[test]
fn fuse_source_is_polled_and_changes_underneath_are_mirrored() {
    let _g = shared();
    let test = "fuse_source_is_polled_and_changes_underneath_are_mirrored";
    if let Some(why) = fuse_unavailable() {
        skip(test, why);
        return;
    }
    let sb = Sandbox::new();
    let lower = Tree::create(sb.join("lower"));
    lower.file("a.txt", "alpha\n").file("dir/b.txt", "beta\n").symlink("link", "a.txt");
    lower.stamp_all();
    let mnt = sb.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let _mount = BindMount::mount(&lower.root, &mnt);

    // (a) --watch picks polling by itself: JSON strategy event ...
    let dst_a = sb.join("dst-a");
    {
        let w =
            Proc::spawn(&[OsStr::new("--watch"), OsStr::new("--json"), mnt.as_os_str(), dst_a.as_os_str()]);
        w.wait_initial_sync(SYNC_TIMEOUT);
        expect_strategy(&w, "poll");
        wait_synced(&w, &lower.root, &dst_a, "fuse / initial sync (auto)");
        finish_json(w, &dst_a);
    }
    // ... and the human line on stderr.
    {
        let w = Proc::spawn(&[OsStr::new("--watch"), mnt.as_os_str(), dst_a.as_os_str()]);
        let line = strategy_line(&w);
        assert!(
            line.starts_with("tandem: watching with poll:"),
            "expected polling on FUSE, got: {line}\n{}",
            w.dump()
        );
        let st = w.stop(libc::SIGTERM, STOP_TIMEOUT);
        assert_eq!(st.code(), Some(0), "{}", w.dump());
    }

    // (b) changes made underneath the mount are mirrored by polling.
    let dst = sb.join("dst-b");
    let w = Proc::spawn(&[
        OsStr::new("--poll"),
        OsStr::new("200ms"),
        OsStr::new("--json"),
        mnt.as_os_str(),
        dst.as_os_str(),
    ]);
    w.wait_initial_sync(SYNC_TIMEOUT);
    expect_strategy(&w, "poll");
    wait_synced(&w, &lower.root, &dst, "fuse / initial sync (--poll 200ms)");
    type Step = (&'static str, Box<dyn Fn(&Tree)>);
    let steps: Vec<Step> = vec![
        (
            "create",
            Box::new(|t| {
                t.file("new.txt", "new\n").file("n/m/deep.txt", "deep\n");
            }),
        ),
        (
            "modify",
            Box::new(|t| {
                t.rewrite("a.txt", "alpha, longer now\n");
            }),
        ),
        ("rename", Box::new(|t| mv(t, "dir", "dir2"))),
        (
            "chmod + symlink",
            Box::new(|t| {
                t.chmod("new.txt", 0o600).symlink("link", "dir2/b.txt");
            }),
        ),
        (
            "delete",
            Box::new(|t| {
                t.remove("n").remove("a.txt");
            }),
        ),
    ];
    for (label, step) in &steps {
        step(&lower);
        wait_synced(&w, &lower.root, &dst, &format!("fuse / {label} underneath the mount"));
    }
    finish_json(w, &dst);
}

// ---------------------------------------------------------------------------
// 5. Bursts are grouped
// ---------------------------------------------------------------------------

#[test]
fn burst_of_writes_is_grouped() {
    let _g = exclusive();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.file("burst.txt", "initial\n").file("other.txt", "other\n");
    let (src, dst) = (sb.src(), sb.dst());
    let w = Proc::spawn(&[
        OsStr::new("--watch"),
        OsStr::new("--debounce"),
        OsStr::new("300ms"),
        OsStr::new("--json"),
        src.as_os_str(),
        dst.as_os_str(),
    ]);
    w.wait_initial_sync(SYNC_TIMEOUT);
    expect_strategy(&w, "native");
    wait_synced(&w, &src, &dst, "initial sync");
    let mark = w.mark();
    for i in 0..50 {
        t.rewrite("burst.txt", format!("write number {i} {}\n", "x".repeat(i)));
    }
    wait_synced(&w, &src, &dst, "after the burst");
    // No late cycle of the burst is still to come once a later change (the
    // marker) has been synced: look at the events up to the end of its cycle.
    sync_marker(&w, &src, &dst, "marker.txt");
    let to_marker_cycle_end = |evs: &[Value]| {
        let m = evs.iter().position(|e| event_name(e) == "copy" && s(e, "path") == "marker.txt")?;
        evs[m..].iter().position(|e| event_name(e) == "cycle").map(|c| m + c + 1)
    };
    w.wait_for("the end of the marker's cycle", SYNC_TIMEOUT, |w| {
        to_marker_cycle_end(&w.events_since(mark)).is_some()
    });
    let mut evs = w.events_since(mark);
    evs.truncate(to_marker_cycle_end(&evs).unwrap());
    let copies = events_named(&evs, "copy").into_iter().filter(|e| s(e, "path") == "burst.txt").count();
    // Each cycle: the change events before its `cycle` event.
    let mut cycles: Vec<(Vec<&Value>, &Value)> = Vec::new();
    let mut changes = Vec::new();
    for e in &evs {
        if event_name(e) == "cycle" {
            cycles.push((std::mem::take(&mut changes), e));
        } else {
            changes.push(e);
        }
    }
    // The marker's own cycle is busy with the burst only if it touched burst.txt.
    let (marker_changes, _) = cycles.pop().unwrap();
    let late = marker_changes.iter().any(|e| s(e, "path") == "burst.txt");
    let busy_cycles = cycles
        .iter()
        .filter(|(_, c)| {
            ["copied", "mkdir", "symlink", "meta", "deleted", "renamed"]
                .iter()
                .any(|k| c[*k].as_u64() > Some(0))
        })
        .count()
        + usize::from(late);
    assert!(
        copies <= 2 && busy_cycles <= 2,
        "50 quick writes gave {copies} copies of burst.txt in {busy_cycles} cycles (expected 1, at most 2)\n{}",
        w.dump()
    );
    assert!(copies >= 1, "burst.txt was never copied\n{}", w.dump());
    assert_eq!(read(&dst.join("burst.txt")), read(&src.join("burst.txt")));
    finish_json(w, &dst);
}

// ---------------------------------------------------------------------------
// 6. No starvation under continuous changes
// ---------------------------------------------------------------------------

#[test]
fn continuous_writes_do_not_starve_syncs() {
    let _g = exclusive();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.file("grow.log", "start\n");
    let (src, dst) = (sb.src(), sb.dst());
    let w = Proc::spawn(&[
        OsStr::new("--watch"),
        OsStr::new("--debounce"),
        OsStr::new("1s"),
        OsStr::new("--json"),
        src.as_os_str(),
        dst.as_os_str(),
    ]);
    w.wait_initial_sync(SYNC_TIMEOUT);
    wait_synced(&w, &src, &dst, "initial sync");
    let dst_file = dst.join("grow.log");
    let len = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut f = fs::OpenOptions::new().append(true).open(t.p("grow.log")).unwrap();
    let start = Instant::now();
    let mut last_len = len(&dst_file);
    let mut updates: Vec<Duration> = Vec::new();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(5) {
        writeln!(f, "line {i}").unwrap();
        i += 1;
        let l = len(&dst_file);
        if l != last_len {
            last_len = l;
            updates.push(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50)); // the write pace
    }
    let end = start.elapsed();
    let mut marks = vec![Duration::ZERO];
    marks.extend(&updates);
    marks.push(end);
    let worst = marks.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        worst <= Duration::from_millis(2500),
        "DEST was not updated for {worst:?} while SOURCE changed every 50ms (--debounce 1s); updates at {updates:?} within {end:?}\n{}",
        w.dump()
    );
    wait_synced(&w, &src, &dst, "after the writes stop");
    finish_json(w, &dst);
}

// ---------------------------------------------------------------------------
// 7. SIGINT / SIGTERM in the middle of copying
// ---------------------------------------------------------------------------

const STOP_BIG: usize = 200 * 1024 * 1024;
const STOP_FILES: usize = 3;

fn write_big(path: &Path, idx: usize) {
    let mut block = pseudo_random(1 << 20, 99 + idx as u64);
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    for c in 0..STOP_BIG >> 20 {
        block[..8].copy_from_slice(&(c as u64).to_le_bytes());
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

fn dest_has_temp(dst: &Path) -> bool {
    fs::read_dir(dst).map(|rd| rd.flatten().any(|e| is_temp_name(&e.file_name()))).unwrap_or(false)
}

fn stop_while_copying(sig: i32, json: bool) {
    let _g = shared();
    let sb = Sandbox::new();
    let t = sb.src_tree();
    t.file("small.txt", "small\n");
    let staging = sb.join("staging");
    fs::create_dir(&staging).unwrap();
    for i in 0..STOP_FILES {
        write_big(&staging.join(format!("big{i}.bin")), i);
    }
    let (src, dst) = (sb.src(), sb.dst());
    let mut args = vec![OsStr::new("--watch"), OsStr::new("--debounce"), OsStr::new("0")];
    if json {
        args.push(OsStr::new("--json"));
    }
    args.push(src.as_os_str());
    args.push(dst.as_os_str());
    let w = Proc::spawn(&args);
    if json {
        w.wait_initial_sync(SYNC_TIMEOUT);
    } else {
        w.wait_stderr("the strategy line", SYNC_TIMEOUT, |l| l.starts_with("tandem: watching with native"));
    }
    wait_synced(&w, &src, &dst, "initial sync");
    // Large files appear in SOURCE after the start.
    for i in 0..STOP_FILES {
        let name = format!("big{i}.bin");
        fs::rename(staging.join(&name), src.join(&name)).unwrap();
    }
    w.wait_for("tandem copying (a .tandem-*.tmp in DEST)", SYNC_TIMEOUT, |_| dest_has_temp(&dst));
    let sent = Instant::now();
    let st = w.stop(sig, STOP_TIMEOUT);
    let took = sent.elapsed();
    assert_eq!(st.code(), Some(0), "expected exit 0 after signal {sig} (took {took:?})\n{}", w.dump());
    if json {
        let last: Value = serde_json::from_str(w.stdout().last().map(String::as_str).unwrap_or(""))
            .unwrap_or_else(|e| panic!("last stdout line is not JSON ({e})\n{}", w.dump()));
        assert_eq!(event_name(&last), "summary", "no JSON summary at the end\n{}", w.dump());
    } else {
        let last = w.stderr().last().cloned().unwrap_or_default();
        assert!(
            last.starts_with("tandem: ") && last.contains("entries scanned"),
            "no summary line on stderr at the end\n{}",
            w.dump()
        );
    }
    let tmp = temp_files(&dst);
    assert!(tmp.is_empty(), "temporary files left in DEST after signal {sig}: {tmp:?}\n{}", w.dump());
    // Whatever was copied is whole.
    for i in 0..STOP_FILES {
        let name = format!("big{i}.bin");
        if exists_nofollow(&dst.join(&name)) {
            assert!(
                same_content(&src.join(&name), &dst.join(&name)).unwrap(),
                "DEST {name} is torn after signal {sig}\n{}",
                w.dump()
            );
        }
    }
    eprintln!("signal {sig}: exited after {took:?}");
}

#[test]
fn sigint_while_copying_exits_cleanly() {
    stop_while_copying(libc::SIGINT, true);
}

#[test]
fn sigterm_while_copying_exits_cleanly() {
    stop_while_copying(libc::SIGTERM, false);
}

// ---------------------------------------------------------------------------
// 8. Editing .syncignore applies at once
// ---------------------------------------------------------------------------

fn syncignore_edits(strategy: Strategy) {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.file("old.log", "old\n").file("keep.txt", "keep\n");
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(strategy, &[], &src, &dst);
    wait_synced(&w, &src, &dst, "initial sync");
    let tag = strategy.name();

    // Add the rule; wait until tandem has mirrored the rule file itself.
    t.file(".syncignore", "*.log\n");
    wait_synced(&w, &src, &dst, &format!("{tag} / .syncignore added"));

    t.file("x.log", "new log\n");
    t.rewrite("old.log", "old, modified after the rule\n");
    t.file("after.txt", "created last\n");
    let ignored = [Path::new("x.log"), Path::new("old.log")];
    wait_synced_ignoring(&w, &src, &dst, &ignored, &format!("{tag} / changes after the rule"), SYNC_TIMEOUT);
    // A later cycle (the marker's) has run: a late (wrong) copy would be there by now.
    sync_marker(&w, &src, &dst, "marker.txt");
    assert!(
        !exists_nofollow(&dst.join("x.log")),
        "[{tag}] x.log was copied although *.log is ignored\n{}",
        w.dump()
    );
    assert_eq!(
        String::from_utf8_lossy(&read(&dst.join("old.log"))),
        "old\n",
        "[{tag}] DEST old.log was updated (or removed) although *.log is ignored\n{}",
        w.dump()
    );

    // Remove the rule: everything converges, x.log appears, old.log is updated.
    t.rewrite(".syncignore", "");
    wait_synced(&w, &src, &dst, &format!("{tag} / rule removed"));
    finish_json(w, &dst);
}

#[test]
fn native_syncignore_edits_apply_at_once() {
    syncignore_edits(Strategy::Native);
}

#[test]
fn poll_syncignore_edits_apply_at_once() {
    syncignore_edits(Strategy::Poll);
}

// ---------------------------------------------------------------------------
// 9. The initial sync honours the guards
// ---------------------------------------------------------------------------

#[test]
fn initial_sync_refuses_empty_source() {
    let _g = shared();
    for watch_args in [&["--watch"][..], &["--poll", "100ms"][..]] {
        let sb = Sandbox::new_fast();
        sb.src_tree();
        sb.dst_tree().file("precious.txt", "keep\n").file("d/x", "x");
        let before = snapshot(&sb.dst());
        let mut args: Vec<OsString> = watch_args.iter().map(OsString::from).collect();
        args.push(sb.src().into());
        args.push(sb.dst().into());
        let start = Instant::now();
        let r = run_timeout(&args, Duration::from_secs(20));
        r.expect_code(4);
        assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
        assert!(r.stderr.contains("empty"), "no explanation on stderr:\n{r:?}");
        assert_unchanged("DEST after a refused watch", &before, &snapshot(&sb.dst()));
    }
}

// ---------------------------------------------------------------------------
// Human output: strategy line on stderr, -v itemizes, summary at the end
// ---------------------------------------------------------------------------

#[test]
fn human_output_in_watch_mode() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    sb.src_tree().file("first.txt", "1\n");
    let (src, dst) = (sb.src(), sb.dst());
    let w = Proc::spawn(&[
        OsStr::new("--watch"),
        OsStr::new("--debounce"),
        OsStr::new("0"),
        OsStr::new("-v"),
        src.as_os_str(),
        dst.as_os_str(),
    ]);
    let line = strategy_line(&w);
    assert!(line.starts_with("tandem: watching with native: "), "{line}\n{}", w.dump());
    wait_synced(&w, &src, &dst, "initial sync");
    fs::write(src.join("second.txt"), "2\n").unwrap();
    wait_synced(&w, &src, &dst, "second file");
    w.wait_stdout("second.txt itemized on stdout", SYNC_TIMEOUT, |l| l.contains("second.txt"));
    let st = w.stop(libc::SIGTERM, STOP_TIMEOUT);
    assert_eq!(st.code(), Some(0), "{}", w.dump());
    let last = w.stderr().last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("tandem: ") && last.contains("entries scanned"),
        "no summary line\n{}",
        w.dump()
    );
}

// ---------------------------------------------------------------------------
// Events inside an excluded directory cost nothing (native).
// ---------------------------------------------------------------------------

#[test]
fn native_changes_inside_excluded_dir_trigger_no_sync() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    sb.src_tree()
        .file(".syncignore", "node_modules/\n")
        .file("node_modules/pkg/index.js", "x")
        .file("a.txt", "a");
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(Strategy::Native, &[], &src, &dst);
    let mark = w.mark();
    for i in 0..200 {
        fs::write(src.join(format!("node_modules/pkg/f{i}.js")), format!("{i}")).unwrap();
    }
    // Then a change that matters, as one event (a rename into SOURCE): the cycle that
    // syncs it must be the only one.
    let outside = sb.path().join("b.tmp");
    fs::write(&outside, "b").unwrap();
    fs::rename(&outside, src.join("b.txt")).unwrap();
    // Events arrive in order: once the cycle that copied b.txt has ended, any
    // cycle caused by the events before it has been reported too.
    w.wait_for("b.txt in DEST", Duration::from_secs(10), |_| dst.join("b.txt").exists());
    w.wait_for("the end of the cycle that copied b.txt", Duration::from_secs(5), |w| {
        events_named(&w.events_since(mark), "cycle").iter().any(|c| c["copied"].as_u64() == Some(1))
    });
    let evs = w.events_since(mark);
    let cycles = events_named(&evs, "cycle");
    assert_eq!(cycles.len(), 1, "events inside the excluded dir caused syncs:\n{}", w.dump());
    assert!(!dst.join("node_modules").exists(), "excluded dir was mirrored");
    finish_json(w, &dst);
}

// ---------------------------------------------------------------------------
// --checksum in watch mode: idle cycles copy nothing.
// ---------------------------------------------------------------------------

#[test]
fn poll_with_checksum_idle_cycles_copy_nothing() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    sb.src_tree().file("d/a", "same size 1").file("d/b", "same size 2").file("c", "c");
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(Strategy::Poll, &["--checksum"], &src, &dst);
    let mark = w.mark();
    w.wait_for("3 poll cycles", Duration::from_secs(10), |w| {
        events_named(&w.events_since(mark), "cycle").len() >= 3
    });
    let evs = w.events_since(mark);
    assert!(events_named(&evs, "cycle").len() >= 3, "no poll cycles:\n{}", w.dump());
    assert!(events_named(&evs, "copy").is_empty(), "idle cycles copied files:\n{}", w.dump());
    // A real change is still synced.
    fs::write(src.join("d/a"), "same size X").unwrap();
    wait_synced(&w, &src, &dst, "checksum change");
    finish_json(w, &dst);
}

/// A broken `.syncignore` stops watch mode before anything changes: exit 2 and DEST
/// (here missing, with a missing parent) is not created.
#[test]
fn watch_with_bad_pattern_creates_nothing() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    sb.src_tree().file(".syncignore", "ok\n[z-a\n").file("a", "a");
    let dst = sb.path().join("new/dest");
    for mode in [&["--watch"][..], &["--poll", "100ms"][..]] {
        let mut args: Vec<OsString> = mode.iter().map(OsString::from).collect();
        args.push(sb.src().into());
        args.push(dst.clone().into());
        let r = run_timeout(&args, Duration::from_secs(20));
        r.expect_code(2);
        assert!(r.stderr.contains(".syncignore:2"), "{r:?}");
        assert!(!sb.path().join("new").exists(), "{mode:?}: DEST (or its parent) was created:\n{r:?}");
    }
}

/// `--poll 0` rescans continuously, one rescan at a time: memory stays flat and
/// SIGINT still stops it cleanly.
#[test]
fn poll_zero_rescans_continuously_and_stops_on_sigint() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    sb.src_tree().file("a", "a");
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(Strategy::Poll, &["--poll=0"], &src, &dst);
    let mark = w.mark();
    w.wait_for("continuous rescans (50 cycles)", Duration::from_secs(10), |w| {
        events_named(&w.events_since(mark), "cycle").len() >= 50
    });
    assert!(events_named(&w.events_since(mark), "cycle").len() >= 50, "no continuous rescans:\n{}", w.dump());
    fs::write(src.join("b"), "b").unwrap();
    w.wait_for("a change synced (b in DEST)", Duration::from_secs(10), |_| dst.join("b").exists());
    assert!(dst.join("b").exists(), "a change was not synced:\n{}", w.dump());
    finish_json(w, &dst);
}

/// `--backup-dir` in watch mode (both strategies): a file overwritten and a file
/// deleted in SOURCE end up in the backup directory inside DEST, which the watcher
/// leaves alone (no repair, no deletion) while DEST stays a mirror of SOURCE.
#[test]
fn backup_dir_in_watch_mode() {
    let _g = shared();
    for strategy in [Strategy::Native, Strategy::Poll] {
        let sb = Sandbox::new_fast();
        let src = sb.src_tree();
        src.file("a.txt", "one\n").file("d/b.txt", "b\n");
        let dst = sb.dst();
        let w = start_json(strategy, &["--backup-dir", ".versions", "--suffix", ".bak"], &sb.src(), &dst);
        // Replaced in one step (written aside, renamed into place), so that no cycle
        // sees a half-written version whose backup would take the name of the first.
        let next = sb.outside().join("a.txt.next");
        fs::create_dir_all(sb.outside()).expect("mkdir");
        fs::write(&next, "two, longer\n").expect("write");
        chmod(&next, 0o644);
        fs::rename(&next, sb.src().join("a.txt")).expect("rename");
        src.remove("d/b.txt");
        let old = dst.join(".versions");
        w.wait_for("backups of a.txt and d/b.txt", SYNC_TIMEOUT, |_| {
            fs::read(old.join("a.txt.bak")).is_ok_and(|c| c == b"one\n")
                && fs::read(old.join("d/b.txt.bak")).is_ok_and(|c| c == b"b\n")
        });
        w.wait_for("DEST in step", SYNC_TIMEOUT, |_| {
            tree_diff(&sb.src(), &dst, &[Path::new(".versions")]).is_empty()
        });
        finish_json(w, &dst);
        assert_eq!(read(&old.join("a.txt.bak")), b"one\n", "{strategy:?}");
        assert_eq!(read(&dst.join("a.txt")), b"two, longer\n", "{strategy:?}");
    }
}

/// A directory moved, then (before tandem's next look, and again after it) a file deep
/// inside it changed in place: its new mode and contents reach DEST under the new path
/// (soak seed 1796147959727347511 once lost such a `chmod`).
fn changed_inside_a_moved_directory(strategy: Strategy) {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.file_mode("top/a/b/c/f1", "one\n", 0o644)
        .file("top/a/b/c/f2", "two\n")
        .file("top/a/b/g", "g\n")
        .dir("other");
    t.stamp_all();
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(strategy, &[], &src, &dst);
    wait_synced(&w, &src, &dst, "initial sync");
    let name = strategy.name();
    // In one burst: the move, then changes inside the moved directory.
    mv(&t, "top/a", "other/moved");
    t.chmod("other/moved/b/c/f1", 0o600);
    let mut f2 = fs::OpenOptions::new().append(true).open(src.join("other/moved/b/c/f2")).unwrap();
    f2.write_all(b"more\n").unwrap();
    drop(f2);
    wait_synced(&w, &src, &dst, &format!("{name} / mv top/a other/moved; chmod 600 and append inside"));
    // Once the move is mirrored: again, and the directory moved back.
    t.chmod("other/moved/b/c/f1", 0o640);
    mv(&t, "other/moved", "top/back");
    t.chmod("top/back/b/g", 0o600);
    wait_synced(
        &w,
        &src,
        &dst,
        &format!("{name} / chmod 640 inside, mv other/moved top/back, chmod 600 inside"),
    );
    finish_json(w, &dst);
}

#[test]
fn native_changes_inside_a_moved_directory() {
    changed_inside_a_moved_directory(Strategy::Native);
}

#[test]
fn poll_changes_inside_a_moved_directory() {
    changed_inside_a_moved_directory(Strategy::Poll);
}

#[test]
fn native_a_directory_moved_into_a_just_moved_one_stays_watched() {
    // inotify watches inodes: when notify re-watches a moved directory's tree and
    // meets a directory moved into it whose old name's watch it has not yet
    // removed, it is given that same watch again; removing the old name then must
    // not remove it (it did: every later change inside was lost).
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    for i in 0..150 {
        t.file(format!("x0/s{i:03}/f"), "x");
    }
    t.file("y0/f", "0\n");
    t.stamp_all();
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(Strategy::Native, &[], &src, &dst);
    wait_synced(&w, &src, &dst, "initial sync");
    let (mut x, mut y) = ("x0".to_string(), "y0".to_string());
    for round in 1..=40 {
        let nx = format!("x{round}");
        mv(&t, &x, &nx);
        // A moment for notify to read the first move and start re-watching.
        std::thread::sleep(Duration::from_micros([0, 200, 500, 1000, 2000][round % 5]));
        let inside = format!("{nx}/s{:03}/y{round}", 149 - round % 50);
        mv(&t, &y, &inside);
        wait_synced(&w, &src, &dst, &format!("round {round}: mv {x} {nx}; mv {y} {inside}"));
        let mut f = fs::OpenOptions::new().append(true).open(src.join(&inside).join("f")).unwrap();
        writeln!(f, "{round}").unwrap();
        drop(f);
        t.chmod(format!("{inside}/f"), [0o644, 0o600][round % 2]);
        wait_synced(&w, &src, &dst, &format!("round {round}: append and chmod inside {inside}"));
        let ny = format!("y{round}");
        mv(&t, &inside, &ny);
        wait_synced(&w, &src, &dst, &format!("round {round}: mv {inside} {ny}"));
        (x, y) = (nx, ny);
    }
    finish_json(w, &dst);
}

/// A change made inside a directory just after it moved, while notify is still moving
/// that directory's watches to the new name (it drops the old ones once it has read
/// the batch of events holding the move, then watches the new path): tandem's second
/// look at the directory must not come before the new watches, or the change raises
/// no event and is never mirrored. Many rounds, each making the change at another
/// moment after the move (after a varying number of other changes), each behind a
/// burst of events that notify reads in the same batch as the move.
#[test]
fn native_changes_just_after_a_directory_moves() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    t.file("d0/sub/deeper/f", "0\n").file("d0/sub/g", "g\n");
    for i in 0..100 {
        t.file(format!("noise/n{i}"), "x");
    }
    t.stamp_all();
    let (src, dst) = (sb.src(), sb.dst());
    let w = start_json(Strategy::Native, &[], &src, &dst);
    wait_synced(&w, &src, &dst, "initial sync");
    // Changes to other files, without a pause, for `ms` milliseconds (notify keeps
    // reading while events keep coming: the batch holding the move goes on).
    let noise = |round: usize, ms: u64| {
        let until = Instant::now() + Duration::from_millis(ms);
        let mut i = 0;
        while i < 100 || Instant::now() < until {
            t.chmod(format!("noise/n{}", i % 100), [0o644, 0o600][(round + i / 100) % 2]);
            i += 1;
        }
    };
    let mut cur = "d0".to_string();
    for round in 1..=40 {
        noise(round, 0);
        let next = format!("d{round}");
        mv(&t, &cur, &next);
        noise(round + 1, (round as u64 * 7) % 40);
        let mut f = fs::OpenOptions::new().append(true).open(src.join(&next).join("sub/deeper/f")).unwrap();
        writeln!(f, "{round}").unwrap();
        drop(f);
        t.chmod(format!("{next}/sub/g"), [0o644, 0o600][round % 2]);
        wait_synced(&w, &src, &dst, &format!("round {round}: mv {cur} {next}; append and chmod inside"));
        cur = next;
    }
    finish_json(w, &dst);
}
