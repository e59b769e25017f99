//! What an apply (or a scan) left undone, handed back to its caller.
//!
//! Output is only output: the reporter shows and counts errors but keeps no list of
//! them. A caller that acts on failures (watch mode retries them, and stops trusting
//! what it holds for those paths) gets them from here: workers record into a shared
//! [`Failures`] while they run in parallel, and the caller takes the [`Outcome`].

use std::sync::Mutex;

use crate::lock::{into_inner, lock};

/// Paths (relative to the roots) that did not end as planned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// An operation on this path failed, or the path could not be read (reported).
    pub failed: Vec<Vec<u8>>,
    /// This path's operation was not done, without an error: a SOURCE file that
    /// vanished before it could be copied (watch mode syncs its removal next).
    pub not_done: Vec<Vec<u8>>,
}

impl Outcome {
    pub fn extend(&mut self, other: Outcome) {
        self.failed.extend(other.failed);
        self.not_done.extend(other.not_done);
    }
}

/// An [`Outcome`] being filled by parallel workers.
#[derive(Debug, Default)]
pub struct Failures {
    failed: Mutex<Vec<Vec<u8>>>,
    not_done: Mutex<Vec<Vec<u8>>>,
}

impl Failures {
    pub fn failed(&self, rel: &[u8]) {
        lock(&self.failed).push(rel.to_vec());
    }

    pub fn not_done(&self, rel: &[u8]) {
        lock(&self.not_done).push(rel.to_vec());
    }

    pub fn into_outcome(self) -> Outcome {
        Outcome { failed: into_inner(self.failed), not_done: into_inner(self.not_done) }
    }
}
