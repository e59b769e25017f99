//! Shared helpers for the integration tests.
//!
//! Every test file does `mod util;`, so not every helper is used by every
//! test crate; hence the blanket `dead_code` allowance.
#![allow(dead_code)]

pub mod converge;
pub mod mounts;
pub mod proc;
pub mod s3d;
pub mod sshd;

// Not every test crate drives a long-running child or mounts anything.
#[allow(unused_imports)]
pub use converge::*;
#[allow(unused_imports)]
pub use mounts::*;
#[allow(unused_imports)]
pub use proc::Proc;

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use filetime::FileTime;
use tempfile::TempDir;

/// Default timeout for one run of the binary.
/// `line` without the local RFC 3339 timestamp (`2026-12-01T08:09:26.123+01:00 `)
/// that watch mode puts in front of stderr lines that go to a file.
pub fn strip_timestamp(line: &str) -> &str {
    match timestamp_len(line) {
        Some(n) => &line[n..],
        None => line,
    }
}

/// The length of a leading `YYYY-MM-DDTHH:MM:SS.mmm±HH:MM ` timestamp, if there is one.
pub fn timestamp_len(line: &str) -> Option<usize> {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd.ddd+dd:dd ";
    let b = line.as_bytes();
    if b.len() < SHAPE.len() {
        return None;
    }
    let fits = SHAPE.iter().zip(b).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        b'+' => *got == b'+' || *got == b'-',
        w => w == got,
    });
    fits.then_some(SHAPE.len())
}

pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A fixed, nanosecond-precise base time (2021-01-01T00:00:00Z + a bit).
pub const BASE_SECS: i64 = 1_609_459_200;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `TANDEM_REQUIRE_ALL` is set (to anything but "" or "0"): then no
/// test may skip. CI sets it, so that a missing tool or privilege shows as a
/// failure there instead of a silent pass.
pub fn require_all() -> bool {
    flag_set(std::env::var_os("TANDEM_REQUIRE_ALL").as_deref())
}

/// How a flag variable reads: set, and neither empty nor "0".
pub fn flag_set(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// The one way to skip: `test` (or the part of it that needs what is
/// missing) cannot run here, because of `why`. Prints the reason (it shows
/// with `--nocapture` and in the captured output of a failing test) and
/// returns, and the caller returns or leaves out the checks concerned; under
/// `TANDEM_REQUIRE_ALL=1` it fails the test with the reason instead.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    skip_under(require_all(), test, why)
}

/// `skip`, with the value of `TANDEM_REQUIRE_ALL` given (for the tests of
/// the harness itself).
#[track_caller]
pub fn skip_under(require_all: bool, test: &str, why: &str) {
    if require_all {
        panic!("{test} cannot run here: {why} (a skip, but TANDEM_REQUIRE_ALL is set)");
    }
    eprintln!("SKIP {test}: {why}");
    println!("SKIP {test}: {why}");
}

// ---------------------------------------------------------------------------
// Sandbox: owns a temporary directory with conventional sub-paths.
// ---------------------------------------------------------------------------

pub struct Sandbox {
    tmp: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox { tmp: tempfile::Builder::new().prefix("tandem-test-").tempdir().expect("create temp dir") }
    }

    /// A sandbox on a fast filesystem (/dev/shm when present).
    pub fn new_fast() -> Self {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            if let Ok(tmp) = tempfile::Builder::new().prefix("tandem-test-").tempdir_in(shm) {
                return Sandbox { tmp };
            }
        }
        Self::new()
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// `<sandbox>/src`, not created.
    pub fn src(&self) -> PathBuf {
        self.join("src")
    }

    /// `<sandbox>/dst`, not created.
    pub fn dst(&self) -> PathBuf {
        self.join("dst")
    }

    /// `<sandbox>/outside`, not created.
    pub fn outside(&self) -> PathBuf {
        self.join("outside")
    }

    /// A builder rooted at `<sandbox>/src` (created).
    pub fn src_tree(&self) -> Tree {
        Tree::create(self.src())
    }

    /// A builder rooted at `<sandbox>/dst` (created).
    pub fn dst_tree(&self) -> Tree {
        Tree::create(self.dst())
    }
}

// ---------------------------------------------------------------------------
// Tree builder
// ---------------------------------------------------------------------------

/// Builds entries below `root`. All `rel` paths are relative to the root;
/// parents are created as needed (mode 0755).
pub struct Tree {
    pub root: PathBuf,
}

impl Tree {
    /// Use `root` (creating it if missing).
    pub fn create(root: impl Into<PathBuf>) -> Tree {
        let root = root.into();
        fs::create_dir_all(&root).unwrap_or_else(|e| panic!("mkdir {}: {e}", root.display()));
        Tree { root }
    }

    pub fn p(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        if rel.as_os_str().is_empty() || rel == Path::new(".") {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn parent_dirs(&self, path: &Path) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", parent.display()));
        }
    }

    /// Regular file with mode 0644.
    pub fn file(&self, rel: impl AsRef<Path>, content: impl AsRef<[u8]>) -> &Self {
        self.file_mode(rel, content, 0o644)
    }

    /// Regular file with an explicit mode (applied with chmod, so the umask
    /// does not interfere). Replaces whatever was there.
    pub fn file_mode(&self, rel: impl AsRef<Path>, content: impl AsRef<[u8]>, mode: u32) -> &Self {
        let path = self.p(rel);
        self.parent_dirs(&path);
        remove_any(&path);
        let mut f = File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        f.write_all(content.as_ref()).unwrap();
        drop(f);
        chmod(&path, mode);
        self
    }

    /// Overwrite an existing file's content in place (same inode), keeping
    /// its mode. Does not touch the mtime afterwards (the write sets it).
    pub fn rewrite(&self, rel: impl AsRef<Path>, content: impl AsRef<[u8]>) -> &Self {
        let path = self.p(rel);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        f.write_all(content.as_ref()).unwrap();
        self
    }

    /// Directory with mode 0755 (mkdir -p).
    pub fn dir(&self, rel: impl AsRef<Path>) -> &Self {
        self.dir_mode(rel, 0o755)
    }

    pub fn dir_mode(&self, rel: impl AsRef<Path>, mode: u32) -> &Self {
        let path = self.p(rel);
        if fs::symlink_metadata(&path).map(|m| !m.is_dir()).unwrap_or(false) {
            remove_any(&path);
        }
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        chmod(&path, mode);
        self
    }

    /// Symlink `rel -> target` (target stored verbatim: relative, absolute
    /// or dangling).
    pub fn symlink(&self, rel: impl AsRef<Path>, target: impl AsRef<Path>) -> &Self {
        let path = self.p(rel);
        self.parent_dirs(&path);
        remove_any(&path);
        symlink(target.as_ref(), &path).unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
        self
    }

    /// Named pipe (FIFO), mode 0644.
    pub fn fifo(&self, rel: impl AsRef<Path>) -> &Self {
        let path = self.p(rel);
        self.parent_dirs(&path);
        remove_any(&path);
        let c = cstr(&path);
        // SAFETY: `c` is a valid NUL-terminated path.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
        assert_eq!(rc, 0, "mkfifo {}: {}", path.display(), io::Error::last_os_error());
        self
    }

    /// Set the mtime (and atime) of an entry without following symlinks.
    pub fn mtime(&self, rel: impl AsRef<Path>, secs: i64, nanos: u32) -> &Self {
        set_mtime(&self.p(rel), secs, nanos);
        self
    }

    pub fn chmod(&self, rel: impl AsRef<Path>, mode: u32) -> &Self {
        chmod(&self.p(rel), mode);
        self
    }

    pub fn remove(&self, rel: impl AsRef<Path>) -> &Self {
        remove_any(&self.p(rel));
        self
    }

    /// Give every entry (including the root) a distinct, nanosecond-precise
    /// mtime, deepest entries first so that directory mtimes stick.
    pub fn stamp_all(&self) -> &Self {
        let mut entries = walk(&self.root);
        // Deepest first; the root ("") last.
        entries.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.components().count()));
        for (i, (rel, _)) in entries.iter().enumerate() {
            let nanos = (123_456_789u64 + 1_000_003 * i as u64) % 1_000_000_000;
            set_mtime(&self.p(rel), BASE_SECS + 3600 + 7 * i as i64, nanos as u32);
        }
        self
    }
}

// ---------------------------------------------------------------------------
// Free filesystem helpers
// ---------------------------------------------------------------------------

pub fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path contains NUL")
}

/// A name that is not valid UTF-8.
pub fn non_utf8(prefix: &[u8], suffix: &[u8]) -> OsString {
    let mut v = prefix.to_vec();
    v.push(0xff);
    v.extend_from_slice(suffix);
    OsString::from_vec(v)
}

pub fn bad_name() -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b"bad\xffname"))
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

/// lchown (does not follow symlinks).
pub fn lchown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("lchown {}: {e}", path.display()));
}

/// Set atime and mtime to the given instant, without following symlinks.
pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    let t = FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(path, t, t)
        .unwrap_or_else(|e| panic!("utimensat {}: {e}", path.display()));
}

/// mtime in nanoseconds since the epoch (lstat).
pub fn mtime_ns(path: &Path) -> i128 {
    let m = lstat(path);
    m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128
}

pub fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
}

pub fn exists_nofollow(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Remove a file, symlink or directory tree if present.
pub fn remove_any(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            make_writable(path);
            fs::remove_dir_all(path).unwrap_or_else(|e| panic!("rm -r {}: {e}", path.display()))
        }
        Ok(_) => fs::remove_file(path).unwrap_or_else(|e| panic!("rm {}: {e}", path.display())),
        Err(_) => {}
    }
}

fn make_writable(dir: &Path) {
    if let Ok(m) = fs::symlink_metadata(dir) {
        if m.is_dir() {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
            if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Deterministic pseudo-random bytes (xorshift64*), fast even unoptimised.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Recursive listing (lstat, never following symlinks) of everything below
/// `root`, as paths relative to `root`. The root itself is included as "".
pub fn walk(root: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut out = vec![(PathBuf::new(), lstat(root))];
    // An entry that is gone by the time it is read (a running watcher renamed or removed
    // it after its directory was listed) is not there: it is left out, as a listing
    // made a moment later would leave it out. Any other error fails the test.
    fn gone(e: &std::io::Error) -> bool {
        e.kind() == std::io::ErrorKind::NotFound
    }
    fn rec(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, fs::Metadata)>) {
        let dir = root.join(rel);
        let mut names: Vec<OsString> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .map(|e| e.unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display())).file_name())
                .collect(),
            Err(e) if gone(&e) => return,
            Err(e) => panic!("readdir {}: {e}", dir.display()),
        };
        names.sort();
        for name in names {
            let r = rel.join(&name);
            let m = match fs::symlink_metadata(root.join(&r)) {
                Ok(m) => m,
                Err(e) if gone(&e) => continue,
                Err(e) => panic!("lstat {}: {e}", root.join(&r).display()),
            };
            let is_dir = m.is_dir();
            out.push((r.clone(), m));
            if is_dir {
                rec(root, &r, out);
            }
        }
    }
    if out[0].1.is_dir() {
        rec(root, Path::new(""), &mut out);
    }
    out
}

/// Names (relative paths) of leftover temporary files `.tandem-*.tmp`.
pub fn temp_files(root: &Path) -> Vec<PathBuf> {
    if !exists_nofollow(root) {
        return vec![];
    }
    walk(root)
        .into_iter()
        .map(|(rel, _)| rel)
        .filter(|rel| rel.file_name().map(is_temp_name).unwrap_or(false))
        .collect()
}

pub fn is_temp_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b".tandem-") && b.ends_with(b".tmp")
}

fn show(rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        ".".to_string()
    } else {
        format!("{:?}", rel)
    }
}

// ---------------------------------------------------------------------------
// Tree comparison
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Other,
}

pub fn kind_of(m: &fs::Metadata) -> Kind {
    let ft = m.file_type();
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_fifo() {
        Kind::Fifo
    } else {
        Kind::Other
    }
}

/// Compare two regular files' contents by streaming (no full buffering).
pub fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Differences between two trees, one human-readable line per difference.
/// Walks with lstat; compares type, permission bits (mode & 0o7777), mtime
/// to the nanosecond (files, dirs, symlinks, including both roots), file
/// content, symlink target, and (when running as root) uid/gid.
/// Relative paths listed in `ignore` (and everything below them) are skipped.
pub fn tree_diff(src: &Path, dst: &Path, ignore: &[&Path]) -> Vec<String> {
    let keep = |rel: &Path| !ignore.iter().any(|i| rel.starts_with(i));
    let a: BTreeMap<PathBuf, fs::Metadata> = walk(src).into_iter().filter(|(r, _)| keep(r)).collect();
    let b: BTreeMap<PathBuf, fs::Metadata> = walk(dst).into_iter().filter(|(r, _)| keep(r)).collect();
    let check_owner = is_root();
    let mut diffs = Vec::new();
    for (rel, ma) in &a {
        let Some(mb) = b.get(rel) else {
            diffs.push(format!("{}: only in SOURCE ({:?})", show(rel), kind_of(ma)));
            continue;
        };
        let (ka, kb) = (kind_of(ma), kind_of(mb));
        if ka != kb {
            diffs.push(format!("{}: type {:?} in SOURCE vs {:?} in DEST", show(rel), ka, kb));
            continue;
        }
        let mut d = Vec::new();
        if ka != Kind::Symlink && ma.mode() & 0o7777 != mb.mode() & 0o7777 {
            d.push(format!("mode {:04o} vs {:04o}", ma.mode() & 0o7777, mb.mode() & 0o7777));
        }
        if (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec()) {
            d.push(format!(
                "mtime {}.{:09} vs {}.{:09}",
                ma.mtime(),
                ma.mtime_nsec(),
                mb.mtime(),
                mb.mtime_nsec()
            ));
        }
        if check_owner && (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
            d.push(format!("owner {}:{} vs {}:{}", ma.uid(), ma.gid(), mb.uid(), mb.gid()));
        }
        match ka {
            Kind::File => {
                if ma.len() != mb.len() {
                    d.push(format!("size {} vs {}", ma.len(), mb.len()));
                } else {
                    match same_content(&src.join(rel), &dst.join(rel)) {
                        Ok(true) => {}
                        Ok(false) => d.push("content differs".to_string()),
                        Err(e) => d.push(format!("cannot compare content: {e}")),
                    }
                }
            }
            Kind::Symlink => {
                let ta = fs::read_link(src.join(rel)).unwrap();
                let tb = fs::read_link(dst.join(rel)).unwrap();
                if ta != tb {
                    d.push(format!("target {:?} vs {:?}", ta, tb));
                }
            }
            _ => {}
        }
        if !d.is_empty() {
            diffs.push(format!("{}: {}", show(rel), d.join(", ")));
        }
    }
    for (rel, mb) in &b {
        if !a.contains_key(rel) {
            diffs.push(format!("{}: only in DEST ({:?})", show(rel), kind_of(mb)));
        }
    }
    diffs
}

#[track_caller]
pub fn assert_trees_equal(src: &Path, dst: &Path) {
    assert_trees_equal_ignoring(src, dst, &[]);
}

#[track_caller]
pub fn assert_trees_equal_ignoring(src: &Path, dst: &Path, ignore: &[&Path]) {
    let diffs = tree_diff(src, dst, ignore);
    if !diffs.is_empty() {
        let mut msg = format!(
            "trees differ ({} differences)\n  SOURCE = {}\n  DEST   = {}\n  (values are SOURCE vs DEST)\n",
            diffs.len(),
            src.display(),
            dst.display()
        );
        for d in &diffs {
            let _ = writeln!(msg, "  - {d}");
        }
        panic!("{msg}");
    }
}

/// ctime (ns since epoch) of every entry below `dir`, including the root ("").
pub fn ctimes(dir: &Path) -> BTreeMap<PathBuf, i128> {
    walk(dir)
        .into_iter()
        .map(|(rel, m)| (rel, m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128))
        .collect()
}

/// A detailed fingerprint of every entry below `dir` (type, inode, mode,
/// owner, size, mtime, ctime, symlink target, a content checksum); used to
/// assert that a run changed nothing at all.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fingerprint(dir, true)
}

/// `snapshot` without the content checksum: metadata only, no file is read,
/// so it is cheap enough for large trees fingerprinted again and again (the
/// SOURCE of the kill and fault tests). Any write, chmod, chown, utimes,
/// rename or replacement shows in the ctime, which user space cannot set,
/// except one case that only `snapshot` sees: an in-place rewrite of the
/// same size within the same tick of the file system's (coarse) clock.
pub fn snapshot_meta(dir: &Path) -> BTreeMap<PathBuf, String> {
    fingerprint(dir, false)
}

fn fingerprint(dir: &Path, content: bool) -> BTreeMap<PathBuf, String> {
    walk(dir)
        .into_iter()
        .map(|(rel, m)| {
            let k = kind_of(&m);
            let extra = match k {
                Kind::File if content => format!("sum={:016x}", checksum(&dir.join(&rel))),
                Kind::Symlink => format!("-> {:?}", fs::read_link(dir.join(&rel)).unwrap()),
                _ => String::new(),
            };
            let desc = format!(
                "{:?} ino={} mode={:04o} owner={}:{} size={} mtime={}.{:09} ctime={}.{:09} {}",
                k,
                m.ino(),
                m.mode() & 0o7777,
                m.uid(),
                m.gid(),
                if k == Kind::Dir { 0 } else { m.len() },
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                extra
            );
            (rel, desc)
        })
        .collect()
}

fn checksum(path: &Path) -> u64 {
    // FNV-1a over the content; cheap and good enough to detect changes.
    let data = read(path);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Panic with a per-path diff if two snapshots (or ctime maps) differ.
#[track_caller]
pub fn assert_unchanged<V: PartialEq + std::fmt::Debug>(
    what: &str,
    before: &BTreeMap<PathBuf, V>,
    after: &BTreeMap<PathBuf, V>,
) {
    let mut diffs = Vec::new();
    for (rel, vb) in before {
        match after.get(rel) {
            None => diffs.push(format!("{}: removed (was {:?})", show(rel), vb)),
            Some(va) if va != vb => diffs.push(format!("{}: {:?}\n        -> {:?}", show(rel), vb, va)),
            _ => {}
        }
    }
    for (rel, va) in after {
        if !before.contains_key(rel) {
            diffs.push(format!("{}: created ({:?})", show(rel), va));
        }
    }
    if !diffs.is_empty() {
        panic!("{what}: {} entries changed:\n  - {}", diffs.len(), diffs.join("\n  - "));
    }
}

/// Top-level names in a directory (for "nothing was created" checks).
pub fn listing(dir: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

pub fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tandem"))
}

/// `tandem` with a default timeout already applied.
pub fn tandem() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("tandem").expect("binary `tandem` not built");
    cmd.timeout(RUN_TIMEOUT);
    cmd
}

/// The outcome of one run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_raw: Vec<u8>,
    pub args: Vec<OsString>,
    pub timed_out: bool,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tandem {:?}\n  exit: {:?}{}\n  --- stdout ---\n{}\n  --- stderr ---\n{}",
            self.args,
            self.code,
            if self.timed_out { " (TIMED OUT, killed)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

impl Run {
    /// Assert the exit code, dumping the run on mismatch.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert!(self.code == Some(code) && !self.timed_out, "expected exit code {code}, got:\n{self:?}");
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// Parse every stdout line as a JSON object with a string `event` field.
    #[track_caller]
    pub fn json_events(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for (i, line) in self.stdout.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line {} is not JSON ({e}): {line:?}\n{self:?}", i + 1));
            assert!(v.is_object(), "stdout line {} is not a JSON object: {line}", i + 1);
            assert!(
                v.get("event").and_then(|e| e.as_str()).is_some(),
                "stdout line {} has no string `event` field: {line}",
                i + 1
            );
            out.push(v);
        }
        out
    }
}

pub const NOBODY: u32 = 65534;

/// A `tandem` command that runs unprivileged: as root it switches to
/// uid/gid 65534 (the files it works on must then be owned by that user,
/// see `chown_tree`); otherwise it runs as the current user.
pub fn tandem_unprivileged() -> assert_cmd::Command {
    let mut c = std::process::Command::new(bin_path());
    if is_root() {
        use std::os::unix::process::CommandExt;
        c.uid(NOBODY).gid(NOBODY);
    }
    assert_cmd::Command::from_std(c)
}

/// As root, chown everything below (and including) `root` to nobody so that
/// `tandem_unprivileged` can work there. No-op otherwise.
pub fn chown_tree_for_unprivileged(root: &Path) {
    if is_root() {
        for (rel, _) in walk(root) {
            lchown(&root.join(rel), NOBODY, NOBODY);
        }
    }
}

/// Run `tandem ARGS...` with the default timeout.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with(tandem(), args, RUN_TIMEOUT)
}

/// Run with an explicit timeout.
pub fn run_timeout<I, S>(args: I, timeout: Duration) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with(tandem(), args, timeout)
}

/// Run a prepared command (e.g. with a different uid) with a timeout.
pub fn run_with<I, S>(mut cmd: assert_cmd::Command, args: I, timeout: Duration) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    cmd.args(&args).timeout(timeout).write_stdin(Vec::<u8>::new());
    let start = Instant::now();
    let out: Output = cmd.output().expect("failed to spawn tandem");
    let elapsed = start.elapsed();
    let timed_out = out.status.code().is_none() && elapsed >= timeout;
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout_raw: out.stdout,
        args,
        timed_out,
    };
    assert!(!run.timed_out, "tandem did not finish within {timeout:?}:\n{run:?}");
    run
}

// ---------------------------------------------------------------------------
// Waiting for a condition
// ---------------------------------------------------------------------------

/// The one wait: polls `cond` until it holds; after `timeout` it fails the
/// test with a message naming `what`. (`Proc::wait_for` is the same with a
/// process: it also fails when the process exits first, and adds its dump.)
///
/// To prove that something does *not* happen, do not sleep for a while and
/// look: make a marker change after it and wait for the marker to arrive,
/// which shows that a later cycle ran.
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    wait_for_explained(what, timeout, cond, String::new)
}

/// `wait_for`, whose failure message also carries `explain()`: the state
/// that is still wrong (computed only on failure).
#[track_caller]
pub fn wait_for_explained(
    what: &str,
    timeout: Duration,
    cond: impl FnMut() -> bool,
    explain: impl FnOnce() -> String,
) {
    if !holds_within(timeout, cond) {
        let detail = explain();
        let sep = if detail.is_empty() { "" } else { "\n" };
        panic!("timed out after {timeout:?} waiting for {what}{sep}{detail}");
    }
}

/// Polls `cond` until it holds or `timeout` elapses; returns whether it held.
/// It does not fail the test: only for a test that branches on the outcome
/// (a best-effort trigger); everything else uses `wait_for`.
///
/// Between two checks it sleeps about twice as long as a check took (1 to
/// 50 ms), so that cheap checks react at once while expensive ones (tree
/// comparisons) leave the CPU to the process under test.
pub fn holds_within(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let started = Instant::now();
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let pause = ((now - started) * 2).clamp(Duration::from_millis(1), Duration::from_millis(50));
        std::thread::sleep(pause.min(deadline - now));
    }
}

// ---------------------------------------------------------------------------
// Canned trees
// ---------------------------------------------------------------------------

pub const BIG_LEN: usize = 5 * 1024 * 1024;

/// A varied SOURCE tree: nested and empty dirs, relative/absolute/dangling
/// symlinks (including one to a directory), executable and restrictive
/// modes, a sticky directory, unicode and non-UTF-8 names, zero-byte and
/// 5 MiB files, hidden files. Every entry gets a distinct ns mtime.
/// `outside` is an absolute path used as an absolute symlink target.
pub fn build_varied(t: &Tree, outside: &Path) {
    t.file("top.txt", "top level\n")
        .file("a/one.txt", "one\n")
        .file("a/b/two.txt", "two two\n")
        .file("a/b/c/deep.txt", "deep inside three levels\n")
        .dir("a/empty_nested")
        .dir("empty")
        .dir_mode("restricted", 0o750)
        .file_mode("restricted/private.txt", "private\n", 0o600)
        .dir_mode("sticky", 0o1777)
        .file_mode("run.sh", "#!/bin/sh\necho hi\n", 0o755)
        .file_mode("a/b/tool", "#!/bin/sh\nexit 0\n", 0o700)
        .file_mode("readonly.txt", "read only\n", 0o444)
        .file("zero", "")
        .file("a/zero_nested", "")
        .file("big.bin", pseudo_random(BIG_LEN, 42))
        .file(".hidden", "hidden\n")
        .file(".config/settings.ini", "[x]\ny=1\n")
        .file("café/naïve.txt", "unicode\n")
        .file("日本語.txt", "nihongo\n")
        .file(bad_name(), "not utf-8 name\n")
        .file(Path::new(&non_utf8(b"dir", b"")).join("inner.txt"), "inside non-utf8 dir\n")
        .file("with space & 'quote'.txt", "odd chars\n")
        .file("line\nbreak.txt", "newline in name\n")
        .file_mode("ro_dir/inside.txt", "in a read-only dir\n", 0o444)
        .dir_mode("ro_dir", 0o555)
        .symlink("rel_link", "a/b/c/deep.txt")
        .symlink("a/up_link", "../top.txt")
        .symlink("dir_link", "a/b")
        .symlink("abs_link", outside.join("target.txt"))
        .symlink("dangling", "does/not/exist")
        .symlink("a/b/c/abs_dangling", "/nonexistent/tandem/nowhere");
    t.stamp_all();
}

/// A DEST tree that disagrees with `build_varied` in every interesting way.
pub fn build_stale_dest(t: &Tree) {
    t.file("extra.txt", "only in dest\n")
        .file("extra_dir/x/y.txt", "nested extra\n")
        .dir("extra_dir/empty")
        .file(".tandem-stale.tmp", "leftover temp file\n")
        // changed content, different size
        .file("a/b/c/deep.txt", "stale\n")
        // same size as source ("two two\n"), different content, old mtime
        .file("a/b/two.txt", "TWO TWO\n")
        .mtime("a/b/two.txt", BASE_SECS, 5)
        // dest has a file where source has a directory
        .file("empty", "I should be a directory\n")
        // dest has a directory (with content) where source has a file
        .file("zero/inside.txt", "I should be a zero-byte file\n")
        // dest has a symlink where source has a file
        .symlink("run.sh", "top.txt")
        // dest has a symlink to a directory where source has a directory
        .dir("other")
        .file("other/decoy.txt", "decoy\n")
        .symlink("café", "other")
        // dest has a directory where source has a symlink
        .file("rel_link/file.txt", "I should be a symlink\n")
        // dest has a regular file where source has a dangling symlink
        .file("dangling", "I should be a symlink\n")
        // symlink with the wrong target
        .symlink("a/up_link", "wrong/target")
        // wrong modes
        .dir_mode("restricted", 0o777)
        .file_mode("readonly.txt", "read only\n", 0o666)
        .chmod("a", 0o700);
}

// ---------------------------------------------------------------------------
// JSON event helpers
// ---------------------------------------------------------------------------

pub const CHANGE_EVENTS: [&str; 5] = ["copy", "mkdir", "symlink", "meta", "delete"];

pub fn event_name(v: &serde_json::Value) -> &str {
    v["event"].as_str().unwrap_or("")
}

/// The `path` field, normalised: no leading "./", no trailing "/".
pub fn event_path(v: &serde_json::Value) -> String {
    let p = v["path"].as_str().unwrap_or_else(|| panic!("event without string `path`: {v}"));
    let p = p.strip_prefix("./").unwrap_or(p);
    let p = p.trim_end_matches('/');
    p.to_string()
}

pub fn events_named<'a>(evs: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    evs.iter().filter(|e| event_name(e) == name).collect()
}

pub fn paths_of(evs: &[serde_json::Value], name: &str) -> Vec<String> {
    let mut v: Vec<String> = events_named(evs, name).into_iter().map(event_path).collect();
    v.sort();
    v
}

/// Change events (everything except summary/error/warning).
pub fn change_events(evs: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    evs.iter().filter(|e| CHANGE_EVENTS.contains(&event_name(e))).collect()
}

/// The final summary object; asserts it is the last line and unique.
#[track_caller]
pub fn summary(evs: &[serde_json::Value]) -> &serde_json::Value {
    let last = evs.last().expect("no JSON output at all");
    assert_eq!(event_name(last), "summary", "last JSON line is not the summary: {last}");
    assert_eq!(events_named(evs, "summary").len(), 1, "more than one summary event");
    last
}

#[track_caller]
pub fn count(summary: &serde_json::Value, field: &str) -> u64 {
    summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary field `{field}` missing or not a count: {summary}"))
}

/// Relative path rendered the way a lossy UTF-8 printer would.
pub fn lossy(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

/// Lossy relative paths of all entries of a given kind below `root`
/// (root excluded).
pub fn rel_paths_of_kind(root: &Path, kind: Kind) -> Vec<String> {
    let mut v: Vec<String> = walk(root)
        .into_iter()
        .filter(|(rel, m)| !rel.as_os_str().is_empty() && kind_of(m) == kind)
        .map(|(rel, _)| lossy(&rel))
        .collect();
    v.sort();
    v
}

/// `files` files in `wide/` and `dirs` directories `deep/dNNN/e/` of one file each: a
/// tree wider than an applier starts at once, in one directory and in directories (a
/// directory's operation that held a start permit while its contents ran would wait
/// for them for ever). [`thin_wide_tree`] removes most of it again.
pub fn wide_tree(t: &Tree, files: usize, dirs: usize) {
    for i in 0..files {
        t.file(format!("wide/f{i:04}"), format!("file {i}\n"));
    }
    for d in 0..dirs {
        t.file(format!("deep/d{d:03}/e/f"), format!("{d}\n"));
    }
}

/// Removes all but the last `keep` files of [`wide_tree`]'s `wide/` (of `files`), and
/// `deep/` whole.
pub fn thin_wide_tree(t: &Tree, files: usize, keep: usize) {
    for i in 0..files.saturating_sub(keep) {
        t.remove(format!("wide/f{i:04}"));
    }
    t.remove("deep");
}
