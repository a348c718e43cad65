//! The MDM core: what each check-in message and command report does, and the rules for the
//! command queue. Knows no HTTP and no SQL: it talks to a [`Store`] and returns typed answers.
//!
//! The caller (the HTTP layer) has already verified the device's identity certificate; the
//! service checks that the certificate belongs to the enrollment the message names.

pub mod ca;
mod checkin;
mod commands;
pub mod enrollment;
mod error;
pub mod lockwipe;
pub mod profile;

pub use checkin::CheckinResponse;
pub use commands::{EnqueueOutcome, enqueue_rules};
pub use error::ServiceError;

use crate::secrets::SecretBox;
use crate::store::Store;
use std::sync::Arc;

/// The identity certificate a request was verified with.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    /// SHA-256 of the certificate DER, lowercase hex.
    pub cert_sha256: String,
    /// `notAfter`, Unix milliseconds.
    pub not_after: Option<i64>,
}

/// How to answer `UserAuthenticate` (macOS directory users).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserAuthenticateMode {
    /// `410 Gone` on the first request: the user channel is refused (NanoMDM's default).
    #[default]
    Refuse,
    /// A zero-length `DigestChallenge`: the user channel is allowed without a password.
    ZeroLengthChallenge,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceOptions {
    pub user_authenticate: UserAuthenticateMode,
}

/// Settings key holding the APNs topic of the configured push certificate.
pub const SETTING_PUSH_TOPIC: &str = "apns.topic";

pub struct MdmService {
    store: Arc<dyn Store>,
    vault: Arc<SecretBox>,
    options: ServiceOptions,
}

impl MdmService {
    pub fn new(store: Arc<dyn Store>, vault: Arc<SecretBox>, options: ServiceOptions) -> Self {
        MdmService {
            store,
            vault,
            options,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Current time as Unix milliseconds.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}
