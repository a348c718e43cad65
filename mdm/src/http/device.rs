//! Device-facing routes: `PUT /mdm/checkin` (CheckInURL) and `PUT /mdm/connect` (ServerURL).

use super::identity::VerifiedBody;
use super::{AppState, DeviceError, MAX_DEVICE_BODY};
use crate::protocol::{checkin::decode_checkin, report::decode_report};
use crate::service::CheckinResponse;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

const CHECKIN_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm-checkin";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/mdm/checkin", put(checkin))
        .route("/mdm/connect", put(connect))
        .route(
            "/mdm/enroll",
            get(super::enroll::enroll_profile)
                .post(super::enroll::ade_enroll)
                .layer(DefaultBodyLimit::max(
                    russet_certs::machine_info::MAX_MACHINE_INFO_DER,
                )),
        )
        .route("/scep", get(super::scep::scep).post(super::scep::scep))
        .layer(DefaultBodyLimit::max(MAX_DEVICE_BODY))
        .with_state(state)
}

async fn checkin(
    State(state): State<AppState>,
    req: VerifiedBody,
) -> Result<Response, DeviceError> {
    let msg = decode_checkin(&req.body)?;
    let answer = state.service.checkin(&req.identity, &req.body, msg).await?;
    Ok(checkin_response(answer))
}

/// ServerURL also accepts check-in messages when the device labels them so (a profile without a
/// CheckInURL sends everything here).
async fn connect(
    State(state): State<AppState>,
    req: VerifiedBody,
) -> Result<Response, DeviceError> {
    let is_checkin = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(CHECKIN_CONTENT_TYPE));
    if is_checkin {
        return checkin(State(state), req).await;
    }
    let report = decode_report(&req.body)?;
    let next = state
        .service
        .command_report(&req.identity, &req.body, report)
        .await?;
    Ok(match next {
        Some(cmd) => plist_response(cmd.payload),
        // An empty body tells the device there is nothing more to do this session.
        None => StatusCode::OK.into_response(),
    })
}

fn checkin_response(answer: CheckinResponse) -> Response {
    match answer {
        CheckinResponse::Empty => StatusCode::OK.into_response(),
        CheckinResponse::Plist(body) => plist_response(body),
        CheckinResponse::Json(body) => {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        CheckinResponse::Gone => StatusCode::GONE.into_response(),
    }
}

fn plist_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/xml")], body).into_response()
}
