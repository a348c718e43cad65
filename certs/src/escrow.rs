//! The FileVault escrow key pair: the certificate a Mac encrypts its personal recovery key to
//! (Apple's `com.apple.security.FDERecoveryKeyEscrow` payload names it through a
//! `com.apple.security.pkcs1` payload; `RotateFileVaultKey` sends it as
//! `ReplyEncryptionCertificate`), and opening what the Mac sends back
//! (`SecurityInfo.FDE_PersonalRecoveryKeyCMS`, `RotateResult.EncryptedNewRecoveryKey`: CMS
//! EnvelopedData, RSA key transport).

use crate::ca::{random_serial, time_from_now};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509Builder, X509Name};

/// RSA size of the escrow key: what Apple's clients encrypt to with key transport.
const ESCROW_RSA_BITS: u32 = 2048;
/// The certificate outlives any Mac: a key escrowed today must open in ten years.
const ESCROW_VALIDITY_SECS: i64 = 20 * 365 * 24 * 3600;
/// Largest envelope accepted: a recovery key is 29 characters; Apple's envelope with one
/// recipient is well under 4 KiB.
pub const MAX_ENVELOPE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    #[error("not a CMS envelope: {0}")]
    Malformed(String),
    #[error("the envelope does not open with this escrow key: {0}")]
    Decrypt(String),
    #[error("envelope larger than {MAX_ENVELOPE} bytes")]
    TooLarge,
    #[error(transparent)]
    OpenSsl(#[from] ErrorStack),
}

/// A new escrow key pair: a self-signed RSA certificate for key encipherment (it is never a
/// CA and signs nothing), returned as (certificate DER, private key PKCS#8 DER).
pub fn generate_escrow_key(common_name: &str) -> Result<(Vec<u8>, Vec<u8>), EscrowError> {
    let key = PKey::from_rsa(Rsa::generate(ESCROW_RSA_BITS)?)?;
    let mut name = X509Name::builder()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let serial = random_serial()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let not_before = time_from_now(-300)?;
    b.set_not_before(&not_before)?;
    let not_after = time_from_now(ESCROW_VALIDITY_SECS)?;
    b.set_not_after(&not_after)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_encipherment()
            .data_encipherment()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build().to_der()?, key.private_key_to_pkcs8()?))
}

/// Opens an envelope a Mac sent with the escrow key pair (certificate DER, PKCS#8 key DER).
pub fn open_envelope(
    envelope: &[u8],
    cert_der: &[u8],
    key_der: &[u8],
) -> Result<Vec<u8>, EscrowError> {
    if envelope.len() > MAX_ENVELOPE {
        return Err(EscrowError::TooLarge);
    }
    let cms =
        CmsContentInfo::from_der(envelope).map_err(|e| EscrowError::Malformed(e.to_string()))?;
    let cert = X509::from_der(cert_der)?;
    let key = PKey::private_key_from_pkcs8(key_der)?;
    cms.decrypt(&key, &cert)
        .map_err(|e| EscrowError::Decrypt(e.to_string()))
}

/// Encrypts `data` to a certificate (DER) as a Mac does: CMS EnvelopedData, AES-256-CBC, RSA
/// key transport. Russet never needs it; the simulated Macs of the tests do.
pub fn seal_envelope(data: &[u8], cert_der: &[u8]) -> Result<Vec<u8>, EscrowError> {
    let mut certs = Stack::<X509>::new()?;
    certs.push(X509::from_der(cert_der)?)?;
    let cms = CmsContentInfo::encrypt(&certs, data, Cipher::aes_256_cbc(), CMSOptions::BINARY)?;
    Ok(cms.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_sealed_to_the_escrow_certificate_opens_with_its_key_only() {
        let (cert, key) = generate_escrow_key("Russet FileVault Escrow").unwrap();
        let env = seal_envelope(b"ABCD-EFGH-2345-JKLM-NPQR-STUV", &cert).unwrap();
        let opened = open_envelope(&env, &cert, &key).unwrap();
        assert_eq!(opened, b"ABCD-EFGH-2345-JKLM-NPQR-STUV");
        let (other_cert, other_key) = generate_escrow_key("Another").unwrap();
        assert!(matches!(
            open_envelope(&env, &other_cert, &other_key),
            Err(EscrowError::Decrypt(_))
        ));
        let x = X509::from_der(&cert).unwrap();
        assert!(
            x.subject_name()
                .entries()
                .any(|e| e.data().as_slice() == b"Russet FileVault Escrow")
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (cert, key) = generate_escrow_key("Russet FileVault Escrow").unwrap();
        for bad in [
            &b""[..],
            b"\x30\x03\x02\x01\x01",
            b"not cms at all",
            &[0x30, 0x82, 0xff, 0xff],
        ] {
            assert!(open_envelope(bad, &cert, &key).is_err());
        }
        let big = vec![0u8; MAX_ENVELOPE + 1];
        assert!(matches!(
            open_envelope(&big, &cert, &key),
            Err(EscrowError::TooLarge)
        ));
    }
}
