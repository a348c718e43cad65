//! The catalog: upload (a new version per change), the Custom Settings builder, list, show,
//! delete. Every upload and deletion is audited.

use super::reconcile::ReconcileReport;
use super::{ProfileError, ProfileResult, ProfileService};
use crate::protocol::filevault::FILEVAULT_PROFILE;
use crate::protocol::mobileconfig::custom_settings::{self, CustomSettings};
use crate::protocol::mobileconfig::variables::Variable;
use crate::protocol::mobileconfig::{self, Mobileconfig, UploadRules};
use crate::secrets::Sealed;
use crate::service::profile::PROFILE_IDENTIFIER;
use crate::store::profiles::{
    NewProfileVersion, ProfileAssignment, ProfileRecord, ProfileVersionRecord,
};
use crate::timefmt::now_ms;
use serde_json::json;

/// Tries before an upload gives up on a racing upload of the same identifier.
const UPLOAD_ATTEMPTS: usize = 3;

/// What an upload came to.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub detail: ProfileDetail,
    /// The version the upload is (new, or the latest when `created` is false).
    pub version: i64,
    /// False: the bytes are the latest version's already, so no version was added (Macs
    /// need nothing new).
    pub created: bool,
    pub warnings: Vec<String>,
    pub variables: Vec<Variable>,
    /// What the Macs it is assigned to were sent (a new version replaces the old).
    pub reconciled: ReconcileReport,
}

/// What a deletion came to.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub detail: ProfileDetail,
    /// The removals sent to the Macs that had it.
    pub reconciled: ReconcileReport,
}

/// One profile with its history and assignments.
#[derive(Debug, Clone)]
pub struct ProfileDetail {
    pub profile: ProfileRecord,
    /// Newest first.
    pub versions: Vec<ProfileVersionRecord>,
    pub assignments: Vec<ProfileAssignment>,
}

impl ProfileService {
    fn rules(&self) -> UploadRules<'_> {
        UploadRules {
            reserved_identifiers: &[
                PROFILE_IDENTIFIER,
                FILEVAULT_PROFILE,
                super::golden_images::GOLDEN_IMAGE_DOMAIN,
                super::parallels_activation::ACTIVATION_PROFILE_PREFIX,
            ],
            mdm_scep_url: Some(&self.scep_url),
            russet_escrow: false,
        }
    }

    /// `profile upload`: check the `.mobileconfig` (XML or CMS-signed) and store it as the
    /// identifier's next version, sealed. The same bytes as the latest version add nothing.
    /// Uploading a deleted identifier brings it back (unassigned). Audited.
    pub async fn upload(&self, bytes: &[u8], actor: &str) -> ProfileResult<Uploaded> {
        let parsed = mobileconfig::parse(bytes, &self.rules())?;
        self.store_version(parsed, actor, json!({})).await
    }

    /// `profile custom-settings`: build a managed-preferences profile for one domain and
    /// store it like an upload. Returns the profile's bytes too.
    pub async fn custom_settings(
        &self,
        cs: &CustomSettings,
        actor: &str,
    ) -> ProfileResult<(Uploaded, Vec<u8>)> {
        let built = custom_settings::build(cs)?;
        let parsed = mobileconfig::parse(&built, &self.rules())?;
        let uploaded = self
            .store_version(
                parsed,
                actor,
                json!({"custom_settings": {"domain": cs.domain}}),
            )
            .await?;
        Ok((uploaded, built))
    }

    pub(super) async fn store_version(
        &self,
        p: Mobileconfig,
        actor: &str,
        extra: serde_json::Value,
    ) -> ProfileResult<Uploaded> {
        let sha256 = p.sha256_hex();
        let payload_types = serde_json::to_string(&p.payload_types())
            .map_err(|e| ProfileError::Internal(format!("payload types: {e}")))?;
        for _ in 0..UPLOAD_ATTEMPTS {
            let current = self.store.profile(&p.identifier).await?;
            let live = current.as_ref().filter(|c| c.deleted_at.is_none());
            if let Some(c) = live {
                let latest = self
                    .store
                    .profile_version(&p.identifier, c.latest_version)
                    .await?;
                if latest.is_some_and(|l| l.sha256 == sha256) {
                    let version = c.latest_version;
                    self.audit_upload(actor, &p, version, false, &extra).await?;
                    return self.uploaded(&p, version, false).await;
                }
            }
            let version = current.map_or(1, |c| c.latest_version + 1);
            let body_sealed = self.vault.seal(
                Sealed::ProfileVersion {
                    identifier: &p.identifier,
                    version,
                },
                &p.body,
            )?;
            let new = NewProfileVersion {
                version: ProfileVersionRecord {
                    identifier: p.identifier.clone(),
                    version,
                    payload_uuid: p.uuid.clone(),
                    name: p.name().to_string(),
                    scope: p.scope.as_str().to_string(),
                    payload_types: payload_types.clone(),
                    sha256: sha256.clone(),
                    body_sealed,
                    signed: p.signed,
                    has_variables: p.templated,
                    uploaded_by: actor.to_string(),
                    created_at: now_ms(),
                },
                description: p.description.clone(),
                organization: p.organization.clone(),
            };
            if self.store.insert_profile_version(&new).await? {
                self.audit_upload(actor, &p, version, true, &extra).await?;
                return self.uploaded(&p, version, true).await;
            }
        }
        Err(ProfileError::Conflict(format!(
            "other uploads of {} kept landing first; try again",
            p.identifier
        )))
    }

    async fn audit_upload(
        &self,
        actor: &str,
        p: &Mobileconfig,
        version: i64,
        created: bool,
        extra: &serde_json::Value,
    ) -> ProfileResult<()> {
        let mut detail = json!({
            "version": version,
            "created": created,
            "payload_uuid": p.uuid,
            "payload_types": p.payload_types(),
            "signed": p.signed,
            "variables": p.variables.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "sha256": p.sha256_hex(),
        });
        if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        self.audit(actor, "profile.upload", &p.identifier, detail)
            .await
    }

    async fn uploaded(
        &self,
        p: &Mobileconfig,
        version: i64,
        created: bool,
    ) -> ProfileResult<Uploaded> {
        let detail = self.show(&p.identifier).await?;
        let reconciled = if created {
            let targets: Vec<_> = detail
                .assignments
                .iter()
                .map(|a| a.target.clone())
                .collect();
            let devices = self.devices_of(&targets).await?;
            self.converge(&devices).await?
        } else {
            ReconcileReport::default()
        };
        Ok(Uploaded {
            detail,
            version,
            created,
            warnings: p.warnings.clone(),
            variables: p.variables.clone(),
            reconciled,
        })
    }

    /// The catalog, by identifier; deleted profiles only when asked.
    pub async fn list(&self, include_deleted: bool) -> ProfileResult<Vec<ProfileRecord>> {
        Ok(self.store.profiles(include_deleted).await?)
    }

    /// One profile (deleted ones too: their history stays), its versions and assignments.
    pub async fn show(&self, identifier: &str) -> ProfileResult<ProfileDetail> {
        let profile = self
            .store
            .profile(identifier)
            .await?
            .ok_or_else(|| ProfileError::NotFound(format!("no profile {identifier}")))?;
        Ok(ProfileDetail {
            versions: self.store.profile_versions(identifier).await?,
            assignments: self.store.profile_assignments(identifier).await?,
            profile,
        })
    }

    /// `profile delete`: mark the profile deleted and drop its assignments (so it is removed
    /// from the Macs that have it); its versions stay. Audited.
    pub async fn delete(&self, identifier: &str, actor: &str) -> ProfileResult<Deleted> {
        let removed = self
            .store
            .delete_profile(identifier, now_ms())
            .await?
            .ok_or_else(|| {
                ProfileError::NotFound(format!("no profile {identifier} (or it is deleted)"))
            })?;
        let detail = self.show(identifier).await?;
        let (groups, devices) = super::assignments::split(removed.iter().map(|a| &a.target));
        self.audit(
            actor,
            "profile.delete",
            identifier,
            json!({
                "latest_version": detail.profile.latest_version,
                "removed_assignments": {"groups": groups, "devices": devices},
            }),
        )
        .await?;
        // Every Mac that has it, or was on its way to: the assignments just dropped name some,
        // the states name the rest.
        let targets: Vec<_> = removed.iter().map(|a| a.target.clone()).collect();
        let mut devices = self.devices_of(&targets).await?;
        devices.extend(
            self.store
                .profile_states_of(identifier)
                .await?
                .into_iter()
                .map(|s| s.device_id),
        );
        devices.sort();
        devices.dedup();
        let reconciled = self.converge(&devices).await?;
        Ok(Deleted { detail, reconciled })
    }
}
