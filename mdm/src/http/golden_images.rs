//! `/api/v1/golden-images`: the golden image catalog and its group assignments (contract v2,
//! "Golden images"). The rules are in `service::golden_images`, delivery to Macs in
//! `profiles::golden_images` (which every change goes through); handlers extract, call it, and
//! render with `views`.

use super::extractor::{Actor, AdminQuery, JsonBody};
use super::{AdminError, AppState};
use crate::service::golden_images::{GoldenImageChange, ImageInput, NewGoldenImage};
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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
    Ok((StatusCode::CREATED, Json(views::golden_image(&image))))
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
    let image = state
        .profiles
        .change_golden_image(&name, change, actor.name())
        .await?;
    Ok(Json(views::golden_image(&image)))
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
