//! The admin JSON API under `/api/v1` (bearer-token auth) and `/healthz`.

use super::{AdminError, AppState, MAX_ADMIN_BODY, apns, dep, lockwipe};
use crate::admin_token;
use crate::protocol::command::Command;
use crate::protocol::convert::plist_to_json;
use crate::service::now_ms;
use crate::store::{AuditRecord, DeviceFilter, QueueEntryView};
use crate::timefmt::rfc3339;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

const OPENAPI: &str = include_str!("openapi.json");

/// Who is calling: the name of the admin token presented.
#[derive(Clone, Debug)]
pub struct Actor(pub String);

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/devices", get(list_devices))
        .route("/devices/{udid}", get(show_device).delete(delete_device))
        .route(
            "/devices/{udid}/commands",
            get(device_commands).post(enqueue_one),
        )
        .route("/devices/{udid}/lock", post(lockwipe::lock))
        .route(
            "/devices/{udid}/wipe",
            post(lockwipe::wipe).delete(lockwipe::cancel_wipe),
        )
        .route("/unlock-pins", get(lockwipe::unlock_pins))
        .route("/devices/{udid}/push", post(apns::push_device))
        .route("/apns", get(apns::status))
        .route("/apns/certificate", axum::routing::put(apns::import))
        .route("/apns/csr", post(apns::csr))
        .route("/vendor/sign", post(apns::vendor_sign))
        .route("/commands", post(enqueue_many))
        .route(
            "/commands/{uuid}",
            get(command_status).delete(cancel_command),
        )
        .route("/audit", get(audit_list))
        .route("/enroll-links", post(super::enroll::create_link))
        .route(
            "/identities/expiring",
            get(super::enroll::expiring_identities),
        )
        .route("/openapi.json", get(openapi))
        .merge(dep::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .fallback(|| async { AdminError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .with_state(state)
}

/// Bearer-token check. Tokens are stored hashed and compared in constant time.
async fn require_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(AdminError::unauthorized)?;
    let tokens = state.service.store().admin_tokens().await?;
    let name = admin_token::find(&tokens, presented).ok_or_else(AdminError::unauthorized)?;
    req.extensions_mut().insert(Actor(name));
    Ok(next.run(req).await)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.service.store().ping().await {
        Ok(()) => Json(json!({"status": "ok", "database": state.service.store().backend()}))
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": state.service.store().backend()})),
            )
                .into_response()
        }
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    serial: Option<String>,
    udid: Option<String>,
    enrolled: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_devices(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let devices = state
        .service
        .store()
        .list_devices(&DeviceFilter {
            serial: q.serial,
            udid: q.udid,
            enrolled: q.enrolled,
            cursor: q.cursor,
            limit,
        })
        .await?;
    let next_cursor = if devices.len() as u32 == limit {
        devices.last().map(|d| d.udid.clone())
    } else {
        None
    };
    let devices: Vec<Value> = devices.iter().map(crate::views::device).collect();
    Ok(Json(
        json!({"devices": devices, "next_cursor": next_cursor}),
    ))
}

async fn show_device(
    State(state): State<AppState>,
    enroll: Option<Extension<std::sync::Arc<crate::service::enrollment::EnrollmentService>>>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let store = state.service.store();
    let device = store
        .device(&udid)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("no device {udid}")))?;
    let pins = store
        .escrowed_pins(&crate::store::PinFilter {
            serial: None,
            udid: Some(udid.clone()),
        })
        .await?;
    let dep_record = match &device.serial_number {
        Some(serial) => store.dep_device(serial).await?,
        None => None,
    };
    let ade = store.ade_enrollment(&udid).await?;
    let mut view = crate::views::device(&device);
    if let Value::Object(map) = &mut view {
        map.insert("lock_wipe".into(), crate::views::lock_wipe(&pins));
        map.insert(
            "dep".into(),
            dep_record
                .as_ref()
                .map_or(Value::Null, crate::dep::views::device),
        );
        map.insert(
            "ade".into(),
            ade.as_ref()
                .map_or(Value::Null, crate::views::ade_enrollment),
        );
        map.extend(
            super::enroll::device_extras(enroll.as_deref().map(|e| e.as_ref()), &device).await,
        );
    }
    Ok(Json(view))
}

async fn delete_device(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    if !state.service.delete_device(&udid).await? {
        return Err(AdminError::not_found(format!("no device {udid}")));
    }
    state
        .service
        .store()
        .audit_append(&AuditRecord {
            at: now_ms(),
            actor: actor.0,
            action: "device.delete".into(),
            target: udid.clone(),
            detail: json!({}),
        })
        .await?;
    Ok(Json(json!({"deleted": udid})))
}

async fn device_commands(
    State(state): State<AppState>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let store = state.service.store();
    if store.device(&udid).await?.is_none() {
        return Err(AdminError::not_found(format!("no device {udid}")));
    }
    let entries = store.device_commands(&udid, 500).await?;
    let commands: Vec<Value> = entries.iter().map(|e| entry_json(e, false)).collect();
    Ok(Json(json!({"commands": commands})))
}

/// A command from the API: typed JSON with Apple's key names plus `request_type`, or
/// `{"plist": "<base64 of a command plist>"}`.
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

pub(super) fn parse_json(body: &Bytes) -> Result<Value, AdminError> {
    serde_json::from_slice(body)
        .map_err(|e| AdminError::bad_request(format!("body is not valid JSON: {e}")))
}

async fn enqueue_one(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(udid): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let command = parse_command(&parse_json(&body)?)?;
    let outcome = state
        .service
        .enqueue(&command, std::slice::from_ref(&udid))
        .await?;
    if !outcome.results.iter().any(|r| r.queued) {
        return Err(AdminError::not_found(format!("no device {udid}")));
    }
    audit_enqueue(
        &state,
        &actor,
        &outcome.command_uuid,
        &outcome.request_type,
        1,
    )
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

async fn enqueue_many(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let value = parse_json(&body)?;
    let devices: Vec<String> = value
        .get("devices")
        .and_then(Value::as_array)
        .ok_or_else(|| AdminError::bad_request("\"devices\" must be an array of UDIDs"))?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| AdminError::bad_request("\"devices\" must contain only strings"))?;
    let command = parse_command(
        value
            .get("command")
            .ok_or_else(|| AdminError::bad_request("\"command\" is required"))?,
    )?;
    // A fleet-wide request holds 100k UDIDs: free the parsed copies before the work.
    drop((value, body));
    let outcome = state.service.enqueue(&command, &devices).await?;
    drop(devices);
    let queued = outcome.results.iter().filter(|r| r.queued).count();
    audit_enqueue(
        &state,
        &actor,
        &outcome.command_uuid,
        &outcome.request_type,
        queued,
    )
    .await?;
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
        tracing::error!(error = %e, "serializing the enqueue answer failed");
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    })?;
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response())
}

async fn audit_enqueue(
    state: &AppState,
    actor: &Actor,
    uuid: &str,
    request_type: &str,
    targets: usize,
) -> Result<(), AdminError> {
    state
        .service
        .store()
        .audit_append(&AuditRecord {
            at: now_ms(),
            actor: actor.0.clone(),
            action: "command.enqueue".into(),
            target: uuid.to_string(),
            detail: json!({"request_type": request_type, "targets": targets}),
        })
        .await?;
    Ok(())
}

async fn command_status(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let view = state
        .service
        .store()
        .command(&uuid)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("no command {uuid}")))?;
    let payload = if view.payload_sealed {
        state
            .service
            .open_payload(&view.command_uuid, &view.payload)?
    } else {
        view.payload.clone()
    };
    let mut command = plist::Value::from_reader_xml(payload.as_slice())
        .map(|v| plist_to_json(&v))
        .unwrap_or(Value::Null);
    // The PIN is revealed only through the audited unlock-pins endpoint.
    if let Some(Value::Object(keys)) = command.pointer_mut("/Command")
        && keys.contains_key("PIN")
    {
        keys.insert("PIN".into(), Value::String("(escrowed)".into()));
    }
    let devices: Vec<Value> = view.entries.iter().map(|e| entry_json(e, true)).collect();
    Ok(Json(json!({
        "command_uuid": view.command_uuid,
        "request_type": view.request_type,
        "created_at": rfc3339(view.created_at),
        "command": command,
        "devices": devices,
    })))
}

async fn cancel_command(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let outcome = state.service.cancel_command(&uuid).await?;
    state
        .service
        .store()
        .audit_append(&AuditRecord {
            at: now_ms(),
            actor: actor.0,
            action: "command.cancel".into(),
            target: uuid.clone(),
            detail: json!({"canceled": outcome.canceled.len()}),
        })
        .await?;
    let delivered: Vec<Value> = outcome
        .already_delivered
        .iter()
        .map(|(id, at)| json!({"enrollment_id": id, "delivered_at": at.map(rfc3339)}))
        .collect();
    if outcome.canceled.is_empty() && !delivered.is_empty() {
        let when = outcome
            .already_delivered
            .iter()
            .filter_map(|(_, at)| *at)
            .min()
            .map(rfc3339)
            .unwrap_or_else(|| "an earlier time".into());
        return Err(AdminError::new(
            StatusCode::CONFLICT,
            "already_delivered",
            format!("command {uuid} was already delivered at {when}; it can no longer be canceled"),
        ));
    }
    Ok(Json(
        json!({"canceled": outcome.canceled, "already_delivered": delivered}),
    ))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

async fn audit_list(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    let entries = state
        .service
        .store()
        .audit_list(q.limit.unwrap_or(100).clamp(1, 1000), q.before)
        .await?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "at": rfc3339(e.record.at), "actor": e.record.actor,
                "action": e.record.action, "target": e.record.target, "detail": e.record.detail,
            })
        })
        .collect();
    Ok(Json(json!({"entries": entries})))
}

fn entry_json(e: &QueueEntryView, with_result: bool) -> Value {
    let mut v = crate::views::queue_entry(e);
    if with_result
        && let Some(raw) = &e.result
        && let Value::Object(map) = &mut v
    {
        let result = plist::Value::from_reader_xml(raw.as_slice())
            .map(|p| plist_to_json(&p))
            .unwrap_or(Value::Null);
        map.insert("result".into(), result);
    }
    v
}
