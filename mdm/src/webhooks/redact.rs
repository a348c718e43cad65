//! Secrets never leave in an event: the raw payload is read, every secret value replaced by
//! [`REDACTED`], and written again (only when something was replaced: otherwise the body goes
//! out as the device sent it).
//!
//! What counts as a secret, at any depth, key names compared without case:
//! - [`SECRET_KEYS`], whatever the value's type;
//! - any key containing `password` whose value is a string or data (a dictionary or a boolean
//!   under such a key is a status, e.g. SecurityInfo's `FirmwarePasswordStatus`, and is kept).
//!
//! Kept on purpose: TokenUpdate's `Token` and `PushMagic` (NanoMDM sends them, receivers key
//! devices on them, and they wake a Mac only together with the push certificate's private
//! key, which never leaves Russet).

use plist::Value;

/// What a secret's value becomes.
pub const REDACTED: &str = "(redacted)";

/// Keys whose values are secrets, whatever their type.
pub const SECRET_KEYS: &[&str] = &[
    // TokenUpdate (iOS family): clears the passcode.
    "UnlockToken",
    // SetBootstrapToken: authorizes software updates and kernel extensions on the Mac.
    "BootstrapToken",
    // Authenticate (older macOS): the enrollment challenge.
    "Challenge",
    // UserAuthenticate: the user's digest answer.
    "DigestResponse",
    // SecurityInfo: the FileVault personal recovery key, encrypted to the escrow certificate.
    "FDE_PersonalRecoveryKeyCMS",
    "FDE_PersonalRecoveryKeyDeviceKey",
    // RotateFileVaultKey result.
    "EncryptedNewRecoveryKey",
    // ActivationLockBypassCode result.
    "ActivationLockBypassCode",
    // Lock/wipe PINs and passcodes, should a result ever echo one.
    "PIN",
    "Passcode",
];

/// `raw` with its secrets replaced, or `raw` itself when it holds none. `None` when it is not
/// a plist (the core already read it, so this does not happen; the caller then sends nothing
/// rather than something unredacted).
pub fn redact(raw: &[u8]) -> Option<Vec<u8>> {
    let mut value = Value::from_reader(std::io::Cursor::new(raw)).ok()?;
    if !redact_value(&mut value) {
        return Some(raw.to_vec());
    }
    let mut out = Vec::new();
    value.to_writer_xml(&mut out).ok()?;
    Some(out)
}

/// Replace secrets in place; whether anything was replaced.
fn redact_value(value: &mut Value) -> bool {
    match value {
        Value::Dictionary(dict) => {
            let mut changed = false;
            for (key, v) in dict.iter_mut() {
                if is_secret(key, v) {
                    *v = Value::String(REDACTED.into());
                    changed = true;
                } else {
                    changed |= redact_value(v);
                }
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| redact_value(v) | changed),
        _ => false,
    }
}

fn is_secret(key: &str, value: &Value) -> bool {
    if SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        return true;
    }
    key.to_ascii_lowercase().contains("password")
        && matches!(value, Value::String(_) | Value::Data(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plist(entries: Vec<(&str, Value)>) -> Vec<u8> {
        let mut d = plist::Dictionary::new();
        for (k, v) in entries {
            d.insert(k.to_string(), v);
        }
        let mut out = Vec::new();
        Value::Dictionary(d).to_writer_xml(&mut out).expect("xml");
        out
    }

    fn read(bytes: &[u8]) -> plist::Dictionary {
        Value::from_reader_xml(bytes)
            .expect("plist")
            .into_dictionary()
            .expect("dict")
    }

    #[test]
    fn a_body_without_secrets_goes_out_byte_for_byte() {
        let raw = plist(vec![
            ("MessageType", Value::String("TokenUpdate".into())),
            ("Token", Value::Data(vec![1, 2, 3])),
            ("PushMagic", Value::String("magic".into())),
            ("UDID", Value::String("U".into())),
        ]);
        assert_eq!(redact(&raw).as_deref(), Some(raw.as_slice()));
    }

    #[test]
    fn secrets_are_replaced_at_any_depth_and_the_rest_kept() {
        let nested = plist::Dictionary::from_iter([
            (
                "FDE_PersonalRecoveryKeyCMS".to_string(),
                Value::Data(b"prk".to_vec()),
            ),
            ("FDE_Enabled".to_string(), Value::Boolean(true)),
            (
                "FirmwarePasswordStatus".to_string(),
                Value::Dictionary(plist::Dictionary::from_iter([(
                    "PasswordExists".to_string(),
                    Value::Boolean(true),
                )])),
            ),
        ]);
        let raw = plist(vec![
            ("MessageType", Value::String("TokenUpdate".into())),
            ("UnlockToken", Value::Data(b"unlock-secret".to_vec())),
            ("bootstraptoken", Value::Data(b"bootstrap-secret".to_vec())),
            ("Token", Value::Data(vec![9])),
            ("PushMagic", Value::String("magic".into())),
            ("SecurityInfo", Value::Dictionary(nested)),
            (
                "Users",
                Value::Array(vec![Value::Dictionary(plist::Dictionary::from_iter([(
                    "NewPassword".to_string(),
                    Value::String("hunter2".into()),
                )]))]),
            ),
            ("PIN", Value::String("123456".into())),
            (
                "ActivationLockBypassCode",
                Value::String("ABCD-EFGH".into()),
            ),
        ]);
        let out = redact(&raw).expect("redacted");
        let text = String::from_utf8_lossy(&out);
        for secret in [
            "unlock-secret",
            "bootstrap-secret",
            "hunter2",
            "123456",
            "ABCD-EFGH",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        // Data values are base64 in XML: check them by decoding.
        let d = read(&out);
        let redacted = Value::String(REDACTED.into());
        assert_eq!(d.get("UnlockToken"), Some(&redacted));
        assert_eq!(d.get("bootstraptoken"), Some(&redacted));
        assert_eq!(d.get("PIN"), Some(&redacted));
        let sec = d["SecurityInfo"].as_dictionary().expect("dict");
        assert_eq!(sec.get("FDE_PersonalRecoveryKeyCMS"), Some(&redacted));
        assert_eq!(sec.get("FDE_Enabled"), Some(&Value::Boolean(true)));
        assert!(
            sec["FirmwarePasswordStatus"].as_dictionary().is_some(),
            "a status dictionary is not a secret"
        );
        let user = d["Users"].as_array().expect("array")[0]
            .as_dictionary()
            .expect("dict");
        assert_eq!(user.get("NewPassword"), Some(&redacted));
        // Kept: what receivers key devices on.
        assert_eq!(d.get("Token"), Some(&Value::Data(vec![9])));
        assert_eq!(d.get("PushMagic"), Some(&Value::String("magic".into())));
        assert_eq!(
            d.get("MessageType"),
            Some(&Value::String("TokenUpdate".into()))
        );
    }

    #[test]
    fn what_is_not_a_plist_is_not_sent() {
        assert_eq!(redact(b"not a plist"), None);
    }
}
