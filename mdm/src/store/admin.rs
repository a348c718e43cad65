//! Admin tokens, the audit log and settings: the same plain SQL on both backends, written
//! once (`impl_admin_store!`).

use super::{AdminTokenRecord, AuditEntry, AuditRecord, StoreResult};
use async_trait::async_trait;

#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn insert_admin_token(&self, name: &str, hash: &[u8], now: i64) -> StoreResult<i64>;
    async fn admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>>;

    async fn audit_append(&self, rec: &AuditRecord) -> StoreResult<()>;
    /// Newest first; entries with `id < before` when given.
    async fn audit_list(&self, limit: u32, before: Option<i64>) -> StoreResult<Vec<AuditEntry>>;

    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()>;
}

/// Implements [`AdminStore`] for a backend whose struct has a `pool` field.
macro_rules! impl_admin_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::admin::AdminStore for $store {
            async fn insert_admin_token(&self, name: &str, hash: &[u8], now: i64) -> $crate::store::StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO admin_tokens (name, hash, created_at) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(name)
                .bind(hash)
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn admin_tokens(&self) -> $crate::store::StoreResult<Vec<$crate::store::AdminTokenRecord>> {
                let rows: Vec<(i64, String, Vec<u8>)> =
                    sqlx::query_as("SELECT id, name, hash FROM admin_tokens ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, hash)| $crate::store::AdminTokenRecord { id, name, hash })
                    .collect())
            }

            async fn audit_append(&self, rec: &$crate::store::AuditRecord) -> $crate::store::StoreResult<()> {
                sqlx::query($crate::store::rows::AUDIT_INSERT)
                    .bind(rec.at)
                    .bind(&rec.actor)
                    .bind(&rec.action)
                    .bind(&rec.target)
                    .bind($crate::store::rows::audit_json(rec))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn audit_list(&self, limit: u32, before: Option<i64>) -> $crate::store::StoreResult<Vec<$crate::store::AuditEntry>> {
                let rows: Vec<$crate::store::rows::AuditRow> = sqlx::query_as($crate::store::rows::AUDIT_LIST)
                    .bind($crate::store::rows::clamp_limit(limit))
                    .bind(before)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map($crate::store::AuditEntry::try_from)
                    .collect::<Result<_, _>>()?)
            }

            async fn setting(&self, key: &str) -> $crate::store::StoreResult<Option<String>> {
                Ok(
                    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn set_setting(&self, key: &str, value: &str) -> $crate::store::StoreResult<()> {
                sqlx::query($crate::store::rows::SET_SETTING)
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_admin_store;
