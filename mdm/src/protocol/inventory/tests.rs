use super::*;
use crate::protocol::Command;

macro_rules! capture {
    ($path:literal) => {
        include_bytes!(concat!("../../../testdata/", $path)).as_slice()
    };
}

#[test]
fn device_information_of_a_real_10_13_mac() {
    let a = decode_device_information(capture!("devices/DeviceInformation/macOS-10.13.1.xml"))
        .expect("decodes");
    assert_eq!(a.facts.os_version.as_deref(), Some("10.13.1"));
    assert_eq!(a.facts.build_version.as_deref(), Some("17B48"));
    assert_eq!(a.facts.device_name.as_deref(), Some("commandment"));
    assert!(a.facts.capacity_gb.is_some_and(|c| c > 900.0));
    // Keys a 10.13 Mac does not know stay unknown.
    assert_eq!(a.facts.is_apple_silicon, None);
    assert_eq!(a.answer["HostName"], "commandment.local");
}

#[test]
fn device_information_of_a_real_10_11_mac() {
    let a = decode_device_information(capture!("devices/DeviceInformation/10.11.x.xml"))
        .expect("decodes");
    assert!(
        a.facts
            .os_version
            .as_deref()
            .is_some_and(|v| v.starts_with("10.11"))
    );
    assert!(a.facts.serial_number.is_some());
}

#[test]
fn device_information_shaped_like_macos_15() {
    let a = decode_device_information(capture!("inventory/DeviceInformation-macOS-15.xml"))
        .expect("decodes");
    let f = &a.facts;
    assert_eq!(f.serial_number.as_deref(), Some("C02XK1Y2JHD5"));
    assert_eq!(f.os_version.as_deref(), Some("15.1.1"));
    assert_eq!(f.model.as_deref(), Some("Mac14,2"));
    assert_eq!(f.is_apple_silicon, Some(true));
    assert_eq!(f.is_supervised, Some(true));
    assert_eq!(f.is_activation_lock_enabled, Some(false));
    assert_eq!(f.battery_level, Some(0.87));
    assert_eq!(f.wifi_mac.as_deref(), Some("f0:2f:4b:10:aa:02"));
    // An empty string is no value.
    assert_eq!(a.answer["SupplementalOSVersionExtra"], "");
    assert_eq!(
        a.answer["OSUpdateSettings"]["PreviousScanDate"],
        "2024-11-20T08:12:44Z"
    );
}

#[test]
fn security_info_real_and_current() {
    let old =
        decode_security_info(capture!("devices/SecurityInfo/macOS-10.13.1.xml")).expect("decodes");
    assert_eq!(old.facts.filevault_enabled, Some(false));
    assert_eq!(old.facts.firewall_enabled, Some(false));
    assert_eq!(old.facts.sip_enabled, Some(false));
    assert_eq!(old.facts.secure_boot_level, None);

    let new =
        decode_security_info(capture!("inventory/SecurityInfo-macOS-15.xml")).expect("decodes");
    assert_eq!(new.facts.filevault_enabled, Some(true));
    assert_eq!(new.facts.firewall_enabled, Some(true));
    assert_eq!(new.facts.secure_boot_level.as_deref(), Some("full"));
    assert_eq!(new.facts.recovery_lock_enabled, Some(true));
    assert_eq!(
        new.facts.bootstrap_token_allowed.as_deref(),
        Some("allowed")
    );
    // The encrypted personal recovery key is not inventory.
    assert!(new.answer.get("FDE_PersonalRecoveryKeyCMS").is_none());
    assert_eq!(new.answer["FDE_HasPersonalRecoveryKey"], true);
}

#[test]
fn applications_real_and_current() {
    let old = decode_applications(capture!("devices/InstalledApplicationList/10.11.x.xml"))
        .expect("decodes");
    assert_eq!(old.facts.len(), 3);
    assert_eq!(
        old.facts[0].bundle_id.as_deref(),
        Some("com.apple.systempreferences")
    );
    // Bundles without an identifier are kept by name.
    assert_eq!(old.facts[1].bundle_id, None);
    assert_eq!(old.facts[1].name, "Set Info");

    let new = decode_applications(capture!("inventory/InstalledApplicationList-macOS-15.xml"))
        .expect("decodes");
    let excel = &new.facts[0];
    assert_eq!(excel.bundle_id.as_deref(), Some("com.microsoft.Excel"));
    assert_eq!(excel.short_version.as_deref(), Some("16.78"));
    assert_eq!(excel.bundle_size, Some(2_145_583_104));
    assert_eq!(new.answer.as_array().map(Vec::len), Some(3));
}

#[test]
fn certificates_of_a_real_mac() {
    let a = decode_certificates(capture!("devices/CertificateList/10.11.x.xml")).expect("decodes");
    assert!(!a.facts.is_empty());
    assert_eq!(a.facts[0].common_name, "com.apple.systemdefault");
    assert!(a.facts[0].is_identity);
    assert_eq!(
        a.facts[0].der.first(),
        Some(&0x30),
        "DER starts with a SEQUENCE"
    );
}

#[test]
fn user_list_shaped_like_macos_15() {
    let a = decode_user_list(capture!("inventory/UserList-macOS-15.xml")).expect("decodes");
    let users = &a.facts.users;
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].short_name, "alice");
    assert!(users[0].is_logged_in);
    assert_eq!(users[0].uid, Some(501));
    assert_eq!(users[1].has_secure_token, Some(true));
    assert!(!users[1].is_logged_in);
}

#[test]
fn malformed_answers_are_errors_never_empty_inventories() {
    let status_only = br#"<plist version="1.0"><dict><key>Status</key><string>Acknowledged</string></dict></plist>"#;
    assert!(decode_device_information(status_only).is_err());
    assert!(decode_security_info(status_only).is_err());
    assert!(decode_applications(status_only).is_err());
    assert!(decode_certificates(status_only).is_err());
    assert!(decode_user_list(status_only).is_err());
    assert!(decode_applications(b"not a plist").is_err());
    // A wrong type at the top is an error; inside an item it only drops the item's key.
    let wrong = br#"<plist version="1.0"><dict><key>InstalledApplicationList</key><string>x</string></dict></plist>"#;
    assert!(decode_applications(wrong).is_err());
    let odd = br#"<plist version="1.0"><dict><key>InstalledApplicationList</key><array>
        <dict><key>Name</key><string>A</string><key>ShortVersion</key><integer>3</integer></dict>
        <string>not an app</string><dict><key>Identifier</key><string>no.name</string></dict>
        </array></dict></plist>"#;
    let apps = decode_applications(odd).expect("decodes").facts;
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].short_version, None);
    // Too deep for the guard.
    let deep = format!(
        "<plist><dict><key>Users</key>{}{}</dict></plist>",
        "<array>".repeat(100),
        "</array>".repeat(100)
    );
    assert!(decode_user_list(deep.as_bytes()).is_err());
}

#[test]
fn a_list_longer_than_the_bound_is_refused_whole() {
    let item = "<dict><key>UserName</key><string>u</string></dict>";
    let body = format!(
        "<plist><dict><key>Users</key><array>{}</array></dict></plist>",
        item.repeat(MAX_USERS + 1)
    );
    assert!(decode_user_list(body.as_bytes()).is_err());
}

/// The query list is every macOS `QueryResponses` key of Apple's schema, but those set aside.
#[test]
fn the_query_list_is_the_schemas_macos_list() {
    let schema: serde_json::Value =
        serde_norway::from_str(include_str!("../schema/information.device.yaml")).expect("yaml");
    let keys = schema["responsekeys"]
        .as_array()
        .and_then(|r| r.iter().find(|k| k["key"] == "QueryResponses"))
        .and_then(|q| q["subkeys"].as_array())
        .expect("QueryResponses subkeys");
    let on_macos: Vec<&str> = keys
        .iter()
        .filter(|k| k["supportedOS"]["macOS"]["introduced"] != "n/a")
        .filter_map(|k| k["key"].as_str())
        .collect();
    let asked_or_not: Vec<&str> = MACOS_DEVICE_QUERIES
        .iter()
        .copied()
        .chain(NOT_ASKED.iter().map(|(k, _)| *k))
        .collect();
    for k in &on_macos {
        assert!(
            asked_or_not.contains(k),
            "{k} is neither asked nor set aside"
        );
    }
    for k in MACOS_DEVICE_QUERIES {
        assert!(on_macos.contains(k), "{k} is not a macOS key of the schema");
    }
    assert!(MACOS_DEVICE_QUERIES.contains(&"IsActivationLockEnabled"));
    // And the command built from it passes Apple's payload schema.
    let cmd = Command::device_information(MACOS_DEVICE_QUERIES.iter().copied()).expect("valid");
    assert_eq!(cmd.request_type, "DeviceInformation");
}

#[test]
fn every_inventory_command_can_be_built() {
    assert!(Command::certificate_list().is_ok());
    assert!(Command::user_list().is_ok());
    assert!(Command::security_info().is_ok());
    assert!(Command::installed_application_list(None, None).is_ok());
    assert_eq!(INVENTORY_REQUEST_TYPES.len(), 5);
}
