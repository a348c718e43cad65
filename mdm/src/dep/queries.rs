//! What the admin reads about DEP: links with their device counts, device records, profiles.

use super::{DepOpError, DepResult, DepService};
use crate::service::audit;
use crate::store::dep::{
    DEP_STATUSES, DepDeviceFilter, DepDeviceRecord, DepLinkRecord, DepProfileRecord,
};
use serde_json::json;

/// A link with how many of its devices are in each Russet status.
pub struct LinkStatus {
    pub link: DepLinkRecord,
    pub counts: Vec<(String, i64)>,
}

impl DepService {
    pub async fn link_status(&self, name: &str) -> DepResult<LinkStatus> {
        let link = self.link(name).await?;
        let counts = self.store.dep_device_counts(Some(&link.name)).await?;
        Ok(LinkStatus { link, counts })
    }

    pub async fn links_status(&self) -> DepResult<Vec<LinkStatus>> {
        let mut out = Vec::new();
        for link in self.store.dep_links().await? {
            let counts = self.store.dep_device_counts(Some(&link.name)).await?;
            out.push(LinkStatus { link, counts });
        }
        Ok(out)
    }

    /// Device records, a page at a time (1 to 1000). `status` is one of [`DEP_STATUSES`],
    /// spelled loosely (`Not Assigned`, `not-assigned`).
    pub async fn devices(&self, mut filter: DepDeviceFilter) -> DepResult<Vec<DepDeviceRecord>> {
        filter.status = filter
            .status
            .map(|s| s.to_ascii_lowercase().replace([' ', '-'], "_"))
            .filter(|s| !s.is_empty());
        if let Some(s) = &filter.status
            && !DEP_STATUSES.contains(&s.as_str())
        {
            return Err(DepOpError::BadRequest(format!(
                "status is one of {}",
                DEP_STATUSES.join(", ")
            )));
        }
        filter.limit = filter.limit.clamp(1, 1000);
        Ok(self.store.dep_devices(&filter).await?)
    }

    /// Profiles Russet defined (of one link, when named), each with whether it is its link's
    /// default.
    pub async fn profiles(&self, link: Option<&str>) -> DepResult<Vec<(DepProfileRecord, bool)>> {
        let profiles = self.store.dep_profiles(link).await?;
        let links = self.store.dep_links().await?;
        Ok(profiles
            .into_iter()
            .map(|p| {
                let is_default = links
                    .iter()
                    .any(|l| l.default_profile_uuid.as_deref() == Some(&p.profile_uuid));
                (p, is_default)
            })
            .collect())
    }

    /// The links an admin's `dep sync` covers: the one named, else every link with a token;
    /// audited.
    pub async fn request_sync(&self, link: Option<&str>, actor: &str) -> DepResult<Vec<String>> {
        let links = match link {
            Some(l) => vec![self.link(l).await?.name],
            None => self.syncable_links().await?,
        };
        audit::record(
            self.store.as_ref(),
            actor,
            "dep.sync",
            link.unwrap_or("*"),
            json!({}),
        )
        .await?;
        Ok(links)
    }
}
