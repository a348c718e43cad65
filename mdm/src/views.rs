//! JSON shapes of store records for the admin API and the CLI: times as RFC 3339.

use crate::protocol::convert::plist_to_json;
use crate::service::CommandDetails;
use crate::service::devices::{DeviceDetails, EXPIRY_WARNING_DAYS};
use crate::service::enrollment::PLACEHOLDER_TOPIC_WARNING;
use crate::service::golden_images::{GoldenImage, GroupsChange};
use crate::service::groups::{GroupDetails, GroupInfo, MembershipChange};
use crate::store::{AuditEntry, CancelOutcome, DeviceView, QueueEntryView};
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

/// One device with everything known about it: the device view plus its lock/wipe history,
/// DEP record, ADE enrollment, identity expiry and warnings.
pub fn device_details(d: &DeviceDetails) -> Value {
    let mut view = device(&d.device);
    let mut warnings = Vec::new();
    if d.identity_expires_soon {
        warnings.push(Value::String(format!(
            "the identity certificate expires within {EXPIRY_WARNING_DAYS} days: the Mac renews \
             it by SCEP, or reinstall the enrollment profile"
        )));
    }
    if d.on_placeholder_topic {
        warnings.push(Value::String(PLACEHOLDER_TOPIC_WARNING.into()));
    }
    if let Value::Object(map) = &mut view {
        map.insert("lock_wipe".into(), lock_wipe(&d.pins));
        map.insert(
            "dep".into(),
            d.dep
                .as_ref()
                .map_or(Value::Null, crate::dep::views::device),
        );
        map.insert(
            "ade".into(),
            d.ade.as_ref().map_or(Value::Null, ade_enrollment),
        );
        map.insert("groups".into(), json!(d.groups));
        map.insert("filevault".into(), filevault_status(&d.filevault));
        map.insert(
            "recovery_lock".into(),
            json!({
                "enabled": d.recovery_lock_enabled,
                "latest": d.recovery_lock.as_ref().map(|r| json!({
                    "command_uuid": r.command_uuid,
                    "kind": r.kind.as_str(),
                    "state": r.state.as_str(),
                    "issued_by": r.issued_by,
                    "created_at": rfc3339(r.created_at),
                    "settled_at": rfc3339_opt(r.settled_at),
                    "failure": r.failure,
                })),
            }),
        );
        map.insert(
            "identity_expires_within_30_days".into(),
            Value::Bool(d.identity_expires_soon),
        );
        map.insert("warnings".into(), Value::Array(warnings));
        map.insert(
            "profiles".into(),
            Value::Array(
                d.profiles
                    .iter()
                    .map(crate::profiles::views::state)
                    .collect(),
            ),
        );
    }
    view
}

/// A group: `kind` static or smart, how many members.
pub fn group(g: &GroupInfo) -> Value {
    let r = &g.record;
    json!({
        "name": r.name,
        "description": r.description,
        "filter": r.filter,
        "kind": g.kind().as_str(),
        "member_count": g.member_count,
        "created_at": rfc3339(r.created_at),
        "updated_at": rfc3339(r.updated_at),
    })
}

/// A group with its members; a static member that names no device yet (a serial known only
/// from DEP, a UDID not seen) is `"pending": true`.
pub fn group_details(d: &GroupDetails) -> Value {
    let mut view = group(&d.info);
    let members: Vec<Value> = d
        .members
        .iter()
        .map(|m| {
            json!({
                "udid": m.udid,
                "serial": m.serial,
                "device_name": m.device_name,
                "pending": m.pending,
            })
        })
        .collect();
    view["members"] = Value::Array(members);
    view
}

/// What an add (`added`, `unchanged`: already members) or a remove (`removed`,
/// `not_members`) did, with the group as it is now.
pub fn group_membership(c: &MembershipChange, added: bool) -> Value {
    let (changed, unchanged) = if added {
        ("added", "unchanged")
    } else {
        ("removed", "not_members")
    };
    json!({
        changed: c.changed,
        unchanged: c.unchanged,
        "group": group_details(&c.details),
    })
}

/// A queue entry with the device's last report for it, as JSON.
pub fn queue_entry_with_result(e: &QueueEntryView) -> Value {
    let mut v = queue_entry(e);
    if let Some(raw) = &e.result
        && let Value::Object(map) = &mut v
    {
        let result = plist::Value::from_reader_xml(raw.as_slice())
            .map(|p| plist_to_json(&p))
            .unwrap_or(Value::Null);
        map.insert("result".into(), result);
    }
    v
}

/// A command with its payload and its state on each device.
pub fn command_details(c: &CommandDetails) -> Value {
    let devices: Vec<Value> = c.view.entries.iter().map(queue_entry_with_result).collect();
    json!({
        "command_uuid": c.view.command_uuid,
        "request_type": c.view.request_type,
        "created_at": rfc3339(c.view.created_at),
        "command": c.command.as_ref().map_or(Value::Null, plist_to_json),
        "devices": devices,
    })
}

/// What a cancel did: where it was canceled, and where it came too late.
pub fn cancel_outcome(o: &CancelOutcome) -> Value {
    let delivered: Vec<Value> = o
        .already_delivered
        .iter()
        .map(|(id, at)| json!({"enrollment_id": id, "delivered_at": at.map(rfc3339)}))
        .collect();
    json!({"canceled": o.canceled, "already_delivered": delivered})
}

/// Revealed unlock PINs (the reveal was audited by the service).
pub fn revealed_pins(pins: &[crate::service::lockwipe::RevealedPin]) -> Value {
    let pins: Vec<Value> = pins
        .iter()
        .map(|p| {
            let r = &p.record;
            json!({
                "pin": secrecy::ExposeSecret::expose_secret(&p.pin),
                "command_uuid": r.command_uuid,
                "request_type": r.request_type,
                "udid": r.device_id,
                "serial_number": r.serial_number,
                "issued_by": r.issued_by,
                "created_at": rfc3339(r.created_at),
                "status": r.status,
                "delivered_at": rfc3339_opt(r.delivered_at),
                "result_at": rfc3339_opt(r.result_at),
            })
        })
        .collect();
    json!({"pins": pins})
}

pub fn audit_log(entries: &[AuditEntry]) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "at": rfc3339(e.record.at), "actor": e.record.actor,
                "action": e.record.action, "target": e.record.target,
                "address": e.record.address, "detail": e.record.detail,
            })
        })
        .collect();
    json!({"entries": entries})
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

/// The columns of a device report (`GET /api/v1/devices?format=csv`, `russet devices list
/// --csv`), in order.
pub const DEVICE_REPORT_COLUMNS: &[&str] = &[
    "udid",
    "serial_number",
    "device_name",
    "model",
    "model_name",
    "os_version",
    "build_version",
    "enrolled",
    "last_seen_at",
    "apple_silicon",
    "supervised",
    "activation_lock",
    "filevault",
    "sip",
    "firewall",
    "secure_boot",
    "recovery_lock",
    "dep_profile",
];

/// A device report as CSV (RFC 4180, a header row first). What Macs report (device names
/// above all) is text a spreadsheet must not run: a cell starting with `=`, `+`, `-`, `@`,
/// tab or carriage return gets a leading `'` (OWASP, "CSV Injection").
pub fn devices_csv(rows: &[crate::store::groups::DeviceFactsRow]) -> Result<Vec<u8>, csv::Error> {
    fn cell(v: Option<&str>) -> String {
        match v {
            Some(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
            Some(s) => s.to_owned(),
            None => String::new(),
        }
    }
    fn flag(v: Option<bool>) -> String {
        v.map(|b| b.to_string()).unwrap_or_default()
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(DEVICE_REPORT_COLUMNS)?;
    for r in rows {
        w.write_record([
            cell(Some(&r.udid)),
            cell(r.serial_number.as_deref()),
            cell(r.device_name.as_deref()),
            cell(r.model.as_deref()),
            cell(r.model_name.as_deref()),
            cell(r.os_version.as_deref()),
            cell(r.build_version.as_deref()),
            r.enrolled.to_string(),
            rfc3339_opt(r.last_seen_at).unwrap_or_default(),
            flag(r.is_apple_silicon),
            flag(r.is_supervised),
            flag(r.activation_lock_enabled),
            flag(r.filevault_enabled),
            flag(r.sip_enabled),
            flag(r.firewall_enabled),
            cell(r.secure_boot_level.as_deref()),
            flag(r.recovery_lock_enabled),
            cell(r.dep_profile.as_deref()),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// An admin account (never a token: those are shown once, when made).
pub fn admin(a: &crate::store::AdminRecord) -> Value {
    json!({
        "name": a.name,
        "role": a.role,
        "active": a.revoked_at.is_none(),
        "tokens": a.tokens,
        "created_at": rfc3339(a.created_at),
        "created_by": a.created_by,
        "revoked_at": rfc3339_opt(a.revoked_at),
        "revoked_by": a.revoked_by,
    })
}

/// A kept FileVault key without its secret.
fn filevault_key(r: &crate::store::filevault::FileVaultKeyRecord) -> Value {
    json!({
        "id": r.id,
        "udid": r.device_id,
        "serial_number": r.serial_number,
        "state": r.state,
        "source": r.source,
        "command_uuid": r.command_uuid,
        "received_at": rfc3339(r.received_at),
        "last_reported_at": rfc3339(r.last_reported_at),
        "verified_at": rfc3339_opt(r.verified_at),
        "superseded_at": rfc3339_opt(r.superseded_at),
    })
}

/// Revealed FileVault personal recovery keys, newest first (`key` is null for one that never
/// opened: its envelope is kept as received).
pub fn revealed_filevault_keys(keys: &[crate::service::filevault::RevealedKey]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut v = filevault_key(&k.record);
            v["key"] = json!(k.key.as_ref().map(secrecy::ExposeSecret::expose_secret));
            v
        })
        .collect();
    json!({"keys": keys})
}

/// A Mac's FileVault state (no secret).
pub fn filevault_status(s: &crate::service::filevault::FileVaultStatus) -> Value {
    let rotations: Vec<Value> = s
        .rotations
        .iter()
        .map(|r| {
            json!({
                "command_uuid": r.command_uuid, "state": r.state, "error": r.error,
                "requested_by": r.requested_by, "created_at": rfc3339(r.created_at),
                "finished_at": rfc3339_opt(r.finished_at),
            })
        })
        .collect();
    json!({
        "enabled": s.enabled,
        "collected_at": rfc3339_opt(s.collected_at),
        "institutional_key": s.institutional_key,
        "escrowed": s.current_key.is_some(),
        "current_key": s.current_key.as_ref().map(filevault_key),
        "keys_kept": s.keys_kept,
        "undecryptable": s.undecryptable,
        "rotations": rotations,
    })
}

/// What `filevault enforce` did.
pub fn filevault_enforced(e: &crate::profiles::filevault::Enforced) -> Value {
    json!({
        "profile": crate::protocol::filevault::FILEVAULT_PROFILE,
        "version": e.uploaded.version,
        "new_version": e.uploaded.created,
        "assigned_groups": e.assigned.assignments.iter()
            .filter(|a| a.target.kind == crate::store::profiles::TargetKind::Group)
            .map(|a| a.target.name.clone()).collect::<Vec<_>>(),
        "notes": e.notes,
    })
}

/// A golden image: an architecture without an image is `null`.
pub fn golden_image(g: &GoldenImage) -> Value {
    let r = &g.record;
    let arch = |url: &Option<String>, sha256: &Option<String>| match (url, sha256) {
        (Some(url), Some(sha256)) => json!({"url": url, "sha256": sha256}),
        _ => Value::Null,
    };
    json!({
        "name": r.name,
        "description": r.description,
        "apple_silicon": arch(&r.apple_silicon_url, &r.apple_silicon_sha256),
        "intel": arch(&r.intel_url, &r.intel_sha256),
        "groups": g.groups,
        "created_at": rfc3339(r.created_at),
        "created_by": r.created_by,
        "updated_at": rfc3339(r.updated_at),
        "updated_by": r.updated_by,
    })
}

/// What a golden image assign (`added`, `unchanged`) or unassign (`removed`, `not_assigned`)
/// did, with the image as it is now.
pub fn golden_image_groups(c: &GroupsChange, assigned: bool) -> Value {
    let (changed, unchanged) = if assigned {
        ("added", "unchanged")
    } else {
        ("removed", "not_assigned")
    };
    json!({
        changed: c.changed,
        unchanged: c.unchanged,
        "golden_image": golden_image(&c.image),
    })
}

/// `golden_image` of a device's details: which image applies and why (its group), the Mac's
/// architecture as inventory says (`null` until it does), and where the image's profile stands
/// (`state` `null`: nothing planned, as while the architecture is unknown).
pub fn device_golden_image(g: Option<&crate::profiles::golden_images::DeviceGoldenImage>) -> Value {
    match g {
        None => Value::Null,
        Some(g) => json!({
            "name": g.name,
            "group": g.group,
            "architecture": g.architecture,
            "profile": g.profile,
            "state": g.state,
        }),
    }
}

/// A group's Parallels Desktop activation: never the license key, only its last four
/// characters (`license_key_hint`).
pub fn parallels_activation(
    a: &crate::service::parallels_activation::ParallelsActivation,
) -> Value {
    json!({
        "group": a.group,
        "experience": a.experience.key(),
        "activation_experience": a.experience.as_str(),
        "license_key_hint": a.hint,
        "sso_texts": a.sso_texts,
        "profile": crate::profiles::parallels_activation::profile_identifier(&a.group),
        "created_at": rfc3339(a.created_at),
        "created_by": a.created_by,
        "updated_at": rfc3339(a.updated_at),
        "updated_by": a.updated_by,
    })
}

/// `parallels_activation` of a device's details: which activation applies and why (its
/// group), and where its profile stands.
pub fn device_parallels_activation(
    a: Option<&crate::profiles::parallels_activation::DeviceActivation>,
) -> Value {
    match a {
        None => Value::Null,
        Some(a) => json!({
            "experience": a.experience,
            "group": a.group,
            "profile": a.profile,
            "state": a.state,
        }),
    }
}
