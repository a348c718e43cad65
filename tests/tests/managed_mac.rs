//! The stateful simulated Mac against the real server, with commands sent by hand through the
//! generic command API: what later tests rely on (installing, listing and removing profiles on
//! both channels, refusing what macOS refuses) behaves like a Mac.

use base64::Engine;
use russet_tests::managed_mac::{Channel, ENROLLMENT_PROFILE};
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(a_managed_mac_installs_lists_and_removes_profiles);

fn mobileconfig(identifier: &str, uuid: &str, scope: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>{identifier}</string>
<key>PayloadUUID</key><string>{uuid}</string>
<key>PayloadDisplayName</key><string>Dock</string>
<key>PayloadScope</key><string>{scope}</string>
<key>PayloadContent</key><array><dict>
  <key>PayloadType</key><string>com.apple.dock</string>
  <key>PayloadVersion</key><integer>1</integer>
  <key>PayloadIdentifier</key><string>{identifier}.dock</string>
  <key>PayloadUUID</key><string>{uuid}-1</string>
  <key>orientation</key><string>left</string>
</dict></array>
</dict></plist>"#
    )
    .into_bytes()
}

fn install(profile: &[u8]) -> Value {
    json!({
        "request_type": "InstallProfile",
        "Payload": base64::engine::general_purpose::STANDARD.encode(profile),
    })
}

async fn status_of(srv: &TestServer, uuid: &str) -> Value {
    let (code, v) = srv
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/commands/{uuid}"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    v["devices"][0].clone()
}

async fn a_managed_mac_installs_lists_and_removes_profiles(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut mac = ManagedMac::new(srv.mac());
    mac.enroll().await;

    let dock = mobileconfig("com.example.dock", "AAAA-1", "System");
    let c1 = srv.enqueue(&mac.mac.udid, install(&dock)).await;
    assert_eq!(mac.sync().await, ["InstallProfile"]);
    let p = &mac.installed(Channel::Device)["com.example.dock"];
    assert!(p.managed && !p.signed && p.uuid == "AAAA-1");
    assert_eq!(p.payloads[0].payload_type, "com.apple.dock");
    assert_eq!(status_of(&srv, &c1).await["status"], json!("Acknowledged"));

    // A User-scope profile is refused on the device channel, as macOS does.
    let user_dock = mobileconfig("com.example.user-dock", "BBBB-1", "User");
    let c2 = srv.enqueue(&mac.mac.udid, install(&user_dock)).await;
    mac.sync().await;
    let e = status_of(&srv, &c2).await;
    assert_eq!(e["status"], json!("Error"), "{e}");
    assert!(
        e["result"]["ErrorChain"][0]["USEnglishDescription"]
            .as_str()
            .is_some_and(|m| m.contains("User profile cannot be installed on the Device channel"))
    );

    // ... and installed on a user's channel.
    mac.log_in_user("alice").await;
    let user = mac.user_enrollment_id().expect("user channel");
    srv.enqueue(&user, install(&user_dock)).await;
    assert_eq!(mac.sync_user().await, ["InstallProfile"]);
    assert!(
        mac.installed(Channel::User)
            .contains_key("com.example.user-dock")
    );
    assert!(
        !mac.installed(Channel::Device)
            .contains_key("com.example.user-dock")
    );

    // ProfileList (managed only) lists what MDM installed; without ManagedOnly, the
    // enrollment profile too.
    let lm = srv
        .enqueue(
            &mac.mac.udid,
            json!({"request_type": "ProfileList", "ManagedOnly": true}),
        )
        .await;
    let la = srv
        .enqueue(&mac.mac.udid, json!({"request_type": "ProfileList"}))
        .await;
    assert_eq!(mac.sync().await, ["ProfileList", "ProfileList"]);
    let ids = |v: &Value| -> Vec<String> {
        v["result"]["ProfileList"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["PayloadIdentifier"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids(&status_of(&srv, &lm).await), ["com.example.dock"]);
    assert_eq!(
        ids(&status_of(&srv, &la).await),
        ["com.example.dock", ENROLLMENT_PROFILE]
    );

    // RemoveProfile removes what MDM installed, and refuses the rest.
    let r1 = srv
        .enqueue(
            &mac.mac.udid,
            json!({"request_type": "RemoveProfile", "Identifier": "com.example.dock"}),
        )
        .await;
    let r2 = srv
        .enqueue(
            &mac.mac.udid,
            json!({"request_type": "RemoveProfile", "Identifier": ENROLLMENT_PROFILE}),
        )
        .await;
    mac.sync().await;
    assert_eq!(status_of(&srv, &r1).await["status"], json!("Acknowledged"));
    assert_eq!(status_of(&srv, &r2).await["status"], json!("Error"));
    assert!(
        !mac.installed(Channel::Device)
            .contains_key("com.example.dock")
    );
    assert!(
        mac.installed(Channel::Device)
            .contains_key(ENROLLMENT_PROFILE)
    );

    // A person removes a profile by hand: the Mac's list is the truth.
    srv.enqueue(&mac.mac.udid, install(&dock)).await;
    mac.sync().await;
    assert!(mac.remove_by_hand("com.example.dock"));
    assert!(
        !mac.installed(Channel::Device)
            .contains_key("com.example.dock")
    );
    srv.stop().await;
}
