//! SCEP message layer (RFC 8894 / draft-gutmann-scep), server side plus a client for tests and
//! simulated Macs. Pure functions over bytes; the HTTP transport lives elsewhere.
//!
//! A PKIMessage is an outer CMS **SignedData** (signed by the requester) whose content is a CMS
//! **EnvelopedData** encrypted to the CA; inside is the PKCS#10 request. SCEP's own fields travel
//! as signed attributes (OID arc 2.16.840.1.113733.1.9): messageType, pkiStatus, failInfo,
//! senderNonce, recipientNonce, transactionID (RFC 8894, Signed Transaction Attributes).
//!
//! Division of labour:
//! * OpenSSL does every signature check, signature, encryption and decryption.
//! * RustCrypto `cms` 0.2.3 (DER structures only, no crypto features) reads the signed
//!   attributes and assembles the SignedData that carries SCEP's custom signed attributes —
//!   the `openssl` crate cannot add arbitrary signed attributes. Only the RSA signature over the
//!   DER of the signed attributes is computed, by OpenSSL ([`asn1`]).
//! * x509-parser reads the CSR's `challengePassword`.
//!
//! **Legacy provider.** OpenSSL 3 moved single DES (DES-CBC, what SCEP clients fall back to
//! when a CA does not advertise `DES3`/`AES`) into the `legacy` provider. [`decrypt_csr`] and the
//! encryption helpers call [`ensure_legacy_provider`], which loads it once per process with
//! fallbacks retained (so the default provider keeps working). If the legacy module is not
//! installed, DES-CBC requests fail with a decryption error; 3DES and AES are unaffected.

mod asn1;
pub mod client;
mod server;

use std::sync::Once;

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::symm::Cipher;

use crate::ca::CertificateAuthority;

pub use server::{
    CsrInfo, PkiMessage, cert_rep_failure, cert_rep_success, decrypt_csr, parse_pki_message,
};

/// GetCACaps answer: what this server supports, newline-separated.
pub const CA_CAPS: &str =
    "POSTPKIOperation\nSHA-256\nSHA-1\nSHA-512\nAES\nDES3\nSCEPStandard\nRenewal";

/// Content type of a GetCACaps answer.
pub const CA_CAPS_CONTENT_TYPE: &str = "text/plain";
/// Content type of a PKIOperation answer (CertRep).
pub const PKI_MESSAGE_CONTENT_TYPE: &str = "application/x-pki-message";
/// Content type of a GetCACert answer holding a single CA certificate.
pub const CA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-cert";

/// Largest PKIMessage accepted. A real one is 2–5 KiB (one or two certificates, a CSR).
pub const MAX_PKI_MESSAGE: usize = 256 * 1024;

/// SCEP messageType (signed attribute 2.16.840.1.113733.1.9.2, a PrintableString number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageType {
    /// 3: the CA's answer.
    CertRep,
    /// 17: renewal, signed with the existing identity.
    RenewalReq,
    /// 19: initial enrollment, signed with a throwaway self-signed certificate.
    PkcsReq,
    /// 20: poll for a pending request.
    CertPoll,
}

impl MessageType {
    /// The attribute's numeric value.
    pub fn code(self) -> u32 {
        match self {
            MessageType::CertRep => 3,
            MessageType::RenewalReq => 17,
            MessageType::PkcsReq => 19,
            MessageType::CertPoll => 20,
        }
    }

    /// Parse the numeric value; `None` for types Russet does not handle.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            3 => MessageType::CertRep,
            17 => MessageType::RenewalReq,
            19 => MessageType::PkcsReq,
            20 => MessageType::CertPoll,
            _ => return None,
        })
    }
}

/// pkiStatus of a CertRep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PkiStatus {
    /// 0
    Success,
    /// 2
    Failure,
    /// 3
    Pending,
}

impl PkiStatus {
    /// The attribute's numeric value.
    pub fn code(self) -> u32 {
        match self {
            PkiStatus::Success => 0,
            PkiStatus::Failure => 2,
            PkiStatus::Pending => 3,
        }
    }

    /// Parse the numeric value.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => PkiStatus::Success,
            2 => PkiStatus::Failure,
            3 => PkiStatus::Pending,
            _ => return None,
        })
    }
}

/// failInfo of a failed CertRep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// 0: unrecognized or unsupported algorithm.
    BadAlg,
    /// 1: integrity check (signature) failed.
    BadMessageCheck,
    /// 2: transaction not permitted or supported (e.g. wrong challenge).
    BadRequest,
    /// 3: signingTime too far from the system time.
    BadTime,
    /// 4: no certificate matches the criteria.
    BadCertId,
}

impl FailInfo {
    /// The attribute's numeric value.
    pub fn code(self) -> u32 {
        match self {
            FailInfo::BadAlg => 0,
            FailInfo::BadMessageCheck => 1,
            FailInfo::BadRequest => 2,
            FailInfo::BadTime => 3,
            FailInfo::BadCertId => 4,
        }
    }

    /// Parse the numeric value.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => FailInfo::BadAlg,
            1 => FailInfo::BadMessageCheck,
            2 => FailInfo::BadRequest,
            3 => FailInfo::BadTime,
            4 => FailInfo::BadCertId,
            _ => return None,
        })
    }
}

/// Message digest of a SignedData (the SignerInfo's digestAlgorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScepDigest {
    /// SHA-1 (old clients; still what many send).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384 (accepted, not advertised).
    Sha384,
    /// SHA-512 (what current macOS sends).
    Sha512,
}

impl ScepDigest {
    pub(crate) fn md(self) -> MessageDigest {
        match self {
            ScepDigest::Sha1 => MessageDigest::sha1(),
            ScepDigest::Sha256 => MessageDigest::sha256(),
            ScepDigest::Sha384 => MessageDigest::sha384(),
            ScepDigest::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// Content-encryption algorithm of an EnvelopedData.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCipher {
    /// DES-CBC (needs OpenSSL's legacy provider).
    Des,
    /// DES-EDE3-CBC (what macOS sends).
    Des3,
    /// AES-128-CBC.
    Aes128,
    /// AES-192-CBC (accepted, chosen by no known client).
    Aes192,
    /// AES-256-CBC.
    Aes256,
}

impl ContentCipher {
    pub(crate) fn cipher(self) -> Cipher {
        match self {
            ContentCipher::Des => Cipher::des_cbc(),
            ContentCipher::Des3 => Cipher::des_ede3_cbc(),
            ContentCipher::Aes128 => Cipher::aes_128_cbc(),
            ContentCipher::Aes192 => Cipher::aes_192_cbc(),
            ContentCipher::Aes256 => Cipher::aes_256_cbc(),
        }
    }
}

/// Why a SCEP message was refused. `Display` names the failed check, never echoes the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScepError {
    /// Over [`MAX_PKI_MESSAGE`]; refused before decoding.
    #[error("SCEP message too large: {len} bytes, limit {limit}")]
    TooLarge { len: usize, limit: usize },
    /// Not the expected CMS/PKCS#10 structure, or a required attribute is missing/invalid.
    #[error("malformed SCEP message: {0}")]
    Malformed(String),
    /// The SignedData signature does not verify with the embedded signer certificate.
    #[error("SCEP message signature does not verify")]
    BadSignature,
    /// A digest or cipher Russet does not accept.
    #[error("unsupported SCEP algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The EnvelopedData could not be decrypted with the given key (wrong recipient, bad
    /// padding, or DES without OpenSSL's legacy provider).
    #[error("cannot decrypt SCEP envelope: {0}")]
    Decrypt(String),
    /// A key that cannot be used here (SCEP needs RSA signer/recipient keys).
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// OpenSSL or DER encoding failed for a reason unrelated to the input.
    #[error("internal SCEP error: {0}")]
    Internal(String),
}

impl ScepError {
    /// The failInfo a server should answer with when it can still reply with a CertRep.
    pub fn fail_info(&self) -> FailInfo {
        match self {
            ScepError::BadSignature => FailInfo::BadMessageCheck,
            ScepError::UnsupportedAlgorithm(_) => FailInfo::BadAlg,
            ScepError::Decrypt(_) => FailInfo::BadMessageCheck,
            _ => FailInfo::BadRequest,
        }
    }
}

impl From<ErrorStack> for ScepError {
    fn from(e: ErrorStack) -> Self {
        ScepError::Internal(e.to_string())
    }
}

/// Load OpenSSL 3's `legacy` provider once per process (for DES-CBC), keeping the default
/// provider available. Failure (module not installed) is ignored: only single-DES is affected.
pub fn ensure_legacy_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(provider) = openssl::provider::Provider::try_load(None, "legacy", true) {
            // Dropping a `Provider` unloads it; it must stay loaded for the process lifetime.
            std::mem::forget(provider);
        }
    });
}

/// GetCACert answer: `(content type, body)` — the single DER CA certificate.
pub fn ca_cert_response(ca: &CertificateAuthority) -> Result<(&'static str, Vec<u8>), ScepError> {
    Ok((CA_CERT_CONTENT_TYPE, ca.cert().to_der()?))
}

/// Fuzzing entry point: parse an arbitrary PKIOperation body and discard the result. Must never
/// panic.
pub fn fuzz_pki_operation(data: &[u8]) {
    let _ = parse_pki_message(data);
}
