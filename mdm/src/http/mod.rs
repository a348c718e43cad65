//! HTTP surfaces: `device` (what Macs reach on `--listen`) and `admin` (the JSON API on
//! `--admin-listen`). Handlers are short: extract, call a service, map the result. Status codes
//! are decided in `error.rs` only; what handlers extract is in `extractor.rs`.
//!
//! Device side: `device` (router, check-in, command loop), `identity` (who signed the body),
//! `enroll` (`/mdm/enroll`), `scep`, `tls`. Admin side: `admin` (router), one module per
//! area with its own `routes()`: `devices`, `commands`, `lockwipe`, `apns`, `enroll_links`,
//! `audit`, `dep`, `groups`, `profiles`, `inventory`, `admins`, `recovery_lock`; `metrics` (`GET /metrics`,
//! Prometheus); `permissions` (the permission each admin route requires, checked by
//! `extractor::require_admin`).

pub mod admin;
mod admins;
mod apns;
mod audit;
mod commands;
mod ddm;
mod dep;
pub mod device;
mod devices;
pub mod enroll;
mod enroll_links;
mod error;
mod extractor;
mod filevault;
mod golden_images;
mod groups;
pub mod identity;
mod inventory;
mod lockwipe;
mod metrics;
mod os_updates;
mod parallels_activation;
pub mod permissions;
mod profiles;
mod recovery_lock;
#[cfg(test)]
pub(crate) mod route_scan;
pub mod scep;
pub mod tls;

pub use error::{AdminError, DeviceError, dep_public_message};

use crate::dep::DepService;
use crate::inventory::InventoryService;
use crate::profiles::ProfileService;
use crate::push::PushService;
use crate::service::MdmService;
use crate::service::enrollment::EnrollmentService;
use identity::IdentityVerifier;
use std::sync::Arc;
use std::time::Duration;

/// Largest body a device may send. Command results (e.g. InstalledApplicationList on a Mac with
/// many apps) are the big ones; a few MiB is generous.
pub const MAX_DEVICE_BODY: usize = 8 * 1024 * 1024;
/// Largest admin API body (an InstallProfile payload in base64 is the big one).
pub const MAX_ADMIN_BODY: usize = 16 * 1024 * 1024;
/// A request that takes longer than this is answered 408 and dropped.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The services handlers call, one per area; handlers hold no rule of their own.
#[derive(Clone)]
pub struct AppState {
    /// The MDM core: check-ins, the command queue, devices, lock/wipe and the PIN vault.
    pub service: Arc<MdmService>,
    /// Enrollment links, profiles, SCEP and ADE enrollment.
    pub enroll: Arc<EnrollmentService>,
    /// Push now, the push certificate, the vendor CSR signer.
    pub push: Arc<PushService>,
    /// DEP links, sync, profiles.
    pub dep: Arc<DepService>,
    /// Configuration profiles: the catalog and assignments.
    pub profiles: Arc<ProfileService>,
    /// Inventory: a Mac's facts, apps, users; refresh now.
    pub inventory: Arc<InventoryService>,
    /// Who signed a device request.
    pub identity: Arc<IdentityVerifier>,
    /// `GET /metrics`: the recorder to render and who may scrape.
    pub metrics: Arc<MetricsEndpoint>,
    /// Webhooks, when `--webhook-url` is given (for the outbox gauge).
    pub webhooks: Option<Arc<crate::webhooks::Webhooks>>,
    /// Escrows the FileVault keys Macs send (held here: the core observes it weakly).
    pub filevault: Arc<crate::service::filevault::FileVaultEscrow>,
    /// Settles Recovery Lock escrows from the Macs' answers (held here: the core holds its
    /// observers weakly).
    pub recovery_lock: Arc<crate::service::recovery_lock_answers::RecoveryLockObserver>,
    /// Declarative Device Management: the DDM channel and OS updates (held here: the core
    /// holds its channel and observers weakly).
    pub ddm: Arc<crate::ddm::DdmService>,
}

/// What `GET /metrics` needs: the process's Prometheus recorder, and the scrape-only token
/// (`--metrics-token`) accepted beside admin tokens.
pub struct MetricsEndpoint {
    pub handle: metrics_exporter_prometheus::PrometheusHandle,
    pub token: Option<String>,
}

/// Headers that carry secrets or identities: never logged.
pub fn sensitive_headers(extra: Option<&http::HeaderName>) -> Arc<[http::HeaderName]> {
    let mut names = vec![
        http::header::AUTHORIZATION,
        http::HeaderName::from_static("mdm-signature"),
        // The console's session cookie.
        http::header::COOKIE,
        http::header::SET_COOKIE,
    ];
    if let Some(h) = extra {
        names.push(h.clone());
    }
    names.into()
}
