//! `/api/v1/ddm/declarations`: declarations an admin uploads for a group, served by the DDM
//! channel (issue 17, "Beyond"; `russet ddm …`). The rules are in `ddm::uploads`.

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
        .route("/ddm/declarations", get(list).post(upload))
        .route("/ddm/declarations/{identifier}", delete(remove))
}

/// `{"group", "declaration": {"Type", "Identifier", "Payload"}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upload {
    group: String,
    declaration: Value,
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let list: Vec<Value> = state
        .ddm
        .uploaded_declarations()
        .await?
        .iter()
        .map(views::uploaded_declaration)
        .collect();
    Ok(Json(json!({"declarations": list})))
}

async fn upload(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<Upload>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let record = state
        .ddm
        .upload_declaration(&body.group, &body.declaration, actor.name())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(views::uploaded_declaration(&record)),
    ))
}

async fn remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let record = state
        .ddm
        .delete_declaration(&identifier, actor.name())
        .await?;
    Ok(Json(
        json!({"deleted": views::uploaded_declaration(&record)}),
    ))
}
