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

/// Facts whose lookups are answered from a list of the terms that find the Mac.
struct Looked {
    found: Vec<Term>,
}

impl Facts for Looked {
    fn fact(&self, _field: &str) -> Fact<'_> {
        Fact::Missing
    }

    fn lookup(&self, term: &Term) -> Option<bool> {
        Some(self.found.contains(term))
    }
}

#[test]
fn app_version_narrows_the_app_term_before_it() {
    let f =
        parse("app = com.microsoft.Excel and app_version < 16.80 and app_version >= 16").unwrap();
    assert_eq!(f.terms().len(), 1);
    let t = &f.terms()[0];
    assert_eq!(t.field.name, "app");
    assert_eq!(t.value, Value::Text("com.microsoft.excel".into()));
    assert_eq!(
        t.versions,
        [(Op::Lt, "16.80".to_string()), (Op::Ge, "16".to_string())]
    );
    // Two apps, each with its own version.
    let f =
        parse("app = Excel and app_version < 16.80 and app ~ zoom and os_version >= 14").unwrap();
    let names: Vec<(&str, usize)> = f
        .terms()
        .iter()
        .map(|t| (t.field.name, t.versions.len()))
        .collect();
    assert_eq!(names, [("app", 1), ("app", 0), ("os_version", 0)]);
    assert_eq!(f.lookups().count(), 2);
    // Without an app term before it, or with an operator that would mean "another app".
    let e = error("os_version > 14 and app_version < 16");
    assert_eq!((e.position, e.term.as_str()), (20, "app_version"));
    assert!(e.expected.contains("app term before app_version"), "{e}");
    let e = error("app = Excel and app_version != 16");
    assert_eq!(e.term, "!=");
    assert!(
        error("app = Excel and app_version < sixteen")
            .expected
            .contains("a version")
    );
    // `~` and `!=` on apps are fine.
    assert!(parse("app ~ micro and app != com.apple.Safari").is_ok());
}

#[test]
fn lookup_terms_ask_the_positive_question_and_negate_it() {
    let has_excel = parse("app = Excel").unwrap().terms()[0].clone();
    let mac = Looked {
        found: vec![has_excel.clone()],
    };
    assert!(parse("app = excel").unwrap().matches(&mac));
    assert!(!parse("app != Excel").unwrap().matches(&mac));
    assert!(parse("app != Zoom").unwrap().matches(&mac));
    // A term nobody looked up finds nothing (and `!=` then holds).
    let nothing = Looked { found: Vec::new() };
    assert!(!parse("group = Finance").unwrap().matches(&nothing));
    assert!(parse("console_user != ana").unwrap().matches(&nothing));
    // The version qualifier is part of the question.
    assert!(
        !parse("app = Excel and app_version < 16.80")
            .unwrap()
            .matches(&mac)
    );
    assert_eq!(has_excel.positive(), has_excel);
    let ne = parse("app != Excel").unwrap().terms()[0].clone();
    assert_eq!(ne.positive(), has_excel);
}

#[test]
fn inventory_fields_compare_as_their_kinds() {
    let mut mac = air_on_14();
    mac.bools.insert("filevault", true);
    mac.bools.insert("sip", false);
    mac.text.insert("secure_boot", "full");
    assert!(matches("filevault = true and sip = no", &mac));
    assert!(!matches("firewall = true", &mac));
    assert!(
        matches("firewall != true", &mac),
        "not reported is not true"
    );
    assert!(matches("secure_boot = FULL", &mac));
    assert!(error("filevault < true").expected.contains("operator"));
    assert!(
        error("supervised = maybe")
            .expected
            .contains("true or false")
    );
}
