//! The console's catalog pages (issue 18), on SQLite and PostgreSQL: groups (create static
//! and smart, members by serial number or UDID, delete), profiles (upload through htmx,
//! assign to a group, each Mac's state as the Mac reports it), golden images (create, assign,
//! verify against a real download with its progress polled, delete) and OS updates (enforce,
//! refusals beside the field, per-Mac states, delete). Browser scenarios drive a headless
//! Chromium against simulated Macs that keep what is installed on them; the refusals (a
//! viewer's, the services' own messages) use plain HTTP.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use russet_tests::browser::Browser;
use russet_tests::console_http::{ConsoleClient, Page};
use russet_tests::managed_mac::Channel;
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

russet_tests::on_both_backends!(
    groups_are_created_filled_and_deleted,
    a_viewer_cannot_upload_and_a_bad_profile_is_refused_with_the_services_message,
    an_os_update_is_refused_beside_its_field_then_enforced_and_deleted,
    a_golden_image_is_created_assigned_verified_and_deleted,
);

russet_tests::in_browser_on_both_backends!(
    a_profile_is_uploaded_assigned_and_seen_installed_on_the_mac,
    golden_images_and_os_updates_in_a_browser,
);

/// A Dock profile (`com.apple.dock`), valid by Apple's schema.
fn dock(identifier: &str, uuid: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>{identifier}</string>
<key>PayloadUUID</key><string>{uuid}</string>
<key>PayloadDisplayName</key><string>Dock {identifier}</string>
<key>PayloadScope</key><string>System</string>
<key>PayloadContent</key><array><dict>
  <key>PayloadType</key><string>com.apple.dock</string>
  <key>PayloadVersion</key><integer>1</integer>
  <key>PayloadIdentifier</key><string>{identifier}.dock</string>
  <key>PayloadUUID</key><string>{uuid}-P</string>
  <key>orientation</key><string>left</string>
</dict></array>
</dict></plist>"#
    )
    .into_bytes()
}

async fn signed_in(srv: &TestServer, token: &str) -> (ConsoleClient, String) {
    let mut c = ConsoleClient::new(&srv.admin_url);
    assert_eq!(c.sign_in(token).await.expect("sign in").status, 303);
    let csrf = c.csrf().await.expect("csrf");
    (c, csrf)
}

async fn viewer_token(srv: &TestServer) -> String {
    let created = srv.admin_token("vera", "viewer").await;
    created.clone()
}

/// A multipart upload of `bytes` as the `mobileconfig` file field, as htmx sends it (with
/// `HX-Request`) or not.
async fn post_file(c: &ConsoleClient, csrf: &str, bytes: &[u8], htmx: bool) -> Page {
    let boundary = "russet-test-boundary-7e1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"mobileconfig\"; \
         filename=\"upload.mobileconfig\"\r\nContent-Type: application/x-apple-aspen-config\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut req = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/profiles", c.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("x-csrf-token", csrf)
        .body(body);
    if htmx {
        req = req.header("hx-request", "true");
    }
    if let Some(cookie) = &c.cookie {
        req = req.header("cookie", cookie);
    }
    let resp = req.send().await.expect("upload");
    Page {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("body"),
    }
}

/// The text HTML-escaped as askama writes it.
fn escaped(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

async fn groups_are_created_filled_and_deleted(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    let (c, csrf) = signed_in(&srv, &srv.token).await;

    // A static group, named with characters a URL must encode.
    let page = c
        .post_form(
            "/groups",
            &[
                ("csrf", &csrf),
                ("name", "Design & Web"),
                ("description", "the studio"),
                ("filter", ""),
            ],
        )
        .await
        .expect("create");
    assert_eq!(page.status, 201, "{}", page.body);
    assert!(
        page.body.contains(&escaped("Group Design & Web created.")),
        "{}",
        page.body
    );
    let base = "/groups/Design%20%26%20Web";
    // A serial number no Mac or DEP record has: the service's refusal beside the field, what
    // was typed given back, nothing added.
    let page = c
        .post_form(
            &format!("{base}/devices"),
            &[
                ("csrf", &csrf),
                ("devices", &format!("{}\nC02NOTYET1", mac.mac.serial)),
            ],
        )
        .await
        .expect("add");
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(
        page.body.contains(
            "id=\"devices-error\" role=\"alert\">not found: no device or DEP record has the UDID \
             or serial number C02NOTYET1"
        ),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("{}\nC02NOTYET1</textarea>", mac.mac.serial))
    );
    // By serial number: the member links to its device.
    let page = c
        .post_form(
            &format!("{base}/devices"),
            &[("csrf", &csrf), ("devices", &mac.mac.serial)],
        )
        .await
        .expect("add");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("href=\"/devices/{}\"", mac.mac.udid)),
        "a member links to its device: {}",
        page.body
    );
    assert!(
        page.body.contains(&format!("Added {}.", mac.mac.serial)),
        "{}",
        page.body
    );
    let api = srv
        .api_ok(Method::GET, "/api/v1/groups/Design%20%26%20Web", None)
        .await;
    assert_eq!(api["member_count"], json!(1), "{api}");

    // The list counts them.
    let list = c.get("/groups").await.expect("list");
    assert!(
        list.body.contains(&format!("href=\"{base}\"")),
        "{}",
        list.body
    );
    assert!(list.body.contains("<td>1</td>"), "{}", list.body);

    // A smart group with a filter the language refuses: the parser's message beside the
    // filter field, the form given back.
    let (api_status, api_err) = srv
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Old", "filter": "os_version <<< 14"})),
        )
        .await;
    let message = api_err["error"]["message"].as_str().expect("message");
    let bad = c
        .post_form(
            "/groups",
            &[
                ("csrf", &csrf),
                ("name", "Old"),
                ("filter", "os_version <<< 14"),
            ],
        )
        .await
        .expect("smart");
    assert_eq!(bad.status, api_status, "{}", bad.body);
    assert!(bad.body.contains("id=\"filter-error\""), "{}", bad.body);
    assert!(
        bad.body.contains(&escaped(message)),
        "{message} not in {}",
        bad.body
    );
    assert!(
        bad.body
            .contains("aria-describedby=\"filter-help filter-error\"")
    );
    let good = c
        .post_form(
            "/groups",
            &[
                ("csrf", &csrf),
                ("name", "Old"),
                ("filter", "os_version < 14"),
            ],
        )
        .await
        .expect("smart");
    assert_eq!(good.status, 201, "{}", good.body);
    assert!(good.body.contains("smart"));
    assert!(
        !good.body.contains("id=\"add-members\""),
        "no member form for a smart group"
    );

    // Remove one member, then delete the group.
    let page = c
        .post_form(
            &format!("{base}/devices/remove"),
            &[("csrf", &csrf), ("device", &mac.mac.udid)],
        )
        .await
        .expect("remove");
    assert!(
        page.body.contains(&format!("Removed {}.", mac.mac.udid)),
        "{}",
        page.body
    );
    assert!(page.body.contains("No members."), "{}", page.body);
    let page = c
        .post_form(&format!("{base}/delete"), &[("csrf", &csrf)])
        .await
        .expect("delete");
    assert!(
        page.body.contains(&escaped("Group Design & Web deleted.")),
        "{}",
        page.body
    );
    let (status, _) = srv
        .api(Method::GET, "/api/v1/groups/Design%20%26%20Web", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(c.get(base).await.expect("gone").status, 404);

    // A viewer sees the groups, but no form, and is refused the actions.
    let token = viewer_token(&srv).await;
    let (v, vcsrf) = signed_in(&srv, &token).await;
    let list = v.get("/groups").await.expect("list");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("href=\"/groups/Old\""));
    assert!(!list.body.contains("Create group"), "{}", list.body);
    let refused = v
        .post_form("/groups", &[("csrf", &vcsrf), ("name", "Mine")])
        .await
        .expect("post");
    assert_eq!(refused.status, 403);
    let refused = v
        .post_form("/groups/Old/delete", &[("csrf", &vcsrf)])
        .await
        .expect("post");
    assert_eq!(refused.status, 403);
    srv.api_ok(Method::GET, "/api/v1/groups/Old", None).await;
    srv.stop().await;
}

async fn a_viewer_cannot_upload_and_a_bad_profile_is_refused_with_the_services_message(
    backend: Backend,
) {
    let srv = TestServer::start(backend).await;
    let (c, csrf) = signed_in(&srv, &srv.token).await;
    let catalog = c.get("/profiles").await.expect("profiles");
    assert!(
        catalog.body.contains("id=\"upload\""),
        "an admin gets the form"
    );

    // A profile Apple's schema refuses: the catalog's own message, beside the file field.
    let bad = String::from_utf8(dock("com.acme.bad", "B-1"))
        .expect("utf8")
        .replace("<string>left</string>", "<integer>3</integer>")
        .into_bytes();
    let (api_status, api_err) = srv
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"mobileconfig": STANDARD.encode(&bad)})),
        )
        .await;
    assert!((400..500).contains(&api_status), "{api_status} {api_err}");
    let message = api_err["error"]["message"].as_str().expect("message");
    // htmx swaps only 2xx answers: the form with the reason comes back as a 200.
    let page = post_file(&c, &csrf, &bad, true).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&escaped(message)),
        "{message} not in {}",
        page.body
    );
    assert!(
        page.body
            .contains("id=\"mobileconfig-error\" role=\"alert\"")
    );
    assert!(page.body.contains("aria-invalid=\"true\""));
    // Anything else gets the API's status.
    let page = post_file(&c, &csrf, &bad, false).await;
    assert_eq!(page.status, api_status, "{}", page.body);
    // Not a profile at all, and no file.
    let page = post_file(&c, &csrf, b"hello", true).await;
    assert!(page.body.contains("mobileconfig-error"), "{}", page.body);
    let page = post_file(&c, &csrf, b"", false).await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("choose a .mobileconfig file"),
        "{}",
        page.body
    );
    let listed = srv.api_ok(Method::GET, "/api/v1/profiles", None).await;
    assert_eq!(listed["profiles"], json!([]), "nothing stored: {listed}");

    // A good one: htmx is sent to its page.
    let page = post_file(&c, &csrf, &dock("com.acme.dock", "D-1"), true).await;
    assert_eq!(page.status, 204, "{}", page.body);
    assert_eq!(
        page.headers
            .get("hx-redirect")
            .and_then(|v| v.to_str().ok()),
        Some("/profiles/com.acme.dock")
    );
    let shown = c.get("/profiles/com.acme.dock").await.expect("profile");
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("Dock com.acme.dock"));
    // Assigned to a group that does not exist: the catalog's refusal beside the group field.
    let page = c
        .post_form(
            "/profiles/com.acme.dock/assignments",
            &[("csrf", &csrf), ("group", "Nope")],
        )
        .await
        .expect("assign");
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(
        page.body
            .contains("id=\"group-error\" role=\"alert\">no group Nope</p>"),
        "{}",
        page.body
    );
    // Assigned, then unassigned: the API sees both.
    srv.group_with("Design", &[]).await;
    let page = c
        .post_form(
            "/profiles/com.acme.dock/assignments",
            &[("csrf", &csrf), ("group", "Design")],
        )
        .await
        .expect("assign");
    assert!(
        page.body
            .contains("Assigned to Design: 0 Macs to install it."),
        "{}",
        page.body
    );
    let v = srv
        .api_ok(Method::GET, "/api/v1/profiles/com.acme.dock", None)
        .await;
    assert_eq!(v["assignments"]["groups"], json!(["Design"]), "{v}");
    let group = c.get("/groups/Design").await.expect("group");
    assert!(
        group.body.contains("href=\"/profiles/com.acme.dock\""),
        "{}",
        group.body
    );
    let page = c
        .post_form(
            "/profiles/com.acme.dock/assignments/remove",
            &[("csrf", &csrf), ("group", "Design")],
        )
        .await
        .expect("unassign");
    assert!(page.body.contains("Unassigned Design"), "{}", page.body);
    let v = srv
        .api_ok(Method::GET, "/api/v1/profiles/com.acme.dock", None)
        .await;
    assert_eq!(v["assignments"]["groups"], json!([]), "{v}");

    // A viewer: no upload form, no delete button, and the POSTs refused.
    let token = viewer_token(&srv).await;
    let (v, vcsrf) = signed_in(&srv, &token).await;
    let catalog = v.get("/profiles").await.expect("profiles");
    assert_eq!(catalog.status, 200);
    assert!(catalog.body.contains("com.acme.dock"));
    assert!(!catalog.body.contains("id=\"upload\""), "{}", catalog.body);
    assert!(!catalog.body.contains("type=\"file\""));
    let page = v.get("/profiles/com.acme.dock").await.expect("profile");
    assert!(!page.body.contains("/delete"), "{}", page.body);
    assert!(!page.body.contains("id=\"assign\""));
    let refused = post_file(&v, &vcsrf, &dock("com.acme.viewer", "V-1"), true).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused = v
        .post_form("/profiles/com.acme.dock/delete", &[("csrf", &vcsrf)])
        .await
        .expect("delete");
    assert_eq!(refused.status, 403);
    let listed = srv.api_ok(Method::GET, "/api/v1/profiles", None).await;
    assert_eq!(listed["profiles"].as_array().map(Vec::len), Some(1));

    // The admin deletes it.
    let page = c
        .post_form("/profiles/com.acme.dock/delete", &[("csrf", &csrf)])
        .await
        .expect("delete");
    assert!(
        page.body.contains("Profile com.acme.dock deleted"),
        "{}",
        page.body
    );
    let listed = srv.api_ok(Method::GET, "/api/v1/profiles", None).await;
    assert_eq!(listed["profiles"], json!([]));
    srv.stop().await;
}

/// A local date-time `days` from now, as `datetime-local` sends it.
fn local_in(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

async fn an_os_update_is_refused_beside_its_field_then_enforced_and_deleted(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    srv.group_with("Fleet", &[&mac.mac.udid]).await;
    let (c, csrf) = signed_in(&srv, &srv.token).await;
    let deadline = local_in(7);
    let form = |version: &'static str, deadline: String, url: &'static str| {
        vec![
            ("group", "Fleet".to_string()),
            ("target_os_version", version.to_string()),
            ("target_build_version", String::new()),
            ("deadline", deadline),
            ("details_url", url.to_string()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let c = &c;
        let csrf = csrf.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
            all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            c.post_form("/os-updates", &all).await.expect("post")
        }
    };
    // Each refusal is the service's message, beside its field, with the form given back.
    for (fields, field, api_body) in [
        (
            form("fourteen", deadline.clone(), ""),
            "target_os_version",
            json!({"group": "Fleet", "target_os_version": "fourteen", "deadline": deadline}),
        ),
        (
            form("15.2", "2020-01-01T09:00".into(), ""),
            "deadline",
            json!({"group": "Fleet", "target_os_version": "15.2", "deadline": "2020-01-01T09:00"}),
        ),
        (
            form("15.2", deadline.clone(), "ftp://files.example/notes"),
            "details_url",
            json!({"group": "Fleet", "target_os_version": "15.2", "deadline": deadline,
                   "details_url": "ftp://files.example/notes"}),
        ),
    ] {
        let (status, err) = srv
            .api(Method::POST, "/api/v1/os-updates", Some(api_body))
            .await;
        let message = err["error"]["message"].as_str().expect("message");
        let page = post(fields).await;
        assert_eq!(page.status, status, "{}", page.body);
        let slot = format!(
            "<p class=\"field-error\" id=\"{field}-error\" role=\"alert\">{}</p>",
            escaped(message)
        );
        assert!(page.body.contains(&slot), "{slot} not in {}", page.body);
        assert!(
            page.body.contains(&format!(
                "aria-invalid=\"true\" aria-describedby=\"{field}-error\""
            )),
            "{}",
            page.body
        );
    }
    // Nothing was stored.
    let listed = srv.api_ok(Method::GET, "/api/v1/os-updates", None).await;
    assert_eq!(listed["os_updates"], json!([]));

    let page = post(form(
        "15.2",
        deadline.clone(),
        "https://intranet.example/macos",
    ))
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("macOS 15.2 enforced on Fleet"),
        "{}",
        page.body
    );
    let listed = srv.api_ok(Method::GET, "/api/v1/os-updates", None).await;
    let update = &listed["os_updates"][0];
    let id = update["id"].as_i64().expect("id");
    // The per-state counts and the Mac's own state, as the API has them.
    let state = update["devices"][0]["state"].as_str().expect("state");
    let page = c.get("/os-updates").await.expect("list");
    assert!(page.body.contains(&format!("1 {state}")), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("href=\"/devices/{}\"", mac.mac.udid))
    );
    // Fleet has its update: the group page shows it, and the form no longer offers Fleet.
    let group = c.get("/groups/Fleet").await.expect("group");
    assert!(group.body.contains("macOS 15.2"), "{}", group.body);
    assert!(
        !page.body.contains("<option value=\"Fleet\""),
        "{}",
        page.body
    );

    let page = c
        .post_form(&format!("/os-updates/{id}/delete"), &[("csrf", &csrf)])
        .await
        .expect("delete");
    assert!(
        page.body.contains(&format!("OS update {id}")),
        "{}",
        page.body
    );
    let listed = srv.api_ok(Method::GET, "/api/v1/os-updates", None).await;
    assert_eq!(listed["os_updates"], json!([]));
    let missing = c
        .post_form("/os-updates/999999/delete", &[("csrf", &csrf)])
        .await
        .expect("delete");
    assert_eq!(missing.status, 404);
    srv.stop().await;
}

/// A local image host: `/image.bin`, a few MiB served with its length. Its base URL and the
/// file.
async fn image_host() -> (String, Vec<u8>) {
    use axum::response::IntoResponse;
    let file: Vec<u8> = (0..3 * 1024 * 1024 + 77u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let served = file.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/image.bin",
        axum::routing::get(move || {
            let body = served.clone();
            async move { ([("content-type", "application/octet-stream")], body).into_response() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), file)
}

fn hex_sha256(data: &[u8]) -> String {
    openssl::sha::sha256(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The polling URL a verify section carries, while it runs.
fn poll_url(body: &str) -> Option<String> {
    let at = body.find("hx-get=\"")? + "hx-get=\"".len();
    let rest = &body[at..];
    Some(rest[..rest.find('"')?].to_string())
}

async fn a_golden_image_is_created_assigned_verified_and_deleted(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (host, file) = image_host().await;
    srv.group_with("Studio", &[]).await;
    let (c, csrf) = signed_in(&srv, &srv.token).await;
    let url = format!("{host}/image.bin");
    let good = hex_sha256(&file);

    // A bad checksum: the service's message beside that field.
    let fields = |sha: &str| {
        vec![
            ("name", "Dev VM".to_string()),
            ("description", "needs VPN".to_string()),
            ("apple_silicon_url", url.clone()),
            ("apple_silicon_sha256", sha.to_string()),
            ("intel_url", String::new()),
            ("intel_sha256", String::new()),
        ]
    };
    let send = |path: &'static str, f: Vec<(&'static str, String)>| {
        let c = &c;
        let csrf = csrf.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
            all.extend(f.iter().map(|(k, v)| (*k, v.as_str())));
            c.post_form(path, &all).await.expect("post")
        }
    };
    let page = send("/golden-images", fields("abc")).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body
            .contains("id=\"apple_silicon_sha256-error\" role=\"alert\">apple_silicon.sha256:"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("value=\"needs VPN\""),
        "the form is given back"
    );

    let page = send("/golden-images", fields(&good)).await;
    assert_eq!(page.status, 201, "{}", page.body);
    assert!(
        page.body.contains("Golden image Dev VM created."),
        "{}",
        page.body
    );
    let base = "/golden-images/Dev%20VM";
    let page = c
        .post_form(
            &format!("{base}/groups"),
            &[("csrf", &csrf), ("group", "Studio")],
        )
        .await
        .expect("assign");
    assert!(
        page.body.contains("Dev VM assigned to Studio"),
        "{}",
        page.body
    );
    let api = srv
        .api_ok(Method::GET, "/api/v1/golden-images/Dev%20VM", None)
        .await;
    assert_eq!(api["groups"], json!(["Studio"]));
    // A group holds one image: a second image for Studio is refused, the reason beside the
    // group field.
    srv.api_ok(
        Method::POST,
        "/api/v1/golden-images",
        Some(json!({"name": "Other", "check_urls": false,
                    "intel": {"url": url, "sha256": good}})),
    )
    .await;
    let page = c
        .post_form(
            "/golden-images/Other/groups",
            &[("csrf", &csrf), ("group", "Studio")],
        )
        .await
        .expect("assign");
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(
        page.body
            .contains("id=\"group-error\" role=\"alert\">group Studio holds golden image Dev VM"),
        "{}",
        page.body
    );
    let group = c.get("/groups/Studio").await.expect("group");
    assert!(
        group.body.contains(&format!("href=\"{base}\"")),
        "{}",
        group.body
    );

    // Verify: started at once (202), then polled until the download is hashed.
    let started = c
        .post_htmx(&format!("{base}/verify"), &csrf, &[])
        .await
        .expect("verify");
    assert_eq!(started.status, 202, "{}", started.body);
    let poll = poll_url(&started.body).expect("a polling section");
    assert!(poll.starts_with(&format!("{base}/verify/")), "{poll}");
    let mut last = String::new();
    for _ in 0..150 {
        let p = c.get(&poll).await.expect("poll");
        assert_eq!(p.status, 200, "{}", p.body);
        last = p.body;
        if poll_url(&last).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        last.contains("Every image of Dev VM matches its SHA-256."),
        "{last}"
    );
    assert!(last.contains("SHA-256 matches (3.0 MiB"), "{last}");
    let audit = srv.api_ok(Method::GET, "/api/v1/audit", None).await;
    assert!(audit.to_string().contains("golden_image.verify"));
    assert_eq!(
        c.get(&format!("{base}/verify/nope"))
            .await
            .expect("poll")
            .status,
        404
    );

    // Edit: a wrong checksum now, and the verify says so.
    let mut f = fields(&"0".repeat(64));
    f.retain(|(k, _)| *k != "name");
    let page = send("/golden-images/Dev%20VM", f).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Golden image Dev VM saved."),
        "{}",
        page.body
    );
    let started = c
        .post_htmx(&format!("{base}/verify"), &csrf, &[])
        .await
        .expect("verify");
    let poll = poll_url(&started.body).expect("polling");
    for _ in 0..150 {
        last = c.get(&poll).await.expect("poll").body;
        if poll_url(&last).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.contains("Dev VM does not verify"), "{last}");
    assert!(last.contains(&format!("got {good}")), "{last}");

    // A viewer may look, not verify.
    let token = viewer_token(&srv).await;
    let (v, vcsrf) = signed_in(&srv, &token).await;
    let page = v.get(base).await.expect("page");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("verify-button"), "{}", page.body);
    assert_eq!(
        v.post_htmx(&format!("{base}/verify"), &vcsrf, &[])
            .await
            .expect("verify")
            .status,
        403
    );

    // Unassigned from Studio, then deleting needs the confirmation.
    let page = c
        .post_form(
            &format!("{base}/groups/remove"),
            &[("csrf", &csrf), ("group", "Studio")],
        )
        .await
        .expect("unassign");
    assert!(
        page.body.contains("Dev VM unassigned from Studio."),
        "{}",
        page.body
    );
    let api = srv
        .api_ok(Method::GET, "/api/v1/golden-images/Dev%20VM", None)
        .await;
    assert_eq!(api["groups"], json!([]));
    let page = c
        .post_form(&format!("{base}/delete"), &[("csrf", &csrf)])
        .await
        .expect("delete");
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("irreversible"), "{}", page.body);
    let page = c
        .post_form(
            &format!("{base}/delete"),
            &[("csrf", &csrf), ("confirm", "on")],
        )
        .await
        .expect("delete");
    assert!(
        page.body.contains("Golden image Dev VM deleted."),
        "{}",
        page.body
    );
    let (status, _) = srv
        .api(Method::GET, "/api/v1/golden-images/Dev%20VM", None)
        .await;
    assert_eq!(status, 404);
    srv.stop().await;
}

async fn a_profile_is_uploaded_assigned_and_seen_installed_on_the_mac(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    srv.group_with("Design", &[&mac.mac.serial]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dock.mobileconfig");
    std::fs::write(&file, dock("com.acme.dock", "D-1")).expect("write");

    let b = Browser::start(&srv.admin_url).await.expect("browser");
    b.sign_in(&srv.token).await.expect("sign in");
    b.goto("/profiles").await.expect("goto");
    b.attach("#mobileconfig", &file).await.expect("attach");
    b.click("#upload button[type=submit]")
        .await
        .expect("upload");
    // htmx sends the browser to the new profile's page.
    b.wait_text("main h1", "Profile Dock com.acme.dock")
        .await
        .expect("profile page");
    assert_eq!(b.path().await.expect("path"), "/profiles/com.acme.dock");
    b.select("#group", "Design").await.expect("select");
    b.click("#assign button[type=submit]")
        .await
        .expect("assign");
    b.wait_text("p.notice", "Assigned to Design: 1 Mac to install it.")
        .await
        .expect("assigned");
    b.wait_text("#device-states", "pending")
        .await
        .expect("pending");
    assert!(
        b.has("#device-status[hx-get]").await,
        "it polls while under way"
    );

    // The Mac checks in, installs the profile and lists it: the page turns installed by
    // itself (htmx polls the section while something is under way).
    assert_eq!(mac.converge().await, ["InstallProfile", "ProfileList"]);
    assert_eq!(mac.installed(Channel::Device)["com.acme.dock"].uuid, "D-1");
    b.wait_text("#device-states .state", "installed")
        .await
        .expect("installed");
    b.wait_text("#device-status", "1 installed")
        .await
        .expect("counts");
    let row = b
        .text(&format!(
            "#device-states tr[data-udid=\"{}\"]",
            mac.mac.udid
        ))
        .await
        .expect("row");
    assert!(row.contains("device") && row.contains("installed"), "{row}");
    b.screenshot("profile").await.expect("screenshot");

    b.goto("/profiles").await.expect("goto");
    b.wait_text("#profiles", "1 installed")
        .await
        .expect("catalog");
    b.screenshot("profiles").await.expect("screenshot");
    // The group page lists the profile and the member, linked to its device.
    b.goto("/groups/Design").await.expect("goto");
    b.wait_text("#group-profiles", "Dock com.acme.dock")
        .await
        .expect("group profiles");
    let link = b
        .wait_for("#members th a")
        .await
        .expect("member link")
        .attr("href")
        .await
        .expect("href");
    assert_eq!(link, Some(format!("/devices/{}", mac.mac.udid)));
    b.screenshot("group").await.expect("screenshot");
    // A second group, smart, from the list page.
    b.goto("/groups").await.expect("goto");
    b.fill("#name", "Sequoia").await.expect("fill");
    b.fill("#filter", "os_version >= 15").await.expect("fill");
    b.click("#create-group button[type=submit]")
        .await
        .expect("create");
    b.wait_text("main h1", "Group Sequoia")
        .await
        .expect("created");
    b.goto("/groups").await.expect("goto");
    b.wait_text("#groups", "Sequoia").await.expect("listed");
    b.screenshot("groups").await.expect("screenshot");
    b.close().await.expect("close");
    srv.stop().await;
}

async fn golden_images_and_os_updates_in_a_browser(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (host, file) = image_host().await;
    let mac = ManagedMac::new(srv.mac());
    mac.enroll().await;
    srv.group_with("Engineering", &[&mac.mac.udid]).await;
    srv.group_with("Studio", &[]).await;
    let b = Browser::start(&srv.admin_url).await.expect("browser");
    b.sign_in(&srv.token).await.expect("sign in");

    // A golden image, created, assigned and verified with its progress shown.
    b.goto("/golden-images").await.expect("goto");
    b.click("#create-image-details summary")
        .await
        .expect("open the form");
    b.fill("#name", "Dev VM").await.expect("fill");
    b.fill("#description", "macOS 15 with Xcode; needs VPN")
        .await
        .expect("fill");
    b.fill("#apple_silicon_url", &format!("{host}/image.bin"))
        .await
        .expect("fill");
    b.fill("#apple_silicon_sha256", &hex_sha256(&file))
        .await
        .expect("fill");
    b.click("#check_urls").await.expect("no HEAD check");
    b.click("#create-image button[type=submit]")
        .await
        .expect("create");
    b.wait_text("p.notice", "Golden image Dev VM created.")
        .await
        .expect("created");
    b.select("#group", "Engineering").await.expect("select");
    b.click("#assign button[type=submit]")
        .await
        .expect("assign");
    b.wait_text("#image-groups", "Engineering")
        .await
        .expect("assigned");
    b.click("#verify-button").await.expect("verify");
    b.wait_text("#verify-outcome", "matches its SHA-256")
        .await
        .expect("verified");
    b.goto("/golden-images").await.expect("goto");
    b.wait_text("#golden-images", "Engineering")
        .await
        .expect("listed");
    b.screenshot("golden-images").await.expect("screenshot");

    // An OS update: a version macOS does not have is refused beside its field.
    b.goto("/os-updates").await.expect("goto");
    b.select("#group", "Engineering").await.expect("select");
    b.fill("#target_os_version", "15.x").await.expect("fill");
    b.fill("#target_build_version", "24C101")
        .await
        .expect("fill");
    let deadline = b.wait_for("#deadline").await.expect("deadline");
    // `datetime-local` takes typed digits field by field; set it as the form would send it.
    b.client
        .execute(
            "arguments[0].value = arguments[1];",
            vec![
                serde_json::to_value(&deadline).expect("element"),
                json!(format!("{}:00", local_in(10))),
            ],
        )
        .await
        .expect("set deadline");
    b.click("#enforce button[type=submit]")
        .await
        .expect("enforce");
    b.wait_text("#target_os_version-error", "is not a macOS version")
        .await
        .expect("refused");
    assert_eq!(
        b.wait_for("#target_os_version")
            .await
            .expect("field")
            .attr("aria-invalid")
            .await
            .expect("attr")
            .as_deref(),
        Some("true")
    );
    b.fill("#target_os_version", "15.2").await.expect("fill");
    b.click("#enforce button[type=submit]")
        .await
        .expect("enforce");
    b.wait_text("p.notice", "macOS 15.2 enforced on Engineering")
        .await
        .expect("enforced");
    b.wait_text(".os-update", "macOS 15.2 (24C101) on Engineering")
        .await
        .expect("listed");
    b.wait_text(".os-update .counts", "1")
        .await
        .expect("counts");
    b.screenshot("os-updates").await.expect("screenshot");
    let v: Value = srv.api_ok(Method::GET, "/api/v1/os-updates", None).await;
    assert_eq!(v["os_updates"][0]["target_build_version"], "24C101");
    b.close().await.expect("close");
    srv.stop().await;
}
