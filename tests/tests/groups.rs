//! Groups end to end: static groups by UDID and by serial, a serial known only from DEP that
//! joins when its Mac enrolls, a DEP profile's group that ADE Macs join, smart groups that
//! follow what Macs report, device search with the same filter language, and the refusals
//! (a bad filter points at its term, an unknown device, a taken name).

use plist::Value as Plist;
use reqwest::Method;
use russet_certs::testing::{DeviceIdentity, IssueOptions, TestCa};
use russet_tests::dep::{corp_profile, linked_and_synced, setup_with};
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    static_groups_by_udid_and_by_serial,
    smart_groups_follow_what_macs_report,
    dep_serials_join_their_groups_when_the_macs_enroll,
);

/// Percent-encode a path segment or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn group_path(name: &str) -> String {
    format!("/api/v1/groups/{}", enc(name))
}

/// (udid, serial, pending) of a group view's members.
fn members(v: &Value) -> Vec<(Option<String>, Option<String>, bool)> {
    v["members"]
        .as_array()
        .unwrap_or_else(|| panic!("members in {v}"))
        .iter()
        .map(|m| {
            (
                m["udid"].as_str().map(str::to_owned),
                m["serial"].as_str().map(str::to_owned),
                m["pending"].as_bool().unwrap_or_else(|| panic!("{m}")),
            )
        })
        .collect()
}

fn udids(v: &Value) -> Vec<String> {
    let mut u: Vec<String> = members(v).into_iter().filter_map(|m| m.0).collect();
    u.sort();
    u
}

/// A Mac that authenticates reporting this OS version, then enrolls.
async fn enroll_on(mac: &SimMac, os_version: &str) {
    let mut auth = mac.authenticate_message();
    auth.insert("OSVersion".into(), Plist::String(os_version.into()));
    assert_eq!(mac.checkin(&auth).await.status, 200);
    assert_eq!(mac.checkin(&mac.token_update_message()).await.status, 200);
}

async fn device_groups(srv: &TestServer, udid: &str) -> Value {
    let (status, v) = srv
        .api(Method::GET, &format!("/api/v1/devices/{udid}"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    v["groups"].clone()
}

/// `(actor, action, target)` of the audit log, oldest first.
async fn audit(srv: &TestServer) -> Vec<(String, String, String)> {
    let (status, v) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, 200, "{v}");
    let mut out: Vec<(String, String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn static_groups_by_udid_and_by_serial(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (a, b) = (srv.mac(), srv.mac());
    a.enroll().await;
    b.enroll().await;

    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Finance Team", "description": "Finance Macs"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (&v["kind"], &v["member_count"], &v["filter"]),
        (&json!("static"), &json!(0), &Value::Null)
    );
    // Names are unique regardless of case; a name must be one.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "finance team"})),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("conflict")),
        "{v}"
    );
    let (status, v) = srv
        .api(Method::POST, "/api/v1/groups", Some(json!({"name": "a/b"})))
        .await;
    assert_eq!(status, 400, "{v}");

    // One by UDID, one by serial.
    let devices = format!("{}/devices", group_path("Finance Team"));
    let (status, v) = srv
        .api(
            Method::POST,
            &devices,
            Some(json!({"devices": [a.udid, b.serial]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["added"], json!([a.udid, b.serial]), "{v}");
    let mut both = vec![a.udid.clone(), b.udid.clone()];
    both.sort();
    assert_eq!(udids(&v["group"]), both);
    // A list with an unknown device is refused whole, naming it.
    let (status, v) = srv
        .api(
            Method::POST,
            &devices,
            Some(json!({"devices": ["C02NOSUCHMAC", a.serial]})),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("C02NOSUCHMAC"),
        "{v}"
    );
    // The same devices named the other way round are members already.
    let (status, v) = srv
        .api(
            Method::POST,
            &devices,
            Some(json!({"devices": [a.serial, b.udid]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["unchanged"], json!([a.serial, b.udid]), "{v}");
    assert_eq!(v["group"]["member_count"], json!(2));

    let (status, v) = srv.api(Method::GET, "/api/v1/groups", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["groups"][0]["name"], json!("Finance Team"), "{v}");
    assert_eq!(v["groups"][0]["member_count"], json!(2), "{v}");
    assert_eq!(device_groups(&srv, &a.udid).await, json!(["Finance Team"]));

    // B was added by serial and leaves by UDID.
    let (status, v) = srv
        .api(Method::DELETE, &devices, Some(json!({"devices": [b.udid]})))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["removed"], json!([b.udid]), "{v}");
    assert_eq!(udids(&v["group"]), [a.udid.as_str()]);
    assert_eq!(device_groups(&srv, &b.udid).await, json!([]));

    let (status, v) = srv
        .api(Method::DELETE, &group_path("Finance Team"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = srv
        .api(Method::GET, &group_path("Finance Team"), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(device_groups(&srv, &a.udid).await, json!([]));

    let (_, doc) = srv.api(Method::GET, "/api/v1/openapi.json", None).await;
    for p in [
        "/api/v1/groups",
        "/api/v1/groups/{name}",
        "/api/v1/groups/{name}/devices",
    ] {
        assert!(doc["paths"][p].is_object(), "OpenAPI documents {p}");
    }

    let log = audit(&srv).await;
    let actions: Vec<&str> = log
        .iter()
        .filter(|(_, _, target)| target == "Finance Team")
        .map(|(actor, action, _)| {
            assert_eq!(actor, "admin");
            action.as_str()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "group.create",
            "group.devices.add",
            "group.devices.remove",
            "group.delete"
        ]
    );
    srv.stop().await;
}

async fn smart_groups_follow_what_macs_report(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (old, new) = (srv.mac(), srv.mac());
    enroll_on(&old, "14.6").await;
    enroll_on(&new, "15.1").await;

    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Before Sequoia", "filter": "os_version < 15"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["kind"], json!("smart"));
    assert_eq!(udids(&v), [old.udid.as_str()]);
    // Versions compare as versions; text ignores case.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Airs",
                        "filter": "model_name = \"macbook air\" and os_version >= 14.10 and model ~ Mac14"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(udids(&v), [new.udid.as_str()]);

    // A bad filter points at its term, and creates nothing.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Bad", "filter": "os_version < 15 and modle = x"})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let e = &v["error"];
    assert_eq!(e["code"], json!("invalid_filter"), "{v}");
    assert_eq!((&e["position"], &e["term"]), (&json!(20), &json!("modle")));
    assert!(e["message"].as_str().unwrap().contains("`modle`"), "{v}");
    assert!(
        e["expected"].as_str().unwrap().contains("model_name"),
        "{v}"
    );
    assert_eq!(srv.api(Method::GET, &group_path("Bad"), None).await.0, 404);

    // Device search speaks the same language.
    let (status, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices?filter={}", enc("os_version < 15")),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let found: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["udid"].as_str().unwrap())
        .collect();
    assert_eq!(found, [old.udid.as_str()]);
    let (status, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices?filter={}", enc("enrolled = maybe")),
            None,
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        (&v["error"]["code"], &v["error"]["position"]),
        (&json!("invalid_filter"), &json!(11))
    );

    // A smart group has no static members.
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("{}/devices", group_path("Before Sequoia")),
            Some(json!({"devices": [new.udid]})),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("conflict")),
        "{v}"
    );

    // The old Mac updates and says so in DeviceInformation: it leaves the group.
    let uuid = srv
        .enqueue(
            &old.udid,
            json!({"request_type": "DeviceInformation", "Queries": ["OSVersion"]}),
        )
        .await;
    let reply = old.idle().await;
    assert_eq!(reply.command().map(|c| c.0), Some(uuid.clone()));
    let mut answers = plist::Dictionary::new();
    answers.insert("OSVersion".into(), Plist::String("15.2".into()));
    let reply = old
        .report(
            &uuid,
            "Acknowledged",
            &[("QueryResponses", Plist::Dictionary(answers))],
        )
        .await;
    assert_eq!(reply.status, 200);
    let (_, v) = srv
        .api(Method::GET, &group_path("Before Sequoia"), None)
        .await;
    assert_eq!(v["member_count"], json!(0), "{v}");
    // … and, on 15.2 now, joins the Airs on 14.10 or later.
    assert_eq!(device_groups(&srv, &old.udid).await, json!(["Airs"]));

    // A new filter takes effect at once; without one the group is static (and empty).
    let (status, v) = srv
        .api(
            Method::PATCH,
            &group_path("Before Sequoia"),
            Some(json!({"filter": "os_version < 16", "description": "not on Tahoe"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let mut both = vec![old.udid.clone(), new.udid.clone()];
    both.sort();
    assert_eq!(udids(&v), both);
    assert_eq!(v["description"], json!("not on Tahoe"));
    assert_eq!(
        device_groups(&srv, &new.udid).await,
        json!(["Airs", "Before Sequoia"])
    );
    let (status, v) = srv
        .api(
            Method::PATCH,
            &group_path("Before Sequoia"),
            Some(json!({"filter": "os_version <"})),
        )
        .await;
    assert_eq!((status, &v["error"]["position"]), (400, &json!(12)), "{v}");
    let (status, v) = srv
        .api(
            Method::PATCH,
            &group_path("Before Sequoia"),
            Some(json!({"filter": null})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["kind"], &v["member_count"], &v["description"]),
        (&json!("static"), &json!(0), &json!("not on Tahoe"))
    );
    // A static group with members does not silently become smart.
    let (status, _) = srv
        .api(
            Method::POST,
            &format!("{}/devices", group_path("Before Sequoia")),
            Some(json!({"devices": [old.udid]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = srv
        .api(
            Method::PATCH,
            &group_path("Before Sequoia"),
            Some(json!({"filter": "enrolled = true"})),
        )
        .await;
    assert_eq!(status, 409, "{v}");

    let (status, v) = srv.api(Method::GET, "/api/v1/groups", None).await;
    assert_eq!(status, 200);
    let listed: Vec<(&str, &str, u64)> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap(),
                g["kind"].as_str().unwrap(),
                g["member_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("Airs", "smart", 2), ("Before Sequoia", "static", 1)]
    );
    srv.stop().await;
}

fn machine_info(udid: &str, serial: &str) -> Vec<u8> {
    let mut d = plist::Dictionary::new();
    d.insert("UDID".into(), Plist::String(udid.into()));
    d.insert("SERIAL".into(), Plist::String(serial.into()));
    d.insert("PRODUCT".into(), Plist::String("Mac14,2".into()));
    d.insert("VERSION".into(), Plist::String("24B83".into()));
    d.insert("OS_VERSION".into(), Plist::String("15.1".into()));
    SimMac::to_xml(&d)
}

async fn dep_serials_join_their_groups_when_the_macs_enroll(backend: Backend) {
    let apple = TestCa::legacy_device_ca("Apple iPhone Device CA (test)");
    let dir = tempfile::tempdir().unwrap();
    let apple_pem = dir.path().join("apple-device-ca.pem");
    std::fs::write(&apple_pem, apple.cert_pem()).unwrap();
    let apple_arg = apple_pem.display().to_string();
    let (srv, sim) = setup_with(backend, 3, &["--ade-device-ca", &apple_arg], false).await;
    let serials = linked_and_synced(&srv, &sim, "corp").await;

    // A serial Russet knows only from DEP is a pending member.
    for name in ["Loaners", "Site A"] {
        let (status, v) = srv
            .api(Method::POST, "/api/v1/groups", Some(json!({"name": name})))
            .await;
        assert_eq!(status, 201, "{v}");
    }
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("{}/devices", group_path("Loaners")),
            Some(json!({"devices": [serials[0]]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        members(&v["group"]),
        [(None, Some(serials[0].clone()), true)]
    );
    // It enrolls: the member is the Mac now.
    let mut loaner = srv.mac();
    loaner.serial = serials[0].clone();
    loaner.enroll().await;
    let (_, v) = srv.api(Method::GET, &group_path("Loaners"), None).await;
    assert_eq!(
        members(&v),
        [(Some(loaner.udid.clone()), Some(serials[0].clone()), false)]
    );

    // A DEP profile names a static group that exists.
    let profile = |group: &str| json!({"profile": corp_profile(), "setup": {"group": group}});
    let (status, v) = srv
        .api(Method::POST, "/api/v1/dep/profiles", Some(profile("Nope")))
        .await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Everyone", "filter": "serial ~ ''"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(profile("Everyone")),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/profiles",
            Some(profile("Site A")),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["setup"]["group"], json!("Site A"), "{v}");
    let uuid = v["profile_uuid"].as_str().unwrap().to_owned();
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/dep/profiles/{uuid}/devices"),
            Some(json!({"devices": [serials[1]]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // The Mac in Setup Assistant fetches its profile: its serial joins the profile's group,
    // pending until the Mac authenticates.
    let udid = "0000FE00-5111-7E00-0000-00000000A11A".to_owned();
    let signer: DeviceIdentity = apple.issue_with(&udid, IssueOptions::legacy());
    let r = reqwest::Client::new()
        .post(format!("{}/mdm/enroll", srv.device_url))
        .header("Content-Type", "application/pkcs7-signature")
        .body(signer.sign_attached(&machine_info(&udid, &serials[1])))
        .send()
        .await
        .expect("POST /mdm/enroll");
    assert_eq!(r.status().as_u16(), 200);
    let (_, v) = srv.api(Method::GET, &group_path("Site A"), None).await;
    assert_eq!(members(&v), [(None, Some(serials[1].clone()), true)]);
    let mut mac = SimMac::new(&srv.device_url, srv.ca.issue_device_identity(&udid));
    mac.udid = udid.clone();
    mac.serial = serials[1].clone();
    mac.enroll().await;
    let (_, v) = srv.api(Method::GET, &group_path("Site A"), None).await;
    assert_eq!(
        members(&v),
        [(Some(udid.clone()), Some(serials[1].clone()), false)]
    );
    let groups = device_groups(&srv, &udid).await;
    assert_eq!(groups, json!(["Everyone", "Site A"]));
    // The ADE join is audited as Russet's own doing.
    assert!(
        audit(&srv).await.contains(&(
            "ade".to_owned(),
            "group.devices.add".to_owned(),
            "Site A".to_owned()
        )),
        "{:?}",
        audit(&srv).await
    );
    srv.stop().await;
}
