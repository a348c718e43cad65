//! Admin endpoints for configuration profiles under `/api/v1/profiles`: the catalog (list,
//! upload, show, delete), assignments, and the Custom Settings builder. Handlers are short:
//! parse, call `crate::profiles`, render with `profiles::views`.

use super::extractor::{Actor, AdminQuery, JsonBody};
use super::{AdminError, AppState};
use crate::profiles::{ProfileError, views};
use crate::protocol::mobileconfig::custom_settings::{self, CustomSettings};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/profiles", get(list).post(upload))
        .route("/profiles/custom-settings", post(build_custom_settings))
        .route("/profiles/{identifier}", get(show).delete(delete))
        .route(
            "/profiles/{identifier}/assignments",
            post(assign).delete(unassign),
        )
        .route("/profiles/{identifier}/status", get(status))
        .route("/profiles/verify", post(verify))
        .route("/devices/{udid}/profiles", get(device_profiles))
}

async fn status(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(views::status(
        &state.profiles.status(&identifier).await?,
    )))
}

async fn device_profiles(
    State(state): State<AppState>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let rows = state.profiles.device_profiles(&udid).await?;
    let profiles: Vec<Value> = rows.iter().map(views::device_state).collect();
    Ok(Json(json!({"profiles": profiles})))
}

#[derive(Deserialize)]
struct Verify {
    /// UDIDs or serial numbers.
    #[serde(default)]
    devices: Vec<String>,
    group: Option<String>,
}

/// A ProfileList now from the Macs named; what drifted is repaired on their answers.
async fn verify(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Verify>,
) -> Result<Json<Value>, AdminError> {
    let asked = state
        .profiles
        .verify(&body.devices, body.group.as_deref())
        .await?;
    Ok(Json(json!({"asked": asked})))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    deleted: bool,
}

async fn list(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<ListQuery>,
) -> Result<Json<Value>, AdminError> {
    let profiles: Vec<Value> = state
        .profiles
        .list(q.deleted)
        .await?
        .iter()
        .map(views::profile)
        .collect();
    Ok(Json(json!({"profiles": profiles})))
}

#[derive(Deserialize)]
struct Upload {
    /// The `.mobileconfig` (XML or CMS-signed), base64.
    mobileconfig: String,
}

/// 201 with the new version, or 200 when the bytes are the latest version's already.
fn created(v: Value, created: bool) -> (StatusCode, Json<Value>) {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(v))
}

async fn upload(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<Upload>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let compact: String = body
        .mobileconfig
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = STANDARD.decode(compact).map_err(|_| {
        AdminError::bad_request("mobileconfig must be the .mobileconfig file in base64")
    })?;
    let up = state.profiles.upload(&bytes, actor.name()).await?;
    Ok(created(views::uploaded(&up), up.created))
}

#[derive(Deserialize)]
struct CustomSettingsBody {
    identifier: String,
    name: String,
    domain: String,
    settings: Value,
}

/// Builds a managed-preferences profile and stores it like an upload; the answer carries the
/// built `.mobileconfig` (base64) for the admin's records.
async fn build_custom_settings(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<CustomSettingsBody>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let cs = CustomSettings {
        identifier: body.identifier,
        name: body.name,
        domain: body.domain,
        settings: custom_settings::settings_from_json(&body.settings)
            .map_err(ProfileError::from)?,
    };
    let (up, built) = state.profiles.custom_settings(&cs, actor.name()).await?;
    let mut v = views::uploaded(&up);
    v["mobileconfig"] = json!(STANDARD.encode(built));
    Ok(created(v, up.created))
}

async fn show(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(views::detail(
        &state.profiles.show(&identifier).await?,
    )))
}

async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let d = state.profiles.delete(&identifier, actor.name()).await?;
    let mut v = views::detail(&d.detail);
    v["reconciled"] = serde_json::json!(d.reconciled);
    Ok(Json(v))
}

#[derive(Deserialize)]
struct Targets {
    #[serde(default)]
    groups: Vec<String>,
    /// UDIDs or serial numbers.
    #[serde(default)]
    devices: Vec<String>,
}

async fn assign(
    State(state): State<AppState>,
    actor: Actor,
    Path(identifier): Path<String>,
    JsonBody(body): JsonBody<Targets>,
) -> Result<Json<Value>, AdminError> {
    let out = state
        .profiles
        .assign(&identifier, &body.groups, &body.devices, actor.name())
        .await?;
    Ok(Json(views::assign_outcome(&identifier, "added", &out)))
}

async fn unassign(
    State(state): State<AppState>,
    actor: Actor,
    Path(identifier): Path<String>,
    JsonBody(body): JsonBody<Targets>,
) -> Result<Json<Value>, AdminError> {
    let out = state
        .profiles
        .unassign(&identifier, &body.groups, &body.devices, actor.name())
        .await?;
    Ok(Json(views::assign_outcome(&identifier, "removed", &out)))
}
