//! A long-running child process (the built binary, in watch mode or killed
//! mid-run) whose stdout and stderr are collected line by line in the
//! background. The one process type of the integration tests.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::{bin_path, holds_within};

/// Lines kept of each stream in `dump` (`TANDEM_TEST_FULL_OUTPUT=1`: all).
const DUMP_TAIL: usize = 60;

/// A child process whose stdout and stderr are collected line by line.
/// Every method takes `&self`; dropping it kills the process (SIGKILL).
pub struct Proc {
    pid: i32,
    program: String,
    pub args: Vec<OsString>,
    out: Arc<Mutex<Vec<String>>>,
    /// stderr lines without the timestamp watch mode puts in front of them when
    /// stderr is not a terminal (as here); `err_raw` keeps them as written.
    err: Arc<Mutex<Vec<String>>>,
    err_raw: Arc<Mutex<Vec<String>>>,
    state: Mutex<State>,
}

struct State {
    child: Option<Child>,
    status: Option<ExitStatus>,
    readers: Vec<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Collects lines into `into` (the timestamp prefix stripped) and, if given, `raw`.
fn collect(
    mut r: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
    raw: Option<Arc<Mutex<Vec<String>>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut br = BufReader::new(&mut r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match br.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches('\n').to_string();
                    match &raw {
                        Some(raw) => {
                            lock(&into).push(super::strip_timestamp(&line).to_string());
                            lock(raw).push(line);
                        }
                        None => lock(&into).push(line),
                    }
                }
            }
        }
    })
}

impl Proc {
    /// `tandem ARGS...`
    pub fn spawn<S: AsRef<OsStr>>(args: &[S]) -> Proc {
        Self::spawn_cmd(Command::new(bin_path()), args)
    }

    /// A prepared command (another uid, a wrapper, an environment) with `args`
    /// appended; stdin is /dev/null, stdout and stderr are collected.
    pub fn spawn_cmd<S: AsRef<OsStr>>(mut cmd: Command, args: &[S]) -> Proc {
        let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
        let program = std::path::Path::new(cmd.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut child = cmd
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let err_raw = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), out.clone(), None),
            collect(child.stderr.take().unwrap(), err.clone(), Some(err_raw.clone())),
        ];
        Proc {
            pid: child.id() as i32,
            program,
            args,
            out,
            err,
            err_raw,
            state: Mutex::new(State { child: Some(child), status: None, readers }),
        }
    }

    /// The watches in each inotify instance the process holds (one entry per
    /// instance, sorted).
    pub fn inotify_watches(&self) -> Vec<usize> {
        let pid = self.pid;
        let mut v = Vec::new();
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t == std::path::Path::new("anon_inode:inotify")) {
                let info = std::fs::read_to_string(format!(
                    "/proc/{pid}/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                ))
                .unwrap_or_default();
                v.push(info.lines().filter(|l| l.starts_with("inotify wd:")).count());
            }
        }
        v.sort_unstable();
        v
    }

    /// The process's threads named by notify's inotify backend (one per watcher).
    pub fn notify_threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("notify-rs"))
            })
            .count()
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The stdout lines so far (all of them once the process has exited).
    pub fn stdout(&self) -> Vec<String> {
        lock(&self.out).clone()
    }

    /// The stderr lines so far, without watch mode's timestamps.
    pub fn stderr(&self) -> Vec<String> {
        lock(&self.err).clone()
    }

    /// The stderr lines so far, as written.
    pub fn stderr_raw(&self) -> Vec<String> {
        lock(&self.err_raw).clone()
    }

    /// Whether some stdout line satisfies `pred` (without copying the lines).
    pub fn any_stdout(&self, pred: impl Fn(&str) -> bool) -> bool {
        lock(&self.out).iter().any(|l| pred(l))
    }

    pub fn any_stderr(&self, pred: impl Fn(&str) -> bool) -> bool {
        lock(&self.err).iter().any(|l| pred(l))
    }

    /// The number of stdout lines so far: a mark for `events_since`.
    pub fn mark(&self) -> usize {
        lock(&self.out).len()
    }

    /// The JSON events printed so far (fails on a stdout line that is not JSON).
    pub fn events(&self) -> Vec<Value> {
        self.events_since(0)
    }

    /// The JSON events printed after `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<Value> {
        let lines = self.stdout();
        lines[mark.min(lines.len())..]
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}\n{}", self.dump()))
            })
            .collect()
    }

    /// Has the process exited? Reaps it if so, and then waits for the
    /// collectors to drain the pipes, so that stdout and stderr are complete.
    pub fn exited(&self) -> Option<ExitStatus> {
        let mut st = lock(&self.state);
        if st.status.is_none() {
            if let Some(c) = st.child.as_mut() {
                st.status = c.try_wait().expect("try_wait");
            }
        }
        if st.status.is_some() {
            for r in st.readers.drain(..) {
                let _ = r.join();
            }
        }
        st.status
    }

    /// Sends `sig`. Fails the test if the process has already been reaped
    /// (its pid may belong to someone else by now).
    pub fn signal(&self, sig: i32) {
        let rc = {
            let st = lock(&self.state);
            // SAFETY: kill(2) on our own child, which has not been reaped (the
            // lock keeps it so).
            st.status.is_none().then(|| unsafe { libc::kill(self.pid, sig) })
        };
        let rc =
            rc.unwrap_or_else(|| panic!("signal {sig} to {} after it exited\n{}", self.program, self.dump()));
        assert_eq!(rc, 0, "kill({}, {sig}): {}", self.pid, std::io::Error::last_os_error());
    }

    /// Waits (at most `timeout`) for the process to exit on its own.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        holds_within(timeout, || self.exited().is_some());
        self.exited()
    }

    /// SIGKILL and reap; returns whether it was still running.
    pub fn kill9(&self) -> bool {
        let running = self.exited().is_none();
        {
            let mut st = lock(&self.state);
            if st.status.is_none() {
                if let Some(c) = st.child.as_mut() {
                    let _ = c.kill();
                    st.status = Some(c.wait().expect("wait"));
                }
            }
        }
        self.exited();
        running
    }

    /// Sends `sig` (unless it has exited already) and waits for the exit;
    /// fails the test after `timeout`.
    #[track_caller]
    pub fn stop(&self, sig: i32, timeout: Duration) -> ExitStatus {
        if self.exited().is_none() {
            self.signal(sig);
        }
        self.wait_timeout(timeout).unwrap_or_else(|| {
            panic!("{} did not exit within {timeout:?} after signal {sig}\n{}", self.program, self.dump())
        })
    }

    /// Waits until `cond` holds; fails the test (naming `what`, with the
    /// dump) on timeout or when the process exits first.
    #[track_caller]
    pub fn wait_for(&self, what: &str, timeout: Duration, cond: impl FnMut(&Proc) -> bool) {
        self.wait_for_explained(what, timeout, cond, String::new)
    }

    /// `wait_for`, whose failure message also carries `explain()` (the state
    /// that is still wrong, computed only on failure).
    #[track_caller]
    pub fn wait_for_explained(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Proc) -> bool,
        explain: impl FnOnce() -> String,
    ) {
        let mut exited = None;
        let held = holds_within(timeout, || {
            if cond(self) {
                return true;
            }
            match self.exited() {
                // The pipes are drained now: one last look.
                Some(st) if !cond(self) => {
                    exited = Some(st);
                    true
                }
                Some(_) => true,
                None => false,
            }
        });
        let detail = |explain: String| if explain.is_empty() { explain } else { explain + "\n" };
        if let Some(st) = exited {
            panic!(
                "{} exited ({st}) while waiting for {what}\n{}{}",
                self.program,
                detail(explain()),
                self.dump()
            );
        }
        if !held {
            panic!("timed out after {timeout:?} waiting for {what}\n{}{}", detail(explain()), self.dump());
        }
    }

    /// Waits until some stdout line satisfies `pred` (see `wait_for`).
    #[track_caller]
    pub fn wait_stdout(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        self.wait_for(what, timeout, |p| p.any_stdout(&pred));
    }

    /// Waits until some stderr line satisfies `pred` (see `wait_for`).
    #[track_caller]
    pub fn wait_stderr(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        self.wait_for(what, timeout, |p| p.any_stderr(&pred));
    }

    /// Waits for the JSON `cycle` event of the initial sync (see `wait_for`).
    #[track_caller]
    pub fn wait_initial_sync(&self, timeout: Duration) {
        self.wait_stdout("the initial sync (cycle 0)", timeout, |l| {
            serde_json::from_str::<Value>(l)
                .map(|v| v["event"] == "cycle" && v["cycle"].as_u64() == Some(0))
                .unwrap_or(false)
        });
    }

    /// Everything known about the run, for failure messages: the command,
    /// the exit status and the tails of stdout and stderr.
    pub fn dump(&self) -> String {
        let tail = |v: Vec<String>| {
            let n = v.len();
            let keep = if std::env::var_os("TANDEM_TEST_FULL_OUTPUT").is_some() { n } else { DUMP_TAIL };
            let skip = n.saturating_sub(keep);
            let mut s = if skip > 0 { format!("    ... ({skip} earlier lines)\n") } else { String::new() };
            for l in &v[skip..] {
                s.push_str("    ");
                s.push_str(l);
                s.push('\n');
            }
            s
        };
        let status = match self.state.try_lock() {
            Ok(st) => format!("{:?}", st.status),
            Err(_) => "(unknown)".to_string(),
        };
        format!(
            "{} {:?}\n  status: {status}\n  --- stdout (tail) ---\n{}  --- stderr (tail) ---\n{}",
            self.program,
            self.args,
            tail(self.stdout()),
            tail(self.stderr())
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = st.child.take() {
            if st.status.is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
