//! Test helpers that play the part of Macs: a throwaway device CA, device identities issued the way
//! micromdm/scep issues them (RSA 2048, keyUsage digitalSignature+keyEncipherment, EKU clientAuth),
//! and the headers such a device (or its TLS proxy) sends. Only compiled with the `test-util`
//! feature; it panics on OpenSSL failure because a broken fixture should fail the test that uses
//! it, loudly.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name, X509Ref};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use crate::identity::DeviceCertificate;

const HOUR: i64 = 3600;
const YEAR: i64 = 365 * 24 * HOUR;

/// What extendedKeyUsage a test certificate gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TestEku {
    /// `clientAuth`, like a real device identity.
    #[default]
    ClientAuth,
    /// `serverAuth` only: a certificate that must be refused as a device identity.
    ServerAuthOnly,
    /// No extendedKeyUsage extension at all (acceptable: any use is allowed).
    Absent,
}

/// When a test certificate is valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TestValidity {
    /// now − 1 h … now + 1 year.
    #[default]
    Current,
    /// now − 2 years … now − 1 day.
    Expired,
    /// now + 1 day … now + 1 year.
    NotYetValid,
}

/// Options for [`TestCa::issue_with`]; `Default` gives a normal device identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct IssueOptions {
    pub eku: TestEku,
    pub validity: TestValidity,
    /// Fixed serial number (default: random 64-bit). Two certificates from one CA with the same
    /// serial are indistinguishable by issuerAndSerialNumber, which CMS uses to find its signer.
    pub serial: Option<u32>,
    /// Sign the certificate with SHA-1, as Apple's device CA does.
    pub sha1: bool,
}

impl IssueOptions {
    /// What Apple's "Apple iPhone Device CA" issues to a device: SHA-1, no extendedKeyUsage,
    /// and (here) outside its validity period, since Apple says the dates are ignored.
    pub fn legacy() -> Self {
        IssueOptions {
            eku: TestEku::Absent,
            validity: TestValidity::Expired,
            serial: None,
            sha1: true,
        }
    }
}

/// A self-signed device CA (or an intermediate made by [`TestCa::issue_intermediate`]).
pub struct TestCa {
    pub cert: X509,
    pub key: PKey<Private>,
}

/// A device identity: certificate and private key, as the Mac keeps them in its keychain.
pub struct DeviceIdentity {
    pub cert: X509,
    pub key: PKey<Private>,
}

fn now_unix() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs();
    i64::try_from(secs).expect("clock out of range")
}

fn rsa2048() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("RSA keygen")).expect("PKey")
}

fn name(common_name: &str) -> X509Name {
    let mut b = X509Name::builder().expect("name builder");
    b.append_entry_by_text("O", "Russet tests").expect("O");
    b.append_entry_by_text("CN", common_name).expect("CN");
    b.build()
}

fn serial(fixed: Option<u32>) -> Asn1Integer {
    let bn = match fixed {
        Some(n) => BigNum::from_u32(n).expect("bn"),
        None => {
            let mut bn = BigNum::new().expect("bn");
            bn.rand(64, MsbOption::MAYBE_ZERO, false).expect("rand");
            bn
        }
    };
    bn.to_asn1_integer().expect("serial")
}

fn set_validity(b: &mut X509Builder, validity: TestValidity) {
    let now = now_unix();
    let (from, to) = match validity {
        TestValidity::Current => (now - HOUR, now + YEAR),
        TestValidity::Expired => (now - 2 * YEAR, now - 24 * HOUR),
        TestValidity::NotYetValid => (now + 24 * HOUR, now + YEAR),
    };
    b.set_not_before(&Asn1Time::from_unix(from).expect("time"))
        .expect("notBefore");
    b.set_not_after(&Asn1Time::from_unix(to).expect("time"))
        .expect("notAfter");
}

impl TestCa {
    /// A self-signed RSA 2048 CA: basicConstraints CA:TRUE, keyUsage keyCertSign+cRLSign.
    pub fn new(common_name: &str) -> TestCa {
        let now = now_unix();
        Self::self_signed(
            common_name,
            rsa2048(),
            MessageDigest::sha256(),
            (now - HOUR, now + YEAR),
        )
    }

    /// A self-signed CA valid over `(from, to)` (Unix seconds).
    fn self_signed(
        common_name: &str,
        key: PKey<Private>,
        digest: MessageDigest,
        (from, to): (i64, i64),
    ) -> TestCa {
        let subject = name(common_name);
        let mut b = X509Builder::new().expect("builder");
        b.set_version(2).expect("version");
        b.set_serial_number(&serial(None)).expect("serial");
        b.set_subject_name(&subject).expect("subject");
        b.set_issuer_name(&subject).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        b.set_not_before(&Asn1Time::from_unix(from).expect("time"))
            .expect("notBefore");
        b.set_not_after(&Asn1Time::from_unix(to).expect("time"))
            .expect("notAfter");
        Self::add_ca_extensions(&mut b, None);
        b.sign(&key, digest).expect("sign");
        TestCa {
            cert: b.build(),
            key,
        }
    }

    fn add_ca_extensions(b: &mut X509Builder, issuer: Option<&X509Ref>) {
        let bc = BasicConstraints::new().critical().ca().build().expect("bc");
        b.append_extension(bc).expect("bc");
        let ku = KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .expect("ku");
        b.append_extension(ku).expect("ku");
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(issuer, None))
            .expect("ski");
        b.append_extension(ski).expect("ski");
        if issuer.is_some() {
            let aki = AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(issuer, None))
                .expect("aki");
            b.append_extension(aki).expect("aki");
        }
    }

    /// The CA certificate, PEM: what an operator configures as a device CA.
    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().expect("pem")
    }

    /// An intermediate CA signed by this one.
    pub fn issue_intermediate(&self, common_name: &str) -> TestCa {
        let key = rsa2048();
        let mut b = X509Builder::new().expect("builder");
        b.set_version(2).expect("version");
        b.set_serial_number(&serial(None)).expect("serial");
        b.set_subject_name(&name(common_name)).expect("subject");
        b.set_issuer_name(self.cert.subject_name()).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        set_validity(&mut b, TestValidity::Current);
        Self::add_ca_extensions(&mut b, Some(&self.cert));
        b.sign(&self.key, MessageDigest::sha256()).expect("sign");
        TestCa {
            cert: b.build(),
            key,
        }
    }

    /// A normal device identity: RSA 2048, EKU clientAuth, keyUsage digitalSignature +
    /// keyEncipherment, valid now − 1 h … now + 1 year.
    pub fn issue_device_identity(&self, common_name: &str) -> DeviceIdentity {
        self.issue_with(common_name, IssueOptions::default())
    }

    /// A device identity with deliberate defects, for refusal tests.
    pub fn issue_with(&self, common_name: &str, opts: IssueOptions) -> DeviceIdentity {
        let key = rsa2048();
        let mut b = X509Builder::new().expect("builder");
        b.set_version(2).expect("version");
        b.set_serial_number(&serial(opts.serial)).expect("serial");
        b.set_subject_name(&name(common_name)).expect("subject");
        b.set_issuer_name(self.cert.subject_name()).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        set_validity(&mut b, opts.validity);
        let bc = BasicConstraints::new().critical().build().expect("bc");
        b.append_extension(bc).expect("bc");
        let ku = KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .expect("ku");
        b.append_extension(ku).expect("ku");
        match opts.eku {
            TestEku::ClientAuth => {
                let eku = ExtendedKeyUsage::new().client_auth().build().expect("eku");
                b.append_extension(eku).expect("eku");
            }
            TestEku::ServerAuthOnly => {
                let eku = ExtendedKeyUsage::new().server_auth().build().expect("eku");
                b.append_extension(eku).expect("eku");
            }
            TestEku::Absent => {}
        }
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .expect("aki");
        b.append_extension(aki).expect("aki");
        let digest = if opts.sha1 {
            MessageDigest::sha1()
        } else {
            MessageDigest::sha256()
        };
        b.sign(&self.key, digest).expect("sign");
        DeviceIdentity {
            cert: b.build(),
            key,
        }
    }

    /// A CA shaped like Apple's "Apple iPhone Device CA": RSA 1024, SHA-1, valid 2007–2014
    /// only. For ADE MachineInfo tests (nobody outside Apple can sign as the real one).
    pub fn legacy_device_ca(common_name: &str) -> TestCa {
        let key = PKey::from_rsa(Rsa::generate(1024).expect("RSA keygen")).expect("PKey");
        // 2007-04-16 … 2014-04-16, the real device CA's validity.
        Self::self_signed(
            common_name,
            key,
            MessageDigest::sha1(),
            (1_176_764_086, 1_397_688_886),
        )
    }
}

/// What nginx's `$ssl_client_escaped_cert` leaves unescaped (RFC 3986 unreserved).
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl DeviceIdentity {
    fn sign(&self, body: &[u8], flags: Pkcs7Flags) -> String {
        let no_extra = Stack::<X509>::new().expect("stack");
        let p7 = Pkcs7::sign(&self.cert, &self.key, &no_extra, body, flags).expect("pkcs7 sign");
        STANDARD.encode(p7.to_der().expect("der"))
    }

    /// An `Mdm-Signature` header value for `body`, as a Mac with `SignMessage` = true sends it:
    /// base64 of a detached SignedData, one signer, its certificate embedded, no signed
    /// attributes (like the real fixtures). Digest SHA-256 (OpenSSL's default for RSA keys).
    pub fn sign_body(&self, body: &[u8]) -> String {
        self.sign(
            body,
            Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOATTR,
        )
    }

    /// Like [`Self::sign_body`] but with signed attributes (contentType, signingTime,
    /// messageDigest), the shape NanoMDM's Go test client (`pkcs7.NewSignedData`) produces.
    pub fn sign_body_with_attributes(&self, body: &[u8]) -> String {
        self.sign(
            body,
            Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP,
        )
    }

    /// An attached CMS SignedData (DER) carrying `content`, as a Mac signs its MachineInfo
    /// during Setup Assistant.
    pub fn sign_attached(&self, content: &[u8]) -> Vec<u8> {
        let no_extra = Stack::<X509>::new().expect("stack");
        Pkcs7::sign(
            &self.cert,
            &self.key,
            &no_extra,
            content,
            Pkcs7Flags::BINARY,
        )
        .expect("pkcs7 sign")
        .to_der()
        .expect("der")
    }

    /// A detached signature (DER) over `content`: carries no content.
    pub fn sign_detached_der(&self, content: &[u8]) -> Vec<u8> {
        let no_extra = Stack::<X509>::new().expect("stack");
        let flags = Pkcs7Flags::BINARY | Pkcs7Flags::DETACHED;
        Pkcs7::sign(&self.cert, &self.key, &no_extra, content, flags)
            .expect("pkcs7 sign")
            .to_der()
            .expect("der")
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.to_der().expect("der")
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().expect("pem")
    }

    /// The forwarded-certificate header in RFC 9440 form, `:<base64 DER>:`.
    pub fn rfc9440_header(&self) -> String {
        format!(":{}:", STANDARD.encode(self.cert_der()))
    }

    /// The forwarded-certificate header as nginx's `$ssl_client_escaped_cert` (URL-escaped PEM).
    pub fn escaped_pem_header(&self) -> String {
        percent_encoding::percent_encode(&self.cert_pem(), URI_COMPONENT).to_string()
    }

    /// Lowercase hex SHA-256 of the certificate DER: the value the server binds to the enrollment.
    pub fn sha256_hex(&self) -> String {
        hex::encode(openssl::sha::sha256(&self.cert_der()))
    }

    /// The certificate as the server sees it.
    pub fn device_certificate(&self) -> DeviceCertificate {
        DeviceCertificate::from_x509(&self.cert).expect("own certificate parses")
    }
}
