//! PostgreSQL backend. Several Russet processes may share one database: every statement that
//! races with another process is either a conditional UPDATE or runs under a row lock.

use super::rows::{
    self, DEVICE_SELECT, DeliveredRow, DeviceRow, QUEUE_SELECT, QueueRow, USER_CHANNEL_COLUMNS,
    UserChannelRow, clamp_limit, device_views, is_fk_violation, queue_views,
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
        let known: Vec<String> =
            sqlx::query_scalar("SELECT id FROM enrollments WHERE id = ANY($1)")
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
        let next: Option<DeliveredRow> = sqlx::query_as(AssertSqlSafe(
            // SKIP LOCKED: a row locked by a concurrent cancel (or another process delivering
            // it) is passed over instead of waited for; after such a wait Postgres re-checks
            // only that row and could return nothing although another command is eligible.
            format!("{} LIMIT 1 FOR UPDATE OF q SKIP LOCKED", rows::PICK_NEXT),
        ))
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
