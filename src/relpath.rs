//! Relative paths: how tandem names an entry below SOURCE or DEST.
//!
//! A relative path is bytes, components joined with `/`, empty for the root itself
//! (names on unix need not be UTF-8). This module owns joining and splitting them,
//! converting to and from [`Path`], and showing them to people ([`shown`]) or in JSON
//! ([`text`]).

use std::path::Path;

/// `prefix/name`, or `name` at the root.
pub fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
    if !prefix.is_empty() {
        p.extend_from_slice(prefix);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The inverse of [`join`]: `a/b/c` → (`a/b`, `c`), `c` → (``, `c`).
pub fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (b"", rel),
    }
}

/// The parent of a relative path (`a/b` → `a`, `a` → ``).
pub fn parent(rel: &[u8]) -> &[u8] {
    split_last(rel).0
}

/// True when `rel` is `dir` or lies below it (everything lies below the root, ``).
pub fn is_within(rel: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() || rel == dir || (rel.starts_with(dir) && rel.get(dir.len()) == Some(&b'/'))
}

/// The shortest paths of a set: drops duplicates and any path below another one.
pub fn minimal(mut paths: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    paths.sort();
    paths.dedup();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for p in paths {
        if !out.iter().any(|o| is_within(&p, o)) {
            out.push(p);
        }
    }
    out
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

/// Lossy text for a path that may not be UTF-8 (for JSON, which escapes the rest).
pub fn text(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// A name as shown in human output: lossy UTF-8 with control characters escaped
/// (`\n`, `\t`, `\x1b`, …), so a hostile name can neither split a line nor send
/// escape sequences to a terminal.
pub fn shown(path: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(path);
    if !lossy.chars().any(char::is_control) {
        return lossy.into_owned();
    }
    let mut out = String::with_capacity(lossy.len() + 8);
    for c in lossy.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped_for_people() {
        assert_eq!(shown(b"plain name"), "plain name");
        assert_eq!(shown(b"a\nb"), "a\\nb");
        assert_eq!(shown(b"esc\x1b[31mred"), "esc\\x1b[31mred");
        assert_eq!(shown(b"bad\xffname"), "bad\u{fffd}name");
    }

    #[test]
    fn paths_split_join_and_nest() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(join(b"", b"c"), b"c");
        assert_eq!(join(b"a/b", b"c"), b"a/b/c");
        assert!(is_within(b"a/b", b"a") && is_within(b"a", b"a") && is_within(b"x", b""));
        assert!(!is_within(b"ab", b"a"));
        assert_eq!(
            minimal(vec![b"a/b".to_vec(), b"a".to_vec(), b"c".to_vec(), b"a".to_vec()]),
            vec![b"a".to_vec(), b"c".to_vec()]
        );
    }
}
