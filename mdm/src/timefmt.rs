//! The clock and its text: Unix-millisecond timestamps (how the store keeps time) and RFC 3339
//! text (how people read it).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Current time as Unix milliseconds.
pub fn now_ms() -> i64 {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

pub fn rfc3339_opt(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339)
}

/// How long ago `then` was, as people say it: `just now`, `12 min ago`, `3 h ago`, `5 d ago`
/// (a time ahead of `now` — another node's clock — is `just now`).
pub fn ago(now_ms: i64, then_ms: i64) -> String {
    let secs = (now_ms - then_ms).max(0) / 1000;
    match secs {
        0..60 => "just now".to_string(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86400),
    }
}

/// A duration as people write it, in seconds: `30`, `"30s"`, `"15m"`, `"24h"`, `"7d"`, `"2w"`.
/// `None` for anything else, zero, or an overflow.
pub fn parse_duration_secs(text: &str) -> Option<i64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 's'),
    };
    let n: i64 = num.trim().parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|s| *s > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_milliseconds() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
