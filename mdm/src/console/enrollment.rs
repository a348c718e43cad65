//! Enrollment (`/enrollment`): make an enrollment link (who may download the enrollment
//! profile: a number of uses, an expiry), shown once, and the Macs whose device identity
//! expires soon. The link is made by the service `POST /api/v1/enroll-links` calls (its checks,
//! its audit entry `enroll_link.create`); the expiring identities are
//! `GET /api/v1/identities/expiring`'s.

use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render, render_with};
use super::session::Console;
use crate::http::AppState;
use crate::service::devices::EXPIRY_WARNING_DAYS;
use crate::timefmt::{parse_duration_secs, rfc3339, rfc3339_opt};
use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/enrollment", get(show).post(create_link))
}

/// A link just made: its URL carries the token, so it is shown on this answer only.
struct NewLink {
    url: String,
    uses: String,
    expires: String,
}

struct Expiring {
    udid: String,
    serial: String,
    not_after: String,
}

#[derive(Template)]
#[template(path = "enrollment.html")]
struct EnrollmentPage {
    chrome: Chrome,
    link: Option<NewLink>,
    uses_error: Option<String>,
    expires_error: Option<String>,
    uses: String,
    expires: String,
    expiring: Vec<Expiring>,
    within_days: i64,
}

async fn page(
    state: &AppState,
    console: &Console,
    status: StatusCode,
    notice: Option<Notice>,
    fill: impl FnOnce(&mut EnrollmentPage),
) -> Result<Response, ConsoleError> {
    let expiring = state
        .service
        .expiring_identities(EXPIRY_WARNING_DAYS)
        .await?
        .into_iter()
        .map(|d| Expiring {
            udid: d.udid,
            serial: d.serial_number.unwrap_or_default(),
            not_after: rfc3339(d.identity_not_after),
        })
        .collect();
    let mut p = EnrollmentPage {
        chrome: Chrome::new(console, Nav::Enrollment, "Enrollment").with_notice(notice),
        link: None,
        uses_error: None,
        expires_error: None,
        uses: String::new(),
        expires: "7d".into(),
        expiring,
        within_days: EXPIRY_WARNING_DAYS,
    };
    fill(&mut p);
    if status.is_success() {
        render(&p)
    } else {
        render_with(status, &p)
    }
}

async fn show(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    page(&state, &console, StatusCode::OK, None, |_| {}).await
}

#[derive(Deserialize)]
struct LinkForm {
    /// Empty: any number of uses.
    uses: Option<String>,
    /// `30m`, `24h`, `7d` or seconds; empty: no expiry.
    expires: Option<String>,
}

async fn create_link(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<LinkForm>,
) -> Result<Response, ConsoleError> {
    let uses_text = form.uses.unwrap_or_default().trim().to_string();
    let expires_text = form.expires.unwrap_or_default().trim().to_string();
    let refill = |p: &mut EnrollmentPage| {
        p.uses = uses_text.clone();
        p.expires = expires_text.clone();
    };
    let uses = if uses_text.is_empty() {
        None
    } else {
        match uses_text.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let m = "uses: a whole number of enrollments, or empty for any".to_string();
                return page(
                    &state,
                    &console,
                    StatusCode::BAD_REQUEST,
                    Notice::refused(&m),
                    |p| {
                        refill(p);
                        p.uses_error = Some(m.clone());
                    },
                )
                .await;
            }
        }
    };
    let expires_in = if expires_text.is_empty() {
        None
    } else {
        match parse_duration_secs(&expires_text) {
            Some(s) => Some(s),
            None => {
                let m = "expires: use seconds or e.g. 30m, 24h, 7d; empty for never".to_string();
                return page(
                    &state,
                    &console,
                    StatusCode::BAD_REQUEST,
                    Notice::refused(&m),
                    |p| {
                        refill(p);
                        p.expires_error = Some(m.clone());
                    },
                )
                .await;
            }
        }
    };
    match state
        .enroll
        .create_link(uses, expires_in, console.name())
        .await
    {
        Ok(link) => {
            let new = NewLink {
                url: link.url,
                uses: link
                    .uses
                    .map_or("any number".to_string(), |u| u.to_string()),
                expires: rfc3339_opt(link.expires_at).unwrap_or_else(|| "never".into()),
            };
            let notice = Notice::done(
                "Link made: copy it now, it is shown once (Russet keeps only its hash).",
            );
            page(&state, &console, StatusCode::OK, notice, |p| {
                p.link = Some(new);
            })
            .await
        }
        Err(e) => {
            let (status, m) = refusal(e);
            let on_expiry = m.contains("expires_in");
            page(&state, &console, status, Notice::refused(&m), |p| {
                refill(p);
                if on_expiry {
                    p.expires_error = Some(m.clone());
                } else {
                    p.uses_error = Some(m.clone());
                }
            })
            .await
        }
    }
}
