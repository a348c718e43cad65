//! DEP server tokens (Apple, Device Management: Authenticating for Automated Device Enrollment):
//! the key pair and self-signed certificate an admin uploads to Apple Business/School Manager, and
//! decryption of the `_smime.p7m` token file Apple hands back (S/MIME around CMS EnvelopedData,
//! whose content is MIME text with the OAuth JSON between `-----BEGIN MESSAGE-----` and
//! `-----END MESSAGE-----`).

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509NameBuilder};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Validity of the link certificate. Apple only needs it for the upload and to encrypt the token;
/// decryption does not check dates.
pub const LINK_CERT_DAYS: u32 = 365;

const BEGIN_MESSAGE: &str = "-----BEGIN MESSAGE-----";
const END_MESSAGE: &str = "-----END MESSAGE-----";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("OpenSSL error while {context}: {source}")]
    OpenSsl {
        context: &'static str,
        #[source]
        source: openssl::error::ErrorStack,
    },
    #[error("the token file is neither S/MIME (a `_smime.p7m` from Apple) nor a JSON token")]
    NotSmime,
    #[error(
        "the token was encrypted to a different certificate than this DEP link's (download a new token after uploading this link's certificate)"
    )]
    WrongCertificate,
    #[error("could not decrypt the token: {0}")]
    Decrypt(String),
    #[error("the decrypted token has no -----BEGIN MESSAGE----- / -----END MESSAGE----- block")]
    NoMessageBlock,
    #[error("the token JSON is invalid: {0}")]
    BadJson(String),
    #[error("the token JSON lacks the field `{0}`")]
    MissingField(String),
}

fn ossl(context: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> TokenError {
    move |source| TokenError::OpenSsl { context, source }
}

/// The OAuth 1.0a credentials of a DEP server token, with Apple's field names.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthTokens {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub access_token: String,
    pub access_secret: String,
    #[serde(with = "time::serde::rfc3339")]
    pub access_token_expiry: OffsetDateTime,
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"<redacted>")
            .field("access_token", &"<redacted>")
            .field("access_secret", &"<redacted>")
            .field("access_token_expiry", &self.access_token_expiry)
            .finish()
    }
}

impl OAuthTokens {
    /// Parses the token JSON, naming the first missing field.
    pub fn from_json(json: &[u8]) -> Result<Self, TokenError> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| TokenError::BadJson(e.to_string()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| TokenError::BadJson("not a JSON object".into()))?;
        for field in [
            "consumer_key",
            "consumer_secret",
            "access_token",
            "access_secret",
            "access_token_expiry",
        ] {
            match obj.get(field) {
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {}
                Some(serde_json::Value::String(_)) | Some(serde_json::Value::Null) | None => {
                    return Err(TokenError::MissingField(field.to_owned()));
                }
                Some(_) => return Err(TokenError::BadJson(format!("`{field}` is not a string"))),
            }
        }
        serde_json::from_value(value).map_err(|e| TokenError::BadJson(e.to_string()))
    }

    /// The token JSON (what `DepSimulator::write_token` writes and what the CLI stores).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Whether the access token has expired at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.access_token_expiry <= now
    }
}

/// Makes the key pair and self-signed certificate of a DEP link (NanoDEP's shape: RSA 2048,
/// CN only, keyEncipherment|digitalSignature). The admin uploads `cert.to_pem()` to Apple.
pub fn generate_link_keypair(common_name: &str) -> Result<(X509, PKey<Private>), TokenError> {
    let rsa = Rsa::generate(2048).map_err(ossl("generating the RSA key"))?;
    let key = PKey::from_rsa(rsa).map_err(ossl("wrapping the RSA key"))?;

    let mut name = X509NameBuilder::new().map_err(ossl("building the name"))?;
    name.append_entry_by_text("CN", common_name)
        .map_err(ossl("setting the common name"))?;
    let name = name.build();

    let mut serial = BigNum::new().map_err(ossl("making the serial"))?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(ossl("making the serial"))?;
    let serial = Asn1Integer::from_bn(&serial).map_err(ossl("making the serial"))?;

    let mut b = X509::builder().map_err(ossl("building the certificate"))?;
    b.set_version(2).map_err(ossl("setting the version"))?;
    b.set_serial_number(&serial)
        .map_err(ossl("setting the serial"))?;
    b.set_subject_name(&name)
        .map_err(ossl("setting the subject"))?;
    b.set_issuer_name(&name)
        .map_err(ossl("setting the issuer"))?;
    b.set_pubkey(&key).map_err(ossl("setting the key"))?;
    let not_before = Asn1Time::days_from_now(0).map_err(ossl("setting the validity"))?;
    let not_after =
        Asn1Time::days_from_now(LINK_CERT_DAYS).map_err(ossl("setting the validity"))?;
    b.set_not_before(&not_before)
        .map_err(ossl("setting the validity"))?;
    b.set_not_after(&not_after)
        .map_err(ossl("setting the validity"))?;
    let bc = BasicConstraints::new()
        .critical()
        .build()
        .map_err(ossl("adding basicConstraints"))?;
    b.append_extension(bc)
        .map_err(ossl("adding basicConstraints"))?;
    let ku = KeyUsage::new()
        .critical()
        .key_encipherment()
        .digital_signature()
        .build()
        .map_err(ossl("adding keyUsage"))?;
    b.append_extension(ku).map_err(ossl("adding keyUsage"))?;
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .map_err(ossl("adding subjectKeyIdentifier"))?;
    b.append_extension(ski)
        .map_err(ossl("adding subjectKeyIdentifier"))?;
    b.sign(&key, MessageDigest::sha256())
        .map_err(ossl("signing the certificate"))?;
    Ok((b.build(), key))
}

/// Decrypts a DEP token file. Accepts Apple's `_smime.p7m` (decrypted with the link's `cert` and
/// `key`) and a plain JSON token file (what the simulator's `write_token` writes).
pub fn decrypt_token(
    p7m: &[u8],
    cert: &X509,
    key: &PKey<Private>,
) -> Result<OAuthTokens, TokenError> {
    let trimmed = p7m.trim_ascii_start();
    if trimmed.first() == Some(&b'{') {
        return OAuthTokens::from_json(trimmed);
    }
    // Apple's token file is base64 MIME, all ASCII. OpenSSL's MIME parser copies header bytes
    // into its error queue, and `openssl` 0.10 panics reading error data that is not UTF-8
    // (found by `tests/tests/hostile_input.rs`): refuse anything else before OpenSSL sees it.
    if !p7m.is_ascii() || !looks_like_smime(p7m) {
        return Err(TokenError::NotSmime);
    }
    let (pkcs7, _detached) = Pkcs7::from_smime(p7m).map_err(|_| TokenError::NotSmime)?;
    let plain = pkcs7
        .decrypt(key, cert, Pkcs7Flags::empty())
        .map_err(|e| classify_decrypt_error(&e))?;
    let json = message_block(&plain)?;
    OAuthTokens::from_json(json.as_bytes())
}

fn looks_like_smime(data: &[u8]) -> bool {
    let head = &data[..data.len().min(4096)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.contains("content-type:") && head.contains("pkcs7-mime")
}

fn classify_decrypt_error(e: &openssl::error::ErrorStack) -> TokenError {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("no recipient") || text.contains("recipient matches") {
        TokenError::WrongCertificate
    } else if text.contains("not enveloped") || text.contains("wrong content type") {
        TokenError::Decrypt("the S/MIME message is not encrypted (no EnvelopedData)".into())
    } else {
        TokenError::Decrypt(e.to_string())
    }
}

/// The text between the MESSAGE markers of the decrypted MIME entity.
fn message_block(plain: &[u8]) -> Result<String, TokenError> {
    let text = String::from_utf8_lossy(plain);
    let start = text.find(BEGIN_MESSAGE).ok_or(TokenError::NoMessageBlock)?;
    let after = &text[start + BEGIN_MESSAGE.len()..];
    let end = after.find(END_MESSAGE).ok_or(TokenError::NoMessageBlock)?;
    Ok(after[..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_certificate_has_nanodeps_shape() {
        let (cert, key) = generate_link_keypair("russet-dep-test").expect("keypair");
        assert_eq!(key.bits(), 2048);
        let cn = cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned());
        assert_eq!(cn.as_deref(), Some("russet-dep-test"));
        assert!(cert.verify(&key).expect("verify"));
        let text = String::from_utf8(cert.to_text().expect("text")).expect("utf8");
        assert!(
            text.contains("Digital Signature, Key Encipherment"),
            "{text}"
        );
    }

    #[test]
    fn json_token_errors_are_clear() {
        let cert_key = generate_link_keypair("x").expect("keypair");
        let missing = br#"{"consumer_key":"CK_1","consumer_secret":"CS_1","access_token":"AT_1","access_token_expiry":"2030-01-01T00:00:00Z"}"#;
        assert!(matches!(
            decrypt_token(missing, &cert_key.0, &cert_key.1),
            Err(TokenError::MissingField(f)) if f == "access_secret"
        ));
        assert!(matches!(
            decrypt_token(b"{not json", &cert_key.0, &cert_key.1),
            Err(TokenError::BadJson(_))
        ));
        assert!(matches!(
            decrypt_token(b"hello", &cert_key.0, &cert_key.1),
            Err(TokenError::NotSmime)
        ));
        let ok = br#"{"consumer_key":"CK_1","consumer_secret":"CS_1","access_token":"AT_1","access_secret":"AS_1","access_token_expiry":"2030-01-01T00:00:00Z"}"#;
        let t = decrypt_token(ok, &cert_key.0, &cert_key.1).expect("plain JSON accepted");
        let dbg = format!("{t:?}");
        assert!(dbg.contains("CK_1") && !dbg.contains("CS_1") && !dbg.contains("AS_1"));
        assert!(!dbg.contains("AT_1"));
    }

    #[test]
    fn message_block_required() {
        assert!(matches!(
            message_block(b"Content-Type: text/plain\r\n\r\n{}"),
            Err(TokenError::NoMessageBlock)
        ));
        assert_eq!(
            message_block(
                b"X: y\r\n\r\n-----BEGIN MESSAGE-----\r\n{\"a\":1}\r\n-----END MESSAGE-----\r\n"
            )
            .expect("block"),
            "{\"a\":1}"
        );
    }
}
