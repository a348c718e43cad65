//! What an enrolled (or enrolling) Mac sends in a body: check-ins, command reports and the
//! answers decoded from them, and the ADE MachineInfo plist. Every one goes through the plist
//! guard first; properties: no panic, bounded time and heap, and a body that decodes decodes
//! the same after a plist round trip (the guard and the decoders judge values, not spelling).
//! The DDM status report (JSON, the `Data` of a `status` check-in): no panic, bounded, only the
//! items Russet keeps, the same answer twice.

use proptest::prelude::*;
use russet_mdm::ddm::status::{self as ddm_status, MAX_STATUS_BYTES, STORED_ITEMS};
use russet_mdm::protocol::checkin::decode_checkin;
use russet_mdm::protocol::machine_info::decode_machine_info;
use russet_mdm::protocol::report::decode_password_verified;
use russet_mdm::protocol::{MAX_DEPTH, check_plist, decode_report, filevault, inventory};

use crate::engine::{CI_CASES, bounded, config, fixtures, mutated};

/// Words of the XML plist format and of Apple's check-in vocabulary.
pub const PLIST_TOKENS: &[&[u8]] = &[
    b"<dict>",
    b"</dict>",
    b"<array>",
    b"</array>",
    b"<dict/>",
    b"<array/>",
    b"<key>",
    b"</key>",
    b"<string>",
    b"</string>",
    b"<integer>",
    b"</integer>",
    b"<real>1e400</real>",
    b"<integer>-9223372036854775809</integer>",
    b"<data>",
    b"</data>",
    b"<date>2024-13-45T99:99:99Z</date>",
    b"<true/>",
    b"<false/>",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"&lt;",
    b"<![CDATA[",
    b"]]>",
    b"<!-- x -->",
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    b"<!DOCTYPE plist [<!ENTITY a \"aaaa\">]>",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"bplist00",
    b"<key>MessageType</key><string>TokenUpdate</string>",
    b"<key>MessageType</key><string>Authenticate</string>",
    b"<key>Status</key><string>Acknowledged</string>",
    b"<key>Status</key><string>Error</string>",
    b"<key>CommandUUID</key><string></string>",
    b"<key>UDID</key><string>x</string>",
    b"<key>EnrollmentID</key>",
    b"<key>UserID</key>",
    b"<key>ErrorChain</key><array><dict/></array>",
    b"<key>PushMagic</key>",
    b"<key>Token</key><data>AAAA</data>",
    b"<key>QueryResponses</key>",
    b"<key>SecurityInfo</key>",
];

fn device_bodies() -> Vec<Vec<u8>> {
    let mut seeds = fixtures("mdm/testdata/devices");
    seeds.extend(fixtures("mdm/testdata/inventory"));
    seeds.retain(|s| s.starts_with(b"<?xml") || s.starts_with(b"<plist"));
    seeds
}

fn reencode(value: &plist::Value) -> Vec<u8> {
    let mut out = Vec::new();
    value
        .to_writer_xml(&mut out)
        .expect("a decoded plist encodes");
    out
}

/// Words of JSON and of Apple's DDM status report (`declarative/protocol/statusreport.yaml`).
pub const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"-0",
    b"1e400",
    b"18446744073709551616",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"{\"FullReport\":true,",
    b"\"StatusItems\":",
    b"\"Errors\":[{\"StatusItem\":\"x\"}]",
    b"\"management\":{\"declarations\":",
    b"\"configurations\":[{\"identifier\":\"a\",\"server-token\":\"t\",\"valid\":\"valid\",\"active\":true}]",
    b"\"softwareupdate\":{\"install-state\":\"installing\"}",
    b"\"device\":{\"operating-system\":{\"version\":\"14.4\"}}",
];

/// A full report (as a Mac sends after its first sync) and an incremental one with an error.
fn ddm_status_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"FullReport": true, "StatusItems": {
            "device": {"identifier": {"serial-number": "C02FUZZ00001", "udid": "0000FE00-FUZZ"},
                       "model": {"family": "Mac", "identifier": "Mac14,2"},
                       "operating-system": {"build-version": "23E214", "family": "macOS",
                                            "version": "14.4"}},
            "softwareupdate": {"install-state": "downloading", "pending-version":
                               {"build-version": "24C101", "os-version": "15.2"},
                               "failure-reason": {"count": 0}},
            "management": {"client-capabilities": {"supported-versions": ["1.0.0"]},
                           "declarations": {
                               "activations": [{"identifier": "org.russet.activation",
                                                "server-token": "a1", "valid": "valid",
                                                "active": true}],
                               "configurations": [{"identifier": "org.russet.os-update.1",
                                                   "server-token": "c1", "valid": "invalid",
                                                   "active": false,
                                                   "reasons": [{"code": "Error.X"}]}],
                               "assets": [], "management": []}}},
            "Errors": []}"#
            .to_vec(),
        br#"{"StatusItems": {"softwareupdate": {"install-state": "installing"}},
             "Errors": [{"StatusItem": "softwareupdate.failure-reason",
                         "Reasons": [{"Code": "Error.Unknown", "Description": "x"}]}]}"#
            .to_vec(),
    ]
}

proptest! {
    #![proptest_config(config(CI_CASES))]

    /// The guard, every check-in and report decoder, and the answers decoded from reports.
    #[test]
    fn check_in_and_report_decoders(body in mutated(device_bodies(), PLIST_TOKENS)) {
        let n = body.len();
        let guard = bounded("check_plist", n, || check_plist(&body, MAX_DEPTH));
        let checkin = bounded("decode_checkin", n, || decode_checkin(&body));
        let report = bounded("decode_report", n, || decode_report(&body));
        bounded("decoders of answers", n, || {
            let _ = decode_password_verified(&body);
            let _ = inventory::decode_device_information(&body);
            let _ = inventory::decode_security_info(&body);
            let _ = inventory::decode_applications(&body);
            let _ = inventory::decode_certificates(&body);
            let _ = inventory::decode_user_list(&body);
            let _ = russet_mdm::protocol::profile_list::decode_profile_list(&body);
            let _ = filevault::decode_security_info(&body);
            let _ = filevault::decode_rotate_result(&body);
        });
        if guard.is_err() {
            prop_assert!(checkin.is_err() && report.is_err(), "decoded past a refusing guard");
            return Ok(());
        }
        // A body the guard and the plist reader accept: its re-encoding is a fixed point and
        // decodes to the same message.
        if let Ok(value) = plist::Value::from_reader_xml(&body[..]) {
            let once = reencode(&value);
            let again = plist::Value::from_reader_xml(&once[..]).expect("our own encoding decodes");
            prop_assert_eq!(&once, &reencode(&again));
            prop_assert!(check_plist(&once, MAX_DEPTH).is_ok());
            prop_assert_eq!(checkin.ok(), decode_checkin(&once).ok());
            prop_assert_eq!(report.ok(), decode_report(&once).ok());
        }
    }

    /// The DDM status report: what it keeps is only the items Russet stores, within bounds,
    /// and the same answer for the same bytes.
    #[test]
    fn ddm_status_report(body in mutated(ddm_status_seeds(), JSON_TOKENS)) {
        let parsed = bounded("ddm status parse", body.len(), || ddm_status::parse(&body));
        if let Ok(report) = parsed {
            prop_assert!(body.len() <= MAX_STATUS_BYTES);
            for (name, _) in &report.items {
                prop_assert!(STORED_ITEMS.contains(&name.as_str()), "kept {}", name);
            }
            prop_assert_eq!(Some(report), ddm_status::parse(&body).ok());
        }
    }

    /// ADE MachineInfo content (after its signature), XML or binary.
    #[test]
    fn machine_info_plist(content in mutated(machine_info_seeds(), PLIST_TOKENS)) {
        let decoded = bounded("decode_machine_info", content.len(), || decode_machine_info(&content));
        if let Ok(info) = decoded {
            prop_assert!(!info.udid.is_empty() && info.udid.len() <= 128);
            prop_assert!(!info.serial.is_empty() && info.serial.len() <= 128);
        }
    }
}

pub const MACHINE_INFO: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>LANGUAGE</key><string>en-US</string>
	<key>MDM_CAN_REQUEST_SOFTWARE_UPDATE</key><true/>
	<key>OS_VERSION</key><string>14.4</string>
	<key>PRODUCT</key><string>Mac14,2</string>
	<key>SERIAL</key><string>C02FUZZ00001</string>
	<key>SOFTWARE_UPDATE_DEVICE_ID</key><string>J413AP</string>
	<key>UDID</key><string>0000FE00-FUZZ-0001</string>
	<key>VERSION</key><string>23E214</string>
</dict>
</plist>
"#;

fn machine_info_seeds() -> Vec<Vec<u8>> {
    let value = plist::Value::from_reader_xml(MACHINE_INFO).expect("seed decodes");
    let mut binary = Vec::new();
    value.to_writer_binary(&mut binary).expect("binary plist");
    vec![MACHINE_INFO.to_vec(), binary]
}
