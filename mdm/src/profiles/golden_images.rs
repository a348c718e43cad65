//! Golden images delivered to Macs (issue 15; the seed guide's "golden images": a corporate VM
//! image per architecture that Parallels Desktop offers users, assigned to groups). The catalog
//! and its rules are the core's (`service::golden_images`); this module keeps delivery in step
//! with every admin action, so the HTTP handlers call these and nothing else.
//!
//! For each image and each architecture it has, Russet builds one Custom Settings profile
//! (Apple's `com.apple.ManagedClient.preferences`) for its own preference domain
//! [`GOLDEN_IMAGE_DOMAIN`] with the keys `Name`, `Description` (when given), `URL`, `SHA256`
//! and `Architecture` (`arm64` or `x86_64`, what `uname -m` says on the Mac), stores it as the
//! catalog's next version under [`profile_identifier`], restricts it to that architecture
//! (`profiles.architecture`, so only Macs whose DeviceInformation `IsAppleSilicon` says so get
//! it) and assigns it to exactly the image's groups. A deployment script reads
//! `/Library/Managed Preferences/org.russet.golden-image.plist` (README, "Golden images").
//!
//! - change: the same keys build the same bytes (no new version); others are a new version
//!   every Mac of those groups gets;
//! - an architecture removed, or the image deleted: its profile is deleted (removed from Macs);
//! - assign/unassign: the profiles' group assignments follow the image's.
//!
//! A Mac in two groups holding different images gets both images' profiles; they share the
//! domain, so macOS keeps one of them: the device view names the image of the first group by
//! name, and admins should not put a Mac in two such groups.

use super::desired::{PROFILE_APPLE_SILICON, PROFILE_INTEL};
use super::{ProfileError, ProfileResult, ProfileService};
use crate::protocol::mobileconfig;
use crate::protocol::mobileconfig::custom_settings::{self, CustomSettings};
use crate::service::devices::DeviceDetails;
use crate::service::golden_image_input::Arch;
use crate::service::golden_images::{GoldenImage, GoldenImageChange, GroupsChange, NewGoldenImage};
use crate::store::golden_images::GoldenImageRecord;
use crate::store::profiles::TargetKind;
use plist::{Dictionary, Value};
use serde_json::json;

/// Russet's managed-preferences domain for golden images (reserved: uploads cannot use it or
/// any identifier under it).
pub const GOLDEN_IMAGE_DOMAIN: &str = "org.russet.golden-image";

const ARCHES: [Arch; 2] = [Arch::AppleSilicon, Arch::Intel];

/// The profile's `profiles.architecture` value for `arch`.
fn restriction(arch: Arch) -> &'static str {
    match arch {
        Arch::AppleSilicon => PROFILE_APPLE_SILICON,
        Arch::Intel => PROFILE_INTEL,
    }
}

/// The `Architecture` key: what `uname -m` prints on such a Mac, so a script compares it as is.
pub fn machine(arch: Arch) -> &'static str {
    match arch {
        Arch::AppleSilicon => "arm64",
        Arch::Intel => "x86_64",
    }
}

fn suffix(arch: Arch) -> &'static str {
    match arch {
        Arch::AppleSilicon => "apple-silicon",
        Arch::Intel => "intel",
    }
}

/// `org.russet.golden-image.<slug>-<8 hex>.<apple-silicon|intel>`
/// ([`custom_settings::identifier_stem`]: readable, and two names with one slug stay apart;
/// image names never change).
pub fn profile_identifier(name: &str, arch: Arch) -> String {
    format!(
        "{GOLDEN_IMAGE_DOMAIN}.{}.{}",
        custom_settings::identifier_stem(name),
        suffix(arch)
    )
}

/// The Custom Settings for `arch` of this image, or `None` when it has no image for `arch`.
pub fn settings(r: &GoldenImageRecord, arch: Arch) -> Option<CustomSettings> {
    let (url, sha256) = match arch {
        Arch::AppleSilicon => (
            r.apple_silicon_url.as_ref()?,
            r.apple_silicon_sha256.as_ref()?,
        ),
        Arch::Intel => (r.intel_url.as_ref()?, r.intel_sha256.as_ref()?),
    };
    let mut d = Dictionary::new();
    d.insert("Name".into(), Value::String(r.name.clone()));
    if let Some(desc) = &r.description {
        d.insert("Description".into(), Value::String(desc.clone()));
    }
    d.insert("URL".into(), Value::String(url.clone()));
    d.insert("SHA256".into(), Value::String(sha256.clone()));
    d.insert("Architecture".into(), Value::String(machine(arch).into()));
    let label = match arch {
        Arch::AppleSilicon => "Apple silicon",
        Arch::Intel => "Intel",
    };
    Some(CustomSettings {
        identifier: profile_identifier(&r.name, arch),
        name: format!("Golden image: {} ({label})", r.name),
        domain: GOLDEN_IMAGE_DOMAIN.into(),
        settings: d,
    })
}

/// Which golden image applies to a Mac and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGoldenImage {
    pub name: String,
    /// The group that gives it (the first by name when several do).
    pub group: String,
    /// `apple_silicon`, `intel`, or `None` while inventory has not said.
    pub architecture: Option<&'static str>,
    /// The profile's state on the Mac (`pending`, `installed`, …); `None` when nothing is
    /// planned (architecture unknown, or no image for it).
    pub state: Option<String>,
    /// The profile carrying it, when the image has one for the Mac's architecture.
    pub profile: Option<String>,
}

impl ProfileService {
    /// `POST /api/v1/golden-images`: the catalog's create, then delivery.
    pub async fn create_golden_image(
        &self,
        new: NewGoldenImage,
        actor: &str,
    ) -> ProfileResult<GoldenImage> {
        let image = self.service.create_golden_image(new, actor).await?;
        self.deliver_golden_image(&image.record.name, actor).await?;
        Ok(image)
    }

    /// `PATCH`: a changed image is a new version every Mac of its groups gets.
    pub async fn change_golden_image(
        &self,
        name: &str,
        change: GoldenImageChange,
        actor: &str,
    ) -> ProfileResult<GoldenImage> {
        let image = self
            .service
            .change_golden_image(name, change, actor)
            .await?;
        self.deliver_golden_image(&image.record.name, actor).await?;
        Ok(image)
    }

    /// `DELETE`: the image's profiles are deleted too (removed from the Macs).
    pub async fn delete_golden_image(
        &self,
        name: &str,
        confirm: bool,
        actor: &str,
    ) -> ProfileResult<Vec<String>> {
        let image = self.service.golden_image(name).await?;
        let freed = self
            .service
            .delete_golden_image(&image.record.name, confirm, actor)
            .await?;
        self.deliver_golden_image(&image.record.name, actor).await?;
        Ok(freed)
    }

    pub async fn assign_golden_image(
        &self,
        name: &str,
        groups: &[String],
        actor: &str,
    ) -> ProfileResult<GroupsChange> {
        let change = self
            .service
            .assign_golden_image(name, groups, actor)
            .await?;
        self.deliver_golden_image(&change.image.record.name, actor)
            .await?;
        Ok(change)
    }

    pub async fn unassign_golden_image(
        &self,
        name: &str,
        groups: &[String],
        actor: &str,
    ) -> ProfileResult<GroupsChange> {
        let change = self
            .service
            .unassign_golden_image(name, groups, actor)
            .await?;
        self.deliver_golden_image(&change.image.record.name, actor)
            .await?;
        Ok(change)
    }

    /// Make the image's profiles match it (`name` exactly as stored): one per architecture it
    /// has, assigned to exactly its groups; the others deleted. Idempotent: calling it again
    /// changes nothing.
    pub async fn deliver_golden_image(&self, name: &str, actor: &str) -> ProfileResult<()> {
        let record = self.store.golden_image(name).await?;
        let groups = match &record {
            Some(r) => self.store.golden_image_groups(&r.name).await?,
            None => Vec::new(),
        };
        for arch in ARCHES {
            let identifier = profile_identifier(name, arch);
            match record.as_ref().and_then(|r| settings(r, arch)) {
                Some(cs) => {
                    self.store_golden_profile(&cs, arch, actor).await?;
                    let assigned: Vec<String> = self
                        .store
                        .profile_assignments(&identifier)
                        .await?
                        .into_iter()
                        .filter(|a| a.target.kind == TargetKind::Group)
                        .map(|a| a.target.name)
                        .collect();
                    let add: Vec<String> = groups
                        .iter()
                        .filter(|g| !assigned.contains(g))
                        .cloned()
                        .collect();
                    let remove: Vec<String> = assigned
                        .into_iter()
                        .filter(|g| !groups.contains(g))
                        .collect();
                    if !add.is_empty() {
                        self.assign(&identifier, &add, &[], actor).await?;
                    }
                    if !remove.is_empty() {
                        self.unassign(&identifier, &remove, &[], actor).await?;
                    }
                }
                None => {
                    let live = self
                        .store
                        .profile(&identifier)
                        .await?
                        .is_some_and(|p| p.deleted_at.is_none());
                    if live {
                        self.delete(&identifier, actor).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Build and store one architecture's profile (a new version only when its bytes changed:
    /// an assign or unassign adds none, nor an audit entry for it), restricted to that
    /// architecture before it is assigned anywhere (a new profile has no assignments when
    /// `store_version` returns). The restriction is written every time, so a pass cut short
    /// between the two never leaves an unrestricted profile for the next one to assign.
    async fn store_golden_profile(
        &self,
        cs: &CustomSettings,
        arch: Arch,
        actor: &str,
    ) -> ProfileResult<()> {
        let built = custom_settings::build(cs)?;
        let parsed = mobileconfig::parse(&built, &mobileconfig::RUSSET_BUILT)?;
        let unchanged = match self.store.profile(&cs.identifier).await? {
            Some(p) if p.deleted_at.is_none() => self
                .store
                .profile_version(&cs.identifier, p.latest_version)
                .await?
                .is_some_and(|v| v.sha256 == parsed.sha256_hex()),
            _ => false,
        };
        if !unchanged {
            let extra = json!({"golden_image": {
                "domain": GOLDEN_IMAGE_DOMAIN,
                "architecture": restriction(arch),
            }});
            self.store_version(parsed, actor, extra).await?;
        }
        if !self
            .store
            .set_profile_architecture(&cs.identifier, Some(restriction(arch)))
            .await?
        {
            return Err(ProfileError::Internal(format!(
                "profile {} vanished while it was stored",
                cs.identifier
            )));
        }
        Ok(())
    }

    /// Which golden image applies to this Mac, through which group, and where its profile
    /// stands; `None` when none of its groups holds one.
    pub async fn device_golden_image(
        &self,
        details: &DeviceDetails,
    ) -> ProfileResult<Option<DeviceGoldenImage>> {
        let mut found: Option<(String, GoldenImageRecord)> = None;
        for (record, groups) in self.store.golden_images().await? {
            for g in groups {
                if details.groups.contains(&g) && found.as_ref().is_none_or(|(first, _)| g < *first)
                {
                    found = Some((g, record.clone()));
                }
            }
        }
        let Some((group, record)) = found else {
            return Ok(None);
        };
        let arch = match details.device.is_apple_silicon {
            Some(true) => Some(Arch::AppleSilicon),
            Some(false) => Some(Arch::Intel),
            None => None,
        };
        let profile = arch
            .filter(|a| settings(&record, *a).is_some())
            .map(|a| profile_identifier(&record.name, a));
        let state = profile.as_ref().and_then(|id| {
            details
                .profiles
                .iter()
                .find(|s| &s.identifier == id)
                .map(|s| s.state.clone())
        });
        Ok(Some(DeviceGoldenImage {
            name: record.name,
            group,
            architecture: arch.map(restriction),
            state,
            profile,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mobileconfig::custom_settings::MANAGED_PREFERENCES;

    fn record() -> GoldenImageRecord {
        GoldenImageRecord {
            name: "Dev VM 2026".into(),
            description: Some("needs VPN".into()),
            apple_silicon_url: Some("https://images.example.com/dev-arm.pvmp".into()),
            apple_silicon_sha256: Some("a".repeat(64)),
            intel_url: None,
            intel_sha256: None,
            created_at: 0,
            created_by: "t".into(),
            updated_at: 0,
            updated_by: "t".into(),
        }
    }

    #[test]
    fn identifiers_are_readable_reserved_and_apart() {
        let a = profile_identifier("Dev VM 2026", Arch::AppleSilicon);
        assert!(a.starts_with("org.russet.golden-image.dev-vm-2026-"), "{a}");
        assert!(a.ends_with(".apple-silicon"), "{a}");
        assert!(profile_identifier("Dev VM 2026", Arch::Intel).ends_with(".intel"));
        // Case does not matter (names are unique regardless of case); one slug, two names do.
        assert_eq!(a, profile_identifier("dev vm 2026", Arch::AppleSilicon));
        assert_ne!(a, profile_identifier("dev-vm-2026", Arch::AppleSilicon));
        // A name with no ASCII letter still gives a valid identifier.
        let u = profile_identifier("Образ", Arch::Intel);
        assert!(
            u.starts_with("org.russet.golden-image.") && !u.contains(".."),
            "{u}"
        );
    }

    #[test]
    fn the_profile_carries_the_keys_for_its_architecture_only() {
        let r = record();
        assert!(settings(&r, Arch::Intel).is_none());
        let cs = settings(&r, Arch::AppleSilicon).expect("apple silicon");
        assert_eq!(cs.domain, GOLDEN_IMAGE_DOMAIN);
        let built = custom_settings::build(&cs).expect("build");
        let parsed =
            mobileconfig::parse(&built, &mobileconfig::RUSSET_BUILT).expect("a valid profile");
        assert_eq!(parsed.identifier, cs.identifier);
        assert_eq!(
            parsed.payload_types(),
            vec![MANAGED_PREFERENCES.to_string()]
        );
        let v: Value = plist::from_bytes(&built).expect("plist");
        let forced = v
            .as_dictionary()
            .and_then(|d| d.get("PayloadContent"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_dictionary)
            .and_then(|p| p.get("PayloadContent"))
            .and_then(Value::as_dictionary)
            .and_then(|c| c.get(GOLDEN_IMAGE_DOMAIN))
            .and_then(Value::as_dictionary)
            .and_then(|d| d.get("Forced"))
            .and_then(Value::as_array)
            .and_then(|f| f.first())
            .and_then(Value::as_dictionary)
            .and_then(|f| f.get("mcx_preference_settings"))
            .and_then(Value::as_dictionary)
            .cloned()
            .expect("mcx_preference_settings");
        let s = |k: &str| forced.get(k).and_then(Value::as_string).map(str::to_string);
        assert_eq!(s("Name").as_deref(), Some("Dev VM 2026"));
        assert_eq!(s("Description").as_deref(), Some("needs VPN"));
        assert_eq!(
            s("URL").as_deref(),
            Some("https://images.example.com/dev-arm.pvmp")
        );
        assert_eq!(s("SHA256"), Some("a".repeat(64)));
        assert_eq!(s("Architecture").as_deref(), Some("arm64"));
        // The same image builds the same bytes: no new version for Macs.
        assert_eq!(built, custom_settings::build(&cs).expect("build"));
        // No description: no key.
        let bare = GoldenImageRecord {
            description: None,
            ..r
        };
        let cs = settings(&bare, Arch::AppleSilicon).expect("apple silicon");
        assert!(!cs.settings.contains_key("Description"));
    }
}
