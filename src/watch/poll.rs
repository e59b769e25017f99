//! The polling strategy: a timer that asks for a rescan of SOURCE (or of some of its
//! subtrees, beside native events) every interval. The
//! rescan itself is the mirror's parallel walk of SOURCE, compared with the snapshot it
//! holds (DEST is not read), so a cycle costs one stat per SOURCE entry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use super::{send, Signal};

/// How often the timer thread checks whether it is to stop: dropping a `Poll` ends its
/// thread within this.
const STEP: Duration = Duration::from_millis(50);

pub struct Poll {
    stop: Arc<AtomicBool>,
    /// Set when the last requested rescan is done: the next interval starts then, so
    /// requests never pile up (even at `--poll 0`, a continuous rescan).
    ready: Arc<AtomicBool>,
    /// The timer thread, woken when the rescan is done (it sleeps until then).
    thread: Option<std::thread::Thread>,
}

impl Poll {
    /// Asks for a rescan of `subtrees` (absolute paths; `None`: all of SOURCE) every
    /// `interval`.
    pub fn start(interval: Duration, tx: Sender<Signal>, subtrees: Option<Vec<std::path::PathBuf>>) -> Poll {
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(true));
        let (s, r) = (stop.clone(), ready.clone());
        let spawned = std::thread::Builder::new().name("tandem-poll".into()).spawn(move || {
            let step = STEP.min(interval.max(Duration::from_millis(1)));
            while !s.load(Ordering::Relaxed) {
                while !r.load(Ordering::Relaxed) && !s.load(Ordering::Relaxed) {
                    // (Woken by `cycle_done`; the timeout only bounds how late a stop
                    // is seen.)
                    std::thread::park_timeout(STEP);
                }
                let mut waited = Duration::ZERO;
                while waited < interval && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    waited += step;
                }
                if s.load(Ordering::Relaxed) {
                    break;
                }
                r.store(false, Ordering::Relaxed);
                send(
                    &tx,
                    match &subtrees {
                        None => Signal::All,
                        Some(s) => Signal::Rescan(s.clone()),
                    },
                );
            }
        });
        let thread = match spawned {
            Ok(handle) => Some(handle.thread().clone()),
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                None
            }
        };
        Poll { stop, ready, thread }
    }

    /// The rescan asked for has been done: start the next interval.
    pub fn cycle_done(&self) {
        self.ready.store(true, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }
}

impl Drop for Poll {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
