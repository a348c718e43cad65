//! The CMS a stranger can send before anything else is checked: the `Mdm-Signature` header
//! (both verifiers), a proxy-forwarded client certificate, a SCEP PKIOperation body, and the
//! signed MachineInfo of an ADE Mac. Properties: no panic, bounded time and heap; the fast
//! `Mdm-Signature` path never accepts what OpenSSL refuses, nor names another signer; a
//! signature never verifies over a body it was not made for.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use proptest::prelude::*;
use russet_certs::ca::CertificateAuthority;
use russet_certs::identity::verify_mdm_signature_fast_path_only;
use russet_certs::machine_info::MachineInfoTrust;
use russet_certs::scep::client::{ClientOptions, build_pkcs_req};
use russet_certs::scep::{ContentCipher, ScepDigest, decrypt_csr, parse_pki_message};
use russet_certs::testing::{DeviceIdentity, TestCa};
use russet_certs::{
    DeviceCertificate, DeviceTrust, parse_client_cert_header, verify_mdm_signature,
    verify_mdm_signature_fast,
};

use crate::device::MACHINE_INFO;
use crate::engine::{CI_CASES, bounded, config, mutated, mutated_text};

/// DER/BER words: indefinite lengths, end-of-contents, long and overlong length forms, the
/// tags CMS is made of.
const DER_TOKENS: &[&[u8]] = &[
    &[0x30, 0x80],
    &[0x00, 0x00],
    &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
    &[0x30, 0x81, 0x00],
    &[0x30, 0x82, 0x00, 0x01],
    &[0x02, 0x01, 0x00],
    &[0x02, 0x81, 0x80],
    &[0x04, 0x00],
    &[0x04, 0x80],
    &[0x24, 0x80, 0x04, 0x01, 0x41, 0x00, 0x00],
    &[0x05, 0x00],
    &[0xa0, 0x80],
    &[0xa0, 0x00],
    &[0x31, 0x00],
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ],
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ],
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ],
    &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a],
    &[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f],
];

const HEADER_TOKENS: &[&[u8]] = &[
    b":",
    b"%0A",
    b"%2B",
    b"-----BEGIN CERTIFICATE-----",
    b"-----END CERTIFICATE-----",
    b"\n",
    b"=",
    b"MIIB",
    b"====",
];

pub struct Keys {
    pub ca: TestCa,
    pub device: DeviceIdentity,
    scep_ca: CertificateAuthority,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ca = TestCa::new("Hostile Input CA");
        let device = ca.issue_device_identity("hostile-input-mac");
        let scep_ca =
            CertificateAuthority::generate("Hostile Input SCEP CA", "Russet").expect("SCEP CA");
        Keys {
            ca,
            device,
            scep_ca,
        }
    })
}

/// The body every generated signature covers (the real Idle report fixture).
pub const BODY: &[u8] = include_bytes!("../../../certs/testdata/mdm-signature/body2.plist");

fn signature_seeds() -> Vec<Vec<u8>> {
    let decode = |b64: &str| {
        STANDARD
            .decode(b64.split_whitespace().collect::<String>())
            .expect("fixture is base64")
    };
    let k = keys();
    vec![
        // A real Mac's BER, SHA-1, over BODY; and a second real one (parse-only).
        decode(include_str!(
            "../../../certs/testdata/mdm-signature/header2-ber-sha1.b64"
        )),
        decode(include_str!(
            "../../../certs/testdata/mdm-signature/header1-ber-sha1.b64"
        )),
        // DER from OpenSSL without and with signed attributes.
        decode(&k.device.sign_body(BODY)),
        decode(&k.device.sign_body_with_attributes(BODY)),
    ]
}

proptest! {
    #![proptest_config(config(CI_CASES))]

    /// A mutated signature over the right body: the fast path accepts only what OpenSSL
    /// accepts, with the same signer.
    #[test]
    fn mdm_signature_fast_path_agrees_with_openssl(der in mutated(signature_seeds(), DER_TOKENS)) {
        let header = STANDARD.encode(&der[..]);
        let n = der.len();
        let fast_only = bounded("fast CMS path", n, || verify_mdm_signature_fast_path_only(&header, BODY));
        let openssl = bounded("OpenSSL CMS path", n, || verify_mdm_signature(&header, BODY));
        let served = bounded("verify_mdm_signature_fast", n, || verify_mdm_signature_fast(&header, BODY));
        // Whenever OpenSSL can read the signer's certificate, the fast path accepts only what
        // OpenSSL accepts, with the same signer. A certificate OpenSSL cannot read (the fast
        // path does not validate every string in it) is refused by the chain check, which
        // parses it with OpenSSL before anything trusts it: see `regressions.rs`.
        if let Some(signer) = &fast_only
            && DeviceCertificate::from_der(&signer.der).is_ok()
        {
            let reference = openssl.as_ref().map_err(|e| e.to_string());
            prop_assert!(reference.is_ok(), "fast path accepted what OpenSSL refuses: {reference:?}");
            prop_assert_eq!(&signer.der, &reference.expect("checked").der);
        }
        // The request path's decision (signature, then the chain check) is the same either way.
        prop_assert_eq!(
            trusted_signer(served.ok().map(|s| s.der)),
            trusted_signer(openssl.ok().map(|c| c.der)),
        );
    }

    /// A valid signature over a changed body: refused by both paths.
    #[test]
    fn mdm_signature_never_covers_another_body(
        seed in 0usize..4,
        body in mutated(vec![BODY.to_vec()], crate::device::PLIST_TOKENS),
    ) {
        prop_assume!(&body[..] != BODY);
        let header = STANDARD.encode(&signature_seeds()[seed]);
        prop_assert!(verify_mdm_signature(&header, &body).is_err());
        prop_assert!(verify_mdm_signature_fast(&header, &body).is_err());
    }

    /// The header text itself (base64 framing, whitespace, size) and the forwarded-certificate
    /// header of a TLS-terminating proxy.
    #[test]
    fn mdm_signature_and_client_cert_headers(text in mutated_text(&header_seeds(), HEADER_TOKENS)) {
        bounded("Mdm-Signature header", text.len(), || {
            let _ = verify_mdm_signature_fast(&text, BODY);
        });
        let parsed = bounded("client certificate header", text.len(), || parse_client_cert_header(&text));
        if let Ok(cert) = parsed {
            prop_assert_eq!(cert.sha256_hex.len(), 64);
        }
    }

    /// A SCEP PKIOperation body: parsed, and decrypted with the CA's key when it parses.
    #[test]
    fn scep_pki_operation(der in mutated(scep_seeds(), DER_TOKENS)) {
        let n = der.len();
        let parsed = bounded("parse_pki_message", n, || parse_pki_message(&der));
        if let Ok(msg) = parsed {
            bounded("decrypt_csr", n, || {
                let _ = decrypt_csr(&keys().scep_ca, &msg);
            });
        }
    }

    /// The signed MachineInfo an ADE Mac posts: signature and chain, then the content.
    #[test]
    fn machine_info_signed(der in mutated(machine_info_signed_seeds(), DER_TOKENS)) {
        let trust = MachineInfoTrust::from_pem(&keys().ca.cert_pem()).expect("anchor");
        let verified = bounded("MachineInfoTrust::verify", der.len(), || trust.verify(&der));
        if let Ok(signed) = verified {
            bounded("decode_machine_info", signed.content.len(), || {
                let _ = russet_mdm::protocol::machine_info::decode_machine_info(&signed.content);
            });
        }
    }
}

/// What the device listener does after the signature: parse the signer with OpenSSL and check
/// its chain (`http/identity.rs`, `check_trust`). The signer's DER when it is trusted.
pub fn trusted_signer(der: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let trust = DeviceTrust::from_pem(&keys().ca.cert_pem()).expect("trust");
    let cert = DeviceCertificate::from_der(&der?).ok()?;
    trust.verify(&cert).ok().map(|()| cert.der)
}

fn header_seeds() -> Vec<&'static str> {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    let seeds = SEEDS.get_or_init(|| {
        let d = &keys().device;
        vec![
            include_str!("../../../certs/testdata/mdm-signature/header2-ber-sha1.b64").to_owned(),
            d.rfc9440_header(),
            d.escaped_pem_header(),
            String::from_utf8(d.cert_pem()).expect("PEM is text"),
        ]
    });
    seeds.iter().map(String::as_str).collect()
}

fn scep_seeds() -> Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS
        .get_or_init(|| {
            let ca = &keys().scep_ca;
            let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
            let mut seeds = vec![
                include_bytes!("../../../certs/testdata/scep/mdmclient-PKIOperation.der").to_vec(),
            ];
            for (digest, cipher) in [
                (ScepDigest::Sha512, ContentCipher::Des3),
                (ScepDigest::Sha256, ContentCipher::Aes128),
            ] {
                let opts = ClientOptions {
                    digest,
                    cipher,
                    ..ClientOptions::default()
                };
                let req =
                    build_pkcs_req(ca.cert(), &key, "hostile", Some("pw"), opts).expect("PKCSReq");
                seeds.push(req.der);
            }
            seeds
        })
        .clone()
}

fn machine_info_signed_seeds() -> Vec<Vec<u8>> {
    vec![keys().device.sign_attached(MACHINE_INFO)]
}
