//! A Mac's DDM status report (Apple, `declarative/protocol/statusreport.yaml`), read and
//! bounded: pure, no store. The Mac sends it as the `Data` of a `DeclarativeManagement`
//! check-in whose `Endpoint` is `status` (errata, wave 2).
//!
//! `StatusItems` is a tree whose dotted paths are Apple's status item names
//! (`softwareupdate.install-state` is `{"softwareupdate": {"install-state": …}}`); Russet keeps
//! the items it uses ([`STORED_ITEMS`]), the `Errors`, and `management.declarations` (how the
//! Mac took each declaration: `valid`, `active`, `reasons`). Anything else is ignored. Reports
//! are incremental unless `FullReport` is true, so the store merges them.

use serde_json::Value;

/// Largest status report accepted (a full report of a Mac with many declarations is a few
/// KiB; the lists Russet does not keep — apps, certificates, accounts — are what grows).
pub const MAX_STATUS_BYTES: usize = 1024 * 1024;
/// Declarations per kind, errors, and the size of one stored value, at most.
const MAX_DECLARATIONS: usize = 2000;
const MAX_ERRORS: usize = 200;
const MAX_VALUE_BYTES: usize = 16 * 1024;
const MAX_TEXT: usize = 512;

/// The status items Russet stores (Apple's `declarative/status/` names).
pub const STORED_ITEMS: &[&str] = &[
    "device.identifier.serial-number",
    "device.identifier.udid",
    "device.model.family",
    "device.model.identifier",
    "device.model.marketing-name",
    "device.operating-system.build-version",
    "device.operating-system.family",
    "device.operating-system.marketing-name",
    "device.operating-system.supplemental.build-version",
    "device.operating-system.supplemental.extra-version",
    "device.operating-system.version",
    "diskmanagement.filevault.enabled",
    "management.client-capabilities",
    "softwareupdate.beta-enrollment",
    "softwareupdate.device-id",
    "softwareupdate.failure-reason",
    "softwareupdate.install-reason",
    "softwareupdate.install-state",
    "softwareupdate.pending-version",
];

const DECLARATIONS_ITEM: &str = "management.declarations";

/// How the Mac took one declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclarationState {
    /// `activations`, `configurations`, `assets` or `management`.
    pub kind: String,
    pub identifier: String,
    pub server_token: String,
    /// `valid`, `invalid` or `unknown`.
    pub valid: String,
    pub active: bool,
    pub reasons: Option<Value>,
}

/// What Russet keeps of a status report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusReport {
    /// `FullReport`: replaces what is stored instead of merging.
    pub full: bool,
    /// (item name, value).
    pub items: Vec<(String, Value)>,
    pub errors: Vec<Value>,
    pub declarations: Vec<DeclarationState>,
}

/// Read a status report. The message says what is wrong, for the device's plain 400.
pub fn parse(bytes: &[u8]) -> Result<StatusReport, String> {
    if bytes.len() > MAX_STATUS_BYTES {
        return Err(format!(
            "status report too large ({} bytes, at most {MAX_STATUS_BYTES})",
            bytes.len()
        ));
    }
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("status report is not JSON: {e}"))?;
    let Value::Object(root) = root else {
        return Err("status report is not a JSON object".into());
    };
    let mut report = StatusReport {
        full: match root.get("FullReport") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("FullReport is not a boolean".into()),
        },
        ..StatusReport::default()
    };
    match root.get("StatusItems") {
        Some(Value::Object(items)) => walk("", items, 0, &mut report)?,
        Some(_) => return Err("StatusItems is not a dictionary".into()),
        None => return Err("StatusItems is missing".into()),
    }
    match root.get("Errors") {
        None => {}
        Some(Value::Array(errors)) => {
            for e in errors.iter().take(MAX_ERRORS) {
                let Some(item) = e.get("StatusItem").and_then(Value::as_str) else {
                    return Err("an error without a StatusItem".into());
                };
                if item.len() > MAX_TEXT {
                    return Err("an error's StatusItem is too long".into());
                }
                if fits(e) {
                    report.errors.push(e.clone());
                }
            }
        }
        Some(_) => return Err("Errors is not an array".into()),
    }
    Ok(report)
}

fn fits(v: &Value) -> bool {
    v.to_string().len() <= MAX_VALUE_BYTES
}

fn walk(
    prefix: &str,
    items: &serde_json::Map<String, Value>,
    depth: usize,
    report: &mut StatusReport,
) -> Result<(), String> {
    for (key, value) in items {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if path == DECLARATIONS_ITEM {
            declarations(value, report)?;
        } else if STORED_ITEMS.contains(&path.as_str()) {
            if fits(value) {
                report.items.push((path, value.clone()));
            }
        } else if let Value::Object(inner) = value {
            let below = format!("{path}.");
            let leads_somewhere = depth < 6
                && (DECLARATIONS_ITEM.starts_with(&below)
                    || STORED_ITEMS.iter().any(|i| i.starts_with(&below)));
            if leads_somewhere {
                walk(&path, inner, depth + 1, report)?;
            }
        }
    }
    Ok(())
}

/// `management.declarations`: `{activations|configurations|assets|management: [{identifier,
/// server-token, active, valid, reasons}]}`.
fn declarations(value: &Value, report: &mut StatusReport) -> Result<(), String> {
    let Value::Object(kinds) = value else {
        return Err("management.declarations is not a dictionary".into());
    };
    for kind in ["activations", "configurations", "assets", "management"] {
        let Some(list) = kinds.get(kind) else {
            continue;
        };
        let Value::Array(list) = list else {
            return Err(format!("management.declarations.{kind} is not an array"));
        };
        if list.len() > MAX_DECLARATIONS {
            return Err(format!(
                "management.declarations.{kind}: more than {MAX_DECLARATIONS}"
            ));
        }
        for d in list {
            let text = |key: &str| -> Result<String, String> {
                match d.get(key) {
                    Some(Value::String(s)) if s.len() <= MAX_TEXT => Ok(s.clone()),
                    Some(Value::String(_)) => Err(format!("a declaration's {key} is too long")),
                    _ => Err(format!("a declaration in {kind} without a {key} string")),
                }
            };
            let active = match d.get("active") {
                Some(Value::Bool(b)) => *b,
                _ => return Err(format!("a declaration in {kind} without an active boolean")),
            };
            report.declarations.push(DeclarationState {
                kind: kind.to_string(),
                identifier: text("identifier")?,
                server_token: text("server-token")?,
                valid: text("valid")?,
                active,
                reasons: d.get("reasons").filter(|r| fits(r)).cloned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_are_found_by_their_dotted_names_and_others_ignored() {
        let body = json!({
            "StatusItems": {
                "softwareupdate": {
                    "install-state": "downloading",
                    "pending-version": {"os-version": "15.2", "build-version": "24C101"},
                },
                "device": {"operating-system": {"version": "15.1", "build-version": "24B83"},
                           "unknown": {"deep": 1}},
                "app": {"managed": {"list": [{"identifier": "x"}]}},
                "management": {"declarations": {
                    "activations": [{"identifier": "org.russet.activation", "server-token": "a",
                                     "active": true, "valid": "valid"}],
                    "configurations": [{"identifier": "org.russet.os-update.1",
                                        "server-token": "b", "active": false, "valid": "invalid",
                                        "reasons": [{"code": "Error.ConfigurationCannotBeApplied"}]}],
                }},
            },
            "Errors": [],
        });
        let r = parse(body.to_string().as_bytes()).expect("a report");
        let names: Vec<&str> = r.items.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "device.operating-system.build-version",
                "device.operating-system.version",
                "softwareupdate.install-state",
                "softwareupdate.pending-version",
            ]
        );
        assert!(!r.full);
        assert_eq!(r.declarations.len(), 2);
        assert_eq!(r.declarations[1].kind, "configurations");
        assert_eq!(r.declarations[1].valid, "invalid");
        assert!(!r.declarations[1].active);
        assert!(r.declarations[1].reasons.is_some());
    }

    #[test]
    fn hostile_reports_are_refused_with_a_reason() {
        for (body, why) in [
            (b"not json".to_vec(), "not JSON"),
            (b"[1]".to_vec(), "not a JSON object"),
            (br#"{"Errors": []}"#.to_vec(), "StatusItems is missing"),
            (br#"{"StatusItems": 3}"#.to_vec(), "not a dictionary"),
            (
                br#"{"StatusItems": {}, "Errors": {}}"#.to_vec(),
                "Errors is not an array",
            ),
            (
                br#"{"StatusItems": {}, "Errors": [{"Reasons": []}]}"#.to_vec(),
                "without a StatusItem",
            ),
            (
                br#"{"StatusItems": {"management": {"declarations": {"configurations": [{"identifier": 1, "active": true}]}}}}"#
                    .to_vec(),
                "identifier",
            ),
            (
                br#"{"StatusItems": {}, "FullReport": "yes"}"#.to_vec(),
                "FullReport",
            ),
            (vec![b' '; MAX_STATUS_BYTES + 1], "too large"),
        ] {
            let e = parse(&body).expect_err(why);
            assert!(e.contains(why), "{why}: {e}");
        }
        // Deep nesting is not followed (serde_json's own recursion limit refuses the worst).
        let deep = format!(
            "{{\"StatusItems\": {}1{}}}",
            "{\"a\":".repeat(100),
            "}".repeat(100)
        );
        assert!(parse(deep.as_bytes()).is_ok());
        let deeper = format!(
            "{{\"StatusItems\": {}1{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(parse(deeper.as_bytes()).is_err());
    }

    #[test]
    fn a_full_report_says_so_and_errors_are_kept() {
        let body = json!({"StatusItems": {}, "FullReport": true, "Errors": [
            {"StatusItem": "softwareupdate.pending-version",
             "Reasons": [{"Code": "Error.Unavailable"}]}]});
        let r = parse(body.to_string().as_bytes()).expect("a report");
        assert!(r.full);
        assert_eq!(r.errors.len(), 1);
    }
}
