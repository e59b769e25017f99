//! Reliability under faults: SIGKILL at random moments (one-shot and watch
//! mode), DEST running out of space, SOURCE changing under the scanner and
//! the copier, and permission errors on either side.
//!
//! Real processes on real file systems; every wait is a condition polled
//! with a timeout. Randomized tests print their seed (`TANDEM_SEED=N` replays).

mod robust;
mod util;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use robust::*;
use util::*;

/// Race-tolerant walk: (relative path, metadata) of what can be seen.
fn scan(root: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = fs::read_dir(root.join(&rel)) else { continue };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            let Ok(m) = fs::symlink_metadata(root.join(&r)) else { continue };
            if m.is_dir() {
                stack.push(r.clone());
            }
            out.push((r, m));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn is_temp(rel: &Path) -> bool {
    rel.file_name().map(is_temp_name).unwrap_or(false)
}

#[track_caller]
fn assert_no_temps(dst: &Path, context: &str) {
    let t = temp_files(dst);
    assert!(t.is_empty(), "{context}: temporary files left in DEST: {t:?}");
}

// ---------------------------------------------------------------------------
// 1. SIGKILL at random moments
// ---------------------------------------------------------------------------

/// Every entry under its final name in DEST must be complete: files
/// byte-identical to SOURCE's with SOURCE's mode and mtime (they are given
/// both before the rename), symlinks with the same target, directories
/// matching SOURCE directories. Returns the problems found.
fn torn_entries(src: &Path, dst: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    if !exists_nofollow(dst) {
        return bad;
    }
    for (rel, m) in walk(dst) {
        if rel.as_os_str().is_empty() || is_temp(&rel) {
            continue;
        }
        let kind = kind_of(&m);
        let Ok(sm) = fs::symlink_metadata(src.join(&rel)) else {
            bad.push(format!("{rel:?}: {kind:?} in DEST, absent from SOURCE"));
            continue;
        };
        if kind_of(&sm) != kind {
            bad.push(format!("{rel:?}: {kind:?} in DEST, {:?} in SOURCE", kind_of(&sm)));
            continue;
        }
        match kind {
            Kind::File => {
                if !same_content(&src.join(&rel), &dst.join(&rel)).unwrap() {
                    bad.push(format!("{rel:?}: TORN ({} of {} bytes, or other content)", m.len(), sm.len()));
                } else if (m.mtime(), m.mtime_nsec()) != (sm.mtime(), sm.mtime_nsec()) {
                    bad.push(format!(
                        "{rel:?}: complete content but mtime not yet set (renamed before futimens)"
                    ));
                } else if m.mode() & 0o7777 != sm.mode() & 0o7777 {
                    bad.push(format!(
                        "{rel:?}: mode {:o} vs SOURCE {:o}",
                        m.mode() & 0o7777,
                        sm.mode() & 0o7777
                    ));
                }
            }
            Kind::Symlink
                if fs::read_link(src.join(&rel)).unwrap() != fs::read_link(dst.join(&rel)).unwrap() =>
            {
                bad.push(format!("{rel:?}: symlink target differs"));
            }
            _ => {}
        }
    }
    bad
}

/// Big files: a shared 1 MiB block stamped per MiB with (file, chunk).
fn write_big(path: &Path, idx: usize, len: usize, block: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut chunk = block.to_vec();
    for c in 0..len.div_ceil(1 << 20) {
        chunk[..8].copy_from_slice(&(idx as u64).to_le_bytes());
        chunk[8..16].copy_from_slice(&(c as u64).to_le_bytes());
        let take = (1 << 20).min(len - c * (1 << 20));
        w.write_all(&chunk[..take]).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn kill9_at_random_moments_never_tears_files() {
    const ITERATIONS: usize = 30;
    let seed = seed_for("kill9_at_random_moments_never_tears_files");
    let mut rng = Rng::new(seed);
    let sb = Sandbox::new_fast();
    let (src, dst) = (sb.src(), sb.dst());
    let t = sb.src_tree();
    // Many small files in 30 directories, a few symlinks, and four big files.
    for d in 0..30 {
        for f in 0..60 {
            let len = rng.below(6000);
            t.file_mode(
                format!("d{d:02}/f{f:02}"),
                pseudo_random(len, (d * 100 + f) as u64),
                0o640 + (f as u32 % 2),
            );
        }
        t.symlink(format!("d{d:02}/link"), format!("f{:02}", d % 60));
    }
    let block = pseudo_random(1 << 20, seed);
    let bigs = [("big/a.bin", 20usize), ("big/b.bin", 30), ("c.bin", 40), ("d07/d.bin", 50)];
    for (i, (name, mb)) in bigs.iter().enumerate() {
        write_big(&src.join(name), i, mb << 20, &block);
    }
    t.stamp_all();
    // ctime is part of the fingerprint: any write to SOURCE would show.
    let before_meta = snapshot_meta(&src);

    // Calibrate: how long does a full mirror take here?
    let started = Instant::now();
    run_timeout([&src, &dst], Duration::from_secs(120)).ok();
    let full = started.elapsed();
    assert_trees_equal(&src, &dst);
    eprintln!("full mirror takes {full:?}");

    let (mut killed, mut with_temps) = (0, 0);
    for it in 0..ITERATIONS {
        // Give the next run work to do: wipe DEST, or delete some of it.
        match rng.below(3) {
            0 => remove_any(&dst),
            _ => {
                let entries = scan(&dst);
                for (rel, _) in entries {
                    if rng.chance(40) {
                        remove_any(&dst.join(rel));
                    }
                }
            }
        }
        let delay = Duration::from_micros(rng.below(full.as_micros() as usize * 11 / 10 + 1) as u64);
        let p = Proc::spawn(&[OsStr::new("-q"), src.as_os_str(), dst.as_os_str()]);
        std::thread::sleep(delay);
        let was_running = p.kill9();
        let temps = temp_files(&dst).len();
        if was_running {
            killed += 1;
            if temps > 0 {
                with_temps += 1;
            }
        } else {
            assert_eq!(
                p.exited().and_then(|s| s.code()),
                Some(0),
                "iteration {it}: run failed\n{}",
                p.dump()
            );
        }
        let bad = torn_entries(&src, &dst);
        assert!(
            bad.is_empty(),
            "seed {seed}, iteration {it}: killed after {delay:?}; DEST has incomplete entries under final names:\n  {}",
            bad.join("\n  ")
        );
        assert_unchanged(&format!("SOURCE after iteration {it}"), &before_meta, &snapshot_meta(&src));
    }
    eprintln!("{ITERATIONS} iterations: {killed} killed mid-run ({with_temps} left temporaries)");
    assert!(killed > 0, "seed {seed}: tandem always finished before the kill; the test exercised nothing");

    run_timeout([&src, &dst], Duration::from_secs(120)).ok();
    assert_trees_equal(&src, &dst);
    assert_no_temps(&dst, "after the final run");
    assert_unchanged("SOURCE (metadata incl. ctime)", &before_meta, &snapshot_meta(&src));
}

/// SOURCE files whose content is a `stamped` version of their name; writes
/// are atomic (a staged file renamed in), so SOURCE always holds complete
/// versions and DEST must too.
struct Versioned {
    src: PathBuf,
    stage: PathBuf,
    ver: u64,
}

impl Versioned {
    fn put(&mut self, rel: &str, len: usize) {
        self.ver += 1;
        let rel = Path::new(rel);
        let data = stamped(id_of(rel), self.ver, len);
        fs::create_dir_all(self.src.join(rel).parent().unwrap()).unwrap();
        let staged = self.stage.join(format!("s{}", self.ver));
        fs::write(&staged, data).unwrap();
        fs::rename(&staged, self.src.join(rel)).unwrap();
    }
}

/// Is there a temporary in DEST's top two levels? (Cheap, race-tolerant.)
fn has_temp(dst: &Path) -> bool {
    let Ok(rd) = fs::read_dir(dst) else { return false };
    rd.flatten().any(|e| {
        is_temp_name(&e.file_name())
            || (e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                && fs::read_dir(e.path())
                    .map(|r| r.flatten().any(|e| is_temp_name(&e.file_name())))
                    .unwrap_or(false))
    })
}

/// Every file under its final name in DEST is one complete version of the
/// file of that name.
fn invalid_versions(dst: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, m) in scan(dst) {
        if m.is_file() && !is_temp(&rel) {
            if let Err(e) = check_stamped(&read(&dst.join(&rel)), id_of(&rel)) {
                bad.push(format!("{rel:?}: {e}"));
            }
        }
    }
    bad
}

#[test]
fn kill9_during_watch_sync_never_tears_files() {
    const ITERATIONS: usize = 12;
    let seed = seed_for("kill9_during_watch_sync_never_tears_files");
    let mut rng = Rng::new(seed);
    let sb = Sandbox::new_fast();
    let (src, dst) = (sb.src(), sb.dst());
    let stage = sb.join("stage");
    fs::create_dir_all(&stage).unwrap();
    let mut v = Versioned { src: src.clone(), stage, ver: 0 };
    let bigs = ["big0", "big1", "sub/big2"];
    for b in bigs {
        v.put(b, 24 << 20);
    }
    for i in 0..200 {
        v.put(&format!("small/s{}/f{i}", i % 10), rng.range(32, 9000));
    }

    let mut killed_during_sync = 0;
    for it in 0..ITERATIONS {
        let p = Proc::spawn(&[
            OsStr::new("--json"),
            OsStr::new("--watch"),
            OsStr::new("--debounce"),
            OsStr::new("0"),
            src.as_os_str(),
            dst.as_os_str(),
        ]);
        // The initial sync may itself be killed now and then.
        if rng.chance(20) {
            std::thread::sleep(Duration::from_millis(rng.below(300) as u64));
        } else {
            p.wait_initial_sync(Duration::from_secs(60));
            // A burst of changes for the watcher to sync.
            for b in bigs {
                if rng.chance(60) {
                    v.put(b, rng.range(8 << 20, 30 << 20));
                }
            }
            for _ in 0..rng.below(40) {
                let i = rng.below(300);
                let rel = format!("small/s{}/f{i}", i % 10);
                if rng.chance(20) {
                    let _ = fs::remove_file(src.join(&rel));
                } else {
                    v.put(&rel, rng.range(32, 9000));
                }
            }
            if rng.chance(50) {
                // Kill while a copy is in flight: once a temporary shows up. A
                // best-effort trigger: the burst may be synced before one is
                // seen, and the checks below hold either way.
                let extra = Duration::from_micros(rng.below(10_000) as u64);
                let _in_flight = holds_within(Duration::from_secs(5), || has_temp(&dst));
                std::thread::sleep(extra);
            } else {
                std::thread::sleep(Duration::from_millis(rng.below(100) as u64));
            }
        }
        let src_state = snapshot_meta(&src);
        assert!(p.kill9(), "iteration {it}: the watcher exited by itself\n{}", p.dump());
        if !temp_files(&dst).is_empty() {
            killed_during_sync += 1;
        }
        let bad = invalid_versions(&dst);
        assert!(
            bad.is_empty(),
            "seed {seed}, iteration {it}: after SIGKILL DEST holds files that are no complete version:\n  {}",
            bad.join("\n  ")
        );
        assert_unchanged(&format!("SOURCE after iteration {it}"), &src_state, &snapshot_meta(&src));
        assert_no_panic(&p.stderr().join("\n"), &p.dump());
    }
    eprintln!("{ITERATIONS} iterations, {killed_during_sync} killed with temporaries in flight");

    run_timeout([&src, &dst], Duration::from_secs(120)).ok();
    assert_trees_equal(&src, &dst);
    assert_no_temps(&dst, "after the final run");
}

// ---------------------------------------------------------------------------
// 2. DEST runs out of space
// ---------------------------------------------------------------------------

fn enospc_source(sb: &Sandbox) -> Tree {
    let t = sb.src_tree();
    for i in 0..6 {
        t.file(format!("big{i}.bin"), pseudo_random(3 << 20, i));
    }
    for i in 0..40 {
        t.file(format!("small/s{i:02}.txt"), format!("small file {i}\n"));
    }
    t.symlink("link", "small/s00.txt");
    t.stamp_all();
    t
}

#[test]
fn dest_out_of_space_is_reported_and_recovers() {
    let sb = Sandbox::new();
    let mnt = sb.join("mnt");
    let m = match TmpfsMount::new(&mnt, "8m") {
        Ok(m) => m,
        Err(why) => return skip("dest_out_of_space_is_reported_and_recovers", &why),
    };
    let src = sb.src();
    enospc_source(&sb);
    let dst = mnt.join("dst");
    let before = snapshot(&src);

    let r = run([&src, &dst]);
    r.expect_code(3);
    assert_no_panic(&r.stderr, &r);
    let low = r.stderr.to_lowercase();
    assert!(low.contains("no space"), "stderr does not say the device is full:\n{r:?}");
    let space_lines: Vec<&str> = r.stderr.lines().filter(|l| l.to_lowercase().contains("no space")).collect();
    for l in &space_lines {
        assert!(
            (0..6).any(|i| l.contains(&format!("big{i}.bin"))) || l.contains("small/"),
            "a no-space error line does not name a file: {l:?}\n{r:?}"
        );
    }
    assert_no_temps(&dst, "after ENOSPC");
    let bad = torn_entries(&src, &dst);
    assert!(bad.is_empty(), "incomplete files in DEST after ENOSPC:\n  {}", bad.join("\n  "));
    assert_unchanged("SOURCE", &before, &snapshot(&src));

    m.resize("64m");
    let r = run([&src, &dst]);
    r.ok();
    assert_trees_equal(&src, &dst);
    assert_no_temps(&dst, "after the run with room");
    assert_unchanged("SOURCE", &before, &snapshot(&src));
}

/// In watch mode a sync that hit ENOSPC is retried (back-off from 1 s):
/// once there is room again DEST converges without any change in SOURCE.
#[test]
fn watch_recovers_once_dest_has_room_again() {
    let sb = Sandbox::new();
    let mnt = sb.join("mnt");
    let m = match TmpfsMount::new(&mnt, "8m") {
        Ok(m) => m,
        Err(why) => return skip("watch_recovers_once_dest_has_room_again", &why),
    };
    let src = sb.src();
    enospc_source(&sb);
    let dst = mnt.join("dst");
    let p = Proc::spawn(&[
        OsStr::new("--json"),
        OsStr::new("--watch"),
        OsStr::new("--debounce"),
        OsStr::new("0"),
        src.as_os_str(),
        dst.as_os_str(),
    ]);
    p.wait_initial_sync(Duration::from_secs(30));
    let errors = p.stdout().iter().filter(|l| l.contains("\"error\"")).count();
    assert!(errors > 0, "no error events for a full DEST\n{}", p.dump());
    m.resize("64m");
    p.wait_for_explained(
        "DEST to converge within 10 s after space was freed",
        Duration::from_secs(10),
        |_| tree_diff(&src, &dst, &[]).is_empty(),
        || format!("  {}", tree_diff(&src, &dst, &[]).join("\n  ")),
    );
    let st = p.stop(libc::SIGINT, Duration::from_secs(15));
    assert_eq!(st.code(), Some(0), "{}", p.dump());
    assert_no_temps(&dst, "after the watcher stopped");
}

// ---------------------------------------------------------------------------
// 3. SOURCE changing while being scanned and copied
// ---------------------------------------------------------------------------

/// Every regular file's content is a prefix of the stream seeded by its
/// *name* (so renames and type flips keep the invariant): the mutator only
/// ever writes stream bytes at their own offsets (appends, truncations,
/// recreations), so any copy, torn or not by the source's changes, must be a
/// prefix of that stream.
fn seed_of(rel: &Path) -> u64 {
    fnv(rel.file_name().unwrap().as_bytes())
}

use std::os::unix::ffi::OsStrExt;

struct Mutator {
    root: PathBuf,
    rng: Rng,
    ops: u64,
}

impl Mutator {
    fn write_prefix(&self, rel: &Path, len: usize) {
        let p = self.root.join(rel);
        if fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false) {
            let _ = fs::remove_dir_all(&p);
        }
        let _ = fs::remove_file(&p);
        let _ = fs::write(&p, stream(seed_of(rel), 0, len));
    }

    fn step(&mut self) {
        self.ops += 1;
        let r = self.rng.below(100);
        let big = PathBuf::from(format!("big{}", self.rng.below(3)));
        let d = format!("d{}", self.rng.below(4));
        let small = PathBuf::from(format!("{d}/f{}", self.rng.below(20)));
        let root = self.root.clone();
        match r {
            // append to a big file (the most common change)
            0..=29 => {
                if let Ok(mut f) = fs::OpenOptions::new().append(true).open(root.join(&big)) {
                    if let Ok(m) = f.metadata() {
                        if m.is_file() {
                            let len = m.len();
                            if len > 12 << 20 {
                                let _ = f.set_len(1 << 20);
                            } else {
                                let _ = f.write_all(&stream(seed_of(&big), len, 256 << 10));
                            }
                        }
                    }
                } else {
                    self.write_prefix(&big, 2 << 20);
                }
            }
            // delete and recreate a file
            30..=49 => {
                let len = self.rng.below(20_000);
                self.write_prefix(&small, len);
            }
            50..=59 => {
                let _ = fs::remove_file(root.join(&small));
            }
            // a file becomes a directory, or a symlink, and back
            60..=67 => {
                let p = root.join(&small);
                let _ = fs::remove_file(&p);
                if fs::create_dir(&p).is_ok() {
                    let _ = fs::write(p.join("inner"), stream(seed_of(Path::new("inner")), 0, 100));
                }
            }
            68..=74 => {
                let p = root.join(&small);
                if fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false) {
                    let _ = fs::remove_dir_all(&p);
                } else {
                    let _ = fs::remove_file(&p);
                }
                let _ = symlink("elsewhere", &p);
            }
            75..=79 => {
                let len = self.rng.below(3 << 20);
                self.write_prefix(&big, len);
            }
            // a whole directory vanishes and comes back, or is renamed
            80..=87 => {
                let p = root.join(&d);
                let _ = fs::remove_dir_all(&p);
                let _ = fs::create_dir(&p);
                for i in 0..self.rng.below(20) {
                    self.write_prefix(&Path::new(&d).join(format!("f{i}")), 100 * i);
                }
            }
            88..=93 => {
                let other = format!("d{}", self.rng.below(4));
                let _ = fs::rename(root.join(&d), root.join(&other));
                let _ = fs::create_dir(root.join(&d));
            }
            // a directory becomes a file
            _ => {
                let p = root.join(&d);
                let _ = fs::remove_dir_all(&p);
                let _ = fs::write(&p, stream(seed_of(Path::new(&d)), 0, 5000));
                let _ = fs::remove_file(&p);
                let _ = fs::create_dir(&p);
            }
        }
    }
}

fn mutation_source(sb: &Sandbox) {
    let src = sb.src();
    let t = sb.src_tree();
    for i in 0..3 {
        let rel = PathBuf::from(format!("big{i}"));
        fs::write(src.join(&rel), stream(seed_of(&rel), 0, 4 << 20)).unwrap();
    }
    for d in 0..4 {
        for f in 0..20 {
            let rel = PathBuf::from(format!("d{d}/f{f}"));
            t.dir(format!("d{d}"));
            fs::write(src.join(&rel), stream(seed_of(&rel), 0, 1000 * f)).unwrap();
        }
    }
}

/// Files in DEST that are not a prefix-consistent version.
fn inconsistent_files(dst: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, m) in scan(dst) {
        if m.is_file() && !is_temp(&rel) {
            let data = read(&dst.join(&rel));
            if !is_stream_prefix(&data, seed_of(&rel)) {
                bad.push(format!("{rel:?}: {} bytes that SOURCE never held (torn or mixed)", data.len()));
            }
        }
    }
    bad
}

fn start_mutator(src: &Path, seed: u64) -> (Arc<AtomicBool>, Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let (stop2, ops2) = (stop.clone(), ops.clone());
    let mut m = Mutator { root: src.to_path_buf(), rng: Rng::new(seed), ops: 0 };
    let h = std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            m.step();
            ops2.store(m.ops, Ordering::Relaxed);
            if m.rng.chance(10) {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    });
    (stop, ops, h)
}

#[test]
fn source_changing_during_one_shot_runs() {
    const RUNS: usize = 15;
    let seed = seed_for("source_changing_during_one_shot_runs");
    let sb = Sandbox::new_fast();
    let (src, dst) = (sb.src(), sb.dst());
    mutation_source(&sb);
    let (stop, ops, mutator) = start_mutator(&src, seed);
    let mut codes: BTreeMap<i32, usize> = BTreeMap::new();
    let mut failure = None;
    for i in 0..RUNS {
        let r = run_timeout([&src, &dst], Duration::from_secs(60));
        *codes.entry(r.code.unwrap_or(-1)).or_default() += 1;
        let problem = if !matches!(r.code, Some(0) | Some(3)) {
            Some(format!("run {i}: exit code {:?} (expected 0 or 3)", r.code))
        } else if r.stderr.contains("panicked") || r.stderr.contains("RUST_BACKTRACE") {
            Some(format!("run {i}: panicked"))
        } else if !temp_files(&dst).is_empty() {
            Some(format!("run {i}: temporaries left in DEST: {:?}", temp_files(&dst)))
        } else {
            let bad = inconsistent_files(&dst);
            (!bad.is_empty()).then(|| format!("run {i}: inconsistent files:\n  {}", bad.join("\n  ")))
        };
        if let Some(p) = problem {
            failure = Some(format!("seed {seed}, {p}\n{r:?}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    mutator.join().unwrap();
    eprintln!("exit codes {codes:?}, {} mutations", ops.load(Ordering::Relaxed));
    if let Some(f) = failure {
        panic!("{f}");
    }
    let r = run([&src, &dst]);
    r.ok();
    assert_trees_equal(&src, &dst);
    assert_no_temps(&dst, "after the final run");
}

fn watch_with_mutator(strategy: &[&str], test: &str) {
    let seed = seed_for(test);
    let sb = Sandbox::new_fast();
    let (src, dst) = (sb.src(), sb.dst());
    mutation_source(&sb);
    let mut args: Vec<&OsStr> = vec![OsStr::new("--json")];
    args.extend(strategy.iter().map(OsStr::new));
    args.extend([src.as_os_str(), dst.as_os_str()]);
    let p = Proc::spawn(&args);
    p.wait_initial_sync(Duration::from_secs(30));
    let (stop, ops, mutator) = start_mutator(&src, seed);
    // SOURCE changes for 4 s (or until the watcher dies).
    holds_within(Duration::from_secs(4), || p.exited().is_some());
    stop.store(true, Ordering::Relaxed);
    mutator.join().unwrap();
    assert!(
        p.exited().is_none(),
        "seed {seed}: the watcher died while SOURCE was changing ({} mutations)\n{}",
        ops.load(Ordering::Relaxed),
        p.dump()
    );
    p.wait_for_explained(
        &format!("seed {seed}: DEST to converge after the changes stopped"),
        Duration::from_secs(20),
        |_| std::panic::catch_unwind(|| tree_diff(&src, &dst, &[]).is_empty()).unwrap_or(false),
        || format!("  {}", tree_diff(&src, &dst, &[]).join("\n  ")),
    );
    let st = p.stop(libc::SIGINT, Duration::from_secs(15));
    assert_eq!(st.code(), Some(0), "{}", p.dump());
    assert_no_panic(&p.stderr().join("\n"), &p.dump());
    assert_no_temps(&dst, "after the watcher stopped");
}

#[test]
fn source_changing_under_native_watch() {
    watch_with_mutator(&["--watch", "--debounce", "0"], "source_changing_under_native_watch");
}

#[test]
fn source_changing_under_poll_watch() {
    watch_with_mutator(&["--poll", "100ms"], "source_changing_under_poll_watch");
}

// ---------------------------------------------------------------------------
// 4. Permission denied
// ---------------------------------------------------------------------------

/// Restores a directory's mode on drop (so the sandbox can be removed).
struct OpenUp(Vec<PathBuf>);

impl Drop for OpenUp {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        }
    }
}

/// Error lines (stderr lines mentioning "error", or any line not from the
/// summary) must each name one of `paths`; every path must be named.
#[track_caller]
fn assert_errors_name(r: &Run, paths: &[&str]) {
    let lines: Vec<&str> =
        r.stderr.lines().filter(|l| !l.trim().is_empty() && !l.contains(" entries scanned")).collect();
    assert!(!lines.is_empty(), "no error lines at all:\n{r:?}");
    for l in &lines {
        assert!(paths.iter().any(|p| l.contains(p)), "error line names none of {paths:?}: {l:?}\n{r:?}");
    }
    for p in paths {
        assert!(lines.iter().any(|l| l.contains(p)), "no error line names {p}:\n{r:?}");
    }
}

#[test]
fn permission_denied_in_source_is_per_entry() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("ok/a.txt", "a\n")
        .file("ok/b.txt", "b\n")
        .file("top.txt", "top\n")
        .file("secret.txt", "secret\n")
        .file("nosearch/x.txt", "x\n")
        .file("nosearch/y.txt", "y\n")
        .file("nolist/z.txt", "z\n")
        .file("deep/er/hidden/w.txt", "w\n");
    src.stamp_all();
    chown_tree_for_unprivileged(sb.path());
    // First a clean mirror, so that DEST holds copies of everything.
    run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT).ok();
    assert_trees_equal(&sb.src(), &sb.dst());

    let _restore = OpenUp(vec![src.p("nosearch"), src.p("nolist"), src.p("deep/er/hidden")]);
    // secret.txt changes (so it must be read to be copied), then locks up
    src.rewrite("secret.txt", "secret, longer now\n");
    src.chmod("secret.txt", 0o000)
        .chmod("nosearch", 0o644) // can list names, cannot stat or open them
        .chmod("nolist", 0o311) // can open entries, cannot list
        .chmod("deep/er/hidden", 0o000);
    // and some real changes that must still be synced
    src.file("ok/new.txt", "new\n").file("ok/a.txt", "changed a\n");
    chown_tree_for_unprivileged(&src.p("ok"));
    let probe = {
        let mut c = std::process::Command::new("cat");
        if is_root() {
            use std::os::unix::process::CommandExt;
            c.uid(NOBODY).gid(NOBODY);
        }
        run_with(assert_cmd::Command::from_std(c), [src.p("secret.txt")], RUN_TIMEOUT)
    };
    if probe.code == Some(0) {
        return skip("permission_denied_in_source_is_per_entry", "permission bits are not enforced here");
    }

    let dst_before = snapshot(&sb.dst());
    let r = run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT);
    r.expect_code(3);
    assert_no_panic(&r.stderr, &r);
    assert_errors_name(&r, &["secret.txt", "nosearch", "nolist", "deep/er/hidden"]);
    // Everything readable is synced.
    assert_trees_equal(&sb.src().join("ok"), &sb.dst().join("ok"));
    assert_eq!(read(&sb.dst().join("top.txt")), b"top\n");
    assert_no_temps(&sb.dst(), "after permission errors");
    // What SOURCE could not be read is not taken for deleted: DEST keeps it.
    let after = snapshot(&sb.dst());
    let mut lost = Vec::new();
    for rel in ["secret.txt", "nosearch/x.txt", "nosearch/y.txt", "nolist/z.txt", "deep/er/hidden/w.txt"] {
        match (dst_before.get(Path::new(rel)), after.get(Path::new(rel))) {
            (Some(b), Some(a)) if a == b => {}
            (_, None) => lost.push(format!("{rel}: deleted from DEST")),
            (_, Some(_)) => lost.push(format!("{rel}: changed in DEST")),
        }
    }
    assert!(
        lost.is_empty(),
        "unreadable SOURCE entries were treated as gone:\n  {}\n{r:?}",
        lost.join("\n  ")
    );
}

#[test]
fn permission_denied_in_dest_is_per_entry() {
    if !is_root() {
        return skip(
            "permission_denied_in_dest_is_per_entry",
            "needs root to own DEST entries as another user",
        );
    }
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("fine/a.txt", "a\n")
        .file("fine/b/c.txt", "c\n")
        .file("locked/new.txt", "new\n")
        .file("locked/kept.txt", "kept\n")
        .dir_mode("sticky", 0o1777)
        .file("sticky/victim.txt", "source version\n")
        .file("sticky/mine.txt", "mine, new\n")
        .file("top.txt", "top\n");
    src.stamp_all();
    chown_tree_for_unprivileged(sb.path());
    // DEST: `locked` is a root-owned 0755 directory (nobody may not create
    // or delete in it); `sticky` is root's sticky 1777 directory holding a
    // root-owned file (nobody may not replace or delete it).
    let dst = sb.dst_tree();
    dst.file("fine/stale.txt", "stale\n")
        .file("locked/kept.txt", "kept\n")
        .file("locked/old.txt", "dest only\n")
        .dir_mode("sticky", 0o1777)
        .file("sticky/victim.txt", "dest version, different\n")
        .file("sticky/mine.txt", "mine, old\n");
    chown_tree_for_unprivileged(&sb.dst());
    for p in ["locked", "locked/kept.txt", "locked/old.txt", "sticky", "sticky/victim.txt"] {
        lchown(&dst.p(p), 0, 0);
    }
    dst.chmod("locked", 0o755);
    // Same mtime as SOURCE for the kept file, so only the others need work.
    let km = lstat(&src.p("locked/kept.txt"));
    dst.mtime("locked/kept.txt", km.mtime(), km.mtime_nsec() as u32).chmod("locked/kept.txt", 0o644);
    let outside_locked = snapshot(&dst.p("locked"));
    let victim = snapshot(&dst.p("sticky"))[Path::new("victim.txt")].clone();

    let r = run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT);
    r.expect_code(3);
    assert_no_panic(&r.stderr, &r);
    assert_errors_name(&r, &["locked", "sticky"]);
    assert!(r.stderr.contains("sticky/victim.txt"), "no error names sticky/victim.txt:\n{r:?}");
    assert_no_temps(&sb.dst(), "after permission errors in DEST");
    assert_trees_equal(&sb.src().join("fine"), &sb.dst().join("fine"));
    assert_eq!(read(&sb.dst().join("top.txt")), b"top\n");
    assert_eq!(
        read(&sb.dst().join("sticky/mine.txt")),
        b"mine, new\n",
        "nobody's own file in the sticky dir"
    );
    assert_unchanged("root's locked dir", &outside_locked, &snapshot(&dst.p("locked")));
    assert_eq!(
        snapshot(&dst.p("sticky"))[Path::new("victim.txt")],
        victim,
        "root's file in the sticky dir changed"
    );
}
