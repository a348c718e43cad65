//! The dashboard (`/`): the fleet at a glance. Device figures (enrolled, checked out, stale),
//! what needs an admin (the push certificate missing, expiring or refused by APNs; the
//! placeholder push topic; DEP tokens expiring; failed profile installs; FileVault on without
//! an escrowed key) and each DEP link's last sync. Every figure is one grouped query when the
//! page is opened (`service::fleet`), never work on a Mac's check-in.

use super::dep::LinkRow;
use super::page::{Chrome, ConsoleError, Nav, render};
use super::session::Console;
use crate::http::{AdminError, AppState};
use crate::service::fleet::STALE_DAYS;
use crate::store::fleet::FleetCounts;
use crate::timefmt::now_ms;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(dashboard))
}

/// Something that needs an admin: what, how bad, and where to act on it.
struct Alert {
    /// `error` or `warn`.
    level: &'static str,
    text: String,
    href: &'static str,
    action: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    counts: FleetCounts,
    stale_days: i64,
    alerts: Vec<Alert>,
    push_line: String,
    links: Vec<LinkRow>,
}

async fn dashboard(
    State(state): State<AppState>,
    console: Console,
) -> Result<Response, ConsoleError> {
    let counts = state.service.fleet_counts().await?;
    let mut alerts = Vec::new();
    let push_line = match state.push.status().await? {
        Some(s) => {
            if let Some(w) = &s.warning {
                alerts.push(Alert {
                    level: if s.days_left < 0 { "error" } else { "warn" },
                    text: format!("The push certificate {w}"),
                    href: "/push",
                    action: "Renew it",
                });
            }
            if let Some(a) = &s.alert {
                alerts.push(Alert {
                    level: "error",
                    text: format!("APNs refused the push certificate: {a}"),
                    href: "/push",
                    action: "Check it",
                });
            }
            format!(
                "{} valid until {} ({} days)",
                s.topic, s.not_after, s.days_left
            )
        }
        None => {
            alerts.push(Alert {
                level: "error",
                text: "No push certificate: Macs cannot be woken, commands wait for their \
                       next check-in."
                    .into(),
                href: "/push",
                action: "Import one",
            });
            alerts.push(Alert {
                level: "warn",
                text: crate::service::enrollment::PLACEHOLDER_TOPIC_WARNING.into(),
                href: "/push",
                action: "Push certificate",
            });
            "none".to_string()
        }
    };
    let now = now_ms();
    let links: Vec<LinkRow> = state
        .dep
        .links_status()
        .await
        .map_err(AdminError::from)?
        .iter()
        .map(|s| LinkRow::of(s, now))
        .collect();
    for l in &links {
        for a in &l.alerts {
            alerts.push(Alert {
                level: if l.token_badge == "error" {
                    "error"
                } else {
                    "warn"
                },
                text: format!("DEP link {}: {a}", l.name),
                href: "/dep",
                action: "DEP",
            });
        }
    }
    if counts.failed_profiles > 0 {
        alerts.push(Alert {
            level: "warn",
            text: format!(
                "{} profile install{} failed on {} Mac{}.",
                counts.failed_profiles,
                if counts.failed_profiles == 1 { "" } else { "s" },
                counts.failed_profile_devices,
                if counts.failed_profile_devices == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            href: "/profiles",
            action: "See profiles",
        });
    }
    if counts.filevault_unescrowed > 0 {
        alerts.push(Alert {
            level: "warn",
            text: format!(
                "{} Mac{} FileVault on without an escrowed recovery key.",
                counts.filevault_unescrowed,
                if counts.filevault_unescrowed == 1 {
                    " has"
                } else {
                    "s have"
                }
            ),
            href: "/devices",
            action: "See devices",
        });
    }
    render(&DashboardPage {
        chrome: Chrome::new(&console, Nav::Dashboard, "Dashboard"),
        counts,
        stale_days: STALE_DAYS,
        alerts,
        push_line,
        links,
    })
}
