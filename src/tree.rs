//! A directory tree on this machine: SOURCE or DEST when it is local.
//!
//! A [`LocalTree`] is a root path; everything below it is reached through directory
//! descriptors opened one component at a time without following symlinks (`sys`), and
//! scanned with `snapshot`'s parallel walker. It is the local implementation of both
//! seams: SOURCE (`source::Source`) and DEST (`dest::Dest`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::ignore::Chain;
use crate::snapshot::{self, Entry, ScanOptions, Scanner, Snapshot};
use crate::sys::{self, Meta};

#[derive(Clone, Debug)]
pub struct LocalTree {
    root: PathBuf,
}

impl LocalTree {
    pub fn new(root: impl Into<PathBuf>) -> LocalTree {
        LocalTree { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the root (following a symlink there: the user named this path).
    pub fn open(&self) -> io::Result<OwnedFd> {
        sys::open_root(&self.root)
    }

    /// Opens directory `rel` below the root, never following a symlink.
    pub fn open_dir(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        sys::open_path_at(self.open()?.as_fd(), rel)
    }

    /// The device id of the file system the root is on.
    pub fn device(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(std::fs::metadata(&self.root)?.dev())
    }

    /// Scans the whole tree.
    pub fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
        snapshot::scan(&self.root, opts)
    }

    /// Directory `rel`'s attributes and its subtree (`None` when it cannot be listed,
    /// which was reported), with `chain` the rules in force above it. `Err` when the
    /// directory cannot be opened.
    pub fn scan_subtree(
        &self,
        rel: &[u8],
        scanner: &Scanner<'_>,
        chain: &Chain,
    ) -> io::Result<(Meta, Option<Vec<Entry>>)> {
        let fd = self.open_dir(rel)?;
        let (_, meta) = sys::from_stat(&sys::fstat(fd.as_fd())?);
        Ok((meta, scanner.subtree(fd, rel, chain)))
    }
}
