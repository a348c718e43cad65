//! Setup Assistant commands for ADE Macs (Apple, `DeviceConfigured` and
//! `AccountConfiguration` commands: sent while the Mac awaits configuration).
//!
//! A DEP profile with `await_device_configured` holds the Mac in Setup Assistant after
//! enrollment; its TokenUpdate says `AwaitingConfiguration`. Russet then queues the profile's
//! setup — the attached configuration profile, the AccountConfiguration — and last
//! `DeviceConfigured`, which lets Setup Assistant go on. The queue hands them out in that
//! order (same priority, FIFO), ahead of ordinary commands.

use super::{MdmService, ServiceError};
use crate::protocol::Command;
use crate::secrets::Sealed;
use crate::store::{AdeSetupClaim, PRIORITY_SETUP};
use crate::timefmt::now_ms;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// What Russet does for a DEP profile's Macs besides Apple's part. Stored sealed with the
/// profile (an attached profile or an admin's password hash is a secret).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileSetup {
    /// A configuration profile (`.mobileconfig`, MDM payload removed) installed during setup.
    #[serde(default, with = "opt_base64", skip_serializing_if = "Option::is_none")]
    pub attached_profile: Option<Vec<u8>>,
    /// AccountConfiguration keys, as the typed JSON command API takes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_configuration: Option<serde_json::Value>,
    /// Macs older than this get Apple's `com.apple.softwareupdate.required` at enrollment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_build_version: Option<String>,
    /// A static group the profile's Macs join, by serial number, when they enroll (the
    /// "site assignment" of other MDMs; `MdmService::join_group_by_serial`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

mod opt_base64 {
    use super::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl ProfileSetup {
    pub fn is_empty(&self) -> bool {
        *self == ProfileSetup::default()
    }

    /// The commands to queue, in order, ending with `DeviceConfigured`.
    pub fn commands(&self) -> Result<Vec<Command>, crate::protocol::ProtocolError> {
        let mut out = Vec::new();
        if let Some(p) = &self.attached_profile {
            out.push(Command::install_profile(p.clone())?);
        }
        if let Some(keys) = &self.account_configuration {
            let mut json = keys.clone();
            if let Some(obj) = json.as_object_mut() {
                obj.insert("request_type".into(), "AccountConfiguration".into());
            }
            out.push(Command::from_json(&json)?);
        }
        out.push(Command::device_configured()?);
        Ok(out)
    }

    /// What the admin API shows (no secrets).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "attached_profile_bytes": self.attached_profile.as_ref().map(Vec::len),
            "account_configuration": self.account_configuration.is_some(),
            "min_os_version": self.min_os_version,
            "min_build_version": self.min_build_version,
            "group": self.group,
        })
    }
}

impl MdmService {
    /// The setup of a DEP profile, opened.
    pub async fn profile_setup(&self, profile_uuid: &str) -> Result<ProfileSetup, ServiceError> {
        let Some(rec) = self.store.dep_profile(profile_uuid).await? else {
            return Ok(ProfileSetup::default());
        };
        let Some(sealed) = rec.setup_sealed else {
            return Ok(ProfileSetup::default());
        };
        let plain = self
            .vault
            .open(Sealed::DepProfileSetup { profile_uuid }, &sealed)?;
        serde_json::from_slice(&plain)
            .map_err(|e| ServiceError::Internal(format!("stored profile setup: {e}")))
    }

    /// A device channel's TokenUpdate said `AwaitingConfiguration`: queue its setup once.
    pub(crate) async fn awaiting_configuration(&self, device_id: &str) -> Result<(), ServiceError> {
        let now = now_ms();
        let profile = match self.store.claim_ade_setup(device_id, None, now).await? {
            AdeSetupClaim::AlreadyQueued => return Ok(()),
            AdeSetupClaim::Claimed(p) => p,
        };
        let setup = match &profile {
            Some(uuid) => self.profile_setup(uuid).await?,
            None => ProfileSetup::default(),
        };
        let mut commands = match setup.commands() {
            Ok(c) => c,
            Err(e) => {
                // Validated when the profile was created; should the stored setup still be
                // unusable, release the Mac rather than leave it waiting in Setup Assistant.
                tracing::error!(error = %e, device_id, "profile setup unusable; sending DeviceConfigured only");
                ProfileSetup::default().commands()?
            }
        };
        // FileVault enforced on the group the profile's Macs join: part of the setup, before
        // DeviceConfigured (the last command).
        if let Some(group) = &setup.group
            && let Some(fv) = self.filevault_setup_profile(group).await?
        {
            let at = commands.len().saturating_sub(1);
            commands.insert(at, Command::install_profile(fv)?);
        }
        let targets = [device_id.to_string()];
        let mut names = Vec::new();
        for command in &commands {
            // Sealed like lock and wipe: an attached profile or a password hash is a secret.
            self.enqueue_internal(command, &targets, PRIORITY_SETUP, true)
                .await?;
            names.push(command.request_type.as_str());
        }
        tracing::info!(
            device_id,
            profile = profile.as_deref().unwrap_or("-"),
            commands = %names.join(", "),
            "AwaitingConfiguration: setup queued"
        );
        Ok(())
    }
}
