//! The dashboard (`/`): the fleet at a glance. Device figures (enrolled, checked out, stale),
//! what needs an admin (the push certificate missing, expiring or refused by APNs; the
//! placeholder push topic; DEP tokens expiring; failed profile installs; FileVault on without
//! an escrowed key) and each DEP link's last sync. Every figure is one grouped query when the
//! page is opened (`service::fleet`), never work on a Mac's check-in.

use super::dep::LinkRow;
use super::page::{Chrome, ConsoleError, Nav, render};
use super::session::Console;
use crate::http::{AdminError, AppState};
use crate::push::certificate::PushCertStatus;
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
    let push = state.push.status().await?;
    let now = now_ms();
    let links: Vec<LinkRow> = state
        .dep
        .links_status()
        .await
        .map_err(AdminError::from)?
        .iter()
        .map(|s| LinkRow::of(s, now))
        .collect();
    let push_line = match &push {
        Some(s) => format!(
            "{} valid until {} ({} days)",
            s.topic, s.not_after, s.days_left
        ),
        None => "none".to_string(),
    };
    render(&DashboardPage {
        chrome: Chrome::new(&console, Nav::Dashboard, "Dashboard"),
        alerts: alerts(&counts, push.as_ref(), &links),
        counts,
        stale_days: STALE_DAYS,
        push_line,
        links,
    })
}

/// What needs an admin, worst first within each kind: the push certificate, DEP links,
/// profiles, FileVault escrow.
fn alerts(counts: &FleetCounts, push: Option<&PushCertStatus>, links: &[LinkRow]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    match push {
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
        }
    }
    for l in links {
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
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(days_left: i64, alert: Option<&str>) -> PushCertStatus {
        PushCertStatus {
            topic: "com.apple.mgmt.External.x".into(),
            subject: String::new(),
            not_after: String::new(),
            days_left,
            warning: crate::push::certificate::expiry_warning(days_left),
            alert: alert.map(str::to_owned),
            imported_at: String::new(),
        }
    }

    fn texts(alerts: &[Alert]) -> Vec<(&str, &str)> {
        alerts.iter().map(|a| (a.level, a.text.as_str())).collect()
    }

    #[test]
    fn a_healthy_fleet_needs_nothing() {
        assert!(alerts(&FleetCounts::default(), Some(&cert(200, None)), &[]).is_empty());
    }

    #[test]
    fn no_certificate_means_the_placeholder_topic() {
        let a = alerts(&FleetCounts::default(), None, &[]);
        assert_eq!(a.len(), 2);
        assert!(a[0].text.starts_with("No push certificate") && a[0].level == "error");
        assert!(
            a[1].text.contains("placeholder push topic"),
            "{}",
            a[1].text
        );
    }

    #[test]
    fn expiry_refusals_profiles_filevault_and_dep_each_say_so() {
        let counts = FleetCounts {
            failed_profiles: 3,
            failed_profile_devices: 2,
            filevault_unescrowed: 1,
            ..FleetCounts::default()
        };
        let link = LinkRow {
            name: "abm".into(),
            account: String::new(),
            has_token: true,
            token: String::new(),
            token_badge: "error",
            last_sync: String::new(),
            alerts: vec!["ACCESS_DENIED: Apple refused the token".into()],
            devices: String::new(),
            default_profile: String::new(),
        };
        let a = alerts(
            &counts,
            Some(&cert(-1, Some("403 BadCertificate"))),
            &[link],
        );
        assert_eq!(
            texts(&a),
            [
                (
                    "error",
                    "The push certificate expired: pushes fail until it is renewed"
                ),
                (
                    "error",
                    "APNs refused the push certificate: 403 BadCertificate"
                ),
                (
                    "error",
                    "DEP link abm: ACCESS_DENIED: Apple refused the token"
                ),
                ("warn", "3 profile installs failed on 2 Macs."),
                (
                    "warn",
                    "1 Mac has FileVault on without an escrowed recovery key."
                ),
            ]
        );
        let soon = alerts(&FleetCounts::default(), Some(&cert(10, None)), &[]);
        assert_eq!(soon[0].level, "warn");
        assert!(
            soon[0].text.contains("expires in 10 days"),
            "{}",
            soon[0].text
        );
    }
}
