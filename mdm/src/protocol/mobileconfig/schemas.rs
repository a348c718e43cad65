//! Apple's configuration-profile payload schemas, embedded.
//!
//! The YAML files in `protocol/schema/profiles/` are apple/device-management's
//! `mdm/profiles/*.yaml` (release 2024-10, MIT, see the LICENSE.txt beside them), copied
//! unmodified; `build.rs` lists them. They are parsed once into the same model as the command
//! schemas ([`KeySpec`]): `TopLevel.yaml` describes the profile's own keys,
//! `CommonPayloadKeys.yaml` the keys every payload has, and every other file one payload type.
//! A few payload types are described by several files (`com.apple.MCX` by six, one per
//! feature); their keys are merged.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::protocol::ProtocolError;
use crate::protocol::schema::{KeySpec, KeyType, OsSupport, SupportedOs};

include!(concat!(env!("OUT_DIR"), "/profile_schemas.rs"));

#[derive(Deserialize)]
struct SchemaFile {
    #[serde(default)]
    title: String,
    payload: PayloadHead,
    #[serde(default)]
    payloadkeys: Vec<KeySpec>,
}

#[derive(Deserialize)]
struct PayloadHead {
    payloadtype: String,
    #[serde(default, rename = "supportedOS")]
    supported_os: Option<SupportedOs>,
}

/// What Russet knows about one payload type.
#[derive(Debug, Clone)]
pub struct PayloadSchema {
    pub payload_type: String,
    /// Apple's title, e.g. "Managed Preferences".
    pub title: String,
    /// macOS support as Apple's schema states it (`None`: the schema says nothing about
    /// platforms, as for `com.apple.security.wapi-identity`).
    pub macos: Option<OsSupport>,
    /// Whether the schema names platforms and macOS is not among them (or is `n/a`).
    pub unavailable_on_macos: bool,
    /// The payload dictionary: the common payload keys and the type's own, as one spec.
    pub spec: KeySpec,
}

struct Schemas {
    top_level: KeySpec,
    common: KeySpec,
    payloads: HashMap<String, PayloadSchema>,
}

static SCHEMAS: LazyLock<Result<Schemas, String>> = LazyLock::new(load);

fn dictionary(keys: Vec<KeySpec>) -> KeySpec {
    KeySpec {
        key: String::new(),
        ty: KeyType::Dictionary,
        presence: Some("required".into()),
        subkeys: keys,
        rangelist: None,
        supported_os: None,
    }
}

/// Apple describes recursive structures (an app item's `subApps` holds app items) with a YAML
/// alias inside its own anchor. The YAML reader expands aliases eagerly and cannot build a
/// cycle, so such an alias becomes `[]` before parsing: the nested items are then checked as
/// values of the schema's type, one level less deep. A node spans the lines indented deeper
/// than its anchor's line, and the block sequence items at the same indentation.
fn break_recursive_aliases(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find(": &") else { continue };
        let anchor = line[at + 3..].trim();
        if anchor.is_empty() || anchor.contains(' ') {
            continue;
        }
        let base = indent(line);
        let alias = format!("*{anchor}");
        for (j, inner) in lines.iter().enumerate().skip(i + 1) {
            let trimmed = inner.trim_start();
            if trimmed.is_empty() {
                continue;
            }
            let level = indent(inner);
            if level < base || (level == base && !trimmed.starts_with("- ")) {
                break;
            }
            if inner.trim_end().ends_with(&alias) {
                let cut = out[j].len() - alias.len();
                out[j] = format!("{}[]", &out[j][..cut]);
            }
        }
    }
    out.join("\n")
}

fn load() -> Result<Schemas, String> {
    let mut files = Vec::new();
    for (name, text) in PROFILE_SCHEMA_FILES {
        let text = break_recursive_aliases(text);
        let file: SchemaFile =
            serde_norway::from_str(&text).map_err(|e| format!("schema {name}: {e}"))?;
        files.push(file);
    }
    let take = |files: &mut Vec<SchemaFile>, kind: &str| -> Result<SchemaFile, String> {
        let at = files
            .iter()
            .position(|f| f.payload.payloadtype == kind)
            .ok_or_else(|| format!("no {kind} schema"))?;
        Ok(files.remove(at))
    };
    let top_level = dictionary(take(&mut files, "TopLevel")?.payloadkeys);
    let common = take(&mut files, "CommonPayloadKeys")?.payloadkeys;

    // Group the files by payload type, in file-name order.
    let mut by_type: Vec<(String, Vec<SchemaFile>)> = Vec::new();
    for f in files {
        match by_type
            .iter_mut()
            .find(|(t, _)| *t == f.payload.payloadtype)
        {
            Some((_, group)) => group.push(f),
            None => by_type.push((f.payload.payloadtype.clone(), vec![f])),
        }
    }
    let mut payloads = HashMap::new();
    for (payload_type, group) in by_type {
        payloads.insert(payload_type.clone(), merge(payload_type, group, &common));
    }
    Ok(Schemas {
        top_level,
        common: dictionary(common),
        payloads,
    })
}

/// One payload type from its file(s). A key is required only if every file requires it (the
/// `com.apple.MCX` files each describe one feature, and a payload may carry any of them).
fn merge(payload_type: String, group: Vec<SchemaFile>, common: &[KeySpec]) -> PayloadSchema {
    let variants = group.len();
    let title = group
        .iter()
        .map(|f| f.title.as_str())
        .collect::<Vec<_>>()
        .join(" / ");
    let macos = group
        .iter()
        .find_map(|f| f.payload.supported_os.as_ref()?.macos.clone());
    let names_platforms = group.iter().any(|f| f.payload.supported_os.is_some());
    let unavailable_on_macos = names_platforms && macos.as_ref().is_none_or(|m| m.not_available());

    let mut keys: Vec<KeySpec> = Vec::new();
    let mut required_in: HashMap<String, usize> = HashMap::new();
    for file in group {
        for key in file.payloadkeys {
            if key.required() {
                *required_in.entry(key.key.clone()).or_default() += 1;
            }
            if !keys.iter().any(|k| k.key == key.key) {
                keys.push(key);
            }
        }
    }
    if variants > 1 {
        for key in &mut keys {
            if key.required() && required_in.get(&key.key).copied().unwrap_or(0) < variants {
                key.presence = Some("optional".into());
            }
        }
    }
    for c in common {
        if !keys.iter().any(|k| k.key == c.key) {
            keys.push(c.clone());
        }
    }
    PayloadSchema {
        payload_type,
        title,
        macos,
        unavailable_on_macos,
        spec: dictionary(keys),
    }
}

fn schemas() -> Result<&'static Schemas, ProtocolError> {
    SCHEMAS
        .as_ref()
        .map_err(|e| ProtocolError::Invalid(format!("built-in profile schema failed to load: {e}")))
}

/// The profile's own keys (`TopLevel.yaml`) as one dictionary spec.
pub fn top_level() -> Result<&'static KeySpec, ProtocolError> {
    Ok(&schemas()?.top_level)
}

/// The keys every payload has (`CommonPayloadKeys.yaml`) as one dictionary spec.
pub fn common() -> Result<&'static KeySpec, ProtocolError> {
    Ok(&schemas()?.common)
}

/// Apple's schema for a payload type, if Apple publishes one.
pub fn payload_schema(payload_type: &str) -> Result<Option<&'static PayloadSchema>, ProtocolError> {
    Ok(schemas()?.payloads.get(payload_type))
}

/// Every payload type Apple's schemas describe, sorted.
pub fn payload_types() -> Result<Vec<&'static str>, ProtocolError> {
    let mut all: Vec<&str> = schemas()?.payloads.keys().map(String::as_str).collect();
    all.sort_unstable();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_loads() {
        // 128 files: TopLevel, CommonPayloadKeys and 126 payload files, of which com.apple.MCX
        // has six and com.apple.extensiblesso two.
        assert_eq!(PROFILE_SCHEMA_FILES.len(), 128);
        let types = payload_types().expect("schemas load");
        assert_eq!(types.len(), 126 - 5 - 1);
        assert!(types.contains(&"com.apple.ManagedClient.preferences"));
        assert!(!types.contains(&"TopLevel"));
    }

    #[test]
    fn payload_specs_carry_the_common_keys() {
        let dock = payload_schema("com.apple.dock").unwrap().expect("dock");
        for key in [
            "PayloadType",
            "PayloadUUID",
            "PayloadIdentifier",
            "PayloadVersion",
        ] {
            assert!(
                dock.spec.subkey(key).is_some_and(KeySpec::required),
                "{key}"
            );
        }
        assert!(dock.spec.subkey("orientation").is_some());
        assert!(!dock.unavailable_on_macos);
    }

    #[test]
    fn macos_availability_follows_supported_os() {
        let app_lock = payload_schema("com.apple.app.lock")
            .unwrap()
            .expect("app lock");
        assert!(app_lock.unavailable_on_macos);
        // The WAPI schema names no platform at all: Russet does not guess.
        let wapi = payload_schema("com.apple.security.wapi-identity")
            .unwrap()
            .expect("wapi");
        assert!(!wapi.unavailable_on_macos);
    }

    #[test]
    fn merged_types_require_only_what_every_variant_requires() {
        let mcx = payload_schema("com.apple.MCX").unwrap().expect("MCX");
        assert!(mcx.title.contains(" / "), "{}", mcx.title);
        let required: Vec<&str> = mcx
            .spec
            .subkeys
            .iter()
            .filter(|k| k.required() && !k.key.starts_with("Payload"))
            .map(|k| k.key.as_str())
            .collect();
        assert!(required.is_empty(), "{required:?}");
    }

    #[test]
    fn a_recursive_alias_is_cut_and_the_others_kept() {
        let text = "a:\n  subkeys: &id001\n  - key: item\n    subkeys: *id001\nb: *id001\n";
        assert_eq!(
            break_recursive_aliases(text),
            "a:\n  subkeys: &id001\n  - key: item\n    subkeys: []\nb: *id001"
        );
        let access = payload_schema("com.apple.applicationaccess.new")
            .unwrap()
            .expect("application access");
        let item = &access.spec.subkey("whiteList").expect("whiteList").subkeys[0];
        assert_eq!(item.subkey("subApps").map(|s| s.ty), Some(KeyType::Array));
    }

    #[test]
    fn top_level_names_payload_scope_values() {
        let top = top_level().unwrap();
        let scope = top.subkey("PayloadScope").expect("PayloadScope");
        assert_eq!(scope.rangelist.as_ref().map(Vec::len), Some(2));
    }
}
