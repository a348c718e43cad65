use super::*;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

/// A Mac's facts for the tests: text fields by name, booleans, and one multi-valued field.
#[derive(Default)]
struct Mac {
    text: HashMap<&'static str, &'static str>,
    bools: HashMap<&'static str, bool>,
    many: Option<(&'static str, Vec<&'static str>)>,
}

impl Facts for Mac {
    fn fact(&self, field: &str) -> Fact<'_> {
        if let Some(v) = self.text.get(field) {
            return Fact::Text(Cow::Borrowed(v));
        }
        if let Some(b) = self.bools.get(field) {
            return Fact::Bool(*b);
        }
        match &self.many {
            Some((name, vs)) if *name == field => {
                Fact::Many(vs.iter().map(|v| Cow::Borrowed(*v)).collect())
            }
            _ => Fact::Missing,
        }
    }
}

fn air_on_14() -> Mac {
    Mac {
        text: HashMap::from([
            ("serial", "C02AIR000001"),
            ("udid", "0000FE00-AAAA"),
            ("model", "Mac14,2"),
            ("model_name", "MacBook Air"),
            ("os_version", "14.10.1"),
            ("build_version", "23K100"),
            ("device_name", "Ana's \"work\" Mac"),
        ]),
        bools: HashMap::from([("enrolled", true), ("apple_silicon", true)]),
        many: None,
    }
}

fn matches(filter: &str, mac: &Mac) -> bool {
    parse(filter)
        .unwrap_or_else(|e| panic!("{filter}: {e}"))
        .matches(mac)
}

fn error(filter: &str) -> FilterError {
    parse(filter).expect_err(filter)
}

#[test]
fn versions_compare_component_by_component() {
    use Ordering::*;
    for (a, b, want) in [
        ("14.10.1", "14.9", Greater),
        ("14.9", "14.10", Less),
        ("15", "15.0", Equal),
        ("15.0.0", "15", Equal),
        ("15.0.1", "15", Greater),
        ("14.1", "14", Greater),
        ("0", "0.0", Equal),
        ("10.15.7", "11", Less),
        ("015.1", "15.1", Equal),
        // Non-numeric parts: digits before letters, letters case-insensitively, then numbers.
        ("24B83", "24A335", Greater),
        ("23G80", "23G1000", Less),
        ("24b83", "24B83", Equal),
        ("10", "10a", Less),
        ("10a", "11", Less),
        ("15.0b1", "15.0", Greater),
        ("beta", "1", Greater),
        // Digit runs longer than any integer type.
        ("123456789012345678901234567890", "99", Greater),
        // Whatever a Mac reports is ordered, never refused.
        ("", "1", Less),
        ("15.1 (24B83)", "15.1", Greater),
    ] {
        assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
    }
    for ok in ["15", "14.6.1", "24B83", "15.0b1"] {
        assert!(is_version(ok), "{ok}");
    }
    let long = "1.".repeat(16) + "1";
    for bad in ["", "15.", ".15", "15..1", "fifteen", "15.x", "15-1", &long] {
        assert!(!is_version(bad), "{bad}");
    }
}

#[test]
fn terms_joined_by_and_must_all_hold() {
    let mac = air_on_14();
    assert!(matches(
        "os_version < 15.0 and model_name = \"MacBook Air\"",
        &mac
    ));
    assert!(!matches(
        "os_version < 15.0 and model_name = \"MacBook Pro\"",
        &mac
    ));
    assert!(matches("os_version > 14.9", &mac));
    assert!(matches(
        "os_version >= 14.10.1 AND os_version <= 14.10.1",
        &mac
    ));
    assert!(matches("os_version = 14.10.1.0", &mac));
    assert!(!matches("os_version = 14.10", &mac));
    assert!(matches("os_version != 14.10", &mac));
    assert!(matches("os_version ~ 14.10", &mac));
    assert!(matches(
        "build_version >= 23A344 and build_version < 24A335",
        &mac
    ));
    // Spaces are optional around operators.
    assert!(matches("model=Mac14,2 and enrolled=true", &mac));
}

#[test]
fn text_ignores_case_and_contains_is_a_substring() {
    let mac = air_on_14();
    assert!(matches("model_name = 'macbook air'", &mac));
    assert!(matches("SERIAL = c02air000001", &mac));
    assert!(matches("model_name ~ air", &mac));
    assert!(matches("udid ~ fe00", &mac));
    assert!(!matches("model_name ~ pro", &mac));
    assert!(matches("model_name != 'MacBook Pro'", &mac));
    // Escapes inside quotes.
    assert!(matches(r#"device_name = "Ana's \"work\" Mac""#, &mac));
    assert!(matches(r"device_name ~ 'Ana\'s'", &mac));
}

#[test]
fn booleans() {
    let mac = air_on_14();
    assert!(matches("enrolled = true", &mac));
    assert!(matches("enrolled = YES", &mac));
    assert!(matches("apple_silicon != false", &mac));
    assert!(!matches("enrolled = false", &mac));
    assert!(matches("enrolled = \"true\"", &mac));
}

#[test]
fn unreported_facts() {
    let blank = Mac::default();
    // Text reads as "": finds Macs without a DEP profile.
    assert!(matches("dep_profile = \"\"", &blank));
    assert!(!matches("dep_profile != ''", &blank));
    assert!(!matches("dep_profile = ABC", &blank));
    assert!(matches("dep_profile != ABC", &blank));
    // Versions and booleans: every comparison is false, `!=` is true.
    for f in ["os_version < 15", "os_version >= 0", "os_version = 15"] {
        assert!(!matches(f, &blank), "{f}");
    }
    assert!(matches("os_version != 15", &blank));
    assert!(!matches("apple_silicon = true", &blank));
    assert!(!matches("apple_silicon = false", &blank));
    assert!(matches("apple_silicon != true", &blank));
    // An empty version string is unreported too.
    let mut empty = Mac::default();
    empty.text.insert("os_version", "");
    assert!(!matches("os_version < 15", &empty));
}

#[test]
fn many_valued_facts_hold_for_one_of_them() {
    let mac = Mac {
        many: Some(("model", vec!["Mac14,2", "Mac15,3"])),
        ..Mac::default()
    };
    assert!(matches("model = mac15,3", &mac));
    assert!(matches("model ~ 14", &mac));
    assert!(!matches("model = Mac16,1", &mac));
    assert!(!matches("model != Mac14,2", &mac));
    assert!(matches("model != Mac16,1", &mac));
}

#[test]
fn errors_point_at_the_offending_term() {
    // Unknown field: its position, the word, and the fields there are.
    let e = error("os_version < 15 and modle = x");
    assert_eq!((e.position, e.term.as_str()), (20, "modle"));
    assert!(e.expected.contains("model_name"), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "invalid filter at position 20 (`modle`): expected {}",
            e.expected
        )
    );
    // An operator the field's kind does not have.
    let e = error("model < Mac14");
    assert_eq!((e.position, e.term.as_str()), (6, "<"));
    assert!(e.expected.contains("text field model"), "{e}");
    let e = error("enrolled ~ t");
    assert_eq!((e.position, e.term.as_str()), (9, "~"));
    // Values of the wrong kind.
    let e = error("os_version < fifteen");
    assert_eq!((e.position, e.term.as_str()), (13, "fifteen"));
    assert!(e.expected.contains("version"), "{e}");
    let e = error("enrolled = maybe");
    assert_eq!((e.position, e.term.as_str()), (11, "maybe"));
    assert!(e.expected.contains("true or false"), "{e}");
    // Missing pieces, at the end of the text.
    let e = error("os_version <");
    assert_eq!((e.position, e.term.as_str()), (12, ""));
    assert!(e.to_string().contains("the end of the filter"), "{e}");
    let e = error("serial");
    assert_eq!(
        (e.position, e.expected.starts_with("an operator")),
        (6, true)
    );
    let e = error("serial = x and");
    assert_eq!((e.position, e.term.as_str()), (14, ""));
    assert!(e.expected.starts_with("a field name"), "{e}");
    let e = error("   ");
    assert_eq!(e.position, 3);
    // Something other than `and` between terms.
    let e = error("serial = x or serial = y");
    assert_eq!((e.position, e.term.as_str()), (11, "or"));
    assert!(e.expected.contains("`and` only"), "{e}");
    let e = error("serial = x serial = y");
    assert_eq!((e.position, e.term.as_str()), (11, "serial"));
    let e = error("serial = = x");
    assert_eq!((e.position, e.term.as_str()), (9, "="));
    let e = error("\"serial\" = x");
    assert_eq!((e.position, e.term.as_str()), (0, "\"serial\""));
    // Lexical errors.
    let e = error("serial ! x");
    assert_eq!((e.position, e.term.as_str()), (7, "!"));
    let e = error("model_name = \"MacBook Air");
    assert_eq!((e.position, e.term.as_str()), (13, "\"MacBook Air"));
    assert!(e.expected.contains("closing \""), "{e}");
    // Byte positions count bytes, so they index the text even after non-ASCII.
    let e = error("device_name = 'Zoë' and nope = 1");
    assert_eq!(
        &"device_name = 'Zoë' and nope = 1"[e.position..][..4],
        "nope"
    );
    // Too long.
    let long = format!("serial = {}", "x".repeat(MAX_FILTER_LEN));
    assert_eq!(error(&long).position, MAX_FILTER_LEN);
}

#[test]
fn a_parsed_filter_keeps_its_text_and_terms() {
    let f = parse("  OS_Version < 15 and Model ~ 'Mac14'  ").unwrap();
    assert_eq!(f.text(), "OS_Version < 15 and Model ~ 'Mac14'");
    let terms = f.terms();
    assert_eq!(terms.len(), 2);
    assert_eq!(terms[0].field.name, "os_version");
    assert_eq!(terms[0].op, Op::Lt);
    assert_eq!(terms[0].value, Value::Version("15".into()));
    assert_eq!(terms[1].field.name, "model");
    assert_eq!(terms[1].value, Value::Text("mac14".into()));
}

#[test]
fn every_field_is_named_once_and_found_case_insensitively() {
    let mut names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FIELDS.len());
    for f in FIELDS {
        assert_eq!(field(&f.name.to_uppercase()), Some(f));
        assert!(f.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    }
    assert_eq!(field("nope"), None);
}

#[test]
fn version_keys_sort_as_versions_compare() {
    let versions = [
        "14.10.1", "14.9", "14.10", "15", "15.0", "15.0.1", "14.1", "14", "0", "10.15.7", "11",
        "015.1", "15.1", "24B83", "24A335", "23G80", "23G1000", "24b83", "10", "10a", "15.0b1",
        "beta", "1", "16.78", "16.80", "16.8", "16.100", "",
    ];
    for a in versions {
        for b in versions {
            assert_eq!(
                version_key(a).cmp(&version_key(b)),
                compare_versions(a, b),
                "{a} vs {b}"
            );
        }
    }
}
