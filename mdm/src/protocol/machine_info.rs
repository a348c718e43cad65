//! ADE `MachineInfo` (DM `other/machineinfo.yaml`) and Apple's software-update-required answer
//! (DM `mdm/errors/softwareupdate.required.yaml`).

use super::ProtocolError;
use super::guard::{MAX_DEPTH, check_plist};
use super::values::Fields;
use std::cmp::Ordering;

/// What a Mac says about itself when it asks for its enrollment profile. Only `UDID` and
/// `SERIAL` are required; the rest depends on the OS version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    pub udid: String,
    pub serial: String,
    /// Model identifier, e.g. `Mac14,2`.
    pub product: Option<String>,
    /// Build version, e.g. `23A344`.
    pub version: Option<String>,
    /// macOS 14 / iOS 17 and later, e.g. `14.0`.
    pub os_version: Option<String>,
    pub language: Option<String>,
    /// The device can follow a `com.apple.softwareupdate.required` answer.
    pub mdm_can_request_software_update: bool,
    pub software_update_device_id: Option<String>,
}

/// Decode the (already signature-checked) MachineInfo plist. XML is bounded by the usual
/// guard; a binary plist is accepted too because only Apple-signed bytes get here.
pub fn decode_machine_info(content: &[u8]) -> Result<MachineInfo, ProtocolError> {
    let value = if content.starts_with(b"bplist") {
        if content.len() > 64 * 1024 {
            return Err(ProtocolError::TooLarge);
        }
        plist::Value::from_reader(std::io::Cursor::new(content))
            .map_err(|e| ProtocolError::Malformed(format!("not a valid plist: {e}")))?
    } else {
        check_plist(content, MAX_DEPTH)?;
        plist::Value::from_reader_xml(content)
            .map_err(|e| ProtocolError::Malformed(format!("not a valid XML plist: {e}")))?
    };
    let dict = value
        .into_dictionary()
        .ok_or_else(|| ProtocolError::Malformed("MachineInfo is not a <dict>".into()))?;
    let f = Fields(&dict);
    let udid = f.req_str("UDID")?;
    let serial = f.req_str("SERIAL")?;
    for (key, v) in [("UDID", &udid), ("SERIAL", &serial)] {
        if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
            return Err(ProtocolError::Malformed(format!(
                "{key} must be 1-128 printable characters"
            )));
        }
    }
    Ok(MachineInfo {
        udid,
        serial,
        product: f.opt_str("PRODUCT")?,
        version: f.opt_str("VERSION")?,
        os_version: f.opt_str("OS_VERSION")?,
        language: f.opt_str("LANGUAGE")?,
        mdm_can_request_software_update: f
            .opt_bool("MDM_CAN_REQUEST_SOFTWARE_UPDATE")?
            .unwrap_or(false),
        software_update_device_id: f.opt_str("SOFTWARE_UPDATE_DEVICE_ID")?,
    })
}

/// Compare dotted OS versions numerically (`14.10` > `14.9`; `14` == `14.0`). The
/// supplemental part (` (a)`) is ignored. `None` if either is not a version.
pub fn compare_os_versions(a: &str, b: &str) -> Option<Ordering> {
    fn parts(v: &str) -> Option<Vec<u64>> {
        let core = v.split_whitespace().next()?;
        let mut out: Vec<u64> = core
            .split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<_>>()?;
        while out.len() > 1 && out.last() == Some(&0) {
            out.pop();
        }
        Some(out)
    }
    Some(parts(a)?.cmp(&parts(b)?))
}

/// The body of Apple's `403` that makes Setup Assistant update the OS before enrolling.
pub fn software_update_required(os_version: &str, build_version: Option<&str>) -> Vec<u8> {
    let mut details = serde_json::json!({ "OSVersion": os_version });
    if let Some(b) = build_version {
        details["BuildVersion"] = serde_json::Value::String(b.to_owned());
    }
    serde_json::to_vec(&serde_json::json!({
        "code": "com.apple.softwareupdate.required",
        "description": format!("this MDM server requires OS version {os_version} or later"),
        "details": details,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>LANGUAGE</key><string>en-US</string>
<key>MDM_CAN_REQUEST_SOFTWARE_UPDATE</key><true/>
<key>OS_VERSION</key><string>14.2</string>
<key>PRODUCT</key><string>Mac14,2</string>
<key>SERIAL</key><string>C02XK0ABCDEF</string>
<key>SOFTWARE_UPDATE_DEVICE_ID</key><string>J413AP</string>
<key>UDID</key><string>0000FE00-1234-5678-9ABC-DEF012345678</string>
<key>VERSION</key><string>23C64</string>
</dict></plist>"#;

    #[test]
    fn decodes_every_key() {
        let m = decode_machine_info(INFO.as_bytes()).unwrap();
        assert_eq!(m.serial, "C02XK0ABCDEF");
        assert_eq!(m.udid, "0000FE00-1234-5678-9ABC-DEF012345678");
        assert_eq!(m.os_version.as_deref(), Some("14.2"));
        assert_eq!(m.version.as_deref(), Some("23C64"));
        assert_eq!(m.product.as_deref(), Some("Mac14,2"));
        assert!(m.mdm_can_request_software_update);
        assert_eq!(m.software_update_device_id.as_deref(), Some("J413AP"));
    }

    #[test]
    fn refuses_missing_keys_and_hostile_values() {
        let no_serial = INFO.replace("<key>SERIAL</key><string>C02XK0ABCDEF</string>", "");
        assert!(decode_machine_info(no_serial.as_bytes()).is_err());
        let ctl = INFO.replace("C02XK0ABCDEF", "C02&#x0a;X");
        assert!(decode_machine_info(ctl.as_bytes()).is_err());
        let deep = format!("<plist>{}</plist>", "<array>".repeat(100));
        assert_eq!(
            decode_machine_info(deep.as_bytes()),
            Err(ProtocolError::TooDeep)
        );
        assert!(decode_machine_info(b"bplist00garbage").is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(
            compare_os_versions("14.10", "14.9"),
            Some(Ordering::Greater)
        );
        assert_eq!(compare_os_versions("14", "14.0"), Some(Ordering::Equal));
        assert_eq!(
            compare_os_versions("14.1 (a)", "14.1.1"),
            Some(Ordering::Less)
        );
        assert_eq!(compare_os_versions("x", "14"), None);
    }

    #[test]
    fn software_update_body_is_apples_shape() {
        let v: serde_json::Value =
            serde_json::from_slice(&software_update_required("14.6", Some("23G80"))).unwrap();
        assert_eq!(v["code"], "com.apple.softwareupdate.required");
        assert_eq!(v["details"]["OSVersion"], "14.6");
        assert_eq!(v["details"]["BuildVersion"], "23G80");
    }
}
