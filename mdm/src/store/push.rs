//! Storage for APNs: who to push, what happened, and the push certificate.
//!
//! Written once for both backends (`impl_push_store!`): every statement here is plain SQL that
//! SQLite and PostgreSQL read the same way.

use super::StoreResult;
use async_trait::async_trait;

/// An enrollment that can be woken: its APNs token and PushMagic.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushTarget {
    pub enrollment_id: String,
    pub push_token: Vec<u8>,
    pub push_magic: String,
    pub topic: String,
    /// Why APNs said this token is dead (410 / 400), if it did since the last TokenUpdate.
    pub push_blocked: Option<String>,
}

/// What one push came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushResultRecord {
    pub enrollment_id: String,
    pub at: i64,
    /// e.g. `delivered`, `unregistered`, `retry: HTTP 503`.
    pub result: String,
    /// Set when the token must not be pushed again before a new TokenUpdate.
    pub block: Option<String>,
}

/// The push certificate as stored (the key sealed).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushCertificateRecord {
    pub id: i64,
    pub topic: String,
    pub subject: String,
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
    pub not_after: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushCsrKey {
    pub id: i64,
    pub key_sealed: Vec<u8>,
    pub csr_pem: String,
    pub created_at: i64,
}

#[async_trait]
pub trait PushStore: Send + Sync {
    /// Enabled enrollments holding an open entry of this command, with a token, not blocked:
    /// one page, at most `limit` in enrollment ID order after `after` (`""` for the first). A
    /// fleet-wide command has 100k targets: the push fan-out reads them a page at a time.
    async fn push_targets_for_command(
        &self,
        command_uuid: &str,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<PushTarget>>;

    /// One enrollment (enabled, with a token), blocked or not.
    async fn push_target(&self, enrollment_id: &str) -> StoreResult<Option<PushTarget>>;

    /// Enrollments with open commands that have neither checked in since `seen_before` nor
    /// been pushed since `pushed_before`: the sweep wakes them again.
    async fn sweep_targets(
        &self,
        seen_before: i64,
        pushed_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<PushTarget>>;

    /// Record push outcomes (one transaction; one statement per few hundred outcomes).
    async fn record_pushes(&self, results: &[PushResultRecord]) -> StoreResult<()>;

    /// The newest push certificate: the active one.
    async fn active_push_certificate(&self) -> StoreResult<Option<PushCertificateRecord>>;

    /// Make a certificate the active one (earlier ones stay as history). Returns its id.
    async fn insert_push_certificate(&self, rec: &PushCertificateRecord) -> StoreResult<i64>;

    async fn insert_push_csr_key(
        &self,
        key_sealed: &[u8],
        csr_pem: &str,
        now: i64,
    ) -> StoreResult<i64>;

    /// Pending CSR keys, newest first.
    async fn push_csr_keys(&self) -> StoreResult<Vec<PushCsrKey>>;
}

const TARGET_COLUMNS: &str =
    "e.id AS enrollment_id, e.push_token, e.push_magic, e.topic, e.push_blocked";

/// Implements [`PushStore`] for a backend whose struct has a `pool` field.
macro_rules! impl_push_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::push::PushStore for $store {
            async fn push_targets_for_command(
                &self,
                command_uuid: &str,
                after: &str,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::push::PushTarget>> {
                // A range of `queue_command_idx` (command_uuid, enrollment_id), in order, each
                // joined to its enrollment. `e.id > $2` (implied by the join) lets a merge join
                // start the enrollments where the page starts. Planned with the values
                // (`persistent(false)`): PostgreSQL's generic plan merge-joins from the first
                // enrollment, for a one-Mac command too.
                let sql = format!(
                    "SELECT {} FROM queue_entries q JOIN enrollments e ON e.id = q.enrollment_id \
                     WHERE q.command_uuid = $1 AND q.enrollment_id > $2 AND e.id > $2 \
                     AND q.status IN ('Pending', 'Sent', 'NotNow') \
                     AND e.enabled AND e.push_token IS NOT NULL AND e.push_magic IS NOT NULL \
                     AND e.push_blocked IS NULL ORDER BY q.enrollment_id LIMIT $3",
                    $crate::store::push::target_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(command_uuid)
                    .bind(after)
                    .bind(i64::from(limit))
                    .persistent(false)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn push_target(
                &self,
                enrollment_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::push::PushTarget>> {
                let sql = format!(
                    "SELECT {} FROM enrollments e WHERE e.id = $1 AND e.enabled \
                     AND e.push_token IS NOT NULL AND e.push_magic IS NOT NULL",
                    $crate::store::push::target_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(enrollment_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn sweep_targets(
                &self,
                seen_before: i64,
                pushed_before: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::push::PushTarget>> {
                let sql = format!(
                    "SELECT {} FROM enrollments e WHERE e.enabled AND e.push_token IS NOT NULL \
                     AND e.push_magic IS NOT NULL AND e.push_blocked IS NULL \
                     AND COALESCE(e.last_seen_at, 0) < $1 AND COALESCE(e.last_push_at, 0) < $2 \
                     AND EXISTS (SELECT 1 FROM queue_entries q WHERE q.enrollment_id = e.id \
                                 AND q.status IN ('Pending', 'Sent', 'NotNow')) \
                     ORDER BY e.id LIMIT $3",
                    $crate::store::push::target_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(seen_before)
                    .bind(pushed_before)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn record_pushes(
                &self,
                results: &[$crate::store::push::PushResultRecord],
            ) -> $crate::store::StoreResult<()> {
                if results.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                for chunk in results.chunks($crate::store::push::RECORD_CHUNK) {
                    let sql = $crate::store::push::record_pushes_sql(chunk.len());
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for r in chunk {
                        q = q.bind(&r.enrollment_id).bind(r.at).bind(&r.result).bind(&r.block);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn active_push_certificate(
                &self,
            ) -> $crate::store::StoreResult<Option<$crate::store::push::PushCertificateRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, topic, subject, cert_pem, key_sealed, not_after, created_at \
                     FROM push_certificates ORDER BY id DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn insert_push_certificate(
                &self,
                rec: &$crate::store::push::PushCertificateRecord,
            ) -> $crate::store::StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO push_certificates (topic, subject, cert_pem, key_sealed, \
                     not_after, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&rec.topic)
                .bind(&rec.subject)
                .bind(&rec.cert_pem)
                .bind(&rec.key_sealed)
                .bind(rec.not_after)
                .bind(rec.created_at)
                .fetch_one(&mut *self.write_one().await?)
                .await?)
            }

            async fn insert_push_csr_key(
                &self,
                key_sealed: &[u8],
                csr_pem: &str,
                now: i64,
            ) -> $crate::store::StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO push_csr_keys (key_sealed, csr_pem, created_at) \
                     VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(key_sealed)
                .bind(csr_pem)
                .bind(now)
                .fetch_one(&mut *self.write_one().await?)
                .await?)
            }

            async fn push_csr_keys(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::push::PushCsrKey>> {
                Ok(sqlx::query_as(
                    "SELECT id, key_sealed, csr_pem, created_at FROM push_csr_keys \
                     ORDER BY id DESC",
                )
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}
pub(crate) use impl_push_store;

#[doc(hidden)]
pub fn target_columns() -> &'static str {
    TARGET_COLUMNS
}

/// Outcomes recorded per statement (4 parameters each: well under both databases' limits).
#[doc(hidden)]
pub const RECORD_CHUNK: usize = 500;

/// One statement recording `n` push outcomes: a list of (id, at, result, block) joined to the
/// enrollments. Both databases read `WITH … UPDATE … FROM` the same way.
#[doc(hidden)]
pub fn record_pushes_sql(n: usize) -> String {
    let mut sql = String::from("WITH v (id, at, result, block) AS (VALUES ");
    for i in 0..n {
        let p = i * 4;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4));
    }
    sql.push_str(
        ") UPDATE enrollments SET last_push_at = v.at, last_push_result = v.result, \
         push_blocked = COALESCE(v.block, enrollments.push_blocked) FROM v \
         WHERE enrollments.id = v.id",
    );
    sql
}
