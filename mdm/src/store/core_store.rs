//! The core [`Store`](super::Store) (check-in, command loop, devices, lock/wipe escrow), written
//! once for both backends (`impl_core_store!`). The SQL it runs lives in `rows`.
//!
//! What differs between SQLite and PostgreSQL stays in each backend, as inherent methods the
//! macro calls:
//!
//! - `write(&self) -> StoreResult<WriteTx>`: a write transaction (SQLite takes its single
//!   writer's turn, then `BEGIN IMMEDIATE`; PostgreSQL a plain `BEGIN`). `WriteTx` is the
//!   backend module's type (a `sqlx::Transaction` or a wrapper that dereferences to the
//!   connection), named by the macros as written: they expand in that module;
//! - `write_one(&self)`: a connection for one write statement outside a transaction (SQLite:
//!   the writer's, in its turn; PostgreSQL: any pooled one), used as `&mut *self.write_one()`;
//! - `user_channels(&self, device_ids: &[&str])`: user channels of a page of devices (the ID
//!   list is bound as JSON on SQLite, as an array on PostgreSQL);
//! - `enqueue_targets(tx, cmd, enrollment_ids)`: queue a stored command for the known targets
//!   and return the unknown ones (the ID list expanded with `json_each` / `UNNEST`);
//! - `report_round(&self, rec)`: a command report in one round trip, atomic on its own (SQLite:
//!   one multi-statement batch with its transaction; PostgreSQL: one statement of CTEs);
//! - `report_round_in(tx, rec)`: the same report inside a caller's transaction (when device
//!   facts are stored with it).

use super::{DeliveredCommand, EnqueueResult, ReportOutcome};
use std::collections::HashSet;

/// What one command report did, however the backend ran it.
#[derive(Debug, Default)]
pub(crate) struct ReportRound {
    /// The enrollment exists and is enabled (nothing changed otherwise).
    pub enrolled: bool,
    /// The result landed on an open queue entry: that command's request type.
    pub stored: Option<String>,
    /// The next command, already marked `Sent`.
    pub next: Option<DeliveredCommand>,
}

impl ReportRound {
    /// The answer to a report that carried a result (`has_result`) or was an `Idle`.
    pub fn outcome(self, has_result: bool) -> ReportOutcome {
        if !self.enrolled {
            return ReportOutcome {
                not_enrolled: true,
                ..ReportOutcome::default()
            };
        }
        ReportOutcome {
            unknown_command: has_result && self.stored.is_none(),
            stored_request_type: self.stored,
            next: self.next,
            ..ReportOutcome::default()
        }
    }
}

/// The next command from a report's nullable columns: present only when all of them are.
pub(crate) fn delivered(
    command_uuid: Option<String>,
    request_type: Option<String>,
    payload: Option<Vec<u8>>,
    payload_sealed: Option<bool>,
) -> Option<DeliveredCommand> {
    match (command_uuid, request_type, payload, payload_sealed) {
        (Some(command_uuid), Some(request_type), Some(payload), Some(payload_sealed)) => {
            Some(DeliveredCommand {
                command_uuid,
                request_type,
                payload,
                payload_sealed,
            })
        }
        _ => None,
    }
}

/// The per-target answer of an enqueue, in the caller's order (duplicates included).
/// Targets queued per statement. Each chunk takes its queue order after the previous one's
/// (SQLite numbers from `MAX(seq)`, PostgreSQL's sequence counts on), so FIFO holds across
/// chunks.
#[cfg(not(test))]
pub(crate) const ENQUEUE_CHUNK: usize = 10_000;
/// Small in tests, so the conformance suite's bulk enqueue spans several chunks.
#[cfg(test)]
pub(crate) const ENQUEUE_CHUNK: usize = 128;

pub(crate) fn enqueue_results(
    enrollment_ids: &[String],
    unknown: Vec<String>,
) -> Vec<EnqueueResult> {
    let unknown: HashSet<String> = unknown.into_iter().collect();
    enrollment_ids
        .iter()
        .map(|id| EnqueueResult {
            enrollment_id: id.clone(),
            queued: !unknown.contains(id),
        })
        .collect()
}

/// Implements [`Store`](super::Store) for a backend struct with a `pool` field and the inherent
/// methods listed in this module's documentation. `$db` is its `sqlx::Database`, `$name` what
/// `backend()` answers.
macro_rules! impl_core_store {
    ($store:ty, $db:ty, $name:literal) => {
        impl $store {
            /// The body of `enqueue`, inside a caller's transaction: store the command (once),
            /// then queue it.
            async fn enqueue_in(
                tx: &mut WriteTx,
                cmd: &$crate::store::NewCommand,
                enrollment_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::EnqueueResult>> {
                sqlx::query($crate::store::rows::INSERT_COMMAND)
                    .bind(&cmd.command_uuid)
                    .bind(&cmd.request_type)
                    .bind(&cmd.payload)
                    .bind(cmd.priority)
                    .bind(cmd.now)
                    .bind(cmd.payload_sealed)
                    .execute(&mut **tx)
                    .await?;
                // In chunks: a fleet-wide command names 100k targets, and each statement holds
                // its list several times over (bound, copied, expanded by the database).
                let mut unknown = Vec::new();
                for chunk in enrollment_ids.chunks($crate::store::core_store::ENQUEUE_CHUNK) {
                    unknown.extend(Self::enqueue_targets(tx, cmd, chunk).await?);
                }
                Ok($crate::store::core_store::enqueue_results(
                    enrollment_ids,
                    unknown,
                ))
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $name
            }

            async fn ping(&self) -> $crate::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn queue_depth(&self) -> $crate::store::StoreResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT status, COUNT(*) FROM queue_entries \
                     WHERE status IN ('Pending', 'Sent', 'NotNow') GROUP BY status",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            fn pool_use(&self) -> $crate::store::PoolUse {
                // The read/write pool (SQLite's single-connection writer is not counted: it
                // is busy exactly while a write transaction runs).
                $crate::store::PoolUse {
                    open: self.pool.size(),
                    idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                    max: self.pool.options().get_max_connections(),
                }
            }

            async fn identity_owner(
                &self,
                cert_hash: &str,
            ) -> $crate::store::StoreResult<Option<String>> {
                Ok(sqlx::query_scalar($crate::store::rows::IDENTITY_OWNER)
                    .bind(cert_hash)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn authenticate(
                &self,
                rec: &$crate::store::AuthenticateRecord,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::rows;
                let mut tx = self.write().await?;
                let owner: Option<String> = sqlx::query_scalar(rows::IDENTITY_OWNER)
                    .bind(&rec.cert_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                if owner.is_some_and(|o| o != rec.device_id) {
                    return Err($crate::store::StoreError::IdentityConflict);
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
                    return Err($crate::store::StoreError::IdentityConflict);
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

            async fn token_update(
                &self,
                rec: &$crate::store::TokenUpdateRecord,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::rows;
                let mut tx = self.write().await?;
                let known: Option<String> = sqlx::query_scalar(rows::DEVICE_EXISTS)
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
                    Err(e) if rows::is_fk_violation(&e) => return Ok(false),
                    r => r?,
                };
                tx.commit().await?;
                Ok(true)
            }

            async fn check_out(
                &self,
                enrollment_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query($crate::store::rows::CHECK_OUT)
                    .bind(enrollment_id)
                    .bind(now)
                    .execute(&mut *self.write_one().await?)
                    .await?;
                Ok(())
            }

            async fn set_bootstrap_token(
                &self,
                device_id: &str,
                sealed: Option<&[u8]>,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query($crate::store::rows::INSERT_BOOTSTRAP)
                    .bind(device_id)
                    .bind(sealed)
                    .bind(now)
                    .execute(&mut *self.write_one().await?)
                    .await?;
                Ok(())
            }

            async fn bootstrap_token(
                &self,
                device_id: &str,
            ) -> $crate::store::StoreResult<Option<Vec<u8>>> {
                let newest: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar($crate::store::rows::NEWEST_BOOTSTRAP)
                        .bind(device_id)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(newest.flatten())
            }

            async fn enrollment_enabled(
                &self,
                enrollment_id: &str,
            ) -> $crate::store::StoreResult<Option<bool>> {
                Ok(sqlx::query_scalar($crate::store::rows::ENROLLMENT_ENABLED)
                    .bind(enrollment_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn command_report(
                &self,
                rec: &$crate::store::ReportRecord,
            ) -> $crate::store::StoreResult<$crate::store::ReportOutcome> {
                let round = match &rec.device_facts {
                    // The hot path: one round trip to the database, no explicit transaction
                    // around it (the backend makes the report atomic on its own).
                    None => self.report_round(rec).await?,
                    // Facts go to the device row in the same transaction as the report.
                    Some(facts) => {
                        let mut tx = self.write().await?;
                        let round = Self::report_round_in(&mut tx, rec).await?;
                        if round.enrolled {
                            $crate::store::rows::store_device_facts!(
                                &rec.enrollment_id,
                                facts,
                                rec.now
                            )
                            .execute(&mut *tx)
                            .await?;
                        }
                        tx.commit().await?;
                        round
                    }
                };
                Ok(round.outcome(rec.result.is_some()))
            }

            async fn enqueue(
                &self,
                cmd: &$crate::store::NewCommand,
                enrollment_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::EnqueueResult>> {
                let mut tx = self.write().await?;
                let results = Self::enqueue_in(&mut tx, cmd, enrollment_ids).await?;
                tx.commit().await?;
                Ok(results)
            }

            async fn enqueue_escrowed(
                &self,
                cmd: &$crate::store::NewCommand,
                escrow: &$crate::store::PinEscrowRecord,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::rows;
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

            async fn escrowed_pins(
                &self,
                filter: &$crate::store::PinFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::EscrowedPin>> {
                use $crate::store::rows;
                let mut q = sqlx::QueryBuilder::<$db>::new(rows::ESCROWED_PIN_SELECT);
                q.push(" WHERE TRUE");
                if let Some(serial) = &filter.serial {
                    q.push(" AND p.serial_number = ").push_bind(serial.clone());
                }
                if let Some(udid) = &filter.udid {
                    q.push(" AND p.device_id = ").push_bind(udid.clone());
                }
                q.push(" ORDER BY p.created_at DESC, p.id DESC");
                let found: Vec<rows::EscrowRow> = q.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows::escrow_views(found)?)
            }

            async fn list_devices(
                &self,
                filter: &$crate::store::DeviceFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::DeviceView>> {
                use $crate::store::rows;
                let mut q = sqlx::QueryBuilder::<$db>::new(rows::DEVICE_SELECT);
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
                    .push_bind(rows::clamp_limit(filter.limit));
                let devices: Vec<rows::DeviceRow> =
                    q.build_query_as().fetch_all(&self.pool).await?;
                if devices.is_empty() {
                    return Ok(Vec::new());
                }
                let ids: Vec<&str> = devices.iter().map(rows::DeviceRow::id).collect();
                let users = self.user_channels(&ids).await?;
                Ok(rows::device_views(devices, users))
            }

            async fn device(
                &self,
                device_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::DeviceView>> {
                let filter = $crate::store::DeviceFilter {
                    udid: Some(device_id.to_owned()),
                    limit: 1,
                    ..$crate::store::DeviceFilter::default()
                };
                Ok(<Self as $crate::store::Store>::list_devices(self, &filter)
                    .await?
                    .into_iter()
                    .next())
            }

            async fn devices_by_ids(
                &self,
                device_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::DeviceView>> {
                use $crate::store::rows;
                let mut out = Vec::with_capacity(device_ids.len());
                for chunk in device_ids.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(rows::DEVICE_SELECT);
                    q.push(" WHERE d.id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(") ORDER BY d.id");
                    let devices: Vec<rows::DeviceRow> =
                        q.build_query_as().fetch_all(&self.pool).await?;
                    if devices.is_empty() {
                        continue;
                    }
                    let ids: Vec<&str> = devices.iter().map(rows::DeviceRow::id).collect();
                    let users = self.user_channels(&ids).await?;
                    out.extend(rows::device_views(devices, users));
                }
                out.sort_by(|a, b| a.udid.cmp(&b.udid));
                Ok(out)
            }

            async fn delete_device(&self, device_id: &str) -> $crate::store::StoreResult<bool> {
                use $crate::store::rows;
                let mut tx = self.write().await?;
                // The queue goes with the device; the PIN records keep their command's state.
                sqlx::query(rows::SNAPSHOT_ESCROWED_PINS)
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                // Explicit: no foreign key cascades into queue_entries on PostgreSQL
                // (migration 0007). On SQLite the cascade would do it; deleting first is the same.
                sqlx::query(rows::DELETE_DEVICE_QUEUES)
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                let deleted = sqlx::query(rows::DELETE_DEVICE)
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
            ) -> $crate::store::StoreResult<Vec<$crate::store::QueueEntryView>> {
                use $crate::store::rows;
                let found: Vec<rows::QueueRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{} {}",
                    rows::QUEUE_SELECT,
                    rows::DEVICE_COMMANDS_TAIL
                )))
                .bind(device_id)
                .bind(rows::clamp_limit(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows::queue_views(found)?)
            }

            async fn command(
                &self,
                command_uuid: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::CommandView>> {
                use $crate::store::rows;
                let head: Option<(String, String, i64, Vec<u8>, bool)> =
                    sqlx::query_as(rows::COMMAND_HEAD)
                        .bind(command_uuid)
                        .fetch_optional(&self.pool)
                        .await?;
                let Some((command_uuid, request_type, created_at, payload, payload_sealed)) = head
                else {
                    return Ok(None);
                };
                let found: Vec<rows::QueueRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{} WHERE q.command_uuid = $1 ORDER BY q.enrollment_id",
                    rows::QUEUE_SELECT
                )))
                .bind(&command_uuid)
                .fetch_all(&self.pool)
                .await?;
                Ok(Some($crate::store::CommandView {
                    command_uuid,
                    request_type,
                    created_at,
                    payload,
                    payload_sealed,
                    entries: rows::queue_views(found)?,
                }))
            }

            async fn cancel_command(
                &self,
                command_uuid: &str,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::CancelOutcome> {
                use $crate::store::rows;
                // Exactly one of a cancel and a delivery wins. SQLite: both take the write
                // lock, so one sees the other's result. PostgreSQL: only `Pending` flips, under
                // the row lock the UPDATE takes —
                // - cancel first: the delivery's pick skips the locked row (Canceled once
                //   committed);
                // - delivery first: this UPDATE waits for its commit, re-checks
                //   `status = 'Pending'` (now Sent) and leaves the row; the next statement sees
                //   it as delivered.
                let mut tx = self.write().await?;
                let mut canceled: Vec<String> = sqlx::query_scalar(rows::CANCEL_PENDING)
                    .bind(command_uuid)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
                let already_delivered: Vec<(String, Option<i64>)> =
                    sqlx::query_as(rows::DELIVERED_ENTRIES)
                        .bind(command_uuid)
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                canceled.sort();
                Ok($crate::store::CancelOutcome {
                    canceled,
                    already_delivered,
                })
            }
        }
    };
}
pub(crate) use impl_core_store;
