//! The MDM push certificate request (Apple, Device Management: Setting up push notifications for
//! your MDM customers).
//!
//! Apple issues a customer's MDM push certificate only for a CSR that an MDM vendor has signed:
//!
//! 1. the customer generates an RSA 2048 key and a Keychain-style CSR ([`generate_push_csr`]);
//! 2. the vendor checks the CSR ([`check_csr`]) and signs its DER with the key of its "MDM CSR"
//!    certificate, RSA PKCS#1 v1.5 with SHA-256 ([`vendor_sign`]);
//! 3. the result is an XML plist with exactly three string keys (`PushCertRequestCSR`,
//!    `PushCertCertificateChain`, `PushCertSignature`), base64-encoded as a whole: the file the
//!    customer uploads to `https://identity.apple.com/pushcert`.
//!
//! The issued certificate's subject UID is the APNs topic ([`certificate_topic`]).
//!
//! Pure functions over bytes; every private-key operation stays in OpenSSL.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{Signer, Verifier};
use openssl::x509::{X509, X509NameBuilder, X509NameRef, X509Ref, X509Req, X509ReqRef};

/// RSA modulus size of a generated push key (Keychain Access and MicroMDM use 2048).
pub const PUSH_RSA_BITS: u32 = 2048;
/// Smallest RSA modulus accepted in a CSR handed to the vendor signer.
pub const MIN_CSR_RSA_BITS: u32 = 2048;
/// Largest CSR (PEM or DER) accepted. A 4096-bit CSR with a long subject is ~2 KB.
const MAX_CSR_INPUT: usize = 64 * 1024;
/// Largest PEM certificate bundle accepted by [`load_pem_certs`].
const MAX_PEM_INPUT: usize = 1024 * 1024;
/// Largest upload file accepted by [`parse_vendor_request`] (a real one is ~10 KB).
const MAX_UPLOAD_FILE: usize = 256 * 1024;

const KEY_CSR: &str = "PushCertRequestCSR";
const KEY_CHAIN: &str = "PushCertCertificateChain";
const KEY_SIGNATURE: &str = "PushCertSignature";

/// Why a push-certificate operation failed. Messages are meant for operators and logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushCertError {
    /// A field of [`PushCsrSubject`] cannot go into a certificate subject.
    #[error("invalid CSR subject: {0}")]
    InvalidSubject(String),
    /// The input is not a PEM or DER certificate signing request.
    #[error("not a certificate signing request: {0}")]
    NotACsr(String),
    /// The CSR's self-signature does not verify with the public key it contains.
    #[error("the certificate request's self-signature does not verify with its own public key")]
    BadCsrSignature,
    /// The CSR's key is not RSA (Apple's push certificates are RSA).
    #[error("the certificate request's key is {0}, not RSA")]
    NotRsa(String),
    /// The CSR's RSA key is too small.
    #[error("the certificate request's RSA key has {bits} bits; at least {min} are required")]
    WeakKey {
        /// Modulus size found in the CSR.
        bits: u32,
        /// Smallest accepted modulus size.
        min: u32,
    },
    /// The vendor private key is not the key of the vendor certificate.
    #[error("the vendor private key does not match the vendor certificate")]
    VendorKeyMismatch,
    /// The vendor key is not RSA, so it cannot make the PKCS#1 v1.5 signature Apple expects.
    #[error("the vendor key is {0}, not RSA")]
    VendorKeyNotRsa(String),
    /// A PEM certificate bundle is unreadable or empty.
    #[error("invalid certificate PEM: {0}")]
    InvalidCertificate(String),
    /// An upload file is not a push certificate request.
    #[error("not a push certificate request: {0}")]
    InvalidRequest(String),
    /// OpenSSL failed for a reason unrelated to the input.
    #[error("internal crypto error: {0}")]
    Internal(String),
}

impl From<ErrorStack> for PushCertError {
    fn from(e: ErrorStack) -> Self {
        PushCertError::Internal(e.to_string())
    }
}

/// Result type of this module.
pub type Result<T, E = PushCertError> = std::result::Result<T, E>;

/// Subject of a customer push CSR, as Keychain Access writes it: C, CN, emailAddress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCsrSubject {
    /// Common name, e.g. the organisation's name. Required.
    pub common_name: String,
    /// Contact e-mail address (ASCII).
    pub email: Option<String>,
    /// Two-letter ISO 3166 country code.
    pub country: Option<String>,
}

/// What [`check_csr`] found in an acceptable CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrSummary {
    /// One-line subject, e.g. `C=US, CN=Example, emailAddress=admin@example.com`.
    pub subject: String,
    /// RSA modulus size.
    pub key_bits: u32,
}

/// A vendor-signed push certificate request.
#[derive(Clone, PartialEq, Eq)]
pub struct VendorSigned {
    /// The file the customer uploads to the Apple Push Certificates Portal: base64 of
    /// [`plist_xml`](Self::plist_xml), one line.
    pub upload_file: String,
    /// The XML plist before base64 encoding.
    pub plist_xml: String,
}

impl fmt::Debug for VendorSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorSigned")
            .field("upload_file_len", &self.upload_file.len())
            .finish_non_exhaustive()
    }
}

/// The three values of a decoded upload file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The customer CSR, DER.
    pub csr_der: Vec<u8>,
    /// Vendor certificate followed by Apple's intermediate and root, concatenated PEM.
    pub chain_pem: String,
    /// RSA PKCS#1 v1.5 SHA-256 signature over [`csr_der`](Self::csr_der) by the vendor key.
    pub signature: Vec<u8>,
}

impl ParsedRequest {
    /// The chain's certificates, vendor certificate first.
    pub fn chain(&self) -> Result<Vec<X509>> {
        load_pem_certs(self.chain_pem.as_bytes())
    }

    /// Checks the signature against the first (vendor) certificate of the chain and returns
    /// that certificate. Does not validate the chain itself: Apple does that on upload.
    pub fn verify_signature(&self) -> Result<X509> {
        let vendor = self
            .chain()?
            .into_iter()
            .next()
            .ok_or_else(|| PushCertError::InvalidRequest("empty certificate chain".into()))?;
        let public = vendor.public_key()?;
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public)?;
        if public.id() == Id::RSA {
            verifier.set_rsa_padding(Padding::PKCS1)?;
        }
        verifier.update(&self.csr_der)?;
        match verifier.verify(&self.signature) {
            Ok(true) => Ok(vendor),
            _ => Err(PushCertError::InvalidRequest(
                "PushCertSignature does not verify with the vendor certificate".into(),
            )),
        }
    }
}

/// Generates an RSA 2048 key and a SHA-256 CSR with subject C, CN, emailAddress.
pub fn generate_push_csr(subject: &PushCsrSubject) -> Result<(PKey<Private>, X509Req)> {
    let cn = subject.common_name.trim();
    if cn.is_empty() {
        return Err(PushCertError::InvalidSubject("common name is empty".into()));
    }
    if cn.len() > 64 {
        // ub-common-name (RFC 5280).
        return Err(PushCertError::InvalidSubject(
            "common name is longer than 64 characters".into(),
        ));
    }
    let country = match subject.country.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(c) => {
            return Err(PushCertError::InvalidSubject(format!(
                "country {c:?} is not a two-letter code"
            )));
        }
    };
    let email = match subject.email.as_deref().map(str::trim) {
        None | Some("") => None,
        // emailAddress is an IA5String (ASCII), at most 255 characters (RFC 5280).
        Some(e) if e.len() <= 255 && e.contains('@') && e.bytes().all(|b| b.is_ascii_graphic()) => {
            Some(e)
        }
        Some(e) => {
            return Err(PushCertError::InvalidSubject(format!(
                "e-mail address {e:?} is not a plain ASCII address"
            )));
        }
    };

    let mut name = X509NameBuilder::new()?;
    if let Some(c) = &country {
        name.append_entry_by_nid(Nid::COUNTRYNAME, c)?;
    }
    name.append_entry_by_nid(Nid::COMMONNAME, cn)
        .map_err(|e| PushCertError::InvalidSubject(format!("common name: {e}")))?;
    if let Some(e) = email {
        name.append_entry_by_nid(Nid::PKCS9_EMAILADDRESS, e)?;
    }
    let name = name.build();

    let key = PKey::from_rsa(Rsa::generate(PUSH_RSA_BITS)?)?;
    let mut req = X509Req::builder()?;
    // PKCS#10 version 1 is encoded as 0; some OpenSSL builds leave it unset otherwise.
    req.set_version(0)?;
    req.set_subject_name(&name)?;
    req.set_pubkey(&key)?;
    req.sign(&key, MessageDigest::sha256())?;
    Ok((key, req.build()))
}

/// Reads a CSR from PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER.
pub fn parse_csr(input: &[u8]) -> Result<X509Req> {
    if input.len() > MAX_CSR_INPUT {
        return Err(PushCertError::NotACsr(format!(
            "{} bytes is larger than the {MAX_CSR_INPUT}-byte limit",
            input.len()
        )));
    }
    let trimmed = input.trim_ascii();
    if trimmed.is_empty() {
        return Err(PushCertError::NotACsr("empty input".into()));
    }
    if trimmed.starts_with(b"-----BEGIN") {
        X509Req::from_pem(trimmed).map_err(|e| PushCertError::NotACsr(format!("bad PEM: {e}")))
    } else {
        X509Req::from_der(input).map_err(|e| PushCertError::NotACsr(format!("bad DER: {e}")))
    }
}

/// Checks that a CSR can be vendor-signed: its self-signature verifies with its own key, and
/// that key is RSA of at least [`MIN_CSR_RSA_BITS`] bits.
pub fn check_csr(csr: &X509ReqRef) -> Result<CsrSummary> {
    let public = csr
        .public_key()
        .map_err(|e| PushCertError::NotACsr(format!("unreadable public key: {e}")))?;
    // An unknown signature algorithm is an error rather than `false`: both mean "not proven".
    if !csr.verify(&public).unwrap_or(false) {
        return Err(PushCertError::BadCsrSignature);
    }
    if public.id() != Id::RSA {
        return Err(PushCertError::NotRsa(key_type_name(public.id())));
    }
    let bits = public.bits();
    if bits < MIN_CSR_RSA_BITS {
        return Err(PushCertError::WeakKey {
            bits,
            min: MIN_CSR_RSA_BITS,
        });
    }
    Ok(CsrSummary {
        subject: name_to_string(csr.subject_name()),
        key_bits: bits,
    })
}

/// Signs a customer CSR as the MDM vendor and builds Apple's push certificate request.
///
/// `chain` is what follows the vendor certificate in `PushCertCertificateChain`: Apple's WWDR
/// intermediate, then Apple's root (the caller supplies them; this module does no I/O).
pub fn vendor_sign(
    csr_input: &[u8],
    vendor_cert: &X509Ref,
    vendor_key: &PKeyRef<Private>,
    chain: &[X509],
) -> Result<VendorSigned> {
    let csr = parse_csr(csr_input)?;
    check_csr(&csr)?;
    if vendor_key.id() != Id::RSA {
        return Err(PushCertError::VendorKeyNotRsa(key_type_name(
            vendor_key.id(),
        )));
    }
    if !public_key_matches(vendor_cert, vendor_key) {
        return Err(PushCertError::VendorKeyMismatch);
    }

    let csr_der = csr.to_der()?;
    let mut signer = Signer::new(MessageDigest::sha256(), vendor_key)?;
    signer.set_rsa_padding(Padding::PKCS1)?;
    signer.update(&csr_der)?;
    let signature = signer.sign_to_vec()?;

    // OpenSSL writes PEM with 64-character lines, one certificate after another.
    let mut chain_pem = String::from_utf8(vendor_cert.to_pem()?)
        .map_err(|e| PushCertError::Internal(e.to_string()))?;
    for cert in chain {
        chain_pem.push_str(
            std::str::from_utf8(&cert.to_pem()?)
                .map_err(|e| PushCertError::Internal(e.to_string()))?,
        );
    }

    let plist_xml = request_plist(
        &STANDARD.encode(&csr_der),
        &chain_pem,
        &STANDARD.encode(signature),
    );
    Ok(VendorSigned {
        upload_file: STANDARD.encode(plist_xml.as_bytes()),
        plist_xml,
    })
}

/// Decodes an upload file made by [`vendor_sign`] (or by another vendor's tool).
///
/// Accepts base64 with or without line breaks, and reads only `<key>`/`<string>` pairs of the
/// top-level dictionary; all three keys must be present exactly once.
pub fn parse_vendor_request(upload_file: &str) -> Result<ParsedRequest> {
    let compact: Vec<u8> = upload_file
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.len() > MAX_UPLOAD_FILE {
        return Err(PushCertError::InvalidRequest(format!(
            "{} bytes is larger than the {MAX_UPLOAD_FILE}-byte limit",
            compact.len()
        )));
    }
    let xml = STANDARD
        .decode(&compact)
        .map_err(|e| PushCertError::InvalidRequest(format!("not base64: {e}")))?;
    let xml = String::from_utf8(xml)
        .map_err(|_| PushCertError::InvalidRequest("decoded plist is not UTF-8".into()))?;

    let mut csr = None;
    let mut chain = None;
    let mut signature = None;
    for (key, value) in plist_string_dict(&xml)? {
        let slot = match key.as_str() {
            KEY_CSR => &mut csr,
            KEY_CHAIN => &mut chain,
            KEY_SIGNATURE => &mut signature,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(PushCertError::InvalidRequest(format!(
                "{key} appears twice"
            )));
        }
    }
    let missing = |k: &str| PushCertError::InvalidRequest(format!("{k} is missing"));
    let csr = csr.ok_or_else(|| missing(KEY_CSR))?;
    let chain_pem = chain.ok_or_else(|| missing(KEY_CHAIN))?;
    let signature = signature.ok_or_else(|| missing(KEY_SIGNATURE))?;
    let b64 = |k: &str, v: &str| {
        let compact: Vec<u8> = v.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        STANDARD
            .decode(compact)
            .map_err(|e| PushCertError::InvalidRequest(format!("{k} is not base64: {e}")))
    };
    Ok(ParsedRequest {
        csr_der: b64(KEY_CSR, &csr)?,
        chain_pem,
        signature: b64(KEY_SIGNATURE, &signature)?,
    })
}

/// Reads every certificate of a PEM bundle, in order. An input without certificates is an error.
pub fn load_pem_certs(pem: &[u8]) -> Result<Vec<X509>> {
    if pem.len() > MAX_PEM_INPUT {
        return Err(PushCertError::InvalidCertificate(format!(
            "{} bytes is larger than the {MAX_PEM_INPUT}-byte limit",
            pem.len()
        )));
    }
    let certs =
        X509::stack_from_pem(pem).map_err(|e| PushCertError::InvalidCertificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(PushCertError::InvalidCertificate(
            "no CERTIFICATE block found".into(),
        ));
    }
    Ok(certs)
}

/// The APNs topic of a push certificate: its subject UID (0.9.2342.19200300.100.1.1), e.g.
/// `com.apple.mgmt.External.<uuid>`. `None` when the subject has no UID.
pub fn certificate_topic(cert: &X509Ref) -> Option<String> {
    let entry = cert.subject_name().entries_by_nid(Nid::USERID).next()?;
    let topic = entry.data().to_string().ok()?;
    (!topic.is_empty()).then_some(topic)
}

/// Whether `key` is the private key of `cert`.
pub fn public_key_matches(cert: &X509Ref, key: &PKeyRef<Private>) -> bool {
    cert.public_key()
        .map(|public| public.public_eq(key))
        .unwrap_or(false)
}

/// The XML plist Apple expects, in the key order MicroMDM's `PushCertificateRequest` writes.
fn request_plist(csr_b64: &str, chain_pem: &str, signature_b64: &str) -> String {
    let mut xml = String::with_capacity(csr_b64.len() + chain_pem.len() + 1024);
    xml.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" ",
        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
        "<plist version=\"1.0\">\n<dict>\n",
    ));
    for (key, value) in [
        (KEY_CSR, csr_b64),
        (KEY_CHAIN, chain_pem),
        (KEY_SIGNATURE, signature_b64),
    ] {
        xml.push_str("\t<key>");
        xml.push_str(&xml_escape(key));
        xml.push_str("</key>\n\t<string>");
        xml.push_str(&xml_escape(value));
        xml.push_str("</string>\n");
    }
    xml.push_str("</dict>\n</plist>\n");
    xml
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

fn xml_unescape(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let semi = rest
            .find(';')
            .ok_or_else(|| PushCertError::InvalidRequest("unterminated XML entity".into()))?;
        let entity = &rest[1..semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32).ok_or_else(|| {
                    PushCertError::InvalidRequest(format!("unknown XML entity &{entity};"))
                })?
            }
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `<key>`/`<string>` pairs of a plist's top-level `<dict>`. Only string values are
/// supported: that is all a push certificate request contains.
fn plist_string_dict(xml: &str) -> Result<Vec<(String, String)>> {
    let bad = |m: &str| PushCertError::InvalidRequest(m.to_string());
    if !xml.contains("<plist") {
        return Err(bad("decoded file is not an XML plist"));
    }
    let start = xml
        .find("<dict>")
        .ok_or_else(|| bad("plist has no <dict>"))?
        + "<dict>".len();
    let end = xml
        .rfind("</dict>")
        .filter(|&e| e >= start)
        .ok_or_else(|| bad("plist has no </dict>"))?;
    let mut body = &xml[start..end];
    let mut pairs = Vec::new();
    loop {
        body = body.trim_start();
        if body.is_empty() {
            break;
        }
        let (key, rest) =
            take_element(body, "key").ok_or_else(|| bad("expected <key> in plist dict"))?;
        let (value, rest) = take_element(rest.trim_start(), "string").ok_or_else(|| {
            PushCertError::InvalidRequest(format!("value of {key} is not a <string>"))
        })?;
        pairs.push((xml_unescape(key)?, xml_unescape(value)?));
        body = rest;
    }
    Ok(pairs)
}

/// Splits `<tag>text</tag>rest` into `(text, rest)`; `<tag/>` gives an empty text.
fn take_element<'a>(s: &'a str, tag: &str) -> Option<(&'a str, &'a str)> {
    let empty = format!("<{tag}/>");
    if let Some(rest) = s.strip_prefix(empty.as_str()) {
        return Some(("", rest));
    }
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let inner = s.strip_prefix(open.as_str())?;
    let end = inner.find(close.as_str())?;
    Some((&inner[..end], &inner[end + close.len()..]))
}

fn key_type_name(id: Id) -> String {
    match id {
        Id::RSA_PSS => "RSA-PSS".into(),
        Id::EC => "EC".into(),
        Id::DSA => "DSA".into(),
        Id::ED25519 => "Ed25519".into(),
        Id::ED448 => "Ed448".into(),
        other => format!("key type {}", other.as_raw()),
    }
}

fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let nid = entry.object().nid();
            let field = nid
                .short_name()
                .map(str::to_string)
                .unwrap_or_else(|_| entry.object().to_string());
            let value = entry
                .data()
                .to_string()
                .unwrap_or_else(|_| hex::encode(entry.data().as_slice()));
            format!("{field}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plist_escaping_round_trips() {
        let xml = request_plist("a&b", "<pem>\n'\"", "sig");
        let pairs = plist_string_dict(&xml).expect("parse");
        assert_eq!(
            pairs,
            vec![
                (KEY_CSR.to_string(), "a&b".to_string()),
                (KEY_CHAIN.to_string(), "<pem>\n'\"".to_string()),
                (KEY_SIGNATURE.to_string(), "sig".to_string()),
            ]
        );
    }

    #[test]
    fn unescape_rejects_unknown_entities() {
        assert!(xml_unescape("&bogus;").is_err());
        assert!(xml_unescape("&amp").is_err());
        assert_eq!(xml_unescape("&#65;&#x42;").expect("numeric"), "AB");
    }

    #[test]
    fn non_string_values_are_refused() {
        let xml = "<plist><dict><key>PushCertRequestCSR</key><data>AA==</data></dict></plist>";
        assert!(plist_string_dict(xml).is_err());
    }

    #[test]
    fn subject_validation() {
        let subject = |cn: &str, country: Option<&str>, email: Option<&str>| PushCsrSubject {
            common_name: cn.into(),
            country: country.map(Into::into),
            email: email.map(Into::into),
        };
        assert!(generate_push_csr(&subject(" ", None, None)).is_err());
        assert!(generate_push_csr(&subject("x", Some("USA"), None)).is_err());
        assert!(generate_push_csr(&subject("x", None, Some("not an address"))).is_err());
    }
}
