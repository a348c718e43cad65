//! The console's Enrollment page (issue 18), on SQLite and PostgreSQL: an admin makes an
//! enrollment link, shown once, that a Mac can then use (and only as often as it allows); a
//! malformed field is refused beside it with nothing made; a viewer is shown no form and
//! refused the POST.

use reqwest::Method;
use russet_tests::console_http::{ConsoleClient, Page};
use russet_tests::{Backend, TestServer};

russet_tests::on_both_backends!(an_admin_makes_a_link_a_mac_can_use, refusals);

/// The link shown on the page (`#enroll-url`), HTML entities undone.
fn shown_link(page: &Page) -> Option<String> {
    let marker = "id=\"enroll-url\">";
    let at = page.body.find(marker)? + marker.len();
    let rest = &page.body[at..];
    Some(rest[..rest.find('<')?].replace("&amp;", "&"))
}

async fn an_admin_makes_a_link_a_mac_can_use(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut c = ConsoleClient::new(&srv.admin_url);
    c.sign_in(&srv.token).await.expect("sign in");
    let csrf = c.csrf().await.expect("csrf");
    let page = c.get("/enrollment").await.expect("page");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"link-form\""));
    assert!(shown_link(&page).is_none());

    let made = c
        .post_form(
            "/enrollment",
            &[("csrf", &csrf), ("uses", "1"), ("expires", "24h")],
        )
        .await
        .expect("make");
    assert_eq!(made.status, 200, "{}", made.body);
    let url = shown_link(&made).expect("the link, shown once");
    // The server's public URL (https); this test server's device listener is plain HTTP.
    let path = url
        .find("/mdm/enroll?token=")
        .map(|at| url[at..].to_string())
        .unwrap_or_else(|| panic!("not an enrollment link: {url}"));
    let url = format!("{}{path}", srv.device_url);
    // Shown once: the page does not show it again.
    let again = c.get("/enrollment").await.expect("page");
    assert!(shown_link(&again).is_none());

    // The link works once, as it says.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let first = http.get(&url).send().await.expect("download");
    assert_eq!(first.status(), 200);
    let second = http.get(&url).send().await.expect("download");
    assert_eq!(second.status(), 403);

    let audit = srv.api_ok(Method::GET, "/api/v1/audit", None).await;
    let entry = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "enroll_link.create")
        .cloned()
        .expect("audited");
    assert_eq!(entry["actor"], "admin");
    assert!(
        !audit
            .to_string()
            .contains(url.split("token=").nth(1).unwrap_or("-"))
    );
    srv.stop().await;
}

async fn refusals(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut c = ConsoleClient::new(&srv.admin_url);
    c.sign_in(&srv.token).await.expect("sign in");
    let csrf = c.csrf().await.expect("csrf");
    for (uses, expires, field) in [
        ("0", "", "uses-error"),
        ("many", "", "uses-error"),
        ("", "soon", "expires-error"),
    ] {
        let page = c
            .post_form(
                "/enrollment",
                &[("csrf", &csrf), ("uses", uses), ("expires", expires)],
            )
            .await
            .expect("post");
        assert_eq!(page.status, 400, "{uses}/{expires}: {}", page.body);
        assert!(page.body.contains(&format!("id=\"{field}\"")), "{field}");
        assert!(shown_link(&page).is_none());
    }
    let audit = srv.api_ok(Method::GET, "/api/v1/audit", None).await;
    assert!(!audit.to_string().contains("enroll_link.create"));

    let viewer = srv.admin_token("vera", "viewer").await;
    let mut v = ConsoleClient::new(&srv.admin_url);
    v.sign_in(viewer.as_str()).await.expect("sign in");
    let page = v.get("/enrollment").await.expect("page");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("id=\"link-form\""));
    let vcsrf = v.csrf().await.expect("csrf");
    let refused = v
        .post_form("/enrollment", &[("csrf", &vcsrf), ("uses", "1")])
        .await
        .expect("post");
    assert_eq!(refused.status, 403);
    srv.stop().await;
}
