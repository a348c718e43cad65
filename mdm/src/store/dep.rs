//! Storage for DEP (Automated Device Enrollment): links, their cursors, the device records the
//! sync worker keeps, assignment outcomes and the profiles defined at Apple.
//!
//! Written once for both backends (`impl_dep_store!`); the only dialect-specific part is the
//! sync leader lock (a PostgreSQL advisory lock; SQLite runs in one process).

use super::StoreResult;
use async_trait::async_trait;

/// A DEP link as stored (key and token sealed).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DepLinkRecord {
    pub name: String,
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
    pub token_sealed: Option<Vec<u8>>,
    pub token_expiry: Option<i64>,
    pub server_uuid: Option<String>,
    pub server_name: Option<String>,
    pub org_name: Option<String>,
    pub admin_id: Option<String>,
    pub account_json: Option<String>,
    pub default_profile_uuid: Option<String>,
    pub cursor: Option<String>,
    pub last_sync_at: Option<i64>,
    pub last_sync_json: Option<String>,
    pub last_ok_at: Option<i64>,
    pub last_error_code: Option<String>,
    pub last_error_message: Option<String>,
    pub last_error_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl DepLinkRecord {
    /// A new link: its certificate and sealed key, no token yet.
    pub fn new(name: &str, cert_pem: String, key_sealed: Vec<u8>, now: i64) -> Self {
        DepLinkRecord {
            name: name.to_owned(),
            cert_pem,
            key_sealed,
            token_sealed: None,
            token_expiry: None,
            server_uuid: None,
            server_name: None,
            org_name: None,
            admin_id: None,
            account_json: None,
            default_profile_uuid: None,
            cursor: None,
            last_sync_at: None,
            last_sync_json: None,
            last_ok_at: None,
            last_error_code: None,
            last_error_message: None,
            last_error_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A new token for a link, with what `/account` said about it.
#[derive(Debug, Clone)]
pub struct DepTokenUpdate {
    pub token_sealed: Vec<u8>,
    pub token_expiry: i64,
    pub server_uuid: Option<String>,
    pub server_name: Option<String>,
    pub org_name: Option<String>,
    pub admin_id: Option<String>,
    pub account_json: String,
    pub now: i64,
}

/// One device record from a fetch or sync page, ready to upsert.
#[derive(Debug, Clone, Default)]
pub struct DepDeviceUpsert {
    pub serial_number: String,
    pub link: String,
    pub model: Option<String>,
    pub description: Option<String>,
    pub color: Option<String>,
    pub asset_tag: Option<String>,
    pub os: Option<String>,
    pub device_family: Option<String>,
    pub profile_status: Option<String>,
    pub profile_uuid: Option<String>,
    pub profile_assign_time: Option<String>,
    pub profile_push_time: Option<String>,
    pub device_assigned_date: Option<String>,
    pub device_assigned_by: Option<String>,
    pub op_type: Option<String>,
    pub op_date: Option<String>,
    pub op_date_ms: Option<i64>,
    pub mdm_migration_deadline: Option<String>,
    pub deleted: bool,
    /// Whether the default profile should be assigned if this record is new (or re-added).
    pub auto_assign: bool,
    pub now: i64,
}

/// A device record with Russet's view of it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DepDeviceRecord {
    pub serial_number: String,
    pub link: String,
    pub model: Option<String>,
    pub description: Option<String>,
    pub color: Option<String>,
    pub asset_tag: Option<String>,
    pub os: Option<String>,
    pub device_family: Option<String>,
    pub profile_status: Option<String>,
    pub profile_uuid: Option<String>,
    pub profile_assign_time: Option<String>,
    pub profile_push_time: Option<String>,
    pub device_assigned_date: Option<String>,
    pub device_assigned_by: Option<String>,
    pub op_type: Option<String>,
    pub op_date: Option<String>,
    pub mdm_migration_deadline: Option<String>,
    pub deleted: bool,
    pub auto_assign_pending: bool,
    pub assign_status: Option<String>,
    pub assign_profile_uuid: Option<String>,
    pub assign_at: Option<i64>,
    pub assign_retry_at: Option<i64>,
    pub first_seen_at: i64,
    pub updated_at: i64,
    /// A device with this serial number is enrolled in Russet (an enabled device channel).
    pub enrolled: bool,
}

impl DepDeviceRecord {
    pub fn facts(&self) -> DepFacts {
        DepFacts {
            deleted: self.deleted,
            enrolled: self.enrolled,
            has_profile: self.profile_uuid.is_some(),
        }
    }
}

/// The facts Russet's DEP status is decided from (`crate::dep::DepStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DepFacts {
    /// Apple says the device left the organisation.
    pub deleted: bool,
    /// A device with this serial is enrolled in Russet.
    pub enrolled: bool,
    /// Apple lists a profile for it.
    pub has_profile: bool,
}

/// Which records to list, by those facts; `None` = either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepFactsSelector {
    pub deleted: Option<bool>,
    pub enrolled: Option<bool>,
    pub has_profile: Option<bool>,
}

impl DepFactsSelector {
    pub fn matches(&self, f: DepFacts) -> bool {
        self.deleted.is_none_or(|v| v == f.deleted)
            && self.enrolled.is_none_or(|v| v == f.enrolled)
            && self.has_profile.is_none_or(|v| v == f.has_profile)
    }
}

#[derive(Debug, Clone, Default)]
pub struct DepDeviceFilter {
    pub link: Option<String>,
    /// Records with these facts (a Russet status's selector).
    pub facts: DepFactsSelector,
    pub serial: Option<String>,
    /// Keyset paging: serials after this one.
    pub after: Option<String>,
    pub limit: u32,
}

/// What Apple said about assigning one serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepAssignOutcome {
    pub serial_number: String,
    pub profile_uuid: String,
    /// `SUCCESS`, `NOT_ACCESSIBLE`, `FAILED`, `THROTTLED`, or another code verbatim.
    pub status: String,
    /// When an automatic retry may happen (FAILED, THROTTLED).
    pub retry_at: Option<i64>,
    /// Whether the automatic assignment is settled (no retry wanted).
    pub settled: bool,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DepProfileRecord {
    pub profile_uuid: String,
    pub link: String,
    pub profile_name: String,
    pub profile_json: String,
    pub created_at: i64,
    /// Russet's setup for the profile's Macs (`dep::ProfileSetup` as sealed JSON).
    pub setup_sealed: Option<Vec<u8>>,
}

/// Held while this process is the sync leader of a link; released when dropped.
pub struct DepLeaderGuard {
    _inner: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for DepLeaderGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DepLeaderGuard")
    }
}

#[async_trait]
pub trait DepStore: Send + Sync {
    /// A new link. False (nothing written) if the name is taken.
    async fn insert_dep_link(&self, rec: &DepLinkRecord) -> StoreResult<bool>;
    /// Replaces the key pair of a link (re-created with force); clears token and cursor.
    async fn replace_dep_link_key(
        &self,
        name: &str,
        cert_pem: &str,
        key_sealed: &[u8],
        now: i64,
    ) -> StoreResult<bool>;
    async fn dep_link(&self, name: &str) -> StoreResult<Option<DepLinkRecord>>;
    async fn dep_links(&self) -> StoreResult<Vec<DepLinkRecord>>;
    /// Stores a token (and the account it belongs to). False if the link is unknown.
    async fn set_dep_link_token(&self, name: &str, update: &DepTokenUpdate) -> StoreResult<bool>;
    async fn set_dep_default_profile(
        &self,
        name: &str,
        profile_uuid: Option<&str>,
        now: i64,
    ) -> StoreResult<bool>;
    /// The outcome of the last DEP API call of a link: `None` = it worked.
    async fn record_dep_call(
        &self,
        name: &str,
        error: Option<(&str, &str)>,
        now: i64,
    ) -> StoreResult<()>;
    async fn record_dep_sync(&self, name: &str, summary_json: &str, now: i64) -> StoreResult<()>;

    async fn dep_cursor(&self, name: &str) -> StoreResult<Option<String>>;
    async fn save_dep_cursor(&self, name: &str, cursor: &str, now: i64) -> StoreResult<()>;

    /// Upserts by serial, in one transaction. A record only replaces a stored one with a newer
    /// or equal `op_date`; a `deleted` from another link than the record's is ignored.
    async fn upsert_dep_devices(&self, rows: &[DepDeviceUpsert]) -> StoreResult<()>;
    /// Which of these serials have a record (at most a few thousand at a time).
    async fn dep_known_serials(&self, serials: &[String]) -> StoreResult<Vec<String>>;
    async fn dep_devices(&self, filter: &DepDeviceFilter) -> StoreResult<Vec<DepDeviceRecord>>;
    async fn dep_device(&self, serial: &str) -> StoreResult<Option<DepDeviceRecord>>;
    /// How many records of a link (or all links) have each combination of facts.
    async fn dep_device_counts(&self, link: Option<&str>) -> StoreResult<Vec<(DepFacts, i64)>>;
    /// Serials waiting for the default profile whose retry time (if any) has come.
    async fn dep_auto_assign_due(
        &self,
        link: &str,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<String>>;
    async fn record_dep_assignments(&self, outcomes: &[DepAssignOutcome]) -> StoreResult<()>;
    /// Apple removed the profile assignment of these serials.
    async fn dep_profiles_removed(&self, serials: &[String], now: i64) -> StoreResult<()>;
    /// These serials were disowned (left the organisation for good).
    async fn dep_mark_disowned(&self, serials: &[String], now: i64) -> StoreResult<()>;

    async fn insert_dep_profile(&self, rec: &DepProfileRecord) -> StoreResult<()>;
    async fn dep_profile(&self, profile_uuid: &str) -> StoreResult<Option<DepProfileRecord>>;
    /// Newest first.
    async fn dep_profiles(&self, link: Option<&str>) -> StoreResult<Vec<DepProfileRecord>>;

    /// Become the sync leader of a link across every server sharing the database, or `None`
    /// when another holds it. PostgreSQL: `pg_try_advisory_lock` on a dedicated connection.
    async fn dep_sync_leader(&self, link: &str) -> StoreResult<Option<DepLeaderGuard>>;
}

const LINK_COLUMNS: &str = "name, cert_pem, key_sealed, token_sealed, token_expiry, server_uuid, \
     server_name, org_name, admin_id, account_json, default_profile_uuid, cursor, last_sync_at, \
     last_sync_json, last_ok_at, last_error_code, last_error_message, last_error_at, created_at, \
     updated_at";

const DEVICE_VIEW: &str = "SELECT dd.serial_number, dd.link, dd.model, dd.description, dd.color, \
     dd.asset_tag, dd.os, dd.device_family, dd.profile_status, dd.profile_uuid, \
     dd.profile_assign_time, dd.profile_push_time, dd.device_assigned_date, \
     dd.device_assigned_by, dd.op_type, dd.op_date, dd.mdm_migration_deadline, dd.deleted, \
     dd.auto_assign_pending, dd.assign_status, dd.assign_profile_uuid, dd.assign_at, \
     dd.assign_retry_at, dd.first_seen_at, dd.updated_at, \
     EXISTS (SELECT 1 FROM devices d JOIN enrollments e ON e.id = d.id \
             WHERE d.serial_number = dd.serial_number AND e.enabled) AS enrolled \
     FROM dep_devices dd";

const UPSERT_HEAD: &str = "INSERT INTO dep_devices (serial_number, link, model, description, \
     color, asset_tag, os, device_family, profile_status, profile_uuid, profile_assign_time, \
     profile_push_time, device_assigned_date, device_assigned_by, op_type, op_date, op_date_ms, \
     mdm_migration_deadline, deleted, auto_assign_pending, first_seen_at, updated_at) ";

// A `deleted` keeps the last known fields (Apple sends little with it). `auto_assign_pending`
// is only (re)armed for a record that is new to Russet or comes back (`added`, or any record
// for a deleted one).
const UPSERT_TAIL: &str = " ON CONFLICT (serial_number) DO UPDATE SET \
     link = excluded.link, \
     model = CASE WHEN excluded.deleted THEN dep_devices.model ELSE excluded.model END, \
     description = CASE WHEN excluded.deleted THEN dep_devices.description ELSE excluded.description END, \
     color = CASE WHEN excluded.deleted THEN dep_devices.color ELSE excluded.color END, \
     asset_tag = CASE WHEN excluded.deleted THEN dep_devices.asset_tag ELSE excluded.asset_tag END, \
     os = CASE WHEN excluded.deleted THEN dep_devices.os ELSE excluded.os END, \
     device_family = CASE WHEN excluded.deleted THEN dep_devices.device_family ELSE excluded.device_family END, \
     profile_status = CASE WHEN excluded.deleted THEN dep_devices.profile_status ELSE excluded.profile_status END, \
     profile_uuid = CASE WHEN excluded.deleted THEN dep_devices.profile_uuid ELSE excluded.profile_uuid END, \
     profile_assign_time = CASE WHEN excluded.deleted THEN dep_devices.profile_assign_time ELSE excluded.profile_assign_time END, \
     profile_push_time = CASE WHEN excluded.deleted THEN dep_devices.profile_push_time ELSE excluded.profile_push_time END, \
     device_assigned_date = COALESCE(excluded.device_assigned_date, dep_devices.device_assigned_date), \
     device_assigned_by = COALESCE(excluded.device_assigned_by, dep_devices.device_assigned_by), \
     op_type = excluded.op_type, \
     op_date = COALESCE(excluded.op_date, dep_devices.op_date), \
     op_date_ms = COALESCE(excluded.op_date_ms, dep_devices.op_date_ms), \
     mdm_migration_deadline = CASE WHEN excluded.deleted THEN dep_devices.mdm_migration_deadline ELSE excluded.mdm_migration_deadline END, \
     deleted = excluded.deleted, \
     auto_assign_pending = CASE WHEN excluded.deleted THEN FALSE \
         WHEN dep_devices.deleted OR excluded.op_type = 'added' THEN excluded.auto_assign_pending \
         ELSE dep_devices.auto_assign_pending END, \
     assign_retry_at = CASE WHEN dep_devices.deleted AND NOT excluded.deleted THEN NULL \
         ELSE dep_devices.assign_retry_at END, \
     updated_at = excluded.updated_at \
     WHERE (excluded.op_date_ms IS NULL OR dep_devices.op_date_ms IS NULL \
            OR excluded.op_date_ms >= dep_devices.op_date_ms) \
       AND (excluded.link = dep_devices.link OR NOT excluded.deleted)";

/// Rows per INSERT statement: 22 parameters each stays under both databases' limits.
const UPSERT_CHUNK: usize = 500;

#[doc(hidden)]
pub fn link_columns() -> &'static str {
    LINK_COLUMNS
}
#[doc(hidden)]
pub fn device_view() -> &'static str {
    DEVICE_VIEW
}
#[doc(hidden)]
pub fn upsert_head() -> &'static str {
    UPSERT_HEAD
}
#[doc(hidden)]
pub fn upsert_tail() -> &'static str {
    UPSERT_TAIL
}
#[doc(hidden)]
pub fn upsert_chunk() -> usize {
    UPSERT_CHUNK
}

/// The advisory-lock key of a link: fixed per name, the same on every node.
pub fn leader_key(link: &str) -> i64 {
    let digest = openssl::sha::sha256(format!("russet-dep-sync:{link}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(b)
}

#[doc(hidden)]
pub async fn sqlite_leader(
    _pool: &sqlx::SqlitePool,
    _link: &str,
) -> StoreResult<Option<DepLeaderGuard>> {
    // SQLite mode is one process; the DEP module serialises passes within it.
    Ok(Some(DepLeaderGuard { _inner: None }))
}

struct PgLeader {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    key: i64,
}

impl Drop for PgLeader {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let key = self.key;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if sqlx::query("SELECT pg_advisory_unlock($1)")
                        .bind(key)
                        .execute(&mut *conn)
                        .await
                        .is_err()
                    {
                        // Closing the session releases its advisory locks.
                        drop(conn.detach());
                    }
                });
            }
            // No runtime: closing the connection releases the lock.
            Err(_) => drop(conn.detach()),
        }
    }
}

#[doc(hidden)]
pub async fn postgres_leader(
    pool: &sqlx::PgPool,
    link: &str,
) -> StoreResult<Option<DepLeaderGuard>> {
    let key = leader_key(link);
    let mut conn = pool.acquire().await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
    if !got {
        return Ok(None);
    }
    Ok(Some(DepLeaderGuard {
        _inner: Some(Box::new(PgLeader {
            conn: Some(conn),
            key,
        })),
    }))
}

/// Implements [`DepStore`] for a backend whose struct has a `pool` field.
macro_rules! impl_dep_store {
    ($store:ty, $db:ty, $leader:ident) => {
        impl $store {
            /// Run one `UPDATE … WHERE serial_number = $1` (with `$2` = now) per serial, in one
            /// transaction.
            async fn dep_update_serials(
                &self,
                sql: &'static str,
                serials: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                for s in serials {
                    sqlx::query(sql)
                        .bind(s)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::dep::DepStore for $store {
            async fn insert_dep_link(
                &self,
                rec: &$crate::store::dep::DepLinkRecord,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO dep_links (name, cert_pem, key_sealed, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING",
                )
                .bind(&rec.name)
                .bind(&rec.cert_pem)
                .bind(&rec.key_sealed)
                .bind(rec.created_at)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn replace_dep_link_key(
                &self,
                name: &str,
                cert_pem: &str,
                key_sealed: &[u8],
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE dep_links SET cert_pem = $2, key_sealed = $3, token_sealed = NULL, \
                     token_expiry = NULL, cursor = NULL, updated_at = $4 WHERE name = $1",
                )
                .bind(name)
                .bind(cert_pem)
                .bind(key_sealed)
                .bind(now)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn dep_link(
                &self,
                name: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::dep::DepLinkRecord>> {
                let sql = format!(
                    "SELECT {} FROM dep_links WHERE name = $1",
                    $crate::store::dep::link_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn dep_links(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::dep::DepLinkRecord>> {
                let sql = format!(
                    "SELECT {} FROM dep_links ORDER BY name",
                    $crate::store::dep::link_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn set_dep_link_token(
                &self,
                name: &str,
                u: &$crate::store::dep::DepTokenUpdate,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE dep_links SET token_sealed = $2, token_expiry = $3, server_uuid = $4, \
                     server_name = $5, org_name = $6, admin_id = $7, account_json = $8, \
                     last_ok_at = $9, last_error_code = NULL, last_error_message = NULL, \
                     last_error_at = NULL, updated_at = $9 WHERE name = $1",
                )
                .bind(name)
                .bind(&u.token_sealed)
                .bind(u.token_expiry)
                .bind(&u.server_uuid)
                .bind(&u.server_name)
                .bind(&u.org_name)
                .bind(&u.admin_id)
                .bind(&u.account_json)
                .bind(u.now)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_dep_default_profile(
                &self,
                name: &str,
                profile_uuid: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE dep_links SET default_profile_uuid = $2, updated_at = $3 WHERE name = $1",
                )
                .bind(name)
                .bind(profile_uuid)
                .bind(now)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_dep_call(
                &self,
                name: &str,
                error: Option<(&str, &str)>,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                match error {
                    None => sqlx::query(
                        "UPDATE dep_links SET last_ok_at = $2, last_error_code = NULL, \
                         last_error_message = NULL, last_error_at = NULL WHERE name = $1",
                    )
                    .bind(name)
                    .bind(now)
                    .execute(&mut *self.write_one().await?)
                    .await?,
                    Some((code, message)) => sqlx::query(
                        "UPDATE dep_links SET last_error_code = $2, last_error_message = $3, \
                         last_error_at = $4 WHERE name = $1",
                    )
                    .bind(name)
                    .bind(code)
                    .bind(message)
                    .bind(now)
                    .execute(&mut *self.write_one().await?)
                    .await?,
                };
                Ok(())
            }

            async fn record_dep_sync(
                &self,
                name: &str,
                summary_json: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE dep_links SET last_sync_at = $2, last_sync_json = $3 WHERE name = $1",
                )
                .bind(name)
                .bind(now)
                .bind(summary_json)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(())
            }

            async fn dep_cursor(&self, name: &str) -> $crate::store::StoreResult<Option<String>> {
                let c: Option<Option<String>> =
                    sqlx::query_scalar("SELECT cursor FROM dep_links WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(c.flatten())
            }

            async fn save_dep_cursor(
                &self,
                name: &str,
                cursor: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE dep_links SET cursor = $2, updated_at = $3 WHERE name = $1")
                    .bind(name)
                    .bind(cursor)
                    .bind(now)
                    .execute(&mut *self.write_one().await?)
                    .await?;
                Ok(())
            }

            async fn upsert_dep_devices(
                &self,
                rows: &[$crate::store::dep::DepDeviceUpsert],
            ) -> $crate::store::StoreResult<()> {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                for chunk in rows.chunks($crate::store::dep::upsert_chunk()) {
                    let mut qb =
                        sqlx::QueryBuilder::<$db>::new($crate::store::dep::upsert_head());
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.serial_number.clone())
                            .push_bind(r.link.clone())
                            .push_bind(r.model.clone())
                            .push_bind(r.description.clone())
                            .push_bind(r.color.clone())
                            .push_bind(r.asset_tag.clone())
                            .push_bind(r.os.clone())
                            .push_bind(r.device_family.clone())
                            .push_bind(r.profile_status.clone())
                            .push_bind(r.profile_uuid.clone())
                            .push_bind(r.profile_assign_time.clone())
                            .push_bind(r.profile_push_time.clone())
                            .push_bind(r.device_assigned_date.clone())
                            .push_bind(r.device_assigned_by.clone())
                            .push_bind(r.op_type.clone())
                            .push_bind(r.op_date.clone())
                            .push_bind(r.op_date_ms)
                            .push_bind(r.mdm_migration_deadline.clone())
                            .push_bind(r.deleted)
                            .push_bind(r.auto_assign && !r.deleted)
                            .push_bind(r.now)
                            .push_bind(r.now);
                    });
                    qb.push($crate::store::dep::upsert_tail());
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn dep_known_serials(
                &self,
                serials: &[String],
            ) -> $crate::store::StoreResult<Vec<String>> {
                let mut known = Vec::new();
                for chunk in serials.chunks($crate::store::dep::upsert_chunk()) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT serial_number FROM dep_devices WHERE serial_number IN (",
                    );
                    let mut list = qb.separated(", ");
                    for s in chunk {
                        list.push_bind(s.clone());
                    }
                    qb.push(")");
                    let rows: Vec<String> = qb
                        .build_query_scalar()
                        .fetch_all(&self.pool)
                        .await?;
                    known.extend(rows);
                }
                Ok(known)
            }

            async fn dep_devices(
                &self,
                f: &$crate::store::dep::DepDeviceFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::dep::DepDeviceRecord>> {
                let sql = format!(
                    "SELECT * FROM ({}) t WHERE ($1 IS NULL OR t.link = $1) \
                     AND ($2 IS NULL OR t.deleted = $2) \
                     AND ($3 IS NULL OR t.enrolled = $3) \
                     AND ($4 IS NULL OR (t.profile_uuid IS NOT NULL) = $4) \
                     AND ($5 IS NULL OR t.serial_number > $5) \
                     AND ($6 IS NULL OR t.serial_number = $6) \
                     ORDER BY t.serial_number LIMIT $7",
                    $crate::store::dep::device_view()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&f.link)
                    .bind(f.facts.deleted)
                    .bind(f.facts.enrolled)
                    .bind(f.facts.has_profile)
                    .bind(&f.after)
                    .bind(&f.serial)
                    .bind(i64::from(f.limit.clamp(1, 10_000)))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn dep_device(
                &self,
                serial: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::dep::DepDeviceRecord>> {
                let sql = format!(
                    "{} WHERE dd.serial_number = $1",
                    $crate::store::dep::device_view()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(serial)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn dep_device_counts(
                &self,
                link: Option<&str>,
            ) -> $crate::store::StoreResult<Vec<($crate::store::dep::DepFacts, i64)>> {
                let sql = format!(
                    "SELECT t.deleted, t.enrolled, t.profile_uuid IS NOT NULL AS has_profile, \
                     COUNT(*) FROM ({}) t WHERE ($1 IS NULL OR t.link = $1) \
                     GROUP BY t.deleted, t.enrolled, has_profile",
                    $crate::store::dep::device_view()
                );
                let rows: Vec<(bool, bool, bool, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(link)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(deleted, enrolled, has_profile, n)| {
                        (
                            $crate::store::dep::DepFacts {
                                deleted,
                                enrolled,
                                has_profile,
                            },
                            n,
                        )
                    })
                    .collect())
            }

            async fn dep_auto_assign_due(
                &self,
                link: &str,
                now: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT serial_number FROM dep_devices WHERE link = $1 \
                     AND auto_assign_pending AND NOT deleted \
                     AND (assign_retry_at IS NULL OR assign_retry_at <= $2) \
                     ORDER BY serial_number LIMIT $3",
                )
                .bind(link)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn record_dep_assignments(
                &self,
                outcomes: &[$crate::store::dep::DepAssignOutcome],
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                for o in outcomes {
                    let success = o.status == "SUCCESS";
                    sqlx::query(
                        "UPDATE dep_devices SET assign_status = $2, assign_profile_uuid = $3, \
                         assign_at = $4, assign_retry_at = $5, \
                         auto_assign_pending = CASE WHEN $6 THEN FALSE ELSE auto_assign_pending END, \
                         profile_uuid = CASE WHEN $7 THEN $3 ELSE profile_uuid END, \
                         profile_status = CASE WHEN $7 THEN 'assigned' ELSE profile_status END, \
                         updated_at = $4 WHERE serial_number = $1",
                    )
                    .bind(&o.serial_number)
                    .bind(&o.status)
                    .bind(&o.profile_uuid)
                    .bind(o.at)
                    .bind(o.retry_at)
                    .bind(o.settled)
                    .bind(success)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn dep_profiles_removed(
                &self,
                serials: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                self.dep_update_serials(
                    "UPDATE dep_devices SET profile_uuid = NULL, profile_status = 'removed', \
                     auto_assign_pending = FALSE, updated_at = $2 WHERE serial_number = $1",
                    serials,
                    now,
                )
                .await
            }

            async fn dep_mark_disowned(
                &self,
                serials: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                self.dep_update_serials(
                    "UPDATE dep_devices SET deleted = TRUE, op_type = 'deleted', \
                     auto_assign_pending = FALSE, updated_at = $2 WHERE serial_number = $1",
                    serials,
                    now,
                )
                .await
            }

            async fn insert_dep_profile(
                &self,
                rec: &$crate::store::dep::DepProfileRecord,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO dep_profiles (profile_uuid, link, profile_name, profile_json, \
                     created_at, setup_sealed) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&rec.profile_uuid)
                .bind(&rec.link)
                .bind(&rec.profile_name)
                .bind(&rec.profile_json)
                .bind(rec.created_at)
                .bind(&rec.setup_sealed)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(())
            }

            async fn dep_profile(
                &self,
                profile_uuid: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::dep::DepProfileRecord>> {
                Ok(sqlx::query_as(
                    "SELECT profile_uuid, link, profile_name, profile_json, created_at, setup_sealed \
                     FROM dep_profiles WHERE profile_uuid = $1",
                )
                .bind(profile_uuid)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn dep_profiles(
                &self,
                link: Option<&str>,
            ) -> $crate::store::StoreResult<Vec<$crate::store::dep::DepProfileRecord>> {
                Ok(sqlx::query_as(
                    "SELECT profile_uuid, link, profile_name, profile_json, created_at, setup_sealed \
                     FROM dep_profiles WHERE ($1 IS NULL OR link = $1) \
                     ORDER BY created_at DESC, profile_uuid",
                )
                .bind(link)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn dep_sync_leader(
                &self,
                link: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::dep::DepLeaderGuard>> {
                $crate::store::dep::$leader(&self.pool, link).await
            }
        }
    };
}
pub(crate) use impl_dep_store;
