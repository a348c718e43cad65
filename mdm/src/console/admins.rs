//! Admins (`/admins`, admins only): the accounts with their roles, creating one (its token is
//! shown once, on the page that created it, and nowhere else) and revoking one. The rules
//! (names, roles, the last admin, audit) are `service::admins`'s.

use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render_with};
use super::session::Console;
use crate::http::AppState;
use crate::service::admins::Role;
use crate::timefmt::rfc3339;
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admins", get(page).post(create))
        .route("/admins/{name}/revoke", post(revoke))
}

struct AdminRow {
    name: String,
    role: String,
    active: bool,
    created: String,
    created_by: String,
    revoked: String,
    /// The signed-in admin: no revoke button on its own row.
    is_me: bool,
}

/// An admin just created, with its token: shown on this page once.
struct Created {
    name: String,
    role: String,
    token: String,
}

#[derive(Template)]
#[template(path = "admins.html")]
struct AdminsPage {
    chrome: Chrome,
    admins: Vec<AdminRow>,
    /// The role options: `(role, selected)`.
    roles: Vec<(&'static str, bool)>,
    created: Option<Created>,
    /// A refused create: the reason beside the name field, and what was typed.
    error: Option<String>,
    name: String,
    /// A refused revoke: `(name, reason)`, beside that admin's row.
    revoke_error: Option<(String, String)>,
}

async fn build(
    state: &AppState,
    console: &Console,
    chrome: Chrome,
) -> Result<AdminsPage, ConsoleError> {
    let admins = state
        .service
        .admins()
        .await?
        .into_iter()
        .map(|a| AdminRow {
            is_me: a.name == console.name(),
            active: a.revoked_at.is_none(),
            created: rfc3339(a.created_at),
            created_by: a.created_by.unwrap_or_default(),
            revoked: match (a.revoked_at, a.revoked_by) {
                (Some(at), Some(by)) => format!("revoked {} by {by}", rfc3339(at)),
                (Some(at), None) => format!("revoked {}", rfc3339(at)),
                _ => String::new(),
            },
            name: a.name,
            role: a.role,
        })
        .collect();
    Ok(AdminsPage {
        chrome,
        admins,
        roles: role_options(Role::Viewer.as_str()),
        created: None,
        error: None,
        name: String::new(),
        revoke_error: None,
    })
}

/// The role options with `role` selected.
fn role_options(role: &str) -> Vec<(&'static str, bool)> {
    Role::ALL
        .iter()
        .map(|r| (r.as_str(), r.as_str() == role))
        .collect()
}

fn chrome(console: &Console) -> Chrome {
    Chrome::new(console, Nav::Admins, "Admins")
}

async fn page(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    let p = build(&state, &console, chrome(&console)).await?;
    render_with(StatusCode::OK, &p)
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

async fn create(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<CreateForm>,
) -> Result<Response, ConsoleError> {
    let name = form.name.trim();
    match state
        .service
        .create_admin(name, form.role.trim(), console.name())
        .await
    {
        Ok(created) => {
            let notice = Notice::done(format!(
                "Admin {} created. Copy the token now: it is shown this once.",
                created.admin.name
            ));
            let mut p = build(&state, &console, chrome(&console).with_notice(notice)).await?;
            p.created = Some(Created {
                name: created.admin.name,
                role: created.admin.role,
                token: created.token,
            });
            render_with(StatusCode::CREATED, &p)
        }
        Err(e) => {
            let (status, message) = refusal(e);
            let mut p = build(&state, &console, chrome(&console)).await?;
            p.error = Some(message);
            p.name = name.to_string();
            p.roles = role_options(form.role.trim());
            render_with(status, &p)
        }
    }
}

async fn revoke(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    match state.service.revoke_admin(&name, console.name()).await {
        Ok(()) => {
            let notice = Notice::done(format!(
                "Admin {name} revoked: its tokens and console sessions stopped working."
            ));
            let p = build(&state, &console, chrome(&console).with_notice(notice)).await?;
            render_with(StatusCode::OK, &p)
        }
        Err(e) => {
            let (status, message) = refusal(e);
            let mut p = build(&state, &console, chrome(&console)).await?;
            p.revoke_error = Some((name, message));
            render_with(status, &p)
        }
    }
}
