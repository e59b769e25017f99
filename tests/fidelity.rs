//! Fidelity beyond contents and modes (issue 16): hard links (`-H`), extended
//! attributes (`-X`) and POSIX ACLs (`-A`), in one-shot runs and in watch mode, a
//! DEST without xattr support, and remote pairs refusing them.

mod util;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use util::*;

fn id(p: &Path) -> (u64, u64) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
    (m.dev(), m.ino())
}

fn nlink(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display())).nlink()
}

fn link(from: &Path, to: &Path) {
    fs::hard_link(from, to).unwrap_or_else(|e| panic!("ln {} {}: {e}", from.display(), to.display()));
}

fn args(extra: &[&str], sb: &Sandbox) -> Vec<OsString> {
    let mut a: Vec<OsString> = extra.iter().map(OsString::from).collect();
    a.push(sb.src().into());
    a.push(sb.dst().into());
    a
}

fn count_events(r: &Run, name: &str) -> usize {
    events_named(&r.json_events(), name).len()
}

/// SOURCE: `a/f` = `a/g` = `b/h` (one inode, across directories), `a/p` = `a/q` (a
/// second group within one directory), `single`.
fn linked_source(sb: &Sandbox) {
    let t = sb.src_tree();
    t.file("a/f", "group one\n").file("a/p", "group two\n").file("single", "alone\n").dir("b");
    link(&t.p("a/f"), &t.p("a/g"));
    link(&t.p("a/f"), &t.p("b/h"));
    link(&t.p("a/p"), &t.p("a/q"));
}

#[test]
fn hard_links_one_copy_then_links_within_and_across_directories() {
    let sb = Sandbox::new();
    linked_source(&sb);
    let r = run(args(&["-H", "--json"], &sb));
    r.ok();
    // One copy per inode: f, p, single; the other names are links.
    assert_eq!(count_events(&r, "copy"), 3, "{}", r.stdout);
    assert_eq!(count_events(&r, "hardlink"), 3, "{}", r.stdout);
    let d = sb.dst();
    assert_eq!(id(&d.join("a/f")), id(&d.join("a/g")));
    assert_eq!(id(&d.join("a/f")), id(&d.join("b/h")));
    assert_eq!(id(&d.join("a/p")), id(&d.join("a/q")));
    assert_ne!(id(&d.join("a/f")), id(&d.join("a/p")));
    assert_eq!(nlink(&d.join("a/f")), 3);
    assert_eq!(nlink(&d.join("single")), 1);
    assert_trees_equal(&sb.src(), &sb.dst());
    assert!(temp_files(&sb.dst()).is_empty(), "temporaries left: {:?}", temp_files(&sb.dst()));
    // In sync: a second run changes nothing (directory mtimes restored after linking).
    let again = run(args(&["-H", "-v"], &sb));
    again.ok();
    assert!(again.stdout_lines().is_empty(), "second run changed: {}", again.stdout);
    // Without -H, the summary names no links and DEST's links are left as they are.
    let plain = run(args(&["--json"], &sb));
    plain.ok();
    assert_eq!(count_events(&plain, "hardlink"), 0);
}

#[test]
fn hard_links_dry_run_lists_links_and_changes_nothing() {
    let sb = Sandbox::new();
    linked_source(&sb);
    let r = run(args(&["-H", "-n"], &sb));
    r.ok();
    let lines = r.stdout_lines();
    assert!(lines.contains(&"hardlink a/g => a/f"), "{lines:?}");
    assert!(lines.contains(&"hardlink b/h => a/f"), "{lines:?}");
    assert!(lines.contains(&"hardlink a/q => a/p"), "{lines:?}");
    assert!(!sb.dst().exists());
}

#[test]
fn hard_links_separate_copies_in_dest_become_links() {
    let sb = Sandbox::new();
    linked_source(&sb);
    // DEST made without -H: separate copies.
    run(args(&[], &sb)).ok();
    assert_ne!(id(&sb.dst().join("a/f")), id(&sb.dst().join("b/h")));
    let r = run(args(&["-H", "-v"], &sb));
    r.ok();
    let lines = r.stdout_lines();
    assert!(lines.contains(&"hardlink a/g => a/f"), "{lines:?}");
    assert!(lines.contains(&"hardlink b/h => a/f"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("copy")), "nothing to copy: {lines:?}");
    assert_eq!(id(&sb.dst().join("a/f")), id(&sb.dst().join("b/h")));
    assert_eq!(id(&sb.dst().join("a/p")), id(&sb.dst().join("a/q")));
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn hard_link_groups_gain_and_lose_members_and_follow_content() {
    let sb = Sandbox::new();
    linked_source(&sb);
    let s = sb.src();
    let d = sb.dst();
    run(args(&["-H"], &sb)).ok();
    // Gains a member in a new directory, and a single file joins group two.
    fs::create_dir(s.join("c")).unwrap();
    link(&s.join("a/f"), &s.join("c/new"));
    fs::remove_file(s.join("single")).unwrap();
    link(&s.join("a/p"), &s.join("single"));
    run(args(&["-H"], &sb)).ok();
    assert_eq!(id(&d.join("c/new")), id(&d.join("a/f")));
    assert_eq!(id(&d.join("single")), id(&d.join("a/p")));
    assert_eq!(nlink(&d.join("a/f")), 4);
    // Loses one: b/h becomes a separate file with the same contents and times (no
    // size or mtime difference for the planner to see).
    fs::remove_file(s.join("b/h")).unwrap();
    fs::copy(s.join("a/f"), s.join("b/h")).unwrap();
    let m = fs::metadata(s.join("a/f")).unwrap();
    filetime::set_file_mtime(s.join("b/h"), filetime::FileTime::from_last_modification_time(&m)).unwrap();
    run(args(&["-H"], &sb)).ok();
    assert_ne!(id(&d.join("b/h")), id(&d.join("a/f")), "b/h must have left the group in DEST");
    assert_eq!(nlink(&d.join("b/h")), 1);
    assert_eq!(nlink(&d.join("a/f")), 3);
    // Content changed through a follower's name: the whole group has it.
    fs::write(s.join("c/new"), "group one, rewritten\n").unwrap();
    run(args(&["-H"], &sb)).ok();
    for name in ["a/f", "a/g", "c/new"] {
        assert_eq!(fs::read_to_string(d.join(name)).unwrap(), "group one, rewritten\n", "{name}");
    }
    assert_eq!(id(&d.join("a/g")), id(&d.join("a/f")));
    assert_eq!(id(&d.join("c/new")), id(&d.join("a/f")));
    assert_eq!(fs::read_to_string(d.join("b/h")).unwrap(), "group one\n");
    assert_trees_equal(&sb.src(), &sb.dst());
    let again = run(args(&["-H", "-v"], &sb));
    assert!(again.stdout_lines().is_empty(), "not in sync: {}", again.stdout);
}

#[test]
fn hard_links_in_watch_mode() {
    let sb = Sandbox::new();
    linked_source(&sb);
    let (s, d) = (sb.src(), sb.dst());
    let w = Proc::spawn(&args(&["-H", "--watch", "--json"], &sb));
    w.wait_initial_sync(SYNC_TIMEOUT);
    assert_eq!(id(&d.join("b/h")), id(&d.join("a/f")));
    // A new member in another directory.
    link(&s.join("a/f"), &s.join("b/more"));
    w.wait_for("b/more linked to a/f in DEST", SYNC_TIMEOUT, |_| {
        d.join("b/more").exists() && id(&d.join("b/more")) == id(&d.join("a/f"))
    });
    // Content changed through b/h: a/f's directory sees no event, yet the whole
    // group gets the new contents and stays one inode.
    fs::write(s.join("b/h"), "rewritten through b/h\n").unwrap();
    w.wait_for("the group's new contents under every name", SYNC_TIMEOUT, |_| {
        ["a/f", "a/g", "b/h", "b/more"]
            .iter()
            .all(|n| fs::read_to_string(d.join(n)).is_ok_and(|c| c == "rewritten through b/h\n"))
            && id(&d.join("a/g")) == id(&d.join("a/f"))
            && id(&d.join("b/h")) == id(&d.join("a/f"))
    });
    // A member leaves: a/q replaced by a separate file with the same contents and mtime.
    let tmp = s.join("q.new");
    fs::copy(s.join("a/q"), &tmp).unwrap();
    let m = fs::metadata(s.join("a/q")).unwrap();
    filetime::set_file_mtime(&tmp, filetime::FileTime::from_last_modification_time(&m)).unwrap();
    fs::rename(&tmp, s.join("a/q")).unwrap();
    w.wait_for("a/q apart from a/p in DEST", SYNC_TIMEOUT, |_| {
        d.join("a/q").exists() && id(&d.join("a/q")) != id(&d.join("a/p"))
    });
    wait_synced(&w, &s, &d, "hard links in watch mode");
    assert_eq!(nlink(&d.join("a/p")), 1);
    // Someone replaces DEST's b/h with a separate copy (same contents and mtime): it is
    // linked again, by the repair of the DEST directories it touched or at the latest by
    // a verification (SIGHUP asks for one; every verification runs the link pass).
    let tmp = d.join("h.copy");
    fs::copy(d.join("b/h"), &tmp).unwrap();
    let m = fs::metadata(d.join("b/h")).unwrap();
    filetime::set_file_mtime(&tmp, filetime::FileTime::from_last_modification_time(&m)).unwrap();
    fs::rename(&tmp, d.join("b/h")).unwrap();
    assert_ne!(id(&d.join("b/h")), id(&d.join("a/f")));
    w.signal(libc::SIGHUP);
    w.wait_for("b/h linked again after the verification", SYNC_TIMEOUT, |_| {
        id(&d.join("b/h")) == id(&d.join("a/f"))
    });
    w.stop(libc::SIGTERM, SYNC_TIMEOUT);
}

/// `getfattr -d -m -` of `path` (not followed), without the `# file:` line.
fn attrs(path: &Path) -> String {
    let out = Command::new("getfattr")
        .args(["-h", "-d", "-m", "-", "--absolute-names"])
        .arg(path)
        .output()
        .expect("run getfattr");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("# file:"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn acl(path: &Path) -> String {
    let out = Command::new("getfacl").args(["-p", "-c", "-n"]).arg(path).output().expect("run getfacl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn setfattr(path: &Path, name: &str, value: Option<&str>) {
    let mut c = Command::new("setfattr");
    match value {
        Some(v) => c.args(["-n", name, "-v", v]),
        None => c.args(["-x", name]),
    };
    let st = c.arg(path).status().expect("run setfattr");
    assert!(st.success(), "setfattr {name} {}", path.display());
}

fn setfacl(path: &Path, spec: &[&str]) {
    let st = Command::new("setfacl").args(spec).arg(path).status().expect("run setfacl");
    assert!(st.success(), "setfacl {spec:?} {}", path.display());
}

/// The attribute tools are there (attr and acl packages, installed by `.ci/run`),
/// and the sandbox's file system takes user xattrs and ACLs; else the test skips.
fn xattr_tools(test: &str, sb: &Sandbox) -> bool {
    for tool in ["setfattr", "getfattr", "setfacl", "getfacl"] {
        if !have_command(tool) {
            skip(test, &format!("{tool} is not installed (apt-get install attr acl)"));
            return false;
        }
    }
    let probe = sb.join("probe");
    fs::write(&probe, "x").unwrap();
    let ok = Command::new("setfattr").args(["-n", "user.probe", "-v", "1"]).arg(&probe).status();
    let _ = fs::remove_file(&probe);
    if !ok.is_ok_and(|s| s.success()) {
        skip(test, "the sandbox's file system takes no user xattrs");
        return false;
    }
    true
}

/// SOURCE with user xattrs on a file and a directory, an access ACL on a file, a
/// default ACL on a directory.
fn attributed_source(sb: &Sandbox) {
    let t = sb.src_tree();
    t.file("f", "contents\n").file("plain", "no attributes\n").dir("d").file("d/inner", "x\n");
    t.symlink("l", "f");
    setfattr(&t.p("f"), "user.colour", Some("blue"));
    setfattr(&t.p("f"), "user.checksum", Some("0x00ff"));
    setfattr(&t.p("d"), "user.dir", Some("yes"));
    setfacl(&t.p("f"), &["-m", "u:65534:r"]);
    setfacl(&t.p("d"), &["-d", "-m", "u:65534:rx"]);
}

#[test]
fn xattrs_and_acls_round_trip_and_an_xattr_change_alone_propagates() {
    let sb = Sandbox::new();
    if !xattr_tools("xattrs_and_acls_round_trip", &sb) {
        return;
    }
    attributed_source(&sb);
    let (s, d) = (sb.src(), sb.dst());
    run(args(&["-a", "-X", "-A"], &sb)).ok();
    for rel in ["f", "plain", "d", "d/inner", "l"] {
        assert_eq!(attrs(&d.join(rel)), attrs(&s.join(rel)), "attributes of {rel}");
    }
    assert!(attrs(&d.join("f")).contains("user.colour=\"blue\""), "{}", attrs(&d.join("f")));
    assert!(acl(&d.join("f")).contains("user:65534:r--"), "{}", acl(&d.join("f")));
    assert!(acl(&d.join("d")).contains("default:user:65534:r-x"), "{}", acl(&d.join("d")));
    assert_trees_equal(&s, &d);
    let again = run(args(&["-XA", "-v"], &sb));
    assert!(again.stdout_lines().is_empty(), "second run changed: {}", again.stdout);
    // An xattr change alone (no content, mode or mtime change) is an update.
    setfattr(&s.join("f"), "user.colour", Some("green"));
    setfattr(&s.join("f"), "user.checksum", None);
    setfattr(&s.join("d"), "user.added", Some("1"));
    let r = run(args(&["-XA", "-v"], &sb));
    r.ok();
    let lines = r.stdout_lines();
    assert!(lines.contains(&"meta f"), "{lines:?}");
    assert!(lines.contains(&"meta d"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("copy")), "{lines:?}");
    assert_eq!(attrs(&d.join("f")), attrs(&s.join("f")));
    assert!(!attrs(&d.join("f")).contains("user.checksum"));
    assert_eq!(attrs(&d.join("d")), attrs(&s.join("d")));
    // An ACL removed in SOURCE is removed in DEST.
    setfacl(&s.join("f"), &["-b"]);
    run(args(&["-XA"], &sb)).ok();
    assert!(!acl(&d.join("f")).contains("65534"), "{}", acl(&d.join("f")));
    assert_trees_equal(&s, &d);
}

#[test]
fn x_and_a_copy_only_their_own_namespaces() {
    let sb = Sandbox::new();
    if !xattr_tools("x_and_a_copy_only_their_own_namespaces", &sb) {
        return;
    }
    attributed_source(&sb);
    let d = sb.dst();
    // Neither flag (as rsync -a): no xattrs, no ACLs.
    run(args(&["-a"], &sb)).ok();
    assert!(!attrs(&d.join("f")).contains("user."), "{}", attrs(&d.join("f")));
    assert!(!acl(&d.join("f")).contains("65534"));
    // -A alone: the ACLs, not user.*.
    run(args(&["-A"], &sb)).ok();
    assert!(acl(&d.join("f")).contains("user:65534:r--"), "{}", acl(&d.join("f")));
    assert!(!attrs(&d.join("f")).contains("user."), "{}", attrs(&d.join("f")));
    // -X alone: user.* as well; the ACLs it does not compare stay as they are.
    run(args(&["-X"], &sb)).ok();
    assert!(attrs(&d.join("f")).contains("user.colour=\"blue\""), "{}", attrs(&d.join("f")));
}

#[test]
fn xattrs_in_watch_mode() {
    let sb = Sandbox::new();
    if !xattr_tools("xattrs_in_watch_mode", &sb) {
        return;
    }
    attributed_source(&sb);
    let (s, d) = (sb.src(), sb.dst());
    let w = Proc::spawn(&args(&["-XA", "--watch", "--json"], &sb));
    w.wait_initial_sync(SYNC_TIMEOUT);
    assert_eq!(attrs(&d.join("f")), attrs(&s.join("f")));
    // An xattr change alone, on a file and on a directory.
    setfattr(&s.join("f"), "user.colour", Some("red"));
    setfattr(&s.join("d"), "user.dir", None);
    w.wait_for("the xattr changes in DEST", SYNC_TIMEOUT, |_| {
        attrs(&d.join("f")) == attrs(&s.join("f")) && attrs(&d.join("d")) == attrs(&s.join("d"))
    });
    // A new file with attributes and an ACL.
    let n = s.join("d/new");
    fs::write(&n, "new\n").unwrap();
    setfattr(&n, "user.tag", Some("fresh"));
    setfacl(&n, &["-m", "u:65534:rw"]);
    w.wait_for("d/new with its attributes", SYNC_TIMEOUT, |_| {
        d.join("d/new").exists() && attrs(&d.join("d/new")) == attrs(&n)
    });
    wait_synced(&w, &s, &d, "xattrs in watch mode");
    w.stop(libc::SIGTERM, SYNC_TIMEOUT);
}

#[test]
fn dest_without_xattr_support_warns_once() {
    let sb = Sandbox::new();
    if !xattr_tools("dest_without_xattr_support_warns_once", &sb) {
        return;
    }
    if let Some(why) = fuse_unavailable() {
        return skip("dest_without_xattr_support_warns_once", why);
    }
    attributed_source(&sb);
    for i in 0..5 {
        let p = sb.src().join(format!("more{i}"));
        fs::write(&p, "x").unwrap();
        setfattr(&p, "user.n", Some(&i.to_string()));
    }
    let lower = sb.join("lower");
    let mnt = sb.join("mnt");
    fs::create_dir_all(&lower).unwrap();
    fs::create_dir_all(&mnt).unwrap();
    let _m = BindMount::mount_with(&lower, &mnt, &["--xattr-none"]);
    // What bindfs --xattr-none gives: ENOTSUP for every xattr call.
    fs::write(mnt.join("probe"), "x").unwrap();
    let st =
        Command::new("setfattr").args(["-n", "user.a", "-v", "1"]).arg(mnt.join("probe")).output().unwrap();
    assert!(String::from_utf8_lossy(&st.stderr).contains("Operation not supported"), "{st:?}");
    fs::remove_file(mnt.join("probe")).unwrap();
    let dest = mnt.join("out");
    let r = run([OsString::from("-XA"), sb.src().into(), dest.clone().into()]);
    r.expect_code(0);
    let warnings: Vec<&str> =
        r.stderr.lines().filter(|l| l.contains("does not support extended attributes")).collect();
    assert_eq!(warnings.len(), 1, "one warning for the run: {}", r.stderr);
    assert!(!r.stderr.contains("error:"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(dest.join("f")).unwrap(), "contents\n");
    assert!(dest.join("more4").exists());
    // Again: still one warning at most, and no error.
    let again = run([OsString::from("-XA"), sb.src().into(), dest.into()]);
    again.expect_code(0);
    assert!(again.stderr.lines().filter(|l| l.contains("does not support extended attributes")).count() <= 1);
}

#[test]
fn remote_pairs_refuse_hard_links_xattrs_and_acls() {
    let sb = Sandbox::new();
    sb.src_tree().file("f", "x");
    for (flag, named) in [("-H", "-H/--hard-links"), ("-X", "-X/--xattrs"), ("-A", "-A/--acls")] {
        let r = run([OsString::from(flag), sb.src().into(), "127.0.0.1:/nowhere/dest".into()]);
        r.expect_code(2);
        assert!(
            r.stderr.contains(named) && r.stderr.contains("on this machine only"),
            "{flag}: {}",
            r.stderr
        );
    }
}

/// `--help` and `--man` document -H, -X, -A (and that -a, as rsync's, implies none of
/// them), the `hardlink` line and event, and --backup-dir over SFTP.
#[test]
fn help_and_manual_document_the_fidelity_flags() {
    let help = run(["--help"]);
    help.ok();
    for want in ["-H, --hard-links", "-X, --xattrs", "-A, --acls", "does not imply -H, -X or -A"] {
        assert!(help.stdout.contains(want), "--help lacks {want:?}:\n{}", help.stdout);
    }
    let man = run(["--man"]);
    man.ok();
    let page = man.stdout.replace(r"\-", "-").replace("\\\n", "");
    for want in [
        "hardlink docs/copy.txt => docs/guide.txt",
        "system.posix_acl_access",
        "one warning for the run",
        "hardlink@openssh.com",
        "tandem -aHAX",
        "hardlinked",
    ] {
        assert!(page.contains(want), "the manual lacks {want:?}");
    }
}

/// Not as root, a read-only file's or directory's user xattrs are still written (they
/// need write permission): on the temporary of a copy, on an attribute fix, on a
/// directory; modes stay.
#[test]
fn xattrs_of_read_only_files_without_root() {
    let sb = Sandbox::new();
    if !xattr_tools("xattrs_of_read_only_files_without_root", &sb) {
        return;
    }
    let t = sb.src_tree();
    t.file("ro", "read only\n").dir("rodir");
    setfattr(&t.p("ro"), "user.v", Some("1"));
    setfattr(&t.p("rodir"), "user.v", Some("1"));
    t.chmod("ro", 0o444).chmod("rodir", 0o555);
    fs::create_dir_all(sb.dst()).unwrap();
    chown_tree_for_unprivileged(&sb.src());
    chown_tree_for_unprivileged(&sb.dst());
    let go = || run_with(tandem_unprivileged(), args(&["-X"], &sb), std::time::Duration::from_secs(60));
    go().ok();
    let d = sb.dst().join("ro");
    assert!(attrs(&d).contains("user.v=\"1\""), "{}", attrs(&d));
    assert_eq!(fs::metadata(&d).unwrap().mode() & 0o7777, 0o444);
    assert!(attrs(&sb.dst().join("rodir")).contains("user.v=\"1\""));
    setfattr(&t.p("ro"), "user.v", Some("2"));
    setfattr(&t.p("rodir"), "user.v", Some("2"));
    let r = go();
    r.ok();
    assert!(attrs(&d).contains("user.v=\"2\""), "{}", attrs(&d));
    let rd = sb.dst().join("rodir");
    assert!(attrs(&rd).contains("user.v=\"2\""), "{}", attrs(&rd));
    assert_eq!(fs::metadata(&rd).unwrap().mode() & 0o7777, 0o555);
    assert_eq!(fs::metadata(&d).unwrap().mode() & 0o7777, 0o444);
    assert_trees_equal(&sb.src(), &sb.dst());
}

/// Watch mode without DEST watching: a DEST name replaced by a separate copy with the
/// same contents and times everywhere (directories' mtimes put back too) differs from
/// SOURCE only in its inode; the next verification (SIGHUP) links it again.
#[test]
fn hard_links_a_verification_relinks_a_dest_copy() {
    let sb = Sandbox::new();
    linked_source(&sb);
    let d = sb.dst();
    let w = Proc::spawn(&args(&["-H", "--watch", "--no-watch-dest", "--json"], &sb));
    w.wait_initial_sync(SYNC_TIMEOUT);
    assert_eq!(id(&d.join("b/h")), id(&d.join("a/f")));
    let times = |p: &Path| filetime::FileTime::from_last_modification_time(&fs::metadata(p).unwrap());
    let (root_t, b_t, h_t) = (times(&d), times(&d.join("b")), times(&d.join("b/h")));
    let tmp = d.join("b/h.copy");
    fs::copy(d.join("b/h"), &tmp).unwrap();
    filetime::set_file_mtime(&tmp, h_t).unwrap();
    fs::rename(&tmp, d.join("b/h")).unwrap();
    filetime::set_file_mtime(d.join("b"), b_t).unwrap();
    filetime::set_file_mtime(&d, root_t).unwrap();
    assert_ne!(id(&d.join("b/h")), id(&d.join("a/f")));
    let mark = w.mark();
    w.signal(libc::SIGHUP);
    w.wait_for("a hardlink event for b/h after the SIGHUP", SYNC_TIMEOUT, |w| {
        events_named(&w.events_since(mark), "hardlink").iter().any(|e| e["path"] == "b/h")
    });
    assert_eq!(id(&d.join("b/h")), id(&d.join("a/f")), "{}", w.dump());
    w.stop(libc::SIGTERM, SYNC_TIMEOUT);
}
