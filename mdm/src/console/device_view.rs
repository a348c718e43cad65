//! One device's page put into words (`device.rs` has the routes and actions): what the
//! services know about the Mac, read through the same calls as `GET /api/v1/devices/{udid}`,
//! `…/inventory` and `…/commands`, preformatted for `device.html`; and the secrets an action
//! opened, for showing once, are in `device_secrets.rs`.

use crate::http::AppState;
use crate::service::ServiceError;
use crate::service::devices::EXPIRY_WARNING_DAYS;
use crate::store::{DeviceView, QueueEntryView, QueueStatus};
use crate::timefmt::{ago, now_ms, rfc3339};
use serde_json::Value;

/// Commands shown in the history (the newest).
const HISTORY_SHOWN: usize = 100;

/// `(label, value)` rows of a `<dl class="facts">`.
pub type Facts = Vec<(String, String)>;

/// A titled block of facts (an inventory part).
pub struct Section {
    pub title: &'static str,
    pub facts: Facts,
}

pub struct ProfileLine {
    pub identifier: String,
    pub channel: String,
    pub state: String,
    pub badge: &'static str,
    pub version: i64,
    pub updated: String,
    pub error: String,
}

pub struct CommandLine {
    pub uuid: String,
    pub request_type: String,
    pub channel: String,
    pub status: &'static str,
    pub badge: &'static str,
    pub enqueued: String,
    pub result_at: String,
    /// Apple's ErrorChain of an Error answer, in words.
    pub error: String,
}

/// Everything the page shows about the Mac.
pub struct DeviceSheet {
    pub udid: String,
    pub title: String,
    pub warnings: Vec<String>,
    pub facts: Facts,
    pub inventory: Vec<Section>,
    pub groups: Vec<String>,
    pub profiles: Vec<ProfileLine>,
    pub commands: Vec<CommandLine>,
    pub push: Facts,
    pub dep: Facts,
    pub filevault: Facts,
    pub recovery_lock: Facts,
    pub pins: Facts,
    /// An EraseDevice not yet delivered: it can be canceled.
    pub wipe_pending: bool,
}

pub(super) fn fact(facts: &mut Facts, label: &str, value: impl Into<String>) {
    facts.push((label.to_string(), value.into()));
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "—".into())
}

pub(super) fn yes_no(v: Option<bool>) -> String {
    match v {
        Some(true) => "Yes".into(),
        Some(false) => "No".into(),
        None => "Not reported".into(),
    }
}

/// A time, as "3 h ago (2026-12-04T20:41:00Z)".
fn when(now: i64, t: Option<i64>) -> String {
    match t {
        Some(t) => format!("{} ({})", ago(now, t), rfc3339(t)),
        None => "never".into(),
    }
}

fn short_when(t: Option<i64>) -> String {
    t.map(rfc3339).unwrap_or_default()
}

fn status_badge(s: QueueStatus) -> &'static str {
    match s {
        QueueStatus::Acknowledged => "ok",
        QueueStatus::Error | QueueStatus::CommandFormatError => "error",
        QueueStatus::NotNow | QueueStatus::Pending | QueueStatus::Sent => "warn",
        QueueStatus::Canceled => "",
    }
}

/// Apple's `ErrorChain` of a command's answer in words: `domain code: description`, each
/// link after the one that caused it.
fn error_chain(result: Option<&[u8]>) -> String {
    let Some(raw) = result else {
        return String::new();
    };
    let Ok(plist::Value::Dictionary(d)) = plist::Value::from_reader_xml(raw) else {
        return String::new();
    };
    let Some(chain) = d.get("ErrorChain").and_then(plist::Value::as_array) else {
        return String::new();
    };
    chain
        .iter()
        .filter_map(plist::Value::as_dictionary)
        .map(|e| {
            let text = |k: &str| e.get(k).and_then(plist::Value::as_string).unwrap_or("");
            let code = e
                .get("ErrorCode")
                .and_then(plist::Value::as_signed_integer)
                .map(|c| c.to_string())
                .unwrap_or_default();
            let desc = match text("LocalizedDescription") {
                "" => text("USEnglishDescription"),
                d => d,
            };
            format!("{} {code}: {desc}", text("ErrorDomain"))
                .trim()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(" ← ")
}

fn channel_of(enrollment_id: &str, udid: &str) -> String {
    if enrollment_id == udid {
        "device".into()
    } else {
        "user".into()
    }
}

fn command_line(e: &QueueEntryView, udid: &str) -> CommandLine {
    CommandLine {
        uuid: e.command_uuid.clone(),
        request_type: e.request_type.clone(),
        channel: channel_of(&e.enrollment_id, udid),
        status: e.status.as_str(),
        badge: status_badge(e.status),
        enqueued: rfc3339(e.enqueued_at),
        result_at: short_when(e.result_at.or(e.canceled_at)),
        error: error_chain(e.result.as_deref()),
    }
}

/// An inventory part's facts from the API's inventory view (`inventory::views`), so the page
/// and `GET /api/v1/devices/{udid}/inventory` say the same.
fn inventory_facts(v: &Value) -> Facts {
    let Some(map) = v.as_object() else {
        return Facts::new();
    };
    let mut facts = Facts::new();
    for (k, v) in map {
        let text = match v {
            Value::Null => continue,
            Value::Bool(b) => yes_no(Some(*b)),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            Value::Object(o) => o
                .values()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" · "),
        };
        let mut label = k.replace('_', " ");
        if let Some(first) = label.get(..1) {
            label = first.to_uppercase() + &label[1..];
        }
        facts.push((label, text));
    }
    facts
}

pub(super) fn pin_facts(facts: &mut Facts, d: &DeviceView) {
    fact(
        facts,
        "PIN required for lock",
        yes_no(d.pin_required_for_lock),
    );
    fact(
        facts,
        "PIN required for erase",
        yes_no(d.pin_required_for_erase),
    );
    fact(facts, "Apple silicon", yes_no(d.is_apple_silicon));
}

/// The Mac's page, from the services the API's device routes call.
pub async fn sheet(state: &AppState, udid: &str) -> Result<DeviceSheet, ServiceError> {
    let now = now_ms();
    let details = state.service.device_details(udid).await?;
    let history = state.service.device_commands(udid).await?;
    let inventory = state.inventory.device_inventory(udid).await?;
    let d = &details.device;

    let mut warnings = Vec::new();
    if details.identity_expires_soon {
        warnings.push(format!(
            "The identity certificate expires within {EXPIRY_WARNING_DAYS} days: the Mac renews \
             it by SCEP, or reinstall the enrollment profile."
        ));
    }
    if details.on_placeholder_topic {
        warnings.push(crate::service::enrollment::PLACEHOLDER_TOPIC_WARNING.to_string());
    }
    if !d.enrolled {
        warnings.push(
            "Not enrolled (checked out or re-enrolling): commands would never reach it.".into(),
        );
    }

    let mut facts = Facts::new();
    fact(&mut facts, "Name", opt(&d.device_name));
    fact(&mut facts, "Serial number", opt(&d.serial_number));
    fact(&mut facts, "UDID", d.udid.clone());
    fact(
        &mut facts,
        "Model",
        match (&d.model_name, &d.model) {
            (Some(n), Some(m)) => format!("{n} ({m})"),
            (n, m) => opt(&n.clone().or(m.clone())),
        },
    );
    fact(
        &mut facts,
        "macOS",
        match (&d.os_version, &d.build_version) {
            (Some(v), Some(b)) => format!("{v} ({b})"),
            (v, _) => opt(v),
        },
    );
    fact(&mut facts, "Enrollment", d.enrollment_type.clone());
    fact(&mut facts, "Enrolled", yes_no(Some(d.enrolled)));
    fact(&mut facts, "Last seen", when(now, d.last_seen_at));
    fact(&mut facts, "Enrolled at", when(now, d.authenticated_at));
    fact(
        &mut facts,
        "Identity certificate expires",
        d.identity_not_after
            .map(rfc3339)
            .unwrap_or_else(|| "—".into()),
    );
    for u in &d.user_channels {
        fact(
            &mut facts,
            "User channel",
            format!(
                "{} ({}){}",
                u.user_short_name.clone().unwrap_or_else(|| "?".into()),
                u.user_long_name.clone().unwrap_or_default(),
                if u.enrolled { "" } else { ", not enrolled" }
            ),
        );
    }

    let inv = crate::inventory::views::device_inventory(&inventory, None, false);
    let mut sections = Vec::new();
    for (title, key) in [
        ("Hardware", "hardware"),
        ("Operating system", "os"),
        ("Security", "security"),
        ("Users", "users"),
        ("Applications", "apps"),
        ("Certificates", "certificates"),
    ] {
        let facts = inventory_facts(&inv[key]);
        if !facts.is_empty() {
            sections.push(Section { title, facts });
        }
    }

    let profiles = details
        .profiles
        .iter()
        .map(|p| ProfileLine {
            identifier: p.identifier.clone(),
            channel: channel_of(&p.enrollment_id, udid),
            state: p.state.clone(),
            badge: match p.state.as_str() {
                "verified" | "removed" => "ok",
                "failed" => "error",
                _ => "warn",
            },
            version: p.version,
            updated: rfc3339(p.updated_at),
            error: p.error.clone().unwrap_or_default(),
        })
        .collect();
    let commands = history
        .iter()
        .take(HISTORY_SHOWN)
        .map(|e| command_line(e, udid))
        .collect();

    let mut push = Facts::new();
    fact(
        &mut push,
        "Push token",
        if d.push_token.is_some() && d.has_push_magic {
            "Known".to_string()
        } else {
            "None: the Mac cannot be woken".to_string()
        },
    );
    fact(&mut push, "Topic", opt(&d.topic));
    fact(&mut push, "Token updates", d.token_update_count.to_string());
    fact(
        &mut push,
        "Last TokenUpdate",
        when(now, d.last_token_update_at),
    );
    fact(&mut push, "Last push", when(now, d.last_push_at));
    fact(&mut push, "Last APNs result", opt(&d.last_push_result));
    if let Some(why) = &d.push_blocked {
        fact(&mut push, "Pushes stopped", why.clone());
    }

    let mut dep = Facts::new();
    if let Some(r) = &details.dep {
        fact(&mut dep, "DEP link", r.link.clone());
        fact(&mut dep, "Apple's model", opt(&r.model));
        fact(&mut dep, "Description", opt(&r.description));
        fact(&mut dep, "Profile status", opt(&r.profile_status));
        fact(&mut dep, "Profile", opt(&r.profile_uuid));
        fact(&mut dep, "Assigned", opt(&r.device_assigned_date));
        if r.deleted {
            fact(&mut dep, "Removed from DEP", "Yes");
        }
    }
    if let Some(a) = &details.ade {
        fact(&mut dep, "Enrolled by ADE", rfc3339(a.requested_at));
        fact(&mut dep, "ADE profile", opt(&a.profile_uuid));
        fact(
            &mut dep,
            "Setup commands queued",
            short_when(a.setup_queued_at),
        );
    }

    let fv = &details.filevault;
    let mut filevault = Facts::new();
    fact(&mut filevault, "FileVault on", yes_no(fv.enabled));
    fact(&mut filevault, "Reported", when(now, fv.collected_at));
    fact(
        &mut filevault,
        "Institutional key",
        yes_no(fv.institutional_key),
    );
    fact(
        &mut filevault,
        "Personal recovery key",
        match &fv.current_key {
            Some(k) => format!(
                "escrowed {} ({}){}",
                rfc3339(k.received_at),
                k.state,
                if k.verified_at.is_some() {
                    ", verified"
                } else {
                    ""
                }
            ),
            None => "none escrowed".into(),
        },
    );
    fact(&mut filevault, "Keys kept", fv.keys_kept.to_string());
    if fv.undecryptable > 0 {
        fact(
            &mut filevault,
            "Keys that did not open",
            fv.undecryptable.to_string(),
        );
    }
    if let Some(r) = fv.rotations.first() {
        fact(
            &mut filevault,
            "Last rotation",
            format!("{} ({})", r.state, rfc3339(r.created_at)),
        );
    }

    let mut recovery_lock = Facts::new();
    fact(
        &mut recovery_lock,
        "Recovery Lock on",
        yes_no(details.recovery_lock_enabled),
    );
    fact(
        &mut recovery_lock,
        "Escrowed password",
        match &details.recovery_lock {
            Some(r) => format!(
                "{} {} by {} ({}){}",
                r.kind.as_str(),
                rfc3339(r.created_at),
                r.issued_by,
                r.state.as_str(),
                r.failure
                    .as_ref()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            ),
            None => "none".into(),
        },
    );

    let mut pins = Facts::new();
    pin_facts(&mut pins, d);
    for (label, rt) in [("Last lock", "DeviceLock"), ("Last wipe", "EraseDevice")] {
        if let Some(p) = details.pins.iter().find(|p| p.request_type == rt) {
            fact(
                &mut pins,
                label,
                format!(
                    "{} by {} ({})",
                    rfc3339(p.created_at),
                    p.issued_by,
                    p.status.as_str()
                ),
            );
        }
    }
    let wipe_pending = details
        .pins
        .iter()
        .any(|p| p.request_type == "EraseDevice" && p.status == QueueStatus::Pending);

    Ok(DeviceSheet {
        udid: d.udid.clone(),
        title: d
            .device_name
            .clone()
            .or_else(|| d.serial_number.clone())
            .unwrap_or_else(|| d.udid.clone()),
        warnings,
        facts,
        inventory: sections,
        groups: details.groups.clone(),
        profiles,
        commands,
        push,
        dep,
        filevault,
        recovery_lock,
        pins,
        wipe_pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_reads_as_words() {
        let answer = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>Status</key><string>Error</string>
<key>ErrorChain</key><array>
<dict><key>ErrorCode</key><integer>12021</integer><key>ErrorDomain</key><string>MCMDMErrorDomain</string>
<key>LocalizedDescription</key><string>Unknown command</string></dict>
<dict><key>ErrorCode</key><integer>4</integer><key>ErrorDomain</key><string>Other</string>
<key>USEnglishDescription</key><string>Cause</string></dict>
</array></dict></plist>"#;
        assert_eq!(
            error_chain(Some(answer)),
            "MCMDMErrorDomain 12021: Unknown command ← Other 4: Cause"
        );
        assert_eq!(error_chain(Some(b"not a plist")), "");
        assert_eq!(error_chain(None), "");
    }
}
