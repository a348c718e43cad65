//! Recovery Lock (Apple silicon, macOS 11.5+): set, rotate and clear the password that guards
//! a Mac's recoveryOS, with every password escrowed before the command exists.
//!
//! The shape is lock/wipe's (`lockwipe.rs`): the password is sealed and written to the escrow
//! table in the same store transaction that queues the `SetRecoveryLock`, whose payload is
//! stored sealed too, and only after the commit is the Mac woken. Apple's command needs the
//! current password to change or clear a set one (`CurrentPassword`, DM
//! `passcode.recovery.set.yaml`), so the escrow is also how Russet rotates: the password in
//! effect is the newest one the Mac acknowledged that did not fail. When the Mac acknowledges,
//! `RecoveryLockObserver` (`recovery_lock_answers.rs`) asks it to verify the new password and
//! records the answer. Escrowed passwords are never deleted; every reveal is audited.

use super::audit::Reveal;
use super::{MdmService, ServiceError};
use crate::filter::compare_versions;
use crate::protocol::command::Command;
use crate::secrets::Sealed;
use crate::store::recovery_lock::{
    EscrowedRecoveryLock, RecoveryLockEscrow, RecoveryLockKind, RecoveryLockQueued,
    RecoveryLockState,
};
use crate::store::{DeviceView, NewCommand, PRIORITY_NORMAL, PinFilter, QueueStatus};
use crate::timefmt::now_ms;
use openssl::rand::rand_bytes;
use secrecy::SecretString;
use serde_json::json;
use std::cmp::Ordering;

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
    /// Empty for a clear. Redacted in `Debug`, wiped on drop.
    pub password: SecretString,
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

fn change_in_flight(command_uuid: &str) -> ServiceError {
    ServiceError::Conflict(format!(
        "an earlier Recovery Lock change (command {command_uuid}) has not reached the Mac yet; \
         try again once it did"
    ))
}

/// The Mac has taken this change (its acknowledgement may not have reached the observer).
fn applied(r: &EscrowedRecoveryLock) -> bool {
    r.acknowledged_at.is_some() || r.queue_status == Some(QueueStatus::Acknowledged)
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
        let who = Reveal {
            serial: filter.serial.as_deref(),
            udid: filter.udid.as_deref(),
            reason,
        };
        who.check()?;
        let records = self.store.recovery_lock_passwords(filter).await?;
        let commands = records.iter().map(|r| r.command_uuid.clone()).collect();
        self.audit_reveal(actor, "recovery_lock.reveal", who, ("commands", commands))
            .await?;
        // The Mac the passwords belong to; with none escrowed, the Mac with that serial (its
        // IsRecoveryLockEnabled tells whether a lock was set outside Russet).
        let mut udid = filter
            .udid
            .clone()
            .or_else(|| records.first().map(|r| r.device_id.clone()));
        if let (None, Some(serial)) = (&udid, &filter.serial) {
            udid = self.udid_of(serial).await.ok().flatten();
        }
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
                Ok(RevealedRecoveryLock {
                    record,
                    password: crate::secrets::secret_text(password),
                })
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(RecoveryLockReveal {
            device,
            recovery_lock_enabled,
            passwords,
        })
    }

    pub(super) fn open_recovery_lock_password(
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
                Some(s) if s.is_open() => return Err(change_in_flight(&r.command_uuid)),
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
        match queued {
            RecoveryLockQueued::Queued => {}
            RecoveryLockQueued::NotEnrolled => {
                return Err(ServiceError::Conflict(format!(
                    "device {} is not enrolled: it would never receive the command",
                    device.udid
                )));
            }
            RecoveryLockQueued::ChangeInFlight(earlier) => return Err(change_in_flight(&earlier)),
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
}

#[cfg(test)]
#[path = "recovery_lock_tests.rs"]
mod tests;
