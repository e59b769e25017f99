//! Executing a plan on a remote tree, with the local apply's rules: deletions first
//! within a directory, then everything else; a directory's attributes after its
//! contents; every file written under a temporary name in its final directory, given
//! its mode and mtime (and owner), then renamed over the final name
//! (`posix-rename@openssh.com`: atomic, replacing). Many operations are in flight at
//! once; a large file goes out in pipelined writes. Every failure is reported with its
//! path and the run goes on, except a lost connection, which ends it.
//!
//! Where the server lacks `posix-rename@openssh.com`, SFTP's plain RENAME refuses to
//! replace: the old file is removed first, so for a moment the final name is absent,
//! but never torn.

use std::io::{self, Read};

use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use openssh_sftp_client::file::File;
use openssh_sftp_client::metadata::{MetaDataBuilder, Permissions};
use tokio::io::AsyncSeekExt;

use super::{attrs_of, SftpTree, CHUNK, CHUNKS_IN_FLIGHT};
use crate::apply::{ApplyOptions, COPY_ATTEMPTS};
use crate::ordered::{Ordered, Slots};
use crate::outcome::{Failures, Outcome};
use crate::plan::{ChangeKind, DeleteReason, DirPlan, Op};
use crate::relpath::{join, parent};
use crate::report::{Reporter, Side};
use crate::source::Source;
use crate::sys::{self, Meta};

/// Operations on files started at a time, in the whole tree (`join::Starts`).
const STARTED: usize = 4 * super::OP_SLOTS;

struct Applier<'a> {
    tree: &'a SftpTree,
    /// SOURCE's files, opened in the directories held open.
    files: crate::source::Opener<'a>,
    /// Permits to start an operation on a file.
    started: crate::join::Starts,
    rep: &'a Reporter,
    opts: ApplyOptions,
    failures: Failures,
    /// Itemized changes in the dry run's path order (`ordered`), whatever order the
    /// requests are answered in.
    seq: Ordered<'a>,
    slots: Slots,
}

/// Applies a directory plan at `base`. `Err` when `base` cannot be reached, or when
/// the connection was lost (what was done stays done; nothing is torn).
pub fn apply(
    tree: &SftpTree,
    dp: &DirPlan,
    base: &[u8],
    source: &dyn Source,
    rep: &Reporter,
    opts: ApplyOptions,
) -> io::Result<Outcome> {
    let slots = Slots::of(dp);
    let a = Applier {
        tree,
        files: crate::source::Opener::new(source),
        started: crate::join::Starts::new(STARTED),
        rep,
        opts,
        failures: Failures::default(),
        seq: Ordered::new(rep),
        slots,
    };
    tree.block(async {
        match tree.lstat(base).await? {
            Some(m) if m.file_type().is_some_and(|t| t.is_dir()) || base.is_empty() => {}
            Some(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            None => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
        let attrs_set = a.dir(dp, base.to_vec(), 0).await;
        a.seq.plan_done(&a.slots, dp, base, attrs_set);
        Ok(())
    })?;
    if tree.is_lost() {
        return Err(tree.lost_error());
    }
    Ok(a.failures.into_outcome())
}

/// Renames `from` to `to` inside the tree.
pub fn rename(tree: &SftpTree, from: &[u8], to: &[u8]) -> io::Result<()> {
    tree.block(rename_async(tree, from, to))
}

async fn rename_async(tree: &SftpTree, from: &[u8], to: &[u8]) -> io::Result<()> {
    let (f, t) = (tree.path(from), tree.path(to));
    match tree.sess().sftp.fs().rename(&f, &t).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = tree.err(e);
            if tree.posix_rename() || tree.is_lost() || e.kind() == io::ErrorKind::NotFound {
                return Err(e);
            }
            // Plain SFTP RENAME does not replace: remove the old entry, then rename.
            let _ = tree.sess().sftp.fs().remove_file(&t).await;
            tree.sess().sftp.fs().rename(&f, &t).await.map_err(|e| tree.err(e))
        }
    }
}

/// Sets owner, mode and mtime on `rel`: in one request, or the owner first where
/// set-id bits are to be kept (the server applies the owner last, and a chown clears
/// them).
async fn set_attrs(tree: &SftpTree, rel: &[u8], meta: &Meta, owner: bool) -> io::Result<()> {
    let path = tree.path(rel);
    let set_id = meta.mode & 0o6000 != 0;
    if owner && set_id {
        let ids = MetaDataBuilder::new().id((meta.uid, meta.gid)).create();
        tree.sess().sftp.fs().set_metadata(&path, ids).await.map_err(|e| tree.err(e))?;
    }
    tree.sess()
        .sftp
        .fs()
        .set_metadata(&path, attrs_of(meta, owner && !set_id)?)
        .await
        .map_err(|e| tree.err(e))
}

impl Applier<'_> {
    fn fail(&self, side: Side, path: &[u8], err: &io::Error) {
        // A lost connection is one fatal error, reported once by the caller.
        if !self.tree.is_lost() {
            self.rep.error(side, path, &sys::describe(err));
        }
        self.failures.failed(path);
    }

    fn halted(&self) -> bool {
        sys::stopping() || self.tree.is_lost()
    }

    /// Runs one directory's plan, whose slots start at `slot` (see `ordered`); false
    /// when its own attributes were not set.
    fn dir<'s>(&'s self, dp: &'s DirPlan, rel: Vec<u8>, slot: u64) -> LocalBoxFuture<'s, bool> {
        async move {
            let here: &[u8] = if rel.is_empty() { b"." } else { &rel };
            let n_del = dp.ops.iter().take_while(|op| op.is_delete()).count();
            let ops = self.slots.numbered(dp, slot);
            let (deletes, rest) = ops.split_at(n_del);
            crate::join::all(deletes.iter().map(|&(s, op)| self.start(op, &rel, s))).await;
            crate::join::all(rest.iter().map(|&(s, op)| self.start(op, &rel, s))).await;
            if self.halted() {
                return false;
            }
            if let Some(meta) = &dp.set_meta {
                let _slot = self.tree.op_slots.acquire().await;
                if let Err(e) = set_attrs(self.tree, &rel, meta, self.opts.owner).await {
                    self.fail(Side::Dest, here, &e);
                    return false;
                }
            }
            true
        }
        .boxed_local()
    }

    /// `--backup-dir` (inside this remote DEST).
    fn backup(&self) -> Option<&'static crate::backup::Backup> {
        self.opts.backup.filter(|b| b.remote)
    }

    /// Where `rel` goes in the backup directory, its parents made (what is in the way
    /// of them, an older backup's file, removed).
    async fn backup_place(&self, b: &crate::backup::Backup, rel: &[u8]) -> io::Result<Vec<u8>> {
        let place = b.remote_place(rel);
        let mut cur: Vec<u8> = Vec::new();
        for comp in parent(&place).split(|c| *c == b'/').filter(|c| !c.is_empty()) {
            cur = join(&cur, comp);
            if self.is_dir(&cur).await? {
                continue;
            }
            self.quiet_remove(&cur).await;
            let mut fs = self.tree.sess().sftp.fs();
            let mut d = fs.dir_builder();
            d.permissions(Permissions::from(0o755));
            if let Err(e) = d.create(self.tree.path(&cur)).await {
                let e = self.tree.err(e);
                if !self.is_dir(&cur).await? {
                    return Err(e);
                }
            }
        }
        Ok(place)
    }

    /// Moves DEST's `rel` into the backup (an older backup of it replaced).
    async fn move_to_backup(&self, rel: &[u8]) -> io::Result<()> {
        let Some(b) = self.backup() else { return Ok(()) };
        let place = self.backup_place(b, rel).await?;
        match rename_async(self.tree, rel, &place).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound || self.tree.is_lost() => Err(e),
            Err(_) => {
                self.quiet_remove(&place).await;
                rename_async(self.tree, rel, &place).await
            }
        }
    }

    /// Keeps DEST's file or symlink `rel` in the backup before it is replaced: a hard
    /// link (`hardlink@openssh.com`), so the name stays until the new version is
    /// renamed over it; renamed there where the server cannot link.
    async fn keep_before_overwrite(&self, rel: &[u8]) -> io::Result<()> {
        let Some(b) = self.backup() else { return Ok(()) };
        let place = self.backup_place(b, rel).await?;
        self.quiet_remove(&place).await;
        if self.tree.hardlink() {
            match self.tree.sess().sftp.fs().hard_link(self.tree.path(rel), self.tree.path(&place)).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let e = self.tree.err(e);
                    if e.kind() == io::ErrorKind::NotFound || self.tree.is_lost() {
                        return if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) };
                    }
                }
            }
        }
        match rename_async(self.tree, rel, &place).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// Removes whatever is at `rel` (a whole tree for a directory), reporting nothing:
    /// an older backup making way.
    fn quiet_remove<'s>(&'s self, rel: &'s [u8]) -> LocalBoxFuture<'s, ()> {
        async move {
            let fs = || self.tree.sess().sftp.fs();
            if fs().remove_file(self.tree.path(rel)).await.is_ok() {
                return;
            }
            if !self.is_dir(rel).await.unwrap_or(false) {
                return;
            }
            if let Ok(children) = super::scan::list_names(self.tree, rel).await {
                for c in children {
                    self.quiet_remove(&join(rel, &c)).await;
                }
            }
            let _ = fs().remove_dir(self.tree.path(rel)).await;
        }
        .boxed_local()
    }

    /// True when `rel` is a directory (not a symlink to one).
    async fn is_dir(&self, rel: &[u8]) -> io::Result<bool> {
        Ok(self.tree.lstat(rel).await?.is_some_and(|m| m.file_type().is_some_and(|t| t.is_dir())))
    }

    /// [`Applier::op`], once a start permit is free (`join::Starts`; a directory's own
    /// operation at once).
    async fn start(&self, op: &Op, rel: &[u8], slot: u64) {
        self.started.run(op.has_sub(), || self.op(op, rel, slot)).await
    }

    /// Runs one operation, whose slots start at `slot`; they are all finished after it.
    async fn op(&self, op: &Op, rel: &[u8], slot: u64) {
        self.op_at(op, rel, slot).await;
        self.seq.finish(slot, slot + self.slots.of_op(op));
    }

    async fn op_at(&self, op: &Op, rel: &[u8], slot: u64) {
        if self.halted() {
            return;
        }
        let path = join(rel, op.name());
        // A directory's contents start after its opening slot and end before its
        // closing one.
        let (inner, close) = (slot + 1, slot + self.slots.of_op(op).saturating_sub(1));
        match op {
            Op::Delete { dir, sub, keep, reason, .. } => {
                // --backup-dir: moved there whole (a directory in one rename) instead.
                if self.backup().is_some() && *reason != DeleteReason::Temporary && !*keep {
                    let moved = {
                        let _slot = self.tree.op_slots.acquire().await;
                        self.move_to_backup(&path).await
                    };
                    return match moved {
                        Ok(()) => self.seq.change(close, &path, &ChangeKind::Delete),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => self.fail(Side::Dest, &path, &e),
                    };
                }
                self.delete(&path, *dir, sub, *keep, inner, close).await
            }
            Op::Mkdir { sub, .. } => {
                let made = {
                    let _slot = self.tree.op_slots.acquire().await;
                    let mut fs = self.tree.sess().sftp.fs();
                    let mut b = fs.dir_builder();
                    b.permissions(Permissions::from(0o700));
                    match b.create(self.tree.path(&path)).await {
                        Ok(()) => Ok(true),
                        Err(e) => {
                            let e = self.tree.err(e);
                            // Already there as a directory (made meanwhile): fill it.
                            match self.is_dir(&path).await {
                                Ok(true) => Ok(false),
                                _ => Err(e),
                            }
                        }
                    }
                };
                match made {
                    Ok(true) => self.seq.change(slot, &path, &ChangeKind::Mkdir),
                    Ok(false) => {}
                    Err(e) => return self.fail(Side::Dest, &path, &e),
                }
                self.seq.finish(slot, inner);
                self.dir(sub, path, inner).await;
            }
            Op::Enter { sub, .. } => {
                match self.is_dir(&path).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let e = io::Error::other("no longer a directory (changed during the sync)");
                        return self.fail(Side::Dest, &path, &e);
                    }
                    Err(e) => return self.fail(Side::Dest, &path, &e),
                }
                self.seq.finish(slot, inner);
                if self.dir(sub, path.clone(), inner).await && sub.meta_changed {
                    self.seq.change(close, &path, &ChangeKind::Meta);
                }
            }
            Op::Copy { new, .. } => {
                let _slot = self.tree.op_slots.acquire().await;
                self.rep.progress().current(&path);
                match self.copy(&path, !new).await {
                    Ok(bytes) => self.seq.change(slot, &path, &ChangeKind::Copy { bytes }),
                    Err((side, e)) => {
                        let (rep, failures) = (self.rep, &self.failures);
                        if !crate::apply::vanished_before_copy(
                            rep,
                            failures,
                            self.opts.vanished_ok,
                            side,
                            &path,
                            &e,
                        ) {
                            self.fail(side, &path, &e)
                        }
                    }
                }
            }
            Op::Symlink { target, new, .. } => {
                let _slot = self.tree.op_slots.acquire().await;
                match self.symlink(&path, target, !new).await {
                    Ok(()) => self.seq.change(slot, &path, &ChangeKind::Symlink { target: target.clone() }),
                    Err(e) => self.fail(Side::Dest, &path, &e),
                }
            }
            // SFTP cannot set a symlink's own attributes (SETSTAT follows links); the
            // planner does not ask for it.
            Op::Meta { symlink: true, .. } => {}
            Op::Meta { meta, .. } => {
                let _slot = self.tree.op_slots.acquire().await;
                let r = match self.tree.lstat(&path).await {
                    Ok(Some(m)) if m.file_type().is_some_and(|t| t.is_file()) => {
                        set_attrs(self.tree, &path, meta, self.opts.owner).await
                    }
                    Ok(_) => Err(io::Error::other("entry changed type during the sync")),
                    Err(e) => Err(e),
                };
                match r {
                    Ok(()) => self.seq.change(slot, &path, &ChangeKind::Meta),
                    Err(e) => self.fail(Side::Dest, &path, &e),
                }
            }
        }
    }

    /// Deletes `path`; a directory's contents have the slots from `inner`, and what is
    /// removed as a whole is reported at slot `close`.
    async fn delete(&self, path: &[u8], dir: bool, sub: &DirPlan, keep: bool, inner: u64, close: u64) {
        if dir {
            match self.is_dir(path).await {
                Ok(true) => {
                    self.dir(sub, path.to_vec(), inner).await;
                    if keep || self.halted() {
                        return;
                    }
                    let r = self.remove(path, true).await;
                    match r {
                        Ok(()) => self.seq.change(close, path, &ChangeKind::Delete),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        // Not empty: something appeared in it during the run; the
                        // directory is to go, so that goes too.
                        Err(_) => self.remove_any(path, close).await,
                    }
                    return;
                }
                Ok(false) => {}
                Err(e) => return self.fail(Side::Dest, path, &e),
            }
        }
        self.remove_any(path, close).await;
    }

    /// Removes the directory (empty) or the non-directory at `path`, in one request.
    async fn remove(&self, path: &[u8], dir: bool) -> io::Result<()> {
        let _slot = self.tree.op_slots.acquire().await;
        let mut fs = self.tree.sess().sftp.fs();
        let r = if dir {
            fs.remove_dir(self.tree.path(path)).await
        } else {
            fs.remove_file(self.tree.path(path)).await
        };
        r.map_err(|e| self.tree.err(e))
    }

    /// Removes whatever `path` is, a whole tree for a directory, never following a
    /// symlink; reports each entry removed, at `slot`.
    fn remove_any<'s>(&'s self, path: &'s [u8], slot: u64) -> LocalBoxFuture<'s, ()> {
        async move {
            let r = self.remove(path, false).await;
            match r {
                Ok(()) => return self.seq.change(slot, path, &ChangeKind::Delete),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) => match self.is_dir(path).await {
                    Ok(true) => {}
                    Ok(false) => return self.fail(Side::Dest, path, &e),
                    Err(e) => return self.fail(Side::Dest, path, &e),
                },
            }
            let children = match super::scan::list_names(self.tree, path).await {
                Ok(c) => c,
                Err(e) => return self.fail(Side::Dest, path, &e),
            };
            let paths: Vec<Vec<u8>> = children.iter().map(|c| join(path, c)).collect();
            crate::join::all(paths.iter().map(|p| self.remove_any(p, slot))).await;
            if self.halted() {
                return;
            }
            let r = self.remove(path, true).await;
            match r {
                Ok(()) => self.seq.change(slot, path, &ChangeKind::Delete),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => self.fail(Side::Dest, path, &e),
            }
        }
        .boxed_local()
    }

    /// Creates a symlink under a temporary name, then renames it into place.
    /// `replaced`: DEST has an entry there, kept in `--backup-dir` first.
    async fn symlink(&self, path: &[u8], target: &[u8], replaced: bool) -> io::Result<()> {
        let tmp = join(parent(path), &sys::temp_name());
        let target =
            std::path::Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(target));
        let fs = || self.tree.sess().sftp.fs();
        fs().symlink(&target, self.tree.path(&tmp)).await.map_err(|e| self.tree.err(e))?;
        let kept = if replaced { self.keep_before_overwrite(path).await } else { Ok(()) };
        match async {
            kept?;
            rename_async(self.tree, &tmp, path).await
        }
        .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs().remove_file(self.tree.path(&tmp)).await;
                Err(e)
            }
        }
    }

    /// Copies one file through a temporary; returns the bytes copied. `replaced`: DEST
    /// has a file there, kept in `--backup-dir` before the new one is renamed in.
    async fn copy(&self, path: &[u8], replaced: bool) -> Result<u64, (Side, io::Error)> {
        for _ in 0..COPY_ATTEMPTS {
            let mut src = self.files.open_file(path).map_err(|e| (Side::Source, e))?;
            let meta = src.meta();
            let tmp = join(parent(path), &sys::temp_name());
            let tmp_path = self.tree.path(&tmp);
            let file = self
                .tree
                .sess()
                .sftp
                .options()
                .write(true)
                .create_new(true)
                .open(&tmp_path)
                .await
                .map_err(|e| (Side::Dest, self.tree.err(e)))?;
            let result = self.fill(file, &mut *src, &meta, &tmp).await;
            let done = match result {
                Ok(Some(n)) => {
                    let kept = if replaced { self.keep_before_overwrite(path).await } else { Ok(()) };
                    match kept {
                        Ok(()) => rename_async(self.tree, &tmp, path).await.map(|()| Some(n)),
                        Err(e) => Err(e),
                    }
                    .map_err(|e| (Side::Dest, e))
                }
                other => other,
            };
            match done {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => {
                    // Changed while being copied: drop this attempt and start over.
                    let _ = self.tree.sess().sftp.fs().remove_file(&tmp_path).await;
                }
                Err(e) => {
                    if !self.tree.is_lost() {
                        let _ = self.tree.sess().sftp.fs().remove_file(&tmp_path).await;
                    }
                    return Err(e);
                }
            }
        }
        Err(crate::apply::changed_too_often())
    }

    /// Writes the temporary's data and attributes; `None` when SOURCE changed
    /// meanwhile.
    async fn fill(
        &self,
        mut file: File,
        src: &mut dyn crate::source::SourceFile,
        meta: &Meta,
        tmp: &[u8],
    ) -> Result<Option<u64>, (Side, io::Error)> {
        let tree = self.tree;
        if meta.size <= SMALL {
            return self.fill_small(file, src, meta, tmp).await;
        }
        let n = match write_data(tree, &file, src, meta.size).await {
            Ok(n) => n,
            Err((Side::Dest, e)) => return Err((Side::Dest, tree.explain_write(e, tmp).await)),
            Err(e) => return Err(e),
        };
        if n != meta.size || !src.unchanged().map_err(|e| (Side::Source, e))? {
            return Ok(None);
        }
        let dest = |e| (Side::Dest, tree.err(e));
        // The server sets the owner after the mode, and a chown clears set-id bits:
        // with those bits, the owner goes first, on its own.
        let set_id = meta.mode & 0o6000 != 0;
        if self.opts.owner && set_id {
            file.set_metadata(MetaDataBuilder::new().id((meta.uid, meta.gid)).create())
                .await
                .map_err(dest)?;
        }
        let attrs = attrs_of(meta, self.opts.owner && !set_id).map_err(|e| (Side::Source, e))?;
        file.set_metadata(attrs).await.map_err(dest)?;
        match file.close().await {
            Ok(()) => Ok(Some(n)),
            Err(e) => Err((Side::Dest, tree.explain_write(tree.err(e), tmp).await)),
        }
    }
}

/// Files up to this size go out in one WRITE whatever the server's limits (SFTP
/// clients without `limits@openssh.com` assume 32 KiB), so that the FSETSTAT sent
/// right behind it is taken after all of the data.
const SMALL: u64 = 32 << 10;

impl Applier<'_> {
    /// [`Applier::fill`] for a file that fits one WRITE: read whole first (and checked
    /// unchanged), then its WRITE and FSETSTAT go out together (the server takes them
    /// in order: the mtime is set after the data), then CLOSE. One round trip less
    /// per file; a failed WRITE still fails the copy before any rename.
    async fn fill_small(
        &self,
        file: File,
        src: &mut dyn crate::source::SourceFile,
        meta: &Meta,
        tmp: &[u8],
    ) -> Result<Option<u64>, (Side, io::Error)> {
        let tree = self.tree;
        let mut buf = vec![0u8; meta.size as usize + 1];
        let mut n = 0;
        while n < buf.len() {
            if sys::stopping() {
                return Err((
                    Side::Source,
                    io::Error::new(io::ErrorKind::Interrupted, "interrupted by a signal; not copied"),
                ));
            }
            match src.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !sys::stopping() => continue,
                Err(e) => return Err((Side::Source, e)),
            }
        }
        if n as u64 != meta.size || !src.unchanged().map_err(|e| (Side::Source, e))? {
            return Ok(None);
        }
        buf.truncate(n);
        let set_id = meta.mode & 0o6000 != 0;
        let ids =
            (self.opts.owner && set_id).then(|| MetaDataBuilder::new().id((meta.uid, meta.gid)).create());
        let attrs = attrs_of(meta, self.opts.owner && !set_id).map_err(|e| (Side::Source, e))?;
        let (mut w, mut i, mut a) = (file.clone(), file.clone(), file.clone());
        let data = bytes::Bytes::from(buf);
        let (wrote, owned, set) = futures_util::join!(
            async {
                if data.is_empty() {
                    return Ok(());
                }
                w.write_all_zero_copy(&mut [data]).await
            },
            async {
                match ids {
                    Some(ids) => i.set_metadata(ids).await,
                    None => Ok(()),
                }
            },
            a.set_metadata(attrs),
        );
        drop((w, i, a));
        if let Err(e) = wrote {
            return Err((Side::Dest, tree.explain_write(tree.err(e), tmp).await));
        }
        owned.and(set).map_err(|e| (Side::Dest, tree.err(e)))?;
        sys::count_copied(n as u64);
        // (--bwlimit: this worker waits its turn; the others keep their requests.)
        crate::bwlimit::account(n as u64, sys::stopping);
        match file.close().await {
            Ok(()) => Ok(Some(n as u64)),
            Err(e) => Err((Side::Dest, tree.explain_write(tree.err(e), tmp).await)),
        }
    }
}

/// Streams `src` into `file` in pipelined writes; returns the bytes written.
async fn write_data(
    tree: &SftpTree,
    file: &File,
    src: &mut dyn Read,
    size: u64,
) -> Result<u64, (Side, io::Error)> {
    let mut inflight = FuturesUnordered::new();
    let mut off = 0u64;
    let mut eof = false;
    let mut written = 0u64;
    loop {
        while inflight.len() < CHUNKS_IN_FLIGHT && !eof {
            if sys::stopping() {
                return Err((
                    Side::Source,
                    io::Error::new(io::ErrorKind::Interrupted, "interrupted by a signal; not copied"),
                ));
            }
            // As much as is left of the expected size (and a byte more, to see a file
            // that grew), at most one request's worth.
            let chunk = (size.saturating_sub(off) as usize).saturating_add(1).min(CHUNK);
            let mut buf = vec![0u8; chunk];
            let mut n = 0;
            while n < chunk {
                match src.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted && !sys::stopping() => continue,
                    Err(e) => return Err((Side::Source, e)),
                }
            }
            if n < chunk {
                eof = true;
            }
            if n == 0 {
                break;
            }
            buf.truncate(n);
            let mut f = file.clone();
            let at = off;
            off += n as u64;
            inflight.push(async move {
                f.seek(io::SeekFrom::Start(at)).await.map_err(openssh_sftp_client::Error::from)?;
                f.write_all_zero_copy(&mut [bytes::Bytes::from(buf)]).await.map(|()| n)
            });
        }
        match inflight.next().await {
            Some(Ok(n)) => {
                written += n as u64;
                sys::count_copied(n as u64);
                crate::bwlimit::account(n as u64, sys::stopping);
            }
            Some(Err(e)) => return Err((Side::Dest, tree.err(e))),
            None => break,
        }
    }
    Ok(written)
}
