//! FileVault personal recovery keys (PRKs): escrowed, sealed, kept forever, every reveal
//! audited — the unlock PINs' rules (`lockwipe.rs`) for the one key that opens a Mac's disk.
//!
//! A Mac with Russet's FileVault profile (`profiles/filevault.rs`) encrypts its PRK to the
//! escrow certificate and sends it in `SecurityInfo` (`FDE_PersonalRecoveryKeyCMS`); a
//! `RotateFileVaultKey` answer carries the new one (`RotateResult.EncryptedNewRecoveryKey`).
//! Each is opened with the escrow key, checked against Apple's shape, sealed and stored with
//! the envelope as received. Nothing is ever lost: a key that does not open is kept as
//! received with an alert, a new key only marks the older ones superseded, and unenrollment,
//! CheckOut or device deletion touch none of it (`migrations/*/0015_filevault.sql`).

use super::audit::Reveal;
use super::{CommandResultEvent, DeviceChange, DeviceObserver, MdmService, ServiceError};
use crate::protocol::builders::FileVaultKeyType;
use crate::protocol::command::Command;
use crate::protocol::filevault::FILEVAULT_PROFILE;
use crate::protocol::filevault::{
    decode_rotate_result, decode_security_info, is_recovery_key_shape, recovery_key_text,
};
use crate::secrets::Sealed;
use crate::store::filevault::{
    EscrowKeyRecord, FileVaultKeyRecord, KeyFilter, KeyState, RotationRecord,
};
use crate::store::profiles::TargetKind;
use crate::store::{PRIORITY_NORMAL, ResultStatus};
use crate::timefmt::now_ms;
use plist::{Dictionary, Value};
use russet_certs::escrow::{generate_escrow_key, open_envelope};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The actor Russet writes into the audit log for what it does by itself.
const RUSSET: &str = "russet";
/// The escrow certificate's common name (macOS shows it in the profile's details).
const ESCROW_COMMON_NAME: &str = "Russet FileVault Recovery Key Escrow";

/// An escrowed key, opened for an admin.
#[derive(Debug, Clone)]
pub struct RevealedKey {
    pub record: FileVaultKeyRecord,
    /// The PRK; `None` when it never opened (`undecryptable`: the envelope is kept). Redacted
    /// in `Debug`, wiped on drop.
    pub key: Option<secrecy::SecretString>,
}

/// What a rotation request came to.
#[derive(Debug, Clone)]
pub struct RotationRequested {
    pub command_uuid: String,
    pub device_id: String,
    pub serial_number: Option<String>,
}

/// A Mac's FileVault as the device view shows it.
#[derive(Debug, Clone, Default)]
pub struct FileVaultStatus {
    /// SecurityInfo `FDE_Enabled`, and when it was collected.
    pub enabled: Option<bool>,
    pub collected_at: Option<i64>,
    /// SecurityInfo `FDE_HasInstitutionalRecoveryKey`.
    pub institutional_key: Option<bool>,
    /// The key in effect (newest not superseded, opened), without its secret.
    pub current_key: Option<FileVaultKeyRecord>,
    /// Every key kept for the Mac (its serial number's, across UDIDs).
    pub keys_kept: usize,
    /// Keys that did not open: each is an alert.
    pub undecryptable: usize,
    pub rotations: Vec<RotationRecord>,
}

/// How an envelope from a Mac was taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escrowed {
    /// A key not seen before, stored with this state.
    New { id: String, state: KeyState },
    /// The key (or the very envelope) was already kept: only "reported again" is noted.
    Known { id: String },
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(bytes))
}

impl MdmService {
    /// The escrow key pair, made on first need (generation 1; two processes racing agree on
    /// whichever stored it first).
    pub async fn filevault_escrow_key(&self) -> Result<EscrowKeyRecord, ServiceError> {
        if let Some(k) = self.store.filevault_escrow_keys().await?.into_iter().next() {
            return Ok(k);
        }
        let (cert_der, key_der) = generate_escrow_key(ESCROW_COMMON_NAME)
            .map_err(|e| ServiceError::Internal(format!("making the FileVault escrow key: {e}")))?;
        let id = sha256_hex(&cert_der);
        let record = EscrowKeyRecord {
            generation: 1,
            key_sealed: self
                .vault
                .seal(Sealed::FileVaultEscrowKey { id: &id }, &key_der)?,
            id,
            cert_der,
            created_at: now_ms(),
        };
        if self.store.add_filevault_escrow_key(&record).await? {
            tracing::info!(id = %record.id, "FileVault escrow key made");
        }
        self.store
            .filevault_escrow_keys()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::Internal("the FileVault escrow key vanished".into()))
    }

    /// Takes in a PRK envelope a Mac sent: opened, checked, sealed, kept (see the module).
    pub(crate) async fn escrow_filevault_key(
        &self,
        device_id: &str,
        serial: Option<&str>,
        envelope: &[u8],
        source: &str,
        command_uuid: Option<&str>,
    ) -> Result<Escrowed, ServiceError> {
        let now = now_ms();
        let envelope_sha256 = sha256_hex(envelope);
        let filter = KeyFilter {
            serial: serial.map(str::to_string),
            udid: Some(device_id.to_string()),
        };
        let kept = self.store.filevault_keys(&filter).await?;
        // The Mac keeps its encrypted PRK and sends the same envelope at every SecurityInfo.
        if let Some(k) = kept.iter().find(|k| k.envelope_sha256 == envelope_sha256) {
            self.store.filevault_key_reported(&k.id, now).await?;
            return Ok(Escrowed::Known { id: k.id.clone() });
        }
        let mut opened = None;
        for escrow in self.store.filevault_escrow_keys().await? {
            let key_der = self.vault.open(
                Sealed::FileVaultEscrowKey { id: &escrow.id },
                &escrow.key_sealed,
            )?;
            if let Ok(bytes) = open_envelope(envelope, &escrow.cert_der, &key_der) {
                opened = Some((escrow.id, bytes));
                break;
            }
        }
        let text = opened
            .as_ref()
            .map(|(_, bytes)| recovery_key_text(bytes).unwrap_or_default());
        // A new envelope around a key already kept (re-encrypted): the same key.
        if let Some(text) = text.as_deref().filter(|t| !t.is_empty()) {
            for k in kept.iter().filter(|k| k.superseded_at.is_none()) {
                if self.open_key(k)?.as_deref() == Some(text) {
                    self.store.filevault_key_reported(&k.id, now).await?;
                    return Ok(Escrowed::Known { id: k.id.clone() });
                }
            }
        }
        let id = uuid::Uuid::new_v4().to_string().to_uppercase();
        let state = match text.as_deref() {
            None => KeyState::Undecryptable,
            Some(t) if is_recovery_key_shape(t) => KeyState::Escrowed,
            Some(_) => KeyState::Unexpected,
        };
        let key_sealed = match text.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => Some(
                self.vault
                    .seal(Sealed::FileVaultRecoveryKey { id: &id }, t.as_bytes())?,
            ),
            None => None,
        };
        let record = FileVaultKeyRecord {
            envelope_sealed: self
                .vault
                .seal(Sealed::FileVaultEnvelope { id: &id }, envelope)?,
            id: id.clone(),
            device_id: device_id.to_string(),
            serial_number: serial.map(str::to_string),
            state: state.as_str().to_string(),
            key_sealed,
            envelope_sha256: envelope_sha256.clone(),
            source: source.to_string(),
            command_uuid: command_uuid.map(str::to_string),
            escrow_key_id: opened.map(|(escrow_id, _)| escrow_id),
            received_at: now,
            last_reported_at: now,
            verified_at: None,
            superseded_at: None,
        };
        // The new key is stored before (in the same transaction as) the older ones are marked
        // superseded; a key that did not open replaces nothing.
        self.store
            .add_filevault_key(&record, state != KeyState::Undecryptable)
            .await?;
        let details = json!({
            "key_id": id, "serial": serial, "source": source, "state": state.as_str(),
            "command_uuid": command_uuid, "envelope_sha256": envelope_sha256,
        });
        match state {
            KeyState::Escrowed => {
                tracing::info!(device = %device_id, source, "FileVault recovery key escrowed");
                self.audit(RUSSET, "filevault.key.escrowed", device_id, details)
                    .await?;
            }
            // Alerts: an admin must look (the envelope is kept as received either way).
            KeyState::Undecryptable => {
                tracing::error!(
                    device = %device_id, source, envelope_sha256 = %envelope_sha256,
                    "ALERT: a FileVault recovery key did not open with any escrow key; kept as \
                     received"
                );
                self.audit(RUSSET, "filevault.key.undecryptable", device_id, details)
                    .await?;
            }
            KeyState::Unexpected => {
                tracing::error!(
                    device = %device_id, source,
                    "ALERT: a FileVault recovery key is not shaped like Apple's; kept, flagged"
                );
                self.audit(RUSSET, "filevault.key.unexpected", device_id, details)
                    .await?;
            }
        }
        Ok(Escrowed::New { id, state })
    }

    /// Russet's FileVault profile (the catalog's latest version) when it is assigned to
    /// `group`: an ADE setup whose Macs join that group installs it before `DeviceConfigured`,
    /// so FileVault is policy from the first login (and, with `ForceEnableInSetupAssistant`,
    /// on macOS 14+ turned on in Setup Assistant itself).
    pub(crate) async fn filevault_setup_profile(
        &self,
        group: &str,
    ) -> Result<Option<Vec<u8>>, ServiceError> {
        let Some(p) = self.store.profile(FILEVAULT_PROFILE).await? else {
            return Ok(None);
        };
        if p.deleted_at.is_some() {
            return Ok(None);
        }
        let assigned = self
            .store
            .profile_assignments(FILEVAULT_PROFILE)
            .await?
            .iter()
            .any(|a| {
                a.target.kind == TargetKind::Group && a.target.name.eq_ignore_ascii_case(group)
            });
        if !assigned {
            return Ok(None);
        }
        let Some(v) = self
            .store
            .profile_version(FILEVAULT_PROFILE, p.latest_version)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.vault.open(
            Sealed::ProfileVersion {
                identifier: FILEVAULT_PROFILE,
                version: v.version,
            },
            &v.body_sealed,
        )?))
    }

    /// Every key kept for a Mac: its serial number's (across UDIDs) and its UDID's.
    async fn keys_of(
        &self,
        udid: &str,
        serial: Option<String>,
    ) -> Result<Vec<FileVaultKeyRecord>, ServiceError> {
        Ok(self
            .store
            .filevault_keys(&KeyFilter {
                serial,
                udid: Some(udid.to_string()),
            })
            .await?)
    }

    fn open_key(&self, k: &FileVaultKeyRecord) -> Result<Option<String>, ServiceError> {
        let Some(sealed) = &k.key_sealed else {
            return Ok(None);
        };
        let bytes = self
            .vault
            .open(Sealed::FileVaultRecoveryKey { id: &k.id }, sealed)?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ServiceError::Secret(crate::secrets::SecretError::Malformed))
    }

    /// Every key kept for a serial number or UDID, newest first, opened, even after the device
    /// was deleted or re-enrolled under a new UDID. Audited before anything is opened.
    pub async fn reveal_filevault_keys(
        &self,
        filter: &KeyFilter,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Vec<RevealedKey>, ServiceError> {
        let who = Reveal {
            serial: filter.serial.as_deref(),
            udid: filter.udid.as_deref(),
            reason,
        };
        who.check()?;
        let records = self.store.filevault_keys(filter).await?;
        let ids = records.iter().map(|r| r.id.clone()).collect();
        self.audit_reveal(actor, "filevault.key.reveal", who, ("keys", ids))
            .await?;
        if let Some(after) = self.options.filevault_rotate_after_reveal
            && let Some(current) = Self::current_key(&records)
        {
            // The Mac that sent the key in effect rotates it (when it is still known).
            let due = now_ms().saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
            if self
                .store
                .schedule_filevault_rotation(&current.device_id, due)
                .await?
            {
                tracing::info!(device = %current.device_id, "FileVault key revealed: rotation scheduled");
            }
        }
        records
            .into_iter()
            .map(|record| {
                let key = self.open_key(&record)?.map(crate::secrets::secret_text);
                Ok(RevealedKey { record, key })
            })
            .collect()
    }

    /// The key a rotation unlocks with: the newest opened key not superseded.
    fn current_key(keys: &[FileVaultKeyRecord]) -> Option<&FileVaultKeyRecord> {
        keys.iter().find(|k| {
            k.superseded_at.is_none() && k.key_sealed.is_some() && k.state != "undecryptable"
        })
    }

    /// `RotateFileVaultKey` with the escrowed PRK as `FileVaultUnlock.Password` and the escrow
    /// certificate as `ReplyEncryptionCertificate`, the PRK sealed inside the queued command.
    /// The new key is escrowed when the Mac answers ([`FileVaultEscrow`]).
    /// The Mac may be named by UDID or serial number.
    pub async fn rotate_filevault_key(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<RotationRequested, ServiceError> {
        let udid = &self.known_udid(name).await?;
        let device = self
            .store
            .device(udid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {name}")))?;
        if !device.enrolled {
            return Err(ServiceError::Conflict(format!(
                "device {udid} is not enrolled: it would never receive the rotation"
            )));
        }
        let rotations = self.store.filevault_rotations(udid).await?;
        if let Some(p) = rotations.iter().find(|r| r.state == "pending") {
            return Err(ServiceError::Conflict(format!(
                "a rotation of this Mac's recovery key is already pending (command {})",
                p.command_uuid
            )));
        }
        let keys = self.keys_of(udid, device.serial_number.clone()).await?;
        let current = Self::current_key(&keys).ok_or_else(|| {
            ServiceError::Conflict(
                "no escrowed personal recovery key for this Mac: RotateFileVaultKey needs the \
                 current one (the Mac escrows it at the next login once the FileVault profile \
                 is installed)"
                    .into(),
            )
        })?;
        let prk = self
            .open_key(current)?
            .ok_or_else(|| ServiceError::Internal("the current key has no sealed value".into()))?;
        let escrow = self.filevault_escrow_key().await?;
        let mut unlock = Dictionary::new();
        unlock.insert("Password".into(), Value::String(prk));
        let command = Command::rotate_filevault_key(
            FileVaultKeyType::Personal,
            unlock,
            None,
            Some(escrow.cert_der),
        )?;
        let now = now_ms();
        self.store
            .add_filevault_rotation(&RotationRecord {
                command_uuid: command.command_uuid.clone(),
                device_id: udid.to_string(),
                serial_number: device.serial_number.clone(),
                key_id: current.id.clone(),
                requested_by: actor.to_string(),
                state: "pending".into(),
                error: None,
                created_at: now,
                finished_at: None,
            })
            .await?;
        // The payload carries the PRK: sealed like the lock PIN's.
        let queued = self
            .enqueue_internal(&command, &[udid.to_string()], PRIORITY_NORMAL, true)
            .await;
        if let Err(e) = &queued {
            self.store
                .finish_filevault_rotation(&command.command_uuid, false, Some("not queued"), now)
                .await?;
            return Err(ServiceError::Internal(format!(
                "queueing the rotation: {e}"
            )));
        }
        self.audit(
            actor,
            "filevault.rotate",
            udid,
            json!({"command_uuid": command.command_uuid, "serial": device.serial_number}),
        )
        .await?;
        Ok(RotationRequested {
            command_uuid: command.command_uuid,
            device_id: udid.to_string(),
            serial_number: device.serial_number,
        })
    }

    async fn known_udid(&self, name: &str) -> Result<String, ServiceError> {
        self.udid_of(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {name}")))
    }

    /// A Mac's FileVault (named by UDID or serial): what it reports, the key kept, rotations.
    pub async fn filevault_status(&self, name: &str) -> Result<FileVaultStatus, ServiceError> {
        let udid = &self.known_udid(name).await?;
        let device = self
            .store
            .device(udid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {udid}")))?;
        let inventory = self.store.inventory(udid).await?;
        let institutional_key = inventory
            .as_ref()
            .and_then(|i| i.security_json.as_deref())
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|j| j.get("FDE_HasInstitutionalRecoveryKey")?.as_bool());
        let keys = self.keys_of(udid, device.serial_number.clone()).await?;
        let mut current = Self::current_key(&keys).cloned();
        if let Some(k) = current.as_mut() {
            k.key_sealed = None;
            k.envelope_sealed = Vec::new();
        }
        Ok(FileVaultStatus {
            enabled: inventory.as_ref().and_then(|i| i.filevault_enabled),
            collected_at: inventory.as_ref().and_then(|i| i.security_at),
            institutional_key,
            current_key: current,
            keys_kept: keys.len(),
            undecryptable: keys.iter().filter(|k| k.state == "undecryptable").count(),
            rotations: self.store.filevault_rotations(udid).await?,
        })
    }

    /// A RotateFileVaultKey answer: the new key escrowed (older ones superseded), then the
    /// rotation marked done; an error keeps the old key current.
    async fn rotation_answered(&self, r: &CommandResultEvent) -> Result<(), ServiceError> {
        let Some(rotation) = self.store.filevault_rotation(&r.command_uuid).await? else {
            return Ok(());
        };
        let now = now_ms();
        if r.status != ResultStatus::Acknowledged {
            let why = crate::protocol::decode_report(&r.raw)
                .ok()
                .and_then(|rep| {
                    rep.error_chain.first().map(|e| {
                        format!(
                            "{} ({})",
                            e.localized_description.clone().unwrap_or_default(),
                            e.error_code
                        )
                    })
                })
                .unwrap_or_else(|| r.status.as_str().to_string());
            self.store
                .finish_filevault_rotation(&r.command_uuid, false, Some(&why), now)
                .await?;
            self.audit(
                RUSSET,
                "filevault.rotate.failed",
                &r.device_id,
                json!({"command_uuid": r.command_uuid, "error": why}),
            )
            .await?;
            return Ok(());
        }
        match decode_rotate_result(&r.raw)? {
            Some(envelope) => {
                self.escrow_filevault_key(
                    &r.device_id,
                    rotation.serial_number.as_deref(),
                    &envelope,
                    "RotateFileVaultKey",
                    Some(&r.command_uuid),
                )
                .await?;
                self.store
                    .finish_filevault_rotation(&r.command_uuid, true, None, now)
                    .await?;
            }
            None => {
                // Rotated, but the new key did not come back: ask SecurityInfo, which carries
                // it (the escrow profile makes the Mac keep it encrypted to Russet).
                tracing::error!(
                    device = %r.device_id, command = %r.command_uuid,
                    "ALERT: RotateFileVaultKey acknowledged without EncryptedNewRecoveryKey; \
                     asking SecurityInfo for the new key"
                );
                self.store
                    .finish_filevault_rotation(
                        &r.command_uuid,
                        true,
                        Some("acknowledged without EncryptedNewRecoveryKey"),
                        now,
                    )
                    .await?;
                let ask = Command::new("SecurityInfo", Dictionary::new())?;
                self.enqueue_internal(
                    &ask,
                    std::slice::from_ref(&r.device_id),
                    PRIORITY_NORMAL,
                    false,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// A SecurityInfo answer: its PRK envelope, if any, taken in.
    async fn security_info_answered(&self, r: &CommandResultEvent) -> Result<(), ServiceError> {
        if r.status != ResultStatus::Acknowledged || r.enrollment_id != r.device_id {
            return Ok(());
        }
        let report = decode_security_info(&r.raw)?;
        let Some(envelope) = report.recovery_key_envelope else {
            return Ok(());
        };
        let serial = match self.store.device(&r.device_id).await? {
            Some(d) => d.serial_number,
            None => None,
        }
        .or(report.device_key);
        self.escrow_filevault_key(
            &r.device_id,
            serial.as_deref(),
            &envelope,
            "SecurityInfo",
            Some(&r.command_uuid),
        )
        .await?;
        Ok(())
    }
}

/// Hears the answers that carry FileVault keys (whoever asked for them: inventory's
/// SecurityInfo, a rotation) and escrows them; asks SecurityInfo again, backing off, while a
/// Mac with Russet's FileVault profile owes its key.
pub struct FileVaultEscrow {
    core: Arc<MdmService>,
    /// The first re-ask's delay; each next one doubles, up to [`MAX_RETRY`].
    retry: Duration,
}

/// The longest wait between two re-asks of a Mac that owes its key.
pub const MAX_RETRY: Duration = Duration::from_secs(24 * 3600);
/// Re-asks queued per sweep at most (the rest are due at the next).
const ASKS_PER_SWEEP: u32 = 1000;

impl FileVaultEscrow {
    pub fn new(core: Arc<MdmService>, retry: Duration) -> Self {
        FileVaultEscrow { core, retry }
    }

    /// The wait after the `attempts`-th ask: the retry doubled per attempt, at most a day (or
    /// the retry, when that is longer).
    fn backoff(&self, attempts: i64) -> i64 {
        let shift = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        let wait = self.retry.saturating_mul(1u32 << shift.min(20));
        i64::try_from(wait.min(MAX_RETRY.max(self.retry)).as_millis()).unwrap_or(i64::MAX)
    }

    /// Whether Russet waits for this Mac's key: its FileVault profile is (being) installed on
    /// the Mac and no key that opened is current.
    async fn owes_key(&self, device_id: &str) -> Result<bool, ServiceError> {
        let store = &self.core.store;
        let profile_on = store
            .profile_states_of_devices(&[device_id.to_string()])
            .await?
            .iter()
            .any(|p| {
                p.identifier == FILEVAULT_PROFILE
                    && p.enrollment_id == device_id
                    && matches!(p.state.as_str(), "installing" | "verified")
            });
        if !profile_on {
            return Ok(false);
        }
        let serial = store.device(device_id).await?.and_then(|d| d.serial_number);
        let keys = self.core.keys_of(device_id, serial).await?;
        Ok(MdmService::current_key(&keys).is_none())
    }

    /// After a SecurityInfo answer: a Mac that still owes its key gets a re-ask scheduled (the
    /// sweep keeps one that exists); one that does not, none.
    async fn follow_up(&self, device_id: &str) -> Result<(), ServiceError> {
        let store = &self.core.store;
        // Reads only, unless something changes (every Mac answers SecurityInfo daily).
        let ask = store.filevault_ask(device_id).await?;
        match (self.owes_key(device_id).await?, ask) {
            (false, Some(_)) => store.clear_filevault_ask(device_id).await?,
            (true, None) => {
                store
                    .set_filevault_ask(device_id, 0, now_ms().saturating_add(self.backoff(1)))
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Queues the rotations scheduled after a reveal that are due. A Mac that cannot rotate
    /// now (one pending, no key, unenrolled) is logged and dropped: the reveal's audit entry
    /// tells the admin, who may rotate by hand. How many were queued.
    pub async fn rotate_due(&self, now: i64) -> Result<usize, ServiceError> {
        let store = &self.core.store;
        let mut queued = 0;
        for device_id in store.filevault_rotations_due(now, ASKS_PER_SWEEP).await? {
            match self.core.rotate_filevault_key(&device_id, RUSSET).await {
                Ok(_) => queued += 1,
                Err(e) => tracing::warn!(
                    device = %device_id, error = %e,
                    "FileVault rotation after a reveal not queued"
                ),
            }
            store.clear_filevault_rotation_due(&device_id).await?;
        }
        Ok(queued)
    }

    /// Queues SecurityInfo for the Macs whose re-ask is due, and schedules the next one of
    /// each; a Mac that no longer owes a key (or is gone) is dropped. How many were asked.
    pub async fn ask_due(&self, now: i64) -> Result<usize, ServiceError> {
        let store = &self.core.store;
        let mut asked = 0;
        for (device_id, attempts) in store.filevault_asks_due(now, ASKS_PER_SWEEP).await? {
            if !self.owes_key(&device_id).await? {
                store.clear_filevault_ask(&device_id).await?;
                continue;
            }
            let ask = Command::new("SecurityInfo", Dictionary::new())?;
            let queued = self
                .core
                .enqueue_internal(
                    &ask,
                    std::slice::from_ref(&device_id),
                    PRIORITY_NORMAL,
                    false,
                )
                .await?;
            if !queued.iter().any(|q| q.queued) {
                store.clear_filevault_ask(&device_id).await?;
                continue;
            }
            let attempts = attempts + 1;
            store
                .set_filevault_ask(
                    &device_id,
                    attempts,
                    now.saturating_add(self.backoff(attempts + 1)),
                )
                .await?;
            asked += 1;
        }
        Ok(asked)
    }
}

/// Runs [`FileVaultEscrow::ask_due`] every minute (or every retry, when shorter) until shutdown.
pub fn spawn_sweeper(
    escrow: Arc<FileVaultEscrow>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let every = escrow
        .retry
        .min(Duration::from_secs(60))
        .max(Duration::from_millis(200));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
            match escrow.ask_due(now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    asked = n,
                    "FileVault: SecurityInfo asked again of Macs owing their key"
                ),
                Err(e) => tracing::error!(error = %e, "FileVault re-ask sweep failed"),
            }
            match escrow.rotate_due(now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "FileVault: keys rotated after a reveal"),
                Err(e) => tracing::error!(error = %e, "FileVault rotation sweep failed"),
            }
        }
    })
}

#[async_trait::async_trait]
impl DeviceObserver for FileVaultEscrow {
    async fn devices_changed(&self, _device_ids: &[String], _why: DeviceChange) {}

    fn wants_results_of(&self, request_type: &str) -> bool {
        matches!(request_type, "SecurityInfo" | "RotateFileVaultKey")
    }

    async fn command_result(&self, r: &CommandResultEvent) {
        let done = match r.request_type.as_str() {
            "SecurityInfo" if r.status == ResultStatus::Acknowledged => {
                match self.core.security_info_answered(r).await {
                    Ok(()) => self.follow_up(&r.device_id).await,
                    Err(e) => Err(e),
                }
            }
            "RotateFileVaultKey" => self.core.rotation_answered(r).await,
            _ => Ok(()),
        };
        // Never fails the Mac's request; the answer is stored, so nothing is lost with it.
        if let Err(e) = done {
            tracing::error!(
                device = %r.device_id, command = %r.command_uuid, error = %e,
                "ALERT: a FileVault answer could not be escrowed"
            );
        }
    }
}
