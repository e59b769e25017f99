//! A remote DEST or SOURCE over SFTP (issue 13), against a real OpenSSH server on
//! 127.0.0.1 started by each test (`util::sshd`): every kind of change, both
//! directions, output and guards as for a local DEST, each connection error, a lost
//! connection and `kill -9` mid-copy, odd names, and sshfs as DEST as root.

mod util;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use util::sshd::Sshd;
use util::*;

/// A remote run: `tandem -e RSH ARGS...`.
fn rrun(sshd: &Sshd, args: &[&std::ffi::OsStr]) -> Run {
    let mut all: Vec<std::ffi::OsString> = vec!["-e".into(), sshd.rsh().into()];
    all.extend(args.iter().map(|a| a.to_os_string()));
    run(all)
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// Differences between SOURCE and a mirror made over SFTP: kinds, contents, symlink
/// targets, permission bits and owners (not of symlinks: SFTP cannot set a link's
/// own attributes), mtimes at whole seconds (not of symlinks).
fn remote_diff(src: &Path, dst: &Path, ignore: &[&Path]) -> Vec<String> {
    let keep = |rel: &Path| !ignore.iter().any(|i| rel.starts_with(i));
    let a: BTreeMap<PathBuf, fs::Metadata> = walk(src).into_iter().filter(|(r, _)| keep(r)).collect();
    let b: BTreeMap<PathBuf, fs::Metadata> = walk(dst).into_iter().filter(|(r, _)| keep(r)).collect();
    let mut out = Vec::new();
    for (rel, ma) in &a {
        let Some(mb) = b.get(rel) else {
            out.push(format!("{rel:?}: only in SOURCE"));
            continue;
        };
        let (ka, kb) = (kind_of(ma), kind_of(mb));
        if ka != kb {
            out.push(format!("{rel:?}: {ka:?} vs {kb:?}"));
            continue;
        }
        if ka == Kind::Symlink {
            if fs::read_link(src.join(rel)).ok() != fs::read_link(dst.join(rel)).ok() {
                out.push(format!("{rel:?}: symlink targets differ"));
            }
            continue;
        }
        if ma.mode() & 0o7777 != mb.mode() & 0o7777 {
            out.push(format!("{rel:?}: mode {:o} vs {:o}", ma.mode() & 0o7777, mb.mode() & 0o7777));
        }
        if ma.mtime() != mb.mtime() {
            out.push(format!("{rel:?}: mtime {} vs {}", ma.mtime(), mb.mtime()));
        }
        if (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
            out.push(format!("{rel:?}: owner {}:{} vs {}:{}", ma.uid(), ma.gid(), mb.uid(), mb.gid()));
        }
        if ka == Kind::File && !same_content(&src.join(rel), &dst.join(rel)).unwrap_or(false) {
            out.push(format!("{rel:?}: contents differ"));
        }
    }
    for rel in b.keys() {
        if !a.contains_key(rel) {
            out.push(format!("{rel:?}: only in DEST"));
        }
    }
    out
}

#[track_caller]
fn assert_mirrored(src: &Path, dst: &Path) {
    let d = remote_diff(src, dst, &[]);
    assert!(d.is_empty(), "DEST differs from SOURCE:\n  {}", d.join("\n  "));
}

/// `tandem -e RSH ARGS… SOURCE DEST` against this server, running.
fn spawn_remote(sshd: &Sshd, args: &[&str], src: &std::ffi::OsStr, dst: &std::ffi::OsStr) -> Proc {
    let rsh = sshd.rsh();
    let mut argv: Vec<&std::ffi::OsStr> = vec![os("-e"), os(&rsh)];
    argv.extend(args.iter().map(|a| os(a)));
    argv.extend([src, dst]);
    Proc::spawn(&argv)
}

/// Waits until DEST mirrors SOURCE (mtimes at whole seconds, `ignore` left out).
#[track_caller]
fn wait_mirrored(p: &Proc, src: &Path, dst: &Path, ignore: &[&Path], what: &str) {
    p.wait_for_explained(
        what,
        Duration::from_secs(30),
        |_| remote_diff(src, dst, ignore).is_empty(),
        || remote_diff(src, dst, ignore).join("\n"),
    );
}

/// The change events of a JSON run, as (event, path), sorted.
fn changes(r: &Run) -> Vec<(String, String)> {
    let mut v = changes_in_order(r);
    v.sort();
    v
}

/// The change events of a JSON run, as (event, path), in the order printed.
fn changes_in_order(r: &Run) -> Vec<(String, String)> {
    change_events(&r.json_events()).iter().map(|e| (event_name(e).to_string(), event_path(e))).collect()
}

#[test]
fn addressing_refuses_what_it_does_not_speak_and_never_makes_local_dirs() {
    let sb = Sandbox::new();
    sb.src_tree().file("a", "x");
    // (s3://bucket/prefix is a DEST since issue 14: tests/s3.rs.)
    for dest in ["rsync://host/module", "host::module", "http://host/x"] {
        let out = tandem().current_dir(sb.path()).arg("src").arg(dest).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{dest}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("sftp://") && err.contains("host:path"), "{dest}: {err}");
        assert_eq!(
            listing(sb.path()),
            vec![std::ffi::OsString::from("src")],
            "{dest} made something locally"
        );
    }
    // A colon before the first slash names a host: unknown here, so it fails (exit 1)
    // and nothing local is made.
    let out = tandem()
        .current_dir(sb.path())
        .args(["-e", "ssh -F /dev/null", "src", "user@nosuchhost.invalid:backup"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nosuchhost.invalid") && err.contains("unknown host"), "{err}");
    assert_eq!(listing(sb.path()), vec![std::ffi::OsString::from("src")]);
    // `./a:b` is local.
    tandem().current_dir(sb.path()).args(["src", "./a:b"]).assert().success();
    assert!(sb.join("a:b/a").exists());
    // Both remote: refused.
    let out = tandem().args(["h1:x", "h2:y"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn remote_dest_mirrors_every_kind_of_change() {
    let Some(sshd) = Sshd::start("remote_dest_mirrors_every_kind_of_change") else { return };
    let sb = Sandbox::new();
    let src = sb.src_tree();
    build_varied(&src, &sb.outside());
    let dst = sb.dst_tree();
    build_stale_dest(&dst);
    let dest = sshd.remote(&sb.dst());
    rrun(&sshd, &[sb.src().as_os_str(), &dest]).ok();
    assert_mirrored(&sb.src(), &sb.dst());
    assert!(temp_files(&sb.dst()).is_empty());

    // A no-op run changes nothing and says so.
    let r = rrun(&sshd, &[os("-v"), sb.src().as_os_str(), &dest]);
    r.ok();
    assert!(r.stdout_lines().is_empty(), "a second run itemized changes:\n{r:?}");

    // New, modified (content, mode, mtime only), deleted, recursive deletion, type
    // changes both ways.
    src.file("new/deep/er.txt", "new\n")
        .rewrite("top.txt", "changed, and longer than before\n")
        .chmod("run.sh", 0o700)
        .mtime("a/one.txt", BASE_SECS + 99, 0)
        .remove("zero")
        .remove("a/b")
        .remove("empty")
        .file("empty", "now a file\n")
        .remove("rel_link")
        .dir("rel_link")
        .remove(".hidden")
        .symlink(".hidden", "top.txt");
    let r = rrun(&sshd, &[os("-v"), sb.src().as_os_str(), &dest]);
    r.ok();
    assert_mirrored(&sb.src(), &sb.dst());
    let lines = r.stdout_lines();
    for want in ["delete a/b/c/deep.txt", "copy top.txt", "meta run.sh", "copy a/one.txt", "mkdir new/deep/"]
    {
        assert!(lines.iter().any(|l| l.starts_with(want)), "no '{want}' in:\n{r:?}");
    }
    let r = rrun(&sshd, &[os("--json"), sb.src().as_os_str(), &dest]);
    r.ok();
    assert!(changes(&r).is_empty(), "not converged:\n{r:?}");
}

/// More files than a remote applier starts at once (its start permits: 4 x 128), in one
/// wide directory and in more directories than that beside it, mirrored and then mostly
/// deleted over SFTP: every file arrives and goes, and the runs end (a directory's own
/// operation holds no permit while its contents wait for one).
#[test]
fn more_files_than_the_applier_starts_at_once() {
    let Some(sshd) = Sshd::start("more_files_than_the_applier_starts_at_once") else { return };
    let sb = Sandbox::new();
    let t = sb.src_tree();
    wide_tree(&t, 1200, 600);
    let dest = sshd.remote(&sb.dst());
    rrun(&sshd, &[sb.src().as_os_str(), &dest]).ok();
    assert_mirrored(&sb.src(), &sb.dst());
    thin_wide_tree(&t, 1200, 100);
    let r = rrun(&sshd, &[os("--json"), sb.src().as_os_str(), &dest]);
    r.ok();
    assert_mirrored(&sb.src(), &sb.dst());
    assert!(temp_files(&sb.dst()).is_empty());
}

#[test]
fn output_and_plan_match_a_local_dest() {
    let Some(sshd) = Sshd::start("output_and_plan_match_a_local_dest") else { return };
    let sb = Sandbox::new();
    build_varied(&sb.src_tree(), &sb.outside());
    build_stale_dest(&sb.dst_tree());
    build_stale_dest(&Tree::create(sb.join("local")));
    let local = run([os("--json"), sb.src().as_os_str(), sb.join("local").as_os_str()]);
    let remote = rrun(&sshd, &[os("--json"), sb.src().as_os_str(), &sshd.remote(&sb.dst())]);
    local.ok();
    remote.ok();
    assert_eq!(changes(&local), changes(&remote), "remote:\n{remote:?}");
    // In the same order too: the dry run's path order (as rsync prints), whatever order
    // the server answered in.
    assert_eq!(changes_in_order(&local), changes_in_order(&remote), "remote:\n{remote:?}");
    let (ls, rs) = (summary(&local.json_events()).clone(), summary(&remote.json_events()).clone());
    for field in ["copied", "deleted", "created_dirs", "symlinks", "errors"] {
        if ls.get(field).is_some() {
            assert_eq!(ls[field], rs[field], "{field}: local {ls} remote {rs}");
        }
    }
    // --dry-run: the same plan, nothing changed.
    build_varied(&Tree::create(sb.join("src2")), &sb.outside());
    let before = snapshot_meta(&sb.dst());
    Tree::create(sb.join("src2")).file("only-here", "x");
    let r = rrun(&sshd, &[os("-n"), sb.join("src2").as_os_str(), &sshd.remote(&sb.dst())]);
    r.ok();
    assert!(r.stdout.contains("only-here"), "{r:?}");
    assert_eq!(before, snapshot_meta(&sb.dst()), "--dry-run changed DEST");
    // --dry-run to a DEST that does not exist creates nothing.
    rrun(&sshd, &[os("-n"), sb.src().as_os_str(), &sshd.remote(&sb.join("nothere"))]).ok();
    assert!(!sb.join("nothere").exists());
}

#[test]
fn excluded_entries_are_protected_and_guards_refuse() {
    let Some(sshd) = Sshd::start("excluded_entries_are_protected_and_guards_refuse") else { return };
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "*.log\ncache/\n").file("keep.txt", "k").file("a/b.txt", "b");
    let dst = sb.dst_tree();
    dst.file("old.log", "dest's own log").file("cache/big", "cached").file("gone1", "1").file("gone2", "2");
    let dest = sshd.remote(&sb.dst());
    // --max-delete: refused, nothing changed.
    let before = snapshot_meta(&sb.dst());
    rrun(&sshd, &[os("--max-delete"), os("1"), sb.src().as_os_str(), &dest]).expect_code(4);
    assert_eq!(before, snapshot_meta(&sb.dst()));
    rrun(&sshd, &[sb.src().as_os_str(), &dest]).ok();
    assert!(sb.join("dst/old.log").exists() && sb.join("dst/cache/big").exists(), "excluded entries deleted");
    assert!(!sb.join("dst/gone1").exists() && sb.join("dst/a/b.txt").exists());
    rrun(&sshd, &[os("--delete-excluded"), sb.src().as_os_str(), &dest]).ok();
    assert!(!sb.join("dst/old.log").exists() && !sb.join("dst/cache").exists());
    // An empty SOURCE over a full DEST: refused.
    let empty = sb.join("empty");
    fs::create_dir(&empty).expect("mkdir");
    let r = rrun(&sshd, &[empty.as_os_str(), &dest]);
    r.expect_code(4);
    assert!(r.stderr.contains("is empty"), "{r:?}");
    assert!(sb.join("dst/keep.txt").exists());
}

#[test]
fn remote_source_to_local_dest() {
    let Some(sshd) = Sshd::start("remote_source_to_local_dest") else { return };
    let sb = Sandbox::new();
    let src = sb.src_tree();
    build_varied(&src, &sb.outside());
    src.file(".syncignore", "*.skip\n").file("x.skip", "left out");
    build_stale_dest(&sb.dst_tree());
    let source = sshd.remote(&sb.src());
    rrun(&sshd, &[&source, sb.dst().as_os_str()]).ok();
    assert_mirrored_ignoring(&sb.src(), &sb.dst(), &[Path::new("x.skip")]);
    assert!(!sb.join("dst/x.skip").exists());
    let r = rrun(&sshd, &[os("-v"), &source, sb.dst().as_os_str()]);
    r.ok();
    assert!(r.stdout_lines().is_empty(), "not converged:\n{r:?}");
    src.rewrite("top.txt", "changed remotely, longer\n")
        .remove("a")
        .file("n/new", "n")
        .chmod("run.sh", 0o711);
    rrun(&sshd, &[os("-v"), &source, sb.dst().as_os_str()]).ok();
    assert_mirrored_ignoring(&sb.src(), &sb.dst(), &[Path::new("x.skip")]);
    // --checksum reads both sides.
    rrun(&sshd, &[os("-c"), &source, sb.dst().as_os_str()]).ok();
}

#[test]
fn remote_source_is_polled_in_watch_mode() {
    let Some(sshd) = Sshd::start("remote_source_is_polled_in_watch_mode") else { return };
    let sb = Sandbox::new();
    let src = sb.src_tree();
    build_varied(&src, &sb.outside());
    src.file(".syncignore", "*.skip\n").file("x.skip", "left out").file("gone/deep/f", "f");
    build_stale_dest(&sb.dst_tree());
    let skip = [Path::new("x.skip")];
    let converged = |what: &str, p: &Proc| wait_mirrored(p, &sb.src(), &sb.dst(), &skip, what);
    let source = sshd.remote(&sb.src());
    for args in [&["--json", "--poll", "200ms"][..], &["--json", "--watch"][..]] {
        let p = spawn_remote(&sshd, args, &source, sb.dst().as_os_str());
        p.wait_initial_sync(Duration::from_secs(30));
        converged("the first sync", &p);
        if args.contains(&"--watch") {
            // No events come from another host: --watch polls it.
            let strategy = p.events().into_iter().find(|e| e["event"] == "strategy");
            let strategy = strategy.unwrap_or_else(|| panic!("no strategy event:\n{}", p.dump()));
            assert_eq!(strategy["name"], "poll", "{}", p.dump());
            src.file("watch/new", "seen by polling");
            converged("a new file", &p);
        } else {
            // Every kind of change made on the remote reaches DEST.
            src.rewrite("top.txt", "changed remotely, and longer\n")
                .remove("a/one.txt")
                .file("n/new", "n")
                .chmod("run.sh", 0o711)
                .symlink("n/link", "../top.txt");
            fs::rename(sb.join("src/a/b"), sb.join("src/moved")).expect("mv");
            fs::remove_dir_all(sb.join("src/gone")).expect("rm -rf");
            converged("the changes", &p);
            // DEST is still watched here: a change made there is repaired.
            fs::write(sb.join("dst/extra"), "junk").expect("write");
            fs::write(sb.join("dst/top.txt"), "tampered").expect("write");
            converged("the repair of DEST", &p);
        }
        let st = p.stop(libc::SIGTERM, Duration::from_secs(20));
        assert_eq!(st.code(), Some(0), "{}", p.dump());
        assert!(!sb.join("dst/x.skip").exists());
    }
}

#[track_caller]
fn assert_mirrored_ignoring(src: &Path, dst: &Path, ignore: &[&Path]) {
    let d = remote_diff(src, dst, ignore);
    assert!(d.is_empty(), "DEST differs from SOURCE:\n  {}", d.join("\n  "));
}

#[test]
fn connection_errors_are_one_clear_line() {
    let Some(sshd) = Sshd::start("connection_errors_are_one_clear_line") else { return };
    let sb = Sandbox::new();
    sb.src_tree().file("a", "x");
    let dest = sshd.remote(&sb.dst());
    let cases: Vec<(String, std::ffi::OsString, &str)> = vec![
        (
            format!("ssh -F /dev/null -p {} -o ConnectTimeout=5", util::sshd::free_port()),
            dest.clone(),
            "connection refused",
        ),
        (sshd.rsh_with("stranger", "known_hosts"), dest.clone(), "authentication failed"),
        (sshd.rsh_with("id", "wrong_known_hosts"), dest.clone(), "host key verification failed"),
        (sshd.rsh(), "root@nosuchhost.invalid:x".into(), "unknown host"),
    ];
    for (rsh, dest, want) in cases {
        let r = run([os("-e"), os(&rsh), sb.src().as_os_str(), &dest]);
        r.expect_code(1);
        let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains(want)).collect();
        assert_eq!(lines.len(), 1, "want one line with '{want}':\n{r:?}");
        assert!(lines[0].contains("127.0.0.1") || lines[0].contains("nosuchhost"), "{r:?}");
        assert!(!sb.dst().exists());
    }
    // DEST names a file there: refused as for a local DEST (exit 2), the file untouched.
    let file = sb.join("a-file");
    fs::write(&file, "keep").expect("write");
    let r = rrun(&sshd, &[sb.src().as_os_str(), &sshd.remote(&file)]);
    r.expect_code(2);
    assert!(r.stderr.contains("exists and is not a directory") && r.stderr.contains("127.0.0.1"), "{r:?}");
    assert_eq!(fs::read_to_string(&file).expect("read"), "keep");
    // The remote parent directory is missing: DEST is created, not its parents.
    let r = rrun(&sshd, &[sb.src().as_os_str(), &sshd.remote(&sb.join("no/such/parent/dst"))]);
    r.expect_code(1);
    assert!(r.stderr.contains("parent directory") && r.stderr.contains("missing"), "{r:?}");
    // --json ends with its summary.
    let r = rrun(&sshd, &[os("--json"), sb.src().as_os_str(), &sshd.remote(&sb.join("no/dst"))]);
    r.expect_code(1);
    assert_eq!(summary(&r.json_events())["exit_code"], 1, "{r:?}");
}

/// A remote shell that prints text in non-interactive sessions (a `~/.bashrc` with an
/// `echo`, emulated by the server's `ForceCommand`, which runs through the shell as the
/// sftp subsystem does) puts that text where the SFTP server's first reply is due: one
/// line naming the cause and the fix, exit 1, both ways, nothing written.
#[test]
fn a_remote_shell_that_prints_text_is_named_as_the_cause() {
    let Some(mut sshd) = Sshd::start("a_remote_shell_that_prints_text_is_named_as_the_cause") else { return };
    let sb = Sandbox::new();
    sb.src_tree().file("a", "x");
    sshd.configure(&format!(
        "ForceCommand printf 'Welcome to the host\\n'; exec {}",
        util::sshd::SFTP_SERVER
    ));
    let remote_src = sshd.remote(&sb.src());
    let elsewhere = sb.join("local-dst");
    for (src, dst) in
        [(sb.src().into_os_string(), sshd.remote(&sb.dst())), (remote_src, elsewhere.clone().into())]
    {
        let r = rrun(&sshd, &[&src, &dst]);
        r.expect_code(1);
        let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("Welcome to the host")).collect();
        assert_eq!(lines.len(), 1, "want one line quoting the shell's text:\n{r:?}");
        assert!(lines[0].contains("127.0.0.1") && lines[0].contains("~/.bashrc"), "{r:?}");
    }
    assert!(!sb.dst().exists() && !elsewhere.exists());
}

/// `chattr +i` on `path` (root cannot write there either), undone on drop.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Result<Immutable, String> {
        let out = Command::new("chattr").arg("+i").arg(path).output().map_err(|e| format!("chattr: {e}"))?;
        if !out.status.success() {
            return Err(format!("chattr +i failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn permission_denied_is_reported_per_entry() {
    let test = "permission_denied_is_reported_per_entry";
    let Some(sshd) = Sshd::start(test) else { return };
    let sb = Sandbox::new();
    sb.src_tree().file("ok/a", "a").file("locked/b", "b");
    sb.dst_tree().dir("ok").dir("locked");
    let _lock = match Immutable::set(&sb.join("dst/locked")) {
        Ok(l) => l,
        Err(why) => return skip(test, &why),
    };
    let r = rrun(&sshd, &[sb.src().as_os_str(), &sshd.remote(&sb.dst())]);
    r.expect_code(3);
    let denied: Vec<&str> = r.stderr.lines().filter(|l| l.contains("Permission denied")).collect();
    assert!(denied.iter().any(|l| l.contains("locked/b")), "{r:?}");
    assert_eq!(read(&sb.join("dst/ok/a")), b"a");
    assert!(temp_files(&sb.dst()).is_empty());
}

/// A small tmpfs at `at`, unmounted on drop.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: &Path, size: &str) -> Result<SmallFs, String> {
        fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tandem-test"])
            .arg(at)
            .status()
            .map_err(|e| format!("mount: {e}"))?;
        if !st.success() {
            return Err(format!("mount -t tmpfs failed ({st})"));
        }
        Ok(SmallFs(at.to_path_buf()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn remote_disk_full_is_reported_and_leaves_nothing_torn() {
    let Some(sshd) = Sshd::start("remote_disk_full_is_reported_and_leaves_nothing_torn") else { return };
    let sb = Sandbox::new();
    sb.src_tree().file("small", "fits").file("big", pseudo_random(2 << 20, 7));
    let small = match SmallFs::mount(&sb.dst(), "1m") {
        Ok(m) => m,
        Err(why) => return skip("remote_disk_full_is_reported_and_leaves_nothing_torn", &why),
    };
    let r = rrun(&sshd, &[sb.src().as_os_str(), &sshd.remote(&sb.dst())]);
    r.expect_code(3);
    assert!(r.stderr.lines().any(|l| l.contains("big") && l.contains("no space left")), "{r:?}");
    // `small` went in beside it, or failed while the disk was full: never torn.
    if sb.join("dst/small").exists() {
        assert_eq!(read(&sb.join("dst/small")), b"fits");
    }
    assert!(!sb.join("dst/big").exists(), "a torn file under its final name");
    assert!(temp_files(&sb.dst()).is_empty(), "temporaries left: {:?}", temp_files(&sb.dst()));
    drop(small);
}

/// The pids of the processes named `comm` whose parent is `parent`.
fn children_named(parent: i32, comm: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = &stat[open + 1..close];
        let ppid = stat[close + 2..].split_whitespace().nth(1).and_then(|p| p.parse::<i32>().ok());
        if name == comm && ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// A temporary with data in it has appeared under `dir`.
fn copy_under_way(dir: &Path) -> bool {
    dir.exists()
        && temp_files(dir).iter().any(|t| fs::metadata(dir.join(t)).map(|m| m.len() > 0).unwrap_or(false))
}

fn big_source(sb: &Sandbox) {
    let t = sb.src_tree();
    t.file("small", "small");
    let f = fs::File::create(sb.join("src/huge")).expect("create");
    f.set_len(512 << 20).expect("set_len");
}

#[test]
fn connection_lost_mid_run_is_fatal_and_the_next_run_converges() {
    let Some(sshd) = Sshd::start("connection_lost_mid_run_is_fatal_and_the_next_run_converges") else {
        return;
    };
    let sb = Sandbox::new_fast();
    big_source(&sb);
    let dest = sshd.remote(&sb.dst());
    let p = Proc::spawn(&[os("-e"), os(&sshd.rsh()), sb.src().as_os_str(), &dest]);
    wait_for("the big copy to start", Duration::from_secs(60), || {
        copy_under_way(&sb.dst()) || p.exited().is_some()
    });
    let ssh = children_named(p.pid(), "ssh");
    assert_eq!(ssh.len(), 1, "tandem's ssh: {ssh:?}\n{}", p.dump());
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(ssh[0], libc::SIGKILL) };
    let status = p.wait_timeout(Duration::from_secs(30)).expect("tandem did not stop after losing ssh");
    assert_eq!(status.code(), Some(1), "{}", p.dump());
    let lost: Vec<String> = p.stderr().into_iter().filter(|l| l.contains("lost")).collect();
    assert_eq!(lost.len(), 1, "one line about the lost connection:\n{}", p.dump());
    assert!(lost[0].contains("127.0.0.1"), "{}", p.dump());
    if let Ok(m) = fs::metadata(sb.join("dst/huge")) {
        assert_eq!(m.len(), 512 << 20, "a torn file under its final name");
    }
    rrun(&sshd, &[sb.src().as_os_str(), &dest]).ok();
    assert!(temp_files(&sb.dst()).is_empty());
    assert_mirrored(&sb.src(), &sb.dst());
}

#[test]
fn kill_9_mid_copy_leaves_no_torn_files() {
    let Some(sshd) = Sshd::start("kill_9_mid_copy_leaves_no_torn_files") else { return };
    let sb = Sandbox::new_fast();
    big_source(&sb);
    let dest = sshd.remote(&sb.dst());
    let p = Proc::spawn(&[os("-e"), os(&sshd.rsh()), sb.src().as_os_str(), &dest]);
    wait_for("the big copy to start", Duration::from_secs(60), || {
        copy_under_way(&sb.dst()) || p.exited().is_some()
    });
    assert!(p.kill9(), "tandem ended before it could be killed:\n{}", p.dump());
    if let Ok(m) = fs::metadata(sb.join("dst/huge")) {
        assert_eq!(m.len(), 512 << 20, "a torn file under its final name");
    }
    let r = rrun(&sshd, &[os("-v"), sb.src().as_os_str(), &dest]);
    r.ok();
    assert!(temp_files(&sb.dst()).is_empty(), "{r:?}");
    assert_mirrored(&sb.src(), &sb.dst());
}

#[test]
fn sftp_url_form_and_odd_names_both_ways() {
    let Some(sshd) = Sshd::start("sftp_url_form_and_odd_names_both_ways") else { return };
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("with space/and\nnewline", "1")
        .file(bad_name(), "2")
        .file(Path::new(&non_utf8(b"d\xfe", b"")).join("in"), "3")
        .file("%41 percent", "4")
        .symlink("link to space", "with space/and\nnewline");
    // sftp://user@host:port/path, the path %-escaped.
    let mut url = format!("sftp://root@127.0.0.1:{}", sshd.port).into_bytes();
    for b in sb.dst().as_os_str().as_encoded_bytes() {
        if *b == b'/' {
            url.push(b'/');
        } else {
            url.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    let url = std::ffi::OsString::from(String::from_utf8(url).expect("ascii"));
    let rsh = sshd.rsh().replace(&format!("-p {}", sshd.port), "");
    run([os("-e"), os(&rsh), sb.src().as_os_str(), &url]).ok();
    assert_mirrored(&sb.src(), &sb.dst());
    let back = sb.join("back");
    rrun(&sshd, &[&sshd.remote(&sb.dst()), back.as_os_str()]).ok();
    assert_mirrored(&sb.src(), &back);
}

#[test]
fn watch_mode_reaches_a_remote_dest_through_the_same_loop() {
    let Some(sshd) = Sshd::start("watch_mode_reaches_a_remote_dest_through_the_same_loop") else { return };
    let sb = Sandbox::new();
    sb.src_tree().file("a", "1");
    let p =
        spawn_remote(&sshd, &["--watch", "--debounce", "0"], sb.src().as_os_str(), &sshd.remote(&sb.dst()));
    wait_for("the first sync", Duration::from_secs(30), || sb.join("dst/a").exists());
    sb.src_tree().file("b/c", "2").rewrite("a", "changed");
    wait_for("the change", Duration::from_secs(30), || {
        fs::read(sb.join("dst/b/c")).ok().as_deref() == Some(b"2")
            && fs::read(sb.join("dst/a")).ok().as_deref() == Some(b"changed")
    });
    let st = p.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "{}", p.dump());
}

#[test]
fn watch_mode_reconnects_after_the_connection_drops_and_catches_up() {
    let test = "watch_mode_reconnects_after_the_connection_drops_and_catches_up";
    let Some(mut sshd) = Sshd::start(test) else { return };
    let sb = Sandbox::new();
    sb.src_tree().file("a", "1").file("d/b", "2");
    let p =
        spawn_remote(&sshd, &["--watch", "--debounce", "0"], sb.src().as_os_str(), &sshd.remote(&sb.dst()));
    p.wait_stderr("the first sync", Duration::from_secs(30), |l| l.contains("sync #1:"));
    // The server goes down and the connection with it (network down, sshd restarted).
    sshd.stop();
    let ssh = children_named(p.pid(), "ssh");
    assert_eq!(ssh.len(), 1, "tandem's ssh: {ssh:?}\n{}", p.dump());
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(ssh[0], libc::SIGKILL) };
    // Changes made while it is down are caught up once it is back.
    sb.src_tree().file("new", "3").rewrite("a", "changed").remove("d/b");
    p.wait_stderr("the lost connection said", Duration::from_secs(30), |l| {
        l.contains("lost") && l.contains("paused")
    });
    p.wait_stderr("a failed attempt to connect again", Duration::from_secs(30), |l| {
        l.contains("trying again in")
    });
    assert!(p.exited().is_none(), "the watcher ended:\n{}", p.dump());
    sshd.restart();
    p.wait_stderr("connected again", Duration::from_secs(90), |l| l.contains("connected again"));
    wait_for("the catch-up", Duration::from_secs(30), || {
        fs::read(sb.join("dst/new")).ok().as_deref() == Some(b"3")
            && fs::read(sb.join("dst/a")).ok().as_deref() == Some(b"changed")
            && !sb.join("dst/d/b").exists()
    });
    // And it goes on syncing over the new connection.
    sb.src_tree().file("after", "4");
    wait_mirrored(&p, &sb.src(), &sb.dst(), &[], "a change after the reconnection");
    let st = p.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "{}", p.dump());
    assert!(temp_files(&sb.dst()).is_empty(), "temporaries left: {:?}", temp_files(&sb.dst()));
    let lost = p.stderr().into_iter().filter(|l| l.contains("lost") && l.contains("paused")).count();
    assert_eq!(lost, 1, "the lost connection said once:\n{}", p.dump());
}

#[test]
fn a_polled_remote_source_reconnects_after_the_connection_drops() {
    let test = "a_polled_remote_source_reconnects_after_the_connection_drops";
    let Some(sshd) = Sshd::start(test) else { return };
    let sb = Sandbox::new();
    sb.src_tree().file("a", "1");
    let p = spawn_remote(&sshd, &["--poll", "200ms"], &sshd.remote(&sb.src()), sb.dst().as_os_str());
    p.wait_stderr("the first sync", Duration::from_secs(30), |l| l.contains("sync #1:"));
    let ssh = children_named(p.pid(), "ssh");
    assert_eq!(ssh.len(), 1, "tandem's ssh: {ssh:?}\n{}", p.dump());
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(ssh[0], libc::SIGKILL) };
    sb.src_tree().file("b", "2").rewrite("a", "changed");
    p.wait_stderr("the lost connection said", Duration::from_secs(30), |l| {
        l.contains("lost") && l.contains("paused")
    });
    p.wait_stderr("connected again", Duration::from_secs(30), |l| l.contains("connected again"));
    wait_mirrored(&p, &sb.src(), &sb.dst(), &[], "the catch-up");
    assert_eq!(fs::read(sb.join("dst/b")).ok().as_deref(), Some(&b"2"[..]));
    let st = p.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "{}", p.dump());
}

#[test]
fn sshfs_dest_as_root_mirrors_symlinks() {
    let test = "sshfs_dest_as_root_mirrors_symlinks";
    let Some(sshd) = Sshd::start(test) else { return };
    if Command::new("sshfs").arg("-V").output().is_err() {
        return skip(test, "sshfs missing (apt-get install sshfs)");
    }
    if !Path::new("/dev/fuse").exists() {
        return skip(test, "no /dev/fuse");
    }
    let sb = Sandbox::new();
    let src = sb.src_tree();
    // (This sshfs cannot read back symlinks whose target is absolute or climbs with
    // `..`: its readlink says EPERM, which tandem reports; left out here.)
    src.file("f", "file").symlink("rel", "f").symlink("dangling", "no/such").symlink("d/down", "x/y");
    src.stamp_all();
    let export = sb.join("export");
    let mnt = sb.join("mnt");
    fs::create_dir_all(&export).expect("mkdir");
    fs::create_dir_all(&mnt).expect("mkdir");
    let opts = format!(
        "IdentityFile={},IdentitiesOnly=yes,UserKnownHostsFile={},StrictHostKeyChecking=yes,BatchMode=yes",
        sshd.file("id").display(),
        sshd.file("known_hosts").display()
    );
    let st = Command::new("sshfs")
        .args(["-F", "/dev/null", "-p", &sshd.port.to_string(), "-o", &opts])
        .arg(format!("root@127.0.0.1:{}", export.display()))
        .arg(&mnt)
        .status()
        .expect("run sshfs");
    if !st.success() {
        return skip(test, &format!("sshfs mount failed ({st})"));
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("fusermount3").arg("-u").arg(&self.0).status();
            let _ = Command::new("fusermount").arg("-u").arg(&self.0).status();
        }
    }
    let _m = Unmount(mnt.clone());
    let dst = mnt.join("dst");
    let r = run([os("-v"), sb.src().as_os_str(), dst.as_os_str()]);
    r.ok();
    for l in ["rel", "dangling", "d/down"] {
        assert_eq!(
            fs::read_link(export.join("dst").join(l)).ok(),
            fs::read_link(sb.join("src").join(l)).ok(),
            "{l}"
        );
    }
    assert_eq!(read(&export.join("dst/f")), b"file");
    let r = run([os("-v"), sb.src().as_os_str(), dst.as_os_str()]);
    r.ok();
    assert!(r.stdout_lines().is_empty(), "not converged on sshfs:\n{r:?}");
}

/// `--backup-dir DIR` for a DEST over SFTP (DIR inside DEST): deleted entries moved
/// there under their relative path (a directory whole), an overwritten file kept
/// there by a hard link (`hardlink@openssh.com`: the same inode, so the replacement
/// was one rename), `--suffix` for repeated versions; DIR is left out of the mirror;
/// an absolute DIR is a usage error; a remote SOURCE refuses it.
#[test]
fn remote_dest_backup_dir_keeps_what_is_deleted_or_overwritten() {
    let Some(sshd) = Sshd::start("remote_dest_backup_dir_keeps_what_is_deleted_or_overwritten") else {
        return;
    };
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.txt", "version 1\n").file("d/b.txt", "b\n").file("e/f/g.txt", "g\n").symlink("ln", "a.txt");
    src.stamp_all();
    let (s, d) = (sb.src(), sb.dst());
    let dest = sshd.remote(&d);
    rrun(&sshd, &[s.as_os_str(), &dest]).ok();
    let inode_before = lstat(&d.join("a.txt")).ino();
    src.file("a.txt", "version 2\n")
        .mtime("a.txt", BASE_SECS + 100, 0)
        .remove("d/b.txt")
        .remove("e")
        .remove("ln")
        .symlink("ln", "d");
    let r = rrun(&sshd, &[os("-v"), os("--backup-dir"), os(".old"), s.as_os_str(), &dest]);
    r.ok();
    let old = d.join(".old");
    assert_eq!(read(&old.join("a.txt")), b"version 1\n", "{r:?}");
    assert_eq!(lstat(&old.join("a.txt")).ino(), inode_before, "kept by a link, not copied");
    assert_eq!(read(&old.join("d/b.txt")), b"b\n");
    assert_eq!(read(&old.join("e/f/g.txt")), b"g\n");
    assert_eq!(fs::read_link(old.join("ln")).unwrap(), Path::new("a.txt"));
    assert_mirrored_ignoring(&s, &d, &[Path::new(".old")]);
    // The backup directory is not part of the mirror: nothing more to do.
    let again = rrun(&sshd, &[os("-v"), os("--backup-dir"), os(".old"), s.as_os_str(), &dest]);
    again.ok();
    assert!(again.stdout_lines().is_empty(), "{again:?}");

    // A suffix keeps each version; without one a later backup replaces the earlier.
    src.file("a.txt", "version 3\n").mtime("a.txt", BASE_SECS + 200, 0);
    rrun(&sshd, &[os("--backup-dir"), os(".old"), os("--suffix"), os(".2"), s.as_os_str(), &dest]).ok();
    assert_eq!(read(&old.join("a.txt")), b"version 1\n");
    assert_eq!(read(&old.join("a.txt.2")), b"version 2\n");
    src.file("a.txt", "version 4\n").mtime("a.txt", BASE_SECS + 300, 0).remove("d");
    rrun(&sshd, &[os("--backup-dir"), os(".old"), s.as_os_str(), &dest]).ok();
    assert_eq!(read(&old.join("a.txt")), b"version 3\n");
    assert!(old.join("d").is_dir(), "d (a directory) moved whole");
    assert_eq!(read(&d.join("a.txt")), b"version 4\n");
    assert_mirrored_ignoring(&s, &d, &[Path::new(".old")]);

    // Usage errors: an absolute DIR, a remote SOURCE.
    let r = rrun(&sshd, &[os("--backup-dir"), os("/tmp/elsewhere"), s.as_os_str(), &dest]);
    r.expect_code(2);
    assert!(r.stderr.contains("relative directory inside DEST"), "{r:?}");
    let r = rrun(&sshd, &[os("--backup-dir"), os(".old"), &dest, sb.join("back").as_os_str()]);
    r.expect_code(2);
    assert!(r.stderr.contains("not a remote SOURCE"), "{r:?}");
}
