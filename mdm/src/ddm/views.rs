//! JSON shapes of OS updates (`GET /api/v1/os-updates`, the device view's `os_updates`).

use super::os_updates::{DeviceOsUpdate, OsUpdateStatus};
use crate::store::ddm::OsUpdateRecord;
use crate::timefmt::rfc3339;
use serde_json::{Value, json};

pub fn os_update(r: &OsUpdateRecord) -> Value {
    json!({
        "id": r.id,
        "group": r.group_name,
        "target_os_version": r.target_os_version,
        "target_build_version": r.target_build_version,
        "deadline": r.deadline,
        "details_url": r.details_url,
        "declaration": format!("{}{}", super::declarations::OS_UPDATE_PREFIX, r.id),
        "created_at": rfc3339(r.created_at),
        "created_by": r.created_by,
    })
}

/// An OS update with its Macs' states and the count per state.
pub fn os_update_status(s: &OsUpdateStatus) -> Value {
    let mut v = os_update(&s.record);
    v["counts"] = json!(s.counts());
    v["devices"] = s
        .devices
        .iter()
        .map(|d| json!({"udid": d.udid, "state": d.state.as_str(), "reason": d.reason}))
        .collect();
    v
}

/// One Mac's state with an OS update (the device view).
pub fn device_os_update(d: &DeviceOsUpdate) -> Value {
    json!({
        "id": d.update.id,
        "group": d.update.group_name,
        "target_os_version": d.update.target_os_version,
        "target_build_version": d.update.target_build_version,
        "deadline": d.update.deadline,
        "state": d.state.as_str(),
        "reason": d.reason,
        "os_version": d.report.os_version,
        "build_version": d.report.build_version,
        "install_state": d.report.install_state,
        "pending_version": d.report.pending_version,
        "failure_reason": d.report.failure_reason,
        "declaration_valid": d.report.declaration_valid,
    })
}
