//! Report decoding against real device results (cmdmnt/commandment, micromdm/nanomdm).

use super::*;

macro_rules! capture {
    ($path:literal) => {
        include_bytes!(concat!("../../testdata/devices/", $path)).as_slice()
    };
}

fn decode(body: &[u8]) -> CommandReport {
    match decode_report(body) {
        Ok(r) => r,
        Err(e) => panic!("decode failed: {e}"),
    }
}

#[test]
fn idle_needs_no_command_uuid() {
    let r = decode(capture!("Idle/body2.plist"));
    assert_eq!(r.status, ReportStatus::Idle);
    assert_eq!(r.command_uuid, None);
    assert_eq!(r.enrollment.id, "D4D56083-BFB0-5047-8BDF-2727BACDC59B");
    assert!(r.error_chain.is_empty());
}

#[test]
fn acknowledged_results_from_macs_and_ios() {
    let r = decode(capture!("nanomdm-DeviceInformation.1.plist"));
    assert_eq!(r.status, ReportStatus::Acknowledged);
    assert_eq!(
        r.command_uuid.as_deref(),
        Some("76eda240-5488-4989-8339-f2ae160113c4")
    );
    assert_eq!(r.enrollment.id, "66ADE930-5FDF-5EC4-8429-15640684C489");

    let r = decode(capture!("SecurityInfo/macOS-10.13.1.xml"));
    assert_eq!(r.status, ReportStatus::Acknowledged);
    assert_eq!(
        r.command_uuid.as_deref(),
        Some("bf88d054-bd86-480d-b406-a1bc74a403c0")
    );
    assert_eq!(r.enrollment.id, "00000000-1111-2222-3333-444455556666");

    let r = decode(capture!("DeviceLock/iOS-11.3.1.xml"));
    assert_eq!(
        r.command_uuid.as_deref(),
        Some("b6c8627f-bf4a-4ef4-8f40-d8673cd568c9")
    );

    for body in [
        capture!("DeviceInformation/10.11.x.xml"),
        capture!("DeviceInformation/macOS-10.13.1.xml"),
        capture!("DeviceInformation/iOS-11.3.1.xml"),
        capture!("SecurityInfo/10.11.x.xml"),
        capture!("SecurityInfo/iOS-11.3.1.xml"),
        capture!("SecurityInfo/IOS-9.x.xml"),
        capture!("ProfileList/10.11.x.xml"),
        capture!("ProfileList/iOS-11.3.1.xml"),
        capture!("InstalledApplicationList/10.11.x.xml"),
        capture!("InstalledApplicationList/iOS-11.3.1.xml"),
        capture!("InstalledApplicationList/iOS-12.1.xml"),
        capture!("CertificateList/10.11.x.xml"),
        capture!("AvailableOSUpdates/macOS-10.13.1.xml"),
    ] {
        let r = decode(body);
        assert_eq!(r.status, ReportStatus::Acknowledged);
        assert!(r.command_uuid.is_some());
        assert!(r.error_chain.is_empty());
    }
}

#[test]
fn not_now_keeps_the_command_uuid_for_resending() {
    let r = decode(capture!("NotNow/iOS-11.3.1.xml"));
    assert_eq!(r.status, ReportStatus::NotNow);
    assert_eq!(
        r.command_uuid.as_deref(),
        Some("bb5d7813-e7c3-4279-b954-4b678925de5f")
    );
    assert_eq!(r.enrollment.id, "1c111c111c111c111c111c111c111c111c111c11");
}

#[test]
fn command_format_error_without_chain() {
    let r = decode(capture!("Errors/iOS-11.3.1-CommandFormatError.xml"));
    assert_eq!(r.status, ReportStatus::CommandFormatError);
    assert_eq!(
        r.command_uuid.as_deref(),
        Some("52aab5d2-6a61-4fe8-b685-44f8b56972d0")
    );
    assert!(r.error_chain.is_empty());
}

#[test]
fn error_chains_are_decoded_in_order() {
    let r = decode(capture!("Errors/iOS-11.3.1-AvailableOSUpdatesFailure.xml"));
    assert_eq!(r.status, ReportStatus::Error);
    assert_eq!(r.error_chain.len(), 2);
    assert_eq!(r.error_chain[0].error_code, 2213);
    assert_eq!(
        r.error_chain[0].error_domain.as_deref(),
        Some("DeviceManagement.error")
    );
    assert_eq!(
        r.error_chain[0].localized_description.as_deref(),
        Some("No update available.")
    );
    assert_eq!(r.error_chain[1].error_code, 3);

    let r = decode(capture!("Errors/error_invalid_request_type.plist"));
    let item = &r.error_chain[0];
    assert_eq!(item.error_code, 12021);
    assert_eq!(
        item.us_english_description.as_deref(),
        Some("“OSUpdateStatus” is not a valid request type.")
    );
    let json = serde_json::to_value(item).expect("json");
    assert_eq!(json["ErrorCode"], 12021);
    assert_eq!(json["ErrorDomain"], "MCMDMErrorDomain");
    assert_eq!(
        json["USEnglishDescription"],
        "“OSUpdateStatus” is not a valid request type."
    );

    let r = decode(capture!("Errors/10.12.5-invalid-command.xml"));
    assert_eq!(r.error_chain[0].error_code, 97);
    assert_eq!(r.error_chain[0].us_english_description, None);
    let json = serde_json::to_value(&r.error_chain[0]).expect("json");
    assert!(json.get("USEnglishDescription").is_none());

    for body in [
        capture!("Errors/10.13.6-invalid-command.xml"),
        capture!("Errors/iOS-11.3.1-RemoveProfile-Unmanaged.xml"),
    ] {
        let r = decode(body);
        assert_eq!(r.status, ReportStatus::Error);
        assert!(r.error_chain[0].error_code > 12000);
    }
}

fn report(inner: &str) -> Vec<u8> {
    format!(r#"<?xml version="1.0"?><plist version="1.0"><dict>{inner}</dict></plist>"#)
        .into_bytes()
}

fn malformed(body: &[u8]) -> String {
    match decode_report(body) {
        Err(ProtocolError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_reports() {
    let msg = malformed(&report(
        "<key>Status</key><string>NotNow</string><key>UDID</key><string>U</string>",
    ));
    assert!(msg.contains("CommandUUID"), "{msg}");
    let msg = malformed(&report(
        "<key>Status</key><string>Maybe</string><key>UDID</key><string>U</string>",
    ));
    assert!(msg.contains("Maybe"), "{msg}");
    assert!(malformed(&report("<key>UDID</key><string>U</string>")).contains("Status"));
    assert!(malformed(&report("<key>Status</key><string>Idle</string>")).contains("UDID"));
    let msg = malformed(&report(
        "<key>Status</key><string>Error</string><key>UDID</key><string>U</string>\
         <key>CommandUUID</key><string>C</string>\
         <key>ErrorChain</key><array><dict><key>ErrorCode</key><string>x</string></dict></array>",
    ));
    assert!(
        msg.contains("ErrorChain[0]") && msg.contains("ErrorCode"),
        "{msg}"
    );
    let full = capture!("NotNow/iOS-11.3.1.xml");
    malformed(&full[..full.len() - 30]);
}

#[test]
fn user_enrollment_reports_use_the_enrollment_id() {
    let r = decode(&report(
        "<key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>C1</string>\
         <key>EnrollmentID</key><string>E1</string>",
    ));
    assert_eq!(r.enrollment.id, "E1");
}

#[test]
fn deep_reports_are_refused_by_the_guard() {
    let mut body = b"<plist><dict><key>Status</key><string>Idle</string><key>X</key>".to_vec();
    body.extend(b"<array>".repeat(200_000));
    body.extend(b"</array>".repeat(200_000));
    body.extend(b"</dict></plist>");
    assert_eq!(decode_report(&body), Err(ProtocolError::TooDeep));
}

#[test]
fn verify_recovery_lock_answers_password_verified() {
    let answer = |extra: &str| {
        report(&format!(
            "<key>Status</key><string>Acknowledged</string><key>UDID</key><string>U</string>\
             <key>CommandUUID</key><string>C</string>{extra}"
        ))
    };
    assert_eq!(
        decode_password_verified(&answer("<key>PasswordVerified</key><true/>")),
        Ok(true)
    );
    assert_eq!(
        decode_password_verified(&answer("<key>PasswordVerified</key><false/>")),
        Ok(false)
    );
    // Required by Apple's schema: missing or of the wrong type is malformed, never "verified".
    for bad in ["", "<key>PasswordVerified</key><string>true</string>"] {
        assert!(matches!(
            decode_password_verified(&answer(bad)),
            Err(ProtocolError::Malformed(_))
        ));
    }
}
