//! Parallels Desktop activation delivered to a group's Macs (issue 15). The rules, the sealed
//! license key and the audit are the core's (`service::parallels_activation`); this module
//! keeps the group's profile in step with every change, so the HTTP handlers call these and
//! nothing else.
//!
//! For each group with an activation Russet builds one Custom Settings profile (Apple's
//! `com.apple.ManagedClient.preferences`) for Parallels' domain
//! `com.parallels.desktop.managedprefs` (`ActivationExperience`, `LicenseKey`, the SSO
//! texts), stores it as the catalog's next version under [`profile_identifier`] — sealed at
//! rest like every profile, and sent in sealed InstallProfile commands, so the key is never
//! in clear in the database or the command history — and assigns it to that group only.
//! Setting it again with other values is a new version every Mac of the group gets; removing
//! it deletes the profile (removed from the Macs).
//!
//! A Mac in two groups with activations gets both profiles; they share the domain, so macOS
//! keeps one of them: the device view names the first group's by name.

use super::{ProfileError, ProfileResult, ProfileService};
use crate::protocol::mobileconfig;
use crate::protocol::mobileconfig::custom_settings::{self, CustomSettings};
use crate::service::devices::DeviceDetails;
use crate::service::parallels_activation::{NewActivation, PARALLELS_DOMAIN, ParallelsActivation};
use crate::store::profiles::TargetKind;
use serde_json::json;

/// Prefix of the profiles Russet builds for activations (reserved: uploads cannot use it).
pub const ACTIVATION_PROFILE_PREFIX: &str = "org.russet.parallels-activation";

/// `org.russet.parallels-activation.<slug>-<8 hex>` of the group (group names never change).
pub fn profile_identifier(group: &str) -> String {
    format!(
        "{ACTIVATION_PROFILE_PREFIX}.{}",
        custom_settings::identifier_stem(group)
    )
}

/// Which activation applies to a Mac and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceActivation {
    /// `license_key` or `sso`.
    pub experience: &'static str,
    /// The group that gives it (the first by name when several do).
    pub group: String,
    pub profile: String,
    /// The profile's state on the Mac (`pending`, `installed`, …), `None` before the
    /// reconciler has planned it.
    pub state: Option<String>,
}

impl ProfileService {
    /// `PUT /api/v1/groups/{name}/parallels-activation`: the core's set, then delivery.
    pub async fn set_parallels_activation(
        &self,
        group: &str,
        new: &NewActivation,
        actor: &str,
    ) -> ProfileResult<ParallelsActivation> {
        let activation = self
            .service
            .set_parallels_activation(group, new, actor)
            .await?;
        self.deliver_parallels_activation(group, actor).await?;
        Ok(activation)
    }

    /// `DELETE`: the activation's profile is deleted too (removed from the Macs).
    pub async fn remove_parallels_activation(
        &self,
        group: &str,
        actor: &str,
    ) -> ProfileResult<ParallelsActivation> {
        let removed = self
            .service
            .remove_parallels_activation(group, actor)
            .await?;
        self.deliver_parallels_activation(group, actor).await?;
        Ok(removed)
    }

    /// Make the group's activation profile match its activation: built, stored when its bytes
    /// changed, assigned to the group; deleted when the group has none. Idempotent.
    pub async fn deliver_parallels_activation(
        &self,
        group: &str,
        actor: &str,
    ) -> ProfileResult<()> {
        let identifier = profile_identifier(group);
        let Some(settings) = self.service.parallels_preferences(group).await? else {
            let live = self
                .store
                .profile(&identifier)
                .await?
                .is_some_and(|p| p.deleted_at.is_none());
            if live {
                self.delete(&identifier, actor).await?;
            }
            return Ok(());
        };
        let cs = CustomSettings {
            identifier: identifier.clone(),
            name: format!("Parallels Desktop activation ({group})"),
            domain: PARALLELS_DOMAIN.into(),
            settings,
        };
        let built = custom_settings::build(&cs)?;
        let parsed = mobileconfig::parse(&built, &mobileconfig::RUSSET_BUILT)?;
        // The same bytes as the latest version add nothing (store_version's rule); a new one is
        // audited as `profile.upload` with no value of the key (only its hash, like every
        // profile's).
        self.store_version(
            parsed,
            actor,
            json!({"parallels_activation": {"group": group}}),
        )
        .await?;
        let assigned = self
            .store
            .profile_assignments(&identifier)
            .await?
            .into_iter()
            .any(|a| a.target.kind == TargetKind::Group && a.target.name == group);
        if !assigned {
            self.assign(&identifier, &[group.to_owned()], &[], actor)
                .await?;
        }
        Ok(())
    }

    /// Which Parallels Desktop activation applies to this Mac, through which group, and where
    /// its profile stands; `None` when none of its groups has one.
    pub async fn device_parallels_activation(
        &self,
        details: &DeviceDetails,
    ) -> ProfileResult<Option<DeviceActivation>> {
        let first = self
            .service
            .parallels_activations()
            .await
            .map_err(ProfileError::from)?
            .into_iter()
            .filter(|a| details.groups.contains(&a.group))
            .min_by(|a, b| a.group.cmp(&b.group));
        let Some(a) = first else {
            return Ok(None);
        };
        let profile = profile_identifier(&a.group);
        let state = details
            .profiles
            .iter()
            .find(|s| s.identifier == profile)
            .map(|s| s.state.clone());
        Ok(Some(DeviceActivation {
            experience: a.experience.key(),
            group: a.group,
            profile,
            state,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_per_group_and_reserved() {
        let a = profile_identifier("Engineering");
        assert!(
            a.starts_with("org.russet.parallels-activation.engineering-"),
            "{a}"
        );
        assert_ne!(a, profile_identifier("Sales"));
        assert_ne!(profile_identifier("QA Team"), profile_identifier("qa-team"));
    }
}
