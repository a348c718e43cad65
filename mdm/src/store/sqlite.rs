//! SQLite backend: one file, WAL, one writer at a time.

use super::rows;
use super::rows::{
    DEVICE_SELECT, DeliveredRow, DeviceRow, QUEUE_SELECT, QueueRow, USER_CHANNEL_COLUMNS,
    UserChannelRow, clamp_limit, device_views, is_fk_violation, queue_views,
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
            .connect_with(opts)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A write transaction. SQLite has one writer; a plain (deferred) `BEGIN` takes the write
    /// lock only at the first write, and two readers that both try to upgrade fail with
    /// SQLITE_BUSY without waiting (the busy handler cannot help a deadlock). `BEGIN IMMEDIATE`
    /// takes the write lock up front, so concurrent writers queue on the busy timeout instead.
    async fn write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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
        let known: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT e.id FROM json_each($1) j JOIN enrollments e ON e.id = j.value",
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
        let known: HashSet<String> = known.into_iter().collect();
        Ok(enrollment_ids
            .iter()
            .map(|id| EnqueueResult {
                enrollment_id: id.clone(),
                queued: known.contains(id),
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
        let mut tx = self.write().await?;
        let session: Option<Option<i64>> = sqlx::query_scalar(rows::TOUCH_ENROLLMENT)
            .bind(&rec.enrollment_id)
            .bind(rec.now)
            .bind(rec.result.is_none())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(session_started_at) = session else {
            return Ok(ReportOutcome {
                not_enrolled: true,
                ..ReportOutcome::default()
            });
        };
        if let Some(f) = &rec.device_facts {
            sqlx::query(rows::STORE_DEVICE_FACTS)
                .bind(&rec.enrollment_id)
                .bind(f.pin_required_for_lock)
                .bind(f.pin_required_for_erase)
                .bind(f.is_apple_silicon)
                .bind(&f.os_version)
                .bind(&f.build_version)
                .bind(&f.device_name)
                .bind(rec.now)
                .execute(&mut *tx)
                .await?;
        }
        let mut outcome = ReportOutcome::default();
        if let Some(result) = &rec.result {
            let stored = sqlx::query(rows::STORE_RESULT)
                .bind(&rec.enrollment_id)
                .bind(&result.command_uuid)
                .bind(result.status.queue_status().as_str())
                .bind(&result.raw)
                .bind(rec.now)
                .bind(result.status == ResultStatus::NotNow)
                .execute(&mut *tx)
                .await?;
            outcome.unknown_command = stored.rows_affected() == 0;
        }
        let next: Option<DeliveredRow> =
            sqlx::query_as(AssertSqlSafe(format!("{} LIMIT 1", rows::PICK_NEXT)))
                .bind(&rec.enrollment_id)
                .bind(session_started_at)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = next {
            sqlx::query(rows::MARK_SENT)
                .bind(&rec.enrollment_id)
                .bind(row.command_uuid())
                .bind(rec.now)
                .execute(&mut *tx)
                .await?;
            outcome.next = Some(row.into());
        }
        tx.commit().await?;
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
