//! Walk a tree with one of several parallel walkers and print what was found and how long
//! it took. Every walker lstat()s every entry (hidden ones included), follows no symlinks,
//! and counts entries (the root excluded) and the total of their st_size.
//!
//!   walkers [--threads N] WALKER ROOT      one walk, one line:
//!                                          `WALKER entries=N bytes=N secs=S`
//!   walkers --list                         the walkers built in
//!
//! WALKER: rayon (hand-written: one rayon task per directory, readdir + fstatat through the
//! open directory, like tandem's src/snapshot.rs), jwalk (jwalk 0.8, stat in
//! process_read_dir on its rayon pool, as dua does), ignore (ignore 0.4 WalkParallel, all
//! filters off), dua (dua-core 5, the walker under dua-cli; default feature `dua`), floor
//! (Linux: one thread, nothing but getdents64, one fstatat per entry through the open
//! directory and openat per subdirectory, nothing allocated per entry: the kernel work any
//! stat-based scan of the tree pays; `--threads` is ignored; not in `--list`: case `poll` runs it).
//! bench/bench.py (case `walkers`) runs each walker in its own process, round-robin.

#[cfg(target_os = "linux")]
mod dirents;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

#[derive(Default)]
struct Totals {
    entries: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

impl Totals {
    fn add(&self, m: &fs::Metadata) {
        self.entries.fetch_add(1, Relaxed);
        self.bytes.fetch_add(m.len(), Relaxed);
    }
}

/// One task per directory: read it, fstatat every entry through the open directory
/// (std's DirEntry::metadata on Linux), spawn a task for each subdirectory.
fn walk_rayon(root: &Path, threads: usize, t: &Totals) {
    fn dir<'s>(s: &rayon::Scope<'s>, path: PathBuf, t: &'s Totals) {
        let rd = match fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(_) => {
                t.errors.fetch_add(1, Relaxed);
                return;
            }
        };
        let mut n = 0u64;
        let mut b = 0u64;
        for e in rd {
            let Ok(e) = e else {
                t.errors.fetch_add(1, Relaxed);
                continue;
            };
            match e.metadata() {
                Ok(m) => {
                    n += 1;
                    b += m.len();
                    if m.is_dir() {
                        let p = e.path();
                        s.spawn(move |s| dir(s, p, t));
                    }
                }
                Err(_) => {
                    t.errors.fetch_add(1, Relaxed);
                }
            }
        }
        t.entries.fetch_add(n, Relaxed);
        t.bytes.fetch_add(b, Relaxed);
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.scope(|s| dir(s, root.to_path_buf(), t));
}

fn walk_jwalk(root: &Path, threads: usize, t: &Totals) {
    use jwalk::{Parallelism, WalkDirGeneric};
    // client state per entry: its lstat size (or None on error), filled on the pool.
    let walk = WalkDirGeneric::<((), Option<fs::Metadata>)>::new(root)
        .skip_hidden(false)
        .follow_links(false)
        .sort(false)
        .parallelism(Parallelism::RayonNewPool(threads))
        .process_read_dir(|_, _, _, children| {
            for c in children.iter_mut().flatten() {
                c.client_state = fs::symlink_metadata(c.path()).ok();
            }
        });
    for e in walk {
        match e {
            Ok(e) if e.depth == 0 => {}
            Ok(e) => match &e.client_state {
                Some(m) => t.add(m),
                None => {
                    t.errors.fetch_add(1, Relaxed);
                }
            },
            Err(_) => {
                t.errors.fetch_add(1, Relaxed);
            }
        }
    }
}

fn walk_ignore(root: &Path, threads: usize, t: &Totals) {
    use ignore::{WalkBuilder, WalkState};
    let walk = WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .threads(threads)
        .build_parallel();
    walk.run(|| {
        Box::new(|res| {
            match res {
                Ok(e) if e.depth() == 0 => {}
                Ok(e) => match e.metadata() {
                    Ok(m) => t.add(&m),
                    Err(_) => {
                        t.errors.fetch_add(1, Relaxed);
                    }
                },
                Err(_) => {
                    t.errors.fetch_add(1, Relaxed);
                }
            }
            WalkState::Continue
        })
    });
}

#[cfg(feature = "dua")]
fn walk_dua(root: &Path, threads: usize, t: &Totals) {
    // Metadata comes from std's DirEntry::metadata (fstatat) on dua-core's worker threads.
    let opts = dua_core::Options::default();
    for e in dua_core::walk(root, threads, dua_core::Order::Completion, opts, |_| true) {
        match e {
            Ok(e) if e.depth == 0 => {}
            Ok(e) => match e.metadata {
                Some(Ok(m)) => t.add(&m),
                _ => {
                    t.errors.fetch_add(1, Relaxed);
                }
            },
            Err(_) => {
                t.errors.fetch_add(1, Relaxed);
            }
        }
    }
}

const WALKERS: &[&str] = &[
    "rayon",
    "jwalk",
    "ignore",
    #[cfg(feature = "dua")]
    "dua",
];

/// One thread, raw system calls, nothing allocated per entry (see the module doc).
#[cfg(target_os = "linux")]
fn walk_floor(root: &Path, t: &Totals) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    fn dir(fd: libc::c_int, buf: &mut [u8], t: &Totals) {
        // (A subdirectory's listing needs a buffer of its own while this one is read.)
        let mut sub = vec![0u8; buf.len()];
        dirents::each(fd, buf, &t.errors, |name, dtype| {
            // SAFETY: a zeroed stat is a valid out-parameter.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if dtype == libc::DT_DIR {
                let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
                // SAFETY: name is a valid C string; fd an open directory.
                let c = unsafe { libc::openat(fd, name.as_ptr(), flags) };
                if c < 0 {
                    t.errors.fetch_add(1, Relaxed);
                    return;
                }
                // SAFETY: c is open.
                if unsafe { libc::fstat(c, &mut st) } == 0 {
                    t.entries.fetch_add(1, Relaxed);
                    t.bytes.fetch_add(st.st_size as u64, Relaxed);
                    dir(c, &mut sub, t);
                } else {
                    t.errors.fetch_add(1, Relaxed);
                }
                // SAFETY: c is ours.
                unsafe { libc::close(c) };
            // SAFETY: as above.
            } else if unsafe { libc::fstatat(fd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0 {
                t.entries.fetch_add(1, Relaxed);
                t.bytes.fetch_add(st.st_size as u64, Relaxed);
            } else {
                t.errors.fetch_add(1, Relaxed);
            }
        });
    }
    let Ok(path) = CString::new(root.as_os_str().as_bytes()) else { return };
    // SAFETY: path is a valid C string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        t.errors.fetch_add(1, Relaxed);
        return;
    }
    dir(fd, &mut vec![0u8; 64 << 10], t);
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        println!("{}", WALKERS.join(" "));
        return;
    }
    let mut threads = 4;
    if args.first().map(String::as_str) == Some("--threads") && args.len() > 1 {
        threads = args[1].parse().expect("--threads N");
        args.drain(..2);
    }
    let [walker, root] = &args[..] else {
        eprintln!("usage: walkers [--threads N] WALKER ROOT   (walkers: {})", WALKERS.join(" "));
        std::process::exit(2);
    };
    let root = Path::new(root);
    let t = Totals::default();
    let t0 = Instant::now();
    match walker.as_str() {
        "rayon" => walk_rayon(root, threads, &t),
        "jwalk" => walk_jwalk(root, threads, &t),
        "ignore" => walk_ignore(root, threads, &t),
        #[cfg(target_os = "linux")]
        "floor" => walk_floor(root, &t),
        #[cfg(feature = "dua")]
        "dua" => walk_dua(root, threads, &t),
        w => {
            eprintln!("unknown walker {w}; built in: {}", WALKERS.join(" "));
            std::process::exit(2);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{walker} entries={} bytes={} errors={} secs={secs:.6}",
        t.entries.load(Relaxed),
        t.bytes.load(Relaxed),
        t.errors.load(Relaxed)
    );
}
