//! Who should have a profile: groups by name and devices (named by UDID or serial, stored by
//! UDID). Every change is audited.

use super::reconcile::ReconcileReport;
use super::{ProfileError, ProfileResult, ProfileService};
use crate::store::profiles::{ProfileAssignment, ProfileRecord, Target, TargetKind};
use crate::timefmt::now_ms;
use serde_json::json;

/// What an assign or unassign changed, and the assignments now.
#[derive(Debug, Clone)]
pub struct AssignOutcome {
    /// Assigned (or unassigned) by this call.
    pub changed: Vec<Target>,
    /// Named, but already in that state.
    pub unchanged: Vec<Target>,
    pub assignments: Vec<ProfileAssignment>,
    /// What the Macs concerned were sent.
    pub reconciled: ReconcileReport,
}

/// Group names and device UDIDs of some targets, each list sorted.
pub(super) fn split<'a>(targets: impl Iterator<Item = &'a Target>) -> (Vec<String>, Vec<String>) {
    let (mut groups, mut devices) = (Vec::new(), Vec::new());
    for t in targets {
        match t.kind {
            TargetKind::Group => groups.push(t.name.clone()),
            TargetKind::Device => devices.push(t.name.clone()),
        }
    }
    groups.sort();
    devices.sort();
    (groups, devices)
}

fn group_targets(groups: &[String]) -> ProfileResult<Vec<Target>> {
    groups
        .iter()
        .map(|g| {
            let name = g.trim();
            if name.is_empty() {
                Err(ProfileError::BadRequest(
                    "a group name must not be empty".into(),
                ))
            } else {
                Ok(Target::group(name))
            }
        })
        .collect()
}

impl ProfileService {
    /// The UDID of a device named by UDID or serial; `None` when Russet knows neither.
    async fn device_udid(&self, name: &str) -> ProfileResult<Option<String>> {
        Ok(self.service.udid_of(name).await?)
    }

    /// Devices as targets; every name Russet does not know is listed in one 404.
    pub(super) async fn device_targets(
        &self,
        devices: &[String],
        also_assigned: &[ProfileAssignment],
    ) -> ProfileResult<Vec<Target>> {
        let mut targets = Vec::new();
        let mut unknown = Vec::new();
        for name in devices {
            let name = name.trim();
            match self.device_udid(name).await? {
                Some(udid) => targets.push(Target::device(&udid)),
                // A device Russet forgot can still be unassigned by the UDID it was assigned by.
                None if also_assigned
                    .iter()
                    .any(|a| a.target.kind == TargetKind::Device && a.target.name == name) =>
                {
                    targets.push(Target::device(name))
                }
                None => unknown.push(name.to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(ProfileError::NotFound(format!(
                "no device with the UDID or serial number {}",
                unknown.join(", ")
            )));
        }
        Ok(targets)
    }

    /// `profile assign`: assign a live profile to groups and devices. Audited.
    pub async fn assign(
        &self,
        identifier: &str,
        groups: &[String],
        devices: &[String],
        actor: &str,
    ) -> ProfileResult<AssignOutcome> {
        if groups.is_empty() && devices.is_empty() {
            return Err(ProfileError::BadRequest(
                "name at least one group or device".into(),
            ));
        }
        self.live(identifier).await?;
        let mut targets = group_targets(groups)?;
        for g in groups {
            if self.store.group(g).await?.is_none() {
                return Err(ProfileError::NotFound(format!("no group {g}")));
            }
        }
        targets.extend(self.device_targets(devices, &[]).await?);
        dedup(&mut targets);
        let added = self
            .store
            .add_profile_assignments(identifier, &targets, now_ms())
            .await?
            .ok_or_else(|| gone(identifier))?;
        let outcome = self.outcome(identifier, targets, added).await?;
        let (groups, devices) = split(outcome.changed.iter());
        self.audit(
            actor,
            "profile.assign",
            identifier,
            json!({"groups": groups, "devices": devices}),
        )
        .await?;
        Ok(outcome)
    }

    /// The live profiles assigned to `group` (by name, exactly), by identifier: what a group's
    /// page lists.
    pub async fn group_profiles(&self, group: &str) -> ProfileResult<Vec<ProfileRecord>> {
        let wanted = Target::group(group);
        let mut out = Vec::new();
        for profile in self.store.profiles(false).await? {
            if profile.group_count == 0 {
                continue;
            }
            let assignments = self.store.profile_assignments(&profile.identifier).await?;
            if assignments.iter().any(|a| a.target == wanted) {
                out.push(profile);
            }
        }
        Ok(out)
    }

    /// `profile unassign`: remove assignments. Audited.
    pub async fn unassign(
        &self,
        identifier: &str,
        groups: &[String],
        devices: &[String],
        actor: &str,
    ) -> ProfileResult<AssignOutcome> {
        if groups.is_empty() && devices.is_empty() {
            return Err(ProfileError::BadRequest(
                "name at least one group or device".into(),
            ));
        }
        if self.store.profile(identifier).await?.is_none() {
            return Err(ProfileError::NotFound(format!("no profile {identifier}")));
        }
        let current = self.store.profile_assignments(identifier).await?;
        let mut targets = group_targets(groups)?;
        targets.extend(self.device_targets(devices, &current).await?);
        dedup(&mut targets);
        let removed = self
            .store
            .remove_profile_assignments(identifier, &targets)
            .await?;
        let outcome = self.outcome(identifier, targets, removed).await?;
        let (groups, devices) = split(outcome.changed.iter());
        self.audit(
            actor,
            "profile.unassign",
            identifier,
            json!({"groups": groups, "devices": devices}),
        )
        .await?;
        Ok(outcome)
    }

    async fn live(&self, identifier: &str) -> ProfileResult<()> {
        match self.store.profile(identifier).await? {
            Some(p) if p.deleted_at.is_none() => Ok(()),
            _ => Err(gone(identifier)),
        }
    }

    /// The answer, once the devices the change concerns have converged.
    async fn outcome(
        &self,
        identifier: &str,
        named: Vec<Target>,
        changed: Vec<Target>,
    ) -> ProfileResult<AssignOutcome> {
        let devices = self.devices_of(&changed).await?;
        let reconciled = self.converge(&devices).await?;
        let unchanged = named.into_iter().filter(|t| !changed.contains(t)).collect();
        Ok(AssignOutcome {
            changed,
            unchanged,
            assignments: self.store.profile_assignments(identifier).await?,
            reconciled,
        })
    }
}

fn gone(identifier: &str) -> ProfileError {
    ProfileError::NotFound(format!("no profile {identifier} (or it is deleted)"))
}

/// One of each target, in the order first named.
fn dedup(targets: &mut Vec<Target>) {
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| seen.insert(t.clone()));
}
