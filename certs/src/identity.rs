//! Device identity: who sent this request?
//!
//! Every check-in and command request must be tied to the device's identity certificate (the
//! SCEP/ACME identity named by the profile's `IdentityCertificateUUID`), because that is the only
//! thing a device cannot forge: the UDID in the plist body is just text.
//! Behind a TLS-terminating proxy the server learns that certificate in one of two ways:
//!
//! * **`Mdm-Signature`** ([`verify_mdm_signature`]): with `SignMessage` = true the device sends a
//!   base64 *detached* CMS SignedData over the exact body bytes, signed by the identity key with
//!   the certificate embedded. Verification follows NanoMDM (`cryptoutil.VerifyMdmSignature`):
//!   decode, attach the body, check the signature, take the single signer. Real Macs send BER
//!   with indefinite lengths, SHA-1 digests and no signed attributes, so both forms must pass.
//! * **A forwarded client certificate** ([`parse_client_cert_header`]): the proxy did mTLS and
//!   passes the certificate on as RFC 9440 `:<base64 DER>:` or as an URL-escaped PEM (nginx
//!   `$ssl_client_escaped_cert`), like NanoMDM's `-cert-header`.
//!
//! Either way the result is only a *claimed* identity until [`DeviceTrust::verify`] has chained
//! it to one of the configured device CAs and checked it is a valid client-auth certificate,
//! which is what NanoMDM's `certverify` does (roots + intermediates, EKU clientAuth). Callers then
//! bind [`DeviceCertificate::sha256_hex`] to the enrollment (NanoMDM `certauth`, `HashCert`).
//!
//! All inputs arrive from the network; every function here returns an [`IdentityError`] rather
//! than panicking, and bounds its input before decoding it.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509PurposeId, X509StoreContext};

pub use crate::signer::MdmSigner;

/// Largest decoded `Mdm-Signature` accepted. A real one is under 2 KiB (one RSA certificate and
/// one signature); the cap keeps a hostile header from costing more than a bounded parse.
pub const MAX_SIGNATURE_DER: usize = 64 * 1024;

/// Largest forwarded client-certificate header value accepted (after any escaping). A device
/// identity certificate is ~1 KiB of DER, ~2 KiB as escaped PEM.
pub const MAX_CLIENT_CERT_HEADER: usize = 64 * 1024;

/// Why a device identity was refused. The `Display` text is meant for logs: it says which check
/// failed, never echoes the raw input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The header or certificate could not be decoded (bad base64, bad DER/PEM, wrong CMS shape).
    #[error("malformed device identity: {0}")]
    Malformed(String),
    /// The input exceeds the size cap; refused before decoding.
    #[error("device identity too large: {len} bytes, limit {limit}")]
    TooLarge { len: usize, limit: usize },
    /// The CMS structure is well-formed but its signature does not match the request body (or
    /// the embedded signer certificate's key).
    #[error("Mdm-Signature does not verify over the request body")]
    BadSignature,
    /// The certificate does not chain to a configured device CA (or is otherwise unacceptable,
    /// e.g. not yet valid); the message says why.
    #[error("device certificate not trusted: {0}")]
    Untrusted(String),
    /// The device certificate is past its notAfter.
    #[error("device certificate has expired")]
    Expired,
    /// The certificate (or a CA above it) is not usable for TLS client authentication: an
    /// extendedKeyUsage without clientAuth, or a keyUsage without digitalSignature/keyAgreement.
    #[error(
        "device certificate is not valid for TLS client authentication (extendedKeyUsage/keyUsage)"
    )]
    NotClientAuth,
    /// A configured device CA bundle is unusable (not PEM/DER, no certificate, not a CA).
    #[error("invalid device CA: {0}")]
    BadTrustAnchor(String),
    /// OpenSSL failed in a way unrelated to the input (e.g. allocation failure).
    #[error("internal crypto error: {0}")]
    Internal(String),
}

fn internal(e: ErrorStack) -> IdentityError {
    IdentityError::Internal(e.to_string())
}

/// A device identity certificate as received. Nothing about it is trusted until
/// [`DeviceTrust::verify`] accepts it.
#[derive(Clone)]
pub struct DeviceCertificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Lowercase hex SHA-256 of [`Self::der`]: the key that binds the identity to an enrollment
    /// (NanoMDM `HashCert`).
    pub sha256_hex: String,
    /// notAfter as seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// Subject distinguished name (RFC 4514 style, as x509-parser prints it). Often empty: SCEP
    /// identities issued by micromdm/scep to Macs have an empty subject.
    pub subject: String,
    x509: X509,
}

impl DeviceCertificate {
    /// Parse one DER certificate. The encoding must be strict DER with nothing after it, so the
    /// same certificate always yields the same [`Self::sha256_hex`] whichever way it arrived.
    pub fn from_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (rest, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::Malformed(format!("certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(IdentityError::Malformed(format!(
                "{} trailing bytes after the certificate",
                rest.len()
            )));
        }
        let not_after_unix = parsed.validity().not_after.timestamp();
        let subject = parsed.subject().to_string();
        let x509 = X509::from_der(der)
            .map_err(|e| IdentityError::Malformed(format!("certificate (openssl): {e}")))?;
        // Both parsers must see the same bytes: a certificate OpenSSL would re-encode differently
        // is one whose hash depends on the path it took, so refuse it.
        if x509.to_der().map_err(internal)? != der {
            return Err(IdentityError::Malformed(
                "certificate is not in canonical DER".into(),
            ));
        }
        let digest = openssl::hash::hash(MessageDigest::sha256(), der).map_err(internal)?;
        Ok(DeviceCertificate {
            der: der.to_vec(),
            sha256_hex: hex::encode(digest),
            not_after_unix,
            subject,
            x509,
        })
    }

    /// Wrap an OpenSSL certificate (e.g. the signer of a CMS structure).
    pub fn from_x509(x509: &X509) -> Result<Self, IdentityError> {
        let der = x509
            .to_der()
            .map_err(|e| IdentityError::Malformed(format!("certificate: {e}")))?;
        Self::from_der(&der)
    }

    /// The certificate as an OpenSSL object, for further checks.
    pub fn x509(&self) -> &X509 {
        &self.x509
    }
}

impl fmt::Debug for DeviceCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCertificate")
            .field("sha256_hex", &self.sha256_hex)
            .field("subject", &self.subject)
            .field("not_after_unix", &self.not_after_unix)
            .finish_non_exhaustive()
    }
}

impl PartialEq for DeviceCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for DeviceCertificate {}

/// Standard alphabet, padding optional: devices pad, but some proxies and hand-made test clients
/// do not, and padding carries no security meaning here.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64-decode `input`, ignoring ASCII whitespace (headers folded by proxies, or copied with
/// line breaks), refusing anything that would decode to more than `limit` bytes.
fn decode_base64_bounded(input: &str, limit: usize, what: &str) -> Result<Vec<u8>, IdentityError> {
    // Every 4 base64 characters give at most 3 bytes; whitespace only makes the real size smaller.
    // Refusing on the raw length keeps the work below bounded too.
    let raw_cap = limit / 3 * 4 + 4 + limit / 8;
    if input.len() > raw_cap {
        return Err(IdentityError::TooLarge {
            len: input.len(),
            limit: raw_cap,
        });
    }
    // A header value has no line breaks; a PEM-style value pasted by hand may. The decoder
    // refuses whitespace, so the value is decoded as it is first and copied without its
    // whitespace only when that fails (scanning every header for whitespace up front was ~10k
    // instructions a request, callgrind; docs/benchmarks.md).
    let decoded = match B64.decode(input.as_bytes()) {
        Ok(decoded) if !decoded.is_empty() => decoded,
        _ => {
            let compact: Vec<u8> = input.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            if compact.is_empty() {
                return Err(IdentityError::Malformed(format!("{what} is empty")));
            }
            B64.decode(&compact)
                .map_err(|e| IdentityError::Malformed(format!("{what} is not base64: {e}")))?
        }
    };
    if decoded.len() > limit {
        return Err(IdentityError::TooLarge {
            len: decoded.len(),
            limit,
        });
    }
    Ok(decoded)
}

/// Verify an `Mdm-Signature` header over the request body and return the signer certificate.
///
/// `header_value` is the base64 of a detached CMS/PKCS#7 SignedData (BER or DER) over exactly
/// `body`, with exactly one signer whose certificate is embedded. Only the signature is checked
/// here; whether the certificate is an acceptable device identity is [`DeviceTrust::verify`]'s
/// job, so both paths (signature and forwarded certificate) share one trust decision.
pub fn verify_mdm_signature(
    header_value: &str,
    body: &[u8],
) -> Result<DeviceCertificate, IdentityError> {
    let der = decode_base64_bounded(header_value, MAX_SIGNATURE_DER, "Mdm-Signature")?;
    verify_signature_der(&der, body)
}

impl From<DeviceCertificate> for MdmSigner {
    fn from(c: DeviceCertificate) -> Self {
        MdmSigner {
            der: c.der,
            sha256_hex: c.sha256_hex,
            not_after_unix: c.not_after_unix,
        }
    }
}

/// Like [`verify_mdm_signature`], for the request path: the common shape (one signer, no signed
/// attributes, RSA) is verified without OpenSSL's CMS and certificate decoding, which cost most
/// of a request's CPU time; everything else, and every refusal, goes through
/// [`verify_mdm_signature`]'s OpenSSL path. The same signatures are accepted either way.
pub fn verify_mdm_signature_fast(
    header_value: &str,
    body: &[u8],
) -> Result<MdmSigner, IdentityError> {
    let der = decode_base64_bounded(header_value, MAX_SIGNATURE_DER, "Mdm-Signature")?;
    if let Some(signer) = crate::fast_cms::verify_detached(&der, body) {
        return Ok(signer);
    }
    verify_signature_der(&der, body).map(MdmSigner::from)
}

/// The fast path alone, with no OpenSSL fallback: `Some` only when it accepts. For the
/// differential fuzz test (`tests/tests/hostile_input/`): the fast path must never accept what
/// [`verify_mdm_signature`] refuses, nor name another signer.
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub fn verify_mdm_signature_fast_path_only(header_value: &str, body: &[u8]) -> Option<MdmSigner> {
    let der = decode_base64_bounded(header_value, MAX_SIGNATURE_DER, "Mdm-Signature").ok()?;
    crate::fast_cms::verify_detached(&der, body)
}

fn verify_signature_der(der: &[u8], body: &[u8]) -> Result<DeviceCertificate, IdentityError> {
    let p7 = Pkcs7::from_der(der)
        .map_err(|e| IdentityError::Malformed(format!("Mdm-Signature is not CMS: {e}")))?;
    if p7.signed().is_none() {
        return Err(IdentityError::Malformed(
            "Mdm-Signature is not a CMS SignedData".into(),
        ));
    }

    // Only certificates carried in the message may be the signer: passing an empty stack means
    // no outside certificate can be substituted for the one the device sent.
    let no_certs = Stack::<X509>::new().map_err(internal)?;
    let signers = p7
        .signers(&no_certs, Pkcs7Flags::empty())
        .map_err(|e| IdentityError::Malformed(format!("Mdm-Signature signer certificate: {e}")))?;
    if signers.len() != 1 {
        return Err(IdentityError::Malformed(format!(
            "Mdm-Signature must have exactly one signer, found {}",
            signers.len()
        )));
    }
    let signer = signers
        .get(0)
        .ok_or_else(|| IdentityError::Malformed("Mdm-Signature has no signer".into()))?
        .to_owned();

    // NOVERIFY: the chain is DeviceTrust's business (with the SSL-client purpose); here only the
    // signature. NO_DUAL_CONTENT: the signature must be detached, never also carry a payload that
    // differs from what we were sent. BINARY: the body is bytes, never MIME-canonicalised text.
    let empty_store = X509StoreBuilder::new().map_err(internal)?.build();
    let flags = Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY | Pkcs7Flags::NO_DUAL_CONTENT;
    p7.verify(&no_certs, &empty_store, Some(body), None, flags)
        .map_err(|_| IdentityError::BadSignature)?;

    DeviceCertificate::from_x509(&signer)
}

/// Parse a client certificate forwarded by a TLS-terminating proxy.
///
/// Accepted forms: RFC 9440 `:<base64 DER>:`; URL-escaped PEM (nginx
/// `$ssl_client_escaped_cert`); plain PEM. Exactly one certificate. The proxy must overwrite any
/// copy of this header sent by the client; nothing here can tell a forged one apart.
pub fn parse_client_cert_header(value: &str) -> Result<DeviceCertificate, IdentityError> {
    if value.len() > MAX_CLIENT_CERT_HEADER {
        return Err(IdentityError::TooLarge {
            len: value.len(),
            limit: MAX_CLIENT_CERT_HEADER,
        });
    }
    let value = value.trim();
    if value.is_empty() {
        return Err(IdentityError::Malformed(
            "client certificate header is empty".into(),
        ));
    }
    if let Some(inner) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
        let der = decode_base64_bounded(inner, MAX_CLIENT_CERT_HEADER, "RFC 9440 certificate")?;
        return DeviceCertificate::from_der(&der);
    }
    // PEM never contains `%`, so its presence means URL escaping (nginx leaves the dashes
    // and letters of `-----BEGIN` alone but escapes the space and newlines).
    if value.contains('%') {
        // `+` stays `+`: nginx escapes it as %2B, and treating it as a space (query-string
        // decoding) would corrupt base64 from proxies that leave it alone.
        let pem: Vec<u8> = percent_encoding::percent_decode_str(value).collect();
        if pem.starts_with(b"-----BEGIN") {
            return parse_single_pem(&pem);
        }
    } else if value.starts_with("-----BEGIN") {
        return parse_single_pem(value.as_bytes());
    }
    Err(IdentityError::Malformed(
        "client certificate header is neither RFC 9440 (:base64:) nor (URL-escaped) PEM".into(),
    ))
}

fn parse_single_pem(pem: &[u8]) -> Result<DeviceCertificate, IdentityError> {
    let certs = X509::stack_from_pem(pem)
        .map_err(|e| IdentityError::Malformed(format!("client certificate PEM: {e}")))?;
    match certs.as_slice() {
        [one] => DeviceCertificate::from_x509(one),
        [] => Err(IdentityError::Malformed(
            "client certificate PEM holds no certificate".into(),
        )),
        more => Err(IdentityError::Malformed(format!(
            "client certificate PEM must hold one certificate, found {}",
            more.len()
        ))),
    }
}

// OpenSSL's X509_V_ERR_* codes (x509_vfy.h); stable ABI, not exported by the openssl crate.
const V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
const V_ERR_CERT_SIGNATURE_FAILURE: i32 = 7;
const V_ERR_CERT_NOT_YET_VALID: i32 = 9;
const V_ERR_CERT_HAS_EXPIRED: i32 = 10;
const V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const V_ERR_INVALID_PURPOSE: i32 = 26;

/// The device CAs whose certificates are accepted as device identities.
///
/// Every certificate added is a trust anchor, root or intermediate alike (OpenSSL's
/// `PARTIAL_CHAIN`), the way NanoMDM's CA pool treats its `-ca` certificates: configuring just the
/// issuing SCEP CA is enough, and a bundle with root + intermediates works too. The leaf alone
/// is checked: a device does not send intermediates, so they must be in the bundle.
///
/// Cloning is cheap (an `Arc`); it is `Send + Sync`, so share one across request handlers.
/// [`DeviceTrust::add_pem`] and friends rebuild the store and affect only that value, not clones
/// made before; configure it fully at start-up.
#[derive(Clone)]
pub struct DeviceTrust {
    inner: Arc<TrustInner>,
}

struct TrustInner {
    cas: Vec<X509>,
    /// Built once per configuration; `verify` only reads it (X509_STORE lookups are locked
    /// inside OpenSSL, so concurrent verifications are safe).
    store: X509Store,
}

impl fmt::Debug for DeviceTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceTrust")
            .field("cas", &self.inner.cas.len())
            .finish_non_exhaustive()
    }
}

impl DeviceTrust {
    /// Trust the CA certificates in a PEM bundle (one or more `CERTIFICATE` blocks; other PEM
    /// blocks are skipped). At least one certificate is required.
    pub fn from_pem(pem: &[u8]) -> Result<Self, IdentityError> {
        let cas = parse_ca_pem(pem)?;
        Self::build(cas)
    }

    /// Add the CA certificates of another PEM bundle.
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<(), IdentityError> {
        let more = parse_ca_pem(pem)?;
        self.extend(more)
    }

    /// Add one DER CA certificate.
    pub fn add_der(&mut self, der: &[u8]) -> Result<(), IdentityError> {
        let ca = X509::from_der(der)
            .map_err(|e| IdentityError::BadTrustAnchor(format!("not a DER certificate: {e}")))?;
        self.extend(vec![ca])
    }

    /// Add one CA certificate.
    pub fn add_x509(&mut self, ca: X509) -> Result<(), IdentityError> {
        self.extend(vec![ca])
    }

    /// The configured CA certificates.
    pub fn cas(&self) -> &[X509] {
        &self.inner.cas
    }

    fn extend(&mut self, more: Vec<X509>) -> Result<(), IdentityError> {
        let mut cas = self.inner.cas.clone();
        cas.extend(more);
        *self = Self::build(cas)?;
        Ok(())
    }

    fn build(cas: Vec<X509>) -> Result<Self, IdentityError> {
        for ca in &cas {
            check_is_ca(ca)?;
        }
        let mut builder = X509StoreBuilder::new().map_err(internal)?;
        for ca in &cas {
            if let Err(e) = builder.add_cert(ca.clone()) {
                // The same CA given twice (e.g. in two bundles) is harmless; OpenSSL 3 ignores
                // duplicates, older versions report them. Anything else is a real failure.
                if !e.to_string().contains("already in hash table") {
                    return Err(IdentityError::BadTrustAnchor(e.to_string()));
                }
            }
        }
        // The identity's real use is TLS client auth (and signing as that client). Without a
        // purpose OpenSSL checks no EKU at all; any other purpose refuses device certificates
        // as "unsuitable certificate purpose".
        builder
            .set_purpose(X509PurposeId::SSL_CLIENT)
            .map_err(internal)?;
        builder
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(internal)?;
        Ok(DeviceTrust {
            inner: Arc::new(TrustInner {
                cas,
                store: builder.build(),
            }),
        })
    }

    /// Accept `cert` as a device identity: it chains to a configured CA, is within its validity
    /// period now, and is usable for TLS client authentication (OpenSSL's SSL-client purpose:
    /// EKU must include clientAuth when present, keyUsage must allow digitalSignature or
    /// keyAgreement when present, and the same EKU rule for the CAs above it).
    pub fn verify(&self, cert: &DeviceCertificate) -> Result<(), IdentityError> {
        let untrusted = Stack::<X509>::new().map_err(internal)?;
        let mut ctx = X509StoreContext::new().map_err(internal)?;
        let (ok, error, depth) = ctx
            .init(&self.inner.store, cert.x509(), &untrusted, |c| {
                let ok = c.verify_cert()?;
                Ok((ok, c.error(), c.error_depth()))
            })
            .map_err(internal)?;
        if ok {
            return Ok(());
        }
        Err(classify(error.as_raw(), error.error_string(), depth))
    }
}

fn classify(code: i32, reason: &str, depth: u32) -> IdentityError {
    match (code, depth) {
        (V_ERR_CERT_HAS_EXPIRED, 0) => IdentityError::Expired,
        (V_ERR_CERT_NOT_YET_VALID, 0) => {
            IdentityError::Untrusted("certificate is not yet valid (check the clocks)".into())
        }
        (V_ERR_INVALID_PURPOSE, _) => IdentityError::NotClientAuth,
        (
            V_ERR_UNABLE_TO_GET_ISSUER_CERT
            | V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
            | V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
            | V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
            _,
        ) => IdentityError::Untrusted(format!("issued by an unknown CA ({reason})")),
        (V_ERR_CERT_SIGNATURE_FAILURE, _) => {
            IdentityError::Untrusted(format!("bad CA signature at depth {depth} ({reason})"))
        }
        (V_ERR_CERT_HAS_EXPIRED | V_ERR_CERT_NOT_YET_VALID, _) => IdentityError::Untrusted(
            format!("issuing CA at depth {depth} is outside its validity period ({reason})"),
        ),
        _ => IdentityError::Untrusted(format!("{reason} (depth {depth})")),
    }
}

fn parse_ca_pem(pem: &[u8]) -> Result<Vec<X509>, IdentityError> {
    let cas = X509::stack_from_pem(pem)
        .map_err(|e| IdentityError::BadTrustAnchor(format!("not a PEM bundle: {e}")))?;
    if cas.is_empty() {
        return Err(IdentityError::BadTrustAnchor(
            "PEM bundle holds no certificate".into(),
        ));
    }
    Ok(cas)
}

/// A trust anchor must be a CA: with `PARTIAL_CHAIN`, a leaf put in the bundle by mistake would
/// otherwise be accepted as its own identity, and could sign nothing else anyway.
fn check_is_ca(ca: &X509) -> Result<(), IdentityError> {
    let der = ca.to_der().map_err(internal)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| IdentityError::BadTrustAnchor(format!("certificate: {e}")))?;
    if parsed.is_ca() {
        Ok(())
    } else {
        Err(IdentityError::BadTrustAnchor(format!(
            "{:?} is not a CA certificate (basicConstraints CA:TRUE missing)",
            parsed.subject().to_string()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER1: &str = include_str!("../testdata/mdm-signature/header1-ber-sha1.b64");
    const HEADER2: &str = include_str!("../testdata/mdm-signature/header2-ber-sha1.b64");
    const BODY2: &[u8] = include_bytes!("../testdata/mdm-signature/body2.plist");

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn shared_types_are_send_sync() {
        assert_send_sync::<DeviceTrust>();
        assert_send_sync::<DeviceCertificate>();
        assert_send_sync::<IdentityError>();
    }

    #[test]
    fn real_mac_signature_verifies() {
        let cert = verify_mdm_signature(HEADER2, BODY2).expect("real Mac signature must verify");
        // The fixture's signer: micromdm/scep identity, serial 34, empty subject, 2031 expiry.
        assert_eq!(
            cert.x509()
                .serial_number()
                .to_bn()
                .unwrap()
                .to_dec_str()
                .unwrap()
                .to_string(),
            "34"
        );
        assert_eq!(cert.subject, "");
        assert_eq!(cert.not_after_unix, 1_937_538_563); // 2031-05-26T05:09:23Z
        let expected = hex::encode(openssl::sha::sha256(&cert.der));
        assert_eq!(cert.sha256_hex, expected);
        assert_eq!(cert.sha256_hex.len(), 64);
        assert!(
            cert.sha256_hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn real_mac_signature_header1_parses_but_not_over_body2() {
        let der = decode_base64_bounded(HEADER1, MAX_SIGNATURE_DER, "h").unwrap();
        let p7 = Pkcs7::from_der(&der).expect("header1 is BER CMS");
        let no_certs = Stack::new().unwrap();
        let signers = p7.signers(&no_certs, Pkcs7Flags::empty()).unwrap();
        assert_eq!(signers.len(), 1);
        let signer = DeviceCertificate::from_x509(&signers.get(0).unwrap().to_owned()).unwrap();
        assert_eq!(signer.sha256_hex.len(), 64);
        assert!(matches!(
            verify_mdm_signature(HEADER1, BODY2),
            Err(IdentityError::BadSignature)
        ));
    }

    #[test]
    fn real_mac_signature_rejects_any_body_change() {
        let mut body = BODY2.to_vec();
        for i in 0..body.len() {
            body[i] ^= 0x01;
            assert!(
                matches!(
                    verify_mdm_signature(HEADER2, &body),
                    Err(IdentityError::BadSignature)
                ),
                "flip at {i} accepted"
            );
            body[i] ^= 0x01;
        }
        let mut longer = BODY2.to_vec();
        longer.push(b'\n');
        assert!(verify_mdm_signature(HEADER2, &longer).is_err());
        assert!(verify_mdm_signature(HEADER2, &BODY2[..BODY2.len() - 1]).is_err());
        assert!(verify_mdm_signature(HEADER2, b"").is_err());
    }

    #[test]
    fn header_whitespace_is_tolerated() {
        let folded: String = HEADER2
            .trim()
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n ");
        let padded = format!("  \n{folded}\t\n");
        let a = verify_mdm_signature(&padded, BODY2).unwrap();
        let b = verify_mdm_signature(HEADER2, BODY2).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn empty_or_non_base64_headers_are_told_apart() {
        // Decoded as sent first, without whitespace only when that fails: both paths must
        // still name the problem.
        for empty in ["", "   ", "\r\n\t "] {
            match decode_base64_bounded(empty, MAX_SIGNATURE_DER, "Mdm-Signature") {
                Err(IdentityError::Malformed(m)) => assert!(m.contains("is empty"), "{m}"),
                other => panic!("{empty:?}: {other:?}"),
            }
        }
        for bad in ["not*base64", "ab c*", "===="] {
            match decode_base64_bounded(bad, MAX_SIGNATURE_DER, "Mdm-Signature") {
                Err(IdentityError::Malformed(m)) => assert!(m.contains("not base64"), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert_eq!(
            decode_base64_bounded("aGV5\n", MAX_SIGNATURE_DER, "x").unwrap(),
            b"hey"
        );
    }

    #[test]
    fn base64_bound_refuses_before_decoding() {
        let huge = "A".repeat(MAX_SIGNATURE_DER * 2);
        assert!(matches!(
            verify_mdm_signature(&huge, BODY2),
            Err(IdentityError::TooLarge { .. })
        ));
        // Just above the decoded cap but within the raw slack: still refused.
        let over = "A".repeat((MAX_SIGNATURE_DER + 3) / 3 * 4);
        assert!(matches!(
            decode_base64_bounded(&over, MAX_SIGNATURE_DER, "x"),
            Err(IdentityError::TooLarge { .. })
        ));
        // Exactly at the cap decodes.
        let at = "A".repeat(MAX_SIGNATURE_DER / 3 * 4);
        assert!(decode_base64_bounded(&at, MAX_SIGNATURE_DER, "x").is_ok());
    }

    #[test]
    fn from_der_refuses_trailing_and_non_der() {
        let cert = verify_mdm_signature(HEADER2, BODY2).unwrap();
        assert!(DeviceCertificate::from_der(&cert.der).is_ok());
        let mut trailing = cert.der.clone();
        trailing.push(0);
        assert!(matches!(
            DeviceCertificate::from_der(&trailing),
            Err(IdentityError::Malformed(_))
        ));
        // Long-form length where short/shorter form is required: valid BER, not DER.
        let mut ber = vec![0x30, 0x84];
        let len = u32::try_from(cert.der.len() - 4).unwrap();
        ber.extend_from_slice(&len.to_be_bytes());
        ber.extend_from_slice(&cert.der[4..]);
        assert!(DeviceCertificate::from_der(&ber).is_err());
    }

    #[test]
    fn classify_maps_reasons() {
        let r = "reason";
        assert!(matches!(
            classify(V_ERR_CERT_HAS_EXPIRED, r, 0),
            IdentityError::Expired
        ));
        assert!(matches!(
            classify(V_ERR_CERT_HAS_EXPIRED, r, 1),
            IdentityError::Untrusted(_)
        ));
        assert!(matches!(
            classify(V_ERR_INVALID_PURPOSE, r, 0),
            IdentityError::NotClientAuth
        ));
        match classify(V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, r, 0) {
            IdentityError::Untrusted(m) => assert!(m.contains("unknown CA"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
