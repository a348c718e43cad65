//! A fake APNs for tests and demos: TLS (OpenSSL) with a client certificate required, HTTP/2
//! (hyper), Apple's request checks and error answers, every push recorded, and errors to inject.
//!
//! What it checks, in Apple's order of concern: method (405 `MethodNotAllowed`), path
//! `/3/device/<token>` (404 `BadPath`), token = 64+ lowercase hex (400 `BadDeviceToken`),
//! `apns-push-type: mdm` (400 `InvalidPushType`), `apns-priority` 5/10 (400 `BadPriority`),
//! `apns-expiration` numeric (400 `BadExpirationDate`), `apns-id` a UUID (400 `BadMessageId`),
//! `apns-topic` = the client certificate's UID (400 `BadTopic`; absent ⇒ the certificate's),
//! the topic the devices registered with (400 `DeviceTokenNotForTopic`), body size (413
//! `PayloadTooLarge`) and body shape: exactly `{"mdm": "<string>"}`, else 400 `PayloadEmpty`
//! (Apple documents no reason for a malformed MDM body; this one classifies as our bug).

mod handler;
pub mod pki;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use openssl::pkey::PKey;
use openssl::ssl::{AlpnError, Ssl, SslAcceptor, SslMethod, SslVerifyMode, select_next_proto};
use openssl::x509::X509;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_openssl::SslStream;

use crate::cert::topic_of;

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("no certificate in the server identity PEM")]
    NoServerCertificate,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Which client certificates complete the TLS handshake. A certificate is always required.
#[derive(Debug, Clone)]
pub enum ClientTrust {
    /// Certificates issued by one of these CAs (PEM), verified by OpenSSL (dates, clientAuth).
    Ca(Vec<Vec<u8>>),
    /// Exactly these leaf certificates (PEM), whoever issued them.
    Certificates(Vec<Vec<u8>>),
    /// Any certificate at all (still required): for demos with self-made push certificates.
    AnyCertificate,
}

/// The fake's own TLS identity.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    /// Leaf first, then chain.
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// What clients should trust (`--apns-ca`); returned by [`FakeApns::ca_pem`].
    pub trust_pem: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct FakeApnsConfig {
    /// `None`: generate a CA and a server certificate for 127.0.0.1 and localhost.
    pub server_identity: Option<ServerIdentity>,
    pub client_trust: ClientTrust,
    /// The topic the fake's devices registered with; another topic gets
    /// `DeviceTokenNotForTopic`. `None`: any `com.apple.mgmt.` topic of the certificate.
    pub expected_topic: Option<String>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS per connection (Apple advertises about 1000).
    pub max_concurrent_streams: u32,
}

impl Default for FakeApnsConfig {
    fn default() -> Self {
        Self {
            server_identity: None,
            client_trust: ClientTrust::AnyCertificate,
            expected_topic: None,
            max_concurrent_streams: 1000,
        }
    }
}

impl FakeApnsConfig {
    /// Accept client certificates issued by this CA, for pushes to `topic`.
    pub fn trusting_ca(ca_pem: &[u8], topic: &str) -> Self {
        Self {
            client_trust: ClientTrust::Ca(vec![ca_pem.to_vec()]),
            expected_topic: Some(topic.to_string()),
            ..Self::default()
        }
    }
}

/// Which requests an injection applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    All,
    /// Lowercase hex device token.
    Token(String),
}

impl Target {
    pub fn token(raw: &[u8]) -> Self {
        Target::Token(hex::encode(raw))
    }
}

/// A misbehaviour to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// Answer with this status and Apple's JSON body `{"reason", "timestamp"?}`.
    Status {
        status: u16,
        reason: String,
        timestamp: Option<i64>,
    },
    /// Let `n` matching requests through, then on the next one send GOAWAY on its connection
    /// and reset that request's stream (it was not processed); the connection then closes.
    GoAwayAfter(usize),
    /// Hold the request this long, then process it normally.
    Delay(Duration),
}

impl Injection {
    pub fn status(status: u16, reason: &str) -> Self {
        Injection::Status {
            status,
            reason: reason.to_string(),
            timestamp: None,
        }
    }
}

/// A push the fake accepted (answered 200).
#[derive(Debug, Clone)]
pub struct RecordedPush {
    pub token_hex: String,
    pub topic: String,
    pub push_magic: String,
    /// Every request header (HTTP/2 pseudo-headers excluded), in order.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    pub apns_id: String,
    pub received_at: SystemTime,
}

impl RecordedPush {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request the fake answered with an error (injected or found wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub path: String,
    pub status: u16,
    pub reason: String,
    /// Why, in the fake's words (Apple's `reason` is terse).
    pub detail: String,
}

struct Rule {
    target: Target,
    injection: Injection,
    sticky: bool,
    /// For `GoAwayAfter`: matching requests still to let through before firing.
    skip: usize,
}

#[derive(Default)]
struct State {
    pushes: Mutex<Vec<RecordedPush>>,
    rejections: Mutex<Vec<Rejection>>,
    rules: Mutex<Vec<Rule>>,
    expected_topic: Option<String>,
    connections: AtomicUsize,
    handshake_failures: AtomicUsize,
    requests: AtomicUsize,
    goaways: AtomicUsize,
    ids: AtomicU64,
}

/// Tolerates a poisoned lock: a panicking test thread must not hide the fake's records.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fake APNs on 127.0.0.1. Stops when dropped.
pub struct FakeApns {
    addr: SocketAddr,
    ca_pem: Vec<u8>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApns {
    /// Binds 127.0.0.1:0 and serves on the current Tokio runtime until dropped or
    /// [`shutdown`](Self::shutdown).
    pub async fn start(config: FakeApnsConfig) -> Result<Self, FakeError> {
        let identity = match config.server_identity {
            Some(id) => id,
            None => {
                let ca = pki::TestCa::new("Russet fake APNs CA")?;
                let leaf = ca.issue_server(&["127.0.0.1", "localhost"])?;
                ServerIdentity {
                    cert_pem: leaf.cert_pem,
                    key_pem: leaf.key_pem,
                    trust_pem: ca.cert_pem(),
                }
            }
        };
        let acceptor = acceptor(&identity, &config.client_trust)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            expected_topic: config.expected_topic,
            ids: AtomicU64::new(u64::from(std::process::id()) << 32),
            ..State::default()
        });
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(acceptor),
            state.clone(),
            config.max_concurrent_streams,
        ));
        Ok(Self {
            addr,
            ca_pem: identity.trust_pem,
            state,
            task,
        })
    }

    /// `https://127.0.0.1:<port>`, for `--apns-url`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA that issued the fake's TLS certificate, for `--apns-ca`.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// Every accepted push, in arrival order.
    pub fn pushes(&self) -> Vec<RecordedPush> {
        lock(&self.state.pushes).clone()
    }

    pub fn push_count(&self) -> usize {
        lock(&self.state.pushes).len()
    }

    /// Every request answered with an error, in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        lock(&self.state.rejections).clone()
    }

    /// TLS connections that completed the handshake.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed (no or untrusted client certificate, …).
    pub fn handshake_failures(&self) -> usize {
        self.state.handshake_failures.load(Ordering::Relaxed)
    }

    /// HTTP/2 requests received, whatever the answer.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// GOAWAYs sent by injection.
    pub fn goaways(&self) -> usize {
        self.state.goaways.load(Ordering::Relaxed)
    }

    /// Inject a misbehaviour for the next matching request only.
    pub fn inject(&self, target: Target, injection: Injection) {
        self.add_rule(target, injection, false);
    }

    /// Inject a misbehaviour for every matching request until [`clear_injections`].
    ///
    /// [`clear_injections`]: Self::clear_injections
    pub fn inject_sticky(&self, target: Target, injection: Injection) {
        self.add_rule(target, injection, true);
    }

    /// The token is dead (profile removed): every push to it gets 410 `Unregistered` with this
    /// timestamp (ms since the epoch), as APNs does, until [`clear_injections`].
    ///
    /// [`clear_injections`]: Self::clear_injections
    pub fn unregister(&self, token_hex: &str, timestamp_ms: i64) {
        self.inject_sticky(
            Target::Token(token_hex.to_string()),
            Injection::Status {
                status: 410,
                reason: "Unregistered".into(),
                timestamp: Some(timestamp_ms),
            },
        );
    }

    pub fn clear_injections(&self) {
        lock(&self.state.rules).clear();
    }

    /// Forget recorded pushes and rejections.
    pub fn clear_records(&self) {
        lock(&self.state.pushes).clear();
        lock(&self.state.rejections).clear();
    }

    /// Stop listening and drop every connection abruptly (the server is gone).
    pub async fn shutdown(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    fn add_rule(&self, target: Target, injection: Injection, sticky: bool) {
        let skip = match injection {
            Injection::GoAwayAfter(n) => n,
            _ => 0,
        };
        lock(&self.state.rules).push(Rule {
            target,
            injection,
            sticky,
            skip,
        });
    }
}

fn acceptor(identity: &ServerIdentity, trust: &ClientTrust) -> Result<SslAcceptor, FakeError> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    let mut chain = X509::stack_from_pem(&identity.cert_pem)?.into_iter();
    let leaf = chain.next().ok_or(FakeError::NoServerCertificate)?;
    b.set_certificate(&leaf)?;
    for c in chain {
        b.add_extra_chain_cert(c)?;
    }
    let key = PKey::private_key_from_pem(&identity.key_pem)?;
    b.set_private_key(&key)?;
    b.check_private_key()?;
    // APNs speaks HTTP/2 only.
    b.set_alpn_select_callback(|_, client| {
        select_next_proto(b"\x02h2", client).ok_or(AlpnError::NOACK)
    });
    let required = SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT;
    match trust {
        ClientTrust::Ca(pems) => {
            for pem in pems {
                for ca in X509::stack_from_pem(pem)? {
                    b.add_client_ca(&ca)?;
                    b.cert_store_mut().add_cert(ca)?;
                }
            }
            b.set_verify(required);
        }
        ClientTrust::Certificates(pems) => {
            let mut allowed = Vec::new();
            for pem in pems {
                for c in X509::stack_from_pem(pem)? {
                    allowed.push(c.to_der()?);
                }
            }
            b.set_verify_callback(required, move |_, ctx| {
                ctx.chain()
                    .and_then(|c| c.get(0))
                    .and_then(|leaf| leaf.to_der().ok())
                    .is_some_and(|der| allowed.contains(&der))
            });
        }
        ClientTrust::AnyCertificate => b.set_verify_callback(required, |_, _| true),
    }
    Ok(b.build())
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Arc<SslAcceptor>,
    state: Arc<State>,
    max_streams: u32,
) {
    // Owning the connection tasks here means aborting this task closes every connection.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(serve_connection(tcp, acceptor.clone(), state.clone(), max_streams));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fake APNs accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

struct Connection {
    /// The client certificate's UID.
    cert_topic: Option<String>,
    goaway: Notify,
}

async fn serve_connection(
    tcp: TcpStream,
    acceptor: Arc<SslAcceptor>,
    state: Arc<State>,
    max_streams: u32,
) {
    let _ = tcp.set_nodelay(true);
    let tls = Ssl::new(acceptor.context()).and_then(|ssl| SslStream::new(ssl, tcp));
    let mut tls = match tls {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "fake APNs TLS setup failed");
            return;
        }
    };
    if let Err(e) = Pin::new(&mut tls).accept().await {
        state.handshake_failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(error = %e, "fake APNs refused a TLS handshake");
        return;
    }
    let cert_topic = tls.ssl().peer_certificate().and_then(|c| topic_of(&c));
    state.connections.fetch_add(1, Ordering::Relaxed);
    let conn_ctx = Arc::new(Connection {
        cert_topic,
        goaway: Notify::new(),
    });
    let svc = {
        let (state, conn_ctx) = (state.clone(), conn_ctx.clone());
        service_fn(move |req| handler::handle(state.clone(), conn_ctx.clone(), req))
    };
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .max_concurrent_streams(max_streams)
        .serve_connection(TokioIo::new(tls), svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "fake APNs connection ended");
            }
        }
        () = conn_ctx.goaway.notified() => {
            // hyper sends GOAWAY and lets streams already accepted finish, then closes.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
        }
    }
}

/// Milliseconds since the epoch, as APNs puts in a 410 `timestamp`.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
