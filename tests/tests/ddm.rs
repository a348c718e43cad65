//! Declarative Device Management and OS updates end to end, on SQLite and PostgreSQL, with
//! simulated Macs that run Apple's DDM sync (tokens → declaration-items → each declaration →
//! status report) and keep what they installed:
//!
//! - an OS update on a group reaches exactly its Macs: the DeclarativeManagement command
//!   (with `SyncTokens`) is queued, the Mac syncs, holds the configuration and the activation
//!   that lists it, and applies it;
//! - the `DeclarationsToken` changes exactly when a Mac's set changes (a create, a delete, a
//!   membership change) and not otherwise (another group's update, a second sync);
//! - a declaration outside the Mac's set is a plain 404, never a 401;
//! - the per-device state follows the Mac's status reports (merged, not replaced): pending,
//!   downloading, installing, failed with Apple's reason, up to date; unsupported before 14;
//! - validation, 409 for a second update on a group, a viewer refused, the audit log, the CLI;
//! - hostile status reports get a plain 400 and break nothing.

use clap::Parser;
use reqwest::Method;
use russet_mdm::cli::{Cli, Command};
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    a_mac_syncs_its_os_update_end_to_end,
    the_token_changes_exactly_when_the_set_does,
    os_updates_are_checked_audited_and_gated,
    hostile_status_reports_get_a_plain_400,
    a_mac_older_than_14_is_unsupported,
    uploaded_declarations_reach_the_group,
);

const DEADLINE: &str = "2030-12-20T18:00";

async fn enforce(srv: &TestServer, group: &str, version: &str) -> i64 {
    let v = srv
        .api_ok(
            Method::POST,
            "/api/v1/os-updates",
            Some(
                json!({"group": group, "target_os_version": version, "deadline": DEADLINE,
                    "details_url": "https://it.example.com/macos"}),
            ),
        )
        .await;
    v["id"].as_i64().expect("id")
}

async fn enrolled(srv: &TestServer) -> ManagedMac {
    let mut mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    mac.converge().await;
    mac
}

/// The Mac's entry in the device view's `os_updates`.
async fn device_update(srv: &TestServer, mac: &ManagedMac) -> Value {
    let v = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{}", mac.mac.udid),
            None,
        )
        .await;
    let list = v["os_updates"].as_array().expect("os_updates");
    assert_eq!(list.len(), 1, "{v}");
    list[0].clone()
}

async fn counts(srv: &TestServer) -> Value {
    let v = srv.api_ok(Method::GET, "/api/v1/os-updates", None).await;
    v["os_updates"][0]["counts"].clone()
}

fn count(c: &Value, state: &str) -> u64 {
    c[state]
        .as_u64()
        .unwrap_or_else(|| panic!("{state} in {c}"))
}

/// How many DeclarativeManagement commands the Mac has handled.
fn ddm_commands(mac: &ManagedMac) -> usize {
    mac.handled
        .iter()
        .filter(|(_, _, t)| t == "DeclarativeManagement")
        .count()
}

async fn a_mac_syncs_its_os_update_end_to_end(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut mac = enrolled(&srv).await;
    let mut outside = enrolled(&srv).await;
    srv.group_with("Fleet", &[mac.mac.udid.as_str()]).await;
    let id = enforce(&srv, "Fleet", "15.2").await;
    let config = format!("org.russet.os-update.{id}");

    // Queued with SyncTokens, so the Mac syncs now; it holds the configuration and the
    // activation that lists it, and applies the update.
    mac.converge().await;
    assert_eq!(ddm_commands(&mac), 1, "{:?}", mac.handled);
    let token = mac.ddm.token.clone().expect("synced");
    assert_eq!(
        mac.ddm.commands[0]["SyncTokens"]["DeclarationsToken"],
        json!(token)
    );
    assert!(mac.ddm.commands[0]["SyncTokens"]["Timestamp"].is_string());
    let ids: Vec<&String> = mac.ddm.declarations.keys().collect();
    assert_eq!(ids, [&"org.russet.activation".to_string(), &config]);
    let c = &mac.ddm.declarations[&config];
    assert_eq!(
        c["Payload"],
        json!({"TargetOSVersion": "15.2", "TargetLocalDateTime": "2030-12-20T18:00:00",
               "DetailsURL": "https://it.example.com/macos"})
    );
    assert_eq!(
        mac.enforced_update(),
        Some(("15.2".to_string(), "2030-12-20T18:00:00".to_string()))
    );
    // The device view shows the channel: what the Mac fetched, how it took each declaration.
    let v = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{}", mac.mac.udid),
            None,
        )
        .await;
    let ddm = &v["ddm"];
    assert_eq!(ddm["declarations_token"], json!(token), "{ddm}");
    assert_eq!(ddm["fetched_token"], json!(token), "{ddm}");
    assert_eq!(ddm["errors"], json!([]), "{ddm}");
    let states: Vec<(String, bool, String)> = ddm["declarations"]
        .as_array()
        .expect("declarations")
        .iter()
        .map(|d| {
            (
                d["identifier"].as_str().unwrap_or("").to_owned(),
                d["active"].as_bool().unwrap_or(false),
                d["valid"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (
                "org.russet.activation".to_string(),
                true,
                "valid".to_string()
            ),
            (config.clone(), true, "valid".to_string()),
        ]
    );
    // The Mac outside the group is not told and has nothing.
    outside.converge().await;
    assert_eq!(ddm_commands(&outside), 0);
    outside.ddm_sync().await;
    assert!(outside.ddm.declarations.is_empty());
    // Another Mac's declaration is a plain 404 (never 401, which would unenroll it).
    for endpoint in [
        format!("declaration/configuration/{config}"),
        "declaration/activation/org.russet.activation".to_string(),
        "declaration/configurations/x".to_string(),
        "declaration/".to_string(),
        "no-such-endpoint".to_string(),
    ] {
        let r = outside.ddm_request(&endpoint, None).await;
        assert_eq!(r.status, 404, "{endpoint}");
    }
    let r = mac
        .ddm_request(&format!("declaration/asset/{config}"), None)
        .await;
    assert_eq!(r.status, 404, "a configuration asked for as an asset");

    // States from the Mac's reports: its first full report said downloading.
    let d = device_update(&srv, &mac).await;
    assert_eq!(d["state"], "downloading", "{d}");
    assert_eq!(d["pending_version"]["os-version"], "15.2", "{d}");
    assert_eq!(d["os_version"], "15.1", "{d}");
    assert_eq!(d["declaration_valid"], "valid", "{d}");
    let c = counts(&srv).await;
    assert_eq!(count(&c, "downloading"), 1, "{c}");
    assert_eq!(count(&c, "pending"), 0, "{c}");

    // Partial reports are merged: only install-state changes, the rest stays known.
    mac.ddm_update_progress("installing", None).await;
    let d = device_update(&srv, &mac).await;
    assert_eq!(d["state"], "installing", "{d}");
    assert_eq!(d["os_version"], "15.1", "{d}");
    assert_eq!(d["declaration_valid"], "valid", "{d}");
    mac.ddm_update_progress("failed", Some("Not enough free disk space"))
        .await;
    let d = device_update(&srv, &mac).await;
    assert_eq!(d["state"], "failed", "{d}");
    assert_eq!(d["reason"], "Not enough free disk space", "{d}");
    assert_eq!(count(&counts(&srv).await, "failed"), 1);
    mac.ddm_update_installed("24C101").await;
    assert_eq!(mac.os_version, "15.2");
    let d = device_update(&srv, &mac).await;
    assert_eq!(d["state"], "up_to_date", "{d}");
    let c = counts(&srv).await;
    assert_eq!(count(&c, "up_to_date"), 1, "{c}");
    assert_eq!(count(&c, "failed"), 0, "{c}");

    // Deleting it takes the configuration and the activation away from the Mac.
    srv.api_ok(Method::DELETE, &format!("/api/v1/os-updates/{id}"), None)
        .await;
    mac.converge().await;
    assert_eq!(ddm_commands(&mac), 2);
    assert!(
        mac.ddm.declarations.is_empty(),
        "{:?}",
        mac.ddm.declarations
    );
    assert_eq!(mac.enforced_update(), None);
    let v = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{}", mac.mac.udid),
            None,
        )
        .await;
    assert_eq!(v["os_updates"], json!([]), "{v}");
    srv.stop().await;
}

async fn the_token_changes_exactly_when_the_set_does(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut mac = enrolled(&srv).await;
    let mut other = enrolled(&srv).await;
    // A Mac with nothing assigned holds the empty set's token.
    assert!(mac.ddm_sync().await);
    let empty = mac.ddm.token.clone().expect("token");
    assert!(!mac.ddm_sync().await, "the same token: nothing to fetch");

    srv.group_with("Fleet", &[mac.mac.udid.as_str()]).await;
    srv.group_with("Others", &[other.mac.udid.as_str()]).await;
    // Another group's update changes nothing for this Mac: no command, the same token.
    enforce(&srv, "Others", "15.3").await;
    mac.converge().await;
    other.converge().await;
    assert_eq!(ddm_commands(&mac), 0);
    assert_eq!(ddm_commands(&other), 1);
    assert!(!mac.ddm_sync().await);
    assert_eq!(mac.ddm.token.as_deref(), Some(empty.as_str()));

    // Its own group's update changes it, once; syncing again fetches nothing.
    let id = enforce(&srv, "Fleet", "15.2").await;
    mac.converge().await;
    assert_eq!(ddm_commands(&mac), 1);
    let assigned = mac.ddm.token.clone().expect("token");
    assert_ne!(assigned, empty);
    let fetched = (mac.ddm.item_fetches, mac.ddm.declaration_fetches);
    assert!(!mac.ddm_sync().await);
    mac.converge().await;
    assert_eq!(ddm_commands(&mac), 1, "nothing changed: no second command");
    assert_eq!((mac.ddm.item_fetches, mac.ddm.declaration_fetches), fetched);
    // Two Macs with the same set share the token.
    let mut twin = enrolled(&srv).await;
    srv.api_ok(
        Method::POST,
        "/api/v1/groups/Fleet/devices",
        Some(json!({"devices": [twin.mac.udid]})),
    )
    .await;
    twin.converge().await;
    assert_eq!(ddm_commands(&twin), 1, "joining the group tells the Mac");
    assert_eq!(twin.ddm.token.as_deref(), Some(assigned.as_str()));

    // An erased Mac re-enrolls holding nothing: it is told again, though its set is the same;
    // a TokenUpdate alone tells nothing.
    twin.ddm = russet_tests::ddm_mac::DdmState::default();
    twin.enroll().await;
    twin.converge().await;
    assert_eq!(ddm_commands(&twin), 2, "re-enrolled: told again");
    assert_eq!(twin.ddm.token.as_deref(), Some(assigned.as_str()));
    assert_eq!(twin.ddm.declarations.len(), 2);
    let r = twin.mac.checkin(&twin.mac.token_update_message()).await;
    assert_eq!(r.status, 200);
    twin.converge().await;
    assert_eq!(ddm_commands(&twin), 2, "a TokenUpdate changes no set");

    // Leaving the group is a change: told, declarations gone, back to the empty token.
    srv.api_ok(
        Method::DELETE,
        "/api/v1/groups/Fleet/devices",
        Some(json!({"devices": [mac.mac.udid]})),
    )
    .await;
    mac.converge().await;
    assert_eq!(ddm_commands(&mac), 2);
    assert_eq!(mac.ddm.token.as_deref(), Some(empty.as_str()));
    assert!(mac.ddm.declarations.is_empty());
    // Deleting the group takes the update with it: the twin is told.
    srv.api_ok(Method::DELETE, "/api/v1/groups/Fleet", None)
        .await;
    twin.converge().await;
    assert_eq!(ddm_commands(&twin), 3);
    assert!(twin.ddm.declarations.is_empty());
    let (status, _) = srv
        .api(Method::DELETE, &format!("/api/v1/os-updates/{id}"), None)
        .await;
    assert_eq!(status, 404, "went with its group");
    srv.stop().await;
}

/// `russet os-update …` run in-process against `srv`.
async fn cli(srv: &TestServer, args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["russet", "os-update"];
    argv.extend_from_slice(args);
    argv.extend([
        "--server",
        srv.admin_url.as_str(),
        "--token",
        srv.token.as_str(),
    ]);
    let Command::OsUpdate(cmd) = Cli::try_parse_from(argv)?.command else {
        panic!("not an os-update command");
    };
    russet_mdm::cli::os_update::run(cmd).await
}

async fn os_updates_are_checked_audited_and_gated(backend: Backend) {
    let srv = TestServer::start(backend).await;
    srv.group_with("Fleet", &[]).await;
    let post = |body: Value| {
        let srv = &srv;
        async move {
            srv.api(Method::POST, "/api/v1/os-updates", Some(body))
                .await
        }
    };
    for (body, status, field) in [
        (
            json!({"group": "Fleet", "target_os_version": "15.x", "deadline": DEADLINE}),
            400,
            "target_os_version",
        ),
        (
            json!({"group": "Fleet", "target_os_version": "15.2", "deadline": DEADLINE,
                   "target_build_version": "abc"}),
            400,
            "target_build_version",
        ),
        (
            json!({"group": "Fleet", "target_os_version": "15.2", "deadline": "2020-01-01T10:00"}),
            400,
            "deadline",
        ),
        (
            json!({"group": "Fleet", "target_os_version": "15.2", "deadline": "2030-12-20T18:00Z"}),
            400,
            "deadline",
        ),
        (
            json!({"group": "Fleet", "target_os_version": "15.2", "deadline": DEADLINE,
                   "details_url": "javascript:alert(1)"}),
            400,
            "details_url",
        ),
        (
            json!({"group": "Nobody", "target_os_version": "15.2", "deadline": DEADLINE}),
            404,
            "group",
        ),
    ] {
        let (s, v) = post(body).await;
        assert_eq!(s, status, "{field}: {v}");
        let msg = v["error"]["message"].as_str().expect("message");
        assert!(msg.contains(&format!("{field}:")), "{field}: {msg}");
    }
    let (s, v) = post(json!({"group": "Fleet", "deadline": DEADLINE})).await;
    assert_eq!(s, 400, "a missing field: {v}");

    // The CLI enforces, lists and deletes; a second update on a group is a 409.
    cli(
        &srv,
        &[
            "enforce",
            "--group",
            "Fleet",
            "--version",
            "15.2",
            "--deadline",
            DEADLINE,
            "--build",
            "24C101",
        ],
    )
    .await
    .expect("enforce");
    let v = srv.api_ok(Method::GET, "/api/v1/os-updates", None).await;
    let u = &v["os_updates"][0];
    assert_eq!(u["group"], "Fleet", "{v}");
    assert_eq!(u["target_build_version"], "24C101", "{v}");
    assert_eq!(u["deadline"], "2030-12-20T18:00:00", "{v}");
    assert_eq!(u["counts"]["pending"], 0, "{v}");
    let id = u["id"].as_i64().expect("id");
    let (s, v) =
        post(json!({"group": "Fleet", "target_os_version": "15.3", "deadline": DEADLINE})).await;
    assert_eq!(s, 409, "{v}");
    cli(&srv, &["list"]).await.expect("list");

    // A viewer reads, but may not enforce or delete.
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/admins",
            Some(json!({"name": "vera", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let vera = v["token"].as_str().expect("token").to_owned();
    let (s, v) = srv
        .api_with_token(
            Method::DELETE,
            &format!("/api/v1/os-updates/{id}"),
            None,
            Some(&vera),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["permission"], "assign", "{v}");
    let (s, _) = srv
        .api_with_token(Method::GET, "/api/v1/os-updates", None, Some(&vera))
        .await;
    assert_eq!(s, 200);

    cli(&srv, &["delete", &id.to_string()])
        .await
        .expect("delete");
    let err = cli(&srv, &["delete", &id.to_string()])
        .await
        .expect_err("deleted already");
    assert!(err.to_string().contains("no OS update"), "{err}");
    let (s, _) = srv
        .api(Method::DELETE, "/api/v1/os-updates/abc", None)
        .await;
    assert_eq!(s, 404);

    let (_, v) = srv.api(Method::GET, "/api/v1/audit", None).await;
    let actions: Vec<(String, String)> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"].as_str().unwrap_or("").starts_with("os_update."))
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["target"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("os_update.delete".to_string(), id.to_string()),
            ("os_update.create".to_string(), id.to_string()),
        ]
    );
    srv.stop().await;
}

async fn hostile_status_reports_get_a_plain_400(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut mac = enrolled(&srv).await;
    srv.group_with("Fleet", &[mac.mac.udid.as_str()]).await;
    enforce(&srv, "Fleet", "15.2").await;
    mac.converge().await;
    for data in [
        None,
        Some(b"not json".to_vec()),
        Some(b"[]".to_vec()),
        Some(br#"{"StatusItems": "x", "Errors": []}"#.to_vec()),
        Some(br#"{"StatusItems": {"management": {"declarations": {"configurations": [{}]}}}, "Errors": []}"#.to_vec()),
        Some(format!("{{\"StatusItems\": {}1{}}}", "[".repeat(5000), "]".repeat(5000)).into_bytes()),
        Some(vec![b' '; 2 * 1024 * 1024]),
    ] {
        let size = data.as_ref().map(Vec::len);
        let r = mac.ddm_request("status", data).await;
        assert!(
            r.status == 400 || r.status == 413,
            "{size:?}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    // What the Mac said before still stands, and a good report is still taken.
    let d = device_update(&srv, &mac).await;
    assert_eq!(d["state"], "downloading", "{d}");
    mac.ddm_update_progress("installing", None).await;
    assert_eq!(device_update(&srv, &mac).await["state"], "installing");
    srv.stop().await;
}

async fn a_mac_older_than_14_is_unsupported(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut old = ManagedMac::new(srv.mac());
    old.os_version = "13.6.1".into();
    old.build_version = "22G313".into();
    old.enroll().await;
    old.converge().await;
    // Inventory's DeviceInformation says which macOS it runs.
    srv.api_ok(
        Method::POST,
        "/api/v1/inventory/refresh",
        Some(json!({"devices": [old.mac.udid]})),
    )
    .await;
    old.converge().await;
    let mut refused = enrolled(&srv).await;
    srv.group_with("Fleet", &[old.mac.udid.as_str(), refused.mac.udid.as_str()])
        .await;
    let id = enforce(&srv, "Fleet", "15.2").await;
    refused
        .ddm
        .refuse
        .insert(format!("org.russet.os-update.{id}"));
    old.converge().await;
    refused.converge().await;
    let d = device_update(&srv, &old).await;
    assert_eq!(d["state"], "unsupported", "{d}");
    assert!(
        d["reason"].as_str().is_some_and(|r| r.contains("macOS 14")),
        "{d}"
    );
    // A Mac that finds the declaration invalid: failed, with Apple's reason.
    let d = device_update(&srv, &refused).await;
    assert_eq!(d["state"], "failed", "{d}");
    assert!(
        d["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Error.ConfigurationCannotBeApplied")),
        "{d}"
    );
    let c = counts(&srv).await;
    assert_eq!(count(&c, "unsupported"), 1, "{c}");
    assert_eq!(count(&c, "failed"), 1, "{c}");
    srv.stop().await;
}

/// `russet ddm …` run in-process against `srv`.
async fn ddm_cli(srv: &TestServer, args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["russet", "ddm"];
    argv.extend_from_slice(args);
    argv.extend([
        "--server",
        srv.admin_url.as_str(),
        "--token",
        srv.token.as_str(),
    ]);
    let Command::Ddm(cmd) = Cli::try_parse_from(argv)?.command else {
        panic!("not a ddm command");
    };
    russet_mdm::cli::ddm::run(cmd).await
}

async fn uploaded_declarations_reach_the_group(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut mac = enrolled(&srv).await;
    let mut outside = enrolled(&srv).await;
    srv.group_with("Fleet", &[mac.mac.udid.as_str()]).await;
    let passcode = json!({
        "Type": "com.apple.configuration.passcode.settings",
        "Identifier": "com.example.passcode",
        "Payload": {"MinimumLength": 8, "RequireAlphanumericPasscode": true},
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("passcode.json");
    std::fs::write(&file, passcode.to_string()).expect("write");
    ddm_cli(
        &srv,
        &["upload", "--group", "Fleet", file.to_str().expect("path")],
    )
    .await
    .expect("upload");

    // The Mac gets it, turned on by Russet's activation; the Mac outside the group does not.
    mac.converge().await;
    assert_eq!(ddm_commands(&mac), 1);
    let d = &mac.ddm.declarations["com.example.passcode"];
    assert_eq!(d["Payload"], passcode["Payload"], "{d}");
    assert!(mac.ddm_active("com.example.passcode"));
    outside.converge().await;
    assert_eq!(ddm_commands(&outside), 0);
    let r = outside
        .ddm_request("declaration/configuration/com.example.passcode", None)
        .await;
    assert_eq!(r.status, 404);

    // Apple's schema decides what is accepted; each problem is named.
    for (declaration, why) in [
        (
            json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "x",
                   "Payload": {"MinimumLength": "eight"}}),
            "declaration.Payload.MinimumLength: expected <integer>",
        ),
        (
            json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "x",
                   "Payload": {"MinimumLenght": 8}}),
            "MinimumLenght: unknown key",
        ),
        (
            json!({"Type": "com.example.made-up", "Identifier": "x", "Payload": {}}),
            "declaration.Type:",
        ),
        (
            json!({"Type": "com.apple.configuration.passcode.settings",
                   "Identifier": "org.russet.activation", "Payload": {}}),
            "Russet's own",
        ),
    ] {
        let (s, v) = srv
            .api(
                Method::POST,
                "/api/v1/ddm/declarations",
                Some(json!({"group": "Fleet", "declaration": declaration})),
            )
            .await;
        assert_eq!(s, 400, "{why}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(why), "{why}: {msg}");
    }
    let (s, _) = srv
        .api(
            Method::POST,
            "/api/v1/ddm/declarations",
            Some(json!({"group": "Nobody", "declaration": passcode})),
        )
        .await;
    assert_eq!(s, 404);

    // Changing it is a new ServerToken the Mac fetches; listing shows it.
    let mut changed = passcode.clone();
    changed["Payload"]["MinimumLength"] = json!(12);
    srv.api_ok(
        Method::POST,
        "/api/v1/ddm/declarations",
        Some(json!({"group": "Fleet", "declaration": changed})),
    )
    .await;
    mac.converge().await;
    assert_eq!(ddm_commands(&mac), 2);
    assert_eq!(
        mac.ddm.declarations["com.example.passcode"]["Payload"]["MinimumLength"],
        12
    );
    let v = srv
        .api_ok(Method::GET, "/api/v1/ddm/declarations", None)
        .await;
    assert_eq!(
        v["declarations"][0]["identifier"], "com.example.passcode",
        "{v}"
    );
    assert_eq!(v["declarations"][0]["kind"], "configuration", "{v}");

    ddm_cli(&srv, &["delete", "com.example.passcode"])
        .await
        .expect("delete");
    mac.converge().await;
    assert_eq!(ddm_commands(&mac), 3);
    assert!(
        mac.ddm.declarations.is_empty(),
        "{:?}",
        mac.ddm.declarations
    );
    let (_, v) = srv.api(Method::GET, "/api/v1/audit", None).await;
    let actions: Vec<&str> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("ddm."))
        .collect();
    assert_eq!(
        actions,
        [
            "ddm.declaration.delete",
            "ddm.declaration.upload",
            "ddm.declaration.upload"
        ]
    );
    srv.stop().await;
}
