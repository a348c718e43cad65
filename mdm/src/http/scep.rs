//! `GET|POST /scep`: GetCACaps, GetCACert, PKIOperation (POST body, or GET `message` base64).

use crate::service::enrollment::{EnrollmentService, ScepOutcome};
use axum::Extension;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use russet_certs::scep::{
    self, CA_CAPS, CA_CAPS_CONTENT_TYPE, MAX_PKI_MESSAGE, PKI_MESSAGE_CONTENT_TYPE,
};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct ScepQuery {
    operation: Option<String>,
    message: Option<String>,
}

fn text(status: StatusCode, msg: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], msg).into_response()
}

pub async fn scep(
    Extension(enroll): Extension<Arc<EnrollmentService>>,
    method: Method,
    query: Result<Query<ScepQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Response {
    let Ok(Query(q)) = query else {
        return text(StatusCode::BAD_REQUEST, "malformed query");
    };
    match q.operation.as_deref() {
        Some("GetCACaps") => {
            ([(header::CONTENT_TYPE, CA_CAPS_CONTENT_TYPE)], CA_CAPS).into_response()
        }
        Some("GetCACert") => match scep::ca_cert_response(enroll.ca()) {
            Ok((ct, der)) => ([(header::CONTENT_TYPE, ct)], der).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "GetCACert failed");
                text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        },
        Some("PKIOperation") => {
            let der = if method == Method::POST {
                match axum::body::to_bytes(body, MAX_PKI_MESSAGE).await {
                    Ok(b) => b.to_vec(),
                    Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "PKIOperation too large"),
                }
            } else {
                let Some(m) = q.message else {
                    return text(StatusCode::BAD_REQUEST, "PKIOperation needs a message");
                };
                if m.len() > MAX_PKI_MESSAGE * 4 / 3 + 4 {
                    return text(StatusCode::PAYLOAD_TOO_LARGE, "PKIOperation too large");
                }
                // Form decoding turns an unescaped '+' into a space.
                let m: String = m
                    .chars()
                    .filter(|c| !matches!(c, '\r' | '\n'))
                    .map(|c| if c == ' ' { '+' } else { c })
                    .collect();
                match base64::engine::general_purpose::STANDARD.decode(m.as_bytes()) {
                    Ok(b) => b,
                    Err(_) => return text(StatusCode::BAD_REQUEST, "message is not base64"),
                }
            };
            match enroll.pki_operation(&der).await {
                Ok(ScepOutcome::CertRep(rep)) => {
                    ([(header::CONTENT_TYPE, PKI_MESSAGE_CONTENT_TYPE)], rep).into_response()
                }
                Ok(ScepOutcome::Malformed(_)) => {
                    text(StatusCode::BAD_REQUEST, "not a valid SCEP PKIMessage")
                }
                Err(e) => {
                    tracing::error!(error = %e, "SCEP PKIOperation failed");
                    text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                }
            }
        }
        _ => text(StatusCode::BAD_REQUEST, "unknown SCEP operation"),
    }
}
