//! SCEP end to end: client request → server parse/decrypt/issue → CertRep → client.

use std::sync::OnceLock;
use std::time::Duration;

use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use russet_certs::ca::CertificateAuthority;
use russet_certs::scep::client::{ClientOptions, build_pkcs_req, parse_cert_rep};
use russet_certs::scep::{
    self, CA_CAPS, ContentCipher, FailInfo, MessageType, PkiStatus, ScepDigest, cert_rep_failure,
    cert_rep_success, decrypt_csr, parse_pki_message,
};
use x509_parser::prelude::{FromDer as _, X509Certificate};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn ca() -> &'static CertificateAuthority {
    static CA: OnceLock<CertificateAuthority> = OnceLock::new();
    CA.get_or_init(|| CertificateAuthority::generate("Russet Test SCEP CA", "Russet").unwrap())
}

fn device_key() -> PKey<Private> {
    // 2048 like the real profile's Keysize; generated once and reused to keep tests fast.
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    let der = KEY.get_or_init(|| {
        PKey::from_rsa(Rsa::generate(2048).unwrap())
            .unwrap()
            .private_key_to_der()
            .unwrap()
    });
    PKey::private_key_from_der(der).unwrap()
}

fn chains_to_ca(cert: &X509) -> bool {
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca().cert().to_owned()).unwrap();
    let store = store.build();
    let chain = Stack::new().unwrap();
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, cert, &chain, |c| c.verify_cert()).unwrap()
}

fn assert_device_cert(cert: &X509, cn: &str) {
    let der = cert.to_der().unwrap();
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    let eku = parsed.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth, "clientAuth EKU");
    assert!(!eku.server_auth);
    let ku = parsed.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment(), "keyUsage");
    assert!(!ku.key_cert_sign());
    let bc = parsed.basic_constraints().unwrap().unwrap().value;
    assert!(!bc.ca);
    assert!(chains_to_ca(cert), "issued cert chains to the CA");
    let subject_cn = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .unwrap()
        .data()
        .to_string()
        .unwrap();
    assert_eq!(subject_cn, cn);
    assert!(cert.authority_key_id().is_some());
    assert!(cert.subject_key_id().is_some());
}

/// One full enrollment with the given algorithms.
fn enroll(digest: ScepDigest, cipher: ContentCipher) {
    let key = device_key();
    let cn = format!("device-{digest:?}-{cipher:?}");
    let opts = ClientOptions {
        digest,
        cipher,
        message_type: MessageType::PkcsReq,
        signer: None,
    };
    let req = build_pkcs_req(ca().cert(), &key, &cn, Some("s3cret challenge"), opts).unwrap();

    let msg = parse_pki_message(&req.der).unwrap();
    assert_eq!(msg.message_type, MessageType::PkcsReq);
    assert_eq!(msg.digest_algorithm, digest);
    assert_eq!(msg.content_cipher, Some(cipher));
    assert_eq!(msg.transaction_id, req.transaction_id);
    assert_eq!(msg.sender_nonce, req.sender_nonce);
    assert_eq!(
        msg.signer_cert.to_der().unwrap(),
        req.signer_cert.to_der().unwrap()
    );

    let csr = decrypt_csr(ca(), &msg).unwrap();
    assert!(csr.signature_valid);
    assert_eq!(csr.challenge_password.as_deref(), Some("s3cret challenge"));
    assert_eq!(csr.public_key_bits, 2048);
    assert_eq!(csr.subject, format!("CN={cn}"));

    let issued = ca()
        .issue_device_certificate(&csr.request().unwrap(), None, 365 * DAY)
        .unwrap();
    let rep = cert_rep_success(ca(), &msg, &issued).unwrap();

    let result = parse_cert_rep(&rep, &req.signer_cert, &req.signer_key).unwrap();
    assert_eq!(result.status, PkiStatus::Success);
    assert_eq!(result.fail_info, None);
    assert_eq!(result.transaction_id, req.transaction_id);
    assert_eq!(result.recipient_nonce, req.sender_nonce);
    assert_eq!(result.digest_algorithm, Some(digest));
    assert_eq!(
        result.signer_cert.to_der().unwrap(),
        ca().cert_der().unwrap(),
        "CertRep signed by the CA"
    );
    let cert = result.issued.unwrap();
    assert_eq!(cert.to_der().unwrap(), issued.to_der().unwrap());
    assert!(cert.public_key().unwrap().public_eq(&key));
    assert_device_cert(&cert, &cn);
}

macro_rules! roundtrip {
    ($($name:ident: $digest:ident, $cipher:ident;)*) => {$(
        #[test]
        fn $name() {
            enroll(ScepDigest::$digest, ContentCipher::$cipher);
        }
    )*};
}

roundtrip! {
    roundtrip_sha1_des: Sha1, Des;
    roundtrip_sha1_des3: Sha1, Des3;
    roundtrip_sha1_aes128: Sha1, Aes128;
    roundtrip_sha1_aes256: Sha1, Aes256;
    roundtrip_sha256_des: Sha256, Des;
    roundtrip_sha256_des3: Sha256, Des3;
    roundtrip_sha256_aes128: Sha256, Aes128;
    roundtrip_sha256_aes256: Sha256, Aes256;
    roundtrip_sha512_des: Sha512, Des;
    roundtrip_sha512_des3: Sha512, Des3;
    roundtrip_sha512_aes128: Sha512, Aes128;
    roundtrip_sha512_aes256: Sha512, Aes256;
}

#[test]
fn renewal_signed_by_issued_identity() {
    // First enrollment.
    let old_key = device_key();
    let req = build_pkcs_req(
        ca().cert(),
        &old_key,
        "renew-me",
        Some("pw"),
        ClientOptions::default(),
    )
    .unwrap();
    let msg = parse_pki_message(&req.der).unwrap();
    let csr = decrypt_csr(ca(), &msg).unwrap();
    let identity = ca()
        .issue_device_certificate(&csr.request().unwrap(), None, DAY)
        .unwrap();

    // Renewal with a new key, signed by the existing identity.
    let new_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let opts = ClientOptions {
        digest: ScepDigest::Sha256,
        cipher: ContentCipher::Aes256,
        message_type: MessageType::RenewalReq,
        signer: Some((identity.clone(), old_key.clone())),
    };
    let req = build_pkcs_req(ca().cert(), &new_key, "renew-me", None, opts).unwrap();
    let msg = parse_pki_message(&req.der).unwrap();
    assert_eq!(msg.message_type, MessageType::RenewalReq);
    assert_eq!(
        msg.signer_cert.to_der().unwrap(),
        identity.to_der().unwrap(),
        "renewal is signed by the existing identity"
    );
    assert!(chains_to_ca(&msg.signer_cert));
    let csr = decrypt_csr(ca(), &msg).unwrap();
    assert_eq!(csr.challenge_password, None);
    let renewed = ca()
        .issue_device_certificate(&csr.request().unwrap(), None, DAY)
        .unwrap();
    let rep = cert_rep_success(ca(), &msg, &renewed).unwrap();
    // Encrypted to the identity that signed the renewal.
    let result = parse_cert_rep(&rep, &identity, &old_key).unwrap();
    let cert = result.issued.unwrap();
    assert!(cert.public_key().unwrap().public_eq(&new_key));
    assert_device_cert(&cert, "renew-me");
}

#[test]
fn failure_cert_rep_bad_request() {
    let key = device_key();
    let req = build_pkcs_req(
        ca().cert(),
        &key,
        "wrong-challenge",
        Some("nope"),
        ClientOptions::default(),
    )
    .unwrap();
    let msg = parse_pki_message(&req.der).unwrap();
    let rep = cert_rep_failure(ca(), &msg, FailInfo::BadRequest).unwrap();
    let result = parse_cert_rep(&rep, &req.signer_cert, &req.signer_key).unwrap();
    assert_eq!(result.status, PkiStatus::Failure);
    assert_eq!(result.fail_info, Some(FailInfo::BadRequest));
    assert!(result.issued.is_none());
    assert_eq!(result.recipient_nonce, req.sender_nonce);
    assert_eq!(result.transaction_id, req.transaction_id);
    // A CertRep is not a request.
    assert!(parse_pki_message(&rep).is_err());
}

#[test]
fn every_fail_info_round_trips() {
    let key = device_key();
    let req = build_pkcs_req(ca().cert(), &key, "x", None, ClientOptions::default()).unwrap();
    let msg = parse_pki_message(&req.der).unwrap();
    for fail in [
        FailInfo::BadAlg,
        FailInfo::BadMessageCheck,
        FailInfo::BadRequest,
        FailInfo::BadTime,
        FailInfo::BadCertId,
    ] {
        let rep = cert_rep_failure(ca(), &msg, fail).unwrap();
        let result = parse_cert_rep(&rep, &req.signer_cert, &req.signer_key).unwrap();
        assert_eq!(result.fail_info, Some(fail));
    }
}

#[test]
fn csr_without_challenge() {
    let key = device_key();
    let req = build_pkcs_req(
        ca().cert(),
        &key,
        "no-challenge",
        None,
        ClientOptions::default(),
    )
    .unwrap();
    let msg = parse_pki_message(&req.der).unwrap();
    let csr = decrypt_csr(ca(), &msg).unwrap();
    assert_eq!(csr.challenge_password, None);
    assert!(csr.signature_valid);
}

#[test]
fn envelope_for_another_ca_does_not_decrypt() {
    let other = CertificateAuthority::generate("Other CA", "").unwrap();
    let key = device_key();
    let req = build_pkcs_req(other.cert(), &key, "x", None, ClientOptions::default()).unwrap();
    let msg = parse_pki_message(&req.der).unwrap();
    let err = decrypt_csr(ca(), &msg).unwrap_err();
    assert!(matches!(err, scep::ScepError::Decrypt(_)), "{err}");
}

#[test]
fn real_macos_capture_parses() {
    let der = include_bytes!("../testdata/scep/mdmclient-PKIOperation.der");
    let msg = parse_pki_message(der).unwrap();
    assert_eq!(msg.message_type, MessageType::PkcsReq);
    assert_eq!(msg.message_type.code(), 19);
    assert_eq!(msg.digest_algorithm, ScepDigest::Sha512);
    assert_eq!(msg.content_cipher, Some(ContentCipher::Des3));
    assert_eq!(
        msg.transaction_id,
        "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B"
    );
    // macOS (2017 capture) sends an 8-byte senderNonce, not the 16 RFC 8894 suggests.
    assert_eq!(
        msg.sender_nonce,
        [0xfa, 0xc5, 0xe2, 0xed, 0xa5, 0xd9, 0x7d, 0x64]
    );
    assert!(msg.enveloped.len() > 1000);
    let cn = msg
        .signer_cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .unwrap()
        .data()
        .to_string()
        .unwrap();
    assert_eq!(cn, "MDM SCEP SIGNER");
    // Not addressed to our CA: decryption must fail cleanly.
    assert!(decrypt_csr(ca(), &msg).is_err());
}

#[test]
fn ca_caps_and_ca_cert() {
    let caps: Vec<&str> = CA_CAPS.lines().collect();
    for cap in [
        "POSTPKIOperation",
        "SHA-256",
        "SHA-1",
        "SHA-512",
        "AES",
        "DES3",
        "SCEPStandard",
        "Renewal",
    ] {
        assert!(caps.contains(&cap), "{cap}");
    }
    assert_eq!(caps.len(), 8);
    let (content_type, body) = scep::ca_cert_response(ca()).unwrap();
    assert_eq!(content_type, "application/x-x509-ca-cert");
    assert_eq!(
        X509::from_der(&body).unwrap().to_der().unwrap(),
        ca().cert_der().unwrap()
    );
}

/// `openssl cms -verify` accepts the hand-assembled SignedData (request and CertRep) and yields
/// the same content we read.
#[test]
fn openssl_cli_verifies_messages() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    // The `openssl` command ships with Debian's `openssl` package (a dependency of
    // ca-certificates); without it this interop check cannot run, and must not pass silently.
    let verify = |der: &[u8]| -> Vec<u8> {
        let mut child = Command::new("openssl")
            .args(["cms", "-verify", "-inform", "DER", "-noverify", "-binary"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `openssl` (apt install openssl): {e}"));
        child.stdin.take().unwrap().write_all(der).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl cms -verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };

    let key = device_key();
    let req = build_pkcs_req(ca().cert(), &key, "cli", None, ClientOptions::default()).unwrap();
    let content = verify(&req.der);
    let msg = parse_pki_message(&req.der).unwrap();
    assert_eq!(content, msg.enveloped);

    let csr = decrypt_csr(ca(), &msg).unwrap();
    let issued = ca()
        .issue_device_certificate(&csr.request().unwrap(), None, DAY)
        .unwrap();
    let rep = cert_rep_success(ca(), &msg, &issued).unwrap();
    assert!(!verify(&rep).is_empty());
}
