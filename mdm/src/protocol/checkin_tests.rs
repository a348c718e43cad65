//! Check-in decoding against real device captures (cmdmnt/commandment, micromdm/nanomdm)
//! and small hand-written bodies for the message types no capture covers.

use super::super::enrollment::EnrollmentType;
use super::*;

macro_rules! capture {
    ($path:literal) => {
        include_bytes!(concat!("../../testdata/devices/", $path)).as_slice()
    };
}

fn plist(inner: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>{inner}</dict></plist>"#
    )
    .into_bytes()
}

fn decode(body: &[u8]) -> CheckinMessage {
    match decode_checkin(body) {
        Ok(m) => m,
        Err(e) => panic!("decode failed: {e}"),
    }
}

#[test]
fn authenticate_from_a_mac_keeps_every_field() {
    let CheckinMessage::Authenticate(a) = decode(capture!("Authenticate/10.11.x.xml")) else {
        panic!("not Authenticate");
    };
    assert_eq!(a.enrollment.id, "00000000-1111-2222-3333-444455556666");
    assert_eq!(a.enrollment.kind, EnrollmentType::Device);
    assert_eq!(
        a.topic,
        "com.apple.mgmt.test.00000000-1111-2222-3333-444455556666"
    );
    assert_eq!(a.serial_number.as_deref(), Some("C00000000004"));
    assert_eq!(a.model.as_deref(), Some("iMac15,1"));
    assert_eq!(a.model_name.as_deref(), Some("iMac"));
    assert_eq!(a.device_name.as_deref(), Some("micromdm-test"));
    assert_eq!(a.os_version.as_deref(), Some("10.11.6"));
    assert_eq!(a.build_version.as_deref(), Some("15G1004"));
    assert_eq!(a.product_name.as_deref(), Some("iMac15,1"));
    assert_eq!(a.imei, None);

    let m = decode(capture!("Authenticate/10.12.2.xml"));
    assert_eq!(m.message_type(), "Authenticate");
    assert_eq!(m.enrollment().id, "E3568F17-92ED-450A-8904-C3BF4CB7E9A5");

    let CheckinMessage::Authenticate(a) = decode(capture!("nanomdm-Authenticate.2.plist")) else {
        panic!("not Authenticate");
    };
    assert_eq!(a.serial_number.as_deref(), Some("C02MT66KFLHH"));
    assert_eq!(a.device_name.as_deref(), Some("Fruit"));
    assert_eq!(a.os_version.as_deref(), Some("10.12.6"));
}

#[test]
fn authenticate_from_ios_has_no_mac_only_keys() {
    for body in [
        capture!("Authenticate/IOS-11.3.1.xml"),
        capture!("Authenticate/IOS-9.x.xml"),
        capture!("nanomdm-Authenticate.1.plist"),
    ] {
        let CheckinMessage::Authenticate(a) = decode(body) else {
            panic!("not Authenticate");
        };
        assert_eq!(a.device_name, None);
        assert_eq!(a.model, None);
        assert!(
            a.product_name
                .as_deref()
                .is_some_and(|p| p.starts_with("iPad"))
        );
    }
    let CheckinMessage::Authenticate(a) = decode(capture!("Authenticate/iOS-11.3.1-cell.xml"))
    else {
        panic!("not Authenticate");
    };
    assert_eq!(a.imei.as_deref(), Some("11 111111 111111 1"));
    assert_eq!(a.meid.as_deref(), Some("1111111111111"));
    assert_eq!(a.enrollment.id, "1111111111111111111111111111111111111111");
}

#[test]
fn token_update_device_channel() {
    let CheckinMessage::TokenUpdate(t) = decode(capture!("nanomdm-TokenUpdate.1.plist")) else {
        panic!("not TokenUpdate");
    };
    assert_eq!(t.enrollment.id, "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69");
    assert_eq!(t.push_magic, "CEFDF0BD-E342-4A27-8742-E930EA116B0A");
    assert_eq!(t.token.len(), 32);
    assert_eq!(&t.token[..4], &[0x47, 0xe8, 0xee, 0xc0]);
    let unlock = t.unlock_token.expect("UnlockToken");
    assert!(unlock.starts_with(b"DATA"), "{:?}", &unlock[..8]);
    assert!(!t.awaiting_configuration);

    let CheckinMessage::TokenUpdate(t) = decode(capture!("TokenUpdate/10.12.2.xml")) else {
        panic!("not TokenUpdate");
    };
    assert_eq!(t.topic, "com.apple.mgmt.commandment.dev");
    assert_eq!(t.token, b"00201052-A2D0-403D-B857-72F913F5BCCE\n");
    assert_eq!(t.unlock_token, None);

    let m = decode(capture!("nanomdm-TokenUpdate.2.plist"));
    assert_eq!(m.enrollment().id, "66ADE930-5FDF-5EC4-8429-15640684C489");
    let m = decode(capture!("TokenUpdate/10.11.x.plist"));
    let CheckinMessage::TokenUpdate(t) = m else {
        panic!("not TokenUpdate")
    };
    assert_eq!(t.token, b"apple");
}

#[test]
fn token_update_user_channel_on_a_mac() {
    let CheckinMessage::TokenUpdate(t) = decode(capture!("TokenUpdate/10.12.2-user.xml")) else {
        panic!("not TokenUpdate");
    };
    let e = &t.enrollment;
    assert_eq!(
        e.id,
        "E3568F17-92ED-450A-8904-C3BF4CB7E9A5:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883"
    );
    assert_eq!(e.device_id, "E3568F17-92ED-450A-8904-C3BF4CB7E9A5");
    assert_eq!(e.kind, EnrollmentType::User);
    assert_eq!(e.user_short_name.as_deref(), Some("cjoe"));
    assert_eq!(e.user_long_name.as_deref(), Some("Commando Joe"));
    assert!(!e.not_on_console);
    assert_eq!(t.push_magic, "B81B1FEC-09C6-4EC2-871C-E521EC971B38");
}

#[test]
fn captures_with_placeholder_base64_are_refused_not_guessed() {
    // These two commandment captures carry "AAAA=" and "Base64=" as <data>: not valid
    // base64, so the plist parser refuses them. Real devices send canonical base64.
    for body in [
        capture!("TokenUpdate/10.11.x-user.plist"),
        capture!("TokenUpdate/iOS-11.3.1.xml"),
    ] {
        let err = decode_checkin(body).expect_err("invalid base64 must not decode");
        assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
    }
}

#[test]
fn checkout_captures() {
    let CheckinMessage::CheckOut(c) = decode(capture!("CheckOut/10.11.x.xml")) else {
        panic!("not CheckOut");
    };
    assert_eq!(c.enrollment.id, "00000000-1111-2222-3333-444455556666");
    assert_eq!(
        c.topic,
        "com.apple.mgmt.test.00000000-1111-2222-3333-444455556666"
    );
    let m = decode(capture!("CheckOut/iOS-11.3.1.xml"));
    assert_eq!(m.message_type(), "CheckOut");
    assert_eq!(
        m.enrollment().udid.as_deref(),
        Some("1c111c111c111c111c111c111c111c111c111c11")
    );
}

#[test]
fn user_authenticate_both_rounds() {
    let first = plist(
        "<key>MessageType</key><string>UserAuthenticate</string>\
         <key>UDID</key><string>U1</string><key>UserID</key><string>G1</string>",
    );
    let CheckinMessage::UserAuthenticate(u) = decode(&first) else {
        panic!("not UserAuthenticate");
    };
    assert_eq!(u.enrollment.id, "U1:G1");
    assert_eq!(u.digest_response, None);

    let second = plist(
        "<key>MessageType</key><string>UserAuthenticate</string>\
         <key>UDID</key><string>U1</string><key>UserID</key><string>G1</string>\
         <key>DigestResponse</key><string>resp</string>",
    );
    let CheckinMessage::UserAuthenticate(u) = decode(&second) else {
        panic!("not UserAuthenticate");
    };
    assert_eq!(u.digest_response.as_deref(), Some("resp"));

    let device_channel = plist(
        "<key>MessageType</key><string>UserAuthenticate</string><key>UDID</key><string>U1</string>",
    );
    assert!(malformed_message(&device_channel).contains("UserID"));
}

#[test]
fn bootstrap_token_set_get_and_delete() {
    let set = plist(
        "<key>MessageType</key><string>SetBootstrapToken</string>\
         <key>UDID</key><string>U1</string><key>AwaitingConfiguration</key><true/>\
         <key>BootstrapToken</key><data>c2VjcmV0</data>",
    );
    let CheckinMessage::SetBootstrapToken(s) = decode(&set) else {
        panic!("not SetBootstrapToken");
    };
    assert_eq!(s.bootstrap_token.as_deref(), Some(b"secret".as_slice()));
    assert!(s.awaiting_configuration);

    // Empty or missing token = delete the escrowed one (DM setbootstraptoken.yaml).
    for token in ["<key>BootstrapToken</key><data></data>", ""] {
        let body = plist(&format!(
            "<key>MessageType</key><string>SetBootstrapToken</string>\
             <key>UDID</key><string>U1</string>{token}"
        ));
        let CheckinMessage::SetBootstrapToken(s) = decode(&body) else {
            panic!("not SetBootstrapToken");
        };
        assert_eq!(s.bootstrap_token, None);
        assert!(!s.awaiting_configuration);
    }

    let get = plist(
        "<key>MessageType</key><string>GetBootstrapToken</string>\
         <key>UDID</key><string>U1</string><key>AwaitingConfiguration</key><true/>",
    );
    let CheckinMessage::GetBootstrapToken(g) = decode(&get) else {
        panic!("not GetBootstrapToken");
    };
    assert!(g.awaiting_configuration);
    assert_eq!(g.enrollment.id, "U1");
}

#[test]
fn declarative_management_and_get_token() {
    let ddm = plist(
        "<key>MessageType</key><string>DeclarativeManagement</string>\
         <key>EnrollmentID</key><string>E1</string><key>EnrollmentUserID</key><string>EU</string>\
         <key>Endpoint</key><string>status</string><key>Data</key><data>e30=</data>",
    );
    let CheckinMessage::DeclarativeManagement(d) = decode(&ddm) else {
        panic!("not DeclarativeManagement");
    };
    assert_eq!(d.endpoint, "status");
    assert_eq!(d.data.as_deref(), Some(b"{}".as_slice()));
    assert_eq!(d.enrollment.id, "E1:EU");
    assert_eq!(d.enrollment.kind, EnrollmentType::UserEnrollmentUser);

    let token = plist(
        "<key>MessageType</key><string>GetToken</string><key>UDID</key><string>U1</string>\
         <key>TokenServiceType</key><string>com.apple.maid</string>\
         <key>TokenParameters</key><dict><key>PhoneUDID</key><string>P</string></dict>",
    );
    let CheckinMessage::GetToken(g) = decode(&token) else {
        panic!("not GetToken");
    };
    assert_eq!(g.token_service_type, "com.apple.maid");
    let params = g.token_parameters.expect("TokenParameters");
    assert_eq!(
        params.get("PhoneUDID").and_then(|v| v.as_string()),
        Some("P")
    );
}

#[test]
fn unknown_message_type_is_named() {
    let body = plist(
        "<key>MessageType</key><string>Frobnicate</string><key>UDID</key><string>U1</string>",
    );
    assert_eq!(
        decode_checkin(&body),
        Err(ProtocolError::UnknownMessageType("Frobnicate".into()))
    );
}

fn malformed_message(body: &[u8]) -> String {
    match decode_checkin(body) {
        Err(ProtocolError::Malformed(msg)) => msg,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_bodies_say_what_is_wrong() {
    let full = capture!("Authenticate/10.11.x.xml");
    malformed_message(&full[..full.len() / 2]);
    malformed_message(b"MessageType=Authenticate");
    assert!(
        malformed_message(&plist("<key>UDID</key><string>U1</string>")).contains("MessageType")
    );

    let no_id =
        plist("<key>MessageType</key><string>CheckOut</string><key>Topic</key><string>t</string>");
    assert!(malformed_message(&no_id).contains("UDID"));

    let token_as_string = plist(
        "<key>MessageType</key><string>TokenUpdate</string><key>UDID</key><string>U1</string>\
         <key>Topic</key><string>t</string><key>PushMagic</key><string>m</string>\
         <key>Token</key><string>abc</string>",
    );
    let msg = malformed_message(&token_as_string);
    assert!(msg.contains("Token") && msg.contains("<data>"), "{msg}");

    let no_push_magic = plist(
        "<key>MessageType</key><string>TokenUpdate</string><key>UDID</key><string>U1</string>\
         <key>Topic</key><string>t</string><key>Token</key><data>YQ==</data>",
    );
    assert!(malformed_message(&no_push_magic).contains("PushMagic"));

    let udid_int = plist(
        "<key>MessageType</key><string>CheckOut</string><key>Topic</key><string>t</string>\
         <key>UDID</key><integer>5</integer>",
    );
    assert!(malformed_message(&udid_int).contains("UDID"));

    let top_level_array = br#"<plist version="1.0"><array/></plist>"#;
    assert!(malformed_message(top_level_array).contains("<dict>"));
}

#[test]
fn binary_and_deep_bodies_never_reach_the_parser() {
    let mut dict = plist::Dictionary::new();
    dict.insert("MessageType".into(), "CheckOut".into());
    let mut bin = Vec::new();
    plist::Value::Dictionary(dict)
        .to_writer_binary(&mut bin)
        .expect("serialize to Vec");
    assert!(malformed_message(&bin).contains("binary"));

    let mut deep =
        b"<plist><dict><key>MessageType</key><string>CheckOut</string><key>X</key>".to_vec();
    deep.extend(b"<array>".repeat(150_000));
    deep.extend(b"</array>".repeat(150_000));
    deep.extend(b"</dict></plist>");
    assert!(deep.len() > 1_000_000);
    assert_eq!(decode_checkin(&deep), Err(ProtocolError::TooDeep));
}
