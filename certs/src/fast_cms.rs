//! A fast path for the common shapes of `Mdm-Signature`: a detached SignedData, one signer
//! identified by issuer and serial, its certificate embedded, an RSA PKCS#1 v1.5 signature
//! either over the body itself (no signed attributes: what Macs send, in BER, usually with
//! SHA-1) or over signed attributes whose `messageDigest` is the body's digest (what Go's
//! `pkcs7`, `openssl cms -sign` without `-noattr` and most client libraries produce).
//!
//! Why: OpenSSL 3 decodes the embedded certificate's public key through its provider decoder
//! framework, which made `Pkcs7::from_der` plus the certificate re-parse about 0.4 ms of the
//! ~0.5 ms a signed request spent in crypto. Here the structure is read in Rust, the RSA key is
//! built from its modulus and exponent, and only the signature check itself runs in OpenSSL.
//!
//! The fast path only ever *accepts*: anything it does not recognise exactly, and any signature
//! that does not verify, goes to the OpenSSL `PKCS7_verify` path, which stays the authority for
//! refusals and their messages.

use cms::cert::CertificateChoices;
use cms::cert::x509::Certificate;
use cms::cert::x509::der::asn1::UintRef;
use cms::cert::x509::der::oid::ObjectIdentifier;
use cms::cert::x509::der::{Decode, Encode, Reader, SliceReader, Tag, Tagged};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::sign::Verifier;

use crate::key_cache;
use crate::signer::MdmSigner;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// Deepest nesting the BER normaliser follows (a CMS message with a certificate is ~10 deep).
const MAX_DEPTH: usize = 32;

/// Verify `der` (a CMS ContentInfo, BER or DER) as a detached signature over `body`. `None`
/// means "not handled here": the caller must use the full OpenSSL path.
pub(crate) fn verify_detached(der: &[u8], body: &[u8]) -> Option<MdmSigner> {
    // Macs send BER (indefinite lengths); the `der` decoder wants DER. The signature covers
    // only the body, never this encoding, so re-encoding the envelope changes nothing that is
    // verified. A certificate is always DER inside (it is signed), so it comes out byte for
    // byte as it went in.
    let normalized = ber_to_der(der)?;
    let ci = ContentInfo::from_der(&normalized).ok()?;
    if ci.content_type != ID_SIGNED_DATA {
        return None;
    }
    let sd: SignedData = ci.content.decode_as().ok()?;
    // Detached only (what NO_DUAL_CONTENT enforces on the OpenSSL path).
    if sd.encap_content_info.econtent.is_some() || sd.signer_infos.0.len() != 1 {
        return None;
    }
    let si = sd.signer_infos.0.get(0)?;
    if si.unsigned_attrs.is_some() || sd.encap_content_info.econtent_type != ID_DATA {
        return None;
    }
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &si.sid else {
        return None;
    };
    let cert: &Certificate = sd.certificates.as_ref()?.0.iter().find_map(|c| match c {
        CertificateChoices::Certificate(c)
            if c.tbs_certificate.issuer == sid.issuer
                && c.tbs_certificate.serial_number == sid.serial_number =>
        {
            Some(c)
        }
        _ => None,
    })?;
    let md = match si.digest_alg.oid {
        o if o == ID_SHA1 => MessageDigest::sha1(),
        o if o == ID_SHA256 => MessageDigest::sha256(),
        o if o == ID_SHA384 => MessageDigest::sha384(),
        o if o == ID_SHA512 => MessageDigest::sha512(),
        _ => return None,
    };
    // OpenSSL sets up a digest for every algorithm the SignedData lists and fails on one it
    // does not know, or when the signer's is not among them: accept only the plain case, every
    // listed digest one of ours and the signer's listed (found by the differential fuzz target
    // in `tests/tests/hostile_input.rs`).
    let known = [ID_SHA1, ID_SHA256, ID_SHA384, ID_SHA512];
    // A digest's parameters are absent or NULL; OpenSSL refuses a malformed value there (a
    // BOOLEAN of the wrong length, found by the same target), so the fast path declines any.
    let plain = |params: Option<&cms::cert::x509::der::Any>| {
        params.is_none_or(|p| p.tag() == Tag::Null && p.value().is_empty())
    };
    if !sd
        .digest_algorithms
        .iter()
        .all(|a| known.contains(&a.oid) && plain(a.parameters.as_ref()))
        || !plain(si.digest_alg.parameters.as_ref())
        || !sd
            .digest_algorithms
            .iter()
            .any(|a| a.oid == si.digest_alg.oid)
    {
        return None;
    }
    if ![
        RSA_ENCRYPTION,
        SHA1_WITH_RSA,
        SHA256_WITH_RSA,
        SHA384_WITH_RSA,
        SHA512_WITH_RSA,
    ]
    .contains(&si.signature_algorithm.oid)
    {
        return None;
    }
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return None;
    }
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    let key_der = spki.subject_public_key.as_bytes()?;
    let mut reader = SliceReader::new(key_der).ok()?;
    let (n, e) = reader
        .sequence(|r| Ok((UintRef::decode(r)?, UintRef::decode(r)?)))
        .ok()?;
    reader.finish(()).ok()?;
    let pkey = key_cache::rsa_key(key_der, || {
        let rsa = Rsa::from_public_components(
            BigNum::from_slice(n.as_bytes()).ok()?,
            BigNum::from_slice(e.as_bytes()).ok()?,
        )
        .ok()?;
        PKey::from_rsa(rsa).ok()
    })?;
    // What the signature covers: the body, or the signed attributes (RFC 5652 §5.4: their DER
    // with the SET OF tag, not the [0] IMPLICIT one they travel under) once their
    // messageDigest is the body's digest.
    let attrs_der;
    let signed: &[u8] = match &si.signed_attrs {
        None => body,
        Some(attrs) => {
            if !attributes_cover(attrs, md, body)? {
                return None;
            }
            attrs_der = attrs.to_der().ok()?;
            &attrs_der
        }
    };
    let mut verifier = Verifier::new(md, &pkey).ok()?;
    if !verifier
        .verify_oneshot(si.signature.as_bytes(), signed)
        .ok()?
    {
        return None;
    }
    let cert_der = cert.to_der().ok()?;
    // The identity is the certificate as sent: one that re-encodes differently (not canonical
    // DER, e.g. an explicit default version) is left to OpenSSL, which keeps the bytes as sent
    // (found by the differential fuzz target).
    if !normalized
        .windows(cert_der.len())
        .any(|w| w == cert_der.as_slice())
    {
        return None;
    }
    let not_after = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    let sha = openssl::sha::sha256(&cert_der);
    Some(MdmSigner {
        sha256_hex: hex::encode(sha),
        not_after_unix: i64::try_from(not_after).ok()?,
        der: cert_der,
    })
}

/// Do the signed attributes say the signed content is `body`: exactly one contentType, `data`
/// (the detached content's type), and exactly one messageDigest, the digest of `body`? Other
/// attributes (signingTime, S/MIME capabilities) are covered by the signature and need no
/// check here, as OpenSSL checks none either. `None` when an attribute does not decode.
fn attributes_cover(
    attrs: &cms::signed_data::SignedAttributes,
    md: MessageDigest,
    body: &[u8],
) -> Option<bool> {
    use cms::cert::x509::der::asn1::OctetStringRef;
    let (mut content_types, mut digests, mut ok) = (0, 0, true);
    for attr in attrs.iter() {
        let single = || {
            if attr.values.len() == 1 {
                attr.values.get(0)
            } else {
                None
            }
        };
        if attr.oid == ID_CONTENT_TYPE {
            content_types += 1;
            ok &= single()?.decode_as::<ObjectIdentifier>().ok()? == ID_DATA;
        } else if attr.oid == ID_MESSAGE_DIGEST {
            digests += 1;
            // A digest of public data: no need for a constant-time comparison (the signature
            // check follows anyway).
            let have = single()?.decode_as::<OctetStringRef<'_>>().ok()?;
            ok &= have.as_bytes() == &*openssl::hash::hash(md, body).ok()?;
        }
    }
    Some(ok && content_types == 1 && digests == 1)
}

/// Re-encode BER as DER where the difference is only in lengths: indefinite and non-minimal
/// lengths become definite and minimal. Constructed string encodings (which BER allows and DER
/// does not) are left as they are, and the `der` decoder then refuses them: the caller falls
/// back. `None` on anything malformed.
pub(crate) fn ber_to_der(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let rest = copy_element(input, &mut out, 0)?;
    rest.is_empty().then_some(out)
}

/// Copy one element from `input` to `out`, returning what follows it.
fn copy_element<'a>(input: &'a [u8], out: &mut Vec<u8>, depth: usize) -> Option<&'a [u8]> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (tag, rest) = read_tag(input)?;
    let constructed = tag.first()? & 0x20 != 0;
    let (len, rest) = read_length(rest)?;
    match len {
        Some(len) => {
            let (content, after) = (rest.get(..len)?, rest.get(len..)?);
            if constructed {
                let mut inner = Vec::with_capacity(len);
                let mut c = content;
                while !c.is_empty() {
                    c = copy_element(c, &mut inner, depth + 1)?;
                }
                write_tlv(out, tag, &inner);
            } else {
                write_tlv(out, tag, content);
            }
            Some(after)
        }
        None => {
            // Indefinite: only for constructed encodings, up to the end-of-contents octets.
            if !constructed {
                return None;
            }
            let mut inner = Vec::new();
            let mut c = rest;
            loop {
                if c.starts_with(&[0, 0]) {
                    write_tlv(out, tag, &inner);
                    return c.get(2..);
                }
                c = copy_element(c, &mut inner, depth + 1)?;
            }
        }
    }
}

fn read_tag(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *input.first()?;
    let mut end = 1;
    if first & 0x1f == 0x1f {
        // High tag number: base-128 digits, the last without the top bit.
        loop {
            let b = *input.get(end)?;
            end += 1;
            if b & 0x80 == 0 {
                break;
            }
            if end > 5 {
                return None;
            }
        }
    }
    Some((input.get(..end)?, input.get(end..)?))
}

/// `Some(len)` for a definite length, `None` inside for indefinite.
fn read_length(input: &[u8]) -> Option<(Option<usize>, &[u8])> {
    let first = *input.first()?;
    let rest = input.get(1..)?;
    if first < 0x80 {
        return Some((Some(first as usize), rest));
    }
    if first == 0x80 {
        return Some((None, rest));
    }
    let n = (first & 0x7f) as usize;
    if n > 4 {
        return None;
    }
    let mut len = 0usize;
    for b in rest.get(..n)? {
        len = (len << 8) | *b as usize;
    }
    Some((Some(len), rest.get(n..)?))
}

fn write_tlv(out: &mut Vec<u8>, tag: &[u8], content: &[u8]) {
    out.extend_from_slice(tag);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestCa;
    use crate::{IdentityError, verify_mdm_signature, verify_mdm_signature_fast};
    use base64::Engine;

    fn der_of(header: &str) -> Vec<u8> {
        let compact: String = header.split_ascii_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .expect("base64")
    }

    #[test]
    fn the_fast_path_agrees_with_openssl() {
        let ca = TestCa::new("fast path CA");
        let id = ca.issue_device_identity("fast path Mac");
        let body = b"<plist><dict/></plist>";
        let sig = id.sign_body(body);
        let fast = verify_detached(&der_of(&sig), body).expect("the common shape is handled");
        let full = verify_mdm_signature(&sig, body).expect("verifies");
        assert_eq!(fast, MdmSigner::from(full));
        assert_eq!(fast.sha256_hex, id.sha256_hex());

        // A body that was not signed: not accepted here, refused by the OpenSSL path.
        assert_eq!(verify_detached(&der_of(&sig), b"<plist/>"), None);
        assert!(matches!(
            verify_mdm_signature_fast(&sig, b"<plist/>"),
            Err(IdentityError::BadSignature)
        ));

        // Signed attributes (contentType, signingTime, messageDigest) take the fast path
        // too, with the same outcome as OpenSSL.
        let with_attrs = id.sign_body_with_attributes(body);
        assert_eq!(
            verify_detached(&der_of(&with_attrs), body).expect("signed attributes are handled"),
            MdmSigner::from(verify_mdm_signature(&with_attrs, body).expect("verifies"))
        );
        // Another body: its digest is not the messageDigest; refused by OpenSSL too.
        assert_eq!(verify_detached(&der_of(&with_attrs), b"<plist/>"), None);
        assert!(matches!(
            verify_mdm_signature_fast(&with_attrs, b"<plist/>"),
            Err(IdentityError::BadSignature)
        ));
        // The right digest under a signature that does not verify (its last byte changed, or
        // the signing time inside the signed attributes): not accepted here.
        let mut bad_sig = der_of(&with_attrs);
        if let Some(last) = bad_sig.last_mut() {
            *last ^= 1;
        }
        assert_eq!(verify_detached(&bad_sig, body), None);
        let mut bad_time = der_of(&with_attrs);
        let utc = bad_time
            .windows(2)
            .rposition(|w| w == [0x17, 0x0d])
            .expect("signingTime is a UTCTime, after the certificate");
        bad_time[utc + 3] ^= 1;
        assert_eq!(verify_detached(&bad_time, body), None);
    }

    #[test]
    fn a_real_macs_ber_sha1_signature_takes_the_fast_path() {
        let header = include_str!("../testdata/mdm-signature/header2-ber-sha1.b64");
        let body = include_bytes!("../testdata/mdm-signature/body2.plist");
        let fast = verify_detached(&der_of(header), body).expect("BER from a Mac is handled");
        let full = verify_mdm_signature(header.trim(), body).expect("verifies");
        assert_eq!(fast, MdmSigner::from(full));
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert_eq!(verify_detached(&der_of(header), &tampered), None);
    }

    #[test]
    fn a_signers_key_is_built_once_and_serves_only_itself() {
        let ca = TestCa::new("key cache CA");
        let a = ca.issue_device_identity("key cache Mac A");
        let b = ca.issue_device_identity("key cache Mac B");
        let key_of = |der: &[u8]| {
            let c = Certificate::from_der(der).expect("certificate");
            let spki = c.tbs_certificate.subject_public_key_info;
            spki.subject_public_key
                .as_bytes()
                .expect("key bits")
                .to_vec()
        };
        let (key_a, key_b) = (key_of(&a.cert_der()), key_of(&b.cert_der()));
        assert_ne!(key_a, key_b);
        let body = b"<plist><dict/></plist>";
        assert!(!key_cache::cached(&key_a));
        let signer_a = verify_detached(&der_of(&a.sign_body(body)), body).expect("verifies");
        assert!(
            key_cache::cached(&key_a),
            "the first request builds the key"
        );
        // The next requests of the session use it, in either signature shape.
        assert_eq!(
            verify_detached(&der_of(&a.sign_body_with_attributes(body)), body),
            Some(signer_a.clone())
        );
        assert_eq!(
            verify_detached(&der_of(&a.sign_body(body)), b"<plist/>"),
            None
        );
        // Another signer gets its own key, never A's.
        let signer_b = verify_detached(&der_of(&b.sign_body(body)), body).expect("verifies");
        assert_eq!(signer_b.sha256_hex, b.sha256_hex());
        assert!(key_cache::cached(&key_b));
    }

    #[test]
    fn ber_lengths_become_der() {
        // SEQUENCE (indefinite) { INTEGER 5, OCTET STRING (long-form length 0x81 0x02) "ab" }
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x05, 0x04, 0x81, 0x02, b'a', b'b', 0x00, 0x00,
        ];
        assert_eq!(
            ber_to_der(&ber),
            Some(vec![0x30, 0x07, 0x02, 0x01, 0x05, 0x04, 0x02, b'a', b'b'])
        );
        // DER stays as it is.
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(ber_to_der(&der), Some(der.to_vec()));
    }

    #[test]
    fn malformed_ber_is_refused() {
        assert_eq!(ber_to_der(&[]), None);
        assert_eq!(ber_to_der(&[0x30, 0x05, 0x02]), None, "truncated");
        assert_eq!(
            ber_to_der(&[0x04, 0x80, 0x00, 0x00]),
            None,
            "primitive indefinite"
        );
        assert_eq!(
            ber_to_der(&[0x30, 0x80, 0x02, 0x01, 0x05]),
            None,
            "no end-of-contents"
        );
        assert_eq!(
            ber_to_der(&[0x30, 0x00, 0xff]),
            None,
            "trailing bytes after the element"
        );
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 100)
            .flatten()
            .chain(std::iter::repeat_n(0u8, 200))
            .collect();
        assert_eq!(ber_to_der(&deep), None, "nesting is bounded");
    }
}
