//! Ignore rules: `.syncignore` files, `--exclude`, `--exclude-from`,
//! `--delete-excluded` and `--explain-ignored`.
//!
//! The pattern semantics are checked differentially with git as the oracle:
//! the same tree and the same patterns (as `.gitignore` files) go to
//! `git ls-files --others --exclude-standard` and to tandem, and the sets of
//! regular files must agree. Hand-picked pattern files and randomly generated
//! ones (seeded; set `TANDEM_IGNORE_SEED` to replay another seed) are used.

mod util;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use util::*;

// ---------------------------------------------------------------------------
// git as the oracle
// ---------------------------------------------------------------------------

/// Runs git isolated from the user's and the system's configuration.
struct Git {
    home: tempfile::TempDir,
}

impl Git {
    /// Fails the test (does not skip it) when git cannot be run.
    fn new() -> Git {
        let home = tempfile::Builder::new().prefix("tandem-git-home-").tempdir().expect("temp HOME for git");
        let git = Git { home };
        match git.cmd().arg("--version").output() {
            Ok(o) if o.status.success() => git,
            Ok(o) => panic!(
                "git is required by the ignore-rule tests (it is their oracle), but `git --version` failed \
                 ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "git is required by the ignore-rule tests (it is their oracle) but cannot be run: {e}; \
                 install git and make sure it is on PATH"
            ),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("git");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("GIT_") {
                c.env_remove(k);
            }
        }
        c.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .env("LC_ALL", "C")
            .args(["-c", "core.excludesFile=", "-c", "core.ignoreCase=false", "-c", "core.quotePath=false"]);
        c
    }

    #[track_caller]
    fn run(&self, dir: &Path, args: &[&str]) -> Vec<u8> {
        let out = self.cmd().current_dir(dir).args(args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} in {} failed ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn init(&self, repo: &Path) {
        self.run(repo, &["init", "-q", "--template="]);
    }

    /// The untracked, not ignored files of `repo`, with `.gitignore` renamed
    /// to `.syncignore`.
    fn untracked(&self, repo: &Path) -> BTreeSet<String> {
        let out = self.run(repo, &["ls-files", "--others", "--exclude-standard", "-z"]);
        out.split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let p = String::from_utf8(p.to_vec()).expect("UTF-8 path from git");
                match p.strip_suffix(".gitignore") {
                    Some(dir) if dir.is_empty() || dir.ends_with('/') => format!("{dir}.syncignore"),
                    _ => p,
                }
            })
            .collect()
    }

    /// `git check-ignore -v -n` for some paths (diagnostics only).
    fn check_ignore(&self, repo: &Path, paths: &[&String]) -> String {
        if paths.is_empty() {
            return String::new();
        }
        let out = self
            .cmd()
            .current_dir(repo)
            .args(["check-ignore", "--no-index", "-v", "-n", "--"])
            .args(paths.iter().map(|p| p.replace(".syncignore", ".gitignore")))
            .output()
            .expect("run git check-ignore");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

// ---------------------------------------------------------------------------
// Differential cases
// ---------------------------------------------------------------------------

/// A tree of regular files plus ignore files (directory relative to the
/// root, "" for the root, and the file's content).
#[derive(Clone, Debug)]
struct Case {
    files: Vec<String>,
    ignores: Vec<(String, String)>,
}

impl Case {
    fn write(&self, root: &Path, ignore_name: &str) {
        let t = Tree::create(root);
        for f in &self.files {
            t.file(f, format!("{f}\n"));
        }
        for (dir, text) in &self.ignores {
            t.file(Path::new(dir).join(ignore_name), text);
        }
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "  files: {:?}", self.files);
        for (dir, text) in &self.ignores {
            let name = if dir.is_empty() { ".syncignore".to_string() } else { format!("{dir}/.syncignore") };
            let _ = writeln!(s, "  {name}:");
            for (i, line) in text.lines().enumerate() {
                let _ = writeln!(s, "    {:>2}: {line:?}", i + 1);
            }
        }
        s
    }
}

/// A disagreement between tandem and git (or a tandem failure), described.
struct Mismatch {
    detail: String,
}

/// Mirrors the case with tandem and lists it with git; `Err` when the sets of
/// regular files differ or tandem fails.
fn compare(git: &Git, case: &Case) -> Result<(), Mismatch> {
    let sb = Sandbox::new_fast();
    let (src, dst, repo) = (sb.src(), sb.dst(), sb.join("repo"));
    case.write(&src, ".syncignore");
    case.write(&repo, ".gitignore");
    git.init(&repo);
    let expected = git.untracked(&repo);
    let mut r = run([src.as_os_str(), dst.as_os_str()]);
    for _ in 0..2 {
        // Another test suite running in parallel may signal stray processes;
        // a run killed from outside says nothing about ignore rules.
        if r.code.is_some() && !r.stderr.contains("interrupted by a signal") {
            break;
        }
        remove_any(&dst);
        r = run([src.as_os_str(), dst.as_os_str()]);
    }
    if r.code != Some(0) {
        return Err(Mismatch { detail: format!("tandem failed:\n{r:?}") });
    }
    let got: BTreeSet<String> = rel_paths_of_kind(&dst, Kind::File).into_iter().collect();
    if got == expected {
        return Ok(());
    }
    let only_git: Vec<String> = expected.difference(&got).cloned().collect();
    let only_tandem: Vec<String> = got.difference(&expected).cloned().collect();
    let all: Vec<&String> = only_git.iter().chain(&only_tandem).collect();
    let detail = format!(
        "  copied by tandem but ignored by git: {only_tandem:?}\n  \
         listed by git but not copied by tandem: {only_git:?}\n  \
         git check-ignore -v -n (with .gitignore files):\n{}",
        git.check_ignore(&repo, &all).lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    Err(Mismatch { detail })
}

/// Greedily drops files, ignore files and pattern lines while the case still
/// disagrees, to make a failure readable.
fn minimize(git: &Git, case: &Case) -> Case {
    let mut best = case.clone();
    let fails = |c: &Case| compare(git, c).is_err();
    loop {
        let mut progress = false;
        let mut i = 0;
        while i < best.ignores.len() {
            let mut c = best.clone();
            c.ignores.remove(i);
            if fails(&c) {
                best = c;
                progress = true;
            } else {
                i += 1;
            }
        }
        for k in 0..best.ignores.len() {
            let mut j = 0;
            loop {
                let lines: Vec<&str> = best.ignores[k].1.lines().collect();
                if j >= lines.len() || lines.len() == 1 {
                    break;
                }
                let mut kept: Vec<&str> = lines.clone();
                kept.remove(j);
                let mut c = best.clone();
                c.ignores[k].1 = kept.iter().map(|l| format!("{l}\n")).collect();
                if fails(&c) {
                    best = c;
                    progress = true;
                } else {
                    j += 1;
                }
            }
        }
        let mut i = 0;
        while i < best.files.len() {
            let mut c = best.clone();
            c.files.remove(i);
            if fails(&c) {
                best = c;
                progress = true;
            } else {
                i += 1;
            }
        }
        if !progress {
            return best;
        }
    }
}

/// Runs all cases (in parallel), then fails with the disagreements, the first
/// few of them minimized.
fn differential(git: &Git, what: &str, seed: Option<u64>, cases: &[(String, Case)]) {
    let failures: Mutex<Vec<(usize, Mismatch)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, case)) = cases.get(i) else { break };
                if let Err(m) = compare(git, case) {
                    failures.lock().unwrap().push((i, m));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    if failures.is_empty() {
        return;
    }
    failures.sort_by_key(|(i, _)| *i);
    let mut msg = format!(
        "{what}: tandem disagrees with git on {} of {} pattern sets{}\n",
        failures.len(),
        cases.len(),
        match seed {
            Some(s) => format!(" (seed {s:#x}; replay with TANDEM_IGNORE_SEED={s:#x})"),
            None => String::new(),
        }
    );
    for (n, (i, m)) in failures.iter().enumerate() {
        let (label, case) = &cases[*i];
        let _ = writeln!(msg, "\n=== {label}\n{}{}", case.describe(), m.detail);
        if n < 3 {
            let small = minimize(git, case);
            let detail = match compare(git, &small) {
                Err(m) => m.detail,
                Ok(()) => "  (minimized case passes?)".to_string(),
            };
            let _ = writeln!(msg, "  --- minimized:\n{}{}", small.describe(), detail);
        }
        if n >= 20 {
            let _ = writeln!(msg, "\n... and {} more", failures.len() - n - 1);
            break;
        }
    }
    panic!("{msg}");
}

// ---------------------------------------------------------------------------
// Seeded PRNG and random cases
// ---------------------------------------------------------------------------

const DEFAULT_SEED: u64 = 0x7a6e_de01_5eed_0001;

fn seed() -> u64 {
    match std::env::var("TANDEM_IGNORE_SEED") {
        Ok(s) => {
            let s = s.trim();
            let v = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            v.unwrap_or_else(|e| panic!("TANDEM_IGNORE_SEED={s:?}: {e}"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2545_F491_4F6C_DD1D | 1);
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() >> 33) as usize % n
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Characters of generated names. None of them occurs in "syncignore" or
/// "gitignore", so no generated pattern can tell `.syncignore` from
/// `.gitignore` (patterns stay far shorter than ten fixed-width atoms).
const NAME_CHARS: &[char] = &['a', 'a', 'a', 'b', 'b', 'b', '.', '-', '[', ']', ' ', '!', '#'];

fn random_name(rng: &mut Rng) -> String {
    loop {
        let len = 1 + rng.below(3);
        let name: String = (0..len).map(|_| *rng.pick(NAME_CHARS)).collect();
        if name != "." && name != ".." {
            return name;
        }
    }
}

/// A random tree over a small pool of names (so that the same name occurs at
/// several depths), plus random ignore files in some of its directories.
fn random_case(rng: &mut Rng, nfiles: usize, ndirs: usize) -> Case {
    let mut pool: Vec<String> = vec!["a".into(), "b".into(), "ab".into()];
    for _ in 0..5 {
        let n = random_name(rng);
        if !pool.contains(&n) {
            pool.push(n);
        }
    }
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    dirs.insert(String::new());
    for _ in 0..ndirs {
        let depth = 1 + rng.below(3);
        let mut p = String::new();
        for _ in 0..depth {
            if !p.is_empty() {
                p.push('/');
            }
            p.push_str(&pool[rng.below(pool.len())]);
            dirs.insert(p.clone());
        }
    }
    let dir_list: Vec<String> = dirs.iter().cloned().collect();
    let mut files: BTreeSet<String> = BTreeSet::new();
    for _ in 0..nfiles * 3 {
        if files.len() >= nfiles {
            break;
        }
        let dir = rng.pick(&dir_list);
        let name = rng.pick(&pool);
        let p = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
        if !dirs.contains(&p) {
            files.insert(p);
        }
    }
    // Ignore files: usually at the root, sometimes deeper.
    let mut ignores = Vec::new();
    for dir in &dir_list {
        let pct = if dir.is_empty() { 85 } else { 30 };
        if rng.chance(pct) {
            let n = 1 + rng.below(5);
            let text: String = (0..n).map(|_| random_line(rng, &pool) + "\n").collect();
            ignores.push((dir.clone(), text));
        }
    }
    Case { files: files.into_iter().collect(), ignores }
}

fn random_line(rng: &mut Rng, pool: &[String]) -> String {
    match rng.below(100) {
        0..=4 => format!("#{}", random_segment(rng, pool)),
        5..=6 => " ".repeat(rng.below(3)),
        _ => random_pattern(rng, pool),
    }
}

fn random_pattern(rng: &mut Rng, pool: &[String]) -> String {
    let mut s = String::new();
    if rng.chance(25) {
        s.push('!');
    }
    if rng.chance(20) {
        s.push('/');
    }
    let nseg = match rng.below(10) {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    let segs: Vec<String> = (0..nseg)
        .map(|_| if rng.chance(15) { "**".to_string() } else { random_segment(rng, pool) })
        .collect();
    s.push_str(&segs.join("/"));
    if rng.chance(20) {
        s.push('/');
    }
    match rng.below(100) {
        0..=7 => s.push_str(&" ".repeat(1 + rng.below(2))),
        8..=11 => s.push_str("\\ "),
        12..=13 => s.push_str("\\  "),
        _ => {}
    }
    s
}

const CLASSES: &[&str] = &[
    "[ab]",
    "[!a]",
    "[^b]",
    "[a-b]",
    "[--a]",
    "[]a]",
    "[!]]",
    "[ .]",
    "[\\]]",
    "[[]",
    "[!-.]",
    "[!ab]",
    "[[:alpha:]]",
    "[[:punct:]]",
    "[[:space:]]",
    "[[:graph:]]",
    "[a[:space:]]",
];

/// One path component of a pattern: a literal pool name or 1-3 atoms.
fn random_segment(rng: &mut Rng, pool: &[String]) -> String {
    if rng.chance(30) {
        return pool[rng.below(pool.len())].chars().map(|c| escape_char(rng, c)).collect();
    }
    let n = 1 + rng.below(3);
    let mut s = String::new();
    for _ in 0..n {
        match rng.below(100) {
            0..=34 => {
                let c = NAME_CHARS[rng.below(NAME_CHARS.len())];
                s.push_str(&escape_char(rng, c));
            }
            35..=59 => s.push('*'),
            60..=74 => s.push('?'),
            _ => s.push_str(CLASSES[rng.below(CLASSES.len())]),
        }
    }
    s
}

/// A literal character in pattern syntax (sometimes needlessly escaped).
fn escape_char(rng: &mut Rng, c: char) -> String {
    match c {
        '[' => "\\[".to_string(),
        ']' | '!' | '#' | ' ' if rng.chance(50) => format!("\\{c}"),
        'a' | 'b' | '.' | '-' if rng.chance(5) => format!("\\{c}"),
        _ => c.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Hand-picked differential cases over one varied tree
// ---------------------------------------------------------------------------

/// The varied tree of the hand-picked cases. Its names use letters of
/// "syncignore", so the hand-picked patterns are chosen never to match one of
/// `.syncignore` / `.gitignore` without the other.
const FIXED_FILES: &[&str] = &[
    "top.txt",
    "a.log",
    "keep.log",
    "x.tmp",
    "dir.tmp/inner",
    "ab",
    "abc",
    "abd",
    "a.b",
    "b",
    ".hidden",
    ".dir/inner",
    "build/out.o",
    "build/sub/deep.o",
    "misc/build",
    "src/main.rs",
    "src/build/gen.rs",
    "src/lib/x.log",
    "src/lib/keep.log",
    "src/lib/mod.rs",
    "docs/readme.md",
    "docs/a/b/c/note.md",
    "docs/a/note.md",
    "foo/bar",
    "foo/x/bar",
    "x/foo/bar",
    "a/b/c/d",
    "a/x/b/c",
    "a/b/b/c",
    "deep/1/2/3/4/f",
    "deep/1/x/f",
    "deep/f",
    "node_modules/pkg/index.js",
    "sub/node_modules/pkg/i.js",
    "sp ace",
    "trail ",
    "trail",
    "#hash",
    "!bang",
    "br[ack]et",
    "brk",
    "q?x",
    "qax",
    "dash-1",
    "dash_2",
    "UPPER.TXT",
    "9lives",
    "x/.syncignore-like",
    "]x",
    "x]",
    "-",
    "5",
    "x!",
    "xb",
    "aab",
    "x/aab",
];

fn fixed_case(ignores: &[(&str, &str)]) -> Case {
    Case {
        files: FIXED_FILES.iter().map(|s| s.to_string()).collect(),
        ignores: ignores.iter().map(|(d, t)| (d.to_string(), t.to_string())).collect(),
    }
}

fn hand_picked() -> Vec<(String, Case)> {
    let root_only: &[&str] = &[
        "*.log\n!keep.log\n",
        "*.log\n!/keep.log\n",
        "build/\n",
        "/build\n",
        "build\n",
        "src/build\n",
        "**/build\n",
        "**/build/\n",
        "docs/**\n!docs/readme.md\n",
        "docs/**/note.md\n",
        "docs/**/\n",
        "a/**/c\n",
        "**/b/c\n",
        "a/**/b/c\n",
        "deep/**/f\n",
        "deep/**\n!deep/f\n",
        "*\n!*/\n!*.rs\n",
        "/*\n!/src\n",
        "/*\n!/src/\n/src/*\n!/src/lib/\n",
        "[ab]*\n",
        "[!a]*\n",
        "[a-c]?\n",
        "[[:digit:]]*\n",
        "[[:upper:]]*\n",
        "a?\n",
        "??\n",
        "???\n",
        "\\#hash\n",
        "#hash\n",
        "\\!bang\n",
        "!bang\n",
        "br\\[ack\\]et\n",
        "br[[]ack]et\n",
        "br[[]ack[]]et\n",
        "q\\?x\n",
        "q?x\n",
        "sp ace\n",
        "trail\\ \n",
        "trail \n",
        "trail\n",
        "*.tmp\n",
        "*.tmp/\n",
        ".*\n",
        "node_modules/\n",
        "/node_modules/\n",
        "**\n",
        "/**\n",
        "**/\n",
        "x/\n",
        "foo/bar\n",
        "/foo/bar\n",
        "**/foo/bar\n",
        "foo/**/bar\n",
        "build/\n!build/out.o\n",
        "build\n!build/sub/deep.o\n",
        "build/*\n!build/out.o\n",
        "build/**\n!build/sub/deep.o\n",
        "src/lib/*\n!src/lib/keep.log\n",
        "a/b/\n",
        "*/\n",
        "d?ep/\n",
        "de*p/1/*/f\n",
        "\\a\\b\n",
        "ab**\n",
        "**.log\n",
        "a/**b\n",
        "***\n",
        "*.LOG\n",
        "[!-9]*\n",
        "{a,b}\n",
        "dash[-_]?\n",
        "   \n\n# comment\n*.o\n",
        "*.log   \n",
        "\\ \n",
        "a.b/\n",
        "/a.b\n",
        "*/bar\n",
        "*/*/bar\n",
        "/*/*/bar\n",
        // A `]` right after `[` or `[!` is a member, not the end.
        "[]x]\n",
        "[]]x\n",
        "x[]]\n",
        "[!]]\n",
        "[!]x]*\n",
        // A backslash escapes inside brackets too.
        "[\\]]x\n",
        "x[\\]]\n",
        // POSIX classes, first in the brackets or not.
        "[[:punct:]]\n",
        "x[[:punct:]]\n",
        "[[:graph:]]\n",
        "[[:digit:]]\n",
        "[x[:digit:]]\n",
        "[[:digit:]-]\n",
        "[[:digit:][:punct:]]\n",
        // `**` next to other characters acts as `*`... except that git lets a
        // literal prefix before `**/` match without the slash.
        "a**/b\n",
        "a**b\n",
        "x/a**/ab\n",
    ];
    let mut cases: Vec<(String, Case)> =
        root_only.iter().map(|t| (format!(".syncignore {t:?}"), fixed_case(&[("", t)]))).collect();
    let nested: &[&[(&str, &str)]] = &[
        &[("", "*.log\n"), ("src", "!*.log\n"), ("src/lib", "/keep.log\n")],
        &[("", "*.log\n"), ("src/lib", "!keep.log\n")],
        &[("docs", "a/b\n")],
        &[("docs", "/a\n")],
        &[("docs", "note.md\n!a/note.md\n")],
        &[("", "src/\n"), ("src", "!lib\n")],
        &[("", "/src/*\n"), ("src", "!lib/\n")],
        &[("src", "*\n"), ("src/lib", "!*\n")],
        &[("", "!*.log\n"), ("src", "*.log\n")],
        &[("a", "b/\n"), ("a/b", "!c\n")],
        &[("a", "**/c\n")],
        &[("a", "*/c\n")],
        &[("deep/1", "**/f\n!2/**/f\n")],
        &[("deep/1", "/*/f\n")],
        &[("x", "foo\n"), ("foo", "/bar\n")],
        &[("build", "*.o\n!deep.o\n")],
        &[("build", "*.o\n"), ("build/sub", "!*.o\n")],
        &[("", "build/sub/\n"), ("build", "!sub/\n")],
    ];
    for (i, n) in nested.iter().enumerate() {
        cases.push((format!("nested case {i}"), fixed_case(n)));
    }
    cases
}

#[test]
fn matches_git_on_hand_picked_patterns() {
    let git = Git::new();
    differential(&git, "hand-picked patterns", None, &hand_picked());
}

#[test]
fn matches_git_on_random_patterns_over_one_tree() {
    let git = Git::new();
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0x1111);
    // One varied tree...
    let tree = random_case(&mut rng, 70, 14);
    let mut pool: Vec<String> = tree.files.iter().flat_map(|f| f.split('/')).map(String::from).collect();
    pool.sort();
    pool.dedup();
    let dirs: BTreeSet<String> = tree
        .files
        .iter()
        .flat_map(|f| {
            let parts: Vec<&str> = f.split('/').collect();
            (0..parts.len()).map(move |k| parts[..k].join("/"))
        })
        .collect();
    let dirs: Vec<String> = dirs.into_iter().collect();
    // ...with many random pattern files.
    let cases: Vec<(String, Case)> = (0..100)
        .map(|i| {
            let mut rng = Rng::new(seed.wrapping_add(1000 + i));
            let mut ignores = Vec::new();
            for dir in &dirs {
                let pct = if dir.is_empty() { 90 } else { 15 };
                if rng.chance(pct) {
                    let n = 1 + rng.below(6);
                    ignores
                        .push((dir.clone(), (0..n).map(|_| random_line(&mut rng, &pool) + "\n").collect()));
                }
            }
            (format!("one tree, pattern set #{i}"), Case { files: tree.files.clone(), ignores })
        })
        .collect();
    differential(&git, "random patterns over one tree", Some(seed), &cases);
}

#[test]
fn matches_git_on_random_trees_and_patterns() {
    let git = Git::new();
    let seed = seed();
    let cases: Vec<(String, Case)> = (0..200)
        .map(|i| {
            let mut rng = Rng::new(seed.wrapping_add(i));
            (format!("random case #{i}"), random_case(&mut rng, 18, 5))
        })
        .collect();
    differential(&git, "random trees and patterns", Some(seed), &cases);
}

#[test]
fn rng_is_deterministic_and_generator_avoids_git_specials() {
    let mut a = Rng::new(7);
    let mut b = Rng::new(7);
    for _ in 0..100 {
        assert_eq!(a.next(), b.next());
    }
    let mut rng = Rng::new(seed());
    for _ in 0..2000 {
        let n = random_name(&mut rng);
        assert!(n != "." && n != ".." && !n.contains(['/', '\0', '\n', '\\', '*']), "bad name {n:?}");
    }
}

// ---------------------------------------------------------------------------
// Helpers for the behavioural tests
// ---------------------------------------------------------------------------

fn args(xs: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    xs.iter().map(|x| x.as_ref().to_os_string()).collect()
}

fn files_of(root: &Path) -> Vec<String> {
    rel_paths_of_kind(root, Kind::File)
}

fn sorted(xs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = xs.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// `exclude PATH (in SIDE: RULE)` lines of stdout, as (path, rule).
fn explained(r: &Run) -> BTreeSet<(String, String)> {
    explained_sides(r).into_iter().map(|(path, _, rule)| (path, rule)).collect()
}

/// `exclude PATH (in SIDE: RULE)` lines of stdout, as (path, side, rule); the side is
/// `SOURCE` or `DEST`.
fn explained_sides(r: &Run) -> BTreeSet<(String, String, String)> {
    r.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("exclude "))
        .map(|rest| {
            let open = rest.find(" (in ").unwrap_or_else(|| panic!("malformed explanation {rest:?}\n{r:?}"));
            let inner = rest[open + 5..].strip_suffix(')').unwrap_or_else(|| panic!("malformed {rest:?}"));
            let (side, rule) = inner.split_once(": ").unwrap_or_else(|| panic!("no side in {rest:?}"));
            assert!(side == "SOURCE" || side == "DEST", "side {side:?} in {rest:?}");
            (rest[..open].to_string(), side.to_string(), rule.to_string())
        })
        .collect()
}

/// Inode, mode, mtime, ctime and content of one file.
fn fingerprint(path: &Path) -> (u64, u32, i128, i64, i64, Vec<u8>) {
    use std::os::unix::fs::MetadataExt;
    let m = lstat(path);
    (m.ino(), m.mode(), mtime_ns(path), m.ctime(), m.ctime_nsec(), read(path))
}

fn pairs(xs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    xs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

// ---------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------

#[test]
fn nested_syncignore_files_apply_to_their_own_directory_and_below() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "*.log\n/top.tmp\n")
        .file("top.tmp", "x")
        .file("a.log", "x")
        .file("keep.txt", "x")
        .file("d/top.tmp", "x")
        .file("d/b.log", "x")
        .file("d/.syncignore", "!keep.log\n/local\nsub/x\n")
        .file("d/keep.log", "x")
        .file("d/local", "x")
        .file("d/e/local", "x")
        .file("d/sub/x", "x")
        .file("d/e/sub/x", "x")
        .file("d/e/keep.log", "x")
        .file("other/keep.log", "x")
        .file("other/local", "x");
    run([sb.src(), sb.dst()]).ok();
    assert_eq!(
        files_of(&sb.dst()),
        sorted(&[
            ".syncignore",
            "keep.txt",
            "d/top.tmp",
            "d/.syncignore",
            "d/keep.log",
            "d/e/local",
            "d/e/sub/x",
            "d/e/keep.log",
            "other/local",
        ])
    );
    // The .syncignore files are mirrored like any other file.
    assert_eq!(read(&sb.dst().join(".syncignore")), read(&src.p(".syncignore")));
    assert_eq!(read(&sb.dst().join("d/.syncignore")), read(&src.p("d/.syncignore")));
    assert_trees_equal_ignoring(
        &sb.src(),
        &sb.dst(),
        &[Path::new("top.tmp"), Path::new("a.log"), Path::new("d"), Path::new("other/keep.log")],
    );
}

#[test]
fn syncignore_files_are_mirrored_unless_excluded_and_still_apply() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "*.o\n").file("d/.syncignore", "*.tmp\n").file("d/x.o", "x").file("d/y.tmp", "y");
    src.file("d/z", "z").stamp_all();
    run([sb.src(), sb.dst()]).ok();
    assert_eq!(files_of(&sb.dst()), sorted(&[".syncignore", "d/.syncignore", "d/z"]));
    for f in [".syncignore", "d/.syncignore"] {
        assert_eq!(read(&sb.dst().join(f)), read(&src.p(f)), "{f} content");
        assert_eq!(mtime_ns(&sb.dst().join(f)), mtime_ns(&src.p(f)), "{f} mtime");
    }

    // A pattern that excludes the ignore files themselves: they are not
    // copied (and, already in DEST, left alone), but their rules still apply.
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "*.o\n.syncignore\n").file("d/.syncignore", "*.tmp\n");
    src.file("d/x.o", "x").file("d/y.tmp", "y").file("d/z", "z");
    run([sb.src(), sb.dst()]).ok();
    assert_eq!(files_of(&sb.dst()), sorted(&["d/z"]));
}

#[test]
fn exclude_flag_is_anchored_at_source_repeatable_and_overrides_syncignore() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "!keep.log\n")
        .file("top.txt", "x")
        .file("sub/top.txt", "x")
        .file("a.log", "x")
        .file("keep.log", "x")
        .file("sub/b.log", "x")
        .file("d/x", "x")
        .file("sub/d/x", "x")
        .file("tmp/f", "x")
        .file("sub/tmp", "a file named tmp")
        .file("other", "x");
    let r = run(args(&[
        &"--exclude",
        &"/top.txt",
        &"--exclude",
        &"*.log",
        &"--exclude=d/x",
        &"--exclude",
        &"tmp/",
        &sb.src(),
        &sb.dst(),
    ]));
    r.ok();
    assert_eq!(
        files_of(&sb.dst()),
        sorted(&[".syncignore", "sub/top.txt", "sub/d/x", "sub/tmp", "other"]),
        "--exclude: anchored at SOURCE, dir-only, overriding .syncignore's !keep.log\n{r:?}"
    );

    // A later --exclude negation re-includes.
    let sb2 = Sandbox::new();
    let src2 = sb2.src_tree();
    src2.file("a.log", "x").file("keep.log", "x").file("d/keep.log", "x").file("b", "x");
    run(args(&[&"--exclude", &"*.log", &"--exclude", &"!keep.log", &sb2.src(), &sb2.dst()])).ok();
    assert_eq!(files_of(&sb2.dst()), sorted(&["keep.log", "d/keep.log", "b"]));
}

#[test]
fn exclude_from_reads_patterns_from_a_file() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a.log", "x")
        .file("keep.log", "x")
        .file("build/out.o", "x")
        .file("sub/build/out.o", "x")
        .file("top", "x")
        .file("sub/top", "x")
        .file("trail ", "x")
        .file("ok.txt", "x");
    let list = sb.join("patterns.txt");
    fs::write(&list, "# a comment\n\n*.log\n!keep.log\n/build/\ntop\ntrail\\ \n").unwrap();
    let more = sb.join("more.txt");
    fs::write(&more, "sub/top\n").unwrap();
    let r = run(args(&[&"--exclude-from", &list, &"--exclude-from", &more, &sb.src(), &sb.dst()]));
    r.ok();
    assert_eq!(files_of(&sb.dst()), sorted(&["keep.log", "sub/build/out.o", "ok.txt"]), "{r:?}");

    // A missing --exclude-from file is a usage error naming it; nothing is created.
    let missing = sb.join("no-such-list");
    let r = run(args(&[&"--exclude-from", &missing, &sb.src(), &sb.join("dst2")]));
    r.expect_code(2);
    assert!(r.stderr.contains("no-such-list"), "error does not name the file:\n{r:?}");
    assert!(!exists_nofollow(&sb.join("dst2")), "DEST created:\n{r:?}");
}

#[test]
fn excluded_dest_entries_are_protected_unless_delete_excluded() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "*.log\ncache/\n")
        .file("keep.txt", "keep\n")
        .file("x.log", "source version\n")
        .file("d/a.txt", "a\n")
        .file("cache/in-source", "s\n");
    src.stamp_all();
    let dst = sb.dst_tree();
    dst.file("x.log", "dest version\n")
        .file("only.log", "dest only\n")
        .file("stale.txt", "stale\n")
        .file("d/b.log", "protected\n")
        .file("d/stale.txt", "stale\n")
        .file("old/a.log", "protected\n")
        .file("old/b.txt", "stale\n")
        .file("old/cache/f", "protected\n")
        .file("gone/c.txt", "stale\n")
        .file("cache/data", "protected\n");
    let x_log_before = fingerprint(&dst.p("x.log"));

    let r = run([sb.src(), sb.dst()]);
    r.ok();
    assert_eq!(
        files_of(&sb.dst()),
        sorted(&[
            ".syncignore",
            "keep.txt",
            "d/a.txt",
            "x.log",
            "only.log",
            "d/b.log",
            "old/a.log",
            "old/cache/f",
            "cache/data",
        ]),
        "{r:?}"
    );
    assert_eq!(fingerprint(&dst.p("x.log")), x_log_before, "excluded x.log in DEST was touched");
    assert!(!exists_nofollow(&dst.p("gone")), "DEST-only dir without excluded entries should go");
    assert_eq!(read(&dst.p("old/a.log")), b"protected\n");
    // A second run changes nothing.
    let before = snapshot(&sb.dst());
    run([sb.src(), sb.dst()]).ok();
    assert_unchanged("DEST after a second run", &before, &snapshot(&sb.dst()));

    // --dry-run --delete-excluded plans the deletions but changes nothing.
    let r = run(args(&[&"--dry-run", &"--delete-excluded", &sb.src(), &sb.dst()]));
    r.ok();
    assert_unchanged("DEST after --dry-run", &before, &snapshot(&sb.dst()));

    let r = run(args(&[&"--delete-excluded", &sb.src(), &sb.dst()]));
    r.ok();
    assert_eq!(files_of(&sb.dst()), sorted(&[".syncignore", "keep.txt", "d/a.txt"]), "{r:?}");
    assert_trees_equal_ignoring(&sb.src(), &sb.dst(), &[Path::new("x.log"), Path::new("cache")]);
    assert!(!exists_nofollow(&dst.p("old")) && !exists_nofollow(&dst.p("cache")));
}

#[test]
fn bad_pattern_is_an_error_naming_file_and_line_and_changes_nothing() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file("a/.syncignore", "ok\n[z-a\n*.o\n").file("a/x", "x").file("b/y", "y");
    let r = run([sb.src(), sb.dst()]);
    r.expect_code(2);
    assert!(r.stderr.contains("a/.syncignore:2"), "error does not name file and line:\n{r:?}");
    assert!(r.stderr.contains("[z-a"), "error does not quote the pattern:\n{r:?}");
    assert!(!exists_nofollow(&sb.dst()), "DEST created despite the bad pattern:\n{r:?}");

    // With an existing, stale DEST: nothing at all is changed.
    let dst = sb.dst_tree();
    dst.file("stale", "s").file("b/y", "old");
    let before = snapshot(&sb.dst());
    for extra in [&[][..], &["--delete-excluded"][..], &["--json"][..]] {
        let mut a: Vec<OsString> = extra.iter().map(OsString::from).collect();
        a.push(sb.src().into());
        a.push(sb.dst().into());
        let r = run(&a);
        r.expect_code(2);
        assert!(r.stderr.contains("a/.syncignore:2"), "error does not name file and line:\n{r:?}");
        assert_unchanged("DEST after a bad pattern", &before, &snapshot(&sb.dst()));
    }

    // In --exclude and --exclude-from as well.
    let fresh = sb.join("fresh");
    let r = run(args(&[&"--exclude", &"ok", &"--exclude", &"[z-a", &sb.src(), &fresh]));
    r.expect_code(2);
    assert!(r.stderr.contains("[z-a"), "error does not quote the pattern:\n{r:?}");
    let list = sb.join("list.txt");
    fs::write(&list, "# fine\n*.o\n[z-a\n").unwrap();
    let r = run(args(&[&"--exclude-from", &list, &sb.src(), &fresh]));
    r.expect_code(2);
    assert!(r.stderr.contains(&format!("{}:3", list.display())), "error does not name file and line:\n{r:?}");
    assert!(!exists_nofollow(&fresh), "DEST created despite the bad pattern");
}

#[test]
fn bad_pattern_in_a_deep_leaf_directory_stops_the_run_before_anything_changes() {
    // Leaf directories (no subdirectories) are not listed by the first pass, only
    // their rule file looked for: one with a bad one, deep among leaves without, is
    // still found before anything is changed.
    let sb = Sandbox::new();
    let src = sb.src_tree();
    for i in 0..20 {
        src.file(format!("p/q{i:02}/f"), "f");
    }
    src.file("p/q07/r/.syncignore", "fine\n[z-a\n").file("p/q07/r/g", "g").file("p/q07/.syncignore", "*.o\n");
    let r = run([sb.src(), sb.dst()]);
    r.expect_code(2);
    assert!(r.stderr.contains("p/q07/r/.syncignore:2"), "error does not name file and line:\n{r:?}");
    assert!(!exists_nofollow(&sb.dst()), "DEST created despite the bad pattern:\n{r:?}");
    // Fixed, the run goes through and the good rules of the other file apply.
    src.file("p/q07/r/.syncignore", "fine\n").file("p/q07/x.o", "o");
    let r = run([sb.src(), sb.dst()]);
    r.expect_code(0);
    assert!(sb.dst().join("p/q07/r/g").exists() && sb.dst().join("p/q19/f").exists(), "{r:?}");
    assert!(!exists_nofollow(&sb.dst().join("p/q07/x.o")), "excluded file copied:\n{r:?}");
}

#[test]
fn excluded_directory_is_not_descended_into() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "big/\nlocked\n").file("a.txt", "a");
    for i in 0..300 {
        src.file(format!("big/f{i:03}"), "x");
    }
    // Each of these would be noticed if tandem looked inside: a pattern that
    // cannot be parsed, a FIFO (a warning), an unreadable directory (an error
    // for the unprivileged user).
    src.file("big/.syncignore", "[z-a\n").fifo("big/fifo").file("big/sub/locked/inner", "x");
    src.file("locked/inner", "x").fifo("locked/fifo").file("locked/.syncignore", "[z-a\n");
    chown_tree_for_unprivileged(sb.path());
    src.chmod("big/sub/locked", 0o000).chmod("locked", 0o000);
    struct Restore(Vec<PathBuf>);
    impl Drop for Restore {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755));
            }
        }
    }
    let _restore = Restore(vec![src.p("big/sub/locked"), src.p("locked")]);

    let r = run_with(tandem_unprivileged(), args(&[&"--explain-ignored", &sb.src(), &sb.dst()]), RUN_TIMEOUT);
    r.ok();
    assert!(
        !r.stderr.contains("big") && !r.stderr.contains("locked"),
        "stderr mentions an excluded dir:\n{r:?}"
    );
    assert_eq!(
        explained(&r),
        pairs(&[("big", ".syncignore:1: big/"), ("locked", ".syncignore:2: locked")]),
        "{r:?}"
    );
    assert_eq!(files_of(&sb.dst()), sorted(&[".syncignore", "a.txt"]));

    let r = run_with(tandem_unprivileged(), args(&[&"--json", &sb.src(), &sb.dst()]), RUN_TIMEOUT);
    r.ok();
    let evs = r.json_events();
    assert_eq!(count(summary(&evs), "errors"), 0, "{r:?}");
    assert!(events_named(&evs, "warning").is_empty(), "{r:?}");
}

#[test]
fn explain_ignored_lists_source_and_dest_entries_with_their_rule() {
    let sb = Sandbox::new();
    let src = sb.src_tree();
    src.file(".syncignore", "# comment\n*.log\n\nbuild/\n[[:digit:]]*.bak\n{x,y}\n")
        .file("a.log", "x")
        .file("1.bak", "x")
        .file("{x,y}", "x")
        .file("build/out.o", "x")
        .file("build/more/x", "x")
        .file("d/.syncignore", "!keep.log\n*.tmp\n")
        .file("d/b.log", "x")
        .file("d/keep.log", "x")
        .file("d/c.tmp", "x")
        .file("e/f.tmp", "x")
        .file("ok.txt", "x");
    let list = sb.join("list.txt");
    fs::write(&list, "# list\nok.txt\n").unwrap();
    let dst = sb.dst_tree();
    dst.file("only.log", "x").file("old/a.log", "x").file("old/stale", "x").file("d/z.tmp", "x");

    let r = run(args(&[&"--explain-ignored", &"--exclude-from", &list, &sb.src(), &sb.dst()]));
    r.ok();
    let got = explained(&r);
    let list_rule = format!("{}:2: ok.txt", list.display());
    let mut want = pairs(&[
        ("a.log", ".syncignore:2: *.log"),
        ("build", ".syncignore:4: build/"),
        // The pattern is shown as written.
        ("1.bak", ".syncignore:5: [[:digit:]]*.bak"),
        ("{x,y}", ".syncignore:6: {x,y}"),
        ("d/b.log", ".syncignore:2: *.log"),
        ("d/c.tmp", "d/.syncignore:2: *.tmp"),
        // DEST side
        ("only.log", ".syncignore:2: *.log"),
        ("old/a.log", ".syncignore:2: *.log"),
        ("d/z.tmp", "d/.syncignore:2: *.tmp"),
    ]);
    want.insert(("ok.txt".to_string(), list_rule.clone()));
    assert_eq!(got, want, "{r:?}");
    // Each line says which side it is about.
    let dest_side: BTreeSet<String> =
        explained_sides(&r).into_iter().filter(|(_, side, _)| side == "DEST").map(|(p, _, _)| p).collect();
    assert_eq!(dest_side, sorted(&["only.log", "old/a.log", "d/z.tmp"]).into_iter().collect(), "{r:?}");
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("exclude ")).count(),
        want.len(),
        "duplicates?\n{r:?}"
    );
    assert_eq!(
        files_of(&sb.dst()),
        sorted(&[
            ".syncignore",
            "d/.syncignore",
            "d/keep.log",
            "e/f.tmp",
            "d/z.tmp",
            "only.log",
            "old/a.log"
        ])
    );

    // JSON: one `excluded` event per entry, with its side.
    let dst = sb.dst_tree();
    dst.file("only.log", "x").file("d/z.tmp", "x");
    let r = run(args(&[&"--explain-ignored", &"--json", &"--exclude-from", &list, &sb.src(), &sb.dst()]));
    r.ok();
    let evs = r.json_events();
    let got: BTreeSet<(String, String, String)> = events_named(&evs, "excluded")
        .into_iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap_or_else(|| panic!("no path: {e}")).to_string(),
                e["side"].as_str().unwrap_or_else(|| panic!("no side: {e}")).to_string(),
                e["rule"].as_str().unwrap_or_else(|| panic!("no rule: {e}")).to_string(),
            )
        })
        .collect();
    let t = |p: &str, s: &str, rule: &str| (p.to_string(), s.to_string(), rule.to_string());
    let want: BTreeSet<_> = [
        t("a.log", "source", ".syncignore:2: *.log"),
        t("build", "source", ".syncignore:4: build/"),
        t("1.bak", "source", ".syncignore:5: [[:digit:]]*.bak"),
        t("{x,y}", "source", ".syncignore:6: {x,y}"),
        t("d/b.log", "source", ".syncignore:2: *.log"),
        t("d/c.tmp", "source", "d/.syncignore:2: *.tmp"),
        t("ok.txt", "source", &list_rule),
        t("only.log", "dest", ".syncignore:2: *.log"),
        t("old/a.log", "dest", ".syncignore:2: *.log"),
        t("d/z.tmp", "dest", "d/.syncignore:2: *.tmp"),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want, "{r:?}");
    assert_eq!(events_named(&evs, "excluded").len(), want.len(), "duplicates?\n{r:?}");
    summary(&evs);

    // Without --explain-ignored, nothing of the kind is printed.
    let r = run([sb.src(), sb.dst()]);
    r.ok();
    assert!(explained(&r).is_empty(), "{r:?}");
}

/// A `.syncignore` that cannot be read leaves its directory's entries unjudgeable: the
/// directory is left alone on both sides (nothing excluded leaks, nothing protected is
/// deleted), the error is reported, exit 3. Run unprivileged (root reads anything).
#[test]
fn unreadable_syncignore_leaves_its_directory_alone() {
    let sb = Sandbox::new();
    sb.src_tree()
        .file("sub/.syncignore", "*.x\n")
        .file("sub/secret.x", "s")
        .file("sub/n", "n")
        .file("top", "t");
    sb.dst_tree().file("sub/keep.x", "k");
    chown_tree_for_unprivileged(sb.path());
    let ign = sb.src().join("sub/.syncignore");
    fs::set_permissions(&ign, fs::Permissions::from_mode(0o000)).unwrap();
    let r = run_with(tandem_unprivileged(), [sb.src(), sb.dst()], Duration::from_secs(60));
    fs::set_permissions(&ign, fs::Permissions::from_mode(0o644)).unwrap();
    r.expect_code(3);
    assert!(r.stderr.contains(".syncignore"), "{r:?}");
    assert!(!sb.dst().join("sub/secret.x").exists(), "an excluded file leaked:\n{r:?}");
    assert!(sb.dst().join("sub/keep.x").exists(), "a protected file was deleted:\n{r:?}");
    assert!(sb.dst().join("top").exists(), "the rest was not synced:\n{r:?}");
}

/// `--include PATTERN` is gitignore's `!PATTERN` on the command line: --exclude and
/// --include apply in the order given (the last match wins), override `.syncignore`
/// files, and cannot re-include an entry inside an excluded directory.
#[test]
fn include_reincludes_in_command_line_order() {
    let sb = Sandbox::new();
    sb.src_tree()
        .file(".syncignore", "*.tmp\n")
        .file("a.log", "a")
        .file("keep.log", "k")
        .file("b.txt", "b")
        .file("d/keep.log", "dk")
        .file("keep.tmp", "t")
        .file("other.tmp", "o")
        .file("logs/x.log", "x");
    let mirror = |flags: &[&str]| {
        let dst = sb.join(format!("dst{}", flags.join("_").replace(['/', '*', '.'], "")));
        let mut a: Vec<OsString> = flags.iter().map(OsString::from).collect();
        a.extend([sb.src().into_os_string(), dst.clone().into_os_string()]);
        run(&a).ok();
        files_of(&dst)
    };
    assert_eq!(
        mirror(&["--exclude", "*.log", "--include", "keep.log", "--include", "keep.tmp"]),
        sorted(&[".syncignore", "b.txt", "d/keep.log", "keep.log", "keep.tmp"]),
        "--include after --exclude re-includes (and overrides .syncignore)"
    );
    assert_eq!(
        mirror(&["--include", "keep.log", "--exclude", "*.log"]),
        sorted(&[".syncignore", "b.txt"]),
        "a later --exclude overrides an earlier --include"
    );
    assert_eq!(
        mirror(&["--exclude", "logs/", "--include", "logs/x.log", "--exclude", "*.log"]),
        sorted(&[".syncignore", "b.txt"]),
        "an entry of an excluded directory cannot be re-included"
    );
    // Explained as the exclude that decided it.
    let r = run(args(&[
        &"-n",
        &"--explain-ignored",
        &"--exclude",
        &"*.log",
        &"--include",
        &"keep.log",
        &sb.src(),
        &sb.dst(),
    ]));
    r.ok();
    let got = explained(&r);
    assert!(got.contains(&("a.log".to_string(), "--exclude *.log".to_string())), "{got:?}\n{r:?}");
    assert!(!got.iter().any(|(p, _)| p == "keep.log"), "{got:?}");
}

/// `--files-from FILE` mirrors only the listed paths (a directory with everything below
/// it) and the directories leading to them; the rest is treated as excluded: neither
/// copied nor deleted in DEST. Exclude patterns still apply inside; `..` is refused.
#[test]
fn files_from_mirrors_only_the_listed_paths() {
    let sb = Sandbox::new();
    sb.src_tree()
        .file("top.txt", "t")
        .file("unlisted.txt", "u")
        .file("docs/guide/a.md", "a")
        .file("docs/guide/deep/b.md", "b")
        .file("docs/guide/skip.log", "s")
        .file("docs/other.md", "o")
        .file("src/main.rs", "m")
        .file("src/lib.rs", "l")
        .file("odd [name]*", "odd");
    sb.dst_tree().file("unlisted.txt", "dest's own").file("stale/x", "x");
    let list = sb.join("list.txt");
    fs::write(&list, "# what to mirror\n\n./top.txt\ndocs/guide/\n/src/main.rs\n; comment\nodd [name]*\n")
        .unwrap();
    let r = run(args(&[&"--files-from", &list, &"--exclude", &"*.log", &sb.src(), &sb.dst()]));
    r.ok();
    assert_eq!(
        files_of(&sb.dst()),
        sorted(&[
            "docs/guide/a.md",
            "docs/guide/deep/b.md",
            "odd [name]*",
            "src/main.rs",
            "stale/x",
            "top.txt",
            "unlisted.txt"
        ]),
        "{r:?}"
    );
    assert_eq!(read(&sb.dst().join("unlisted.txt")), b"dest's own", "an unlisted DEST entry was touched");
    assert_eq!(read(&sb.dst().join("docs/guide/deep/b.md")), b"b");

    // A second run has nothing to do.
    let r = run(args(&[&"-v", &"--files-from", &list, &"--exclude", &"*.log", &sb.src(), &sb.dst()]));
    r.ok();
    assert!(r.stdout_lines().is_empty(), "{r:?}");

    // Paths that leave SOURCE, and a missing list, are usage errors.
    let bad = sb.join("bad.txt");
    fs::write(&bad, "ok\n../etc/passwd\n").unwrap();
    let other = sb.join("other");
    let r = run(args(&[&"--files-from", &bad, &sb.src(), &other]));
    r.expect_code(2);
    assert!(r.stderr.contains("bad.txt:2") && r.stderr.contains("leaves SOURCE"), "{r:?}");
    let r = run(args(&[&"--files-from", &sb.join("missing.txt"), &sb.src(), &other]));
    r.expect_code(2);
    assert!(r.stderr.contains("missing.txt"), "{r:?}");
    assert!(!exists_nofollow(&other));
}
