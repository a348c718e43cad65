//! The DDM channel: the core's [`DeclarativeChannel`] (what a Mac's `DeclarativeManagement`
//! check-ins get) and its [`DeviceObserver`] (a Mac whose set changed is sent the
//! `DeclarativeManagement` command with its new `SyncTokens`, so it syncs without waiting).
//!
//! A Mac's set is computed when asked, from the OS updates of the groups it is in; its token
//! is stored only to know when it changed (and since when: the `Timestamp`). Nothing here runs
//! on a plain `Idle` or `Acknowledged`: the core calls the channel on DDM check-ins only, and
//! the observer on enrollments, membership changes and new facts.

use super::DdmService;
use super::declarations::{DeclarationSet, Kind, os_update_configuration, sync_tokens, uploaded};
use super::status;
use crate::protocol::Command;
use crate::protocol::Enrollment;
use crate::service::{
    CheckinResponse, DeclarativeChannel, DeviceChange, DeviceObserver, ServiceError,
};
use crate::store::PRIORITY_PROFILES;
use crate::store::ddm::{DdmDeviceRow, DeclarationStateRow, StatusRecord};
use crate::timefmt::{now_ms, rfc3339};
use std::collections::{BTreeMap, BTreeSet, HashMap};

impl DdmService {
    /// The declaration set of each of these devices (an empty set for a device in no group
    /// with something assigned).
    pub(super) async fn sets_of(
        &self,
        udids: &[String],
    ) -> Result<HashMap<String, DeclarationSet>, ServiceError> {
        let updates = self.store.os_updates().await?;
        let raw = self.store.ddm_declarations().await?;
        let mut out: HashMap<String, DeclarationSet> = udids
            .iter()
            .map(|u| (u.clone(), DeclarationSet::default()))
            .collect();
        if updates.is_empty() && raw.is_empty() {
            return Ok(out);
        }
        let groups: BTreeSet<String> = updates
            .iter()
            .map(|u| u.group_name.clone())
            .chain(raw.iter().map(|r| r.group_name.clone()))
            .collect();
        let memberships = self.service.memberships(udids, &groups).await?;
        for (udid, set) in out.iter_mut() {
            let Some(mine) = memberships.get(udid) else {
                continue;
            };
            let declarations = updates
                .iter()
                .filter(|u| mine.contains(&u.group_name))
                .map(os_update_configuration)
                .chain(
                    raw.iter()
                        .filter(|r| mine.contains(&r.group_name))
                        .filter_map(uploaded),
                )
                .collect();
            *set = DeclarationSet::of(declarations);
        }
        Ok(out)
    }

    /// One Mac's set, its token stored (with now as its time) if it changed: the set and the
    /// token's time.
    async fn current(&self, udid: &str) -> Result<(DeclarationSet, i64), ServiceError> {
        let one = [udid.to_string()];
        let set = self.sets_of(&one).await?.remove(udid).unwrap_or_default();
        let token = set.token();
        let row = self.store.ddm_devices(&one).await?.into_iter().next();
        match row {
            Some(r) if r.token == token => Ok((set, r.token_at)),
            _ => {
                let now = now_ms();
                self.store
                    .set_ddm_tokens(&[(udid.to_string(), token)], now)
                    .await?;
                Ok((set, now))
            }
        }
    }

    /// Compare these Macs' sets with their stored tokens; store the new tokens and queue the
    /// `DeclarativeManagement` command (with `SyncTokens`) to every Mac whose set changed —
    /// one command per distinct token. `enrolled`: a Mac that (re-)enrolled since it last
    /// fetched its declarations is told again (an erased Mac forgot them). How many Macs
    /// were told.
    pub async fn resync(&self, udids: &[String], enrolled: bool) -> Result<usize, ServiceError> {
        if udids.is_empty() {
            return Ok(0);
        }
        let sets = self.sets_of(udids).await?;
        // An enrollment changes no set: a Mac with nothing to get has nothing to be told.
        if enrolled && sets.values().all(DeclarationSet::is_empty) {
            return Ok(0);
        }
        let rows: HashMap<String, _> = self
            .store
            .ddm_devices(udids)
            .await?
            .into_iter()
            .map(|r| (r.device_id.clone(), r))
            .collect();
        let authenticated: HashMap<String, Option<i64>> = if enrolled {
            self.store
                .devices_by_ids(udids)
                .await?
                .into_iter()
                .map(|d| (d.udid, d.authenticated_at))
                .collect()
        } else {
            HashMap::new()
        };
        let now = now_ms();
        let mut changed = Vec::new();
        // (token, its time) → Macs to tell.
        let mut tell: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
        for udid in udids {
            let Some(set) = sets.get(udid) else { continue };
            let token = set.token();
            match rows.get(udid) {
                Some(r) if r.token == token => {
                    let since_auth = authenticated.get(udid).copied().flatten();
                    let forgot = enrolled
                        && !set.is_empty()
                        && match (r.served_at, since_auth) {
                            (None, _) => true,
                            (Some(served), Some(auth)) => auth > served,
                            (Some(_), None) => false,
                        };
                    if forgot {
                        tell.entry((token, r.token_at))
                            .or_default()
                            .push(udid.clone());
                    }
                }
                // Never had a set, and still none: nothing to say.
                None if set.is_empty() => {}
                _ => {
                    changed.push((udid.clone(), token.clone()));
                    tell.entry((token, now)).or_default().push(udid.clone());
                }
            }
        }
        self.store.set_ddm_tokens(&changed, now).await?;
        let mut told = 0;
        for ((token, at), macs) in tell {
            let data = sync_tokens(&token, &rfc3339(at)).to_string().into_bytes();
            let command = Command::declarative_management(Some(data))?;
            self.service
                .enqueue_internal(&command, &macs, PRIORITY_PROFILES, false)
                .await?;
            told += macs.len();
        }
        Ok(told)
    }

    /// Whether an OS update or a declaration is assigned to a smart group (new facts may then
    /// change sets).
    async fn facts_matter(&self) -> Result<bool, ServiceError> {
        let mut groups: BTreeSet<String> = self
            .store
            .os_updates()
            .await?
            .into_iter()
            .map(|u| u.group_name)
            .collect();
        groups.extend(
            self.store
                .ddm_declarations()
                .await?
                .into_iter()
                .map(|r| r.group_name),
        );
        if groups.is_empty() {
            return Ok(false);
        }
        let smart = self.store.smart_groups().await?;
        Ok(smart.iter().any(|g| groups.contains(&g.name)))
    }

    /// A status report: read (bounded), then merged into what is stored.
    async fn status_report(&self, udid: &str, data: Option<&[u8]>) -> Result<(), ServiceError> {
        let data = data.ok_or_else(|| {
            ServiceError::BadRequest("a status report needs Data (the JSON report)".into())
        })?;
        let report = status::parse(data).map_err(ServiceError::BadRequest)?;
        let now = now_ms();
        let record = StatusRecord {
            device_id: udid.to_string(),
            full: report.full,
            items: report
                .items
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            errors: serde_json::Value::Array(report.errors).to_string(),
            declarations: report
                .declarations
                .into_iter()
                .map(|d| DeclarationStateRow {
                    device_id: udid.to_string(),
                    identifier: d.identifier,
                    kind: d.kind,
                    server_token: d.server_token,
                    valid: d.valid,
                    active: d.active,
                    reasons: d.reasons.map(|r| r.to_string()),
                    updated_at: now,
                })
                .collect(),
            now,
        };
        self.store.store_ddm_status(&record).await?;
        Ok(())
    }
}

/// A Mac's DDM channel as stored: its token, what it fetched, its last report's errors and
/// how it took each declaration (the device view's `ddm`).
#[derive(Debug, Clone)]
pub struct DeviceDdm {
    pub channel: DdmDeviceRow,
    pub declarations: Vec<DeclarationStateRow>,
}

impl DdmService {
    /// `None` for a Mac that never spoke DDM.
    pub async fn device_ddm(&self, udid: &str) -> Result<Option<DeviceDdm>, ServiceError> {
        let one = [udid.to_string()];
        let Some(channel) = self.store.ddm_devices(&one).await?.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(DeviceDdm {
            channel,
            declarations: self.store.ddm_declaration_states(&one).await?,
        }))
    }
}

fn json(v: serde_json::Value) -> CheckinResponse {
    CheckinResponse::Json(v.to_string().into_bytes())
}

#[async_trait::async_trait]
impl DeclarativeChannel for DdmService {
    async fn answer(
        &self,
        enrollment: &Enrollment,
        endpoint: &str,
        data: Option<&[u8]>,
    ) -> Result<CheckinResponse, ServiceError> {
        // Russet declares for the device channel only; a user channel has an empty set.
        let udid = &enrollment.device_id;
        let device_channel = enrollment.id == enrollment.device_id;
        if endpoint == "status" {
            if device_channel {
                self.status_report(udid, data).await?;
            }
            return Ok(CheckinResponse::Empty);
        }
        let (set, at) = if device_channel {
            self.current(udid).await?
        } else {
            (DeclarationSet::default(), 0)
        };
        match endpoint {
            "tokens" => Ok(json(sync_tokens(&set.token(), &rfc3339(at)))),
            "declaration-items" => {
                if device_channel {
                    self.store.ddm_served(udid, &set.token(), now_ms()).await?;
                }
                Ok(json(set.items()))
            }
            other => {
                let not_found = || ServiceError::NotFound(format!("no {other} for this device"));
                let (kind, identifier) = other
                    .strip_prefix("declaration/")
                    .and_then(|rest| rest.split_once('/'))
                    .ok_or_else(not_found)?;
                let kind = Kind::from_path(kind).ok_or_else(not_found)?;
                let found = set.find(kind, identifier).ok_or_else(not_found)?;
                Ok(json(found.to_json()))
            }
        }
    }
}

#[async_trait::async_trait]
impl DeviceObserver for DdmService {
    async fn devices_changed(&self, device_ids: &[String], why: DeviceChange) {
        if why == DeviceChange::Facts {
            match self.facts_matter().await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(error = %e, "reading OS updates on smart groups failed");
                    return;
                }
            }
        }
        if let Err(e) = self.resync(device_ids, why == DeviceChange::Enrolled).await {
            tracing::error!(error = %e, ?why, "resyncing DDM declarations failed");
        }
    }
}
