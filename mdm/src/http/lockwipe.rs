//! Admin endpoints for lock, wipe and escrowed unlock PINs. The rules (PIN shape, the serial
//! confirmation, one wipe at a time, escrow before send, audit) are in `service::lockwipe`.

use super::extractor::{Actor, AdminQuery, JsonBody};
use super::{AdminError, AppState};
use crate::service::lockwipe::{Issued, LockRequest, WipeRequest};
use crate::store::PinFilter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices/{udid}/lock", post(lock))
        .route("/devices/{udid}/wipe", post(wipe).delete(cancel_wipe))
        .route("/unlock-pins", get(unlock_pins))
}

/// Body of `POST …/lock`; empty for a generated PIN.
#[derive(Deserialize)]
struct LockBody {
    pin: Option<String>,
    message: Option<String>,
    phone_number: Option<String>,
}

/// Body of `POST …/wipe`.
#[derive(Deserialize)]
struct WipeBody {
    confirm_serial: Option<String>,
    pin: Option<String>,
    obliteration_behavior: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn lock(
    State(state): State<AppState>,
    actor: Actor,
    Path(udid): Path<String>,
    JsonBody(body): JsonBody<LockBody>,
) -> Result<Response, AdminError> {
    let req = LockRequest {
        pin: body.pin,
        message: body.message,
        phone_number: body.phone_number,
    };
    let issued = state.service.lock(&udid, req, actor.name()).await?;
    Ok(issued_answer(&issued))
}

async fn wipe(
    State(state): State<AppState>,
    actor: Actor,
    Path(udid): Path<String>,
    JsonBody(body): JsonBody<WipeBody>,
) -> Result<Response, AdminError> {
    let req = WipeRequest {
        confirm_serial: body.confirm_serial,
        pin: body.pin,
        obliteration_behavior: body.obliteration_behavior,
        force: body.force,
    };
    let issued = state.service.wipe(&udid, req, actor.name()).await?;
    Ok(issued_answer(&issued))
}

/// The PIN, shown once, with what the Mac reported about PINs (DeviceInformation), so the
/// admin knows whether it matters: Intel Macs without T2 need it to unlock; Apple silicon
/// erase ignores it.
fn issued_answer(issued: &Issued) -> Response {
    let device = json!({"pin_facts": crate::views::pin_facts(&issued.device)});
    (
        StatusCode::CREATED,
        Json(json!({"command_uuid": issued.command_uuid, "pin": secrecy::ExposeSecret::expose_secret(&issued.pin), "device": device})),
    )
        .into_response()
}

async fn cancel_wipe(
    State(state): State<AppState>,
    actor: Actor,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let outcome = state.service.cancel_wipe(&udid, actor.name()).await?;
    Ok(Json(json!({"canceled": outcome.canceled})))
}

#[derive(Deserialize)]
struct PinQuery {
    serial: Option<String>,
    udid: Option<String>,
    reason: Option<String>,
}

async fn unlock_pins(
    State(state): State<AppState>,
    actor: Actor,
    AdminQuery(q): AdminQuery<PinQuery>,
) -> Result<Json<Value>, AdminError> {
    let filter = PinFilter {
        serial: q.serial.filter(|s| !s.is_empty()),
        udid: q.udid.filter(|s| !s.is_empty()),
    };
    let pins = state
        .service
        .reveal_pins(&filter, actor.name(), q.reason.as_deref())
        .await?;
    Ok(Json(crate::views::revealed_pins(&pins)))
}
