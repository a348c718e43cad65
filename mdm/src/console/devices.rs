//! The device list (`/devices`): a search in the filter language (the `filter` of
//! `GET /api/v1/devices`), a page at a time, and the same search as the API's CSV report
//! (`/devices/export.csv`). The search field updates the table as one types (htmx asks for
//! the results fragment only); without JavaScript it is a plain GET form. One device's page
//! and its actions are in `device.rs`.

use super::page::{Chrome, ConsoleError, Nav, render, render_with};
use super::session::Console;
use crate::http::AppState;
use crate::service::ServiceError;
use crate::service::devices::DeviceListRow;
use crate::store::DeviceFilter;
use crate::timefmt::{ago, now_ms, rfc3339};
use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Devices on one page of the list.
pub const PAGE_SIZE: u32 = 50;
/// Earlier cursors kept for "Previous" (older pages are reached from the first).
const MAX_TRAIL: usize = 50;
/// The element the search swaps (htmx's `HX-Target` names it).
const RESULTS_ID: &str = "device-results";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices", get(list))
        .route("/devices/export.csv", get(export))
}

/// `?q=` the filter expression, `after=` the page's cursor, `trail=` the cursors of the pages
/// before it (space-separated), for "Previous"; `limit=` devices a page (as the API's, 1 to
/// 1000; [`PAGE_SIZE`] by default).
#[derive(Default)]
pub struct ListQuery {
    q: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    trail: Option<String>,
}

impl ListQuery {
    /// Read leniently (the last of a repeated parameter wins, unknown ones are ignored): a
    /// hand-edited URL still gets the page, not a deserializer's refusal.
    fn parse(raw: Option<&str>) -> ListQuery {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default();
        let mut q = ListQuery::default();
        for (k, v) in pairs {
            match k.as_str() {
                "q" => q.q = Some(v),
                "limit" => q.limit = Some(v),
                "after" => q.after = Some(v),
                "trail" => q.trail = Some(v),
                _ => {}
            }
        }
        q
    }
}

/// A device row as the table shows it (preformatted).
pub struct Row {
    pub udid: String,
    pub name: String,
    pub serial: String,
    pub model: String,
    pub os: String,
    pub last_seen: String,
    pub last_seen_exact: String,
    pub enrolled: bool,
    pub filevault: &'static str,
    pub filevault_class: &'static str,
    pub groups: String,
}

impl Row {
    fn new(r: &DeviceListRow, now: i64) -> Row {
        let d = &r.device;
        let dash = || "—".to_string();
        let (filevault, filevault_class) = match r.filevault {
            Some(true) => ("On", "ok"),
            Some(false) => ("Off", "warn"),
            None => ("Unknown", ""),
        };
        Row {
            udid: d.udid.clone(),
            name: d.device_name.clone().unwrap_or_else(dash),
            serial: d.serial_number.clone().unwrap_or_else(dash),
            model: match (&d.model_name, d.model.as_ref().or(d.product_name.as_ref())) {
                (Some(name), Some(id)) => format!("{name} ({id})"),
                (Some(one), None) | (None, Some(one)) => one.clone(),
                (None, None) => dash(),
            },
            os: match (&d.os_version, &d.build_version) {
                (Some(v), Some(b)) => format!("macOS {v} ({b})"),
                (Some(v), None) => format!("macOS {v}"),
                _ => dash(),
            },
            last_seen: d.last_seen_at.map(|t| ago(now, t)).unwrap_or_else(dash),
            last_seen_exact: d.last_seen_at.map(rfc3339).unwrap_or_default(),
            enrolled: d.enrolled,
            filevault,
            filevault_class,
            groups: r.groups.join(", "),
        }
    }
}

/// The results part of the page: the table, the pager, or why the search was refused.
#[derive(Template)]
#[template(path = "devices_results.html")]
struct Results {
    q: String,
    error: Option<String>,
    rows: Vec<Row>,
    /// Query strings of the next and previous pages.
    next: Option<String>,
    previous: Option<String>,
    export: String,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    chrome: Chrome,
    q: String,
    invalid: bool,
    /// The rendered [`Results`] (the fragment htmx swaps), in place.
    results_html: String,
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .copied()
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// A search that is one plain word (a serial number or a UDID), not an expression.
fn plain_name(expr: &str) -> Option<&str> {
    let w = expr.trim();
    let plain = !w.is_empty()
        && w.len() <= 64
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !w.eq_ignore_ascii_case("and");
    plain.then_some(w)
}

/// The expression a search runs: a plain word names a device by UDID or serial number (as
/// the API's `/devices/{udid}` takes either); anything else is the filter language.
async fn searched(state: &AppState, expr: &str) -> String {
    match plain_name(expr) {
        Some(word) if state.service.device(word).await.is_ok() => format!("udid = {word}"),
        Some(word) => format!("serial = {word}"),
        None => expr.to_string(),
    }
}

async fn results(state: &AppState, q: &ListQuery) -> Result<Results, ConsoleError> {
    let expr = q.q.clone().unwrap_or_default();
    let after = q.after.clone().filter(|a| !a.is_empty());
    let trail: Vec<String> = q
        .trail
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let limit = q
        .limit
        .as_deref()
        .and_then(|l| l.trim().parse::<u32>().ok())
        .map_or(PAGE_SIZE, |l| l.clamp(1, 1000));
    let limit_text = if limit == PAGE_SIZE {
        String::new()
    } else {
        limit.to_string()
    };
    let filter = DeviceFilter {
        cursor: after.clone(),
        limit,
        ..DeviceFilter::default()
    };
    let mut out = Results {
        export: format!("/devices/export.csv?{}", query_string(&[("q", &expr)])),
        q: expr.clone(),
        error: None,
        rows: Vec::new(),
        next: None,
        previous: None,
    };
    let searched = searched(state, &expr).await;
    let page = match state.service.list_devices(filter, Some(&searched)).await {
        Ok(page) => page,
        // A bad expression is shown beside the search field, with the parser's message.
        Err(e @ ServiceError::InvalidFilter(_)) => {
            out.error = Some(super::page::refusal(e).1);
            return Ok(out);
        }
        Err(e) => return Err(e.into()),
    };
    let now = now_ms();
    out.rows = state
        .service
        .device_rows(page.devices)
        .await?
        .iter()
        .map(|r| Row::new(r, now))
        .collect();
    if let Some(next) = page.next_cursor {
        let mut t = trail.clone();
        t.push(after.clone().unwrap_or_else(|| "-".into()));
        let skip = t.len().saturating_sub(MAX_TRAIL);
        let t = t[skip..].join(" ");
        out.next = Some(query_string(&[
            ("q", &expr),
            ("limit", &limit_text),
            ("after", &next),
            ("trail", &t),
        ]));
    }
    if after.is_some() {
        let mut t = trail;
        let before = t.pop().filter(|c| c != "-").unwrap_or_default();
        out.previous = Some(query_string(&[
            ("q", &expr),
            ("limit", &limit_text),
            ("after", &before),
            ("trail", &t.join(" ")),
        ]));
    }
    Ok(out)
}

async fn list(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    let q = ListQuery::parse(raw.as_deref());
    let results = results(&state, &q).await?;
    let refused = results.error.is_some();
    let fragment = headers
        .get("hx-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t == RESULTS_ID);
    if fragment {
        // htmx swaps only 2xx answers: a refused search is shown in the fragment it swaps.
        return render(&results);
    }
    let status = if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let results_html = results
        .render()
        .map_err(|e| ConsoleError::Internal(format!("template: {e}")))?;
    render_with(
        status,
        &DevicesPage {
            chrome: Chrome::new(&console, Nav::Devices, "Devices"),
            q: results.q,
            invalid: refused,
            results_html,
        },
    )
}

/// The CSV report of the search, the same columns as `GET /api/v1/devices?format=csv`.
async fn export(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    let q = ListQuery::parse(raw.as_deref());
    let filter = DeviceFilter {
        limit: PAGE_SIZE,
        ..DeviceFilter::default()
    };
    let expr = q.q.as_deref().unwrap_or_default();
    let searched = searched(&state, expr).await;
    let rows = state.service.device_report(filter, Some(&searched)).await?;
    let body = crate::views::devices_csv(&rows)
        .map_err(|e| ConsoleError::Internal(format!("writing the CSV report: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"devices.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}
