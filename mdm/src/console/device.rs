//! One device (`/devices/{udid}`, a UDID or a serial number): its facts and inventory,
//! groups, profiles, command history, push state, DEP/ADE, FileVault and Recovery Lock, and
//! the actions on it. Every action calls the service the API's route calls (push now, a
//! command, lock, wipe, cancel the wipe, the three reveals), so the rules and the audit are
//! theirs; the answer is this page again, with what was done or why it was refused beside the
//! form, and a secret (a lock's PIN, a revealed one) shown once, on that answer only.
//! How the page's parts are put into words is in `device_view.rs`, its secrets in
//! `device_secrets.rs`.

use super::device_secrets::{self as secrets, Secret};
use super::device_view as view;
use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render_with};
use super::session::Console;
use crate::http::AppState;
use crate::protocol::command::Command;
use crate::service::ServiceError;
use crate::service::audit::required_reason;
use crate::service::lockwipe::{LockRequest, WipeRequest};
use crate::store::PinFilter;
use crate::store::filevault::KeyFilter;
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices/{udid}", get(show))
        .route("/devices/{udid}/push", post(push))
        .route("/devices/{udid}/commands", post(command))
        .route("/devices/{udid}/lock", post(lock))
        .route("/devices/{udid}/wipe", post(wipe))
        .route("/devices/{udid}/wipe/cancel", post(cancel_wipe))
        .route("/devices/{udid}/unlock-pins", post(reveal_pins))
        .route(
            "/devices/{udid}/filevault-keys",
            post(reveal_filevault_keys),
        )
        .route(
            "/devices/{udid}/recovery-lock-passwords",
            post(reveal_recovery_lock_passwords),
        )
}

/// The commands the page offers (all plain: no keys to fill in).
pub const COMMON_COMMANDS: &[(&str, &str)] = &[
    ("DeviceInformation", "Device information"),
    ("SecurityInfo", "Security info"),
    ("ProfileList", "Profile list"),
    ("InstalledApplicationList", "Installed applications"),
    ("CertificateList", "Certificate list"),
    ("RestartDevice", "Restart"),
    ("ShutDownDevice", "Shut down"),
];

/// What the forms say after an action: a field's refusal, what was typed.
#[derive(Default)]
pub struct Forms {
    pub command_error: Option<String>,
    /// FileVault rotation, Recovery Lock, inventory refresh, delete (`device_upkeep.rs`).
    pub upkeep_error: Option<String>,
    pub lock_error: Option<String>,
    pub wipe_error: Option<String>,
    pub wipe_serial: String,
    pub reveal_error: Option<String>,
    /// Which reveal form the error is for: `pin`, `filevault` or `recovery-lock`.
    pub reveal_form: &'static str,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    chrome: Chrome,
    d: view::DeviceSheet,
    forms: Forms,
    secret: Option<Secret>,
    commands: &'static [(&'static str, &'static str)],
}

/// The UDID of the device a path names (a UDID or a serial number).
pub(super) async fn resolve(state: &AppState, name: &str) -> Result<String, ConsoleError> {
    state
        .service
        .udid_of(name)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("no device {}", name.trim())))
}

/// The page of `udid`, with what an action left to say.
pub(super) async fn page(
    state: &AppState,
    console: &Console,
    udid: &str,
    status: StatusCode,
    notice: Option<Notice>,
    forms: Forms,
    secret: Option<Secret>,
) -> Result<Response, ConsoleError> {
    let d = view::sheet(state, udid).await?;
    let chrome = Chrome::new(console, Nav::Devices, d.title.clone()).with_notice(notice);
    render_with(
        status,
        &DevicePage {
            chrome,
            d,
            forms,
            secret,
            commands: COMMON_COMMANDS,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    page(
        &state,
        &console,
        &udid,
        StatusCode::OK,
        None,
        Forms::default(),
        None,
    )
    .await
}

/// The answer to an action refused by its service: the page under the refusal's status,
/// the reason beside the form (`place` puts it there) and at the top.
pub(super) async fn refused(
    state: &AppState,
    console: &Console,
    udid: &str,
    e: ServiceError,
    place: impl FnOnce(&mut Forms, String),
) -> Result<Response, ConsoleError> {
    let (status, message) = refusal(e);
    let mut forms = Forms::default();
    place(&mut forms, message.clone());
    page(
        state,
        console,
        udid,
        status,
        Notice::refused(message),
        forms,
        None,
    )
    .await
}

async fn push(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    match state.push.push_now(&udid).await {
        Ok(outcome) => {
            let notice = match outcome {
                russet_apns::PushOutcome::Delivered => {
                    Notice::done("Push sent: APNs accepted it; the Mac connects when it can.")
                }
                other => Notice::refused(format!("APNs did not take the push: {other:?}")),
            };
            page(
                &state,
                &console,
                &udid,
                StatusCode::OK,
                notice,
                Forms::default(),
                None,
            )
            .await
        }
        Err(e) => refused(&state, &console, &udid, e, |f, m| f.command_error = Some(m)).await,
    }
}

#[derive(Deserialize)]
struct CommandForm {
    request_type: Option<String>,
}

/// The command a request type from the page stands for (DeviceInformation asks what
/// inventory asks).
fn common_command(request_type: &str) -> Result<Command, ServiceError> {
    use crate::protocol::inventory::MACOS_DEVICE_QUERIES;
    if !COMMON_COMMANDS.iter().any(|(rt, _)| *rt == request_type) {
        return Err(ServiceError::BadRequest(format!(
            "request_type {request_type:?} is not one this page sends"
        )));
    }
    let command = if request_type == "DeviceInformation" {
        Command::device_information(MACOS_DEVICE_QUERIES.iter().copied())
    } else {
        Command::from_json(&serde_json::json!({ "request_type": request_type }))
    };
    command.map_err(|e| ServiceError::BadRequest(e.to_string()))
}

async fn command(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let rt = form.request_type.unwrap_or_default();
    let queued = match common_command(&rt) {
        Ok(command) => {
            state
                .service
                .enqueue_for_device(&command, &udid, console.name())
                .await
        }
        Err(e) => Err(e),
    };
    match queued {
        Ok(outcome) => {
            let notice = Notice::done(format!(
                "{} queued ({}); the Mac gets it at its next connection.",
                outcome.request_type, outcome.command_uuid
            ));
            page(
                &state,
                &console,
                &udid,
                StatusCode::OK,
                notice,
                Forms::default(),
                None,
            )
            .await
        }
        Err(e) => refused(&state, &console, &udid, e, |f, m| f.command_error = Some(m)).await,
    }
}

#[derive(Deserialize)]
struct LockForm {
    pin: Option<String>,
    message: Option<String>,
    phone_number: Option<String>,
}

fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn lock(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(form): Form<LockForm>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let req = LockRequest {
        pin: given(form.pin),
        message: given(form.message),
        phone_number: given(form.phone_number),
    };
    match state.service.lock(&udid, req, console.name()).await {
        Ok(issued) => {
            let secret = secrets::issued_secret("DeviceLock", &issued);
            let notice = Notice::done(format!(
                "DeviceLock queued ({}): write the PIN down now, it is shown once (the vault \
                 keeps it).",
                issued.command_uuid
            ));
            page(
                &state,
                &console,
                &udid,
                StatusCode::OK,
                notice,
                Forms::default(),
                Some(secret),
            )
            .await
        }
        Err(e) => refused(&state, &console, &udid, e, |f, m| f.lock_error = Some(m)).await,
    }
}

#[derive(Deserialize)]
struct WipeForm {
    confirm_serial: Option<String>,
    pin: Option<String>,
    obliteration_behavior: Option<String>,
    force: Option<String>,
}

async fn wipe(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(form): Form<WipeForm>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let typed = form.confirm_serial.clone().unwrap_or_default();
    let req = WipeRequest {
        confirm_serial: form.confirm_serial,
        pin: given(form.pin),
        obliteration_behavior: given(form.obliteration_behavior),
        force: form.force.is_some(),
    };
    match state.service.wipe(&udid, req, console.name()).await {
        Ok(issued) => {
            let secret = secrets::issued_secret("EraseDevice", &issued);
            let notice = Notice::done(format!(
                "EraseDevice queued ({}): the Mac is erased when it next connects. Its PIN is \
                 shown once below.",
                issued.command_uuid
            ));
            page(
                &state,
                &console,
                &udid,
                StatusCode::OK,
                notice,
                Forms::default(),
                Some(secret),
            )
            .await
        }
        Err(e) => {
            refused(&state, &console, &udid, e, |f, m| {
                f.wipe_error = Some(m);
                f.wipe_serial = typed;
            })
            .await
        }
    }
}

async fn cancel_wipe(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    match state.service.cancel_wipe(&udid, console.name()).await {
        Ok(outcome) => {
            let notice = if outcome.canceled.is_empty() {
                Notice::refused("The wipe was already delivered: it can no longer be canceled.")
            } else {
                Notice::done("The pending wipe is canceled.")
            };
            page(
                &state,
                &console,
                &udid,
                StatusCode::OK,
                notice,
                Forms::default(),
                None,
            )
            .await
        }
        Err(e) => refused(&state, &console, &udid, e, |f, m| f.wipe_error = Some(m)).await,
    }
}

#[derive(Deserialize)]
struct RevealForm {
    reason: Option<String>,
}

/// Whose secrets a reveal asks for: the Mac's serial number when it has one (every UDID it
/// had, as a re-enrolled Mac's older secrets may be the ones that open it), else its UDID.
async fn reveal_target(
    state: &AppState,
    udid: &str,
) -> Result<(Option<String>, Option<String>), ConsoleError> {
    let device = state.service.device(udid).await?;
    Ok(match device.serial_number {
        Some(serial) => (Some(serial), None),
        None => (None, Some(device.udid)),
    })
}

/// Run a reveal: the reason is required, the service audits and opens; the secrets are
/// shown once on the answer.
async fn revealed(
    state: &AppState,
    console: &Console,
    udid: &str,
    form_name: &'static str,
    opened: Result<Secret, ServiceError>,
) -> Result<Response, ConsoleError> {
    match opened {
        Ok(secret) => {
            let notice = Notice::done(format!(
                "{}: the reveal is in the audit log with your reason.",
                secret.title
            ));
            page(
                state,
                console,
                udid,
                StatusCode::OK,
                notice,
                Forms::default(),
                Some(secret),
            )
            .await
        }
        Err(e) => {
            refused(state, console, udid, e, |f, m| {
                f.reveal_error = Some(m);
                f.reveal_form = form_name;
            })
            .await
        }
    }
}

async fn reveal_pins(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(form): Form<RevealForm>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let (serial, by_udid) = reveal_target(&state, &udid).await?;
    let opened = async {
        let reason = required_reason(form.reason.as_deref())?;
        let filter = PinFilter {
            serial,
            udid: by_udid,
        };
        let pins = state
            .service
            .reveal_pins(&filter, console.name(), Some(reason))
            .await?;
        Ok(secrets::pins_secret(&pins))
    }
    .await;
    revealed(&state, &console, &udid, "pin", opened).await
}

async fn reveal_filevault_keys(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(form): Form<RevealForm>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let (serial, by_udid) = reveal_target(&state, &udid).await?;
    let opened = async {
        let reason = required_reason(form.reason.as_deref())?;
        let filter = KeyFilter {
            serial,
            udid: by_udid,
        };
        let keys = state
            .service
            .reveal_filevault_keys(&filter, console.name(), Some(reason))
            .await?;
        Ok(secrets::filevault_secret(&keys))
    }
    .await;
    revealed(&state, &console, &udid, "filevault", opened).await
}

async fn reveal_recovery_lock_passwords(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(form): Form<RevealForm>,
) -> Result<Response, ConsoleError> {
    let udid = resolve(&state, &name).await?;
    let (serial, by_udid) = reveal_target(&state, &udid).await?;
    let opened = async {
        let reason = required_reason(form.reason.as_deref())?;
        let filter = PinFilter {
            serial,
            udid: by_udid,
        };
        let reveal = state
            .service
            .reveal_recovery_lock_passwords(&filter, console.name(), Some(reason))
            .await?;
        Ok(secrets::recovery_lock_secret(&reveal))
    }
    .await;
    revealed(&state, &console, &udid, "recovery-lock", opened).await
}
