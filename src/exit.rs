//! Exit statuses, and the error that ends a run.
//!
//! [`Exit`] is the one list of statuses tandem can end with; `run` decides which one a
//! run ends with, in one place. Everything that ends a run early returns a [`Failure`];
//! per-entry errors are not failures: the reporter counts them, the run goes on, and
//! they turn into [`Exit::Partial`] at the end.

use std::fmt;

/// How a run ended (the process's exit status). One more status exists outside this
/// list: a second SIGINT/SIGTERM ends the process at once with
/// `sys::SECOND_SIGNAL_EXIT` (130).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// DEST is in sync (or the dry-run plan was printed; or watch mode was stopped).
    Ok,
    /// The run could not go on.
    Fatal,
    /// Bad flag, missing SOURCE, forbidden paths, bad configuration or ignore pattern.
    Usage,
    /// Finished, but some entries failed (each was reported with its path).
    Partial,
    /// Refused by a safety guard; nothing was changed.
    Refused,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Fatal => 1,
            Exit::Usage => 2,
            Exit::Partial => 3,
            Exit::Refused => 4,
        }
    }
}

/// An error that ends the run (or, in watch mode, a cycle).
#[derive(Debug)]
pub enum Failure {
    /// Ends the run with this status; the message has not been shown yet.
    Stop { exit: Exit, message: String },
    /// Ends the run with this status; what went wrong was already reported (each bad
    /// ignore pattern with its file and line, say).
    Reported(Exit),
    /// SOURCE or DEST cannot be reached now (unmounted, unreadable): fatal for a
    /// one-shot run or a watcher's first sync; a running watcher reports it and
    /// tries again later.
    Unreachable(String),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Stop { exit: Exit::Usage, message: message.into() }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Failure::Stop { exit: Exit::Fatal, message: message.into() }
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Failure::Stop { exit: Exit::Refused, message: message.into() }
    }
    /// A root that cannot be read or opened: `cannot read SOURCE /x: Permission denied`.
    pub fn io(what: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Failure::Unreachable(format!("{what} {}: {}", path.display(), crate::sys::describe(err)))
    }

    /// The status this failure ends the run with.
    pub fn exit(&self) -> Exit {
        match self {
            Failure::Stop { exit, .. } | Failure::Reported(exit) => *exit,
            Failure::Unreachable(_) => Exit::Fatal,
        }
    }

    /// What is still to be reported, if anything.
    pub fn message(&self) -> Option<&str> {
        match self {
            Failure::Stop { message, .. } | Failure::Unreachable(message) => Some(message),
            Failure::Reported(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or("(reported above)"))
    }
}

impl std::error::Error for Failure {}
