//! `russet serve`: prepare the data directory, open the store, bind the listeners, run.

use crate::config::ServeArgs;
use crate::fsutil;
use crate::http::identity::IdentityVerifier;
use crate::http::{self, AppState, REQUEST_TIMEOUT, admin, device, sensitive_headers};
use crate::push::certificate::VendorSigner;
use crate::push::{Dispatcher, DispatcherSettings};
use crate::secrets::SecretBox;
use crate::service::enrollment::{EnrollmentOptions, EnrollmentService, ProfileSigner};
use crate::service::{MdmService, ServiceOptions, UserAuthenticateMode, now_ms};
use crate::store::{self, Store};
use anyhow::{Context, bail};
use axum::http::{HeaderName, StatusCode};
use axum::{Extension, Router};
use russet_certs::DeviceTrust;
use russet_certs::ca::CertificateAuthority;
use russet_certs::machine_info::MachineInfoTrust;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use crate::config::{ADMIN_TOKEN_FILE, ADMIN_URL_FILE};
const KEK_FILE: &str = "kek";

/// A started server. Dropping it does not stop it; call [`Running::shutdown`].
pub struct Running {
    pub device_addr: SocketAddr,
    /// Base URL written into enrollment profiles.
    pub public_url: String,
    pub admin_addr: SocketAddr,
    /// The admin token, when this start created it (first start).
    pub new_admin_token: Option<String>,
    pub store: Arc<dyn Store>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Stop accepting, let in-flight requests finish, and return.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            match t.await {
                Ok(Err(e)) => tracing::error!(error = %e, "listener stopped with an error"),
                Err(e) => tracing::error!(error = %e, "listener task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}

pub async fn start(args: &ServeArgs) -> anyhow::Result<Running> {
    // Refuse a bad operator TLS certificate before touching anything.
    let operator_tls = if args.insecure_http {
        None
    } else {
        let id = http::tls::load_operator(&tls_files(args))?;
        if let Some(id) = &id {
            let host = public_host(args, None)?;
            http::tls::check_certificate(&id.cert, &host)
                .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
        }
        id
    };
    fsutil::create_private_dir(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;

    let vault = Arc::new(load_kek(args)?);
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("russet.db").display()));
    let store = store::open(&database_url)
        .await
        .context("opening the database")?;
    tracing::info!(backend = store.backend(), "database ready");
    let new_admin_token = ensure_admin_token(store.as_ref(), &args.data_dir).await?;

    let (shutdown, rx) = watch::channel(false);
    let dispatcher = Dispatcher::start(
        store.clone(),
        vault.clone(),
        DispatcherSettings {
            apns_url: args.apns_url.clone(),
            apns_extra_ca_pem: args
                .apns_ca
                .as_ref()
                .map(|p| {
                    std::fs::read(p).with_context(|| format!("reading --apns-ca {}", p.display()))
                })
                .transpose()?,
            sweep_interval: std::time::Duration::from_secs(args.push_sweep_interval_secs.max(1)),
        },
        rx.clone(),
    );
    let vendor = load_vendor(args)?;
    let ca = Arc::new(
        crate::service::ca::load_or_create(
            store.as_ref(),
            &vault,
            args.scep_ca_cert
                .as_deref()
                .zip(args.scep_ca_key.as_deref()),
        )
        .await?,
    );
    let trust = add_ca_to_trust(load_device_trust(&args.device_ca)?, &ca)?;
    let client_cas = trust.cas().to_vec();
    let identity = Arc::new(IdentityVerifier::new(
        Some(trust),
        parse_header_name(args.client_cert_header.as_deref())?,
    ));
    let service = Arc::new(
        MdmService::new(
            store.clone(),
            vault.clone(),
            ServiceOptions {
                user_authenticate: if args.user_authenticate_zero_challenge {
                    UserAuthenticateMode::ZeroLengthChallenge
                } else {
                    UserAuthenticateMode::Refuse
                },
            },
        )
        .with_pusher(dispatcher.clone()),
    );
    log_push_certificate(store.as_ref()).await;

    let device_listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding --listen {}", args.listen))?;
    let admin_listener = TcpListener::bind(&args.admin_listen)
        .await
        .with_context(|| format!("binding --admin-listen {}", args.admin_listen))?;
    let device_addr = device_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    fsutil::write_private(
        &args.data_dir.join(ADMIN_URL_FILE),
        format!("http://{admin_addr}\n").as_bytes(),
    )
    .context("writing admin-url")?;

    let host = public_host(args, Some(device_addr))?;
    let public_url = match &args.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("https://{}:{}", bracket(&host), device_addr.port()),
    };
    let server_tls = match (args.insecure_http, operator_tls) {
        (true, _) => None,
        (false, Some(id)) => Some(id),
        (false, None) => {
            tracing::warn!(
                host = %host,
                "no --tls-cert/--tls-pfx: serving a self-signed DEVELOPMENT certificate issued by \
                 Russet's CA; Macs trust it only through the enrollment profile. Use a real \
                 certificate in production"
            );
            Some(http::tls::dev_certificate(&ca, &host)?)
        }
    };
    let enroll = Arc::new(enrollment_service(
        args,
        store.clone(),
        ca.clone(),
        server_tls.as_ref(),
        &host,
        public_url.clone(),
    )?);
    // DEP profiles point at the same public URL as the enrollment profile, and trust the
    // same private root (`anchor_certs`) when the TLS chain is not public.
    let dep = Arc::new(crate::dep::DepService::new(
        store.clone(),
        vault.clone(),
        crate::dep::DepSettings {
            dep_url: args.dep_url.clone(),
            public_url: public_url.clone(),
            anchor_certs: enroll
                .trust_root()
                .and_then(|c| c.to_der().ok())
                .into_iter()
                .collect(),
        },
    ));
    let state = AppState {
        service,
        identity,
        dispatcher,
        vendor,
        dep: dep.clone(),
    };
    report_expiring_identities(store.as_ref()).await;
    if store.active_push_certificate().await?.is_none() {
        tracing::warn!("{}", crate::service::enrollment::PLACEHOLDER_TOPIC_WARNING);
    }

    let sensitive = sensitive_headers(state.identity.client_cert_header());
    let device_app = with_common_layers(
        device::router(state.clone()).layer(Extension(enroll.clone())),
        sensitive.clone(),
    );
    let admin_app = with_common_layers(admin::router(state).layer(Extension(enroll)), sensitive);
    let device_task = match &server_tls {
        Some(id) => {
            let acceptor = http::tls::acceptor(id, &client_cas)?;
            tokio::spawn(serve_tls(device_listener, device_app, acceptor, rx.clone()))
        }
        None => {
            tracing::warn!(
                listen = %device_addr,
                "device listener is plain HTTP (--insecure-http): put a TLS-terminating proxy in front"
            );
            tokio::spawn(serve(device_listener, device_app, rx.clone()))
        }
    };
    let tasks = vec![
        device_task,
        crate::dep::spawn_worker(
            dep,
            std::time::Duration::from_secs(args.dep_sync_interval_secs.max(1)),
            rx.clone(),
        ),
        tokio::spawn(serve(admin_listener, admin_app, rx)),
    ];
    tracing::info!(
        listen = %device_addr,
        admin = %admin_addr,
        public_url = %public_url,
        tls = server_tls.is_some(),
        "russet is serving"
    );
    Ok(Running {
        device_addr,
        admin_addr,
        public_url,
        new_admin_token,
        store,
        shutdown,
        tasks,
    })
}

fn with_common_layers(router: Router, sensitive: Arc<[HeaderName]>) -> Router {
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::from_shared(sensitive))
}

async fn serve(
    listener: TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}

/// Serve HTTPS with axum-server: the connection's client certificate (if any) reaches handlers
/// as the `TlsInfo` request extension.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    acceptor: openssl::ssl::SslAcceptor,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use axum_server::tls_openssl::{OpenSSLAcceptor, OpenSSLConfig};
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let config = OpenSSLConfig::from_acceptor(Arc::new(acceptor));
    axum_server::from_tcp(listener.into_std()?)?
        .acceptor(http::tls::PeerCertAcceptor(OpenSSLAcceptor::new(config)))
        .handle(handle)
        .serve(app.into_make_service())
        .await
}

fn tls_files(args: &ServeArgs) -> http::tls::TlsFiles<'_> {
    http::tls::TlsFiles {
        cert: args.tls_cert.as_deref(),
        key: args.tls_key.as_deref(),
        pfx: args.tls_pfx.as_deref(),
        pfx_password: args.tls_pfx_password.as_deref(),
    }
}

/// The host of `--public-url`; by default the listen address when it names one, else the
/// machine's hostname.
pub fn public_host(args: &ServeArgs, bound: Option<SocketAddr>) -> anyhow::Result<String> {
    if let Some(url) = &args.public_url {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .with_context(|| format!("--public-url {url:?} must start with https://"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or("").to_string()
        } else {
            authority.split(':').next().unwrap_or("").to_string()
        };
        if host.is_empty() {
            bail!("--public-url {url:?} has no host");
        }
        return Ok(host);
    }
    let ip = bound
        .map(|a| a.ip())
        .or_else(|| args.listen.parse::<SocketAddr>().ok().map(|a| a.ip()));
    match ip {
        Some(ip) if !ip.is_unspecified() => Ok(ip.to_string()),
        _ => Ok(hostname()),
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The machine's host name (Linux `/proc`, else `$HOSTNAME`, else `localhost`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn add_ca_to_trust(
    extra: Option<DeviceTrust>,
    ca: &CertificateAuthority,
) -> anyhow::Result<DeviceTrust> {
    let ca_pem = ca.cert_pem()?;
    Ok(match extra {
        Some(mut t) => {
            t.add_pem(&ca_pem)?;
            t
        }
        None => DeviceTrust::from_pem(&ca_pem)?,
    })
}

fn enrollment_service(
    args: &ServeArgs,
    store: Arc<dyn Store>,
    ca: Arc<CertificateAuthority>,
    tls: Option<&http::tls::ServerIdentity>,
    host: &str,
    public_url: String,
) -> anyhow::Result<EnrollmentService> {
    // Sign profiles with the operator's TLS certificate (Macs already trust its chain), else
    // with a signing certificate from Russet's CA.
    let signer = match tls {
        Some(id) if !id.generated => ProfileSigner {
            cert: id.cert.clone(),
            key: id.key.clone(),
            chain: id.chain.clone(),
        },
        _ => {
            let (cert, key) = ca
                .issue_tls_server_certificate(&[host.to_string()], Duration::from_secs(397 * 86400))
                .context("issuing the profile-signing certificate")?;
            ProfileSigner {
                cert,
                key,
                chain: Vec::new(),
            }
        }
    };
    let trust_root = tls.and_then(|id| http::tls::private_root(id, &ca));
    let machine_info_trust = match &args.ade_device_ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading --ade-device-ca {}", path.display()))?;
            let trust = MachineInfoTrust::from_pem(&pem).context("--ade-device-ca")?;
            tracing::warn!(
                anchors = ?trust.anchors(),
                "--ade-device-ca: ADE MachineInfo is checked against these CAs instead of Apple's"
            );
            trust
        }
        None => MachineInfoTrust::apple().context("the bundled Apple device CA")?,
    };
    EnrollmentService::new(
        store,
        ca,
        signer,
        EnrollmentOptions {
            public_url,
            identity_validity: Duration::from_secs(u64::from(args.identity_validity_days) * 86400),
            challenge_ttl_ms: i64::from(args.challenge_ttl_minutes) * 60_000,
            static_challenge: args.scep_challenge.clone().filter(|c| !c.is_empty()),
            open_enrollment: args.open_enrollment,
            trust_root,
            machine_info_trust,
        },
    )
}

async fn report_expiring_identities(store: &dyn Store) {
    let before = now_ms().saturating_add(30 * 86_400_000);
    match store.expiring_identities(before).await {
        Ok(list) if !list.is_empty() => tracing::warn!(
            count = list.len(),
            first = %list[0].udid,
            "device identities expire within 30 days (GET /api/v1/identities/expiring)"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot list expiring identities"),
    }
}

fn load_kek(args: &ServeArgs) -> anyhow::Result<SecretBox> {
    if let Some(hex) = &args.kek {
        return SecretBox::from_hex(hex).context("--kek / RUSSET_KEK");
    }
    let path = args.data_dir.join(KEK_FILE);
    let (kek, created) = SecretBox::load_or_create(&path)?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "created a new key-encryption key: back it up; without it escrowed secrets cannot be read"
        );
    }
    Ok(kek)
}

/// On first start (no admin token in the database), create one, write it to
/// `<data-dir>/admin-token` (0600) and hand it back to be printed once.
async fn ensure_admin_token(store: &dyn Store, data_dir: &Path) -> anyhow::Result<Option<String>> {
    if !store.admin_tokens().await?.is_empty() {
        return Ok(None);
    }
    let token = crate::admin_token::generate()?;
    store
        .insert_admin_token("admin", &crate::admin_token::hash(&token), now_ms())
        .await?;
    fsutil::write_private(
        &data_dir.join(ADMIN_TOKEN_FILE),
        format!("{token}\n").as_bytes(),
    )
    .context("writing admin-token")?;
    Ok(Some(token))
}

fn load_device_trust(paths: &[std::path::PathBuf]) -> anyhow::Result<Option<DeviceTrust>> {
    if paths.is_empty() {
        tracing::warn!(
            "no --device-ca given: no device identity can be verified, so every check-in is refused"
        );
        return Ok(None);
    }
    let mut pem = Vec::new();
    for p in paths {
        let bytes =
            std::fs::read(p).with_context(|| format!("reading --device-ca {}", p.display()))?;
        pem.extend_from_slice(&bytes);
        pem.push(b'\n');
    }
    Ok(Some(
        DeviceTrust::from_pem(&pem).context("parsing --device-ca")?,
    ))
}

/// The vendor's CSR-signing credentials, when this server runs the broker.
fn load_vendor(args: &ServeArgs) -> anyhow::Result<Option<Arc<VendorSigner>>> {
    let (Some(cert), Some(key)) = (&args.vendor_cert, &args.vendor_key) else {
        if args.vendor_cert.is_some() || args.vendor_key.is_some() {
            bail!("--vendor-cert and --vendor-key go together");
        }
        return Ok(None);
    };
    let chain = match &args.vendor_chain {
        Some(p) => {
            std::fs::read(p).with_context(|| format!("reading --vendor-chain {}", p.display()))?
        }
        None => Vec::new(),
    };
    Ok(Some(Arc::new(VendorSigner::load(
        &std::fs::read(cert)
            .with_context(|| format!("reading --vendor-cert {}", cert.display()))?,
        &std::fs::read(key).with_context(|| format!("reading --vendor-key {}", key.display()))?,
        &chain,
    )?)))
}

async fn log_push_certificate(store: &dyn Store) {
    match crate::push::certificate::status(store).await {
        Ok(Some(s)) => match &s.warning {
            Some(w) => tracing::warn!(topic = %s.topic, "push certificate {w}"),
            None => {
                tracing::info!(topic = %s.topic, days_left = s.days_left, "push certificate loaded")
            }
        },
        Ok(None) => tracing::warn!(
            "no push certificate: Macs can't be woken; import one with `russet apns import`"
        ),
        Err(e) => tracing::error!(error = %e, "reading the push certificate failed"),
    }
}

fn parse_header_name(name: Option<&str>) -> anyhow::Result<Option<HeaderName>> {
    name.map(|n| HeaderName::try_from(n).with_context(|| format!("--client-cert-header {n:?}")))
        .transpose()
}
