//! A run: the worker pool, the signal handlers, the choice of driver, and how the run
//! ends.
//!
//! [`run`] sets up the process (open-file limit, credentials, a rayon pool of
//! `--scan-threads` workers, SIGINT/SIGTERM handlers), opens SOURCE and DEST, hands
//! them to a one-shot run (`stream::one_shot`) or to watch mode (`watch::schedule`), and
//! decides the exit status and the summary in one place.

use crate::config::Config;
use crate::dest::Dest;
use crate::exit::{Exit, Failure};
use crate::report::{Format, Reporter};
use crate::s3::{Connect as S3Connect, S3Tree};
use crate::sftp::{Connect, SftpTree};
use crate::source::Source;
use crate::tree::LocalTree;

/// Each worker's stack: the walker and the applier recurse once per directory level,
/// so deep trees need more than rayon's default 2 MiB.
pub const WORKER_STACK: usize = 16 << 20;

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
    let rep = Reporter::new(cfg.output, &cfg.source.display().to_string(), &cfg.dest.display().to_string());
    let t = std::time::Instant::now();
    // A one-shot run from this machine to a remote DEST scans SOURCE while it connects.
    let early = cfg.watch.is_none()
        && cfg.remote_source.is_none()
        && (cfg.remote_dest.is_some() || cfg.s3_dest.is_some());
    let (opened, ahead) = if early {
        let source = LocalTree::new(&cfg.source);
        std::thread::scope(|s| {
            let scan = s.spawn(|| pool.install(|| crate::sync::scan_ahead(cfg, &source, &rep)));
            let opened = Sides::open(cfg);
            (opened, scan.join().ok())
        })
    } else {
        (Sides::open(cfg), None)
    };
    let result = match opened {
        Ok(sides) => {
            if cfg.remote_source.is_some() || cfg.remote_dest.is_some() || cfg.s3_dest.is_some() {
                rep.debug(&format!("connected in {:.3}s", t.elapsed().as_secs_f64()));
            }
            let cfg = &sides.adjust(cfg);
            let (source, dest) = (sides.source(), sides.dest());
            pool.install(|| match &cfg.watch {
                Some(w) => crate::watch::schedule::watch(cfg, w, source, dest, &rep, &Default::default()),
                None => crate::stream::one_shot(cfg, source, dest, &rep, ahead),
            })
        }
        Err(f) => Err(f),
    };
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

/// SOURCE and DEST, opened: local trees, or a connection to the remote one.
pub struct Sides {
    source: Side,
    dest: DestSide,
}

enum Side {
    Local(LocalTree),
    Remote(Box<SftpTree>),
}

/// DEST: one of the sides above, or a prefix in an S3 bucket (DEST only).
enum DestSide {
    Tree(Side),
    S3(Box<S3Tree>),
}

impl Sides {
    /// Opens both sides; connecting to a remote one may fail (one line: what, which
    /// host, what to try).
    pub fn open(cfg: &Config) -> Result<Sides, Failure> {
        let interactive = rustix::termios::isatty(rustix::stdio::stdin());
        let side = |remote: &Option<crate::remote::Remote>, path: &std::path::Path| match remote {
            None => Ok(Side::Local(LocalTree::new(path))),
            Some(r) => SftpTree::connect(Connect { remote: r, rsh: &cfg.rsh, interactive })
                .map(|t| Side::Remote(Box::new(t)))
                .map_err(Failure::fatal),
        };
        let source = side(&cfg.remote_source, &cfg.source)?;
        let dest = match &cfg.s3_dest {
            Some(b) => {
                let how = S3Connect { bucket: b, endpoint: cfg.s3_endpoint.as_deref(), dry_run: cfg.dry_run };
                DestSide::S3(Box::new(S3Tree::connect(how).map_err(Failure::fatal)?))
            }
            None => DestSide::Tree(side(&cfg.remote_dest, &cfg.dest)?),
        };
        // A remote DEST that is there but is not a directory is a usage error before
        // anything is done, as a local one (`config::resolve_dest`), and not retried by a
        // service. (A missing remote SOURCE stays a failure to read it, exit 1, which a
        // service retries: the remote may not be ready yet.)
        if let DestSide::Tree(Side::Remote(t)) = &dest {
            if let Ok(Some(false)) = t.root_kind() {
                return Err(Failure::usage(format!("DEST {}: exists and is not a directory", t.shown())));
            }
        }
        Ok(Sides { source, dest })
    }

    pub fn source(&self) -> &dyn Source {
        match &self.source {
            Side::Local(t) => t,
            Side::Remote(t) => &**t,
        }
    }

    pub fn dest(&self) -> &dyn Dest {
        match &self.dest {
            DestSide::Tree(Side::Local(t)) => t,
            DestSide::Tree(Side::Remote(t)) => &**t,
            DestSide::S3(t) => &**t,
        }
    }

    /// The settings as the opened sides allow: owners are mirrored onto a remote DEST
    /// only when both ends run as root (as `rsync -a`); DEST's own timestamp precision
    /// and whether it keeps a symlink's attributes.
    pub fn adjust(&self, cfg: &Config) -> Config {
        let mut cfg = cfg.clone();
        let dest = self.dest();
        if let DestSide::Tree(Side::Remote(t)) = &self.dest {
            cfg.plan.owner = cfg.plan.owner && t.remote_is_root();
        }
        if let Some(g) = dest.mtime_grain_ns() {
            cfg.plan.dest_grain_ns = Some(g);
        }
        cfg.plan.no_link_attrs |= !dest.keeps_link_attrs();
        cfg.plan.owner &= dest.keeps_owner();
        cfg
    }
}
