//! Watch strategies: deciding *when* and *where* to look again.
//!
//! Both strategies feed one channel of [`Signal`]s: "these paths may have changed" or
//! "rescan everything"; neither copies anything. The loop (`schedule`) turns them into
//! [`Target`](crate::mirror::Target)s for the mirror's next cycle.
//!
//! - [`native`]: notify's recommended watcher (inotify on Linux), recursive; in a
//!   `--config` service one per tree shared by every mirror ([`native::Hub`]).
//! - [`poll`]: a timer; each tick asks for a parallel rescan of SOURCE.
//!
//! [`choose`] picks one: polling when SOURCE is on a network or FUSE file system (where
//! changes made by other machines, or underneath the FUSE mount, raise no events), or
//! when `--poll` is given, or when the native watcher cannot start (inotify limits,
//! turned into a hint saying which limit and how to raise it).

pub mod fstype;
pub mod native;
pub mod poll;
pub mod schedule;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

/// What a strategy tells the watch loop.
#[derive(Debug)]
pub enum Signal {
    /// These absolute paths (or their directories' listings) may have changed.
    Paths(Vec<PathBuf>),
    /// Rescan everything (a poll tick, a queue overflow, a watcher error).
    All,
    /// Rescan these subtrees (a poll tick of a mixed strategy).
    Rescan(Vec<PathBuf>),
    /// These directories appeared in the tree a native watcher watches: watch them.
    NewDirs(native::Tree, Vec<PathBuf>),
    /// A problem worth telling the user (the loop rescans everything too).
    Error(String),
    /// The native watcher hit a kernel limit while running: the loop polls
    /// everything from now on.
    LimitReached(String),
    /// DEST's watcher: these absolute paths in DEST changed (by tandem itself, or by
    /// someone else: the loop compares them with what it holds).
    DestPaths(Vec<PathBuf>),
    /// DEST's watcher lost events (a queue overflow) or failed: verify all of DEST.
    DestAll(String),
    /// Nothing changed: a service asks its mirror's loop to look at its stop flag now
    /// (the loop of a service's mirror sleeps until its next deadline when idle).
    Wake,
}

/// The running strategy: native events, polling, or both (native events for the local
/// parts of SOURCE, polling for the subtrees where events cannot be had). Dropping it
/// stops it.
pub struct Running {
    native: Option<native::Native>,
    poll: Option<poll::Poll>,
    /// The subtrees polled beside native events (empty when polling everything).
    polled: Vec<PathBuf>,
    /// Directories the watch limit left unwatched in `polled`.
    unwatched_dirs: usize,
    interval: Duration,
    tx: Sender<Signal>,
    /// SOURCE's root.
    root: PathBuf,
    /// Native events come through the service's shared watcher ([`native::Hub`]).
    shared: bool,
}

impl Running {
    pub fn name(&self) -> &'static str {
        match (&self.native, &self.poll) {
            (Some(_), None) => "native",
            (Some(_), Some(_)) => "mixed",
            _ => "poll",
        }
    }

    /// The strategy for the status line: `native`, `poll`, or `mixed (2 subtrees
    /// polled)`.
    pub fn describe(&self) -> String {
        match self.name() {
            "mixed" => format!(
                "mixed: native events, {} polled",
                crate::counts::count(self.polled.len() as u64, "subtree", "subtrees")
            ),
            name => name.to_string(),
        }
    }

    /// Nothing comes from native events: a poll tick already ends a quiet interval.
    pub fn polls_everything(&self) -> bool {
        self.native.is_none()
    }

    /// A sync cycle ended: polling starts its next interval now.
    pub fn cycle_done(&self) {
        if let Some(p) = &self.poll {
            p.cycle_done();
        }
    }

    /// The kernel's watch limit ran out while running (`msg` says which). Under
    /// notify's recursive mode, which cannot say what it left unwatched, SOURCE is
    /// watched again directory by directory: what fits stays native, only the
    /// subtrees left out are polled (the strategy becomes mixed). Returns the new
    /// strategy's reason; the caller rescans all of SOURCE, for what changed while the
    /// watches were being set up again. `None`: polls everything from now on.
    pub fn limit_reached(&mut self, msg: &str) -> Option<String> {
        let recursive = self.native.as_ref().is_some_and(native::Native::is_recursive);
        if recursive {
            // (The old watches go first, so the new ones fit where they did.)
            self.native = None;
            if let Ok((n, cov)) = native::Native::start_each(
                &self.root,
                self.tx.clone(),
                native::Tree::Source,
                Vec::new(),
                self.shared,
            ) {
                self.native = Some(n);
                if cov.unwatched.is_empty() {
                    return Some(format!("{msg}; watching directory by directory now, all of them watched"));
                }
                self.polled = cov.unwatched;
                self.unwatched_dirs = cov.unwatched_dirs;
                self.poll =
                    Some(poll::Poll::start(self.interval, self.tx.clone(), Some(self.polled.clone())));
                return Some(format!(
                    "native events for the rest; {}; polling {} ({}) every {}",
                    cov.limit.as_deref().unwrap_or(msg),
                    crate::counts::count(self.polled.len() as u64, "subtree", "subtrees"),
                    crate::counts::count(
                        self.unwatched_dirs as u64,
                        "unwatched directory",
                        "unwatched directories"
                    ),
                    human_duration(self.interval)
                ));
            }
        }
        self.poll_everything();
        None
    }

    /// Polls everything from now on (native events failed while running).
    pub fn poll_everything(&mut self) {
        self.native = None;
        self.polled.clear();
        self.poll = Some(poll::Poll::start(self.interval, self.tx.clone(), None));
    }

    /// Directories appeared in SOURCE (made, or moved in) and are about to be looked at:
    /// returns once notify's recursive mode watches them ([`native::Native::settle`]).
    pub fn settle(&mut self) {
        if let Some(n) = self.native.as_mut() {
            n.settle();
        }
    }

    /// Directories appeared in SOURCE: watch them. Returns the strategy's new reason
    /// when some could not be watched (they are polled from now on).
    pub fn add_dirs(&mut self, dirs: &[PathBuf]) -> Option<String> {
        let n = self.native.as_mut()?;
        let mut cov = native::Coverage::default();
        for d in dirs {
            let c = n.add_tree(d);
            cov.unwatched_dirs += c.unwatched_dirs;
            cov.unwatched.extend(c.unwatched);
            cov.limit = cov.limit.or(c.limit);
        }
        if cov.unwatched.is_empty() {
            return None;
        }
        self.polled.extend(cov.unwatched);
        self.unwatched_dirs += cov.unwatched_dirs;
        self.poll = Some(poll::Poll::start(self.interval, self.tx.clone(), Some(self.polled.clone())));
        Some(format!(
            "native events for the rest; {}; polling {} ({}) every {}",
            cov.limit.unwrap_or_else(|| "some directories could not be watched".into()),
            crate::counts::count(self.polled.len() as u64, "subtree", "subtrees"),
            crate::counts::count(self.unwatched_dirs as u64, "unwatched directory", "unwatched directories"),
            human_duration(self.interval)
        ))
    }
}

/// What the user asked for.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    /// `--poll`: force polling at this interval.
    pub force_poll: Option<Duration>,
    /// Interval used when polling is chosen automatically.
    pub interval: Duration,
    /// `-x`: file systems mounted inside SOURCE are left out (neither read nor
    /// watched).
    pub one_file_system: bool,
    /// SOURCE is on another host (`host:path`): no events can arrive from it, so it is
    /// polled, through the SOURCE seam.
    pub remote_source: bool,
    /// One mirror of a `--config` service: native events through the watcher every
    /// mirror shares ([`native::Hub`]) rather than one of its own.
    pub shared: bool,
}

/// Starts the strategy for `source`; returns it, its reason, the channel, and a
/// sender for other watchers of the same loop (DEST's).
pub fn choose(source: &Path, wanted: Wanted) -> (Running, String, Receiver<Signal>, Sender<Signal>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let spare = tx.clone();
    let (running, reason) = choose_with(source, wanted, tx);
    (running, reason, rx, spare)
}

fn choose_with(source: &Path, wanted: Wanted, tx: Sender<Signal>) -> (Running, String) {
    let root = source.to_path_buf();
    let polling = |interval: Duration, tx: Sender<Signal>| Running {
        native: None,
        poll: Some(poll::Poll::start(interval, tx.clone(), None)),
        polled: Vec::new(),
        unwatched_dirs: 0,
        interval,
        tx,
        root: root.clone(),
        shared: wanted.shared,
    };
    if let Some(interval) = wanted.force_poll {
        let reason = format!("--poll given: rescanning every {}", human_duration(interval));
        return (polling(interval, tx), reason);
    }
    let interval = wanted.interval;
    if wanted.remote_source {
        let reason = format!(
            "SOURCE is on another host, where no change events reach this one: rescanning it every {}",
            human_duration(interval)
        );
        return (polling(interval, tx), reason);
    }
    let fs = fstype::of(source);
    if fs.remote {
        let reason = format!(
            "SOURCE is on {} ({}), where native change events do not arrive: rescanning every {}",
            fs.name,
            fs.kind_text(),
            human_duration(interval)
        );
        return (polling(interval, tx), reason);
    }
    // File systems mounted inside SOURCE: with -x left out; otherwise the network and
    // FUSE ones are polled (no events arrive from them), the local ones watched.
    let mounts = fstype::mounts_below(source);
    let remote_mounts: Vec<(PathBuf, fstype::FsInfo)> = if wanted.one_file_system {
        Vec::new()
    } else {
        mounts.iter().map(|m| (m.clone(), fstype::of(m))).filter(|(_, f)| f.remote).collect()
    };
    let skip =
        if wanted.one_file_system { mounts } else { remote_mounts.iter().map(|(m, _)| m.clone()).collect() };
    match native::Native::start(source, tx.clone(), native::Tree::Source, skip, wanted.shared) {
        Ok((n, cov)) => {
            let mut polled: Vec<PathBuf> = remote_mounts.iter().map(|(m, _)| m.clone()).collect();
            let mut parts = Vec::new();
            for (m, f) in &remote_mounts {
                parts.push(format!("{} is on {} ({})", m.display(), f.name, f.kind_text()));
            }
            if let Some(limit) = &cov.limit {
                parts.push(format!(
                    "{limit}: {} ({}) could not be watched",
                    crate::counts::count(cov.unwatched.len() as u64, "subtree", "subtrees"),
                    crate::counts::count(cov.unwatched_dirs as u64, "directory", "directories")
                ));
            }
            polled.extend(cov.unwatched);
            if polled.is_empty() {
                let reason = format!("SOURCE is on {} (a local file system): inotify events", fs.name);
                let running = Running {
                    native: Some(n),
                    poll: None,
                    polled,
                    unwatched_dirs: 0,
                    interval,
                    tx,
                    root,
                    shared: wanted.shared,
                };
                return (running, reason);
            }
            let reason = format!(
                "inotify events for SOURCE ({}) except {} polled every {}: {}",
                fs.name,
                crate::counts::count(polled.len() as u64, "subtree", "subtrees"),
                human_duration(interval),
                parts.join("; ")
            );
            let poll = poll::Poll::start(interval, tx.clone(), Some(polled.clone()));
            let running = Running {
                native: Some(n),
                poll: Some(poll),
                polled,
                unwatched_dirs: cov.unwatched_dirs,
                interval,
                tx,
                root,
                shared: wanted.shared,
            };
            (running, reason)
        }
        Err(hint) => {
            let reason = format!(
                "the native watcher could not start ({hint}): rescanning every {}",
                human_duration(interval)
            );
            (polling(interval, tx), reason)
        }
    }
}

pub fn human_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Sends, ignoring a closed channel (the loop has ended).
pub(crate) fn send(tx: &Sender<Signal>, s: Signal) {
    let _ = tx.send(s);
}
