//! JSON shapes of DEP records for the admin API and the CLI.

use super::links::has_working_token;
use crate::store::dep::{DepDeviceRecord, DepLinkRecord, DepProfileRecord};
use crate::timefmt::rfc3339_opt;
use serde_json::{Value, json};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Token expiry warning at 30, 14 and 7 days (and once expired).
pub fn token_warning(expiry: Option<i64>, now: i64) -> Option<(&'static str, String)> {
    let expiry = expiry?;
    if expiry <= now {
        return Some((
            "expired",
            "the DEP token has expired: download a new one from Apple Business/School Manager \
             and run `russet dep link token`"
                .into(),
        ));
    }
    let days = (expiry - now) / DAY_MS;
    let level = match days {
        0..7 => "critical",
        7..14 => "warning",
        14..30 => "notice",
        _ => return None,
    };
    Some((
        level,
        format!(
            "the DEP token expires in {days} day{} ({}): download a new one from Apple \
             Business/School Manager and run `russet dep link token --force`",
            if days == 1 { "" } else { "s" },
            crate::timefmt::rfc3339(expiry)
        ),
    ))
}

/// What the last DEP API error means for the admin.
fn error_alert(code: &str) -> Option<&'static str> {
    Some(match code {
        "T_C_NOT_SIGNED" => {
            "T_C_NOT_SIGNED: Apple's new terms and conditions must be accepted in Apple \
             Business/School Manager before DEP works again"
        }
        "ACCESS_DENIED" => {
            "ACCESS_DENIED: Apple refused the token (revoked, replaced or for another \
             certificate): download a new token"
        }
        "UNAUTHORIZED" => "UNAUTHORIZED: Apple refused the token's session: check the token",
        _ => return None,
    })
}

pub fn link(l: &DepLinkRecord, counts: &[(String, i64)], now: i64) -> Value {
    let days_left = l.token_expiry.map(|e| (e - now).div_euclid(DAY_MS));
    let warning = token_warning(l.token_expiry, now);
    let mut alerts: Vec<String> = Vec::new();
    if let Some((_, w)) = &warning {
        alerts.push(w.clone());
    }
    if let Some(code) = l.last_error_code.as_deref() {
        alerts.push(
            error_alert(code)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("last DEP call failed: {code}")),
        );
    }
    let last_sync: Value = l
        .last_sync_json
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    json!({
        "name": l.name,
        "has_token": l.token_sealed.is_some(),
        "token_working": has_working_token(l, now),
        "token_expiry": rfc3339_opt(l.token_expiry),
        "token_days_left": days_left,
        "token_warning": warning.as_ref().map(|(level, msg)| json!({"level": level, "message": msg})),
        "server_name": l.server_name,
        "server_uuid": l.server_uuid,
        "org_name": l.org_name,
        "admin_id": l.admin_id,
        "default_profile_uuid": l.default_profile_uuid,
        "last_ok_at": rfc3339_opt(l.last_ok_at),
        "last_error": l.last_error_code.as_ref().map(|c| json!({
            "code": c,
            "message": l.last_error_message,
            "at": rfc3339_opt(l.last_error_at),
        })),
        "alerts": alerts,
        "last_sync_at": rfc3339_opt(l.last_sync_at),
        "last_sync": last_sync,
        "devices": counts.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "created_at": rfc3339_opt(Some(l.created_at)),
    })
}

pub fn device(d: &DepDeviceRecord) -> Value {
    json!({
        "serial_number": d.serial_number,
        "link": d.link,
        "status": super::DepStatus::of_record(d).as_str(),
        "model": d.model,
        "description": d.description,
        "color": d.color,
        "asset_tag": d.asset_tag,
        "os": d.os,
        "device_family": d.device_family,
        "profile_status": d.profile_status,
        "profile_uuid": d.profile_uuid,
        "profile_assign_time": d.profile_assign_time,
        "profile_push_time": d.profile_push_time,
        "device_assigned_date": d.device_assigned_date,
        "device_assigned_by": d.device_assigned_by,
        "op_type": d.op_type,
        "op_date": d.op_date,
        "mdm_migration_deadline": d.mdm_migration_deadline,
        "assignment": d.assign_status.as_ref().map(|s| json!({
            "status": s,
            "profile_uuid": d.assign_profile_uuid,
            "at": rfc3339_opt(d.assign_at),
            "retry_at": rfc3339_opt(d.assign_retry_at),
        })),
        "auto_assign_pending": d.auto_assign_pending,
        "first_seen_at": rfc3339_opt(Some(d.first_seen_at)),
        "updated_at": rfc3339_opt(Some(d.updated_at)),
    })
}

pub fn profile(p: &DepProfileRecord, is_default: bool) -> Value {
    let body: Value = serde_json::from_str(&p.profile_json).unwrap_or(Value::Null);
    json!({
        "profile_uuid": p.profile_uuid,
        "link": p.link,
        "profile_name": p.profile_name,
        "default": is_default,
        "profile": body,
        "created_at": rfc3339_opt(Some(p.created_at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_warnings_at_30_14_7_days() {
        let now = 1_000 * DAY_MS;
        assert_eq!(token_warning(Some(now + 45 * DAY_MS), now), None);
        assert_eq!(
            token_warning(Some(now + 29 * DAY_MS), now).map(|w| w.0),
            Some("notice")
        );
        assert_eq!(
            token_warning(Some(now + 13 * DAY_MS), now).map(|w| w.0),
            Some("warning")
        );
        assert_eq!(
            token_warning(Some(now + 6 * DAY_MS), now).map(|w| w.0),
            Some("critical")
        );
        assert_eq!(
            token_warning(Some(now - 1), now).map(|w| w.0),
            Some("expired")
        );
        assert_eq!(token_warning(None, now), None);
    }
}
