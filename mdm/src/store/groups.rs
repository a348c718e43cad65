//! Storage for groups (device collections) and the device facts filters are evaluated on.
//!
//! A group is static (members stored by UDID or serial number) or smart (a filter, evaluated
//! by the service over [`DeviceFactsRow`]s). Members by serial are resolved when read, so one
//! survives re-enrollment under a new UDID, and a serial known only from DEP becomes a device
//! the moment a Mac with it authenticates. Written once for both backends
//! (`impl_group_store!`); ID lists are bound as `IN (…)` lists of at most [`LIST_CHUNK`].

use super::StoreResult;
use super::app_query::AppQuery;
use async_trait::async_trait;

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GroupRecord {
    pub name: String,
    pub description: Option<String>,
    /// `None`: a static group.
    pub filter: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a static member names its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberKind {
    Udid,
    Serial,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::Udid => "udid",
            MemberKind::Serial => "serial",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "udid" => Some(MemberKind::Udid),
            "serial" => Some(MemberKind::Serial),
            _ => None,
        }
    }
}

/// A static member: a UDID or a serial number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberKey {
    pub kind: MemberKind,
    pub value: String,
}

impl MemberKey {
    pub fn udid(v: &str) -> Self {
        MemberKey {
            kind: MemberKind::Udid,
            value: v.to_owned(),
        }
    }

    pub fn serial(v: &str) -> Self {
        MemberKey {
            kind: MemberKind::Serial,
            value: v.to_owned(),
        }
    }
}

/// A device a static member names now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDevice {
    pub udid: String,
    pub serial_number: Option<String>,
    pub device_name: Option<String>,
}

/// A static member with the device it names, if any: one row per device (a serial may name
/// more than one device row), one row with `None` while it names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub key: MemberKey,
    pub device: Option<MemberDevice>,
}

/// What filters see of a device: its row, enrollment and DEP record, in one lean row.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceFactsRow {
    pub udid: String,
    pub serial_number: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub product_name: Option<String>,
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub is_apple_silicon: Option<bool>,
    pub enrolled: bool,
    /// The profile UUID of the DEP record with the device's serial.
    pub dep_profile: Option<String>,
    // From inventory (DeviceInformation, SecurityInfo): unknown until the Mac answers.
    pub is_supervised: Option<bool>,
    pub activation_lock_enabled: Option<bool>,
    pub filevault_enabled: Option<bool>,
    pub sip_enabled: Option<bool>,
    pub firewall_enabled: Option<bool>,
    pub secure_boot_level: Option<String>,
    pub recovery_lock_enabled: Option<bool>,
    /// The device channel's last request (for reports; no filter reads it).
    pub last_seen_at: Option<i64>,
}

#[async_trait]
pub trait GroupStore: Send + Sync {
    /// A new group. False (nothing written) if the name is taken, in any case.
    async fn insert_group(&self, rec: &GroupRecord) -> StoreResult<bool>;
    async fn group(&self, name: &str) -> StoreResult<Option<GroupRecord>>;
    /// Every group by name, with how many members its static rows name (distinct devices,
    /// plus members that name no device yet; 0 for a smart group).
    async fn groups(&self) -> StoreResult<Vec<(GroupRecord, i64)>>;
    /// The groups that have a filter.
    async fn smart_groups(&self) -> StoreResult<Vec<GroupRecord>>;
    /// Stores `description`, `filter` and `updated_at` of the group named `rec.name`. False if
    /// there is none.
    async fn update_group(&self, rec: &GroupRecord) -> StoreResult<bool>;
    /// The group and its static members. False if there was none.
    async fn delete_group(&self, name: &str) -> StoreResult<bool>;

    /// Adds static members in one transaction (members already there stay as they are).
    /// False (nothing written) if the group is gone.
    async fn add_group_members(
        &self,
        group: &str,
        members: &[MemberKey],
        now: i64,
    ) -> StoreResult<bool>;
    /// Removes these static members; how many there were.
    async fn remove_group_members(&self, group: &str, members: &[MemberKey]) -> StoreResult<u64>;
    /// The static members of a group with the devices they name now, in one query.
    async fn group_members(&self, group: &str) -> StoreResult<Vec<MemberRow>>;
    /// Names of the groups with a static member naming this UDID or serial, in one query.
    async fn static_groups_of(&self, udid: &str, serial: Option<&str>) -> StoreResult<Vec<String>>;

    /// Facts of the devices whose UDID sorts after `after`, by UDID, at most `limit`.
    async fn device_facts(
        &self,
        after: Option<&str>,
        limit: u32,
        conditions: &[FactCondition],
    ) -> StoreResult<Vec<DeviceFactsRow>>;
    async fn device_facts_of(&self, udid: &str) -> StoreResult<Option<DeviceFactsRow>>;
    /// Facts of these devices (by UDID; unknown ones are left out), one query per
    /// [`LIST_CHUNK`].
    async fn device_facts_of_many(&self, udids: &[String]) -> StoreResult<Vec<DeviceFactsRow>>;
    /// The static member rows naming one of these UDIDs or serials, as (group, kind, value):
    /// the groups of a batch of devices without reading any group whole.
    async fn static_members_naming(
        &self,
        values: &[String],
    ) -> StoreResult<Vec<(String, MemberKind, String)>>;
    /// The devices (UDID, serial) whose UDID or serial number is one of `names`.
    async fn devices_named(&self, names: &[String]) -> StoreResult<Vec<(String, Option<String>)>>;
}

/// A condition on a filter field the database checks while a filter scans the devices, so
/// only candidates travel: a superset of what the filter matches (the filter still decides),
/// hence only what SQL says exactly as the filter language does — booleans, whole-text
/// equality of ASCII values on fields that hold ASCII (serial numbers, UDIDs, model
/// identifiers), and the apps, whose SQL is the lookup's own. A field this store has no
/// column for is not checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactCondition {
    /// The Mac has (`present`) or has no app `query` finds: `[NOT] EXISTS` on the indexed
    /// `inventory_apps`, so the database joins on its index instead of Russet reading every
    /// Mac with the app (60,000 IDs for Excel at 100k) before the scan.
    App { query: AppQuery, present: bool },
    /// The field's text, lowercased (unreported: `""`), is (`equal`) or is not `value`
    /// (lowercase ASCII).
    Text {
        field: &'static str,
        value: String,
        equal: bool,
    },
    /// The field is `value` (`equal`; unreported is neither) or is not (unreported included).
    Bool {
        field: &'static str,
        value: bool,
        equal: bool,
    },
}

/// The SQL of a filter field in [`FACTS_SELECT`], for the fields [`FactCondition`]s name.
#[doc(hidden)]
pub fn fact_column(field: &str) -> Option<&'static str> {
    Some(match field {
        "serial" => "d.serial_number",
        "udid" => "d.id",
        "model" => "d.model",
        "product_name" => "d.product_name",
        "dep_profile" => "dd.profile_uuid",
        "secure_boot" => "i.secure_boot_level",
        "enrolled" => "COALESCE(e.enabled, FALSE)",
        "apple_silicon" => "d.is_apple_silicon",
        "supervised" => "i.is_supervised",
        "activation_lock" => "i.activation_lock_enabled",
        "filevault" => "i.filevault_enabled",
        "sip" => "i.sip_enabled",
        "firewall" => "i.firewall_enabled",
        "recovery_lock" => "i.recovery_lock_enabled",
        _ => return None,
    })
}

/// Most values bound in one `IN (…)` list.
pub const LIST_CHUNK: usize = 500;

#[doc(hidden)]
pub const GROUP_COLUMNS: &str = "name, description, filter, created_at, updated_at";

/// The static members of group `$1`, each with the devices it names (by UDID, or every device
/// row with the serial).
#[doc(hidden)]
pub const MEMBERS: &str = "SELECT m.kind, m.value, d.id, d.serial_number, d.device_name \
     FROM device_group_members m LEFT JOIN devices d ON d.id = m.value \
     WHERE m.group_name = $1 AND m.kind = 'udid' \
     UNION ALL \
     SELECT m.kind, m.value, d.id, d.serial_number, d.device_name \
     FROM device_group_members m LEFT JOIN devices d ON d.serial_number = m.value \
     WHERE m.group_name = $1 AND m.kind = 'serial' \
     ORDER BY 1, 2, 3";

/// Every group with the number of distinct members its static rows name: a device named by
/// UDID and by serial counts once; a member naming no device counts once.
#[doc(hidden)]
pub const GROUPS_WITH_COUNTS: &str = "SELECT g.name, g.description, g.filter, g.created_at, \
     g.updated_at, (SELECT COUNT(*) FROM ( \
         SELECT COALESCE(d.id, 'udid:' || m.value) AS member FROM device_group_members m \
         LEFT JOIN devices d ON d.id = m.value WHERE m.group_name = g.name AND m.kind = 'udid' \
         UNION \
         SELECT COALESCE(d.id, 'serial:' || m.value) FROM device_group_members m \
         LEFT JOIN devices d ON d.serial_number = m.value \
         WHERE m.group_name = g.name AND m.kind = 'serial') t) AS members \
     FROM device_groups g ORDER BY g.name";

/// The columns of a [`DeviceFactsRow`], from `devices d` (the joins are the caller's).
macro_rules! facts_columns {
    () => {
        "SELECT d.id AS udid, d.serial_number, d.model, d.model_name, d.product_name, \
         d.device_name, d.os_version, d.build_version, d.is_apple_silicon, \
         COALESCE(e.enabled, FALSE) AS enrolled, dd.profile_uuid AS dep_profile, \
         i.is_supervised, i.activation_lock_enabled, i.filevault_enabled, i.sip_enabled, \
         i.firewall_enabled, i.secure_boot_level, i.recovery_lock_enabled, e.last_seen_at \
         FROM devices d"
    };
}

#[doc(hidden)]
pub const FACTS_COLUMNS: &str = facts_columns!();

#[doc(hidden)]
pub const FACTS_SELECT: &str = concat!(
    facts_columns!(),
    " LEFT JOIN enrollments e ON e.id = d.id \
     LEFT JOIN dep_devices dd ON dd.serial_number = d.serial_number \
     LEFT JOIN inventory i ON i.device_id = d.id"
);

/// A row of [`MEMBERS`] as a [`MemberRow`]; `None` for a kind this build does not know.
#[doc(hidden)]
pub fn member_row(
    (kind, value, udid, serial_number, device_name): (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
) -> Option<MemberRow> {
    Some(MemberRow {
        key: MemberKey {
            kind: MemberKind::parse(&kind)?,
            value,
        },
        device: udid.map(|udid| MemberDevice {
            udid,
            serial_number,
            device_name,
        }),
    })
}

/// Implements [`GroupStore`] for a backend whose struct has a `pool` field, a `write()`
/// transaction and `user_channels()` (see `core_store`).
macro_rules! impl_group_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::groups::GroupStore for $store {
            async fn insert_group(
                &self,
                rec: &$crate::store::groups::GroupRecord,
            ) -> $crate::store::StoreResult<bool> {
                // No conflict target: the primary key and the case-insensitive name index.
                let done = sqlx::query(
                    "INSERT INTO device_groups (name, description, filter, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&rec.name)
                .bind(&rec.description)
                .bind(&rec.filter)
                .bind(rec.created_at)
                .bind(rec.updated_at)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn group(
                &self,
                name: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::groups::GroupRecord>> {
                let sql = format!(
                    "SELECT {} FROM device_groups WHERE name = $1",
                    $crate::store::groups::GROUP_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn groups(
                &self,
            ) -> $crate::store::StoreResult<Vec<($crate::store::groups::GroupRecord, i64)>>
            {
                let rows: Vec<(String, Option<String>, Option<String>, i64, i64, i64)> =
                    sqlx::query_as($crate::store::groups::GROUPS_WITH_COUNTS)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, description, filter, created_at, updated_at, n)| {
                        (
                            $crate::store::groups::GroupRecord {
                                name,
                                description,
                                filter,
                                created_at,
                                updated_at,
                            },
                            n,
                        )
                    })
                    .collect())
            }

            async fn smart_groups(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::groups::GroupRecord>> {
                let sql = format!(
                    "SELECT {} FROM device_groups WHERE filter IS NOT NULL ORDER BY name",
                    $crate::store::groups::GROUP_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn update_group(
                &self,
                rec: &$crate::store::groups::GroupRecord,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE device_groups SET description = $2, filter = $3, updated_at = $4 \
                     WHERE name = $1",
                )
                .bind(&rec.name)
                .bind(&rec.description)
                .bind(&rec.filter)
                .bind(rec.updated_at)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_group(&self, name: &str) -> $crate::store::StoreResult<bool> {
                let mut tx = self.write().await?;
                // Explicit, like the cascade would: the members go first.
                sqlx::query("DELETE FROM device_group_members WHERE group_name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM device_groups WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn add_group_members(
                &self,
                group: &str,
                members: &[$crate::store::groups::MemberKey],
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.write().await?;
                let known: Option<String> =
                    sqlx::query_scalar("SELECT name FROM device_groups WHERE name = $1")
                        .bind(group)
                        .fetch_optional(&mut *tx)
                        .await?;
                if known.is_none() {
                    return Ok(false);
                }
                for chunk in members.chunks($crate::store::groups::LIST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO device_group_members (group_name, kind, value, added_at) ",
                    );
                    qb.push_values(chunk, |mut b, m| {
                        b.push_bind(group.to_owned())
                            .push_bind(m.kind.as_str())
                            .push_bind(m.value.clone())
                            .push_bind(now);
                    });
                    qb.push(" ON CONFLICT (group_name, kind, value) DO NOTHING");
                    match qb.build().execute(&mut *tx).await {
                        // The group went between the check and the insert (another server).
                        Err(e) if $crate::store::rows::is_fk_violation(&e) => return Ok(false),
                        r => r?,
                    };
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn remove_group_members(
                &self,
                group: &str,
                members: &[$crate::store::groups::MemberKey],
            ) -> $crate::store::StoreResult<u64> {
                use $crate::store::groups::MemberKind;
                let mut tx = self.write().await?;
                let mut removed = 0;
                for kind in [MemberKind::Udid, MemberKind::Serial] {
                    let values: Vec<&str> = members
                        .iter()
                        .filter(|m| m.kind == kind)
                        .map(|m| m.value.as_str())
                        .collect();
                    for chunk in values.chunks($crate::store::groups::LIST_CHUNK) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "DELETE FROM device_group_members WHERE group_name = ",
                        );
                        qb.push_bind(group.to_owned())
                            .push(" AND kind = ")
                            .push_bind(kind.as_str())
                            .push(" AND value IN (");
                        let mut list = qb.separated(", ");
                        for v in chunk {
                            list.push_bind((*v).to_owned());
                        }
                        qb.push(")");
                        removed += qb.build().execute(&mut *tx).await?.rows_affected();
                    }
                }
                tx.commit().await?;
                Ok(removed)
            }

            async fn group_members(
                &self,
                group: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::groups::MemberRow>> {
                let rows: Vec<(String, String, Option<String>, Option<String>, Option<String>)> =
                    sqlx::query_as($crate::store::groups::MEMBERS)
                        .bind(group)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .filter_map($crate::store::groups::member_row)
                    .collect())
            }

            async fn static_groups_of(
                &self,
                udid: &str,
                serial: Option<&str>,
            ) -> $crate::store::StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT DISTINCT group_name FROM device_group_members \
                     WHERE (kind = 'udid' AND value = $1) OR (kind = 'serial' AND value = $2) \
                     ORDER BY group_name",
                )
                .bind(udid)
                .bind(serial)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn device_facts(
                &self,
                after: Option<&str>,
                limit: u32,
                conditions: &[$crate::store::groups::FactCondition],
            ) -> $crate::store::StoreResult<Vec<$crate::store::groups::DeviceFactsRow>> {
                use $crate::store::groups::{FactCondition, fact_column};
                // A cursor only when there is one (`($1 IS NULL OR d.id > $1)` keeps the
                // planner from seeking), and on the tables joined by the device's ID too: a
                // merge join otherwise reads them from their start on every page (PostgreSQL,
                // 117 → 6 ms a page at 100k).
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new($crate::store::groups::FACTS_COLUMNS);
                qb.push(" LEFT JOIN enrollments e ON e.id = d.id");
                if let Some(after) = after {
                    qb.push(" AND e.id > ").push_bind(after.to_string());
                }
                qb.push(
                    " LEFT JOIN dep_devices dd ON dd.serial_number = d.serial_number \
                     LEFT JOIN inventory i ON i.device_id = d.id",
                );
                if let Some(after) = after {
                    qb.push(" AND i.device_id > ").push_bind(after.to_string());
                }
                qb.push(" WHERE TRUE");
                if let Some(after) = after {
                    qb.push(" AND d.id > ").push_bind(after.to_string());
                }
                for c in conditions {
                    match c {
                        FactCondition::Text { field, value, equal } => {
                            if let Some(col) = fact_column(field) {
                                qb.push(format!(" AND COALESCE(lower({col}), '') "))
                                    .push(if *equal { "= " } else { "<> " })
                                    .push_bind(value.clone());
                            }
                        }
                        FactCondition::App { query, present } => {
                            qb.push(if *present { " AND " } else { " AND NOT " }).push(
                                "EXISTS (SELECT 1 FROM inventory_apps a \
                                 WHERE a.device_id = d.id AND ",
                            );
                            $crate::store::app_query::push_app_match(
                                &mut qb,
                                query,
                                $crate::store::app_query::Probe::Device,
                            );
                            qb.push(")");
                        }
                        FactCondition::Bool { field, value, equal } => {
                            if let Some(col) = fact_column(field) {
                                if *equal {
                                    qb.push(format!(" AND {col} = ")).push_bind(*value);
                                } else {
                                    qb.push(format!(" AND ({col} IS NULL OR {col} <> "))
                                        .push_bind(*value)
                                        .push(")");
                                }
                            }
                        }
                    }
                }
                qb.push(" ORDER BY d.id LIMIT ")
                    .push_bind(i64::from(limit.max(1)));
                Ok(qb
                    .build_query_as::<$crate::store::groups::DeviceFactsRow>()
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn device_facts_of(
                &self,
                udid: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::groups::DeviceFactsRow>> {
                let sql = format!("{} WHERE d.id = $1", $crate::store::groups::FACTS_SELECT);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(udid)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn device_facts_of_many(
                &self,
                udids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::groups::DeviceFactsRow>> {
                let mut found = Vec::with_capacity(udids.len());
                for chunk in udids.chunks($crate::store::groups::LIST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        $crate::store::groups::FACTS_SELECT,
                    );
                    qb.push(" WHERE d.id IN (");
                    let mut list = qb.separated(", ");
                    for u in chunk {
                        list.push_bind(u.clone());
                    }
                    qb.push(")");
                    found.extend(
                        qb.build_query_as::<$crate::store::groups::DeviceFactsRow>()
                            .fetch_all(&self.pool)
                            .await?,
                    );
                }
                Ok(found)
            }

            async fn static_members_naming(
                &self,
                values: &[String],
            ) -> $crate::store::StoreResult<
                Vec<(String, $crate::store::groups::MemberKind, String)>,
            > {
                let mut found = Vec::new();
                for chunk in values.chunks($crate::store::groups::LIST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT group_name, kind, value FROM device_group_members WHERE value IN (",
                    );
                    let mut list = qb.separated(", ");
                    for v in chunk {
                        list.push_bind(v.clone());
                    }
                    qb.push(")");
                    let rows: Vec<(String, String, String)> =
                        qb.build_query_as().fetch_all(&self.pool).await?;
                    found.extend(rows.into_iter().filter_map(|(group, kind, value)| {
                        Some((group, $crate::store::groups::MemberKind::parse(&kind)?, value))
                    }));
                }
                Ok(found)
            }

            async fn devices_named(
                &self,
                names: &[String],
            ) -> $crate::store::StoreResult<Vec<(String, Option<String>)>> {
                let mut found = Vec::new();
                for chunk in names.chunks($crate::store::groups::LIST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, serial_number FROM devices WHERE id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for n in chunk {
                        list.push_bind(n.clone());
                    }
                    qb.push(") OR serial_number IN (");
                    let mut list = qb.separated(", ");
                    for n in chunk {
                        list.push_bind(n.clone());
                    }
                    qb.push(") ORDER BY id");
                    let rows: Vec<(String, Option<String>)> =
                        qb.build_query_as().fetch_all(&self.pool).await?;
                    found.extend(rows);
                }
                found.sort();
                found.dedup();
                Ok(found)
            }
        }
    };
}
pub(crate) use impl_group_store;
