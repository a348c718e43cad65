//! The dashboard (`/`): the fleet at a glance.

use super::page::{Chrome, ConsoleError, Nav, render};
use super::session::Console;
use crate::http::AppState;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(dashboard))
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    push_line: String,
}

async fn dashboard(
    State(state): State<AppState>,
    console: Console,
) -> Result<Response, ConsoleError> {
    let push_line = match crate::push::certificate::status(state.service.store().as_ref()).await? {
        Some(s) => match s.warning {
            Some(w) => format!("{} expires {} ({w})", s.topic, s.not_after),
            None => format!(
                "{} valid until {} ({} days)",
                s.topic, s.not_after, s.days_left
            ),
        },
        None => {
            "No push certificate: Macs cannot be woken. Import one on the Push certificate page."
                .to_string()
        }
    };
    render(&DashboardPage {
        chrome: Chrome::new(&console, Nav::Dashboard, "Dashboard"),
        push_line,
    })
}
