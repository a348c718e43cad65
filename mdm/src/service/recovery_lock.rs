//! Recovery Lock (Apple silicon, macOS 11.5+): set, rotate and clear the password that guards
//! a Mac's recoveryOS, with every password escrowed before the command exists.
//!
//! The shape is lock/wipe's (`lockwipe.rs`): the password is sealed and written to the escrow
//! table in the same store transaction that queues the `SetRecoveryLock`, whose payload is
//! stored sealed too, and only after the commit is the Mac woken. Apple's command needs the
//! current password to change or clear a set one (`CurrentPassword`, DM
//! `passcode.recovery.set.yaml`), so the escrow is also how Russet rotates: the password in
//! effect is the newest one the Mac acknowledged that did not fail. When the Mac acknowledges,
//! [`RecoveryLockObserver`] asks it to verify the new password (`VerifyRecoveryLock`, DM
//! `passcode.recovery.verify.yaml`) and records the answer. Escrowed passwords are never
//! deleted; every reveal is audited.

use super::{CommandResultEvent, DeviceChange, DeviceObserver, MdmService, ServiceError};
use crate::filter::compare_versions;
use crate::protocol::command::Command;
use crate::protocol::report::{decode_password_verified, decode_report};
use crate::secrets::Sealed;
use crate::store::recovery_lock::{
    EscrowedRecoveryLock, RecoveryLockEscrow, RecoveryLockKind, RecoveryLockState,
};
use crate::store::{DeviceView, NewCommand, PRIORITY_NORMAL, PinFilter, QueueStatus, ResultStatus};
use crate::timefmt::now_ms;
use openssl::rand::rand_bytes;
use serde_json::json;
use std::cmp::Ordering;
use std::sync::Arc;

/// Apple: `SetRecoveryLock` and `VerifyRecoveryLock` were introduced in macOS 11.5.
pub const MIN_OS_VERSION: &str = "11.5";

/// Generated passwords: capitals and digits without 0/O and 1/I, so a person can read one off
/// a screen and type it in recoveryOS on any keyboard layout. 32 symbols, so 5 random bits
/// pick one without modulo bias.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const GROUPS: usize = 4;
const GROUP_LEN: usize = 5;
/// A given password: long enough to be worth escrowing, short enough to type.
const MIN_LEN: usize = 8;
const MAX_LEN: usize = 64;

/// A `SetRecoveryLock` that was escrowed and queued. The password is not in it: only admins
/// with `key.reveal` see escrowed passwords (an operator may set one, not read it).
#[derive(Debug, Clone)]
pub struct RecoveryLockIssued {
    pub command_uuid: String,
    pub udid: String,
    pub serial_number: Option<String>,
    pub kind: RecoveryLockKind,
    /// The change carries the password in effect (`CurrentPassword`): a rotation or a clear.
    pub replaces_current: bool,
    pub generated: bool,
}

/// One Mac of a group set: queued, or why not.
#[derive(Debug, Clone)]
pub struct GroupMemberOutcome {
    pub udid: String,
    pub result: Result<RecoveryLockIssued, String>,
}

/// An escrowed password, opened for an admin.
#[derive(Debug, Clone)]
pub struct RevealedRecoveryLock {
    pub record: EscrowedRecoveryLock,
    /// Empty for a clear.
    pub password: String,
}

/// What a reveal shows: the Mac as it is now (when it still exists) and every password.
#[derive(Debug, Clone)]
pub struct RecoveryLockReveal {
    pub device: Option<DeviceView>,
    /// SecurityInfo `IsRecoveryLockEnabled`, as inventory last stored it.
    pub recovery_lock_enabled: Option<bool>,
    pub passwords: Vec<RevealedRecoveryLock>,
}

/// Twenty symbols from the CSPRNG in four groups of five (`ABCDE-FGHJK-…`): 100 bits.
pub fn generate_password() -> Result<String, ServiceError> {
    let mut bytes = [0u8; GROUPS * GROUP_LEN];
    rand_bytes(&mut bytes).map_err(crate::secrets::SecretError::from)?;
    let symbols: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    Ok(symbols
        .chunks(GROUP_LEN)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// A password an admin chose: printable ASCII (recoveryOS offers a plain keyboard), no
/// leading or trailing space, 8 to 64 characters. The message never repeats the password.
pub fn check_password(password: &str) -> Result<(), ServiceError> {
    let printable = password.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if !printable {
        return Err(ServiceError::BadRequest(
            "password must be printable ASCII (letters, digits, punctuation, spaces)".into(),
        ));
    }
    if password.trim() != password {
        return Err(ServiceError::BadRequest(
            "password must not start or end with a space".into(),
        ));
    }
    if !(MIN_LEN..=MAX_LEN).contains(&password.len()) {
        return Err(ServiceError::BadRequest(format!(
            "password must be {MIN_LEN} to {MAX_LEN} characters long (omit it for a random one; \
             use clear to remove Recovery Lock)"
        )));
    }
    Ok(())
}

/// Refuse a Mac that reported it cannot take Recovery Lock; a Mac that did not say yet is
/// given the benefit of the doubt (it answers the command with an Error if it can't).
fn check_eligible(device: &DeviceView) -> Result<(), ServiceError> {
    if device.is_apple_silicon == Some(false) {
        return Err(ServiceError::Refused(format!(
            "{} is an Intel Mac (IsAppleSilicon false): Recovery Lock needs Apple silicon",
            device.udid
        )));
    }
    if let Some(v) = &device.os_version
        && compare_versions(v, MIN_OS_VERSION) == Ordering::Less
    {
        return Err(ServiceError::Refused(format!(
            "{} runs macOS {v}: Recovery Lock needs macOS {MIN_OS_VERSION} or later",
            device.udid
        )));
    }
    Ok(())
}

/// The Mac has taken this change (its acknowledgement may not have reached the observer).
fn applied(r: &EscrowedRecoveryLock) -> bool {
    r.acknowledged_at.is_some() || r.queue_status == Some(QueueStatus::Acknowledged)
}

/// The first lines of an ErrorChain, for the escrow's `failure` (Apple's text, no secret).
fn failure_text(raw: &[u8], status: ResultStatus) -> String {
    let chain = decode_report(raw)
        .map(|r| {
            r.error_chain
                .iter()
                .map(|e| {
                    let text = e
                        .us_english_description
                        .as_deref()
                        .or(e.localized_description.as_deref())
                        .unwrap_or("");
                    format!(
                        "{} {}: {text}",
                        e.error_domain.as_deref().unwrap_or(""),
                        e.error_code
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let mut text = format!("the Mac answered {}", status.as_str());
    if !chain.is_empty() {
        text.push_str(": ");
        text.push_str(&chain);
    }
    text.chars().take(1000).collect()
}

impl MdmService {
    /// `SetRecoveryLock` with a new password (random unless given) for a Mac named by UDID or
    /// serial number; the password in effect goes along as `CurrentPassword`.
    pub async fn set_recovery_lock(
        &self,
        device: &str,
        password: Option<String>,
        actor: &str,
    ) -> Result<RecoveryLockIssued, ServiceError> {
        let (password, generated) = match password {
            Some(p) => {
                check_password(&p)?;
                (p, false)
            }
            None => (generate_password()?, true),
        };
        let device = self.recovery_lock_target(device).await?;
        self.change_recovery_lock(&device, RecoveryLockKind::Set, &password, generated, actor)
            .await
    }

    /// `SetRecoveryLock` with an empty `NewPassword` (Apple: clears the lock) and the password
    /// in effect.
    pub async fn clear_recovery_lock(
        &self,
        device: &str,
        actor: &str,
    ) -> Result<RecoveryLockIssued, ServiceError> {
        let device = self.recovery_lock_target(device).await?;
        self.change_recovery_lock(&device, RecoveryLockKind::Clear, "", false, actor)
            .await
    }

    /// A random password for every Mac of a group, each escrowed on its own; a Mac that can't
    /// take one now is reported, not fatal.
    pub async fn set_recovery_lock_group(
        &self,
        group: &str,
        actor: &str,
    ) -> Result<Vec<GroupMemberOutcome>, ServiceError> {
        let udids = self.group_devices(group).await?;
        let mut outcomes = Vec::with_capacity(udids.len());
        for udid in udids {
            let result = match self.set_recovery_lock(&udid, None, actor).await {
                Ok(issued) => Ok(issued),
                Err(
                    e @ (ServiceError::Store(_)
                    | ServiceError::Secret(_)
                    | ServiceError::Internal(_)),
                ) => return Err(e),
                Err(e) => Err(e.to_string()),
            };
            outcomes.push(GroupMemberOutcome { udid, result });
        }
        let queued = outcomes.iter().filter(|o| o.result.is_ok()).count();
        self.audit(
            actor,
            "recovery_lock.set_group",
            group,
            json!({"devices": outcomes.len(), "queued": queued}),
        )
        .await?;
        Ok(outcomes)
    }

    /// Every escrowed password of a serial number or UDID, newest first, even after the
    /// device was deleted. Each reveal is audited (which commands, never the passwords).
    pub async fn reveal_recovery_lock_passwords(
        &self,
        filter: &PinFilter,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<RecoveryLockReveal, ServiceError> {
        if filter.serial.is_none() && filter.udid.is_none() {
            return Err(ServiceError::BadRequest("give serial or udid".into()));
        }
        let records = self.store.recovery_lock_passwords(filter).await?;
        let target = filter
            .serial
            .clone()
            .or_else(|| filter.udid.clone())
            .unwrap_or_default();
        self.audit(
            actor,
            "recovery_lock.reveal",
            &target,
            json!({
                "serial": filter.serial, "udid": filter.udid, "reason": reason,
                "commands": records.iter().map(|r| r.command_uuid.clone()).collect::<Vec<_>>(),
            }),
        )
        .await?;
        let udid = filter
            .udid
            .clone()
            .or_else(|| records.first().map(|r| r.device_id.clone()));
        let (device, recovery_lock_enabled) = match udid {
            Some(u) => {
                let inventory = self.store.inventory(&u).await?;
                (
                    self.store.device(&u).await?,
                    inventory.and_then(|i| i.recovery_lock_enabled),
                )
            }
            None => (None, None),
        };
        let passwords = records
            .into_iter()
            .map(|record| {
                let password = self.open_recovery_lock_password(&record)?;
                Ok(RevealedRecoveryLock { record, password })
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(RecoveryLockReveal {
            device,
            recovery_lock_enabled,
            passwords,
        })
    }

    fn open_recovery_lock_password(
        &self,
        record: &EscrowedRecoveryLock,
    ) -> Result<String, ServiceError> {
        let bytes = self.vault.open(
            Sealed::RecoveryLockPassword {
                command_uuid: &record.command_uuid,
            },
            &record.password_sealed,
        )?;
        String::from_utf8(bytes)
            .map_err(|_| ServiceError::Secret(crate::secrets::SecretError::Malformed))
    }

    /// The enrolled Mac a Recovery Lock change is for, if it can take one.
    async fn recovery_lock_target(&self, name: &str) -> Result<DeviceView, ServiceError> {
        let udid = self.udid_of(name).await?.ok_or_else(|| {
            ServiceError::NotFound(format!("no device with the UDID or serial number {name}"))
        })?;
        let device = self
            .store
            .device(&udid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {udid}")))?;
        if !device.enrolled {
            return Err(ServiceError::Conflict(format!(
                "device {udid} is not enrolled (checked out or re-enrolling): it would never \
                 receive the command"
            )));
        }
        check_eligible(&device)?;
        Ok(device)
    }

    /// The password the Mac has now, by the escrow (None: no lock set by Russet, or cleared).
    /// Refuses while an earlier change is still on its way: it would run first, and this one
    /// would carry the wrong `CurrentPassword`. An earlier change that never reached the Mac
    /// (canceled by a re-enrollment, or gone with its queue) is marked failed here.
    async fn password_in_effect(&self, udid: &str) -> Result<Option<String>, ServiceError> {
        let history = self
            .store
            .recovery_lock_passwords(&PinFilter::udid(udid))
            .await?;
        for r in &history {
            if r.state != RecoveryLockState::Pending || applied(r) {
                continue;
            }
            match r.queue_status {
                Some(s) if s.is_open() => {
                    return Err(ServiceError::Conflict(format!(
                        "an earlier Recovery Lock change (command {}) has not reached the Mac \
                         yet; try again once it did",
                        r.command_uuid
                    )));
                }
                status => {
                    let why = match status {
                        Some(s) => {
                            format!("the command ended {} before the Mac took it", s.as_str())
                        }
                        None => "the command left the queue before the Mac took it".to_string(),
                    };
                    self.store
                        .recovery_lock_settled(
                            &r.command_uuid,
                            RecoveryLockState::Failed,
                            Some(&why),
                            now_ms(),
                        )
                        .await?;
                }
            }
        }
        let current = history.iter().find(|r| {
            applied(r)
                && matches!(
                    r.state,
                    RecoveryLockState::Pending | RecoveryLockState::Verified
                )
        });
        match current {
            Some(r) if r.kind == RecoveryLockKind::Set => {
                Ok(Some(self.open_recovery_lock_password(r)?))
            }
            _ => Ok(None),
        }
    }

    /// Seal the new password and, in one store transaction, escrow it and queue the
    /// `SetRecoveryLock` (its payload sealed); then wake the Mac and audit.
    async fn change_recovery_lock(
        &self,
        device: &DeviceView,
        kind: RecoveryLockKind,
        new_password: &str,
        generated: bool,
        actor: &str,
    ) -> Result<RecoveryLockIssued, ServiceError> {
        let current = self.password_in_effect(&device.udid).await?;
        if kind == RecoveryLockKind::Clear && current.is_none() {
            return Err(ServiceError::Conflict(format!(
                "Russet has no Recovery Lock password in effect on {}: nothing to clear",
                device.udid
            )));
        }
        let command = Command::set_recovery_lock(new_password, current.as_deref())?;
        let now = now_ms();
        let escrow = RecoveryLockEscrow {
            command_uuid: command.command_uuid.clone(),
            device_id: device.udid.clone(),
            serial_number: device.serial_number.clone(),
            kind,
            password_sealed: self.vault.seal(
                Sealed::RecoveryLockPassword {
                    command_uuid: &command.command_uuid,
                },
                new_password.as_bytes(),
            )?,
            issued_by: actor.to_string(),
            now,
        };
        let queued = self
            .store
            .enqueue_recovery_lock(
                &NewCommand {
                    command_uuid: command.command_uuid.clone(),
                    request_type: command.request_type.clone(),
                    // Both passwords are in the payload: stored sealed like the escrow.
                    payload: self.seal_payload(&command.command_uuid, &command.to_plist())?,
                    payload_sealed: true,
                    priority: PRIORITY_NORMAL,
                    now,
                },
                &escrow,
            )
            .await?;
        if !queued {
            return Err(ServiceError::Conflict(format!(
                "device {} is not enrolled: it would never receive the command",
                device.udid
            )));
        }
        // Escrowed and committed: only now may a push make the Mac fetch it.
        self.announce(&command.command_uuid);
        self.audit(
            actor,
            "recovery_lock.set",
            &device.udid,
            json!({
                "command_uuid": command.command_uuid, "kind": kind.as_str(),
                "serial_number": device.serial_number, "generated": generated,
                "replaces_current": current.is_some(),
            }),
        )
        .await?;
        Ok(RecoveryLockIssued {
            command_uuid: command.command_uuid,
            udid: device.udid.clone(),
            serial_number: device.serial_number.clone(),
            kind,
            replaces_current: current.is_some(),
            generated,
        })
    }

    /// The Mac answered a `SetRecoveryLock` Russet escrowed.
    async fn recovery_lock_set_answered(
        &self,
        result: &CommandResultEvent,
        record: &EscrowedRecoveryLock,
    ) -> Result<(), ServiceError> {
        let now = now_ms();
        match result.status {
            ResultStatus::Acknowledged if record.kind == RecoveryLockKind::Set => {
                // Ask the Mac to confirm it has exactly the escrowed password.
                let password = self.open_recovery_lock_password(record)?;
                let verify = Command::verify_recovery_lock(&password)?;
                let queued = self
                    .store
                    .recovery_lock_acknowledged(
                        &record.command_uuid,
                        Some(&NewCommand {
                            command_uuid: verify.command_uuid.clone(),
                            request_type: verify.request_type.clone(),
                            payload: self.seal_payload(&verify.command_uuid, &verify.to_plist())?,
                            payload_sealed: true,
                            priority: PRIORITY_NORMAL,
                            now,
                        }),
                        now,
                    )
                    .await?;
                if queued {
                    self.announce(&verify.command_uuid);
                }
            }
            ResultStatus::Acknowledged => {
                // A clear has no password to verify: the acknowledgement is the answer, and a
                // SecurityInfo shows `IsRecoveryLockEnabled` false.
                self.store
                    .recovery_lock_acknowledged(&record.command_uuid, None, now)
                    .await?;
                self.store
                    .recovery_lock_settled(
                        &record.command_uuid,
                        RecoveryLockState::Verified,
                        None,
                        now,
                    )
                    .await?;
                self.ask_security_info(&record.device_id).await?;
            }
            ResultStatus::Error | ResultStatus::CommandFormatError => {
                // macOS refused it (e.g. a wrong CurrentPassword): the password in effect
                // stays the previous one.
                let why = failure_text(&result.raw, result.status);
                tracing::warn!(
                    device_id = %record.device_id,
                    command_uuid = %record.command_uuid,
                    failure = %why,
                    "the Mac refused SetRecoveryLock"
                );
                self.store
                    .recovery_lock_settled(
                        &record.command_uuid,
                        RecoveryLockState::Failed,
                        Some(&why),
                        now,
                    )
                    .await?;
            }
            ResultStatus::NotNow => {}
        }
        Ok(())
    }

    /// The Mac answered the `VerifyRecoveryLock` of an escrowed password.
    async fn recovery_lock_verify_answered(
        &self,
        result: &CommandResultEvent,
        record: &EscrowedRecoveryLock,
    ) -> Result<(), ServiceError> {
        let (state, failure) = match result.status {
            ResultStatus::NotNow => return Ok(()),
            ResultStatus::Acknowledged => match decode_password_verified(&result.raw) {
                Ok(true) => (RecoveryLockState::Verified, None),
                Ok(false) => (
                    RecoveryLockState::Failed,
                    Some(
                        "the Mac did not verify the escrowed password (PasswordVerified false)"
                            .to_string(),
                    ),
                ),
                Err(e) => (
                    RecoveryLockState::Failed,
                    Some(format!("VerifyRecoveryLock answer: {e}")),
                ),
            },
            status => (
                RecoveryLockState::Failed,
                Some(failure_text(&result.raw, status)),
            ),
        };
        if state == RecoveryLockState::Failed {
            tracing::warn!(
                device_id = %record.device_id,
                command_uuid = %record.command_uuid,
                failure = failure.as_deref().unwrap_or(""),
                "Recovery Lock password not verified"
            );
        }
        self.store
            .recovery_lock_settled(&record.command_uuid, state, failure.as_deref(), now_ms())
            .await?;
        self.ask_security_info(&record.device_id).await
    }

    /// Queue a SecurityInfo so inventory's `IsRecoveryLockEnabled` follows the change.
    async fn ask_security_info(&self, udid: &str) -> Result<(), ServiceError> {
        let command = Command::security_info()?;
        self.enqueue_internal(
            &command,
            std::slice::from_ref(&udid.to_string()),
            PRIORITY_NORMAL,
            false,
        )
        .await?;
        Ok(())
    }
}

/// Hears the answers to Recovery Lock commands and settles their escrow. Registered with the
/// core at start (`server`); the core holds observers weakly, so the server keeps it.
pub struct RecoveryLockObserver {
    core: Arc<MdmService>,
}

impl RecoveryLockObserver {
    pub fn new(core: Arc<MdmService>) -> Self {
        RecoveryLockObserver { core }
    }

    async fn handle(&self, result: &CommandResultEvent) -> Result<(), ServiceError> {
        // Recovery Lock is a device-channel command (Apple: `userchannel: false`).
        if result.enrollment_id != result.device_id {
            return Ok(());
        }
        let Some(record) = self
            .core
            .store
            .recovery_lock_of_command(&result.command_uuid)
            .await?
        else {
            // Not one Russet escrowed: nothing to settle.
            return Ok(());
        };
        match result.request_type.as_str() {
            "SetRecoveryLock" if record.command_uuid == result.command_uuid => {
                self.core.recovery_lock_set_answered(result, &record).await
            }
            "VerifyRecoveryLock" => {
                self.core
                    .recovery_lock_verify_answered(result, &record)
                    .await
            }
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl DeviceObserver for RecoveryLockObserver {
    async fn devices_changed(&self, _device_ids: &[String], _why: DeviceChange) {}

    fn wants_results_of(&self, request_type: &str) -> bool {
        matches!(request_type, "SetRecoveryLock" | "VerifyRecoveryLock")
    }

    async fn command_result(&self, result: &CommandResultEvent) {
        if let Err(e) = self.handle(result).await {
            tracing::error!(
                error = %e,
                device_id = %result.device_id,
                request_type = %result.request_type,
                "settling a Recovery Lock escrow failed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_four_groups_of_five_and_vary() {
        let all: std::collections::HashSet<String> = (0..200)
            .map(|_| generate_password().expect("password"))
            .collect();
        assert_eq!(all.len(), 200, "100 random bits never collide in 200 draws");
        for p in &all {
            let groups: Vec<&str> = p.split('-').collect();
            assert_eq!(groups.len(), 4, "{p}");
            assert!(groups.iter().all(|g| g.len() == 5), "{p}");
            assert!(
                groups
                    .iter()
                    .flat_map(|g| g.bytes())
                    .all(|b| ALPHABET.contains(&b)),
                "{p}"
            );
            assert!(!p.contains(['0', 'O', '1', 'I']), "{p}");
            assert!(
                check_password(p).is_ok(),
                "a generated password is a valid one"
            );
        }
    }

    #[test]
    fn given_passwords_are_printable_ascii_of_a_sensible_length() {
        for good in ["correct horse", "Tr0ub4dor&3", "12345678", &"x".repeat(64)] {
            assert!(check_password(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "short",
            " leading",
            "trailing ",
            "tab\tinside",
            "newline\n1234",
            "pässwort1",
            "パスワードです長い",
            &"x".repeat(65),
        ] {
            let err = check_password(bad).expect_err(bad);
            assert!(matches!(err, ServiceError::BadRequest(_)), "{bad}");
            if bad.len() >= 4 {
                assert!(
                    !err.to_string().contains(bad),
                    "the refusal never echoes it"
                );
            }
        }
    }

    fn mac(silicon: Option<bool>, os: Option<&str>) -> DeviceView {
        DeviceView {
            udid: "U".into(),
            enrollment_type: "Device".into(),
            serial_number: None,
            model: None,
            model_name: None,
            device_name: None,
            os_version: os.map(str::to_string),
            build_version: None,
            product_name: None,
            topic: None,
            enrolled: true,
            awaiting_configuration: false,
            push_token: None,
            has_push_magic: false,
            token_update_count: 0,
            identity_cert_sha256: None,
            identity_not_after: None,
            pin_required_for_lock: None,
            pin_required_for_erase: None,
            is_apple_silicon: silicon,
            authenticated_at: None,
            last_token_update_at: None,
            last_seen_at: None,
            checked_out_at: None,
            last_push_at: None,
            last_push_result: None,
            push_blocked: None,
            created_at: 0,
            updated_at: 0,
            user_channels: Vec::new(),
        }
    }

    #[test]
    fn intel_and_macos_before_11_5_are_refused_unknown_is_allowed() {
        assert!(check_eligible(&mac(Some(true), Some("15.1"))).is_ok());
        assert!(check_eligible(&mac(None, None)).is_ok());
        assert!(check_eligible(&mac(Some(true), Some("11.5"))).is_ok());
        assert!(check_eligible(&mac(Some(true), Some("11.10"))).is_ok());
        for refused in [mac(Some(false), Some("15.1")), mac(None, Some("11.4.1"))] {
            assert!(matches!(
                check_eligible(&refused),
                Err(ServiceError::Refused(_))
            ));
        }
    }
}
