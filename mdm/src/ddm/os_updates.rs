//! OS updates (contract v2, "Software updates (Declarative Device Management)"): per group, a
//! target macOS version (and build) to install by a local deadline, delivered as Apple's
//! `com.apple.configuration.softwareupdate.enforcement.specific` through the DDM channel.
//! Create and delete are audited (`os_update.create`, `os_update.delete`); each converges the
//! group's Macs before the admin gets the answer (their DeclarativeManagement is queued).
//!
//! Where a Mac stands is read from what it reported (its status items, the declaration's
//! `valid` state) and, for its OS version, inventory: [`device_state`].

use super::DdmService;
use super::declarations::OS_UPDATE_PREFIX;
use super::os_update_input;
use crate::filter::compare_versions;
use crate::service::ServiceError;
use crate::store::DeviceView;
use crate::store::ddm::{DeclarationStateRow, InsertOsUpdate, NewOsUpdate, OsUpdateRecord};
use crate::timefmt::now_ms;
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

/// Where a Mac stands with an OS update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpdateState {
    /// Told, nothing reported yet (or `softwareupdate.install-state` `none`).
    Pending,
    Downloading,
    /// `installing`, or `prepared` (downloaded and ready to install).
    Installing,
    /// Its OS version is the target or later.
    UpToDate,
    /// `failed`, a `softwareupdate.failure-reason`, or the declaration reported invalid.
    Failed,
    /// Older than macOS 14, which does not support the declaration (Apple's schema:
    /// `introduced: '14.0'`).
    Unsupported,
}

impl UpdateState {
    pub const ALL: [UpdateState; 6] = [
        UpdateState::Pending,
        UpdateState::Downloading,
        UpdateState::Installing,
        UpdateState::UpToDate,
        UpdateState::Failed,
        UpdateState::Unsupported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Pending => "pending",
            UpdateState::Downloading => "downloading",
            UpdateState::Installing => "installing",
            UpdateState::UpToDate => "up_to_date",
            UpdateState::Failed => "failed",
            UpdateState::Unsupported => "unsupported",
        }
    }
}

/// What a Mac said that matters to an OS update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MacReport {
    /// DDM's `device.operating-system.version`, else inventory's.
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    /// `softwareupdate.install-state`.
    pub install_state: Option<String>,
    /// `softwareupdate.pending-version`: `{os-version, build-version}`.
    pub pending_version: Option<Value>,
    /// `softwareupdate.failure-reason`: `{count, reason, timestamp}`.
    pub failure_reason: Option<Value>,
    /// The declaration's `valid` and `reasons`, when reported.
    pub declaration_valid: Option<String>,
    pub declaration_reasons: Option<Value>,
}

/// A Mac's state with `update`, and why (Apple's reason, for `failed` and `unsupported`).
pub fn device_state(update: &OsUpdateRecord, mac: &MacReport) -> (UpdateState, Option<String>) {
    if let Some(v) = &mac.os_version {
        let reached = match compare_versions(v, &update.target_os_version) {
            Ordering::Greater => true,
            Ordering::Equal => match (&update.target_build_version, &mac.build_version) {
                (Some(target), Some(build)) => compare_versions(build, target) != Ordering::Less,
                _ => true,
            },
            Ordering::Less => false,
        };
        if reached {
            return (UpdateState::UpToDate, None);
        }
        if compare_versions(v, "14") == Ordering::Less {
            return (
                UpdateState::Unsupported,
                Some(format!(
                    "macOS {v} does not support enforced updates (Declarative Device \
                     Management needs macOS 14 or later)"
                )),
            );
        }
    }
    if mac.declaration_valid.as_deref() == Some("invalid") {
        let why = mac
            .declaration_reasons
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "the Mac found the declaration invalid".into());
        return (UpdateState::Failed, Some(why));
    }
    let failure = mac
        .failure_reason
        .as_ref()
        .and_then(|f| f.get("reason"))
        .and_then(Value::as_str)
        .map(str::to_string);
    match mac.install_state.as_deref() {
        Some("downloading") => (UpdateState::Downloading, None),
        Some("installing") | Some("prepared") => (UpdateState::Installing, None),
        Some("failed") => (
            UpdateState::Failed,
            Some(failure.unwrap_or_else(|| "the Mac reported a failed install".into())),
        ),
        _ if failure.is_some() => (UpdateState::Failed, failure),
        _ => (UpdateState::Pending, None),
    }
}

/// An OS update with where each of its group's Macs stands.
#[derive(Debug, Clone)]
pub struct OsUpdateStatus {
    pub record: OsUpdateRecord,
    pub devices: Vec<DeviceOsUpdate>,
}

impl OsUpdateStatus {
    /// Macs per state (every state named, zero included).
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out: BTreeMap<&'static str, usize> =
            UpdateState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for d in &self.devices {
            *out.entry(d.state.as_str()).or_default() += 1;
        }
        out
    }
}

/// One Mac's state with one OS update.
#[derive(Debug, Clone)]
pub struct DeviceOsUpdate {
    pub udid: String,
    pub update: OsUpdateRecord,
    pub state: UpdateState,
    pub reason: Option<String>,
    pub report: MacReport,
}

impl DdmService {
    /// `POST /api/v1/os-updates`: checked, stored, audited; the group's Macs are told now.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_os_update(
        &self,
        group: &str,
        target_os_version: &str,
        target_build_version: Option<&str>,
        deadline: &str,
        details_url: Option<&str>,
        actor: &str,
    ) -> Result<OsUpdateRecord, ServiceError> {
        let input = os_update_input::check(
            target_os_version,
            target_build_version,
            deadline,
            details_url,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let now = now_ms();
        let id = match self
            .store
            .insert_os_update(&NewOsUpdate {
                group_name: group,
                target_os_version: &input.target_os_version,
                target_build_version: input.target_build_version.as_deref(),
                deadline: &input.deadline,
                details_url: input.details_url.as_deref(),
                now,
                by: actor,
            })
            .await?
        {
            InsertOsUpdate::Inserted(id) => id,
            InsertOsUpdate::NoGroup => {
                return Err(ServiceError::NotFound(format!("group: no group {group}")));
            }
            InsertOsUpdate::Taken(id) => {
                return Err(ServiceError::Conflict(format!(
                    "group: {group} already has OS update {id}; delete it first"
                )));
            }
        };
        let record = OsUpdateRecord {
            id,
            group_name: group.to_string(),
            target_os_version: input.target_os_version,
            target_build_version: input.target_build_version,
            deadline: input.deadline,
            details_url: input.details_url,
            created_at: now,
            created_by: actor.to_string(),
        };
        self.service_audit(actor, "os_update.create", &record)
            .await?;
        let members = self.service.group_devices(group).await?;
        self.resync(&members, false).await?;
        Ok(record)
    }

    /// `DELETE /api/v1/os-updates/{id}`: audited; the group's Macs are told now.
    pub async fn delete_os_update(
        &self,
        id: i64,
        actor: &str,
    ) -> Result<OsUpdateRecord, ServiceError> {
        let record = self
            .store
            .delete_os_update(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no OS update {id}")))?;
        self.service_audit(actor, "os_update.delete", &record)
            .await?;
        match self.service.group_devices(&record.group_name).await {
            Ok(members) => {
                self.resync(&members, false).await?;
            }
            Err(ServiceError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(record)
    }

    async fn service_audit(
        &self,
        actor: &str,
        action: &str,
        r: &OsUpdateRecord,
    ) -> Result<(), ServiceError> {
        let detail = json!({
            "group": r.group_name,
            "target_os_version": r.target_os_version,
            "target_build_version": r.target_build_version,
            "deadline": r.deadline,
            "details_url": r.details_url,
        });
        Ok(crate::service::audit::record(
            self.store.as_ref(),
            actor,
            action,
            &r.id.to_string(),
            detail,
        )
        .await?)
    }

    /// `GET /api/v1/os-updates`: every OS update with its group's Macs and their states.
    pub async fn os_updates(&self) -> Result<Vec<OsUpdateStatus>, ServiceError> {
        let updates = self.store.os_updates().await?;
        let mut members: Vec<(OsUpdateRecord, Vec<String>)> = Vec::new();
        for u in updates {
            let udids = match self.service.group_devices(&u.group_name).await {
                Ok(m) => m,
                Err(ServiceError::NotFound(_)) => Vec::new(),
                Err(e) => return Err(e),
            };
            members.push((u, udids));
        }
        let mut all: Vec<String> = members.iter().flat_map(|(_, m)| m.clone()).collect();
        all.sort();
        all.dedup();
        let reports = self.reports(&all).await?;
        Ok(members
            .into_iter()
            .map(|(u, udids)| OsUpdateStatus {
                devices: udids
                    .iter()
                    .filter_map(|udid| reports.get(udid).map(|r| state_of(udid, &u, r)))
                    .collect(),
                record: u,
            })
            .collect())
    }

    /// The OS updates that apply to one Mac (through its groups), with its state in each.
    pub async fn device_os_updates(
        &self,
        device: &DeviceView,
        groups: &[String],
    ) -> Result<Vec<DeviceOsUpdate>, ServiceError> {
        let updates: Vec<OsUpdateRecord> = self
            .store
            .os_updates()
            .await?
            .into_iter()
            .filter(|u| groups.contains(&u.group_name))
            .collect();
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let one = [device.udid.clone()];
        let reports = self
            .reports_with(&one, std::slice::from_ref(device))
            .await?;
        let Some(report) = reports.get(&device.udid) else {
            return Ok(Vec::new());
        };
        Ok(updates
            .iter()
            .map(|u| state_of(&device.udid, u, report))
            .collect())
    }

    async fn reports(&self, udids: &[String]) -> Result<HashMap<String, Reported>, ServiceError> {
        let devices = self.store.devices_by_ids(udids).await?;
        self.reports_with(udids, &devices).await
    }

    /// What each of these Macs said: inventory's OS version, its status items and the states
    /// of its declarations (three queries per 500 Macs).
    async fn reports_with(
        &self,
        udids: &[String],
        devices: &[DeviceView],
    ) -> Result<HashMap<String, Reported>, ServiceError> {
        let mut out: HashMap<String, Reported> = devices
            .iter()
            .map(|d| {
                (
                    d.udid.clone(),
                    Reported {
                        inventory_os: d.os_version.clone(),
                        inventory_build: d.build_version.clone(),
                        ..Reported::default()
                    },
                )
            })
            .collect();
        for row in self.store.ddm_status_items(udids).await? {
            if let (Some(r), Ok(v)) = (
                out.get_mut(&row.device_id),
                serde_json::from_str::<Value>(&row.value),
            ) {
                r.items.insert(row.item, v);
            }
        }
        for row in self.store.ddm_declaration_states(udids).await? {
            if let Some(r) = out.get_mut(&row.device_id) {
                r.declarations.insert(row.identifier.clone(), row);
            }
        }
        Ok(out)
    }
}

/// A Mac's stored reports, as read.
#[derive(Debug, Default)]
struct Reported {
    inventory_os: Option<String>,
    inventory_build: Option<String>,
    items: HashMap<String, Value>,
    declarations: HashMap<String, DeclarationStateRow>,
}

fn state_of(udid: &str, u: &OsUpdateRecord, r: &Reported) -> DeviceOsUpdate {
    let text = |item: &str| {
        r.items
            .get(item)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let declaration = r.declarations.get(&format!("{OS_UPDATE_PREFIX}{}", u.id));
    let reported_os = text("device.operating-system.version");
    let report = MacReport {
        build_version: if reported_os.is_some() {
            text("device.operating-system.build-version")
        } else {
            r.inventory_build.clone()
        },
        os_version: reported_os.or_else(|| r.inventory_os.clone()),
        install_state: text("softwareupdate.install-state"),
        pending_version: r.items.get("softwareupdate.pending-version").cloned(),
        failure_reason: r.items.get("softwareupdate.failure-reason").cloned(),
        declaration_valid: declaration.map(|d| d.valid.clone()),
        declaration_reasons: declaration
            .and_then(|d| d.reasons.as_deref())
            .and_then(|t| serde_json::from_str(t).ok()),
    };
    let (state, reason) = device_state(u, &report);
    DeviceOsUpdate {
        udid: udid.to_string(),
        update: u.clone(),
        state,
        reason,
        report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(version: &str, build: Option<&str>) -> OsUpdateRecord {
        OsUpdateRecord {
            id: 1,
            group_name: "g".into(),
            target_os_version: version.into(),
            target_build_version: build.map(str::to_string),
            deadline: "2026-12-20T18:00:00".into(),
            details_url: None,
            created_at: 0,
            created_by: "a".into(),
        }
    }

    fn mac(os: &str, install_state: Option<&str>) -> MacReport {
        MacReport {
            os_version: Some(os.into()),
            install_state: install_state.map(str::to_string),
            ..MacReport::default()
        }
    }

    #[test]
    fn states_follow_what_the_mac_reports() {
        let u = update("15.2", None);
        let state = |m: &MacReport| device_state(&u, m).0;
        assert_eq!(state(&MacReport::default()), UpdateState::Pending);
        assert_eq!(state(&mac("15.1", None)), UpdateState::Pending);
        assert_eq!(state(&mac("15.1", Some("none"))), UpdateState::Pending);
        assert_eq!(
            state(&mac("15.1", Some("downloading"))),
            UpdateState::Downloading
        );
        assert_eq!(
            state(&mac("15.1", Some("prepared"))),
            UpdateState::Installing
        );
        assert_eq!(
            state(&mac("15.1", Some("installing"))),
            UpdateState::Installing
        );
        assert_eq!(state(&mac("15.2", Some("none"))), UpdateState::UpToDate);
        assert_eq!(state(&mac("15.10", None)), UpdateState::UpToDate);
        assert_eq!(state(&mac("13.6.1", None)), UpdateState::Unsupported);
        let mut failed = mac("15.1", Some("failed"));
        failed.failure_reason = Some(json!({"count": 2, "reason": "Not enough free space"}));
        assert_eq!(
            device_state(&u, &failed),
            (UpdateState::Failed, Some("Not enough free space".into()))
        );
        let mut invalid = mac("15.1", None);
        invalid.declaration_valid = Some("invalid".into());
        assert_eq!(state(&invalid), UpdateState::Failed);
    }

    #[test]
    fn a_target_build_counts_on_the_target_version() {
        let u = update("15.2", Some("24C101"));
        let mut m = mac("15.2", None);
        m.build_version = Some("24C100".into());
        assert_eq!(device_state(&u, &m).0, UpdateState::Pending);
        m.build_version = Some("24C101".into());
        assert_eq!(device_state(&u, &m).0, UpdateState::UpToDate);
        assert_eq!(
            device_state(&u, &mac("15.3", None)).0,
            UpdateState::UpToDate
        );
    }
}
