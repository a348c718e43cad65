//! DEP API records exactly as Apple names their fields (protocol reference §9.3–9.4).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileStatus {
    Empty,
    Assigned,
    Pushed,
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Added,
    Modified,
    Deleted,
}

/// A device record from `/server/devices` (fetch) or `/devices/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepDevice {
    pub serial_number: String,
    pub model: Option<String>,
    pub description: Option<String>,
    pub color: Option<String>,
    pub asset_tag: Option<String>,
    pub os: Option<String>,
    pub device_family: Option<String>,
    pub profile_status: Option<ProfileStatus>,
    pub profile_uuid: Option<String>,
    pub profile_assign_time: Option<String>,
    pub profile_push_time: Option<String>,
    pub device_assigned_date: Option<String>,
    pub device_assigned_by: Option<String>,
    /// Sync only.
    pub op_type: Option<OpType>,
    /// Sync only; for the same serial, the record with the latest `op_date` wins.
    pub op_date: Option<String>,
}

/// The answer of fetch and sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    #[serde(default)]
    pub devices: Vec<DepDevice>,
    pub cursor: Option<String>,
    pub fetched_until: Option<String>,
    #[serde(default)]
    pub more_to_follow: bool,
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
}
