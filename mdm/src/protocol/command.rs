//! Commands the server sends: `{CommandUUID, Command: {RequestType, …keys}}` (Apple, Device
//! Management: "Commands and queries"; NanoMDM `mdm/command.go`). Every way of building one — typed constructors,
//! admin JSON, admin plist — ends in the same validation against Apple's schema.

use plist::{Dictionary, Value};
use serde_json::Value as Json;

use super::ProtocolError;
use super::convert::json_object_to_plist;
use super::guard::{MAX_DEPTH, parse_dict};
use super::schema::{CommandSchema, Problem, into_result, schema_for, validate_keys};
use super::values::type_name;

/// The RequestTypes Russet can build and validate. Anything else is refused with
/// `UnsupportedRequestType` rather than sent unchecked.
pub const SUPPORTED_REQUEST_TYPES: &[&str] = &[
    "DeviceInformation",
    "SecurityInfo",
    "ProfileList",
    "InstallProfile",
    "RemoveProfile",
    "InstalledApplicationList",
    "CertificateList",
    "UserList",
    "InstallEnterpriseApplication",
    "RestartDevice",
    "ShutDownDevice",
    "DeviceLock",
    "EraseDevice",
    "DeviceConfigured",
    "AccountConfiguration",
    "SetRecoveryLock",
    "VerifyRecoveryLock",
    "RotateFileVaultKey",
    "DeclarativeManagement",
];

/// Longest CommandUUID kept from an admin-supplied plist.
const MAX_GIVEN_UUID_LEN: usize = 64;

/// A validated command, ready to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub command_uuid: String,
    pub request_type: String,
    /// The keys of the inner `Command` dictionary, without `RequestType`.
    pub keys: Dictionary,
}

/// A fresh CommandUUID: UUID v4, uppercase like Apple's examples.
pub fn new_command_uuid() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

impl Command {
    /// Builds and validates a command with a fresh CommandUUID.
    pub fn new(request_type: &str, keys: Dictionary) -> Result<Command, ProtocolError> {
        Command::with_uuid(new_command_uuid(), request_type, keys)
    }

    fn with_uuid(
        command_uuid: String,
        request_type: &str,
        keys: Dictionary,
    ) -> Result<Command, ProtocolError> {
        let command = Command {
            command_uuid,
            request_type: request_type.to_string(),
            keys,
        };
        command.validate()?;
        Ok(command)
    }

    /// Checks the command against Apple's schema and Russet's own rules, listing every
    /// problem in one `Invalid`.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let schema = supported_schema(&self.request_type)?;
        let mut problems = validate_keys(schema, &self.keys);
        problems.extend(russet_rules(&self.request_type, &self.keys));
        into_result(problems)
    }

    /// Admin API JSON: `{"request_type": "DeviceInformation", "Queries": [...]}`. Every
    /// other key is an Apple command key, typed by the schema: strings become `<data>`
    /// (base64) or `<date>` (RFC 3339) where the schema says so, numbers `<integer>` or
    /// `<real>`.
    pub fn from_json(json: &Json) -> Result<Command, ProtocolError> {
        let object = json
            .as_object()
            .ok_or_else(|| ProtocolError::Malformed("command JSON must be an object".into()))?;
        let request_type = match object.get("request_type") {
            Some(Json::String(s)) => s.as_str(),
            Some(_) => {
                return Err(ProtocolError::Malformed(
                    "request_type must be a string".into(),
                ));
            }
            None => {
                return Err(ProtocolError::Malformed(
                    "required key request_type is missing".into(),
                ));
            }
        };
        let schema = supported_schema(request_type)?;
        // The command dictionary sits one level below the outer one; keep what we queue
        // within the depth the plist guard accepts when it is read back.
        if json_depth(json) >= MAX_DEPTH {
            return Err(ProtocolError::TooDeep);
        }
        let mut apple_keys = object.clone();
        apple_keys.remove("request_type");
        let mut problems = Vec::new();
        let keys =
            json_object_to_plist(&schema.as_dictionary_spec(), &apple_keys, "", &mut problems);
        let command = Command {
            command_uuid: new_command_uuid(),
            request_type: request_type.to_string(),
            keys,
        };
        // A key that failed conversion is reported once, by the converter.
        let mut all = problems.clone();
        let mut more = validate_keys(schema, &command.keys);
        more.extend(russet_rules(&command.request_type, &command.keys));
        all.extend(
            more.into_iter()
                .filter(|p| !problems.iter().any(|q| q.path == p.path)),
        );
        into_result(all)?;
        Ok(command)
    }

    /// An admin-supplied plist: a full command `{CommandUUID?, Command: {RequestType, …}}`
    /// (or just the inner `{RequestType, …}` dictionary). A sane given CommandUUID is kept,
    /// otherwise a fresh one is generated.
    pub fn from_plist(body: &[u8]) -> Result<Command, ProtocolError> {
        let mut top = parse_dict(body)?;
        let (given_uuid, mut inner) = match top.remove("Command") {
            Some(Value::Dictionary(inner)) => {
                let uuid = top.remove("CommandUUID");
                if let Some(extra) = top.keys().next() {
                    return Err(ProtocolError::Invalid(format!(
                        "{extra}: unknown top-level key (expected CommandUUID and Command)"
                    )));
                }
                (uuid, inner)
            }
            Some(other) => {
                return Err(ProtocolError::Malformed(format!(
                    "key Command must be <dictionary>, found {}",
                    type_name(&other)
                )));
            }
            None => (None, top),
        };
        let request_type = match inner.remove("RequestType") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(ProtocolError::Malformed(format!(
                    "key RequestType must be <string>, found {}",
                    type_name(&other)
                )));
            }
            None => {
                return Err(ProtocolError::Malformed(
                    "required key RequestType is missing".into(),
                ));
            }
        };
        let uuid = match given_uuid {
            Some(Value::String(s)) if sane_uuid(&s) => s,
            _ => new_command_uuid(),
        };
        Command::with_uuid(uuid, &request_type, inner)
    }

    /// The command as a plist value: `{CommandUUID, Command: {RequestType, …keys}}`.
    pub fn to_value(&self) -> Value {
        let mut inner = Dictionary::new();
        inner.insert(
            "RequestType".into(),
            Value::String(self.request_type.clone()),
        );
        for (k, v) in &self.keys {
            inner.insert(k.clone(), v.clone());
        }
        let mut outer = Dictionary::new();
        outer.insert(
            "CommandUUID".into(),
            Value::String(self.command_uuid.clone()),
        );
        outer.insert("Command".into(), Value::Dictionary(inner));
        Value::Dictionary(outer)
    }

    /// The XML plist body sent to the device.
    pub fn to_plist(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.to_value()
            .to_writer_xml(&mut out)
            .expect("writing an in-memory plist::Value to a Vec cannot fail");
        out
    }
}

fn supported_schema(request_type: &str) -> Result<&'static CommandSchema, ProtocolError> {
    if !SUPPORTED_REQUEST_TYPES.contains(&request_type) {
        return Err(ProtocolError::UnsupportedRequestType(
            request_type.to_string(),
        ));
    }
    schema_for(request_type)
}

/// Nesting depth of JSON arrays/objects (serde_json already caps parsing at 128 levels).
fn json_depth(json: &Json) -> usize {
    match json {
        Json::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Json::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn sane_uuid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_GIVEN_UUID_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Rules Russet adds on top of Apple's schema.
fn russet_rules(request_type: &str, keys: &Dictionary) -> Vec<Problem> {
    let mut problems = Vec::new();
    match request_type {
        // Apple: "The six-character PIN for Find My" (DM device.lock.yaml, device.erase.yaml).
        // A Mac locked with a PIN the admin can't type back is bricked, so: 6 ASCII digits.
        "DeviceLock" | "EraseDevice" => {
            if let Some(Value::String(pin)) = keys.get("PIN")
                && !(pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()))
            {
                problems.push(Problem {
                    path: "PIN".into(),
                    message: "must be exactly 6 ASCII digits".into(),
                });
            }
        }
        // Apple: the command carries a Manifest or a ManifestURL (DM
        // application.install.enterprise.yaml); the URL must be https.
        "InstallEnterpriseApplication" => {
            match (keys.get("Manifest"), keys.get("ManifestURL")) {
                (Some(_), Some(_)) | (None, None) => problems.push(Problem {
                    path: "Manifest".into(),
                    message: "give exactly one of Manifest and ManifestURL".into(),
                }),
                _ => {}
            }
            if let Some(Value::String(url)) = keys.get("ManifestURL")
                && !url.starts_with("https://")
            {
                problems.push(Problem {
                    path: "ManifestURL".into(),
                    message: "must be an https:// URL".into(),
                });
            }
        }
        _ => {}
    }
    problems
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
