//! The simulator's HTTP surface: one handler that checks the User-Agent, applies injected
//! failures, authenticates (`/session` by OAuth signature, the rest by session token) and routes.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::fail::ApiFail;
use super::oauth;
use super::state::State;
use crate::error::codes;
use crate::types::{ActivationLockRequest, Profile};

pub(crate) type Shared = Arc<Mutex<State>>;

const SESSION_HEADER: &str = "x-adm-auth-session";

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// 400s as Apple's bare code in plain text; 401 plain `UNAUTHORIZED`; 403 and the rest as JSON
/// `{"code","message"}` (both shapes occur in the wild; the client parses either).
fn fail(f: ApiFail) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match f.status {
        400 | 401 => (
            status,
            [(header::CONTENT_TYPE, "text/plain;charset=UTF8")],
            f.code,
        )
            .into_response(),
        _ if f.code.is_empty() => status.into_response(),
        _ => (
            status,
            [(header::CONTENT_TYPE, "application/json;charset=UTF8")],
            json!({"code": f.code, "message": format!("simulated {}", f.code)}).to_string(),
        )
            .into_response(),
    }
}

fn ok_json(value: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF8")],
        value.to_string(),
    )
        .into_response()
}

fn body_json<T: for<'de> Deserialize<'de> + Default>(
    body: &[u8],
    allow_empty: bool,
) -> Result<T, ApiFail> {
    if allow_empty && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|_| ApiFail::new(400, codes::MALFORMED_REQUEST_BODY))
}

#[derive(Deserialize, Default)]
struct CursorBody {
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize, Default)]
struct DevicesBody {
    #[serde(default)]
    devices: Vec<String>,
    profile_uuid: Option<String>,
}

pub(crate) async fn handle(
    AxState(shared): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    let mut st = lock(&shared);
    *st.stats.requests.entry(path.clone()).or_default() += 1;
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    st.stats.last_protocol_version = h("x-server-protocol-version");
    st.stats.last_content_type = h("content-type");
    st.stats.last_accept = h("accept");
    let ua = h("user-agent");
    st.stats.last_user_agent = ua.clone();
    match ua.as_deref().map(str::trim) {
        None | Some("") => return fail(ApiFail::new(400, codes::USER_AGENT_MISSING)),
        Some(u) if !u.is_ascii() || u.len() > 256 => {
            return fail(ApiFail::new(400, codes::USER_AGENT_INVALID));
        }
        _ => {}
    }
    if let Some(f) = st.take_injection(&path) {
        return fail(f);
    }

    if path == "/session" {
        if method != Method::GET {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        return session(&mut st, &uri, &headers);
    }

    let token = h(SESSION_HEADER).unwrap_or_default();
    if token.is_empty() || !st.session_valid(&token) {
        let status = st.cfg.stale_session_status;
        let code = if status == 403 {
            codes::FORBIDDEN
        } else {
            codes::UNAUTHORIZED
        };
        return fail(ApiFail::new(status, code));
    }

    let result = route(&mut st, &method, &path, &uri, &body);
    let mut resp = match result {
        Ok(r) => r,
        Err(f) => fail(f),
    };
    if st.cfg.rotate_sessions {
        st.drop_session(&token);
        let new = st.new_session();
        if let Ok(v) = HeaderValue::from_str(&new) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
    }
    resp
}

fn session(st: &mut State, uri: &Uri, headers: &HeaderMap) -> Response {
    let unauthorized = || fail(ApiFail::new(401, codes::UNAUTHORIZED));
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return unauthorized();
    };
    let Some(params) = oauth::parse_header(auth) else {
        return unauthorized();
    };
    st.stats.last_authorization_realm = params.get("realm").cloned();
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return unauthorized();
    };
    let base_uri = format!("http://{}{}", host.to_ascii_lowercase(), uri.path());
    let query: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((oauth::decode(k)?, oauth::decode(v)?))
        })
        .collect();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(why) = oauth::verify("GET", &base_uri, &query, &params, &st.tokens, now) {
        tracing::debug!(?why, "simulated DEP refused an OAuth signature");
        return unauthorized();
    }
    let nonce = params.get("oauth_nonce").cloned().unwrap_or_default();
    if !st.fresh_nonce(&nonce) {
        return unauthorized();
    }
    let token = st.new_session();
    ok_json(json!({ "auth_session_token": token }))
}

fn page_json(devices: Vec<crate::types::DepDevice>, cursor: String, more: bool) -> Response {
    ok_json(json!({
        "devices": devices,
        "cursor": cursor,
        "fetched_until": super::state::now_rfc3339(),
        "more_to_follow": more,
    }))
}

fn route(
    st: &mut State,
    method: &Method,
    path: &str,
    uri: &Uri,
    body: &[u8],
) -> Result<Response, ApiFail> {
    let m = method.as_str();
    match (m, path) {
        ("GET", "/account") => {
            let url = |uri: &str, methods: &[&str]| json!({"uri": uri, "http_method": methods, "limit": {"default": 100, "maximum": 1000}});
            Ok(ok_json(json!({
                "server_name": st.cfg.server_name,
                "server_uuid": "9A1E2B3C-0000-4000-8000-00000000D3B5",
                "admin_id": "it-admin@example.org",
                "facilitator_id": "it-admin@example.org",
                "org_name": "Russet Simulated Org",
                "org_email": "it-admin@example.org",
                "org_phone": "+1 408 555 1010",
                "org_address": "1 Infinite Loop, Cupertino, CA 95014",
                "org_id": "1234567",
                "org_id_hash": "0f3c5e1a9b",
                "org_type": "org",
                "org_version": "v2",
                "urls": [
                    url("/server/devices", &["POST"]),
                    url("/devices/sync", &["POST"]),
                    url("/devices", &["POST"]),
                    url("/profile", &["POST", "GET"]),
                    url("/profile/devices", &["POST", "PUT", "DELETE"]),
                    url("/devices/disown", &["POST"]),
                    url("/device/activationlock", &["POST"]),
                ],
            })))
        }
        ("POST", "/server/devices") => {
            let b: CursorBody = body_json(body, true)?;
            let (d, c, more) = st.fetch(b.cursor.as_deref(), b.limit)?;
            Ok(page_json(d, c, more))
        }
        ("POST", "/devices/sync") => {
            let b: CursorBody = body_json(body, true)?;
            let (d, c, more) = st.sync(b.cursor.as_deref(), b.limit)?;
            Ok(page_json(d, c, more))
        }
        ("POST", "/devices") => {
            let b: DevicesBody = body_json(body, false)?;
            if b.devices.is_empty() {
                return Err(ApiFail::new(400, codes::DEVICE_ID_REQUIRED));
            }
            let mut out = serde_json::Map::new();
            for s in b.devices {
                let v = match st.device(&s) {
                    Some(d) => {
                        let mut v = serde_json::to_value(d).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.insert("response_status".into(), "SUCCESS".into());
                        }
                        v
                    }
                    None => json!({"response_status": "NOT_ACCESSIBLE"}),
                };
                out.insert(s, v);
            }
            Ok(ok_json(json!({ "devices": out })))
        }
        ("POST", "/profile") => {
            let p: Profile = body_json(body, false)?;
            let (uuid, devices) = st.define_profile(p)?;
            Ok(ok_json(json!({"profile_uuid": uuid, "devices": devices})))
        }
        ("GET", "/profile") => {
            let uuid = uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| *k == "profile_uuid")
                .and_then(|(_, v)| oauth::decode(v))
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ApiFail::new(400, codes::PROFILE_UUID_REQUIRED))?;
            let p = st
                .profiles
                .get(&uuid)
                .ok_or_else(|| ApiFail::new(404, codes::NOT_FOUND))?;
            Ok(ok_json(serde_json::to_value(p).unwrap_or_default()))
        }
        ("POST" | "PUT", "/profile/devices") => {
            let b: DevicesBody = body_json(body, false)?;
            let uuid = b.profile_uuid.unwrap_or_default();
            let (devices, retry) = st.assign(&uuid, &b.devices)?;
            let mut v = json!({"profile_uuid": uuid, "devices": devices});
            if let (Some(r), Some(o)) = (retry, v.as_object_mut()) {
                o.insert("retry_after_seconds".into(), r.into());
            }
            Ok(ok_json(v))
        }
        ("DELETE", "/profile/devices") => {
            let b: DevicesBody = body_json(body, false)?;
            let devices = st.remove_profile(&b.devices, b.profile_uuid.as_deref())?;
            Ok(ok_json(json!({ "devices": devices })))
        }
        ("POST", "/devices/disown") => {
            let b: DevicesBody = body_json(body, false)?;
            let devices = st.disown(&b.devices)?;
            Ok(ok_json(json!({ "devices": devices })))
        }
        ("POST", "/device/activationlock") => {
            let b: ActivationLockRequest = body_json(body, false)?;
            if b.device.is_empty() {
                return Err(ApiFail::new(400, codes::DEVICE_ID_REQUIRED));
            }
            let status = st.activation_lock(&b.device);
            Ok(ok_json(
                json!({"serial_number": b.device, "response_status": status}),
            ))
        }
        (
            _,
            "/account"
            | "/server/devices"
            | "/devices/sync"
            | "/devices"
            | "/profile"
            | "/profile/devices"
            | "/devices/disown"
            | "/device/activationlock",
        ) => Ok(StatusCode::METHOD_NOT_ALLOWED.into_response()),
        _ => Err(ApiFail::new(404, codes::NOT_FOUND)),
    }
}
