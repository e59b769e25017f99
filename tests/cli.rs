//! Command-line surface: argument errors, path guards, output modes.

mod util;

use std::ffi::OsStr;
use std::path::Path;

use util::*;

// ---------------------------------------------------------------------------
// Usage errors and help
// ---------------------------------------------------------------------------

#[test]
fn bad_flags_are_usage_errors() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n");
    let (src, dst) = (sb.src(), sb.dst());
    let cases: Vec<Vec<&OsStr>> = vec![
        vec!["--no-such-flag".as_ref(), src.as_os_str(), dst.as_os_str()],
        vec![src.as_os_str()],
        vec![],
        vec![src.as_os_str(), dst.as_os_str(), sb.path().as_os_str()],
        vec!["--max-delete".as_ref(), "lots".as_ref(), src.as_os_str(), dst.as_os_str()],
        vec!["--max-delete".as_ref(), "-1".as_ref(), src.as_os_str(), dst.as_os_str()],
        vec!["--modify-window".as_ref(), "banana".as_ref(), src.as_os_str(), dst.as_os_str()],
    ];
    for args in cases {
        let r = run(&args);
        r.expect_code(2);
        assert!(!r.stderr.trim().is_empty(), "usage error without message:\n{r:?}");
        assert!(!exists_nofollow(&dst), "DEST created despite usage error:\n{r:?}");
    }
}

/// Every command-line error is tandem's own one line: the flag, the value and what is
/// allowed, never clap's tips (`a similar argument exists: '--no-delete'`, `to pass '-a'
/// as a value, use '-- -a'`).
#[test]
fn bad_values_get_tandems_own_one_line() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n");
    let (src, dst) = (sb.src(), sb.dst());
    let (s, d) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let duration = "a duration such as 2s, 500ms, 1m or a number of seconds";
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--max-delete", "abc", s, d], r#"--max-delete expects a whole number ≥ 0, got "abc""#.into()),
        (vec!["--max-delete", "-1", s, d], r#"--max-delete expects a whole number ≥ 0, got "-1""#.into()),
        (vec!["--max-delete=1.5", s, d], r#"--max-delete expects a whole number ≥ 0, got "1.5""#.into()),
        (vec!["--max-delete"], "--max-delete expects a whole number ≥ 0, got nothing".into()),
        (
            vec!["--scan-threads", "0", s, d],
            r#"--scan-threads expects a whole number from 1 to 256, got "0""#.into(),
        ),
        (
            vec!["--threads", "999", s, d],
            r#"--scan-threads expects a whole number from 1 to 256, got "999""#.into(),
        ),
        (
            vec!["--scan-threads", "-4", s, d],
            r#"--scan-threads expects a whole number from 1 to 256, got "-4""#.into(),
        ),
        (vec!["--debounce", "soon", s, d], format!(r#"--debounce expects {duration}, got "soon""#)),
        (
            vec!["--bwlimit", "fast", s, d],
            r#"--bwlimit expects a rate in bytes per second such as 10M, 500K or 1.5M (0: no limit), got "fast""#.into(),
        ),
        (
            vec!["--bwlimit=10X", s, d],
            r#"--bwlimit expects a rate in bytes per second such as 10M, 500K or 1.5M (0: no limit), got "10X""#.into(),
        ),
        (vec!["--debounce", "-1", s, d], format!(r#"--debounce expects {duration}, got "-1""#)),
        (vec!["--verify-every", "1e300", s, d], format!(r#"--verify-every expects {duration}, got "1e300""#)),
        (
            vec!["--modify-window", "banana", s, d],
            format!(r#"--modify-window expects {duration}, got "banana""#),
        ),
        (vec!["--poll=soon", s, d], format!(r#"--poll expects {duration}, got "soon""#)),
        (vec!["--poll", "-1", s, d], format!(r#"--poll expects {duration}, got "-1""#)),
        (
            vec!["--progress", "nope", s, d],
            r#"--progress expects one of auto, bar, lines, none, got "nope""#.into(),
        ),
        (vec!["--progress=", s, d], "--progress expects one of auto, bar, lines, none, got nothing".into()),
        (
            vec!["--completions", "tcsh"],
            r#"--completions expects one of bash, elvish, fish, powershell, zsh, got "tcsh""#.into(),
        ),
        (vec!["--exclude"], "--exclude expects a PATTERN, got nothing".into()),
        (vec!["--json=yes", s, d], r#"--json takes no value, got "yes""#.into()),
        (
            vec!["--no-such-flag", s, d],
            r#"unknown option "--no-such-flag" (see tandem --help for the options)"#.into(),
        ),
        (vec!["-Z", s, d], r#"unknown option "-Z" (see tandem --help for the options)"#.into()),
        (vec![s, d, "third"], r#"unexpected argument "third": tandem takes one SOURCE and one DEST"#.into()),
        (vec![s], "DEST is required: tandem [OPTIONS] SOURCE DEST".into()),
        (vec![], "SOURCE and DEST are required: tandem [OPTIONS] SOURCE DEST".into()),
        (vec!["-n", "--watch", s, d], "--dry-run cannot be used with --watch".into()),
        (vec!["-q", "-v", s, d], "--quiet cannot be used with --verbose".into()),
        (vec!["--man", s], "--man is used alone, without other arguments".into()),
    ];
    for (args, want) in cases {
        let r = run(&args);
        r.expect_code(2);
        assert_eq!(r.stderr, format!("tandem: {want}\n"), "tandem {args:?}:\n{r:?}");
        assert!(!r.stderr.contains("tip:"), "{r:?}");
        assert!(!exists_nofollow(&dst), "DEST created despite usage error:\n{r:?}");
    }
}

/// rsync muscle memory: `-a`, `-r`, `--delete` (and `-av`) are accepted and change
/// nothing in what tandem does; the last of `--delete`/`--no-delete` wins.
#[test]
fn rsync_habits_are_accepted() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n").file("d/b.txt", "b\n").symlink("ln", "a.txt");
    for flags in [&["-av"][..], &["-a", "--delete"], &["-r"], &["--archive", "--recursive", "--delete"]] {
        Tree::create(sb.dst()).file("extra.txt", "x\n");
        let (src, dst) = (sb.src(), sb.dst());
        let mut args: Vec<&OsStr> = flags.iter().map(OsStr::new).collect();
        args.push(src.as_os_str());
        args.push(dst.as_os_str());
        let r = run(&args);
        r.ok();
        assert!(!exists_nofollow(&sb.dst().join("extra.txt")), "{flags:?} kept a DEST-only file:\n{r:?}");
        assert_trees_equal(&sb.src(), &sb.dst());
    }
    let (src, dst) = (sb.src(), sb.dst());
    Tree::create(&dst).file("extra.txt", "x\n");
    run(["--delete".as_ref(), "--no-delete".as_ref(), src.as_os_str(), dst.as_os_str()]).ok();
    assert!(exists_nofollow(&dst.join("extra.txt")), "--delete --no-delete deleted");
    run(["--no-delete".as_ref(), "--delete".as_ref(), src.as_os_str(), dst.as_os_str()]).ok();
    assert!(!exists_nofollow(&dst.join("extra.txt")), "--no-delete --delete kept");

    let r = run(["--help"]);
    r.ok();
    for flag in ["--archive", "--recursive", "--delete "] {
        assert!(r.stdout.contains(flag), "--help does not document {flag}:\n{}", r.stdout);
    }
}

#[test]
fn help_mentions_exit_codes() {
    let r = run(["--help"]);
    r.ok();
    let text = r.stdout.to_lowercase();
    assert!(text.contains("exit"), "--help does not mention exit codes:\n{r:?}");
    for code in ["0", "1", "2", "3", "4"] {
        assert!(
            text.lines().any(|l| l.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == code)),
            "--help does not list exit code {code}:\n{r:?}"
        );
    }
    for flag in [
        "--dry-run",
        "--verbose",
        "--quiet",
        "--json",
        "--no-delete",
        "--max-delete",
        "--allow-empty-source",
        "--checksum",
        "--modify-window",
    ] {
        assert!(r.stdout.contains(flag), "--help does not document {flag}");
    }
}

// ---------------------------------------------------------------------------
// Path guards: exit 2, nothing created or changed
// ---------------------------------------------------------------------------

/// Run and expect exit 2 with the sandbox's top level unchanged and the
/// given directories completely unchanged.
#[track_caller]
fn expect_guard(sb: &Sandbox, args: &[&OsStr], untouched: &[&Path]) {
    let top = listing(sb.path());
    let snaps: Vec<_> = untouched.iter().map(|d| snapshot(d)).collect();
    let r = run(args);
    r.expect_code(2);
    assert!(!r.stderr.trim().is_empty(), "guard refused without message:\n{r:?}");
    assert_eq!(listing(sb.path()), top, "something was created:\n{r:?}");
    for (d, s) in untouched.iter().zip(&snaps) {
        assert_unchanged(&format!("{} after refused run", d.display()), s, &snapshot(d));
    }
}

#[test]
fn guard_source_missing() {
    let sb = Sandbox::new();
    expect_guard(&sb, &[sb.src().as_os_str(), sb.dst().as_os_str()], &[]);
    assert!(!exists_nofollow(&sb.dst()));
}

#[test]
fn guard_source_is_a_file() {
    let sb = Sandbox::new();
    Tree::create(sb.path()).file("src", "i am a file\n");
    expect_guard(&sb, &[sb.src().as_os_str(), sb.dst().as_os_str()], &[]);
    assert!(!exists_nofollow(&sb.dst()));
}

#[test]
fn guard_source_equals_dest() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n").file("sub/b.txt", "b\n");
    let src = sb.src();
    // Same path.
    expect_guard(&sb, &[src.as_os_str(), src.as_os_str()], &[src.as_path()]);
    // Via `..`.
    let dotdot = src.join("sub/..");
    expect_guard(&sb, &[src.as_os_str(), dotdot.as_os_str()], &[src.as_path()]);
    expect_guard(&sb, &[dotdot.as_os_str(), src.as_os_str()], &[src.as_path()]);
    // Via a symlink to SOURCE.
    Tree::create(sb.path()).symlink("alias", "src");
    let alias = sb.join("alias");
    expect_guard(&sb, &[src.as_os_str(), alias.as_os_str()], &[src.as_path()]);
    expect_guard(&sb, &[alias.as_os_str(), src.as_os_str()], &[src.as_path()]);
}

#[test]
fn guard_dest_inside_source() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n").dir("existing");
    let src = sb.src();
    let new_inside = src.join("backup");
    expect_guard(&sb, &[src.as_os_str(), new_inside.as_os_str()], &[src.as_path()]);
    let existing_inside = src.join("existing");
    expect_guard(&sb, &[src.as_os_str(), existing_inside.as_os_str()], &[src.as_path()]);
    // Via a symlink that points into SOURCE.
    Tree::create(sb.path()).symlink("sneaky", "src/existing");
    let sneaky = sb.join("sneaky");
    expect_guard(&sb, &[src.as_os_str(), sneaky.as_os_str()], &[src.as_path()]);
}

#[test]
fn guard_source_inside_dest() {
    let sb = Sandbox::new();
    let dst = sb.dst_tree();
    dst.file("inner/a.txt", "a\n").file("other.txt", "o\n");
    let inner = sb.dst().join("inner");
    let dst = sb.dst();
    expect_guard(&sb, &[inner.as_os_str(), dst.as_os_str()], &[dst.as_path()]);
}

#[test]
fn missing_dest_is_created() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n").dir("empty");
    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst());
}

/// There is no clean, portable way to force exit 1 (a fatal error that is
/// not a usage/config problem) from a black-box test. The nearest case is a
/// DEST that cannot be created because its parent is a regular file; the
/// contract does not say whether that is a config error (2) or fatal (1), so
/// either is accepted, but it must fail cleanly and touch nothing.
#[test]
fn uncreatable_dest_fails_cleanly() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n");
    Tree::create(sb.path()).file("plainfile", "not a dir\n");
    let dst = sb.join("plainfile/dst");
    let top = listing(sb.path());
    let r = run([sb.src(), dst]);
    assert!(matches!(r.code, Some(1) | Some(2)), "expected exit 1 or 2:\n{r:?}");
    assert!(!r.stderr.trim().is_empty(), "{r:?}");
    assert_eq!(listing(sb.path()), top);
    assert_eq!(read(&sb.join("plainfile")), b"not a dir\n");
}

// ---------------------------------------------------------------------------
// Output modes
// ---------------------------------------------------------------------------

/// SOURCE/DEST prepared so that the next run has exactly these changes:
/// copy new.txt, mkdir newdir, copy newdir/inner.txt, symlink ln,
/// delete extra.txt, meta modefile; same.txt is unchanged.
fn prepare_changes(sb: &Sandbox) {
    let src = sb.src_tree();
    src.file("same.txt", "same\n").file("modefile", "m\n");
    src.stamp_all();
    run([sb.src(), sb.dst()]).ok();
    src.file("new.txt", "new\n")
        .file("newdir/inner.txt", "inner\n")
        .symlink("ln", "same.txt")
        .chmod("modefile", 0o755);
    Tree::create(sb.dst()).file("extra.txt", "extra\n");
}

#[test]
fn verbose_prints_one_line_per_change() {
    let sb = Sandbox::new();
    prepare_changes(&sb);
    let r = run(["-v".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let lines = r.stdout_lines();
    for line in &lines {
        let verb = line.split_whitespace().next().unwrap_or("");
        assert!(CHANGE_EVENTS.contains(&verb), "unexpected -v line {line:?}:\n{r:?}");
    }
    let has = |verb: &str, path: &str| {
        lines.iter().filter(|l| l.split_whitespace().next() == Some(verb) && l.contains(path)).count()
    };
    for (verb, path) in [
        ("copy", "new.txt"),
        ("mkdir", "newdir"),
        ("copy", "newdir/inner.txt"),
        ("symlink", "ln"),
        ("delete", "extra.txt"),
        ("meta", "modefile"),
    ] {
        assert_eq!(has(verb, path), 1, "expected exactly one `{verb} {path}` line:\n{r:?}");
    }
    assert!(
        !lines.iter().any(|l| !l.starts_with("symlink") && l.contains("same.txt")),
        "unchanged file reported:\n{r:?}"
    );
    assert_trees_equal(&sb.src(), &sb.dst());

    // In sync: -v prints no change lines.
    let r = run(["--verbose".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    assert!(r.stdout_lines().is_empty(), "in-sync -v run printed changes:\n{r:?}");
}

#[test]
fn quiet_prints_nothing_on_success() {
    let sb = Sandbox::new();
    prepare_changes(&sb);
    for flag in ["-q", "--quiet"] {
        let r = run([flag.as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
        r.ok();
        assert!(r.stdout.is_empty(), "{flag}: stdout not empty:\n{r:?}");
        assert!(r.stderr.is_empty(), "{flag}: stderr not empty:\n{r:?}");
    }
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn default_prints_one_line_summary_on_stderr() {
    let sb = Sandbox::new();
    prepare_changes(&sb);
    let r = run([sb.src(), sb.dst()]);
    r.ok();
    assert!(r.stdout.is_empty(), "default mode printed on stdout:\n{r:?}");
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected a one-line summary on stderr:\n{r:?}");
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn json_events_and_summary() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.txt", "alpha\n")
        .file("d/b.txt", "bravo bravo\n")
        .file("d/e/c.txt", "charlie charlie charlie\n")
        .file("zero", "")
        .file("big.bin", pseudo_random(300_000, 7))
        .file(bad_name(), "non-utf8 name\n")
        .file("café/naïve.txt", "unicode\n")
        .dir("emptydir")
        .symlink("ln", "a.txt")
        .symlink("dangling", "nowhere");

    let r = run(["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let evs = r.json_events();
    let s = summary(&evs);

    // One copy event per regular file, with its size.
    let files = rel_paths_of_kind(&sb.src(), Kind::File);
    assert_eq!(paths_of(&evs, "copy"), files, "copy events vs source files:\n{r:?}");
    let mut total = 0;
    for e in events_named(&evs, "copy") {
        let path = event_path(e);
        let bytes = e["bytes"].as_u64().unwrap_or_else(|| panic!("copy without bytes: {e}"));
        let expect =
            walk(&sb.src()).into_iter().find(|(rel, _)| lossy(rel) == path).map(|(_, m)| m.len()).unwrap();
        assert_eq!(bytes, expect, "bytes of {path}");
        total += bytes;
    }
    let bad = lossy(&bad_name());
    assert!(paths_of(&evs, "copy").contains(&bad), "non-UTF-8 name not reported lossily as {bad:?}");

    let dirs = rel_paths_of_kind(&sb.src(), Kind::Dir);
    let mkdirs = paths_of(&evs, "mkdir");
    for d in &dirs {
        assert!(mkdirs.contains(d), "no mkdir event for {d}: {mkdirs:?}");
    }
    assert_eq!(paths_of(&evs, "symlink"), rel_paths_of_kind(&sb.src(), Kind::Symlink));
    assert!(paths_of(&evs, "delete").is_empty());
    assert!(events_named(&evs, "error").is_empty());

    assert_eq!(count(s, "copied"), files.len() as u64, "{s}");
    assert_eq!(count(s, "bytes"), total, "{s}");
    assert_eq!(count(s, "deleted"), 0, "{s}");
    assert_eq!(count(s, "errors"), 0, "{s}");
    assert!(count(s, "scanned") >= files.len() as u64, "{s}");
    assert_trees_equal(&sb.src(), &sb.dst());

    // Deletions.
    Tree::create(sb.dst()).file("x1", "1").file("x2", "2").file("xd/inner", "3").symlink("xl", "x1");
    let r = run(["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let evs = r.json_events();
    let s = summary(&evs);
    let deleted = paths_of(&evs, "delete");
    for p in ["x1", "x2", "xd", "xl"] {
        assert!(deleted.contains(&p.to_string()), "no delete event for {p}: {deleted:?}");
    }
    assert_eq!(count(s, "deleted"), deleted.len() as u64, "{s}\n{r:?}");
    assert_eq!(count(s, "copied"), 0, "{s}");
    assert!(paths_of(&evs, "copy").is_empty());
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn dry_run_json_changes_nothing() {
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "a\n").file("d/b.txt", "b\n");
    let r = run(["-n".as_ref(), "--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    let evs = r.json_events();
    assert_eq!(paths_of(&evs, "copy"), vec!["a.txt".to_string(), "d/b.txt".to_string()]);
    summary(&evs);
    assert!(!exists_nofollow(&sb.dst()), "--dry-run --json created DEST");
}

// ---------------------------------------------------------------------------
// The manual and the completion scripts
// ---------------------------------------------------------------------------

/// `--man` is a full page: its sections, every option of `--help` (aliases included)
/// with its long text, SOURCE and DEST required in the synopsis, one exit status per
/// tagged paragraph; groff renders it without a warning.
#[test]
fn manual_has_every_section_and_option() {
    let r = run(["--man"]);
    r.ok();
    let page = &r.stdout;
    let sections: Vec<&str> =
        page.lines().filter_map(|l| l.strip_prefix(".SH ")).map(|t| t.trim_matches('"')).collect();
    let want = [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "IGNORE RULES",
        "WATCH MODE AND STRATEGIES",
        "WHAT IS MIRRORED",
        "WHAT TANDEM PROMISES",
        "OUTPUT",
        "JSON EVENTS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "EXAMPLES",
        "SEE ALSO",
    ];
    assert_eq!(sections, want, "sections of the manual:\n{page}");
    let section = |name: &str| {
        let start = page.find(&format!(".SH {name}\n")).or_else(|| page.find(&format!(".SH \"{name}\"\n")));
        let rest = &page[start.unwrap_or_else(|| panic!("no {name}"))..];
        let end = rest[4..].find("\n.SH ").map_or(rest.len(), |e| e + 5);
        rest[..end].to_string()
    };

    let synopsis = section("SYNOPSIS");
    assert!(synopsis.contains(r"\fISOURCE\fR \fIDEST\fR"), "{synopsis}");
    assert!(!synopsis.contains("[SOURCE]") && !synopsis.contains(r"[\fISOURCE"), "{synopsis}");

    // Every long option and visible alias that --help shows, with its long text.
    let options = section("OPTIONS");
    let help = run(["--help"]);
    help.ok();
    assert!(!help.stdout.contains("[SOURCE]") && !help.stdout.contains("[DEST]"), "{}", help.stdout);
    let mut longs: Vec<String> = help
        .stdout
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| {
            w.starts_with("--") && w.len() > 2 && w[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .map(String::from)
        .collect();
    longs.sort();
    longs.dedup();
    for long in ["--threads", "--archive", "--recursive", "--delete", "--watch", "--max-delete"] {
        assert!(longs.contains(&long.to_string()), "--help lacks {long}");
    }
    for long in &longs {
        let roff = format!(r"\fB{}\fR", long.replace('-', r"\-"));
        assert!(options.contains(&roff), "OPTIONS does not list {long}:\n{options}");
    }
    for text in [
        r"16 when SOURCE is on a network or FUSE file system",
        r"lsyncd's delay = 15 does",
        r"A live bar (files, bytes, throughput, ETA, current file)",
    ] {
        assert!(options.contains(text), "OPTIONS lacks {text:?}:\n{options}");
    }

    let exit = section("EXIT STATUS");
    for code in ["0", "1", "2", "3", "4", "130"] {
        assert!(
            exit.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit status {code} is not its own item:\n{exit}"
        );
    }
    assert!(section("IGNORE RULES").contains(r".syncignore"));
    for strategy in ["native", "poll", "mixed"] {
        assert!(section("WATCH MODE AND STRATEGIES").contains(&format!("\\fB{strategy}\\fR")));
    }
    for event in ["copy", "mkdir", "excluded", "error", "cycle", "summary"] {
        let json = section("JSON EVENTS");
        let tagged = json.lines().filter(|l| l.starts_with(r"\fB")).any(|l| {
            l.trim_start_matches(r"\fB").trim_end_matches(r"\fR").split(", ").any(|name| name == event)
        });
        assert!(tagged, "JSON EVENTS lacks {event}:\n{json}");
    }
    assert!(section("ENVIRONMENT").contains("NO_COLOR"));
    assert!(section("EXAMPLES").contains(r"tandem \-\-watch"));
    assert!(section("SEE ALSO").contains("rsync(1)"));
    assert!(page.is_ascii(), "roff text should escape what is not ASCII");

    // groff renders it without warnings.
    let Ok(mut groff) = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        return skip("manual_has_every_section_and_option", "groff is not installed (Debian: groff-base)");
    };
    use std::io::Write;
    groff.stdin.take().expect("stdin").write_all(page.as_bytes()).expect("write to groff");
    let out = groff.wait_with_output().expect("groff");
    assert!(out.status.success() && out.stderr.is_empty(), "groff: {}", String::from_utf8_lossy(&out.stderr));
}

/// Bash completion offers no file names after flags that take numbers, durations or
/// patterns, file names after --exclude-from, and the values of --progress.
#[test]
fn bash_completion_offers_no_file_names_after_values() {
    let r = run(["--completions", "bash"]);
    r.ok();
    let script = &r.stdout;
    let case = |flag: &str| {
        let start = script
            .find(&format!("\n                {flag})\n"))
            .unwrap_or_else(|| panic!("no case for {flag}"));
        let rest = &script[start + 1..];
        rest[..rest.find(";;").expect("end of case")].to_string()
    };
    for flag in [
        "--debounce",
        "--verify-every",
        "--modify-window",
        "--poll",
        "--max-delete",
        "--scan-threads",
        "--threads",
        "--exclude",
        "--include",
        "--bwlimit",
        "--suffix",
    ] {
        let c = case(flag);
        assert!(!c.contains("compgen -f"), "{flag} completes file names:\n{c}");
    }
    assert!(case("--exclude-from").contains("compgen -f"), "--exclude-from should complete file names");
    assert!(case("--files-from").contains("compgen -f"), "--files-from should complete file names");
    assert!(case("--progress").contains("auto bar lines none"), "{}", case("--progress"));
}
