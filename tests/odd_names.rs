//! Odd names and sizes: control characters, leading dashes, invalid UTF-8,
//! 255-byte names, a path longer than PATH_MAX, 100,000 entries in one
//! directory, a sparse 1 GiB file and a sparse file larger than 4 GiB.

mod robust;
mod util;

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

use robust::*;
use util::*;

fn os(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

/// Names that break naive quoting, printing, option parsing or UTF-8.
fn odd_names() -> Vec<OsString> {
    let mut v: Vec<OsString> = [
        "new\nline",
        "\nleading newline",
        "back\\slash",
        "\\",
        "-rf",
        "--help",
        "-",
        "--",
        "-v",
        " leading space",
        "trailing space ",
        "   ",
        "tab\there",
        "cr\rhere",
        "esc\x1b[31mred\x1b[0m",
        "title\x1b]0;pwned\x07",
        "bell\x07",
        "del\x7f",
        "*",
        "?",
        "[x]",
        "!bang",
        "#hash",
        "~",
        "...",
        "..hidden",
        "$HOME",
        "`cmd`",
        "quote\"d",
        "apo'strophe",
        "semi;colon",
        "pipe|amp&",
        "percent%s%n",
        "{brace}",
        "\u{202e}txt.exe",
        "zero\u{200b}width",
        "ﬁligature",
        "e\u{301}", // e + combining acute (NFD)
        "\u{e9}",   // é (NFC)
    ]
    .iter()
    .map(OsString::from)
    .collect();
    v.push(os(b"\xff\xfe"));
    v.push(os(b"caf\xe9 latin1"));
    v.push(os(b"\xc3\x28 bad continuation"));
    v.push(os(b"\xed\xa0\x80 surrogate"));
    v.push(OsString::from("a".repeat(255)));
    v.push(OsString::from("é".repeat(127) + "x")); // 255 bytes
    v.push(os(&[b'\xff'; 255]));
    v
}

#[test]
fn odd_names_are_mirrored_and_printed_safely() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    let names = odd_names();
    for (i, n) in names.iter().enumerate() {
        let p = Path::new(n);
        match i % 4 {
            0 => {
                src.file(p, format!("file {i}\n"));
            }
            1 => {
                src.file(Path::new(n).join(n), format!("nested {i}\n"));
            }
            2 => {
                src.symlink(p, n);
            }
            _ => {
                src.file_mode(p, format!("exec {i}\n"), 0o755);
            }
        }
    }
    // A dir with a 255-byte name holding a 255-byte name, and links whose
    // targets are odd too.
    let long = "d".repeat(255);
    src.file(Path::new(&long).join("f".repeat(255)), "long in long\n");
    src.symlink("--link", "-rf").symlink("link\nnl", "new\nline").symlink(os(b"l\xff"), os(b"\xff\xfe"));
    src.stamp_all();

    // JSON: every line an object, even with newlines and invalid UTF-8 in names.
    let dj = sb.join("dst_json");
    let r = run(["--json".as_ref(), sb.src().as_os_str(), dj.as_os_str()]);
    r.ok();
    let evs = r.json_events();
    assert_trees_equal(&sb.src(), &dj);
    let changes = change_events(&evs).len();
    let copies = paths_of(&evs, "copy");
    assert!(copies.contains(&"new\nline".to_string()), "no copy event for \"new\\nline\": {copies:?}");
    assert!(
        copies.contains(&"\u{fffd}\u{fffd}".to_string()) || copies.iter().any(|c| c.contains('\u{fffd}'))
    );

    // -v: one line per change, no terminal escape sequences off a terminal.
    let r = run(["-v".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    assert_trees_equal(&sb.src(), &sb.dst());
    let esc_out = r.stdout_raw.iter().filter(|&&b| b == 0x1b).count();
    let esc_err = r.stderr.bytes().filter(|&b| b == 0x1b).count();
    let lines = r.stdout_lines().len();
    let mut problems = Vec::new();
    if esc_out + esc_err > 0 {
        problems.push(format!(
            "names printed raw: {esc_out} ESC bytes on stdout, {esc_err} on stderr (README: output that is not a terminal contains no escape codes)"
        ));
    }
    if lines != changes {
        problems.push(format!("-v printed {lines} lines for {changes} changes (README: one line each)"));
    }
    assert!(problems.is_empty(), "{}\n{r:?}", problems.join("\n"));

    // Nothing to do the second time.
    let before = ctimes(&sb.dst());
    let r = run(["-v".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()]);
    r.ok();
    assert!(r.stdout.trim().is_empty(), "second run itemized changes:\n{r:?}");
    assert_unchanged("DEST ctimes after the 2nd run", &before, &ctimes(&sb.dst()));

    // Odd names are deleted as well as created.
    for n in names.iter().step_by(2) {
        src.remove(Path::new(n));
    }
    src.remove(&long);
    run([sb.src(), sb.dst()]).ok();
    assert_trees_equal(&sb.src(), &sb.dst());
}

// ---------------------------------------------------------------------------
// Deeper than PATH_MAX
// ---------------------------------------------------------------------------

const DEPTH: usize = 40;

fn level_name(i: usize) -> OsString {
    OsString::from(format!("{i:03}{}", "n".repeat(197)))
}

/// Opens `root/level0/.../level{depth-1}`, one openat at a time.
fn open_chain(root: &Path, depth: usize) -> std::io::Result<OwnedFd> {
    let mut fd = open_dir(root)?;
    for i in 0..depth {
        fd = open_dir_at(&fd, &level_name(i))?;
    }
    Ok(fd)
}

/// Compares the chain level by level (names, kinds, modes, mtimes, file
/// contents, link targets), all directory-relative.
fn chain_diff(src: &Path, dst: &Path) -> Vec<String> {
    let mut diffs = Vec::new();
    let (mut a, mut b) = (open_dir(src).unwrap(), open_dir(dst).unwrap());
    for level in 0..=DEPTH {
        let (la, lb) = (list_at(&a).unwrap(), list_at(&b).unwrap());
        if la != lb {
            diffs.push(format!("level {level}: names {la:?} vs {lb:?}"));
            return diffs;
        }
        for n in &la {
            let (sa, sb) = (stat_at(&a, n).unwrap(), stat_at(&b, n).unwrap());
            let kind = sa.st_mode & libc::S_IFMT;
            if kind != sb.st_mode & libc::S_IFMT {
                diffs.push(format!("level {level} {n:?}: type differs"));
                continue;
            }
            if kind != libc::S_IFLNK && sa.st_mode != sb.st_mode {
                diffs.push(format!("level {level} {n:?}: mode {:o} vs {:o}", sa.st_mode, sb.st_mode));
            }
            if (sa.st_mtime, sa.st_mtime_nsec) != (sb.st_mtime, sb.st_mtime_nsec) {
                diffs.push(format!("level {level} {n:?}: mtime differs"));
            }
            if kind == libc::S_IFREG && read_file_at(&a, n).unwrap() != read_file_at(&b, n).unwrap() {
                diffs.push(format!("level {level} {n:?}: content differs"));
            }
            if is_temp_name(n) {
                diffs.push(format!("level {level} {n:?}: temporary left"));
            }
        }
        if level < DEPTH {
            a = open_dir_at(&a, &level_name(level)).unwrap();
            b = open_dir_at(&b, &level_name(level)).unwrap();
        }
    }
    diffs
}

fn set_mtime_at(dir: &OwnedFd, name: &OsStr, secs: i64) {
    let c = std::ffi::CString::new(name.as_bytes()).unwrap();
    let ts = [
        libc::timespec { tv_sec: secs, tv_nsec: 123_456_789 },
        libc::timespec { tv_sec: secs, tv_nsec: 123_456_789 },
    ];
    // SAFETY: valid fd, name and two timespecs.
    let rc = unsafe { libc::utimensat(dir.as_raw_fd(), c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    assert_eq!(rc, 0, "utimensat: {}", std::io::Error::last_os_error());
}

#[test]
fn path_longer_than_path_max() {
    let sb = Sandbox::new();
    let src = sb.src();
    sb.src_tree().file("keep.txt", "keeps SOURCE non-empty\n");
    let total: usize = (0..DEPTH).map(|i| level_name(i).len() + 1).sum();
    assert!(total > libc::PATH_MAX as usize, "{total} bytes is not beyond PATH_MAX");
    // Build it directory-relative, with a file at every 10th level.
    let mut dirs = vec![open_dir(&src).unwrap()];
    for i in 0..DEPTH {
        let parent = dirs.last().unwrap();
        mkdir_at(parent, &level_name(i), 0o755).unwrap();
        if i % 10 == 0 {
            write_file_at(parent, OsStr::new("at_level"), format!("level {i}\n").as_bytes()).unwrap();
        }
        let child = open_dir_at(parent, &level_name(i)).unwrap();
        dirs.push(child);
    }
    let bottom = dirs.last().unwrap();
    write_file_at(bottom, OsStr::new("bottom.txt"), b"at the bottom\n").unwrap();
    let (t, l) = (c"../../up", c"link");
    // SAFETY: valid fd and NUL-terminated strings.
    assert_eq!(unsafe { libc::symlinkat(t.as_ptr(), bottom.as_raw_fd(), l.as_ptr()) }, 0);
    // Distinct mtimes, deepest first.
    for (i, d) in dirs.iter().enumerate().rev() {
        for n in list_at(d).unwrap() {
            set_mtime_at(d, &n, BASE_SECS + i as i64);
        }
    }
    drop(dirs);

    let r = run_timeout([&src, &sb.dst()], Duration::from_secs(60));
    r.ok();
    let d = chain_diff(&src, &sb.dst());
    assert!(d.is_empty(), "deep chain differs after the mirror:\n  {}\n{r:?}", d.join("\n  "));

    // Change the bottom file, rerun.
    let bottom = open_chain(&src, DEPTH).unwrap();
    write_file_at(&bottom, OsStr::new("bottom.txt"), b"changed at the bottom\n").unwrap();
    set_mtime_at(&bottom, OsStr::new("bottom.txt"), BASE_SECS + 999);
    drop(bottom);
    let r = run_timeout([&src, &sb.dst()], Duration::from_secs(60));
    r.ok();
    let d = chain_diff(&src, &sb.dst());
    assert!(d.is_empty(), "deep chain differs after an update:\n  {}\n{r:?}", d.join("\n  "));

    // Remove the chain from SOURCE: DEST's copy is deleted.
    let root = open_dir(&src).unwrap();
    let top = open_dir_at(&root, &level_name(0)).unwrap();
    clear_at(&top).unwrap();
    drop(top);
    // SAFETY: valid fd and NUL-terminated name.
    let name = std::ffi::CString::new(level_name(0).into_vec()).unwrap();
    assert_eq!(unsafe { libc::unlinkat(root.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) }, 0);
    let r = run_timeout([&src, &sb.dst()], Duration::from_secs(60));
    r.ok();
    assert_eq!(listing(&sb.dst()), listing(&src), "DEST still holds the chain\n{r:?}");
    assert_trees_equal(&src, &sb.dst());
    // Clean up directory-relative (in case something above failed).
    for dir in [sb.src(), sb.dst()] {
        if let Ok(fd) = open_dir(&dir) {
            let _ = clear_at(&fd);
        }
    }
}

// ---------------------------------------------------------------------------
// Very many entries in one directory
// ---------------------------------------------------------------------------

#[test]
fn hundred_thousand_entries_in_one_directory() {
    let n: usize = std::env::var("TANDEM_WIDE_DIR").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let sb = Sandbox::new_fast();
    let wide = sb.src().join("wide");
    fs::create_dir_all(&wide).unwrap();
    let t0 = Instant::now();
    for i in 0..n {
        let p = wide.join(format!("entry-{i:06}"));
        match i % 50 {
            0 => std::os::unix::fs::symlink(format!("entry-{:06}", i + 1), &p).unwrap(),
            1 => fs::create_dir(&p).unwrap(),
            _ => fs::write(&p, (i as u32).to_le_bytes()).unwrap(),
        }
    }
    eprintln!("built {n} entries in {:?}", t0.elapsed());
    let t0 = Instant::now();
    run_timeout([sb.src(), sb.dst()], Duration::from_secs(120)).ok();
    eprintln!("mirrored in {:?}", t0.elapsed());
    assert_trees_equal(&sb.src(), &sb.dst());
    assert_eq!(listing(&sb.dst().join("wide")).len(), n);

    // Delete every third entry, change every seventh: one more run.
    for i in 0..n {
        let p = wide.join(format!("entry-{i:06}"));
        if i % 3 == 0 {
            remove_any(&p);
        } else if i % 7 == 0 && i % 50 > 1 {
            fs::write(&p, b"changed!").unwrap();
        }
    }
    let t0 = Instant::now();
    run_timeout([sb.src(), sb.dst()], Duration::from_secs(120)).ok();
    eprintln!("updated in {:?}", t0.elapsed());
    assert_trees_equal(&sb.src(), &sb.dst());
}

// ---------------------------------------------------------------------------
// Sparse and huge files
// ---------------------------------------------------------------------------

/// Data segments of a file (SEEK_DATA/SEEK_HOLE).
fn data_segments(f: &File) -> Vec<(u64, u64)> {
    let len = f.metadata().unwrap().len() as i64;
    let mut segs = Vec::new();
    let mut off = 0i64;
    while off < len {
        // SAFETY: lseek on a valid fd.
        let start = unsafe { libc::lseek(f.as_raw_fd(), off, libc::SEEK_DATA) };
        if start < 0 {
            break; // ENXIO: no more data
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(f.as_raw_fd(), start, libc::SEEK_HOLE) };
        let end = if end < 0 { len } else { end };
        segs.push((start as u64, end as u64));
        off = end;
    }
    segs
}

/// Equal content, compared over the union of both files' data segments
/// (outside them both files read as zeros). Returns the first difference.
fn sparse_diff(a: &Path, b: &Path) -> Option<String> {
    let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (la, lb) = (fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    if la != lb {
        return Some(format!("size {la} vs {lb}"));
    }
    let mut segs = data_segments(&fa);
    segs.extend(data_segments(&fb));
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    for (start, end) in segs {
        let mut off = start;
        while off < end {
            let n = ((end - off) as usize).min(1 << 20);
            fa.read_exact_at(&mut ba[..n], off).unwrap();
            fb.read_exact_at(&mut bb[..n], off).unwrap();
            if ba[..n] != bb[..n] {
                return Some(format!("content differs in the 1 MiB from offset {off}"));
            }
            off += n as u64;
        }
    }
    None
}

fn make_sparse(path: &Path, len: u64, data_at: &[u64]) {
    let mut f = File::create(path).unwrap();
    f.set_len(len).unwrap();
    for (i, &off) in data_at.iter().enumerate() {
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(&pseudo_random(8192, i as u64 + 1)).unwrap();
    }
    f.sync_all().unwrap();
}

/// Skips (returning false) when the file system cannot make sparse files.
fn sparse_supported(test: &str, path: &Path) -> bool {
    let blocks = lstat(path).blocks();
    if blocks * 512 > 64 << 20 {
        skip(test, &format!("{} is not sparse here ({} blocks)", path.display(), blocks));
        return false;
    }
    true
}

#[track_caller]
fn check_sparse_copy(src: &Path, dst: &Path) {
    let (ms, md) = (lstat(src), lstat(dst));
    assert_eq!(md.len(), ms.len(), "size");
    assert_eq!((md.mtime(), md.mtime_nsec()), (ms.mtime(), ms.mtime_nsec()), "mtime");
    assert_eq!(md.mode(), ms.mode(), "mode");
    // Holes kept: at most 1 MiB more allocated than SOURCE.
    assert!(
        md.blocks() <= ms.blocks() + 2048,
        "holes not kept: DEST {} has {} blocks of 512 bytes ({} MiB) for SOURCE's {} ({} KiB)",
        dst.display(),
        md.blocks(),
        md.blocks() / 2048,
        ms.blocks(),
        ms.blocks() / 2
    );
    if let Some(d) = sparse_diff(src, dst) {
        panic!("{} differs from SOURCE: {d}", dst.display());
    }
}

#[test]
fn sparse_1gib_file_keeps_its_holes() {
    let sb = Sandbox::new_fast();
    let src = sb.src_tree();
    let f = src.p("sparse.img");
    const GIB: u64 = 1 << 30;
    make_sparse(&f, GIB, &[0, 300 << 20, (700 << 20) + 12345, GIB - 8192]);
    src.file("small.txt", "small\n").stamp_all();
    if !sparse_supported("sparse_1gib_file_keeps_its_holes", &f) {
        return;
    }
    let r = run_timeout([sb.src(), sb.dst()], Duration::from_secs(120));
    r.ok();
    check_sparse_copy(&f, &sb.dst().join("sparse.img"));
    assert_trees_equal_ignoring(&sb.src(), &sb.dst(), &[Path::new("sparse.img")]);
    // A second run leaves it alone.
    let ino = lstat(&sb.dst().join("sparse.img")).ino();
    run_timeout([sb.src(), sb.dst()], Duration::from_secs(120)).ok();
    assert_eq!(lstat(&sb.dst().join("sparse.img")).ino(), ino, "the unchanged sparse file was copied again");
}

#[test]
fn file_larger_than_4gib() {
    let sb = Sandbox::new_fast();
    let src = sb.src_tree();
    let f = src.p("huge.img");
    const GIB: u64 = 1 << 30;
    let len = 5 * GIB + 4321;
    // Data at the start, straddling 4 GiB (where a 32-bit offset wraps), and at the end.
    make_sparse(&f, len, &[0, 4 * GIB - 4096, len - 8192]);
    src.stamp_all();
    if !sparse_supported("file_larger_than_4gib", &f) {
        return;
    }
    let r = run_timeout(
        ["--json".as_ref(), sb.src().as_os_str(), sb.dst().as_os_str()],
        Duration::from_secs(300),
    );
    r.ok();
    let evs = r.json_events();
    let copies = events_named(&evs, "copy");
    assert_eq!(copies.len(), 1, "{r:?}");
    assert_eq!(copies[0]["bytes"].as_u64(), Some(len), "copy event bytes: {}", copies[0]);
    assert_eq!(count(summary(&evs), "bytes"), len, "summary bytes");
    check_sparse_copy(&f, &sb.dst().join("huge.img"));
    // Free the memory (tmpfs) early.
    let _ = fs::remove_file(sb.dst().join("huge.img"));
}
