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
    /// Pattern as given to the matcher → the last line it stands on, and the line as
    /// the user wrote it.
    lines: FxHashMap<String, (usize, String)>,
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
        self.file.lines.get(self.glob.original()).map_or(0, |(n, _)| *n)
    }

    /// The pattern as written in the file or on the command line.
    pub fn pattern(&self) -> &str {
        self.file.lines.get(self.glob.original()).map_or(self.glob.original(), |(_, raw)| raw)
    }

    /// `docs/.syncignore:3: *.log`
    /// `docs/.syncignore:3: *.log`, or `--exclude *.log` for a command-line pattern.
    pub fn describe(&self) -> String {
        if self.file.origin.starts_with("--") {
            return format!("{} {}", self.file.origin, self.pattern());
        }
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
            let err = |message: String| PatternError {
                origin: origin.to_string(),
                line: i + 1,
                pattern: raw.to_string(),
                message,
            };
            let line = translate(raw).map_err(err)?;
            b.add_line(from.clone(), &line).map_err(|e| PatternError {
                origin: origin.to_string(),
                line: i + 1,
                pattern: raw.to_string(),
                message: strip_glob_prefix(&e.to_string()),
            })?;
            lines.insert(line, (i + 1, trim_trailing_spaces(raw).to_string()));
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

    /// Whether this file alone excludes `path`.
    pub fn excludes(&self, path: &Path, is_dir: bool) -> bool {
        self.matched_glob(path, is_dir).is_some_and(|g| !g.is_whitelist())
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

fn strip_glob_prefix(msg: &str) -> String {
    // ignore's messages read "error parsing glob '...': unclosed character class";
    // keep the reason.
    match msg.rfind("': ") {
        Some(i) => msg[i + 3..].to_string(),
        None => msg.to_string(),
    }
}

/// Removes trailing spaces that are not escaped with a backslash (gitignore rule).
fn trim_trailing_spaces(line: &str) -> &str {
    let mut s = line;
    while s.ends_with(' ') {
        let without = &s[..s.len() - 1];
        let backslashes = without.bytes().rev().take_while(|b| *b == b'\\').count();
        if backslashes % 2 == 1 {
            break; // `\ `: an escaped space stays
        }
        s = without;
    }
    s
}

/// Escapes what globset treats specially but git's wildmatch does not.
fn push_literal(out: &mut String, c: char) {
    if matches!(c, '{' | '}' | ',') {
        out.push('\\');
    }
    out.push(c);
}

/// Rewrites a gitignore line into the glob syntax globset parses the way git's
/// wildmatch does:
/// - `{`, `}` and `,` are literal in git;
/// - bracket expressions follow wildmatch (a leading `]` is a member, a backslash
///   escapes, POSIX classes such as `[:digit:]` exist) and are re-emitted in the order
///   globset reads unambiguously;
/// - git matches a wildcard-free prefix first and the rest separately, so in
///   `P**/R` the `**/` may match nothing (`a**/b` ignores `ab`): that becomes
///   `{P*/**/R,PR}`.
///
/// Patterns git's wildmatch rejects as malformed (they can never match there: an
/// unclosed `[`, an unknown `[:class:]`, a trailing lone backslash) are errors.
pub fn translate(line: &str) -> Result<String, String> {
    let line = trim_trailing_spaces(line);
    if line.starts_with('#') || line.is_empty() {
        return Ok(line.to_string());
    }
    let (neg, body) = match line.strip_prefix('!') {
        Some(rest) => ("!", rest),
        None => ("", line),
    };
    let (lead, body) = match body.strip_prefix('/') {
        Some(rest) => ("/", rest),
        None => ("", body),
    };
    // A trailing unescaped `/` (directories only) stays outside any alternation.
    let (body, trail) = match body.strip_suffix('/') {
        Some(rest) if !rest.ends_with('\\') || rest.ends_with("\\\\") => (rest, "/"),
        _ => (body, ""),
    };
    let chars: Vec<char> = body.chars().collect();
    let first_wild = chars.iter().position(|c| matches!(c, '*' | '?' | '[' | '\\')).unwrap_or(chars.len());
    let prefix: String = chars[..first_wild].iter().collect();
    let stars = chars[first_wild..].iter().take_while(|c| **c == '*').count();
    let quirk = first_wild > 0
        && !prefix.ends_with('/')
        && stars >= 2
        && chars.get(first_wild + stars) == Some(&'/')
        // only where the whole pattern has a slash (git's path match)
        && (lead == "/" || chars.contains(&'/'));
    let mut out = String::with_capacity(line.len() + 8);
    out.push_str(neg);
    out.push_str(lead);
    if quirk {
        let rest = translate_body(&chars[first_wild + stars + 1..])?;
        let p = translate_body(&chars[..first_wild])?;
        out.push_str(&format!("{{{p}*/**/{rest},{p}{rest}}}"));
    } else {
        out.push_str(&translate_body(&chars)?);
    }
    out.push_str(trail);
    Ok(out)
}

fn translate_body(chars: &[char]) -> Result<String, String> {
    let mut out = String::with_capacity(chars.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => match chars.get(i + 1) {
                Some(&n) => {
                    if matches!(n, '{' | '}' | ',') {
                        push_literal(&mut out, n);
                    } else {
                        out.push('\\');
                        out.push(n);
                    }
                    i += 1;
                }
                None => return Err("trailing backslash escapes nothing".into()),
            },
            '[' => match bracket(chars, i) {
                Some((class, end)) => {
                    out.push_str(&class);
                    i = end;
                }
                None => return Err("unclosed character class, or an unknown [:class:] in it".into()),
            },
            _ => push_literal(&mut out, c),
        }
        i += 1;
    }
    Ok(out)
}

/// One member of a bracket expression.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    Char(char),
    Range(char, char),
}

/// Parses a bracket expression at `chars[start] == '['` the way wildmatch does;
/// returns globset text for it and the index of its closing `]`, or `None` when it is
/// not closed (then `[` is literal).
fn bracket(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let first = i;
    let mut members: Vec<Member> = Vec::new();
    let mut end = None;
    while i < chars.len() {
        let mut c = chars[i];
        if c == ']' && i > first {
            end = Some(i);
            break;
        }
        if c == '[' && chars.get(i + 1) == Some(&':') {
            if let Some(close) =
                (i + 2..chars.len().saturating_sub(1)).find(|&k| chars[k] == ':' && chars[k + 1] == ']')
            {
                let name: String = chars[i + 2..close].iter().collect();
                members.extend(posix_class(&name)?);
                i = close + 2;
                continue;
            }
        }
        if c == '\\' {
            i += 1;
            c = *chars.get(i)?;
        }
        // A range `c-d` (a `-` before the closing `]` is literal).
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|d| *d != ']') {
            let mut k = i + 2;
            let mut d = chars[k];
            if d == '\\' {
                k += 1;
                d = *chars.get(k)?;
            }
            members.push(Member::Range(c, d));
            i = k + 1;
            continue;
        }
        members.push(Member::Char(c));
        i += 1;
    }
    let end = end?;
    // Wildmatch never matches `/` with a bracket; leaving it out also keeps the
    // translated pattern from gaining a slash (which would anchor it).
    let mut chars_in: Vec<char> = Vec::new();
    let mut ranges: Vec<(char, char)> = Vec::new();
    for m in members {
        match m {
            Member::Char('/') => {}
            Member::Char(c) => chars_in.push(c),
            Member::Range(a, b) if a > b => {} // empty in wildmatch
            Member::Range(a, b) => {
                // Split around `/`, and keep `]`, `-`, `!`, `^` as plain members.
                for (x, y) in split_range(a, b) {
                    ranges.push((x, y));
                }
            }
        }
    }
    // A range whose end globset would misread (`]`, `-`, or a leading `!`/`^`)
    // becomes its members one by one.
    let mut safe_ranges = Vec::new();
    for (a, b) in ranges {
        let special = |c: char| matches!(c, ']' | '-' | '!' | '^');
        if special(a) || special(b) {
            chars_in.extend((a as u32..=b as u32).filter_map(char::from_u32).filter(|c| *c != '/'));
        } else {
            safe_ranges.push((a, b));
        }
    }
    chars_in.sort_unstable();
    chars_in.dedup();
    let has = |c: char| chars_in.contains(&c);
    // Order for globset: `]` first, then ranges and plain members, then `!`/`^`
    // (never first), `-` last.
    let mut body = String::new();
    if has(']') {
        body.push(']');
    }
    for &(a, b) in &safe_ranges {
        body.push(a);
        body.push('-');
        body.push(b);
    }
    for &c in &chars_in {
        if !matches!(c, ']' | '-' | '!' | '^') {
            body.push(c);
        }
    }
    let bang: String = ['!', '^'].into_iter().filter(|c| has(*c)).collect();
    if !negated && body.is_empty() && !bang.is_empty() {
        // Only `!`/`^` (and maybe `-`): put `-` first so neither reads as a negation.
        if has('-') {
            return Some((format!("[-{bang}]"), end));
        }
        if bang.len() == 1 {
            return Some((format!("\\{bang}"), end));
        }
        return Some(("{!,^}".to_string(), end));
    }
    body.push_str(&bang);
    if has('-') {
        body.push('-');
    }
    if body.is_empty() {
        // Only `/` or empty ranges: wildmatch matches nothing here (or, negated,
        // any one character but `/`).
        return Some((if negated { "[!/]" } else { "[/]" }.to_string(), end));
    }
    Some((format!("[{}{}]", if negated { "!" } else { "" }, body), end))
}

/// Splits an inclusive range so that no part contains `/`.
fn split_range(a: char, b: char) -> Vec<(char, char)> {
    if a <= '/' && '/' <= b {
        let mut v = Vec::new();
        if a < '/' {
            v.push((a, '.'));
        }
        if '/' < b {
            v.push(('0', b));
        }
        v
    } else {
        vec![(a, b)]
    }
}

/// A POSIX class as bracket members (ASCII, as git's wildmatch in the C locale).
fn posix_class(name: &str) -> Option<Vec<Member>> {
    use Member::{Char as C, Range as R};
    Some(match name {
        "alnum" => vec![R('a', 'z'), R('A', 'Z'), R('0', '9')],
        "alpha" => vec![R('a', 'z'), R('A', 'Z')],
        "blank" => vec![C(' '), C('\t')],
        "cntrl" => vec![R('\x00', '\x1f'), C('\x7f')],
        "digit" => vec![R('0', '9')],
        "graph" => vec![R('!', '~')],
        "lower" => vec![R('a', 'z')],
        "print" => vec![R(' ', '~')],
        "punct" => vec![R('!', '/'), R(':', '@'), R('[', '`'), R('{', '~')],
        "space" => vec![C(' '), C('\t'), C('\n'), C('\r'), C('\x0b'), C('\x0c')],
        "upper" => vec![R('A', 'Z')],
        "xdigit" => vec![R('0', '9'), R('a', 'f'), R('A', 'F')],
        _ => return None,
    })
}

/// The chain of `.syncignore` files that apply in one directory, root first.
pub type Chain = Vec<Arc<RuleFile>>;

/// `--files-from`: the list of paths to mirror (relative to SOURCE) as gitignore lines
/// that exclude everything else: `/*`, then for each directory on the way to a listed
/// path `!/dir/` and `/dir/*`, then `!/path` for each listed path (a listed directory
/// brings everything below it). Paths below another listed path add nothing.
/// Returns the lines, one per line, ready for [`RuleFile::parse`].
pub fn files_from_lines(paths: &[String]) -> String {
    let mut paths: Vec<&str> = paths.iter().map(|p| p.as_str()).filter(|p| !p.is_empty()).collect();
    paths.sort_unstable();
    paths.dedup();
    let listed: rustc_hash::FxHashSet<&str> = paths.iter().copied().collect();
    let below_listed = |p: &str| p.match_indices('/').any(|(i, _)| listed.contains(&p[..i]));
    let kept: Vec<&str> = paths.into_iter().filter(|p| !below_listed(p)).collect();
    let mut dirs: Vec<&str> = Vec::new();
    for p in &kept {
        let mut at = 0;
        while let Some(i) = p[at..].find('/') {
            dirs.push(&p[..at + i]);
            at += i + 1;
        }
    }
    dirs.sort_unstable_by_key(|d| (d.matches('/').count(), *d));
    dirs.dedup();
    let mut out = String::from("/*\n");
    for d in dirs {
        out.push_str(&format!("!/{}/\n/{}/*\n", escape_literal(d), escape_literal(d)));
    }
    for p in kept {
        out.push_str(&format!("!/{}\n", escape_literal(p)));
    }
    out
}

/// A path as a gitignore pattern that matches only itself.
pub fn escape_literal(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    if s.ends_with(' ') {
        s.pop();
        s.push_str("\\ ");
    }
    s
}

/// All the rules of one sync: command-line patterns plus per-directory files found
/// while scanning SOURCE.
#[derive(Debug, Default)]
pub struct Rules {
    /// `--exclude-from` files, then `--exclude` patterns; a later one overrides an
    /// earlier one.
    pub cli: Vec<Arc<RuleFile>>,
    /// Also delete excluded entries from DEST.
    pub delete_excluded: bool,
    /// Excluded on both sides and never deleted, whatever `delete_excluded` says, and
    /// stronger than every other rule: `--backup-dir` inside DEST.
    pub keep: Option<Arc<RuleFile>>,
}

impl Rules {
    /// The rule that decides `path` (relative to SOURCE), if any: command-line patterns
    /// first, then the chain from the deepest file up.
    pub fn check<'a>(&'a self, chain: &'a [Arc<RuleFile>], path: &Path, is_dir: bool) -> Option<Hit<'a>> {
        self.keep
            .iter()
            .chain(self.cli.iter().rev())
            .chain(chain.iter().rev())
            .find_map(|f| f.matched(path, is_dir))
    }

    /// True when `path` is excluded.
    pub fn excluded(&self, chain: &[Arc<RuleFile>], path: &Path, is_dir: bool) -> bool {
        self.check(chain, path, is_dir).is_some_and(|h| h.excluded())
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
    fn files_from_keeps_only_the_listed_paths_and_their_parents() {
        let list: Vec<String> =
            ["a/b/c.txt", "a/b/d", "a/b/d-2", "a/b/d/below", "top.txt", "odd*[x] ", "e/f"]
                .map(String::from)
                .to_vec();
        let text = files_from_lines(&list);
        let r = rules(&text);
        for (p, dir) in [
            ("a", true),
            ("a/b", true),
            ("a/b/c.txt", false),
            ("a/b/d", true),
            ("a/b/d/x/y", false),
            ("a/b/d/below/z", false),
        ] {
            assert!(!ex(&r, p, dir), "{p} excluded:\n{text}");
        }
        for (p, dir) in [("top.txt", false), ("odd*[x] ", false), ("e", true), ("e/f", false)] {
            assert!(!ex(&r, p, dir), "{p} excluded:\n{text}");
        }
        for (p, dir) in [
            ("other", false),
            ("a/x", false),
            ("a/b/c.txt2", false),
            ("a/b/e", true),
            ("oddz", false),
            ("e/g", false),
        ] {
            assert!(ex(&r, p, dir), "{p} not excluded:\n{text}");
        }
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
    fn brackets_as_wildmatch_reads_them() {
        let r = rules("[]a]\n");
        assert!(ex(&r, "a", false) && ex(&r, "]", false) && !ex(&r, "b", false));
        let r = rules("[!]]*\n");
        assert!(ex(&r, "x", false) && !ex(&r, "]x", false));
        let r = rules("[\\]]\n");
        assert!(ex(&r, "]", false) && !ex(&r, "\\", false));
        let r = rules("[[:punct:]]\n");
        assert!(ex(&r, "!", false) && !ex(&r, "b", false) && ex(&r, "d/!", false), "unanchored");
        let r = rules("[[:digit:]-]\n");
        assert!(ex(&r, "5", false) && ex(&r, "-", false) && !ex(&r, "x", false));
        let r = rules("[!!]\n");
        assert!(ex(&r, "a", false) && !ex(&r, "!", false));
        let r = rules("[z-a]x\n");
        assert!(!ex(&r, "zx", false) && !ex(&r, "ax", false));
    }

    #[test]
    fn literal_prefix_before_double_star_may_match_nothing_as_in_git() {
        let r = rules("a**/b\n");
        assert!(ex(&r, "ab", false) && ex(&r, "a/b", false) && ex(&r, "axy/c/b", false));
        assert!(!ex(&r, "b", false));
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for bad in ["x[z-a", "[[:nope:]]", "foo\\"] {
            let e = RuleFile::parse(Path::new(""), ".syncignore", &format!("ok\n{bad}\n")).expect_err(bad);
            assert_eq!(e.line, 2, "{bad}");
        }
    }

    #[test]
    fn explanations_quote_the_pattern_as_written() {
        let r = rules("[[:digit:]]*.bak\n{x,y}\n");
        assert_eq!(
            r.0.check(&r.1, Path::new("1.bak"), false).map(|h| h.describe()),
            Some(".syncignore:1: [[:digit:]]*.bak".into())
        );
        assert_eq!(
            r.0.check(&r.1, Path::new("{x,y}"), false).map(|h| h.describe()),
            Some(".syncignore:2: {x,y}".into())
        );
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
        let rules = Rules { cli: vec![Arc::new(cli)], delete_excluded: false, keep: None };
        let chain = vec![Arc::new(RuleFile::parse(Path::new(""), ".syncignore", "!x.bin\n").expect("f"))];
        assert!(rules.excluded(&chain, Path::new("x.bin"), false));
    }
}
