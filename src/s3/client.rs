//! How tandem's S3 client is built: its retry policy, its handling of throttling, and
//! the certificates it trusts (`AWS_CA_BUNDLE`). Everything on the wire stays the
//! SDK's; this only configures it.
//!
//! Retry policy (README, "Throttling and retries"): the SDK's standard retry mode —
//! exponential back-off with full jitter, from 1 s up to 20 s between attempts — with
//! [`ATTEMPTS`] attempts per request unless `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE`
//! (or a profile's `max_attempts`/`retry_mode`) say otherwise. Two things differ from
//! the SDK's defaults, because tandem keeps many requests in flight:
//! - an answer of HTTP 503 or 429 is throttling whatever its error code (AWS S3 says
//!   `SlowDown`, SeaweedFS `ErrTooManyRequest`, MinIO `SlowDownWrite`): the SDK would
//!   count SeaweedFS's as a server error, whose retries draw on the retry quota;
//! - throttled retries cost nothing from the SDK's retry quota (a bucket of 500 tokens
//!   shared by the process; a retry after a server error or a dropped connection costs
//!   14): with 64 requests in flight a throttling server would empty it in a second,
//!   and every request after that would fail at its first refusal. Connection failures
//!   and other server errors still draw on it, so a dead endpoint is given up on soon.
//!
//! Every throttled answer is counted ([`Throttled`]), so that a run can say how often
//! the server asked it to slow down.
//!
//! The direct PUT path (`direct`) uses the same certificates and connect timeout;
//! whatever it does not take comes here.
//!
//! Certificates: the SDK reads no `AWS_CA_BUNDLE`. tandem does what the AWS CLI does:
//! for an `https://` endpoint the bundle's certificates are the ones trusted (instead
//! of the system's); for an `http://` endpoint the variable plays no part.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::interceptors::InterceptorContext;
use aws_sdk_s3::config::retry::{
    ClassifyRetry, RetryAction, RetryConfig, RetryMode, RetryPartition, TokenBucket,
};
use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;

/// Attempts per request by default (the SDK's own default is 3).
pub const ATTEMPTS: u32 = 10;
/// The first back-off, before jitter; it doubles with each attempt.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest back-off between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// The SDK's retry quota and its cost per retry (as the SDK sets them).
const QUOTA: usize = 500;
const RETRY_COST: u32 = 14;

/// The retry configuration: tandem's, or what the AWS environment asks for.
/// `from_env`: the retry configuration `aws-config` loaded (environment and profile).
pub fn retry_config(from_env: Option<&RetryConfig>) -> RetryConfig {
    let ours = RetryConfig::standard()
        .with_max_attempts(ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    let asked =
        std::env::var_os("AWS_MAX_ATTEMPTS").is_some() || std::env::var_os("AWS_RETRY_MODE").is_some();
    match from_env {
        // aws-config's own default is standard mode with 3 attempts: anything else
        // was asked for (in a profile or the environment).
        Some(c) if asked || c.mode() != RetryMode::Standard || c.max_attempts() != 3 => {
            ours.with_retry_mode(c.mode()).with_max_attempts(c.max_attempts().max(1))
        }
        _ => ours,
    }
}

/// The retry quota: throttled retries free, others at the SDK's cost.
pub fn retry_partition() -> RetryPartition {
    RetryPartition::custom("tandem-s3")
        .token_bucket(
            TokenBucket::builder()
                .capacity(QUOTA)
                .retry_cost(RETRY_COST)
                .timeout_retry_cost(RETRY_COST)
                .throttling_retry_cost(0)
                .build(),
        )
        .build()
}

/// Classifies HTTP 503 and 429 answers as throttling, and counts them.
#[derive(Debug, Clone, Default)]
pub struct Throttled {
    count: Arc<AtomicU64>,
}

impl Throttled {
    /// Throttled answers so far (each was, or will be, retried if attempts remain).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Counts one more (an answer of the direct path, `direct`).
    pub fn add(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// An HTTP status that means "slow down".
pub fn is_throttling_status(status: u16) -> bool {
    status == 503 || status == 429
}

impl ClassifyRetry for Throttled {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response().map(|r| r.status().as_u16()) {
            Some(s) if is_throttling_status(s) => {
                self.add();
                RetryAction::throttling_error()
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "tandem: HTTP 503/429 is throttling"
    }

    // After the SDK's own classifiers, so that this verdict is the one kept.
    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The TLS context for `endpoint`: `None` for the system's certificates, or one
/// trusting only the certificates of `AWS_CA_BUNDLE` when it is set and the endpoint
/// is https. `Err`: one line for the user (the bundle cannot be read, or holds no
/// certificate).
pub fn tls_context(endpoint: Option<&str>) -> Result<Option<TlsContext>, String> {
    let plain = endpoint.is_some_and(|e| e.len() >= 7 && e[..7].eq_ignore_ascii_case("http://"));
    let bundle = match std::env::var_os("AWS_CA_BUNDLE") {
        Some(b) if !b.is_empty() && !plain => std::path::PathBuf::from(b),
        _ => return Ok(None),
    };
    let shown = bundle.display();
    let text = std::fs::read(&bundle)
        .map_err(|e| format!("AWS_CA_BUNDLE={shown}: cannot read it: {}", crate::sys::describe(&e)))?;
    let certs = certificates(&text);
    if certs.is_empty() {
        return Err(format!("AWS_CA_BUNDLE={shown}: no PEM certificate in it that can be a trust anchor"));
    }
    let mut store = TrustStore::empty().with_native_roots(false);
    for c in certs {
        store.add_pem_certificate(c);
    }
    TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map(Some)
        .map_err(|e| format!("AWS_CA_BUNDLE={shown}: {e}"))
}

/// The SDK's HTTP client for a TLS context of [`tls_context`] (`None`: the SDK's default).
pub fn http_client(tls: Option<&TlsContext>) -> Option<SharedHttpClient> {
    tls.map(|tls| {
        aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(tls.clone())
            .build_https()
    })
}

/// The PEM certificates of a bundle that can be trust anchors, each as its own PEM
/// text (the SDK's TLS setup stops the process on one it cannot parse, so they are
/// checked here; others are left out, as the system's store leaves them out).
fn certificates(bundle: &[u8]) -> Vec<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = find(bundle, BEGIN, at) {
        let Some(end) = find(bundle, END, start) else { break };
        let block = &bundle[start..end + END.len()];
        at = end + END.len();
        let ders: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(block).collect();
        let Ok(ders) = ders else { continue };
        let usable =
            !ders.is_empty() && ders.iter().all(|d| rustls::RootCertStore::empty().add(d.clone()).is_ok());
        if usable {
            let mut pem = block.to_vec();
            pem.push(b'\n');
            out.push(pem);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_statuses() {
        assert!(is_throttling_status(503));
        assert!(is_throttling_status(429));
        assert!(!is_throttling_status(500));
    }

    #[test]
    fn a_bundle_without_certificates_gives_none() {
        assert!(certificates(b"").is_empty());
        assert!(
            certificates(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").is_empty()
        );
        // Valid base64 that is no certificate.
        assert!(certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_empty());
    }

    #[test]
    fn the_system_bundle_parses() {
        // What these machines set AWS_CA_BUNDLE to (package ca-certificates).
        let text = std::fs::read("/etc/ssl/certs/ca-certificates.crt").expect("the system's CA bundle");
        assert!(certificates(&text).len() > 10);
    }

    #[test]
    fn tandem_defaults_unless_asked() {
        // aws-config's default.
        let c = retry_config(Some(&RetryConfig::standard()));
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() && std::env::var_os("AWS_RETRY_MODE").is_none() {
            assert_eq!(c.max_attempts(), ATTEMPTS);
            assert_eq!(c.mode(), RetryMode::Standard);
        }
        let c = retry_config(Some(&RetryConfig::adaptive().with_max_attempts(4)));
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Adaptive, 4));
        assert_eq!(c.max_backoff(), MAX_BACKOFF);
    }
}
