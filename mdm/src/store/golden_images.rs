//! Storage for golden images (migration `0018_golden_images.sql`): the catalog of corporate VM
//! images and the groups each is assigned to. Written once for both backends
//! (`impl_golden_image_store!`).
//!
//! "A group holds at most one golden image" is the assignment table's primary key (the group),
//! so the database keeps the rule whatever the service does; an assignment is one transaction
//! that either takes every group it names or none. Names are found regardless of case, like
//! the unique index that keeps them apart.

use super::StoreResult;
use async_trait::async_trait;

/// A golden image as stored. An architecture's URL and SHA-256 are both set or both `None`;
/// at least one architecture is set (the table's checks).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GoldenImageRecord {
    pub name: String,
    pub description: Option<String>,
    pub apple_silicon_url: Option<String>,
    /// 64 lowercase hex.
    pub apple_silicon_sha256: Option<String>,
    pub intel_url: Option<String>,
    pub intel_sha256: Option<String>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
}

/// What an assignment did (nothing is written unless it is `Assigned`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignOutcome {
    /// The groups that took the image now, and those that held it already.
    Assigned {
        added: Vec<String>,
        unchanged: Vec<String>,
    },
    /// No image by this name.
    NoImage,
    /// No group by this name (the first one found missing).
    NoGroup(String),
    /// The group holds another image (the first such group, and that image's name).
    Taken { group: String, holder: String },
    /// The group was assigned and unassigned by others again and again while this ran: try
    /// again.
    Contended(String),
}

#[async_trait]
pub trait GoldenImageStore: Send + Sync {
    /// A new image. False (nothing written) if the name is taken, in any case.
    async fn insert_golden_image(&self, rec: &GoldenImageRecord) -> StoreResult<bool>;
    /// The image by name, in any case.
    async fn golden_image(&self, name: &str) -> StoreResult<Option<GoldenImageRecord>>;
    /// Every image, by name, each with its groups (by name).
    async fn golden_images(&self) -> StoreResult<Vec<(GoldenImageRecord, Vec<String>)>>;
    /// The groups an image (by its stored name) is assigned to, by name.
    async fn golden_image_groups(&self, name: &str) -> StoreResult<Vec<String>>;
    /// Stores description, URLs, checksums, `updated_at` and `updated_by` of the image named
    /// `rec.name` (its stored name). False if there is none.
    async fn update_golden_image(&self, rec: &GoldenImageRecord) -> StoreResult<bool>;
    /// Deletes the image (by its stored name) and its assignments in one transaction; the
    /// groups it held, or `None` if there was no such image.
    async fn delete_golden_image(&self, name: &str) -> StoreResult<Option<Vec<String>>>;
    /// Assigns the image (by its stored name) to these groups (by exact name, like the groups
    /// API), all or nothing, in one transaction.
    async fn assign_golden_image(
        &self,
        name: &str,
        groups: &[String],
        now: i64,
        by: &str,
    ) -> StoreResult<AssignOutcome>;
    /// Takes the image (by its stored name) off these groups; the groups it was taken off
    /// (a group holding nothing or another image is left as it is).
    async fn unassign_golden_image(
        &self,
        name: &str,
        groups: &[String],
    ) -> StoreResult<Vec<String>>;
}

#[doc(hidden)]
pub const GOLDEN_IMAGE_COLUMNS: &str = "name, description, apple_silicon_url, \
    apple_silicon_sha256, intel_url, intel_sha256, created_at, created_by, updated_at, updated_by";

macro_rules! impl_golden_image_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::golden_images::GoldenImageStore for $store {
            async fn insert_golden_image(
                &self,
                r: &$crate::store::golden_images::GoldenImageRecord,
            ) -> $crate::store::StoreResult<bool> {
                // No conflict target: the primary key and the case-insensitive name index.
                let done = sqlx::query(
                    "INSERT INTO golden_images (name, description, apple_silicon_url, \
                     apple_silicon_sha256, intel_url, intel_sha256, created_at, created_by, \
                     updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&r.name)
                .bind(&r.description)
                .bind(&r.apple_silicon_url)
                .bind(&r.apple_silicon_sha256)
                .bind(&r.intel_url)
                .bind(&r.intel_sha256)
                .bind(r.created_at)
                .bind(&r.created_by)
                .bind(r.updated_at)
                .bind(&r.updated_by)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn golden_image(
                &self,
                name: &str,
            ) -> $crate::store::StoreResult<
                Option<$crate::store::golden_images::GoldenImageRecord>,
            > {
                let sql = format!(
                    "SELECT {} FROM golden_images WHERE lower(name) = lower($1)",
                    $crate::store::golden_images::GOLDEN_IMAGE_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn golden_images(
                &self,
            ) -> $crate::store::StoreResult<
                Vec<($crate::store::golden_images::GoldenImageRecord, Vec<String>)>,
            > {
                let sql = format!(
                    "SELECT {} FROM golden_images ORDER BY lower(name), name",
                    $crate::store::golden_images::GOLDEN_IMAGE_COLUMNS
                );
                let images: Vec<$crate::store::golden_images::GoldenImageRecord> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&self.pool)
                        .await?;
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT image_name, group_name FROM golden_image_groups ORDER BY group_name",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut groups: std::collections::HashMap<String, Vec<String>> =
                    std::collections::HashMap::new();
                for (image, group) in rows {
                    groups.entry(image).or_default().push(group);
                }
                Ok(images
                    .into_iter()
                    .map(|r| {
                        let g = groups.remove(&r.name).unwrap_or_default();
                        (r, g)
                    })
                    .collect())
            }

            async fn golden_image_groups(
                &self,
                name: &str,
            ) -> $crate::store::StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT group_name FROM golden_image_groups WHERE image_name = $1 \
                     ORDER BY group_name",
                )
                .bind(name)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn update_golden_image(
                &self,
                r: &$crate::store::golden_images::GoldenImageRecord,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE golden_images SET description = $2, apple_silicon_url = $3, \
                     apple_silicon_sha256 = $4, intel_url = $5, intel_sha256 = $6, \
                     updated_at = $7, updated_by = $8 WHERE name = $1",
                )
                .bind(&r.name)
                .bind(&r.description)
                .bind(&r.apple_silicon_url)
                .bind(&r.apple_silicon_sha256)
                .bind(&r.intel_url)
                .bind(&r.intel_sha256)
                .bind(r.updated_at)
                .bind(&r.updated_by)
                .execute(&mut *self.write_one().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_golden_image(
                &self,
                name: &str,
            ) -> $crate::store::StoreResult<Option<Vec<String>>> {
                let mut tx = self.write().await?;
                // Explicit, like the cascade would: the assignments go first, and say which
                // groups lost their image.
                let mut freed: Vec<String> = sqlx::query_scalar(
                    "DELETE FROM golden_image_groups WHERE image_name = $1 RETURNING group_name",
                )
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
                let done = sqlx::query("DELETE FROM golden_images WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Ok(None);
                }
                tx.commit().await?;
                freed.sort();
                Ok(Some(freed))
            }

            async fn assign_golden_image(
                &self,
                name: &str,
                groups: &[String],
                now: i64,
                by: &str,
            ) -> $crate::store::StoreResult<$crate::store::golden_images::AssignOutcome> {
                use $crate::store::golden_images::AssignOutcome;
                let mut tx = self.write().await?;
                // Locks the image's row (PostgreSQL; SQLite's write transaction holds the
                // database), so a concurrent delete waits for this assignment or wins first.
                let image = sqlx::query(
                    "UPDATE golden_images SET updated_at = updated_at WHERE name = $1",
                )
                .bind(name)
                .execute(&mut *tx)
                .await?;
                if image.rows_affected() != 1 {
                    return Ok(AssignOutcome::NoImage);
                }
                let mut added = Vec::new();
                let mut unchanged = Vec::new();
                for group in groups {
                    let known: Option<String> =
                        sqlx::query_scalar("SELECT name FROM device_groups WHERE name = $1")
                            .bind(group)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if known.is_none() {
                        return Ok(AssignOutcome::NoGroup(group.clone()));
                    }
                    // A concurrent assignment of the same group waits here on PostgreSQL's
                    // unique index until the other commits, then conflicts: one winner. The
                    // holder is read after the conflict; if it was taken off in between (a
                    // concurrent unassign committed), the insert is tried again.
                    let mut outcome = None;
                    for _ in 0..3 {
                        let inserted = sqlx::query(
                            "INSERT INTO golden_image_groups (group_name, image_name, \
                             assigned_at, assigned_by) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (group_name) DO NOTHING",
                        )
                        .bind(group)
                        .bind(name)
                        .bind(now)
                        .bind(by)
                        .execute(&mut *tx)
                        .await?;
                        if inserted.rows_affected() == 1 {
                            outcome = Some(true);
                            break;
                        }
                        let holder: Option<String> = sqlx::query_scalar(
                            "SELECT image_name FROM golden_image_groups WHERE group_name = $1",
                        )
                        .bind(group)
                        .fetch_optional(&mut *tx)
                        .await?;
                        match holder {
                            Some(h) if h == name => {
                                outcome = Some(false);
                                break;
                            }
                            Some(h) => {
                                return Ok(AssignOutcome::Taken {
                                    group: group.clone(),
                                    holder: h,
                                });
                            }
                            None => {}
                        }
                    }
                    match outcome {
                        Some(true) => added.push(group.clone()),
                        Some(false) => unchanged.push(group.clone()),
                        None => {
                            return Ok(AssignOutcome::Contended(group.clone()));
                        }
                    }
                }
                tx.commit().await?;
                Ok(AssignOutcome::Assigned { added, unchanged })
            }

            async fn unassign_golden_image(
                &self,
                name: &str,
                groups: &[String],
            ) -> $crate::store::StoreResult<Vec<String>> {
                let mut tx = self.write().await?;
                let mut removed = Vec::new();
                for group in groups {
                    let done = sqlx::query(
                        "DELETE FROM golden_image_groups WHERE group_name = $1 AND image_name = $2",
                    )
                    .bind(group)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        removed.push(group.clone());
                    }
                }
                tx.commit().await?;
                Ok(removed)
            }
        }
    };
}
pub(crate) use impl_golden_image_store;
