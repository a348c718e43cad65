//! Admin endpoints for FileVault (contract v2): enforce on a group, the escrowed personal
//! recovery keys (audited reveal), rotation, a Mac's FileVault state. The rules live in
//! `profiles::filevault` (the profile) and `service::filevault` (escrow, rotation, reveal).

use super::extractor::{Actor, AdminQuery, JsonBody};
use super::{AdminError, AppState};
use crate::profiles::filevault::EnforceRequest;
use crate::store::filevault::KeyFilter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/filevault/enforce", post(enforce))
        .route("/filevault-keys", get(keys))
        .route("/devices/{udid}/filevault", get(status))
        .route("/devices/{udid}/filevault/rotate", post(rotate))
}

/// Body of `POST /filevault/enforce`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnforceBody {
    group: String,
    defer: Option<bool>,
    max_bypass_attempts: Option<i64>,
    institutional_certificate_pem: Option<String>,
    location: Option<String>,
    force_in_setup_assistant: Option<bool>,
}

async fn enforce(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<EnforceBody>,
) -> Result<Json<Value>, AdminError> {
    let req = EnforceRequest {
        group: body.group,
        defer: body.defer,
        max_bypass_attempts: body.max_bypass_attempts,
        institutional_certificate_pem: body.institutional_certificate_pem,
        location: body.location,
        force_in_setup_assistant: body.force_in_setup_assistant,
    };
    let done = state.profiles.enforce_filevault(&req, actor.name()).await?;
    Ok(Json(crate::views::filevault_enforced(&done)))
}

#[derive(Deserialize)]
struct KeyQuery {
    serial: Option<String>,
    udid: Option<String>,
    reason: Option<String>,
}

async fn keys(
    State(state): State<AppState>,
    actor: Actor,
    AdminQuery(q): AdminQuery<KeyQuery>,
) -> Result<Json<Value>, AdminError> {
    let filter = KeyFilter {
        serial: q.serial.filter(|s| !s.trim().is_empty()),
        udid: q.udid.filter(|s| !s.trim().is_empty()),
    };
    let keys = state
        .service
        .reveal_filevault_keys(&filter, actor.name(), q.reason.as_deref())
        .await?;
    Ok(Json(crate::views::revealed_filevault_keys(&keys)))
}

async fn status(
    State(state): State<AppState>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let s = state.service.filevault_status(&udid).await?;
    Ok(Json(crate::views::filevault_status(&s)))
}

async fn rotate(
    State(state): State<AppState>,
    actor: Actor,
    Path(udid): Path<String>,
) -> Result<Response, AdminError> {
    let r = state
        .service
        .rotate_filevault_key(&udid, actor.name())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "command_uuid": r.command_uuid,
            "udid": r.device_id,
            "serial_number": r.serial_number,
        })),
    )
        .into_response())
}
