//! ADE end to end: a Mac in Setup Assistant posts its signed MachineInfo to `/mdm/enroll`,
//! gets Apple's software-update answer or the enrollment profile, enrolls, reports
//! `AwaitingConfiguration` and receives the profile's setup commands, then `DeviceConfigured`.
//!
//! Nobody outside Apple can sign as Apple's device CA, so the server is started with
//! `--ade-device-ca` naming a CA shaped like it (RSA 1024, SHA-1, expired); the bundled Apple
//! chain itself is checked in `russet-certs`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::x509::X509;
use plist::Value as Plist;
use reqwest::Method;
use russet_certs::testing::{DeviceIdentity, IssueOptions, TestCa};
use russet_tests::dep::{corp_profile, linked, linked_and_synced, setup_with};
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    a_mac_enrolls_in_setup_assistant_and_is_configured,
    filevault_on_the_setup_group_is_part_of_the_setup,
);

const PASSWORD_HASH: &[u8] = b"russet-test-password-hash-7f3a9c";

fn machine_info(udid: &str, serial: &str, os_version: Option<&str>) -> Vec<u8> {
    let mut d = plist::Dictionary::new();
    d.insert("UDID".into(), Plist::String(udid.into()));
    d.insert("SERIAL".into(), Plist::String(serial.into()));
    d.insert("PRODUCT".into(), Plist::String("Mac14,2".into()));
    d.insert("VERSION".into(), Plist::String("23C64".into()));
    d.insert("LANGUAGE".into(), Plist::String("en-US".into()));
    if let Some(v) = os_version {
        d.insert("OS_VERSION".into(), Plist::String(v.into()));
        d.insert(
            "MDM_CAN_REQUEST_SOFTWARE_UPDATE".into(),
            Plist::Boolean(true),
        );
    }
    SimMac::to_xml(&d)
}

async fn post_enroll(srv: &TestServer, body: Vec<u8>) -> (u16, Option<String>, Vec<u8>) {
    let r = reqwest::Client::new()
        .post(format!("{}/mdm/enroll", srv.device_url))
        .header("Content-Type", "application/pkcs7-signature")
        .body(body)
        .send()
        .await
        .expect("POST /mdm/enroll");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, ct, r.bytes().await.expect("body").to_vec())
}

/// The content of a signed profile (the signature is tested with manual enrollment).
fn signed_content(der: &[u8]) -> plist::Dictionary {
    let content = russet_certs::profile_sign::signed_profile_content(der).expect("content");
    Plist::from_reader_xml(content.as_slice())
        .unwrap()
        .into_dictionary()
        .unwrap()
}

fn payload_types(profile: &plist::Dictionary) -> Vec<String> {
    profile["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_dictionary()?.get("PayloadType")?.as_string())
        .map(str::to_owned)
        .collect()
}

fn attached_mobileconfig() -> Vec<u8> {
    // Exported from another MDM: it still carries an MDM payload, which Russet replaces.
    b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>\
      <key>PayloadType</key><string>Configuration</string>\
      <key>PayloadIdentifier</key><string>org.example.setup</string>\
      <key>PayloadUUID</key><string>6C7F3B0A-1111-2222-3333-444455556666</string>\
      <key>PayloadContent</key><array>\
      <dict><key>PayloadType</key><string>com.apple.mdm</string>\
      <key>ServerURL</key><string>https://other-mdm.example/connect</string></dict>\
      <dict><key>PayloadType</key><string>com.apple.dock</string>\
      <key>PayloadIdentifier</key><string>org.example.dock</string></dict>\
      </array></dict></plist>"
        .to_vec()
}

async fn a_mac_enrolls_in_setup_assistant_and_is_configured(backend: Backend) {
    let apple = TestCa::legacy_device_ca("Apple iPhone Device CA (test)");
    let dir = tempfile::tempdir().unwrap();
    let apple_pem = dir.path().join("apple-device-ca.pem");
    std::fs::write(&apple_pem, apple.cert_pem()).unwrap();
    let apple_arg = apple_pem.display().to_string();
    let (srv, sim) = setup_with(backend, 5, &["--ade-device-ca", &apple_arg], false).await;
    let serials = linked_and_synced(&srv, &sim, "corp").await;
    let serial = serials[0].clone();

    // A profile that holds Setup Assistant, with Russet's setup: a configuration profile, an
    // admin account, and macOS 14.6 at least.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(json!({
                "profile": corp_profile(),
                "setup": {
                    "attached_profile": STANDARD.encode(attached_mobileconfig()),
                    "account_configuration": {
                        "SkipPrimarySetupAccountCreation": false,
                        "AutoSetupAdminAccounts": [{
                            "shortName": "ladmin", "fullName": "Local Admin",
                            "passwordHash": STANDARD.encode(PASSWORD_HASH), "hidden": true
                        }]
                    },
                    "min_os_version": "14.6",
                    "min_build_version": "23G80"
                }
            })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["setup"]["account_configuration"], json!(true), "{v}");
    assert_eq!(v["setup"]["min_os_version"], json!("14.6"));
    let uuid = v["profile_uuid"].as_str().unwrap().to_owned();
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/dep/profiles/{uuid}/devices"),
            Some(json!({"devices": [serial]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // A bad setup is refused before Apple is asked, with Apple's schema's words.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(json!({"profile": corp_profile(),
                        "setup": {"account_configuration": {"AutoSetupAdminAccounts": "x"}}})),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AutoSetupAdminAccounts"),
        "{v}"
    );

    let udid = "0000FE00-1234-5678-9ABC-DEF012345678".to_owned();
    let signer: DeviceIdentity = apple.issue_with(&udid, IssueOptions::legacy());

    // Too old: Apple's answer makes Setup Assistant update first.
    let (status, ct, body) = post_enroll(
        &srv,
        signer.sign_attached(&machine_info(&udid, &serial, Some("14.2"))),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(ct.as_deref(), Some("application/json"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], json!("com.apple.softwareupdate.required"));
    assert_eq!(v["details"]["OSVersion"], json!("14.6"));
    assert_eq!(v["details"]["BuildVersion"], json!("23G80"));

    // Up to date: the signed enrollment profile.
    let (status, ct, body) = post_enroll(
        &srv,
        signer.sign_attached(&machine_info(&udid, &serial, Some("14.6.1"))),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct.as_deref(), Some("application/x-apple-aspen-config"));
    let profile = signed_content(&body);
    let kinds = payload_types(&profile);
    assert!(
        kinds.contains(&"com.apple.mdm".to_string())
            && kinds.contains(&"com.apple.security.scep".to_string()),
        "{kinds:?}"
    );

    // Refusals: a serial DEP never gave us, a signer that is not Apple's, a tampered body,
    // and bytes that are not CMS at all.
    let (status, _, _) = post_enroll(
        &srv,
        signer.sign_attached(&machine_info(&udid, "C02NOTOURS01", Some("15.1"))),
    )
    .await;
    assert_eq!(status, 403);
    let stranger = srv.ca.issue_device_identity("stranger");
    let (status, _, _) = post_enroll(
        &srv,
        stranger.sign_attached(&machine_info(&udid, &serial, Some("15.1"))),
    )
    .await;
    assert_eq!(status, 403);
    let mut tampered = signer.sign_attached(&machine_info(&udid, &serial, Some("15.1")));
    let at = tampered
        .windows(serial.len())
        .position(|w| w == serial.as_bytes())
        .unwrap();
    tampered[at] ^= 0x01;
    let (status, _, _) = post_enroll(&srv, tampered).await;
    assert_eq!(status, 403);
    let (status, _, _) = post_enroll(&srv, b"<plist>not signed</plist>".to_vec()).await;
    assert_eq!(status, 400);
    let (status, _, _) = post_enroll(&srv, vec![0x30; 70 * 1024]).await;
    assert_eq!(status, 413);

    // The Mac installs the profile: Authenticate, then TokenUpdate awaiting configuration.
    let mut mac = SimMac::new(&srv.device_url, srv.ca.issue_device_identity(&udid));
    mac.udid = udid.clone();
    mac.serial = serial.clone();
    mac.enroll().await;
    let mut awaiting = mac.token_update_message();
    awaiting.insert("AwaitingConfiguration".into(), Plist::Boolean(true));
    let r = mac.checkin(&awaiting).await;
    assert_eq!(r.status, 200);
    // A repeated TokenUpdate does not queue the setup twice.
    let r = mac.checkin(&awaiting).await;
    assert_eq!(r.status, 200);

    let mut seen = Vec::new();
    let mut reply = mac.idle().await;
    while let Some((cmd_uuid, request_type, cmd)) = reply.command() {
        match request_type.as_str() {
            "InstallProfile" => {
                let payload = cmd["Payload"].as_data().unwrap();
                let text = String::from_utf8_lossy(payload);
                assert!(text.contains("com.apple.dock"), "{text}");
                assert!(!text.contains("com.apple.mdm"), "{text}");
            }
            "AccountConfiguration" => {
                let admins = cmd["AutoSetupAdminAccounts"].as_array().unwrap();
                let admin = admins[0].as_dictionary().unwrap();
                assert_eq!(admin["shortName"].as_string(), Some("ladmin"));
                assert_eq!(admin["passwordHash"].as_data(), Some(PASSWORD_HASH));
            }
            _ => {}
        }
        seen.push(request_type);
        reply = mac.report(&cmd_uuid, "Acknowledged", &[]).await;
    }
    assert_eq!(reply.status, 200);
    assert_eq!(
        seen,
        ["InstallProfile", "AccountConfiguration", "DeviceConfigured"]
    );
    // The same enrollment, once configured, is not set up again by a plain TokenUpdate.
    assert_eq!(mac.checkin(&mac.token_update_message()).await.status, 200);
    assert!(mac.idle().await.command().is_none());

    // The device view tells how the Mac came in: its DEP record and its ADE enrollment.
    let (status, v) = srv
        .api(Method::GET, &format!("/api/v1/devices/{udid}"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["dep"]["serial_number"], json!(serial), "{v}");
    assert_eq!(v["dep"]["status"], json!("enrolled"), "{v}");
    assert_eq!(v["ade"]["dep_profile_uuid"], json!(uuid), "{v}");
    assert_eq!(v["ade"]["os_version"], json!("14.6.1"), "{v}");
    assert!(v["ade"]["setup_queued_at"].is_string(), "{v}");

    // The setup (a password hash, an attached profile) is sealed at rest.
    if backend == Backend::Sqlite {
        let bytes = srv.sqlite_bytes();
        assert!(
            !bytes
                .windows(PASSWORD_HASH.len())
                .any(|w| w == PASSWORD_HASH),
            "the password hash is stored in the clear"
        );
        assert!(
            !bytes
                .windows(b"com.apple.dock".len())
                .any(|w| w == b"com.apple.dock"),
            "the attached profile is stored in the clear"
        );
    }
    srv.stop().await;
}

/// FileVault enforced on the group a DEP profile's Macs join is installed during Setup
/// Assistant, before `DeviceConfigured`, with `ForceEnableInSetupAssistant` when asked.
async fn filevault_on_the_setup_group_is_part_of_the_setup(backend: Backend) {
    let apple = TestCa::legacy_device_ca("Apple iPhone Device CA (test)");
    let dir = tempfile::tempdir().unwrap();
    let apple_pem = dir.path().join("apple-device-ca.pem");
    std::fs::write(&apple_pem, apple.cert_pem()).unwrap();
    let apple_arg = apple_pem.display().to_string();
    let (srv, sim) = setup_with(backend, 2, &["--ade-device-ca", &apple_arg], false).await;
    let serial = linked_and_synced(&srv, &sim, "corp").await[0].clone();
    for (path, body) in [
        ("/api/v1/groups", json!({"name": "Setup"})),
        (
            "/api/v1/filevault/enforce",
            json!({"group": "Setup", "force_in_setup_assistant": true}),
        ),
    ] {
        let (status, v) = srv.api(Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "{path}: {v}");
    }
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(json!({"profile": corp_profile(), "setup": {"group": "Setup"}})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let uuid = v["profile_uuid"].as_str().unwrap().to_owned();
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/dep/profiles/{uuid}/devices"),
            Some(json!({"devices": [serial]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let udid = "0000FE00-AAAA-5678-9ABC-DEF012345678".to_owned();
    let signer: DeviceIdentity = apple.issue_with(&udid, IssueOptions::legacy());
    let (status, _, body) = post_enroll(
        &srv,
        signer.sign_attached(&machine_info(&udid, &serial, Some("15.1"))),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let mut mac = SimMac::new(&srv.device_url, srv.ca.issue_device_identity(&udid));
    mac.udid = udid.clone();
    mac.serial = serial.clone();
    mac.enroll().await;
    let mut awaiting = mac.token_update_message();
    awaiting.insert("AwaitingConfiguration".into(), Plist::Boolean(true));
    assert_eq!(mac.checkin(&awaiting).await.status, 200);
    let mut seen = Vec::new();
    let mut filevault_before_configured = false;
    let mut reply = mac.idle().await;
    while let Some((cmd_uuid, request_type, cmd)) = reply.command() {
        if request_type == "InstallProfile" {
            let payload = cmd["Payload"].as_data().unwrap();
            let text = String::from_utf8_lossy(payload);
            if text.contains("com.apple.MCX.FileVault2") {
                assert!(text.contains("ForceEnableInSetupAssistant"), "{text}");
                filevault_before_configured |= !seen.iter().any(|s| s == "DeviceConfigured");
            }
        }
        seen.push(request_type);
        reply = mac.report(&cmd_uuid, "Acknowledged", &[]).await;
    }
    assert!(filevault_before_configured, "{seen:?}");
    srv.stop().await;
}

/// A Mac without an ADE record (or whose setup Russet does not know) is still released.
#[tokio::test]
async fn awaiting_configuration_without_a_dep_profile_gets_device_configured() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let mac = srv.mac();
    mac.enroll().await;
    let mut awaiting = mac.token_update_message();
    awaiting.insert("AwaitingConfiguration".into(), Plist::Boolean(true));
    assert_eq!(mac.checkin(&awaiting).await.status, 200);
    let reply = mac.idle().await;
    let (cmd_uuid, request_type, _) = reply.command().expect("a command");
    assert_eq!(request_type, "DeviceConfigured");
    let reply = mac.report(&cmd_uuid, "Acknowledged", &[]).await;
    assert!(reply.command().is_none());
    srv.stop().await;
}

/// Behind a private TLS chain, DEP profiles carry its root as `anchor_certs`, so Setup
/// Assistant trusts Russet's `url` before any profile is installed.
#[tokio::test]
async fn dep_profiles_carry_the_private_tls_root_as_anchor_certs() {
    let (srv, sim) = setup_with(Backend::Sqlite, 2, &[], true).await;
    linked(&srv, &sim, "corp").await;
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(json!({"profile": corp_profile()})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["anchor_certs"], json!(1), "{v}");
    assert_eq!(
        v["url"],
        json!(format!("{}/mdm/enroll", russet_tests::dep::PUBLIC_URL))
    );
    let uuid = v["profile_uuid"].as_str().unwrap();
    // What Apple received: the root of the TLS chain Russet serves, which is Russet's CA.
    let at_apple = sim
        .profiles()
        .into_iter()
        .find(|p| p.profile_uuid.as_deref() == Some(uuid))
        .expect("profile defined at the simulator");
    let anchors = at_apple.anchor_certs.expect("anchor_certs");
    let root = X509::from_der(&STANDARD.decode(&anchors[0]).unwrap()).unwrap();
    let ca_der = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(format!("{}/scep?operation=GetCACert", srv.device_url))
        .send()
        .await
        .expect("GetCACert")
        .bytes()
        .await
        .unwrap();
    assert_eq!(root, X509::from_der(&ca_der).expect("the CA alone, DER"));
    srv.stop().await;
}
