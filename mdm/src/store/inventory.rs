//! Storage for inventory (migration `0011_inventory.sql`): one row per Mac with typed columns
//! for what people filter on and each part's whole answer (JSON text) with the time it was
//! collected; the Mac's applications in `inventory_apps`; a change log of the facts people
//! care about. Written once for both backends (`impl_inventory_store!`).
//!
//! The filter language reads these columns (`crate::filter::FIELDS`): `filevault` →
//! `filevault_enabled`, `firewall` → `firewall_enabled`, `sip` → `sip_enabled`, `supervised`
//! → `is_supervised`, `activation_lock` → `activation_lock_enabled`, `secure_boot` →
//! `secure_boot_level`, `recovery_lock` → `recovery_lock_enabled` (joined into
//! `groups::FACTS_SELECT`); `app` → [`InventoryStore::devices_with_app`] (one indexed query on
//! `inventory_apps`); `console_user` → [`InventoryStore::devices_with_console_user`].

use super::StoreResult;
use crate::protocol::inventory::{App, DeviceInformation, SecurityInfo};
use async_trait::async_trait;

/// One Mac's inventory row as stored.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct InventoryRow {
    pub device_id: String,
    pub serial_number: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub product_name: Option<String>,
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub supplemental_build_version: Option<String>,
    pub is_apple_silicon: Option<bool>,
    pub is_supervised: Option<bool>,
    pub activation_lock_enabled: Option<bool>,
    pub capacity_gb: Option<f64>,
    pub available_gb: Option<f64>,
    pub battery_level: Option<f64>,
    pub wifi_mac: Option<String>,
    pub bluetooth_mac: Option<String>,
    pub ethernet_mac: Option<String>,
    pub device_info_json: Option<String>,
    pub device_info_at: Option<i64>,
    pub filevault_enabled: Option<bool>,
    pub sip_enabled: Option<bool>,
    pub firewall_enabled: Option<bool>,
    pub secure_boot_level: Option<String>,
    pub recovery_lock_enabled: Option<bool>,
    pub bootstrap_token_allowed: Option<String>,
    pub security_json: Option<String>,
    pub security_at: Option<i64>,
    pub app_count: Option<i64>,
    pub apps_json: Option<String>,
    pub apps_at: Option<i64>,
    pub certificate_count: Option<i64>,
    pub certificates_json: Option<String>,
    pub certificates_at: Option<i64>,
    pub user_count: Option<i64>,
    pub logged_in_users: Option<String>,
    pub users_json: Option<String>,
    pub users_at: Option<i64>,
    pub requested_at: Option<i64>,
    pub next_due_at: Option<i64>,
    pub updated_at: i64,
}

/// One installed application as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppRow {
    pub device_id: String,
    pub bundle_id: Option<String>,
    pub name: String,
    pub short_version: Option<String>,
    pub version: Option<String>,
    pub bundle_size: Option<i64>,
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InventoryChangeRow {
    pub id: i64,
    pub device_id: String,
    pub serial_number: Option<String>,
    /// `os_version`, `build_version`, `filevault_enabled`, `serial_number` (this UDID reports
    /// another serial), `udid` (this serial was on another UDID: `old_value`).
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub changed_at: i64,
}

/// A user channel of a Mac (its TokenUpdate's `UserShortName` / `UserLongName`): the
/// console user when the channel is enabled.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserChannelRow {
    pub enrollment_id: String,
    pub user_short_name: Option<String>,
    pub user_long_name: Option<String>,
    pub enabled: bool,
    pub updated_at: i64,
}

/// One part of a Mac's inventory, decoded, with its whole answer as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub enum InventoryPart {
    /// Typed columns a partial answer leaves out keep their value (an admin's DeviceInformation
    /// asks a few keys), and `json` is merged into the stored answer key by key.
    DeviceInformation {
        facts: Box<DeviceInformation>,
        json: serde_json::Value,
    },
    Security {
        facts: SecurityInfo,
        json: String,
    },
    /// Replaces the Mac's application rows.
    Applications {
        apps: Vec<App>,
        json: String,
    },
    Certificates {
        count: i64,
        json: String,
    },
    Users {
        count: i64,
        /// Short names of the users logged in.
        logged_in: Vec<String>,
        json: String,
    },
}

/// A part to store for one Mac.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryUpdate {
    pub device_id: String,
    pub part: InventoryPart,
    pub now: i64,
    /// When the sweep asks this Mac next.
    pub next_due_at: i64,
}

pub use super::app_query::{AppQuery, like_literal};

/// Which Macs have a console user (the filter field `console_user`): an enabled user
/// channel's short or long name, or a user the last UserList says is logged in, is `text`
/// (or contains it), ignoring case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    pub text: String,
    pub contains: bool,
}

/// Rows per statement when applications are inserted (7 parameters a row).
const CHUNK: usize = 500;

#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Store one part, in one transaction, and log the changes of the facts people care
    /// about. Returns the change-log entries written.
    async fn save_inventory(
        &self,
        update: &InventoryUpdate,
    ) -> StoreResult<Vec<InventoryChangeRow>>;

    async fn inventory(&self, device_id: &str) -> StoreResult<Option<InventoryRow>>;

    /// The Mac's applications, by name.
    async fn inventory_apps(&self, device_id: &str) -> StoreResult<Vec<AppRow>>;

    /// The change log of one Mac, newest first.
    async fn inventory_changes(
        &self,
        device_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<InventoryChangeRow>>;

    /// The user channels of a Mac (enabled first, most recent first).
    async fn user_channels(&self, device_id: &str) -> StoreResult<Vec<UserChannelRow>>;

    /// Enrolled Macs (enabled device channel) due for inventory at `now` — never asked, or
    /// `next_due_at` passed — with an ID after `after`, in ID order, at most `limit`: the
    /// sweep reads them a page at a time.
    async fn devices_due_for_inventory(
        &self,
        now: i64,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<String>>;

    /// The inventory commands were queued for these Macs at `now`; each is due again at its
    /// time unless it answers first.
    async fn mark_inventory_requested(&self, due: &[(String, i64)], now: i64) -> StoreResult<()>;

    /// Macs with an application matching `query` (among `within`, when given), in ID order:
    /// one query on the indexes of `inventory_apps` (a query per [`super::groups::LIST_CHUNK`]
    /// of `within`).
    async fn devices_with_app(
        &self,
        query: &AppQuery,
        within: Option<&[String]>,
    ) -> StoreResult<Vec<String>>;

    /// Macs with a console user matching `query` (among `within`, when given), in ID order.
    async fn devices_with_console_user(
        &self,
        query: &UserQuery,
        within: Option<&[String]>,
    ) -> StoreResult<Vec<String>>;
}

/// A value bound into the part's upsert.
#[doc(hidden)]
pub enum Col {
    Text(Option<String>),
    Bool(Option<bool>),
    Real(Option<f64>),
    Int(Option<i64>),
}

/// The columns a part writes, and whether a missing value keeps the stored one.
#[doc(hidden)]
pub fn part_columns(part: &InventoryPart, now: i64) -> Vec<(&'static str, Col, bool)> {
    use Col::*;
    match part {
        InventoryPart::DeviceInformation { facts: f, json } => vec![
            ("serial_number", Text(f.serial_number.clone()), true),
            ("model", Text(f.model.clone()), true),
            ("model_name", Text(f.model_name.clone()), true),
            ("product_name", Text(f.product_name.clone()), true),
            ("device_name", Text(f.device_name.clone()), true),
            ("os_version", Text(f.os_version.clone()), true),
            ("build_version", Text(f.build_version.clone()), true),
            (
                "supplemental_build_version",
                Text(f.supplemental_build_version.clone()),
                true,
            ),
            ("is_apple_silicon", Bool(f.is_apple_silicon), true),
            ("is_supervised", Bool(f.is_supervised), true),
            (
                "activation_lock_enabled",
                Bool(f.is_activation_lock_enabled),
                true,
            ),
            ("capacity_gb", Real(f.capacity_gb), true),
            ("available_gb", Real(f.available_gb), true),
            ("battery_level", Real(f.battery_level), true),
            ("wifi_mac", Text(f.wifi_mac.clone()), true),
            ("bluetooth_mac", Text(f.bluetooth_mac.clone()), true),
            ("ethernet_mac", Text(f.ethernet_mac.clone()), true),
            ("sip_enabled", Bool(f.sip_enabled), true),
            ("device_info_json", Text(Some(json.to_string())), false),
            ("device_info_at", Int(Some(now)), false),
        ],
        InventoryPart::Security { facts: f, json } => vec![
            ("filevault_enabled", Bool(f.filevault_enabled), false),
            ("sip_enabled", Bool(f.sip_enabled), true),
            ("firewall_enabled", Bool(f.firewall_enabled), false),
            (
                "secure_boot_level",
                Text(f.secure_boot_level.clone()),
                false,
            ),
            (
                "recovery_lock_enabled",
                Bool(f.recovery_lock_enabled),
                false,
            ),
            (
                "bootstrap_token_allowed",
                Text(f.bootstrap_token_allowed.clone()),
                false,
            ),
            ("security_json", Text(Some(json.clone())), false),
            ("security_at", Int(Some(now)), false),
        ],
        InventoryPart::Applications { apps, json } => vec![
            ("app_count", Int(Some(apps.len() as i64)), false),
            ("apps_json", Text(Some(json.clone())), false),
            ("apps_at", Int(Some(now)), false),
        ],
        InventoryPart::Certificates { count, json } => vec![
            ("certificate_count", Int(Some(*count)), false),
            ("certificates_json", Text(Some(json.clone())), false),
            ("certificates_at", Int(Some(now)), false),
        ],
        InventoryPart::Users {
            count,
            logged_in,
            json,
        } => vec![
            ("user_count", Int(Some(*count)), false),
            ("logged_in_users", Text(Some(logged_in.join(","))), false),
            ("users_json", Text(Some(json.clone())), false),
            ("users_at", Int(Some(now)), false),
        ],
    }
}

/// What was stored before a part, for the change log.
#[doc(hidden)]
#[derive(Debug, Default, sqlx::FromRow)]
pub struct Before {
    pub serial_number: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub filevault_enabled: Option<bool>,
    pub device_info_json: Option<String>,
}

/// A change-log entry before it has an ID.
#[doc(hidden)]
pub struct Change {
    pub field: &'static str,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The changes a part makes to the facts people care about. A fact seen for the first time
/// is no change (a new Mac's OS version is not news); a fact the answer leaves out neither.
#[doc(hidden)]
pub fn changes(before: Option<&Before>, part: &InventoryPart) -> Vec<Change> {
    let Some(b) = before else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut text = |field: &'static str, old: &Option<String>, new: &Option<String>| {
        if let (Some(o), Some(n)) = (old, new)
            && o != n
        {
            out.push(Change {
                field,
                old: Some(o.clone()),
                new: Some(n.clone()),
            });
        }
    };
    match part {
        InventoryPart::DeviceInformation { facts, .. } => {
            text("os_version", &b.os_version, &facts.os_version);
            text("build_version", &b.build_version, &facts.build_version);
            text("serial_number", &b.serial_number, &facts.serial_number);
        }
        InventoryPart::Security { facts, .. } => {
            let on_off = |v: Option<bool>| v.map(|v| if v { "on" } else { "off" }.to_string());
            text(
                "filevault_enabled",
                &on_off(b.filevault_enabled),
                &on_off(facts.filevault_enabled),
            );
        }
        _ => {}
    }
    out
}

/// The stored DeviceInformation answer with a new one laid over it, key by key.
#[doc(hidden)]
pub fn merged_device_info(before: Option<&Before>, new: &serde_json::Value) -> serde_json::Value {
    let old = before
        .and_then(|b| b.device_info_json.as_deref())
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok());
    match (old, new) {
        (Some(serde_json::Value::Object(mut old)), serde_json::Value::Object(new)) => {
            for (k, v) in new {
                old.insert(k.clone(), v.clone());
            }
            serde_json::Value::Object(old)
        }
        _ => new.clone(),
    }
}

#[doc(hidden)]
pub fn chunk() -> usize {
    CHUNK
}

#[doc(hidden)]
pub const INVENTORY_COLUMNS: &str = "device_id, serial_number, model, model_name, product_name, \
     device_name, os_version, build_version, supplemental_build_version, is_apple_silicon, \
     is_supervised, activation_lock_enabled, capacity_gb, available_gb, battery_level, wifi_mac, \
     bluetooth_mac, ethernet_mac, device_info_json, device_info_at, filevault_enabled, \
     sip_enabled, firewall_enabled, secure_boot_level, recovery_lock_enabled, \
     bootstrap_token_allowed, security_json, security_at, app_count, apps_json, apps_at, \
     certificate_count, certificates_json, certificates_at, user_count, logged_in_users, \
     users_json, users_at, requested_at, next_due_at, updated_at";

/// Implements [`InventoryStore`] for a backend whose struct has a `pool` field; `$db` is its
/// sqlx database type (for the query builder).
macro_rules! impl_inventory_store {
    ($store:ty, $db:ty) => {
        /// ` AND device_id IN (…)` for a chunk of device IDs; nothing for all devices.
        fn among(qb: &mut sqlx::QueryBuilder<$db>, chunk: Option<&[String]>) {
            if let Some(ids) = chunk {
                qb.push(" AND device_id IN (");
                let mut list = qb.separated(", ");
                for id in ids {
                    list.push_bind(id.clone());
                }
                qb.push(")");
            }
        }

        /// The device IDs a query finds, built by `build` for all devices or (a query per
        /// chunk of an `IN` list) for those `within`, sorted.
        async fn ids_within(
            pool: &sqlx::Pool<$db>,
            within: Option<&[String]>,
            build: impl Fn(Option<&[String]>) -> sqlx::QueryBuilder<$db>,
        ) -> $crate::store::StoreResult<Vec<String>> {
            let Some(ids) = within else {
                return Ok(build(None).build_query_scalar().fetch_all(pool).await?);
            };
            let mut found = Vec::new();
            for chunk in ids.chunks($crate::store::groups::LIST_CHUNK) {
                let mut qb = build(Some(chunk));
                found.extend(qb.build_query_scalar::<String>().fetch_all(pool).await?);
            }
            found.sort();
            Ok(found)
        }

        #[async_trait::async_trait]
        impl $crate::store::inventory::InventoryStore for $store {
            async fn save_inventory(
                &self,
                update: &$crate::store::inventory::InventoryUpdate,
            ) -> $crate::store::StoreResult<Vec<$crate::store::inventory::InventoryChangeRow>> {
                use $crate::store::inventory::{self as inv, Col, InventoryPart};
                let mut tx = self.write().await?;
                let before: Option<inv::Before> = sqlx::query_as(
                    "SELECT serial_number, os_version, build_version, filevault_enabled, \
                     device_info_json FROM inventory WHERE device_id = $1",
                )
                .bind(&update.device_id)
                .fetch_optional(&mut *tx)
                .await?;
                let mut part = update.part.clone();
                if let InventoryPart::DeviceInformation { json, .. } = &mut part {
                    *json = inv::merged_device_info(before.as_ref(), json);
                }
                let cols = inv::part_columns(&part, update.now);
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO inventory (device_id, updated_at, next_due_at",
                );
                for (c, _, _) in &cols {
                    qb.push(", ").push(*c);
                }
                qb.push(") VALUES (");
                qb.push_bind(update.device_id.clone());
                qb.push(", ").push_bind(update.now);
                qb.push(", ").push_bind(update.next_due_at);
                for (_, v, _) in cols.iter() {
                    qb.push(", ");
                    match v {
                        Col::Text(x) => qb.push_bind(x.clone()),
                        Col::Bool(x) => qb.push_bind(*x),
                        Col::Real(x) => qb.push_bind(*x),
                        Col::Int(x) => qb.push_bind(*x),
                    };
                }
                qb.push(
                    ") ON CONFLICT (device_id) DO UPDATE SET updated_at = excluded.updated_at, \
                     next_due_at = excluded.next_due_at",
                );
                for (c, _, keep) in &cols {
                    if *keep {
                        qb.push(format!(", {c} = COALESCE(excluded.{c}, inventory.{c})"));
                    } else {
                        qb.push(format!(", {c} = excluded.{c}"));
                    }
                }
                qb.build().execute(&mut *tx).await?;

                let serial = match (&part, &before) {
                    (InventoryPart::DeviceInformation { facts, .. }, _)
                        if facts.serial_number.is_some() =>
                    {
                        facts.serial_number.clone()
                    }
                    (_, Some(b)) => b.serial_number.clone(),
                    _ => None,
                };
                let mut changes = inv::changes(before.as_ref(), &part);
                // A serial number new to this UDID that another UDID reported before: the
                // Mac re-enrolled under a new UDID (or the board moved).
                if let InventoryPart::DeviceInformation { facts, .. } = &part
                    && let Some(s) = &facts.serial_number
                    && before.as_ref().and_then(|b| b.serial_number.as_ref()) != Some(s)
                {
                    let others: Vec<String> = sqlx::query_scalar(
                        "SELECT device_id FROM inventory WHERE serial_number = $1 \
                         AND device_id <> $2 ORDER BY updated_at DESC LIMIT 1",
                    )
                    .bind(s)
                    .bind(&update.device_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    for other in others {
                        changes.push(inv::Change {
                            field: "udid",
                            old: Some(other),
                            new: Some(update.device_id.clone()),
                        });
                    }
                }
                let mut written = Vec::new();
                for c in changes {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO inventory_changes (device_id, serial_number, field, \
                         old_value, new_value, changed_at) VALUES ($1, $2, $3, $4, $5, $6) \
                         RETURNING id",
                    )
                    .bind(&update.device_id)
                    .bind(&serial)
                    .bind(c.field)
                    .bind(&c.old)
                    .bind(&c.new)
                    .bind(update.now)
                    .fetch_one(&mut *tx)
                    .await?;
                    written.push(inv::InventoryChangeRow {
                        id,
                        device_id: update.device_id.clone(),
                        serial_number: serial.clone(),
                        field: c.field.to_string(),
                        old_value: c.old,
                        new_value: c.new,
                        changed_at: update.now,
                    });
                }

                if let InventoryPart::Applications { apps, .. } = &part {
                    sqlx::query("DELETE FROM inventory_apps WHERE device_id = $1")
                        .bind(&update.device_id)
                        .execute(&mut *tx)
                        .await?;
                    for chunk in apps.chunks(inv::chunk()) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO inventory_apps (device_id, bundle_id, name, \
                             short_version, version, version_key, bundle_size) ",
                        );
                        qb.push_values(chunk, |mut b, a| {
                            b.push_bind(update.device_id.clone())
                                .push_bind(a.bundle_id.clone())
                                .push_bind(a.name.clone())
                                .push_bind(a.short_version.clone())
                                .push_bind(a.version.clone())
                                .push_bind(
                                    a.short_version.as_deref().map($crate::filter::version_key),
                                )
                                .push_bind(a.bundle_size);
                        });
                        qb.build().execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn inventory(
                &self,
                device_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::inventory::InventoryRow>> {
                let sql = format!(
                    "SELECT {} FROM inventory WHERE device_id = $1",
                    $crate::store::inventory::INVENTORY_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(device_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn inventory_apps(
                &self,
                device_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::inventory::AppRow>> {
                Ok(sqlx::query_as(
                    "SELECT device_id, bundle_id, name, short_version, version, bundle_size \
                     FROM inventory_apps WHERE device_id = $1 \
                     ORDER BY lower(name), bundle_id",
                )
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn inventory_changes(
                &self,
                device_id: &str,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::inventory::InventoryChangeRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, device_id, serial_number, field, old_value, new_value, \
                     changed_at FROM inventory_changes WHERE device_id = $1 \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(device_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn user_channels(
                &self,
                device_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::inventory::UserChannelRow>> {
                Ok(sqlx::query_as(
                    "SELECT id AS enrollment_id, user_short_name, user_long_name, enabled, \
                     updated_at FROM enrollments \
                     WHERE device_id = $1 AND user_id IS NOT NULL \
                     ORDER BY enabled DESC, updated_at DESC",
                )
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn devices_due_for_inventory(
                &self,
                now: i64,
                after: &str,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT e.id FROM enrollments e \
                     LEFT JOIN inventory i ON i.device_id = e.id \
                     WHERE e.id = e.device_id AND e.enabled AND e.id > $2 \
                     AND (i.next_due_at IS NULL OR i.next_due_at <= $1) \
                     ORDER BY e.id LIMIT $3",
                )
                .bind(now)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn mark_inventory_requested(
                &self,
                due: &[(String, i64)],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                if due.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                for chunk in due.chunks($crate::store::inventory::chunk()) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO inventory (device_id, requested_at, next_due_at, \
                         updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, (id, next)| {
                        b.push_bind(id.clone())
                            .push_bind(now)
                            .push_bind(*next)
                            .push_bind(now);
                    });
                    qb.push(
                        " ON CONFLICT (device_id) DO UPDATE SET \
                         requested_at = excluded.requested_at, \
                         next_due_at = excluded.next_due_at",
                    );
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn devices_with_app(
                &self,
                query: &$crate::store::inventory::AppQuery,
                within: Option<&[String]>,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let build = |chunk: Option<&[String]>| {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT DISTINCT a.device_id FROM inventory_apps a WHERE ",
                    );
                    $crate::store::app_query::push_app_match(
                        &mut qb,
                        query,
                        $crate::store::app_query::Probe::Table,
                    );
                    among(&mut qb, chunk);
                    qb.push(" ORDER BY device_id");
                    qb
                };
                ids_within(&self.pool, within, build).await
            }

            async fn devices_with_console_user(
                &self,
                query: &$crate::store::inventory::UserQuery,
                within: Option<&[String]>,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let text = $crate::store::inventory::like_literal(&query.text);
                // The logged-in users are stored comma-separated: match a whole name between
                // commas, or a part of one.
                let (channel, logged_in) = if query.contains {
                    (format!("%{text}%"), format!("%{text}%"))
                } else {
                    (text.clone(), format!("%,{text},%"))
                };
                let build = |chunk: Option<&[String]>| {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT device_id FROM enrollments WHERE enabled AND user_id IS NOT NULL \
                         AND (lower(user_short_name) LIKE ",
                    );
                    qb.push_bind(channel.clone())
                        .push(" ESCAPE '\\' OR lower(user_long_name) LIKE ")
                        .push_bind(channel.clone())
                        .push(" ESCAPE '\\')");
                    among(&mut qb, chunk);
                    qb.push(
                        " UNION SELECT device_id FROM inventory \
                         WHERE (',' || lower(logged_in_users) || ',') LIKE ",
                    )
                    .push_bind(logged_in.clone())
                    .push(" ESCAPE '\\'");
                    among(&mut qb, chunk);
                    qb.push(" ORDER BY 1");
                    qb
                };
                ids_within(&self.pool, within, build).await
            }
        }
    };
}
pub(crate) use impl_inventory_store;
