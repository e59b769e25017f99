//! The floors of tandem's two batch cases: the system calls a one-shot run cannot do
//! without, and nothing else, so that `bench/run.sh first noop` can show how far
//! tandem is from what any tool keeping the same promises could reach here.
//!
//!   floors copy SRC DST    first mirror of SRC into the empty directory DST, exactly
//!                          as tandem's promises need it: each file written under a
//!                          temporary name in its final directory (`openat` O_CREAT |
//!                          O_EXCL with the file's mode), its data by `copy_file_range`,
//!                          the source `fstat`ed before and after (a file changed while
//!                          copied is noticed), its times set (`futimens`), then
//!                          renamed over its final name; directories made with their
//!                          mode and their times set after their contents; symlinks
//!                          copied as symlinks. No owners (the tree is the runner's own),
//!                          no ignore rules, no progress, no error is retried.
//!   floors noop SRC DST    the no-op re-run: both trees listed directory by
//!                          directory (`getdents64` on each side), every SOURCE entry
//!                          and its DEST counterpart `fstatat`ed through the open
//!                          directories and compared (kind, size, mtime, mode); DEST
//!                          entries SOURCE lacks counted. Nothing is written.
//!
//! Both run on a rayon pool of 2 threads (`--threads N` to change), one task per
//! directory, as tandem does; nothing is allocated per entry but a subdirectory's name.
//! One line out: `floor-copy entries=N differences=N errors=N secs=S` (or `floor-noop`).
//! Linux only (raw `getdents64`).

#[cfg(target_os = "linux")]
#[path = "../dirents.rs"]
mod dirents;

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::{CStr, CString};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    #[derive(Default)]
    pub struct Totals {
        pub entries: AtomicU64,
        pub differences: AtomicU64,
        pub errors: AtomicU64,
    }

    /// An open descriptor, closed when dropped.
    struct Fd(libc::c_int);

    impl Drop for Fd {
        fn drop(&mut self) {
            // SAFETY: the descriptor is ours and closed once.
            unsafe { libc::close(self.0) };
        }
    }

    const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

    fn open_at(dir: libc::c_int, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> Option<Fd> {
        // SAFETY: name is a valid C string.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) };
        (fd >= 0).then_some(Fd(fd))
    }

    fn stat_at(dir: libc::c_int, name: &CStr) -> Option<libc::stat> {
        // SAFETY: a zeroed stat is a valid out-parameter; name a valid C string.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        (r == 0).then_some(st)
    }

    fn fstat(fd: libc::c_int) -> Option<libc::stat> {
        // SAFETY: as above.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
    }

    fn times(st: &libc::stat) -> [libc::timespec; 2] {
        [
            libc::timespec { tv_sec: st.st_atime, tv_nsec: st.st_atime_nsec },
            libc::timespec { tv_sec: st.st_mtime, tv_nsec: st.st_mtime_nsec },
        ]
    }

    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 64 << 10]);
    }

    /// Lists `fd` into the thread's buffer; subdirectories' names are collected, since
    /// their tasks run after this listing (on this thread or another).
    fn listing(fd: libc::c_int, t: &Totals, mut f: impl FnMut(&CStr, u8, &mut Vec<CString>)) -> Vec<CString> {
        let mut dirs = Vec::new();
        BUF.with(|b| {
            super::dirents::each(fd, &mut b.borrow_mut(), &t.errors, |name, dtype| f(name, dtype, &mut dirs))
        });
        dirs
    }

    static SEQ: AtomicU64 = AtomicU64::new(0);

    fn copy_file(src: libc::c_int, dst: libc::c_int, name: &CStr, t: &Totals) -> Option<()> {
        let sf =
            open_at(src, name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)?;
        let before = fstat(sf.0)?;
        let tmp = CString::new(format!(".floor.{}", SEQ.fetch_add(1, Relaxed))).ok()?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let df = open_at(dst, &tmp, flags, before.st_mode & 0o7777)?;
        let mut left = before.st_size as usize;
        while left > 0 {
            // SAFETY: both descriptors are open; offsets are the files' own.
            let n = unsafe {
                libc::copy_file_range(sf.0, std::ptr::null_mut(), df.0, std::ptr::null_mut(), left, 0)
            };
            if n <= 0 {
                break;
            }
            left -= n as usize;
        }
        let after = fstat(sf.0)?;
        if after.st_mtime != before.st_mtime || after.st_size != before.st_size {
            t.differences.fetch_add(1, Relaxed);
        }
        // SAFETY: df is open; times() is two valid timespecs.
        if unsafe { libc::futimens(df.0, times(&before).as_ptr()) } != 0 {
            return None;
        }
        drop(df);
        drop(sf);
        // SAFETY: both names are valid C strings in open directories.
        (unsafe { libc::renameat(dst, tmp.as_ptr(), dst, name.as_ptr()) } == 0).then_some(())
    }

    fn copy_link(src: libc::c_int, dst: libc::c_int, name: &CStr) -> Option<()> {
        let mut target = [0u8; 4096];
        // SAFETY: the buffer is writable for its length.
        let n = unsafe { libc::readlinkat(src, name.as_ptr(), target.as_mut_ptr().cast(), target.len() - 1) };
        if n < 0 {
            return None;
        }
        target[n as usize] = 0;
        // SAFETY: target is NUL-terminated.
        (unsafe { libc::symlinkat(target.as_ptr().cast(), dst, name.as_ptr()) } == 0).then_some(())
    }

    /// Copies the contents of `src` into `dst` (both open), then sets `dst`'s times.
    fn copy_dir(src: Fd, dst: Fd, st: libc::stat, t: &Totals) {
        let dirs = listing(src.0, t, |name, dtype, dirs| {
            t.entries.fetch_add(1, Relaxed);
            let ok = match dtype {
                libc::DT_REG => copy_file(src.0, dst.0, name, t),
                libc::DT_LNK => copy_link(src.0, dst.0, name),
                libc::DT_DIR => {
                    dirs.push(name.to_owned());
                    Some(())
                }
                _ => None,
            };
            if ok.is_none() {
                t.errors.fetch_add(1, Relaxed);
            }
        });
        rayon::scope(|s| {
            for name in &dirs {
                let (src, dst) = (&src, &dst);
                s.spawn(move |_| {
                    let Some(sd) = open_at(src.0, name, DIR_FLAGS, 0) else {
                        t.errors.fetch_add(1, Relaxed);
                        return;
                    };
                    let Some(sst) = fstat(sd.0) else { return };
                    // SAFETY: name is a valid C string.
                    let made = unsafe { libc::mkdirat(dst.0, name.as_ptr(), sst.st_mode & 0o7777) } == 0;
                    match open_at(dst.0, name, DIR_FLAGS, 0).filter(|_| made) {
                        Some(dd) => copy_dir(sd, dd, sst, t),
                        None => {
                            t.errors.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        // SAFETY: dst is open; times() is two valid timespecs.
        if unsafe { libc::futimens(dst.0, times(&st).as_ptr()) } != 0 {
            t.errors.fetch_add(1, Relaxed);
        }
    }

    fn same(a: &libc::stat, b: &libc::stat) -> bool {
        let fmt = libc::S_IFMT;
        a.st_mode & fmt == b.st_mode & fmt
            && a.st_mode & 0o7777 == b.st_mode & 0o7777
            && (a.st_mode & fmt == libc::S_IFDIR
                || (a.st_size == b.st_size && a.st_mtime == b.st_mtime && a.st_mtime_nsec == b.st_mtime_nsec))
    }

    fn noop_dir(src: Fd, dst: Fd, t: &Totals) {
        let dirs = listing(src.0, t, |name, dtype, dirs| {
            t.entries.fetch_add(1, Relaxed);
            match (stat_at(src.0, name), stat_at(dst.0, name)) {
                (Some(a), Some(b)) => {
                    if !same(&a, &b) {
                        t.differences.fetch_add(1, Relaxed);
                    }
                }
                (Some(_), None) => {
                    t.differences.fetch_add(1, Relaxed);
                }
                _ => {
                    t.errors.fetch_add(1, Relaxed);
                }
            }
            if dtype == libc::DT_DIR {
                dirs.push(name.to_owned());
            }
        });
        // DEST's own listing: what SOURCE lacks is to be deleted (looked up by name).
        let _ = listing(dst.0, t, |name, _, _| {
            if stat_at(src.0, name).is_none() {
                t.differences.fetch_add(1, Relaxed);
            }
        });
        rayon::scope(|s| {
            for name in &dirs {
                let (src, dst) = (&src, &dst);
                s.spawn(move |_| {
                    match (open_at(src.0, name, DIR_FLAGS, 0), open_at(dst.0, name, DIR_FLAGS, 0)) {
                        (Some(sd), Some(dd)) => noop_dir(sd, dd, t),
                        _ => {
                            t.errors.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
    }

    pub fn run(what: &str, src: &CStr, dst: &CStr, t: &Totals) -> Result<(), String> {
        let open = |p: &CStr| {
            // SAFETY: p is a valid C string.
            let fd = unsafe { libc::open(p.as_ptr(), DIR_FLAGS) };
            if fd < 0 {
                Err(format!("{}: {}", p.to_string_lossy(), std::io::Error::last_os_error()))
            } else {
                Ok(Fd(fd))
            }
        };
        let (s, d) = (open(src)?, open(dst)?);
        match what {
            "copy" => {
                // Modes as SOURCE has them, as tandem sets them.
                // SAFETY: umask cannot fail.
                unsafe { libc::umask(0) };
                let st = fstat(s.0).ok_or("cannot stat SOURCE")?;
                copy_dir(s, d, st, t);
            }
            "noop" => noop_dir(s, d, t),
            w => return Err(format!("unknown floor {w} (copy, noop)")),
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn main() {
    use std::os::unix::ffi::OsStrExt;
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut threads = 2;
    if args.first().is_some_and(|a| a == "--threads") && args.len() > 1 {
        threads = args[1].to_string_lossy().parse().unwrap_or(2);
        args.drain(..2);
    }
    let [what, src, dst] = &args[..] else {
        eprintln!("usage: floors [--threads N] copy|noop SRC DST");
        std::process::exit(2);
    };
    let (Ok(src), Ok(dst)) = (std::ffi::CString::new(src.as_bytes()), std::ffi::CString::new(dst.as_bytes()))
    else {
        eprintln!("floors: a path holds a NUL byte");
        std::process::exit(2);
    };
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global() {
        eprintln!("floors: {e}");
        std::process::exit(1);
    }
    let what = what.to_string_lossy();
    let t = imp::Totals::default();
    let t0 = std::time::Instant::now();
    if let Err(e) = imp::run(&what, &src, &dst, &t) {
        eprintln!("floors: {e}");
        std::process::exit(1);
    }
    let secs = t0.elapsed().as_secs_f64();
    use std::sync::atomic::Ordering::Relaxed;
    println!(
        "floor-{what} entries={} differences={} errors={} secs={secs:.6}",
        t.entries.load(Relaxed),
        t.differences.load(Relaxed),
        t.errors.load(Relaxed)
    );
    if t.errors.load(Relaxed) > 0 {
        std::process::exit(1);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("floors: Linux only");
    std::process::exit(2);
}
