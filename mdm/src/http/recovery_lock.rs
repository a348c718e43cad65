//! Admin endpoints for Recovery Lock: set (random or given), clear, a group at once, and the
//! escrowed passwords (audited). The rules (password shape, Apple silicon and macOS 11.5, the
//! password in effect, escrow before send, verification, audit) are in
//! `service::recovery_lock`. A set answers without the password: reading one is `key.reveal`.

use super::extractor::{Actor, AdminQuery, JsonBody};
use super::{AdminError, AppState};
use crate::service::recovery_lock::{RecoveryLockIssued, RecoveryLockReveal};
use crate::store::PinFilter;
use crate::timefmt::{rfc3339, rfc3339_opt};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices/{udid}/recovery-lock", post(set).delete(clear))
        .route("/recovery-lock", post(set_group))
        .route("/recovery-lock-passwords", get(passwords))
}

/// Body of `POST …/recovery-lock`; empty for a random password.
#[derive(Deserialize)]
struct SetBody {
    password: Option<String>,
}

/// Body of `POST /recovery-lock`.
#[derive(Deserialize)]
struct GroupBody {
    group: String,
}

fn issued(i: &RecoveryLockIssued) -> Value {
    json!({
        "command_uuid": i.command_uuid,
        "udid": i.udid,
        "serial_number": i.serial_number,
        "kind": i.kind.as_str(),
        "generated": i.generated,
        "replaces_current": i.replaces_current,
        "password": "(escrowed)",
    })
}

async fn set(
    State(state): State<AppState>,
    actor: Actor,
    Path(udid): Path<String>,
    JsonBody(body): JsonBody<SetBody>,
) -> Result<Response, AdminError> {
    let i = state
        .service
        .set_recovery_lock(&udid, body.password, actor.name())
        .await?;
    Ok((StatusCode::CREATED, Json(issued(&i))).into_response())
}

async fn clear(
    State(state): State<AppState>,
    actor: Actor,
    Path(udid): Path<String>,
) -> Result<Response, AdminError> {
    let i = state
        .service
        .clear_recovery_lock(&udid, actor.name())
        .await?;
    Ok((StatusCode::CREATED, Json(issued(&i))).into_response())
}

async fn set_group(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<GroupBody>,
) -> Result<Json<Value>, AdminError> {
    let outcomes = state
        .service
        .set_recovery_lock_group(&body.group, actor.name())
        .await?;
    let devices: Vec<Value> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(i) => json!({"udid": o.udid, "queued": true, "command_uuid": i.command_uuid}),
            Err(why) => json!({"udid": o.udid, "queued": false, "error": why}),
        })
        .collect();
    let queued = outcomes.iter().filter(|o| o.result.is_ok()).count();
    Ok(Json(
        json!({"group": body.group, "queued": queued, "devices": devices}),
    ))
}

#[derive(Deserialize)]
struct PasswordQuery {
    serial: Option<String>,
    udid: Option<String>,
    reason: Option<String>,
}

async fn passwords(
    State(state): State<AppState>,
    actor: Actor,
    AdminQuery(q): AdminQuery<PasswordQuery>,
) -> Result<Json<Value>, AdminError> {
    let filter = PinFilter {
        serial: q.serial.filter(|s| !s.is_empty()),
        udid: q.udid.filter(|s| !s.is_empty()),
    };
    let reveal = state
        .service
        .reveal_recovery_lock_passwords(&filter, actor.name(), q.reason.as_deref())
        .await?;
    Ok(Json(revealed(&reveal)))
}

/// `{device, passwords}`: the Mac as it is now (null once deleted), with SecurityInfo's
/// `IsRecoveryLockEnabled` as inventory last stored it, and every escrowed password.
fn revealed(r: &RecoveryLockReveal) -> Value {
    let device = r.device.as_ref().map(|d| {
        json!({
            "udid": d.udid,
            "serial_number": d.serial_number,
            "enrolled": d.enrolled,
            "os_version": d.os_version,
            "is_apple_silicon": d.is_apple_silicon,
            "recovery_lock_enabled": r.recovery_lock_enabled,
        })
    });
    let passwords: Vec<Value> = r
        .passwords
        .iter()
        .map(|p| {
            let x = &p.record;
            json!({
                "password": secrecy::ExposeSecret::expose_secret(&p.password),
                "kind": x.kind.as_str(),
                "state": x.state.as_str(),
                "command_uuid": x.command_uuid,
                "udid": x.device_id,
                "serial_number": x.serial_number,
                "issued_by": x.issued_by,
                "created_at": rfc3339(x.created_at),
                "acknowledged_at": rfc3339_opt(x.acknowledged_at),
                "settled_at": rfc3339_opt(x.settled_at),
                "failure": x.failure,
            })
        })
        .collect();
    json!({"device": device, "passwords": passwords})
}
