//! Exit statuses and the error type that carries one.
//!
//! Everything that ends a run early returns a [`Failure`] naming its status; per-entry
//! errors are counted by the reporter instead and turn into [`PARTIAL`] at the end.

use std::fmt;

/// DEST is in sync (or the dry-run plan was printed).
pub const OK: i32 = 0;
/// The run could not go on.
pub const FATAL: i32 = 1;
/// Bad flag, missing SOURCE, forbidden paths, bad configuration.
pub const USAGE: i32 = 2;
/// Finished, but some entries failed.
pub const PARTIAL: i32 = 3;
/// Refused by a safety guard; nothing changed.
pub const REFUSED: i32 = 4;

/// An error that ends the run with a given exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure { code: USAGE, message: message.into() }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Failure { code: FATAL, message: message.into() }
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Failure { code: REFUSED, message: message.into() }
    }
    /// A fatal I/O failure on one of the roots: `cannot read SOURCE /x: Permission denied`.
    pub fn io(what: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Failure::fatal(format!("{what} {}: {}", path.display(), crate::sys::describe(err)))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
