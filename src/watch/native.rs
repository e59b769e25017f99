//! The native strategy: notify's recommended watcher (inotify on Linux), recursive over
//! SOURCE. Every event becomes "these paths may have changed"; a queue overflow
//! (`need_rescan`) or a watcher error becomes "rescan everything". Start-up failures
//! caused by inotify limits come back as a hint naming the limit and how to raise it.

use std::path::Path;
use std::sync::mpsc::Sender;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{ErrorKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::{send, Signal};

pub struct Native {
    _watcher: RecommendedWatcher,
}

/// Which tree a watcher watches (its events are told apart on the one channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    Source,
    Dest,
}

impl Native {
    /// Starts watching `root` recursively. `Err` carries a hint for the user.
    pub fn start(root: &Path, tx: Sender<Signal>, tree: Tree) -> Result<Native, String> {
        let paths = move |p: Vec<std::path::PathBuf>| match tree {
            Tree::Source => Signal::Paths(p),
            Tree::Dest => Signal::DestPaths(p),
        };
        let handler = move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                if ev.need_rescan() {
                    send(&tx, if tree == Tree::Source { Signal::All } else { Signal::DestAll("events were lost".into()) });
                    return;
                }
                match ev.kind {
                    // Reads change nothing; a writer closing the file does (its final
                    // state is there now).
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => send(&tx, paths(ev.paths)),
                    EventKind::Access(_) => {}
                    // Everything else (created, modified, removed, renamed, attributes):
                    // the directories holding these paths are read again. A directory
                    // that appears (made, or moved in) is read whole there.
                    _ => send(&tx, paths(ev.paths)),
                }
            }
            Err(e) if tree == Tree::Dest => send(&tx, Signal::DestAll(describe(&e))),
            Err(e) if is_limit(&e) => send(&tx, Signal::LimitReached(describe(&e))),
            Err(e) => send(&tx, Signal::Error(describe(&e))),
        };
        let mut w = notify::recommended_watcher(handler).map_err(|e| describe(&e))?;
        w.watch(root, RecursiveMode::Recursive).map_err(|e| describe(&e))?;
        Ok(Native { _watcher: w })
    }
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
