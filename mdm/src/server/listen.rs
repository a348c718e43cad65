//! Serving the routers: the layers every request passes (timeout, panic catcher, trace,
//! redacted headers) and the two listeners, plain HTTP or TLS with the client's certificate
//! handed to handlers.

use crate::http::{self, REQUEST_TIMEOUT};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub(super) fn with_common_layers(
    router: Router,
    listener: &'static str,
    sensitive: Arc<[HeaderName]>,
) -> Router {
    router
        // Innermost of these, so the time measured is the handler's, and the route template
        // (`MatchedPath`, set by routing) is known.
        .layer(middleware::from_fn_with_state(listener, timed))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::from_shared(sensitive))
}

/// Record every request's latency per listener, method, route template and status.
async fn timed(State(listener): State<&'static str>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    crate::telemetry::http_request(
        listener,
        method.as_str(),
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    // The peer address reaches handlers (`ConnectInfo`): the admin API rate-limits failed
    // tokens per address and writes it into the audit log.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    })
    .await
}

/// An axum-server handle that starts a graceful shutdown (10 s for open requests) when
/// `shutdown` turns true: both TLS listeners stop this way.
fn shutdown_handle(
    mut shutdown: watch::Receiver<bool>,
) -> axum_server::Handle<std::net::SocketAddr> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    handle
}

/// Serve HTTPS with axum-server: the connection's client certificate (if any) reaches handlers
/// as the `PeerCertificate` request extension.
pub(super) async fn serve_tls(
    listener: TcpListener,
    app: Router,
    acceptor: openssl::ssl::SslAcceptor,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use axum_server::tls_openssl::{OpenSSLAcceptor, OpenSSLConfig};
    let config = OpenSSLConfig::from_acceptor(Arc::new(acceptor));
    axum_server::from_tcp(listener.into_std()?)?
        .acceptor(http::tls::PeerCertAcceptor(OpenSSLAcceptor::new(config)))
        .handle(shutdown_handle(shutdown))
        .serve(app.into_make_service())
        .await
}

/// Serve the admin API over HTTPS: no client certificate; the peer address reaches handlers
/// (`ConnectInfo`) as on plain HTTP (failed-token counting and the audit log need it).
pub(super) async fn serve_admin_tls(
    listener: TcpListener,
    app: Router,
    acceptor: openssl::ssl::SslAcceptor,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use axum_server::tls_openssl::{OpenSSLAcceptor, OpenSSLConfig};
    let config = OpenSSLConfig::from_acceptor(Arc::new(acceptor));
    axum_server::from_tcp(listener.into_std()?)?
        .acceptor(OpenSSLAcceptor::new(config))
        .handle(shutdown_handle(shutdown))
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
