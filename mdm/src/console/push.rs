//! The push certificate (`/push`): its status (topic, expiry, warnings, APNs' last refusal),
//! a CSR to download for the vendor or Apple's portal, and import or renewal (PEM
//! certificate with its key, or PKCS#12 with its password), as `PUT /api/v1/apns/certificate`
//! takes. The topic guard is `PushService`'s: a certificate for another topic is refused
//! unless forced, and the refusal is shown beside the field.

use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render_with};
use super::session::Console;
use crate::http::{AdminError, AppState};
use crate::push::certificate::ImportInput;
use askama::Template;
use axum::Router;
use axum::extract::{Form, Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use russet_certs::pushcert::PushCsrSubject;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/push", get(page))
        .route("/push/csr", post(csr))
        .route("/push/certificate", post(import))
}

/// The active certificate as the page shows it.
struct CertView {
    topic: String,
    subject: String,
    not_after: String,
    days_left: i64,
    warning: Option<String>,
    alert: Option<String>,
    imported_at: String,
}

/// Which upload field a refusal belongs beside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Certificate,
    Pkcs12,
}

#[derive(Template)]
#[template(path = "push.html")]
struct PushPage {
    chrome: Chrome,
    cert: Option<CertView>,
    placeholder_warning: &'static str,
    /// The refusal of the last import, beside the field it concerns.
    error: Option<(Field, String)>,
    /// The last refusal was the topic guard: offer the override.
    topic_refused: bool,
    csr_error: Option<String>,
}

impl PushPage {
    fn error_on(&self, field: &str) -> Option<&str> {
        let want = match field {
            "pkcs12" => Field::Pkcs12,
            _ => Field::Certificate,
        };
        self.error
            .as_ref()
            .filter(|(f, _)| *f == want)
            .map(|(_, m)| m.as_str())
    }
}

async fn build(state: &AppState, chrome: Chrome) -> Result<PushPage, ConsoleError> {
    let cert = state.push.status().await?.map(|s| CertView {
        topic: s.topic,
        subject: s.subject,
        not_after: s.not_after,
        days_left: s.days_left,
        warning: s.warning,
        alert: s.alert,
        imported_at: s.imported_at,
    });
    Ok(PushPage {
        chrome,
        cert,
        placeholder_warning: crate::service::enrollment::PLACEHOLDER_TOPIC_WARNING,
        error: None,
        topic_refused: false,
        csr_error: None,
    })
}

async fn page(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    let p = build(&state, Chrome::new(&console, Nav::Push, "Push certificate")).await?;
    render_with(StatusCode::OK, &p)
}

#[derive(Deserialize)]
struct CsrForm {
    #[serde(default)]
    common_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    country: String,
}

/// A CSR as a file to hand to the vendor (or Apple's portal); its key stays sealed in Russet.
async fn csr(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<CsrForm>,
) -> Result<Response, ConsoleError> {
    let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let subject = PushCsrSubject {
        common_name: given(&form.common_name).unwrap_or_else(|| "Russet MDM".into()),
        email: given(&form.email),
        country: given(&form.country),
    };
    match state.push.create_csr(&subject, console.name()).await {
        Ok(pem) => Ok((
            [
                (header::CONTENT_TYPE, "application/pkcs10"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"russet-push.csr\"",
                ),
            ],
            pem,
        )
            .into_response()),
        Err(e) => {
            let (status, message) = refusal(e);
            let mut p = build(&state, Chrome::new(&console, Nav::Push, "Push certificate")).await?;
            p.csr_error = Some(message);
            render_with(status, &p)
        }
    }
}

/// What the import form sent.
#[derive(Default)]
struct Upload {
    certificate: Vec<u8>,
    key: Vec<u8>,
    pkcs12: Vec<u8>,
    password: String,
    force_new_topic: bool,
}

async fn read_upload(mut form: Multipart) -> Result<Upload, AdminError> {
    let mut up = Upload::default();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| AdminError::bad_request(e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| AdminError::bad_request(e.body_text()))?;
        match name.as_str() {
            "certificate" => up.certificate = bytes.to_vec(),
            "key" => up.key = bytes.to_vec(),
            "pkcs12" => up.pkcs12 = bytes.to_vec(),
            "password" => up.password = String::from_utf8_lossy(&bytes).into_owned(),
            "force_new_topic" => up.force_new_topic = true,
            _ => {}
        }
    }
    Ok(up)
}

/// Import or renew, multipart through htmx (the CSRF token travels in its header).
async fn import(
    State(state): State<AppState>,
    console: Console,
    form: Multipart,
) -> Result<Response, ConsoleError> {
    let mut field = Field::Certificate;
    let result = match read_upload(form).await {
        Err(e) => Err(e),
        Ok(up) => {
            let input = if !up.pkcs12.is_empty() {
                field = Field::Pkcs12;
                Some(ImportInput::Pkcs12 {
                    der: up.pkcs12,
                    password: up.password,
                })
            } else if !up.certificate.is_empty() {
                Some(ImportInput::Pem {
                    cert_pem: up.certificate,
                    key_pem: Some(up.key).filter(|k| !k.is_empty()),
                })
            } else {
                None
            };
            match input {
                None => Err(AdminError::bad_request(
                    "choose the certificate (PEM, with its key unless it answers a CSR made \
                     here) or a PKCS#12 file",
                )),
                Some(input) => state
                    .push
                    .import(input, up.force_new_topic, console.name())
                    .await
                    .map_err(AdminError::from),
            }
        }
    };
    let chrome = Chrome::new(&console, Nav::Push, "Push certificate");
    match result {
        Ok(outcome) => {
            let text = match &outcome.topic_changed_from {
                Some(old) => format!(
                    "Imported the certificate for {} (was {old}): every enrolled Mac must \
                     re-enroll to be woken by push again.",
                    outcome.status.topic
                ),
                None => format!(
                    "Imported: {} valid until {}.",
                    outcome.status.topic, outcome.status.not_after
                ),
            };
            let notice = if outcome.topic_changed_from.is_some() {
                Notice::refused(text)
            } else {
                Notice::done(text)
            };
            let p = build(&state, chrome.with_notice(notice)).await?;
            render_with(StatusCode::OK, &p)
        }
        Err(e) => {
            let conflict = matches!(
                &e,
                AdminError::Service(crate::service::ServiceError::Conflict(_))
            );
            let (status, message) = refusal(e);
            let mut p = build(&state, chrome).await?;
            p.error = Some((field, message));
            p.topic_refused = conflict;
            render_with(status, &p)
        }
    }
}
