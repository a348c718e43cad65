//! The catalog as the reconciler's source of desired state ([`DesiredSource`]): which profile
//! versions each Mac should have, and the bytes one of its channels gets.

use super::reconcile::{DesiredProfile, DesiredSource, Scope, Target as Channel};
use super::{ProfileError, ProfileService};
use crate::protocol::mobileconfig::variables::DeviceVars;
use crate::service::ServiceError;
use crate::store::DeviceView;
use crate::store::profiles::{DesiredRow, TargetKind};
use std::collections::HashMap;

impl From<ProfileError> for ServiceError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Store(e) => ServiceError::Store(e),
            ProfileError::Secret(e) => ServiceError::Secret(e),
            ProfileError::NotFound(m) => ServiceError::NotFound(m),
            ProfileError::Expand(e) => ServiceError::Conflict(e.to_string()),
            ProfileError::Service(e) => *e,
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

fn desired(row: &DesiredRow) -> DesiredProfile {
    DesiredProfile {
        identifier: row.identifier.clone(),
        version: row.version,
        payload_uuid: row.payload_uuid.clone(),
        scope: if row.scope == "User" {
            Scope::User
        } else {
            Scope::System
        },
        per_device: row.has_variables,
    }
}

/// Whether a profile restricted to `architecture` (migration 0019) is for this Mac: by
/// DeviceInformation `IsAppleSilicon` as inventory last stored it. A Mac whose architecture
/// is not known yet gets no restricted profile (a wrong image is worse than a late one; the
/// seed guide's golden images are per architecture) and is planned again when its facts come.
pub(super) fn fits(architecture: Option<&str>, d: &DeviceView) -> bool {
    match architecture {
        None => true,
        Some(PROFILE_APPLE_SILICON) => d.is_apple_silicon == Some(true),
        Some(PROFILE_INTEL) => d.is_apple_silicon == Some(false),
        // An architecture this Russet does not know: no Mac is sure to fit it.
        Some(_) => false,
    }
}

/// The `profiles.architecture` value for Apple silicon Macs.
pub const PROFILE_APPLE_SILICON: &str = "apple_silicon";
/// The `profiles.architecture` value for Intel Macs.
pub const PROFILE_INTEL: &str = "intel";

/// Each device's profiles from the assignment rows: those naming it, and those naming one of
/// its groups, restricted to its architecture when the profile is ([`fits`]); one entry per
/// identifier.
pub(super) fn group_by_device(
    devices: &[DeviceView],
    groups_of: &HashMap<String, Vec<String>>,
    rows: &[DesiredRow],
) -> HashMap<String, Vec<DesiredProfile>> {
    let mut out = HashMap::new();
    for d in devices {
        let groups = groups_of.get(&d.udid).map(Vec::as_slice).unwrap_or(&[]);
        let mut wanted: Vec<DesiredProfile> = Vec::new();
        for row in rows.iter().filter(|r| match r.target.kind {
            TargetKind::Device => r.target.name == d.udid,
            TargetKind::Group => groups.contains(&r.target.name),
        } && fits(r.architecture.as_deref(), d))
        {
            if !wanted.iter().any(|w| w.identifier == row.identifier) {
                wanted.push(desired(row));
            }
        }
        out.insert(d.udid.clone(), wanted);
    }
    out
}

#[async_trait::async_trait]
impl DesiredSource for ProfileService {
    async fn desired_for(
        &self,
        devices: &[DeviceView],
    ) -> Result<HashMap<String, Vec<DesiredProfile>>, ServiceError> {
        let ids: Vec<String> = devices.iter().map(|d| d.udid.clone()).collect();
        // Only the groups profiles are assigned to matter; which of them each device is in.
        let assigned = self.store.assigned_groups().await?;
        let groups_of: HashMap<String, Vec<String>> = self
            .service
            .memberships(&ids, &assigned)
            .await?
            .into_iter()
            .map(|(udid, groups)| (udid, groups.into_iter().collect()))
            .collect();
        let groups: Vec<String> = assigned.into_iter().collect();
        let rows = self.store.desired_profiles(&ids, &groups).await?;
        Ok(group_by_device(devices, &groups_of, &rows))
    }

    async fn deliverable(
        &self,
        identifier: &str,
        version: i64,
        channel: &Channel<'_>,
    ) -> Result<Vec<u8>, ServiceError> {
        let vars = DeviceVars {
            serial: channel.device.serial_number.clone(),
            udid: Some(channel.device.udid.clone()),
            device_name: channel.device.device_name.clone(),
            user_short_name: channel.user_short_name.map(str::to_string),
        };
        let (body, signed) = self.deliverable_bytes(identifier, version, &vars).await?;
        match &self.signer {
            // Signed by Russet, so System Settings shows it as verified; an upload signed by
            // its author stays as it is.
            Some(enroll) if !signed => enroll
                .sign_profile(&body)
                .map_err(|e| ServiceError::Internal(format!("signing {identifier}: {e}"))),
            _ => Ok(body),
        }
    }
}
