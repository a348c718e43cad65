//! Russet's side of a DEP profile, given when the profile is created: the configuration
//! profile and AccountConfiguration queued while Setup Assistant waits, and the minimum OS.
//! Everything is checked here so a Mac never receives a command Apple would refuse.

use super::{DepOpError, DepResult};
use crate::protocol::machine_info::compare_os_versions;
use crate::service::setup::ProfileSetup;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use plist::Value;
use serde_json::Value as Json;

/// Largest attached configuration profile accepted.
pub const MAX_ATTACHED_PROFILE: usize = 1024 * 1024;

/// The payload types that would make a second MDM enrollment; Russet's own MDM payload
/// (in the enrollment profile) takes their place.
const MDM_PAYLOAD_TYPES: [&str; 1] = ["com.apple.mdm"];

fn bad(why: impl Into<String>) -> DepOpError {
    DepOpError::BadRequest(why.into())
}

/// `{"attached_profile": base64, "account_configuration": {...}, "min_os_version": "14.6",
/// "min_build_version": "23G80", "group": "Lab"}` → a checked [`ProfileSetup`] (that the group
/// exists is checked when the profile is created).
pub fn parse_setup(input: &Json) -> DepResult<ProfileSetup> {
    let obj = input
        .as_object()
        .ok_or_else(|| bad("\"setup\" must be an object"))?;
    for key in obj.keys() {
        if ![
            "attached_profile",
            "account_configuration",
            "min_os_version",
            "min_build_version",
            "group",
        ]
        .contains(&key.as_str())
        {
            return Err(bad(format!("unknown setup key {key:?}")));
        }
    }
    let mut setup = ProfileSetup::default();
    if let Some(v) = obj.get("attached_profile").filter(|v| !v.is_null()) {
        let text = v
            .as_str()
            .ok_or_else(|| bad("attached_profile must be a base64 string"))?;
        if text.len() > MAX_ATTACHED_PROFILE * 4 / 3 + 4 {
            return Err(bad("attached_profile is larger than 1 MiB"));
        }
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| bad("attached_profile is not base64"))?;
        setup.attached_profile = Some(attached_profile(&bytes)?);
    }
    if let Some(v) = obj.get("account_configuration").filter(|v| !v.is_null()) {
        if !v.is_object() {
            return Err(bad(
                "account_configuration must be an object of Apple's keys",
            ));
        }
        setup.account_configuration = Some(v.clone());
        // Build it once now: Apple's schema decides, with every problem named.
        setup
            .commands()
            .map_err(|e| bad(format!("account_configuration: {e}")))?;
    }
    for (key, slot) in [
        ("min_os_version", &mut setup.min_os_version),
        ("min_build_version", &mut setup.min_build_version),
    ] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            let text = v
                .as_str()
                .filter(|t| !t.is_empty() && t.len() <= 32 && t.is_ascii())
                .ok_or_else(|| bad(format!("{key} must be a short version string")))?;
            *slot = Some(text.to_owned());
        }
    }
    if let Some(v) = obj.get("group").filter(|v| !v.is_null()) {
        let name = v
            .as_str()
            .ok_or_else(|| bad("group must be the name of a static group"))?;
        crate::service::groups::check_name(name).map_err(|e| bad(e.to_string()))?;
        setup.group = Some(name.to_owned());
    }
    if let Some(min) = &setup.min_os_version
        && compare_os_versions(min, "0").is_none()
    {
        return Err(bad("min_os_version must look like 14.6 or 15.1.1"));
    }
    if setup.min_build_version.is_some() && setup.min_os_version.is_none() {
        return Err(bad("min_build_version needs min_os_version"));
    }
    Ok(setup)
}

/// Check an attached `.mobileconfig` and take out any MDM payload. A signed profile cannot be
/// changed, so one that carries an MDM payload is refused; an unsigned one is rewritten.
pub fn attached_profile(bytes: &[u8]) -> DepResult<Vec<u8>> {
    if bytes.len() > MAX_ATTACHED_PROFILE {
        return Err(bad("attached_profile is larger than 1 MiB"));
    }
    if bytes.first() == Some(&0x30) {
        let content = russet_certs::profile_sign::signed_profile_content(bytes)
            .map_err(|_| bad("attached_profile is neither a plist nor a validly signed profile"))?;
        let (dict, removed) = parse_and_strip(&content)?;
        drop(dict);
        if removed > 0 {
            return Err(bad(
                "the attached profile is signed and carries an MDM payload: Russet supplies \
                 the MDM payload itself; give the profile unsigned (Russet removes it) or \
                 re-sign it without",
            ));
        }
        return Ok(bytes.to_vec());
    }
    let (dict, removed) = parse_and_strip(bytes)?;
    if removed == 0 {
        return Ok(bytes.to_vec());
    }
    tracing::info!(
        removed,
        "attached profile: MDM payload removed (Russet's own is in the enrollment profile)"
    );
    let mut out = Vec::new();
    Value::Dictionary(dict)
        .to_writer_xml(&mut out)
        .map_err(|e| DepOpError::Internal(format!("writing the attached profile: {e}")))?;
    Ok(out)
}

fn parse_and_strip(xml: &[u8]) -> DepResult<(plist::Dictionary, usize)> {
    crate::protocol::check_plist(xml, crate::protocol::MAX_DEPTH)
        .map_err(|e| bad(format!("attached_profile: {e}")))?;
    let mut dict = Value::from_reader_xml(xml)
        .ok()
        .and_then(Value::into_dictionary)
        .ok_or_else(|| bad("attached_profile is not a configuration profile plist"))?;
    if dict.get("PayloadType").and_then(Value::as_string) != Some("Configuration") {
        return Err(bad(
            "attached_profile must be a configuration profile (PayloadType Configuration)",
        ));
    }
    for key in ["PayloadIdentifier", "PayloadUUID"] {
        if dict.get(key).and_then(Value::as_string).is_none() {
            return Err(bad(format!("attached_profile has no {key}")));
        }
    }
    let mut removed = 0;
    if let Some(Value::Array(payloads)) = dict.get_mut("PayloadContent") {
        let before = payloads.len();
        payloads.retain(|p| {
            let kind = p
                .as_dictionary()
                .and_then(|d| d.get("PayloadType"))
                .and_then(Value::as_string);
            !kind.is_some_and(|k| MDM_PAYLOAD_TYPES.contains(&k))
        });
        removed = before - payloads.len();
    }
    Ok((dict, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mobileconfig(with_mdm: bool) -> Vec<u8> {
        let mdm = if with_mdm {
            "<dict><key>PayloadType</key><string>com.apple.mdm</string>\
             <key>ServerURL</key><string>https://other.example/mdm</string></dict>"
        } else {
            ""
        };
        format!(
            "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>\
             <key>PayloadType</key><string>Configuration</string>\
             <key>PayloadIdentifier</key><string>org.example.setup</string>\
             <key>PayloadUUID</key><string>6C7F3B0A-1111-2222-3333-444455556666</string>\
             <key>PayloadContent</key><array>{mdm}\
             <dict><key>PayloadType</key><string>com.apple.dock</string></dict>\
             </array></dict></plist>"
        )
        .into_bytes()
    }

    #[test]
    fn mdm_payloads_are_removed_and_others_kept() {
        let out = attached_profile(&mobileconfig(true)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("com.apple.mdm"), "{text}");
        assert!(text.contains("com.apple.dock"));
        // Nothing to remove: the bytes are kept as given.
        assert_eq!(
            attached_profile(&mobileconfig(false)).unwrap(),
            mobileconfig(false)
        );
    }

    #[test]
    fn setup_is_checked_with_apples_schema() {
        let ok = parse_setup(&json!({
            "attached_profile": STANDARD.encode(mobileconfig(false)),
            "account_configuration": {
                "SkipPrimarySetupAccountCreation": false,
                "AutoSetupAdminAccounts": [{"shortName": "admin", "fullName": "Admin",
                                            "passwordHash": STANDARD.encode(b"hash"), "hidden": true}]
            },
            "min_os_version": "14.6"
        }))
        .unwrap();
        let kinds: Vec<String> = ok
            .commands()
            .unwrap()
            .into_iter()
            .map(|c| c.request_type)
            .collect();
        assert_eq!(
            kinds,
            ["InstallProfile", "AccountConfiguration", "DeviceConfigured"]
        );
        for bad_input in [
            json!({"account_configuration": {"NoSuchKey": 1}}),
            json!({"account_configuration": {"AutoSetupAdminAccounts": "x"}}),
            json!({"attached_profile": "%%%"}),
            json!({"attached_profile": STANDARD.encode(b"<plist><dict/></plist>")}),
            json!({"min_os_version": "fourteen"}),
            json!({"min_build_version": "23G80"}),
            json!({"group": 7}),
            json!({"group": "a/b"}),
            json!({"surprise": true}),
        ] {
            assert!(parse_setup(&bad_input).is_err(), "{bad_input}");
        }
    }
}
