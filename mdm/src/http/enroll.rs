//! `GET /mdm/enroll` (the signed enrollment profile) and `POST /mdm/enroll` (ADE: an
//! Apple-signed MachineInfo in, the profile out).

use super::{AppState, DeviceError};
use crate::protocol::machine_info::decode_machine_info;
use crate::service::ade::AdeAnswer;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

pub const PROFILE_CONTENT_TYPE: &str = "application/x-apple-aspen-config";

#[derive(Deserialize)]
pub struct EnrollQuery {
    token: Option<String>,
}

/// The profile for a browser or `curl` with an enrollment link's token. A malformed query
/// counts as no token.
pub async fn enroll_profile(
    State(state): State<AppState>,
    query: Result<Query<EnrollQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, DeviceError> {
    let token = query.ok().and_then(|Query(q)| q.token);
    let body = state.enroll.profile(token.as_deref()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, PROFILE_CONTENT_TYPE),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"russet-enroll.mobileconfig\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// `POST /mdm/enroll`: the signature (Apple's device CA) is checked before the MachineInfo
/// is parsed. Setup Assistant shows its own message for a refusal.
pub async fn ade_enroll(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DeviceError> {
    let body = body?;
    let signed = state.enroll.machine_info_trust().verify(&body)?;
    let info = decode_machine_info(&signed.content).map_err(|e| {
        DeviceError::MalformedMachineInfo(format!("{e} (signer {})", signed.signer_subject))
    })?;
    Ok(
        match state.service.ade_enroll(&state.enroll, &info).await? {
            AdeAnswer::Profile(body) => {
                ([(header::CONTENT_TYPE, PROFILE_CONTENT_TYPE)], body).into_response()
            }
            // Not an error: Apple's documented answer that makes Setup Assistant update macOS
            // first (a 403 with `com.apple.softwareupdate.required`).
            AdeAnswer::SoftwareUpdateRequired(body) => (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
        },
    )
}
