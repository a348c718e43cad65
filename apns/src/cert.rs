//! The MDM push certificate: the TLS client identity for APNs, and the topic it pushes to.

use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Ref};

/// Every MDM push topic starts with this (NanoMDM `cryptoutil.TopicFromCert` requires it).
pub const MDM_TOPIC_PREFIX: &str = "com.apple.mgmt.";

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no certificate found in the PEM data")]
    NoCertificate,
    #[error("no private key found in the PEM data (an unencrypted PEM key is required): {0}")]
    NoKey(openssl::error::ErrorStack),
    #[error("the private key does not belong to any certificate given")]
    KeyMismatch,
    #[error("the certificate subject has no UID (0.9.2342.19200300.100.1.1), so no push topic")]
    NoTopic,
    #[error(
        "push topic {0:?} does not start with {MDM_TOPIC_PREFIX:?}: not an MDM push certificate"
    )]
    NotMdmTopic(String),
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// An MDM push certificate with its private key, checked and normalised: the leaf comes first,
/// the key is PKCS#8 (what every TLS stack accepts), the topic and expiry are read once.
#[derive(Clone)]
pub struct PushCertificate {
    /// Leaf first, then any chain certificates that came with it.
    cert_pem: Vec<u8>,
    /// PKCS#8 PEM (`BEGIN PRIVATE KEY`), whatever form it was given in.
    key_pem: Vec<u8>,
    topic: String,
    not_after_unix: i64,
}

impl std::fmt::Debug for PushCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushCertificate")
            .field("topic", &self.topic)
            .field("not_after_unix", &self.not_after_unix)
            .finish_non_exhaustive()
    }
}

impl PushCertificate {
    /// From the certificate PEM (optionally followed by chain certificates) and an unencrypted
    /// private key PEM (PKCS#1 `RSA PRIVATE KEY`, SEC1 or PKCS#8).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertificateError> {
        let certs = X509::stack_from_pem(cert_pem)?;
        let key = PKey::private_key_from_pem(key_pem).map_err(CertificateError::NoKey)?;
        Self::from_parts(certs, &key)
    }

    /// From one buffer holding certificate(s) and key, as NanoMDM's `PUT /v1/pushcert` takes it.
    pub fn from_combined_pem(pem: &[u8]) -> Result<Self, CertificateError> {
        Self::from_pem(pem, pem)
    }

    fn from_parts(certs: Vec<X509>, key: &PKey<Private>) -> Result<Self, CertificateError> {
        if certs.is_empty() {
            return Err(CertificateError::NoCertificate);
        }
        // The leaf is whichever certificate the key belongs to; keep the others as its chain.
        let leaf_idx = certs
            .iter()
            .position(|c| c.public_key().is_ok_and(|pk| pk.public_eq(key)))
            .ok_or(CertificateError::KeyMismatch)?;
        let leaf = &certs[leaf_idx];
        let topic = topic_of(leaf).ok_or(CertificateError::NoTopic)?;
        if !topic.starts_with(MDM_TOPIC_PREFIX) {
            return Err(CertificateError::NotMdmTopic(topic));
        }
        let not_after_unix = unix_time(leaf.not_after())?;
        let mut cert_pem = leaf.to_pem()?;
        for (i, c) in certs.iter().enumerate() {
            if i != leaf_idx {
                cert_pem.extend_from_slice(&c.to_pem()?);
            }
        }
        Ok(Self {
            cert_pem,
            key_pem: key.private_key_to_pem_pkcs8()?,
            topic,
            not_after_unix,
        })
    }

    /// The `apns-topic`: the subject UID, `com.apple.mgmt.External.<uuid>`.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// End of validity, Unix seconds. Push certificates last a year; renew before this.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after_unix
    }

    /// Leaf certificate first, then chain, PEM.
    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// The private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> &[u8] {
        &self.key_pem
    }

    /// Certificate(s) and PKCS#8 key in one PEM buffer: what `reqwest::Identity::from_pem` takes.
    pub fn identity_pem(&self) -> Vec<u8> {
        let mut v = self.cert_pem.clone();
        v.extend_from_slice(&self.key_pem);
        v
    }
}

/// The subject UID attribute (OID 0.9.2342.19200300.100.1.1) of a certificate, if present.
pub fn topic_of(cert: &X509Ref) -> Option<String> {
    cert.subject_name()
        .entries_by_nid(Nid::USERID)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

fn unix_time(t: &openssl::asn1::Asn1TimeRef) -> Result<i64, openssl::error::ErrorStack> {
    let diff = Asn1Time::from_unix(0)?.diff(t)?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}
