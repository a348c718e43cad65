//! Admin endpoints for DEP under `/api/v1/dep`: links, device records, sync, profiles,
//! assignment and disowning. Handlers are short: parse, call `crate::dep`, map the result.

use super::extractor::{Actor, AdminQuery, JsonBody, parse_json};
use super::{AdminError, AppState, dep_public_message};
use crate::dep::{DepStatus, LinkStatus, views};
use crate::store::dep::DepDeviceFilter;
use crate::timefmt::now_ms;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dep/links", get(list_links).post(create_link))
        .route("/dep/links/{name}", get(show_link))
        .route("/dep/links/{name}/certificate", get(certificate))
        .route("/dep/links/{name}/token", put(set_token))
        .route("/dep/devices", get(list_devices))
        .route("/dep/sync", post(sync))
        .route("/dep/profiles", get(list_profiles).post(create_profile))
        .route("/dep/profiles/{uuid}/devices", post(assign).delete(remove))
        .route("/dep/disown", post(disown))
}

fn link_view(status: &LinkStatus) -> Value {
    views::link(&status.link, &status.counts, now_ms())
}

async fn list_links(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let links: Vec<Value> = state
        .dep
        .links_status()
        .await?
        .iter()
        .map(link_view)
        .collect();
    Ok(Json(json!({"links": links})))
}

async fn show_link(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(link_view(&state.dep.link_status(&name).await?)))
}

#[derive(Deserialize)]
struct CreateLink {
    name: String,
    #[serde(default)]
    force: bool,
}

async fn create_link(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<CreateLink>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let link = state
        .dep
        .create_link(&body.name, body.force, actor.name())
        .await?;
    let mut view = link_view(&state.dep.link_status(&body.name).await?);
    view["certificate_pem"] = json!(link.cert_pem);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn certificate(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let link = state.dep.link(&name).await?;
    Ok(Json(
        json!({"name": link.name, "certificate_pem": link.cert_pem}),
    ))
}

#[derive(Deserialize)]
struct ForceQuery {
    force: Option<bool>,
}

/// Body: the token file as base64 (bare, as a JSON string, or `{"token": "…", "force"}`), or
/// the JSON token itself.
async fn set_token(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    AdminQuery(q): AdminQuery<ForceQuery>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let mut force = q.force.unwrap_or(false);
    let file: Vec<u8> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(o)) if o.contains_key("consumer_key") => body.to_vec(),
        Ok(Value::Object(o)) => {
            force |= o.get("force").and_then(Value::as_bool).unwrap_or(false);
            let t = o.get("token").and_then(Value::as_str).ok_or_else(|| {
                AdminError::bad_request("\"token\" (the token file, base64) is required")
            })?;
            token_bytes(t)?
        }
        Ok(Value::String(s)) => token_bytes(&s)?,
        _ => {
            let s = std::str::from_utf8(&body)
                .map_err(|_| AdminError::bad_request("send the token file as base64"))?;
            token_bytes(s)?
        }
    };
    let outcome = state
        .dep
        .set_token(&name, &file, force, actor.name())
        .await?;
    // Apple's refusal of the new token is the admin's to read (e.g. T_C_NOT_SIGNED).
    let connection = match &outcome.connection {
        Ok(a) => json!({
            "ok": true,
            "server_name": a.server_name,
            "server_uuid": a.server_uuid,
            "org_name": a.org_name,
            "admin_id": a.admin_id,
            "org_email": a.org_email,
        }),
        Err(e) => json!({"ok": false, "error": dep_public_message(e)}),
    };
    let status = state.dep.link_status(&name).await?;
    Ok(Json(json!({
        "link": link_view(&status),
        "connection": connection,
    })))
}

/// A JSON token passed as text, or base64 of the file.
fn token_bytes(s: &str) -> Result<Vec<u8>, AdminError> {
    let t = s.trim();
    if t.starts_with('{') {
        return Ok(t.as_bytes().to_vec());
    }
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| {
            AdminError::bad_request("the token must be base64 of the token file, or the JSON token")
        })
}

#[derive(Deserialize)]
struct DeviceQuery {
    link: Option<String>,
    status: Option<String>,
    serial: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_devices(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<DeviceQuery>,
) -> Result<Json<Value>, AdminError> {
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(DepStatus::parse(text).ok_or_else(|| {
            AdminError::bad_request(format!(
                "status is one of {}",
                DepStatus::ALL.map(DepStatus::as_str).join(", ")
            ))
        })?),
    };
    let devices = state
        .dep
        .devices(
            DepDeviceFilter {
                link: q.link,
                serial: q.serial,
                after: q.cursor,
                limit: q.limit.unwrap_or(100),
                ..DepDeviceFilter::default()
            },
            status,
        )
        .await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000) as usize;
    let next = (devices.len() == limit)
        .then(|| devices.last().map(|d| d.serial_number.clone()))
        .flatten();
    Ok(Json(json!({
        "devices": devices.iter().map(views::device).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[derive(Deserialize)]
struct SyncQuery {
    stream: Option<bool>,
}

#[derive(Deserialize)]
struct SyncBody {
    link: Option<String>,
}

/// One pass now. With `?stream=true`: NDJSON, a `{"progress"}` line per page and a
/// `{"report"}` (or `{"error"}`) line per link.
async fn sync(
    State(state): State<AppState>,
    actor: Actor,
    AdminQuery(q): AdminQuery<SyncQuery>,
    JsonBody(body): JsonBody<SyncBody>,
) -> Result<Response, AdminError> {
    let links = state
        .dep
        .request_sync(body.link.as_deref(), actor.name())
        .await?;
    if q.stream.unwrap_or(false) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let dep = state.dep.clone();
        tokio::spawn(async move {
            for name in links {
                let ptx = tx.clone();
                let pname = name.clone();
                let result = dep
                    .sync_link(&name, move |p| {
                        let line = json!({"progress": {
                            "link": pname,
                            "phase": format!("{:?}", p.phase).to_ascii_lowercase(),
                            "pages": p.pages,
                            "page_devices": p.page_devices,
                            "total_devices": p.total_devices,
                            "more_to_follow": p.more_to_follow,
                            "cursor_resets": p.cursor_resets,
                        }});
                        let _ = ptx.send(line.to_string());
                    })
                    .await;
                let line = match result {
                    Ok(r) => json!({"report": r}),
                    Err(e) => json!({"error": {
                        "link": name,
                        "message": dep_public_message(&e),
                    }}),
                };
                let _ = tx.send(line.to_string());
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|line| {
                (
                    Ok::<_, std::convert::Infallible>(Bytes::from(line + "\n")),
                    rx,
                )
            })
        });
        return Ok((
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            Body::from_stream(stream),
        )
            .into_response());
    }
    let mut reports = Vec::new();
    for name in links {
        match state.dep.sync_link(&name, |_| {}).await {
            Ok(r) => reports.push(r),
            Err(e) if body.link.is_some() => return Err(e.into()),
            Err(e) => reports.push(json!({
                "link": name,
                "ok": false,
                "error": dep_public_message(&e),
            })),
        }
    }
    Ok(Json(json!({"reports": reports})).into_response())
}

#[derive(Deserialize)]
struct ProfileQuery {
    link: Option<String>,
    default: Option<bool>,
}

async fn list_profiles(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<ProfileQuery>,
) -> Result<Json<Value>, AdminError> {
    let profiles = state.dep.profiles(q.link.as_deref()).await?;
    Ok(Json(json!({
        "profiles": profiles
            .iter()
            .map(|(p, is_default)| views::profile(p, *is_default))
            .collect::<Vec<_>>(),
    })))
}

/// Body: `{"profile": {…Apple's profile JSON…}, "link"?, "default"?, "setup"?}`, or the
/// profile JSON itself (then `?link=&default=`). `setup`: see [`crate::dep::setup`].
async fn create_profile(
    State(state): State<AppState>,
    actor: Actor,
    AdminQuery(q): AdminQuery<ProfileQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let v: Value = parse_json(&body)?;
    let (profile, link, default, setup) = match v.get("profile") {
        Some(p) if p.is_object() => (
            p.clone(),
            str_field(&v, "link").map(str::to_owned).or(q.link),
            bool_field(&v, "default") || q.default.unwrap_or(false),
            match v.get("setup") {
                Some(s) if !s.is_null() => crate::dep::setup::parse_setup(s)?,
                _ => Default::default(),
            },
        ),
        _ => (v, q.link, q.default.unwrap_or(false), Default::default()),
    };
    let out = state
        .dep
        .create_profile(link.as_deref(), profile, default, setup, actor.name())
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

fn bool_field(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Body of assign, remove and disown.
#[derive(Deserialize)]
struct Serials {
    /// Serial numbers.
    devices: Vec<String>,
    link: Option<String>,
    #[serde(default)]
    confirm: bool,
}

async fn assign(
    State(state): State<AppState>,
    actor: Actor,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody<Serials>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(
        state.dep.assign(&uuid, &body.devices, actor.name()).await?,
    ))
}

/// `{uuid}` = `any` removes whatever profile the devices have.
async fn remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody<Serials>,
) -> Result<Json<Value>, AdminError> {
    let profile = (uuid != "any").then_some(uuid.as_str());
    Ok(Json(
        state
            .dep
            .remove(profile, body.link.as_deref(), &body.devices, actor.name())
            .await?,
    ))
}

async fn disown(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<Serials>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(
        state
            .dep
            .disown(
                body.link.as_deref(),
                &body.devices,
                body.confirm,
                actor.name(),
            )
            .await?,
    ))
}
