//! What the console's dashboard and audit page read (issue 18), written once for both
//! backends (`impl_fleet_store!`): the fleet's figures, each one grouped query (never a
//! query per device, and never on the check-in path), and the audit log filtered. Migration
//! `0028_console_reads.sql` indexes the audit log by actor, and the failed profile
//! installs (a partial index: only failed rows).

use super::{AuditEntry, StoreResult};
use async_trait::async_trait;

/// The fleet at a glance, counted by the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetCounts {
    /// Device channels enabled now (enrolled Macs).
    pub enrolled: i64,
    /// Devices Russet knows whose device channel is disabled (checked out or unenrolled).
    pub unenrolled: i64,
    /// Enrolled Macs not seen since the cutoff the caller gave.
    pub stale: i64,
    /// Profile installs that failed (one per profile and channel) …
    pub failed_profiles: i64,
    /// … on this many Macs.
    pub failed_profile_devices: i64,
    /// Enrolled Macs reporting FileVault on with no escrowed, current recovery key.
    pub filevault_unescrowed: i64,
}

/// Which audit entries to list: each filter given narrows the list; newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The admin's name, exactly.
    pub actor: Option<String>,
    /// The action, or its start (`device.` finds `device.lock` and `device.wipe`).
    pub action: Option<String>,
    /// Part of the target (a serial number, a UDID, a name), any case.
    pub target: Option<String>,
    /// Entries at or after this time (Unix ms).
    pub since: Option<i64>,
    /// Entries before this time (Unix ms).
    pub until: Option<i64>,
    /// Entries with an id below this one (the next page).
    pub before: Option<i64>,
    pub limit: u32,
}

/// `text` as a LIKE pattern matching itself literally (`%`, `_` and `\` escaped).
pub(crate) fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
pub trait FleetStore: Send + Sync {
    /// The dashboard's figures; Macs not seen since `stale_before` (Unix ms) are stale.
    async fn fleet_counts(&self, stale_before: i64) -> StoreResult<FleetCounts>;
    /// Audit entries matching the filter, newest first.
    async fn audit_search(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
}

/// Enabled and disabled device channels, and the enabled ones last seen before `$1` (a Mac
/// that never reported counts from its enrollment).
pub(crate) const DEVICE_COUNTS: &str = "SELECT \
     COALESCE(SUM(CASE WHEN e.enabled THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN e.enabled THEN 0 ELSE 1 END), 0), \
     COALESCE(SUM(CASE WHEN e.enabled AND COALESCE(e.last_seen_at, e.last_token_update_at, \
     e.created_at) < $1 THEN 1 ELSE 0 END), 0) \
     FROM devices d JOIN enrollments e ON e.id = d.id";

pub(crate) const FAILED_PROFILES: &str =
    "SELECT COUNT(*), COUNT(DISTINCT device_id) FROM profile_states WHERE state = 'failed'";

/// A key that opened (`escrowed`, or `unexpected`: opened, not Apple's shape) and that no
/// newer key replaced is a key an admin can reveal; anything else leaves the Mac unescrowed.
pub(crate) const FILEVAULT_UNESCROWED: &str = "SELECT COUNT(*) FROM inventory i \
     JOIN enrollments e ON e.id = i.device_id \
     WHERE e.enabled AND i.filevault_enabled AND NOT EXISTS (SELECT 1 FROM filevault_keys k \
     WHERE k.device_id = i.device_id AND k.state IN ('escrowed', 'unexpected') \
     AND k.superseded_at IS NULL)";

/// The audit query's start; [`FleetStore::audit_search`] adds a condition per filter given
/// (only those, so the planner can use `audit_log_actor_idx` for an actor), then the order and
/// the limit.
pub(crate) const AUDIT_SEARCH: &str =
    "SELECT id, at, actor, action, target, detail, address FROM audit_log WHERE 1 = 1";

/// Implements [`FleetStore`] for a backend whose struct has a `pool` field.
macro_rules! impl_fleet_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::fleet::FleetStore for $store {
            async fn fleet_counts(
                &self,
                stale_before: i64,
            ) -> $crate::store::StoreResult<$crate::store::fleet::FleetCounts> {
                let (enrolled, unenrolled, stale): (i64, i64, i64) =
                    sqlx::query_as($crate::store::fleet::DEVICE_COUNTS)
                        .bind(stale_before)
                        .fetch_one(&self.pool)
                        .await?;
                let (failed_profiles, failed_profile_devices): (i64, i64) =
                    sqlx::query_as($crate::store::fleet::FAILED_PROFILES)
                        .fetch_one(&self.pool)
                        .await?;
                let filevault_unescrowed: i64 =
                    sqlx::query_scalar($crate::store::fleet::FILEVAULT_UNESCROWED)
                        .fetch_one(&self.pool)
                        .await?;
                Ok($crate::store::fleet::FleetCounts {
                    enrolled,
                    unenrolled,
                    stale,
                    failed_profiles,
                    failed_profile_devices,
                    filevault_unescrowed,
                })
            }

            async fn audit_search(
                &self,
                f: &$crate::store::fleet::AuditFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::AuditEntry>> {
                use $crate::store::fleet::like_literal;
                let mut qb = sqlx::QueryBuilder::<$db>::new($crate::store::fleet::AUDIT_SEARCH);
                if let Some(before) = f.before {
                    qb.push(" AND id < ").push_bind(before);
                }
                if let Some(actor) = &f.actor {
                    qb.push(" AND actor = ").push_bind(actor.clone());
                }
                if let Some(action) = &f.action {
                    qb.push(" AND action LIKE ")
                        .push_bind(format!("{}%", like_literal(action)))
                        .push(" ESCAPE '\\'");
                }
                if let Some(target) = &f.target {
                    qb.push(" AND lower(target) LIKE ")
                        .push_bind(format!("%{}%", like_literal(&target.to_lowercase())))
                        .push(" ESCAPE '\\'");
                }
                if let Some(since) = f.since {
                    qb.push(" AND at >= ").push_bind(since);
                }
                if let Some(until) = f.until {
                    qb.push(" AND at < ").push_bind(until);
                }
                qb.push(" ORDER BY id DESC LIMIT ")
                    .push_bind($crate::store::rows::clamp_limit(f.limit));
                let rows: Vec<$crate::store::rows::AuditRow> =
                    qb.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows
                    .into_iter()
                    .map($crate::store::AuditEntry::try_from)
                    .collect::<Result<_, _>>()?)
            }
        }
    };
}
pub(crate) use impl_fleet_store;
