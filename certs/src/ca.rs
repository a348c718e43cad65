//! Russet's certificate authority: the CA that answers SCEP and issues device identities, and
//! the issuer of the self-signed development TLS certificate.
//!
//! The CA key must be **RSA**: SCEP clients (macOS included) encrypt their request to the CA
//! certificate with RSA key transport and cannot encrypt to an EC key. A generated CA uses RSA
//! 3072; an operator-supplied CA is refused by [`CertificateAuthority::from_pem`] unless its key is
//! RSA ≥ 2048 bits and matches the certificate.
//!
//! Every private-key operation stays in OpenSSL. The key is handed out only as PEM
//! ([`CertificateAuthority::key_pem`]) so the caller can seal it at rest; this module does no I/O.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name, X509NameRef, X509Ref, X509Req, X509ReqRef};
use x509_parser::prelude::FromDer as _;

/// RSA modulus size of a generated CA key.
pub const CA_RSA_BITS: u32 = 3072;
/// Smallest RSA modulus accepted for an imported CA key.
pub const MIN_CA_RSA_BITS: u32 = 2048;
/// Validity of a generated CA certificate (10 years).
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far in the past `notBefore` is set on issued certificates, to tolerate device clock skew.
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Largest PEM/DER input accepted by the import and issue functions.
const MAX_INPUT: usize = 256 * 1024;

/// Why a CA operation failed. Messages are meant for operators and logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The operator's CA certificate or key cannot be used (wrong key type, mismatch, not PEM).
    #[error("unusable CA: {0}")]
    InvalidCa(String),
    /// A certificate signing request cannot be used (bad DER, bad self-signature, bad key).
    #[error("unusable certificate request: {0}")]
    InvalidRequest(String),
    /// A host name for the TLS certificate is empty or not a valid DNS name/IP address.
    #[error("invalid host name for TLS certificate: {0}")]
    InvalidHost(String),
    /// OpenSSL failed for a reason unrelated to the input.
    #[error("internal crypto error: {0}")]
    Internal(String),
}

impl From<ErrorStack> for CaError {
    fn from(e: ErrorStack) -> Self {
        CaError::Internal(e.to_string())
    }
}

/// An RSA certificate authority (certificate + private key).
pub struct CertificateAuthority {
    cert: X509,
    key: PKey<Private>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("CertificateAuthority")
            .field("subject", &name_to_string(self.cert.subject_name()))
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generate a new self-signed CA: RSA 3072, `CN=<common_name>, O=<organization>`,
    /// basicConstraints CA:true (critical), keyUsage keyCertSign|cRLSign (critical), SKI/AKI,
    /// 10-year validity, random 128-bit serial, SHA-256 signature.
    pub fn generate(common_name: &str, organization: &str) -> Result<Self, CaError> {
        if common_name.is_empty() {
            return Err(CaError::InvalidCa("empty common name".into()));
        }
        let key = PKey::from_rsa(Rsa::generate(CA_RSA_BITS)?)?;
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
        if !organization.is_empty() {
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, organization)?;
        }
        let name = name.build();

        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial = random_serial()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let not_before = time_from_now(-(BACKDATE.as_secs() as i64))?;
        b.set_not_before(&not_before)?;
        let not_after = time_from_now(CA_VALIDITY.as_secs() as i64)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(None, None))?;
        b.append_extension(aki)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(CertificateAuthority {
            cert: b.build(),
            key,
        })
    }

    /// Import an operator's CA from PEM. The first certificate in `cert_pem` is the CA; the key
    /// must be RSA (SCEP needs RSA key transport; see the module documentation) of at least 2048
    /// bits, must match the certificate, and the certificate must not be marked as a non-CA.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CaError> {
        if cert_pem.len() > MAX_INPUT || key_pem.len() > MAX_INPUT {
            return Err(CaError::InvalidCa("input too large".into()));
        }
        let cert = X509::from_pem(cert_pem)
            .map_err(|e| CaError::InvalidCa(format!("CA certificate is not PEM: {e}")))?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| CaError::InvalidCa(format!("CA key is not a PEM private key: {e}")))?;
        if key.id() != Id::RSA {
            return Err(CaError::InvalidCa(format!(
                "the SCEP CA key must be RSA, got {}: SCEP clients (macOS included) encrypt \
                 their requests to the CA with RSA key transport; use an RSA CA (3072 bits \
                 recommended) or let Russet generate one",
                key_type_name(&key)
            )));
        }
        if key.bits() < MIN_CA_RSA_BITS {
            return Err(CaError::InvalidCa(format!(
                "the CA RSA key has {} bits; at least {MIN_CA_RSA_BITS} are required",
                key.bits()
            )));
        }
        let cert_key = cert.public_key()?;
        if !cert_key.public_eq(&key) {
            return Err(CaError::InvalidCa(
                "the CA private key does not match the CA certificate".into(),
            ));
        }
        let der = cert.to_der()?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| CaError::InvalidCa(format!("CA certificate does not parse: {e}")))?;
        if let Ok(Some(bc)) = parsed.basic_constraints()
            && !bc.value.ca
        {
            return Err(CaError::InvalidCa(
                "the certificate has basicConstraints CA:false; it cannot issue certificates"
                    .into(),
            ));
        }
        Ok(CertificateAuthority { cert, key })
    }

    /// The CA certificate.
    pub fn cert(&self) -> &X509Ref {
        &self.cert
    }

    /// The CA private key (for OpenSSL operations in this crate).
    pub(crate) fn key(&self) -> &PKeyRef<Private> {
        &self.key
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.cert.to_pem()?)
    }

    /// The CA certificate as DER (what GetCACert serves).
    pub fn cert_der(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.cert.to_der()?)
    }

    /// The CA private key as unencrypted PKCS#8 PEM, for the caller to seal at rest. Handle as
    /// a secret.
    pub fn key_pem(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.key.private_key_to_pem_pkcs8()?)
    }

    /// Issue a device identity certificate from a PKCS#10 request (DER, or use
    /// [`Self::issue_device_certificate`] with a parsed request).
    pub fn issue_device_certificate_der(
        &self,
        csr_der: &[u8],
        subject_override: Option<&X509NameRef>,
        validity: Duration,
    ) -> Result<X509, CaError> {
        if csr_der.len() > MAX_INPUT {
            return Err(CaError::InvalidRequest("request too large".into()));
        }
        let csr = X509Req::from_der(csr_der)
            .map_err(|e| CaError::InvalidRequest(format!("not a PKCS#10 request: {e}")))?;
        self.issue_device_certificate(&csr, subject_override, validity)
    }

    /// Issue a device identity certificate: subject from the request (or `subject_override`),
    /// the request's public key, random serial, basicConstraints CA:false, keyUsage
    /// digitalSignature|keyEncipherment (critical), extendedKeyUsage clientAuth, SKI/AKI,
    /// SHA-256 signature. The request's self-signature must verify. Extensions requested in the
    /// CSR (e.g. subjectAltName) are not copied.
    pub fn issue_device_certificate(
        &self,
        csr: &X509ReqRef,
        subject_override: Option<&X509NameRef>,
        validity: Duration,
    ) -> Result<X509, CaError> {
        let pubkey: PKey<Public> = csr
            .public_key()
            .map_err(|e| CaError::InvalidRequest(format!("unreadable public key: {e}")))?;
        if !csr.verify(&pubkey).unwrap_or(false) {
            return Err(CaError::InvalidRequest(
                "the request's self-signature does not verify".into(),
            ));
        }
        let subject = subject_override.unwrap_or(csr.subject_name());
        let mut b = self.leaf_builder(subject, &pubkey, validity)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        self.finish_leaf(b)
    }

    /// Issue a TLS server certificate for `hosts` (DNS names and IP addresses, all put into the
    /// subjectAltName; the first is also the CN) with a fresh P-256 key. extendedKeyUsage
    /// serverAuth, keyUsage digitalSignature. Used for the self-signed development TLS
    /// certificate; keep `validity` ≤ 825 days or Apple clients refuse it.
    pub fn issue_tls_server_certificate(
        &self,
        hosts: &[String],
        validity: Duration,
    ) -> Result<(X509, PKey<Private>), CaError> {
        let first = hosts
            .first()
            .ok_or_else(|| CaError::InvalidHost("no host names given".into()))?;
        let key = PKey::from_ec_key(EcKey::generate(
            EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?.as_ref(),
        )?)?;
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::COMMONNAME, first)
            .map_err(|_| CaError::InvalidHost(first.clone()))?;
        let name = name.build();
        let pubkey = PKey::public_key_from_der(&key.public_key_to_der()?)?;
        let mut b = self.leaf_builder(&name, &pubkey, validity)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let mut san = SubjectAlternativeName::new();
        for host in hosts {
            let host = host.trim();
            if host.parse::<IpAddr>().is_ok() {
                san.ip(host);
            } else if is_dns_name(host) {
                san.dns(host);
            } else {
                return Err(CaError::InvalidHost(host.to_string()));
            }
        }
        let san = san
            .build(&b.x509v3_context(Some(&self.cert), None))
            .map_err(|e| CaError::InvalidHost(e.to_string()))?;
        b.append_extension(san)?;
        Ok((self.finish_leaf(b)?, key))
    }

    fn leaf_builder(
        &self,
        subject: &X509NameRef,
        pubkey: &PKeyRef<Public>,
        validity: Duration,
    ) -> Result<X509Builder, CaError> {
        let secs = i64::try_from(validity.as_secs())
            .map_err(|_| CaError::InvalidRequest("validity too long".into()))?;
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial = random_serial()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(subject)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(pubkey)?;
        let not_before = time_from_now(-(BACKDATE.as_secs() as i64))?;
        b.set_not_before(&not_before)?;
        let not_after = time_from_now(secs)?;
        b.set_not_after(&not_after)?;
        Ok(b)
    }

    fn finish_leaf(&self, mut b: X509Builder) -> Result<X509, CaError> {
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok(b.build())
    }
}

/// A random positive 128-bit serial number.
pub(crate) fn random_serial() -> Result<Asn1Integer, ErrorStack> {
    let mut bn = BigNum::new()?;
    bn.rand(128, MsbOption::MAYBE_ZERO, false)?;
    if bn.num_bits() == 0 {
        bn.add_word(1)?;
    }
    bn.to_asn1_integer()
}

/// `now + offset_secs` as an ASN.1 time.
pub(crate) fn time_from_now(offset_secs: i64) -> Result<Asn1Time, ErrorStack> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Asn1Time::from_unix(now.saturating_add(offset_secs))
}

pub(crate) fn name_to_string(name: &X509NameRef) -> String {
    name.to_der()
        .ok()
        .and_then(|der| {
            x509_parser::x509::X509Name::from_der(&der)
                .ok()
                .map(|(_, n)| n.to_string())
        })
        .unwrap_or_default()
}

fn key_type_name<T>(key: &PKeyRef<T>) -> String {
    match key.id() {
        Id::EC => "an EC key".into(),
        Id::ED25519 => "an Ed25519 key".into(),
        Id::ED448 => "an Ed448 key".into(),
        Id::DSA => "a DSA key".into(),
        other => format!("key type {}", other.as_raw()),
    }
}

fn is_dns_name(host: &str) -> bool {
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
