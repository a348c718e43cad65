//! Apple's "Custom Settings": a profile whose one payload is `com.apple.ManagedClient.preferences`
//! (`com.apple.ManagedClient.preferences.yaml`), forcing an app's preferences in one domain:
//! `PayloadContent` → `{domain: {Forced: [{mcx_preference_settings: {key: value, …}}]}}`.
//! This is how admins enforce any app's settings, Parallels Desktop's included
//! (`com.parallels.Parallels Desktop`, the keys `defaults read` shows on a configured Mac).
//!
//! Settings come as a plist dictionary, or as JSON: strings, numbers (whole → `<integer>`,
//! fractional → `<real>`), booleans, arrays and objects map to their plist types; JSON has no
//! data or dates, so `{"$data": "<base64>"}` is `<data>` and `{"$date": "<RFC 3339>"}` is
//! `<date>` (an object with exactly that one key); `null` has no plist form and is refused.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use plist::{Dictionary, Value};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::MobileconfigError;
use crate::protocol::schema::Problem;

/// Apple's managed-preferences payload type.
pub const MANAGED_PREFERENCES: &str = "com.apple.ManagedClient.preferences";
/// The JSON object key that marks `<data>` (base64).
pub const DATA_TAG: &str = "$data";
/// The JSON object key that marks `<date>` (RFC 3339).
pub const DATE_TAG: &str = "$date";

/// What an admin gives: the profile's identifier and name, the preference domain, the
/// settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomSettings {
    pub identifier: String,
    pub name: String,
    pub domain: String,
    pub settings: Dictionary,
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem {
        path: path.to_string(),
        message: message.into(),
    }
}

/// A UUID derived from `seed` (name-based, like RFC 9562's version 5), so building the same
/// settings again gives the same bytes and Russet sees no new version.
fn uuid_for(seed: &str) -> String {
    let digest = openssl::sha::sha256(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
        .to_uppercase()
}

fn text_problems(cs: &CustomSettings) -> Vec<Problem> {
    let mut out = Vec::new();
    for (field, value) in [
        ("identifier", &cs.identifier),
        ("name", &cs.name),
        ("domain", &cs.domain),
    ] {
        if value.trim().is_empty() {
            out.push(problem(field, "must not be empty"));
        } else if value.chars().any(char::is_control) {
            out.push(problem(field, "must not contain control characters"));
        }
    }
    if cs.settings.is_empty() {
        out.push(problem("settings", "give at least one preference"));
    }
    out
}

/// A readable, stable last component for a profile identifier built from an admin's `name`
/// (a golden image, a group): the lowercased name's ASCII letters and digits with dashes
/// between runs, then 8 hex of the SHA-256 of the lowercased name, so two names with one
/// slug ("A B" and "a-b") stay apart and a name with no ASCII letter still gives a valid
/// component. Names that differ only in case give the same stem (Russet's names are unique
/// regardless of case).
pub fn identifier_stem(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut slug = String::new();
    for c in lower.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    let digest = openssl::sha::sha256(lower.as_bytes());
    let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    if slug.is_empty() {
        tag
    } else {
        format!("{slug}-{tag}")
    }
}

/// The profile as an XML plist (unsigned). The UUIDs follow from the identifier and domain
/// (macOS replaces a profile by its `PayloadIdentifier`; Apple: the UUID's content is
/// unimportant), so the same input builds the same bytes.
pub fn build(cs: &CustomSettings) -> Result<Vec<u8>, MobileconfigError> {
    let problems = text_problems(cs);
    if !problems.is_empty() {
        return Err(MobileconfigError::Invalid(problems));
    }
    let mut forced = Dictionary::new();
    forced.insert(
        "mcx_preference_settings".into(),
        Value::Dictionary(cs.settings.clone()),
    );
    let mut domain = Dictionary::new();
    domain.insert(
        "Forced".into(),
        Value::Array(vec![Value::Dictionary(forced)]),
    );
    let mut content = Dictionary::new();
    content.insert(cs.domain.clone(), Value::Dictionary(domain));

    let mut payload = Dictionary::new();
    payload.insert("PayloadType".into(), MANAGED_PREFERENCES.into());
    payload.insert("PayloadVersion".into(), Value::Integer(1.into()));
    payload.insert(
        "PayloadIdentifier".into(),
        format!("{}.preferences", cs.identifier).into(),
    );
    payload.insert(
        "PayloadUUID".into(),
        uuid_for(&format!(
            "russet-custom-settings:{}:{}",
            cs.identifier, cs.domain
        ))
        .into(),
    );
    payload.insert(
        "PayloadDisplayName".into(),
        format!("Custom Settings: {}", cs.domain).into(),
    );
    payload.insert("PayloadContent".into(), Value::Dictionary(content));

    let mut top = Dictionary::new();
    top.insert("PayloadType".into(), "Configuration".into());
    top.insert("PayloadVersion".into(), Value::Integer(1.into()));
    top.insert("PayloadIdentifier".into(), cs.identifier.clone().into());
    top.insert(
        "PayloadUUID".into(),
        uuid_for(&format!("russet-custom-settings:{}", cs.identifier)).into(),
    );
    top.insert("PayloadDisplayName".into(), cs.name.clone().into());
    top.insert("PayloadScope".into(), "System".into());
    top.insert(
        "PayloadContent".into(),
        Value::Array(vec![Value::Dictionary(payload)]),
    );
    let mut out = Vec::new();
    Value::Dictionary(top)
        .to_writer_xml(&mut out)
        .map_err(|e| MobileconfigError::Internal(format!("writing the profile: {e}")))?;
    Ok(out)
}

/// Settings from a JSON object (the conventions at the top of this file).
pub fn settings_from_json(json: &Json) -> Result<Dictionary, MobileconfigError> {
    let Json::Object(object) = json else {
        return Err(MobileconfigError::Invalid(vec![problem(
            "settings",
            "must be a JSON object of preference keys and values",
        )]));
    };
    let mut problems = Vec::new();
    let dict = object_to_dict(object, "settings", &mut problems);
    if problems.is_empty() {
        Ok(dict)
    } else {
        Err(MobileconfigError::Invalid(problems))
    }
}

/// Settings from a plist file: its top-level dictionary (XML; the nesting guard applies).
pub fn settings_from_plist(bytes: &[u8]) -> Result<Dictionary, MobileconfigError> {
    super::read_plist(bytes)
}

fn object_to_dict(
    object: &Map<String, Json>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Dictionary {
    let mut dict = Dictionary::new();
    for (key, value) in object {
        if let Some(v) = to_plist(value, &format!("{path}.{key}"), problems) {
            dict.insert(key.clone(), v);
        }
    }
    dict
}

fn to_plist(json: &Json, path: &str, problems: &mut Vec<Problem>) -> Option<Value> {
    match json {
        Json::Null => {
            problems.push(problem(path, "null has no plist form; leave the key out"));
            None
        }
        Json::Bool(b) => Some(Value::Boolean(*b)),
        Json::Number(n) => n
            .as_i64()
            .map(|i| Value::Integer(i.into()))
            .or_else(|| n.as_u64().map(|u| Value::Integer(u.into())))
            .or_else(|| n.as_f64().map(Value::Real)),
        Json::String(s) => Some(Value::String(s.clone())),
        Json::Array(items) => Some(Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| to_plist(item, &format!("{path}[{i}]"), problems))
                .collect(),
        )),
        Json::Object(object) => match tagged(object, path) {
            Some(Ok(v)) => Some(v),
            Some(Err(p)) => {
                problems.push(p);
                None
            }
            None => Some(Value::Dictionary(object_to_dict(object, path, problems))),
        },
    }
}

/// `{"$data": base64}` or `{"$date": RFC 3339}`; `None` for any other object.
fn tagged(object: &Map<String, Json>, path: &str) -> Option<Result<Value, Problem>> {
    if object.len() != 1 {
        return None;
    }
    let (tag, value) = object.iter().next()?;
    let text = value.as_str();
    match tag.as_str() {
        DATA_TAG => Some(match text.map(|t| STANDARD.decode(t)) {
            Some(Ok(bytes)) => Ok(Value::Data(bytes)),
            _ => Err(problem(path, "{\"$data\": …} must hold base64 text")),
        }),
        DATE_TAG => Some(match text.map(|t| OffsetDateTime::parse(t, &Rfc3339)) {
            Some(Ok(t)) => Ok(Value::Date(SystemTime::from(t).into())),
            _ => Err(problem(
                path,
                "{\"$date\": …} must hold an RFC 3339 time, e.g. 2026-01-31T09:00:00Z",
            )),
        }),
        _ => None,
    }
}

/// Settings as JSON in the same conventions (for the CLI, which reads a plist file and posts
/// JSON): `<data>` → `{"$data": base64}`, `<date>` → `{"$date": RFC 3339}`.
pub fn settings_to_json(dict: &Dictionary) -> Json {
    Json::Object(
        dict.iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Data(d) => serde_json::json!({ DATA_TAG: STANDARD.encode(d) }),
        Value::Date(d) => serde_json::json!({ DATE_TAG: d.to_xml_format() }),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Dictionary(d) => settings_to_json(d),
        other => crate::protocol::plist_to_json(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_types_map_to_plist_types() {
        let d = settings_from_json(&json!({
            "s": "x", "i": 3, "r": 1.5, "b": false, "big": 18446744073709551615u64,
            "a": [1, "two"], "d": {"nested": true},
            "blob": {"$data": "AAEC"}, "when": {"$date": "2026-01-31T09:00:00+01:00"},
            "two keys": {"$data": "AAEC", "x": 1}
        }))
        .unwrap();
        assert_eq!(d.get("s"), Some(&Value::String("x".into())));
        assert_eq!(d.get("i"), Some(&Value::Integer(3.into())));
        assert_eq!(d.get("r"), Some(&Value::Real(1.5)));
        assert_eq!(d.get("b"), Some(&Value::Boolean(false)));
        assert_eq!(d.get("big"), Some(&Value::Integer(u64::MAX.into())));
        assert_eq!(d.get("blob"), Some(&Value::Data(vec![0, 1, 2])));
        assert_eq!(
            d.get("when")
                .and_then(Value::as_date)
                .map(|t| t.to_xml_format()),
            Some("2026-01-31T08:00:00Z".into())
        );
        assert!(d.get("two keys").and_then(Value::as_dictionary).is_some());
        // And back, for the CLI.
        let back = settings_to_json(&d);
        assert_eq!(back["blob"], json!({"$data": "AAEC"}));
        assert_eq!(back["when"], json!({"$date": "2026-01-31T08:00:00Z"}));
        assert_eq!(settings_from_json(&back).unwrap(), d);
    }

    #[test]
    fn json_problems_name_the_setting() {
        let err = settings_from_json(&json!({"a": {"b": null}, "c": {"$data": "%%"}}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("settings.a.b: null has no plist form"),
            "{err}"
        );
        assert!(
            err.contains("settings.c: {\"$data\": …} must hold base64"),
            "{err}"
        );
        assert!(settings_from_json(&json!([1])).is_err());
    }

    #[test]
    fn the_same_settings_build_the_same_bytes() {
        let cs = CustomSettings {
            identifier: "com.acme.parallels".into(),
            name: "Parallels".into(),
            domain: "com.parallels.Parallels Desktop".into(),
            settings: settings_from_json(&json!({"b": true, "a": 1})).unwrap(),
        };
        let first = build(&cs).unwrap();
        assert_eq!(build(&cs).unwrap(), first);
        let other = build(&CustomSettings {
            identifier: "com.acme.other".into(),
            ..cs
        })
        .unwrap();
        assert_ne!(other, first);
        let text = String::from_utf8(first).unwrap();
        let uuid = uuid_for("russet-custom-settings:com.acme.parallels");
        assert!(text.contains(&uuid), "{text}");
        assert_eq!(uuid.len(), 36);
    }

    #[test]
    fn build_refuses_empty_fields() {
        let err = build(&CustomSettings {
            identifier: " ".into(),
            name: "n".into(),
            domain: "d".into(),
            settings: Dictionary::new(),
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("identifier: must not be empty"), "{err}");
        assert!(
            err.contains("settings: give at least one preference"),
            "{err}"
        );
    }
}
