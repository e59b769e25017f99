//! Watch mode's model of DEST, and the incremental syncs that keep it true.
//!
//! A [`Mirror`] holds one snapshot (`held`): what DEST holds as of the last sync,
//! recorded with SOURCE's attributes and inode numbers (after a sync, DEST mirrors
//! them), in a compact form (`held::Held`: packed attributes, names in one arena per
//! directory) that is unpacked one directory level at a time where the planner needs
//! [`Entry`] listings. A watch cycle never scans DEST: it re-reads only the SOURCE directories that
//! may have changed ([`Target`]; `refresh`), diffs each directory level against the
//! held snapshot with the same planner as batch mode, updates the snapshot in place,
//! rewrites the plans for renames (`renames`) and hands them to DEST through the same
//! `dest::Dest` interface as batch mode. Between cycles DEST is trusted; it is scanned
//! at start, and again for any subtree where an operation failed ([`Target::Verify`]):
//! a two-sided sync made of the same pieces as a batch run (`sync`).
//!
//! - `held`: the compact held tree and its lookups;
//! - `refresh`: one-sided re-reads of SOURCE against the held tree;
//! - `renames`: vanished/appeared pairs turned into renames, and moves seen half done
//!   put off once;
//! - `hold`: deletions held back by `--max-delete`.
//!
//! DEST is not trusted blindly: what others change in DEST is found by watching it
//! ([`Mirror::dest_drift`]: a [`Target::Repair`] of one directory level against the
//! held snapshot), and by periodic full verifications (`--verify-every`). After the
//! first sync DEST is never created again: when SOURCE's or DEST's root is gone or on
//! another file system ([`Mirror::roots_missing`]), the loop pauses.

mod held;
mod hold;
mod refresh;
mod renames;

use std::sync::Mutex;

use std::collections::BTreeSet;

use rustc_hash::FxHashSet;

use crate::apply::ApplyOptions;
use crate::config::Config;
use crate::dest::Dest;
use crate::exit::{Exit, Failure};
use crate::hardlink;
use crate::lock::{into_inner, lock};
use crate::outcome::{Failures, Outcome};
use crate::plan::{self, ChangeKind, DirPlan, Level, Plan, PlanOptions};
use crate::relpath::{is_within, join, minimal, parent, rel_path, shown, split_last};
use crate::report::{Reporter, Side, SideSink};
use crate::snapshot::{Entry, Kind, Scanner};
use crate::source::Source;
use crate::sync;
use crate::sys::{self, Meta};

/// What a cycle must look at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Re-read one SOURCE directory's entries (new subdirectories whole).
    Level(Vec<u8>),
    /// Re-read a whole SOURCE subtree.
    Deep(Vec<u8>),
    /// Scan the subtree on both sides and sync it as batch mode does (after failures,
    /// and for full verifications).
    Verify(Vec<u8>),
    /// DEST was changed by someone else in this directory: compare its entries (one
    /// level) with the held snapshot and repair them.
    Repair(Vec<u8>),
    /// A directory that appeared in SOURCE and is watched now: once the cycle's other
    /// looks are done, its subtree is read again (what was made inside it before its
    /// watch was in place raised no event), if the held snapshot has it by then.
    Recheck(Vec<u8>),
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
    source: &'c dyn Source,
    dest: &'c dyn Dest,
    held: held::Held,
    /// Creations put off once (a move seen half done); the next time they go ahead.
    deferred: FxHashSet<Vec<u8>>,
    /// What failed (or was not done) since the held snapshot was last corrected.
    failures: Outcome,
    /// DEST paths whose deletion `--max-delete` holds back.
    held_back: BTreeSet<Vec<u8>>,
    /// The file systems SOURCE's and DEST's roots were on after the first sync.
    roots: (u64, u64),
    /// `-H`: SOURCE's link groups as of the last link pass.
    links: Vec<hardlink::Group>,
    /// `-H`: names sharing an inode in DEST, found by the last verification.
    dest_links: Vec<hardlink::Group>,
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

/// Plan options against DEST as it is now, compared with the held snapshot (no
/// digests are held: contents are compared by size and mtime).
fn repair_opts(cfg: &Config) -> PlanOptions {
    PlanOptions { checksum: false, ..cfg.plan.clone() }
}

/// `8:1` for a device id.
fn device_text(dev: u64) -> String {
    format!("{}:{}", libc::major(dev as libc::dev_t), libc::minor(dev as libc::dev_t))
}

fn apply_opts(cfg: &Config) -> ApplyOptions {
    ApplyOptions { vanished_ok: true, ..crate::sync::apply_options(cfg) }
}

impl<'c> Mirror<'c> {
    /// The first sync of a watch session: a full two-sided sync, guarded as a batch
    /// run is. The held snapshot then is SOURCE's. Also returns what to retry (where
    /// operations failed).
    pub fn start(
        cfg: &'c Config,
        source: &'c dyn Source,
        dest: &'c dyn Dest,
        rep: &Reporter,
    ) -> Result<(Mirror<'c>, Vec<Target>), Failure> {
        let mut m = Mirror {
            cfg,
            source,
            dest,
            held: held::Held::default(),
            deferred: FxHashSet::default(),
            failures: Outcome::default(),
            held_back: BTreeSet::new(),
            roots: (0, 0),
            links: Vec::new(),
            dest_links: Vec::new(),
        };
        m.verify(b"", rep, Pass::First)?;
        m.relink(rep);
        let src_id = source.fs_identity().map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
        let dst_id = dest.root_identity().map_err(|e| Failure::io("cannot read DEST", &cfg.dest, &e))?;
        m.roots = (src_id, dst_id);
        let retries = m.after_failures();
        Ok((m, retries))
    }

    /// How many deletions `--max-delete` holds back now.
    pub fn held_back(&self) -> u64 {
        self.held_back.len() as u64
    }

    /// SOURCE's entries as of the last look.
    pub fn entries(&self) -> u64 {
        self.held.count()
    }

    /// Why syncing must pause, if it must: SOURCE's or DEST's root is gone, or is no
    /// longer on the file system it was on after the first sync (an unmounted share or
    /// disk leaves the bare mount point, which must never be written to).
    pub fn roots_missing(&self) -> Option<String> {
        let check = |what: &str, shown: String, now: std::io::Result<u64>, then: u64| {
            match now {
            Err(e) => Some(format!("{what} {shown} is gone ({})", sys::describe(&e))),
            Ok(id) if id != then => Some(format!(
                "{what} {shown} is no longer on the file system it was on (device {} then, {} now: unmounted?)",
                device_text(then),
                device_text(id)
            )),
            Ok(_) => None,
        }
        };
        check("SOURCE", self.cfg.source.display().to_string(), self.source.fs_identity(), self.roots.0)
            .or_else(|| check("DEST", self.dest.shown(), self.dest.root_identity(), self.roots.1))
    }

    /// The DEST directories to repair, given the DEST paths that events named: each
    /// path's entry as it is now is compared with what the held snapshot says DEST
    /// holds, and a directory with any difference needs a [`Target::Repair`].
    /// tandem's own writes leave DEST as held, so they start nothing. The paths are
    /// taken directory by directory: each directory is opened once, its rules judged
    /// once, and its named entries compared in one plan.
    pub fn dest_drift(&self, mut paths: Vec<Vec<u8>>) -> Vec<Target> {
        // (tandem's own temporaries never get here: DEST's watcher drops them.)
        paths.retain(|rel| !rel.is_empty());
        paths.sort_unstable_by(|a, b| split_last(a).cmp(&split_last(b)));
        paths.dedup();
        let mut out = Vec::new();
        let mut rest = &paths[..];
        while let Some(first) = rest.first() {
            let dir = parent(first);
            let n = rest.iter().take_while(|p| parent(p) == dir).count();
            let (group, tail) = rest.split_at(n);
            rest = tail;
            if self.dir_drifted(dir, group) {
                out.push(Target::Repair(dir.to_vec()));
            }
        }
        out
    }

    /// Whether any of `paths` (all in directory `dir`, sorted by name) is not what
    /// the held snapshot says.
    fn dir_drifted(&self, dir: &[u8], paths: &[Vec<u8>]) -> bool {
        if self.excluded_dir(dir) {
            return false;
        }
        let names: Vec<&[u8]> = paths.iter().map(|p| split_last(p).1).collect();
        // (An entry that cannot be read now is left for the next verification.)
        let now: Vec<Entry> = match self.dest.entries_in(dir, &names) {
            Ok(v) => v.into_iter().flatten().collect(),
            Err(_) => return false,
        };
        let held: Vec<Entry> = match self.held.dir(dir) {
            Some((_, d)) => names.iter().filter_map(|n| d.find(n)).map(|j| d.entry(j)).collect(),
            None => Vec::new(),
        };
        if now.is_empty() && held.is_empty() {
            return false;
        }
        // The planner says whether they differ, with every rule of a two-sided sync
        // (DEST's timestamp precision, --no-delete, excluded entries, owners).
        let chain = plan::chain_for(&self.held.rule_files, dir);
        let level = Level { base: dir, chain: &chain, rule_files: &self.held.rule_files, deep: false };
        let m = Meta::default();
        let p = plan::plan_level(&m, &held, Some(&m), &now, &repair_opts(self.cfg), &level);
        !p.root.ops.is_empty()
    }

    /// True when a directory above `rel` is excluded by the ignore rules in force (an
    /// event there concerns nothing that is mirrored).
    pub fn inside_excluded_dir(&self, rel: &[u8]) -> bool {
        self.excluded_dir(parent(rel))
    }

    /// True when directory `dir`, or one above it, is excluded by the ignore rules in
    /// force (the root never is).
    fn excluded_dir(&self, dir: &[u8]) -> bool {
        let rules = &self.cfg.rules;
        let mut chain = plan::chain_for(&self.held.rule_files, b"");
        let ends = dir.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(i, _)| i);
        for end in ends.chain((!dir.is_empty()).then_some(dir.len())) {
            let d = &dir[..end];
            if rules.excluded(&chain, rel_path(d), true) {
                return true;
            }
            chain = plan::chain_in(&self.held.rule_files, &chain, d);
        }
        false
    }

    /// Entries whose operation failed (or whose SOURCE vanished mid-copy) are not what
    /// the held snapshot says: distrust them (no false "unchanged", no rename from
    /// them), and verify their directories later.
    fn after_failures(&mut self) -> Vec<Target> {
        let Outcome { failed, not_done } = std::mem::take(&mut self.failures);
        for p in failed.iter().chain(&not_done) {
            self.held.distrust(p);
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
        // DEST (and missing parents) is made for the first sync only, and removed again
        // if the run stops before changing anything (bad ignore patterns). Later, a
        // DEST that is gone stays gone: the loop pauses.
        let created = match pass {
            Pass::First => dest.create().map_err(|e| Failure::io("cannot create DEST", &cfg.dest, &e))?,
            Pass::Later => None,
        };
        // Go up until both sides have the directory.
        let mut rel = rel.to_vec();
        loop {
            match source.is_dir(&rel) {
                Ok(true) if dest.has_dir(&rel) => break,
                _ if !rel.is_empty() => rel = parent(&rel).to_vec(),
                Err(e) => return Err(Failure::io("cannot read SOURCE", &cfg.source, &e)),
                Ok(false) => {
                    let e = std::io::Error::from_raw_os_error(libc::ENOTDIR);
                    return Err(Failure::io("cannot read SOURCE", &cfg.source, &e));
                }
                Ok(true) => return Err(Failure::Unreachable(format!("cannot read DEST {}", dest.shown()))),
            }
        }
        let previous = self.held.rule_files.clone();
        let scanner = Scanner::new(sync::source_scan(cfg, &src_sink, Some(&previous)));
        let chain_above =
            if rel.is_empty() { Vec::new() } else { plan::chain_for(&self.held.rule_files, parent(&rel)) };
        let (src, dst) = rayon::join(
            || source.subtree(&rel, &scanner, &chain_above),
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
        self.held.forget_rules_below(&rel);
        self.held.rule_files.extend(scanner.into_rule_files());
        let chain = plan::chain_for(&self.held.rule_files, &rel);
        let level = Level { base: &rel, chain: &chain, rule_files: &self.held.rule_files, deep: true };
        let mut opts = cfg.plan.clone();
        if cfg.hard_links {
            // Groups within this subtree: their followers are linked, not copied.
            let groups = hardlink::groups(&src_entries, &rel, &hardlink::source_stat(source));
            opts.followers = Some(std::sync::Arc::new(hardlink::followers(&groups)));
            let in_dest = hardlink::groups(&dst_entries, &rel, &hardlink::dest_stat(dest));
            self.dest_links.extend(in_dest);
        }
        let mut p = plan::plan_level(&src_meta, &src_entries, Some(&dst_meta), &dst_entries, &opts, &level);
        if rel.is_empty() {
            let guard = cfg.guards.empty_source_plan(
                &cfg.rules,
                &cfg.source,
                &dest.shown(),
                &src_entries,
                &self.held.rule_files,
                &dst_entries,
            );
            match (guard, pass) {
                (Ok(()), _) => {}
                (Err(r), Pass::First) => return Err(sync::refuse(r)),
                (Err(r), Pass::Later) => {
                    rep.notice(&format!("{r}; DEST is left as it is until SOURCE has entries again"));
                    return Ok(());
                }
            }
        }
        let scope = rel.clone();
        self.hold_deletions(
            rep,
            &|p| is_within(p, &scope),
            std::slice::from_mut(&mut p.root),
            &[rel.clone()],
        );
        // The held form is built (SOURCE's entries freed as they are converted), DEST's
        // entries are freed by an idle worker, off the cycle's path.
        rayon::spawn(move || drop(dst_entries));
        let replaced = self.held.put(&rel, src_meta, src_entries);
        rayon::spawn(move || drop(replaced));
        self.apply_plan(&p, &rel, rep, failures);
        Ok(())
    }

    /// `-H`: finds SOURCE's link groups in the held snapshot and runs the link pass:
    /// DEST names that share an inode where SOURCE's no longer do are copied apart,
    /// then every group's members are linked to its leader.
    fn relink(&mut self, rep: &Reporter) {
        if !self.cfg.hard_links {
            return;
        }
        let groups = hardlink::confirm(self.held.link_candidates(), &hardlink::source_stat(self.source));
        let mut candidates = std::mem::take(&mut self.dest_links);
        candidates.append(&mut self.links);
        let failures = Failures::default();
        let pass = hardlink::LinkPass {
            source: self.source,
            dest: self.dest,
            rep,
            dry_run: false,
            failures: &failures,
            opts: apply_opts(self.cfg),
        };
        pass.run(&candidates, &groups);
        // The members share SOURCE's inode: a change seen through one name (its
        // directory refreshed) is every name's; the held snapshot says so, as DEST now
        // does, so that DEST's other names do not look changed by someone else.
        for g in &groups {
            let Some(meta) = pass.source_meta(g.leader()) else { continue };
            for p in &g.paths {
                self.held.set_file_meta(p, &meta);
            }
        }
        self.failures.extend(failures.into_outcome());
        self.links = groups;
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
        let before = rep.summary_counts();
        // A verification compares DEST's links with SOURCE's even when it changed nothing.
        let verifies = targets.iter().any(|t| matches!(t, Target::Verify(_)));
        let result = self.cycle_with(targets, rep, &failures);
        self.failures.extend(failures.into_outcome());
        match result? {
            Cycle::Done(mut again) => {
                if verifies || rep.summary_counts().since(&before).changed_anything() {
                    self.relink(rep);
                }
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
        let (mut verify, mut deep, mut levels, mut repairs, mut rechecks) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for t in targets {
            match t {
                Target::Verify(p) => verify.push(p),
                Target::Deep(p) => deep.push(p),
                Target::Level(p) => levels.push(p),
                Target::Repair(p) => repairs.push(p),
                Target::Recheck(p) => rechecks.push(p),
            }
        }
        // Held-back deletions are judged again by a look that touches them: their
        // directory is synced two-sided, which counts them afresh.
        for p in &self.held_back {
            let dir = parent(p);
            let touched = deep.iter().any(|d| is_within(dir, d))
                || levels.iter().chain(&repairs).any(|l| l.as_slice() == dir);
            if touched {
                verify.push(dir.to_vec());
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
        // (A deep look or a verification reads its subtree after the watches were
        // added: a second look there finds nothing more.)
        let mut rechecks = minimal(rechecks);
        rechecks.retain(|p| !covered(p));

        let previous = self.held.rule_files.clone();
        let src_sink = SideSink { reporter: rep, side: Side::Source, count: true, failures: Some(failures) };
        let scanner = Scanner::new(sync::source_scan(cfg, &src_sink, Some(&previous)));
        // A SOURCE on another host is read through the SOURCE seam, a subtree at a time
        // (it raises no events: every look is a rescan); a local one directory by
        // directory, descriptor-relative.
        let src_root = match self.source.local() {
            Some(local) => {
                Some(local.open().map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?)
            }
            None => None,
        };
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
        let looks = deep
            .iter()
            .map(|d| (d, true, false))
            .chain(levels.iter().map(|l| (l, false, false)))
            .chain(rechecks.iter().map(|r| (r, true, true)));
        for (rel, is_deep, recheck) in looks {
            if recheck && self.held.dir(rel).is_none() {
                // Gone again, or never read (its parent's look deals with it).
                continue;
            }
            let Some(src_root) = &src_root else {
                match self.rescan(rel, &scanner)? {
                    Rescan::Plan(base, dp) => cp.plans.push((base, dp)),
                    Rescan::Nothing => {}
                    Rescan::Refused(r) => {
                        rep.notice(&format!("{r}; DEST is left as it is until SOURCE has entries again"));
                        return Ok(Cycle::Refused(vec![Target::Deep(Vec::new())]));
                    }
                }
                continue;
            };
            // The nearest directory that both SOURCE and the held snapshot have.
            let mut rel = rel.clone();
            let s_fd = loop {
                let in_held = self.held.dir(&rel).is_some();
                match sys::open_path_at(std::os::fd::AsFd::as_fd(src_root), &rel) {
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
                self.held.forget_rules_below(&rel);
            }
            let rule_files = self.held.rule_files.clone();
            let Some((mut meta, children)) = self.held.dir_mut(&rel) else { continue };
            let look = refresh::Look { ctx: &ctx, rule_files: &rule_files, deep: is_deep };
            let dp =
                look.dir(std::os::fd::AsFd::as_fd(&s_fd), &rel, &chain_above, &mut meta, children, false);
            self.held.set_meta(&rel, &meta);
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
                self.held.forget_rules_below(path);
            }
        }
        if rep.pattern_errors() > 0 {
            // Bad patterns: keep the last good rules' result; say so and go on.
            rep.notice("ignore patterns could not be parsed; fix the file (see above)");
        }
        renames::match_renames(&self.held, &mut cp, &held_opts);
        let deferred = renames::defer_moves_in_progress(&mut self.held, &mut self.deferred, &mut cp);

        let bases: Vec<Vec<u8>> = cp.plans.iter().map(|(b, _)| b.clone()).collect();
        let mut dps: Vec<DirPlan> = cp.plans.iter_mut().map(|(_, dp)| std::mem::take(dp)).collect();
        self.hold_deletions(rep, &|_| false, &mut dps, &bases);
        for ((_, dp), held) in cp.plans.iter_mut().zip(dps) {
            *dp = held;
        }
        let changes: Vec<plan::Change> = cp.plans.iter().flat_map(|(base, dp)| dp.changes(base)).collect();
        let (files, bytes) = changes.iter().fold((0u64, 0u64), |(f, b), c| match c.kind {
            ChangeKind::Copy { bytes } => (f + 1, b.saturating_add(bytes)),
            _ => (f, b),
        });
        rep.progress().start_copy(files, bytes);
        let mut retries = Vec::new();
        let mut moved: Vec<(&[u8], &[u8])> = Vec::new();
        for (from, to) in &cp.renames {
            match self.dest.rename(from, to) {
                Ok(()) => {
                    rep.change(to, &ChangeKind::Rename { from: from.clone().into_boxed_slice() });
                    moved.push((from, to));
                }
                Err(e) => {
                    rep.error(Side::Dest, to, &format!("rename from {}: {}", shown(from), sys::describe(&e)));
                    failures.failed(to);
                    retries.push(Target::Verify(parent(from).to_vec()));
                }
            }
        }
        // A directory read again in this cycle just before it was renamed has a plan
        // for what DEST held at its old name, which is at its new name now: those
        // plans go there, first (the rename's own plan, against what was held, comes
        // after them).
        let mut plans: Vec<(Vec<u8>, &DirPlan)> = Vec::with_capacity(cp.plans.len());
        let mut rest = Vec::new();
        for (base, dp) in &cp.plans {
            match rebased(base, &moved) {
                Some(at) => plans.push((at, dp)),
                None => rest.push((base.clone(), dp)),
            }
        }
        plans.extend(rest);
        for (base, dp) in &plans {
            if !self.apply(dp, base, rep, failures) {
                retries.push(Target::Verify(base.clone()));
            }
        }
        retries.extend(readable_again.into_iter().map(Target::Verify));
        retries.extend(deferred);
        // Repairs last: the held snapshot is SOURCE as of this cycle now, so a change
        // in SOURCE that is also a difference in DEST is not copied twice.
        repairs.sort_by_key(|r| r.len());
        repairs.dedup();
        for r in repairs {
            self.repair(&r, rep, failures);
        }
        Ok(Cycle::Done(retries))
    }

    /// A look at SOURCE's subtree `rel` through the SOURCE seam (a SOURCE on another
    /// host): the nearest directory that SOURCE and the held snapshot both have is
    /// scanned whole, diffed against the held snapshot and held from then on.
    fn rescan(&mut self, rel: &[u8], scanner: &Scanner<'_>) -> Result<Rescan, Failure> {
        let cfg = self.cfg;
        let mut rel = rel.to_vec();
        loop {
            let in_held = self.held.dir(&rel).is_some();
            match self.source.is_dir(&rel) {
                Ok(true) if in_held => break,
                Err(e) if rel.is_empty() => return Err(Failure::io("cannot read SOURCE", &cfg.source, &e)),
                _ if rel.is_empty() => {
                    return Err(Failure::Unreachable(format!("cannot read SOURCE {}", cfg.source.display())))
                }
                _ => rel = parent(&rel).to_vec(),
            }
        }
        let chain_above =
            if rel.is_empty() { Vec::new() } else { plan::chain_for(&self.held.rule_files, parent(&rel)) };
        let (meta, entries) = self
            .source
            .subtree(&rel, scanner, &chain_above)
            .map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
        // Unreadable now (reported): keep what is held, change nothing.
        let Some(entries) = entries else { return Ok(Rescan::Nothing) };
        let Some((held_meta, held_dir)) = self.held.dir(&rel) else {
            return Ok(Rescan::Nothing);
        };
        if rel.is_empty() && entries.is_empty() && !held_dir.is_empty() {
            let dest_entries = held_dir.count();
            let shown = self.dest.shown();
            if let Err(r) = cfg.guards.empty_source(&cfg.source, &shown, true, true, dest_entries) {
                return Ok(Rescan::Refused(r));
            }
        }
        let held_entries = held_dir.entries();
        // The rules read in this subtree replace those held for it; the planner judges
        // with the ones in force now.
        self.held.forget_rules_below(&rel);
        self.held.rule_files.extend(scanner.rule_files_below(&rel));
        let chain = plan::chain_for(&self.held.rule_files, &rel);
        let level = Level { base: &rel, chain: &chain, rule_files: &self.held.rule_files, deep: true };
        let p = plan::plan_level(&meta, &entries, Some(&held_meta), &held_entries, &held_opts(cfg), &level);
        let replaced = self.held.put(&rel, meta, entries);
        rayon::spawn(move || drop((replaced, held_entries)));
        if p.root.is_empty() {
            return Ok(Rescan::Nothing);
        }
        Ok(Rescan::Plan(rel, p.root))
    }

    /// Repairs DEST's directory `rel` (or the nearest one above it that DEST and the
    /// held snapshot both have): its entries, one level, are made what the held
    /// snapshot says (directories missing in DEST are made whole).
    fn repair(&mut self, rel: &[u8], rep: &Reporter, failures: &Failures) {
        let (cfg, dest) = (self.cfg, self.dest);
        let mut rel = rel.to_vec();
        while !(self.held.dir(&rel).is_some() && dest.has_dir(&rel)) {
            if rel.is_empty() {
                return;
            }
            rel = parent(&rel).to_vec();
        }
        let dst_sink = SideSink { reporter: rep, side: Side::Dest, count: false, failures: Some(failures) };
        let Ok((dst_meta, mut dst_entries)) =
            dest.scan_level(&rel, sync::dest_scan(cfg, &dst_sink, None), &Vec::new())
        else {
            return;
        };
        let Some((held_meta, held_dir)) = self.held.dir(&rel) else { return };
        // What DEST holds where the held snapshot has no directory: read it whole, so
        // excluded entries inside are seen (and protected).
        for e in dst_entries.iter_mut().filter(|e| e.is_dir()) {
            if !held_dir.find(&e.name).is_some_and(|j| held_dir.is_dir(j)) {
                let path = join(&rel, &e.name);
                e.kind = match dest.scan_subtree(&path, sync::dest_scan(cfg, &dst_sink, None)) {
                    Ok((_, Some(children))) => Kind::Dir(children),
                    _ => Kind::Unreadable,
                };
            }
        }
        let chain = plan::chain_for(&self.held.rule_files, &rel);
        let level = Level { base: &rel, chain: &chain, rule_files: &self.held.rule_files, deep: false };
        // The held listing, with the subtrees of directories DEST does not have as
        // directories (they are made whole).
        let dst_dirs: FxHashSet<&[u8]> =
            dst_entries.iter().filter(|e| matches!(e.kind, Kind::Dir(_))).map(|e| &*e.name).collect();
        let held_entries = held_dir.planned_against(|j| dst_dirs.contains(held_dir.name(j)));
        drop(dst_dirs);
        let mut p = plan::plan_level(
            &held_meta,
            &held_entries,
            Some(&dst_meta),
            &dst_entries,
            &repair_opts(cfg),
            &level,
        );
        let scope = rel.clone();
        self.hold_deletions(
            rep,
            &|p| parent(p) == scope.as_slice(),
            std::slice::from_mut(&mut p.root),
            &[rel.clone()],
        );
        self.apply_plan(&p, &rel, rep, failures);
    }

    /// Applies a two-sided plan of directory `rel` (a verification or a repair): its
    /// protected entries and conflicts reported (conflicts count as failures), then
    /// its changes.
    fn apply_plan(&mut self, p: &Plan, rel: &[u8], rep: &Reporter, failures: &Failures) {
        sync::report_plan_notes(rep, p);
        for (path, _) in &p.conflicts {
            failures.failed(path);
        }
        if !p.root.is_empty() {
            rep.progress().start_copy(p.totals.copies, p.totals.copy_bytes);
            self.apply(&p.root, rel, rep, failures);
        }
    }

    /// `--max-delete` in watch mode: when the directory plans `dps` (at `bases`)
    /// delete more entries SOURCE no longer has than allowed, those deletions are taken
    /// out and held back (said once per new set); everything else goes ahead.
    /// Held-back paths for which `rejudged` is true were planned afresh here.
    fn hold_deletions(
        &mut self,
        rep: &Reporter,
        rejudged: &dyn Fn(&[u8]) -> bool,
        dps: &mut [DirPlan],
        bases: &[Vec<u8>],
    ) {
        let Some(max) = self.cfg.guards.max_delete else { return };
        let before = self.held_back.clone();
        self.held_back.retain(|p| !rejudged(p));
        let gone: u64 = dps.iter().map(hold::gone_count).sum();
        if gone <= max {
            if !before.is_empty() && self.held_back.is_empty() {
                rep.notice("the deletions held back by --max-delete are within the limit now: applying them");
            }
            return;
        }
        let mut held = Vec::new();
        for (dp, base) in dps.iter_mut().zip(bases) {
            hold::strip_gone(dp, base, &mut held);
        }
        let new = held.iter().any(|p| !before.contains(p));
        self.held_back.extend(held.iter().cloned());
        if new {
            let examples: Vec<Vec<u8>> = held.into_iter().take(3).collect();
            rep.deletions_held(gone, max, &examples);
        }
    }
}

/// What a rescan through the SOURCE seam found.
enum Rescan {
    /// Changes to make, in the directory at the base.
    Plan(Vec<u8>, DirPlan),
    Nothing,
    /// SOURCE's root became empty while DEST holds entries: nothing is changed.
    Refused(crate::guard::Refusal),
}

/// How a cycle ended.
enum Cycle {
    /// Changes applied (or none needed); look at these again later.
    Done(Vec<Target>),
    /// A guard held: nothing was changed; look at these again later.
    Refused(Vec<Target>),
}

/// `base` at its new name when it is (or is below) the source of one of the directory
/// renames done in DEST (`moved`: from, to); `None` when it was not moved.
fn rebased(base: &[u8], moved: &[(&[u8], &[u8])]) -> Option<Vec<u8>> {
    let &(from, to) = moved.iter().find(|(from, _)| !from.is_empty() && is_within(base, from))?;
    let mut at = to.to_vec();
    at.extend_from_slice(&base[from.len()..]);
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::rebased;

    #[test]
    fn plans_below_a_renamed_directory_follow_it() {
        let moved: Vec<(&[u8], &[u8])> = vec![(b"a/old", b"b/new"), (b"f.txt", b"g.txt")];
        assert_eq!(rebased(b"a/old", &moved), Some(b"b/new".to_vec()));
        assert_eq!(rebased(b"a/old/x/y", &moved), Some(b"b/new/x/y".to_vec()));
        assert_eq!(rebased(b"a/older", &moved), None);
        assert_eq!(rebased(b"a", &moved), None);
        assert_eq!(rebased(b"", &moved), None);
    }
}
