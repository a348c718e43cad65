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

/// A Mac's DDM channel (the device view's `ddm`); `null` when it never spoke DDM.
pub fn device_ddm(d: Option<&super::DeviceDdm>) -> Value {
    let Some(d) = d else { return Value::Null };
    let c = &d.channel;
    let parse = |t: &Option<String>| -> Value {
        t.as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null)
    };
    json!({
        "declarations_token": (!c.token.is_empty()).then_some(&c.token),
        "token_at": (!c.token.is_empty()).then(|| rfc3339(c.token_at)),
        "fetched_token": c.served_token,
        "fetched_at": c.served_at.map(rfc3339),
        "reported_at": c.reported_at.map(rfc3339),
        "errors": parse(&c.errors),
        "declarations": d.declarations.iter().map(|s| json!({
            "identifier": s.identifier,
            "kind": s.kind,
            "server_token": s.server_token,
            "valid": s.valid,
            "active": s.active,
            "reasons": parse(&s.reasons),
        })).collect::<Vec<_>>(),
    })
}

/// An uploaded declaration, as the admin API shows it.
pub fn uploaded_declaration(r: &crate::store::ddm::DdmDeclarationRecord) -> Value {
    let payload: Value = serde_json::from_str(&r.payload).unwrap_or(Value::Null);
    let server_token = super::declarations::uploaded(r).map(|d| d.server_token);
    json!({
        "identifier": r.identifier,
        "group": r.group_name,
        "kind": r.kind,
        "type": r.declaration_type,
        "payload": payload,
        "server_token": server_token,
        "created_at": rfc3339(r.created_at),
        "created_by": r.created_by,
    })
}
