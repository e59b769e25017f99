//! The planner: a pure diff of a SOURCE snapshot against a DEST snapshot.
//!
//! [`plan`] reads two [`Snapshot`]s and options and returns a [`Plan`]: a tree of
//! per-directory operations that, applied to DEST, make it mirror SOURCE. It touches no
//! file system, so it can be printed (`--dry-run`), checked against guards
//! (`--max-delete`), unit-tested, or executed by `apply`.
//!
//! Within one directory, deletions (including the removal half of a type change) come
//! first, then creations and updates; a directory's own attributes are set after its
//! contents. A deleted directory lists its children's deletions before itself.

use std::sync::Arc;

use crate::ignore::{Chain, Rules};
use crate::relpath::join;
use crate::snapshot::{Entry, Kind, RuleMap, Snapshot};
use crate::sys::{self, Meta};

/// Options that change what counts as a difference and what may be removed.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Remove DEST entries that SOURCE lacks (default on; `--no-delete` turns it off).
    pub delete: bool,
    /// Compare file contents (digests in the snapshots) instead of mtimes.
    pub checksum: bool,
    /// Mtimes at most this far apart (nanoseconds) count as equal.
    pub modify_window_ns: u64,
    /// Mirror owner and group (when running as root).
    pub owner: bool,
    /// Ignore rules: excluded DEST entries are protected from deletion (unless
    /// `delete_excluded`). SOURCE's scan has already left excluded entries out.
    pub rules: Option<Arc<Rules>>,
    /// Record protected DEST entries in [`Plan::protected`] (`--explain-ignored`).
    pub explain: bool,
    /// The timestamp precision of DEST's file system when it is coarser than
    /// nanoseconds (FAT 2 s, exFAT 10 ms, sshfs 1 s, SMB/NTFS 100 ns): DEST's mtime equal
    /// to SOURCE's cut down to it counts as equal. `None`: exact (and always against
    /// watch mode's held snapshot, which records SOURCE's own timestamps).
    pub dest_grain_ns: Option<i128>,
    /// DEST cannot set a symlink's own mtime or owner (SFTP: SETSTAT follows links):
    /// symlinks are compared by target only.
    pub no_link_attrs: bool,
    /// `-X`/`-A`: compare extended attributes and ACLs of entries that are otherwise
    /// equal (SOURCE's and DEST's read directly); a difference is a `meta` change.
    pub attrs: Option<crate::xattrs::AttrCheck>,
    /// `-H`: SOURCE paths of files that are another name of a file planned before
    /// them (`hardlink::followers`): neither copied nor given attributes here; the
    /// link pass after the plan links them (what DEST has there of another kind is
    /// still removed).
    pub followers: Option<std::sync::Arc<rustc_hash::FxHashSet<Vec<u8>>>>,
}

/// Why an entry is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteReason {
    /// SOURCE no longer has it.
    Gone,
    /// SOURCE has an entry of another kind under that name.
    TypeChange,
    /// A temporary left by an interrupted run.
    Temporary,
}

/// One operation on an entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Remove `name`; for a directory, `sub` first removes its contents. With `keep`,
    /// the directory itself stays (it holds excluded entries that are protected).
    Delete { name: Box<[u8]>, dir: bool, reason: DeleteReason, sub: DirPlan, keep: bool },
    /// Create directory `name`, then fill it.
    Mkdir { name: Box<[u8]>, sub: DirPlan },
    /// Copy file `name` (new or changed) through a temporary and a rename.
    Copy { name: Box<[u8]>, meta: Meta, new: bool },
    /// Create or re-point symlink `name`.
    Symlink { name: Box<[u8]>, target: Box<[u8]>, meta: Meta, new: bool },
    /// Fix attributes only (mode, mtime, owner) of a file or symlink.
    Meta { name: Box<[u8]>, symlink: bool, meta: Meta },
    /// Descend into existing directory `name`, which has changes inside or of its own.
    Enter { name: Box<[u8]>, sub: DirPlan },
}

impl Op {
    pub fn name(&self) -> &[u8] {
        match self {
            Op::Delete { name, .. }
            | Op::Mkdir { name, .. }
            | Op::Copy { name, .. }
            | Op::Symlink { name, .. }
            | Op::Meta { name, .. }
            | Op::Enter { name, .. } => name,
        }
    }

    /// A directory kept for its protected entries with nothing else to remove.
    pub fn is_noop(&self) -> bool {
        matches!(self, Op::Delete { keep: true, sub, .. } if sub.ops.is_empty())
    }

    pub fn is_delete(&self) -> bool {
        matches!(self, Op::Delete { .. })
    }

    /// Runs a directory plan of its own: a directory made, entered, or removed with
    /// its contents.
    pub fn has_sub(&self) -> bool {
        matches!(self, Op::Mkdir { .. } | Op::Enter { .. } | Op::Delete { dir: true, .. })
    }
}

/// The work inside one directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirPlan {
    /// Deletions first, then the rest (in name order within each group).
    pub ops: Vec<Op>,
    /// Attributes to give the directory once its contents are done.
    pub set_meta: Option<Meta>,
    /// The directory's own attributes differ (a `meta` change to report), as opposed
    /// to only restoring its mtime after changing its contents.
    pub meta_changed: bool,
}

impl DirPlan {
    /// Every change of this directory's plan, `base` being its path relative to DEST.
    pub fn changes(&self, base: &[u8]) -> Vec<Change> {
        let mut out = Vec::new();
        flatten(self, base, &mut out);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.set_meta.is_none()
    }
}

/// Counts of what a plan will do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub copies: u64,
    pub copy_bytes: u64,
    pub mkdirs: u64,
    pub symlinks: u64,
    pub metas: u64,
    /// Entries removed, temporaries not included.
    pub deletes: u64,
    pub temporaries: u64,
}

/// A complete plan for one sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub root: DirPlan,
    pub totals: Totals,
    /// DEST entries left alone because a rule excludes them, with the rule
    /// (filled only with `PlanOptions::explain`).
    pub protected: Vec<(Vec<u8>, String)>,
    /// Paths the plan cannot mirror, with why (a DEST directory holding excluded
    /// entries where SOURCE has a file or symlink): reported as errors.
    pub conflicts: Vec<(Vec<u8>, String)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// Every change in execution order, with paths relative to DEST.
    pub fn changes(&self) -> Vec<Change> {
        self.root.changes(b"")
    }
}

/// What happened (or would happen) to one path. Used by the itemized listing,
/// the reporter and JSON events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Copy {
        bytes: u64,
    },
    Mkdir,
    Symlink {
        target: Box<[u8]>,
    },
    Meta,
    Delete,
    /// Watch mode: an entry DEST holds was renamed in SOURCE, and is renamed in DEST.
    Rename {
        from: Box<[u8]>,
    },
    /// `-H`: a file made another name of `target` (a hard link), as in SOURCE.
    Hardlink {
        target: Box<[u8]>,
    },
}

impl ChangeKind {
    /// The event name used in itemized lines and JSON.
    pub fn event(&self) -> &'static str {
        match self {
            ChangeKind::Copy { .. } => "copy",
            ChangeKind::Mkdir => "mkdir",
            ChangeKind::Symlink { .. } => "symlink",
            ChangeKind::Meta => "meta",
            ChangeKind::Delete => "delete",
            ChangeKind::Rename { .. } => "rename",
            ChangeKind::Hardlink { .. } => "hardlink",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: Vec<u8>,
    pub kind: ChangeKind,
}

fn flatten(dp: &DirPlan, rel: &[u8], out: &mut Vec<Change>) {
    for op in &dp.ops {
        let path = join(rel, op.name());
        match op {
            Op::Delete { sub, keep, .. } => {
                flatten(sub, &path, out);
                if !keep {
                    out.push(Change { path, kind: ChangeKind::Delete });
                }
            }
            Op::Mkdir { sub, .. } => {
                out.push(Change { path: path.clone(), kind: ChangeKind::Mkdir });
                flatten(sub, &path, out);
            }
            Op::Copy { meta, .. } => out.push(Change { path, kind: ChangeKind::Copy { bytes: meta.size } }),
            Op::Symlink { target, .. } => {
                out.push(Change { path, kind: ChangeKind::Symlink { target: target.clone() } })
            }
            Op::Meta { .. } => out.push(Change { path, kind: ChangeKind::Meta }),
            Op::Enter { sub, .. } => {
                flatten(sub, &path, out);
                if sub.meta_changed {
                    out.push(Change { path, kind: ChangeKind::Meta });
                }
            }
        }
    }
    if rel.is_empty() && dp.meta_changed {
        out.push(Change { path: b".".to_vec(), kind: ChangeKind::Meta });
    }
}

/// Diffs SOURCE against DEST (`None`: DEST does not exist yet, so everything is
/// created and its root's attributes are set).
pub fn plan(src: &Snapshot, dst: Option<&Snapshot>, opts: &PlanOptions) -> Plan {
    let chain = chain_in(&src.rule_files, &Vec::new(), b"");
    let level = Level { base: b"", chain: &chain, rule_files: &src.rule_files, deep: true };
    let (dst_meta, dst_entries) = match dst {
        Some(d) => (Some(&d.root), &d.entries[..]),
        None => (None, &[][..]),
    };
    plan_level(&src.root, &src.entries, dst_meta, dst_entries, opts, &level)
}

/// Where a plan starts: a directory `base` (relative to the roots; empty for the roots
/// themselves), the ignore files that apply there, and whether to descend.
pub struct Level<'a> {
    pub base: &'a [u8],
    /// The rule files in force inside `base` (its own included).
    pub chain: &'a Chain,
    pub rule_files: &'a RuleMap,
    /// Diff subdirectories present on both sides too (false: compare only their own
    /// attributes, for a one-level refresh).
    pub deep: bool,
}

/// Diffs one directory (`src_meta`/`src` against `dst_meta`/`dst`) at `level.base`.
/// `dst_meta` is `None` when DEST's directory is not there yet (its attributes are
/// then set as a change).
pub fn plan_level(
    src_meta: &Meta,
    src: &[Entry],
    dst_meta: Option<&Meta>,
    dst: &[Entry],
    opts: &PlanOptions,
    level: &Level<'_>,
) -> Plan {
    let mut totals = Totals::default();
    let mut protected = Vec::new();
    let mut p = Planner {
        opts,
        rule_files: level.rule_files,
        deep: level.deep,
        rules: opts.rules.as_deref(),
        totals: &mut totals,
        protected: &mut protected,
        conflicts: Vec::new(),
    };
    let mut root = DirPlan { ops: p.diff_dir(src, dst, level.base, level.chain), ..DirPlan::default() };
    let own = dst_meta.is_none_or(|d| p.dir_meta_differs(src_meta, d) || p.attrs_differ(level.base));
    if own || !root.ops.is_empty() {
        root.set_meta = Some(*src_meta);
        root.meta_changed = own;
    }
    let conflicts = std::mem::take(&mut p.conflicts);
    Plan { root, totals, protected, conflicts }
}

/// True when DEST's mtime `dst_ns` is SOURCE's `src_ns` cut down to a precision of
/// `grain` nanoseconds (DEST's file system cannot store more).
pub fn truncated_equal(src_ns: i128, dst_ns: i128, grain: i128) -> bool {
    grain > 1 && dst_ns <= src_ns && dst_ns == src_ns - src_ns.rem_euclid(grain)
}

/// The rule files that apply inside SOURCE directory `rel`, given its parent's.
pub fn chain_in(rule_files: &RuleMap, parent: &Chain, rel: &[u8]) -> Chain {
    let mut c = parent.clone();
    if let Some(f) = rule_files.get(rel) {
        c.push(f.clone());
    }
    c
}

/// The rule files in force inside `rel`, from SOURCE's root down.
pub fn chain_for(rule_files: &RuleMap, rel: &[u8]) -> Chain {
    let mut chain = chain_in(rule_files, &Vec::new(), b"");
    if rel.is_empty() {
        return chain;
    }
    for (i, b) in rel.iter().enumerate() {
        if *b == b'/' {
            chain = chain_in(rule_files, &chain, &rel[..i]);
        }
    }
    chain_in(rule_files, &chain, rel)
}

struct Planner<'a> {
    opts: &'a PlanOptions,
    rule_files: &'a RuleMap,
    deep: bool,
    rules: Option<&'a Rules>,
    totals: &'a mut Totals,
    protected: &'a mut Vec<(Vec<u8>, String)>,
    conflicts: Vec<(Vec<u8>, String)>,
}

impl Planner<'_> {
    /// SOURCE's mtime `a` and DEST's `b` count as equal: within `--modify-window`, or
    /// `b` is `a` cut down to a coarser file system's precision.
    fn mtime_eq(&self, a: &Meta, b: &Meta) -> bool {
        let d = (a.mtime_ns() - b.mtime_ns()).unsigned_abs();
        d <= self.opts.modify_window_ns as u128
            || self.opts.dest_grain_ns.is_some_and(|g| truncated_equal(a.mtime_ns(), b.mtime_ns(), g))
    }

    fn owner_differs(&self, a: &Meta, b: &Meta) -> bool {
        self.opts.owner && (a.uid != b.uid || a.gid != b.gid)
    }

    /// Relative paths are needed (ignore rules, attribute comparisons): without them
    /// the planner does not build them.
    fn paths(&self) -> bool {
        self.rules.is_some() || self.opts.attrs.is_some() || self.opts.followers.is_some()
    }

    /// `-H`: the SOURCE file at `path` is left to the link pass.
    fn follower(&self, path: &[u8]) -> bool {
        self.opts.followers.as_ref().is_some_and(|f| f.contains(path))
    }

    /// `-X`/`-A`: the entry at `path` has other attributes in SOURCE than in DEST.
    fn attrs_differ(&self, path: &[u8]) -> bool {
        self.opts.attrs.as_ref().is_some_and(|a| a.differ(path))
    }

    fn dir_meta_differs(&self, s: &Meta, d: &Meta) -> bool {
        s.mode != d.mode || !self.mtime_eq(s, d) || self.owner_differs(s, d)
    }

    /// True when DEST entry `d` (at `path`) must be left alone: an ignore rule excludes
    /// it and `--delete-excluded` is off.
    fn protected(&mut self, d: &Entry, path: &[u8], chain: &Chain) -> bool {
        let Some(rules) = self.rules else { return false };
        if rules.delete_excluded {
            // Only what must stay whatever --delete-excluded says (--backup-dir).
            return rules
                .keep
                .as_ref()
                .is_some_and(|k| k.excludes(crate::relpath::rel_path(path), d.is_dir()));
        }
        match rules.check(chain, crate::relpath::rel_path(path), d.is_dir()) {
            Some(hit) if hit.excluded() => {
                if self.opts.explain {
                    self.protected.push((path.to_vec(), hit.describe()));
                }
                true
            }
            _ => false,
        }
    }

    fn diff_dir(&mut self, src: &[Entry], dst: &[Entry], rel: &[u8], chain: &Chain) -> Vec<Op> {
        let mut deletes = Vec::new();
        let mut rest = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < src.len() || j < dst.len() {
            let ord = match (src.get(i), dst.get(j)) {
                (Some(s), Some(d)) => s.name.cmp(&d.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    self.create(&src[i], rel, &mut rest);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let d = &dst[j];
                    if sys::is_temp_name(&d.name) {
                        deletes.push(self.delete(d, DeleteReason::Temporary, b"", chain));
                    } else if self.opts.delete {
                        let path = if self.paths() { join(rel, &d.name) } else { Vec::new() };
                        if !self.protected(d, &path, chain) {
                            let op = self.delete(d, DeleteReason::Gone, &path, chain);
                            if !op.is_noop() {
                                deletes.push(op);
                            }
                        }
                    }
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    self.update(&src[i], &dst[j], rel, chain, &mut deletes, &mut rest);
                    i += 1;
                    j += 1;
                }
            }
        }
        deletes.extend(rest);
        deletes
    }

    fn create(&mut self, s: &Entry, rel: &[u8], out: &mut Vec<Op>) {
        let name = s.name.clone();
        let path = if self.paths() { join(rel, &s.name) } else { Vec::new() };
        match &s.kind {
            Kind::File(_) if self.follower(&path) => {}
            Kind::File(_) => {
                self.totals.copies += 1;
                self.totals.copy_bytes = self.totals.copy_bytes.saturating_add(s.meta.size);
                out.push(Op::Copy { name, meta: s.meta, new: true });
            }
            Kind::Dir(children) => {
                self.totals.mkdirs += 1;
                let ops = self.diff_dir(children, &[], &path, &Vec::new());
                out.push(Op::Mkdir {
                    name,
                    sub: DirPlan { ops, set_meta: Some(s.meta), meta_changed: false },
                });
            }
            Kind::Symlink(target) => {
                self.totals.symlinks += 1;
                out.push(Op::Symlink { name, target: target.clone(), meta: s.meta, new: true });
            }
            Kind::Special(_) => {}
            Kind::Unknown => {}
            // Known to be a directory, contents unknown: create it, put nothing in it.
            // Its mode is opened up for its owner (u+rwx), so that later runs can read
            // and fill it; the real mode is applied once SOURCE's directory can be read
            // (the modes then differ: an attribute fix).
            Kind::Unreadable => {
                self.totals.mkdirs += 1;
                let meta = Meta { mode: s.meta.mode | 0o700, ..s.meta };
                out.push(Op::Mkdir {
                    name,
                    sub: DirPlan { ops: Vec::new(), set_meta: Some(meta), meta_changed: false },
                });
            }
        }
    }

    /// Removes `d` (at `path`, known only when rules are active). Protected entries
    /// inside a directory keep that directory (`keep`), and are not counted.
    fn delete(&mut self, d: &Entry, reason: DeleteReason, path: &[u8], chain: &Chain) -> Op {
        let dir = d.is_dir();
        let mut ops = Vec::new();
        let mut keep = false;
        for c in d.children() {
            let cpath = if self.paths() { join(path, &c.name) } else { Vec::new() };
            if reason != DeleteReason::Temporary && self.protected(c, &cpath, chain) {
                keep = true;
                continue;
            }
            let op = self.delete(c, reason, &cpath, chain);
            keep |= matches!(op, Op::Delete { keep: true, .. });
            if !op.is_noop() {
                ops.push(op);
            }
        }
        if keep {
            // Stays, holding what is protected.
        } else if reason == DeleteReason::Temporary {
            self.totals.temporaries += 1;
        } else {
            self.totals.deletes += 1;
        }
        Op::Delete { name: d.name.clone(), dir, reason, sub: DirPlan { ops, ..DirPlan::default() }, keep }
    }

    fn update(
        &mut self,
        s: &Entry,
        d: &Entry,
        rel: &[u8],
        chain: &Chain,
        deletes: &mut Vec<Op>,
        rest: &mut Vec<Op>,
    ) {
        let name = || s.name.clone();
        match (&s.kind, &d.kind) {
            // Special files in SOURCE are skipped, and entries that could not be read;
            // whatever DEST has there is left alone.
            (Kind::Special(_) | Kind::Unknown, _) => {}
            // A SOURCE directory that could not be read: DEST's directory stays as it is
            // (its contents are unknown, so nothing in it may be deleted).
            (Kind::Unreadable, Kind::Dir(_) | Kind::Unreadable) => {}
            // What DEST could not read is taken as an empty directory.
            (Kind::Dir(sc), Kind::Unreadable) => {
                let path = if self.paths() { join(rel, &s.name) } else { Vec::new() };
                let sub_chain =
                    if self.paths() { chain_in(self.rule_files, chain, &path) } else { Vec::new() };
                let ops = self.diff_dir(sc, &[], &path, &sub_chain);
                rest.push(Op::Enter {
                    name: name(),
                    sub: DirPlan { ops, set_meta: Some(s.meta), meta_changed: true },
                });
                self.totals.metas += 1;
            }
            (Kind::File(_), Kind::File(_)) if self.follower(&join(rel, &s.name)) => {}
            (Kind::File(sd), Kind::File(dd)) => {
                let changed = if s.meta.size != d.meta.size {
                    true
                } else if self.opts.checksum {
                    sd.is_none() || sd != dd
                } else {
                    !self.mtime_eq(&s.meta, &d.meta)
                };
                if changed {
                    self.totals.copies += 1;
                    self.totals.copy_bytes = self.totals.copy_bytes.saturating_add(s.meta.size);
                    rest.push(Op::Copy { name: name(), meta: s.meta, new: false });
                } else if s.meta.mode != d.meta.mode
                    || !self.mtime_eq(&s.meta, &d.meta)
                    || self.owner_differs(&s.meta, &d.meta)
                    || self.attrs_differ(&join(rel, &s.name))
                {
                    self.totals.metas += 1;
                    rest.push(Op::Meta { name: name(), symlink: false, meta: s.meta });
                }
            }
            (Kind::Dir(sc), Kind::Dir(dc)) => {
                let (path, sub_chain) = if self.paths() {
                    let path = join(rel, &s.name);
                    let c = chain_in(self.rule_files, chain, &path);
                    (path, c)
                } else {
                    (Vec::new(), Vec::new())
                };
                let ops = if self.deep { self.diff_dir(sc, dc, &path, &sub_chain) } else { Vec::new() };
                let own = self.dir_meta_differs(&s.meta, &d.meta) || self.attrs_differ(&path);
                if own {
                    self.totals.metas += 1;
                }
                if own || !ops.is_empty() {
                    rest.push(Op::Enter {
                        name: name(),
                        sub: DirPlan { ops, set_meta: Some(s.meta), meta_changed: own },
                    });
                }
            }
            (Kind::Symlink(st), Kind::Symlink(dt)) => {
                if st != dt {
                    self.totals.symlinks += 1;
                    rest.push(Op::Symlink { name: name(), target: st.clone(), meta: s.meta, new: false });
                } else if (!self.opts.no_link_attrs
                    && (!self.mtime_eq(&s.meta, &d.meta) || self.owner_differs(&s.meta, &d.meta)))
                    || self.attrs_differ(&join(rel, &s.name))
                {
                    self.totals.metas += 1;
                    rest.push(Op::Meta { name: name(), symlink: true, meta: s.meta });
                }
            }
            // A different kind under the same name: remove what DEST has, then create,
            // unless DEST's directory holds excluded (protected) entries.
            _ => {
                let path = if self.paths() { join(rel, &d.name) } else { Vec::new() };
                let op = self.delete(d, DeleteReason::TypeChange, &path, chain);
                if matches!(op, Op::Delete { keep: true, .. }) {
                    self.conflicts.push((
                        join(rel, &d.name),
                        "cannot replace this directory: it holds excluded entries (see --delete-excluded)"
                            .into(),
                    ));
                    if !op.is_noop() {
                        deletes.push(op);
                    }
                } else {
                    deletes.push(op);
                    self.create(s, rel, rest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::itemize;

    fn meta(size: u64, mtime: i64, mode: u32) -> Meta {
        Meta { size, mtime_sec: mtime, mtime_nsec: 0, mode, ..Meta::default() }
    }
    fn file(name: &str, size: u64, mtime: i64) -> Entry {
        Entry { name: name.as_bytes().into(), meta: meta(size, mtime, 0o644), kind: Kind::File(None) }
    }
    fn dir(name: &str, children: Vec<Entry>) -> Entry {
        let mut c = children;
        c.sort_by(|a, b| a.name.cmp(&b.name));
        Entry { name: name.as_bytes().into(), meta: meta(0, 100, 0o755), kind: Kind::Dir(c) }
    }
    fn link(name: &str, target: &str) -> Entry {
        Entry {
            name: name.as_bytes().into(),
            meta: meta(target.len() as u64, 100, 0o777),
            kind: Kind::Symlink(target.as_bytes().into()),
        }
    }
    fn special(name: &str) -> Entry {
        Entry { name: name.as_bytes().into(), meta: meta(0, 100, 0o644), kind: Kind::Special("fifo") }
    }
    fn snap(entries: Vec<Entry>) -> Snapshot {
        let mut e = entries;
        e.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot { root: meta(0, 100, 0o755), entries: e, ..Snapshot::default() }
    }
    fn opts() -> PlanOptions {
        PlanOptions { delete: true, ..PlanOptions::default() }
    }
    fn lines(p: &Plan) -> Vec<String> {
        p.changes().iter().map(itemize).collect()
    }

    #[test]
    fn identical_trees_give_an_empty_plan() {
        let t = || snap(vec![file("a", 1, 1), dir("d", vec![file("x", 2, 2), link("l", "x")])]);
        let p = plan(&t(), Some(&t()), &opts());
        assert!(p.is_empty(), "{:?}", lines(&p));
        assert_eq!(p.totals, Totals::default());
    }

    #[test]
    fn new_entries_are_created_parents_first() {
        let src = snap(vec![dir("d", vec![dir("e", vec![file("f", 3, 1)])]), link("l", "d/e/f")]);
        let p = plan(&src, Some(&snap(vec![])), &opts());
        assert_eq!(lines(&p), vec!["mkdir d/", "mkdir d/e/", "copy d/e/f (3 bytes)", "symlink l -> d/e/f"]);
        assert_eq!(p.totals.mkdirs, 2);
        assert_eq!(p.totals.copies, 1);
        assert_eq!(p.totals.copy_bytes, 3);
        assert_eq!(p.totals.symlinks, 1);
        // Root mtime is restored after its contents change, without a meta event.
        assert!(p.root.set_meta.is_some());
        assert!(!p.root.meta_changed);
    }

    #[test]
    fn changed_size_or_mtime_copies_mode_only_is_meta() {
        let src = snap(vec![file("a", 5, 1), file("b", 1, 2), file("c", 1, 1)]);
        let mut dst = snap(vec![file("a", 4, 1), file("b", 1, 1), file("c", 1, 1)]);
        dst.entries[2].meta.mode = 0o600;
        let p = plan(&src, Some(&dst), &opts());
        assert_eq!(lines(&p), vec!["copy a (5 bytes)", "copy b (1 bytes)", "meta c"]);
    }

    #[test]
    fn mtime_compared_to_the_nanosecond() {
        let src = snap(vec![file("a", 1, 1)]);
        let mut dst = snap(vec![file("a", 1, 1)]);
        dst.entries[0].meta.mtime_nsec = 1;
        assert_eq!(lines(&plan(&src, Some(&dst), &opts())), vec!["copy a (1 bytes)"]);
    }

    #[test]
    fn coarser_dest_timestamps_count_as_equal() {
        let mut src = snap(vec![file("a", 1, 11), file("b", 1, 10)]);
        src.entries[0].meta.mtime_nsec = 500; // 11.0000005 s
        src.entries[1].meta.mtime_nsec = 987_654_321;
        let dst = snap(vec![file("a", 1, 10), file("b", 1, 10)]);
        // Exact by default: both differ.
        assert_eq!(lines(&plan(&src, Some(&dst), &opts())), vec!["copy a (1 bytes)", "copy b (1 bytes)"]);
        // DEST on FAT (2 s): both are SOURCE's times as FAT keeps them.
        let fat = PlanOptions { dest_grain_ns: Some(2_000_000_000), ..opts() };
        assert!(plan(&src, Some(&dst), &fat).is_empty());
        // sshfs (1 s): 11.0000005 kept as 11, not 10.
        let sec = PlanOptions { dest_grain_ns: Some(1_000_000_000), ..opts() };
        assert_eq!(lines(&plan(&src, Some(&dst), &sec)), vec!["copy a (1 bytes)"]);
        // A later DEST mtime is never a truncation.
        assert!(!truncated_equal(10_000_000_000, 10_000_000_001, 100));
    }

    #[test]
    fn modify_window_treats_close_mtimes_as_equal() {
        let src = snap(vec![file("a", 1, 10), file("b", 1, 10)]);
        let dst = snap(vec![file("a", 1, 11), file("b", 1, 13)]);
        let o = PlanOptions { modify_window_ns: 2_000_000_000, ..opts() };
        assert_eq!(lines(&plan(&src, Some(&dst), &o)), vec!["copy b (1 bytes)"]);
    }

    #[test]
    fn checksum_compares_content_not_mtime() {
        let mut src = snap(vec![file("same", 3, 1), file("diff", 3, 1), file("size", 3, 1)]);
        let mut dst = snap(vec![file("same", 3, 9), file("diff", 3, 1), file("size", 4, 1)]);
        let set = |e: &mut Entry, v: u8| e.kind = Kind::File(Some(Box::new([v; 32])));
        // entries sorted: diff, same, size
        set(&mut src.entries[0], 1);
        set(&mut dst.entries[0], 2);
        set(&mut src.entries[1], 7);
        set(&mut dst.entries[1], 7);
        let o = PlanOptions { checksum: true, ..opts() };
        // equal content with another mtime: only the mtime is fixed.
        assert_eq!(
            lines(&plan(&src, Some(&dst), &o)),
            vec!["copy diff (3 bytes)", "meta same", "copy size (3 bytes)"]
        );
    }

    #[test]
    fn deletions_children_before_parents_and_first_in_directory() {
        let src = snap(vec![file("z", 1, 1)]);
        let dst = snap(vec![dir("old", vec![dir("sub", vec![file("f", 1, 1)]), file("g", 1, 1)])]);
        let p = plan(&src, Some(&dst), &opts());
        assert_eq!(
            lines(&p),
            vec!["delete old/g", "delete old/sub/f", "delete old/sub", "delete old", "copy z (1 bytes)"]
        );
        assert_eq!(p.totals.deletes, 4);
    }

    #[test]
    fn no_delete_keeps_extra_entries() {
        let src = snap(vec![file("a", 1, 1)]);
        let dst = snap(vec![file("a", 1, 1), dir("extra", vec![file("x", 1, 1)])]);
        let o = PlanOptions { delete: false, ..opts() };
        let p = plan(&src, Some(&dst), &o);
        assert!(p.is_empty(), "{:?}", lines(&p));
    }

    #[test]
    fn type_changes_in_every_direction() {
        let src = snap(vec![
            file("f2d", 1, 1),
            dir("d2f", vec![file("in", 1, 1)]),
            link("f2l", "t"),
            file("l2f", 1, 1),
            dir("l2d", vec![]),
            link("d2l", "t"),
        ]);
        let dst = snap(vec![
            dir("f2d", vec![file("x", 1, 1)]),
            file("d2f", 1, 1),
            file("f2l", 1, 1),
            link("l2f", "t"),
            link("l2d", "/outside"),
            dir("d2l", vec![]),
        ]);
        // Type changes happen even with --no-delete.
        let o = PlanOptions { delete: false, ..opts() };
        let p = plan(&src, Some(&dst), &o);
        assert_eq!(
            lines(&p),
            vec![
                "delete d2f",
                "delete d2l",
                "delete f2d/x",
                "delete f2d",
                "delete f2l",
                "delete l2d",
                "delete l2f",
                "mkdir d2f/",
                "copy d2f/in (1 bytes)",
                "symlink d2l -> t",
                "copy f2d (1 bytes)",
                "symlink f2l -> t",
                "mkdir l2d/",
                "copy l2f (1 bytes)",
            ]
        );
        let deleted: Vec<DeleteReason> = p
            .root
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Delete { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect();
        assert!(deleted.iter().all(|r| *r == DeleteReason::TypeChange));
    }

    #[test]
    fn symlinks_repointed_and_times_fixed() {
        let src = snap(vec![link("a", "new"), link("b", "same")]);
        let mut dst = snap(vec![link("a", "old"), link("b", "same")]);
        dst.entries[1].meta.mtime_sec = 5;
        assert_eq!(lines(&plan(&src, Some(&dst), &opts())), vec!["symlink a -> new", "meta b"]);
    }

    #[test]
    fn directory_attributes_are_fixed_after_contents() {
        let mut src = snap(vec![dir("d", vec![file("f", 2, 1)])]);
        let dst = snap(vec![dir("d", vec![file("f", 1, 1)])]);
        if let Some(e) = src.entries.first_mut() {
            e.meta.mode = 0o700;
        }
        let p = plan(&src, Some(&dst), &opts());
        assert_eq!(lines(&p), vec!["copy d/f (2 bytes)", "meta d"]);
        match &p.root.ops[0] {
            Op::Enter { sub, .. } => {
                assert!(sub.meta_changed);
                assert_eq!(sub.set_meta.map(|m| m.mode), Some(0o700));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn root_attributes_mirrored() {
        let src = snap(vec![]);
        let mut dst = snap(vec![]);
        dst.root.mode = 0o700;
        let p = plan(&src, Some(&dst), &opts());
        assert_eq!(lines(&p), vec!["meta ."]);
    }

    #[test]
    fn leftover_temporaries_removed_even_without_delete() {
        let src = snap(vec![file("a", 1, 1)]);
        let dst = snap(vec![file("a", 1, 1), file(".tandem-1f-2.tmp", 9, 1)]);
        let p = plan(&src, Some(&dst), &PlanOptions { delete: false, ..opts() });
        assert_eq!(lines(&p), vec!["delete .tandem-1f-2.tmp"]);
        assert_eq!(p.totals.temporaries, 1);
        assert_eq!(p.totals.deletes, 0);
        // A SOURCE file with a temporary-looking name is an ordinary file.
        let src = snap(vec![file(".tandem-1f-2.tmp", 9, 1)]);
        assert!(plan(&src, Some(&dst), &opts()).changes().iter().all(|c| c.path != b".tandem-1f-2.tmp"));
    }

    #[test]
    fn special_files_skipped_and_dest_counterpart_left_alone() {
        let src = snap(vec![special("fifo"), special("p")]);
        let dst = snap(vec![file("p", 1, 1)]);
        let p = plan(&src, Some(&dst), &opts());
        assert!(p.is_empty(), "{:?}", lines(&p));
        // A special file in DEST where SOURCE has a file is replaced.
        let src = snap(vec![file("s", 1, 1)]);
        let dst = snap(vec![special("s")]);
        assert_eq!(lines(&plan(&src, Some(&dst), &opts())), vec!["delete s", "copy s (1 bytes)"]);
    }

    #[test]
    fn owner_only_when_asked() {
        let src = snap(vec![file("a", 1, 1)]);
        let mut dst = snap(vec![file("a", 1, 1)]);
        dst.entries[0].meta.uid = 1000;
        assert!(plan(&src, Some(&dst), &opts()).is_empty());
        let o = PlanOptions { owner: true, ..opts() };
        assert_eq!(lines(&plan(&src, Some(&dst), &o)), vec!["meta a"]);
    }

    #[test]
    fn non_utf8_names_itemize_lossily() {
        let mut e = file("x", 1, 1);
        e.name = b"bad\xffname".to_vec().into();
        let p = plan(&snap(vec![e]), Some(&snap(vec![])), &opts());
        assert_eq!(lines(&p), vec!["copy bad\u{fffd}name (1 bytes)"]);
    }
}
