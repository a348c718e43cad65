//! Configuration profiles (`.mobileconfig`) as Apple defines them: reading an upload (XML, or
//! CMS-signed), checking it against Apple's payload schemas, per-device variables, and the
//! Custom Settings (managed preferences) builder.
//!
//! Format only: which profiles exist, who gets them and audit belong to `crate::profiles`.
//! The rules (Apple's `TopLevel.yaml`, `CommonPayloadKeys.yaml` and one schema per payload
//! type, see [`schemas`]), and where Russet is stricter or looser than the schemas:
//!
//! - the profile: `PayloadType` `Configuration`, `PayloadVersion` 1, a `PayloadIdentifier`, a
//!   `PayloadUUID`, `PayloadScope` `System` or `User` (absent: `System`, what an
//!   InstallProfile on the device channel installs), at least one payload;
//! - every payload: the common keys, a `PayloadIdentifier` and `PayloadUUID` unique within the
//!   profile, and its own keys' types and allowed values as Apple's schema states them;
//! - a payload type in Apple's namespace (`com.apple.…`) must be one the schemas describe and
//!   one available on macOS; any other reverse-DNS type is a vendor's preference domain,
//!   which macOS applies as managed preferences (how Google Chrome or Microsoft Defender
//!   profiles work), so its keys are the vendor's and are not checked;
//! - a key the schema does not describe is a warning, not an error: the schemas (2024-10) lag
//!   macOS, and Macs ignore keys they do not know; a key Apple marks unavailable on macOS is
//!   a warning too (profiles are often shared with iPhones);
//! - refused (Russet owns these): an MDM payload, a SCEP payload for Russet's own CA (a second
//!   MDM identity), FileVault recovery-key escrow, an identifier of Russet's enrollment
//!   profile; an encrypted profile (its payloads cannot be checked).

pub mod custom_settings;
pub mod schemas;
mod validate;
pub mod variables;

use openssl::sha::sha256;
use plist::Value;

use super::schema::Problem;
use variables::Variable;

/// Largest profile accepted, signed or not (the same bound as a signed profile's in
/// `russet_certs::profile_sign`). Profiles with fonts or certificates reach a few hundred KB.
pub const MAX_PROFILE_BYTES: usize = russet_certs::profile_sign::MAX_SIGNED_PROFILE;

/// Problems listed in one error message at most (the rest are counted).
const MAX_LISTED: usize = 20;

/// Where a profile installs (`PayloadScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadScope {
    /// The device channel: the system's keychain and preferences.
    System,
    /// A user channel: that user's keychain and preferences.
    User,
}

impl PayloadScope {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadScope::System => "System",
            PayloadScope::User => "User",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "System" => Some(PayloadScope::System),
            "User" => Some(PayloadScope::User),
            _ => None,
        }
    }
}

/// One payload of a profile, as listed to admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSummary {
    pub payload_type: String,
    pub identifier: String,
    pub uuid: String,
    pub display_name: Option<String>,
}

/// What the caller adds to Apple's rules: Russet's own identifiers and SCEP endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadRules<'a> {
    /// Identifiers of Russet's own profiles (the enrollment profile): an upload may not use
    /// one, nor one below it (`org.russet.enrollment.x`).
    pub reserved_identifiers: &'a [&'a str],
    /// Russet's SCEP URL (`<public url>/scep`).
    pub mdm_scep_url: Option<&'a str>,
    /// The profile is Russet's own FileVault profile (`protocol/filevault.rs`), so its
    /// recovery-key escrow payloads are allowed; an upload never is.
    pub russet_escrow: bool,
}

/// The rules for a profile Russet builds itself (golden images, Parallels activation): checked
/// like an upload against Apple's schemas, with nothing reserved (its identifier is Russet's).
pub const RUSSET_BUILT: UploadRules<'static> = UploadRules {
    reserved_identifiers: &[],
    mdm_scep_url: None,
    russet_escrow: false,
};

/// A profile that passed every check.
#[derive(Debug, Clone)]
pub struct Mobileconfig {
    pub identifier: String,
    pub uuid: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub organization: Option<String>,
    pub scope: PayloadScope,
    pub payloads: Vec<PayloadSummary>,
    /// Uploaded CMS-signed: `body` is the signed DER, delivered as it is.
    pub signed: bool,
    /// The variables the profile uses (always empty for a signed one).
    pub variables: Vec<Variable>,
    /// The profile changes per device (variables or `$$` escapes): expand before delivery.
    pub templated: bool,
    /// What an admin should know but need not fix (unknown keys, iOS-only keys, vendor
    /// payload types), each naming its key path.
    pub warnings: Vec<String>,
    /// The bytes to store and deliver: the upload, unchanged.
    pub body: Vec<u8>,
}

impl Mobileconfig {
    /// `PayloadDisplayName`, or the identifier when there is none.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.identifier)
    }

    /// The payload types, sorted, each once.
    pub fn payload_types(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .payloads
            .iter()
            .map(|p| p.payload_type.clone())
            .collect();
        t.sort();
        t.dedup();
        t
    }

    /// SHA-256 of `body`, lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(sha256(&self.body))
    }
}

/// Why an upload is not accepted. Every problem names its key path
/// (`PayloadContent[2].allowAirDrop: expected <boolean>, found <string>`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MobileconfigError {
    /// Not a profile Apple would install, or breaks Apple's schema.
    #[error("invalid profile: {}", listing(.0))]
    Invalid(Vec<Problem>),
    /// A well-formed profile carrying something Russet owns.
    #[error("refused: {}", listing(.0))]
    Refused(Vec<Problem>),
    /// Russet's embedded schemas did not load (a build defect, not the upload's fault).
    #[error("profile schemas unavailable: {0}")]
    Internal(String),
}

impl MobileconfigError {
    fn invalid(path: &str, message: impl Into<String>) -> Self {
        MobileconfigError::Invalid(vec![Problem {
            path: path.to_string(),
            message: message.into(),
        }])
    }
}

fn listing(problems: &[Problem]) -> String {
    let mut parts: Vec<String> = problems
        .iter()
        .take(MAX_LISTED)
        .map(|p| {
            if p.path.is_empty() {
                p.message.clone()
            } else {
                p.to_string()
            }
        })
        .collect();
    if problems.len() > MAX_LISTED {
        parts.push(format!("and {} more", problems.len() - MAX_LISTED));
    }
    parts.join("; ")
}

/// Reads and checks an uploaded `.mobileconfig`: an XML plist, or an attached CMS
/// SignedData over one (its signature must verify; its signer is the Mac's to judge).
pub fn parse(bytes: &[u8], rules: &UploadRules<'_>) -> Result<Mobileconfig, MobileconfigError> {
    if bytes.len() > MAX_PROFILE_BYTES {
        return Err(MobileconfigError::invalid(
            "",
            format!(
                "the profile is {} bytes; the limit is {MAX_PROFILE_BYTES}",
                bytes.len()
            ),
        ));
    }
    // A DER SEQUENCE: CMS SignedData. An XML plist starts with `<` (or a BOM / whitespace).
    let signed = bytes.first() == Some(&0x30);
    let content = if signed {
        russet_certs::profile_sign::signed_profile_content(bytes).map_err(|e| {
            MobileconfigError::invalid(
                "",
                format!("neither an XML plist nor a CMS-signed profile that verifies: {e}"),
            )
        })?
    } else {
        bytes.to_vec()
    };
    let top = read_plist(&content)?;
    let checked = validate::check(&top, signed, rules)?;
    Ok(Mobileconfig {
        identifier: checked.identifier,
        uuid: checked.uuid,
        display_name: string(&top, "PayloadDisplayName"),
        description: string(&top, "PayloadDescription"),
        organization: string(&top, "PayloadOrganization"),
        scope: checked.scope,
        payloads: checked.payloads,
        signed,
        variables: checked.variables,
        templated: checked.templated,
        warnings: checked.warnings,
        body: bytes.to_vec(),
    })
}

fn string(d: &plist::Dictionary, key: &str) -> Option<String> {
    d.get(key).and_then(Value::as_string).map(str::to_string)
}

/// The top-level dictionary of an XML plist, after the nesting guard.
pub(crate) fn read_plist(xml: &[u8]) -> Result<plist::Dictionary, MobileconfigError> {
    crate::protocol::check_plist(xml, crate::protocol::MAX_DEPTH).map_err(|e| {
        let hint = match e {
            crate::protocol::ProtocolError::Malformed(m) if m.contains("binary") => {
                "a binary plist: convert it with `plutil -convert xml1 FILE`".to_string()
            }
            other => other.to_string(),
        };
        MobileconfigError::invalid("", format!("not a well-formed plist: {hint}"))
    })?;
    let value = Value::from_reader_xml(xml)
        .map_err(|e| MobileconfigError::invalid("", format!("not a well-formed plist: {e}")))?;
    value.into_dictionary().ok_or_else(|| {
        MobileconfigError::invalid("", "the plist's top level is not a <dict>: not a profile")
    })
}

#[cfg(test)]
mod tests;
