//! One error type per HTTP surface, and every status code decided here, once.
//!
//! - [`DeviceError`]: what Macs get on `--listen` (check-in, commands, enrollment, SCEP): plain
//!   text, and never a 401 — a 401 makes a Mac remove its MDM profile (Apple, "Terminating a
//!   management relationship").
//! - [`AdminError`]: the admin API's `{"error": {"code", "message"}}`.
//!
//! Internal errors (database, sealed secrets, Russet's own data) are logged here with their
//! detail and answered with a generic message: no store or secret error text reaches a client.

use crate::dep::DepOpError;
use crate::profiles::ProfileError;
use crate::protocol::ProtocolError;
use crate::protocol::mobileconfig::MobileconfigError;
use crate::service::ServiceError;
use crate::service::admins::AuthError;
use crate::service::enrollment::EnrollError;
use crate::store::StoreError;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use russet_certs::IdentityError;
use russet_certs::machine_info::MachineInfoError;

/// An error answered to a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no device identity: {0}")]
    NoIdentity(&'static str),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A request the HTTP layer refuses before any service runs (a SCEP query, base64).
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("{0}")]
    TooLarge(&'static str),
    /// The body could not be read (too large for the route's limit, or cut off).
    #[error(transparent)]
    Body(#[from] BytesRejection),
    /// An enrollment profile refused (no or a used-up link, a serial unknown to DEP).
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    /// An ADE MachineInfo whose signature is not Apple's device CA's (or unreadable).
    #[error("the MachineInfo signature is not acceptable: {0}")]
    MachineInfo(#[from] MachineInfoError),
    /// The MachineInfo verified but is not one (missing UDID or serial).
    #[error("malformed MachineInfo: {0}")]
    MalformedMachineInfo(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ProtocolError> for DeviceError {
    fn from(e: ProtocolError) -> Self {
        DeviceError::Service(ServiceError::Protocol(e))
    }
}

impl From<StoreError> for DeviceError {
    fn from(e: StoreError) -> Self {
        DeviceError::Service(ServiceError::Store(e))
    }
}

impl DeviceError {
    fn status(&self) -> StatusCode {
        match self {
            DeviceError::NoIdentity(_) | DeviceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DeviceError::Identity(e) => match e {
                IdentityError::Untrusted(_)
                | IdentityError::Expired
                | IdentityError::NotClientAuth => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            },
            DeviceError::Service(e) => service_status(e),
            DeviceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            DeviceError::Body(e) => e.status(),
            DeviceError::Enroll(e) => enroll_status(e),
            DeviceError::MachineInfo(e) => match e {
                MachineInfoError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                MachineInfoError::Malformed(_) => StatusCode::BAD_REQUEST,
                MachineInfoError::BadSignature | MachineInfoError::Untrusted(_) => {
                    StatusCode::FORBIDDEN
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            DeviceError::MalformedMachineInfo(_) => StatusCode::BAD_REQUEST,
            DeviceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the device (or the person at Setup Assistant) reads: the refusal, without the
    /// detail the log gets.
    fn public_message(&self) -> String {
        match self {
            DeviceError::MachineInfo(_) => "the MachineInfo signature is not acceptable".into(),
            DeviceError::MalformedMachineInfo(_) => "malformed MachineInfo".into(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "device request failed");
            "internal error".to_string()
        } else {
            tracing::warn!(status = status.as_u16(), error = %self, "device request refused");
            self.public_message()
        };
        (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            message,
        )
            .into_response()
    }
}

fn service_status(e: &ServiceError) -> StatusCode {
    match e {
        ServiceError::Protocol(ProtocolError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        ServiceError::Protocol(_) => StatusCode::BAD_REQUEST,
        ServiceError::IdentityMismatch(_) => StatusCode::FORBIDDEN,
        ServiceError::NotEnrolled(_) => StatusCode::BAD_REQUEST,
        ServiceError::WrongTopic { .. } => StatusCode::FORBIDDEN,
        ServiceError::UnsupportedTokenService(_) => StatusCode::BAD_REQUEST,
        ServiceError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ServiceError::NotFound(_) | ServiceError::VendorNotConfigured => StatusCode::NOT_FOUND,
        ServiceError::BadRequest(_) | ServiceError::InvalidFilter(_) => StatusCode::BAD_REQUEST,
        ServiceError::Conflict(_)
        | ServiceError::AlreadyDelivered(_)
        | ServiceError::PushBlocked(_)
        | ServiceError::NoPushCertificate => StatusCode::CONFLICT,
        ServiceError::Store(_) | ServiceError::Secret(_) | ServiceError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn enroll_status(e: &EnrollError) -> StatusCode {
    match e {
        EnrollError::Forbidden(_) => StatusCode::FORBIDDEN,
        EnrollError::Invalid(_) => StatusCode::BAD_REQUEST,
        EnrollError::Store(_) | EnrollError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The code of errors whose text stays in the server log (database, secrets, Russet's data).
const INTERNAL: &str = "internal";

/// An error answered on the admin API: `{"error": {"code": "…", "message": "…"}}`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("a valid admin token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    /// Input the HTTP layer cannot read: JSON, a query string, base64.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The body could not be read (over the admin body limit, or cut off).
    #[error(transparent)]
    Body(#[from] BytesRejection),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Dep(#[from] DepOpError),
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    #[error(transparent)]
    Profiles(#[from] ProfileError),
    /// Who is calling, and whether its role may (401, 403 naming the permission, 429).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A route missing from `http/permissions.rs`: refused to everyone until it is added.
    #[error("{0} has no permission assigned in Russet; it is refused to every admin")]
    NoPermissionDefined(String),
}

impl AdminError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        AdminError::BadRequest(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AdminError::NotFound(message.into())
    }

    /// The status this error is answered with (the console shows refusals under the same one).
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The status and the stable machine-readable `code` (clients match on it).
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AdminError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AdminError::Body(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (e.status(), "too_large")
            }
            AdminError::Body(e) => (e.status(), "bad_request"),
            AdminError::Service(e) => service_status_and_code(e),
            AdminError::Dep(e) => dep_status_and_code(e),
            AdminError::Profiles(e) => profile_status_and_code(e),
            AdminError::Auth(e) => match e {
                AuthError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
                AuthError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
                AuthError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
                AuthError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
            },
            AdminError::NoPermissionDefined(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AdminError::Enroll(e) => {
                let status = enroll_status(e);
                let code = match e {
                    EnrollError::Forbidden(_) => "forbidden",
                    EnrollError::Invalid(_) => "bad_request",
                    EnrollError::Store(_) | EnrollError::Internal(_) => INTERNAL,
                };
                (status, code)
            }
        }
    }

    /// The message a client may read: the error itself (Apple's refusals included, verbatim),
    /// or — for an internal error, which is logged here with its detail — a generic one.
    pub fn public_message(&self) -> String {
        if self.status_and_code().1 == INTERNAL {
            tracing::error!(error = %self, "admin request failed");
            "internal error; see the server log".to_string()
        } else {
            self.to_string()
        }
    }
}

fn service_status_and_code(e: &ServiceError) -> (StatusCode, &'static str) {
    let code = match e {
        ServiceError::Protocol(ProtocolError::UnsupportedRequestType(_)) => {
            "unsupported_request_type"
        }
        ServiceError::Protocol(ProtocolError::Invalid(_)) => "invalid_command",
        ServiceError::Refused(_) => "refused",
        ServiceError::InvalidFilter(_) => "invalid_filter",
        ServiceError::NotFound(_) => "not_found",
        ServiceError::Conflict(_) => "conflict",
        ServiceError::AlreadyDelivered(_) => "already_delivered",
        ServiceError::PushBlocked(_) => "push_blocked",
        ServiceError::NoPushCertificate => "no_push_certificate",
        ServiceError::VendorNotConfigured => "vendor_not_configured",
        ServiceError::Store(_) | ServiceError::Secret(_) | ServiceError::Internal(_) => INTERNAL,
        _ => "bad_request",
    };
    (service_status(e), code)
}

fn dep_status_and_code(e: &DepOpError) -> (StatusCode, &'static str) {
    match e {
        DepOpError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        DepOpError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        DepOpError::BadRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        DepOpError::Busy(_) => (StatusCode::CONFLICT, "sync_running"),
        DepOpError::Token(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_token"),
        DepOpError::Apple(a) if a.status().is_some() => (StatusCode::BAD_GATEWAY, "apple_refused"),
        DepOpError::Apple(_) => (StatusCode::BAD_GATEWAY, "apple_unreachable"),
        DepOpError::Sync(_) => (StatusCode::BAD_GATEWAY, "sync_failed"),
        DepOpError::Store(_) | DepOpError::Secret(_) | DepOpError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL)
        }
    }
}

/// An upload Apple's schemas reject is the admin's input to fix (400, naming every key); one
/// that carries what Russet owns is well-formed but not allowed (422).
fn profile_status_and_code(e: &ProfileError) -> (StatusCode, &'static str) {
    match e {
        ProfileError::Profile(MobileconfigError::Invalid(_)) => {
            (StatusCode::BAD_REQUEST, "invalid_profile")
        }
        ProfileError::Profile(MobileconfigError::Refused(_)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "refused")
        }
        ProfileError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        ProfileError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        ProfileError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        ProfileError::Expand(_) => (StatusCode::UNPROCESSABLE_ENTITY, "missing_variable"),
        ProfileError::Service(e) => service_status_and_code(e),
        ProfileError::Profile(MobileconfigError::Internal(_))
        | ProfileError::Store(_)
        | ProfileError::Secret(_)
        | ProfileError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
    }
}

/// The text of a DEP error that goes inside a successful answer (a per-link sync report, a
/// token's connection test): Apple's refusal verbatim, an internal error logged and replaced.
pub fn dep_public_message(e: &DepOpError) -> String {
    if dep_status_and_code(e).1 == INTERNAL {
        tracing::error!(error = %e, "DEP request failed");
        "internal error; see the server log".to_string()
    } else {
        e.to_string()
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Service(ServiceError::Store(e))
    }
}

impl From<ProtocolError> for AdminError {
    fn from(e: ProtocolError) -> Self {
        AdminError::Service(ServiceError::Protocol(e))
    }
}

impl From<QueryRejection> for AdminError {
    fn from(e: QueryRejection) -> Self {
        AdminError::BadRequest(e.body_text())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut body =
            serde_json::json!({"error": {"code": code, "message": self.public_message()}});
        // A filter error also says where, so a client can point at the term.
        if let AdminError::Service(ServiceError::InvalidFilter(e)) = &self {
            body["error"]["position"] = e.position.into();
            body["error"]["term"] = e.term.as_str().into();
            body["error"]["expected"] = e.expected.as_str().into();
        }
        if let AdminError::Auth(AuthError::Forbidden { permission, .. }) = &self {
            body["error"]["permission"] = permission.name().into();
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if let AdminError::Auth(AuthError::RateLimited { retry_after }) = &self {
            // Whole seconds, rounded up (RFC 9110 `delay-seconds`).
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}
