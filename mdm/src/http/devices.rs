//! `/api/v1/devices`: the device list, one device with everything known about it, and
//! forgetting a device. Its commands are in `commands.rs`, lock and wipe in `lockwipe.rs`.

use super::extractor::{Actor, AdminQuery};
use super::{AdminError, AppState};
use crate::service::ServiceError;
use crate::store::DeviceFilter;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices", get(list))
        .route("/devices/{udid}", get(show).delete(delete))
}

#[derive(Deserialize)]
struct ListQuery {
    serial: Option<String>,
    udid: Option<String>,
    enrolled: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
    /// The device filter language, e.g. `os_version < 15 and model ~ MacBook`.
    filter: Option<String>,
    /// `json` (a page, the default) or `csv` (every matching device, the report).
    format: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<ListQuery>,
) -> Result<Response, AdminError> {
    let filter = DeviceFilter {
        serial: q.serial,
        udid: q.udid,
        enrolled: q.enrolled,
        cursor: q.cursor,
        limit: q.limit.unwrap_or(100),
    };
    match q.format.as_deref() {
        None | Some("json") => {}
        Some("csv") => {
            let rows = state
                .service
                .device_report(filter, q.filter.as_deref())
                .await?;
            let body = crate::views::devices_csv(&rows)
                .map_err(|e| ServiceError::Internal(format!("writing the CSV report: {e}")))?;
            return Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"devices.csv\"",
                    ),
                ],
                body,
            )
                .into_response());
        }
        Some(other) => {
            return Err(AdminError::bad_request(format!(
                "format {other:?}: expected json or csv"
            )));
        }
    }
    let page = state
        .service
        .list_devices(filter, q.filter.as_deref())
        .await?;
    let devices: Vec<Value> = page.devices.iter().map(crate::views::device).collect();
    Ok(Json(json!({"devices": devices, "next_cursor": page.next_cursor})).into_response())
}

async fn show(
    State(state): State<AppState>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let details = state.service.device_details(&udid).await?;
    let golden = state.profiles.device_golden_image(&details).await?;
    let mut v = crate::views::device_details(&details);
    v["golden_image"] = crate::views::device_golden_image(golden.as_ref());
    let activation = state.profiles.device_parallels_activation(&details).await?;
    v["parallels_activation"] = crate::views::device_parallels_activation(activation.as_ref());
    let os_updates = state
        .ddm
        .device_os_updates(&details.device, &details.groups)
        .await?;
    v["os_updates"] = os_updates
        .iter()
        .map(crate::ddm::views::device_os_update)
        .collect();
    let ddm = state.ddm.device_ddm(&details.device.udid).await?;
    v["ddm"] = crate::ddm::views::device_ddm(ddm.as_ref());
    Ok(Json(v))
}

async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    state.service.delete_device(&udid, actor.name()).await?;
    Ok(Json(json!({"deleted": udid})))
}
