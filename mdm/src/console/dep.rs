//! DEP (`/dep`): the links to Apple Business/School Manager (create one, download its
//! certificate for Apple, upload the server token Apple hands back), their status, the device
//! records with Russet's statuses, the enrollment profiles (define, assign, remove), and "sync
//! now" with its progress. Every action is `DepService`'s, as for `/api/v1/dep`.

use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render_with};
use super::session::Console;
use crate::dep::{DepStatus, LinkStatus, views};
use crate::http::{AdminError, AppState, dep_public_message};
use crate::store::dep::DepDeviceFilter;
use crate::timefmt::{ago, now_ms, rfc3339};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dep", get(page))
        .route("/dep/links", post(create_link))
        .route("/dep/links/{name}/certificate", get(certificate))
        .route("/dep/links/{name}/token", post(upload_token))
        .route("/dep/sync", post(sync_now))
        .route("/dep/sync/{run}", get(sync_progress))
        .route("/dep/profiles", post(create_profile))
        .route("/dep/assign", post(assign))
        .route("/dep/remove", post(remove))
}

/// Device records shown per page.
const PAGE: u32 = 100;

/// A link as the page shows it.
pub(super) struct LinkRow {
    pub name: String,
    /// Apple's name for the MDM server and the organisation, once a token is in.
    pub account: String,
    pub has_token: bool,
    pub token: String,
    /// `ok`, `warn` or `error`: the token's badge.
    pub token_badge: &'static str,
    pub last_sync: String,
    /// Token warnings and the last error from Apple, as the API's link view words them.
    pub alerts: Vec<String>,
    pub devices: String,
    pub default_profile: String,
}

impl LinkRow {
    pub(super) fn of(s: &LinkStatus, now: i64) -> LinkRow {
        let l = &s.link;
        let view = views::link(l, &s.counts, now);
        let alerts = view["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let (token, token_badge) = match (l.token_sealed.is_some(), l.token_expiry) {
            (false, _) => ("no token yet".to_string(), "warn"),
            (true, Some(e)) => {
                let days = (e - now).div_euclid(86_400_000);
                let level = views::token_warning(Some(e), now).map(|(level, _)| level);
                let badge = match level {
                    None => "ok",
                    Some("notice") | Some("warning") => "warn",
                    Some(_) => "error",
                };
                if days < 0 {
                    (format!("expired {}", rfc3339(e)), badge)
                } else {
                    (format!("expires {} ({days} days)", rfc3339(e)), badge)
                }
            }
            (true, None) => ("token without an expiry".to_string(), "warn"),
        };
        // The last pass's own summary says whether it worked.
        let last_sync = match (l.last_sync_at, view["last_sync"]["ok"].as_bool()) {
            (None, _) => "never".to_string(),
            (Some(at), Some(false)) => format!("{} (failed)", ago(now, at)),
            (Some(at), _) => format!("{} (ok)", ago(now, at)),
        };
        let account = match (&l.server_name, &l.org_name) {
            (Some(s), Some(o)) => format!("{s} · {o}"),
            (Some(s), None) => s.clone(),
            (None, Some(o)) => o.clone(),
            (None, None) => String::new(),
        };
        let devices = if s.counts.is_empty() {
            "none".to_string()
        } else {
            s.counts
                .iter()
                .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        LinkRow {
            name: l.name.clone(),
            account,
            has_token: l.token_sealed.is_some(),
            token,
            token_badge,
            last_sync,
            alerts,
            devices,
            default_profile: l.default_profile_uuid.clone().unwrap_or_default(),
        }
    }
}

struct DeviceRow {
    serial: String,
    link: String,
    model: String,
    status: String,
    status_badge: &'static str,
    profile: String,
    assignment: String,
}

/// An option of the status filter.
struct StatusOption {
    value: &'static str,
    label: String,
    selected: bool,
}

struct ProfileRow {
    uuid: String,
    name: String,
    link: String,
    default: bool,
    created: String,
}

/// Refusals, each shown beside its form.
#[derive(Default)]
struct Errors {
    link: Option<String>,
    /// `(link, message)`: beside that link's upload field.
    token: Option<(String, String)>,
    profile: Option<String>,
    assign: Option<String>,
    sync: Option<String>,
}

/// What the forms held, to fill them again after a refusal.
#[derive(Default)]
struct Filled {
    link_name: String,
    profile: ProfileForm,
    serials: String,
}

#[derive(Template)]
#[template(path = "dep.html")]
struct DepPage {
    chrome: Chrome,
    links: Vec<LinkRow>,
    devices: Vec<DeviceRow>,
    profiles: Vec<ProfileRow>,
    statuses: Vec<StatusOption>,
    status: String,
    link_filter: String,
    next_cursor: Option<String>,
    /// A link just created: its name, for the certificate download.
    created: Option<String>,
    errors: Errors,
    filled: Filled,
    /// A sync run to show (and poll) on this page.
    run: Option<SyncView>,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    status: Option<String>,
    link: Option<String>,
    after: Option<String>,
    run: Option<u64>,
}

async fn page(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let chrome = Chrome::new(&console, Nav::Dep, "DEP");
    let run = q.run.and_then(sync_view);
    let mut p = build(&state, chrome, &q).await?;
    p.run = run;
    render_with(StatusCode::OK, &p)
}

/// The page with its lists read; forms empty.
async fn build(state: &AppState, chrome: Chrome, q: &PageQuery) -> Result<DepPage, ConsoleError> {
    let now = now_ms();
    let links: Vec<LinkRow> = state
        .dep
        .links_status()
        .await
        .map_err(AdminError::from)?
        .iter()
        .map(|s| LinkRow::of(s, now))
        .collect();
    let status_text = q.status.as_deref().map(str::trim).unwrap_or_default();
    let status = match status_text {
        "" => None,
        s => Some(DepStatus::parse(s).ok_or_else(|| {
            AdminError::bad_request(format!(
                "status is one of {}",
                DepStatus::ALL.map(DepStatus::as_str).join(", ")
            ))
        })?),
    };
    let link_filter = q
        .link
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned);
    let records = state
        .dep
        .devices(
            DepDeviceFilter {
                link: link_filter.clone(),
                after: q.after.clone().filter(|a| !a.is_empty()),
                limit: PAGE,
                ..DepDeviceFilter::default()
            },
            status,
        )
        .await
        .map_err(AdminError::from)?;
    let next_cursor = (records.len() == PAGE as usize)
        .then(|| records.last().map(|d| d.serial_number.clone()))
        .flatten();
    let devices = records
        .iter()
        .map(|d| {
            let status = DepStatus::of_record(d);
            DeviceRow {
                serial: d.serial_number.clone(),
                link: d.link.clone(),
                model: d
                    .description
                    .clone()
                    .or_else(|| d.model.clone())
                    .unwrap_or_default(),
                status: status.as_str().replace('_', " "),
                status_badge: match status {
                    DepStatus::Enrolled => "ok",
                    DepStatus::Assigned => "",
                    DepStatus::NotAssigned => "warn",
                    DepStatus::Disowned => "error",
                },
                profile: d.profile_uuid.clone().unwrap_or_default(),
                assignment: d
                    .assign_status
                    .as_deref()
                    .map(|s| match d.assign_at {
                        Some(at) => format!("{s}, {}", ago(now, at)),
                        None => s.to_string(),
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let profiles = state
        .dep
        .profiles(None)
        .await
        .map_err(AdminError::from)?
        .into_iter()
        .map(|(p, default)| ProfileRow {
            uuid: p.profile_uuid,
            name: p.profile_name,
            link: p.link,
            default,
            created: rfc3339(p.created_at),
        })
        .collect();
    Ok(DepPage {
        chrome,
        links,
        devices,
        profiles,
        statuses: DepStatus::ALL
            .iter()
            .map(|s| StatusOption {
                value: s.as_str(),
                label: s.as_str().replace('_', " "),
                selected: status == Some(*s),
            })
            .collect(),
        status: status
            .map(DepStatus::as_str)
            .unwrap_or_default()
            .to_string(),
        link_filter: link_filter.unwrap_or_default(),
        next_cursor,
        created: None,
        errors: Errors::default(),
        filled: Filled::default(),
        run: None,
    })
}

/// The page after an action: a notice on success; on a refusal, the reason beside the form
/// (put there by `refused`) and the refusal's status.
async fn after(
    state: &AppState,
    console: &Console,
    outcome: Outcome,
) -> Result<Response, ConsoleError> {
    let chrome = Chrome::new(console, Nav::Dep, "DEP");
    match outcome {
        Ok(notice) => {
            let p = build(state, chrome.with_notice(notice), &PageQuery::default()).await?;
            render_with(StatusCode::OK, &p)
        }
        Err((status, fill)) => {
            let mut p = build(state, chrome, &PageQuery::default()).await?;
            fill(&mut p);
            render_with(status, &p)
        }
    }
}

/// What an action came to: a notice, or a refusal's status and how to show it on the page.
type Outcome = Result<Option<Notice>, (StatusCode, Box<dyn FnOnce(&mut DepPage) + Send>)>;

fn refused(
    e: impl Into<AdminError>,
    put: impl FnOnce(&mut DepPage, String) + Send + 'static,
) -> Outcome {
    let (status, message) = refusal(e);
    Err((status, Box::new(move |p: &mut DepPage| put(p, message))))
}

#[derive(Deserialize)]
struct CreateLinkForm {
    name: String,
    #[serde(default)]
    force: Option<String>,
}

async fn create_link(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<CreateLinkForm>,
) -> Result<Response, ConsoleError> {
    let name = form.name.trim().to_string();
    let result = state
        .dep
        .create_link(&name, form.force.is_some(), console.name())
        .await;
    let chrome = Chrome::new(&console, Nav::Dep, "DEP");
    match result {
        Ok(link) => {
            let mut p = build(
                &state,
                chrome.with_notice(Notice::done(format!(
                    "Link {} created. Download its certificate, upload it in Apple Business \
                     Manager (Preferences → your MDM server), then upload the server token Apple \
                     gives you below.",
                    link.name
                ))),
                &PageQuery::default(),
            )
            .await?;
            p.created = Some(link.name);
            render_with(StatusCode::CREATED, &p)
        }
        Err(e) => {
            after(
                &state,
                &console,
                refused(e, move |p, m| {
                    p.errors.link = Some(m);
                    p.filled.link_name = name;
                }),
            )
            .await
        }
    }
}

/// The link's certificate as a file, for Apple Business Manager's upload field.
async fn certificate(
    State(state): State<AppState>,
    _console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let link = state.dep.link(&name).await.map_err(AdminError::from)?;
    let file = format!("attachment; filename=\"russet-dep-{}.pem\"", link.name);
    let mut resp = (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        link.cert_pem,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&file) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The server token (`.p7m`, as Apple Business Manager downloads it), multipart through htmx.
async fn upload_token(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    mut form: Multipart,
) -> Result<Response, ConsoleError> {
    let mut file: Option<Vec<u8>> = None;
    let mut force = false;
    let read: Result<(), String> = async {
        while let Some(field) = form.next_field().await.map_err(|e| e.body_text())? {
            match field.name() {
                Some("token") => {
                    file = Some(field.bytes().await.map_err(|e| e.body_text())?.to_vec())
                }
                Some("force") => force = true,
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    let link = name.clone();
    let outcome = match (read, file) {
        (Err(e), _) => refused(AdminError::bad_request(e), move |p, m| {
            p.errors.token = Some((link, m))
        }),
        (Ok(()), None) => refused(
            AdminError::bad_request("choose the server token file (.p7m) to upload"),
            move |p, m| p.errors.token = Some((link, m)),
        ),
        (Ok(()), Some(f)) if f.is_empty() => refused(
            AdminError::bad_request("choose the server token file (.p7m) to upload"),
            move |p, m| p.errors.token = Some((link, m)),
        ),
        (Ok(()), Some(f)) => match state.dep.set_token(&name, &f, force, console.name()).await {
            Ok(out) => match &out.connection {
                Ok(a) => Ok(Notice::done(format!(
                    "Token stored for {name}: connected to {} ({}).",
                    a.server_name.as_deref().unwrap_or("Apple"),
                    a.org_name.as_deref().unwrap_or("no organisation name")
                ))),
                // Stored, but Apple refused it (usually terms to accept in the portal).
                Err(e) => Ok(Notice::refused(format!(
                    "Token stored for {name}, but Apple refused it: {}",
                    dep_public_message(e)
                ))),
            },
            Err(e) => refused(e, move |p, m| p.errors.token = Some((link, m))),
        },
    };
    after(&state, &console, outcome).await
}

#[derive(Deserialize)]
struct ProfileForm {
    #[serde(default)]
    link: String,
    #[serde(default)]
    profile_name: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    support_phone_number: String,
    #[serde(default)]
    support_email_address: String,
    #[serde(default)]
    skip_setup_items: String,
    #[serde(default)]
    is_supervised: Option<String>,
    #[serde(default)]
    is_mandatory: Option<String>,
    #[serde(default)]
    is_mdm_removable: Option<String>,
    #[serde(default)]
    await_device_configured: Option<String>,
    #[serde(default)]
    default: Option<String>,
    /// Apple's profile JSON; when given, the fields above (but link and default) are unused.
    #[serde(default)]
    json: String,
}

impl Default for ProfileForm {
    /// A new profile's form: the choices most fleets make.
    fn default() -> Self {
        ProfileForm {
            link: String::new(),
            profile_name: String::new(),
            department: String::new(),
            support_phone_number: String::new(),
            support_email_address: String::new(),
            skip_setup_items: String::new(),
            is_supervised: Some("on".into()),
            is_mandatory: Some("on".into()),
            is_mdm_removable: None,
            await_device_configured: Some("on".into()),
            default: None,
            json: String::new(),
        }
    }
}

impl ProfileForm {
    /// Apple's profile JSON from the form: the JSON field as given, else the fields.
    fn profile(&self) -> Result<Value, AdminError> {
        if !self.json.trim().is_empty() {
            return serde_json::from_str(&self.json)
                .map_err(|e| AdminError::bad_request(format!("the profile is not JSON: {e}")));
        }
        let mut p = json!({
            "profile_name": self.profile_name.trim(),
            "is_supervised": self.is_supervised.is_some(),
            "is_mandatory": self.is_mandatory.is_some(),
            "is_mdm_removable": self.is_mdm_removable.is_some(),
            "await_device_configured": self.await_device_configured.is_some(),
        });
        for (key, value) in [
            ("department", &self.department),
            ("support_phone_number", &self.support_phone_number),
            ("support_email_address", &self.support_email_address),
        ] {
            if !value.trim().is_empty() {
                p[key] = json!(value.trim());
            }
        }
        let skip: Vec<&str> = self
            .skip_setup_items
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if !skip.is_empty() {
            p["skip_setup_items"] = json!(skip);
        }
        Ok(p)
    }
}

async fn create_profile(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<ProfileForm>,
) -> Result<Response, ConsoleError> {
    let link = Some(form.link.trim()).filter(|l| !l.is_empty());
    let result = match form.profile() {
        Ok(profile) => state
            .dep
            .create_profile(
                link,
                profile,
                form.default.is_some(),
                Default::default(),
                console.name(),
            )
            .await
            .map_err(AdminError::from),
        Err(e) => Err(e),
    };
    let outcome = match result {
        Ok(out) => Ok(Notice::done(format!(
            "Profile {} defined at Apple: {}{}",
            out["profile_name"].as_str().unwrap_or_default(),
            out["profile_uuid"].as_str().unwrap_or_default(),
            if out["default"] == json!(true) {
                " (the link's default: new Macs get it)"
            } else {
                ""
            }
        ))),
        Err(e) => refused(e, move |p, m| {
            p.errors.profile = Some(m);
            p.filled.profile = form;
        }),
    };
    after(&state, &console, outcome).await
}

#[derive(Deserialize)]
struct SerialsForm {
    #[serde(default)]
    profile: String,
    #[serde(default)]
    serials: String,
}

impl SerialsForm {
    fn serials(&self) -> Vec<String> {
        self.serials
            .split([',', ' ', '\n', '\r', '\t'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// `{"devices": {serial: status}}` (Apple's answer per serial) as a line.
fn per_serial(v: &Value) -> String {
    match v["devices"].as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "no devices".to_string(),
    }
}

async fn assign(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<SerialsForm>,
) -> Result<Response, ConsoleError> {
    let serials = form.serials();
    let outcome = if serials.is_empty() {
        Err(AdminError::bad_request("give at least one serial number"))
    } else if form.profile.trim().is_empty() {
        Err(AdminError::bad_request("choose a profile"))
    } else {
        state
            .dep
            .assign(form.profile.trim(), &serials, console.name())
            .await
            .map_err(AdminError::from)
    };
    let outcome = match outcome {
        Ok(v) => Ok(Notice::done(format!(
            "Profile {} assigned: {}",
            form.profile.trim(),
            per_serial(&v)
        ))),
        Err(e) => refused(e, move |p, m| {
            p.errors.assign = Some(m);
            p.filled.serials = form.serials;
        }),
    };
    after(&state, &console, outcome).await
}

async fn remove(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<SerialsForm>,
) -> Result<Response, ConsoleError> {
    let serials = form.serials();
    let profile = Some(form.profile.trim()).filter(|p| !p.is_empty());
    let outcome = if serials.is_empty() {
        Err(AdminError::bad_request("give at least one serial number"))
    } else {
        state
            .dep
            .remove(profile, None, &serials, console.name())
            .await
            .map_err(AdminError::from)
    };
    let outcome = match outcome {
        Ok(v) => Ok(Notice::done(format!("Profile removed: {}", per_serial(&v)))),
        Err(e) => refused(e, move |p, m| {
            p.errors.assign = Some(m);
            p.filled.serials = form.serials;
        }),
    };
    after(&state, &console, outcome).await
}

/// A "sync now" run: its progress, read by the page's polling. Kept in this process only
/// (a pass runs in the process that started it; `DepService` refuses a second server).
struct SyncRun {
    links: Vec<String>,
    current: Option<String>,
    pages: u64,
    devices: u64,
    /// One line per finished link.
    results: Vec<(bool, String)>,
    done: bool,
    started_at: i64,
}

/// Runs by id; finished ones are forgotten after an hour.
static RUNS: LazyLock<Mutex<HashMap<u64, SyncRun>>> = LazyLock::new(Default::default);
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);

fn with_run(id: u64, f: impl FnOnce(&mut SyncRun)) {
    if let Ok(mut runs) = RUNS.lock()
        && let Some(r) = runs.get_mut(&id)
    {
        f(r);
    }
}

/// What the progress fragment shows.
struct SyncView {
    id: u64,
    done: bool,
    line: String,
    results: Vec<(bool, String)>,
}

fn sync_view(id: u64) -> Option<SyncView> {
    let runs = RUNS.lock().ok()?;
    let r = runs.get(&id)?;
    let line = if r.done {
        format!(
            "Sync finished: {} link{}, {} device record{} stored.",
            r.links.len(),
            if r.links.len() == 1 { "" } else { "s" },
            r.devices,
            if r.devices == 1 { "" } else { "s" }
        )
    } else {
        match &r.current {
            Some(l) => format!(
                "Syncing {l}: {} page{}, {} device record{} so far…",
                r.pages,
                if r.pages == 1 { "" } else { "s" },
                r.devices,
                if r.devices == 1 { "" } else { "s" }
            ),
            None => "Starting…".to_string(),
        }
    };
    Some(SyncView {
        id,
        done: r.done,
        line,
        results: r.results.clone(),
    })
}

#[derive(Template)]
#[template(path = "dep_sync.html")]
struct SyncFragment {
    run: SyncView,
}

#[derive(Deserialize)]
struct SyncForm {
    #[serde(default)]
    link: String,
}

/// Start a pass of one link (or every link with a token) in the background; the answer is
/// the progress fragment, which polls until the pass is done.
async fn sync_now(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    Form(form): Form<SyncForm>,
) -> Result<Response, ConsoleError> {
    let link = Some(form.link.trim()).filter(|l| !l.is_empty());
    let links = match state.dep.request_sync(link, console.name()).await {
        Ok(l) if l.is_empty() => Err(AdminError::from(crate::dep::DepOpError::BadRequest(
            "no link has a token yet: upload one first".into(),
        ))),
        Ok(l) => Ok(l),
        Err(e) => Err(AdminError::from(e)),
    };
    let links = match links {
        Ok(l) => l,
        Err(e) => {
            return after(&state, &console, refused(e, |p, m| p.errors.sync = Some(m))).await;
        }
    };
    let id = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut runs) = RUNS.lock() {
        let hour_ago = now_ms() - 3_600_000;
        runs.retain(|_, r| !r.done || r.started_at > hour_ago);
        runs.insert(
            id,
            SyncRun {
                links: links.clone(),
                current: None,
                pages: 0,
                devices: 0,
                results: Vec::new(),
                done: false,
                started_at: now_ms(),
            },
        );
    }
    let dep = state.dep.clone();
    tokio::spawn(async move {
        let mut stored = 0;
        for name in links {
            with_run(id, |r| {
                r.current = Some(name.clone());
                r.pages = 0;
            });
            let result = dep
                .sync_link(&name, move |p| {
                    with_run(id, |r| {
                        r.pages = p.pages;
                        r.devices = stored + p.total_devices;
                    })
                })
                .await;
            let line = match &result {
                Ok(v) => (
                    true,
                    format!(
                        "{name}: {} fetched, {} added, {} modified, {} deleted",
                        v["fetched"], v["added"], v["modified"], v["deleted"]
                    ),
                ),
                Err(e) => (false, format!("{name}: {}", dep_public_message(e))),
            };
            with_run(id, |r| {
                stored = r.devices;
                r.results.push(line);
            });
        }
        with_run(id, |r| {
            r.done = true;
            r.current = None;
        });
    });
    if headers.contains_key("hx-request") {
        return fragment(id);
    }
    Ok(Redirect::to(&format!("/dep?run={id}")).into_response())
}

async fn sync_progress(_console: Console, Path(run): Path<u64>) -> Result<Response, ConsoleError> {
    fragment(run)
}

fn fragment(id: u64) -> Result<Response, ConsoleError> {
    let run = sync_view(id)
        .ok_or_else(|| ConsoleError::NotFound(format!("no sync run {id} on this server")))?;
    render_with(StatusCode::OK, &SyncFragment { run })
}
