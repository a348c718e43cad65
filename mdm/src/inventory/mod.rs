//! Inventory (issue 13): what every Mac is, runs and holds, collected through MDM —
//! `DeviceInformation` with every macOS query of Apple's schema, `SecurityInfo`,
//! `InstalledApplicationList`, `CertificateList` and `UserList` — right after enrollment, then
//! every `--inventory-interval-secs` (each Mac at its own offset, so Macs enrolled together do
//! not answer together), and on demand for devices or a group.
//!
//! Apple's answers are decoded by `crate::protocol::inventory`; storage is
//! `store/inventory.rs` (`InventoryStore`); routes `http/inventory.rs`; verbs
//! `cli/inventory.rs`; JSON shapes `views.rs` here. The service hears the core as a
//! [`crate::service::DeviceObserver`] (`observe.rs`): an enrollment queues the commands, their
//! answers are stored. A NotNow is the core's to re-send.

mod observe;
pub mod views;

pub use observe::spawn_sweeper;

use crate::protocol::Command;
use crate::protocol::inventory::MACOS_DEVICE_QUERIES;
use crate::service::{MdmService, ServiceError};
use crate::store::inventory::{InventoryChangeRow, InventoryRow, UserChannelRow};
use crate::store::{DeviceView, PRIORITY_INVENTORY, Store};
use crate::timefmt::now_ms;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::{
    INVENTORY_INTERVAL_DEFAULT_SECS as DEFAULT_INTERVAL_SECS,
    INVENTORY_INTERVAL_MIN_SECS as MIN_INTERVAL_SECS,
};
/// Macs read (and asked) per page of the sweep, and per enqueue: memory stays flat whatever
/// the fleet's size.
pub const PAGE: u32 = 1_000;
/// Most Macs one sweep asks; the next sweep (a minute later) goes on. With the per-Mac offset
/// this caps the answers arriving in a minute whatever happened before (a fleet enrolled in
/// an hour, a server down for a day).
pub const MAX_PER_SWEEP: usize = 5_000;
/// A Mac asked or heard from this recently is not asked again when it enrolls (a user
/// channel's TokenUpdate follows the device's within seconds).
const RECENT_MS: i64 = 10 * 60 * 1000;
/// Change-log entries shown with a Mac's inventory.
const CHANGES_SHOWN: u32 = 50;

#[derive(Debug, Clone)]
pub struct InventorySettings {
    /// How often each Mac is asked again.
    pub interval: Duration,
    /// Collect on enrollment and periodically (`--inventory`); off, only an admin's refresh
    /// asks.
    pub collect: bool,
}

impl Default for InventorySettings {
    fn default() -> Self {
        InventorySettings {
            interval: Duration::from_secs(DEFAULT_INTERVAL_SECS),
            collect: true,
        }
    }
}

pub struct InventoryService {
    store: Arc<dyn Store>,
    /// The core: where the inventory commands are queued, and group memberships.
    service: Arc<MdmService>,
    settings: InventorySettings,
}

/// One Mac's inventory as the admin API shows it.
#[derive(Debug, Clone)]
pub struct DeviceInventory {
    pub device: DeviceView,
    pub row: Option<InventoryRow>,
    pub user_channels: Vec<UserChannelRow>,
    pub changes: Vec<InventoryChangeRow>,
    /// Where each configuration profile Russet manages stands on the Mac's channels (the
    /// reconciler's states, verified by the Mac's own ProfileList).
    pub profiles: Vec<crate::store::profile_states::ProfileStateRow>,
    /// Russet holds a bootstrap token escrowed by this Mac.
    pub bootstrap_token_escrowed: bool,
    pub now: i64,
}

/// What a refresh asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// Device-channel IDs the commands were queued for.
    pub queued: Vec<String>,
    /// Named (or in the group) but not enrolled now: nothing queued.
    pub not_enrolled: Vec<String>,
}

impl InventoryService {
    pub fn new(
        store: Arc<dyn Store>,
        service: Arc<MdmService>,
        settings: InventorySettings,
    ) -> Self {
        InventoryService {
            store,
            service,
            settings,
        }
    }

    pub fn settings(&self) -> &InventorySettings {
        &self.settings
    }

    /// When a Mac heard from (or asked) at `now` is due next: the interval, less an eighth,
    /// plus an offset up to a quarter that is fixed per UDID — on average the interval, and
    /// 100,000 Macs enrolled in one minute come back spread over six hours of a day.
    pub fn next_due(&self, device_id: &str, now: i64) -> i64 {
        next_due_at(self.settings.interval, device_id, now)
    }

    /// The five inventory commands, each with its own CommandUUID.
    fn commands() -> Result<Vec<Command>, ServiceError> {
        Ok(vec![
            Command::device_information(MACOS_DEVICE_QUERIES.iter().copied())?,
            Command::security_info()?,
            Command::installed_application_list(None, None)?,
            Command::certificate_list()?,
            Command::user_list()?,
        ])
    }

    /// Queue the inventory commands for these Macs (device-channel IDs), a page at a time,
    /// and mark them asked. Returns the Macs they were queued for (known and enrolled).
    pub async fn request(&self, device_ids: &[String]) -> Result<Vec<String>, ServiceError> {
        let mut queued = Vec::new();
        for page in device_ids.chunks(PAGE as usize) {
            let mut reached: Option<Vec<String>> = None;
            for command in Self::commands()? {
                let results = self
                    .service
                    .enqueue_internal(&command, page, PRIORITY_INVENTORY, false)
                    .await?;
                reached.get_or_insert_with(|| {
                    results
                        .into_iter()
                        .filter(|r| r.queued)
                        .map(|r| r.enrollment_id)
                        .collect()
                });
            }
            let reached = reached.unwrap_or_default();
            let now = now_ms();
            let due: Vec<(String, i64)> = reached
                .iter()
                .map(|d| (d.clone(), self.next_due(d, now)))
                .collect();
            self.store.mark_inventory_requested(&due, now).await?;
            queued.extend(reached);
        }
        Ok(queued)
    }

    /// One periodic pass: the Macs due, a page at a time, at most [`MAX_PER_SWEEP`]. Returns
    /// how many were asked.
    pub async fn sweep(&self) -> Result<usize, ServiceError> {
        let now = now_ms();
        let mut after = String::new();
        let mut asked = 0;
        while asked < MAX_PER_SWEEP {
            let limit = PAGE.min(u32::try_from(MAX_PER_SWEEP - asked).unwrap_or(PAGE));
            let page = self
                .store
                .devices_due_for_inventory(now, &after, limit)
                .await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            asked += self.request(&page).await?.len();
            after = last;
            if page.len() < limit as usize {
                break;
            }
        }
        Ok(asked)
    }

    /// After an enrollment: ask, unless the Mac was asked or answered within minutes.
    async fn after_enrollment(&self, device_ids: &[String]) -> Result<(), ServiceError> {
        let now = now_ms();
        let mut ask = Vec::new();
        for id in device_ids {
            let recent = self.store.inventory(id).await?.is_some_and(|r| {
                r.requested_at.is_some_and(|t| now - t < RECENT_MS)
                    || r.updated_at > now - RECENT_MS && r.device_info_at.is_some()
            });
            if !recent {
                ask.push(id.clone());
            }
        }
        if !ask.is_empty() {
            self.request(&ask).await?;
        }
        Ok(())
    }

    /// A device named by UDID or serial number: its UDID.
    async fn resolve(&self, name: &str) -> Result<Option<String>, ServiceError> {
        self.service.udid_of(name).await
    }

    /// `inventory refresh`: queue the inventory commands now for the devices named (UDIDs or
    /// serial numbers) and the members of a group. Audited.
    pub async fn refresh(
        &self,
        devices: &[String],
        group: Option<&str>,
        actor: &str,
    ) -> Result<RefreshOutcome, ServiceError> {
        if devices.is_empty() && group.is_none() {
            return Err(ServiceError::BadRequest(
                "name devices (UDID or serial number) or a group".into(),
            ));
        }
        let mut udids = BTreeSet::new();
        let mut unknown = Vec::new();
        for name in devices {
            match self.resolve(name).await? {
                Some(u) => {
                    udids.insert(u);
                }
                None => unknown.push(name.trim().to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "no device with the UDID or serial number {}",
                unknown.join(", ")
            )));
        }
        if let Some(g) = group {
            udids.extend(self.service.group_devices(g).await?);
        }
        let udids: Vec<String> = udids.into_iter().collect();
        let queued = self.request(&udids).await?;
        let not_enrolled = udids
            .iter()
            .filter(|u| !queued.contains(u))
            .cloned()
            .collect();
        crate::service::audit::record(
            self.store.as_ref(),
            actor,
            "inventory.refresh",
            group.unwrap_or(""),
            serde_json::json!({"devices": devices, "group": group, "queued": queued.len()}),
        )
        .await?;
        Ok(RefreshOutcome {
            queued,
            not_enrolled,
        })
    }

    /// One Mac's inventory (UDID or serial number).
    pub async fn device_inventory(&self, name: &str) -> Result<DeviceInventory, ServiceError> {
        let udid = self
            .resolve(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {}", name.trim())))?;
        let device = self.service.device(&udid).await?;
        Ok(DeviceInventory {
            row: self.store.inventory(&udid).await?,
            user_channels: self.store.user_channels(&udid).await?,
            changes: self.store.inventory_changes(&udid, CHANGES_SHOWN).await?,
            profiles: self
                .store
                .profile_states_of_devices(std::slice::from_ref(&udid))
                .await?,
            bootstrap_token_escrowed: self.store.bootstrap_token(&udid).await?.is_some(),
            device,
            now: now_ms(),
        })
    }
}

impl InventoryService {
    /// A Mac's installed applications, by name.
    pub async fn apps(
        &self,
        udid: &str,
    ) -> Result<Vec<crate::store::inventory::AppRow>, ServiceError> {
        Ok(self.store.inventory_apps(udid).await?)
    }
}

/// See [`InventoryService::next_due`].
pub fn next_due_at(interval: Duration, device_id: &str, now: i64) -> i64 {
    let interval = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX / 4);
    let spread = (interval / 4).max(1);
    let offset = i64::try_from(fnv1a(device_id.as_bytes()) % spread.unsigned_abs()).unwrap_or(0);
    now.saturating_add(interval - interval / 8 + offset)
}

/// FNV-1a, 64 bits: a per-Mac offset that is the same on every node and every start.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
