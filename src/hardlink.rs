//! `-H/--hard-links`: files that share an inode in SOURCE share one in DEST.
//!
//! Link groups are found from a snapshot, whose entries record every file's inode
//! number: files whose inode number occurs more than once are candidates, confirmed
//! by a stat of each one, which gives its (device, inode, link count); a group is
//! what shares a (device, inode) with a link count above one, its members in path
//! order (the order the planner walks), the first being the group's *leader*.
//! Watch mode finds them in its held snapshot the same way after every cycle that
//! changed something, so a group that gains or loses members is seen.
//!
//! Only the leader is copied; the planner leaves the other members (*followers*,
//! [`followers`]) to the link pass ([`LinkPass`]), which runs after a plan is applied:
//! each follower whose DEST entry is not the leader's DEST inode is linked to it under
//! a temporary name and renamed into place (or linked under its final name when that
//! is free): a name appears only complete. A leader copied anew (its contents
//! changed) gets a new inode, so its followers are linked again: the whole group
//! follows. DEST names that share an inode where SOURCE's do not (a member that left
//! its group) are copied afresh first ([`LinkPass::breaks`]), so that attribute fixes
//! on one cannot reach the other.
//!
//! Where a follower is not yet known as one when its directory is planned (watch
//! mode: a new link to a file seen in another directory's refresh), it is copied and
//! then replaced by a link in the same cycle.

use std::io;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::dest::Dest;
use crate::outcome::Failures;
use crate::plan::{ChangeKind, DirPlan, Op};
use crate::relpath::{join, split_last};
use crate::report::{Reporter, Side};
use crate::snapshot::{Entry, Kind};
use crate::source::Source;

pub use crate::sys::FileId;

/// Names that share one inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    /// In path order; the first is the leader.
    pub paths: Vec<Vec<u8>>,
}

impl Group {
    pub fn leader(&self) -> &[u8] {
        &self.paths[0]
    }
}

fn count(entries: &[Entry], seen: &mut FxHashMap<u64, u32>) {
    for e in entries {
        match &e.kind {
            Kind::File(_) => *seen.entry(e.meta.ino).or_default() += 1,
            Kind::Dir(c) => count(c, seen),
            _ => {}
        }
    }
}

fn collect(entries: &[Entry], rel: &[u8], seen: &FxHashMap<u64, u32>, out: &mut Vec<Vec<u8>>) {
    for e in entries {
        match &e.kind {
            Kind::File(_) if seen.get(&e.meta.ino).is_some_and(|n| *n > 1) => out.push(join(rel, &e.name)),
            Kind::Dir(c) => collect(c, &join(rel, &e.name), seen, out),
            _ => {}
        }
    }
}

/// The link groups among `entries` (the tree at `base`), each candidate confirmed by
/// `stat` (a relative path's identity, `None` when it is not a regular file now).
pub fn groups(entries: &[Entry], base: &[u8], stat: &dyn Fn(&[u8]) -> Option<FileId>) -> Vec<Group> {
    let mut seen = FxHashMap::default();
    count(entries, &mut seen);
    if !seen.values().any(|n| *n > 1) {
        return Vec::new();
    }
    let mut candidates = Vec::new();
    collect(entries, base, &seen, &mut candidates);
    drop(seen);
    confirm(candidates, stat)
}

/// The link groups among `candidates` (paths of regular files whose inode number is
/// seen more than once, in path order), each confirmed by `stat` as in [`groups`].
pub fn confirm(candidates: Vec<Vec<u8>>, stat: &dyn Fn(&[u8]) -> Option<FileId>) -> Vec<Group> {
    let mut by_id: FxHashMap<(u64, u64), usize> = FxHashMap::default();
    let mut out: Vec<Group> = Vec::new();
    for path in candidates {
        let Some((dev, ino, nlink)) = stat(&path) else { continue };
        if nlink < 2 {
            continue;
        }
        match by_id.get(&(dev, ino)) {
            Some(&i) => out[i].paths.push(path),
            None => {
                by_id.insert((dev, ino), out.len());
                out.push(Group { dev, ino, nlink, paths: vec![path] });
            }
        }
    }
    out.retain(|g| g.paths.len() > 1);
    out
}

/// The followers of `groups` (every member but the leader): the planner leaves them
/// to the link pass.
pub fn followers(groups: &[Group]) -> FxHashSet<Vec<u8>> {
    groups.iter().flat_map(|g| g.paths[1..].iter().cloned()).collect()
}

/// The identity of SOURCE's (local) file at `rel`.
pub fn source_stat(source: &dyn Source) -> impl Fn(&[u8]) -> Option<FileId> + '_ {
    move |rel: &[u8]| {
        let local = source.local()?;
        let (dir, name) = split_last(rel);
        let fd = local.open_dir(dir).ok()?;
        let st = crate::sys::stat_at(std::os::fd::AsFd::as_fd(&fd), name).ok()?;
        let (kind, _) = crate::sys::from_stat(&st);
        #[allow(clippy::unnecessary_cast)]
        (kind == crate::sys::RawKind::File).then_some((
            st.st_dev as u64,
            st.st_ino as u64,
            st.st_nlink as u64,
        ))
    }
}

/// The identity of DEST's file at `rel`.
pub fn dest_stat(dest: &dyn Dest) -> impl Fn(&[u8]) -> Option<FileId> + '_ {
    move |rel: &[u8]| dest.file_id(rel).ok().flatten()
}

/// The work after a plan: DEST's names made to share inodes as SOURCE's do.
pub struct LinkPass<'a> {
    pub source: &'a dyn Source,
    pub dest: &'a dyn Dest,
    pub rep: &'a Reporter,
    pub dry_run: bool,
    pub failures: &'a Failures,
    pub opts: crate::apply::ApplyOptions,
}

impl LinkPass<'_> {
    /// [`LinkPass::breaks`], then [`LinkPass::link`]; the DEST directories changed get
    /// SOURCE's mtimes (and attributes) back.
    pub fn run(&self, dest_groups: &[Group], groups: &[Group]) {
        let mut touched = FxHashSet::default();
        self.breaks(dest_groups, groups, &mut touched);
        self.link(groups, &mut touched);
        if self.dry_run {
            return;
        }
        let mut dirs: Vec<Vec<u8>> = touched.into_iter().collect();
        dirs.sort();
        for dir in dirs {
            let Ok(Some(e)) = self.source_entry(&dir) else { continue };
            let dp = DirPlan { ops: Vec::new(), set_meta: Some(e.meta), meta_changed: false };
            if let Err(err) = self.dest.apply(&dp, &dir, self.source, self.rep, self.opts) {
                self.rep.error(Side::Dest, &dir, &crate::sys::describe(&err));
                self.failures.failed(&dir);
            }
        }
    }

    /// DEST names that share an inode (`dest_groups`, DEST paths) where SOURCE's
    /// `groups` do not: all but the first part (by SOURCE group) are copied afresh, so
    /// that they get inodes of their own. Copies are reported as changes.
    fn breaks(&self, dest_groups: &[Group], groups: &[Group], touched: &mut FxHashSet<Vec<u8>>) {
        let mut group_of: FxHashMap<&[u8], usize> = FxHashMap::default();
        for (i, g) in groups.iter().enumerate() {
            for p in &g.paths {
                group_of.insert(p, i);
            }
        }
        let dstat = dest_stat(self.dest);
        for dg in dest_groups {
            // Still sharing an inode in DEST?
            let Some(id) = dstat(dg.leader()) else { continue };
            let mut kept: Option<Option<usize>> = None;
            for p in &dg.paths {
                if dstat(p).map(|d| (d.0, d.1)) != Some((id.0, id.1)) {
                    continue;
                }
                let part = group_of.get(&p[..]).copied();
                match kept {
                    None => kept = Some(part),
                    Some(k) if k == part && part.is_some() => {}
                    Some(_) => self.copy_afresh(p, touched),
                }
            }
        }
    }

    /// Copies SOURCE's file `rel` over DEST's, through a temporary (a new inode).
    fn copy_afresh(&self, rel: &[u8], touched: &mut FxHashSet<Vec<u8>>) {
        let Ok(Some(e)) = self.source_entry(rel) else { return };
        if !matches!(e.kind, Kind::File(_)) {
            return;
        }
        let (dir, name) = split_last(rel);
        let op = Op::Copy { name: name.into(), meta: e.meta, new: false };
        if self.dry_run {
            self.rep.change(rel, &ChangeKind::Copy { bytes: e.meta.size });
            return;
        }
        touched.insert(dir.to_vec());
        let dp = DirPlan { ops: vec![op], set_meta: None, meta_changed: false };
        match self.dest.apply(&dp, dir, self.source, self.rep, self.opts) {
            Ok(outcome) => {
                for p in outcome.failed.iter().chain(&outcome.not_done) {
                    self.failures.failed(p);
                }
            }
            Err(e) => {
                self.rep.error(Side::Dest, rel, &crate::sys::describe(&e));
                self.failures.failed(rel);
            }
        }
    }

    /// DEST's leader has another size or mtime than SOURCE's file.
    fn leader_stale(&self, leader: &[u8]) -> bool {
        match (self.source_entry(leader), self.dest.entry(leader)) {
            (Ok(Some(s)), Ok(Some(d))) => {
                matches!(d.kind, Kind::File(_))
                    && (s.meta.size != d.meta.size || s.meta.mtime_ns() != d.meta.mtime_ns())
            }
            _ => false,
        }
    }

    /// SOURCE's file `rel`'s attributes now.
    pub fn source_meta(&self, rel: &[u8]) -> Option<crate::sys::Meta> {
        match self.source_entry(rel) {
            Ok(Some(e)) if matches!(e.kind, Kind::File(_)) => Some(e.meta),
            _ => None,
        }
    }

    fn source_entry(&self, rel: &[u8]) -> io::Result<Option<Entry>> {
        let Some(local) = self.source.local() else { return Ok(None) };
        if rel.is_empty() {
            let fd = local.open()?;
            let (_, meta) = crate::sys::from_stat(&crate::sys::fstat(std::os::fd::AsFd::as_fd(&fd))?);
            return Ok(Some(Entry { name: Box::default(), meta, kind: Kind::Dir(Vec::new()) }));
        }
        let (dir, name) = split_last(rel);
        let fd = local.open_dir(dir)?;
        crate::snapshot::entry_at(std::os::fd::AsFd::as_fd(&fd), name)
    }

    /// Links every follower of `groups` whose DEST entry is not its leader's inode.
    fn link(&self, groups: &[Group], touched: &mut FxHashSet<Vec<u8>>) {
        let dstat = dest_stat(self.dest);
        for g in groups {
            if crate::sys::stopping() {
                return;
            }
            let leader = g.leader();
            if !self.dry_run && self.leader_stale(leader) {
                // A member was rewritten through another name (watch mode copied
                // that one): the leader takes the new contents, the others follow.
                self.copy_afresh(leader, touched);
            }
            let lid = dstat(leader).map(|d| (d.0, d.1));
            if lid.is_none() && !self.dry_run {
                // Its copy failed (reported) or it is not a file in DEST: nothing to link to.
                continue;
            }
            for m in &g.paths[1..] {
                if lid.is_some() && dstat(m).map(|d| (d.0, d.1)) == lid {
                    continue;
                }
                let change = ChangeKind::Hardlink { target: leader.into() };
                if self.dry_run {
                    self.rep.change(m, &change);
                    continue;
                }
                touched.insert(split_last(m).0.to_vec());
                match self.dest.hard_link(leader, m, self.opts.backup) {
                    Ok(()) => self.rep.change(m, &change),
                    Err(e) => {
                        self.rep.error(Side::Dest, m, &crate::sys::describe(&e));
                        self.failures.failed(m);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Meta;

    fn file(name: &str, ino: u64) -> Entry {
        Entry { name: name.as_bytes().into(), meta: Meta { ino, ..Meta::default() }, kind: Kind::File(None) }
    }

    #[test]
    fn groups_in_walk_order_confirmed_by_stat() {
        let entries = vec![
            file("a", 7),
            Entry {
                name: b"d".to_vec().into(),
                meta: Meta::default(),
                kind: Kind::Dir(vec![file("b", 7), file("c", 9), file("e", 9)]),
            },
            file("z", 7),
            file("y", 3),
        ];
        // d/c and d/e share an inode number but are on different devices.
        let stat = |p: &[u8]| -> Option<FileId> {
            Some(match p {
                b"d/c" => (1, 9, 2),
                b"d/e" => (2, 9, 2),
                _ => (1, 7, 3),
            })
        };
        let g = groups(&entries, b"", &stat);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].paths, vec![b"a".to_vec(), b"d/b".to_vec(), b"z".to_vec()]);
        assert_eq!(followers(&g).len(), 2);
    }
}
