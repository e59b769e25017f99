//! Watch mode's loop: when to sync, and what to look at.
//!
//! [`watch`] starts a strategy (`watch::choose`), has the mirror do a first full sync,
//! then turns the strategy's signals into [`Target`]s and runs a mirror cycle once the
//! changes have settled (debounce), until SIGINT/SIGTERM. What a cycle could not do is
//! retried with a back-off; a SOURCE or DEST that cannot be reached is reported and
//! retried the same way, never the end of the session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashSet;
use std::time::{Duration, Instant};

use super::native::Tree;
use super::Signal;
use crate::config::{Config, WatchConfig};
use crate::dest::Dest;
use crate::exit::{Exit, Failure};
use crate::ignore::IGNORE_FILE;
use crate::mirror::{Mirror, Target};
use crate::relpath::{parent, path_bytes};
use crate::report::Reporter;
use crate::source::Source;
use crate::status::PairState;

/// The longest a burst of changes can postpone a sync (no starvation), unless
/// `--debounce` asks for longer: then that is the longest.
const MIN_MAX_WAIT: Duration = Duration::from_secs(2);
/// How often the loop wakes without events: it checks for SIGINT/SIGTERM and for
/// retries that are due, so a stop is seen within this.
const TICK: Duration = Duration::from_millis(100);
/// The most signals taken from the channel in one go: a flood of events must not keep
/// the loop from syncing or from noticing a stop.
const DRAIN_MAX: usize = 100_000;
/// The first wait before a retry; each retry scheduled while one is pending doubles
/// it, up to [`MAX_BACKOFF`]; a cycle without failures resets it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest DEST's changes wait to be compared while SOURCE keeps changing.
const DEST_SETTLE: Duration = Duration::from_secs(1);
/// The longest an idle service's mirror sleeps without an event or a deadline (its
/// service wakes it for a stop).
const IDLE_MAX: Duration = Duration::from_secs(60);
/// The longest wait between retries: an unmounted share is tried again every minute.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A remote side's connection that was lost, and when to try it again.
struct Reconnecting {
    at: Instant,
    backoff: Duration,
}

/// What was lost, in words, if SOURCE's or DEST's connection was.
fn connection_lost(source: &dyn Source, dest: &dyn Dest) -> Option<String> {
    source.connection_lost().or_else(|| dest.connection_lost())
}

/// Connects again whichever side was lost.
fn reconnect(source: &dyn Source, dest: &dyn Dest) -> Result<(), String> {
    if source.connection_lost().is_some() {
        source.reconnect()?;
    }
    if dest.connection_lost().is_some() {
        dest.reconnect()?;
    }
    Ok(())
}

/// How a watch loop is driven from outside: on its own (`tandem --watch`: SIGHUP asks
/// for a verification), or as one mirror of a `--config` service (its own stop, its
/// state kept for the status file; SIGHUP is the service's).
#[derive(Default)]
pub struct Control {
    /// This mirror alone is to stop (removed or changed by a reload). SIGINT/SIGTERM
    /// stop every loop.
    pub stop: Option<Arc<AtomicBool>>,
    /// Where the loop says what it is doing (a service's status).
    pub status: Option<Arc<PairState>>,
    /// The loop's channel, for [`Control::wake`].
    waker: Mutex<Option<std::sync::mpsc::Sender<Signal>>>,
}

impl Control {
    pub fn new(stop: Arc<AtomicBool>, status: Arc<PairState>) -> Control {
        Control { stop: Some(stop), status: Some(status), waker: Mutex::new(None) }
    }

    /// Wakes the loop, so that it sees a stop at once (an idle service's mirror sleeps
    /// until its next deadline).
    pub fn wake(&self) {
        if let Some(tx) = crate::lock::lock(&self.waker).as_ref() {
            super::send(tx, Signal::Wake);
        }
    }

    pub fn stopping(&self) -> bool {
        crate::sys::stopping() || self.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
    }

    fn service(&self) -> bool {
        self.status.is_some()
    }

    pub fn update(&self, f: impl FnOnce(&mut crate::status::Snapshot)) {
        if let Some(s) = &self.status {
            s.update(f);
        }
    }
}

/// Pending retries and their back-off.
struct Retries {
    targets: Vec<Target>,
    at: Option<Instant>,
    backoff: Duration,
}

impl Retries {
    fn new(first: Vec<Target>) -> Retries {
        let at = (!first.is_empty()).then(|| Instant::now() + FIRST_BACKOFF);
        Retries { targets: first, at, backoff: FIRST_BACKOFF }
    }

    /// Queues `again` for a retry. A retry already scheduled is not postponed by later
    /// failures; a new one waits the back-off, which doubles up to [`MAX_BACKOFF`].
    fn schedule(&mut self, again: Vec<Target>) {
        self.targets.extend(again);
        if self.at.is_none() {
            self.at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The targets whose retry is due now.
    fn due(&mut self, now: Instant) -> Option<Vec<Target>> {
        if self.at.is_some_and(|t| t <= now) {
            self.at = None;
            return Some(std::mem::take(&mut self.targets));
        }
        None
    }
}

/// Watch mode: mirror once, then sync what changes until SIGINT/SIGTERM. Returns
/// [`Exit::Ok`] when stopped by a signal.
pub fn watch(
    cfg: &Config,
    w: &WatchConfig,
    source: &dyn Source,
    dest: &dyn Dest,
    rep: &Reporter,
    ctl: &Control,
) -> Result<Exit, Failure> {
    if !ctl.service() {
        crate::sys::install_hangup_handler();
    }
    // Start watching before the first sync, so nothing changed during it is missed.
    let wanted = super::Wanted {
        force_poll: w.force_poll,
        interval: w.interval,
        one_file_system: cfg.one_file_system.is_some(),
        remote_source: source.local().is_none(),
        shared: ctl.service(),
    };
    let (mut running, reason, rx, spare_tx) = super::choose(&cfg.source, wanted);
    *crate::lock::lock(&ctl.waker) = Some(spare_tx.clone());
    rep.strategy(running.name(), &reason);
    ctl.update(|s| {
        s.strategy = Some(running.describe());
        s.state = "syncing";
    });
    let polling = running.polls_everything();
    let started = Instant::now();
    let (mut mirror, first_retries) = Mirror::start(cfg, source, dest, rep)?;
    if let Some(s) = &ctl.status {
        s.synced(if first_retries.is_empty() && rep.errors() == 0 { "ok" } else { "errors" });
    }
    ctl.update(|s| {
        s.state = "idle";
        s.held_back = mirror.held_back();
    });
    // DEST is watched from here on: what happened during the first sync was tandem's.
    let mut dest_watch = watch_dest(w, dest, rep, spare_tx.clone(), ctl.service());
    crate::sys::release_free_memory();
    let mut cycle_no = 0u64;
    rep.cycle(cycle_no, started.elapsed(), false);
    rep.progress().status(&idle_status(&running.describe(), rep));
    // Polling: a tick is already the end of a quiet interval.
    let mut debounce = if polling { Duration::ZERO } else { w.debounce };
    let max_wait = MIN_MAX_WAIT.max(w.debounce);
    let mut pending: Vec<Target> = Vec::new();
    let mut first_at: Option<Instant> = None;
    let mut last_at = Instant::now();
    let mut retries = Retries::new(first_retries);
    let mut next_verify = w.verify_every.map(|d| Instant::now() + d);
    // A full verification is part of the next cycle (asked by the timer or SIGHUP).
    let mut verify_due = false;
    // Why cycles are paused (SOURCE's or DEST's root gone), if they are.
    let mut paused: Option<String> = None;
    let mut dest_changed: FxHashSet<Vec<u8>> = FxHashSet::default();
    let mut dest_since: Option<Instant> = None;
    // A remote side's lost connection, being re-established.
    let mut reconnecting: Option<Reconnecting> = None;
    while !ctl.stopping() {
        ctl.update(|s| s.pending = (pending.len() + dest_changed.len()) as u64);
        let now = Instant::now();
        let wait = match first_at {
            Some(first) => {
                let quiet = debounce.saturating_sub(now - last_at);
                let cap = max_wait.saturating_sub(now - first);
                quiet.min(cap).min(TICK)
            }
            // A service's idle mirror sleeps until its next deadline (a retry, a
            // verification) or an event: fifty idle mirrors cost what one does. Alone,
            // the loop also watches for SIGHUP.
            None if ctl.service() && dest_changed.is_empty() => {
                let mut until = IDLE_MAX;
                let reconnect_at = reconnecting.as_ref().map(|r| r.at);
                for at in [retries.at, next_verify, reconnect_at].into_iter().flatten() {
                    until = until.min(at.saturating_duration_since(now));
                }
                until.max(Duration::from_millis(1))
            }
            None => TICK,
        };
        let mut quiet = false;
        match rx.recv_timeout(wait) {
            Ok(sig) => {
                let mut limit = None;
                let mut new_dirs = false;
                for sig in
                    std::iter::once(sig).chain(std::iter::from_fn(|| rx.try_recv().ok()).take(DRAIN_MAX))
                {
                    match &sig {
                        Signal::LimitReached(msg) => {
                            limit.get_or_insert(msg.clone());
                        }
                        Signal::NewDirs(Tree::Source, dirs) => {
                            new_dirs = true;
                            if let Some(reason) = running.add_dirs(dirs) {
                                rep.strategy(running.name(), &reason);
                                ctl.update(|s| s.strategy = Some(running.describe()));
                            }
                            // What changed inside before its watch was in place raised
                            // no event: the cycle reads each again after its other
                            // looks (one may have read it while that was going on).
                            pending.extend(dirs.iter().filter_map(|d| {
                                let r = d.strip_prefix(&cfg.source).ok()?;
                                Some(Target::Recheck(path_bytes(r).to_vec()))
                            }));
                        }
                        Signal::NewDirs(Tree::Dest, dirs) => {
                            if let Some(d) = dest_watch.as_mut() {
                                // (What the limit leaves unwatched in DEST is repaired
                                // by --verify-every.)
                                for dir in dirs {
                                    d.add_tree(dir);
                                }
                            }
                        }
                        _ => {}
                    }
                    add_targets(cfg, rep, &mirror, sig, &mut pending, &mut dest_changed);
                }
                if new_dirs {
                    // The second look at a directory moved in must not start before
                    // notify watches it under its new name (once for all of them).
                    running.settle();
                }
                if let (Some(msg), false) = (limit, running.polls_everything()) {
                    // Directories could no longer be watched: what can be stays
                    // native, the rest is polled (all of it when the watches cannot be
                    // set up again); what changed meanwhile is found by a rescan.
                    match running.limit_reached(&msg) {
                        Some(reason) => {
                            ctl.update(|s| s.strategy = Some(running.describe()));
                            rep.strategy(running.name(), &reason)
                        }
                        None => {
                            ctl.update(|s| s.strategy = Some(running.describe()));
                            debounce = Duration::ZERO;
                            rep.strategy(
                                running.name(),
                                &format!(
                                    "switched from native events: {msg}; rescanning every {}",
                                    super::human_duration(w.interval)
                                ),
                            );
                        }
                    }
                    pending.push(Target::Deep(Vec::new()));
                }
                // Signals that asked for nothing (events in excluded directories,
                // tandem's own writes in DEST) do not start or prolong a debounce.
                if !pending.is_empty() {
                    last_at = Instant::now();
                    first_at.get_or_insert(last_at);
                }
            }
            Err(RecvTimeoutError::Timeout) => quiet = true,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Failure::fatal("the watcher stopped unexpectedly"));
            }
        }
        let now = Instant::now();
        // A lost connection pauses cycles (changes keep being collected) until it is
        // made again, with a back-off; then all of DEST is verified: nothing is lost.
        if let Some(r) = reconnecting.as_mut().filter(|r| r.at <= now) {
            match reconnect(source, dest) {
                Ok(()) => {
                    rep.notice("connected again: verifying all of DEST");
                    ctl.update(|s| s.paused = None);
                    reconnecting = None;
                    verify_due = true;
                }
                Err(why) => {
                    r.backoff = (r.backoff * 2).min(MAX_BACKOFF);
                    r.at = now + r.backoff;
                    rep.notice(&format!("{why}; trying again in {}s", r.backoff.as_secs()));
                }
            }
        }
        if reconnecting.is_none() {
            if let Some(why) = connection_lost(source, dest) {
                rep.notice(&format!(
                    "{why}; syncing is paused, connecting again in {}s",
                    FIRST_BACKOFF.as_secs()
                ));
                ctl.update(|s| {
                    s.state = "paused";
                    s.paused = Some(why.clone());
                });
                reconnecting = Some(Reconnecting { at: now + FIRST_BACKOFF, backoff: FIRST_BACKOFF });
            }
        }
        if reconnecting.is_some() {
            continue;
        }
        // The DEST paths that changed are compared with what is held (tandem's own
        // writes match; anything else queues a repair) once the loop is quiet, so that
        // this stays off a burst's path, or after DEST_SETTLE at the latest.
        if dest_changed.is_empty() {
            dest_since = None;
        } else if (quiet && pending.is_empty()) || dest_since.get_or_insert(now).elapsed() >= DEST_SETTLE {
            pending.extend(mirror.dest_drift(dest_changed.drain().collect()));
            dest_since = None;
            if !pending.is_empty() {
                last_at = now;
                first_at.get_or_insert(now);
            }
        }
        if let Some(mut due) = retries.due(now) {
            pending.append(&mut due);
            first_at.get_or_insert(now);
        }
        // (A service's SIGHUP reloads its configuration instead.)
        let hangup = !ctl.service() && crate::sys::take_hangup();
        if hangup || next_verify.is_some_and(|t| t <= now) {
            if hangup {
                rep.notice("SIGHUP: verifying all of DEST");
            }
            verify_due = true;
            next_verify = w.verify_every.map(|d| now + d);
        }
        let due =
            verify_due || first_at.is_some_and(|first| now - last_at >= debounce || now - first >= max_wait);
        if !due || ctl.stopping() {
            continue;
        }
        // Nothing is written while a root is gone or is a bare mount point.
        let missing = mirror.roots_missing();
        if connection_lost(source, dest).is_some() {
            // (Found lost just now: said, and made again, at the top of the loop.)
            continue;
        }
        match (missing, &paused) {
            (Some(why), None) => {
                rep.notice(&format!("{why}; syncing is paused until it is back"));
                ctl.update(|s| {
                    s.state = "paused";
                    s.paused = Some(why.clone());
                });
                paused = Some(why);
                continue;
            }
            (Some(_), Some(_)) => continue,
            (None, Some(_)) => {
                rep.notice("SOURCE and DEST are back: verifying all of DEST");
                ctl.update(|s| s.paused = None);
                paused = None;
                verify_due = true;
            }
            (None, None) => {}
        }
        first_at = None;
        let mut targets = std::mem::take(&mut pending);
        let verify = std::mem::take(&mut verify_due);
        if verify {
            targets.push(Target::Verify(Vec::new()));
        }
        rep.debug(&format!(
            "cycle {}: {}: {}{}",
            cycle_no + 1,
            crate::counts::count(targets.len() as u64, "target", "targets"),
            targets.iter().take(8).map(target_text).collect::<Vec<_>>().join(", "),
            if targets.len() > 8 { ", …" } else { "" }
        ));
        let t0 = Instant::now();
        cycle_no += 1;
        ctl.update(|s| {
            s.state = "syncing";
            s.pending = 0;
        });
        let errors_before = rep.errors();
        let result = match mirror.cycle(targets, rep) {
            Ok(again) if again.is_empty() => {
                retries.backoff = FIRST_BACKOFF;
                if rep.errors() == errors_before {
                    "ok"
                } else {
                    "errors"
                }
            }
            Ok(again) => {
                retries.schedule(again);
                "errors"
            }
            Err(Failure::Unreachable(message)) => {
                // SOURCE or DEST unreadable (unmounted?): say so, try again later. (A
                // lost connection is said, and made again, at the top of the loop.)
                if connection_lost(source, dest).is_none() {
                    rep.notice(&format!("{message}; retrying in {}s", retries.backoff.as_secs()));
                }
                ctl.update(|s| {
                    s.state = "retrying";
                    s.paused = Some(message.clone());
                });
                retries.schedule(vec![Target::Deep(Vec::new())]);
                "unreachable"
            }
            Err(f) => return Err(f),
        };
        if let Some(s) = &ctl.status {
            s.synced(result);
        }
        ctl.update(|s| {
            if result != "unreachable" {
                s.state = "idle";
                s.paused = None;
            }
            s.cycles = cycle_no;
            s.held_back = mirror.held_back();
        });
        rep.cycle(cycle_no, t0.elapsed(), verify);
        running.cycle_done();
        crate::sys::release_free_memory();
        rep.progress().status(&idle_status(&running.describe(), rep));
    }
    drop(running);
    ctl.update(|s| s.state = "stopped");
    rep.set_watched(mirror.entries(), cycle_no + 1);
    Ok(Exit::Ok)
}

/// Starts watching DEST for changes made by others, where that is asked for and
/// events can be had there; says so either way.
fn watch_dest(
    w: &WatchConfig,
    dest: &dyn Dest,
    rep: &Reporter,
    tx: std::sync::mpsc::Sender<Signal>,
    shared: bool,
) -> Option<super::native::Native> {
    if !w.watch_dest {
        return None;
    }
    let Some(path) = dest.watch_path() else {
        rep.notice(&format!(
            "DEST {} raises no change events here (another host, an object store, or a network or FUSE file system): changes made there by others are repaired by --verify-every",
            dest.shown()
        ));
        return None;
    };
    match super::native::Native::start(&path, tx, Tree::Dest, Vec::new(), shared) {
        Ok((n, cov)) => {
            if let Some(limit) = cov.limit {
                rep.notice(&format!(
                    "DEST is watched only in part ({limit}; {} directories not watched): changes others make there are repaired by --verify-every",
                    cov.unwatched_dirs
                ));
            }
            Some(n)
        }
        Err(hint) => {
            rep.notice(&format!(
                "cannot watch DEST for changes made by others ({hint}); they are repaired by --verify-every"
            ));
            None
        }
    }
}

/// The watch-mode status line: strategy, when SOURCE was last looked at, and the
/// counts so far.
fn idle_status(strategy: &str, rep: &Reporter) -> String {
    let s = rep.summary_counts();
    let now = crate::sys::local_timestamp();
    let time = now.get(11..19).unwrap_or(&now);
    format!(
        "watching ({strategy}); last look at {time}; so far {} copied, {} deleted, {} renamed, {}",
        s.copied,
        s.deleted,
        s.renamed,
        crate::counts::count(s.errors, "error", "errors")
    )
}

/// Turns a strategy's signal into cycle targets.
fn add_targets(
    cfg: &Config,
    rep: &Reporter,
    mirror: &Mirror<'_>,
    sig: Signal,
    pending: &mut Vec<Target>,
    dest_changed: &mut FxHashSet<Vec<u8>>,
) {
    let rel_of = |p: &std::path::Path| -> Option<Vec<u8>> {
        let r = p.strip_prefix(&cfg.source).ok()?;
        Some(path_bytes(r).to_vec())
    };
    match sig {
        Signal::DestPaths(paths) => {
            // Compared with what is held once the drain is over, each path once.
            for p in paths {
                let Ok(r) = p.strip_prefix(&cfg.dest) else { continue };
                // (tandem's own temporaries never get here: DEST's handler drops them.)
                dest_changed.insert(path_bytes(r).to_vec());
            }
        }
        Signal::DestAll(why) => {
            rep.notice(&format!("DEST's watcher: {why}; verifying all of DEST"));
            pending.push(Target::Verify(Vec::new()));
        }
        Signal::All => pending.push(Target::Deep(Vec::new())),
        Signal::Rescan(paths) => {
            for p in paths {
                pending.push(Target::Deep(rel_of(&p).unwrap_or_default()));
            }
        }
        Signal::NewDirs(..) | Signal::Wake => {}
        Signal::Error(msg) | Signal::LimitReached(msg) => {
            rep.notice(&format!("watcher: {msg}; rescanning"));
            pending.push(Target::Deep(Vec::new()));
        }
        Signal::Paths(paths) => {
            for p in paths {
                let Some(r) = rel_of(&p) else {
                    pending.push(Target::Deep(Vec::new()));
                    continue;
                };
                if r.is_empty() {
                    pending.push(Target::Level(Vec::new()));
                } else if r.ends_with(IGNORE_FILE)
                    && (r.len() == IGNORE_FILE.len() || r[r.len() - IGNORE_FILE.len() - 1] == b'/')
                {
                    // Rules changed: everything below is judged again.
                    pending.push(Target::Deep(parent(&r).to_vec()));
                } else if !mirror.inside_excluded_dir(&r) {
                    // (Changes inside an excluded directory concern nothing DEST mirrors.)
                    pending.push(Target::Level(parent(&r).to_vec()));
                }
            }
        }
    }
}

/// A cycle's target in words, for `-vv`: `rescan of docs (whole subtree)`.
fn target_text(t: &Target) -> String {
    let (what, path) = match t {
        Target::Level(p) => ("re-read of", p),
        Target::Deep(p) => ("rescan of the subtree", p),
        Target::Verify(p) => ("verification of", p),
        Target::Repair(p) => ("repair in DEST of", p),
        Target::Recheck(p) => ("second look at the new directory", p),
    };
    let shown = if path.is_empty() { ".".to_string() } else { crate::relpath::shown(path).to_string() };
    format!("{what} {shown}")
}
