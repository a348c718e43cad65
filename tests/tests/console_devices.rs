//! The console's Devices pages (issue 18), on SQLite and PostgreSQL, with simulated Macs that
//! enroll and answer inventory (`--inventory true`), so the columns hold what Macs reported:
//! the list searched with the filter language (a plain serial too), paged, updated by htmx
//! and exported as the API's CSV; a bad expression refused beside the field; one Mac's page;
//! its actions through the services the API calls (push, a command, lock with its PIN shown
//! once, a wipe refused for a wrong serial and one canceled, the audited reveals); a viewer
//! shown no action and refused one; the upkeep actions (inventory now, FileVault rotation,
//! Recovery Lock set and clear, delete) and who may use them. The browser scenario finds, opens, locks and reveals
//! like an admin would.

use reqwest::Method;
use russet_tests::browser::Browser;
use russet_tests::console_http::{ConsoleClient, Page};
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    the_list_searches_pages_and_exports,
    a_bad_filter_is_refused_beside_the_search,
    a_device_page_and_its_actions_call_the_services,
    a_viewer_sees_no_action_and_is_refused_one,
    the_upkeep_actions_call_the_services,
);

russet_tests::in_browser_on_both_backends!(an_admin_finds_locks_and_reveals_a_mac);

/// A server that collects inventory, and Macs that enrolled and answered it.
async fn fleet(backend: Backend, names: &[&str]) -> (TestServer, Vec<ManagedMac>) {
    let srv = TestServer::start_with(backend, &["--inventory", "true"]).await;
    let mut macs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut mac = ManagedMac::new(srv.mac());
        mac.device_name = name.to_string();
        mac.os_version = format!("15.{i}");
        mac.filevault = i % 2 == 0;
        mac.enroll().await;
        mac.converge().await;
        macs.push(mac);
    }
    (srv, macs)
}

async fn signed_in(srv: &TestServer, token: &str) -> ConsoleClient {
    let mut c = ConsoleClient::new(&srv.admin_url);
    let page = c.sign_in(token).await.expect("sign in");
    assert_eq!(page.status, 303, "{}", page.body);
    c
}

/// `name=value`, URL-encoded.
fn param(name: &str, value: &str) -> String {
    reqwest::Url::parse_with_params("http://console/", [(name, value)])
        .expect("url")
        .query()
        .unwrap_or_default()
        .to_string()
}

fn q(expr: &str) -> String {
    param("q", expr)
}

/// The device rows of a list page (one `<tr>` per device in the body).
fn rows(page: &Page) -> usize {
    page.body
        .split("<tbody>")
        .nth(1)
        .map_or(0, |b| b.matches("<tr>").count())
}

async fn htmx_get(c: &ConsoleClient, path: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", c.base))
        .header("cookie", c.cookie.clone().expect("signed in"))
        .header("hx-request", "true")
        .header("hx-target", "device-results")
        .send()
        .await
        .expect("htmx get");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

async fn the_list_searches_pages_and_exports(backend: Backend) {
    let (srv, macs) = fleet(backend, &["Ada's MacBook", "Grace's iMac", "Linus's Mini"]).await;
    srv.group_with("Staff", &[&macs[1].mac.udid]).await;
    // A smart group too: the column reads both kinds in bulk.
    srv.api_ok(
        Method::POST,
        "/api/v1/groups",
        Some(json!({"name": "Encrypted", "filter": "filevault = true"})),
    )
    .await;
    let c = signed_in(&srv, &srv.token).await;

    let all = c.get("/devices").await.expect("list");
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(rows(&all), 3);
    for m in &macs {
        assert!(all.body.contains(&m.mac.serial), "{}", all.body);
        assert!(
            all.body
                .contains(&format!("href=\"/devices/{}\"", m.mac.udid))
        );
    }
    // The columns hold what the Macs reported.
    for text in [
        "Grace&#39;s iMac",
        "macOS 15.1 (24B83)",
        "Mac14,2",
        ">On<",
        ">Off<",
        "Staff",
        "just now",
    ] {
        assert!(all.body.contains(text), "{text} missing from {}", all.body);
    }

    let row_of = |page: &Page, serial: &str| -> String {
        let at = page.body.find(serial).expect("the row");
        let end = page.body[at..].find("</tr>").expect("row end");
        page.body[at..at + end].to_string()
    };
    assert!(row_of(&all, &macs[0].mac.serial).contains("<td>Encrypted</td>"));
    assert!(row_of(&all, &macs[1].mac.serial).contains("<td>Staff</td>"));
    assert!(row_of(&all, &macs[2].mac.serial).contains("<td>Encrypted</td>"));

    // The filter language, and a plain serial number.
    let one = c
        .get(&format!(
            "/devices?{}",
            q(&format!("serial = {}", macs[1].mac.serial))
        ))
        .await
        .expect("search");
    assert_eq!((one.status, rows(&one)), (200, 1), "{}", one.body);
    assert!(one.body.contains(&macs[1].mac.serial));
    let plain = c
        .get(&format!("/devices?{}", q(&macs[2].mac.serial)))
        .await
        .expect("plain serial");
    assert_eq!(rows(&plain), 1);
    assert!(plain.body.contains("Linus&#39;s Mini"), "{}", plain.body);
    let by_udid = c
        .get(&format!("/devices?{}", q(&macs[0].mac.udid)))
        .await
        .expect("plain UDID");
    assert_eq!(rows(&by_udid), 1);
    let old = c
        .get(&format!(
            "/devices?{}",
            q("os_version < 15.2 and group = Staff")
        ))
        .await
        .expect("search");
    assert_eq!(rows(&old), 1, "{}", old.body);
    assert!(old.body.contains(&macs[1].mac.serial));
    let none = c
        .get(&format!("/devices?{}", q("C02NOSUCHMAC")))
        .await
        .expect("search");
    assert_eq!((none.status, rows(&none)), (200, 0));
    assert!(none.body.contains("No device matches."));

    // htmx asks for the results only, the table it swaps in.
    let (status, fragment) = htmx_get(&c, &format!("/devices?{}", q("filevault = true"))).await;
    assert_eq!(status, 200);
    assert!(
        fragment.starts_with("<div id=\"device-results\""),
        "{fragment}"
    );
    assert!(!fragment.contains("<html"), "a fragment, not a page");
    assert_eq!(fragment.matches("<tr>").count(), 1 + 2, "header and 2 Macs");

    // Pages: two a page, next and previous, each device once.
    let mut seen = Vec::new();
    let first = c.get("/devices?limit=2").await.expect("page 1");
    assert_eq!(rows(&first), 2);
    assert!(!first.body.contains("rel=\"prev\""));
    let next = link(&first, "next").expect("a next page");
    let second = c.get(&next).await.expect("page 2");
    assert_eq!(rows(&second), 1, "{}", second.body);
    assert!(link(&second, "next").is_none());
    let back = c
        .get(&link(&second, "prev").expect("a previous page"))
        .await
        .expect("back");
    assert_eq!(rows(&back), 2);
    for page in [&first, &second] {
        for m in &macs {
            if page.body.contains(&m.mac.serial) {
                seen.push(m.mac.serial.clone());
            }
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "every Mac on one page or the other");
    for m in &macs {
        assert_eq!(
            back.body.contains(&m.mac.serial),
            first.body.contains(&m.mac.serial),
            "previous is page 1 again"
        );
    }

    // The export is the API's report of the same search, byte for byte.
    let expr = "os_version >= 15.1";
    let csv = c
        .get(&format!("/devices/export.csv?{}", q(expr)))
        .await
        .expect("export");
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    let (_, api) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices?format=csv&{}", param("filter", expr)),
            None,
        )
        .await;
    assert_eq!(Value::String(csv.body.clone()), api);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.body);
    assert!(lines[0].starts_with("udid,serial_number,"), "{}", lines[0]);
    assert!(csv.body.contains(&macs[1].mac.serial) && csv.body.contains(&macs[2].mac.serial));
    assert!(!csv.body.contains(&macs[0].mac.serial));
    srv.stop().await;
}

/// The href of the pager's `rel` link, unescaped.
fn link(page: &Page, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\" href=\"");
    let at = page.body.find(&marker)? + marker.len();
    let rest = &page.body[at..];
    Some(
        rest[..rest.find('"')?]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

async fn a_bad_filter_is_refused_beside_the_search(backend: Backend) {
    let (srv, _macs) = fleet(backend, &["Ada's MacBook"]).await;
    let c = signed_in(&srv, &srv.token).await;
    let expr = "os_version <";
    let (status, api) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices?{}", param("filter", expr)),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let message = api["error"]["message"]
        .as_str()
        .expect("the parser's message")
        .to_string();

    let page = c.get(&format!("/devices?{}", q(expr))).await.expect("list");
    assert_eq!(page.status, 400, "{}", page.body);
    let escaped = message.replace('\'', "&#39;").replace('"', "&#34;");
    assert!(
        page.body.contains(&escaped) || page.body.contains(&message),
        "{message} not in {}",
        page.body
    );
    assert!(page.body.contains("id=\"q-error\" role=\"alert\""));
    assert!(page.body.contains("aria-invalid=\"true\""));
    assert!(
        page.body.contains("value=\"os_version &#60;\""),
        "the search is kept: {}",
        page.body
    );
    // htmx is answered 2xx (it swaps nothing else) with the message in the fragment.
    let (status, fragment) = htmx_get(&c, &format!("/devices?{}", q(expr))).await;
    assert_eq!(status, 200);
    assert!(fragment.contains("q-error"), "{fragment}");
    // A hand-edited URL is read leniently: the last `q` wins, unknown parameters are ignored,
    // a bad limit is the default.
    let odd = c
        .get("/devices?q=nonsense%20%3D&q=enrolled%20%3D%20true&limit=x&zzz=1")
        .await
        .expect("list");
    assert_eq!((odd.status, rows(&odd)), (200, 1), "{}", odd.body);
    // The export refuses it the same way.
    let csv = c
        .get(&format!("/devices/export.csv?{}", q(expr)))
        .await
        .expect("export");
    assert_eq!(csv.status, 400);
    srv.stop().await;
}

/// Commands the API lists for a device: (request type, status).
async fn commands(srv: &TestServer, udid: &str) -> Vec<(String, String)> {
    let v = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{udid}/commands"),
            None,
        )
        .await;
    v["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| {
            (
                c["request_type"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn audit_actions(srv: &TestServer) -> Vec<Value> {
    srv.api_ok(Method::GET, "/api/v1/audit", None).await["entries"]
        .as_array()
        .expect("entries")
        .clone()
}

/// The first `.secret` on a page.
fn secret(page: &Page) -> Option<String> {
    let marker = "<span class=\"secret\">";
    let at = page.body.find(marker)? + marker.len();
    let rest = &page.body[at..];
    Some(rest[..rest.find('<')?].to_string())
}

async fn a_device_page_and_its_actions_call_the_services(backend: Backend) {
    let (srv, mut macs) = fleet(backend, &["Ada's MacBook"]).await;
    let mac = &mut macs[0];
    let udid = mac.mac.udid.clone();
    let serial = mac.mac.serial.clone();
    srv.group_with("Staff", &[&serial]).await;
    let c = signed_in(&srv, &srv.token).await;
    let csrf = c.csrf().await.expect("csrf");
    let path = format!("/devices/{udid}");

    let page = c.get(&path).await.expect("device");
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "<h1>Ada&#39;s MacBook</h1>",
        serial.as_str(),
        "Staff",
        "DeviceInformation",
        "SecurityInfo",
        "Acknowledged",
        "Push token",
        "Known",
        "FileVault on",
        "PIN required for lock",
        "Capacity gb",
        "action=\"/devices/",
        "Lock this Mac",
        "Wipe this Mac",
        "Reveal unlock PIN",
    ] {
        assert!(page.body.contains(text), "{text} missing from the page");
    }
    // A serial number opens the same Mac; an unknown name is a 404 page.
    let by_serial = c
        .get(&format!("/devices/{serial}"))
        .await
        .expect("by serial");
    assert_eq!(by_serial.status, 200);
    assert!(by_serial.body.contains(&udid));
    assert_eq!(c.get("/devices/NOPE").await.expect("404").status, 404);

    // A command, as the API's command endpoint queues it; one the page does not offer is
    // refused beside the field, nothing queued.
    let sent = c
        .post_form(
            &format!("{path}/commands"),
            &[("csrf", &csrf), ("request_type", "CertificateList")],
        )
        .await
        .expect("command");
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(
        sent.body.contains("CertificateList queued"),
        "{}",
        sent.body
    );
    assert!(
        commands(&srv, &udid)
            .await
            .contains(&("CertificateList".into(), "Pending".into()))
    );
    let odd = c
        .post_form(
            &format!("{path}/commands"),
            &[("csrf", &csrf), ("request_type", "EraseDevice")],
        )
        .await
        .expect("command");
    assert_eq!(odd.status, 400);
    assert!(odd.body.contains("id=\"command-error\""), "{}", odd.body);
    assert!(
        !commands(&srv, &udid)
            .await
            .iter()
            .any(|c| c.0 == "EraseDevice")
    );
    // Push now: no push certificate here, so the service's refusal is shown.
    let pushed = c
        .post_form(&format!("{path}/push"), &[("csrf", &csrf)])
        .await
        .expect("push");
    assert!(pushed.status >= 400, "{}", pushed.status);
    assert!(pushed.body.contains("role=\"alert\""));

    // Lock: a bad PIN is the service's refusal beside the field; then the PIN is shown once.
    let bad = c
        .post_form(&format!("{path}/lock"), &[("csrf", &csrf), ("pin", "12ab")])
        .await
        .expect("lock");
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("pin must be exactly 6 digits"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("aria-describedby=\"lock-error\""));
    let locked = c
        .post_form(
            &format!("{path}/lock"),
            &[("csrf", &csrf), ("message", "Return to IT"), ("pin", "")],
        )
        .await
        .expect("lock");
    assert_eq!(locked.status, 200, "{}", locked.body);
    let pin = secret(&locked).expect("the PIN on the page");
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    assert!(locked.body.contains("Shown once"));
    assert_eq!(
        locked
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "a page with a secret is never cached"
    );
    // Shown once: the page itself never shows it again.
    assert!(!c.get(&path).await.expect("device").body.contains(&pin));
    let (_, rt, cmd) = mac.mac.idle().await.command().expect("the lock");
    assert_eq!(rt, "DeviceLock");
    assert_eq!(
        cmd.get("PIN").and_then(|v| v.as_string()),
        Some(pin.as_str())
    );

    // A reveal needs a reason (nothing opened, nothing audited without one).
    let before = audit_actions(&srv).await.len();
    let no_reason = c
        .post_form(
            &format!("{path}/unlock-pins"),
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await
        .expect("reveal");
    assert_eq!(no_reason.status, 400);
    assert!(
        no_reason.body.contains("give a reason"),
        "{}",
        no_reason.body
    );
    assert!(no_reason.body.contains("id=\"pin-reason-error\""));
    assert!(!no_reason.body.contains(&pin));
    assert_eq!(audit_actions(&srv).await.len(), before);
    let revealed = c
        .post_form(
            &format!("{path}/unlock-pins"),
            &[("csrf", &csrf), ("reason", "user at the desk")],
        )
        .await
        .expect("reveal");
    assert_eq!(revealed.status, 200);
    assert_eq!(secret(&revealed).as_deref(), Some(pin.as_str()));
    let fv = c
        .post_form(
            &format!("{path}/filevault-keys"),
            &[("csrf", &csrf), ("reason", "forgot password")],
        )
        .await
        .expect("reveal key");
    assert_eq!(fv.status, 200, "{}", fv.body);
    assert!(
        fv.body
            .contains("No FileVault personal recovery key is escrowed")
    );
    let rl = c
        .post_form(
            &format!("{path}/recovery-lock-passwords"),
            &[("csrf", &csrf), ("reason", "recovery")],
        )
        .await
        .expect("reveal password");
    assert_eq!(rl.status, 200, "{}", rl.body);
    assert!(rl.body.contains("No Recovery Lock password is escrowed"));
    let audit = audit_actions(&srv).await;
    for (action, reason) in [
        ("pin.reveal", "user at the desk"),
        ("filevault.key.reveal", "forgot password"),
        ("recovery_lock.reveal", "recovery"),
    ] {
        let e = audit
            .iter()
            .find(|e| e["action"] == action && e["detail"]["reason"] == reason)
            .unwrap_or_else(|| panic!("no {action} entry with {reason}: {audit:?}"));
        assert_eq!(e["actor"], "admin");
    }
    assert!(!serde_json::to_string(&audit).expect("json").contains(&pin));

    // Wipe: the right serial queues it with its PIN; the pending wipe can be canceled.
    let wiped = c
        .post_form(
            &format!("{path}/wipe"),
            &[("csrf", &csrf), ("confirm_serial", &serial.to_lowercase())],
        )
        .await
        .expect("wipe");
    assert_eq!(wiped.status, 200, "{}", wiped.body);
    assert!(secret(&wiped).is_some());
    assert!(wiped.body.contains("Cancel the pending wipe"));
    let canceled = c
        .post_form(&format!("{path}/wipe/cancel"), &[("csrf", &csrf)])
        .await
        .expect("cancel");
    assert_eq!(canceled.status, 200);
    assert!(canceled.body.contains("The pending wipe is canceled."));
    assert!(
        commands(&srv, &udid)
            .await
            .contains(&("EraseDevice".into(), "Canceled".into()))
    );
    srv.stop().await;
}

async fn a_viewer_sees_no_action_and_is_refused_one(backend: Backend) {
    let (srv, macs) = fleet(backend, &["Ada's MacBook"]).await;
    let udid = macs[0].mac.udid.clone();
    let created = srv.admin_token("vera", "viewer").await;
    let token = created.clone();
    let c = signed_in(&srv, &token).await;
    let page = c.get(&format!("/devices/{udid}")).await.expect("device");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Ada&#39;s MacBook"));
    for action in [
        "lock",
        "wipe",
        "wipe/cancel",
        "push",
        "commands",
        "unlock-pins",
        "filevault-keys",
        "recovery-lock-passwords",
    ] {
        let form = format!("action=\"/devices/{udid}/{action}\"");
        assert!(!page.body.contains(&form), "a viewer is shown {form}");
    }
    assert!(!page.body.contains("id=\"actions-h\""));
    let list = c.get("/devices").await.expect("list");
    assert_eq!(list.status, 200);
    let csrf = c.csrf().await.expect("csrf");
    for (action, fields) in [
        ("lock", vec![("csrf", csrf.as_str())]),
        (
            "wipe",
            vec![
                ("csrf", csrf.as_str()),
                ("confirm_serial", macs[0].mac.serial.as_str()),
            ],
        ),
        (
            "unlock-pins",
            vec![("csrf", csrf.as_str()), ("reason", "curious")],
        ),
        (
            "commands",
            vec![("csrf", csrf.as_str()), ("request_type", "RestartDevice")],
        ),
    ] {
        let refused = c
            .post_form(&format!("/devices/{udid}/{action}"), &fields)
            .await
            .expect("post");
        assert_eq!(refused.status, 403, "{action}: {}", refused.body);
    }
    let queued = commands(&srv, &udid).await;
    assert!(
        !queued
            .iter()
            .any(|c| ["DeviceLock", "EraseDevice", "RestartDevice"].contains(&c.0.as_str())),
        "{queued:?}"
    );
    assert!(
        !audit_actions(&srv)
            .await
            .iter()
            .any(|e| e["action"] == "pin.reveal")
    );
    srv.stop().await;
}

async fn an_admin_finds_locks_and_reveals_a_mac(backend: Backend) {
    let (srv, macs) = fleet(backend, &["Ada's MacBook", "Grace's iMac", "Linus's Mini"]).await;
    srv.group_with("Staff", &[&macs[0].mac.udid, &macs[1].mac.udid])
        .await;
    let mac = &macs[1].mac;
    let b = Browser::start(&srv.admin_url).await.expect("browser");
    b.sign_in(&srv.token).await.expect("sign in");
    b.goto("/devices").await.expect("devices");
    b.wait_text("#device-results", &macs[2].mac.serial)
        .await
        .expect("the list");
    b.screenshot("devices").await.expect("screenshot");

    // Typing the serial narrows the table (htmx, no submit); the URL follows the search.
    b.fill("#q", &format!("serial = {}", mac.serial))
        .await
        .expect("search");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        // htmx replaces the element: a read may catch the old one going (stale); read again.
        let t = b.text("#device-results").await.unwrap_or_default();
        if !t.contains(&macs[2].mac.serial) && t.contains(&mac.serial) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the table never narrowed: {t}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(b.path().await.expect("path").starts_with("/devices?q="));
    b.click(&format!("a[href=\"/devices/{}\"]", mac.udid))
        .await
        .expect("open");
    b.wait_text("h1", "Grace's iMac")
        .await
        .expect("device page");
    b.wait_text("#facts-h + dl", &mac.serial)
        .await
        .expect("facts");
    b.screenshot("device").await.expect("screenshot");

    // Lock: the PIN is on the answer, once.
    b.fill("#lock-message", "Return to IT")
        .await
        .expect("message");
    b.click("#lock-form button[type=submit]")
        .await
        .expect("lock");
    let pin = b.text(".secret").await.expect("the PIN");
    assert!(
        pin.len() == 6 && pin.bytes().all(|c| c.is_ascii_digit()),
        "{pin}"
    );
    b.wait_text("main", "PIN required for lock")
        .await
        .expect("PIN facts");
    b.screenshot("device-locked").await.expect("screenshot");

    // Reveal it again from the vault with a reason: the same PIN, and an audit entry.
    b.fill("#pin-reason", "ticket 4711").await.expect("reason");
    b.click("#reveal-pin-form button[type=submit]")
        .await
        .expect("reveal");
    b.wait_text("#secret-h", "Unlock PINs revealed")
        .await
        .expect("revealed");
    assert_eq!(b.text(".secret").await.expect("pin"), pin);
    let audit = srv.api_ok(Method::GET, "/api/v1/audit", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "pin.reveal" && e["detail"]["reason"] == "ticket 4711"),
        "{audit}"
    );

    // A wipe with the wrong serial: the service's message beside the field, nothing queued.
    b.fill("#confirm-serial", "C02WRONG0000")
        .await
        .expect("serial");
    b.click("#wipe-form button[type=submit]")
        .await
        .expect("wipe");
    b.wait_text("#wipe-error", "does not match this device's serial number")
        .await
        .expect("refused");
    let field = b.wait_for("#confirm-serial").await.expect("field");
    assert_eq!(
        field.attr("aria-invalid").await.expect("attr").as_deref(),
        Some("true")
    );
    let queued = commands(&srv, &mac.udid).await;
    assert!(!queued.iter().any(|c| c.0 == "EraseDevice"), "{queued:?}");
    assert!(queued.iter().any(|c| c.0 == "DeviceLock"));
    b.close().await.expect("close");
    srv.stop().await;
}

async fn the_upkeep_actions_call_the_services(backend: Backend) {
    let (srv, macs) = fleet(backend, &["Ada's MacBook"]).await;
    let udid = macs[0].mac.udid.clone();
    let created = srv.admin_token("olga", "operator").await;
    let op = signed_in(&srv, created.as_str()).await;
    let page = op.get(&format!("/devices/{udid}")).await.expect("device");
    for form in [
        "inventory/refresh",
        "filevault/rotate",
        "recovery-lock\"",
        "recovery-lock/clear",
    ] {
        assert!(
            page.body
                .contains(&format!("action=\"/devices/{udid}/{form}")),
            "an operator is shown {form}"
        );
    }
    assert!(
        !page
            .body
            .contains(&format!("action=\"/devices/{udid}/delete\"")),
        "deleting is an admin's"
    );
    let csrf = op.csrf().await.expect("csrf");
    let at = |a: &str| format!("/devices/{udid}/{a}");

    // Inventory now: the inventory commands are queued for this Mac.
    let before = commands(&srv, &udid).await.len();
    let done = op
        .post_form(&at("inventory/refresh"), &[("csrf", &csrf)])
        .await
        .expect("refresh");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Inventory asked for"));
    assert!(commands(&srv, &udid).await.len() > before);

    // No escrowed key yet: the rotation is refused with the service's reason, beside the form.
    let refused = op
        .post_form(&at("filevault/rotate"), &[("csrf", &csrf)])
        .await
        .expect("rotate");
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("id=\"upkeep-error\""));
    assert!(refused.body.contains("no escrowed personal recovery key"));

    // Recovery Lock with a typed password: escrowed (an admin's reveal shows it), never
    // shown back on the page.
    let set = op
        .post_form(
            &at("recovery-lock"),
            &[("csrf", &csrf), ("password", "correct horse battery")],
        )
        .await
        .expect("set");
    assert_eq!(set.status, 200, "{}", set.body);
    assert!(
        set.body.contains("Recovery Lock set queued"),
        "{}",
        set.body
    );
    assert!(!set.body.contains("correct horse battery"));
    let vault = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/recovery-lock-passwords?udid={udid}&reason=test"),
            None,
        )
        .await;
    assert!(
        vault.to_string().contains("correct horse battery"),
        "{vault}"
    );
    assert!(
        commands(&srv, &udid)
            .await
            .iter()
            .any(|c| c.0 == "SetRecoveryLock")
    );

    // Delete: refused to an operator; an admin must tick the box.
    let no = op
        .post_form(&at("delete"), &[("csrf", &csrf), ("confirm", "yes")])
        .await
        .expect("delete");
    assert_eq!(no.status, 403);
    let admin = signed_in(&srv, &srv.token).await;
    let admin_csrf = admin.csrf().await.expect("csrf");
    let unticked = admin
        .post_form(&at("delete"), &[("csrf", &admin_csrf)])
        .await
        .expect("delete");
    assert_eq!(unticked.status, 400);
    assert!(unticked.body.contains("tick the box"));
    let (status, _) = srv
        .api(Method::GET, &format!("/api/v1/devices/{udid}"), None)
        .await;
    assert_eq!(status, 200, "still known");
    let gone = admin
        .post_form(&at("delete"), &[("csrf", &admin_csrf), ("confirm", "yes")])
        .await
        .expect("delete");
    assert_eq!(gone.status, 303);
    assert_eq!(gone.location(), Some("/devices"));
    let (status, _) = srv
        .api(Method::GET, &format!("/api/v1/devices/{udid}"), None)
        .await;
    assert_eq!(status, 404);
    srv.stop().await;
}
