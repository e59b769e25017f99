//! Helpers shared by the reliability and security tests (`faults.rs`,
//! `hostile.rs`, `odd_names.rs`, `soak.rs`, `watch.rs`): a seeded PRNG,
//! self-verifying file contents, /proc readings, directory-relative (openat)
//! file operations for paths beyond PATH_MAX and a tmpfs mount. Processes,
//! waits, fingerprints and skips are in `util`.
//!
//! Each of those test crates does `mod util; mod robust;`, so not every
//! helper is used by every crate.
#![allow(dead_code)]

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::util::*;

// ---------------------------------------------------------------------------
// Seeded PRNG
// ---------------------------------------------------------------------------

/// xorshift64*; deterministic for a given seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        if v.is_empty() {
            None
        } else {
            Some(&v[self.below(v.len())])
        }
    }
}

/// The seed for a randomized test: `TANDEM_SEED` when set, else the clock.
/// Printed so that a failure can be replayed.
pub fn seed_for(test: &str) -> u64 {
    let seed = std::env::var("TANDEM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("{test}: seed {seed} (rerun with TANDEM_SEED={seed})");
    println!("{test}: seed {seed} (rerun with TANDEM_SEED={seed})");
    seed
}

/// FNV-1a of some bytes (names to ids).
pub fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------
// Self-verifying contents
// ---------------------------------------------------------------------------

pub const CHUNK: usize = 64 * 1024;
/// Bytes of the per-chunk header of `stamped` contents.
pub const STAMP: usize = 32;
const MAGIC: &[u8; 8] = b"TNDMver1";

/// One shared random block from which stamped contents are cut (1 MiB).
pub fn block() -> &'static [u8] {
    static BLOCK: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BLOCK.get_or_init(|| pseudo_random(1 << 20, 0x5EED_B10C))
}

/// Version `ver` of the file with identity `id`, `len` bytes long (at least
/// `STAMP`). Every 64 KiB chunk starts with (magic, id, ver, total length,
/// chunk index), the rest is cut from the shared block, so that any torn,
/// truncated, mixed or misplaced content fails `check_stamped`.
pub fn stamped(id: u64, ver: u64, len: usize) -> Vec<u8> {
    let len = len.max(STAMP);
    let b = block();
    let mut out = Vec::with_capacity(len);
    let mut i = 0usize;
    while out.len() < len {
        let off = (i * CHUNK + (id as usize % 4096)) % (b.len() - CHUNK);
        let mut chunk = b[off..off + CHUNK].to_vec();
        chunk[..8].copy_from_slice(MAGIC);
        chunk[8..16].copy_from_slice(&id.to_le_bytes());
        chunk[16..24].copy_from_slice(&ver.to_le_bytes());
        chunk[24..28].copy_from_slice(&(len as u32).to_le_bytes());
        chunk[28..32].copy_from_slice(&(i as u32).to_le_bytes());
        let take = CHUNK.min(len - out.len());
        out.extend_from_slice(&chunk[..take]);
        i += 1;
    }
    out
}

/// Checks that `data` is exactly one complete version of file `id`;
/// returns the version.
pub fn check_stamped(data: &[u8], id: u64) -> Result<u64, String> {
    if data.len() < STAMP || &data[..8] != MAGIC {
        return Err(format!("{} bytes, no version header", data.len()));
    }
    let got_id = u64::from_le_bytes(data[8..16].try_into().unwrap());
    let ver = u64::from_le_bytes(data[16..24].try_into().unwrap());
    let len = u32::from_le_bytes(data[24..28].try_into().unwrap()) as usize;
    if got_id != id {
        return Err(format!("content of file id {got_id:x}, expected id {id:x}"));
    }
    if len != data.len() {
        return Err(format!("TORN: version {ver} is {len} bytes long, file has {}", data.len()));
    }
    if stamped(id, ver, len) != data {
        return Err(format!("TORN: {} bytes do not match version {ver} (mixed content)", data.len()));
    }
    Ok(ver)
}

/// The identity of a file in the stamped scheme: derived from its name.
pub fn id_of(rel: &Path) -> u64 {
    fnv(rel.as_os_str().as_bytes())
}

/// Bytes `off..off+len` of the infinite stream with the given seed: 64 KiB
/// blocks cut from a per-seed random MiB, each block starting with its own
/// index (so any range is cheap to produce and every offset is distinct).
pub fn stream(seed: u64, off: u64, len: usize) -> Vec<u8> {
    use std::collections::HashMap;
    static BASES: Mutex<Option<HashMap<u64, Arc<Vec<u8>>>>> = Mutex::new(None);
    let base = {
        let mut g = BASES.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(HashMap::new)
            .entry(seed)
            .or_insert_with(|| Arc::new(pseudo_random(1 << 20, seed)))
            .clone()
    };
    let mut out = Vec::with_capacity(len);
    let mut pos = off;
    while out.len() < len {
        let b = pos / CHUNK as u64;
        let at = (b as usize * 7 * 4096) % (base.len() - CHUNK);
        let mut data = base[at..at + CHUNK].to_vec();
        data[..8].copy_from_slice(&(b ^ seed).to_le_bytes());
        let start = (pos % CHUNK as u64) as usize;
        let take = (CHUNK - start).min(len - out.len());
        out.extend_from_slice(&data[start..start + take]);
        pos += take as u64;
    }
    out
}

/// Is `data` a prefix of the stream with `seed`?
pub fn is_stream_prefix(data: &[u8], seed: u64) -> bool {
    data.chunks(CHUNK).enumerate().all(|(i, c)| stream(seed, (i * CHUNK) as u64, c.len()) == c)
}

// ---------------------------------------------------------------------------
// Output checks
// ---------------------------------------------------------------------------

/// No sign of a Rust panic or backtrace in some output.
#[track_caller]
pub fn assert_no_panic(stderr: &str, context: &dyn std::fmt::Debug) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!stderr.contains(bad), "tandem printed {bad:?} (a panic):\n{context:?}");
    }
}

// ---------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------

/// Resident set size of a process in KiB.
pub fn vm_rss_kib(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Number of open file descriptors of a process.
pub fn fd_count(pid: i32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

pub fn thread_count(pid: i32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/task")).ok()?.count())
}

// ---------------------------------------------------------------------------
// Directory-relative operations (paths longer than PATH_MAX)
// ---------------------------------------------------------------------------

fn c(name: &OsStr) -> CString {
    CString::new(name.as_bytes()).expect("NUL in name")
}

fn check(rc: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(rc)
    }
}

/// Opens a directory (never following a symlink) relative to `dir`.
pub fn open_dir_at(dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    let n = c(name);
    // SAFETY: valid fd and NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            n.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a fresh fd we own.
    check(fd, "openat").map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(fs::File::open(path)?.into())
}

pub fn mkdir_at(dir: &OwnedFd, name: &OsStr, mode: u32) -> io::Result<()> {
    let n = c(name);
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), n.as_ptr(), mode as libc::mode_t) }, "mkdirat").map(|_| ())
}

pub fn write_file_at(dir: &OwnedFd, name: &OsStr, data: &[u8]) -> io::Result<()> {
    let n = c(name);
    // SAFETY: valid fd and NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            n.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    // SAFETY: a fresh fd we own.
    let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(check(fd, "openat")?) });
    io::Write::write_all(&mut f, data)
}

pub fn read_file_at(dir: &OwnedFd, name: &OsStr) -> io::Result<Vec<u8>> {
    let n = c(name);
    // SAFETY: valid fd and NUL-terminated name.
    let fd = unsafe {
        libc::openat(dir.as_raw_fd(), n.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
    };
    // SAFETY: a fresh fd we own.
    let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(check(fd, "openat")?) });
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// fstatat without following symlinks.
pub fn stat_at(dir: &OwnedFd, name: &OsStr) -> io::Result<libc::stat> {
    let n = c(name);
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, name and out-pointer.
    check(
        unsafe { libc::fstatat(dir.as_raw_fd(), n.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) },
        "fstatat",
    )?;
    Ok(st)
}

/// Names in an open directory (without . and ..), sorted.
pub fn list_at(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    // Read through /proc/self/fd so no long path is ever formed.
    let mut v: Vec<OsString> = fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

/// Removes everything inside `dir` (recursively, directory-relative).
pub fn clear_at(dir: &OwnedFd) -> io::Result<()> {
    for name in list_at(dir)? {
        let st = stat_at(dir, &name)?;
        let n = c(&name);
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let sub = open_dir_at(dir, &name)?;
            // SAFETY: valid fd.
            unsafe { libc::fchmod(sub.as_raw_fd(), 0o700) };
            clear_at(&sub)?;
            // SAFETY: valid fd and name.
            check(unsafe { libc::unlinkat(dir.as_raw_fd(), n.as_ptr(), libc::AT_REMOVEDIR) }, "rmdir")?;
        } else {
            // SAFETY: valid fd and name.
            check(unsafe { libc::unlinkat(dir.as_raw_fd(), n.as_ptr(), 0) }, "unlink")?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------

/// A tmpfs mounted for the duration of a test; unmounted on drop.
pub struct TmpfsMount {
    pub dir: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size` (e.g. "8m") on `dir` (created). Err(reason)
    /// when not root or the mount fails.
    pub fn new(dir: &Path, size: &str) -> Result<TmpfsMount, String> {
        if !is_root() {
            return Err("needs root to mount a tmpfs".into());
        }
        fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(TmpfsMount { dir: dir.to_path_buf() })
    }

    pub fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "remount failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}
