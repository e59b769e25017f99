//! The one way tandem takes a lock.
//!
//! A worker that panicked while holding a lock would poison it; tandem's locked data
//! (lists of paths, the output, the progress phase) is still whole after any panic, so
//! the lock is taken as if it were not poisoned, rather than spreading the panic.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the value out of `m`, ignoring poisoning.
pub fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(|e| e.into_inner())
}
