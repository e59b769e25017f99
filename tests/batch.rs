//! One-shot mirroring: correctness, idempotency, change detection,
//! deletion policy and safety guards.

mod util;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use util::*;

fn outside_with_target(sb: &Sandbox) -> Tree {
    let o = Tree::create(sb.outside());
    o.file("target.txt", "outside target\n");
    o
}

#[test]
fn mirrors_varied_tree_into_missing_dest() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    outside_with_target(&sb);
    build_varied(&src, &sb.outside());
    let src_before = snapshot(&sb.src());
    let outside_before = snapshot(&sb.outside());

    run([sb.src(), sb.dst()]).ok();

    assert_trees_equal(&sb.src(), &sb.dst());
    assert_eq!(temp_files(&sb.dst()), Vec::<std::path::PathBuf>::new(), "temp files left");
    assert_unchanged("SOURCE", &src_before, &snapshot(&sb.src()));
    assert_unchanged("outside dir", &outside_before, &snapshot(&sb.outside()));
}

#[test]
fn mirrors_varied_tree_into_stale_dest() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    outside_with_target(&sb);
    build_varied(&src, &sb.outside());
    build_stale_dest(&sb.dst_tree());
    let src_before = snapshot(&sb.src());
    let outside_before = snapshot(&sb.outside());

    run([sb.src(), sb.dst()]).ok();

    assert_trees_equal(&sb.src(), &sb.dst());
    assert!(temp_files(&sb.dst()).is_empty(), "temp files left: {:?}", temp_files(&sb.dst()));
    assert_unchanged("SOURCE", &src_before, &snapshot(&sb.src()));
    assert_unchanged("outside dir", &outside_before, &snapshot(&sb.outside()));
}

#[test]
fn sample_fixture_mirrors() {
    let sb = Sandbox::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample");
    assert!(fixture.join("latest").symlink_metadata().unwrap().file_type().is_symlink());
    run([fixture.as_path(), sb.dst().as_path()]).ok();
    assert_trees_equal(&fixture, &sb.dst());
}

#[test]
fn second_run_touches_nothing() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    outside_with_target(&sb);
    build_varied(&src, &sb.outside());
    build_stale_dest(&sb.dst_tree());
    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst());

    let before = ctimes(&sb.dst());
    let snap = snapshot(&sb.dst());
    run([sb.src(), sb.dst()]).ok();
    assert_unchanged("DEST ctimes after 2nd run", &before, &ctimes(&sb.dst()));
    assert_unchanged("DEST after 2nd run", &snap, &snapshot(&sb.dst()));

    let r = run(["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let evs = r.json_events();
    let changes = change_events(&evs);
    assert!(changes.is_empty(), "in-sync run emitted change events: {changes:?}");
    let s = summary(&evs);
    assert_eq!(count(s, "copied"), 0, "{s}");
    assert_eq!(count(s, "deleted"), 0, "{s}");
    assert_eq!(count(s, "errors"), 0, "{s}");
    assert_unchanged("DEST ctimes after --json run", &before, &ctimes(&sb.dst()));
}

#[test]
fn same_size_different_mtime_is_recopied() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("f.txt", "hello A\n").mtime("f.txt", BASE_SECS, 111);
    src.file("g.txt", "untouched\n").mtime("g.txt", BASE_SECS, 222);
    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst());

    src.rewrite("f.txt", "hello B\n").mtime("f.txt", BASE_SECS + 10, 333);
    let r = run(["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let evs = r.json_events();
    assert_eq!(paths_of(&evs, "copy"), vec!["f.txt".to_string()], "{r:?}");
    assert_eq!(read(&sb.dst().join("f.txt")), b"hello B\n");
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn chmod_only_change_is_meta_not_copy() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file_mode("f.sh", "#!/bin/sh\n", 0o644).mtime("f.sh", BASE_SECS, 5);
    src.file("other.txt", "x\n").mtime("other.txt", BASE_SECS, 6);
    run([sb.src(), sb.dst()]).ok();
    let ino_before = lstat(&sb.dst().join("f.sh")).ino();

    src.chmod("f.sh", 0o755);
    let r = run(["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let evs = r.json_events();
    assert!(paths_of(&evs, "copy").is_empty(), "chmod-only change caused a copy:\n{r:?}");
    assert!(paths_of(&evs, "meta").contains(&"f.sh".to_string()), "no meta event for f.sh:\n{r:?}");
    assert_eq!(lstat(&sb.dst().join("f.sh")).mode() & 0o7777, 0o755);
    assert_eq!(lstat(&sb.dst().join("f.sh")).ino(), ino_before, "file was replaced, not chmod'ed");
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn checksum_mode_compares_content() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("f.txt", "AAAA-content\n").mtime("f.txt", BASE_SECS, 77);
    src.file("g.txt", "same content\n").mtime("g.txt", BASE_SECS, 88);
    run([sb.src(), sb.dst()]).ok();

    // Corrupt DEST content while keeping size and mtime.
    let dst = Tree::create(sb.dst());
    let root_mtime = (lstat(&sb.dst()).mtime(), lstat(&sb.dst()).mtime_nsec() as u32);
    dst.rewrite("f.txt", "BBBB-content\n").mtime("f.txt", BASE_SECS, 77);
    dst.mtime("", root_mtime.0, root_mtime.1);

    // Quick check (size + mtime) considers it in sync.
    let r = run(["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    assert!(paths_of(&r.json_events(), "copy").is_empty(), "quick check copied:\n{r:?}");
    assert_eq!(read(&sb.dst().join("f.txt")), b"BBBB-content\n");

    // --checksum sees the difference and recopies only f.txt.
    let r = run(["--checksum".as_ref(), "--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    assert_eq!(paths_of(&r.json_events(), "copy"), vec!["f.txt".to_string()], "{r:?}");
    assert_eq!(read(&sb.dst().join("f.txt")), b"AAAA-content\n");
    assert_trees_equal(&sb.src(), &sb.dst());

    // -c again: contents equal, nothing copied, nothing touched.
    let before = ctimes(&sb.dst());
    let r = run(["-c".as_ref(), "--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let evs = r.json_events();
    assert!(change_events(&evs).is_empty(), "{r:?}");
    assert_unchanged("DEST ctimes after -c on equal trees", &before, &ctimes(&sb.dst()));
}

#[test]
fn modify_window_tolerates_small_mtime_differences() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("f.txt", "same size A\n").mtime("f.txt", BASE_SECS, 0);
    let dst = sb.dst_tree();
    dst.file("f.txt", "same size B\n").mtime("f.txt", BASE_SECS + 1, 0);

    for window in ["2s", "2"] {
        let r = run([
            "--modify-window".as_ref(),
            window.as_ref(),
            "--json".as_ref(),
            sb.src().as_os_str(),
            sb.dst().as_os_str(),
        ]);
        r.ok();
        assert!(
            paths_of(&r.json_events(), "copy").is_empty(),
            "--modify-window {window}: 1s difference caused a copy:\n{r:?}"
        );
        assert_eq!(read(&sb.dst().join("f.txt")), b"same size B\n", "window {window}");
    }

    // A window smaller than the difference: copied.
    let r = run([
        "--modify-window".as_ref(),
        "500ms".as_ref(),
        "--json".as_ref(),
        sb.src().as_os_str(),
        sb.dst().as_os_str(),
    ]);
    r.ok();
    assert_eq!(paths_of(&r.json_events(), "copy"), vec!["f.txt".to_string()], "{r:?}");
    assert_eq!(read(&sb.dst().join("f.txt")), b"same size A\n");
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn no_delete_keeps_dest_only_entries_default_deletes_them() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("keep.txt", "keep\n").file("d/k.txt", "k\n");
    run([sb.src(), sb.dst()]).ok();

    let dst = Tree::create(sb.dst());
    dst.file("extra.txt", "extra\n")
        .file("extra_dir/n/m.txt", "nested\n")
        .dir("extra_dir/empty")
        .file("d/extra_in_d.txt", "x\n")
        .symlink("extra_link", "keep.txt");
    src.file("new.txt", "new\n");

    run(["--no-delete".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]).ok();
    for p in ["extra.txt", "extra_dir/n/m.txt", "extra_dir/empty", "d/extra_in_d.txt", "extra_link"] {
        assert!(exists_nofollow(&sb.dst().join(p)), "--no-delete removed {p}");
    }
    assert_eq!(read(&sb.dst().join("new.txt")), b"new\n");

    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst());
}

/// A one-shot run streams, so the number of deletions is known only at its end: past
/// `--max-delete` it holds back every deletion (as watch mode does) while the other
/// changes are applied, and exits 4 saying so (issue 17; this test used to assert
/// that nothing at all was changed). A dry run changes nothing and ends the same way.
#[test]
fn max_delete_holds_back_every_deletion_and_syncs_the_rest() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.txt", "a\n").file("b.txt", "b\n").file("sub/f.txt", "f\n").file("sub/t", "t\n");
    run([sb.src(), sb.dst()]).ok();

    let dst = Tree::create(sb.dst());
    for i in 1..=3 {
        dst.file(format!("x{i}.txt"), "doomed\n");
    }
    // A directory of 2 entries: 3 deletions, 6 in all.
    dst.file("sub/gone/one", "1\n").file("sub/gone/two", "2\n");
    // Pending non-delete changes too, and a type change (a replacement, not held).
    src.file("c.txt", "new\n").rewrite("a.txt", "changed a\n").file("sub/new.txt", "n\n");
    src.mtime("a.txt", BASE_SECS + 99, 1);
    src.remove("sub/t").file("sub/t/inside", "now a directory\n");
    src.stamp_all();

    let doomed = ["x1.txt", "x2.txt", "x3.txt", "sub/gone", "sub/gone/one", "sub/gone/two"];
    let before = snapshot(&sb.dst());
    let dry = run([
        "-n".as_ref(),
        "--max-delete".as_ref(),
        "5".as_ref(),
        sb.src().as_os_str(),
        sb.dst().as_os_str(),
    ]);
    dry.expect_code(4);
    assert!(!dry.stdout_lines().iter().any(|l| l.starts_with("delete x")), "{dry:?}");
    assert_unchanged("DEST after a dry run", &before, &snapshot(&sb.dst()));

    let r = run(["--max-delete".as_ref(), "5".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("6 entries, more than --max-delete 5") && r.stderr.contains("held back"),
        "refusal without explanation:\n{r:?}"
    );
    for p in doomed {
        assert!(exists_nofollow(&sb.dst().join(p)), "{p} deleted past --max-delete:\n{r:?}");
    }
    // Everything else was synced, directory attributes included.
    assert_trees_equal_ignoring(&sb.src(), &sb.dst(), &doomed.map(Path::new));
    assert!(lstat(&sb.dst().join("sub/t")).is_dir());

    let r = run([
        "--json".as_ref(),
        "--max-delete".as_ref(),
        "6".as_ref(),
        sb.src().as_os_str(),
        sb.dst().as_os_str(),
    ]);
    r.ok();
    let mut deleted = paths_of(&r.json_events(), "delete");
    deleted.sort();
    let mut want: Vec<String> = doomed.iter().map(|p| p.to_string()).collect();
    want.sort();
    assert_eq!(deleted, want, "{r:?}");
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn empty_source_is_refused_unless_allowed() {
    let sb = Sandbox::new();
    sb.src_tree();
    let dst = sb.dst_tree();
    dst.file("precious.txt", "precious\n").file("sub/more.txt", "more\n").symlink("ln", "precious.txt");

    let before = snapshot(&sb.dst());
    let r = run([sb.src(), sb.dst()]);
    r.expect_code(4);
    assert!(!r.stderr.trim().is_empty(), "refusal without explanation:\n{r:?}");
    assert_unchanged("DEST after refused empty source", &before, &snapshot(&sb.dst()));

    run(["--allow-empty-source".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]).ok();
    assert!(listing(&sb.dst()).is_empty(), "DEST not emptied: {:?}", listing(&sb.dst()));
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn dry_run_prints_plan_and_changes_nothing() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("same.txt", "same\n")
        .file("new.txt", "new\n")
        .file("newdir/inner.txt", "inner\n")
        .file("changed.txt", "changed in source\n")
        .symlink("link", "same.txt");
    src.stamp_all();
    let dst = sb.dst_tree();
    dst.file("same.txt", "same\n").file("changed.txt", "old\n").file("doomed.txt", "to be deleted\n");
    set_mtime(
        &dst.p("same.txt"),
        lstat(&src.p("same.txt")).mtime(),
        lstat(&src.p("same.txt")).mtime_nsec() as u32,
    );

    let before = snapshot(&sb.dst());
    let r = run(["-n".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    for p in ["new.txt", "newdir", "newdir/inner.txt", "changed.txt", "link", "doomed.txt"] {
        assert!(r.stdout.contains(p), "dry-run plan does not mention {p}:\n{r:?}");
    }
    for line in r.stdout_lines() {
        let verb = line.split_whitespace().next().unwrap_or("");
        assert!(CHANGE_EVENTS.contains(&verb), "unexpected plan line {line:?}:\n{r:?}");
    }
    assert_unchanged("DEST after --dry-run", &before, &snapshot(&sb.dst()));

    // Long form, missing DEST: nothing is created, every source path listed.
    let missing = sb.join("missing");
    let top_before = listing(sb.path());
    let r = run(["--dry-run".as_ref(), sb.src().as_os_str(), missing.as_os_str()]);
    r.ok();
    assert!(!exists_nofollow(&missing), "--dry-run created DEST");
    assert_eq!(listing(sb.path()), top_before, "--dry-run created something next to DEST");
    for p in ["same.txt", "new.txt", "newdir/inner.txt", "changed.txt", "link"] {
        assert!(r.stdout.contains(p), "dry-run plan does not mention {p}:\n{r:?}");
    }
}

#[test]
fn never_writes_through_dest_symlinks() {
    let sb = Sandbox::new();
    let outside = Tree::create(sb.outside());
    outside
        .file("dir/keep.txt", "outside original\n")
        .file("dir2/untouched.txt", "outside 2\n")
        .file("file", "outside file\n");
    let src = sb.src_tree();
    src.file("sub/keep.txt", "source version\n")
        .file("sub/nested/b.txt", "nested\n")
        .file("deep/sub2/x.txt", "x\n")
        .file("f", "regular file in source\n");
    src.stamp_all();
    let dst = sb.dst_tree();
    dst.symlink("sub", sb.outside().join("dir"))
        .symlink("f", "../outside/file")
        .dir("deep")
        .symlink("deep/sub2", sb.outside().join("dir2"));
    let outside_before = snapshot(&sb.outside());

    run([sb.src(), sb.dst()]).ok();

    assert!(lstat(&sb.dst().join("sub")).is_dir(), "DEST/sub is not a real directory");
    assert!(lstat(&sb.dst().join("deep/sub2")).is_dir(), "DEST/deep/sub2 is not a real directory");
    assert!(lstat(&sb.dst().join("f")).is_file(), "DEST/f is not a regular file");
    assert_unchanged("outside dir", &outside_before, &snapshot(&sb.outside()));
    assert_eq!(read(&sb.outside().join("file")), b"outside file\n");
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn fifo_in_source_is_skipped_with_warning() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.txt", "a\n").file("d/b.txt", "b\n").fifo("the_pipe").fifo("d/nested_pipe");
    src.stamp_all();

    let r = run_timeout([sb.src(), sb.dst()], Duration::from_secs(30));
    r.ok();
    assert!(r.stderr.contains("the_pipe"), "no warning naming the FIFO:\n{r:?}");
    assert!(!exists_nofollow(&sb.dst().join("the_pipe")), "FIFO created in DEST");
    assert!(!exists_nofollow(&sb.dst().join("d/nested_pipe")), "FIFO created in DEST");
    assert_trees_equal_ignoring(&sb.src(), &sb.dst(), &[Path::new("the_pipe"), Path::new("d/nested_pipe")]);
}

/// A SOURCE directory that cannot be read is created in DEST usable by its owner
/// (u+rwx), not with its real mode 000: a later run as the same user reports the same
/// one error, not one more for DEST. Once it can be read, its contents and real mode
/// are mirrored.
#[test]
fn unreadable_source_directory_is_created_usable_by_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.txt", "a\n").file("locked/inner.txt", "cannot list me\n");
    chown_tree_for_unprivileged(sb.path());
    src.chmod("locked", 0o000);
    struct Restore(std::path::PathBuf);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
        }
    }
    let _restore = Restore(src.p("locked"));
    if fs::read_dir(src.p("locked")).is_ok() && !is_root() {
        return skip(
            "unreadable_source_directory_is_created_usable_by_its_owner",
            "permissions not enforced",
        );
    }
    let json = |r: &Run| count(summary(&r.json_events()), "errors");
    for round in 1..=2 {
        let r = run_with(
            tandem_unprivileged(),
            ["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()],
            RUN_TIMEOUT,
        );
        r.expect_code(3);
        assert_eq!(json(&r), 1, "run {round}: expected exactly the one SOURCE error:\n{r:?}");
        let evs = r.json_events();
        let errors = events_named(&evs, "error");
        assert_eq!(errors[0]["side"], "source", "run {round}: {r:?}");
        assert_eq!(event_path(errors[0]), "locked", "run {round}: {r:?}");
        let mode = lstat(&sb.dst().join("locked")).permissions().mode() & 0o7777;
        assert_eq!(
            mode & 0o700,
            0o700,
            "run {round}: DEST/locked has mode {mode:o}, not usable by its owner"
        );
    }
    assert_eq!(read(&sb.dst().join("a.txt")), b"a\n");

    // Readable again (r-x for its owner only): contents and the real mode follow.
    src.chmod("locked", 0o500);
    let r = run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT);
    r.ok();
    assert_eq!(read(&sb.dst().join("locked/inner.txt")), b"cannot list me\n");
    assert_eq!(lstat(&sb.dst().join("locked")).permissions().mode() & 0o7777, 0o500);
    assert_trees_equal(&sb.src(), &sb.dst());
}

/// Unreadable SOURCE entries. Root bypasses permission checks, so as root
/// the binary is run as `nobody` (uid/gid 65534) on a tree owned by nobody.
#[test]
fn unreadable_source_entries_are_per_entry_errors() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.txt", "a\n")
        .file("d/b.txt", "b\n")
        .file("secret", "cannot read me\n")
        .file("locked/inner.txt", "cannot list me\n");

    chown_tree_for_unprivileged(sb.path());
    src.chmod("secret", 0o000).chmod("locked", 0o000);
    // Restore permissions on the way out so the temp dir can be removed.
    struct Restore(std::path::PathBuf);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = fs::set_permissions(&self.0, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        }
    }
    let _restore = Restore(src.p("locked"));
    // Sanity: the unprivileged user really cannot read it.
    let probe = {
        let mut c = std::process::Command::new("cat");
        if is_root() {
            use std::os::unix::process::CommandExt;
            c.uid(NOBODY).gid(NOBODY);
        }
        run_with(assert_cmd::Command::from_std(c), [src.p("secret")], RUN_TIMEOUT)
    };
    if probe.code == Some(0) {
        skip("unreadable_source_entries_are_per_entry_errors", "cannot create an unreadable file here");
        return;
    }

    let r = run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT);
    r.expect_code(3);
    assert!(r.stderr.contains("secret"), "error does not name the file:\n{r:?}");
    assert!(r.stderr.contains("locked"), "error does not name the directory:\n{r:?}");
    assert_eq!(read(&sb.dst().join("a.txt")), b"a\n");
    assert_eq!(read(&sb.dst().join("d/b.txt")), b"b\n");
    assert_trees_equal(&sb.src().join("d"), &sb.dst().join("d"));
    assert!(temp_files(&sb.dst()).is_empty(), "temp files left: {:?}", temp_files(&sb.dst()));

    let r = run_with(
        tandem_unprivileged(),
        ["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()],
        RUN_TIMEOUT,
    );
    r.expect_code(3);
    let evs = r.json_events();
    let errors = events_named(&evs, "error");
    for e in &errors {
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "error event without message: {e}");
    }
    let paths = paths_of(&evs, "error");
    assert!(paths.contains(&"secret".to_string()), "no error event for secret: {paths:?}\n{r:?}");
    assert!(paths.contains(&"locked".to_string()), "no error event for locked: {paths:?}\n{r:?}");
    assert_eq!(count(summary(&evs), "errors"), errors.len() as u64, "{r:?}");
}

/// As root, owner and group are mirrored too (for symlinks as well).
#[test]
fn owners_are_preserved_as_root() {
    if !is_root() {
        skip("owners_are_preserved_as_root", "needs root to chown");
        return;
    }
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("f.txt", "f\n").file("d/g.txt", "g\n").symlink("ln", "f.txt");
    lchown(&src.p("f.txt"), 1234, 5678);
    lchown(&src.p("d"), 4321, 8765);
    lchown(&src.p("d/g.txt"), 0, 5678);
    lchown(&src.p("ln"), 111, 222);
    src.stamp_all();
    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst()); // checks uid/gid when root

    let ino = lstat(&sb.dst().join("f.txt")).ino();
    lchown(&src.p("f.txt"), 999, 999);
    let r = run(["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let evs = r.json_events();
    assert!(paths_of(&evs, "copy").is_empty(), "owner-only change caused a copy:\n{r:?}");
    assert!(paths_of(&evs, "meta").contains(&"f.txt".to_string()), "{r:?}");
    assert_eq!(lstat(&sb.dst().join("f.txt")).ino(), ino);
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn many_files_and_deep_nesting() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    for d in 0..40 {
        for f in 0..50 {
            src.file(format!("d{d:02}/f{f:02}.txt"), format!("dir {d} file {f}\n"));
        }
    }
    let deep: std::path::PathBuf = (0..60).map(|i| format!("level{i}")).collect();
    src.file(deep.join("bottom.txt"), "bottom\n");
    src.symlink(deep.join("up"), "../../..");
    src.stamp_all();
    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst());
    let before = ctimes(&sb.dst());
    run([sb.src(), sb.dst()]).ok();
    assert_unchanged("DEST ctimes after 2nd run", &before, &ctimes(&sb.dst()));
}

/// Without root privileges, read-only directories and files in SOURCE must
/// still be mirrored (the directory can only get its final mode after its
/// contents are written). As root, runs as `nobody`.
#[test]
fn unprivileged_mirror_with_readonly_entries() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    outside_with_target(&sb);
    build_varied(&src, &sb.outside());
    chown_tree_for_unprivileged(sb.path());
    let r = run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT);
    r.ok();
    assert_trees_equal(&sb.src(), &sb.dst());
    let before = ctimes(&sb.dst());
    run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT).ok();
    assert_unchanged("DEST ctimes after 2nd run", &before, &ctimes(&sb.dst()));
}

/// Updating, adding and deleting entries inside a read-only (0555) DEST
/// directory as an unprivileged user. (rsync itself fails here; a mirror
/// tool should not leave DEST permanently out of sync because of it.)
#[test]
fn unprivileged_update_inside_readonly_dir() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("ro/a.txt", "a\n").file("ro/gone.txt", "gone\n").file("ro/sub/s.txt", "s\n");
    src.chmod("ro/sub", 0o555).chmod("ro", 0o555);
    src.stamp_all();
    chown_tree_for_unprivileged(sb.path());
    run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT).ok();
    assert_trees_equal(&sb.src(), &sb.dst());

    // Change SOURCE (briefly making its dirs writable, as root or owner).
    src.chmod("ro", 0o755).chmod("ro/sub", 0o755);
    src.file("ro/a.txt", "a changed\n").remove("ro/gone.txt").file("ro/new.txt", "new\n");
    src.file("ro/sub/s.txt", "s changed!\n");
    src.chmod("ro/sub", 0o555).chmod("ro", 0o555);
    src.stamp_all();
    chown_tree_for_unprivileged(&sb.src());
    let r = run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT);
    r.ok();
    assert_trees_equal(&sb.src(), &sb.dst());
}

/// A DEST directory holding excluded entries where SOURCE now has a file: the excluded
/// entries are not deleted (only the others), and the path is reported (exit 3).
#[test]
fn type_change_keeps_excluded_entries_and_reports() {
    let sb = Sandbox::new();
    sb.src_tree().file("cache", "now a file\n");
    sb.dst_tree().file("cache/k.log", "keep\n").file("cache/x.txt", "gone\n");
    let r = run([OsString::from("--exclude"), "*.log".into(), sb.src().into(), sb.dst().into()]);
    r.expect_code(3);
    assert!(r.stderr.contains("cache") && r.stderr.contains("excluded"), "{r:?}");
    assert_eq!(fs::read(sb.dst().join("cache/k.log")).unwrap(), b"keep\n");
    assert!(!exists_nofollow(&sb.dst().join("cache/x.txt")));
    // With --delete-excluded the file takes its place.
    let r = run([
        OsString::from("--exclude"),
        "*.log".into(),
        "--delete-excluded".into(),
        sb.src().into(),
        sb.dst().into(),
    ]);
    r.ok();
    assert_eq!(fs::read(sb.dst().join("cache")).unwrap(), b"now a file\n");
}

/// With --json the last stdout line is a summary even when the run stops early: a
/// configuration error (exit 2), a refusal (exit 4), a fatal error (exit 1).
#[test]
fn json_ends_with_a_summary_on_every_exit() {
    let sb = Sandbox::new();
    sb.src_tree().file("a", "a");
    sb.dst_tree().file("old", "x");
    let empty = sb.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let cases: Vec<(Vec<OsString>, i32)> = vec![
        (vec!["--json".into(), sb.src().into(), sb.src().into()], 2),
        (vec!["--json".into(), "--exclude".into(), "[z-a".into(), sb.src().into(), sb.dst().into()], 2),
        (vec!["--json".into(), empty.clone().into(), sb.dst().into()], 4),
        (vec!["--json".into(), "--max-delete".into(), "0".into(), sb.src().into(), sb.dst().into()], 4),
        (vec!["--json".into(), sb.src().into(), "/proc/no/such/dir".into()], 1),
    ];
    for (args, code) in cases {
        let r = run(args.clone());
        r.expect_code(code);
        let evs = r.json_events();
        let last = evs.last().unwrap_or_else(|| panic!("{args:?}: no JSON at all:\n{r:?}"));
        assert_eq!(last["event"], "summary", "{args:?}: last line is not a summary:\n{r:?}");
        assert_eq!(last["exit_code"], code, "{args:?}");
        assert!(
            evs.iter().any(|e| e["event"] == "error" && e["side"] == ""),
            "{args:?}: no run-level error event:\n{r:?}"
        );
    }
}

/// An empty SOURCE over a DEST that holds only excluded entries and leftover
/// temporaries is no accident: not refused.
#[test]
fn empty_source_guard_ignores_excluded_and_temporary_entries() {
    let sb = Sandbox::new();
    sb.src_tree();
    sb.dst_tree().file("keep.log", "x").file(".tandem-1-2.tmp", "partial");
    let r = run([OsString::from("--exclude"), "*.log".into(), sb.src().into(), sb.dst().into()]);
    r.ok();
    assert!(exists_nofollow(&sb.dst().join("keep.log")));
    assert!(!exists_nofollow(&sb.dst().join(".tandem-1-2.tmp")));
}

/// `--bwlimit` caps the throughput of all copying workers together: 4 MiB in four
/// files at 2 MiB/s take 2 s (±20 %), and the mirror is exact.
#[test]
fn bwlimit_caps_copy_throughput_across_workers() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    for i in 0..4 {
        src.file(format!("d{i}/f.bin"), pseudo_random(1 << 20, i));
    }
    let started = std::time::Instant::now();
    let r = run(["--bwlimit".as_ref(), "2M".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    let took = started.elapsed().as_secs_f64();
    r.ok();
    assert_trees_equal(&sb.src(), &sb.dst());
    assert!((1.6..=2.4).contains(&took), "4 MiB at 2 MiB/s took {took:.2}s, not 2s ± 20 %:\n{r:?}");

    // Without a limit the same copy is far quicker (the limit is what took the time).
    let other = sb.join("unlimited");
    let started = std::time::Instant::now();
    run([sb.src(), other.clone()]).ok();
    let free = started.elapsed().as_secs_f64();
    assert!(free < 1.0, "an unlimited 4 MiB copy took {free:.2}s");
}

/// `--backup-dir DIR`: what a sync deletes or overwrites is moved to DIR under its
/// relative path (a removed directory whole), with `--suffix` for repeated versions;
/// DIR inside DEST is left out of the mirror (also with --delete-excluded); DIR beside
/// DEST works the same; DIR in SOURCE, on another file system, or `--suffix` alone are
/// usage errors.
#[test]
fn backup_dir_keeps_what_is_deleted_or_overwritten() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.txt", "version 1\n").file("d/b.txt", "b\n").file("e/f/g.txt", "g\n").symlink("ln", "a.txt");
    src.stamp_all();
    let (s, d) = (sb.src(), sb.dst());
    run([&s, &d]).ok();
    let inode_before = std::os::unix::fs::MetadataExt::ino(&lstat(&d.join("a.txt")));
    src.file("a.txt", "version 2\n").remove("d/b.txt").remove("e").remove("ln").symlink("ln", "d");
    let r = run(["--backup-dir".as_ref(), ".old".as_ref(), s.as_os_str(), d.as_os_str()]);
    r.ok();
    let old = d.join(".old");
    assert_eq!(read(&old.join("a.txt")), b"version 1\n", "{r:?}");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&lstat(&old.join("a.txt"))),
        inode_before,
        "not moved by link"
    );
    assert_eq!(read(&old.join("d/b.txt")), b"b\n");
    assert_eq!(read(&old.join("e/f/g.txt")), b"g\n");
    assert_eq!(fs::read_link(old.join("ln")).unwrap(), Path::new("a.txt"));
    assert_trees_equal_ignoring(&s, &d, &[Path::new(".old")]);

    // A suffix keeps each version; the backup directory survives --delete-excluded and
    // a run without --backup-dir leaves it alone too.
    src.file("a.txt", "version 3\n");
    let r = run(["--backup-dir", ".old", "--suffix", ".2", "--delete-excluded", "--exclude", "*.tmp"]
        .iter()
        .map(std::ffi::OsStr::new)
        .chain([s.as_os_str(), d.as_os_str()])
        .collect::<Vec<_>>());
    r.ok();
    assert_eq!(read(&old.join("a.txt")), b"version 1\n");
    assert_eq!(read(&old.join("a.txt.2")), b"version 2\n");
    assert_eq!(read(&d.join("a.txt")), b"version 3\n");
    // Without a suffix a later backup replaces the earlier one.
    src.file("a.txt", "version 4\n");
    run(["--backup-dir".as_ref(), ".old".as_ref(), s.as_os_str(), d.as_os_str()]).ok();
    assert_eq!(read(&old.join("a.txt")), b"version 3\n");
    assert_trees_equal_ignoring(&s, &d, &[Path::new(".old")]);

    // Beside DEST, on the same file system.
    let beside = sb.join("kept");
    src.remove("a.txt");
    let r = run(["--backup-dir".as_ref(), beside.as_os_str(), s.as_os_str(), d.as_os_str()]);
    r.ok();
    assert_eq!(read(&beside.join("a.txt")), b"version 4\n");
    assert_eq!(
        read(&beside.join(".old/a.txt")),
        b"version 3\n",
        "the old backup dir is an entry like any other now"
    );

    // Usage errors.
    for (args, token) in [
        (vec!["--backup-dir".into(), s.join("bk").into_os_string()], "SOURCE"),
        (vec!["--backup-dir".into(), "/dev/shm/tandem-elsewhere".into()], "file system"),
        (vec!["--suffix".into(), ".1".into()], "--suffix needs --backup-dir"),
    ] {
        let mut a: Vec<std::ffi::OsString> = args;
        a.extend([s.clone().into_os_string(), sb.join("new").into_os_string()]);
        let r = run(&a);
        r.expect_code(2);
        assert!(r.stderr.contains(token), "{a:?}: {r:?}");
        assert!(!exists_nofollow(&sb.join("new")));
    }
}

// ---------------------------------------------------------------------------
// Streaming (issue 17): a one-shot run goes a directory at a time
// ---------------------------------------------------------------------------

/// A deep chain of directories and a wide one, mirrored, changed at the bottom and in
/// the middle, mirrored again: exact trees (directory mtimes included), and a summary
/// whose `scanned` counts every SOURCE entry, whether run in parallel (no output) or
/// in path order (`--json`).
#[test]
fn deep_and_wide_trees_stream() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    let deep: std::path::PathBuf = (0..150).map(|i| format!("d{i}")).collect();
    src.file(deep.join("bottom.txt"), "bottom\n").file("deep_side/x.txt", "x\n");
    for i in 0..3000 {
        src.file(format!("wide/f{i:04}.txt"), format!("{i}\n"));
    }
    for i in 0..40 {
        src.file(format!("wide/sub{i:02}/inner.txt"), format!("{i}\n"));
    }
    src.stamp_all();
    let entries = walk(&sb.src()).len() as u64 - 1; // the root is not an entry
    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst());

    src.rewrite(deep.join("bottom.txt"), "changed bottom\n").file(deep.join("d150/new.txt"), "n\n");
    for i in (0..3000).step_by(7) {
        src.remove(format!("wide/f{i:04}.txt"));
    }
    src.remove("wide/sub07").file("wide/sub07", "a file now\n");
    let entries_after = walk(&sb.src()).len() as u64 - 1;
    let r = run(["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    assert_trees_equal(&sb.src(), &sb.dst());
    let evs = r.json_events();
    let summary = evs.last().expect("summary");
    assert_eq!(summary["scanned"], entries_after, "{summary}");
    // 429 files and sub07/inner.txt, then sub07 itself.
    assert_eq!(summary["deleted"], 429 + 2, "{summary}");
    assert_eq!(summary["copied"], 3, "{summary}");
    assert_eq!(summary["mkdir"], 1, "{summary}");

    // A no-op run, in parallel: nothing to do, every entry counted once.
    let r = run([
        "--json".as_ref(),
        "--progress".as_ref(),
        "none".as_ref(),
        sb.src().as_os_str(),
        sb.dst().as_os_str(),
    ]);
    r.ok();
    let s = r.json_events().last().cloned().expect("summary");
    assert_eq!(
        (s["scanned"].as_u64(), s["unchanged"].as_u64()),
        (Some(entries_after), Some(entries_after)),
        "{s}"
    );
    let r = run([sb.src(), sb.dst()]);
    r.ok();
    assert!(r.stderr.contains(&format!("{} entries scanned", thousands(entries_after))), "{r:?}");
    assert!(entries > entries_after);
}

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

/// Deletions run children first, and every directory ends with SOURCE's mode and
/// mtime even though entries were created and removed in it (the attributes are set
/// once its contents are done), read-only directories included; itemized lines come
/// in the dry run's order.
#[test]
fn deletions_children_first_and_directory_attributes_last() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("keep/a.txt", "a\n").file("ro/inside.txt", "i\n").file("z.txt", "z\n");
    src.stamp_all();
    run([sb.src(), sb.dst()]).ok();
    let dst = Tree::create(sb.dst());
    dst.file("gone/a/b/f.txt", "f\n").file("gone/a/g.txt", "g\n").file("gone/h.txt", "h\n");
    dst.file("keep/extra/deeper/e.txt", "e\n");
    src.file("keep/new/n.txt", "n\n").file("ro/more.txt", "m\n").file("fresh/x/y.txt", "y\n");
    src.stamp_all();
    src.chmod("ro", 0o555).chmod("fresh/x", 0o500);
    let _open = Restore(vec![src.p("ro"), src.p("fresh/x"), sb.dst().join("ro"), sb.dst().join("fresh/x")]);

    let want = run(["-n".as_ref(), "-v".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    want.ok();
    let r = run(["-v".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let lines = r.stdout_lines();
    assert_eq!(lines, want.stdout_lines(), "-v lines are not in the dry run's order");
    let at = |l: &str| lines.iter().position(|x| *x == l).unwrap_or_else(|| panic!("no {l:?} in {lines:?}"));
    assert!(at("delete gone/a/b/f.txt") < at("delete gone/a/b"));
    assert!(at("delete gone/a/b") < at("delete gone/a"));
    assert!(at("delete gone/a/g.txt") < at("delete gone/a"));
    assert!(at("delete gone/a") < at("delete gone") && at("delete gone/h.txt") < at("delete gone"));
    assert!(at("delete keep/extra/deeper/e.txt") < at("delete keep/extra/deeper"));
    assert!(
        at("mkdir fresh/") < at("mkdir fresh/x/")
            && at("mkdir fresh/x/") < at("copy fresh/x/y.txt (2 bytes)")
    );
    assert!(at("copy ro/more.txt (2 bytes)") < at("meta ro"));
    // The last line is the root's own attributes, restored after its contents.
    assert_eq!(lines.last(), Some(&"meta ."), "{lines:?}");
    assert_trees_equal(&sb.src(), &sb.dst());

    // The same changes applied in parallel (nothing printed) end the same.
    let dst2 = sb.join("second");
    run([sb.src(), dst2.clone()]).ok();
    Tree::create(&dst2).chmod("ro", 0o755).file("ro/stale", "s\n").file("gone2/q/r", "r\n");
    run([sb.src(), dst2.clone()]).ok();
    assert_trees_equal(&sb.src(), &dst2);
    chmod(&dst2.join("ro"), 0o755);
    chmod(&dst2.join("fresh/x"), 0o755);
}

/// Restores a directory's mode (u+rwx) on drop, so the sandbox can be removed.
struct Restore(Vec<std::path::PathBuf>);

impl Drop for Restore {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        }
    }
}

/// A SOURCE directory that cannot be read, met in the middle of the walk: reported
/// with its path (exit 3), what DEST holds there kept as it is, a new one created
/// empty (and open to its owner, so that a later run can fill it), and the
/// directories after it still synced.
#[test]
fn unreadable_directory_mid_tree_is_skipped_and_the_walk_goes_on() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a/ok.txt", "a\n").file("m/locked/secret.txt", "s\n").file("z/after.txt", "z\n");
    src.stamp_all();
    chown_tree_for_unprivileged(sb.path());
    run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT).ok();

    src.file("m/locked/more.txt", "more\n").file("m/newlocked/x.txt", "x\n").file("z/new.txt", "new\n");
    src.file("a/new.txt", "new a\n");
    chown_tree_for_unprivileged(&sb.src());
    let _open = Restore(vec![src.p("m/locked"), src.p("m/newlocked")]);
    src.chmod("m/locked", 0o000).chmod("m/newlocked", 0o000);
    if fs::read_dir(src.p("m/locked")).is_ok() && !is_root() {
        return skip(
            "unreadable_directory_mid_tree_is_skipped_and_the_walk_goes_on",
            "permission bits are not enforced here",
        );
    }
    for args in [&[][..], &["-v"][..]] {
        let mut a: Vec<OsString> = args.iter().map(OsString::from).collect();
        a.push(sb.src().into());
        a.push(sb.dst().into());
        let r = run_with(tandem_unprivileged(), a, RUN_TIMEOUT);
        if r.code == Some(0) {
            return skip(
                "unreadable_directory_mid_tree_is_skipped_and_the_walk_goes_on",
                "permission bits are not enforced here",
            );
        }
        r.expect_code(3);
        assert!(r.stderr.contains("m/locked") && r.stderr.contains("m/newlocked"), "{r:?}");
        assert_eq!(read(&sb.dst().join("m/locked/secret.txt")), b"s\n", "DEST's copy lost:\n{r:?}");
        assert!(!exists_nofollow(&sb.dst().join("m/locked/more.txt")));
        assert!(lstat(&sb.dst().join("m/newlocked")).is_dir(), "{r:?}");
        assert_eq!(listing(&sb.dst().join("m/newlocked")), Vec::<OsString>::new());
        assert_eq!(lstat(&sb.dst().join("m/newlocked")).mode() & 0o700, 0o700);
        assert_eq!(read(&sb.dst().join("z/new.txt")), b"new\n", "the walk stopped at the error:\n{r:?}");
        assert_eq!(read(&sb.dst().join("a/new.txt")), b"new a\n");
    }
    // Readable again: the next run fills it in.
    src.chmod("m/locked", 0o755).chmod("m/newlocked", 0o755);
    run_with(tandem_unprivileged(), [sb.src(), sb.dst()], RUN_TIMEOUT).ok();
    assert_trees_equal(&sb.src(), &sb.dst());
}

/// The first pass that finds bad patterns before anything is changed reads only the
/// rule files the run would read: one inside an excluded directory is no error.
#[test]
fn rule_file_in_an_excluded_directory_is_not_read() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "/skip/\n")
        .file("skip/.syncignore", "[z-a\n")
        .file("skip/x", "x\n")
        .file("a/y", "y\n");
    run([sb.src(), sb.dst()]).ok();
    assert!(!exists_nofollow(&sb.dst().join("skip")));
    assert_eq!(read(&sb.dst().join("a/y")), b"y\n");
    // One that is read, deep down in a directory without subdirectories (which that
    // pass does not list) and in one with them: exit 2, nothing changed.
    for (bad, other) in [("m/n/o/.syncignore", "m/n/o/f"), ("p/q/.syncignore", "p/q/r/f")] {
        src.file(bad, "ok\n[z-a\n").file(other, "f\n").file("a/new", "new\n");
        let before = snapshot(&sb.dst());
        let r = run([sb.src(), sb.dst()]);
        r.expect_code(2);
        assert!(r.stderr.contains(&format!("{bad}:2")), "{r:?}");
        assert_unchanged("DEST after a bad pattern", &before, &snapshot(&sb.dst()));
        src.remove(bad);
    }
}

/// A directory DEST does not have is copied whole, its files' attributes read from the
/// files as they are opened (no stat of each during the listing): modes, mtimes, sizes,
/// empty and sparse files come out the same as from a run that lists every size
/// (`--progress lines`, `-v`), and the summaries count the same bytes.
#[test]
fn files_of_new_directories_keep_their_attributes_however_they_are_listed() {
    let sb = Sandbox::new_fast();
    let src = sb.src_tree();
    src.file_mode("a/private", "secret\n", 0o600)
        .file_mode("a/tool", "#!/bin/sh\n", 0o755)
        .file_mode("a/b/frozen", "read only\n", 0o444)
        .file("a/b/empty", "")
        .file("a/b/c/d/deep", "deep\n")
        .symlink("a/b/link", "../private")
        .mtime("a/tool", 1_000_000_000, 123_456_789);
    let sparse = sb.src().join("a/b/sparse");
    let f = fs::File::create(&sparse).unwrap();
    f.set_len(8 << 20).unwrap();
    drop(f);
    src.stamp_all();
    let plain = sb.path().join("plain");
    let listed = sb.path().join("listed");
    let r1 = run([sb.src(), plain.clone()]);
    r1.ok();
    let src_arg = sb.src();
    let r2 = run([
        src_arg.as_os_str(),
        listed.as_os_str(),
        "-v".as_ref(),
        "--progress".as_ref(),
        "lines".as_ref(),
    ]);
    r2.ok();
    assert_trees_equal(&sb.src(), &plain);
    assert_trees_equal(&sb.src(), &listed);
    let bytes = |r: &Run| {
        let line = r.stderr.lines().find(|l| l.contains("files copied")).unwrap_or_default().to_string();
        line.split("files copied").nth(1).and_then(|t| t.split(',').next()).unwrap_or_default().to_string()
    };
    assert_eq!(bytes(&r1), bytes(&r2), "summaries differ:\n{}\n---\n{}", r1.stderr, r2.stderr);
    assert!(fs::metadata(plain.join("a/b/sparse")).unwrap().blocks() < 1024, "sparse file filled in");
}
