//! `--backup-dir DIR` and `--suffix SUFFIX`: what a sync deletes or overwrites in DEST
//! is moved to DIR under its relative path (SUFFIX appended to its name) instead of
//! being lost. Moves are renames (DIR is on DEST's file system); a file or symlink about
//! to be overwritten is hard-linked there first, so its replacement stays atomic.
//!
//! For a DEST over SFTP, DIR is inside DEST ([`Backup::remote`]: `root` is then
//! relative to DEST's root) and the SFTP engine does the same with its requests:
//! deletions by rename (`posix-rename@openssh.com`), and a file about to be
//! overwritten hard-linked there (`hardlink@openssh.com`) so that the replacement
//! stays one atomic rename; where the server lacks that extension it is renamed there
//! first, and the final name is missing for a moment.
//!
//! Each mirror has its own (`Config::backup`), handed to its DEST's apply in
//! `ApplyOptions`: the mirrors of one service keep theirs apart.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use crate::relpath::split_last;
use crate::sys;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// The backup directory, absolute (created when first needed).
    pub root: PathBuf,
    /// Appended to each name moved there.
    pub suffix: Vec<u8>,
    /// DEST is remote: `root` is relative to DEST's root.
    pub remote: bool,
}

impl Backup {
    /// A remote DEST's backup: where `rel` goes, relative to DEST's root.
    pub fn remote_place(&self, rel: &[u8]) -> Vec<u8> {
        let mut p = crate::relpath::path_bytes(&self.root).to_vec();
        p.push(b'/');
        p.extend_from_slice(rel);
        p.extend_from_slice(&self.suffix);
        p
    }
}

impl Backup {
    /// Opens (creating what is missing) the backup directory for `rel`'s parent, and
    /// returns it with the name `rel` gets there.
    fn place(&self, rel: &[u8]) -> io::Result<(OwnedFd, Vec<u8>)> {
        std::fs::create_dir_all(&self.root)?;
        let mut dir = sys::open_root(&self.root)?;
        let (parent, name) = split_last(rel);
        for comp in parent.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
            match sys::mkdir_at(dir.as_fd(), comp, 0o755) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            dir = match sys::open_dir_at(dir.as_fd(), comp) {
                Ok(d) => d,
                // A file where a directory is needed (an older backup): it makes way.
                Err(_) => {
                    sys::remove_any(dir.as_fd(), comp, &mut |_| {})?;
                    sys::mkdir_at(dir.as_fd(), comp, 0o755)?;
                    sys::open_dir_at(dir.as_fd(), comp)?
                }
            };
        }
        let mut bname = name.to_vec();
        bname.extend_from_slice(&self.suffix);
        Ok((dir, bname))
    }

    /// Moves DEST's `name` (in `dst`, at `rel`) into the backup; an older backup of the
    /// same name is replaced.
    pub fn move_in(&self, dst: BorrowedFd<'_>, name: &[u8], rel: &[u8]) -> io::Result<()> {
        let (dir, bname) = self.place(rel)?;
        match sys::rename_between(dst, name, dir.as_fd(), &bname) {
            Err(e) if e.kind() != io::ErrorKind::NotFound && exists_there(dir.as_fd(), &bname) => {
                sys::remove_any(dir.as_fd(), &bname, &mut |_| {})?;
                sys::rename_between(dst, name, dir.as_fd(), &bname)
            }
            r => r,
        }
    }

    /// Keeps DEST's file or symlink `name` (in `dst`, at `rel`) in the backup before it
    /// is replaced: a hard link, so the name in DEST stays until the new version is
    /// renamed over it; moved there where links are not possible.
    pub fn keep_before_overwrite(&self, dst: BorrowedFd<'_>, name: &[u8], rel: &[u8]) -> io::Result<()> {
        let (dir, bname) = self.place(rel)?;
        if exists_there(dir.as_fd(), &bname) {
            sys::remove_any(dir.as_fd(), &bname, &mut |_| {})?;
        }
        match sys::link_between(dst, name, dir.as_fd(), &bname) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(_) => sys::rename_between(dst, name, dir.as_fd(), &bname),
        }
    }
}

fn exists_there(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    sys::stat_at(dir, name).is_ok()
}
