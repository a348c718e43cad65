//! Throwaway PKI for tests and demos: a CA, TLS server certificates, and push certificates
//! shaped like Apple's (subject UID = topic, clientAuth). Never for production use.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509Builder, X509Name, X509NameBuilder};

/// A test certificate authority (EC P-256).
pub struct TestCa {
    cert: X509,
    key: PKey<Private>,
}

/// A certificate and its key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl TestCa {
    pub fn new(common_name: &str) -> Result<Self, ErrorStack> {
        let key = ec_key()?;
        let name = name(&[(Nid::COMMONNAME, common_name)])?;
        let mut b = builder(&name, &name, &key, -1, 3650)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            cert: b.build(),
            key,
        })
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap_or_default()
    }

    /// A TLS server certificate (EC P-256, serverAuth) for the given DNS names / IP addresses.
    pub fn issue_server(&self, hosts: &[&str]) -> Result<IssuedCert, ErrorStack> {
        let key = ec_key()?;
        let cn = hosts.first().copied().unwrap_or("localhost");
        let subject = name(&[(Nid::COMMONNAME, cn)])?;
        let mut b = builder(&subject, self.cert.subject_name(), &key, -1, 825)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let mut san = SubjectAlternativeName::new();
        for h in hosts {
            if h.parse::<std::net::IpAddr>().is_ok() {
                san.ip(h);
            } else {
                san.dns(h);
            }
        }
        b.append_extension(san.build(&b.x509v3_context(Some(&self.cert), None))?)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok(IssuedCert {
            cert_pem: b.build().to_pem()?,
            key_pem: key.private_key_to_pem_pkcs8()?,
        })
    }

    /// A push certificate like the Apple Push Certificates Portal issues: RSA 2048, subject
    /// `UID=<topic>, CN=APSP:<uuid>`, clientAuth, valid for a year from yesterday. The key is
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`), the form `openssl genrsa` and many MDMs produce.
    pub fn issue_push_certificate(&self, topic: &str) -> Result<IssuedCert, ErrorStack> {
        self.issue_push_certificate_valid(topic, -1, 365)
    }

    /// As [`issue_push_certificate`](Self::issue_push_certificate) with explicit validity:
    /// from `start_days` (relative to now) for `days` days.
    pub fn issue_push_certificate_valid(
        &self,
        topic: &str,
        start_days: i64,
        days: u32,
    ) -> Result<IssuedCert, ErrorStack> {
        let rsa = Rsa::generate(2048)?;
        let key_pem = rsa.private_key_to_pem()?;
        let key = PKey::from_rsa(rsa)?;
        let uuid = topic.rsplit('.').next().unwrap_or(topic);
        let subject = name(&[
            (Nid::USERID, topic),
            (Nid::COMMONNAME, &format!("APSP:{uuid}")),
            (Nid::COUNTRYNAME, "US"),
        ])?;
        let mut b = builder(&subject, self.cert.subject_name(), &key, start_days, days)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok(IssuedCert {
            cert_pem: b.build().to_pem()?,
            key_pem,
        })
    }
}

/// A fresh topic, `com.apple.mgmt.External.<random uuid>`.
pub fn random_topic() -> String {
    let mut b = [0u8; 16];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = nanos.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "com.apple.mgmt.External.{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn ec_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn name(entries: &[(Nid, &str)]) -> Result<X509Name, ErrorStack> {
    let mut n = X509NameBuilder::new()?;
    for (nid, v) in entries {
        n.append_entry_by_nid(*nid, v)?;
    }
    Ok(n.build())
}

fn builder(
    subject: &X509Name,
    issuer: &openssl::x509::X509NameRef,
    key: &PKey<Private>,
    start_days: i64,
    days: u32,
) -> Result<X509Builder, ErrorStack> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    serial.set_bit(0)?; // never zero
    let serial: Asn1Integer = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let start = now + start_days * 86_400;
    let not_before = Asn1Time::from_unix(start)?;
    let not_after = Asn1Time::from_unix(start + i64::from(days) * 86_400)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    Ok(b)
}
