//! Configuration profiles as desired state, end to end: the real server, simulated Macs that
//! keep the profiles installed on them, and the truth read from the Macs — not from what the
//! server believes. On SQLite and on PostgreSQL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use russet_tests::managed_mac::{Channel, ENROLLMENT_PROFILE};
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    a_group_assignment_installs_verifies_and_follows_versions,
    drift_is_repaired_and_a_refusal_is_retried_a_bounded_number_of_times,
    user_scope_goes_to_the_user_channel_and_new_enrollments_get_profiles_first,
    smart_groups_follow_what_the_mac_reports,
    variables_are_expanded_for_each_mac_and_deleting_a_group_removes_what_it_assigned,
    delivered_profiles_are_signed_when_asked,
);

/// A Dock profile (`com.apple.dock`), valid by Apple's schema; `extra` goes into the payload.
fn dock(identifier: &str, uuid: &str, scope: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>{identifier}</string>
<key>PayloadUUID</key><string>{uuid}</string>
<key>PayloadDisplayName</key><string>Dock {identifier}</string>
<key>PayloadScope</key><string>{scope}</string>
<key>PayloadContent</key><array><dict>
  <key>PayloadType</key><string>com.apple.dock</string>
  <key>PayloadVersion</key><integer>1</integer>
  <key>PayloadIdentifier</key><string>{identifier}.dock</string>
  <key>PayloadUUID</key><string>{uuid}-P</string>
  <key>orientation</key><string>left</string>{extra}
</dict></array>
</dict></plist>"#
    )
    .into_bytes()
}

async fn upload(srv: &TestServer, bytes: &[u8]) -> Value {
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"mobileconfig": STANDARD.encode(bytes)})),
        )
        .await;
    assert!(status == 201 || status == 200, "{status} {v}");
    v
}

async fn call(srv: &TestServer, method: Method, path: &str, body: Value) -> Value {
    let (status, v) = srv.api(method, path, Some(body)).await;
    assert!((200..300).contains(&status), "{path}: {status} {v}");
    v
}

async fn group(srv: &TestServer, name: &str, filter: Option<&str>, devices: &[&str]) {
    call(
        srv,
        Method::POST,
        "/api/v1/groups",
        json!({"name": name, "filter": filter}),
    )
    .await;
    if !devices.is_empty() {
        call(
            srv,
            Method::POST,
            &format!("/api/v1/groups/{name}/devices"),
            json!({"devices": devices}),
        )
        .await;
    }
}

async fn assign(srv: &TestServer, identifier: &str, body: Value) -> Value {
    call(
        srv,
        Method::POST,
        &format!("/api/v1/profiles/{identifier}/assignments"),
        body,
    )
    .await
}

async fn status(srv: &TestServer, identifier: &str) -> Value {
    let (code, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/profiles/{identifier}/status"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    v
}

fn state_of(status: &Value, enrollment_id: &str) -> String {
    status["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["enrollment_id"] == json!(enrollment_id))
        .and_then(|d| d["state"].as_str())
        .unwrap_or("none")
        .to_string()
}

async fn managed(srv: &TestServer) -> ManagedMac {
    let mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    mac
}

async fn a_group_assignment_installs_verifies_and_follows_versions(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut a = managed(&srv).await;
    let mut b = managed(&srv).await;
    let mut outsider = managed(&srv).await;
    group(&srv, "Design", None, &[&a.mac.udid, &b.mac.serial]).await;
    upload(&srv, &dock("com.acme.dock", "D-1", "System", "")).await;

    let v = assign(&srv, "com.acme.dock", json!({"groups": ["Design"]})).await;
    assert_eq!(
        (
            v["reconciled"]["installs"].clone(),
            v["reconciled"]["commands"].clone()
        ),
        (json!(2), json!(1)),
        "one command for both Macs: {v}"
    );
    let st = status(&srv, "com.acme.dock").await;
    assert_eq!(state_of(&st, &a.mac.udid), "pending");

    // Installed, acknowledged, then verified by the Mac's own ProfileList.
    assert_eq!(a.converge().await, ["InstallProfile", "ProfileList"]);
    assert_eq!(b.converge().await, ["InstallProfile", "ProfileList"]);
    assert!(outsider.converge().await.is_empty());
    for mac in [&a, &b] {
        assert_eq!(mac.installed(Channel::Device)["com.acme.dock"].uuid, "D-1");
    }
    assert!(
        !outsider
            .installed(Channel::Device)
            .contains_key("com.acme.dock")
    );
    let st = status(&srv, "com.acme.dock").await;
    assert_eq!(st["counts"], json!({"verified": 2}), "{st}");
    // The command view shows the command, not the profile it carries (it may hold a
    // password): the payload is sealed.
    let install = a
        .handled
        .iter()
        .find(|(_, _, rt)| rt == "InstallProfile")
        .map(|(_, uuid, _)| uuid.clone())
        .expect("an InstallProfile");
    let (_, cmd) = srv
        .api(Method::GET, &format!("/api/v1/commands/{install}"), None)
        .await;
    assert_eq!(
        cmd["command"]["Command"]["Payload"],
        json!("(sealed)"),
        "{cmd}"
    );

    // A new version replaces the old on every Mac.
    let v = upload(&srv, &dock("com.acme.dock", "D-2", "System", "")).await;
    assert_eq!(v["reconciled"]["installs"], json!(2), "{v}");
    a.converge().await;
    b.converge().await;
    assert_eq!(a.installed(Channel::Device)["com.acme.dock"].uuid, "D-2");
    assert_eq!(
        status(&srv, "com.acme.dock").await["counts"],
        json!({"verified": 2})
    );

    // Unassigned: removed from the Macs, and nothing Russet did not install is touched.
    let v = call(
        &srv,
        Method::DELETE,
        "/api/v1/profiles/com.acme.dock/assignments",
        json!({"groups": ["Design"]}),
    )
    .await;
    assert_eq!(v["reconciled"]["removals"], json!(2), "{v}");
    assert_eq!(a.converge().await, ["RemoveProfile"]);
    b.converge().await;
    for mac in [&a, &b] {
        assert!(!mac.installed(Channel::Device).contains_key("com.acme.dock"));
        assert!(
            mac.installed(Channel::Device)
                .contains_key(ENROLLMENT_PROFILE)
        );
    }
    assert_eq!(
        status(&srv, "com.acme.dock").await["counts"],
        json!({"removed": 2})
    );
    // The device view lists the profile with its state.
    let (_, dev) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices/{}", a.mac.udid),
            None,
        )
        .await;
    assert_eq!(dev["profiles"][0]["state"], json!("removed"), "{dev}");
    srv.stop().await;
}

async fn drift_is_repaired_and_a_refusal_is_retried_a_bounded_number_of_times(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut mac = managed(&srv).await;
    upload(&srv, &dock("com.acme.dock", "D-1", "System", "")).await;
    assign(&srv, "com.acme.dock", json!({"devices": [mac.mac.serial]})).await;
    mac.converge().await;
    assert_eq!(
        state_of(&status(&srv, "com.acme.dock").await, &mac.mac.udid),
        "verified"
    );

    // Someone removes it by hand: the next ProfileList finds the drift and it goes back on.
    assert!(mac.remove_by_hand("com.acme.dock"));
    let v = call(
        &srv,
        Method::POST,
        "/api/v1/profiles/verify",
        json!({"devices": [mac.mac.udid]}),
    )
    .await;
    assert_eq!(v["asked"], json!(1));
    assert_eq!(
        mac.converge().await,
        ["ProfileList", "InstallProfile", "ProfileList"]
    );
    assert!(mac.installed(Channel::Device).contains_key("com.acme.dock"));
    assert_eq!(
        state_of(&status(&srv, "com.acme.dock").await, &mac.mac.udid),
        "verified"
    );

    // The Mac refuses a profile: failed, with Apple's error chain, and not resent at once.
    mac.refuse.insert("com.acme.refused".into());
    upload(&srv, &dock("com.acme.refused", "R-1", "System", "")).await;
    assign(&srv, "com.acme.refused", json!({"devices": [mac.mac.udid]})).await;
    assert_eq!(mac.converge().await, ["InstallProfile"]);
    let st = status(&srv, "com.acme.refused").await;
    let row = &st["devices"][0];
    assert_eq!(row["state"], json!("failed"), "{st}");
    assert_eq!(row["attempts"], json!(1));
    assert!(
        row["error"][0]["USEnglishDescription"]
            .as_str()
            .is_some_and(|e| e.contains("was refused")),
        "{st}"
    );
    assert!(
        row["next_attempt_at"].is_string(),
        "a retry is scheduled: {st}"
    );
    assert!(
        mac.converge().await.is_empty(),
        "no retry before the backoff"
    );
    // Verifying does not resend it either (it failed; it is not drift).
    call(
        &srv,
        Method::POST,
        "/api/v1/profiles/verify",
        json!({"devices": [mac.mac.udid]}),
    )
    .await;
    assert_eq!(mac.converge().await, ["ProfileList"]);
    assert_eq!(
        state_of(&status(&srv, "com.acme.refused").await, &mac.mac.udid),
        "failed"
    );
    srv.stop().await;
}

async fn user_scope_goes_to_the_user_channel_and_new_enrollments_get_profiles_first(
    backend: Backend,
) {
    let srv = TestServer::start(backend).await;
    let mut mac = managed(&srv).await;
    group(&srv, "Staff", None, &[&mac.mac.udid]).await;
    let greeting = "<key>autohide</key><true/>";
    upload(&srv, &dock("com.acme.user-dock", "U-1", "User", greeting)).await;
    let v = assign(&srv, "com.acme.user-dock", json!({"groups": ["Staff"]})).await;
    assert_eq!(
        v["reconciled"]["installs"],
        json!(0),
        "no user channel yet: {v}"
    );
    assert!(mac.converge().await.is_empty());

    // A user logs in: the profile goes to their channel, not the device's.
    mac.log_in_user("alice").await;
    let user = mac.user_enrollment_id().expect("user channel");
    assert_eq!(mac.converge_user().await, ["InstallProfile", "ProfileList"]);
    assert!(
        mac.installed(Channel::User)
            .contains_key("com.acme.user-dock")
    );
    assert!(
        !mac.installed(Channel::Device)
            .contains_key("com.acme.user-dock")
    );
    assert_eq!(
        state_of(&status(&srv, "com.acme.user-dock").await, &user),
        "verified"
    );

    // A Mac that joins by serial before it enrolls gets its profiles right after its
    // TokenUpdate, before work queued for it in the meantime.
    upload(&srv, &dock("com.acme.dock", "D-1", "System", "")).await;
    assign(&srv, "com.acme.dock", json!({"groups": ["Staff"]})).await;
    let mut newcomer = ManagedMac::new(srv.mac());
    newcomer.enroll().await;
    call(
        &srv,
        Method::POST,
        "/api/v1/groups/Staff/devices",
        json!({"devices": [newcomer.mac.serial]}),
    )
    .await;
    srv.enqueue(
        &newcomer.mac.udid,
        json!({"request_type": "DeviceInformation", "Queries": ["OSVersion"]}),
    )
    .await;
    let handled = newcomer.converge().await;
    assert_eq!(
        handled.first().map(String::as_str),
        Some("InstallProfile"),
        "{handled:?}"
    );
    assert!(handled.contains(&"DeviceInformation".to_string()));
    assert!(
        newcomer
            .installed(Channel::Device)
            .contains_key("com.acme.dock")
    );

    // Erased and enrolled again: the Mac is asked what it really has before anything else,
    // and what it lost comes back — though Russet had it verified.
    newcomer.profiles.retain(|id, _| id == ENROLLMENT_PROFILE);
    newcomer.enroll().await;
    assert_eq!(
        newcomer.converge().await,
        ["ProfileList", "InstallProfile", "ProfileList"]
    );
    assert!(
        newcomer
            .installed(Channel::Device)
            .contains_key("com.acme.dock")
    );
    srv.stop().await;
}

async fn smart_groups_follow_what_the_mac_reports(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut mac = managed(&srv).await; // authenticates as macOS 15.1
    group(&srv, "Before Sequoia", Some("os_version < 15"), &[]).await;
    upload(&srv, &dock("com.acme.legacy", "L-1", "System", "")).await;
    let v = assign(
        &srv,
        "com.acme.legacy",
        json!({"groups": ["Before Sequoia"]}),
    )
    .await;
    assert_eq!(v["reconciled"]["installs"], json!(0));

    // The Mac reports an older OS (DeviceInformation): it joins, and gets the profile.
    mac.os_version = "14.6".into();
    srv.enqueue(
        &mac.mac.udid,
        json!({"request_type": "DeviceInformation", "Queries": ["OSVersion"]}),
    )
    .await;
    let handled = mac.converge().await;
    assert_eq!(
        handled,
        ["DeviceInformation", "InstallProfile", "ProfileList"]
    );
    assert!(
        mac.installed(Channel::Device)
            .contains_key("com.acme.legacy")
    );

    // Updated to 15.2: it leaves the group, and the profile leaves the Mac.
    mac.os_version = "15.2".into();
    srv.enqueue(
        &mac.mac.udid,
        json!({"request_type": "DeviceInformation", "Queries": ["OSVersion"]}),
    )
    .await;
    assert_eq!(mac.converge().await, ["DeviceInformation", "RemoveProfile"]);
    assert!(
        !mac.installed(Channel::Device)
            .contains_key("com.acme.legacy")
    );
    srv.stop().await;
}

async fn variables_are_expanded_for_each_mac_and_deleting_a_group_removes_what_it_assigned(
    backend: Backend,
) {
    let srv = TestServer::start(backend).await;
    let mut a = managed(&srv).await;
    let mut b = managed(&srv).await;
    group(&srv, "Lab", None, &[&a.mac.udid, &b.mac.udid]).await;
    // The Dock's `persistent-others` is free text here: the serial goes into a label.
    let labelled = "<key>DeviceLabel</key><string>Mac $SERIAL</string>";
    let v = upload(&srv, &dock("com.acme.labelled", "V-1", "System", labelled)).await;
    assert_eq!(v["variables"], json!(["$SERIAL"]), "{v}");
    let v = assign(&srv, "com.acme.labelled", json!({"groups": ["Lab"]})).await;
    assert_eq!(
        v["reconciled"]["commands"],
        json!(2),
        "one command per Mac: {v}"
    );
    a.converge().await;
    b.converge().await;
    for mac in [&a, &b] {
        let text = String::from_utf8(
            mac.installed(Channel::Device)["com.acme.labelled"]
                .content
                .clone(),
        )
        .expect("UTF-8");
        assert!(text.contains(&format!("Mac {}", mac.mac.serial)), "{text}");
    }

    // Deleting the group takes away what was assigned to it.
    let (code, v) = srv.api(Method::DELETE, "/api/v1/groups/Lab", None).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(a.converge().await, ["RemoveProfile"]);
    assert_eq!(b.converge().await, ["RemoveProfile"]);
    assert!(
        !a.installed(Channel::Device)
            .contains_key("com.acme.labelled")
    );
    let (_, p) = srv
        .api(Method::GET, "/api/v1/profiles/com.acme.labelled", None)
        .await;
    assert_eq!(p["assignments"]["groups"], json!([]), "{p}");
    srv.stop().await;
}

async fn delivered_profiles_are_signed_when_asked(backend: Backend) {
    let srv = TestServer::start_with(backend, &["--sign-profiles"]).await;
    let mut mac = managed(&srv).await;
    upload(&srv, &dock("com.acme.dock", "D-1", "System", "")).await;
    assign(&srv, "com.acme.dock", json!({"devices": [mac.mac.udid]})).await;
    mac.converge().await;
    let p = &mac.installed(Channel::Device)["com.acme.dock"];
    assert!(p.signed, "signed by Russet");
    assert_eq!(p.uuid, "D-1");
    assert_eq!(
        state_of(&status(&srv, "com.acme.dock").await, &mac.mac.udid),
        "verified"
    );
    srv.stop().await;
}
