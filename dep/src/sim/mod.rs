//! A DEP (ABM/ASM) API simulator for tests and `russet dep-sim`.
//!
//! Faithful to Apple's Device assignment documentation: `/session` really verifies the
//! OAuth 1.0a HMAC-SHA1 signature (timestamp window ±10 min, nonce replay refused) and issues
//! session tokens that expire after [`SimConfig::session_ttl`]; every call needs a `User-Agent`
//! (`400 USER_AGENT_MISSING`); fetch pages (default limit 100, max 1000) over the devices that
//! existed when the fetch began, with cursors that expire (`EXPIRED_CURSOR`) and, once the fetch
//! returned everything, exhaust (`EXHAUSTED_CURSOR`, also for sync cursors passed to fetch);
//! sync returns the change log after the cursor (`added`/`modified`/`deleted` with `op_date`);
//! profile define/get/assign/remove with Apple's validation codes; disown; activation lock;
//! `/account`. Profile assignment and removal log `modified` changes, as Apple's do.
//!
//! Test hooks: [`DepSimulator::inject`] (fail the next `count` calls of a path),
//! [`DepSimulator::set_assign_outcome`] (FAILED/THROTTLED per serial), organisation changes
//! ([`DepSimulator::add_devices`], [`DepSimulator::modify_device`],
//! [`DepSimulator::delete_device`]), [`DepSimulator::expire_sessions`],
//! [`DepSimulator::expire_cursors`], and [`DepSimulator::stats`].

mod fail;
mod http;
mod oauth;
mod profile;
mod state;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use state::SimStats;

use crate::token::OAuthTokens;
use crate::types::{DepDevice, DeviceStatus, Profile, ProfileStatus};

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Devices in the organisation at start.
    pub devices: usize,
    /// Page size when the request has no `limit` (Apple: 100). Requests are capped at 1000.
    pub page_limit_default: u32,
    /// Cursor lifetime (Apple: 7 days).
    pub cursor_ttl: Duration,
    /// Session token lifetime (undocumented by Apple).
    pub session_ttl: Duration,
    /// Seed of serials and OAuth credentials.
    pub seed: u64,
    /// Status for a missing/expired session: 401 (Apple) or 403 `FORBIDDEN` (depsim).
    pub stale_session_status: u16,
    /// Answer every authenticated call with a new `X-ADM-Auth-Session` (the old one dies).
    pub rotate_sessions: bool,
    /// `retry_after_seconds` sent with `THROTTLED` assignments.
    pub throttle_retry_after_seconds: u64,
    pub server_name: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            devices: 10,
            page_limit_default: 100,
            cursor_ttl: Duration::from_secs(7 * 24 * 3600),
            session_ttl: Duration::from_secs(300),
            seed: 1,
            stale_session_status: 401,
            rotate_sessions: false,
            throttle_retry_after_seconds: 60,
            server_name: "Russet DEP simulator".into(),
        }
    }
}

/// A running simulator; stops when dropped.
pub struct DepSimulator {
    shared: http::Shared,
    addr: SocketAddr,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DepSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepSimulator")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl DepSimulator {
    /// Starts on `127.0.0.1:0`.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: SimConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared: http::Shared = Arc::new(Mutex::new(state::State::new(config)));
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "DEP simulator stopped");
            }
        });
        Ok(DepSimulator {
            shared,
            addr,
            url: format!("http://{addr}"),
            task,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, state::State> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OAuth credentials the simulator accepts.
    pub fn tokens(&self) -> OAuthTokens {
        self.state().tokens.clone()
    }

    /// Writes [`Self::tokens`] as a JSON token file (accepted by `decrypt_token`).
    pub fn write_token(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.tokens().to_json())
    }

    /// The organisation's devices, in the order they were added.
    pub fn devices(&self) -> Vec<DepDevice> {
        self.state().devices()
    }

    pub fn device(&self, serial: &str) -> Option<DepDevice> {
        self.state().device(serial)
    }

    /// Adds devices to the organisation (sync: `added`); returns their serials.
    pub fn add_devices(&self, n: usize) -> Vec<String> {
        self.state().add_devices(n)
    }

    /// Changes a device (sync: `modified`); false if unknown.
    pub fn modify_device(&self, serial: &str, f: impl FnOnce(&mut DepDevice)) -> bool {
        self.state().modify(serial, f)
    }

    /// Removes a device from the organisation, as a disown or a move to another MDM server in
    /// ABM does (sync: `deleted`); false if unknown.
    pub fn delete_device(&self, serial: &str) -> bool {
        self.state().remove(serial)
    }

    /// The device fetched its cloud configuration (`profile_status` → `pushed`).
    pub fn mark_pushed(&self, serial: &str) -> bool {
        let now = state::now_rfc3339();
        self.state().modify(serial, |d| {
            if d.profile_uuid.is_some() {
                d.profile_status = Some(ProfileStatus::Pushed);
                d.profile_push_time = Some(now);
            }
        })
    }

    /// Fails the next `count` calls of `path` (e.g. `/account`, `/session`, `/server/devices`)
    /// with `status` and `code` (after the User-Agent check, before authentication).
    pub fn inject(&self, path: &str, status: u16, code: &str, count: usize) {
        self.state().inject(path, status, code, count);
    }

    pub fn clear_injections(&self) {
        self.state().clear_injections();
    }

    /// Forces the assign outcome of a serial (`Failed`, `Throttled`); `None` restores normal.
    pub fn set_assign_outcome(&self, serial: &str, outcome: Option<DeviceStatus>) {
        self.state().set_assign_outcome(serial, outcome);
    }

    /// Every session token expires now.
    pub fn expire_sessions(&self) {
        self.state().expire_sessions();
    }

    /// Every cursor issued so far expires now.
    pub fn expire_cursors(&self) {
        self.state().expire_cursors();
    }

    pub fn profiles(&self) -> Vec<Profile> {
        self.state().profiles.values().cloned().collect()
    }

    pub fn stats(&self) -> SimStats {
        self.state().stats.clone()
    }

    /// Requests seen for `path`.
    pub fn requests(&self, path: &str) -> u64 {
        self.state().stats.requests.get(path).copied().unwrap_or(0)
    }
}

impl Drop for DepSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
