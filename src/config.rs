//! Resolved, validated settings for a run.
//!
//! [`Config::from_args`] checks the paths the user gave (SOURCE exists and is a
//! directory; SOURCE and DEST are different and neither contains the other, after
//! resolving symlinks and `..`) and turns flags into the options of each stage. Every
//! problem here is a usage error (exit status 2) and nothing has been changed yet.

use std::io::{self, IsTerminal};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use crate::cli::Args;
use crate::exit::Failure;
use crate::guard::Guards;
use crate::ignore::{RuleFile, Rules};
use crate::plan::PlanOptions;
use crate::remote::{Bucket, Location, Remote};
use crate::report::{Format, OutputOptions};

#[derive(Debug, Clone)]
pub struct Config {
    /// SOURCE, canonical; a remote one as typed (for messages).
    pub source: PathBuf,
    /// DEST, canonical where it exists, resolved through its nearest existing ancestor
    /// where it does not; a remote one as typed (for messages).
    pub dest: PathBuf,
    /// SOURCE is on another host.
    pub remote_source: Option<Remote>,
    /// DEST is on another host.
    pub remote_dest: Option<Remote>,
    /// DEST is a prefix in an S3 bucket.
    pub s3_dest: Option<Bucket>,
    /// `--s3-endpoint`: the S3 endpoint for this run (else the AWS environment's).
    pub s3_endpoint: Option<String>,
    /// The remote shell command (`-e`/`--rsh`), split into words.
    pub rsh: Vec<String>,
    pub plan: PlanOptions,
    pub guards: Guards,
    pub dry_run: bool,
    pub output: OutputOptions,
    pub threads: usize,
    /// Watch mode: None for a single run.
    pub watch: Option<WatchConfig>,
    /// Ignore rules from the command line (`.syncignore` files are read while scanning).
    pub rules: Arc<Rules>,
    pub explain_ignored: bool,
    /// `-x`: SOURCE's device; directories on another one are mirrored empty.
    pub one_file_system: Option<u64>,
    /// `--bwlimit`: bytes per second for all copies together (0: no limit).
    pub bwlimit: u64,
    /// `--backup-dir`, `--suffix`: where what is deleted or overwritten goes.
    /// (Made once per configuration and kept for the process: a mirror's applies
    /// borrow it for as long as they run.)
    pub backup: Option<&'static crate::backup::Backup>,
    /// `-X`, `-A`: which extended attributes are mirrored.
    pub xattrs: crate::xattrs::Which,
    /// `-H`: hard links preserved.
    pub hard_links: bool,
}

/// Watch-mode settings.
#[derive(Debug, Clone, Copy)]
pub struct WatchConfig {
    /// `--poll`: always poll, at this interval.
    pub force_poll: Option<Duration>,
    /// Poll interval when polling is chosen automatically.
    pub interval: Duration,
    pub debounce: Duration,
    /// `--verify-every`: a full two-sided verification this often (`None`: never).
    pub verify_every: Option<Duration>,
    /// Watch DEST for changes made by others (not `--no-watch-dest`).
    pub watch_dest: bool,
}

/// Worker threads when SOURCE is on a network or FUSE file system: every stat there is
/// a round trip, so more requests in flight hide latency (BENCHMARKS.md, sshfs: a
/// no-op run took 5.24 s with 4 threads, 3.67 s with 16, and no less with 32).
const REMOTE_THREADS: usize = 16;
/// Worker threads when SOURCE is on another host: each file copied into the local DEST
/// waits on a few SFTP round trips (LSTAT+OPEN, READ, FSTAT), so many are in flight
/// (20,000 files from loopback: 16 threads 4.2 s, 64 threads 2.6 s).
const REMOTE_SOURCE_THREADS: usize = 64;
/// The fewest worker threads on a local file system: scanning waits on the kernel
/// (directory reads, stats) even on one CPU, so a few threads overlap that wait.
const MIN_THREADS: usize = 4;
/// The poll interval when polling is chosen without `--poll INTERVAL`.
const DEFAULT_POLL: Duration = Duration::from_secs(2);

fn describe(e: &io::Error) -> String {
    crate::sys::describe(e)
}

impl Config {
    pub fn from_args(args: &Args) -> Result<Config, Failure> {
        let (Some(source), Some(dest)) = (&args.source, &args.dest) else {
            return Err(Failure::usage("SOURCE and DEST are required"));
        };
        let src_loc = Location::parse(source.as_os_str()).map_err(Failure::usage)?;
        let dst_loc = Location::parse(dest.as_os_str()).map_err(Failure::usage)?;
        let rsh =
            crate::remote::split_command(args.rsh.as_deref().unwrap_or("ssh")).map_err(Failure::usage)?;
        let mut s3_dest = None;
        let (source, dest, remote_source, remote_dest) = match (src_loc, dst_loc) {
            (Location::S3(s), _) => {
                return Err(Failure::usage(format!(
                    "SOURCE {}: an S3 bucket can be DEST only (for now)",
                    s.shown
                )))
            }
            (Location::Remote(s), Location::S3(d)) => {
                return Err(Failure::usage(format!(
                    "SOURCE ({}) and DEST ({}) are both remote: one of them must be on this machine",
                    s.shown, d.shown
                )))
            }
            (Location::Local(s), Location::S3(d)) => {
                let shown = PathBuf::from(&d.shown);
                s3_dest = Some(d);
                (resolve_source(&s)?, shown, None, None)
            }
            (Location::Local(s), Location::Local(d)) => {
                (resolve_source(&s)?, resolve_dest(&d)?.0, None, None)
            }
            (Location::Remote(s), Location::Remote(d)) => {
                return Err(Failure::usage(format!(
                    "SOURCE ({}) and DEST ({}) are both remote: one of them must be on this machine",
                    s.shown, d.shown
                )))
            }
            (Location::Local(s), Location::Remote(d)) => {
                (resolve_source(&s)?, PathBuf::from(&d.shown), None, Some(d))
            }
            (Location::Remote(s), Location::Local(d)) => {
                (PathBuf::from(&s.shown), resolve_dest(&d)?.0, Some(s), None)
            }
        };
        if s3_dest.is_none() && args.s3_endpoint.is_some() {
            return Err(Failure::usage("--s3-endpoint needs an s3://bucket/prefix DEST"));
        }
        let local_pair = remote_source.is_none() && remote_dest.is_none() && s3_dest.is_none();
        // Reads from a remote SOURCE, and --checksum digests, wait on round trips.
        let remote_side = !local_pair;
        let from_remote = remote_source.is_some();
        // SFTP cannot set a symlink's own attributes, and a FUSE server (sshfs) may
        // apply them to its target: symlinks are compared by target there.
        let no_link_attrs = remote_dest.is_some()
            || s3_dest.is_some()
            || dest_fs(&dest).is_some_and(|n| n.starts_with("fuse"));
        if local_pair && source == dest {
            return Err(Failure::usage(format!(
                "SOURCE and DEST are the same directory ({})",
                source.display()
            )));
        }
        if local_pair && dest.starts_with(&source) {
            return Err(Failure::usage(format!(
                "DEST ({}) is inside SOURCE ({}): the mirror would copy itself",
                dest.display(),
                source.display()
            )));
        }
        if local_pair && source.starts_with(&dest) {
            return Err(Failure::usage(format!(
                "SOURCE ({}) is inside DEST ({}): mirroring would delete the source",
                source.display(),
                dest.display()
            )));
        }
        for (on, flag) in
            [(args.hard_links, "-H/--hard-links"), (args.xattrs, "-X/--xattrs"), (args.acls, "-A/--acls")]
        {
            if on && !local_pair {
                // SFTP v3 carries no xattrs or ACLs, nor inode numbers to find links by;
                // an object store has neither.
                return Err(Failure::usage(format!(
                    "{flag} works with a SOURCE and DEST on this machine only (SFTP and S3 cannot carry it)"
                )));
            }
        }
        if remote_source.is_some() && args.backup_dir.is_some() {
            return Err(Failure::usage(
                "--backup-dir works with a DEST on this machine or over SFTP, not a remote SOURCE (for now)",
            ));
        }
        let backup = match &remote_dest {
            Some(_) => resolve_remote_backup(args)?,
            None => resolve_backup(args, &source, &dest)?,
        };
        let mut rules = build_rules(args)?;
        let inside_dest = backup.as_ref().and_then(|b| match b.remote {
            true => Some(b.root.as_path()),
            false => b.root.strip_prefix(&dest).ok(),
        });
        if let Some(rel) = inside_dest {
            // Inside DEST: out of the mirror on both sides, never deleted.
            let pattern = format!("/{}/", crate::ignore::escape_literal(&rel.to_string_lossy()));
            let keep = RuleFile::from_patterns("--backup-dir", &[pattern])
                .map_err(|e| Failure::usage(e.to_string()))?;
            rules.keep = Some(Arc::new(keep));
        }
        let rules = Arc::new(rules);
        let network_source = remote_source.is_none() && crate::watch::fstype::of(&source).remote;
        // SFTP v3 carries whole seconds.
        let dest_grain_ns = if remote_dest.is_some() {
            Some(1_000_000_000)
        } else if s3_dest.is_some() {
            // The `mtime` metadata keeps nanoseconds.
            None
        } else {
            dest_grain(&dest)
        };
        let watching = args.watch || args.poll.is_some();
        let one_file_system = match (args.one_file_system, &remote_source) {
            (true, None) => Some(
                std::fs::metadata(&source)
                    .map_err(|e| Failure::usage(format!("SOURCE {}: {}", source.display(), describe(&e))))?
                    .dev(),
            ),
            _ => None,
        };
        let xattrs =
            crate::xattrs::Which { xattrs: args.xattrs, acls: args.acls, root: crate::sys::is_root() };
        let attrs = xattrs.any().then(|| crate::xattrs::AttrCheck {
            which: xattrs,
            source: source.clone(),
            dest: dest.clone(),
        });
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Ok(Config {
            source,
            dest,
            remote_source,
            remote_dest,
            s3_dest,
            s3_endpoint: args.s3_endpoint.clone(),
            rsh,
            plan: PlanOptions {
                delete: !args.no_delete,
                checksum: args.checksum,
                modify_window_ns: args.modify_window.as_nanos().min(u64::MAX as u128) as u64,
                owner: crate::sys::is_root(),
                rules: Some(rules.clone()),
                explain: args.explain_ignored,
                dest_grain_ns,
                no_link_attrs,
                attrs,
                followers: None,
            },
            guards: Guards { max_delete: args.max_delete, allow_empty_source: args.allow_empty_source },
            dry_run: args.dry_run,
            output: OutputOptions {
                format: if args.json { Format::Json } else { Format::Human },
                verbose: args.verbose,
                quiet: args.quiet,
                dry_run: args.dry_run,
                progress: args.progress,
                timestamps: watching && !std::io::stderr().is_terminal() && !crate::report::journal_stream(),
                journal: crate::report::journal_stream(),
            },
            threads: match args.scan_threads {
                Some(n) => usize::from(n),
                None if from_remote => REMOTE_SOURCE_THREADS,
                None if network_source || remote_side => REMOTE_THREADS,
                None => cpus.max(MIN_THREADS),
            },
            watch: watching.then(|| WatchConfig {
                force_poll: args.poll,
                interval: args.poll.unwrap_or(DEFAULT_POLL),
                debounce: args.debounce,
                verify_every: (!args.verify_every.is_zero()).then_some(args.verify_every),
                watch_dest: !args.no_watch_dest,
            }),
            rules,
            explain_ignored: args.explain_ignored,
            one_file_system,
            bwlimit: args.bwlimit.unwrap_or(0),
            backup: backup.map(|b| &*Box::leak(Box::new(b))),
            xattrs,
            hard_links: args.hard_links,
        })
    }
}

/// Builds the command-line rules: `--files-from` (everything not listed excluded), then
/// `--exclude-from` files (in order), then the `--exclude` and `--include` patterns (in
/// command-line order), each overriding what comes before.
fn build_rules(args: &Args) -> Result<Rules, Failure> {
    let mut cli = Vec::new();
    if let Some(file) = &args.files_from {
        cli.push(Arc::new(files_from(file)?));
    }
    for file in &args.exclude_from {
        let bytes = std::fs::read(file)
            .map_err(|e| Failure::usage(format!("--exclude-from {}: {}", file.display(), describe(&e))))?;
        let origin = file.display().to_string();
        let rf = RuleFile::parse(Path::new(""), &origin, &String::from_utf8_lossy(&bytes))
            .map_err(|e| Failure::usage(e.to_string()))?;
        cli.push(Arc::new(rf));
    }
    // In command-line order with --include (`cli::parse`); --exclude alone otherwise.
    let patterns = if args.filters.is_empty() { &args.exclude } else { &args.filters };
    if !patterns.is_empty() {
        for p in patterns {
            // Each pattern checked alone, so the error names it.
            RuleFile::from_patterns("--exclude", std::slice::from_ref(p))
                .map_err(|e| Failure::usage(e.to_string()))?;
        }
        let rf = RuleFile::from_patterns("--exclude", patterns).map_err(|e| Failure::usage(e.to_string()))?;
        cli.push(Arc::new(rf));
    }
    Ok(Rules { cli, delete_excluded: args.delete_excluded, keep: None })
}

/// `--backup-dir DIR` (relative: inside DEST) resolved and checked: not SOURCE's, not
/// DEST itself or above it, on DEST's file system (entries are moved there by rename).
fn resolve_backup(args: &Args, source: &Path, dest: &Path) -> Result<Option<crate::backup::Backup>, Failure> {
    let Some(dir) = &args.backup_dir else {
        if args.suffix.is_some() {
            return Err(Failure::usage(
                "--suffix needs --backup-dir (the directory the suffixed names go to)",
            ));
        }
        return Ok(None);
    };
    let err = |msg: &str| Failure::usage(format!("--backup-dir {}: {msg}", dir.display()));
    let joined = if dir.is_absolute() { dir.clone() } else { dest.join(dir) };
    let mut root = PathBuf::from("/");
    let mut existing = PathBuf::from("/");
    let mut missing = false;
    for comp in joined.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir if !missing => {
                root.pop();
                existing = root.clone();
            }
            Component::ParentDir => return Err(err("`..` after a missing directory")),
            Component::Normal(name) => {
                root.push(name);
                if !missing {
                    match std::fs::symlink_metadata(&root) {
                        Ok(_) => {
                            root = std::fs::canonicalize(&root).map_err(|e| err(&describe(&e)))?;
                            existing = root.clone();
                        }
                        Err(_) => missing = true,
                    }
                }
            }
        }
    }
    if let Ok(md) = std::fs::metadata(&root) {
        if !md.is_dir() {
            return Err(err("exists and is not a directory"));
        }
    }
    if root.starts_with(source) || source.starts_with(&root) {
        return Err(err("is inside SOURCE (or holds it): SOURCE is only read"));
    }
    if dest.starts_with(&root) {
        return Err(err("is DEST or holds it: give a directory inside DEST or beside it"));
    }
    let mut dest_existing = dest.to_path_buf();
    while !dest_existing.exists() {
        if !dest_existing.pop() {
            break;
        }
    }
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if dev(&existing) != dev(&dest_existing) && !root.starts_with(dest) {
        return Err(err("is on another file system than DEST (entries are moved there by rename)"));
    }
    let suffix = args.suffix.clone().unwrap_or_default();
    if suffix.contains('/') {
        return Err(Failure::usage(format!("--suffix {suffix:?}: a suffix cannot contain /")));
    }
    Ok(Some(crate::backup::Backup { root, suffix: suffix.into_bytes(), remote: false }))
}

/// `--backup-dir DIR` for a DEST over SFTP: DIR is a relative path inside DEST
/// (renames cannot leave it: the server may put DEST anywhere on its file systems).
fn resolve_remote_backup(args: &Args) -> Result<Option<crate::backup::Backup>, Failure> {
    let Some(dir) = &args.backup_dir else {
        return resolve_backup(args, Path::new("/"), Path::new("/"));
    };
    let err = |msg: &str| Failure::usage(format!("--backup-dir {}: {msg}", dir.display()));
    let mut root = PathBuf::new();
    for comp in dir.components() {
        match comp {
            Component::CurDir => {}
            Component::Normal(name) => root.push(name),
            _ => return Err(err(
                "with a remote DEST, give a relative directory inside DEST (no `/` at the start, no `..`)",
            )),
        }
    }
    if root.as_os_str().is_empty() {
        return Err(err("is DEST itself: give a directory inside DEST"));
    }
    let suffix = args.suffix.clone().unwrap_or_default();
    if suffix.contains('/') {
        return Err(Failure::usage(format!("--suffix {suffix:?}: a suffix cannot contain /")));
    }
    Ok(Some(crate::backup::Backup { root, suffix: suffix.into_bytes(), remote: true }))
}

/// `--files-from FILE`: the listed paths (relative to SOURCE) as rules that exclude the
/// rest. A path that leaves SOURCE (`..`) is a usage error naming the line.
fn files_from(file: &Path) -> Result<RuleFile, Failure> {
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::usage(format!("--files-from {}: {}", file.display(), describe(&e))))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::usage(format!("--files-from {}: not UTF-8 text", file.display())))?;
    let mut paths = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let parts: Vec<&str> = line.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        if parts.contains(&"..") {
            return Err(Failure::usage(format!(
                "--files-from {}:{}: {line:?} leaves SOURCE (paths are relative to SOURCE, without ..)",
                file.display(),
                i + 1
            )));
        }
        if !parts.is_empty() {
            paths.push(parts.join("/"));
        }
    }
    let origin = format!("--files-from {}", file.display());
    RuleFile::parse(Path::new(""), &origin, &crate::ignore::files_from_lines(&paths))
        .map_err(|e| Failure::usage(e.to_string()))
}

/// The type of the file system holding DEST (or its nearest existing parent).
fn dest_fs(dest: &Path) -> Option<String> {
    let mut p = dest;
    while !p.exists() {
        p = p.parent()?;
    }
    Some(crate::watch::fstype::of(p).name)
}

/// DEST's file system keeps coarser timestamps than nanoseconds: the precision, in
/// nanoseconds. Read from the mount holding DEST (or its nearest existing parent).
fn dest_grain(dest: &Path) -> Option<i128> {
    let name = dest_fs(dest)?;
    match name.as_str() {
        "vfat" | "msdos" | "fat" | "umsdos" => Some(2_000_000_000),
        "exfat" => Some(10_000_000),
        "fuse.sshfs" | "sshfs" => Some(1_000_000_000),
        "cifs" | "smb3" | "smbfs" | "ntfs" | "ntfs3" | "fuseblk" => Some(100),
        _ => None,
    }
}

fn resolve_source(p: &Path) -> Result<PathBuf, Failure> {
    let md = std::fs::metadata(p)
        .map_err(|e| Failure::usage(format!("SOURCE {}: {}", p.display(), describe(&e))))?;
    if !md.is_dir() {
        return Err(Failure::usage(format!("SOURCE {} is not a directory", p.display())));
    }
    std::fs::canonicalize(p).map_err(|e| Failure::usage(format!("SOURCE {}: {}", p.display(), describe(&e))))
}

/// Resolves DEST: canonical if it exists; otherwise its nearest existing ancestor made
/// canonical, with the missing components appended (`..` among them applied).
fn resolve_dest(p: &Path) -> Result<(PathBuf, bool), Failure> {
    let err = |msg: String| Failure::usage(format!("DEST {}: {msg}", p.display()));
    if p.as_os_str().is_empty() {
        return Err(err("empty path".into()));
    }
    match std::fs::metadata(p) {
        Ok(md) if md.is_dir() => {
            let c = std::fs::canonicalize(p).map_err(|e| err(describe(&e)))?;
            return Ok((c, true));
        }
        Ok(_) => return Err(err("exists and is not a directory".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(err("is a symlink to a missing directory".into()));
            }
        }
        Err(e) => return Err(err(describe(&e))),
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| err(describe(&e)))?.join(p)
    };
    let mut cur = PathBuf::from("/");
    let mut missing = false;
    for comp in abs.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) => cur = PathBuf::from(comp.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(name) => {
                let next = cur.join(name);
                if missing {
                    cur = next;
                    continue;
                }
                match std::fs::metadata(&next) {
                    Ok(md) if md.is_dir() => {
                        cur = std::fs::canonicalize(&next).map_err(|e| err(describe(&e)))?;
                    }
                    Ok(_) => {
                        return Err(err(format!("{} is not a directory", next.display())));
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        if std::fs::symlink_metadata(&next).is_ok() {
                            return Err(err(format!("{} is a dangling symlink", next.display())));
                        }
                        missing = true;
                        cur = next;
                    }
                    Err(e) => return Err(err(describe(&e))),
                }
            }
        }
    }
    Ok((cur, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dest_resolves_through_existing_ancestor() {
        let t = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(t.path()).expect("canonical");
        let (d, exists) = resolve_dest(&t.path().join("a/./b/../c")).expect("resolves");
        assert!(!exists);
        assert_eq!(d, base.join("a/c"));
    }

    #[test]
    fn dest_below_a_file_is_an_error() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("f"), b"x").expect("write");
        let e = resolve_dest(&t.path().join("f/sub")).expect_err("must fail");
        assert_eq!(e.exit(), crate::exit::Exit::Usage);
    }
}
