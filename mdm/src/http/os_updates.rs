//! `/api/v1/os-updates`: OS updates enforced per group through Declarative Device Management
//! (contract v2, "Software updates (Declarative Device Management)"). The rules are in
//! `ddm::os_updates`; handlers extract, call it, and render with `ddm::views`.

use super::extractor::{Actor, JsonBody};
use super::{AdminError, AppState};
use crate::ddm::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/os-updates", get(list).post(create))
        .route("/os-updates/{id}", delete(remove))
}

/// `{"group", "target_os_version", "target_build_version"?, "deadline", "details_url"?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOsUpdate {
    group: String,
    target_os_version: String,
    target_build_version: Option<String>,
    deadline: String,
    details_url: Option<String>,
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let updates: Vec<Value> = state
        .ddm
        .os_updates()
        .await?
        .iter()
        .map(views::os_update_status)
        .collect();
    Ok(Json(json!({"os_updates": updates})))
}

async fn create(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<CreateOsUpdate>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let record = state
        .ddm
        .create_os_update(
            &body.group,
            &body.target_os_version,
            body.target_build_version.as_deref(),
            &body.deadline,
            body.details_url.as_deref(),
            actor.name(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(views::os_update(&record))))
}

async fn remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AdminError::not_found(format!("no OS update {id}")))?;
    let record = state.ddm.delete_os_update(id, actor.name()).await?;
    Ok(Json(json!({"deleted": views::os_update(&record)})))
}
