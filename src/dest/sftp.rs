//! DEST on another host: the SFTP implementation of the DEST seam. The engine (the
//! connection, scans, apply) is `crate::sftp`; this is how the drivers reach it.
//!
//! What differs from a local DEST, and why: mtimes are whole seconds (SFTP v3), so
//! they are compared at that precision; symlinks are compared by target only (SFTP
//! cannot set a link's own mtime or owner); DEST is created when missing, but not its
//! parents (as rsync); there are no native change events.

use std::io;
use std::path::{Path, PathBuf};

use crate::apply::ApplyOptions;
use crate::dest::Dest;
use crate::ignore::Chain;
use crate::outcome::Outcome;
use crate::plan::DirPlan;
use crate::report::Reporter;
use crate::sftp::{self, SftpTree};
use crate::snapshot::{self, Entry, ScanOptions, Snapshot};
use crate::source::Source;
use crate::sys::Meta;

impl Dest for SftpTree {
    fn shown(&self) -> String {
        SftpTree::shown(self)
    }

    fn exists(&self) -> bool {
        self.root_exists().unwrap_or(false)
    }

    fn create(&self) -> io::Result<Option<PathBuf>> {
        self.create_root().map(|made| made.then(|| PathBuf::from(self.shown())))
    }

    fn remove_created(&self, _top: &Path) {
        self.remove_root_if_empty();
    }

    fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
        sftp::scan::scan(self, opts)
    }

    fn scan_subtree(&self, rel: &[u8], opts: ScanOptions<'_>) -> io::Result<(Meta, Option<Vec<Entry>>)> {
        sftp::scan::scan_subtree(self, rel, opts)
    }

    fn scan_level(&self, rel: &[u8], opts: ScanOptions<'_>, chain: &Chain) -> io::Result<(Meta, Vec<Entry>)> {
        sftp::scan::scan_level(self, rel, opts, chain)
    }

    fn entry(&self, rel: &[u8]) -> io::Result<Option<Entry>> {
        sftp::scan::entry(self, rel)
    }

    fn has_dir(&self, rel: &[u8]) -> bool {
        self.is_dir(rel).unwrap_or(false)
    }

    fn root_identity(&self) -> io::Result<u64> {
        self.fs_id()
    }

    fn watch_path(&self) -> Option<PathBuf> {
        // No native events from another host.
        None
    }

    fn apply(
        &self,
        dp: &DirPlan,
        base: &[u8],
        source: &dyn Source,
        rep: &Reporter,
        opts: ApplyOptions,
    ) -> io::Result<Outcome> {
        sftp::apply::apply(self, dp, base, source, rep, opts)
    }

    fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        sftp::apply::rename(self, from, to)
    }

    fn content_digest(&self, rel: &[u8]) -> io::Result<snapshot::Digest> {
        Source::digest(self, rel)
    }

    fn keeps_link_attrs(&self) -> bool {
        false
    }

    fn mtime_grain_ns(&self) -> Option<i128> {
        Some(1_000_000_000)
    }

    fn connection_lost(&self) -> Option<String> {
        self.lost_text()
    }

    fn reconnect(&self) -> Result<(), String> {
        SftpTree::reconnect(self)
    }
}
