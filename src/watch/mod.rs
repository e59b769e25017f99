//! Watch strategies: deciding *when* and *where* to look again.
//!
//! Both strategies feed one channel of [`Signal`]s: "these paths may have changed" or
//! "rescan everything"; neither copies anything. The loop (`schedule`) turns them into
//! [`Target`](crate::mirror::Target)s for the mirror's next cycle.
//!
//! - [`native`]: notify's recommended watcher (inotify on Linux), recursive.
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
    /// A problem worth telling the user (the loop rescans everything too).
    Error(String),
    /// The native watcher hit a kernel limit while running (new directories can no
    /// longer be watched): the loop switches to polling.
    LimitReached(String),
    /// DEST's watcher: these absolute paths in DEST changed (by tandem itself, or by
    /// someone else: the loop compares them with what it holds).
    DestPaths(Vec<PathBuf>),
    /// DEST's watcher lost events (a queue overflow) or failed: verify all of DEST.
    DestAll(String),
}

/// The running strategy; dropping it stops it.
#[allow(dead_code)] // held for their Drop
pub enum Running {
    Native(native::Native),
    Poll(poll::Poll),
}

impl Running {
    pub fn name(&self) -> &'static str {
        match self {
            Running::Native(_) => "native",
            Running::Poll(_) => "poll",
        }
    }

    /// A sync cycle ended: polling starts its next interval now.
    pub fn cycle_done(&self) {
        if let Running::Poll(p) = self {
            p.cycle_done();
        }
    }
}

/// What the user asked for.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    /// `--poll`: force polling at this interval.
    pub force_poll: Option<Duration>,
    /// Interval used when polling is chosen automatically.
    pub interval: Duration,
}

/// Starts the strategy for `source`; returns it, its name's reason, the channel, and a
/// sender for a later switch to polling ([`fallback_to_poll`]).
pub fn choose(source: &Path, wanted: Wanted) -> (Running, String, Receiver<Signal>, Sender<Signal>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let spare = tx.clone();
    let (running, reason, rx) = choose_with(source, wanted, tx, rx);
    (running, reason, rx, spare)
}

/// Polling from now on, at `interval`, on the same channel.
pub fn fallback_to_poll(interval: Duration, tx: Sender<Signal>) -> Running {
    Running::Poll(poll::Poll::start(interval, tx))
}

fn choose_with(
    source: &Path,
    wanted: Wanted,
    tx: Sender<Signal>,
    rx: Receiver<Signal>,
) -> (Running, String, Receiver<Signal>) {
    if let Some(interval) = wanted.force_poll {
        let reason = format!("--poll given: rescanning every {}", human_duration(interval));
        return (Running::Poll(poll::Poll::start(interval, tx)), reason, rx);
    }
    let fs = fstype::of(source);
    if fs.remote {
        let reason = format!(
            "SOURCE is on {} ({}), where native change events do not arrive: rescanning every {}",
            fs.name,
            fs.kind_text(),
            human_duration(wanted.interval)
        );
        return (Running::Poll(poll::Poll::start(wanted.interval, tx)), reason, rx);
    }
    match native::Native::start(source, tx.clone(), native::Tree::Source) {
        Ok(n) => {
            let reason = format!("SOURCE is on {} (a local file system): inotify events", fs.name);
            (Running::Native(n), reason, rx)
        }
        Err(hint) => {
            let reason = format!(
                "the native watcher could not start ({hint}): rescanning every {}",
                human_duration(wanted.interval)
            );
            (Running::Poll(poll::Poll::start(wanted.interval, tx)), reason, rx)
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
