//! Storage for FileVault escrow (migration `0015_filevault.sql`): the escrow key pairs, every
//! personal recovery key a Mac sent, and the rotations asked for. Written once for both
//! backends (`impl_filevault_store!`). Nothing here is ever deleted.

use super::StoreResult;
use async_trait::async_trait;

/// An escrow key pair (the private key sealed as `Sealed::FileVaultEscrowKey { id }`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EscrowKeyRecord {
    pub generation: i64,
    /// SHA-256 of `cert_der`, hex.
    pub id: String,
    pub cert_der: Vec<u8>,
    pub key_sealed: Vec<u8>,
    pub created_at: i64,
}

/// What became of a key a Mac sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Opened, and shaped like Apple's recovery keys.
    Escrowed,
    /// Opened, but not Apple's shape: kept, flagged.
    Unexpected,
    /// Did not open with any escrow key: the envelope is kept as received.
    Undecryptable,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Escrowed => "escrowed",
            KeyState::Unexpected => "unexpected",
            KeyState::Undecryptable => "undecryptable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "escrowed" => KeyState::Escrowed,
            "unexpected" => KeyState::Unexpected,
            "undecryptable" => KeyState::Undecryptable,
            _ => return None,
        })
    }
}

/// One key a Mac sent (sealed values: `Sealed::FileVaultRecoveryKey { id }`,
/// `Sealed::FileVaultEnvelope { id }`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileVaultKeyRecord {
    pub id: String,
    pub device_id: String,
    pub serial_number: Option<String>,
    /// [`KeyState`] as text.
    pub state: String,
    pub key_sealed: Option<Vec<u8>>,
    pub envelope_sealed: Vec<u8>,
    pub envelope_sha256: String,
    /// `SecurityInfo` or `RotateFileVaultKey`.
    pub source: String,
    pub command_uuid: Option<String>,
    pub escrow_key_id: Option<String>,
    pub received_at: i64,
    pub last_reported_at: i64,
    pub verified_at: Option<i64>,
    pub superseded_at: Option<i64>,
}

/// A rotation asked for: `state` `pending`, `rotated` or `failed`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RotationRecord {
    pub command_uuid: String,
    pub device_id: String,
    pub serial_number: Option<String>,
    /// The escrowed key that unlocked it.
    pub key_id: String,
    pub requested_by: String,
    pub state: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// Whose keys: by serial number (every UDID the Mac ever had) or by UDID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    pub serial: Option<String>,
    pub udid: Option<String>,
}

#[async_trait]
pub trait FileVaultStore: Send + Sync {
    /// Every escrow key pair, newest generation first.
    async fn filevault_escrow_keys(&self) -> StoreResult<Vec<EscrowKeyRecord>>;
    /// Adds a key pair unless its generation exists (another process made it first): whether
    /// this one was stored.
    async fn add_filevault_escrow_key(&self, key: &EscrowKeyRecord) -> StoreResult<bool>;

    /// Keys by serial or UDID (both: either), newest first. Neither: none.
    async fn filevault_keys(&self, filter: &KeyFilter) -> StoreResult<Vec<FileVaultKeyRecord>>;
    /// Stores a new key; when `supersede` the Mac's (serial's, else UDID's) earlier keys that
    /// were current are marked superseded at its `received_at`, in the same transaction.
    async fn add_filevault_key(&self, key: &FileVaultKeyRecord, supersede: bool)
    -> StoreResult<()>;
    /// The Mac reported this key again as its current one.
    async fn filevault_key_reported(&self, id: &str, now: i64) -> StoreResult<()>;

    /// Records a rotation asked for.
    async fn add_filevault_rotation(&self, rotation: &RotationRecord) -> StoreResult<()>;
    async fn filevault_rotation(&self, command_uuid: &str) -> StoreResult<Option<RotationRecord>>;
    /// Rotations of a device, newest first.
    async fn filevault_rotations(&self, device_id: &str) -> StoreResult<Vec<RotationRecord>>;
    /// A rotation ended: `rotated` (its unlock key is then proven: `verified_at`) or `failed`
    /// with the Mac's error. Only a pending one changes; whether it did.
    async fn finish_filevault_rotation(
        &self,
        command_uuid: &str,
        rotated: bool,
        error: Option<&str>,
        now: i64,
    ) -> StoreResult<bool>;

    /// The pending SecurityInfo re-ask of a Mac still owing its key: (attempts, next_ask_at).
    async fn filevault_ask(&self, device_id: &str) -> StoreResult<Option<(i64, i64)>>;
    /// Sets (or creates) a Mac's re-ask; false when the device is gone.
    async fn set_filevault_ask(
        &self,
        device_id: &str,
        attempts: i64,
        next_ask_at: i64,
    ) -> StoreResult<bool>;
    /// Re-asks due at `now`, soonest first, at most `limit`: (device, attempts).
    async fn filevault_asks_due(&self, now: i64, limit: u32) -> StoreResult<Vec<(String, i64)>>;
    /// The key arrived (or there is nothing to wait for): no more re-asks.
    async fn clear_filevault_ask(&self, device_id: &str) -> StoreResult<()>;

    /// Schedules a rotation after a reveal; an earlier schedule stands. False when the
    /// device is gone or one was scheduled already.
    async fn schedule_filevault_rotation(&self, device_id: &str, due_at: i64) -> StoreResult<bool>;
    /// Devices whose scheduled rotation is due at `now`, soonest first, at most `limit`.
    async fn filevault_rotations_due(&self, now: i64, limit: u32) -> StoreResult<Vec<String>>;
    async fn clear_filevault_rotation_due(&self, device_id: &str) -> StoreResult<()>;
}

#[doc(hidden)]
pub const KEY_COLUMNS: &str = "id, device_id, serial_number, state, key_sealed, \
     envelope_sealed, envelope_sha256, source, command_uuid, escrow_key_id, received_at, \
     last_reported_at, verified_at, superseded_at";

#[doc(hidden)]
pub const ROTATION_COLUMNS: &str = "command_uuid, device_id, serial_number, key_id, \
     requested_by, state, error, created_at, finished_at";

macro_rules! impl_filevault_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::filevault::FileVaultStore for $store {
            async fn filevault_escrow_keys(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::filevault::EscrowKeyRecord>> {
                Ok(sqlx::query_as(
                    "SELECT generation, id, cert_der, key_sealed, created_at \
                     FROM filevault_escrow_keys ORDER BY generation DESC",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn add_filevault_escrow_key(
                &self,
                key: &$crate::store::filevault::EscrowKeyRecord,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.write().await?;
                let done = sqlx::query(
                    "INSERT INTO filevault_escrow_keys \
                     (generation, id, cert_der, key_sealed, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(key.generation)
                .bind(&key.id)
                .bind(&key.cert_der)
                .bind(&key.key_sealed)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn filevault_keys(
                &self,
                filter: &$crate::store::filevault::KeyFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::filevault::FileVaultKeyRecord>> {
                if filter.serial.is_none() && filter.udid.is_none() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT {} FROM filevault_keys \
                     WHERE serial_number = $1 OR device_id = $2 \
                     ORDER BY received_at DESC, id DESC",
                    $crate::store::filevault::KEY_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&filter.serial)
                    .bind(&filter.udid)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn add_filevault_key(
                &self,
                key: &$crate::store::filevault::FileVaultKeyRecord,
                supersede: bool,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                if supersede {
                    // The serial names the Mac across re-enrollments; a Mac that never said
                    // its serial is named by its UDID.
                    sqlx::query(
                        "UPDATE filevault_keys SET superseded_at = $1 \
                         WHERE superseded_at IS NULL AND state <> 'undecryptable' AND \
                         ((CAST($2 AS TEXT) IS NOT NULL AND serial_number = $2) OR \
                          (CAST($2 AS TEXT) IS NULL AND device_id = $3))",
                    )
                    .bind(key.received_at)
                    .bind(&key.serial_number)
                    .bind(&key.device_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let sql = format!(
                    "INSERT INTO filevault_keys ({}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    $crate::store::filevault::KEY_COLUMNS
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&key.id)
                    .bind(&key.device_id)
                    .bind(&key.serial_number)
                    .bind(&key.state)
                    .bind(&key.key_sealed)
                    .bind(&key.envelope_sealed)
                    .bind(&key.envelope_sha256)
                    .bind(&key.source)
                    .bind(&key.command_uuid)
                    .bind(&key.escrow_key_id)
                    .bind(key.received_at)
                    .bind(key.last_reported_at)
                    .bind(key.verified_at)
                    .bind(key.superseded_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn filevault_key_reported(
                &self,
                id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                sqlx::query("UPDATE filevault_keys SET last_reported_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn add_filevault_rotation(
                &self,
                r: &$crate::store::filevault::RotationRecord,
            ) -> $crate::store::StoreResult<()> {
                let sql = format!(
                    "INSERT INTO filevault_rotations ({}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    $crate::store::filevault::ROTATION_COLUMNS
                );
                let mut tx = self.write().await?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&r.command_uuid)
                    .bind(&r.device_id)
                    .bind(&r.serial_number)
                    .bind(&r.key_id)
                    .bind(&r.requested_by)
                    .bind(&r.state)
                    .bind(&r.error)
                    .bind(r.created_at)
                    .bind(r.finished_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn filevault_rotation(
                &self,
                command_uuid: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::filevault::RotationRecord>> {
                let sql = format!(
                    "SELECT {} FROM filevault_rotations WHERE command_uuid = $1",
                    $crate::store::filevault::ROTATION_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(command_uuid)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn filevault_rotations(
                &self,
                device_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::filevault::RotationRecord>> {
                let sql = format!(
                    "SELECT {} FROM filevault_rotations WHERE device_id = $1 \
                     ORDER BY created_at DESC, command_uuid DESC",
                    $crate::store::filevault::ROTATION_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(device_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn finish_filevault_rotation(
                &self,
                command_uuid: &str,
                rotated: bool,
                error: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.write().await?;
                let done = sqlx::query(
                    "UPDATE filevault_rotations SET state = $1, error = $2, finished_at = $3 \
                     WHERE command_uuid = $4 AND state = 'pending'",
                )
                .bind(if rotated { "rotated" } else { "failed" })
                .bind(error)
                .bind(now)
                .bind(command_uuid)
                .execute(&mut *tx)
                .await?;
                if rotated && done.rows_affected() == 1 {
                    sqlx::query(
                        "UPDATE filevault_keys SET verified_at = $1 WHERE id = \
                         (SELECT key_id FROM filevault_rotations WHERE command_uuid = $2)",
                    )
                    .bind(now)
                    .bind(command_uuid)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn filevault_ask(
                &self,
                device_id: &str,
            ) -> $crate::store::StoreResult<Option<(i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT attempts, next_ask_at FROM filevault_asks WHERE device_id = $1",
                )
                .bind(device_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn set_filevault_ask(
                &self,
                device_id: &str,
                attempts: i64,
                next_ask_at: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.write().await?;
                let done = sqlx::query(
                    "INSERT INTO filevault_asks (device_id, attempts, next_ask_at) \
                     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE id = $1) \
                     ON CONFLICT (device_id) DO UPDATE SET attempts = excluded.attempts, \
                     next_ask_at = excluded.next_ask_at",
                )
                .bind(device_id)
                .bind(attempts)
                .bind(next_ask_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn filevault_asks_due(
                &self,
                now: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT device_id, attempts FROM filevault_asks WHERE next_ask_at <= $1 \
                     ORDER BY next_ask_at, device_id LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn clear_filevault_ask(&self, device_id: &str) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                sqlx::query("DELETE FROM filevault_asks WHERE device_id = $1")
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn schedule_filevault_rotation(
                &self,
                device_id: &str,
                due_at: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.write().await?;
                let done = sqlx::query(
                    "INSERT INTO filevault_rotate_due (device_id, due_at) \
                     SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM devices WHERE id = $1) \
                     ON CONFLICT (device_id) DO NOTHING",
                )
                .bind(device_id)
                .bind(due_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn filevault_rotations_due(
                &self,
                now: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT device_id FROM filevault_rotate_due WHERE due_at <= $1 \
                     ORDER BY due_at, device_id LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn clear_filevault_rotation_due(
                &self,
                device_id: &str,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.write().await?;
                sqlx::query("DELETE FROM filevault_rotate_due WHERE device_id = $1")
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_filevault_store;
