//! Golden images end to end, on SQLite and PostgreSQL: the catalog through the API and the
//! CLI, each bad input a 400 naming its field, a taken name, the `shasum -a 256` line stored
//! as lowercase hex, one image per group (409 naming the holder), a delete that needs
//! confirming and frees the groups, a viewer refused, and the audit log. Delivery: simulated
//! Macs that keep the profiles they install get the managed preferences of *their*
//! architecture (`org.russet.golden-image`), none while inventory has not said which they
//! are, the new URL after a change, nothing after an unassign or a delete. Verify and the
//! HEAD check against a local HTTP server serving a real file of a few MiB, a web page, and a
//! closed port: match and mismatch with both hashes, NDJSON progress, warnings on create.

use reqwest::Method;
use russet_mdm::cli::Command;
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    the_catalog_checks_its_input_and_keeps_one_image_per_group,
    the_cli_creates_assigns_and_deletes,
    each_mac_gets_the_image_of_its_architecture,
    verify_downloads_and_compares_and_create_warns,
);

const SHA_UPPER: &str = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SHA_INTEL: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

fn path(name: &str) -> String {
    format!("/api/v1/golden-images/{}", name.replace(' ', "%20"))
}

async fn create(srv: &TestServer, body: Value) -> (u16, Value) {
    srv.api(Method::POST, "/api/v1/golden-images", Some(body))
        .await
}

async fn group(srv: &TestServer, name: &str) {
    let (status, v) = srv
        .api(Method::POST, "/api/v1/groups", Some(json!({"name": name})))
        .await;
    assert_eq!(status, 201, "{v}");
}

/// A 400 whose message starts with the field.
fn assert_bad(answer: (u16, Value), field: &str) {
    let (status, v) = answer;
    assert_eq!(status, 400, "{field}: {v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.starts_with(&format!("{field}:")), "{field}: {msg}");
}

/// The actions of the audit log about golden images, oldest first, as (action, target).
async fn audit(srv: &TestServer) -> Vec<(String, String)> {
    let (status, v) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, 200, "{v}");
    let mut out: Vec<(String, String)> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .unwrap_or("")
                .starts_with("golden_image.")
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["target"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn the_catalog_checks_its_input_and_keeps_one_image_per_group(backend: Backend) {
    let srv = TestServer::start(backend).await;
    group(&srv, "Engineering").await;
    group(&srv, "Design").await;

    // Both architectures; the Apple silicon checksum as `shasum -a 256` prints it, uppercase.
    let (status, v) = create(
        &srv,
        json!({
            "name": "Dev VM",
            "description": "macOS 15 with Xcode; needs VPN",
            "apple_silicon": {
                "url": "https://images.example.com/dev-arm.pvmp.zip",
                "sha256": format!("{SHA_UPPER}  dev-arm.pvmp.zip\n"),
            },
            "intel": {"url": "http://images.example.com/dev-x86.pvm.zip", "sha256": SHA_INTEL},
        }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["name"], json!("Dev VM"));
    assert_eq!(v["apple_silicon"]["sha256"], json!(SHA));
    assert_eq!(
        v["intel"],
        json!({"url": "http://images.example.com/dev-x86.pvm.zip", "sha256": SHA_INTEL})
    );
    assert_eq!(v["groups"], json!([]));

    // Each bad input is a 400 naming its field.
    let arm = |url: &str, sha: &str| json!({"url": url, "sha256": sha});
    assert_bad(
        create(
            &srv,
            json!({"name": "X", "apple_silicon": arm("ftp://images.example.com/x.zip", SHA)}),
        )
        .await,
        "apple_silicon.url",
    );
    assert_bad(
        create(
            &srv,
            json!({"name": "X", "intel": arm("https://images.example.com/x.zip", &SHA[..63])}),
        )
        .await,
        "intel.sha256",
    );
    assert_bad(
        create(&srv, json!({"name": "X", "description": "no image"})).await,
        "apple_silicon, intel",
    );
    assert_bad(
        create(
            &srv,
            json!({"name": "  ", "apple_silicon": arm("https://a.example/x", SHA)}),
        )
        .await,
        "name",
    );
    // A taken name, in any case.
    let (status, v) = create(
        &srv,
        json!({"name": "dev vm", "apple_silicon": arm("https://a.example/x", SHA)}),
    )
    .await;
    assert_eq!(status, 409, "{v}");

    // A change: the Intel image removed, the description changed; one architecture stays.
    let (status, v) = srv
        .api(
            Method::PATCH,
            &path("dev vm"),
            Some(json!({"intel": null, "description": "needs VPN"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["intel"], Value::Null);
    assert_eq!(v["description"], json!("needs VPN"));
    assert_bad(
        srv.api(
            Method::PATCH,
            &path("Dev VM"),
            Some(json!({"apple_silicon": null})),
        )
        .await,
        "apple_silicon, intel",
    );

    // Two groups; assigning again is no change.
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("{}/groups", path("Dev VM")),
            Some(json!({"groups": ["Engineering", "Design"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["added"], json!(["Engineering", "Design"]));
    assert_eq!(
        v["golden_image"]["groups"],
        json!(["Design", "Engineering"])
    );
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("{}/groups", path("Dev VM")),
            Some(json!({"groups": ["Design"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["added"], &v["unchanged"]),
        (&json!([]), &json!(["Design"]))
    );

    // A second image on a taken group: 409 naming the holder; an unknown group: 404.
    let (status, v) = create(
        &srv,
        json!({"name": "Office", "intel": arm("https://images.example.com/office.zip", SHA_INTEL)}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("{}/groups", path("Office")),
            Some(json!({"groups": ["Design"]})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.contains("Design") && msg.contains("Dev VM"), "{msg}");
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("{}/groups", path("Office")),
            Some(json!({"groups": ["Nobody"]})),
        )
        .await;
    assert_eq!(status, 404, "{v}");

    // A viewer reads but cannot create or assign.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/admins",
            Some(json!({"name": "vera", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let vera = v["token"].as_str().expect("token").to_owned();
    let (status, v) = srv
        .api_with_token(
            Method::POST,
            "/api/v1/golden-images",
            Some(json!({"name": "Mine", "apple_silicon": arm("https://a.example/x", SHA)})),
            Some(&vera),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["permission"], json!("profiles"), "{v}");
    let (status, v) = srv
        .api_with_token(Method::GET, "/api/v1/golden-images", None, Some(&vera))
        .await;
    assert_eq!(status, 200, "{v}");
    let names: Vec<&Value> = v["golden_images"]
        .as_array()
        .expect("list")
        .iter()
        .map(|g| &g["name"])
        .collect();
    assert_eq!(names, [&json!("Dev VM"), &json!("Office")]);

    // Delete without confirm: 400 saying it is irreversible and naming the groups; nothing
    // is deleted. With confirm: the groups are free for another image.
    let (status, v) = srv.api(Method::DELETE, &path("Dev VM"), None).await;
    assert_eq!(status, 400, "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("irreversible") && msg.contains("Design, Engineering"),
        "{msg}"
    );
    let (status, _) = srv.api(Method::GET, &path("Dev VM"), None).await;
    assert_eq!(status, 200);
    let (status, v) = srv
        .api(
            Method::DELETE,
            &format!("{}?confirm=true", path("Dev VM")),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["groups_freed"], json!(["Design", "Engineering"]));
    let (status, _) = srv.api(Method::GET, &path("Dev VM"), None).await;
    assert_eq!(status, 404);
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("{}/groups", path("Office")),
            Some(json!({"groups": ["Design"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = srv
        .api(
            Method::DELETE,
            &format!("{}/groups", path("Office")),
            Some(json!({"groups": ["Design", "Engineering"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["removed"], &v["not_assigned"]),
        (&json!(["Design"]), &json!(["Engineering"]))
    );

    let dev = "Dev VM".to_owned();
    let office = "Office".to_owned();
    let entry = |a: &str, t: &String| (format!("golden_image.{a}"), t.clone());
    assert_eq!(
        audit(&srv).await,
        [
            entry("create", &dev),
            entry("change", &dev),
            entry("assign", &dev),
            entry("assign", &dev),
            entry("create", &office),
            entry("delete", &dev),
            entry("assign", &office),
            entry("unassign", &office),
        ]
    );
    srv.stop().await;
}

/// `russet golden-image …` run in-process against `srv`.
async fn cli(srv: &TestServer, args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["golden-image"];
    argv.extend_from_slice(args);
    let Command::GoldenImage(cmd) = srv.cli(&argv)?.command else {
        panic!("not a golden-image command");
    };
    russet_mdm::cli::golden_image::run(cmd).await
}

async fn the_cli_creates_assigns_and_deletes(backend: Backend) {
    let srv = TestServer::start(backend).await;
    group(&srv, "Engineering").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sha_file = dir.path().join("dev-arm.zip.sha256.txt");
    std::fs::write(&sha_file, format!("{SHA_UPPER} *dev-arm.zip\n")).expect("write");
    let at_file = format!("@{}", sha_file.display());

    cli(
        &srv,
        &[
            "create",
            "Dev VM",
            "--description",
            "needs VPN",
            "--apple-silicon-url",
            "https://images.example.com/dev-arm.zip",
            "--apple-silicon-sha256",
            &at_file,
            "--intel-url",
            "https://images.example.com/dev-x86.zip",
            "--intel-sha256",
            SHA_INTEL,
        ],
    )
    .await
    .expect("create");
    // A URL without its checksum does not parse.
    assert!(
        cli(&srv, &["create", "X", "--intel-url", "https://a.example/x"])
            .await
            .is_err()
    );
    cli(&srv, &["assign", "Dev VM", "--group", "Engineering"])
        .await
        .expect("assign");
    cli(&srv, &["list"]).await.expect("list");
    cli(&srv, &["show", "dev vm", "--json"])
        .await
        .expect("show");
    let (status, v) = srv.api(Method::GET, &path("Dev VM"), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["apple_silicon"]["sha256"], json!(SHA));
    assert_eq!(v["groups"], json!(["Engineering"]));

    // Without --confirm the server refuses, naming the group.
    let refused = cli(&srv, &["delete", "Dev VM"])
        .await
        .expect_err("delete without --confirm");
    assert!(
        format!("{refused:#}").contains("Engineering"),
        "{refused:#}"
    );
    cli(&srv, &["unassign", "Dev VM", "--group", "Engineering"])
        .await
        .expect("unassign");
    cli(&srv, &["delete", "Dev VM", "--confirm"])
        .await
        .expect("delete");
    let (status, _) = srv.api(Method::GET, &path("Dev VM"), None).await;
    assert_eq!(status, 404);
    srv.stop().await;
}

/// The golden image preferences a Mac holds (`org.russet.golden-image`'s forced settings), or
/// `None`; fails if two profiles carry the domain.
fn golden_prefs(mac: &ManagedMac) -> Option<plist::Dictionary> {
    let mut found: Vec<plist::Dictionary> = mac
        .profiles
        .values()
        .filter(|p| p.identifier.starts_with("org.russet.golden-image."))
        .filter_map(|p| plist::from_bytes::<plist::Dictionary>(&p.content).ok())
        .filter_map(|top| {
            let content = top
                .get("PayloadContent")?
                .as_array()?
                .first()?
                .as_dictionary()?;
            assert_eq!(
                content.get("PayloadType").and_then(plist::Value::as_string),
                Some("com.apple.ManagedClient.preferences")
            );
            content
                .get("PayloadContent")?
                .as_dictionary()?
                .get("org.russet.golden-image")?
                .as_dictionary()?
                .get("Forced")?
                .as_array()?
                .first()?
                .as_dictionary()?
                .get("mcx_preference_settings")?
                .as_dictionary()
                .cloned()
        })
        .collect();
    assert!(found.len() <= 1, "two golden image profiles: {found:?}");
    found.pop()
}

fn key(d: &plist::Dictionary, k: &str) -> String {
    d.get(k)
        .and_then(plist::Value::as_string)
        .unwrap_or_default()
        .to_string()
}

/// Ask DeviceInformation now (the server runs without periodic inventory) and answer it.
async fn tell_architecture(srv: &TestServer, mac: &mut ManagedMac) {
    srv.api_ok(
        Method::POST,
        "/api/v1/inventory/refresh",
        Some(json!({"devices": [mac.mac.udid]})),
    )
    .await;
    mac.converge().await;
    // What the new facts planned is sent on the next round.
    mac.converge().await;
}

async fn device_golden(srv: &TestServer, mac: &ManagedMac) -> Value {
    let v = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{}", mac.mac.udid),
            None,
        )
        .await;
    v["golden_image"].clone()
}

async fn each_mac_gets_the_image_of_its_architecture(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut arm = ManagedMac::new(srv.mac());
    let mut intel = ManagedMac::new(srv.mac());
    intel.is_apple_silicon = false;
    intel.model = "MacBookPro16,1".into();
    let mut late = ManagedMac::new(srv.mac());
    for mac in [&mut arm, &mut intel, &mut late] {
        mac.enroll().await;
        mac.converge().await;
    }
    tell_architecture(&srv, &mut arm).await;
    tell_architecture(&srv, &mut intel).await;
    group(&srv, "Developers").await;
    srv.api_ok(
        Method::POST,
        "/api/v1/groups/Developers/devices",
        Some(json!({"devices": [arm.mac.udid, intel.mac.udid, late.mac.udid]})),
    )
    .await;
    let (status, v) = create(
        &srv,
        json!({"name": "Dev VM", "description": "needs VPN",
               "apple_silicon": {"url": "https://img.example.com/arm.pvmp", "sha256": SHA},
               "intel": {"url": "https://img.example.com/x86.pvmp", "sha256": SHA_INTEL}}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    srv.api_ok(
        Method::POST,
        &format!("{}/groups", path("Dev VM")),
        Some(json!({"groups": ["Developers"]})),
    )
    .await;
    for mac in [&mut arm, &mut intel, &mut late] {
        mac.converge().await;
    }

    // Each Mac holds exactly its architecture's image.
    let a = golden_prefs(&arm).expect("the Apple silicon Mac has the image");
    assert_eq!(key(&a, "Name"), "Dev VM");
    assert_eq!(key(&a, "Description"), "needs VPN");
    assert_eq!(key(&a, "URL"), "https://img.example.com/arm.pvmp");
    assert_eq!(key(&a, "SHA256"), SHA);
    assert_eq!(key(&a, "Architecture"), "arm64");
    let i = golden_prefs(&intel).expect("the Intel Mac has the image");
    assert_eq!(key(&i, "URL"), "https://img.example.com/x86.pvmp");
    assert_eq!(key(&i, "SHA256"), SHA_INTEL);
    assert_eq!(key(&i, "Architecture"), "x86_64");
    let view = device_golden(&srv, &arm).await;
    assert_eq!(view["name"], "Dev VM", "{view}");
    assert_eq!(view["group"], "Developers", "{view}");
    assert_eq!(view["architecture"], "apple_silicon", "{view}");
    assert_eq!(view["state"], "verified", "{view}");

    // Architecture unknown: neither image, until DeviceInformation says.
    assert!(golden_prefs(&late).is_none());
    let view = device_golden(&srv, &late).await;
    assert_eq!(view["group"], "Developers", "{view}");
    assert_eq!(view["architecture"], Value::Null, "{view}");
    assert_eq!(view["state"], Value::Null, "{view}");
    tell_architecture(&srv, &mut late).await;
    let l = golden_prefs(&late).expect("the image once inventory says");
    assert_eq!(key(&l, "Architecture"), "arm64");

    // A new URL reaches the Macs of that architecture; the other keeps its image.
    let installed = |m: &ManagedMac| -> Vec<(String, Vec<u8>)> {
        m.profiles
            .iter()
            .map(|(k, p)| (k.clone(), p.content.clone()))
            .collect()
    };
    let intel_before = installed(&intel);
    srv.api_ok(
        Method::PATCH,
        &path("Dev VM"),
        Some(
            json!({"apple_silicon": {"url": "https://img.example.com/arm-2.pvmp",
                                      "sha256": SHA_INTEL}}),
        ),
    )
    .await;
    for mac in [&mut arm, &mut intel, &mut late] {
        mac.converge().await;
    }
    for mac in [&arm, &late] {
        let a = golden_prefs(mac).expect("still there");
        assert_eq!(key(&a, "URL"), "https://img.example.com/arm-2.pvmp");
        assert_eq!(key(&a, "SHA256"), SHA_INTEL);
    }
    assert_eq!(installed(&intel), intel_before);

    // Still one image per group.
    let (status, _) = create(
        &srv,
        json!({"name": "Other", "intel": {"url": "https://img.example.com/o.pvmp", "sha256": SHA}}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("{}/groups", path("Other")),
            Some(json!({"groups": ["Developers"]})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(v.to_string().contains("Dev VM"), "{v}");

    // Uploads cannot take Russet's domain.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles/custom-settings",
            Some(
                json!({"identifier": "org.russet.golden-image.mine", "name": "Mine",
                        "domain": "org.russet.golden-image", "settings": {"URL": "x"}}),
            ),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {v}");

    // Unassigned: removed from every Mac.
    let (status, v) = srv
        .api(
            Method::DELETE,
            &format!("{}/groups", path("Dev VM")),
            Some(json!({"groups": ["Developers"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    for mac in [&mut arm, &mut intel, &mut late] {
        mac.converge().await;
        assert!(golden_prefs(mac).is_none(), "{:?}", mac.profiles.keys());
    }
    assert_eq!(device_golden(&srv, &arm).await, Value::Null);

    // Assigned again, then deleted: removed again, and the profiles are gone from the catalog.
    srv.api_ok(
        Method::POST,
        &format!("{}/groups", path("Dev VM")),
        Some(json!({"groups": ["Developers"]})),
    )
    .await;
    arm.converge().await;
    assert!(golden_prefs(&arm).is_some());
    srv.api_ok(
        Method::DELETE,
        &format!("{}?confirm=true", path("Dev VM")),
        None,
    )
    .await;
    arm.converge().await;
    assert!(golden_prefs(&arm).is_none());
    let v = srv.api_ok(Method::GET, "/api/v1/profiles", None).await;
    assert!(
        !v.to_string().contains("dev-vm"),
        "deleted profiles are listed only when asked: {v}"
    );
}

/// A local image host: `/image.bin` (a few MiB, served with its length), `/page` (a web page),
/// `/moved` (a redirect to a sign-in page on another host: `localhost` instead of
/// `127.0.0.1`), `/no-head.bin` (the file, but HEAD refused with a 405, as some object stores
/// do). Returns its base URL and the file.
async fn image_host() -> (String, Vec<u8>) {
    use axum::response::IntoResponse;
    // Not all one byte, so a hash over the wrong range would not match by chance.
    let file: Vec<u8> = (0..3 * 1024 * 1024 + 123u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let served = file.clone();
    let served_too = file.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let login = format!("http://localhost:{}/sso/login?next=/image.bin", addr.port());
    let app = axum::Router::new()
        .route(
            "/image.bin",
            axum::routing::get(move || {
                let body = served.clone();
                async move { ([("content-type", "application/octet-stream")], body).into_response() }
            }),
        )
        .route(
            "/page",
            axum::routing::get(|| async {
                axum::response::Html("<html><body>Download here</body></html>")
            }),
        )
        .route(
            "/no-head.bin",
            axum::routing::get(move || {
                let body = served_too.clone();
                async move { body.into_response() }
            })
            .head(|| async { axum::http::StatusCode::METHOD_NOT_ALLOWED }),
        )
        .route(
            "/moved",
            axum::routing::get(move || async move { axum::response::Redirect::to(&login) }),
        )
        .route(
            "/sso/login",
            axum::routing::get(|| async { axum::response::Html("<form>Sign in</form>") }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), file)
}

/// A URL on a port nothing listens on.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/image.bin")
}

fn hex_sha256(data: &[u8]) -> String {
    openssl::sha::sha256(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn warnings(v: &Value) -> Vec<(String, String)> {
    v["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| {
            (
                w["architecture"].as_str().unwrap_or("").to_owned(),
                w["warning"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn verify_downloads_and_compares_and_create_warns(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (host, file) = image_host().await;
    let image_url = format!("{host}/image.bin");
    let good = hex_sha256(&file);
    let size = file.len() as u64;

    // The Apple silicon checksum is the file's, the Intel one is not: a direct link, no
    // warnings.
    let (status, v) = create(
        &srv,
        json!({"name": "Dev VM",
               "apple_silicon": {"url": image_url, "sha256": good},
               "intel": {"url": image_url, "sha256": SHA_INTEL}}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert!(warnings(&v).is_empty(), "{v}");

    let (status, v) = srv
        .api(Method::POST, &format!("{}/verify", path("dev vm")), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["golden_image"], "Dev VM");
    assert_eq!(v["ok"], false);
    let r = v["results"].as_array().expect("results");
    assert_eq!(r.len(), 2, "{v}");
    assert_eq!(r[0]["architecture"], "apple_silicon");
    assert_eq!(r[0]["match"], true, "{v}");
    assert_eq!(r[0]["expected"], good.as_str());
    assert_eq!(r[0]["actual"], good.as_str());
    assert_eq!(r[0]["bytes"], size);
    assert!(r[0]["seconds"].is_number());
    assert!(r[0]["error"].is_null());
    assert_eq!(r[1]["architecture"], "intel");
    assert_eq!(r[1]["match"], false);
    assert_eq!(r[1]["expected"], SHA_INTEL);
    assert_eq!(r[1]["actual"], good.as_str());
    assert_eq!(r[1]["bytes"], size);

    // Streamed: progress lines, then a result per architecture, then done.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}{}/verify?stream=true",
            srv.admin_url,
            path("Dev VM")
        ))
        .bearer_auth(&srv.token)
        .send()
        .await
        .expect("verify stream");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let text = resp.text().await.expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("an NDJSON line"))
        .collect();
    let events: Vec<&str> = lines
        .iter()
        .map(|l| l["event"].as_str().unwrap_or(""))
        .collect();
    let first_result = events
        .iter()
        .position(|e| *e == "result")
        .expect("a result");
    assert!(first_result > 0 && events[..first_result].iter().all(|e| *e == "progress"));
    assert_eq!(
        events.iter().filter(|e| **e == "result").count(),
        2,
        "{text}"
    );
    assert_eq!(events.last(), Some(&"done"));
    assert_eq!(lines[lines.len() - 1]["ok"], false);
    let progress = &lines[first_result - 1];
    assert_eq!(progress["architecture"], "apple_silicon");
    assert_eq!(progress["bytes"], size);
    assert_eq!(progress["total"], size);
    let arm = lines
        .iter()
        .find(|l| l["event"] == "result" && l["architecture"] == "apple_silicon")
        .expect("apple silicon result");
    assert_eq!(arm["match"], true);

    // A web page instead of a file, and a host that is not there: warnings, still created.
    let (status, v) = create(
        &srv,
        json!({"name": "Web",
               "apple_silicon": {"url": format!("{host}/page"), "sha256": good},
               "intel": {"url": closed_port_url().await, "sha256": SHA_INTEL}}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let w = warnings(&v);
    assert_eq!(w.len(), 2, "{v}");
    assert_eq!(w[0].0, "apple_silicon");
    assert!(w[0].1.contains("text/html"), "{}", w[0].1);
    assert_eq!(w[1].0, "intel");
    assert!(w[1].1.contains("not reachable"), "{}", w[1].1);

    // Verify of an unreachable image: that architecture's error, never a 5xx.
    let (status, v) = srv
        .api(Method::POST, &format!("{}/verify", path("Web")), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["results"][1]["match"], false);
    assert!(
        v["results"][1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not reachable")),
        "{v}"
    );
    assert!(v["results"][1]["actual"].is_null());

    // Skipped on request; on change only the URLs that change are checked.
    // A redirect to another host's sign-in page, and a 404.
    let (status, v) = create(
        &srv,
        json!({"name": "Behind SSO",
               "apple_silicon": {"url": format!("{host}/moved"), "sha256": good},
               "intel": {"url": format!("{host}/missing.bin"), "sha256": SHA_INTEL}}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let w = warnings(&v);
    assert_eq!(w.len(), 2, "{v}");
    assert!(w[0].1.contains("sign-in page"), "{}", w[0].1);
    assert!(w[1].1.contains("404"), "{}", w[1].1);

    let (status, v) = create(
        &srv,
        json!({"name": "Offline", "check_urls": false,
               "intel": {"url": closed_port_url().await, "sha256": SHA_INTEL}}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert!(warnings(&v).is_empty(), "{v}");
    let (status, v) = srv
        .api(
            Method::PATCH,
            &path("Web"),
            Some(json!({"description": "needs VPN"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(warnings(&v).is_empty(), "{v}");
    let (status, v) = srv
        .api(
            Method::PATCH,
            &path("Web"),
            Some(json!({"apple_silicon": {"url": image_url, "sha256": good}})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(warnings(&v).is_empty(), "{v}");
    let (status, v) = srv
        .api(
            Method::PATCH,
            &path("Dev VM"),
            Some(json!({"intel": {"url": format!("{host}/page"), "sha256": SHA_INTEL}})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(warnings(&v).len(), 1, "{v}");

    // An unknown image is a 404; a viewer may not make the server download.
    let (status, _) = srv
        .api(Method::POST, &format!("{}/verify", path("nope")), None)
        .await;
    assert_eq!(status, 404);
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/admins",
            Some(json!({"name": "vic", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let vic = v["token"].as_str().expect("token").to_owned();
    let (status, v) = srv
        .api_with_token(
            Method::POST,
            &format!("{}/verify", path("Dev VM")),
            None,
            Some(&vic),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["permission"], json!("profiles"), "{v}");

    // The CLI: a mismatch exits non-zero, a match zero.
    assert!(cli(&srv, &["verify", "Dev VM"]).await.is_err());
    // A server that refuses HEAD but serves the file: no warning (the first byte is asked for).
    let (status, v) = create(
        &srv,
        json!({"name": "Good",
               "apple_silicon": {"url": format!("{host}/no-head.bin"), "sha256": good}}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert!(warnings(&v).is_empty(), "{v}");
    cli(&srv, &["verify", "Good"]).await.expect("verify Good");

    let verified: Vec<(String, String)> = audit(&srv)
        .await
        .into_iter()
        .filter(|(a, _)| a == "golden_image.verify")
        .collect();
    assert_eq!(verified.len(), 5, "{verified:?}");
    srv.stop().await;
}
