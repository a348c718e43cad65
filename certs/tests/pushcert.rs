//! The MDM push certificate request: a customer CSR, signed by the MDM vendor the way Apple's
//! Push Certificates Portal expects (Apple, Device Management: Setting up push notifications for
//! your MDM customers), checked independently with the `openssl` command-line tool.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509Req};
use russet_certs::pushcert::{
    PushCertError, PushCsrSubject, certificate_topic, check_csr, generate_push_csr, load_pem_certs,
    parse_csr, parse_vendor_request, public_key_matches, vendor_sign,
};

/// A fake Apple PKI: "Apple Root CA" → "WWDR" intermediate → vendor "MDM CSR" certificate.
struct VendorPki {
    root: X509,
    wwdr: X509,
    vendor: X509,
    vendor_key: PKey<Private>,
}

fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).expect("rsa")).expect("pkey")
}

fn cert(
    subject: &[(Nid, &str)],
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    ca: bool,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    for (nid, value) in subject {
        name.append_entry_by_nid(*nid, value).expect("entry");
    }
    let name = name.build();
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("version");
    let mut serial = BigNum::new().expect("bn");
    serial
        .rand(64, MsbOption::MAYBE_ZERO, false)
        .expect("serial");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    match issuer {
        Some((issuer_cert, _)) => b.set_issuer_name(issuer_cert.subject_name()),
        None => b.set_issuer_name(&name),
    }
    .expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(365).expect("time"))
        .expect("na");
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
            .expect("bc");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .expect("ku"),
        )
        .expect("ku");
    } else {
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .expect("ku"),
        )
        .expect("ku");
    }
    let signing_key = issuer.map_or(key, |(_, k)| k);
    b.sign(signing_key, MessageDigest::sha256()).expect("sign");
    b.build()
}

fn vendor_pki() -> VendorPki {
    let root_key = rsa_key(2048);
    let root = cert(
        &[
            (Nid::COUNTRYNAME, "US"),
            (Nid::ORGANIZATIONNAME, "Apple Inc. (fake)"),
            (Nid::COMMONNAME, "Apple Root CA"),
        ],
        &root_key,
        None,
        true,
    );
    let wwdr_key = rsa_key(2048);
    let wwdr = cert(
        &[
            (Nid::ORGANIZATIONNAME, "Apple Inc. (fake)"),
            (
                Nid::COMMONNAME,
                "Apple Worldwide Developer Relations Certification Authority",
            ),
        ],
        &wwdr_key,
        Some((&root, &root_key)),
        true,
    );
    let vendor_key = rsa_key(2048);
    let vendor = cert(
        &[
            (Nid::USERID, "com.apple.mgmt.External.Vendor"),
            (Nid::COMMONNAME, "MDM CSR: Russet Test Vendor"),
            (Nid::ORGANIZATIONNAME, "Russet Test Vendor"),
        ],
        &vendor_key,
        Some((&wwdr, &wwdr_key)),
        false,
    );
    VendorPki {
        root,
        wwdr,
        vendor,
        vendor_key,
    }
}

fn customer_subject() -> PushCsrSubject {
    PushCsrSubject {
        common_name: "Example School".into(),
        email: Some("it@example.org".into()),
        country: Some("nl".into()),
    }
}

/// A CSR built by hand, for keys `generate_push_csr` would never make.
fn csr_with_key(key: &PKey<Private>) -> X509Req {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, "weak")
        .expect("cn");
    let name = name.build();
    let mut req = X509Req::builder().expect("req");
    req.set_version(0).expect("version");
    req.set_subject_name(&name).expect("subject");
    req.set_pubkey(key).expect("pubkey");
    req.sign(key, MessageDigest::sha256()).expect("sign");
    req.build()
}

/// A fresh directory under Cargo's per-target temp dir.
fn temp_dir(label: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "pushcert-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command-line tool is installed")
}

/// The plist's `<key>`/`<string>` pairs, read without the crate's parser. The values Russet
/// writes need no XML unescaping (base64 and PEM have no `&`, `<`, `>`).
fn plist_pairs(xml: &str) -> Vec<(String, String)> {
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(xml.contains("<plist version=\"1.0\">"));
    let mut pairs = Vec::new();
    for chunk in xml.split("<key>").skip(1) {
        let (key, rest) = chunk.split_once("</key>").expect("</key>");
        let rest = rest.trim_start();
        let value = rest
            .strip_prefix("<string>")
            .and_then(|r| r.split_once("</string>"))
            .map(|(v, _)| v)
            .expect("<string> value");
        pairs.push((key.to_string(), value.to_string()));
    }
    pairs
}

#[test]
fn a_generated_push_csr_is_rsa_2048_with_the_keychain_style_subject() {
    let (key, csr) = generate_push_csr(&customer_subject()).expect("csr");
    let summary = check_csr(&csr).expect("acceptable");
    assert_eq!(summary.key_bits, 2048);
    assert_eq!(key.bits(), 2048);
    assert_eq!(
        summary.subject,
        "C=NL, CN=Example School, emailAddress=it@example.org"
    );
    assert!(csr.public_key().expect("pub").public_eq(&key));
    assert_eq!(csr.version(), 0);

    // PEM and DER of the same request read back identically.
    let der = csr.to_der().expect("der");
    assert_eq!(parse_csr(&der).expect("der").to_der().expect("der"), der);
    let pem = csr.to_pem().expect("pem");
    assert_eq!(parse_csr(&pem).expect("pem").to_der().expect("der"), der);
}

#[test]
fn a_csr_made_by_the_openssl_tool_is_accepted() {
    let dir = temp_dir("cli-csr");
    let out = openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "csr.pem",
            "-subj",
            "/C=US/CN=Keychain Style/emailAddress=admin@example.com",
        ],
        &dir,
    );
    assert!(out.status.success(), "{out:?}");
    let pem = std::fs::read(dir.join("csr.pem")).expect("csr");
    let summary = check_csr(&parse_csr(&pem).expect("parse")).expect("acceptable");
    assert_eq!(summary.key_bits, 2048);
    assert_eq!(
        summary.subject,
        "C=US, CN=Keychain Style, emailAddress=admin@example.com"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_csr_with_a_1024_bit_key_is_refused() {
    let csr = csr_with_key(&rsa_key(1024));
    let err = check_csr(&csr).expect_err("weak key");
    assert!(
        matches!(
            err,
            PushCertError::WeakKey {
                bits: 1024,
                min: 2048
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("1024"));

    // vendor_sign runs the same check first.
    let pki = vendor_pki();
    let err = vendor_sign(
        &csr.to_der().expect("der"),
        &pki.vendor,
        &pki.vendor_key,
        &[pki.wwdr.clone(), pki.root.clone()],
    )
    .expect_err("weak key");
    assert!(matches!(err, PushCertError::WeakKey { .. }), "{err}");
}

#[test]
fn a_csr_with_an_ec_key_is_refused() {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("ec")).expect("pkey");
    let err = check_csr(&csr_with_key(&key)).expect_err("ec");
    assert!(matches!(err, PushCertError::NotRsa(_)), "{err}");
    assert!(err.to_string().contains("EC"), "{err}");
}

#[test]
fn a_csr_whose_self_signature_is_broken_is_refused() {
    let (_, csr) = generate_push_csr(&customer_subject()).expect("csr");
    let mut der = csr.to_der().expect("der");
    // The signature BIT STRING is the last 256 bytes of the DER.
    let i = der.len() - 10;
    der[i] ^= 0x01;
    let tampered = parse_csr(&der).expect("still well-formed DER");
    let err = check_csr(&tampered).expect_err("bad signature");
    assert!(matches!(err, PushCertError::BadCsrSignature), "{err}");

    let pki = vendor_pki();
    let err = vendor_sign(&der, &pki.vendor, &pki.vendor_key, &[]).expect_err("bad signature");
    assert!(matches!(err, PushCertError::BadCsrSignature), "{err}");
}

#[test]
fn garbage_is_not_a_csr() {
    let pki = vendor_pki();
    let cert_pem = pki.vendor.to_pem().expect("pem");
    let cert_der = pki.vendor.to_der().expect("der");
    let (_, csr) = generate_push_csr(&customer_subject()).expect("csr");
    let truncated = csr.to_der().expect("der")[..100].to_vec();
    let oversized = vec![0x30; 100 * 1024];
    let bad_pem =
        b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n";
    let inputs: [&[u8]; 8] = [
        b"",
        b"   \n",
        b"hello, world",
        bad_pem,
        &cert_pem,
        &cert_der,
        &truncated,
        &oversized,
    ];
    for input in inputs {
        let err = parse_csr(input).err().expect("garbage is refused");
        assert!(matches!(err, PushCertError::NotACsr(_)), "{err}");
        let err = vendor_sign(input, &pki.vendor, &pki.vendor_key, &[]).expect_err("garbage");
        assert!(matches!(err, PushCertError::NotACsr(_)), "{err}");
    }
}

#[test]
fn the_vendor_signed_request_verifies_with_the_openssl_tool() {
    let pki = vendor_pki();
    let (_, csr) = generate_push_csr(&customer_subject()).expect("csr");
    let csr_pem = csr.to_pem().expect("pem");
    let signed = vendor_sign(
        &csr_pem,
        &pki.vendor,
        &pki.vendor_key,
        &[pki.wwdr.clone(), pki.root.clone()],
    )
    .expect("signed");

    // The upload file is one line of base64 of the XML plist.
    assert!(!signed.upload_file.contains(['\n', '\r']));
    let xml = STANDARD.decode(&signed.upload_file).expect("base64");
    let xml = String::from_utf8(xml).expect("utf-8");
    assert_eq!(xml, signed.plist_xml);

    let pairs = plist_pairs(&xml);
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "PushCertRequestCSR",
            "PushCertCertificateChain",
            "PushCertSignature"
        ]
    );
    let csr_b64 = &pairs[0].1;
    let chain_pem = &pairs[1].1;
    let sig_b64 = &pairs[2].1;

    // The CSR is base64 DER without PEM armour, and is the customer's request byte for byte.
    assert!(!csr_b64.contains("-----"));
    let csr_der = STANDARD.decode(csr_b64).expect("csr base64");
    assert_eq!(csr_der, csr.to_der().expect("der"));
    let signature = STANDARD.decode(sig_b64).expect("signature base64");
    assert_eq!(signature.len(), 256);

    let dir = temp_dir("verify");
    std::fs::write(dir.join("csr.der"), &csr_der).expect("write");
    std::fs::write(dir.join("sig.bin"), &signature).expect("write");
    std::fs::write(
        dir.join("vendor_pub.pem"),
        pki.vendor
            .public_key()
            .expect("pub")
            .public_key_to_pem()
            .expect("pem"),
    )
    .expect("write");

    let out = openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "vendor_pub.pem",
            "-signature",
            "sig.bin",
            "csr.der",
        ],
        &dir,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");

    // A SHA-1 verification of the same signature must fail: Apple's current format is SHA-256.
    let out = openssl(
        &[
            "dgst",
            "-sha1",
            "-verify",
            "vendor_pub.pem",
            "-signature",
            "sig.bin",
            "csr.der",
        ],
        &dir,
    );
    assert!(!out.status.success(), "{out:?}");

    let out = openssl(
        &[
            "req", "-inform", "DER", "-in", "csr.der", "-noout", "-verify",
        ],
        &dir,
    );
    assert!(out.status.success(), "{out:?}");

    // The chain as the tool sees it: vendor, WWDR, root, and the vendor chains to the root.
    std::fs::write(dir.join("chain.pem"), chain_pem).expect("write");
    std::fs::write(dir.join("root.pem"), pki.root.to_pem().expect("pem")).expect("write");
    std::fs::write(dir.join("wwdr.pem"), pki.wwdr.to_pem().expect("pem")).expect("write");
    std::fs::write(dir.join("vendor.pem"), pki.vendor.to_pem().expect("pem")).expect("write");
    let out = openssl(
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "wwdr.pem",
            "vendor.pem",
        ],
        &dir,
    );
    assert!(out.status.success(), "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_chain_is_the_vendor_certificate_then_the_given_chain_in_order() {
    let pki = vendor_pki();
    let (_, csr) = generate_push_csr(&customer_subject()).expect("csr");
    let signed = vendor_sign(
        &csr.to_der().expect("der"),
        &pki.vendor,
        &pki.vendor_key,
        &[pki.wwdr.clone(), pki.root.clone()],
    )
    .expect("signed");
    let chain_pem = plist_pairs(&signed.plist_xml)
        .into_iter()
        .find(|(k, _)| k == "PushCertCertificateChain")
        .map(|(_, v)| v)
        .expect("chain");

    assert!(chain_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert_eq!(chain_pem.matches("-----BEGIN CERTIFICATE-----").count(), 3);
    assert!(chain_pem.lines().all(|l| l.len() <= 64), "64-char lines");
    let expected: String = [&pki.vendor, &pki.wwdr, &pki.root]
        .iter()
        .map(|c| String::from_utf8(c.to_pem().expect("pem")).expect("utf-8"))
        .collect();
    assert_eq!(chain_pem, expected);

    let certs = load_pem_certs(chain_pem.as_bytes()).expect("chain");
    let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().expect("der")).collect();
    let want: Vec<Vec<u8>> = [&pki.vendor, &pki.wwdr, &pki.root]
        .iter()
        .map(|c| c.to_der().expect("der"))
        .collect();
    assert_eq!(ders, want);
}

#[test]
fn parse_vendor_request_reads_back_what_vendor_sign_wrote() {
    let pki = vendor_pki();
    let (_, csr) = generate_push_csr(&customer_subject()).expect("csr");
    let signed = vendor_sign(
        &csr.to_pem().expect("pem"),
        &pki.vendor,
        &pki.vendor_key,
        &[pki.wwdr.clone(), pki.root.clone()],
    )
    .expect("signed");

    let parsed = parse_vendor_request(&signed.upload_file).expect("parse");
    assert_eq!(parsed.csr_der, csr.to_der().expect("der"));
    assert_eq!(parsed.chain().expect("chain").len(), 3);
    let vendor = parsed.verify_signature().expect("signature verifies");
    assert_eq!(
        vendor.to_der().expect("der"),
        pki.vendor.to_der().expect("der")
    );

    // Line-wrapped base64 (as some tools write it) is accepted too.
    let wrapped: String = signed
        .upload_file
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", std::str::from_utf8(c).expect("ascii")))
        .collect();
    assert_eq!(parse_vendor_request(&wrapped).expect("wrapped"), parsed);

    // A tampered signature no longer verifies.
    let mut tampered = parsed.clone();
    tampered.signature[0] ^= 0x80;
    assert!(tampered.verify_signature().is_err());
}

#[test]
fn upload_files_that_are_not_push_requests_are_refused() {
    let missing_sig = STANDARD.encode(
        "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>\
         <key>PushCertRequestCSR</key><string>AAAA</string>\
         <key>PushCertCertificateChain</key><string>x</string></dict></plist>",
    );
    let twice = STANDARD.encode(
        "<plist version=\"1.0\"><dict>\
         <key>PushCertRequestCSR</key><string>AAAA</string>\
         <key>PushCertRequestCSR</key><string>AAAA</string>\
         <key>PushCertCertificateChain</key><string>x</string>\
         <key>PushCertSignature</key><string>AAAA</string></dict></plist>",
    );
    for input in [
        String::new(),
        "not base64 !!".to_string(),
        STANDARD.encode("just text"),
        STANDARD.encode([0xff, 0xfe, 0x00]),
        missing_sig,
        twice,
    ] {
        let err = parse_vendor_request(&input).expect_err("refused");
        assert!(matches!(err, PushCertError::InvalidRequest(_)), "{err}");
    }
}

#[test]
fn a_vendor_key_that_does_not_match_the_vendor_certificate_is_refused() {
    let pki = vendor_pki();
    let other_key = rsa_key(2048);
    assert!(public_key_matches(&pki.vendor, &pki.vendor_key));
    assert!(!public_key_matches(&pki.vendor, &other_key));

    let (_, csr) = generate_push_csr(&customer_subject()).expect("csr");
    let err = vendor_sign(
        &csr.to_der().expect("der"),
        &pki.vendor,
        &other_key,
        &[pki.wwdr.clone(), pki.root.clone()],
    )
    .expect_err("mismatch");
    assert!(matches!(err, PushCertError::VendorKeyMismatch), "{err}");
}

#[test]
fn the_topic_is_the_subject_uid() {
    let pki = vendor_pki();
    let key = rsa_key(2048);
    let topic = "com.apple.mgmt.External.e0bd1eac-1e4d-4f3c-9a36-7a5b1f0e2c11";
    let push_cert = cert(
        &[
            (Nid::USERID, topic),
            (Nid::COMMONNAME, "APSP:e0bd1eac-1e4d-4f3c-9a36-7a5b1f0e2c11"),
            (Nid::COUNTRYNAME, "US"),
        ],
        &key,
        None,
        false,
    );
    assert_eq!(certificate_topic(&push_cert).as_deref(), Some(topic));
    assert_eq!(certificate_topic(&pki.root), None);
}

#[test]
fn load_pem_certs_reads_a_bundle_and_refuses_garbage() {
    let pki = vendor_pki();
    let mut bundle = pki.wwdr.to_pem().expect("pem");
    bundle.extend(pki.root.to_pem().expect("pem"));
    let certs = load_pem_certs(&bundle).expect("bundle");
    assert_eq!(certs.len(), 2);
    assert_eq!(
        certs[0].to_der().expect("der"),
        pki.wwdr.to_der().expect("der")
    );

    for input in [&b""[..], b"garbage", &pki.root.to_der().expect("der")] {
        let err = load_pem_certs(input).expect_err("garbage");
        assert!(matches!(err, PushCertError::InvalidCertificate(_)), "{err}");
    }
}
