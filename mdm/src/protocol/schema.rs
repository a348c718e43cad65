//! Command validation driven by Apple's own schemas.
//!
//! The YAML files in `schema/` are copied unmodified from apple/device-management
//! (release 2024-10, MIT, see `schema/LICENSE.txt`), one per supported RequestType. They are
//! parsed once into a small model: key, type, presence, subkeys, rangelist. Only
//! `payloadkeys` (what the server sends) are used; `responsekeys` describe results.

use std::collections::HashMap;
use std::sync::LazyLock;

use plist::{Dictionary, Value};
use serde::Deserialize;

use super::ProtocolError;
use super::values::type_name;

const FILES: &[(&str, &str)] = &[
    (
        "account.configuration.yaml",
        include_str!("schema/account.configuration.yaml"),
    ),
    (
        "application.install.enterprise.yaml",
        include_str!("schema/application.install.enterprise.yaml"),
    ),
    (
        "application.installed.list.yaml",
        include_str!("schema/application.installed.list.yaml"),
    ),
    (
        "certificate.list.yaml",
        include_str!("schema/certificate.list.yaml"),
    ),
    (
        "declarativemanagement.yaml",
        include_str!("schema/declarativemanagement.yaml"),
    ),
    (
        "device.configured.yaml",
        include_str!("schema/device.configured.yaml"),
    ),
    (
        "device.erase.yaml",
        include_str!("schema/device.erase.yaml"),
    ),
    ("device.lock.yaml", include_str!("schema/device.lock.yaml")),
    (
        "device.restart.yaml",
        include_str!("schema/device.restart.yaml"),
    ),
    (
        "device.shutdown.yaml",
        include_str!("schema/device.shutdown.yaml"),
    ),
    (
        "information.device.yaml",
        include_str!("schema/information.device.yaml"),
    ),
    (
        "information.security.yaml",
        include_str!("schema/information.security.yaml"),
    ),
    (
        "passcode.recovery.set.yaml",
        include_str!("schema/passcode.recovery.set.yaml"),
    ),
    (
        "passcode.recovery.verify.yaml",
        include_str!("schema/passcode.recovery.verify.yaml"),
    ),
    (
        "profile.install.yaml",
        include_str!("schema/profile.install.yaml"),
    ),
    (
        "profile.list.yaml",
        include_str!("schema/profile.list.yaml"),
    ),
    (
        "profile.remove.yaml",
        include_str!("schema/profile.remove.yaml"),
    ),
    ("user.list.yaml", include_str!("schema/user.list.yaml")),
    (
        "rotate.file.vault.key.yaml",
        include_str!("schema/rotate.file.vault.key.yaml"),
    ),
];

/// Plist value types as Apple's schemas name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyType {
    #[serde(rename = "<string>")]
    String,
    #[serde(rename = "<integer>")]
    Integer,
    #[serde(rename = "<real>")]
    Real,
    #[serde(rename = "<boolean>")]
    Boolean,
    #[serde(rename = "<data>")]
    Data,
    #[serde(rename = "<date>")]
    Date,
    #[serde(rename = "<array>")]
    Array,
    #[serde(rename = "<dictionary>")]
    Dictionary,
    #[serde(rename = "<any>")]
    Any,
}

impl KeyType {
    pub fn name(&self) -> &'static str {
        match self {
            KeyType::String => "<string>",
            KeyType::Integer => "<integer>",
            KeyType::Real => "<real>",
            KeyType::Boolean => "<boolean>",
            KeyType::Data => "<data>",
            KeyType::Date => "<date>",
            KeyType::Array => "<array>",
            KeyType::Dictionary => "<dictionary>",
            KeyType::Any => "<any>",
        }
    }

    pub(super) fn accepts(&self, value: &Value) -> bool {
        matches!(
            (self, value),
            (KeyType::Any, _)
                | (KeyType::String, Value::String(_))
                | (KeyType::Integer, Value::Integer(_))
                | (KeyType::Real, Value::Real(_))
                | (KeyType::Boolean, Value::Boolean(_))
                | (KeyType::Data, Value::Data(_))
                | (KeyType::Date, Value::Date(_))
                | (KeyType::Array, Value::Array(_))
                | (KeyType::Dictionary, Value::Dictionary(_))
        )
    }
}

/// One allowed value from a `rangelist`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RangeValue {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(String),
}

impl RangeValue {
    pub(super) fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (RangeValue::String(a), Value::String(b)) => a == b,
            (RangeValue::Integer(a), Value::Integer(b)) => b.as_signed() == Some(*a),
            (RangeValue::Real(a), Value::Real(b)) => a == b,
            (RangeValue::Boolean(a), Value::Boolean(b)) => a == b,
            _ => false,
        }
    }

    pub(super) fn display(&self) -> String {
        match self {
            RangeValue::Integer(i) => i.to_string(),
            RangeValue::Real(r) => r.to_string(),
            RangeValue::Boolean(b) => b.to_string(),
            RangeValue::String(s) => s.clone(),
        }
    }
}

/// One key of a command (or a subkey of a dictionary/array).
#[derive(Debug, Clone, Deserialize)]
pub struct KeySpec {
    pub key: String,
    #[serde(rename = "type")]
    pub ty: KeyType,
    /// `required` or `optional`; array element specs often omit it.
    #[serde(default)]
    pub presence: Option<String>,
    /// Dictionary: its keys. Array: exactly one spec for every element.
    #[serde(default)]
    pub subkeys: Vec<KeySpec>,
    #[serde(default)]
    pub rangelist: Option<Vec<RangeValue>>,
    /// Per-platform availability, when it differs from the payload's (profile schemas).
    #[serde(default, rename = "supportedOS")]
    pub supported_os: Option<SupportedOs>,
}

/// The `supportedOS` block of a schema, reduced to what Russet asks: macOS.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SupportedOs {
    #[serde(default, rename = "macOS")]
    pub macos: Option<OsSupport>,
}

/// One platform's entry: the version that introduced (or removed) a payload or key; Apple
/// writes `n/a` for "not on this platform".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OsSupport {
    #[serde(default)]
    pub introduced: Option<String>,
    #[serde(default)]
    pub removed: Option<String>,
}

impl OsSupport {
    pub fn not_available(&self) -> bool {
        self.introduced.as_deref() == Some("n/a")
    }
}

impl KeySpec {
    pub fn required(&self) -> bool {
        self.presence.as_deref() == Some("required")
    }

    /// Apple writes a free-form dictionary as one subkey named `ANY…` (e.g. the enterprise
    /// app `Manifest`): any key is allowed, each value typed by that subkey.
    fn wildcard(&self) -> Option<&KeySpec> {
        match self.subkeys.as_slice() {
            [only] if only.key.starts_with("ANY") => Some(only),
            _ => None,
        }
    }

    /// The spec a dictionary key is checked against, if the key is allowed.
    pub fn subkey(&self, key: &str) -> Option<&KeySpec> {
        self.wildcard()
            .or_else(|| self.subkeys.iter().find(|s| s.key == key))
    }
}

/// The parts of one schema file Russet uses.
#[derive(Debug, Clone, Deserialize)]
pub struct CommandSchema {
    pub payload: PayloadInfo,
    #[serde(default)]
    pub payloadkeys: Vec<KeySpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PayloadInfo {
    pub requesttype: String,
}

impl CommandSchema {
    /// The command's keys as one dictionary spec, so validation can recurse uniformly.
    pub fn as_dictionary_spec(&self) -> KeySpec {
        KeySpec {
            key: String::new(),
            ty: KeyType::Dictionary,
            presence: Some("required".into()),
            subkeys: self.payloadkeys.clone(),
            rangelist: None,
            supported_os: None,
        }
    }

    pub fn key(&self, key: &str) -> Option<&KeySpec> {
        self.payloadkeys.iter().find(|k| k.key == key)
    }
}

type Schemas = HashMap<String, CommandSchema>;

static SCHEMAS: LazyLock<Result<Schemas, String>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for (name, text) in FILES {
        let schema: CommandSchema =
            serde_norway::from_str(text).map_err(|e| format!("schema {name}: {e}"))?;
        map.insert(schema.payload.requesttype.clone(), schema);
    }
    Ok(map)
});

/// Apple's schema for a RequestType. `UnsupportedRequestType` for anything without one.
pub fn schema_for(request_type: &str) -> Result<&'static CommandSchema, ProtocolError> {
    let schemas = SCHEMAS
        .as_ref()
        .map_err(|e| ProtocolError::Invalid(format!("built-in schema failed to load: {e}")))?;
    schemas
        .get(request_type)
        .ok_or_else(|| ProtocolError::UnsupportedRequestType(request_type.to_string()))
}

/// A schema violation at a key path such as `AutoSetupAdminAccounts[0].shortName`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Joins problems into one `Invalid` error (or Ok if there are none).
pub fn into_result(problems: Vec<Problem>) -> Result<(), ProtocolError> {
    if problems.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = problems.iter().map(Problem::to_string).collect();
    Err(ProtocolError::Invalid(list.join("; ")))
}

/// Checks a command's keys (everything but `RequestType`) against its schema and returns
/// every problem found.
pub fn validate_keys(schema: &CommandSchema, keys: &Dictionary) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_dict(&schema.as_dictionary_spec(), keys, "", &mut problems);
    problems
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_dict(spec: &KeySpec, dict: &Dictionary, path: &str, problems: &mut Vec<Problem>) {
    for (key, value) in dict {
        let key_path = join(path, key);
        match spec.subkey(key) {
            Some(sub) => check_value(sub, value, &key_path, problems),
            None if spec.subkeys.is_empty() && !path.is_empty() => {}
            None => problems.push(Problem {
                path: key_path,
                message: "unknown key".into(),
            }),
        }
    }
    if spec.wildcard().is_none() {
        for sub in spec.subkeys.iter().filter(|s| s.required()) {
            if !dict.contains_key(&sub.key) {
                problems.push(Problem {
                    path: join(path, &sub.key),
                    message: "required key is missing".into(),
                });
            }
        }
    }
}

fn check_value(spec: &KeySpec, value: &Value, path: &str, problems: &mut Vec<Problem>) {
    if !spec.ty.accepts(value) {
        problems.push(Problem {
            path: path.to_string(),
            message: format!("expected {}, found {}", spec.ty.name(), type_name(value)),
        });
        return;
    }
    if let Some(allowed) = &spec.rangelist
        && !allowed.iter().any(|r| r.matches(value))
    {
        let names: Vec<String> = allowed.iter().map(RangeValue::display).collect();
        problems.push(Problem {
            path: path.to_string(),
            message: format!("value is not one of: {}", names.join(", ")),
        });
    }
    match value {
        Value::Dictionary(d) if spec.ty == KeyType::Dictionary => {
            check_dict(spec, d, path, problems)
        }
        Value::Array(items) if spec.ty == KeyType::Array => {
            if let Some(element) = spec.subkeys.first() {
                for (i, item) in items.iter().enumerate() {
                    check_value(element, item, &format!("{path}[{i}]"), problems);
                }
            }
        }
        _ => {}
    }
}
