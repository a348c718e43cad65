//! Enrollment end to end, over real sockets and TLS: a simulated Mac downloads the signed
//! profile with an enrollment link, gets its identity by SCEP with the profile's one-time
//! challenge, then checks in over HTTPS presenting that identity as TLS client certificate and
//! signing with `Mdm-Signature`. Plus the refusals, renewal, and TLS start-up checks.

use clap::Parser;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use plist::Value;
use russet_certs::scep::client::{ClientOptions, build_pkcs_req, parse_cert_rep};
use russet_certs::scep::{FailInfo, MessageType, PkiStatus};
use russet_certs::testing::{DeviceIdentity, IssueOptions, TestCa, TestValidity};
use russet_mdm::config::ServeArgs;
use russet_mdm::server::{self, Running};
use russet_tests::db::{Backend, PgDatabase};
use russet_tests::{SimMac, sim_mac::CONNECT_CONTENT_TYPE};
use serde_json::{Value as Json, json};

russet_tests::on_both_backends!(a_mac_enrolls_by_profile_scep_and_mtls);

#[derive(Parser)]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

/// A server with TLS on the device listener and no test device CA: the Mac's identity must come
/// from Russet's own SCEP CA, as in production.
struct TlsServer {
    running: Option<Running>,
    base: String,
    admin: String,
    token: String,
    ca: X509,
    _dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

fn serve_args(dir: &std::path::Path, extra: &[&str]) -> anyhow::Result<ServeArgs> {
    let mut argv: Vec<String> = vec![
        "serve".into(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--admin-listen".into(),
        "127.0.0.1:0".into(),
        // The Mac here answers only the admin's command (inventory has its own tests).
        "--inventory".into(),
        "false".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Ok(ServeOnly::try_parse_from(argv)?.args)
}

impl TlsServer {
    async fn start(backend: Backend, extra: &[&str]) -> TlsServer {
        let pg = backend.database().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut extra: Vec<&str> = extra.to_vec();
        if let Some(db) = &pg {
            extra.push("--database-url");
            extra.push(&db.url);
        }
        let args = serve_args(dir.path(), &extra).expect("args");
        let running = server::start(&args).await.expect("server starts");
        let ca_pem = running
            .store
            .scep_ca()
            .await
            .expect("store")
            .expect("CA stored at first start")
            .cert_pem;
        TlsServer {
            base: running.public_url.clone(),
            admin: format!("http://{}", running.admin_addr),
            token: running.new_admin_token.clone().expect("admin token"),
            ca: X509::from_pem(ca_pem.as_bytes()).expect("CA PEM"),
            running: Some(running),
            _dir: dir,
            pg,
        }
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if let Some(pg) = self.pg.take() {
            pg.drop_now().await;
        }
    }

    /// HTTPS client trusting Russet's CA, optionally presenting a client identity.
    fn https(&self, identity: Option<&DeviceIdentity>) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(&self.ca.to_pem().expect("pem")).expect("root");
        let mut b = reqwest::Client::builder().add_root_certificate(root);
        if let Some(id) = identity {
            let mut pem = id.cert.to_pem().expect("cert pem");
            pem.extend(id.key.private_key_to_pem_pkcs8().expect("key pem"));
            b = b.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
        }
        b.build().expect("client")
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> (u16, Json) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }

    async fn link(&self, body: Json) -> String {
        let (status, v) = self
            .admin(reqwest::Method::POST, "/api/v1/enroll-links", Some(body))
            .await;
        assert_eq!(status, 201, "{v}");
        let url = v["url"].as_str().expect("url").to_string();
        assert!(
            url.starts_with(&format!("{}/mdm/enroll?token=", self.base)),
            "{url}"
        );
        url
    }

    /// Download and verify the profile; returns (status, parsed plist when 200).
    async fn download(&self, url: &str) -> (u16, Option<plist::Dictionary>) {
        let resp = self
            .https(None)
            .get(url)
            .send()
            .await
            .expect("enroll reachable");
        let status = resp.status().as_u16();
        if status != 200 {
            return (status, None);
        }
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/x-apple-aspen-config")
        );
        let der = resp.bytes().await.expect("body");
        let xml =
            russet_certs::profile_sign::verify_signed_profile(&der, std::slice::from_ref(&self.ca))
                .expect("profile signature verifies against the CA");
        let v = Value::from_reader_xml(xml.as_slice()).expect("profile is a plist");
        (status, v.into_dictionary())
    }

    async fn scep(&self, op: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
        let http = self.https(None);
        let url = format!("{}/scep?operation={op}", self.base);
        let resp = match body {
            Some(b) => http.post(url).body(b).send().await,
            None => http.get(url).send().await,
        }
        .expect("scep reachable");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("body").to_vec())
    }

    /// A PKCSReq (or RenewalReq with `signer`) for a fresh key; returns the CertRep outcome.
    async fn enroll_identity(
        &self,
        challenge: Option<&str>,
        signer: Option<&DeviceIdentity>,
    ) -> (PkiStatus, Option<FailInfo>, Option<DeviceIdentity>) {
        let key: PKey<Private> = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
        let mut opts = ClientOptions::default();
        if let Some(s) = signer {
            opts.message_type = MessageType::RenewalReq;
            opts.signer = Some((s.cert.clone(), s.key.clone()));
        }
        let req = build_pkcs_req(&self.ca, &key, "sim-mac", challenge, opts).expect("request");
        let (status, body) = self.scep("PKIOperation", Some(req.der.clone())).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let rep = parse_cert_rep(&body, &req.signer_cert, &req.signer_key).expect("CertRep");
        assert_eq!(rep.transaction_id, req.transaction_id);
        assert_eq!(rep.recipient_nonce, req.sender_nonce);
        let identity = rep.issued.map(|cert| DeviceIdentity { cert, key });
        (rep.status, rep.fail_info, identity)
    }
}

fn dict_get<'a>(d: &'a plist::Dictionary, k: &str) -> &'a Value {
    d.get(k).unwrap_or_else(|| panic!("missing key {k}"))
}

fn payload<'a>(profile: &'a plist::Dictionary, kind: &str) -> &'a plist::Dictionary {
    dict_get(profile, "PayloadContent")
        .as_array()
        .expect("PayloadContent array")
        .iter()
        .filter_map(Value::as_dictionary)
        .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} payload"))
}

fn challenge_of(profile: &plist::Dictionary) -> String {
    let scep = dict_get(
        payload(profile, "com.apple.security.scep"),
        "PayloadContent",
    )
    .as_dictionary()
    .expect("scep content");
    dict_get(scep, "Challenge")
        .as_string()
        .expect("challenge")
        .to_string()
}

async fn a_mac_enrolls_by_profile_scep_and_mtls(backend: Backend) {
    let s = TlsServer::start(backend, &[]).await;
    let link = s.link(json!({"uses": 1, "expires_in": "1h"})).await;
    let (status, profile) = s.download(&link).await;
    assert_eq!(status, 200);
    let profile = profile.expect("profile");

    // Every key the Mac needs.
    assert_eq!(
        dict_get(&profile, "PayloadType").as_string(),
        Some("Configuration")
    );
    let root = payload(&profile, "com.apple.security.root");
    assert_eq!(
        dict_get(root, "PayloadContent").as_data(),
        Some(s.ca.to_der().expect("der").as_slice()),
        "the private CA is in the profile"
    );
    let scep = payload(&profile, "com.apple.security.scep");
    let sc = dict_get(scep, "PayloadContent")
        .as_dictionary()
        .expect("content");
    assert_eq!(
        dict_get(sc, "URL").as_string(),
        Some(format!("{}/scep", s.base).as_str())
    );
    assert_eq!(dict_get(sc, "Keysize").as_signed_integer(), Some(2048));
    assert_eq!(dict_get(sc, "Key Type").as_string(), Some("RSA"));
    assert_eq!(dict_get(sc, "Key Usage").as_signed_integer(), Some(5));
    let mdm = payload(&profile, "com.apple.mdm");
    assert_eq!(
        dict_get(mdm, "ServerURL").as_string(),
        Some(format!("{}/mdm/connect", s.base).as_str())
    );
    assert_eq!(
        dict_get(mdm, "CheckInURL").as_string(),
        Some(format!("{}/mdm/checkin", s.base).as_str())
    );
    let topic = dict_get(mdm, "Topic")
        .as_string()
        .expect("topic")
        .to_string();
    assert!(topic.starts_with("com.apple.mgmt.External."), "{topic}");
    assert_eq!(
        dict_get(mdm, "IdentityCertificateUUID").as_string(),
        dict_get(scep, "PayloadUUID").as_string()
    );
    assert_eq!(
        dict_get(mdm, "AccessRights").as_signed_integer(),
        Some(8191)
    );
    assert_eq!(dict_get(mdm, "SignMessage").as_boolean(), Some(true));
    assert_eq!(
        dict_get(mdm, "CheckOutWhenRemoved").as_boolean(),
        Some(true)
    );
    let caps: Vec<&str> = dict_get(mdm, "ServerCapabilities")
        .as_array()
        .expect("caps")
        .iter()
        .filter_map(Value::as_string)
        .collect();
    assert!(caps.contains(&"com.apple.mdm.per-user-connections"));
    assert!(caps.contains(&"com.apple.mdm.bootstraptoken"));

    // The link was for one use; without a token there is no profile.
    assert_eq!(s.download(&link).await.0, 403, "exhausted link");
    assert_eq!(s.download(&format!("{}/mdm/enroll", s.base)).await.0, 403);
    assert_eq!(
        s.download(&format!("{}/mdm/enroll?token=nope", s.base))
            .await
            .0,
        403
    );

    // SCEP, as the profile's payload does it.
    let (st, caps) = s.scep("GetCACaps", None).await;
    assert_eq!(st, 200);
    let caps = String::from_utf8(caps).expect("text");
    assert!(
        caps.contains("POSTPKIOperation") && caps.contains("Renewal"),
        "{caps}"
    );
    let (st, der) = s.scep("GetCACert", None).await;
    assert_eq!(st, 200);
    assert_eq!(der, s.ca.to_der().expect("der"));
    let challenge = challenge_of(&profile);
    let (status, _, identity) = s.enroll_identity(Some(&challenge), None).await;
    assert_eq!(status, PkiStatus::Success);
    let identity = identity.expect("issued");
    // The challenge was one-time.
    let (status, fail, _) = s.enroll_identity(Some(&challenge), None).await;
    assert_eq!(
        (status, fail),
        (PkiStatus::Failure, Some(FailInfo::BadRequest))
    );

    // Check in over HTTPS with the identity as TLS client certificate and Mdm-Signature.
    let http = s.https(Some(&identity));
    let mut mac = SimMac::new(&s.base, identity).with_http(http.clone());
    mac.topic = topic;
    mac.enroll().await;
    let (st, cmd) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/devices/{}/commands", mac.udid),
            Some(json!({"request_type": "DeviceInformation", "Queries": ["SerialNumber"]})),
        )
        .await;
    assert_eq!(st, 201, "{cmd}");
    let uuid = cmd["command_uuid"].as_str().expect("uuid").to_string();
    let r = mac.idle().await;
    assert_eq!(r.status, 200);
    let (got, rt, _) = r.command().expect("a command");
    assert_eq!(
        (got.as_str(), rt.as_str()),
        (uuid.as_str(), "DeviceInformation")
    );
    let r = mac.report(&uuid, "Acknowledged", &[]).await;
    assert_eq!(r.status, 200);
    let (_, v) = s
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/commands/{uuid}"),
            None,
        )
        .await;
    assert!(v.to_string().contains("Acknowledged"), "{v}");

    // The TLS client certificate alone identifies the Mac (no Mdm-Signature).
    let body = SimMac::to_xml(&SimMac::dict(&[
        ("UDID", Value::String(mac.udid.clone())),
        ("Status", Value::String("Idle".into())),
    ]));
    let r = mac
        .put_raw("/mdm/connect", CONNECT_CONTENT_TYPE, &body, None, &[])
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Without either, the Mac is refused — with 400, never 401.
    let anonymous = SimMac::new(
        &s.base,
        DeviceIdentity {
            cert: mac.identity.cert.clone(),
            key: mac.identity.key.clone(),
        },
    )
    .with_http(s.https(None));
    let r = anonymous
        .put_raw("/mdm/connect", CONNECT_CONTENT_TYPE, &body, None, &[])
        .await;
    assert_eq!(r.status, 400);

    // Renewal: signed by the current identity, no challenge, bound to the same device.
    let (status, _, renewed) = s.enroll_identity(None, Some(&mac.identity)).await;
    assert_eq!(status, PkiStatus::Success);
    let renewed = renewed.expect("renewed identity");
    let udid = mac.udid.clone();
    let http = s.https(Some(&renewed));
    let mut mac2 = SimMac::new(&s.base, renewed).with_http(http);
    mac2.udid = udid.clone();
    let r = mac2.idle().await;
    assert_eq!(r.status, 200, "renewed identity works without Authenticate");
    let (_, dev) = s
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/devices/{udid}"),
            None,
        )
        .await;
    assert_eq!(
        dev["identity"]["certificate_sha256"].as_str(),
        Some(mac2.identity.sha256_hex().as_str())
    );
    assert_eq!(dev["identity_expires_within_30_days"], Json::Bool(false));
    assert!(
        dev["warnings"].to_string().contains("placeholder"),
        "placeholder topic warning in the device view: {dev}"
    );
    let (st, exp) = s
        .admin(
            reqwest::Method::GET,
            "/api/v1/identities/expiring?within_days=1000",
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(exp.to_string().contains(&udid), "{exp}");
    s.stop().await;
}

#[tokio::test]
async fn scep_refuses_bad_missing_and_garbage_requests() {
    let s = TlsServer::start(Backend::Sqlite, &["--open-enrollment"]).await;
    // Open enrollment: no token needed.
    let (status, profile) = s.download(&format!("{}/mdm/enroll", s.base)).await;
    assert_eq!(status, 200);
    let _ = profile.expect("profile");
    let (status, fail, _) = s.enroll_identity(Some("not-the-challenge"), None).await;
    assert_eq!(
        (status, fail),
        (PkiStatus::Failure, Some(FailInfo::BadRequest))
    );
    let (status, fail, _) = s.enroll_identity(None, None).await;
    assert_eq!(
        (status, fail),
        (PkiStatus::Failure, Some(FailInfo::BadRequest))
    );
    let (st, _) = s.scep("PKIOperation", Some(b"garbage".to_vec())).await;
    assert_eq!(st, 400);
    let (st, _) = s.scep("PKIOperation", Some(vec![0u8; 300 * 1024])).await;
    assert_eq!(st, 413);
    let (st, _) = s.scep("NoSuchOperation", None).await;
    assert_eq!(st, 400);
    // A renewal signed by an identity from another CA is refused.
    let stranger = TestCa::new("Stranger").issue_device_identity("x");
    let (status, fail, _) = s.enroll_identity(None, Some(&stranger)).await;
    assert_eq!(
        (status, fail),
        (PkiStatus::Failure, Some(FailInfo::BadRequest))
    );
    s.stop().await;
}

#[tokio::test]
async fn an_expired_challenge_is_refused_and_a_static_one_accepted() {
    let s = TlsServer::start(
        Backend::Sqlite,
        &[
            "--challenge-ttl-minutes",
            "0",
            "--scep-challenge",
            "static-secret",
        ],
    )
    .await;
    let link = s.link(json!({})).await;
    let (_, profile) = s.download(&link).await;
    let challenge = challenge_of(&profile.expect("profile"));
    let (status, fail, _) = s.enroll_identity(Some(&challenge), None).await;
    assert_eq!(
        (status, fail),
        (PkiStatus::Failure, Some(FailInfo::BadRequest))
    );
    let (status, _, id) = s.enroll_identity(Some("static-secret"), None).await;
    assert_eq!(status, PkiStatus::Success);
    assert!(id.is_some());
    s.stop().await;
}

#[tokio::test]
async fn an_expired_enrollment_link_is_refused() {
    let s = TlsServer::start(Backend::Sqlite, &[]).await;
    let (st, _) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/enroll-links",
            Some(json!({"uses": 0})),
        )
        .await;
    assert_eq!(st, 400);
    let link = s.link(json!({"expires_in": 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(s.download(&link).await.0, 403);
    s.stop().await;
}

#[tokio::test]
async fn serve_refuses_a_tls_certificate_for_another_host_or_expired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("Operator CA");
    let write = |name: &str, id: &DeviceIdentity| {
        let cert = dir.path().join(format!("{name}.pem"));
        let key = dir.path().join(format!("{name}.key"));
        std::fs::write(&cert, id.cert.to_pem().expect("pem")).expect("write");
        std::fs::write(&key, id.key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
        (cert.display().to_string(), key.display().to_string())
    };
    let wrong = ca.issue_device_identity("wrong.example.org");
    let expired = ca.issue_with(
        "mdm.example.org",
        IssueOptions {
            validity: TestValidity::Expired,
            ..Default::default()
        },
    );
    for (name, id, expect) in [
        ("wrong", &wrong, "does not name"),
        ("expired", &expired, "expired"),
    ] {
        let (cert, key) = write(name, id);
        let args = serve_args(
            dir.path(),
            &[
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--public-url",
                "https://mdm.example.org:8443",
            ],
        )
        .expect("args");
        let err = match server::start(&args).await {
            Ok(r) => {
                r.shutdown().await;
                panic!("{name}: server started")
            }
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(expect), "{name}: {err}");
    }
}
