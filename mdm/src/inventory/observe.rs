//! How inventory hears the core: an enrollment queues the inventory commands, an answer to one
//! of them is decoded and stored; a periodic sweep asks the Macs that are due.

use super::InventoryService;
use crate::protocol::ProtocolError;
use crate::protocol::inventory::{self, INVENTORY_REQUEST_TYPES};
use crate::service::{CommandResultEvent, DeviceChange, DeviceObserver, ServiceError};
use crate::store::ResultStatus;
use crate::store::inventory::{InventoryPart, InventoryUpdate};
use crate::timefmt::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the sweep looks for Macs that are due.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl InventoryService {
    /// An answer, decoded into the part it is. `None` for a request type inventory does not
    /// keep.
    fn decode(request_type: &str, raw: &[u8]) -> Result<Option<InventoryPart>, ProtocolError> {
        let json = |v: &serde_json::Value| v.to_string();
        Ok(Some(match request_type {
            "DeviceInformation" => {
                let a = inventory::decode_device_information(raw)?;
                InventoryPart::DeviceInformation {
                    facts: Box::new(a.facts),
                    json: a.answer,
                }
            }
            "SecurityInfo" => {
                let a = inventory::decode_security_info(raw)?;
                InventoryPart::Security {
                    facts: a.facts,
                    json: json(&a.answer),
                }
            }
            "InstalledApplicationList" => {
                let a = inventory::decode_applications(raw)?;
                InventoryPart::Applications {
                    apps: a.facts,
                    json: json(&a.answer),
                }
            }
            "CertificateList" => {
                let a = inventory::decode_certificates(raw)?;
                InventoryPart::Certificates {
                    count: a.facts.len() as i64,
                    json: json(&a.answer),
                }
            }
            "UserList" => {
                let a = inventory::decode_user_list(raw)?;
                InventoryPart::Users {
                    count: a.facts.users.len() as i64,
                    logged_in: a
                        .facts
                        .users
                        .iter()
                        .filter(|u| u.is_logged_in)
                        .map(|u| u.short_name.clone())
                        .collect(),
                    json: json(&a.answer),
                }
            }
            _ => return Ok(None),
        }))
    }

    /// Store an answer. A malformed one is logged and ignored (the Mac is asked again when it
    /// is next due); only the store failing is an error.
    pub(super) async fn record(&self, result: &CommandResultEvent) -> Result<(), ServiceError> {
        // The device channel speaks for the Mac; an answer on a user channel (an admin's
        // command) describes that user's view and is not the Mac's inventory.
        if result.status != ResultStatus::Acknowledged || result.enrollment_id != result.device_id {
            return Ok(());
        }
        let part = match Self::decode(&result.request_type, &result.raw) {
            Ok(Some(part)) => part,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(
                    device_id = %result.device_id,
                    command_uuid = %result.command_uuid,
                    request_type = %result.request_type,
                    error = %e,
                    "inventory answer ignored: it does not read as Apple's schema says"
                );
                return Ok(());
            }
        };
        let now = now_ms();
        let changes = self
            .store
            .save_inventory(&InventoryUpdate {
                device_id: result.device_id.clone(),
                part,
                now,
                next_due_at: self.next_due(&result.device_id, now),
            })
            .await?;
        for c in changes {
            tracing::info!(
                device_id = %c.device_id,
                field = %c.field,
                old = c.old_value.as_deref().unwrap_or(""),
                new = c.new_value.as_deref().unwrap_or(""),
                "inventory change"
            );
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl DeviceObserver for InventoryService {
    async fn devices_changed(&self, device_ids: &[String], why: DeviceChange) {
        if why != DeviceChange::Enrolled || !self.settings.collect {
            return;
        }
        if let Err(e) = self.after_enrollment(device_ids).await {
            tracing::error!(error = %e, "queuing inventory after an enrollment failed");
        }
    }

    fn wants_results_of(&self, request_type: &str) -> bool {
        INVENTORY_REQUEST_TYPES.contains(&request_type)
    }

    fn stores_facts_from(&self, request_type: &str) -> bool {
        // DeviceInformation's facts land on the device row in the core already, but
        // `supervised` and `activation_lock` are read from inventory's row. No filter reads
        // certificates.
        request_type != "CertificateList" && INVENTORY_REQUEST_TYPES.contains(&request_type)
    }

    async fn command_result(&self, result: &CommandResultEvent) {
        if let Err(e) = self.record(result).await {
            tracing::error!(
                error = %e,
                device_id = %result.device_id,
                request_type = %result.request_type,
                "storing an inventory answer failed"
            );
        }
    }
}

/// The periodic part of `russet serve`: every [`SWEEP_EVERY`], the Macs that are due (none
/// when collection is off).
pub fn spawn_sweeper(
    inventory: Arc<InventoryService>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
            if !inventory.settings.collect {
                continue;
            }
            match inventory.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(asked = n, "inventory sweep"),
                Err(e) => tracing::error!(error = %e, "inventory sweep failed"),
            }
        }
    })
}
