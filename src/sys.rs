//! Directory-relative, no-follow file-system primitives.
//!
//! Every operation tandem performs inside SOURCE or DEST goes through a directory file
//! descriptor and a single path component (`openat`, `fstatat`, `mkdirat`, `renameat`, …),
//! never through a joined path. This is both faster (no repeated path lookups: path-based
//! calls cost about 30 % more kernel CPU, see BENCHMARKS.md, "Measured limits on this
//! machine") and safer: a directory in DEST that is swapped for a
//! symlink can never redirect a write outside DEST, because every open uses `O_NOFOLLOW`.
//!
//! This module owns the unix system calls; the rest of the crate speaks in terms of
//! [`Meta`], names (`&[u8]`) and file descriptors.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

/// Attributes tandem compares and mirrors, for any kind of entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    /// Modification time: seconds since the epoch.
    pub mtime_sec: i64,
    /// Modification time: nanoseconds within the second.
    pub mtime_nsec: u32,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Inode number (used to recognise renames).
    pub ino: u64,
    /// Allocated 512-byte blocks, to spot sparse files cheaply.
    pub blocks: u64,
}

impl Meta {
    /// Modification time in nanoseconds since the epoch.
    pub fn mtime_ns(&self) -> i128 {
        self.mtime_sec as i128 * 1_000_000_000 + self.mtime_nsec as i128
    }
}

/// A file's identity for `-H`: (device, inode, link count).
pub type FileId = (u64, u64, u64);

/// The type of a directory entry, as far as tandem cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawKind {
    File,
    Dir,
    Symlink,
    /// FIFO, socket, block or character device: never opened.
    Special(&'static str),
}

/// Converts a stat result into tandem's kind and metadata. (The casts are no-ops on
/// Linux x86-64 but not on every platform's `stat` layout.)
#[allow(clippy::unnecessary_cast)]
pub fn from_stat(st: &rfs::Stat) -> (RawKind, Meta) {
    let ft = FileType::from_raw_mode(st.st_mode as _);
    let kind = match ft {
        FileType::RegularFile => RawKind::File,
        FileType::Directory => RawKind::Dir,
        FileType::Symlink => RawKind::Symlink,
        FileType::Fifo => RawKind::Special("fifo"),
        FileType::Socket => RawKind::Special("socket"),
        FileType::CharacterDevice => RawKind::Special("character device"),
        FileType::BlockDevice => RawKind::Special("block device"),
        FileType::Unknown => RawKind::Special("unknown file type"),
    };
    let meta = Meta {
        size: st.st_size as u64,
        mtime_sec: st.st_mtime as i64,
        mtime_nsec: st.st_mtime_nsec as u32,
        mode: (st.st_mode as u32) & 0o7777,
        uid: st.st_uid as u32,
        gid: st.st_gid as u32,
        ino: st.st_ino as u64,
        blocks: st.st_blocks as u64,
    };
    (kind, meta)
}

/// A C string for a name component. Names from `readdir` never contain NUL.
pub fn cname(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens a directory given by the user (SOURCE or DEST root). Symlinks are followed here,
/// since the user named this path; nothing below it is ever followed.
pub fn open_root(path: &std::path::Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)
}

/// Opens the subdirectory `name` of `dir` without following a symlink.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    // (A name is handed to the kernel from a buffer on the stack: nothing allocated.)
    Ok(rfs::openat(dir, name, dir_flags(), Mode::empty())?)
}

/// Opens directory `rel` (components joined with `/`, empty for `dir` itself) below
/// `dir`, one component at a time, never following a symlink.
pub fn open_path_at(dir: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    let mut cur = rustix::io::dup(dir)?;
    for comp in rel.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".") {
        cur = open_dir_at(cur.as_fd(), comp)?;
    }
    Ok(cur)
}

/// Set by the SIGINT/SIGTERM handlers: abandon the current file (its temporary is
/// removed), start nothing new.
pub fn stop_flag() -> &'static std::sync::Arc<std::sync::atomic::AtomicBool> {
    static STOP: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
        std::sync::OnceLock::new();
    STOP.get_or_init(Default::default)
}

pub fn stopping() -> bool {
    stop_flag().load(Ordering::Relaxed)
}

/// The status of a process ended by a further SIGINT/SIGTERM while it is already
/// stopping: 128 + SIGINT, as shells report a process killed by Ctrl-C.
pub const SECOND_SIGNAL_EXIT: i32 = 130;

/// Stop signals that arrive within this of the first one are that same request again:
/// coreutils `timeout` signals the child and then its whole process group, so one
/// `timeout` delivers its signal twice; a user's second Ctrl-C comes later than this.
const REPEAT_WINDOW_NS: u64 = 1_000_000_000;

/// When the first stop signal arrived (CLOCK_MONOTONIC nanoseconds, at least 1); 0: none
/// yet.
static FIRST_STOP_NS: AtomicU64 = AtomicU64::new(0);

/// CLOCK_MONOTONIC now, in nanoseconds. (`clock_gettime` is async-signal-safe.)
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// Installs the SIGINT/SIGTERM handlers: the first signal sets [`stop_flag`] (the run
/// stops cleanly); the same request repeated within a second is ignored; any later
/// one ends the process at once with [`SECOND_SIGNAL_EXIT`].
pub fn install_stop_handlers() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = stop_flag().clone();
    for sig in [SIGINT, SIGTERM] {
        let flag = flag.clone();
        let action = move || {
            // Only async-signal-safe work here: atomics, clock_gettime, _exit.
            let now = monotonic_ns().max(1);
            match FIRST_STOP_NS.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => flag.store(true, Ordering::SeqCst),
                Err(first) if now.saturating_sub(first) > REPEAT_WINDOW_NS => {
                    // SAFETY: _exit is async-signal-safe and ends the process at once.
                    unsafe { libc::_exit(SECOND_SIGNAL_EXIT) }
                }
                Err(_) => {}
            }
        };
        // SAFETY: the action does only async-signal-safe things (see above).
        let _ = unsafe { signal_hook::low_level::register(sig, action) };
    }
}

/// Set by SIGHUP (watch mode: verify DEST now); taken by [`take_hangup`].
static HANGUP: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
    std::sync::OnceLock::new();

/// Installs the SIGHUP handler (watch mode: a verification of DEST is asked for).
pub fn install_hangup_handler() {
    let flag = HANGUP.get_or_init(Default::default).clone();
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, flag);
}

/// True once after each SIGHUP.
pub fn take_hangup() -> bool {
    HANGUP.get().is_some_and(|f| f.swap(false, Ordering::SeqCst))
}

fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "interrupted by a signal; not copied")
}

/// `fstatat` without following symlinks.
pub fn stat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<rfs::Stat> {
    Ok(rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<rfs::Stat> {
    Ok(rfs::fstat(fd)?)
}

pub fn read_link_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    Ok(rfs::readlinkat(dir, cname(name)?.as_c_str(), Vec::new())?.into_bytes())
}

/// The `getdents64` buffer: a few hundred names per call (one call lists most
/// directories whole).
#[cfg(any(target_os = "linux", target_os = "android"))]
const LIST_BUF: usize = 64 << 10;

/// A name read from a directory, with the kind its directory entry reports, if any.
pub type Listed = (Box<[u8]>, Option<RawKind>);

/// Lists the names in an open directory (without `.` and `..`), with the kind the
/// directory entry reports when it knows it. Reads from the start of `dir`, which must
/// be a descriptor freshly opened for this listing.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    each_name(dir, |name, kind| {
        out.push((Box::<[u8]>::from(name.to_bytes()), kind));
        true
    })?;
    Ok(out)
}

/// Puts an open directory's listing back at its start (after [`each_name`] read it).
pub fn rewind_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    rfs::seek(dir, rfs::SeekFrom::Start(0))?;
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
thread_local! {
    /// Each thread's `getdents64` buffer (a listing allocates nothing of its own).
    static LIST: std::cell::RefCell<Vec<std::mem::MaybeUninit<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Calls `f` with each name in an open directory (without `.` and `..`) and the kind
/// its directory entry reports, if any, until `f` returns `false`. Returns whether it
/// saw every name. Reads from the start of `dir`, which must be a descriptor freshly
/// opened for this listing. `f` must not list a directory itself.
pub fn each_name(
    dir: BorrowedFd<'_>,
    mut f: impl FnMut(&std::ffi::CStr, Option<RawKind>) -> bool,
) -> io::Result<bool> {
    let mut call = |name: &std::ffi::CStr, ft: FileType| {
        let b = name.to_bytes();
        if b == b"." || b == b".." {
            return true;
        }
        let kind = match ft {
            FileType::RegularFile => Some(RawKind::File),
            FileType::Directory => Some(RawKind::Dir),
            FileType::Symlink => Some(RawKind::Symlink),
            _ => None,
        };
        f(name, kind)
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // getdents64 straight on the borrowed descriptor: no extra open per directory.
        let mut walk = |buf: &mut Vec<std::mem::MaybeUninit<u8>>| -> io::Result<bool> {
            if buf.len() < LIST_BUF {
                buf.resize(LIST_BUF, std::mem::MaybeUninit::uninit());
            }
            let mut raw = rfs::RawDir::new(dir, &mut buf[..]);
            while let Some(entry) = raw.next() {
                let entry = entry?;
                if !call(entry.file_name(), entry.file_type()) {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        LIST.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => walk(&mut buf),
            Err(_) => walk(&mut Vec::new()),
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let mut reader = rfs::Dir::read_from(dir)?;
        while let Some(entry) = reader.read() {
            let entry = entry?;
            if !call(entry.file_name(), entry.file_type()) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Raises the soft open-file limit to the hard limit: a parallel walk keeps one
/// descriptor open per directory level per worker.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn timespec(sec: i64, nsec: u32) -> Timespec {
    Timespec { tv_sec: sec as _, tv_nsec: nsec as _ }
}

fn mtime_only(meta: &Meta) -> Timestamps {
    Timestamps {
        last_access: Timespec { tv_sec: 0, tv_nsec: rfs::UTIME_OMIT as _ },
        last_modification: timespec(meta.mtime_sec, meta.mtime_nsec),
    }
}

/// Which attributes to apply to an entry.
#[derive(Clone, Copy, Debug)]
pub struct Attrs<'a> {
    pub meta: &'a Meta,
    /// Also set owner and group (only meaningful as root).
    pub owner: bool,
}

/// Sets owner (optionally), mode and mtime on an open file or directory, in that order
/// (chown clears set-id bits, so mode comes after it).
pub fn set_attrs_fd(fd: BorrowedFd<'_>, attrs: Attrs<'_>) -> io::Result<()> {
    let m = attrs.meta;
    if attrs.owner {
        rfs::fchown(fd, Some(rustix::fs::Uid::from_raw(m.uid)), Some(rustix::fs::Gid::from_raw(m.gid)))?;
    }
    rfs::fchmod(fd, Mode::from_raw_mode(m.mode as _))?;
    rfs::futimens(fd, &mtime_only(m))?;
    Ok(())
}

/// Like [`set_attrs_fd`] for a file this process just created with
/// [`create_temp`]`(mode)`: skips the `fchown` and `fchmod` that would change nothing.
pub fn set_new_file_attrs(fd: BorrowedFd<'_>, attrs: Attrs<'_>) -> io::Result<()> {
    let m = attrs.meta;
    let c = creds();
    let chown = attrs.owner && (m.uid != c.uid || m.gid != c.gid);
    if chown {
        rfs::fchown(fd, Some(rustix::fs::Uid::from_raw(m.uid)), Some(rustix::fs::Gid::from_raw(m.gid)))?;
    }
    // chown clears set-id bits, and the umask may have masked some bits at creation.
    if chown || m.mode != (m.mode & 0o777 & !c.umask) {
        rfs::fchmod(fd, Mode::from_raw_mode(m.mode as _))?;
    }
    rfs::futimens(fd, &mtime_only(m))?;
    Ok(())
}

/// Makes an open directory writable and searchable for its owner, when this process is
/// not root, owns it, and it is not (a read-only directory in DEST must still be
/// updated). Returns the mode to restore afterwards, or `None` when nothing changed.
pub fn make_dir_writable(fd: BorrowedFd<'_>) -> io::Result<Option<u32>> {
    let c = creds();
    if c.uid == 0 {
        return Ok(None);
    }
    let st = fstat(fd)?;
    let (_, m) = from_stat(&st);
    if m.uid != c.uid || m.mode & 0o300 == 0o300 {
        return Ok(None);
    }
    rfs::fchmod(fd, Mode::from_raw_mode((m.mode | 0o300) as _))?;
    Ok(Some(m.mode))
}

/// `-X`/`-A` on a temporary created read-only (mode without `u+w`), not as root: user
/// xattrs need write permission on the inode, so it is made owner-writable until its
/// attributes are written. Returns whether it was (its mode must then be set again).
pub fn make_temp_writable(fd: BorrowedFd<'_>, mode: u32) -> io::Result<bool> {
    if creds().uid == 0 || mode & 0o200 != 0 {
        return Ok(false);
    }
    rfs::fchmod(fd, Mode::from_raw_mode(((mode & 0o777) | 0o200) as _))?;
    Ok(true)
}

/// Restores a directory's permission bits (after [`make_dir_writable`]).
pub fn restore_dir_mode(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rfs::fchmod(fd, Mode::from_raw_mode(mode as _))?)
}

/// Sets owner (optionally) and mtime on a symlink itself, never its target.
pub fn set_link_attrs_at(dir: BorrowedFd<'_>, name: &[u8], attrs: Attrs<'_>) -> io::Result<()> {
    let c = cname(name)?;
    let m = attrs.meta;
    if attrs.owner {
        rfs::chownat(
            dir,
            c.as_c_str(),
            Some(rustix::fs::Uid::from_raw(m.uid)),
            Some(rustix::fs::Gid::from_raw(m.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    rfs::utimensat(dir, c.as_c_str(), &mtime_only(m), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// True when directory `dir` is on a FUSE file system: there, changing a symlink's
/// owner or mtime can reach a server that follows the link (sshfs sends SFTP's
/// SETSTAT, which does), changing or failing on its target instead.
pub fn setattr_follows_links(dir: BorrowedFd<'_>) -> bool {
    /// `FUSE_SUPER_MAGIC` (linux/magic.h).
    const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
    match rfs::fstatfs(dir) {
        #[allow(clippy::unnecessary_cast)]
        Ok(st) => st.f_type as i64 == FUSE_SUPER_MAGIC,
        Err(_) => false,
    }
}

/// Sets attributes of the regular file or directory `name` in `dir`, never through a
/// symlink: the entry is opened with `O_NOFOLLOW` and checked to be of `want` kind.
pub fn set_attrs_at(dir: BorrowedFd<'_>, name: &[u8], want: RawKind, attrs: Attrs<'_>) -> io::Result<()> {
    let c = cname(name)?;
    let flags = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match rfs::openat(dir, c.as_c_str(), flags | OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => fd,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Err(rustix::io::Errno::ACCESS) => {
            // No read permission (possible when not root): use an O_PATH handle and
            // act on the inode it pins through /proc/self/fd.
            let fd = rfs::openat(
                dir,
                c.as_c_str(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            check_kind(fd.as_fd(), want)?;
            return set_attrs_by_proc(fd.as_fd(), attrs);
        }
        Err(e) => return Err(e.into()),
    };
    check_kind(fd.as_fd(), want)?;
    set_attrs_fd(fd.as_fd(), attrs)
}

fn check_kind(fd: BorrowedFd<'_>, want: RawKind) -> io::Result<()> {
    let (kind, _) = from_stat(&fstat(fd)?);
    if kind != want {
        return Err(io::Error::other("entry changed type during the sync"));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_attrs_by_proc(fd: BorrowedFd<'_>, attrs: Attrs<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let m = attrs.meta;
    if attrs.owner {
        rfs::chown(
            path.as_str(),
            Some(rustix::fs::Uid::from_raw(m.uid)),
            Some(rustix::fs::Gid::from_raw(m.gid)),
        )?;
    }
    rfs::chmod(path.as_str(), Mode::from_raw_mode(m.mode as _))?;
    rfs::utimensat(rfs::CWD, path.as_str(), &mtime_only(m), AtFlags::empty())?;
    Ok(())
}

pub fn mkdir_at(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    Ok(rfs::mkdirat(dir, cname(name)?.as_c_str(), Mode::from_raw_mode(mode as _))?)
}

pub fn unlink_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    Ok(rfs::unlinkat(dir, cname(name)?.as_c_str(), AtFlags::empty())?)
}

pub fn rmdir_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    Ok(rfs::unlinkat(dir, cname(name)?.as_c_str(), AtFlags::REMOVEDIR)?)
}

pub fn rename_at(dir: BorrowedFd<'_>, from: &[u8], to: &[u8]) -> io::Result<()> {
    Ok(rfs::renameat(dir, cname(from)?.as_c_str(), dir, cname(to)?.as_c_str())?)
}

/// Renames between two directories; fails rather than replace an existing entry of
/// another kind.
pub fn rename_between(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
) -> io::Result<()> {
    Ok(rfs::renameat(from_dir, cname(from)?.as_c_str(), to_dir, cname(to)?.as_c_str())?)
}

/// A hard link `to` (in `to_dir`) of `from` (in `from_dir`); a symlink is linked
/// itself, never followed.
pub fn link_between(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
) -> io::Result<()> {
    Ok(rfs::linkat(from_dir, cname(from)?.as_c_str(), to_dir, cname(to)?.as_c_str(), AtFlags::empty())?)
}

pub fn symlink_at(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    Ok(rfs::symlinkat(cname(target)?.as_c_str(), dir, cname(name)?.as_c_str())?)
}

/// Removes whatever `name` is (file, symlink, special file or a whole directory tree),
/// without following symlinks. Calls `removed(relative name)` for each entry removed,
/// children before their directory.
pub fn remove_any(dir: BorrowedFd<'_>, name: &[u8], removed: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    match unlink_at(dir, name) {
        Ok(()) => {
            removed(name);
            Ok(())
        }
        Err(e) if is_dir_error(&e) => {
            let sub = open_dir_at(dir, name)?;
            for (child, _) in list_dir(sub.as_fd())? {
                let mut child_removed = |rel: &[u8]| {
                    let mut p = name.to_vec();
                    p.push(b'/');
                    p.extend_from_slice(rel);
                    removed(&p);
                };
                remove_any(sub.as_fd(), &child, &mut child_removed)?;
            }
            drop(sub);
            rmdir_at(dir, name)?;
            removed(name);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// True for the errors `unlink` gives when the entry is a directory.
pub fn is_dir_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EISDIR) | Some(libc::EPERM))
}

/// Prefix and suffix of the temporary names tandem writes in DEST.
pub const TEMP_PREFIX: &[u8] = b".tandem-";
pub const TEMP_SUFFIX: &[u8] = b".tmp";

/// True when `name` looks like one of tandem's temporaries.
pub fn is_temp_name(name: &[u8]) -> bool {
    name.len() > TEMP_PREFIX.len() + TEMP_SUFFIX.len()
        && name.starts_with(TEMP_PREFIX)
        && name.ends_with(TEMP_SUFFIX)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name, unique within this process and across processes (pid).
pub fn temp_name() -> Vec<u8> {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".tandem-{pid:x}-{n:x}.tmp").into_bytes()
}

/// The process's file-creation mask and effective ids, read once at start-up (before
/// any worker thread exists), so new files can be created with their final mode and
/// owner and the extra `fchmod`/`fchown` skipped when they would change nothing.
#[derive(Clone, Copy, Debug)]
pub struct Creds {
    pub umask: u32,
    pub uid: u32,
    pub gid: u32,
}

static CREDS: std::sync::OnceLock<Creds> = std::sync::OnceLock::new();

/// Reads the umask and ids; call once, early, while the process has one thread.
pub fn init_creds() -> Creds {
    *CREDS.get_or_init(|| {
        let old = rustix::process::umask(Mode::from_raw_mode(0o022));
        rustix::process::umask(old);
        Creds {
            umask: old.bits() as u32,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    })
}

fn creds() -> Creds {
    init_creds()
}

/// Creates a new temporary file in `dir` with permission bits `mode` (as far as the
/// umask lets them through; [`set_new_file_attrs`] fixes the rest); returns its name and
/// descriptor.
pub fn create_temp(dir: BorrowedFd<'_>, mode: u32) -> io::Result<(Vec<u8>, OwnedFd)> {
    loop {
        let name = temp_name();
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rfs::openat(dir, cname(&name)?.as_c_str(), flags, Mode::from_raw_mode((mode & 0o777) as _)) {
            Ok(fd) => return Ok((name, fd)),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Opens a source file for reading without following a symlink and without blocking
/// (a FIFO that replaced a file must not hang us). Returns the descriptor and a fresh stat;
/// fails when the entry is no longer a regular file.
pub fn open_source_file(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<(OwnedFd, rfs::Stat)> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, cname(name)?.as_c_str(), flags, Mode::empty()).map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            io::Error::other("entry changed type during the sync (now a symlink)")
        } else {
            e.into()
        }
    })?;
    let st = rfs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode as _) != FileType::RegularFile {
        return Err(io::Error::other("entry changed type during the sync (no longer a regular file)"));
    }
    Ok((fd, st))
}

/// Bytes written by file copies so far (read by the progress display).
static BYTES_COPIED: AtomicU64 = AtomicU64::new(0);

pub fn bytes_copied() -> u64 {
    BYTES_COPIED.load(Ordering::Relaxed)
}

/// Counts `n` bytes copied by a copy that does not go through [`copy_data`] (over SFTP).
pub fn count_copied(n: u64) {
    BYTES_COPIED.fetch_add(n, Ordering::Relaxed);
}

thread_local! {
    static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Copies `len` bytes of `src` into `dst`, both at offset 0, keeping holes where the
/// source is sparse. Returns the bytes copied; stops early if the source shrinks.
pub fn copy_data(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, meta: &Meta) -> io::Result<u64> {
    let len = meta.size;
    if len == 0 {
        return Ok(0);
    }
    let sparse = meta.blocks.saturating_mul(512) < len;
    if !sparse {
        let n = copy_range(src, dst, 0, len)?;
        return Ok(n);
    }
    // Sparse source: copy only the data extents, then extend to full length.
    let mut off = 0u64;
    while off < len {
        let data = match rfs::seek(src, rfs::SeekFrom::Data(off)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => break,
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::OPNOTSUPP) => {
                copy_range(src, dst, off, len - off)?;
                break;
            }
            Err(e) => return Err(e.into()),
        };
        if data >= len {
            break;
        }
        let hole = rfs::seek(src, rfs::SeekFrom::Hole(data))?.min(len);
        copy_range(src, dst, data, hole - data)?;
        off = hole;
    }
    rfs::ftruncate(dst, len)?;
    Ok(len)
}

/// The most one `copy_file_range` call is asked for: between calls the stop flag is
/// checked, so SIGINT abandons even a huge file within a fraction of a second, and the
/// progress display moves.
const COPY_CHUNK: u64 = 64 << 20;
/// The buffer of plain reads and writes where `copy_file_range` is not supported:
/// large enough that system calls cost little per byte, small enough per thread.
const READ_BUF: usize = 256 << 10;

/// Copies `[off, off+len)` from `src` to the same offsets in `dst`: `copy_file_range`
/// first (reflinks and server-side copies where the file system offers them), plain
/// reads and writes where it is not supported.
fn copy_range(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, off: u64, len: u64) -> io::Result<u64> {
    let mut done = 0u64;
    let mut use_cfr = true;
    while done < len {
        if stopping() {
            return Err(interrupted());
        }
        // Small pieces under --bwlimit, each paid for in its shared bucket.
        let want = (len - done).min(COPY_CHUNK).min(crate::bwlimit::chunk()) as usize;
        if use_cfr {
            let mut in_off = off + done;
            let mut out_off = off + done;
            match rfs::copy_file_range(src, Some(&mut in_off), dst, Some(&mut out_off), want) {
                Ok(0) => return Ok(done), // source shrank
                Ok(n) => {
                    done += n as u64;
                    BYTES_COPIED.fetch_add(n as u64, Ordering::Relaxed);
                    crate::bwlimit::account(n as u64, stopping);
                    continue;
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(
                    rustix::io::Errno::XDEV
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::NOSYS
                    | rustix::io::Errno::OPNOTSUPP
                    | rustix::io::Errno::PERM,
                ) => {
                    use_cfr = false;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let n = BUF.with(|b| -> io::Result<usize> {
            let mut buf = b.borrow_mut();
            if buf.len() < READ_BUF {
                buf.resize(READ_BUF, 0);
            }
            let chunk = want.min(buf.len());
            let n = loop {
                match rustix::io::pread(src, &mut buf[..chunk], off + done) {
                    Ok(n) => break n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let mut w = 0;
            while w < n {
                match rustix::io::pwrite(dst, &buf[w..n], off + done + w as u64) {
                    Ok(k) => w += k,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(n)
        })?;
        if n == 0 {
            return Ok(done);
        }
        done += n as u64;
        BYTES_COPIED.fetch_add(n as u64, Ordering::Relaxed);
        crate::bwlimit::account(n as u64, stopping);
    }
    Ok(done)
}

/// True when two stats of the same open file show it was not modified in between.
pub fn same_version(a: &rfs::Stat, b: &rfs::Stat) -> bool {
    a.st_size == b.st_size
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
        && a.st_ctime == b.st_ctime
        && a.st_ctime_nsec == b.st_ctime_nsec
}

/// The last OS error as an io::Error (for callers using raw results).
pub fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let s = io::Error::from_raw_os_error(code).to_string();
            // "Permission denied (os error 13)" -> "Permission denied"
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

/// Lowers the calling thread's scheduling priority (nice 10; Linux keeps a nice value
/// per thread): for work that may wait while the rest of the process is busy.
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// Gives memory freed by the allocator back to the system (glibc keeps it otherwise):
/// watch mode calls this after its first full sync, whose scans and plan are gone.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Now as a local RFC 3339 timestamp with milliseconds: `2026-12-01T08:09:26.123+01:00`
/// (the zone from the system's time-zone settings, `TZ` included; UTC if unknown).
pub fn local_timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r only writes the `tm` it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        // SAFETY: as above.
        unsafe { libc::gmtime_r(&secs, &mut tm) };
        tm.tm_gmtoff = 0;
    }
    let off = tm.tm_gmtoff / 60;
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{sign}{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis(),
        off.abs() / 60,
        off.abs() % 60
    )
}
