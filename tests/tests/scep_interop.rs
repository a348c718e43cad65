//! Interop: Debian's `scepclient` (micromdm/scep) enrolls against Russet's SCEP server.
//! Compiled as ignored where the build finds no `scepclient` on `PATH` (`build.rs`); `.ci/run`
//! installs it.

use openssl::x509::X509;
use russet_tests::{Backend, TestServer};
use std::process::Command;

#[tokio::test]
#[cfg_attr(
    russet_no_scepclient,
    ignore = "scepclient is not on PATH (apt-get install scep; .ci/run installs it)"
)]
async fn scepclient_gets_an_identity_from_russet() {
    let bin = "scepclient";
    let probe = Command::new(bin).arg("-version").output();
    assert!(
        probe.is_ok(),
        "scepclient does not run (apt-get install scep): {probe:?}"
    );
    let srv =
        TestServer::start_with(Backend::Sqlite, &["--scep-challenge", "interop-secret"]).await;
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("{}/scep", srv.device_url);
    let run = |challenge: &'static str, name: &'static str| {
        // scepclient keeps its CSR in `csr.pem` beside the key and reuses it: give each run
        // its own directory.
        let own = dir.path().join(name);
        let _ = std::fs::create_dir_all(&own);
        let (key, cert) = (own.join("key.pem"), own.join("cert.pem"));
        let mut cmd = tokio::process::Command::new(bin);
        cmd.current_dir(&own);
        cmd.args(["-server-url", &url, "-challenge", challenge, "-cn", name])
            .arg("-private-key")
            .arg(&key)
            .arg("-certificate")
            .arg(&cert);
        async move { (cmd.output().await.expect("scepclient runs"), cert) }
    };
    let (ok, cert_path) = run("interop-secret", "interop-mac").await;
    let (bad, bad_path) = run("wrong-secret", "intruder").await;
    assert!(
        ok.status.success(),
        "scepclient failed: {}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let issued =
        X509::from_pem(&std::fs::read(&cert_path).expect("certificate written")).expect("PEM");
    let ca_der = reqwest::get(format!("{url}?operation=GetCACert"))
        .await
        .expect("GetCACert")
        .bytes()
        .await
        .expect("body");
    let ca = X509::from_der(&ca_der).expect("CA cert");
    assert!(
        issued
            .verify(&ca.public_key().expect("key"))
            .expect("verify"),
        "issued by Russet's CA"
    );
    let text = String::from_utf8(issued.to_text().expect("text")).expect("utf8");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("interop-mac"));
    // scepclient may leave its throwaway self-signed certificate behind: what matters is that
    // nothing issued by Russet's CA comes out of a wrong challenge.
    let issued_to_intruder = std::fs::read(&bad_path)
        .ok()
        .and_then(|pem| X509::from_pem(&pem).ok())
        .is_some_and(|c| c.verify(&ca.public_key().expect("key")).unwrap_or(false));
    assert!(
        !issued_to_intruder,
        "a wrong challenge gets no certificate (scepclient said: {})",
        String::from_utf8_lossy(&bad.stderr)
    );
    srv.stop().await;
}
