//! Recovery Lock end to end, on SQLite and PostgreSQL, against simulated Macs that keep a real
//! Recovery Lock password: a random password set is exactly the one escrowed and the Mac
//! verifies it; a rotation carries the current password and the Mac takes it; a change the Mac
//! refuses leaves the previous password in effect; a clear; the escrow outlives the device
//! record; every reveal is audited and admin-only; Macs that can't take one are refused; a
//! whole group at once.

use reqwest::Method;
use russet_mdm::cli::Command;
use russet_tests::{Backend, ManagedMac, SimMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    set_rotate_and_clear_follow_the_mac_and_are_verified,
    a_refused_change_keeps_the_previous_password_in_effect,
    passwords_outlive_the_device_and_only_admins_reveal_them,
    macs_that_cannot_take_it_are_refused,
    a_group_gets_one_password_per_mac,
    the_cli_sets_shows_and_clears,
    no_password_in_plaintext_in_the_database,
);

/// A server that asks every new Mac for its inventory, so it knows which can take Recovery Lock.
async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, &["--inventory", "true"]).await
}

/// Enrolled, inventory answered (the server knows it is Apple silicon and its macOS).
async fn enrolled_mac(srv: &TestServer) -> ManagedMac {
    let mut mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    mac.sync().await;
    mac
}

/// Let the Mac work through everything the server has for it, over as many connections as it
/// takes (an observer's follow-up is queued after the answer that caused it).
async fn settle(mac: &mut ManagedMac) -> Vec<String> {
    let mut all = Vec::new();
    for _ in 0..6 {
        let round = mac.sync().await;
        if round.is_empty() {
            return all;
        }
        all.extend(round);
    }
    panic!("the server kept sending commands: {all:?}");
}

async fn reveal(srv: &TestServer, query: &str) -> Value {
    let (status, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/recovery-lock-passwords?{query}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

fn set_path(device: &str) -> String {
    format!("/api/v1/devices/{device}/recovery-lock")
}

async fn set_rotate_and_clear_follow_the_mac_and_are_verified(backend: Backend) {
    let srv = start(backend).await;
    let mut mac = enrolled_mac(&srv).await;
    let serial = mac.mac.serial.clone();
    let udid = mac.mac.udid.clone();

    // Nothing escrowed yet: the Mac's own word that Recovery Lock is off.
    let v = reveal(&srv, &format!("serial={serial}")).await;
    assert_eq!(v["passwords"], json!([]));
    assert_eq!(v["device"]["udid"], json!(udid));
    assert_eq!(v["device"]["recovery_lock_enabled"], json!(false));

    // A random password, named by serial number (errata: every verb takes UDID or serial).
    let (status, v) = srv
        .api(Method::POST, &set_path(&serial), Some(json!({})))
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (
            &v["kind"],
            &v["generated"],
            &v["replaces_current"],
            &v["udid"]
        ),
        (&json!("set"), &json!(true), &json!(false), &json!(udid))
    );
    assert_eq!(v["password"], json!("(escrowed)"), "the set never shows it");
    let first_uuid = v["command_uuid"].as_str().expect("uuid").to_string();
    // The queued command shows its shape, never the password.
    let (_, cv) = srv
        .api(Method::GET, &format!("/api/v1/commands/{first_uuid}"), None)
        .await;
    assert_eq!(cv["command"]["Command"]["NewPassword"], json!("(sealed)"));

    let handled = settle(&mut mac).await;
    assert_eq!(
        handled,
        ["SetRecoveryLock", "VerifyRecoveryLock", "SecurityInfo"],
        "set, then verified, then the Mac's security facts refreshed"
    );
    let on_mac = mac
        .recovery_lock_password
        .clone()
        .expect("the Mac has a lock");
    let groups: Vec<&str> = on_mac.split('-').collect();
    assert!(
        groups.len() == 4 && groups.iter().all(|g| g.len() == 5),
        "{on_mac}"
    );
    let v = reveal(&srv, &format!("serial={serial}")).await;
    assert_eq!(v["passwords"][0]["password"], json!(on_mac));
    assert_eq!(v["passwords"][0]["state"], json!("verified"));
    assert_eq!(v["passwords"][0]["command_uuid"], json!(first_uuid));
    assert!(v["passwords"][0]["acknowledged_at"].is_string());
    assert_eq!(v["device"]["recovery_lock_enabled"], json!(true));
    // The device view shows the state, never the password.
    let (status, d) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices/{}", mac.mac.udid),
            None,
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["recovery_lock"]["enabled"], json!(true), "{d}");
    assert_eq!(
        d["recovery_lock"]["latest"]["state"],
        json!("verified"),
        "{d}"
    );
    assert!(!d.to_string().contains(&on_mac), "{d}");

    // A rotation to a chosen password carries the current one; the Mac takes it.
    let chosen = "correct horse battery";
    let (status, v) = srv
        .api(
            Method::POST,
            &set_path(&udid),
            Some(json!({"password": chosen})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (&v["generated"], &v["replaces_current"]),
        (&json!(false), &json!(true))
    );
    settle(&mut mac).await;
    assert_eq!(mac.recovery_lock_password.as_deref(), Some(chosen));
    let v = reveal(&srv, &format!("udid={udid}")).await;
    let states: Vec<(&str, &str)> = v["passwords"]
        .as_array()
        .expect("passwords")
        .iter()
        .map(|p| {
            (
                p["password"].as_str().unwrap_or(""),
                p["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [(chosen, "verified"), (on_mac.as_str(), "superseded")]
    );

    // A password that can't be typed in recoveryOS is refused, without being echoed.
    for bad in ["short", "pässwort-lang", " padded password "] {
        let (status, v) = srv
            .api(
                Method::POST,
                &set_path(&udid),
                Some(json!({"password": bad})),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(!v.to_string().contains(bad), "{v}");
    }

    // Clear: an empty NewPassword with the current password.
    let (status, v) = srv.api(Method::DELETE, &set_path(&udid), None).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["kind"], json!("clear"));
    settle(&mut mac).await;
    assert_eq!(mac.recovery_lock_password, None, "the Mac has no lock");
    let v = reveal(&srv, &format!("udid={udid}")).await;
    assert_eq!(
        (&v["passwords"][0]["kind"], &v["passwords"][0]["state"]),
        (&json!("clear"), &json!("verified"))
    );
    assert_eq!(v["passwords"][1]["state"], json!("superseded"));
    assert_eq!(v["device"]["recovery_lock_enabled"], json!(false));
    let (status, v) = srv.api(Method::DELETE, &set_path(&udid), None).await;
    assert_eq!(status, 409, "nothing left to clear: {v}");

    // Set again after a clear: no CurrentPassword needed, and the Mac takes it.
    let (status, v) = srv
        .api(Method::POST, &set_path(&udid), Some(json!({})))
        .await;
    assert_eq!((status, &v["replaces_current"]), (201, &json!(false)));
    settle(&mut mac).await;
    let v = reveal(&srv, &format!("udid={udid}")).await;
    assert_eq!(
        v["passwords"][0]["password"].as_str(),
        mac.recovery_lock_password.as_deref()
    );
    assert_eq!(v["passwords"][0]["state"], json!("verified"));
    srv.stop().await;
}

async fn a_refused_change_keeps_the_previous_password_in_effect(backend: Backend) {
    let srv = start(backend).await;
    let mut mac = enrolled_mac(&srv).await;
    let udid = mac.mac.udid.clone();
    let (status, _) = srv
        .api(
            Method::POST,
            &set_path(&udid),
            Some(json!({"password": "first-password"})),
        )
        .await;
    assert_eq!(status, 201);
    settle(&mut mac).await;

    // Someone changed it at the Mac: the next rotation's CurrentPassword is wrong, macOS says
    // Error, and the escrow says so.
    mac.recovery_lock_password = Some("changed-at-the-mac".into());
    let (status, _) = srv
        .api(
            Method::POST,
            &set_path(&udid),
            Some(json!({"password": "second-password"})),
        )
        .await;
    assert_eq!(status, 201);
    let handled = settle(&mut mac).await;
    assert_eq!(handled, ["SetRecoveryLock"], "nothing to verify");
    assert_eq!(
        mac.recovery_lock_password.as_deref(),
        Some("changed-at-the-mac")
    );
    let v = reveal(&srv, &format!("udid={udid}")).await;
    assert_eq!(v["passwords"][0]["state"], json!("failed"));
    assert!(
        v["passwords"][0]["failure"]
            .as_str()
            .unwrap_or("")
            .contains("Recovery Lock password is missing or incorrect"),
        "{v}"
    );
    assert_eq!(v["passwords"][1]["state"], json!("verified"));

    // Back to the escrowed password: the next rotation carries it (not the failed one).
    mac.recovery_lock_password = Some("first-password".into());
    let (status, _) = srv
        .api(
            Method::POST,
            &set_path(&udid),
            Some(json!({"password": "third-password"})),
        )
        .await;
    assert_eq!(status, 201);
    settle(&mut mac).await;
    assert_eq!(
        mac.recovery_lock_password.as_deref(),
        Some("third-password")
    );
    let v = reveal(&srv, &format!("udid={udid}")).await;
    let states: Vec<&str> = v["passwords"]
        .as_array()
        .expect("passwords")
        .iter()
        .filter_map(|p| p["state"].as_str())
        .collect();
    assert_eq!(states, ["verified", "failed", "superseded"]);

    // A verification that says no fails the escrow too.
    let (status, _) = srv
        .api(Method::POST, &set_path(&udid), Some(json!({})))
        .await;
    assert_eq!(status, 201);
    let set = mac.mac.idle().await;
    let (uuid, rt, _) = set.command().expect("SetRecoveryLock");
    assert_eq!(rt, "SetRecoveryLock");
    // The Mac acknowledges, then a person changes it again before the verification.
    let reply = mac.mac.report(&uuid, "Acknowledged", &[]).await;
    assert!(reply.command().is_none());
    mac.recovery_lock_password = Some("not-the-escrowed-one".into());
    settle(&mut mac).await;
    let v = reveal(&srv, &format!("udid={udid}")).await;
    assert_eq!(v["passwords"][0]["state"], json!("failed"));
    assert!(
        v["passwords"][0]["failure"]
            .as_str()
            .unwrap_or("")
            .contains("PasswordVerified false"),
        "{v}"
    );
    srv.stop().await;
}

async fn create_admin(srv: &TestServer, name: &str, role: &str) -> String {
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/admins",
            Some(json!({"name": name, "role": role})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

async fn passwords_outlive_the_device_and_only_admins_reveal_them(backend: Backend) {
    let srv = start(backend).await;
    let mut mac = enrolled_mac(&srv).await;
    let (serial, udid) = (mac.mac.serial.clone(), mac.mac.udid.clone());
    let viewer = create_admin(&srv, "vera", "viewer").await;
    let operator = create_admin(&srv, "otto", "operator").await;

    // A viewer may not set; an operator may set but not read.
    let (status, v) = srv
        .api_with_token(
            Method::POST,
            &set_path(&udid),
            Some(json!({})),
            Some(&viewer),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = srv
        .api_with_token(
            Method::POST,
            &set_path(&udid),
            Some(json!({})),
            Some(&operator),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["password"], json!("(escrowed)"));
    settle(&mut mac).await;
    let password = mac.recovery_lock_password.clone().expect("set");
    let path = format!("/api/v1/recovery-lock-passwords?serial={serial}");
    for token in [&viewer, &operator] {
        let (status, v) = srv
            .api_with_token(Method::GET, &path, None, Some(token))
            .await;
        assert_eq!(status, 403, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("key.reveal"),
            "{v}"
        );
    }

    // The device record goes; the password stays, by serial and by UDID.
    let (status, _) = srv
        .api(Method::DELETE, &format!("/api/v1/devices/{udid}"), None)
        .await;
    assert!(status == 200 || status == 204, "{status}");
    let v = reveal(
        &srv,
        &format!("serial={serial}&reason=Mac%20at%20the%20desk"),
    )
    .await;
    assert_eq!(v["device"], Value::Null, "the device record is gone");
    assert_eq!(v["passwords"][0]["password"], json!(password));
    assert_eq!(v["passwords"][0]["issued_by"], json!("otto"));
    let v = reveal(&srv, &format!("udid={udid}")).await;
    assert_eq!(v["passwords"].as_array().map(Vec::len), Some(1));
    let (status, _) = srv
        .api(Method::GET, "/api/v1/recovery-lock-passwords", None)
        .await;
    assert_eq!(status, 400, "a serial or UDID is required");

    // Every reveal and set is audited, and no entry holds the password.
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    let entries = audit["entries"].as_array().expect("entries");
    let reveals: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "recovery_lock.reveal")
        .collect();
    assert_eq!(reveals.len(), 2);
    let by_serial = reveals.last().expect("the earlier reveal");
    assert_eq!(by_serial["actor"], json!("admin"));
    assert_eq!(by_serial["target"], json!(serial));
    assert_eq!(by_serial["detail"]["reason"], json!("Mac at the desk"));
    let set = entries
        .iter()
        .find(|e| e["action"] == "recovery_lock.set")
        .expect("set audited");
    assert_eq!(set["actor"], json!("otto"));
    assert!(
        !audit.to_string().contains(&password),
        "no secret in the audit log"
    );
    srv.stop().await;
}

async fn macs_that_cannot_take_it_are_refused(backend: Backend) {
    let srv = start(backend).await;
    let (status, _) = srv
        .api(Method::POST, &set_path("NO-SUCH-MAC"), Some(json!({})))
        .await;
    assert_eq!(status, 404);

    let mut intel = ManagedMac::new(srv.mac());
    intel.is_apple_silicon = false;
    intel.model = "MacBookPro16,1".into();
    intel.enroll().await;
    intel.sync().await;
    let (status, v) = srv
        .api(Method::POST, &set_path(&intel.mac.udid), Some(json!({})))
        .await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Apple silicon")
    );

    // An Intel Mac that has not said so yet gets the command, and macOS refuses it: the escrow
    // records the refusal.
    let mut unknown = ManagedMac::new(srv.mac());
    unknown.is_apple_silicon = false;
    unknown.enroll().await;
    let (status, v) = srv
        .api(Method::POST, &set_path(&unknown.mac.udid), Some(json!({})))
        .await;
    assert_eq!(status, 201, "facts unknown: allowed: {v}");
    settle(&mut unknown).await;
    assert_eq!(unknown.recovery_lock_password, None);
    let v = reveal(&srv, &format!("udid={}", unknown.mac.udid)).await;
    assert_eq!(v["passwords"][0]["state"], json!("failed"));
    assert!(
        v["passwords"][0]["failure"]
            .as_str()
            .unwrap_or("")
            .contains("Apple silicon"),
        "{v}"
    );
    let (status, _) = srv
        .api(Method::POST, &set_path(&unknown.mac.udid), Some(json!({})))
        .await;
    assert_eq!(status, 422, "now the server knows");

    let mut old = ManagedMac::new(srv.mac());
    old.os_version = "11.4".into();
    old.enroll().await;
    old.sync().await;
    let (status, v) = srv
        .api(Method::POST, &set_path(&old.mac.udid), Some(json!({})))
        .await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("11.5")
    );

    // Checked out: it would never get the command.
    let gone = enrolled_mac(&srv).await;
    let out = SimMac::dict(&[
        ("MessageType", plist::Value::String("CheckOut".into())),
        ("Topic", plist::Value::String(gone.mac.topic.clone())),
        ("UDID", plist::Value::String(gone.mac.udid.clone())),
    ]);
    assert_eq!(gone.mac.checkin(&out).await.status, 200);
    let (status, v) = srv
        .api(Method::POST, &set_path(&gone.mac.udid), Some(json!({})))
        .await;
    assert_eq!(status, 409, "{v}");

    // The generic command path can't bypass the escrow.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/commands",
            Some(json!({
                "devices": [old.mac.udid],
                "command": {"request_type": "SetRecoveryLock", "NewPassword": "sneaky-password"},
            })),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("/recovery-lock"),
        "{v}"
    );

    // A second change while the first has not reached the Mac would carry the wrong
    // CurrentPassword: refused until the Mac took the first.
    let mut mac = enrolled_mac(&srv).await;
    let (status, _) = srv
        .api(Method::POST, &set_path(&mac.mac.udid), Some(json!({})))
        .await;
    assert_eq!(status, 201);
    let (status, v) = srv
        .api(Method::POST, &set_path(&mac.mac.udid), Some(json!({})))
        .await;
    assert_eq!(status, 409, "{v}");
    settle(&mut mac).await;
    let (status, _) = srv
        .api(Method::POST, &set_path(&mac.mac.udid), Some(json!({})))
        .await;
    assert_eq!(status, 201);
    srv.stop().await;
}

async fn a_group_gets_one_password_per_mac(backend: Backend) {
    let srv = start(backend).await;
    let mut a = enrolled_mac(&srv).await;
    let mut b = enrolled_mac(&srv).await;
    let mut intel = ManagedMac::new(srv.mac());
    intel.is_apple_silicon = false;
    intel.enroll().await;
    intel.sync().await;
    let (status, v) = srv
        .api(Method::POST, "/api/v1/groups", Some(json!({"name": "Lab"})))
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups/Lab/devices",
            Some(json!({"devices": [a.mac.serial, b.mac.udid, intel.mac.serial]})),
        )
        .await;
    assert!(status == 200 || status == 201, "{v}");

    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/recovery-lock",
            Some(json!({"group": "Lab"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["queued"], json!(2), "{v}");
    let devices = v["devices"].as_array().expect("devices");
    let refused = devices
        .iter()
        .find(|d| d["udid"] == json!(intel.mac.udid))
        .expect("the Intel Mac is listed");
    assert_eq!(refused["queued"], json!(false));
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("Apple silicon")
    );

    settle(&mut a).await;
    settle(&mut b).await;
    settle(&mut intel).await;
    assert_eq!(intel.recovery_lock_password, None);
    let (pa, pb) = (
        a.recovery_lock_password.clone().expect("a has one"),
        b.recovery_lock_password.clone().expect("b has one"),
    );
    assert_ne!(pa, pb, "one password per Mac");
    for (mac, password) in [(&a, &pa), (&b, &pb)] {
        let v = reveal(&srv, &format!("serial={}", mac.mac.serial)).await;
        assert_eq!(v["passwords"][0]["password"], json!(password));
        assert_eq!(v["passwords"][0]["state"], json!("verified"));
    }
    let (status, _) = srv
        .api(
            Method::POST,
            "/api/v1/recovery-lock",
            Some(json!({"group": "Nope"})),
        )
        .await;
    assert_eq!(status, 404);
    srv.stop().await;
}

/// `russet recovery-lock …` run in-process against `srv`; what it prints.
async fn cli(srv: &TestServer, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["recovery-lock"];
    argv.extend_from_slice(args);
    let Command::RecoveryLock(cmd) = srv.cli(&argv)?.command else {
        panic!("not a recovery-lock command");
    };
    russet_mdm::cli::recovery_lock::execute(cmd).await
}

async fn the_cli_sets_shows_and_clears(backend: Backend) {
    let srv = start(backend).await;
    let mut mac = enrolled_mac(&srv).await;
    let (serial, udid) = (mac.mac.serial.clone(), mac.mac.udid.clone());

    let out = cli(&srv, &["set", &serial]).await.expect("set");
    assert!(out.contains(&format!("queued for {udid}")), "{out}");
    assert!(out.contains("recovery-lock show --serial"), "{out}");
    settle(&mut mac).await;
    let password = mac.recovery_lock_password.clone().expect("set");
    assert!(!out.contains(&password), "the set never prints it");

    let out = cli(
        &srv,
        &["show", "--serial", &serial, "--reason", "ticket 42"],
    )
    .await
    .expect("show");
    assert!(out.contains("IsRecoveryLockEnabled=true"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("PASSWORD")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&password) && l.contains("verified")),
        "{out}"
    );
    let out = cli(&srv, &["show", "--udid", &udid, "--json"])
        .await
        .expect("show --json");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["passwords"][0]["password"], json!(password));

    let out = cli(&srv, &["set", &udid, "--password", "typed-by-hand"])
        .await
        .expect("rotate");
    assert!(out.contains("rotation"), "{out}");
    settle(&mut mac).await;
    assert_eq!(mac.recovery_lock_password.as_deref(), Some("typed-by-hand"));
    let out = cli(&srv, &["clear", &serial]).await.expect("clear");
    assert!(out.contains("Clear of Recovery Lock"), "{out}");
    settle(&mut mac).await;
    assert_eq!(mac.recovery_lock_password, None);

    let (status, _) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Desk"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = srv
        .api(
            Method::POST,
            "/api/v1/groups/Desk/devices",
            Some(json!({"devices": [serial]})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status}");
    let out = cli(&srv, &["set", "--group", "Desk"]).await.expect("group");
    assert!(out.contains("queued for 1 Mac(s) of Desk"), "{out}");

    // Refusals read as one line each; a device and a group together is a usage error.
    let err = cli(&srv, &["clear", "NO-SUCH-MAC"]).await.expect_err("404");
    assert!(err.to_string().contains("NO-SUCH-MAC"), "{err:#}");
    assert!(cli(&srv, &["set", &udid, "--group", "Desk"]).await.is_err());
    assert!(cli(&srv, &["set"]).await.is_err());
    srv.stop().await;
}

async fn no_password_in_plaintext_in_the_database(backend: Backend) {
    let srv = start(backend).await;
    let mut mac = enrolled_mac(&srv).await;
    let udid = mac.mac.udid.clone();
    let first = "first-Recovery-pw";
    let second = "second-Recovery-pw";
    for password in [first, second] {
        let (status, _) = srv
            .api(
                Method::POST,
                &set_path(&udid),
                Some(json!({"password": password})),
            )
            .await;
        assert_eq!(status, 201);
        settle(&mut mac).await;
    }
    assert_eq!(mac.recovery_lock_password.as_deref(), Some(second));

    let dump = srv.database_dump().await;
    let contains = |needle: &[u8]| dump.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"SetRecoveryLock"), "the dump holds the commands");
    for password in [first, second] {
        let hex: String = password.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!contains(password.as_bytes()), "{password} in plaintext");
        assert!(!contains(hex.as_bytes()), "{password} in a bytea column");
    }
    for key in ["NewPassword", "CurrentPassword", "<key>Password</key>"] {
        assert!(
            !contains(key.as_bytes()),
            "{key}: a command stored unsealed"
        );
    }
    srv.stop().await;
}
