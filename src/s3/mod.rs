//! A prefix in an S3 bucket (AWS S3 or any S3-compatible store: MinIO, Ceph,
//! Garage, SeaweedFS), reached through the AWS SDK for Rust (`aws-sdk-s3`, with
//! `aws-config` for the standard environment: `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, `~/.aws/config` and
//! `~/.aws/credentials`). Every request is the SDK's, signed, retried with back-off
//! when the server throttles or a connection drops (the retry policy and the
//! certificates trusted are set in [`client`]), except the first attempt of a small
//! PUT, which the SDK's own signer and HTTP stack send without its per-request
//! pipeline ([`direct`]; what it does not take goes to the SDK).
//!
//! The tree is an implementation of the DEST seam (`dest::Dest`, in `dest::s3`). Its
//! scans (`scan`) list the prefix with ListObjectsV2, several sub-prefixes at once,
//! and send no request per object when the local metadata cache ([`cache`]) knows the
//! objects listed; its apply (`apply`) runs a plan with many requests in flight, small
//! files in one PUT each, large ones as multipart uploads with parts in parallel.
//!
//! The mapping (README, "S3 as DEST"):
//! - a file is the object `prefix/relative/path`, its mtime in the user metadata key
//!   `mtime` (`X-Amz-Meta-Mtime`) as rclone writes it (seconds since the epoch in
//!   fixed point, up to nine decimals, trailing zeros dropped), its mode in `mode`
//!   (octal, with the file-type bits, as rclone's `--metadata` writes it);
//! - a directory is a zero-byte marker object `path/` with its own mtime and mode (so
//!   an empty directory is kept); a prefix with objects under it and no marker (as
//!   rclone leaves them) is a directory too;
//! - a symlink is a small object whose contents are its target, marked by the
//!   symlink type bits in `mode` (`120777`);
//! - object keys are UTF-8 text of at most 1,024 bytes: an entry whose name is not
//!   UTF-8 or whose key would be longer is reported and left out, and the run goes on.
//!
//! Objects appear whole: a PUT is atomic, and a multipart upload is completed only
//! when every part is in; one that fails is aborted, and uploads left by a run that
//! was killed are aborted by the next run ([`S3Tree::abort_leftovers`]).

pub mod apply;
pub mod cache;
pub mod client;
pub mod direct;
pub mod scan;

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryMode;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use crate::lock::lock;
use crate::remote::Bucket;
use crate::sys::Meta;

/// Requests in flight at once during an apply (a small file's PUT is one).
const OP_SLOTS: usize = 64;
/// HEAD requests in flight while a scan fills metadata the cache does not know.
const HEAD_SLOTS: usize = 64;
/// Listings in flight at once.
const LIST_SLOTS: usize = 16;
/// Large files uploaded at once (each with [`PARTS_IN_FLIGHT`] parts in flight).
const LARGE_SLOTS: usize = 4;
/// Files at least this large go up as multipart uploads.
pub const MULTIPART_THRESHOLD: u64 = 16 << 20;
/// The size of one part (S3's smallest is 5 MiB; 10,000 parts at most).
pub const PART_SIZE: usize = 8 << 20;
/// Parts of one file uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;
/// The longest object key S3 allows, in bytes.
pub const MAX_KEY: usize = 1024;
/// Attempts of the first request, which checks the endpoint, credentials and bucket:
/// an endpoint that does not answer is reported soon (every later request has the
/// retry policy of [`client`]).
const PROBE_ATTEMPTS: u32 = 3;
/// How long a connection to the endpoint may take to open.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The user metadata key of the mtime, as rclone writes it (`X-Amz-Meta-Mtime`).
pub const META_MTIME: &str = "mtime";
/// The user metadata key of the mode (octal, with the file-type bits).
pub const META_MODE: &str = "mode";

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// What an object stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    File,
    Dir,
    Symlink,
}

/// A connection to a prefix in a bucket.
pub struct S3Tree {
    // Dropped before the runtime they run on.
    client: Client,
    /// Small PUTs without the SDK's per-request pipeline (`direct`); `None`: the SDK
    /// sends them.
    direct: Option<direct::Direct>,
    rt: Runtime,
    loc: Bucket,
    /// The key prefix with its trailing slash (empty: the whole bucket).
    base: String,
    /// The endpoint as shown in messages.
    endpoint: String,
    cache: Mutex<cache::Cache>,
    /// The retry configuration the client was built with (attempts per request: see
    /// `client`).
    retry: aws_sdk_s3::config::retry::RetryConfig,
    /// Counts the answers that asked tandem to slow down.
    throttled: client::Throttled,
    /// The count of `throttled` last reported.
    throttled_told: std::sync::atomic::AtomicU64,
    op_slots: Semaphore,
    head_slots: Semaphore,
    list_slots: Semaphore,
    large_slots: Semaphore,
}

impl std::fmt::Debug for S3Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Tree").field("dest", &self.loc.shown).finish()
    }
}

/// How the connection was asked for.
pub struct Connect<'a> {
    pub bucket: &'a Bucket,
    /// `--s3-endpoint`.
    pub endpoint: Option<&'a str>,
    /// A dry run: nothing is changed, not even leftover uploads aborted.
    pub dry_run: bool,
}

/// `mtime` metadata as rclone writes it: `1354040105.123456789`, trailing zeros of
/// the fraction dropped (no point when whole).
pub fn mtime_string(sec: i64, nsec: u32) -> String {
    let ns = sec as i128 * 1_000_000_000 + nsec as i128;
    let (sign, ns) = if ns < 0 { ("-", -ns) } else { ("", ns) };
    let whole = ns / 1_000_000_000;
    let frac = format!("{:09}", ns % 1_000_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac}")
    }
}

/// Parses `mtime` metadata (fixed point seconds); `None` when it is not that.
pub fn parse_mtime(s: &str) -> Option<(i64, u32)> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let frac: i128 = digits.parse().ok()?;
    let mut ns = whole * 1_000_000_000 + frac;
    if neg {
        ns = -ns;
    }
    let sec = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    Some((sec, ns.rem_euclid(1_000_000_000) as u32))
}

/// The user metadata of an object for `meta`.
pub fn metadata_for(meta: &Meta, kind: ObjKind) -> HashMap<String, String> {
    let ty = match kind {
        ObjKind::File => S_IFREG,
        ObjKind::Dir => S_IFDIR,
        ObjKind::Symlink => S_IFLNK,
    };
    HashMap::from([
        (META_MTIME.to_string(), mtime_string(meta.mtime_sec, meta.mtime_nsec)),
        (META_MODE.to_string(), format!("{:o}", ty | (meta.mode & 0o7777))),
    ])
}

/// What an object's user metadata says: kind (from `mode`'s type bits; a file when
/// there are none), permission bits, mtime. Missing values: `None`.
pub fn read_metadata(
    md: Option<&HashMap<String, String>>,
) -> (Option<ObjKind>, Option<u32>, Option<(i64, u32)>) {
    let Some(md) = md else { return (None, None, None) };
    let get = |k: &str| md.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
    let mode = get(META_MODE).and_then(|m| u32::from_str_radix(m.trim(), 8).ok());
    let kind = mode.map(|m| match m & 0o170000 {
        S_IFDIR => ObjKind::Dir,
        S_IFLNK => ObjKind::Symlink,
        _ => ObjKind::File,
    });
    (kind, mode.map(|m| m & 0o7777), get(META_MTIME).and_then(parse_mtime))
}

/// An ETag as compared: without the quotes some answers carry and others not.
pub fn etag(e: Option<&str>) -> String {
    e.unwrap_or("").trim_matches('"').to_string()
}

/// The endpoint S3 requests go to, as the SDK's S3 client chooses it: `--s3-endpoint`;
/// else the S3-only one (`AWS_ENDPOINT_URL_S3`, or `endpoint_url` in the profile's
/// `services` section for s3); else the global one (`AWS_ENDPOINT_URL`, a profile's
/// `endpoint_url`); `None`: AWS S3 itself.
fn endpoint_of(conf: &aws_config::SdkConfig, asked: Option<&str>) -> Option<String> {
    if let Some(ep) = asked {
        return Some(ep.to_string());
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok();
    key.and_then(|key| conf.service_config()?.load_config(key))
        .or_else(|| conf.endpoint_url().map(str::to_string))
}

/// The endpoint's host does not look like AWS's: path-style addressing
/// (`http://host/bucket/key`), which S3-compatible servers expect.
fn path_style(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let host = host.split(['/', ':']).next().unwrap_or(host);
    !host.ends_with(".amazonaws.com") && !host.ends_with(".amazonaws.com.cn")
}

impl S3Tree {
    /// Loads the AWS configuration, checks that the bucket answers (credentials,
    /// bucket, endpoint), and aborts multipart uploads left under the prefix by an
    /// earlier run. `Err`: one line for the user.
    pub fn connect(how: Connect<'_>) -> Result<S3Tree, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tandem-s3")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the S3 client: {e}"))?;
        let loc = how.bucket.clone();
        let throttled = client::Throttled::default();
        let (client, direct, endpoint, retry) = rt.block_on(async {
            let region =
                aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1");
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(region);
            if let Some(ep) = how.endpoint {
                loader = loader.endpoint_url(ep);
            }
            let conf = loader.load().await;
            let endpoint = endpoint_of(&conf, how.endpoint);
            let retry = client::retry_config(conf.retry_config());
            let mut b = aws_sdk_s3::config::Builder::from(&conf)
                .retry_config(retry.clone())
                .retry_partition(client::retry_partition())
                .retry_classifier(throttled.clone())
                // Checksums only where S3 requires them (DeleteObjects): not every
                // S3-compatible server takes the newer trailing checksums.
                .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).build(),
                );
            let tls = client::tls_context(endpoint.as_deref())?;
            if let Some(http) = client::http_client(tls.as_ref()) {
                b = b.http_client(http);
            }
            let path_style = endpoint.as_deref().is_some_and(path_style);
            if endpoint.is_some() {
                b = b.force_path_style(path_style);
            }
            // A direct PUT counts as the first attempt of its request (`direct`): with
            // one attempt per request, or the SDK's client-side rate limiting
            // (adaptive mode), the SDK sends every request.
            let sdk_only = std::env::var_os("TANDEM_S3_SDK_ONLY").is_some_and(|v| !v.is_empty() && v != "0");
            let direct = if sdk_only || retry.max_attempts() < 2 || retry.mode() != RetryMode::Standard {
                None
            } else {
                direct::Direct::new(direct::Setup {
                    conf: &conf,
                    bucket: &loc.bucket,
                    endpoint: endpoint.as_deref(),
                    path_style,
                    tls,
                    connect_timeout: CONNECT_TIMEOUT,
                })
                .await
            };
            let shown = endpoint.unwrap_or_else(|| "AWS S3".to_string());
            Ok::<_, String>((Client::from_conf(b.build()), direct, shown, retry))
        })?;
        let base = if loc.prefix.is_empty() { String::new() } else { format!("{}/", loc.prefix) };
        let cache = cache::Cache::load(&endpoint, &loc.bucket, &base);
        let tree = S3Tree {
            client,
            direct,
            rt,
            loc,
            base,
            endpoint,
            cache: Mutex::new(cache),
            retry,
            throttled,
            throttled_told: Default::default(),
            op_slots: Semaphore::new(OP_SLOTS),
            head_slots: Semaphore::new(HEAD_SLOTS),
            list_slots: Semaphore::new(LIST_SLOTS),
            large_slots: Semaphore::new(LARGE_SLOTS),
        };
        tree.block(async {
            tree.client
                .list_objects_v2()
                .bucket(&tree.loc.bucket)
                .prefix(&tree.base)
                .max_keys(1)
                .customize()
                .config_override(aws_sdk_s3::config::Builder::new().retry_config(
                    client::retry_config(None).with_max_attempts(PROBE_ATTEMPTS.min(tree.attempts())),
                ))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| tree.explain_connect(e))
        })?;
        if !how.dry_run {
            tree.abort_leftovers()
                .map_err(|e| format!("{}: {}", tree.loc.shown, crate::sys::describe(&e)))?;
        }
        Ok(tree)
    }

    /// One line for a failed first request: which of credentials, bucket, endpoint.
    fn explain_connect<E>(&self, e: SdkError<E, HttpResponse>) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let err = self.err(e);
        format!("cannot open {}: {}", self.loc.shown, crate::sys::describe(&err))
    }

    /// DEST as shown in messages.
    pub fn shown(&self) -> String {
        self.loc.shown.clone()
    }

    /// Runs a future on the tree's runtime.
    pub fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The object key of relative path `rel` (`dir`: its marker, with the trailing
    /// slash). `Err` when it cannot be one: not UTF-8, or longer than S3 allows.
    pub fn key(&self, rel: &[u8], dir: bool) -> io::Result<String> {
        let rel = std::str::from_utf8(rel).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the name is not valid UTF-8, and S3 keys are UTF-8 text",
            )
        })?;
        let mut key = String::with_capacity(self.base.len() + rel.len() + 1);
        key.push_str(&self.base);
        key.push_str(rel);
        if dir && !rel.is_empty() {
            key.push('/');
        }
        if key.len() > MAX_KEY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("its object key would be {} bytes long; S3 allows {MAX_KEY}", key.len()),
            ));
        }
        Ok(key)
    }

    /// An SDK error as an `io::Error` whose message says what to do: credentials
    /// refused, no such bucket, endpoint unreachable, throttled, denied.
    pub fn err<E>(&self, e: SdkError<E, HttpResponse>) -> io::Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        use io::ErrorKind as K;
        match &e {
            SdkError::DispatchFailure(_)
                if causes(&e).contains("loading credentials") || causes(&e).contains("no credentials") =>
            {
                return io::Error::new(
                    K::PermissionDenied,
                    "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (~/.aws/credentials)",
                );
            }
            SdkError::DispatchFailure(_) if causes(&e).contains("certificate") => {
                let trusted = match std::env::var_os("AWS_CA_BUNDLE") {
                    Some(b) if !b.is_empty() => {
                        format!("AWS_CA_BUNDLE={}", std::path::Path::new(&b).display())
                    }
                    _ => "the system's certificates".to_string(),
                };
                return io::Error::new(
                    K::PermissionDenied,
                    format!(
                        "cannot reach the S3 endpoint {}: its TLS certificate is not trusted by {trusted} ({}); set AWS_CA_BUNDLE to a PEM file with the certificate of its CA",
                        self.endpoint,
                        causes(&e)
                    ),
                );
            }
            SdkError::DispatchFailure(d) => {
                let what = if d.is_timeout() { "timed out" } else { "connection failed" };
                let kind = if d.is_timeout() { K::TimedOut } else { K::ConnectionRefused };
                return io::Error::new(
                    kind,
                    format!(
                        "cannot reach the S3 endpoint {} ({what}, retried): {}",
                        self.endpoint,
                        causes(&e)
                    ),
                );
            }
            SdkError::TimeoutError(_) => {
                return io::Error::new(K::TimedOut, format!("the S3 endpoint {} timed out", self.endpoint))
            }
            SdkError::ConstructionFailure(_) => {
                return io::Error::other(format!("cannot make the S3 request: {}", causes(&e)))
            }
            _ => {}
        }
        let code = e.code().unwrap_or("").to_string();
        let message = e.message().unwrap_or("").to_string();
        let said = if message.is_empty() { code.clone() } else { format!("{code}: {message}") };
        match code.as_str() {
            "NoSuchBucket" => io::Error::new(
                K::NotFound,
                format!("no such bucket '{}' at {} ({said})", self.loc.bucket, self.endpoint),
            ),
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken" => io::Error::new(
                K::PermissionDenied,
                format!(
                    "the S3 credentials were refused ({said}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
                ),
            ),
            "AccessDenied" => io::Error::new(K::PermissionDenied, format!("access denied by S3 ({said})")),
            "NoSuchKey" | "NotFound" => io::Error::new(K::NotFound, "no such object"),
            "KeyTooLongError" => io::Error::new(K::InvalidInput, format!("the object key is too long ({said})")),
            "SlowDown" | "SlowDownWrite" | "SlowDownRead" | "Throttling" | "ThrottlingException"
            | "RequestLimitExceeded" | "TooManyRequests" | "ErrTooManyRequest" => self.throttled_error(&said),
            _ if e.raw_response().is_some_and(|r| client::is_throttling_status(r.status().as_u16())) => {
                self.throttled_error(&said)
            }
            "" => {
                match e.raw_response().map(|r| r.status().as_u16()) {
                    Some(404) => io::Error::new(K::NotFound, "no such object"),
                    Some(403) => io::Error::new(
                        K::PermissionDenied,
                        "access denied by S3 (HTTP 403): check the credentials and the bucket's policy",
                    ),
                    Some(s) => io::Error::other(format!("S3 answered HTTP {s}")),
                    None => io::Error::other(format!("S3 request failed: {}", causes(&e))),
                }
            }
            _ => io::Error::other(format!("S3 said {said}")),
        }
    }

    /// The request was refused for throttling at every attempt.
    fn throttled_error(&self, said: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "the S3 server kept asking to slow down ({said}); gave up after {} attempt{} with back-off (AWS_MAX_ATTEMPTS sets how many)",
                self.attempts(),
                if self.attempts() == 1 { "" } else { "s" }
            ),
        )
    }

    /// The client's configuration for a request whose first attempt was a direct PUT:
    /// the attempts that remain.
    pub fn after_direct(&self) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::new()
            .retry_config(self.retry.clone().with_max_attempts(self.attempts().saturating_sub(1).max(1)))
    }

    /// Attempts per request.
    pub fn attempts(&self) -> u32 {
        self.retry.max_attempts()
    }

    /// How many answers asked tandem to slow down since the last call.
    pub fn throttled_since_told(&self) -> u64 {
        let now = self.throttled.count();
        now - self.throttled_told.swap(now, std::sync::atomic::Ordering::Relaxed)
    }

    /// Aborts the multipart uploads under the prefix: left by a run that was killed
    /// (a failed upload is aborted at once). Returns how many.
    pub fn abort_leftovers(&self) -> io::Result<usize> {
        self.block(async {
            let mut n = 0;
            let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
            loop {
                let out = self
                    .client
                    .list_multipart_uploads()
                    .bucket(&self.loc.bucket)
                    .prefix(&self.base)
                    .set_key_marker(key_marker.take())
                    .set_upload_id_marker(id_marker.take())
                    .send()
                    .await
                    .map_err(|e| self.err(e))?;
                for u in out.uploads() {
                    let (Some(key), Some(id)) = (u.key(), u.upload_id()) else { continue };
                    self.client
                        .abort_multipart_upload()
                        .bucket(&self.loc.bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await
                        .map_err(|e| self.err(e))?;
                    n += 1;
                }
                if out.is_truncated() != Some(true) {
                    break;
                }
                key_marker = out.next_key_marker().map(str::to_string);
                id_marker = out.next_upload_id_marker().map(str::to_string);
                if key_marker.is_none() && id_marker.is_none() {
                    break;
                }
            }
            Ok(n)
        })
    }

    /// The metadata cache.
    pub fn cache(&self) -> std::sync::MutexGuard<'_, cache::Cache> {
        lock(&self.cache)
    }

    /// Writes the metadata cache out, if it changed.
    pub fn save_cache(&self) {
        self.cache().save();
    }

    /// What identifies this DEST: the endpoint, bucket and prefix.
    pub fn identity(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&self.endpoint, &self.loc.bucket, &self.base).hash(&mut h);
        h.finish()
    }

    pub fn bucket(&self) -> &str {
        &self.loc.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The direct PUT path, while it is in use.
    pub fn direct(&self) -> Option<&direct::Direct> {
        self.direct_path().filter(|d| d.on())
    }

    /// The direct PUT path, in use or turned off (`None`: there is none).
    pub fn direct_path(&self) -> Option<&direct::Direct> {
        self.direct.as_ref()
    }

    /// Counts a throttled answer the SDK did not see.
    pub fn count_throttled(&self) {
        self.throttled.add();
    }

    /// The prefix with its trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// An error and its sources, each said once, in one line.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !out.iter().any(|o| o.contains(&s)) {
            out.push(s);
        }
        cur = err.source();
    }
    out.join(": ").replace('\n', " ")
}

impl Drop for S3Tree {
    fn drop(&mut self) {
        self.save_cache();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_as_rclone_writes_it() {
        assert_eq!(mtime_string(1354040105, 123456789), "1354040105.123456789");
        assert_eq!(mtime_string(1354040105, 500_000_000), "1354040105.5");
        assert_eq!(mtime_string(1354040105, 0), "1354040105");
        assert_eq!(mtime_string(-1, 500_000_000), "-0.5");
        for (s, n) in [(1354040105, 123456789), (0, 1), (-5, 250_000_000), (7, 0)] {
            assert_eq!(parse_mtime(&mtime_string(s, n)), Some((s, n)));
        }
        assert_eq!(parse_mtime("1796131211.848536296"), Some((1796131211, 848536296)));
        assert_eq!(parse_mtime("12.5x"), None);
        assert_eq!(parse_mtime(""), None);
    }

    #[test]
    fn metadata_round_trip() {
        let meta = Meta { mode: 0o640, mtime_sec: 10, mtime_nsec: 20, ..Meta::default() };
        let md = metadata_for(&meta, ObjKind::Symlink);
        assert_eq!(md["mode"], "120640");
        assert_eq!(read_metadata(Some(&md)), (Some(ObjKind::Symlink), Some(0o640), Some((10, 20))));
        assert_eq!(read_metadata(None), (None, None, None));
    }

    #[test]
    fn addressing() {
        assert!(path_style("http://127.0.0.1:8333"));
        assert!(!path_style("https://s3.eu-west-1.amazonaws.com"));
    }
}
