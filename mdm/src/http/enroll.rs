//! `GET /mdm/enroll` (the signed enrollment profile), `POST /mdm/enroll` (ADE: Apple-signed
//! MachineInfo in, profile out) and the admin endpoints for enrollment links and identity
//! expiry. The enrollment service reaches handlers as an `Extension`.

use super::AdminError;
use super::admin::Actor;
use crate::protocol::machine_info::decode_machine_info;
use crate::service::ade::AdeAnswer;
use crate::service::enrollment::{EnrollError, EnrollmentService, PLACEHOLDER_TOPIC_WARNING};
use crate::service::now_ms;
use crate::store::{AuditRecord, DeviceView};
use crate::timefmt::rfc3339_opt;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use russet_certs::machine_info::MachineInfoError;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub const PROFILE_CONTENT_TYPE: &str = "application/x-apple-aspen-config";
/// Identities expiring within this many days are reported.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Deserialize)]
pub struct EnrollQuery {
    token: Option<String>,
}

pub async fn enroll_profile(
    Extension(enroll): Extension<Arc<EnrollmentService>>,
    query: Result<Query<EnrollQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = query.ok().and_then(|Query(q)| q.token);
    match enroll.profile(token.as_deref()).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, PROFILE_CONTENT_TYPE),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"russet-enroll.mobileconfig\"",
                ),
            ],
            body,
        )
            .into_response(),
        Err(EnrollError::Forbidden(why)) => {
            tracing::warn!(reason = why, "enrollment profile refused");
            (StatusCode::FORBIDDEN, why).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "enrollment profile failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// `POST /mdm/enroll`: the signature (Apple's device CA) is checked before the MachineInfo
/// is parsed. Refusals are 400/403 with a plain text; Setup Assistant shows its own message.
pub async fn ade_enroll(
    State(state): State<super::AppState>,
    Extension(enroll): Extension<Arc<EnrollmentService>>,
    body: Bytes,
) -> Response {
    let signed = match enroll.machine_info_trust().verify(&body) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "ADE enrollment refused");
            let status = match e {
                MachineInfoError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                MachineInfoError::Malformed(_) => StatusCode::BAD_REQUEST,
                MachineInfoError::BadSignature | MachineInfoError::Untrusted(_) => {
                    StatusCode::FORBIDDEN
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return (status, "the MachineInfo signature is not acceptable").into_response();
        }
    };
    let info = match decode_machine_info(&signed.content) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, signer = %signed.signer_subject, "ADE: unreadable MachineInfo");
            return (StatusCode::BAD_REQUEST, "malformed MachineInfo").into_response();
        }
    };
    match state.service.ade_enroll(&enroll, &info).await {
        Ok(AdeAnswer::Profile(body)) => {
            ([(header::CONTENT_TYPE, PROFILE_CONTENT_TYPE)], body).into_response()
        }
        Ok(AdeAnswer::SoftwareUpdateRequired(body)) => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(EnrollError::Forbidden(why)) => (StatusCode::FORBIDDEN, why).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "ADE enrollment failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct LinkRequest {
    uses: Option<i64>,
    /// Seconds, or a duration such as `"30m"`, `"24h"`, `"7d"`.
    expires_in: Option<Value>,
}

/// `30`, `"30"`, `"30s"`, `"15m"`, `"24h"`, `"7d"` → seconds.
pub fn parse_duration_secs(text: &str) -> Option<i64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 's'),
    };
    let n: i64 = num.trim().parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|s| *s > 0)
}

pub async fn create_link(
    State(state): State<super::AppState>,
    Extension(actor): Extension<Actor>,
    Extension(enroll): Extension<Arc<EnrollmentService>>,
    body: Result<Json<LinkRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let Json(req) = body.map_err(|e| AdminError::bad_request(e.body_text()))?;
    if let Some(u) = req.uses
        && u < 1
    {
        return Err(AdminError::bad_request("\"uses\" must be at least 1"));
    }
    let expires_in =
        match &req.expires_in {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_i64().filter(|s| *s > 0).ok_or_else(|| {
                AdminError::bad_request("\"expires_in\" must be positive seconds")
            })?),
            Some(Value::String(s)) => Some(parse_duration_secs(s).ok_or_else(|| {
                AdminError::bad_request("\"expires_in\": use seconds or e.g. \"24h\", \"7d\"")
            })?),
            Some(_) => {
                return Err(AdminError::bad_request(
                    "\"expires_in\" must be a number or string",
                ));
            }
        };
    let link = enroll
        .create_link(req.uses, expires_in, &actor.0)
        .await
        .map_err(|e| match e {
            EnrollError::Store(e) => AdminError::from(e),
            other => {
                tracing::error!(error = %other, "creating an enrollment link failed");
                AdminError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        })?;
    state
        .service
        .store()
        .audit_append(&AuditRecord {
            at: now_ms(),
            actor: actor.0,
            action: "enroll_link.create".into(),
            target: "enroll-link".into(),
            detail: json!({"uses": link.uses, "expires_at": rfc3339_opt(link.expires_at)}),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "url": link.url,
            "token": link.token,
            "uses": link.uses,
            "expires_at": rfc3339_opt(link.expires_at),
        })),
    ))
}

#[derive(Deserialize)]
pub struct ExpiringQuery {
    within_days: Option<i64>,
    expiring_within_days: Option<i64>,
}

/// `GET /api/v1/identities/expiring?within_days=30`: devices whose identity expires soon.
pub async fn expiring_identities(
    State(state): State<super::AppState>,
    query: Result<Query<ExpiringQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    let days = q
        .within_days
        .or(q.expiring_within_days)
        .unwrap_or(EXPIRY_WARNING_DAYS)
        .clamp(0, 3650);
    let before = now_ms().saturating_add(days * DAY_MS);
    let list = state.service.store().expiring_identities(before).await?;
    let devices: Vec<Value> = list
        .iter()
        .map(|d| {
            json!({
                "udid": d.udid,
                "serial_number": d.serial_number,
                "certificate_sha256": d.identity_cert_sha256,
                "not_after": rfc3339_opt(Some(d.identity_not_after)),
            })
        })
        .collect();
    Ok(Json(json!({"within_days": days, "devices": devices})))
}

/// Extra fields of the device view: identity expiry and the placeholder-topic warning.
pub async fn device_extras(
    enroll: Option<&EnrollmentService>,
    device: &DeviceView,
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let soon = device
        .identity_not_after
        .is_some_and(|t| t < now_ms().saturating_add(EXPIRY_WARNING_DAYS * DAY_MS));
    out.insert("identity_expires_within_30_days".into(), Value::Bool(soon));
    let mut warnings = Vec::new();
    if soon {
        warnings.push(Value::String(
            "the identity certificate expires within 30 days: the Mac renews it by SCEP, or \
             reinstall the enrollment profile"
                .into(),
        ));
    }
    if let Some(enroll) = enroll
        && let Ok((topic, true)) = enroll.topic().await
        && device.topic.as_deref() == Some(topic.as_str())
    {
        warnings.push(Value::String(PLACEHOLDER_TOPIC_WARNING.into()));
    }
    out.insert("warnings".into(), Value::Array(warnings));
    out
}
