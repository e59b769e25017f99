//! Watch mode's loop: when to sync, and what to look at.
//!
//! [`watch`] starts a strategy (`watch::choose`), has the mirror do a first full sync,
//! then turns the strategy's signals into [`Target`]s and runs a mirror cycle once the
//! changes have settled (debounce), until SIGINT/SIGTERM. What a cycle could not do is
//! retried with a back-off; a SOURCE or DEST that cannot be reached is reported and
//! retried the same way, never the end of the session.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::{Running, Signal};
use crate::config::{Config, WatchConfig};
use crate::dest::Dest;
use crate::exit::{Exit, Failure};
use crate::ignore::IGNORE_FILE;
use crate::mirror::{Mirror, Target};
use crate::relpath::{parent, path_bytes};
use crate::report::Reporter;
use crate::tree::LocalTree;

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
/// The longest wait between retries: an unmounted share is tried again every minute.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

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
    source: &LocalTree,
    dest: &dyn Dest,
    rep: &Reporter,
) -> Result<Exit, Failure> {
    // Start watching before the first sync, so nothing changed during it is missed.
    let wanted = super::Wanted { force_poll: w.force_poll, interval: w.interval };
    let (mut running, reason, rx, spare_tx) = super::choose(&cfg.source, wanted);
    rep.strategy(running.name(), &reason);
    let polling = matches!(running, Running::Poll(_));
    let started = Instant::now();
    let (mut mirror, first_retries) = Mirror::start(cfg, source, dest, rep)?;
    crate::sys::release_free_memory();
    let mut cycle_no = 0u64;
    rep.cycle(cycle_no, started.elapsed());
    rep.progress().status(&idle_status(running.name(), cycle_no, rep));
    // Polling: a tick is already the end of a quiet interval.
    let mut debounce = if polling { Duration::ZERO } else { w.debounce };
    let max_wait = MIN_MAX_WAIT.max(w.debounce);
    let mut pending: Vec<Target> = Vec::new();
    let mut first_at: Option<Instant> = None;
    let mut last_at = Instant::now();
    let mut retries = Retries::new(first_retries);
    while !crate::sys::stopping() {
        let now = Instant::now();
        let wait = match first_at {
            Some(first) => {
                let quiet = debounce.saturating_sub(now - last_at);
                let cap = max_wait.saturating_sub(now - first);
                quiet.min(cap).min(TICK)
            }
            None => TICK,
        };
        match rx.recv_timeout(wait) {
            Ok(sig) => {
                let mut limit = None;
                for sig in
                    std::iter::once(sig).chain(std::iter::from_fn(|| rx.try_recv().ok()).take(DRAIN_MAX))
                {
                    if let Signal::LimitReached(msg) = &sig {
                        limit.get_or_insert(msg.clone());
                    }
                    add_targets(cfg, rep, &mirror, sig, &mut pending);
                }
                if let (Some(msg), Running::Native(_)) = (limit, &running) {
                    // Directories made from now on could not be watched: poll instead.
                    running = super::fallback_to_poll(w.interval, spare_tx.clone());
                    debounce = Duration::ZERO;
                    rep.strategy(
                        running.name(),
                        &format!(
                            "switched from native events: {msg}; rescanning every {}",
                            super::human_duration(w.interval)
                        ),
                    );
                }
                // Signals that asked for nothing (events in excluded directories) do
                // not start or prolong a debounce.
                if !pending.is_empty() {
                    last_at = Instant::now();
                    first_at.get_or_insert(last_at);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Failure::fatal("the watcher stopped unexpectedly"));
            }
        }
        let now = Instant::now();
        if let Some(mut due) = retries.due(now) {
            pending.append(&mut due);
            first_at.get_or_insert(now);
        }
        let due = first_at.is_some_and(|first| now - last_at >= debounce || now - first >= max_wait);
        if !due || crate::sys::stopping() {
            continue;
        }
        first_at = None;
        let targets = std::mem::take(&mut pending);
        rep.debug(&format!(
            "cycle {}: {} targets: {:?}",
            cycle_no + 1,
            targets.len(),
            targets.iter().take(8).collect::<Vec<_>>()
        ));
        let t0 = Instant::now();
        cycle_no += 1;
        match mirror.cycle(targets, rep) {
            Ok(again) if again.is_empty() => retries.backoff = FIRST_BACKOFF,
            Ok(again) => retries.schedule(again),
            Err(Failure::Unreachable(message)) => {
                // SOURCE or DEST unreadable (unmounted?): say so, try again later.
                rep.notice(&format!("{message}; retrying in {}s", retries.backoff.as_secs()));
                retries.schedule(vec![Target::Deep(Vec::new())]);
            }
            Err(f) => return Err(f),
        }
        rep.cycle(cycle_no, t0.elapsed());
        running.cycle_done();
        crate::sys::release_free_memory();
        rep.progress().status(&idle_status(running.name(), cycle_no, rep));
    }
    drop(running);
    Ok(Exit::Ok)
}

/// The watch-mode status line: strategy, time and counts of the last sync.
fn idle_status(strategy: &str, cycle: u64, rep: &Reporter) -> String {
    let s = rep.summary_counts();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let (h, m, sec) = ((now / 3600) % 24, (now / 60) % 60, now % 60);
    format!(
        "watching ({strategy}); sync #{cycle} done at {h:02}:{m:02}:{sec:02} UTC; so far {} copied, {} deleted, {} renamed, {} errors",
        s.copied, s.deleted, s.renamed, s.errors
    )
}

/// Turns a strategy's signal into cycle targets.
fn add_targets(cfg: &Config, rep: &Reporter, mirror: &Mirror<'_>, sig: Signal, pending: &mut Vec<Target>) {
    let rel_of = |p: &std::path::Path| -> Option<Vec<u8>> {
        let r = p.strip_prefix(&cfg.source).ok()?;
        Some(path_bytes(r).to_vec())
    };
    match sig {
        Signal::All => pending.push(Target::Deep(Vec::new())),
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
