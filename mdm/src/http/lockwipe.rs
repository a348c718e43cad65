//! Admin endpoints for lock, wipe and escrowed unlock PINs.

use super::AdminError;
use super::AppState;
use super::admin::{Actor, parse_json};
use crate::service::lockwipe::{LockRequest, WipeRequest};
use crate::store::PinFilter;
use crate::timefmt::{rfc3339, rfc3339_opt};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

fn opt_string(v: &Value, key: &str) -> Result<Option<String>, AdminError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AdminError::bad_request(format!(
            "\"{key}\" must be a string"
        ))),
    }
}

/// Body may be empty for a lock with a generated PIN.
fn body_object(body: &Bytes) -> Result<Value, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v = parse_json(body)?;
    if !v.is_object() {
        return Err(AdminError::bad_request("body must be a JSON object"));
    }
    Ok(v)
}

pub async fn lock(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(udid): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let v = body_object(&body)?;
    let req = LockRequest {
        pin: opt_string(&v, "pin")?,
        message: opt_string(&v, "message")?,
        phone_number: opt_string(&v, "phone_number")?,
    };
    let issued = state.service.lock(&udid, req, &actor.0).await?;
    let facts = device_facts(&state, &udid).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"command_uuid": issued.command_uuid, "pin": issued.pin, "device": facts})),
    )
        .into_response())
}

pub async fn wipe(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(udid): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let v = body_object(&body)?;
    let force = match v.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AdminError::bad_request("\"force\" must be true or false")),
    };
    let req = WipeRequest {
        confirm_serial: opt_string(&v, "confirm_serial")?,
        pin: opt_string(&v, "pin")?,
        obliteration_behavior: opt_string(&v, "obliteration_behavior")?,
        force,
    };
    let issued = state.service.wipe(&udid, req, &actor.0).await?;
    let facts = device_facts(&state, &udid).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"command_uuid": issued.command_uuid, "pin": issued.pin, "device": facts})),
    )
        .into_response())
}

pub async fn cancel_wipe(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let outcome = state.service.cancel_wipe(&udid, &actor.0).await?;
    Ok(Json(json!({"canceled": outcome.canceled})))
}

#[derive(Deserialize)]
pub struct PinQuery {
    serial: Option<String>,
    udid: Option<String>,
    reason: Option<String>,
}

pub async fn unlock_pins(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    query: Result<Query<PinQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    let filter = PinFilter {
        serial: q.serial.filter(|s| !s.is_empty()),
        udid: q.udid.filter(|s| !s.is_empty()),
    };
    let pins = state
        .service
        .reveal_pins(&filter, &actor.0, q.reason.as_deref())
        .await?;
    let pins: Vec<Value> = pins
        .iter()
        .map(|p| {
            let r = &p.record;
            json!({
                "pin": p.pin,
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
    Ok(Json(json!({"pins": pins})))
}

/// What the Mac reported about PINs (DeviceInformation), so the admin knows whether the PIN
/// matters: Intel Macs without T2 need it to unlock; Apple silicon erase ignores it.
async fn device_facts(state: &AppState, udid: &str) -> Result<Value, AdminError> {
    let d = state.service.store().device(udid).await?;
    Ok(d.map(|d| json!({"pin_facts": crate::views::pin_facts(&d)}))
        .unwrap_or(Value::Null))
}
