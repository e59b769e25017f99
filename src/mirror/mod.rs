//! Watch mode's model of DEST, and the incremental syncs that keep it true.
//!
//! A [`Mirror`] holds one snapshot (`held`): what DEST holds as of the last sync,
//! recorded with SOURCE's attributes and inode numbers (after a sync, DEST mirrors
//! them). A watch cycle never scans DEST: it re-reads only the SOURCE directories that
//! may have changed ([`Target`]; `refresh`), diffs each directory level against the
//! held snapshot with the same planner as batch mode, updates the snapshot in place,
//! rewrites the plans for renames (`renames`) and hands them to DEST through the same
//! `dest::Dest` interface as batch mode. Between cycles DEST is trusted; it is scanned
//! at start, and again for any subtree where an operation failed ([`Target::Verify`]):
//! a two-sided sync made of the same pieces as a batch run (`sync`).
//!
//! - `held`: lookups in the held tree;
//! - `refresh`: one-sided re-reads of SOURCE against the held tree;
//! - `renames`: vanished/appeared pairs turned into renames, and moves seen half done
//!   put off once.

mod held;
mod refresh;
mod renames;

use std::sync::Mutex;

use rustc_hash::FxHashSet;

use crate::apply::ApplyOptions;
use crate::config::Config;
use crate::dest::Dest;
use crate::exit::{Exit, Failure};
use crate::lock::{into_inner, lock};
use crate::outcome::{Failures, Outcome};
use crate::plan::{self, ChangeKind, DirPlan, Level, PlanOptions};
use crate::relpath::{is_within, minimal, parent, rel_path, shown};
use crate::report::{Reporter, Side, SideSink};
use crate::snapshot::{Entry, Scanner, Snapshot};
use crate::sync;
use crate::sys;
use crate::tree::LocalTree;

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

/// Whether a two-sided sync is the session's first (guards apply, a DEST made for it
/// is removed again if the run stops before changing anything).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    First,
    Later,
}

pub struct Mirror<'c> {
    cfg: &'c Config,
    source: &'c LocalTree,
    dest: &'c dyn Dest,
    held: Snapshot,
    /// Creations put off once (a move seen half done); the next time they go ahead.
    deferred: FxHashSet<Vec<u8>>,
    /// What failed (or was not done) since the held snapshot was last corrected.
    failures: Outcome,
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

/// Plan options against the held snapshot: SOURCE's own attributes, compared exactly;
/// contents were compared (with --checksum) when DEST was last verified.
fn held_opts(cfg: &Config) -> PlanOptions {
    PlanOptions { dest_grain_ns: None, checksum: false, ..cfg.plan.clone() }
}

fn apply_opts(cfg: &Config) -> ApplyOptions {
    ApplyOptions { owner: cfg.plan.owner, vanished_ok: true }
}

impl<'c> Mirror<'c> {
    /// The first sync of a watch session: a full two-sided sync, guarded as a batch
    /// run is. The held snapshot then is SOURCE's. Also returns what to retry (where
    /// operations failed).
    pub fn start(
        cfg: &'c Config,
        source: &'c LocalTree,
        dest: &'c dyn Dest,
        rep: &Reporter,
    ) -> Result<(Mirror<'c>, Vec<Target>), Failure> {
        let mut m = Mirror {
            cfg,
            source,
            dest,
            held: Snapshot::default(),
            deferred: FxHashSet::default(),
            failures: Outcome::default(),
        };
        m.verify(b"", rep, Pass::First)?;
        let retries = m.after_failures();
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
            if rules.excluded(&chain, rel_path(dir), true) {
                return true;
            }
            chain = plan::chain_in(&self.held.rule_files, &chain, dir);
        }
        false
    }

    /// Entries whose operation failed (or whose SOURCE vanished mid-copy) are not what
    /// the held snapshot says: distrust them (no false "unchanged", no rename from
    /// them), and verify their directories later.
    fn after_failures(&mut self) -> Vec<Target> {
        let Outcome { failed, not_done } = std::mem::take(&mut self.failures);
        for p in failed.iter().chain(&not_done) {
            if let Some(e) = held::find_mut(&mut self.held, p) {
                held::distrust(e);
            }
        }
        failed.into_iter().map(|p| Target::Verify(parent(&p).to_vec())).collect()
    }

    /// Two-sided sync of subtree `rel` (as batch mode does), then the held snapshot of
    /// that subtree is SOURCE's.
    fn verify(&mut self, rel: &[u8], rep: &Reporter, pass: Pass) -> Result<(), Failure> {
        let failures = Failures::default();
        let result = self.verify_with(rel, rep, pass, &failures);
        self.failures.extend(failures.into_outcome());
        result
    }

    fn verify_with(
        &mut self,
        rel: &[u8],
        rep: &Reporter,
        pass: Pass,
        failures: &Failures,
    ) -> Result<(), Failure> {
        let (cfg, source, dest) = (self.cfg, self.source, self.dest);
        let src_sink = SideSink { reporter: rep, side: Side::Source, count: true, failures: Some(failures) };
        let dst_sink = SideSink { reporter: rep, side: Side::Dest, count: false, failures: Some(failures) };
        source.open().map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
        // DEST (and missing parents) made here are removed again if the run stops
        // before changing anything (bad ignore patterns).
        let created = dest.create().map_err(|e| Failure::io("cannot create DEST", &cfg.dest, &e))?;
        // Go up until both sides have the directory.
        let mut rel = rel.to_vec();
        loop {
            match source.open_dir(&rel) {
                Ok(_) if dest.has_dir(&rel) => break,
                _ if !rel.is_empty() => rel = parent(&rel).to_vec(),
                Err(e) => return Err(Failure::io("cannot read SOURCE", &cfg.source, &e)),
                Ok(_) => return Err(Failure::Unreachable(format!("cannot read DEST {}", dest.shown()))),
            }
        }
        let previous = self.held.rule_files.clone();
        let scanner = Scanner::new(sync::source_scan(cfg, &src_sink, Some(&previous)));
        let chain_above =
            if rel.is_empty() { Vec::new() } else { plan::chain_for(&self.held.rule_files, parent(&rel)) };
        let (src, dst) = rayon::join(
            || source.scan_subtree(&rel, &scanner, &chain_above),
            || dest.scan_subtree(&rel, sync::dest_scan(cfg, &dst_sink, None)),
        );
        let (src_meta, src_entries) = src.map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
        let (dst_meta, dst_entries) = dst.map_err(|e| Failure::io("cannot read DEST", &cfg.dest, &e))?;
        if rep.pattern_errors() > 0 && pass == Pass::First {
            if let Some(top) = &created {
                dest.remove_created(top);
            }
            return Err(Failure::Reported(Exit::Usage));
        }
        // Either side unreadable (reported): nothing is known, nothing is changed.
        let (Some(mut src_entries), Some(mut dst_entries)) = (src_entries, dst_entries) else {
            if rel.is_empty() && pass == Pass::First {
                return Err(Failure::fatal("cannot list SOURCE or DEST (see above)"));
            }
            return Ok(());
        };
        if cfg.plan.checksum {
            // (Pairs that cannot be read were reported; they are compared by size and
            // mtime.)
            let _ = dest.fill_digests(source, &mut src_entries, &mut dst_entries, &rel, &src_sink);
        }
        held::forget_rules_below(&mut self.held.rule_files, &rel);
        self.held.rule_files.extend(scanner.into_rule_files());
        let chain = plan::chain_for(&self.held.rule_files, &rel);
        let level = Level { base: &rel, chain: &chain, rule_files: &self.held.rule_files, deep: true };
        let p = plan::plan_level(&src_meta, &src_entries, Some(&dst_meta), &dst_entries, &cfg.plan, &level);
        if pass == Pass::First {
            let rule_files = &self.held.rule_files;
            cfg.guards
                .check_plan(
                    &cfg.rules,
                    &cfg.source,
                    &dest.shown(),
                    &src_entries,
                    rule_files,
                    &dst_entries,
                    p.totals.deletes,
                )
                .map_err(sync::refuse)?;
        }
        drop(dst_entries);
        held::put(&mut self.held, &rel, src_meta, src_entries);
        sync::report_plan_notes(rep, &p);
        for (path, _) in &p.conflicts {
            failures.failed(path);
        }
        if !p.root.is_empty() {
            rep.progress().start_copy(p.totals.copies, p.totals.copy_bytes);
            self.apply(&p.root, &rel, rep, failures);
        }
        Ok(())
    }

    /// Applies one directory plan to DEST; what failed is recorded in `failures`.
    /// Returns false when `base` itself could not be reached.
    fn apply(&mut self, dp: &DirPlan, base: &[u8], rep: &Reporter, failures: &Failures) -> bool {
        match self.dest.apply(dp, base, self.source, rep, apply_opts(self.cfg)) {
            Ok(outcome) => {
                self.failures.extend(outcome);
                true
            }
            Err(e) => {
                rep.error(Side::Dest, base, &sys::describe(&e));
                failures.failed(base);
                false
            }
        }
    }

    /// One watch cycle over `targets`. Returns Ok even when entries failed (they are
    /// reported); the targets returned are what to look at again later.
    pub fn cycle(&mut self, targets: Vec<Target>, rep: &Reporter) -> Result<Vec<Target>, Failure> {
        let failures = Failures::default();
        let result = self.cycle_with(targets, rep, &failures);
        self.failures.extend(failures.into_outcome());
        match result? {
            Cycle::Done(mut again) => {
                again.extend(self.after_failures());
                Ok(again)
            }
            // Nothing was changed: what failed before is dealt with after a cycle that
            // ran.
            Cycle::Refused(again) => Ok(again),
        }
    }

    fn cycle_with(
        &mut self,
        targets: Vec<Target>,
        rep: &Reporter,
        failures: &Failures,
    ) -> Result<Cycle, Failure> {
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
            self.verify(v, rep, Pass::Later)?;
        }
        // Deep targets next; Level targets below a deep one are covered by it.
        let deep = minimal(deep);
        let covered = |p: &[u8]| deep.iter().chain(verify.iter()).any(|d| is_within(p, d));
        levels.retain(|p| !covered(p));

        let previous = self.held.rule_files.clone();
        let src_sink = SideSink { reporter: rep, side: Side::Source, count: true, failures: Some(failures) };
        let scanner = Scanner::new(sync::source_scan(cfg, &src_sink, Some(&previous)));
        let src_root = self.source.open().map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
        let held_opts = held_opts(cfg);
        let ctx = refresh::Ctx {
            cfg,
            dest_shown: self.dest.shown(),
            held_opts: held_opts.clone(),
            scanner: &scanner,
            removed: Mutex::new(Vec::new()),
            verify: Mutex::new(Vec::new()),
            refused: Mutex::new(None),
        };
        let mut cp = CyclePlan::default();
        let mut done: Vec<Vec<u8>> = Vec::new();
        for (rel, is_deep) in deep.iter().map(|d| (d, true)).chain(levels.iter().map(|l| (l, false))) {
            // The nearest directory that both SOURCE and the held snapshot have.
            let mut rel = rel.clone();
            let s_fd = loop {
                let in_held = held::dir_mut(&mut self.held, &rel).is_some();
                match sys::open_path_at(std::os::fd::AsFd::as_fd(&src_root), &rel) {
                    Ok(fd) if in_held => break fd,
                    Err(e) if rel.is_empty() => {
                        return Err(Failure::io("cannot read SOURCE", &cfg.source, &e))
                    }
                    _ if rel.is_empty() => {
                        return Err(Failure::Unreachable(format!(
                            "cannot read SOURCE {}",
                            cfg.source.display()
                        )))
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
                held::forget_rules_below(&mut self.held.rule_files, &rel);
            }
            let rule_files = self.held.rule_files.clone();
            let Some((meta, children)) = held::dir_mut(&mut self.held, &rel) else { continue };
            let look = refresh::Look { ctx: &ctx, rule_files: &rule_files, deep: is_deep };
            let dp = look.dir(std::os::fd::AsFd::as_fd(&s_fd), &rel, &chain_above, meta, children);
            if let Some(r) = lock(&ctx.refused).take() {
                rep.notice(&format!("{r}; DEST is left as it is until SOURCE has entries again"));
                return Ok(Cycle::Refused(vec![Target::Deep(Vec::new())]));
            }
            if !dp.is_empty() {
                cp.plans.push((rel.clone(), dp));
            }
        }
        cp.removed = into_inner(ctx.removed);
        let readable_again = into_inner(ctx.verify);
        self.held.rule_files.extend(scanner.into_rule_files());
        for (path, e) in &cp.removed {
            if e.is_dir() {
                held::forget_rules_below(&mut self.held.rule_files, path);
            }
        }
        if rep.pattern_errors() > 0 {
            // Bad patterns: keep the last good rules' result; say so and go on.
            rep.notice("ignore patterns could not be parsed; fix the file (see above)");
        }
        renames::match_renames(&self.held, &mut cp, &held_opts);
        let deferred = renames::defer_moves_in_progress(&mut self.held, &mut self.deferred, &mut cp);

        let changes: Vec<plan::Change> = cp.plans.iter().flat_map(|(base, dp)| dp.changes(base)).collect();
        let deletes = changes.iter().filter(|c| c.kind == ChangeKind::Delete).count() as u64;
        cfg.guards
            .deletions(deletes)
            .map_err(|r| Failure::refused(format!("{r}; DEST was left as it was")))?;
        let (files, bytes) = changes.iter().fold((0, 0), |(f, b), c| match c.kind {
            ChangeKind::Copy { bytes } => (f + 1, b + bytes),
            _ => (f, b),
        });
        rep.progress().start_copy(files, bytes);
        let mut retries = Vec::new();
        for (from, to) in &cp.renames {
            match self.dest.rename(from, to) {
                Ok(()) => rep.change(to, &ChangeKind::Rename { from: from.clone().into_boxed_slice() }),
                Err(e) => {
                    rep.error(Side::Dest, to, &format!("rename from {}: {}", shown(from), sys::describe(&e)));
                    failures.failed(to);
                    retries.push(Target::Verify(parent(from).to_vec()));
                }
            }
        }
        for (base, dp) in &cp.plans {
            if !self.apply(dp, base, rep, failures) {
                retries.push(Target::Verify(base.clone()));
            }
        }
        retries.extend(readable_again.into_iter().map(Target::Verify));
        retries.extend(deferred);
        Ok(Cycle::Done(retries))
    }
}

/// How a cycle ended.
enum Cycle {
    /// Changes applied (or none needed); look at these again later.
    Done(Vec<Target>),
    /// A guard held: nothing was changed; look at these again later.
    Refused(Vec<Target>),
}
