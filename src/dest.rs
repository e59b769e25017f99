//! The DEST seam: how a mirror's destination is listed and changed.
//!
//! Every driver (one-shot runs, watch mode's first sync, verification and cycles)
//! reaches DEST only through [`Dest`]: scan it (whole, or one subtree), apply a plan
//! to it, rename inside it, compare contents. A new kind of DEST (over SFTP, in an
//! object store) is another implementation of this trait, never a second pipeline.
//! Today's implementation is the local, directory-relative one: [`LocalTree`] with
//! `apply` behind it.

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

use crate::apply::{self, ApplyOptions};
use crate::ignore::Chain;
use crate::outcome::Outcome;
use crate::plan::DirPlan;
use crate::report::Reporter;
use crate::snapshot::{self, Entry, ScanOptions, ScanSink, Scanner, Snapshot};
use crate::sys::Meta;
use crate::tree::LocalTree;

pub trait Dest: Sync {
    /// DEST as shown to people, in front of relative paths.
    fn shown(&self) -> String;

    /// DEST's root is there.
    fn exists(&self) -> bool;

    /// Creates DEST's root and any missing parents. Returns the topmost directory it
    /// made, for [`Dest::remove_created`].
    fn create(&self) -> io::Result<Option<PathBuf>>;

    /// Removes what [`Dest::create`] made (a run that stopped before changing
    /// anything), as long as it is still empty.
    fn remove_created(&self, top: &std::path::Path);

    /// Scans the whole of DEST.
    fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot>;

    /// Directory `rel`'s attributes and subtree (see [`LocalTree::scan_subtree`]).
    fn scan_subtree(
        &self,
        rel: &[u8],
        scanner: &Scanner<'_>,
        chain: &Chain,
    ) -> io::Result<(Meta, Option<Vec<Entry>>)>;

    /// Directory `rel` is there.
    fn has_dir(&self, rel: &[u8]) -> bool;

    /// Applies a directory plan at `base` (relative to both roots), reading what it
    /// copies from `source`. Per-entry failures are reported and come back in the
    /// [`Outcome`]; `Err` only when `base` itself cannot be reached.
    fn apply(
        &self,
        dp: &DirPlan,
        base: &[u8],
        source: &LocalTree,
        rep: &Reporter,
        opts: ApplyOptions,
    ) -> io::Result<Outcome>;

    /// Renames `from` to `to` inside DEST.
    fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()>;

    /// With `--checksum`: content digests of the same-size file pairs of directory
    /// `rel` and below, on both sides.
    fn fill_digests(
        &self,
        source: &LocalTree,
        src: &mut [Entry],
        dst: &mut [Entry],
        rel: &[u8],
        sink: &dyn ScanSink,
    ) -> io::Result<()>;
}

impl Dest for LocalTree {
    fn shown(&self) -> String {
        self.root().display().to_string()
    }

    fn exists(&self) -> bool {
        self.root().exists()
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

    fn scan_subtree(
        &self,
        rel: &[u8],
        scanner: &Scanner<'_>,
        chain: &Chain,
    ) -> io::Result<(Meta, Option<Vec<Entry>>)> {
        LocalTree::scan_subtree(self, rel, scanner, chain)
    }

    fn has_dir(&self, rel: &[u8]) -> bool {
        self.open_dir(rel).is_ok()
    }

    fn apply(
        &self,
        dp: &DirPlan,
        base: &[u8],
        source: &LocalTree,
        rep: &Reporter,
        opts: ApplyOptions,
    ) -> io::Result<Outcome> {
        apply::apply_at(dp, base, source, self, rep, opts)
    }

    fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        apply::rename_in(self, from, to)
    }

    fn fill_digests(
        &self,
        source: &LocalTree,
        src: &mut [Entry],
        dst: &mut [Entry],
        rel: &[u8],
        sink: &dyn ScanSink,
    ) -> io::Result<()> {
        let (s, d) = (source.open_dir(rel)?, self.open_dir(rel)?);
        snapshot::digest_dir(s.as_fd(), src, d.as_fd(), dst, rel, sink);
        Ok(())
    }
}
