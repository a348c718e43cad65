//! APNs end to end: the real server pushes simulated Macs through the fake APNs (TLS, HTTP/2,
//! client certificate), and the push certificate is imported, renewed and guarded.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::x509::{X509, X509NameBuilder, X509Req};
use reqwest::Method;
use russet_apns::fake::pki::{TestCa as ApnsCa, random_topic};
use russet_apns::fake::{FakeApns, FakeApnsConfig, Injection, Target};
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::json;
use std::time::{Duration, Instant};

struct Setup {
    srv: TestServer,
    fake: FakeApns,
    ca: ApnsCa,
    topic: String,
}

async fn setup(backend: Backend, extra: &[&str]) -> Setup {
    let ca = ApnsCa::new("Fake Apple push CA").expect("ca");
    let topic = random_topic();
    let fake = FakeApns::start(FakeApnsConfig::trusting_ca(&ca.cert_pem(), &topic))
        .await
        .expect("fake APNs");
    let dir = tempfile::tempdir().expect("tmp");
    let apns_ca = dir.path().join("apns-ca.pem");
    std::fs::write(&apns_ca, fake.ca_pem()).expect("write");
    let mut args = vec![
        "--apns-url".to_string(),
        fake.base_url(),
        "--apns-ca".to_string(),
        apns_ca.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let srv = TestServer::start_with(backend, &args).await;
    // The CA file is read at start; the temp dir may go now.
    drop(dir);
    Setup {
        srv,
        fake,
        ca,
        topic,
    }
}

async fn import(
    srv: &TestServer,
    cert_pem: &[u8],
    key_pem: Option<&[u8]>,
    force: bool,
) -> (u16, serde_json::Value) {
    srv.api(
        Method::PUT,
        "/api/v1/apns/certificate",
        Some(json!({
            "certificate_pem": String::from_utf8_lossy(cert_pem),
            "key_pem": key_pem.map(|k| String::from_utf8_lossy(k).into_owned()),
            "force_new_topic": force,
        })),
    )
    .await
}

async fn pushes_for(fake: &FakeApns, mac: &SimMac, at_least: usize) -> usize {
    let token = hex(&mac.token);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = fake
            .pushes()
            .iter()
            .filter(|p| p.token_hex == token && p.push_magic == mac.push_magic)
            .count();
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scrape(srv: &TestServer) -> prometheus_parse::Scrape {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", srv.admin_url))
        .bearer_auth(&srv.token)
        .send()
        .await
        .expect("admin listener")
        .text()
        .await
        .expect("body");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

/// The sum of `name`'s samples (with the label, when given).
fn metric(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

russet_tests::on_both_backends!(
    enqueue_pushes_the_mac_and_dead_tokens_wait_for_token_update,
    bulk_enqueue_pushes_every_mac_once
);

async fn enqueue_pushes_the_mac_and_dead_tokens_wait_for_token_update(backend: Backend) {
    let Setup {
        srv,
        fake,
        ca,
        topic,
    } = setup(backend, &[]).await;
    let (status, v) = srv.api(Method::GET, "/api/v1/apns", None).await;
    assert_eq!((status, v["configured"].clone()), (200, json!(false)));

    let cert = ca.issue_push_certificate(&topic).expect("push cert");
    let (status, v) = import(&srv, &cert.cert_pem, Some(&cert.key_pem), false).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["certificate"]["topic"], json!(topic));
    let (_, v) = srv.api(Method::GET, "/api/v1/apns", None).await;
    assert_eq!(v["certificate"]["topic"], json!(topic));
    assert!(v["certificate"]["days_left"].as_i64().unwrap_or(0) > 300);

    let mut mac = srv.mac();
    mac.topic = topic.clone();
    mac.enroll().await;
    srv.enqueue(&mac.udid, json!({"request_type": "SecurityInfo"}))
        .await;
    assert_eq!(
        pushes_for(&fake, &mac, 1).await,
        1,
        "enqueue wakes the Mac with {{\"mdm\": PushMagic}}"
    );
    let recorded = fake
        .pushes()
        .into_iter()
        .find(|p| p.token_hex == hex(&mac.token))
        .expect("push");
    assert_eq!(recorded.topic, topic);
    assert_eq!(
        recorded.body,
        format!("{{\"mdm\":\"{}\"}}", mac.push_magic).into_bytes()
    );
    assert_eq!(recorded.header("apns-push-type"), Some("mdm"));
    // The outcome and the APNs latency reach /metrics (per process, shared with the other
    // tests of this file running alongside: at least this push), and the certificate's days.
    let deadline = Instant::now() + Duration::from_secs(10);
    let scrape = loop {
        let s = scrape(&srv).await;
        if metric(&s, "russet_pushes_total", Some(("outcome", "delivered"))) >= 1.0
            || Instant::now() > deadline
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metric(
            &scrape,
            "russet_pushes_total",
            Some(("outcome", "delivered"))
        ) >= 1.0
    );
    assert!(metric(&scrape, "russet_apns_request_duration_seconds_count", None) >= 1.0);
    assert!(metric(&scrape, "russet_push_certificate_days_to_expiry", None) > 300.0);

    let (status, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/devices/{}/push", mac.udid),
            None,
        )
        .await;
    assert_eq!(
        (status, v["push"].clone()),
        (200, json!("delivered")),
        "{v}"
    );
    assert_eq!(pushes_for(&fake, &mac, 2).await, 2);

    // APNs says the token is dead (the Mac was wiped or its profile removed).
    fake.unregister(&hex(&mac.token), 1_700_000_000_000);
    let (_, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/devices/{}/push", mac.udid),
            None,
        )
        .await;
    assert_eq!(v["push"], json!("failed"), "{v}");
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/devices/{}/push", mac.udid),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (409, json!("push_blocked")),
        "no push to a dead token"
    );
    srv.enqueue(&mac.udid, json!({"request_type": "ProfileList"}))
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        pushes_for(&fake, &mac, 0).await,
        2,
        "blocked token is not pushed"
    );

    let (_, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert!(
        dev["push"]["blocked"]
            .as_str()
            .unwrap_or("")
            .contains("Unregistered"),
        "{dev}"
    );
    assert!(dev["push"]["last_push_at"].is_string());
    // A new TokenUpdate (new token) makes it pushable again.
    fake.clear_injections();
    mac.token = vec![0xab; 32];
    assert_eq!(mac.checkin(&mac.token_update_message()).await.status, 200);
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/devices/{}/push", mac.udid),
            None,
        )
        .await;
    assert_eq!(
        (status, v["push"].clone()),
        (200, json!("delivered")),
        "{v}"
    );

    // APNs refusing the certificate raises an alert in the status.
    fake.inject(Target::All, Injection::status(403, "BadCertificate"));
    srv.api(
        Method::POST,
        &format!("/api/v1/devices/{}/push", mac.udid),
        None,
    )
    .await;
    let (_, v) = srv.api(Method::GET, "/api/v1/apns", None).await;
    assert!(
        v["certificate"]["alert"]
            .as_str()
            .unwrap_or("")
            .contains("BadCertificate"),
        "{v}"
    );
    srv.stop().await;
}

async fn bulk_enqueue_pushes_every_mac_once(backend: Backend) {
    let Setup {
        srv,
        fake,
        ca,
        topic,
    } = setup(backend, &[]).await;
    let cert = ca.issue_push_certificate(&topic).expect("push cert");
    assert_eq!(
        import(&srv, &cert.cert_pem, Some(&cert.key_pem), false)
            .await
            .0,
        200
    );
    let mut macs = Vec::new();
    for _ in 0..40 {
        let mut mac = srv.mac();
        mac.topic = topic.clone();
        mac.enroll().await;
        macs.push(mac);
    }
    let devices: Vec<String> = macs.iter().map(|m| m.udid.clone()).collect();
    // Two commands in quick succession: coalesced into one push per Mac.
    for rt in ["SecurityInfo", "ProfileList"] {
        let (status, v) = srv
            .api(
                Method::POST,
                "/api/v1/commands",
                Some(json!({"devices": devices, "command": {"request_type": rt}})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    for m in &macs {
        assert_eq!(pushes_for(&fake, m, 1).await, 1, "every Mac pushed");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.push_count(), 40, "one push per Mac for both commands");
    srv.stop().await;
}

#[tokio::test]
async fn renewal_keeps_the_topic_and_a_new_topic_needs_force() {
    let Setup {
        srv,
        fake,
        ca,
        topic,
    } = setup(Backend::Sqlite, &[]).await;
    let first = ca
        .issue_push_certificate_valid(&topic, -300, 365)
        .expect("cert");
    assert_eq!(
        import(&srv, &first.cert_pem, Some(&first.key_pem), false)
            .await
            .0,
        200
    );
    let (_, before) = srv.api(Method::GET, "/api/v1/apns", None).await;
    let mut mac = srv.mac();
    mac.topic = topic.clone();
    mac.enroll().await;

    // Renewed in the portal: same topic, new key and expiry; takes effect without a restart.
    let renewed = ca
        .issue_push_certificate_valid(&topic, 0, 365)
        .expect("cert");
    let (status, v) = import(&srv, &renewed.cert_pem, Some(&renewed.key_pem), false).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["topic_changed_from"], json!(null));
    let (_, after) = srv.api(Method::GET, "/api/v1/apns", None).await;
    assert!(
        after["certificate"]["days_left"].as_i64() > before["certificate"]["days_left"].as_i64()
    );
    srv.enqueue(&mac.udid, json!({"request_type": "SecurityInfo"}))
        .await;
    assert_eq!(
        pushes_for(&fake, &mac, 1).await,
        1,
        "pushed with the renewed certificate"
    );

    // A brand-new certificate (another topic) would cut every enrolled Mac off.
    let other = ca.issue_push_certificate(&random_topic()).expect("cert");
    let (status, v) = import(&srv, &other.cert_pem, Some(&other.key_pem), false).await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("re-enroll")
    );
    let (_, still) = srv.api(Method::GET, "/api/v1/apns", None).await;
    assert_eq!(still["certificate"]["topic"], json!(topic));
    let (status, v) = import(&srv, &other.cert_pem, Some(&other.key_pem), true).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["topic_changed_from"], json!(topic));
    assert!(v["warning"].as_str().is_some());

    // Garbage, a mismatched key, an expired certificate.
    let (status, _) = import(&srv, b"not a certificate", Some(b"nope"), true).await;
    assert_eq!(status, 400);
    let (status, _) = import(&srv, &first.cert_pem, Some(&renewed.key_pem), true).await;
    assert_eq!(status, 400);
    let expired = ca
        .issue_push_certificate_valid(&topic, -400, 30)
        .expect("cert");
    let (status, v) = import(&srv, &expired.cert_pem, Some(&expired.key_pem), true).await;
    assert_eq!(status, 400, "{v}");
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(
        audit["entries"]
            .as_array()
            .map(|e| e.iter().filter(|x| x["action"] == "apns.import").count()),
        Some(3)
    );
    srv.stop().await;
}

/// Sign a CSR the way Apple's portal would issue a push certificate: subject UID = topic.
fn issue_for_csr(csr_pem: &str, topic: &str) -> Vec<u8> {
    let csr = X509Req::from_pem(csr_pem.as_bytes()).expect("csr");
    let ca_key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(openssl::nid::Nid::USERID, topic)
        .expect("uid");
    name.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, "APSP:test")
        .expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&csr.public_key().expect("pubkey"))
        .expect("set key");
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(365).expect("t"))
        .expect("na");
    b.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    b.build().to_pem().expect("pem")
}

#[tokio::test]
async fn csr_key_stays_inside_and_the_portal_certificate_imports_alone() {
    let Setup { srv, .. } = setup(Backend::Sqlite, &[]).await;
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/apns/csr",
            Some(
                json!({"common_name": "Example Corp", "email": "it@example.org", "country": "US"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let csr = v["csr_pem"].as_str().expect("csr").to_string();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert!(
        !v.to_string().contains("PRIVATE KEY"),
        "the key is never exported"
    );
    let topic = random_topic();
    let cert = issue_for_csr(&csr, &topic);
    let (status, v) = import(&srv, &cert, None, false).await;
    assert_eq!(
        status, 200,
        "certificate alone matches the pending CSR key: {v}"
    );
    assert_eq!(v["certificate"]["topic"], json!(topic));
    // A certificate for a key Russet never made can't be imported alone.
    let stranger = ApnsCa::new("x")
        .expect("ca")
        .issue_push_certificate(&topic)
        .expect("cert");
    let (status, v) = import(&srv, &stranger.cert_pem, None, false).await;
    assert_eq!(status, 400, "{v}");
    srv.stop().await;
}

/// What `openssl pkcs12 -in push.p12 -nodes` writes: "Bag Attributes" text, the certificate and
/// its key in one file. It imports as it is, with no separate key.
#[tokio::test]
async fn a_combined_pem_imports_as_it_is() {
    let Setup { srv, ca, topic, .. } = setup(Backend::Sqlite, &[]).await;
    let cert = ca.issue_push_certificate(&topic).expect("push cert");
    let mut combined = b"Bag Attributes\n    localKeyID: 01 02 03\nsubject=/UID=x\n".to_vec();
    combined.extend_from_slice(&cert.cert_pem);
    combined.extend_from_slice(
        b"Bag Attributes\n    localKeyID: 01 02 03\nKey Attributes: <No Attributes>\n",
    );
    combined.extend_from_slice(&cert.key_pem);
    let (status, v) = import(&srv, &combined, None, false).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["certificate"]["topic"], json!(topic));
    // Key first, certificate after: the same.
    let mut reversed = cert.key_pem.clone();
    reversed.extend_from_slice(&cert.cert_pem);
    let (status, v) = import(&srv, &reversed, None, false).await;
    assert_eq!(status, 200, "{v}");
    // A combined PEM whose key belongs to another certificate is refused, not half-imported.
    let other = ca.issue_push_certificate(&topic).expect("push cert");
    let mut mismatched = cert.cert_pem.clone();
    mismatched.extend_from_slice(&other.key_pem);
    let (status, v) = import(&srv, &mismatched, None, false).await;
    assert_eq!(status, 400, "{v}");
    srv.stop().await;
}

#[tokio::test]
async fn vendor_signs_customer_csrs() {
    let dir = tempfile::tempdir().expect("tmp");
    let vendor_key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, "MDM Vendor: Example")
        .expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    b.set_subject_name(&name).expect("s");
    b.set_issuer_name(&name).expect("i");
    b.set_pubkey(&vendor_key).expect("k");
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(365).expect("t"))
        .expect("na");
    b.sign(&vendor_key, MessageDigest::sha256()).expect("sign");
    let vendor_cert = b.build();
    let (cert_path, key_path) = (dir.path().join("vendor.pem"), dir.path().join("vendor.key"));
    std::fs::write(&cert_path, vendor_cert.to_pem().expect("pem")).expect("w");
    std::fs::write(
        &key_path,
        vendor_key.private_key_to_pem_pkcs8().expect("pem"),
    )
    .expect("w");
    let (c, k) = (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    );
    let Setup { srv, .. } =
        setup(Backend::Sqlite, &["--vendor-cert", &c, "--vendor-key", &k]).await;

    let (_, v) = srv
        .api(Method::POST, "/api/v1/apns/csr", Some(json!({})))
        .await;
    let csr = v["csr_pem"].as_str().expect("csr").to_string();
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/vendor/sign",
            Some(json!({"csr_pem": csr})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let parsed =
        russet_certs::pushcert::parse_vendor_request(v["upload_file"].as_str().expect("file"))
            .expect("parses");
    let mut verifier =
        openssl::sign::Verifier::new(MessageDigest::sha256(), &vendor_key).expect("verifier");
    verifier.update(&parsed.csr_der).expect("update");
    assert!(
        verifier.verify(&parsed.signature).expect("verify"),
        "RSA-SHA256 over the DER CSR"
    );
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/vendor/sign",
            Some(json!({"csr_pem": "garbage"})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    srv.stop().await;
}
