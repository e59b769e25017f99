//! A `--config` service's status: what each mirror is doing ([`PairState`], updated by
//! its watch loop), the status file the service keeps (written atomically, [`write`])
//! and `tandem status`, which prints it ([`show`]).
//!
//! The file is one JSON object: `pid`, `config`, `updated`, `ready` and `pairs`, each
//! pair with `name`, `source`, `dest`, `strategy`, `state` (`starting`, `syncing`,
//! `idle`, `paused`, `retrying`, `done`, `stopped`), `paused` (why, when paused),
//! `held_back` (deletions `--max-delete` holds back), `pending` (changes seen and not
//! synced yet), `last_sync` (local RFC 3339 time) and `last_result`, `cycles`, `totals`
//! and `last_error` (`{message, time}`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::lock::lock;

/// What one mirror is doing, as its loop last said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub strategy: Option<String>,
    pub state: &'static str,
    pub paused: Option<String>,
    pub held_back: u64,
    pub pending: u64,
    pub last_sync: Option<String>,
    pub last_result: Option<&'static str>,
    pub cycles: u64,
    /// The first sync has finished (done, or failed and being retried): what
    /// systemd's readiness waits for.
    pub initial_done: bool,
}

/// One mirror's state, shared by its loop (writer) and the service (reader).
#[derive(Debug, Default)]
pub struct PairState {
    inner: Mutex<Snapshot>,
    /// Bumped by every change, so that an idle service rebuilds nothing.
    version: AtomicU64,
}

impl PairState {
    pub fn new() -> PairState {
        PairState {
            inner: Mutex::new(Snapshot { state: "starting", ..Snapshot::default() }),
            version: AtomicU64::new(0),
        }
    }

    pub fn get(&self) -> Snapshot {
        lock(&self.inner).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut s = lock(&self.inner);
        let before = s.clone();
        f(&mut s);
        if *s != before {
            self.version.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many times the state has changed.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// A sync (a first sync or a cycle) finished with this result.
    pub fn synced(&self, result: &'static str) {
        self.update(|s| {
            s.last_sync = Some(crate::sys::local_timestamp());
            s.last_result = Some(result);
            s.initial_done = true;
        });
    }
}

/// The default status file: `$XDG_RUNTIME_DIR/tandem/status.json`, or
/// `/run/tandem/status.json` as root; none otherwise.
pub fn default_path() -> Option<PathBuf> {
    if crate::sys::is_root() {
        return Some(PathBuf::from("/run/tandem/status.json"));
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    Some(Path::new(&dir).join("tandem/status.json"))
}

/// Writes `v` to `path` atomically: a temporary beside it, then a rename (a reader
/// sees the old file or the new one, whole). Creates the parent directory.
pub fn write(path: &Path, v: &Value) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    let mut text = v.to_string();
    text.push('\n');
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_data());
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// `tandem status`: prints the status file (as it is with `json`, else a few lines
/// per mirror). Returns the exit status: 0, or 1 when there is no readable file.
pub fn show(json_out: bool, path: Option<&Path>) -> crate::exit::Exit {
    use crate::exit::Exit;
    let Some(path) = path.map(Path::to_path_buf).or_else(default_path) else {
        eprintln!("tandem: no status file: XDG_RUNTIME_DIR is not set (give --status-file PATH, as the service was given)");
        return Exit::Fatal;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "tandem: cannot read the status file {}: {} (is a `tandem --config` service running? it may use another --status-file)",
                path.display(),
                crate::sys::describe(&e)
            );
            return Exit::Fatal;
        }
    };
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tandem: {} is not a tandem status file: {e}", path.display());
            return Exit::Fatal;
        }
    };
    let running = v["pid"].as_u64().is_some_and(|pid| {
        rustix::process::Pid::from_raw(pid as i32).is_some_and(|p| {
            rustix::process::test_kill_process(p).is_ok()
                || rustix::process::test_kill_process(p) == Err(rustix::io::Errno::PERM)
        })
    });
    let mut out = std::io::stdout().lock();
    if json_out {
        let mut v = v;
        v["running"] = json!(running);
        let _ = writeln!(out, "{v}");
        return Exit::Ok;
    }
    let _ = writeln!(out, "{}", human(&v, running));
    Exit::Ok
}

/// The status in words: a line for the service, then each mirror's.
pub fn human(v: &Value, running: bool) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let mut lines = vec![format!(
        "tandem service (pid {}, {}{}) with {}; status of {}",
        n(&v["pid"]),
        if running { "running" } else { "not running" },
        if v["ready"].as_bool() == Some(true) { ", ready" } else { ", starting" },
        s(&v["config"]),
        s(&v["updated"]),
    )];
    for p in v["pairs"].as_array().into_iter().flatten() {
        let mut state = s(&p["state"]);
        if let Some(why) = p["paused"].as_str() {
            state = format!("{state} ({why})");
        }
        lines.push(format!("{}: {} -> {}", s(&p["name"]), s(&p["source"]), s(&p["dest"])));
        lines.push(format!("  state: {state}; strategy: {}", p["strategy"].as_str().unwrap_or("(none yet)")));
        let held = n(&p["held_back"]);
        if held > 0 {
            lines.push(format!("  deletions held back: {held} (--max-delete)"));
        }
        lines.push(format!(
            "  last sync: {} ({}); pending changes: {}; cycles: {}",
            p["last_sync"].as_str().unwrap_or("never"),
            p["last_result"].as_str().unwrap_or("-"),
            n(&p["pending"]),
            n(&p["cycles"]),
        ));
        let t = &p["totals"];
        lines.push(format!(
            "  totals: {} copied ({} bytes), {} deleted, {} renamed, {} errors",
            n(&t["copied"]),
            n(&t["bytes"]),
            n(&t["deleted"]),
            n(&t["renamed"]),
            n(&t["errors"]),
        ));
        if let Some(m) = p["last_error"]["message"].as_str() {
            lines.push(format!("  last error: {m} (at {})", s(&p["last_error"]["time"])));
        }
    }
    lines.join("\n")
}
