//! What admin handlers extract from a request, each rejecting with [`AdminError`]: who is
//! calling ([`Actor`], set by [`require_admin`], which also checks the route's permission), a JSON body ([`JsonBody`]) and a query
//! string ([`AdminQuery`]). Handler modules import from here; this file imports no handler.

use super::AppState;
use super::error::AdminError;
use super::permissions::{self, PREFIX};
use crate::service::admins::{AdminIdentity, authorize};
use crate::service::audit;
use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Query, Request, State,
};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// Who is calling: the admin whose token was presented, with its role. (The client address
/// reaches the audit log through `audit::with_address`.)
#[derive(Clone, Debug)]
pub struct Actor {
    pub admin: AdminIdentity,
}

impl Actor {
    pub fn name(&self) -> &str {
        &self.admin.name
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AdminError> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or(AdminError::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The check on every `/api/v1` route: who is calling (a bearer token of an active admin,
/// looked up in the store on every request, failures rate-limited per client address), and
/// whether its role holds the permission the route needs (`permissions::ROUTES`; a route not
/// in the table is refused to everyone). The request then runs as the [`Actor`], with its
/// address on every audit entry it writes.
pub async fn require_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let admin = state
        .service
        .authenticate_admin(bearer_token(req.headers()), address)
        .await?;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let what = format!(
        "{method} {PREFIX}{}",
        route.strip_prefix(PREFIX).unwrap_or(&route)
    );
    let Some(permission) = permissions::required(&method, &route) else {
        tracing::error!(route = %what, "admin route without a permission: refused");
        return Err(AdminError::NoPermissionDefined(what));
    };
    if let Err(refused) = authorize(&admin, permission, &what) {
        tracing::warn!(admin = %admin.name, role = admin.role.as_str(),
            permission = permission.name(), route = %what, address = ?address,
            "admin request refused: role lacks the permission");
        return Err(refused.into());
    }
    req.extensions_mut().insert(Actor { admin });
    let audit_address = address.map(|a| a.to_string());
    Ok(audit::with_address(audit_address, next.run(req)).await)
}

/// A JSON body decoded into `T`. No `Content-Type` is required (curl users forget it); an
/// empty body reads as `{}`, so requests whose fields are all optional may send nothing. A
/// field of the wrong type is named in the error (`pin: invalid type: …`).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AdminError> {
        let body = Bytes::from_request(req, state).await?;
        parse_json(&body).map(JsonBody)
    }
}

/// Decode a JSON body as [`JsonBody`] does (for handlers that look at the bytes first).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() && path != "." {
            AdminError::bad_request(format!("{path}: {inner}"))
        } else if inner.is_data() {
            AdminError::bad_request(format!("body: {inner}"))
        } else {
            AdminError::bad_request(format!("body is not valid JSON: {inner}"))
        }
    })
}

/// A query string decoded into `T`; a malformed one is a 400 in the API's error shape.
pub struct AdminQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AdminQuery<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(AdminQuery(value))
    }
}
