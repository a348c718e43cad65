//! JSON shapes of configuration profiles for the admin API and the CLI. Never the profile's
//! content: it may hold passwords.

use super::assignments::split;
use super::{AssignOutcome, ProfileDetail, Uploaded};
use crate::store::profiles::{
    ProfileAssignment, ProfileRecord, ProfileVersionRecord, payload_types_of,
};
use crate::timefmt::{rfc3339, rfc3339_opt};
use serde_json::{Value, json};

/// A catalog entry, with how many groups and devices it is assigned to.
pub fn profile(p: &ProfileRecord) -> Value {
    json!({
        "identifier": p.identifier,
        "name": p.name,
        "description": p.description,
        "organization": p.organization,
        "scope": p.scope,
        "payload_types": p.payload_types(),
        "latest_version": p.latest_version,
        "deleted": p.deleted_at.is_some(),
        "deleted_at": rfc3339_opt(p.deleted_at),
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
        "assigned": {"groups": p.group_count, "devices": p.device_count},
    })
}

pub fn version(v: &ProfileVersionRecord) -> Value {
    json!({
        "version": v.version,
        "payload_uuid": v.payload_uuid,
        "name": v.name,
        "scope": v.scope,
        "payload_types": payload_types_of(&v.payload_types),
        "sha256": v.sha256,
        "signed": v.signed,
        "has_variables": v.has_variables,
        "uploaded_by": v.uploaded_by,
        "created_at": rfc3339(v.created_at),
    })
}

/// `{"groups": [names], "devices": [UDIDs]}`.
pub fn assignments(list: &[ProfileAssignment]) -> Value {
    let (groups, devices) = split(list.iter().map(|a| &a.target));
    json!({"groups": groups, "devices": devices})
}

/// One profile: the catalog entry, its assignments and every version, newest first.
pub fn detail(d: &ProfileDetail) -> Value {
    let mut v = profile(&d.profile);
    v["assignments"] = assignments(&d.assignments);
    v["versions"] = Value::Array(d.versions.iter().map(version).collect());
    v
}

/// The answer to an upload: the profile, which version the upload is, and what to know.
pub fn uploaded(u: &Uploaded) -> Value {
    json!({
        "profile": detail(&u.detail),
        "version": u.version,
        "created": u.created,
        "variables": u.variables.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "warnings": u.warnings,
        "reconciled": u.reconciled,
    })
}

/// The answer to assign (`key` = "added") or unassign (`key` = "removed").
pub fn assign_outcome(identifier: &str, key: &str, o: &AssignOutcome) -> Value {
    let (groups, devices) = split(o.changed.iter());
    let (same_groups, same_devices) = split(o.unchanged.iter());
    let mut v = json!({
        "identifier": identifier,
        "unchanged": {"groups": same_groups, "devices": same_devices},
        "assignments": assignments(&o.assignments),
        "reconciled": o.reconciled,
    });
    v[key] = json!({"groups": groups, "devices": devices});
    v
}

/// A profile's state on every channel, with counts by state.
pub fn status(s: &super::ProfileStatus) -> Value {
    let mut counts = serde_json::Map::new();
    for row in &s.states {
        let n = counts.entry(row.state.clone()).or_insert(json!(0));
        *n = json!(n.as_i64().unwrap_or(0) + 1);
    }
    json!({
        "identifier": s.identifier,
        "counts": counts,
        "devices": s.states.iter().map(device_state).collect::<Vec<_>>(),
    })
}

/// One channel's state of one profile, with the device it is on.
pub fn device_state(row: &crate::store::profile_states::ProfileStateRow) -> Value {
    let mut v = state(row);
    v["udid"] = json!(row.device_id);
    v
}

/// Where one configuration profile stands on one channel of a Mac.
pub fn state(s: &crate::store::profile_states::ProfileStateRow) -> Value {
    json!({
        "identifier": s.identifier,
        "enrollment_id": s.enrollment_id,
        "state": s.state,
        "version": s.version,
        "attempts": s.attempts,
        "error": s.error.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()),
        "next_attempt_at": rfc3339_opt(s.next_attempt_at),
        "verified_at": rfc3339_opt(s.verified_at),
        "updated_at": rfc3339(s.updated_at),
    })
}
