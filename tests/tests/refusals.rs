//! What the server refuses, and how: devices get 400/403 (never 401, which would unenroll a
//! Mac), admins get JSON errors. Every refusal leaves the server serving.

use base64::Engine;
use plist::Value;
use reqwest::Method;
use russet_certs::testing::{IssueOptions, TestCa, TestEku, TestValidity};
use russet_tests::sim_mac::{CHECKIN_CONTENT_TYPE, CONNECT_CONTENT_TYPE};
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::json;

#[tokio::test]
async fn identity_from_an_unknown_ca_is_refused() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let stranger = TestCa::new("Some Other CA");
    let mac = SimMac::new(&srv.device_url, stranger.issue_device_identity("intruder"));
    let r = mac.checkin(&mac.authenticate_message()).await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let (_, list) = srv.api(Method::GET, "/api/v1/devices", None).await;
    assert_eq!(list["devices"], json!([]), "nothing was stored");
    srv.stop().await;
}

#[tokio::test]
async fn tampered_body_and_missing_signature_are_refused() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let mac = srv.mac();
    let body = SimMac::to_xml(&mac.authenticate_message());
    let sig = mac.identity.sign_body(&body);
    let mut tampered = body.clone();
    let pos = tampered
        .windows(7)
        .position(|w| w == b"Sim Mac")
        .expect("device name in body");
    tampered[pos] = b'X';
    let r = mac
        .put_raw(
            "/mdm/checkin",
            CHECKIN_CONTENT_TYPE,
            &tampered,
            Some(&sig),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = mac
        .put_raw("/mdm/checkin", CHECKIN_CONTENT_TYPE, &body, None, &[])
        .await;
    assert_eq!(r.status, 400);
    let r = mac
        .put_raw(
            "/mdm/checkin",
            CHECKIN_CONTENT_TYPE,
            &body,
            Some("not base64!"),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    // The genuine message still works afterwards.
    mac.enroll().await;
    srv.stop().await;
}

#[tokio::test]
async fn another_enrollments_certificate_is_refused() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let alice = srv.mac();
    alice.enroll().await;
    let mut bob = srv.mac();
    bob.enroll().await;
    // Bob signs a message that claims to be Alice.
    let mut impostor = srv.mac();
    impostor.identity = bob.identity;
    impostor.udid = alice.udid.clone();
    assert_eq!(
        impostor.idle().await.status,
        403,
        "command report for another UDID"
    );
    assert_eq!(
        impostor
            .checkin(&impostor.token_update_message())
            .await
            .status,
        403
    );
    assert_eq!(
        impostor
            .checkin(&impostor.authenticate_message())
            .await
            .status,
        403,
        "a certificate bound to one device cannot Authenticate as another"
    );
    bob = srv.mac();
    bob.identity = alice.identity;
    assert_eq!(bob.checkin(&bob.authenticate_message()).await.status, 403);
    srv.stop().await;
}

#[tokio::test]
async fn client_certificate_without_client_auth_or_expired_is_refused() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let server_only = srv.ca.issue_with(
        "srv",
        IssueOptions {
            eku: TestEku::ServerAuthOnly,
            ..Default::default()
        },
    );
    let mac = SimMac::new(&srv.device_url, server_only);
    assert_eq!(mac.checkin(&mac.authenticate_message()).await.status, 403);
    let expired = srv.ca.issue_with(
        "old",
        IssueOptions {
            validity: TestValidity::Expired,
            ..Default::default()
        },
    );
    let mac = SimMac::new(&srv.device_url, expired);
    assert_eq!(mac.checkin(&mac.authenticate_message()).await.status, 403);
    srv.stop().await;
}

#[tokio::test]
async fn malformed_and_hostile_bodies_are_400_and_the_server_survives() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let mac = srv.mac();
    let cases: Vec<Vec<u8>> = vec![
        b"this is not a plist".to_vec(),
        b"<?xml version=\"1.0\"?><plist><dict><key>MessageType</key>".to_vec(),
        SimMac::to_xml(&SimMac::dict(&[
            ("MessageType", Value::String("FlyToTheMoon".into())),
            ("UDID", Value::String(mac.udid.clone())),
        ])),
        SimMac::to_xml(&SimMac::dict(&[(
            "MessageType",
            Value::String("Authenticate".into()),
        )])),
        SimMac::to_xml(&SimMac::dict(&[
            ("MessageType", Value::Integer(3.into())),
            ("UDID", Value::String(mac.udid.clone())),
        ])),
        b"bplist00\x00\x01\x02".to_vec(),
        format!(
            "<plist>{}{}</plist>",
            "<array>".repeat(50_000),
            "</array>".repeat(50_000)
        )
        .into_bytes(),
    ];
    for body in &cases {
        let r = mac.put("/mdm/checkin", CHECKIN_CONTENT_TYPE, body).await;
        assert_eq!(
            r.status,
            400,
            "body {:?}…",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        let r = mac.put("/mdm/connect", CONNECT_CONTENT_TYPE, body).await;
        assert_eq!(r.status, 400);
    }
    // Too large: refused before anything is parsed.
    let huge = vec![b' '; russet_mdm::http::MAX_DEVICE_BODY + 1];
    let r = mac
        .put_raw("/mdm/checkin", CHECKIN_CONTENT_TYPE, &huge, Some("x"), &[])
        .await;
    assert_eq!(r.status, 413);
    mac.enroll().await;
    // Reports that name no command, or a command this Mac doesn't have.
    let d = SimMac::dict(&[
        ("UDID", Value::String(mac.udid.clone())),
        ("Status", Value::String("Acknowledged".into())),
    ]);
    assert_eq!(
        mac.put("/mdm/connect", CONNECT_CONTENT_TYPE, &SimMac::to_xml(&d))
            .await
            .status,
        400
    );
    let r = mac
        .report("0E6B6D9C-0000-0000-0000-000000000000", "Acknowledged", &[])
        .await;
    assert_eq!(
        (r.status, r.body.is_empty()),
        (200, true),
        "unknown result is ignored, not fatal"
    );
    srv.stop().await;
}

#[tokio::test]
async fn other_checkin_messages_answer_as_apple_documents() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let mac = srv.mac();
    mac.enroll().await;
    let ua = SimMac::dict(&[
        ("MessageType", Value::String("UserAuthenticate".into())),
        ("UDID", Value::String(mac.udid.clone())),
        (
            "UserID",
            Value::String("A1B2C3D4-0000-0000-0000-000000000001".into()),
        ),
        ("UserShortName", Value::String("alice".into())),
    ]);
    assert_eq!(
        mac.checkin(&ua).await.status,
        410,
        "UserAuthenticate refused by default"
    );
    let gt = SimMac::dict(&[
        ("MessageType", Value::String("GetToken".into())),
        ("UDID", Value::String(mac.udid.clone())),
        (
            "TokenServiceType",
            Value::String("com.example.unknown".into()),
        ),
    ]);
    assert_eq!(mac.checkin(&gt).await.status, 400);
    let ddm = SimMac::dict(&[
        ("MessageType", Value::String("DeclarativeManagement".into())),
        ("UDID", Value::String(mac.udid.clone())),
        ("Endpoint", Value::String("tokens".into())),
    ]);
    let r = mac.checkin(&ddm).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert!(v["SyncTokens"]["DeclarationsToken"].is_string());
    // User channel TokenUpdate creates a user enrollment under the device.
    let mut tu = mac.token_update_message();
    tu.insert(
        "UserID".into(),
        Value::String("A1B2C3D4-0000-0000-0000-000000000001".into()),
    );
    tu.insert("UserShortName".into(), Value::String("alice".into()));
    tu.insert("UserLongName".into(), Value::String("Alice Example".into()));
    tu.remove("AwaitingConfiguration");
    assert_eq!(mac.checkin(&tu).await.status, 200);
    let (_, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert_eq!(dev["user_channels"][0]["user_short_name"], json!("alice"));
    assert_eq!(
        dev["user_channels"][0]["enrollment_id"],
        json!(format!("{}:A1B2C3D4-0000-0000-0000-000000000001", mac.udid))
    );
    srv.stop().await;
}

#[tokio::test]
async fn admin_api_requires_a_valid_token_and_answers_json_errors() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let (status, v) = srv
        .api_with_token(Method::GET, "/api/v1/devices", None, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(v["error"]["code"], json!("unauthorized"));
    let (status, _) = srv
        .api_with_token(Method::GET, "/api/v1/devices", None, Some("russet_wrong"))
        .await;
    assert_eq!(status, 401);
    let (status, _) = srv
        .api_with_token(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 401);
    let (status, v) = srv
        .api_with_token(Method::GET, "/healthz", None, None)
        .await;
    assert_eq!((status, v["status"].clone()), (200, json!("ok")));

    let mac = srv.mac();
    mac.enroll().await;
    let path = format!("/api/v1/devices/{}/commands", mac.udid);
    let (status, v) = srv
        .api(
            Method::POST,
            &path,
            Some(json!({"request_type": "DeviceLock", "PIN": "123456"})),
        )
        .await;
    assert_eq!(status, 422, "lock must go through the PIN vault: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("/lock")
    );
    let (status, v) = srv
        .api(
            Method::POST,
            &path,
            Some(json!({"request_type": "EraseDevice"})),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = srv
        .api(
            Method::POST,
            &path,
            Some(json!({"request_type": "MakeCoffee"})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (400, json!("unsupported_request_type"))
    );
    let (status, v) = srv
        .api(
            Method::POST,
            &path,
            Some(json!({"request_type": "DeviceInformation", "Queries": "notalist"})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (400, json!("invalid_command")),
        "{v}"
    );
    let (status, _) = srv
        .api(
            Method::POST,
            &path,
            Some(json!({"request_type": "DeviceInformation", "Bogus": 1, "Queries": []})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, v) = srv
        .api(Method::POST, &path, Some(json!({"plist": "%%%"})))
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, _) = srv
        .api(
            Method::POST,
            "/api/v1/devices/NOPE/commands",
            Some(json!({"request_type": "SecurityInfo"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, v) = srv.api(Method::GET, "/api/v1/devices/NOPE", None).await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let (status, _) = srv
        .api(Method::GET, "/api/v1/devices?limit=banana", None)
        .await;
    assert_eq!(status, 400);

    // A raw plist command with a data value.
    let raw = SimMac::to_xml(&SimMac::dict(&[(
        "Command",
        Value::Dictionary(SimMac::dict(&[
            ("RequestType", Value::String("InstallProfile".into())),
            ("Payload", Value::Data(b"<plist>profile</plist>".to_vec())),
        ])),
    )]));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let (status, v) = srv
        .api(Method::POST, &path, Some(json!({"plist": b64})))
        .await;
    assert_eq!(status, 201, "{v}");
    let reply = mac.idle().await;
    let (_, rt, cmd) = reply.command().expect("command");
    assert_eq!(rt, "InstallProfile");
    assert_eq!(
        cmd.get("Payload").and_then(Value::as_data),
        Some(&b"<plist>profile</plist>"[..])
    );

    let (status, doc) = srv.api(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    for p in [
        "/api/v1/devices",
        "/api/v1/devices/{udid}/commands",
        "/api/v1/commands/{uuid}",
        "/healthz",
    ] {
        assert!(doc["paths"][p].is_object(), "OpenAPI documents {p}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn forwarded_client_certificate_header_is_an_identity() {
    let srv =
        TestServer::start_with(Backend::Sqlite, &["--client-cert-header", "X-Client-Cert"]).await;
    let mac = srv.mac();
    for header in [
        mac.identity.rfc9440_header(),
        mac.identity.escaped_pem_header(),
    ] {
        for msg in [mac.authenticate_message(), mac.token_update_message()] {
            let body = SimMac::to_xml(&msg);
            let r = mac
                .put_raw(
                    "/mdm/checkin",
                    CHECKIN_CONTENT_TYPE,
                    &body,
                    None,
                    &[("X-Client-Cert", header.clone())],
                )
                .await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
    }
    let other = TestCa::new("Other").issue_device_identity("x");
    let r = mac
        .put_raw(
            "/mdm/checkin",
            CHECKIN_CONTENT_TYPE,
            &SimMac::to_xml(&mac.token_update_message()),
            None,
            &[("X-Client-Cert", other.rfc9440_header())],
        )
        .await;
    assert_eq!(r.status, 403);
    let (_, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert_eq!(dev["enrolled"], json!(true));
    srv.stop().await;
}

#[tokio::test]
async fn once_a_push_certificate_is_configured_other_topics_are_refused() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let store = srv.running.as_ref().expect("running").store.clone();
    let early = srv.mac();
    early.enroll().await;
    store
        .set_setting(
            russet_mdm::service::SETTING_PUSH_TOPIC,
            "com.apple.mgmt.External.real",
        )
        .await
        .expect("setting");
    let mut mac = srv.mac();
    let r = mac.checkin(&mac.authenticate_message()).await;
    assert_eq!(
        r.status, 403,
        "a Mac bound to another topic could never be woken"
    );
    assert_eq!(
        early.checkin(&early.token_update_message()).await.status,
        403
    );
    mac.topic = "com.apple.mgmt.External.real".into();
    mac.enroll().await;
    srv.stop().await;
}
