//! Self-test of the test helpers: the tree comparison must notice every
//! kind of difference, otherwise the other tests prove nothing.

mod util;

use std::path::Path;

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
