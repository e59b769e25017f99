//! Where SOURCE and DEST are: addressing as rsync users type it, and the command that
//! reaches another host.
//!
//! [`Location::parse`] applies rsync's rule: an argument with a colon before its first
//! slash names a host (`[user@]host:path`, `host:` for the remote home directory);
//! `./a:b` and `/a:b` are local paths. `sftp://[user@]host[:port]/path` is the URL
//! form (`/~/path` for a path below the home directory). `rsync://`, `host::module`
//! (rsync daemons) and any other scheme are refused: they never become local
//! directories.
//!
//! [`Remote::command`] builds the ssh command line: the `-e`/`--rsh` command split
//! into words as rsync does (default `ssh`), then the user and port, then the host and
//! the SFTP subsystem. Nothing here touches the network.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// What the addressing forms are, for error messages.
pub const SUPPORTED: &str =
    "tandem speaks local paths, [user@]host:path and sftp://[user@]host[:port]/path (SFTP over ssh), and s3://bucket/prefix as DEST";

/// A directory on another host, reached over ssh through its SFTP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The path on the remote host, as bytes: absolute, or relative to the remote
    /// user's home directory (empty: the home directory itself).
    pub path: Vec<u8>,
    /// As the user typed it, for messages.
    pub shown: String,
}

/// A prefix in an S3 bucket (`s3://bucket/prefix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub bucket: String,
    /// The key prefix, without slashes at either end (empty: the whole bucket).
    pub prefix: String,
    /// As the user typed it, for messages.
    pub shown: String,
}

/// A SOURCE or DEST argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Remote(Remote),
    S3(Bucket),
}

impl Location {
    /// Parses one path argument. `Err` is a usage error (exit 2), said in one line.
    pub fn parse(arg: &std::ffi::OsStr) -> Result<Location, String> {
        let bytes = arg.as_bytes();
        let shown = String::from_utf8_lossy(bytes).into_owned();
        if let Some(scheme_end) = scheme(bytes) {
            let scheme = String::from_utf8_lossy(&bytes[..scheme_end]).to_ascii_lowercase();
            if scheme == "sftp" {
                return parse_url(&bytes[scheme_end + 3..], shown).map(Location::Remote);
            }
            if scheme == "s3" {
                return parse_s3(&bytes[scheme_end + 3..], shown).map(Location::S3);
            }
            let why = if scheme == "rsync" { " (an rsync daemon)" } else { "" };
            return Err(format!("{shown}: {scheme}:// is not supported{why}; {SUPPORTED}"));
        }
        let slash = bytes.iter().position(|b| *b == b'/').unwrap_or(bytes.len());
        // An IPv6 address in brackets: `[::1]:path`, `user@[::1]:path`.
        let colon = match bracketed(bytes) {
            Some(close) => bytes[close..].iter().position(|b| *b == b':').map(|i| close + i),
            None => bytes[..slash].iter().position(|b| *b == b':'),
        };
        let Some(colon) = colon.filter(|c| *c < slash || bracketed(bytes).is_some()) else {
            return Ok(Location::Local(PathBuf::from(OsString::from_vec(bytes.to_vec()))));
        };
        if bytes.get(colon + 1) == Some(&b':') {
            return Err(format!(
                "{shown}: host::module names an rsync daemon, which is not supported; {SUPPORTED}"
            ));
        }
        let (user, host) = split_user(&bytes[..colon], &shown)?;
        // `host:~/x` (a remote shell would expand it): below the home directory, where
        // relative paths already are.
        let path = &bytes[colon + 1..];
        let path = if path == b"~" { &b""[..] } else { path.strip_prefix(b"~/").unwrap_or(path) };
        Ok(Location::Remote(Remote { user, host, port: None, path: path.to_vec(), shown }))
    }
}

/// `scheme://` at the start: the scheme's length.
fn scheme(bytes: &[u8]) -> Option<usize> {
    let end = bytes.windows(3).position(|w| w == b"://")?;
    let s = &bytes[..end];
    let ok = !s.is_empty()
        && s[0].is_ascii_alphabetic()
        && s.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    ok.then_some(end)
}

/// `[...]` host (after an optional `user@`) before any slash: the index after `]`.
fn bracketed(bytes: &[u8]) -> Option<usize> {
    let start = bytes.iter().position(|b| *b == b'@').map_or(0, |i| i + 1);
    if bytes.get(start) != Some(&b'[') {
        return None;
    }
    let close = bytes[start..].iter().position(|b| *b == b']')? + start;
    let slash = bytes.iter().position(|b| *b == b'/').unwrap_or(bytes.len());
    (close < slash && bytes.get(close + 1) == Some(&b':')).then_some(close + 1)
}

fn split_user(spec: &[u8], shown: &str) -> Result<(Option<String>, String), String> {
    let spec = std::str::from_utf8(spec).map_err(|_| format!("{shown}: the host name is not valid UTF-8"))?;
    let (user, host) = match spec.rfind('@') {
        Some(i) => (Some(spec[..i].to_string()), &spec[i + 1..]),
        None => (None, spec),
    };
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(format!("{shown}: no host name before ':'; {SUPPORTED}"));
    }
    if user.as_deref() == Some("") {
        return Err(format!("{shown}: empty user name before '@'"));
    }
    if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
        return Err(format!("{shown}: a host or user name cannot start with '-'"));
    }
    Ok((user, host.to_string()))
}

/// `[user@]host[:port]/path` after `sftp://`.
fn parse_url(rest: &[u8], shown: String) -> Result<Remote, String> {
    let slash = rest.iter().position(|b| *b == b'/').unwrap_or(rest.len());
    let authority = &rest[..slash];
    let path = percent_decode(&rest[slash..]).ok_or_else(|| format!("{shown}: bad %-escape in the path"))?;
    // `/~/x` and `/~` are below the home directory; `/x` is absolute.
    let path = if path == b"/~" {
        Vec::new()
    } else if let Some(p) = path.strip_prefix(b"/~/") {
        p.to_vec()
    } else if path.is_empty() {
        Vec::new()
    } else {
        path
    };
    let authority =
        std::str::from_utf8(authority).map_err(|_| format!("{shown}: the host name is not valid UTF-8"))?;
    let (userhost, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => {
            let port = authority[i + 1..].parse::<u16>().ok().filter(|p| *p > 0);
            let port = port.ok_or_else(|| format!("{shown}: bad port '{}'", &authority[i + 1..]))?;
            (&authority[..i], Some(port))
        }
        _ => (authority, None),
    };
    let (user, host) = split_user(userhost.as_bytes(), &shown)?;
    let user = user.map(|u| percent_decode(u.as_bytes()).map(|b| String::from_utf8_lossy(&b).into_owned()));
    let user = match user {
        Some(Some(u)) => Some(u),
        Some(None) => return Err(format!("{shown}: bad %-escape in the user name")),
        None => None,
    };
    Ok(Remote { user, host, port, path, shown })
}

/// `bucket[/prefix]` after `s3://`: the bucket as S3 names them (3 to 63 lower-case
/// letters, digits, dots and hyphens), the prefix as UTF-8 (S3 keys are text).
fn parse_s3(rest: &[u8], shown: String) -> Result<Bucket, String> {
    let rest = std::str::from_utf8(rest).map_err(|_| format!("{shown}: S3 keys are UTF-8 text"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric();
    if !valid {
        return Err(format!(
            "{shown}: '{bucket}' is not a bucket name (3 to 63 lower-case letters, digits, '.' and '-')"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|c| c.is_empty() || c == "." || c == "..") && !prefix.is_empty() {
        return Err(format!("{shown}: the prefix has an empty, '.' or '..' component"));
    }
    Ok(Bucket { bucket: bucket.to_string(), prefix: prefix.to_string(), shown })
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Splits an `-e`/`--rsh` command into words as rsync does: blanks separate words,
/// single quotes keep everything literally, double quotes keep blanks (a backslash
/// escapes `"` and `\` inside them).
pub fn split_command(cmd: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("--rsh '{cmd}': unterminated single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\')) => {
                            cur.extend(chars.next());
                        }
                        Some(c) => cur.push(c),
                        None => return Err(format!("--rsh '{cmd}': unterminated double quote")),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err("--rsh: empty command".into());
    }
    Ok(words)
}

impl Remote {
    /// `user@host` (or `host`), for messages.
    pub fn host_shown(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }

    /// The ssh command line that starts the remote SFTP server: `rsh` (already split),
    /// OpenSSH options when it is ssh (no forwarding; no prompt when stdin is not a
    /// terminal, unless the command says otherwise), user, port, host, `-s sftp`.
    pub fn command(&self, rsh: &[String], interactive: bool) -> Vec<OsString> {
        let mut args: Vec<OsString> = rsh.iter().map(OsString::from).collect();
        let is_ssh = rsh.first().is_some_and(|p| {
            std::path::Path::new(p).file_name().is_some_and(|n| n == "ssh" || n == "ssh.exe")
        });
        if is_ssh {
            let given =
                |opt: &str| rsh.iter().any(|w| w.to_ascii_lowercase().contains(&opt.to_ascii_lowercase()));
            for opt in
                ["ForwardX11=no", "ForwardAgent=no", "PermitLocalCommand=no", "ClearAllForwardings=yes"]
            {
                args.push(format!("-o{opt}").into());
            }
            if !interactive && !given("BatchMode") {
                args.push("-oBatchMode=yes".into());
            }
        }
        if let Some(u) = &self.user {
            args.push("-l".into());
            args.push(u.into());
        }
        if let Some(p) = self.port {
            args.push("-p".into());
            args.push(p.to_string().into());
        }
        if is_ssh {
            args.push("-s".into());
            args.push(self.host.clone().into());
            args.push("sftp".into());
        } else {
            // Another transport (rsync's -e allows any): ask it for the subsystem the
            // way ssh is asked.
            args.push(self.host.clone().into());
            args.push("-s".into());
            args.push("sftp".into());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Location, String> {
        Location::parse(std::ffi::OsStr::new(s))
    }
    fn remote(s: &str) -> Remote {
        match parse(s) {
            Ok(Location::Remote(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn rsync_rule_colon_before_first_slash() {
        let r = remote("user@example.com:backup");
        assert_eq!(
            (r.user.as_deref(), r.host.as_str(), &r.path[..]),
            (Some("user"), "example.com", &b"backup"[..])
        );
        let r = remote("host:/abs/p");
        assert_eq!((r.user, r.host.as_str(), &r.path[..]), (None, "host", &b"/abs/p"[..]));
        assert_eq!(remote("host:").path, b"");
        assert_eq!(remote("host:~/x").path, b"x");
        assert_eq!(remote("host:~").path, b"");
        assert_eq!(remote("h:a/b:c").path, b"a/b:c");
        for local in ["./a:b", "/a:b", "a/b:c", "plain", "dir/"] {
            assert!(matches!(parse(local), Ok(Location::Local(_))), "{local}");
        }
        let r = remote("me@[::1]:x");
        assert_eq!((r.user.as_deref(), r.host.as_str(), &r.path[..]), (Some("me"), "::1", &b"x"[..]));
    }

    #[test]
    fn urls() {
        let r = remote("sftp://u@h:2222/srv/x%20y");
        assert_eq!(
            (r.user.as_deref(), r.host.as_str(), r.port, &r.path[..]),
            (Some("u"), "h", Some(2222), &b"/srv/x y"[..])
        );
        assert_eq!(remote("sftp://h/~/rel").path, b"rel");
        assert_eq!(remote("sftp://h").path, b"");
        assert_eq!(remote("SFTP://h/a%ff").path, b"/a\xff");
        assert!(parse("sftp://h:0/x").is_err());
        assert!(parse("sftp://h:99999/x").is_err());
        assert!(parse("sftp:///x").is_err());
    }

    #[test]
    fn refused_forms() {
        for s in ["rsync://host/mod", "host::mod", "http://x/y", "file:///tmp/x"] {
            let e = parse(s).expect_err(s);
            assert!(e.contains("sftp://"), "{s}: {e}");
        }
        assert!(parse("-oProxyCommand=x:y").is_err());
        assert!(parse("@h:x").is_err());
    }

    #[test]
    fn s3_urls() {
        let b = |s: &str| match parse(s) {
            Ok(Location::S3(b)) => (b.bucket, b.prefix),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(b("s3://my-bucket/a/b/"), ("my-bucket".into(), "a/b".into()));
        assert_eq!(b("s3://my-bucket"), ("my-bucket".into(), "".into()));
        assert_eq!(b("S3://my.bucket/"), ("my.bucket".into(), "".into()));
        for bad in ["s3://ab/x", "s3://Upper/x", "s3://b_c/x", "s3://bucket/a//b", "s3://bucket/a/../b"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rsh_words() {
        assert_eq!(split_command("ssh -p 2222 -i key").expect("ok"), ["ssh", "-p", "2222", "-i", "key"]);
        assert_eq!(split_command("ssh -i 'my key' -o\"A B\"").expect("ok"), ["ssh", "-i", "my key", "-oA B"]);
        assert!(split_command("ssh 'x").is_err());
        assert!(split_command("  ").is_err());
    }

    #[test]
    fn ssh_command_line() {
        let r = remote("sftp://u@h:2200/x");
        let rsh = split_command("ssh -i k").expect("ok");
        let cmd: Vec<String> =
            r.command(&rsh, false).iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(&cmd[..3], ["ssh", "-i", "k"]);
        assert!(cmd.contains(&"-oBatchMode=yes".to_string()));
        assert!(cmd.ends_with(&["-l", "u", "-p", "2200", "-s", "h", "sftp"].map(String::from)));
        let cmd = r.command(&split_command("ssh -oBatchMode=no").expect("ok"), false);
        assert_eq!(cmd.iter().filter(|a| a.to_string_lossy().contains("BatchMode")).count(), 1);
        assert!(!r.command(&rsh, true).iter().any(|a| a == "-oBatchMode=yes"));
    }
}
