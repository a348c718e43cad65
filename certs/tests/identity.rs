//! Device identity end to end, with simulated Macs from `russet_certs::testing`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use russet_certs::testing::{IssueOptions, TestCa, TestEku, TestValidity};
use russet_certs::{
    DeviceCertificate, DeviceTrust, IdentityError, parse_client_cert_header, verify_mdm_signature,
};
use std::sync::OnceLock;

const BODY: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
<key>MessageType</key><string>Authenticate</string><key>UDID</key><string>0000-TEST</string>\
</dict></plist>\n";
const FIXTURE_HEADER2: &str = include_str!("../testdata/mdm-signature/header2-ber-sha1.b64");
const FIXTURE_BODY2: &[u8] = include_bytes!("../testdata/mdm-signature/body2.plist");

/// One CA for the tests that do not care which; RSA keygen is the slow part.
fn shared_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new("Russet Test Device CA"))
}

fn trust_for(ca: &TestCa) -> DeviceTrust {
    DeviceTrust::from_pem(&ca.cert_pem()).expect("CA PEM")
}

/// Minimal DER reading/writing, to build CMS structures OpenSSL's API will not produce
/// (two signers, none, a swapped certificate). OpenSSL emits definite-length DER, so this is
/// enough for its output.
mod der {
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    /// Split concatenated TLVs into (tag, content, whole encoding).
    pub fn items(mut b: &[u8]) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let tag = b[0];
            let (len, hdr) = if b[1] < 0x80 {
                (b[1] as usize, 2)
            } else {
                let n = (b[1] & 0x7f) as usize;
                let len = b[2..2 + n]
                    .iter()
                    .fold(0usize, |a, x| (a << 8) | *x as usize);
                (len, 2 + n)
            };
            out.push((tag, b[hdr..hdr + len].to_vec(), b[..hdr + len].to_vec()));
            b = &b[hdr + len..];
        }
        out
    }

    /// The pieces of a ContentInfo{SignedData} as produced by OpenSSL.
    pub struct SignedData {
        pub version: Vec<u8>,
        pub digest_algs: Vec<u8>,
        pub content_info: Vec<u8>,
        pub certs: Vec<u8>,
        pub signer_infos: Vec<u8>,
    }

    pub fn split(ci: &[u8]) -> SignedData {
        let outer = items(ci);
        let ci = items(&outer[0].1);
        assert_eq!(ci[1].0, 0xa0);
        let sd = items(&items(&ci[1].1)[0].1);
        assert_eq!(
            sd.len(),
            5,
            "version, digestAlgs, content, certs, signerInfos"
        );
        assert_eq!(sd[3].0, 0xa0);
        assert_eq!(sd[4].0, 0x31);
        SignedData {
            version: sd[0].2.clone(),
            digest_algs: sd[1].1.clone(),
            content_info: sd[2].2.clone(),
            certs: sd[3].1.clone(),
            signer_infos: sd[4].1.clone(),
        }
    }

    pub fn join(p: &SignedData) -> Vec<u8> {
        let mut sd = p.version.clone();
        sd.extend(tlv(0x31, &p.digest_algs));
        sd.extend(&p.content_info);
        sd.extend(tlv(0xa0, &p.certs));
        sd.extend(tlv(0x31, &p.signer_infos));
        let mut ci = tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02],
        );
        ci.extend(tlv(0xa0, &tlv(0x30, &sd)));
        tlv(0x30, &ci)
    }
}

fn decode(header: &str) -> Vec<u8> {
    STANDARD.decode(header).expect("own header is base64")
}

fn encode(der: &[u8]) -> String {
    STANDARD.encode(der)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const OID_SHA256: &[u8] = &[
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
];
const OID_SHA1: &[u8] = &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_MESSAGE_DIGEST: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04,
];

#[test]
fn signed_request_round_trip_and_trust() {
    let ca = shared_ca();
    let mac = ca.issue_device_identity("mac-1");
    let trust = trust_for(ca);
    for header in [mac.sign_body(BODY), mac.sign_body_with_attributes(BODY)] {
        let cert = verify_mdm_signature(&header, BODY).expect("own signature verifies");
        assert_eq!(cert.sha256_hex, mac.sha256_hex());
        assert_eq!(cert.der, mac.cert_der());
        assert_eq!(cert.subject, "O=Russet tests, CN=mac-1");
        let expected_not_after = openssl::asn1::Asn1Time::from_unix(cert.not_after_unix).unwrap();
        assert_eq!(
            mac.cert.not_after().compare(&expected_not_after).unwrap(),
            std::cmp::Ordering::Equal
        );
        trust.verify(&cert).expect("issued by the trusted CA");
    }
}

#[test]
fn sign_body_is_mac_shaped() {
    let mac = shared_ca().issue_device_identity("mac-shape");
    let der = decode(&mac.sign_body(BODY));
    assert!(contains(&der, OID_SHA256), "SHA-256 digest");
    assert!(!contains(&der, OID_SHA1));
    assert!(!contains(&der, OID_MESSAGE_DIGEST), "no signed attributes");
    assert!(!contains(&der, BODY), "detached");
    assert!(contains(&der, &mac.cert_der()), "certificate embedded");
    let with_attrs = decode(&mac.sign_body_with_attributes(BODY));
    assert!(contains(&with_attrs, OID_MESSAGE_DIGEST));
}

#[test]
fn tampered_body_refused() {
    let mac = shared_ca().issue_device_identity("mac-tamper");
    for header in [mac.sign_body(BODY), mac.sign_body_with_attributes(BODY)] {
        let mut body = BODY.to_vec();
        let i = body.len() / 2;
        body[i] ^= 0x20;
        assert!(matches!(
            verify_mdm_signature(&header, &body),
            Err(IdentityError::BadSignature)
        ));
        assert!(matches!(
            verify_mdm_signature(&header, &BODY[..BODY.len() - 1]),
            Err(IdentityError::BadSignature)
        ));
        assert!(verify_mdm_signature(&header, BODY).is_ok());
    }
}

#[test]
fn signature_from_another_key_with_same_issuer_and_serial_refused() {
    // Two identities the CMS signer lookup cannot tell apart (same issuer, same serial): the
    // signature made by A must not be accepted as B's just because B's certificate is embedded.
    let ca = shared_ca();
    let opts = IssueOptions {
        serial: Some(4242),
        ..IssueOptions::default()
    };
    let a = ca.issue_with("mac-a", opts);
    let b = ca.issue_with("mac-b", opts);
    let mut parts = der::split(&decode(&a.sign_body(BODY)));
    assert_eq!(parts.certs, a.cert_der());
    parts.certs = b.cert_der();
    let forged = encode(&der::join(&parts));
    // Same structure, only the certificate swapped: OpenSSL finds B as the signer.
    let p7 = Pkcs7::from_der(&der::join(&parts)).unwrap();
    let signers = p7
        .signers(&Stack::new().unwrap(), Pkcs7Flags::empty())
        .unwrap();
    assert_eq!(signers.get(0).unwrap().to_der().unwrap(), b.cert_der());
    assert!(matches!(
        verify_mdm_signature(&forged, BODY),
        Err(IdentityError::BadSignature)
    ));
    // Control: the unmodified join is accepted, so the refusal above is the swap's doing.
    parts.certs = a.cert_der();
    assert!(verify_mdm_signature(&encode(&der::join(&parts)), BODY).is_ok());
}

#[test]
fn signature_embedding_unrelated_cert_refused() {
    let ca = shared_ca();
    let a = ca.issue_device_identity("mac-a2");
    let b = ca.issue_device_identity("mac-b2");
    let mut parts = der::split(&decode(&a.sign_body(BODY)));
    parts.certs = b.cert_der();
    let err = verify_mdm_signature(&encode(&der::join(&parts)), BODY).unwrap_err();
    assert!(matches!(err, IdentityError::Malformed(_)), "{err}");
}

#[test]
fn exactly_one_signer_required() {
    let ca = shared_ca();
    let a = ca.issue_device_identity("mac-one");
    let b = ca.issue_device_identity("mac-two");
    let pa = der::split(&decode(&a.sign_body(BODY)));
    let pb = der::split(&decode(&b.sign_body(BODY)));

    let mut two = der::split(&decode(&a.sign_body(BODY)));
    two.certs.extend(&pb.certs);
    two.signer_infos.extend(&pb.signer_infos);
    let two_der = der::join(&two);
    // Both signatures are genuinely valid, so only the signer count can refuse it.
    let p7 = Pkcs7::from_der(&two_der).unwrap();
    let none = Stack::<X509>::new().unwrap();
    assert_eq!(p7.signers(&none, Pkcs7Flags::empty()).unwrap().len(), 2);
    let store = X509StoreBuilder::new().unwrap().build();
    p7.verify(
        &none,
        &store,
        Some(BODY),
        None,
        Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY,
    )
    .expect("both signatures valid");
    let err = verify_mdm_signature(&encode(&two_der), BODY).unwrap_err();
    assert!(
        matches!(&err, IdentityError::Malformed(m) if m.contains("exactly one signer")),
        "{err}"
    );

    let mut zero = der::split(&decode(&a.sign_body(BODY)));
    zero.signer_infos.clear();
    let err = verify_mdm_signature(&encode(&der::join(&zero)), BODY).unwrap_err();
    assert!(matches!(err, IdentityError::Malformed(_)), "{err}");

    // No certificate at all: the signer cannot be found.
    let mut nocert = pa;
    nocert.certs.clear();
    let err = verify_mdm_signature(&encode(&der::join(&nocert)), BODY).unwrap_err();
    assert!(matches!(err, IdentityError::Malformed(_)), "{err}");
}

#[test]
fn attached_content_refused() {
    let mac = shared_ca().issue_device_identity("mac-attached");
    let p7 = Pkcs7::sign(
        &mac.cert,
        &mac.key,
        &Stack::new().unwrap(),
        BODY,
        Pkcs7Flags::BINARY,
    )
    .unwrap();
    let header = encode(&p7.to_der().unwrap());
    assert!(verify_mdm_signature(&header, BODY).is_err());
}

#[test]
fn chain_through_intermediate() {
    let root = TestCa::new("Russet Root");
    let issuing = root.issue_intermediate("Russet SCEP CA");
    let mac = issuing.issue_device_identity("mac-chain");
    let cert = mac.device_certificate();

    let mut bundle = root.cert_pem();
    bundle.extend(issuing.cert_pem());
    DeviceTrust::from_pem(&bundle)
        .unwrap()
        .verify(&cert)
        .expect("root + intermediate bundle");
    DeviceTrust::from_pem(&issuing.cert_pem())
        .unwrap()
        .verify(&cert)
        .expect("the issuing CA alone is a trust anchor");
    let err = DeviceTrust::from_pem(&root.cert_pem())
        .unwrap()
        .verify(&cert)
        .unwrap_err();
    assert!(
        matches!(&err, IdentityError::Untrusted(m) if m.contains("unknown CA")),
        "intermediate not configured: {err}"
    );
}

#[test]
fn unknown_ca_refused() {
    let other = TestCa::new("Someone Else's CA");
    let mac = other.issue_device_identity("mac-stranger");
    let header = mac.sign_body(BODY);
    let cert = verify_mdm_signature(&header, BODY).expect("signature itself is fine");
    let err = trust_for(shared_ca()).verify(&cert).unwrap_err();
    assert!(
        matches!(&err, IdentityError::Untrusted(m) if m.contains("unknown CA")),
        "{err}"
    );
    // The real Mac fixture was issued by a CA we do not have.
    let real = verify_mdm_signature(FIXTURE_HEADER2, FIXTURE_BODY2).unwrap();
    assert!(matches!(
        trust_for(shared_ca()).verify(&real),
        Err(IdentityError::Untrusted(_))
    ));
    // A self-signed "device" certificate is refused too (the CA's own cert is not a device).
    let self_signed = DeviceCertificate::from_x509(&other.cert).unwrap();
    assert!(matches!(
        trust_for(shared_ca()).verify(&self_signed),
        Err(IdentityError::Untrusted(_))
    ));
}

#[test]
fn expired_and_not_yet_valid_refused() {
    let ca = shared_ca();
    let trust = trust_for(ca);
    let expired = ca.issue_with(
        "mac-old",
        IssueOptions {
            validity: TestValidity::Expired,
            ..IssueOptions::default()
        },
    );
    // The signature check does not look at time; the trust check does.
    let cert = verify_mdm_signature(&expired.sign_body(BODY), BODY).unwrap();
    assert!(matches!(trust.verify(&cert), Err(IdentityError::Expired)));

    let future = ca.issue_with(
        "mac-future",
        IssueOptions {
            validity: TestValidity::NotYetValid,
            ..IssueOptions::default()
        },
    );
    let err = trust.verify(&future.device_certificate()).unwrap_err();
    assert!(
        matches!(&err, IdentityError::Untrusted(m) if m.contains("not yet valid")),
        "{err}"
    );
}

#[test]
fn server_auth_only_refused_but_no_eku_allowed() {
    let ca = shared_ca();
    let trust = trust_for(ca);
    let server = ca.issue_with(
        "not-a-mac",
        IssueOptions {
            eku: TestEku::ServerAuthOnly,
            ..IssueOptions::default()
        },
    );
    let err = trust.verify(&server.device_certificate()).unwrap_err();
    assert!(matches!(err, IdentityError::NotClientAuth), "{err}");
    assert!(err.to_string().contains("client authentication"));

    let any_use = ca.issue_with(
        "mac-no-eku",
        IssueOptions {
            eku: TestEku::Absent,
            ..IssueOptions::default()
        },
    );
    trust
        .verify(&any_use.device_certificate())
        .expect("no EKU means any use");
}

#[test]
fn client_cert_header_forms_agree() {
    let mac = shared_ca().issue_device_identity("mac-proxy");
    let escaped = mac.escaped_pem_header();
    assert!(
        escaped.starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
        "{escaped}"
    );
    let pem = String::from_utf8(mac.cert_pem()).unwrap();
    let forms = [
        mac.rfc9440_header(),
        format!("  {}\t", mac.rfc9440_header()),
        escaped,
        pem.clone(),
        pem.replace('\n', "\r\n"),
    ];
    let signed = verify_mdm_signature(&mac.sign_body(BODY), BODY).unwrap();
    for form in &forms {
        let cert = parse_client_cert_header(form).unwrap_or_else(|e| panic!("{form:?}: {e}"));
        assert_eq!(cert.sha256_hex, mac.sha256_hex());
        assert_eq!(cert, signed);
    }
    trust_for(shared_ca())
        .verify(&parse_client_cert_header(&forms[2]).unwrap())
        .unwrap();
}

#[test]
fn client_cert_header_garbage_refused() {
    let ca = shared_ca();
    let a = ca.issue_device_identity("mac-g1");
    let b = ca.issue_device_identity("mac-g2");
    let mut two = a.cert_pem();
    two.extend(b.cert_pem());
    let two = String::from_utf8(two).unwrap();
    let key_only = String::from_utf8(a.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let mut der_trailing = a.cert_der();
    der_trailing.extend_from_slice(b"\0junk");
    let cases = [
        String::new(),
        "   ".into(),
        ":".into(),
        "::".into(),
        ":!!!:".into(),
        ":AAAA:".into(),
        format!(":{}:", STANDARD.encode(&der_trailing)),
        format!(":{}", STANDARD.encode(a.cert_der())),
        STANDARD.encode(a.cert_der()),
        two,
        key_only,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        "%2D%2D%2D%2D%2DBEGIN%20CERTIFICATE%2D%2D%2D%2D%2D%0A%ZZ".into(),
        "%FF%FE%00".into(),
        "-----BEGIN%20CERTIFICATE".into(),
    ];
    for case in &cases {
        let r = parse_client_cert_header(case);
        assert!(r.is_err(), "{case:?} accepted");
    }
    let huge = format!(":{}:", "A".repeat(200_000));
    assert!(matches!(
        parse_client_cert_header(&huge),
        Err(IdentityError::TooLarge { .. })
    ));
}

#[test]
fn mdm_signature_garbage_refused() {
    let mac = shared_ca().issue_device_identity("mac-garbage");
    let cert_only = encode(&mac.cert_der());
    let cases = [
        String::new(),
        " \r\n\t".into(),
        "!!!!".into(),
        "AAAA".into(),
        "A".into(),
        encode(b"hello world"),
        cert_only,
        encode(&[0x30, 0x80]),
        encode(&[0x30, 0x80, 0x00, 0x00]),
        encode(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
        // ContentInfo{data} instead of signedData.
        encode(&der::tlv(
            0x30,
            &[
                der::tlv(
                    0x06,
                    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01],
                ),
                der::tlv(0xa0, &der::tlv(0x04, b"x")),
            ]
            .concat(),
        )),
        "A".repeat(200_000),
    ];
    for case in &cases {
        let r = verify_mdm_signature(case, BODY);
        assert!(r.is_err(), "{:?} accepted", &case[..case.len().min(40)]);
    }
}

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let mac = shared_ca().issue_device_identity("mac-fuzz");
    let header = mac.sign_body(BODY);
    let der = decode(&header);
    let original = mac.sha256_hex();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);

    // Every prefix of the header and of its DER. Only a prefix that drops nothing but base64
    // padding can still be the same signature.
    for n in 0..header.len() {
        if let Ok(c) = verify_mdm_signature(&header[..n], BODY) {
            assert_eq!(c.sha256_hex, original);
            assert!(header[n..].bytes().all(|b| b == b'='));
        }
    }
    for n in 0..der.len() {
        assert!(
            verify_mdm_signature(&encode(&der[..n]), BODY).is_err(),
            "DER prefix {n}"
        );
    }
    // Every byte of the DER flipped: must not panic; the signature itself must never pass
    // with a changed signerInfo.
    let sig_start = der.len() - 256;
    for i in 0..der.len() {
        let mut d = der.clone();
        d[i] ^= 1 << (noise.next() % 8);
        let r = verify_mdm_signature(&encode(&d), BODY);
        if i >= sig_start {
            assert!(r.is_err(), "flipped signature byte {i} accepted");
        }
    }
    // Random bytes, raw and as base64; random byte splices into the real structure.
    for round in 0..2000 {
        let len = (noise.next() % 3000) as usize;
        let junk = noise.bytes(len);
        assert!(verify_mdm_signature(&encode(&junk), BODY).is_err());
        let text = String::from_utf8_lossy(&junk);
        assert!(verify_mdm_signature(&text, BODY).is_err());
        let _ = parse_client_cert_header(&text);
        let _ = parse_client_cert_header(&format!(":{}:", encode(&junk)));
        let _ = DeviceCertificate::from_der(&junk);
        if round % 4 == 0 {
            let mut d = der.clone();
            let at = (noise.next() as usize) % d.len();
            let n = ((noise.next() % 16) as usize).min(d.len() - at);
            d[at..at + n].copy_from_slice(&noise.bytes(n));
            let _ = verify_mdm_signature(&encode(&d), BODY);
        }
    }
    // Truncated forwarded-certificate headers: only an unchanged certificate may come out.
    for h in [mac.rfc9440_header(), mac.escaped_pem_header()] {
        for n in 0..h.len() {
            if let Ok(c) = parse_client_cert_header(&h[..n]) {
                assert_eq!(c.sha256_hex, original, "prefix {n} of {h:?}");
            }
        }
    }
    // Truncated fixture.
    for n in 0..FIXTURE_HEADER2.len() {
        let _ = verify_mdm_signature(&FIXTURE_HEADER2[..n], FIXTURE_BODY2);
    }
}

#[test]
fn trust_bundle_management() {
    let ca1 = TestCa::new("CA one");
    let ca2 = TestCa::new("CA two");
    let m1 = ca1.issue_device_identity("mac-ca1").device_certificate();
    let m2 = ca2.issue_device_identity("mac-ca2").device_certificate();

    let mut trust = DeviceTrust::from_pem(&ca1.cert_pem()).unwrap();
    let before = trust.clone();
    trust.verify(&m1).unwrap();
    assert!(trust.verify(&m2).is_err());
    trust.add_pem(&ca2.cert_pem()).unwrap();
    trust.verify(&m2).unwrap();
    trust.verify(&m1).unwrap();
    assert_eq!(trust.cas().len(), 2);
    // Documented: clones taken before keep their configuration.
    assert!(before.verify(&m2).is_err());

    let mut by_der = DeviceTrust::from_pem(&ca1.cert_pem()).unwrap();
    by_der.add_der(&ca2.cert.to_der().unwrap()).unwrap();
    by_der.verify(&m2).unwrap();
    let mut by_x509 = DeviceTrust::from_pem(&ca1.cert_pem()).unwrap();
    by_x509.add_x509(ca2.cert.clone()).unwrap();
    by_x509.verify(&m2).unwrap();
    // The same CA twice (two overlapping bundles) is fine.
    by_x509.add_pem(&ca2.cert_pem()).unwrap();
    by_x509.verify(&m2).unwrap();

    for bad in [
        &b""[..],
        b"not pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        assert!(matches!(
            DeviceTrust::from_pem(bad),
            Err(IdentityError::BadTrustAnchor(_))
        ));
    }
    assert!(trust.add_der(b"\x30\x03\x02\x01\x00").is_err());
    // A leaf is not a CA: as an anchor it would vouch for itself.
    let leaf_pem = ca1.issue_device_identity("leaf").cert_pem();
    assert!(matches!(
        DeviceTrust::from_pem(&leaf_pem),
        Err(IdentityError::BadTrustAnchor(_))
    ));
    // A failed add leaves the trust unchanged.
    assert!(trust.add_pem(&leaf_pem).is_err());
    assert_eq!(trust.cas().len(), 2);
}

#[test]
fn trust_is_shared_across_threads() {
    let ca = shared_ca();
    let trust = trust_for(ca);
    let good = ca.issue_device_identity("mac-thread").device_certificate();
    let bad = TestCa::new("Stranger")
        .issue_device_identity("mac-stranger2")
        .device_certificate();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..100 {
                    trust.verify(&good).unwrap();
                    assert!(trust.verify(&bad).is_err());
                }
            });
        }
    });
}
