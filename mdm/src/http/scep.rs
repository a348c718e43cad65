//! `GET|POST /scep`: GetCACaps, GetCACert, PKIOperation (POST body, or GET `message` base64).

use super::{AppState, DeviceError};
use crate::service::enrollment::ScepOutcome;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use russet_certs::scep::{
    self, CA_CAPS, CA_CAPS_CONTENT_TYPE, MAX_PKI_MESSAGE, PKI_MESSAGE_CONTENT_TYPE,
};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ScepQuery {
    operation: Option<String>,
    message: Option<String>,
}

pub async fn scep(
    State(state): State<AppState>,
    method: Method,
    query: Result<Query<ScepQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, DeviceError> {
    let Ok(Query(q)) = query else {
        return Err(DeviceError::BadRequest("malformed query"));
    };
    match q.operation.as_deref() {
        Some("GetCACaps") => {
            Ok(([(header::CONTENT_TYPE, CA_CAPS_CONTENT_TYPE)], CA_CAPS).into_response())
        }
        Some("GetCACert") => {
            let (content_type, der) = scep::ca_cert_response(state.enroll.ca())
                .map_err(|e| DeviceError::Internal(format!("GetCACert: {e}")))?;
            Ok(([(header::CONTENT_TYPE, content_type)], der).into_response())
        }
        Some("PKIOperation") => {
            let der = if method == Method::POST {
                axum::body::to_bytes(body, MAX_PKI_MESSAGE)
                    .await
                    .map_err(|_| DeviceError::TooLarge("PKIOperation too large"))?
                    .to_vec()
            } else {
                get_message(q.message)?
            };
            match state.enroll.pki_operation(&der).await? {
                ScepOutcome::CertRep(rep) => {
                    Ok(([(header::CONTENT_TYPE, PKI_MESSAGE_CONTENT_TYPE)], rep).into_response())
                }
                ScepOutcome::Malformed(_) => {
                    Err(DeviceError::BadRequest("not a valid SCEP PKIMessage"))
                }
            }
        }
        _ => Err(DeviceError::BadRequest("unknown SCEP operation")),
    }
}

/// The PKIOperation of a GET: the `message` parameter, base64.
fn get_message(message: Option<String>) -> Result<Vec<u8>, DeviceError> {
    let m = message.ok_or(DeviceError::BadRequest("PKIOperation needs a message"))?;
    if m.len() > MAX_PKI_MESSAGE * 4 / 3 + 4 {
        return Err(DeviceError::TooLarge("PKIOperation too large"));
    }
    // Form decoding turns an unescaped '+' into a space.
    let m: String = m
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(m.as_bytes())
        .map_err(|_| DeviceError::BadRequest("message is not base64"))
}
