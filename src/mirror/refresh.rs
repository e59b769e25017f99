//! One-sided refresh: re-reading SOURCE directories and diffing them against the held
//! tree, without reading DEST.
//!
//! A [`Look`] re-reads one SOURCE directory level (and, when deep, every directory
//! below it, in parallel), plans that level against what is held with the same
//! planner as batch mode, and updates the held listing to what SOURCE has now. New
//! directories, and directories that are another directory than the one held (a new
//! inode), are read whole and diffed against what DEST holds there.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::held::{self, Dir};
use crate::config::Config;
use crate::guard::Refusal;
use crate::ignore::Chain;
use crate::lock::lock;
use crate::plan::{self, DirPlan, Level, Op, PlanOptions};
use crate::relpath::join;
use crate::snapshot::{Entry, Kind, RuleMap, Scanner};
use crate::sys::{self, Meta};

/// What all the looks of one cycle share.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    /// DEST as shown to people (for the empty-SOURCE guard's message).
    pub dest_shown: String,
    /// Plan options against the held snapshot (SOURCE's own timestamps: exact).
    pub held_opts: PlanOptions,
    pub scanner: &'a Scanner<'a>,
    /// Entries that vanished from a directory DEST has (for rename matching).
    pub removed: Mutex<Vec<(Vec<u8>, Entry)>>,
    /// Directories to sync two-sided next (they were unreadable before).
    pub verify: Mutex<Vec<Vec<u8>>>,
    /// SOURCE's root became empty while DEST holds entries (an unmounted share?): the
    /// cycle changes nothing.
    pub refused: Mutex<Option<Refusal>>,
}

/// The held listing as the planner needs it against SOURCE's `new` (paired by
/// `slots`): [`Dir::planned_against`] the directories SOURCE still has as directories.
fn held_listing(held: &Dir, new: &[Entry], slots: &[Slot]) -> Vec<Entry> {
    let mut still_dir = vec![false; held.len()];
    for (e, s) in new.iter().zip(slots) {
        if let Some(j) = s.held {
            still_dir[j] = e.is_dir();
        }
    }
    held.planned_against(|j| still_dir[j])
}

/// One target's look at SOURCE.
pub struct Look<'a> {
    pub ctx: &'a Ctx<'a>,
    /// SOURCE's rule files in force (the target's own forgotten: it is read again).
    pub rule_files: &'a RuleMap,
    /// Refresh subdirectories present on both sides too.
    pub deep: bool,
}

/// Per new entry of a level: what the refresh knows about it besides the entry.
#[derive(Default)]
struct Slot {
    /// The entry's directory, opened to be read (deep, new, or another directory).
    fd: Option<OwnedFd>,
    /// The index of the held entry of the same name.
    held: Option<usize>,
    /// A directory to read whole: new, or another directory than the one held.
    whole: bool,
    /// Its attributes were just found as held (by [`Look::unchanged_dir`]): they need
    /// no second stat.
    fresh: bool,
}

impl Look<'_> {
    /// Re-reads SOURCE directory `rel` (open as `src`, `chain_above` the rules in
    /// force above it), diffs it against the held `meta`/`held` and updates them to
    /// what SOURCE has now. Returns the plan for this directory. `fresh`: the
    /// directory's attributes were found as held a moment ago (its parent's listing),
    /// so they are not stat'ed again.
    pub fn dir(
        &self,
        src: BorrowedFd<'_>,
        rel: &[u8],
        chain_above: &Chain,
        meta: &mut Meta,
        held: &mut Dir,
        fresh: bool,
    ) -> DirPlan {
        let ctx = self.ctx;
        let src_meta = match fresh {
            true => *meta,
            false => sys::fstat(src).map(|st| sys::from_stat(&st).1).unwrap_or(*meta),
        };
        // A deep look (a poll rescan) at a level that is as held: checked in place,
        // nothing rebuilt; only its subdirectories are looked into.
        if self.deep && held::as_held(&src_meta) == *meta {
            if let Some(dp) = self.unchanged_dir(src, rel, chain_above, &src_meta, held) {
                return dp;
            }
            // The check read the listing: read it again from its start (a listing
            // read from its end would look empty). Should that fail, nothing is known
            // of this level now: keep what is held, change nothing.
            if sys::rewind_dir(src).is_err() {
                return DirPlan::default();
            }
        }
        // Unreadable now (reported): keep what is held, change nothing.
        let Ok((listed, chain)) = ctx.scanner.level(src, rel, chain_above) else { return DirPlan::default() };
        if rel.is_empty() && listed.is_empty() && !held.is_empty() {
            // (Counted only here: this runs at every look at SOURCE's root.)
            let dest_entries = held.count();
            let guard = ctx.cfg.guards.empty_source(
                &ctx.cfg.source,
                &ctx.dest_shown,
                listed.is_empty(),
                !held.is_empty(),
                dest_entries,
            );
            if let Err(r) = guard {
                *lock(&ctx.refused) = Some(r);
                return DirPlan::default();
            }
        }
        let (mut new, mut slots) = self.open_subdirs(src, rel, listed, held);
        // Directories read whole.
        new.par_iter_mut().zip(slots.par_iter_mut()).filter(|(_, s)| s.whole).for_each(|(e, s)| {
            if let Some(fd) = s.fd.take() {
                let path = join(rel, &e.name);
                e.kind = match ctx.scanner.subtree(fd, &path, &chain) {
                    Some(children) => Kind::Dir(children),
                    None => Kind::Unreadable,
                };
            }
        });
        // Plan this level (directory pairs: their own attributes only).
        let level = Level { base: rel, chain: &chain, rule_files: self.rule_files, deep: false };
        let held_listing = held_listing(held, &new, &slots);
        let mut dp =
            plan::plan_level(&src_meta, &new, Some(meta), &held_listing, &ctx.held_opts, &level).root;
        drop(held_listing);
        // A directory replaced by another one (new inode): diff the new tree against
        // what DEST holds there.
        for (e, s) in new.iter().zip(&slots) {
            let Some(j) = s.held else { continue };
            if !(s.whole && held.is_dir(j)) {
                continue;
            }
            dp.ops.retain(|op| !matches!(op, Op::Enter { name: n, .. } if *n == e.name));
            if matches!(e.kind, Kind::Unreadable) {
                // Cannot read it now: leave DEST's copy alone.
                continue;
            }
            let path = join(rel, &e.name);
            if held.is_unreadable(j) {
                // Readable again: what DEST holds there is unknown; check it both sides.
                lock(&ctx.verify).push(path.clone());
            }
            let sub_chain = plan::chain_in(self.rule_files, &chain, &path);
            let level = Level { base: &path, chain: &sub_chain, rule_files: self.rule_files, deep: true };
            let h_children = held.sub(j).map(Dir::entries).unwrap_or_default();
            let sp = plan::plan_level(
                &e.meta,
                e.children(),
                Some(&held.meta(j)),
                &h_children,
                &ctx.held_opts,
                &level,
            );
            if !sp.root.is_empty() {
                dp.ops.push(Op::Enter { name: e.name.clone(), sub: sp.root });
            }
        }
        // Directories present on both sides as the same directory: held index → new.
        let same_dirs: FxHashMap<usize, usize> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.held.map(|j| (j, i)))
            .filter(|(j, i)| held.is_dir(*j) && new[*i].is_dir() && !slots[*i].whole)
            .collect();
        if self.deep {
            self.refresh_same_dirs(rel, &chain, held, &same_dirs, &mut slots, &mut dp);
            if !dp.ops.is_empty() && dp.set_meta.is_none() {
                dp.set_meta = Some(src_meta);
            }
        }
        // The held listing becomes SOURCE's, keeping the (refreshed) children of the
        // same directories. Anything else paired by name (type changes, replaced
        // directories) is no rename source; unpaired held entries were removed.
        let mut paired = vec![false; held.len()];
        for j in slots.iter().filter_map(|s| s.held) {
            paired[j] = true;
        }
        let removed: Vec<(Vec<u8>, Entry)> = (0..held.len())
            .filter(|j| !paired[*j])
            .map(|j| (join(rel, held.name(j)), held.entry_deep(j)))
            .collect();
        if !removed.is_empty() {
            lock(&ctx.removed).extend(removed);
        }
        let kept = new.into_iter().zip(&slots).map(|(e, s)| match s.held {
            Some(j) if same_dirs.contains_key(&j) => (e, Some(j)),
            _ => (e, None),
        });
        held.replace_listing(kept);
        *meta = held::as_held(&src_meta);
        dp
    }

    /// [`Look::dir`] for a deep look at a level that SOURCE still has exactly as held
    /// ([`Scanner::unchanged_level`]): the held listing stays as it is, and its
    /// directories are refreshed in parallel. `None` when the level differs (or a
    /// directory in it can no longer be opened as one): it is then read in full.
    fn unchanged_dir(
        &self,
        src: BorrowedFd<'_>,
        rel: &[u8],
        chain_above: &Chain,
        src_meta: &Meta,
        held: &mut Dir,
    ) -> Option<DirPlan> {
        let scanner = self.ctx.scanner;
        let (chain, rule_file) = scanner.unchanged_level(src, rel, chain_above, &*held)?;
        let mut slots = Vec::new();
        let mut same_dirs = FxHashMap::default();
        for j in 0..held.len() {
            if !held.is_listed_dir(j) {
                continue;
            }
            let fd = match sys::open_dir_at(src, held.name(j)) {
                Ok(fd) => Some(fd),
                Err(err)
                    if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) =>
                {
                    return None
                }
                Err(err) => {
                    scanner.error(&join(rel, held.name(j)), &err);
                    None
                }
            };
            same_dirs.insert(j, slots.len());
            slots.push(Slot { fd, held: Some(j), whole: false, fresh: true });
        }
        scanner.keep_level(rel, rule_file, held.len());
        let mut dp = DirPlan::default();
        self.refresh_same_dirs(rel, &chain, held, &same_dirs, &mut slots, &mut dp);
        if !dp.ops.is_empty() && dp.set_meta.is_none() {
            dp.set_meta = Some(*src_meta);
        }
        Some(dp)
    }

    /// Opens the subdirectories to read (when deep all of them, otherwise the ones not
    /// held as the same directory) and pairs each entry with the held one of its name.
    /// One that vanished since the listing (renamed away, removed) is left out, so it
    /// counts as gone.
    fn open_subdirs(
        &self,
        src: BorrowedFd<'_>,
        rel: &[u8],
        listed: Vec<Entry>,
        held: &Dir,
    ) -> (Vec<Entry>, Vec<Slot>) {
        let held_index = |name: &[u8]| held.find(name);
        let same_dir =
            |e: &Entry| held_index(&e.name).is_some_and(|j| held.is_dir(j) && held.meta(j).ino == e.meta.ino);
        let opened: Vec<Result<Option<OwnedFd>, ()>> = listed
            .par_iter()
            .map(|e| {
                if !e.is_dir() || (!self.deep && same_dir(e)) {
                    return Ok(None);
                }
                match sys::open_dir_at(src, &e.name) {
                    Ok(fd) => Ok(Some(fd)),
                    Err(err)
                        if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) =>
                    {
                        Err(())
                    }
                    Err(err) => {
                        self.ctx.scanner.error(&join(rel, &e.name), &err);
                        Ok(None)
                    }
                }
            })
            .collect();
        let mut new = Vec::with_capacity(listed.len());
        let mut slots = Vec::with_capacity(listed.len());
        for (e, o) in listed.into_iter().zip(opened) {
            let Ok(fd) = o else { continue };
            let j = held_index(&e.name);
            let whole = e.is_dir()
                && match j {
                    Some(j) => !held.is_listed_dir(j) || held.meta(j).ino != e.meta.ino,
                    None => true,
                };
            new.push(e);
            slots.push(Slot { fd, held: j, whole, fresh: false });
        }
        (new, slots)
    }

    /// Deep looks: refreshes, in parallel, the held directories that SOURCE still has
    /// as the same directory, and puts their plans into `dp`.
    fn refresh_same_dirs(
        &self,
        rel: &[u8],
        chain: &Chain,
        held: &mut Dir,
        same_dirs: &FxHashMap<usize, usize>,
        slots: &mut [Slot],
        dp: &mut DirPlan,
    ) {
        let mut fds: FxHashMap<usize, (OwnedFd, bool)> = FxHashMap::default();
        for (j, i) in same_dirs {
            if let Some(fd) = slots[*i].fd.take() {
                fds.insert(*j, (fd, slots[*i].fresh));
            }
        }
        let subplans = held.par_each_subdir(|j, name, mut m, children| {
            let (fd, fresh) = fds.get(&j)?;
            let path = join(rel, name);
            let sub = self.dir(fd.as_fd(), &path, chain, &mut m, children, *fresh);
            Some((m, (Box::<[u8]>::from(name), sub)))
        });
        for (_, (name, sub)) in subplans {
            dp.ops.retain(|op| !matches!(op, Op::Enter { name: n, .. } if *n == name));
            if !sub.is_empty() {
                dp.ops.push(Op::Enter { name, sub });
            }
        }
    }
}
