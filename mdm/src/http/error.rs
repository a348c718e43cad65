//! One error type per HTTP surface; status codes are decided here, once.

use crate::protocol::ProtocolError;
use crate::service::ServiceError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use russet_certs::IdentityError;

/// An error answered to a device. Plain text, and never a 401: a 401 makes a Mac remove its MDM
/// profile (Apple, "Terminating a management relationship").
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no device identity: {0}")]
    NoIdentity(&'static str),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<ProtocolError> for DeviceError {
    fn from(e: ProtocolError) -> Self {
        DeviceError::Service(ServiceError::Protocol(e))
    }
}

impl DeviceError {
    fn status(&self) -> StatusCode {
        match self {
            DeviceError::NoIdentity(_) => StatusCode::BAD_REQUEST,
            DeviceError::Identity(e) => match e {
                IdentityError::Untrusted(_)
                | IdentityError::Expired
                | IdentityError::NotClientAuth => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            },
            DeviceError::Service(e) => service_status(e),
        }
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
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ServiceError::Conflict(_) => StatusCode::CONFLICT,
        ServiceError::Store(_) | ServiceError::Secret(_) | ServiceError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
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
            self.to_string()
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

/// An error answered on the admin API: `{"error": {"code": "…", "message": "…"}}`.
#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AdminError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin token is required (Authorization: Bearer <token>)",
        )
    }
}

impl From<ServiceError> for AdminError {
    fn from(e: ServiceError) -> Self {
        let status = service_status(&e);
        let code = match &e {
            ServiceError::Protocol(ProtocolError::UnsupportedRequestType(_)) => {
                "unsupported_request_type"
            }
            ServiceError::Protocol(ProtocolError::Invalid(_)) => "invalid_command",
            ServiceError::Protocol(_) => "bad_request",
            ServiceError::Refused(_) => "refused",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::BadRequest(_) => "bad_request",
            ServiceError::Store(_) | ServiceError::Secret(_) | ServiceError::Internal(_) => {
                "internal"
            }
            _ => "bad_request",
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "admin request failed");
            return AdminError::new(status, code, "internal error; see the server log");
        }
        AdminError::new(status, code, e.to_string())
    }
}

impl From<crate::store::StoreError> for AdminError {
    fn from(e: crate::store::StoreError) -> Self {
        ServiceError::Store(e).into()
    }
}

impl From<ProtocolError> for AdminError {
    fn from(e: ProtocolError) -> Self {
        ServiceError::Protocol(e).into()
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}
