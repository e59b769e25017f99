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
//!
//! In a `--config` service (`shared`), the mirrors do not each start notify's watcher
//! (one inotify instance and one thread each, for SOURCE and again for DEST): every
//! mirror joins one process-wide [`Hub`] per tree, whose single watcher delivers each
//! event to the mirror whose root holds its path (the longest such root; a service's
//! roots do not overlap, see below), splitting an event whose paths belong to two
//! mirrors (a rename from one SOURCE into another). A queue overflow, or an error that
//! names no path, reaches every mirror of that hub, since any of them may have lost
//! events. A mirror's watches, recursive or directory by directory, are its own: when
//! its watcher is dropped (the mirror stops, is removed by a reload, or starts again
//! directory by directory) they are removed and its route with them. A root that
//! overlaps one already in the hub (two mirrors of one SOURCE, one SOURCE inside
//! another), or is the same directory under another name, gets a watcher of its own as
//! before: inotify keeps one watch per directory, which two mirrors cannot share.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashSet;

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
    watcher: Backend,
    /// Subtrees never watched (see the module's doc).
    skip: Vec<PathBuf>,
    /// notify's recursive mode: it watches new directories itself.
    recursive: bool,
    /// The root watched (under the recursive mode, the one watch to remove).
    root: PathBuf,
}

impl Drop for Native {
    /// Under the recursive mode, the watches are removed before this returns: dropping
    /// notify's watcher only asks its thread to stop, which frees the watches later, and
    /// watching again at once directory by directory (the kernel's limit reached,
    /// [`super::Running::limit_reached`]) then found the old watches still counted
    /// against the limit (and, failing on the root, polled everything). A recursive
    /// unwatch is answered once all of them are gone. (Watched directory by directory,
    /// a service's watches are removed the same way by its hub; those of a watcher of
    /// its own go with it.)
    fn drop(&mut self) {
        if self.recursive {
            self.watcher.unwatch_tree(&self.root);
        }
    }
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
    /// `shared`: through the service's [`Hub`] for `tree` (see the module's doc).
    pub fn start(
        root: &Path,
        tx: Sender<Signal>,
        tree: Tree,
        skip: Vec<PathBuf>,
        shared: bool,
    ) -> Result<(Native, Coverage), String> {
        // The common case: no subtree to leave out, and the kernel's limits allow
        // watching everything: notify's recursive mode, which also watches new
        // directories (and moved ones) on its own thread, at once.
        if skip.is_empty() {
            let mut w = Backend::new(root, tx.clone(), tree, shared)?;
            match w.watch(root, RecursiveMode::Recursive) {
                Ok(()) => {
                    let n = Native { watcher: w, skip, recursive: true, root: root.to_path_buf() };
                    return Ok((n, Coverage { watched: 1, ..Coverage::default() }));
                }
                // Out of watches part-way: start again directory by directory, so
                // that what can be watched is, and the rest is known. The watches
                // set before the limit are removed first, and before this goes on
                // (see `impl Drop for Native`: otherwise they are still counted
                // when the root is watched again, and everything is polled).
                Err(e) if is_limit(&e) => {
                    w.unwatch_tree(root);
                    drop(w)
                }
                Err(e) => return Err(describe(&e)),
            }
        }
        Native::start_each(root, tx, tree, skip, shared)
    }

    /// Starts watching `root` and the directories below it one by one (never notify's
    /// recursive mode), except the subtrees in `skip`: what the watch limit leaves out
    /// comes back in the [`Coverage`].
    pub fn start_each(
        root: &Path,
        tx: Sender<Signal>,
        tree: Tree,
        skip: Vec<PathBuf>,
        shared: bool,
    ) -> Result<(Native, Coverage), String> {
        let watcher = Backend::new(root, tx, tree, shared)?;
        let mut n = Native { watcher, skip, recursive: false, root: root.to_path_buf() };
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

    /// Returns once notify's thread has dealt with every event it had read when this
    /// was called: under its recursive mode, that includes watching the directories
    /// those events made or moved in. A look at such a directory must wait for this.
    /// notify forgets a moved directory's watches (they name its old path) when it has
    /// read the events of the batch holding the move, and only then watches it, and
    /// everything below it, under the new path: a change inside it meanwhile raises no
    /// event, or one notify drops (its watch is gone) or names by the old path, so only
    /// a look that starts after the new watches are in place is sure to see it. (Watched
    /// directory by directory, [`Native::add_tree`] sets the watches itself and returns
    /// once they are in place.)
    pub fn settle(&mut self) {
        if self.recursive {
            self.watcher.settle();
        }
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

/// How notify watches `tree`: never through a symlink. DEST's watcher drops the events of tandem's temporaries
/// before it builds anything for them (created, written, given attributes, renamed:
/// one file copied raised six events, and reading them competed with the copies), so
/// that a file put in place raises one creation of its final name; and it reads its
/// events in batches ([`DEST_READ_DELAY`]).
fn watcher_config(tree: Tree) -> notify::Config {
    // (Symlinks are never followed: notify's default would walk into, and watch, a
    // linked directory outside the tree — all of `/` for a link to it.)
    let base = notify::Config::default().with_follow_symlinks(false);
    match tree {
        Tree::Source => base,
        Tree::Dest => base.with_ignored_names(crate::sys::is_temp_name).with_read_delay(DEST_READ_DELAY),
    }
}

/// The event handler of a watcher of `tree` of its own: events become [`Signal`]s on
/// `tx`.
fn handler(tx: Sender<Signal>, tree: Tree) -> impl notify::EventHandler {
    let mut lowered = false;
    move |res: notify::Result<notify::Event>| {
        lower_once(tree, &mut lowered);
        match res {
            Ok(ev) => deliver(&tx, tree, ev),
            Err(e) => send(&tx, error_signal(tree, &e)),
        }
    }
}

/// DEST's events are mostly tandem's own writes, compared only once the loop is quiet:
/// the thread reading them (notify's, on which the handler runs) yields to the copying
/// workers rather than competing with them.
fn lower_once(tree: Tree, lowered: &mut bool) {
    if tree == Tree::Dest && !*lowered {
        crate::sys::lower_thread_priority();
        *lowered = true;
    }
}

/// One event of a watcher of `tree`, as a [`Signal`] (or none) on `tx`.
fn deliver(tx: &Sender<Signal>, tree: Tree, mut ev: notify::Event) {
    let paths = move |p: Vec<PathBuf>| match tree {
        Tree::Source => Signal::Paths(p),
        Tree::Dest => Signal::DestPaths(p),
    };
    let is_temp = |p: &PathBuf| {
        p.file_name().is_some_and(|n| crate::sys::is_temp_name(crate::relpath::path_bytes(Path::new(n))))
    };
    // (A rename from one of tandem's temporaries is a file being put in place:
    // no directory to watch, no stat needed.)
    let from_temp = ev.paths.len() == 2 && is_temp(&ev.paths[0]);
    if tree == Tree::Dest && !ev.need_rescan() {
        // tandem's own temporaries come and go in DEST (created, written, given
        // attributes, renamed into place): nothing to compare, so they are not
        // even sent; a rename from one leaves its final name. (inotify drops them
        // before this, `watcher_config`; this is where every backend does, and the
        // one place the loop relies on.)
        ev.paths.retain(|p| !is_temp(p));
        if ev.paths.is_empty() {
            return;
        }
    }
    if ev.need_rescan() {
        let all = match tree {
            Tree::Source => Signal::All,
            Tree::Dest => Signal::DestAll("events were lost".into()),
        };
        send(tx, all);
        return;
    }
    match ev.kind {
        // Reads change nothing; a writer closing the file does (its final
        // state is there now).
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => send(tx, paths(ev.paths)),
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
                    send(tx, Signal::NewDirs(tree, dirs));
                }
            }
            send(tx, paths(ev.paths))
        }
    }
}

/// A watcher's error as the [`Signal`] for a loop watching `tree`.
fn error_signal(tree: Tree, e: &notify::Error) -> Signal {
    match tree {
        Tree::Dest => Signal::DestAll(describe(e)),
        Tree::Source if is_limit(e) => Signal::LimitReached(describe(e)),
        Tree::Source => Signal::Error(describe(e)),
    }
}

/// Where a [`Native`]'s inotify instance and thread come from.
enum Backend {
    /// Its own (`tandem --watch`; a service's mirror whose root overlaps another's).
    Own(RecommendedWatcher),
    /// The service's one watcher for this tree.
    Shared(Member),
}

impl Backend {
    /// Removes a recursive watch of `root`, and every watch below it, before returning
    /// (see `impl Drop for Native`). A service's [`Member`] removes its own watches
    /// when it is dropped.
    fn unwatch_tree(&mut self, root: &Path) {
        if let Backend::Own(w) = self {
            let _ = w.unwatch(root);
        }
    }

    fn new(root: &Path, tx: Sender<Signal>, tree: Tree, shared: bool) -> Result<Backend, String> {
        if shared {
            if let Some(m) = Hub::join(tree, root, tx.clone())? {
                return Ok(Backend::Shared(m));
            }
        }
        let w = RecommendedWatcher::new(handler(tx, tree), watcher_config(tree)).map_err(|e| describe(&e))?;
        Ok(Backend::Own(w))
    }

    fn watch(&mut self, path: &Path, mode: RecursiveMode) -> notify::Result<()> {
        match self {
            Backend::Own(w) => w.watch(path, mode),
            Backend::Shared(m) => m.watch(path, mode),
        }
    }

    /// A round trip to notify's thread ([`Native::settle`]). On Linux, `configure` is
    /// one: the inotify backend takes the message (and changes nothing for it) after
    /// the batch of events it is reading, and the watches those events asked for, and
    /// the call waits for its answer. (The other backends are not used on Linux; for
    /// them this does nothing.)
    fn settle(&mut self) {
        #[cfg(target_os = "linux")]
        {
            let config = notify::Config::default();
            let _ = match self {
                Backend::Own(w) => w.configure(config),
                Backend::Shared(m) => crate::lock::lock(&m.hub.watcher).configure(config),
            };
        }
    }
}

/// A service's one watcher for a tree (SOURCE or DEST), shared by all its mirrors:
/// one inotify instance and one notify thread, whichever the number of mirrors.
pub struct Hub {
    watcher: Mutex<RecommendedWatcher>,
    /// Where each mirror's events go. (Taken by notify's thread for each event, and
    /// by a mirror joining or leaving, never while waiting for notify's thread.)
    routes: Arc<Mutex<Vec<Route>>>,
}

/// One mirror's place in a [`Hub`].
struct Route {
    id: u64,
    root: PathBuf,
    /// The root's device and inode: the same directory under another name.
    inode: Option<(u64, u64)>,
    tx: Sender<Signal>,
}

/// The service's hubs, SOURCE's and DEST's, started by the first mirror that needs
/// each (and kept until the process ends).
static HUBS: Mutex<[Option<Arc<Hub>>; 2]> = Mutex::new([None, None]);
static NEXT_ROUTE: AtomicU64 = AtomicU64::new(0);

impl Hub {
    fn get(tree: Tree) -> Result<Arc<Hub>, String> {
        let mut hubs = crate::lock::lock(&HUBS);
        let slot = &mut hubs[tree as usize];
        if let Some(h) = slot {
            return Ok(h.clone());
        }
        let routes = Arc::new(Mutex::new(Vec::new()));
        let w = RecommendedWatcher::new(router(routes.clone(), tree), watcher_config(tree))
            .map_err(|e| describe(&e))?;
        let h = Arc::new(Hub { watcher: Mutex::new(w), routes });
        *slot = Some(h.clone());
        Ok(h)
    }

    /// A route for `root` in `tree`'s hub; `None` when `root` overlaps a mirror's
    /// root already there (it needs a watcher of its own).
    fn join(tree: Tree, root: &Path, tx: Sender<Signal>) -> Result<Option<Member>, String> {
        let hub = Hub::get(tree)?;
        let inode = inode_of(root);
        let mut routes = crate::lock::lock(&hub.routes);
        let taken = routes.iter().any(|r| {
            r.root.starts_with(root) || root.starts_with(&r.root) || (inode.is_some() && r.inode == inode)
        });
        if taken {
            return Ok(None);
        }
        let id = NEXT_ROUTE.fetch_add(1, Ordering::Relaxed);
        routes.push(Route { id, root: root.to_path_buf(), inode, tx });
        drop(routes);
        Ok(Some(Member { hub, id, watched: FxHashSet::default() }))
    }
}

fn inode_of(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// A mirror's membership of a [`Hub`]: the paths it watches there, unwatched (and its
/// route removed) when it is dropped.
struct Member {
    hub: Arc<Hub>,
    id: u64,
    watched: FxHashSet<PathBuf>,
}

impl Member {
    fn watch(&mut self, path: &Path, mode: RecursiveMode) -> notify::Result<()> {
        let r = crate::lock::lock(&self.hub.watcher).watch(path, mode);
        // (A recursive watch that failed part-way left the watches it had set.)
        if r.is_ok() || mode == RecursiveMode::Recursive {
            self.watched.insert(path.to_path_buf());
        }
        r
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // Its events go nowhere from now on; then its watches go (those of a recursive
        // watch with its root). Some may be gone already (their directory was).
        crate::lock::lock(&self.hub.routes).retain(|r| r.id != self.id);
        let mut w = crate::lock::lock(&self.hub.watcher);
        for p in self.watched.drain() {
            let _ = w.unwatch(&p);
        }
    }
}

/// Whether `root` holds `path` (is it, or one of its ancestors), compared as bytes.
fn holds(root: &[u8], path: &[u8]) -> bool {
    path.starts_with(root) && (path.len() == root.len() || root.ends_with(b"/") || path[root.len()] == b'/')
}

/// The route whose root holds `path`. The roots in a hub never overlap (see
/// [`Hub::join`]), so at most one does, and it is the longest; events come in runs
/// from one tree, so the route of the last one is tried first.
fn owner(routes: &[Route], last: &mut usize, path: &Path) -> Option<usize> {
    let p = crate::relpath::path_bytes(path);
    if routes.get(*last).is_some_and(|r| holds(crate::relpath::path_bytes(&r.root), p)) {
        return Some(*last);
    }
    let i = routes.iter().position(|r| holds(crate::relpath::path_bytes(&r.root), p))?;
    *last = i;
    Some(i)
}

/// The event handler of a [`Hub`]: each event goes to the mirror whose root holds its
/// paths (split between mirrors when they are in two); a queue overflow, or an error
/// naming no path, to every mirror.
fn router(routes: Arc<Mutex<Vec<Route>>>, tree: Tree) -> impl notify::EventHandler {
    let mut lowered = false;
    let mut last = 0;
    move |res: notify::Result<notify::Event>| {
        lower_once(tree, &mut lowered);
        let routes = crate::lock::lock(&routes);
        match res {
            Ok(ev) if ev.need_rescan() || ev.paths.is_empty() => {
                for r in routes.iter() {
                    deliver(&r.tx, tree, ev.clone());
                }
            }
            Ok(ev) => {
                let owners: Vec<Option<usize>> =
                    ev.paths.iter().map(|p| owner(&routes, &mut last, p)).collect();
                if owners.windows(2).all(|w| w[0] == w[1]) {
                    if let Some(Some(i)) = owners.first() {
                        deliver(&routes[*i].tx, tree, ev);
                    }
                    return;
                }
                // (A rename from one mirror's tree into another's: each its path.)
                let mut seen = Vec::new();
                for i in owners.iter().flatten() {
                    if seen.contains(i) {
                        continue;
                    }
                    seen.push(*i);
                    let mut part = ev.clone();
                    part.paths = ev
                        .paths
                        .iter()
                        .zip(&owners)
                        .filter(|(_, o)| **o == Some(*i))
                        .map(|(p, _)| p.clone())
                        .collect();
                    deliver(&routes[*i].tx, tree, part);
                }
            }
            Err(e) => {
                let mut to: Vec<usize> =
                    e.paths.iter().filter_map(|p| owner(&routes, &mut last, p)).collect();
                to.dedup();
                if e.paths.is_empty() {
                    to = (0..routes.len()).collect();
                }
                for i in to {
                    send(&routes[i].tx, error_signal(tree, &e));
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{Event, Flag};
    use notify::EventHandler;
    use std::sync::mpsc::{channel, Receiver};

    /// A hub's routes for `roots`, and each route's receiving end.
    fn routes(roots: &[&str]) -> (Arc<Mutex<Vec<Route>>>, Vec<Receiver<Signal>>) {
        let mut v = Vec::new();
        let mut rxs = Vec::new();
        for (id, root) in roots.iter().enumerate() {
            let (tx, rx) = channel();
            v.push(Route { id: id as u64, root: PathBuf::from(root), inode: None, tx });
            rxs.push(rx);
        }
        (Arc::new(Mutex::new(v)), rxs)
    }

    /// The paths of the `Paths`/`DestPaths` signals received, and how many others.
    fn received(rx: &Receiver<Signal>) -> (Vec<PathBuf>, Vec<Signal>) {
        let mut paths = Vec::new();
        let mut other = Vec::new();
        for s in rx.try_iter() {
            match s {
                Signal::Paths(p) | Signal::DestPaths(p) => paths.extend(p),
                s => other.push(s),
            }
        }
        (paths, other)
    }

    const BASE: &str = "/nonexistent-tandem-hub-test";

    #[test]
    fn an_event_goes_to_the_mirror_whose_root_holds_it() {
        let (r, rx) = routes(&[&format!("{BASE}/p1"), &format!("{BASE}/p10")]);
        let mut h = router(r, Tree::Source);
        let p = PathBuf::from(format!("{BASE}/p10/x.txt"));
        h.handle_event(Ok(Event::new(EventKind::Create(CreateKind::File)).add_path(p.clone())));
        let q = PathBuf::from(format!("{BASE}/p1/y.txt"));
        h.handle_event(Ok(Event::new(EventKind::Modify(ModifyKind::Any)).add_path(q.clone())));
        // Outside every root (a mirror gone since): nobody's.
        let o = PathBuf::from(format!("{BASE}/other/z"));
        h.handle_event(Ok(Event::new(EventKind::Modify(ModifyKind::Any)).add_path(o)));
        assert_eq!(received(&rx[0]).0, vec![q]);
        assert_eq!(received(&rx[1]).0, vec![p]);
        // A root written with a trailing slash, and the root itself.
        let (r, rx) = routes(&[&format!("{BASE}/t/"), &format!("{BASE}/u")]);
        let mut h = router(r, Tree::Source);
        for p in [format!("{BASE}/t/x"), format!("{BASE}/t/"), format!("{BASE}/u"), format!("{BASE}/uv/y")] {
            h.handle_event(Ok(Event::new(EventKind::Modify(ModifyKind::Any)).add_path(PathBuf::from(p))));
        }
        let t = [format!("{BASE}/t/x"), format!("{BASE}/t/")].map(PathBuf::from).to_vec();
        assert_eq!(received(&rx[0]).0, t);
        assert_eq!(received(&rx[1]).0, vec![PathBuf::from(format!("{BASE}/u"))]);
    }

    #[test]
    fn an_overflow_reaches_every_mirror_of_the_hub() {
        let (r, rx) = routes(&[&format!("{BASE}/a"), &format!("{BASE}/b")]);
        let mut h = router(r, Tree::Source);
        h.handle_event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        for rx in &rx {
            let (_, other) = received(rx);
            assert!(matches!(other.as_slice(), [Signal::All]), "{other:?}");
        }
        let (r, rx) = routes(&[&format!("{BASE}/a"), &format!("{BASE}/b")]);
        let mut h = router(r, Tree::Dest);
        h.handle_event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        for rx in &rx {
            let (_, other) = received(rx);
            assert!(matches!(other.as_slice(), [Signal::DestAll(_)]), "{other:?}");
        }
    }

    #[test]
    fn a_rename_from_one_mirror_into_another_is_split() {
        let (r, rx) = routes(&[&format!("{BASE}/a"), &format!("{BASE}/b")]);
        let mut h = router(r, Tree::Source);
        let from = PathBuf::from(format!("{BASE}/a/f"));
        let to = PathBuf::from(format!("{BASE}/b/g"));
        h.handle_event(Ok(Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path(from.clone())
            .add_path(to.clone())));
        assert_eq!(received(&rx[0]).0, vec![from]);
        assert_eq!(received(&rx[1]).0, vec![to]);
    }

    #[test]
    fn an_error_goes_to_the_mirror_it_names_or_to_every_mirror() {
        let (r, rx) = routes(&[&format!("{BASE}/a"), &format!("{BASE}/b")]);
        let mut h = router(r, Tree::Source);
        let d = PathBuf::from(format!("{BASE}/b/new-dir"));
        h.handle_event(Err(notify::Error::new(ErrorKind::MaxFilesWatch).add_path(d)));
        assert!(received(&rx[0]).1.is_empty());
        assert!(matches!(received(&rx[1]).1.as_slice(), [Signal::LimitReached(_)]));
        h.handle_event(Err(notify::Error::io(std::io::Error::other("read failed"))));
        for rx in &rx {
            assert!(matches!(received(rx).1.as_slice(), [Signal::Error(_)]));
        }
    }
}
