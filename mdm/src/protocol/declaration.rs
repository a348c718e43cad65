//! Declarations an admin uploads (Apple's Declarative Device Management), checked against
//! Apple's declaration schemas: pure, no store.
//!
//! The YAML files in `protocol/schema/declarations/` are apple/device-management's
//! `declarative/declarations/{activations,assets,configurations,management}/*.yaml` (MIT, see
//! the LICENSE.txt beside them), copied unmodified and named `<kind>.<file>`. Each gives its
//! `declarationtype` and its `payloadkeys`, read into the command schemas' model
//! ([`KeySpec`]), so a payload is checked by the same code as a command's keys: every key
//! known, every required key present, every value of its type and range.

use super::schema::{CommandSchema, KeySpec, PayloadInfo, SupportedOs, validate_keys};
use plist::{Dictionary, Value};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::LazyLock;

/// `(file name, text)`: `<kind>.<name>.yaml`, kind `activation`, `asset`, `configuration` or
/// `management`.
const FILES: &[(&str, &str)] = &[
    (
        "activation.simple.yaml",
        include_str!("schema/declarations/activation.simple.yaml"),
    ),
    (
        "asset.credential.acme.yaml",
        include_str!("schema/declarations/asset.credential.acme.yaml"),
    ),
    (
        "asset.credential.certificate.yaml",
        include_str!("schema/declarations/asset.credential.certificate.yaml"),
    ),
    (
        "asset.credential.identity.yaml",
        include_str!("schema/declarations/asset.credential.identity.yaml"),
    ),
    (
        "asset.credential.scep.yaml",
        include_str!("schema/declarations/asset.credential.scep.yaml"),
    ),
    (
        "asset.credential.userpassword.yaml",
        include_str!("schema/declarations/asset.credential.userpassword.yaml"),
    ),
    (
        "asset.data.yaml",
        include_str!("schema/declarations/asset.data.yaml"),
    ),
    (
        "asset.useridentity.yaml",
        include_str!("schema/declarations/asset.useridentity.yaml"),
    ),
    (
        "configuration.account.caldav.yaml",
        include_str!("schema/declarations/configuration.account.caldav.yaml"),
    ),
    (
        "configuration.account.carddav.yaml",
        include_str!("schema/declarations/configuration.account.carddav.yaml"),
    ),
    (
        "configuration.account.exchange.yaml",
        include_str!("schema/declarations/configuration.account.exchange.yaml"),
    ),
    (
        "configuration.account.google.yaml",
        include_str!("schema/declarations/configuration.account.google.yaml"),
    ),
    (
        "configuration.account.ldap.yaml",
        include_str!("schema/declarations/configuration.account.ldap.yaml"),
    ),
    (
        "configuration.account.mail.yaml",
        include_str!("schema/declarations/configuration.account.mail.yaml"),
    ),
    (
        "configuration.account.subscribed-calendar.yaml",
        include_str!("schema/declarations/configuration.account.subscribed-calendar.yaml"),
    ),
    (
        "configuration.app.managed.yaml",
        include_str!("schema/declarations/configuration.app.managed.yaml"),
    ),
    (
        "configuration.diskmanagement.settings.yaml",
        include_str!("schema/declarations/configuration.diskmanagement.settings.yaml"),
    ),
    (
        "configuration.legacy.interactive.yaml",
        include_str!("schema/declarations/configuration.legacy.interactive.yaml"),
    ),
    (
        "configuration.legacy.yaml",
        include_str!("schema/declarations/configuration.legacy.yaml"),
    ),
    (
        "configuration.management.status-subscriptions.yaml",
        include_str!("schema/declarations/configuration.management.status-subscriptions.yaml"),
    ),
    (
        "configuration.management.test.yaml",
        include_str!("schema/declarations/configuration.management.test.yaml"),
    ),
    (
        "configuration.math.settings.yaml",
        include_str!("schema/declarations/configuration.math.settings.yaml"),
    ),
    (
        "configuration.passcode.settings.yaml",
        include_str!("schema/declarations/configuration.passcode.settings.yaml"),
    ),
    (
        "configuration.safari.extensions.settings.yaml",
        include_str!("schema/declarations/configuration.safari.extensions.settings.yaml"),
    ),
    (
        "configuration.screensharing.connection.group.yaml",
        include_str!("schema/declarations/configuration.screensharing.connection.group.yaml"),
    ),
    (
        "configuration.screensharing.connection.yaml",
        include_str!("schema/declarations/configuration.screensharing.connection.yaml"),
    ),
    (
        "configuration.screensharing.host.settings.yaml",
        include_str!("schema/declarations/configuration.screensharing.host.settings.yaml"),
    ),
    (
        "configuration.security.certificate.yaml",
        include_str!("schema/declarations/configuration.security.certificate.yaml"),
    ),
    (
        "configuration.security.identity.yaml",
        include_str!("schema/declarations/configuration.security.identity.yaml"),
    ),
    (
        "configuration.security.passkey.attestation.yaml",
        include_str!("schema/declarations/configuration.security.passkey.attestation.yaml"),
    ),
    (
        "configuration.services.background-tasks.yaml",
        include_str!("schema/declarations/configuration.services.background-tasks.yaml"),
    ),
    (
        "configuration.services.configuration-files.yaml",
        include_str!("schema/declarations/configuration.services.configuration-files.yaml"),
    ),
    (
        "configuration.softwareupdate.enforcement.specific.yaml",
        include_str!("schema/declarations/configuration.softwareupdate.enforcement.specific.yaml"),
    ),
    (
        "configuration.softwareupdate.settings.yaml",
        include_str!("schema/declarations/configuration.softwareupdate.settings.yaml"),
    ),
    (
        "configuration.watch.enrollment.yaml",
        include_str!("schema/declarations/configuration.watch.enrollment.yaml"),
    ),
    (
        "management.organization-info.yaml",
        include_str!("schema/declarations/management.organization-info.yaml"),
    ),
    (
        "management.properties.yaml",
        include_str!("schema/declarations/management.properties.yaml"),
    ),
    (
        "management.server-capabilities.yaml",
        include_str!("schema/declarations/management.server-capabilities.yaml"),
    ),
];

/// Identifiers under this prefix are Russet's own (its activation, its OS updates).
pub const RESERVED_PREFIX: &str = "org.russet.";
const MAX_IDENTIFIER: usize = 256;

#[derive(Deserialize)]
struct DeclarationFile {
    payload: DeclarationHead,
    #[serde(default)]
    payloadkeys: Vec<KeySpec>,
}

#[derive(Deserialize)]
struct DeclarationHead {
    declarationtype: String,
    #[serde(default, rename = "supportedOS")]
    supported_os: Option<SupportedOs>,
}

/// One declaration type as Apple's schema describes it.
pub struct DeclarationSchema {
    /// `activation`, `asset`, `configuration` or `management`.
    pub kind: &'static str,
    schema: CommandSchema,
    unavailable_on_macos: bool,
}

static SCHEMAS: LazyLock<Result<HashMap<String, DeclarationSchema>, String>> =
    LazyLock::new(|| {
        let mut map = HashMap::new();
        for (name, text) in FILES {
            let kind = ["activation", "asset", "configuration", "management"]
                .into_iter()
                .find(|k| name.starts_with(&format!("{k}.")))
                .ok_or_else(|| format!("schema {name}: no kind"))?;
            let file: DeclarationFile =
                serde_norway::from_str(text).map_err(|e| format!("schema {name}: {e}"))?;
            let unavailable_on_macos = file
                .payload
                .supported_os
                .as_ref()
                .is_some_and(|s| s.macos.as_ref().is_none_or(|m| m.not_available()));
            map.insert(
                file.payload.declarationtype.clone(),
                DeclarationSchema {
                    kind,
                    schema: CommandSchema {
                        payload: PayloadInfo {
                            requesttype: file.payload.declarationtype,
                        },
                        payloadkeys: file.payloadkeys,
                    },
                    unavailable_on_macos,
                },
            );
        }
        Ok(map)
    });

/// A declaration that passed: what the DDM channel serves (with a `ServerToken` it computes).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedDeclaration {
    pub kind: &'static str,
    pub declaration_type: String,
    pub identifier: String,
    pub payload: Json,
}

fn to_plist(v: &Json, path: &str) -> Result<Value, String> {
    Ok(match v {
        Json::Null => {
            return Err(format!(
                "{path}: null is not a value a declaration may hold"
            ));
        }
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Integer(i.into()),
            (None, Some(u), _) => Value::Integer(u.into()),
            (None, None, Some(f)) => Value::Real(f),
            _ => return Err(format!("{path}: not a number a declaration may hold")),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| to_plist(x, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => {
            let mut d = Dictionary::new();
            for (k, x) in map {
                d.insert(k.clone(), to_plist(x, &format!("{path}.{k}"))?);
            }
            Value::Dictionary(d)
        }
    })
}

/// Check an uploaded declaration (`{"Type", "Identifier", "Payload", "ServerToken"?}`). The
/// error names every problem, each `path: message`
/// (`Payload.MinimumLength: expected <integer>, found <string>`).
pub fn check(declaration: &Json) -> Result<CheckedDeclaration, Vec<String>> {
    check_one(declaration)
        .map_err(|e| vec![e])
        .and_then(|(d, dict, schema)| {
            let problems: Vec<String> = validate_keys(&schema.schema, &dict)
                .iter()
                .map(|p| format!("Payload.{p}"))
                .collect();
            if problems.is_empty() {
                Ok(d)
            } else {
                Err(problems)
            }
        })
}

/// The checks before the payload's keys: the declaration and the schema its payload is
/// checked against.
fn check_one(
    declaration: &Json,
) -> Result<(CheckedDeclaration, Dictionary, &'static DeclarationSchema), String> {
    let schemas = SCHEMAS
        .as_ref()
        .map_err(|e| format!("built-in declaration schemas failed to load: {e}"))?;
    let Json::Object(top) = declaration else {
        return Err("a declaration is a JSON object".into());
    };
    for key in top.keys() {
        if !["Type", "Identifier", "Payload", "ServerToken"].contains(&key.as_str()) {
            return Err(format!(
                "{key}: unknown key (Type, Identifier, Payload, ServerToken)"
            ));
        }
    }
    let Some(Json::String(declaration_type)) = top.get("Type") else {
        return Err("Type: a string is required".into());
    };
    let Some(schema) = schemas.get(declaration_type) else {
        return Err(format!(
            "Type: {declaration_type:?} is not a declaration type in Apple's schemas"
        ));
    };
    if schema.unavailable_on_macos {
        return Err(format!(
            "Type: {declaration_type} is not available on macOS"
        ));
    }
    let Some(Json::String(identifier)) = top.get("Identifier") else {
        return Err("Identifier: a string is required".into());
    };
    if identifier.is_empty()
        || identifier.len() > MAX_IDENTIFIER
        || identifier
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!(
            "Identifier: 1 to {MAX_IDENTIFIER} characters, no spaces, control characters or /"
        ));
    }
    if identifier.starts_with(RESERVED_PREFIX) {
        return Err(format!("Identifier: {RESERVED_PREFIX}… is Russet's own"));
    }
    let payload = top
        .get("Payload")
        .cloned()
        .unwrap_or(Json::Object(Default::default()));
    let Value::Dictionary(dict) = to_plist(&payload, "Payload")? else {
        return Err("Payload: a JSON object is required".into());
    };
    Ok((
        CheckedDeclaration {
            kind: schema.kind,
            declaration_type: declaration_type.clone(),
            identifier: identifier.clone(),
            payload,
        },
        dict,
        schema,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_loads() {
        let schemas = SCHEMAS.as_ref().expect("schemas load");
        assert!(schemas.len() >= 30, "{}", schemas.len());
        assert_eq!(
            schemas["com.apple.configuration.passcode.settings"].kind,
            "configuration"
        );
        assert_eq!(schemas["com.apple.activation.simple"].kind, "activation");
        assert_eq!(schemas["com.apple.asset.data"].kind, "asset");
    }

    #[test]
    fn a_valid_declaration_passes() {
        let d = check(&json!({
            "Type": "com.apple.configuration.passcode.settings",
            "Identifier": "com.example.passcode",
            "Payload": {"MinimumLength": 8, "RequireAlphanumericPasscode": true},
        }))
        .expect("valid");
        assert_eq!(d.kind, "configuration");
        assert_eq!(d.identifier, "com.example.passcode");
    }

    #[test]
    fn each_problem_is_named() {
        for (d, why) in [
            (json!([]), "a JSON object"),
            (
                json!({"Type": "com.example.nope", "Identifier": "a", "Payload": {}}),
                "Type:",
            ),
            (json!({"Identifier": "a", "Payload": {}}), "Type:"),
            (
                json!({"Type": "com.apple.configuration.passcode.settings", "Payload": {}}),
                "Identifier:",
            ),
            (
                json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "org.russet.x", "Payload": {}}),
                "Russet's own",
            ),
            (
                json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "a b", "Payload": {}}),
                "Identifier:",
            ),
            (
                json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "a", "Payload": {"MinimumLength": "8"}}),
                "Payload.MinimumLength: expected <integer>",
            ),
            (
                json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "a", "Payload": {"Nope": 1}}),
                "Payload.Nope: unknown key",
            ),
            (
                json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "a", "Payload": {"MinimumLength": null}}),
                "null",
            ),
            (
                json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "a", "Payload": []}),
                "Payload:",
            ),
            (
                json!({"Type": "com.apple.configuration.passcode.settings", "Identifier": "a", "Extra": 1}),
                "Extra: unknown key",
            ),
            (
                json!({"Type": "com.apple.activation.simple", "Identifier": "a", "Payload": {}}),
                "StandardConfigurations: required key is missing",
            ),
        ] {
            let e = check(&d).expect_err(why).join("; ");
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
