//! An S3 bucket as DEST (issue 14), against a real SeaweedFS S3 gateway on 127.0.0.1
//! started by each test (`util::s3d`): every kind of change, the no-op re-run, what
//! rclone reads back (its `mtime` metadata and ours are one), dry runs, JSON output,
//! guards, each connection error, per-entry errors (names that cannot be keys),
//! multipart uploads and `kill -9` in the middle of one, and watch mode.

mod util;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use util::s3d::Weed;
use util::*;

/// `tandem ARGS...` with the server's environment.
fn srun(w: &Weed, args: &[&OsStr]) -> Run {
    run_with(w.tandem(), args, Duration::from_secs(120))
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// RFC 3339 in UTC with nine decimals (as rclone's lsjson prints times).
fn rfc3339(sec: i64, nsec: i64) -> String {
    let days = sec.div_euclid(86_400);
    let rem = sec.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nsec:09}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Differences between SOURCE's files and symlinks and the objects under `at`, as
/// rclone reads them: every file an object of the same size, mtime (from the `mtime`
/// metadata, to the nanosecond) and contents, every symlink an object holding its
/// target; no other objects.
fn bucket_diff(w: &Weed, src: &Path, at: &str) -> Vec<String> {
    let objects = w.objects(at);
    // The bodies of the objects under 1 MiB, fetched by one rclone run.
    let bodies = w.download(at, 1 << 20);
    let body =
        |key: &str| fs::read(bodies.path().join(key)).unwrap_or_else(|e| format!("({e})").into_bytes());
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for (rel, md) in walk(src) {
        let key = rel.to_string_lossy().into_owned();
        if !(md.is_file() || md.file_type().is_symlink()) {
            continue;
        }
        seen.insert(key.clone(), ());
        let Some(o) = objects.get(&key) else {
            out.push(format!("{key}: no object"));
            continue;
        };
        let size = o["Size"].as_u64().unwrap_or(u64::MAX);
        if md.file_type().is_symlink() {
            let target = fs::read_link(src.join(&rel)).expect("readlink");
            let body = body(&key);
            if body != target.as_os_str().as_encoded_bytes() {
                out.push(format!("{key}: symlink object holds {:?}", String::from_utf8_lossy(&body)));
            }
            continue;
        }
        if size != md.len() {
            out.push(format!("{key}: size {size}, want {}", md.len()));
        }
        let want = rfc3339(md.mtime(), md.mtime_nsec());
        if o["ModTime"].as_str() != Some(want.as_str()) {
            out.push(format!("{key}: ModTime {}, want {want}", o["ModTime"]));
        }
        if md.len() < (1 << 20) && body(&key) != fs::read(src.join(&rel)).expect("read") {
            out.push(format!("{key}: contents differ"));
        }
    }
    for k in objects.keys() {
        if !seen.contains_key(k) {
            out.push(format!("{k}: object not in SOURCE"));
        }
    }
    out
}

#[track_caller]
fn assert_mirrored(w: &Weed, src: &Path, at: &str) {
    let d = bucket_diff(w, src, at);
    assert!(
        d.is_empty(),
        "bucket {at} differs from SOURCE:\n{}\n--- weed log tail ---\n{}",
        d.join("\n"),
        tail(&w.log())
    );
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn summary(r: &Run) -> serde_json::Value {
    r.json_events().into_iter().find(|e| event_name(e) == "summary").expect("summary event")
}

#[test]
fn every_kind_of_change_then_a_no_op_run() {
    let Some(w) = Weed::start("every_kind_of_change_then_a_no_op_run") else { return };
    w.bucket("mirror");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    t.file("top.txt", "top level\n")
        .file("a/one.txt", "one\n")
        .file("a/b/two.txt", "two two\n")
        .file("a/b/c/deep.txt", "deep inside\n")
        .dir("empty")
        .dir("a/empty_nested")
        .file_mode("run.sh", "#!/bin/sh\n", 0o755)
        .file("zero", "")
        .file("café/naïve.txt", "unicode\n")
        .file("with space & 'quote'+%.txt", "odd\n")
        .symlink("rel_link", "a/b/c/deep.txt")
        .symlink("dangling", "does/not/exist")
        .fifo("pipe");
    t.stamp_all();
    let src = sb.src();
    let dest = os("s3://mirror/backup/daily");
    let r = srun(&w, &[src.as_os_str(), dest]);
    r.ok();
    assert!(r.stderr.contains("pipe"), "the FIFO is reported as skipped:\n{r:?}");
    assert_mirrored(&w, &src, "mirror/backup/daily");
    for want in ["empty", "a/empty_nested", "a/b/c"] {
        assert!(w.is_dir(&format!("mirror/backup/daily/{want}")), "directory {want} in the bucket");
    }
    // The mode is in the metadata, as rclone's --metadata writes it.
    let objects = w.objects("mirror/backup/daily");
    assert_eq!(objects["run.sh"]["Metadata"]["mode"], "100755", "{:?}", objects["run.sh"]);

    // Nothing changed: nothing sent, exit 0, everything unchanged.
    let r = srun(&w, &[os("--json"), src.as_os_str(), dest]);
    r.ok();
    let s = summary(&r);
    assert_eq!(
        (s["copied"].as_u64(), s["meta"].as_u64(), s["deleted"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{r:?}"
    );

    // Every kind of change.
    t.rewrite("top.txt", "new contents, longer\n")
        .file("a/new.txt", "new file\n")
        .remove("a/b/two.txt")
        .remove("a/b/c")
        .remove("empty")
        .file("empty", "a file where a directory was\n")
        .remove("zero")
        .dir("zero")
        .file("zero/inside", "a directory where a file was\n")
        .dir("fresh/empty")
        .remove("rel_link")
        .symlink("rel_link", "top.txt")
        .chmod("run.sh", 0o700);
    set_mtime(&t.p("a/one.txt"), 1_600_000_000, 123_456_789);
    let r = srun(&w, &[os("-v"), src.as_os_str(), dest]);
    r.ok();
    assert!(r.stdout.contains("meta run.sh"), "a mode change is a metadata change, not a copy:\n{r:?}");
    assert_mirrored(&w, &src, "mirror/backup/daily");
    assert!(w.is_dir("mirror/backup/daily/fresh/empty"));
    assert!(!w.is_dir("mirror/backup/daily/a/b/c"));
    let objects = w.objects("mirror/backup/daily");
    assert_eq!(objects["run.sh"]["Metadata"]["mode"], "100700");

    let r = srun(&w, &[os("-v"), src.as_os_str(), dest]);
    r.ok();
    assert!(r.stdout_lines().is_empty(), "a second run changes nothing:\n{r:?}");
}

/// More files than the bucket's applier starts at once (its start permits: 4 x 64), in
/// one wide directory and in more directories than that beside it, uploaded and then mostly
/// deleted: every object arrives and goes, and the runs end.
#[test]
fn more_files_than_the_applier_starts_at_once() {
    let Some(w) = Weed::start("more_files_than_the_applier_starts_at_once") else { return };
    w.bucket("wide");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    wide_tree(&t, 700, 300);
    let src = sb.src();
    srun(&w, &[src.as_os_str(), os("s3://wide/m")]).ok();
    assert_mirrored(&w, &src, "wide/m");
    thin_wide_tree(&t, 700, 50);
    srun(&w, &[src.as_os_str(), os("s3://wide/m")]).ok();
    assert_mirrored(&w, &src, "wide/m");
}

#[test]
fn the_cache_lost_costs_requests_not_correctness() {
    let Some(w) = Weed::start("the_cache_lost_costs_requests_not_correctness") else { return };
    w.bucket("cachebucket");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    t.file("f", "x\n").file("d/g", "y\n").dir("e").symlink("l", "f");
    t.stamp_all();
    let (src, dest) = (sb.src(), os("s3://cachebucket"));
    srun(&w, &[src.as_os_str(), dest]).ok();
    fs::remove_dir_all(w.cache_dir()).expect("remove the cache");
    // The objects' metadata is read back with HEAD: nothing to copy. (SeaweedFS keeps
    // no metadata on directory markers: their attributes are put again once.)
    let r = srun(&w, &[os("--json"), src.as_os_str(), dest]);
    r.ok();
    assert_eq!(summary(&r)["copied"].as_u64(), Some(0), "{r:?}");
    let r = srun(&w, &[os("-v"), src.as_os_str(), dest]);
    r.ok();
    assert!(r.stdout_lines().is_empty(), "{r:?}");
    // Another program replaces an object with other contents of the same size: seen
    // (its ETag differs from the cached one), though sizes alone would match.
    let other = sb.join("other");
    fs::write(&other, "z\n").expect("write");
    w.rclone_os(&[os("copyto"), other.as_os_str(), os("w:cachebucket/f")]).expect("rclone copyto");
    let r = srun(&w, &[os("-v"), os("--checksum"), src.as_os_str(), dest]);
    r.ok();
    assert!(r.stdout.contains("copy f"), "{r:?}");
    assert_mirrored(&w, &src, "cachebucket");
}

#[test]
fn rclone_and_tandem_read_each_others_mirror() {
    let Some(w) = Weed::start("rclone_and_tandem_read_each_others_mirror") else { return };
    w.bucket("shared");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    t.file("a.txt", "aaa\n").file("sub/b.txt", "bbb\n").file("sub/deeper/c.txt", "ccc\n");
    t.stamp_all();
    let src = sb.src();
    let mut local = OsString::from(src.as_os_str());
    local.push("/");
    w.rclone_os(&[os("sync"), &local, os("w:shared/by-rclone")]).expect("rclone sync");
    // rclone's mirror is tandem's: same sizes, same mtimes, nothing to copy.
    let r = srun(&w, &[os("--json"), src.as_os_str(), os("s3://shared/by-rclone")]);
    r.ok();
    assert_eq!(summary(&r)["copied"].as_u64(), Some(0), "{r:?}");
    // And tandem's mirror is rclone's: its check finds nothing to do.
    srun(&w, &[src.as_os_str(), os("s3://shared/by-tandem")]).ok();
    let out = w.rclone_os(&[os("sync"), os("-v"), &local, os("w:shared/by-tandem")]);
    let out = out.expect("rclone sync");
    assert!(!out.contains("Copied"), "{out}");
    assert_mirrored(&w, &src, "shared/by-tandem");
}

/// The PUTs of small objects that tandem sends itself (`src/s3/direct.rs`, without
/// the SDK's per-request pipeline) write what the SDK writes: the same keys, sizes,
/// contents, mtimes, modes and content types as a run with `TANDEM_S3_SDK_ONLY=1`, for
/// names that need percent-encoding, an empty file, an empty directory, a symlink, a
/// private mode; and `-vv` says how many went which way.
#[test]
fn direct_puts_write_what_the_sdk_writes() {
    let Some(w) = Weed::start("direct_puts_write_what_the_sdk_writes") else { return };
    w.bucket("same");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    let names = [
        "plain.txt",
        "with space.txt",
        "plus+equals=amp&.txt",
        "per%cent~tilde.txt",
        "ünïcödé/ファイル.txt",
        "q?mark#hash.txt",
        "brackets[1](2){3}!'*,;:@$.txt",
        "deep/er/still/file",
    ];
    for (i, n) in names.iter().enumerate() {
        t.file(n, format!("contents {i}\n").repeat(i + 1));
    }
    t.file_mode("secret.txt", "private\n", 0o600)
        .file("empty.txt", "")
        .dir("empty dir")
        .symlink("link", "plain.txt");
    t.stamp_all();
    let src = sb.src();

    let r = srun(&w, &[os("-vv"), src.as_os_str(), os("s3://same/direct")]);
    r.ok();
    let said: Vec<&str> = r.stderr.lines().filter(|l| l.contains("PUTs sent directly")).collect();
    assert_eq!(said.len(), 1, "{r:?}");
    // 10 files, a symlink, 5 directory markers and the prefix's own (its attributes).
    assert!(said[0].ends_with("S3: 17 PUTs sent directly, 0 passed to the SDK"), "{r:?}");

    let mut cmd = w.tandem();
    cmd.env("TANDEM_S3_SDK_ONLY", "1");
    let r = run_with(cmd, [os("-vv"), src.as_os_str(), os("s3://same/sdk")], Duration::from_secs(120));
    r.ok();
    assert!(!r.stderr.contains("PUTs sent directly"), "{r:?}");

    assert_mirrored(&w, &src, "same/direct");
    // All but the server's own time of creation.
    let read = |at: &str| {
        let mut objects = w.objects(at);
        for o in objects.values_mut() {
            o["Metadata"].as_object_mut().expect("metadata").remove("btime");
        }
        objects
    };
    let (direct, sdk) = (read("same/direct"), read("same/sdk"));
    assert_eq!(direct.len(), names.len() + 3, "{direct:#?}");
    assert_eq!(direct, sdk, "what rclone reads of the two prefixes");
    assert_eq!(direct["secret.txt"]["Metadata"]["mode"], "100600", "{direct:#?}");
    assert!(w.is_dir("same/direct/empty dir"));
    // The next run finds nothing to send.
    let r = srun(&w, &[os("--json"), src.as_os_str(), os("s3://same/direct")]);
    r.ok();
    let s = summary(&r);
    assert_eq!((s["copied"].as_u64(), s["meta"].as_u64()), (Some(0), Some(0)), "{r:?}");
}

/// `AWS_ENDPOINT_URL_S3` alone (no `AWS_ENDPOINT_URL`) is the endpoint of every
/// request, direct PUTs included, spoken to path-style as any S3-compatible endpoint.
#[test]
fn an_s3_only_endpoint_variable_is_where_every_request_goes() {
    let Some(w) = Weed::start("an_s3_only_endpoint_variable_is_where_every_request_goes") else { return };
    w.bucket("service");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    t.file("a.txt", "aaa\n").file("sub/b.txt", "bbb\n");
    t.stamp_all();
    let src = sb.src();
    let mut cmd = w.tandem();
    cmd.env_remove("AWS_ENDPOINT_URL").env("AWS_ENDPOINT_URL_S3", w.endpoint());
    let r = run_with(cmd, [os("-vv"), src.as_os_str(), os("s3://service/p")], Duration::from_secs(120));
    r.ok();
    assert!(r.stderr.contains("S3: 4 PUTs sent directly, 0 passed to the SDK"), "{r:?}");
    assert_mirrored(&w, &src, "service/p");
}

/// A direct PUT that the server refuses is sent again through the SDK, whose answer is
/// the one reported (with the path, per entry); the direct path is off for the rest of
/// the run, so the refusal costs an extra request for each PUT then in flight (64 at
/// most), not one per object.
#[test]
fn a_refused_direct_put_is_sent_again_by_the_sdk() {
    let Some(w) = Weed::start("a_refused_direct_put_is_sent_again_by_the_sdk") else { return };
    w.bucket("readonly");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    const N: usize = 150;
    for i in 0..N {
        t.file(format!("f{i}.txt"), format!("file {i}\n"));
    }
    let src = sb.src();
    srun(&w, &[src.as_os_str(), os("s3://readonly/p")]).ok();
    for i in 0..N {
        t.rewrite(format!("f{i}.txt"), format!("file {i}, changed\n"));
    }
    // An identity that may read and list, not write: every PUT is refused.
    let mut cmd = w.tandem();
    cmd.env("AWS_ACCESS_KEY_ID", util::s3d::READER_KEY)
        .env("AWS_SECRET_ACCESS_KEY", util::s3d::READER_SECRET);
    let r = run_with(cmd, [os("-vv"), src.as_os_str(), os("s3://readonly/p")], Duration::from_secs(120));
    r.expect_code(3);
    for i in 0..N {
        let path = format!("s3://readonly/p/f{i}.txt:");
        let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains(&path)).collect();
        assert!(lines.len() == 1 && lines[0].contains("access denied by S3"), "{path}:\n{r:?}");
    }
    let said: Vec<&str> = r.stderr.lines().filter(|l| l.contains("PUTs sent directly")).collect();
    assert_eq!(said.len(), 1, "{r:?}");
    let passed = said[0]
        .split("S3: 0 PUTs sent directly, ")
        .nth(1)
        .and_then(|rest| {
            rest.strip_suffix(
                " passed to the SDK; direct PUTs are off since an answer of HTTP 403, the SDK sends them",
            )
        })
        .and_then(|n| n.parse::<usize>().ok());
    assert!(passed.is_some_and(|n| (1..=64).contains(&n)), "{r:?}");
    assert_eq!(w.cat("readonly/p/f0.txt"), b"file 0\n");
}

#[test]
fn dry_run_output_and_guards() {
    let Some(w) = Weed::start("dry_run_output_and_guards") else { return };
    w.bucket("guarded");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    for i in 0..10 {
        t.file(format!("f{i}"), format!("{i}\n"));
    }
    t.stamp_all();
    let (src, dest) = (sb.src(), os("s3://guarded/p"));
    let r = srun(&w, &[os("--dry-run"), src.as_os_str(), dest]);
    r.ok();
    assert_eq!(r.stdout_lines().iter().filter(|l| l.starts_with("copy ")).count(), 10, "{r:?}");
    assert!(w.objects("guarded").is_empty(), "a dry run puts nothing");
    let r = srun(&w, &[os("--json"), src.as_os_str(), dest]);
    r.ok();
    let copies = r.json_events().iter().filter(|e| event_name(e) == "copy").count();
    assert_eq!(copies, 10, "{r:?}");
    assert_eq!(summary(&r)["exit_code"].as_u64(), Some(0));
    for i in 0..6 {
        t.remove(format!("f{i}"));
    }
    let r = srun(&w, &[os("--max-delete"), os("3"), src.as_os_str(), dest]);
    r.expect_code(4);
    assert_eq!(w.objects("guarded/p").len(), 10, "refused: nothing deleted");
    for i in 6..10 {
        t.remove(format!("f{i}"));
    }
    let r = srun(&w, &[src.as_os_str(), dest]);
    r.expect_code(4);
    assert!(r.stderr.contains("empty"), "{r:?}");
    assert_eq!(w.objects("guarded/p").len(), 10);
    // -v lines in the dry run's (path) order, whatever order the uploads end in.
    let t2 = Tree::create(sb.join("many"));
    for i in 0..30 {
        t2.file(format!("d{}/f{i:02}", i % 4), format!("{i}\n"));
    }
    t2.file("d1/e/deep", "deep\n").symlink("link", "d0/f00");
    let dest = os("s3://guarded/order");
    let planned = srun(&w, &[os("--dry-run"), t2.root.as_os_str(), dest]);
    planned.ok();
    let done = srun(&w, &[os("-v"), t2.root.as_os_str(), dest]);
    done.ok();
    assert_eq!(done.stdout_lines(), planned.stdout_lines(), "{done:?}");
}

/// The error is said in one line (besides the summary).
#[track_caller]
fn one_line(r: &Run, want: &str) {
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains(want)).collect();
    assert_eq!(lines.len(), 1, "want one line with '{want}':\n{r:?}");
    let others: Vec<&str> =
        r.stderr.lines().filter(|l| !l.contains(want) && !l.contains("entries scanned")).collect();
    assert!(others.is_empty(), "{r:?}");
}

#[test]
fn connection_errors_are_one_line_each() {
    let Some(w) = Weed::start("connection_errors_are_one_line_each") else { return };
    w.bucket("present");
    let sb = Sandbox::new();
    sb.src_tree().file("f", "x\n");
    let src = sb.src();

    let mut cmd = w.tandem();
    cmd.env("AWS_SECRET_ACCESS_KEY", "wrong-secret");
    let r = run_with(cmd, [src.as_os_str(), os("s3://present/x")], Duration::from_secs(120));
    r.expect_code(1);
    one_line(&r, "credentials were refused");

    let mut cmd = w.tandem();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let r = run_with(cmd, [src.as_os_str(), os("s3://present/x")], Duration::from_secs(120));
    r.expect_code(1);
    one_line(&r, "no S3 credentials found");

    let r = srun(&w, &[src.as_os_str(), os("s3://absent-bucket/x")]);
    r.expect_code(1);
    one_line(&r, "no such bucket 'absent-bucket'");

    let port = util::sshd::free_port();
    let ep = format!("http://127.0.0.1:{port}");
    let r = srun(&w, &[os("--s3-endpoint"), os(&ep), src.as_os_str(), os("s3://present/x")]);
    r.expect_code(1);
    one_line(&r, "cannot reach the S3 endpoint");
    assert!(w.objects("present").is_empty());

    // Usage errors: exit 2.
    srun(&w, &[src.as_os_str(), os("s3://No_Such/x")]).expect_code(2);
    srun(&w, &[os("s3://present/x"), src.as_os_str()]).expect_code(2);
}

#[test]
fn names_that_cannot_be_keys_are_reported_and_the_rest_mirrored() {
    let Some(w) = Weed::start("names_that_cannot_be_keys_are_reported_and_the_rest_mirrored") else { return };
    w.bucket("names");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    let long = "d".repeat(250);
    let deep = format!("{long}/{long}/{long}/{long}/{}", "f".repeat(100));
    t.file("ok.txt", "fine\n").file(bad_name(), "not utf-8\n").file(&deep, "too deep\n");
    let src = sb.src();
    let r = srun(&w, &[src.as_os_str(), os("s3://names/p")]);
    r.expect_code(3);
    assert!(r.stderr.contains("not valid UTF-8"), "{r:?}");
    assert!(r.stderr.contains("S3 allows 1024"), "{r:?}");
    let objects = w.objects("names/p");
    assert!(objects.contains_key("ok.txt"), "{objects:?}");
}

#[test]
fn large_files_go_multipart_and_a_killed_upload_leaves_nothing() {
    let Some(w) = Weed::start("large_files_go_multipart_and_a_killed_upload_leaves_nothing") else { return };
    w.bucket("large");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    let data = pseudo_random(40 << 20, 7);
    t.file("big.bin", &data).file("small", "s\n");
    let src = sb.src();
    // Slowed down, so that it is killed with parts uploaded and the upload open.
    let mut cmd = w.command();
    cmd.args(["--bwlimit", "4M"]);
    let p = Proc::spawn_cmd(cmd, &[src.as_os_str(), os("s3://large/p")]);
    wait_for_explained(
        "a multipart upload in progress",
        Duration::from_secs(60),
        || !w.uploads("large").is_empty(),
        || p.dump(),
    );
    assert!(p.kill9());
    assert!(!w.objects("large/p").contains_key("big.bin"), "no partial object");
    // The next run aborts what was left, and uploads the file whole.
    srun(&w, &[src.as_os_str(), os("s3://large/p")]).ok();
    assert!(w.uploads("large").is_empty(), "left over: {:?}", w.uploads("large"));
    assert_eq!(w.cat("large/p/big.bin"), data);
    assert_mirrored(&w, &src, "large/p");
}

#[test]
fn watch_mode_mirrors_changes_and_renames_into_the_bucket() {
    let Some(w) = Weed::start("watch_mode_mirrors_changes_and_renames_into_the_bucket") else { return };
    w.bucket("watched");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    t.file("a.txt", "a\n").file("dir/b.txt", "b\n");
    let src = sb.src();
    let p = Proc::spawn_cmd(
        w.command(),
        &[os("--watch"), os("--json"), src.as_os_str(), os("s3://watched/live")],
    );
    p.wait_initial_sync(Duration::from_secs(60));
    assert_mirrored(&w, &src, "watched/live");
    t.file("new.txt", "new\n");
    wait_for_explained(
        "new.txt in the bucket",
        Duration::from_secs(30),
        || w.objects("watched/live").contains_key("new.txt"),
        || p.dump(),
    );
    fs::rename(t.p("dir"), t.p("moved")).expect("rename");
    fs::rename(t.p("a.txt"), t.p("moved/a.txt")).expect("rename");
    wait_for_explained(
        "the renames in the bucket",
        Duration::from_secs(30),
        || bucket_diff(&w, &src, "watched/live").is_empty(),
        || format!("{:?}\n{}", bucket_diff(&w, &src, "watched/live"), p.dump()),
    );
    let renamed: Vec<String> =
        p.events().iter().filter(|e| event_name(e) == "rename").map(|e| e["path"].to_string()).collect();
    assert!(
        renamed.iter().any(|r| r.contains("moved")),
        "a server-side rename, not a new upload: {renamed:?}\n{}",
        p.dump()
    );
    p.stop(libc::SIGTERM, Duration::from_secs(20));
}

/// Turns SeaweedFS's S3 circuit breaker on: at most `limit` write requests at once
/// across the gateway, the rest refused with HTTP 503 `ErrTooManyRequest`; waits
/// until the gateway refuses a burst (rclone, 32 uploads at once, no retries, into
/// prefixes `burst-N` of `bucket`).
fn throttle_writes(w: &Weed, sb: &Sandbox, bucket: &str, limit: u32) {
    w.shell(&format!("s3.circuitBreaker -global -type Count -actions Write -values {limit} -apply"));
    let burst = sb.join("burst");
    for i in 0..200 {
        fs::create_dir_all(&burst).expect("burst dir");
        fs::write(burst.join(format!("b{i}")), format!("burst {i}\n")).expect("burst file");
    }
    let mut n = 0;
    wait_for("the gateway throttles writes", Duration::from_secs(30), || {
        n += 1;
        let to = format!("w:{bucket}/burst-{n}");
        let args = ["copy", "--transfers", "32", "--retries", "1", "--low-level-retries", "1"];
        let mut argv: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        argv.push(burst.as_os_str());
        argv.push(OsStr::new(&to));
        matches!(w.rclone_os(&argv), Err(e) if e.contains("ErrTooManyRequest"))
    });
}

#[test]
fn throttling_is_retried_with_back_off() {
    let Some(w) = Weed::start("throttling_is_retried_with_back_off") else { return };
    w.bucket("slow");
    let sb = Sandbox::new();
    let t = sb.src_tree();
    for d in 0..6 {
        for f in 0..100 {
            t.file(format!("d{d}/f{f}.txt"), format!("file {d}/{f}\n"));
        }
    }
    t.stamp_all();
    let src = sb.src();
    throttle_writes(&w, &sb, "slow", 2);

    // With one attempt per request, refused uploads are per-entry errors, each said
    // with its path and what to do; the rest is mirrored; exit 3. The SDK sends every
    // request (a direct PUT would be a first attempt, and there is only one).
    let mut cmd = w.tandem();
    cmd.env("AWS_MAX_ATTEMPTS", "1");
    let r = run_with(cmd, [os("-vv"), src.as_os_str(), os("s3://slow/once")], Duration::from_secs(300));
    r.expect_code(3);
    assert!(!r.stderr.contains("PUTs sent directly"), "{r:?}");
    let refused: Vec<&str> = r.stderr.lines().filter(|l| l.contains("kept asking to slow down")).collect();
    assert!(!refused.is_empty(), "{r:?}");
    for l in &refused {
        assert!(
            l.contains("s3://slow/once/d")
                && l.contains("ErrTooManyRequest")
                && l.contains("AWS_MAX_ATTEMPTS"),
            "{l}"
        );
    }

    // tandem's own retry policy: every refused request is retried with back-off and
    // the run ends in sync; it says that the server throttled it.
    // Direct PUTs that were throttled went through the SDK's retries, still direct
    // for the rest.
    let r =
        run_with(w.tandem(), [os("-vv"), src.as_os_str(), os("s3://slow/mirror")], Duration::from_secs(600));
    r.ok();
    assert!(r.stderr.contains("asked to slow down"), "the server throttled this run too:\n{r:?}");
    let said = r.stderr.lines().find(|l| l.contains("PUTs sent directly")).unwrap_or_default();
    assert!(
        said.contains("directly, ")
            && !said.contains("S3: 0 PUTs")
            && !said.contains(" 0 passed")
            && !said.contains("off"),
        "{r:?}"
    );
    assert_mirrored(&w, &src, "slow/mirror");

    // And the prefix left half done by the single-attempt run is completed.
    let r = run_with(w.tandem(), [src.as_os_str(), os("s3://slow/once")], Duration::from_secs(600));
    r.ok();
    assert_mirrored(&w, &src, "slow/once");
}

/// A certificate authority and a server certificate for 127.0.0.1 signed by it
/// (openssl); returns (CA certificate, server certificate, server key).
fn make_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key, csr, ext) =
        (dir.join("server.pem"), dir.join("server.key"), dir.join("server.csr"), dir.join("ext.cnf"));
    fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext.cnf");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: Vec<Vec<OsString>> = vec![
        [os("req"), os("-x509")]
            .into_iter()
            .chain(ec.iter().map(|s| os(s)))
            .chain([os("-keyout"), ca_key.as_os_str(), os("-out"), ca.as_os_str()])
            .chain([os("-days"), os("2"), os("-subj"), os("/CN=tandem test CA")])
            .map(OsString::from)
            .collect(),
        [os("req")]
            .into_iter()
            .chain(ec.iter().map(|s| os(s)))
            .chain([
                os("-keyout"),
                key.as_os_str(),
                os("-out"),
                csr.as_os_str(),
                os("-subj"),
                os("/CN=127.0.0.1"),
            ])
            .map(OsString::from)
            .collect(),
        [
            os("x509"),
            os("-req"),
            os("-in"),
            csr.as_os_str(),
            os("-CA"),
            ca.as_os_str(),
            os("-CAkey"),
            ca_key.as_os_str(),
            os("-CAcreateserial"),
            os("-out"),
            cert.as_os_str(),
            os("-days"),
            os("2"),
            os("-extfile"),
            ext.as_os_str(),
        ]
        .into_iter()
        .map(OsString::from)
        .collect(),
    ];
    for args in steps {
        let out = std::process::Command::new("openssl").args(&args).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (ca, cert, key)
}

#[test]
fn https_endpoint_trusts_the_certificates_of_aws_ca_bundle() {
    let test = "https_endpoint_trusts_the_certificates_of_aws_ca_bundle";
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        return util::skip(test, "openssl missing (apt-get install openssl)");
    }
    let certs = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = make_certificates(certs.path());
    let Some(w) = Weed::start_with(test, Some(util::s3d::Tls { cert: &cert, key: &key })) else { return };
    w.bucket("secure");
    let sb = Sandbox::new();
    sb.src_tree().file("a.txt", "over TLS\n").file("d/b.txt", "b\n").dir("empty").stamp_all();
    let src = sb.src();
    let https = w.https_endpoint();

    // The system's certificates do not know this server's CA: refused, in one line.
    let r = srun(&w, &[os("--s3-endpoint"), os(&https), src.as_os_str(), os("s3://secure/x")]);
    r.expect_code(1);
    one_line(&r, "its TLS certificate is not trusted by AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt");
    assert!(r.stderr.contains("set AWS_CA_BUNDLE to a PEM file"), "{r:?}");

    // AWS_CA_BUNDLE holding the CA: trusted, mirrored.
    let mut cmd = w.tandem();
    cmd.env("AWS_CA_BUNDLE", &ca);
    let r = run_with(
        cmd,
        [os("--s3-endpoint"), os(&https), src.as_os_str(), os("s3://secure/x")],
        Duration::from_secs(120),
    );
    r.ok();
    assert_mirrored(&w, &src, "secure/x");

    // A bundle that cannot be read, or holds no certificate: one line, exit 1.
    let mut cmd = w.tandem();
    cmd.env("AWS_CA_BUNDLE", certs.path().join("absent.pem"));
    let r = run_with(
        cmd,
        [os("--s3-endpoint"), os(&https), src.as_os_str(), os("s3://secure/x")],
        Duration::from_secs(120),
    );
    r.expect_code(1);
    one_line(&r, "AWS_CA_BUNDLE=");
    let mut cmd = w.tandem();
    cmd.env("AWS_CA_BUNDLE", &key);
    let r = run_with(
        cmd,
        [os("--s3-endpoint"), os(&https), src.as_os_str(), os("s3://secure/x")],
        Duration::from_secs(120),
    );
    r.expect_code(1);
    one_line(&r, "no PEM certificate");

    // Over http:// the bundle plays no part (as for the AWS CLI), even a missing one.
    sb.src_tree().file("c.txt", "plain\n").stamp_all();
    let mut cmd = w.tandem();
    cmd.env("AWS_CA_BUNDLE", certs.path().join("absent.pem"));
    let r = run_with(cmd, [src.as_os_str(), os("s3://secure/x")], Duration::from_secs(120));
    r.ok();
    assert_mirrored(&w, &src, "secure/x");
}
