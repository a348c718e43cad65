//! DER structures for SCEP, via RustCrypto `cms` 0.2.3 (structures only; no crypto features).
//!
//! * Reading: the single SignerInfo's signed attributes and digest algorithm, and the
//!   EnvelopedData's content-encryption algorithm. Signature checks are done by OpenSSL before
//!   (or alongside) this; nothing read here is trusted on its own.
//! * Writing: a SignedData with SCEP's custom signed attributes. The `openssl` crate cannot add
//!   arbitrary signed attributes, so the structure is assembled here and only the signature —
//!   RSA PKCS#1 v1.5 over the DER `SET OF Attribute` (RFC 5652 §5.4) — comes from OpenSSL.

use cms::cert::x509::attr::{Attribute, Attributes};
use cms::cert::x509::der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use cms::cert::x509::der::{Any, Decode, Encode, Tag, Tagged};
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::cert::x509::{Certificate, der};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::EnvelopedData;
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use openssl::cms::CmsContentInfo;
use openssl::pkey::{Id, PKeyRef, Private};
use openssl::sign::Signer;
use openssl::x509::X509Ref;

use super::{ContentCipher, ScepDigest, ScepError};

const fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

pub(crate) const ID_DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.1");
pub(crate) const ID_SIGNED_DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.2");
pub(crate) const ID_ENVELOPED_DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.3");
const ID_CONTENT_TYPE: ObjectIdentifier = oid("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = oid("1.2.840.113549.1.9.4");
const RSA_ENCRYPTION: ObjectIdentifier = oid("1.2.840.113549.1.1.1");
pub(crate) const SHA256_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.11");
pub(crate) const CHALLENGE_PASSWORD: ObjectIdentifier = oid("1.2.840.113549.1.9.7");

pub(crate) const MESSAGE_TYPE: ObjectIdentifier = oid("2.16.840.1.113733.1.9.2");
pub(crate) const PKI_STATUS: ObjectIdentifier = oid("2.16.840.1.113733.1.9.3");
pub(crate) const FAIL_INFO: ObjectIdentifier = oid("2.16.840.1.113733.1.9.4");
pub(crate) const SENDER_NONCE: ObjectIdentifier = oid("2.16.840.1.113733.1.9.5");
pub(crate) const RECIPIENT_NONCE: ObjectIdentifier = oid("2.16.840.1.113733.1.9.6");
pub(crate) const TRANSACTION_ID: ObjectIdentifier = oid("2.16.840.1.113733.1.9.7");

const SHA1: ObjectIdentifier = oid("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.3");
// Some signers put a signature algorithm OID in digestAlgorithm; accept the RSA ones.
const SHA1_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.5");
const SHA384_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.13");

const DES_CBC: ObjectIdentifier = oid("1.3.14.3.2.7");
const DES_EDE3_CBC: ObjectIdentifier = oid("1.2.840.113549.3.7");
const AES128_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.2");
const AES192_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.22");
const AES256_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.42");

pub(crate) fn der_err(e: der::Error) -> ScepError {
    ScepError::Malformed(format!("DER: {e}"))
}

fn internal(e: der::Error) -> ScepError {
    ScepError::Internal(format!("DER encoding: {e}"))
}

impl ScepDigest {
    pub(crate) fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Some(match *oid {
            SHA1 | SHA1_WITH_RSA => ScepDigest::Sha1,
            SHA256 | SHA256_WITH_RSA => ScepDigest::Sha256,
            SHA384 | SHA384_WITH_RSA => ScepDigest::Sha384,
            SHA512 | SHA512_WITH_RSA => ScepDigest::Sha512,
            _ => return None,
        })
    }

    fn alg_id(self) -> AlgorithmIdentifierOwned {
        let oid = match self {
            ScepDigest::Sha1 => SHA1,
            ScepDigest::Sha256 => SHA256,
            ScepDigest::Sha384 => SHA384,
            ScepDigest::Sha512 => SHA512,
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: Some(Any::null()),
        }
    }
}

impl ContentCipher {
    pub(crate) fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Some(match *oid {
            DES_CBC => ContentCipher::Des,
            DES_EDE3_CBC => ContentCipher::Des3,
            AES128_CBC => ContentCipher::Aes128,
            AES192_CBC => ContentCipher::Aes192,
            AES256_CBC => ContentCipher::Aes256,
            _ => return None,
        })
    }
}

/// Deepest nesting [`lengths_fit`] follows (a PKIMessage is ~12 deep).
const MAX_NESTING: usize = 64;

/// Every definite length in `input` fits inside what contains it, at every level. The `der`
/// decoder allocates a value's declared length before it reads the value, so a 3 KB body
/// that declares a 160 MB SEQUENCE made it allocate 160 MB (found by
/// `tests/tests/hostile_input.rs`). An indefinite length (BER) ends the walk: `der` refuses it
/// there, and the caller's OpenSSL re-encoding is well-formed.
fn lengths_fit(mut input: &[u8], depth: usize) -> bool {
    if depth > MAX_NESTING {
        return false;
    }
    while let Some(&tag) = input.first() {
        let mut i = 1;
        if tag & 0x1f == 0x1f {
            // High tag number: base-128 bytes, the last without its top bit.
            loop {
                let Some(b) = input.get(i) else { return false };
                i += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if i > 5 {
                    return false;
                }
            }
        }
        let Some(&first) = input.get(i) else {
            return false;
        };
        i += 1;
        let len = match first {
            0x80 => return true,
            l if l < 0x80 => usize::from(l),
            l => {
                let n = usize::from(l & 0x7f);
                let Some(bytes) = input.get(i..i + n).filter(|_| n <= 4) else {
                    return false;
                };
                i += n;
                bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
            }
        };
        let Some(contents) = i.checked_add(len).and_then(|end| input.get(i..end)) else {
            return false;
        };
        if tag & 0x20 != 0 && !lengths_fit(contents, depth + 1) {
            return false;
        }
        input = &input[i + len..];
    }
    true
}

/// The parts of a SignedData that SCEP needs, read with `cms`. Not verified by itself.
pub(crate) struct SignedParts {
    pub digest: Option<ScepDigest>,
    pub digest_oid: ObjectIdentifier,
    pub attrs: Attributes,
    /// Whether encapContentInfo carries content (a failed CertRep carries none).
    pub has_content: bool,
}

/// Read the single SignerInfo of a SignedData ContentInfo. BER input (indefinite lengths,
/// constructed strings), which `der` rejects, is first normalised to DER by OpenSSL.
pub(crate) fn read_signed(input: &[u8]) -> Result<SignedParts, ScepError> {
    match read_signed_der(input) {
        Ok(parts) => Ok(parts),
        Err(first) => {
            let Ok(der) = CmsContentInfo::from_der(input).and_then(|c| c.to_der()) else {
                return Err(first);
            };
            if der == input {
                return Err(first);
            }
            read_signed_der(&der)
        }
    }
}

fn read_signed_der(input: &[u8]) -> Result<SignedParts, ScepError> {
    if !lengths_fit(input, 0) {
        return Err(ScepError::Malformed(
            "an ASN.1 length runs past the end of the message".into(),
        ));
    }
    let ci = ContentInfo::from_der(input).map_err(der_err)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(ScepError::Malformed("not a CMS SignedData".into()));
    }
    let sd: SignedData = ci.content.decode_as().map_err(der_err)?;
    let mut signers = sd.signer_infos.0.iter();
    let (Some(si), None) = (signers.next(), signers.next()) else {
        return Err(ScepError::Malformed(
            "SignedData must have exactly one signer".into(),
        ));
    };
    let attrs = si
        .signed_attrs
        .clone()
        .ok_or_else(|| ScepError::Malformed("no signed attributes".into()))?;
    Ok(SignedParts {
        digest: ScepDigest::from_oid(&si.digest_alg.oid),
        digest_oid: si.digest_alg.oid,
        attrs,
        has_content: sd.encap_content_info.econtent.is_some(),
    })
}

/// The content-encryption algorithm of an EnvelopedData ContentInfo, if it is one we know.
pub(crate) fn enveloped_cipher(input: &[u8]) -> Option<ContentCipher> {
    if !lengths_fit(input, 0) {
        return None;
    }
    let parse = |bytes: &[u8]| -> Option<ContentCipher> {
        let ci = ContentInfo::from_der(bytes).ok()?;
        if ci.content_type != ID_ENVELOPED_DATA {
            return None;
        }
        let ed: EnvelopedData = ci.content.decode_as().ok()?;
        ContentCipher::from_oid(&ed.encrypted_content.content_enc_alg.oid)
    };
    parse(input).or_else(|| {
        let der = CmsContentInfo::from_der(input).ok()?.to_der().ok()?;
        parse(&der)
    })
}

fn first_value<'a>(attrs: &'a Attributes, oid: &ObjectIdentifier) -> Option<&'a Any> {
    attrs
        .iter()
        .find(|a| a.oid == *oid)
        .and_then(|a| a.values.iter().next())
}

/// A PrintableString (or UTF8String, which some clients use) attribute.
pub(crate) fn attr_string(
    attrs: &Attributes,
    oid: &ObjectIdentifier,
) -> Result<Option<String>, ScepError> {
    let Some(v) = first_value(attrs, oid) else {
        return Ok(None);
    };
    match v.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {
            let s = std::str::from_utf8(v.value())
                .map_err(|_| ScepError::Malformed(format!("attribute {oid} is not text")))?;
            Ok(Some(s.to_string()))
        }
        _ => Err(ScepError::Malformed(format!(
            "attribute {oid} is not a string"
        ))),
    }
}

/// A numeric PrintableString attribute (messageType, pkiStatus, failInfo).
pub(crate) fn attr_number(
    attrs: &Attributes,
    oid: &ObjectIdentifier,
) -> Result<Option<u32>, ScepError> {
    match attr_string(attrs, oid)? {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ScepError::Malformed(format!("attribute {oid} is not a number"))),
    }
}

/// An OCTET STRING attribute (nonces).
pub(crate) fn attr_octets(
    attrs: &Attributes,
    oid: &ObjectIdentifier,
) -> Result<Option<Vec<u8>>, ScepError> {
    let Some(v) = first_value(attrs, oid) else {
        return Ok(None);
    };
    if v.tag() != Tag::OctetString {
        return Err(ScepError::Malformed(format!(
            "attribute {oid} is not an OCTET STRING"
        )));
    }
    Ok(Some(v.value().to_vec()))
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, ScepError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(internal)?,
    })
}

/// A PrintableString-valued attribute.
pub(crate) fn printable_attr(oid: ObjectIdentifier, value: &str) -> Result<Attribute, ScepError> {
    if !value.bytes().all(is_printable) {
        return Err(ScepError::Internal(format!(
            "attribute {oid} value is not a PrintableString"
        )));
    }
    attribute(
        oid,
        Any::new(Tag::PrintableString, value.as_bytes()).map_err(internal)?,
    )
}

/// A PrintableString-valued attribute, or UTF8String when `value` is not printable.
pub(crate) fn text_attr(oid: ObjectIdentifier, value: &str) -> Result<Attribute, ScepError> {
    let tag = if value.bytes().all(is_printable) {
        Tag::PrintableString
    } else {
        Tag::Utf8String
    };
    attribute(oid, Any::new(tag, value.as_bytes()).map_err(internal)?)
}

/// An OCTET STRING-valued attribute.
pub(crate) fn octets_attr(oid: ObjectIdentifier, value: &[u8]) -> Result<Attribute, ScepError> {
    attribute(oid, Any::new(Tag::OctetString, value).map_err(internal)?)
}

pub(crate) fn is_printable(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&c)
}

/// Build a DER ContentInfo(SignedData) over `content` (id-data; `None` = no eContent), signed by
/// `cert`/`key` (RSA) with `digest`, carrying contentType, messageDigest and `extra_attrs` as
/// signed attributes and `cert` in `certificates`.
pub(crate) fn sign_with_attributes(
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    digest: ScepDigest,
    content: Option<&[u8]>,
    extra_attrs: Vec<Attribute>,
) -> Result<Vec<u8>, ScepError> {
    if key.id() != Id::RSA {
        return Err(ScepError::UnsupportedKey(
            "SCEP messages are signed with RSA keys".into(),
        ));
    }
    let cert_der = cert.to_der()?;
    let certificate = Certificate::from_der(&cert_der).map_err(der_err)?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: certificate.tbs_certificate.issuer.clone(),
        serial_number: certificate.tbs_certificate.serial_number.clone(),
    });

    let content_digest = openssl::hash::hash(digest.md(), content.unwrap_or(&[]))?;
    let mut attrs = vec![
        attribute(
            ID_CONTENT_TYPE,
            Any::encode_from(&ID_DATA).map_err(internal)?,
        )?,
        octets_attr(ID_MESSAGE_DIGEST, &content_digest)?,
    ];
    attrs.extend(extra_attrs);
    // SetOfVec sorts into DER order; the signature covers exactly this encoding (tag SET).
    let signed_attrs: Attributes = SetOfVec::try_from(attrs).map_err(internal)?;
    let to_sign = signed_attrs.to_der().map_err(internal)?;

    let mut signer = Signer::new(digest.md(), key)?;
    signer.update(&to_sign)?;
    let signature = signer.sign_to_vec()?;

    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid,
        digest_alg: digest.alg_id(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature).map_err(internal)?,
        unsigned_attrs: None,
    };
    let econtent = match content {
        Some(c) => {
            Some(Any::encode_from(&OctetString::new(c).map_err(internal)?).map_err(internal)?)
        }
        None => None,
    };
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest.alg_id()]).map_err(internal)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(vec![CertificateChoices::Certificate(certificate)])
                .map_err(internal)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(internal)?),
    };
    content_info(ID_SIGNED_DATA, &sd)
}

/// A degenerate certs-only PKCS#7 SignedData (no signers) holding `certs`.
pub(crate) fn certs_only(certs: &[&X509Ref]) -> Result<Vec<u8>, ScepError> {
    let mut choices = Vec::with_capacity(certs.len());
    for cert in certs {
        let der = cert.to_der()?;
        choices.push(CertificateChoices::Certificate(
            Certificate::from_der(&der).map_err(der_err)?,
        ));
    }
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(choices).map_err(internal)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    content_info(ID_SIGNED_DATA, &sd)
}

fn content_info(
    content_type: ObjectIdentifier,
    content: &SignedData,
) -> Result<Vec<u8>, ScepError> {
    ContentInfo {
        content_type,
        content: Any::encode_from(content).map_err(internal)?,
    }
    .to_der()
    .map_err(internal)
}
