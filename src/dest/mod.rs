//! The DEST seam: how a mirror's destination is listed and changed.
//!
//! Every driver (one-shot runs, watch mode's first sync, verification and cycles)
//! reaches DEST only through [`Dest`]: scan it (whole, or one subtree), apply a plan
//! to it, rename inside it, compare contents. A new kind of DEST (over SFTP, in an
//! object store) is another implementation of this trait, never a second pipeline.
//! The local, directory-relative implementation is [`LocalTree`] with `apply` behind
//! it; a directory on another host over SFTP is `sftp::SftpTree` (in [`sftp`]); a
//! prefix in an S3 bucket is `s3::S3Tree` (in [`s3`]).

pub mod s3;
pub mod sftp;

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

use crate::apply::{self, ApplyOptions};
use crate::ignore::Chain;
use crate::outcome::Outcome;
use crate::plan::DirPlan;
use crate::relpath::split_last;
use crate::report::Reporter;
use crate::snapshot::{self, Entry, ScanOptions, ScanSink, Scanner, Snapshot};
use crate::source::Source;
use crate::sys::{self, Meta};
use crate::tree::LocalTree;

pub trait Dest: Sync {
    /// DEST as shown to people, in front of relative paths.
    fn shown(&self) -> String;

    /// DEST's root is there.
    fn exists(&self) -> bool;

    /// The local tree, when DEST is a directory on this machine (a one-shot run
    /// between two local trees streams: `stream`).
    fn local(&self) -> Option<&LocalTree> {
        None
    }

    /// Creates DEST's root and any missing parents. Returns the topmost directory it
    /// made, for [`Dest::remove_created`].
    fn create(&self) -> io::Result<Option<PathBuf>>;

    /// Removes what [`Dest::create`] made (a run that stopped before changing
    /// anything), as long as it is still empty.
    fn remove_created(&self, top: &std::path::Path);

    /// Scans the whole of DEST.
    fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot>;

    /// Directory `rel`'s attributes and its whole subtree, scanned with `opts`
    /// (`None`: it cannot be listed, which was reported to the sink). `Err` when the
    /// directory cannot be opened (missing, not a directory).
    fn scan_subtree(&self, rel: &[u8], opts: ScanOptions<'_>) -> io::Result<(Meta, Option<Vec<Entry>>)>;

    /// Directory `rel`'s attributes and its entries, one level (subdirectories without
    /// their children), scanned with `opts`, `chain` being the rules in force above it.
    /// `Err` when it cannot be opened or listed.
    fn scan_level(&self, rel: &[u8], opts: ScanOptions<'_>, chain: &Chain) -> io::Result<(Meta, Vec<Entry>)>;

    /// The entry at `rel` as it is now (a directory without its children), `None`
    /// when there is none.
    fn entry(&self, rel: &[u8]) -> io::Result<Option<Entry>>;

    /// The entries `names` of directory `dir` as they are now, in the same order
    /// (`None` for one that is not there). `Err` when `dir` cannot be read; a name
    /// that cannot be is `None` too.
    fn entries_in(&self, dir: &[u8], names: &[&[u8]]) -> io::Result<Vec<Option<Entry>>> {
        Ok(names.iter().map(|n| self.entry(&crate::relpath::join(dir, n)).ok().flatten()).collect())
    }

    /// Directory `rel` is there.
    fn has_dir(&self, rel: &[u8]) -> bool;

    /// What identifies the file system DEST's root is on (locally the device id): a
    /// root that moved to another one (an unmounted disk leaves the bare mount point)
    /// is not the DEST that was mirrored to.
    fn root_identity(&self) -> io::Result<u64>;

    /// Where native change events for DEST can be had: a local path on a file system
    /// that raises them (not network or FUSE), `None` otherwise.
    fn watch_path(&self) -> Option<PathBuf>;

    /// Applies a directory plan at `base` (relative to both roots), reading what it
    /// copies from `source`. Per-entry failures are reported and come back in the
    /// [`Outcome`]; `Err` only when `base` itself cannot be reached.
    fn apply(
        &self,
        dp: &DirPlan,
        base: &[u8],
        source: &dyn Source,
        rep: &Reporter,
        opts: ApplyOptions,
    ) -> io::Result<Outcome>;

    /// Renames `from` to `to` inside DEST.
    fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()>;

    /// The content digest of DEST's regular file `rel` (`--checksum`).
    fn content_digest(&self, rel: &[u8]) -> io::Result<snapshot::Digest>;

    /// With `--checksum`: content digests of the same-size file pairs of directory
    /// `rel` and below, on both sides (each file opened by its path).
    fn fill_digests(
        &self,
        source: &dyn Source,
        src: &mut [Entry],
        dst: &mut [Entry],
        rel: &[u8],
        sink: &dyn ScanSink,
    ) -> io::Result<()> {
        digests_by_path(self, source, src, dst, rel, sink);
        Ok(())
    }

    /// `-H`: the (device, inode, link count) of DEST's regular file at `rel`, `None`
    /// when there is none there.
    fn file_id(&self, _rel: &[u8]) -> io::Result<Option<sys::FileId>> {
        Ok(None)
    }

    /// `-H`: makes `link` another name of DEST's file `target` (a hard link), under a
    /// temporary name renamed into place when `link` exists (it is replaced, kept in
    /// `--backup-dir` first), directly when the name is free.
    fn hard_link(
        &self,
        _target: &[u8],
        _link: &[u8],
        _backup: Option<&crate::backup::Backup>,
    ) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "hard links are not supported on this DEST"))
    }

    /// DEST can set a symlink's own mtime and owner (SFTP cannot: its SETSTAT follows
    /// links, so symlinks there are compared by target only).
    fn keeps_link_attrs(&self) -> bool {
        true
    }

    /// DEST can keep an entry's owner (an object store's objects have none).
    fn keeps_owner(&self) -> bool {
        true
    }

    /// The precision of DEST's mtimes when it is coarser than nanoseconds (as
    /// `PlanOptions::dest_grain_ns`); `None`: as configured.
    fn mtime_grain_ns(&self) -> Option<i128> {
        None
    }

    /// DEST is reached over a connection, and it was lost: what happened, in words
    /// (`connection to host lost (ssh: …)`). Watch mode then pauses its cycles and
    /// calls [`Dest::reconnect`] with a back-off. A local DEST is never lost.
    fn connection_lost(&self) -> Option<String> {
        None
    }

    /// Connects to DEST again after [`Dest::connection_lost`]; `Err`: why not, one
    /// line.
    fn reconnect(&self) -> Result<(), String> {
        Ok(())
    }
}

/// `--checksum` digests of the same-size file pairs below `rel`, each file of either
/// side opened by its path (`Dest::fill_digests` where no faster way exists).
fn digests_by_path<D: Dest + ?Sized>(
    dest: &D,
    source: &dyn Source,
    src: &mut [Entry],
    dst: &mut [Entry],
    rel: &[u8],
    sink: &dyn ScanSink,
) {
    let dest_digest = |path: &[u8]| dest.content_digest(path);
    snapshot::digest_pairs(src, dst, rel, sink, &|p: &[u8]| source.digest(p), &dest_digest);
}

impl Dest for LocalTree {
    fn shown(&self) -> String {
        self.root().display().to_string()
    }

    fn exists(&self) -> bool {
        self.root().exists()
    }

    fn local(&self) -> Option<&LocalTree> {
        Some(self)
    }

    fn create(&self) -> io::Result<Option<PathBuf>> {
        if self.exists() {
            return Ok(None);
        }
        let mut top = self.root();
        while let Some(p) = top.parent().filter(|p| !p.exists()) {
            top = p;
        }
        let top = top.to_path_buf();
        std::fs::create_dir_all(self.root())?;
        Ok(Some(top))
    }

    fn remove_created(&self, top: &std::path::Path) {
        let mut p = self.root();
        while std::fs::remove_dir(p).is_ok() && p != top {
            match p.parent() {
                Some(up) => p = up,
                None => break,
            }
        }
    }

    fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
        LocalTree::scan(self, opts)
    }

    fn scan_subtree(&self, rel: &[u8], opts: ScanOptions<'_>) -> io::Result<(Meta, Option<Vec<Entry>>)> {
        LocalTree::scan_subtree(self, rel, &Scanner::new(opts), &Vec::new())
    }

    fn scan_level(&self, rel: &[u8], opts: ScanOptions<'_>, chain: &Chain) -> io::Result<(Meta, Vec<Entry>)> {
        let fd = self.open_dir(rel)?;
        let (_, meta) = sys::from_stat(&sys::fstat(fd.as_fd())?);
        let (entries, _) = Scanner::new(opts)
            .level(fd.as_fd(), rel, chain)
            .map_err(|()| io::Error::other("cannot list its entries (reported)"))?;
        Ok((meta, entries))
    }

    fn entry(&self, rel: &[u8]) -> io::Result<Option<Entry>> {
        let (dir, name) = split_last(rel);
        let fd = match self.open_dir(dir) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(None),
            Err(e) => return Err(e),
        };
        snapshot::entry_at(fd.as_fd(), name)
    }

    fn entries_in(&self, dir: &[u8], names: &[&[u8]]) -> io::Result<Vec<Option<Entry>>> {
        // (One opening of the directory for all of them.)
        let fd = match self.open_dir(dir) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(names.iter().map(|_| None).collect())
            }
            Err(e) => return Err(e),
        };
        Ok(names.iter().map(|n| snapshot::entry_at(fd.as_fd(), n).ok().flatten()).collect())
    }

    fn has_dir(&self, rel: &[u8]) -> bool {
        self.open_dir(rel).is_ok()
    }

    fn root_identity(&self) -> io::Result<u64> {
        self.device()
    }

    fn watch_path(&self) -> Option<PathBuf> {
        let fs = crate::watch::fstype::of(self.root());
        (!fs.remote).then(|| self.root().to_path_buf())
    }

    fn apply(
        &self,
        dp: &DirPlan,
        base: &[u8],
        source: &dyn Source,
        rep: &Reporter,
        opts: ApplyOptions,
    ) -> io::Result<Outcome> {
        apply::apply_at(dp, base, source, self, rep, opts)
    }

    fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        apply::rename_in(self, from, to)
    }

    fn file_id(&self, rel: &[u8]) -> io::Result<Option<sys::FileId>> {
        let (dir, name) = split_last(rel);
        let fd = match self.open_dir(dir) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let st = match sys::stat_at(fd.as_fd(), name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        #[allow(clippy::unnecessary_cast)]
        let id = (st.st_dev as u64, st.st_ino as u64, st.st_nlink as u64);
        Ok((sys::from_stat(&st).0 == sys::RawKind::File).then_some(id))
    }

    fn hard_link(
        &self,
        target: &[u8],
        link: &[u8],
        backup: Option<&crate::backup::Backup>,
    ) -> io::Result<()> {
        apply::hard_link_in(self, target, link, backup)
    }

    fn fill_digests(
        &self,
        source: &dyn Source,
        src: &mut [Entry],
        dst: &mut [Entry],
        rel: &[u8],
        sink: &dyn ScanSink,
    ) -> io::Result<()> {
        // Both local: descriptor-relative, directory by directory.
        let Some(local) = source.local() else {
            digests_by_path(self, source, src, dst, rel, sink);
            return Ok(());
        };
        let (s, d) = (local.open_dir(rel)?, self.open_dir(rel)?);
        snapshot::digest_dir(s.as_fd(), src, d.as_fd(), dst, rel, sink);
        Ok(())
    }

    fn content_digest(&self, rel: &[u8]) -> io::Result<snapshot::Digest> {
        Source::digest(self, rel)
    }
}
