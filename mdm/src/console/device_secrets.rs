//! The secrets an action on a device's page opened (a lock's or wipe's PIN, revealed PINs,
//! FileVault keys, Recovery Lock passwords), put into words for showing once on its answer.
//! Held as `SecretString` until the template exposes them.

use super::device_view::{Facts, fact, pin_facts, yes_no};
use crate::service::filevault::RevealedKey;
use crate::service::lockwipe::{Issued, RevealedPin};
use crate::service::recovery_lock::RecoveryLockReveal;
use crate::timefmt::rfc3339;
use secrecy::{ExposeSecret, SecretString};

/// A secret an action opened, shown once on its answer: a title, the secrets with what each
/// is, and facts that say whether it matters.
pub struct Secret {
    pub title: String,
    pub items: Vec<SecretItem>,
    pub facts: Facts,
    /// Said when there is nothing to show.
    pub none: String,
}

pub struct SecretItem {
    pub label: String,
    /// Redacted in `Debug`, wiped on drop; exposed only into the page (`value()`).
    pub value: SecretString,
}

impl SecretItem {
    fn new(label: String, value: &str) -> SecretItem {
        SecretItem {
            label,
            value: SecretString::from(value),
        }
    }

    /// The secret, for the template that shows it once.
    pub fn value(&self) -> &str {
        self.value.expose_secret()
    }
}

/// The PIN of a lock or wipe just queued, with the facts that say whether it will matter
/// (Intel Macs without T2 need it to unlock; Apple silicon erase ignores it).
pub fn issued_secret(request_type: &str, issued: &Issued) -> Secret {
    let mut facts = Facts::new();
    pin_facts(&mut facts, &issued.device);
    Secret {
        title: format!("{request_type} PIN"),
        items: vec![SecretItem::new(
            format!("PIN of {request_type} {}", issued.command_uuid),
            issued.pin.expose_secret(),
        )],
        facts,
        none: String::new(),
    }
}

pub fn pins_secret(pins: &[RevealedPin]) -> Secret {
    Secret {
        title: "Unlock PINs revealed".into(),
        items: pins
            .iter()
            .map(|p| {
                SecretItem::new(
                    format!(
                        "{} {} by {} ({})",
                        p.record.request_type,
                        rfc3339(p.record.created_at),
                        p.record.issued_by,
                        p.record.status.as_str()
                    ),
                    p.pin.expose_secret(),
                )
            })
            .collect(),
        facts: Facts::new(),
        none: "No lock or wipe PIN is escrowed for this Mac.".into(),
    }
}

pub fn filevault_secret(keys: &[RevealedKey]) -> Secret {
    Secret {
        title: "FileVault recovery keys revealed".into(),
        items: keys
            .iter()
            .map(|k| {
                SecretItem::new(
                    format!(
                        "Key {} from {} ({}){}",
                        rfc3339(k.record.received_at),
                        k.record.source,
                        k.record.state,
                        if k.record.superseded_at.is_some() {
                            ", superseded"
                        } else {
                            ""
                        }
                    ),
                    k.key
                        .as_ref()
                        .map_or("(did not open: the envelope is kept)", |s| {
                            s.expose_secret()
                        }),
                )
            })
            .collect(),
        facts: Facts::new(),
        none: "No FileVault personal recovery key is escrowed for this Mac.".into(),
    }
}

pub fn recovery_lock_secret(r: &RecoveryLockReveal) -> Secret {
    let mut facts = Facts::new();
    fact(
        &mut facts,
        "Recovery Lock on (SecurityInfo)",
        yes_no(r.recovery_lock_enabled),
    );
    Secret {
        title: "Recovery Lock passwords revealed".into(),
        items: r
            .passwords
            .iter()
            .map(|p| {
                SecretItem::new(
                    format!(
                        "{} {} by {} ({})",
                        p.record.kind.as_str(),
                        rfc3339(p.record.created_at),
                        p.record.issued_by,
                        p.record.state.as_str()
                    ),
                    match p.password.expose_secret() {
                        "" => "(cleared: no password)",
                        s => s,
                    },
                )
            })
            .collect(),
        facts,
        none: "No Recovery Lock password is escrowed for this Mac.".into(),
    }
}
