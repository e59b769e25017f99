//! Snapshots: what one side of the mirror holds, as a tree of sorted directory listings.
//!
//! A [`Snapshot`] records, for every entry below a root, its name, kind (file, directory
//! with its children, symlink with its target, special file), size, mtime to the
//! nanosecond, permission bits, owner and inode. Scanning walks a tree in parallel on the
//! rayon pool: one task per directory, entries stat'ed through the open directory
//! (`fstatat`), wide directories stat'ed in parallel batches. Symlinks are never followed
//! and special files are recorded but never opened.
//!
//! The tree shape (children sorted by name, per directory) lets the planner diff two
//! snapshots directory by directory without any global map.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::ignore::{self, Chain, Hit, PatternError, RuleFile, Rules};
use crate::lock::{into_inner, lock};
use crate::relpath::{join, rel_path};
use crate::sys::{self, Meta, RawKind};

/// A content digest (BLAKE3), computed only with `--checksum`.
pub type Digest = [u8; 32];

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file; the digest is filled in only when contents are compared.
    File(Option<Box<Digest>>),
    /// A directory and its children, sorted by name.
    Dir(Vec<Entry>),
    /// A symbolic link and its target, as stored (never resolved).
    Symlink(Box<[u8]>),
    /// A FIFO, socket or device: recorded, never opened or copied.
    Special(&'static str),
    /// A directory whose entries could not be read (permission denied, I/O error):
    /// whatever DEST holds there is left alone, since nothing is known of it.
    Unreadable,
    /// An entry that could not even be stat'ed (in a directory that can be listed but
    /// not searched): left alone on both sides.
    Unknown,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: Box<[u8]>,
    pub meta: Meta,
    pub kind: Kind,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_) | Kind::Unreadable)
    }

    pub fn children(&self) -> &[Entry] {
        match &self.kind {
            Kind::Dir(c) => c,
            _ => &[],
        }
    }

    /// Number of entries in this entry's subtree, itself included.
    pub fn count(&self) -> u64 {
        1 + self.children().iter().map(Entry::count).sum::<u64>()
    }
}

/// A scanned tree: the root directory's own attributes and its children.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub root: Meta,
    pub entries: Vec<Entry>,
    /// The `.syncignore` files found (SOURCE only), by directory (relative path).
    pub rule_files: RuleMap,
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root && self.entries == other.entries
    }
}

impl Snapshot {
    /// Number of entries below the root.
    pub fn count(&self) -> u64 {
        self.entries.iter().map(Entry::count).sum()
    }
}

/// A held directory listing as [`Scanner::unchanged_level`] compares it with SOURCE:
/// entries by index, sorted by name (watch mode's compact held tree implements it).
pub trait HeldLevel: Sync {
    /// Number of entries.
    fn held_len(&self) -> usize;
    /// The index of the entry named `name`.
    fn held_find(&self, name: &[u8]) -> Option<usize>;
    /// Whether entry `j` is a file, directory or symlink as `raw` says, with the
    /// attributes `meta` (fresh from a stat).
    fn held_same(&self, j: usize, raw: RawKind, meta: &Meta) -> bool;
}

/// Where a scan reports what it could not read, and the special files it skipped.
pub trait ScanSink: Sync {
    /// An entry or directory that could not be read; `path` is relative to the root.
    fn scan_error(&self, path: &[u8], err: &io::Error);
    /// A special file found (SOURCE side only): it will not be copied.
    fn special(&self, path: &[u8], what: &str);
    /// Progress: `n` more entries scanned.
    fn scanned(&self, _n: u64) {}
    /// A `.syncignore` line that cannot be parsed (the run must stop, exit 2).
    fn pattern_error(&self, _err: &PatternError) {}
    /// An entry left out by an ignore rule (only called when explanations are wanted).
    fn excluded(&self, _path: &[u8], _hit: &Hit<'_>) {}
}

/// What a scan needs to know about the side it walks.
#[derive(Clone, Copy)]
pub struct ScanOptions<'a> {
    /// Report special files (only useful for SOURCE).
    pub report_special: bool,
    pub sink: &'a dyn ScanSink,
    /// Ignore rules to apply (SOURCE only): `.syncignore` files are read and excluded
    /// entries are left out (excluded directories are not descended into).
    pub rules: Option<&'a Rules>,
    /// Report each excluded entry to the sink.
    pub explain: bool,
    /// Rule files in force before (watch mode): a `.syncignore` that no longer parses
    /// keeps its last good rules.
    pub previous_rules: Option<&'a RuleMap>,
    /// DEST side: judge entries by these (SOURCE's) rule files instead of reading
    /// `.syncignore` files, keep every entry, but do not read excluded directories
    /// (recorded as [`Kind::Unreadable`]: they are protected and left alone anyway).
    pub prune: Option<&'a RuleMap>,
    /// `-x` (SOURCE only): the root's device. A directory on another one (a mount
    /// point) is listed as empty.
    pub one_file_system: Option<u64>,
}

/// One scan: options plus the `.syncignore` files found so far. Scans a whole tree
/// ([`scan`]), a subtree ([`Scanner::subtree`]) or one directory level
/// ([`Scanner::level`], for watch mode's refreshes).
pub struct Scanner<'a> {
    opts: ScanOptions<'a>,
    found: Mutex<RuleMap>,
}

/// The `.syncignore` files of a SOURCE tree, by directory path relative to SOURCE.
pub type RuleMap = FxHashMap<Vec<u8>, Arc<RuleFile>>;

/// Scans the tree under `root`. Fails only when the root itself cannot be opened;
/// everything below is best-effort with errors reported through the sink.
pub fn scan(root: &Path, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
    let fd = sys::open_root(root)?;
    let (_, meta) = sys::from_stat(&sys::fstat(fd.as_fd())?);
    let scanner = Scanner::new(opts);
    let entries = scanner
        .subtree(fd, b"", &Vec::new())
        .ok_or_else(|| io::Error::new(io::ErrorKind::PermissionDenied, "cannot list its entries"))?;
    Ok(Snapshot { root: meta, entries, rule_files: scanner.into_rule_files() })
}

/// Entries per parallel stat batch in wide directories.
const STAT_BATCH: usize = 64;

impl<'a> Scanner<'a> {
    pub fn new(opts: ScanOptions<'a>) -> Self {
        Scanner { opts, found: Mutex::new(FxHashMap::default()) }
    }

    /// Reports an error for `path` to the scan's sink.
    pub fn error(&self, path: &[u8], err: &io::Error) {
        self.opts.sink.scan_error(path, err);
    }

    /// The `.syncignore` files read so far by this scanner in subtree `rel`.
    pub fn rule_files_below(&self, rel: &[u8]) -> Vec<(Vec<u8>, Arc<RuleFile>)> {
        lock(&self.found)
            .iter()
            .filter(|(k, _)| crate::relpath::is_within(k, rel))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The `.syncignore` files read by this scanner.
    pub fn into_rule_files(self) -> RuleMap {
        into_inner(self.found)
    }

    /// Reads one directory level (already open): its entries, stat'ed, excluded ones
    /// left out, sorted by name, directories without children. Also returns the rule
    /// chain in force inside it (with its own `.syncignore`, if any, which is recorded).
    /// `Err` when the directory cannot be listed (already reported).
    pub fn level(&self, dir: BorrowedFd<'_>, rel: &[u8], chain: &Chain) -> Result<(Vec<Entry>, Chain), ()> {
        self.level_of(dir, rel, chain, true)
    }

    /// [`Scanner::level`] where, unless `stat_files`, regular files whose directory
    /// entry says so are not stat'ed: their attributes are left empty (zero). For a
    /// level copied whole into a directory DEST does not have, whose copies read the
    /// attributes from the open file anyway (a stat per file saved, about 6 % of a
    /// first mirror's kernel work on tmpfs).
    pub fn level_of(
        &self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        chain: &Chain,
        stat_files: bool,
    ) -> Result<(Vec<Entry>, Chain), ()> {
        let opts = self.opts;
        if let Some(dev) = opts.one_file_system {
            #[allow(clippy::unnecessary_cast)] // st_dev is not u64 everywhere
            let other = sys::fstat(dir).is_ok_and(|st| st.st_dev as u64 != dev);
            if other {
                return Ok((Vec::new(), chain.clone()));
            }
        }
        let mut names = match sys::list_dir(dir) {
            Ok(n) => n,
            Err(e) => {
                opts.sink.scan_error(rel, &e);
                return Err(());
            }
        };
        let mut chain = chain.clone();
        if let (Some(_), Some(fixed)) = (opts.rules, opts.prune) {
            if let Some(file) = fixed.get(rel) {
                chain.push(file.clone());
            }
        } else if let Some(rules) = opts.rules {
            if names.iter().any(|(n, _)| &**n == ignore::IGNORE_FILE) {
                let file = match load_rules(dir, rel, opts.sink)? {
                    Some(file) => Some(Arc::new(file)),
                    None => opts.previous_rules.and_then(|m| m.get(rel)).cloned(),
                };
                if let Some(file) = file {
                    lock(&self.found).insert(rel.to_vec(), file.clone());
                    chain.push(file);
                }
            }
            // Entries whose directory entry tells their kind are checked before any stat.
            names.retain(|(name, kind)| match kind {
                Some(k) => !self.is_excluded(rules, &chain, rel, name, *k == RawKind::Dir),
                None => true,
            });
        }
        // Names whose kind only the stat will tell, when rules must judge them after it.
        let unknown: Vec<Box<[u8]>> = match (opts.rules, opts.prune) {
            (Some(_), None) => names.iter().filter(|(_, k)| k.is_none()).map(|(n, _)| n.clone()).collect(),
            _ => Vec::new(),
        };
        // The names move into the entries (no copy per entry).
        let stat_one = |(name, kind): sys::Listed| match kind {
            Some(RawKind::File) if !stat_files => {
                Some(Entry { name, meta: Meta::default(), kind: Kind::File(None) })
            }
            _ => stat_entry(dir, rel, name, opts),
        };
        let mut entries: Vec<Entry> = if names.len() > STAT_BATCH {
            names.into_par_iter().with_min_len(STAT_BATCH).filter_map(stat_one).collect()
        } else {
            names.into_iter().filter_map(stat_one).collect()
        };
        if let (Some(rules), false) = (opts.rules, unknown.is_empty()) {
            entries.retain(|e| {
                !unknown.contains(&e.name) || !self.is_excluded(rules, &chain, rel, &e.name, e.is_dir())
            });
        }
        opts.sink.scanned(entries.len() as u64);
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        // Held for the whole watch session: no spare capacity.
        entries.shrink_to_fit();
        Ok((entries, chain))
    }

    /// Reads a whole subtree (its root already open), subdirectories in parallel.
    /// `rel` is its path relative to the scan root, `chain` the rules in force above it.
    /// `None` when the directory itself cannot be listed; subdirectories that cannot be
    /// read become [`Kind::Unreadable`].
    pub fn subtree(&self, dir: OwnedFd, rel: &[u8], chain: &Chain) -> Option<Vec<Entry>> {
        let (mut entries, chain) = self.level(dir.as_fd(), rel, chain).ok()?;
        let dfd = dir.as_fd();
        entries.par_iter_mut().filter(|e| e.is_dir()).for_each(|e| {
            let path = join(rel, &e.name);
            if self.prunes(&chain, &path) {
                e.kind = Kind::Unreadable;
                return;
            }
            match sys::open_dir_at(dfd, &e.name) {
                Ok(sub) => {
                    e.kind = match self.subtree(sub, &path, &chain) {
                        Some(children) => Kind::Dir(children),
                        None => Kind::Unreadable,
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    self.opts.sink.scan_error(&path, &err);
                    e.kind = Kind::Unreadable;
                }
            }
        });
        Some(entries)
    }

    /// For a listing that comes with every entry's attributes (SFTP's READDIR): true
    /// when this level's `.syncignore` (a regular file among `entries`) must be read,
    /// its contents then handed to [`Scanner::judge`].
    pub fn reads_rule_file(&self, entries: &[Entry]) -> bool {
        self.opts.rules.is_some()
            && self.opts.prune.is_none()
            && entries.iter().any(|e| &*e.name == ignore::IGNORE_FILE && matches!(e.kind, Kind::File(_)))
    }

    /// [`Scanner::level`] for a listing whose entries are complete (kinds and
    /// attributes known): the rule chain inside `rel`, excluded entries left out (and
    /// explained), special files reported, entries sorted. `rule_text`: the level's
    /// `.syncignore` when [`Scanner::reads_rule_file`] asked for it (`Ok(None)`: gone).
    /// `Err` when that file cannot be read (reported; the level cannot be judged).
    pub fn judge(
        &self,
        rel: &[u8],
        chain: &Chain,
        mut entries: Vec<Entry>,
        rule_text: Option<io::Result<Option<Vec<u8>>>>,
    ) -> Result<(Vec<Entry>, Chain), ()> {
        let opts = self.opts;
        let mut chain = chain.clone();
        if let (Some(_), Some(fixed)) = (opts.rules, opts.prune) {
            if let Some(file) = fixed.get(rel) {
                chain.push(file.clone());
            }
        } else if let Some(rules) = opts.rules {
            let parsed = match rule_text {
                None | Some(Ok(None)) => None,
                Some(Ok(Some(text))) => Some(parse_rules(rel, &text, opts.sink)),
                Some(Err(e)) => {
                    opts.sink.scan_error(&join(rel, ignore::IGNORE_FILE), &e);
                    return Err(());
                }
            };
            if let Some(parsed) = parsed {
                let file = match parsed {
                    Some(file) => Some(Arc::new(file)),
                    None => opts.previous_rules.and_then(|m| m.get(rel)).cloned(),
                };
                if let Some(file) = file {
                    lock(&self.found).insert(rel.to_vec(), file.clone());
                    chain.push(file);
                }
            }
            entries.retain(|e| !self.is_excluded(rules, &chain, rel, &e.name, e.is_dir()));
        }
        if opts.report_special {
            for e in &entries {
                if let Kind::Special(what) = e.kind {
                    opts.sink.special(&join(rel, &e.name), what);
                }
            }
        }
        opts.sink.scanned(entries.len() as u64);
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        entries.shrink_to_fit();
        Ok((entries, chain))
    }

    /// True when directory `path` (inside a level whose rules are `chain`) is not to
    /// be read: a DEST scan keeps out of what SOURCE's rules exclude.
    pub fn prunes(&self, chain: &Chain, path: &[u8]) -> bool {
        let prune = self.opts.prune.and(self.opts.rules);
        prune.is_some_and(|rules| rules.excluded(chain, rel_path(path), true))
    }

    /// Watch mode's idle check of one SOURCE directory level (open as `dir`, its own
    /// attributes already found unchanged): whether it still holds exactly `held`
    /// (sorted by name), every entry of the same kind with the same attributes, and
    /// nothing else but entries the rules leave out. It lists and stats as
    /// [`Scanner::level`] does but builds nothing and allocates nothing per entry: an
    /// unchanged tree is checked in place. Returns the rule chain in force inside `rel`
    /// (an unchanged `.syncignore` keeps the rules read from it) and that rule file, to
    /// be recorded by [`Scanner::keep_level`]; `None` when anything differs or cannot
    /// be judged this cheaply (the caller then reads the level in full).
    pub fn unchanged_level(
        &self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        chain: &Chain,
        held: &dyn HeldLevel,
    ) -> Option<(Chain, Option<Arc<RuleFile>>)> {
        let opts = self.opts;
        let rules = opts.rules?;
        if opts.explain || opts.one_file_system.is_some() || opts.prune.is_some() {
            return None;
        }
        let find = |name: &[u8]| held.held_find(name);
        let mut chain = chain.clone();
        let kept = match find(ignore::IGNORE_FILE) {
            Some(_) => {
                let file = opts.previous_rules?.get(rel)?.clone();
                chain.push(file.clone());
                Some(file)
            }
            None => None,
        };
        let mut matched = 0usize;
        let mut path = Vec::new();
        let all = sys::each_name(dir, |name, kind| {
            let name = name.to_bytes();
            match find(name) {
                Some(j) => {
                    let Ok(st) = sys::stat_at(dir, name) else { return false };
                    let (raw, meta) = sys::from_stat(&st);
                    matched += 1;
                    held.held_same(j, raw, &meta)
                }
                // Not held: no change only if the rules leave it out (a `.syncignore`
                // that appeared changes the rules themselves).
                None if name == ignore::IGNORE_FILE => false,
                None => {
                    let Some(kind) = kind else { return false };
                    path.clear();
                    path.extend_from_slice(rel);
                    if !rel.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(name);
                    rules.excluded(&chain, rel_path(&path), kind == RawKind::Dir)
                }
            }
        })
        .ok()?;
        (all && matched == held.held_len()).then_some((chain, kept))
    }

    /// Records a level that [`Scanner::unchanged_level`] found unchanged: its rule
    /// file, and its `entries` as scanned.
    pub fn keep_level(&self, rel: &[u8], rule_file: Option<Arc<RuleFile>>, entries: usize) {
        if let Some(file) = rule_file {
            lock(&self.found).insert(rel.to_vec(), file);
        }
        self.opts.sink.scanned(entries as u64);
    }

    fn is_excluded(&self, rules: &Rules, chain: &Chain, rel: &[u8], name: &[u8], is_dir: bool) -> bool {
        let path = join(rel, name);
        match rules.check(chain, rel_path(&path), is_dir) {
            Some(hit) if hit.excluded() => {
                if self.opts.explain {
                    self.opts.sink.excluded(&path, &hit);
                }
                true
            }
            _ => false,
        }
    }
}

/// Reads and parses the `.syncignore` of directory `rel`.
/// `Ok(None)`: no rules from it (not a regular file, gone, or patterns that do not
/// parse, which are reported as such). `Err`: it exists but cannot be read (reported);
/// the directory's entries cannot be judged, so the directory counts as unreadable.
pub fn load_rules(dir: BorrowedFd<'_>, rel: &[u8], sink: &dyn ScanSink) -> Result<Option<RuleFile>, ()> {
    let path = join(rel, ignore::IGNORE_FILE);
    let text = match sys::open_source_file(dir, ignore::IGNORE_FILE) {
        Ok((fd, _)) => {
            let mut buf = Vec::new();
            match std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut buf) {
                Ok(_) => buf,
                Err(e) => {
                    sink.scan_error(&path, &e);
                    return Err(());
                }
            }
        }
        // Not a regular file (a symlink, say): like git, read no rules from it.
        Err(e) if e.kind() == io::ErrorKind::Other => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            sink.scan_error(&path, &e);
            return Err(());
        }
    };
    Ok(parse_rules(rel, &text, sink))
}

/// Parses the `.syncignore` of directory `rel`; `None` (reported) when its patterns
/// do not parse.
fn parse_rules(rel: &[u8], text: &[u8], sink: &dyn ScanSink) -> Option<RuleFile> {
    let origin = String::from_utf8_lossy(&join(rel, ignore::IGNORE_FILE)).into_owned();
    match RuleFile::parse(rel_path(rel), &origin, &String::from_utf8_lossy(text)) {
        Ok(f) => Some(f),
        Err(e) => {
            sink.pattern_error(&e);
            None
        }
    }
}

/// The entry `name` of directory `dir` as it is now (a directory without children);
/// `None` when there is none.
pub fn entry_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<Entry>> {
    let st = match sys::stat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (raw, meta) = sys::from_stat(&st);
    let kind = match raw {
        RawKind::File => Kind::File(None),
        RawKind::Dir => Kind::Dir(Vec::new()),
        RawKind::Symlink => match sys::read_link_at(dir, name) {
            Ok(t) => Kind::Symlink(t.into_boxed_slice()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        },
        RawKind::Special(what) => Kind::Special(what),
    };
    Ok(Some(Entry { name: name.into(), meta, kind }))
}

/// Stats one entry; `None` when it vanished or could not be read (reported).
fn stat_entry(dir: BorrowedFd<'_>, rel: &[u8], name: Box<[u8]>, opts: ScanOptions<'_>) -> Option<Entry> {
    let st = match sys::stat_at(dir, &name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None, // vanished: simply absent
        Err(e) => {
            opts.sink.scan_error(&join(rel, &name), &e);
            // It exists, but what it is is unknown: DEST's counterpart must stay.
            return Some(Entry { name, meta: Meta::default(), kind: Kind::Unknown });
        }
    };
    let (raw, meta) = sys::from_stat(&st);
    let kind = match raw {
        RawKind::File => Kind::File(None),
        RawKind::Dir => Kind::Dir(Vec::new()),
        RawKind::Symlink => match sys::read_link_at(dir, &name) {
            Ok(t) => Kind::Symlink(t.into_boxed_slice()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                opts.sink.scan_error(&join(rel, &name), &e);
                return None;
            }
        },
        RawKind::Special(what) => {
            if opts.report_special {
                opts.sink.special(&join(rel, &name), what);
            }
            Kind::Special(what)
        }
    };
    Some(Entry { name, meta, kind })
}

/// With `--checksum`: computes digests for every pair of regular files at the same path
/// in directory `rel` of both trees (open as `sfd` and `dfd`) and below, whose sizes
/// are equal (files of different sizes differ anyway).
pub fn digest_dir(
    sfd: BorrowedFd<'_>,
    src: &mut [Entry],
    dfd: BorrowedFd<'_>,
    dst: &mut [Entry],
    rel: &[u8],
    sink: &dyn ScanSink,
) {
    // Pair entries by name (both sorted).
    let mut pairs: Vec<(&mut Entry, &mut Entry)> = Vec::new();
    let mut di = dst.iter_mut().peekable();
    for s in src.iter_mut() {
        while di.peek().is_some_and(|d| d.name < s.name) {
            di.next();
        }
        if di.peek().is_some_and(|d| d.name == s.name) {
            if let Some(d) = di.next() {
                pairs.push((s, d));
            }
        }
    }
    pairs.into_par_iter().for_each(|(s, d)| {
        let path = join(rel, &s.name);
        match (&mut s.kind, &mut d.kind) {
            (Kind::File(sd), Kind::File(dd)) if s.meta.size == d.meta.size => {
                match (hash_file(sfd, &s.name), hash_file(dfd, &d.name)) {
                    (Ok(a), Ok(b)) => {
                        *sd = Some(Box::new(a));
                        *dd = Some(Box::new(b));
                    }
                    (Err(e), _) | (_, Err(e)) => sink.scan_error(&path, &e),
                }
            }
            (Kind::Dir(sc), Kind::Dir(dc)) => {
                match (sys::open_dir_at(sfd, &s.name), sys::open_dir_at(dfd, &d.name)) {
                    (Ok(a), Ok(b)) => digest_dir(a.as_fd(), sc, b.as_fd(), dc, &path, sink),
                    (Err(e), _) | (_, Err(e)) => sink.scan_error(&path, &e),
                }
            }
            _ => {}
        }
    });
}

/// [`digest_dir`] for trees that are not both local: the digests of same-size file
/// pairs at the same path, computed by `source` and `dest` (relative paths).
pub fn digest_pairs(
    src: &mut [Entry],
    dst: &mut [Entry],
    rel: &[u8],
    sink: &dyn ScanSink,
    source: &(dyn Fn(&[u8]) -> io::Result<Digest> + Sync),
    dest: &(dyn Fn(&[u8]) -> io::Result<Digest> + Sync),
) {
    let mut pairs: Vec<(&mut Entry, &mut Entry)> = Vec::new();
    let mut di = dst.iter_mut().peekable();
    for s in src.iter_mut() {
        while di.peek().is_some_and(|d| d.name < s.name) {
            di.next();
        }
        if let Some(d) = di.next_if(|d| d.name == s.name) {
            pairs.push((s, d));
        }
    }
    // In parallel: over SFTP each digest is a few round trips.
    pairs.into_par_iter().for_each(|(s, d)| {
        let path = join(rel, &s.name);
        match (&mut s.kind, &mut d.kind) {
            (Kind::File(sd), Kind::File(dd)) if s.meta.size == d.meta.size => {
                match (source(&path), dest(&path)) {
                    (Ok(a), Ok(b)) => {
                        *sd = Some(Box::new(a));
                        *dd = Some(Box::new(b));
                    }
                    (Err(e), _) | (_, Err(e)) => sink.scan_error(&path, &e),
                }
            }
            (Kind::Dir(sc), Kind::Dir(dc)) => digest_pairs(sc, dc, &path, sink, source, dest),
            _ => {}
        }
    });
}

fn hash_file(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Digest> {
    let (fd, _) = sys::open_source_file(dir, name)?;
    let mut file = std::fs::File::from(fd);
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut file)?;
    Ok(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn entry_stays_compact() {
        let size = std::mem::size_of::<super::Entry>();
        eprintln!("Entry is {size} bytes");
        assert!(size <= 96, "Entry grew to {size} bytes; watch mode holds one per SOURCE entry");
    }
}
