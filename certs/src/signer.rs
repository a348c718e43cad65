//! The verified signer of an `Mdm-Signature`: what both verification paths return, the
//! OpenSSL one in [`crate::identity`] and the fast one in `fast_cms`.

/// The signer of a verified `Mdm-Signature`, in the light form a request needs: the identity
/// (hash) and expiry, and the certificate's DER for the chain check when it is not cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdmSigner {
    /// The signer certificate, DER.
    pub der: Vec<u8>,
    /// Lowercase hex SHA-256 of [`Self::der`] (as
    /// [`DeviceCertificate::sha256_hex`](crate::identity::DeviceCertificate::sha256_hex)).
    pub sha256_hex: String,
    /// notAfter as seconds since the Unix epoch.
    pub not_after_unix: i64,
}
