//! The web console (issue 18): server-rendered pages on the admin listener at `/`, from the
//! one binary. Templates (askama, compiled in) are in `templates/`, the embedded assets
//! (htmx, vendored; the style sheet) in `assets/`. Handlers call the same services as the
//! JSON API (`http/`), so no rule has a second copy; a refusal is shown with the API's
//! message (`page::refusal`).
//!
//! - `session`: sign-in with an admin token, the session cookie, the CSRF and permission
//!   checks every console request passes (`require_console`).
//! - `permissions`: the permission each console route requires (fail closed).
//! - `page`: the frame of every page, rendering, the console's error type.
//! - one module per area with its own `routes()`: `dashboard`, …

mod admins;
mod assets;
mod audit;
mod dashboard;
mod dep;
mod device;
mod device_secrets;
mod device_upkeep;
mod device_view;
mod devices;
mod enrollment;
mod form;
mod golden_images;
mod groups;
mod os_updates;
mod page;
mod permissions;
mod profiles;
mod push;
mod session;

pub use session::CookiePolicy;

use crate::http::{AppState, MAX_ADMIN_BODY};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router, middleware};

/// The console's router, merged beside the JSON API on the admin listener.
pub fn router(state: AppState, policy: CookiePolicy) -> Router {
    let signed_in = Router::new()
        .route("/signout", post(session::sign_out))
        .merge(dashboard::routes())
        .merge(groups::routes())
        .merge(profiles::routes())
        .merge(golden_images::routes())
        .merge(os_updates::routes())
        .merge(devices::routes())
        .merge(device::routes())
        .merge(device_upkeep::routes())
        .merge(enrollment::routes())
        .merge(dep::routes())
        .merge(push::routes())
        .merge(audit::routes())
        .merge(admins::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_console,
        ));
    // open routes: no session needed (not in `permissions.rs`).
    Router::new()
        .route("/signin", get(session::sign_in_page).post(session::sign_in))
        .route("/assets/{name}", get(assets::asset))
        .merge(signed_in)
        .layer(axum::middleware::map_response(page::security_headers))
        .layer(Extension(policy))
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .with_state(state)
}
