//! Configuration profiles as desired state: the catalog of uploaded `.mobileconfig` files
//! (every version kept, the body sealed at rest), the Custom Settings builder, assignments to
//! groups and devices, and the reconciler that makes every Mac match what its groups and
//! assignments say, verified by the Mac's own ProfileList. Apple's format and its checks live
//! in `crate::protocol::mobileconfig`; storage in `store/profiles.rs` and
//! `store/profile_states.rs`; routes in `http/profiles.rs`; verbs in `cli/profile.rs`.

mod assignments;
mod catalog;
mod delivery;
mod desired;
pub mod filevault;
pub mod golden_images;
mod observe;
pub mod parallels_activation;
pub mod reconcile;
pub mod views;

pub use observe::{ProfileStatus, spawn_sweeper};

pub use assignments::AssignOutcome;
pub use catalog::{Deleted, ProfileDetail, Uploaded};

use crate::protocol::mobileconfig::MobileconfigError;
use crate::protocol::mobileconfig::variables::ExpandError;
use crate::secrets::{SecretBox, SecretError};
use crate::service::MdmService;
use crate::service::enrollment::EnrollmentService;
use crate::store::{Store, StoreError};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The upload is not a profile Russet accepts: invalid (by Apple's schemas) or refused
    /// (it carries what Russet owns). The message names every key at fault.
    #[error(transparent)]
    Profile(#[from] MobileconfigError),
    #[error("{0}")]
    NotFound(String),
    /// Well-formed JSON that asks for nothing, or names something impossible.
    #[error("{0}")]
    BadRequest(String),
    /// Concurrent uploads of one identifier kept winning over this one.
    #[error("{0}")]
    Conflict(String),
    /// A version cannot be delivered to this device: a variable it uses has no value.
    #[error(transparent)]
    Expand(#[from] ExpandError),
    /// What the core answered (group memberships, queuing the reconciler's commands).
    #[error(transparent)]
    Service(Box<crate::service::ServiceError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Internal(String),
}

pub type ProfileResult<T> = Result<T, ProfileError>;

impl From<crate::service::ServiceError> for ProfileError {
    fn from(e: crate::service::ServiceError) -> Self {
        match e {
            crate::service::ServiceError::Store(e) => ProfileError::Store(e),
            crate::service::ServiceError::NotFound(m) => ProfileError::NotFound(m),
            crate::service::ServiceError::BadRequest(m) => ProfileError::BadRequest(m),
            other => ProfileError::Service(Box::new(other)),
        }
    }
}

#[derive(Clone)]
pub struct ProfileSettings {
    /// Russet's public base URL: `<public_url>/scep` is its own SCEP service, which uploaded
    /// profiles may not ask for a second MDM identity.
    pub public_url: String,
    /// Sign delivered profiles that were uploaded unsigned with the identity that signs
    /// enrollment profiles (`--sign-profiles`).
    pub signer: Option<Arc<EnrollmentService>>,
}

pub struct ProfileService {
    store: Arc<dyn Store>,
    vault: Arc<SecretBox>,
    scep_url: String,
    /// The core: group memberships, and where the reconciler's commands are queued.
    service: Arc<MdmService>,
    reconciler: reconcile::Reconciler,
    signer: Option<Arc<EnrollmentService>>,
}

impl ProfileService {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<SecretBox>,
        service: Arc<MdmService>,
        settings: ProfileSettings,
    ) -> Self {
        ProfileService {
            reconciler: reconcile::Reconciler::new(service.clone(), store.clone()),
            store,
            vault,
            scep_url: format!("{}/scep", settings.public_url.trim_end_matches('/')),
            service,
            signer: settings.signer,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Write an audit entry for an admin's action on a profile.
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> ProfileResult<()> {
        Ok(
            crate::service::audit::record(self.store.as_ref(), actor, action, target, detail)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests;
