//! The safety guards: plans that look like accidents are refused.
//!
//! Two guards, each stated once here and used by every driver (one-shot runs, the
//! first sync of watch mode, watch cycles):
//! - **empty SOURCE**: SOURCE has no entries while DEST holds mirrored ones. An
//!   unmounted share looks like an empty folder; mirroring it would empty DEST.
//!   `--allow-empty-source` turns it off.
//! - **`--max-delete N`**: the plan would delete more than N entries.
//!
//! A guard returns a [`Refusal`]; the driver says what it does about it: a one-shot
//! run exits 4, having changed nothing (empty SOURCE, judged on the root level before
//! anything is done; `--max-delete` with the whole-tree pipeline) or having applied
//! everything but the deletions (`--max-delete` in a streaming run, `stream`, which
//! knows the total only at its end); watch mode skips the cycle (empty SOURCE) or
//! applies everything else and holds the deletions back (`--max-delete`, see
//! `mirror::hold`), and keeps watching.

use std::fmt;
use std::path::Path;

use crate::ignore::{Chain, Rules};
use crate::plan::chain_for;
use crate::relpath::rel_path;
use crate::snapshot::{Entry, RuleMap};

/// The guards' settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guards {
    /// `--max-delete N`.
    pub max_delete: Option<u64>,
    /// `--allow-empty-source`.
    pub allow_empty_source: bool,
}

/// Why a plan was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// SOURCE is empty while DEST holds `dest_entries` entries.
    EmptySource { source: String, dest: String, dest_entries: u64 },
    /// The plan would delete `deletes` entries, more than `max`.
    TooManyDeletes { deletes: u64, max: u64 },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::EmptySource { source, dest, dest_entries } => write!(
                f,
                "refusing to sync: SOURCE {source} is empty but DEST {dest} holds {} (an unmounted share looks like an empty folder; use --allow-empty-source if this is intended)",
                crate::counts::count(*dest_entries, "entry", "entries")
            ),
            Refusal::TooManyDeletes { deletes, max } => write!(
                f,
                "refusing to sync: the plan would delete {deletes} entries, more than --max-delete {max}"
            ),
        }
    }
}

impl Guards {
    /// The empty-SOURCE guard. `dest_holds`: DEST holds entries that are mirrored (not
    /// tandem's temporaries, not excluded); `dest_entries`: how many it holds in all.
    pub fn empty_source(
        &self,
        source: &Path,
        dest: &str,
        source_empty: bool,
        dest_holds: bool,
        dest_entries: u64,
    ) -> Result<(), Refusal> {
        if source_empty && dest_holds && !self.allow_empty_source {
            return Err(Refusal::EmptySource {
                source: source.display().to_string(),
                dest: dest.to_string(),
                dest_entries,
            });
        }
        Ok(())
    }

    /// The `--max-delete` guard.
    pub fn deletions(&self, deletes: u64) -> Result<(), Refusal> {
        match self.max_delete {
            Some(max) if deletes > max => Err(Refusal::TooManyDeletes { deletes, max }),
            _ => Ok(()),
        }
    }

    /// The empty-SOURCE guard for a two-sided plan of the whole tree: SOURCE's and
    /// DEST's root entries, and SOURCE's rule files (excluded DEST entries and tandem's
    /// temporaries do not count as held).
    pub fn empty_source_plan(
        &self,
        rules: &Rules,
        source: &Path,
        dest: &str,
        src: &[Entry],
        rule_files: &RuleMap,
        dst: &[Entry],
    ) -> Result<(), Refusal> {
        let root_rules = chain_for(rule_files, b"");
        let count = || dst.iter().map(Entry::count).sum();
        self.empty_source_root(rules, source, dest, src, &root_rules, dst, count)
    }

    /// The empty-SOURCE guard judged on the roots' own entries (`src`, `dst`) with the
    /// rules in force at the root; `dest_entries` says how many entries DEST holds in
    /// all, asked only when it holds any that are mirrored (a streaming run reads DEST
    /// whole for it).
    #[allow(clippy::too_many_arguments)]
    pub fn empty_source_root(
        &self,
        rules: &Rules,
        source: &Path,
        dest: &str,
        src: &[Entry],
        root_rules: &Chain,
        dst: &[Entry],
        dest_entries: impl FnOnce() -> u64,
    ) -> Result<(), Refusal> {
        if !src.is_empty() || self.allow_empty_source {
            return Ok(());
        }
        let dest_holds = dst.iter().any(|e| {
            !crate::sys::is_temp_name(&e.name) && !rules.excluded(root_rules, rel_path(&e.name), e.is_dir())
        });
        let n = if dest_holds { dest_entries() } else { 0 };
        self.empty_source(source, dest, true, dest_holds, n)
    }
}
