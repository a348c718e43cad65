//! Storage for Parallels Desktop activation per group (migration
//! `0022_parallels_activation.sql`; issue 15). Written once for both backends
//! (`impl_parallels_activation_store!`). The license key is stored sealed by the service
//! (`Sealed::ParallelsLicenseKey`); this layer never sees it in clear.

use super::StoreResult;
use async_trait::async_trait;

/// A group's activation as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ParallelsActivationRecord {
    /// The group, by its exact name (a group holds at most one activation: the primary key).
    pub group_name: String,
    /// Parallels' `ActivationExperience` value: `License Key` or `SSO`.
    pub experience: String,
    /// The license key, sealed; set exactly when `experience` is `License Key`.
    pub license_key_sealed: Option<Vec<u8>>,
    /// The key's last four characters, so an admin can tell keys apart without seeing one.
    pub license_key_hint: Option<String>,
    /// The optional SSO dialog texts, a JSON object of strings.
    pub sso_texts: String,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
}

#[async_trait]
pub trait ParallelsActivationStore: Send + Sync {
    /// Sets the group's activation (a new row, or the existing one's fields but its creation).
    /// False (nothing written) when there is no group by that exact name.
    async fn put_parallels_activation(&self, rec: &ParallelsActivationRecord) -> StoreResult<bool>;
    /// The activation of the group named exactly `group`.
    async fn parallels_activation(
        &self,
        group: &str,
    ) -> StoreResult<Option<ParallelsActivationRecord>>;
    /// Every group's activation, by group name.
    async fn parallels_activations(&self) -> StoreResult<Vec<ParallelsActivationRecord>>;
    /// Takes the group's activation away; false if it had none.
    async fn delete_parallels_activation(&self, group: &str) -> StoreResult<bool>;
}

#[doc(hidden)]
pub const PARALLELS_ACTIVATION_COLUMNS: &str = "group_name, experience, license_key_sealed, \
    license_key_hint, sso_texts, created_at, created_by, updated_at, updated_by";

macro_rules! impl_parallels_activation_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::parallels_activation::ParallelsActivationStore for $store {
            async fn put_parallels_activation(
                &self,
                r: &$crate::store::parallels_activation::ParallelsActivationRecord,
            ) -> $crate::store::StoreResult<bool> {
                // From the groups table, so a missing group writes nothing (no foreign-key
                // error to tell apart from others).
                let done = sqlx::query(
                    "INSERT INTO parallels_activations (group_name, experience, \
                     license_key_sealed, license_key_hint, sso_texts, created_at, created_by, \
                     updated_at, updated_by) \
                     SELECT name, $2, $3, $4, $5, $6, $7, $6, $7 FROM device_groups \
                     WHERE name = $1 \
                     ON CONFLICT (group_name) DO UPDATE SET experience = excluded.experience, \
                     license_key_sealed = excluded.license_key_sealed, \
                     license_key_hint = excluded.license_key_hint, \
                     sso_texts = excluded.sso_texts, updated_at = excluded.updated_at, \
                     updated_by = excluded.updated_by",
                )
                .bind(&r.group_name)
                .bind(&r.experience)
                .bind(&r.license_key_sealed)
                .bind(&r.license_key_hint)
                .bind(&r.sso_texts)
                .bind(r.updated_at)
                .bind(&r.updated_by)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn parallels_activation(
                &self,
                group: &str,
            ) -> $crate::store::StoreResult<
                Option<$crate::store::parallels_activation::ParallelsActivationRecord>,
            > {
                let sql = format!(
                    "SELECT {} FROM parallels_activations WHERE group_name = $1",
                    $crate::store::parallels_activation::PARALLELS_ACTIVATION_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(group)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn parallels_activations(
                &self,
            ) -> $crate::store::StoreResult<
                Vec<$crate::store::parallels_activation::ParallelsActivationRecord>,
            > {
                let sql = format!(
                    "SELECT {} FROM parallels_activations ORDER BY group_name",
                    $crate::store::parallels_activation::PARALLELS_ACTIVATION_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn delete_parallels_activation(
                &self,
                group: &str,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM parallels_activations WHERE group_name = $1")
                    .bind(group)
                    .execute(&mut *self.write_one().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use impl_parallels_activation_store;
