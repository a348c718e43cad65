//! Secrets in memory (issue 20): every type that carries a revealed PIN, FileVault personal
//! recovery key or Recovery Lock password, the KEK, the `serve` flags and a DEP token prints
//! without the secret in `Debug` (what a stray `{:?}` in a log line would show), while the
//! code that must use the secret still reads it.

use super::filevault::RevealedKey;
use super::lockwipe::RevealedPin;
use super::recovery_lock::{RecoveryLockReveal, RevealedRecoveryLock};
use crate::secrets::{SecretBox, secret_text, secret_utf8};
use crate::store::EscrowedPin;
use crate::store::QueueStatus;
use crate::store::filevault::FileVaultKeyRecord;
use crate::store::recovery_lock::{EscrowedRecoveryLock, RecoveryLockKind, RecoveryLockState};
use secrecy::ExposeSecret;

const PIN: &str = "493817";
const PRK: &str = "QWER-TYUI-OPAS-DFGH-JKLZ-XCVB";
const PASSWORD: &str = "K7M2P-Q9R4T-W3X8Y-Z5N6B";

fn assert_hidden(debug: &str, secret: &str) {
    assert!(!debug.contains(secret), "secret in Debug output: {debug}");
}

#[test]
fn revealed_secrets_are_redacted_in_debug_and_readable_on_purpose() {
    let pin = RevealedPin {
        record: EscrowedPin {
            id: 1,
            command_uuid: "c-1".into(),
            device_id: "UDID-1".into(),
            serial_number: Some("C02X".into()),
            request_type: "DeviceLock".into(),
            pin_sealed: vec![1, 2, 3],
            issued_by: "ada".into(),
            created_at: 0,
            status: QueueStatus::Pending,
            delivered_at: None,
            result_at: None,
        },
        pin: secret_text(PIN.to_string()),
    };
    let debug = format!("{pin:?}");
    assert_hidden(&debug, PIN);
    assert!(debug.contains("c-1"), "the rest still prints: {debug}");
    assert_eq!(pin.pin.expose_secret(), PIN);

    let key = RevealedKey {
        record: FileVaultKeyRecord {
            id: "k-1".into(),
            device_id: "UDID-1".into(),
            serial_number: None,
            state: "escrowed".into(),
            key_sealed: Some(vec![9]),
            envelope_sealed: vec![8],
            envelope_sha256: "00".into(),
            source: "SecurityInfo".into(),
            command_uuid: None,
            escrow_key_id: None,
            received_at: 0,
            last_reported_at: 0,
            verified_at: None,
            superseded_at: None,
        },
        key: Some(secret_text(PRK.to_string())),
    };
    assert_hidden(&format!("{key:?}"), PRK);
    assert_eq!(key.key.as_ref().map(|k| k.expose_secret()), Some(PRK));

    let reveal = RecoveryLockReveal {
        device: None,
        recovery_lock_enabled: Some(true),
        passwords: vec![RevealedRecoveryLock {
            record: EscrowedRecoveryLock {
                id: 1,
                command_uuid: "c-2".into(),
                device_id: "UDID-1".into(),
                serial_number: None,
                kind: RecoveryLockKind::Set,
                password_sealed: vec![7],
                issued_by: "ada".into(),
                created_at: 0,
                state: RecoveryLockState::Pending,
                acknowledged_at: None,
                verify_command_uuid: None,
                settled_at: None,
                failure: None,
                queue_status: None,
            },
            password: secret_utf8(PASSWORD.as_bytes().to_vec()).expect("utf-8"),
        }],
    };
    assert_hidden(&format!("{reveal:?}"), PASSWORD);
    assert_eq!(reveal.passwords[0].password.expose_secret(), PASSWORD);
}

#[test]
fn the_kek_the_serve_flags_and_dep_tokens_are_redacted_in_debug() {
    let kek_hex = "11".repeat(32);
    let kek = SecretBox::from_hex(&kek_hex).expect("kek");
    assert_hidden(&format!("{kek:?}"), &kek_hex);

    use clap::Parser;
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: crate::config::ServeArgs,
    }
    let args = Serve::try_parse_from([
        "serve",
        "--kek",
        &kek_hex,
        "--tls-pfx-password",
        "pfx-secret-7",
        "--scep-challenge",
        "challenge-secret-8",
        "--metrics-token",
        "metrics-secret-9",
        "--database-url",
        "postgres://russet:db-secret-10@db.example/russet",
    ])
    .expect("flags parse")
    .args;
    let debug = format!("{args:?}");
    for secret in [
        kek_hex.as_str(),
        "pfx-secret-7",
        "challenge-secret-8",
        "metrics-secret-9",
        "db-secret-10",
    ] {
        assert_hidden(&debug, secret);
    }
    assert!(debug.contains("admin_listen"), "{debug}");

    let tokens = russet_dep::OAuthTokens::from_json(
        br#"{"consumer_key":"CK_1","consumer_secret":"CS_secret","access_token":"AT_secret","access_secret":"AS_secret","access_token_expiry":"2030-01-01T00:00:00Z"}"#,
    )
    .expect("token JSON");
    let debug = format!("{tokens:?}");
    for secret in ["CS_secret", "AT_secret", "AS_secret"] {
        assert_hidden(&debug, secret);
    }
}
