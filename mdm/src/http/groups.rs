//! `/api/v1/groups`: device groups (contract v2, "Groups"). Static groups list their members
//! (by UDID or serial number); a `filter` makes a smart group. The rules are in
//! `service::groups`; handlers extract, call it, and render with `views`.

use super::extractor::{Actor, JsonBody};
use super::{AdminError, AppState};
use crate::service::groups::{GroupChange, NewGroup};
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{name}", get(show).patch(update).delete(delete))
        .route("/groups/{name}/devices", post(add).delete(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    description: Option<String>,
    /// The device filter language; makes a smart group.
    filter: Option<String>,
}

/// Absent keeps a field; `null` clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchGroup {
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    filter: Option<Option<String>>,
}

/// A key that is present, `null` or not: `Some(None)` for `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `{"devices": [UDID or serial number, …]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Devices {
    devices: Vec<String>,
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let groups: Vec<Value> = state
        .service
        .groups()
        .await?
        .iter()
        .map(views::group)
        .collect();
    Ok(Json(json!({"groups": groups})))
}

async fn create(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<CreateGroup>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let details = state
        .service
        .create_group(
            NewGroup {
                name: body.name,
                description: body.description,
                filter: body.filter,
            },
            actor.name(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(views::group_details(&details))))
}

async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let details = state.service.group(&name).await?;
    Ok(Json(views::group_details(&details)))
}

async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PatchGroup>,
) -> Result<Json<Value>, AdminError> {
    let change = GroupChange {
        description: body.description,
        filter: body.filter,
    };
    let details = state
        .service
        .update_group(&name, change, actor.name())
        .await?;
    Ok(Json(views::group_details(&details)))
}

async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    state.service.delete_group(&name, actor.name()).await?;
    Ok(Json(json!({"deleted": name})))
}

async fn add(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Devices>,
) -> Result<Json<Value>, AdminError> {
    let change = state
        .service
        .add_group_devices(&name, &body.devices, actor.name())
        .await?;
    Ok(Json(views::group_membership(&change, true)))
}

async fn remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Devices>,
) -> Result<Json<Value>, AdminError> {
    let change = state
        .service
        .remove_group_devices(&name, &body.devices, actor.name())
        .await?;
    Ok(Json(views::group_membership(&change, false)))
}
