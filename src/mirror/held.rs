//! The held tree: what DEST holds as of the last sync, recorded with SOURCE's
//! attributes and inodes, in a compact form, and the lookups the mirror makes in it.
//!
//! A watcher holds one record per SOURCE entry for as long as it runs, so the form is
//! packed (issue 17: ≤ 80 bytes resident per entry at 1,000,000 entries):
//!
//! - [`Held`]: the root's attributes, the root's listing and SOURCE's rule files.
//! - [`Dir`]: one directory's listing, sorted by name, as four boxed slices with no
//!   spare capacity: fixed-size [`Slot`]s, the names back to back in one byte arena
//!   (name `j` runs from slot `j`'s offset to the next one's, so a name costs only its
//!   bytes and no allocation of its own, whatever its length), the listings of its
//!   subdirectories (in slot order) and a side table of rare data: symlink targets,
//!   and file digests under `--checksum`.
//! - [`Slot`]: 48 bytes: size, mtime (seconds and nanoseconds), inode, permission bits,
//!   owner, group, the name's offset, the kind, flags and one index (subdirectory, side
//!   table entry or special-file kind). `blocks` (allocated blocks) is not held: the
//!   copy that uses it stats its source afresh. Only whether a file is sparse (fewer
//!   blocks than its size needs) is kept, as a flag, and an entry as held comes back
//!   with the blocks its size needs, or 0 when sparse ([`as_held`]); fresh
//!   attributes are compared with held ones through that same form.
//!
//! A listing is never edited in place except for attributes: when a directory's
//! entries change, its `Dir` is built again (the cost of one directory's width, which
//! the planner pays anyway), moving the listings of its subdirectories over untouched.
//! So no arena ever holds garbage and there is nothing to compact: what a removed or
//! replaced entry held is freed with the old listing.
//!
//! The scanner and planner work on [`Entry`] listings: [`Dir::entry`] materializes
//! one entry (a directory without its children), [`Dir::entries`] a whole subtree,
//! only where the code needs one: a held directory that SOURCE removed or replaced
//! (its deletion is planned children first, and counted for `--max-delete`), a
//! rename's planning, a repair's directories missing in DEST. (`-H`'s link groups
//! are found in the slots themselves, [`Held::link_candidates`].) A
//! changed level is planned against its held listing materialized that way; an
//! unchanged one is not materialized at all. An idle poll cycle compares fresh stats
//! with the packed slots in place ([`HeldLevel`] for [`Scanner::unchanged_level`]),
//! allocating nothing per entry.
//!
//! Limits of the packing: the mode is held as 16 bits (every backend reports
//! permission bits only, `mode & 0o7777`); a special file's kind is one of the
//! scanners' five names ([`SPECIALS`]; another one would come back as "unknown file
//! type"); name offsets are 32 bits (a directory's names would need 4 GiB to exceed
//! them).
//!
//! [`Scanner::unchanged_level`]: crate::snapshot::Scanner::unchanged_level

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::relpath::{is_within, join, split_last};
#[cfg(test)]
use crate::snapshot::Snapshot;
use crate::snapshot::{Digest, Entry, HeldLevel, Kind, RuleMap};
use crate::sys::{Meta, RawKind};

/// The kinds of special files the scanners report (a slot keeps an index into this).
const SPECIALS: [&str; 5] = ["fifo", "socket", "character device", "block device", "unknown file type"];

const FILE: u8 = 0;
const DIR: u8 = 1;
const SYMLINK: u8 = 2;
const SPECIAL: u8 = 3;
const UNREADABLE: u8 = 4;
const UNKNOWN: u8 = 5;

/// Flag: fewer blocks allocated than the size needs.
const SPARSE: u8 = 1;
/// Flag: a file whose digest is in the side table (`aux`).
const DIGEST: u8 = 2;

/// One held entry, packed (its name is in its directory's arena).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    size: u64,
    mtime_sec: i64,
    ino: u64,
    mtime_nsec: u32,
    uid: u32,
    gid: u32,
    /// Where the name starts in the directory's arena.
    name_at: u32,
    /// Subdirectory index (directories), side-table index (symlinks, files with a
    /// digest) or special kind (index into [`SPECIALS`]).
    aux: u32,
    /// Permission bits (`mode & 0o7777`).
    mode: u16,
    kind: u8,
    flags: u8,
}

/// Whether `m` describes a sparse file (fewer blocks than its size needs).
fn sparse(m: &Meta) -> bool {
    m.blocks.saturating_mul(512) < m.size
}

/// `m` as the held tree keeps it: `blocks` reduced to whether the file is sparse
/// (0 when it is, the blocks its size needs when not). Fresh attributes are compared
/// with held ones in this form.
pub fn as_held(m: &Meta) -> Meta {
    let blocks = if sparse(m) { 0 } else { m.size.div_ceil(512) };
    Meta { blocks, ..*m }
}

impl Slot {
    fn new(m: &Meta, kind: u8, aux: u32, name_at: u32) -> Slot {
        let mut s = Slot { kind, aux, name_at, ..Slot::default() };
        s.set_meta(m);
        s
    }

    fn meta(&self) -> Meta {
        let m = Meta {
            size: self.size,
            mtime_sec: self.mtime_sec,
            mtime_nsec: self.mtime_nsec,
            mode: u32::from(self.mode),
            uid: self.uid,
            gid: self.gid,
            ino: self.ino,
            blocks: 0,
        };
        Meta { blocks: if self.flags & SPARSE != 0 { 0 } else { m.size.div_ceil(512) }, ..m }
    }

    fn set_meta(&mut self, m: &Meta) {
        self.size = m.size;
        self.mtime_sec = m.mtime_sec;
        self.mtime_nsec = m.mtime_nsec;
        // Permission bits only: every backend masks the mode with 0o7777.
        self.mode = (m.mode & 0xffff) as u16;
        self.uid = m.uid;
        self.gid = m.gid;
        self.ino = m.ino;
        self.flags = (self.flags & !SPARSE) | if sparse(m) { SPARSE } else { 0 };
    }

    /// Whether fresh attributes `m` are the held ones (compared as [`as_held`] has them).
    fn same(&self, m: &Meta) -> bool {
        self.size == m.size
            && self.mtime_sec == m.mtime_sec
            && self.mtime_nsec == m.mtime_nsec
            && u32::from(self.mode) == m.mode
            && self.uid == m.uid
            && self.gid == m.gid
            && self.ino == m.ino
            && (self.flags & SPARSE != 0) == sparse(m)
    }
}

/// One held directory's listing, sorted by name (see the module doc).
#[derive(Debug, Default)]
pub struct Dir {
    slots: Box<[Slot]>,
    names: Box<[u8]>,
    subdirs: Box<[Dir]>,
    rare: Box<[Box<[u8]>]>,
}

/// What an entry holds besides its attributes, as a listing is built.
enum Content<'a> {
    File(Option<&'a Digest>),
    Dir(Dir),
    Symlink(&'a [u8]),
    Special(&'static str),
    Unreadable,
    Unknown,
}

/// A listing being built (in name order).
#[derive(Default)]
struct Builder {
    slots: Vec<Slot>,
    names: Vec<u8>,
    subdirs: Vec<Dir>,
    rare: Vec<Box<[u8]>>,
}

impl Builder {
    fn with_capacity(n: usize, name_bytes: usize) -> Builder {
        Builder { slots: Vec::with_capacity(n), names: Vec::with_capacity(name_bytes), ..Builder::default() }
    }

    fn push(&mut self, name: &[u8], meta: &Meta, content: Content<'_>) {
        // (A directory's names would need 4 GiB to overflow this.)
        let name_at = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.extend_from_slice(name);
        let mut rare = |bytes: &[u8]| {
            self.rare.push(bytes.into());
            (self.rare.len() - 1) as u32
        };
        let (kind, aux, flags) = match content {
            Content::File(None) => (FILE, 0, 0),
            Content::File(Some(d)) => (FILE, rare(d), DIGEST),
            Content::Symlink(t) => (SYMLINK, rare(t), 0),
            Content::Special(what) => {
                let i = SPECIALS.iter().position(|s| *s == what).unwrap_or(SPECIALS.len() - 1);
                (SPECIAL, i as u32, 0)
            }
            Content::Unreadable => (UNREADABLE, 0, 0),
            Content::Unknown => (UNKNOWN, 0, 0),
            Content::Dir(d) => {
                self.subdirs.push(d);
                (DIR, (self.subdirs.len() - 1) as u32, 0)
            }
        };
        let mut slot = Slot::new(meta, kind, aux, name_at);
        slot.flags |= flags;
        self.slots.push(slot);
    }

    /// Moves held entry `j` of `old` over as it is (its subtree too; `old` is being
    /// rebuilt and left without it).
    fn push_held(&mut self, old: &mut Dir, j: usize) {
        let mut s = old.slots[j];
        let (start, end) = old.name_range(j);
        s.name_at = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.extend_from_slice(&old.names[start..end]);
        match s.kind {
            DIR => {
                let d = old.subdirs.get_mut(s.aux as usize).map(std::mem::take).unwrap_or_default();
                self.subdirs.push(d);
                s.aux = (self.subdirs.len() - 1) as u32;
            }
            SYMLINK | FILE if s.kind == SYMLINK || s.flags & DIGEST != 0 => {
                let r = old.rare.get_mut(s.aux as usize).map(std::mem::take).unwrap_or_default();
                self.rare.push(r);
                s.aux = (self.rare.len() - 1) as u32;
            }
            _ => {}
        }
        self.slots.push(s);
    }

    /// Adds an entry (a directory with its whole subtree).
    fn push_entry(&mut self, e: Entry) {
        let Entry { name, meta, kind } = e;
        match kind {
            Kind::Dir(children) => self.push(&name, &meta, Content::Dir(Dir::from_entries(children))),
            k => self.push(&name, &meta, content_of(&k)),
        }
    }

    fn finish(self) -> Dir {
        Dir {
            slots: self.slots.into_boxed_slice(),
            names: self.names.into_boxed_slice(),
            subdirs: self.subdirs.into_boxed_slice(),
            rare: self.rare.into_boxed_slice(),
        }
    }
}

/// What a (non-directory) kind holds.
fn content_of(k: &Kind) -> Content<'_> {
    match k {
        Kind::File(d) => Content::File(d.as_deref()),
        Kind::Dir(_) => Content::Dir(Dir::default()),
        Kind::Symlink(t) => Content::Symlink(t),
        Kind::Special(what) => Content::Special(what),
        Kind::Unreadable => Content::Unreadable,
        Kind::Unknown => Content::Unknown,
    }
}

impl Dir {
    /// The compact form of a listing (sorted by name) and of everything below it;
    /// subdirectories are converted in parallel, and the entries freed as they are.
    pub fn from_entries(entries: Vec<Entry>) -> Dir {
        let name_bytes = entries.iter().map(|e| e.name.len()).sum();
        let mut b = Builder::with_capacity(entries.len(), name_bytes);
        let mut rest = Vec::with_capacity(entries.len());
        let mut kids = Vec::new();
        for mut e in entries {
            if let Kind::Dir(c) = &mut e.kind {
                kids.push(std::mem::take(c));
            }
            rest.push(e);
        }
        let mut kids: std::vec::IntoIter<Dir> = if kids.len() > 1 {
            kids.into_par_iter().map(Dir::from_entries).collect::<Vec<_>>().into_iter()
        } else {
            kids.into_iter().map(Dir::from_entries).collect::<Vec<_>>().into_iter()
        };
        for e in rest {
            match e.kind {
                Kind::Dir(_) => b.push(&e.name, &e.meta, Content::Dir(kids.next().unwrap_or_default())),
                ref k => b.push(&e.name, &e.meta, content_of(k)),
            }
        }
        b.finish()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The name of entry `j`.
    pub fn name(&self, j: usize) -> &[u8] {
        let (start, end) = self.name_range(j);
        &self.names[start..end]
    }

    /// Where the name of entry `j` is in the arena: from its offset to the next one's.
    fn name_range(&self, j: usize) -> (usize, usize) {
        let len = self.names.len();
        let end = self.slots.get(j + 1).map_or(len, |s| (s.name_at as usize).min(len));
        ((self.slots[j].name_at as usize).min(end), end)
    }

    /// The attributes of entry `j` (as [`as_held`] has them).
    pub fn meta(&self, j: usize) -> Meta {
        self.slots[j].meta()
    }

    /// Sets the attributes of entry `j`.
    pub fn set_meta(&mut self, j: usize, m: &Meta) {
        self.slots[j].set_meta(m);
    }

    /// The index of the entry named `name`.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        self.search(name).ok()
    }

    fn search(&self, name: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.slots.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// A directory, readable or not ([`Entry::is_dir`]).
    pub fn is_dir(&self, j: usize) -> bool {
        matches!(self.slots[j].kind, DIR | UNREADABLE)
    }

    /// A directory whose listing is held.
    pub fn is_listed_dir(&self, j: usize) -> bool {
        self.slots[j].kind == DIR
    }

    pub fn is_unreadable(&self, j: usize) -> bool {
        self.slots[j].kind == UNREADABLE
    }

    pub fn is_file(&self, j: usize) -> bool {
        self.slots[j].kind == FILE
    }

    /// The listing of subdirectory `j`.
    pub fn sub(&self, j: usize) -> Option<&Dir> {
        let s = &self.slots[j];
        (s.kind == DIR).then(|| self.subdirs.get(s.aux as usize)).flatten()
    }

    /// The listing of subdirectory `j`, to change.
    pub fn sub_mut(&mut self, j: usize) -> Option<&mut Dir> {
        let s = self.slots[j];
        if s.kind != DIR {
            return None;
        }
        self.subdirs.get_mut(s.aux as usize)
    }

    fn content(&self, j: usize) -> Content<'_> {
        let s = &self.slots[j];
        let rare = |i: u32| self.rare.get(i as usize).map_or(&[][..], |b| &b[..]);
        match s.kind {
            FILE if s.flags & DIGEST != 0 => Content::File(rare(s.aux).try_into().ok()),
            FILE => Content::File(None),
            DIR => Content::Dir(Dir::default()),
            SYMLINK => Content::Symlink(rare(s.aux)),
            SPECIAL => Content::Special(SPECIALS.get(s.aux as usize).copied().unwrap_or("unknown file type")),
            UNREADABLE => Content::Unreadable,
            _ => Content::Unknown,
        }
    }

    /// Entry `j`, a directory without its children.
    pub fn entry(&self, j: usize) -> Entry {
        let kind = match self.content(j) {
            Content::File(d) => Kind::File(d.map(|d| Box::new(*d))),
            Content::Dir(_) => Kind::Dir(Vec::new()),
            Content::Symlink(t) => Kind::Symlink(t.into()),
            Content::Special(what) => Kind::Special(what),
            Content::Unreadable => Kind::Unreadable,
            Content::Unknown => Kind::Unknown,
        };
        Entry { name: self.name(j).into(), meta: self.meta(j), kind }
    }

    /// Entry `j` with its whole subtree.
    pub fn entry_deep(&self, j: usize) -> Entry {
        let mut e = self.entry(j);
        if let Some(d) = self.sub(j) {
            e.kind = Kind::Dir(d.entries());
        }
        e
    }

    /// This level as entries, directories without their children.
    #[cfg(test)]
    pub fn listing(&self) -> Vec<Entry> {
        (0..self.len()).map(|j| self.entry(j)).collect()
    }

    /// This level as a one-level plan compares it with another side: the directories
    /// for which `still_dir` says the other side has a directory too without their
    /// children (only their own attributes are compared), every other entry whole (its
    /// deletion counts, and is planned, children first).
    pub fn planned_against(&self, still_dir: impl Fn(usize) -> bool) -> Vec<Entry> {
        (0..self.len()).map(|j| if still_dir(j) { self.entry(j) } else { self.entry_deep(j) }).collect()
    }

    /// This listing and everything below it, as entries.
    pub fn entries(&self) -> Vec<Entry> {
        (0..self.len()).map(|j| self.entry_deep(j)).collect()
    }

    /// Entries in this listing and below.
    pub fn count(&self) -> u64 {
        self.slots.len() as u64 + self.subdirs.iter().map(Dir::count).sum::<u64>()
    }

    /// Takes the listing of subdirectory `j` out (an empty one is left).
    pub fn take_sub(&mut self, j: usize) -> Dir {
        self.sub_mut(j).map(std::mem::take).unwrap_or_default()
    }

    /// This listing becomes `entries` (sorted by name): each with `Some(j)` is a
    /// directory that keeps held subdirectory `j`'s listing (its own attributes are
    /// the entry's), the others are taken as they are (directories with their
    /// subtrees).
    pub fn replace_listing(&mut self, entries: impl ExactSizeIterator<Item = (Entry, Option<usize>)>) {
        let mut b = Builder::with_capacity(entries.len(), self.names.len());
        for (e, keep) in entries {
            match keep {
                Some(j) => {
                    let sub = self.take_sub(j);
                    b.push(&e.name, &e.meta, Content::Dir(sub));
                }
                None => b.push_entry(e),
            }
        }
        *self = b.finish();
    }

    /// Builds this listing again with entry `name` replaced by `new` (added if
    /// absent, removed when `new` is `None`). Returns what was replaced.
    fn rebuild(&mut self, name: &[u8], new: Option<Entry>) -> Option<Dir> {
        let at = self.search(name);
        if at.is_err() && new.is_none() {
            return None;
        }
        let mut old = std::mem::take(self);
        let mut b = Builder::with_capacity(old.len() + 1, old.names.len() + name.len());
        let (skip, insert) = match at {
            Ok(j) => (Some(j), j),
            Err(i) => (None, i),
        };
        let mut new = new;
        let mut replaced = None;
        for j in 0..=old.len() {
            if j == insert {
                if let Some(e) = new.take() {
                    b.push_entry(e);
                }
            }
            if j == old.len() {
                break;
            }
            if Some(j) == skip {
                replaced = Some(old.take_sub(j));
                continue;
            }
            b.push_held(&mut old, j);
        }
        *self = b.finish();
        replaced
    }

    /// Calls `f(j, name, meta, listing)` for every subdirectory `j` with a held
    /// listing, in parallel; where it returns `Some((meta, r))`, `meta` becomes the
    /// subdirectory's attributes and `(j, r)` is returned (in listing order).
    pub fn par_each_subdir<R, F>(&mut self, f: F) -> Vec<(usize, R)>
    where
        R: Send,
        F: Fn(usize, &[u8], Meta, &mut Dir) -> Option<(Meta, R)> + Sync,
    {
        let mut owner = vec![usize::MAX; self.subdirs.len()];
        for (j, s) in self.slots.iter().enumerate() {
            if s.kind == DIR {
                if let Some(o) = owner.get_mut(s.aux as usize) {
                    *o = j;
                }
            }
        }
        let slots = &self.slots;
        let names = &self.names;
        let name_of = |j: usize| {
            let end = slots.get(j + 1).map_or(names.len(), |s| (s.name_at as usize).min(names.len()));
            &names[(slots[j].name_at as usize).min(end)..end]
        };
        let done: Vec<(usize, Meta, R)> = self
            .subdirs
            .par_iter_mut()
            .enumerate()
            .filter_map(|(k, d)| {
                let j = *owner.get(k)?;
                if j == usize::MAX {
                    return None;
                }
                let (m, r) = f(j, name_of(j), slots[j].meta(), d)?;
                Some((j, m, r))
            })
            .collect();
        done.into_iter()
            .map(|(j, m, r)| {
                self.slots[j].set_meta(&m);
                (j, r)
            })
            .collect()
    }

    /// Calls `f(path, ino)` for every regular file here (at `rel`) and below, in path
    /// order; `path()` makes the file's path.
    fn each_file(&self, rel: &[u8], f: &mut EachFile<'_>) {
        for (j, s) in self.slots.iter().enumerate() {
            match s.kind {
                FILE => f(&|| join(rel, self.name(j)), s.ino),
                DIR => {
                    if let Some(d) = self.sub(j) {
                        d.each_file(&join(rel, self.name(j)), f);
                    }
                }
                _ => {}
            }
        }
    }

    /// Adds the number of times each of `wanted`'s inodes is held here and below
    /// (symlinks aside) to `seen`.
    fn count_inos(&self, wanted: &FxHashSet<u64>, seen: &mut FxHashMap<u64, u32>) {
        for s in self.slots.iter() {
            if wanted.contains(&s.ino) && s.kind != SYMLINK {
                *seen.entry(s.ino).or_default() += 1;
            }
        }
        for d in self.subdirs.iter() {
            d.count_inos(wanted, seen);
        }
    }
}

impl HeldLevel for Dir {
    fn held_len(&self) -> usize {
        self.len()
    }

    fn held_find(&self, name: &[u8]) -> Option<usize> {
        self.find(name)
    }

    fn held_same(&self, j: usize, raw: RawKind, meta: &Meta) -> bool {
        let s = &self.slots[j];
        let same_kind = matches!(
            (s.kind, raw),
            (FILE, RawKind::File) | (DIR, RawKind::Dir) | (SYMLINK, RawKind::Symlink)
        );
        same_kind && s.same(meta)
    }
}

/// What [`Dir::each_file`] calls: `(path, ino)`, `path()` making the file's path.
type EachFile<'a> = dyn FnMut(&dyn Fn() -> Vec<u8>, u64) + 'a;

/// The held tree (see the module doc).
#[derive(Debug, Default)]
pub struct Held {
    root: Meta,
    top: Dir,
    /// The `.syncignore` files of SOURCE, by directory (relative path).
    pub rule_files: RuleMap,
}

impl Held {
    /// The compact form of a scanned tree (the snapshot is freed as it is converted).
    #[cfg(test)]
    pub fn from_snapshot(s: Snapshot) -> Held {
        Held { root: as_held(&s.root), top: Dir::from_entries(s.entries), rule_files: s.rule_files }
    }

    /// The whole tree as a snapshot.
    #[cfg(test)]
    pub fn to_snapshot(&self) -> Snapshot {
        Snapshot { root: self.root, entries: self.top.entries(), rule_files: self.rule_files.clone() }
    }

    /// Entries held below the root.
    pub fn count(&self) -> u64 {
        self.top.count()
    }

    /// The held directory `rel`: its attributes and listing.
    pub fn dir(&self, rel: &[u8]) -> Option<(Meta, &Dir)> {
        let mut meta = self.root;
        let mut dir = &self.top;
        for comp in rel.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
            let j = dir.find(comp)?;
            meta = dir.meta(j);
            dir = dir.sub(j)?;
        }
        Some((meta, dir))
    }

    /// The held directory `rel`: its attributes and listing, to change (its
    /// attributes are set with [`Held::set_meta`]).
    pub fn dir_mut(&mut self, rel: &[u8]) -> Option<(Meta, &mut Dir)> {
        let mut meta = self.root;
        let mut dir = &mut self.top;
        for comp in rel.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
            let j = dir.find(comp)?;
            meta = dir.meta(j);
            dir = dir.sub_mut(j)?;
        }
        Some((meta, dir))
    }

    /// The listing holding `rel` and `rel`'s index in it (`None` for the root, or
    /// when it is not held).
    fn parent_of(&mut self, rel: &[u8]) -> Option<(&mut Dir, usize)> {
        if rel.is_empty() {
            return None;
        }
        let (dir, name) = split_last(rel);
        let (_, d) = self.dir_mut(dir)?;
        let j = d.find(name)?;
        Some((d, j))
    }

    /// Sets the attributes of the held entry `rel` (the root's when empty).
    pub fn set_meta(&mut self, rel: &[u8], m: &Meta) {
        if rel.is_empty() {
            self.root = as_held(m);
        } else if let Some((d, j)) = self.parent_of(rel) {
            d.set_meta(j, m);
        }
    }

    /// `-H`: the attributes of held file `rel` become `m` (other kinds are left).
    pub fn set_file_meta(&mut self, rel: &[u8], m: &Meta) {
        if let Some((d, j)) = self.parent_of(rel) {
            if d.is_file(j) {
                d.set_meta(j, m);
            }
        }
    }

    /// The held entry at `rel` (a directory without its children).
    pub fn find(&self, rel: &[u8]) -> Option<Entry> {
        if rel.is_empty() {
            return None;
        }
        let (dir, name) = split_last(rel);
        let (_, d) = self.dir(dir)?;
        Some(d.entry(d.find(name)?))
    }

    /// The entries of held directory `rel`, with their subtrees.
    pub fn subtree(&self, rel: &[u8]) -> Vec<Entry> {
        self.dir(rel).map(|(_, d)| d.entries()).unwrap_or_default()
    }

    /// Replaces the held directory `rel` (its attributes and entries, whole). Returns
    /// what it replaced, for the caller to drop where it costs nothing.
    pub fn put(&mut self, rel: &[u8], meta: Meta, entries: Vec<Entry>) -> Dir {
        if rel.is_empty() {
            self.root = as_held(&meta);
            return std::mem::replace(&mut self.top, Dir::from_entries(entries));
        }
        let (dir, name) = split_last(rel);
        let Some((_, d)) = self.dir_mut(dir) else { return Dir::default() };
        let e = Entry { name: name.into(), meta, kind: Kind::Dir(entries) };
        d.rebuild(name, Some(e)).unwrap_or_default()
    }

    /// Drops the held entry at `rel`, if any.
    pub fn remove(&mut self, rel: &[u8]) {
        if rel.is_empty() {
            return;
        }
        let (dir, name) = split_last(rel);
        if let Some((_, d)) = self.dir_mut(dir) {
            d.rebuild(name, None);
        }
    }

    /// Marks a held entry as not known to be in DEST as SOURCE had it (its operation
    /// failed, or was not done). It keeps its place and kind (an unreadable directory
    /// stays one, so DEST's copy is still left alone), but its size, mtime and inode
    /// are set to what no file system reports: it equals nothing SOURCE shows, so it
    /// is copied (or read whole) again at the next look, and is never taken as the
    /// source of a rename. (Sums of sizes are saturating for its sake: when it is the
    /// source side of a repair, its planned copy counts `u64::MAX` bytes.)
    pub fn distrust(&mut self, rel: &[u8]) {
        let Some((d, j)) = self.parent_of(rel) else { return };
        let m = Meta { size: u64::MAX, mtime_sec: i64::MIN, ino: u64::MAX, ..d.meta(j) };
        d.set_meta(j, &m);
    }

    /// How many times each of `wanted`'s inodes is held (symlinks aside).
    pub fn count_inos(&self, wanted: &FxHashSet<u64>) -> FxHashMap<u64, u32> {
        let mut seen = FxHashMap::default();
        self.top.count_inos(wanted, &mut seen);
        seen
    }

    /// `-H`: the paths of held regular files whose inode number is held more than
    /// once (candidates for link groups), in path order.
    pub fn link_candidates(&self) -> Vec<Vec<u8>> {
        let mut seen: FxHashMap<u64, u32> = FxHashMap::default();
        self.top.each_file(b"", &mut |_, ino| *seen.entry(ino).or_default() += 1);
        let mut out = Vec::new();
        if seen.values().any(|n| *n > 1) {
            self.top.each_file(b"", &mut |path, ino| {
                if seen.get(&ino).is_some_and(|n| *n > 1) {
                    out.push(path());
                }
            });
        }
        out
    }

    /// Forgets the rule files of `rel` and below.
    pub fn forget_rules_below(&mut self, rel: &[u8]) {
        self.rule_files.retain(|k, _| !is_within(k, rel));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size: u64, mtime: i64, ino: u64) -> Meta {
        as_held(&Meta { size, mtime_sec: mtime, mtime_nsec: 7, mode: 0o644, uid: 1, gid: 2, ino, blocks: 8 })
    }

    fn file(name: &[u8], size: u64, ino: u64) -> Entry {
        Entry { name: name.into(), meta: meta(size, 100, ino), kind: Kind::File(None) }
    }

    fn dir(name: &[u8], ino: u64, children: Vec<Entry>) -> Entry {
        Entry { name: name.into(), meta: meta(4096, 50, ino), kind: Kind::Dir(children) }
    }

    fn sample() -> Snapshot {
        let long = vec![b'x'; 255];
        let mut digest = Box::new([0u8; 32]);
        digest[3] = 9;
        let mut entries = vec![
            file(b"a", 1, 10),
            dir(
                b"d",
                11,
                vec![dir(b"empty", 15, vec![]), file(b"f", 3, 12), dir(b"sub", 13, vec![file(b"g", 4, 14)])],
            ),
            Entry {
                name: b"link".as_slice().into(),
                meta: meta(6, 1, 16),
                kind: Kind::Symlink(b"../target".as_slice().into()),
            },
            Entry { name: b"sum".as_slice().into(), meta: meta(5, 1, 17), kind: Kind::File(Some(digest)) },
            Entry { name: b"fifo".as_slice().into(), meta: meta(0, 1, 18), kind: Kind::Special("fifo") },
            Entry { name: b"locked".as_slice().into(), meta: meta(0, 1, 19), kind: Kind::Unreadable },
            Entry { name: b"what".as_slice().into(), meta: Meta::default(), kind: Kind::Unknown },
            file(&long, 2, 20),
            file(b"\xff\xfe non-utf8", 7, 21),
            Entry {
                name: b"sparse".as_slice().into(),
                meta: as_held(&Meta { size: 1 << 20, blocks: 0, ..meta(0, 1, 22) }),
                kind: Kind::File(None),
            },
        ];
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot { root: meta(4096, 1, 2), entries, rule_files: RuleMap::default() }
    }

    #[test]
    fn slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 48);
    }

    #[test]
    fn a_tree_round_trips() {
        let s = sample();
        let h = Held::from_snapshot(s.clone());
        assert_eq!(h.to_snapshot(), s);
        assert_eq!(h.count(), s.count());
        let (_, top) = h.dir(b"").unwrap();
        assert_eq!(top.listing(), s.entries.iter().map(shallow).collect::<Vec<_>>());
        let (m, d) = h.dir(b"d").unwrap();
        assert_eq!(m, meta(4096, 50, 11));
        assert_eq!(d.entries(), s.entries.iter().find(|e| &*e.name == b"d").unwrap().children());
        assert_eq!(h.find(b"d/sub/g"), Some(file(b"g", 4, 14)));
        assert!(h.find(b"d/nope").is_none() && h.dir(b"a").is_none() && h.dir(b"d/f").is_none());
        let long = vec![b'x'; 255];
        assert_eq!(h.find(&long).unwrap().meta.size, 2);
        assert_eq!(h.find(b"\xff\xfe non-utf8").unwrap().meta.size, 7);
        assert_eq!(h.find(b"link").unwrap().kind, Kind::Symlink(b"../target".as_slice().into()));
        assert!(matches!(h.find(b"sum").unwrap().kind, Kind::File(Some(d)) if d[3] == 9));
    }

    fn shallow(e: &Entry) -> Entry {
        match e.kind {
            Kind::Dir(_) => Entry { kind: Kind::Dir(Vec::new()), ..e.clone() },
            _ => e.clone(),
        }
    }

    #[test]
    fn fresh_attributes_compare_as_held() {
        let fresh =
            Meta { size: 100, mtime_sec: 5, mtime_nsec: 1, mode: 0o600, uid: 3, gid: 4, ino: 9, blocks: 8 };
        let d = Dir::from_entries(vec![Entry {
            name: b"f".as_slice().into(),
            meta: fresh,
            kind: Kind::File(None),
        }]);
        assert!(d.held_same(0, RawKind::File, &fresh));
        assert!(!d.held_same(0, RawKind::Dir, &fresh));
        assert!(!d.held_same(0, RawKind::File, &Meta { mtime_nsec: 2, ..fresh }));
        // A file that became sparse (or stopped being) differs; other block counts do not.
        assert!(d.held_same(0, RawKind::File, &Meta { blocks: 16, ..fresh }));
        assert!(!d.held_same(0, RawKind::File, &Meta { size: 8192, blocks: 8, ..fresh }));
        assert_eq!(as_held(&fresh), d.meta(0));
    }

    #[test]
    fn entries_and_directories_are_inserted_replaced_and_removed() {
        let s = sample();
        let mut h = Held::from_snapshot(s.clone());
        // Insert a directory with a subtree in a nested listing.
        h.put(b"d/new", meta(4096, 60, 30), vec![file(b"x", 1, 31), dir(b"y", 32, vec![file(b"z", 2, 33)])]);
        assert_eq!(h.find(b"d/new/y/z"), Some(file(b"z", 2, 33)));
        assert_eq!(h.count(), s.count() + 4);
        // The other entries of that listing (and their subtrees) are untouched.
        assert_eq!(h.find(b"d/sub/g"), Some(file(b"g", 4, 14)));
        assert_eq!(h.find(b"d/f"), Some(file(b"f", 3, 12)));
        // Replace a directory whole: what it held is returned.
        let old = h.put(b"d/sub", meta(4096, 70, 40), vec![file(b"h", 5, 41)]);
        assert_eq!(old.entries(), vec![file(b"g", 4, 14)]);
        assert!(h.find(b"d/sub/g").is_none());
        assert_eq!(h.dir(b"d/sub").unwrap().0, meta(4096, 70, 40));
        // Remove a file and a directory.
        h.remove(b"d/new");
        h.remove(b"a");
        h.remove(b"not/there");
        assert!(h.find(b"a").is_none() && h.dir(b"d/new").is_none());
        // The root's listing was built again: what its other entries hold moved over.
        assert_eq!(h.find(b"link").unwrap().kind, Kind::Symlink(b"../target".as_slice().into()));
        assert!(matches!(h.find(b"sum").unwrap().kind, Kind::File(Some(d)) if d[3] == 9));
        assert_eq!(h.find(b"fifo").unwrap().kind, Kind::Special("fifo"));
        assert_eq!(h.find(b"d/sub/h"), Some(file(b"h", 5, 41)));
        assert_eq!(h.count(), s.count() - 1);
        // Replace the root.
        h.put(b"", meta(1, 1, 1), vec![file(b"only", 1, 50)]);
        assert_eq!(h.count(), 1);
        assert_eq!(h.to_snapshot().entries, vec![file(b"only", 1, 50)]);
    }

    #[test]
    fn a_level_replaced_keeps_the_listings_of_its_same_directories() {
        let mut h = Held::from_snapshot(sample());
        let (_, d) = h.dir_mut(b"d").unwrap();
        let sub = d.find(b"sub").unwrap();
        // SOURCE's level now: "empty" gone, "f" changed, "sub" the same directory
        // (attributes changed), "new" a directory read whole, "s" a symlink.
        let new = vec![
            (file(b"f", 30, 12), None),
            (dir(b"new", 60, vec![file(b"n", 1, 61)]), None),
            (
                Entry {
                    name: b"s".as_slice().into(),
                    meta: meta(1, 1, 62),
                    kind: Kind::Symlink(b"t".as_slice().into()),
                },
                None,
            ),
            (dir(b"sub", 13, vec![]), Some(sub)),
        ];
        d.replace_listing(new.into_iter());
        assert!(h.find(b"d/empty").is_none());
        assert_eq!(h.find(b"d/f").unwrap().meta.size, 30);
        assert_eq!(h.find(b"d/sub/g"), Some(file(b"g", 4, 14)));
        assert_eq!(h.find(b"d/new/n"), Some(file(b"n", 1, 61)));
        assert_eq!(h.find(b"d/s").unwrap().kind, Kind::Symlink(b"t".as_slice().into()));
        // The rest of the tree is untouched.
        assert_eq!(h.find(b"link").unwrap().kind, Kind::Symlink(b"../target".as_slice().into()));
        assert_eq!(h.count(), sample().count() - 1 + 3);
    }

    #[test]
    fn a_rename_is_a_removal_and_an_insertion() {
        let mut h = Held::from_snapshot(sample());
        let moved = h.dir(b"d").unwrap().1.entries();
        let m = h.dir(b"d").unwrap().0;
        h.remove(b"d");
        h.put(b"d/../e", m, Vec::new());
        h.remove(b"d/../e");
        h.put(b"e", m, moved.clone());
        assert!(h.dir(b"d").is_none());
        assert_eq!(h.subtree(b"e"), moved);
        assert_eq!(h.find(b"e/sub/g"), Some(file(b"g", 4, 14)));
    }

    #[test]
    fn attributes_change_in_place_and_distrust_matches_nothing() {
        let mut h = Held::from_snapshot(sample());
        h.set_meta(b"d/f", &meta(99, 5, 12));
        assert_eq!(h.find(b"d/f").unwrap().meta, meta(99, 5, 12));
        h.set_file_meta(b"d/sub", &meta(1, 1, 1));
        assert_eq!(h.dir(b"d/sub").unwrap().0, meta(4096, 50, 13));
        h.distrust(b"d/sub/g");
        let g = h.find(b"d/sub/g").unwrap();
        assert_eq!((g.meta.size, g.meta.mtime_sec, g.meta.ino), (u64::MAX, i64::MIN, u64::MAX));
        h.set_meta(b"", &meta(1, 2, 3));
        assert_eq!(h.dir(b"").unwrap().0, meta(1, 2, 3));
    }

    #[test]
    fn subdirectories_are_visited_in_parallel_and_their_attributes_set() {
        let mut h = Held::from_snapshot(sample());
        let (_, d) = h.dir_mut(b"d").unwrap();
        let seen =
            d.par_each_subdir(|_, name, m, sub| Some((Meta { size: 1, ..m }, (name.to_vec(), sub.len()))));
        let names: Vec<_> = seen.into_iter().map(|(_, r)| r).collect();
        assert_eq!(names, vec![(b"empty".to_vec(), 0), (b"sub".to_vec(), 1)]);
        assert_eq!(h.dir(b"d/sub").unwrap().0.size, 1);
    }

    #[test]
    fn link_candidates_are_the_files_whose_inode_is_held_twice() {
        let mut s = sample();
        let mut twin = file(b"twin", 3, 12);
        twin.meta.ino = 12;
        s.entries.push(twin);
        s.entries.push(Entry {
            name: b"zlink".as_slice().into(),
            meta: meta(1, 1, 12),
            kind: Kind::Symlink(b"x".as_slice().into()),
        });
        let h = Held::from_snapshot(s);
        assert_eq!(h.link_candidates(), vec![b"d/f".to_vec(), b"twin".to_vec()]);
        assert!(Held::from_snapshot(sample()).link_candidates().is_empty());
    }

    #[test]
    fn inodes_are_counted_without_symlinks() {
        let h = Held::from_snapshot(sample());
        let wanted: FxHashSet<u64> = [12, 16, 99].into_iter().collect();
        let seen = h.count_inos(&wanted);
        assert_eq!(seen.get(&12), Some(&1));
        assert_eq!(seen.get(&16), None);
    }
}
