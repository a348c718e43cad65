//! Storage for Recovery Lock (migration `0016_recovery_lock.sql`): every password Russet asked
//! a Mac to set — or the clear — escrowed (sealed) together with its `SetRecoveryLock`, and
//! what became of it. Written once for both backends (`impl_recovery_lock_store!`).
//!
//! Like the unlock PINs, the rows are never deleted and have no foreign key: a Mac whose
//! record was deleted still starts in recovery only with its password.

use super::{NewCommand, PinFilter, QueueStatus, StoreError, StoreResult};
use async_trait::async_trait;

/// What a `SetRecoveryLock` does (Apple: an empty `NewPassword` clears the lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryLockKind {
    Set,
    Clear,
}

impl RecoveryLockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryLockKind::Set => "set",
            RecoveryLockKind::Clear => "clear",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "set" => Some(RecoveryLockKind::Set),
            "clear" => Some(RecoveryLockKind::Clear),
            _ => None,
        }
    }
}

/// Where an escrowed password stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryLockState {
    /// Queued; once the Mac acknowledged it (`acknowledged_at`), waiting for its verification.
    Pending,
    /// The Mac answered `PasswordVerified` true (a clear: acknowledged).
    Verified,
    /// The Mac refused the change, or did not verify the password.
    Failed,
    /// A later password was verified on the same Mac.
    Superseded,
}

impl RecoveryLockState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryLockState::Pending => "pending",
            RecoveryLockState::Verified => "verified",
            RecoveryLockState::Failed => "failed",
            RecoveryLockState::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => RecoveryLockState::Pending,
            "verified" => RecoveryLockState::Verified,
            "failed" => RecoveryLockState::Failed,
            "superseded" => RecoveryLockState::Superseded,
            _ => return None,
        })
    }
}

/// A password to escrow together with its `SetRecoveryLock`.
#[derive(Debug, Clone)]
pub struct RecoveryLockEscrow {
    pub command_uuid: String,
    /// Device-channel ID the command is queued for.
    pub device_id: String,
    pub serial_number: Option<String>,
    pub kind: RecoveryLockKind,
    /// The new password, sealed (`Sealed::RecoveryLockPassword`); an empty one for a clear.
    pub password_sealed: Vec<u8>,
    pub issued_by: String,
    pub now: i64,
}

/// What [`RecoveryLockStore::enqueue_recovery_lock`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryLockQueued {
    Queued,
    /// The device has no enabled device-channel enrollment: nothing written.
    NotEnrolled,
    /// An earlier change (this command) has not reached the Mac yet: it would run first, so
    /// the new one's `CurrentPassword` would be wrong. Nothing written.
    ChangeInFlight(String),
}

/// An escrowed password (still sealed) and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowedRecoveryLock {
    pub id: i64,
    pub command_uuid: String,
    pub device_id: String,
    pub serial_number: Option<String>,
    pub kind: RecoveryLockKind,
    pub password_sealed: Vec<u8>,
    pub issued_by: String,
    pub created_at: i64,
    pub state: RecoveryLockState,
    pub acknowledged_at: Option<i64>,
    pub verify_command_uuid: Option<String>,
    pub settled_at: Option<i64>,
    /// Why it failed (the Mac's ErrorChain, or a verification that said no).
    pub failure: Option<String>,
    /// The `SetRecoveryLock` on the device's queue, while the device exists.
    pub queue_status: Option<QueueStatus>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RecoveryLockRow {
    id: i64,
    command_uuid: String,
    device_id: String,
    serial_number: Option<String>,
    kind: String,
    password_sealed: Vec<u8>,
    issued_by: String,
    created_at: i64,
    state: String,
    acknowledged_at: Option<i64>,
    verify_command_uuid: Option<String>,
    settled_at: Option<i64>,
    failure: Option<String>,
    queue_status: Option<String>,
}

impl TryFrom<RecoveryLockRow> for EscrowedRecoveryLock {
    type Error = StoreError;

    fn try_from(r: RecoveryLockRow) -> Result<Self, StoreError> {
        let bad = |what: &str, v: &str| StoreError::Config(format!("stored {what} {v:?}"));
        Ok(EscrowedRecoveryLock {
            kind: RecoveryLockKind::parse(&r.kind).ok_or_else(|| bad("kind", &r.kind))?,
            state: RecoveryLockState::parse(&r.state).ok_or_else(|| bad("state", &r.state))?,
            queue_status: r.queue_status.as_deref().and_then(QueueStatus::parse),
            id: r.id,
            command_uuid: r.command_uuid,
            device_id: r.device_id,
            serial_number: r.serial_number,
            password_sealed: r.password_sealed,
            issued_by: r.issued_by,
            created_at: r.created_at,
            acknowledged_at: r.acknowledged_at,
            verify_command_uuid: r.verify_command_uuid,
            settled_at: r.settled_at,
            failure: r.failure,
        })
    }
}

/// The escrow rows with the state of their `SetRecoveryLock` on the device channel's queue.
pub(crate) const RECOVERY_LOCK_SELECT: &str = "SELECT r.id, r.command_uuid, r.device_id, \
     r.serial_number, r.kind, r.password_sealed, r.issued_by, r.created_at, r.state, \
     r.acknowledged_at, r.verify_command_uuid, r.settled_at, r.failure, q.status AS queue_status \
     FROM recovery_lock_passwords r LEFT JOIN queue_entries q \
     ON q.command_uuid = r.command_uuid AND q.enrollment_id = r.device_id";

#[async_trait]
pub trait RecoveryLockStore: Send + Sync {
    /// In one transaction, escrow the sealed password and queue its `SetRecoveryLock` for the
    /// device channel: the password exists before anything can deliver the command. Refused
    /// (nothing written) when the device has no enabled device channel, or while an earlier
    /// change is still on its way; the device channel's row is locked first, so two changes
    /// for one Mac on two servers are serialized and the second sees the first.
    async fn enqueue_recovery_lock(
        &self,
        cmd: &NewCommand,
        escrow: &RecoveryLockEscrow,
    ) -> StoreResult<RecoveryLockQueued>;

    /// Escrowed passwords matching the filter, newest first. Never deleted by anything.
    async fn recovery_lock_passwords(
        &self,
        filter: &PinFilter,
    ) -> StoreResult<Vec<EscrowedRecoveryLock>>;

    /// The escrow a command belongs to: its `SetRecoveryLock` or its `VerifyRecoveryLock`.
    async fn recovery_lock_of_command(
        &self,
        command_uuid: &str,
    ) -> StoreResult<Option<EscrowedRecoveryLock>>;

    /// The Mac acknowledged the `SetRecoveryLock`: note when (once) and, in the same
    /// transaction, queue `verify` (its `VerifyRecoveryLock`) for the device channel. False
    /// when it was already acknowledged or is no longer pending (nothing queued).
    async fn recovery_lock_acknowledged(
        &self,
        command_uuid: &str,
        verify: Option<&NewCommand>,
        now: i64,
    ) -> StoreResult<bool>;

    /// A pending escrow's outcome. `Verified` also supersedes the device's earlier escrows
    /// that were in effect (acknowledged, pending or verified). False when it was not pending.
    async fn recovery_lock_settled(
        &self,
        command_uuid: &str,
        state: RecoveryLockState,
        failure: Option<&str>,
        now: i64,
    ) -> StoreResult<bool>;
}

/// Implements [`RecoveryLockStore`] for a backend with a `pool`, `write()` and the core's
/// `enqueue_in`.
macro_rules! impl_recovery_lock_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::recovery_lock::RecoveryLockStore for $store {
            async fn enqueue_recovery_lock(
                &self,
                cmd: &$crate::store::NewCommand,
                escrow: &$crate::store::recovery_lock::RecoveryLockEscrow,
            ) -> $crate::store::StoreResult<$crate::store::recovery_lock::RecoveryLockQueued> {
                use $crate::store::recovery_lock::RecoveryLockQueued;
                let mut tx = self.write().await?;
                // A no-op UPDATE: a row lock on PostgreSQL (SQLite's write transaction already
                // holds the database), in the usual order (enrollments before queue entries).
                let enabled: Option<bool> = sqlx::query_scalar(
                    "UPDATE enrollments SET enabled = enabled WHERE id = $1 AND device_id = $1 \
                     RETURNING enabled",
                )
                .bind(&escrow.device_id)
                .fetch_optional(&mut *tx)
                .await?;
                if enabled != Some(true) {
                    return Ok(RecoveryLockQueued::NotEnrolled);
                }
                let in_flight: Option<String> = sqlx::query_scalar(
                    "SELECT r.command_uuid FROM recovery_lock_passwords r JOIN queue_entries q \
                     ON q.command_uuid = r.command_uuid AND q.enrollment_id = r.device_id \
                     WHERE r.device_id = $1 AND r.state = 'pending' AND r.acknowledged_at IS NULL \
                     AND q.status IN ('Pending', 'Sent', 'NotNow') ORDER BY r.id DESC LIMIT 1",
                )
                .bind(&escrow.device_id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(earlier) = in_flight {
                    return Ok(RecoveryLockQueued::ChangeInFlight(earlier));
                }
                sqlx::query(
                    "INSERT INTO recovery_lock_passwords (command_uuid, device_id, serial_number, \
                     kind, password_sealed, issued_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&escrow.command_uuid)
                .bind(&escrow.device_id)
                .bind(&escrow.serial_number)
                .bind(escrow.kind.as_str())
                .bind(&escrow.password_sealed)
                .bind(&escrow.issued_by)
                .bind(escrow.now)
                .execute(&mut *tx)
                .await?;
                Self::enqueue_in(&mut tx, cmd, std::slice::from_ref(&escrow.device_id)).await?;
                tx.commit().await?;
                Ok(RecoveryLockQueued::Queued)
            }

            async fn recovery_lock_passwords(
                &self,
                filter: &$crate::store::PinFilter,
            ) -> $crate::store::StoreResult<
                Vec<$crate::store::recovery_lock::EscrowedRecoveryLock>,
            > {
                use $crate::store::recovery_lock::{RECOVERY_LOCK_SELECT, RecoveryLockRow};
                let mut q = sqlx::QueryBuilder::<$db>::new(RECOVERY_LOCK_SELECT);
                q.push(" WHERE TRUE");
                if let Some(serial) = &filter.serial {
                    q.push(" AND r.serial_number = ").push_bind(serial.clone());
                }
                if let Some(udid) = &filter.udid {
                    q.push(" AND r.device_id = ").push_bind(udid.clone());
                }
                q.push(" ORDER BY r.id DESC");
                let rows: Vec<RecoveryLockRow> = q.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn recovery_lock_of_command(
                &self,
                command_uuid: &str,
            ) -> $crate::store::StoreResult<
                Option<$crate::store::recovery_lock::EscrowedRecoveryLock>,
            > {
                use $crate::store::recovery_lock::{RECOVERY_LOCK_SELECT, RecoveryLockRow};
                let row: Option<RecoveryLockRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{RECOVERY_LOCK_SELECT} WHERE r.command_uuid = $1 \
                     OR r.verify_command_uuid = $1 ORDER BY r.id DESC LIMIT 1"
                )))
                .bind(command_uuid)
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn recovery_lock_acknowledged(
                &self,
                command_uuid: &str,
                verify: Option<&$crate::store::NewCommand>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.write().await?;
                let device: Option<String> = sqlx::query_scalar(
                    "UPDATE recovery_lock_passwords SET acknowledged_at = $2, \
                     verify_command_uuid = $3 \
                     WHERE command_uuid = $1 AND state = 'pending' AND acknowledged_at IS NULL \
                     RETURNING device_id",
                )
                .bind(command_uuid)
                .bind(now)
                .bind(verify.map(|v| v.command_uuid.clone()))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(device) = device else {
                    return Ok(false);
                };
                if let Some(v) = verify {
                    Self::enqueue_in(&mut tx, v, std::slice::from_ref(&device)).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn recovery_lock_settled(
                &self,
                command_uuid: &str,
                state: $crate::store::recovery_lock::RecoveryLockState,
                failure: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::recovery_lock::RecoveryLockState;
                let mut tx = self.write().await?;
                let settled: Option<(i64, String)> = sqlx::query_as(
                    "UPDATE recovery_lock_passwords SET state = $2, settled_at = $3, failure = $4 \
                     WHERE command_uuid = $1 AND state = 'pending' RETURNING id, device_id",
                )
                .bind(command_uuid)
                .bind(state.as_str())
                .bind(now)
                .bind(failure)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((id, device)) = settled else {
                    return Ok(false);
                };
                if state == RecoveryLockState::Verified {
                    // The Mac now has this password: the earlier ones it had are history.
                    sqlx::query(
                        "UPDATE recovery_lock_passwords SET state = 'superseded', settled_at = $3 \
                         WHERE device_id = $1 AND id < $2 AND acknowledged_at IS NOT NULL \
                         AND state IN ('pending', 'verified')",
                    )
                    .bind(&device)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}
pub(crate) use impl_recovery_lock_store;
