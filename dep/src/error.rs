//! Errors of the DEP client, with Apple's error codes as typed helpers (Apple, Device Management:
//! Device assignment).

/// Apple's DEP error codes that callers act on.
pub mod codes {
    pub const T_C_NOT_SIGNED: &str = "T_C_NOT_SIGNED";
    pub const ACCESS_DENIED: &str = "ACCESS_DENIED";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const TOO_MANY_REQUESTS: &str = "TOO_MANY_REQUESTS";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const SERVER_ERROR: &str = "SERVER_ERROR";
    pub const EXHAUSTED_CURSOR: &str = "EXHAUSTED_CURSOR";
    pub const EXPIRED_CURSOR: &str = "EXPIRED_CURSOR";
    pub const INVALID_CURSOR: &str = "INVALID_CURSOR";
    pub const CURSOR_REQUIRED: &str = "CURSOR_REQUIRED";
    pub const USER_AGENT_MISSING: &str = "USER_AGENT_MISSING";
    pub const USER_AGENT_INVALID: &str = "USER_AGENT_INVALID";
    pub const CONFIG_NAME_REQUIRED: &str = "CONFIG_NAME_REQUIRED";
    pub const CONFIG_NAME_INVALID: &str = "CONFIG_NAME_INVALID";
    pub const CONFIG_URL_REQUIRED: &str = "CONFIG_URL_REQUIRED";
    pub const CONFIG_URL_INVALID: &str = "CONFIG_URL_INVALID";
    pub const DEPARTMENT_INVALID: &str = "DEPARTMENT_INVALID";
    pub const FLAGS_INVALID: &str = "FLAGS_INVALID";
    pub const MAGIC_INVALID: &str = "MAGIC_INVALID";
    pub const SUPPORT_EMAIL_INVALID: &str = "SUPPORT_EMAIL_INVALID";
    pub const SUPPORT_PHONE_INVALID: &str = "SUPPORT_PHONE_INVALID";
    pub const DEVICE_ID_REQUIRED: &str = "DEVICE_ID_REQUIRED";
    pub const PROFILE_UUID_REQUIRED: &str = "PROFILE_UUID_REQUIRED";
    pub const MALFORMED_REQUEST_BODY: &str = "MALFORMED_REQUEST_BODY";
}

/// An error of a DEP API call.
#[derive(Debug, thiserror::Error)]
pub enum DepError {
    /// Apple (or the simulator) answered with a non-success status. `code` is Apple's error code
    /// (`EXHAUSTED_CURSOR`, `T_C_NOT_SIGNED`, …) from a JSON `{"code"}` body or a plain-text body;
    /// when the body carries none, a code derived from the status (`UNAUTHORIZED`, …).
    #[error("DEP API error: HTTP {status} {code}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The request never got a response (connect, TLS, timeout, reset).
    #[error("DEP transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// A 2xx response that is not what the API documents.
    #[error("malformed DEP response from {endpoint}: {message}")]
    Malformed { endpoint: String, message: String },
    /// The caller asked for something the API cannot express (checked before sending).
    #[error("invalid DEP request: {0}")]
    InvalidRequest(String),
    /// Bad client configuration (base URL, user agent, credentials).
    #[error("invalid DEP client configuration: {0}")]
    Config(String),
}

impl DepError {
    /// Apple's error code, for `Api` errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            DepError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, for `Api` errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            DepError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn has_code(&self, wanted: &str) -> bool {
        self.code() == Some(wanted)
    }

    /// `EXPIRED_CURSOR`: the cursor is too old (Apple: > 7 days); start a full fetch.
    pub fn is_cursor_expired(&self) -> bool {
        self.has_code(codes::EXPIRED_CURSOR)
    }
    /// `INVALID_CURSOR`: the cursor was not recognised; start a full fetch.
    pub fn is_cursor_invalid(&self) -> bool {
        self.has_code(codes::INVALID_CURSOR)
    }
    /// `EXHAUSTED_CURSOR`: a fetch cursor that already returned every device; switch to sync.
    pub fn is_cursor_exhausted(&self) -> bool {
        self.has_code(codes::EXHAUSTED_CURSOR)
    }
    /// Expired or invalid: the stored cursor must be dropped and the devices refetched in full.
    pub fn needs_cursor_reset(&self) -> bool {
        self.is_cursor_expired() || self.is_cursor_invalid()
    }
    /// `T_C_NOT_SIGNED`: an admin must accept new terms in Apple Business/School Manager.
    pub fn is_terms_not_signed(&self) -> bool {
        self.has_code(codes::T_C_NOT_SIGNED)
    }
    /// `ACCESS_DENIED`: the server token is bad, expired or revoked.
    pub fn is_access_denied(&self) -> bool {
        self.has_code(codes::ACCESS_DENIED)
    }
    /// HTTP 401 (after the one automatic re-authentication).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }
    /// HTTP 429 (after the bounded retries).
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }
}

/// Parses an error body: JSON `{"code","message"}` (also `error_code`/`error`), or plain text
/// such as `EXHAUSTED_CURSOR`. Never fails; unknown shapes give a status-derived code.
pub(crate) fn api_error(status: u16, body: &[u8]) -> DepError {
    let (code, message) = parse_error_body(body);
    let code = code.unwrap_or_else(|| default_code(status).to_owned());
    DepError::Api {
        status,
        code,
        message,
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        401 => codes::UNAUTHORIZED,
        403 => codes::FORBIDDEN,
        404 => codes::NOT_FOUND,
        429 => codes::TOO_MANY_REQUESTS,
        500..=599 => codes::SERVER_ERROR,
        _ => "UNKNOWN",
    }
}

fn is_code_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && s.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
}

fn truncate(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    match clean.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean.to_owned(),
    }
}

fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        let code = ["code", "error_code", "error"]
            .iter()
            .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
            .map(str::trim)
            .filter(|c| is_code_like(c))
            .map(str::to_owned);
        let message = ["message", "error_message", "description"]
            .iter()
            .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
            .map(|m| truncate(m, 512))
            .unwrap_or_default();
        return (code, message);
    }
    if let Ok(serde_json::Value::String(s)) = serde_json::from_str::<serde_json::Value>(text) {
        let s = s.trim();
        if is_code_like(s) {
            return (Some(s.to_owned()), String::new());
        }
        return (None, truncate(s, 512));
    }
    // Plain text: Apple answers cursor errors with the bare code, sometimes followed by prose.
    let first = text
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .next()
        .unwrap_or("");
    if is_code_like(first) {
        let rest = text[first.len()..].trim_start_matches([':', ',', ' ']);
        return (Some(first.to_owned()), truncate(rest, 512));
    }
    (None, truncate(text, 512))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_in_every_shape() {
        let e = api_error(400, b"EXHAUSTED_CURSOR");
        assert!(e.is_cursor_exhausted());
        let e = api_error(400, b"\"EXPIRED_CURSOR\"");
        assert!(e.is_cursor_expired());
        let e = api_error(
            403,
            br#"{"code":"T_C_NOT_SIGNED","message":"accept terms"}"#,
        );
        assert!(e.is_terms_not_signed());
        assert_eq!(
            e.to_string(),
            "DEP API error: HTTP 403 T_C_NOT_SIGNED: accept terms"
        );
        let e = api_error(500, b"<html>oops</html>");
        assert_eq!(e.code(), Some("SERVER_ERROR"));
        let e = api_error(401, b"");
        assert!(e.is_unauthorized());
        let e = api_error(400, &[0xff, 0xfe, 0x00]);
        assert_eq!(e.code(), Some("UNKNOWN"));
        let e = api_error(400, b"INVALID_CURSOR: bad cursor");
        assert!(e.needs_cursor_reset());
    }
}
