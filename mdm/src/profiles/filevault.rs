//! FileVault enforced through the profiles machinery: Russet builds one system-scope profile
//! (`org.russet.filevault`, `protocol/filevault.rs`) around its escrow certificate and the
//! admin's settings, stores it as the catalog's next version (the same settings add nothing),
//! and assigns it to groups; the reconciler installs it and verifies it in each Mac's
//! ProfileList. The keys the Macs then escrow are the core's (`service/filevault.rs`).
//!
//! One profile for the fleet, not one per group: two FileVault payloads on one Mac would
//! conflict, so settings apply to every group it is assigned to (the latest call wins, as a
//! new version every Mac gets).

use super::assignments::AssignOutcome;
use super::catalog::Uploaded;
use super::{ProfileError, ProfileResult, ProfileService};
use crate::protocol::filevault::{DEFAULT_LOCATION, FILEVAULT_PROFILE, FileVaultPolicy};
use crate::protocol::mobileconfig::{self, UploadRules};
use serde_json::json;

/// Most logins FileVault may be put off at (`DeferForceAtUserLoginMaxBypassAttempts`; Apple
/// gives no ceiling, a larger number means "never" in practice).
pub const MAX_BYPASS_ATTEMPTS: i64 = 30;
/// Longest `Location` text (macOS shows it in one line of a dialog).
const MAX_LOCATION: usize = 200;

/// What an admin asks for (contract v2, `POST /api/v1/filevault/enforce`).
#[derive(Debug, Clone, Default)]
pub struct EnforceRequest {
    pub group: String,
    /// Enable at logout rather than at once (default true: the user is not interrupted).
    pub defer: Option<bool>,
    pub max_bypass_attempts: Option<i64>,
    /// A FileVaultMaster certificate (PEM) as the institutional recovery key. Intel Macs only.
    pub institutional_certificate_pem: Option<String>,
    pub location: Option<String>,
    /// `ForceEnableInSetupAssistant`: ADE Macs on macOS 14+ turn FileVault on in Setup
    /// Assistant when the profile is part of their AwaitingConfiguration setup.
    pub force_in_setup_assistant: Option<bool>,
}

/// What enforcing came to.
#[derive(Debug, Clone)]
pub struct Enforced {
    pub uploaded: Uploaded,
    pub assigned: AssignOutcome,
    /// What an admin should know (Apple silicon ignores an institutional key).
    pub notes: Vec<String>,
}

fn bad(m: impl Into<String>) -> ProfileError {
    ProfileError::BadRequest(m.into())
}

/// The request checked and turned into the profile's settings.
pub fn policy_of(req: &EnforceRequest) -> ProfileResult<(FileVaultPolicy, Vec<String>)> {
    let mut notes = Vec::new();
    if let Some(n) = req.max_bypass_attempts
        && !(0..=MAX_BYPASS_ATTEMPTS).contains(&n)
    {
        return Err(bad(format!(
            "max_bypass_attempts must be between 0 and {MAX_BYPASS_ATTEMPTS} (0 forces \
             FileVault at the next login)"
        )));
    }
    let location = req
        .location
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or(DEFAULT_LOCATION)
        .to_string();
    if location.chars().count() > MAX_LOCATION || location.chars().any(char::is_control) {
        return Err(bad(format!(
            "location must be one line of at most {MAX_LOCATION} characters"
        )));
    }
    let institutional_certificate = match req.institutional_certificate_pem.as_deref() {
        None => None,
        Some(pem) if pem.trim().is_empty() => None,
        Some(pem) => {
            if pem.len() > 64 * 1024 {
                return Err(bad("institutional_certificate_pem is larger than 64 KiB"));
            }
            let cert = openssl::x509::X509::from_pem(pem.as_bytes()).map_err(|_| {
                bad(
                    "institutional_certificate_pem is not a PEM certificate (export the \
                     FileVaultMaster certificate, without its private key)",
                )
            })?;
            let rsa = cert.public_key().ok().and_then(|k| k.rsa().ok());
            if rsa.is_none() {
                return Err(bad(
                    "institutional_certificate_pem must hold an RSA key (FileVaultMaster \
                     certificates are RSA)",
                ));
            }
            notes.push(
                "the institutional recovery key applies to Intel Macs only: Apple silicon \
                 ignores it, so Russet's escrowed personal recovery key is what recovers those"
                    .to_string(),
            );
            Some(
                cert.to_der()
                    .map_err(|e| ProfileError::Internal(format!("certificate DER: {e}")))?,
            )
        }
    };
    Ok((
        FileVaultPolicy {
            defer: req.defer.unwrap_or(true),
            max_bypass_attempts: req.max_bypass_attempts,
            location,
            institutional_certificate,
            force_in_setup_assistant: req.force_in_setup_assistant.unwrap_or(false),
        },
        notes,
    ))
}

impl ProfileService {
    /// `filevault enforce`: build the FileVault profile with these settings (the catalog's
    /// next version when they changed) and assign it to the group. Audited.
    pub async fn enforce_filevault(
        &self,
        req: &EnforceRequest,
        actor: &str,
    ) -> ProfileResult<Enforced> {
        let group = req.group.trim();
        if group.is_empty() {
            return Err(bad("group is required"));
        }
        if self.store.group(group).await?.is_none() {
            return Err(ProfileError::NotFound(format!("no group {group}")));
        }
        let (policy, notes) = policy_of(req)?;
        let escrow = self.service.filevault_escrow_key().await?;
        let bytes = crate::protocol::filevault::build_profile(&policy, &escrow.cert_der)
            .map_err(|e| ProfileError::Internal(e.to_string()))?;
        let parsed = mobileconfig::parse(
            &bytes,
            &UploadRules {
                reserved_identifiers: &[],
                mdm_scep_url: None,
                russet_escrow: true,
            },
        )?;
        let uploaded = self
            .store_version(
                parsed,
                actor,
                json!({"filevault": {
                    "defer": policy.defer,
                    "max_bypass_attempts": policy.max_bypass_attempts,
                    "institutional_key": policy.institutional_certificate.is_some(),
                    "force_in_setup_assistant": policy.force_in_setup_assistant,
                }}),
            )
            .await?;
        let assigned = self
            .assign(FILEVAULT_PROFILE, &[group.to_string()], &[], actor)
            .await?;
        self.audit(
            actor,
            "filevault.enforce",
            group,
            json!({"profile": FILEVAULT_PROFILE, "version": uploaded.version}),
        )
        .await?;
        Ok(Enforced {
            uploaded,
            assigned,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_with_clear_errors() {
        let ok = |r: EnforceRequest| policy_of(&r).map(|(p, _)| p);
        let base = EnforceRequest {
            group: "G".into(),
            ..Default::default()
        };
        let p = ok(base.clone()).unwrap();
        assert!(p.defer);
        assert_eq!(p.location, DEFAULT_LOCATION);
        for bad in [-1, MAX_BYPASS_ATTEMPTS + 1] {
            let e = ok(EnforceRequest {
                max_bypass_attempts: Some(bad),
                ..base.clone()
            })
            .unwrap_err();
            assert!(e.to_string().contains("max_bypass_attempts"), "{e}");
        }
        let e = ok(EnforceRequest {
            institutional_certificate_pem: Some("-----BEGIN CERTIFICATE-----\nxx".into()),
            ..base.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("not a PEM certificate"), "{e}");
        let e = ok(EnforceRequest {
            location: Some("two\nlines".into()),
            ..base.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("location"), "{e}");
        // A real certificate is taken, with the Apple silicon note.
        let (der, _) = russet_certs::escrow::generate_escrow_key("FileVaultMaster").unwrap();
        let pem = openssl::x509::X509::from_der(&der)
            .unwrap()
            .to_pem()
            .unwrap();
        let (p, notes) = policy_of(&EnforceRequest {
            institutional_certificate_pem: Some(String::from_utf8(pem).unwrap()),
            ..base
        })
        .unwrap();
        assert_eq!(p.institutional_certificate, Some(der));
        assert!(notes[0].contains("Apple silicon"));
    }
}
