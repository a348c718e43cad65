//! JSON shapes of inventory for the admin API and the CLI: each part with when it was
//! collected and how long ago (`"age": "3 h ago"`), so stale facts look stale.

use super::{DeviceInventory, RefreshOutcome};
use crate::store::inventory::{AppRow, InventoryChangeRow, InventoryRow};
use crate::timefmt::{ago, rfc3339, rfc3339_opt};
use serde_json::{Value, json};

fn collected(now: i64, at: Option<i64>) -> Value {
    json!({
        "collected_at": rfc3339_opt(at),
        "age": at.map(|t| ago(now, t)),
    })
}

/// Merge `extra` into the object `base`.
fn with(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

fn answer(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// One Mac's inventory. `full` adds each part's whole answer and the application list.
pub fn device_inventory(inv: &DeviceInventory, apps: Option<&[AppRow]>, full: bool) -> Value {
    let now = inv.now;
    let d = &inv.device;
    let empty = InventoryRow::default();
    let r = inv.row.as_ref().unwrap_or(&empty);
    let last = [
        r.device_info_at,
        r.security_at,
        r.apps_at,
        r.certificates_at,
        r.users_at,
    ]
    .into_iter()
    .flatten()
    .max();
    // The console user: the newest enabled user channel (its TokenUpdate's names).
    let console = inv
        .user_channels
        .iter()
        .find(|u| u.enabled)
        .map(|u| json!({"short_name": u.user_short_name, "long_name": u.user_long_name}));
    let logged_in: Vec<&str> = r
        .logged_in_users
        .as_deref()
        .map(|l| l.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let mut v = json!({
        "udid": d.udid,
        "serial_number": r.serial_number.clone().or_else(|| d.serial_number.clone()),
        "enrolled": d.enrolled,
        "collected_at": rfc3339_opt(last),
        "age": last.map(|t| ago(now, t)),
        "requested_at": rfc3339_opt(r.requested_at),
        "next_due_at": rfc3339_opt(r.next_due_at),
        "hardware": with(json!({
            "model": r.model.clone().or_else(|| d.model.clone()),
            "model_name": r.model_name.clone().or_else(|| d.model_name.clone()),
            "product_name": r.product_name,
            "device_name": r.device_name.clone().or_else(|| d.device_name.clone()),
            "apple_silicon": r.is_apple_silicon,
            "capacity_gb": r.capacity_gb,
            "available_gb": r.available_gb,
            "battery_level": r.battery_level,
            "wifi_mac": r.wifi_mac,
            "bluetooth_mac": r.bluetooth_mac,
            "ethernet_mac": r.ethernet_mac,
        }), collected(now, r.device_info_at)),
        "os": with(json!({
            "version": r.os_version.clone().or_else(|| d.os_version.clone()),
            "build": r.build_version.clone().or_else(|| d.build_version.clone()),
            "supplemental_build": r.supplemental_build_version,
            "supervised": r.is_supervised,
            "activation_lock": r.activation_lock_enabled,
        }), collected(now, r.device_info_at)),
        "security": with(json!({
            "filevault": r.filevault_enabled,
            "sip": r.sip_enabled,
            "firewall": r.firewall_enabled,
            "secure_boot": r.secure_boot_level,
            "recovery_lock": r.recovery_lock_enabled,
            "bootstrap_token_allowed": r.bootstrap_token_allowed,
            "bootstrap_token_escrowed": inv.bootstrap_token_escrowed,
        }), collected(now, r.security_at)),
        "users": with(json!({
            "console_user": console,
            "logged_in": logged_in,
            "count": r.user_count,
        }), collected(now, r.users_at)),
        "apps": with(json!({"count": r.app_count}), collected(now, r.apps_at)),
        "certificates": with(
            json!({"count": r.certificate_count}),
            collected(now, r.certificates_at),
        ),
        "profiles": inv.profiles.iter().map(|p| json!({
            "identifier": p.identifier,
            "enrollment_id": p.enrollment_id,
            "state": p.state,
            "version": p.version,
            "verified_at": rfc3339_opt(p.verified_at),
        })).collect::<Vec<_>>(),
        "changes": inv.changes.iter().map(change).collect::<Vec<_>>(),
    });
    if full && let Value::Object(o) = &mut v {
        o.insert(
            "answers".into(),
            json!({
                "DeviceInformation": answer(r.device_info_json.as_deref()),
                "SecurityInfo": answer(r.security_json.as_deref()),
                "CertificateList": answer(r.certificates_json.as_deref()),
                "UserList": answer(r.users_json.as_deref()),
            }),
        );
    }
    if let (Some(apps), Value::Object(o)) = (apps, &mut v) {
        o.insert("app_list".into(), apps.iter().map(app).collect());
    }
    v
}

pub fn app(a: &AppRow) -> Value {
    json!({
        "bundle_id": a.bundle_id,
        "name": a.name,
        "short_version": a.short_version,
        "version": a.version,
        "bundle_size": a.bundle_size,
    })
}

pub fn change(c: &InventoryChangeRow) -> Value {
    json!({
        "field": c.field,
        "old": c.old_value,
        "new": c.new_value,
        "serial_number": c.serial_number,
        "changed_at": rfc3339(c.changed_at),
    })
}

pub fn refresh(o: &RefreshOutcome) -> Value {
    json!({"queued": o.queued, "not_enrolled": o.not_enrolled})
}
