//! `tandem --config FILE`: every mirror of a config file in one process.
//!
//! [`run`] loads the file (`config_file`), builds the one worker pool every mirror
//! shares (rayon's global pool: each mirror's loop runs on a thread of its own and
//! hands its scans and copies to the pool), and starts one thread per mirror: a watch
//! loop (`watch::schedule`, with its own strategy, debounce, held snapshot and
//! retries; its native events come through the one SOURCE and one DEST watcher all
//! mirrors share, `watch::native::Hub`) or, for a mirror that does not watch, one sync. A mirror whose first sync
//! fails is reported and started again with a back-off (1 s doubling to 60 s); it never
//! stops the others. The supervising loop here takes SIGHUP (reload: added mirrors
//! start, removed ones stop after their current cycle, changed ones restart once the
//! old loop has stopped, unchanged ones are left alone; a file that no longer loads
//! keeps everything as it was), keeps the status file (`status`) up to date, and
//! talks to systemd (`READY=1` once every mirror's first sync has finished or failed,
//! `STATUS=`, `RELOADING=1`, `WATCHDOG=1`, `STOPPING=1`).
//!
//! A file where no mirror watches is a one-shot of every mirror at once: the process
//! ends when all have, with the worst exit status among them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use serde_json::{json, Value};

use crate::cli::Args;
use crate::config_file::Pair;
use crate::exit::Exit;
use crate::report::Reporter;
use crate::run::Sides;
use crate::status::PairState;
use crate::watch::schedule::Control;

/// How often the supervising loop wakes: signals, readiness, finished mirrors.
const TICK: Duration = Duration::from_millis(100);
/// The status file is rewritten at most this often (when something changed).
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// A mirror whose first sync failed is started again after this, doubling…
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// …up to this.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// One running mirror.
struct Running {
    pair: Pair,
    stop: Arc<AtomicBool>,
    state: Arc<PairState>,
    rep: Arc<Reporter>,
    ctl: Arc<Control>,
    thread: Option<JoinHandle<Exit>>,
    /// The exit status, once the thread has ended.
    exit: Option<Exit>,
}

impl Running {
    fn start(pair: Pair) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(PairState::new());
        let rep = Arc::new(
            Reporter::new(
                pair.cfg.output,
                &pair.cfg.source.display().to_string(),
                &pair.cfg.dest.display().to_string(),
            )
            .labelled(&pair.name),
        );
        let ctl = Arc::new(Control::new(stop.clone(), state.clone()));
        let (cfg, rep2, ctl2) = (pair.cfg.clone(), rep.clone(), ctl.clone());
        let thread = std::thread::Builder::new()
            .name(format!("tandem-pair-{}", pair.name))
            .spawn(move || run_pair(&cfg, &rep2, &ctl2));
        let (thread, exit) = match thread {
            Ok(t) => (Some(t), None),
            Err(e) => {
                rep.pair_failed(&format!("cannot start a thread for this mirror: {e}"));
                state.update(|s| {
                    s.state = "failed";
                    s.initial_done = true;
                });
                (None, Some(Exit::Fatal))
            }
        };
        Running { pair, stop, state, rep, ctl, thread, exit }
    }

    /// Asks its loop to stop (after the cycle it is in).
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.ctl.wake();
    }

    /// Whether its thread has ended (collecting its exit status).
    fn finished(&mut self) -> bool {
        if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            if let Some(t) = self.thread.take() {
                self.exit = Some(t.join().unwrap_or(Exit::Fatal));
            }
        }
        self.thread.is_none()
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            self.exit = Some(t.join().unwrap_or(Exit::Fatal));
        }
    }

    fn status_json(&self) -> Value {
        let s = self.state.get();
        let t = self.rep.summary_counts();
        let last_error = match self.rep.last_error() {
            Some((message, time)) => json!({ "message": message, "time": time }),
            None => Value::Null,
        };
        json!({
            "name": self.pair.name,
            "source": self.pair.cfg.source.display().to_string(),
            "dest": self.pair.cfg.dest.display().to_string(),
            "watch": self.pair.cfg.watch.is_some(),
            "strategy": s.strategy,
            "state": s.state,
            "paused": s.paused,
            "held_back": s.held_back,
            "pending": s.pending,
            "last_sync": s.last_sync,
            "last_result": s.last_result,
            "cycles": s.cycles,
            "totals": {
                "copied": t.copied,
                "bytes": t.bytes,
                "deleted": t.deleted,
                "renamed": t.renamed,
                "errors": t.errors,
                "warnings": t.warnings,
            },
            "last_error": last_error,
        })
    }
}

/// One mirror's thread: its watch loop (started again after a failure, with a
/// back-off, until stopped), or its one sync.
fn run_pair(cfg: &crate::config::Config, rep: &Reporter, ctl: &Control) -> Exit {
    let mut wait = FIRST_RETRY;
    loop {
        let result = Sides::open(cfg).and_then(|sides| {
            let cfg = &sides.adjust(cfg);
            match &cfg.watch {
                Some(w) => crate::watch::schedule::watch(cfg, w, sides.source(), sides.dest(), rep, ctl),
                None => {
                    ctl.update(|s| s.state = "syncing");
                    crate::stream::one_shot(cfg, sides.source(), sides.dest(), rep, None)
                }
            }
        });
        let watching = cfg.watch.is_some();
        match result {
            Ok(exit) => {
                if !watching {
                    let result = if exit == Exit::Ok { "ok" } else { "errors" };
                    if let Some(s) = &ctl.status {
                        s.synced(result);
                    }
                    ctl.update(|s| s.state = "done");
                }
                rep.summary(exit);
                return exit;
            }
            Err(f) if watching && !ctl.stopping() && f.exit() != Exit::Usage => {
                rep.pair_failed(&format!("{f}; trying again in {}", crate::watch::human_duration(wait)));
                if let Some(s) = &ctl.status {
                    s.synced("failed");
                }
                ctl.update(|s| {
                    s.state = "retrying";
                    s.paused = Some(f.to_string());
                });
                let until = Instant::now() + wait;
                while Instant::now() < until && !ctl.stopping() {
                    std::thread::sleep(TICK);
                }
                wait = (wait * 2).min(MAX_RETRY);
                if ctl.stopping() {
                    ctl.update(|s| s.state = "stopped");
                    return Exit::Ok;
                }
            }
            Err(f) => {
                if let Some(m) = f.message() {
                    rep.pair_failed(m);
                }
                if let Some(s) = &ctl.status {
                    s.synced("failed");
                }
                ctl.update(|s| s.state = if ctl.stopping() { "stopped" } else { "failed" });
                if !watching {
                    rep.summary(f.exit());
                }
                return if watching && ctl.stopping() { Exit::Ok } else { f.exit() };
            }
        }
    }
}

/// Tells systemd (where `NOTIFY_SOCKET` is set; otherwise nothing).
fn notify(states: &[NotifyState<'_>]) {
    let _ = sd_notify::notify(states);
}

/// The service: runs until SIGINT/SIGTERM (or, with no watching mirror, until every
/// mirror has synced once).
pub fn run(cli: &Args, path: &std::path::Path) -> Exit {
    let sc = match crate::config_file::load(path, cli) {
        Ok(sc) => sc,
        Err(f) => {
            let message = f.to_string();
            let prio = if crate::report::journal_stream() { "<3>" } else { "" };
            eprintln!("{prio}tandem: {message}");
            if cli.json {
                crate::report::json_failure(&message, f.exit());
            }
            return f.exit();
        }
    };
    crate::sys::raise_fd_limit();
    crate::sys::init_creds();
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(sc.threads)
        .stack_size(crate::run::WORKER_STACK)
        .thread_name(|i| format!("tandem-{i}"))
        .build_global()
    {
        eprintln!("tandem: cannot start worker threads: {e}");
        return Exit::Fatal;
    }
    crate::bwlimit::set(sc.bwlimit);
    crate::sys::install_stop_handlers();
    let service = sc.watches();
    if service {
        crate::sys::install_hangup_handler();
    }
    // The service's own lines (reloads), as its mirrors' are written.
    let output = sc.pairs.first().map(|p| p.cfg.output);
    let say = |line: &str, error: bool| {
        let journal = output.is_some_and(|o| o.journal);
        let prio = if error { 3 } else { 6 };
        if output.is_some_and(|o| o.format == crate::report::Format::Json) {
            let v = json!({ "event": if error { "error" } else { "notice" }, "message": line, "time": crate::sys::local_timestamp() });
            println!("{v}");
        } else if journal {
            eprintln!("<{prio}>tandem: {line}");
        } else if output.is_some_and(|o| o.timestamps) {
            eprintln!("{} tandem: {line}", crate::sys::local_timestamp());
        } else {
            eprintln!("tandem: {line}");
        }
    };
    // A one-shot of every mirror writes a status file only where one is asked for.
    let default_status = || if service { crate::status::default_path() } else { None };
    let mut status_file: Option<PathBuf> = sc.status_file.clone().or_else(default_status);
    let config_path = sc.path.clone();
    let threads = sc.threads;
    let mut running: Vec<Running> = sc.pairs.into_iter().map(Running::start).collect();
    // Removed or changed by a reload, stopping; and changed ones waiting for them.
    let mut retiring: Vec<Running> = Vec::new();
    let mut waiting: Vec<Pair> = Vec::new();
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut last_watchdog = Instant::now();
    let mut ready = false;
    let mut last_status = Instant::now() - STATUS_EVERY;
    let mut last_written = Value::Null;
    let mut last_version = u64::MAX;
    let mut last_line = String::new();
    let mut status_warned = false;
    loop {
        std::thread::sleep(TICK);
        let stopping = crate::sys::stopping();
        if service && crate::sys::take_hangup() && !stopping {
            notify(&[NotifyState::Reloading, monotonic()]);
            match crate::config_file::load(&config_path, cli) {
                Err(f) => {
                    say(&format!("reload: {f}; still running the configuration loaded before"), true);
                }
                Ok(new) => {
                    if new.threads != threads && cli.scan_threads.is_none() {
                        say(
                            &format!("reload: scan-threads stays {threads} until tandem is restarted"),
                            false,
                        );
                    }
                    crate::bwlimit::set(new.bwlimit);
                    if let Some(p) = new.status_file.clone().or_else(default_status) {
                        status_file = Some(p);
                    }
                    let (mut added, mut removed, mut changed, mut unchanged) = (0, 0, 0, 0);
                    // Not started yet (waiting for their old loop): the new file decides.
                    waiting.clear();
                    let mut keep: Vec<Running> = Vec::new();
                    let mut new_pairs = new.pairs;
                    for r in running.drain(..) {
                        match new_pairs.iter().position(|p| p.name == r.pair.name) {
                            Some(i) if new_pairs[i].argv == r.pair.argv && !r.pair_finished_badly() => {
                                new_pairs.remove(i);
                                unchanged += 1;
                                keep.push(r);
                            }
                            Some(_) => {
                                changed += 1;
                                r.stop();
                                retiring.push(r);
                            }
                            None => {
                                removed += 1;
                                r.stop();
                                retiring.push(r);
                            }
                        }
                    }
                    added += new_pairs.len() - changed.min(new_pairs.len());
                    waiting.extend(new_pairs);
                    running = keep;
                    say(
                        &format!(
                            "reloaded {}: {added} added, {removed} removed, {changed} changed, {unchanged} unchanged",
                            config_path.display()
                        ),
                        false,
                    );
                }
            }
            notify(&[NotifyState::Ready, NotifyState::Status(&status_line(&running, &retiring))]);
        }
        // Mirrors that were waiting for an old loop on the same DEST to stop.
        retiring.retain_mut(|r| !r.finished());
        let mut still = Vec::new();
        for p in waiting.drain(..) {
            let busy = retiring.iter().any(|r| r.pair.name == p.name || r.pair.cfg.dest == p.cfg.dest);
            if busy || stopping {
                still.push(p);
            } else {
                running.push(Running::start(p));
            }
        }
        waiting = still;
        let all_done = running.iter_mut().all(|r| r.finished());
        if !ready && running.iter().all(|r| r.state.get().initial_done || r.thread.is_none()) {
            ready = true;
            notify(&[NotifyState::Ready, NotifyState::Status(&status_line(&running, &retiring))]);
        }
        if let Some(every) = watchdog {
            if last_watchdog.elapsed() >= every {
                notify(&[NotifyState::Watchdog]);
                last_watchdog = Instant::now();
            }
        }
        let end = stopping || (!service && all_done);
        // What the status says changes only when a mirror's state or counts do (looked
        // at once a second: many idle mirrors cost the supervisor nothing per tick).
        let due = last_status.elapsed() >= STATUS_EVERY;
        let version = if due || end {
            last_status = Instant::now();
            running
                .iter()
                .chain(retiring.iter())
                .map(|r| r.state.version() + r.rep.errors() + r.rep.summary_counts().copied)
                .sum::<u64>()
                + (running.len() + retiring.len() + waiting.len()) as u64
                + u64::from(ready)
        } else {
            last_version
        };
        if end || version != last_version {
            last_version = version;
            let line = status_line(&running, &retiring);
            if line != last_line {
                notify(&[NotifyState::Status(&line)]);
                last_line = line;
            }
            if let Some(path) = &status_file {
                let mut v = json!({
                    "pid": std::process::id(),
                    "config": config_path.display().to_string(),
                    "ready": ready,
                    "stopping": stopping,
                    "pairs": running.iter().map(Running::status_json).collect::<Vec<_>>(),
                });
                if v != last_written || end {
                    last_written = v.clone();
                    v["updated"] = json!(crate::sys::local_timestamp());
                    match crate::status::write(path, &v) {
                        Ok(()) => status_warned = false,
                        Err(e) if !status_warned => {
                            status_warned = true;
                            say(
                                &format!(
                                    "cannot write the status file {}: {}",
                                    path.display(),
                                    crate::sys::describe(&e)
                                ),
                                true,
                            );
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        if end {
            break;
        }
    }
    notify(&[NotifyState::Stopping]);
    for r in running.iter().chain(retiring.iter()) {
        r.stop();
    }
    let mut worst = Exit::Ok;
    for r in running.iter_mut().chain(retiring.iter_mut()) {
        r.join();
        let e = r.exit.unwrap_or(Exit::Fatal);
        worst = worse(worst, e);
    }
    if let Some(path) = &status_file {
        let v = json!({
            "pid": std::process::id(),
            "config": config_path.display().to_string(),
            "ready": ready,
            "stopping": true,
            "updated": crate::sys::local_timestamp(),
            "pairs": running.iter().map(Running::status_json).collect::<Vec<_>>(),
        });
        let _ = crate::status::write(path, &v);
    }
    if service {
        Exit::Ok
    } else {
        worst
    }
}

impl Running {
    /// A mirror whose loop ended on a configuration problem is started again by a
    /// reload even when its lines did not change (a SOURCE created since, say).
    fn pair_finished_badly(&self) -> bool {
        self.thread.is_none() && self.exit.is_some_and(|e| e != Exit::Ok)
    }
}

/// Of two exit statuses, the one to end with: fatal, then usage, refused, partial.
fn worse(a: Exit, b: Exit) -> Exit {
    let rank = |e: Exit| match e {
        Exit::Ok => 0,
        Exit::Partial => 1,
        Exit::Refused => 2,
        Exit::Usage => 3,
        Exit::Fatal => 4,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn monotonic() -> NotifyState<'static> {
    NotifyState::monotonic_usec_now().unwrap_or(NotifyState::MonotonicUsec(0))
}

/// systemd's one-line STATUS: how many mirrors are in each state, and the totals.
fn status_line(running: &[Running], retiring: &[Running]) -> String {
    let mut by_state: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let (mut copied, mut deleted, mut errors) = (0, 0, 0);
    for r in running {
        *by_state.entry(r.state.get().state).or_default() += 1;
        let t = r.rep.summary_counts();
        copied += t.copied;
        deleted += t.deleted;
        errors += t.errors;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let stopping = if retiring.is_empty() { String::new() } else { format!(", {} stopping", retiring.len()) };
    format!(
        "{}: {}{stopping}; {copied} copied, {deleted} deleted, {}",
        crate::counts::count(running.len() as u64, "mirror", "mirrors"),
        states.join(", "),
        crate::counts::count(errors, "error", "errors")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_exit_wins() {
        assert_eq!(worse(Exit::Ok, Exit::Partial), Exit::Partial);
        assert_eq!(worse(Exit::Fatal, Exit::Partial), Exit::Fatal);
        assert_eq!(worse(Exit::Refused, Exit::Ok), Exit::Refused);
    }
}
