//! DEP API records exactly as Apple names their fields (Apple, Device Management: Device
//! assignment).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileStatus {
    Empty,
    Assigned,
    Pushed,
    Removed,
    /// A value this version does not know.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Added,
    Modified,
    Deleted,
    /// A value this version does not know; the sink decides (the sync loop passes it through).
    #[serde(other)]
    Other,
}

/// A device record from `/server/devices` (fetch) or `/devices/sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepDevice {
    pub serial_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_status: Option<ProfileStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_assign_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_push_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_assigned_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_assigned_by: Option<String>,
    /// Sync only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_type: Option<OpType>,
    /// Sync only; for the same serial, the record with the latest `op_date` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_date: Option<String>,
    /// Protocol v8+.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdm_migration_deadline: Option<String>,
}

/// The answer of fetch and sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub devices: Vec<DepDevice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_until: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub more_to_follow: bool,
}

/// `null` (which Apple's Go-era services emit for empty lists) decodes as the default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Per-serial outcome of define (with `devices`), assign, remove and disown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DeviceStatus {
    Success,
    NotAccessible,
    Failed,
    /// Protocol v9+: retry after the response's `retry_after_seconds`.
    Throttled,
    /// Any other string Apple sends.
    Other(String),
}

impl From<String> for DeviceStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "SUCCESS" => DeviceStatus::Success,
            "NOT_ACCESSIBLE" => DeviceStatus::NotAccessible,
            "FAILED" => DeviceStatus::Failed,
            "THROTTLED" => DeviceStatus::Throttled,
            _ => DeviceStatus::Other(s),
        }
    }
}

impl From<DeviceStatus> for String {
    fn from(s: DeviceStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl DeviceStatus {
    pub fn as_str(&self) -> &str {
        match self {
            DeviceStatus::Success => "SUCCESS",
            DeviceStatus::NotAccessible => "NOT_ACCESSIBLE",
            DeviceStatus::Failed => "FAILED",
            DeviceStatus::Throttled => "THROTTLED",
            DeviceStatus::Other(s) => s,
        }
    }
}

/// An ADE enrollment profile (Apple, Device Assignment: Define a Profile). Unset fields are
/// omitted from the JSON.
/// Fields this version does not know are kept in `extra` (so `get_profile` loses nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Required by Apple (`CONFIG_NAME_REQUIRED`), at most 125 characters.
    #[serde(default)]
    pub profile_name: String,
    /// The enrollment URL the device POSTs its MachineInfo to. Required (`CONFIG_URL_REQUIRED`).
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_web_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_supervised: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mandatory: Option<bool>,
    /// `false` only together with supervision (`FLAGS_INVALID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mdm_removable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub await_device_configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_pairing: Option<bool>,
    /// Base64 DER certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervising_host_certs: Option<Vec<String>>,
    /// Base64 DER certificates the device trusts for `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_certs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_setup_items: Option<Vec<String>>,
    /// At most 50 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_phone_number: Option<String>,
    /// At most 250 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_email_address: Option<String>,
    /// At most 125 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_magic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_advance_setup: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_multi_user: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_return_to_service: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_not_use_profile_from_backup: Option<bool>,
    /// Serials to assign at define time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    #[serde(flatten, default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `POST /profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefineProfileResponse {
    pub profile_uuid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub devices: BTreeMap<String, DeviceStatus>,
}

/// `POST /profile/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignProfileResponse {
    #[serde(default)]
    pub profile_uuid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub devices: BTreeMap<String, DeviceStatus>,
    /// Protocol v10+: when to retry the `THROTTLED` serials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// `DELETE /profile/devices` and `POST /devices/disown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatusResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub devices: BTreeMap<String, DeviceStatus>,
}

/// One entry of `POST /devices` (details). Every field may be absent (e.g. `NOT_ACCESSIBLE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDetail {
    #[serde(flatten)]
    pub device: DeviceDetailFields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<String>,
}

/// The device fields of a details entry (all optional, unlike [`DepDevice`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDetailFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_status: Option<ProfileStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_assign_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_push_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_assigned_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_assigned_by: Option<String>,
}

/// `POST /devices`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDetailsResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub devices: BTreeMap<String, DeviceDetail>,
}

/// `GET /account`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facilitator_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_version: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub urls: Vec<AccountUrl>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUrl {
    #[serde(default)]
    pub uri: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub http_method: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<UrlLimit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<u32>,
}

/// `POST /device/activationlock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationLockRequest {
    /// The serial number.
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationLockResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(default)]
    pub response_status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_page_decodes_with_apples_field_names() {
        let page: FetchResponse = serde_json::from_str(
            r#"{"devices":[{"serial_number":"C02XXXXXXXXX","model":"MacBook Air","os":"OSX",
                "device_family":"Mac","profile_status":"assigned","op_type":"added",
                "op_date":"2026-01-01T00:00:00Z"}],
               "cursor":"MTIz","fetched_until":"2026-01-01T00:00:00Z","more_to_follow":true}"#,
        )
        .expect("decodes");
        assert!(page.more_to_follow);
        assert_eq!(page.devices[0].op_type, Some(OpType::Added));
        assert_eq!(
            page.devices[0].profile_status,
            Some(ProfileStatus::Assigned)
        );
        assert_eq!(page.cursor.as_deref(), Some("MTIz"));
    }

    #[test]
    fn tolerant_of_nulls_and_unknown_values() {
        let page: FetchResponse =
            serde_json::from_str(r#"{"devices":null,"more_to_follow":null,"cursor":"c"}"#)
                .expect("decodes");
        assert!(page.devices.is_empty() && !page.more_to_follow);
        let d: DepDevice = serde_json::from_str(
            r#"{"serial_number":"X","profile_status":"new-thing","op_type":"moved"}"#,
        )
        .expect("decodes");
        assert_eq!(d.profile_status, Some(ProfileStatus::Other));
        assert_eq!(d.op_type, Some(OpType::Other));
        let a: AssignProfileResponse = serde_json::from_str(
            r#"{"profile_uuid":"u","devices":{"A":"SUCCESS","B":"THROTTLED","C":"WEIRD"},"retry_after_seconds":30}"#,
        )
        .expect("decodes");
        assert_eq!(a.devices["B"], DeviceStatus::Throttled);
        assert_eq!(a.devices["C"], DeviceStatus::Other("WEIRD".into()));
    }

    #[test]
    fn profile_omits_unset_fields() {
        let p = Profile {
            profile_name: "n".into(),
            url: "https://x/enroll".into(),
            is_mdm_removable: Some(false),
            ..Default::default()
        };
        let v = serde_json::to_value(&p).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"profile_name":"n","url":"https://x/enroll","is_mdm_removable":false})
        );
    }
}
