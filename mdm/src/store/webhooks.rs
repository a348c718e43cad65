//! Storage for webhooks (migration `0013_webhooks.sql`): the durable outbox the delivery worker
//! drains, a row per event per receiver URL, and NanoMDM's `token_update_tally`. Written once
//! for both backends (`impl_webhook_store!`); the only dialect-specific part is PostgreSQL's
//! `FOR UPDATE SKIP LOCKED` in the claim (SQLite has one writer, so nothing to skip).
//!
//! A claim is a lease: `UPDATE … SET lease_until, lease_owner WHERE id IN (SELECT … LIMIT n)
//! AND <not leased> RETURNING …`. The outer condition is checked again on the row a concurrent
//! claim just changed (PostgreSQL re-reads an updated row before updating it), so two
//! processes sharing one database never both hold the same row; a process that dies holding a
//! lease only delays its rows until the lease runs out.

use super::StoreResult;
use async_trait::async_trait;

/// An event to queue for every receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEvent {
    /// UUID: receivers de-duplicate on it (delivery is at least once).
    pub event_id: String,
    /// `mdm.Authenticate`, `mdm.Connect`, …
    pub topic: String,
    /// The JSON body, exactly as it will be POSTed (and signed).
    pub body: String,
    pub created_at: i64,
}

/// An outbox row claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub url: String,
    pub event_id: String,
    pub topic: String,
    pub body: String,
    pub created_at: i64,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// A lease on claimed rows: who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Random per delivery worker: only the holder reschedules or releases its rows.
    pub owner: String,
    pub until: i64,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Queue `event` once per URL, in one transaction, due at once.
    async fn enqueue_webhook(&self, event: &NewWebhookEvent, urls: &[String]) -> StoreResult<()>;

    /// Claim up to `limit` rows for `url` that are due at `now` and not leased, oldest first,
    /// counting the attempt.
    async fn claim_webhooks(
        &self,
        url: &str,
        now: i64,
        lease: &Lease,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>>;

    /// The receiver took the event (or it was given up): the row is gone.
    async fn delete_webhook(&self, id: i64) -> StoreResult<()>;

    /// The attempt failed: try again at `next_attempt_at` (only if `owner` still holds it).
    async fn webhook_failed(
        &self,
        id: i64,
        owner: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> StoreResult<()>;

    /// Give rows back unsent (a worker stopping): due again at once.
    async fn release_webhooks(&self, ids: &[i64], owner: &str) -> StoreResult<()>;

    /// The receiver at `url` answers again: every row waiting for a retry is due at `now`.
    /// Returns how many were brought forward.
    async fn webhooks_due_now(&self, url: &str, now: i64) -> StoreResult<u64>;

    /// Delete rows created before `created_before` (given up), whatever their URL; the count
    /// per URL.
    async fn expire_webhooks(&self, created_before: i64) -> StoreResult<Vec<(String, i64)>>;

    /// Rows waiting, per URL (for `/metrics`, read at scrape time).
    async fn webhook_outbox_depth(&self) -> StoreResult<Vec<(String, i64)>>;

    /// TokenUpdates of this channel since it last (re-)enrolled; `None` for an unknown channel.
    async fn token_update_tally(&self, enrollment_id: &str) -> StoreResult<Option<i64>>;
}

/// The claim statement; `$skip_locked` is `" FOR UPDATE SKIP LOCKED"` on PostgreSQL.
macro_rules! claim_sql {
    ($skip_locked:literal) => {
        concat!(
            "UPDATE webhook_outbox SET lease_until = $3, lease_owner = $4, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM webhook_outbox WHERE url = $1 \
             AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
             ORDER BY id LIMIT $5",
            $skip_locked,
            ") AND (lease_until IS NULL OR lease_until < $2) \
             RETURNING id, url, event_id, topic, body, created_at, attempts"
        )
    };
}
pub(crate) use claim_sql;

macro_rules! impl_webhook_store {
    ($store:ty, $db:ty, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::webhooks::WebhookStore for $store {
            async fn enqueue_webhook(
                &self,
                event: &$crate::store::webhooks::NewWebhookEvent,
                urls: &[String],
            ) -> $crate::store::StoreResult<()> {
                if urls.is_empty() {
                    return Ok(());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO webhook_outbox (url, event_id, topic, body, created_at, \
                     next_attempt_at) ",
                );
                qb.push_values(urls, |mut row, url| {
                    row.push_bind(url.clone())
                        .push_bind(event.event_id.clone())
                        .push_bind(event.topic.clone())
                        .push_bind(event.body.clone())
                        .push_bind(event.created_at)
                        .push_bind(event.created_at);
                });
                let mut tx = self.write().await?;
                qb.build().execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_webhooks(
                &self,
                url: &str,
                now: i64,
                lease: &$crate::store::webhooks::Lease,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::webhooks::OutboxRow>> {
                let mut tx = self.write().await?;
                let mut rows: Vec<$crate::store::webhooks::OutboxRow> =
                    sqlx::query_as($crate::store::webhooks::claim_sql!($skip_locked))
                        .bind(url)
                        .bind(now)
                        .bind(lease.until)
                        .bind(&lease.owner)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                // RETURNING follows no order.
                rows.sort_by_key(|r| r.id);
                Ok(rows)
            }

            async fn delete_webhook(&self, id: i64) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                sqlx::query("DELETE FROM webhook_outbox WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn webhook_failed(
                &self,
                id: i64,
                owner: &str,
                next_attempt_at: i64,
                error: &str,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                sqlx::query(
                    "UPDATE webhook_outbox SET lease_until = NULL, lease_owner = NULL, \
                     next_attempt_at = $3, last_error = $4 WHERE id = $1 AND lease_owner = $2",
                )
                .bind(id)
                .bind(owner)
                .bind(next_attempt_at)
                .bind(error)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn release_webhooks(
                &self,
                ids: &[i64],
                owner: &str,
            ) -> $crate::store::StoreResult<()> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE webhook_outbox SET lease_until = NULL, lease_owner = NULL, \
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                     WHERE lease_owner = ",
                );
                qb.push_bind(owner.to_string()).push(" AND id IN (");
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                sep.push_unseparated(")");
                let mut tx = self.write().await?;
                qb.build().execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn webhooks_due_now(
                &self,
                url: &str,
                now: i64,
            ) -> $crate::store::StoreResult<u64> {
                let mut tx = self.write().await?;
                let done = sqlx::query(
                    "UPDATE webhook_outbox SET next_attempt_at = $2 \
                     WHERE url = $1 AND next_attempt_at > $2 AND lease_until IS NULL",
                )
                .bind(url)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn expire_webhooks(
                &self,
                created_before: i64,
            ) -> $crate::store::StoreResult<Vec<(String, i64)>> {
                let mut tx = self.write().await?;
                let urls: Vec<String> = sqlx::query_scalar(
                    "DELETE FROM webhook_outbox WHERE created_at < $1 RETURNING url",
                )
                .bind(created_before)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut counts: Vec<(String, i64)> = Vec::new();
                for url in urls {
                    match counts.iter_mut().find(|(u, _)| *u == url) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((url, 1)),
                    }
                }
                counts.sort();
                Ok(counts)
            }

            async fn webhook_outbox_depth(
                &self,
            ) -> $crate::store::StoreResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT url, COUNT(*) FROM webhook_outbox GROUP BY url ORDER BY url",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn token_update_tally(
                &self,
                enrollment_id: &str,
            ) -> $crate::store::StoreResult<Option<i64>> {
                Ok(
                    sqlx::query_scalar("SELECT token_update_tally FROM enrollments WHERE id = $1")
                        .bind(enrollment_id)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }
        }
    };
}
pub(crate) use impl_webhook_store;
