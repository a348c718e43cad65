//! The MDM core: what each check-in message and command report does, and the rules for the
//! command queue. Knows no HTTP and no SQL: it talks to a [`Store`] and returns typed answers.
//!
//! The caller (the HTTP layer) has already verified the device's identity certificate; the
//! service checks that the certificate belongs to the enrollment the message names.

pub mod ade;
pub mod admin_token;
pub mod admins;
pub mod audit;
pub mod ca;
mod checkin;
mod commands;
pub mod console_session;
pub mod devices;
pub mod enrollment;
mod error;
mod facts;
pub mod filevault;
pub mod fleet;
mod gauges;
pub mod golden_image_fetch;
pub mod golden_image_input;
pub mod golden_images;
mod group_members;
pub mod groups;
pub mod lockwipe;
pub mod parallels_activation;
pub mod profile;
pub mod recovery_lock;
pub mod recovery_lock_answers;
pub mod setup;

#[cfg(test)]
mod observer_tests;
#[cfg(test)]
mod redaction_tests;

pub use checkin::CheckinResponse;
pub use commands::{CommandDetails, EnqueueOutcome, enqueue_rules};
pub use error::ServiceError;

use crate::secrets::SecretBox;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};

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
    /// Rotate a Mac's FileVault recovery key this long after it was revealed (off: `None`).
    pub filevault_rotate_after_reveal: Option<std::time::Duration>,
}

/// Settings key holding the APNs topic of the configured push certificate.
pub const SETTING_PUSH_TOPIC: &str = "apns.topic";

/// Wakes devices that have new work (APNs). The service only announces; delivery, coalescing
/// and retries belong to the implementation.
pub trait Pusher: Send + Sync {
    /// A command was queued: wake the enrollments that have it. Must not block.
    fn command_enqueued(&self, command_uuid: &str);
}

/// Answers `GetToken` check-ins for one token service type (Apple, "Get Token"). The core
/// serves none itself: DEP's `com.apple.maid` is plugged in at start-up, so the service never
/// reaches up into a feature.
#[async_trait::async_trait]
pub trait TokenIssuer: Send + Sync {
    /// The `TokenServiceType` this issuer answers, e.g. `com.apple.maid`.
    fn service_type(&self) -> &str;
    /// The `TokenData` for the device with this serial number (if Russet knows it).
    async fn token(&self, serial: Option<&str>) -> Result<Vec<u8>, ServiceError>;
}

/// Why what a device should have may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChange {
    /// A channel enrolled or re-enrolled (TokenUpdate).
    Enrolled,
    /// What the Mac reports about itself changed (DeviceInformation, SecurityInfo, …).
    Facts,
    /// It joined or left a group.
    Membership,
}

/// Told when what a device should have may have changed, and of the command results a
/// feature asked for. Features that keep desired state (configuration profiles; later
/// FileVault, DDM) reconcile from it.
///
/// The core awaits each call before it answers the device, so what an observer queues (an
/// InstallProfile after a TokenUpdate, a ProfileList after an install) is there for the Mac's
/// next request: keep it short, and never fail the device's request — log instead. A plain
/// `Idle` or an answer to a command nobody asked about calls nothing.
#[async_trait::async_trait]
pub trait DeviceObserver: Send + Sync {
    async fn devices_changed(&self, device_ids: &[String], why: DeviceChange);

    /// A group was deleted: drop what was assigned to it (its former members hear
    /// `DeviceChange::Membership` right after).
    async fn group_deleted(&self, _name: &str, _actor: &str) {}

    /// Whether [`Self::command_result`] wants results of this request type.
    fn wants_results_of(&self, _request_type: &str) -> bool {
        false
    }

    /// Whether an acknowledged result of this request type, once [`Self::command_result`]
    /// has it, is a new fact about the Mac that filters read (inventory's SecurityInfo, apps,
    /// users): observers then hear `DeviceChange::Facts`, after every observer has the result.
    fn stores_facts_from(&self, _request_type: &str) -> bool {
        false
    }

    /// A device's result for a command of a wanted request type, already stored.
    async fn command_result(&self, _result: &CommandResultEvent) {}
}

/// Answers the `DeclarativeManagement` check-in (Apple's Declarative Device Management: the
/// `tokens`, `declaration-items`, `declaration/<type>/<identifier>` and `status` endpoints).
/// The DDM channel (`crate::ddm`) is plugged in at start; without one the core answers an
/// empty declaration set.
#[async_trait::async_trait]
pub trait DeclarativeChannel: Send + Sync {
    /// The answer to one request of this channel (the identity already checked). A JSON
    /// body, or an empty one (`status`); a refusal is a 4xx to the device, never a 401.
    async fn answer(
        &self,
        enrollment: &crate::protocol::Enrollment,
        endpoint: &str,
        data: Option<&[u8]>,
    ) -> Result<CheckinResponse, ServiceError>;
}

/// A message from a device that the core applied: a check-in, or a command report (`Idle`
/// included).
#[derive(Debug, Clone, Copy)]
pub struct AppliedMessage<'a> {
    pub kind: MessageKind<'a>,
    /// The channel that sent it, as the message names it.
    pub enrollment: &'a crate::protocol::Enrollment,
    /// The body as the device sent it (secrets and all: a recorder redacts what it keeps).
    pub raw: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind<'a> {
    /// A check-in message of this `MessageType`.
    Checkin { message_type: &'static str },
    /// A command report: Apple's `Status`, and the `CommandUUID` (absent for `Idle`).
    Report {
        status: &'static str,
        command_uuid: Option<&'a str>,
    },
}

/// Told of every message the core applied, before the device gets its answer (webhooks keep
/// an event in their outbox). Unlike a [`DeviceObserver`], a failure fails the device's
/// request: the device sends the message again, so nothing applied goes unrecorded (at least
/// once). It must only write, never wait for anything outside the database.
#[async_trait::async_trait]
pub trait MessageRecorder: Send + Sync {
    async fn record(&self, message: &AppliedMessage<'_>) -> Result<(), ServiceError>;
}

/// A command result as an observer gets it.
#[derive(Debug, Clone)]
pub struct CommandResultEvent {
    /// The channel that answered: the device, or a user channel (`UDID:UserID`).
    pub enrollment_id: String,
    pub device_id: String,
    pub command_uuid: String,
    pub request_type: String,
    pub status: crate::store::ResultStatus,
    /// The report plist as the device sent it (shared: several observers may keep it).
    pub raw: Arc<[u8]>,
}

pub struct MdmService {
    store: Arc<dyn Store>,
    vault: Arc<SecretBox>,
    options: ServiceOptions,
    pusher: Option<Arc<dyn Pusher>>,
    token_issuers: Vec<Arc<dyn TokenIssuer>>,
    /// Plugged in only when something records messages (`--webhook-url`): without one, a
    /// message costs no extra work.
    recorder: Option<Arc<dyn MessageRecorder>>,
    /// Held weakly: an observer (a feature's service) holds the core, and the core must not
    /// keep it alive in return.
    observers: RwLock<Vec<Weak<dyn DeviceObserver>>>,
    /// Identity certificate hash → device it is bound to. Bindings appear at Authenticate and
    /// go away with the device; remembering them saves a query on every request. A stale
    /// entry (device deleted on another node) only lets that device's own certificate reach
    /// a store that no longer knows the device, which answers "not enrolled".
    bindings: RwLock<HashMap<CertDigest, Box<str>>>,
    /// Failed admin tokens per client address (the admin API's rate limit).
    failed_tokens: admins::FailedTokens,
    /// The DDM channel, held weakly like the observers (it holds the core).
    declarative: RwLock<Option<Weak<dyn DeclarativeChannel>>>,
}

/// Bindings remembered at most; beyond that the cache starts over.
const MAX_CACHED_BINDINGS: usize = 200_000;

/// A certificate's SHA-256, as the key of the per-process caches of identities: 32 bytes
/// instead of its 64-character hex (an 80-byte allocation each). At 100k Macs the bindings
/// and the trusted-certificate cache held ~30 MB keyed by hex (docs/benchmarks.md, issue 19).
pub(crate) type CertDigest = [u8; 32];

/// The digest of a certificate named by its lowercase hex SHA-256 (`None` if it is not one).
pub(crate) fn cert_digest(sha256_hex: &str) -> Option<CertDigest> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(sha256_hex, &mut digest).ok()?;
    Some(digest)
}

impl MdmService {
    pub fn new(store: Arc<dyn Store>, vault: Arc<SecretBox>, options: ServiceOptions) -> Self {
        MdmService {
            store,
            vault,
            options,
            pusher: None,
            token_issuers: Vec::new(),
            recorder: None,
            observers: RwLock::new(Vec::new()),
            bindings: RwLock::new(HashMap::new()),
            failed_tokens: admins::FailedTokens::default(),
            declarative: RwLock::new(None),
        }
    }

    /// Is the certificate with this hash known to be bound to `device_id` (without a query)?
    pub(crate) fn cached_binding_is(&self, cert_hash: &str, device_id: &str) -> bool {
        cert_digest(cert_hash).is_some_and(|key| {
            self.bindings
                .read()
                .is_ok_and(|map| map.get(&key).is_some_and(|d| **d == *device_id))
        })
    }

    pub(crate) fn remember_binding(&self, cert_hash: &str, device_id: &str) {
        let Some(key) = cert_digest(cert_hash) else {
            return;
        };
        if let Ok(mut map) = self.bindings.write() {
            if map.len() >= MAX_CACHED_BINDINGS {
                map.clear();
            }
            map.insert(key, device_id.into());
        }
    }

    pub fn with_pusher(mut self, pusher: Arc<dyn Pusher>) -> Self {
        self.pusher = Some(pusher);
        self
    }

    pub fn with_token_issuer(mut self, issuer: Arc<dyn TokenIssuer>) -> Self {
        self.token_issuers.push(issuer);
        self
    }

    pub fn with_recorder(mut self, recorder: Arc<dyn MessageRecorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Hand an applied message to the recorder, if one is plugged in.
    pub(crate) async fn record(&self, message: AppliedMessage<'_>) -> Result<(), ServiceError> {
        match &self.recorder {
            Some(r) => r.record(&message).await,
            None => Ok(()),
        }
    }

    pub(crate) fn records_messages(&self) -> bool {
        self.recorder.is_some()
    }

    /// Tell `observer` what happens to devices, for as long as it lives.
    pub fn observe(&self, observer: &Arc<dyn DeviceObserver>) {
        if let Ok(mut list) = self.observers.write() {
            list.push(Arc::downgrade(observer));
        }
    }

    /// Answer `DeclarativeManagement` check-ins with `channel`, for as long as it lives.
    pub fn serve_declarative(&self, channel: &Arc<dyn DeclarativeChannel>) {
        if let Ok(mut slot) = self.declarative.write() {
            *slot = Some(Arc::downgrade(channel));
        }
    }

    pub(crate) fn declarative_channel(&self) -> Option<Arc<dyn DeclarativeChannel>> {
        self.declarative.read().ok()?.as_ref()?.upgrade()
    }

    /// The observers still alive that `wants` (no allocation when none does: this runs for
    /// every stored command result).
    pub(crate) fn observers(
        &self,
        wants: impl Fn(&dyn DeviceObserver) -> bool,
    ) -> Vec<Arc<dyn DeviceObserver>> {
        self.observers
            .read()
            .map(|list| {
                list.iter()
                    .filter_map(Weak::upgrade)
                    .filter(|o| wants(o.as_ref()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether an observer answers `test` (no allocation: asked on every acknowledged result).
    fn any_observer(&self, test: impl Fn(&dyn DeviceObserver) -> bool) -> bool {
        self.observers
            .read()
            .map(|list| {
                list.iter()
                    .filter_map(Weak::upgrade)
                    .any(|o| test(o.as_ref()))
            })
            .unwrap_or(false)
    }

    /// Tell every observer that these devices' desired state may have changed.
    pub(crate) async fn devices_changed(&self, device_ids: &[String], why: DeviceChange) {
        if device_ids.is_empty() {
            return;
        }
        for o in self.observers(|_| true) {
            o.devices_changed(device_ids, why).await;
        }
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Write an audit entry (see [`audit::record`]).
    pub(crate) async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        Ok(audit::record(self.store.as_ref(), actor, action, target, detail).await?)
    }

    fn announce(&self, command_uuid: &str) {
        if let Some(p) = &self.pusher {
            p.command_enqueued(command_uuid);
        }
    }

    pub fn vault(&self) -> &Arc<SecretBox> {
        &self.vault
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}
