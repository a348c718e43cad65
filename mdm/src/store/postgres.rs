//! PostgreSQL backend. Several Russet processes may share one database: every statement that
//! races with another process is either a conditional UPDATE or runs under a row lock.

use super::core_store::{ReportRound, delivered};
use super::rows::{self, USER_CHANNEL_COLUMNS, UserChannelRow};
use super::{NewCommand, ReportRecord, StoreResult};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use std::time::Duration;

/// A write transaction ([`PostgresStore::write`]).
pub(super) type WriteTx = Transaction<'static, Postgres>;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://…`) and migrate. Concurrent starts are safe: sqlx holds
    /// an advisory lock while migrating.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings a connection (a Sync and its ReadyForQuery: a network round trip) before
            // handing it out, which doubled the round trips of a command report, the hot path's
            // one statement (docs/benchmarks.md, issue 19). A connection that died (PostgreSQL
            // restarted) fails its next statement instead, once, and the pool drops it; a Mac
            // retries a request that failed, and the admin sees one error.
            .test_before_acquire(false)
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Read committed: the statements below that race are written to be safe at that level.
    /// Lock order everywhere is devices, enrollments, queue entries (no deadlocks between
    /// `authenticate`, `command_report` and `delete_device`).
    async fn write(&self) -> StoreResult<WriteTx> {
        Ok(self.pool.begin().await?)
    }

    /// A connection for one statement outside a transaction (SQLite takes its writer's turn
    /// there; here any pooled connection).
    async fn write_one(&self) -> StoreResult<sqlx::pool::PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    async fn user_channels(&self, device_ids: &[&str]) -> StoreResult<Vec<UserChannelRow>> {
        let ids: Vec<String> = device_ids.iter().map(|s| (*s).to_owned()).collect();
        let sql = format!(
            "{USER_CHANNEL_COLUMNS} WHERE device_id = ANY($1) AND id <> device_id \
             ORDER BY device_id, id"
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }
}

impl PostgresStore {
    /// Queue a stored command for every known target, inside a caller's transaction; returns
    /// the unknown targets.
    async fn enqueue_targets(
        tx: &mut WriteTx,
        cmd: &NewCommand,
        enrollment_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        // One array parameter, expanded server-side: one round trip for any number of targets.
        // Only the unknown IDs come back (usually none): fetching the known ones cost a row per
        // target, 100k rows for a fleet-wide command.
        let unknown: Vec<String> = sqlx::query_scalar(
            "SELECT t.id FROM UNNEST($1::text[]) AS t(id) \
             WHERE NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.id = t.id)",
        )
        .bind(enrollment_ids)
        .fetch_all(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO queue_entries (enrollment_id, command_uuid, status, priority, enqueued_at) \
             SELECT t.id, $2, 'Pending', $3, $4 \
             FROM UNNEST($1::text[]) WITH ORDINALITY AS t(id, ord) \
             JOIN enrollments e ON e.id = t.id ORDER BY t.ord \
             ON CONFLICT (enrollment_id, command_uuid) DO NOTHING",
        )
        .bind(enrollment_ids)
        .bind(&cmd.command_uuid)
        .bind(cmd.priority)
        .bind(cmd.now)
        .execute(&mut **tx)
        .await?;
        Ok(unknown)
    }
}

/// A command report as one statement (data-modifying CTEs), so a report is one round trip:
///
/// - `enrollment`: the enrollment, if known and enabled; when it is not, nothing changes. A
///   plain read: no row lock and no write on the hot path.
/// - `touched`: last seen; an `Idle` starts a session — written only when there is something
///   to record (see `rows::LAST_SEEN_GRANULARITY_MS`).
/// - `stored`: the result (`$4` is NULL for `Idle`), only on an open entry; the final SELECT
///   returns its command's request type.
/// - `picked`: the next command (priority, then FIFO; a `NotNow` entry waits for the next
///   session, see the rules in `rows`) with its payload. All CTEs see the table as it was when
///   the statement started, so the entry just reported on is excluded explicitly: once its
///   result is stored it is never eligible in this session (answered, or `NotNow` now). SKIP
///   LOCKED: a row locked by a concurrent cancel (or another process delivering it) is passed
///   over instead of waited for.
/// - `marked`: the picked entry marked sent (a data-modifying CTE runs whether or not the
///   final SELECT reads it).
///
/// Parameters: see `rows::bind_report!`.
const REPORT_STATEMENT: &str = "WITH enrollment AS ( \
    SELECT session_started_at FROM enrollments WHERE id = $1 AND enabled), \
touched AS ( \
    UPDATE enrollments SET last_seen_at = $2, \
    session_started_at = CASE WHEN $3 THEN $2 ELSE session_started_at END \
    WHERE id = $1 AND enabled AND (last_seen_at IS NULL OR last_seen_at <= $8 \
    OR ($3 AND EXISTS (SELECT 1 FROM queue_entries w \
                       WHERE w.enrollment_id = $1 AND w.status = 'NotNow'))) \
    RETURNING 1), \
stored AS ( \
    UPDATE queue_entries SET status = $5, result = $6, result_at = $2, \
    not_now_count = not_now_count + CASE WHEN $7 THEN 1 ELSE 0 END, \
    first_not_now_at = CASE WHEN $7 THEN COALESCE(first_not_now_at, $2) ELSE first_not_now_at END, \
    last_not_now_at = CASE WHEN $7 THEN $2 ELSE last_not_now_at END \
    WHERE $4::text IS NOT NULL AND enrollment_id = $1 AND command_uuid = $4 \
    AND status IN ('Pending', 'Sent', 'NotNow') AND EXISTS (SELECT 1 FROM enrollment) \
    RETURNING command_uuid), \
picked AS ( \
    SELECT q.command_uuid, c.request_type, c.payload, c.payload_sealed \
    FROM queue_entries q JOIN commands c ON c.uuid = q.command_uuid \
    WHERE q.enrollment_id = $1 AND EXISTS (SELECT 1 FROM enrollment) \
    AND q.command_uuid IS DISTINCT FROM $4 \
    AND (q.status IN ('Pending', 'Sent') \
    OR (q.status = 'NotNow' AND q.last_not_now_at < \
        CASE WHEN $3 THEN $2 ELSE (SELECT session_started_at FROM enrollment) END)) \
    ORDER BY q.priority DESC, q.seq LIMIT 1 FOR UPDATE OF q SKIP LOCKED), \
marked AS ( \
    UPDATE queue_entries SET status = 'Sent', delivered_at = COALESCE(delivered_at, $2), \
    delivery_count = delivery_count + 1 FROM picked \
    WHERE queue_entries.enrollment_id = $1 AND queue_entries.command_uuid = picked.command_uuid \
    RETURNING 1) \
SELECT EXISTS (SELECT 1 FROM enrollment) AS enrolled, \
    (SELECT c.request_type FROM stored s JOIN commands c ON c.uuid = s.command_uuid) AS stored, \
    p.command_uuid, p.request_type, p.payload, p.payload_sealed \
FROM (SELECT 1) AS one LEFT JOIN picked p ON TRUE";

/// The row of [`REPORT_STATEMENT`].
#[derive(sqlx::FromRow)]
struct ReportRow {
    enrolled: bool,
    /// The request type of the command whose result was stored.
    stored: Option<String>,
    command_uuid: Option<String>,
    request_type: Option<String>,
    payload: Option<Vec<u8>>,
    payload_sealed: Option<bool>,
}

impl From<ReportRow> for ReportRound {
    fn from(row: ReportRow) -> Self {
        ReportRound {
            enrolled: row.enrolled,
            stored: row.stored,
            next: delivered(
                row.command_uuid,
                row.request_type,
                row.payload,
                row.payload_sealed,
            ),
        }
    }
}

impl PostgresStore {
    /// A report without device facts: one statement is atomic on its own, so no explicit
    /// transaction (and its BEGIN and COMMIT round trips) is needed.
    async fn report_round(&self, rec: &ReportRecord) -> StoreResult<ReportRound> {
        let row: ReportRow = rows::bind_report!(sqlx::query_as(REPORT_STATEMENT), rec)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.into())
    }

    /// [`REPORT_STATEMENT`] inside a caller's transaction.
    async fn report_round_in(tx: &mut WriteTx, rec: &ReportRecord) -> StoreResult<ReportRound> {
        let row: ReportRow = rows::bind_report!(sqlx::query_as(REPORT_STATEMENT), rec)
            .fetch_one(&mut **tx)
            .await?;
        Ok(row.into())
    }
}

super::core_store::impl_core_store!(PostgresStore, sqlx::Postgres, "postgres");
super::push::impl_push_store!(PostgresStore);
super::admin::impl_admin_store!(PostgresStore);
super::console::impl_console_store!(PostgresStore);
super::identity::impl_identity_store!(PostgresStore);
super::dep::impl_dep_store!(PostgresStore, sqlx::Postgres, postgres_leader);
super::ade::impl_ade_store!(PostgresStore);
super::groups::impl_group_store!(PostgresStore, sqlx::Postgres);
super::profile_states::impl_profile_state_store!(PostgresStore, sqlx::Postgres);
super::profiles::impl_profile_store!(PostgresStore, sqlx::Postgres);
super::inventory::impl_inventory_store!(PostgresStore, sqlx::Postgres);
super::webhooks::impl_webhook_store!(PostgresStore, sqlx::Postgres, " FOR UPDATE SKIP LOCKED");
super::filevault::impl_filevault_store!(PostgresStore, sqlx::Postgres);
super::fleet::impl_fleet_store!(PostgresStore, sqlx::Postgres);
super::recovery_lock::impl_recovery_lock_store!(PostgresStore, sqlx::Postgres);
super::golden_images::impl_golden_image_store!(PostgresStore);
super::parallels_activation::impl_parallels_activation_store!(PostgresStore);
super::ddm::impl_ddm_store!(PostgresStore, sqlx::Postgres);
