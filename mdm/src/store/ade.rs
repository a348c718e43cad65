//! Storage for ADE enrollments: which Mac fetched its enrollment profile through a signed
//! MachineInfo, under which DEP profile, and whether its Setup Assistant commands are queued.
//!
//! Written once for both backends (`impl_ade_store!`): plain SQL that SQLite and PostgreSQL
//! share (`ON CONFLICT … DO UPDATE … WHERE` with `RETURNING`).

use super::StoreResult;
use async_trait::async_trait;

/// A Mac that asked for its enrollment profile during Setup Assistant.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdeEnrollment {
    pub udid: String,
    pub serial_number: String,
    /// The DEP profile the Mac was enrolled under, when Russet knows it.
    pub profile_uuid: Option<String>,
    pub product: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub requested_at: i64,
    pub setup_queued_at: Option<i64>,
}

/// The answer to [`AdeStore::claim_ade_setup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdeSetupClaim {
    /// This call claimed the setup: queue it. The DEP profile, if the Mac came through
    /// `POST /mdm/enroll` with one.
    Claimed(Option<String>),
    /// The setup of this enrollment was queued already.
    AlreadyQueued,
}

#[async_trait]
pub trait AdeStore {
    /// A Mac fetched its profile: insert or replace its row, clearing `setup_queued_at` (a
    /// fetch starts a new enrollment).
    async fn record_ade_enrollment(&self, rec: &AdeEnrollment) -> StoreResult<()>;
    async fn ade_enrollment(&self, udid: &str) -> StoreResult<Option<AdeEnrollment>>;
    /// Authenticate cancelled the device's queue: its setup, if queued, must be queued again
    /// at the next `AwaitingConfiguration`.
    async fn rearm_ade_setup(&self, udid: &str) -> StoreResult<()>;
    /// A TokenUpdate said `AwaitingConfiguration`: claim the setup of this enrollment, once
    /// across every server sharing the database. A device with no row gets one (its setup is
    /// then only `DeviceConfigured`, so Setup Assistant never waits forever).
    async fn claim_ade_setup(
        &self,
        udid: &str,
        serial_number: Option<&str>,
        now: i64,
    ) -> StoreResult<AdeSetupClaim>;
}

/// Implements [`AdeStore`] for a backend whose struct has a `pool` field.
macro_rules! impl_ade_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ade::AdeStore for $store {
            async fn record_ade_enrollment(
                &self,
                rec: &$crate::store::ade::AdeEnrollment,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO ade_enrollments (udid, serial_number, profile_uuid, product, \
                     os_version, build_version, requested_at, setup_queued_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) \
                     ON CONFLICT (udid) DO UPDATE SET serial_number = excluded.serial_number, \
                     profile_uuid = excluded.profile_uuid, product = excluded.product, \
                     os_version = excluded.os_version, build_version = excluded.build_version, \
                     requested_at = excluded.requested_at, setup_queued_at = NULL",
                )
                .bind(&rec.udid)
                .bind(&rec.serial_number)
                .bind(&rec.profile_uuid)
                .bind(&rec.product)
                .bind(&rec.os_version)
                .bind(&rec.build_version)
                .bind(rec.requested_at)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(())
            }

            async fn ade_enrollment(
                &self,
                udid: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::ade::AdeEnrollment>> {
                Ok(sqlx::query_as(
                    "SELECT udid, serial_number, profile_uuid, product, os_version, \
                     build_version, requested_at, setup_queued_at \
                     FROM ade_enrollments WHERE udid = $1",
                )
                .bind(udid)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn rearm_ade_setup(&self, udid: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE ade_enrollments SET setup_queued_at = NULL WHERE udid = $1")
                    .bind(udid)
                    .execute(&mut *self.write_one().await?)
                    .await?;
                Ok(())
            }

            async fn claim_ade_setup(
                &self,
                udid: &str,
                serial_number: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::ade::AdeSetupClaim> {
                // One statement: whichever server runs it first sets setup_queued_at; the
                // conditional DO UPDATE returns no row to the others.
                let row: Option<(Option<String>,)> = sqlx::query_as(
                    "INSERT INTO ade_enrollments (udid, serial_number, requested_at, \
                     setup_queued_at) VALUES ($1, $2, $3, $3) \
                     ON CONFLICT (udid) DO UPDATE SET setup_queued_at = excluded.setup_queued_at \
                     WHERE ade_enrollments.setup_queued_at IS NULL \
                     RETURNING profile_uuid",
                )
                .bind(udid)
                .bind(serial_number.unwrap_or(""))
                .bind(now)
                .fetch_optional(&mut *self.write_one().await?)
                .await?;
                Ok(match row {
                    Some((profile,)) => $crate::store::ade::AdeSetupClaim::Claimed(profile),
                    None => $crate::store::ade::AdeSetupClaim::AlreadyQueued,
                })
            }
        }
    };
}
pub(crate) use impl_ade_store;
