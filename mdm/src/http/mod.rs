//! HTTP surfaces: `device` (what Macs reach on `--listen`) and `admin` (the JSON API on
//! `--admin-listen`). Handlers are short: extract, call the service, map the result.

pub mod admin;
mod apns;
mod dep;
pub mod device;
pub mod enroll;
mod error;
pub mod identity;
mod lockwipe;
pub mod scep;
pub mod tls;

pub use error::{AdminError, DeviceError};

use crate::service::MdmService;
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

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<MdmService>,
    pub identity: Arc<IdentityVerifier>,
    pub dispatcher: Arc<crate::push::Dispatcher>,
    /// Set when this server signs customers' push CSRs (MDM vendor).
    pub vendor: Option<Arc<crate::push::certificate::VendorSigner>>,
    /// DEP links, sync, profiles.
    pub dep: Arc<crate::dep::DepService>,
}

/// Headers that carry secrets or identities: never logged.
pub fn sensitive_headers(extra: Option<&http::HeaderName>) -> Arc<[http::HeaderName]> {
    let mut names = vec![
        http::header::AUTHORIZATION,
        http::HeaderName::from_static("mdm-signature"),
    ];
    if let Some(h) = extra {
        names.push(h.clone());
    }
    names.into()
}
