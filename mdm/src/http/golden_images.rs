//! `/api/v1/golden-images`: the golden image catalog and its group assignments (contract v2,
//! "Golden images"). The rules are in `service::golden_images`, delivery to Macs in
//! `profiles::golden_images` (which every change goes through); handlers extract, call it, and
//! render with `views`.

use super::extractor::{Actor, AdminQuery, JsonBody};
use super::{AdminError, AppState};
use crate::service::golden_images::{
    GoldenImageChange, ImageInput, NewGoldenImage, UrlWarning, VerifyEvent, url_warnings,
};
use crate::views;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/golden-images", get(list).post(create))
        .route(
            "/golden-images/{name}",
            get(show).patch(change).delete(delete),
        )
        .route(
            "/golden-images/{name}/groups",
            post(assign).delete(unassign),
        )
        .route("/golden-images/{name}/verify", post(verify))
}

/// `"check_urls"` is absent: check (air-gapped admins and offline tests say `false`).
fn yes() -> bool {
    true
}

/// The image's view with the HEAD check's warnings (empty when all looked right or the check
/// was skipped).
fn with_warnings(mut v: Value, warnings: &[UrlWarning]) -> Value {
    v["warnings"] = json!(warnings);
    v
}

/// `{"url", "sha256"}`: the SHA-256 as 64 hex, a `shasum -a 256` line or a `.sha256.txt`
/// file's content.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    url: String,
    sha256: String,
}

impl From<Image> for ImageInput {
    fn from(i: Image) -> Self {
        ImageInput {
            url: i.url,
            sha256: i.sha256,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGoldenImage {
    name: String,
    description: Option<String>,
    apple_silicon: Option<Image>,
    intel: Option<Image>,
    /// HEAD-check the URLs (a warning, never a refusal).
    #[serde(default = "yes")]
    check_urls: bool,
}

/// Absent keeps a field; `null` removes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchGoldenImage {
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    apple_silicon: Option<Option<Image>>,
    #[serde(default, deserialize_with = "present")]
    intel: Option<Option<Image>>,
    /// HEAD-check the URLs that change (a warning, never a refusal).
    #[serde(default = "yes")]
    check_urls: bool,
}

/// A key that is present, `null` or not: `Some(None)` for `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `{"groups": [group name, …]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Groups {
    groups: Vec<String>,
}

/// `?confirm=true`: deleting is irreversible.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    confirm: bool,
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let images: Vec<Value> = state
        .service
        .golden_images()
        .await?
        .iter()
        .map(views::golden_image)
        .collect();
    Ok(Json(json!({"golden_images": images})))
}

async fn create(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<CreateGoldenImage>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let image = state
        .profiles
        .create_golden_image(
            NewGoldenImage {
                name: body.name,
                description: body.description,
                apple_silicon: body.apple_silicon.map(Into::into),
                intel: body.intel.map(Into::into),
            },
            actor.name(),
        )
        .await?;
    let warnings = if body.check_urls {
        url_warnings(&image.record, None).await
    } else {
        Vec::new()
    };
    Ok((
        StatusCode::CREATED,
        Json(with_warnings(views::golden_image(&image), &warnings)),
    ))
}

async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let image = state.service.golden_image(&name).await?;
    Ok(Json(views::golden_image(&image)))
}

async fn change(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PatchGoldenImage>,
) -> Result<Json<Value>, AdminError> {
    let change = GoldenImageChange {
        description: body.description,
        apple_silicon: body.apple_silicon.map(|a| a.map(Into::into)),
        intel: body.intel.map(|a| a.map(Into::into)),
    };
    let check_urls = body.check_urls;
    // What it was, so only a URL that changes is checked.
    let before = if check_urls {
        Some(state.service.golden_image(&name).await?.record)
    } else {
        None
    };
    let image = state
        .profiles
        .change_golden_image(&name, change, actor.name())
        .await?;
    let warnings = match &before {
        Some(before) => url_warnings(&image.record, Some(before)).await,
        None => Vec::new(),
    };
    Ok(Json(with_warnings(views::golden_image(&image), &warnings)))
}

async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    AdminQuery(query): AdminQuery<DeleteQuery>,
) -> Result<Json<Value>, AdminError> {
    let freed = state
        .profiles
        .delete_golden_image(&name, query.confirm, actor.name())
        .await?;
    Ok(Json(json!({"deleted": name, "groups_freed": freed})))
}

async fn assign(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Groups>,
) -> Result<Json<Value>, AdminError> {
    let change = state
        .profiles
        .assign_golden_image(&name, &body.groups, actor.name())
        .await?;
    Ok(Json(views::golden_image_groups(&change, true)))
}

async fn unassign(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Groups>,
) -> Result<Json<Value>, AdminError> {
    let change = state
        .profiles
        .unassign_golden_image(&name, &body.groups, actor.name())
        .await?;
    Ok(Json(views::golden_image_groups(&change, false)))
}

/// `?stream=true`: NDJSON progress.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    #[serde(default)]
    stream: bool,
}

fn progress_line(arch: &str, bytes: u64, total: Option<u64>) -> Value {
    json!({"event": "progress", "architecture": arch, "bytes": bytes, "total": total})
}

fn done_line(name: &str, ok: bool) -> Value {
    json!({"event": "done", "golden_image": name, "ok": ok})
}

/// Download each image and compare its SHA-256: `{"golden_image", "ok", "results": […]}`
/// (an unknown image is a 404 before anything is downloaded).
/// With `?stream=true`, NDJSON: `progress` lines (about every MiB or second), one `result`
/// line per architecture, then `done` (or `error` when verify itself failed).
async fn verify(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    AdminQuery(query): AdminQuery<VerifyQuery>,
) -> Result<Response, AdminError> {
    // A 404 before anything is streamed, so an unknown name is an error status either way.
    let image = state.service.golden_image(&name).await?;
    let name = image.record.name;
    let service = state.service.clone();
    let actor = actor.name().to_owned();
    if !query.stream {
        // Downloading an image takes longer than the API's request timeout, which covers the
        // handler until the answer's head only: so the head goes now and the JSON follows as
        // the body when the verify ends. It runs in its own task, so it ends (and is audited)
        // even when the client goes away.
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        tokio::spawn(async move {
            let body = match service.verify_golden_image(&name, &actor, |_| {}).await {
                Ok(results) => {
                    let ok = results.iter().all(|r| r.matched);
                    json!({"golden_image": name, "ok": ok, "results": results})
                }
                Err(e) => json!({"error": {"message": AdminError::from(e).public_message()}}),
            };
            let _ = tx.send(body.to_string());
        });
        let body = futures::stream::once(async move {
            Ok::<_, std::convert::Infallible>(Bytes::from(rx.await.unwrap_or_else(|_| {
                json!({"error": {"message": "the verify ended without a result"}}).to_string()
            })))
        });
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(body),
        )
            .into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let events = tx.clone();
        let outcome = service
            .verify_golden_image(&name, &actor, move |event| {
                let line = match event {
                    VerifyEvent::Progress { arch, progress } => {
                        progress_line(arch.key(), progress.bytes, progress.total)
                    }
                    VerifyEvent::Result(r) => {
                        let mut v = json!(r);
                        v["event"] = json!("result");
                        v
                    }
                };
                // The client may have gone away; the verify still ends and is audited.
                let _ = events.send(line.to_string());
            })
            .await;
        let line = match outcome {
            Ok(results) => done_line(&name, results.iter().all(|r| r.matched)),
            Err(e) => json!({"event": "error", "message": AdminError::from(e).public_message()}),
        };
        let _ = tx.send(line.to_string());
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| {
            (
                Ok::<_, std::convert::Infallible>(Bytes::from(line + "\n")),
                rx,
            )
        })
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}
