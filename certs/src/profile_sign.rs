//! Signing of configuration profiles (`.mobileconfig`): an **attached** CMS SignedData over the
//! plist bytes, DER, binary mode (no MIME canonicalisation), like MicroMDM's
//! `profileutil.Sign`. Served as `application/x-apple-aspen-config`.

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509PurposeId, X509Ref};

/// Largest signed profile [`verify_signed_profile`] accepts.
pub const MAX_SIGNED_PROFILE: usize = 8 * 1024 * 1024;

/// Why signing or verifying a profile failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileSignError {
    /// The input is not a signed profile (not CMS SignedData, detached, too large).
    #[error("malformed signed profile: {0}")]
    Malformed(String),
    /// The signature or the certificate chain does not verify.
    #[error("signed profile does not verify: {0}")]
    BadSignature(String),
    /// OpenSSL failed for a reason unrelated to the input (e.g. key does not match cert).
    #[error("profile signing failed: {0}")]
    Internal(String),
}

/// Sign `profile` (the plist bytes) as attached CMS SignedData, DER. `chain` (intermediates)
/// is embedded alongside the signer certificate so devices can build the path.
pub fn sign_profile(
    signer_cert: &X509Ref,
    signer_key: &PKeyRef<Private>,
    chain: &[X509],
    profile: &[u8],
) -> Result<Vec<u8>, ProfileSignError> {
    let internal = |e: openssl::error::ErrorStack| ProfileSignError::Internal(e.to_string());
    let mut certs = Stack::<X509>::new().map_err(internal)?;
    for cert in chain {
        certs.push(cert.clone()).map_err(internal)?;
    }
    let p7 = Pkcs7::sign(
        signer_cert,
        signer_key,
        &certs,
        profile,
        Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP,
    )
    .map_err(internal)?;
    p7.to_der().map_err(internal)
}

/// Verify a signed profile against `trust` (roots; any intermediates must be embedded) and
/// return the signed content. Certificate purpose is not checked (profile signers are often
/// TLS certificates). For tests and diagnostics.
pub fn verify_signed_profile(der: &[u8], trust: &[X509]) -> Result<Vec<u8>, ProfileSignError> {
    let internal = |e: openssl::error::ErrorStack| ProfileSignError::Internal(e.to_string());
    let mut store = X509StoreBuilder::new().map_err(internal)?;
    for cert in trust {
        store.add_cert(cert.clone()).map_err(internal)?;
    }
    store.set_purpose(X509PurposeId::ANY).map_err(internal)?;
    content(der, Some(store.build()))
}

/// The content of a signed profile whose signature verifies, whoever signed it: for a profile
/// Russet passes on to a Mac, which judges the signer itself.
pub fn signed_profile_content(der: &[u8]) -> Result<Vec<u8>, ProfileSignError> {
    content(der, None)
}

/// The embedded content, its signature checked; the signer's chain too when `trust` is given.
fn content(der: &[u8], trust: Option<X509Store>) -> Result<Vec<u8>, ProfileSignError> {
    if der.len() > MAX_SIGNED_PROFILE {
        return Err(ProfileSignError::Malformed(format!(
            "{} bytes, limit {MAX_SIGNED_PROFILE}",
            der.len()
        )));
    }
    let internal = |e: openssl::error::ErrorStack| ProfileSignError::Internal(e.to_string());
    let p7 = Pkcs7::from_der(der).map_err(|e| ProfileSignError::Malformed(e.to_string()))?;
    let mut flags = Pkcs7Flags::BINARY | Pkcs7Flags::NO_DUAL_CONTENT;
    let store = match trust {
        Some(store) => store,
        None => {
            flags |= Pkcs7Flags::NOVERIFY;
            X509StoreBuilder::new().map_err(internal)?.build()
        }
    };
    let no_certs = Stack::<X509>::new().map_err(internal)?;
    let mut out = Vec::new();
    p7.verify(&no_certs, &store, None, Some(&mut out), flags)
        .map_err(|e| ProfileSignError::BadSignature(e.to_string()))?;
    Ok(out)
}
