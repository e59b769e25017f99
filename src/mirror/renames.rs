//! Plan rewriting for renames, and for moves seen half done.
//!
//! A watch cycle plans each re-read directory on its own, so a rename in SOURCE first
//! shows up as a deletion in one place and a creation in another. [`match_renames`]
//! pairs them by identity (same inode, kind, size and mtime, or symlink target) and
//! turns the pair into one rename in DEST, so a moved file or directory is not copied
//! again. [`defer_moves_in_progress`] covers the other half of the race: a scan is not
//! atomic, so an entry moved while SOURCE was being read can be seen at its new path
//! while its old one still looked present.

use rustc_hash::{FxHashMap, FxHashSet};

use super::held::Held;
use super::{CyclePlan, Target};
use crate::plan::{self, DirPlan, Level, Op, PlanOptions};
use crate::relpath::{is_within, join, parent};
use crate::snapshot::{Entry, Kind};

/// Files at least this large are put off once rather than copied when their inode is
/// also held at another path (a move seen half done): copying a large file is what a
/// rename saves, and small ones cost less to copy than a cycle's wait.
const LARGE_FILE: u64 = 1 << 20;

/// Turns vanished/appeared pairs with the same identity into renames.
pub fn match_renames(held: &Held, cp: &mut CyclePlan, opts: &PlanOptions) {
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
    for (base, dp) in cp.plans.iter_mut() {
        rewrite_creates(dp, base, &mut |path: &[u8], op: &Op| -> Option<Option<Op>> {
            let (ino, name) = match op {
                Op::Copy { meta, new: true, name } => (meta.ino, name),
                Op::Symlink { meta, new: true, name, .. } => (meta.ino, name),
                Op::Mkdir { name, .. } => {
                    let e = held.find(path)?;
                    (e.meta.ino, name)
                }
                _ => return None,
            };
            let new_entry = held.find(path)?;
            let cands = by_ino.get(&ino)?;
            let &i = cands.iter().find(|&&i| !used[i] && same_identity(&cp.removed[i].1, &new_entry))?;
            used[i] = true;
            let (from, old) = &cp.removed[i];
            renames.push((from.clone(), path.to_vec()));
            let owner_differs =
                opts.owner && (old.meta.uid != new_entry.meta.uid || old.meta.gid != new_entry.meta.gid);
            Some(match (&old.kind, &new_entry.kind) {
                (Kind::Dir(oc), Kind::Dir(_)) => {
                    let nc = held.subtree(path);
                    let chain = plan::chain_for(&held.rule_files, path);
                    let level = Level { base: path, chain: &chain, rule_files: &held.rule_files, deep: true };
                    let p = plan::plan_level(&new_entry.meta, &nc, Some(&old.meta), oc, opts, &level);
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

/// A scan is not atomic: a directory (or large file) moved while SOURCE was being
/// read can be seen at its new path while its old path still looked present. Rather
/// than copy it, put its creation off once: the next look finds the old path gone
/// and renames. Returns the directories to look at again.
pub fn defer_moves_in_progress(
    held: &mut Held,
    deferred: &mut FxHashSet<Vec<u8>>,
    cp: &mut CyclePlan,
) -> Vec<Target> {
    let mut candidates: Vec<(Vec<u8>, u64)> = Vec::new();
    for (base, dp) in cp.plans.iter_mut() {
        rewrite_creates(dp, base, &mut |path: &[u8], op: &Op| {
            let ino = match op {
                Op::Copy { meta, new: true, .. } if meta.size >= LARGE_FILE => meta.ino,
                Op::Mkdir { .. } => held.find(path)?.meta.ino,
                _ => return None,
            };
            // Put off once only: the second time it is created for real (a hard
            // link also shows one inode at two paths).
            if !deferred.remove(path) {
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
    let seen = held.count_inos(&wanted);
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
        held.remove(&path);
        again.push(Target::Level(parent(&path).to_vec()));
        deferred.insert(path);
    }
    again
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
