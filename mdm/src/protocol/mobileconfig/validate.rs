//! The checks of an uploaded profile (the rules are listed in `mobileconfig/mod.rs`).

use std::collections::HashMap;

use plist::{Dictionary, Value};

use super::schemas;
use super::variables::{self, Scan, Variable};
use super::{MobileconfigError, PayloadScope, PayloadSummary, UploadRules};
use crate::protocol::schema::{KeySpec, KeyType, Problem, RangeValue};
use crate::protocol::values::type_name;

/// Apple's MDM payload (`com.apple.mdm.yaml`): Russet's enrollment profile carries the one.
const MDM: &str = "com.apple.mdm";
const SCEP: &str = "com.apple.security.scep";
/// FileVault personal recovery key escrow, and its predecessor (both in Apple's schemas).
const FILEVAULT_ESCROW: [&str; 2] = [
    "com.apple.security.FDERecoveryKeyEscrow",
    "com.apple.security.FDERecoveryRedirect",
];

/// What a profile that passed is made of.
pub(super) struct Checked {
    pub identifier: String,
    pub uuid: String,
    pub scope: PayloadScope,
    pub payloads: Vec<PayloadSummary>,
    pub variables: Vec<Variable>,
    pub templated: bool,
    pub warnings: Vec<String>,
}

#[derive(Default)]
struct Findings {
    problems: Vec<Problem>,
    refusals: Vec<Problem>,
    warnings: Vec<Problem>,
}

fn at(path: &str, message: impl Into<String>) -> Problem {
    Problem {
        path: path.to_string(),
        message: message.into(),
    }
}

impl Findings {
    fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(at(path, message));
    }
    fn refuse(&mut self, path: &str, message: impl Into<String>) {
        self.refusals.push(at(path, message));
    }
    fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(at(path, message));
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn string<'a>(d: &'a Dictionary, key: &str) -> Option<&'a str> {
    d.get(key).and_then(Value::as_string)
}

fn internal(e: crate::protocol::ProtocolError) -> MobileconfigError {
    MobileconfigError::Internal(e.to_string())
}

pub(super) fn check(
    top: &Dictionary,
    signed: bool,
    rules: &UploadRules<'_>,
) -> Result<Checked, MobileconfigError> {
    // An encrypted profile's payloads cannot be read, so nothing below could be checked.
    if top.get("IsEncrypted").and_then(Value::as_boolean) == Some(true)
        || top.contains_key("EncryptedPayloadContent")
    {
        return Err(MobileconfigError::Refused(vec![at(
            "IsEncrypted",
            "an encrypted profile cannot be checked before it reaches Macs; upload it \
             unencrypted (Russet seals every profile at rest)",
        )]));
    }
    let mut f = Findings::default();
    check_dict(schemas::top_level().map_err(internal)?, top, "", &mut f);

    let identifier = string(top, "PayloadIdentifier").unwrap_or_default();
    check_identifier(top, &mut f);
    for reserved in rules.reserved_identifiers {
        if identifier == *reserved || identifier.starts_with(&format!("{reserved}.")) {
            f.refuse(
                "PayloadIdentifier",
                format!(
                    "{identifier} is Russet's own ({reserved}: {}); an upload with it would \
                     replace what Russet installs: choose another identifier",
                    reserved_purpose(reserved)
                ),
            );
        }
    }
    let uuid = string(top, "PayloadUUID").unwrap_or_default();
    if top.contains_key("PayloadUUID") && uuid.trim().is_empty() {
        f.problem("PayloadUUID", "must not be empty");
    }
    let scope = string(top, "PayloadScope")
        .and_then(PayloadScope::parse)
        .unwrap_or(PayloadScope::System);

    let mut payloads = Vec::new();
    if let Some(Value::Array(items)) = top.get("PayloadContent") {
        if items.is_empty() {
            f.problem("PayloadContent", "a profile needs at least one payload");
        }
        for (i, item) in items.iter().enumerate() {
            if let Value::Dictionary(d) = item {
                payloads.push(check_payload(i, d, rules, &mut f)?);
            }
        }
    }
    check_unique(&payloads, &mut f);

    let mut scan = Scan::default();
    for (key, value) in top {
        variables::scan(value, key, &mut scan);
    }
    check_variables(&scan, signed, scope, &mut f);

    if !f.refusals.is_empty() {
        return Err(MobileconfigError::Refused(f.refusals));
    }
    if !f.problems.is_empty() {
        return Err(MobileconfigError::Invalid(f.problems));
    }
    Ok(Checked {
        identifier: identifier.to_string(),
        uuid: uuid.to_string(),
        scope,
        payloads,
        variables: if signed {
            Vec::new()
        } else {
            scan.known.iter().copied().collect()
        },
        templated: !signed && scan.templated(),
        warnings: f.warnings.iter().map(Problem::to_string).collect(),
    })
}

/// A present identifier must say something (a missing one is reported as missing).
fn check_identifier(top: &Dictionary, f: &mut Findings) {
    if let Some(Value::String(id)) = top.get("PayloadIdentifier") {
        if id.trim().is_empty() {
            f.problem("PayloadIdentifier", "must not be empty");
        } else if id.chars().any(char::is_control) {
            f.problem("PayloadIdentifier", "must not contain control characters");
        }
    }
}

/// What a reserved identifier is for, for the refusal.
fn reserved_purpose(reserved: &str) -> &'static str {
    match reserved {
        "org.russet.enrollment" => "the Mac's MDM enrollment",
        "org.russet.filevault" => "FileVault enforcement and key escrow",
        r if r.starts_with("org.russet.golden-image") => "golden image delivery",
        r if r.starts_with("org.russet.parallels-activation") => {
            "Parallels Desktop activation delivery"
        }
        _ => "a profile Russet builds",
    }
}

fn check_payload(
    i: usize,
    d: &Dictionary,
    rules: &UploadRules<'_>,
    f: &mut Findings,
) -> Result<PayloadSummary, MobileconfigError> {
    let path = format!("PayloadContent[{i}]");
    let kind = string(d, "PayloadType").unwrap_or_default();
    let type_path = join(&path, "PayloadType");
    if kind == MDM {
        f.refuse(
            &type_path,
            "com.apple.mdm: Russet's enrollment profile carries the Mac's MDM payload; a \
             second one would hand the Mac to another server or break its enrollment",
        );
    }
    if FILEVAULT_ESCROW.contains(&kind) && !rules.russet_escrow {
        f.refuse(
            &type_path,
            format!(
                "{kind}: FileVault recovery-key escrow is Russet's own (its FileVault \
                 feature escrows the key); it cannot come from an uploaded profile"
            ),
        );
    }
    if kind == SCEP {
        check_scep(d, &path, rules, f);
    }
    match schemas::payload_schema(kind).map_err(internal)? {
        Some(schema) if schema.unavailable_on_macos => f.problem(
            &type_path,
            format!(
                "{kind} ({}) is not available on macOS (Apple's schema)",
                schema.title
            ),
        ),
        Some(schema) => check_dict(&schema.spec, d, &path, f),
        None => {
            check_dict_known_only(schemas::common().map_err(internal)?, d, &path, f);
            if kind.is_empty() {
                // Missing or not a string: reported by the common keys' check.
            } else if kind.starts_with("com.apple.") || !kind.contains('.') {
                f.problem(
                    &type_path,
                    format!(
                        "unknown payload type {kind}: Apple's device-management schemas \
                         (2024-10) do not describe it; for an app's preferences use a \
                         com.apple.ManagedClient.preferences payload (russet profile \
                         custom-settings)"
                    ),
                );
            } else {
                f.warn(
                    &type_path,
                    format!(
                        "{kind} is not one of Apple's payload types: macOS applies its keys \
                         as managed preferences of the domain {kind}; Russet does not check \
                         them"
                    ),
                );
            }
        }
    }
    let text = |key: &str| string(d, key).unwrap_or_default().to_string();
    Ok(PayloadSummary {
        payload_type: kind.to_string(),
        identifier: text("PayloadIdentifier"),
        uuid: text("PayloadUUID"),
        display_name: string(d, "PayloadDisplayName").map(str::to_string),
    })
}

/// A SCEP payload that asks Russet's own CA for a certificate would give the Mac a second
/// identity next to its MDM one (`protocol/enrollment` issues exactly one per enrollment).
fn check_scep(d: &Dictionary, path: &str, rules: &UploadRules<'_>, f: &mut Findings) {
    let Some(ours) = rules.mdm_scep_url else {
        return;
    };
    let url = d
        .get("PayloadContent")
        .and_then(Value::as_dictionary)
        .and_then(|c| string(c, "URL"))
        .unwrap_or_default();
    if same_endpoint(url, ours) {
        f.refuse(
            &format!("{path}.PayloadContent.URL"),
            format!(
                "{url} is Russet's own SCEP service: a second certificate from Russet's CA \
                 would compete with the Mac's MDM identity (the enrollment profile gets it)"
            ),
        );
    }
}

/// Scheme, host and path compared without case (hosts) and without a query or a trailing
/// slash.
fn same_endpoint(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        let u = u.trim();
        let u = u.split(['?', '#']).next().unwrap_or("");
        u.trim_end_matches('/').to_ascii_lowercase()
    };
    !a.trim().is_empty() && norm(a) == norm(b)
}

fn check_unique(payloads: &[PayloadSummary], f: &mut Findings) {
    let mut seen_id: HashMap<&str, usize> = HashMap::new();
    let mut seen_uuid: HashMap<&str, usize> = HashMap::new();
    for (i, p) in payloads.iter().enumerate() {
        for (value, key, seen) in [
            (p.identifier.as_str(), "PayloadIdentifier", &mut seen_id),
            (p.uuid.as_str(), "PayloadUUID", &mut seen_uuid),
        ] {
            if value.is_empty() {
                continue;
            }
            if let Some(first) = seen.insert(value, i) {
                f.problem(
                    &format!("PayloadContent[{i}].{key}"),
                    format!(
                        "{value} is also PayloadContent[{first}]'s; each payload needs its own \
                         (Apple's CommonPayloadKeys)"
                    ),
                );
            }
        }
    }
}

fn check_variables(scan: &Scan, signed: bool, scope: PayloadScope, f: &mut Findings) {
    if signed {
        for (path, v) in &scan.uses {
            f.problem(
                path,
                format!(
                    "{v} cannot be filled in: a signed profile is delivered byte for byte; \
                     upload it unsigned (Russet seals it at rest) to use variables"
                ),
            );
        }
        return;
    }
    for (path, name) in &scan.unknown {
        f.problem(
            path,
            format!(
                "unknown variable ${name} (Russet fills in {}); write $${name} for the \
                 literal text",
                Variable::known_list()
            ),
        );
    }
    if scope == PayloadScope::System {
        for (path, v) in scan
            .uses
            .iter()
            .filter(|(_, v)| *v == Variable::UserShortName)
        {
            f.problem(
                path,
                format!(
                    "{v} needs a user profile (PayloadScope User): a system profile is \
                     installed on the device channel, which has no user"
                ),
            );
        }
    }
}

/// The spec a dictionary key is checked against: its own entry, else an `ANY…` entry (Apple's
/// way of writing "any key").
fn lookup<'a>(spec: &'a KeySpec, key: &str) -> Option<&'a KeySpec> {
    spec.subkeys
        .iter()
        .find(|s| s.key == key)
        .or_else(|| spec.subkeys.iter().find(|s| s.key.starts_with("ANY")))
}

/// A dictionary described by a single `…Item` dictionary (TopLevel's `ConsentText` →
/// `ConsentTextItem`) is that item.
fn itself(spec: &KeySpec) -> &KeySpec {
    match spec.subkeys.as_slice() {
        [only] if only.ty == KeyType::Dictionary && only.key.ends_with("Item") => only,
        _ => spec,
    }
}

fn check_dict(spec: &KeySpec, dict: &Dictionary, path: &str, f: &mut Findings) {
    let spec = itself(spec);
    for (key, value) in dict {
        let key_path = join(path, key);
        match lookup(spec, key) {
            Some(sub) => {
                availability(sub, &key_path, f);
                check_value(sub, value, &key_path, f);
            }
            // A dictionary whose keys the schema leaves open.
            None if spec.subkeys.is_empty() => {}
            None => f.warn(
                &key_path,
                "not in Apple's schema for this payload (Macs ignore keys they don't know)",
            ),
        }
    }
    missing_required(spec, dict, path, f);
}

/// Checks only the keys `spec` names (a vendor payload: the common keys, the rest is theirs).
fn check_dict_known_only(spec: &KeySpec, dict: &Dictionary, path: &str, f: &mut Findings) {
    for (key, value) in dict {
        if let Some(sub) = spec.subkeys.iter().find(|s| s.key == *key) {
            check_value(sub, value, &join(path, key), f);
        }
    }
    missing_required(spec, dict, path, f);
}

fn missing_required(spec: &KeySpec, dict: &Dictionary, path: &str, f: &mut Findings) {
    for sub in &spec.subkeys {
        if sub.required() && !sub.key.starts_with("ANY") && !dict.contains_key(&sub.key) {
            f.problem(&join(path, &sub.key), "required key is missing");
        }
    }
}

fn availability(spec: &KeySpec, path: &str, f: &mut Findings) {
    let Some(macos) = spec.supported_os.as_ref().and_then(|s| s.macos.as_ref()) else {
        return;
    };
    if macos.not_available() {
        f.warn(
            path,
            "Apple's schema says this key is not available on macOS (Macs ignore it)",
        );
    } else if let Some(v) = &macos.removed {
        f.warn(path, format!("removed in macOS {v} (Apple's schema)"));
    }
}

fn accepts(ty: KeyType, value: &Value) -> bool {
    // A whole number where a real is expected reads the same to macOS (an NSNumber).
    ty.accepts(value) || (ty == KeyType::Real && matches!(value, Value::Integer(_)))
}

fn check_value(spec: &KeySpec, value: &Value, path: &str, f: &mut Findings) {
    if !accepts(spec.ty, value) {
        f.problem(
            path,
            format!("expected {}, found {}", spec.ty.name(), type_name(value)),
        );
        return;
    }
    if let Some(allowed) = &spec.rangelist
        && !allowed.iter().any(|r| r.matches(value))
    {
        let names: Vec<String> = allowed.iter().map(RangeValue::display).collect();
        f.problem(path, format!("value is not one of: {}", names.join(", ")));
    }
    match value {
        Value::Dictionary(d) if spec.ty == KeyType::Dictionary => check_dict(spec, d, path, f),
        Value::Array(items) if spec.ty == KeyType::Array => {
            if let Some(element) = spec.subkeys.first() {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    availability(element, &item_path, f);
                    check_value(element, item, &item_path, f);
                }
            }
        }
        _ => {}
    }
}
