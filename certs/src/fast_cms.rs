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

use cms::cert::x509::Certificate;
use cms::cert::x509::der::asn1::UintRef;
use cms::cert::x509::der::oid::ObjectIdentifier;
use cms::cert::x509::der::{
    Decode, Encode, ErrorKind, Header, Reader, SliceReader, Tag, TagNumber, Tagged,
};
use cms::content_info::CmsVersion;
use cms::signed_data::{
    DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignerIdentifier, SignerInfo,
};
use openssl::bn::BigNum;
use openssl::rsa::{Padding, Rsa};
use std::borrow::Cow;

use crate::signer::MdmSigner;
use crate::signer_cache::{self, KnownCertificate};

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

/// The parts of a detached SignedData the fast path uses, read without decoding the embedded
/// certificates (they are looked up in [`signer_cache`] by their bytes, and read only the first
/// time they are seen). RFC 5652 §3 and §5.1:
///
/// ```text
/// ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
/// SignedData ::= SEQUENCE { version, digestAlgorithms SET OF AlgorithmIdentifier,
///     encapContentInfo, certificates [0] IMPLICIT CertificateSet OPTIONAL,
///     crls [1] IMPLICIT RevocationInfoChoices OPTIONAL, signerInfos SET OF SignerInfo }
/// ```
struct SignedParts<'a> {
    digest_algorithms: DigestAlgorithmIdentifiers,
    /// Each certificate's DER (only plain X.509 certificates: any other choice declines).
    certificates: Vec<&'a [u8]>,
    /// The one SignerInfo's DER.
    signer_info: &'a [u8],
}

impl<'a> SignedParts<'a> {
    /// `None` for anything but a detached SignedData with data content, no CRLs and exactly
    /// one signer.
    fn read(der: &'a [u8]) -> Option<Self> {
        let decline = || ErrorKind::Failed.into();
        let mut reader = SliceReader::new(der).ok()?;
        let parts = reader
            .sequence(|ci| {
                if ObjectIdentifier::decode(ci)? != ID_SIGNED_DATA {
                    return Err(decline());
                }
                let content = Header::decode(ci)?;
                if content.tag != context_tag(0, true) {
                    return Err(decline());
                }
                ci.read_nested(content.length, |c| c.sequence(Self::read_signed_data))
            })
            .ok()?;
        reader.finish(parts).ok()
    }

    fn read_signed_data<R: Reader<'a>>(sd: &mut R) -> cms::cert::x509::der::Result<Self> {
        let decline = || ErrorKind::Failed.into();
        CmsVersion::decode(sd)?;
        let digest_algorithms = DigestAlgorithmIdentifiers::decode(sd)?;
        // Detached only (what NO_DUAL_CONTENT enforces on the OpenSSL path), over `data`.
        let encap = EncapsulatedContentInfo::decode(sd)?;
        if encap.econtent.is_some() || encap.econtent_type != ID_DATA {
            return Err(decline());
        }
        let mut certificates = Vec::new();
        if sd.peek_tag()? == context_tag(0, true) {
            let set = Header::decode(sd)?;
            sd.read_nested(set.length, |cs| {
                while !cs.is_finished() {
                    if cs.peek_tag()? != Tag::Sequence {
                        return Err(decline());
                    }
                    certificates.push(cs.tlv_bytes()?);
                }
                Ok(())
            })?;
        }
        let infos = Header::decode(sd)?;
        if infos.tag != Tag::Set {
            // CRLs ([1]) or anything else: left to OpenSSL.
            return Err(decline());
        }
        let signer_info = sd.read_nested(infos.length, |s| {
            let one = s.tlv_bytes()?;
            if s.is_finished() {
                Ok(one)
            } else {
                Err(decline())
            }
        })?;
        Ok(SignedParts {
            digest_algorithms,
            certificates,
            signer_info,
        })
    }
}

fn context_tag(number: u8, constructed: bool) -> Tag {
    Tag::ContextSpecific {
        constructed,
        number: TagNumber::new(number),
    }
}

/// Verify `der` (a CMS ContentInfo, BER or DER) as a detached signature over `body`. `None`
/// means "not handled here": the caller must use the full OpenSSL path.
pub(crate) fn verify_detached(der: &[u8], body: &[u8]) -> Option<MdmSigner> {
    // Macs send BER (indefinite lengths); the `der` decoder wants DER. The signature covers
    // only the body, never this encoding, so re-encoding the envelope changes nothing that is
    // verified. A certificate is always DER inside (it is signed), so it comes out byte for
    // byte as it went in. DER (what client libraries send) is read as it is: the `der`
    // decoder refuses anything else, and the certificates inside are checked byte for byte
    // when first read (`read_certificate`).
    let storage: Vec<u8>;
    let (parts, reencoded) = match SignedParts::read(der) {
        Some(parts) => (parts, false),
        None => match ber_to_der(der)? {
            Cow::Borrowed(_) => return None,
            Cow::Owned(normalized) => {
                storage = normalized;
                (SignedParts::read(&storage)?, true)
            }
        },
    };
    let si = SignerInfo::from_der(parts.signer_info).ok()?;
    if si.unsigned_attrs.is_some() {
        return None;
    }
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &si.sid else {
        return None;
    };
    // Every certificate must read (as the full decode, and OpenSSL, require); the signer's is
    // the one the SignerInfo names.
    let mut signer_cert = None;
    for cert_der in &parts.certificates {
        let known = signer_cache::certificate(cert_der, || read_certificate(cert_der))?;
        if signer_cert.is_none() && known.issuer == sid.issuer && known.serial == sid.serial_number
        {
            signer_cert = Some(known);
        }
    }
    let cert = signer_cert?;
    // The identity is the certificate as sent: when the envelope was re-encoded, its bytes must
    // be in the message as they are in the cache (a certificate with non-minimal lengths
    // inside is left to OpenSSL, which keeps the bytes as sent).
    if reencoded && !contains(der, &cert.signer.der) {
        return None;
    }
    let digest = Digest::of(&si.digest_alg.oid)?;
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
    if !parts
        .digest_algorithms
        .iter()
        .all(|a| known.contains(&a.oid) && plain(a.parameters.as_ref()))
        || !plain(si.digest_alg.parameters.as_ref())
        || !parts
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
    let rsa = cert.rsa_key.as_ref()?;
    // What the signature covers: the body, or the signed attributes (RFC 5652 §5.4: their DER
    // with the SET OF tag, not the [0] IMPLICIT one they travel under) once their
    // messageDigest is the body's digest.
    let attrs_der;
    let signed: &[u8] = match &si.signed_attrs {
        None => body,
        Some(attrs) => {
            if !attributes_cover(attrs, digest, body)? {
                return None;
            }
            attrs_der = attrs.to_der().ok()?;
            &attrs_der
        }
    };
    if !rsa_pkcs1_verifies(rsa, digest, si.signature.as_bytes(), signed)? {
        return None;
    }
    Some(cert.signer.clone())
}

/// Read a certificate the first time it is seen. `None` (the message is left to OpenSSL) when
/// it does not decode, or re-encodes differently (not canonical DER, e.g. an explicit default
/// version: OpenSSL keeps the bytes as sent, found by the differential fuzz target).
fn read_certificate(der: &[u8]) -> Option<KnownCertificate> {
    let cert = Certificate::from_der(der).ok()?;
    if cert.to_der().ok()? != der {
        return None;
    }
    let tbs = &cert.tbs_certificate;
    let not_after = tbs.validity.not_after.to_unix_duration().as_secs();
    Some(KnownCertificate {
        rsa_key: rsa_key(&tbs.subject_public_key_info),
        issuer: tbs.issuer.clone(),
        serial: tbs.serial_number.clone(),
        signer: MdmSigner {
            sha256_hex: hex::encode(openssl::sha::sha256(der)),
            not_after_unix: i64::try_from(not_after).ok()?,
            der: der.to_vec(),
        },
    })
}

/// The OpenSSL key of an `rsaEncryption` SubjectPublicKeyInfo, built from its modulus and
/// exponent (`RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`).
fn rsa_key(
    spki: &cms::cert::x509::spki::SubjectPublicKeyInfoOwned,
) -> Option<Rsa<openssl::pkey::Public>> {
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return None;
    }
    let key_der = spki.subject_public_key.as_bytes()?;
    let mut reader = SliceReader::new(key_der).ok()?;
    let (n, e) = reader
        .sequence(|r| Ok((UintRef::decode(r)?, UintRef::decode(r)?)))
        .ok()?;
    reader.finish(()).ok()?;
    Rsa::from_public_components(
        BigNum::from_slice(n.as_bytes()).ok()?,
        BigNum::from_slice(e.as_bytes()).ok()?,
    )
    .ok()
}

/// The digests a SignerInfo may name, with the DER `DigestInfo` prefix (RFC 8017 §9.2, note 1:
/// `SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING }` up to the digest itself) that a PKCS#1
/// v1.5 signature carries.
#[derive(Clone, Copy)]
enum Digest {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn of(oid: &ObjectIdentifier) -> Option<Digest> {
        Some(match *oid {
            o if o == ID_SHA1 => Digest::Sha1,
            o if o == ID_SHA256 => Digest::Sha256,
            o if o == ID_SHA384 => Digest::Sha384,
            o if o == ID_SHA512 => Digest::Sha512,
            _ => return None,
        })
    }

    /// The streaming hashers (`SHA256_Init` and friends), not the one-shot `sha::sha256`:
    /// OpenSSL 3 implements the one-shot `SHA256()` as `EVP_Q_digest`, which fetches the
    /// algorithm by name on every call (~5k instructions of property parsing and locking per
    /// hash, callgrind; docs/benchmarks.md).
    fn hash(self, data: &[u8]) -> Vec<u8> {
        use openssl::sha::{Sha1, Sha256, Sha384, Sha512};
        macro_rules! streamed {
            ($hasher:ty) => {{
                let mut h = <$hasher>::new();
                h.update(data);
                h.finish().to_vec()
            }};
        }
        match self {
            Digest::Sha1 => streamed!(Sha1),
            Digest::Sha256 => streamed!(Sha256),
            Digest::Sha384 => streamed!(Sha384),
            Digest::Sha512 => streamed!(Sha512),
        }
    }

    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Digest::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            Digest::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Digest::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Digest::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// Does `signature` verify over `signed` as RSASSA-PKCS1-v1_5 with `digest` (RFC 8017 §8.2.2)?
/// `RSA_public_decrypt` does the RSA operation and checks the type-1 padding (`00 01 FF…FF 00`,
/// at least eight `FF`); what it leaves must then be exactly the DigestInfo of `signed` — the
/// comparison of the whole encoding that §8.2.2 step 3 asks for, with the parameters NULL as
/// every signer we know writes them. The OpenSSL `EVP_DigestVerify` path cost ~35k
/// instructions more per request in context set-up (callgrind, docs/benchmarks.md). `None`
/// when OpenSSL refuses the input outright (wrong length, not below the modulus).
fn rsa_pkcs1_verifies(
    rsa: &Rsa<openssl::pkey::Public>,
    digest: Digest,
    signature: &[u8],
    signed: &[u8],
) -> Option<bool> {
    let size = usize::try_from(rsa.size()).ok()?;
    if signature.len() != size {
        return Some(false);
    }
    let mut recovered = vec![0; size];
    let len = rsa
        .public_decrypt(signature, &mut recovered, Padding::PKCS1)
        .ok()?;
    let recovered = recovered.get(..len)?;
    let prefix = digest.digest_info_prefix();
    let hash = digest.hash(signed);
    Some(
        recovered.len() == prefix.len() + hash.len()
            && recovered.starts_with(prefix)
            && recovered.ends_with(&hash),
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// Do the signed attributes say the signed content is `body`: exactly one contentType, `data`
/// (the detached content's type), and exactly one messageDigest, the digest of `body`? Other
/// attributes (signingTime, S/MIME capabilities) are covered by the signature and need no
/// check here, as OpenSSL checks none either. `None` when an attribute does not decode.
fn attributes_cover(
    attrs: &cms::signed_data::SignedAttributes,
    digest: Digest,
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
            ok &= have.as_bytes() == digest.hash(body).as_slice();
        }
    }
    Some(ok && content_types == 1 && digests == 1)
}

/// Re-encode BER as DER where the difference is only in lengths: indefinite and non-minimal
/// lengths become definite and minimal. Constructed string encodings (which BER allows and DER
/// does not) are left as they are, and the `der` decoder then refuses them: the caller falls
/// back. `None` on anything malformed. Input that is DER already (what most client libraries
/// send) is returned as it is, and in BER from a Mac only the few indefinite-length envelopes
/// are rebuilt: every element whose contents are DER (the certificate, the SignerInfo) is
/// copied whole (the element-by-element copy was ~140k instructions per request, callgrind).
pub(crate) fn ber_to_der(input: &[u8]) -> Option<Cow<'_, [u8]>> {
    if is_der(input, 0) {
        return Some(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    let rest = copy_element(input, &mut out, 0)?;
    rest.is_empty().then_some(Cow::Owned(out))
}

/// Is `input` a sequence of elements with definite, minimal lengths all the way down?
fn is_der(mut input: &[u8], depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    if depth == 0 && input.is_empty() {
        return false;
    }
    while !input.is_empty() {
        let Some((tag, rest)) = read_tag(input) else {
            return false;
        };
        let Some((Some(len), rest)) = read_length(rest) else {
            return false;
        };
        if !minimal_length(input.get(tag.len()..).unwrap_or_default(), len) {
            return false;
        }
        let (Some(content), Some(after)) = (rest.get(..len), rest.get(len..)) else {
            return false;
        };
        let constructed = tag.first().is_some_and(|t| t & 0x20 != 0);
        if constructed && !is_der(content, depth + 1) {
            return false;
        }
        // One element at the top, as `copy_element` reads.
        if depth == 0 && !after.is_empty() {
            return false;
        }
        input = after;
    }
    true
}

/// Is the length octets at the start of `encoded` the shortest form of `len`?
fn minimal_length(encoded: &[u8], len: usize) -> bool {
    match encoded.first() {
        Some(&first) if first < 0x80 => true,
        Some(&first) => {
            let n = (first & 0x7f) as usize;
            len >= 0x80 && encoded.get(1).is_some_and(|b| *b != 0) && n == length_octets(len)
        }
        None => false,
    }
}

fn length_octets(len: usize) -> usize {
    let bytes = len.to_be_bytes();
    bytes.len() - bytes.iter().take_while(|b| **b == 0).count()
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
            if constructed && !is_der(content, depth + 1) {
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
    fn a_signers_certificate_is_read_once_and_serves_only_itself() {
        let ca = TestCa::new("signer cache CA");
        let a = ca.issue_device_identity("signer cache Mac A");
        let b = ca.issue_device_identity("signer cache Mac B");
        let (cert_a, cert_b) = (a.cert_der(), b.cert_der());
        let body = b"<plist><dict/></plist>";
        assert!(!signer_cache::cached(&cert_a));
        let signer_a = verify_detached(&der_of(&a.sign_body(body)), body).expect("verifies");
        assert!(
            signer_cache::cached(&cert_a),
            "the first request reads the certificate"
        );
        assert_eq!(signer_a.der, cert_a);
        // The next requests of the session use it, in either signature shape, and their
        // signatures are still checked.
        assert_eq!(
            verify_detached(&der_of(&a.sign_body_with_attributes(body)), body),
            Some(signer_a.clone())
        );
        assert_eq!(
            verify_detached(&der_of(&a.sign_body(body)), b"<plist/>"),
            None
        );
        // Another signer gets its own entry, never A's.
        let signer_b = verify_detached(&der_of(&b.sign_body(body)), body).expect("verifies");
        assert_eq!(signer_b.sha256_hex, b.sha256_hex());
        assert_eq!(signer_b.der, cert_b);
        assert!(signer_cache::cached(&cert_b));
    }

    #[test]
    fn ber_lengths_become_der() {
        // SEQUENCE (indefinite) { INTEGER 5, OCTET STRING (long-form length 0x81 0x02) "ab" }
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x05, 0x04, 0x81, 0x02, b'a', b'b', 0x00, 0x00,
        ];
        assert_eq!(
            ber_to_der(&ber).as_deref(),
            Some(&[0x30, 0x07, 0x02, 0x01, 0x05, 0x04, 0x02, b'a', b'b'][..])
        );
        // DER stays as it is, not copied.
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        assert!(matches!(ber_to_der(&der), Some(Cow::Borrowed(d)) if d == der));
        // A non-minimal long form (0x81 for a length under 128) is not DER.
        assert_eq!(
            ber_to_der(&[0x30, 0x81, 0x03, 0x02, 0x01, 0x05]).as_deref(),
            Some(&der[..])
        );
        // An indefinite envelope around DER contents: the contents are copied whole.
        let mixed = [0x30, 0x80, 0x30, 0x03, 0x02, 0x01, 0x05, 0x00, 0x00];
        assert_eq!(
            ber_to_der(&mixed).as_deref(),
            Some(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x05][..])
        );
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
