//! The device page's upkeep actions (`/devices/{udid}`, the "Upkeep" card): ask for the
//! inventory now, rotate the FileVault personal recovery key, set, rotate or clear the
//! Recovery Lock password, and forget the device. Each calls the service its API route calls
//! (`POST /api/v1/inventory/refresh`, `…/filevault/rotate`, `…/recovery-lock`,
//! `DELETE /api/v1/devices/{udid}`), so the escrow-before-send rule and the audit are theirs.
//! A Recovery Lock password typed here goes into the vault; the page never shows it back
//! (reveal it from the Recovery Lock card, audited).

use super::device::{Forms, page, refused, resolve};
use super::page::{ConsoleError, Notice};
use super::session::Console;
use crate::http::AppState;
use crate::service::ServiceError;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices/{udid}/inventory/refresh", post(refresh_inventory))
        .route("/devices/{udid}/filevault/rotate", post(rotate_filevault))
        .route("/devices/{udid}/recovery-lock", post(set_recovery_lock))
        .route(
            "/devices/{udid}/recovery-lock/clear",
            post(clear_recovery_lock),
        )
        .route("/devices/{udid}/delete", post(delete))
}

/// The page again: what the service queued (`Ok`, the notice's text), or its refusal beside
/// the Upkeep card.
async fn answer(
    state: &AppState,
    console: &Console,
    udid: &str,
    outcome: Result<String, ServiceError>,
) -> Result<Response, ConsoleError> {
    match outcome {
        Ok(text) => {
            page(
                state,
                console,
                udid,
                StatusCode::OK,
                Notice::done(text),
                Forms::default(),
                None,
            )
            .await
        }
        Err(e) => refused(state, console, udid, e, |f, m| f.upkeep_error = Some(m)).await,
    }
}

async fn refresh_inventory(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let outcome = state
        .inventory
        .refresh(std::slice::from_ref(&udid), None, console.name())
        .await
        .map(|_| {
            "Inventory asked for: the Mac answers when it next connects (push it to hurry)."
                .to_string()
        });
    answer(&state, &console, &udid, outcome).await
}

async fn rotate_filevault(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let outcome = state
        .service
        .rotate_filevault_key(&udid, console.name())
        .await
        .map(|r| {
            format!(
                "Rotation queued ({}): the Mac makes a new personal recovery key and Russet \
                 escrows it; the old one stays in the vault.",
                r.command_uuid
            )
        });
    answer(&state, &console, &udid, outcome).await
}

#[derive(Deserialize)]
struct RecoveryLockForm {
    /// Empty for a generated password.
    password: Option<String>,
}

async fn set_recovery_lock(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(form): Form<RecoveryLockForm>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let password = form.password.filter(|p| !p.is_empty());
    let outcome = state
        .service
        .set_recovery_lock(&udid, password, console.name())
        .await
        .map(|i| {
            let what = if i.replaces_current {
                "rotation"
            } else {
                "set"
            };
            let how = if i.generated {
                "a generated password"
            } else {
                "your password"
            };
            format!(
                "Recovery Lock {what} queued ({}) with {how}, escrowed before it was sent: \
                 reveal it from the Recovery Lock card.",
                i.command_uuid
            )
        });
    answer(&state, &console, &udid, outcome).await
}

async fn clear_recovery_lock(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let outcome = state
        .service
        .clear_recovery_lock(&udid, console.name())
        .await
        .map(|i| {
            format!(
                "Recovery Lock clear queued ({}); the old password stays in the vault.",
                i.command_uuid
            )
        });
    answer(&state, &console, &udid, outcome).await
}

#[derive(Deserialize)]
struct DeleteForm {
    confirm: Option<String>,
}

/// Forget the device (its escrowed secrets stay in the vault). The box must be ticked: the
/// Mac stays managed until it is wiped or unenrolled, but Russet no longer knows it.
async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    if form.confirm.as_deref() != Some("yes") {
        let message = "tick the box to confirm: Russet forgets this Mac".to_string();
        let forms = Forms {
            upkeep_error: Some(message.clone()),
            ..Forms::default()
        };
        return page(
            &state,
            &console,
            &udid,
            StatusCode::BAD_REQUEST,
            Notice::refused(message),
            forms,
            None,
        )
        .await;
    }
    match state.service.delete_device(&udid, console.name()).await {
        Ok(()) => Ok(Redirect::to("/devices").into_response()),
        Err(e) => refused(&state, &console, &udid, e, |f, m| f.upkeep_error = Some(m)).await,
    }
}
