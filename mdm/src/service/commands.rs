//! The command loop (`PUT /mdm/connect`) and the admin side of the queue.
//!
//! A command stays open until the device reports a result for it; handing it out again is
//! allowed. `NotNow` keeps it queued: it is skipped for the rest of that session and re-sent on
//! the device's next one (Apple, "Handling NotNow status responses").

use super::{DeviceIdentity, MdmService, ServiceError, now_ms};
use crate::protocol::command::Command;
use crate::protocol::report::{CommandReport, ReportStatus};
use crate::store::{
    CancelOutcome, CommandResultRecord, DeliveredCommand, EnqueueResult, NewCommand,
    PRIORITY_NORMAL, PRIORITY_URGENT, ReportRecord, ResultStatus,
};

#[derive(Debug, Clone)]
pub struct EnqueueOutcome {
    pub command_uuid: String,
    pub request_type: String,
    pub results: Vec<EnqueueResult>,
}

/// Rules for commands enqueued through the generic endpoints.
pub mod enqueue_rules {
    /// DeviceLock and EraseDevice carry a PIN that must be escrowed before the command exists;
    /// they have their own endpoints (errata 3), so the generic path refuses them.
    pub fn dedicated_endpoint(request_type: &str) -> Option<&'static str> {
        match request_type {
            "DeviceLock" => Some("POST /api/v1/devices/{udid}/lock"),
            "EraseDevice" => Some("POST /api/v1/devices/{udid}/wipe"),
            _ => None,
        }
    }

    /// A lost Mac must not first work through an inventory backlog (errata 5).
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
        let outcome = self
            .store
            .command_report(&ReportRecord {
                enrollment_id: enrollment.id.clone(),
                result,
                now: now_ms(),
            })
            .await?;
        if outcome.not_enrolled {
            return Err(ServiceError::NotEnrolled(enrollment.id.clone()));
        }
        if outcome.unknown_command {
            tracing::warn!(
                enrollment_id = %enrollment.id,
                command_uuid = report.command_uuid.as_deref().unwrap_or(""),
                "result for a command that is not open on this enrollment; ignored"
            );
        }
        Ok(outcome.next)
    }

    /// Enqueue a command (already validated against Apple's schema) to one or more enrollments.
    /// Lock and wipe are refused here: they go through the PIN vault.
    pub async fn enqueue(
        &self,
        command: &Command,
        enrollment_ids: &[String],
    ) -> Result<EnqueueOutcome, ServiceError> {
        if let Some(endpoint) = enqueue_rules::dedicated_endpoint(&command.request_type) {
            return Err(ServiceError::Refused(format!(
                "{} must be sent with {endpoint}, which escrows its PIN first",
                command.request_type
            )));
        }
        self.enqueue_unchecked(command, enrollment_ids).await
    }

    /// Enqueue without the lock/wipe guard: for callers that escrowed what they had to.
    pub(crate) async fn enqueue_unchecked(
        &self,
        command: &Command,
        enrollment_ids: &[String],
    ) -> Result<EnqueueOutcome, ServiceError> {
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
                    priority,
                    now: now_ms(),
                },
                enrollment_ids,
            )
            .await?;
        Ok(EnqueueOutcome {
            command_uuid: command.command_uuid.clone(),
            request_type: command.request_type.clone(),
            results,
        })
    }

    /// Cancel a command wherever it has not been handed to a device yet.
    pub async fn cancel_command(&self, command_uuid: &str) -> Result<CancelOutcome, ServiceError> {
        if self.store.command(command_uuid).await?.is_none() {
            return Err(ServiceError::NotFound(format!("command {command_uuid}")));
        }
        Ok(self.store.cancel_command(command_uuid, now_ms()).await?)
    }
}
