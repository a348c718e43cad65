//! Storage: one `Store` trait, two implementations (SQLite, PostgreSQL).
//!
//! Each method is one transaction, shaped after one protocol step (an `Authenticate`, a command
//! report plus the next command, an enqueue), so the service never needs to hold a transaction
//! open across its own logic, and a check-in costs one round of SQL.
//!
//! Times are Unix milliseconds (`i64`) in both databases. Secrets arrive here already sealed
//! (AES-256-GCM, see `crate::secrets`): the store never sees plaintext.

pub mod ade;
pub mod admin;
pub mod app_query;
pub mod console;
mod core_store;
pub mod ddm;
pub mod dep;
pub mod filevault;
pub mod fleet;
pub mod golden_images;
pub mod groups;
pub mod identity;
pub mod inventory;
pub mod parallels_activation;
mod postgres;
pub mod profile_states;
pub mod profiles;
pub mod push;
pub mod recovery_lock;
mod rows;
mod sqlite;
pub mod webhooks;

#[cfg(test)]
mod admin_upgrade_tests;
#[cfg(test)]
mod conformance;

pub use ade::{AdeEnrollment, AdeSetupClaim, AdeStore};
pub use admin::AdminStore;
pub use console::ConsoleStore;
pub use ddm::DdmStore;
pub use dep::DepStore;
pub use filevault::FileVaultStore;
pub use fleet::FleetStore;
pub use golden_images::GoldenImageStore;
pub use groups::GroupStore;
pub use identity::{
    ChallengeUse, ExpiringIdentity, IdentityStore, IssuedCertificate, LinkUse, NewEnrollLink,
    StoredCa,
};
pub use inventory::InventoryStore;
pub use parallels_activation::ParallelsActivationStore;
pub use postgres::PostgresStore;
pub use profile_states::ProfileStateStore;
pub use profiles::ProfileStore;
pub use push::{PushCertificateRecord, PushCsrKey, PushResultRecord, PushStore, PushTarget};
pub use recovery_lock::RecoveryLockStore;
pub use sqlite::SqliteStore;
pub use webhooks::WebhookStore;

use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The identity certificate is already bound to another enrollment.
    #[error("identity certificate is bound to another enrollment")]
    IdentityConflict,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite command report's own connection (`store/sqlite/inline.rs`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
}

/// Open the store named by a database URL (`sqlite://…` or `postgres://…`) and migrate it.
pub async fn open(database_url: &str) -> StoreResult<Arc<dyn Store>> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(database_url).await?))
    } else if database_url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(database_url).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL scheme (expected sqlite:// or postgres://): {}",
            database_url.split(':').next().unwrap_or("")
        )))
    }
}

/// Where a command stands on one enrollment's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum QueueStatus {
    /// Enqueued, never handed to the device. Only in this state can it be canceled.
    Pending,
    /// Handed to the device at least once; no result stored yet. May be handed out again.
    Sent,
    /// The device answered `NotNow`; re-sent on its next connection (session).
    NotNow,
    Acknowledged,
    Error,
    CommandFormatError,
    /// Canceled by an admin before delivery, or cleared by a re-enrollment (`Authenticate`).
    Canceled,
}

impl QueueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Pending => "Pending",
            QueueStatus::Sent => "Sent",
            QueueStatus::NotNow => "NotNow",
            QueueStatus::Acknowledged => "Acknowledged",
            QueueStatus::Error => "Error",
            QueueStatus::CommandFormatError => "CommandFormatError",
            QueueStatus::Canceled => "Canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Pending" => QueueStatus::Pending,
            "Sent" => QueueStatus::Sent,
            "NotNow" => QueueStatus::NotNow,
            "Acknowledged" => QueueStatus::Acknowledged,
            "Error" => QueueStatus::Error,
            "CommandFormatError" => QueueStatus::CommandFormatError,
            "Canceled" => QueueStatus::Canceled,
            _ => return None,
        })
    }

    /// Still waiting for a final result from the device.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            QueueStatus::Pending | QueueStatus::Sent | QueueStatus::NotNow
        )
    }
}

/// A connection pool's use: open connections, of which idle, and the most it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// Status a device reports for a command (the `Status` key of a report, minus `Idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultStatus {
    Acknowledged,
    Error,
    CommandFormatError,
    NotNow,
}

impl ResultStatus {
    /// Apple's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Acknowledged => "Acknowledged",
            ResultStatus::Error => "Error",
            ResultStatus::CommandFormatError => "CommandFormatError",
            ResultStatus::NotNow => "NotNow",
        }
    }

    pub fn queue_status(self) -> QueueStatus {
        match self {
            ResultStatus::Acknowledged => QueueStatus::Acknowledged,
            ResultStatus::Error => QueueStatus::Error,
            ResultStatus::CommandFormatError => QueueStatus::CommandFormatError,
            ResultStatus::NotNow => QueueStatus::NotNow,
        }
    }
}

/// Device-channel data from an `Authenticate` check-in.
#[derive(Debug, Clone)]
pub struct AuthenticateRecord {
    /// Device-channel enrollment ID: the UDID, or the EnrollmentID of a User Enrollment.
    pub device_id: String,
    /// "Device" or "UserEnrollmentDevice".
    pub enrollment_type: String,
    /// SHA-256 (lowercase hex) of the identity certificate DER that signed the message.
    pub cert_hash: String,
    /// Identity certificate `notAfter`, Unix ms (for expiry reports).
    pub cert_not_after: Option<i64>,
    pub topic: String,
    pub serial_number: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub product_name: Option<String>,
    /// The raw check-in plist, kept for support.
    pub raw: Vec<u8>,
    pub now: i64,
}

/// Data from a `TokenUpdate` check-in, for the device channel or a user channel.
#[derive(Debug, Clone)]
pub struct TokenUpdateRecord {
    /// Normalized enrollment ID (`UDID`, `UDID:UserID`, `EnrollmentID`, …).
    pub enrollment_id: String,
    /// Device-channel ID this enrollment belongs to (equal to `enrollment_id` for the device).
    pub device_id: String,
    /// "Device", "User", "SharedIPadUser", "UserEnrollmentDevice", "UserEnrollmentUser".
    pub enrollment_type: String,
    pub user_id: Option<String>,
    pub user_short_name: Option<String>,
    pub user_long_name: Option<String>,
    pub topic: String,
    /// APNs device token, raw bytes.
    pub token: Vec<u8>,
    pub push_magic: String,
    /// `UnlockToken`, sealed. Not sent by Macs; kept for iOS-family devices.
    pub unlock_token_sealed: Option<Vec<u8>>,
    pub awaiting_configuration: bool,
    pub now: i64,
}

/// A command report (`PUT /mdm/connect`) already decoded by the service.
#[derive(Debug, Clone)]
pub struct ReportRecord {
    pub enrollment_id: String,
    /// `None` for `Idle`.
    pub result: Option<CommandResultRecord>,
    /// Facts the Mac reported in a DeviceInformation result, stored on its device row.
    pub device_facts: Option<DeviceFacts>,
    pub now: i64,
}

/// What a Mac reported about itself (DeviceInformation `QueryResponses`). `None` = not reported
/// in this result; the stored value is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    pub pin_required_for_lock: Option<bool>,
    pub pin_required_for_erase: Option<bool>,
    pub is_apple_silicon: Option<bool>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub device_name: Option<String>,
}

/// A lock/wipe PIN to escrow together with its command.
#[derive(Debug, Clone)]
pub struct PinEscrowRecord {
    pub command_uuid: String,
    /// Device-channel ID the command is queued for.
    pub device_id: String,
    pub serial_number: Option<String>,
    /// `DeviceLock` or `EraseDevice`.
    pub request_type: String,
    pub pin_sealed: Vec<u8>,
    /// The admin (token name) who asked for it.
    pub issued_by: String,
    pub now: i64,
}

/// Which escrowed PINs to find: by serial number (survives re-enrollment under a new UDID),
/// by UDID, or both.
#[derive(Debug, Clone, Default)]
pub struct PinFilter {
    pub serial: Option<String>,
    pub udid: Option<String>,
}

impl PinFilter {
    pub fn udid(udid: &str) -> Self {
        PinFilter {
            serial: None,
            udid: Some(udid.to_string()),
        }
    }

    pub fn serial(serial: &str) -> Self {
        PinFilter {
            serial: Some(serial.to_string()),
            udid: None,
        }
    }
}

/// An escrowed PIN (still sealed) with the state of its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowedPin {
    pub id: i64,
    pub command_uuid: String,
    pub device_id: String,
    pub serial_number: Option<String>,
    pub request_type: String,
    pub pin_sealed: Vec<u8>,
    pub issued_by: String,
    pub created_at: i64,
    pub status: QueueStatus,
    pub delivered_at: Option<i64>,
    pub result_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct CommandResultRecord {
    pub command_uuid: String,
    pub status: ResultStatus,
    /// The whole report plist as the device sent it.
    pub raw: Vec<u8>,
}

/// What the store answers to a report.
#[derive(Debug, Clone, Default)]
pub struct ReportOutcome {
    /// The next command to hand to the device, already marked `Sent`.
    pub next: Option<DeliveredCommand>,
    /// The report named a command that is not (or no longer) open on this enrollment.
    pub unknown_command: bool,
    /// The result was stored: the request type of its command (features that act on results,
    /// such as the profile reconciler, are told without another query).
    pub stored_request_type: Option<String>,
    /// The enrollment does not exist or is disabled (checked out / re-authenticating).
    pub not_enrolled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredCommand {
    pub command_uuid: String,
    pub request_type: String,
    /// The full command plist (`{CommandUUID, Command: {RequestType, …}}`), ready to send —
    /// or sealed, when `payload_sealed` (the service opens it just before sending).
    pub payload: Vec<u8>,
    pub payload_sealed: bool,
}

/// A command to enqueue.
#[derive(Debug, Clone)]
pub struct NewCommand {
    pub command_uuid: String,
    pub request_type: String,
    pub payload: Vec<u8>,
    /// The payload is sealed because it carries a secret (a lock/wipe PIN).
    pub payload_sealed: bool,
    /// Higher first. `PRIORITY_URGENT` for DeviceLock / EraseDevice, `PRIORITY_NORMAL` otherwise.
    pub priority: i32,
    pub now: i64,
}

pub const PRIORITY_NORMAL: i32 = 0;
pub const PRIORITY_URGENT: i32 = 100;
/// Setup Assistant commands of an ADE Mac: before ordinary work, after lock and wipe.
pub const PRIORITY_SETUP: i32 = 50;
/// Configuration profiles (and the ProfileLists that verify them): after setup, before
/// ordinary work, so a new enrollment gets its configuration first.
pub const PRIORITY_PROFILES: i32 = 40;
/// Inventory (DeviceInformation, SecurityInfo, the app, certificate and user lists): after a
/// Mac's configuration, before an admin's ordinary commands.
pub const PRIORITY_INVENTORY: i32 = 20;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnqueueResult {
    pub enrollment_id: String,
    /// false when the enrollment is unknown (nothing was queued for it).
    pub queued: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub serial: Option<String>,
    pub udid: Option<String>,
    pub enrolled: Option<bool>,
    /// Return devices whose ID sorts after this cursor (the last ID of the previous page).
    pub cursor: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeviceView {
    pub udid: String,
    pub enrollment_type: String,
    pub serial_number: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub product_name: Option<String>,
    pub topic: Option<String>,
    /// True once a TokenUpdate arrived after the last Authenticate and no CheckOut since.
    pub enrolled: bool,
    pub awaiting_configuration: bool,
    /// Hex APNs token; whether a push is possible.
    pub push_token: Option<String>,
    pub has_push_magic: bool,
    pub token_update_count: i64,
    pub identity_cert_sha256: Option<String>,
    pub identity_not_after: Option<i64>,
    /// DeviceInformation `PINRequiredForDeviceLock` (macOS 11+), when reported.
    pub pin_required_for_lock: Option<bool>,
    /// DeviceInformation `PINRequiredForEraseDevice` (macOS 11+), when reported.
    pub pin_required_for_erase: Option<bool>,
    /// DeviceInformation `IsAppleSilicon` (macOS 12+), when reported.
    pub is_apple_silicon: Option<bool>,
    pub authenticated_at: Option<i64>,
    pub last_token_update_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub checked_out_at: Option<i64>,
    pub last_push_at: Option<i64>,
    pub last_push_result: Option<String>,
    /// Why APNs declared the token dead (no pushes until the next TokenUpdate).
    pub push_blocked: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// User channels of this device (macOS user enrollments).
    pub user_channels: Vec<UserChannelView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserChannelView {
    pub enrollment_id: String,
    pub user_id: Option<String>,
    pub user_short_name: Option<String>,
    pub user_long_name: Option<String>,
    pub enrolled: bool,
    pub last_seen_at: Option<i64>,
}

/// One command on one enrollment's queue, with its result if any.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueueEntryView {
    pub command_uuid: String,
    pub enrollment_id: String,
    pub request_type: String,
    pub status: QueueStatus,
    pub priority: i32,
    pub enqueued_at: i64,
    /// First time the command was handed to the device.
    pub delivered_at: Option<i64>,
    pub delivery_count: i64,
    pub not_now_count: i64,
    pub first_not_now_at: Option<i64>,
    pub result_at: Option<i64>,
    pub canceled_at: Option<i64>,
    /// The last report plist the device sent for this command (not serialized: the API
    /// renders it as JSON).
    #[serde(skip)]
    pub result: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandView {
    pub command_uuid: String,
    pub request_type: String,
    pub created_at: i64,
    pub payload: Vec<u8>,
    pub payload_sealed: bool,
    pub entries: Vec<QueueEntryView>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelOutcome {
    /// Enrollments on which the command was still `Pending` and is now `Canceled`.
    pub canceled: Vec<String>,
    /// Enrollments that already had it: (enrollment ID, first delivery time).
    pub already_delivered: Vec<(String, Option<i64>)>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    /// Who did it (the admin's name, or Russet's own doing).
    pub actor: String,
    /// The client address of the admin request that caused it (`None` for background work).
    pub address: Option<String>,
    /// e.g. `device.delete`, `command.enqueue`, `command.cancel`.
    pub action: String,
    /// What it was done to (a UDID, a command UUID).
    pub target: String,
    /// Free-form JSON with details.
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// A token of an admin that is not revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    pub id: i64,
    /// The admin's name.
    pub name: String,
    /// The admin's role as stored (`viewer`, `operator`, `admin`).
    pub role: String,
    /// SHA-256 of the token (the token itself is never stored).
    pub hash: Vec<u8>,
}

/// A named admin, active or revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRecord {
    pub id: i64,
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    pub created_at: i64,
    /// The admin who created it (`None` for the first admin and for migrated tokens).
    pub created_by: Option<String>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    /// Tokens it holds (0 once revoked).
    pub tokens: i64,
}

/// What [`admin::AdminStore::revoke_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    NotFound,
    AlreadyRevoked,
    /// Refused: it is the last active admin with the role `admin`.
    LastAdmin,
}

/// Everything Russet stores. Feature areas with their own trait (push, …) are supertraits, so
/// an `Arc<dyn Store>` reaches all of them.
#[async_trait]
pub trait Store:
    AdminStore
    + ConsoleStore
    + PushStore
    + IdentityStore
    + DepStore
    + AdeStore
    + GroupStore
    + ProfileStateStore
    + ProfileStore
    + InventoryStore
    + WebhookStore
    + FileVaultStore
    + FleetStore
    + RecoveryLockStore
    + GoldenImageStore
    + ParallelsActivationStore
    + DdmStore
    + Send
    + Sync
    + 'static
{
    /// "sqlite" or "postgres", for logs and `healthz`.
    fn backend(&self) -> &'static str;

    /// Cheap liveness probe of the database connection.
    async fn ping(&self) -> StoreResult<()>;

    /// Open queue entries (`Pending`, `Sent`, `NotNow`) counted per status, for `/metrics`
    /// (read at scrape time, never on the check-in path).
    async fn queue_depth(&self) -> StoreResult<Vec<(String, i64)>>;

    /// The connection pool's use right now (no query).
    fn pool_use(&self) -> PoolUse;

    // ---- device identity ----

    /// Device-channel ID the identity certificate (SHA-256 hex) is bound to, if any.
    async fn identity_owner(&self, cert_hash: &str) -> StoreResult<Option<String>>;

    // ---- check-in ----

    /// `Authenticate`, in one transaction: refuse (`IdentityConflict`) if the certificate is bound
    /// to another device; upsert the device; bind the certificate; mark every open queue entry of
    /// the device and its user channels `Canceled`; disable the device and its user channels
    /// until the next `TokenUpdate`.
    async fn authenticate(&self, rec: &AuthenticateRecord) -> StoreResult<()>;

    /// `TokenUpdate`: create the enrollment if it is a new user channel, store token, push magic,
    /// unlock token and awaiting-configuration, enable it and count the update.
    /// Returns false if the device (device-channel ID) is unknown (no `Authenticate` yet).
    async fn token_update(&self, rec: &TokenUpdateRecord) -> StoreResult<bool>;

    /// `CheckOut`: disable the enrollment (for the device channel, its user channels too).
    async fn check_out(&self, enrollment_id: &str, now: i64) -> StoreResult<()>;

    /// Escrow a (sealed) bootstrap token; `None` records that the device cleared it.
    /// Append-only: earlier tokens are kept.
    async fn set_bootstrap_token(
        &self,
        device_id: &str,
        sealed: Option<&[u8]>,
        now: i64,
    ) -> StoreResult<()>;

    /// The latest escrowed (sealed) bootstrap token of the device, if it has one now.
    async fn bootstrap_token(&self, device_id: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Is this enrollment known and enabled?
    async fn enrollment_enabled(&self, enrollment_id: &str) -> StoreResult<Option<bool>>;

    // ---- command loop ----

    /// A command report, in one transaction: update last-seen (an `Idle` also starts a new
    /// session), store the result on the queue entry, then pick the next command — priority,
    /// then FIFO, skipping commands this enrollment answered `NotNow` since its session began —
    /// and mark it `Sent`.
    async fn command_report(&self, rec: &ReportRecord) -> StoreResult<ReportOutcome>;

    // ---- admin ----

    /// Store the command once and queue it for every known target enrollment.
    async fn enqueue(
        &self,
        cmd: &NewCommand,
        enrollment_ids: &[String],
    ) -> StoreResult<Vec<EnqueueResult>>;

    /// Lock/wipe: in one transaction, escrow the sealed PIN and queue the command for the
    /// device channel — the PIN exists before anything can deliver the command. Returns false
    /// (nothing written) if the device has no enabled device-channel enrollment.
    async fn enqueue_escrowed(
        &self,
        cmd: &NewCommand,
        escrow: &PinEscrowRecord,
    ) -> StoreResult<bool>;

    /// Escrowed PINs matching the filter, newest first. Never deleted by anything.
    async fn escrowed_pins(&self, filter: &PinFilter) -> StoreResult<Vec<EscrowedPin>>;

    async fn list_devices(&self, filter: &DeviceFilter) -> StoreResult<Vec<DeviceView>>;
    async fn device(&self, device_id: &str) -> StoreResult<Option<DeviceView>>;

    /// The devices with these IDs (unknown ones left out), in ID order; any number of IDs.
    async fn devices_by_ids(&self, device_ids: &[String]) -> StoreResult<Vec<DeviceView>>;

    /// Forget a device: its enrollments, queue entries and identity bindings. Escrowed secrets
    /// (bootstrap tokens, unlock PINs) stay; PIN records keep a snapshot of their command state. Returns false if it was unknown.
    async fn delete_device(&self, device_id: &str) -> StoreResult<bool>;

    /// Queue and history of a device and its user channels, newest first.
    async fn device_commands(
        &self,
        device_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<QueueEntryView>>;

    async fn command(&self, command_uuid: &str) -> StoreResult<Option<CommandView>>;

    /// Cancel a command on every enrollment where it is still `Pending` (never delivered).
    /// Races with delivery have exactly one winner.
    async fn cancel_command(&self, command_uuid: &str, now: i64) -> StoreResult<CancelOutcome>;
}
