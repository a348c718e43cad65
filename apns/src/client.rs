//! The APNs HTTP/2 client: a few long-lived TLS connections authenticated with the push
//! certificate, many concurrent streams on each.
//!
//! reqwest (hyper underneath) keeps one HTTP/2 connection per `reqwest::Client` and reopens it
//! on demand after a GOAWAY or a broken connection; a request caught by a GOAWAY surfaces as a
//! transport error, which is a [`PushOutcome::Retry`] and is retried with backoff, landing on a
//! fresh connection. A server's stream limit caps one connection, so we keep `connections` of
//! them and spread pushes round-robin.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cert::PushCertificate;
use crate::notification::MdmPush;
use crate::outcome::{PushOutcome, classify};

/// Apple's production endpoint. Push certificates from the Portal are production-only.
pub const PRODUCTION_URL: &str = "https://api.push.apple.com";
/// Apple's sandbox endpoint.
pub const DEVELOPMENT_URL: &str = "https://api.development.push.apple.com";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("APNs base URL {0:?} must be an https:// URL")]
    BadUrl(String),
    #[error("extra CA PEM: {0}")]
    BadCa(reqwest::Error),
    #[error("push certificate identity: {0}")]
    BadIdentity(reqwest::Error),
    #[error("building the HTTP client: {0}")]
    Build(reqwest::Error),
}

/// Retries for 429, 5xx and transport errors: jittered exponential backoff, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_backoff: Duration,
    /// Cap for one backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApnsConfig {
    /// `--apns-url`; default [`PRODUCTION_URL`].
    pub base_url: String,
    /// `--apns-ca`: PEM certificate(s) trusted in addition to the system roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// `apns-expiration` = now + this; APNs stores the push and retries until then (Apple caps
    /// it at 30 days). Zero sends `apns-expiration: 0`: one delivery attempt, not stored.
    pub expiration: Duration,
    /// HTTP/2 connections to keep open (at least 1).
    pub connections: usize,
    pub retry: RetryPolicy,
    /// Whole-request timeout for one attempt.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for ApnsConfig {
    fn default() -> Self {
        Self {
            base_url: PRODUCTION_URL.to_string(),
            extra_ca_pem: None,
            expiration: Duration::from_secs(3 * 24 * 3600),
            connections: 2,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Latency of one APNs request (send to the whole answer), recorded through the `metrics`
/// facade: a no-op unless the program installed a recorder.
pub const LATENCY_METRIC: &str = "russet_apns_request_duration_seconds";

/// Sends MDM pushes for one push certificate. Cheap to clone (an `Arc`); to swap certificates,
/// build a new client and replace the old one — in-flight pushes finish on the old one.
#[derive(Clone)]
pub struct ApnsClient {
    inner: Arc<Inner>,
}

struct Inner {
    clients: Vec<reqwest::Client>,
    next: AtomicUsize,
    base_url: String,
    topic: String,
    expiration: Duration,
    retry: RetryPolicy,
    rng: AtomicU64,
}

impl std::fmt::Debug for ApnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsClient")
            .field("base_url", &self.inner.base_url)
            .field("topic", &self.inner.topic)
            .field("connections", &self.inner.clients.len())
            .finish_non_exhaustive()
    }
}

impl ApnsClient {
    pub fn new(cert: &PushCertificate, config: ApnsConfig) -> Result<Self, ClientError> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        if !base_url.starts_with("https://") {
            return Err(ClientError::BadUrl(config.base_url));
        }
        let extra_roots = match &config.extra_ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem).map_err(ClientError::BadCa)?,
            None => Vec::new(),
        };
        let identity_pem = cert.identity_pem();
        let clients = (0..config.connections.max(1))
            .map(|_| {
                let identity =
                    reqwest::Identity::from_pem(&identity_pem).map_err(ClientError::BadIdentity)?;
                reqwest::Client::builder()
                    .identity(identity)
                    .tls_certs_merge(extra_roots.iter().cloned())
                    .http2_prior_knowledge()
                    // Apple asks providers to keep connections open rather than reconnect per
                    // push; PINGs find a dead one before a push does.
                    .pool_idle_timeout(None)
                    .http2_keep_alive_interval(Duration::from_secs(60))
                    .http2_keep_alive_timeout(Duration::from_secs(20))
                    .http2_keep_alive_while_idle(true)
                    .tcp_keepalive(Duration::from_secs(60))
                    .tcp_nodelay(true)
                    .connect_timeout(config.connect_timeout)
                    .timeout(config.request_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()
                    .map_err(ClientError::Build)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        Ok(Self {
            inner: Arc::new(Inner {
                clients,
                next: AtomicUsize::new(0),
                base_url,
                topic: cert.topic().to_string(),
                expiration: config.expiration,
                retry: config.retry,
                rng: AtomicU64::new(seed),
            }),
        })
    }

    /// The `apns-topic` this client pushes to.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// One attempt. Transport errors (refused connection, TLS failure, GOAWAY, reset stream,
    /// timeout) are [`PushOutcome::Retry`].
    pub async fn push(&self, p: &MdmPush) -> PushOutcome {
        let inner = &self.inner;
        let i = inner.next.fetch_add(1, Ordering::Relaxed) % inner.clients.len();
        let url = format!("{}{}", inner.base_url, p.path());
        let expiration = if inner.expiration.is_zero() {
            0
        } else {
            (SystemTime::now() + inner.expiration)
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        let mut req = inner.clients[i]
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(p.body());
        for (name, value) in p.headers(&inner.topic, expiration) {
            req = req.header(name, value);
        }
        let started = Instant::now();
        let sent = req.send().await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                metrics::histogram!(LATENCY_METRIC).record(started.elapsed().as_secs_f64());
                return transport_error(p, &e);
            }
        };
        let status = resp.status().as_u16();
        let apns_id = resp
            .headers()
            .get("apns-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.bytes().await;
        metrics::histogram!(LATENCY_METRIC).record(started.elapsed().as_secs_f64());
        let body = match body {
            Ok(b) => b,
            Err(e) => return transport_error(p, &e),
        };
        let outcome = classify(status, &body);
        let token = hex::encode(&p.token);
        match &outcome {
            PushOutcome::Delivered => tracing::trace!(%token, %apns_id, "push delivered"),
            PushOutcome::CertificateRefused { reason } => {
                tracing::error!(topic = %inner.topic, %status, %reason, "APNs refuses the push certificate")
            }
            PushOutcome::Rejected { reason } => {
                tracing::error!(%token, %status, %reason, "APNs rejected a malformed push")
            }
            other => tracing::debug!(%token, %status, outcome = ?other, "push not delivered"),
        }
        outcome
    }

    /// [`push`](Self::push), retried with jittered exponential backoff while the outcome is
    /// [`PushOutcome::Retry`] (429, 5xx, transport), at most `retry.max_attempts` times in all.
    pub async fn push_with_retry(&self, p: &MdmPush) -> PushOutcome {
        let max = self.inner.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let outcome = self.push(p).await;
            if !matches!(outcome, PushOutcome::Retry { .. }) || attempt >= max {
                return outcome;
            }
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Sends every push (each with [`push_with_retry`](Self::push_with_retry)), at most
    /// `concurrency` in flight. Results come back in input order.
    pub async fn push_many(
        &self,
        pushes: Vec<MdmPush>,
        concurrency: usize,
    ) -> Vec<(MdmPush, PushOutcome)> {
        let n = pushes.len();
        let pushes = Arc::new(pushes);
        let cursor = Arc::new(AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.clamp(1, n.max(1)) {
            let (client, pushes, cursor) = (self.clone(), pushes.clone(), cursor.clone());
            workers.spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = pushes.get(i) else { break };
                    done.push((i, client.push_with_retry(p).await));
                }
                done
            });
        }
        let mut outcomes: Vec<Option<PushOutcome>> = vec![None; n];
        while let Some(res) = workers.join_next().await {
            match res {
                Ok(done) => {
                    for (i, o) in done {
                        outcomes[i] = Some(o);
                    }
                }
                Err(e) => tracing::error!(error = %e, "push worker failed"),
            }
        }
        let pushes = Arc::try_unwrap(pushes).unwrap_or_else(|shared| (*shared).clone());
        pushes
            .into_iter()
            .zip(outcomes)
            .map(|(p, o)| {
                let o = o.unwrap_or_else(|| PushOutcome::Retry {
                    reason: "push worker failed".into(),
                });
                (p, o)
            })
            .collect()
    }

    /// Equal jitter: half the exponential step fixed, half random, so retries never bunch up
    /// and never hammer.
    fn backoff(&self, attempt: u32) -> Duration {
        let r = &self.inner.retry;
        let step = r
            .base_backoff
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(r.max_backoff);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 {
            0
        } else {
            self.random() % (nanos + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// splitmix64 over a shared counter: enough randomness for jitter, no extra dependency.
    fn random(&self) -> u64 {
        let mut z = self
            .inner
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn transport_error(p: &MdmPush, e: &reqwest::Error) -> PushOutcome {
    // reqwest's Display is terse ("error sending request"); the cause chain says what happened.
    let mut reason = format!("transport: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        src = s.source();
    }
    tracing::debug!(token = %hex::encode(&p.token), %reason, "push transport error");
    PushOutcome::Retry { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_doubling_and_capped() {
        let inner = Inner {
            clients: Vec::new(),
            next: AtomicUsize::new(0),
            base_url: String::new(),
            topic: String::new(),
            expiration: Duration::ZERO,
            retry: RetryPolicy {
                max_attempts: 10,
                base_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
            },
            rng: AtomicU64::new(42),
        };
        let c = ApnsClient {
            inner: Arc::new(inner),
        };
        for _ in 0..100 {
            let b1 = c.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = c.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            let b9 = c.backoff(9);
            assert!(b9 >= Duration::from_millis(500) && b9 <= Duration::from_secs(1));
        }
        let samples: std::collections::HashSet<_> = (0..20).map(|_| c.backoff(2)).collect();
        assert!(samples.len() > 10, "backoff should be jittered");
    }
}
