//! Who is signed in to the console, and the checks every console request passes:
//!
//! - the session cookie (`russet_session`: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure`
//!   when the admin listener serves TLS, expiring with the session) names a live session of a
//!   non-revoked admin (`service::console_session`); without one, a page redirects to
//!   `/signin?next=…`;
//! - a state-changing request (anything but GET/HEAD) carries the session's CSRF token, in the
//!   `X-CSRF-Token` header (htmx sends it on every request, from `hx-headers` on `<body>`) or
//!   the `csrf` field of a urlencoded form, and no foreign `Origin`;
//! - the route's permission (`permissions.rs`) is the role's, else 403.
//!
//! The request then runs with the [`Console`] in its extensions and the client's address on
//! the audit entries its services write.

pub use super::page::Console;
use super::page::{ConsoleError, render, safe_next};
use super::permissions;
use crate::http::AppState;
use crate::service::admins::authorize;
use crate::service::audit;
use crate::service::console_session::{SESSION_LIFETIME, csrf_matches, csrf_token};
use askama::Template;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Form, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;

/// The session cookie's name.
pub const COOKIE: &str = "russet_session";
/// The header htmx sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The largest urlencoded form the CSRF check reads (file uploads are multipart and carry
/// the token in the header).
const MAX_FORM: usize = 1024 * 1024;

/// Whether the session cookie is marked `Secure` (the admin listener serves TLS).
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_string()))
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Whether a request's `Origin`, when the browser sends one, is this console's own (the
/// `Host` it was sent to). `SameSite=Strict` already keeps the cookie off cross-site
/// requests; this refuses them even where a browser does not.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

/// The check on every console route but sign-in and the assets (see the module's doc).
pub async fn require_console(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ConsoleError> {
    let htmx = is_htmx(req.headers());
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    // After sign-in, back to the page asked for (a form's target is no page to return to).
    let back_to = if req_is_safe(req.method()) {
        path_and_query
    } else {
        "/".into()
    };
    let signed_out = move || ConsoleError::SignedOut {
        next: back_to,
        htmx,
    };
    let Some(value) = session_cookie(req.headers()) else {
        return Err(signed_out());
    };
    let Some(admin) = state.service.console_session(&value).await? else {
        return Err(signed_out());
    };
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let what = format!("{method} {route} (console)");
    let Some(permission) = permissions::required(&method, &route) else {
        tracing::error!(route = %what, "console route without a permission: refused");
        return Err(ConsoleError::NotFound(format!(
            "{what} has no permission assigned in Russet"
        )));
    };
    if let Err(refused) = authorize(&admin, permission, &what) {
        tracing::warn!(admin = %admin.name, role = admin.role.as_str(),
            permission = permission.name(), route = %what, address = ?address,
            "console request refused: role lacks the permission");
        return Err(refused.into());
    }
    let req = if req_is_safe(&method) {
        req
    } else {
        check_csrf(&value, req).await?
    };
    let mut req = req;
    req.extensions_mut().insert(Console {
        admin,
        csrf: csrf_token(&value),
        cookie_value: SecretString::from(value),
    });
    let audit_address = address.map(|a| a.to_string());
    let mut resp = audit::with_address(audit_address, next.run(req)).await;
    // Pages show devices and, once, secrets: never cached, never framed, scripts only ours.
    no_store(resp.headers_mut());
    Ok(resp)
}

fn req_is_safe(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Refuse a state-changing request without the session's CSRF token; the body (read to find
/// a form's `csrf` field) is handed on unchanged.
async fn check_csrf(cookie_value: &str, req: Request) -> Result<Request, ConsoleError> {
    if !same_origin(req.headers()) {
        return Err(ConsoleError::Csrf);
    }
    if let Some(h) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if csrf_matches(cookie_value, h) {
            Ok(req)
        } else {
            Err(ConsoleError::Csrf)
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ConsoleError::Csrf);
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| ConsoleError::Admin(crate::http::AdminError::bad_request("form too large")))?;
    let field: CsrfField = serde_urlencoded_field(&bytes);
    match field.csrf {
        Some(t) if csrf_matches(cookie_value, &t) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(ConsoleError::Csrf),
    }
}

fn serde_urlencoded_field(bytes: &[u8]) -> CsrfField {
    // Only the `csrf` field matters here; the handler's own `Form` reads (and checks) the rest.
    serde_urlencoded::from_bytes(bytes).unwrap_or(CsrfField { csrf: None })
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

// ---- sign-in and sign-out -------------------------------------------------------------

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    next: &'a str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /signin`.
pub async fn sign_in_page(Query(q): Query<NextQuery>) -> Result<Response, ConsoleError> {
    let next = safe_next(q.next.as_deref().unwrap_or("/"));
    let mut resp = render(&SignInPage { next, error: None })?;
    no_store(resp.headers_mut());
    Ok(resp)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /signin`: an admin token opens a session. No CSRF token yet (there is no session to
/// derive it from); a foreign `Origin` is refused, so another site cannot sign a browser in.
pub async fn sign_in(
    State(state): State<AppState>,
    axum::Extension(policy): axum::Extension<CookiePolicy>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    if !same_origin(&headers) {
        return Err(ConsoleError::Csrf);
    }
    let next = safe_next(form.next.as_deref().unwrap_or("/")).to_string();
    let address = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let token = form.token.trim();
    let signed = audit::with_address(
        address.map(|a| a.to_string()),
        state.service.console_sign_in(token, address),
    )
    .await;
    match signed {
        Ok(s) => {
            let cookie = Cookie::build((COOKIE, s.cookie_value.expose_secret().to_string()))
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(policy.secure)
                .path("/")
                .max_age(cookie::time::Duration::seconds(
                    SESSION_LIFETIME.as_secs() as i64
                ))
                .build();
            let mut resp = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
        Err(e) => {
            let (status, message) = super::page::refusal(e);
            let status = if status == StatusCode::UNAUTHORIZED {
                // The page is shown again, not an API challenge.
                StatusCode::FORBIDDEN
            } else {
                status
            };
            let mut resp = super::page::render_with(
                status,
                &SignInPage {
                    next: &next,
                    error: Some(if status == StatusCode::FORBIDDEN {
                        "That token is not a valid admin token.".to_string()
                    } else {
                        message
                    }),
                },
            )?;
            no_store(resp.headers_mut());
            Ok(resp)
        }
    }
}

/// `POST /signout`: forget the session (CSRF-checked like every form) and clear the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    axum::Extension(policy): axum::Extension<CookiePolicy>,
    console: Console,
) -> Result<Response, ConsoleError> {
    state
        .service
        .console_sign_out(&console.cookie_value, &console.admin)
        .await?;
    let cookie = Cookie::build((COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(policy.secure)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build();
    let mut resp = Redirect::to("/signin").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_console() {
        assert_eq!(safe_next("/devices?q=serial%3DX"), "/devices?q=serial%3DX");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8443"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:8443"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn the_form_field_is_found_among_others() {
        let f = serde_urlencoded_field(b"serial=C02X&csrf=ab%2Bc+d&x=1");
        assert_eq!(f.csrf.as_deref(), Some("ab+c d"));
        assert!(serde_urlencoded_field(b"serial=C02X").csrf.is_none());
    }
}
