//! Typed constructors for the commands Russet sends (keys from Apple's schemas in
//! `mdm/commands/*.yaml` of apple/device-management). Each goes through
//! [`Command::new`], so it is validated against Apple's schema like any admin input.

use plist::{Dictionary, Value};

use super::ProtocolError;
use super::command::Command;

/// EraseDevice `ObliterationBehavior` (macOS 12+): the fallback when Erase All Content and
/// Settings can't run (DM `device.erase.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObliterationBehavior {
    Default,
    DoNotObliterate,
    ObliterateWithWarning,
    Always,
}

impl ObliterationBehavior {
    pub fn as_str(&self) -> &'static str {
        match self {
            ObliterationBehavior::Default => "Default",
            ObliterationBehavior::DoNotObliterate => "DoNotObliterate",
            ObliterationBehavior::ObliterateWithWarning => "ObliterateWithWarning",
            ObliterationBehavior::Always => "Always",
        }
    }
}

/// RotateFileVaultKey `KeyType` (DM `rotate.file.vault.key.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileVaultKeyType {
    Personal,
    Institutional,
}

impl FileVaultKeyType {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileVaultKeyType::Personal => "personal",
            FileVaultKeyType::Institutional => "institutional",
        }
    }
}

/// Small helper so constructors read as key lists.
#[derive(Default)]
struct Keys(Dictionary);

impl Keys {
    fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_string(), value.into());
        self
    }

    fn opt(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }
}

fn strings(items: impl IntoIterator<Item = impl Into<String>>) -> Value {
    Value::Array(items.into_iter().map(|s| Value::String(s.into())).collect())
}

impl Command {
    /// `DeviceInformation` with the given `Queries` (e.g. "SerialNumber", "OSVersion").
    pub fn device_information(
        queries: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Command, ProtocolError> {
        Command::new(
            "DeviceInformation",
            Keys::default().set("Queries", strings(queries)).0,
        )
    }

    pub fn security_info() -> Result<Command, ProtocolError> {
        Command::new("SecurityInfo", Dictionary::new())
    }

    /// `CertificateList` (`certificate.list.yaml`): every certificate installed on the channel.
    pub fn certificate_list() -> Result<Command, ProtocolError> {
        Command::new("CertificateList", Dictionary::new())
    }

    /// `UserList` (`user.list.yaml`; macOS 10.13+, answered by supervised Macs): the accounts
    /// on the Mac and who is logged in.
    pub fn user_list() -> Result<Command, ProtocolError> {
        Command::new("UserList", Dictionary::new())
    }

    pub fn profile_list(managed_only: Option<bool>) -> Result<Command, ProtocolError> {
        Command::new(
            "ProfileList",
            Keys::default().opt("ManagedOnly", managed_only).0,
        )
    }

    /// `InstallProfile`; `payload` is the (possibly signed) .mobileconfig, sent as `<data>`.
    pub fn install_profile(payload: Vec<u8>) -> Result<Command, ProtocolError> {
        Command::new(
            "InstallProfile",
            Keys::default().set("Payload", Value::Data(payload)).0,
        )
    }

    /// `RemoveProfile` by the profile's top-level `PayloadIdentifier`.
    pub fn remove_profile(identifier: &str) -> Result<Command, ProtocolError> {
        Command::new(
            "RemoveProfile",
            Keys::default().set("Identifier", identifier).0,
        )
    }

    pub fn installed_application_list(
        identifiers: Option<Vec<String>>,
        managed_apps_only: Option<bool>,
    ) -> Result<Command, ProtocolError> {
        Command::new(
            "InstalledApplicationList",
            Keys::default()
                .opt("Identifiers", identifiers.map(strings))
                .opt("ManagedAppsOnly", managed_apps_only)
                .0,
        )
    }

    /// `InstallEnterpriseApplication` from an https manifest URL (macOS only).
    pub fn install_enterprise_application(manifest_url: &str) -> Result<Command, ProtocolError> {
        Command::new(
            "InstallEnterpriseApplication",
            Keys::default().set("ManifestURL", manifest_url).0,
        )
    }

    /// `InstallEnterpriseApplication` with an embedded manifest dictionary.
    pub fn install_enterprise_application_manifest(
        manifest: Dictionary,
    ) -> Result<Command, ProtocolError> {
        Command::new(
            "InstallEnterpriseApplication",
            Keys::default()
                .set("Manifest", Value::Dictionary(manifest))
                .0,
        )
    }

    pub fn restart_device(notify_user: Option<bool>) -> Result<Command, ProtocolError> {
        Command::new(
            "RestartDevice",
            Keys::default().opt("NotifyUser", notify_user).0,
        )
    }

    pub fn shut_down_device() -> Result<Command, ProtocolError> {
        Command::new("ShutDownDevice", Dictionary::new())
    }

    /// `DeviceLock`. The PIN (macOS) must be exactly 6 ASCII digits when given.
    pub fn device_lock(
        pin: Option<&str>,
        message: Option<&str>,
        phone_number: Option<&str>,
    ) -> Result<Command, ProtocolError> {
        Command::new(
            "DeviceLock",
            Keys::default()
                .opt("PIN", pin)
                .opt("Message", message)
                .opt("PhoneNumber", phone_number)
                .0,
        )
    }

    /// `EraseDevice`. The PIN (macOS) must be exactly 6 ASCII digits when given.
    pub fn erase_device(
        pin: Option<&str>,
        obliteration_behavior: Option<ObliterationBehavior>,
    ) -> Result<Command, ProtocolError> {
        Command::new(
            "EraseDevice",
            Keys::default()
                .opt("PIN", pin)
                .opt(
                    "ObliterationBehavior",
                    obliteration_behavior.map(|o| o.as_str()),
                )
                .0,
        )
    }

    /// `DeviceConfigured`: releases a device waiting in Setup Assistant (ADE only).
    pub fn device_configured() -> Result<Command, ProtocolError> {
        Command::new("DeviceConfigured", Dictionary::new())
    }

    /// `AccountConfiguration` (macOS, ADE, before DeviceConfigured) with Apple's keys.
    pub fn account_configuration(keys: Dictionary) -> Result<Command, ProtocolError> {
        Command::new("AccountConfiguration", keys)
    }

    /// `SetRecoveryLock` (Apple silicon). An empty `new_password` clears the lock.
    pub fn set_recovery_lock(
        new_password: &str,
        current_password: Option<&str>,
    ) -> Result<Command, ProtocolError> {
        Command::new(
            "SetRecoveryLock",
            Keys::default()
                .set("NewPassword", new_password)
                .opt("CurrentPassword", current_password)
                .0,
        )
    }

    /// `VerifyRecoveryLock` (Apple silicon, macOS 11.5+): the Mac answers `PasswordVerified`
    /// (DM `passcode.recovery.verify.yaml`).
    pub fn verify_recovery_lock(password: &str) -> Result<Command, ProtocolError> {
        Command::new(
            "VerifyRecoveryLock",
            Keys::default().set("Password", password).0,
        )
    }

    /// `RotateFileVaultKey`. `file_vault_unlock` holds `Password` (or the deprecated
    /// `PrivateKeyExport` pair); certificates are DER.
    pub fn rotate_filevault_key(
        key_type: FileVaultKeyType,
        file_vault_unlock: Dictionary,
        new_certificate: Option<Vec<u8>>,
        reply_encryption_certificate: Option<Vec<u8>>,
    ) -> Result<Command, ProtocolError> {
        Command::new(
            "RotateFileVaultKey",
            Keys::default()
                .set("KeyType", key_type.as_str())
                .set("FileVaultUnlock", Value::Dictionary(file_vault_unlock))
                .opt("NewCertificate", new_certificate.map(Value::Data))
                .opt(
                    "ReplyEncryptionCertificate",
                    reply_encryption_certificate.map(Value::Data),
                )
                .0,
        )
    }

    /// `DeclarativeManagement`: starts a DDM sync; `data` is optional base64-able JSON.
    pub fn declarative_management(data: Option<Vec<u8>>) -> Result<Command, ProtocolError> {
        Command::new(
            "DeclarativeManagement",
            Keys::default().opt("Data", data.map(Value::Data)).0,
        )
    }
}
