//! SQLite backend: one file, WAL, one writer at a time.

use super::rows;
use super::rows::{
    DEVICE_SELECT, DeviceRow, QUEUE_SELECT, QueueRow, USER_CHANNEL_COLUMNS, UserChannelRow,
    clamp_limit, device_views, is_fk_violation, queue_views,
};
use super::{
    AuthenticateRecord, CancelOutcome, CommandView, DeviceFilter, DeviceView, EnqueueResult,
    EscrowedPin, NewCommand, PinEscrowRecord, PinFilter, QueueEntryView, ReportOutcome,
    ReportRecord, ResultStatus, Store, StoreError, StoreResult, TokenUpdateRecord,
};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, Transaction};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for [`Self::write`] transactions. SQLite has one writer at a time
    /// anyway; queueing writers here (an async wait) replaces SQLite's busy handler, which
    /// polls with sleeps, and keeps the hot path on one worker thread.
    writer: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if missing) and migrate the database at `url` (`sqlite://path`).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // An in-memory database exists per connection: keep exactly one.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            // A ping before every acquire is a round trip to the connection's worker thread
            // per request, and cannot fail for a local file that is open.
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let writer = if url.contains(":memory:") {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(opts)
                .await?
        };
        Ok(Self { pool, writer })
    }

    /// A write transaction. SQLite has one writer; a plain (deferred) `BEGIN` takes the write
    /// lock only at the first write, and two readers that both try to upgrade fail with
    /// SQLITE_BUSY without waiting (the busy handler cannot help a deadlock). `BEGIN IMMEDIATE`
    /// takes the write lock up front, so concurrent writers queue on the busy timeout instead.
    async fn write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn user_channels(&self, device_ids: &[&str]) -> StoreResult<Vec<UserChannelRow>> {
        let ids = json_array(device_ids)?;
        let sql = format!(
            "{USER_CHANNEL_COLUMNS} WHERE device_id IN (SELECT value FROM json_each($1)) \
             AND id <> device_id ORDER BY device_id, id"
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// Large ID lists travel as one JSON text parameter and are expanded with `json_each`: no
/// limit on bound variables, one statement for any number of targets.
fn json_array<T: serde::Serialize>(items: &[T]) -> StoreResult<String> {
    serde_json::to_string(items).map_err(|e| StoreError::Config(e.to_string()))
}

// The text of `REPORT_BATCH` (a macro, so `REPORT_BATCH_TX` can `concat!` it).
macro_rules! report_batch_sql {
    () => {
        "\
UPDATE enrollments SET last_seen_at = $2, \
    session_started_at = CASE WHEN $3 THEN $2 ELSE session_started_at END \
    WHERE id = $1 AND enabled \
    RETURNING 'enrolled' AS tag, NULL AS command_uuid, NULL AS request_type, NULL AS payload, \
    NULL AS payload_sealed; \
UPDATE queue_entries SET status = $5, result = $6, result_at = $2, \
    not_now_count = not_now_count + CASE WHEN $7 THEN 1 ELSE 0 END, \
    first_not_now_at = CASE WHEN $7 THEN COALESCE(first_not_now_at, $2) ELSE first_not_now_at END, \
    last_not_now_at = CASE WHEN $7 THEN $2 ELSE last_not_now_at END \
    WHERE $4 IS NOT NULL AND enrollment_id = $1 AND command_uuid = $4 \
    AND status IN ('Pending', 'Sent', 'NotNow') \
    AND EXISTS (SELECT 1 FROM enrollments WHERE id = $1 AND enabled) \
    RETURNING 'stored' AS tag, NULL AS command_uuid, NULL AS request_type, NULL AS payload, \
    NULL AS payload_sealed; \
UPDATE queue_entries SET status = 'Sent', delivered_at = COALESCE(delivered_at, $2), \
    delivery_count = delivery_count + 1 \
    WHERE enrollment_id = $1 AND command_uuid = ( \
        SELECT q.command_uuid FROM queue_entries q JOIN enrollments e ON e.id = q.enrollment_id \
        WHERE q.enrollment_id = $1 AND e.enabled AND (q.status IN ('Pending', 'Sent') \
        OR (q.status = 'NotNow' AND q.last_not_now_at < e.session_started_at)) \
        ORDER BY q.priority DESC, q.seq LIMIT 1) \
    RETURNING 'next' AS tag, command_uuid, \
    (SELECT request_type FROM commands WHERE uuid = queue_entries.command_uuid) AS request_type, \
    (SELECT payload FROM commands WHERE uuid = queue_entries.command_uuid) AS payload, \
    (SELECT payload_sealed FROM commands WHERE uuid = queue_entries.command_uuid) AS payload_sealed"
    };
}

/// A command report as one multi-statement batch, run in the caller's transaction (sqlx runs
/// the statements one after the other on the worker; `$n` are shared). Every statement
/// returns rows of one shape, told apart by `tag`:
///
/// 1. touch the enrollment (last seen; an `Idle` starts a session): `enrolled` when it exists
///    and is enabled — the later statements check the same, so a disabled or unknown
///    enrollment changes nothing;
/// 2. store the result (`$4` is NULL for `Idle`): `stored` when it landed on an open entry;
/// 3. pick the next command (priority, then FIFO; a `NotNow` entry waits for the next session,
///    see the rules in `rows`), mark it sent and return it with its payload: `next`.
///
/// `$1` enrollment, `$2` now, `$3` is Idle, `$4` command UUID, `$5` status, `$6` raw result,
/// `$7` is NotNow.
const REPORT_BATCH: &str = report_batch_sql!();

/// [`REPORT_BATCH`] wrapped in `BEGIN IMMEDIATE` … `COMMIT`, as one batch.
const REPORT_BATCH_TX: &str = concat!("BEGIN IMMEDIATE; ", report_batch_sql!(), "; COMMIT");

type ReportQuery<'q> =
    sqlx::query::QueryAs<'q, Sqlite, ReportRow, <Sqlite as sqlx::Database>::Arguments>;

fn bind_report<'q>(q: ReportQuery<'q>, rec: &'q ReportRecord) -> ReportQuery<'q> {
    let result = rec.result.as_ref();
    q.bind(&rec.enrollment_id)
        .bind(rec.now)
        .bind(result.is_none())
        .bind(result.map(|r| r.command_uuid.as_str()))
        .bind(result.map(|r| r.status.queue_status().as_str()))
        .bind(result.map(|r| r.raw.as_slice()))
        .bind(result.is_some_and(|r| r.status == ResultStatus::NotNow))
}

/// Run [`REPORT_BATCH_TX`] on the writer connection. A statement that fails stops the batch,
/// possibly inside its transaction: roll back, and close the connection rather than hand a
/// connection in an unknown state to the next writer.
async fn report_batch(writer: &SqlitePool, rec: &ReportRecord) -> StoreResult<Vec<ReportRow>> {
    let mut conn = writer.acquire().await?;
    match bind_report(sqlx::query_as(REPORT_BATCH_TX), rec)
        .fetch_all(&mut *conn)
        .await
    {
        Ok(rows) => Ok(rows),
        Err(e) => {
            // Fails harmlessly ("no transaction is active") when BEGIN itself failed.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            conn.close_on_drop();
            Err(e.into())
        }
    }
}

/// A row of [`REPORT_BATCH`].
#[derive(sqlx::FromRow)]
struct ReportRow {
    tag: String,
    command_uuid: Option<String>,
    request_type: Option<String>,
    payload: Option<Vec<u8>>,
    payload_sealed: Option<bool>,
}

impl SqliteStore {
    /// The body of `enqueue`, inside a caller's transaction.
    async fn enqueue_in(
        tx: &mut Transaction<'static, Sqlite>,
        cmd: &NewCommand,
        enrollment_ids: &[String],
    ) -> StoreResult<Vec<EnqueueResult>> {
        let ids = json_array(enrollment_ids)?;
        sqlx::query(rows::INSERT_COMMAND)
            .bind(&cmd.command_uuid)
            .bind(&cmd.request_type)
            .bind(&cmd.payload)
            .bind(cmd.priority)
            .bind(cmd.now)
            .bind(cmd.payload_sealed)
            .execute(&mut **tx)
            .await?;
        // Only the unknown IDs come back (usually none): fetching the known ones cost a row per
        // target, 100k rows for a fleet-wide command.
        let unknown: Vec<String> = sqlx::query_scalar(
            "SELECT j.value FROM json_each($1) j \
             WHERE NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.id = j.value)",
        )
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
        // Writers are serialized (BEGIN IMMEDIATE), so MAX(seq) + array index is monotonic.
        let base: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM queue_entries")
            .fetch_one(&mut **tx)
            .await?;
        // `WHERE TRUE` keeps SQLite from parsing `ON CONFLICT` as a join constraint.
        sqlx::query(
            "INSERT INTO queue_entries (enrollment_id, command_uuid, status, priority, seq, enqueued_at) \
             SELECT e.id, $2, 'Pending', $3, $4 + j.key, $5 \
             FROM json_each($1) j JOIN enrollments e ON e.id = j.value WHERE TRUE \
             ON CONFLICT (enrollment_id, command_uuid) DO NOTHING",
        )
        .bind(&ids)
        .bind(&cmd.command_uuid)
        .bind(cmd.priority)
        .bind(base)
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

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
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
        let rows: Vec<ReportRow> = if rec.device_facts.is_none() {
            // The common case: the whole report, transaction included, is one batch, so one
            // round trip to the writer's worker thread instead of one per statement (those
            // hand-offs were the largest cost of a report). In its own task: a batch that
            // holds BEGIN must not be abandoned half-way by a client that hangs up.
            let writer = self.writer.clone();
            let rec = rec.clone();
            tokio::spawn(async move { report_batch(&writer, &rec).await })
                .await
                .map_err(|e| StoreError::Config(format!("command report task: {e}")))??
        } else {
            let mut tx = self.write().await?;
            let rows = bind_report(sqlx::query_as(REPORT_BATCH), rec)
                .fetch_all(&mut *tx)
                .await?;
            if rows.iter().any(|r| r.tag == "enrolled")
                && let Some(f) = &rec.device_facts
            {
                rows::store_device_facts!(&rec.enrollment_id, f, rec.now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            rows
        };
        if !rows.iter().any(|r| r.tag == "enrolled") {
            return Ok(ReportOutcome {
                not_enrolled: true,
                ..ReportOutcome::default()
            });
        }
        let mut outcome = ReportOutcome {
            unknown_command: result.is_some() && !rows.iter().any(|r| r.tag == "stored"),
            ..ReportOutcome::default()
        };
        for row in rows {
            if row.tag == "next"
                && let (Some(command_uuid), Some(request_type), Some(payload), Some(sealed)) = (
                    row.command_uuid,
                    row.request_type,
                    row.payload,
                    row.payload_sealed,
                )
            {
                outcome.next = Some(super::DeliveredCommand {
                    command_uuid,
                    request_type,
                    payload,
                    payload_sealed: sealed,
                });
            }
        }
        Ok(outcome)
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
        let mut q = QueryBuilder::<Sqlite>::new(rows::ESCROWED_PIN_SELECT);
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
        let mut q = QueryBuilder::<Sqlite>::new(DEVICE_SELECT);
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
        // Delivery and cancel both take the write lock, so one of them sees the other's result.
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

super::push::impl_push_store!(SqliteStore);
super::admin::impl_admin_store!(SqliteStore);
super::identity::impl_identity_store!(SqliteStore);
super::dep::impl_dep_store!(SqliteStore, sqlx::Sqlite, sqlite_leader);
super::ade::impl_ade_store!(SqliteStore);
