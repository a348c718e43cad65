//! Admin endpoints for DEP under `/api/v1/dep`: links, device records, sync, profiles,
//! assignment and disowning. Handlers are short: parse, call `crate::dep`, map the result.

use super::admin::{Actor, parse_json};
use super::{AdminError, AppState};
use crate::dep::{DepOpError, views};
use crate::service::now_ms;
use crate::store::dep::{DEP_STATUSES, DepDeviceFilter};
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
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

impl From<DepOpError> for AdminError {
    fn from(e: DepOpError) -> Self {
        let (status, code) = match &e {
            DepOpError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            DepOpError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            DepOpError::BadRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            DepOpError::Busy(_) => (StatusCode::CONFLICT, "sync_running"),
            DepOpError::Token(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_token"),
            DepOpError::Apple(a) if a.status().is_some() => {
                (StatusCode::BAD_GATEWAY, "apple_refused")
            }
            DepOpError::Apple(_) => (StatusCode::BAD_GATEWAY, "apple_unreachable"),
            DepOpError::Sync(_) => (StatusCode::BAD_GATEWAY, "sync_failed"),
            DepOpError::Store(_) | DepOpError::Secret(_) | DepOpError::Internal(_) => {
                tracing::error!(error = %e, "DEP admin request failed");
                return AdminError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                );
            }
        };
        AdminError::new(status, code, e.to_string())
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn serials(v: &Value) -> Result<Vec<String>, AdminError> {
    let list = v.get("devices").and_then(Value::as_array).ok_or_else(|| {
        AdminError::bad_request("\"devices\" (a list of serial numbers) is required")
    })?;
    list.iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| AdminError::bad_request("\"devices\" holds serial number strings"))
        })
        .collect()
}

async fn link_view(state: &AppState, name: &str) -> Result<Value, AdminError> {
    let link = state.dep.link(name).await?;
    let counts = state.dep.store().dep_device_counts(Some(name)).await?;
    Ok(views::link(&link, &counts, now_ms()))
}

async fn list_links(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let links = state.dep.store().dep_links().await?;
    let now = now_ms();
    let mut out = Vec::with_capacity(links.len());
    for l in &links {
        let counts = state.dep.store().dep_device_counts(Some(&l.name)).await?;
        out.push(views::link(l, &counts, now));
    }
    Ok(Json(json!({"links": out})))
}

async fn show_link(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(link_view(&state, &name).await?))
}

async fn create_link(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let v = parse_json(&body)?;
    let name = text(&v, "name").ok_or_else(|| AdminError::bad_request("\"name\" is required"))?;
    let link = state.dep.create_link(name, flag(&v, "force")).await?;
    state
        .service
        .audit(
            &actor.0,
            "dep.link.create",
            name,
            json!({"force": flag(&v, "force")}),
        )
        .await?;
    let mut view = link_view(&state, name).await?;
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
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    query: Result<Query<ForceQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
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
    let outcome = state.dep.set_token(&name, &file, force).await?;
    state
        .service
        .audit(&actor.0, "dep.link.token", &name, json!({"force": force}))
        .await?;
    let connection = match &outcome.connection {
        Ok(a) => json!({
            "ok": true,
            "server_name": a.server_name,
            "server_uuid": a.server_uuid,
            "org_name": a.org_name,
            "admin_id": a.admin_id,
            "org_email": a.org_email,
        }),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    let counts = state.dep.store().dep_device_counts(Some(&name)).await?;
    Ok(Json(json!({
        "link": views::link(&outcome.link, &counts, now_ms()),
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
    query: Result<Query<DeviceQuery>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    let status = q
        .status
        .map(|s| s.to_ascii_lowercase().replace([' ', '-'], "_"))
        .filter(|s| !s.is_empty());
    if let Some(s) = &status
        && !DEP_STATUSES.contains(&s.as_str())
    {
        return Err(AdminError::bad_request(format!(
            "status is one of {}",
            DEP_STATUSES.join(", ")
        )));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let devices = state
        .dep
        .store()
        .dep_devices(&DepDeviceFilter {
            link: q.link,
            status,
            serial: q.serial,
            after: q.cursor,
            limit,
        })
        .await?;
    let next = (devices.len() == limit as usize)
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

/// One pass now. With `?stream=true`: NDJSON, a `{"progress"}` line per page and a
/// `{"report"}` (or `{"error"}`) line per link.
async fn sync(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    query: Result<Query<SyncQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    let v = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_json(&body)?
    };
    let links = match text(&v, "link") {
        Some(l) => vec![state.dep.link(l).await?.name],
        None => state.dep.syncable_links().await?,
    };
    state
        .service
        .audit(
            &actor.0,
            "dep.sync",
            text(&v, "link").unwrap_or("*"),
            json!({}),
        )
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
                    Err(e) => json!({"error": {"link": name, "message": e.to_string()}}),
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
            Err(e) if text(&v, "link").is_some() => return Err(e.into()),
            Err(e) => reports.push(json!({"link": name, "ok": false, "error": e.to_string()})),
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
    query: Result<Query<ProfileQuery>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    let store = state.dep.store();
    let profiles = store.dep_profiles(q.link.as_deref()).await?;
    let links = store.dep_links().await?;
    let is_default = |uuid: &str| {
        links
            .iter()
            .any(|l| l.default_profile_uuid.as_deref() == Some(uuid))
    };
    Ok(Json(json!({
        "profiles": profiles
            .iter()
            .map(|p| views::profile(p, is_default(&p.profile_uuid)))
            .collect::<Vec<_>>(),
    })))
}

/// Body: `{"profile": {…Apple's profile JSON…}, "link"?, "default"?, "setup"?}`, or the
/// profile JSON itself (then `?link=&default=`). `setup`: see [`crate::dep::setup`].
async fn create_profile(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    query: Result<Query<ProfileQuery>, QueryRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    let v = parse_json(&body)?;
    let (profile, link, default, setup) = match v.get("profile") {
        Some(p) if p.is_object() => (
            p.clone(),
            text(&v, "link").map(str::to_owned).or(q.link),
            flag(&v, "default") || q.default.unwrap_or(false),
            match v.get("setup") {
                Some(s) if !s.is_null() => crate::dep::setup::parse_setup(s)?,
                _ => Default::default(),
            },
        ),
        _ => (v, q.link, q.default.unwrap_or(false), Default::default()),
    };
    let out = state
        .dep
        .create_profile(link.as_deref(), profile, default, setup)
        .await?;
    state
        .service
        .audit(
            &actor.0,
            "dep.profile.create",
            out["profile_uuid"].as_str().unwrap_or(""),
            json!({"default": default}),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

async fn assign(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let v = parse_json(&body)?;
    let serials = serials(&v)?;
    let out = state.dep.assign(&uuid, &serials).await?;
    state
        .service
        .audit(
            &actor.0,
            "dep.profile.assign",
            &uuid,
            json!({"devices": serials.len()}),
        )
        .await?;
    Ok(Json(out))
}

/// `{uuid}` = `any` removes whatever profile the devices have.
async fn remove(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let v = parse_json(&body)?;
    let serials = serials(&v)?;
    let profile = (uuid != "any").then_some(uuid.as_str());
    let out = state
        .dep
        .remove(profile, text(&v, "link"), &serials)
        .await?;
    state
        .service
        .audit(
            &actor.0,
            "dep.profile.remove",
            &uuid,
            json!({"devices": serials.len()}),
        )
        .await?;
    Ok(Json(out))
}

async fn disown(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let v = parse_json(&body)?;
    let serials = serials(&v)?;
    let out = state
        .dep
        .disown(text(&v, "link"), &serials, flag(&v, "confirm"))
        .await?;
    state
        .service
        .audit(&actor.0, "dep.disown", "dep", json!({"devices": serials}))
        .await?;
    Ok(Json(out))
}
