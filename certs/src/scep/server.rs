//! Server side: parse a PKIOperation request, decrypt its CSR, answer with a CertRep.

use std::fmt;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Ref, X509Req};
use x509_parser::prelude::{FromDer as _, ParsedCriAttribute, X509CertificationRequest};

use super::asn1::{self, SignedParts};
use super::{
    ContentCipher, FailInfo, MAX_PKI_MESSAGE, MessageType, PkiStatus, ScepDigest, ScepError,
    ensure_legacy_provider,
};
use crate::ca::CertificateAuthority;

/// Largest decrypted CSR accepted.
const MAX_CSR: usize = 64 * 1024;
/// Length of the nonces this server generates.
const NONCE_LEN: usize = 16;
/// Longest transactionID accepted (clients use a hex/base64 hash of the key).
const MAX_TRANSACTION_ID: usize = 256;
/// Longest senderNonce accepted (RFC 8894: 16 bytes).
const MAX_NONCE: usize = 64;

/// A parsed, signature-checked PKIOperation request. The signer certificate is *not* chained
/// to anything here: for PKCSReq it is a throwaway self-signed certificate; for RenewalReq the
/// caller must check it is a current device identity issued by this CA.
#[derive(Debug, Clone)]
pub struct PkiMessage {
    /// PKCSReq, RenewalReq or CertPoll.
    pub message_type: MessageType,
    /// Client-chosen transaction identifier (constant for one enrollment).
    pub transaction_id: String,
    /// The client's nonce; echoed as recipientNonce in the CertRep.
    pub sender_nonce: Vec<u8>,
    /// The certificate whose key signed the message (embedded in the message).
    pub signer_cert: X509,
    /// The signed content: a DER/BER ContentInfo(EnvelopedData) encrypted to the CA.
    pub enveloped: Vec<u8>,
    /// The SignerInfo's digest algorithm; the CertRep is signed with the same.
    pub digest_algorithm: ScepDigest,
    /// The envelope's content-encryption algorithm, when recognised; the CertRep mirrors it.
    pub content_cipher: Option<ContentCipher>,
}

/// The decrypted PKCS#10 request of a PKCSReq/RenewalReq.
#[derive(Clone)]
pub struct CsrInfo {
    /// The request, DER.
    pub csr_der: Vec<u8>,
    /// Subject as text (RFC 4514-like, e.g. `CN=device, O=Example`).
    pub subject: String,
    /// Size of the request's public key (RSA modulus bits, or EC curve bits).
    pub public_key_bits: u32,
    /// The `challengePassword` attribute, if present.
    pub challenge_password: Option<String>,
    /// Whether the request's self-signature verifies with its own public key.
    pub signature_valid: bool,
}

impl fmt::Debug for CsrInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the challenge.
        f.debug_struct("CsrInfo")
            .field("subject", &self.subject)
            .field("public_key_bits", &self.public_key_bits)
            .field(
                "challenge_password",
                &self.challenge_password.as_ref().map(|_| "…"),
            )
            .field("signature_valid", &self.signature_valid)
            .finish_non_exhaustive()
    }
}

impl CsrInfo {
    /// The request as an OpenSSL object, for [`CertificateAuthority::issue_device_certificate`].
    pub fn request(&self) -> Result<X509Req, ScepError> {
        X509Req::from_der(&self.csr_der)
            .map_err(|e| ScepError::Malformed(format!("PKCS#10 request: {e}")))
    }
}

/// A SignedData whose signature was checked by OpenSSL with its embedded signer certificate.
pub(crate) struct OpenedSignedData {
    pub signer: X509,
    /// The encapsulated content (`None` when the SignedData carries none).
    pub content: Option<Vec<u8>>,
    pub parts: SignedParts,
}

/// Check size, structure and signature of a SignedData (no certificate chain check).
pub(crate) fn open_signed(der: &[u8]) -> Result<OpenedSignedData, ScepError> {
    if der.len() > MAX_PKI_MESSAGE {
        return Err(ScepError::TooLarge {
            len: der.len(),
            limit: MAX_PKI_MESSAGE,
        });
    }
    // Structure and attributes first (cheap, and gives precise errors).
    let parts = asn1::read_signed(der)?;
    let p7 = Pkcs7::from_der(der)
        .map_err(|e| ScepError::Malformed(format!("not a PKCS#7 SignedData: {e}")))?;
    let no_certs = Stack::<X509>::new()?;
    let signers = p7
        .signers(&no_certs, Pkcs7Flags::empty())
        .map_err(|e| ScepError::Malformed(format!("signer certificate not found: {e}")))?;
    if signers.len() != 1 {
        return Err(ScepError::Malformed(format!(
            "expected one signer, found {}",
            signers.len()
        )));
    }
    let signer = signers
        .get(0)
        .map(|c| c.to_owned())
        .ok_or_else(|| ScepError::Malformed("no signer certificate".into()))?;

    // NOVERIFY skips only the certificate chain check; the signature over the signed
    // attributes and the messageDigest over the content are still verified.
    let empty_store = X509StoreBuilder::new()?.build();
    let flags = Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY | Pkcs7Flags::NO_DUAL_CONTENT;
    let mut out = Vec::new();
    let detached: Option<&[u8]> = if parts.has_content { None } else { Some(&[]) };
    p7.verify(&no_certs, &empty_store, detached, Some(&mut out), flags)
        .map_err(|_| ScepError::BadSignature)?;
    Ok(OpenedSignedData {
        signer,
        content: parts.has_content.then_some(out),
        parts,
    })
}

/// Parse and verify a PKIOperation body (DER PKIMessage).
///
/// Checks: size ≤ [`MAX_PKI_MESSAGE`], one signer, signature valid with the embedded signer
/// certificate (no chain check), digest SHA-1/256/384/512, messageType PKCSReq/RenewalReq/
/// CertPoll, transactionID and senderNonce present, content present.
pub fn parse_pki_message(der: &[u8]) -> Result<PkiMessage, ScepError> {
    let opened = open_signed(der)?;
    let parts = &opened.parts;
    let digest_algorithm = parts.digest.ok_or_else(|| {
        ScepError::UnsupportedAlgorithm(format!("digest algorithm {}", parts.digest_oid))
    })?;
    let code = asn1::attr_number(&parts.attrs, &asn1::MESSAGE_TYPE)?
        .ok_or_else(|| ScepError::Malformed("missing messageType".into()))?;
    let message_type = match MessageType::from_code(code) {
        Some(t @ (MessageType::PkcsReq | MessageType::RenewalReq | MessageType::CertPoll)) => t,
        _ => {
            return Err(ScepError::Malformed(format!(
                "unsupported messageType {code}"
            )));
        }
    };
    let transaction_id = asn1::attr_string(&parts.attrs, &asn1::TRANSACTION_ID)?
        .ok_or_else(|| ScepError::Malformed("missing transactionID".into()))?;
    if transaction_id.is_empty() || transaction_id.len() > MAX_TRANSACTION_ID {
        return Err(ScepError::Malformed("bad transactionID length".into()));
    }
    let sender_nonce = asn1::attr_octets(&parts.attrs, &asn1::SENDER_NONCE)?
        .ok_or_else(|| ScepError::Malformed("missing senderNonce".into()))?;
    if sender_nonce.is_empty() || sender_nonce.len() > MAX_NONCE {
        return Err(ScepError::Malformed("bad senderNonce length".into()));
    }
    let enveloped = opened
        .content
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ScepError::Malformed("no pkcsPKIEnvelope content".into()))?;
    let content_cipher = asn1::enveloped_cipher(&enveloped);
    Ok(PkiMessage {
        message_type,
        transaction_id,
        sender_nonce,
        signer_cert: opened.signer,
        enveloped,
        digest_algorithm,
        content_cipher,
    })
}

/// Decrypt a PKCSReq/RenewalReq envelope with the CA key and parse the PKCS#10 request inside.
///
/// DES-CBC, 3DES, AES-128/192/256-CBC with RSA key transport are accepted (DES-CBC needs
/// OpenSSL's legacy provider, loaded here on first use). The CSR's self-signature result is
/// reported in [`CsrInfo::signature_valid`]; the challenge is *not* checked here.
pub fn decrypt_csr(ca: &CertificateAuthority, msg: &PkiMessage) -> Result<CsrInfo, ScepError> {
    if !matches!(
        msg.message_type,
        MessageType::PkcsReq | MessageType::RenewalReq
    ) {
        return Err(ScepError::Malformed(format!(
            "{:?} carries no certificate request",
            msg.message_type
        )));
    }
    let csr_der = decrypt_envelope(&msg.enveloped, ca.key(), ca.cert())?;
    if csr_der.len() > MAX_CSR {
        return Err(ScepError::TooLarge {
            len: csr_der.len(),
            limit: MAX_CSR,
        });
    }
    parse_csr(csr_der)
}

/// Decrypt a CMS EnvelopedData (RSA key transport) addressed to `cert`.
pub(crate) fn decrypt_envelope(
    enveloped: &[u8],
    key: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
    cert: &X509Ref,
) -> Result<Vec<u8>, ScepError> {
    ensure_legacy_provider();
    let env = CmsContentInfo::from_der(enveloped)
        .map_err(|e| ScepError::Malformed(format!("pkcsPKIEnvelope is not CMS: {e}")))?;
    env.decrypt(key, &cert.to_owned())
        .map_err(|e| ScepError::Decrypt(e.to_string()))
}

/// Encrypt `data` to `recipient` (RSA key transport) as a DER ContentInfo(EnvelopedData).
pub(crate) fn encrypt_envelope(
    data: &[u8],
    recipient: &X509Ref,
    cipher: ContentCipher,
) -> Result<Vec<u8>, ScepError> {
    ensure_legacy_provider();
    let mut certs = Stack::<X509>::new()?;
    certs.push(recipient.to_owned())?;
    let env = CmsContentInfo::encrypt(&certs, data, cipher.cipher(), CMSOptions::BINARY)
        .map_err(|e| ScepError::UnsupportedKey(format!("cannot encrypt to recipient: {e}")))?;
    Ok(env.to_der()?)
}

fn parse_csr(csr_der: Vec<u8>) -> Result<CsrInfo, ScepError> {
    let req = X509Req::from_der(&csr_der)
        .map_err(|e| ScepError::Malformed(format!("PKCS#10 request: {e}")))?;
    let key = req
        .public_key()
        .map_err(|e| ScepError::Malformed(format!("PKCS#10 public key: {e}")))?;
    let signature_valid = req.verify(&key).unwrap_or(false);
    let (_, parsed) = X509CertificationRequest::from_der(&csr_der)
        .map_err(|e| ScepError::Malformed(format!("PKCS#10 request: {e}")))?;
    let info = &parsed.certification_request_info;
    let challenge_password =
        info.iter_attributes()
            .find_map(|attr| match attr.parsed_attribute() {
                ParsedCriAttribute::ChallengePassword(p) => Some(p.0.clone()),
                _ => None,
            });
    Ok(CsrInfo {
        subject: info.subject.to_string(),
        public_key_bits: key.bits(),
        challenge_password,
        signature_valid,
        csr_der,
    })
}

fn fresh_nonce() -> Result<Vec<u8>, ScepError> {
    let mut nonce = vec![0u8; NONCE_LEN];
    openssl::rand::rand_bytes(&mut nonce)?;
    Ok(nonce)
}

fn cert_rep_attrs(
    msg: &PkiMessage,
    status: PkiStatus,
    fail_info: Option<FailInfo>,
) -> Result<Vec<cms::cert::x509::attr::Attribute>, ScepError> {
    let mut attrs = vec![
        asn1::printable_attr(asn1::MESSAGE_TYPE, &MessageType::CertRep.code().to_string())?,
        asn1::printable_attr(asn1::PKI_STATUS, &status.code().to_string())?,
        asn1::octets_attr(asn1::SENDER_NONCE, &fresh_nonce()?)?,
        asn1::octets_attr(asn1::RECIPIENT_NONCE, &msg.sender_nonce)?,
    ];
    // Echoed as PrintableString, or UTF8String if the client's value is not printable.
    attrs.push(asn1::text_attr(asn1::TRANSACTION_ID, &msg.transaction_id)?);
    if let Some(fail) = fail_info {
        attrs.push(asn1::printable_attr(
            asn1::FAIL_INFO,
            &fail.code().to_string(),
        )?);
    }
    Ok(attrs)
}

/// Successful CertRep: SignedData by the CA (the request's digest algorithm) with messageType 3,
/// pkiStatus 0, transactionID, a fresh senderNonce and recipientNonce = the request's
/// senderNonce; content = EnvelopedData to the request's signer certificate holding a
/// degenerate certs-only PKCS#7 with `issued`.
///
/// Cipher: the request's own content-encryption algorithm is mirrored (the client has shown it
/// supports it); 3DES when it was not recognised. The issued certificate is public, so a
/// client's choice of single DES costs no secrecy.
pub fn cert_rep_success(
    ca: &CertificateAuthority,
    msg: &PkiMessage,
    issued: &X509Ref,
) -> Result<Vec<u8>, ScepError> {
    let degenerate = asn1::certs_only(&[issued])?;
    let cipher = msg.content_cipher.unwrap_or(ContentCipher::Des3);
    let enveloped = encrypt_envelope(&degenerate, &msg.signer_cert, cipher)?;
    let attrs = cert_rep_attrs(msg, PkiStatus::Success, None)?;
    asn1::sign_with_attributes(
        ca.cert(),
        ca.key(),
        msg.digest_algorithm,
        Some(&enveloped),
        attrs,
    )
}

/// Failed CertRep: pkiStatus 2 + failInfo, no content, signed by the CA.
pub fn cert_rep_failure(
    ca: &CertificateAuthority,
    msg: &PkiMessage,
    fail_info: FailInfo,
) -> Result<Vec<u8>, ScepError> {
    let attrs = cert_rep_attrs(msg, PkiStatus::Failure, Some(fail_info))?;
    asn1::sign_with_attributes(ca.cert(), ca.key(), msg.digest_algorithm, None, attrs)
}
