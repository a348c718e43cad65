//! What every console page shares: the frame around it ([`Chrome`]: who is signed in, the
//! CSRF token, which buttons the role may use, the active section), rendering a template, and
//! the console's one error type ([`ConsoleError`]), mapped to a response once, here.

use crate::http::AdminError;
use crate::service::admins::AdminIdentity;
use crate::service::admins::{AuthError, Permission};
use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::SecretString;

/// The signed-in admin of a console request, with the session's CSRF token for its forms.
#[derive(Clone)]
pub struct Console {
    pub admin: AdminIdentity,
    pub csrf: String,
    /// The cookie's value, for signing out.
    pub(super) cookie_value: SecretString,
}

impl Console {
    pub fn name(&self) -> &str {
        &self.admin.name
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Console {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ConsoleError> {
        parts
            .extensions
            .get::<Console>()
            .cloned()
            .ok_or_else(|| ConsoleError::SignedOut {
                next: "/".into(),
                htmx: false,
            })
    }
}

/// `next` for the sign-in page's query string: only a path on this console (no scheme, no
/// host: an open redirect would make the sign-in page a phishing tool).
pub fn encode_next(path: &str) -> String {
    percent_encoding::utf8_percent_encode(safe_next(path), percent_encoding::NON_ALPHANUMERIC)
        .to_string()
}

pub(super) fn safe_next(path: &str) -> &str {
    if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') {
        path
    } else {
        "/"
    }
}

/// The console's sections, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Devices,
    Groups,
    Profiles,
    GoldenImages,
    OsUpdates,
    Dep,
    Enrollment,
    Push,
    Audit,
    Admins,
}

/// Which buttons the signed-in admin's role may use: the templates hide what is `false`, and
/// the console's route table (`permissions.rs`) refuses it server-side all the same.
#[derive(Debug, Clone, Copy)]
pub struct May {
    pub commands: bool,
    pub lock: bool,
    pub pin_reveal: bool,
    pub assign: bool,
    pub wipe: bool,
    pub device_delete: bool,
    pub profiles: bool,
    pub enrollment: bool,
    pub push_certificate: bool,
    pub dep: bool,
    pub admins: bool,
    pub disk_security: bool,
    pub key_reveal: bool,
}

/// A message at the top of a page after an action: what was done, or why it was refused.
#[derive(Debug, Clone)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

impl Notice {
    pub fn done(text: impl Into<String>) -> Option<Notice> {
        Some(Notice {
            ok: true,
            text: text.into(),
        })
    }

    pub fn refused(text: impl Into<String>) -> Option<Notice> {
        Some(Notice {
            ok: false,
            text: text.into(),
        })
    }
}

/// The frame of a page (`base.html` reads it as `chrome`).
#[derive(Debug, Clone)]
pub struct Chrome {
    pub admin: String,
    pub role: &'static str,
    pub csrf: String,
    pub nav: Nav,
    pub may: May,
    /// `<title>` and the page's `<h1>`.
    pub title: String,
    pub notice: Option<Notice>,
}

impl Chrome {
    pub fn new(console: &Console, nav: Nav, title: impl Into<String>) -> Chrome {
        let role = console.admin.role;
        Chrome {
            admin: console.admin.name.clone(),
            role: role.as_str(),
            csrf: console.csrf.clone(),
            nav,
            may: May {
                commands: role.grants(Permission::Commands),
                lock: role.grants(Permission::Lock),
                pin_reveal: role.grants(Permission::PinReveal),
                assign: role.grants(Permission::Assign),
                wipe: role.grants(Permission::Wipe),
                device_delete: role.grants(Permission::DeviceDelete),
                profiles: role.grants(Permission::Profiles),
                enrollment: role.grants(Permission::Enrollment),
                push_certificate: role.grants(Permission::PushCertificate),
                dep: role.grants(Permission::Dep),
                admins: role.grants(Permission::Admins),
                disk_security: role.grants(Permission::DiskSecurity),
                key_reveal: role.grants(Permission::KeyReveal),
            },
            title: title.into(),
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<Notice>) -> Chrome {
        self.notice = notice;
        self
    }

    /// `aria-current="page"` on the active section's link (used by `base.html`).
    pub fn current(&self, nav: Nav) -> &'static str {
        if nav == self.nav { "page" } else { "false" }
    }
}

/// Render a template to a 200 page (or fragment).
pub fn render(t: &impl Template) -> Result<Response, ConsoleError> {
    render_with(StatusCode::OK, t)
}

/// Render a template with `status`: a form refused by the service is shown again, with the
/// reason beside the field, under the refusal's status (a 4xx).
pub fn render_with(status: StatusCode, t: &impl Template) -> Result<Response, ConsoleError> {
    match t.render() {
        Ok(html) => Ok((status, Html(html)).into_response()),
        Err(e) => Err(ConsoleError::Internal(format!("template: {e}"))),
    }
}

/// Why a service refused, as the API would say it: its status and its message, for showing
/// next to the field (the same text the JSON API answers; no second copy of the rule).
pub fn refusal(e: impl Into<AdminError>) -> (StatusCode, String) {
    let e = e.into();
    (e.status(), e.public_message())
}

/// The console's errors: every one is a page (or, for htmx, a redirect header), decided here.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: to the sign-in page, and back to `next` after.
    #[error("sign-in required")]
    SignedOut { next: String, htmx: bool },
    /// A state-changing request without this session's CSRF token (or from another origin).
    #[error("this form is stale or did not come from this console: reload the page and retry")]
    Csrf,
    /// The role lacks the permission the page or action needs.
    #[error(transparent)]
    Forbidden(AuthError),
    #[error("{0}")]
    NotFound(String),
    /// A refusal from a service, as the API maps it.
    #[error("{}", .0.public_message())]
    Admin(#[from] AdminError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<AuthError> for ConsoleError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Forbidden { .. } => ConsoleError::Forbidden(e),
            other => ConsoleError::Admin(other.into()),
        }
    }
}

impl From<crate::service::ServiceError> for ConsoleError {
    fn from(e: crate::service::ServiceError) -> Self {
        ConsoleError::Admin(e.into())
    }
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(e: crate::store::StoreError) -> Self {
        ConsoleError::Admin(e.into())
    }
}

/// The page an error is shown on (no chrome: it may have no session).
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            ConsoleError::SignedOut { next, htmx } => {
                let to = format!("/signin?next={}", encode_next(next));
                if *htmx {
                    // htmx follows a redirect inside the fragment; this makes it load the page.
                    let mut resp = StatusCode::NO_CONTENT.into_response();
                    if let Ok(v) = HeaderValue::from_str(&to) {
                        resp.headers_mut().insert("hx-redirect", v);
                    }
                    return resp;
                }
                return Redirect::to(&to).into_response();
            }
            ConsoleError::Csrf | ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Admin(e) => e.status(),
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "console request failed");
            "internal error: the server log has the detail".to_string()
        } else {
            tracing::warn!(status = status.as_u16(), error = %self, "console request refused");
            self.to_string()
        };
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: &message,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {}", status.as_u16(), message));
        let mut resp = (status, Html(body)).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// Headers on every console response: scripts and styles only from the console itself (no
/// inline script, so an injected tag cannot run), never framed, no MIME sniffing.
pub async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}
