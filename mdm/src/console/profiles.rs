//! Configuration profiles (`/profiles`): the catalog (identifier, name, version, scope,
//! assignments, Macs by state), uploading a `.mobileconfig` (multipart, through htmx so the
//! CSRF header goes with it; the checks are the catalog's, as for `POST /api/v1/profiles`),
//! deleting; a profile's page: its versions, assigning it to groups and taking it off, and
//! where it stands on each Mac (installed, pending, failed with Apple's error), refreshed
//! while something is under way.

use super::form::{self, FieldRefusal};
use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render, render_with};
use super::session::Console;
use crate::http::{AdminError, AppState};
use crate::profiles::{ProfileDetail, ProfileStatus};
use crate::store::profile_states::ProfileStateRow;
use crate::store::profiles::{ProfileRecord, TargetKind};
use crate::timefmt::rfc3339;
use askama::Template;
use axum::Router;
use axum::extract::{Form, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/profiles", get(list).post(upload))
        .route("/profiles/{identifier}", get(show))
        .route("/profiles/{identifier}/status", get(status))
        .route("/profiles/{identifier}/assignments", post(assign))
        .route("/profiles/{identifier}/assignments/remove", post(unassign))
        .route("/profiles/{identifier}/delete", post(delete))
}

fn to_console(e: crate::profiles::ProfileError) -> ConsoleError {
    ConsoleError::Admin(AdminError::from(e))
}

/// A profile's state on one Mac as the console words it: `verified` (the Mac's own
/// ProfileList shows it) is what an admin calls installed.
fn state_label(state: &str) -> (&'static str, &'static str) {
    match state {
        "verified" => ("installed", "ok"),
        "installing" => ("installing", "warn"),
        "pending" => ("pending", "warn"),
        "failed" => ("failed", "error"),
        "removing" => ("removing", "warn"),
        "removed" => ("removed", ""),
        _ => ("unknown", ""),
    }
}

/// Apple's ErrorChain (or Russet's own reason) of a failure, as one line.
fn error_text(raw: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return raw.chars().take(300).collect();
    };
    let one = |e: &Value| -> Option<String> {
        if let Some(m) = e.get("message").and_then(Value::as_str) {
            return Some(m.to_string());
        }
        let text = e
            .get("LocalizedDescription")
            .or_else(|| e.get("USEnglishDescription"))
            .and_then(Value::as_str)?;
        let domain = e.get("ErrorDomain").and_then(Value::as_str).unwrap_or("");
        let code = e
            .get("ErrorCode")
            .map(|c| c.to_string())
            .unwrap_or_default();
        Some(format!("{text} ({domain} {code})").replace(" ()", ""))
    };
    let parts: Vec<String> = match &v {
        Value::Array(chain) => chain.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    };
    if parts.is_empty() {
        raw.chars().take(300).collect()
    } else {
        parts.join(" — ")
    }
}

/// How many Macs are in each state, in the console's words ("2 installed, 1 pending").
fn counts_line(states: &[ProfileStateRow]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in states {
        *counts.entry(state_label(&s.state).0).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct ProfileRow {
    identifier: String,
    href: String,
    name: String,
    version: i64,
    scope: String,
    /// "1 group, 2 devices".
    assigned: String,
    states: String,
}

/// The upload form, alone (htmx swaps it after an upload is refused) or in the catalog page.
#[derive(Template)]
#[template(path = "profile_upload.html")]
struct UploadForm {
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "profiles.html")]
struct ProfilesPage {
    chrome: Chrome,
    profiles: Vec<ProfileRow>,
    upload: UploadForm,
}

async fn catalog(state: &AppState) -> Result<Vec<ProfileRow>, ConsoleError> {
    let mut rows = Vec::new();
    for p in state.profiles.list(false).await.map_err(to_console)? {
        let st = state
            .profiles
            .status(&p.identifier)
            .await
            .map_err(to_console)?;
        rows.push(row(p, &st));
    }
    Ok(rows)
}

fn row(p: ProfileRecord, st: &ProfileStatus) -> ProfileRow {
    ProfileRow {
        href: format!("/profiles/{}", form::segment(&p.identifier)),
        states: counts_line(&st.states),
        identifier: p.identifier,
        name: p.name,
        version: p.latest_version,
        scope: p.scope,
        assigned: format!(
            "{}, {}",
            form::count(p.group_count.max(0) as u64, "group"),
            form::count(p.device_count.max(0) as u64, "device")
        ),
    }
}

async fn list_page(
    state: &AppState,
    console: &Console,
    notice: Option<Notice>,
) -> Result<Response, ConsoleError> {
    render(&ProfilesPage {
        chrome: Chrome::new(console, Nav::Profiles, "Profiles").with_notice(notice),
        profiles: catalog(state).await?,
        upload: UploadForm { error: None },
    })
}

async fn list(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    list_page(&state, &console, None).await
}

/// `POST /profiles` (multipart, field `mobileconfig`): the catalog's upload. Sent by htmx,
/// which swaps only 2xx answers: a refusal comes back as the form with the reason beside the
/// file field under 200 to htmx, under the API's status to anything else; an upload sends
/// the browser to the profile's page.
async fn upload(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, ConsoleError> {
    let htmx = headers.contains_key("hx-request");
    let mut bytes = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("mobileconfig") => match field.bytes().await {
                Ok(b) => bytes = Some(b),
                Err(e) => return refused(htmx, (e.status(), e.body_text())),
            },
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return refused(htmx, (e.status(), e.body_text())),
        }
    }
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        return refused(
            htmx,
            (
                StatusCode::BAD_REQUEST,
                "choose a .mobileconfig file to upload".into(),
            ),
        );
    };
    match state.profiles.upload(&bytes, console.name()).await {
        Ok(up) => {
            let to = format!("/profiles/{}", form::segment(&up.detail.profile.identifier));
            let mut resp = if htmx {
                StatusCode::NO_CONTENT.into_response()
            } else {
                (StatusCode::SEE_OTHER, ()).into_response()
            };
            let name = if htmx { "hx-redirect" } else { "location" };
            if let Ok(v) = HeaderValue::from_str(&to) {
                resp.headers_mut().insert(name, v);
            }
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(resp)
        }
        Err(e) => refused(htmx, refusal(AdminError::from(e))),
    }
}

fn refused(htmx: bool, (status, message): (StatusCode, String)) -> Result<Response, ConsoleError> {
    let form = UploadForm {
        error: Some(message),
    };
    render_with(if htmx { StatusCode::OK } else { status }, &form)
}

async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(identifier): Path<String>,
) -> Result<Response, ConsoleError> {
    let d = state
        .profiles
        .delete(&identifier, console.name())
        .await
        .map_err(to_console)?;
    let notice = Notice::done(format!(
        "Profile {identifier} deleted: removal sent to {}.",
        form::count(d.reconciled.removals as u64, "Mac")
    ));
    list_page(&state, &console, notice).await
}

struct StateRow {
    device: String,
    href: String,
    channel: &'static str,
    label: &'static str,
    badge: &'static str,
    version: i64,
    attempts: i64,
    error: String,
    updated: String,
}

/// Where the profile stands on each Mac (the page's section, and what it polls).
struct StatusView {
    /// `/profiles/{identifier}`, encoded.
    base: String,
    counts: String,
    rows: Vec<StateRow>,
    /// Something is under way: the section refreshes itself.
    busy: bool,
}

fn status_view(base: &str, st: &ProfileStatus) -> StatusView {
    let rows = st
        .states
        .iter()
        .map(|s| {
            let (label, badge) = state_label(&s.state);
            StateRow {
                href: format!("/devices/{}", form::segment(&s.device_id)),
                device: s.device_id.clone(),
                channel: if s.enrollment_id == s.device_id {
                    "device"
                } else {
                    "user"
                },
                label,
                badge,
                version: s.version,
                attempts: s.attempts,
                error: s.error.as_deref().map(error_text).unwrap_or_default(),
                updated: rfc3339(s.updated_at),
            }
        })
        .collect();
    StatusView {
        base: base.to_string(),
        counts: counts_line(&st.states),
        busy: st
            .states
            .iter()
            .any(|s| matches!(s.state.as_str(), "pending" | "installing" | "removing")),
        rows,
    }
}

#[derive(Template)]
#[template(path = "profile_status.html")]
struct StatusFragment {
    status: StatusView,
}

struct VersionRow {
    version: i64,
    name: String,
    scope: String,
    signed: bool,
    variables: bool,
    uploaded_by: String,
    at: String,
    sha256: String,
}

struct AssignmentRow {
    label: String,
    href: String,
    /// `group` or `device`: the form field that names it for removal.
    field: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    chrome: Chrome,
    identifier: String,
    base: String,
    name: String,
    description: String,
    organization: String,
    scope: String,
    payload_types: String,
    deleted: bool,
    versions: Vec<VersionRow>,
    assignments: Vec<AssignmentRow>,
    /// Groups it may be assigned to (not assigned yet).
    groups: Vec<String>,
    group_error: Option<String>,
    status: StatusView,
}

async fn profile_page(
    state: &AppState,
    console: &Console,
    identifier: &str,
    notice: Option<Notice>,
    group_error: Option<&FieldRefusal>,
) -> Result<Response, ConsoleError> {
    let d: ProfileDetail = state.profiles.show(identifier).await.map_err(to_console)?;
    let st = state
        .profiles
        .status(identifier)
        .await
        .map_err(to_console)?;
    let p = &d.profile;
    let base = format!("/profiles/{}", form::segment(&p.identifier));
    let assigned: Vec<String> = d
        .assignments
        .iter()
        .filter(|a| a.target.kind == TargetKind::Group)
        .map(|a| a.target.name.clone())
        .collect();
    let groups = state
        .service
        .groups()
        .await?
        .into_iter()
        .map(|g| g.record.name)
        .filter(|g| !assigned.contains(g))
        .collect();
    let assignments = d
        .assignments
        .iter()
        .map(|a| match a.target.kind {
            TargetKind::Group => AssignmentRow {
                label: format!("group {}", a.target.name),
                href: format!("/groups/{}", form::segment(&a.target.name)),
                field: "group",
                value: a.target.name.clone(),
            },
            TargetKind::Device => AssignmentRow {
                label: format!("device {}", a.target.name),
                href: format!("/devices/{}", form::segment(&a.target.name)),
                field: "device",
                value: a.target.name.clone(),
            },
        })
        .collect();
    let versions = d
        .versions
        .iter()
        .map(|v| VersionRow {
            version: v.version,
            name: v.name.clone(),
            scope: v.scope.clone(),
            signed: v.signed,
            variables: v.has_variables,
            uploaded_by: v.uploaded_by.clone(),
            at: rfc3339(v.created_at),
            sha256: v.sha256.chars().take(12).collect(),
        })
        .collect();
    let page = ProfilePage {
        chrome: Chrome::new(console, Nav::Profiles, format!("Profile {}", p.name))
            .with_notice(notice),
        identifier: p.identifier.clone(),
        name: p.name.clone(),
        description: p.description.clone().unwrap_or_default(),
        organization: p.organization.clone().unwrap_or_default(),
        scope: p.scope.clone(),
        payload_types: p.payload_types().join(", "),
        deleted: p.deleted_at.is_some(),
        versions,
        assignments,
        groups,
        group_error: group_error.map(|r| r.message.clone()),
        status: status_view(&base, &st),
        base,
    };
    render_with(
        group_error.map(|r| r.status).unwrap_or(StatusCode::OK),
        &page,
    )
}

async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(identifier): Path<String>,
) -> Result<Response, ConsoleError> {
    profile_page(&state, &console, &identifier, None, None).await
}

/// The per-Mac section alone, for htmx's polling.
async fn status(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
) -> Result<Response, ConsoleError> {
    let st = state
        .profiles
        .status(&identifier)
        .await
        .map_err(to_console)?;
    let base = format!("/profiles/{}", form::segment(&identifier));
    render(&StatusFragment {
        status: status_view(&base, &st),
    })
}

#[derive(Deserialize)]
struct TargetForm {
    group: Option<String>,
    device: Option<String>,
}

impl TargetForm {
    fn lists(&self) -> (Vec<String>, Vec<String>) {
        (
            form::given(&self.group).into_iter().collect(),
            form::given(&self.device).into_iter().collect(),
        )
    }
}

async fn assign(
    State(state): State<AppState>,
    console: Console,
    Path(identifier): Path<String>,
    Form(f): Form<TargetForm>,
) -> Result<Response, ConsoleError> {
    let (groups, devices) = f.lists();
    match state
        .profiles
        .assign(&identifier, &groups, &devices, console.name())
        .await
    {
        Ok(out) => {
            let notice = Notice::done(format!(
                "Assigned to {}: {} to install it.",
                groups
                    .iter()
                    .chain(&devices)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                form::count(out.reconciled.installs as u64, "Mac")
            ));
            profile_page(&state, &console, &identifier, notice, None).await
        }
        Err(e) => {
            let r = FieldRefusal::new(refusal(AdminError::from(e)), &["group"], "group");
            profile_page(&state, &console, &identifier, None, Some(&r)).await
        }
    }
}

async fn unassign(
    State(state): State<AppState>,
    console: Console,
    Path(identifier): Path<String>,
    Form(f): Form<TargetForm>,
) -> Result<Response, ConsoleError> {
    let (groups, devices) = f.lists();
    let out = state
        .profiles
        .unassign(&identifier, &groups, &devices, console.name())
        .await
        .map_err(to_console)?;
    let notice = Notice::done(format!(
        "Unassigned {}: removal sent to {}.",
        groups
            .iter()
            .chain(&devices)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        form::count(out.reconciled.removals as u64, "Mac")
    ));
    profile_page(&state, &console, &identifier, notice, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apples_error_chain_reads_as_one_line() {
        let chain = r#"[{"ErrorCode":4001,"ErrorDomain":"MCInstallationErrorDomain","LocalizedDescription":"Profile installation failed."},{"ErrorCode":2003,"ErrorDomain":"MCProfileErrorDomain","USEnglishDescription":"The payload is invalid."}]"#;
        assert_eq!(
            error_text(chain),
            "Profile installation failed. (MCInstallationErrorDomain 4001) — The payload is invalid. (MCProfileErrorDomain 2003)"
        );
        assert_eq!(
            error_text(r#"{"message":"no value for $SERIAL"}"#),
            "no value for $SERIAL"
        );
        assert_eq!(error_text("not json"), "not json");
    }

    #[test]
    fn verified_is_installed() {
        assert_eq!(state_label("verified"), ("installed", "ok"));
        assert_eq!(state_label("failed").1, "error");
    }
}
