//! Admin endpoints for inventory: one Mac's inventory (`GET /api/v1/devices/{udid}/inventory`,
//! a UDID or a serial number) and a refresh now (`POST /api/v1/inventory/refresh`). Handlers
//! are short: parse, call `crate::inventory`, render with `inventory::views`.

use super::extractor::{Actor, AdminQuery, JsonBody};
use super::{AdminError, AppState};
use crate::inventory::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices/{udid}/inventory", get(device_inventory))
        .route("/inventory/refresh", post(refresh))
}

#[derive(Deserialize)]
struct InventoryQuery {
    /// Add each part's whole answer as the Mac sent it.
    #[serde(default)]
    full: bool,
    /// Add the installed applications.
    #[serde(default)]
    apps: bool,
}

async fn device_inventory(
    State(state): State<AppState>,
    Path(device): Path<String>,
    AdminQuery(q): AdminQuery<InventoryQuery>,
) -> Result<Json<Value>, AdminError> {
    let inv = state.inventory.device_inventory(&device).await?;
    let apps = if q.apps {
        Some(state.inventory.apps(&inv.device.udid).await?)
    } else {
        None
    };
    Ok(Json(views::device_inventory(&inv, apps.as_deref(), q.full)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    /// UDIDs or serial numbers.
    #[serde(default)]
    devices: Vec<String>,
    group: Option<String>,
}

/// Queue the inventory commands now; 202: the Macs answer when they next connect.
async fn refresh(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<Refresh>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let outcome = state
        .inventory
        .refresh(&body.devices, body.group.as_deref(), actor.name())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(views::refresh(&outcome))))
}
