//! Storage for Declarative Device Management (migration `0020_ddm.sql`): OS updates enforced
//! per group, each Mac's DDM channel state (its DeclarationsToken and what it fetched), and
//! what its status reports said (status items, errors, per-declaration states). Written once
//! for both backends (`impl_ddm_store!`); device lists travel in chunks of
//! [`super::groups::LIST_CHUNK`] through the query builder, which both dialects read alike.

use super::StoreResult;
use async_trait::async_trait;

/// An OS update enforced on a group (`com.apple.configuration.softwareupdate.enforcement.
/// specific`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OsUpdateRecord {
    pub id: i64,
    pub group_name: String,
    pub target_os_version: String,
    pub target_build_version: Option<String>,
    /// Local date-time on the Mac, `YYYY-MM-DDTHH:MM:SS` (Apple's `TargetLocalDateTime`).
    pub deadline: String,
    pub details_url: Option<String>,
    pub created_at: i64,
    pub created_by: String,
}

/// An OS update to insert (checked by the service).
#[derive(Debug, Clone)]
pub struct NewOsUpdate<'a> {
    pub group_name: &'a str,
    pub target_os_version: &'a str,
    pub target_build_version: Option<&'a str>,
    pub deadline: &'a str,
    pub details_url: Option<&'a str>,
    pub now: i64,
    pub by: &'a str,
}

/// What an insert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOsUpdate {
    Inserted(i64),
    /// No group by this name.
    NoGroup,
    /// The group has an OS update already (its ID).
    Taken(i64),
}

/// A Mac's DDM channel: the token of its declaration set when the set last changed, and the
/// token it last fetched with `declaration-items`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DdmDeviceRow {
    pub device_id: String,
    /// Empty when no set was computed yet (a Mac that only sent a status report).
    pub token: String,
    pub token_at: i64,
    pub served_token: Option<String>,
    pub served_at: Option<i64>,
    /// The `Errors` of its last status report, as JSON.
    pub errors: Option<String>,
    pub reported_at: Option<i64>,
}

/// One status item a Mac reported, its value as JSON.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusItemRow {
    pub device_id: String,
    pub item: String,
    pub value: String,
    pub updated_at: i64,
}

/// How a Mac took one declaration (`management.declarations`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeclarationStateRow {
    pub device_id: String,
    pub identifier: String,
    /// `activations`, `configurations`, `assets` or `management`.
    pub kind: String,
    pub server_token: String,
    /// `valid`, `invalid` or `unknown`.
    pub valid: String,
    pub active: bool,
    /// Apple's `reasons`, as JSON.
    pub reasons: Option<String>,
    pub updated_at: i64,
}

/// A status report to store: merged into what is stored unless `full` (Apple's `FullReport`,
/// the daily safety sync), which replaces it.
#[derive(Debug, Clone)]
pub struct StatusRecord {
    pub device_id: String,
    pub full: bool,
    /// (item, value as JSON).
    pub items: Vec<(String, String)>,
    /// `Errors`, as JSON.
    pub errors: String,
    pub declarations: Vec<DeclarationStateRow>,
    pub now: i64,
}

/// A declaration an admin uploaded for a group (migration 0021).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DdmDeclarationRecord {
    pub identifier: String,
    pub group_name: String,
    /// `activation`, `asset`, `configuration` or `management`.
    pub kind: String,
    pub declaration_type: String,
    /// The `Payload`, as JSON.
    pub payload: String,
    pub created_at: i64,
    pub created_by: String,
}

/// What storing an uploaded declaration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutDeclaration {
    /// Stored; the declaration it replaced, if any.
    Stored(Option<DdmDeclarationRecord>),
    /// No group by this name (nothing written).
    NoGroup,
}

#[async_trait]
pub trait DdmStore: Send + Sync {
    /// Stores an uploaded declaration, replacing one with its identifier.
    async fn put_ddm_declaration(&self, rec: &DdmDeclarationRecord) -> StoreResult<PutDeclaration>;
    /// Every uploaded declaration, by identifier.
    async fn ddm_declarations(&self) -> StoreResult<Vec<DdmDeclarationRecord>>;
    /// Deletes one; what it was, or `None`.
    async fn delete_ddm_declaration(
        &self,
        identifier: &str,
    ) -> StoreResult<Option<DdmDeclarationRecord>>;
    async fn insert_os_update(&self, new: &NewOsUpdate<'_>) -> StoreResult<InsertOsUpdate>;
    /// Every OS update, by ID.
    async fn os_updates(&self) -> StoreResult<Vec<OsUpdateRecord>>;
    /// Deletes one; what it was, or `None`.
    async fn delete_os_update(&self, id: i64) -> StoreResult<Option<OsUpdateRecord>>;
    /// The DDM rows of these devices (those that have one).
    async fn ddm_devices(&self, device_ids: &[String]) -> StoreResult<Vec<DdmDeviceRow>>;
    /// Stores each device's new token (and `now` as its time) where it differs.
    async fn set_ddm_tokens(&self, tokens: &[(String, String)], now: i64) -> StoreResult<()>;
    /// The device fetched `declaration-items` with this token.
    async fn ddm_served(&self, device_id: &str, token: &str, now: i64) -> StoreResult<()>;
    /// Applies a status report in one transaction.
    async fn store_ddm_status(&self, report: &StatusRecord) -> StoreResult<()>;
    /// The status items of these devices.
    async fn ddm_status_items(&self, device_ids: &[String]) -> StoreResult<Vec<StatusItemRow>>;
    /// The declaration states of these devices, by device and identifier.
    async fn ddm_declaration_states(
        &self,
        device_ids: &[String],
    ) -> StoreResult<Vec<DeclarationStateRow>>;
}

macro_rules! impl_ddm_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ddm::DdmStore for $store {
            async fn put_ddm_declaration(
                &self,
                r: &$crate::store::ddm::DdmDeclarationRecord,
            ) -> $crate::store::StoreResult<$crate::store::ddm::PutDeclaration> {
                let mut tx = self.write().await?;
                let known: Option<String> =
                    sqlx::query_scalar("SELECT name FROM device_groups WHERE name = $1")
                        .bind(&r.group_name)
                        .fetch_optional(&mut *tx)
                        .await?;
                if known.is_none() {
                    return Ok($crate::store::ddm::PutDeclaration::NoGroup);
                }
                let old: Option<$crate::store::ddm::DdmDeclarationRecord> = sqlx::query_as(
                    "DELETE FROM ddm_declarations WHERE identifier = $1 RETURNING identifier, \
                     group_name, kind, declaration_type, payload, created_at, created_by",
                )
                .bind(&r.identifier)
                .fetch_optional(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO ddm_declarations (identifier, group_name, kind, \
                     declaration_type, payload, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&r.identifier)
                .bind(&r.group_name)
                .bind(&r.kind)
                .bind(&r.declaration_type)
                .bind(&r.payload)
                .bind(r.created_at)
                .bind(&r.created_by)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::store::ddm::PutDeclaration::Stored(old))
            }

            async fn ddm_declarations(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::ddm::DdmDeclarationRecord>> {
                Ok(sqlx::query_as(
                    "SELECT identifier, group_name, kind, declaration_type, payload, \
                     created_at, created_by FROM ddm_declarations ORDER BY identifier",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_ddm_declaration(
                &self,
                identifier: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::ddm::DdmDeclarationRecord>>
            {
                Ok(sqlx::query_as(
                    "DELETE FROM ddm_declarations WHERE identifier = $1 RETURNING identifier, \
                     group_name, kind, declaration_type, payload, created_at, created_by",
                )
                .bind(identifier)
                .fetch_optional(&mut *self.write_one().await?)
                .await?)
            }

            async fn insert_os_update(
                &self,
                n: &$crate::store::ddm::NewOsUpdate<'_>,
            ) -> $crate::store::StoreResult<$crate::store::ddm::InsertOsUpdate> {
                use $crate::store::ddm::InsertOsUpdate;
                let group_name = n.group_name;
                let mut tx = self.write().await?;
                let known: Option<String> =
                    sqlx::query_scalar("SELECT name FROM device_groups WHERE name = $1")
                        .bind(group_name)
                        .fetch_optional(&mut *tx)
                        .await?;
                if known.is_none() {
                    return Ok(InsertOsUpdate::NoGroup);
                }
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO os_updates (group_name, target_os_version, \
                     target_build_version, deadline, details_url, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (group_name) DO NOTHING RETURNING id",
                )
                .bind(group_name)
                .bind(n.target_os_version)
                .bind(n.target_build_version)
                .bind(n.deadline)
                .bind(n.details_url)
                .bind(n.now)
                .bind(n.by)
                .fetch_optional(&mut *tx)
                .await?;
                match id {
                    Some(id) => {
                        tx.commit().await?;
                        Ok(InsertOsUpdate::Inserted(id))
                    }
                    None => {
                        let holder: i64 = sqlx::query_scalar(
                            "SELECT id FROM os_updates WHERE group_name = $1",
                        )
                        .bind(group_name)
                        .fetch_one(&mut *tx)
                        .await?;
                        Ok(InsertOsUpdate::Taken(holder))
                    }
                }
            }

            async fn os_updates(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::ddm::OsUpdateRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, group_name, target_os_version, target_build_version, deadline, \
                     details_url, created_at, created_by FROM os_updates ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_os_update(
                &self,
                id: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::ddm::OsUpdateRecord>> {
                Ok(sqlx::query_as(
                    "DELETE FROM os_updates WHERE id = $1 RETURNING id, group_name, \
                     target_os_version, target_build_version, deadline, details_url, \
                     created_at, created_by",
                )
                .bind(id)
                .fetch_optional(&mut *self.write_one().await?)
                .await?)
            }

            async fn ddm_devices(
                &self,
                device_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::ddm::DdmDeviceRow>> {
                let mut out = Vec::new();
                for chunk in device_ids.chunks($crate::store::groups::LIST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT device_id, token, token_at, served_token, served_at, errors, \
                         reported_at FROM ddm_devices WHERE device_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    qb.push(")");
                    out.extend(qb.build_query_as().fetch_all(&mut *self.write_one().await?).await?);
                }
                Ok(out)
            }

            async fn set_ddm_tokens(
                &self,
                tokens: &[(String, String)],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                for (device_id, token) in tokens {
                    sqlx::query(
                        "INSERT INTO ddm_devices (device_id, token, token_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (device_id) DO UPDATE \
                         SET token = excluded.token, token_at = excluded.token_at \
                         WHERE ddm_devices.token <> excluded.token",
                    )
                    .bind(device_id)
                    .bind(token)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn ddm_served(
                &self,
                device_id: &str,
                token: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE ddm_devices SET served_token = $2, served_at = $3 \
                     WHERE device_id = $1",
                )
                .bind(device_id)
                .bind(token)
                .bind(now)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(())
            }

            async fn store_ddm_status(
                &self,
                r: &$crate::store::ddm::StatusRecord,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                // A row for the errors; its empty token never matches a computed one.
                sqlx::query(
                    "INSERT INTO ddm_devices (device_id, token, token_at, errors, reported_at) \
                     VALUES ($1, '', $3, $2, $3) ON CONFLICT (device_id) DO UPDATE \
                     SET errors = excluded.errors, reported_at = excluded.reported_at",
                )
                .bind(&r.device_id)
                .bind(&r.errors)
                .bind(r.now)
                .execute(&mut *tx)
                .await?;
                if r.full {
                    for table in ["ddm_status_items", "ddm_declaration_states"] {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DELETE FROM {table} WHERE device_id = $1"
                        )))
                        .bind(&r.device_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                for (item, value) in &r.items {
                    sqlx::query(
                        "INSERT INTO ddm_status_items (device_id, item, value, updated_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (device_id, item) DO UPDATE \
                         SET value = excluded.value, updated_at = excluded.updated_at",
                    )
                    .bind(&r.device_id)
                    .bind(item)
                    .bind(value)
                    .bind(r.now)
                    .execute(&mut *tx)
                    .await?;
                }
                for d in &r.declarations {
                    sqlx::query(
                        "INSERT INTO ddm_declaration_states (device_id, identifier, kind, \
                         server_token, valid, active, reasons, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (device_id, identifier) DO UPDATE \
                         SET kind = excluded.kind, server_token = excluded.server_token, \
                         valid = excluded.valid, active = excluded.active, \
                         reasons = excluded.reasons, updated_at = excluded.updated_at",
                    )
                    .bind(&r.device_id)
                    .bind(&d.identifier)
                    .bind(&d.kind)
                    .bind(&d.server_token)
                    .bind(&d.valid)
                    .bind(d.active)
                    .bind(&d.reasons)
                    .bind(r.now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn ddm_status_items(
                &self,
                device_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::ddm::StatusItemRow>> {
                let mut out = Vec::new();
                for chunk in device_ids.chunks($crate::store::groups::LIST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT device_id, item, value, updated_at FROM ddm_status_items \
                         WHERE device_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    qb.push(") ORDER BY device_id, item");
                    out.extend(qb.build_query_as().fetch_all(&self.pool).await?);
                }
                Ok(out)
            }

            async fn ddm_declaration_states(
                &self,
                device_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::ddm::DeclarationStateRow>> {
                let mut out = Vec::new();
                for chunk in device_ids.chunks($crate::store::groups::LIST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT device_id, identifier, kind, server_token, valid, active, \
                         reasons, updated_at FROM ddm_declaration_states WHERE device_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    qb.push(") ORDER BY device_id, identifier");
                    out.extend(qb.build_query_as().fetch_all(&self.pool).await?);
                }
                Ok(out)
            }
        }
    };
}
pub(crate) use impl_ddm_store;
