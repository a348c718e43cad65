//! What the admin reads about DEP: links with their device counts, device records, profiles.

use super::{DepResult, DepService, DepStatus};
use crate::service::audit;
use crate::store::dep::{DepDeviceFilter, DepDeviceRecord, DepLinkRecord, DepProfileRecord};
use serde_json::json;

/// A link with how many of its devices are in each Russet status.
pub struct LinkStatus {
    pub link: DepLinkRecord,
    /// `(status, count)`, statuses with no device left out, in name order.
    pub counts: Vec<(String, i64)>,
}

impl DepService {
    pub async fn link_status(&self, name: &str) -> DepResult<LinkStatus> {
        let link = self.link(name).await?;
        let counts = self.status_counts(&link.name).await?;
        Ok(LinkStatus { link, counts })
    }

    pub async fn links_status(&self) -> DepResult<Vec<LinkStatus>> {
        let mut out = Vec::new();
        for link in self.store.dep_links().await? {
            let counts = self.status_counts(&link.name).await?;
            out.push(LinkStatus { link, counts });
        }
        Ok(out)
    }

    async fn status_counts(&self, link: &str) -> DepResult<Vec<(String, i64)>> {
        let mut by_status = std::collections::BTreeMap::<&str, i64>::new();
        for (facts, n) in self.store.dep_device_counts(Some(link)).await? {
            *by_status.entry(DepStatus::of(facts).as_str()).or_default() += n;
        }
        Ok(by_status
            .into_iter()
            .map(|(s, n)| (s.to_string(), n))
            .collect())
    }

    /// Device records, a page at a time (1 to 1000), of one Russet status when given.
    pub async fn devices(
        &self,
        mut filter: DepDeviceFilter,
        status: Option<DepStatus>,
    ) -> DepResult<Vec<DepDeviceRecord>> {
        if let Some(status) = status {
            filter.facts = status.selector();
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
