//! The DEP API client (Apple, Device Management: Device assignment, and Authenticating for
//! Automated Device Enrollment).
//!
//! Authentication: `GET /session` with an OAuth 1.0a HMAC-SHA1 `Authorization` header (consumer
//! key/secret + access token/secret from the server token, no request-token dance, `realm="ADM"`)
//! returns an `auth_session_token`, sent as `X-ADM-Auth-Session` on every other call. Sessions are
//! renewed reactively: on `401`, or `403` whose code is `FORBIDDEN`, the client runs `/session`
//! again and replays the request once; a rotated `X-ADM-Auth-Session` response header is adopted.
//!
//! `429` and `5xx` answers (and transport failures) are retried with capped exponential backoff
//! (honouring a numeric `Retry-After`), [`RetryPolicy::max_retries`] times. Retried calls include
//! `POST`s: assign/remove are idempotent; a retried disown may report `NOT_ACCESSIBLE` for serials
//! the first attempt already removed.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DepError, api_error, codes};
pub use crate::retry::{MAX_LIMIT, MAX_RESPONSE_BYTES, RetryPolicy};
use crate::retry::{check_limit, check_serials, read_capped};
use crate::token::OAuthTokens;
use crate::types::{
    AccountDetail, ActivationLockRequest, ActivationLockResponse, AssignProfileResponse,
    DefineProfileResponse, DeviceDetailsResponse, DeviceStatusResponse, FetchResponse, Profile,
};

/// Apple's production endpoint.
pub const DEFAULT_BASE_URL: &str = "https://mdmenrollment.apple.com";
/// Sent as `X-Server-Protocol-Version` unless changed with [`DepClient::with_protocol_version`].
/// `7` is what NanoDEP sends (adds `iPadOS`); responses of v8–v10 (`mdm_migration_deadline`,
/// `THROTTLED`, `retry_after_seconds`) are understood too.
pub const DEFAULT_PROTOCOL_VERSION: u32 = 7;

const JSON: &str = "application/json;charset=UTF8";
const SESSION_HEADER: &str = "x-adm-auth-session";
const PROTOCOL_HEADER: &str = "x-server-protocol-version";

/// The default `User-Agent`: `russet/<crate version>`.
pub fn default_user_agent() -> String {
    format!("russet/{}", env!("CARGO_PKG_VERSION"))
}

enum Auth<'a> {
    OAuth,
    Session(&'a str),
}

struct RawResponse {
    status: u16,
    rotated_session: Option<String>,
    body: Vec<u8>,
}

/// A client of one DEP server token ("link").
pub struct DepClient {
    http: reqwest::Client,
    base_url: String,
    tokens: OAuthTokens,
    user_agent: HeaderValue,
    protocol_version: HeaderValue,
    retry: RetryPolicy,
    session: Mutex<Option<String>>,
    auth_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DepClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepClient")
            .field("base_url", &self.base_url)
            .field("tokens", &self.tokens)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct CursorRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
}

#[derive(Serialize)]
struct DevicesRequest<'a> {
    devices: &'a [String],
}

#[derive(Serialize)]
struct AssignRequest<'a> {
    profile_uuid: &'a str,
    devices: &'a [String],
}

#[derive(Serialize)]
struct RemoveRequest<'a> {
    devices: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_uuid: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct SessionResponse {
    auth_session_token: String,
}

impl DepClient {
    /// `base_url` is [`DEFAULT_BASE_URL`] in production (a trailing `/` is ignored);
    /// `user_agent` empty means [`default_user_agent`].
    pub fn new(
        base_url: impl Into<String>,
        tokens: OAuthTokens,
        user_agent: impl Into<String>,
    ) -> Result<Self, DepError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| DepError::Config(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
            return Err(DepError::Config(format!(
                "base URL {base_url:?} must be http(s) without a query"
            )));
        }
        let mut user_agent = user_agent.into();
        if user_agent.trim().is_empty() {
            user_agent = default_user_agent();
        }
        let user_agent = HeaderValue::from_str(&user_agent)
            .map_err(|_| DepError::Config("User-Agent is not a valid header value".into()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| DepError::Config(format!("HTTP client: {e}")))?;
        Ok(DepClient {
            http,
            base_url,
            tokens,
            user_agent,
            protocol_version: HeaderValue::from(DEFAULT_PROTOCOL_VERSION),
            retry: RetryPolicy::default(),
            session: Mutex::new(None),
            auth_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_protocol_version(mut self, version: u32) -> Self {
        self.protocol_version = HeaderValue::from(version);
        self
    }

    /// Replaces the HTTP client (proxies, timeouts, extra roots).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn tokens(&self) -> &OAuthTokens {
        &self.tokens
    }

    /// Forgets the session token; the next call authenticates again.
    pub fn invalidate_session(&self) {
        *self.lock_session() = None;
    }

    /// Runs `GET /session` now and keeps the new session token.
    pub async fn authenticate(&self) -> Result<(), DepError> {
        let token = self.new_session().await?;
        *self.lock_session() = Some(token);
        Ok(())
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, DepError> {
        reqwest::Url::parse(&format!("{}{}", self.base_url, path))
            .map_err(|e| DepError::Config(format!("URL for {path}: {e}")))
    }

    /// The OAuth 1.0a `Authorization` header of `GET <url>`.
    fn oauth_header(&self, url: &str) -> String {
        let token = oauth1_request::Token::from_parts(
            self.tokens.consumer_key.as_str(),
            self.tokens.consumer_secret.as_str(),
            self.tokens.access_token.as_str(),
            self.tokens.access_secret.as_str(),
        );
        let mut builder = oauth1_request::Builder::with_token(token, oauth1_request::HMAC_SHA1);
        builder.version(true);
        let header = builder.get(url, &());
        match header.strip_prefix("OAuth ") {
            Some(params) => format!("OAuth realm=\"ADM\",{params}"),
            None => header,
        }
    }

    async fn new_session(&self) -> Result<String, DepError> {
        let url = self.url("/session")?;
        let raw = self
            .send_with_retry(Method::GET, &url, Auth::OAuth, None)
            .await?;
        if !(200..300).contains(&raw.status) {
            return Err(api_error(raw.status, &raw.body));
        }
        let resp: SessionResponse =
            serde_json::from_slice(&raw.body).map_err(|e| DepError::Malformed {
                endpoint: "/session".into(),
                message: e.to_string(),
            })?;
        let token = resp.auth_session_token;
        if token.is_empty() || HeaderValue::from_str(&token).is_err() {
            return Err(DepError::Malformed {
                endpoint: "/session".into(),
                message: "auth_session_token is empty or not a valid header value".into(),
            });
        }
        tracing::debug!(base_url = %self.base_url, "DEP session established");
        Ok(token)
    }

    async fn current_session(&self) -> Result<String, DepError> {
        if let Some(s) = self.lock_session().clone() {
            return Ok(s);
        }
        self.refresh_session(None).await
    }

    /// Replaces `stale` with a new session, unless another task already did.
    async fn refresh_session(&self, stale: Option<&str>) -> Result<String, DepError> {
        let _guard = self.auth_lock.lock().await;
        if let Some(cur) = self.lock_session().clone()
            && Some(cur.as_str()) != stale
        {
            return Ok(cur);
        }
        let token = self.new_session().await?;
        *self.lock_session() = Some(token.clone());
        Ok(token)
    }

    async fn send_with_retry(
        &self,
        method: Method,
        url: &reqwest::Url,
        auth: Auth<'_>,
        body: Option<&[u8]>,
    ) -> Result<RawResponse, DepError> {
        let mut attempt = 0u32;
        loop {
            let mut rb = self
                .http
                .request(method.clone(), url.clone())
                .header(USER_AGENT, self.user_agent.clone())
                .header(ACCEPT, JSON)
                .header(CONTENT_TYPE, JSON)
                .header(PROTOCOL_HEADER, self.protocol_version.clone());
            rb = match auth {
                Auth::OAuth => rb.header(AUTHORIZATION, self.oauth_header(url.as_str())),
                Auth::Session(s) => rb.header(SESSION_HEADER, s),
            };
            if let Some(b) = body {
                rb = rb.body(b.to_vec());
            }
            let outcome = match rb.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let rotated_session = resp
                        .headers()
                        .get(SESSION_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned);
                    match read_capped(resp).await {
                        Ok(body) => Ok((
                            RawResponse {
                                status,
                                rotated_session,
                                body,
                            },
                            retry_after,
                        )),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(DepError::Transport(e)),
            };
            let retry_after = match outcome {
                Ok((raw, retry_after)) => {
                    if !(raw.status == 429 || (500..600).contains(&raw.status))
                        || attempt >= self.retry.max_retries
                    {
                        return Ok(raw);
                    }
                    tracing::warn!(
                        status = raw.status,
                        path = url.path(),
                        attempt,
                        "DEP call will be retried"
                    );
                    retry_after
                }
                Err(e @ DepError::Malformed { .. }) => return Err(e),
                Err(e) => {
                    if attempt >= self.retry.max_retries {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, path = url.path(), attempt, "DEP call will be retried");
                    None
                }
            };
            tokio::time::sleep(self.retry.delay(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    /// Sends an authenticated call, re-authenticating once on a stale session.
    async fn call_raw(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, DepError> {
        let mut session = self.current_session().await?;
        let mut reauthed = false;
        loop {
            let raw = self
                .send_with_retry(
                    method.clone(),
                    &url,
                    Auth::Session(&session),
                    body.as_deref(),
                )
                .await?;
            if let Some(rotated) = raw.rotated_session
                && HeaderValue::from_str(&rotated).is_ok()
                && rotated != session
            {
                tracing::debug!("adopting rotated DEP session token");
                *self.lock_session() = Some(rotated);
            }
            if (200..300).contains(&raw.status) {
                return Ok(raw.body);
            }
            let err = api_error(raw.status, &raw.body);
            let stale =
                raw.status == 401 || (raw.status == 403 && err.code() == Some(codes::FORBIDDEN));
            if stale && !reauthed {
                reauthed = true;
                tracing::debug!(
                    status = raw.status,
                    "DEP session stale; authenticating again"
                );
                session = self.refresh_session(Some(&session)).await?;
                continue;
            }
            return Err(err);
        }
    }

    async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<&B>,
    ) -> Result<R, DepError> {
        let endpoint = url.path().to_owned();
        let body = match body {
            Some(b) => {
                Some(serde_json::to_vec(b).map_err(|e| DepError::InvalidRequest(e.to_string()))?)
            }
            None => None,
        };
        let bytes = self.call_raw(method, url, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| DepError::Malformed {
            endpoint,
            message: e.to_string(),
        })
    }

    /// `GET /account`.
    pub async fn account(&self) -> Result<AccountDetail, DepError> {
        self.call::<(), _>(Method::GET, self.url("/account")?, None)
            .await
    }

    /// `POST /server/devices`: one fetch page. `limit` defaults to Apple's 100; at most 1000.
    pub async fn fetch_devices(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<FetchResponse, DepError> {
        check_limit(limit)?;
        let cursor = cursor.filter(|c| !c.is_empty());
        self.call(
            Method::POST,
            self.url("/server/devices")?,
            Some(&CursorRequest { cursor, limit }),
        )
        .await
    }

    /// `POST /devices/sync`: changes since `cursor` (records carry `op_type`/`op_date`).
    pub async fn sync_devices(
        &self,
        cursor: &str,
        limit: Option<u32>,
    ) -> Result<FetchResponse, DepError> {
        check_limit(limit)?;
        if cursor.is_empty() {
            return Err(DepError::InvalidRequest(format!(
                "{}: sync needs a cursor",
                codes::CURSOR_REQUIRED
            )));
        }
        self.call(
            Method::POST,
            self.url("/devices/sync")?,
            Some(&CursorRequest {
                cursor: Some(cursor),
                limit,
            }),
        )
        .await
    }

    /// `POST /devices`: details of the given serials.
    pub async fn device_details(
        &self,
        serials: &[String],
    ) -> Result<DeviceDetailsResponse, DepError> {
        check_serials(serials)?;
        self.call(
            Method::POST,
            self.url("/devices")?,
            Some(&DevicesRequest { devices: serials }),
        )
        .await
    }

    /// `POST /profile`: defines a profile (and assigns it to `profile.devices`, if any).
    pub async fn define_profile(
        &self,
        profile: &Profile,
    ) -> Result<DefineProfileResponse, DepError> {
        self.call(Method::POST, self.url("/profile")?, Some(profile))
            .await
    }

    /// `GET /profile?profile_uuid=…`.
    pub async fn get_profile(&self, profile_uuid: &str) -> Result<Profile, DepError> {
        if profile_uuid.is_empty() {
            return Err(DepError::InvalidRequest(
                codes::PROFILE_UUID_REQUIRED.into(),
            ));
        }
        let mut url = self.url("/profile")?;
        url.query_pairs_mut()
            .append_pair("profile_uuid", profile_uuid);
        self.call::<(), _>(Method::GET, url, None).await
    }

    /// `POST /profile/devices`: assigns a defined profile; per-serial outcomes, with
    /// `retry_after_seconds` for `THROTTLED` ones.
    pub async fn assign_profile(
        &self,
        profile_uuid: &str,
        serials: &[String],
    ) -> Result<AssignProfileResponse, DepError> {
        if profile_uuid.is_empty() {
            return Err(DepError::InvalidRequest(
                codes::PROFILE_UUID_REQUIRED.into(),
            ));
        }
        check_serials(serials)?;
        self.call(
            Method::POST,
            self.url("/profile/devices")?,
            Some(&AssignRequest {
                profile_uuid,
                devices: serials,
            }),
        )
        .await
    }

    /// `DELETE /profile/devices` (with a body): removes the assignment, optionally only of
    /// `profile_uuid`.
    pub async fn remove_profile(
        &self,
        serials: &[String],
        profile_uuid: Option<&str>,
    ) -> Result<DeviceStatusResponse, DepError> {
        check_serials(serials)?;
        self.call(
            Method::DELETE,
            self.url("/profile/devices")?,
            Some(&RemoveRequest {
                devices: serials,
                profile_uuid: profile_uuid.filter(|u| !u.is_empty()),
            }),
        )
        .await
    }

    /// `POST /devices/disown`: **permanently** removes the devices from the organisation.
    pub async fn disown(&self, serials: &[String]) -> Result<DeviceStatusResponse, DepError> {
        check_serials(serials)?;
        self.call(
            Method::POST,
            self.url("/devices/disown")?,
            Some(&DevicesRequest { devices: serials }),
        )
        .await
    }

    /// `POST /device/activationlock`.
    pub async fn activation_lock(
        &self,
        request: &ActivationLockRequest,
    ) -> Result<ActivationLockResponse, DepError> {
        if request.device.is_empty() {
            return Err(DepError::InvalidRequest(codes::DEVICE_ID_REQUIRED.into()));
        }
        self.call(
            Method::POST,
            self.url("/device/activationlock")?,
            Some(request),
        )
        .await
    }
}
