//! Admins and their tokens, the audit log and settings: the same plain SQL on both backends,
//! written once (`impl_admin_store!`).

use super::{AdminRecord, AdminTokenRecord, AuditEntry, AuditRecord, RevokeOutcome, StoreResult};
use async_trait::async_trait;

/// A new admin and its first token.
#[derive(Debug, Clone)]
pub struct NewAdmin<'a> {
    pub name: &'a str,
    pub role: &'a str,
    /// SHA-256 of its first token.
    pub token_hash: &'a [u8],
    pub created_by: Option<&'a str>,
    pub now: i64,
}

#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Create an admin with its first token, in one transaction. `None` when the name is taken
    /// (by an active or a revoked admin: names in the audit log stay unambiguous).
    async fn create_admin(&self, admin: &NewAdmin<'_>) -> StoreResult<Option<AdminRecord>>;
    /// Every admin, revoked ones included, in creation order.
    async fn admins(&self) -> StoreResult<Vec<AdminRecord>>;
    /// Revoke an admin and delete its tokens, in one transaction; refused when it is the last
    /// active `admin` (checked under a lock, so two concurrent revokes cannot both pass).
    async fn revoke_admin(&self, name: &str, by: &str, now: i64) -> StoreResult<RevokeOutcome>;
    /// The tokens of admins that are not revoked, with the admin's name and role. Read on
    /// every admin request, so a revoke on any server sharing the database counts at once.
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
            async fn create_admin(
                &self,
                a: &$crate::store::admin::NewAdmin<'_>,
            ) -> $crate::store::StoreResult<Option<$crate::store::AdminRecord>> {
                let mut tx = self.write().await?;
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO admins (name, role, created_at, created_by) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO NOTHING RETURNING id",
                )
                .bind(a.name)
                .bind(a.role)
                .bind(a.now)
                .bind(a.created_by)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(id) = id else {
                    return Ok(None);
                };
                sqlx::query(
                    "INSERT INTO admin_tokens (name, hash, created_at, admin_id) VALUES ($1, $2, $3, $4)",
                )
                .bind(a.name)
                .bind(a.token_hash)
                .bind(a.now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some($crate::store::AdminRecord {
                    id,
                    name: a.name.to_string(),
                    role: a.role.to_string(),
                    created_at: a.now,
                    created_by: a.created_by.map(str::to_string),
                    revoked_at: None,
                    revoked_by: None,
                    tokens: 1,
                }))
            }

            async fn admins(&self) -> $crate::store::StoreResult<Vec<$crate::store::AdminRecord>> {
                type Row = (i64, String, String, i64, Option<String>, Option<i64>, Option<String>, i64);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT a.id, a.name, a.role, a.created_at, a.created_by, a.revoked_at, a.revoked_by, \
                     (SELECT COUNT(*) FROM admin_tokens t WHERE t.admin_id = a.id) \
                     FROM admins a ORDER BY a.id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, role, created_at, created_by, revoked_at, revoked_by, tokens)| {
                        $crate::store::AdminRecord {
                            id,
                            name,
                            role,
                            created_at,
                            created_by,
                            revoked_at,
                            revoked_by,
                            tokens,
                        }
                    })
                    .collect())
            }

            async fn revoke_admin(
                &self,
                name: &str,
                by: &str,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::RevokeOutcome> {
                use $crate::store::RevokeOutcome;
                let mut tx = self.write().await?;
                // Lock every active `admin` row first (PostgreSQL row locks; SQLite's write
                // transaction already holds the database), so two revokes of the last two
                // admins on two servers are serialized and the second sees the first.
                sqlx::query("UPDATE admins SET role = role WHERE role = 'admin' AND revoked_at IS NULL")
                    .execute(&mut *tx)
                    .await?;
                let row: Option<(i64, String, Option<i64>)> =
                    sqlx::query_as("SELECT id, role, revoked_at FROM admins WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((id, role, revoked_at)) = row else {
                    return Ok(RevokeOutcome::NotFound);
                };
                if revoked_at.is_some() {
                    return Ok(RevokeOutcome::AlreadyRevoked);
                }
                if role == "admin" {
                    let admins: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM admins WHERE role = 'admin' AND revoked_at IS NULL",
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    if admins <= 1 {
                        return Ok(RevokeOutcome::LastAdmin);
                    }
                }
                sqlx::query("UPDATE admins SET revoked_at = $2, revoked_by = $3 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .bind(by)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM admin_tokens WHERE admin_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(RevokeOutcome::Revoked)
            }

            async fn admin_tokens(&self) -> $crate::store::StoreResult<Vec<$crate::store::AdminTokenRecord>> {
                let rows: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(
                    "SELECT t.id, a.name, a.role, t.hash FROM admin_tokens t \
                     JOIN admins a ON a.id = t.admin_id WHERE a.revoked_at IS NULL ORDER BY t.id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, role, hash)| $crate::store::AdminTokenRecord { id, name, role, hash })
                    .collect())
            }

            async fn audit_append(&self, rec: &$crate::store::AuditRecord) -> $crate::store::StoreResult<()> {
                sqlx::query($crate::store::rows::AUDIT_INSERT)
                    .bind(rec.at)
                    .bind(&rec.actor)
                    .bind(&rec.action)
                    .bind(&rec.target)
                    .bind($crate::store::rows::audit_json(rec))
                    .bind(&rec.address)
                    .execute(&mut *self.write_one().await?)
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
                    .execute(&mut *self.write_one().await?)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_admin_store;
