//! The SOURCE seam: how a mirror's source is read.
//!
//! Batch runs read SOURCE through [`Source`]: scan it, open its files. The local tree
//! ([`LocalTree`]) is one implementation; a directory on another host, read over SFTP
//! (`sftp::SftpTree`), is another. A DEST reads what it copies through this trait, so
//! every DEST can take every SOURCE; the local DEST keeps its descriptor-relative fast
//! path (`copy_file_range`) when SOURCE is local too ([`Source::local`]).

use std::io::{self, Read};
use std::os::fd::AsFd;

use crate::ignore::Chain;
use crate::relpath::split_last;
use crate::snapshot::{Digest, Entry, ScanOptions, Scanner, Snapshot};
use crate::sys::{self, Meta};
use crate::tree::LocalTree;

/// A SOURCE file opened for copying.
pub trait SourceFile: Read + Send {
    /// Its attributes when it was opened.
    fn meta(&self) -> Meta;
    /// True when it has not changed since it was opened (checked after the copy).
    fn unchanged(&mut self) -> io::Result<bool>;
}

pub trait Source: Sync {
    /// Scans the whole of SOURCE.
    fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot>;

    /// The local tree, when SOURCE is on this machine.
    fn local(&self) -> Option<&LocalTree>;

    /// Directory `rel`'s attributes and its whole subtree as `scanner` judges it,
    /// `chain` being the rules in force above it (`None`: it cannot be listed, which
    /// was reported). `Err` when the directory cannot be opened. Watch mode's
    /// verifications, and its rescans of a SOURCE that is not local, read through this.
    fn subtree(
        &self,
        rel: &[u8],
        scanner: &Scanner<'_>,
        chain: &Chain,
    ) -> io::Result<(Meta, Option<Vec<Entry>>)>;

    /// `rel` is a directory (never a symlink to one, below the root). `Err`: SOURCE
    /// cannot be read.
    fn is_dir(&self, rel: &[u8]) -> io::Result<bool>;

    /// What identifies the file system SOURCE's root is on (see
    /// `Dest::root_identity`): watch mode pauses when it changes.
    fn fs_identity(&self) -> io::Result<u64>;

    /// Opens regular file `rel` for reading (never through a symlink). `Err` with
    /// `NotFound` when it is gone.
    fn open_file(&self, rel: &[u8]) -> io::Result<Box<dyn SourceFile + '_>>;

    /// SOURCE is read over a connection, and it was lost: what happened, in words.
    /// Watch mode then pauses and calls [`Source::reconnect`] with a back-off.
    fn connection_lost(&self) -> Option<String> {
        None
    }

    /// Connects to SOURCE again after [`Source::connection_lost`]; `Err`: why not.
    fn reconnect(&self) -> Result<(), String> {
        Ok(())
    }

    /// The content digest of regular file `rel` (`--checksum`).
    fn digest(&self, rel: &[u8]) -> io::Result<Digest> {
        let mut f = self.open_file(rel)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(&mut f)?;
        Ok(*hasher.finalize().as_bytes())
    }
}

/// A local file being copied.
struct LocalFile {
    file: std::fs::File,
    before: rustix::fs::Stat,
}

impl Read for LocalFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if sys::stopping() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted by a signal; not copied"));
        }
        self.file.read(buf)
    }
}

impl SourceFile for LocalFile {
    fn meta(&self) -> Meta {
        sys::from_stat(&self.before).1
    }

    fn unchanged(&mut self) -> io::Result<bool> {
        Ok(sys::same_version(&self.before, &sys::fstat(self.file.as_fd())?))
    }
}

impl Source for LocalTree {
    fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
        LocalTree::scan(self, opts)
    }

    fn local(&self) -> Option<&LocalTree> {
        Some(self)
    }

    fn subtree(
        &self,
        rel: &[u8],
        scanner: &Scanner<'_>,
        chain: &Chain,
    ) -> io::Result<(Meta, Option<Vec<Entry>>)> {
        LocalTree::scan_subtree(self, rel, scanner, chain)
    }

    fn is_dir(&self, rel: &[u8]) -> io::Result<bool> {
        match self.open_dir(rel) {
            Ok(_) => Ok(true),
            Err(e) if rel.is_empty() => Err(e),
            Err(_) => Ok(false),
        }
    }

    fn fs_identity(&self) -> io::Result<u64> {
        self.device()
    }

    fn open_file(&self, rel: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
        let (dir, name) = split_last(rel);
        open_in(self.open_dir(dir)?.as_fd(), name)
    }
}

/// Regular file `name` of the open directory `dir`, for copying.
fn open_in<'s>(dir: std::os::fd::BorrowedFd<'_>, name: &[u8]) -> io::Result<Box<dyn SourceFile + 's>> {
    let (fd, before) = sys::open_source_file(dir, name)?;
    Ok(Box::new(LocalFile { file: std::fs::File::from(fd), before }))
}

/// Opens SOURCE's files for one apply, keeping the directories they are in open. A
/// local file opened by path walks from the root (the root by its path, then one
/// `openat` per component): ten system calls before the file itself in a tree three
/// levels deep, for every file a remote DEST copies. Through this, a file in a
/// directory opened recently is one `openat` in it. It lives for one apply: what it
/// holds open is what that apply's plan was made from (a directory removed meanwhile
/// has its files reported gone, as by path). A SOURCE on another host is opened by path.
pub struct Opener<'s> {
    source: &'s dyn Source,
    /// The directories opened last, the oldest first.
    dirs: std::sync::Mutex<std::collections::VecDeque<(Vec<u8>, std::sync::Arc<std::os::fd::OwnedFd>)>>,
}

/// Directories an [`Opener`] keeps open: more than an apply works in at once (its
/// operations in flight are spread over a few directories at a time).
const OPENER_DIRS: usize = 32;

impl<'s> Opener<'s> {
    pub fn new(source: &'s dyn Source) -> Opener<'s> {
        Opener { source, dirs: Default::default() }
    }

    /// [`Source::open_file`], through the directories held open.
    pub fn open_file(&self, rel: &[u8]) -> io::Result<Box<dyn SourceFile + 's>> {
        let Some(local) = self.source.local() else { return self.source.open_file(rel) };
        let (dir, name) = split_last(rel);
        let held = crate::lock::lock(&self.dirs).iter().find(|(d, _)| d == dir).map(|(_, fd)| fd.clone());
        let dfd = match held {
            Some(fd) => fd,
            None => {
                let fd = std::sync::Arc::new(local.open_dir(dir)?);
                let mut dirs = crate::lock::lock(&self.dirs);
                if dirs.len() >= OPENER_DIRS {
                    dirs.pop_front();
                }
                dirs.push_back((dir.to_vec(), fd.clone()));
                fd
            }
        };
        open_in(dfd.as_fd(), name)
    }
}
