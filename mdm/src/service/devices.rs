//! What the admin sees and does about devices: the list, one device with everything known
//! about it, its command history, and forgetting it.

use super::enrollment::SETTING_PLACEHOLDER_TOPIC;
use super::{MdmService, ServiceError};
use crate::store::dep::DepDeviceRecord;
use crate::store::{
    AdeEnrollment, AuditEntry, DeviceFilter, DeviceView, EscrowedPin, PinFilter, QueueEntryView,
};
use crate::timefmt::now_ms;
use serde_json::json;

/// Identities expiring within this many days are reported (device view, start-up log,
/// `GET /api/v1/identities/expiring` by default).
pub const EXPIRY_WARNING_DAYS: i64 = 30;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// One device with what Russet knows about it beyond its row.
#[derive(Debug, Clone)]
pub struct DeviceDetails {
    pub device: DeviceView,
    /// Escrowed lock/wipe PINs (still sealed: the view shows their commands' state only).
    pub pins: Vec<EscrowedPin>,
    /// Its DEP record, when Apple lists its serial number for one of Russet's links.
    pub dep: Option<DepDeviceRecord>,
    /// How it came through Setup Assistant, when it enrolled by ADE.
    pub ade: Option<AdeEnrollment>,
    /// The groups it is in, static and smart, by name.
    pub groups: Vec<String>,
    /// The identity certificate expires within [`EXPIRY_WARNING_DAYS`].
    pub identity_expires_soon: bool,
    /// It enrolled with the placeholder push topic, and still no push certificate exists: it
    /// cannot be woken and must re-enroll once one is imported.
    pub on_placeholder_topic: bool,
    /// Where each configuration profile Russet manages stands on its channels.
    pub profiles: Vec<crate::store::profile_states::ProfileStateRow>,
    /// FileVault: on/off, the recovery key escrowed (when, verified), rotations.
    pub filevault: super::filevault::FileVaultStatus,
    /// Recovery Lock: what the last SecurityInfo said (`IsRecoveryLockEnabled`), and the
    /// newest escrowed change (its password stays sealed: revealed only by the audited path).
    pub recovery_lock_enabled: Option<bool>,
    pub recovery_lock: Option<crate::store::recovery_lock::EscrowedRecoveryLock>,
}

/// A page of devices.
#[derive(Debug, Clone)]
pub struct DevicePage {
    pub devices: Vec<DeviceView>,
    /// Pass as the next request's cursor; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A device as a list shows it: its row, whether FileVault is on (SecurityInfo), and the
/// groups it is in.
#[derive(Debug, Clone)]
pub struct DeviceListRow {
    pub device: DeviceView,
    pub filevault: Option<bool>,
    pub groups: Vec<String>,
}

impl MdmService {
    /// A page of devices with their FileVault state and groups, read in bulk (a few queries
    /// per page, none per row): the console's device list.
    pub async fn device_rows(
        &self,
        devices: Vec<DeviceView>,
    ) -> Result<Vec<DeviceListRow>, ServiceError> {
        let ids: Vec<String> = devices.iter().map(|d| d.udid.clone()).collect();
        let facts: std::collections::HashMap<String, Option<bool>> = self
            .store
            .device_facts_of_many(&ids)
            .await?
            .into_iter()
            .map(|f| (f.udid, f.filevault_enabled))
            .collect();
        let mut groups = self.groups_of_devices(&ids).await?;
        Ok(devices
            .into_iter()
            .map(|device| DeviceListRow {
                filevault: facts.get(&device.udid).copied().flatten(),
                groups: groups
                    .remove(&device.udid)
                    .map(|g| g.into_iter().collect())
                    .unwrap_or_default(),
                device,
            })
            .collect())
    }

    /// The UDID of a device named by UDID or serial number (every verb that takes devices
    /// accepts either); `None` when Russet knows neither. A serial that several device rows
    /// share (a Mac seen under two UDIDs) is a bad request asking for the UDID.
    pub async fn udid_of(&self, name: &str) -> Result<Option<String>, ServiceError> {
        let name = name.trim();
        if let Some(d) = self.store.device(name).await? {
            return Ok(Some(d.udid));
        }
        let by_serial = self
            .store
            .list_devices(&DeviceFilter {
                serial: Some(name.to_string()),
                limit: 2,
                ..DeviceFilter::default()
            })
            .await?;
        match by_serial.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.udid.clone())),
            [a, b, ..] => Err(ServiceError::BadRequest(format!(
                "serial {name} names more than one device ({}, {}): give the UDID",
                a.udid, b.udid
            ))),
        }
    }

    /// Devices matching the filter, and the filter expression when one is given (see
    /// [`Self::search_devices`]), a page at a time (at most 1000).
    pub async fn list_devices(
        &self,
        mut filter: DeviceFilter,
        expr: Option<&str>,
    ) -> Result<DevicePage, ServiceError> {
        if let Some(expr) = expr.filter(|e| !e.trim().is_empty()) {
            return self.search_devices(filter, expr).await;
        }
        filter.limit = filter.limit.clamp(1, 1000);
        let devices = self.store.list_devices(&filter).await?;
        let next_cursor = if devices.len() as u32 == filter.limit {
            devices.last().map(|d| d.udid.clone())
        } else {
            None
        };
        Ok(DevicePage {
            devices,
            next_cursor,
        })
    }

    pub async fn device(&self, udid: &str) -> Result<DeviceView, ServiceError> {
        self.store
            .device(udid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {udid}")))
    }

    pub async fn device_details(&self, udid: &str) -> Result<DeviceDetails, ServiceError> {
        let device = self.device(udid).await?;
        let pins = self.store.escrowed_pins(&PinFilter::udid(udid)).await?;
        let dep = match &device.serial_number {
            Some(serial) => self.store.dep_device(serial).await?,
            None => None,
        };
        let ade = self.store.ade_enrollment(udid).await?;
        let groups = self.groups_of_device(udid).await?;
        let identity_expires_soon = device
            .identity_not_after
            .is_some_and(|t| t < now_ms().saturating_add(EXPIRY_WARNING_DAYS * DAY_MS));
        let on_placeholder_topic = match &device.topic {
            Some(topic) if self.store.active_push_certificate().await?.is_none() => {
                self.store
                    .setting(SETTING_PLACEHOLDER_TOPIC)
                    .await?
                    .as_ref()
                    == Some(topic)
            }
            _ => false,
        };
        let profiles = self
            .store
            .profile_states_of_devices(std::slice::from_ref(&device.udid))
            .await?;
        let filevault = self.filevault_status(&device.udid).await?;
        let recovery_lock_enabled = self
            .store
            .inventory(&device.udid)
            .await?
            .and_then(|i| i.recovery_lock_enabled);
        let recovery_lock = self
            .store
            .recovery_lock_passwords(&PinFilter::udid(&device.udid))
            .await?
            .into_iter()
            .next();
        Ok(DeviceDetails {
            filevault,
            recovery_lock_enabled,
            recovery_lock,
            device,
            pins,
            dep,
            ade,
            groups,
            identity_expires_soon,
            on_placeholder_topic,
            profiles,
        })
    }

    /// The queue and history of a device and its user channels, newest first.
    pub async fn device_commands(&self, udid: &str) -> Result<Vec<QueueEntryView>, ServiceError> {
        self.device(udid).await?;
        Ok(self.store.device_commands(udid, 500).await?)
    }

    /// Forget a device (escrowed secrets stay) and its cached identity bindings; audited.
    pub async fn delete_device(&self, udid: &str, actor: &str) -> Result<(), ServiceError> {
        if !self.store.delete_device(udid).await? {
            return Err(ServiceError::NotFound(format!("no device {udid}")));
        }
        if let Ok(mut map) = self.bindings.write() {
            map.retain(|_, d| **d != *udid);
        }
        self.audit(actor, "device.delete", udid, json!({})).await
    }

    /// Devices whose identity certificate expires within `days` (0 to 3650).
    pub async fn expiring_identities(
        &self,
        days: i64,
    ) -> Result<Vec<crate::store::ExpiringIdentity>, ServiceError> {
        let before = now_ms().saturating_add(days.clamp(0, 3650) * DAY_MS);
        Ok(self.store.expiring_identities(before).await?)
    }

    /// The audit log, newest first, `limit` (1 to 1000) entries with `id < before`.
    pub async fn audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, ServiceError> {
        Ok(self.store.audit_list(limit.clamp(1, 1000), before).await?)
    }

    /// The database answers (`/healthz`).
    pub async fn ping(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }
}
