//! What campaigns found, kept as named tests, plus checks that the harness itself bites.

use crate::engine::{Mutation, apply, bounded};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use russet_dep::token::{TokenError, decrypt_token};
use russet_mdm::filter::{compare_versions, version_key};
use russet_mdm::service::golden_image_input as golden;

#[test]
fn the_mutator_changes_inputs_as_asked() {
    let seed = b"<dict></dict>".to_vec();
    let at = |n: usize| n;
    assert_eq!(
        apply(seed.clone(), &[Mutation::Truncate(at(0))], &[], &[]),
        b""
    );
    let grown = apply(
        seed.clone(),
        &[Mutation::Token(at(0), at(0))],
        &[b"<array>"],
        &[],
    );
    assert!(grown.starts_with(b"<array>"), "{grown:?}");
    // Mutations of an empty input are no-ops or insertions, never panics.
    for m in [
        Mutation::FlipBit(at(3), 1),
        Mutation::Delete(at(1), 10),
        Mutation::Duplicate(at(1), at(2), 3),
        Mutation::Truncate(at(7)),
    ] {
        assert!(apply(Vec::new(), &[m], &[], &[]).is_empty());
    }
}

#[test]
#[should_panic(expected = "allocated")]
fn the_heap_bound_catches_a_blow_up() {
    bounded("a parser that allocates 64 MiB for 10 bytes", 10, || {
        std::hint::black_box(vec![0u8; 64 << 20])
    });
}

/// Found by `dep_token_file`: a token file with a non-UTF-8 byte in a MIME header made
/// `openssl` 0.10 panic while reading OpenSSL's error queue (`ErrorStack::get` unwraps the
/// error data as UTF-8). Now refused as not S/MIME before OpenSSL sees it.
#[test]
fn a_dep_token_with_a_non_utf8_mime_header_is_refused_not_a_panic() {
    let link = crate::admin::dep_link();
    let text = String::from_utf8(link.smime.clone()).expect("S/MIME is ASCII");
    let at = text.find("Content-Type:").expect("a Content-Type header") + "Content-Type:".len();
    let mut hostile = link.smime.clone();
    hostile.insert(at, 0x80);
    let outcome = std::panic::catch_unwind(|| decrypt_token(&hostile, &link.cert, &link.key));
    assert!(
        matches!(outcome, Ok(Err(TokenError::NotSmime))),
        "{outcome:?}"
    );
    // The untouched file still opens.
    assert!(decrypt_token(&link.smime, &link.cert, &link.key).is_ok());
}

/// Found by `golden_image_input`: `https://p.%1` passed Russet's URL checks but is no URL the
/// downloader can parse (IDNA error), so verify and delivery would fail later.
#[test]
fn a_golden_image_url_the_downloader_cannot_parse_is_refused() {
    let e = golden::url("arm64.url", "https://p.%1").expect_err("refused");
    assert_eq!(e.field, "arm64.url");
    assert!(golden::url("arm64.url", "https://cdn.example.com/a%20b.dmg").is_ok());
}

/// Found by `version_order_and_index_key`: control characters counted in the filter's version
/// order but not in the database's version key, so `app_version < X` could answer differently
/// in memory and in SQL.
#[test]
fn version_order_and_index_key_agree_on_control_characters_and_long_numbers() {
    let long = |n: usize| "1".repeat(n);
    for (a, b) in [
        ("\0>".to_string(), "%4.10.1".to_string()),
        ("1\u{7}a".to_string(), "1b".to_string()),
        (long(100), long(99)),
        (format!("{}2", long(99)), format!("{}1", long(100))),
    ] {
        let by_key = version_key(&a).as_bytes().cmp(version_key(&b).as_bytes());
        assert_eq!(compare_versions(&a, &b), by_key, "{a:?} vs {b:?}");
    }
}

/// Found by `mdm_signature_fast_path_agrees_with_openssl`: a signer certificate whose subject
/// holds an invalid UTF8String. The fast path reads the certificate with the `der` crate, which
/// does not validate string contents, and accepts the (valid) signature; OpenSSL cannot read
/// the certificate at all. The request path still refuses it: the chain check parses the
/// certificate with OpenSSL before anything trusts it.
#[test]
fn a_signer_certificate_openssl_cannot_read_is_refused_on_the_request_path() {
    use crate::signatures::{BODY, keys, trusted_signer};
    let header = keys().device.sign_body(BODY);
    assert!(
        trusted_signer(
            russet_certs::verify_mdm_signature_fast(&header, BODY)
                .ok()
                .map(|s| s.der)
        )
        .is_some()
    );
    let mut der = STANDARD.decode(&header).expect("base64");
    let name = b"Russet tests";
    let positions: Vec<usize> = der
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| w == name)
        .map(|(i, _)| i)
        .collect();
    // The issuer's organisation, then the subject's: break the subject's.
    der[*positions.get(1).expect("a subject organisation")] = 0x80;
    let hostile = STANDARD.encode(&der);
    assert!(
        russet_certs::verify_mdm_signature(&hostile, BODY).is_err(),
        "OpenSSL refuses it"
    );
    let served = russet_certs::verify_mdm_signature_fast(&hostile, BODY);
    assert_eq!(trusted_signer(served.ok().map(|s| s.der)), None);
}

/// Found by a long campaign of `mdm_signature_fast_path_agrees_with_openssl`: the SignedData's
/// own list of digest algorithms changed to an unknown one (the signer's still SHA-256). OpenSSL
/// refuses it (it sets up a digest for every listed algorithm); the fast path looked only at
/// the signer's and accepted. Now it declines and OpenSSL's refusal stands.
#[test]
fn an_unknown_digest_in_the_signed_data_list_is_refused_by_both_paths() {
    use crate::signatures::{BODY, keys};
    let sha256 = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    let mut der = STANDARD
        .decode(keys().device.sign_body(BODY))
        .expect("base64");
    let first = der
        .windows(sha256.len())
        .position(|w| w == sha256)
        .expect("digestAlgorithms");
    der[first + 2] = 0x61;
    let hostile = STANDARD.encode(&der);
    assert!(russet_certs::verify_mdm_signature(&hostile, BODY).is_err());
    assert_eq!(
        russet_certs::identity::verify_mdm_signature_fast_path_only(&hostile, BODY),
        None
    );
    assert!(russet_certs::verify_mdm_signature_fast(&hostile, BODY).is_err());
}

/// The fast path still takes what it was made for (its refusals above must not disable it):
/// a real Mac's BER/SHA-1 signature over its Idle report, and OpenSSL's DER with and without
/// signed attributes.
#[test]
fn the_fast_path_still_accepts_the_common_shapes() {
    use crate::signatures::{BODY, keys};
    let d = &keys().device;
    let mac = include_str!("../../../certs/testdata/mdm-signature/header2-ber-sha1.b64");
    for header in [
        mac.to_string(),
        d.sign_body(BODY),
        d.sign_body_with_attributes(BODY),
    ] {
        let fast = russet_certs::identity::verify_mdm_signature_fast_path_only(&header, BODY)
            .expect("the fast path accepts");
        let reference = russet_certs::verify_mdm_signature(&header, BODY).expect("OpenSSL accepts");
        assert_eq!(fast.der, reference.der);
    }
}

/// Found by a 20k-case campaign of `mdm_signature_fast_path_agrees_with_openssl`: a digest
/// algorithm whose parameters are a BOOLEAN of the wrong length instead of NULL. OpenSSL
/// refuses the message; the fast path ignored the parameters. Now it declines them.
#[test]
fn malformed_digest_parameters_are_refused_by_both_paths() {
    use crate::signatures::{BODY, keys};
    let sha256_null = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    ];
    let mut der = STANDARD
        .decode(keys().device.sign_body(BODY))
        .expect("base64");
    let at = der
        .windows(sha256_null.len())
        .position(|w| w == sha256_null)
        .expect("digestAlgorithms");
    der[at + 11] = 0x01; // NULL → a zero-length BOOLEAN
    let hostile = STANDARD.encode(&der);
    assert!(russet_certs::verify_mdm_signature(&hostile, BODY).is_err());
    assert_eq!(
        russet_certs::identity::verify_mdm_signature_fast_path_only(&hostile, BODY),
        None
    );
}

/// Found by a 20k-case campaign of `scep_pki_operation`: a 2,863-byte PKIOperation body that
/// made `parse_pki_message` allocate ~165 MB of Rust heap (a SEQUENCE's declared length read from the
/// message was allocated by the `der` decoder before it was checked against the input). Every
/// length is now checked to fit before `der` sees the message.
#[test]
fn a_scep_body_cannot_make_the_parser_allocate_100_mb() {
    let body = include_bytes!("../../../certs/testdata/scep/hostile-164mb-alloc.der");
    let parsed = bounded("parse_pki_message", body.len(), || {
        russet_certs::scep::parse_pki_message(body)
    });
    assert!(parsed.is_err());
    // Real messages still parse: a Mac's, and the client's own.
    let mac = include_bytes!("../../../certs/testdata/scep/mdmclient-PKIOperation.der");
    assert!(russet_certs::scep::parse_pki_message(mac).is_ok());
}

/// Found by a third campaign: a signer certificate that spells out the default version (v1,
/// `[0] INTEGER 0`), which DER omits. The fast path re-encoded the certificate and so named
/// other bytes (another identity hash) than OpenSSL, which keeps the certificate as sent. Now
/// the fast path declines a certificate that does not re-encode to itself.
#[test]
fn a_non_canonical_signer_certificate_is_named_as_sent() {
    use crate::signatures::{BODY, keys};
    let v3 = [0xa0, 0x03, 0x02, 0x01, 0x02];
    let mut der = STANDARD
        .decode(keys().device.sign_body(BODY))
        .expect("base64");
    let at = der
        .windows(v3.len())
        .position(|w| w == v3)
        .expect("certificate version");
    der[at + 4] = 0x00;
    let hostile = STANDARD.encode(&der);
    assert_eq!(
        russet_certs::identity::verify_mdm_signature_fast_path_only(&hostile, BODY),
        None
    );
    let served = russet_certs::verify_mdm_signature_fast(&hostile, BODY).map(|s| s.der);
    let reference = russet_certs::verify_mdm_signature(&hostile, BODY).map(|c| c.der);
    assert_eq!(served.ok(), reference.ok());
}
