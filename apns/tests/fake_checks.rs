//! The fake APNs refuses what Apple refuses, so tests against it mean something.

mod common;

use common::{config, push, raw_client, setup};
use russet_apns::fake::pki::{TestCa, random_topic};
use russet_apns::fake::{ClientTrust, FakeApns, FakeApnsConfig};
use russet_apns::{ApnsClient, PushCertificate, PushOutcome};

async fn post(
    c: &reqwest::Client,
    url: String,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut r = c.post(url).body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.expect("send");
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, v["reason"].as_str().unwrap_or("").to_string())
}

/// URL, headers, body, expected (status, reason).
type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str, (u16, &'a str));

const TOKEN: &str = "47e8eec062c2f729ec1703c1b3e18f1971d85f00be76445d34080baa701b5f51";

#[tokio::test]
async fn a_certificate_for_another_topic_is_refused() {
    let s = setup().await;
    // Same CA, so TLS succeeds; but the devices registered for s.topic, not this one.
    let other_topic = random_topic();
    let other = s.ca.issue_push_certificate(&other_topic).unwrap();
    let cert = PushCertificate::from_pem(&other.cert_pem, &other.key_pem).unwrap();
    let c = ApnsClient::new(&cert, config(&s.fake, 1)).unwrap();
    assert_eq!(
        c.push_with_retry(&push(1)).await,
        PushOutcome::BadToken {
            reason: "DeviceTokenNotForTopic".into()
        }
    );
    assert_eq!(s.fake.push_count(), 0);
}

#[tokio::test]
async fn an_apns_topic_header_that_is_not_the_certificate_uid_is_refused() {
    let s = setup().await;
    let c = raw_client(&s.fake, Some(&s.issued));
    let url = format!("{}/3/device/{TOKEN}", s.fake.base_url());
    let h = [
        ("apns-topic", "com.apple.mgmt.External.someone-else"),
        ("apns-push-type", "mdm"),
    ];
    assert_eq!(
        post(&c, url.clone(), &h, r#"{"mdm":"x"}"#).await,
        (400, "BadTopic".into())
    );
    // Without the header, the certificate's own topic is used, as APNs does.
    let h = [("apns-push-type", "mdm")];
    assert_eq!(post(&c, url, &h, r#"{"mdm":"x"}"#).await.0, 200);
    assert_eq!(s.fake.pushes()[0].topic, s.topic);
}

#[tokio::test]
async fn a_client_without_a_certificate_fails_the_tls_handshake() {
    let s = setup().await;
    let c = raw_client(&s.fake, None);
    let res = c
        .post(format!("{}/3/device/{TOKEN}", s.fake.base_url()))
        .body(r#"{"mdm":"x"}"#)
        .send()
        .await;
    assert!(res.is_err(), "{res:?}");
    assert!(s.fake.handshake_failures() >= 1);
    assert_eq!(s.fake.connections(), 0);
    assert_eq!(s.fake.requests(), 0);
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_tls_handshake() {
    let s = setup().await;
    let rogue_ca = TestCa::new("Not Apple").unwrap();
    let rogue = rogue_ca.issue_push_certificate(&s.topic).unwrap();
    let cert = PushCertificate::from_pem(&rogue.cert_pem, &rogue.key_pem).unwrap();
    let c = ApnsClient::new(&cert, config(&s.fake, 1)).unwrap();
    match c.push(&push(1)).await {
        PushOutcome::Retry { reason } => assert!(reason.starts_with("transport:"), "{reason}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(s.fake.handshake_failures() >= 1);
    assert_eq!(s.fake.requests(), 0);
}

#[tokio::test]
async fn an_expired_push_certificate_fails_the_tls_handshake() {
    let s = setup().await;
    let expired =
        s.ca.issue_push_certificate_valid(&s.topic, -400, 365)
            .unwrap();
    let c = raw_client(&s.fake, Some(&expired));
    let res = c
        .post(format!("{}/3/device/{TOKEN}", s.fake.base_url()))
        .send()
        .await;
    assert!(res.is_err());
    assert!(s.fake.handshake_failures() >= 1);
}

#[tokio::test]
async fn an_exact_certificate_list_admits_only_those_certificates() {
    let ca = TestCa::new("CA").unwrap();
    let topic = random_topic();
    let allowed = ca.issue_push_certificate(&topic).unwrap();
    let other = ca.issue_push_certificate(&topic).unwrap();
    let fake = FakeApns::start(FakeApnsConfig {
        client_trust: ClientTrust::Certificates(vec![allowed.cert_pem.clone()]),
        ..FakeApnsConfig::default()
    })
    .await
    .unwrap();
    for (issued, ok) in [(&allowed, true), (&other, false)] {
        let cert = PushCertificate::from_pem(&issued.cert_pem, &issued.key_pem).unwrap();
        let c = ApnsClient::new(&cert, config(&fake, 1)).unwrap();
        assert_eq!(c.push(&push(1)).await == PushOutcome::Delivered, ok);
    }
    assert_eq!(fake.push_count(), 1);
    assert_eq!(fake.handshake_failures(), 1);
}

#[tokio::test]
async fn malformed_requests_get_apples_reasons() {
    let s = setup().await;
    let c = raw_client(&s.fake, Some(&s.issued));
    let base = s.fake.base_url();
    let url = format!("{base}/3/device/{TOKEN}");
    let mdm = [("apns-push-type", "mdm")];
    let cases: Vec<Case> = vec![
        (
            url.clone(),
            vec![],
            r#"{"mdm":"x"}"#,
            (400, "InvalidPushType"),
        ),
        (
            url.clone(),
            vec![("apns-push-type", "alert")],
            r#"{"mdm":"x"}"#,
            (400, "InvalidPushType"),
        ),
        (url.clone(), mdm.to_vec(), "", (400, "PayloadEmpty")),
        (
            url.clone(),
            mdm.to_vec(),
            r#"{"mdm":"x","aps":{}}"#,
            (400, "PayloadEmpty"),
        ),
        (
            url.clone(),
            mdm.to_vec(),
            r#"{"mdm":1}"#,
            (400, "PayloadEmpty"),
        ),
        (url.clone(), mdm.to_vec(), "not json", (400, "PayloadEmpty")),
        (
            url.clone(),
            vec![("apns-push-type", "mdm"), ("apns-priority", "7")],
            r#"{"mdm":"x"}"#,
            (400, "BadPriority"),
        ),
        (
            url.clone(),
            vec![("apns-push-type", "mdm"), ("apns-expiration", "soon")],
            r#"{"mdm":"x"}"#,
            (400, "BadExpirationDate"),
        ),
        (
            url.clone(),
            vec![("apns-push-type", "mdm"), ("apns-id", "nope")],
            r#"{"mdm":"x"}"#,
            (400, "BadMessageId"),
        ),
        (
            format!("{base}/3/device/{}", TOKEN.to_uppercase()),
            mdm.to_vec(),
            r#"{"mdm":"x"}"#,
            (400, "BadDeviceToken"),
        ),
        (
            format!("{base}/3/device/47e8"),
            mdm.to_vec(),
            r#"{"mdm":"x"}"#,
            (400, "BadDeviceToken"),
        ),
        (
            format!("{base}/2/device/{TOKEN}"),
            mdm.to_vec(),
            r#"{"mdm":"x"}"#,
            (404, "BadPath"),
        ),
    ];
    for (url, headers, body, expected) in &cases {
        let got = post(&c, url.clone(), headers, body).await;
        assert_eq!(
            (got.0, got.1.as_str()),
            *expected,
            "{url} {headers:?} {body:?}"
        );
    }
    let big = format!(r#"{{"mdm":"{}"}}"#, "x".repeat(5000));
    assert_eq!(
        post(&c, url.clone(), &mdm, &big).await,
        (413, "PayloadTooLarge".into())
    );
    let get = c.get(url.clone()).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(s.fake.push_count(), 0);
    // A well-formed push with Apple's optional headers is accepted, and its apns-id echoed.
    let id = "8F1D3A8C-4A5B-4E5F-9C2D-0123456789AB";
    let resp = c
        .post(url)
        .header("apns-push-type", "mdm")
        .header("apns-id", id)
        .body(r#"{"mdm":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["apns-id"], id);
    assert_eq!(s.fake.push_count(), 1);
}
