//! `/api/v1/groups/{name}/parallels-activation` and `/api/v1/parallels-activations`: Parallels
//! Desktop activation per group (issue 15). The rules and the sealed license key are in
//! `service::parallels_activation`, delivery to Macs in `profiles::parallels_activation`
//! (which every change goes through); handlers extract, call it, and render with `views`.
//! No answer ever carries the license key, only its last four characters.

use super::extractor::{Actor, JsonBody};
use super::{AdminError, AppState};
use crate::service::parallels_activation::NewActivation;
use crate::views;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/parallels-activations", get(list))
        .route(
            "/groups/{name}/parallels-activation",
            get(show).put(set).delete(remove),
        )
}

/// `{"experience": "license_key"|"sso", "license_key"?, "sso_texts"?: {name: text}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetActivation {
    experience: String,
    license_key: Option<String>,
    #[serde(default)]
    sso_texts: BTreeMap<String, String>,
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let all: Vec<Value> = state
        .service
        .parallels_activations()
        .await?
        .iter()
        .map(views::parallels_activation)
        .collect();
    Ok(Json(json!({"parallels_activations": all})))
}

async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let a = state.service.parallels_activation(&name).await?;
    Ok(Json(views::parallels_activation(&a)))
}

async fn set(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SetActivation>,
) -> Result<Json<Value>, AdminError> {
    let new = NewActivation {
        experience: body.experience,
        license_key: body.license_key,
        sso_texts: body.sso_texts,
    };
    let a = state
        .profiles
        .set_parallels_activation(&name, &new, actor.name())
        .await?;
    Ok(Json(views::parallels_activation(&a)))
}

async fn remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let a = state
        .profiles
        .remove_parallels_activation(&name, actor.name())
        .await?;
    Ok(Json(json!({"removed": views::parallels_activation(&a)})))
}
