//! `GET /api/v1/audit`: the audit log, newest first.

use super::extractor::AdminQuery;
use super::{AdminError, AppState};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<AuditQuery>,
) -> Result<Json<Value>, AdminError> {
    let entries = state
        .service
        .audit_log(q.limit.unwrap_or(100), q.before)
        .await?;
    Ok(Json(crate::views::audit_log(&entries)))
}
