//! The admin JSON API under `/api/v1` (bearer-token auth and the route's permission, see
//! `permissions.rs`) and `/healthz`: the router. Each area's handlers live in their own module
//! with their own `routes()`.

use super::extractor::require_admin;
use super::{AdminError, AppState, MAX_ADMIN_BODY};
use super::{
    admins, apns, audit, commands, ddm, dep, devices, enroll_links, filevault, golden_images,
    groups, inventory, lockwipe, metrics, os_updates, parallels_activation, profiles,
    recovery_lock,
};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

const OPENAPI: &str = include_str!("openapi.json");

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(devices::routes())
        .merge(commands::routes())
        .merge(lockwipe::routes())
        .merge(recovery_lock::routes())
        .merge(apns::routes())
        .merge(enroll_links::routes())
        .merge(audit::routes())
        .merge(dep::routes())
        .merge(groups::routes())
        .merge(profiles::routes())
        .merge(inventory::routes())
        .merge(admins::routes())
        .merge(filevault::routes())
        .merge(golden_images::routes())
        .merge(parallels_activation::routes())
        .merge(os_updates::routes())
        .merge(ddm::routes())
        .route("/openapi.json", get(openapi))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(metrics::routes(state.clone()))
        .nest("/api/v1", api)
        .fallback(|| async { AdminError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .with_state(state)
}

/// Liveness for load balancers: a health report, not an error (503 while the database is
/// unreachable; the reason goes to the log only).
async fn healthz(State(state): State<AppState>) -> Response {
    let backend = state.service.backend();
    match state.service.ping().await {
        Ok(()) => Json(json!({"status": "ok", "database": backend})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": backend})),
            )
                .into_response()
        }
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
