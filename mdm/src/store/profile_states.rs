//! Storage for the profile reconciler: where each configuration profile stands on each Mac
//! channel, and the ProfileList the reconciler asked each channel for.
//!
//! Written once for both backends (`impl_profile_state_store!`): long lists are bound in
//! chunks with the query builder, which both dialects read the same way.

use super::StoreResult;
use async_trait::async_trait;

/// One profile on one channel, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProfileStateRow {
    pub enrollment_id: String,
    pub device_id: String,
    pub identifier: String,
    /// `pending`, `installing`, `verified`, `failed`, `removing`, `removed`.
    pub state: String,
    pub version: i64,
    pub payload_uuid: String,
    pub command_uuid: Option<String>,
    pub queued_at: Option<i64>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    /// Apple's ErrorChain of the last failure, JSON text.
    pub error: Option<String>,
    pub verified_at: Option<i64>,
    pub updated_at: i64,
}

/// A command the reconciler queued for one profile on one channel: the state row becomes
/// `state` (pending or removing) with this command, version and UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedProfileCommand {
    pub enrollment_id: String,
    pub device_id: String,
    pub identifier: String,
    pub state: String,
    pub version: i64,
    pub payload_uuid: String,
    /// None when no command could be built (the row records the failure).
    pub command_uuid: Option<String>,
}

/// A new state for one profile on one channel (from an answer or a ProfileList).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileStateChange {
    pub identifier: String,
    pub state: String,
    /// Count a failure and wait until `next_attempt_at`; a success resets the count.
    pub failed: bool,
    pub next_attempt_at: Option<i64>,
    /// Forget the queued command (the next plan sends another).
    pub forget_command: bool,
    /// Apple's ErrorChain, JSON text, for a failure.
    pub error: Option<String>,
    /// Only when the row's command is still this one (an answer to an older command changes
    /// nothing).
    pub if_command: Option<String>,
}

/// Rows per statement when a long list is bound (9 parameters a row stays under both
/// databases' limits).
const CHUNK: usize = 500;

#[async_trait]
pub trait ProfileStateStore: Send + Sync {
    /// Every profile state of these devices' channels (device and user channels).
    async fn profile_states_of_devices(
        &self,
        device_ids: &[String],
    ) -> StoreResult<Vec<ProfileStateRow>>;

    /// Every channel's state of one profile (its status page).
    async fn profile_states_of(&self, identifier: &str) -> StoreResult<Vec<ProfileStateRow>>;

    /// Record commands just queued, in one transaction (insert or replace the state rows).
    async fn record_profile_commands(
        &self,
        commands: &[QueuedProfileCommand],
        now: i64,
    ) -> StoreResult<()>;

    /// Apply state changes on one channel, in one transaction.
    async fn apply_profile_changes(
        &self,
        enrollment_id: &str,
        changes: &[ProfileStateChange],
        now: i64,
    ) -> StoreResult<()>;

    /// Remember that a ProfileList was asked of this channel. Returns false (and changes
    /// nothing) when one asked after `stale_before` is still unanswered.
    async fn claim_profile_check(
        &self,
        enrollment_id: &str,
        command_uuid: &str,
        now: i64,
        stale_before: i64,
    ) -> StoreResult<bool>;

    /// The outstanding ProfileList of a channel: (command UUID, asked at).
    async fn profile_check(&self, enrollment_id: &str) -> StoreResult<Option<(String, i64)>>;

    /// The ProfileList `command_uuid` was answered.
    async fn clear_profile_check(&self, enrollment_id: &str, command_uuid: &str)
    -> StoreResult<()>;

    /// Channels with profile states whose last verification is older than `before` (or never
    /// happened), for the periodic ProfileList; at most `limit`.
    async fn channels_to_verify(&self, before: i64, limit: u32) -> StoreResult<Vec<String>>;

    /// Devices with profile work waiting on time: a failure whose retry is due (fewer than
    /// `max_attempts` in a row), or a profile to send again after a drift.
    async fn devices_with_profile_work(
        &self,
        now: i64,
        max_attempts: i64,
        limit: u32,
    ) -> StoreResult<Vec<String>>;
}

const STATE_COLUMNS: &str = "enrollment_id, device_id, identifier, state, version, payload_uuid, \
     command_uuid, queued_at, attempts, next_attempt_at, error, verified_at, updated_at";

#[doc(hidden)]
pub fn state_columns() -> &'static str {
    STATE_COLUMNS
}

#[doc(hidden)]
pub fn chunk() -> usize {
    CHUNK
}

/// Implements [`ProfileStateStore`] for a backend whose struct has a `pool` field; `$db` is its
/// sqlx database type (for the query builder).
macro_rules! impl_profile_state_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::profile_states::ProfileStateStore for $store {
            async fn profile_states_of_devices(
                &self,
                device_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::profile_states::ProfileStateRow>>
            {
                let mut out = Vec::new();
                for chunk in device_ids.chunks($crate::store::profile_states::chunk()) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM profile_states WHERE device_id IN (",
                        $crate::store::profile_states::state_columns()
                    ));
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    qb.push(") ORDER BY enrollment_id, identifier");
                    out.extend(qb.build_query_as().fetch_all(&self.pool).await?);
                }
                Ok(out)
            }

            async fn profile_states_of(
                &self,
                identifier: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::profile_states::ProfileStateRow>>
            {
                let sql = format!(
                    "SELECT {} FROM profile_states WHERE identifier = $1 ORDER BY enrollment_id",
                    $crate::store::profile_states::state_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(identifier)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn record_profile_commands(
                &self,
                commands: &[$crate::store::profile_states::QueuedProfileCommand],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                if commands.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                for chunk in commands.chunks($crate::store::profile_states::chunk()) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO profile_states (enrollment_id, device_id, identifier, state, \
                         version, payload_uuid, command_uuid, queued_at, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, c| {
                        b.push_bind(c.enrollment_id.clone())
                            .push_bind(c.device_id.clone())
                            .push_bind(c.identifier.clone())
                            .push_bind(c.state.clone())
                            .push_bind(c.version)
                            .push_bind(c.payload_uuid.clone())
                            .push_bind(c.command_uuid.clone())
                            .push_bind(now)
                            .push_bind(now);
                    });
                    // A retry keeps the failure count (a success resets it), a new version
                    // starts over; a new command supersedes the old one's answer.
                    qb.push(
                        " ON CONFLICT (enrollment_id, identifier) DO UPDATE SET \
                         state = excluded.state, version = excluded.version, \
                         payload_uuid = excluded.payload_uuid, \
                         command_uuid = excluded.command_uuid, queued_at = excluded.queued_at, \
                         attempts = CASE WHEN excluded.version <> profile_states.version \
                             THEN 0 ELSE profile_states.attempts END, \
                         next_attempt_at = NULL, updated_at = excluded.updated_at",
                    );
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn apply_profile_changes(
                &self,
                enrollment_id: &str,
                changes: &[$crate::store::profile_states::ProfileStateChange],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                if changes.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                for c in changes {
                    sqlx::query(
                        "UPDATE profile_states SET state = $3, \
                         attempts = CASE WHEN $4 THEN attempts + 1 ELSE 0 END, \
                         next_attempt_at = $5, \
                         command_uuid = CASE WHEN $6 THEN NULL ELSE command_uuid END, \
                         error = CASE WHEN $4 THEN $7 ELSE error END, \
                         verified_at = CASE WHEN $3 = 'verified' THEN $8 ELSE verified_at END, \
                         updated_at = $8 \
                         WHERE enrollment_id = $1 AND identifier = $2 \
                         AND ($9 IS NULL OR command_uuid = $9)",
                    )
                    .bind(enrollment_id)
                    .bind(&c.identifier)
                    .bind(&c.state)
                    .bind(c.failed)
                    .bind(c.next_attempt_at)
                    .bind(c.forget_command)
                    .bind(&c.error)
                    .bind(now)
                    .bind(&c.if_command)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_profile_check(
                &self,
                enrollment_id: &str,
                command_uuid: &str,
                now: i64,
                stale_before: i64,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO profile_checks (enrollment_id, command_uuid, requested_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (enrollment_id) DO UPDATE SET \
                     command_uuid = excluded.command_uuid, requested_at = excluded.requested_at \
                     WHERE profile_checks.requested_at < $4",
                )
                .bind(enrollment_id)
                .bind(command_uuid)
                .bind(now)
                .bind(stale_before)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn profile_check(
                &self,
                enrollment_id: &str,
            ) -> $crate::store::StoreResult<Option<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT command_uuid, requested_at FROM profile_checks \
                     WHERE enrollment_id = $1",
                )
                .bind(enrollment_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn clear_profile_check(
                &self,
                enrollment_id: &str,
                command_uuid: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "DELETE FROM profile_checks WHERE enrollment_id = $1 AND command_uuid = $2",
                )
                .bind(enrollment_id)
                .bind(command_uuid)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(())
            }

            async fn channels_to_verify(
                &self,
                before: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT s.enrollment_id FROM profile_states s \
                     JOIN enrollments e ON e.id = s.enrollment_id AND e.enabled \
                     WHERE s.state IN ('installing', 'verified') \
                     AND NOT EXISTS (SELECT 1 FROM profile_checks c \
                                     WHERE c.enrollment_id = s.enrollment_id) \
                     GROUP BY s.enrollment_id \
                     HAVING MIN(COALESCE(s.verified_at, 0)) < $1 \
                     ORDER BY MIN(COALESCE(s.verified_at, 0)) LIMIT $2",
                )
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn devices_with_profile_work(
                &self,
                now: i64,
                max_attempts: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT DISTINCT device_id FROM profile_states \
                     WHERE (state = 'failed' AND attempts < $2 \
                            AND COALESCE(next_attempt_at, 0) <= $1) \
                        OR (state = 'pending' AND command_uuid IS NULL) \
                     ORDER BY device_id LIMIT $3",
                )
                .bind(now)
                .bind(max_attempts)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}
pub(crate) use impl_profile_state_store;
