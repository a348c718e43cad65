//! DEP (Automated Device Enrollment) in the server: links to Apple Business/School Manager
//! (key pair, token, account), the sync worker, enrollment profiles and assignments, and the
//! `com.apple.maid` token. The wire protocol lives in `russet-dep`; this module adds storage,
//! secrets at rest and policy.

mod links;
pub mod maid;
mod profiles;
mod queries;
pub mod setup;
mod status;
mod sync;
pub mod views;

pub use profiles::{skip_keys, validate_profile};
pub use queries::LinkStatus;
pub use status::DepStatus;
pub use sync::spawn_worker;

use crate::secrets::{SecretBox, SecretError};
use crate::store::{Store, StoreError};
use russet_dep::{DepError, TokenError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Devices per assign / remove / disown call (Apple's maximum).
pub const CHUNK: usize = 1000;
/// A FAILED automatic assignment is retried after this long (FL issue #15461: Apple's
/// failures often clear about a day later).
pub const FAILED_RETRY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum DepOpError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    /// Another server (or pass) is syncing this link right now.
    #[error("{0}")]
    Busy(String),
    /// Apple answered with an error; its code is part of the message, verbatim.
    #[error("Apple refused: {0}")]
    Apple(#[from] DepError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("DEP sync failed: {0}")]
    Sync(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Internal(String),
}

pub type DepResult<T> = Result<T, DepOpError>;

#[derive(Debug, Clone)]
pub struct DepSettings {
    /// Apple's DEP base URL (`--dep-url`).
    pub dep_url: String,
    /// Russet's public base URL (the enrollment profile's); DEP profiles point at
    /// `<public_url>/mdm/enroll`.
    pub public_url: String,
    /// DER certificates for DEP profiles' `anchor_certs`: the private root of Russet's TLS
    /// chain, so Setup Assistant trusts `url` (empty with a public chain).
    pub anchor_certs: Vec<Vec<u8>>,
}

pub struct DepService {
    store: Arc<dyn Store>,
    vault: Arc<SecretBox>,
    settings: DepSettings,
    /// One pass per link at a time within this process (the worker and `dep sync` may race).
    passes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl DepService {
    pub fn new(store: Arc<dyn Store>, vault: Arc<SecretBox>, settings: DepSettings) -> Self {
        DepService {
            store,
            vault,
            settings,
            passes: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn settings(&self) -> &DepSettings {
        &self.settings
    }

    fn pass_lock(&self, link: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(link.to_owned()).or_default().clone()
    }

    /// Write an audit entry for an admin's DEP action.
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> DepResult<()> {
        Ok(
            crate::service::audit::record(self.store.as_ref(), actor, action, target, detail)
                .await?,
        )
    }

    /// Remembers how the last call of a link went (shown in link status), and passes the
    /// result on.
    async fn note<T>(&self, link: &str, result: Result<T, DepError>) -> DepResult<T> {
        let now = crate::timefmt::now_ms();
        match result {
            Ok(v) => {
                self.store.record_dep_call(link, None, now).await?;
                Ok(v)
            }
            Err(e) => {
                let code = e.code().unwrap_or("TRANSPORT").to_owned();
                let message = e.to_string();
                if let Err(se) = self
                    .store
                    .record_dep_call(link, Some((&code, &message)), now)
                    .await
                {
                    tracing::error!(error = %se, "recording the DEP call outcome failed");
                }
                Err(DepOpError::Apple(e))
            }
        }
    }
}
