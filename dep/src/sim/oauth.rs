//! Server-side OAuth 1.0a HMAC-SHA1 verification (RFC 5849 §3.4), written independently of the
//! signing crate so the simulator really checks what the client computes.

use std::collections::BTreeMap;

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::token::OAuthTokens;

/// RFC 5849 §3.6 percent-encoding.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The parameters of an `Authorization: OAuth …` header (values decoded), or `None`.
pub(crate) fn parse_header(header: &str) -> Option<BTreeMap<String, String>> {
    let rest = header.trim();
    let (scheme, params) = rest.split_at(rest.find(' ')?);
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return None;
    }
    let mut out = BTreeMap::new();
    for part in params.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=')?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        if out.insert(decode(k.trim())?, decode(v)?).is_some() {
            return None;
        }
    }
    Some(out)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    Malformed,
    UnknownConsumer,
    UnknownToken,
    Method,
    Timestamp,
    BadSignature,
}

/// Verifies a request's OAuth parameters. `base_uri` is `scheme://host[:port]/path` (no query);
/// `query` are the decoded query pairs.
pub(crate) fn verify(
    method: &str,
    base_uri: &str,
    query: &[(String, String)],
    params: &BTreeMap<String, String>,
    tokens: &OAuthTokens,
    now_unix: i64,
) -> Result<(), Rejection> {
    let get = |k: &str| params.get(k).map(String::as_str);
    if get("oauth_signature_method") != Some("HMAC-SHA1") {
        return Err(Rejection::Method);
    }
    if let Some(v) = get("oauth_version")
        && v != "1.0"
    {
        return Err(Rejection::Malformed);
    }
    if get("oauth_consumer_key") != Some(tokens.consumer_key.as_str()) {
        return Err(Rejection::UnknownConsumer);
    }
    if get("oauth_token") != Some(tokens.access_token.as_str()) {
        return Err(Rejection::UnknownToken);
    }
    let ts: i64 = get("oauth_timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or(Rejection::Malformed)?;
    if (ts - now_unix).abs() > 600 {
        return Err(Rejection::Timestamp);
    }
    if get("oauth_nonce").is_none_or(str::is_empty) {
        return Err(Rejection::Malformed);
    }
    let given = get("oauth_signature").ok_or(Rejection::Malformed)?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(given)
        .map_err(|_| Rejection::BadSignature)?;

    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "realm" && k.as_str() != "oauth_signature")
        .chain(query.iter().map(|(k, v)| (k, v)))
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    pairs.sort();
    let normalized = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let base = format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(base_uri),
        encode(&normalized)
    );
    let key = format!(
        "{}&{}",
        encode(&tokens.consumer_secret),
        encode(&tokens.access_secret)
    );
    let expected = hmac_sha1(key.as_bytes(), base.as_bytes()).ok_or(Rejection::BadSignature)?;
    if expected.len() == given.len() && openssl::memcmp::eq(&expected, &given) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let pkey = PKey::hmac(key).ok()?;
    let mut signer = Signer::new(MessageDigest::sha1(), &pkey).ok()?;
    signer.update(data).ok()?;
    signer.sign_to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> OAuthTokens {
        OAuthTokens {
            consumer_key: "CK_a b".into(),
            consumer_secret: "CS_s&e".into(),
            access_token: "AT_t".into(),
            access_secret: "AS_x".into(),
            access_token_expiry: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// Cross-checks against the signing crate (independent implementations must agree).
    #[test]
    fn verifies_what_oauth1_request_signs() {
        let t = tokens();
        let token = oauth1_request::Token::from_parts(
            t.consumer_key.as_str(),
            t.consumer_secret.as_str(),
            t.access_token.as_str(),
            t.access_secret.as_str(),
        );
        let mut b = oauth1_request::Builder::with_token(token, oauth1_request::HMAC_SHA1);
        b.version(true)
            .nonce("n0nce")
            .timestamp(std::num::NonZeroU64::new(1_700_000_000));
        let header = b.get("http://127.0.0.1:8080/session", &());
        let params = parse_header(&header).expect("parses");
        assert_eq!(
            verify(
                "GET",
                "http://127.0.0.1:8080/session",
                &[],
                &params,
                &t,
                1_700_000_000
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                "GET",
                "http://127.0.0.1:8081/session",
                &[],
                &params,
                &t,
                1_700_000_000
            ),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(
                "GET",
                "http://127.0.0.1:8080/session",
                &[],
                &params,
                &t,
                1_700_001_000
            ),
            Err(Rejection::Timestamp)
        );
        let mut wrong = t.clone();
        wrong.access_secret = "AS_y".into();
        assert_eq!(
            verify(
                "GET",
                "http://127.0.0.1:8080/session",
                &[],
                &params,
                &wrong,
                1_700_000_000
            ),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert!(parse_header("Basic abc").is_none());
        assert!(parse_header("OAuth a=b").is_none());
        assert!(parse_header("OAuth a=\"%zz\"").is_none());
        assert!(parse_header("OAuth a=\"1\",a=\"2\"").is_none());
        assert_eq!(encode("a b&~"), "a%20b%26~");
    }
}
