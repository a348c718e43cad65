//! `russet serve`: the wiring. [`start`] reads top to bottom as the steps of a start: data
//! directory and key, database, CA and device trust, listeners and TLS, services, routers,
//! background tasks. Each step is a function below it; none holds a rule of the product.

pub mod admin_tls;
pub mod allocator;
mod exporter;
mod inputs;
mod listen;
pub mod logging;

pub use inputs::{hostname, public_host};

use crate::config::ServeArgs;
use crate::dep::{DepService, DepSettings};
use crate::fsutil;
use crate::http::identity::IdentityVerifier;
use crate::http::{self, AppState, admin, device, sensitive_headers};
use crate::inventory::{InventoryService, InventorySettings};
use crate::profiles::{ProfileService, ProfileSettings};
use crate::push::{Dispatcher, DispatcherSettings, PushService};
use crate::secrets::SecretBox;
use crate::service::enrollment::{EnrollmentOptions, EnrollmentService, ProfileSigner};
use crate::service::filevault::FileVaultEscrow;
use crate::service::recovery_lock_answers::RecoveryLockObserver;
use crate::service::{MdmService, ServiceOptions, UserAuthenticateMode};
use crate::store::{self, Store};
use crate::timefmt::now_ms;
use crate::webhooks::{WebhookSettings, Webhooks};
use anyhow::Context;
use axum::Router;
use russet_certs::ca::CertificateAuthority;
use russet_certs::machine_info::MachineInfoTrust;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::config::{ADMIN_TOKEN_FILE, ADMIN_URL_FILE};

/// How often failed profile installs whose backoff passed are retried, and channels due for a
/// ProfileList are asked.
const PROFILE_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A started server. Dropping it does not stop it; call [`Running::shutdown`].
pub struct Running {
    pub device_addr: SocketAddr,
    /// Base URL written into enrollment profiles.
    pub public_url: String,
    pub admin_addr: SocketAddr,
    /// `http://` or `https://` and the admin listener's address (also in `<data-dir>/admin-url`).
    pub admin_url: String,
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
    let operator_tls = operator_tls(args)?;
    let admin_transport = admin_tls::admin_transport(args)?;
    let (store, vault) = open_data(args).await?;
    let new_admin_token = ensure_admin_token(store.as_ref(), &args.data_dir).await?;
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
    let (device_listener, admin_listener) = bind(args, admin_transport.scheme()).await?;
    let device_addr = device_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let admin_url = format!("{}://{admin_addr}", admin_transport.scheme());
    let host = public_host(args, Some(device_addr))?;
    let public_url = inputs::public_url(args, &host, device_addr);
    let server_tls = server_tls(args, operator_tls, &ca, &host)?;

    let (shutdown, rx) = watch::channel(false);
    let state = services(
        args,
        Shared {
            store: store.clone(),
            vault,
            ca,
        },
        server_tls.as_ref(),
        &host,
        &public_url,
        rx.clone(),
    )?;
    warn_about_state(store.as_ref()).await;
    let tasks = serve_all(
        args,
        state,
        (device_listener, admin_listener),
        (server_tls.as_ref(), admin_transport),
        rx,
    )?;
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
        admin_url,
        public_url,
        new_admin_token,
        store,
        shutdown,
        tasks,
    })
}

/// The operator's TLS certificate (`--tls-cert`/`--tls-pfx`), checked against the public
/// host; `None` for plain HTTP, or when Russet is to make a development certificate.
fn operator_tls(args: &ServeArgs) -> anyhow::Result<Option<http::tls::ServerIdentity>> {
    if args.insecure_http {
        return Ok(None);
    }
    let id = http::tls::load_operator(&inputs::tls_files(args))?;
    if let Some(id) = &id {
        let host = public_host(args, None)?;
        http::tls::check_certificate(&id.cert, &host)
            .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
    }
    Ok(id)
}

/// The data directory, the key-encryption key and the migrated database.
async fn open_data(args: &ServeArgs) -> anyhow::Result<(Arc<dyn Store>, Arc<SecretBox>)> {
    fsutil::create_private_dir(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let vault = Arc::new(inputs::load_kek(args)?);
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("russet.db").display()));
    let store = store::open(&database_url)
        .await
        .context("opening the database")?;
    tracing::info!(backend = store.backend(), "database ready");
    Ok((store, vault))
}

/// On first start (no admin in the database), create the first admin (role `admin`), write its
/// token to `<data-dir>/admin-token` (0600) and hand it back to be printed once.
async fn ensure_admin_token(store: &dyn Store, data_dir: &Path) -> anyhow::Result<Option<String>> {
    let Some(token) = crate::service::admins::create_first_admin(store).await? else {
        return Ok(None);
    };
    fsutil::write_private(
        &data_dir.join(ADMIN_TOKEN_FILE),
        format!("{token}\n").as_bytes(),
    )
    .context("writing admin-token")?;
    Ok(Some(token))
}

/// Bind both listeners (port 0 picks a free port) and write the admin URL for the CLI.
async fn bind(args: &ServeArgs, admin_scheme: &str) -> anyhow::Result<(TcpListener, TcpListener)> {
    let device = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding --listen {}", args.listen))?;
    let admin = TcpListener::bind(&args.admin_listen)
        .await
        .with_context(|| format!("binding --admin-listen {}", args.admin_listen))?;
    fsutil::write_private(
        &args.data_dir.join(ADMIN_URL_FILE),
        format!("{admin_scheme}://{}\n", admin.local_addr()?).as_bytes(),
    )
    .context("writing admin-url")?;
    Ok((device, admin))
}

/// The device listener's certificate: the operator's, else a development certificate from
/// Russet's CA; `None` with `--insecure-http` (a TLS-terminating proxy in front).
fn server_tls(
    args: &ServeArgs,
    operator: Option<http::tls::ServerIdentity>,
    ca: &CertificateAuthority,
    host: &str,
) -> anyhow::Result<Option<http::tls::ServerIdentity>> {
    if args.insecure_http {
        return Ok(None);
    }
    if let Some(id) = operator {
        return Ok(Some(id));
    }
    tracing::warn!(
        host = %host,
        "no --tls-cert/--tls-pfx: serving a self-signed DEVELOPMENT certificate issued by \
         Russet's CA; Macs trust it only through the enrollment profile. Use a real \
         certificate in production"
    );
    Ok(Some(http::tls::dev_certificate(ca, host)?))
}

/// What every service is built on.
struct Shared {
    store: Arc<dyn Store>,
    vault: Arc<SecretBox>,
    ca: Arc<CertificateAuthority>,
}

/// The services, wired to each other: the push dispatcher wakes devices for the MDM core, DEP
/// answers the core's `GetToken`, and DEP profiles point at the enrollment profile's URL.
fn services(
    args: &ServeArgs,
    shared: Shared,
    server_tls: Option<&http::tls::ServerIdentity>,
    host: &str,
    public_url: &str,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<AppState> {
    let Shared { store, vault, ca } = shared;
    let dispatcher = Dispatcher::start(
        store.clone(),
        vault.clone(),
        DispatcherSettings {
            apns_url: args.apns_url.clone(),
            apns_extra_ca_pem: inputs::apns_extra_ca(args)?,
            sweep_interval: Duration::from_secs(args.push_sweep_interval_secs.max(1)),
        },
        shutdown,
    );
    let push = Arc::new(PushService::new(
        store.clone(),
        vault.clone(),
        dispatcher.clone(),
        inputs::load_vendor(args)?,
    ));
    let enroll = Arc::new(enrollment_service(
        args,
        store.clone(),
        ca.clone(),
        server_tls,
        host,
        public_url,
    )?);
    // DEP profiles trust the same private root (`anchor_certs`) as the enrollment profile
    // when the TLS chain is not public.
    let dep = Arc::new(DepService::new(
        store.clone(),
        vault.clone(),
        DepSettings {
            dep_url: args.dep_url.clone(),
            public_url: public_url.to_string(),
            anchor_certs: enroll
                .trust_root()
                .and_then(|c| c.to_der().ok())
                .into_iter()
                .collect(),
        },
    ));
    let webhooks = webhooks(args, store.clone());
    let mut core = MdmService::new(
        store.clone(),
        vault.clone(),
        ServiceOptions {
            user_authenticate: if args.user_authenticate_zero_challenge {
                UserAuthenticateMode::ZeroLengthChallenge
            } else {
                UserAuthenticateMode::Refuse
            },
            filevault_rotate_after_reveal: (args.filevault_rotate_after_reveal_secs > 0)
                .then(|| Duration::from_secs(args.filevault_rotate_after_reveal_secs)),
        },
    )
    .with_pusher(dispatcher)
    .with_token_issuer(dep.clone());
    if let Some(w) = &webhooks {
        core = core.with_recorder(w.clone());
    }
    let service = Arc::new(core);
    // Configuration profiles as desired state: the catalog hears the core (enrollments, facts,
    // memberships, its commands' results) and reconciles. Uploaded profiles may not ask
    // Russet's own SCEP service (`<public_url>/scep`) for a second MDM identity.
    let profiles = Arc::new(ProfileService::new(
        store.clone(),
        vault,
        service.clone(),
        ProfileSettings {
            public_url: public_url.to_string(),
            signer: args.sign_profiles.then(|| enroll.clone()),
        },
    ));
    service.observe(&(profiles.clone() as Arc<dyn crate::service::DeviceObserver>));
    // Inventory hears enrollments (it asks) and its commands' answers (it stores them).
    let inventory = Arc::new(InventoryService::new(
        store.clone(),
        service.clone(),
        InventorySettings {
            interval: Duration::from_secs(args.inventory_interval_secs),
            collect: args.inventory,
        },
    ));
    service.observe(&(inventory.clone() as Arc<dyn crate::service::DeviceObserver>));
    // FileVault escrow hears the answers that carry recovery keys (SecurityInfo, rotations).
    let filevault = Arc::new(FileVaultEscrow::new(
        service.clone(),
        Duration::from_secs(args.filevault_escrow_retry_secs),
    ));
    service.observe(&(filevault.clone() as Arc<dyn crate::service::DeviceObserver>));
    // Recovery Lock hears its commands' answers (verify, then settle the escrow).
    let recovery_lock = Arc::new(RecoveryLockObserver::new(service.clone()));
    service.observe(&(recovery_lock.clone() as Arc<dyn crate::service::DeviceObserver>));
    // DDM: the channel answers DeclarativeManagement check-ins and hears membership changes
    // (a Mac whose declaration set changed is told to sync).
    let ddm = Arc::new(crate::ddm::DdmService::new(store.clone(), service.clone()));
    service.serve_declarative(&(ddm.clone() as Arc<dyn crate::service::DeclarativeChannel>));
    service.observe(&(ddm.clone() as Arc<dyn crate::service::DeviceObserver>));
    let identity = Arc::new(IdentityVerifier::new(
        inputs::device_trust(args, &ca)?,
        inputs::client_cert_header(args)?,
    ));
    Ok(AppState {
        service,
        enroll,
        push,
        dep,
        profiles,
        inventory,
        identity,
        metrics: Arc::new(http::MetricsEndpoint {
            handle: exporter::install()?,
            token: args.metrics_token.clone().filter(|t| !t.is_empty()),
        }),
        webhooks,
        filevault,
        recovery_lock,
        ddm,
    })
}

/// Webhooks, when `--webhook-url` names receivers (otherwise none: the core then records
/// nothing and a check-in costs no extra query).
fn webhooks(args: &ServeArgs, store: Arc<dyn Store>) -> Option<Arc<Webhooks>> {
    if args.webhook_urls.is_empty() {
        return None;
    }
    let hmac_key = args
        .webhook_hmac_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|k| k.as_bytes().to_vec());
    let settings = WebhookSettings {
        retry_min: Duration::from_millis(args.webhook_retry_min_ms),
        retry_max: Duration::from_millis(args.webhook_retry_max_ms.max(args.webhook_retry_min_ms)),
        give_up_after: Duration::from_secs(args.webhook_give_up_after_secs),
        ..WebhookSettings::new(args.webhook_urls.clone(), hmac_key)
    };
    let receivers: Vec<String> = settings
        .urls
        .iter()
        .map(|u| crate::webhooks::receiver_name(u))
        .collect();
    // The key itself is never logged; only whether there is one.
    tracing::info!(
        receivers = ?receivers,
        signed = settings.hmac_key.is_some(),
        "webhooks on"
    );
    if settings.hmac_key.is_none() {
        tracing::warn!(
            "webhooks are not signed: give --webhook-hmac-key so receivers can tell Russet's events from forgeries"
        );
    }
    Some(Arc::new(Webhooks::new(store, settings)))
}

fn enrollment_service(
    args: &ServeArgs,
    store: Arc<dyn Store>,
    ca: Arc<CertificateAuthority>,
    tls: Option<&http::tls::ServerIdentity>,
    host: &str,
    public_url: &str,
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
            public_url: public_url.to_string(),
            identity_validity: Duration::from_secs(u64::from(args.identity_validity_days) * 86400),
            challenge_ttl_ms: i64::from(args.challenge_ttl_minutes) * 60_000,
            static_challenge: args.scep_challenge.clone().filter(|c| !c.is_empty()),
            open_enrollment: args.open_enrollment,
            trust_root,
            machine_info_trust,
        },
    )
}

/// What an operator should know at start: expiring device identities, the push certificate
/// (missing, expiring, refused by APNs), the placeholder topic.
async fn warn_about_state(store: &dyn Store) {
    let soon = crate::service::devices::EXPIRY_WARNING_DAYS;
    match store
        .expiring_identities(now_ms().saturating_add(soon * 86_400_000))
        .await
    {
        Ok(list) if !list.is_empty() => tracing::warn!(
            count = list.len(),
            first = %list[0].udid,
            "device identities expire within {soon} days (GET /api/v1/identities/expiring)"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot list expiring identities"),
    }
    match crate::push::certificate::status(store).await {
        Ok(Some(s)) => match &s.warning {
            Some(w) => tracing::warn!(topic = %s.topic, "push certificate {w}"),
            None => {
                tracing::info!(topic = %s.topic, days_left = s.days_left, "push certificate loaded")
            }
        },
        Ok(None) => {
            tracing::warn!(
                "no push certificate: Macs can't be woken; import one with `russet apns import`"
            );
            tracing::warn!("{}", crate::service::enrollment::PLACEHOLDER_TOPIC_WARNING);
        }
        Err(e) => tracing::error!(error = %e, "reading the push certificate failed"),
    }
}

/// The device and admin routers on their listeners, and the DEP sync worker.
fn serve_all(
    args: &ServeArgs,
    state: AppState,
    (device_listener, admin_listener): (TcpListener, TcpListener),
    (server_tls, admin_transport): (
        Option<&http::tls::ServerIdentity>,
        admin_tls::AdminTransport,
    ),
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<std::io::Result<()>>>> {
    let device_addr = device_listener.local_addr()?;
    let sensitive = sensitive_headers(state.identity.client_cert_header());
    let device_app: Router =
        listen::with_common_layers(device::router(state.clone()), "device", sensitive.clone());
    let console_cookies = crate::console::CookiePolicy {
        secure: matches!(admin_transport, admin_tls::AdminTransport::Tls(_)),
    };
    let admin_app = listen::with_common_layers(
        // The console beside the API on the admin listener (it imports `http`, never the
        // other way round).
        admin::router(state.clone()).merge(crate::console::router(state.clone(), console_cookies)),
        "admin",
        sensitive,
    );
    let device_task = match server_tls {
        Some(id) => {
            let acceptor = http::tls::acceptor(id, state.identity.trusted_cas())?;
            tokio::spawn(listen::serve_tls(
                device_listener,
                device_app,
                acceptor,
                shutdown.clone(),
            ))
        }
        None => {
            tracing::warn!(
                listen = %device_addr,
                "device listener is plain HTTP (--insecure-http): put a TLS-terminating proxy in front"
            );
            tokio::spawn(listen::serve(device_listener, device_app, shutdown.clone()))
        }
    };
    Ok([
        device_task,
        crate::profiles::spawn_sweeper(
            state.profiles.clone(),
            PROFILE_SWEEP_INTERVAL,
            Duration::from_secs(args.profile_verify_interval_secs.max(3600)),
            shutdown.clone(),
        ),
        crate::inventory::spawn_sweeper(state.inventory.clone(), shutdown.clone()),
        crate::service::filevault::spawn_sweeper(state.filevault.clone(), shutdown.clone()),
        crate::dep::spawn_worker(
            state.dep.clone(),
            Duration::from_secs(args.dep_sync_interval_secs.max(1)),
            shutdown.clone(),
        ),
        match admin_transport {
            admin_tls::AdminTransport::Tls(id) => tokio::spawn(listen::serve_admin_tls(
                admin_listener,
                admin_app,
                http::tls::server_acceptor(&id)?,
                shutdown.clone(),
            )),
            admin_tls::AdminTransport::InsecureHttp => {
                tracing::warn!(
                    admin = %args.admin_listen,
                    "admin API is plain HTTP on a reachable address (--admin-insecure-http): \
                     put a TLS-terminating proxy in front"
                );
                tokio::spawn(listen::serve(admin_listener, admin_app, shutdown.clone()))
            }
            admin_tls::AdminTransport::LoopbackHttp => {
                tokio::spawn(listen::serve(admin_listener, admin_app, shutdown.clone()))
            }
        },
    ]
    .into_iter()
    .chain(
        state
            .webhooks
            .clone()
            .map(|w| crate::webhooks::spawn_worker(w, shutdown)),
    )
    .collect())
}
