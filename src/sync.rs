//! How each side is scanned, and the one-shot pipeline: scan → snapshot → plan → apply.
//!
//! [`sync_once`] is a whole batch run against a [`Dest`]. The pieces it is made of
//! ([`source_scan`], [`dest_scan`], [`refuse`], [`report_plan_notes`]) are also what
//! watch mode's two-sided verification (`mirror`) uses, so that both judge, guard and
//! report a plan the same way.

use std::time::Instant;

use crate::config::Config;
use crate::dest::Dest;
use crate::exit::{Exit, Failure};
use crate::guard::Refusal;
use crate::hardlink;
use crate::plan::{self, Plan};
use crate::report::{Reporter, Side, SideSink};
use crate::snapshot::{RuleMap, ScanOptions, ScanSink, Snapshot};
use crate::source::Source;

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
        one_file_system: cfg.one_file_system,
    }
}

/// How a one-shot run applies its plans to DEST (watch mode: with `vanished_ok`).
pub fn apply_options(cfg: &Config) -> crate::apply::ApplyOptions {
    crate::apply::ApplyOptions { owner: cfg.plan.owner, vanished_ok: false, backup: cfg.backup }
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
        one_file_system: None,
    }
}

/// A plan refused by a guard, before anything was changed.
pub fn refuse(r: Refusal) -> Failure {
    Failure::refused(format!("{r}; nothing was changed"))
}

/// Reports what a two-sided plan found besides changes: protected DEST entries
/// (`--explain-ignored`) and conflicts (errors, each in `plan.conflicts`).
pub fn report_plan_notes(rep: &Reporter, plan: &Plan) {
    for (path, rule) in &plan.protected {
        rep.excluded(Side::Dest, path, rule);
    }
    for (path, why) in &plan.conflicts {
        rep.error(Side::Dest, path, why);
    }
}

/// Scans SOURCE, then DEST (`None` when it does not exist yet).
fn scan_both(
    cfg: &Config,
    source: &dyn Source,
    dest: &dyn Dest,
    rep: &Reporter,
    ahead: Option<Ahead>,
) -> Result<(Snapshot, Option<Snapshot>), Failure> {
    let src_sink = SideSink { reporter: rep, side: Side::Source, count: true, failures: None };
    let dst_sink = SideSink { reporter: rep, side: Side::Dest, count: false, failures: None };
    let src = match ahead {
        Some(Ahead(src)) => {
            // Counted now that it is used (a run whose connection failed scanned nothing).
            if let Ok(s) = &src {
                src_sink.scanned(s.count());
            }
            src
        }
        None => source.scan(source_scan(cfg, &src_sink, None)),
    };
    // DEST is read after SOURCE, so that SOURCE's rules can keep the scan out of
    // excluded directories (protected anyway, unless --delete-excluded).
    let dst = match &src {
        Ok(s) if dest.exists() => dest.scan(dest_scan(cfg, &dst_sink, Some(&s.rule_files))).map(Some),
        _ => Ok(None),
    };
    let mut src = src.map_err(|e| Failure::io("cannot read SOURCE", &cfg.source, &e))?;
    let mut dst = dst.map_err(|e| Failure::io("cannot read DEST", &cfg.dest, &e))?;
    if let (true, Some(d)) = (cfg.plan.checksum, dst.as_mut()) {
        dest.fill_digests(source, &mut src.entries, &mut d.entries, b"", &src_sink)
            .map_err(|e| Failure::fatal(format!("cannot compare contents: {}", crate::sys::describe(&e))))?;
    }
    Ok((src, dst))
}

/// What a plan will do, in words (for `-vv`): `2 copies (1.2 KiB), 1 directory to
/// create, 0 symlinks, 1 attribute fix, 3 deletions, 0 temporaries to remove`.
pub fn planned_text(t: &plan::Totals) -> String {
    use crate::counts::{count, human_bytes};
    format!(
        "{} ({}), {} to create, {}, {}, {}, {} to remove",
        count(t.copies, "copy", "copies"),
        human_bytes(t.copy_bytes),
        count(t.mkdirs, "directory", "directories"),
        count(t.symlinks, "symlink", "symlinks"),
        count(t.metas, "attribute fix", "attribute fixes"),
        count(t.deletes, "deletion", "deletions"),
        count(t.temporaries, "temporary", "temporaries"),
    )
}

/// SOURCE (on this machine) scanned ahead, while DEST's connection was being made
/// (see [`scan_ahead`]).
pub struct Ahead(std::io::Result<Snapshot>);

/// Scans the local SOURCE `source` as the whole-tree pipeline would, ahead of DEST:
/// run while a remote DEST connects (ssh's key exchange and session take a few
/// tenths of a second, as long as a scan of tens of thousands of entries), so that
/// a one-shot run to another host pays for the longer of the two, not both.
pub fn scan_ahead(cfg: &Config, source: &crate::tree::LocalTree, rep: &Reporter) -> Ahead {
    rep.progress().scanning();
    // (Its entries are counted when it is used: `scan_both`.)
    let src_sink = SideSink { reporter: rep, side: Side::Source, count: false, failures: None };
    Ahead(source.scan(source_scan(cfg, &src_sink, None)))
}

/// The whole-tree batch pipeline (a remote side, or `-H`; two local trees stream
/// instead: `stream::one_shot`). Returns how it ended: in sync, or with per-entry
/// errors. `ahead`: SOURCE already scanned ([`scan_ahead`]).
pub fn sync_once(
    cfg: &Config,
    source: &dyn Source,
    dest: &dyn Dest,
    rep: &Reporter,
    ahead: Option<Ahead>,
) -> Result<Exit, Failure> {
    rep.progress().scanning();
    let t = Instant::now();
    let (src, dst) = scan_both(cfg, source, dest, rep, ahead)?;
    rep.debug(&format!(
        "scanned {} + {} entries in {:.3}s",
        src.count(),
        dst.as_ref().map_or(0, Snapshot::count),
        t.elapsed().as_secs_f64()
    ));
    if rep.pattern_errors() > 0 {
        // Each bad pattern was reported (file, line, pattern); nothing was changed.
        return Err(Failure::Reported(Exit::Usage));
    }
    // -H: link groups on both sides (DEST's: names that share an inode there).
    let (links, dest_links) = if cfg.hard_links {
        let links = hardlink::groups(&src.entries, b"", &hardlink::source_stat(source));
        let dest_links = dst
            .as_ref()
            .map(|d| hardlink::groups(&d.entries, b"", &hardlink::dest_stat(dest)))
            .unwrap_or_default();
        (links, dest_links)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut opts = cfg.plan.clone();
    if cfg.hard_links {
        opts.followers = Some(std::sync::Arc::new(hardlink::followers(&links)));
    }
    let t = Instant::now();
    let plan = plan::plan(&src, dst.as_ref(), &opts);
    rep.debug(&format!("planned in {:.3}s: {}", t.elapsed().as_secs_f64(), planned_text(&plan.totals)));
    let t = &plan.totals;
    rep.set_planned(t.copies + t.mkdirs + t.symlinks + t.metas + plan.conflicts.len() as u64);
    let dst_entries = dst.as_ref().map_or(&[][..], |d| &d.entries[..]);
    cfg.guards
        .empty_source_plan(&cfg.rules, &cfg.source, &dest.shown(), &src.entries, &src.rule_files, dst_entries)
        .and_then(|()| cfg.guards.deletions(t.deletes))
        .map_err(refuse)?;
    drop((src, dst));
    report_plan_notes(rep, &plan);
    if cfg.dry_run {
        for c in plan.changes() {
            rep.change(&c.path, &c.kind);
        }
    } else if !plan.is_empty() {
        dest.create().map_err(|e| Failure::io("cannot create DEST", &cfg.dest, &e))?;
        rep.progress().start_copy(plan.totals.copies, plan.totals.copy_bytes);
        dest.apply(&plan.root, b"", source, rep, apply_options(cfg)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionAborted {
                // The connection to a remote side was lost: its own line says so.
                return Failure::fatal(crate::sys::describe(&e));
            }
            Failure::fatal(format!(
                "cannot open {} or {}: {}",
                cfg.source.display(),
                dest.shown(),
                crate::sys::describe(&e)
            ))
        })?;
    }
    if !links.is_empty() || !dest_links.is_empty() {
        let failures = crate::outcome::Failures::default();
        let pass = hardlink::LinkPass {
            source,
            dest,
            rep,
            dry_run: cfg.dry_run,
            failures: &failures,
            opts: apply_options(cfg),
        };
        pass.run(&dest_links, &links);
    }
    Ok(if rep.errors() > 0 { Exit::Partial } else { Exit::Ok })
}
