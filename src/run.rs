//! One sync, and the loop of watch mode.
//!
//! [`sync_once`] is the whole batch pipeline (scan → snapshot → plan → apply) and
//! returns the exit status. [`watch`] starts a strategy, has the mirror
//! (`crate::mirror`) do a first full sync, then turns the strategy's signals into
//! debounced cycles until SIGINT/SIGTERM.

use std::time::{Duration, Instant};

use crate::config::{Config, WatchConfig};
use crate::exit::{self, Failure};
use crate::mirror::{parent, Mirror, Target};
use crate::plan::{self, Plan};
use crate::report::{Reporter, Side, SideSink};
use crate::snapshot::{self, RuleMap, ScanOptions, Snapshot};
use crate::watch::{self, Signal};

/// Runs one complete sync on the configured thread pool and returns the exit status.
pub fn run(cfg: &Config) -> Result<i32, Failure> {
    crate::sys::raise_fd_limit();
    crate::sys::init_creds();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .stack_size(16 << 20)
        .thread_name(|i| format!("tandem-{i}"))
        .build()
        .map_err(|e| Failure::fatal(format!("cannot start worker threads: {e}")))?;
    crate::sys::install_stop_handlers();
    let rep = Reporter::new(cfg);
    let result = pool.install(|| match &cfg.watch {
        Some(w) => watch(cfg, w, &rep),
        None => sync_once(cfg, &rep),
    });
    let result = match result {
        Ok(_) if crate::sys::stopping() && cfg.watch.is_none() => {
            Err(Failure::fatal("interrupted by a signal; DEST is partly synced (no torn files)"))
        }
        other => other,
    };
    match result {
        Ok(code) => {
            rep.summary(code);
            Ok(code)
        }
        Err(f) => {
            if !f.message.is_empty() {
                rep.fatal(&f.message);
            }
            // A configuration error stays one line for people; JSON still ends with
            // its summary.
            if f.code != exit::USAGE || cfg.format == crate::report::Format::Json {
                rep.summary(f.code);
            }
            Err(Failure { code: f.code, message: String::new() })
        }
    }
}

/// How SOURCE is scanned: special files reported, ignore rules applied (and explained),
/// `previous` rules kept for a `.syncignore` that no longer parses (watch mode).
pub fn source_scan<'a>(
    cfg: &'a Config,
    sink: &'a SideSink<'a>,
    previous: Option<&'a RuleMap>,
) -> ScanOptions<'a> {
    ScanOptions {
        report_special: true,
        sink,
        rules: Some(&cfg.rules),
        explain: cfg.explain_ignored,
        previous_rules: previous,
        prune: None,
    }
}

/// How DEST is scanned: everything as it is; with `prune` (SOURCE's rule files),
/// excluded directories are not read (they are protected anyway), unless
/// `--delete-excluded` needs them.
pub fn dest_scan<'a>(cfg: &'a Config, sink: &'a SideSink<'a>, prune: Option<&'a RuleMap>) -> ScanOptions<'a> {
    ScanOptions {
        report_special: false,
        sink,
        rules: prune.and((!cfg.rules.delete_excluded).then_some(&*cfg.rules)),
        explain: false,
        previous_rules: None,
        prune,
    }
}

/// Scans SOURCE, then DEST.
fn scan_both(cfg: &Config, rep: &Reporter) -> Result<(Snapshot, Snapshot), Failure> {
    let src_sink = SideSink { reporter: rep, side: Side::Source, count: true };
    let dst_sink = SideSink { reporter: rep, side: Side::Dest, count: false };
    let src = snapshot::scan(&cfg.source, source_scan(cfg, &src_sink, None));
    // DEST is read after SOURCE, so that SOURCE's rules can keep the scan out of
    // excluded directories (protected anyway, unless --delete-excluded).
    let dst = match &src {
        Ok(s) if cfg.dest.exists() => {
            snapshot::scan(&cfg.dest, dest_scan(cfg, &dst_sink, Some(&s.rule_files))).map(Some)
        }
        _ => Ok(None),
    };
    let mut src = src.map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
    let dst = dst.map_err(|e| Failure::io("cannot read DEST", &cfg.dest, &e))?;
    let mut dst = match dst {
        Some(d) => d,
        None => {
            // A DEST that does not exist yet (dry run): empty, and its root attributes
            // count as differing so the plan shows them.
            Snapshot {
                root: crate::sys::Meta { mode: u32::MAX, ..Default::default() },
                entries: Vec::new(),
                rule_files: Default::default(),
            }
        }
    };
    if cfg.plan.checksum && cfg.dest.exists() {
        snapshot::fill_digests(&cfg.source, &mut src, &cfg.dest, &mut dst, &src_sink)
            .map_err(|e| Failure::fatal(format!("cannot compare contents: {}", crate::sys::describe(&e))))?;
    }
    Ok((src, dst))
}

/// Refuses plans that look like accidents; `Ok` means the plan may run.
pub fn check_guards(cfg: &Config, src: &Snapshot, dst: &Snapshot, plan: &Plan) -> Result<(), Failure> {
    // What DEST holds beyond tandem's temporaries and excluded (protected) entries.
    let root_rules = plan::chain_for(&src.rule_files, b"");
    let dest_holds = dst.entries.iter().any(|e| {
        !crate::sys::is_temp_name(&e.name)
            && !cfg.rules.excluded(&root_rules, crate::ignore::rel_path(&e.name), e.is_dir())
    });
    if src.is_empty() && dest_holds && !cfg.allow_empty_source {
        return Err(Failure::refused(format!(
            "refusing to sync: SOURCE {} is empty but DEST {} holds {} entries (an unmounted share looks like an empty folder); nothing was changed. Use --allow-empty-source if this is intended",
            cfg.source.display(),
            cfg.dest.display(),
            dst.count()
        )));
    }
    if let Some(max) = cfg.max_delete {
        if plan.totals.deletes > max {
            return Err(Failure::refused(format!(
                "refusing to sync: the plan would delete {} entries, more than --max-delete {max}; nothing was changed",
                plan.totals.deletes
            )));
        }
    }
    Ok(())
}

/// The batch pipeline. Returns the exit status (0, or 3 when entries failed).
pub fn sync_once(cfg: &Config, rep: &Reporter) -> Result<i32, Failure> {
    rep.progress().scanning();
    let t = Instant::now();
    let (src, dst) = scan_both(cfg, rep)?;
    rep.debug(&format!(
        "scanned {} + {} entries in {:.3}s",
        src.count(),
        dst.count(),
        t.elapsed().as_secs_f64()
    ));
    if rep.pattern_errors() > 0 {
        // Each bad pattern was reported (file, line, pattern); nothing was changed.
        return Err(Failure::usage(""));
    }
    let t = Instant::now();
    let plan = plan::plan(&src, &dst, &cfg.plan);
    rep.debug(&format!("planned in {:.3}s: {:?}", t.elapsed().as_secs_f64(), plan.totals));
    let t = &plan.totals;
    rep.set_planned(t.copies + t.mkdirs + t.symlinks + t.metas + plan.conflicts.len() as u64);
    check_guards(cfg, &src, &dst, &plan)?;
    drop((src, dst));
    for (path, rule) in &plan.protected {
        rep.excluded(Side::Dest, path, rule);
    }
    for (path, why) in &plan.conflicts {
        rep.error(Side::Dest, path, why);
    }
    if cfg.dry_run {
        for c in plan.changes() {
            rep.change(&c.path, &c.kind);
        }
    } else if !plan.is_empty() {
        if !cfg.dest.exists() {
            std::fs::create_dir_all(&cfg.dest)
                .map_err(|e| Failure::io("cannot create DEST", &cfg.dest, &e))?;
        }
        rep.progress().start_copy(plan.totals.copies, plan.totals.copy_bytes);
        crate::apply::apply(&plan, &cfg.source, &cfg.dest, rep, cfg.plan.owner).map_err(|e| {
            Failure::fatal(format!(
                "cannot open {} or {}: {}",
                cfg.source.display(),
                cfg.dest.display(),
                crate::sys::describe(&e)
            ))
        })?;
    }
    Ok(if rep.errors() > 0 { exit::PARTIAL } else { exit::OK })
}

/// The longest a burst of changes can postpone a sync (no starvation).
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

/// Watch mode: mirror once, then sync what changes until SIGINT/SIGTERM. Returns 0 when
/// stopped by a signal.
fn watch(cfg: &Config, w: &WatchConfig, rep: &Reporter) -> Result<i32, Failure> {
    // Start watching before the first sync, so nothing changed during it is missed.
    let wanted = watch::Wanted { force_poll: w.force_poll, interval: w.interval };
    let (mut running, reason, rx, spare_tx) = watch::choose(&cfg.source, wanted);
    rep.strategy(running.name(), &reason);
    let polling = matches!(running, watch::Running::Poll(_));
    let started = Instant::now();
    let (mut mirror, first_retries) = Mirror::start(cfg, rep)?;
    crate::sys::release_free_memory();
    let mut cycle_no = 0u64;
    rep.cycle(cycle_no, started.elapsed());
    rep.progress().status(&idle_status(running.name(), cycle_no, rep));
    let mut debounce = if polling { Duration::ZERO } else { w.debounce };
    let mut pending: Vec<Target> = Vec::new();
    let mut first_at: Option<Instant> = None;
    let mut last_at = Instant::now();
    let mut backoff = Duration::from_secs(1);
    let mut retry_at: Option<Instant> = (!first_retries.is_empty()).then(|| Instant::now() + backoff);
    let mut retries: Vec<Target> = first_retries;
    let tick = Duration::from_millis(100);
    while !crate::sys::stopping() {
        let now = Instant::now();
        let wait = match first_at {
            Some(first) => {
                let quiet = debounce.saturating_sub(now - last_at);
                let cap = MAX_DEBOUNCE.saturating_sub(now - first);
                quiet.min(cap).min(tick)
            }
            None => tick,
        };
        match rx.recv_timeout(wait) {
            Ok(sig) => {
                let mut limit = None;
                // (Bounded, so a flood of events cannot keep the loop from its signals.)
                for sig in std::iter::once(sig).chain(std::iter::from_fn(|| rx.try_recv().ok()).take(100_000))
                {
                    if let Signal::LimitReached(msg) = &sig {
                        limit.get_or_insert(msg.clone());
                    }
                    add_targets(cfg, rep, &mirror, sig, &mut pending);
                }
                if let (Some(msg), watch::Running::Native(_)) = (limit, &running) {
                    // Directories made from now on could not be watched: poll instead.
                    running = watch::fallback_to_poll(w.interval, spare_tx.clone());
                    debounce = Duration::ZERO;
                    rep.strategy(
                        running.name(),
                        &format!(
                            "switched from native events: {msg}; rescanning every {}",
                            watch::human_duration(w.interval)
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
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Failure::fatal("the watcher stopped unexpectedly"));
            }
        }
        let now = Instant::now();
        if retry_at.is_some_and(|t| t <= now) {
            pending.append(&mut retries);
            retry_at = None;
            first_at.get_or_insert(now);
        }
        let due = first_at.is_some_and(|first| now - last_at >= debounce || now - first >= MAX_DEBOUNCE);
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
            Ok(again) if again.is_empty() => backoff = Duration::from_secs(1),
            Ok(again) => schedule(&mut retries, &mut retry_at, &mut backoff, again),
            Err(f) if f.code == exit::FATAL => {
                // SOURCE unreadable (unmounted?): say so, try again later.
                rep.notice(&format!("{}; retrying in {}s", f.message, backoff.as_secs()));
                schedule(&mut retries, &mut retry_at, &mut backoff, vec![Target::Deep(Vec::new())]);
            }
            Err(f) => return Err(f),
        }
        rep.cycle(cycle_no, t0.elapsed());
        running.cycle_done();
        crate::sys::release_free_memory();
        rep.progress().status(&idle_status(running.name(), cycle_no, rep));
    }
    drop(running);
    Ok(exit::OK)
}

/// Queues `again` for a retry. A retry already scheduled is not postponed by later
/// failures; a new one waits `backoff`, which doubles up to a minute.
fn schedule(retries: &mut Vec<Target>, at: &mut Option<Instant>, backoff: &mut Duration, again: Vec<Target>) {
    retries.extend(again);
    if at.is_none() {
        *at = Some(Instant::now() + *backoff);
        *backoff = (*backoff * 2).min(Duration::from_secs(60));
    }
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
        Some(crate::ignore::path_bytes(r).to_vec())
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
                } else if r.ends_with(crate::ignore::IGNORE_FILE)
                    && (r.len() == crate::ignore::IGNORE_FILE.len()
                        || r[r.len() - crate::ignore::IGNORE_FILE.len() - 1] == b'/')
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
