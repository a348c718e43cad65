//! Admin accounts: `GET/POST /api/v1/admins`, `DELETE /api/v1/admins/{name}`. The rules
//! (names, roles, the last admin, audit) are in `service::admins`.

use super::extractor::{Actor, JsonBody};
use super::{AdminError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admins", get(list).post(create))
        .route("/admins/{name}", delete(revoke))
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    role: String,
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let admins = state.service.admins().await?;
    Ok(Json(json!({
        "admins": admins.iter().map(crate::views::admin).collect::<Vec<_>>()
    })))
}

/// The new admin and its token, which is shown this once.
async fn create(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let created = state
        .service
        .create_admin(&body.name, &body.role, actor.name())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"admin": crate::views::admin(&created.admin), "token": created.token})),
    ))
}

async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    state.service.revoke_admin(&name, actor.name()).await?;
    Ok(Json(json!({"revoked": name})))
}
