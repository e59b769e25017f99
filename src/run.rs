//! One sync: scan both sides, plan, check the guards, apply (or print), report.
//!
//! [`sync_once`] is the whole batch pipeline (scan → snapshot → plan → apply) and
//! returns the exit status; watch mode will drive the same function (or its parts)
//! when it decides that SOURCE may have changed.

use crate::config::Config;
use crate::exit::{self, Failure};
use crate::plan::{self, Plan};
use crate::report::{Reporter, Side, SideSink};
use crate::snapshot::{self, ScanOptions, Snapshot};

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
    let rep = Reporter::new(cfg.format, cfg.verbose, cfg.quiet, cfg.dry_run, &cfg.source, &cfg.dest);
    let result = pool.install(|| sync_once(cfg, &rep));
    match result {
        Ok(code) => {
            rep.summary(code);
            Ok(code)
        }
        Err(f) => {
            rep.fatal(&f.message);
            if f.code == exit::REFUSED {
                rep.summary(f.code);
            }
            Err(Failure { code: f.code, message: String::new() })
        }
    }
}

/// Scans SOURCE and DEST side by side.
fn scan_both(cfg: &Config, rep: &Reporter) -> Result<(Snapshot, Snapshot), Failure> {
    let src_sink = SideSink { reporter: rep, side: Side::Source, count: true };
    let dst_sink = SideSink { reporter: rep, side: Side::Dest, count: false };
    let (src, dst) = rayon::join(
        || {
            snapshot::scan(
                &cfg.source,
                ScanOptions {
                    report_special: true,
                    sink: &src_sink,
                    rules: Some(&cfg.rules),
                    explain: cfg.explain_ignored,
                },
            )
        },
        || {
            if cfg.dest.exists() {
                snapshot::scan(
                    &cfg.dest,
                    ScanOptions { report_special: false, sink: &dst_sink, rules: None, explain: false },
                )
                .map(Some)
            } else {
                Ok(None)
            }
        },
    );
    let mut src = src.map_err(|e| {
        Failure::fatal(format!("cannot read SOURCE {}: {}", cfg.source.display(), crate::sys::describe(&e)))
    })?;
    let dst = dst.map_err(|e| {
        Failure::fatal(format!("cannot read DEST {}: {}", cfg.dest.display(), crate::sys::describe(&e)))
    })?;
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
    if src.is_empty() && !dst.is_empty() && plan.totals.deletes > 0 && !cfg.allow_empty_source {
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
    let (src, dst) = scan_both(cfg, rep)?;
    if rep.pattern_errors() > 0 {
        return Err(Failure::usage("invalid ignore patterns (see above); nothing was changed"));
    }
    let plan = plan::plan(&src, &dst, &cfg.plan);
    check_guards(cfg, &src, &dst, &plan)?;
    drop((src, dst));
    for (path, rule) in &plan.protected {
        rep.excluded(Side::Dest, path, rule);
    }
    if cfg.dry_run {
        for c in plan.changes() {
            rep.change(&c.path, &c.kind);
        }
    } else if !plan.is_empty() {
        if !cfg.dest.exists() {
            std::fs::create_dir_all(&cfg.dest).map_err(|e| {
                Failure::fatal(format!(
                    "cannot create DEST {}: {}",
                    cfg.dest.display(),
                    crate::sys::describe(&e)
                ))
            })?;
        }
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
