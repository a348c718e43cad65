//! The web console's front door (issue 18), on SQLite and PostgreSQL: signing in with an
//! admin token, the session cookie, signed-out access sent to the sign-in page, CSRF refusals,
//! signing out, a revoked admin's session ending at once, a viewer's hidden and refused
//! buttons, and markup a (hostile) Mac reports shown as text, never run. Browser scenarios drive a headless Chromium; the rest use plain HTTP to see the
//! redirects, cookies and refusals themselves.

use reqwest::Method;
use russet_tests::browser::Browser;
use russet_tests::console_http::ConsoleClient;
use russet_tests::{Backend, ManagedMac, TestServer};

russet_tests::on_both_backends!(
    signed_out_requests_go_to_sign_in,
    the_session_cookie_is_strict_and_the_pages_locked_down,
    a_form_without_its_csrf_token_is_refused,
    sign_out_and_revoke_end_the_session,
    a_viewer_is_refused_what_it_may_not_do,
    markup_a_mac_reports_is_shown_as_text,
);

russet_tests::in_browser_on_both_backends!(an_admin_signs_in_and_out_in_a_browser);

async fn signed_out_requests_go_to_sign_in(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = ConsoleClient::new(&srv.admin_url);
    let page = c.get("/?q=serial%3DC02X").await.expect("get");
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        Some("/signin?next=%2F%3Fq%3Dserial%253DC02X")
    );
    // A state-changing request without a session goes to sign-in too, and does nothing.
    let page = c.post_form("/signout", &[]).await.expect("post");
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/signin?next=%2F"));
    // htmx is told to load the sign-in page instead of swapping it into a fragment.
    let page = c.post_htmx("/signout", "x", &[]).await.expect("htmx");
    assert_eq!(page.status, 204);
    assert_eq!(
        page.headers
            .get("hx-redirect")
            .and_then(|v| v.to_str().ok()),
        Some("/signin?next=%2F")
    );
    // A cookie that names no session is no better.
    let mut c = ConsoleClient::new(&srv.admin_url);
    c.cookie = Some("russet_session=forged".into());
    assert_eq!(c.get("/").await.expect("get").status, 303);
    // The sign-in page keeps `next` on this console only.
    let page = c
        .get("/signin?next=https://evil.example/")
        .await
        .expect("get");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("name=\"next\" value=\"/\""),
        "{}",
        page.body
    );
    srv.stop().await;
}

async fn the_session_cookie_is_strict_and_the_pages_locked_down(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut c = ConsoleClient::new(&srv.admin_url);
    let bad = c.sign_in("russet_not-a-token").await.expect("sign in");
    assert_eq!(bad.status, 403);
    assert!(bad.body.contains("not a valid admin token"), "{}", bad.body);
    assert!(bad.headers.get("set-cookie").is_none());
    assert!(
        !bad.body.contains("russet_not-a-token"),
        "the token is echoed"
    );

    let ok = c.sign_in(&srv.token).await.expect("sign in");
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location(), Some("/"));
    let set = ok
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    for attr in [
        "russet_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain-HTTP loopback console: no Secure flag: {set}"
    );
    assert!(
        !set.contains(&srv.token),
        "the admin token is not the cookie"
    );

    let home = c.get("/").await.expect("dashboard");
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("Dashboard"));
    let csp = home
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(
        home.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    // The embedded htmx, served from the binary.
    let js = c.get("/assets/htmx.min.js").await.expect("htmx");
    assert_eq!(js.status, 200);
    assert!(js.body.contains("htmx"), "not htmx");
    assert_eq!(c.get("/assets/nope.js").await.expect("404").status, 404);

    // The sign-in is audited, with the client's address; the token is in no entry.
    let audit = srv.api_ok(Method::GET, "/api/v1/audit", None).await;
    let entry = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "console.sign_in")
        .cloned()
        .expect("a console.sign_in entry");
    assert_eq!(entry["actor"], "admin");
    assert_eq!(entry["address"], "127.0.0.1");
    assert!(!audit.to_string().contains(&srv.token));
    srv.stop().await;
}

async fn a_form_without_its_csrf_token_is_refused(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut c = ConsoleClient::new(&srv.admin_url);
    c.sign_in(&srv.token).await.expect("sign in");
    let csrf = c.csrf().await.expect("csrf");
    assert_eq!(csrf.len(), 64);

    // No token, a wrong token, another session's token: 403, and the session lives on.
    let none = c.post_form("/signout", &[]).await.expect("post");
    assert_eq!(none.status, 403, "{}", none.body);
    assert!(
        none.body
            .contains("stale or did not come from this console")
    );
    let wrong = c
        .post_form("/signout", &[("csrf", "0".repeat(64).as_str())])
        .await;
    assert_eq!(wrong.expect("post").status, 403);
    let mut other = ConsoleClient::new(&srv.admin_url);
    other.sign_in(&srv.token).await.expect("second session");
    let theirs = other.csrf().await.expect("csrf");
    assert_ne!(theirs, csrf);
    let crossed = c.post_htmx("/signout", &theirs, &[]).await.expect("post");
    assert_eq!(crossed.status, 403);
    // A request from another origin is refused even with the right token.
    let cookie = c.cookie.clone().expect("cookie");
    let foreign = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/signout", srv.admin_url))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(foreign.status().as_u16(), 403);
    assert_eq!(c.get("/").await.expect("still signed in").status, 200);

    // The right token in the form signs out.
    let out = c
        .post_form("/signout", &[("csrf", csrf.as_str())])
        .await
        .expect("post");
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), Some("/signin"));
    srv.stop().await;
}

async fn sign_out_and_revoke_end_the_session(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut c = ConsoleClient::new(&srv.admin_url);
    c.sign_in(&srv.token).await.expect("sign in");
    let csrf = c.csrf().await.expect("csrf");
    let out = c.post_htmx("/signout", &csrf, &[]).await.expect("sign out");
    assert_eq!(out.status, 303);
    let cleared = out
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie (a copy kept by an attacker, say) opens nothing now.
    assert_eq!(c.get("/").await.expect("get").status, 303);

    // An operator signs in; revoking it ends the session on its next request.
    let created = srv.admin_token("olivia", "operator").await;
    let token = created.clone();
    let mut op = ConsoleClient::new(&srv.admin_url);
    assert_eq!(op.sign_in(&token).await.expect("sign in").status, 303);
    assert_eq!(op.get("/").await.expect("get").status, 200);
    srv.api_ok(Method::DELETE, "/api/v1/admins/olivia", None)
        .await;
    assert_eq!(op.get("/").await.expect("get").status, 303);
    let audit = srv
        .api_ok(Method::GET, "/api/v1/audit", None)
        .await
        .to_string();
    assert!(audit.contains("console.sign_out"), "{audit}");
    srv.stop().await;
}

async fn a_viewer_is_refused_what_it_may_not_do(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let created = srv.admin_token("vera", "viewer").await;
    let token = created.clone();
    let mut c = ConsoleClient::new(&srv.admin_url);
    c.sign_in(&token).await.expect("sign in");
    let home = c.get("/").await.expect("dashboard");
    assert_eq!(home.status, 200);
    assert!(home.body.contains("vera") && home.body.contains("viewer"));
    // Admins is an admin's page: no link for a viewer.
    assert!(!home.body.contains("href=\"/admins\""), "{}", home.body);
    let admin_home = {
        let mut a = ConsoleClient::new(&srv.admin_url);
        a.sign_in(&srv.token).await.expect("sign in");
        a.get("/").await.expect("dashboard")
    };
    assert!(admin_home.body.contains("href=\"/admins\""));
    srv.stop().await;
}

async fn an_admin_signs_in_and_out_in_a_browser(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let b = Browser::start(&srv.admin_url).await.expect("browser");
    // Signed out, a page sends the browser to sign in, and back after.
    b.goto("/").await.expect("goto");
    b.wait_for("#token").await.expect("sign-in form");
    assert!(b.path().await.expect("path").starts_with("/signin"));
    b.screenshot("signin").await.expect("screenshot");
    // A wrong token: the reason next to the field, the field marked invalid.
    b.fill("#token", "russet_wrong").await.expect("fill");
    b.click("form button[type=submit]").await.expect("submit");
    b.wait_text("#token-error", "not a valid admin token")
        .await
        .expect("error shown");
    b.sign_in(&srv.token).await.expect("sign in");
    assert_eq!(b.path().await.expect("path"), "/");
    b.wait_text("header.top .who", "admin").await.expect("who");
    // Keyboard: the skip link is the first thing Tab reaches.
    let skip = b.wait_for("a.skip").await.expect("skip link");
    assert_eq!(
        skip.attr("href").await.expect("href").as_deref(),
        Some("#main")
    );
    // Sign out: back at the sign-in page, and the dashboard is closed again.
    b.click("form.who button").await.expect("sign out");
    b.wait_for("#token").await.expect("signed out");
    b.goto("/").await.expect("goto");
    b.wait_for("#token").await.expect("redirected");
    b.close().await.expect("close");
    srv.stop().await;
}

async fn markup_a_mac_reports_is_shown_as_text(backend: Backend) {
    // A device's name is whatever the Mac (or whoever holds its identity) says it is.
    let srv = TestServer::start_with(backend, &["--inventory", "true"]).await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let mut mac = ManagedMac::new(srv.mac());
    mac.device_name = hostile.to_string();
    mac.enroll().await;
    mac.converge().await;
    let udid = mac.mac.udid.clone();
    let mut c = ConsoleClient::new(&srv.admin_url);
    c.sign_in(&srv.token).await.expect("sign in");
    for path in ["/devices".to_string(), format!("/devices/{udid}")] {
        let page = c.get(&path).await.expect("page");
        assert_eq!(page.status, 200, "{path}");
        // Escaped as text (askama writes numeric entities).
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;&#60;img src=x"),
            "{path} does not show the name: {}",
            page.body
        );
        assert!(!page.body.contains("<script>alert(1)"), "{path} runs it");
        assert!(!page.body.contains("<img src=x"), "{path} renders it");
    }
    srv.stop().await;
}
