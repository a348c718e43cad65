//! The bytes a Mac gets for a profile version: what InstallProfile's `Payload` carries.

use super::{ProfileError, ProfileResult, ProfileService};
use crate::protocol::mobileconfig::variables::{self, DeviceVars};
use crate::secrets::Sealed;

impl ProfileService {
    /// The `.mobileconfig` of `identifier` version `version` for one device, and whether it is
    /// signed: a signed upload byte for byte; an unsigned one with its variables filled in
    /// from `vars` (and its `$$` escapes resolved) when it has any, else as uploaded.
    /// `ProfileError::Expand(Missing)` when it uses a variable `vars` lacks (e.g.
    /// `$USER_SHORT_NAME` outside a user channel).
    pub async fn deliverable_bytes(
        &self,
        identifier: &str,
        version: i64,
        vars: &DeviceVars,
    ) -> ProfileResult<(Vec<u8>, bool)> {
        let rec = self
            .store
            .profile_version(identifier, version)
            .await?
            .ok_or_else(|| {
                ProfileError::NotFound(format!("no version {version} of profile {identifier}"))
            })?;
        let body = self.vault.open(
            Sealed::ProfileVersion {
                identifier,
                version,
            },
            &rec.body_sealed,
        )?;
        if rec.signed || !rec.has_variables {
            return Ok((body, rec.signed));
        }
        Ok((variables::expand(&body, vars)?, false))
    }
}
