//! `-X/--xattrs` and `-A/--acls`: extended attributes and POSIX ACLs, compared and
//! copied with the entries they belong to (through the `xattr` crate).
//!
//! Which names are mirrored ([`Which::wants`]):
//! - `-X`: the `user.*` namespace; as root also `trusted.*` and `security.*` (as
//!   rsync does);
//! - `-A`: the POSIX ACLs, which Linux keeps as the xattrs `system.posix_acl_access`
//!   (files and directories) and `system.posix_acl_default` (directories);
//! - never other `system.*` names (NFSv4 ACLs and the like).
//!
//! SOURCE's and DEST's attributes are compared directly (both local: remote pairs
//! refuse -X/-A), by the planner for every pair whose contents and attributes are
//! otherwise equal ([`AttrCheck`]): a change in xattrs alone is a `meta` change. They
//! are written to a file's temporary before it is renamed into place, to a directory
//! before its mode and mtime, and to a symlink where the file system allows it (Linux
//! refuses `user.*` on symlinks: skipped). A DEST whose file system has no xattrs
//! (`ENOTSUP`) gives one warning for the run ([`unsupported`]) and is otherwise
//! treated as having none to compare.
//!
//! Paths below an open directory are reached as `/proc/self/fd/N/NAME` without
//! following NAME (a symlink planted in DEST is never followed); an open file or
//! directory itself as `/proc/self/fd/N`, followed to what it is open on.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// What `-X` and `-A` asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Which {
    /// `-X`: `user.*` (and `trusted.*`, `security.*` as root).
    pub xattrs: bool,
    /// `-A`: `system.posix_acl_access`, `system.posix_acl_default`.
    pub acls: bool,
    /// Running as root.
    pub root: bool,
}

impl Which {
    pub fn any(&self) -> bool {
        self.xattrs || self.acls
    }

    /// Whether the attribute `name` is mirrored.
    pub fn wants(&self, name: &[u8]) -> bool {
        if name == b"system.posix_acl_access" || name == b"system.posix_acl_default" {
            return self.acls;
        }
        self.xattrs
            && (name.starts_with(b"user.")
                || (self.root && (name.starts_with(b"trusted.") || name.starts_with(b"security."))))
    }
}

static WHICH: OnceLock<Which> = OnceLock::new();
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
static WARNED: AtomicBool = AtomicBool::new(false);

/// Sets what is mirrored for the whole process (once); nothing when neither flag.
pub fn set(w: Which) {
    if w.any() {
        let _ = WHICH.set(w);
    }
}

/// What is mirrored, `None` without -X and -A.
pub fn get() -> Option<Which> {
    WHICH.get().copied()
}

/// A set of attributes: (name, value) sorted by name.
pub type Attrs = Vec<(OsString, Vec<u8>)>;

fn is_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP)) || e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// Records that DEST's file system has no xattrs; true the first time in the run
/// (the caller then warns once).
pub fn unsupported() -> bool {
    UNSUPPORTED.store(true, Ordering::Relaxed);
    !WARNED.swap(true, Ordering::Relaxed)
}

/// The line that one warning says.
pub const UNSUPPORTED_TEXT: &str =
    "DEST's file system does not support extended attributes: -X/-A attributes are not copied there (warned once)";

fn read_with(
    which: Which,
    list: impl Fn() -> io::Result<xattr::XAttrs>,
    get: impl Fn(&OsStr) -> io::Result<Option<Vec<u8>>>,
) -> io::Result<Attrs> {
    let names = match list() {
        Ok(n) => n,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.filter(|n| which.wants(n.as_bytes())) {
        match get(&name) {
            Ok(Some(v)) => out.push((name, v)),
            Ok(None) => {}
            Err(e) if is_unsupported(&e) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}

/// The path of `name` in open directory `dir` (not followed when used with the
/// crate's non-dereferencing calls).
pub fn at(dir: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(OsStr::from_bytes(name));
    p
}

/// The path of what `fd` is open on (followed).
fn of_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The mirrored attributes of the entry at `path` (the entry itself, a symlink not
/// followed). A file system without xattrs has none.
pub fn read(which: Which, path: &Path) -> io::Result<Attrs> {
    read_with(which, || xattr::list(path), |n| xattr::get(path, n))
}

/// The mirrored attributes of the file or directory open as `fd`.
pub fn read_fd(which: Which, fd: BorrowedFd<'_>) -> io::Result<Attrs> {
    let p = of_fd(fd);
    read_with(which, || xattr::list_deref(&p), |n| xattr::get_deref(&p, n))
}

/// How writing attributes went.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The file system has no xattrs (see [`unsupported`]).
    Unsupported,
}

/// Makes the mirrored attributes of what `set`/`remove` reach equal to `want`,
/// `have` being what it holds now.
fn write_with(
    want: &Attrs,
    have: &Attrs,
    symlink: bool,
    set: impl Fn(&OsStr, &[u8]) -> io::Result<()>,
    remove: impl Fn(&OsStr) -> io::Result<()>,
) -> io::Result<Written> {
    let skip = |e: &io::Error| {
        // Linux allows no user.* on symlinks (EPERM), and some file systems no xattrs
        // on symlinks at all though files have them: skipped, not "unsupported".
        symlink && (e.raw_os_error() == Some(libc::EPERM) || is_unsupported(e))
    };
    for (name, _) in have {
        if !want.iter().any(|(n, _)| n == name) {
            match remove(name) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
                Err(e) if skip(&e) => {}
                Err(e) if is_unsupported(&e) => return Ok(Written::Unsupported),
                Err(e) => return Err(e),
            }
        }
    }
    for (name, value) in want {
        if have.iter().any(|(n, v)| n == name && v == value) {
            continue;
        }
        match set(name, value) {
            Ok(()) => {}
            Err(e) if skip(&e) => {}
            Err(e) if is_unsupported(&e) => return Ok(Written::Unsupported),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot set extended attribute {}: {e}", name.to_string_lossy()),
                ))
            }
        }
    }
    Ok(Written::Done)
}

/// Gives the entry at `path` (not followed) the attributes `want`.
pub fn write(which: Which, path: &Path, want: &Attrs, symlink: bool) -> io::Result<Written> {
    let have = match read(which, path) {
        Ok(h) => h,
        Err(e) if symlink && e.raw_os_error() == Some(libc::EPERM) => Vec::new(),
        Err(e) => return Err(e),
    };
    write_with(want, &have, symlink, |n, v| xattr::set(path, n, v), |n| xattr::remove(path, n))
}

/// Gives the file or directory open as `fd` the attributes `want`.
pub fn write_fd(which: Which, fd: BorrowedFd<'_>, want: &Attrs) -> io::Result<Written> {
    let p = of_fd(fd);
    let have = read_fd(which, fd)?;
    write_with(want, &have, false, |n, v| xattr::set_deref(&p, n, v), |n| xattr::remove_deref(&p, n))
}

/// The planner's comparison: SOURCE's and DEST's attributes at the same relative path.
#[derive(Clone, Debug)]
pub struct AttrCheck {
    pub which: Which,
    pub source: PathBuf,
    pub dest: PathBuf,
}

impl AttrCheck {
    /// True when the entry at `rel` has other mirrored attributes in SOURCE than in
    /// DEST. Unreadable attributes count as equal (the copy reports what fails); a DEST
    /// without xattr support has nothing to compare.
    pub fn differ(&self, rel: &[u8]) -> bool {
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return false;
        }
        let path = |root: &Path| {
            if rel.is_empty() {
                root.to_path_buf()
            } else {
                root.join(OsStr::from_bytes(rel))
            }
        };
        let s = read(self.which, &path(&self.source)).unwrap_or_default();
        let dp = path(&self.dest);
        match xattr::list(&dp) {
            Err(e) if is_unsupported(&e) => {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                return false;
            }
            _ => {}
        }
        let d = read(self.which, &dp).unwrap_or_default();
        s != d
    }
}

#[cfg(test)]
mod tests {
    use super::Which;

    #[test]
    fn namespaces() {
        let x = Which { xattrs: true, acls: false, root: false };
        assert!(x.wants(b"user.a"));
        assert!(!x.wants(b"trusted.a"));
        assert!(!x.wants(b"security.selinux"));
        assert!(!x.wants(b"system.posix_acl_access"));
        let xr = Which { root: true, ..x };
        assert!(xr.wants(b"trusted.a") && xr.wants(b"security.capability"));
        let a = Which { xattrs: false, acls: true, root: true };
        assert!(a.wants(b"system.posix_acl_access") && a.wants(b"system.posix_acl_default"));
        assert!(!a.wants(b"user.a") && !a.wants(b"system.nfs4_acl"));
    }
}
