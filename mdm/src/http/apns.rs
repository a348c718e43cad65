//! Admin endpoints for push: push a device now, the push certificate, the vendor signer. The
//! rules and the audit are in `push::PushService`.

use super::extractor::{Actor, JsonBody};
use super::{AdminError, AppState};
use crate::push::certificate::ImportInput;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use russet_apns::PushOutcome;
use russet_certs::pushcert::PushCsrSubject;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices/{udid}/push", post(push_device))
        .route("/apns", get(status))
        .route("/apns/certificate", put(import))
        .route("/apns/csr", post(csr))
        .route("/vendor/sign", post(vendor_sign))
}

async fn push_device(
    State(state): State<AppState>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let (status, detail) = match state.push.push_now(&udid).await? {
        PushOutcome::Delivered => ("delivered", Value::Null),
        other => ("failed", json!(format!("{other:?}"))),
    };
    Ok(Json(
        json!({"udid": udid, "push": status, "detail": detail}),
    ))
}

async fn status(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let status = state.push.status().await?;
    Ok(Json(
        json!({"configured": status.is_some(), "certificate": status}),
    ))
}

/// Body of `POST /apns/csr` (everything optional).
#[derive(Deserialize)]
struct CsrBody {
    common_name: Option<String>,
    email: Option<String>,
    country: Option<String>,
}

async fn csr(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<CsrBody>,
) -> Result<Json<Value>, AdminError> {
    let subject = PushCsrSubject {
        common_name: body.common_name.unwrap_or_else(|| "Russet MDM".into()),
        email: body.email,
        country: body.country,
    };
    let pem = state.push.create_csr(&subject, actor.name()).await?;
    Ok(Json(json!({"csr_pem": pem})))
}

/// Body of `PUT /apns/certificate`: `pkcs12` (base64) with `password`, or `certificate_pem`
/// with `key_pem` (or alone, for a CSR made by Russet).
#[derive(Deserialize)]
struct ImportBody {
    pkcs12: Option<String>,
    password: Option<String>,
    certificate_pem: Option<String>,
    key_pem: Option<String>,
    #[serde(default)]
    force_new_topic: bool,
}

async fn import(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<Json<Value>, AdminError> {
    let input = if let Some(p12) = body.pkcs12 {
        ImportInput::Pkcs12 {
            der: base64::engine::general_purpose::STANDARD
                .decode(p12.trim())
                .map_err(|_| AdminError::bad_request("\"pkcs12\" must be base64"))?,
            password: body.password.unwrap_or_default(),
        }
    } else if let Some(cert) = body.certificate_pem {
        ImportInput::Pem {
            cert_pem: cert.into_bytes(),
            key_pem: body.key_pem.map(String::into_bytes),
        }
    } else {
        return Err(AdminError::bad_request(
            "give \"certificate_pem\" (with \"key_pem\", or alone for a CSR made by Russet) or \"pkcs12\" with \"password\"",
        ));
    };
    let outcome = state
        .push
        .import(input, body.force_new_topic, actor.name())
        .await?;
    Ok(Json(json!({
        "certificate": outcome.status,
        "topic_changed_from": outcome.topic_changed_from,
        "warning": outcome.topic_changed_from.as_ref().map(|_| "the push topic changed: every enrolled Mac must re-enroll"),
    })))
}

/// Body of `POST /vendor/sign`.
#[derive(Deserialize)]
struct VendorSignBody {
    /// The customer's CSR, PEM.
    csr_pem: String,
}

async fn vendor_sign(
    State(state): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<VendorSignBody>,
) -> Result<Json<Value>, AdminError> {
    let upload = state.push.vendor_sign(&body.csr_pem, actor.name()).await?;
    Ok(Json(json!({"upload_file": upload})))
}
