//! Enrollment profiles at Apple (immutable: a change is a new profile), assignment, removal
//! and disowning. Profiles are checked here first, with Apple's error codes, so an admin sees
//! every problem at once; whatever Apple still refuses is shown with its code verbatim.

use super::sync::assign_outcomes;
use super::{CHUNK, DepOpError, DepResult, DepService};
use crate::secrets::Sealed;
use crate::service::setup::ProfileSetup;
use crate::store::dep::DepProfileRecord;
use crate::timefmt::now_ms;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use russet_dep::Profile;
use russet_dep::error::codes;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

const SKIP_KEYS_YAML: &str = include_str!("apple/skipkeys.yaml");

/// The Setup Assistant panes Apple lets a profile skip (`skip_setup_items`), from Apple's
/// device-management repository (`other/skipkeys.yaml`).
pub fn skip_keys() -> &'static HashSet<String> {
    static KEYS: OnceLock<HashSet<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct File {
            payloadkeys: Vec<Key>,
        }
        #[derive(serde::Deserialize)]
        struct Key {
            key: String,
        }
        match serde_norway::from_str::<File>(SKIP_KEYS_YAML) {
            Ok(f) => f.payloadkeys.into_iter().map(|k| k.key).collect(),
            Err(e) => {
                tracing::error!(error = %e, "the bundled skipkeys.yaml does not parse");
                HashSet::new()
            }
        }
    })
}

fn too_long(s: &Option<String>, max: usize) -> bool {
    s.as_ref().is_some_and(|s| s.chars().count() > max)
}

/// Apple's define-profile rules (Apple, Device Assignment: "Define a Profile" and the Profile
/// object). Every problem, each starting
/// with the code Apple would answer.
pub fn validate_profile(p: &Profile) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fail = |code: &str, why: String| problems.push(format!("{code}: {why}"));
    if p.profile_name.trim().is_empty() {
        fail(
            codes::CONFIG_NAME_REQUIRED,
            "profile_name is required".into(),
        );
    } else if p.profile_name.chars().count() > 125 {
        fail(
            codes::CONFIG_NAME_INVALID,
            "profile_name is longer than 125 characters".into(),
        );
    }
    if p.url.trim().is_empty() {
        fail(codes::CONFIG_URL_REQUIRED, "url is required".into());
    } else if p.url.len() > 2000
        || !(p.url.starts_with("https://") || p.url.starts_with("http://"))
        || p.url.contains(char::is_whitespace)
    {
        fail(
            codes::CONFIG_URL_INVALID,
            "url must be an http(s) URL of at most 2000 characters".into(),
        );
    }
    if too_long(&p.department, 125) {
        fail(
            codes::DEPARTMENT_INVALID,
            "department is longer than 125 characters".into(),
        );
    }
    if p.is_mdm_removable == Some(false) && p.is_supervised != Some(true) {
        fail(
            codes::FLAGS_INVALID,
            "is_mdm_removable false (non-removable MDM) needs is_supervised true".into(),
        );
    }
    if too_long(&p.org_magic, 256) {
        fail(
            codes::MAGIC_INVALID,
            "org_magic is longer than 256 characters".into(),
        );
    }
    if too_long(&p.support_email_address, 250)
        || p.support_email_address
            .as_ref()
            .is_some_and(|e| !e.is_empty() && !e.contains('@'))
    {
        fail(
            codes::SUPPORT_EMAIL_INVALID,
            "support_email_address must be an e-mail address of at most 250 characters".into(),
        );
    }
    if too_long(&p.support_phone_number, 50) {
        fail(
            codes::SUPPORT_PHONE_INVALID,
            "support_phone_number is longer than 50 characters".into(),
        );
    }
    let alpha = |s: &Option<String>, lens: &[usize]| {
        s.as_ref()
            .is_none_or(|s| lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()))
    };
    if !alpha(&p.language, &[2, 3]) || !alpha(&p.region, &[2]) {
        fail(
            "LOCALE_INVALID",
            "language must be an ISO 639 code and region an ISO 3166-1 code".into(),
        );
    }
    let known = skip_keys();
    let unknown: Vec<&str> = p
        .skip_setup_items
        .iter()
        .flatten()
        .filter(|k| !known.contains(k.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        fail(
            "SKIP_SETUP_ITEMS_INVALID",
            format!(
                "skip_setup_items has keys Apple does not define: {}",
                unknown.join(", ")
            ),
        );
    }
    problems
}

/// Serials grouped by the link that owns them.
type ByLink = BTreeMap<String, Vec<String>>;

fn status_map(statuses: &BTreeMap<String, russet_dep::DeviceStatus>) -> Value {
    Value::Object(
        statuses
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.as_str())))
            .collect(),
    )
}

fn check_serials(serials: &[String]) -> DepResult<()> {
    if serials.is_empty() {
        return Err(DepOpError::BadRequest(
            "name at least one serial number".into(),
        ));
    }
    if serials
        .iter()
        .any(|s| s.is_empty() || s.len() > 64 || s.contains(char::is_whitespace))
    {
        return Err(DepOpError::BadRequest(
            "serial numbers are non-empty and without spaces".into(),
        ));
    }
    Ok(())
}

impl DepService {
    /// `dep profile create`: fill in Russet's enrollment URL, check, define at Apple, store;
    /// audited.
    pub async fn create_profile(
        &self,
        link: Option<&str>,
        mut profile_json: Value,
        make_default: bool,
        setup: ProfileSetup,
        actor: &str,
    ) -> DepResult<Value> {
        let link = self.resolve_link(link).await?;
        let obj = profile_json
            .as_object_mut()
            .ok_or_else(|| DepOpError::BadRequest("the profile must be a JSON object".into()))?;
        if obj.contains_key("profile_uuid") {
            return Err(DepOpError::BadRequest(
                "profiles are immutable: leave out profile_uuid (Apple assigns a new one)".into(),
            ));
        }
        let mut profile: Profile = serde_json::from_value(profile_json)
            .map_err(|e| DepOpError::BadRequest(format!("not a DEP profile: {e}")))?;
        if profile.url.trim().is_empty() {
            profile.url = format!(
                "{}/mdm/enroll",
                self.settings.public_url.trim_end_matches('/')
            );
        }
        // A private TLS chain: Setup Assistant must trust `url` before any profile is on the
        // Mac, so the root goes into the DEP profile itself (unless the admin gave anchors).
        if profile.anchor_certs.as_ref().is_none_or(Vec::is_empty)
            && !self.settings.anchor_certs.is_empty()
        {
            profile.anchor_certs = Some(
                self.settings
                    .anchor_certs
                    .iter()
                    .map(|der| STANDARD.encode(der))
                    .collect(),
            );
        }
        let problems = validate_profile(&profile);
        if !problems.is_empty() {
            return Err(DepOpError::BadRequest(format!(
                "the profile would be refused: {}",
                problems.join("; ")
            )));
        }
        if let Some(group) = &setup.group {
            // Checked before Apple hears of the profile: a Mac must not enroll into a group
            // that is not there.
            match self.store.group(group).await? {
                None => {
                    return Err(DepOpError::NotFound(format!(
                        "no group {group} (create it first: russet group create {group:?})"
                    )));
                }
                Some(g) if g.filter.is_some() => {
                    return Err(DepOpError::BadRequest(format!(
                        "{group} is a smart group: its members follow its filter; a DEP \
                         profile's Macs join a static group"
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(serials) = &profile.devices {
            check_serials(serials)?;
            if serials.len() > CHUNK {
                return Err(DepOpError::BadRequest(format!(
                    "at most {CHUNK} devices with a new profile; assign the rest afterwards"
                )));
            }
        }
        let client = self.client(&link)?;
        let answer = client.define_profile(&profile).await;
        let answer = self.note(&link.name, answer).await?;
        let now = now_ms();
        profile.profile_uuid = Some(answer.profile_uuid.clone());
        profile.devices = None;
        let stored = serde_json::to_string(&profile)
            .map_err(|e| DepOpError::Internal(format!("profile JSON: {e}")))?;
        let setup_sealed = if setup.is_empty() {
            None
        } else {
            let plain = serde_json::to_vec(&setup)
                .map_err(|e| DepOpError::Internal(format!("profile setup: {e}")))?;
            Some(self.vault.seal(
                Sealed::DepProfileSetup {
                    profile_uuid: &answer.profile_uuid,
                },
                &plain,
            )?)
        };
        self.store
            .insert_dep_profile(&DepProfileRecord {
                profile_uuid: answer.profile_uuid.clone(),
                link: link.name.clone(),
                profile_name: profile.profile_name.clone(),
                profile_json: stored,
                created_at: now,
                setup_sealed,
            })
            .await?;
        if !answer.devices.is_empty() {
            let outcomes = assign_outcomes(&answer.profile_uuid, &answer.devices, None, now);
            self.store.record_dep_assignments(&outcomes).await?;
        }
        if make_default {
            self.store
                .set_dep_default_profile(&link.name, Some(&answer.profile_uuid), now)
                .await?;
        }
        self.audit(
            actor,
            "dep.profile.create",
            &answer.profile_uuid,
            json!({"default": make_default}),
        )
        .await?;
        Ok(json!({
            "profile_uuid": answer.profile_uuid,
            "link": link.name,
            "profile_name": profile.profile_name,
            "url": profile.url,
            "default": make_default,
            "anchor_certs": profile.anchor_certs.as_ref().map_or(0, Vec::len),
            "await_device_configured": profile.await_device_configured.unwrap_or(false),
            "setup": setup.summary(),
            "devices": status_map(&answer.devices),
        }))
    }

    pub async fn profile(&self, uuid: &str) -> DepResult<DepProfileRecord> {
        self.store
            .dep_profile(uuid)
            .await?
            .ok_or_else(|| DepOpError::NotFound(format!("no DEP profile {uuid} in Russet")))
    }

    /// `dep profile assign UUID SERIAL…`: per-serial outcomes, stored and returned; audited.
    pub async fn assign(&self, uuid: &str, serials: &[String], actor: &str) -> DepResult<Value> {
        check_serials(serials)?;
        let profile = self.profile(uuid).await?;
        let link = self.link(&profile.link).await?;
        let client = self.client(&link)?;
        let mut all = BTreeMap::new();
        let mut retry_after = None;
        for chunk in serials.chunks(CHUNK) {
            let answer = client.assign_profile(uuid, chunk).await;
            let answer = self.note(&link.name, answer).await?;
            let now = now_ms();
            let outcomes = assign_outcomes(uuid, &answer.devices, answer.retry_after_seconds, now);
            self.store.record_dep_assignments(&outcomes).await?;
            retry_after = retry_after.or(answer.retry_after_seconds);
            all.extend(answer.devices);
        }
        self.audit(
            actor,
            "dep.profile.assign",
            uuid,
            json!({"devices": serials.len()}),
        )
        .await?;
        Ok(json!({
            "profile_uuid": uuid,
            "link": link.name,
            "devices": status_map(&all),
            "retry_after_seconds": retry_after,
        }))
    }

    /// Serials grouped by link: the named link, else each serial's DEP record, else the only
    /// link.
    async fn group_by_link(&self, link: Option<&str>, serials: &[String]) -> DepResult<ByLink> {
        let mut out = ByLink::new();
        if let Some(l) = link {
            let l = self.link(l).await?;
            out.insert(l.name, serials.to_vec());
            return Ok(out);
        }
        let mut fallback: Option<String> = None;
        for s in serials {
            let owner = match self.store.dep_device(s).await? {
                Some(rec) => rec.link,
                None => match &fallback {
                    Some(f) => f.clone(),
                    None => {
                        let only = self.resolve_link(None).await?.name;
                        fallback = Some(only.clone());
                        only
                    }
                },
            };
            out.entry(owner).or_default().push(s.clone());
        }
        Ok(out)
    }

    /// `dep profile remove SERIAL…` (of `uuid` only, when given); audited.
    pub async fn remove(
        &self,
        uuid: Option<&str>,
        link: Option<&str>,
        serials: &[String],
        actor: &str,
    ) -> DepResult<Value> {
        check_serials(serials)?;
        let link = match (link, uuid) {
            (None, Some(u)) => Some(self.profile(u).await?.link),
            (l, _) => l.map(str::to_owned),
        };
        let groups = self.group_by_link(link.as_deref(), serials).await?;
        let mut all = BTreeMap::new();
        for (name, serials) in groups {
            let client = self.client(&self.link(&name).await?)?;
            for chunk in serials.chunks(CHUNK) {
                let answer = client.remove_profile(chunk, uuid).await;
                let answer = self.note(&name, answer).await?;
                let removed: Vec<String> = answer
                    .devices
                    .iter()
                    .filter(|(_, st)| **st == russet_dep::DeviceStatus::Success)
                    .map(|(s, _)| s.clone())
                    .collect();
                self.store.dep_profiles_removed(&removed, now_ms()).await?;
                all.extend(answer.devices);
            }
        }
        self.audit(
            actor,
            "dep.profile.remove",
            uuid.unwrap_or("any"),
            json!({"devices": serials.len()}),
        )
        .await?;
        Ok(json!({"profile_uuid": uuid, "devices": status_map(&all)}))
    }

    /// `dep disown SERIAL… --confirm`: permanently removes the devices from the organisation;
    /// audited with every serial.
    pub async fn disown(
        &self,
        link: Option<&str>,
        serials: &[String],
        confirm: bool,
        actor: &str,
    ) -> DepResult<Value> {
        check_serials(serials)?;
        if !confirm {
            return Err(DepOpError::BadRequest(
                "disowning removes the devices from your organisation in Apple Business/School \
                 Manager for good (it cannot be undone): confirm with --confirm (\"confirm\": true)"
                    .into(),
            ));
        }
        let groups = self.group_by_link(link, serials).await?;
        let mut all = BTreeMap::new();
        for (name, serials) in groups {
            let client = self.client(&self.link(&name).await?)?;
            for chunk in serials.chunks(CHUNK) {
                let answer = client.disown(chunk).await;
                let answer = self.note(&name, answer).await?;
                let gone: Vec<String> = answer
                    .devices
                    .iter()
                    .filter(|(_, st)| **st == russet_dep::DeviceStatus::Success)
                    .map(|(s, _)| s.clone())
                    .collect();
                self.store.dep_mark_disowned(&gone, now_ms()).await?;
                all.extend(answer.devices);
            }
        }
        self.audit(actor, "dep.disown", "dep", json!({"devices": serials}))
            .await?;
        Ok(json!({"devices": status_map(&all)}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Profile {
        Profile {
            profile_name: "Corp Macs".into(),
            url: "https://mdm.example.org/mdm/enroll".into(),
            is_supervised: Some(true),
            is_mdm_removable: Some(false),
            skip_setup_items: Some(vec!["AppleID".into(), "Siri".into()]),
            ..Default::default()
        }
    }

    #[test]
    fn apples_skip_keys_are_loaded() {
        let k = skip_keys();
        assert!(k.len() > 40, "{}", k.len());
        assert!(k.contains("FileVault") && k.contains("Location"));
    }

    #[test]
    fn a_valid_profile_passes() {
        assert!(validate_profile(&good()).is_empty());
    }

    #[test]
    fn every_problem_is_named_with_apples_code() {
        let p = Profile {
            profile_name: "x".repeat(126),
            is_supervised: Some(false),
            is_mdm_removable: Some(false),
            department: Some("d".repeat(126)),
            org_magic: Some("m".repeat(257)),
            support_phone_number: Some("1".repeat(51)),
            support_email_address: Some("nope".into()),
            skip_setup_items: Some(vec!["AppleID".into(), "NotAPane".into()]),
            ..good()
        };
        let problems = validate_profile(&p).join("\n");
        for code in [
            "CONFIG_NAME_INVALID",
            "FLAGS_INVALID",
            "DEPARTMENT_INVALID",
            "MAGIC_INVALID",
            "SUPPORT_PHONE_INVALID",
            "SUPPORT_EMAIL_INVALID",
            "SKIP_SETUP_ITEMS_INVALID: skip_setup_items has keys Apple does not define: NotAPane",
        ] {
            assert!(problems.contains(code), "{code} missing in {problems}");
        }
        let p = Profile {
            url: String::new(),
            profile_name: String::new(),
            ..good()
        };
        let problems = validate_profile(&p).join("\n");
        assert!(
            problems.contains("CONFIG_NAME_REQUIRED") && problems.contains("CONFIG_URL_REQUIRED")
        );
    }
}
