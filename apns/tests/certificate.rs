//! Reading the push certificate: topic, expiry, key forms.

use russet_apns::fake::pki::{TestCa, random_topic};
use russet_apns::{CertificateError, PushCertificate};

#[test]
fn topic_and_expiry_come_from_the_certificate() {
    let ca = TestCa::new("CA").unwrap();
    let topic = random_topic();
    let issued = ca.issue_push_certificate(&topic).unwrap();
    assert!(
        String::from_utf8_lossy(&issued.key_pem).contains("BEGIN RSA PRIVATE KEY"),
        "test key is PKCS#1"
    );
    let cert = PushCertificate::from_pem(&issued.cert_pem, &issued.key_pem).unwrap();
    assert_eq!(cert.topic(), topic);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Issued from yesterday for 365 days.
    let expected = now - 86_400 + 365 * 86_400;
    assert!((cert.not_after_unix() - expected).abs() < 60);
    // The key was normalised to PKCS#8, and the identity holds cert then key.
    let id = String::from_utf8(cert.identity_pem()).unwrap();
    assert!(id.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(id.contains("-----BEGIN PRIVATE KEY-----"));
    assert!(!id.contains("RSA PRIVATE KEY"));
    assert!(reqwest::Identity::from_pem(id.as_bytes()).is_ok());
    assert!(
        !format!("{cert:?}").contains("PRIVATE"),
        "Debug hides the key"
    );
}

#[test]
fn combined_pem_in_any_order_is_accepted() {
    let ca = TestCa::new("CA").unwrap();
    let topic = random_topic();
    let issued = ca.issue_push_certificate(&topic).unwrap();
    // Key first, then the CA certificate, then the leaf: the leaf is found by its key.
    let mut pem = issued.key_pem.clone();
    pem.extend_from_slice(&ca.cert_pem());
    pem.extend_from_slice(&issued.cert_pem);
    let cert = PushCertificate::from_combined_pem(&pem).unwrap();
    assert_eq!(cert.topic(), topic);
    let certs = openssl::x509::X509::stack_from_pem(cert.cert_pem()).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(
        russet_apns::cert::topic_of(&certs[0]).as_deref(),
        Some(topic.as_str())
    );
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let ca = TestCa::new("CA").unwrap();
    let a = ca.issue_push_certificate(&random_topic()).unwrap();
    let b = ca.issue_push_certificate(&random_topic()).unwrap();
    assert!(matches!(
        PushCertificate::from_pem(&a.cert_pem, &b.key_pem),
        Err(CertificateError::KeyMismatch)
    ));
}

#[test]
fn only_mdm_topics_are_push_certificates() {
    let ca = TestCa::new("CA").unwrap();
    let app = ca.issue_push_certificate("com.example.app").unwrap();
    assert!(matches!(
        PushCertificate::from_pem(&app.cert_pem, &app.key_pem),
        Err(CertificateError::NotMdmTopic(t)) if t == "com.example.app"
    ));
    // A TLS server certificate has no UID at all.
    let server = ca.issue_server(&["localhost"]).unwrap();
    assert!(matches!(
        PushCertificate::from_pem(&server.cert_pem, &server.key_pem),
        Err(CertificateError::NoTopic)
    ));
    assert!(matches!(
        PushCertificate::from_pem(b"", &app.key_pem),
        Err(CertificateError::NoCertificate)
    ));
    assert!(matches!(
        PushCertificate::from_pem(&app.cert_pem, b"garbage"),
        Err(CertificateError::NoKey(_))
    ));
}
