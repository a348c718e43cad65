//! After a Recovery Lock change reaches the Mac: [`RecoveryLockObserver`] hears the answers to
//! `SetRecoveryLock` and `VerifyRecoveryLock` and settles the escrow (`recovery_lock.rs` holds
//! the admin side). An acknowledged set is verified with the escrowed password (Apple:
//! `passcode.recovery.verify.yaml`, `PasswordVerified`); a refused one fails alone, and the
//! previous password stays the one in effect. Either way a SecurityInfo follows, so inventory's
//! `IsRecoveryLockEnabled` is current.

use super::{CommandResultEvent, DeviceChange, DeviceObserver, MdmService, ServiceError};
use crate::protocol::command::Command;
use crate::protocol::report::{decode_password_verified, decode_report};
use crate::store::recovery_lock::{EscrowedRecoveryLock, RecoveryLockKind, RecoveryLockState};
use crate::store::{NewCommand, PRIORITY_NORMAL, ResultStatus};
use crate::timefmt::now_ms;
use std::sync::Arc;

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
