//! Command building, schema validation, JSON and plist input.

use super::super::builders::{FileVaultKeyType, ObliterationBehavior};
use super::super::schema::schema_for;
use super::*;
use serde_json::json;

fn invalid(result: Result<Command, ProtocolError>) -> String {
    match result {
        Err(ProtocolError::Invalid(msg)) => msg,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn parse(body: &[u8]) -> Dictionary {
    plist::Value::from_reader_xml(body)
        .expect("our own plist parses")
        .into_dictionary()
        .expect("dict")
}

#[test]
fn every_supported_request_type_has_apples_schema() {
    assert_eq!(SUPPORTED_REQUEST_TYPES.len(), 19);
    for rt in SUPPORTED_REQUEST_TYPES {
        let schema = schema_for(rt).unwrap_or_else(|e| panic!("{rt}: {e}"));
        assert_eq!(&schema.payload.requesttype, rt);
    }
    // Spot checks that the model carries what validation relies on.
    let erase = schema_for("EraseDevice").expect("EraseDevice");
    let ob = erase.key("ObliterationBehavior").expect("key");
    assert_eq!(ob.rangelist.as_ref().map(Vec::len), Some(4));
    let info = schema_for("DeviceInformation").expect("DeviceInformation");
    assert!(info.key("Queries").expect("Queries").required());
}

#[test]
fn typed_constructors_produce_valid_commands() {
    let mut unlock = Dictionary::new();
    unlock.insert("Password".into(), "hunter2".into());
    let mut account = Dictionary::new();
    account.insert("LockPrimaryAccountInfo".into(), true.into());
    account.insert("PrimaryAccountUserName".into(), "jo".into());
    let mut manifest = Dictionary::new();
    manifest.insert("items".into(), Value::Array(vec![]));
    let built = [
        Command::device_information(["SerialNumber", "OSVersion"]),
        Command::security_info(),
        Command::profile_list(Some(true)),
        Command::install_profile(b"<plist/>".to_vec()),
        Command::remove_profile("com.example.wifi"),
        Command::installed_application_list(Some(vec!["com.apple.Safari".into()]), Some(false)),
        Command::certificate_list(),
        Command::user_list(),
        Command::install_enterprise_application("https://example.com/manifest.plist"),
        Command::install_enterprise_application_manifest(manifest),
        Command::restart_device(Some(true)),
        Command::shut_down_device(),
        Command::device_lock(Some("123456"), Some("Call IT"), Some("+1 555 0100")),
        Command::erase_device(Some("654321"), Some(ObliterationBehavior::DoNotObliterate)),
        Command::device_configured(),
        Command::account_configuration(account),
        Command::set_recovery_lock("new-secret", Some("old-secret")),
        Command::verify_recovery_lock("new-secret"),
        Command::rotate_filevault_key(FileVaultKeyType::Personal, unlock, None, Some(vec![0x30])),
        Command::declarative_management(Some(b"{}".to_vec())),
    ];
    let mut seen = Vec::new();
    for cmd in built {
        let cmd = cmd.unwrap_or_else(|e| panic!("constructor failed: {e}"));
        assert_eq!(cmd.validate(), Ok(()));
        seen.push(cmd.request_type.clone());
    }
    for rt in SUPPORTED_REQUEST_TYPES {
        assert!(seen.iter().any(|s| s == rt), "no constructor for {rt}");
    }
}

#[test]
fn to_plist_has_apples_shape_and_a_fresh_uppercase_uuid() {
    let cmd = Command::install_profile(b"profile bytes".to_vec()).expect("valid");
    let uuid = uuid::Uuid::parse_str(&cmd.command_uuid).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(cmd.command_uuid, cmd.command_uuid.to_uppercase());
    assert_ne!(
        cmd.command_uuid,
        Command::security_info().expect("valid").command_uuid
    );

    let top = parse(&cmd.to_plist());
    assert_eq!(
        top.get("CommandUUID").and_then(Value::as_string),
        Some(cmd.command_uuid.as_str())
    );
    let inner = top
        .get("Command")
        .and_then(Value::as_dictionary)
        .expect("Command dict");
    assert_eq!(
        inner.get("RequestType").and_then(Value::as_string),
        Some("InstallProfile")
    );
    assert_eq!(
        inner.get("Payload").and_then(Value::as_data),
        Some(b"profile bytes".as_slice())
    );
}

#[test]
fn pins_must_be_six_digits() {
    for bad in ["12345", "1234567", "12a456", "١٢٣٤٥٦", ""] {
        let msg = invalid(Command::device_lock(Some(bad), None, None));
        assert!(msg.contains("PIN"), "{msg}");
        invalid(Command::erase_device(Some(bad), None));
    }
    assert!(Command::device_lock(None, Some("hi"), None).is_ok());
    assert!(Command::erase_device(None, None).is_ok());
}

#[test]
fn schema_violations_are_all_listed_with_their_paths() {
    let mut keys = Dictionary::new();
    keys.insert("PIN".into(), Value::Integer(123456.into()));
    keys.insert("ObliterationBehavior".into(), "Sometimes".into());
    keys.insert("Frobnicate".into(), true.into());
    let msg = invalid(Command::new("EraseDevice", keys));
    assert!(
        msg.contains("PIN: expected <string>, found <integer>"),
        "{msg}"
    );
    assert!(
        msg.contains("ObliterationBehavior: value is not one of"),
        "{msg}"
    );
    assert!(msg.contains("DoNotObliterate"), "{msg}");
    assert!(msg.contains("Frobnicate: unknown key"), "{msg}");

    let msg = invalid(Command::new("DeviceInformation", Dictionary::new()));
    assert!(msg.contains("Queries: required key is missing"), "{msg}");

    let mut item = Dictionary::new();
    item.insert("passwordHash".into(), "not data".into());
    item.insert("extra".into(), 1.into());
    let mut keys = Dictionary::new();
    keys.insert(
        "AutoSetupAdminAccounts".into(),
        Value::Array(vec![Value::Dictionary(item)]),
    );
    let msg = invalid(Command::account_configuration(keys));
    assert!(
        msg.contains("AutoSetupAdminAccounts[0].shortName: required key is missing"),
        "{msg}"
    );
    assert!(
        msg.contains("AutoSetupAdminAccounts[0].passwordHash: expected <data>"),
        "{msg}"
    );
    assert!(
        msg.contains("AutoSetupAdminAccounts[0].extra: unknown key"),
        "{msg}"
    );

    let mut keys = Dictionary::new();
    keys.insert(
        "Queries".into(),
        Value::Array(vec![Value::Integer(1.into())]),
    );
    assert!(invalid(Command::new("DeviceInformation", keys)).contains("Queries[0]"));

    // No keys at all are allowed on ShutDownDevice.
    let mut keys = Dictionary::new();
    keys.insert("Now".into(), true.into());
    assert!(invalid(Command::new("ShutDownDevice", keys)).contains("Now: unknown key"));

    let mut keys = Dictionary::new();
    keys.insert("KeyType".into(), "everyone".into());
    let msg = invalid(Command::new("RotateFileVaultKey", keys));
    assert!(
        msg.contains("KeyType: value is not one of: personal, institutional"),
        "{msg}"
    );
    assert!(
        msg.contains("FileVaultUnlock: required key is missing"),
        "{msg}"
    );
}

#[test]
fn enterprise_apps_need_one_https_manifest() {
    assert!(invalid(Command::install_enterprise_application("http://x/m.plist")).contains("https"));
    let msg = invalid(Command::new(
        "InstallEnterpriseApplication",
        Dictionary::new(),
    ));
    assert!(msg.contains("ManifestURL"), "{msg}");
    let mut keys = Dictionary::new();
    keys.insert("ManagementFlags".into(), 2.into());
    keys.insert("ManifestURL".into(), "https://x/m.plist".into());
    assert!(
        invalid(Command::new("InstallEnterpriseApplication", keys)).contains("ManagementFlags")
    );
}

#[test]
fn unsupported_request_types_are_refused_everywhere() {
    let unsupported = |r: Result<Command, ProtocolError>| {
        assert_eq!(
            r,
            Err(ProtocolError::UnsupportedRequestType(
                "ClearPasscode".into()
            ))
        );
    };
    unsupported(Command::new("ClearPasscode", Dictionary::new()));
    unsupported(Command::from_json(
        &json!({"request_type": "ClearPasscode"}),
    ));
    unsupported(Command::from_plist(
        b"<plist><dict><key>RequestType</key><string>ClearPasscode</string></dict></plist>",
    ));
}

#[test]
fn json_keys_are_typed_by_apples_schema() {
    let cmd = Command::from_json(&json!({
        "request_type": "DeviceInformation",
        "Queries": ["SerialNumber", "IsSupervised"]
    }))
    .expect("valid");
    assert_eq!(
        cmd.keys.get("Queries"),
        Some(&Value::Array(vec![
            "SerialNumber".into(),
            "IsSupervised".into()
        ]))
    );

    // Errata 4: <data> travels as base64 in JSON.
    let cmd = Command::from_json(&json!({
        "request_type": "InstallProfile", "Payload": "PHBsaXN0Lz4="
    }))
    .expect("valid");
    assert_eq!(
        cmd.keys.get("Payload").and_then(Value::as_data),
        Some(b"<plist/>".as_slice())
    );

    let cmd = Command::from_json(&json!({
        "request_type": "AccountConfiguration",
        "AutoSetupAdminAccounts": [{"shortName": "admin", "passwordHash": "AAEC", "hidden": true}],
        "SkipPrimarySetupAccountCreation": false
    }))
    .expect("valid");
    let accounts = cmd
        .keys
        .get("AutoSetupAdminAccounts")
        .and_then(Value::as_array);
    let first = accounts
        .and_then(|a| a.first())
        .and_then(Value::as_dictionary);
    let hash = first
        .and_then(|d| d.get("passwordHash"))
        .and_then(Value::as_data);
    assert_eq!(hash, Some([0u8, 1, 2].as_slice()));

    let cmd = Command::from_json(&json!({
        "request_type": "InstallEnterpriseApplication",
        "ManifestURL": "https://example.com/m.plist",
        "ManagementFlags": 1,
        "Configuration": {"Server": "x", "Port": 443, "Ratio": 0.5}
    }))
    .expect("valid");
    assert_eq!(
        cmd.keys
            .get("ManagementFlags")
            .and_then(Value::as_signed_integer),
        Some(1)
    );
    let config = cmd.keys.get("Configuration").and_then(Value::as_dictionary);
    assert_eq!(config.and_then(|c| c.get("Ratio")), Some(&Value::Real(0.5)));
}

#[test]
fn bad_json_is_refused_with_each_problem() {
    let msg = invalid(Command::from_json(&json!({
        "request_type": "InstallProfile", "Payload": "not base64!", "Bogus": 1
    })));
    assert!(msg.contains("Payload: <data> must be base64"), "{msg}");
    assert_eq!(msg.matches("Payload").count(), 1, "reported once: {msg}");
    assert!(msg.contains("Bogus: unknown key"), "{msg}");

    let msg = invalid(Command::from_json(&json!({
        "request_type": "EraseDevice", "PIN": 123456, "ObliterationBehavior": "Never"
    })));
    assert!(msg.contains("PIN: expected <string>"), "{msg}");
    assert!(msg.contains("ObliterationBehavior"), "{msg}");

    let msg = invalid(Command::from_json(&json!({
        "request_type": "InstallEnterpriseApplication",
        "ManifestURL": "https://x/m.plist", "ManagementFlags": 1.5
    })));
    assert!(msg.contains("ManagementFlags: expected <integer>"), "{msg}");

    let msg = invalid(Command::from_json(&json!({
        "request_type": "RemoveProfile", "Identifier": null
    })));
    assert!(msg.contains("Identifier: null"), "{msg}");

    for bad in [
        json!([1]),
        json!({"Queries": []}),
        json!({"request_type": 5}),
    ] {
        assert!(
            matches!(Command::from_json(&bad), Err(ProtocolError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn plist_round_trip_keeps_the_command_and_its_uuid() {
    let original =
        Command::erase_device(Some("123456"), Some(ObliterationBehavior::Always)).expect("valid");
    let again = Command::from_plist(&original.to_plist()).expect("round trip");
    assert_eq!(again, original);

    let profile = Command::install_profile(vec![0, 159, 146, 150]).expect("valid");
    assert_eq!(Command::from_plist(&profile.to_plist()), Ok(profile));
}

#[test]
fn plist_input_from_admins() {
    let body = br#"<?xml version="1.0"?><plist version="1.0"><dict>
        <key>CommandUUID</key><string>not a sane uuid!</string>
        <key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict>
    </dict></plist>"#;
    let cmd = Command::from_plist(body).expect("valid");
    assert!(uuid::Uuid::parse_str(&cmd.command_uuid).is_ok());

    let body = br#"<plist><dict><key>CommandUUID</key><string>admin-cmd-1</string>
        <key>Command</key><dict><key>RequestType</key><string>SecurityInfo</string></dict>
    </dict></plist>"#;
    assert_eq!(
        Command::from_plist(body).expect("valid").command_uuid,
        "admin-cmd-1"
    );

    let bare = br#"<plist><dict><key>RequestType</key><string>RemoveProfile</string>
        <key>Identifier</key><string>com.example</string></dict></plist>"#;
    let cmd = Command::from_plist(bare).expect("bare command dict");
    assert_eq!(cmd.request_type, "RemoveProfile");

    let extra = br#"<plist><dict><key>Extra</key><true/>
        <key>Command</key><dict><key>RequestType</key><string>SecurityInfo</string></dict>
    </dict></plist>"#;
    assert!(invalid(Command::from_plist(extra)).contains("Extra"));

    let not_dict = br#"<plist><dict><key>Command</key><string>x</string></dict></plist>"#;
    assert!(matches!(
        Command::from_plist(not_dict),
        Err(ProtocolError::Malformed(_))
    ));
    let no_type = br#"<plist><dict><key>Command</key><dict/></dict></plist>"#;
    assert!(matches!(
        Command::from_plist(no_type),
        Err(ProtocolError::Malformed(_))
    ));

    let mut deep =
        b"<plist><dict><key>RequestType</key><string>SecurityInfo</string><key>X</key>".to_vec();
    deep.extend(b"<dict><key>a</key>".repeat(100));
    assert_eq!(Command::from_plist(&deep), Err(ProtocolError::TooDeep));
}
