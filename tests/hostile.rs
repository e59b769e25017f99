//! Hostile inputs: a DEST full of symlinks (and hard links) into places
//! outside it, a DEST directory swapped for such a symlink while the run is
//! under way, SOURCE symlinks pointing anywhere, and bad command lines.
//!
//! The "outside" directory is fingerprinted (type, inode, mode, owner, size,
//! mtime, ctime, content, link target) before and after: tandem must never
//! write, delete or change anything there.

mod robust;
mod util;

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use robust::*;
use util::*;

/// An outside directory with files named like SOURCE's, stale entries named
/// like DEST's, a subdirectory, all with old distinct mtimes.
fn build_outside(sb: &Sandbox) -> Tree {
    let o = Tree::create(sb.outside());
    o.file("dir/keep.txt", "outside keep\n")
        .file("dir/f000", "outside f000\n")
        .file("dir/stale.txt", "outside stale\n")
        .file("dir/sub/inner.txt", "outside inner\n")
        .file_mode("dir/private", "outside private\n", 0o600)
        .file("file", "outside file\n")
        .file("hard", "outside hard link\n")
        .file("other/x.txt", "other x\n");
    o.stamp_all();
    o
}

// ---------------------------------------------------------------------------
// Symlinks (and a hard link) in DEST pointing outside
// ---------------------------------------------------------------------------

/// `snapshot`, except that the ctime of the hard-linked file is left out:
/// removing or replacing the DEST link changes the shared inode's link
/// count, hence its ctime, whatever the tool does.
fn outside_snapshot(out: &Path) -> std::collections::BTreeMap<std::path::PathBuf, String> {
    let mut m = snapshot(out);
    if let Some(v) = m.get_mut(Path::new("hard")) {
        let start = v.find(" ctime=").unwrap();
        let end = v[start + 1..].find(' ').map(|e| start + 1 + e).unwrap_or(v.len());
        v.replace_range(start..end, "");
    }
    m
}

fn hostile_dest(extra_args: &[&str], name: &str) {
    let sb = Sandbox::new();
    let o = build_outside(&sb);
    let out = o.root.clone();
    let src = sb.src_tree();
    src.file("sub/keep.txt", "source keep\n")
        .file("sub/f000", "source f000\n")
        .file("sub/sub/inner.txt", "source inner\n")
        .file("file", "regular file in SOURCE\n")
        .file("hard", "source version of the hard-linked file\n")
        .symlink("relink", "sub/keep.txt")
        .file("deep/a/b.txt", "b\n")
        .file("kept/x.txt", "x\n");
    src.stamp_all();
    let dst = sb.dst_tree();
    dst.symlink("sub", out.join("dir")) // SOURCE has a directory here
        .symlink("file", "../outside/file") // SOURCE has a file here
        .symlink("relink", out.join("other")) // SOURCE has another symlink here
        .symlink("gone_dir_link", out.join("dir")) // DEST-only: deleted
        .symlink("gone_file_link", out.join("file")) // DEST-only: deleted
        .file("gone_dir/a.txt", "dest only\n")
        .symlink("gone_dir/escape", out.join("dir")) // inside a DEST-only dir
        .symlink("gone_dir/escape_rel", "../../outside/other")
        .dir("deep")
        .symlink("deep/a", out.join("other")) // a parent of new files
        .symlink("cache", out.join("dir")); // excluded in one variant
                                            // A hard link into outside, where SOURCE has other content: replacing
                                            // it must not write the shared inode.
    fs::hard_link(out.join("hard"), dst.p("hard")).unwrap();
    let before = outside_snapshot(&out);

    let mut args: Vec<OsString> = extra_args.iter().map(OsString::from).collect();
    args.push(sb.src().into());
    args.push(sb.dst().into());
    let r = run(&args);
    r.ok();
    assert_unchanged(&format!("[{name}] the outside directory"), &before, &outside_snapshot(&out));
    assert!(lstat(&sb.dst().join("sub")).is_dir(), "[{name}] DEST/sub is not a real directory");
    assert!(lstat(&sb.dst().join("file")).is_file(), "[{name}] DEST/file is not a regular file");
    assert!(lstat(&sb.dst().join("deep/a")).is_dir(), "[{name}] DEST/deep/a is not a real directory");
    let mut ignore = vec![Path::new("cache")];
    if extra_args.contains(&"--no-delete") {
        ignore.extend([Path::new("gone_dir_link"), Path::new("gone_file_link"), Path::new("gone_dir")]);
    }
    assert_trees_equal_ignoring(&sb.src(), &sb.dst(), &ignore);
    if extra_args.contains(&"--delete-excluded") {
        assert!(
            !exists_nofollow(&sb.dst().join("cache")),
            "[{name}] --delete-excluded kept DEST/cache\n{r:?}"
        );
    }
    // Second run: nothing to do, still nothing outside touched.
    run(&args).ok();
    assert_unchanged(&format!("[{name}] the outside directory (2nd run)"), &before, &outside_snapshot(&out));
}

#[test]
fn dest_links_to_outside_default() {
    hostile_dest(&["--exclude", "cache"], "default");
}

#[test]
fn dest_links_to_outside_checksum() {
    hostile_dest(&["--checksum", "--exclude", "cache"], "--checksum");
}

#[test]
fn dest_links_to_outside_no_delete() {
    hostile_dest(&["--no-delete", "--exclude", "cache"], "--no-delete");
}

#[test]
fn dest_links_to_outside_delete_excluded() {
    hostile_dest(&["--delete-excluded", "--exclude", "cache"], "--delete-excluded");
}

// ---------------------------------------------------------------------------
// A DEST directory swapped for a symlink to outside while tandem runs
// ---------------------------------------------------------------------------

fn exchange(a: &Path, b: &Path) -> bool {
    let (ca, cb) =
        (CString::new(a.as_os_str().as_bytes()).unwrap(), CString::new(b.as_os_str().as_bytes()).unwrap());
    // SAFETY: valid NUL-terminated paths.
    unsafe {
        libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) == 0
    }
}

fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p).map(|m| m.file_type().is_symlink()).unwrap_or(false)
}

#[test]
fn dest_dir_swapped_for_outside_symlink_during_runs() {
    const ITERATIONS: usize = 40;
    let seed = seed_for("dest_dir_swapped_for_outside_symlink_during_runs");
    let mut rng = Rng::new(seed);
    let sb = Sandbox::new_fast();
    let o = build_outside(&sb);
    let outside_dir = o.p("dir");
    let src = sb.src_tree();
    for i in 0..150 {
        src.file(format!("d/f{i:03}"), format!("source file {i}\n"));
    }
    for i in 0..40 {
        src.file(format!("d/sub/g{i:02}"), format!("source sub file {i}\n"));
    }
    src.file("d/keep.txt", "source keep\n").file("top.txt", "top\n");
    src.stamp_all();
    let before = snapshot(&o.root);
    // The staging area (outside DEST, same file system) holds the symlinks
    // that are exchanged with DEST/d or DEST/d/sub.
    let stage = sb.join("stage");
    fs::create_dir_all(&stage).unwrap();

    let (mut codes, mut swaps_total) = (std::collections::BTreeMap::<i32, usize>::new(), 0u64);
    for it in 0..ITERATIONS {
        // DEST state needing work in d: stale entries, missing and changed files.
        let dst = sb.dst_tree();
        if exists_nofollow(&dst.p("d")) && rng.chance(30) {
            remove_any(&dst.p("d"));
        }
        dst.dir("d");
        dst.file("d/stale.txt", "dest stale\n").file("d/private", "dest private\n").chmod("d", 0o700);
        for _ in 0..30 {
            let i = rng.below(150);
            if rng.chance(50) {
                remove_any(&dst.p(format!("d/f{i:03}")));
            } else {
                dst.file(format!("d/f{i:03}"), "dest version\n");
            }
        }
        if exists_nofollow(&dst.p("d/sub")) && lstat(&dst.p("d/sub")).is_dir() {
            dst.file("d/sub/stale.txt", "dest sub stale\n");
        }
        let target = if rng.chance(50) { "d" } else { "d/sub" };
        let victim = dst.p(target);
        let link = stage.join("link");
        remove_any(&link);
        symlink(if target == "d" { outside_dir.clone() } else { outside_dir.join("sub") }, &link).unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let (stop2, swaps2, victim2, link2) = (stop.clone(), swaps.clone(), victim.clone(), link.clone());
        let pause = rng.range(20, 300) as u64;
        let swapper = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if exchange(&victim2, &link2) {
                    swaps2.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(pause));
            }
        });
        let r = run_timeout([sb.src(), sb.dst()], Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        swaps_total += swaps.load(Ordering::Relaxed);
        // Put the real directory back in DEST.
        if is_symlink(&victim) && exists_nofollow(&link) && !is_symlink(&link) {
            assert!(exchange(&victim, &link));
        }
        if is_symlink(&victim) {
            remove_any(&victim);
        }
        remove_any(&link);
        *codes.entry(r.code.unwrap_or(-1)).or_default() += 1;
        assert!(matches!(r.code, Some(0) | Some(3)), "seed {seed}, iteration {it}: exit code\n{r:?}");
        assert_no_panic(&r.stderr, &r);
        assert_unchanged(
            &format!("seed {seed}, iteration {it} (swapping DEST/{target}): the outside directory"),
            &before,
            &snapshot(&o.root),
        );
    }
    eprintln!("{ITERATIONS} iterations, {swaps_total} swaps, exit codes {codes:?}");
    if swaps_total == 0 {
        skip(
            "dest_dir_swapped_for_outside_symlink_during_runs",
            "renameat2(RENAME_EXCHANGE) never succeeded here, so no DEST directory was ever swapped",
        );
    }
    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst());
    assert!(temp_files(&sb.dst()).is_empty(), "temporaries left: {:?}", temp_files(&sb.dst()));
    assert_unchanged("the outside directory", &before, &snapshot(&o.root));
}

// ---------------------------------------------------------------------------
// SOURCE symlinks pointing anywhere are copied as links, never read
// ---------------------------------------------------------------------------

#[test]
fn source_symlinks_anywhere_are_copied_as_links() {
    let sb = Sandbox::new();
    let o = build_outside(&sb);
    let fifo = o.p("fifo");
    o.fifo("fifo");
    let src = sb.src_tree();
    let long_target: String = (0..40).map(|i| format!("segment{i:03}/")).collect::<String>() + "end";
    src.file("real.txt", "real\n")
        .symlink("passwd", "/etc/passwd")
        .symlink("etc", "/etc")
        .symlink("root", "/")
        .symlink("dot", ".")
        .symlink("dotdot", "..")
        .symlink("up3", "../../../..")
        .symlink("self", "self")
        .symlink("ping", "pong")
        .symlink("pong", "ping")
        .symlink("zero", "/dev/zero")
        .symlink("urandom", "/dev/urandom")
        .symlink("fifo", &fifo)
        .symlink("outside_dir", o.p("dir"))
        .symlink("dangling", "no/such/thing")
        .symlink("empty_dir_link/x", "../real.txt")
        .symlink("long", &long_target)
        .symlink("newline", "a\nb")
        .symlink("nonutf8", OsString::from_vec(b"t\xffarget".to_vec()));
    src.stamp_all();
    let before = snapshot(&o.root);
    let src_before = snapshot(&sb.src());

    for extra in [&[][..], &["--checksum"][..], &["--json", "--checksum", "-v"][..]] {
        let dst = sb.join(format!("dst{}", extra.len()));
        let mut args: Vec<OsString> = extra.iter().map(OsString::from).collect();
        args.extend([sb.src().into_os_string(), dst.clone().into_os_string()]);
        let r = run_timeout(&args, Duration::from_secs(30));
        r.ok();
        assert_trees_equal(&sb.src(), &dst);
        for (rel, m) in walk(&dst) {
            let k = kind_of(&m);
            assert!(
                k != Kind::File || rel == Path::new("real.txt"),
                "{extra:?}: DEST/{rel:?} is a regular file (a symlink was read through)"
            );
        }
        assert!(lstat(&dst.join("etc")).file_type().is_symlink(), "{extra:?}: DEST/etc is not a symlink");
        // Run again over the existing links.
        run_timeout(&args, Duration::from_secs(30)).ok();
        assert_trees_equal(&sb.src(), &dst);
    }
    assert_unchanged("the outside directory", &before, &snapshot(&o.root));
    assert_unchanged("SOURCE", &src_before, &snapshot(&sb.src()));
}

// ---------------------------------------------------------------------------
// Bad command lines and configuration: exit 2, a short message, no panic
// ---------------------------------------------------------------------------

/// The accepted shapes of a usage error on stderr:
/// - tandem's own configuration errors: exactly one line, `tandem: ...`;
/// - clap's parse errors: a first line `error: ...`, then at most clap's
///   short usage block (tips, `Usage:` lines, "For more information"), at
///   most 12 lines in all.
///
/// The message (tandem's line, or clap's lines before `Usage:`) must contain
/// `token`, naming the problem; no panic, no
/// backtrace; DEST is not created.
fn usage_error_problem(args: &[&OsStr], token: &str, dst: &Path) -> Result<(), String> {
    let r = run(args);
    let fail = |what: &str| Err(format!("{what} for {args:?}:\n{r:?}"));
    if r.code != Some(2) {
        return fail("exit status is not 2");
    }
    if ["panicked", "RUST_BACKTRACE", "stack backtrace"].iter().any(|p| r.stderr.contains(p)) {
        return fail("a panic");
    }
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let Some(first) = lines.first() else { return fail("no message") };
    if first.starts_with("tandem:") {
        if lines.len() != 1 {
            return fail("tandem's usage error is not one line");
        }
    } else if !first.starts_with("error:") {
        return fail("the first line is neither `tandem: ...` nor clap's `error: ...`");
    } else if lines.len() > 12 {
        return fail("clap's error is longer than its short usage block");
    }
    // The message proper: tandem's line, or clap's lines before `Usage:`.
    if !lines.iter().take_while(|l| !l.starts_with("Usage:")).any(|l| l.contains(token)) {
        return fail(&format!("the message does not name the problem ({token:?})"));
    }
    if !r.stdout.trim().is_empty() {
        return fail("output on stdout");
    }
    if exists_nofollow(dst) {
        return fail("DEST was created");
    }
    Ok(())
}

#[test]
fn bad_command_lines_exit_2_with_a_short_message() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n");
    let (s, d) = (sb.src(), sb.dst());
    let file = sb.join("plain_file");
    fs::write(&file, "x").unwrap();
    let bad_list = sb.join("bad_excludes");
    fs::write(&bad_list, "ok\n[z-a\n").unwrap();
    let missing_list = sb.join("no_such_excludes");
    let (s, d) = (s.as_os_str(), d.as_os_str());
    let o = |x: &'static str| OsStr::new(x);
    let non_utf8 = OsString::from_vec(b"pat\xff".to_vec());
    let cases: Vec<(Vec<&OsStr>, &str)> = vec![
        (vec![o("--bogus"), s, d], "--bogus"),
        (vec![o("-Z"), s, d], "-Z"),
        (vec![s], "DEST"),
        (vec![], "SOURCE"),
        (vec![s, d, s], "unexpected argument"),
        (vec![o("--poll=abc"), s, d], "abc"),
        // `--poll X` takes X as the interval only when it parses as one
        (vec![o("--poll"), o("abc"), s, d], "argument"),
        (vec![o("--poll=-5s"), s, d], "-5s"),
        (vec![o("--debounce"), o("-1"), s, d], "-1"),
        (vec![o("--debounce=-1"), s, d], "-1"),
        (vec![o("--debounce"), o("99999999999999999999"), s, d], "debounce"),
        (vec![o("--modify-window"), o("x"), s, d], "modify-window"),
        (vec![o("--modify-window"), o("1e30"), s, d], "modify-window"),
        (vec![o("--poll"), o("1e300"), s, d], "poll"),
        (vec![o("--max-delete"), o("-1"), s, d], "-1"),
        (vec![o("--max-delete=-1"), s, d], "-1"),
        (vec![o("--max-delete"), o("99999999999999999999999"), s, d], "max-delete"),
        (vec![o("--scan-threads"), o("0"), s, d], "scan-threads"),
        (vec![o("--threads"), o("0"), s, d], "0"),
        (vec![o("--scan-threads"), o("many"), s, d], "many"),
        (vec![o("--progress"), o("nope"), s, d], "nope"),
        (vec![o("--completions"), o("nope")], "nope"),
        (vec![o("--exclude-from"), missing_list.as_os_str(), s, d], "no_such_excludes"),
        (vec![o("--exclude-from"), bad_list.as_os_str(), s, d], "bad_excludes:2"),
        (vec![o("--exclude"), o("[z-a"), s, d], "[z-a"),
        (vec![o("--exclude"), o("[[:nope:]]"), s, d], "[[:nope:]]"),
        (vec![o("--exclude"), o("trailing\\"), s, d], "trailing"),
        (vec![o("--exclude"), &non_utf8, s, d], "UTF-8"),
        (vec![s, s], "same"),
        (vec![file.as_os_str(), d], "plain_file"),
        (vec![s, file.as_os_str()], "plain_file"),
        (vec![o("--dry-run"), o("--watch"), s, d], "--dry-run"),
        (vec![o("--dry-run"), o("--poll"), s, d], "--dry-run"),
        (vec![o("--no-delete"), o("--delete-excluded"), s, d], "--no-delete"),
        (vec![o("-v"), o("-q"), s, d], "-q"),
    ];
    let d = sb.dst();
    let mut failures = Vec::new();
    for (args, token) in &cases {
        if let Err(e) = usage_error_problem(args, token, &d) {
            failures.push(e);
        }
    }
    // SOURCE = DEST through a symlink, and through `..`.
    let alias = sb.join("alias");
    symlink(sb.src(), &alias).unwrap();
    for other in [alias.clone(), sb.src().join("..").join("src")] {
        let args = [sb.src().into_os_string(), other.into_os_string()];
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        if let Err(e) = usage_error_problem(&args, "same", &d) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the bad command lines misbehave:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn source_missing_or_unreadable_is_a_usage_error() {
    let sb = Sandbox::new();
    let d = sb.dst();
    let missing = sb.join("missing");
    let r = run([missing.as_os_str(), d.as_os_str()]);
    r.expect_code(2);
    assert_no_panic(&r.stderr, &r);
    assert_eq!(r.stderr.lines().count(), 1, "not one line:\n{r:?}");
    assert!(r.stderr.contains("missing"), "{r:?}");
    assert!(!exists_nofollow(&d));
    // A dangling symlink as SOURCE.
    let dangling = sb.join("dangling");
    symlink("nowhere", &dangling).unwrap();
    let r = run([dangling.as_os_str(), d.as_os_str()]);
    r.expect_code(2);
    assert_no_panic(&r.stderr, &r);
    assert!(r.stderr.contains("dangling"), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "not one line:\n{r:?}");
    assert!(!exists_nofollow(&d));
}
