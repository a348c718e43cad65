//! How the catalog keeps Macs converging: it hears the core (a Mac enrolled, reported new
//! facts, joined or left a group, answered one of the reconciler's commands) and reconciles;
//! a periodic sweep retries and verifies.

use super::reconcile::ReconcileReport;
use super::{ProfileResult, ProfileService};
use crate::service::{CommandResultEvent, DeviceChange, DeviceObserver, ServiceError};
use crate::store::profiles::{Target, TargetKind};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

impl ProfileService {
    /// The devices assignment targets name now: the UDIDs, and every member of the groups.
    pub(super) async fn devices_of(&self, targets: &[Target]) -> ProfileResult<Vec<String>> {
        let mut out = BTreeSet::new();
        for t in targets {
            match t.kind {
                TargetKind::Device => {
                    out.insert(t.name.clone());
                }
                TargetKind::Group => match self.service.group_devices(&t.name).await {
                    Ok(members) => out.extend(members),
                    // A group deleted since: its Macs heard of it already.
                    Err(ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
        Ok(out.into_iter().collect())
    }

    /// After an admin's change, the devices concerned converge now: what is queued is
    /// queued when the admin gets the answer.
    pub(super) async fn converge(&self, device_ids: &[String]) -> ProfileResult<ReconcileReport> {
        Ok(self.reconciler.reconcile(self, device_ids).await?)
    }

    /// Whether a live profile is assigned to a smart group, or restricted to one architecture
    /// (a Mac's first `IsAppleSilicon` answer decides whether it gets it).
    async fn facts_matter(&self) -> ProfileResult<bool> {
        if self.store.architecture_profiles_assigned().await? {
            return Ok(true);
        }
        let assigned = self.store.assigned_groups().await?;
        if assigned.is_empty() {
            return Ok(false);
        }
        Ok(self
            .store
            .smart_groups()
            .await?
            .iter()
            .any(|g| assigned.contains(&g.name)))
    }

    /// Reconcile these devices now (after an admin's change): what is queued is queued when
    /// this returns.
    pub async fn reconcile_devices(
        &self,
        device_ids: &[String],
    ) -> Result<super::reconcile::ReconcileReport, ServiceError> {
        self.reconciler.reconcile(self, device_ids).await
    }

    /// A ProfileList now from the channels of these devices that have Russet's profiles (the
    /// periodic check, on demand). Returns how many were asked.
    pub async fn verify_devices(&self, device_ids: &[String]) -> Result<usize, ServiceError> {
        self.reconciler.verify_known_channels(device_ids).await
    }
}

#[async_trait::async_trait]
impl DeviceObserver for ProfileService {
    async fn devices_changed(&self, device_ids: &[String], why: DeviceChange) {
        if why == DeviceChange::Enrolled {
            // A re-enrolled Mac may have been erased: ask what is really there first (the
            // ProfileList is queued before anything this pass sends).
            if let Err(e) = self.reconciler.verify_known_channels(device_ids).await {
                tracing::error!(error = %e, "asking enrolled Macs for their profiles failed");
            }
        }
        if why == DeviceChange::Facts {
            // New facts change what a Mac should have only through smart groups and
            // architecture-specific profiles: a Mac's answers (inventory, every day on every
            // Mac) cost three small reads when neither is assigned.
            match self.facts_matter().await {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) => {
                    tracing::error!(error = %e, "reading the assigned smart groups failed");
                    return;
                }
            }
        }
        if let Err(e) = self.reconciler.reconcile(self, device_ids).await {
            tracing::error!(error = %e, ?why, "reconciling profiles failed");
        }
    }

    async fn group_deleted(&self, name: &str, actor: &str) {
        match self.store.remove_group_assignments(name).await {
            Ok(profiles) => {
                for identifier in profiles {
                    let detail = serde_json::json!({"groups": [name], "group_deleted": true});
                    if let Err(e) = self
                        .audit(actor, "profile.unassign", &identifier, detail)
                        .await
                    {
                        tracing::error!(error = %e, "auditing an unassignment failed");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, group = name, "dropping a deleted group's assignments failed")
            }
        }
        // Its Parallels Desktop activation went with the group's row; the profile that carried
        // it goes from the catalog too.
        if let Err(e) = self.deliver_parallels_activation(name, actor).await {
            tracing::error!(error = %e, group = name, "deleting a deleted group's activation profile failed");
        }
    }

    fn wants_results_of(&self, request_type: &str) -> bool {
        matches!(
            request_type,
            "InstallProfile" | "RemoveProfile" | "ProfileList"
        )
    }

    async fn command_result(&self, result: &CommandResultEvent) {
        if let Err(e) = self.reconciler.on_result(self, result).await {
            tracing::error!(
                error = %e,
                enrollment_id = %result.enrollment_id,
                command_uuid = %result.command_uuid,
                "handling a profile command result failed"
            );
        }
    }
}

/// The periodic part of `russet serve`: every `interval`, retries whose backoff passed and
/// drifts to send again, and a ProfileList from channels not verified within `verify_every`.
pub fn spawn_sweeper(
    profiles: Arc<ProfileService>,
    interval: Duration,
    verify_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
            if let Err(e) = profiles
                .reconciler
                .sweep(profiles.as_ref(), verify_every)
                .await
            {
                tracing::error!(error = %e, "profile sweep failed");
            }
        }
    })
}

/// Where a profile stands on every Mac channel that has (or had) it.
#[derive(Debug, Clone)]
pub struct ProfileStatus {
    pub identifier: String,
    pub states: Vec<crate::store::profile_states::ProfileStateRow>,
}

impl ProfileService {
    /// `profile status`: the profile's state on each channel (deleted profiles too: their
    /// removals are tracked).
    pub async fn status(&self, identifier: &str) -> ProfileResult<ProfileStatus> {
        if self.store.profile(identifier).await?.is_none() {
            return Err(super::ProfileError::NotFound(format!(
                "no profile {identifier}"
            )));
        }
        Ok(ProfileStatus {
            identifier: identifier.to_string(),
            states: self.store.profile_states_of(identifier).await?,
        })
    }

    /// The profiles Russet manages on one device (UDID or serial), with their states.
    pub async fn device_profiles(
        &self,
        device: &str,
    ) -> ProfileResult<Vec<crate::store::profile_states::ProfileStateRow>> {
        let targets = self.device_targets(&[device.to_string()], &[]).await?;
        let udids: Vec<String> = targets.into_iter().map(|t| t.name).collect();
        Ok(self.store.profile_states_of_devices(&udids).await?)
    }

    /// `profile verify`: ask the channels of these devices (UDIDs or serials) and of this
    /// group's members for their ProfileList now; drift found is repaired on the answer.
    pub async fn verify(&self, devices: &[String], group: Option<&str>) -> ProfileResult<usize> {
        let mut targets = self.device_targets(devices, &[]).await?;
        if let Some(g) = group {
            if self.store.group(g).await?.is_none() {
                return Err(super::ProfileError::NotFound(format!("no group {g}")));
            }
            targets.push(Target::group(g));
        }
        if targets.is_empty() {
            return Err(super::ProfileError::BadRequest(
                "name devices or a group".into(),
            ));
        }
        let udids = self.devices_of(&targets).await?;
        Ok(self.reconciler.verify_known_channels(&udids).await?)
    }
}
