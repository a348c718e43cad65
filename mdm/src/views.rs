//! JSON shapes of store records for the admin API and the CLI: times as RFC 3339.

use crate::store::{DeviceView, QueueEntryView};
use crate::timefmt::{rfc3339, rfc3339_opt};
use serde_json::{Value, json};

pub fn device(d: &DeviceView) -> Value {
    let users: Vec<Value> = d
        .user_channels
        .iter()
        .map(|u| {
            json!({
                "enrollment_id": u.enrollment_id,
                "user_id": u.user_id,
                "user_short_name": u.user_short_name,
                "user_long_name": u.user_long_name,
                "enrolled": u.enrolled,
                "last_seen_at": rfc3339_opt(u.last_seen_at),
            })
        })
        .collect();
    json!({
        "udid": d.udid,
        "enrollment_type": d.enrollment_type,
        "serial_number": d.serial_number,
        "model": d.model,
        "model_name": d.model_name,
        "device_name": d.device_name,
        "os_version": d.os_version,
        "build_version": d.build_version,
        "product_name": d.product_name,
        "enrolled": d.enrolled,
        "awaiting_configuration": d.awaiting_configuration,
        "push": {
            "topic": d.topic,
            "token": d.push_token,
            "has_push_magic": d.has_push_magic,
            "token_update_count": d.token_update_count,
            "last_token_update_at": rfc3339_opt(d.last_token_update_at),
            "last_push_at": rfc3339_opt(d.last_push_at),
            "last_push_result": d.last_push_result,
            "blocked": d.push_blocked,
        },
        "identity": {
            "certificate_sha256": d.identity_cert_sha256,
            "not_after": rfc3339_opt(d.identity_not_after),
        },
        "pin_facts": pin_facts(d),
        "authenticated_at": rfc3339_opt(d.authenticated_at),
        "last_seen_at": rfc3339_opt(d.last_seen_at),
        "checked_out_at": rfc3339_opt(d.checked_out_at),
        "created_at": rfc3339_opt(Some(d.created_at)),
        "updated_at": rfc3339_opt(Some(d.updated_at)),
        "user_channels": users,
    })
}

pub fn queue_entry(e: &QueueEntryView) -> Value {
    json!({
        "command_uuid": e.command_uuid,
        "enrollment_id": e.enrollment_id,
        "request_type": e.request_type,
        "status": e.status,
        "priority": e.priority,
        "enqueued_at": rfc3339_opt(Some(e.enqueued_at)),
        "delivered_at": rfc3339_opt(e.delivered_at),
        "delivery_count": e.delivery_count,
        "not_now_count": e.not_now_count,
        "first_not_now_at": rfc3339_opt(e.first_not_now_at),
        "result_at": rfc3339_opt(e.result_at),
        "canceled_at": rfc3339_opt(e.canceled_at),
    })
}

/// What the Mac reported about lock/wipe PINs (DeviceInformation), `null` until reported.
pub fn pin_facts(d: &DeviceView) -> Value {
    json!({
        "PINRequiredForDeviceLock": d.pin_required_for_lock,
        "PINRequiredForEraseDevice": d.pin_required_for_erase,
        "IsAppleSilicon": d.is_apple_silicon,
    })
}

/// Lock/wipe history of a device without the PINs themselves (those are revealed, audited,
/// only through the unlock-pins endpoint).
pub fn lock_wipe(pins: &[crate::store::EscrowedPin]) -> Value {
    let latest = |rt: &str| {
        pins.iter().find(|p| p.request_type == rt).map(|p| {
            json!({
                "command_uuid": p.command_uuid,
                "status": p.status,
                "issued_by": p.issued_by,
                "created_at": rfc3339_opt(Some(p.created_at)),
                "delivered_at": rfc3339_opt(p.delivered_at),
                "result_at": rfc3339_opt(p.result_at),
            })
        })
    };
    json!({"lock": latest("DeviceLock"), "wipe": latest("EraseDevice")})
}

/// How the Mac came through Setup Assistant (`POST /mdm/enroll`), and whether its setup
/// commands were queued.
pub fn ade_enrollment(a: &crate::store::AdeEnrollment) -> Value {
    json!({
        "dep_profile_uuid": a.profile_uuid,
        "requested_at": rfc3339(a.requested_at),
        "os_version": a.os_version,
        "build_version": a.build_version,
        "product": a.product,
        "setup_queued_at": rfc3339_opt(a.setup_queued_at),
    })
}
