//! Watch mode's model of DEST, and the incremental syncs that keep it true.
//!
//! A [`Mirror`] holds one snapshot: what DEST holds as of the last sync, recorded with
//! SOURCE's attributes and inode numbers (after a sync, DEST mirrors them). A watch
//! cycle never scans DEST: it re-reads only the SOURCE directories that may have changed
//! ([`Target`]), diffs each directory level against the held snapshot with the same
//! planner as batch mode (`plan::plan_level`), updates the snapshot in place, and hands
//! the plans to the same `apply` code. Between cycles DEST is trusted; it is scanned at
//! start, and again for any subtree where an operation failed ([`Target::Verify`]).
//!
//! Renames: entries that vanished from one place and appeared in another within one
//! cycle, with the same inode, kind, size and mtime, are renamed in DEST instead of
//! deleted and copied again (a moved directory keeps all its contents).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::apply;
use crate::config::Config;
use crate::exit::Failure;
use crate::ignore::Chain;
use crate::plan::{self, ChangeKind, DirPlan, Level, Op};
use crate::report::{Reporter, Side, SideSink};
use crate::run;
use crate::snapshot::{join, split_last, Entry, Kind, RuleMap, Scanner, Snapshot};
use crate::sys::{self, Meta};

/// What a cycle must look at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Re-read one SOURCE directory's entries (new subdirectories whole).
    Level(Vec<u8>),
    /// Re-read a whole SOURCE subtree.
    Deep(Vec<u8>),
    /// Scan the subtree on both sides and sync it as batch mode does (after failures).
    Verify(Vec<u8>),
}

/// Plan options against the held snapshot: SOURCE's own attributes, compared exactly;
/// contents were compared (with --checksum) when DEST was last verified.
fn held_opts(cfg: &Config) -> plan::PlanOptions {
    plan::PlanOptions { dest_grain_ns: None, checksum: false, ..cfg.plan.clone() }
}

fn apply_opts(cfg: &Config) -> apply::ApplyOptions {
    apply::ApplyOptions { owner: cfg.plan.owner, vanished_ok: true }
}

/// The parent of a relative path (`a/b` → `a`, `a` → ``).
pub fn parent(rel: &[u8]) -> &[u8] {
    split_last(rel).0
}

/// True when `rel` is `dir` or lies below it.
pub fn is_within(rel: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() || rel == dir || (rel.starts_with(dir) && rel.get(dir.len()) == Some(&b'/'))
}

pub struct Mirror<'c> {
    cfg: &'c Config,
    held: Snapshot,
    /// Creations put off once (a move seen half done); the next time they go ahead.
    deferred: FxHashSet<Vec<u8>>,
}

/// What one cycle found to do.
#[derive(Default)]
struct CyclePlan {
    /// Directory plans, each at its base directory.
    plans: Vec<(Vec<u8>, DirPlan)>,
    /// Entries that vanished from a directory DEST has (for rename matching).
    removed: Vec<(Vec<u8>, Entry)>,
    /// Renames to do first: (from, to).
    renames: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Shared state of one refresh.
struct Ctx<'a> {
    cfg: &'a Config,
    /// Plan options against the held snapshot (SOURCE's own timestamps: exact).
    held_opts: plan::PlanOptions,
    scanner: &'a Scanner<'a>,
    removed: Mutex<Vec<(Vec<u8>, Entry)>>,
    /// Directories to sync two-sided next (they were unreadable before).
    verify: Mutex<Vec<Vec<u8>>>,
    /// SOURCE became empty while DEST holds entries (an unmounted share?): do nothing.
    refused_empty: std::sync::atomic::AtomicBool,
}

impl<'c> Mirror<'c> {
    /// The first sync of a watch session: a full batch sync. The held snapshot then is
    /// SOURCE's. Also returns what to retry (where operations failed).
    pub fn start(cfg: &'c Config, rep: &Reporter) -> Result<(Mirror<'c>, Vec<Target>), Failure> {
        let mut m = Mirror { cfg, held: Snapshot::default(), deferred: FxHashSet::default() };
        m.held.root.mode = u32::MAX; // unknown until verified
        m.verify(b"", rep, true)?;
        let retries = m.after_failures(rep);
        Ok((m, retries))
    }

    /// True when a directory above `rel` is excluded by the ignore rules in force (an
    /// event there concerns nothing that is mirrored).
    pub fn inside_excluded_dir(&self, rel: &[u8]) -> bool {
        let rules = &self.cfg.rules;
        let mut chain = plan::chain_for(&self.held.rule_files, b"");
        for (i, b) in rel.iter().enumerate() {
            if *b != b'/' {
                continue;
            }
            let dir = &rel[..i];
            if rules.excluded(&chain, crate::ignore::rel_path(dir), true) {
                return true;
            }
            chain = plan::chain_in(&self.held.rule_files, &chain, dir);
        }
        false
    }

    /// Entries whose operation failed (or whose SOURCE vanished mid-copy) are not what
    /// the held snapshot says: mark them so they match nothing (no false "unchanged",
    /// no rename from them), and verify their directories later.
    fn after_failures(&mut self, rep: &Reporter) -> Vec<Target> {
        let mut retries = Vec::new();
        let failed = rep.take_failed();
        for p in failed.iter().chain(&rep.take_not_done()) {
            if let Some(e) = find_entry_mut(&mut self.held, p) {
                e.meta.size = u64::MAX;
                e.meta.mtime_sec = i64::MIN;
                e.meta.ino = u64::MAX;
            }
        }
        for p in failed {
            retries.push(Target::Verify(parent(&p).to_vec()));
        }
        retries
    }

    /// Two-sided sync of subtree `rel` (as batch mode does), then the held snapshot of
    /// that subtree is SOURCE's. `guards`: apply the batch guards (first sync).
    fn verify(&mut self, rel: &[u8], rep: &Reporter, guards: bool) -> Result<(), Failure> {
        let cfg = self.cfg;
        let src_sink = SideSink { reporter: rep, side: Side::Source, count: true };
        let dst_sink = SideSink { reporter: rep, side: Side::Dest, count: false };
        let src_root =
            sys::open_root(&cfg.source).map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
        // DEST (and missing parents) made here are removed again if the run stops
        // before changing anything (bad ignore patterns).
        let created = if cfg.dest.exists() {
            None
        } else {
            let mut top = cfg.dest.as_path();
            while let Some(p) = top.parent().filter(|p| !p.exists()) {
                top = p;
            }
            let top = top.to_path_buf();
            std::fs::create_dir_all(&cfg.dest)
                .map_err(|e| Failure::io("cannot create DEST", &cfg.dest, &e))?;
            Some(top)
        };
        let dst_root =
            sys::open_root(&cfg.dest).map_err(|e| Failure::io("cannot read DEST", &cfg.dest, &e))?;
        // Go up until both sides have the directory.
        let mut rel = rel.to_vec();
        let (s_fd, d_fd) = loop {
            match (sys::open_path_at(src_root.as_fd(), &rel), sys::open_path_at(dst_root.as_fd(), &rel)) {
                (Ok(s), Ok(d)) => break (s, d),
                _ if !rel.is_empty() => rel = parent(&rel).to_vec(),
                (Err(e), _) | (_, Err(e)) => {
                    return Err(Failure::fatal(format!(
                        "cannot read {}: {}",
                        cfg.source.display(),
                        sys::describe(&e)
                    )))
                }
            }
        };
        let previous = self.held.rule_files.clone();
        let scanner = Scanner::new(run::source_scan(cfg, &src_sink, Some(&previous)));
        let dst_scanner = Scanner::new(run::dest_scan(cfg, &dst_sink, None));
        let chain_above = plan::chain_for(&self.held.rule_files, parent(&rel));
        let chain_above = if rel.is_empty() { Vec::new() } else { chain_above };
        let (src_meta, dst_meta) = match (sys::fstat(s_fd.as_fd()), sys::fstat(d_fd.as_fd())) {
            (Ok(a), Ok(b)) => (sys::from_stat(&a).1, sys::from_stat(&b).1),
            (Err(e), _) | (_, Err(e)) => return Err(Failure::fatal(sys::describe(&e))),
        };
        let (src_entries, dst_entries) = rayon::join(
            || scanner.subtree(s_fd, &rel, &chain_above),
            || dst_scanner.subtree(d_fd, &rel, &Vec::new()),
        );
        if rep.pattern_errors() > 0 && guards {
            if let Some(top) = &created {
                let mut p = cfg.dest.as_path();
                while std::fs::remove_dir(p).is_ok() && p != top.as_path() {
                    match p.parent() {
                        Some(up) => p = up,
                        None => break,
                    }
                }
            }
            return Err(Failure::usage(""));
        }
        // Either side unreadable (reported): nothing is known, nothing is changed.
        let (Some(mut src_entries), Some(mut dst_entries)) = (src_entries, dst_entries) else {
            if rel.is_empty() && guards {
                return Err(Failure::fatal("cannot list SOURCE or DEST (see above)"));
            }
            return Ok(());
        };
        if cfg.plan.checksum {
            let _ = crate::snapshot::fill_digests_at(
                &cfg.source,
                &mut src_entries,
                &cfg.dest,
                &mut dst_entries,
                &rel,
                &src_sink,
            );
        }
        forget_rules_below(&mut self.held.rule_files, &rel);
        self.held.rule_files.extend(scanner.into_rule_files());
        let chain = plan::chain_for(&self.held.rule_files, &rel);
        let level = Level { base: &rel, chain: &chain, rule_files: &self.held.rule_files, deep: true };
        let p = plan::plan_level(&src_meta, &src_entries, &dst_meta, &dst_entries, &cfg.plan, &level);
        if guards {
            let src = Snapshot { root: src_meta, entries: src_entries, rule_files: RuleMap::default() };
            let dst = Snapshot { root: dst_meta, entries: dst_entries, rule_files: RuleMap::default() };
            crate::run::check_guards(cfg, &src, &dst, &p)?;
            self.put(&rel, src.root, src.entries);
        } else {
            self.put(&rel, src_meta, src_entries);
        }
        for (path, rule) in &p.protected {
            rep.excluded(Side::Dest, path, rule);
        }
        for (path, why) in &p.conflicts {
            rep.error(Side::Dest, path, why);
        }
        if !p.root.is_empty() {
            rep.progress().start_copy(p.totals.copies, p.totals.copy_bytes);
            let _ = apply::apply_at(&p.root, &rel, &cfg.source, &cfg.dest, rep, apply_opts(cfg));
        }
        Ok(())
    }

    /// Replaces the held directory `rel` (its attributes and entries).
    fn put(&mut self, rel: &[u8], meta: Meta, entries: Vec<Entry>) {
        if rel.is_empty() {
            self.held.root = meta;
            self.held.entries = entries;
            return;
        }
        let name = split_last(rel).1;
        let e = Entry { name: name.into(), meta, kind: Kind::Dir(entries) };
        match siblings_of(&mut self.held, rel) {
            Some((siblings, Ok(i))) => siblings[i] = e,
            Some((siblings, Err(i))) => siblings.insert(i, e),
            None => {}
        }
    }

    /// One watch cycle over `targets`. Returns Ok even when entries failed (they are
    /// reported); the targets returned are what to look at again later.
    pub fn cycle(&mut self, targets: Vec<Target>, rep: &Reporter) -> Result<Vec<Target>, Failure> {
        let cfg = self.cfg;
        let (mut verify, mut deep, mut levels) = (Vec::new(), Vec::new(), Vec::new());
        for t in targets {
            match t {
                Target::Verify(p) => verify.push(p),
                Target::Deep(p) => deep.push(p),
                Target::Level(p) => levels.push(p),
            }
        }
        // Verify targets are two-sided batch syncs of their subtree.
        let verify = minimal(verify);
        for v in &verify {
            self.verify(v, rep, false)?;
        }
        // Deep targets next; Level targets below a deep one are covered by it.
        let deep = minimal(deep);
        let covered = |p: &[u8]| deep.iter().chain(verify.iter()).any(|d| is_within(p, d));
        levels.retain(|p| !covered(p));

        let previous = self.held.rule_files.clone();
        let src_sink = SideSink { reporter: rep, side: Side::Source, count: true };
        let scanner = Scanner::new(run::source_scan(cfg, &src_sink, Some(&previous)));
        let src_root =
            sys::open_root(&cfg.source).map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
        let ctx = Ctx {
            cfg,
            held_opts: held_opts(cfg),
            scanner: &scanner,
            removed: Mutex::new(Vec::new()),
            verify: Mutex::new(Vec::new()),
            refused_empty: std::sync::atomic::AtomicBool::new(false),
        };
        let mut cp = CyclePlan::default();
        let mut retries = Vec::new();
        let mut done: Vec<Vec<u8>> = Vec::new();
        for (rel, is_deep) in deep.iter().map(|d| (d, true)).chain(levels.iter().map(|l| (l, false))) {
            // The nearest directory that both SOURCE and the held snapshot have.
            let mut rel = rel.clone();
            let s_fd = loop {
                let in_held = held_dir_mut(&mut self.held, &rel).is_some();
                match sys::open_path_at(src_root.as_fd(), &rel) {
                    Ok(fd) if in_held => break fd,
                    _ if rel.is_empty() => {
                        return Err(Failure::fatal(format!("cannot read SOURCE {}", cfg.source.display())))
                    }
                    _ => rel = parent(&rel).to_vec(),
                }
            };
            if !is_deep && done.iter().any(|d| d == &rel) {
                continue;
            }
            done.push(rel.clone());
            let chain_above = if rel.is_empty() {
                Vec::new()
            } else {
                plan::chain_for(&self.held.rule_files, parent(&rel))
            };
            self.held.rule_files.remove(&rel);
            if is_deep {
                forget_rules_below(&mut self.held.rule_files, &rel);
            }
            let rule_files = self.held.rule_files.clone();
            let Some((meta, children)) = held_dir_mut(&mut self.held, &rel) else { continue };
            let dp =
                refresh_dir(&ctx, s_fd.as_fd(), &rel, &chain_above, &rule_files, meta, children, is_deep);
            if ctx.refused_empty.load(std::sync::atomic::Ordering::Relaxed) {
                rep.notice(&format!(
                    "SOURCE {} is empty but DEST holds entries (an unmounted share?); not syncing until it has entries again (use --allow-empty-source to allow)",
                    cfg.source.display()
                ));
                return Ok(vec![Target::Deep(Vec::new())]);
            }
            if !dp.is_empty() {
                cp.plans.push((rel.clone(), dp));
            }
        }
        cp.removed = ctx.removed.into_inner().unwrap_or_else(|e| e.into_inner());
        let ctx_verify = ctx.verify.into_inner().unwrap_or_else(|e| e.into_inner());
        self.held.rule_files.extend(scanner.into_rule_files());
        for (path, e) in &cp.removed {
            if e.is_dir() {
                forget_rules_below(&mut self.held.rule_files, path);
            }
        }
        if rep.pattern_errors() > 0 {
            // Bad patterns: keep the last good rules' result; say so and go on.
            rep.notice("ignore patterns could not be parsed; fix the file (see above)");
        }
        self.match_renames(&mut cp);
        let deferred = self.defer_moves_in_progress(&mut cp);

        let changes: Vec<plan::Change> = cp.plans.iter().flat_map(|(base, dp)| dp.changes(base)).collect();
        // Guard: --max-delete per cycle.
        if let Some(max) = cfg.max_delete {
            let deletes = changes.iter().filter(|c| c.kind == ChangeKind::Delete).count() as u64;
            if deletes > max {
                return Err(Failure::refused(format!(
                    "refusing to sync: this change would delete {deletes} entries, more than --max-delete {max}; DEST was left as it was"
                )));
            }
        }
        let (files, bytes) = changes.iter().fold((0, 0), |(f, b), c| match c.kind {
            ChangeKind::Copy { bytes } => (f + 1, b + bytes),
            _ => (f, b),
        });
        rep.progress().start_copy(files, bytes);
        for (from, to) in &cp.renames {
            match apply::rename_in_dest(&cfg.dest, from, to) {
                Ok(()) => rep.change(to, &ChangeKind::Rename { from: from.clone().into_boxed_slice() }),
                Err(e) => {
                    rep.error(
                        Side::Dest,
                        to,
                        &format!("rename from {}: {}", String::from_utf8_lossy(from), sys::describe(&e)),
                    );
                    retries.push(Target::Verify(parent(from).to_vec()));
                }
            }
        }
        for (base, dp) in &cp.plans {
            if let Err(e) = apply::apply_at(dp, base, &cfg.source, &cfg.dest, rep, apply_opts(cfg)) {
                rep.error(Side::Dest, base, &sys::describe(&e));
                retries.push(Target::Verify(base.clone()));
            }
        }
        for p in ctx_verify {
            retries.push(Target::Verify(p));
        }
        retries.extend(self.after_failures(rep));
        retries.extend(deferred);
        Ok(retries)
    }

    /// Turns vanished/appeared pairs with the same identity into renames.
    fn match_renames(&mut self, cp: &mut CyclePlan) {
        if cp.removed.is_empty() {
            return;
        }
        let mut by_ino: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
        for (i, (_, e)) in cp.removed.iter().enumerate() {
            if !matches!(e.kind, Kind::Special(_)) {
                by_ino.entry(e.meta.ino).or_default().push(i);
            }
        }
        let mut used = vec![false; cp.removed.len()];
        let mut renames = Vec::new();
        let cfg = self.cfg;
        for (base, dp) in cp.plans.iter_mut() {
            rewrite_creates(dp, base, &mut |path: &[u8], op: &Op| -> Option<Option<Op>> {
                let (ino, name) = match op {
                    Op::Copy { meta, new: true, name } => (meta.ino, name),
                    Op::Symlink { meta, new: true, name, .. } => (meta.ino, name),
                    Op::Mkdir { name, .. } => {
                        let e = find_entry(&self.held, path)?;
                        (e.meta.ino, name)
                    }
                    _ => return None,
                };
                let new_entry = find_entry(&self.held, path)?;
                let cands = by_ino.get(&ino)?;
                let &i = cands.iter().find(|&&i| !used[i] && same_identity(&cp.removed[i].1, new_entry))?;
                used[i] = true;
                let (from, old) = &cp.removed[i];
                renames.push((from.clone(), path.to_vec()));
                let owner_differs = cfg.plan.owner
                    && (old.meta.uid != new_entry.meta.uid || old.meta.gid != new_entry.meta.gid);
                Some(match (&old.kind, &new_entry.kind) {
                    (Kind::Dir(oc), Kind::Dir(nc)) => {
                        let chain = plan::chain_for(&self.held.rule_files, path);
                        let level = Level {
                            base: path,
                            chain: &chain,
                            rule_files: &self.held.rule_files,
                            deep: true,
                        };
                        let p = plan::plan_level(&new_entry.meta, nc, &old.meta, oc, &held_opts(cfg), &level);
                        Some(Op::Enter { name: name.clone(), sub: p.root })
                    }
                    _ if old.meta.mode != new_entry.meta.mode
                        || old.meta.mtime_ns() != new_entry.meta.mtime_ns()
                        || owner_differs =>
                    {
                        Some(Op::Meta {
                            name: name.clone(),
                            symlink: matches!(new_entry.kind, Kind::Symlink(_)),
                            meta: new_entry.meta,
                        })
                    }
                    _ => None,
                })
            });
        }
        // Drop the deletions of what was renamed.
        for (i, (from, _)) in cp.removed.iter().enumerate() {
            if used[i] {
                for (base, dp) in cp.plans.iter_mut() {
                    if is_within(from, base) && from != base {
                        remove_delete(dp, base, from);
                    }
                }
            }
        }
        cp.renames = renames;
    }
}

impl Mirror<'_> {
    /// A scan is not atomic: a directory (or large file) moved while SOURCE was being
    /// read can be seen at its new path while its old path still looked present. Rather
    /// than copy it, put its creation off once: the next look finds the old path gone
    /// and renames. Returns the directories to look at again.
    fn defer_moves_in_progress(&mut self, cp: &mut CyclePlan) -> Vec<Target> {
        const LARGE: u64 = 1 << 20;
        let mut candidates: Vec<(Vec<u8>, u64)> = Vec::new();
        for (base, dp) in cp.plans.iter_mut() {
            rewrite_creates(dp, base, &mut |path: &[u8], op: &Op| {
                let ino = match op {
                    Op::Copy { meta, new: true, .. } if meta.size >= LARGE => meta.ino,
                    Op::Mkdir { .. } => find_entry(&self.held, path)?.meta.ino,
                    _ => return None,
                };
                // Put off once only: the second time it is created for real (a hard
                // link also shows one inode at two paths).
                if !self.deferred.remove(path) {
                    candidates.push((path.to_vec(), ino));
                }
                None
            });
        }
        if candidates.is_empty() {
            return Vec::new();
        }
        // Where else is each of those inodes held?
        let wanted: FxHashSet<u64> = candidates.iter().map(|(_, ino)| *ino).collect();
        let mut seen: FxHashMap<u64, u32> = FxHashMap::default();
        fn count(entries: &[Entry], wanted: &FxHashSet<u64>, seen: &mut FxHashMap<u64, u32>) {
            for e in entries {
                if wanted.contains(&e.meta.ino) && !matches!(e.kind, Kind::Symlink(_)) {
                    *seen.entry(e.meta.ino).or_default() += 1;
                }
                count(e.children(), wanted, seen);
            }
        }
        count(&self.held.entries, &wanted, &mut seen);
        let put_off: FxHashSet<Vec<u8>> = candidates
            .into_iter()
            .filter(|(_, ino)| seen.get(ino).copied().unwrap_or(0) >= 2)
            .map(|(path, _)| path)
            .collect();
        if put_off.is_empty() {
            return Vec::new();
        }
        for (base, dp) in cp.plans.iter_mut() {
            rewrite_creates(dp, base, &mut |path: &[u8], _op: &Op| put_off.contains(path).then_some(None));
        }
        let mut again = Vec::new();
        for path in put_off {
            // Not in DEST, so not held either: the next look sees it as new.
            if let Some((siblings, Ok(i))) = siblings_of(&mut self.held, &path) {
                siblings.remove(i);
            }
            again.push(Target::Level(parent(&path).to_vec()));
            self.deferred.insert(path);
        }
        again
    }
}

/// Same entry seen twice: same inode and kind, and same size and mtime (files) or
/// target (symlinks).
fn same_identity(old: &Entry, new: &Entry) -> bool {
    if old.meta.ino != new.meta.ino {
        return false;
    }
    match (&old.kind, &new.kind) {
        (Kind::File(_), Kind::File(_)) => {
            old.meta.size == new.meta.size && old.meta.mtime_ns() == new.meta.mtime_ns()
        }
        (Kind::Symlink(a), Kind::Symlink(b)) => a == b,
        (Kind::Dir(_), Kind::Dir(_)) => true,
        _ => false,
    }
}

/// A rewrite of one creation: `None` keeps it, `Some(None)` drops it, `Some(Some(op))`
/// replaces it.
type Rewrite<'a> = dyn FnMut(&[u8], &Op) -> Option<Option<Op>> + 'a;

/// Calls `f(path, op)` for each creation in directories DEST already has (the plan's
/// own level and directories reached through `Enter`); `Some(replacement)` replaces
/// the op (`Some(None)` drops it).
fn rewrite_creates(dp: &mut DirPlan, rel: &[u8], f: &mut Rewrite<'_>) {
    let mut i = 0;
    while i < dp.ops.len() {
        let path = join(rel, dp.ops[i].name());
        if let Op::Enter { sub, .. } = &mut dp.ops[i] {
            rewrite_creates(sub, &path, f);
            i += 1;
            continue;
        }
        // A creation that replaces an entry of another kind (deleted first in this
        // directory) is no rename target: the deletion would run after the rename.
        let name = dp.ops[i].name();
        if dp.ops.iter().any(|o| o.is_delete() && o.name() == name) {
            i += 1;
            continue;
        }
        match f(&path, &dp.ops[i]) {
            Some(Some(op)) => {
                dp.ops[i] = op;
                i += 1;
            }
            Some(None) => {
                dp.ops.remove(i);
            }
            None => i += 1,
        }
    }
}

/// Removes the deletion of `target` from the plan at `rel`.
fn remove_delete(dp: &mut DirPlan, rel: &[u8], target: &[u8]) -> bool {
    for i in 0..dp.ops.len() {
        let path = join(rel, dp.ops[i].name());
        match &mut dp.ops[i] {
            Op::Delete { .. } if path == target => {
                dp.ops.remove(i);
                return true;
            }
            Op::Enter { sub, .. } if is_within(target, &path) => return remove_delete(sub, &path, target),
            _ => {}
        }
    }
    false
}

/// The shortest paths of a set: drops any path below another one.
fn minimal(mut paths: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    paths.sort();
    paths.dedup();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for p in paths {
        if !out.iter().any(|o| is_within(&p, o)) {
            out.push(p);
        }
    }
    out
}

fn forget_rules_below(map: &mut RuleMap, rel: &[u8]) {
    map.retain(|k, _| !is_within(k, rel));
}

/// The held directory `rel`: its attributes and entries.
fn held_dir_mut<'a>(held: &'a mut Snapshot, rel: &[u8]) -> Option<(&'a mut Meta, &'a mut Vec<Entry>)> {
    let mut meta = &mut held.root;
    let mut entries = &mut held.entries;
    for comp in rel.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
        let i = entries.binary_search_by(|e| (*e.name).cmp(comp)).ok()?;
        let e = &mut entries[i];
        meta = &mut e.meta;
        match &mut e.kind {
            Kind::Dir(c) => entries = c,
            _ => return None,
        }
    }
    Some((meta, entries))
}

fn find_entry<'a>(held: &'a Snapshot, rel: &[u8]) -> Option<&'a Entry> {
    let mut entries = &held.entries;
    let mut found = None;
    for comp in rel.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
        let i = entries.binary_search_by(|e| (*e.name).cmp(comp)).ok()?;
        let e = &entries[i];
        found = Some(e);
        entries = match &e.kind {
            Kind::Dir(c) => c,
            _ => &EMPTY,
        };
    }
    found
}

static EMPTY: Vec<Entry> = Vec::new();

fn find_entry_mut<'a>(held: &'a mut Snapshot, rel: &[u8]) -> Option<&'a mut Entry> {
    match siblings_of(held, rel)? {
        (siblings, Ok(i)) => siblings.get_mut(i),
        (_, Err(_)) => None,
    }
}

/// The held listing that holds (or would hold) `rel`, and where `rel` is or would go
/// in it. `None` for the root or when the parent is not a held directory.
fn siblings_of<'a>(held: &'a mut Snapshot, rel: &[u8]) -> Option<(&'a mut Vec<Entry>, Result<usize, usize>)> {
    if rel.is_empty() {
        return None;
    }
    let (dir, name) = split_last(rel);
    let (_, siblings) = held_dir_mut(held, dir)?;
    let at = siblings.binary_search_by(|e| (*e.name).cmp(name));
    Some((siblings, at))
}

/// Re-reads SOURCE directory `rel` (open as `src`), diffs it against the held
/// `meta`/`held` and updates them to what SOURCE has now. With `deep`, subdirectories
/// are refreshed too (in parallel); otherwise only new ones (or ones replaced by
/// another directory) are read whole. Returns the plan for this directory.
#[allow(clippy::too_many_arguments)]
fn refresh_dir(
    ctx: &Ctx<'_>,
    src: BorrowedFd<'_>,
    rel: &[u8],
    chain_above: &Chain,
    rule_files: &RuleMap,
    meta: &mut Meta,
    held: &mut Vec<Entry>,
    deep: bool,
) -> DirPlan {
    let src_meta = match sys::fstat(src) {
        Ok(st) => sys::from_stat(&st).1,
        Err(_) => *meta,
    };
    // Unreadable now (reported): keep what is held, change nothing.
    let Ok((new, chain)) = ctx.scanner.level(src, rel, chain_above) else { return DirPlan::default() };
    if rel.is_empty() && new.is_empty() && !held.is_empty() && !ctx.cfg.allow_empty_source {
        ctx.refused_empty.store(true, std::sync::atomic::Ordering::Relaxed);
        return DirPlan::default();
    }
    // Open the subdirectories to read: when deep all of them, otherwise the ones DEST
    // does not hold as the same directory. One that vanished since the listing (renamed
    // away, removed) is left out of the listing, so it counts as gone.
    let same_dir = |e: &Entry| {
        held.binary_search_by(|h| h.name.cmp(&e.name))
            .is_ok_and(|j| held[j].is_dir() && held[j].meta.ino == e.meta.ino)
    };
    let opened: Vec<Result<Option<OwnedFd>, ()>> = new
        .par_iter()
        .map(|e| {
            if !e.is_dir() || (!deep && same_dir(e)) {
                return Ok(None);
            }
            match sys::open_dir_at(src, &e.name) {
                Ok(fd) => Ok(Some(fd)),
                Err(err)
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
                    ) =>
                {
                    Err(())
                }
                Err(err) => {
                    ctx.scanner.error(&join(rel, &e.name), &err);
                    Ok(None)
                }
            }
        })
        .collect();
    let mut fds: Vec<Option<OwnedFd>> = Vec::with_capacity(new.len());
    let mut kept = Vec::with_capacity(new.len());
    for (e, o) in new.into_iter().zip(opened) {
        if let Ok(fd) = o {
            kept.push(e);
            fds.push(fd);
        }
    }
    let mut new = kept;
    // Pair new entries with held ones by name (both sorted).
    let mut pair: Vec<Option<usize>> = vec![None; new.len()];
    {
        let mut j = 0;
        for (i, e) in new.iter().enumerate() {
            while j < held.len() && held[j].name < e.name {
                j += 1;
            }
            if j < held.len() && held[j].name == e.name {
                pair[i] = Some(j);
            }
        }
    }
    // Directories to read whole: new ones, and ones that are another directory now.
    let whole: Vec<bool> = new
        .iter()
        .zip(&pair)
        .map(|(e, p)| {
            e.is_dir()
                && match p {
                    Some(j) => !matches!(held[*j].kind, Kind::Dir(_)) || held[*j].meta.ino != e.meta.ino,
                    None => true,
                }
        })
        .collect();
    new.par_iter_mut().zip(fds.par_iter_mut()).zip(whole.par_iter()).filter(|(_, w)| **w).for_each(
        |((e, fd), _)| {
            if let Some(fd) = fd.take() {
                let path = join(rel, &e.name);
                e.kind = match ctx.scanner.subtree(fd, &path, &chain) {
                    Some(children) => Kind::Dir(children),
                    None => Kind::Unreadable,
                };
            }
        },
    );
    // Plan this level (directory pairs: their own attributes only).
    let level = Level { base: rel, chain: &chain, rule_files, deep: false };
    let p = plan::plan_level(&src_meta, &new, meta, held, &ctx.held_opts, &level);
    let mut dp = p.root;
    // A directory replaced by another one (new inode): diff the new tree against
    // what DEST holds there.
    for (i, e) in new.iter().enumerate() {
        let Some(j) = pair[i] else { continue };
        if whole[i] && held[j].is_dir() {
            let path = join(rel, &e.name);
            if matches!(e.kind, Kind::Unreadable) {
                // Cannot read it now: leave DEST's copy alone.
                dp.ops.retain(|op| !matches!(op, Op::Enter { name: n, .. } if *n == e.name));
                continue;
            }
            if matches!(held[j].kind, Kind::Unreadable) {
                // Readable again: what DEST holds there is unknown; check it both sides.
                ctx.verify.lock().unwrap_or_else(|e| e.into_inner()).push(path.clone());
            }
            let sub_chain = plan::chain_in(rule_files, &chain, &path);
            let level = Level { base: &path, chain: &sub_chain, rule_files, deep: true };
            let sp = plan::plan_level(
                &e.meta,
                e.children(),
                &held[j].meta,
                held[j].children(),
                &ctx.held_opts,
                &level,
            );
            dp.ops.retain(|op| !matches!(op, Op::Enter { name: n, .. } if *n == e.name));
            if !sp.root.is_empty() {
                dp.ops.push(Op::Enter { name: e.name.clone(), sub: sp.root });
            }
        }
    }
    // Subdirectories present on both sides: refresh them too when deep.
    let held_to_new: FxHashMap<usize, usize> = pair
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|j| (j, i)))
        .filter(|(j, i)| held[*j].is_dir() && new[*i].is_dir() && !whole[*i])
        .collect();
    if deep {
        let mut held_fds: FxHashMap<usize, OwnedFd> = FxHashMap::default();
        for (j, i) in &held_to_new {
            if let Some(fd) = fds[*i].take() {
                held_fds.insert(*j, fd);
            }
        }
        let subplans: Vec<(Box<[u8]>, DirPlan)> = held
            .par_iter_mut()
            .enumerate()
            .filter_map(|(j, h)| {
                let fd = held_fds.get(&j)?;
                let path = join(rel, &h.name);
                let name = h.name.clone();
                let Kind::Dir(children) = &mut h.kind else { return None };
                let mut m = h.meta;
                let sub = refresh_dir(ctx, fd.as_fd(), &path, &chain, rule_files, &mut m, children, true);
                h.meta = m;
                Some((name, sub))
            })
            .collect();
        for (name, sub) in subplans {
            dp.ops.retain(|op| !matches!(op, Op::Enter { name: n, .. } if *n == name));
            if !sub.is_empty() {
                dp.ops.push(Op::Enter { name, sub });
            }
        }
        if !dp.ops.is_empty() && dp.set_meta.is_none() {
            dp.set_meta = Some(src_meta);
        }
    }
    // Update the held listing: SOURCE's entries, keeping the held children of
    // directories that were not read whole.
    let mut removed = Vec::new();
    let mut old: Vec<Option<Entry>> = std::mem::take(held).into_iter().map(Some).collect();
    for (i, e) in new.iter_mut().enumerate() {
        if let Some(j) = pair[i] {
            if let Some(h) = old[j].take() {
                // Same directory on both sides: keep its (refreshed) children. Anything
                // else paired by name (type changes, replaced directories) is no
                // rename source.
                if held_to_new.contains_key(&j) {
                    if let Kind::Dir(c) = h.kind {
                        e.kind = Kind::Dir(c);
                    }
                }
            }
        }
    }
    for h in old.into_iter().flatten() {
        removed.push((join(rel, &h.name), h));
    }
    if !removed.is_empty() {
        ctx.removed.lock().unwrap_or_else(|e| e.into_inner()).extend(removed);
    }
    *held = new;
    *meta = src_meta;
    dp
}
