//! A directory on another host, reached through that host's own SFTP server.
//!
//! [`SftpTree::connect`] starts the system's `ssh` (or the `-e`/`--rsh` command) with
//! the `sftp` subsystem, so `~/.ssh/config`, agents, ProxyJump and known_hosts apply,
//! and speaks SFTP v3 (with OpenSSH's extensions: `posix-rename@openssh.com`,
//! `statvfs@openssh.com`, `limits@openssh.com`) to it through the
//! `openssh-sftp-client` crate, whose requests are pipelined: many are in flight on
//! the one connection, answered in any order. Nothing is installed on the remote.
//!
//! The tree is an implementation of both seams: SOURCE (`source::Source`, here) and
//! DEST (`dest::Dest`, in `dest::sftp`). Its scans (`scan`) list each directory with
//! READDIR, whose answers carry every entry's attributes (no per-entry stat), many
//! directories at once; its apply (`apply`) runs a plan with many operations in
//! flight, each file written under a temporary name in large pipelined writes,
//! given its mode and mtime, then renamed into place.
//!
//! SFTP v3 carries whole seconds: mtimes are compared at that precision. It cannot set
//! a symlink's own mtime or owner (SETSTAT follows links), so symlinks are compared by
//! target only.

pub mod apply;
pub mod scan;

use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use openssh_sftp_client::file::File;
use openssh_sftp_client::metadata::{MetaData, MetaDataBuilder, Permissions};
use openssh_sftp_client::{Error, Sftp, SftpOptions, UnixTimeStamp};
use tokio::io::AsyncReadExt;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use crate::lock::lock;
use crate::remote::Remote;
use crate::snapshot::{ScanOptions, Snapshot};
use crate::source::{Source, SourceFile};
use crate::sys::Meta;
use crate::tree::LocalTree;

/// Directories listed at once by a scan (each holds a handle on the server).
const LIST_SLOTS: usize = 64;
/// Operations (a file copy is one) in flight at once during an apply.
const OP_SLOTS: usize = 128;
/// The client writes its queued requests to ssh as soon as this many are waiting,
/// else at its next flush tick (0.5 ms, its default; tokio's timer makes it up to about
/// a millisecond). The crate's default of 100 meant that with a few dozen operations
/// in flight every request waited for a tick: a first mirror of 20,000 small files took
/// 3.0 s with 64 in flight, 1.9–2.1 s at 8 (BENCHMARKS.md, "Remote DEST over ssh").
const FLUSH_AT: std::num::NonZeroU16 = std::num::NonZeroU16::new(8).unwrap();
/// Read or write requests in flight for one large file.
const CHUNKS_IN_FLIGHT: usize = 16;
/// The data of one read or write request: OpenSSH's limit (`limits@openssh.com`
/// answers 255 KiB); the client splits larger ones, and reads may come back shorter.
const CHUNK: usize = 255 << 10;

/// How the connection was asked for.
#[derive(Clone, Debug)]
pub struct Connect<'a> {
    pub remote: &'a Remote,
    /// The `-e`/`--rsh` command, split into words.
    pub rsh: &'a [String],
    /// Standard input is a terminal: ssh may ask for a password or a host key.
    pub interactive: bool,
}

/// One SFTP session: the client, the ssh process it speaks through, and whether it
/// was found lost. A watch session replaces it when the connection drops
/// ([`SftpTree::reconnect`]).
struct Session {
    sftp: Sftp,
    child: Mutex<Option<tokio::process::Child>>,
    ssh_stderr: Arc<Mutex<Vec<u8>>>,
    lost: AtomicBool,
    /// What the client said when the connection was found lost.
    lost_cause: Mutex<Option<String>>,
    posix_rename: bool,
    /// The server has `hardlink@openssh.com` (`--backup-dir` keeps a file about to be
    /// overwritten by a link, so the replacement stays one rename).
    hardlink: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.start_kill();
        }
    }
}

/// A connection to a remote directory.
pub struct SftpTree {
    // Dropped in this order: the session (and its ssh), then the runtime they ran on.
    session: RwLock<Arc<Session>>,
    rt: Runtime,
    remote: Remote,
    /// How to connect again: the `-e` command and whether ssh may prompt.
    rsh: Vec<String>,
    interactive: bool,
    /// The remote root as a path: absolute, or relative to the home directory (`.`).
    root: Vec<u8>,
    list_slots: Semaphore,
    op_slots: Semaphore,
}

impl std::fmt::Debug for SftpTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpTree").field("remote", &self.remote.shown).finish()
    }
}

/// How many of the first bytes from the remote side are kept, to tell a session that
/// did not start because something other than the SFTP server spoke first.
const FIRST_BYTES: usize = 256;

/// ssh's standard output, passed on to the SFTP client as it comes, its first
/// [`FIRST_BYTES`] also kept in `first` (see [`shell_noise`]).
struct Recorded<R> {
    inner: R,
    first: Arc<Mutex<Vec<u8>>>,
    recording: bool,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Recorded<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.recording {
            let got = &buf.filled()[before..];
            let mut first = lock(&self.first);
            let take = got.len().min(FIRST_BYTES - first.len());
            first.extend_from_slice(&got[..take]);
            let full = first.len() == FIRST_BYTES;
            drop(first);
            self.recording = !full;
        }
        polled
    }
}

/// The remote side's first bytes, when they cannot be the start of an SFTP server's
/// first reply (a 4-byte length, then `SSH_FXP_VERSION`): what it printed instead, as
/// one short line. The usual cause is a shell startup file (`~/.bashrc`) that prints
/// text even when the shell is not interactive, ahead of the server's reply, as sftp
/// and rsync also find ("Received message too long", "is your shell clean?").
fn shell_noise(first: &[u8]) -> Option<String> {
    const SSH_FXP_VERSION: u8 = 2;
    // A VERSION reply with OpenSSH's extensions is a few hundred bytes.
    let plausible_len = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) <= 1 << 18;
    let sftp = match first.len() {
        0 => return None,
        1..=3 => first[0] == 0,
        4 => plausible_len(first),
        _ => plausible_len(first) && first[4] == SSH_FXP_VERSION,
    };
    if sftp {
        return None;
    }
    let line = first.split(|&b| b == b'\n').find(|l| !l.iter().all(u8::is_ascii_whitespace)).unwrap_or(first);
    let text: String = String::from_utf8_lossy(line).trim().chars().take(60).collect();
    Some(text.escape_debug().to_string())
}

/// Explains a failed connection from what ssh said: one line, what to try.
fn explain_ssh(host: &str, stderr: &[u8], status: Option<std::process::ExitStatus>) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let has = |s: &str| lines.iter().any(|l| l.contains(s));
    let last = lines.last().copied().unwrap_or("");
    let said = if last.is_empty() { String::new() } else { format!(" (ssh: {last})") };
    if has("Could not resolve hostname") || has("Name or service not known") {
        format!("cannot connect to {host}: unknown host{said}; check the name, or its entry in ~/.ssh/config")
    } else if has("Connection refused") {
        format!("cannot connect to {host}: connection refused{said}; is sshd running there, on that port (-e 'ssh -p PORT')?")
    } else if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("Host key verification failed") {
        format!(
            "cannot connect to {host}: host key verification failed{said}; the host's key is unknown or does not match known_hosts: check it, then connect once with ssh (or ssh-keygen -R {host})"
        )
    } else if has("Permission denied") || has("Too many authentication failures") {
        format!(
            "cannot connect to {host}: authentication failed{said}; tandem does not prompt for passwords when stdin is not a terminal: use a key or an agent (-e 'ssh -i KEY')"
        )
    } else if has("timed out") || has("No route to host") || has("Network is unreachable") {
        format!("cannot connect to {host}: network unreachable{said}")
    } else if has("subsystem request failed") {
        format!("cannot connect to {host}: its ssh server does not offer the sftp subsystem{said}")
    } else if let Some(s) = status.filter(|s| !s.success()) {
        format!("cannot connect to {host}: ssh failed ({s}){said}")
    } else {
        format!("cannot connect to {host}: the SFTP session ended{said}")
    }
}

/// Starts ssh (the `-e` command) with the sftp subsystem and opens an SFTP session
/// over it, on runtime `rt`. `Err`: one line for the user (what ssh said, what to try).
fn open_session(rt: &Runtime, remote: &Remote, rsh: &[String], interactive: bool) -> Result<Session, String> {
    let host = remote.host_shown();
    let argv = remote.command(rsh, interactive);
    let Some((program, args)) = argv.split_first() else {
        return Err("--rsh: empty command".into());
    };
    let ssh_stderr = Arc::new(Mutex::new(Vec::new()));
    let started = rt.block_on(async {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            format!("cannot start {}: {} (see -e/--rsh)", program.to_string_lossy(), crate::sys::describe(&e))
        })?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("cannot talk to ssh: no pipes".to_string());
        };
        let sink = ssh_stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut s = lock(&sink);
                // Keep the last few kilobytes: enough for ssh's complaint.
                s.extend_from_slice(&buf[..n]);
                if s.len() > 16 << 10 {
                    let cut = s.len() - (8 << 10);
                    s.drain(..cut);
                }
            }
        });
        let opts = SftpOptions::new().max_pending_requests(FLUSH_AT);
        let first = Arc::new(Mutex::new(Vec::new()));
        let stdout = Recorded { inner: stdout, first: first.clone(), recording: true };
        match Sftp::new(stdin, stdout, opts).await {
            Ok(sftp) => Ok((sftp, child)),
            Err(_) => {
                if let Some(text) = shell_noise(&lock(&first)) {
                    return Err(format!(
                        "cannot connect to {host}: something on the remote side printed \"{text}\" where the SFTP server's first reply was due; most often a shell startup file there (~/.bashrc, ~/.profile) that prints text in non-interactive sessions: make it print nothing unless interactive"
                    ));
                }
                let status = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                // Let the stderr reader catch up with ssh's last words.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Err(explain_ssh(&host, &lock(&ssh_stderr), status))
            }
        }
    });
    let (sftp, child) = started?;
    let posix_rename = sftp.support_posix_rename();
    let hardlink = sftp.support_hardlink();
    Ok(Session {
        sftp,
        child: Mutex::new(Some(child)),
        ssh_stderr,
        lost: AtomicBool::new(false),
        lost_cause: Mutex::new(None),
        posix_rename,
        hardlink,
    })
}

impl SftpTree {
    /// Starts ssh and the SFTP session. `Err`: one line for the user.
    pub fn connect(how: Connect<'_>) -> Result<SftpTree, String> {
        let remote = how.remote.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tandem-sftp")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the SFTP client: {e}"))?;
        let session = open_session(&rt, &remote, how.rsh, how.interactive)?;
        let root = if remote.path.is_empty() { b".".to_vec() } else { remote.path.clone() };
        Ok(SftpTree {
            session: RwLock::new(Arc::new(session)),
            rt,
            remote,
            rsh: how.rsh.to_vec(),
            interactive: how.interactive,
            root,
            list_slots: Semaphore::new(LIST_SLOTS),
            op_slots: Semaphore::new(OP_SLOTS),
        })
    }

    /// Connects again after the connection was lost (watch mode): a new ssh and SFTP
    /// session replace the old one. `Err`: one line for the user, as for
    /// [`SftpTree::connect`]. Called between cycles, when no operation is in flight.
    pub fn reconnect(&self) -> Result<(), String> {
        let session = open_session(&self.rt, &self.remote, &self.rsh, self.interactive)?;
        let old = {
            let mut current = self.session.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *current, Arc::new(session))
        };
        // The old client's tasks end on this runtime.
        let _in_runtime = self.rt.enter();
        drop(old);
        Ok(())
    }

    /// The current session.
    fn sess(&self) -> Arc<Session> {
        self.session.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The server renames over an existing name in one step (`posix-rename@openssh.com`).
    fn posix_rename(&self) -> bool {
        self.sess().posix_rename
    }

    /// The server makes hard links (`hardlink@openssh.com`).
    fn hardlink(&self) -> bool {
        self.sess().hardlink
    }

    /// The remote directory as the user typed it.
    pub fn shown(&self) -> String {
        self.remote.shown.clone()
    }

    /// The remote user is root, so owners can be mirrored there. SFTP does not say
    /// who one is: on Linux, `/proc/self` (the SFTP server's own process directory)
    /// belongs to it; elsewhere the owner of the home directory tells.
    pub fn remote_is_root(&self) -> bool {
        self.block(async {
            let fs = || self.sess().sftp.fs();
            let uid = match fs().metadata("/proc/self").await {
                Ok(m) if m.file_type().is_some_and(|t| t.is_dir()) => m.uid(),
                _ => fs().symlink_metadata(".").await.ok().and_then(|m| m.uid()),
            };
            uid == Some(0)
        })
    }

    /// The connection was lost (ssh ended): nothing more can be done.
    pub fn is_lost(&self) -> bool {
        self.sess().lost.load(Ordering::Relaxed)
    }

    /// Runs a future on this connection's runtime (from a non-async thread).
    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The remote path of `rel` (relative to the root).
    fn path(&self, rel: &[u8]) -> PathBuf {
        let mut p = self.root.clone();
        if !rel.is_empty() && rel != b"." {
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(rel);
        }
        PathBuf::from(std::ffi::OsString::from_vec(p))
    }

    /// The remote root, as a path.
    fn root_path(&self) -> PathBuf {
        self.path(b"")
    }

    /// What happened to a lost connection, in words (`connection to host lost (ssh:
    /// …)`); `None` while it is up.
    pub fn lost_text(&self) -> Option<String> {
        if !self.is_lost() {
            return None;
        }
        let sess = self.sess();
        let said = String::from_utf8_lossy(&lock(&sess.ssh_stderr))
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_string);
        let said = match (said, lock(&sess.lost_cause).as_deref()) {
            (Some(s), _) => format!(" (ssh: {})", s.trim()),
            (None, Some(cause)) => format!(" ({cause})"),
            (None, None) => String::new(),
        };
        Some(format!("connection to {} lost{said}", self.remote.host_shown()))
    }

    /// The error for a lost connection.
    fn lost_error(&self) -> io::Error {
        let text =
            self.lost_text().unwrap_or_else(|| format!("connection to {} lost", self.remote.host_shown()));
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("{text}; nothing is left torn under a final name: run tandem again to finish"),
        )
    }

    /// Turns a client error into an `io::Error`; a transport failure marks the
    /// connection lost.
    fn err(&self, e: Error) -> io::Error {
        use openssh_sftp_client::error::SftpErrorKind as K;
        match e {
            Error::SftpError(kind, msg) => {
                let text = msg.get().0.to_string();
                let (ek, default) = match kind {
                    K::NoSuchFile => return io::Error::from_raw_os_error(libc::ENOENT),
                    K::PermDenied => return io::Error::from_raw_os_error(libc::EACCES),
                    K::OpUnsupported => {
                        (io::ErrorKind::Unsupported, "operation not supported by the SFTP server")
                    }
                    K::BadMessage => (io::ErrorKind::InvalidInput, "bad message"),
                    _ => (io::ErrorKind::Other, "failure"),
                };
                let text = if text.trim().is_empty() { default.to_string() } else { text };
                io::Error::new(ek, format!("remote: {text}"))
            }
            Error::IOError(e)
                if e.kind() != io::ErrorKind::BrokenPipe && e.kind() != io::ErrorKind::UnexpectedEof =>
            {
                e
            }
            other => {
                let sess = self.sess();
                lock(&sess.lost_cause).get_or_insert_with(|| other.to_string());
                sess.lost.store(true, Ordering::Relaxed);
                self.lost_error()
            }
        }
    }

    /// A generic server failure on a write, explained when the remote file system is
    /// full.
    async fn explain_write(&self, e: io::Error, rel: &[u8]) -> io::Error {
        if e.kind() != io::ErrorKind::Other || self.is_lost() || !self.sess().sftp.support_statvfs() {
            return e;
        }
        let dir = self.path(crate::relpath::parent(rel));
        match self.sess().sftp.fs().statvfs(&dir).await {
            Ok(v) if v.bavail == 0 || v.favail == 0 => {
                io::Error::new(io::ErrorKind::StorageFull, "no space left on the remote file system")
            }
            _ => e,
        }
    }

    /// Attributes of `rel` (not following a symlink); `None` when there is none.
    async fn lstat(&self, rel: &[u8]) -> io::Result<Option<MetaData>> {
        match self.sess().sftp.fs().symlink_metadata(self.path(rel)).await {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                let e = self.err(e);
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// What the root is: `None` when it is missing, `Some(true)` a directory (through a
    /// symlink too: the user named it), `Some(false)` anything else.
    pub fn root_kind(&self) -> io::Result<Option<bool>> {
        self.block(self.kind_at(self.root_path()))
    }

    /// What is at `path` on the server: as [`SftpTree::root_kind`] says.
    async fn kind_at(&self, path: PathBuf) -> io::Result<Option<bool>> {
        match self.sess().sftp.fs().metadata(path).await {
            Ok(m) => Ok(Some(m.file_type().is_some_and(|t| t.is_dir()))),
            Err(e) => {
                let e = self.err(e);
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The root is there, as a directory.
    pub fn root_exists(&self) -> io::Result<bool> {
        Ok(self.root_kind()? == Some(true))
    }

    /// Creates the root directory (not its parents, as rsync does). True when it made
    /// it.
    pub fn create_root(&self) -> io::Result<bool> {
        if self.root_exists()? {
            return Ok(false);
        }
        self.block(async {
            match self.sess().sftp.fs().create_dir(self.root_path()).await {
                Ok(()) => Ok(true),
                Err(e) => {
                    let e = self.err(e);
                    if e.kind() != io::ErrorKind::NotFound {
                        return Err(e);
                    }
                    let parent = match crate::relpath::parent(&self.root) {
                        b"" if self.root.starts_with(b"/") => b"/".as_slice(),
                        b"" => b".",
                        p => p,
                    };
                    let parent_path = PathBuf::from(std::ffi::OsString::from_vec(parent.to_vec()));
                    if matches!(self.kind_at(parent_path).await, Ok(Some(true))) {
                        // The parent is there: the server's file system refused the name.
                        return Err(e);
                    }
                    let parent = if parent == b"." { "the home directory".to_string() } else { crate::relpath::shown(parent) };
                    Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "its parent directory ({parent}) is missing on {}: tandem creates DEST, not its parents; create it first",
                            self.remote.host_shown()
                        ),
                    ))
                }
            }
        })
    }

    /// Removes the root if it is an empty directory (after [`SftpTree::create_root`]).
    pub fn remove_root_if_empty(&self) {
        self.block(async {
            let _ = self.sess().sftp.fs().remove_dir(self.root_path()).await;
        });
    }

    /// `rel` is a directory (not a symlink to one, below the root).
    pub fn is_dir(&self, rel: &[u8]) -> io::Result<bool> {
        self.block(async {
            if rel.is_empty() {
                return self
                    .sess()
                    .sftp
                    .fs()
                    .metadata(self.root_path())
                    .await
                    .map(|m| m.file_type().is_some_and(|t| t.is_dir()))
                    .map_err(|e| self.err(e));
            }
            Ok(self.lstat(rel).await?.is_some_and(|m| m.file_type().is_some_and(|t| t.is_dir())))
        })
    }

    /// What identifies the remote file system holding the root (`statvfs`'s fsid);
    /// 0 where the server cannot tell.
    pub fn fs_id(&self) -> io::Result<u64> {
        if !self.sess().sftp.support_statvfs() {
            return Ok(0);
        }
        self.block(async {
            self.sess().sftp.fs().statvfs(self.root_path()).await.map(|v| v.fsid).map_err(|e| self.err(e))
        })
    }
}

/// Tandem's attributes from an SFTP attribute block (whole seconds; no inode).
pub fn meta_of(m: &MetaData) -> Meta {
    let size = m.len().unwrap_or(0);
    let (uid, gid) = (m.uid().unwrap_or(0), m.gid().unwrap_or(0));
    Meta {
        size,
        mtime_sec: m.modified().map_or(0, |t| i64::from(t.into_raw())),
        mtime_nsec: 0,
        mode: m.permissions().map_or(0, |p| p.as_raw().bits() & 0o7777),
        uid,
        gid,
        ino: 0,
        blocks: size.div_ceil(512),
    }
}

/// An SFTP timestamp for `meta`'s mtime (whole seconds, 1970 to 2106).
pub fn timestamp(meta: &Meta) -> io::Result<UnixTimeStamp> {
    u32::try_from(meta.mtime_sec).ok().and_then(UnixTimeStamp::from_raw).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "its mtime is outside what SFTP can store (1970 to 2106)")
    })
}

/// The attribute block that gives an entry `meta`'s mode and mtime (and owner).
pub fn attrs_of(meta: &Meta, owner: bool) -> io::Result<MetaData> {
    let t = timestamp(meta)?;
    let mut b = MetaDataBuilder::new();
    if owner {
        b.id((meta.uid, meta.gid));
    }
    b.permissions(Permissions::from((meta.mode & 0o7777) as u16));
    b.time(t, t);
    Ok(b.create())
}

/// A remote file being read, in large pipelined windows.
struct RemoteFile<'t> {
    tree: &'t SftpTree,
    file: File,
    meta: Meta,
    offset: u64,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl RemoteFile<'_> {
    /// Fetches the next window: up to [`CHUNKS_IN_FLIGHT`] reads at once.
    async fn fill(&mut self) -> io::Result<()> {
        use futures_util::stream::{FuturesOrdered, StreamExt};
        use tokio::io::AsyncSeekExt;
        let chunk = CHUNK as u64;
        // As many reads as the file's size calls for (one more, to see it grow).
        let left = self.meta.size.saturating_sub(self.offset);
        let wanted = (left / chunk + 1).min(CHUNKS_IN_FLIGHT as u64);
        let mut reads = FuturesOrdered::new();
        for i in 0..wanted {
            let mut f = self.file.clone();
            let off = self.offset + i * chunk;
            reads.push_back(async move {
                f.seek(io::SeekFrom::Start(off)).await.map_err(Error::from)?;
                f.read(chunk as u32, bytes::BytesMut::new()).await
            });
        }
        self.buf.clear();
        self.pos = 0;
        // Data is kept up to the first short answer: what follows it was read from
        // offsets past a gap, and is asked for again by the next window.
        let mut short = false;
        while let Some(r) = reads.next().await {
            match r.map_err(|e| self.tree.err(e))? {
                Some(data) if !short => {
                    short = (data.len() as u64) < chunk;
                    self.buf.extend_from_slice(&data);
                }
                Some(_) => {}
                None => short = true,
            }
        }
        self.offset += self.buf.len() as u64;
        // A short answer at the size the file had when opened is its end (had it grown,
        // `unchanged` says so and the copy is done again): no request just to hear EOF.
        self.eof = self.buf.is_empty() || (short && self.offset >= self.meta.size);
        Ok(())
    }
}

impl Read for RemoteFile<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.eof {
                return Ok(0);
            }
            if crate::sys::stopping() {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "interrupted by a signal; not copied",
                ));
            }
            let tree = self.tree;
            tree.block(self.fill())?;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl SourceFile for RemoteFile<'_> {
    fn meta(&self) -> Meta {
        self.meta
    }

    fn unchanged(&mut self) -> io::Result<bool> {
        let tree = self.tree;
        let now = tree.block(self.file.metadata()).map_err(|e| tree.err(e))?;
        let now = meta_of(&now);
        Ok(now.size == self.meta.size && now.mtime_sec == self.meta.mtime_sec)
    }
}

impl Source for SftpTree {
    fn scan(&self, opts: ScanOptions<'_>) -> io::Result<Snapshot> {
        scan::scan(self, opts)
    }

    fn local(&self) -> Option<&LocalTree> {
        None
    }

    fn subtree(
        &self,
        rel: &[u8],
        scanner: &crate::snapshot::Scanner<'_>,
        chain: &crate::ignore::Chain,
    ) -> io::Result<(Meta, Option<Vec<crate::snapshot::Entry>>)> {
        scan::scan_subtree_with(self, rel, scanner, chain)
    }

    fn is_dir(&self, rel: &[u8]) -> io::Result<bool> {
        SftpTree::is_dir(self, rel)
    }

    fn fs_identity(&self) -> io::Result<u64> {
        self.fs_id()
    }

    fn connection_lost(&self) -> Option<String> {
        self.lost_text()
    }

    fn reconnect(&self) -> Result<(), String> {
        SftpTree::reconnect(self)
    }

    fn open_file(&self, rel: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
        let opened = self.block(async {
            // Never through a symlink: the entry itself must be a regular file. SFTP's
            // OPEN follows links, so the entry is looked at (LSTAT) in the same breath,
            // and the handle dropped when it is not a regular file.
            let path = self.path(rel);
            let sess = self.sess();
            let (st, file) = futures_util::join!(self.lstat(rel), sess.sftp.open(&path));
            let md = match st? {
                Some(m) if m.file_type().is_some_and(|t| t.is_file()) => m,
                Some(_) => {
                    return Err(io::Error::other(
                        "entry changed type during the sync (no longer a regular file)",
                    ))
                }
                None => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
            };
            let file = file.map_err(|e| self.err(e))?;
            Ok((file, meta_of(&md)))
        })?;
        let (file, meta) = opened;
        Ok(Box::new(RemoteFile { tree: self, file, meta, offset: 0, buf: Vec::new(), pos: 0, eof: false }))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_noise;

    #[test]
    fn the_start_of_an_sftp_reply_is_not_noise() {
        // length 0x1c5, SSH_FXP_VERSION, version 3: whole, and cut short at every length.
        let reply = [0u8, 0, 1, 0xc5, 2, 0, 0, 0, 3, 0, 0, 0, 0x18];
        for n in 0..=reply.len() {
            assert_eq!(shell_noise(&reply[..n]), None, "{n} bytes");
        }
    }

    #[test]
    fn text_ahead_of_the_reply_is_quoted() {
        let mut got = b"\nWelcome to the host\nLast login: never\n".to_vec();
        got.extend_from_slice(&[0, 0, 1, 0xc5, 2]);
        assert_eq!(shell_noise(&got).as_deref(), Some("Welcome to the host"));
        assert_eq!(shell_noise(b"hi").as_deref(), Some("hi"));
        // Not text at all: a length no VERSION reply has, or another packet type.
        assert!(shell_noise(&[0, 0x40, 0, 0, 2]).is_some());
        assert!(shell_noise(&[0, 0, 0, 5, 101]).is_some());
        // Control characters are shown escaped, and the line is cut.
        assert_eq!(shell_noise(b"\x1b[1mbold\x1b[0m\n").as_deref(), Some("\\u{1b}[1mbold\\u{1b}[0m"));
        assert_eq!(shell_noise(&[b'x'; 300]).map(|s| s.len()), Some(60));
    }
}
