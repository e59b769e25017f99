//! Watch-mode soak: phases of random operations against `--watch` and
//! `--poll 200ms`, each followed by a quiet period in which DEST must
//! converge; the watcher's memory (VmRSS), open file descriptors and threads
//! must stay flat across phases.
//!
//! Bounded: `TANDEM_SOAK_SECS` (default 60) is the total for both tests,
//! which run side by side, so about half of it in wall time.

mod robust;
mod util;

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use robust::*;
use util::*;

/// How long DEST may take to converge after a phase.
const CONVERGE: Duration = Duration::from_secs(20);
/// Phases not counted for the memory comparison.
const WARM_UP: usize = 2;
/// The tree is kept around this many entries.
const TARGET_ENTRIES: usize = 400;

fn soak_secs() -> u64 {
    std::env::var("TANDEM_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60)
}

struct Ops {
    root: PathBuf,
    rng: Rng,
    serial: u64,
    done: u64,
    log: Vec<String>,
}

impl Ops {
    /// A fresh name each time, so per-path state inside tandem would pile up
    /// if it were never released.
    fn fresh(&mut self) -> String {
        self.serial += 1;
        format!("n{}", self.serial)
    }

    fn step(&mut self) {
        let all: Vec<(PathBuf, Kind)> = walk(&self.root)
            .into_iter()
            .filter(|(r, _)| !r.as_os_str().is_empty())
            .map(|(r, m)| (r, kind_of(&m)))
            .collect();
        let dirs: Vec<PathBuf> = std::iter::once(PathBuf::new())
            .chain(
                all.iter()
                    .filter(|(r, k)| *k == Kind::Dir && r.components().count() < 4)
                    .map(|(r, _)| r.clone()),
            )
            .collect();
        let files: Vec<PathBuf> =
            all.iter().filter(|(_, k)| *k == Kind::File).map(|(r, _)| r.clone()).collect();
        let dir = self.rng.pick(&dirs).cloned().unwrap_or_default();
        let root = self.root.clone();
        let p = |r: &Path| root.join(r);
        let shrink = all.len() > TARGET_ENTRIES;
        let roll = if shrink { 90 + self.rng.below(10) } else { self.rng.below(100) };
        match roll {
            0..=24 => {
                let rel = dir.join(self.fresh());
                let len = self.rng.below(20_000);
                fs::write(p(&rel), pseudo_random(len, self.serial)).unwrap();
                self.log.push(format!("create {rel:?}"));
            }
            25..=39 => {
                let Some(rel) = self.rng.pick(&files).cloned() else { return };
                let len = self.rng.range(1, 5000);
                let mut f = fs::OpenOptions::new().append(true).open(p(&rel)).unwrap();
                f.write_all(&pseudo_random(len, self.serial + 7)).unwrap();
                self.log.push(format!("append {rel:?}"));
            }
            40..=49 => {
                let rel = dir.join(self.fresh());
                fs::create_dir(p(&rel)).unwrap();
                for i in 0..self.rng.below(8) {
                    fs::write(p(&rel).join(format!("f{i}")), format!("file {i} of {rel:?}\n")).unwrap();
                }
                self.log.push(format!("mkdir+files {rel:?}"));
            }
            50..=61 => {
                // rename a file or a directory to a fresh name elsewhere
                let Some((from, _)) = self.rng.pick(&all).cloned() else { return };
                let to = dir.join(self.fresh());
                if to.starts_with(&from) {
                    return;
                }
                fs::rename(p(&from), p(&to)).unwrap();
                self.log.push(format!("mv {from:?} {to:?}"));
            }
            62..=69 => {
                let rel = dir.join(self.fresh());
                let target = self.rng.pick(&all).map(|(r, _)| r.clone()).unwrap_or_else(|| "dangling".into());
                symlink(&target, p(&rel)).unwrap();
                self.log.push(format!("ln -s {target:?} {rel:?}"));
            }
            70..=79 => {
                let Some(rel) = self.rng.pick(&files).cloned() else { return };
                chmod(&p(&rel), [0o644, 0o600, 0o755][self.rng.below(3)]);
                self.log.push(format!("chmod {rel:?}"));
            }
            80..=89 => {
                let Some((rel, _)) = self.rng.pick(&all).cloned() else { return };
                set_mtime(
                    &p(&rel),
                    BASE_SECS + self.rng.below(1 << 20) as i64,
                    self.rng.below(1_000_000_000) as u32,
                );
                self.log.push(format!("touch {rel:?}"));
            }
            _ => {
                let Some((rel, _)) = self.rng.pick(&all).cloned() else { return };
                remove_any(&p(&rel));
                self.log.push(format!("rm -r {rel:?}"));
            }
        }
        self.done += 1;
    }
}

fn trees_equal_now(src: &Path, dst: &Path) -> bool {
    std::panic::catch_unwind(|| tree_diff(src, dst, &[]).is_empty()).unwrap_or(false)
}

struct Sample {
    phase: usize,
    rss_kib: u64,
    fds: usize,
    threads: usize,
    ops: u64,
    converge: Duration,
}

fn soak(strategy: &[&str], test: &str) {
    let seed = seed_for(test);
    let budget = Duration::from_secs(soak_secs() / 2).max(Duration::from_secs(10));
    let sb = Sandbox::new_fast();
    let (src, dst) = (sb.src(), sb.dst());
    let t = sb.src_tree();
    for i in 0..50 {
        t.file(format!("base/d{}/f{i}", i % 5), pseudo_random(i * 100, i as u64));
    }
    let mut args: Vec<&OsStr> = vec![OsStr::new("--json")];
    args.extend(strategy.iter().map(OsStr::new));
    args.extend([src.as_os_str(), dst.as_os_str()]);
    let p = Proc::spawn(&args);
    p.wait_initial_sync(Duration::from_secs(30));
    let pid = p.pid();
    let mut ops = Ops { root: src.clone(), rng: Rng::new(seed), serial: 0, done: 0, log: Vec::new() };
    let mut samples: Vec<Sample> = Vec::new();
    let started = Instant::now();
    let mut phase = 0;
    while started.elapsed() < budget || samples.len() < WARM_UP + 3 {
        // A burst of operations (some with tiny pauses so that syncs overlap them).
        // Where this phase's events start in tandem's output.
        let phase_start = p.stdout().len();
        let burst = ops.rng.range(100, 250);
        for _ in 0..burst {
            ops.step();
            if ops.rng.chance(10) {
                std::thread::sleep(Duration::from_millis(ops.rng.range(1, 4) as u64));
            }
        }
        // Quiet: DEST must converge.
        let q = Instant::now();
        let phase_ops = ops.log.split_off(0);
        let explain = || {
            let diffs = tree_diff(&src, &dst, &[]);
            // tandem's events about the entries that differ
            let names: Vec<String> = diffs
                .iter()
                .filter_map(|d| d.split('"').nth(1))
                .filter_map(|rel| Path::new(rel).file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            let related: Vec<String> = p
                .stdout()
                .into_iter()
                .filter(|l| {
                    names.iter().any(|n| l.contains(&format!("/{n}\"")) || l.contains(&format!("\"{n}\"")))
                })
                .take(40)
                .collect();
            // And this phase's renames, errors, warnings and notices, whatever their paths.
            let kinds = ["\"rename\"", "\"error\"", "\"warning\"", "\"notice\""];
            let notable: Vec<String> = p
                .stdout()
                .into_iter()
                .skip(phase_start)
                .filter(|l| kinds.iter().any(|k| l.contains(&format!("\"event\":{k}"))))
                .take(60)
                .collect();
            format!(
                "  {}\nthis phase's operations: {}\ntandem's events about those entries:\n  {}\nthis phase's renames, errors, warnings and notices:\n  {}",
                diffs.into_iter().take(30).collect::<Vec<_>>().join("\n  "),
                phase_ops.join("; "),
                related.join("\n  "),
                notable.join("\n  "),
            )
        };
        p.wait_for_explained(
            &format!("seed {seed}, phase {phase}: DEST to converge"),
            CONVERGE,
            |_| trees_equal_now(&src, &dst),
            explain,
        );
        // A poll cycle (or a sync) may be running right now and hold a few
        // directory fds for a moment: take the least of several readings
        // spread over more than one poll interval.
        let (mut rss, mut fds, mut threads) = (u64::MAX, usize::MAX, usize::MAX);
        for _ in 0..10 {
            rss = rss.min(vm_rss_kib(pid).expect("VmRSS"));
            fds = fds.min(fd_count(pid).expect("fd count"));
            threads = threads.min(thread_count(pid).expect("thread count"));
            std::thread::sleep(Duration::from_millis(30));
        }
        let s = Sample { phase, rss_kib: rss, fds, threads, ops: ops.done, converge: q.elapsed() };
        samples.push(s);
        phase += 1;
        if samples.len() > 200 {
            break;
        }
    }
    let table: Vec<String> = samples
        .iter()
        .map(|s| {
            format!(
                "phase {:3}: {:6} ops, converged in {:5} ms, VmRSS {:6} KiB, {:3} fds, {:3} threads",
                s.phase,
                s.ops,
                s.converge.as_millis(),
                s.rss_kib,
                s.fds,
                s.threads
            )
        })
        .collect();
    let table = table.join("\n");
    eprintln!("{test}:\n{table}");
    let after = &samples[WARM_UP..];
    let first = &after[0];
    let last = after.last().unwrap();
    let limit = (first.rss_kib * 3 / 2).max(first.rss_kib + 8 * 1024);
    assert!(
        last.rss_kib <= limit,
        "seed {seed}: memory grows: VmRSS {} KiB after the last phase vs {} KiB after warm-up (limit {limit} KiB)\n{table}",
        last.rss_kib,
        first.rss_kib
    );
    let (fmin, fmax) =
        (after.iter().map(|s| s.fds).min().unwrap(), after.iter().map(|s| s.fds).max().unwrap());
    assert!(fmax - fmin <= 2, "seed {seed}: open file descriptors not flat ({fmin}..{fmax})\n{table}");
    let (tmin, tmax) =
        (after.iter().map(|s| s.threads).min().unwrap(), after.iter().map(|s| s.threads).max().unwrap());
    assert!(tmax - tmin <= 4, "seed {seed}: thread count not flat ({tmin}..{tmax})\n{table}");

    let st = p.stop(libc::SIGINT, Duration::from_secs(15));
    assert_eq!(st.code(), Some(0), "{}", p.dump());
    assert_no_panic(&p.stderr().join("\n"), &p.dump());
    let tmp = temp_files(&dst);
    assert!(tmp.is_empty(), "temporaries left: {tmp:?}");
    assert_trees_equal(&src, &dst);
}

#[test]
fn soak_native_watch() {
    soak(&["--watch", "--debounce", "0"], "soak_native_watch");
}

#[test]
fn soak_poll_200ms() {
    soak(&["--poll", "200ms"], "soak_poll_200ms");
}
