//! `--bwlimit`: one token bucket shared by every copying worker, so the sum of their
//! throughput stays at the rate asked for.
//!
//! A copy loop asks [`chunk`] how much to move at once (small pieces while a limit is
//! set, so no worker holds a big grant), moves it, and hands the bytes to [`account`],
//! which sleeps as long as the bucket is in debt. Any DEST implementation's copy loop
//! can do the same.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes per second; 0: no limit.
static RATE: AtomicU64 = AtomicU64::new(0);

struct Bucket {
    /// Bytes that may still be moved without waiting; negative: owed.
    tokens: f64,
    last: Instant,
}

static BUCKET: Mutex<Option<Bucket>> = Mutex::new(None);

/// The longest sleep between checks of the stop flag.
const NAP: Duration = Duration::from_millis(50);

/// Sets the limit for the whole process (0: none).
pub fn set(bytes_per_sec: u64) {
    RATE.store(bytes_per_sec, Ordering::Relaxed);
    let mut b = crate::lock::lock(&BUCKET);
    *b = None;
}

/// How many bytes a copy loop should move at once: a twentieth of a second's worth
/// while a limit is set (at least 4 KiB, at most 1 MiB), `u64::MAX` otherwise.
pub fn chunk() -> u64 {
    match RATE.load(Ordering::Relaxed) {
        0 => u64::MAX,
        rate => (rate / 20).clamp(4 << 10, 1 << 20),
    }
}

/// `n` bytes were moved: waits until the bucket allows them. Returns early (the debt
/// stays) when `stop` says so.
pub fn account(n: u64, stop: impl Fn() -> bool) {
    let rate = RATE.load(Ordering::Relaxed);
    if rate == 0 || n == 0 {
        return;
    }
    let wait = {
        let mut guard = crate::lock::lock(&BUCKET);
        let now = Instant::now();
        let b = guard.get_or_insert(Bucket { tokens: 0.0, last: now });
        // Refill since the last call; a bucket left idle holds at most one chunk.
        let burst = chunk() as f64;
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate as f64).min(burst);
        b.last = now;
        b.tokens -= n as f64;
        match b.tokens < 0.0 {
            true => Duration::from_secs_f64(-b.tokens / rate as f64),
            false => Duration::ZERO,
        }
    };
    let until = Instant::now() + wait;
    while !stop() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(NAP));
    }
}

/// Parses a rate as rsync's `--bwlimit` does: a number with an optional unit, `K`, `M`,
/// `G` (powers of 1024, also written `KiB`, `MiB`, `GiB`), `KB`, `MB`, `GB` (powers of
/// 1000) or `B` (bytes); a bare number is KiB per second; an optional `/s`. `0`: no
/// limit. Returns bytes per second.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("not a rate: {s:?}"))?;
    let factor: f64 = match unit.to_ascii_uppercase().as_str() {
        "" | "K" | "KIB" => 1024.0,
        "B" => 1.0,
        "M" | "MIB" => 1024.0 * 1024.0,
        "G" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return Err(format!("unknown unit in {s:?}")),
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 || (bytes > 0.0 && bytes < 1.0) {
        return Err(format!("out of range: {s:?}"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10M"), Ok(10 << 20));
        assert_eq!(parse_rate("500K"), Ok(500 << 10));
        assert_eq!(parse_rate("500"), Ok(500 << 10));
        assert_eq!(parse_rate("1.5MiB/s"), Ok(3 << 19));
        assert_eq!(parse_rate("2MB"), Ok(2_000_000));
        assert_eq!(parse_rate("4096B"), Ok(4096));
        assert_eq!(parse_rate("1g"), Ok(1 << 30));
        assert_eq!(parse_rate("0"), Ok(0));
        for bad in ["", "fast", "-1", "10X", "1e9", "M", "0.5B", "99999999999999999999G"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn chunks_follow_the_rate() {
        assert_eq!(chunk(), u64::MAX);
    }
}
