//! DEP end to end: the real server against the DEP simulator — links with a real `_smime.p7m`
//! token, sync of 10k devices on both databases, cursor and session expiry mid-sync, profiles
//! with mixed per-serial outcomes, the default profile for added devices, and `GetToken`
//! `com.apple.maid`.

use base64::Engine;
use plist::Value as Plist;
use reqwest::Method;
use russet_dep::DeviceStatus;
use russet_dep::sim::{DepSimulator, SimConfig};
use russet_tests::dep::{
    PUBLIC_URL, corp_profile, count_devices, dep_device, linked, linked_and_synced, setup, sync,
};
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(multi_thread:
    sync_of_10k_devices_then_changes,
    cursor_and_session_expiry_mid_sync,
    default_profile_is_assigned_to_added_devices,
    define_assign_remove_disown_with_mixed_outcomes,
);

// ---- links ----

/// Apple's token file: S/MIME EnvelopedData (AES-256) to the link certificate, around MIME text
/// with the JSON between the MESSAGE markers — built with the `openssl smime` CLI.
fn smime_token(cert_pem: &str, token_json: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("link.pem");
    let msg = dir.path().join("message.txt");
    let out = dir
        .path()
        .join("Russet_Token_2026-01-01T00-00-00Z_smime.p7m");
    std::fs::write(&cert, cert_pem).expect("write cert");
    std::fs::write(
        &msg,
        format!(
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
             -----BEGIN MESSAGE-----\r\n{token_json}\r\n-----END MESSAGE-----\r\n"
        ),
    )
    .expect("write message");
    let status = std::process::Command::new("openssl")
        .args(["smime", "-encrypt", "-aes256", "-in"])
        .arg(&msg)
        .arg("-out")
        .arg(&out)
        .arg(&cert)
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl smime -encrypt failed");
    std::fs::read(&out).expect("read p7m")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn link_create_cert_smime_token_shows_the_account() {
    let (srv, sim) = setup(Backend::Sqlite, 5).await;
    let (status, created) = srv
        .api(
            Method::POST,
            "/api/v1/dep/links",
            Some(json!({"name": "corp"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, cert) = srv
        .api(Method::GET, "/api/v1/dep/links/corp/certificate", None)
        .await;
    assert_eq!(status, 200);
    let cert_pem = cert["certificate_pem"].as_str().expect("PEM").to_owned();
    assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(created["certificate_pem"].as_str(), Some(cert_pem.as_str()));

    // A token encrypted to another certificate is refused with a clear reason.
    let (other_cert, _) = russet_dep::generate_link_keypair("someone-else").expect("keypair");
    let other_pem = String::from_utf8(other_cert.to_pem().expect("pem")).expect("utf8");
    let wrong = smime_token(&other_pem, &sim.tokens().to_json());
    let (status, v) = srv
        .api(
            Method::PUT,
            "/api/v1/dep/links/corp/token",
            Some(json!({"token": b64(&wrong)})),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("different certificate")),
        "{v}"
    );

    let p7m = smime_token(&cert_pem, &sim.tokens().to_json());
    let (status, v) = srv
        .api(
            Method::PUT,
            "/api/v1/dep/links/corp/token",
            Some(json!({"token": b64(&p7m)})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["connection"]["ok"], json!(true), "{v}");
    assert_eq!(
        v["connection"]["server_name"],
        json!("Russet DEP simulator")
    );
    assert_eq!(v["connection"]["org_name"], json!("Russet Simulated Org"));
    assert_eq!(v["connection"]["admin_id"], json!("it-admin@example.org"));
    assert!(sim.requests("/session") >= 1 && sim.requests("/account") >= 1);

    // Re-configuring a link with a working token needs force: a new token …
    let (status, v) = srv
        .api(
            Method::PUT,
            "/api/v1/dep/links/corp/token",
            Some(json!({"token": b64(&p7m)})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    let (status, _) = srv
        .api(
            Method::PUT,
            "/api/v1/dep/links/corp/token",
            Some(json!({"token": b64(&p7m), "force": true})),
        )
        .await;
    assert_eq!(status, 200);
    // … or a new key pair.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/links",
            Some(json!({"name": "corp"})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("working token")
    );

    let (status, list) = srv.api(Method::GET, "/api/v1/dep/links", None).await;
    assert_eq!(status, 200);
    let link = &list["links"][0];
    assert_eq!(link["name"], json!("corp"));
    assert_eq!(link["org_name"], json!("Russet Simulated Org"));
    assert_eq!(link["token_working"], json!(true));
    assert_eq!(
        link["token_warning"],
        Value::Null,
        "a year left: no warning"
    );
    assert!(link["token_days_left"].as_i64().is_some_and(|d| d >= 363));

    let (_, doc) = srv.api(Method::GET, "/api/v1/openapi.json", None).await;
    for p in [
        "/api/v1/dep/links",
        "/api/v1/dep/links/{name}/certificate",
        "/api/v1/dep/links/{name}/token",
        "/api/v1/dep/devices",
        "/api/v1/dep/sync",
        "/api/v1/dep/profiles",
        "/api/v1/dep/profiles/{uuid}/devices",
        "/api/v1/dep/disown",
    ] {
        assert!(doc["paths"][p].is_object(), "OpenAPI documents {p}");
    }

    // The last call's refusal shows in link status.
    sim.inject("/account", 403, "T_C_NOT_SIGNED", 1);
    let (status, v) = srv
        .api(
            Method::PUT,
            "/api/v1/dep/links/corp/token?force=true",
            Some(json!({"token": b64(&p7m)})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["connection"]["ok"], json!(false));
    assert!(
        v["connection"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("T_C_NOT_SIGNED")
    );
    let (_, link) = srv.api(Method::GET, "/api/v1/dep/links/corp", None).await;
    assert_eq!(link["last_error"]["code"], json!("T_C_NOT_SIGNED"));
    assert!(
        link["alerts"][0]
            .as_str()
            .is_some_and(|a| a.contains("terms and conditions")),
        "{link}"
    );
    srv.stop().await;
}

// ---- sync ----

async fn sync_of_10k_devices_then_changes(backend: Backend) {
    let (srv, sim) = setup(backend, 10_000).await;
    linked(&srv, &sim, "corp").await;
    let started = std::time::Instant::now();
    let r = sync(&srv, "corp").await;
    eprintln!("{backend:?}: 10k devices synced in {:?}", started.elapsed());
    assert_eq!(r["ok"], json!(true), "{r}");
    assert_eq!(r["fetched"], json!(10_000), "{r}");
    assert_eq!(r["full_fetch"], json!(true));
    assert_eq!(count_devices(&srv, "").await, 10_000);
    let (_, link) = srv.api(Method::GET, "/api/v1/dep/links/corp", None).await;
    assert_eq!(link["devices"]["not_assigned"], json!(10_000), "{link}");

    // Every Apple field lands on the record.
    let first = sim.devices()[0].clone();
    let d = dep_device(&srv, &first.serial_number).await;
    assert_eq!(d["model"], json!(first.model));
    assert_eq!(d["color"], json!(first.color));
    assert_eq!(d["device_family"], json!("Mac"));
    assert_eq!(d["os"], json!("OSX"));
    assert_eq!(d["profile_status"], json!("empty"));
    assert_eq!(d["device_assigned_by"], json!("it-admin@example.org"));
    assert_eq!(d["status"], json!("not_assigned"));
    assert_eq!(d["link"], json!("corp"));

    // Changes: 5 added, 1 modified, 1 deleted (moved away in ABM).
    let added = sim.add_devices(5);
    let gone = sim.devices()[1].serial_number.clone();
    assert!(sim.modify_device(&first.serial_number, |d| d.asset_tag = Some("TAG-1".into())));
    assert!(sim.delete_device(&gone));
    let r = sync(&srv, "corp").await;
    assert_eq!(
        (&r["fetched"], &r["added"], &r["modified"], &r["deleted"]),
        (&json!(0), &json!(5), &json!(1), &json!(1)),
        "{r}"
    );
    assert_eq!(count_devices(&srv, "").await, 10_005);
    assert_eq!(count_devices(&srv, "&status=disowned").await, 1);
    assert_eq!(dep_device(&srv, &gone).await["status"], json!("disowned"));
    assert_eq!(
        dep_device(&srv, &first.serial_number).await["asset_tag"],
        json!("TAG-1")
    );
    assert_eq!(dep_device(&srv, &added[0]).await["op_type"], json!("added"));

    // A Mac with a DEP serial that enrolls shows as Enrolled.
    let mut mac = srv.mac();
    mac.serial = added[1].clone();
    mac.enroll().await;
    assert_eq!(
        dep_device(&srv, &added[1]).await["status"],
        json!("enrolled")
    );
    assert_eq!(count_devices(&srv, "&status=enrolled&link=corp").await, 1);

    // Nothing new: an empty sync page.
    let r = sync(&srv, "corp").await;
    assert_eq!((&r["added"], &r["fetched"]), (&json!(0), &json!(0)), "{r}");
    srv.stop().await;
}

/// NDJSON lines of a streamed sync; `on_first_page` runs when the first progress line arrives.
async fn streamed_sync(srv: &TestServer, link: &str, on_first_page: impl FnOnce()) -> Vec<Value> {
    let mut resp = reqwest::Client::new()
        .post(format!("{}/api/v1/dep/sync?stream=true", srv.admin_url))
        .bearer_auth(&srv.token)
        .json(&json!({"link": link}))
        .send()
        .await
        .expect("sync request");
    assert_eq!(resp.status().as_u16(), 200);
    let mut hook = Some(on_first_page);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("stream") {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let v: Value = serde_json::from_slice(&line).expect("NDJSON line");
            if v.get("progress").is_some()
                && let Some(h) = hook.take()
            {
                h();
            }
            lines.push(v);
        }
    }
    lines
}

async fn cursor_and_session_expiry_mid_sync(backend: Backend) {
    let (srv, sim) = setup(backend, 10_000).await;
    linked(&srv, &sim, "corp").await;
    let sessions_before = sim.stats().sessions_issued;
    // After the first stored page, every session and cursor Apple issued expires.
    let lines = streamed_sync(&srv, "corp", || {
        sim.expire_sessions();
        sim.expire_cursors();
    })
    .await;
    let report = lines
        .iter()
        .find_map(|l| l.get("report"))
        .unwrap_or_else(|| panic!("a report line: {lines:?}"));
    assert_eq!(report["ok"], json!(true), "{report}");
    let pages = lines.iter().filter(|l| l.get("progress").is_some()).count();
    assert!(pages >= 10, "{pages} progress lines");
    assert_eq!(report["cursor_resets"], json!(1), "{report}");
    assert!(
        report["fetched"].as_u64().is_some_and(|n| n > 10_000),
        "refetched: {report}"
    );
    assert!(
        sim.stats().sessions_issued > sessions_before,
        "a new session after the old one expired"
    );
    // No duplicates, nothing lost.
    assert_eq!(count_devices(&srv, "").await, 10_000);

    // Expiry between passes: the sync cursor is refused, a full fetch follows.
    sim.expire_cursors();
    sim.add_devices(2);
    let r = sync(&srv, "corp").await;
    assert_eq!(r["cursor_resets"], json!(1), "{r}");
    assert_eq!(r["full_fetch"], json!(true), "{r}");
    assert_eq!(count_devices(&srv, "").await, 10_002);
    srv.stop().await;
}

// ---- profiles ----

async fn define_assign_remove_disown_with_mixed_outcomes(backend: Backend) {
    let (srv, sim) = setup(backend, 20).await;
    let serials = linked_and_synced(&srv, &sim, "corp").await;

    // Checked before Apple sees it, every problem named with Apple's code.
    let mut bad = corp_profile();
    bad["is_supervised"] = json!(false);
    bad["skip_setup_items"] = json!(["AppleID", "Teleport"]);
    bad["department"] = json!("d".repeat(126));
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(json!({"profile": bad})),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    for code in ["FLAGS_INVALID", "DEPARTMENT_INVALID", "Teleport"] {
        assert!(msg.contains(code), "{code} in {msg}");
    }
    assert!(sim.profiles().is_empty(), "nothing reached Apple");

    // What Apple still refuses is shown with its code verbatim.
    sim.inject("/profile", 400, "CONFIG_URL_INVALID", 1);
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(json!({"profile": corp_profile()})),
        )
        .await;
    assert_eq!(status, 502, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("CONFIG_URL_INVALID"),
        "{v}"
    );

    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(json!({"profile": corp_profile(), "link": "corp"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let uuid = v["profile_uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(v["url"], json!(format!("{PUBLIC_URL}/mdm/enroll")));
    let at_apple = sim.profiles();
    assert_eq!(at_apple.len(), 1);
    assert_eq!(at_apple[0].url, format!("{PUBLIC_URL}/mdm/enroll"));
    let (_, list) = srv.api(Method::GET, "/api/v1/dep/profiles", None).await;
    assert_eq!(list["profiles"][0]["profile_uuid"], json!(uuid));
    assert_eq!(list["profiles"][0]["default"], json!(false));

    // Mixed per-serial outcomes.
    sim.set_assign_outcome(&serials[1], Some(DeviceStatus::Failed));
    sim.set_assign_outcome(&serials[2], Some(DeviceStatus::Throttled));
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/dep/profiles/{uuid}/devices"),
            Some(json!({"devices": [serials[0], serials[1], serials[2], "C02NOTMINE00"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["devices"][&serials[0]], json!("SUCCESS"));
    assert_eq!(v["devices"][&serials[1]], json!("FAILED"));
    assert_eq!(v["devices"][&serials[2]], json!("THROTTLED"));
    assert_eq!(v["devices"]["C02NOTMINE00"], json!("NOT_ACCESSIBLE"));
    assert_eq!(v["retry_after_seconds"], json!(60));
    let d0 = dep_device(&srv, &serials[0]).await;
    assert_eq!(
        (&d0["status"], &d0["profile_uuid"]),
        (&json!("assigned"), &json!(uuid))
    );
    let d1 = dep_device(&srv, &serials[1]).await;
    assert_eq!(d1["assignment"]["status"], json!("FAILED"), "{d1}");
    assert!(d1["assignment"]["retry_at"].is_string());
    assert_eq!(d1["status"], json!("not_assigned"));
    let d2 = dep_device(&srv, &serials[2]).await;
    assert_eq!(d2["assignment"]["status"], json!("THROTTLED"));

    // Remove: SUCCESS for the assigned one, FAILED where another profile (none) is assigned.
    let (status, v) = srv
        .api(
            Method::DELETE,
            &format!("/api/v1/dep/profiles/{uuid}/devices"),
            Some(json!({"devices": [serials[0], serials[3]]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["devices"][&serials[0]], json!("SUCCESS"));
    assert_eq!(v["devices"][&serials[3]], json!("FAILED"));
    assert_eq!(
        dep_device(&srv, &serials[0]).await["status"],
        json!("not_assigned")
    );

    // Disown: refused without confirmation, then per-serial outcomes.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/disown",
            Some(json!({"devices": [serials[4]]})),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert!(sim.device(&serials[4]).is_some());
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/disown",
            Some(json!({"devices": [serials[4], "C02NOTMINE00"], "confirm": true})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["devices"][&serials[4]], json!("SUCCESS"));
    assert_eq!(v["devices"]["C02NOTMINE00"], json!("NOT_ACCESSIBLE"));
    assert!(sim.device(&serials[4]).is_none());
    assert_eq!(
        dep_device(&srv, &serials[4]).await["status"],
        json!("disowned")
    );
    // The next sync's `deleted` agrees.
    sync(&srv, "corp").await;
    assert_eq!(
        dep_device(&srv, &serials[4]).await["status"],
        json!("disowned")
    );
    srv.stop().await;
}

async fn default_profile_is_assigned_to_added_devices(backend: Backend) {
    let (srv, sim) = setup(backend, 10).await;
    linked(&srv, &sim, "corp").await;
    sync(&srv, "corp").await;
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(json!({"profile": corp_profile(), "default": true})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let uuid = v["profile_uuid"].as_str().expect("uuid").to_owned();

    let added = sim.add_devices(3);
    sim.set_assign_outcome(&added[2], Some(DeviceStatus::Failed));
    let r = sync(&srv, "corp").await;
    assert_eq!(r["added"], json!(3), "{r}");
    let auto = &r["auto_assign"];
    assert_eq!(
        (&auto["attempted"], &auto["success"], &auto["failed"]),
        (&json!(3), &json!(2), &json!(1)),
        "{r}"
    );
    for s in &added[..2] {
        let d = dep_device(&srv, s).await;
        assert_eq!(
            (&d["status"], &d["profile_uuid"]),
            (&json!("assigned"), &json!(uuid))
        );
        assert_eq!(
            sim.device(s).and_then(|d| d.profile_uuid),
            Some(uuid.clone())
        );
    }
    let failed = dep_device(&srv, &added[2]).await;
    assert_eq!(failed["assignment"]["status"], json!("FAILED"));
    assert_eq!(failed["auto_assign_pending"], json!(true));
    // Devices that were there before the default profile keep theirs (none).
    assert_eq!(count_devices(&srv, "&status=assigned").await, 2);

    // FAILED waits 24 h: the next pass does not retry it.
    sim.set_assign_outcome(&added[2], None);
    let r = sync(&srv, "corp").await;
    assert_eq!(r["auto_assign"]["attempted"], json!(0), "{r}");
    srv.stop().await;
}

// ---- GetToken ----

fn get_token(mac: &SimMac, service: &str) -> plist::Dictionary {
    SimMac::dict(&[
        ("MessageType", Plist::String("GetToken".into())),
        ("UDID", Plist::String(mac.udid.clone())),
        ("TokenServiceType", Plist::String(service.into())),
    ])
}

fn b64url(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

#[tokio::test]
async fn get_token_maid_is_a_jwt_signed_by_the_dep_link_key() {
    let (srv, sim) = setup(Backend::Sqlite, 3).await;
    let mac = srv.mac();
    mac.enroll().await;
    // No DEP link yet: nothing can vouch for the device.
    let r = mac.checkin(&get_token(&mac, "com.apple.maid")).await;
    assert_eq!(r.status, 400);

    linked(&srv, &sim, "corp").await;
    let r = mac.checkin(&get_token(&mac, "com.apple.maid")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let d = r.plist().expect("plist");
    let jwt = String::from_utf8(
        d.get("TokenData")
            .and_then(Plist::as_data)
            .expect("TokenData")
            .to_vec(),
    )
    .expect("JWT text");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64url(parts[0])).expect("header");
    assert_eq!(header["alg"], json!("RS256"));
    let claims: Value = serde_json::from_slice(&b64url(parts[1])).expect("claims");
    assert_eq!(claims["iss"], json!("9A1E2B3C-0000-4000-8000-00000000D3B5"));
    assert_eq!(claims["service_type"], json!("com.apple.maid"));
    assert!(
        claims["jti"]
            .as_str()
            .is_some_and(|j| uuid::Uuid::parse_str(j).is_ok())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(claims["iat"].as_i64().is_some_and(|t| (t - now).abs() < 60));

    // Verified with the public key of the certificate uploaded to Apple.
    let (_, cert) = srv
        .api(Method::GET, "/api/v1/dep/links/corp/certificate", None)
        .await;
    let cert =
        openssl::x509::X509::from_pem(cert["certificate_pem"].as_str().expect("pem").as_bytes())
            .expect("cert");
    let key = cert.public_key().expect("public key");
    let mut verifier = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key)
        .expect("verifier");
    verifier
        .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .expect("update");
    assert!(
        verifier.verify(&b64url(parts[2])).expect("verify"),
        "signature"
    );

    // Other token services stay 400.
    let r = mac
        .checkin(&get_token(&mac, "com.apple.watch.pairing"))
        .await;
    assert_eq!(r.status, 400);
    srv.stop().await;
}

// ---- the worker ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_syncs_every_link_with_a_token_on_its_interval() {
    let sim = DepSimulator::start(SimConfig {
        devices: 25,
        ..Default::default()
    })
    .await
    .expect("simulator starts");
    let srv = TestServer::start_with(
        Backend::Sqlite,
        &["--dep-url", sim.url(), "--dep-sync-interval-secs", "1"],
    )
    .await;
    // A link without a token is left alone.
    let (status, _) = srv
        .api(
            Method::POST,
            "/api/v1/dep/links",
            Some(json!({"name": "idle"})),
        )
        .await;
    assert_eq!(status, 201);
    linked(&srv, &sim, "corp").await;
    let mut link = Value::Null;
    for _ in 0..100 {
        (_, link) = srv.api(Method::GET, "/api/v1/dep/links/corp", None).await;
        if link["last_sync_at"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(link["last_sync"]["ok"], json!(true), "{link}");
    assert_eq!(link["devices"]["not_assigned"], json!(25), "{link}");
    let (_, idle) = srv.api(Method::GET, "/api/v1/dep/links/idle", None).await;
    assert_eq!(idle["last_sync_at"], Value::Null);
    // Later passes only read the change feed.
    sim.add_devices(1);
    for _ in 0..100 {
        if count_devices(&srv, "").await == 26 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count_devices(&srv, "").await, 26);
    srv.stop().await;
}
