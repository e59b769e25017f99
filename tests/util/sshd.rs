//! A private OpenSSH server on 127.0.0.1 for the remote tests, as `bench/netfs.sh`
//! brings one up: its own config, host key, user key, authorized_keys and
//! known_hosts in a temporary directory; nothing in /etc/ssh or ~/.ssh is read or
//! changed. Started by the test that needs it (`sshd -D`, a child process) and
//! stopped on drop. Key login only, as root.

use std::ffi::OsString;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const SSHD: &str = "/usr/sbin/sshd";
pub const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

pub struct Sshd {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

/// Why the remote tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    if !super::is_root() {
        return Some("needs root (sshd, and a login as root)".into());
    }
    for tool in [SSHD, SFTP_SERVER] {
        if !Path::new(tool).exists() {
            return Some(format!("{tool} missing (apt-get install openssh-server)"));
        }
    }
    for tool in ["ssh", "ssh-keygen"] {
        if Command::new(tool).arg("-V").stderr(Stdio::null()).stdout(Stdio::null()).status().is_err() {
            return Some(format!("{tool} missing (apt-get install openssh-client)"));
        }
    }
    None
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "tandem-test", "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}

/// A port nobody listens on now (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Waits until sshd accepts connections on `port`; false when it exited first.
fn wait_listening(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Sshd {
    /// Starts a server, or skips (`util::skip`) with the reason and returns `None`.
    pub fn start(test: &str) -> Option<Sshd> {
        if let Some(why) = missing() {
            super::skip(test, &why);
            return None;
        }
        let dir = tempfile::Builder::new().prefix("tandem-sshd-").tempdir().expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let p = |n: &str| dir.path().join(n);
        keygen(&p("host"));
        keygen(&p("id"));
        keygen(&p("other_host"));
        keygen(&p("stranger"));
        fs::copy(p("id.pub"), p("authorized_keys")).expect("authorized_keys");
        fs::set_permissions(p("authorized_keys"), fs::Permissions::from_mode(0o644)).expect("chmod");
        let _ = fs::create_dir_all("/run/sshd");
        for _ in 0..5 {
            let port = free_port();
            let host_pub = fs::read_to_string(p("host.pub")).expect("host.pub");
            let other_pub = fs::read_to_string(p("other_host.pub")).expect("other_host.pub");
            let entry = |k: &str| {
                format!("[127.0.0.1]:{port} {}\n", k.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            };
            fs::write(p("known_hosts"), entry(&host_pub)).expect("known_hosts");
            fs::write(p("wrong_known_hosts"), entry(&other_pub)).expect("known_hosts");
            let config = format!(
                "Port {port}\nAddressFamily inet\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\n\
                 AuthorizedKeysFile {keys}\nAllowUsers root\nPermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPermitTTY no\nDisableForwarding yes\nMaxStartups 100\n\
                 Subsystem sftp {SFTP_SERVER}\n",
                host = p("host").display(),
                pid = p("sshd.pid").display(),
                keys = p("authorized_keys").display(),
            );
            fs::write(p("sshd_config"), config).expect("sshd_config");
            let log = fs::File::create(p("sshd.log")).expect("sshd.log");
            let child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(p("sshd_config"))
                .arg("-E")
                .arg(p("sshd.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sshd");
            let mut child = child;
            if wait_listening(&mut child, port) {
                return Some(Sshd { child: Some(child), port, dir });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sshd did not come up on 127.0.0.1 (5 ports tried)");
    }

    /// Starts the server again after [`Sshd::stop`], on the same port with the same
    /// keys (as an `sshd` restarted on its host).
    pub fn restart(&mut self) {
        self.stop();
        let log = fs::OpenOptions::new().append(true).open(self.file("sshd.log")).expect("sshd.log");
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(self.file("sshd_config"))
            .arg("-E")
            .arg(self.file("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        assert!(wait_listening(&mut child, self.port), "sshd did not come back on port {}", self.port);
        self.child = Some(child);
    }

    /// Adds `line` to the server's configuration and restarts it (same port, same keys).
    pub fn configure(&mut self, line: &str) {
        let path = self.file("sshd_config");
        let mut config = fs::read_to_string(&path).expect("sshd_config");
        config.push_str(line);
        config.push('\n');
        fs::write(&path, config).expect("sshd_config");
        self.restart();
    }

    /// Stops the server (the sessions it serves go on, as OpenSSH's do).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The sshd log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.file("sshd.log")).unwrap_or_default()
    }

    /// `-e` for this server: its port, the test's key, its known_hosts, no user
    /// configuration.
    pub fn rsh(&self) -> String {
        self.rsh_with("id", "known_hosts")
    }

    /// `-e` with another identity or known_hosts file (from this server's directory).
    pub fn rsh_with(&self, key: &str, known_hosts: &str) -> String {
        format!(
            "ssh -F /dev/null -p {} -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o ConnectTimeout=10",
            self.port,
            self.file(key).display(),
            self.file(known_hosts).display()
        )
    }

    /// `root@127.0.0.1:PATH`.
    pub fn remote(&self, path: &Path) -> OsString {
        self.remote_as("root", path)
    }

    pub fn remote_as(&self, user: &str, path: &Path) -> OsString {
        let mut v = format!("{user}@127.0.0.1:").into_bytes();
        v.extend_from_slice(path.as_os_str().as_encoded_bytes());
        OsString::from_vec(v)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
