//! tandem: keep a destination directory an exact mirror of a source directory.
//!
//! `main` only parses the command line, resolves it into settings, runs, and exits
//! with the status the run ended with (see `exit`).
//!
//! Layers, each depending only on those below it:
//! - drivers: `run` (pool, signals, the exit status) → `stream` (a one-shot run,
//!   a directory at a time between two local trees) → `sync` (how each side is
//!   scanned; the whole-tree one-shot pipeline) and `watch` (strategies and `watch::schedule`,
//!   the loop) → `mirror` (watch mode's held tree, refreshes, renames, cycles);
//! - the seams and the stages: `source` and `dest` (the SOURCE and DEST interfaces;
//!   `tree` is the local tree, `sftp` a directory on another host, reached over ssh
//!   through its SFTP server; `s3` a prefix in an S3 bucket; `remote` parses where
//!   those are), `guard`, `plan`,
//!   `apply` (with `ordered`: changes printed in path order, `backup`:
//!   `--backup-dir`, and `xattrs`: `-X`/`-A`), `hardlink` (`-H`: link groups and the
//!   link pass after a plan), `snapshot`;
//! - output: `report` (what the user is told), `progress`, `counts`, `outcome` (what
//!   failed, handed back to callers), `manual` (the `--man` page);
//! - foundations: `ignore`, `join` (awaiting many futures of one task), `relpath`, `sys` (every system call), `bwlimit` (the
//!   shared bucket of `--bwlimit`), `lock`, `exit`;
//! - settings: `cli` (arguments as typed) → `config` (resolved, validated) →
//!   `config_file` (`--config FILE`: each mirror's keys turned into flags, parsed and
//!   resolved by the two before it);
//! - the service: `service` (`--config`: every mirror at once, reload, readiness) and
//!   `status` (each mirror's state, the status file, `tandem status`).

mod apply;
mod backup;
mod bwlimit;
mod cli;
mod config;
mod config_file;
mod counts;
mod dest;
mod exit;
mod guard;
mod hardlink;
mod ignore;
mod join;
mod lock;
mod manual;
mod mirror;
mod ordered;
mod outcome;
mod plan;
mod progress;
mod relpath;
mod remote;
mod report;
mod run;
mod s3;
mod service;
mod sftp;
mod snapshot;
mod source;
mod status;
mod stream;
mod sync;
mod sys;
mod tree;
mod watch;
mod xattrs;

#[cfg(test)]
mod model_tests;

use crate::exit::Exit;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = cli::status_command(&argv) {
        let exit = match status {
            Ok(s) => status::show(s.json, s.status_file.as_deref()),
            Err(e) if !e.use_stderr() => {
                let _ = e.print();
                Exit::Ok
            }
            Err(e) => {
                let line = cli::one_line(&e.render().to_string());
                eprintln!("tandem: {}", line.strip_prefix("error: ").unwrap_or(&line));
                Exit::Usage
            }
        };
        std::process::exit(exit.code());
    }
    let args = match cli::parse(argv) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help, --version: clap's own output.
            let _ = e.print();
            std::process::exit(Exit::Ok.code());
        }
        Err(e) => {
            eprintln!("tandem: {}", cli::error_line(&e));
            std::process::exit(Exit::Usage.code());
        }
    };
    if let Some(shell) = args.completions {
        let mut cmd = <cli::Args as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "tandem", &mut std::io::stdout());
        std::process::exit(Exit::Ok.code());
    }
    if args.man {
        let cmd = <cli::Args as clap::CommandFactory>::command();
        let exit = match manual::render(cmd, &mut std::io::stdout().lock()) {
            Ok(()) => Exit::Ok,
            // `tandem --man | head`: the reader has what it wanted.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
            Err(e) => {
                eprintln!("tandem: cannot write the manual page: {e}");
                Exit::Fatal
            }
        };
        std::process::exit(exit.code());
    }
    if let Some(file) = &args.config {
        std::process::exit(service::run(&args, file).code());
    }
    let exit = match config::Config::from_args(&args) {
        Err(f) => {
            let message = f.to_string();
            eprintln!("tandem: {message}");
            if args.json {
                report::json_failure(&message, f.exit());
            }
            f.exit()
        }
        Ok(cfg) => {
            // One bucket for the whole process, whatever copies (sys::copy_data).
            bwlimit::set(cfg.bwlimit);
            xattrs::set(cfg.xattrs);
            run::run(&cfg)
        }
    };
    std::process::exit(exit.code());
}
