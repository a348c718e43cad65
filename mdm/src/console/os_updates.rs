//! OS updates (`/os-updates`): the updates enforced per group through Declarative Device
//! Management, each with its Macs counted by state and listed with theirs; enforcing one on a
//! group (target version, build, deadline, details URL; a refusal beside its field) and
//! deleting one. The rules are `ddm::os_updates`'s, as for `/api/v1/os-updates`.

use super::form::{self, FieldRefusal};
use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render_with};
use super::session::Console;
use crate::ddm::os_updates::OsUpdateStatus;
use crate::http::{AdminError, AppState};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/os-updates", get(list).post(create))
        .route("/os-updates/{id}/delete", post(delete))
}

/// The fields a refusal can name (the service names them first: `deadline: …`).
const FIELDS: &[&str] = &[
    "group",
    "target_os_version",
    "target_build_version",
    "deadline",
    "details_url",
];

struct MacRow {
    udid: String,
    href: String,
    state: &'static str,
    badge: &'static str,
    reason: String,
}

/// Macs in one state.
struct Count {
    state: &'static str,
    n: usize,
    badge: &'static str,
}

struct UpdateRow {
    id: i64,
    group: String,
    group_href: String,
    target: String,
    deadline: String,
    details_url: String,
    counts: Vec<Count>,
    macs: Vec<MacRow>,
    created: String,
}

fn badge(state: &str) -> &'static str {
    match state {
        "up_to_date" => "ok",
        "failed" => "error",
        "unsupported" => "",
        _ => "warn",
    }
}

fn row(s: OsUpdateStatus) -> UpdateRow {
    let counts = s
        .counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(state, n)| Count {
            state,
            n,
            badge: badge(state),
        })
        .collect();
    let r = s.record;
    UpdateRow {
        id: r.id,
        group_href: format!("/groups/{}", form::segment(&r.group_name)),
        target: match &r.target_build_version {
            Some(b) => format!("macOS {} ({b})", r.target_os_version),
            None => format!("macOS {}", r.target_os_version),
        },
        deadline: r.deadline,
        details_url: r.details_url.unwrap_or_default(),
        counts,
        macs: s
            .devices
            .into_iter()
            .map(|d| MacRow {
                href: format!("/devices/{}", form::segment(&d.udid)),
                state: d.state.as_str(),
                badge: badge(d.state.as_str()),
                reason: d.reason.unwrap_or_default(),
                udid: d.udid,
            })
            .collect(),
        created: format!(
            "{} by {}",
            crate::timefmt::rfc3339(r.created_at),
            r.created_by
        ),
        group: r.group_name,
    }
}

/// What the enforce form holds (given back after a refusal).
#[derive(Deserialize, Default)]
struct EnforceForm {
    group: String,
    target_os_version: String,
    target_build_version: Option<String>,
    deadline: String,
    details_url: Option<String>,
}

#[derive(Template)]
#[template(path = "os_updates.html")]
struct OsUpdatesPage {
    chrome: Chrome,
    updates: Vec<UpdateRow>,
    /// Groups without an update (a group has at most one).
    groups: Vec<String>,
    f: EnforceForm,
    refusal: Option<FieldRefusal>,
}

impl OsUpdatesPage {
    /// The refusal's message when it is about `field`.
    fn error(&self, field: &str) -> Option<String> {
        form::error_on(&self.refusal, field)
    }
}

async fn page(
    state: &AppState,
    console: &Console,
    notice: Option<Notice>,
    f: EnforceForm,
    refusal: Option<FieldRefusal>,
) -> Result<Response, ConsoleError> {
    let updates: Vec<UpdateRow> = state
        .ddm
        .os_updates()
        .await
        .map_err(AdminError::from)?
        .into_iter()
        .map(row)
        .collect();
    let groups = state
        .service
        .groups()
        .await?
        .into_iter()
        .map(|g| g.record.name)
        .filter(|g| !updates.iter().any(|u| &u.group == g))
        .collect();
    let status = refusal.as_ref().map(|r| r.status).unwrap_or(StatusCode::OK);
    render_with(
        status,
        &OsUpdatesPage {
            chrome: Chrome::new(console, Nav::OsUpdates, "OS updates").with_notice(notice),
            updates,
            groups,
            f,
            refusal,
        },
    )
}

async fn list(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    page(&state, &console, None, EnforceForm::default(), None).await
}

async fn create(
    State(state): State<AppState>,
    console: Console,
    Form(f): Form<EnforceForm>,
) -> Result<Response, ConsoleError> {
    let build = form::given(&f.target_build_version);
    let details = form::given(&f.details_url);
    match state
        .ddm
        .create_os_update(
            &f.group,
            &f.target_os_version,
            build.as_deref(),
            &f.deadline,
            details.as_deref(),
            console.name(),
        )
        .await
    {
        Ok(r) => {
            let notice = Notice::done(format!(
                "macOS {} enforced on {} by {}: its Macs are told now.",
                r.target_os_version, r.group_name, r.deadline
            ));
            page(&state, &console, notice, EnforceForm::default(), None).await
        }
        Err(e) => {
            let r = FieldRefusal::new(refusal(e), FIELDS, "group");
            page(&state, &console, None, f, Some(r)).await
        }
    }
}

async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ConsoleError::NotFound(format!("no OS update {id}")))?;
    let r = state.ddm.delete_os_update(id, console.name()).await?;
    let notice = Notice::done(format!(
        "OS update {id} (macOS {} on {}) deleted.",
        r.target_os_version, r.group_name
    ));
    page(&state, &console, notice, EnforceForm::default(), None).await
}
