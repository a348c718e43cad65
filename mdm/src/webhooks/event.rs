//! The event a receiver gets: NanoMDM's (and MicroMDM's) webhook JSON, so their consumers work
//! unchanged. `{topic, event_id, created_at, checkin_event | acknowledge_event}`:
//!
//! - `topic`: `mdm.<MessageType>` for a check-in (`mdm.Authenticate`, `mdm.TokenUpdate`,
//!   `mdm.CheckOut`, `mdm.UserAuthenticate`, `mdm.SetBootstrapToken`, `mdm.GetBootstrapToken`,
//!   `mdm.DeclarativeManagement`, `mdm.GetToken`), `mdm.Connect` for a command report;
//! - `checkin_event` / `acknowledge_event`: `udid` (the message's `UDID`) and `enrollment_id`
//!   (its `EnrollmentID`, User Enrollment), each only when the message has it, as NanoMDM
//!   does; `raw_payload`, the body as base64 with its secrets redacted (`redact.rs`);
//!   `token_update_tally` for a TokenUpdate; `status` and `command_uuid` (empty for `Idle`) for
//!   a report. NanoMDM's `url_params` is left out: Russet's device URLs carry no parameters.

use super::redact;
use crate::service::{AppliedMessage, MessageKind};
use base64::Engine;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    pub topic: String,
    pub event_id: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkin_event: Option<CheckinEvent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge_event: Option<AcknowledgeEvent<'a>>,
}

#[derive(Debug, Serialize)]
pub struct CheckinEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment_id: Option<&'a str>,
    pub raw_payload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_update_tally: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct AcknowledgeEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment_id: Option<&'a str>,
    pub status: &'a str,
    pub command_uuid: &'a str,
    pub raw_payload: String,
}

/// The event for an applied message. `created_at` is RFC 3339; `tally` is the channel's
/// TokenUpdates since it enrolled (TokenUpdate only).
pub fn build<'a>(
    message: &AppliedMessage<'a>,
    event_id: String,
    created_at: String,
    tally: Option<i64>,
) -> Event<'a> {
    let e = message.enrollment;
    let udid = e.udid.as_deref();
    let enrollment_id = e.enrollment_id.as_deref();
    // Unreadable (never, the core read it): nothing rather than something unredacted.
    let raw_payload = redact::redact(message.raw)
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
        .unwrap_or_default();
    match message.kind {
        MessageKind::Checkin { message_type } => Event {
            topic: format!("mdm.{message_type}"),
            event_id,
            created_at,
            checkin_event: Some(CheckinEvent {
                udid,
                enrollment_id,
                raw_payload,
                token_update_tally: tally,
            }),
            acknowledge_event: None,
        },
        MessageKind::Report {
            status,
            command_uuid,
        } => Event {
            topic: "mdm.Connect".into(),
            event_id,
            created_at,
            checkin_event: None,
            acknowledge_event: Some(AcknowledgeEvent {
                udid,
                enrollment_id,
                status,
                command_uuid: command_uuid.unwrap_or(""),
                raw_payload,
            }),
        },
    }
}

/// `X-Hmac-Signature`: base64 of HMAC-SHA256 over the exact body, keyed with
/// `--webhook-hmac-key` (OpenSSL's HMAC).
pub fn signature(key: &[u8], body: &[u8]) -> Result<String, openssl::error::ErrorStack> {
    let pkey = openssl::pkey::PKey::hmac(key)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
    signer.update(body)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(signer.sign_to_vec()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::checkin::decode_checkin;
    use crate::protocol::report::decode_report;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231, test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?").expect("hmac");
        let hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let expected: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(
            sig,
            base64::engine::general_purpose::STANDARD.encode(expected)
        );
        assert_eq!(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    }

    #[test]
    fn a_token_update_is_a_checkin_event_with_its_tally_and_no_unlock_token() {
        let raw = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>MessageType</key><string>TokenUpdate</string>
<key>Topic</key><string>com.apple.mgmt.X</string>
<key>UDID</key><string>UDID-1</string>
<key>Token</key><data>AQID</data>
<key>PushMagic</key><string>PM</string>
<key>UnlockToken</key><data>c2VjcmV0LXVubG9jaw==</data>
</dict></plist>"#;
        let msg = decode_checkin(raw).expect("decodes");
        let applied = AppliedMessage {
            kind: MessageKind::Checkin {
                message_type: msg.message_type(),
            },
            enrollment: msg.enrollment(),
            raw,
        };
        let event = build(&applied, "E".into(), "T".into(), Some(1));
        let v = serde_json::to_value(&event).expect("json");
        assert_eq!(v["topic"], "mdm.TokenUpdate");
        assert_eq!(v["event_id"], "E");
        assert_eq!(v["created_at"], "T");
        assert!(v.get("acknowledge_event").is_none());
        let c = &v["checkin_event"];
        assert_eq!(c["udid"], "UDID-1");
        assert!(c.get("enrollment_id").is_none(), "only User Enrollments");
        assert_eq!(c["token_update_tally"], 1);
        let raw_out = base64::engine::general_purpose::STANDARD
            .decode(c["raw_payload"].as_str().expect("string"))
            .expect("base64");
        let text = String::from_utf8_lossy(&raw_out);
        assert!(!text.contains("c2VjcmV0LXVubG9jaw"), "{text}");
        assert!(text.contains(redact::REDACTED), "{text}");
        assert!(text.contains("<key>PushMagic</key>"), "{text}");
    }

    #[test]
    fn a_report_is_an_acknowledge_event_and_idle_has_an_empty_command_uuid() {
        let idle = br#"<plist version="1.0"><dict>
<key>UDID</key><string>U</string><key>Status</key><string>Idle</string>
</dict></plist>"#;
        let report = decode_report(idle).expect("decodes");
        let applied = AppliedMessage {
            kind: MessageKind::Report {
                status: report.status.as_str(),
                command_uuid: report.command_uuid.as_deref(),
            },
            enrollment: &report.enrollment,
            raw: idle,
        };
        let v = serde_json::to_value(build(&applied, "E".into(), "T".into(), None)).expect("json");
        assert_eq!(v["topic"], "mdm.Connect");
        assert!(v.get("checkin_event").is_none());
        let a = &v["acknowledge_event"];
        assert_eq!(a["status"], "Idle");
        assert_eq!(a["command_uuid"], "");
        assert_eq!(a["udid"], "U");
        let raw_out = base64::engine::general_purpose::STANDARD
            .decode(a["raw_payload"].as_str().expect("string"))
            .expect("base64");
        assert_eq!(raw_out, idle, "nothing to redact: the body as sent");
    }
}
