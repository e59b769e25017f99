//! Output features: progress displays (`--progress auto|bar|lines|none`), the
//! end-of-run summary (human and JSON), verbosity (`-q`, `-v`, `-vv`), colour
//! (terminal only, never with NO_COLOR), shell completions and the man page.
//!
//! Long copies are made slow *deterministically* by running the binary under
//! `strace` with a delay injected into every `copy_file_range` call (one call
//! per small file), with `--threads 2`. Where strace cannot trace (no
//! ptrace), a large copy on /dev/shm is used instead and the timing-dependent
//! assertions are skipped (with a printed reason) if that copy was too fast;
//! set TANDEM_TEST_NO_STRACE=1 to exercise that fallback. Both are skips:
//! under TANDEM_REQUIRE_ALL=1 a missing strace fails the test (unless the
//! fallback was asked for), and so does a fallback copy that was too fast.
//! Terminal behaviour is tested under a pseudo-terminal made by util-linux
//! `script`; without it those tests are skipped (fail under
//! TANDEM_REQUIRE_ALL=1).

mod util;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

const ESC: char = '\x1b';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_no_escapes(what: &str, r: &Run) {
    assert!(!r.stdout.contains(ESC), "{what}: escape code on stdout (not a terminal):\n{r:?}");
    assert!(!r.stderr.contains(ESC), "{what}: escape code on stderr (not a terminal):\n{r:?}");
}

fn os(args: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

fn stderr_lines(r: &Run) -> Vec<&str> {
    r.stderr.lines().filter(|l| !l.trim().is_empty()).collect()
}

fn is_summary_line(l: &str) -> bool {
    l.starts_with("tandem: ") && l.contains(" entries scanned, ")
}

/// Quote for `sh -c`.
fn sh_quote(s: &OsStr) -> String {
    let s = s.to_str().expect("test paths are UTF-8");
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether `strace` can trace here and inject syscall delays.
fn strace_delay_works() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        std::env::var_os("TANDEM_TEST_NO_STRACE").is_none()
            && std::process::Command::new("strace")
                .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=copy_file_range"])
                .args(["-e", "inject=copy_file_range:delay_enter=1000", "true"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
    })
}

/// Whether util-linux `script` can run a command under a pseudo-terminal.
fn script_works() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        std::process::Command::new("script")
            .args(["-qfec", "test -t 2", "/dev/null"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

/// A SOURCE whose copy takes a few seconds.
struct SlowCopy {
    sb: Sandbox,
    files: u64,
    bytes: u64,
    /// The command line that runs tandem (strace wrapper or the bare binary),
    /// without tandem's own arguments.
    prefix: Vec<OsString>,
    /// True when the slowness is injected (deterministic).
    delayed: bool,
}

/// Per-file delay and file count: 8 files x 750 ms on 2 threads = about 3 s.
const DELAY_US: u64 = 750_000;
const SLOW_FILES: u64 = 8;

impl SlowCopy {
    fn new(test: &str) -> SlowCopy {
        let sb = Sandbox::new_fast();
        let src = sb.src_tree();
        let bin = bin_path().into_os_string();
        if !strace_delay_works() && std::env::var_os("TANDEM_TEST_NO_STRACE").is_none() {
            skip(
                test,
                "strace cannot inject delays here (not installed, or no ptrace); \
                 falling back to a large copy, whose timing checks may be skipped",
            );
        }
        if strace_delay_works() {
            let mut bytes = 0;
            for i in 0..SLOW_FILES {
                let len = 64 * 1024 + i as usize;
                src.file(format!("slow{i}.bin"), pseudo_random(len, i));
                bytes += len as u64;
            }
            let prefix = os(&[
                &"strace",
                &"-f",
                &"-qq",
                &"-o",
                &"/dev/null",
                &"-e",
                &"trace=copy_file_range",
                &"-e",
                &format!("inject=copy_file_range:delay_enter={DELAY_US}"),
                &bin,
            ]);
            SlowCopy { sb, files: SLOW_FILES, bytes, prefix, delayed: true }
        } else {
            // 16 x 64 MiB of real (non-sparse) data.
            let chunk = pseudo_random(1 << 20, 99);
            let mut content = Vec::with_capacity(64 << 20);
            for _ in 0..64 {
                content.extend_from_slice(&chunk);
            }
            for i in 0..16 {
                src.file(format!("big{i}.bin"), &content);
            }
            SlowCopy { sb, files: 16, bytes: 16 * (64 << 20), prefix: vec![bin], delayed: false }
        }
    }

    /// Runs tandem with `args` (then `--threads 2 SOURCE DEST`); returns the run
    /// and its wall time.
    fn run(&self, args: &[&str]) -> (Run, Duration) {
        let mut c = std::process::Command::new(&self.prefix[0]);
        c.args(&self.prefix[1..]);
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.extend(os(&[&"--threads", &"2", &self.sb.src(), &self.sb.dst()]));
        let t = Instant::now();
        let r = run_with(assert_cmd::Command::from_std(c), all, Duration::from_secs(60));
        (r, t.elapsed())
    }

    /// False (with a printed reason) when the copy was too fast to expect a
    /// progress line.
    fn long_enough(&self, test: &str, elapsed: Duration) -> bool {
        if self.delayed || elapsed >= Duration::from_millis(2500) {
            return true;
        }
        skip(test, &format!("strace unavailable and the fallback copy took only {elapsed:?}"));
        false
    }
}

/// `1,234` (as the binary prints counts).
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Checks one `tandem: copied 3/8 files, 1.2 MiB/3.4 MiB, 85.0 MiB/s, ETA 0:27` line.
#[track_caller]
fn check_copied_line(line: &str, files: u64) {
    let rest = line.strip_prefix("tandem: copied ").unwrap_or_else(|| panic!("not a copied line: {line:?}"));
    let parts: Vec<&str> = rest.split(", ").collect();
    assert_eq!(parts.len(), 4, "copied line has not 4 parts: {line:?}");
    let (done, total) = parts[0]
        .strip_suffix(" files")
        .and_then(|f| f.split_once('/'))
        .unwrap_or_else(|| panic!("bad file counts in {line:?}"));
    assert_eq!(total, thousands(files), "files total in {line:?}");
    let done: u64 = done.replace(',', "").parse().unwrap_or_else(|_| panic!("bad files done in {line:?}"));
    assert!(done <= files, "{line:?}");
    assert!(parts[1].contains('/') && parts[1].ends_with('B'), "bad bytes part in {line:?}");
    assert!(parts[2].ends_with("B/s"), "bad rate part in {line:?}");
    let eta = parts[3].strip_prefix("ETA ").unwrap_or_else(|| panic!("no ETA in {line:?}"));
    assert!(
        eta.split(':').count() >= 2
            && eta.split(':').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "bad ETA in {line:?}"
    );
}

/// A SOURCE with one unreadable file (`secret`) next to readable ones, for a
/// per-entry error. As root the binary must run as nobody
/// (`tandem_unprivileged`). Returns false (after printing why) when no
/// unreadable file can be made here.
fn make_unreadable(sb: &Sandbox, test: &str) -> bool {
    let src = sb.src_tree();
    src.file("a.txt", "a\n").file("d/b.txt", "b\n").file("secret", "cannot read me\n");
    chown_tree_for_unprivileged(sb.path());
    src.chmod("secret", 0o000);
    let mut c = std::process::Command::new("cat");
    if is_root() {
        use std::os::unix::process::CommandExt;
        c.uid(NOBODY).gid(NOBODY);
    }
    let probe = run_with(assert_cmd::Command::from_std(c), [src.p("secret")], RUN_TIMEOUT);
    if probe.code == Some(0) {
        skip(test, "cannot create an unreadable file here");
        return false;
    }
    true
}

/// Runs `cmd` (a shell command line) under a pseudo-terminal; returns what
/// the terminal showed (stdout and stderr of the command, merged).
fn run_in_pty(cmd: &str, no_color: bool, as_nobody: bool) -> Run {
    let mut c = std::process::Command::new("script");
    c.env("TERM", "xterm-256color");
    if no_color {
        c.env("NO_COLOR", "1");
    } else {
        c.env_remove("NO_COLOR");
    }
    if as_nobody && is_root() {
        use std::os::unix::process::CommandExt;
        c.uid(NOBODY).gid(NOBODY).current_dir("/");
    }
    run_with(assert_cmd::Command::from_std(c), ["-qfec", cmd, "/dev/null"], Duration::from_secs(60))
}

fn tandem_cmdline(args: &[&OsStr]) -> String {
    let mut s = sh_quote(bin_path().as_os_str());
    for a in args {
        s.push(' ');
        s.push_str(&sh_quote(a));
    }
    s
}

/// A tree with files, nested and empty directories, symlinks and a FIFO
/// (which gives a warning).
fn build_small(t: &Tree) {
    t.file("a.txt", "alpha\n")
        .file("zero", "")
        .file("d/b.txt", "bravo bravo\n")
        .file("d/e/c.bin", pseudo_random(300_000, 3))
        .dir("empty")
        .symlink("ln", "a.txt")
        .symlink("d/dangling", "nowhere")
        .fifo("pipe");
    t.stamp_all();
}

// ---------------------------------------------------------------------------
// 1. No escape codes when not on a terminal
// ---------------------------------------------------------------------------

/// Every output mode, with stdout and stderr being pipes: no escape codes at
/// all. `--progress bar` is forced on a non-terminal too: the bar is drawn
/// through indicatif's stderr target, which hides itself when stderr is not
/// a terminal, so nothing but the summary is expected on stderr. The SOURCE
/// holds a FIFO, so every run also prints a warning (coloured on a terminal).
#[test]
fn no_escape_codes_when_not_a_terminal() {
    let cases: &[&[&str]] = &[
        &[],
        &["-v"],
        &["-vv"],
        &["--progress", "auto"],
        &["--progress", "bar"],
        &["--progress", "lines"],
        &["--progress", "none"],
        &["--json"],
        &["--json", "--progress", "lines"],
        &["--json", "--progress", "bar"],
        &["-n", "-v", "--progress", "bar"],
    ];
    for args in cases {
        let sb = Sandbox::new();
        build_small(&sb.src_tree());
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.extend(os(&[&sb.src(), &sb.dst()]));
        // Even with a colour-friendly environment.
        let mut cmd = tandem();
        cmd.env("TERM", "xterm-256color").env_remove("NO_COLOR");
        let r = run_with(cmd, all, RUN_TIMEOUT);
        r.ok();
        assert_no_escapes(&format!("{args:?}"), &r);
        if args.contains(&"--json") {
            assert!(r.stderr.is_empty(), "{args:?}: --json wrote to stderr:\n{r:?}");
            summary(&r.json_events());
        } else {
            assert!(r.stderr.contains("pipe"), "{args:?}: no warning for the FIFO:\n{r:?}");
            let lines = stderr_lines(&r);
            assert!(lines.last().is_some_and(|l| is_summary_line(l)), "{args:?}: no summary last:\n{r:?}");
        }
        if *args == ["--progress", "bar"] || args.is_empty() {
            // The (hidden) bar leaves nothing behind: the warning and the summary only.
            assert_eq!(stderr_lines(&r).len(), 2, "{args:?}: unexpected stderr lines:\n{r:?}");
        }
    }
}

/// A per-entry error (unreadable SOURCE file, as nobody) in every mode: no
/// escape codes either.
#[test]
fn no_escape_codes_in_errors_when_not_a_terminal() {
    let test = "no_escape_codes_in_errors_when_not_a_terminal";
    let sb = Sandbox::new();
    if !make_unreadable(&sb, test) {
        return;
    }
    let cases: &[&[&str]] = &[
        &[],
        &["-v"],
        &["-vv"],
        &["-q"],
        &["--progress", "bar"],
        &["--progress", "lines"],
        &["--json"],
        &["--json", "--progress", "lines"],
    ];
    for args in cases {
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.extend(os(&[&sb.src(), &sb.dst()]));
        let mut cmd = tandem_unprivileged();
        cmd.env("TERM", "xterm-256color").env_remove("NO_COLOR");
        let r = run_with(cmd, all, RUN_TIMEOUT);
        r.expect_code(3);
        assert_no_escapes(&format!("{args:?}"), &r);
        if args.contains(&"--json") {
            let evs = r.json_events();
            assert_eq!(paths_of(&evs, "error"), vec!["secret".to_string()], "{r:?}");
        } else {
            assert!(
                r.stderr.lines().any(|l| l.starts_with("tandem: error: ") && l.contains("secret")),
                "{args:?}: no error line naming the file:\n{r:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 2. JSON events and the summary
// ---------------------------------------------------------------------------

/// Checks that every counter of the summary equals the number of matching
/// events, `bytes` the sum of the copy events' bytes, and the fixed fields.
/// Returns the summary.
#[track_caller]
fn check_summary_matches_events(evs: &[Value], dry_run: bool, exit_code: i64) -> Value {
    let s = summary(evs).clone();
    for (field, event) in [
        ("copied", "copy"),
        ("mkdir", "mkdir"),
        ("symlink", "symlink"),
        ("meta", "meta"),
        ("deleted", "delete"),
        ("renamed", "rename"),
        ("errors", "error"),
        ("warnings", "warning"),
    ] {
        assert_eq!(
            count(&s, field),
            events_named(evs, event).len() as u64,
            "summary `{field}` vs number of `{event}` events: {s}"
        );
    }
    let bytes: u64 = events_named(evs, "copy")
        .iter()
        .map(|e| e["bytes"].as_u64().unwrap_or_else(|| panic!("copy event without bytes: {e}")))
        .sum();
    assert_eq!(count(&s, "bytes"), bytes, "summary bytes vs the copy events: {s}");
    for field in ["scanned", "unchanged", "elapsed_ms", "bytes_per_sec"] {
        count(&s, field);
    }
    assert_eq!(s["dry_run"], Value::Bool(dry_run), "{s}");
    assert_eq!(s["exit_code"].as_i64(), Some(exit_code), "{s}");
    for e in evs {
        let name = event_name(e);
        assert!(
            CHANGE_EVENTS.contains(&name)
                || ["rename", "summary", "warning", "error", "progress"].contains(&name),
            "unexpected event: {e}"
        );
    }
    s
}

/// Entries below `root`, root excluded.
fn entries(root: &Path) -> u64 {
    walk(root).len() as u64 - 1
}

#[track_caller]
fn check_scanned(s: &Value, src: &Path) {
    let n = entries(src);
    let scanned = count(s, "scanned");
    assert!(scanned == n || scanned == n + 1, "scanned {scanned}, but SOURCE has {n} entries (+ root): {s}");
}

#[test]
fn json_summary_counts_match_events() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    build_small(&src);

    // First run: everything is new.
    let r = run(os(&[&"--json", &sb.src(), &sb.dst()]));
    r.ok();
    let evs = r.json_events();
    let s = check_summary_matches_events(&evs, false, 0);
    check_scanned(&s, &sb.src());
    assert_eq!(count(&s, "copied"), rel_paths_of_kind(&sb.src(), Kind::File).len() as u64, "{s}");
    assert_eq!(count(&s, "bytes"), 6 + 12 + 300_000, "{s}");
    assert_eq!(count(&s, "symlink"), 2, "{s}");
    assert!(count(&s, "mkdir") >= 3, "{s}");
    assert_eq!(count(&s, "warnings"), 1, "{s}");
    assert_trees_equal_ignoring(&sb.src(), &sb.dst(), &[Path::new("pipe")]);

    // Second run: nothing to do.
    let r = run(os(&[&"--json", &sb.src(), &sb.dst()]));
    r.ok();
    let evs = r.json_events();
    let s = check_summary_matches_events(&evs, false, 0);
    check_scanned(&s, &sb.src());
    assert!(change_events(&evs).is_empty(), "in-sync run reported changes:\n{r:?}");
    for f in ["copied", "bytes", "mkdir", "symlink", "meta", "deleted", "renamed", "errors"] {
        assert_eq!(count(&s, f), 0, "in-sync run: `{f}` is not 0: {s}");
    }
    // Every scanned entry is unchanged, except the special file, which is skipped
    // (README: scanned = unchanged + changed + skipped + failed).
    assert_eq!(count(&s, "unchanged") + count(&s, "warnings"), count(&s, "scanned"), "in-sync run: {s}");

    // Deletions, a content change and a mode change.
    Tree::create(sb.dst()).file("x1", "1").file("xd/inner", "3").dir("xd/sub").symlink("xl", "x1");
    src.rewrite("a.txt", "ALPHA, changed\n").chmod("d/b.txt", 0o600);
    let r = run(os(&[&"--json", &sb.src(), &sb.dst()]));
    r.ok();
    let evs = r.json_events();
    let s = check_summary_matches_events(&evs, false, 0);
    check_scanned(&s, &sb.src());
    let deleted = paths_of(&evs, "delete");
    for p in ["x1", "xd", "xl"] {
        assert!(deleted.contains(&p.to_string()), "no delete event for {p}: {deleted:?}\n{r:?}");
    }
    assert!(count(&s, "deleted") >= 3, "{s}");
    assert_eq!(paths_of(&evs, "copy"), vec!["a.txt".to_string()], "{r:?}");
    assert_eq!(count(&s, "bytes"), 15, "{s}");
    assert!(paths_of(&evs, "meta").contains(&"d/b.txt".to_string()), "{r:?}");
    assert_trees_equal_ignoring(&sb.src(), &sb.dst(), &[Path::new("pipe")]);

    // A dry run: the plan as events, the summary says so.
    src.file("new.txt", "new\n");
    Tree::create(sb.dst()).file("gone", "x");
    let r = run(os(&[&"--json", &"-n", &sb.src(), &sb.dst()]));
    r.ok();
    let evs = r.json_events();
    let s = check_summary_matches_events(&evs, true, 0);
    assert_eq!(paths_of(&evs, "copy"), vec!["new.txt".to_string()], "{r:?}");
    assert_eq!(paths_of(&evs, "delete"), vec!["gone".to_string()], "{r:?}");
    assert_eq!(count(&s, "bytes"), 4, "{s}");
}

/// `unchanged` counts the scanned entries that needed nothing. When every
/// SOURCE entry is in sync and only DEST has extra entries (so that only the
/// deletions and the DEST root's mtime fix remain), all scanned entries are
/// unchanged: `unchanged == scanned` (whether or not the root is counted as
/// scanned, it must be counted consistently on both sides).
#[test]
fn summary_unchanged_counts_entries_that_needed_nothing() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.txt", "a\n").file("d/b.txt", "b\n").symlink("ln", "a.txt");
    src.stamp_all();
    run([sb.src(), sb.dst()]).ok();

    Tree::create(sb.dst()).file("extra", "x");
    let r = run(os(&[&"--json", &sb.src(), &sb.dst()]));
    r.ok();
    let evs = r.json_events();
    let s = check_summary_matches_events(&evs, false, 0);
    assert_eq!(paths_of(&evs, "delete"), vec!["extra".to_string()], "{r:?}");
    let changed_sources: Vec<String> = change_events(&evs)
        .into_iter()
        .filter(|e| event_name(e) != "delete")
        .map(event_path)
        .filter(|p| !p.is_empty() && p != ".")
        .collect();
    assert!(changed_sources.is_empty(), "in-sync SOURCE entries changed: {changed_sources:?}\n{r:?}");
    let scanned = count(&s, "scanned");
    let root_counted = scanned == entries(&sb.src()) + 1;
    let root_changed = change_events(&evs).iter().any(|e| event_path(e).is_empty() || event_path(e) == ".");
    let expect = scanned - u64::from(root_counted && root_changed);
    assert_eq!(
        count(&s, "unchanged"),
        expect,
        "all {} SOURCE entries were unchanged (root counted as scanned: {root_counted}, root changed: \
         {root_changed}), but the summary says otherwise: {s}",
        entries(&sb.src())
    );

    // The human summary line says the same.
    Tree::create(sb.dst()).file("extra", "x");
    let r = run([sb.src(), sb.dst()]);
    r.ok();
    let line = stderr_lines(&r).last().copied().unwrap_or("").to_string();
    let n = thousands(scanned);
    let want = format!("tandem: {n} entries scanned, {} unchanged, 0 files copied", thousands(expect));
    assert!(line.starts_with(&want), "summary line {line:?} does not start with {want:?}");
}

// ---------------------------------------------------------------------------
// 3. --progress lines during a long copy
// ---------------------------------------------------------------------------

#[test]
fn progress_lines_during_a_long_copy() {
    let test = "progress_lines_during_a_long_copy";
    let slow = SlowCopy::new(test);
    let (r, elapsed) = slow.run(&["--progress", "lines"]);
    r.ok();
    assert_no_escapes("--progress lines", &r);
    assert!(r.stdout.is_empty(), "--progress lines wrote to stdout:\n{r:?}");
    let lines = stderr_lines(&r);
    let (last, progress) = lines.split_last().expect("no stderr at all");
    assert!(is_summary_line(last), "the summary is not the last stderr line:\n{r:?}");
    for l in progress {
        if l.starts_with("tandem: copied ") {
            check_copied_line(l, slow.files);
        } else {
            assert!(
                l.starts_with("tandem: scanning: ") && l.ends_with(" entries"),
                "unexpected stderr line {l:?}:\n{r:?}"
            );
        }
    }
    // At most one line a second (the ticker sleeps >= 1 s between lines).
    let max = elapsed.as_secs() + 1;
    assert!(
        progress.len() as u64 <= max,
        "{} progress lines in {elapsed:?} (more than one a second):\n{r:?}",
        progress.len()
    );
    if !slow.long_enough(test, elapsed) {
        return;
    }
    let copied = progress.iter().filter(|l| l.starts_with("tandem: copied ")).count();
    assert!(copied >= 1, "no `tandem: copied` line during a copy of {elapsed:?}:\n{r:?}");
    assert_trees_equal(&slow.sb.src(), &slow.sb.dst());
}

#[test]
fn json_progress_events_during_a_long_copy() {
    let test = "json_progress_events_during_a_long_copy";
    let slow = SlowCopy::new(test);
    let (r, elapsed) = slow.run(&["--json", "--progress", "lines"]);
    r.ok();
    assert_no_escapes("--json --progress lines", &r);
    assert!(r.stderr.is_empty(), "--json --progress lines wrote to stderr:\n{r:?}");
    let evs = r.json_events();
    check_summary_matches_events(&evs, false, 0);
    let progress = events_named(&evs, "progress");
    let u = |e: &Value, f: &str| e[f].as_u64().unwrap_or_else(|| panic!("progress event without `{f}`: {e}"));
    for e in &progress {
        match e["phase"].as_str() {
            Some("copy") => {
                for f in ["files_done", "bytes_done", "bytes_per_sec", "eta_secs"] {
                    u(e, f);
                }
                assert_eq!(u(e, "files_total"), slow.files, "{e}");
                assert_eq!(u(e, "bytes_total"), slow.bytes, "{e}");
                assert!(u(e, "files_done") <= slow.files && u(e, "bytes_done") <= slow.bytes, "{e}");
            }
            Some("scan") => {
                u(e, "scanned");
            }
            _ => panic!("progress event with unknown phase: {e}"),
        }
    }
    let max = elapsed.as_secs() + 1;
    assert!(progress.len() as u64 <= max, "{} progress events in {elapsed:?}:\n{r:?}", progress.len());
    if !slow.long_enough(test, elapsed) {
        return;
    }
    let copy = progress.iter().filter(|e| e["phase"] == "copy").count();
    assert!(copy >= 1, "no copy-phase progress event during a copy of {elapsed:?}:\n{r:?}");
    // Progress goes up: the last copy event has done more than the first.
    let copy_evs: Vec<_> = progress.iter().filter(|e| e["phase"] == "copy").collect();
    for w in copy_evs.windows(2) {
        assert!(
            u(w[0], "bytes_done") <= u(w[1], "bytes_done"),
            "progress went backwards: {} then {}",
            w[0],
            w[1]
        );
    }
}

// ---------------------------------------------------------------------------
// 4. Under a pseudo-terminal
// ---------------------------------------------------------------------------

/// `s` without CSI escape sequences (`ESC [ params final`).
fn strip_csi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == ESC && it.peek() == Some(&'[') {
            it.next();
            for d in it.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last visible line: after the last newline and after the last
/// "erase line" sequence on it (what the bar leaves before the summary).
fn last_visible_line(out: &str) -> String {
    let out = out.trim_end_matches(['\r', '\n']);
    let line = out.rsplit('\n').next().unwrap_or("");
    let line = line.rsplit("\x1b[2K").next().unwrap_or("");
    strip_csi(line).trim_start_matches('\r').trim_end().to_string()
}

#[test]
fn bar_renders_under_a_terminal() {
    let test = "bar_renders_under_a_terminal";
    if !script_works() {
        skip(test, "util-linux `script` is not available to make a pseudo-terminal");
        return;
    }
    let slow = SlowCopy::new(test);
    // Default `--progress auto`: a bar, because stderr is a terminal.
    let mut cmd: Vec<String> = slow.prefix.iter().map(|a| sh_quote(a)).collect();
    for a in os(&[&"--threads", &"2", &slow.sb.src(), &slow.sb.dst()]) {
        cmd.push(sh_quote(&a));
    }
    let t = Instant::now();
    let r = run_in_pty(&cmd.join(" "), false, false);
    let elapsed = t.elapsed();
    r.ok();
    let out = &r.stdout;
    assert!(is_summary_line(&last_visible_line(out)), "the terminal does not end with the summary:\n{r:?}");
    assert!(last_visible_line(out).contains(", 0 errors in "), "{r:?}");
    assert_eq!(out.matches("entries scanned").count(), 1, "summary printed more than once:\n{r:?}");
    assert_trees_equal(&slow.sb.src(), &slow.sb.dst());
    if !slow.long_enough(test, elapsed) {
        return;
    }
    assert!(out.contains("\x1b["), "no escape codes from the bar on a terminal:\n{r:?}");
    assert!(out.contains('█') || out.contains('░'), "no bar characters on a terminal:\n{r:?}");
    assert!(out.contains("copied ") && out.contains(" files, "), "the bar shows no copy counts:\n{r:?}");
    assert!(!out.contains("tandem: copied "), "plain progress lines on a terminal with auto:\n{r:?}");
}

/// Colour on a terminal, none with NO_COLOR. Warnings (a FIFO in SOURCE) are
/// the coloured messages; an error (unreadable file, as nobody) must carry no
/// colour with NO_COLOR either.
#[test]
fn no_color_removes_colour_under_a_terminal() {
    let test = "no_color_removes_colour_under_a_terminal";
    if !script_works() {
        skip(test, "util-linux `script` is not available to make a pseudo-terminal");
        return;
    }
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n").fifo("pipe");
    let cmd = tandem_cmdline(&[
        OsStr::new("--progress"),
        OsStr::new("none"),
        sb.src().as_os_str(),
        sb.dst().as_os_str(),
    ]);

    let r = run_in_pty(&cmd, false, false);
    r.ok();
    let warning =
        r.stdout.lines().find(|l| l.contains("pipe")).unwrap_or_else(|| panic!("no warning:\n{r:?}"));
    assert!(warning.contains(ESC), "warning not coloured on a terminal: {warning:?}\n{r:?}");

    let r = run_in_pty(&cmd, true, false);
    r.ok();
    assert!(r.stdout.contains("warning:") && r.stdout.contains("pipe"), "no warning:\n{r:?}");
    assert!(!r.stdout.contains(ESC), "escape codes with NO_COLOR=1 (--progress none):\n{r:?}");

    // An error line as nobody.
    let sb = Sandbox::new();
    if !make_unreadable(&sb, test) {
        return;
    }
    let cmd = tandem_cmdline(&[
        OsStr::new("--progress"),
        OsStr::new("none"),
        sb.src().as_os_str(),
        sb.dst().as_os_str(),
    ]);
    let r = run_in_pty(&cmd, true, true);
    r.expect_code(3);
    let error = r
        .stdout
        .lines()
        .find(|l| l.contains("error") && l.contains("secret"))
        .unwrap_or_else(|| panic!("no error line:\n{r:?}"));
    assert!(!error.contains(ESC), "error line coloured despite NO_COLOR=1: {error:?}");
    assert!(!r.stdout.contains(ESC), "escape codes with NO_COLOR=1:\n{r:?}");
}

// ---------------------------------------------------------------------------
// 5. Completions and the man page
// ---------------------------------------------------------------------------

#[test]
fn completions_for_each_shell() {
    for (shell, flag) in [
        ("bash", "--watch"),
        ("zsh", "--watch"),
        ("fish", "-l watch"),
        ("elvish", "--watch"),
        ("powershell", "--watch"),
    ] {
        let r = run(["--completions", shell]);
        r.ok();
        assert!(!r.stdout.trim().is_empty(), "{shell}: empty completion script");
        assert!(r.stdout.contains("tandem"), "{shell}: script does not mention tandem");
        assert!(r.stdout.contains(flag), "{shell}: script does not complete {flag}");
        assert!(r.stdout.contains("dry-run"), "{shell}: script does not complete --dry-run");
        assert!(r.stderr.is_empty(), "{shell}: stderr:\n{r:?}");
    }
    let r = run(["--completions", "tcsh"]);
    r.expect_code(2);
}

#[test]
fn man_page_is_roff() {
    let r = run(["--man"]);
    r.ok();
    assert!(r.stderr.is_empty(), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let th =
        lines.iter().position(|l| l.starts_with(".TH ")).unwrap_or_else(|| panic!("no .TH header:\n{r:?}"));
    assert!(th < 5, ".TH is not at the top:\n{r:?}");
    assert!(lines[..th].iter().all(|l| l.starts_with('.')), "text before the .TH header:\n{r:?}");
    assert!(lines[th].contains("tandem"), "header does not name tandem: {}", lines[th]);
    assert!(r.stdout.contains(".SH NAME") && r.stdout.contains(".SH OPTIONS"), "{r:?}");
    assert!(
        r.stdout.contains(r"\-\-dry\-run") || r.stdout.contains("--dry-run"),
        "man page does not document --dry-run"
    );
}

#[test]
fn completions_and_man_are_exclusive() {
    let sb = Sandbox::new();
    sb.src_tree().file("a", "a");
    for args in [
        os(&[&"--completions", &"bash", &sb.src(), &sb.dst()]),
        os(&[&"--completions", &"bash", &"-v"]),
        os(&[&"--man", &sb.src(), &sb.dst()]),
        os(&[&"--man", &"--completions", &"zsh"]),
    ] {
        let r = run(&args);
        r.expect_code(2);
        assert!(r.stdout.is_empty(), "usage error printed a script on stdout:\n{r:?}");
        assert!(!r.stderr.is_empty(), "usage error without a message:\n{r:?}");
    }
    assert!(!exists_nofollow(&sb.dst()), "a --completions/--man usage error created DEST");
}

// ---------------------------------------------------------------------------
// 6. -q and -vv
// ---------------------------------------------------------------------------

#[test]
fn quiet_prints_only_errors() {
    let sb = Sandbox::new();
    build_small(&sb.src_tree());
    // Success (including the FIFO warning, which -q drops), with progress asked for.
    for args in [&["-q"][..], &["-q", "--progress", "lines"], &["--quiet", "--progress", "bar"]] {
        remove_any(&sb.dst());
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.extend(os(&[&sb.src(), &sb.dst()]));
        let r = run(all);
        r.ok();
        assert!(r.stdout.is_empty(), "{args:?}: stdout not empty:\n{r:?}");
        assert!(r.stderr.is_empty(), "{args:?}: stderr not empty:\n{r:?}");
        assert_trees_equal_ignoring(&sb.src(), &sb.dst(), &[Path::new("pipe")]);
    }

    // A failing entry: exactly its error line, nothing else.
    let sb = Sandbox::new();
    if !make_unreadable(&sb, "quiet_prints_only_errors") {
        return;
    }
    let r = run_with(tandem_unprivileged(), os(&[&"-q", &sb.src(), &sb.dst()]), RUN_TIMEOUT);
    r.expect_code(3);
    assert!(r.stdout.is_empty(), "-q: stdout not empty:\n{r:?}");
    let lines = stderr_lines(&r);
    assert_eq!(lines.len(), 1, "-q: expected only the error line:\n{r:?}");
    assert!(lines[0].starts_with("tandem: error: ") && lines[0].contains("secret"), "{r:?}");
    assert_eq!(read(&sb.dst().join("a.txt")), b"a\n");
}

#[test]
fn very_verbose_prints_debug_lines() {
    let sb = Sandbox::new();
    build_small(&sb.src_tree());
    let r = run(os(&[&"-vv", &sb.src(), &sb.dst()]));
    r.ok();
    let debug: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("tandem: debug: ")).collect();
    assert!(!debug.is_empty(), "-vv printed no debug lines:\n{r:?}");
    // In words, never a Rust structure (`Totals { copies: 4, … }`).
    for line in &debug {
        assert!(
            !line.contains(" { ") && !line.contains(": [") && !line.contains("Totals"),
            "debug line {line:?}"
        );
    }
    assert!(
        debug.iter().any(|l| l.contains("planned in") && l.contains("4 copies")),
        "no plan line in words:\n{r:?}"
    );
    assert!(!r.stdout.contains("debug:"), "debug lines on stdout:\n{r:?}");
    // -vv still itemizes (as -v) on stdout.
    let copies: Vec<&str> = r.stdout_lines().into_iter().filter(|l| l.starts_with("copy ")).collect();
    assert_eq!(copies.len(), 4, "-vv: expected 4 itemized copies:\n{r:?}");
    assert!(stderr_lines(&r).last().is_some_and(|l| is_summary_line(l)), "{r:?}");

    // -v alone: no debug lines.
    let r = run(os(&[&"-v", &sb.src(), &sb.dst()]));
    r.ok();
    assert!(!r.stderr.contains("debug:"), "-v printed debug lines:\n{r:?}");
    // Default: one summary line plus the warning, no debug.
    let r = run(os(&[&sb.src(), &sb.dst()]));
    r.ok();
    assert!(!r.stderr.contains("debug:"), "default printed debug lines:\n{r:?}");
}

// ---------------------------------------------------------------------------
// Itemized lines in path order
// ---------------------------------------------------------------------------

/// One-shot runs itemize in path order, as rsync does and as the dry run lists the
/// plan, whatever order the parallel workers finish in: big files early in the tree,
/// many small ones after, nested directories, deletions, attribute fixes, symlinks.
#[test]
fn itemized_lines_come_in_path_order() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    for d in 0..12 {
        // The first file of each directory is the slowest to copy.
        src.file(format!("d{d:02}/a.bin"), pseudo_random(400_000 - d * 30_000, d as u64));
        for f in 0..15 {
            src.file(format!("d{d:02}/f{f:02}.txt"), format!("{d} {f}\n"));
        }
        src.file(format!("d{d:02}/sub/x.txt"), "x\n").symlink(format!("d{d:02}/ln"), "a.bin");
    }
    src.file("keep.txt", "k\n").file("mode.txt", "m\n");
    src.stamp_all();
    run([sb.src(), sb.dst()]).ok();
    // Changes of every kind for the second run.
    src.chmod("mode.txt", 0o600).file("new/inner/deep.txt", "deep\n").chmod("d03", 0o700);
    Tree::create(sb.dst()).file("gone.txt", "x\n").file("gone_dir/a/b.txt", "y\n").file("d05/extra", "e\n");
    for d in 0..12 {
        src.file(format!("d{d:02}/a.bin"), pseudo_random(500_000, 100 + d as u64));
        src.file(format!("d{d:02}/f07.txt"), "changed\n");
    }
    let want = run(["-n".as_ref(), "-v".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    want.ok();
    let want = want.stdout_lines().iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(want.len() > 40, "{want:?}");
    let r = run(["-v".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    assert_eq!(r.stdout_lines(), want, "-v lines are not in the dry run's (path) order");
    assert_trees_equal(&sb.src(), &sb.dst());

    // A first mirror of the whole tree, in JSON too.
    let dst2 = sb.join("second");
    let want = run(["-n".as_ref(), "--json".as_ref(), sb.src().as_os_str(), dst2.as_os_str()]);
    let paths = |r: &Run| -> Vec<(String, String)> {
        r.json_events()
            .iter()
            .filter(|e| CHANGE_EVENTS.contains(&event_name(e)))
            .map(|e| (event_name(e).to_string(), event_path(e)))
            .collect()
    };
    let want = paths(&want);
    let r = run(["--json".as_ref(), sb.src().as_os_str(), dst2.as_os_str()]);
    r.ok();
    assert_eq!(paths(&r), want, "JSON events are not in path order");
}
