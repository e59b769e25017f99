//! Self-test of the test helpers: the tree comparison must notice every
//! kind of difference, and waits and skips must fail loudly (naming what
//! they waited for, or why they would skip), otherwise the other tests prove
//! nothing.

mod util;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use util::*;

fn pair() -> (Sandbox, Tree, Tree) {
    let sb = Sandbox::new();
    let a = sb.src_tree();
    let b = sb.dst_tree();
    for t in [&a, &b] {
        t.file("f", "same size A\n")
            .file_mode("x", "#!/bin/sh\n", 0o755)
            .file("d/g", "g\n")
            .symlink("ln", "f")
            .fifo("p");
        t.stamp_all();
    }
    (sb, a, b)
}

#[test]
fn identical_trees_compare_equal() {
    let (sb, _, _) = pair();
    assert_trees_equal(&sb.src(), &sb.dst());
}

#[test]
fn comparison_detects_each_kind_of_difference() {
    type Mutation = fn(&Tree);
    let cases: [(&str, Mutation, &str); 9] = [
        (
            "content",
            |t| {
                let m = mtime_ns(&t.p("f"));
                t.rewrite("f", "same size B\n");
                set_ns(t, "f", m)
            },
            "\"f\": content differs",
        ),
        (
            "mode",
            |t| {
                t.chmod("x", 0o700);
            },
            "\"x\": mode 0755 vs 0700",
        ),
        (
            "file mtime ns",
            |t| {
                let m = mtime_ns(&t.p("d/g"));
                set_ns(t, "d/g", m + 1)
            },
            "\"d/g\": mtime",
        ),
        (
            "root mtime",
            |t| {
                let m = mtime_ns(&t.root);
                set_ns(t, "", m + 1)
            },
            ".: mtime",
        ),
        (
            "symlink mtime",
            |t| {
                let m = mtime_ns(&t.p("ln"));
                set_ns(t, "ln", m + 1)
            },
            "\"ln\": mtime",
        ),
        (
            "symlink target",
            |t| {
                keep_parent_mtime(t, "ln", |t| {
                    t.symlink("ln", "d/g");
                })
            },
            "target",
        ),
        (
            "type",
            |t| {
                keep_parent_mtime(t, "ln", |t| {
                    t.file("ln", "f");
                })
            },
            "\"ln\": type Symlink in SOURCE vs File",
        ),
        (
            "extra",
            |t| {
                keep_parent_mtime(t, "d/new", |t| {
                    t.file("d/new", "");
                })
            },
            "\"d/new\": only in DEST",
        ),
        (
            "missing",
            |t| {
                keep_parent_mtime(t, "p", |t| {
                    t.remove("p");
                })
            },
            "\"p\": only in SOURCE",
        ),
    ];
    for (what, mutate, expect) in cases {
        let (sb, _, b) = pair();
        mutate(&b);
        let diffs = tree_diff(&sb.src(), &sb.dst(), &[]);
        assert_eq!(diffs.len(), 1, "{what}: expected exactly one difference, got {diffs:#?}");
        assert!(diffs[0].contains(expect), "{what}: {:?} does not contain {expect:?}", diffs[0]);
        let ignored = tree_diff(&sb.src(), &sb.dst(), &[Path::new("d"), Path::new("x"), Path::new("f")]);
        if matches!(what, "content" | "mode" | "file mtime ns" | "extra") {
            assert!(ignored.is_empty(), "{what}: ignore list not honoured: {ignored:?}");
        }
    }
}

#[test]
fn ctimes_and_snapshot_notice_metadata_changes() {
    let (sb, _, b) = pair();
    let c = ctimes(&sb.dst());
    let s = snapshot(&sb.dst());
    assert_eq!(c, ctimes(&sb.dst()));
    assert_eq!(s, snapshot(&sb.dst()));
    b.chmod("f", 0o600).chmod("f", 0o644);
    assert_ne!(c, ctimes(&sb.dst()), "chmod did not change a ctime");
    assert_ne!(s, snapshot(&sb.dst()));
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("did not fail");
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap()
}

#[test]
fn wait_for_fails_naming_what_it_waited_for() {
    let started = Instant::now();
    let msg = panic_message(|| wait_for("the moon to turn blue", Duration::from_millis(50), || false));
    assert!(started.elapsed() >= Duration::from_millis(50), "gave up early");
    assert!(msg.contains("timed out after 50ms waiting for the moon to turn blue"), "{msg:?}");
    let msg = panic_message(|| {
        wait_for_explained("x", Duration::from_millis(10), || false, || "still green".to_string())
    });
    assert!(msg.contains("waiting for x\nstill green"), "{msg:?}");
    // A condition that comes true returns, after polling more than once.
    let mut calls = 0;
    wait_for("the third call", Duration::from_secs(10), || {
        calls += 1;
        calls == 3
    });
    assert!(!holds_within(Duration::from_millis(10), || false));
}

#[test]
fn proc_wait_fails_when_the_process_exits_first_and_dumps_it() {
    let p = Proc::spawn_cmd(Command::new("sh"), &["-c", "echo to stdout; echo to stderr >&2; exit 3"]);
    let msg = panic_message(|| p.wait_for("a line that never comes", Duration::from_secs(30), |_| false));
    assert!(msg.contains("sh exited (exit status: 3) while waiting for a line that never comes"), "{msg:?}");
    assert!(msg.contains("to stdout") && msg.contains("to stderr"), "no dump of the output: {msg:?}");
    // A live process: the wait returns; dropping the Proc kills it.
    let p = Proc::spawn_cmd(Command::new("sh"), &["-c", "echo ready; exec sleep 60"]);
    p.wait_stdout("ready", Duration::from_secs(30), |l| l == "ready");
    let msg = panic_message(|| p.wait_for("nothing", Duration::from_millis(20), |_| false));
    assert!(msg.contains("timed out after 20ms waiting for nothing"), "{msg:?}");
    let pid = p.pid();
    drop(p);
    // SAFETY: signal 0 only checks whether the (reaped) pid still exists.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "the child outlived its Proc");
}

#[test]
fn skips_fail_under_require_all() {
    skip_under(false, "a test", "a reason"); // returns
    let msg = panic_message(|| skip_under(true, "a test", "bindfs is missing"));
    assert!(msg.contains("a test cannot run here: bindfs is missing"), "{msg:?}");
    assert!(msg.contains("TANDEM_REQUIRE_ALL"), "{msg:?}");
    for (v, on) in
        [(None, false), (Some(""), false), (Some("0"), false), (Some("1"), true), (Some("yes"), true)]
    {
        assert_eq!(flag_set(v.map(OsStr::new)), on, "TANDEM_REQUIRE_ALL={v:?}");
    }
}

fn set_ns(t: &Tree, rel: &str, ns: i128) {
    t.mtime(rel, (ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32);
}

fn keep_parent_mtime(t: &Tree, rel: &str, f: impl FnOnce(&Tree)) {
    let parent = t.p(rel).parent().unwrap().to_path_buf();
    let m = mtime_ns(&parent);
    f(t);
    let pm = (m / 1_000_000_000) as i64;
    set_mtime(&parent, pm, (m % 1_000_000_000) as u32);
}
