//! Scanning an S3 prefix: ListObjectsV2 pages (the first two levels listed with a
//! delimiter, so that the sub-prefixes below them are then listed whole and at once),
//! the user metadata taken from the local cache where the listing shows an object
//! unchanged and read with HEAD (many at once) where it does not; the keys then
//! arranged into a tree and judged by the same [`Scanner`] as local scans.

use std::collections::BTreeMap;
use std::io;

use aws_sdk_s3::primitives::DateTime;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;

use super::cache::Cached;
use super::{read_metadata, ObjKind, S3Tree};
use crate::ignore::{Chain, IGNORE_FILE};
use crate::relpath::join;
use crate::snapshot::{Entry, Kind, ScanOptions, Scanner, Snapshot};
use crate::sys::Meta;

/// Levels listed with a delimiter before the sub-prefixes are listed whole.
const DELIMITED_LEVELS: usize = 2;

/// One listed object.
#[derive(Clone, Debug)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub modified: Option<(i64, u32)>,
}

fn time_of(t: Option<&DateTime>) -> Option<(i64, u32)> {
    t.map(|t| (t.secs(), t.subsec_nanos()))
}

/// The mode of a directory that has no marker (made by another tool).
const IMPLICIT_DIR_MODE: u32 = 0o755;
/// The mode of a file without `mode` metadata.
const DEFAULT_FILE_MODE: u32 = 0o644;

/// Lists `prefix`: every object below it (`delimited` levels with a delimiter first,
/// the sub-prefixes found then listed at once).
fn list_tree<'a>(
    tree: &'a S3Tree,
    prefix: String,
    delimited: usize,
) -> LocalBoxFuture<'a, io::Result<Vec<Listed>>> {
    async move {
        let (mut objects, prefixes) = list_page_all(tree, &prefix, delimited > 0).await?;
        let subs =
            crate::join::all(prefixes.into_iter().map(|p| list_tree(tree, p, delimited.saturating_sub(1))))
                .await;
        for s in subs {
            objects.extend(s?);
        }
        Ok(objects)
    }
    .boxed_local()
}

/// Every page of one listing: the objects, and the common prefixes (with a
/// delimiter).
pub async fn list_page_all(
    tree: &S3Tree,
    prefix: &str,
    delimited: bool,
) -> io::Result<(Vec<Listed>, Vec<String>)> {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = {
            let _slot = tree.list_slots.acquire().await.map_err(io::Error::other)?;
            let mut req = tree
                .client
                .list_objects_v2()
                .bucket(tree.bucket())
                .prefix(prefix)
                .set_continuation_token(token.take());
            if delimited {
                req = req.delimiter("/");
            }
            req.send().await.map_err(|e| tree.err(e))?
        };
        for o in out.contents() {
            let Some(key) = o.key() else { continue };
            objects.push(Listed {
                key: key.to_string(),
                size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                etag: super::etag(o.e_tag()),
                modified: time_of(o.last_modified()),
            });
        }
        prefixes.extend(out.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_string)));
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok((objects, prefixes))
}

/// What is known of an object after the cache and HEAD.
#[derive(Clone, Debug)]
pub struct Known {
    pub kind: ObjKind,
    pub meta: Meta,
    pub link: Option<Box<[u8]>>,
}

fn known_of(c: &Cached, modified: Option<(i64, u32)>) -> Known {
    let (sec, nsec) = c.mtime.or(modified).unwrap_or((0, 0));
    let default_mode = if c.kind == ObjKind::Dir { IMPLICIT_DIR_MODE } else { DEFAULT_FILE_MODE };
    let size =
        if c.kind == ObjKind::Symlink { c.link.as_ref().map_or(0, |l| l.len() as u64) } else { c.size };
    Known {
        kind: c.kind,
        meta: Meta {
            size,
            mtime_sec: sec,
            mtime_nsec: nsec,
            mode: c.mode.unwrap_or(default_mode),
            blocks: c.size.div_ceil(512),
            ..Meta::default()
        },
        link: c.link.clone(),
    }
}

impl S3Tree {
    /// What object `l` is: from the cache when the listing shows it unchanged, else
    /// read with HEAD (and a symlink's target with GET), the cache updated.
    pub async fn known(&self, l: &Listed) -> io::Result<Known> {
        if let Some(c) = self.cache().valid(&l.key, &l.etag, l.size, l.modified) {
            return Ok(known_of(&c, l.modified));
        }
        let c =
            self.head(&l.key).await?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "vanished"))?;
        let mut c = c;
        if c.modified.is_none() {
            c.modified = l.modified;
        }
        self.cache().insert(l.key.clone(), c.clone());
        Ok(known_of(&c, l.modified))
    }

    /// HEAD of `key` (and GET of a symlink's target): `None` when there is no such
    /// object.
    pub async fn head(&self, key: &str) -> io::Result<Option<Cached>> {
        let _slot = self.head_slots.acquire().await.map_err(io::Error::other)?;
        let out = match self.client.head_object().bucket(self.bucket()).key(key).send().await {
            Ok(o) => o,
            Err(e) => {
                let e = self.err(e);
                if e.kind() == io::ErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let (kind, mode, mtime) = read_metadata(out.metadata());
        let kind = if key.ends_with('/') { ObjKind::Dir } else { kind.unwrap_or(ObjKind::File) };
        let size = out.content_length().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        let link =
            if kind == ObjKind::Symlink { Some(self.get_small(key).await?.into_boxed_slice()) } else { None };
        Ok(Some(Cached {
            etag: super::etag(out.e_tag()),
            size,
            modified: time_of(out.last_modified()),
            kind,
            mtime,
            mode,
            link,
        }))
    }

    /// The whole contents of a small object.
    pub async fn get_small(&self, key: &str) -> io::Result<Vec<u8>> {
        let out =
            self.client.get_object().bucket(self.bucket()).key(key).send().await.map_err(|e| self.err(e))?;
        let body =
            out.body.collect().await.map_err(|e| io::Error::other(format!("reading the object: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }
}

/// A directory of the listed tree.
#[derive(Default)]
struct Node {
    /// The directory's own marker (`path/`).
    marker: Option<Listed>,
    files: BTreeMap<Box<[u8]>, Listed>,
    dirs: BTreeMap<Box<[u8]>, Node>,
}

/// Arranges listed objects (keys below `start`, which ends with a slash or is empty)
/// into a tree. Keys that cannot be paths (empty, `.` or `..` components) are left
/// out; a name that is both an object and a prefix is a directory.
fn arrange(start: &str, objects: Vec<Listed>) -> Node {
    let mut root = Node::default();
    for l in objects {
        let Some(rel) = l.key.strip_prefix(start) else { continue };
        if rel.is_empty() {
            // The key is `start` itself: the directory's own marker.
            root.marker = Some(l);
            continue;
        }
        let (rel, is_marker) = match rel.strip_suffix('/') {
            Some(r) => (r.to_string(), true),
            None => (rel.to_string(), false),
        };
        if rel.is_empty() {
            // `start//`: not a path.
            continue;
        }
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
            continue;
        }
        let mut node = &mut root;
        let (last, dirs) = parts.split_last().unwrap_or((&"", &[]));
        for d in dirs {
            node = node.dirs.entry(Box::from(d.as_bytes())).or_default();
        }
        if is_marker {
            node.dirs.entry(Box::from(last.as_bytes())).or_default().marker = Some(l);
        } else {
            node.files.insert(Box::from(last.as_bytes()), l);
        }
    }
    // A name both a file and a directory: the directory.
    fn prune(n: &mut Node) {
        let dirs: Vec<Box<[u8]>> = n.dirs.keys().cloned().collect();
        for d in dirs {
            n.files.remove(&d);
        }
        n.dirs.values_mut().for_each(prune);
    }
    prune(&mut root);
    root
}

/// A directory's attributes from its marker (when it has one).
async fn dir_meta(tree: &S3Tree, marker: Option<&Listed>) -> io::Result<Meta> {
    match marker {
        Some(l) => Ok(tree.known(l).await?.meta),
        None => Ok(Meta { mode: IMPLICIT_DIR_MODE, ..Meta::default() }),
    }
}

/// One level's entries (directories without children), judged by the scanner; the
/// chain inside it.
async fn judge_level(
    tree: &S3Tree,
    scanner: &Scanner<'_>,
    rel: &[u8],
    node: &Node,
    chain: &Chain,
) -> Result<(Vec<Entry>, Chain), ()> {
    let files = crate::join::all(node.files.iter().map(|(name, l)| async move {
        match tree.known(l).await {
            Ok(k) => Some(Entry {
                name: name.clone(),
                meta: k.meta,
                kind: match (k.kind, k.link) {
                    (ObjKind::Symlink, Some(t)) => Kind::Symlink(t),
                    _ => Kind::File(None),
                },
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                scanner.error(&join(rel, name), &e);
                Some(Entry { name: name.clone(), meta: Meta::default(), kind: Kind::Unknown })
            }
        }
    }));
    let dirs = crate::join::all(node.dirs.iter().map(|(name, n)| async move {
        match dir_meta(tree, n.marker.as_ref()).await {
            Ok(meta) => Entry { name: name.clone(), meta, kind: Kind::Dir(Vec::new()) },
            Err(e) => {
                scanner.error(&join(rel, name), &e);
                Entry { name: name.clone(), meta: Meta::default(), kind: Kind::Unreadable }
            }
        }
    }));
    let (files, dirs) = futures_util::join!(files, dirs);
    let mut entries: Vec<Entry> = files.into_iter().flatten().collect();
    entries.extend(dirs);
    let rule_text = if scanner.reads_rule_file(&entries) {
        let key = node.files.get(IGNORE_FILE).map(|l| l.key.clone());
        Some(match key {
            Some(k) => tree.get_small(&k).await.map(Some),
            None => Ok(None),
        })
    } else {
        None
    };
    scanner.judge(rel, chain, entries, rule_text)
}

/// A whole listed subtree, judged level by level; `None` when `rel` itself cannot be
/// judged (reported).
fn subtree<'a>(
    tree: &'a S3Tree,
    scanner: &'a Scanner<'a>,
    rel: Vec<u8>,
    node: &'a Node,
    chain: Chain,
) -> LocalBoxFuture<'a, Option<Vec<Entry>>> {
    async move {
        let (mut entries, chain) = judge_level(tree, scanner, &rel, node, &chain).await.ok()?;
        let (chain, rel) = (&chain, &rel);
        crate::join::all(entries.iter_mut().filter(|e| matches!(e.kind, Kind::Dir(_))).map(|e| async move {
            let path = join(rel, &e.name);
            let Some(sub) = node.dirs.get(&e.name) else { return };
            if scanner.prunes(chain, &path) {
                e.kind = Kind::Unreadable;
                return;
            }
            e.kind = match subtree(tree, scanner, path, sub, chain.clone()).await {
                Some(children) => Kind::Dir(children),
                None => Kind::Unreadable,
            };
        }))
        .await;
        Some(entries)
    }
    .boxed_local()
}

impl S3Tree {
    /// The key prefix of directory `rel` (with its trailing slash; empty at the root
    /// of the bucket).
    pub fn dir_prefix(&self, rel: &[u8]) -> io::Result<String> {
        if rel.is_empty() {
            return Ok(self.base().to_string());
        }
        self.key(rel, true)
    }

    /// The attributes of the root (the bucket's root has no marker: its attributes
    /// are kept in the cache alone).
    fn root_meta(&self, marker: Option<&Listed>) -> Option<Meta> {
        if !self.base().is_empty() || marker.is_some() {
            return None;
        }
        self.cache().get("").map(|c| known_of(c, None).meta)
    }
}

/// Scans the whole prefix.
pub fn scan(tree: &S3Tree, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
    let scanner = Scanner::new(opts);
    let (root, entries) = tree.block(async {
        let start = tree.base().to_string();
        let objects = list_tree(tree, start.clone(), DELIMITED_LEVELS).await?;
        let node = arrange(&start, objects);
        let root = match tree.root_meta(node.marker.as_ref()) {
            Some(m) => m,
            None => dir_meta(tree, node.marker.as_ref()).await?,
        };
        let entries = subtree(tree, &scanner, Vec::new(), &node, Vec::new()).await;
        Ok::<_, io::Error>((root, entries))
    })?;
    tree.save_cache();
    let entries =
        entries.ok_or_else(|| io::Error::new(io::ErrorKind::PermissionDenied, "cannot list its entries"))?;
    Ok(Snapshot { root, entries, rule_files: scanner.into_rule_files() })
}

/// Directory `rel`'s attributes and whole subtree.
pub fn scan_subtree(
    tree: &S3Tree,
    rel: &[u8],
    opts: ScanOptions<'_>,
) -> io::Result<(Meta, Option<Vec<Entry>>)> {
    let scanner = Scanner::new(opts);
    let start = tree.dir_prefix(rel)?;
    let out = tree.block(async {
        let objects = list_tree(tree, start.clone(), DELIMITED_LEVELS).await?;
        if objects.is_empty() && !rel.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let node = arrange(&start, objects);
        let meta = match tree.root_meta(node.marker.as_ref()).filter(|_| rel.is_empty()) {
            Some(m) => m,
            None => dir_meta(tree, node.marker.as_ref()).await?,
        };
        let chain = Vec::new();
        Ok((meta, subtree(tree, &scanner, rel.to_vec(), &node, chain).await))
    });
    tree.save_cache();
    out
}

/// Directory `rel`'s attributes and one level of entries.
pub fn scan_level(
    tree: &S3Tree,
    rel: &[u8],
    opts: ScanOptions<'_>,
    chain: &Chain,
) -> io::Result<(Meta, Vec<Entry>)> {
    let scanner = Scanner::new(opts);
    let start = tree.dir_prefix(rel)?;
    let out = tree.block(async {
        let (objects, prefixes) = list_page_all(tree, &start, true).await?;
        if objects.is_empty() && prefixes.is_empty() && !rel.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let mut node = arrange(&start, objects);
        for p in prefixes {
            let Some(name) = p.strip_prefix(&start).and_then(|n| n.strip_suffix('/')) else { continue };
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                continue;
            }
            let d = node.dirs.entry(Box::from(name.as_bytes())).or_default();
            // Its marker, if any, is the first key below it: read with HEAD.
            if d.marker.is_none() {
                if let Ok(Some(c)) = tree.head(&p).await {
                    tree.cache().insert(p.clone(), c.clone());
                    d.marker =
                        Some(Listed { key: p.clone(), size: c.size, etag: c.etag, modified: c.modified });
                }
            }
            node.files.remove(name.as_bytes());
        }
        let meta = match tree.root_meta(node.marker.as_ref()).filter(|_| rel.is_empty()) {
            Some(m) => m,
            None => dir_meta(tree, node.marker.as_ref()).await?,
        };
        let (entries, _) = judge_level(tree, &scanner, rel, &node, chain)
            .await
            .map_err(|()| io::Error::other("cannot list its entries (reported)"))?;
        Ok((meta, entries))
    });
    tree.save_cache();
    out
}

/// The entry at `rel` as it is now (a directory without children).
pub fn entry(tree: &S3Tree, rel: &[u8]) -> io::Result<Option<Entry>> {
    if rel.is_empty() {
        return Ok(None);
    }
    let key = tree.key(rel, false)?;
    let name: Box<[u8]> = crate::relpath::split_last(rel).1.into();
    tree.block(async {
        // A directory first: some servers (SeaweedFS) answer a HEAD of a prefix's
        // name as if it were an object.
        let dir = tree.key(rel, true)?;
        if tree.has_objects_under(&dir).await? {
            let meta = match tree.head(&dir).await? {
                Some(c) => {
                    let meta = known_of(&c, c.modified).meta;
                    let meta = match tree.cache().get(&dir) {
                        Some(cached) if c.mtime.is_none() => known_of(cached, None).meta,
                        _ => meta,
                    };
                    meta
                }
                None => Meta { mode: IMPLICIT_DIR_MODE, ..Meta::default() },
            };
            return Ok(Some(Entry { name, meta, kind: Kind::Dir(Vec::new()) }));
        }
        if let Some(c) = tree.head(&key).await? {
            tree.cache().insert(key.clone(), c.clone());
            let k = known_of(&c, c.modified);
            let kind = match (k.kind, k.link) {
                (ObjKind::Symlink, Some(t)) => Kind::Symlink(t),
                _ => Kind::File(None),
            };
            return Ok(Some(Entry { name, meta: k.meta, kind }));
        }
        Ok(None)
    })
}

impl S3Tree {
    /// The content digest of object `rel` (`--checksum`): its contents read back.
    pub fn digest(&self, rel: &[u8]) -> io::Result<crate::snapshot::Digest> {
        let key = self.key(rel, false)?;
        self.block(async {
            let out = self
                .client
                .get_object()
                .bucket(self.bucket())
                .key(&key)
                .send()
                .await
                .map_err(|e| self.err(e))?;
            let mut body = out.body;
            let mut hasher = blake3::Hasher::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| io::Error::other(format!("reading the object: {e}")))?;
                hasher.update(&chunk);
            }
            Ok(*hasher.finalize().as_bytes())
        })
    }

    /// Any object below `prefix`.
    pub async fn has_objects_under(&self, prefix: &str) -> io::Result<bool> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| self.err(e))?;
        Ok(!out.contents().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(key: &str) -> Listed {
        Listed { key: key.into(), size: 0, etag: String::new(), modified: None }
    }

    #[test]
    fn keys_become_a_tree() {
        let n =
            arrange("p/", vec![l("p/"), l("p/a/b/c"), l("p/a/"), l("p/x"), l("p/x/y"), l("p//z"), l("p/e/")]);
        assert!(n.marker.is_some());
        assert_eq!(n.dirs.keys().map(|k| &k[..]).collect::<Vec<_>>(), [&b"a"[..], b"e", b"x"]);
        assert!(n.files.is_empty(), "x is a directory");
        let a = &n.dirs[&b"a"[..]];
        assert!(a.marker.is_some());
        assert!(a.dirs[&b"b"[..]].files.contains_key(&b"c"[..]));
        assert!(n.dirs[&b"e"[..]].files.is_empty());
    }
}
