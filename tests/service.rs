//! Watch mode left running as a service: DEST drift repaired (by watching DEST, by
//! `--verify-every`, by SIGHUP), `--max-delete` holding deletions instead of exiting,
//! a vanished or unmounted DEST never recreated, signals as `timeout` sends them,
//! long debounces, logs with timestamps, mounts inside SOURCE, `-x`, and the mixed
//! strategy when the inotify watch limit runs out. Real trees, real mounts, the built
//! binary; every wait has a timeout and names what it waited for.

mod util;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A test that lowers a system-wide limit runs alone; the others share.
static GATE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    GATE.write().unwrap_or_else(|e| e.into_inner())
}

fn args<'a>(flags: &'a [&'a str], src: &'a Path, dst: &'a Path) -> Vec<&'a OsStr> {
    let mut v: Vec<&OsStr> = flags.iter().map(OsStr::new).collect();
    v.push(src.as_os_str());
    v.push(dst.as_os_str());
    v
}

/// Starts `tandem --json FLAGS SRC DST` and waits for its first sync.
fn start(flags: &[&str], src: &Path, dst: &Path) -> Proc {
    let mut f = vec!["--json"];
    f.extend_from_slice(flags);
    let w = Proc::spawn(&args(&f, src, dst));
    w.wait_initial_sync(SYNC_TIMEOUT);
    w
}

/// Stops a JSON watcher with SIGINT: exit 0, a summary last, no temporaries.
fn finish(w: Proc, dst: &Path) -> Vec<Value> {
    let st = w.stop(libc::SIGINT, STOP_TIMEOUT);
    assert_eq!(st.code(), Some(0), "watcher did not exit 0 after SIGINT\n{}", w.dump());
    let evs = w.events();
    assert_eq!(evs.last().map(event_name), Some("summary"), "summary is not last\n{}", w.dump());
    let tmp = temp_files(dst);
    assert!(tmp.is_empty(), "temporaries left in DEST: {tmp:?}\n{}", w.dump());
    evs
}

fn tamper(dst: &Path) {
    fs::remove_file(dst.join("a.txt")).unwrap();
    fs::write(dst.join("b.txt"), "TAMPERED\n").unwrap();
    fs::write(dst.join("extra.txt"), "junk\n").unwrap();
    fs::set_permissions(dst.join("c.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_dir_all(dst.join("sub")).unwrap();
    fs::write(dst.join("keep/added.txt"), "added in DEST\n").unwrap();
}

fn tree(sb: &Sandbox) -> Tree {
    let t = sb.src_tree();
    t.file("a.txt", "alpha\n")
        .file("b.txt", "bravo\n")
        .file("c.txt", "charlie\n")
        .file("sub/deep/d.txt", "delta\n")
        .file("keep/k.txt", "kilo\n")
        .symlink("sub/link", "deep/d.txt");
    t.stamp_all();
    t
}

fn cycles(evs: &[Value]) -> Vec<&Value> {
    events_named(evs, "cycle")
}

#[test]
fn dest_tampering_is_repaired_by_watching_dest() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0"], &t.root, &dst);
    tamper(&dst);
    wait_synced(&w, &t.root, &dst, "DEST tampered with");
    // Each kind once more, one at a time.
    fs::write(dst.join("c.txt"), "rewritten, same size?\n").unwrap();
    wait_synced(&w, &t.root, &dst, "a rewritten file");
    // Truncated by path (truncate(2): the file is never opened, so nothing is closed
    // after writing either: only the modification is seen).
    let c = std::ffi::CString::new(dst.join("b.txt").into_os_string().into_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::truncate(c.as_ptr(), 1) }, 0, "truncate: {}", std::io::Error::last_os_error());
    wait_synced(&w, &t.root, &dst, "a file truncated by path");
    // Renamed over by someone else, from a name of tandem's own temporaries' form.
    let fake_temp = dst.join(".tandem-tmp-0-0.tmp");
    fs::write(&fake_temp, "moved in\n").unwrap();
    fs::rename(&fake_temp, dst.join("a.txt")).unwrap();
    wait_synced(&w, &t.root, &dst, "a file renamed over from a temporary's name");
    fs::create_dir(dst.join("newdir")).unwrap();
    fs::write(dst.join("newdir/x"), "x").unwrap();
    wait_synced(&w, &t.root, &dst, "a directory added in DEST");
    fs::remove_dir_all(dst.join("keep")).unwrap();
    wait_synced(&w, &t.root, &dst, "a directory removed in DEST");
    finish(w, &dst);
}

#[test]
fn own_writes_start_no_extra_cycles_or_copies() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0"], &t.root, &dst);
    let mark = w.mark();
    // Made outside SOURCE and moved in whole, so that no copy races a write.
    let staging = Tree::create(sb.join("staging"));
    for i in 0..20 {
        staging.file(format!("burst/f{i}"), format!("file {i}\n"));
    }
    fs::rename(staging.p("burst"), t.root.join("burst")).unwrap();
    wait_synced(&w, &t.root, &dst, "a burst of 20 files");
    // A marker change: its cycle comes after anything the burst's own DEST events
    // could have caused.
    sync_marker(&w, &t.root, &dst, "marker1");
    sync_marker(&w, &t.root, &dst, "marker2");
    let evs = w.events_since(mark);
    let burst: Vec<String> = paths_of(&evs, "copy").into_iter().filter(|p| p.starts_with("burst/")).collect();
    let mut unique = burst.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        (burst.len(), unique.len()),
        (20, 20),
        "the burst's files were copied more than once\n{}",
        w.dump()
    );
    finish(w, &dst);
}

#[test]
fn dest_tampering_is_repaired_by_verify_every_under_poll() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let dst = sb.dst();
    let w = start(&["--poll", "200ms", "--no-watch-dest", "--verify-every", "1s"], &t.root, &dst);
    tamper(&dst);
    wait_synced(&w, &t.root, &dst, "DEST tampered with, repaired by --verify-every");
    let evs = finish(w, &dst);
    assert!(
        cycles(&evs).iter().any(|c| c["verify"] == Value::Bool(true) && count(c, "copied") > 0),
        "no verification cycle repaired anything: {evs:?}"
    );
}

#[test]
fn sighup_asks_for_a_verification() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let dst = sb.dst();
    let w = start(&["--watch", "--no-watch-dest", "--verify-every", "0"], &t.root, &dst);
    tamper(&dst);
    // Nothing repairs DEST but SIGHUP here: prove a later cycle ran first.
    sync_marker(&w, &t.root, &dst, "marker");
    assert!(!dst.join("a.txt").exists(), "DEST repaired without SIGHUP\n{}", w.dump());
    let mark = w.mark();
    w.signal(libc::SIGHUP);
    wait_synced(&w, &t.root, &dst, "DEST repaired after SIGHUP");
    // (The cycle's event follows its last write.)
    w.wait_for("a verification cycle after SIGHUP", SYNC_TIMEOUT, |w| {
        cycles(&w.events_since(mark)).iter().any(|c| c["verify"] == Value::Bool(true))
    });
    finish(w, &dst);
}

#[test]
fn no_delete_keeps_files_added_in_dest_and_excluded_entries_are_never_touched() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    t.file(".syncignore", "*.log\n");
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0", "--no-delete"], &t.root, &dst);
    fs::write(dst.join("mine.txt"), "added in DEST\n").unwrap();
    fs::write(dst.join("app.log"), "excluded\n").unwrap();
    fs::remove_file(dst.join("b.txt")).unwrap();
    wait_synced_ignoring(
        &w,
        &t.root,
        &dst,
        &[Path::new("mine.txt"), Path::new("app.log")],
        "b.txt back",
        SYNC_TIMEOUT,
    );
    sync_marker(&w, &t.root, &dst, "marker");
    assert_eq!(fs::read(dst.join("mine.txt")).unwrap(), b"added in DEST\n");
    assert_eq!(fs::read(dst.join("app.log")).unwrap(), b"excluded\n");
    finish(w, &dst);
}

#[test]
fn max_delete_holds_deletions_in_a_running_watcher() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    for i in 0..9 {
        t.file(format!("x/f{i}"), format!("{i}\n"));
    }
    t.file("keep.txt", "keep\n");
    t.stamp_all();
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0", "--max-delete", "3"], &t.root, &dst);
    let held = dst.join("x");
    let before = snapshot(&held);
    fs::rename(t.root.join("x"), sb.join("x-away")).unwrap();
    w.wait_for("a refused event", SYNC_TIMEOUT, |w| !events_named(&w.events(), "refused").is_empty());
    // Other changes keep syncing meanwhile; the deletions stay held.
    sync_marker(&w, &t.root, &dst, "marker1");
    assert_unchanged("DEST's x while its deletion is held back", &before, &snapshot(&held));
    let evs = w.events();
    let refused = events_named(&evs, "refused");
    assert_eq!(refused.len(), 1, "refused said more than once\n{}", w.dump());
    assert_eq!(count(refused[0], "deletes"), 10, "{}", refused[0]);
    assert!(refused[0]["examples"].as_array().is_some_and(|a| !a.is_empty()), "{}", refused[0]);
    assert!(w.exited().is_none(), "the watcher stopped\n{}", w.dump());
    // Seven of nine come back: two deletions (within the limit) are left, and run.
    fs::create_dir(t.root.join("x")).unwrap();
    for i in 0..7 {
        fs::rename(sb.join(format!("x-away/f{i}")), t.root.join(format!("x/f{i}"))).unwrap();
    }
    wait_synced(&w, &t.root, &dst, "the deletions released");
    finish(w, &dst);
}

#[test]
fn initial_sync_holds_deletions_past_max_delete() {
    let _g = shared();
    // (Issue 12: watch mode no longer exits 4 here; it was `initial_sync_honours_max_delete`.)
    let sb = Sandbox::new_fast();
    sb.src_tree().file("a", "a");
    sb.dst_tree().file("x1", "1").file("x2", "2").file("x3", "3");
    let dst = sb.dst();
    let w = start(&["--watch", "--max-delete", "1"], &sb.src(), &dst);
    assert_eq!(listing(&dst), vec!["a", "x1", "x2", "x3"], "DEST after the first sync\n{}", w.dump());
    assert_eq!(events_named(&w.events(), "refused").len(), 1, "{}", w.dump());
    finish(w, &dst);
}

#[test]
fn dest_parent_removed_while_watching_is_not_recreated() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let parent = sb.join("usb");
    let dst = parent.join("backup");
    let w = start(&["--watch", "--debounce", "0"], &t.root, &dst);
    remove_any(&parent);
    t.file("new.txt", "new\n");
    w.wait_for("a notice that syncing is paused", SYNC_TIMEOUT, |w| {
        events_named(&w.events(), "notice")
            .iter()
            .any(|n| n["message"].as_str().is_some_and(|m| m.contains("paused")))
    });
    t.file("newer.txt", "newer\n");
    assert!(
        holds_within(Duration::from_secs(2), || !parent.exists()),
        "DEST's parent was recreated\n{}",
        w.dump()
    );
    fs::create_dir_all(&dst).unwrap();
    wait_synced(&w, &t.root, &dst, "DEST back");
    finish(w, &dst);
}

#[test]
fn dest_file_system_unmounted_while_watching() {
    let _g = shared();
    let test = "dest_file_system_unmounted_while_watching";
    if !is_root() {
        return skip(test, "mounting a tmpfs needs root");
    }
    let sb = Sandbox::new();
    let t = tree(&sb);
    let mnt = sb.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mount = |m: &Path| {
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(m).status();
        assert!(ok.is_ok_and(|s| s.success()), "mount tmpfs at {}", m.display());
    };
    let umount = |m: &Path| {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    };
    mount(&mnt);
    let dst = mnt.join("backup");
    let w = start(&["--watch", "--debounce", "0"], &t.root, &dst);
    umount(&mnt);
    t.file("new.txt", "new\n");
    w.wait_for("a notice that syncing is paused", SYNC_TIMEOUT, |w| {
        events_named(&w.events(), "notice")
            .iter()
            .any(|n| n["message"].as_str().is_some_and(|m| m.contains("paused")))
    });
    let bare_empty = || fs::read_dir(&mnt).map(|mut d| d.next().is_none()).unwrap_or(false);
    assert!(
        holds_within(Duration::from_secs(2), bare_empty),
        "written to the bare mount point\n{}",
        w.dump()
    );
    mount(&mnt);
    fs::create_dir(&dst).unwrap();
    wait_synced(&w, &t.root, &dst, "DEST's file system back");
    finish(w, &dst);
    umount(&mnt);
}

#[test]
fn timeout_int_and_term_exit_zero_with_a_summary_every_time() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let dst = sb.dst();
    for sig in ["INT", "TERM"] {
        for i in 0..20 {
            let out = Command::new("timeout")
                .args(["--preserve-status", "-s", sig, "0.4"])
                .arg(bin_path())
                .args(["--watch"])
                .arg(&t.root)
                .arg(&dst)
                .output()
                .expect("run timeout");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "SIG{sig} run {i}: status {:?}\n{err}", out.status);
            assert!(
                err.lines().any(|l| strip_timestamp(l).contains(" entries scanned")),
                "SIG{sig} run {i}: no summary\n{err}"
            );
        }
    }
}

#[test]
fn a_long_debounce_is_honoured() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "3s"], &t.root, &dst);
    let mark = w.mark();
    let written = Instant::now();
    t.file("one.txt", "1\n");
    std::thread::sleep(Duration::from_millis(500)); // a second write within the burst
    t.file("two.txt", "2\n");
    wait_synced(&w, &t.root, &dst, "the burst");
    // Not capped at 2 s: the burst is synced once it has been quiet 3 s, or 3 s after
    // it began (max(2 s, --debounce)), whichever comes first.
    let waited = written.elapsed();
    assert!(waited >= Duration::from_millis(2900), "synced after {waited:?}: --debounce 3s was cut short");
    // (DEST can be in step a moment before the cycle's event is printed.)
    w.wait_for("the burst's cycle event", SYNC_TIMEOUT, |w| !cycles(&w.events_since(mark)).is_empty());
    let evs = w.events_since(mark);
    assert_eq!(cycles(&evs).len(), 1, "the burst took more than one cycle\n{}", w.dump());
    finish(w, &dst);
}

#[test]
fn timestamps_on_a_log_and_in_json() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let dst = sb.dst();
    let w = Proc::spawn(&args(&["--watch", "--debounce", "0"], &t.root, &dst));
    w.wait_stderr("the first sync's line", SYNC_TIMEOUT, |l| l.starts_with("tandem: sync #1:"));
    // Moved in whole, so that it is one change (no copy races its write).
    fs::write(sb.join("new.txt"), "new\n").unwrap();
    fs::rename(sb.join("new.txt"), t.root.join("new.txt")).unwrap();
    w.wait_stderr("the second sync's line", SYNC_TIMEOUT, |l| l.starts_with("tandem: sync #2:"));
    let st = w.stop(libc::SIGTERM, STOP_TIMEOUT);
    assert_eq!(st.code(), Some(0), "{}", w.dump());
    for l in w.stderr_raw() {
        assert!(timestamp_len(&l).is_some(), "a stderr line without a timestamp: {l:?}\n{}", w.dump());
    }
    // The summary counts the sync lines it printed, numbered without gaps.
    let err = w.stderr();
    let syncs: Vec<&String> = err.iter().filter(|l| l.starts_with("tandem: sync #")).collect();
    for (i, l) in syncs.iter().enumerate() {
        assert!(l.starts_with(&format!("tandem: sync #{}:", i + 1)), "sync lines with gaps: {syncs:?}");
    }
    let last = err.last().cloned().unwrap_or_default();
    let want = format!("entries scanned at the last look; over {} syncs", syncs.len());
    assert!(last.contains(&want), "{last} (wanted {want:?})");
    // JSON: a time on every event.
    let w = start(&["--watch"], &t.root, &dst);
    let evs = finish(w, &dst);
    for e in &evs {
        let time = e["time"].as_str().unwrap_or("");
        assert!(timestamp_len(&format!("{time} ")).is_some(), "event without a time: {e}");
    }
}

/// `tree` with a bindfs mount at `share/` (of `lower/`, holding `under.txt`).
fn tree_with_share(sb: &Sandbox) -> (Tree, Tree, BindMount) {
    let t = tree(sb);
    let lower = Tree::create(sb.join("lower"));
    lower.file("under.txt", "under\n");
    let mnt = t.root.join("share");
    fs::create_dir(&mnt).unwrap();
    let m = BindMount::mount(&lower.root, &mnt);
    (t, lower, m)
}

#[test]
fn bindfs_mount_inside_source_is_polled_and_the_rest_watched() {
    let _g = shared();
    let test = "bindfs_mount_inside_source_is_polled_and_the_rest_watched";
    if let Some(why) = fuse_unavailable() {
        return skip(test, why);
    }
    let sb = Sandbox::new();
    let (t, lower, _m) = tree_with_share(&sb);
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0"], &t.root, &dst);
    let strat = events_named(&w.events(), "strategy").first().map(|s| (*s).clone()).unwrap_or_default();
    assert_eq!(strat["name"].as_str(), Some("mixed"), "{strat}\n{}", w.dump());
    wait_synced(&w, &t.root, &dst, "the initial sync");
    // Made underneath the mount: no event arrives through it.
    lower.file("made-underneath.txt", "new\n");
    t.file("local.txt", "local\n");
    wait_synced(&w, &t.root, &dst, "changes underneath the mount and beside it");
    finish(w, &dst);
}

/// Directories made and filled at once (a populated directory moved into one just
/// made, more made and written inside straight away), again and again, while SOURCE
/// is watched directory by directory (a mount inside it): what was made inside a new
/// directory before the loop could watch it still reaches DEST (each new directory is
/// looked at again once it is watched).
#[test]
fn new_directories_filled_at_once_are_mirrored_whole_when_watched_one_by_one() {
    let _g = shared();
    let test = "new_directories_filled_at_once_are_mirrored_whole_when_watched_one_by_one";
    if let Some(why) = fuse_unavailable() {
        return skip(test, why);
    }
    let sb = Sandbox::new();
    let (t, _lower, _m) = tree_with_share(&sb);
    for i in 0..40 {
        t.file(format!("stock/s{i:02}/inner/f"), format!("stock {i}\n"));
    }
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0"], &t.root, &dst);
    let strat = events_named(&w.events(), "strategy").first().map(|s| (*s).clone()).unwrap_or_default();
    assert_eq!(strat["name"].as_str(), Some("mixed"), "{strat}\n{}", w.dump());
    for i in 0..40 {
        // Keep cycles running meanwhile.
        t.file("busy", format!("{i}"));
        let new = t.p(format!("n{i:02}"));
        fs::create_dir(&new).expect("mkdir");
        fs::rename(t.p(format!("stock/s{i:02}")), new.join("moved")).expect("mv");
        fs::create_dir_all(new.join("made/deeper")).expect("mkdir -p");
        fs::write(new.join("made/deeper/g"), format!("g {i}\n")).expect("write");
    }
    wait_synced(&w, &t.root, &dst, "directories made and filled at once");
    finish(w, &dst);
}

#[test]
fn one_file_system_leaves_mount_points_empty() {
    let _g = shared();
    let test = "one_file_system_leaves_mount_points_empty";
    if let Some(why) = fuse_unavailable() {
        return skip(test, why);
    }
    let sb = Sandbox::new();
    let (t, _lower, _m) = tree_with_share(&sb);
    let dst = sb.dst();
    run(["-x".as_ref(), t.root.as_os_str(), dst.as_os_str()]).ok();
    assert!(dst.join("share").is_dir(), "the mount point is not mirrored");
    assert!(listing(&dst.join("share")).is_empty(), "-x crossed into the mount");
    assert!(dst.join("sub/deep/d.txt").is_file());
    run([t.root.as_os_str(), dst.as_os_str()]).ok();
    assert!(dst.join("share/under.txt").is_file(), "without -x the mount is mirrored");
}

/// Lowers `fs.inotify.max_user_watches` for the test's length.
struct WatchLimit {
    old: String,
}

const WATCH_LIMIT: &str = "/proc/sys/fs/inotify/max_user_watches";

impl WatchLimit {
    fn set(n: usize) -> WatchLimit {
        let old = fs::read_to_string(WATCH_LIMIT).expect("read max_user_watches");
        fs::write(WATCH_LIMIT, n.to_string()).expect("write max_user_watches");
        WatchLimit { old }
    }
}

impl Drop for WatchLimit {
    fn drop(&mut self) {
        let _ = fs::write(WATCH_LIMIT, self.old.trim());
    }
}

/// Inotify watches in use on this machine (all users: the limit is per user, and
/// tests run as one).
fn watches_in_use() -> usize {
    let mut n = 0;
    for p in fs::read_dir("/proc").into_iter().flatten().flatten() {
        for fd in fs::read_dir(p.path().join("fdinfo")).into_iter().flatten().flatten() {
            if let Ok(text) = fs::read_to_string(fd.path()) {
                n += text.lines().filter(|l| l.starts_with("inotify wd:")).count();
            }
        }
    }
    n
}

#[test]
fn a_lowered_watch_limit_gives_the_mixed_strategy() {
    let test = "a_lowered_watch_limit_gives_the_mixed_strategy";
    if !is_root() {
        return skip(test, "changing fs.inotify.max_user_watches needs root");
    }
    let _g = alone();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    for i in 0..30 {
        t.file(format!("d{i:02}/f"), format!("{i}\n"));
    }
    t.stamp_all();
    let dst = sb.dst();
    let _limit = WatchLimit::set(watches_in_use() + 10);
    let w = start(&["--watch", "--debounce", "0", "--no-watch-dest"], &t.root, &dst);
    let strat = events_named(&w.events(), "strategy").first().map(|s| (*s).clone()).unwrap_or_default();
    assert_eq!(strat["name"].as_str(), Some("mixed"), "{strat}\n{}", w.dump());
    let reason = strat["reason"].as_str().unwrap_or("");
    assert!(reason.contains("max_user_watches") && reason.contains("directories"), "{reason}");
    // Changes everywhere still arrive: native where watched, polled elsewhere.
    for i in 0..30 {
        t.file(format!("d{i:02}/g"), format!("g {i}\n"));
    }
    wait_synced(&w, &t.root, &dst, "changes in watched and unwatched directories");
    finish(w, &dst);
}

#[test]
fn a_watch_limit_reached_later_keeps_what_fits_native_and_polls_the_rest() {
    let test = "a_watch_limit_reached_later_keeps_what_fits_native_and_polls_the_rest";
    if !is_root() {
        return skip(test, "changing fs.inotify.max_user_watches needs root");
    }
    let _g = alone();
    let sb = Sandbox::new_fast();
    let t = sb.src_tree();
    for i in 0..10 {
        t.file(format!("d{i:02}/f"), format!("{i}\n"));
    }
    t.stamp_all();
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0", "--no-watch-dest"], &t.root, &dst);
    let first = events_named(&w.events(), "strategy").first().map(|s| (*s).clone()).unwrap_or_default();
    assert_eq!(first["name"].as_str(), Some("native"), "{first}\n{}", w.dump());
    // The limit runs out while running: a new tree of 31 directories cannot all be
    // watched.
    let _limit = WatchLimit::set(watches_in_use() + 5);
    for i in 0..30 {
        t.file(format!("new/n{i:02}/f"), format!("new {i}\n"));
    }
    w.wait_for("the mixed strategy", Duration::from_secs(30), |p| {
        events_named(&p.events(), "strategy").iter().any(|s| s["name"] == "mixed")
    });
    let evs = w.events();
    let mixed = events_named(&evs, "strategy").into_iter().find(|s| s["name"] == "mixed").cloned();
    let reason = mixed.unwrap_or_default()["reason"].as_str().unwrap_or("").to_string();
    assert!(reason.contains("max_user_watches") && reason.contains("polling"), "{reason}");
    wait_synced(&w, &t.root, &dst, "the new tree");
    // Changes everywhere still arrive: native where watched, polled elsewhere.
    for i in 0..10 {
        t.file(format!("d{i:02}/g"), format!("g {i}\n"));
    }
    for i in 0..30 {
        t.file(format!("new/n{i:02}/g"), format!("g {i}\n"));
    }
    wait_synced(&w, &t.root, &dst, "changes in watched and unwatched directories");
    finish(w, &dst);
}

#[test]
fn watch_summary_counts_source_entries_and_cycles() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0"], &t.root, &dst);
    for i in 0..3 {
        sync_marker(&w, &t.root, &dst, &format!("m{i}"));
    }
    let evs = finish(w, &dst);
    let s = summary(&evs);
    let entries = walk(&t.root).len() as u64 - 1; // (walk includes the root)
    assert_eq!(count(s, "scanned"), entries, "{s}");
    assert_eq!(count(s, "cycles"), cycles(&evs).len() as u64, "{s}");
    let numbers: Vec<u64> = cycles(&evs).iter().map(|c| count(c, "cycle")).collect();
    let want: Vec<u64> = (0..numbers.len() as u64).collect();
    assert_eq!(numbers, want, "cycle numbers with gaps");
}

#[test]
fn a_fatal_error_counts_in_the_summary() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    let t = tree(&sb);
    let r = run(["--json".as_ref(), t.root.as_os_str(), Path::new("/proc/self/no/such").as_os_str()]);
    let evs = r.json_events();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(count(summary(&evs), "errors") >= 1, "{r:?}");
}

#[test]
fn symlinked_directories_are_never_watched_through() {
    let _g = shared();
    let sb = Sandbox::new_fast();
    // Outside SOURCE: a tree of 40 directories that a symlink in SOURCE points to.
    let outside = Tree::create(sb.join("outside"));
    for i in 0..40 {
        outside.file(format!("o{i:02}/f"), "outside\n");
    }
    let t = sb.src_tree();
    t.file("a/x", "x\n").file("b/y", "y\n").symlink("link", &outside.root);
    t.stamp_all();
    let dst = sb.dst();
    let w = start(&["--watch", "--debounce", "0"], &t.root, &dst);
    wait_synced(&w, &t.root, &dst, "the initial sync");
    // SOURCE's three directories and DEST's three: nothing below the link, on either side.
    assert_eq!(w.inotify_watches(), vec![3, 3], "watches per inotify instance\n{}", w.dump());
    assert!(fs::symlink_metadata(dst.join("link")).unwrap().file_type().is_symlink());
    // A change beyond the link is no change in SOURCE; one inside is mirrored.
    outside.file("o00/g", "outside again\n");
    t.file("a/z", "z\n");
    wait_synced(&w, &t.root, &dst, "a change beside the link");
    finish(w, &dst);
}
