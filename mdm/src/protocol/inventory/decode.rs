//! One decoder per inventory answer. See the module documentation for the rules.

use crate::protocol::ProtocolError;
use crate::protocol::convert::plist_to_json;
use crate::protocol::guard::parse_dict;
use plist::{Dictionary, Value};
use serde_json::Value as Json;

/// Most applications kept from one answer. A real Mac lists a few hundred; an answer beyond
/// this is refused whole rather than cut, since a cut list would make a Mac look as if it had
/// no Excel.
pub const MAX_APPS: usize = 20_000;
/// Most certificates kept from one answer (the same reasoning).
pub const MAX_CERTIFICATES: usize = 5_000;
/// Most user accounts kept from one answer.
pub const MAX_USERS: usize = 2_000;
/// Longest text kept from one value; longer text is cut on a character boundary (names and
/// versions are short; this bounds what a misbehaving Mac can make us index).
const MAX_TEXT: usize = 1024;

/// A decoded answer: the typed facts and the whole answer as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryAnswer<T> {
    pub facts: T,
    /// The answer's top-level value (`QueryResponses`, `SecurityInfo`, the list) as JSON
    /// (`<data>` as base64, `<date>` as RFC 3339).
    pub answer: Json,
}

/// The `DeviceInformation` facts people filter on (`information.device.yaml` response keys).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceInformation {
    pub udid: Option<String>,
    pub serial_number: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub product_name: Option<String>,
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    /// macOS 13+: the Rapid Security Response build (`SupplementalBuildVersion`).
    pub supplemental_build_version: Option<String>,
    pub is_apple_silicon: Option<bool>,
    pub is_supervised: Option<bool>,
    pub is_activation_lock_enabled: Option<bool>,
    /// `DeviceCapacity` and `AvailableDeviceCapacity`: gigabytes, as Apple reports them.
    pub capacity_gb: Option<f64>,
    pub available_gb: Option<f64>,
    /// `BatteryLevel` 0.0–1.0 (macOS 13.3+); absent on desktops (`HasBattery` false).
    pub battery_level: Option<f64>,
    pub wifi_mac: Option<String>,
    pub bluetooth_mac: Option<String>,
    pub ethernet_mac: Option<String>,
    pub sip_enabled: Option<bool>,
}

/// The `SecurityInfo` facts people filter on (`information.security.yaml`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityInfo {
    /// `FDE_Enabled`: FileVault is on.
    pub filevault_enabled: Option<bool>,
    pub sip_enabled: Option<bool>,
    /// `FirewallSettings.FirewallEnabled`.
    pub firewall_enabled: Option<bool>,
    /// `SecureBoot.SecureBootLevel` (`full`, `medium`, `off`, `not supported`; macOS 10.15+).
    pub secure_boot_level: Option<String>,
    /// `IsRecoveryLockEnabled` (macOS 11.5+, Apple silicon).
    pub recovery_lock_enabled: Option<bool>,
    /// `BootstrapTokenAllowedForAuthentication` (`allowed`, `disallowed`, `not supported`).
    pub bootstrap_token_allowed: Option<String>,
}

/// Keys of `SecurityInfo` left out of the stored answer: the FileVault personal recovery key,
/// even encrypted, belongs to an escrow (sealed at rest), not to inventory anyone can read.
const SECURITY_KEYS_NOT_KEPT: &[&str] = &[
    "FDE_PersonalRecoveryKeyCMS",
    "FDE_PersonalRecoveryKeyDeviceKey",
];

/// One `InstalledApplicationList` item (`application.installed.list.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct App {
    /// `Identifier`, the bundle ID. Absent for bundles without one (a 10.11 Mac lists
    /// installers and helpers that way).
    pub bundle_id: Option<String>,
    pub name: String,
    /// `ShortVersion` (CFBundleShortVersionString: "16.80"), what people compare.
    pub short_version: Option<String>,
    /// `Version` (CFBundleVersion: the build).
    pub version: Option<String>,
    pub bundle_size: Option<i64>,
}

/// One `CertificateList` item (`certificate.list.yaml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub common_name: String,
    pub is_identity: bool,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// One `UserList` item (`user.list.yaml`; macOS 10.13+, supervised Macs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub short_name: String,
    pub full_name: Option<String>,
    pub uid: Option<i64>,
    pub guid: Option<String>,
    pub is_logged_in: bool,
    pub has_secure_token: Option<bool>,
    pub mobile_account: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserList {
    pub users: Vec<User>,
}

fn malformed(m: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed(m.into())
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn text(d: &Dictionary, key: &str) -> Option<String> {
    d.get(key)
        .and_then(Value::as_string)
        .filter(|s| !s.is_empty())
        .map(cut)
}

fn boolean(d: &Dictionary, key: &str) -> Option<bool> {
    d.get(key).and_then(Value::as_boolean)
}

fn real(d: &Dictionary, key: &str) -> Option<f64> {
    match d.get(key)? {
        Value::Real(r) if r.is_finite() => Some(*r),
        Value::Integer(i) => i.as_signed().map(|i| i as f64),
        _ => None,
    }
}

fn integer(d: &Dictionary, key: &str) -> Option<i64> {
    d.get(key).and_then(Value::as_signed_integer)
}

/// The report's top-level dictionary value `key` (`QueryResponses`, `SecurityInfo`).
fn top_dict(body: &[u8], key: &str) -> Result<Dictionary, ProtocolError> {
    let mut report = parse_dict(body)?;
    match report.remove(key) {
        Some(Value::Dictionary(d)) => Ok(d),
        _ => Err(malformed(format!("the result has no {key} dictionary"))),
    }
}

/// The report's top-level array `key`, refused when longer than `max`.
fn top_array(body: &[u8], key: &str, max: usize) -> Result<Vec<Value>, ProtocolError> {
    let mut report = parse_dict(body)?;
    match report.remove(key) {
        Some(Value::Array(a)) if a.len() <= max => Ok(a),
        Some(Value::Array(a)) => Err(malformed(format!(
            "{key} lists {} items, more than the {max} accepted",
            a.len()
        ))),
        _ => Err(malformed(format!("the result has no {key} array"))),
    }
}

/// A `DeviceInformation` result.
pub fn decode_device_information(
    body: &[u8],
) -> Result<InventoryAnswer<DeviceInformation>, ProtocolError> {
    let q = top_dict(body, "QueryResponses")?;
    let facts = DeviceInformation {
        udid: text(&q, "UDID"),
        serial_number: text(&q, "SerialNumber"),
        model: text(&q, "Model"),
        model_name: text(&q, "ModelName"),
        product_name: text(&q, "ProductName"),
        device_name: text(&q, "DeviceName"),
        os_version: text(&q, "OSVersion"),
        build_version: text(&q, "BuildVersion"),
        supplemental_build_version: text(&q, "SupplementalBuildVersion"),
        is_apple_silicon: boolean(&q, "IsAppleSilicon"),
        is_supervised: boolean(&q, "IsSupervised"),
        is_activation_lock_enabled: boolean(&q, "IsActivationLockEnabled"),
        capacity_gb: real(&q, "DeviceCapacity"),
        available_gb: real(&q, "AvailableDeviceCapacity"),
        battery_level: real(&q, "BatteryLevel"),
        wifi_mac: text(&q, "WiFiMAC"),
        bluetooth_mac: text(&q, "BluetoothMAC"),
        ethernet_mac: text(&q, "EthernetMAC"),
        sip_enabled: boolean(&q, "SystemIntegrityProtectionEnabled"),
    };
    Ok(InventoryAnswer {
        facts,
        answer: plist_to_json(&Value::Dictionary(q)),
    })
}

/// A `SecurityInfo` result.
pub fn decode_security_info(body: &[u8]) -> Result<InventoryAnswer<SecurityInfo>, ProtocolError> {
    let mut s = top_dict(body, "SecurityInfo")?;
    for key in SECURITY_KEYS_NOT_KEPT {
        s.remove(key);
    }
    let sub = |key: &str| s.get(key).and_then(Value::as_dictionary);
    let facts = SecurityInfo {
        filevault_enabled: boolean(&s, "FDE_Enabled"),
        sip_enabled: boolean(&s, "SystemIntegrityProtectionEnabled"),
        firewall_enabled: sub("FirewallSettings").and_then(|f| boolean(f, "FirewallEnabled")),
        secure_boot_level: sub("SecureBoot").and_then(|b| text(b, "SecureBootLevel")),
        recovery_lock_enabled: boolean(&s, "IsRecoveryLockEnabled"),
        bootstrap_token_allowed: text(&s, "BootstrapTokenAllowedForAuthentication"),
    };
    Ok(InventoryAnswer {
        facts,
        answer: plist_to_json(&Value::Dictionary(s)),
    })
}

/// An `InstalledApplicationList` result. Items without a `Name` are skipped (Apple lists it
/// for every app; an item without one names nothing a person could look for).
pub fn decode_applications(body: &[u8]) -> Result<InventoryAnswer<Vec<App>>, ProtocolError> {
    let list = top_array(body, "InstalledApplicationList", MAX_APPS)?;
    let apps = list
        .iter()
        .filter_map(Value::as_dictionary)
        .filter_map(|a| {
            Some(App {
                name: text(a, "Name")?,
                bundle_id: text(a, "Identifier"),
                short_version: text(a, "ShortVersion"),
                version: text(a, "Version"),
                bundle_size: integer(a, "BundleSize"),
            })
        })
        .collect();
    Ok(InventoryAnswer {
        facts: apps,
        answer: plist_to_json(&Value::Array(list)),
    })
}

/// A `CertificateList` result. Items without a certificate are skipped.
pub fn decode_certificates(
    body: &[u8],
) -> Result<InventoryAnswer<Vec<Certificate>>, ProtocolError> {
    let list = top_array(body, "CertificateList", MAX_CERTIFICATES)?;
    let certs = list
        .iter()
        .filter_map(Value::as_dictionary)
        .filter_map(|c| {
            Some(Certificate {
                common_name: text(c, "CommonName").unwrap_or_default(),
                is_identity: boolean(c, "IsIdentity").unwrap_or(false),
                der: c.get("Data").and_then(Value::as_data)?.to_vec(),
            })
        })
        .collect();
    Ok(InventoryAnswer {
        facts: certs,
        answer: plist_to_json(&Value::Array(list)),
    })
}

/// A `UserList` result. Items without a `UserName` are skipped.
pub fn decode_user_list(body: &[u8]) -> Result<InventoryAnswer<UserList>, ProtocolError> {
    let list = top_array(body, "Users", MAX_USERS)?;
    let users = list
        .iter()
        .filter_map(Value::as_dictionary)
        .filter_map(|u| {
            Some(User {
                short_name: text(u, "UserName")?,
                full_name: text(u, "FullName"),
                uid: integer(u, "UID"),
                guid: text(u, "UserGUID"),
                is_logged_in: boolean(u, "IsLoggedIn").unwrap_or(false),
                has_secure_token: boolean(u, "HasSecureToken"),
                mobile_account: boolean(u, "MobileAccount"),
            })
        })
        .collect();
    Ok(InventoryAnswer {
        facts: UserList { users },
        answer: plist_to_json(&Value::Array(list)),
    })
}
