//! `tandem --config FILE` as a service: several mirrors in one process, one of them
//! losing its DEST while the others go on; SIGHUP adding, removing and changing
//! mirrors while changes keep flowing; a broken file on reload; `tandem status`
//! while syncing and while paused; systemd readiness heard on the test's own unix
//! datagram socket (NOTIFY_SOCKET); and the file's validation errors (file, line,
//! key). Real trees, the built binary; every wait has a timeout.

mod util;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(20);

/// A mirror of the test's config: its name, SOURCE and DEST.
struct Mirror {
    name: &'static str,
    src: PathBuf,
    dst: PathBuf,
}

fn mirrors(sb: &Sandbox, names: &[&'static str]) -> Vec<Mirror> {
    names
        .iter()
        .map(|n| {
            let src = sb.join(format!("{n}-src"));
            fs::create_dir_all(&src).expect("mkdir src");
            fs::write(src.join("first.txt"), format!("{n} first\n")).expect("write");
            Mirror { name: n, src, dst: sb.join(format!("{n}-dst")) }
        })
        .collect()
}

/// A config with `top` lines, then one `[[sync]]` per mirror with its `extra` lines.
fn config_text(top: &str, ms: &[&Mirror], extra: &dyn Fn(&str) -> String) -> String {
    let mut t = format!("{top}\n");
    for m in ms {
        t.push_str(&format!(
            "\n[[sync]]\nname = \"{}\"\nsource = \"{}\"\ndest = \"{}\"\n{}\n",
            m.name,
            m.src.display(),
            m.dst.display(),
            extra(m.name)
        ));
    }
    t
}

fn status_json(file: &Path) -> Option<Value> {
    let out = Command::new(bin_path())
        .args(["status", "--json", "--status-file"])
        .arg(file)
        .output()
        .expect("run tandem status");
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn pair<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["pairs"].as_array()?.iter().find(|p| p["name"] == name)
}

fn spawn_service(cfg: &Path, status: &Path) -> Proc {
    Proc::spawn(&[OsStr("--config"), cfg.as_os_str(), OsStr("--status-file"), status.as_os_str()])
}

/// The top of a config whose mirrors watch, with a short debounce.
const WATCHING: &str = "watch = true\ndebounce = \"50ms\"";

/// A service watching mirrors `names` (config at `tandem.toml`, status at
/// `status.json` in the sandbox), once each mirror's first sync is in DEST.
fn watching_service(sb: &Sandbox, names: &[&'static str]) -> (Vec<Mirror>, PathBuf, PathBuf, Proc) {
    let ms = mirrors(sb, names);
    let (cfg, status, w) = watch_mirrors(sb, &ms, &|_| String::new());
    (ms, cfg, status, w)
}

/// A watching service of the mirrors `ms` (each `[[sync]]` with its `extra` lines),
/// started, every first sync waited for.
fn watch_mirrors(sb: &Sandbox, ms: &[Mirror], extra: &dyn Fn(&str) -> String) -> (PathBuf, PathBuf, Proc) {
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    let all: Vec<&Mirror> = ms.iter().collect();
    fs::write(&cfg, config_text(WATCHING, &all, extra)).expect("cfg");
    let w = spawn_service(&cfg, &status);
    for m in ms {
        wait_synced(&w, &m.src, &m.dst, m.name);
    }
    (cfg, status, w)
}

#[allow(non_snake_case)]
fn OsStr(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn three_mirrors_one_dest_vanishes_and_comes_back() {
    let sb = Sandbox::new();
    let (ms, _cfg, status, w) = watching_service(&sb, &["alpha", "beta", "gamma"]);
    // beta's DEST vanishes (an unmounted disk, say): beta pauses, the others go on.
    fs::remove_dir_all(&ms[1].dst).expect("remove beta's DEST");
    fs::write(ms[1].src.join("while-gone.txt"), "x").expect("write");
    w.wait_stderr("beta paused", WAIT, |l| l.starts_with("tandem: [beta] ") && l.contains("paused"));
    for (i, m) in [&ms[0], &ms[2]].iter().enumerate() {
        for n in 0..5 {
            fs::write(m.src.join(format!("more-{n}.txt")), format!("{i} {n}")).expect("write");
        }
        wait_synced(&w, &m.src, &m.dst, m.name);
    }
    assert!(!ms[1].dst.exists(), "a vanished DEST is never recreated\n{}", w.dump());
    w.wait_for("the status file to say beta is paused", WAIT, |_| {
        status_json(&status).is_some_and(|v| {
            pair(&v, "beta").is_some_and(|p| {
                p["state"] == "paused" && p["paused"].as_str().is_some_and(|s| s.contains("DEST"))
            }) && pair(&v, "alpha").is_some_and(|p| p["state"] == "idle")
        })
    });
    let human =
        Command::new(bin_path()).arg("status").arg("--status-file").arg(&status).output().expect("status");
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(human.status.success() && text.contains("beta:") && text.contains("paused ("), "{text}");
    // It comes back: beta resumes and catches up.
    fs::create_dir(&ms[1].dst).expect("recreate beta's DEST");
    wait_synced(&w, &ms[1].src, &ms[1].dst, "beta back");
    assert!(w.any_stderr(|l| l.starts_with("tandem: [beta] ") && l.contains("are back")), "{}", w.dump());
    let st = w.stop(libc::SIGTERM, STOP_TIMEOUT);
    assert_eq!(st.code(), Some(0), "{}", w.dump());
    let v = status_json(&status).expect("the last status");
    assert_eq!(v["stopping"], true);
}

#[test]
fn sighup_adds_removes_and_changes_mirrors_while_changes_flow() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["keep", "drop", "edit", "new"]);
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    let top = "watch = true\ndebounce = \"50ms\"";
    fs::write(&cfg, config_text(top, &[&ms[0], &ms[1], &ms[2]], &|_| String::new())).expect("cfg");
    let w = spawn_service(&cfg, &status);
    for m in &ms[..3] {
        wait_synced(&w, &m.src, &m.dst, m.name);
    }
    // Changes keep flowing into `keep` while the file is rewritten and reloaded.
    let keep_src = ms[0].src.clone();
    let writer = std::thread::spawn(move || {
        for n in 0..40 {
            let _ = fs::write(keep_src.join(format!("flow-{n}.txt")), format!("{n}"));
            std::thread::sleep(Duration::from_millis(25));
        }
    });
    fs::write(
        &cfg,
        config_text(top, &[&ms[0], &ms[2], &ms[3]], &|n| {
            if n == "edit" {
                "exclude = [\"*.skip\"]".into()
            } else {
                String::new()
            }
        }),
    )
    .expect("cfg");
    w.signal(libc::SIGHUP);
    w.wait_stderr("the reload", WAIT, |l| {
        l.contains("reloaded") && l.contains("1 added, 1 removed, 1 changed, 1 unchanged")
    });
    writer.join().expect("writer");
    wait_synced(&w, &ms[0].src, &ms[0].dst, "keep, through the reload");
    wait_synced(&w, &ms[3].src, &ms[3].dst, "new");
    // `edit` runs with its new exclude.
    fs::write(ms[2].src.join("x.skip"), "no").expect("write");
    sync_marker(&w, &ms[2].src, &ms[2].dst, "edit-marker");
    assert!(!ms[2].dst.join("x.skip").exists(), "the changed mirror excludes *.skip\n{}", w.dump());
    // `drop` has stopped: what changes in its SOURCE stays there.
    w.wait_for("the status file without drop", WAIT, |_| {
        status_json(&status).is_some_and(|v| pair(&v, "drop").is_none() && pair(&v, "new").is_some())
    });
    fs::write(ms[1].src.join("after.txt"), "x").expect("write");
    sync_marker(&w, &ms[0].src, &ms[0].dst, "keep-marker");
    assert!(!ms[1].dst.join("after.txt").exists(), "a removed mirror is stopped\n{}", w.dump());
    // `keep` was never restarted: one strategy line.
    let starts = w.stderr().iter().filter(|l| l.starts_with("tandem: [keep] watching with")).count();
    assert_eq!(starts, 1, "the unchanged mirror was left alone\n{}", w.dump());
    let starts = w.stderr().iter().filter(|l| l.starts_with("tandem: [edit] watching with")).count();
    assert_eq!(starts, 2, "the changed mirror restarted\n{}", w.dump());
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

#[test]
fn a_broken_file_on_reload_keeps_the_running_configuration() {
    let sb = Sandbox::new();
    let (ms, cfg, _status, w) = watching_service(&sb, &["one", "two"]);
    let mut broken = fs::read_to_string(&cfg).expect("read");
    broken.push_str("\n[[sync]]\nsource = \"/nonexistent\"\ndest = 42\n");
    fs::write(&cfg, &broken).expect("cfg");
    w.signal(libc::SIGHUP);
    w.wait_stderr("the refused reload", WAIT, |l| {
        l.starts_with("tandem: reload: ") && l.contains("tandem.toml:") && l.contains("still running")
    });
    for m in &ms {
        fs::write(m.src.join("after.txt"), "x").expect("write");
        wait_synced(&w, &m.src, &m.dst, m.name);
    }
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// Receives one datagram within `timeout`.
fn recv(sock: &UnixDatagram, timeout: Duration) -> Option<String> {
    sock.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = vec![0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

/// Waits for a datagram with `what` in it; returns it and what came before.
fn recv_until(sock: &UnixDatagram, what: &str, timeout: Duration) -> (String, Vec<String>) {
    let end = Instant::now() + timeout;
    let mut before = Vec::new();
    while Instant::now() < end {
        if let Some(m) =
            recv(sock, end.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)))
        {
            if m.lines().any(|l| l == what || l.starts_with(what)) {
                return (m, before);
            }
            before.push(m);
        }
    }
    panic!("no {what} from the service within {timeout:?}; got {before:?}");
}

#[test]
fn readiness_after_every_first_sync_and_status_while_syncing() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["small", "slow"]);
    // 256 KiB at 64 KiB/s: the slow mirror's first sync takes about 4 s.
    fs::write(ms[1].src.join("big.bin"), pseudo_random(256 << 10, 7)).expect("big");
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    let all: Vec<&Mirror> = ms.iter().collect();
    fs::write(&cfg, config_text("watch = true\nbwlimit = \"64K\"", &all, &|_| String::new())).expect("cfg");
    let sock_path = sb.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    let mut cmd = Command::new(bin_path());
    cmd.env("NOTIFY_SOCKET", &sock_path).env("WATCHDOG_USEC", "1000000").env_remove("WATCHDOG_PID");
    let w = Proc::spawn_cmd(
        cmd,
        &[OsStr("--config"), cfg.as_os_str(), OsStr("--status-file"), status.as_os_str()],
    );
    w.wait_for("the status file to show slow syncing, not ready", WAIT, |_| {
        status_json(&status)
            .is_some_and(|v| v["ready"] == false && pair(&v, "slow").is_some_and(|p| p["state"] == "syncing"))
    });
    let (ready, before) = recv_until(&sock, "READY=1", Duration::from_secs(30));
    assert!(ms[1].dst.join("big.bin").exists(), "READY=1 came before the slow mirror's first sync ended");
    assert_trees_equal(&ms[1].src, &ms[1].dst);
    assert!(before.iter().all(|m| !m.contains("READY=1")), "{before:?}");
    assert!(ready.contains("STATUS=2 mirrors: "), "{ready}");
    recv_until(&sock, "WATCHDOG=1", Duration::from_secs(5));
    w.wait_for("the status file to say ready, both idle", WAIT, |_| {
        status_json(&status).is_some_and(|v| {
            v["ready"] == true
                && pair(&v, "slow").is_some_and(|p| p["state"] == "idle" && p["last_result"] == "ok")
                && pair(&v, "small").is_some_and(|p| p["totals"]["copied"] == 1)
        })
    });
    w.signal(libc::SIGHUP);
    let (reloading, _) = recv_until(&sock, "RELOADING=1", Duration::from_secs(10));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    recv_until(&sock, "READY=1", Duration::from_secs(10));
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
    recv_until(&sock, "STOPPING=1", Duration::from_secs(5));
}

#[test]
fn every_mirror_once_without_watch() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["a", "b", "c"]);
    let cfg = sb.join("tandem.toml");
    let all: Vec<&Mirror> = ms.iter().collect();
    fs::write(&cfg, config_text("", &all, &|_| String::new())).expect("cfg");
    let r = run_timeout([OsStr("--config"), cfg.as_os_str(), OsStr("-v")], Duration::from_secs(30));
    r.ok();
    for m in &ms {
        assert_trees_equal(&m.src, &m.dst);
    }
    let out = r.stdout_lines();
    assert!(out.contains(&"[b] copy first.txt (8 bytes)"), "{out:?}");
}

/// Runs `tandem --config` on `text`; expects exit 2 and a message naming `line` and
/// `key` of the file.
#[track_caller]
fn config_error(sb: &Sandbox, text: &str, line: usize, key: &str, also: &str) {
    let cfg = sb.join("bad.toml");
    fs::write(&cfg, text).expect("cfg");
    let r = run_timeout([OsStr("--config"), cfg.as_os_str()], Duration::from_secs(30));
    r.expect_code(2);
    let err = r.stderr.clone();
    let want = if key.is_empty() {
        format!("tandem: {}:{line}: ", cfg.display())
    } else {
        format!("tandem: {}:{line}: {key}: ", cfg.display())
    };
    assert!(err.starts_with(&want) && err.contains(also), "want {want:?} … {also:?}, got {err:?}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn config_errors_name_the_file_line_and_key() {
    let sb = Sandbox::new();
    let (s1, s2) = (sb.join("s1"), sb.join("s2"));
    fs::create_dir_all(&s1).expect("mkdir");
    fs::create_dir_all(&s2).expect("mkdir");
    let (s1, s2) = (s1.display(), s2.display());
    let d = sb.join("d");
    let d = d.display();
    config_error(
        &sb,
        &format!("[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\nfrobnicate = 1\n"),
        4,
        "frobnicate",
        "unknown key",
    );
    config_error(
        &sb,
        &format!("[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\nmax_delete = 1\n"),
        4,
        "max_delete",
        "did you mean max-delete",
    );
    config_error(
        &sb,
        &format!("debounce = \"soon\"\n[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\n"),
        1,
        "debounce",
        "a duration",
    );
    config_error(
        &sb,
        &format!("[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\nmax-delete = -3\n"),
        4,
        "max-delete",
        "a whole number",
    );
    config_error(
        &sb,
        &format!("[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\nchecksum = \"yes\"\n"),
        4,
        "checksum",
        "true or false",
    );
    config_error(
        &sb,
        &format!("[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\nscan-threads = 2\n"),
        4,
        "scan-threads",
        "top of the file",
    );
    config_error(&sb, &format!("[[sync]]\nsource = \"{s1}\"\n"), 1, "dest", "missing");
    config_error(&sb, &format!("[[sync]]\nsource = \"{s1}/nope\"\ndest = \"{d}\"\n"), 2, "source", "SOURCE");
    config_error(
        &sb,
        &format!("[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\n\n[[sync]]\nsource = \"{s2}\"\ndest = \"{d}/inner\"\n"),
        7,
        "dest",
        "nested",
    );
    config_error(
        &sb,
        &format!(
            "[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\n\n[[sync]]\nsource = \"{s2}\"\ndest = \"{s1}/x\"\n"
        ),
        7,
        "dest",
        "SOURCE",
    );
    config_error(&sb, &format!("[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\nexclude = [\n"), 4, "", "");
    config_error(&sb, "watch = true\n", 1, "", "no [[sync]]");
    // Per-mirror flags belong in the file.
    let cfg = sb.join("ok.toml");
    fs::write(&cfg, format!("[[sync]]\nsource = \"{s1}\"\ndest = \"{d}\"\n")).expect("cfg");
    let r = run_timeout([OsStr("--config"), cfg.as_os_str(), OsStr("--checksum")], Duration::from_secs(30));
    r.expect_code(2);
    let err = r.stderr.clone();
    assert!(err.contains("--checksum cannot be used with --config"), "{err}");
}

/// contrib/tandem.toml, with its paths moved into a sandbox (and the remote DEST made
/// local), loads and runs.
#[test]
fn the_shipped_example_config_runs() {
    let sb = Sandbox::new();
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/tandem.toml"))
        .expect("example");
    let mut out = String::new();
    let mut n = 0;
    for line in text.lines() {
        if line.starts_with("source = ") {
            n += 1;
            let src = sb.join(format!("src{n}"));
            fs::create_dir_all(&src).expect("mkdir");
            fs::write(src.join("f.txt"), "x").expect("write");
            out.push_str(&format!("source = \"{}\"\n", src.display()));
        } else if line.starts_with("dest = ") {
            out.push_str(&format!("dest = \"{}\"\n", sb.join(format!("dst{n}")).display()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(n >= 3, "the example has mirrors");
    let cfg = sb.join("tandem.toml");
    fs::write(&cfg, out).expect("cfg");
    let status = sb.join("status.json");
    let w = spawn_service(&cfg, &status);
    for i in 1..=n {
        wait_synced(&w, &sb.join(format!("src{i}")), &sb.join(format!("dst{i}")), "example");
    }
    w.wait_for("ready", WAIT, |_| status_json(&status).is_some_and(|v| v["ready"] == true));
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// Runs `tandem ARGS` with stderr in a file that JOURNAL_STREAM names (as systemd's
/// journal stream is named); returns the exit code and stderr's lines.
fn run_journal(sb: &Sandbox, args: &[&std::ffi::OsStr]) -> (Option<i32>, Vec<String>) {
    use std::os::unix::fs::MetadataExt;
    let log = sb.join("journal.log");
    let f = fs::File::create(&log).expect("log");
    let md = f.metadata().expect("stat log");
    let st = Command::new(bin_path())
        .args(args)
        .env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(f)
        .status()
        .expect("run tandem");
    let text = fs::read_to_string(&log).expect("read log");
    (st.code(), text.lines().map(String::from).collect())
}

#[test]
fn journal_lines_carry_priorities_and_no_timestamps() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["j"]);
    Tree::create(&ms[0].src).fifo("pipe");
    let cfg = sb.join("tandem.toml");
    fs::write(&cfg, config_text("", &[&ms[0]], &|_| String::new())).expect("cfg");
    let (code, lines) = run_journal(&sb, &[OsStr("--config"), cfg.as_os_str()]);
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("<4>tandem: [j] warning: ") && l.contains("pipe")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("<6>tandem: [j] 2 entries scanned")), "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with('<') && timestamp_len(&l[3..]).is_none()), "{lines:?}");
    fs::write(&cfg, "[[sync]]\nsource = 3\n").expect("cfg");
    let (code, lines) = run_journal(&sb, &[OsStr("--config"), cfg.as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(
        lines.len() == 1 && lines[0].starts_with("<3>tandem: ") && lines[0].contains(":2: source:"),
        "{lines:?}"
    );
}

/// A mirror whose first sync fails (here refused: an empty SOURCE over a DEST with
/// files) is reported and tried again with a back-off; the service still gets ready and
/// the other mirror runs; once SOURCE has files, the mirror starts.
#[test]
fn a_mirror_whose_first_sync_fails_is_retried_without_holding_the_others() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["fine", "guarded"]);
    fs::remove_file(ms[1].src.join("first.txt")).expect("empty SOURCE");
    fs::create_dir_all(&ms[1].dst).expect("mkdir");
    fs::write(ms[1].dst.join("old.txt"), "old").expect("write");
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    let all: Vec<&Mirror> = ms.iter().collect();
    fs::write(&cfg, config_text(WATCHING, &all, &|_| String::new())).expect("cfg");
    let w = spawn_service(&cfg, &status);
    w.wait_stderr("guarded's first sync refused", WAIT, |l| {
        l.starts_with("tandem: [guarded] ") && l.contains("trying again in")
    });
    w.wait_for("ready, guarded retrying", WAIT, |_| {
        status_json(&status).is_some_and(|v| {
            v["ready"] == true
                && pair(&v, "guarded")
                    .is_some_and(|p| p["state"] == "retrying" && p["last_error"]["message"].is_string())
        })
    });
    fs::write(ms[0].src.join("more.txt"), "more").expect("write");
    wait_synced(&w, &ms[0].src, &ms[0].dst, "fine");
    assert_eq!(fs::read(ms[1].dst.join("old.txt")).expect("kept"), b"old", "nothing deleted while refused");
    fs::write(ms[1].src.join("now.txt"), "now").expect("write");
    wait_synced(&w, &ms[1].src, &ms[1].dst, "guarded, once SOURCE has files");
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// Deletions `--max-delete` holds back show in the status, in JSON and in words.
#[test]
fn status_shows_deletions_held_back() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["held"]);
    for n in 0..3 {
        fs::write(ms[0].src.join(format!("gone-{n}.txt")), "x").expect("write");
    }
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    fs::write(&cfg, config_text(WATCHING, &[&ms[0]], &|_| "max-delete = 1".into())).expect("cfg");
    let w = spawn_service(&cfg, &status);
    wait_synced(&w, &ms[0].src, &ms[0].dst, "held");
    for n in 0..3 {
        fs::remove_file(ms[0].src.join(format!("gone-{n}.txt"))).expect("remove");
    }
    w.wait_for("3 deletions held back in the status", WAIT, |_| {
        status_json(&status).is_some_and(|v| pair(&v, "held").is_some_and(|p| p["held_back"] == 3))
    });
    let out =
        Command::new(bin_path()).arg("status").arg("--status-file").arg(&status).output().expect("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deletions held back: 3 (--max-delete)"), "{text}");
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// `tandem status` without a status file says so (exit 1); `tandem status DEST` still
/// mirrors a directory named `status`.
#[test]
fn status_command_and_a_directory_named_status() {
    let sb = Sandbox::new();
    let out = Command::new(bin_path())
        .args(["status", "--status-file"])
        .arg(sb.join("none.json"))
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the status file"), "{out:?}");
    fs::create_dir(sb.join("status")).expect("mkdir");
    fs::write(sb.join("status/f.txt"), "x").expect("write");
    let out =
        Command::new(bin_path()).current_dir(sb.path()).args(["status", "copy"]).output().expect("sync");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_trees_equal(&sb.join("status"), &sb.join("copy"));
}

/// A mirror whose remote host is down (nothing listens on the port) is reported and
/// tried again with a growing back-off; the local mirror beside it keeps syncing.
#[test]
fn a_remote_host_down_does_not_stop_the_others() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["local"]);
    let remote_src = sb.join("remote-src");
    fs::create_dir_all(&remote_src).expect("mkdir");
    let port = util::sshd::free_port();
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    let mut text = config_text(WATCHING, &[&ms[0]], &|_| String::new());
    text.push_str(&format!(
        "\n[[sync]]\nname = \"down\"\nsource = \"{}\"\ndest = \"root@127.0.0.1:{}\"\nrsh = \"ssh -F /dev/null -p {port} -o ConnectTimeout=5 -o BatchMode=yes\"\n",
        remote_src.display(),
        sb.join("never").display()
    ));
    fs::write(&cfg, text).expect("cfg");
    let w = spawn_service(&cfg, &status);
    w.wait_stderr("the first failure", WAIT, |l| {
        l.starts_with("tandem: [down] ") && l.contains("trying again in 1s")
    });
    w.wait_stderr("the second try", WAIT, |l| {
        l.starts_with("tandem: [down] ") && l.contains("trying again in 2s")
    });
    wait_synced(&w, &ms[0].src, &ms[0].dst, "local");
    fs::write(ms[0].src.join("meanwhile.txt"), "x").expect("write");
    wait_synced(&w, &ms[0].src, &ms[0].dst, "local, meanwhile");
    w.wait_for("the status: down retrying, ready", WAIT, |_| {
        status_json(&status).is_some_and(|v| {
            v["ready"] == true
                && pair(&v, "down").is_some_and(|p| p["state"] == "retrying" && p["last_result"] == "failed")
        })
    });
    assert!(!sb.join("never").exists());
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// Mirrors of a service watching with native events share one watcher for all their
/// SOURCEs and one for all their DESTs (two inotify instances, two notify threads,
/// whatever their number, a polling one beside them); each event still reaches the
/// mirror it belongs to: new directories filled at once, a rename from one SOURCE into
/// another (both mirrors see their half), a stray file put into one DEST (repaired
/// there alone).
#[test]
fn native_mirrors_share_one_watcher_per_tree_and_each_gets_its_own_changes() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["one", "two", "three", "polled"]);
    for m in &ms {
        fs::create_dir_all(m.src.join("sub/deep")).expect("mkdir");
        fs::write(m.src.join("sub/deep/f.txt"), m.name).expect("write");
    }
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    let all: Vec<&Mirror> = ms.iter().collect();
    let extra = |n: &str| if n == "polled" { "poll = \"200ms\"".to_string() } else { String::new() };
    fs::write(&cfg, config_text(WATCHING, &all, &extra)).expect("cfg");
    let w = spawn_service(&cfg, &status);
    for m in &ms {
        wait_synced(&w, &m.src, &m.dst, m.name);
    }
    for m in &ms[..3] {
        let native = format!("tandem: [{}] watching with native", m.name);
        w.wait_stderr(&native, WAIT, |l| l.starts_with(&native));
    }
    w.wait_stderr("polled's strategy", WAIT, |l| l.starts_with("tandem: [polled] watching with poll"));
    // SOURCE: 3 native mirrors x 3 directories; DEST: 4 mirrors x 3 (DEST's watch
    // starts after each first sync).
    w.wait_for("one inotify instance for the SOURCEs, one for the DESTs", WAIT, |p| {
        p.inotify_watches() == vec![9, 12]
    });
    assert_eq!(w.notify_threads(), 2, "one notify thread per tree\n{}", w.dump());
    // A directory made and filled at once, in each native mirror.
    for m in &ms[..3] {
        fs::create_dir_all(m.src.join("new/inner")).expect("mkdir");
        fs::write(m.src.join("new/inner/n.txt"), m.name).expect("write");
        fs::write(m.src.join("sub/deep/f.txt"), format!("{} again", m.name)).expect("write");
    }
    for m in &ms {
        wait_synced(&w, &m.src, &m.dst, &format!("{}: new directories", m.name));
    }
    // From one SOURCE into another: gone from one, there in the other.
    fs::rename(ms[0].src.join("first.txt"), ms[1].src.join("from-one.txt")).expect("rename");
    fs::rename(ms[2].src.join("new"), ms[1].src.join("new-from-three")).expect("rename");
    fs::write(ms[1].src.join("new-from-three/inner/later.txt"), "later").expect("write");
    for m in &ms {
        wait_synced(&w, &m.src, &m.dst, &format!("{}: renames between SOURCEs", m.name));
    }
    // Someone else writes into one DEST: that mirror repairs it.
    fs::write(ms[2].dst.join("sub/stray.txt"), "stray").expect("write");
    wait_synced(&w, &ms[2].src, &ms[2].dst, "three: a stray file in DEST repaired");
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// A mirror removed by a reload gives up its watches in the shared watchers (none of
/// its directories is watched any more, so none of its events arrive), the others keep
/// theirs and their events; added back by another reload, it is watched again.
#[test]
fn a_mirror_removed_by_reload_unwatches_its_trees() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["stay", "gone"]);
    for d in ["a", "b/c"] {
        fs::create_dir_all(ms[1].src.join(d)).expect("mkdir");
    }
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    fs::write(&cfg, config_text(WATCHING, &[&ms[0], &ms[1]], &|_| String::new())).expect("cfg");
    let w = spawn_service(&cfg, &status);
    for m in &ms {
        wait_synced(&w, &m.src, &m.dst, m.name);
    }
    // stay: 1 directory per tree; gone: 4.
    w.wait_for("both mirrors' trees watched", WAIT, |p| p.inotify_watches() == vec![5, 5]);
    fs::write(&cfg, config_text(WATCHING, &[&ms[0]], &|_| String::new())).expect("cfg");
    w.signal(libc::SIGHUP);
    w.wait_stderr("the reload", WAIT, |l| l.contains("reloaded") && l.contains("1 removed"));
    w.wait_for("only stay's trees watched", WAIT, |p| p.inotify_watches() == vec![1, 1]);
    fs::write(ms[1].src.join("after.txt"), "x").expect("write");
    fs::write(ms[0].src.join("still.txt"), "y").expect("write");
    wait_synced(&w, &ms[0].src, &ms[0].dst, "stay, after the reload");
    sync_marker(&w, &ms[0].src, &ms[0].dst, "stay-marker");
    assert!(!ms[1].dst.join("after.txt").exists(), "a removed mirror gets no events\n{}", w.dump());
    // Back again: watched again, and caught up.
    fs::write(&cfg, config_text(WATCHING, &[&ms[0], &ms[1]], &|_| String::new())).expect("cfg");
    w.signal(libc::SIGHUP);
    w.wait_stderr("the second reload", WAIT, |l| l.contains("reloaded") && l.contains("1 added"));
    wait_synced(&w, &ms[1].src, &ms[1].dst, "gone, added back");
    w.wait_for("both mirrors' trees watched again", WAIT, |p| p.inotify_watches() == vec![5, 5]);
    fs::write(ms[1].src.join("b/c/back.txt"), "back").expect("write");
    wait_synced(&w, &ms[1].src, &ms[1].dst, "gone, its events again");
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// A mirror watched directory by directory (a FUSE mount inside its SOURCE, polled)
/// goes through the shared watcher too, beside a mirror watched recursively: new
/// directories are watched as they appear, what changes underneath the mount is
/// found by polling, and each mirror gets its own changes.
#[test]
fn a_mirror_watched_directory_by_directory_shares_the_watcher() {
    let test = "a_mirror_watched_directory_by_directory_shares_the_watcher";
    if let Some(why) = fuse_unavailable() {
        return skip(test, why);
    }
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["mixed", "plain"]);
    let lower = sb.join("lower");
    fs::create_dir_all(&lower).expect("mkdir");
    fs::write(lower.join("under.txt"), "under").expect("write");
    let share = ms[0].src.join("share");
    fs::create_dir(&share).expect("mkdir");
    let _m = BindMount::mount(&lower, &share);
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    fs::write(&cfg, config_text(WATCHING, &[&ms[0], &ms[1]], &|_| String::new())).expect("cfg");
    let w = spawn_service(&cfg, &status);
    for m in &ms {
        wait_synced(&w, &m.src, &m.dst, m.name);
    }
    w.wait_stderr("mixed's strategy", WAIT, |l| l.starts_with("tandem: [mixed] watching with mixed"));
    w.wait_stderr("plain's strategy", WAIT, |l| l.starts_with("tandem: [plain] watching with native"));
    w.wait_for("two inotify instances", WAIT, |p| p.inotify_watches().len() == 2);
    fs::create_dir_all(ms[0].src.join("made/inside")).expect("mkdir");
    fs::write(ms[0].src.join("made/inside/m.txt"), "m").expect("write");
    fs::write(lower.join("made-underneath.txt"), "u").expect("write");
    fs::write(ms[1].src.join("p.txt"), "p").expect("write");
    for m in &ms {
        wait_synced(&w, &m.src, &m.dst, &format!("{}: changes", m.name));
    }
    // The directory made is watched by now: a change inside it is an event.
    fs::write(ms[0].src.join("made/inside/again.txt"), "again").expect("write");
    wait_synced(&w, &ms[0].src, &ms[0].dst, "mixed: inside a new directory");
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// Two mirrors of one SOURCE (allowed) cannot share inotify's one watch per directory:
/// the second has a watcher of its own, and both get every change.
#[test]
fn two_mirrors_of_one_source_both_get_its_changes() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["first"]);
    let twin = Mirror { name: "twin", src: ms[0].src.clone(), dst: sb.join("twin-dst") };
    let cfg = sb.join("tandem.toml");
    let status = sb.join("status.json");
    fs::write(&cfg, config_text(WATCHING, &[&ms[0], &twin], &|_| String::new())).expect("cfg");
    let w = spawn_service(&cfg, &status);
    wait_synced(&w, &ms[0].src, &ms[0].dst, "first");
    wait_synced(&w, &twin.src, &twin.dst, "twin");
    // SOURCE's shared watcher, the twin's own, DEST's shared one.
    w.wait_for("three inotify instances", WAIT, |p| p.inotify_watches().len() == 3);
    fs::create_dir_all(ms[0].src.join("d/e")).expect("mkdir");
    fs::write(ms[0].src.join("d/e/both.txt"), "both").expect("write");
    wait_synced(&w, &ms[0].src, &ms[0].dst, "first, after the change");
    wait_synced(&w, &twin.src, &twin.dst, "twin, after the change");
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}

/// `backup-dir` and `suffix` are per mirror: what each mirror deletes or overwrites is
/// kept in its own directory.
#[test]
fn each_mirror_keeps_its_own_backup_dir() {
    let sb = Sandbox::new();
    let ms = mirrors(&sb, &["one", "two"]);
    for m in &ms {
        fs::write(m.src.join("second.txt"), format!("{} second\n", m.name)).expect("write");
    }
    let backup = |name: &str| sb.join(format!("{name}-backup"));
    let extra = |n: &str| format!("backup-dir = \"{}\"\nsuffix = \".{n}\"", backup(n).display());
    let (_cfg, _status, w) = watch_mirrors(&sb, &ms, &extra);
    for m in &ms {
        fs::remove_file(m.src.join("first.txt")).expect("rm");
        fs::write(m.src.join("second.txt"), format!("{} rewritten\n", m.name)).expect("write");
    }
    for m in &ms {
        wait_synced(&w, &m.src, &m.dst, &format!("{}: a deletion and a rewrite", m.name));
        let b = backup(m.name);
        let kept = |f: &str| fs::read_to_string(b.join(format!("{f}.{}", m.name))).ok();
        w.wait_for(&format!("{}'s backups", m.name), WAIT, |_| {
            kept("first.txt").is_some() && kept("second.txt").is_some()
        });
        assert_eq!(kept("first.txt").as_deref(), Some(&*format!("{} first\n", m.name)), "{}", w.dump());
        assert_eq!(kept("second.txt").as_deref(), Some(&*format!("{} second\n", m.name)), "{}", w.dump());
    }
    assert_eq!(w.stop(libc::SIGTERM, STOP_TIMEOUT).code(), Some(0), "{}", w.dump());
}
