//! A run: the worker pool, the signal handlers, the choice of driver, and how the run
//! ends.
//!
//! [`run`] sets up the process (open-file limit, credentials, a rayon pool of
//! `--scan-threads` workers, SIGINT/SIGTERM handlers), opens SOURCE and DEST, hands
//! them to the one-shot pipeline (`sync`) or to watch mode (`watch::schedule`), and
//! decides the exit status and the summary in one place.

use crate::config::Config;
use crate::dest::Dest;
use crate::exit::{Exit, Failure};
use crate::report::{Format, Reporter};
use crate::tree::LocalTree;

/// Each worker's stack: the walker and the applier recurse once per directory level,
/// so deep trees need more than rayon's default 2 MiB.
const WORKER_STACK: usize = 16 << 20;

/// Runs one complete sync (or a watch session) and returns how it ended. Everything
/// that went wrong has been reported.
pub fn run(cfg: &Config) -> Exit {
    crate::sys::raise_fd_limit();
    crate::sys::init_creds();
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .stack_size(WORKER_STACK)
        .thread_name(|i| format!("tandem-{i}"))
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tandem: cannot start worker threads: {e}");
            return Exit::Fatal;
        }
    };
    crate::sys::install_stop_handlers();
    let source = LocalTree::new(cfg.source.clone());
    let dest = LocalTree::new(cfg.dest.clone());
    let dest: &dyn Dest = &dest;
    let rep = Reporter::new(cfg.output, &cfg.source.display().to_string(), &dest.shown());
    let result = pool.install(|| match &cfg.watch {
        Some(w) => crate::watch::schedule::watch(cfg, w, &source, dest, &rep),
        None => crate::sync::sync_once(cfg, &source, dest, &rep),
    });
    let result = match result {
        Ok(_) if crate::sys::stopping() && cfg.watch.is_none() => {
            Err(Failure::fatal("interrupted by a signal; DEST is partly synced (no torn files)"))
        }
        other => other,
    };
    match result {
        Ok(exit) => {
            rep.summary(exit);
            exit
        }
        Err(f) => {
            if let Some(message) = f.message() {
                rep.fatal(message);
            }
            if f.exit() == Exit::Fatal {
                rep.count_fatal();
            }
            // A configuration error stays one line for people; JSON still ends with
            // its summary.
            if f.exit() != Exit::Usage || cfg.output.format == Format::Json {
                rep.summary(f.exit());
            }
            f.exit()
        }
    }
}
