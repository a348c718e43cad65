//! `russet serve`: prepare the data directory, open the store, bind the listeners, run.

use crate::config::ServeArgs;
use crate::fsutil;
use crate::http::identity::IdentityVerifier;
use crate::http::{AppState, REQUEST_TIMEOUT, admin, device, sensitive_headers};
use crate::push::certificate::VendorSigner;
use crate::push::{Dispatcher, DispatcherSettings};
use crate::secrets::SecretBox;
use crate::service::{MdmService, ServiceOptions, UserAuthenticateMode, now_ms};
use crate::store::{self, Store};
use anyhow::{Context, bail};
use axum::Router;
use axum::http::{HeaderName, StatusCode};
use russet_certs::DeviceTrust;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub const ADMIN_TOKEN_FILE: &str = "admin-token";
pub const ADMIN_URL_FILE: &str = "admin-url";
const KEK_FILE: &str = "kek";

/// A started server. Dropping it does not stop it; call [`Running::shutdown`].
pub struct Running {
    pub device_addr: SocketAddr,
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
    if !args.insecure_http {
        bail!(
            "TLS on --listen is not available in this version yet: run Russet behind a \
             TLS-terminating proxy and pass --insecure-http (plain HTTP on --listen)"
        );
    }
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
    let identity = Arc::new(IdentityVerifier::new(
        load_device_trust(&args.device_ca)?,
        parse_header_name(args.client_cert_header.as_deref())?,
    ));
    let dep = Arc::new(crate::dep::DepService::new(
        store.clone(),
        vault.clone(),
        crate::dep::DepSettings {
            dep_url: args.dep_url.clone(),
            public_url: args
                .public_url
                .clone()
                .unwrap_or_else(crate::dep::default_public_url),
        },
    ));
    let service = Arc::new(
        MdmService::new(
            store.clone(),
            vault,
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
    let state = AppState {
        service,
        identity,
        dispatcher,
        vendor,
        dep: dep.clone(),
    };

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

    let sensitive = sensitive_headers(state.identity.client_cert_header());
    let device_app = with_common_layers(device::router(state.clone()), sensitive.clone());
    let admin_app = with_common_layers(admin::router(state), sensitive);
    let tasks = vec![
        tokio::spawn(serve(device_listener, device_app, rx.clone())),
        crate::dep::spawn_worker(
            dep,
            std::time::Duration::from_secs(args.dep_sync_interval_secs.max(1)),
            rx.clone(),
        ),
        tokio::spawn(serve(admin_listener, admin_app, rx)),
    ];
    tracing::warn!(
        listen = %device_addr,
        "device listener is plain HTTP (--insecure-http): put a TLS-terminating proxy in front"
    );
    tracing::info!(listen = %device_addr, admin = %admin_addr, "russet is serving");
    Ok(Running {
        device_addr,
        admin_addr,
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
