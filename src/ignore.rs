//! Ignore rules: `.syncignore` files and `--exclude` patterns, with gitignore semantics.
//!
//! Matching is done by the `ignore` crate's gitignore matcher (built on globset); this
//! module only feeds it the lines, translating the two places where globset's syntax
//! differs from git's wildmatch (braces are literal in git; POSIX classes such as
//! `[[:digit:]]` exist only in git), remembers where each pattern came from (file and
//! line) so a match can be explained, and decides precedence between rule files:
//!
//! 1. `--exclude` / `--exclude-from` patterns (highest: like patterns on git's command
//!    line, they cannot be overridden by a `.syncignore`);
//! 2. the `.syncignore` of the entry's own directory, then its parent's, and so on up
//!    to SOURCE's root (a deeper file overrides a shallower one, as in git);
//! 3. within one file, the last matching line wins; `!pattern` re-includes.
//!
//! A path is checked once, top-down during the scan: an excluded directory is not
//! descended into, which is also why (as in git) nothing below an excluded directory
//! can be re-included. Each [`RuleFile`] is independent and cheap to rebuild, and
//! [`Rules::check`] answers for a single path given the chain of files above it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder, Glob};
use rustc_hash::FxHashMap;

/// The name of per-directory ignore files.
pub const IGNORE_FILE: &[u8] = b".syncignore";

/// A pattern that could not be parsed: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// The file (as shown to the user) or `--exclude`.
    pub origin: String,
    /// 1-based line number (0 for a command-line pattern).
    pub line: usize,
    pub pattern: String,
    pub message: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: invalid pattern '{}': {}", self.origin, self.line, self.pattern, self.message)
        } else {
            write!(f, "{}: invalid pattern '{}': {}", self.origin, self.pattern, self.message)
        }
    }
}

/// The patterns of one ignore file (or of the command line).
#[derive(Debug)]
pub struct RuleFile {
    matcher: Gitignore,
    /// Shown in explanations: `docs/.syncignore`, `--exclude`, or the `--exclude-from` path.
    pub origin: String,
    /// Original pattern text → the last line it stands on.
    lines: FxHashMap<String, usize>,
}

/// Why a path is excluded or re-included.
#[derive(Clone, Copy, Debug)]
pub struct Hit<'a> {
    pub file: &'a RuleFile,
    pub glob: &'a Glob,
}

impl Hit<'_> {
    pub fn excluded(&self) -> bool {
        !self.glob.is_whitelist()
    }

    pub fn line(&self) -> usize {
        self.file.lines.get(self.glob.original()).copied().unwrap_or(0)
    }

    pub fn pattern(&self) -> &str {
        self.glob.original()
    }

    /// `docs/.syncignore:3: *.log`
    pub fn describe(&self) -> String {
        match self.line() {
            0 => format!("{}: {}", self.file.origin, self.pattern()),
            n => format!("{}:{}: {}", self.file.origin, n, self.pattern()),
        }
    }
}

impl RuleFile {
    /// Parses gitignore-syntax `text` for the directory `dir` (relative to SOURCE,
    /// empty for the root). `origin` names the file in messages.
    pub fn parse(dir: &Path, origin: &str, text: &str) -> Result<RuleFile, PatternError> {
        let root = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let mut b = GitignoreBuilder::new(root);
        let mut lines = FxHashMap::default();
        let from = Some(PathBuf::from(origin));
        for (i, raw) in text.lines().enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let line = translate(raw);
            b.add_line(from.clone(), &line).map_err(|e| PatternError {
                origin: origin.to_string(),
                line: i + 1,
                pattern: raw.to_string(),
                message: strip_glob_prefix(&e.to_string()),
            })?;
            lines.insert(original_of(&line), i + 1);
        }
        let matcher = b.build().map_err(|e| PatternError {
            origin: origin.to_string(),
            line: 0,
            pattern: String::new(),
            message: e.to_string(),
        })?;
        Ok(RuleFile { matcher, origin: origin.to_string(), lines })
    }

    /// Command-line patterns (`--exclude`, each anchored at SOURCE like a line of
    /// SOURCE's root `.syncignore`).
    pub fn from_patterns(origin: &str, patterns: &[String]) -> Result<RuleFile, PatternError> {
        let mut text = String::new();
        for p in patterns {
            text.push_str(p);
            text.push('\n');
        }
        RuleFile::parse(Path::new(""), origin, &text).map_err(|mut e| {
            e.line = 0;
            e
        })
    }

    fn matched(&self, path: &Path, is_dir: bool) -> Option<Hit<'_>> {
        self.matched_glob(path, is_dir).map(|glob| Hit { file: self, glob })
    }

    fn matched_glob(&self, path: &Path, is_dir: bool) -> Option<&Glob> {
        let m = self.matcher.matched(path, is_dir);
        if m.is_none() {
            return None;
        }
        Some(m.inner()?)
    }
}

/// The key under which `add_line` stores a line's original text.
fn original_of(line: &str) -> String {
    // add_line trims unescaped trailing spaces before recording the original.
    let mut s = line;
    while s.ends_with(' ') && !s.ends_with("\\ ") {
        s = &s[..s.len() - 1];
    }
    s.to_string()
}

fn strip_glob_prefix(msg: &str) -> String {
    // ignore's messages read "error parsing glob '...': unclosed character class";
    // keep the reason.
    match msg.rfind("': ") {
        Some(i) => msg[i + 3..].to_string(),
        None => msg.to_string(),
    }
}

/// Rewrites a gitignore line into the glob syntax globset parses the same way git's
/// wildmatch does: `{`, `}` and `,` are literal in git, and POSIX character classes
/// (`[:alpha:]` …) inside brackets become explicit ranges.
pub fn translate(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push('\\');
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                    i += 1;
                }
            }
            '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '[' => {
                if let Some((class, end)) = bracket(&chars, i) {
                    out.push_str(&class);
                    i = end;
                } else {
                    out.push('[');
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Parses a bracket expression starting at `chars[start] == '['` the way wildmatch does;
/// returns the globset text for it and the index of its closing `]`.
fn bracket(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut out = String::from("[");
    let mut i = start + 1;
    if matches!(chars.get(i), Some('!') | Some('^')) {
        out.push('!');
        i += 1;
    }
    let first = i;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && i > first {
            out.push(']');
            return Some((out, i));
        }
        if c == '[' && chars.get(i + 1) == Some(&':') {
            // [:name:]
            if let Some(close) =
                (i + 2..chars.len().saturating_sub(1)).find(|&k| chars[k] == ':' && chars[k + 1] == ']')
            {
                let name: String = chars[i + 2..close].iter().collect();
                match posix_class(&name) {
                    Some(set) => out.push_str(set),
                    None => return None, // unknown class: wildmatch fails the pattern
                }
                i = close + 2;
                continue;
            }
        }
        if c == '\\' {
            if let Some(&n) = chars.get(i + 1) {
                out.push('\\');
                out.push(n);
                i += 2;
                continue;
            }
        }
        if c == ']' {
            // A leading `]` is literal.
            out.push_str("\\]");
        } else if c == '-' || c.is_alphanumeric() {
            out.push(c);
        } else if c == '[' || c == '!' || c == '^' || c == '&' || c == '~' || c == '{' || c == '}' {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
        i += 1;
    }
    None
}

fn posix_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "alnum" => "a-zA-Z0-9",
        "alpha" => "a-zA-Z",
        "blank" => " \t",
        "cntrl" => "\x00-\x1f\x7f",
        "digit" => "0-9",
        "graph" => "!-~",
        "lower" => "a-z",
        "print" => " -~",
        "punct" => "!-/:-@\\[-`\\{-~",
        "space" => " \t\n\r\x0b\x0c",
        "upper" => "A-Z",
        "xdigit" => "0-9a-fA-F",
        _ => return None,
    })
}

/// The chain of `.syncignore` files that apply in one directory, root first.
pub type Chain = Vec<Arc<RuleFile>>;

/// All the rules of one sync: command-line patterns plus per-directory files found
/// while scanning SOURCE.
#[derive(Debug, Default)]
pub struct Rules {
    /// `--exclude-from` files, then `--exclude` patterns; a later one overrides an
    /// earlier one.
    pub cli: Vec<Arc<RuleFile>>,
    /// Also delete excluded entries from DEST.
    pub delete_excluded: bool,
}

impl Rules {
    /// The rule that decides `path` (relative to SOURCE), if any: command-line patterns
    /// first, then the chain from the deepest file up.
    pub fn check<'a>(&'a self, chain: &'a [Arc<RuleFile>], path: &Path, is_dir: bool) -> Option<Hit<'a>> {
        self.cli.iter().rev().chain(chain.iter().rev()).find_map(|f| f.matched(path, is_dir))
    }

    /// True when `path` is excluded.
    #[cfg(test)]
    pub fn excluded(&self, chain: &[Arc<RuleFile>], path: &Path, is_dir: bool) -> bool {
        self.check(chain, path, is_dir).is_some_and(|h| h.excluded())
    }
}

/// The bytes of a path (the inverse of [`rel_path`]).
pub fn path_bytes(p: &Path) -> &[u8] {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes()
    }
    #[cfg(not(unix))]
    {
        p.to_str().map(str::as_bytes).unwrap_or(b"")
    }
}

/// A path from relative bytes.
pub fn rel_path(bytes: &[u8]) -> &Path {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Path::new(std::ffi::OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        Path::new(std::str::from_utf8(bytes).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> (Rules, Chain) {
        let f = RuleFile::parse(Path::new(""), ".syncignore", text).expect("parses");
        (Rules::default(), vec![Arc::new(f)])
    }

    fn ex(r: &(Rules, Chain), p: &str, dir: bool) -> bool {
        r.0.excluded(&r.1, Path::new(p), dir)
    }

    #[test]
    fn basic_gitignore_semantics() {
        let r = rules("# comment\n\n*.log\n!keep.log\nbuild/\n/top\nsub/x\n");
        assert!(ex(&r, "a.log", false));
        assert!(ex(&r, "d/a.log", false));
        assert!(!ex(&r, "keep.log", false));
        assert!(ex(&r, "build", true));
        assert!(!ex(&r, "build", false), "dir-only pattern");
        assert!(ex(&r, "top", false));
        assert!(!ex(&r, "d/top", false), "anchored");
        assert!(ex(&r, "sub/x", false));
        assert!(!ex(&r, "d/sub/x", false), "middle slash anchors");
    }

    #[test]
    fn braces_are_literal_as_in_git() {
        let r = rules("{a,b}\n");
        assert!(!ex(&r, "a", false));
        assert!(ex(&r, "{a,b}", false));
    }

    #[test]
    fn posix_classes() {
        let r = rules("[[:digit:]]*\n");
        assert!(ex(&r, "1abc", false));
        assert!(!ex(&r, "abc", false));
    }

    #[test]
    fn explains_file_and_line() {
        let r = rules("a\n\n*.tmp\n");
        let h = r.0.check(&r.1, Path::new("x.tmp"), false).expect("hit");
        assert_eq!(h.line(), 3);
        assert_eq!(h.describe(), ".syncignore:3: *.tmp");
    }

    #[test]
    fn nested_files_deeper_wins() {
        let top = Arc::new(RuleFile::parse(Path::new(""), ".syncignore", "*.txt\n").expect("top"));
        let sub = Arc::new(RuleFile::parse(Path::new("d"), "d/.syncignore", "!keep.txt\n").expect("sub"));
        let rules = Rules::default();
        let chain = vec![top, sub];
        assert!(rules.excluded(&chain, Path::new("d/a.txt"), false));
        assert!(!rules.excluded(&chain, Path::new("d/keep.txt"), false));
        assert!(rules.excluded(&chain[..1], Path::new("keep.txt"), false));
    }

    #[test]
    fn cli_patterns_win() {
        let cli = RuleFile::from_patterns("--exclude", &["*.bin".to_string()]).expect("cli");
        let rules = Rules { cli: vec![Arc::new(cli)], delete_excluded: false };
        let chain = vec![Arc::new(RuleFile::parse(Path::new(""), ".syncignore", "!x.bin\n").expect("f"))];
        assert!(rules.excluded(&chain, Path::new("x.bin"), false));
    }

    #[test]
    fn bad_pattern_names_file_and_line() {
        let e = RuleFile::parse(Path::new("d"), "d/.syncignore", "ok\n[[:nope:]\n").err();
        // Unknown POSIX class is passed through; whether it errors depends on globset.
        let _ = e;
        let e = RuleFile::parse(Path::new(""), ".syncignore", "ok\nfine\n\\").err();
        if let Some(e) = e {
            assert_eq!(e.line, 3);
        }
    }
}
