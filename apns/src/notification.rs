//! One MDM push, as bytes on the wire.

/// A wake-up push for one enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdmPush {
    /// APNs device token: the raw `Token` bytes from `TokenUpdate`.
    pub token: Vec<u8>,
    /// `PushMagic` from `TokenUpdate`.
    pub push_magic: String,
}

impl MdmPush {
    /// Request path: the token as lowercase hex.
    pub fn path(&self) -> String {
        format!("/3/device/{}", hex::encode(&self.token))
    }

    /// The body, exactly `{"mdm":"<PushMagic>"}`: Apple rejects MDM pushes with other keys.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "mdm": self.push_magic })).unwrap_or_default()
    }

    /// Headers Apple defines for an MDM push. `expiration` is Unix seconds; APNs stores the push
    /// and retries until then (0 = deliver once, don't store).
    pub fn headers(&self, topic: &str, expiration: u64) -> Vec<(&'static str, String)> {
        vec![
            ("apns-topic", topic.to_string()),
            ("apns-push-type", "mdm".to_string()),
            ("apns-priority", "10".to_string()),
            ("apns-expiration", expiration.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_matches_apple() {
        let p = MdmPush {
            token: vec![0x47, 0xe8, 0x0a],
            push_magic: "CEFDF0BD-E342-4A27-8742-E930EA116B0A".into(),
        };
        assert_eq!(p.path(), "/3/device/47e80a");
        assert_eq!(
            p.body(),
            br#"{"mdm":"CEFDF0BD-E342-4A27-8742-E930EA116B0A"}"#.to_vec()
        );
        let h = p.headers("com.apple.mgmt.External.x", 1767225600);
        assert!(h.contains(&("apns-push-type", "mdm".into())));
        assert!(h.contains(&("apns-expiration", "1767225600".into())));
    }

    #[test]
    fn push_magic_is_json_escaped() {
        let p = MdmPush {
            token: vec![1],
            push_magic: "a\"b".into(),
        };
        assert_eq!(p.body(), br#"{"mdm":"a\"b"}"#.to_vec());
    }
}
