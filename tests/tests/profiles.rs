//! The configuration-profile catalog through the real server, on SQLite and PostgreSQL: upload
//! → list/show, re-upload → a new version with the history, Custom Settings that round-trip,
//! assignments to devices (UDID or serial) and groups, bad uploads each answered with a 4xx
//! naming the problem, soft delete, the audit log, and profiles sealed at rest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use plist::Value as Plist;
use reqwest::Method;
use russet_tests::{Backend, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    upload_list_show_and_a_new_version_keeps_the_history,
    custom_settings_build_a_profile_that_round_trips,
    assignments_name_devices_by_udid_or_serial_and_groups_by_name,
    bad_uploads_get_a_4xx_naming_the_problem,
    delete_keeps_the_history_and_the_audit_log_has_every_step,
    profiles_are_sealed_at_rest,
);

const RESTRICTIONS: &[u8] = include_bytes!("../../mdm/testdata/profiles/restrictions.mobileconfig");
const WIFI: &[u8] = include_bytes!("../../mdm/testdata/profiles/wifi-office.mobileconfig");
const LOGINWINDOW: &[u8] =
    include_bytes!("../../mdm/testdata/profiles/loginwindow-variables.mobileconfig");
const SECOND_MDM: &[u8] = include_bytes!("../../mdm/testdata/profiles/second-mdm.mobileconfig");
const ESCROW: &[u8] = include_bytes!("../../mdm/testdata/profiles/filevault-escrow.mobileconfig");
const WIFI_PASSWORD: &str = "c0rrect-h0rse-battery-staple";

async fn upload(srv: &TestServer, bytes: &[u8]) -> (u16, Value) {
    srv.api(
        Method::POST,
        "/api/v1/profiles",
        Some(json!({"mobileconfig": STANDARD.encode(bytes)})),
    )
    .await
}

fn replaced(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 fixture");
    assert!(text.contains(from), "fixture has {from}");
    text.replace(from, to).into_bytes()
}

fn error(v: &Value) -> (&str, &str) {
    (
        v["error"]["code"].as_str().unwrap_or(""),
        v["error"]["message"].as_str().unwrap_or(""),
    )
}

async fn upload_list_show_and_a_new_version_keeps_the_history(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (status, v) = upload(&srv, RESTRICTIONS).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["version"], json!(1));
    assert_eq!(v["created"], json!(true));
    assert_eq!(v["profile"]["identifier"], json!("com.acme.restrictions"));
    assert_eq!(v["profile"]["name"], json!("ACME Restrictions"));
    assert_eq!(v["profile"]["scope"], json!("System"));
    assert_eq!(
        v["profile"]["payload_types"],
        json!(["com.apple.applicationaccess"])
    );
    assert_eq!(
        v["warnings"],
        json!([
            "PayloadContent[0].allowSafari: Apple's schema says this key is not available on \
             macOS (Macs ignore it)"
        ])
    );

    let (status, list) = srv.api(Method::GET, "/api/v1/profiles", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["profiles"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["profiles"][0]["latest_version"], json!(1));
    assert_eq!(
        list["profiles"][0]["assigned"],
        json!({"groups": 0, "devices": 0})
    );

    // The same bytes again: nothing new for Macs to install.
    let (status, v) = upload(&srv, RESTRICTIONS).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["version"].clone(), v["created"].clone()),
        (json!(1), json!(false))
    );

    // A change: version 2, and version 1 stays in the history.
    let changed = replaced(
        RESTRICTIONS,
        "<string>ACME Restrictions</string>",
        "<string>ACME Restrictions (camera allowed)</string>",
    );
    let (status, v) = upload(&srv, &changed).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["version"], json!(2));

    let (status, show) = srv
        .api(Method::GET, "/api/v1/profiles/com.acme.restrictions", None)
        .await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["latest_version"], json!(2));
    assert_eq!(show["name"], json!("ACME Restrictions (camera allowed)"));
    let versions = show["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], json!(2));
    assert_eq!(versions[1]["version"], json!(1));
    assert_eq!(versions[1]["name"], json!("ACME Restrictions"));
    assert_eq!(versions[0]["uploaded_by"], json!("admin"));
    assert_eq!(versions[0]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(show["assignments"], json!({"groups": [], "devices": []}));
    // Never the content: it may hold passwords.
    assert!(!show.to_string().contains("allowAirDrop"), "{show}");

    // Variables are reported; a signed upload is kept as signed.
    let (status, v) = upload(&srv, LOGINWINDOW).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["variables"], json!(["$SERIAL", "$DEVICE_NAME"]));
    assert_eq!(v["profile"]["versions"][0]["has_variables"], json!(true));
    let signed = russet_certs::testing::TestCa::new("ACME Signing CA")
        .issue_device_identity("profile signer")
        .sign_attached(WIFI);
    let (status, v) = upload(&srv, &signed).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["profile"]["identifier"], json!("com.acme.wifi.office"));
    assert_eq!(v["profile"]["versions"][0]["signed"], json!(true));

    let (status, missing) = srv
        .api(Method::GET, "/api/v1/profiles/com.acme.none", None)
        .await;
    assert_eq!((status, error(&missing).0), (404, "not_found"), "{missing}");

    let (_, doc) = srv.api(Method::GET, "/api/v1/openapi.json", None).await;
    for p in [
        "/api/v1/profiles",
        "/api/v1/profiles/custom-settings",
        "/api/v1/profiles/{identifier}",
        "/api/v1/profiles/{identifier}/assignments",
    ] {
        assert!(doc["paths"][p].is_object(), "OpenAPI documents {p}");
    }
    srv.stop().await;
}

async fn custom_settings_build_a_profile_that_round_trips(backend: Backend) {
    let srv = TestServer::start(backend).await;
    // Parallels Desktop's preferences, as `defaults` names them in its domain.
    let body = json!({
        "identifier": "com.acme.parallels",
        "name": "Parallels Desktop preferences",
        "domain": "com.parallels.Parallels Desktop",
        "settings": {
            "Application preferences.Check for updates": 0,
            "Application preferences.Download updates automatically": false,
            "ProductPromo.ForcePromoOff": true,
            "License key blob": {"$data": "UEQtQUNNRQ=="},
            "Trial ends": {"$date": "2027-01-31T09:00:00Z"},
        }
    });
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles/custom-settings",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["version"], json!(1));
    assert_eq!(
        v["profile"]["payload_types"],
        json!(["com.apple.ManagedClient.preferences"])
    );
    assert_eq!(v["warnings"], json!([]));

    // The built profile is Apple's Custom Settings shape, with the values typed.
    let built = STANDARD
        .decode(v["mobileconfig"].as_str().expect("mobileconfig"))
        .expect("base64");
    let top = Plist::from_reader_xml(built.as_slice()).expect("a plist");
    let settings = top
        .as_dictionary()
        .and_then(|d| d.get("PayloadContent"))
        .and_then(Plist::as_array)
        .and_then(|a| a[0].as_dictionary())
        .and_then(|d| d.get("PayloadContent"))
        .and_then(Plist::as_dictionary)
        .and_then(|d| d.get("com.parallels.Parallels Desktop"))
        .and_then(Plist::as_dictionary)
        .and_then(|d| d.get("Forced"))
        .and_then(Plist::as_array)
        .and_then(|a| a[0].as_dictionary())
        .and_then(|d| d.get("mcx_preference_settings"))
        .and_then(Plist::as_dictionary)
        .expect("Forced mcx_preference_settings");
    assert_eq!(
        settings.get("Application preferences.Check for updates"),
        Some(&Plist::Integer(0.into()))
    );
    assert_eq!(
        settings.get("ProductPromo.ForcePromoOff"),
        Some(&Plist::Boolean(true))
    );
    assert_eq!(
        settings.get("License key blob"),
        Some(&Plist::Data(b"PD-ACME".to_vec()))
    );
    assert_eq!(
        settings
            .get("Trial ends")
            .and_then(Plist::as_date)
            .map(|d| d.to_xml_format()),
        Some("2027-01-31T09:00:00Z".to_string())
    );

    // Round trip: the built bytes uploaded are the same version; the same request too.
    let (status, again) = upload(&srv, &built).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["version"].clone(), again["created"].clone()),
        (json!(1), json!(false))
    );
    let (status, again) = srv
        .api(Method::POST, "/api/v1/profiles/custom-settings", Some(body))
        .await;
    assert_eq!(
        (status, again["created"].clone()),
        (200, json!(false)),
        "{again}"
    );

    // A setting JSON cannot express is named.
    let (status, bad) = srv
        .api(
            Method::POST,
            "/api/v1/profiles/custom-settings",
            Some(json!({
                "identifier": "com.acme.x", "name": "X", "domain": "com.acme.x",
                "settings": {"Proxy": {"Port": null}}
            })),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(
        error(&bad),
        (
            "invalid_profile",
            "invalid profile: settings.Proxy.Port: null has no plist form; leave the key out"
        )
    );
    let (status, bad) = srv
        .api(
            Method::POST,
            "/api/v1/profiles/custom-settings",
            Some(json!({"identifier": "com.acme.x", "name": "X", "domain": "", "settings": {}})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(
        error(&bad).1,
        "invalid profile: domain: must not be empty; settings: give at least one preference"
    );
    srv.stop().await;
}

/// A static group to assign to (assignments name existing groups only).
async fn group(srv: &TestServer, name: &str) {
    let (status, v) = srv
        .api(Method::POST, "/api/v1/groups", Some(json!({"name": name})))
        .await;
    assert_eq!(status, 201, "{v}");
}

async fn assignments_name_devices_by_udid_or_serial_and_groups_by_name(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (mac, other) = (srv.mac(), srv.mac());
    mac.enroll().await;
    other.enroll().await;
    group(&srv, "Finance").await;
    let (status, v) = upload(&srv, WIFI).await;
    assert_eq!(status, 201, "{v}");
    let path = "/api/v1/profiles/com.acme.wifi.office/assignments";

    let (status, v) = srv
        .api(
            Method::POST,
            path,
            Some(json!({"groups": ["Finance"], "devices": [mac.udid, other.serial]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let mut both = vec![mac.udid.clone(), other.udid.clone()];
    both.sort();
    assert_eq!(v["added"], json!({"groups": ["Finance"], "devices": both}));
    assert_eq!(
        v["assignments"],
        json!({"groups": ["Finance"], "devices": both})
    );

    // Naming them again changes nothing.
    let (status, v) = srv
        .api(Method::POST, path, Some(json!({"devices": [mac.serial]})))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["added"], json!({"groups": [], "devices": []}));
    assert_eq!(v["unchanged"]["devices"], json!([mac.udid]));

    // Unknown devices and groups are named, and nothing is assigned.
    group(&srv, "Design").await;
    let (status, v) = srv
        .api(
            Method::POST,
            path,
            Some(json!({"groups": ["Design"], "devices": ["C02NOTKNOWN", "NOT-A-UDID"]})),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(
        error(&v),
        (
            "not_found",
            "no device with the UDID or serial number C02NOTKNOWN, NOT-A-UDID"
        )
    );
    let (status, v) = srv
        .api(Method::POST, path, Some(json!({"groups": ["Nope"]})))
        .await;
    assert_eq!(error(&v), ("not_found", "no group Nope"), "{status} {v}");
    let (status, v) = srv.api(Method::POST, path, Some(json!({}))).await;
    assert_eq!((status, error(&v).0), (400, "bad_request"), "{v}");
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles/com.acme.none/assignments",
            Some(json!({"groups": ["Finance"]})),
        )
        .await;
    assert_eq!((status, error(&v).0), (404, "not_found"), "{v}");

    let (status, v) = srv
        .api(
            Method::DELETE,
            path,
            Some(json!({"groups": ["Finance"], "devices": [mac.serial]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["removed"],
        json!({"groups": ["Finance"], "devices": [mac.udid]})
    );
    let (_, show) = srv
        .api(Method::GET, "/api/v1/profiles/com.acme.wifi.office", None)
        .await;
    assert_eq!(
        show["assignments"],
        json!({"groups": [], "devices": [other.udid]})
    );
    assert_eq!(show["assigned"], json!({"groups": 0, "devices": 1}));
    srv.stop().await;
}

async fn bad_uploads_get_a_4xx_naming_the_problem(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let wrong_type = replaced(
        RESTRICTIONS,
        "<key>allowAirDrop</key>\n\t\t\t<false/>",
        "<key>allowAirDrop</key>\n\t\t\t<string>no</string>",
    );
    let no_uuid = replaced(
        WIFI,
        "<key>PayloadUUID</key>\n\t<string>5D1E2F30-4A5B-4C6D-8E9F-0A1B2C3D4E5F</string>",
        "",
    );
    let unknown_type = replaced(
        RESTRICTIONS,
        "<string>com.apple.applicationaccess</string>",
        "<string>com.apple.applicationaccesss</string>",
    );
    let scope = replaced(WIFI, "<string>System</string>", "<string>Computer</string>");
    let enrollment_id = replaced(
        WIFI,
        "<string>com.acme.wifi.office</string>",
        "<string>org.russet.enrollment</string>",
    );
    let unknown_variable = replaced(WIFI, WIFI_PASSWORD, "$WIFI_PASSWORD");
    let signed_with_variables = russet_certs::testing::TestCa::new("ACME Signing CA")
        .issue_device_identity("profile signer")
        .sign_attached(LOGINWINDOW);

    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            "garbage",
            b"this is not a profile".to_vec(),
            400,
            "invalid_profile",
            "invalid profile: not a well-formed plist",
        ),
        (
            "wrong key type",
            wrong_type,
            400,
            "invalid_profile",
            "invalid profile: PayloadContent[0].allowAirDrop: expected <boolean>, found <string>",
        ),
        (
            "missing key",
            no_uuid,
            400,
            "invalid_profile",
            "invalid profile: PayloadUUID: required key is missing",
        ),
        (
            "unknown payload type",
            unknown_type,
            400,
            "invalid_profile",
            "invalid profile: PayloadContent[0].PayloadType: unknown payload type \
             com.apple.applicationaccesss",
        ),
        (
            "scope",
            scope,
            400,
            "invalid_profile",
            "invalid profile: PayloadScope: value is not one of: System, User",
        ),
        (
            "unknown variable",
            unknown_variable,
            400,
            "invalid_profile",
            "invalid profile: PayloadContent[0].Password: unknown variable $WIFI_PASSWORD",
        ),
        (
            "signed with variables",
            signed_with_variables,
            400,
            "invalid_profile",
            "invalid profile: PayloadContent[0].LoginwindowText: $DEVICE_NAME cannot be filled \
             in: a signed profile is delivered byte for byte",
        ),
        (
            "MDM payload",
            SECOND_MDM.to_vec(),
            422,
            "refused",
            "refused: PayloadContent[0].PayloadType: com.apple.mdm: Russet's enrollment profile \
             carries the Mac's MDM payload",
        ),
        (
            "FileVault escrow",
            ESCROW.to_vec(),
            422,
            "refused",
            "refused: PayloadContent[0].PayloadType: com.apple.security.FDERecoveryKeyEscrow: \
             FileVault recovery-key escrow is Russet's own",
        ),
        (
            "enrollment identifier",
            enrollment_id,
            422,
            "refused",
            "refused: PayloadIdentifier: org.russet.enrollment is Russet's own \
             (org.russet.enrollment: the Mac's MDM enrollment)",
        ),
    ];
    for (what, bytes, want_status, want_code, want_message) in cases {
        let (status, v) = upload(&srv, &bytes).await;
        assert_eq!(status, want_status, "{what}: {v}");
        let (code, message) = error(&v);
        assert_eq!(code, want_code, "{what}: {v}");
        assert!(
            message.starts_with(want_message),
            "{what}: {message:?} should start with {want_message:?}"
        );
    }
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"mobileconfig": "%%% not base64"})),
        )
        .await;
    assert_eq!((status, error(&v).0), (400, "bad_request"), "{v}");
    let (status, v) = srv
        .api(Method::POST, "/api/v1/profiles", Some(json!({})))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error(&v).1.contains("mobileconfig"), "{v}");

    // Nothing was stored, nothing audited.
    let (_, list) = srv
        .api(Method::GET, "/api/v1/profiles?deleted=true", None)
        .await;
    assert_eq!(list["profiles"], json!([]));
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert!(!audit.to_string().contains("profile."), "{audit}");
    srv.stop().await;
}

async fn delete_keeps_the_history_and_the_audit_log_has_every_step(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    group(&srv, "Finance").await;
    assert_eq!(upload(&srv, WIFI).await.0, 201);
    let path = "/api/v1/profiles/com.acme.wifi.office";
    let assignments = format!("{path}/assignments");
    let (status, _) = srv
        .api(
            Method::POST,
            &assignments,
            Some(json!({"groups": ["Finance"], "devices": [mac.udid]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = srv
        .api(
            Method::DELETE,
            &assignments,
            Some(json!({"groups": ["Finance"]})),
        )
        .await;
    assert_eq!(status, 200);

    let (status, v) = srv.api(Method::DELETE, path, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["deleted"], json!(true));
    assert!(v["deleted_at"].is_string(), "{v}");
    assert_eq!(v["assignments"], json!({"groups": [], "devices": []}));
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(1));
    let (status, v) = srv.api(Method::DELETE, path, None).await;
    assert_eq!((status, error(&v).0), (404, "not_found"), "{v}");
    // Kept, and shown as deleted; listed only when asked for.
    let (status, v) = srv.api(Method::GET, path, None).await;
    assert_eq!((status, v["deleted"].clone()), (200, json!(true)), "{v}");
    let (_, list) = srv.api(Method::GET, "/api/v1/profiles", None).await;
    assert_eq!(list["profiles"], json!([]));
    let (_, list) = srv
        .api(Method::GET, "/api/v1/profiles?deleted=true", None)
        .await;
    assert_eq!(list["profiles"][0]["deleted"], json!(true));
    // A deleted profile takes no assignments; uploading it again brings it back.
    let (status, _) = srv
        .api(
            Method::POST,
            &assignments,
            Some(json!({"groups": ["Finance"]})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, v) = upload(&srv, WIFI).await;
    assert_eq!((status, v["version"].clone()), (201, json!(2)), "{v}");
    assert_eq!(v["profile"]["deleted"], json!(false));

    let (status, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, 200, "{audit}");
    let mut steps: Vec<(String, String)> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("profile."))
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["target"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    steps.reverse();
    let expected: Vec<(String, String)> = [
        "profile.upload",
        "profile.assign",
        "profile.unassign",
        "profile.delete",
        "profile.upload",
    ]
    .iter()
    .map(|a| (a.to_string(), "com.acme.wifi.office".to_string()))
    .collect();
    assert_eq!(steps, expected, "{audit}");
    let assign = audit["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["action"] == json!("profile.assign"))
        .expect("assign entry");
    assert_eq!(
        assign["detail"],
        json!({"groups": ["Finance"], "devices": [mac.udid]})
    );
    assert_eq!(assign["actor"], json!("admin"));
    srv.stop().await;
}

async fn profiles_are_sealed_at_rest(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (status, v) = upload(&srv, WIFI).await;
    assert_eq!(status, 201, "{v}");
    assert!(!v.to_string().contains(WIFI_PASSWORD), "{v}");
    let password = WIFI_PASSWORD.as_bytes();
    match srv.postgres_url() {
        None => {
            let bytes = srv.sqlite_bytes();
            assert!(!bytes.is_empty());
            assert!(
                !bytes.windows(password.len()).any(|w| w == password),
                "the Wi-Fi password is stored in the clear"
            );
            assert!(
                !bytes
                    .windows(b"ACME-Office".len())
                    .any(|w| w == b"ACME-Office"),
                "the profile is stored in the clear"
            );
        }
        Some(url) => {
            // Every row of every table as text (bytea as hex): neither form of the password.
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables");
            assert!(tables.iter().any(|t| t == "profile_versions"), "{tables:?}");
            let hex: String = password.iter().map(|b| format!("{b:02x}")).collect();
            for table in tables {
                let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT t::text FROM \"{table}\" t"
                )))
                .fetch_all(&pool)
                .await
                .expect("rows");
                for row in rows {
                    assert!(
                        !row.contains(WIFI_PASSWORD) && !row.contains(&hex),
                        "{table} holds the Wi-Fi password in the clear"
                    );
                }
            }
            pool.close().await;
        }
    }
    srv.stop().await;
}
