//! Admin accounts and roles end to end, on SQLite and PostgreSQL: admins made through the API
//! and the CLI, each role refused where it must be (403 naming the permission), a revoke that
//! counts at once (on a second server sharing the database too), the last admin kept, failed
//! tokens rate-limited per client address, the audit log naming the admin and its address,
//! and no token stored in clear.

use clap::Parser;
use reqwest::Method;
use russet_mdm::cli::{Cli, Command};
use russet_tests::{Backend, TestServer};
use serde_json::{Value, json};
use std::net::IpAddr;

russet_tests::on_both_backends!(
    each_role_is_refused_where_it_must_be,
    a_revoked_admin_is_refused_at_once_and_the_last_admin_stays,
    repeated_bad_tokens_from_one_address_get_429,
);

/// `russet admin …` run in-process against `srv` with `token`; what it prints.
async fn cli(srv: &TestServer, token: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["russet", "admin"];
    argv.extend_from_slice(args);
    argv.extend(["--server", srv.admin_url.as_str(), "--token", token]);
    let Command::Admin(cmd) = Cli::try_parse_from(argv)?.command else {
        panic!("not an admin command");
    };
    russet_mdm::cli::admin::execute(cmd).await
}

/// Create an admin through the API as `by`; its token.
async fn create(srv: &TestServer, by: &str, name: &str, role: &str) -> String {
    let (status, v) = srv
        .api_with_token(
            Method::POST,
            "/api/v1/admins",
            Some(json!({"name": name, "role": role})),
            Some(by),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["admin"]["role"], json!(role));
    v["token"].as_str().expect("token").to_string()
}

async fn call(srv: &TestServer, token: &str, method: Method, path: &str) -> (u16, Value) {
    srv.api_with_token(method, path, Some(json!({})), Some(token))
        .await
}

/// Assert a 403 that names the permission, the roles holding it, and who was refused.
fn assert_refused(answer: (u16, Value), permission: &str, roles: &str, who: &str) {
    let (status, v) = answer;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], json!("forbidden"), "{v}");
    assert_eq!(v["error"]["permission"], json!(permission), "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains(&format!(
            "requires the {permission} permission (role {roles}); {who}"
        )),
        "{msg}"
    );
}

async fn each_role_is_refused_where_it_must_be(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let udid = mac.udid.clone();

    // The first-start token is the first admin, with the role `admin`.
    let (status, v) = call(&srv, &srv.token, Method::GET, "/api/v1/admins").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["admins"][0]["name"], json!("admin"));
    assert_eq!(v["admins"][0]["role"], json!("admin"));

    // A viewer through the API, an operator and an admin through the CLI.
    let vera = create(&srv, &srv.token, "vera", "viewer").await;
    let out = cli(&srv, &srv.token, &["create", "otto", "--role", "operator"])
        .await
        .expect("russet admin create");
    let otto = out
        .split_whitespace()
        .find(|w| w.starts_with("russet_"))
        .unwrap_or_else(|| panic!("a token in {out}"))
        .to_string();
    let out = cli(
        &srv,
        &srv.token,
        &["create", "ada", "--role", "admin", "--json"],
    )
    .await
    .expect("russet admin create --json");
    let ada = serde_json::from_str::<Value>(&out).expect("JSON")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let err = Cli::try_parse_from(["russet", "admin", "create", "x", "--role", "root"]);
    assert!(err.is_err(), "clap refuses an unknown role");

    // Viewer: reads, nothing else, no secret.
    let (status, v) = call(&srv, &vera, Method::GET, "/api/v1/devices").await;
    assert_eq!(status, 200, "{v}");
    assert!(v.to_string().contains(&udid), "{v}");
    let (status, _) = call(&srv, &vera, Method::GET, &format!("/api/v1/devices/{udid}")).await;
    assert_eq!(status, 200);
    let (status, _) = call(&srv, &vera, Method::GET, "/api/v1/audit").await;
    assert_eq!(status, 200);
    assert_refused(
        srv.api_with_token(
            Method::POST,
            &format!("/api/v1/devices/{udid}/commands"),
            Some(json!({"request_type": "DeviceInformation", "Queries": ["OSVersion"]})),
            Some(&vera),
        )
        .await,
        "commands",
        "operator or admin",
        "vera is a viewer",
    );
    assert_refused(
        call(
            &srv,
            &vera,
            Method::GET,
            &format!("/api/v1/unlock-pins?udid={udid}"),
        )
        .await,
        "pin.reveal",
        "operator or admin",
        "vera is a viewer",
    );
    assert_refused(
        call(
            &srv,
            &vera,
            Method::POST,
            &format!("/api/v1/devices/{udid}/lock"),
        )
        .await,
        "lock",
        "operator or admin",
        "vera is a viewer",
    );
    let refused = cli(&srv, &vera, &["list"])
        .await
        .expect_err("viewer lists admins");
    assert!(
        refused
            .to_string()
            .contains("requires the admins permission"),
        "{refused}"
    );

    // Operator: commands, lock and the PIN; not admins, the push certificate or a wipe.
    let (status, v) = srv
        .api_with_token(
            Method::POST,
            &format!("/api/v1/devices/{udid}/commands"),
            Some(json!({"request_type": "DeviceInformation", "Queries": ["OSVersion"]})),
            Some(&otto),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, lock) = call(
        &srv,
        &otto,
        Method::POST,
        &format!("/api/v1/devices/{udid}/lock"),
    )
    .await;
    assert_eq!(status, 201, "{lock}");
    let (status, pins) = call(
        &srv,
        &otto,
        Method::GET,
        &format!("/api/v1/unlock-pins?udid={udid}"),
    )
    .await;
    assert_eq!(status, 200, "{pins}");
    assert_eq!(pins["pins"][0]["pin"], lock["pin"]);
    assert_refused(
        srv.api_with_token(
            Method::POST,
            "/api/v1/admins",
            Some(json!({"name": "mallory", "role": "admin"})),
            Some(&otto),
        )
        .await,
        "admins",
        "admin",
        "otto is an operator",
    );
    assert_refused(
        srv.api_with_token(
            Method::PUT,
            "/api/v1/apns/certificate",
            Some(json!({"certificate_pem": "x"})),
            Some(&otto),
        )
        .await,
        "push_certificate",
        "admin",
        "otto is an operator",
    );
    assert_refused(
        srv.api_with_token(
            Method::POST,
            &format!("/api/v1/devices/{udid}/wipe"),
            Some(json!({"confirm_serial": "x"})),
            Some(&otto),
        )
        .await,
        "wipe",
        "admin",
        "otto is an operator",
    );
    let (status, _) = call(&srv, &otto, Method::GET, "/api/v1/admins").await;
    assert_eq!(status, 403);

    // Admin (made by the CLI): manages admins.
    create(&srv, &ada, "vic", "viewer").await;
    let listed = cli(&srv, &ada, &["list"]).await.expect("russet admin list");
    for (name, role) in [
        ("admin", "admin"),
        ("vera", "viewer"),
        ("otto", "operator"),
        ("ada", "admin"),
        ("vic", "viewer"),
    ] {
        assert!(
            listed
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([name, role])),
            "{name} {role} in\n{listed}"
        );
    }
    let (status, v) = srv
        .api_with_token(
            Method::POST,
            "/api/v1/admins",
            Some(json!({"name": "vera", "role": "admin"})),
            Some(&ada),
        )
        .await;
    assert_eq!(status, 409, "{v}");

    // The audit log names the admin and the address of each change and reveal.
    let (_, log) = call(&srv, &srv.token, Method::GET, "/api/v1/audit?limit=100").await;
    let entries = log["entries"].as_array().expect("entries");
    let find = |action: &str, target: &str| {
        entries
            .iter()
            .find(|e| e["action"] == json!(action) && e["target"] == json!(target))
            .unwrap_or_else(|| panic!("{action} {target} in {log}"))
            .clone()
    };
    let lock_entry = find("device.lock", &udid);
    assert_eq!(lock_entry["actor"], json!("otto"));
    assert_eq!(lock_entry["address"], json!("127.0.0.1"));
    let reveal = entries
        .iter()
        .find(|e| e["action"].as_str().is_some_and(|a| a.contains("reveal")))
        .unwrap_or_else(|| panic!("a reveal in {log}"));
    assert_eq!(reveal["actor"], json!("otto"));
    assert_eq!(reveal["address"], json!("127.0.0.1"));
    let made = find("admin.create", "otto");
    assert_eq!(made["actor"], json!("admin"));
    assert_eq!(made["address"], json!("127.0.0.1"));
    assert_eq!(find("admin.create", "vic")["actor"], json!("ada"));
    assert!(
        !log.to_string().contains("russet_"),
        "no token in the audit log"
    );

    // Tokens are stored as SHA-256 hashes only.
    let tokens = [&srv.token, &vera, &otto, &ada];
    let stored = srv
        .running
        .as_ref()
        .expect("running")
        .store
        .admin_tokens()
        .await
        .expect("tokens");
    for t in tokens {
        let h = openssl::sha::sha256(t.as_bytes());
        assert!(stored.iter().any(|r| r.hash == h), "hash of a token stored");
    }
    match srv.postgres_url() {
        None => {
            let bytes = srv.sqlite_bytes();
            for t in tokens {
                assert!(
                    !bytes.windows(t.len()).any(|w| w == t.as_bytes()),
                    "a token in clear in the SQLite file"
                );
            }
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("PostgreSQL");
            for table in ["admins", "admin_tokens", "audit_log", "settings"] {
                let dump: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT string_agg(t::text, ' ') FROM {table} t"
                )))
                .fetch_one(&pool)
                .await
                .expect("dump");
                let dump = dump.unwrap_or_default();
                for t in tokens {
                    assert!(!dump.contains(t.as_str()), "a token in clear in {table}");
                }
            }
            pool.close().await;
        }
    }
    srv.stop().await;
}

async fn a_revoked_admin_is_refused_at_once_and_the_last_admin_stays(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let otto = create(&srv, &srv.token, "otto", "operator").await;
    let (status, _) = call(&srv, &otto, Method::GET, "/api/v1/devices").await;
    assert_eq!(status, 200);
    let (status, v) = call(&srv, &srv.token, Method::DELETE, "/api/v1/admins/otto").await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(&srv, &otto, Method::GET, "/api/v1/devices").await;
    assert_eq!(
        status, 401,
        "a revoked token is refused on the next request: {v}"
    );
    let (status, _) = call(&srv, &srv.token, Method::DELETE, "/api/v1/admins/otto").await;
    assert_eq!(status, 409, "already revoked");
    let (status, _) = call(&srv, &srv.token, Method::DELETE, "/api/v1/admins/nobody").await;
    assert_eq!(status, 404);

    // The only admin cannot revoke itself.
    let (status, v) = call(&srv, &srv.token, Method::DELETE, "/api/v1/admins/admin").await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("last admin")),
        "{v}"
    );
    // With a second admin it can be revoked (here by the CLI); then that one is the last.
    let ada = create(&srv, &srv.token, "ada", "admin").await;
    let out = cli(&srv, &ada, &["revoke", "admin"])
        .await
        .expect("russet admin revoke");
    assert!(out.contains("Revoked admin admin"), "{out}");
    let (status, _) = call(&srv, &srv.token, Method::GET, "/api/v1/devices").await;
    assert_eq!(status, 401);
    let err = cli(&srv, &ada, &["revoke", "ada"])
        .await
        .expect_err("the last admin stays");
    assert!(err.to_string().contains("last admin"), "{err}");
    let listed = cli(&srv, &ada, &["list", "--json"]).await.expect("list");
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    let admin = listed["admins"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == json!("admin")))
        .expect("the revoked admin is listed");
    assert_eq!(admin["active"], json!(false));
    assert_eq!(admin["revoked_by"], json!("ada"));
    assert_eq!(admin["tokens"], json!(0));

    // Several servers sharing PostgreSQL: a revoke on one counts on the other at once.
    if let Some(other) = srv.start_sharing().await.expect("second server") {
        let pat = create(&srv, &ada, "pat", "viewer").await;
        let (status, _) = call(&other, &pat, Method::GET, "/api/v1/devices").await;
        assert_eq!(status, 200);
        let (status, _) = call(&srv, &ada, Method::DELETE, "/api/v1/admins/pat").await;
        assert_eq!(status, 200);
        let (status, _) = call(&other, &pat, Method::GET, "/api/v1/devices").await;
        assert_eq!(status, 401, "revoked on the other server");
        other.stop().await;
    }
    srv.stop().await;
}

/// A client whose requests leave from `ip` (any 127/8 address reaches loopback on Linux).
fn client_from(ip: &str) -> reqwest::Client {
    let ip: IpAddr = ip.parse().expect("address");
    reqwest::Client::builder()
        .local_address(ip)
        .build()
        .expect("client")
}

async fn get(client: &reqwest::Client, srv: &TestServer, token: &str) -> reqwest::Response {
    client
        .get(format!("{}/api/v1/devices", srv.admin_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("admin API reachable")
}

async fn repeated_bad_tokens_from_one_address_get_429(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let attacker = client_from("127.0.0.2");
    for i in 0..10 {
        let r = get(&attacker, &srv, &format!("russet_wrong{i}")).await;
        assert_eq!(r.status().as_u16(), 401, "failure {i}");
    }
    let r = get(&attacker, &srv, "russet_wrong").await;
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], json!("rate_limited"));
    // That address is refused even with a good token, while it waits…
    assert_eq!(
        get(&attacker, &srv, &srv.token).await.status().as_u16(),
        429
    );
    // …and every other address is not affected.
    assert_eq!(
        get(&client_from("127.0.0.1"), &srv, &srv.token)
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        get(&client_from("127.0.0.3"), &srv, "russet_wrong")
            .await
            .status()
            .as_u16(),
        401
    );
    srv.stop().await;
}
