//! FileVault end to end (issue 14): the real server, simulated Macs that keep real FileVault
//! state — the profiles installed on them, a personal recovery key (PRK) really CMS-encrypted
//! with OpenSSL to the escrow certificate they received in Russet's FileVault profile, answers
//! to SecurityInfo and RotateFileVaultKey as macOS gives them. Enforce on a group, escrow,
//! reveal (audited, admins only, after the device is deleted), rotate (the old key kept,
//! superseded and proven), a Mac sending garbage (kept with an alert, never a crash), a
//! rotation the Mac refuses. On SQLite and on PostgreSQL.

use reqwest::Method;
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    filevault_is_enforced_escrowed_revealed_and_rotated,
    garbage_is_kept_with_an_alert_and_a_refused_rotation_keeps_the_key,
    a_mac_owing_its_key_is_asked_again_until_it_escrows,
    a_revealed_key_is_rotated_when_configured,
);

/// A static group holding the Mac, FileVault enforced on it, the profile installed.
async fn enforce(srv: &TestServer, mac: &mut ManagedMac, group: &str) -> Value {
    srv.api_ok(Method::POST, "/api/v1/groups", Some(json!({"name": group})))
        .await;
    srv.api_ok(
        Method::POST,
        &format!("/api/v1/groups/{group}/devices"),
        Some(json!({"devices": [mac.mac.udid]})),
    )
    .await;
    let v = srv
        .api_ok(
            Method::POST,
            "/api/v1/filevault/enforce",
            Some(json!({"group": group, "max_bypass_attempts": 2})),
        )
        .await;
    let handled = mac.converge().await;
    assert!(
        handled.contains(&"InstallProfile".to_string()),
        "{handled:?}"
    );
    v
}

/// Ask SecurityInfo (the inventory refresh) and answer it.
async fn security_info(srv: &TestServer, mac: &mut ManagedMac) {
    srv.api_ok(
        Method::POST,
        "/api/v1/inventory/refresh",
        Some(json!({"devices": [mac.mac.udid]})),
    )
    .await;
    let handled = mac.converge().await;
    assert!(handled.contains(&"SecurityInfo".to_string()), "{handled:?}");
}

async fn keys(srv: &TestServer, query: &str) -> Vec<Value> {
    let v = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/filevault-keys?{query}"),
            None,
        )
        .await;
    v["keys"].as_array().cloned().unwrap_or_default()
}

async fn audit_actions(srv: &TestServer) -> (Vec<String>, String) {
    let v = srv
        .api_ok(Method::GET, "/api/v1/audit?limit=200", None)
        .await;
    let actions = v["entries"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect();
    (actions, v.to_string())
}

async fn filevault_is_enforced_escrowed_revealed_and_rotated(backend: Backend) {
    let srv = TestServer::start_with(backend, &["--inventory", "true"]).await;
    let mut mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    mac.converge().await;
    let serial = mac.mac.serial.clone();
    let udid = mac.mac.udid.clone();
    // Before the profile, the Mac has nothing to escrow to.
    let status = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{udid}/filevault"),
            None,
        )
        .await;
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["escrowed"], false, "{status}");

    let v = enforce(&srv, &mut mac, "Encrypted").await;
    assert_eq!(v["profile"], "org.russet.filevault", "{v}");
    assert_eq!(v["assigned_groups"], json!(["Encrypted"]));
    // The Mac really holds the profile, with Russet's escrow certificate and FileVault on.
    let fv = mac
        .payload("com.apple.MCX.FileVault2")
        .expect("FileVault2 payload");
    assert_eq!(fv.get("Enable").and_then(|v| v.as_string()), Some("On"));
    assert!(mac.escrow_certificate().is_some());
    // The same settings again add no version.
    let again = srv
        .api_ok(
            Method::POST,
            "/api/v1/filevault/enforce",
            Some(json!({"group": "Encrypted", "max_bypass_attempts": 2})),
        )
        .await;
    assert_eq!(again["new_version"], false, "{again}");

    // SecurityInfo carries the PRK, enveloped to the escrow certificate: escrowed.
    security_info(&srv, &mut mac).await;
    let prk = mac.recovery_key.clone().expect("the Mac's key");
    let found = keys(&srv, &format!("serial={serial}&reason=user%20locked%20out")).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["key"], json!(prk));
    assert_eq!(found[0]["state"], "escrowed");
    assert_eq!(found[0]["source"], "SecurityInfo");
    // Reported again: still one key.
    security_info(&srv, &mut mac).await;
    assert_eq!(keys(&srv, &format!("udid={udid}")).await.len(), 1);
    let status = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{serial}/filevault"),
            None,
        )
        .await;
    assert_eq!(status["escrowed"], true, "{status}");
    assert!(
        status["current_key"]["key"].is_null(),
        "no secret in the status"
    );
    assert!(!status.to_string().contains(&prk));
    let device = srv
        .api_ok(Method::GET, &format!("/api/v1/devices/{udid}"), None)
        .await;
    assert_eq!(device["filevault"]["escrowed"], true, "{device}");
    assert_eq!(device["filevault"]["enabled"], true);
    assert!(!device.to_string().contains(&prk));

    // Reveals are audited with the reason, and the audit log holds no key.
    let (actions, text) = audit_actions(&srv).await;
    assert!(
        actions.iter().any(|a| a == "filevault.key.escrowed"),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a == "filevault.key.reveal"));
    assert!(actions.iter().any(|a| a == "filevault.enforce"));
    assert!(text.contains("user locked out"));
    assert!(!text.contains(&prk), "a key in the audit log");

    // Only admins reveal; an operator may enforce and rotate, a viewer neither.
    let token = |name: &str, role: &str| {
        let srv = &srv;
        let (name, role) = (name.to_string(), role.to_string());
        async move {
            let (code, v) = srv
                .api(
                    Method::POST,
                    "/api/v1/admins",
                    Some(json!({"name": name, "role": role})),
                )
                .await;
            assert_eq!(code, 201, "{v}");
            v["token"].as_str().expect("token").to_string()
        }
    };
    let operator = token("otto", "operator").await;
    let viewer = token("vera", "viewer").await;
    for t in [&operator, &viewer] {
        let (code, v) = srv
            .api_with_token(
                Method::GET,
                &format!("/api/v1/filevault-keys?serial={serial}"),
                None,
                Some(t),
            )
            .await;
        assert_eq!(code, 403, "{v}");
        assert_eq!(v["error"]["permission"], "key.reveal", "{v}");
    }
    let (code, v) = srv
        .api_with_token(
            Method::POST,
            &format!("/api/v1/devices/{udid}/filevault/rotate"),
            None,
            Some(&viewer),
        )
        .await;
    assert_eq!(
        (code, &v["error"]["permission"]),
        (403, &json!("disk_security"))
    );
    // The generic command endpoint cannot carry a rotation past the escrow.
    let (code, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/devices/{udid}/commands"),
            Some(
                json!({"request_type": "RotateFileVaultKey", "KeyType": "personal",
                        "FileVaultUnlock": {"Password": "x"}}),
            ),
        )
        .await;
    assert!(
        (400..500).contains(&code) && v.to_string().contains("filevault/rotate"),
        "{code} {v}"
    );

    // Rotation by an operator, the Mac named by serial: the escrowed key unlocks it, sealed in
    // the queue (the command's view shows no key), one at a time.
    let (code, v) = srv
        .api_with_token(
            Method::POST,
            &format!("/api/v1/devices/{serial}/filevault/rotate"),
            None,
            Some(&operator),
        )
        .await;
    assert_eq!(code, 202, "{v}");
    let command = v["command_uuid"].as_str().expect("uuid").to_string();
    let (code, _) = srv
        .api(
            Method::POST,
            &format!("/api/v1/devices/{udid}/filevault/rotate"),
            None,
        )
        .await;
    assert_eq!(code, 409, "a second rotation while one is pending");
    let shown = srv
        .api_ok(Method::GET, &format!("/api/v1/commands/{command}"), None)
        .await;
    assert!(!shown.to_string().contains(&prk), "{shown}");
    let handled = mac.converge().await;
    assert!(
        handled.contains(&"RotateFileVaultKey".to_string()),
        "{handled:?}"
    );
    let new_prk = mac.recovery_key.clone().expect("new key");
    assert_ne!(new_prk, prk, "the Mac rotated");
    let found = keys(&srv, &format!("serial={serial}")).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0]["key"], json!(new_prk));
    assert_eq!(found[0]["source"], "RotateFileVaultKey");
    assert!(found[0]["superseded_at"].is_null());
    assert_eq!(found[1]["key"], json!(prk), "the old key is kept");
    assert!(found[1]["superseded_at"].is_string(), "{found:?}");
    assert!(
        found[1]["verified_at"].is_string(),
        "the Mac accepted it: proven"
    );
    let status = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{udid}/filevault"),
            None,
        )
        .await;
    assert_eq!(status["rotations"][0]["state"], "rotated", "{status}");
    // The next SecurityInfo reports the new key: nothing new.
    security_info(&srv, &mut mac).await;
    assert_eq!(keys(&srv, &format!("serial={serial}")).await.len(), 2);

    // Sealed at rest: neither key is in the database's bytes.
    if backend == Backend::Sqlite {
        let bytes = srv.sqlite_bytes();
        for k in [&prk, &new_prk] {
            assert!(
                !bytes.windows(k.len()).any(|w| w == k.as_bytes()),
                "a recovery key in the clear in the database"
            );
        }
    }

    // The device record goes; the keys stay, found by serial.
    srv.api_ok(Method::DELETE, &format!("/api/v1/devices/{udid}"), None)
        .await;
    let found = keys(&srv, &format!("serial={serial}&reason=mac%20deleted")).await;
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["key"], json!(new_prk));
}

async fn garbage_is_kept_with_an_alert_and_a_refused_rotation_keeps_the_key(backend: Backend) {
    let srv = TestServer::start_with(backend, &["--inventory", "true"]).await;
    let mut mac = ManagedMac::new(srv.mac());
    // FileVault off until the user logs out with the profile installed (Defer).
    mac.filevault = false;
    mac.recovery_key = None;
    mac.enroll().await;
    mac.converge().await;
    let serial = mac.mac.serial.clone();
    let udid = mac.mac.udid.clone();
    enforce(&srv, &mut mac, "Laptops").await;
    mac.log_out();
    assert!(mac.filevault && mac.recovery_key.is_some());

    // A broken Mac sends bytes that are no envelope: kept as received, an alert, no crash.
    mac.garbage_escrow = true;
    security_info(&srv, &mut mac).await;
    let found = keys(&srv, &format!("serial={serial}")).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["state"], "undecryptable");
    assert!(found[0]["key"].is_null());
    let (actions, _) = audit_actions(&srv).await;
    assert!(
        actions.iter().any(|a| a == "filevault.key.undecryptable"),
        "{actions:?}"
    );
    let status = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{udid}/filevault"),
            None,
        )
        .await;
    assert_eq!(
        (status["escrowed"].clone(), status["undecryptable"].clone()),
        (json!(false), json!(1))
    );
    // No key to unlock a rotation with: refused, saying why.
    let (code, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/devices/{udid}/filevault/rotate"),
            None,
        )
        .await;
    assert_eq!(code, 409, "{v}");
    assert!(
        v.to_string().contains("no escrowed personal recovery key"),
        "{v}"
    );

    // Fixed: the real envelope arrives and is escrowed; the garbage stays.
    mac.garbage_escrow = false;
    security_info(&srv, &mut mac).await;
    let found = keys(&srv, &format!("serial={serial}")).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let prk = mac.recovery_key.clone().expect("key");
    assert_eq!(found[0]["key"], json!(prk));

    // The user changed the key behind Russet's back: the Mac refuses the rotation; the
    // rotation fails with Apple's reason and the escrowed key is still the current one.
    mac.recovery_key = Some(russet_tests::managed_mac::new_recovery_key());
    let v = srv
        .api_ok(
            Method::POST,
            &format!("/api/v1/devices/{udid}/filevault/rotate"),
            None,
        )
        .await;
    assert!(v["command_uuid"].is_string());
    mac.converge().await;
    let status = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{udid}/filevault"),
            None,
        )
        .await;
    assert_eq!(status["rotations"][0]["state"], "failed", "{status}");
    assert!(
        status["rotations"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("12080")),
        "{status}"
    );
    assert!(status["current_key"]["superseded_at"].is_null());
    let found = keys(&srv, &format!("serial={serial}")).await;
    assert_eq!(found[0]["key"], json!(prk), "{found:?}");
    // The Mac's next SecurityInfo reports its new key: escrowed, the old one superseded.
    security_info(&srv, &mut mac).await;
    let found = keys(&srv, &format!("serial={serial}")).await;
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        found[0]["key"],
        json!(mac.recovery_key.clone().expect("key"))
    );
    assert!(found[1]["superseded_at"].is_string());
}

async fn a_mac_owing_its_key_is_asked_again_until_it_escrows(backend: Backend) {
    // Re-asks after 1 s, then 2 s, … (3600 s, doubling to a day, by default).
    let srv = TestServer::start_with(
        backend,
        &["--inventory", "true", "--filevault-escrow-retry-secs", "1"],
    )
    .await;
    let mut mac = ManagedMac::new(srv.mac());
    mac.escrow_waits_for_login = true;
    mac.enroll().await;
    mac.converge().await;
    let serial = mac.mac.serial.clone();
    enforce(&srv, &mut mac, "Owing").await;
    // The profile is on, FileVault is on, no key yet: Russet asks again by itself.
    security_info(&srv, &mut mac).await;
    assert!(keys(&srv, &format!("serial={serial}")).await.is_empty());
    let mut asked = 0;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let handled = mac.converge().await;
        asked += handled.iter().filter(|h| *h == "SecurityInfo").count();
        if asked >= 1 {
            break;
        }
    }
    assert!(asked >= 1, "SecurityInfo was not asked again");
    // The user logs in: the next re-ask brings the key, and the asking stops.
    mac.escrow_waits_for_login = false;
    let mut escrowed = false;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        mac.converge().await;
        if !keys(&srv, &format!("serial={serial}")).await.is_empty() {
            escrowed = true;
            break;
        }
    }
    assert!(escrowed, "the key never arrived");
    let found = keys(&srv, &format!("serial={serial}")).await;
    assert_eq!(
        found[0]["key"],
        json!(mac.recovery_key.clone().expect("key"))
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let handled = mac.converge().await;
    assert!(
        !handled.contains(&"SecurityInfo".to_string()),
        "asked again after the key arrived: {handled:?}"
    );
}

async fn a_revealed_key_is_rotated_when_configured(backend: Backend) {
    // Off by default; here a second after a reveal (the sweep runs every second).
    let srv = TestServer::start_with(
        backend,
        &[
            "--inventory",
            "true",
            "--filevault-rotate-after-reveal-secs",
            "1",
            "--filevault-escrow-retry-secs",
            "1",
        ],
    )
    .await;
    let mut mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    mac.converge().await;
    let serial = mac.mac.serial.clone();
    enforce(&srv, &mut mac, "Rotated").await;
    security_info(&srv, &mut mac).await;
    let first = mac.recovery_key.clone().expect("key");
    // Nothing happens until someone looks at the key.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let handled = mac.converge().await;
    assert!(
        !handled.contains(&"RotateFileVaultKey".to_string()),
        "{handled:?}"
    );
    let found = keys(&srv, &format!("serial={serial}&reason=helpdesk")).await;
    assert_eq!(found[0]["key"], json!(first));
    let mut rotated = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        if mac
            .converge()
            .await
            .contains(&"RotateFileVaultKey".to_string())
        {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "no rotation after the reveal");
    let found = keys(&srv, &format!("serial={serial}")).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_ne!(found[0]["key"], json!(first));
    assert_eq!(
        found[0]["key"],
        json!(mac.recovery_key.clone().expect("key"))
    );
    let v = srv
        .api_ok(Method::GET, "/api/v1/audit?limit=200", None)
        .await;
    assert!(
        v["entries"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| e["action"] == "filevault.rotate" && e["actor"] == "russet")),
        "{v}"
    );
}
