//! Storage for configuration profiles: the catalog (one row per `PayloadIdentifier`), every
//! uploaded version (the `.mobileconfig` sealed), and the assignments to groups and devices.
//!
//! Written once for both backends (`impl_profile_store!`). Deleting is soft: the history
//! stays and the profile is marked, so Macs that have it can be told to remove it.

use super::StoreResult;
use async_trait::async_trait;

/// A profile in the catalog, with the count of its assignments.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProfileRecord {
    pub identifier: String,
    /// `PayloadDisplayName` of the latest version (or the identifier).
    pub name: String,
    pub description: Option<String>,
    pub organization: Option<String>,
    /// `PayloadScope` of the latest version: `System` or `User`.
    pub scope: String,
    /// The latest version's payload types, a JSON array ([`Self::payload_types`]).
    pub payload_types: String,
    pub latest_version: i64,
    pub deleted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub group_count: i64,
    pub device_count: i64,
}

/// The JSON array of payload types as stored.
pub fn payload_types_of(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

impl ProfileRecord {
    pub fn payload_types(&self) -> Vec<String> {
        payload_types_of(&self.payload_types)
    }
}

/// One uploaded version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProfileVersionRecord {
    pub identifier: String,
    pub version: i64,
    /// The profile's `PayloadUUID` in this version.
    pub payload_uuid: String,
    pub name: String,
    pub scope: String,
    /// JSON array.
    pub payload_types: String,
    /// SHA-256 of the uploaded bytes, lowercase hex.
    pub sha256: String,
    /// The uploaded bytes, sealed (`Sealed::ProfileVersion`).
    pub body_sealed: Vec<u8>,
    /// CMS-signed: delivered byte for byte.
    pub signed: bool,
    /// Holds variables (or `$$` escapes): expanded per device before delivery.
    pub has_variables: bool,
    pub uploaded_by: String,
    pub created_at: i64,
}

/// A version to store, with the profile's descriptive fields.
#[derive(Debug, Clone)]
pub struct NewProfileVersion {
    pub version: ProfileVersionRecord,
    pub description: Option<String>,
    pub organization: Option<String>,
}

/// What an assignment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// A group, by name.
    Group,
    /// A device, by UDID (its device-channel ID).
    Device,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Group => "group",
            TargetKind::Device => "device",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(TargetKind::Group),
            "device" => Some(TargetKind::Device),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub kind: TargetKind,
    pub name: String,
}

impl Target {
    pub fn group(name: &str) -> Self {
        Target {
            kind: TargetKind::Group,
            name: name.to_owned(),
        }
    }

    pub fn device(udid: &str) -> Self {
        Target {
            kind: TargetKind::Device,
            name: udid.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileAssignment {
    pub identifier: String,
    pub target: Target,
    pub created_at: i64,
}

/// A live profile's latest version and the assignment that makes a device want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRow {
    pub target: Target,
    pub identifier: String,
    pub version: i64,
    pub payload_uuid: String,
    /// `System` or `User`.
    pub scope: String,
    pub has_variables: bool,
    /// The profile's architecture restriction (migration 0019): `apple_silicon`, `intel`, or
    /// `None` for every Mac.
    pub architecture: Option<String>,
}

/// Targets bound per statement (both databases take far more; this keeps statements small).
const DESIRED_CHUNK: usize = 1_000;

#[doc(hidden)]
pub fn desired_chunk() -> usize {
    DESIRED_CHUNK
}

/// A desired-profiles row as selected: target kind, target, identifier, version, payload UUID,
/// scope, has variables, architecture.
#[doc(hidden)]
pub type DesiredTuple = (
    String,
    String,
    String,
    i64,
    String,
    String,
    bool,
    Option<String>,
);

#[doc(hidden)]
pub fn desired_from(rows: Vec<DesiredTuple>) -> Vec<DesiredRow> {
    rows.into_iter()
        .filter_map(
            |(
                kind,
                name,
                identifier,
                version,
                payload_uuid,
                scope,
                has_variables,
                architecture,
            )| {
                Some(DesiredRow {
                    target: Target {
                        kind: TargetKind::parse(&kind)?,
                        name,
                    },
                    identifier,
                    version,
                    payload_uuid,
                    scope,
                    has_variables,
                    architecture,
                })
            },
        )
        .collect()
}

#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Stores a version and makes it the profile's latest, in one transaction: version 1
    /// creates the profile; version n updates (and undeletes) it when its latest is n − 1.
    /// False, nothing written, otherwise (another upload came first: read again and retry).
    async fn insert_profile_version(&self, v: &NewProfileVersion) -> StoreResult<bool>;
    async fn profile(&self, identifier: &str) -> StoreResult<Option<ProfileRecord>>;
    /// By identifier; deleted profiles only when asked.
    async fn profiles(&self, include_deleted: bool) -> StoreResult<Vec<ProfileRecord>>;
    /// Newest first.
    async fn profile_versions(&self, identifier: &str) -> StoreResult<Vec<ProfileVersionRecord>>;
    async fn profile_version(
        &self,
        identifier: &str,
        version: i64,
    ) -> StoreResult<Option<ProfileVersionRecord>>;
    /// Soft delete, in one transaction: mark the profile deleted and drop its assignments.
    /// The assignments dropped, or `None` when it is unknown or already deleted.
    async fn delete_profile(
        &self,
        identifier: &str,
        now: i64,
    ) -> StoreResult<Option<Vec<ProfileAssignment>>>;
    /// Adds assignments of a live profile (existing ones stay as they are). The targets that
    /// are new, or `None` (nothing written) when the profile is unknown or deleted.
    async fn add_profile_assignments(
        &self,
        identifier: &str,
        targets: &[Target],
        now: i64,
    ) -> StoreResult<Option<Vec<Target>>>;
    /// Removes assignments; the targets that were assigned.
    async fn remove_profile_assignments(
        &self,
        identifier: &str,
        targets: &[Target],
    ) -> StoreResult<Vec<Target>>;
    /// By kind, then target.
    async fn profile_assignments(&self, identifier: &str) -> StoreResult<Vec<ProfileAssignment>>;
    /// The live profiles assigned to any of these devices (by UDID) or groups (by name), at
    /// their latest version: one row per assignment, by identifier. The reconciler's input.
    async fn desired_profiles(
        &self,
        device_ids: &[String],
        groups: &[String],
    ) -> StoreResult<Vec<DesiredRow>>;
    /// The groups live profiles are assigned to.
    async fn assigned_groups(&self) -> StoreResult<std::collections::BTreeSet<String>>;
    /// A group is gone: drop every assignment to it. The profiles it had.
    async fn remove_group_assignments(&self, group: &str) -> StoreResult<Vec<String>>;
    /// Restrict a profile to Macs of one architecture (`apple_silicon`, `intel`), or `None`
    /// for every Mac. False when the profile is unknown.
    async fn set_profile_architecture(
        &self,
        identifier: &str,
        architecture: Option<&str>,
    ) -> StoreResult<bool>;
    /// Whether a live profile restricted to one architecture is assigned to anything: only
    /// then can a Mac's new facts (its architecture) change what it should have.
    async fn architecture_profiles_assigned(&self) -> StoreResult<bool>;
}

const PROFILE_SELECT: &str = "SELECT p.identifier, p.name, p.description, p.organization, \
     p.scope, p.payload_types, p.latest_version, p.deleted_at, p.created_at, p.updated_at, \
     (SELECT COUNT(*) FROM profile_assignments a WHERE a.identifier = p.identifier \
      AND a.target_kind = 'group') AS group_count, \
     (SELECT COUNT(*) FROM profile_assignments a WHERE a.identifier = p.identifier \
      AND a.target_kind = 'device') AS device_count \
     FROM profiles p";

const VERSION_COLUMNS: &str = "identifier, version, payload_uuid, name, scope, payload_types, \
     sha256, body_sealed, signed, has_variables, uploaded_by, created_at";

#[doc(hidden)]
pub fn profile_select() -> &'static str {
    PROFILE_SELECT
}
#[doc(hidden)]
pub fn version_columns() -> &'static str {
    VERSION_COLUMNS
}

/// Rows of `(identifier, target_kind, target, created_at)`; an unknown kind (never written by
/// Russet) is skipped.
#[doc(hidden)]
pub fn assignments_from(rows: Vec<(String, String, String, i64)>) -> Vec<ProfileAssignment> {
    rows.into_iter()
        .filter_map(|(identifier, kind, name, created_at)| {
            Some(ProfileAssignment {
                identifier,
                target: Target {
                    kind: TargetKind::parse(&kind)?,
                    name,
                },
                created_at,
            })
        })
        .collect()
}

/// Implements [`ProfileStore`] for a backend whose struct has a `pool` field.
macro_rules! impl_profile_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::profiles::ProfileStore for $store {
            async fn insert_profile_version(
                &self,
                n: &$crate::store::profiles::NewProfileVersion,
            ) -> $crate::store::StoreResult<bool> {
                let v = &n.version;
                let mut tx = self.write().await?;
                // The profile row first: its write lock orders concurrent uploads of one
                // identifier, and the version check makes the loser write nothing.
                let done = if v.version == 1 {
                    sqlx::query(
                        "INSERT INTO profiles (identifier, name, description, organization, \
                         scope, payload_types, latest_version, deleted_at, created_at, \
                         updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, NULL, $7, $7) \
                         ON CONFLICT (identifier) DO NOTHING",
                    )
                    .bind(&v.identifier)
                    .bind(&v.name)
                    .bind(&n.description)
                    .bind(&n.organization)
                    .bind(&v.scope)
                    .bind(&v.payload_types)
                    .bind(v.created_at)
                    .execute(&mut *tx)
                    .await?
                } else {
                    sqlx::query(
                        "UPDATE profiles SET name = $2, description = $3, organization = $4, \
                         scope = $5, payload_types = $6, latest_version = $7, \
                         deleted_at = NULL, updated_at = $8 \
                         WHERE identifier = $1 AND latest_version = $7 - 1",
                    )
                    .bind(&v.identifier)
                    .bind(&v.name)
                    .bind(&n.description)
                    .bind(&n.organization)
                    .bind(&v.scope)
                    .bind(&v.payload_types)
                    .bind(v.version)
                    .bind(v.created_at)
                    .execute(&mut *tx)
                    .await?
                };
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO profile_versions (identifier, version, payload_uuid, name, \
                     scope, payload_types, sha256, body_sealed, signed, has_variables, \
                     uploaded_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&v.identifier)
                .bind(v.version)
                .bind(&v.payload_uuid)
                .bind(&v.name)
                .bind(&v.scope)
                .bind(&v.payload_types)
                .bind(&v.sha256)
                .bind(&v.body_sealed)
                .bind(v.signed)
                .bind(v.has_variables)
                .bind(&v.uploaded_by)
                .bind(v.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn profile(
                &self,
                identifier: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::profiles::ProfileRecord>> {
                let sql = format!(
                    "{} WHERE p.identifier = $1",
                    $crate::store::profiles::profile_select()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(identifier)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn profiles(
                &self,
                include_deleted: bool,
            ) -> $crate::store::StoreResult<Vec<$crate::store::profiles::ProfileRecord>> {
                let sql = format!(
                    "{} WHERE ($1 OR p.deleted_at IS NULL) ORDER BY p.identifier",
                    $crate::store::profiles::profile_select()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(include_deleted)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn profile_versions(
                &self,
                identifier: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::profiles::ProfileVersionRecord>>
            {
                let sql = format!(
                    "SELECT {} FROM profile_versions WHERE identifier = $1 ORDER BY version DESC",
                    $crate::store::profiles::version_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(identifier)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn profile_version(
                &self,
                identifier: &str,
                version: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::profiles::ProfileVersionRecord>>
            {
                let sql = format!(
                    "SELECT {} FROM profile_versions WHERE identifier = $1 AND version = $2",
                    $crate::store::profiles::version_columns()
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(identifier)
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn delete_profile(
                &self,
                identifier: &str,
                now: i64,
            ) -> $crate::store::StoreResult<
                Option<Vec<$crate::store::profiles::ProfileAssignment>>,
            > {
                let mut tx = self.write().await?;
                let done = sqlx::query(
                    "UPDATE profiles SET deleted_at = $2, updated_at = $2 \
                     WHERE identifier = $1 AND deleted_at IS NULL",
                )
                .bind(identifier)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(None);
                }
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "DELETE FROM profile_assignments WHERE identifier = $1 \
                     RETURNING identifier, target_kind, target, created_at",
                )
                .bind(identifier)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut removed = $crate::store::profiles::assignments_from(rows);
                removed.sort_by(|a, b| a.target.cmp(&b.target));
                Ok(Some(removed))
            }

            async fn add_profile_assignments(
                &self,
                identifier: &str,
                targets: &[$crate::store::profiles::Target],
                now: i64,
            ) -> $crate::store::StoreResult<Option<Vec<$crate::store::profiles::Target>>> {
                let mut tx = self.write().await?;
                // Locks the profile row against a concurrent delete (which takes it too
                // before dropping the assignments) and checks it is live.
                let live = sqlx::query(
                    "UPDATE profiles SET updated_at = updated_at \
                     WHERE identifier = $1 AND deleted_at IS NULL",
                )
                .bind(identifier)
                .execute(&mut *tx)
                .await?;
                if live.rows_affected() != 1 {
                    return Ok(None);
                }
                let mut added = Vec::new();
                for t in targets {
                    let done = sqlx::query(
                        "INSERT INTO profile_assignments (identifier, target_kind, target, \
                         created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (identifier, target_kind, target) DO NOTHING",
                    )
                    .bind(identifier)
                    .bind(t.kind.as_str())
                    .bind(&t.name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        added.push(t.clone());
                    }
                }
                tx.commit().await?;
                Ok(Some(added))
            }

            async fn remove_profile_assignments(
                &self,
                identifier: &str,
                targets: &[$crate::store::profiles::Target],
            ) -> $crate::store::StoreResult<Vec<$crate::store::profiles::Target>> {
                let mut tx = self.write().await?;
                let mut removed = Vec::new();
                for t in targets {
                    let done = sqlx::query(
                        "DELETE FROM profile_assignments \
                         WHERE identifier = $1 AND target_kind = $2 AND target = $3",
                    )
                    .bind(identifier)
                    .bind(t.kind.as_str())
                    .bind(&t.name)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        removed.push(t.clone());
                    }
                }
                tx.commit().await?;
                Ok(removed)
            }

            async fn profile_assignments(
                &self,
                identifier: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::profiles::ProfileAssignment>> {
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT identifier, target_kind, target, created_at FROM profile_assignments \
                     WHERE identifier = $1 ORDER BY target_kind DESC, target",
                )
                .bind(identifier)
                .fetch_all(&self.pool)
                .await?;
                Ok($crate::store::profiles::assignments_from(rows))
            }

            async fn desired_profiles(
                &self,
                device_ids: &[String],
                groups: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::profiles::DesiredRow>> {
                let mut rows = Vec::new();
                for (kind, names) in [("device", device_ids), ("group", groups)] {
                    for chunk in names.chunks($crate::store::profiles::desired_chunk()) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "SELECT a.target_kind, a.target, p.identifier, v.version, \
                             v.payload_uuid, v.scope, v.has_variables, p.architecture \
                             FROM profile_assignments a \
                             JOIN profiles p ON p.identifier = a.identifier \
                             AND p.deleted_at IS NULL \
                             JOIN profile_versions v ON v.identifier = p.identifier \
                             AND v.version = p.latest_version WHERE a.target_kind = ",
                        );
                        qb.push_bind(kind);
                        qb.push(" AND a.target IN (");
                        let mut list = qb.separated(", ");
                        for name in chunk {
                            list.push_bind(name.clone());
                        }
                        qb.push(")");
                        rows.extend(qb.build_query_as().fetch_all(&self.pool).await?);
                    }
                }
                let mut out = $crate::store::profiles::desired_from(rows);
                out.sort_by(|a, b| (&a.identifier, &a.target).cmp(&(&b.identifier, &b.target)));
                Ok(out)
            }

            async fn assigned_groups(
                &self,
            ) -> $crate::store::StoreResult<std::collections::BTreeSet<String>> {
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT a.target FROM profile_assignments a \
                     JOIN profiles p ON p.identifier = a.identifier AND p.deleted_at IS NULL \
                     WHERE a.target_kind = 'group'",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(names.into_iter().collect())
            }

            async fn remove_group_assignments(
                &self,
                group: &str,
            ) -> $crate::store::StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "DELETE FROM profile_assignments WHERE target_kind = 'group' AND target = $1 \
                     RETURNING identifier",
                )
                .bind(group)
                .fetch_all(&mut *self.write_one().await?)
                .await?)
            }

            async fn set_profile_architecture(
                &self,
                identifier: &str,
                architecture: Option<&str>,
            ) -> $crate::store::StoreResult<bool> {
                let done =
                    sqlx::query("UPDATE profiles SET architecture = $2 WHERE identifier = $1")
                        .bind(identifier)
                        .bind(architecture)
                        .execute(&mut *self.write_one().await?)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn architecture_profiles_assigned(&self) -> $crate::store::StoreResult<bool> {
                let found: Option<String> = sqlx::query_scalar(
                    "SELECT p.identifier FROM profiles p JOIN profile_assignments a \
                     ON a.identifier = p.identifier WHERE p.deleted_at IS NULL \
                     AND p.architecture IS NOT NULL LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.is_some())
            }
        }
    };
}
pub(crate) use impl_profile_store;
