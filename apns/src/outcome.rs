//! What an APNs answer means for the device and for the push certificate.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// 200: APNs accepted it.
    Delivered,
    /// 410 Unregistered: the token is dead (profile removed, Mac wiped). Stop pushing it until a
    /// TokenUpdate newer than `timestamp_ms` arrives.
    Unregistered { timestamp_ms: Option<i64> },
    /// 400 BadDeviceToken, DeviceTokenNotForTopic, …: permanent for this token.
    BadToken { reason: String },
    /// 400 for a request of ours APNs finds malformed: a bug to log, not the token's fault.
    Rejected { reason: String },
    /// 403 (and topic errors): the push certificate itself is refused (expired, revoked, wrong topic). Stop the
    /// topic and alert the admin.
    CertificateRefused { reason: String },
    /// 429, 5xx or anything else: try again later with backoff.
    Retry { reason: String },
}

#[derive(Deserialize)]
struct ErrorBody {
    reason: Option<String>,
    timestamp: Option<i64>,
}

/// Classify an APNs HTTP answer (status and JSON body `{"reason", "timestamp"?}`).
pub fn classify(status: u16, body: &[u8]) -> PushOutcome {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let reason = parsed
        .as_ref()
        .and_then(|b| b.reason.clone())
        .unwrap_or_else(|| format!("HTTP {status}"));
    match status {
        200 => PushOutcome::Delivered,
        410 => PushOutcome::Unregistered {
            timestamp_ms: parsed.and_then(|b| b.timestamp),
        },
        400 => match reason.as_str() {
            // Topic problems belong to the certificate, not to one device.
            "MissingTopic" | "BadTopic" | "TopicDisallowed" => {
                PushOutcome::CertificateRefused { reason }
            }
            // A malformed request of ours: retrying won't help, but the token stays usable.
            "BadMessageId" | "BadPriority" | "BadExpirationDate" | "PayloadEmpty"
            | "PayloadTooLarge" | "BadCollapseId" | "BadPath" => PushOutcome::Rejected { reason },
            _ => PushOutcome::BadToken { reason },
        },
        403 => PushOutcome::CertificateRefused { reason },
        // Wrong path, method or an oversized body: our request is malformed, retrying won't help.
        404 | 405 | 413 => PushOutcome::Rejected { reason },
        _ => PushOutcome::Retry { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apples_answers_are_classified() {
        assert_eq!(classify(200, b""), PushOutcome::Delivered);
        assert_eq!(
            classify(
                410,
                br#"{"reason":"Unregistered","timestamp":1700000000000}"#
            ),
            PushOutcome::Unregistered {
                timestamp_ms: Some(1_700_000_000_000)
            }
        );
        assert_eq!(
            classify(400, br#"{"reason":"BadDeviceToken"}"#),
            PushOutcome::BadToken {
                reason: "BadDeviceToken".into()
            }
        );
        assert_eq!(
            classify(400, br#"{"reason":"DeviceTokenNotForTopic"}"#),
            PushOutcome::BadToken {
                reason: "DeviceTokenNotForTopic".into()
            }
        );
        assert!(matches!(
            classify(400, br#"{"reason":"BadPriority"}"#),
            PushOutcome::Rejected { .. }
        ));
        assert!(matches!(
            classify(400, br#"{"reason":"BadTopic"}"#),
            PushOutcome::CertificateRefused { .. }
        ));
        assert!(matches!(
            classify(403, br#"{"reason":"BadCertificate"}"#),
            PushOutcome::CertificateRefused { .. }
        ));
        assert!(matches!(
            classify(413, br#"{"reason":"PayloadTooLarge"}"#),
            PushOutcome::Rejected { .. }
        ));
        assert!(matches!(
            classify(404, br#"{"reason":"BadPath"}"#),
            PushOutcome::Rejected { .. }
        ));
        assert!(matches!(
            classify(429, br#"{"reason":"TooManyRequests"}"#),
            PushOutcome::Retry { .. }
        ));
        assert_eq!(
            classify(503, b"<html>"),
            PushOutcome::Retry {
                reason: "HTTP 503".into()
            }
        );
    }
}
