//! Command reports: what a device PUTs to ServerURL (`application/x-apple-aspen-mdm`).
//!
//! Every report carries a `Status`; all but `Idle` echo the `CommandUUID` they answer
//! (NM `mdm/command.go` `CommandResults`). Result keys (`QueryResponses`, `SecurityInfo`, …)
//! are open-ended, so callers keep the raw body; this type holds only what routing needs.

use serde::Serialize;

use super::ProtocolError;
use super::enrollment::Enrollment;
use super::guard::parse_dict;
use super::values::{Fields, type_name};

/// Longest accepted `CommandUUID`. Russet sends 36-character UUIDs.
pub const MAX_COMMAND_UUID_LEN: usize = 128;

/// Apple's `Status` values (A:sending-mdm-commands-to-a-device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportStatus {
    /// Ready for a command; no result attached.
    Idle,
    Acknowledged,
    Error,
    CommandFormatError,
    /// Can't run now; the device does not keep the command, the server must re-send it.
    NotNow,
}

impl ReportStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportStatus::Idle => "Idle",
            ReportStatus::Acknowledged => "Acknowledged",
            ReportStatus::Error => "Error",
            ReportStatus::CommandFormatError => "CommandFormatError",
            ReportStatus::NotNow => "NotNow",
        }
    }

    pub fn parse(s: &str) -> Option<ReportStatus> {
        Some(match s {
            "Idle" => ReportStatus::Idle,
            "Acknowledged" => ReportStatus::Acknowledged,
            "Error" => ReportStatus::Error,
            "CommandFormatError" => ReportStatus::CommandFormatError,
            "NotNow" => ReportStatus::NotNow,
            _ => return None,
        })
    }
}

/// One `ErrorChain` entry. Serializes to JSON with Apple's key names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorChainItem {
    #[serde(rename = "ErrorCode")]
    pub error_code: i64,
    #[serde(rename = "ErrorDomain", skip_serializing_if = "Option::is_none")]
    pub error_domain: Option<String>,
    #[serde(
        rename = "LocalizedDescription",
        skip_serializing_if = "Option::is_none"
    )]
    pub localized_description: Option<String>,
    #[serde(
        rename = "USEnglishDescription",
        skip_serializing_if = "Option::is_none"
    )]
    pub us_english_description: Option<String>,
}

/// The routing part of a command report.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandReport {
    pub enrollment: Enrollment,
    pub status: ReportStatus,
    /// Absent only for `Idle`.
    pub command_uuid: Option<String>,
    pub error_chain: Vec<ErrorChainItem>,
}

/// Decodes a command report. Runs the nesting guard first.
pub fn decode_report(body: &[u8]) -> Result<CommandReport, ProtocolError> {
    let dict = parse_dict(body)?;
    let f = Fields(&dict);
    let status_str = f.req_str("Status")?;
    let status = ReportStatus::parse(&status_str)
        .ok_or_else(|| ProtocolError::Malformed(format!("unknown Status {status_str:?}")))?;
    let enrollment = Enrollment::from_fields(&f)?;
    let command_uuid = f.opt_str("CommandUUID")?.filter(|u| !u.is_empty());
    match &command_uuid {
        Some(uuid) => check_command_uuid(uuid)?,
        None if status != ReportStatus::Idle => {
            return Err(ProtocolError::Malformed(format!(
                "Status {status_str} without CommandUUID"
            )));
        }
        None => {}
    }
    let error_chain = match f.opt_array("ErrorChain")? {
        None => Vec::new(),
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| error_chain_item(i, item))
            .collect::<Result<_, _>>()?,
    };
    Ok(CommandReport {
        enrollment,
        status,
        command_uuid,
        error_chain,
    })
}

/// `PasswordVerified` of an acknowledged `VerifyRecoveryLock` (Apple:
/// `passcode.recovery.verify.yaml`, a required `<boolean>`).
pub fn decode_password_verified(body: &[u8]) -> Result<bool, ProtocolError> {
    let dict = parse_dict(body)?;
    Fields(&dict)
        .opt_bool("PasswordVerified")?
        .ok_or_else(|| ProtocolError::Malformed("required key PasswordVerified is missing".into()))
}

fn check_command_uuid(uuid: &str) -> Result<(), ProtocolError> {
    if uuid.len() > MAX_COMMAND_UUID_LEN || uuid.chars().any(char::is_control) {
        return Err(ProtocolError::Malformed(
            "CommandUUID is too long or contains control characters".into(),
        ));
    }
    Ok(())
}

fn error_chain_item(i: usize, item: &plist::Value) -> Result<ErrorChainItem, ProtocolError> {
    let dict = item.as_dictionary().ok_or_else(|| {
        ProtocolError::Malformed(format!(
            "ErrorChain[{i}] must be <dictionary>, found {}",
            type_name(item)
        ))
    })?;
    let f = Fields(dict);
    let in_item = |e: ProtocolError| match e {
        ProtocolError::Malformed(m) => ProtocolError::Malformed(format!("ErrorChain[{i}]: {m}")),
        other => other,
    };
    Ok(ErrorChainItem {
        error_code: f.opt_int("ErrorCode").map_err(in_item)?.ok_or_else(|| {
            ProtocolError::Malformed(format!(
                "ErrorChain[{i}]: required key ErrorCode is missing"
            ))
        })?,
        error_domain: f.opt_str("ErrorDomain").map_err(in_item)?,
        localized_description: f.opt_str("LocalizedDescription").map_err(in_item)?,
        us_english_description: f.opt_str("USEnglishDescription").map_err(in_item)?,
    })
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
