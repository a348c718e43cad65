//! The web console's fleet pages (issue 18), on SQLite and PostgreSQL: the dashboard's
//! counts and alerts from real Macs and a real push certificate; the push page refusing a
//! certificate for another topic with the reason beside the field; the audit page's filter;
//! the DEP page driving the DEP simulator (link, token upload, sync now with progress,
//! devices, profiles, assignment); admins created with their token shown once, that token
//! signing in, and revoked. Browser scenarios drive a headless Chromium; refusals (a viewer's
//! hidden buttons and refused POSTs, bad input) use plain HTTP.

use openssl::x509::X509;
use reqwest::Method;
use russet_apns::fake::pki::{TestCa as ApnsCa, random_topic};
use russet_tests::browser::Browser;
use russet_tests::console_http::{ConsoleClient, Page};
use russet_tests::managed_mac::Channel;
use russet_tests::{Backend, ManagedMac, SimMac, TestServer, dep};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

russet_tests::on_both_backends!(
    a_viewer_gets_no_admin_buttons_and_is_refused,
    an_admin_created_here_signs_in_with_the_token_shown_once,
    the_dep_page_links_syncs_and_assigns,
    refused_input_is_shown_beside_its_field,
);

russet_tests::in_browser_on_both_backends!(
    the_dashboard_counts_real_macs_and_warns_of_the_push_certificate,
    the_push_page_refuses_another_topic_and_says_why,
    the_dep_page_uploads_a_token_and_syncs_in_a_browser,
);

/// A signed-in console client for `token`.
async fn signed_in(srv: &TestServer, token: &str) -> ConsoleClient {
    let mut c = ConsoleClient::new(&srv.admin_url);
    assert_eq!(c.sign_in(token).await.expect("sign in").status, 303);
    c
}

/// A `multipart/form-data` body: `(name, filename, content)` per part.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "russet-test-boundary-7c1f";
    let mut body = Vec::new();
    for (name, file, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A multipart POST as htmx sends it (the CSRF token in its header).
async fn post_multipart(
    c: &ConsoleClient,
    path: &str,
    csrf: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> Page {
    let (content_type, body) = multipart(parts);
    let mut req = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}{path}", c.base))
        .header("content-type", content_type)
        .header("x-csrf-token", csrf)
        .header("hx-request", "true")
        .body(body);
    if let Some(cookie) = &c.cookie {
        req = req.header("cookie", cookie);
    }
    let resp = req.send().await.expect("post");
    Page {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("body"),
    }
}

/// The text between `start` and the next `end` after it.
fn between<'a>(body: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let at = body.find(start)? + start.len();
    let rest = &body[at..];
    Some(&rest[..rest.find(end)?])
}

async fn a_viewer_gets_no_admin_buttons_and_is_refused(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let viewer = signed_in(&srv, &srv.admin_token("vera", "viewer").await).await;
    let csrf = viewer.csrf().await.expect("csrf");
    let admin = signed_in(&srv, &srv.token).await;

    // What an admin sees and a viewer does not, page by page.
    for (path, admin_only) in [
        (
            "/dep",
            &[
                "action=\"/dep/links\"",
                "action=\"/dep/sync\"",
                "action=\"/dep/profiles\"",
                "action=\"/dep/assign\"",
            ][..],
        ),
        (
            "/push",
            &["action=\"/push/csr\"", "hx-post=\"/push/certificate\""][..],
        ),
    ] {
        let theirs = viewer.get(path).await.expect("viewer page");
        let ours = admin.get(path).await.expect("admin page");
        assert_eq!((theirs.status, ours.status), (200, 200), "{path}");
        for form in admin_only {
            assert!(ours.body.contains(form), "{path}: admin lacks {form}");
            assert!(!theirs.body.contains(form), "{path}: viewer sees {form}");
        }
    }
    // The audit log and the dashboard are for every role.
    assert_eq!(viewer.get("/audit").await.expect("audit").status, 200);
    assert_eq!(viewer.get("/").await.expect("dashboard").status, 200);

    // Admin-only pages and actions: 403 even with a good CSRF token, and nothing done.
    assert_eq!(viewer.get("/admins").await.expect("admins").status, 403);
    for (path, fields) in [
        ("/admins", &[("name", "mallory"), ("role", "admin")][..]),
        ("/admins/admin/revoke", &[][..]),
        ("/dep/links", &[("name", "abm")][..]),
        ("/dep/sync", &[][..]),
        ("/dep/profiles", &[("profile_name", "x")][..]),
        ("/dep/assign", &[("profile", "P"), ("serials", "C02")][..]),
        ("/push/csr", &[][..]),
    ] {
        let page = viewer.post_htmx(path, &csrf, fields).await.expect("post");
        assert_eq!(page.status, 403, "{path}: {}", page.body);
    }
    let page = post_multipart(
        &viewer,
        "/push/certificate",
        &csrf,
        &[("certificate", Some("c.pem"), b"x")],
    )
    .await;
    assert_eq!(page.status, 403);
    let admins = srv.api_ok(Method::GET, "/api/v1/admins", None).await;
    assert!(!admins.to_string().contains("mallory"));
    let (_, links) = srv.api(Method::GET, "/api/v1/dep/links", None).await;
    assert_eq!(links["links"], json!([]));

    // An operator may sync and assign, not create links or touch the push certificate.
    let op = signed_in(&srv, &srv.admin_token("otto", "operator").await).await;
    let dep_page = op.get("/dep").await.expect("dep");
    assert!(dep_page.body.contains("action=\"/dep/sync\""));
    assert!(dep_page.body.contains("action=\"/dep/assign\""));
    assert!(!dep_page.body.contains("action=\"/dep/links\""));
    let op_csrf = op.csrf().await.expect("csrf");
    let page = op
        .post_htmx("/dep/links", &op_csrf, &[("name", "abm")])
        .await
        .expect("post");
    assert_eq!(page.status, 403);
    srv.stop().await;
}

async fn an_admin_created_here_signs_in_with_the_token_shown_once(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = signed_in(&srv, &srv.token).await;
    let csrf = c.csrf().await.expect("csrf");
    let list = c.get("/admins").await.expect("admins");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("id=\"admin-admin\""), "{}", list.body);

    let made = c
        .post_form(
            "/admins",
            &[("csrf", &csrf), ("name", "olga"), ("role", "operator")],
        )
        .await
        .expect("create");
    assert_eq!(made.status, 201, "{}", made.body);
    let token = between(
        &made.body,
        "id=\"admin-token\" aria-label=\"The new admin token\">",
        "<",
    )
    .expect("the token on the page")
    .to_string();
    assert!(token.starts_with("russet_"), "{token}");
    assert_eq!(
        made.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "the page with the token is not cached"
    );
    // Shown once: not on the list afterwards, nor in the audit log.
    let again = c.get("/admins").await.expect("admins");
    assert!(again.body.contains("id=\"admin-olga\""));
    assert!(!again.body.contains(&token));
    let audit = c.get("/audit?actor=admin").await.expect("audit");
    assert!(audit.body.contains("admin.create"), "{}", audit.body);
    assert!(!audit.body.contains(&token));

    // The token signs in, as an operator.
    let olga = signed_in(&srv, &token).await;
    let home = olga.get("/").await.expect("dashboard");
    assert_eq!(home.status, 200);
    assert!(home.body.contains("olga") && home.body.contains("operator"));

    // Revoked from the page: its session ends at once.
    let out = c
        .post_form("/admins/olga/revoke", &[("csrf", &csrf)])
        .await
        .expect("revoke");
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.body.contains("Admin olga revoked"));
    assert_eq!(olga.get("/").await.expect("get").status, 303);
    srv.stop().await;
}

async fn refused_input_is_shown_beside_its_field(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = signed_in(&srv, &srv.token).await;
    let csrf = c.csrf().await.expect("csrf");

    // A bad admin name: the service's reason beside the field, the form filled again.
    let bad = c
        .post_form(
            "/admins",
            &[
                ("csrf", &csrf),
                ("name", "no spaces allowed"),
                ("role", "viewer"),
            ],
        )
        .await
        .expect("create");
    assert!((400..500).contains(&bad.status), "{}", bad.status);
    assert!(bad.body.contains("id=\"admin-name-error\" role=\"alert\""));
    assert!(
        bad.body
            .contains("aria-invalid=\"true\" aria-describedby=\"admin-name-error\"")
    );
    assert!(bad.body.contains("value=\"no spaces allowed\""));
    // The last admin cannot be revoked.
    let last = c
        .post_form("/admins/admin/revoke", &[("csrf", &csrf)])
        .await
        .expect("revoke");
    assert_eq!(last.status, 422, "{}", last.body);
    assert!(
        last.body
            .contains("id=\"revoke-admin-error\" role=\"alert\"")
    );
    assert!(last.body.contains("last"), "{}", last.body);

    // A bad date on the audit page.
    let page = c.get("/audit?since=yesterday").await.expect("audit");
    assert_eq!(page.status, 400);
    assert!(page.body.contains("is not a date"));
    assert!(page.body.contains("aria-describedby=\"date-error\""));

    // The push page: no file, garbage.
    let none = post_multipart(&c, "/push/certificate", &csrf, &[]).await;
    assert_eq!(none.status, 400, "{}", none.body);
    assert!(none.body.contains("id=\"cert-error\""), "{}", none.body);
    let garbage = post_multipart(
        &c,
        "/push/certificate",
        &csrf,
        &[
            ("pkcs12", Some("x.p12"), b"garbage"),
            ("password", None, b"pw"),
        ],
    )
    .await;
    assert_eq!(garbage.status, 400);
    assert!(
        garbage.body.contains("id=\"p12-error\""),
        "{}",
        garbage.body
    );
    assert!(garbage.body.contains("not a PKCS#12 file"));

    // DEP: a bad link name; a token upload without a file; assigning nothing.
    let link = c
        .post_form("/dep/links", &[("csrf", &csrf), ("name", "bad name")])
        .await
        .expect("post");
    assert!((400..500).contains(&link.status), "{}", link.status);
    assert!(link.body.contains("id=\"link-name-error\""));
    let sync = c.post_htmx("/dep/sync", &csrf, &[]).await.expect("sync");
    assert!((400..500).contains(&sync.status), "{}", sync.status);
    assert!(sync.body.contains("id=\"sync-error\""), "{}", sync.body);
    srv.stop().await;
}

/// Poll the sync-progress fragment until the run is done; its last text.
async fn sync_until_done(c: &ConsoleClient, first: &Page) -> String {
    let mut body = first.body.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(next) = between(&body, "hx-get=\"", "\"").map(str::to_owned) {
        assert!(next.starts_with("/dep/sync/"), "{next}");
        assert!(Instant::now() < deadline, "the sync never finished: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let page = c.get(&next).await.expect("progress");
        assert_eq!(page.status, 200, "{}", page.body);
        body = page.body;
    }
    body
}

async fn the_dep_page_links_syncs_and_assigns(backend: Backend) {
    let (srv, sim) = dep::setup(backend, 30).await;
    let c = signed_in(&srv, &srv.token).await;
    let csrf = c.csrf().await.expect("csrf");

    let made = c
        .post_form("/dep/links", &[("csrf", &csrf), ("name", "abm")])
        .await
        .expect("create");
    assert_eq!(made.status, 201, "{}", made.body);
    assert!(made.body.contains("href=\"/dep/links/abm/certificate\""));
    let cert = c
        .get("/dep/links/abm/certificate")
        .await
        .expect("certificate");
    assert_eq!(cert.status, 200);
    assert!(
        cert.headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|d| d.contains("attachment"))
    );
    X509::from_pem(cert.body.as_bytes()).expect("a PEM certificate");
    assert_eq!(
        srv.api_ok(Method::GET, "/api/v1/dep/links/abm/certificate", None)
            .await["certificate_pem"],
        json!(cert.body)
    );

    // An upload without the CSRF header (a form posted from elsewhere) is refused.
    let forged = post_multipart(
        &c,
        "/dep/links/abm/token",
        "",
        &[("token", Some("abm_Token.p7m"), b"{}")],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // The server token, uploaded as a file.
    let token = sim.tokens().to_json();
    let up = post_multipart(
        &c,
        "/dep/links/abm/token",
        &csrf,
        &[("token", Some("abm_Token.p7m"), token.as_bytes())],
    )
    .await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert!(
        up.body.contains("Token stored for abm: connected"),
        "{}",
        up.body
    );
    assert!(up.body.contains("expires "), "token expiry shown");

    // Sync now: the fragment polls until the pass is done.
    let started = c
        .post_htmx("/dep/sync", &csrf, &[("link", "abm")])
        .await
        .expect("sync");
    assert_eq!(started.status, 200, "{}", started.body);
    assert!(started.body.contains("hx-trigger=\"load delay"));
    let done = sync_until_done(&c, &started).await;
    assert!(done.contains("Sync finished"), "{done}");
    assert!(done.contains("abm: 30 fetched"), "{done}");
    // Without htmx, "sync now" goes to the page showing the run.
    let plain = c
        .post_form("/dep/sync", &[("csrf", &csrf), ("link", "abm")])
        .await
        .expect("sync");
    assert_eq!(plain.status, 303);
    let run_page = plain.location().expect("location").to_string();
    assert!(run_page.starts_with("/dep?run="), "{run_page}");
    let shown = c.get(&run_page).await.expect("run page");
    assert!(shown.body.contains("id=\"sync-run\""), "{}", shown.body);
    sync_until_done(&c, &shown).await;
    let page = c.get("/dep").await.expect("dep");
    let serials: Vec<String> = sim
        .devices()
        .iter()
        .map(|d| d.serial_number.clone())
        .collect();
    for s in &serials {
        assert!(page.body.contains(s.as_str()), "{s} missing");
    }
    assert!(page.body.contains("not assigned"));

    // A profile from fields, made the link's default; then assigned to two serials.
    let defined = c
        .post_form(
            "/dep/profiles",
            &[
                ("csrf", &csrf),
                ("link", "abm"),
                ("profile_name", "Corp Macs"),
                ("department", "IT"),
                ("skip_setup_items", "AppleID, Siri"),
                ("is_supervised", "on"),
                ("is_mandatory", "on"),
                ("await_device_configured", "on"),
                ("default", "on"),
            ],
        )
        .await
        .expect("profile");
    assert_eq!(defined.status, 200, "{}", defined.body);
    assert!(defined.body.contains("Profile Corp Macs defined at Apple"));
    let profiles = srv.api_ok(Method::GET, "/api/v1/dep/profiles", None).await;
    let uuid = profiles["profiles"][0]["profile_uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    assert_eq!(profiles["profiles"][0]["default"], json!(true));
    assert_eq!(
        profiles["profiles"][0]["profile"]["department"],
        json!("IT")
    );
    let two = format!("{}\n{}", serials[0], serials[1]);
    let assigned = c
        .post_form(
            "/dep/assign",
            &[("csrf", &csrf), ("profile", &uuid), ("serials", &two)],
        )
        .await
        .expect("assign");
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    assert!(
        assigned.body.contains(&format!("{}: SUCCESS", serials[0])),
        "{}",
        assigned.body
    );
    assert_eq!(
        dep::dep_device(&srv, &serials[0]).await["profile_uuid"],
        json!(uuid)
    );
    // Filter the device list by status.
    let assigned_only = c.get("/dep?status=assigned").await.expect("dep");
    assert!(assigned_only.body.contains(&serials[0]));
    assert!(!assigned_only.body.contains(&serials[5]));
    // Removed again.
    let removed = c
        .post_form(
            "/dep/remove",
            &[("csrf", &csrf), ("profile", ""), ("serials", &serials[1])],
        )
        .await
        .expect("remove");
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(removed.body.contains("Profile removed"), "{}", removed.body);
    // Refusals: a profile JSON that is not JSON, beside the field, the input kept.
    let bad = c
        .post_form(
            "/dep/profiles",
            &[("csrf", &csrf), ("link", "abm"), ("json", "{not json")],
        )
        .await
        .expect("profile");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("id=\"profile-error\""));
    assert!(bad.body.contains("{not json</textarea>"));
    // Apple refuses a new token (terms to accept): stored, Apple's refusal said, the link's
    // alert on the DEP page and on the dashboard.
    sim.inject("/account", 403, "T_C_NOT_SIGNED", 1);
    let refused = post_multipart(
        &c,
        "/dep/links/abm/token",
        &csrf,
        &[
            ("token", Some("abm_Token.p7m"), token.as_bytes()),
            ("force", None, b"on"),
        ],
    )
    .await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(
        refused.body.contains("but Apple refused it"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("T_C_NOT_SIGNED"));
    assert!(
        refused.body.contains("terms and conditions"),
        "{}",
        refused.body
    );
    let home = c.get("/").await.expect("dashboard");
    assert!(
        home.body.contains("DEP link abm: T_C_NOT_SIGNED"),
        "{}",
        home.body
    );
    // Every step is in the audit log, findable by action prefix.
    let audit = c.get("/audit?action=dep.").await.expect("audit");
    for action in [
        "dep.link.create",
        "dep.link.token",
        "dep.sync",
        "dep.profile.create",
        "dep.profile.assign",
        "dep.profile.remove",
    ] {
        assert!(audit.body.contains(action), "{action}: {}", audit.body);
    }
    srv.stop().await;
}

/// Check a Mac out (`CheckOut`, as macOS sends when the MDM profile is removed).
async fn check_out(mac: &SimMac) {
    let out = SimMac::dict(&[
        ("MessageType", plist::Value::String("CheckOut".into())),
        ("Topic", plist::Value::String(mac.topic.clone())),
        ("UDID", plist::Value::String(mac.udid.clone())),
    ]);
    assert_eq!(mac.checkin(&out).await.status, 200);
}

/// A profile the Mac refuses: one failed install.
async fn refused_profile(srv: &TestServer, mac: &mut ManagedMac) {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.acme.refused</string>
<key>PayloadUUID</key><string>R-1</string>
<key>PayloadDisplayName</key><string>Refused</string>
<key>PayloadScope</key><string>System</string>
<key>PayloadContent</key><array><dict>
  <key>PayloadType</key><string>com.apple.dock</string>
  <key>PayloadVersion</key><integer>1</integer>
  <key>PayloadIdentifier</key><string>com.acme.refused.dock</string>
  <key>PayloadUUID</key><string>R-1-P</string>
  <key>orientation</key><string>left</string>
</dict></array>
</dict></plist>"#;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"mobileconfig": b64})),
        )
        .await;
    assert!(status == 201 || status == 200, "{status} {v}");
    mac.refuse.insert("com.acme.refused".into());
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles/com.acme.refused/assignments",
            Some(json!({"devices": [mac.mac.udid]})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {v}");
    mac.converge().await;
    assert!(
        !mac.installed(Channel::Device)
            .contains_key("com.acme.refused")
    );
}

async fn import_push(srv: &TestServer, cert_pem: &[u8], key_pem: &[u8]) -> (u16, Value) {
    srv.api(
        Method::PUT,
        "/api/v1/apns/certificate",
        Some(json!({
            "certificate_pem": String::from_utf8_lossy(cert_pem),
            "key_pem": String::from_utf8_lossy(key_pem),
        })),
    )
    .await
}

async fn the_dashboard_counts_real_macs_and_warns_of_the_push_certificate(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let b = Browser::start(&srv.admin_url).await.expect("browser");
    b.sign_in(&srv.token).await.expect("sign in");
    // No Mac, no certificate: zeros, and the missing certificate is the first alert.
    b.wait_text("#count-enrolled", "0").await.expect("zero");
    b.wait_text("#alerts", "No push certificate")
        .await
        .expect("missing certificate");
    b.wait_text("#alerts", "placeholder push topic")
        .await
        .expect("placeholder topic");

    // Three Macs enroll; one checks out; one refuses a profile.
    let ca = ApnsCa::new("Fake Apple push CA").expect("ca");
    let topic = random_topic();
    let mut macs = Vec::new();
    for _ in 0..3 {
        let mac = ManagedMac::new(srv.mac());
        mac.enroll().await;
        macs.push(mac);
    }
    check_out(&macs[2].mac).await;
    refused_profile(&srv, &mut macs[0]).await;
    // A certificate for that topic that expires in 10 days.
    let cert = ca
        .issue_push_certificate_valid(&topic, -355, 365)
        .expect("certificate");
    let (status, v) = import_push(&srv, &cert.cert_pem, &cert.key_pem).await;
    assert_eq!(status, 200, "{v}");

    b.goto("/").await.expect("dashboard");
    assert_eq!(b.text("#count-enrolled").await.expect("enrolled"), "2");
    assert_eq!(b.text("#count-unenrolled").await.expect("unenrolled"), "1");
    assert_eq!(b.text("#count-stale").await.expect("stale"), "0");
    assert_eq!(b.text("#count-failed").await.expect("failed"), "1");
    let alerts = b
        .wait_text("#alerts", "The push certificate expires in")
        .await
        .expect("expiry alert");
    assert!(alerts.contains("under 14"), "{alerts}");
    assert!(
        alerts.contains("1 profile install failed on 1 Mac"),
        "{alerts}"
    );
    assert!(!alerts.contains("No push certificate"), "{alerts}");
    let push = b.text("#push-line").await.expect("push line");
    assert!(push.contains(&topic), "{push}");
    b.screenshot("dashboard").await.expect("screenshot");

    // The audit page: the import is found by its action, the sign-ins are filtered out.
    b.goto("/audit").await.expect("audit");
    b.wait_text("table.audit", "console.sign_in")
        .await
        .expect("entries");
    b.fill("#f-action", "apns.").await.expect("fill");
    b.click("form[role=search] button[type=submit]")
        .await
        .expect("filter");
    // The filtered page has loaded once its caption says so (the old page had the entry too).
    b.wait_text("table.audit caption", "filtered")
        .await
        .expect("filtered");
    let table = b
        .wait_text("table.audit", "apns.import")
        .await
        .expect("the import");
    assert!(table.contains(&topic), "{table}");
    assert!(!table.contains("console.sign_in"), "{table}");
    b.fill("#f-action", "").await.expect("fill");
    b.fill("#f-actor", "nobody").await.expect("fill");
    b.click("form[role=search] button[type=submit]")
        .await
        .expect("filter");
    b.wait_text("#audit-empty", "match these filters")
        .await
        .expect("nothing found");
    b.goto("/audit").await.expect("audit");
    b.wait_for("table.audit").await.expect("entries");
    b.screenshot("audit").await.expect("screenshot");

    // Admins: create one; its token is shown once.
    b.goto("/admins").await.expect("admins");
    b.fill("#admin-name", "nadia").await.expect("fill");
    b.select("#admin-role", "operator").await.expect("role");
    b.click("form[action=\"/admins\"] button[type=submit]")
        .await
        .expect("create");
    let token = b.wait_text("#admin-token", "russet_").await.expect("token");
    b.wait_for("#admin-nadia").await.expect("listed");
    b.screenshot("admins").await.expect("screenshot");
    b.close().await.expect("close");
    // The token works for signing in.
    let nadia = signed_in(&srv, token.trim()).await;
    assert!(nadia.get("/").await.expect("home").body.contains("nadia"));
    srv.stop().await;
}

async fn the_push_page_refuses_another_topic_and_says_why(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let ca = ApnsCa::new("Fake Apple push CA").expect("ca");
    let topic = random_topic();
    let first = ca.issue_push_certificate(&topic).expect("certificate");
    assert_eq!(
        import_push(&srv, &first.cert_pem, &first.key_pem).await.0,
        200
    );
    let other_topic = random_topic();
    let other = ca
        .issue_push_certificate(&other_topic)
        .expect("certificate");
    let dir = tempfile::tempdir().expect("tmp");
    let (cert_file, key_file) = (dir.path().join("other.pem"), dir.path().join("other.key"));
    std::fs::write(&cert_file, &other.cert_pem).expect("write");
    std::fs::write(&key_file, &other.key_pem).expect("write");

    let b = Browser::start(&srv.admin_url).await.expect("browser");
    b.sign_in(&srv.token).await.expect("sign in");
    b.goto("/push").await.expect("push");
    b.wait_text("#push-status", &topic).await.expect("status");
    b.wait_text("#topic-guard", "re-enroll")
        .await
        .expect("the guard explained");
    b.screenshot("push").await.expect("screenshot");

    // Another topic: refused, the reason beside the certificate field.
    b.attach("#cert-file", &cert_file).await.expect("attach");
    b.attach("#key-file", &key_file).await.expect("attach");
    b.click("#import-form button[type=submit]")
        .await
        .expect("import");
    let reason = b
        .wait_text("#cert-error", "would stop receiving pushes")
        .await
        .expect("refused");
    assert!(
        reason.contains(&other_topic) && reason.contains("re-enroll"),
        "{reason}"
    );
    let field = b.wait_for("#cert-file").await.expect("field");
    assert_eq!(
        field.attr("aria-invalid").await.expect("attr").as_deref(),
        Some("true")
    );
    let still = srv.api_ok(Method::GET, "/api/v1/apns", None).await;
    assert_eq!(still["certificate"]["topic"], json!(topic));

    // With the override ticked, it is imported, with the warning.
    b.attach("#cert-file", &cert_file).await.expect("attach");
    b.attach("#key-file", &key_file).await.expect("attach");
    b.click("#force-topic").await.expect("tick");
    b.click("#import-form button[type=submit]")
        .await
        .expect("import");
    b.wait_text("main .notice", "every enrolled Mac must re-enroll")
        .await
        .expect("imported with a warning");
    b.wait_text("#push-status", &other_topic)
        .await
        .expect("new topic");
    b.close().await.expect("close");
    let now = srv.api_ok(Method::GET, "/api/v1/apns", None).await;
    assert_eq!(now["certificate"]["topic"], json!(other_topic));
    srv.stop().await;
}

async fn the_dep_page_uploads_a_token_and_syncs_in_a_browser(backend: Backend) {
    let (srv, sim) = dep::setup(backend, 12).await;
    let dir = tempfile::tempdir().expect("tmp");
    let token_file = dir.path().join("abm_Token.p7m");
    std::fs::write(&token_file, sim.tokens().to_json()).expect("write");

    let b = Browser::start(&srv.admin_url).await.expect("browser");
    b.sign_in(&srv.token).await.expect("sign in");
    b.goto("/dep").await.expect("dep");
    b.fill("#link-name", "abm").await.expect("fill");
    b.click("form[action=\"/dep/links\"] button[type=submit]")
        .await
        .expect("create");
    b.wait_text("main .notice", "Link abm created")
        .await
        .expect("created");
    b.attach("#token-abm", &token_file).await.expect("attach");
    b.click("#link-abm form.token-upload button[type=submit]")
        .await
        .expect("upload");
    b.wait_text("main .notice", "Token stored for abm: connected")
        .await
        .expect("token stored");
    b.wait_text("#link-abm", "expires").await.expect("expiry");

    b.click("#sync-now").await.expect("sync");
    let done = b
        .wait_text("#sync-run", "Sync finished")
        .await
        .expect("sync done");
    assert!(done.contains("abm: 12 fetched"), "{done}");
    b.goto("/dep").await.expect("dep");
    let first = sim.devices()[0].serial_number.clone();
    b.wait_text("table.dep-devices", &first)
        .await
        .expect("device records");
    b.wait_text("#link-abm", "12 not assigned")
        .await
        .expect("counts");
    b.screenshot("dep").await.expect("screenshot");
    b.close().await.expect("close");
    srv.stop().await;
}
