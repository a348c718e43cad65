//! Webhooks (issue 16): every check-in and command report the core applied becomes a
//! NanoMDM/MicroMDM-compatible JSON event (`event.rs`, secrets redacted by `redact.rs`),
//! POSTed to each `--webhook-url`, signed with `--webhook-hmac-key` (`X-Hmac-Signature`).
//!
//! Delivery goes through a durable outbox in the database (`store/webhooks.rs`,
//! `WebhookStore`): the device's request only inserts a row per receiver URL — in the request,
//! before the Mac gets its answer, so an applied message is never lost — and the delivery
//! worker (`delivery.rs`) sends it, at least once, retrying with exponential backoff until the
//! row is older than the give-up age. Nothing is recorded, and no query added, when no URL is
//! configured: the core then has no recorder at all.

mod delivery;
pub mod event;
pub mod redact;

pub use delivery::spawn_worker;

use crate::service::{AppliedMessage, MessageKind, MessageRecorder, ServiceError};
use crate::store::Store;
use crate::store::webhooks::NewWebhookEvent;
use crate::timefmt::{now_ms, rfc3339};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Retry schedule and limits of the delivery worker.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Receivers, each validated `http(s)://` URL.
    pub urls: Vec<String>,
    /// Signs every body (`X-Hmac-Signature`) when set. Never logged.
    pub hmac_key: Option<Vec<u8>>,
    /// The first retry waits this long; each next one twice as long …
    pub retry_min: Duration,
    /// … up to this.
    pub retry_max: Duration,
    /// An event not delivered by then is dropped, with an error log and a metric.
    pub give_up_after: Duration,
    /// One POST, connect to answer.
    pub timeout: Duration,
}

impl WebhookSettings {
    pub const DEFAULT_RETRY_MIN: Duration = Duration::from_secs(1);
    pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(600);
    pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new(urls: Vec<String>, hmac_key: Option<Vec<u8>>) -> Self {
        WebhookSettings {
            urls,
            hmac_key,
            retry_min: Self::DEFAULT_RETRY_MIN,
            retry_max: Self::DEFAULT_RETRY_MAX,
            give_up_after: Self::DEFAULT_GIVE_UP_AFTER,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// How a receiver is named in logs and metrics: scheme, host and port only (a URL's path,
/// query or user info may carry a credential).
pub fn receiver_name(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => "invalid".into(),
        },
        Err(_) => "invalid".into(),
    }
}

/// The webhooks service: the core's [`MessageRecorder`] (outbox rows in the request) and the
/// state the delivery worker runs on.
pub struct Webhooks {
    store: Arc<dyn Store>,
    settings: WebhookSettings,
    /// One per URL, in `settings.urls` order: a new row wakes that URL's worker at once (a
    /// stored permit, so a wake-up between two polls is not lost).
    wake: Vec<Notify>,
}

impl Webhooks {
    pub fn new(store: Arc<dyn Store>, settings: WebhookSettings) -> Self {
        let wake = settings.urls.iter().map(|_| Notify::new()).collect();
        Webhooks {
            store,
            settings,
            wake,
        }
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Outbox rows waiting, per receiver, for `/metrics` (read at scrape time).
    pub async fn record_gauges(&self) -> Result<(), ServiceError> {
        let depth = self.store.webhook_outbox_depth().await?;
        for url in &self.settings.urls {
            let n = depth
                .iter()
                .filter(|(u, _)| u == url)
                .map(|(_, n)| *n)
                .sum();
            crate::telemetry::webhook_outbox(&receiver_name(url), n);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl MessageRecorder for Webhooks {
    async fn record(&self, message: &AppliedMessage<'_>) -> Result<(), ServiceError> {
        let tally = match message.kind {
            MessageKind::Checkin {
                message_type: "TokenUpdate",
            } => {
                self.store
                    .token_update_tally(&message.enrollment.id)
                    .await?
            }
            _ => None,
        };
        let now = now_ms();
        let event_id = uuid::Uuid::new_v4().to_string();
        let event = event::build(message, event_id.clone(), rfc3339(now), tally);
        let body = serde_json::to_string(&event)
            .map_err(|e| ServiceError::Internal(format!("webhook event: {e}")))?;
        self.store
            .enqueue_webhook(
                &NewWebhookEvent {
                    event_id,
                    topic: event.topic,
                    body,
                    created_at: now,
                },
                &self.settings.urls,
            )
            .await?;
        for w in &self.wake {
            w.notify_one();
        }
        Ok(())
    }
}
