//! The CA (generation, import, issuance) and profile signing.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509NameBuilder, X509ReqBuilder, X509StoreContext};
use russet_certs::ca::{CaError, CertificateAuthority};
use russet_certs::profile_sign::{sign_profile, verify_signed_profile};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

const DAY: Duration = Duration::from_secs(24 * 3600);

#[test]
fn generated_ca_shape() {
    let ca = CertificateAuthority::generate("Russet CA", "Example Org").unwrap();
    let der = ca.cert_der().unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
    assert!(!ku.value.digital_signature());
    assert_eq!(ca.cert().public_key().unwrap().id(), Id::RSA);
    assert_eq!(ca.cert().public_key().unwrap().bits(), 3072);
    assert!(ca.cert().subject_key_id().is_some());
    assert!(ca.cert().authority_key_id().is_some());
    let years = cert.validity().time_to_expiration().unwrap().whole_days() / 365;
    assert!((9..=10).contains(&years), "{years}");
    assert!(cert.tbs_certificate.serial.bits() > 64);
    assert_eq!(cert.subject().to_string(), "CN=Russet CA, O=Example Org");

    // Export + re-import round trip.
    let again =
        CertificateAuthority::from_pem(&ca.cert_pem().unwrap(), &ca.key_pem().unwrap()).unwrap();
    assert_eq!(again.cert_der().unwrap(), der);
    // Serials are random.
    let other = CertificateAuthority::generate("Russet CA", "Example Org").unwrap();
    assert_ne!(
        other.cert().serial_number().to_bn().unwrap(),
        ca.cert().serial_number().to_bn().unwrap()
    );
}

#[test]
fn operator_ca_with_ec_key_is_refused() {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "EC CA").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let cert = b.build();
    let err = CertificateAuthority::from_pem(
        &cert.to_pem().unwrap(),
        &key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CaError::InvalidCa(_)));
    assert!(text.contains("must be RSA"), "{text}");
    assert!(text.contains("EC key"), "{text}");
}

#[test]
fn operator_ca_key_mismatch_and_garbage_are_refused() {
    let a = CertificateAuthority::generate("A", "").unwrap();
    let b = CertificateAuthority::generate("B", "").unwrap();
    let err =
        CertificateAuthority::from_pem(&a.cert_pem().unwrap(), &b.key_pem().unwrap()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(CertificateAuthority::from_pem(b"nope", &a.key_pem().unwrap()).is_err());
    assert!(CertificateAuthority::from_pem(&a.cert_pem().unwrap(), b"nope").is_err());
    // A too-small RSA key.
    let small = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let err = CertificateAuthority::from_pem(
        &a.cert_pem().unwrap(),
        &small.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("bits"), "{err}");
}

#[test]
fn device_certificate_subject_override_and_bad_csr() {
    let ca = CertificateAuthority::generate("CA", "").unwrap();
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "from-csr")
        .unwrap();
    let name = name.build();
    let mut req = X509ReqBuilder::new().unwrap();
    req.set_version(0).unwrap();
    req.set_subject_name(&name).unwrap();
    req.set_pubkey(&key).unwrap();
    req.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let req = req.build();

    let mut over = X509NameBuilder::new().unwrap();
    over.append_entry_by_nid(Nid::COMMONNAME, "overridden")
        .unwrap();
    let over = over.build();
    let cert = ca.issue_device_certificate(&req, Some(&over), DAY).unwrap();
    let der = cert.to_der().unwrap();
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(parsed.subject().to_string(), "CN=overridden");
    let days = parsed
        .validity()
        .time_to_expiration()
        .unwrap()
        .whole_hours();
    assert!((23..=24).contains(&days));

    let cert = ca
        .issue_device_certificate_der(&req.to_der().unwrap(), None, DAY)
        .unwrap();
    assert_eq!(
        cert.subject_name().to_der().unwrap(),
        name.to_der().unwrap()
    );

    // Bad self-signature: change one byte of the signature.
    let mut bad = req.to_der().unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(ca.issue_device_certificate_der(&bad, None, DAY).is_err());
    assert!(
        ca.issue_device_certificate_der(b"\x30\x00", None, DAY)
            .is_err()
    );
}

#[test]
fn tls_server_certificate() {
    let ca = CertificateAuthority::generate("Dev CA", "").unwrap();
    let hosts = vec![
        "mdm.example.test".to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let (cert, key) = ca.issue_tls_server_certificate(&hosts, 397 * DAY).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&key));
    let der = cert.to_der().unwrap();
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    let eku = parsed.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    let san = parsed.subject_alternative_name().unwrap().unwrap().value;
    let dns: Vec<_> = san
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(dns, ["mdm.example.test", "localhost"]);
    let ips = san
        .general_names
        .iter()
        .filter(|n| matches!(n, GeneralName::IPAddress(_)))
        .count();
    assert_eq!(ips, 2);
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca.cert().to_owned()).unwrap();
    let store = store.build();
    let mut ctx = X509StoreContext::new().unwrap();
    assert!(
        ctx.init(&store, &cert, &Stack::new().unwrap(), |c| c.verify_cert())
            .unwrap()
    );

    assert!(ca.issue_tls_server_certificate(&[], DAY).is_err());
    assert!(
        ca.issue_tls_server_certificate(&["bad host!".to_string()], DAY)
            .is_err()
    );
}

const PROFILE: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<plist version=\"1.0\"><dict>\n\
<key>PayloadType</key><string>Configuration</string>\n</dict></plist>\n\x00\xff";

fn signer() -> (CertificateAuthority, X509, PKey<openssl::pkey::Private>) {
    let ca = CertificateAuthority::generate("Profile CA", "").unwrap();
    let (cert, key) = ca
        .issue_tls_server_certificate(&["mdm.example.test".to_string()], DAY)
        .unwrap();
    (ca, cert, key)
}

#[test]
fn signed_profile_verifies_and_yields_exact_content() {
    let (ca, cert, key) = signer();
    let signed = sign_profile(&cert, &key, &[], PROFILE).unwrap();
    // Attached: the content is inside.
    assert!(signed.windows(PROFILE.len()).any(|w| w == PROFILE));
    let content = verify_signed_profile(&signed, &[ca.cert().to_owned()]).unwrap();
    assert_eq!(content, PROFILE);

    // Untrusted root, tampering, garbage.
    let other = CertificateAuthority::generate("Other", "").unwrap();
    assert!(verify_signed_profile(&signed, &[other.cert().to_owned()]).is_err());
    let mut bad = signed.clone();
    let pos = signed
        .windows(PROFILE.len())
        .position(|w| w == PROFILE)
        .unwrap();
    bad[pos + 3] ^= 1;
    assert!(verify_signed_profile(&bad, &[ca.cert().to_owned()]).is_err());
    assert!(verify_signed_profile(b"garbage", &[ca.cert().to_owned()]).is_err());

    // With an RSA signer and a chain (the CA embedded).
    let ca_key = PKey::private_key_from_pem(&ca.key_pem().unwrap()).unwrap();
    let signed = sign_profile(ca.cert(), &ca_key, &[ca.cert().to_owned()], PROFILE).unwrap();
    assert_eq!(
        verify_signed_profile(&signed, &[ca.cert().to_owned()]).unwrap(),
        PROFILE
    );
}

#[test]
fn signed_profile_verifies_with_openssl_cli() {
    let (_ca, cert, key) = signer();
    let signed = sign_profile(&cert, &key, &[], PROFILE).unwrap();
    let child = Command::new("openssl")
        .args(["smime", "-verify", "-inform", "DER", "-noverify", "-binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    // Debian's `openssl` package (a dependency of ca-certificates) has the command; without
    // it this interop check cannot run, and must not pass silently.
    let mut child =
        child.unwrap_or_else(|e| panic!("cannot run `openssl` (apt install openssl): {e}"));
    child.stdin.take().unwrap().write_all(&signed).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl smime -verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, PROFILE);
}
