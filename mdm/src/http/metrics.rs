//! `GET /metrics` on the admin listener: the Prometheus text exposition. Counters and
//! histograms are recorded where things happen (`crate::telemetry`); the gauges that describe
//! stored state (queue depth, pool use, days to expiry) are read here, at scrape time.
//!
//! Who may scrape: an admin token, or the `--metrics-token`, which opens this route only, so a
//! scraper's credential can't act on devices.

use super::{AdminError, AppState};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Prometheus text format 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state, require_scraper))
}

async fn metrics(State(state): State<AppState>) -> Result<Response, AdminError> {
    state.service.record_gauges().await?;
    state.push.record_gauges().await?;
    state.dep.record_gauges().await?;
    if let Some(w) = &state.webhooks {
        w.record_gauges().await?;
    }
    let body = state.metrics.handle.render();
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

/// The metrics token (compared in constant time), else the admin check.
async fn require_scraper(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let presented = super::extractor::bearer_token(req.headers());
    if let (Some(expected), Some(presented)) = (&state.metrics.token, presented) {
        let (a, b) = (
            crate::service::admin_token::hash(expected),
            crate::service::admin_token::hash(presented),
        );
        if openssl::memcmp::eq(&a, &b) {
            return Ok(next.run(req).await);
        }
    }
    // Any admin may scrape (the numbers are read-only and hold no secret).
    let address = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    state.service.authenticate_admin(presented, address).await?;
    Ok(next.run(req).await)
}
