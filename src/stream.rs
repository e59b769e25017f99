//! The streaming one-shot run: SOURCE and DEST both on this machine, a directory at a
//! time.
//!
//! [`one_shot`] is the one-shot run; [`run`] is `sync::sync_once` for two local trees
//! (without `-H`, whose link groups need every inode of both trees first). Instead of scanning both whole trees into
//! snapshots, planning, then applying, it walks both trees together, as rsync's
//! incremental recursion does: for each directory it lists SOURCE's and DEST's level
//! (`snapshot::Scanner::level`), diffs that level (`plan::plan_level`, not descending),
//! applies it (`apply::apply_open`, descriptors held from the parent), then goes into
//! its subdirectories (in parallel on the rayon pool, or one after the other when
//! changes are printed, so that itemized lines keep the dry run's path order), and
//! sets the directory's own mode and mtime last, once its contents are done. What is
//! held at any moment is the levels being worked on, one per directory on each
//! worker's path from the root: memory follows the widest directory, not the tree.
//!
//! Every promise of the whole-tree pipeline holds:
//! - a `.syncignore` that cannot be parsed stops the run before anything is changed:
//!   a first pass over SOURCE's directories (listings only, excluded directories left
//!   out, no stat per entry) finds and parses every rule file the run would read;
//! - the empty-SOURCE guard judges the root level, before anything is changed;
//! - `--max-delete`: the total is known only at the end, so every deletion of an
//!   entry SOURCE no longer has is held back (the plans of at most N of them are
//!   kept) and run at the end when the total is within the limit; past it, none is
//!   run, everything else has been synced, and the run ends refused (exit 4). An
//!   entry replaced by one of another kind is replaced on the way;
//! - a DEST directory that is removed is read whole first (its protected entries
//!   keep it), so that its removal is planned as before: children first, protected
//!   entries kept, `--backup-dir` moving it in one rename. That subtree is the one
//!   thing held whole;
//! - directory attributes are set after their contents, deletions run children
//!   first, the summary counts what was done, and `scanned` what SOURCE's levels held.
//!
//! Progress: the totals are not known up front; the display shows what has been
//! planned so far (`Progress::start_stream`, `Progress::planned`), growing as
//! directories are read.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::apply::{self, ApplyOptions};
use crate::config::Config;
use crate::dest::Dest;
use crate::exit::{Exit, Failure};
use crate::ignore::{self, Chain};
use crate::lock::{into_inner, lock};
use crate::outcome::Outcome;
use crate::plan::{self, DeleteReason, DirPlan, Level, Op, Totals};
use crate::relpath::{join, rel_path};
use crate::report::{Reporter, Side, SideSink};
use crate::snapshot::{self, Entry, Kind, RuleMap, ScanOptions, ScanSink, Scanner};
use crate::source::Source;
use crate::sync;
use crate::sys::{self, Meta, RawKind};
use crate::tree::LocalTree;

/// What DEST has for a directory being synced.
#[derive(Clone, Copy, Debug)]
enum Dst {
    /// A directory, with these attributes.
    Existing(Meta),
    /// Made by this run (or, in a dry run, it would be): empty, its attributes set
    /// once it is filled, without a `meta` change.
    Created,
    /// DEST's root, not there yet: made by this run, its attributes a `meta` change.
    Missing,
}

/// A subdirectory to go into once its parent's level is done.
struct Sub {
    name: Box<[u8]>,
    /// SOURCE's attributes of it.
    meta: Meta,
    dst: Dst,
}

/// `--max-delete`: the deletions held back until the total is known.
#[derive(Default)]
struct Held {
    /// Entries the held deletions remove (as `plan::Totals::deletes` counts them).
    count: u64,
    /// Each directory's held deletions (its attributes restored after them); dropped
    /// once the count is past the limit.
    plans: Vec<(Vec<u8>, DirPlan)>,
}

struct Stream<'a> {
    cfg: &'a Config,
    source: &'a LocalTree,
    rep: &'a Reporter,
    /// SOURCE's scan: its rules, explanations, special files.
    scanner: Scanner<'a>,
    src_sink: &'a SideSink<'a>,
    /// DEST's levels: everything as it is.
    dst_level: ScanOptions<'a>,
    /// DEST's subtrees that are removed: excluded directories not read (protected).
    dst_tree: ScanOptions<'a>,
    /// The planner descends no level, so it needs no rule files of its own.
    no_rules: &'a RuleMap,
    apply: ApplyOptions,
    /// Changes are printed: directories one after the other, in path order.
    in_order: bool,
    /// The size of every file is wanted before it is copied (changes printed or
    /// listed, a progress display's totals): a level copied into a directory DEST
    /// does not have is then stat'ed whole; otherwise its copies read the files'
    /// attributes from the files they open (`Scanner::level_of`).
    sizes: bool,
    links_follow: bool,
    totals: Mutex<Totals>,
    conflicts: AtomicU64,
    dirs: AtomicU64,
    held: Option<Mutex<Held>>,
}

/// Passes on only what a rule file's first reading must tell: patterns that do not
/// parse (the stream reports everything else when it gets there).
struct PatternsOnly<'a>(&'a dyn ScanSink);

impl ScanSink for PatternsOnly<'_> {
    fn scan_error(&self, _path: &[u8], _err: &io::Error) {}
    fn special(&self, _path: &[u8], _what: &str) {}
    fn pattern_error(&self, err: &ignore::PatternError) {
        self.0.pattern_error(err);
    }
}

/// A one-shot run: streamed between two local trees; with a remote side (which
/// lists whole trees its own way) or `-H` (link groups need every inode of both
/// trees first), `sync::sync_once`'s whole-tree pipeline.
/// `ahead`: SOURCE already scanned for the whole-tree pipeline (`sync::scan_ahead`).
pub fn one_shot(
    cfg: &Config,
    source: &dyn Source,
    dest: &dyn Dest,
    rep: &Reporter,
    ahead: Option<sync::Ahead>,
) -> Result<Exit, Failure> {
    match (source.local(), dest.local(), cfg.hard_links) {
        (Some(src), Some(dst), false) => run(cfg, src, dst, rep),
        _ => sync::sync_once(cfg, source, dest, rep, ahead),
    }
}

/// The one-shot run between two local trees (see the module's documentation).
pub fn run(cfg: &Config, source: &LocalTree, dest: &LocalTree, rep: &Reporter) -> Result<Exit, Failure> {
    rep.progress().scanning();
    let t = std::time::Instant::now();
    let src_sink = SideSink { reporter: rep, side: Side::Source, count: true, failures: None };
    let dst_sink = SideSink { reporter: rep, side: Side::Dest, count: false, failures: None };
    let read_source = |e: &io::Error| Failure::io("cannot read SOURCE", &cfg.source, e);
    // (A listing moves its descriptor's offset: the first pass has its own.)
    check_rule_files(cfg, source.open().map_err(|e| read_source(&e))?.as_fd(), &src_sink);
    let sroot = source.open().map_err(|e| read_source(&e))?;
    if rep.pattern_errors() > 0 {
        // Each bad pattern was reported (file, line, pattern); nothing was changed.
        return Err(Failure::Reported(Exit::Usage));
    }
    let no_rules = RuleMap::default();
    let in_order = cfg.dry_run || rep.prints_changes();
    let s = Stream {
        cfg,
        source,
        rep,
        scanner: Scanner::new(sync::source_scan(cfg, &src_sink, None)),
        src_sink: &src_sink,
        dst_level: ScanOptions {
            report_special: false,
            sink: &dst_sink,
            rules: None,
            explain: false,
            previous_rules: None,
            prune: None,
            one_file_system: None,
        },
        dst_tree: sync::dest_scan(cfg, &dst_sink, Some(&no_rules)),
        no_rules: &no_rules,
        apply: sync::apply_options(cfg),
        in_order,
        sizes: in_order || rep.progress().shows_totals(),
        links_follow: false,
        totals: Mutex::new(Totals::default()),
        conflicts: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        held: cfg.guards.max_delete.map(|_| Mutex::new(Held::default())),
    };
    let (_, smeta) = sys::from_stat(&sys::fstat(sroot.as_fd()).map_err(|e| read_source(&e))?);
    let (src, inner) = s.scanner.level(sroot.as_fd(), b"", &Vec::new()).map_err(|()| {
        read_source(&io::Error::new(io::ErrorKind::PermissionDenied, "cannot list its entries"))
    })?;
    if rep.pattern_errors() > 0 {
        return Err(Failure::Reported(Exit::Usage));
    }
    let read_dest = |e: &io::Error| Failure::io("cannot read DEST", &cfg.dest, e);
    let existed = dest.exists();
    let (mut droot, dst, dst_entries) = if existed {
        let fd = dest.open().map_err(|e| read_dest(&e))?;
        let (_, m) = sys::from_stat(&sys::fstat(fd.as_fd()).map_err(|e| read_dest(&e))?);
        let (entries, _) = Scanner::new(s.dst_level).level(fd.as_fd(), b"", &Vec::new()).map_err(|()| {
            read_dest(&io::Error::new(io::ErrorKind::PermissionDenied, "cannot list its entries"))
        })?;
        (Some(fd), Dst::Existing(m), entries)
    } else {
        (None, Dst::Missing, Vec::new())
    };
    // The empty-SOURCE guard, on the root level (DEST read whole only to say how much
    // it holds, when it refuses).
    if existed {
        let count = || count_dest(&s, dest, &inner);
        cfg.guards
            .empty_source_root(&cfg.rules, &cfg.source, &dest.shown(), &src, &inner, &dst_entries, count)
            .map_err(sync::refuse)?;
    }
    if !existed && !cfg.dry_run {
        dest.create().map_err(|e| Failure::io("cannot create DEST", &cfg.dest, &e))?;
        droot = Some(dest.open().map_err(|e| read_dest(&e))?);
    }
    let s = Stream { links_follow: droot.as_ref().is_some_and(|d| apply::links_follow(d.as_fd(), rep)), ..s };
    rep.progress().start_stream();
    let dst_meta = match dst {
        Dst::Existing(m) => Some(m),
        _ => None,
    };
    s.level(b"", Some(sroot), droot, smeta, dst, dst_meta, src, dst_entries, &inner);
    let totals = *lock(&s.totals);
    let conflicts = s.conflicts.load(Relaxed);
    rep.debug(&format!(
        "streamed {} directories (scanned, planned and applied one at a time) in {:.3}s; planned in them: {}",
        s.dirs.load(Relaxed),
        t.elapsed().as_secs_f64(),
        sync::planned_text(&totals)
    ));
    rep.set_planned(totals.copies + totals.mkdirs + totals.symlinks + totals.metas + conflicts);
    if rep.pattern_errors() > 0 {
        // A rule file that changed after the first pass: nothing below it was synced.
        return Err(Failure::Reported(Exit::Usage));
    }
    if let Some(held) = s.held {
        let held = into_inner(held);
        if let Err(r) = cfg.guards.deletions(held.count) {
            return Err(Failure::refused(format!(
                "{r}; every deletion was held back (DEST keeps those entries), everything else was synced"
            )));
        }
        for (base, dp) in &held.plans {
            if sys::stopping() {
                break;
            }
            if cfg.dry_run {
                for c in dp.changes(base) {
                    rep.change(&c.path, &c.kind);
                }
            } else if let Err(e) = Dest::apply(dest, dp, base, source, rep, s.apply) {
                rep.error(Side::Dest, base, &sys::describe(&e));
            }
        }
    }
    Ok(if rep.errors() > 0 { Exit::Partial } else { Exit::Ok })
}

/// How many entries DEST holds in all (the empty-SOURCE refusal says it): DEST read
/// whole, as the refusal changes nothing anyway.
fn count_dest(s: &Stream<'_>, dest: &LocalTree, chain: &Chain) -> u64 {
    let Ok(fd) = dest.open() else { return 0 };
    Scanner::new(s.dst_tree)
        .subtree(fd, b"", chain)
        .map_or(0, |entries| entries.iter().map(Entry::count).sum())
}

/// The first pass: parses every `.syncignore` SOURCE's scan will read (directories
/// that rules exclude are not entered, as the scan does not enter them), reporting
/// the patterns that do not parse. Only listings: no entry is stat'ed whose directory
/// entry tells its kind, and directories without subdirectories are not even listed.
fn check_rule_files(cfg: &Config, root: BorrowedFd<'_>, sink: &dyn ScanSink) {
    let only = PatternsOnly(sink);
    rule_walk(cfg, root, b"", &Vec::new(), &only);
}

fn rule_walk(cfg: &Config, dir: BorrowedFd<'_>, rel: &[u8], chain: &Chain, sink: &PatternsOnly<'_>) {
    if sys::stopping() {
        return;
    }
    let Ok(st) = sys::fstat(dir) else { return };
    if other_file_system(cfg, &st) {
        return;
    }
    if !rel.is_empty() && is_leaf(&st) {
        if sys::stat_at(dir, ignore::IGNORE_FILE).is_ok() {
            let _ = snapshot::load_rules(dir, rel, sink);
        }
        return;
    }
    // Only the names of subdirectories are kept (most entries are files).
    let mut has_rules = false;
    let mut dirs: Vec<Box<[u8]>> = Vec::new();
    let listed = sys::each_name(dir, |name, kind| {
        let name = name.to_bytes();
        has_rules |= name == ignore::IGNORE_FILE;
        let is_dir = match kind {
            Some(k) => k == RawKind::Dir,
            None => sys::stat_at(dir, name).is_ok_and(|st| sys::from_stat(&st).0 == RawKind::Dir),
        };
        if is_dir {
            dirs.push(name.into());
        }
        true
    });
    if listed.is_err() {
        return;
    }
    let mut chain = chain.clone();
    if has_rules {
        match snapshot::load_rules(dir, rel, sink) {
            Ok(Some(file)) => chain.push(Arc::new(file)),
            Ok(None) => {}
            // Unreadable: the scan reports it, and does not judge this directory.
            Err(()) => return,
        }
    }
    let subdirs: Vec<(Box<[u8]>, Vec<u8>)> = dirs
        .into_iter()
        .map(|name| {
            let path = join(rel, &name);
            (name, path)
        })
        .filter(|(_, path)| !cfg.rules.excluded(&chain, rel_path(path), true))
        .collect();
    subdirs.par_iter().for_each(|(name, path)| {
        if leaf_without_rules(cfg, dir, name) {
            return;
        }
        if let Ok(fd) = sys::open_dir_at(dir, name) {
            rule_walk(cfg, fd.as_fd(), path, &chain, sink);
        }
    });
}

/// Subdirectory `name` of `dir` is a leaf (see [`rule_walk`]) with no rule file, or on
/// another file system under `--one-file-system`: nothing for the first pass to read
/// there. Told by two `fstatat`s through `dir`, where opening the leaf, `fstat`ing it,
/// looking for its rule file and closing it took four system calls (most directories
/// of a tree are leaves). `false` when in doubt: [`rule_walk`] then opens it and looks.
/// (Should `name` be swapped for a symlink between the two looks, the second follows
/// it: what it finds only decides whether the leaf is opened, without following links,
/// and a rule file the first pass did not read is still judged by the stream, which
/// syncs nothing below one that does not parse.)
fn leaf_without_rules(cfg: &Config, dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    let Ok(st) = sys::stat_at(dir, name) else { return false };
    if other_file_system(cfg, &st) {
        return true;
    }
    if sys::from_stat(&st).0 != RawKind::Dir || !is_leaf(&st) {
        return false;
    }
    let mut rule_file = Vec::with_capacity(name.len() + 1 + ignore::IGNORE_FILE.len());
    rule_file.extend_from_slice(name);
    rule_file.push(b'/');
    rule_file.extend_from_slice(ignore::IGNORE_FILE);
    matches!(sys::stat_at(dir, &rule_file), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// Under `--one-file-system`, `st` is on another file system than SOURCE: the first
/// pass does not enter it, as the scan does not.
fn other_file_system(cfg: &Config, st: &rustix::fs::Stat) -> bool {
    #[allow(clippy::unnecessary_cast)] // st_dev is not u64 everywhere
    cfg.one_file_system.is_some_and(|dev| st.st_dev as u64 != dev)
}

/// A link count of 2 is a directory without subdirectories (where the file system
/// keeps the count so, as `find` relies on; btrfs's 1 is listed): the first pass does
/// not list it, only looks for its rule file. (Most directories of a tree are such
/// leaves.)
#[allow(clippy::unnecessary_cast)] // st_nlink is not u64 everywhere
fn is_leaf(st: &rustix::fs::Stat) -> bool {
    st.st_nlink as u64 == 2
}

/// Entries of a `Delete` (as `plan::Totals::deletes` counts them).
fn deletions_in(op: &Op) -> u64 {
    match op {
        Op::Delete { sub, keep, reason, .. } => {
            let own = u64::from(!keep && *reason != DeleteReason::Temporary);
            own + sub.ops.iter().map(deletions_in).sum::<u64>()
        }
        _ => 0,
    }
}

impl Stream<'_> {
    /// Directory `rel`: its SOURCE level read (`sfd`: `None` when it vanished after
    /// its parent was listed: an empty directory), then [`Stream::level`].
    fn dir(
        &self,
        rel: &[u8],
        sfd: Option<OwnedFd>,
        dfd: Option<OwnedFd>,
        meta: Meta,
        dst: Dst,
        chain: &Chain,
    ) {
        if sys::stopping() {
            return;
        }
        // (`--checksum` compares only files both sides have: none in a new directory.)
        let stat_files = self.sizes || matches!(dst, Dst::Existing(_));
        let listed = match &sfd {
            Some(fd) => self.scanner.level_of(fd.as_fd(), rel, chain, stat_files),
            None => Ok((Vec::new(), chain.clone())),
        };
        let Ok((src, inner)) = listed else {
            // Reported; DEST's directory is left as it is.
            return self.unreadable(rel, dfd, meta, dst);
        };
        let (dst_entries, dst_meta) = match (&dfd, dst) {
            (Some(fd), Dst::Existing(m)) => {
                match Scanner::new(self.dst_level).level(fd.as_fd(), rel, &Vec::new()) {
                    Ok((entries, _)) => (entries, Some(m)),
                    // Reported: taken as an empty directory, its attributes set again.
                    Err(()) => (Vec::new(), None),
                }
            }
            _ => (Vec::new(), None),
        };
        self.level(rel, sfd, dfd, meta, dst, dst_meta, src, dst_entries, &inner);
    }

    /// SOURCE's directory `rel` cannot be read: what DEST has there stays; one this
    /// run made gets SOURCE's attributes, opened up for its owner so that a later
    /// run can fill it (as `plan` does for an unreadable directory).
    fn unreadable(&self, rel: &[u8], dfd: Option<OwnedFd>, meta: Meta, dst: Dst) {
        if let (Dst::Created, Some(d), false) = (dst, &dfd, self.cfg.dry_run) {
            let meta = Meta { mode: meta.mode | 0o700, ..meta };
            let dp = DirPlan { ops: Vec::new(), set_meta: Some(meta), meta_changed: false };
            self.run_plan(&dp, rel, None, Some(d.as_fd()));
        }
    }

    /// One directory: its levels diffed, applied, its subdirectories gone into, its
    /// attributes set.
    #[allow(clippy::too_many_arguments)]
    fn level(
        &self,
        rel: &[u8],
        sfd: Option<OwnedFd>,
        dfd: Option<OwnedFd>,
        meta: Meta,
        dst: Dst,
        dst_meta: Option<Meta>,
        mut src: Vec<Entry>,
        mut dst_entries: Vec<Entry>,
        inner: &Chain,
    ) {
        if self.rep.pattern_errors() > 0 || sys::stopping() {
            return;
        }
        self.dirs.fetch_add(1, Relaxed);
        if let Some(d) = &dfd {
            self.read_removed(d.as_fd(), rel, &src, &mut dst_entries, inner);
        }
        if let (true, Some(s), Some(d)) = (self.cfg.plan.checksum, &sfd, &dfd) {
            snapshot::digest_dir(s.as_fd(), &mut src, d.as_fd(), &mut dst_entries, rel, self.src_sink);
        }
        let lvl = Level { base: rel, chain: inner, rule_files: self.no_rules, deep: false };
        let mut plan = plan::plan_level(&meta, &src, dst_meta.as_ref(), &dst_entries, &self.cfg.plan, &lvl);
        sync::report_plan_notes(self.rep, &plan);
        // Subdirectories are synced on their own (attributes included); what SOURCE
        // has of them is all that is kept of this level.
        let mut ops = std::mem::take(&mut plan.root.ops);
        let mut moved_metas = 0;
        let mut created: Vec<Box<[u8]>> = Vec::new();
        ops.retain_mut(|op| match op {
            Op::Enter { sub, .. } => {
                moved_metas += u64::from(sub.meta_changed);
                false
            }
            Op::Mkdir { name, sub } => {
                sub.set_meta = None;
                created.push(name.clone());
                true
            }
            _ => true,
        });
        let own = plan.root.meta_changed && !matches!(dst, Dst::Created);
        {
            let mut t = lock(&self.totals);
            let p = &plan.totals;
            t.copies += p.copies;
            t.copy_bytes = t.copy_bytes.saturating_add(p.copy_bytes);
            t.mkdirs += p.mkdirs;
            t.symlinks += p.symlinks;
            t.metas += (p.metas - moved_metas) + u64::from(own && !rel.is_empty());
            t.deletes += p.deletes;
            t.temporaries += p.temporaries;
        }
        self.conflicts.fetch_add(plan.conflicts.len() as u64, Relaxed);
        self.rep.progress().planned(plan.totals.copies, plan.totals.copy_bytes);
        // (Mkdir operations come in name order, and both levels are sorted.)
        let subs: Vec<Sub> = src
            .into_iter()
            .filter(|s| matches!(s.kind, Kind::Dir(_)))
            .filter_map(|s| {
                let dst = if created.binary_search(&s.name).is_ok() {
                    Dst::Created
                } else {
                    let i = dst_entries.binary_search_by(|d| d.name.cmp(&s.name)).ok()?;
                    match dst_entries[i].kind {
                        Kind::Dir(_) => Dst::Existing(dst_entries[i].meta),
                        _ => return None,
                    }
                };
                Some(Sub { name: s.name, meta: s.meta, dst })
            })
            .collect();
        drop(dst_entries);
        let set_meta = (own || !ops.is_empty() || matches!(dst, Dst::Created | Dst::Missing)).then_some(meta);
        if let Some(held) = &self.held {
            let deletes = ops.iter().take_while(|op| op.is_delete()).count();
            let rest = ops.split_off(deletes);
            let (gone, now): (Vec<Op>, Vec<Op>) =
                ops.into_iter().partition(|op| matches!(op, Op::Delete { reason: DeleteReason::Gone, .. }));
            if !gone.is_empty() {
                self.hold(held, rel, gone, meta);
            }
            ops = now;
            ops.extend(rest);
        }
        let (s, d) = (sfd.as_ref().map(|f| f.as_fd()), dfd.as_ref().map(|f| f.as_fd()));
        if subs.is_empty() && !self.cfg.dry_run {
            // Nothing to go into: the level's operations, then its attributes, in one
            // plan (as the whole-tree applier runs a directory).
            match set_meta {
                None => {
                    self.run_ops(rel, s, d, ops);
                }
                Some(_) if sys::stopping() => {}
                Some(_) => {
                    self.run_plan(&DirPlan { ops, set_meta, meta_changed: own }, rel, s, d);
                }
            }
            return;
        }
        if self.in_order {
            // Deletions, then the rest in name order, each subdirectory's contents at
            // its place (after its `mkdir` line), as the dry run lists a whole plan.
            let deletes = ops.iter().take_while(|op| op.is_delete()).count();
            let rest = ops.split_off(deletes);
            self.run_ops(rel, s, d, ops);
            let mut subs = subs.into_iter().peekable();
            let mut chunk = Vec::new();
            for op in rest {
                while let Some(sub) = subs.next_if(|sub| *sub.name < *op.name()) {
                    self.run_ops(rel, s, d, std::mem::take(&mut chunk));
                    self.descend(rel, s, d, &sub, inner);
                }
                let opens =
                    matches!(op, Op::Mkdir { .. }) && subs.peek().is_some_and(|sub| *sub.name == *op.name());
                chunk.push(op);
                if opens {
                    let failed = self.run_ops(rel, s, d, std::mem::take(&mut chunk)).failed;
                    if let Some(sub) = subs.next().filter(|sub| !failed.contains(&join(rel, &sub.name))) {
                        self.descend(rel, s, d, &sub, inner);
                    }
                }
            }
            self.run_ops(rel, s, d, chunk);
            for sub in subs {
                self.descend(rel, s, d, &sub, inner);
            }
        } else {
            // (A directory that could not be made is not gone into: it was reported.)
            let failed = self.run_ops(rel, s, d, ops).failed;
            let subs: Vec<&Sub> = if failed.is_empty() {
                subs.iter().collect()
            } else {
                let failed: rustc_hash::FxHashSet<Vec<u8>> = failed.into_iter().collect();
                subs.iter().filter(|sub| !failed.contains(&join(rel, &sub.name))).collect()
            };
            subs.par_iter().for_each(|sub| self.descend(rel, s, d, sub, inner));
        }
        // The directory's own attributes, once its contents are done.
        if let Some(meta) = set_meta {
            if sys::stopping() {
                return;
            }
            if self.cfg.dry_run {
                if own {
                    self.rep.change(if rel.is_empty() { b"." } else { rel }, &plan::ChangeKind::Meta);
                }
            } else {
                let dp = DirPlan { ops: Vec::new(), set_meta: Some(meta), meta_changed: own };
                self.run_plan(&dp, rel, s, d);
            }
        }
    }

    /// Holds back the deletions `ops` of directory `rel` (`--max-delete`).
    fn hold(&self, held: &Mutex<Held>, rel: &[u8], ops: Vec<Op>, meta: Meta) {
        let n: u64 = ops.iter().map(deletions_in).sum();
        let max = self.cfg.guards.max_delete.unwrap_or(u64::MAX);
        let mut h = lock(held);
        h.count += n;
        if h.count > max {
            // Past the limit: none of them will run.
            h.plans = Vec::new();
        } else {
            h.plans.push((rel.to_vec(), DirPlan { ops, set_meta: Some(meta), meta_changed: false }));
        }
    }

    /// Reads whole the DEST directories of this level that the plan removes (SOURCE
    /// has nothing, or something else, there), as the whole-tree scan did.
    fn read_removed(&self, dfd: BorrowedFd<'_>, rel: &[u8], src: &[Entry], dst: &mut [Entry], chain: &Chain) {
        let prune = !self.cfg.rules.delete_excluded;
        let removed = |d: &Entry| {
            matches!(d.kind, Kind::Dir(_))
                && match src.binary_search_by(|s| s.name.cmp(&d.name)) {
                    Err(_) => self.cfg.plan.delete || sys::is_temp_name(&d.name),
                    Ok(i) => matches!(src[i].kind, Kind::File(_) | Kind::Symlink(_)),
                }
        };
        // (Most levels remove no directory: no parallel job for them.)
        if !dst.iter().any(removed) {
            return;
        }
        dst.par_iter_mut().filter(|d| removed(d)).for_each(|d| {
            let path = join(rel, &d.name);
            if prune && self.cfg.rules.excluded(chain, rel_path(&path), true) {
                // Excluded: protected, never read (as DEST's whole scan leaves it).
                d.kind = Kind::Unreadable;
                return;
            }
            match sys::open_dir_at(dfd, &d.name) {
                Ok(fd) => {
                    d.kind = match Scanner::new(self.dst_tree).subtree(fd, &path, chain) {
                        Some(children) => Kind::Dir(children),
                        None => Kind::Unreadable,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.dst_tree.sink.scan_error(&path, &e);
                    d.kind = Kind::Unreadable;
                }
            }
        });
    }

    /// Goes into subdirectory `sub` of `rel`.
    fn descend(
        &self,
        rel: &[u8],
        sfd: Option<BorrowedFd<'_>>,
        dfd: Option<BorrowedFd<'_>>,
        sub: &Sub,
        chain: &Chain,
    ) {
        if sys::stopping() {
            return;
        }
        let path = join(rel, &sub.name);
        let opens_dest = match sub.dst {
            Dst::Existing(_) => true,
            Dst::Created | Dst::Missing => !self.cfg.dry_run,
        };
        let d = match dfd.filter(|_| opens_dest).map(|fd| sys::open_dir_at(fd, &sub.name)) {
            Some(Ok(fd)) => Some(fd),
            None => None,
            Some(Err(e)) => {
                // Not made, or no longer a directory: nothing below it can be synced.
                if !(self.cfg.dry_run && e.kind() == io::ErrorKind::NotFound) {
                    self.rep.error(Side::Dest, &path, &sys::describe(&e));
                }
                return;
            }
        };
        let s = match sfd.map(|fd| sys::open_dir_at(fd, &sub.name)) {
            Some(Ok(fd)) => Some(fd),
            // Gone since its parent was listed: an empty directory now.
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => None,
            None => None,
            Some(Err(e)) => {
                self.src_sink.scan_error(&path, &e);
                return self.unreadable(&path, d, sub.meta, sub.dst);
            }
        };
        self.dir(&path, s, d, sub.meta, sub.dst, chain);
    }

    /// Applies (or, in a dry run, lists) operations of directory `rel`; returns what
    /// failed (reported), so that a directory that could not be made is not gone into.
    fn run_ops(
        &self,
        rel: &[u8],
        sfd: Option<BorrowedFd<'_>>,
        dfd: Option<BorrowedFd<'_>>,
        ops: Vec<Op>,
    ) -> Outcome {
        if ops.is_empty() {
            return Outcome::default();
        }
        let dp = DirPlan { ops, set_meta: None, meta_changed: false };
        if self.cfg.dry_run {
            for c in dp.changes(rel) {
                self.rep.change(&c.path, &c.kind);
            }
            return Outcome::default();
        }
        self.run_plan(&dp, rel, sfd, dfd)
    }

    fn run_plan(
        &self,
        dp: &DirPlan,
        rel: &[u8],
        sfd: Option<BorrowedFd<'_>>,
        dfd: Option<BorrowedFd<'_>>,
    ) -> Outcome {
        let Some(d) = dfd else { return Outcome::default() };
        apply::apply_open(dp, rel, sfd, d, self.source, self.rep, self.apply, self.links_follow)
    }
}
