//! Golden images (issue 15; contract v2, "Golden images"): the corporate VM image policy
//! Parallels Desktop offers users when they create a VM. The seed guide's words: a golden
//! image has a **name** and an optional **description** (both shown to users), and up to two
//! images — **Apple silicon** and **Intel** — each a download **URL** (HTTP/HTTPS, no
//! authentication) and its **SHA-256**; it is **assigned to groups**, a group holds **only
//! one**; **deleting** one is irreversible and leaves its groups without an image.
//!
//! This is the catalog and its group assignments. Delivery to Macs (a managed-preferences
//! profile per architecture, through the profiles machinery) is `profiles::golden_images`,
//! which wraps every change made here. Parallels Desktop activation per group (license key or
//! SSO) is `parallels_activation`.
//!
//! - Verify downloads each architecture's image (`golden_image_fetch`, streamed, never whole
//!   in memory) and compares its SHA-256; the outcome is audited (`golden_image.verify`).
//! - The HEAD check on create or change of a URL is advice: its outcome is a warning in the
//!   answer, never a refusal (the server may not see what the Macs see); it can be skipped.
//!
//! - Input is checked by `golden_image_input` (pure): each refusal names its field.
//! - Names are unique regardless of case and found in any case; groups are named exactly, as
//!   in the groups API.
//! - One image per group is the database's rule (`store::golden_images`): assigning a group
//!   that holds another image is a 409 naming that image; assigning the same image again is
//!   no change. A list of groups is taken whole or not at all.
//! - Deleting needs `confirm` (a 400 otherwise, naming the groups that would lose their image).
//! - Every change is audited here: `golden_image.create`, `.change`, `.delete`, `.assign`,
//!   `.unassign`.

use super::golden_image_fetch::{self as fetch, Progress};
use super::golden_image_input::{self as input, Arch, FieldError, ImageSource};
use super::{MdmService, ServiceError};
use crate::store::golden_images::{AssignOutcome, GoldenImageRecord};
use crate::timefmt::now_ms;
use serde::Serialize;
use serde_json::json;
use std::time::Instant;

/// Groups named in one assign or unassign.
pub const MAX_GROUPS_PER_CALL: usize = 1000;

/// An image of one architecture as given (checked when used).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInput {
    pub url: String,
    pub sha256: String,
}

/// `POST /api/v1/golden-images`.
#[derive(Debug, Clone, Default)]
pub struct NewGoldenImage {
    pub name: String,
    pub description: Option<String>,
    pub apple_silicon: Option<ImageInput>,
    pub intel: Option<ImageInput>,
}

/// `PATCH /api/v1/golden-images/{name}`: `None` keeps a field, `Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct GoldenImageChange {
    pub description: Option<Option<String>>,
    pub apple_silicon: Option<Option<ImageInput>>,
    pub intel: Option<Option<ImageInput>>,
}

/// A golden image with the groups it is assigned to (by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenImage {
    pub record: GoldenImageRecord,
    pub groups: Vec<String>,
}

/// What an assign or unassign did.
#[derive(Debug, Clone)]
pub struct GroupsChange {
    pub image: GoldenImage,
    /// The groups given that were assigned (unassigned) now.
    pub changed: Vec<String>,
    /// The groups given that held this image already (did not hold it).
    pub unchanged: Vec<String>,
}

/// A URL the HEAD check found wanting: advice shown with the create or change answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UrlWarning {
    pub architecture: &'static str,
    pub url: String,
    pub warning: String,
}

/// What verify found for one architecture: `matched` only when the download completed and
/// its SHA-256 is the one in the catalog; `error` when it did not complete.
#[derive(Debug, Clone, Serialize)]
pub struct ArchVerification {
    pub architecture: &'static str,
    pub url: String,
    #[serde(rename = "match")]
    pub matched: bool,
    pub expected: String,
    pub actual: Option<String>,
    pub bytes: u64,
    pub seconds: f64,
    pub error: Option<String>,
}

/// What verify reports as it goes.
#[derive(Debug, Clone)]
pub enum VerifyEvent {
    Progress { arch: Arch, progress: Progress },
    Result(ArchVerification),
}

/// The image's architectures with their sources, Apple silicon first.
fn sources(r: &GoldenImageRecord) -> Vec<(Arch, ImageSource)> {
    [
        (
            Arch::AppleSilicon,
            source_of(&r.apple_silicon_url, &r.apple_silicon_sha256),
        ),
        (Arch::Intel, source_of(&r.intel_url, &r.intel_sha256)),
    ]
    .into_iter()
    .filter_map(|(a, s)| s.map(|s| (a, s)))
    .collect()
}

/// The HEAD check of the URLs of `image` that `before` did not have (all of them on create),
/// one architecture after the other (at most two short requests).
pub async fn url_warnings(
    image: &GoldenImageRecord,
    before: Option<&GoldenImageRecord>,
) -> Vec<UrlWarning> {
    let old: Vec<String> = before
        .map(|b| sources(b).into_iter().map(|(_, s)| s.url).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (arch, source) in sources(image) {
        if old.contains(&source.url) {
            continue;
        }
        if let Some(warning) = fetch::head_warning(&source.url).await {
            out.push(UrlWarning {
                architecture: arch.key(),
                url: source.url,
                warning,
            });
        }
    }
    out
}

fn bad(e: FieldError) -> ServiceError {
    ServiceError::BadRequest(e.to_string())
}

fn checked(arch: Arch, given: Option<ImageInput>) -> Result<Option<ImageSource>, ServiceError> {
    given
        .map(|i| input::source(arch, &i.url, &i.sha256).map_err(bad))
        .transpose()
}

fn at_least_one(
    apple: &Option<ImageSource>,
    intel: &Option<ImageSource>,
) -> Result<(), ServiceError> {
    if apple.is_none() && intel.is_none() {
        return Err(ServiceError::BadRequest(
            "apple_silicon, intel: a golden image needs an image for at least one \
             architecture (a URL and its SHA-256)"
                .into(),
        ));
    }
    Ok(())
}

fn split(s: Option<ImageSource>) -> (Option<String>, Option<String>) {
    match s {
        Some(s) => (Some(s.url), Some(s.sha256)),
        None => (None, None),
    }
}

fn source_of(url: &Option<String>, sha256: &Option<String>) -> Option<ImageSource> {
    match (url, sha256) {
        (Some(url), Some(sha256)) => Some(ImageSource {
            url: url.clone(),
            sha256: sha256.clone(),
        }),
        _ => None,
    }
}

/// The groups named in an assign or unassign: at least one, none empty, each once (in the
/// order given).
fn group_list(groups: &[String]) -> Result<Vec<String>, ServiceError> {
    if groups.is_empty() {
        return Err(ServiceError::BadRequest(
            "groups: name at least one group".into(),
        ));
    }
    if groups.len() > MAX_GROUPS_PER_CALL {
        return Err(ServiceError::BadRequest(format!(
            "groups: at most {MAX_GROUPS_PER_CALL} groups at once"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(groups.len());
    for g in groups {
        if g.trim().is_empty() {
            return Err(ServiceError::BadRequest(
                "groups: a group name is empty".into(),
            ));
        }
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    Ok(out)
}

/// The image as the audit log shows it (URLs and checksums are not secret: the seed guide's
/// images download without authentication).
fn audit_view(r: &GoldenImageRecord) -> serde_json::Value {
    json!({
        "description": r.description,
        "apple_silicon": source_of(&r.apple_silicon_url, &r.apple_silicon_sha256)
            .map(|s| json!({"url": s.url, "sha256": s.sha256})),
        "intel": source_of(&r.intel_url, &r.intel_sha256)
            .map(|s| json!({"url": s.url, "sha256": s.sha256})),
    })
}

impl MdmService {
    async fn golden_image_record(&self, name: &str) -> Result<GoldenImageRecord, ServiceError> {
        self.store
            .golden_image(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no golden image {name}")))
    }

    async fn with_groups(&self, record: GoldenImageRecord) -> Result<GoldenImage, ServiceError> {
        let groups = self.store.golden_image_groups(&record.name).await?;
        Ok(GoldenImage { record, groups })
    }

    /// A new golden image; audited. 409 when the name exists (in any case).
    pub async fn create_golden_image(
        &self,
        new: NewGoldenImage,
        actor: &str,
    ) -> Result<GoldenImage, ServiceError> {
        let name = input::name(&new.name).map_err(bad)?;
        let description = input::description(new.description.as_deref()).map_err(bad)?;
        let apple = checked(Arch::AppleSilicon, new.apple_silicon)?;
        let intel = checked(Arch::Intel, new.intel)?;
        at_least_one(&apple, &intel)?;
        let (apple_silicon_url, apple_silicon_sha256) = split(apple);
        let (intel_url, intel_sha256) = split(intel);
        let now = now_ms();
        let record = GoldenImageRecord {
            name,
            description,
            apple_silicon_url,
            apple_silicon_sha256,
            intel_url,
            intel_sha256,
            created_at: now,
            created_by: actor.to_owned(),
            updated_at: now,
            updated_by: actor.to_owned(),
        };
        if !self.store.insert_golden_image(&record).await? {
            return Err(ServiceError::Conflict(format!(
                "a golden image named {} exists (names are unique regardless of case)",
                record.name
            )));
        }
        self.audit(
            actor,
            "golden_image.create",
            &record.name,
            audit_view(&record),
        )
        .await?;
        Ok(GoldenImage {
            record,
            groups: Vec::new(),
        })
    }

    /// Every golden image by name, with its groups.
    pub async fn golden_images(&self) -> Result<Vec<GoldenImage>, ServiceError> {
        Ok(self
            .store
            .golden_images()
            .await?
            .into_iter()
            .map(|(record, groups)| GoldenImage { record, groups })
            .collect())
    }

    /// One golden image (named in any case) with its groups.
    pub async fn golden_image(&self, name: &str) -> Result<GoldenImage, ServiceError> {
        let record = self.golden_image_record(name).await?;
        self.with_groups(record).await
    }

    /// Change the description or either architecture (`Some(None)` removes one; at least one
    /// stays); audited with what it was before.
    pub async fn change_golden_image(
        &self,
        name: &str,
        change: GoldenImageChange,
        actor: &str,
    ) -> Result<GoldenImage, ServiceError> {
        let old = self.golden_image_record(name).await?;
        let description = match change.description {
            None => old.description.clone(),
            Some(d) => input::description(d.as_deref()).map_err(bad)?,
        };
        let apple = match change.apple_silicon {
            None => source_of(&old.apple_silicon_url, &old.apple_silicon_sha256),
            Some(given) => checked(Arch::AppleSilicon, given)?,
        };
        let intel = match change.intel {
            None => source_of(&old.intel_url, &old.intel_sha256),
            Some(given) => checked(Arch::Intel, given)?,
        };
        at_least_one(&apple, &intel)?;
        let (apple_silicon_url, apple_silicon_sha256) = split(apple);
        let (intel_url, intel_sha256) = split(intel);
        let record = GoldenImageRecord {
            description,
            apple_silicon_url,
            apple_silicon_sha256,
            intel_url,
            intel_sha256,
            updated_at: now_ms(),
            updated_by: actor.to_owned(),
            ..old.clone()
        };
        if !self.store.update_golden_image(&record).await? {
            return Err(ServiceError::NotFound(format!("no golden image {name}")));
        }
        self.audit(
            actor,
            "golden_image.change",
            &record.name,
            json!({"before": audit_view(&old), "after": audit_view(&record)}),
        )
        .await?;
        self.with_groups(record).await
    }

    /// Delete a golden image and its assignments; audited. Irreversible, so it needs
    /// `confirm` (the seed guide: warn, require confirmation); without it, a 400 naming the
    /// groups that would lose their image. Returns the groups that did.
    pub async fn delete_golden_image(
        &self,
        name: &str,
        confirm: bool,
        actor: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let image = self.golden_image(name).await?;
        if !confirm {
            let groups = if image.groups.is_empty() {
                "it is assigned to no group".to_owned()
            } else {
                format!(
                    "its groups would be left without a golden image: {}",
                    image.groups.join(", ")
                )
            };
            return Err(ServiceError::BadRequest(format!(
                "confirm: deleting golden image {} is irreversible; {groups}. Repeat with \
                 confirm=true (russet golden-image delete NAME --confirm)",
                image.record.name
            )));
        }
        let Some(freed) = self.store.delete_golden_image(&image.record.name).await? else {
            return Err(ServiceError::NotFound(format!("no golden image {name}")));
        };
        let mut detail = audit_view(&image.record);
        detail["groups"] = json!(freed);
        self.audit(actor, "golden_image.delete", &image.record.name, detail)
            .await?;
        Ok(freed)
    }

    /// Assign a golden image to groups, all or none; audited. A group that does not exist is
    /// a 404; one that holds another image a 409 naming that image; one that holds this image
    /// already is no change.
    pub async fn assign_golden_image(
        &self,
        name: &str,
        groups: &[String],
        actor: &str,
    ) -> Result<GroupsChange, ServiceError> {
        let groups = group_list(groups)?;
        let record = self.golden_image_record(name).await?;
        let image = &record.name;
        let (added, unchanged) = match self
            .store
            .assign_golden_image(image, &groups, now_ms(), actor)
            .await?
        {
            AssignOutcome::Assigned { added, unchanged } => (added, unchanged),
            AssignOutcome::NoImage => {
                return Err(ServiceError::NotFound(format!("no golden image {name}")));
            }
            AssignOutcome::NoGroup(g) => {
                return Err(ServiceError::NotFound(format!("no group {g}")));
            }
            AssignOutcome::Taken { group, holder } => {
                return Err(ServiceError::Conflict(format!(
                    "group {group} holds golden image {holder} (a group holds at most one): \
                     unassign it first (russet golden-image unassign {holder} --group {group})"
                )));
            }
            AssignOutcome::Contended(group) => {
                return Err(ServiceError::Conflict(format!(
                    "group {group} was being assigned and unassigned by others at the same \
                     time; try again"
                )));
            }
        };
        self.audit(
            actor,
            "golden_image.assign",
            image,
            json!({"added": added, "unchanged": unchanged}),
        )
        .await?;
        Ok(GroupsChange {
            image: self.with_groups(record).await?,
            changed: added,
            unchanged,
        })
    }

    /// Take a golden image off groups; audited. A group that does not hold it (holds nothing,
    /// holds another image, or does not exist) is left as it is and reported unchanged.
    pub async fn unassign_golden_image(
        &self,
        name: &str,
        groups: &[String],
        actor: &str,
    ) -> Result<GroupsChange, ServiceError> {
        let groups = group_list(groups)?;
        let record = self.golden_image_record(name).await?;
        let removed = self
            .store
            .unassign_golden_image(&record.name, &groups)
            .await?;
        let unchanged: Vec<String> = groups
            .into_iter()
            .filter(|g| !removed.contains(g))
            .collect();
        self.audit(
            actor,
            "golden_image.unassign",
            &record.name,
            json!({"removed": removed, "not_assigned": unchanged}),
        )
        .await?;
        Ok(GroupsChange {
            image: self.with_groups(record).await?,
            changed: removed,
            unchanged,
        })
    }

    /// Download each architecture's image and compare its SHA-256 with the catalog's;
    /// `on_event` hears progress and each architecture's result as they come. Audited
    /// (`golden_image.verify`) with every result. A download that fails is that
    /// architecture's `error`, not this call's.
    pub async fn verify_golden_image(
        &self,
        name: &str,
        actor: &str,
        mut on_event: impl FnMut(VerifyEvent) + Send,
    ) -> Result<Vec<ArchVerification>, ServiceError> {
        let record = self.golden_image_record(name).await?;
        let mut results = Vec::new();
        for (arch, source) in sources(&record) {
            let started = Instant::now();
            let outcome = fetch::download_sha256(&source.url, |progress| {
                on_event(VerifyEvent::Progress { arch, progress })
            })
            .await;
            let seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
            let result = match outcome {
                Ok(d) => ArchVerification {
                    architecture: arch.key(),
                    matched: d.sha256 == source.sha256,
                    url: source.url,
                    expected: source.sha256,
                    actual: Some(d.sha256),
                    bytes: d.bytes,
                    seconds,
                    error: None,
                },
                Err(e) => ArchVerification {
                    architecture: arch.key(),
                    matched: false,
                    url: source.url,
                    expected: source.sha256,
                    actual: None,
                    bytes: 0,
                    seconds,
                    error: Some(e),
                },
            };
            on_event(VerifyEvent::Result(result.clone()));
            results.push(result);
        }
        self.audit(
            actor,
            "golden_image.verify",
            &record.name,
            json!({
                "ok": results.iter().all(|r| r.matched),
                "results": results,
            }),
        )
        .await?;
        Ok(results)
    }
}
