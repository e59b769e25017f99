//! tandem: keep a destination directory an exact mirror of a source directory.
//!
//! `main` only parses the command line, runs, and maps the outcome to an exit status
//! (see `exit`).

mod apply;
mod cli;
mod config;
mod exit;
mod ignore;
mod mirror;
mod plan;
mod progress;
mod report;
mod run;
mod snapshot;
mod sys;
mod watch;

#[cfg(test)]
mod model_tests;

use clap::Parser;

fn main() {
    let args = match cli::Args::try_parse_from(cli::normalize_args(std::env::args_os())) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help, --version: clap's own output.
            let _ = e.print();
            std::process::exit(exit::OK);
        }
        Err(e) => {
            eprintln!("tandem: {} (see tandem --help)", cli::one_line(&e.render().to_string()));
            std::process::exit(exit::USAGE);
        }
    };
    if let Some(shell) = args.completions {
        let mut cmd = <cli::Args as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "tandem", &mut std::io::stdout());
        std::process::exit(exit::OK);
    }
    if args.man {
        let cmd = <cli::Args as clap::CommandFactory>::command();
        let code = match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("tandem: cannot write the manual page: {e}");
                exit::FATAL
            }
        };
        std::process::exit(code);
    }
    let code = match config::Config::from_args(&args) {
        Err(f) => {
            eprintln!("tandem: {}", f.message);
            if args.json {
                report::json_failure(&f.message, f.code);
            }
            f.code
        }
        Ok(cfg) => match run::run(&cfg) {
            Ok(code) => code,
            Err(f) => f.code,
        },
    };
    std::process::exit(code);
}
