//! Shared set-up: a test CA, a push certificate shaped like Apple's, the fake APNs trusting
//! that CA, and a client pointed at it.
#![allow(dead_code)]

use std::time::Duration;

use russet_apns::fake::pki::{IssuedCert, TestCa, random_topic};
use russet_apns::fake::{FakeApns, FakeApnsConfig};
use russet_apns::{ApnsClient, ApnsConfig, MdmPush, PushCertificate, RetryPolicy};

pub struct Setup {
    pub ca: TestCa,
    pub topic: String,
    pub issued: IssuedCert,
    pub cert: PushCertificate,
    pub fake: FakeApns,
}

/// A CA ("Apple"), a push certificate for a fresh topic, and a fake APNs that trusts the CA
/// and whose devices registered for that topic.
pub async fn setup() -> Setup {
    let ca = TestCa::new("Test Apple Push CA").expect("CA");
    let topic = random_topic();
    let issued = ca.issue_push_certificate(&topic).expect("push cert");
    let cert = PushCertificate::from_pem(&issued.cert_pem, &issued.key_pem).expect("parse");
    let fake = FakeApns::start(FakeApnsConfig::trusting_ca(&ca.cert_pem(), &topic))
        .await
        .expect("fake APNs");
    Setup {
        ca,
        topic,
        issued,
        cert,
        fake,
    }
}

/// Fast retries so tests don't wait seconds.
pub fn config(fake: &FakeApns, connections: usize) -> ApnsConfig {
    ApnsConfig {
        base_url: fake.base_url(),
        extra_ca_pem: Some(fake.ca_pem().to_vec()),
        connections,
        retry: RetryPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
        },
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        ..ApnsConfig::default()
    }
}

pub fn client(s: &Setup) -> ApnsClient {
    ApnsClient::new(&s.cert, config(&s.fake, 1)).expect("client")
}

/// A 32-byte token and PushMagic unique to `i`.
pub fn push(i: u32) -> MdmPush {
    let mut token = vec![0xA5u8; 32];
    token[..4].copy_from_slice(&i.to_be_bytes());
    MdmPush {
        token,
        push_magic: format!("MAGIC-{i:08}-6F1C-4D1B-9E1A"),
    }
}

/// A raw HTTP/2 client for sending requests our `ApnsClient` never would.
pub fn raw_client(fake: &FakeApns, identity: Option<&IssuedCert>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .http2_prior_knowledge()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(fake.ca_pem()).expect("ca"))
        .timeout(Duration::from_secs(10))
        .no_proxy();
    if let Some(id) = identity {
        let mut pem = id.cert_pem.clone();
        pem.extend_from_slice(&id.key_pem);
        b = b.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    b.build().expect("raw client")
}
