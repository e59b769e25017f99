//! The held tree: what DEST holds as of the last sync, as a [`Snapshot`] recorded with
//! SOURCE's attributes and inodes, and the lookups the mirror makes in it.

use crate::relpath::{is_within, split_last};
use crate::snapshot::{Entry, Kind, RuleMap, Snapshot};
use crate::sys::Meta;

/// The held directory `rel`: its attributes and entries.
pub fn dir_mut<'a>(held: &'a mut Snapshot, rel: &[u8]) -> Option<(&'a mut Meta, &'a mut Vec<Entry>)> {
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

/// The held directory `rel`: its attributes and entries.
pub fn find_dir<'a>(held: &'a Snapshot, rel: &[u8]) -> Option<(&'a Meta, &'a [Entry])> {
    if rel.is_empty() {
        return Some((&held.root, &held.entries));
    }
    match find(held, rel)? {
        Entry { meta, kind: Kind::Dir(children), .. } => Some((meta, children)),
        _ => None,
    }
}

/// The held entry at `rel`.
pub fn find<'a>(held: &'a Snapshot, rel: &[u8]) -> Option<&'a Entry> {
    let mut entries = &held.entries[..];
    let mut found = None;
    for comp in rel.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
        let i = entries.binary_search_by(|e| (*e.name).cmp(comp)).ok()?;
        let e = &entries[i];
        found = Some(e);
        entries = e.children();
    }
    found
}

/// The held listing that holds (or would hold) `rel`, and where `rel` is or would go
/// in it. `None` for the root or when the parent is not a held directory.
pub fn siblings_of<'a>(
    held: &'a mut Snapshot,
    rel: &[u8],
) -> Option<(&'a mut Vec<Entry>, Result<usize, usize>)> {
    if rel.is_empty() {
        return None;
    }
    let (dir, name) = split_last(rel);
    let (_, siblings) = dir_mut(held, dir)?;
    let at = siblings.binary_search_by(|e| (*e.name).cmp(name));
    Some((siblings, at))
}

/// Replaces the held directory `rel` (its attributes and entries). Returns what it
/// replaced, for the caller to drop where it costs nothing (a whole tree's entries
/// take a while to free).
pub fn put(held: &mut Snapshot, rel: &[u8], meta: Meta, entries: Vec<Entry>) -> Vec<Entry> {
    if rel.is_empty() {
        held.root = meta;
        return std::mem::replace(&mut held.entries, entries);
    }
    let name = split_last(rel).1;
    let e = Entry { name: name.into(), meta, kind: Kind::Dir(entries) };
    match siblings_of(held, rel) {
        Some((siblings, Ok(i))) => vec![std::mem::replace(&mut siblings[i], e)],
        Some((siblings, Err(i))) => {
            siblings.insert(i, e);
            Vec::new()
        }
        None => Vec::new(),
    }
}

/// The held entry at `rel`, to change.
pub fn find_mut<'a>(held: &'a mut Snapshot, rel: &[u8]) -> Option<&'a mut Entry> {
    match siblings_of(held, rel)? {
        (siblings, Ok(i)) => siblings.get_mut(i),
        (_, Err(_)) => None,
    }
}

/// Drops the held entry at `rel`, if any.
pub fn remove(held: &mut Snapshot, rel: &[u8]) {
    if let Some((siblings, Ok(i))) = siblings_of(held, rel) {
        siblings.remove(i);
    }
}

/// Marks a held entry as not known to be in DEST as SOURCE had it (its operation
/// failed, or was not done). It keeps its place and kind (an unreadable directory
/// stays one, so DEST's copy is still left alone), but its size, mtime and inode are
/// set to what no file system reports: it equals nothing SOURCE shows, so it is
/// copied (or read whole) again at the next look, and is never taken as the source of
/// a rename. (Sums of sizes are saturating for its sake: when it is the source side
/// of a repair, its planned copy counts `u64::MAX` bytes.)
pub fn distrust(e: &mut Entry) {
    e.meta.size = u64::MAX;
    e.meta.mtime_sec = i64::MIN;
    e.meta.ino = u64::MAX;
}

/// Forgets the rule files of `rel` and below.
pub fn forget_rules_below(map: &mut RuleMap, rel: &[u8]) {
    map.retain(|k, _| !is_within(k, rel));
}
