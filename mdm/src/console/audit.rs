//! The audit log (`/audit`): newest first, a page at a time, filtered by actor, action (or its
//! start), target and date. Read only; the entries are written by the services.

use super::page::{Chrome, ConsoleError, Nav, render_with};
use super::session::Console;
use crate::http::AppState;
use crate::store::fleet::AuditFilter;
use crate::timefmt::rfc3339;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use time::{Date, Month};

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(page))
}

/// Entries per page.
const PAGE: u32 = 50;

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    /// `YYYY-MM-DD` (UTC), the first day shown.
    #[serde(default)]
    since: String,
    /// `YYYY-MM-DD` (UTC), the last day shown.
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

struct EntryRow {
    id: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    address: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    q: AuditQuery,
    entries: Vec<EntryRow>,
    /// The query string of the next (older) page, when there may be one.
    older: Option<String>,
    filtered: bool,
    /// `(field, message)`: a date that does not parse, beside its field.
    error: Option<(&'static str, String)>,
}

/// Unix ms at the start of `YYYY-MM-DD` (UTC); `days` later when given.
fn day_start(text: &str, days: i64) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let secs = date.midnight().assume_utc().unix_timestamp();
    Some((secs + days * 86_400) * 1000)
}

/// An entry's detail as people read it: `key: value; …`, strings bare, empty values left out.
fn detail_text(detail: &serde_json::Value) -> String {
    use serde_json::Value;
    match detail {
        Value::Null => String::new(),
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn given(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn page(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ConsoleError> {
    let chrome = Chrome::new(&console, Nav::Audit, "Audit log");
    let mut error = None;
    let mut date = |field: &'static str, text: &str, days: i64| -> Option<i64> {
        let text = given(text)?;
        let ms = day_start(&text, days);
        if ms.is_none() {
            error = Some((field, format!("{text:?} is not a date (YYYY-MM-DD)")));
        }
        ms
    };
    let since = date("since", &q.since, 0);
    let until = date("until", &q.until, 1);
    if let Some(e) = error {
        let page = AuditPage {
            chrome,
            filtered: true,
            q,
            entries: Vec::new(),
            older: None,
            error: Some(e),
        };
        return render_with(StatusCode::BAD_REQUEST, &page);
    }
    let filter = AuditFilter {
        actor: given(&q.actor),
        action: given(&q.action),
        target: given(&q.target),
        since,
        until,
        before: q.before,
        limit: PAGE,
    };
    let filtered = filter.actor.is_some()
        || filter.action.is_some()
        || filter.target.is_some()
        || since.is_some()
        || until.is_some();
    let entries = state.service.audit_search(filter).await?;
    let older = (entries.len() == PAGE as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|id| {
            let mut query = String::new();
            for (k, v) in [
                ("actor", &q.actor),
                ("action", &q.action),
                ("target", &q.target),
                ("since", &q.since),
                ("until", &q.until),
            ] {
                if !v.trim().is_empty() {
                    let v = utf8_percent_encode(v.trim(), NON_ALPHANUMERIC);
                    query.push_str(&format!("{k}={v}&"));
                }
            }
            query.push_str(&format!("before={id}"));
            query
        });
    let entries = entries
        .into_iter()
        .map(|e| EntryRow {
            id: e.id,
            at: rfc3339(e.record.at),
            actor: e.record.actor,
            action: e.record.action,
            target: e.record.target,
            address: e.record.address.unwrap_or_default(),
            detail: detail_text(&e.record.detail),
        })
        .collect();
    render_with(
        StatusCode::OK,
        &AuditPage {
            chrome,
            q,
            entries,
            older,
            filtered,
            error: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{day_start, detail_text};
    use serde_json::json;

    #[test]
    fn details_read_as_key_value_pairs() {
        assert_eq!(
            detail_text(&json!({"role": "admin", "first_start": true, "gone": null})),
            "first_start: true; role: admin"
        );
        assert_eq!(detail_text(&json!({})), "");
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(day_start("1970-01-02", 0), Some(86_400_000));
        assert_eq!(day_start("1970-01-01", 1), Some(86_400_000));
        assert_eq!(day_start("2026-02-30", 0), None);
        assert_eq!(day_start("yesterday", 0), None);
    }
}
