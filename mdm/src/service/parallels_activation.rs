//! Parallels Desktop activation per group (issue 15): a group may carry how Parallels Desktop
//! on its Macs is activated — a **license key** or **SSO** — which Parallels Desktop reads
//! from its managed-preferences domain `com.parallels.desktop.managedprefs`
//! ([`PARALLELS_DOMAIN`]): `ActivationExperience` (`License Key` or `SSO`), `LicenseKey`,
//! and, for SSO, optional dialog texts. Delivery to the Macs (a Custom Settings profile
//! assigned to the group, through the profiles machinery) is
//! `profiles::parallels_activation`, which wraps every change made here.
//!
//! - The license key is a secret (it activates copies against the organization's quota):
//!   sealed at rest (`Sealed::ParallelsLicenseKey`, bound to the group), never in an answer,
//!   an audit entry or a log — only its last four characters ([`ParallelsActivation::hint`]),
//!   so an admin can tell two keys apart. It reaches a Mac only inside the profile, whose
//!   versions and InstallProfile commands are sealed too (`profiles::catalog`,
//!   `profiles::reconcile`).
//! - The SSO dialog texts are passed to Parallels Desktop under the key names the admin
//!   gives: Parallels names them in its own MDM deployment guide, and Russet does not invent
//!   Parallels' vocabulary. Names are checked (plain identifiers, not one of the two keys
//!   Russet sets), values bounded.
//! - A group holds at most one activation (the table's key); setting it again replaces it.
//!   Groups are named exactly, as in the groups API. Set and remove are audited:
//!   `parallels_activation.set`, `parallels_activation.remove`.

use super::{MdmService, ServiceError};
use crate::secrets::Sealed;
use crate::store::parallels_activation::ParallelsActivationRecord;
use crate::timefmt::now_ms;
use serde_json::json;
use std::collections::BTreeMap;

/// Parallels Desktop's managed-preferences domain (Parallels' MDM deployment guide).
pub const PARALLELS_DOMAIN: &str = "com.parallels.desktop.managedprefs";
/// The keys Russet sets in [`PARALLELS_DOMAIN`]; SSO text names may not take them.
pub const EXPERIENCE_KEY: &str = "ActivationExperience";
pub const LICENSE_KEY_KEY: &str = "LicenseKey";

/// SSO dialog texts per group, and their bounds.
pub const MAX_SSO_TEXTS: usize = 16;
const MAX_SSO_NAME: usize = 64;
const MAX_SSO_TEXT: usize = 1000;
/// A license key's length bounds (Parallels' keys are five or six dash-separated groups of
/// six characters; the bounds leave room for other editions' shapes).
const LICENSE_KEY_LEN: std::ops::RangeInclusive<usize> = 8..=128;

/// How Parallels Desktop is activated: `ActivationExperience`'s two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Experience {
    LicenseKey,
    Sso,
}

impl Experience {
    /// Parallels' value of `ActivationExperience`.
    pub fn as_str(self) -> &'static str {
        match self {
            Experience::LicenseKey => "License Key",
            Experience::Sso => "SSO",
        }
    }

    /// The API's `license_key` / `sso`, or Parallels' own `License Key` / `SSO`.
    pub fn parse(raw: &str) -> Option<Experience> {
        match raw.trim() {
            "license_key" | "License Key" => Some(Experience::LicenseKey),
            "sso" | "SSO" => Some(Experience::Sso),
            _ => None,
        }
    }

    /// The API's name.
    pub fn key(self) -> &'static str {
        match self {
            Experience::LicenseKey => "license_key",
            Experience::Sso => "sso",
        }
    }
}

/// `PUT /api/v1/groups/{name}/parallels-activation`, as given.
#[derive(Clone, Default)]
pub struct NewActivation {
    pub experience: String,
    pub license_key: Option<String>,
    pub sso_texts: BTreeMap<String, String>,
}

// The license key never reaches a log through `{:?}`.
impl std::fmt::Debug for NewActivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewActivation")
            .field("experience", &self.experience)
            .field(
                "license_key",
                &self.license_key.as_ref().map(|_| "<redacted>"),
            )
            .field("sso_texts", &self.sso_texts)
            .finish()
    }
}

/// A group's activation as the API shows it: never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParallelsActivation {
    pub group: String,
    pub experience: Experience,
    /// The license key's last four characters.
    pub hint: Option<String>,
    pub sso_texts: BTreeMap<String, String>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
}

/// The checked input: the key normalized, the texts checked.
struct Checked {
    experience: Experience,
    license_key: Option<String>,
    sso_texts: BTreeMap<String, String>,
}

fn bad(message: String) -> ServiceError {
    ServiceError::BadRequest(message)
}

/// A license key: trimmed, upper-cased (Parallels prints them in capitals; typed in lower
/// case they are the same key), letters, digits and dashes only.
fn license_key(raw: &str) -> Result<String, ServiceError> {
    let key = raw.trim().to_ascii_uppercase();
    if !LICENSE_KEY_LEN.contains(&key.len()) {
        return Err(bad(format!(
            "license_key: expected {} to {} characters (like XXXXXX-XXXXXX-XXXXXX-XXXXXX-XXXXXX), got {}",
            LICENSE_KEY_LEN.start(),
            LICENSE_KEY_LEN.end(),
            key.len()
        )));
    }
    // The key itself is never echoed, not even in a refusal.
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        || key.starts_with('-')
        || key.ends_with('-')
        || key.contains("--")
    {
        return Err(bad(
            "license_key: only letters and digits in dash-separated groups (like \
             XXXXXX-XXXXXX-XXXXXX-XXXXXX-XXXXXX)"
                .into(),
        ));
    }
    Ok(key)
}

fn sso_texts(given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ServiceError> {
    if given.len() > MAX_SSO_TEXTS {
        return Err(bad(format!(
            "sso_texts: at most {MAX_SSO_TEXTS} texts, got {}",
            given.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (name, text) in given {
        let plain = !name.is_empty()
            && name.len() <= MAX_SSO_NAME
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !plain {
            return Err(bad(format!(
                "sso_texts: {name:?} is not a preference key name (letters, digits, '_' and \
                 '.', starting with a letter, at most {MAX_SSO_NAME} characters)"
            )));
        }
        if name == EXPERIENCE_KEY || name == LICENSE_KEY_KEY {
            return Err(bad(format!(
                "sso_texts: {name} is set by Russet from the activation itself"
            )));
        }
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_SSO_TEXT {
            return Err(bad(format!(
                "sso_texts: {name}: expected 1 to {MAX_SSO_TEXT} characters"
            )));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad(format!(
                "sso_texts: {name}: control characters are not allowed"
            )));
        }
        out.insert(name.clone(), text.to_owned());
    }
    Ok(out)
}

/// Pure checks of what an admin gives; each refusal names its field.
fn check(new: &NewActivation) -> Result<Checked, ServiceError> {
    let experience = Experience::parse(&new.experience).ok_or_else(|| {
        bad(format!(
            "experience: expected \"license_key\" or \"sso\", got {:?}",
            new.experience
        ))
    })?;
    let texts = sso_texts(&new.sso_texts)?;
    match experience {
        Experience::LicenseKey => {
            let Some(raw) = new.license_key.as_deref() else {
                return Err(bad(
                    "license_key: required when the experience is license_key".into(),
                ));
            };
            if !texts.is_empty() {
                return Err(bad(
                    "sso_texts: only for the sso experience (Parallels shows them in its SSO \
                     sign-in dialog)"
                        .into(),
                ));
            }
            Ok(Checked {
                experience,
                license_key: Some(license_key(raw)?),
                sso_texts: texts,
            })
        }
        Experience::Sso => {
            if new.license_key.is_some() {
                return Err(bad(
                    "license_key: not used with the sso experience (users activate by signing \
                     in; drop the key)"
                        .into(),
                ));
            }
            Ok(Checked {
                experience,
                license_key: None,
                sso_texts: texts,
            })
        }
    }
}

/// The last four characters of a key, dashes left out.
fn hint(key: &str) -> String {
    let chars: Vec<char> = key.chars().filter(|c| *c != '-').collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

fn view(r: ParallelsActivationRecord) -> Result<ParallelsActivation, ServiceError> {
    let experience = Experience::parse(&r.experience).ok_or_else(|| {
        ServiceError::Internal(format!(
            "stored activation of {} has experience {:?}",
            r.group_name, r.experience
        ))
    })?;
    let sso_texts = serde_json::from_str(&r.sso_texts).map_err(|e| {
        ServiceError::Internal(format!(
            "stored SSO texts of {} do not read: {e}",
            r.group_name
        ))
    })?;
    Ok(ParallelsActivation {
        group: r.group_name,
        experience,
        hint: r.license_key_hint,
        sso_texts,
        created_at: r.created_at,
        created_by: r.created_by,
        updated_at: r.updated_at,
        updated_by: r.updated_by,
    })
}

fn audit_view(a: &ParallelsActivation) -> serde_json::Value {
    json!({
        "experience": a.experience.key(),
        "license_key_hint": a.hint,
        "sso_texts": a.sso_texts.keys().collect::<Vec<_>>(),
    })
}

impl MdmService {
    /// Set (or replace) the group's activation: checked, the key sealed, audited.
    pub async fn set_parallels_activation(
        &self,
        group: &str,
        new: &NewActivation,
        actor: &str,
    ) -> Result<ParallelsActivation, ServiceError> {
        let checked = check(new)?;
        let license_key_sealed = checked
            .license_key
            .as_deref()
            .map(|k| {
                self.vault
                    .seal(Sealed::ParallelsLicenseKey { group }, k.as_bytes())
            })
            .transpose()?;
        let sso_texts = serde_json::to_string(&checked.sso_texts)
            .map_err(|e| ServiceError::Internal(format!("SSO texts: {e}")))?;
        let now = now_ms();
        let record = ParallelsActivationRecord {
            group_name: group.to_owned(),
            experience: checked.experience.as_str().to_owned(),
            license_key_sealed,
            license_key_hint: checked.license_key.as_deref().map(hint),
            sso_texts,
            created_at: now,
            created_by: actor.to_owned(),
            updated_at: now,
            updated_by: actor.to_owned(),
        };
        if !self.store.put_parallels_activation(&record).await? {
            return Err(ServiceError::NotFound(format!("no group {group}")));
        }
        let stored = self.parallels_activation(group).await?;
        self.audit(
            actor,
            "parallels_activation.set",
            group,
            audit_view(&stored),
        )
        .await?;
        Ok(stored)
    }

    /// The group's activation (the group named exactly).
    pub async fn parallels_activation(
        &self,
        group: &str,
    ) -> Result<ParallelsActivation, ServiceError> {
        let record = self
            .store
            .parallels_activation(group)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("group {group} has no Parallels Desktop activation"))
            })?;
        view(record)
    }

    /// Every group's activation, by group name.
    pub async fn parallels_activations(&self) -> Result<Vec<ParallelsActivation>, ServiceError> {
        self.store
            .parallels_activations()
            .await?
            .into_iter()
            .map(view)
            .collect()
    }

    /// Take the group's activation away (its profile is removed from the Macs by the caller);
    /// audited.
    pub async fn remove_parallels_activation(
        &self,
        group: &str,
        actor: &str,
    ) -> Result<ParallelsActivation, ServiceError> {
        let before = self.parallels_activation(group).await?;
        if !self.store.delete_parallels_activation(group).await? {
            return Err(ServiceError::NotFound(format!(
                "group {group} has no Parallels Desktop activation"
            )));
        }
        self.audit(
            actor,
            "parallels_activation.remove",
            group,
            audit_view(&before),
        )
        .await?;
        Ok(before)
    }

    /// The preferences of [`PARALLELS_DOMAIN`] for the group's Macs, the key opened: for the
    /// profile that carries them, never for an answer. `None` when the group has none.
    pub(crate) async fn parallels_preferences(
        &self,
        group: &str,
    ) -> Result<Option<plist::Dictionary>, ServiceError> {
        let Some(r) = self.store.parallels_activation(group).await? else {
            return Ok(None);
        };
        let mut d = plist::Dictionary::new();
        d.insert(
            EXPERIENCE_KEY.into(),
            plist::Value::String(r.experience.clone()),
        );
        if let Some(sealed) = &r.license_key_sealed {
            let key = self
                .vault
                .open(Sealed::ParallelsLicenseKey { group }, sealed)?;
            let key = String::from_utf8(key).map_err(|_| {
                ServiceError::Internal(format!("the license key of {group} is not text"))
            })?;
            d.insert(LICENSE_KEY_KEY.into(), plist::Value::String(key));
        }
        let texts: BTreeMap<String, String> = serde_json::from_str(&r.sso_texts)
            .map_err(|e| ServiceError::Internal(format!("SSO texts of {group}: {e}")))?;
        for (name, text) in texts {
            d.insert(name, plist::Value::String(text));
        }
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a1b2c3-d4e5f6-g7h8i9-j0k1l2-m3n4o5";

    fn new(experience: &str, key: Option<&str>, texts: &[(&str, &str)]) -> NewActivation {
        NewActivation {
            experience: experience.into(),
            license_key: key.map(str::to_string),
            sso_texts: texts
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    fn refusal(n: &NewActivation) -> String {
        match check(n) {
            Err(ServiceError::BadRequest(m)) => m,
            Err(e) => panic!("not a 400: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_license_key_is_normalized_and_hinted() {
        let c = check(&new("license_key", Some(&format!("  {KEY}\n")), &[])).expect("ok");
        assert_eq!(c.experience, Experience::LicenseKey);
        assert_eq!(
            c.license_key.as_deref(),
            Some("A1B2C3-D4E5F6-G7H8I9-J0K1L2-M3N4O5")
        );
        assert_eq!(hint("A1B2C3-D4E5F6-G7H8I9-J0K1L2-M3N4O5"), "N4O5");
        // Parallels' own spelling of the experience is accepted too.
        assert!(check(&new("License Key", Some(KEY), &[])).is_ok());
        assert_eq!(
            check(&new("SSO", None, &[])).expect("ok").experience,
            Experience::Sso
        );
    }

    #[test]
    fn refusals_name_the_field_and_never_echo_the_key() {
        let m = refusal(&new("license_key", None, &[]));
        assert!(m.starts_with("license_key:"), "{m}");
        for bad_key in [
            "short",
            "A1B2C3 D4E5F6-G7H8I9",
            "-A1B2C3-D4E5F6",
            "A1B2C3--D4E5F6",
        ] {
            let m = refusal(&new("license_key", Some(bad_key), &[]));
            assert!(m.starts_with("license_key:"), "{m}");
            assert!(!m.contains(bad_key), "the key is echoed: {m}");
        }
        let long = "A".repeat(200);
        assert!(!refusal(&new("license_key", Some(&long), &[])).contains(&long));
        assert!(refusal(&new("sso", Some(KEY), &[])).starts_with("license_key:"));
        assert!(
            refusal(&new("license_key", Some(KEY), &[("Title", "Hi")])).starts_with("sso_texts:")
        );
        assert!(refusal(&new("trial", None, &[])).starts_with("experience:"));
    }

    #[test]
    fn sso_texts_are_plain_names_with_bounded_text() {
        let c = check(&new(
            "sso",
            None,
            &[
                ("WelcomeTitle", " Sign in to Parallels "),
                ("Body.Text", "a\nb"),
            ],
        ))
        .expect("ok");
        assert_eq!(
            c.sso_texts.get("WelcomeTitle").map(String::as_str),
            Some("Sign in to Parallels")
        );
        for (name, text) in [
            ("", "x"),
            ("1Title", "x"),
            ("Title Text", "x"),
            ("<key>", "x"),
            (LICENSE_KEY_KEY, "x"),
            (EXPERIENCE_KEY, "x"),
            ("Title", "  "),
            ("Title", "a\u{0}b"),
        ] {
            let m = refusal(&new("sso", None, &[(name, text)]));
            assert!(m.starts_with("sso_texts:"), "{name:?}: {m}");
        }
        let huge = "x".repeat(MAX_SSO_TEXT + 1);
        assert!(refusal(&new("sso", None, &[("Title", &huge)])).starts_with("sso_texts:"));
        let many: Vec<(String, String)> = (0..=MAX_SSO_TEXTS)
            .map(|i| (format!("T{i}"), "x".to_string()))
            .collect();
        let n = NewActivation {
            experience: "sso".into(),
            license_key: None,
            sso_texts: many.into_iter().collect(),
        };
        assert!(refusal(&n).starts_with("sso_texts:"));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let n = new("license_key", Some(KEY), &[]);
        let shown = format!("{n:?}");
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
