//! Uploads as admins make them: real-looking profiles (`testdata/profiles/`), each way of
//! getting one wrong, and the message that says where.

use super::custom_settings::{self, CustomSettings};
use super::variables::Variable;
use super::*;
use plist::Dictionary;

const RESTRICTIONS: &[u8] = include_bytes!("../../../testdata/profiles/restrictions.mobileconfig");
const WIFI: &[u8] = include_bytes!("../../../testdata/profiles/wifi-office.mobileconfig");
const LOGINWINDOW: &[u8] =
    include_bytes!("../../../testdata/profiles/loginwindow-variables.mobileconfig");
const PARALLELS: &[u8] =
    include_bytes!("../../../testdata/profiles/parallels-desktop.mobileconfig");
const CHROME: &[u8] = include_bytes!("../../../testdata/profiles/chrome-vendor.mobileconfig");
const SECOND_MDM: &[u8] = include_bytes!("../../../testdata/profiles/second-mdm.mobileconfig");
const ESCROW: &[u8] = include_bytes!("../../../testdata/profiles/filevault-escrow.mobileconfig");

const SCEP_URL: &str = "https://mdm.acme.example:8443/scep";

fn rules() -> UploadRules<'static> {
    UploadRules {
        reserved_identifiers: &["org.russet.enrollment"],
        mdm_scep_url: Some(SCEP_URL),
        russet_escrow: false,
    }
}

fn ok(bytes: &[u8]) -> Mobileconfig {
    parse(bytes, &rules()).unwrap_or_else(|e| panic!("accepted: {e}"))
}

fn invalid(bytes: &[u8]) -> String {
    match parse(bytes, &rules()) {
        Err(e @ MobileconfigError::Invalid(_)) => e.to_string(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn refused(bytes: &[u8]) -> String {
    match parse(bytes, &rules()) {
        Err(e @ MobileconfigError::Refused(_)) => e.to_string(),
        other => panic!("expected Refused, got {other:?}"),
    }
}

fn dict(bytes: &[u8]) -> Dictionary {
    plist::Value::from_reader_xml(bytes)
        .unwrap()
        .into_dictionary()
        .unwrap()
}

fn xml(d: Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    plist::Value::Dictionary(d).to_writer_xml(&mut out).unwrap();
    out
}

/// The fixture with its first payload changed by `f`.
fn with_payload(bytes: &[u8], f: impl FnOnce(&mut Dictionary)) -> Vec<u8> {
    let mut top = dict(bytes);
    let payload = top
        .get_mut("PayloadContent")
        .and_then(plist::Value::as_array_mut)
        .and_then(|a| a.get_mut(0))
        .and_then(plist::Value::as_dictionary_mut)
        .unwrap();
    f(payload);
    xml(top)
}

fn with_top(bytes: &[u8], f: impl FnOnce(&mut Dictionary)) -> Vec<u8> {
    let mut top = dict(bytes);
    f(&mut top);
    xml(top)
}

#[test]
fn a_restrictions_profile_is_read_with_its_payloads_and_warnings() {
    let p = ok(RESTRICTIONS);
    assert_eq!(p.identifier, "com.acme.restrictions");
    assert_eq!(p.uuid, "0E5E5E47-8B4C-4C1E-A1B4-6F1D8B5A9C10");
    assert_eq!(p.name(), "ACME Restrictions");
    assert_eq!(p.organization.as_deref(), Some("ACME Corp"));
    assert_eq!(p.scope, PayloadScope::System);
    assert_eq!(p.payload_types(), vec!["com.apple.applicationaccess"]);
    assert_eq!(
        p.payloads[0].identifier,
        "com.acme.restrictions.applicationaccess"
    );
    assert!(!p.signed && !p.templated && p.variables.is_empty());
    assert_eq!(p.body, RESTRICTIONS);
    assert_eq!(p.sha256_hex().len(), 64);
    // allowSafari is iOS-only: a warning, not a refusal (profiles are shared with iPhones).
    assert_eq!(
        p.warnings,
        vec![
            "PayloadContent[0].allowSafari: Apple's schema says this key is not available on \
             macOS (Macs ignore it)"
        ]
    );
}

#[test]
fn wifi_managed_preferences_and_vendor_profiles_pass() {
    let wifi = ok(WIFI);
    assert_eq!(wifi.payload_types(), vec!["com.apple.wifi.managed"]);
    let parallels = ok(PARALLELS);
    assert_eq!(
        parallels.payload_types(),
        vec![custom_settings::MANAGED_PREFERENCES]
    );
    assert!(parallels.warnings.is_empty(), "{:?}", parallels.warnings);
    let chrome = ok(CHROME);
    assert_eq!(chrome.payload_types(), vec!["com.google.Chrome"]);
    assert_eq!(chrome.warnings.len(), 1);
    assert!(
        chrome.warnings[0].starts_with(
            "PayloadContent[0].PayloadType: com.google.Chrome is not one of Apple's payload \
             types: macOS applies its keys as managed preferences"
        ),
        "{:?}",
        chrome.warnings
    );
}

#[test]
fn garbage_is_not_a_profile() {
    assert_eq!(
        invalid(b"hello"),
        "invalid profile: not a well-formed plist: malformed plist: body is not an XML plist"
    );
    assert!(
        invalid(b"<plist><dict><key>a</key></plist>")
            .starts_with("invalid profile: not a well-formed plist")
    );
    assert_eq!(
        invalid(br#"<?xml version="1.0"?><plist version="1.0"><array/></plist>"#),
        "invalid profile: the plist's top level is not a <dict>: not a profile"
    );
    let mut bin = Vec::new();
    plist::Value::Dictionary(dict(WIFI))
        .to_writer_binary(&mut bin)
        .unwrap();
    assert!(
        invalid(&bin).contains("plutil -convert xml1"),
        "a binary plist gets the conversion hint"
    );
    let deep = format!(
        "<plist>{}{}</plist>",
        "<array>".repeat(100),
        "</array>".repeat(100)
    );
    assert!(invalid(deep.as_bytes()).contains("deeper than"));
    let huge = vec![b' '; MAX_PROFILE_BYTES + 1];
    assert!(invalid(&huge).contains("the limit is"));
}

#[test]
fn missing_top_level_keys_are_named() {
    let bytes = with_top(RESTRICTIONS, |d| {
        d.remove("PayloadIdentifier");
        d.remove("PayloadUUID");
        d.remove("PayloadContent");
    });
    let msg = invalid(&bytes);
    for key in ["PayloadIdentifier", "PayloadUUID", "PayloadContent"] {
        assert!(
            msg.contains(&format!("{key}: required key is missing")),
            "{msg}"
        );
    }
    let empty_id = with_top(RESTRICTIONS, |d| {
        d.insert("PayloadIdentifier".into(), " ".into());
    });
    assert_eq!(
        invalid(&empty_id),
        "invalid profile: PayloadIdentifier: must not be empty"
    );
    let no_payloads = with_top(RESTRICTIONS, |d| {
        d.insert("PayloadContent".into(), plist::Value::Array(vec![]));
    });
    assert_eq!(
        invalid(&no_payloads),
        "invalid profile: PayloadContent: a profile needs at least one payload"
    );
}

#[test]
fn the_profile_type_version_and_scope_must_be_apples() {
    let bytes = with_top(WIFI, |d| {
        d.insert("PayloadType".into(), "Profile".into());
        d.insert("PayloadVersion".into(), plist::Value::Integer(2.into()));
        d.insert("PayloadScope".into(), "Computer".into());
    });
    assert_eq!(
        invalid(&bytes),
        "invalid profile: PayloadScope: value is not one of: System, User; PayloadType: value \
         is not one of: Configuration; PayloadVersion: value is not one of: 1"
    );
    let user = with_top(WIFI, |d| {
        d.insert("PayloadScope".into(), "User".into());
    });
    assert_eq!(ok(&user).scope, PayloadScope::User);
    let absent = with_top(WIFI, |d| {
        d.remove("PayloadScope");
    });
    assert_eq!(ok(&absent).scope, PayloadScope::System);
}

#[test]
fn payload_keys_are_checked_against_apples_schema() {
    let bytes = with_payload(RESTRICTIONS, |p| {
        p.insert("allowAirDrop".into(), "no".into());
    });
    assert_eq!(
        invalid(&bytes),
        "invalid profile: PayloadContent[0].allowAirDrop: expected <boolean>, found <string>"
    );
    let bytes = with_payload(WIFI, |p| {
        p.insert("EncryptionType".into(), "WPA4".into());
        p.remove("PayloadUUID");
    });
    assert_eq!(
        invalid(&bytes),
        "invalid profile: PayloadContent[0].EncryptionType: value is not one of: WEP, WPA, \
         WPA2, WPA3, Any, None; PayloadContent[0].PayloadUUID: required key is missing"
    );
    // A key Apple's schema does not know: a warning (Macs ignore it).
    let extra = with_payload(WIFI, |p| {
        p.insert("PayloadEnabled".into(), true.into());
    });
    assert_eq!(
        ok(&extra).warnings,
        vec![
            "PayloadContent[0].PayloadEnabled: not in Apple's schema for this payload (Macs \
             ignore keys they don't know)"
        ]
    );
    // A whole number where Apple says <real> reads the same to macOS.
    let duration = with_top(WIFI, |d| {
        d.insert(
            "DurationUntilRemoval".into(),
            plist::Value::Integer(3600.into()),
        );
    });
    assert!(ok(&duration).warnings.is_empty());
}

#[test]
fn payload_types_must_be_known_and_on_macos() {
    let unknown = with_payload(RESTRICTIONS, |p| {
        p.insert("PayloadType".into(), "com.apple.applicationaccesss".into());
    });
    assert!(
        invalid(&unknown).starts_with(
            "invalid profile: PayloadContent[0].PayloadType: unknown payload type \
             com.apple.applicationaccesss: Apple's device-management schemas (2024-10) do not \
             describe it"
        ),
        "{}",
        invalid(&unknown)
    );
    let nested = with_payload(RESTRICTIONS, |p| {
        p.insert("PayloadType".into(), "Configuration".into());
    });
    assert!(invalid(&nested).contains("unknown payload type Configuration"));
    let ios_only = with_payload(RESTRICTIONS, |p| {
        p.insert("PayloadType".into(), "com.apple.app.lock".into());
    });
    assert_eq!(
        invalid(&ios_only),
        "invalid profile: PayloadContent[0].PayloadType: com.apple.app.lock (App Lock) is not \
         available on macOS (Apple's schema)"
    );
}

#[test]
fn payload_identifiers_and_uuids_are_unique_within_a_profile() {
    let bytes = with_top(WIFI, |d| {
        let a = d
            .get_mut("PayloadContent")
            .and_then(plist::Value::as_array_mut)
            .unwrap();
        let copy = a[0].clone();
        a.push(copy);
    });
    let msg = invalid(&bytes);
    assert!(
        msg.contains(
            "PayloadContent[1].PayloadIdentifier: com.acme.wifi.office.managed is also \
             PayloadContent[0]'s"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("PayloadContent[1].PayloadUUID: A3B0C5D2"),
        "{msg}"
    );
}

#[test]
fn payloads_russet_owns_are_refused() {
    assert_eq!(
        refused(SECOND_MDM),
        "refused: PayloadContent[0].PayloadType: com.apple.mdm: Russet's enrollment profile \
         carries the Mac's MDM payload; a second one would hand the Mac to another server or \
         break its enrollment"
    );
    assert!(
        refused(ESCROW).starts_with(
            "refused: PayloadContent[0].PayloadType: com.apple.security.FDERecoveryKeyEscrow: \
             FileVault recovery-key escrow is Russet's own"
        ),
        "{}",
        refused(ESCROW)
    );
    let redirect = with_payload(ESCROW, |p| {
        p.insert(
            "PayloadType".into(),
            "com.apple.security.FDERecoveryRedirect".into(),
        );
    });
    assert!(refused(&redirect).contains("FDERecoveryRedirect: FileVault recovery-key escrow"));
}

fn scep_payload(url: &str) -> Vec<u8> {
    with_payload(WIFI, |p| {
        p.clear();
        let mut content = Dictionary::new();
        content.insert("URL".into(), url.into());
        content.insert("Challenge".into(), "s3cret".into());
        p.insert("PayloadType".into(), "com.apple.security.scep".into());
        p.insert("PayloadVersion".into(), plist::Value::Integer(1.into()));
        p.insert("PayloadIdentifier".into(), "com.acme.wifi.identity".into());
        p.insert(
            "PayloadUUID".into(),
            "11111111-2222-4333-8444-555555555555".into(),
        );
        p.insert("PayloadContent".into(), plist::Value::Dictionary(content));
    })
}

#[test]
fn a_second_identity_from_russets_own_scep_is_refused() {
    let msg = refused(&scep_payload(
        "HTTPS://MDM.acme.example:8443/scep/?operation=x",
    ));
    assert!(
        msg.starts_with(
            "refused: PayloadContent[0].PayloadContent.URL: HTTPS://MDM.acme.example:8443/scep/\
             ?operation=x is Russet's own SCEP service"
        ),
        "{msg}"
    );
    // A SCEP identity from another CA (802.1X, VPN) is an ordinary payload.
    assert!(
        parse(
            &scep_payload("https://ndes.acme.example/certsrv/mscep/mscep.dll"),
            &rules()
        )
        .is_ok()
    );
}

#[test]
fn the_enrollment_profiles_identifier_is_refused() {
    for id in ["org.russet.enrollment", "org.russet.enrollment.extra"] {
        let bytes = with_top(WIFI, |d| {
            d.insert("PayloadIdentifier".into(), id.into());
        });
        assert_eq!(
            refused(&bytes),
            format!(
                "refused: PayloadIdentifier: {id} is Russet's own (org.russet.enrollment: the \
                 Mac's MDM enrollment); an upload with it would replace what Russet installs: \
                 choose another identifier"
            )
        );
    }
    let neighbour = with_top(WIFI, |d| {
        d.insert("PayloadIdentifier".into(), "org.russet.enrollments".into());
    });
    assert!(parse(&neighbour, &rules()).is_ok());
}

/// Russet's own enrollment profile is well-formed by Apple's schemas — and refused as an
/// upload, twice over.
#[test]
fn russets_enrollment_profile_passes_apples_schema_but_is_refused() {
    let built = crate::service::profile::build(&crate::service::profile::ProfileParams {
        public_url: "https://mdm.acme.example:8443",
        topic: "com.apple.mgmt.External.x",
        challenge: "c",
        trust_root_der: None,
    })
    .unwrap();
    let msg = refused(&built);
    assert!(
        msg.contains("PayloadIdentifier: org.russet.enrollment is Russet's own"),
        "{msg}"
    );
    assert!(
        msg.contains("PayloadContent[0].PayloadContent.URL"),
        "{msg}"
    );
    assert!(
        msg.contains("PayloadContent[1].PayloadType: com.apple.mdm"),
        "{msg}"
    );
}

#[test]
fn encrypted_profiles_are_refused() {
    let bytes = with_top(WIFI, |d| {
        d.insert("IsEncrypted".into(), true.into());
    });
    assert!(
        refused(&bytes).starts_with("refused: IsEncrypted: an encrypted profile cannot be checked")
    );
}

#[test]
fn variables_are_found_and_unknown_ones_refused() {
    let p = ok(LOGINWINDOW);
    assert_eq!(p.variables, vec![Variable::Serial, Variable::DeviceName]);
    assert!(p.templated);
    let bytes = with_payload(WIFI, |p| {
        p.insert("Password".into(), "$SERIALNUMBER-x".into());
    });
    assert_eq!(
        invalid(&bytes),
        "invalid profile: PayloadContent[0].Password: unknown variable $SERIALNUMBER (Russet \
         fills in $SERIAL, $UDID, $DEVICE_NAME, $USER_SHORT_NAME); write $$SERIALNUMBER for the \
         literal text"
    );
    // Dollars that are no variable pass untouched and do not make a template.
    let plain = with_payload(WIFI, |p| {
        p.insert("Password".into(), "pa$$word $5".into());
    });
    let plain = ok(&plain);
    assert!(!plain.templated && plain.variables.is_empty());
}

#[test]
fn the_user_short_name_needs_a_user_profile() {
    let system = with_payload(WIFI, |p| {
        p.insert("SSID_STR".into(), "home-$USER_SHORT_NAME".into());
    });
    assert_eq!(
        invalid(&system),
        "invalid profile: PayloadContent[0].SSID_STR: $USER_SHORT_NAME needs a user profile \
         (PayloadScope User): a system profile is installed on the device channel, which has \
         no user"
    );
    let user = with_top(&system, |d| {
        d.insert("PayloadScope".into(), "User".into());
    });
    assert_eq!(ok(&user).variables, vec![Variable::UserShortName]);
}

fn signer() -> russet_certs::testing::DeviceIdentity {
    russet_certs::testing::TestCa::new("ACME Profile Signing CA").issue_device_identity("signer")
}

#[test]
fn a_signed_profile_is_read_and_kept_as_signed() {
    let signed = signer().sign_attached(WIFI);
    let p = ok(&signed);
    assert!(p.signed);
    assert_eq!(p.identifier, "com.acme.wifi.office");
    assert_eq!(p.body, signed, "the signed bytes are what Macs get");
    assert!(!p.templated);

    let mut tampered = signed.clone();
    let at = tampered
        .windows(b"ACME-Office".len())
        .position(|w| w == b"ACME-Office")
        .unwrap();
    tampered[at] = b'X';
    assert!(
        invalid(&tampered).contains("neither an XML plist nor a CMS-signed profile that verifies")
    );
    assert!(invalid(&[0x30, 0x03, 0x02, 0x01, 0x00]).contains("CMS-signed"));
}

#[test]
fn a_signed_profile_cannot_carry_variables() {
    let signed = signer().sign_attached(LOGINWINDOW);
    let msg = invalid(&signed);
    assert!(
        msg.starts_with(
            "invalid profile: PayloadContent[0].LoginwindowText: $DEVICE_NAME cannot be filled in: \
             a signed profile is delivered byte for byte"
        ),
        "{msg}"
    );
    // `$$HELPDESK` and other dollars are simply text in a signed profile.
    let no_vars = with_payload(LOGINWINDOW, |p| {
        p.insert("LoginwindowText".into(), "call $$HELPDESK, $HOME".into());
    });
    assert!(ok(&signer().sign_attached(&no_vars)).variables.is_empty());
}

#[test]
fn custom_settings_build_a_profile_that_validates() {
    let settings = custom_settings::settings_from_json(&serde_json::json!({
        "Application preferences.Check for updates": 0,
        "Application preferences.Download updates automatically": false,
        "ProductPromo.ForcePromoOff": true,
    }))
    .unwrap();
    let built = custom_settings::build(&CustomSettings {
        identifier: "com.acme.parallels".into(),
        name: "Parallels Desktop preferences".into(),
        domain: "com.parallels.Parallels Desktop".into(),
        settings: settings.clone(),
    })
    .unwrap();
    let p = ok(&built);
    assert_eq!(p.identifier, "com.acme.parallels");
    assert_eq!(p.name(), "Parallels Desktop preferences");
    assert_eq!(
        p.payload_types(),
        vec![custom_settings::MANAGED_PREFERENCES]
    );
    assert_eq!(p.payloads[0].identifier, "com.acme.parallels.preferences");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let forced = dict(&built)
        .get("PayloadContent")
        .and_then(plist::Value::as_array)
        .and_then(|a| a[0].as_dictionary())
        .and_then(|d| d.get("PayloadContent"))
        .and_then(plist::Value::as_dictionary)
        .and_then(|d| d.get("com.parallels.Parallels Desktop"))
        .and_then(plist::Value::as_dictionary)
        .and_then(|d| d.get("Forced"))
        .and_then(plist::Value::as_array)
        .and_then(|a| a[0].as_dictionary())
        .and_then(|d| d.get("mcx_preference_settings"))
        .cloned();
    assert_eq!(forced, Some(plist::Value::Dictionary(settings)));
    // Settings read from a plist file build the same profile.
    let from_plist = custom_settings::settings_from_plist(&xml(forced_dict(&built))).unwrap();
    assert_eq!(from_plist.len(), 3);
}

fn forced_dict(built: &[u8]) -> Dictionary {
    dict(built)
        .get("PayloadContent")
        .and_then(plist::Value::as_array)
        .and_then(|a| a[0].as_dictionary())
        .and_then(|d| d.get("PayloadContent"))
        .and_then(plist::Value::as_dictionary)
        .and_then(|d| d.values().next())
        .and_then(plist::Value::as_dictionary)
        .and_then(|d| d.get("Forced"))
        .and_then(plist::Value::as_array)
        .and_then(|a| a[0].as_dictionary())
        .and_then(|d| d.get("mcx_preference_settings"))
        .and_then(plist::Value::as_dictionary)
        .cloned()
        .unwrap()
}

#[test]
fn many_problems_are_counted_after_twenty() {
    let bytes = with_payload(RESTRICTIONS, |p| {
        for i in 0..25 {
            p.insert(format!("allowCamera{i}"), true.into());
        }
        for key in ["allowAirDrop", "allowCamera", "allowScreenShot"] {
            p.insert(key.into(), plist::Value::Integer(1.into()));
        }
    });
    // Three type errors, and the unknown keys only warn.
    let msg = invalid(&bytes);
    assert_eq!(
        msg.matches("expected <boolean>, found <integer>").count(),
        3,
        "{msg}"
    );
    let many: Vec<Problem> = (0..25)
        .map(|i| Problem {
            path: format!("k{i}"),
            message: "m".into(),
        })
        .collect();
    let text = MobileconfigError::Invalid(many).to_string();
    assert!(text.ends_with("k19: m; and 5 more"), "{text}");
}
