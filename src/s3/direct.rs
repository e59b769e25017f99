//! The direct PUT: how a small object (a file below the multipart threshold, a
//! directory marker, a symlink) goes up when nothing goes wrong.
//!
//! A first mirror is one PutObject per file, and the SDK's per-request pipeline (its
//! orchestrator: configuration layers, interceptors, endpoint rules and auth-scheme
//! resolution run again for every request) cost more CPU than everything else tandem
//! does for that file (BENCHMARKS.md, "An S3 bucket as DEST"). A PUT has nothing to
//! decide per request, so the SDK's own parts do it without the pipeline:
//! - the URL is what the SDK's endpoint rules (`aws_sdk_s3`'s `DefaultResolver`, with
//!   the run's region, endpoint, addressing, FIPS and dual-stack settings) give for the
//!   bucket, resolved once; the key is appended percent-encoded, `/` kept, as the SDK
//!   writes it;
//! - the request is signed by `aws-sigv4` (the SDK's signer) with the settings the SDK
//!   uses for S3 (SigV4 in headers, payload SHA-256 in `x-amz-content-sha256`, no
//!   double encoding, no path normalization, the session token signed);
//! - it is sent by `aws-smithy-http-client`'s `Connector` (the SDK's HTTP stack: hyper,
//!   rustls, the same trusted certificates, the same connect timeout), with its own
//!   pool of kept-alive connections.
//!
//! Only a success is taken from it. A direct PUT counts as the first attempt of its
//! request: any other outcome (a dropped connection, throttling, a server error, an
//! error answer) sends the same PUT through the SDK with the attempts that remain,
//! after a back-off unless it was an error answer, so that the SDK's retry policy and
//! error messages are the ones users see (`client`, `S3Tree::err`). An error answer
//! other than throttling or a server error also turns the direct path off for the
//! rest of the run: a server that does not take its requests costs an extra request
//! for each PUT then in flight (64 at most), not one per object. A PUT is idempotent: sending it twice leaves the same object.
//! With one attempt per request (`AWS_MAX_ATTEMPTS=1`), or the SDK's adaptive retry
//! mode (its client-side rate limiting), there is no direct path: the SDK sends every
//! request. `TANDEM_S3_SDK_ONLY=1` does the same, for a server that misreads it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_s3::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::primitives::ByteStream;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext};
use aws_smithy_http_client::Connector;
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::Document;
use bytes::Bytes;

use crate::lock::lock;

/// Credentials without an expiry are fetched again after this long, as the SDK's
/// identity cache does.
const REFRESH: Duration = Duration::from_secs(15 * 60);
/// Credentials with an expiry are fetched again this long before it.
const EXPIRY_BUFFER: Duration = Duration::from_secs(5 * 60);

/// The direct PUT path of one bucket.
pub struct Direct {
    conn: Connector,
    /// The bucket's URL, without a trailing slash: keys are appended to it.
    url: String,
    region: String,
    signing_name: String,
    creds: SharedCredentialsProvider,
    /// The credentials last fetched; their expiration is when to fetch them again.
    identity: Mutex<Option<Identity>>,
    /// Set when it is turned off, after an error answer (see the module's doc): why.
    off_because: std::sync::OnceLock<String>,
    /// PUTs it took, and PUTs it passed to the SDK, since last told (`take_counts`).
    taken: AtomicU64,
    passed: AtomicU64,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").field("url", &self.url).finish()
    }
}

/// What the direct path needs of the run's configuration.
pub struct Setup<'a> {
    pub conf: &'a aws_config::SdkConfig,
    pub bucket: &'a str,
    pub endpoint: Option<&'a str>,
    pub path_style: bool,
    /// The TLS context of `AWS_CA_BUNDLE`, for an https endpoint (else the system's).
    pub tls: Option<TlsContext>,
    pub connect_timeout: Duration,
}

/// Why a direct PUT was not taken. Each is sent again through the SDK with the
/// attempts that remain; the first two after a back-off.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// HTTP 503 or 429: the server asked to slow down.
    Throttled,
    /// No answer (the connection failed or was dropped), or a server error (5xx).
    Transient,
    /// An error answer (4xx), or a request that could not be made: the direct path is
    /// turned off; the SDK's answer says what it is.
    Refused,
}

impl Miss {
    /// Whether the SDK's attempt waits for a back-off first, as its own retries do.
    pub fn backs_off(&self) -> bool {
        !matches!(self, Miss::Refused)
    }
}

/// A back-off before the attempt after a direct PUT: up to `first` with full jitter,
/// as the SDK's standard retry mode waits before its first retry.
pub fn back_off(first: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    first.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
}

impl Direct {
    /// The direct path for `setup`'s bucket, or `None` when the SDK's endpoint rules
    /// ask for anything but plain SigV4 on http(s) (S3 Express, access points,
    /// multi-region signing, …) or there are no credentials: the SDK does it all then.
    pub async fn new(setup: Setup<'_>) -> Option<Direct> {
        let creds = setup.conf.credentials_provider()?;
        let region = setup.conf.region().map_or("us-east-1", |r| r.as_ref()).to_string();
        let params = Params::builder()
            .bucket(setup.bucket)
            .region(region.clone())
            .use_fips(setup.conf.use_fips().unwrap_or(false))
            .use_dual_stack(setup.conf.use_dual_stack().unwrap_or(false))
            .force_path_style(setup.path_style)
            .set_endpoint(setup.endpoint.map(str::to_string))
            .build()
            .ok()?;
        let ep = DefaultResolver::new().resolve_endpoint(&params).await.ok()?;
        let url = ep.url().trim_end_matches('/').to_string();
        let plain_url =
            (url.starts_with("http://") || url.starts_with("https://")) && !url.contains(['?', '#']);
        if !plain_url || ep.headers().next().is_some() {
            return None;
        }
        let (signing_name, signing_region) = sigv4_scheme(ep.properties().get("authSchemes"))?;
        let settings = HttpConnectorSettings::builder().connect_timeout(setup.connect_timeout).build();
        let builder = Connector::builder()
            .connector_settings(settings)
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        let conn = match setup.tls {
            Some(tls) => builder.tls_context(tls).build(),
            None => builder.build(),
        };
        Some(Direct {
            conn,
            url,
            region: signing_region.unwrap_or(region),
            signing_name,
            creds,
            identity: Mutex::new(None),
            off_because: std::sync::OnceLock::new(),
            taken: AtomicU64::new(0),
            passed: AtomicU64::new(0),
        })
    }

    /// Whether it is still in use.
    pub fn on(&self) -> bool {
        self.off_because.get().is_none()
    }

    /// PUTs taken and passed to the SDK since the last call, and why the direct path
    /// is off (when it is).
    pub fn take_counts(&self) -> (u64, u64, Option<&str>) {
        let taken = self.taken.swap(0, Ordering::Relaxed);
        let passed = self.passed.swap(0, Ordering::Relaxed);
        (taken, passed, self.off_because.get().map(String::as_str))
    }

    /// PUTs `body` as `key` with `metadata` (user metadata, without `x-amz-meta-`);
    /// returns the answer's ETag, or why it was not taken (the caller sends it through
    /// the SDK).
    pub async fn put(
        &self,
        key: &str,
        body: &Bytes,
        metadata: &HashMap<String, String>,
    ) -> Result<String, Miss> {
        let r = self.try_put(key, body, metadata).await;
        let counter = if r.is_ok() { &self.taken } else { &self.passed };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    async fn try_put(
        &self,
        key: &str,
        body: &Bytes,
        metadata: &HashMap<String, String>,
    ) -> Result<String, Miss> {
        let Some(identity) = self.identity().await else { return Err(self.miss(None)) };
        let uri = format!("{}/{}", self.url, encode_key(key));
        let length = body.len().to_string();
        let mut headers: Vec<(String, &str)> = Vec::with_capacity(metadata.len() + 2);
        headers.push(("content-length".to_string(), &length));
        // What the SDK sends for a PutObject body without a type of its own.
        headers.push(("content-type".to_string(), "application/octet-stream"));
        for (k, v) in metadata {
            headers.push((format!("x-amz-meta-{}", k.to_ascii_lowercase()), v.as_str()));
        }
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.session_token_mode = SessionTokenMode::Include;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.signing_name)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|_| self.miss(None))?
            .into();
        let signable = SignableRequest::new(
            "PUT",
            uri.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), *v)),
            SignableBody::Bytes(body),
        )
        .map_err(|_| self.miss(None))?;
        let (instructions, _) = sign(signable, &params).map_err(|_| self.miss(None))?.into_parts();
        let mut req = http::Request::builder()
            .method("PUT")
            .uri(uri.as_str())
            .header("user-agent", concat!("tandem/", env!("CARGO_PKG_VERSION")));
        for (k, v) in &headers {
            req = req.header(k.as_str(), *v);
        }
        let mut req = req.body(SdkBody::from(body.clone())).map_err(|_| self.miss(None))?;
        instructions.apply_to_request_http1x(&mut req);
        let req = HttpRequest::try_from(req).map_err(|_| self.miss(None))?;
        let resp = match tokio::time::timeout(answer_within(body.len()), self.conn.call(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(_)) | Err(_) => return Err(Miss::Transient),
        };
        let status = resp.status().as_u16();
        let etag = resp.headers().get("etag").map(str::to_string);
        // Read to its end, so that the connection is kept for the next request.
        let read = ByteStream::new(resp.into_body()).collect().await;
        if (200..300).contains(&status) && read.is_ok() {
            return Ok(super::etag(etag.as_deref()));
        }
        Err(if read.is_err() { Miss::Transient } else { self.miss(Some(status)) })
    }

    /// Why an answer with `status` was not taken; an error answer other than
    /// throttling (or a request that could not be made) turns the direct path off.
    fn miss(&self, status: Option<u16>) -> Miss {
        match status {
            Some(s) if super::client::is_throttling_status(s) => Miss::Throttled,
            Some(s) if (500..600).contains(&s) => Miss::Transient,
            _ => {
                let why = status.map_or_else(
                    || "no request could be made".to_string(),
                    |s| format!("an answer of HTTP {s}"),
                );
                let _ = self.off_because.set(why);
                Miss::Refused
            }
        }
    }

    /// The credentials to sign with, fetched again when due.
    async fn identity(&self) -> Option<Identity> {
        let now = SystemTime::now();
        if let Some(id) = lock(&self.identity).as_ref() {
            if id.expiration().is_some_and(|due| now < due) {
                return Some(id.clone());
            }
        }
        let creds: Credentials = self.creds.provide_credentials().await.ok()?;
        let due = match creds.expiry() {
            Some(exp) => exp.checked_sub(EXPIRY_BUFFER).unwrap_or(exp),
            None => now + REFRESH,
        };
        let id = Identity::new(creds, Some(due));
        *lock(&self.identity) = Some(id.clone());
        Some(id)
    }
}

/// How long a direct PUT of `len` bytes may take before it is given up and passed to
/// the SDK (whose stalled-stream protection then watches it): a minute, and a second
/// more for every 32 KiB.
fn answer_within(len: usize) -> Duration {
    Duration::from_secs(60 + len as u64 / 32_768)
}

/// The signing name and region of the endpoint's auth schemes, when the first is
/// SigV4 (`None`: something else is asked for, such as SigV4a or S3 Express).
fn sigv4_scheme(schemes: Option<&Document>) -> Option<(String, Option<String>)> {
    let Some(Document::Array(schemes)) = schemes else {
        // No auth schemes given: S3's own SigV4.
        return Some(("s3".to_string(), None));
    };
    let Some(Document::Object(first)) = schemes.first() else {
        return Some(("s3".to_string(), None));
    };
    let text = |k: &str| match first.get(k) {
        Some(Document::String(s)) => Some(s.clone()),
        _ => None,
    };
    if text("name").as_deref() != Some("sigv4") {
        return None;
    }
    if matches!(first.get("disableDoubleEncoding"), Some(Document::Bool(false))) {
        return None;
    }
    Some((text("signingName").unwrap_or_else(|| "s3".to_string()), text("signingRegion")))
}

/// An object key as it goes into a URL path: every byte percent-encoded but the
/// unreserved ones and `/` (the SDK's "greedy" label encoding).
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_the_sdk_encodes_them() {
        assert_eq!(encode_key("a/b c/ü+%.txt"), "a/b%20c/%C3%BC%2B%25.txt");
        assert_eq!(encode_key("dir/"), "dir/");
    }

    #[test]
    fn back_off_is_jittered_below_the_first() {
        let first = Duration::from_secs(1);
        let waits: Vec<Duration> = (0..50).map(|_| back_off(first)).collect();
        assert!(waits.iter().all(|w| *w < first));
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
    }

    #[test]
    fn only_sigv4_is_taken() {
        let scheme = |name: &str| {
            Document::Array(vec![Document::Object(HashMap::from([
                ("name".to_string(), Document::String(name.to_string())),
                ("signingName".to_string(), Document::String("s3".to_string())),
                ("signingRegion".to_string(), Document::String("eu-west-1".to_string())),
                ("disableDoubleEncoding".to_string(), Document::Bool(true)),
            ]))])
        };
        assert_eq!(
            sigv4_scheme(Some(&scheme("sigv4"))),
            Some(("s3".to_string(), Some("eu-west-1".to_string())))
        );
        assert_eq!(sigv4_scheme(Some(&scheme("sigv4a"))), None);
        assert_eq!(sigv4_scheme(Some(&scheme("sigv4-s3express"))), None);
        assert_eq!(sigv4_scheme(None), Some(("s3".to_string(), None)));
    }
}
