//! `--config FILE`: a TOML file of mirrors, turned into one validated [`Config`] per
//! mirror.
//!
//! The file has top-level defaults and `[[sync]]` tables, each with `source`, `dest`,
//! an optional `name` and the per-mirror options of the command line under their long
//! names (`exclude = ["*.tmp"]`, `delete = false`, `max-delete = 100`, `poll = "5s"`).
//! Each key becomes the flag it names and the flags go through the command line's own
//! parser (`cli::parse`) and checks (`Config::from_args`), so an option has one parser;
//! what this module adds is the file: keys checked against the flags, values against
//! their kind, mirrors against each other (no DEST inside another's SOURCE or DEST),
//! and errors that name the file, the line and the key (exit status 2).
//!
//! A `[[sync]]` key overrides the same top-level key; list keys (`exclude`, `include`,
//! `exclude-from`) add up, top-level ones first; `exclude` patterns come before
//! `include` ones.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::CommandFactory;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::cli::Args;
use crate::config::Config;
use crate::exit::Failure;

/// The settings of a `--config` service.
#[derive(Debug)]
pub struct ServiceConfig {
    pub path: PathBuf,
    /// `status-file` (the command line's --status-file wins).
    pub status_file: Option<PathBuf>,
    /// Workers of the one pool all mirrors share.
    pub threads: usize,
    /// `bwlimit`, for all copies of all mirrors together.
    pub bwlimit: u64,
    pub pairs: Vec<Pair>,
}

/// One mirror of the file.
#[derive(Debug, Clone)]
pub struct Pair {
    /// `name`, or DEST as written.
    pub name: String,
    /// The command line it stands for (two loads of the same mirror are the same when
    /// these are).
    pub argv: Vec<OsString>,
    pub cfg: Config,
}

impl ServiceConfig {
    /// Whether any mirror watches (else the file is a one-shot of every mirror).
    pub fn watches(&self) -> bool {
        self.pairs.iter().any(|p| p.cfg.watch.is_some())
    }
}

/// Keys of the process, not of a mirror: top level only.
const PROCESS_KEYS: &[&str] = &["scan-threads", "threads", "bwlimit", "status-file"];
/// Flags that make no sense in the file, with why.
const NOT_IN_FILE: &[(&str, &str)] = &[
    ("config", "a config file cannot name another"),
    ("completions", "not a mirror's option"),
    ("man", "not a mirror's option"),
    ("help", "not a mirror's option"),
    ("version", "not a mirror's option"),
    ("verbose", "output options go on the command line (tandem --config FILE -v)"),
    ("quiet", "output options go on the command line (tandem --config FILE -q)"),
    ("json", "output options go on the command line (tandem --config FILE --json)"),
    ("progress", "a service shows no progress display"),
    ("dry-run", "not available in a config file"),
];

/// A problem in the file: `FILE:LINE: KEY: message`.
fn err(path: &Path, line: usize, key: &str, message: impl std::fmt::Display) -> Failure {
    if key.is_empty() {
        Failure::usage(format!("{}:{line}: {message}", path.display()))
    } else {
        Failure::usage(format!("{}:{line}: {key}: {message}", path.display()))
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// A key's value and the line it was given on.
#[derive(Clone)]
struct Given<'a> {
    value: &'a DeValue<'a>,
    line: usize,
}

/// Loads and validates the file. `cli` is the command line (its output options apply
/// to every mirror; its --scan-threads, --bwlimit and --status-file win over the
/// file's).
pub fn load(path: &Path, cli: &Args) -> Result<ServiceConfig, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("{}: {}", path.display(), crate::sys::describe(&e))))?;
    let doc = DeTable::parse(&text).map_err(|e| {
        let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(1);
        err(path, line, "", e.message().trim())
    })?;
    let cmd = Args::command();
    // Every long flag, by name: whether it takes a value, and whether it repeats.
    let mut flags: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            let append = matches!(a.get_action(), clap::ArgAction::Append);
            flags.insert(l.to_string(), (a.get_action().takes_values(), append));
        }
    }
    let line = |s: &Spanned<DeValue<'_>>| line_of(&text, s.span().start);
    let check_key = |key: &str, kline: usize, top: bool| -> Result<(), Failure> {
        if let Some((_, why)) = NOT_IN_FILE.iter().find(|(k, _)| *k == key) {
            return Err(err(path, kline, key, why));
        }
        if PROCESS_KEYS.contains(&key) {
            return if top {
                Ok(())
            } else {
                Err(err(path, kline, key, "is for the whole service: set it at the top of the file"))
            };
        }
        if flags.contains_key(key) || (!top && ["source", "dest", "name"].contains(&key)) {
            return Ok(());
        }
        let hint = if key.contains('_') {
            format!(" (did you mean {}?)", key.replace('_', "-"))
        } else {
            String::new()
        };
        Err(err(path, kline, key, format!("unknown key{hint}")))
    };
    let mut defaults: BTreeMap<String, Given<'_>> = BTreeMap::new();
    let mut tables: Vec<(usize, BTreeMap<String, Given<'_>>)> = Vec::new();
    let doc_ref = doc.get_ref();
    for (k, v) in doc_ref.iter() {
        let key = k.get_ref().as_ref();
        let kline = line_of(&text, k.span().start);
        if key == "sync" {
            let DeValue::Array(items) = v.get_ref() else {
                return Err(err(path, kline, key, "expects [[sync]] tables"));
            };
            for item in items.iter() {
                let DeValue::Table(t) = item.get_ref() else {
                    return Err(err(path, line(item), key, "expects [[sync]] tables"));
                };
                let mut keys = BTreeMap::new();
                for (k2, v2) in t.iter() {
                    let key2 = k2.get_ref().as_ref();
                    let kline2 = line_of(&text, k2.span().start);
                    check_key(key2, kline2, false)?;
                    keys.insert(key2.to_string(), Given { value: v2.get_ref(), line: kline2 });
                }
                tables.push((line(item), keys));
            }
            continue;
        }
        check_key(key, kline, true)?;
        defaults.insert(key.to_string(), Given { value: v.get_ref(), line: kline });
    }
    if tables.is_empty() {
        return Err(err(path, 1, "", "no [[sync]] table: nothing to mirror"));
    }
    // The process's keys.
    let str_of = |g: &Given<'_>, key: &str| -> Result<String, Failure> {
        match g.value {
            DeValue::String(s) => Ok(s.to_string()),
            DeValue::Integer(i) => Ok(i.as_str().to_string()),
            DeValue::Float(f) => Ok(f.as_str().to_string()),
            _ => Err(err(path, g.line, key, format!("expects a value, got {}", g.value.type_str()))),
        }
    };
    let status_file = match defaults.remove("status-file") {
        Some(g) => Some(PathBuf::from(str_of(&g, "status-file")?)),
        None => None,
    };
    let mut process_argv: Vec<OsString> = vec!["tandem".into()];
    for key in ["scan-threads", "threads", "bwlimit"] {
        if let Some(g) = defaults.remove(key) {
            process_argv.push(format!("--{key}={}", str_of(&g, key)?).into());
        }
    }
    let mut pairs: Vec<Pair> = Vec::new();
    for (tline, table) in &tables {
        let mut merged: BTreeMap<String, Vec<Given<'_>>> = BTreeMap::new();
        for (k, g) in defaults.iter() {
            merged.entry(k.clone()).or_default().push(g.clone());
        }
        for (k, g) in table {
            let append = flags.get(k).is_some_and(|(_, a)| *a);
            let e = merged.entry(k.clone()).or_default();
            if !append {
                e.clear();
            }
            e.push(g.clone());
        }
        let key_line: BTreeMap<String, usize> =
            merged.iter().map(|(k, gs)| (k.clone(), gs.last().map(|g| g.line).unwrap_or(*tline))).collect();
        let need = |key: &str| -> Result<String, Failure> {
            match merged.get(key).and_then(|g| g.last()) {
                Some(g) => match g.value {
                    DeValue::String(s) if !s.is_empty() => Ok(s.to_string()),
                    _ => Err(err(path, g.line, key, "expects a path (a non-empty string)")),
                },
                None => Err(err(path, *tline, key, "missing: each [[sync]] needs a source and a dest")),
            }
        };
        let source = need("source")?;
        let dest = need("dest")?;
        let name = match merged.get("name").and_then(|g| g.last()) {
            Some(g) => match g.value {
                DeValue::String(s) if !s.is_empty() => s.to_string(),
                _ => return Err(err(path, g.line, "name", "expects a non-empty string")),
            },
            None => dest.clone(),
        };
        let mut argv = process_argv.clone();
        // The command line's output options, for every mirror.
        for _ in 0..cli.verbose {
            argv.push("-v".into());
        }
        if cli.quiet {
            argv.push("--quiet".into());
        }
        if cli.json {
            argv.push("--json".into());
        }
        argv.push("--progress=none".into());
        // `exclude` before `include`: an include re-includes what an exclude excluded.
        let mut keys: Vec<&String> = merged.keys().collect();
        keys.sort_by_key(|k| (k.as_str() == "include", k.as_str()));
        for key in keys {
            if ["source", "dest", "name"].contains(&key.as_str()) {
                continue;
            }
            let (takes_value, append) = flags.get(key.as_str()).copied().unwrap_or((true, false));
            for g in &merged[key] {
                to_flags(path, key, g, takes_value, append, &mut argv)?;
            }
        }
        argv.push("--".into());
        argv.push(source.into());
        argv.push(dest.into());
        let args = crate::cli::parse(argv.clone()).map_err(|e| {
            let flag = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.clone(),
                Some(ContextValue::Strings(v)) => v.first().cloned().unwrap_or_default(),
                _ => String::new(),
            };
            let word = flag.split_whitespace().next().unwrap_or("").trim_start_matches('-');
            let word = word.split('=').next().unwrap_or(word).to_string();
            let l = key_line.get(&word).copied().unwrap_or(*tline);
            let shown = if key_line.contains_key(&word) { word } else { String::new() };
            err(path, l, &shown, crate::cli::error_line(&e))
        })?;
        let cfg = Config::from_args(&args).map_err(|f| {
            let message = f.to_string();
            let key = if message.starts_with("SOURCE") {
                "source".to_string()
            } else if message.starts_with("DEST") {
                "dest".to_string()
            } else if let Some(rest) = message.strip_prefix("--") {
                rest.split([' ', ':', '=']).next().unwrap_or("").to_string()
            } else {
                String::new()
            };
            match key_line.get(&key) {
                Some(l) => err(path, *l, &key, &message),
                None => err(path, *tline, "", &message),
            }
        })?;
        if pairs.iter().any(|p| p.name == name) {
            let l = key_line.get("name").or(key_line.get("dest")).copied().unwrap_or(*tline);
            return Err(err(
                path,
                l,
                "name",
                format!("{name:?} names two mirrors (names, or DEST where no name is given, must differ)"),
            ));
        }
        let dline = key_line.get("dest").copied().unwrap_or(*tline);
        for other in &pairs {
            if let Some(why) = overlap(&cfg, &other.cfg) {
                return Err(err(path, dline, "dest", format!("{why} of mirror {:?}", other.name)));
            }
        }
        pairs.push(Pair { name, argv, cfg });
    }
    let threads = match cli.scan_threads {
        Some(n) => usize::from(n),
        None => pairs.iter().map(|p| p.cfg.threads).max().unwrap_or(4),
    };
    let bwlimit = match cli.bwlimit {
        Some(b) => b,
        None => pairs.first().map(|p| p.cfg.bwlimit).unwrap_or(0),
    };
    Ok(ServiceConfig {
        path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        status_file: cli.status_file.clone().or(status_file),
        threads,
        bwlimit,
        pairs,
    })
}

/// One key's value as flags: `--key`, `--key=VALUE`, or one `--key=VALUE` per item.
fn to_flags(
    path: &Path,
    key: &str,
    g: &Given<'_>,
    takes_value: bool,
    append: bool,
    argv: &mut Vec<OsString>,
) -> Result<(), Failure> {
    let scalar = |v: &DeValue<'_>| -> Option<String> {
        match v {
            DeValue::String(s) => Some(s.to_string()),
            DeValue::Integer(i) => Some(i.as_str().to_string()),
            DeValue::Float(f) => Some(f.as_str().to_string()),
            _ => None,
        }
    };
    // `poll = true`: poll at the default interval.
    if key == "poll" {
        return match g.value {
            DeValue::Boolean(true) => {
                argv.push("--poll=2s".into());
                Ok(())
            }
            DeValue::Boolean(false) => Ok(()),
            v => match scalar(v) {
                Some(s) => {
                    argv.push(format!("--poll={s}").into());
                    Ok(())
                }
                None => Err(err(path, g.line, key, "expects true or an interval such as \"5s\"")),
            },
        };
    }
    if !takes_value {
        return match g.value {
            DeValue::Boolean(true) => {
                argv.push(format!("--{key}").into());
                Ok(())
            }
            DeValue::Boolean(false) => {
                // The opposite flag, where there is one.
                match key {
                    "delete" => argv.push("--no-delete".into()),
                    "no-delete" => argv.push("--delete".into()),
                    _ => {}
                }
                Ok(())
            }
            v => Err(err(path, g.line, key, format!("expects true or false, got {}", v.type_str()))),
        };
    }
    match g.value {
        DeValue::Array(items) if append => {
            for item in items.iter() {
                match scalar(item.get_ref()) {
                    Some(s) => argv.push(format!("--{key}={s}").into()),
                    None => {
                        return Err(err(path, g.line, key, "expects a list of strings"));
                    }
                }
            }
            Ok(())
        }
        DeValue::Array(_) => Err(err(path, g.line, key, "takes one value, not a list")),
        v => match scalar(v) {
            Some(s) => {
                argv.push(format!("--{key}={s}").into());
                Ok(())
            }
            None => Err(err(path, g.line, key, format!("expects a value, got {}", v.type_str()))),
        },
    }
}

/// Why two mirrors cannot run side by side, if they cannot: one's DEST is the other's,
/// inside it or holding it, or inside (or holding) the other's SOURCE.
fn overlap(a: &Config, b: &Config) -> Option<&'static str> {
    let same_side = |x: bool, y: bool| x == y;
    let nested = |p: &Path, q: &Path| p.starts_with(q) || q.starts_with(p);
    let (a_remote, b_remote) = (a.remote_dest.is_some(), b.remote_dest.is_some());
    if same_side(a_remote, b_remote) {
        if a.dest == b.dest {
            return Some("DEST is also the DEST");
        }
        if nested(&a.dest, &b.dest) {
            return Some("DEST is nested with the DEST");
        }
    }
    if !a_remote && b.remote_source.is_none() && nested(&a.dest, &b.source) {
        return Some("DEST overlaps the SOURCE");
    }
    if !b_remote && a.remote_source.is_none() && nested(&b.dest, &a.source) {
        return Some("SOURCE overlaps the DEST");
    }
    None
}
