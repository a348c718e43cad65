//! PostgreSQL backend. Several Russet processes may share one database: every statement that
//! races with another process is either a conditional UPDATE or runs under a row lock.

use super::rows::{
    self, DEVICE_SELECT, DeviceRow, QUEUE_SELECT, QueueRow, USER_CHANNEL_COLUMNS, UserChannelRow,
    clamp_limit, device_views, is_fk_violation, queue_views,
};
use super::{
    AuthenticateRecord, CancelOutcome, CommandView, DeviceFilter, DeviceView, EnqueueResult,
    EscrowedPin, NewCommand, PinEscrowRecord, PinFilter, QueueEntryView, ReportOutcome,
    ReportRecord, ResultStatus, Store, StoreError, StoreResult, TokenUpdateRecord,
};
use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder, Transaction};
use std::collections::HashSet;
use std::time::Duration;

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
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Read committed: the statements below that race are written to be safe at that level.
    /// Lock order everywhere is devices, enrollments, queue entries (no deadlocks between
    /// `authenticate`, `command_report` and `delete_device`).
    async fn write(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
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
    /// The body of `enqueue`, inside a caller's transaction.
    async fn enqueue_in(
        tx: &mut Transaction<'static, Postgres>,
        cmd: &NewCommand,
        enrollment_ids: &[String],
    ) -> StoreResult<Vec<EnqueueResult>> {
        sqlx::query(rows::INSERT_COMMAND)
            .bind(&cmd.command_uuid)
            .bind(&cmd.request_type)
            .bind(&cmd.payload)
            .bind(cmd.priority)
            .bind(cmd.now)
            .bind(cmd.payload_sealed)
            .execute(&mut **tx)
            .await?;
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
        let unknown: HashSet<String> = unknown.into_iter().collect();
        Ok(enrollment_ids
            .iter()
            .map(|id| EnqueueResult {
                enrollment_id: id.clone(),
                queued: !unknown.contains(id),
            })
            .collect())
    }
}

/// A command report as one statement (data-modifying CTEs), so a report is one round trip:
///
/// - `touched`: last seen; an `Idle` starts a session. Empty when the enrollment is unknown or
///   disabled, and then nothing else changes.
/// - `stored`: the result (`$4` is NULL for `Idle`), only on an open entry.
/// - `picked`: the next command (priority, then FIFO; a `NotNow` entry waits for the next
///   session, see the rules in `rows`) with its payload. All CTEs see the table as it was when
///   the statement started, so the entry just reported on is excluded explicitly: once its
///   result is stored it is never eligible in this session (answered, or `NotNow` now). SKIP
///   LOCKED: a row locked by a concurrent cancel (or another process delivering it) is passed
///   over instead of waited for.
/// - `marked`: the picked entry marked sent (a data-modifying CTE runs whether or not the
///   final SELECT reads it).
///
/// `$1` enrollment, `$2` now, `$3` is Idle, `$4` command UUID, `$5` status, `$6` raw result,
/// `$7` is NotNow.
const REPORT_STATEMENT: &str = "WITH touched AS ( \
    UPDATE enrollments SET last_seen_at = $2, \
    session_started_at = CASE WHEN $3 THEN $2 ELSE session_started_at END \
    WHERE id = $1 AND enabled RETURNING session_started_at), \
stored AS ( \
    UPDATE queue_entries SET status = $5, result = $6, result_at = $2, \
    not_now_count = not_now_count + CASE WHEN $7 THEN 1 ELSE 0 END, \
    first_not_now_at = CASE WHEN $7 THEN COALESCE(first_not_now_at, $2) ELSE first_not_now_at END, \
    last_not_now_at = CASE WHEN $7 THEN $2 ELSE last_not_now_at END \
    WHERE $4::text IS NOT NULL AND enrollment_id = $1 AND command_uuid = $4 \
    AND status IN ('Pending', 'Sent', 'NotNow') AND EXISTS (SELECT 1 FROM touched) \
    RETURNING 1), \
picked AS ( \
    SELECT q.command_uuid, c.request_type, c.payload, c.payload_sealed \
    FROM queue_entries q JOIN commands c ON c.uuid = q.command_uuid \
    WHERE q.enrollment_id = $1 AND EXISTS (SELECT 1 FROM touched) \
    AND q.command_uuid IS DISTINCT FROM $4 \
    AND (q.status IN ('Pending', 'Sent') \
    OR (q.status = 'NotNow' AND q.last_not_now_at < (SELECT session_started_at FROM touched))) \
    ORDER BY q.priority DESC, q.seq LIMIT 1 FOR UPDATE OF q SKIP LOCKED), \
marked AS ( \
    UPDATE queue_entries SET status = 'Sent', delivered_at = COALESCE(delivered_at, $2), \
    delivery_count = delivery_count + 1 FROM picked \
    WHERE queue_entries.enrollment_id = $1 AND queue_entries.command_uuid = picked.command_uuid \
    RETURNING 1) \
SELECT EXISTS (SELECT 1 FROM touched) AS enrolled, EXISTS (SELECT 1 FROM stored) AS stored, \
    p.command_uuid, p.request_type, p.payload, p.payload_sealed \
FROM (SELECT 1) AS one LEFT JOIN picked p ON TRUE";

/// The row of [`REPORT_STATEMENT`].
#[derive(sqlx::FromRow)]
struct ReportRow {
    enrolled: bool,
    stored: bool,
    command_uuid: Option<String>,
    request_type: Option<String>,
    payload: Option<Vec<u8>>,
    payload_sealed: Option<bool>,
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn identity_owner(&self, cert_hash: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT device_id FROM identity_bindings WHERE cert_hash = $1")
                .bind(cert_hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn authenticate(&self, rec: &AuthenticateRecord) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT device_id FROM identity_bindings WHERE cert_hash = $1")
                .bind(&rec.cert_hash)
                .fetch_optional(&mut *tx)
                .await?;
        if owner.is_some_and(|o| o != rec.device_id) {
            return Err(StoreError::IdentityConflict);
        }
        sqlx::query(rows::UPSERT_DEVICE)
            .bind(&rec.device_id)
            .bind(&rec.enrollment_type)
            .bind(&rec.serial_number)
            .bind(&rec.model)
            .bind(&rec.model_name)
            .bind(&rec.device_name)
            .bind(&rec.os_version)
            .bind(&rec.build_version)
            .bind(&rec.product_name)
            .bind(&rec.cert_hash)
            .bind(rec.cert_not_after)
            .bind(rec.now)
            .bind(&rec.raw)
            .execute(&mut *tx)
            .await?;
        let bound = sqlx::query(rows::BIND_IDENTITY)
            .bind(&rec.cert_hash)
            .bind(&rec.device_id)
            .bind(rec.now)
            .execute(&mut *tx)
            .await?;
        if bound.rows_affected() == 0 {
            return Err(StoreError::IdentityConflict);
        }
        sqlx::query(rows::UPSERT_DEVICE_CHANNEL)
            .bind(&rec.device_id)
            .bind(&rec.enrollment_type)
            .bind(&rec.topic)
            .bind(rec.now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(rows::DISABLE_USER_CHANNELS)
            .bind(&rec.device_id)
            .bind(rec.now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(rows::CLEAR_QUEUES)
            .bind(&rec.device_id)
            .bind(rec.now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_update(&self, rec: &TokenUpdateRecord) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let known: Option<String> = sqlx::query_scalar("SELECT id FROM devices WHERE id = $1")
            .bind(&rec.device_id)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Ok(false);
        }
        let res = sqlx::query(rows::UPSERT_ENROLLMENT)
            .bind(&rec.enrollment_id)
            .bind(&rec.device_id)
            .bind(&rec.enrollment_type)
            .bind(&rec.user_id)
            .bind(&rec.user_short_name)
            .bind(&rec.user_long_name)
            .bind(&rec.topic)
            .bind(&rec.token)
            .bind(&rec.push_magic)
            .bind(&rec.unlock_token_sealed)
            .bind(rec.awaiting_configuration)
            .bind(rec.now)
            .execute(&mut *tx)
            .await;
        match res {
            Err(e) if is_fk_violation(&e) => return Ok(false),
            r => r?,
        };
        tx.commit().await?;
        Ok(true)
    }

    async fn check_out(&self, enrollment_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(rows::CHECK_OUT)
            .bind(enrollment_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_bootstrap_token(
        &self,
        device_id: &str,
        sealed: Option<&[u8]>,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO bootstrap_tokens (device_id, sealed, created_at) VALUES ($1, $2, $3)",
        )
        .bind(device_id)
        .bind(sealed)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn bootstrap_token(&self, device_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let newest: Option<Option<Vec<u8>>> = sqlx::query_scalar(rows::NEWEST_BOOTSTRAP)
            .bind(device_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(newest.flatten())
    }

    async fn enrollment_enabled(&self, enrollment_id: &str) -> StoreResult<Option<bool>> {
        Ok(
            sqlx::query_scalar("SELECT enabled FROM enrollments WHERE id = $1")
                .bind(enrollment_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn command_report(&self, rec: &ReportRecord) -> StoreResult<ReportOutcome> {
        let result = rec.result.as_ref();
        let query = sqlx::query_as(REPORT_STATEMENT)
            .bind(&rec.enrollment_id)
            .bind(rec.now)
            .bind(result.is_none())
            .bind(result.map(|r| r.command_uuid.as_str()))
            .bind(result.map(|r| r.status.queue_status().as_str()))
            .bind(result.map(|r| r.raw.as_slice()))
            .bind(result.is_some_and(|r| r.status == ResultStatus::NotNow));
        // One statement is atomic on its own: without device facts to store, no explicit
        // transaction (and its BEGIN and COMMIT round trips) is needed.
        let (row, tx): (ReportRow, _) = match &rec.device_facts {
            None => (query.fetch_one(&self.pool).await?, None),
            Some(_) => {
                let mut tx = self.pool.begin().await?;
                (query.fetch_one(&mut *tx).await?, Some(tx))
            }
        };
        if !row.enrolled {
            return Ok(ReportOutcome {
                not_enrolled: true,
                ..ReportOutcome::default()
            });
        }
        if let (Some(f), Some(mut tx)) = (&rec.device_facts, tx) {
            rows::store_device_facts!(&rec.enrollment_id, f, rec.now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        let next = match (
            row.command_uuid,
            row.request_type,
            row.payload,
            row.payload_sealed,
        ) {
            (Some(command_uuid), Some(request_type), Some(payload), Some(payload_sealed)) => {
                Some(super::DeliveredCommand {
                    command_uuid,
                    request_type,
                    payload,
                    payload_sealed,
                })
            }
            _ => None,
        };
        Ok(ReportOutcome {
            unknown_command: result.is_some() && !row.stored,
            next,
            ..ReportOutcome::default()
        })
    }

    async fn enqueue(
        &self,
        cmd: &NewCommand,
        enrollment_ids: &[String],
    ) -> StoreResult<Vec<EnqueueResult>> {
        let mut tx = self.write().await?;
        let results = Self::enqueue_in(&mut tx, cmd, enrollment_ids).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn enqueue_escrowed(
        &self,
        cmd: &NewCommand,
        escrow: &PinEscrowRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let enabled: Option<bool> = sqlx::query_scalar(rows::DEVICE_CHANNEL_ENABLED)
            .bind(&escrow.device_id)
            .fetch_optional(&mut *tx)
            .await?;
        if enabled != Some(true) {
            return Ok(false);
        }
        sqlx::query(rows::INSERT_ESCROWED_PIN)
            .bind(&escrow.command_uuid)
            .bind(&escrow.device_id)
            .bind(&escrow.serial_number)
            .bind(&escrow.request_type)
            .bind(&escrow.pin_sealed)
            .bind(&escrow.issued_by)
            .bind(escrow.now)
            .execute(&mut *tx)
            .await?;
        Self::enqueue_in(&mut tx, cmd, std::slice::from_ref(&escrow.device_id)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn escrowed_pins(&self, filter: &PinFilter) -> StoreResult<Vec<EscrowedPin>> {
        let mut q = QueryBuilder::<Postgres>::new(rows::ESCROWED_PIN_SELECT);
        q.push(" WHERE TRUE");
        if let Some(serial) = &filter.serial {
            q.push(" AND p.serial_number = ").push_bind(serial.clone());
        }
        if let Some(udid) = &filter.udid {
            q.push(" AND p.device_id = ").push_bind(udid.clone());
        }
        q.push(" ORDER BY p.created_at DESC, p.id DESC");
        let rows: Vec<rows::EscrowRow> = q.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows::escrow_views(rows)?)
    }

    async fn list_devices(&self, filter: &DeviceFilter) -> StoreResult<Vec<DeviceView>> {
        let mut q = QueryBuilder::<Postgres>::new(DEVICE_SELECT);
        q.push(" WHERE TRUE");
        if let Some(serial) = &filter.serial {
            q.push(" AND d.serial_number = ").push_bind(serial.clone());
        }
        if let Some(udid) = &filter.udid {
            q.push(" AND d.id = ").push_bind(udid.clone());
        }
        if let Some(enrolled) = filter.enrolled {
            q.push(" AND COALESCE(e.enabled, FALSE) = ")
                .push_bind(enrolled);
        }
        if let Some(cursor) = &filter.cursor {
            q.push(" AND d.id > ").push_bind(cursor.clone());
        }
        q.push(" ORDER BY d.id LIMIT ")
            .push_bind(clamp_limit(filter.limit));
        let devices: Vec<DeviceRow> = q.build_query_as().fetch_all(&self.pool).await?;
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = devices.iter().map(DeviceRow::id).collect();
        let users = self.user_channels(&ids).await?;
        Ok(device_views(devices, users))
    }

    async fn device(&self, device_id: &str) -> StoreResult<Option<DeviceView>> {
        let filter = DeviceFilter {
            udid: Some(device_id.to_owned()),
            limit: 1,
            ..DeviceFilter::default()
        };
        Ok(self.list_devices(&filter).await?.into_iter().next())
    }

    async fn delete_device(&self, device_id: &str) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        // The queue goes with the device; the PIN records keep their command's state.
        sqlx::query(rows::SNAPSHOT_ESCROWED_PINS)
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        // No foreign key cascades into queue_entries on PostgreSQL (migration 0007).
        sqlx::query(
            "DELETE FROM queue_entries WHERE enrollment_id IN \
             (SELECT id FROM enrollments WHERE device_id = $1)",
        )
        .bind(device_id)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM devices WHERE id = $1")
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn device_commands(
        &self,
        device_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<QueueEntryView>> {
        let rows: Vec<QueueRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{QUEUE_SELECT} {}",
            rows::DEVICE_COMMANDS_TAIL
        )))
        .bind(device_id)
        .bind(clamp_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(queue_views(rows)?)
    }

    async fn command(&self, command_uuid: &str) -> StoreResult<Option<CommandView>> {
        let head: Option<(String, String, i64, Vec<u8>, bool)> = sqlx::query_as(
            "SELECT uuid, request_type, created_at, payload, payload_sealed FROM commands WHERE uuid = $1",
        )
        .bind(command_uuid)
        .fetch_optional(&self.pool)
        .await?;
        let Some((command_uuid, request_type, created_at, payload, payload_sealed)) = head else {
            return Ok(None);
        };
        let rows: Vec<QueueRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{QUEUE_SELECT} WHERE q.command_uuid = $1 ORDER BY q.enrollment_id"
        )))
        .bind(&command_uuid)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(CommandView {
            command_uuid,
            request_type,
            created_at,
            payload,
            payload_sealed,
            entries: queue_views(rows)?,
        }))
    }

    async fn cancel_command(&self, command_uuid: &str, now: i64) -> StoreResult<CancelOutcome> {
        // Only `Pending` flips, under the row lock the UPDATE takes. Against a delivery:
        // - cancel first: the delivery's pick skips the locked row (Canceled once committed);
        // - delivery first: this UPDATE waits for its commit, re-checks `status = 'Pending'`
        //   (now Sent) and leaves the row; the next statement sees it as delivered.
        let mut tx = self.write().await?;
        let mut canceled: Vec<String> = sqlx::query_scalar(rows::CANCEL_PENDING)
            .bind(command_uuid)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let already_delivered: Vec<(String, Option<i64>)> = sqlx::query_as(rows::DELIVERED_ENTRIES)
            .bind(command_uuid)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        canceled.sort();
        Ok(CancelOutcome {
            canceled,
            already_delivered,
        })
    }
}

super::push::impl_push_store!(PostgresStore);
super::admin::impl_admin_store!(PostgresStore);
super::identity::impl_identity_store!(PostgresStore);
super::dep::impl_dep_store!(PostgresStore, sqlx::Postgres, postgres_leader);
super::ade::impl_ade_store!(PostgresStore);
