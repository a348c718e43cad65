//! The admin API over TLS (issue 20), on SQLite and PostgreSQL: `--admin-tls-cert/--admin-tls-key`
//! serve HTTPS on `--admin-listen` (the API, the audit log's client address, the CLI with
//! `--ca-file`, the console's `Secure` session cookie); a client that does not trust the
//! certificate, and plain HTTP to the same port, get no answer. A plain-HTTP admin listener on a non-loopback address is refused at start
//! unless `--admin-insecure-http` is given.

use clap::Parser;
use russet_certs::ca::CertificateAuthority;
use russet_mdm::cli::{Cli, Command};
use russet_mdm::config::ServeArgs;
use russet_tests::{Backend, TestServer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

russet_tests::on_both_backends!(admin_api_and_cli_over_tls);

/// A private CA and an admin certificate for 127.0.0.1 and localhost, as PEM files in `dir`:
/// (certificate, key, CA).
fn admin_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = CertificateAuthority::generate("Admin TLS Test CA", "Russet").expect("CA");
    let hosts = ["127.0.0.1".to_string(), "localhost".to_string()];
    let (cert, key) = ca
        .issue_tls_server_certificate(&hosts, Duration::from_secs(30 * 86400))
        .expect("admin certificate");
    let paths = (
        dir.join("admin.pem"),
        dir.join("admin.key"),
        dir.join("admin-ca.pem"),
    );
    std::fs::write(&paths.0, cert.to_pem().expect("pem")).expect("write cert");
    std::fs::write(&paths.1, key.private_key_to_pem_pkcs8().expect("pem")).expect("write key");
    std::fs::write(&paths.2, ca.cert_pem().expect("pem")).expect("write CA");
    paths
}

async fn admin_list(srv: &TestServer, ca_file: Option<&Path>) -> anyhow::Result<String> {
    let mut argv = vec![
        "russet".to_string(),
        "admin".into(),
        "list".into(),
        "--server".into(),
        srv.admin_url.clone(),
        "--token".into(),
        srv.token.clone(),
    ];
    if let Some(ca) = ca_file {
        argv.extend(["--ca-file".into(), ca.display().to_string()]);
    }
    let Command::Admin(cmd) = Cli::try_parse_from(argv)?.command else {
        panic!("not an admin command");
    };
    russet_mdm::cli::admin::execute(cmd).await
}

async fn admin_api_and_cli_over_tls(backend: Backend) {
    let files = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = admin_certificate(files.path());
    let srv = TestServer::start_with(
        backend,
        &[
            "--admin-tls-cert",
            cert.to_str().expect("path"),
            "--admin-tls-key",
            key.to_str().expect("path"),
        ],
    )
    .await;
    assert!(
        srv.admin_url.starts_with("https://127.0.0.1:"),
        "{}",
        srv.admin_url
    );
    // The CLI on this host finds the https URL in the data directory.
    let written =
        std::fs::read_to_string(srv.data_dir.path().join("data/admin-url")).expect("admin-url");
    assert_eq!(written.trim(), srv.admin_url);

    let roots =
        reqwest::Certificate::from_pem_bundle(&std::fs::read(&ca).expect("CA")).expect("CA");
    let trusting = reqwest::Client::builder()
        .tls_certs_merge(roots)
        .build()
        .expect("client");

    // The API answers over HTTPS, and still asks for a token.
    let url = |p: &str| format!("{}{p}", srv.admin_url);
    let resp = trusting
        .get(url("/api/v1/admins"))
        .send()
        .await
        .expect("https");
    assert_eq!(resp.status(), 401);
    let made = trusting
        .post(url("/api/v1/admins"))
        .bearer_auth(&srv.token)
        .json(&json!({"name": "tina", "role": "viewer"}))
        .send()
        .await
        .expect("https");
    assert_eq!(made.status(), 201);
    // The audit log still has the client's address (the TLS listener passes it on).
    let log: Value = trusting
        .get(url("/api/v1/audit?limit=20"))
        .bearer_auth(&srv.token)
        .send()
        .await
        .expect("https")
        .json()
        .await
        .expect("json");
    let entry = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == json!("admin.create") && e["target"] == json!("tina"))
        .unwrap_or_else(|| panic!("admin.create tina in {log}"))
        .clone();
    assert_eq!(entry["address"], json!("127.0.0.1"));

    // The web console on the same listener: over TLS its session cookie is `Secure`, so a
    // browser never sends it over plain HTTP.
    let roots =
        reqwest::Certificate::from_pem_bundle(&std::fs::read(&ca).expect("CA")).expect("CA");
    let browser_like = reqwest::Client::builder()
        .tls_certs_merge(roots)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let signed_in = browser_like
        .post(url("/signin"))
        .form(&[("token", srv.token.as_str()), ("next", "/")])
        .send()
        .await
        .expect("https");
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // A client that does not trust the private CA gets no answer, not even a 401.
    let stranger = reqwest::Client::new();
    let err = stranger
        .get(url("/api/v1/admins"))
        .send()
        .await
        .expect_err("an untrusted certificate is refused");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // Plain HTTP to the TLS port: no HTTP answer.
    let plain = format!(
        "http://{}/api/v1/admins",
        srv.running.as_ref().expect("running").admin_addr
    );
    let answer = reqwest::Client::new()
        .get(plain)
        .bearer_auth(&srv.token)
        .send()
        .await;
    assert!(
        !answer.as_ref().is_ok_and(|r| r.status() == 200),
        "plain HTTP got {answer:?}"
    );

    // The CLI: with --ca-file it works; without, it says it cannot reach the API.
    let out = admin_list(&srv, Some(&ca)).await.expect("CLI over https");
    assert!(out.contains("tina") && out.contains("viewer"), "{out}");
    let e = admin_list(&srv, None)
        .await
        .expect_err("untrusted without --ca-file");
    assert!(
        format!("{e:#}").contains("cannot reach the admin API"),
        "{e:#}"
    );
    srv.stop().await;
}

#[derive(Parser)]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

fn serve_args(data: &Path, admin_listen: &str, extra: &[&str]) -> ServeArgs {
    let mut argv = vec![
        "serve".to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--insecure-http".into(),
        "--admin-listen".into(),
        admin_listen.into(),
        "--inventory".into(),
        "false".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    ServeOnly::try_parse_from(argv).expect("flags parse").args
}

#[tokio::test]
async fn plain_http_admin_on_a_network_address_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let err = russet_mdm::server::start(&serve_args(&data, "0.0.0.0:0", &[]))
        .await
        .err()
        .expect("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("0.0.0.0:0")
            && msg.contains("--admin-tls-cert")
            && msg.contains("--admin-insecure-http"),
        "{msg}"
    );
    // Refused before anything was created.
    assert!(!data.join("russet.db").exists());

    // With the flag it serves, and the API answers on the network address's loopback.
    let running =
        russet_mdm::server::start(&serve_args(&data, "0.0.0.0:0", &["--admin-insecure-http"]))
            .await
            .expect("starts with --admin-insecure-http");
    assert!(
        running.admin_url.starts_with("http://"),
        "{}",
        running.admin_url
    );
    let port = running.admin_addr.port();
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/admins"))
        .await
        .expect("reachable");
    assert_eq!(resp.status(), 401);
    running.shutdown().await;
}
