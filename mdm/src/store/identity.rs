//! Storage for identity and enrollment: the SCEP CA (sealed key), issued identities, one-time
//! SCEP challenges and enrollment links.
//!
//! Written once for both backends (`impl_identity_store!`): every statement here is plain SQL
//! that SQLite and PostgreSQL read the same way. Each "use once" step is a single conditional
//! `UPDATE`, so concurrent requests (even on several PostgreSQL nodes) have exactly one winner.

use super::StoreResult;
use async_trait::async_trait;

/// The CA as stored: certificate PEM and the private key sealed under the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredCa {
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
    pub created_at: i64,
}

/// An identity certificate issued by the SCEP server.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IssuedCertificate {
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the certificate DER, lowercase hex (the key of identity bindings).
    pub sha256: String,
    pub subject: String,
    /// `PKCSReq` or `RenewalReq`.
    pub message_type: String,
    /// For a renewal: the SHA-256 of the identity that signed the request.
    pub renewed_from: Option<String>,
    pub not_after: i64,
    pub issued_at: i64,
}

/// What happened when a challenge was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeUse {
    /// Valid and now consumed: this request won it.
    Consumed,
    /// Consumed earlier.
    AlreadyUsed,
    Expired,
    Unknown,
}

/// What happened when an enrollment link was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkUse {
    /// One use counted.
    Accepted,
    Exhausted,
    Expired,
    Unknown,
}

/// A new enrollment link (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone)]
pub struct NewEnrollLink {
    pub hash: Vec<u8>,
    /// `None` = unlimited.
    pub uses: Option<i64>,
    /// `None` = never expires.
    pub expires_at: Option<i64>,
    pub created_by: String,
    pub now: i64,
}

/// A device whose identity certificate expires before a given time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExpiringIdentity {
    pub udid: String,
    pub serial_number: Option<String>,
    pub identity_cert_sha256: Option<String>,
    pub identity_not_after: i64,
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The stored CA, if one was created.
    async fn scep_ca(&self) -> StoreResult<Option<StoredCa>>;

    /// Store this CA unless one exists already, then return the one stored: the first node to
    /// start wins, every other node gets the winner's CA.
    async fn insert_scep_ca_if_absent(
        &self,
        cert_pem: &str,
        key_sealed: &[u8],
        now: i64,
    ) -> StoreResult<StoredCa>;

    /// Store a one-time challenge (its SHA-256).
    async fn insert_challenge(&self, hash: &[u8], expires_at: i64, now: i64) -> StoreResult<()>;

    /// Consume a challenge if it is known, unused and not expired (one winner under races).
    async fn consume_challenge(&self, hash: &[u8], now: i64) -> StoreResult<ChallengeUse>;

    /// Record an issued identity certificate.
    async fn record_issued_certificate(&self, rec: &IssuedCertificate) -> StoreResult<()>;

    /// Renewal: bind `new_hash` to the device `old_hash` is bound to (and make it the device's
    /// current identity). Returns that device, or `None` if the old identity is bound to none.
    async fn bind_renewed_identity(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_not_after: i64,
        now: i64,
    ) -> StoreResult<Option<String>>;

    /// Issued certificates, newest first (for reports and tests).
    async fn issued_certificates(&self, limit: u32) -> StoreResult<Vec<IssuedCertificate>>;

    async fn insert_enroll_link(&self, link: &NewEnrollLink) -> StoreResult<i64>;

    /// Count one use of a link if it is known, has uses left and has not expired.
    async fn use_enroll_link(&self, hash: &[u8], now: i64) -> StoreResult<LinkUse>;

    /// Set a setting unless it is set already; return the stored value (first writer wins).
    async fn setting_insert_if_absent(&self, key: &str, value: &str) -> StoreResult<String>;

    /// Devices whose current identity expires before `before` (Unix ms), soonest first.
    async fn expiring_identities(&self, before: i64) -> StoreResult<Vec<ExpiringIdentity>>;
}

#[doc(hidden)]
pub fn classify_challenge(row: Option<(Option<i64>, i64)>, now: i64) -> ChallengeUse {
    match row {
        None => ChallengeUse::Unknown,
        Some((Some(_), _)) => ChallengeUse::AlreadyUsed,
        Some((None, expires_at)) if expires_at <= now => ChallengeUse::Expired,
        // Lost a race to a concurrent consumer between the UPDATE and this read.
        Some((None, _)) => ChallengeUse::AlreadyUsed,
    }
}

#[doc(hidden)]
pub fn classify_link(row: Option<(Option<i64>, Option<i64>)>, now: i64) -> LinkUse {
    match row {
        None => LinkUse::Unknown,
        Some((_, Some(expires_at))) if expires_at <= now => LinkUse::Expired,
        Some(_) => LinkUse::Exhausted,
    }
}

const ISSUED_COLUMNS: &str =
    "serial, sha256, subject, message_type, renewed_from, not_after, issued_at";

#[doc(hidden)]
pub fn issued_columns() -> &'static str {
    ISSUED_COLUMNS
}

/// Implements [`IdentityStore`] for a backend whose struct has a `pool` field.
macro_rules! impl_identity_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::identity::IdentityStore for $store {
            async fn scep_ca(
                &self,
            ) -> $crate::store::StoreResult<Option<$crate::store::identity::StoredCa>> {
                Ok(sqlx::query_as(
                    "SELECT cert_pem, key_sealed, created_at FROM scep_ca WHERE id = 1",
                )
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn insert_scep_ca_if_absent(
                &self,
                cert_pem: &str,
                key_sealed: &[u8],
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::identity::StoredCa> {
                sqlx::query(
                    "INSERT INTO scep_ca (id, cert_pem, key_sealed, created_at) \
                     VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
                )
                .bind(cert_pem)
                .bind(key_sealed)
                .bind(now)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(sqlx::query_as(
                    "SELECT cert_pem, key_sealed, created_at FROM scep_ca WHERE id = 1",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            async fn insert_challenge(
                &self,
                hash: &[u8],
                expires_at: i64,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                // Housekeeping: challenges long expired are of no use to anyone.
                sqlx::query("DELETE FROM scep_challenges WHERE expires_at < $1")
                    .bind(now - 7 * 24 * 3600 * 1000)
                    .execute(&mut *self.write_one().await?)
                    .await?;
                sqlx::query(
                    "INSERT INTO scep_challenges (hash, created_at, expires_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(hash)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(())
            }

            async fn consume_challenge(
                &self,
                hash: &[u8],
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::identity::ChallengeUse> {
                let done = sqlx::query(
                    "UPDATE scep_challenges SET used_at = $2 \
                     WHERE hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(hash)
                .bind(now)
                .execute(&mut *self.write_one().await?)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok($crate::store::identity::ChallengeUse::Consumed);
                }
                let row: Option<(Option<i64>, i64)> =
                    sqlx::query_as("SELECT used_at, expires_at FROM scep_challenges WHERE hash = $1")
                        .bind(hash)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok($crate::store::identity::classify_challenge(row, now))
            }

            async fn record_issued_certificate(
                &self,
                rec: &$crate::store::identity::IssuedCertificate,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO issued_certificates (serial, sha256, subject, message_type, \
                     renewed_from, not_after, issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&rec.serial)
                .bind(&rec.sha256)
                .bind(&rec.subject)
                .bind(&rec.message_type)
                .bind(&rec.renewed_from)
                .bind(rec.not_after)
                .bind(rec.issued_at)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(())
            }

            async fn bind_renewed_identity(
                &self,
                old_hash: &str,
                new_hash: &str,
                new_not_after: i64,
                now: i64,
            ) -> $crate::store::StoreResult<Option<String>> {
                let mut tx = self.write().await?;
                sqlx::query(
                    "INSERT INTO identity_bindings (cert_hash, device_id, bound_at) \
                     SELECT $2, device_id, $3 FROM identity_bindings WHERE cert_hash = $1 \
                     ON CONFLICT (cert_hash) DO NOTHING",
                )
                .bind(old_hash)
                .bind(new_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let device: Option<String> = sqlx::query_scalar(
                    "SELECT device_id FROM identity_bindings WHERE cert_hash = $1",
                )
                .bind(new_hash)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(device) = &device {
                    sqlx::query(
                        "UPDATE devices SET identity_cert_sha256 = $2, identity_not_after = $3, \
                         updated_at = $4 WHERE id = $1",
                    )
                    .bind(device)
                    .bind(new_hash)
                    .bind(new_not_after)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(device)
            }

            async fn issued_certificates(
                &self,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::identity::IssuedCertificate>>
            {
                let sql = format!(
                    "SELECT {} FROM issued_certificates ORDER BY issued_at DESC LIMIT $1",
                    $crate::store::identity::issued_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn insert_enroll_link(
                &self,
                link: &$crate::store::identity::NewEnrollLink,
            ) -> $crate::store::StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO enroll_links (hash, uses, uses_left, expires_at, created_by, \
                     created_at) VALUES ($1, $2, $2, $3, $4, $5) RETURNING id",
                )
                .bind(&link.hash)
                .bind(link.uses)
                .bind(link.expires_at)
                .bind(&link.created_by)
                .bind(link.now)
                .fetch_one(&mut *self.write_one().await?)
                .await?)
            }

            async fn use_enroll_link(
                &self,
                hash: &[u8],
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::identity::LinkUse> {
                let done = sqlx::query(
                    "UPDATE enroll_links SET used_count = used_count + 1, \
                     uses_left = CASE WHEN uses_left IS NULL THEN NULL ELSE uses_left - 1 END \
                     WHERE hash = $1 AND (uses_left IS NULL OR uses_left > 0) \
                     AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(hash)
                .bind(now)
                .execute(&mut *self.write_one().await?)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok($crate::store::identity::LinkUse::Accepted);
                }
                let row: Option<(Option<i64>, Option<i64>)> =
                    sqlx::query_as("SELECT uses_left, expires_at FROM enroll_links WHERE hash = $1")
                        .bind(hash)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok($crate::store::identity::classify_link(row, now))
            }

            async fn setting_insert_if_absent(
                &self,
                key: &str,
                value: &str,
            ) -> $crate::store::StoreResult<String> {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn expiring_identities(
                &self,
                before: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::identity::ExpiringIdentity>> {
                Ok(sqlx::query_as(
                    "SELECT id AS udid, serial_number, identity_cert_sha256, identity_not_after \
                     FROM devices WHERE identity_not_after IS NOT NULL \
                     AND identity_not_after < $1 ORDER BY identity_not_after, id",
                )
                .bind(before)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}
pub(crate) use impl_identity_store;
