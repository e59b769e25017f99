//! DEST in an object store: the S3 implementation of the DEST seam. The engine (the
//! client, scans, apply, the metadata cache) is `crate::s3`; this is how the drivers
//! reach it.
//!
//! What differs from a local DEST, and why: directories are key prefixes (each with a
//! zero-byte marker `path/` holding its attributes); owners are not mirrored (objects
//! have none); symlinks are compared by target only; the bucket is never created
//! (a missing one is an error), a missing prefix is; there are no native change
//! events.

use std::io;
use std::path::{Path, PathBuf};

use crate::apply::ApplyOptions;
use crate::dest::Dest;
use crate::ignore::Chain;
use crate::outcome::Outcome;
use crate::plan::DirPlan;
use crate::report::Reporter;
use crate::s3::{self, ObjKind, S3Tree};
use crate::snapshot::{self, Entry, ScanOptions, Snapshot};
use crate::source::Source;
use crate::sys::Meta;

impl Dest for S3Tree {
    fn shown(&self) -> String {
        S3Tree::shown(self)
    }

    fn exists(&self) -> bool {
        if self.base().is_empty() {
            // The bucket answered when the connection was made.
            return true;
        }
        let base = self.base().to_string();
        self.block(self.has_objects_under(&base)).unwrap_or(false)
    }

    fn create(&self) -> io::Result<Option<PathBuf>> {
        if self.exists() {
            return Ok(None);
        }
        let base = self.base().to_string();
        let meta = Meta { mode: 0o755, ..Meta::default() };
        self.block(async {
            self.client()
                .put_object()
                .bucket(self.bucket())
                .key(&base)
                .set_metadata(Some(s3::metadata_for(&meta, ObjKind::Dir)))
                .body(Vec::new().into())
                .send()
                .await
                .map_err(|e| self.err(e))
        })?;
        Ok(Some(PathBuf::from(self.shown())))
    }

    fn remove_created(&self, _top: &Path) {
        let base = self.base().to_string();
        let _ = self.block(async {
            let (objects, _) = s3::scan::list_page_all(self, &base, false).await?;
            if objects.len() == 1 && objects[0].key == base {
                self.client()
                    .delete_object()
                    .bucket(self.bucket())
                    .key(&base)
                    .send()
                    .await
                    .map_err(|e| self.err(e))?;
            }
            Ok::<_, io::Error>(())
        });
    }

    fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
        s3::scan::scan(self, opts)
    }

    fn scan_subtree(&self, rel: &[u8], opts: ScanOptions<'_>) -> io::Result<(Meta, Option<Vec<Entry>>)> {
        s3::scan::scan_subtree(self, rel, opts)
    }

    fn scan_level(&self, rel: &[u8], opts: ScanOptions<'_>, chain: &Chain) -> io::Result<(Meta, Vec<Entry>)> {
        s3::scan::scan_level(self, rel, opts, chain)
    }

    fn entry(&self, rel: &[u8]) -> io::Result<Option<Entry>> {
        s3::scan::entry(self, rel)
    }

    fn has_dir(&self, rel: &[u8]) -> bool {
        if rel.is_empty() {
            return self.exists();
        }
        match self.key(rel, true) {
            Ok(p) => self.block(self.has_objects_under(&p)).unwrap_or(false),
            Err(_) => false,
        }
    }

    fn root_identity(&self) -> io::Result<u64> {
        Ok(self.identity())
    }

    fn watch_path(&self) -> Option<PathBuf> {
        // An object store raises no change events tandem can listen to.
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
        s3::apply::apply(self, dp, base, source, rep, opts)
    }

    fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        s3::apply::rename(self, from, to)
    }

    fn content_digest(&self, rel: &[u8]) -> io::Result<snapshot::Digest> {
        self.digest(rel)
    }

    fn keeps_link_attrs(&self) -> bool {
        false
    }

    fn keeps_owner(&self) -> bool {
        false
    }
}
