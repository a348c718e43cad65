//! The audit log, written by the services that make the decisions (never by a handler): who
//! did what to which device, command, link or certificate, and who saw which secret.

use crate::store::{AuditRecord, Store, StoreResult};
use crate::timefmt::now_ms;

/// Append one entry: `actor` is the admin token's name, `action` a dotted verb
/// (`device.lock`, `pin.reveal`, `dep.sync`, …), `target` what it was done to.
pub async fn record(
    store: &dyn Store,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> StoreResult<()> {
    store
        .audit_append(&AuditRecord {
            at: now_ms(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
        })
        .await
}
