//! Hostile input: every SCEP entry point returns an error instead of panicking.

use std::sync::OnceLock;

use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use russet_certs::ca::CertificateAuthority;
use russet_certs::scep::client::{ClientOptions, ScepRequest, build_pkcs_req, parse_cert_rep};
use russet_certs::scep::{
    MAX_PKI_MESSAGE, PkiMessage, ScepError, cert_rep_success, decrypt_csr, fuzz_pki_operation,
    parse_pki_message,
};

const MACOS: &[u8] = include_bytes!("../testdata/scep/mdmclient-PKIOperation.der");

fn ca() -> &'static CertificateAuthority {
    static CA: OnceLock<CertificateAuthority> = OnceLock::new();
    CA.get_or_init(|| CertificateAuthority::generate("Robustness CA", "Russet").unwrap())
}

fn request() -> &'static ScepRequest {
    static REQ: OnceLock<ScepRequest> = OnceLock::new();
    REQ.get_or_init(|| {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        build_pkcs_req(
            ca().cert(),
            &key,
            "fuzz",
            Some("pw"),
            ClientOptions::default(),
        )
        .unwrap()
    })
}

fn garbage_inputs() -> Vec<Vec<u8>> {
    let mut inputs = vec![
        vec![],
        vec![0],
        vec![0x30],
        vec![0x30, 0x80],
        vec![0x30, 0x80, 0, 0],
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        vec![0xff; 64],
        vec![0; 4096],
        b"-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n".to_vec(),
        // An EnvelopedData where a SignedData is expected.
        parse_pki_message(&request().der).unwrap().enveloped,
    ];
    // Deterministic pseudo-random blobs, some starting like a SEQUENCE.
    let mut x: u32 = 0x1234_5678;
    for len in [1usize, 7, 100, 1000, 3000] {
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(x as u8);
        }
        inputs.push(v.clone());
        v[0] = 0x30;
        inputs.push(v);
    }
    inputs
}

#[test]
fn garbage_is_refused() {
    for input in garbage_inputs() {
        assert!(parse_pki_message(&input).is_err(), "accepted {input:02x?}");
        fuzz_pki_operation(&input);
        let req = request();
        assert!(parse_cert_rep(&input, &req.signer_cert, &req.signer_key).is_err());
    }
}

#[test]
fn truncated_messages_are_refused() {
    for original in [MACOS, request().der.as_slice()] {
        for len in 0..original.len() {
            assert!(
                parse_pki_message(&original[..len]).is_err(),
                "accepted a message truncated to {len} bytes"
            );
        }
    }
}

#[test]
fn oversized_message_is_refused_before_parsing() {
    let mut big = request().der.clone();
    big.resize(MAX_PKI_MESSAGE + 1, 0);
    assert!(matches!(
        parse_pki_message(&big),
        Err(ScepError::TooLarge { .. })
    ));
    fuzz_pki_operation(&big);
}

#[test]
fn bit_flips_never_panic() {
    // Every byte of both messages, one bit each: parse may fail or (for bytes the signature does
    // not cover, e.g. inside the unverified self-signed certificate) succeed, but never panic.
    for original in [MACOS, request().der.as_slice()] {
        for i in 0..original.len() {
            let mut flipped = original.to_vec();
            flipped[i] ^= 1 << (i % 8);
            fuzz_pki_operation(&flipped);
            if let Ok(msg) = parse_pki_message(&flipped) {
                let _ = decrypt_csr(ca(), &msg);
            }
        }
    }
}

#[test]
fn tampered_signature_is_refused() {
    let der = &request().der;
    // The SignerInfo's signature is the last field of the message (no unsigned attributes).
    let mut bad = der.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(matches!(
        parse_pki_message(&bad),
        Err(ScepError::BadSignature)
    ));

    // Changing the signed content breaks the messageDigest attribute.
    let msg = parse_pki_message(der).unwrap();
    let pos = der
        .windows(msg.enveloped.len())
        .position(|w| w == msg.enveloped.as_slice())
        .unwrap();
    let mut bad = der.clone();
    bad[pos + msg.enveloped.len() - 5] ^= 0x80;
    assert!(matches!(
        parse_pki_message(&bad),
        Err(ScepError::BadSignature)
    ));

    // Same for the real macOS message.
    let mut bad = MACOS.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(matches!(
        parse_pki_message(&bad),
        Err(ScepError::BadSignature)
    ));
}

#[test]
fn garbage_envelope_does_not_decrypt() {
    let good = parse_pki_message(&request().der).unwrap();
    for enveloped in garbage_inputs() {
        if enveloped == good.enveloped {
            continue; // the one valid envelope in the list
        }
        let msg = PkiMessage {
            enveloped,
            ..good.clone()
        };
        assert!(decrypt_csr(ca(), &msg).is_err());
    }
}

#[test]
fn tampered_cert_rep_is_refused() {
    let req = request();
    let msg = parse_pki_message(&req.der).unwrap();
    let csr = decrypt_csr(ca(), &msg).unwrap();
    let issued = ca()
        .issue_device_certificate(
            &csr.request().unwrap(),
            None,
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
    let rep = cert_rep_success(ca(), &msg, &issued).unwrap();
    for i in (0..rep.len()).step_by(7) {
        let mut bad = rep.clone();
        bad[i] ^= 0x40;
        // Must not panic; most flips are errors.
        let _ = parse_cert_rep(&bad, &req.signer_cert, &req.signer_key);
    }
    let mut bad = rep.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        parse_cert_rep(&bad, &req.signer_cert, &req.signer_key),
        Err(ScepError::BadSignature)
    ));
    for len in (0..rep.len()).step_by(13) {
        assert!(parse_cert_rep(&rep[..len], &req.signer_cert, &req.signer_key).is_err());
    }
}
