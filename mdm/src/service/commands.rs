//! The command loop (`PUT /mdm/connect`) and the admin side of the queue.
//!
//! A command stays open until the device reports a result for it; handing it out again is
//! allowed. `NotNow` keeps it queued: it is skipped for the rest of that session and re-sent on
//! the device's next one (Apple, "Handling NotNow status responses").

use super::{AppliedMessage, DeviceChange, DeviceIdentity, MdmService, MessageKind, ServiceError};
use crate::protocol::command::Command;
use crate::protocol::report::{CommandReport, ReportStatus};
use crate::secrets::Sealed;
use crate::store::{
    CancelOutcome, CommandResultRecord, CommandView, DeliveredCommand, DeviceFacts, EnqueueResult,
    NewCommand, PRIORITY_NORMAL, PRIORITY_URGENT, ReportRecord, ResultStatus,
};
use crate::timefmt::{now_ms, rfc3339};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct EnqueueOutcome {
    pub command_uuid: String,
    pub request_type: String,
    pub results: Vec<EnqueueResult>,
}

/// Rules for commands enqueued through the generic endpoints.
pub mod enqueue_rules {
    /// DeviceLock and EraseDevice carry a PIN that must be escrowed before the command exists;
    /// they have their own endpoints, so the generic path refuses them (a lock or wipe that
    /// bypassed the vault could leave a Mac locked with a PIN nobody has).
    pub fn dedicated_endpoint(request_type: &str) -> Option<&'static str> {
        match request_type {
            "DeviceLock" => Some("POST /api/v1/devices/{udid}/lock"),
            "EraseDevice" => Some("POST /api/v1/devices/{udid}/wipe"),
            // Carries the escrowed recovery key, and its answer must be escrowed.
            "RotateFileVaultKey" => Some("POST /api/v1/devices/{udid}/filevault/rotate"),
            // Its passwords are escrowed, and the current one is needed to change it.
            "SetRecoveryLock" => Some("POST /api/v1/devices/{udid}/recovery-lock"),
            _ => None,
        }
    }

    /// Lock and wipe go to the front of the queue: a lost Mac must not first work through an
    /// inventory backlog.
    pub fn is_urgent(request_type: &str) -> bool {
        matches!(request_type, "DeviceLock" | "EraseDevice")
    }
}

impl MdmService {
    /// Store a command report and return the next command for the device, if any.
    pub async fn command_report(
        &self,
        identity: &DeviceIdentity,
        raw: &[u8],
        report: CommandReport,
    ) -> Result<Option<DeliveredCommand>, ServiceError> {
        let enrollment = &report.enrollment;
        self.require_bound(identity, &enrollment.device_id).await?;
        let status = match report.status {
            ReportStatus::Idle => None,
            ReportStatus::Acknowledged => Some(ResultStatus::Acknowledged),
            ReportStatus::Error => Some(ResultStatus::Error),
            ReportStatus::CommandFormatError => Some(ResultStatus::CommandFormatError),
            ReportStatus::NotNow => Some(ResultStatus::NotNow),
        };
        let result = status.map(|status| CommandResultRecord {
            // decode_report guarantees a CommandUUID on every non-Idle report.
            command_uuid: report.command_uuid.clone().unwrap_or_default(),
            status,
            raw: raw.to_vec(),
        });
        tracing::info!(
            enrollment_id = %enrollment.id,
            status = ?report.status,
            command_uuid = report.command_uuid.as_deref().unwrap_or(""),
            "command report"
        );
        let facts = device_facts(raw);
        let reported_facts = facts.is_some();
        let outcome = self
            .store
            .command_report(&ReportRecord {
                enrollment_id: enrollment.id.clone(),
                device_facts: facts,
                result,
                now: now_ms(),
            })
            .await?;
        if outcome.not_enrolled {
            return Err(ServiceError::NotEnrolled(enrollment.id.clone()));
        }
        if let Some(status) = status {
            crate::telemetry::command_result(
                outcome.stored_request_type.as_deref().unwrap_or("unknown"),
                status.as_str(),
            );
        }
        if let (Some(request_type), Some(status), Some(uuid)) = (
            &outcome.stored_request_type,
            status,
            report.command_uuid.as_deref(),
        ) {
            self.result_stored(enrollment, uuid, request_type, status, raw)
                .await;
        }
        // New facts may move the Mac into or out of smart groups: told once the observers
        // have stored what they keep of the answer, so a filter reads the new facts.
        let observers_stored_facts = status == Some(ResultStatus::Acknowledged)
            && outcome.stored_request_type.as_deref().is_some_and(|t| {
                self.any_observer(|o| o.wants_results_of(t) && o.stores_facts_from(t))
            });
        if reported_facts || observers_stored_facts {
            self.devices_changed(
                std::slice::from_ref(&enrollment.device_id),
                DeviceChange::Facts,
            )
            .await;
        }
        self.record(AppliedMessage {
            kind: MessageKind::Report {
                status: report.status.as_str(),
                command_uuid: report.command_uuid.as_deref(),
            },
            enrollment,
            raw,
        })
        .await?;
        if outcome.unknown_command {
            tracing::warn!(
                enrollment_id = %enrollment.id,
                command_uuid = report.command_uuid.as_deref().unwrap_or(""),
                "result for a command that is not open on this enrollment; ignored"
            );
        }
        match outcome.next {
            Some(mut cmd) if cmd.payload_sealed => {
                cmd.payload = self.open_payload(&cmd.command_uuid, &cmd.payload)?;
                cmd.payload_sealed = false;
                Ok(Some(cmd))
            }
            next => Ok(next),
        }
    }

    /// Hand a stored result to the observers that want its request type. Nothing is copied or
    /// called for a result nobody wants.
    async fn result_stored(
        &self,
        enrollment: &crate::protocol::Enrollment,
        command_uuid: &str,
        request_type: &str,
        status: ResultStatus,
        raw: &[u8],
    ) {
        let mut shared: Option<std::sync::Arc<[u8]>> = None;
        for o in self.observers(|o| o.wants_results_of(request_type)) {
            let raw = shared.get_or_insert_with(|| raw.into()).clone();
            o.command_result(&super::CommandResultEvent {
                enrollment_id: enrollment.id.clone(),
                device_id: enrollment.device_id.clone(),
                command_uuid: command_uuid.to_string(),
                request_type: request_type.to_string(),
                status,
                raw,
            })
            .await;
        }
    }

    /// A command payload sealed because it carries a secret, opened for delivery or display.
    pub fn open_payload(&self, command_uuid: &str, sealed: &[u8]) -> Result<Vec<u8>, ServiceError> {
        Ok(self
            .vault
            .open(Sealed::CommandPayload { command_uuid }, sealed)?)
    }

    pub(crate) fn seal_payload(
        &self,
        command_uuid: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, ServiceError> {
        Ok(self
            .vault
            .seal(Sealed::CommandPayload { command_uuid }, payload)?)
    }

    /// Enqueue a command (already validated against Apple's schema) to one or more enrollments;
    /// audited with the number of enrollments that got it. Lock and wipe are refused here: they
    /// go through the PIN vault.
    pub async fn enqueue(
        &self,
        command: &Command,
        enrollment_ids: &[String],
        actor: &str,
    ) -> Result<EnqueueOutcome, ServiceError> {
        let outcome = self.enqueue_generic(command, enrollment_ids).await?;
        let queued = outcome.results.iter().filter(|r| r.queued).count();
        self.audit_enqueue(&outcome, queued, actor).await?;
        Ok(outcome)
    }

    /// [`Self::enqueue`] for one device: an unknown device is a `NotFound`, and nothing is
    /// audited.
    pub async fn enqueue_for_device(
        &self,
        command: &Command,
        udid: &str,
        actor: &str,
    ) -> Result<EnqueueOutcome, ServiceError> {
        let outcome = self
            .enqueue_generic(command, std::slice::from_ref(&udid.to_string()))
            .await?;
        if !outcome.results.iter().any(|r| r.queued) {
            return Err(ServiceError::NotFound(format!("no device {udid}")));
        }
        self.audit_enqueue(&outcome, 1, actor).await?;
        Ok(outcome)
    }

    async fn audit_enqueue(
        &self,
        outcome: &EnqueueOutcome,
        targets: usize,
        actor: &str,
    ) -> Result<(), ServiceError> {
        self.audit(
            actor,
            "command.enqueue",
            &outcome.command_uuid,
            json!({"request_type": outcome.request_type, "targets": targets}),
        )
        .await
    }

    /// Queue a command Russet decided on itself (a feature keeping desired state, the ADE
    /// setup), not an admin: at `priority`, its payload sealed when it may carry a secret (an
    /// attached profile, a password hash), and the devices woken once it is stored. Not
    /// audited: the admin action behind it was.
    pub async fn enqueue_internal(
        &self,
        command: &Command,
        enrollment_ids: &[String],
        priority: i32,
        sealed: bool,
    ) -> Result<Vec<EnqueueResult>, ServiceError> {
        let payload = if sealed {
            self.seal_payload(&command.command_uuid, &command.to_plist())?
        } else {
            command.to_plist()
        };
        let results = self
            .store
            .enqueue(
                &NewCommand {
                    command_uuid: command.command_uuid.clone(),
                    request_type: command.request_type.clone(),
                    payload,
                    payload_sealed: sealed,
                    priority,
                    now: now_ms(),
                },
                enrollment_ids,
            )
            .await?;
        self.announce(&command.command_uuid);
        Ok(results)
    }

    /// The generic path: lock and wipe refused, priority by request type.
    async fn enqueue_generic(
        &self,
        command: &Command,
        enrollment_ids: &[String],
    ) -> Result<EnqueueOutcome, ServiceError> {
        if let Some(endpoint) = enqueue_rules::dedicated_endpoint(&command.request_type) {
            return Err(ServiceError::Refused(format!(
                "{} must be sent with {endpoint}, which escrows its secret first",
                command.request_type
            )));
        }
        if enrollment_ids.is_empty() {
            return Err(ServiceError::Refused("no target devices given".into()));
        }
        let priority = if enqueue_rules::is_urgent(&command.request_type) {
            PRIORITY_URGENT
        } else {
            PRIORITY_NORMAL
        };
        let results = self
            .store
            .enqueue(
                &NewCommand {
                    command_uuid: command.command_uuid.clone(),
                    request_type: command.request_type.clone(),
                    payload: command.to_plist(),
                    payload_sealed: false,
                    priority,
                    now: now_ms(),
                },
                enrollment_ids,
            )
            .await?;
        self.announce(&command.command_uuid);
        Ok(EnqueueOutcome {
            command_uuid: command.command_uuid.clone(),
            request_type: command.request_type.clone(),
            results,
        })
    }

    /// Cancel a command wherever it has not been handed to a device yet; audited. When every
    /// device already had it, that is an [`ServiceError::AlreadyDelivered`] naming when.
    pub async fn cancel_command(
        &self,
        command_uuid: &str,
        actor: &str,
    ) -> Result<CancelOutcome, ServiceError> {
        if self.store.command(command_uuid).await?.is_none() {
            return Err(ServiceError::NotFound(format!("command {command_uuid}")));
        }
        let outcome = self.store.cancel_command(command_uuid, now_ms()).await?;
        self.audit(
            actor,
            "command.cancel",
            command_uuid,
            json!({"canceled": outcome.canceled.len()}),
        )
        .await?;
        if outcome.canceled.is_empty() && !outcome.already_delivered.is_empty() {
            let when = outcome
                .already_delivered
                .iter()
                .filter_map(|(_, at)| *at)
                .min()
                .map(rfc3339)
                .unwrap_or_else(|| "an earlier time".into());
            return Err(ServiceError::AlreadyDelivered(format!(
                "command {command_uuid} was already delivered at {when}; it can no longer be \
                 canceled"
            )));
        }
        Ok(outcome)
    }

    /// A command with its per-device states and its payload as a plist (opened when sealed),
    /// its secrets replaced: the unlock PIN (revealed only through the audited
    /// [`Self::reveal_pins`]), a sealed command's profile bytes and password hashes.
    pub async fn command_details(
        &self,
        command_uuid: &str,
    ) -> Result<CommandDetails, ServiceError> {
        let view = self
            .store
            .command(command_uuid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no command {command_uuid}")))?;
        let payload = if view.payload_sealed {
            self.open_payload(&view.command_uuid, &view.payload)?
        } else {
            view.payload.clone()
        };
        let mut command = plist::Value::from_reader_xml(payload.as_slice()).ok();
        if let Some(keys) = command
            .as_mut()
            .and_then(plist::Value::as_dictionary_mut)
            .and_then(|d| d.get_mut("Command"))
            .and_then(plist::Value::as_dictionary_mut)
        {
            if keys.contains_key("PIN") {
                keys.insert("PIN".into(), plist::Value::String("(escrowed)".into()));
            }
            // A payload is sealed because it carries a secret: a profile with a password, an
            // admin account's password hash. Its shape is shown, not those values.
            if view.payload_sealed {
                redact_secrets(keys);
            }
        }
        Ok(CommandDetails { view, command })
    }
}

/// Keys of sealed commands whose values are never shown: a profile's bytes
/// (`InstallProfile.Payload`), password hashes (`AccountConfiguration`), the FileVault
/// recovery key that unlocks a rotation (`RotateFileVaultKey` `FileVaultUnlock.Password`) and
/// Recovery Lock passwords (`SetRecoveryLock` `CurrentPassword`/`NewPassword`,
/// `VerifyRecoveryLock` `Password`).
const SECRET_KEYS: [&str; 5] = [
    "Payload",
    "passwordHash",
    "Password",
    "CurrentPassword",
    "NewPassword",
];

fn redact_secrets(dict: &mut plist::Dictionary) {
    for (key, value) in dict.iter_mut() {
        if SECRET_KEYS.contains(&key.as_str()) {
            *value = plist::Value::String("(sealed)".into());
        } else {
            redact_value(value);
        }
    }
}

fn redact_value(value: &mut plist::Value) {
    match value {
        plist::Value::Dictionary(d) => redact_secrets(d),
        plist::Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// A command as the admin API shows it.
#[derive(Debug, Clone)]
pub struct CommandDetails {
    pub view: CommandView,
    /// The command plist with secrets redacted; `None` if it cannot be read back.
    pub command: Option<plist::Value>,
}

/// Facts worth keeping on the device row from a DeviceInformation result: whether a lock/wipe
/// PIN matters on this Mac, and what it now runs. Only results carrying `QueryResponses` are
/// parsed again (the body already passed the depth guard).
fn device_facts(raw: &[u8]) -> Option<DeviceFacts> {
    const KEY: &[u8] = b"<key>QueryResponses</key>";
    // Only DeviceInformation answers carry it: every other report skips the parse below.
    memchr::memmem::find(raw, KEY)?;
    let report = plist::Value::from_reader_xml(raw).ok()?;
    let answers = report
        .as_dictionary()?
        .get("QueryResponses")?
        .as_dictionary()?;
    let boolean = |k: &str| answers.get(k).and_then(plist::Value::as_boolean);
    let string = |k: &str| {
        answers
            .get(k)
            .and_then(plist::Value::as_string)
            .map(str::to_string)
    };
    let facts = DeviceFacts {
        pin_required_for_lock: boolean("PINRequiredForDeviceLock"),
        pin_required_for_erase: boolean("PINRequiredForEraseDevice"),
        is_apple_silicon: boolean("IsAppleSilicon"),
        os_version: string("OSVersion"),
        build_version: string("BuildVersion"),
        device_name: string("DeviceName"),
    };
    (facts != DeviceFacts::default()).then_some(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_information_answers_become_device_facts() {
        let raw = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CommandUUID</key><string>A</string><key>Status</key><string>Acknowledged</string>
<key>UDID</key><string>U</string>
<key>QueryResponses</key><dict>
  <key>PINRequiredForDeviceLock</key><true/>
  <key>PINRequiredForEraseDevice</key><false/>
  <key>IsAppleSilicon</key><false/>
  <key>OSVersion</key><string>14.6</string>
</dict></dict></plist>"#;
        let f = device_facts(raw).expect("facts");
        assert_eq!(f.pin_required_for_lock, Some(true));
        assert_eq!(f.pin_required_for_erase, Some(false));
        assert_eq!(f.is_apple_silicon, Some(false));
        assert_eq!(f.os_version.as_deref(), Some("14.6"));
        assert_eq!(f.device_name, None);
        let idle = b"<plist><dict><key>Status</key><string>Idle</string></dict></plist>";
        assert_eq!(device_facts(idle), None);
    }
}
