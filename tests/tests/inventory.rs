//! Inventory end to end: the real server (`--inventory true`), simulated Macs that answer
//! DeviceInformation, SecurityInfo, InstalledApplicationList, CertificateList and UserList from
//! what they hold, the inventory view, a refresh by serial number, an app and an OS changing on
//! the Mac, and a Mac whose answer is not Apple's. On SQLite and on PostgreSQL.

use reqwest::Method;
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    inventory_arrives_after_enrollment_and_follows_the_mac,
    a_refresh_by_group_and_a_malformed_answer,
);

const INVENTORY: &[&str] = &[
    "DeviceInformation",
    "SecurityInfo",
    "InstalledApplicationList",
    "CertificateList",
    "UserList",
];

/// Answer what the server sends until it has nothing more. Everything handled, in order.
async fn converge(mac: &mut ManagedMac) -> Vec<String> {
    let mut all = Vec::new();
    for _ in 0..10 {
        let round = mac.sync().await;
        if round.is_empty() {
            return all;
        }
        all.extend(round);
    }
    panic!("the Mac never settled: {all:?}");
}

async fn inventory(srv: &TestServer, device: &str, query: &str) -> Value {
    let (code, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices/{device}/inventory{query}"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    v
}

async fn refresh(srv: &TestServer, body: Value) -> (u16, Value) {
    srv.api(Method::POST, "/api/v1/inventory/refresh", Some(body))
        .await
}

async fn inventory_arrives_after_enrollment_and_follows_the_mac(backend: Backend) {
    let srv = TestServer::start_with(backend, &["--inventory", "true"]).await;
    let mut mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    mac.log_in_user("alice").await;

    // Right after enrollment, once (the user channel's TokenUpdate asks nothing more).
    let handled = converge(&mut mac).await;
    for rt in INVENTORY {
        assert_eq!(
            handled.iter().filter(|h| h == rt).count(),
            1,
            "{rt} in {handled:?}"
        );
    }

    let v = inventory(&srv, &mac.mac.udid, "?full=true").await;
    assert_eq!(v["os"]["version"], "15.1", "{v}");
    assert_eq!(v["os"]["build"], "24B83");
    assert_eq!(v["os"]["supervised"], true);
    assert_eq!(v["hardware"]["model"], "Mac14,2");
    assert_eq!(v["hardware"]["apple_silicon"], true);
    assert_eq!(v["hardware"]["capacity_gb"], 494.38);
    assert_eq!(v["hardware"]["wifi_mac"], "f0:2f:4b:10:aa:02");
    assert_eq!(v["security"]["filevault"], true);
    assert_eq!(v["security"]["firewall"], true);
    assert_eq!(v["security"]["secure_boot"], "full");
    assert_eq!(v["apps"]["count"], 2);
    assert_eq!(v["certificates"]["count"], 1);
    assert_eq!(v["users"]["logged_in"], json!(["alice"]));
    assert_eq!(v["users"]["count"], 2);
    assert_eq!(v["users"]["console_user"]["short_name"], "alice");
    assert_eq!(v["users"]["console_user"]["long_name"], "alice Appleseed");
    for part in [
        "hardware",
        "os",
        "security",
        "users",
        "apps",
        "certificates",
    ] {
        assert!(v[part]["collected_at"].is_string(), "{part}: {v}");
        assert_eq!(v[part]["age"], "just now", "{part}");
    }
    // The whole answer is kept: every macOS query the Mac answered.
    assert_eq!(
        v["answers"]["DeviceInformation"]["HostName"],
        "test-mac.local"
    );
    assert!(v["changes"].as_array().is_some_and(Vec::is_empty));
    // The profiles Russet manages on it (none assigned here).
    assert_eq!(v["profiles"], json!([]));

    // Excel is updated and macOS too; a refresh by serial number asks again.
    mac.apps.insert(
        "com.microsoft.Excel".into(),
        ("Microsoft Excel".into(), "16.81".into()),
    );
    mac.apps.remove("com.apple.Safari");
    mac.os_version = "15.2".into();
    mac.build_version = "24C101".into();
    mac.filevault = false;
    let (code, r) = refresh(&srv, json!({"devices": [mac.mac.serial]})).await;
    assert_eq!(code, 202, "{r}");
    assert_eq!(r["queued"], json!([mac.mac.udid]));
    let handled = converge(&mut mac).await;
    assert_eq!(handled.len(), INVENTORY.len(), "{handled:?}");

    let v = inventory(&srv, &mac.mac.serial, "?apps=true").await;
    assert_eq!(v["os"]["version"], "15.2");
    assert_eq!(v["security"]["filevault"], false);
    assert_eq!(v["apps"]["count"], 1);
    assert_eq!(
        v["app_list"],
        json!([{"bundle_id": "com.microsoft.Excel", "name": "Microsoft Excel",
                "short_version": "16.81", "version": "16.81", "bundle_size": 1_048_576}])
    );
    let changes: Vec<(String, String, String)> = v["changes"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or("").to_string(),
                c["old"].as_str().unwrap_or("").to_string(),
                c["new"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("os_version", "15.1", "15.2"),
        ("build_version", "24B83", "24C101"),
        ("filevault_enabled", "on", "off"),
    ] {
        assert!(
            changes
                .iter()
                .any(|c| (c.0.as_str(), c.1.as_str(), c.2.as_str()) == want),
            "{want:?} in {changes:?}"
        );
    }
    // The refresh is audited.
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert!(audit.to_string().contains("inventory.refresh"), "{audit}");
    srv.stop().await;
}

async fn a_refresh_by_group_and_a_malformed_answer(backend: Backend) {
    let srv = TestServer::start_with(backend, &["--inventory", "true"]).await;
    let mut a = ManagedMac::new(srv.mac());
    let mut b = ManagedMac::new(srv.mac());
    a.enroll().await;
    b.enroll().await;
    converge(&mut a).await;
    converge(&mut b).await;
    let (code, v) = srv
        .api(Method::POST, "/api/v1/groups", Some(json!({"name": "Lab"})))
        .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups/Lab/devices",
            Some(json!({"devices": [a.mac.serial]})),
        )
        .await;
    assert_eq!(code, 200, "{v}");

    // A broken answer is ignored: the Mac gets no error, the stored apps stay.
    a.malformed.insert("InstalledApplicationList".into());
    a.apps.clear();
    let (code, r) = refresh(&srv, json!({"group": "Lab"})).await;
    assert_eq!(code, 202, "{r}");
    assert_eq!(r["queued"], json!([a.mac.udid]));
    assert_eq!(converge(&mut a).await.len(), INVENTORY.len());
    assert!(
        converge(&mut b).await.is_empty(),
        "only the group was asked"
    );
    let v = inventory(&srv, &a.mac.udid, "?apps=true").await;
    assert_eq!(v["apps"]["count"], 2, "{v}");
    assert_eq!(v["app_list"].as_array().map(Vec::len), Some(2));

    // Unknown names and empty requests are refused, and nothing is queued.
    let (code, _) = refresh(&srv, json!({"devices": ["NO-SUCH-MAC"]})).await;
    assert_eq!(code, 404);
    let (code, _) = refresh(&srv, json!({})).await;
    assert_eq!(code, 400);
    let (code, _) = refresh(&srv, json!({"group": "Nope"})).await;
    assert_eq!(code, 404);
    let (code, _) = srv
        .api(Method::GET, "/api/v1/devices/NO-SUCH-MAC/inventory", None)
        .await;
    assert_eq!(code, 404);
    srv.stop().await;
}

/// Less than an hour is refused at start, naming the range allowed.
#[test]
fn an_interval_under_an_hour_is_refused_at_start() {
    use clap::Parser;
    let err = russet_mdm::cli::Cli::try_parse_from([
        "russet",
        "serve",
        "--inventory-interval-secs",
        "600",
    ])
    .expect_err("refused");
    assert!(err.to_string().contains("3600"), "{err}");
    assert!(
        russet_mdm::cli::Cli::try_parse_from([
            "russet",
            "serve",
            "--inventory-interval-secs",
            "3600"
        ])
        .is_ok()
    );
}
