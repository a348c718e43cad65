//! MDM commands on the admin API: enqueue to one device or many, a command's state per device,
//! cancel, and a device's command history. A command is typed JSON with Apple's key names plus
//! `request_type`, or `{"plist": "<base64 of a command plist>"}`.

use super::extractor::{Actor, JsonBody};
use super::{AdminError, AppState};
use crate::protocol::command::Command;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/devices/{udid}/commands",
            get(device_commands).post(enqueue_one),
        )
        .route("/commands", post(enqueue_many))
        .route("/commands/{uuid}", get(show).delete(cancel))
}

fn parse_command(value: &Value) -> Result<Command, AdminError> {
    if let Some(plist_b64) = value.get("plist") {
        let text = plist_b64
            .as_str()
            .ok_or_else(|| AdminError::bad_request("\"plist\" must be a base64 string"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| AdminError::bad_request("\"plist\" is not valid base64"))?;
        return Ok(Command::from_plist(&bytes)?);
    }
    Ok(Command::from_json(value)?)
}

async fn device_commands(
    State(state): State<AppState>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let entries = state.service.device_commands(&udid).await?;
    let commands: Vec<Value> = entries.iter().map(crate::views::queue_entry).collect();
    Ok(Json(json!({"commands": commands})))
}

async fn enqueue_one(
    State(state): State<AppState>,
    actor: Actor,
    Path(udid): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, AdminError> {
    let command = parse_command(&body)?;
    let outcome = state
        .service
        .enqueue_for_device(&command, &udid, actor.name())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "command_uuid": outcome.command_uuid,
            "request_type": outcome.request_type,
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct EnqueueMany {
    /// UDIDs (enrollment IDs).
    devices: Vec<String>,
    command: Value,
}

async fn enqueue_many(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<EnqueueMany>,
) -> Result<Response, AdminError> {
    let EnqueueMany { devices, command } = body;
    let command = parse_command(&command)?;
    let outcome = state
        .service
        .enqueue(&command, &devices, actor.name())
        .await?;
    // A fleet-wide request holds 100k UDIDs: free them before the answer is built.
    drop(devices);
    let queued = outcome.results.iter().filter(|r| r.queued).count();
    /// Serialized straight from the results: a `json!` value would first build a map per
    /// device (tens of MB for 100k).
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        command_uuid: &'a str,
        request_type: &'a str,
        queued: usize,
        results: &'a [crate::store::EnqueueResult],
    }
    let answer = serde_json::to_vec(&Answer {
        command_uuid: &outcome.command_uuid,
        request_type: &outcome.request_type,
        queued,
        results: &outcome.results,
    })
    .map_err(|e| {
        crate::service::ServiceError::Internal(format!("serializing the enqueue answer: {e}"))
    })?;
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response())
}

async fn show(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let details = state.service.command_details(&uuid).await?;
    Ok(Json(crate::views::command_details(&details)))
}

async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let outcome = state.service.cancel_command(&uuid, actor.name()).await?;
    Ok(Json(crate::views::cancel_outcome(&outcome)))
}
