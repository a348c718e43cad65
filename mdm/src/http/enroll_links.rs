//! Admin endpoints for enrollment: links (who may download the enrollment profile) and device
//! identities that expire soon.

use super::extractor::{Actor, AdminQuery, JsonBody};
use super::{AdminError, AppState};
use crate::service::devices::EXPIRY_WARNING_DAYS;
use crate::timefmt::{parse_duration_secs, rfc3339_opt};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/enroll-links", post(create_link))
        .route("/identities/expiring", get(expiring_identities))
}

#[derive(Deserialize)]
struct LinkRequest {
    uses: Option<i64>,
    /// Seconds, or a duration such as `"30m"`, `"24h"`, `"7d"`.
    expires_in: Option<Value>,
}

async fn create_link(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(req): JsonBody<LinkRequest>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let expires_in = match &req.expires_in {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().unwrap_or(0)),
        Some(Value::String(s)) => Some(parse_duration_secs(s).ok_or_else(|| {
            AdminError::bad_request("\"expires_in\": use seconds or e.g. \"24h\", \"7d\"")
        })?),
        Some(_) => {
            return Err(AdminError::bad_request(
                "\"expires_in\" must be a number or string",
            ));
        }
    };
    let link = state
        .enroll
        .create_link(req.uses, expires_in, actor.name())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "url": link.url,
            "token": link.token,
            "uses": link.uses,
            "expires_at": rfc3339_opt(link.expires_at),
        })),
    ))
}

#[derive(Deserialize)]
struct ExpiringQuery {
    within_days: Option<i64>,
    expiring_within_days: Option<i64>,
}

/// `GET /api/v1/identities/expiring?within_days=30`: devices whose identity expires soon.
async fn expiring_identities(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<ExpiringQuery>,
) -> Result<Json<Value>, AdminError> {
    let days = q
        .within_days
        .or(q.expiring_within_days)
        .unwrap_or(EXPIRY_WARNING_DAYS)
        .clamp(0, 3650);
    let list = state.service.expiring_identities(days).await?;
    let devices: Vec<Value> = list
        .iter()
        .map(|d| {
            json!({
                "udid": d.udid,
                "serial_number": d.serial_number,
                "certificate_sha256": d.identity_cert_sha256,
                "not_after": rfc3339_opt(Some(d.identity_not_after)),
            })
        })
        .collect();
    Ok(Json(json!({"within_days": days, "devices": devices})))
}
