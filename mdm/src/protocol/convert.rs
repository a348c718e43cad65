//! Conversions between plist values and JSON for the admin API.
//!
//! JSON has no `<data>` or `<date>`, so plist → JSON gives base64 and RFC 3339 strings (the
//! README's admin API section: a `<data>` value is base64 in JSON), and JSON → plist needs
//! Apple's schema to know which strings are data.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use plist::{Dictionary, Value};
use serde_json::{Map, Number, Value as Json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::schema::{KeySpec, KeyType, Problem};

/// Renders a plist value as JSON: data → base64 string, date → RFC 3339 string,
/// integers/reals → numbers (non-finite reals → null), uid → number.
pub fn plist_to_json(value: &Value) -> Json {
    match value {
        Value::Array(items) => Json::Array(items.iter().map(plist_to_json).collect()),
        Value::Dictionary(dict) => Json::Object(
            dict.iter()
                .map(|(k, v)| (k.clone(), plist_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Data(d) => Json::String(STANDARD.encode(d)),
        // plist's XML date format is RFC 3339 in UTC ("2024-10-21T12:00:00Z").
        Value::Date(d) => Json::String(d.to_xml_format()),
        Value::Real(r) => Number::from_f64(*r).map_or(Json::Null, Json::Number),
        Value::Integer(i) => match (i.as_signed(), i.as_unsigned()) {
            (Some(s), _) => Json::from(s),
            (None, Some(u)) => Json::from(u),
            (None, None) => Json::Null,
        },
        Value::String(s) => Json::String(s.clone()),
        Value::Uid(u) => Json::from(u.get()),
        _ => Json::Null,
    }
}

/// Converts a JSON object of command keys to a plist dictionary, typing each value as the
/// schema declares it. Keys the schema does not know are converted generically so the
/// validator can name them; conversion problems (bad base64, bad date, …) are returned.
pub(super) fn json_object_to_plist(
    spec: &KeySpec,
    object: &Map<String, Json>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Dictionary {
    let mut dict = Dictionary::new();
    for (key, json) in object {
        let key_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let converted = match spec.subkey(key) {
            Some(sub) => typed(sub, json, &key_path, problems),
            None => generic(json, &key_path, problems),
        };
        if let Some(v) = converted {
            dict.insert(key.clone(), v);
        }
    }
    dict
}

fn problem(problems: &mut Vec<Problem>, path: &str, message: impl Into<String>) {
    problems.push(Problem {
        path: path.to_string(),
        message: message.into(),
    });
}

/// Converts by the schema's type. On a mismatch the generic conversion is kept so the
/// validator reports the type error with the expected and actual type.
fn typed(spec: &KeySpec, json: &Json, path: &str, problems: &mut Vec<Problem>) -> Option<Value> {
    match (spec.ty, json) {
        (KeyType::Data, Json::String(s)) => match STANDARD.decode(s) {
            Ok(bytes) => Some(Value::Data(bytes)),
            Err(e) => {
                problem(problems, path, format!("<data> must be base64: {e}"));
                None
            }
        },
        (KeyType::Date, Json::String(s)) => match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => Some(Value::Date(SystemTime::from(t).into())),
            Err(e) => {
                problem(problems, path, format!("<date> must be RFC 3339: {e}"));
                None
            }
        },
        (KeyType::Real, Json::Number(n)) => n.as_f64().map(Value::Real),
        (KeyType::Integer, Json::Number(n)) if n.is_f64() => {
            problem(
                problems,
                path,
                "expected <integer>, found a fractional number",
            );
            None
        }
        (KeyType::Array, Json::Array(items)) => {
            let element = spec.subkeys.first();
            let converted = items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let item_path = format!("{path}[{i}]");
                    match element {
                        Some(e) => typed(e, item, &item_path, problems),
                        None => generic(item, &item_path, problems),
                    }
                })
                .collect();
            Some(Value::Array(converted))
        }
        (KeyType::Dictionary, Json::Object(object)) => Some(Value::Dictionary(
            json_object_to_plist(spec, object, path, problems),
        )),
        _ => generic(json, path, problems),
    }
}

/// Converts without a schema: string, integer, real, bool, array, dictionary.
fn generic(json: &Json, path: &str, problems: &mut Vec<Problem>) -> Option<Value> {
    match json {
        Json::Null => {
            problem(problems, path, "null has no plist equivalent; omit the key");
            None
        }
        Json::Bool(b) => Some(Value::Boolean(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Value::Integer(i.into()))
            } else if let Some(u) = n.as_u64() {
                Some(Value::Integer(u.into()))
            } else {
                n.as_f64().map(Value::Real)
            }
        }
        Json::String(s) => Some(Value::String(s.clone())),
        Json::Array(items) => Some(Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| generic(item, &format!("{path}[{i}]"), problems))
                .collect(),
        )),
        Json::Object(object) => {
            let mut dict = Dictionary::new();
            for (k, v) in object {
                if let Some(v) = generic(v, &format!("{path}.{k}"), problems) {
                    dict.insert(k.clone(), v);
                }
            }
            Some(Value::Dictionary(dict))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plist_values_become_readable_json() {
        let body = br#"<?xml version="1.0"?><plist version="1.0"><dict>
            <key>Data</key><data>aGVsbG8=</data>
            <key>Date</key><date>2024-10-21T12:30:00Z</date>
            <key>Int</key><integer>-7</integer>
            <key>Big</key><integer>18446744073709551615</integer>
            <key>Real</key><real>60.5</real>
            <key>Bool</key><true/>
            <key>List</key><array><string>a</string><dict/></array>
        </dict></plist>"#;
        let value = plist::Value::from_reader_xml(body.as_slice()).expect("parse");
        assert_eq!(
            plist_to_json(&value),
            json!({
                "Data": "aGVsbG8=", "Date": "2024-10-21T12:30:00Z", "Int": -7,
                "Big": 18446744073709551615u64, "Real": 60.5, "Bool": true,
                "List": ["a", {}]
            })
        );
        assert_eq!(plist_to_json(&Value::Real(f64::NAN)), Json::Null);
        assert_eq!(plist_to_json(&Value::Uid(plist::Uid::new(9))), json!(9));
    }

    #[test]
    fn dates_from_json_keep_their_instant() {
        let spec = KeySpec {
            key: "When".into(),
            ty: KeyType::Date,
            presence: None,
            subkeys: vec![],
            rangelist: None,
            supported_os: None,
        };
        let mut problems = Vec::new();
        let v = typed(
            &spec,
            &json!("2024-10-21T14:30:00+02:00"),
            "When",
            &mut problems,
        );
        assert!(problems.is_empty());
        assert_eq!(
            v.and_then(|v| v.as_date()).map(|d| d.to_xml_format()),
            Some("2024-10-21T12:30:00Z".to_string())
        );
        assert_eq!(
            typed(&spec, &json!("yesterday"), "When", &mut problems),
            None
        );
        assert!(problems[0].message.contains("RFC 3339"));
    }
}
