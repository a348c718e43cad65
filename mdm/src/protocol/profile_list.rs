//! The `ProfileList` result (Apple's `profile.list` response keys): the profiles installed on
//! a channel, each with its `PayloadIdentifier` and `PayloadUUID` — what the profile
//! reconciler takes as the truth.

use super::ProtocolError;
use plist::Value;

/// One installed profile as the Mac lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedProfile {
    pub identifier: String,
    pub uuid: String,
    /// `IsManaged`: installed by MDM (absent on older systems).
    pub managed: Option<bool>,
}

/// The `ProfileList` of a report body (already through the plist guard). Entries without an
/// identifier or UUID are skipped: Apple marks both required, and a list that cannot be read
/// must not look like "nothing installed".
pub fn decode_profile_list(body: &[u8]) -> Result<Vec<ListedProfile>, ProtocolError> {
    let value = Value::from_reader(std::io::Cursor::new(body))
        .map_err(|e| ProtocolError::Malformed(format!("ProfileList result: {e}")))?;
    let list = value
        .as_dictionary()
        .and_then(|d| d.get("ProfileList"))
        .and_then(Value::as_array)
        .ok_or_else(|| ProtocolError::Malformed("the result has no ProfileList array".into()))?;
    Ok(list
        .iter()
        .filter_map(Value::as_dictionary)
        .filter_map(|p| {
            let text = |k: &str| p.get(k).and_then(Value::as_string).map(str::to_string);
            Some(ListedProfile {
                identifier: text("PayloadIdentifier")?,
                uuid: text("PayloadUUID")?,
                managed: p.get("IsManaged").and_then(Value::as_boolean),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_macs_profile_list_is_read() {
        let body = include_bytes!("../../testdata/devices/ProfileList/10.11.x.xml");
        let list = decode_profile_list(body).expect("list");
        assert!(!list.is_empty());
        assert!(
            list.iter()
                .all(|p| !p.identifier.is_empty() && !p.uuid.is_empty())
        );
    }

    #[test]
    fn a_result_without_a_list_is_an_error_not_an_empty_list() {
        let body = br#"<plist version="1.0"><dict><key>Status</key><string>Acknowledged</string></dict></plist>"#;
        assert!(decode_profile_list(body).is_err());
    }
}
