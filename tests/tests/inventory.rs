//! Inventory end to end: the real server (`--inventory true`), simulated Macs that answer
//! DeviceInformation, SecurityInfo, InstalledApplicationList, CertificateList and UserList from
//! what they hold, the inventory view, a refresh by serial number, an app and an OS changing on
//! the Mac, and a Mac whose answer is not Apple's. On SQLite and on PostgreSQL.

use base64::Engine;
use clap::Parser;
use reqwest::Method;
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    inventory_arrives_after_enrollment_and_follows_the_mac,
    a_refresh_by_group_and_a_malformed_answer,
    search_reads_inventory_and_a_report_exports_it,
    a_filevault_change_moves_a_mac_between_smart_groups,
);

const RESTRICTIONS: &[u8] = include_bytes!("../../mdm/testdata/profiles/restrictions.mobileconfig");

const INVENTORY: &[&str] = &[
    "DeviceInformation",
    "SecurityInfo",
    "InstalledApplicationList",
    "CertificateList",
    "UserList",
];

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
    let handled = mac.converge().await;
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
    let handled = mac.converge().await;
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
    a.converge().await;
    b.converge().await;
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
    assert_eq!(a.converge().await.len(), INVENTORY.len());
    assert!(b.converge().await.is_empty(), "only the group was asked");
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

/// `text` percent-encoded for a query string.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The serial numbers a filter finds through `GET /api/v1/devices?filter=`, sorted.
async fn search(srv: &TestServer, filter: &str) -> Vec<String> {
    let (code, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices?filter={}", enc(filter)),
            None,
        )
        .await;
    assert_eq!(code, 200, "{filter}: {v}");
    let mut found: Vec<String> = v["devices"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d["serial_number"].as_str().map(str::to_owned))
        .collect();
    found.sort();
    found
}

fn sorted(serials: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = serials.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn search_reads_inventory_and_a_report_exports_it(backend: Backend) {
    let srv = TestServer::start_with(backend, &["--inventory", "true"]).await;
    // A: the defaults (Excel 16.78, FileVault on), alice at the console.
    // B: a newer Excel, FileVault off, a device name that is a spreadsheet formula.
    // C: no Excel, carol at the console.
    let mut a = ManagedMac::new(srv.mac());
    let mut b = ManagedMac::new(srv.mac());
    let mut c = ManagedMac::new(srv.mac());
    b.apps.insert(
        "com.microsoft.Excel".into(),
        ("Microsoft Excel".into(), "16.81".into()),
    );
    b.filevault = false;
    b.device_name = "=HYPERLINK(\"http://evil\")".into();
    c.apps.remove("com.microsoft.Excel");
    for mac in [&mut a, &mut b, &mut c] {
        mac.enroll().await;
    }
    a.log_in_user("alice").await;
    c.log_in_user("carol").await;
    for mac in [&mut a, &mut b, &mut c] {
        mac.converge().await;
    }
    let (sa, sb, sc) = (
        a.mac.serial.as_str(),
        b.mac.serial.as_str(),
        c.mac.serial.as_str(),
    );

    // Apps by bundle ID or name, versions compared as versions (16.78 < 16.80 < 16.81).
    assert_eq!(
        search(&srv, "app = \"Microsoft Excel\" and app_version < 16.80").await,
        [sa]
    );
    assert_eq!(
        search(&srv, "app = com.microsoft.excel").await,
        sorted(&[sa, sb])
    );
    assert_eq!(search(&srv, "app != com.microsoft.Excel").await, [sc]);
    assert_eq!(
        search(&srv, "app ~ safari and app_version >= 18").await,
        sorted(&[sa, sb, sc])
    );
    // Security facts from SecurityInfo, users from the user channel and UserList.
    assert_eq!(search(&srv, "filevault = false").await, [sb]);
    assert_eq!(
        search(
            &srv,
            "filevault = true and supervised = true and secure_boot = full"
        )
        .await,
        sorted(&[sa, sc])
    );
    assert_eq!(search(&srv, "console_user = ALICE").await, [sa]);
    assert_eq!(search(&srv, "console_user ~ aro").await, [sc]);
    assert!(search(&srv, "console_user = bob").await.is_empty());

    // Groups, static and smart, by name.
    let (code, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Unencrypted", "filter": "filevault = false"})),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = srv
        .api(Method::POST, "/api/v1/groups", Some(json!({"name": "Lab"})))
        .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups/Lab/devices",
            Some(json!({"devices": [sa, c.mac.udid]})),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(search(&srv, "group = lab").await, sorted(&[sa, sc]));
    assert_eq!(search(&srv, "group = Unencrypted").await, [sb]);
    assert_eq!(
        search(&srv, "group != Lab and app = com.microsoft.Excel").await,
        [sb]
    );
    assert_eq!(search(&srv, "group ~ crypt").await, [sb]);

    // A smart group cannot name groups; a misplaced app_version points at itself.
    let (code, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Nested", "filter": "group = Lab"})),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert!(v.to_string().contains("cannot use the field group"), "{v}");
    let (code, v) = srv
        .api(
            Method::GET,
            &format!(
                "/api/v1/devices?filter={}",
                enc("filevault = true and app_version < 2")
            ),
            None,
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert!(v.to_string().contains("position 21"), "{v}");

    // The report: every matching device as CSV, formulas defused.
    let (code, v) = srv
        .api(
            Method::GET,
            &format!(
                "/api/v1/devices?format=csv&filter={}",
                enc("app = com.microsoft.Excel")
            ),
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let report = v.as_str().expect("CSV text").to_string();
    let mut lines = report.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("udid,serial_number,device_name,model,"),
        "{header}"
    );
    assert!(header.contains(",filevault,"), "{header}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{report}");
    let row_b = rows.iter().find(|r| r.contains(sb)).expect("B's row");
    assert!(
        row_b.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{row_b}"
    );
    assert!(row_b.contains(",false,"), "FileVault off: {row_b}");
    let (code, v) = srv
        .api(Method::GET, "/api/v1/devices?format=xml", None)
        .await;
    assert_eq!(code, 400, "{v}");

    // The CLI writes the same report to a file.
    let out = srv.data_dir.path().join("report.csv");
    let cli = russet_mdm::cli::Cli::try_parse_from([
        "russet",
        "devices",
        "list",
        "--server",
        srv.admin_url.as_str(),
        "--token",
        srv.token.as_str(),
        "--filter",
        "console_user = carol",
        "--csv",
        "--output",
        out.to_str().expect("path"),
    ])
    .expect("CLI parses");
    let russet_mdm::cli::Command::Devices(cmd) = cli.command else {
        panic!("devices command");
    };
    russet_mdm::cli::devices::run(cmd)
        .await
        .expect("report written");
    let written = std::fs::read_to_string(&out).expect("report file");
    assert_eq!(written.lines().count(), 2, "{written}");
    assert!(written.contains(sc), "{written}");
    srv.stop().await;
}

async fn a_filevault_change_moves_a_mac_between_smart_groups(backend: Backend) {
    let srv = TestServer::start_with(backend, &["--inventory", "true"]).await;
    let mut mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    mac.converge().await;
    // A profile for the Macs without FileVault; this one has it on, so it gets nothing.
    let (code, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Unencrypted", "filter": "filevault = false"})),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"mobileconfig": base64::engine::general_purpose::STANDARD.encode(RESTRICTIONS)})),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let ident = "com.acme.restrictions";
    let (code, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{ident}/assignments"),
            Some(json!({"groups": ["Unencrypted"]})),
        )
        .await;
    assert!(code == 200 || code == 201, "{v}");
    assert!(mac.converge().await.iter().all(|h| h != "InstallProfile"));
    assert!(!mac.profiles.contains_key(ident));

    // The user turns FileVault off; the next SecurityInfo says so, and the Mac is in the
    // smart group at once: its profile is queued for the same session.
    mac.filevault = false;
    let (code, r) = refresh(&srv, json!({"devices": [mac.mac.udid]})).await;
    assert_eq!(code, 202, "{r}");
    let handled = mac.converge().await;
    assert!(handled.iter().any(|h| h == "InstallProfile"), "{handled:?}");
    assert!(mac.profiles.contains_key(ident));

    // And back: FileVault on again, the profile leaves.
    mac.filevault = true;
    let (code, r) = refresh(&srv, json!({"devices": [mac.mac.udid]})).await;
    assert_eq!(code, 202, "{r}");
    let handled = mac.converge().await;
    assert!(handled.iter().any(|h| h == "RemoveProfile"), "{handled:?}");
    assert!(!mac.profiles.contains_key(ident));
    srv.stop().await;
}

/// Less than an hour is refused at start, naming the range allowed.
#[test]
fn an_interval_under_an_hour_is_refused_at_start() {
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
