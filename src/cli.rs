//! The command line as the user typed it (clap derive). Nothing here touches the file
//! system; `config` turns these arguments into validated settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, ValueHint};

pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  DEST is in sync with SOURCE (or, with --dry-run, the plan was printed)
  1  fatal error (the run could not go on)
  2  usage or configuration error (bad flag, missing SOURCE, forbidden paths)
  3  finished, but some entries failed (each was reported with its path)
  4  refused by a safety guard: empty SOURCE (nothing was changed), --max-delete (no
     deletion was run; between two local trees everything else was synced)
Watch mode exits 0 when stopped by SIGINT/SIGTERM (sent once, or twice within a second
as `timeout` does); a further signal later ends it at once with 130. In watch mode
--max-delete holds deletions back instead of exiting.";

/// Keep DEST an exact mirror of SOURCE.
///
/// `tandem SOURCE DEST` mirrors the contents of SOURCE into DEST once and exits, like
/// `rsync -a --delete SOURCE/ DEST/`: files, directories and symlinks (as links, never
/// followed) with their modes and modification times.
#[derive(Parser, Debug)]
#[command(
    name = "tandem",
    version,
    about,
    long_about = None,
    args_override_self = true,
    override_usage = "tandem [OPTIONS] SOURCE DEST\n       tandem --watch [OPTIONS] SOURCE DEST\n       tandem --config FILE [OPTIONS]\n       tandem status [--json] [--status-file PATH]\n       tandem --completions SHELL | --man",
    after_help = EXIT_CODES_HELP,
    after_long_help = EXIT_CODES_HELP
)]
pub struct Args {
    /// The directory to mirror: a local path, `[user@]host:path` or
    /// `sftp://[user@]host[:port]/path`.
    #[arg(value_name = "SOURCE", value_hint = ValueHint::DirPath, required = true)]
    pub source: Option<PathBuf>,

    /// The mirror, local or remote as SOURCE; created if missing.
    #[arg(value_name = "DEST", value_hint = ValueHint::DirPath, required = true)]
    pub dest: Option<PathBuf>,

    /// Run every mirror of a TOML file (`[[sync]]` tables with `source`, `dest` and the
    /// options below under their long names) in one process; SIGHUP reloads it. Only
    /// output options, --status-file, --scan-threads and --bwlimit go with it.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, conflicts_with_all = ["source", "dest"], help_heading = "Service")]
    pub config: Option<PathBuf>,

    /// Where a --config service keeps its status for `tandem status` [default:
    /// $XDG_RUNTIME_DIR/tandem/status.json, or /run/tandem/status.json as root].
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, requires = "config", help_heading = "Service")]
    pub status_file: Option<PathBuf>,

    /// Mirror, then keep DEST in step with SOURCE until stopped (SIGINT/SIGTERM). Picks
    /// native events, or polling on network and FUSE file systems.
    #[arg(long, help_heading = "Watch mode")]
    pub watch: bool,

    /// Watch by rescanning SOURCE every INTERVAL (default 2s; `500ms`, `1m`, …);
    /// implies --watch.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2s", value_parser = parse_duration, allow_negative_numbers = true, value_hint = ValueHint::Other, help_heading = "Watch mode")]
    pub poll: Option<Duration>,

    /// Group a burst of changes into one sync: wait until SOURCE has been quiet this
    /// long (any duration: `15s` batches as lsyncd's `delay = 15` does). A file written
    /// without pause is still synced at least every max(2s, DURATION). `0` syncs as
    /// soon as a change is seen.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_negative_numbers = true, value_hint = ValueHint::Other, default_value = "200ms", help_heading = "Watch mode")]
    pub debounce: Duration,

    /// Compare all of DEST with SOURCE this often and repair every difference, as a
    /// one-shot run would (`0`: never). SIGHUP asks for one at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_negative_numbers = true, value_hint = ValueHint::Other, default_value = "1h", help_heading = "Watch mode")]
    pub verify_every: Duration,

    /// Do not watch DEST for changes made by others (by default, a DEST on a local file
    /// system is watched and what others change there is repaired within about a
    /// second).
    #[arg(long, help_heading = "Watch mode")]
    pub no_watch_dest: bool,

    /// Do not cross file-system boundaries in SOURCE (as rsync's -x): a directory on
    /// which another file system is mounted is mirrored empty.
    #[arg(short = 'x', long, help_heading = "What to sync")]
    pub one_file_system: bool,

    /// Preserve hard links: files that share an inode in SOURCE share one in DEST (one
    /// copy, the other names linked to it). SOURCE and DEST on this machine only.
    #[arg(short = 'H', long, help_heading = "What to sync")]
    pub hard_links: bool,

    /// Mirror extended attributes: the user.* namespace (as root also trusted.* and
    /// security.*), compared and copied with each file, directory and (where the file
    /// system allows) symlink. SOURCE and DEST on this machine only.
    #[arg(short = 'X', long, help_heading = "What to sync")]
    pub xattrs: bool,

    /// Mirror POSIX ACLs (the system.posix_acl_access and system.posix_acl_default
    /// attributes), compared and copied as -X does. SOURCE and DEST on this machine only.
    #[arg(short = 'A', long, help_heading = "What to sync")]
    pub acls: bool,

    /// Keep entries that DEST has and SOURCE lacks.
    #[arg(long, help_heading = "What to sync")]
    pub no_delete: bool,

    /// Accepted for rsync habits: deleting what SOURCE lacks is what tandem does anyway
    /// (the last of --delete and --no-delete wins).
    #[arg(long, overrides_with = "no_delete", help_heading = "rsync habits")]
    pub delete: bool,

    /// Accepted for rsync habits (`rsync -a`): tandem always mirrors recursively, keeps
    /// symlinks as symlinks and mirrors modes, modification times and, as root, owners.
    /// As with rsync, -a does not imply -H, -X or -A: `tandem -aHAX` asks for all.
    #[arg(short = 'a', long, help_heading = "rsync habits")]
    pub archive: bool,

    /// Accepted for rsync habits (`rsync -r`): tandem always mirrors the whole tree.
    #[arg(short = 'r', long, help_heading = "rsync habits")]
    pub recursive: bool,

    /// Compare file contents instead of size and modification time.
    #[arg(short = 'c', long, help_heading = "What to sync")]
    pub checksum: bool,

    /// Treat modification times this close as equal (for FAT, SMB): `2s`, `500ms`, or a
    /// number of seconds.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_negative_numbers = true, value_hint = ValueHint::Other, default_value = "0", help_heading = "What to sync")]
    pub modify_window: Duration,

    /// Exclude entries matching PATTERN (gitignore syntax, anchored at SOURCE like a
    /// line of SOURCE's root `.syncignore`; repeatable). Overrides `.syncignore` files.
    #[arg(long, value_name = "PATTERN", action = clap::ArgAction::Append, value_hint = ValueHint::Other, help_heading = "Ignore rules")]
    pub exclude: Vec<String>,

    /// Re-include entries matching PATTERN that an exclude excluded: the same as
    /// `--exclude '!PATTERN'` (gitignore's `!pattern`). --exclude and --include apply in
    /// the order given, the last matching one winning; an entry inside an excluded
    /// directory cannot be re-included (the directory is not read).
    #[arg(long, value_name = "PATTERN", action = clap::ArgAction::Append, value_hint = ValueHint::Other, help_heading = "Ignore rules")]
    pub include: Vec<String>,

    /// Mirror only the paths listed in FILE (one per line, relative to SOURCE; a
    /// directory brings everything below it; blank lines and lines starting with `#` or
    /// `;` are skipped). Everything else is treated as excluded: neither copied nor
    /// deleted. Exclude and include patterns still apply inside what is listed.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Ignore rules")]
    pub files_from: Option<PathBuf>,

    /// --exclude and --include patterns in command-line order, includes as `!PATTERN`
    /// (filled by [`parse`]).
    #[arg(skip)]
    pub filters: Vec<String>,

    /// Read exclude patterns from FILE, one per line, gitignore syntax (repeatable).
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append, value_hint = ValueHint::FilePath, help_heading = "Ignore rules")]
    pub exclude_from: Vec<PathBuf>,

    /// Also delete excluded entries from DEST (by default they are left alone).
    #[arg(long, conflicts_with = "no_delete", help_heading = "Ignore rules")]
    pub delete_excluded: bool,

    /// Report each excluded path and the rule (file, line, pattern) that excluded it.
    #[arg(long, help_heading = "Ignore rules")]
    pub explain_ignored: bool,

    /// Keep what a sync deletes or overwrites in DEST: move it to DIR under its relative
    /// path, by rename (DIR must be on DEST's file system; a relative DIR is inside
    /// DEST, as with rsync, and is left out of the mirror; for a DEST over SFTP, DIR
    /// must be relative).
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, help_heading = "Safety")]
    pub backup_dir: Option<PathBuf>,

    /// Append SUFFIX to the names moved to --backup-dir (for example a timestamp, to
    /// keep every version); without it a later backup of the same path replaces the
    /// earlier one.
    #[arg(long, value_name = "SUFFIX", value_hint = ValueHint::Other, help_heading = "Safety")]
    pub suffix: Option<String>,

    /// Delete nothing (exit 4) when a run would delete more than N entries (between two
    /// local trees everything else is still synced).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_hint = ValueHint::Other, help_heading = "Safety")]
    pub max_delete: Option<u64>,

    /// Allow mirroring an empty SOURCE over a non-empty DEST (an unmounted share looks
    /// like an empty folder, so this is refused by default).
    #[arg(long, help_heading = "Safety")]
    pub allow_empty_source: bool,

    /// Print the itemized plan and change nothing.
    #[arg(short = 'n', long, conflicts_with_all = ["watch", "poll"], help_heading = "Safety")]
    pub dry_run: bool,

    /// Itemize each change on stdout, in path order; twice (`-vv`) adds debug lines on
    /// stderr.
    #[arg(short, long, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Print errors only.
    #[arg(short, long, conflicts_with = "verbose", help_heading = "Output")]
    pub quiet: bool,

    /// One JSON object per line on stdout: one per change, then a summary.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// Progress display on stderr: a bar on a terminal and nothing elsewhere (`auto`), a
    /// `bar` (plain lines where stderr is not a terminal), plain `lines` at most once a
    /// second (for logs), or `none`.
    #[arg(long, value_name = "WHEN", value_enum, default_value = "auto", help_heading = "Output")]
    pub progress: crate::progress::Mode,

    /// Print a shell completion script and exit.
    #[arg(long, value_name = "SHELL", value_enum, exclusive = true, help_heading = "Output")]
    pub completions: Option<clap_complete::Shell>,

    /// Print the manual page (roff) and exit.
    #[arg(long, exclusive = true, help_heading = "Output")]
    pub man: bool,

    /// The remote shell for a remote SOURCE or DEST (`[user@]host:path`,
    /// `sftp://[user@]host[:port]/path`), as rsync's: `-e 'ssh -p 2222 -i KEY'`
    /// [default: ssh]. Its SFTP subsystem does the work; without a terminal on stdin,
    /// ssh runs with BatchMode=yes (no password prompt).
    #[arg(short = 'e', long = "rsh", value_name = "COMMAND", help_heading = "Remote")]
    pub rsh: Option<String>,

    /// The S3 endpoint for an `s3://bucket/prefix` DEST, for this run:
    /// `--s3-endpoint http://127.0.0.1:8333` (path-style addressing). Default: the AWS
    /// environment's (`AWS_ENDPOINT_URL`, `~/.aws/config`), else AWS S3 itself.
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url, help_heading = "Remote")]
    pub s3_endpoint: Option<String>,

    /// Worker threads for scanning and copying [default: 4, or the number of CPUs if
    /// higher; 16 when SOURCE is on a network or FUSE file system or DEST is remote,
    /// 64 when SOURCE is remote, to overlap round trips].
    #[arg(long, visible_alias = "threads", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256), allow_negative_numbers = true, value_hint = ValueHint::Other, help_heading = "Performance")]
    pub scan_threads: Option<u16>,

    /// Cap the copy throughput of all workers together at RATE bytes per second: `10M`,
    /// `500K`, `1.5M` (K, M, G: powers of 1024; KB, MB, GB: powers of 1000; a bare number
    /// is KiB/s, as rsync's --bwlimit). `0`: no limit.
    #[arg(long, value_name = "RATE", value_parser = crate::bwlimit::parse_rate, allow_negative_numbers = true, value_hint = ValueHint::Other, help_heading = "Performance")]
    pub bwlimit: Option<u64>,
}

/// Parses the command line (after [`normalize_args`]), with --exclude and --include
/// patterns gathered in the order they were given.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Args, clap::Error> {
    use clap::FromArgMatches;
    let args = normalize_args(args);
    // With --config, SOURCE and DEST come from the file (they stay required in --help).
    let config_given = args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--config" || a.to_str().is_some_and(|s| s.starts_with("--config=")));
    let mut cmd = Args::command();
    if config_given {
        cmd = cmd.mut_arg("source", |a| a.required(false)).mut_arg("dest", |a| a.required(false));
    }
    let matches = cmd.try_get_matches_from(args)?;
    let mut a = Args::from_arg_matches(&matches)?;
    let mut filters: Vec<(usize, String)> = Vec::new();
    for (id, prefix) in [("exclude", ""), ("include", "!")] {
        let (Some(indices), Some(values)) = (matches.indices_of(id), matches.get_many::<String>(id)) else {
            continue;
        };
        filters.extend(indices.zip(values).map(|(i, v)| (i, format!("{prefix}{v}"))));
    }
    filters.sort_by_key(|(i, _)| *i);
    a.filters = filters.into_iter().map(|(_, p)| p).collect();
    if a.config.is_some() {
        // Per-mirror options belong in the file, so that each has one place.
        let typed = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        if let Some(arg) = Args::command()
            .get_arguments()
            .find(|arg| !WITH_CONFIG.contains(&arg.get_id().as_str()) && typed(arg.get_id().as_str()))
        {
            let flag = arg.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| arg.get_id().to_string());
            let mut e = clap::Error::new(ErrorKind::ArgumentConflict).with_cmd(&Args::command());
            e.insert(ContextKind::InvalidArg, ContextValue::String(flag));
            e.insert(ContextKind::PriorArg, ContextValue::String("--config".into()));
            return Err(e);
        }
    }
    Ok(a)
}

/// The arguments that may go with `--config` (the process's, not one mirror's).
pub const WITH_CONFIG: &[&str] =
    &["config", "status_file", "verbose", "quiet", "json", "progress", "scan_threads", "bwlimit"];

/// `tandem status [--json] [--status-file PATH]`: what a running `--config` service is
/// doing, read from its status file.
#[derive(Parser, Debug)]
#[command(name = "tandem status", about = "Print what a running `tandem --config` service is doing")]
pub struct StatusArgs {
    /// Print the status file as it is (one JSON object).
    #[arg(long)]
    pub json: bool,
    /// The status file the service writes (its --status-file) [default:
    /// $XDG_RUNTIME_DIR/tandem/status.json, or /run/tandem/status.json as root].
    #[arg(long, value_name = "PATH")]
    pub status_file: Option<PathBuf>,
}

/// `tandem status …`: the status command, when the first argument is `status` and
/// nothing after it is a path (`tandem status DEST` still mirrors a directory named
/// `status`).
pub fn status_command(args: &[std::ffi::OsString]) -> Option<Result<StatusArgs, clap::Error>> {
    if args.get(1).is_none_or(|a| a != "status") {
        return None;
    }
    let rest = &args[2..];
    let mut expect_value = false;
    for a in rest {
        if expect_value {
            expect_value = false;
            continue;
        }
        let s = a.to_string_lossy();
        if s == "--status-file" {
            expect_value = true;
        } else if !s.starts_with('-') {
            return None;
        }
    }
    let argv = std::iter::once(std::ffi::OsString::from("tandem status")).chain(rest.iter().cloned());
    Some(StatusArgs::try_parse_from(argv))
}

/// What a flag's value may be, for the error naming a bad one (flags with a fixed list
/// of values are described from that list).
fn allowed(id: &str) -> Option<&'static str> {
    Some(match id {
        "max_delete" => "a whole number ≥ 0",
        "scan_threads" => "a whole number from 1 to 256",
        "bwlimit" => "a rate in bytes per second such as 10M, 500K or 1.5M (0: no limit)",
        "poll" | "debounce" | "verify_every" | "modify_window" => {
            "a duration such as 2s, 500ms, 1m or a number of seconds"
        }
        _ => return None,
    })
}

/// tandem's own one-line message for a command-line error: the flag, the value and
/// what is allowed, without clap's tips (which can be misleading: `--delete` is not
/// `--no-delete`, and `-a` is no value to pass after `--`).
pub fn error_line(e: &clap::Error) -> String {
    let cmd = Args::command();
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let text = |kind| strings(kind).join(" ");
    // "--max-delete <N>" → "--max-delete"; "<DEST>" → "DEST"; "--verbose..." → "--verbose".
    let flag_of = |s: &str| {
        let word = s.split_whitespace().next().unwrap_or(s);
        word.trim_end_matches('.').trim_matches(['<', '>']).to_string()
    };
    let arg_of = |flag: &str| {
        cmd.get_arguments()
            .find(|a| {
                a.get_long().is_some_and(|l| flag == format!("--{l}"))
                    || a.get_short().is_some_and(|c| flag == format!("-{c}"))
            })
            .cloned()
    };
    let expects = |flag: &str| -> String {
        let Some(arg) = arg_of(flag) else { return "a value".into() };
        if let Some(what) = allowed(arg.get_id().as_str()) {
            return what.into();
        }
        let values: Vec<String> =
            arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
        if !values.is_empty() {
            return format!("one of {}", values.join(", "));
        }
        match arg.get_value_names().and_then(|n| n.first()) {
            Some(name) => format!("a {name}"),
            None => "a value".into(),
        }
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = text(ContextKind::InvalidArg);
            if arg.starts_with('-') && arg != "-" {
                format!("unknown option \"{arg}\" (see tandem --help for the options)")
            } else {
                format!("unexpected argument \"{arg}\": tandem takes one SOURCE and one DEST")
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let flag = flag_of(&text(ContextKind::InvalidArg));
            let value = text(ContextKind::InvalidValue);
            let what = expects(&flag);
            if value.is_empty() {
                format!("{flag} expects {what}, got nothing")
            } else {
                format!("{flag} expects {what}, got \"{value}\"")
            }
        }
        ErrorKind::InvalidUtf8 => {
            let flag = flag_of(&text(ContextKind::InvalidArg));
            format!("{flag} expects {}, got a value that is not valid UTF-8", expects(&flag))
        }
        ErrorKind::MissingRequiredArgument => {
            let missing: Vec<String> = strings(ContextKind::InvalidArg).iter().map(|s| flag_of(s)).collect();
            let what = match missing.as_slice() {
                [one] => format!("{one} is required"),
                _ => format!("{} are required", missing.join(" and ")),
            };
            format!("{what}: tandem [OPTIONS] SOURCE DEST")
        }
        ErrorKind::ArgumentConflict => {
            let arg = flag_of(&text(ContextKind::InvalidArg));
            match strings(ContextKind::PriorArg).first().map(|s| flag_of(s)) {
                Some(prior) if prior.starts_with('-') => format!("{arg} cannot be used with {prior}"),
                _ => format!("{arg} is used alone, without other arguments"),
            }
        }
        ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues | ErrorKind::NoEquals => {
            let flag = flag_of(&text(ContextKind::InvalidArg));
            let value = text(ContextKind::InvalidValue);
            match arg_of(&flag) {
                Some(a) if !a.get_action().takes_values() => {
                    format!("{flag} takes no value, got \"{value}\"")
                }
                _ => format!("{flag} takes {}, once per use", expects(&flag)),
            }
        }
        _ => without_tips(&one_line(&e.render().to_string())),
    }
}

/// A folded clap message without its leading `error:` and its tips.
fn without_tips(line: &str) -> String {
    let line = line.strip_prefix("error: ").unwrap_or(line);
    line.split(" tip: ").next().unwrap_or(line).to_string()
}

/// Folds one of clap's error messages into one line: the message and its details
/// (`<DEST>`, possible values, tips), without the usage block.
pub fn one_line(rendered: &str) -> String {
    let body = rendered.split("\nUsage:").next().unwrap_or(rendered);
    let body = body.split("For more information").next().unwrap_or(body);
    let words: Vec<&str> = body.split_whitespace().collect();
    words.join(" ")
}

/// Makes `--poll SOURCE DEST` mean "poll at the default interval": clap would take
/// SOURCE as the optional INTERVAL, so a `--poll` whose next argument is not a duration
/// becomes `--poll=2s`. (`--poll=INTERVAL` is always unambiguous.)
pub fn normalize_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let mut out = Vec::with_capacity(args.len());
    let mut positional_only = false;
    for (i, a) in args.iter().enumerate() {
        if !positional_only && a == "--poll" {
            // A next argument that starts like a number is meant as the interval (a bad
            // one is then reported as such).
            let next_is_interval = args.get(i + 1).and_then(|n| n.to_str()).is_some_and(|n| {
                parse_duration(n).is_ok()
                    || n.trim_start_matches('-').starts_with(|c: char| c.is_ascii_digit())
            });
            if !next_is_interval {
                out.push("--poll=2s".into());
                continue;
            }
        }
        if a == "--" {
            positional_only = true;
        }
        out.push(a.clone());
    }
    out
}

/// Parses `2s`, `500ms`, `1m`, or a bare number of seconds (as rsync's `--modify-window`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("invalid duration '{s}': out of range (examples: 2s, 500ms, 1m)"));
    }
    humantime::parse_duration(t).map_err(|e| format!("invalid duration '{s}': {e} (examples: 2s, 500ms, 1m)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn poll_without_interval_before_paths() {
        let parse = |v: &[&str]| Args::try_parse_from(normalize_args(v.iter().map(|s| s.into())));
        let a = parse(&["tandem", "--poll", "src", "dst"]).expect("parses");
        assert_eq!(a.poll, Some(Duration::from_secs(2)));
        assert_eq!(a.source.as_deref(), Some(std::path::Path::new("src")));
        let a = parse(&["tandem", "--poll", "500ms", "src", "dst"]).expect("parses");
        assert_eq!(a.poll, Some(Duration::from_millis(500)));
        let a = parse(&["tandem", "src", "dst", "--poll"]).expect("parses");
        assert_eq!(a.poll, Some(Duration::from_secs(2)));
        let a = parse(&["tandem", "--poll=1m", "src", "dst"]).expect("parses");
        assert_eq!(a.poll, Some(Duration::from_secs(60)));
        assert!(parse(&["tandem", "src", "dst"]).expect("parses").poll.is_none());
    }

    #[test]
    fn clap_errors_fold_into_one_line() {
        let e = Args::try_parse_from(["tandem", "a"]).expect_err("DEST missing");
        let line = one_line(&e.render().to_string());
        assert!(!line.contains('\n'));
        assert!(line.contains("<DEST>"), "{line}");
        let e = Args::try_parse_from(["tandem", "--progress", "nope", "a", "b"]).expect_err("bad value");
        let line = one_line(&e.render().to_string());
        assert!(line.contains("nope") && line.contains("possible values"), "{line}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("1e300").is_err());
        assert!(parse_duration("99999999999999999999").is_err());
        assert!(parse_duration("NaN").is_err());
    }
}
