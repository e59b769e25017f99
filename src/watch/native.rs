//! The native strategy: notify's recommended watcher (inotify on Linux).
//!
//! Where the whole tree can be watched (nothing to leave out, the kernel's limits
//! suffice), notify's recursive mode does it, and watches new and moved directories
//! itself, at once. Otherwise directories are watched one by one, as described next.
//!
//! Every event becomes "these paths may have changed"; a queue overflow (`need_rescan`)
//! or a watcher error becomes "rescan everything". Watched one by one, tandem knows
//! exactly which subtrees are
//! watched: subtrees that must not be (a network or FUSE file system mounted inside
//! SOURCE, where no events arrive; mount points left out by `-x`) are skipped, and
//! when the kernel's watch limit runs out part-way, what is already watched stays
//! watched and only the rest is handed back ([`Coverage`]) to be polled. A directory
//! that appears later (made, or moved in) is reported as [`Signal::NewDirs`], and the
//! loop watches it ([`Native::add_tree`]). Start-up failures caused by inotify limits
//! come back as a hint naming the limit and how to raise it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{ErrorKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::{send, Signal};

/// Which tree a watcher watches (its events are told apart on the one channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    Source,
    Dest,
}

pub struct Native {
    watcher: RecommendedWatcher,
    /// Subtrees never watched (see the module's doc).
    skip: Vec<PathBuf>,
    /// notify's recursive mode: it watches new directories itself.
    recursive: bool,
}

/// What one [`Native::add_tree`] could watch.
#[derive(Debug, Default)]
pub struct Coverage {
    /// Directories watched.
    pub watched: usize,
    /// Subtrees left unwatched because the watch limit ran out, and how many
    /// directories they hold.
    pub unwatched: Vec<PathBuf>,
    pub unwatched_dirs: usize,
    /// The limit that ran out, as advice for the user.
    pub limit: Option<String>,
}

impl Native {
    /// Starts watching `root` and every directory below it, except the subtrees in
    /// `skip`. `Err` carries a hint for the user when not even `root` can be watched.
    pub fn start(
        root: &Path,
        tx: Sender<Signal>,
        tree: Tree,
        skip: Vec<PathBuf>,
    ) -> Result<(Native, Coverage), String> {
        // The common case: no subtree to leave out, and the kernel's limits allow
        // watching everything: notify's recursive mode, which also watches new
        // directories (and moved ones) on its own thread, at once.
        if skip.is_empty() {
            let mut w = new_watcher(tx.clone(), tree)?;
            match w.watch(root, RecursiveMode::Recursive) {
                Ok(()) => {
                    let n = Native { watcher: w, skip, recursive: true };
                    return Ok((n, Coverage { watched: 1, ..Coverage::default() }));
                }
                // Out of watches part-way: start again directory by directory, so
                // that what can be watched is, and the rest is known.
                Err(e) if is_limit(&e) => drop(w),
                Err(e) => return Err(describe(&e)),
            }
        }
        Native::start_each(root, tx, tree, skip)
    }

    /// Starts watching `root` and the directories below it one by one (never notify's
    /// recursive mode), except the subtrees in `skip`: what the watch limit leaves out
    /// comes back in the [`Coverage`].
    pub fn start_each(
        root: &Path,
        tx: Sender<Signal>,
        tree: Tree,
        skip: Vec<PathBuf>,
    ) -> Result<(Native, Coverage), String> {
        let watcher = new_watcher(tx, tree)?;
        let mut n = Native { watcher, skip, recursive: false };
        let first = n.watcher.watch(root, RecursiveMode::NonRecursive);
        if let Err(e) = first {
            return Err(describe(&e));
        }
        let mut cov = n.add_below(root);
        cov.watched += 1;
        Ok((n, cov))
    }

    /// Watches `dir` and every directory below it (symlinks are not followed, skipped
    /// subtrees not entered). Returns what could be watched.
    pub fn add_tree(&mut self, dir: &Path) -> Coverage {
        if self.recursive || self.skipped(dir) {
            return Coverage::default();
        }
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                let mut cov = self.add_below(dir);
                cov.watched += 1;
                cov
            }
            Err(e) if is_limit(&e) => Coverage {
                unwatched_dirs: count_dirs(dir),
                unwatched: vec![dir.to_path_buf()],
                limit: Some(describe(&e)),
                ..Coverage::default()
            },
            // Gone again, or unreadable (the scan reports that): nothing to watch.
            Err(_) => Coverage::default(),
        }
    }

    /// notify's recursive mode watches this tree (new directories are its business).
    pub fn is_recursive(&self) -> bool {
        self.recursive
    }

    fn skipped(&self, dir: &Path) -> bool {
        self.skip.iter().any(|s| dir.starts_with(s))
    }

    /// Watches the directories below `dir` (which is watched), depth first. Once the
    /// limit is reached, every directory still to be visited is a subtree left out.
    fn add_below(&mut self, dir: &Path) -> Coverage {
        let mut cov = Coverage::default();
        let mut stack = subdirs(dir);
        while let Some(d) = stack.pop() {
            if self.skipped(&d) {
                continue;
            }
            if cov.limit.is_some() {
                cov.unwatched_dirs += count_dirs(&d);
                cov.unwatched.push(d);
                continue;
            }
            match self.watcher.watch(&d, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    cov.watched += 1;
                    stack.extend(subdirs(&d));
                }
                Err(e) if is_limit(&e) => {
                    cov.limit = Some(describe(&e));
                    cov.unwatched_dirs += count_dirs(&d);
                    cov.unwatched.push(d);
                }
                Err(_) => {}
            }
        }
        cov
    }
}

/// How long DEST's event thread lets events gather before it reads them: tandem's own
/// copies raise them one file at a time, and a thread woken for each competed with the
/// copies. (DEST's changes are compared only once the loop is quiet anyway; the
/// kernel's queue holds 16,384 events by default, which a few hundredths of a second of
/// copying stays well below.)
const DEST_READ_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// A watcher of `tree`, its events sent on `tx`. DEST's is told to drop the events of
/// tandem's temporaries before it builds anything for them (created, written, given
/// attributes, renamed: one file copied raised six events, and reading them competed
/// with the copies), so that a file put in place raises one creation of its final name;
/// and it reads its events in batches ([`DEST_READ_DELAY`]).
fn new_watcher(tx: Sender<Signal>, tree: Tree) -> Result<notify::RecommendedWatcher, String> {
    let config = match tree {
        Tree::Source => notify::Config::default(),
        Tree::Dest => notify::Config::default()
            .with_ignored_names(crate::sys::is_temp_name)
            .with_read_delay(DEST_READ_DELAY),
    };
    notify::RecommendedWatcher::new(handler(tx, tree), config).map_err(|e| describe(&e))
}

/// The event handler of a watcher of `tree`: events become [`Signal`]s on `tx`.
fn handler(tx: Sender<Signal>, tree: Tree) -> impl notify::EventHandler {
    let paths = move |p: Vec<PathBuf>| match tree {
        Tree::Source => Signal::Paths(p),
        Tree::Dest => Signal::DestPaths(p),
    };
    let mut lowered = false;
    move |res: notify::Result<notify::Event>| match res {
        Ok(mut ev) => {
            if tree == Tree::Dest && !lowered {
                // DEST's events are mostly tandem's own writes, compared only once the
                // loop is quiet: the thread reading them (notify's, on which this runs)
                // yields to the copying workers rather than competing with them.
                crate::sys::lower_thread_priority();
                lowered = true;
            }
            // (A rename from one of tandem's temporaries is a file being put in place:
            // no directory to watch, no stat needed.)
            let from_temp = ev.paths.len() == 2
                && ev.paths[0].file_name().is_some_and(|n| {
                    crate::sys::is_temp_name(crate::relpath::path_bytes(std::path::Path::new(n)))
                });
            if tree == Tree::Dest && !ev.need_rescan() {
                // tandem's own temporaries come and go in DEST (created, written, given
                // attributes, renamed into place): nothing to compare, so they are not
                // even sent; a rename from one leaves its final name.
                ev.paths.retain(|p| {
                    !p.file_name().is_some_and(|n| {
                        crate::sys::is_temp_name(crate::relpath::path_bytes(std::path::Path::new(n)))
                    })
                });
                if ev.paths.is_empty() {
                    return;
                }
            }
            if ev.need_rescan() {
                let all = match tree {
                    Tree::Source => Signal::All,
                    Tree::Dest => Signal::DestAll("events were lost".into()),
                };
                send(&tx, all);
                return;
            }
            match ev.kind {
                // Reads change nothing; a writer closing the file does (its final
                // state is there now).
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => send(&tx, paths(ev.paths)),
                EventKind::Access(_) => {}
                // Everything else (created, modified, removed, renamed, attributes):
                // the directories holding these paths are read again. A directory
                // that appears (made, or moved in) is read whole there, and is to
                // be watched from now on.
                kind => {
                    let appeared = matches!(
                        kind,
                        EventKind::Create(CreateKind::Folder | CreateKind::Any)
                            | EventKind::Modify(ModifyKind::Name(
                                RenameMode::To | RenameMode::Both | RenameMode::Any
                            ))
                    );
                    if appeared && !from_temp {
                        // (Both: [from, to]; the last path is where it is now.)
                        let dirs: Vec<PathBuf> = ev
                            .paths
                            .last()
                            .filter(|p| p.symlink_metadata().is_ok_and(|m| m.is_dir()))
                            .cloned()
                            .into_iter()
                            .collect();
                        if !dirs.is_empty() {
                            send(&tx, Signal::NewDirs(tree, dirs));
                        }
                    }
                    send(&tx, paths(ev.paths))
                }
            }
        }
        Err(e) if tree == Tree::Dest => send(&tx, Signal::DestAll(describe(&e))),
        Err(e) if is_limit(&e) => send(&tx, Signal::LimitReached(describe(&e))),
        Err(e) => send(&tx, Signal::Error(describe(&e))),
    }
}

/// The subdirectories of `dir` (not symlinks to directories).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.filter_map(Result::ok).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect()
}

/// Directories in the subtree of `dir`, itself included.
fn count_dirs(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        n += 1;
        stack.extend(subdirs(&d));
    }
    n
}

/// An inotify limit (watches or instances) was reached.
fn is_limit(e: &notify::Error) -> bool {
    match &e.kind {
        ErrorKind::MaxFilesWatch => true,
        ErrorKind::Io(io) => matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EMFILE)),
        _ => false,
    }
}

fn read_limit(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Turns notify errors into advice.
pub fn describe(e: &notify::Error) -> String {
    match &e.kind {
        ErrorKind::MaxFilesWatch => format!(
            "inotify watch limit reached (fs.inotify.max_user_watches = {}); raise it with `sysctl fs.inotify.max_user_watches=1048576`, or use --poll",
            read_limit("max_user_watches")
        ),
        ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => format!(
            "inotify instance limit reached (fs.inotify.max_user_instances = {}); raise it with `sysctl fs.inotify.max_user_instances=1024`, or use --poll",
            read_limit("max_user_instances")
        ),
        ErrorKind::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => format!(
            "inotify watch limit reached (fs.inotify.max_user_watches = {}); raise it with `sysctl fs.inotify.max_user_watches=1048576`, or use --poll",
            read_limit("max_user_watches")
        ),
        _ => e.to_string(),
    }
}
