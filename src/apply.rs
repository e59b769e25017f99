//! Executing a [`Plan`]: parallel, atomic, directory-relative.
//!
//! Each directory of the plan is handled with an open descriptor for its SOURCE and DEST
//! counterparts; subdirectories are opened from their parent with `O_NOFOLLOW`, so a
//! symlink planted in DEST can never redirect a write outside DEST. Within a directory,
//! deletions run first, then copies, symlinks, attribute fixes and subdirectories in
//! parallel on the rayon pool; the directory's own mode and mtime are set last.
//!
//! Files are written under a temporary name in their destination directory, given their
//! mode and mtime (and, with `-X`/`-A`, SOURCE's extended attributes and ACLs:
//! `xattrs`), then renamed over the final name: a reader or a crash never sees a
//! half-written file under the real name. The source is re-checked (`fstat` before and
//! after the copy); a file that changed while being copied is copied again, up to
//! [`COPY_ATTEMPTS`] times, then reported. Every failure is reported with its path and
//! the run goes on; what failed (or was not done) comes back to the caller as an
//! [`Outcome`]. Changes are itemized in path order, as a dry run lists them, whatever
//! order the workers finish in (`ordered`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rayon::prelude::*;

use crate::backup::Backup;
use crate::ordered::{Ordered, Slots};
use crate::outcome::{Failures, Outcome};
use crate::plan::{ChangeKind, DeleteReason, DirPlan, Op};
use crate::relpath::{join, split_last};
use crate::report::{Reporter, Side};
use crate::source::Source;
use crate::sys::{self, Attrs, Meta, RawKind};
use crate::tree::LocalTree;
use crate::xattrs::{self, Written};

/// How often a file that keeps changing during its copy is tried.
pub const COPY_ATTEMPTS: usize = 3;

/// A SOURCE directory as the applier reaches it.
#[derive(Clone, Copy)]
enum Src<'f> {
    /// Open on this machine.
    Fd(BorrowedFd<'f>),
    /// On another host: files are read by path through the [`Source`].
    Remote,
    /// Could not be opened: its copies fail one by one; deletions still run.
    Missing,
}

/// How to apply.
#[derive(Clone, Copy, Debug)]
pub struct ApplyOptions {
    /// Mirror owner and group (root only).
    pub owner: bool,
    /// A SOURCE file gone before it could be copied is no error (watch mode: the next
    /// cycle syncs its removal).
    pub vanished_ok: bool,
    /// `--backup-dir`: this mirror's backup directory (each mirror of a service has
    /// its own).
    pub backup: Option<&'static Backup>,
}

struct Applier<'a> {
    rep: &'a Reporter,
    source: &'a dyn Source,
    /// DEST is on FUSE, whose server may apply a symlink's owner and mtime to its
    /// target (sshfs turns them into SFTP's SETSTAT, which follows links): symlinks
    /// keep the owner and mtime they were created with.
    links_follow: bool,
    /// Changes printed in path order.
    seq: Ordered<'a>,
    slots: Slots,
    opts: ApplyOptions,
    failures: Failures,
}

/// Applies a directory plan at `base` (a directory relative to both roots, opened
/// component by component without following symlinks). `Err` (not reported) only
/// when DEST's root or `base` cannot be opened; everything else is reported per entry
/// and returned in the [`Outcome`].
pub fn apply_at(
    dp: &DirPlan,
    base: &[u8],
    source: &dyn Source,
    dest: &LocalTree,
    rep: &Reporter,
    opts: ApplyOptions,
) -> io::Result<Outcome> {
    let dst = dest.open_dir(base)?;
    let src_fd = source.local().map(|t| t.open_dir(base).ok());
    let src = match &src_fd {
        Some(Some(fd)) => Src::Fd(fd.as_fd()),
        Some(None) => Src::Missing,
        None => Src::Remote,
    };
    let links_follow = links_follow(dst.as_fd(), rep);
    Ok(run_dir(dp, base, src, dst.as_fd(), source, rep, opts, links_follow))
}

/// Whether symlinks on DEST's file system (reached by `dst`) must keep the owner and
/// mtime they are created with (see `Applier::links_follow`); said once at `-vv`.
pub fn links_follow(dst: BorrowedFd<'_>, rep: &Reporter) -> bool {
    let follow = sys::setattr_follows_links(dst);
    if follow {
        rep.debug("DEST is on a FUSE file system, whose server may apply a symlink's owner and mtime to its target (sshfs does): symlinks keep the owner and mtime they are created with");
    }
    follow
}

/// [`apply_at`] for a directory already open on both sides (the streaming one-shot
/// run, `stream`): `src` is SOURCE's directory (`None`: it could not be read, its
/// copies fail one by one), `dst` DEST's; `links_follow` as [`links_follow`] said
/// for this DEST.
#[allow(clippy::too_many_arguments)]
pub fn apply_open(
    dp: &DirPlan,
    base: &[u8],
    src: Option<BorrowedFd<'_>>,
    dst: BorrowedFd<'_>,
    source: &dyn Source,
    rep: &Reporter,
    opts: ApplyOptions,
    links_follow: bool,
) -> Outcome {
    let src = match src {
        Some(fd) => Src::Fd(fd),
        None => Src::Missing,
    };
    run_dir(dp, base, src, dst, source, rep, opts, links_follow)
}

#[allow(clippy::too_many_arguments)]
fn run_dir(
    dp: &DirPlan,
    base: &[u8],
    src: Src<'_>,
    dst: BorrowedFd<'_>,
    source: &dyn Source,
    rep: &Reporter,
    opts: ApplyOptions,
    links_follow: bool,
) -> Outcome {
    let slots = Slots::of(dp);
    let a = Applier {
        rep,
        source,
        links_follow,
        seq: Ordered::new(rep),
        slots,
        opts,
        failures: Failures::default(),
    };
    let attrs_set = a.dir(src, dst, dp, base, 0);
    a.seq.plan_done(&a.slots, dp, base, attrs_set);
    a.failures.into_outcome()
}

/// Renames `from` to `to` inside DEST (both relative paths; parents opened without
/// following symlinks). Used by watch mode when SOURCE renamed an entry DEST holds.
pub fn rename_in(dest: &LocalTree, from: &[u8], to: &[u8]) -> io::Result<()> {
    let root = dest.open()?;
    let (fp, fname) = split_last(from);
    let (tp, tname) = split_last(to);
    let fdir = sys::open_path_at(root.as_fd(), fp)?;
    let tdir = sys::open_path_at(root.as_fd(), tp)?;
    sys::rename_between(fdir.as_fd(), fname, tdir.as_fd(), tname)
}

/// `-H`: makes DEST's `link` another name of DEST's file `target` (relative paths,
/// parents opened without following symlinks): linked under its final name when that
/// is free, else under a temporary name renamed over what is there (kept in
/// `--backup-dir` first).
pub fn hard_link_in(dest: &LocalTree, target: &[u8], link: &[u8], backup: Option<&Backup>) -> io::Result<()> {
    let root = dest.open()?;
    let (tp, tname) = split_last(target);
    let (lp, lname) = split_last(link);
    let tdir = sys::open_path_at(root.as_fd(), tp)?;
    let ldir = sys::open_path_at(root.as_fd(), lp)?;
    match sys::link_between(tdir.as_fd(), tname, ldir.as_fd(), lname) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        r => return r,
    }
    let restore = sys::make_dir_writable(ldir.as_fd()).unwrap_or(None);
    let done = (|| loop {
        let tmp = sys::temp_name();
        match sys::link_between(tdir.as_fd(), tname, ldir.as_fd(), &tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        let temp = TempGuard { dir: ldir.as_fd(), name: Some(tmp) };
        keep_replaced(backup, ldir.as_fd(), lname, Some(link))?;
        return temp.commit(lname);
    })();
    if let Some(mode) = restore {
        let _ = sys::restore_dir_mode(ldir.as_fd(), mode);
    }
    done
}

impl Applier<'_> {
    fn attrs<'m>(&self, meta: &'m Meta) -> Attrs<'m> {
        Attrs { meta, owner: self.opts.owner }
    }

    /// Sets a symlink's own owner and mtime, except where that could reach its target.
    fn set_link_attrs(&self, dir: BorrowedFd<'_>, name: &[u8], meta: &Meta) -> io::Result<()> {
        if self.links_follow {
            return Ok(());
        }
        sys::set_link_attrs_at(dir, name, self.attrs(meta))
    }

    /// `-X`/`-A`: gives DEST's entry (through `to`) SOURCE's attributes (read by
    /// `from`). A DEST without xattrs is warned about once for the run.
    fn copy_attrs(
        &self,
        from: impl FnOnce(xattrs::Which) -> io::Result<xattrs::Attrs>,
        to: impl FnOnce(xattrs::Which, &xattrs::Attrs) -> io::Result<Written>,
    ) -> Result<(), (Side, io::Error)> {
        let Some(which) = xattrs::get() else { return Ok(()) };
        let want = from(which).map_err(|e| (Side::Source, e))?;
        match to(which, &want).map_err(|e| (Side::Dest, e))? {
            Written::Done => {}
            Written::Unsupported => {
                if xattrs::unsupported() {
                    self.rep.warning(Side::Dest, b".", xattrs::UNSUPPORTED_TEXT);
                }
            }
        }
        Ok(())
    }

    fn fail(&self, side: Side, path: &[u8], err: &io::Error) {
        self.fail_with(side, path, &sys::describe(err));
    }

    fn fail_with(&self, side: Side, path: &[u8], message: &str) {
        self.rep.error(side, path, message);
        self.failures.failed(path);
    }

    /// Runs one directory's plan. `src` is `None` when the SOURCE directory could not be
    /// opened (its copies then fail one by one; deletions still run).
    /// Returns false when the directory's own attributes could not be set. `slot` is the
    /// first slot of its operations (see `ordered`).
    fn dir(&self, src: Src<'_>, dst: BorrowedFd<'_>, dp: &DirPlan, rel: &[u8], slot: u64) -> bool {
        let here: &[u8] = if rel.is_empty() { b"." } else { rel };
        let n_del = dp.ops.iter().take_while(|op| op.is_delete()).count();
        let ops = self.slots.numbered(dp, slot);
        let (deletes, rest) = ops.split_at(n_del);
        // Entries of a read-only directory we own can still be updated: open it up for
        // the duration, its mode is set (or restored) below.
        // (-X/-A: also for its own user xattrs, which need write permission.)
        let opens = !dp.ops.is_empty() || (dp.set_meta.is_some() && xattrs::get().is_some());
        let restore = if opens { sys::make_dir_writable(dst).unwrap_or(None) } else { None };
        deletes.par_iter().for_each(|&(s, op)| self.op(src, dst, op, rel, s));
        rest.par_iter().for_each(|&(s, op)| self.op(src, dst, op, rel, s));
        if sys::stopping() {
            // Interrupted: start nothing more, not even this directory's attributes
            // (the next run sets them).
            if let Some(mode) = restore {
                let _ = sys::restore_dir_mode(dst, mode);
            }
            return false;
        }
        if let (Some(_), Src::Fd(s)) = (&dp.set_meta, src) {
            if let Err((side, e)) =
                self.copy_attrs(|w| xattrs::read_fd(w, s), |w, want| xattrs::write_fd(w, dst, want))
            {
                self.fail(side, here, &e);
            }
        }
        let done = match (&dp.set_meta, restore) {
            (Some(meta), _) => sys::set_attrs_fd(dst, self.attrs(meta)),
            (None, Some(mode)) => sys::restore_dir_mode(dst, mode),
            (None, None) => Ok(()),
        };
        if let Err(e) = done {
            self.fail(Side::Dest, here, &e);
            return false;
        }
        true
    }

    /// Runs one operation, whose slots start at `slot`; they are all finished after it.
    fn op(&self, src: Src<'_>, dst: BorrowedFd<'_>, op: &Op, rel: &[u8], slot: u64) {
        self.op_at(src, dst, op, rel, slot);
        self.seq.finish(slot, slot + self.slots.of_op(op));
    }

    fn op_at(&self, src: Src<'_>, dst: BorrowedFd<'_>, op: &Op, rel: &[u8], slot: u64) {
        if sys::stopping() {
            return;
        }
        let path = join(rel, op.name());
        // A directory's contents start after its opening slot and end before its
        // closing one.
        let (inner, close) = (slot + 1, slot + self.slots.of_op(op).saturating_sub(1));
        match op {
            Op::Delete { name, dir, sub, keep, reason } => {
                // --backup-dir: moved there whole (a directory in one rename) instead.
                let backup = self.opts.backup.filter(|_| *reason != DeleteReason::Temporary && !*keep);
                match backup.map(|b| b.move_in(dst, name, &path)) {
                    Some(Ok(())) => self.seq.change(close, &path, &ChangeKind::Delete),
                    Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
                    Some(Err(e)) => self.fail(Side::Dest, &path, &e),
                    None => self.delete(dst, name, *dir, sub, *keep, &path, inner, close),
                }
            }
            Op::Mkdir { name, sub } => {
                match sys::mkdir_at(dst, name, 0o700) {
                    Ok(()) => self.seq.change(slot, &path, &ChangeKind::Mkdir),
                    // Already there as a directory (made meanwhile): fill it all the same.
                    Err(e)
                        if e.kind() == io::ErrorKind::AlreadyExists
                            && sys::open_dir_at(dst, name).is_ok() => {}
                    Err(e) => return self.fail(Side::Dest, &path, &e),
                }
                self.seq.finish(slot, inner);
                // (Nothing to do inside: a streaming run fills it on its own.)
                if !sub.is_empty() {
                    let _ = self.descend(src, dst, name, sub, &path, inner);
                }
            }
            Op::Enter { name, sub } => {
                self.seq.finish(slot, inner);
                if self.descend(src, dst, name, sub, &path, inner) && sub.meta_changed {
                    self.seq.change(close, &path, &ChangeKind::Meta);
                }
            }
            Op::Copy { name, new, .. } => {
                self.rep.progress().current(&path);
                let replaced = (!new).then_some(&path[..]);
                let copied = match src {
                    Src::Fd(src) => self.copy(src, dst, name, replaced),
                    Src::Remote => self.copy_from_source(dst, name, &path, replaced),
                    Src::Missing => {
                        return self.fail_with(Side::Source, &path, "source directory could not be read");
                    }
                };
                match copied {
                    Ok(bytes) => self.seq.change(slot, &path, &ChangeKind::Copy { bytes }),
                    Err((side, e)) => {
                        if !vanished_before_copy(
                            self.rep,
                            &self.failures,
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
            Op::Symlink { name, target, meta, new } => {
                match self.symlink(src, dst, name, target, meta, (!new).then_some(&path[..])) {
                    Ok(()) => self.seq.change(slot, &path, &ChangeKind::Symlink { target: target.clone() }),
                    Err(e) => self.fail(Side::Dest, &path, &e),
                }
            }
            Op::Meta { name, symlink, meta } => {
                // -X/-A on a read-only file, not as root: owner-writable while its
                // attributes are written (user xattrs need write permission).
                let writable = Meta { mode: meta.mode | 0o200, ..*meta };
                let reopen =
                    !*symlink && xattrs::get().is_some() && !sys::is_root() && meta.mode & 0o200 == 0;
                let r = if *symlink {
                    self.set_link_attrs(dst, name, meta)
                } else {
                    let first = if reopen { &writable } else { meta };
                    sys::set_attrs_at(dst, name, RawKind::File, self.attrs(first))
                };
                let r = r.map_err(|e| (Side::Dest, e)).and_then(|()| match src {
                    Src::Fd(s) => self.copy_attrs(
                        |w| xattrs::read(w, &xattrs::at(s, name)),
                        |w, want| xattrs::write(w, &xattrs::at(dst, name), want, *symlink),
                    ),
                    _ => Ok(()),
                });
                let r = match (r, reopen) {
                    (Ok(()), true) => sys::set_attrs_at(dst, name, RawKind::File, self.attrs(meta))
                        .map_err(|e| (Side::Dest, e)),
                    (r, _) => r,
                };
                match r {
                    Ok(()) => self.seq.change(slot, &path, &ChangeKind::Meta),
                    Err((side, e)) => self.fail(side, &path, &e),
                }
            }
        }
    }

    /// Opens `name` on both sides (DEST without following links) and runs its plan,
    /// whose slots start at `slot`.
    fn descend(
        &self,
        src: Src<'_>,
        dst: BorrowedFd<'_>,
        name: &[u8],
        sub: &DirPlan,
        path: &[u8],
        slot: u64,
    ) -> bool {
        let d: OwnedFd = match sys::open_dir_at(dst, name) {
            Ok(fd) => fd,
            Err(e) => {
                self.fail(Side::Dest, path, &e);
                return false;
            }
        };
        let s = match src {
            Src::Fd(s) => match sys::open_dir_at(s, name) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    // Only report when something inside needed the source.
                    if sub.ops.iter().any(|op| !op.is_delete()) {
                        self.fail(Side::Source, path, &e);
                    }
                    None
                }
            },
            Src::Remote | Src::Missing => None,
        };
        let sub_src = match (&s, src) {
            (Some(fd), _) => Src::Fd(fd.as_fd()),
            (None, Src::Remote) => Src::Remote,
            (None, _) => Src::Missing,
        };
        self.dir(sub_src, d.as_fd(), sub, path, slot)
    }

    /// Deletes `name`; a directory's contents have the slots from `inner`, and what is
    /// removed as a whole is reported at slot `close`.
    #[allow(clippy::too_many_arguments)]
    fn delete(
        &self,
        dst: BorrowedFd<'_>,
        name: &[u8],
        dir: bool,
        sub: &DirPlan,
        keep: bool,
        path: &[u8],
        inner: u64,
        close: u64,
    ) {
        if dir {
            match sys::open_dir_at(dst, name) {
                Ok(fd) => {
                    self.dir(Src::Missing, fd.as_fd(), sub, path, inner);
                    drop(fd);
                    if keep {
                        return;
                    }
                    match sys::rmdir_at(dst, name) {
                        Ok(()) => self.seq.change(close, path, &ChangeKind::Delete),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                            // Something appeared in it during the run: remove that too,
                            // since the directory itself is to go.
                            self.remove_any(dst, name, path, close);
                        }
                        Err(e) => self.fail(Side::Dest, path, &e),
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                // No longer a directory (a link or file now): remove whatever it is.
                Err(_) => {}
            }
        }
        self.remove_any(dst, name, path, close);
    }

    fn remove_any(&self, dst: BorrowedFd<'_>, name: &[u8], path: &[u8], slot: u64) {
        let parent = &path[..path.len() - name.len()];
        let mut report = |rel: &[u8]| {
            let mut p = parent.to_vec();
            p.extend_from_slice(rel);
            self.seq.change(slot, &p, &ChangeKind::Delete);
        };
        match sys::remove_any(dst, name, &mut report) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => self.fail(Side::Dest, path, &e),
        }
    }

    /// Copies one file through a temporary; returns the bytes copied.
    /// `replaced`: DEST has a file there (at that relative path), to keep in
    /// `--backup-dir` before it is replaced.
    fn copy(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &[u8],
        replaced: Option<&[u8]>,
    ) -> Result<u64, (Side, io::Error)> {
        for _ in 0..COPY_ATTEMPTS {
            let (sf, before) = sys::open_source_file(src, name).map_err(|e| (Side::Source, e))?;
            let (_, meta) = sys::from_stat(&before);
            let (tmp, df) = sys::create_temp(dst, meta.mode).map_err(|e| (Side::Dest, e))?;
            let temp = TempGuard { dir: dst, name: Some(tmp) };
            let n = sys::copy_data(sf.as_fd(), df.as_fd(), &meta).map_err(|e| (Side::Dest, e))?;
            let after = sys::fstat(sf.as_fd()).map_err(|e| (Side::Source, e))?;
            if n != meta.size || !sys::same_version(&before, &after) {
                // Changed while being copied: drop this attempt and start over.
                drop(df);
                drop(temp);
                continue;
            }
            let opened = match xattrs::get() {
                Some(_) => sys::make_temp_writable(df.as_fd(), meta.mode).map_err(|e| (Side::Dest, e))?,
                None => false,
            };
            self.copy_attrs(
                |w| xattrs::read_fd(w, sf.as_fd()),
                |w, want| xattrs::write_fd(w, df.as_fd(), want),
            )?;
            if opened {
                sys::set_attrs_fd(df.as_fd(), self.attrs(&meta)).map_err(|e| (Side::Dest, e))?;
            } else {
                sys::set_new_file_attrs(df.as_fd(), self.attrs(&meta)).map_err(|e| (Side::Dest, e))?;
            }
            drop(df);
            keep_replaced(self.opts.backup, dst, name, replaced).map_err(|e| (Side::Dest, e))?;
            temp.commit(name).map_err(|e| (Side::Dest, e))?;
            return Ok(n);
        }
        Err(changed_too_often())
    }

    /// Copies one file read through the [`Source`] (SOURCE on another host) through a
    /// temporary; returns the bytes copied.
    /// `replaced`: as for [`Applier::copy`].
    fn copy_from_source(
        &self,
        dst: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        replaced: Option<&[u8]>,
    ) -> Result<u64, (Side, io::Error)> {
        for _ in 0..COPY_ATTEMPTS {
            let mut sf = self.source.open_file(path).map_err(|e| (Side::Source, e))?;
            let meta = sf.meta();
            let (tmp, df) = sys::create_temp(dst, meta.mode).map_err(|e| (Side::Dest, e))?;
            let temp = TempGuard { dir: dst, name: Some(tmp) };
            let mut out = std::fs::File::from(df);
            let n = copy_stream(&mut *sf, &mut out)?;
            if n != meta.size || !sf.unchanged().map_err(|e| (Side::Source, e))? {
                drop(out);
                drop(temp);
                continue;
            }
            sys::set_new_file_attrs(out.as_fd(), self.attrs(&meta)).map_err(|e| (Side::Dest, e))?;
            drop(out);
            keep_replaced(self.opts.backup, dst, name, replaced).map_err(|e| (Side::Dest, e))?;
            temp.commit(name).map_err(|e| (Side::Dest, e))?;
            return Ok(n);
        }
        Err(changed_too_often())
    }

    fn symlink(
        &self,
        src: Src<'_>,
        dst: BorrowedFd<'_>,
        name: &[u8],
        target: &[u8],
        meta: &Meta,
        replaced: Option<&[u8]>,
    ) -> io::Result<()> {
        loop {
            let tmp = sys::temp_name();
            match sys::symlink_at(target, dst, &tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            let temp = TempGuard { dir: dst, name: Some(tmp) };
            if let Some(t) = &temp.name {
                if let Src::Fd(s) = src {
                    self.copy_attrs(
                        |w| xattrs::read(w, &xattrs::at(s, name)),
                        |w, want| xattrs::write(w, &xattrs::at(dst, t), want, true),
                    )
                    .map_err(|(_, e)| e)?;
                }
                self.set_link_attrs(dst, t, meta)?;
            }
            keep_replaced(self.opts.backup, dst, name, replaced)?;
            return temp.commit(name);
        }
    }
}

/// Streams `src` into `out`; read errors are SOURCE's, write errors DEST's.
fn copy_stream(src: &mut dyn io::Read, out: &mut std::fs::File) -> Result<u64, (Side, io::Error)> {
    use std::io::Write;
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let k = match src.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted && !sys::stopping() => continue,
            Err(e) => return Err((Side::Source, e)),
        };
        out.write_all(&buf[..k]).map_err(|e| (Side::Dest, e))?;
        sys::count_copied(k as u64);
        crate::bwlimit::account(k as u64, sys::stopping);
        n += k as u64;
    }
}

/// A copy that failed because its SOURCE file was gone: with `vanished_ok` (watch
/// mode, whose next cycle syncs the removal) that is no error, only not done.
/// Returns whether it was so (every backend's copies go through here).
pub fn vanished_before_copy(
    rep: &Reporter,
    failures: &Failures,
    vanished_ok: bool,
    side: Side,
    path: &[u8],
    err: &io::Error,
) -> bool {
    if !(vanished_ok && side == Side::Source && err.kind() == io::ErrorKind::NotFound) {
        return false;
    }
    failures.not_done(path);
    rep.debug(&format!("{}: vanished before it could be copied", crate::relpath::shown(path)));
    true
}

/// A SOURCE file that changed during each of its [`COPY_ATTEMPTS`] copies (every
/// backend reports it so).
pub fn changed_too_often() -> (Side, io::Error) {
    (
        Side::Source,
        io::Error::other(format!(
            "changed while being copied ({COPY_ATTEMPTS} attempts); left as it was, the next run will retry"
        )),
    )
}

/// `--backup-dir`: keeps what is about to be replaced at `rel` (a hard link, so the
/// replacement stays atomic).
fn keep_replaced(
    backup: Option<&Backup>,
    dst: BorrowedFd<'_>,
    name: &[u8],
    rel: Option<&[u8]>,
) -> io::Result<()> {
    match (rel, backup) {
        (Some(rel), Some(b)) => b.keep_before_overwrite(dst, name, rel),
        _ => Ok(()),
    }
}

/// A temporary entry in DEST: removed on drop unless committed (renamed into place).
struct TempGuard<'a> {
    dir: BorrowedFd<'a>,
    name: Option<Vec<u8>>,
}

impl TempGuard<'_> {
    fn commit(mut self, final_name: &[u8]) -> io::Result<()> {
        if let Some(tmp) = self.name.as_deref() {
            sys::rename_at(self.dir, tmp, final_name)?;
        }
        self.name = None;
        Ok(())
    }
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = self.name.take() {
            let _ = sys::unlink_at(self.dir, &tmp);
        }
    }
}
