//! Admin endpoints for push: push a device now, the push certificate, the vendor signer.

use super::admin::{Actor, parse_json};
use super::{AdminError, AppState};
use crate::push::certificate::{self, ImportInput};
use crate::push::dispatcher::PushReport;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use russet_apns::PushOutcome;
use russet_certs::pushcert::PushCsrSubject;
use serde_json::{Value, json};

pub async fn push_device(
    State(state): State<AppState>,
    Path(udid): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let report = state
        .dispatcher
        .push_enrollment(&udid)
        .await
        .map_err(|e| AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let (status, result) = match report {
        PushReport::Sent(PushOutcome::Delivered) => ("delivered", Value::Null),
        PushReport::Sent(other) => ("failed", json!(format!("{other:?}"))),
        PushReport::Blocked(why) => {
            return Err(AdminError::new(
                StatusCode::CONFLICT,
                "push_blocked",
                format!(
                    "APNs reported this device's token dead: {why}; it is pushed again after its next TokenUpdate"
                ),
            ));
        }
        PushReport::NoCertificate => {
            return Err(AdminError::new(
                StatusCode::CONFLICT,
                "no_push_certificate",
                "no push certificate is configured (russet apns import)",
            ));
        }
        PushReport::NoTarget => {
            return Err(AdminError::not_found(format!(
                "no enrolled device {udid} with a push token"
            )));
        }
    };
    Ok(Json(
        json!({"udid": udid, "push": status, "detail": result}),
    ))
}

pub async fn status(State(state): State<AppState>) -> Result<Json<Value>, AdminError> {
    let status = certificate::status(state.service.store().as_ref()).await?;
    Ok(Json(
        json!({"configured": status.is_some(), "certificate": status}),
    ))
}

pub async fn csr(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let v = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_json(&body)?
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let subject = PushCsrSubject {
        common_name: field("common_name").unwrap_or_else(|| "Russet MDM".into()),
        email: field("email"),
        country: field("country"),
    };
    let pem = certificate::create_csr(
        state.service.store().as_ref(),
        state.service.vault(),
        &subject,
    )
    .await?;
    state
        .service
        .audit(&actor.0, "apns.csr", "push-certificate", json!({}))
        .await?;
    Ok(Json(json!({"csr_pem": pem})))
}

pub async fn import(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let v = parse_json(&body)?;
    let text = |k: &str| -> Result<Option<String>, AdminError> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(AdminError::bad_request(format!("\"{k}\" must be a string"))),
        }
    };
    let input = if let Some(p12) = text("pkcs12")? {
        ImportInput::Pkcs12 {
            der: base64::engine::general_purpose::STANDARD
                .decode(p12.trim())
                .map_err(|_| AdminError::bad_request("\"pkcs12\" must be base64"))?,
            password: text("password")?.unwrap_or_default(),
        }
    } else if let Some(cert) = text("certificate_pem")? {
        ImportInput::Pem {
            cert_pem: cert.into_bytes(),
            key_pem: text("key_pem")?.map(String::into_bytes),
        }
    } else {
        return Err(AdminError::bad_request(
            "give \"certificate_pem\" (with \"key_pem\", or alone for a CSR made by Russet) or \"pkcs12\" with \"password\"",
        ));
    };
    let force = v
        .get("force_new_topic")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let outcome = certificate::import(
        state.service.store().as_ref(),
        state.service.vault(),
        input,
        force,
    )
    .await?;
    state
        .service
        .audit(
            &actor.0,
            "apns.import",
            &outcome.status.topic,
            json!({"topic_changed_from": outcome.topic_changed_from}),
        )
        .await?;
    Ok(Json(json!({
        "certificate": outcome.status,
        "topic_changed_from": outcome.topic_changed_from,
        "warning": outcome.topic_changed_from.as_ref().map(|_| "the push topic changed: every enrolled Mac must re-enroll"),
    })))
}

pub async fn vendor_sign(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let signer = state.vendor.clone().ok_or_else(|| {
        AdminError::new(
            StatusCode::NOT_FOUND,
            "vendor_not_configured",
            "this server has no vendor credentials (--vendor-cert, --vendor-key)",
        )
    })?;
    let v = parse_json(&body)?;
    let csr = v.get("csr_pem").and_then(Value::as_str).ok_or_else(|| {
        AdminError::bad_request("\"csr_pem\" (the customer's CSR, PEM) is required")
    })?;
    let upload = signer.sign(csr.as_bytes())?;
    state
        .service
        .audit(&actor.0, "vendor.sign", "push-csr", json!({}))
        .await?;
    Ok(Json(json!({"upload_file": upload})))
}
