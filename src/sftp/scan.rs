//! Scanning a remote tree: READDIR with the attributes it returns (no stat per
//! entry), READLINK for symlinks, many directories listed at once; ignore rules
//! judged by the same [`Scanner`] as local scans.

use std::io;
use std::os::unix::ffi::OsStrExt;

use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, StreamExt};
use openssh_sftp_client::metadata::MetaData;

use super::{meta_of, SftpTree};
use crate::ignore::{Chain, IGNORE_FILE};
use crate::relpath::join;
use crate::snapshot::{Entry, Kind, ScanOptions, Scanner, Snapshot};
use crate::sys::Meta;

/// Scans the whole remote tree. `Err` only when its root cannot be read.
pub fn scan(tree: &SftpTree, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
    let scanner = Scanner::new(opts);
    let (root, entries) = tree.block(async {
        // The root may be a symlink: the user named it.
        let md = tree.sess().sftp.fs().metadata(tree.root_path()).await.map_err(|e| tree.err(e))?;
        if !md.file_type().is_some_and(|t| t.is_dir()) {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        let entries = subtree(tree, &scanner, Vec::new(), Vec::new()).await;
        Ok((meta_of(&md), entries))
    })?;
    let entries = match entries {
        Some(e) => e,
        None if tree.is_lost() => return Err(tree.lost_error()),
        None => return Err(io::Error::new(io::ErrorKind::PermissionDenied, "cannot list its entries")),
    };
    Ok(Snapshot { root, entries, rule_files: scanner.into_rule_files() })
}

/// Directory `rel`'s attributes (not through a symlink, except at the root).
async fn dir_meta(tree: &SftpTree, rel: &[u8]) -> io::Result<Meta> {
    let md = if rel.is_empty() {
        tree.sess().sftp.fs().metadata(tree.root_path()).await.map_err(|e| tree.err(e))?
    } else {
        tree.lstat(rel).await?.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?
    };
    if !md.file_type().is_some_and(|t| t.is_dir()) {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    Ok(meta_of(&md))
}

/// Directory `rel`'s attributes and whole subtree.
pub fn scan_subtree(
    tree: &SftpTree,
    rel: &[u8],
    opts: ScanOptions<'_>,
) -> io::Result<(Meta, Option<Vec<Entry>>)> {
    let scanner = Scanner::new(opts);
    tree.block(async {
        let meta = dir_meta(tree, rel).await?;
        Ok((meta, subtree(tree, &scanner, rel.to_vec(), Vec::new()).await))
    })
}

/// Directory `rel`'s attributes and whole subtree as `scanner` judges it (its rule
/// files collected there), `chain` being the rules in force above it.
pub fn scan_subtree_with(
    tree: &SftpTree,
    rel: &[u8],
    scanner: &Scanner<'_>,
    chain: &Chain,
) -> io::Result<(Meta, Option<Vec<Entry>>)> {
    tree.block(async {
        let meta = dir_meta(tree, rel).await?;
        Ok((meta, subtree(tree, scanner, rel.to_vec(), chain.clone()).await))
    })
}

/// Directory `rel`'s attributes and one level of entries.
pub fn scan_level(
    tree: &SftpTree,
    rel: &[u8],
    opts: ScanOptions<'_>,
    chain: &Chain,
) -> io::Result<(Meta, Vec<Entry>)> {
    let scanner = Scanner::new(opts);
    tree.block(async {
        let meta = dir_meta(tree, rel).await?;
        let (entries, _) = level(tree, &scanner, rel, chain)
            .await
            .map_err(|()| io::Error::other("cannot list its entries (reported)"))?;
        Ok((meta, entries))
    })
}

/// The entry at `rel` as it is now (a directory without children).
pub fn entry(tree: &SftpTree, rel: &[u8]) -> io::Result<Option<Entry>> {
    tree.block(async {
        let Some(md) = tree.lstat(rel).await? else { return Ok(None) };
        let name = crate::relpath::split_last(rel).1;
        to_entry(tree, rel, name.into(), &md).await
    })
}

/// Lists directory `rel`: names and attributes, as READDIR returns them.
async fn list(tree: &SftpTree, rel: &[u8]) -> io::Result<Vec<(Box<[u8]>, MetaData)>> {
    let _slot = tree.list_slots.acquire().await.map_err(io::Error::other)?;
    let dir = tree.sess().sftp.fs().open_dir(tree.path(rel)).await.map_err(|e| tree.err(e))?;
    let stream = dir.read_dir();
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        let item = item.map_err(|e| tree.err(e))?;
        let name = item.filename().as_os_str().as_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push((Box::<[u8]>::from(name), item.metadata()));
    }
    Ok(out)
}

/// The names in directory `rel`.
pub(super) async fn list_names(tree: &SftpTree, rel: &[u8]) -> io::Result<Vec<Box<[u8]>>> {
    Ok(list(tree, rel).await?.into_iter().map(|(n, _)| n).collect())
}

/// An entry from its listed attributes (a symlink's target read); `None` when it
/// vanished.
async fn to_entry(tree: &SftpTree, path: &[u8], name: Box<[u8]>, md: &MetaData) -> io::Result<Option<Entry>> {
    let meta = meta_of(md);
    let kind = match md.file_type() {
        Some(t) if t.is_dir() => Kind::Dir(Vec::new()),
        Some(t) if t.is_file() => Kind::File(None),
        Some(t) if t.is_symlink() => match tree.sess().sftp.fs().read_link(tree.path(path)).await {
            Ok(target) => Kind::Symlink(target.as_os_str().as_bytes().into()),
            Err(e) => {
                let e = tree.err(e);
                if e.kind() == io::ErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(e);
            }
        },
        Some(t) if t.is_fifo() => Kind::Special("fifo"),
        Some(t) if t.is_socket() => Kind::Special("socket"),
        Some(t) if t.is_char_device() => Kind::Special("character device"),
        Some(t) if t.is_block_device() => Kind::Special("block device"),
        _ => Kind::Special("unknown file type"),
    };
    Ok(Some(Entry { name, meta, kind }))
}

/// Reads a small remote file whole (a `.syncignore`); `None` when it is gone.
async fn read_small(tree: &SftpTree, rel: &[u8]) -> io::Result<Option<Vec<u8>>> {
    match tree.sess().sftp.fs().read(tree.path(rel)).await {
        Ok(b) => Ok(Some(b.to_vec())),
        Err(e) => {
            let e = tree.err(e);
            if e.kind() == io::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// One level: listed, symlinks read, judged by the scanner's rules.
async fn level(
    tree: &SftpTree,
    scanner: &Scanner<'_>,
    rel: &[u8],
    chain: &Chain,
) -> Result<(Vec<Entry>, Chain), ()> {
    let listed = match list(tree, rel).await {
        Ok(l) => l,
        Err(e) => {
            if !tree.is_lost() {
                scanner.error(rel, &e);
            }
            return Err(());
        }
    };
    let entries = crate::join::all(listed.into_iter().map(|(name, md)| async move {
        let path = join(rel, &name);
        match to_entry(tree, &path, name, &md).await {
            Ok(e) => e,
            Err(e) => {
                if !tree.is_lost() {
                    scanner.error(&path, &e);
                }
                None
            }
        }
    }))
    .await;
    let entries: Vec<Entry> = entries.into_iter().flatten().collect();
    let rule_text = if scanner.reads_rule_file(&entries) {
        Some(read_small(tree, &join(rel, IGNORE_FILE)).await)
    } else {
        None
    };
    scanner.judge(rel, chain, entries, rule_text)
}

/// A whole subtree, subdirectories listed at once; `None` when `rel` itself cannot be
/// listed (reported). Subdirectories that cannot be read become [`Kind::Unreadable`].
fn subtree<'a>(
    tree: &'a SftpTree,
    scanner: &'a Scanner<'a>,
    rel: Vec<u8>,
    chain: Chain,
) -> LocalBoxFuture<'a, Option<Vec<Entry>>> {
    async move {
        let (mut entries, chain) = level(tree, scanner, &rel, &chain).await.ok()?;
        let chain = &chain;
        let rel = &rel;
        crate::join::all(entries.iter_mut().filter(|e| e.is_dir()).map(|e| async move {
            let path = join(rel, &e.name);
            if scanner.prunes(chain, &path) {
                e.kind = Kind::Unreadable;
                return;
            }
            e.kind = match subtree(tree, scanner, path, chain.clone()).await {
                Some(children) => Kind::Dir(children),
                None => Kind::Unreadable,
            };
        }))
        .await;
        Some(entries)
    }
    .boxed_local()
}
