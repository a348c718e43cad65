//! Storage for web console sessions (migration `0024_console_sessions.sql`; issue 18), written
//! once for both backends (`impl_console_store!`). Only the SHA-256 of a session's cookie
//! value is stored; the rules (lifetime, who may sign in) are `service::console_session`'s.

use super::StoreResult;
use async_trait::async_trait;

/// A live session: who it belongs to, with that admin's role as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleSessionRecord {
    pub admin_name: String,
    pub role: String,
    pub expires_at: i64,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Store a new session, and forget sessions that expired before `now` (sign-ins are rare,
    /// so this keeps the table small without a sweeper).
    async fn create_console_session(
        &self,
        id_hash: &[u8],
        admin_name: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// The session with this hash, if it has not expired at `now` and its admin is not revoked.
    async fn console_session(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<ConsoleSessionRecord>>;
    /// Sign out: forget the session; false if there was none.
    async fn delete_console_session(&self, id_hash: &[u8]) -> StoreResult<bool>;
}

macro_rules! impl_console_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::console::ConsoleStore for $store {
            async fn create_console_session(
                &self,
                id_hash: &[u8],
                admin_name: &str,
                now: i64,
                expires_at: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO console_sessions (id_hash, admin_name, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id_hash)
                .bind(admin_name)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn console_session(
                &self,
                id_hash: &[u8],
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::console::ConsoleSessionRecord>>
            {
                Ok(sqlx::query_as(
                    "SELECT s.admin_name, a.role, s.expires_at FROM console_sessions s \
                     JOIN admins a ON a.name = s.admin_name \
                     WHERE s.id_hash = $1 AND s.expires_at > $2 AND a.revoked_at IS NULL",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn delete_console_session(
                &self,
                id_hash: &[u8],
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&mut *self.write_one().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
pub(crate) use impl_console_store;
