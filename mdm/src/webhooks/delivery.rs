//! The delivery worker of `russet serve`: one loop per receiver URL, so a receiver that is down
//! never holds back another. Each loop claims due rows with a lease (`WebhookStore`), POSTs
//! them (a few at a time), deletes what the receiver took (any 2xx), and reschedules the rest
//! with exponential backoff: `retry_min · 2^(attempt−1)`, at most `retry_max`. When a receiver
//! that was failing takes an event again, its whole backlog is made due at once instead of
//! waiting out each row's backoff. A row still failing once it is `give_up_after` old is
//! dropped with an error log and the `expired` metric; a sweep drops rows of URLs no longer
//! configured the same way.

use super::{Webhooks, event, receiver_name};
use crate::store::webhooks::{Lease, OutboxRow};
use crate::timefmt::now_ms;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Rows claimed at once per receiver.
const BATCH: u32 = 32;
/// POSTs in flight at once per receiver.
const IN_FLIGHT: usize = 8;
/// How long a claim holds its rows: longer than a batch can take (BATCH / IN_FLIGHT requests
/// in a row, each at most the timeout), so a live worker never loses its rows to another.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// The longest a receiver loop sleeps before looking for rows again (rows due for a retry,
/// rows another process inserted).
const MAX_POLL: Duration = Duration::from_secs(1);
/// How often rows past the give-up age are swept (at most).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The delivery part of `russet serve`: a loop per receiver and the give-up sweep; returns when
/// `shutdown` turns true, giving back the rows it held.
pub fn spawn_worker(
    webhooks: Arc<Webhooks>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(webhooks.settings.timeout)
            // A POST must reach the URL given, not turn into a GET somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("russet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(std::io::Error::other)?;
        // Random per process: only this worker reschedules or releases what it claimed.
        let owner = uuid::Uuid::new_v4().to_string();
        let mut tasks = Vec::new();
        for (index, url) in webhooks.settings.urls.iter().enumerate() {
            let receiver = Receiver {
                hooks: webhooks.clone(),
                client: client.clone(),
                url: url.clone(),
                name: receiver_name(url),
                index,
                owner: owner.clone(),
            };
            tasks.push(tokio::spawn(receiver.run(shutdown.clone())));
        }
        tasks.push(tokio::spawn(sweep(webhooks.clone(), shutdown)));
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "webhook delivery task failed");
            }
        }
        Ok(())
    })
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones.
pub(crate) fn backoff(attempts: i64, min: Duration, max: Duration) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    min.saturating_mul(1u32 << doublings).min(max)
}

struct Receiver {
    hooks: Arc<Webhooks>,
    client: reqwest::Client,
    url: String,
    name: String,
    index: usize,
    owner: String,
}

impl Receiver {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let settings = &self.hooks.settings;
        let poll = settings.retry_min.min(MAX_POLL);
        let lease_ms = duration_ms(settings.timeout.saturating_mul(BATCH / IN_FLIGHT as u32))
            .saturating_add(duration_ms(LEASE_MARGIN));
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = now_ms();
            let lease = Lease {
                owner: self.owner.clone(),
                until: now.saturating_add(lease_ms),
            };
            match self
                .hooks
                .store
                .claim_webhooks(&self.url, now, &lease, BATCH)
                .await
            {
                Ok(rows) if !rows.is_empty() => {
                    self.deliver(rows, &mut shutdown).await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(receiver = %self.name, error = %e, "claiming webhook events failed")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.hooks.wake[self.index].notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Send a claimed batch; on shutdown, give back what is still held.
    async fn deliver(&self, rows: Vec<OutboxRow>, shutdown: &mut watch::Receiver<bool>) {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let sends = futures::stream::iter(rows)
            .map(|row| self.deliver_one(row))
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<bool>>();
        tokio::select! {
            recovered = sends => {
                if recovered.contains(&true) {
                    self.receiver_is_back().await;
                }
            }
            _ = stopped(shutdown) => {
                if let Err(e) = self.hooks.store.release_webhooks(&ids, &self.owner).await {
                    tracing::warn!(receiver = %self.name, error = %e, "giving back webhook events failed; they are sent again once their lease runs out");
                }
            }
        }
    }

    /// POST one event. Returns true when the receiver took an event it had refused before.
    async fn deliver_one(&self, row: OutboxRow) -> bool {
        let store = &self.hooks.store;
        match self.post(&row).await {
            Ok(()) => {
                crate::telemetry::webhook_deliveries(&self.name, "delivered", 1);
                tracing::debug!(receiver = %self.name, event_id = %row.event_id, topic = %row.topic, "webhook delivered");
                if let Err(e) = store.delete_webhook(row.id).await {
                    // Sent again once the lease runs out: receivers de-duplicate on event_id.
                    tracing::warn!(receiver = %self.name, event_id = %row.event_id, error = %e, "webhook delivered but not marked so");
                }
                row.attempts > 1
            }
            Err(error) => {
                self.failed(&row, &error).await;
                false
            }
        }
    }

    async fn post(&self, row: &OutboxRow) -> Result<(), String> {
        let mut req = self
            .client
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(row.body.clone());
        if let Some(key) = &self.hooks.settings.hmac_key {
            let sig = event::signature(key, row.body.as_bytes())
                .map_err(|e| format!("signing the event: {e}"))?;
            req = req.header("X-Hmac-Signature", sig);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("the receiver answered HTTP {}", resp.status())),
            Err(e) => Err(error_chain(&e.without_url())),
        }
    }

    /// Try again later, or give up on an event that is too old.
    async fn failed(&self, row: &OutboxRow, error: &str) {
        let settings = &self.hooks.settings;
        let now = now_ms();
        let store = &self.hooks.store;
        if now.saturating_sub(row.created_at) >= duration_ms(settings.give_up_after) {
            crate::telemetry::webhook_deliveries(&self.name, "expired", 1);
            tracing::error!(
                receiver = %self.name,
                event_id = %row.event_id,
                topic = %row.topic,
                attempts = row.attempts,
                error = %error,
                "webhook event given up: not delivered within {} s",
                settings.give_up_after.as_secs()
            );
            if let Err(e) = store.delete_webhook(row.id).await {
                tracing::warn!(receiver = %self.name, error = %e, "dropping a given-up webhook event failed");
            }
            return;
        }
        crate::telemetry::webhook_deliveries(&self.name, "failed", 1);
        let wait = backoff(row.attempts, settings.retry_min, settings.retry_max);
        // Every failure of a long outage would be too many lines: the 1st, 2nd, 4th, 8th, …
        if row.attempts > 0 && (row.attempts & (row.attempts - 1)) == 0 {
            tracing::warn!(
                receiver = %self.name,
                event_id = %row.event_id,
                topic = %row.topic,
                attempts = row.attempts,
                retry_in_ms = duration_ms(wait),
                error = %error,
                "webhook delivery failed; will retry"
            );
        }
        if let Err(e) = store
            .webhook_failed(
                row.id,
                &self.owner,
                now.saturating_add(duration_ms(wait)),
                error,
            )
            .await
        {
            tracing::warn!(receiver = %self.name, error = %e, "rescheduling a webhook event failed; retried once its lease runs out");
        }
    }

    async fn receiver_is_back(&self) {
        match self.hooks.store.webhooks_due_now(&self.url, now_ms()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(receiver = %self.name, waiting = n, "webhook receiver answers again; sending its backlog")
            }
            Err(e) => {
                tracing::warn!(receiver = %self.name, error = %e, "webhook backlog not brought forward")
            }
        }
    }
}

/// Drop rows past the give-up age that no receiver loop will (URLs no longer configured).
/// Configured receivers give up on their own rows when they fail; the sweep waits one more
/// `retry_max` so that last attempt happens first.
async fn sweep(hooks: Arc<Webhooks>, mut shutdown: watch::Receiver<bool>) {
    let settings = &hooks.settings;
    let every = SWEEP_EVERY.min(settings.give_up_after.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let before = now_ms()
            .saturating_sub(duration_ms(settings.give_up_after))
            .saturating_sub(duration_ms(settings.retry_max));
        match hooks.store.expire_webhooks(before).await {
            Ok(expired) => {
                for (url, n) in expired {
                    let name = receiver_name(&url);
                    crate::telemetry::webhook_deliveries(
                        &name,
                        "expired",
                        u64::try_from(n).unwrap_or(0),
                    );
                    tracing::error!(
                        receiver = %name,
                        events = n,
                        "webhook events given up: not delivered within {} s",
                        settings.give_up_after.as_secs()
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "sweeping old webhook events failed"),
        }
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone), holding no borrow of it.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An error and its causes on one line (reqwest's own text is only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_cap() {
        let min = Duration::from_secs(1);
        let max = Duration::from_secs(600);
        let waits: Vec<u64> = (1..=12).map(|n| backoff(n, min, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(backoff(0, min, max), min);
        assert_eq!(backoff(i64::MAX, min, max), max);
    }
}
