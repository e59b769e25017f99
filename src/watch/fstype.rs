//! Which file system a path lives on, and whether native change events can be trusted
//! there.
//!
//! The type comes from `statfs` (the kernel's magic number), named from the mount table
//! (`/proc/self/mountinfo`, which also tells FUSE file systems apart: `fuse.sshfs`,
//! `fuse.bindfs`, …). Network file systems (NFS, SMB/CIFS, 9p, Ceph, AFS, Lustre, …)
//! and every FUSE file system count as remote: inotify on them sees only the changes
//! made through this very mount, never those made on the server or underneath.

use std::path::Path;

/// What we learnt about a file system.
#[derive(Clone, Debug)]
pub struct FsInfo {
    /// `ext4`, `tmpfs`, `nfs4`, `fuse.sshfs`, …
    pub name: String,
    /// Native events cannot be trusted there.
    pub remote: bool,
    pub fuse: bool,
}

impl FsInfo {
    pub fn kind_text(&self) -> &'static str {
        if self.fuse {
            "a FUSE file system"
        } else if self.remote {
            "a network file system"
        } else {
            "a local file system"
        }
    }
}

/// Magic numbers (`f_type`) of network and cluster file systems.
const REMOTE_MAGIC: &[(i64, &str)] = &[
    (0x6969, "nfs"),
    (0x517B, "smb"),
    (0xFF53_4D42, "cifs"),
    (0xFE53_4D42, "smb2"),
    (0x0102_1997, "9p"),
    (0x00C3_6400, "ceph"),
    (0x5346_414F, "afs"),
    (0x6B41_4653, "afs"),
    (0x7375_7245, "coda"),
    (0x564C, "ncp"),
    (0x0BD0_0BD0, "lustre"),
    (0x0116_1970, "gfs2"),
    (0x7461_636F, "ocfs2"),
    (0x4750_4653, "gpfs"),
];

const FUSE_MAGIC: i64 = 0x6573_5546;

/// Names (as in the mount table) of remote file systems, for when statfs is not enough.
const REMOTE_NAMES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "ceph",
    "afs",
    "coda",
    "ncpfs",
    "lustre",
    "glusterfs",
    "gfs2",
    "ocfs2",
    "gpfs",
    "beegfs",
    "davfs",
];

/// Looks `path` up.
pub fn of(path: &Path) -> FsInfo {
    let mount_name = mount_fstype(path);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between platforms
    let magic = rustix::fs::statfs(path).ok().map(|s| s.f_type as i64);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let magic: Option<i64> = None;
    let by_magic = magic.and_then(|m| REMOTE_MAGIC.iter().find(|(x, _)| *x == m).map(|(_, n)| *n));
    let fuse = magic == Some(FUSE_MAGIC) || mount_name.as_deref().is_some_and(|n| n.starts_with("fuse"));
    let named_remote = mount_name
        .as_deref()
        .is_some_and(|n| REMOTE_NAMES.iter().any(|r| n == *r || n.starts_with(&format!("{r}."))));
    let name = mount_name
        .or_else(|| by_magic.map(str::to_string))
        .unwrap_or_else(|| "an unknown file system".to_string());
    FsInfo { name, remote: fuse || by_magic.is_some() || named_remote, fuse }
}

/// The file-system type of the mount holding `path`, from /proc/self/mountinfo.
fn mount_fstype(path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in text.lines() {
        // id parent major:minor root mountpoint options [optional...] - fstype source superopts
        let mut fields = line.split(' ');
        let mount_point = fields.nth(4)?;
        let mount_point = unescape(mount_point);
        let fstype = line.split(" - ").nth(1)?.split(' ').next()?.to_string();
        let mp = Path::new(&mount_point);
        if path.starts_with(mp) {
            let len = mount_point.len();
            // Later lines with the same mount point stack on top of earlier ones.
            if best.as_ref().is_none_or(|(l, _)| len >= *l) {
                best = Some((len, fstype));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// The mount points strictly inside `root` (canonical paths), from
/// /proc/self/mountinfo: file systems mounted inside SOURCE.
pub fn mounts_below(root: &Path) -> Vec<std::path::PathBuf> {
    let Ok(root) = std::fs::canonicalize(root) else { return Vec::new() };
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    let mut out: Vec<std::path::PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|mp| std::path::PathBuf::from(unescape(mp)))
        .filter(|mp| mp.starts_with(&root) && *mp != root)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/mnt/my\\040share"), "/mnt/my share");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn local_tmp_is_not_remote() {
        let t = tempfile::tempdir().expect("tempdir");
        let info = of(t.path());
        assert!(!info.remote, "{info:?}");
    }
}
