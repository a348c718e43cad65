//! A simulated Mac enrolls and works through its command queue over real HTTP, on SQLite and on
//! PostgreSQL: enroll → command → NotNow → re-send → Acknowledged → status.

use plist::Value;
use reqwest::Method;
use russet_tests::{Backend, TestServer};
use serde_json::json;

russet_tests::on_both_backends!(
    enroll_command_notnow_resend_acknowledged,
    notnow_is_skipped_for_the_rest_of_the_session_only,
    authenticate_again_clears_the_queue,
    cancel_before_and_after_delivery,
    bulk_enqueue_reports_unknown_devices,
    bootstrap_token_is_escrowed_and_returned,
    check_out_stops_the_command_loop,
);

async fn enroll_command_notnow_resend_acknowledged(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;

    let (status, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert_eq!(status, 200, "{dev}");
    assert_eq!(dev["enrolled"], json!(true));
    assert_eq!(dev["serial_number"], json!(mac.serial));
    assert_eq!(dev["push"]["token"], json!(hex(&mac.token)));
    assert_eq!(dev["push"]["token_update_count"], json!(1));
    assert_eq!(
        dev["identity"]["certificate_sha256"],
        json!(mac.identity.sha256_hex())
    );

    let uuid = srv
        .enqueue(
            &mac.udid,
            json!({"request_type": "DeviceInformation", "Queries": ["SerialNumber", "OSVersion"]}),
        )
        .await;

    // Session 1: the Mac is busy and answers NotNow; the server ends the session.
    let reply = mac.idle().await;
    let (got, rt, cmd) = reply.command().expect("a command after Idle");
    assert_eq!(
        (got.as_str(), rt.as_str()),
        (uuid.as_str(), "DeviceInformation")
    );
    assert_eq!(
        cmd.get("Queries")
            .and_then(Value::as_array)
            .map(|a| a.len()),
        Some(2)
    );
    let reply = mac.report(&uuid, "NotNow", &[]).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.is_empty(),
        "NotNow'd command must not come back in the same session"
    );
    let (_, v) = srv
        .api(Method::GET, &format!("/api/v1/commands/{uuid}"), None)
        .await;
    assert_eq!(v["devices"][0]["status"], json!("NotNow"));
    assert_eq!(v["devices"][0]["not_now_count"], json!(1));

    // Session 2: re-sent, acknowledged with a result.
    let reply = mac.idle().await;
    assert_eq!(
        reply.command().map(|c| c.0),
        Some(uuid.clone()),
        "re-sent on the next session"
    );
    let mut answers = plist::Dictionary::new();
    answers.insert("SerialNumber".into(), Value::String(mac.serial.clone()));
    answers.insert("OSVersion".into(), Value::String("15.1".into()));
    let reply = mac
        .report(
            &uuid,
            "Acknowledged",
            &[("QueryResponses", Value::Dictionary(answers))],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty(), "queue is empty now");

    let (status, v) = srv
        .api(Method::GET, &format!("/api/v1/commands/{uuid}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["request_type"], json!("DeviceInformation"));
    let entry = &v["devices"][0];
    assert_eq!(entry["enrollment_id"], json!(mac.udid));
    assert_eq!(entry["status"], json!("Acknowledged"));
    assert_eq!(entry["delivery_count"], json!(2));
    assert_eq!(
        entry["result"]["QueryResponses"]["SerialNumber"],
        json!(mac.serial)
    );
    assert!(entry["result_at"].is_string());

    let (_, hist) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices/{}/commands", mac.udid),
            None,
        )
        .await;
    assert_eq!(hist["commands"].as_array().map(Vec::len), Some(1));
    assert_eq!(hist["commands"][0]["status"], json!("Acknowledged"));
    srv.stop().await;
}

async fn notnow_is_skipped_for_the_rest_of_the_session_only(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let a = srv
        .enqueue(&mac.udid, json!({"request_type": "SecurityInfo"}))
        .await;
    let b = srv
        .enqueue(&mac.udid, json!({"request_type": "ProfileList"}))
        .await;

    assert_eq!(
        mac.idle().await.command().map(|c| c.0),
        Some(a.clone()),
        "FIFO: A first"
    );
    // NotNow on A: the server may send another command in the same session — B, not A.
    assert_eq!(
        mac.report(&a, "NotNow", &[]).await.command().map(|c| c.0),
        Some(b.clone())
    );
    // B done: A stays skipped for the rest of this session.
    assert!(mac.report(&b, "Acknowledged", &[]).await.body.is_empty());
    // Next session: A again.
    assert_eq!(mac.idle().await.command().map(|c| c.0), Some(a.clone()));
    let err = vec![Value::Dictionary(russet_tests::SimMac::dict(&[
        ("ErrorCode", Value::Integer(12021.into())),
        ("ErrorDomain", Value::String("MCMDMErrorDomain".into())),
        ("LocalizedDescription", Value::String("Not allowed".into())),
    ]))];
    assert!(
        mac.report(&a, "Error", &[("ErrorChain", Value::Array(err))])
            .await
            .body
            .is_empty()
    );
    let (_, v) = srv
        .api(Method::GET, &format!("/api/v1/commands/{a}"), None)
        .await;
    assert_eq!(v["devices"][0]["status"], json!("Error"));
    assert_eq!(
        v["devices"][0]["result"]["ErrorChain"][0]["ErrorCode"],
        json!(12021)
    );
    // A command that was handed out but never answered is handed out again.
    let c = srv
        .enqueue(
            &mac.udid,
            json!({"request_type": "InstalledApplicationList"}),
        )
        .await;
    assert_eq!(mac.idle().await.command().map(|c| c.0), Some(c.clone()));
    assert_eq!(mac.idle().await.command().map(|c| c.0), Some(c));
    srv.stop().await;
}

async fn authenticate_again_clears_the_queue(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let uuid = srv
        .enqueue(&mac.udid, json!({"request_type": "SecurityInfo"}))
        .await;
    // Re-enrollment: Authenticate disables the enrollment until TokenUpdate and clears the queue.
    assert_eq!(mac.checkin(&mac.authenticate_message()).await.status, 200);
    let (_, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert_eq!(dev["enrolled"], json!(false));
    assert_eq!(
        mac.idle().await.status,
        400,
        "not enrolled until TokenUpdate"
    );
    assert_eq!(mac.checkin(&mac.token_update_message()).await.status, 200);
    assert!(mac.idle().await.body.is_empty(), "old queue was cleared");
    let (_, v) = srv
        .api(Method::GET, &format!("/api/v1/commands/{uuid}"), None)
        .await;
    assert_eq!(v["devices"][0]["status"], json!("Canceled"));
    let (_, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert_eq!(dev["push"]["token_update_count"], json!(2));
    srv.stop().await;
}

async fn cancel_before_and_after_delivery(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let a = srv
        .enqueue(&mac.udid, json!({"request_type": "SecurityInfo"}))
        .await;
    let (status, v) = srv
        .api(Method::DELETE, &format!("/api/v1/commands/{a}"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["canceled"], json!([mac.udid]));
    assert!(
        mac.idle().await.body.is_empty(),
        "canceled command is never delivered"
    );

    let b = srv
        .enqueue(&mac.udid, json!({"request_type": "ProfileList"}))
        .await;
    assert_eq!(mac.idle().await.command().map(|c| c.0), Some(b.clone()));
    let (status, v) = srv
        .api(Method::DELETE, &format!("/api/v1/commands/{b}"), None)
        .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], json!("already_delivered"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("already delivered at")
    );
    let (status, _) = srv
        .api(
            Method::DELETE,
            "/api/v1/commands/00000000-0000-0000-0000-000000000000",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        actions.contains(&"command.cancel") && actions.contains(&"command.enqueue"),
        "{audit}"
    );
    srv.stop().await;
}

async fn bulk_enqueue_reports_unknown_devices(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let macs = [srv.mac(), srv.mac(), srv.mac()];
    for m in &macs {
        m.enroll().await;
    }
    let mut devices: Vec<String> = macs.iter().map(|m| m.udid.clone()).collect();
    devices.push("NOT-A-DEVICE".into());
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/commands",
            Some(json!({"devices": devices, "command": {"request_type": "DeviceInformation", "Queries": ["UDID"]}})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["queued"], json!(3));
    assert_eq!(
        v["results"][3],
        json!({"enrollment_id": "NOT-A-DEVICE", "queued": false})
    );
    let uuid = v["command_uuid"].as_str().expect("uuid").to_string();
    for m in &macs {
        assert_eq!(m.idle().await.command().map(|c| c.0), Some(uuid.clone()));
        assert!(m.report(&uuid, "Acknowledged", &[]).await.body.is_empty());
    }
    let (_, v) = srv
        .api(Method::GET, &format!("/api/v1/commands/{uuid}"), None)
        .await;
    let statuses: Vec<&str> = v["devices"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, vec!["Acknowledged"; 3]);
    let (_, list) = srv.api(Method::GET, "/api/v1/devices?limit=2", None).await;
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(2));
    let cursor = list["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, page2) = srv
        .api(
            Method::GET,
            &format!("/api/v1/devices?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page2["devices"].as_array().map(Vec::len), Some(1));
    srv.stop().await;
}

async fn bootstrap_token_is_escrowed_and_returned(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let get = russet_tests::SimMac::dict(&[
        ("MessageType", Value::String("GetBootstrapToken".into())),
        ("UDID", Value::String(mac.udid.clone())),
        ("AwaitingConfiguration", Value::Boolean(false)),
    ]);
    let r = mac.checkin(&get).await;
    assert_eq!(
        (r.status, r.body.is_empty()),
        (200, true),
        "nothing escrowed yet"
    );
    let token = b"bootstrap-token-secret-bytes".to_vec();
    let set = russet_tests::SimMac::dict(&[
        ("MessageType", Value::String("SetBootstrapToken".into())),
        ("UDID", Value::String(mac.udid.clone())),
        ("BootstrapToken", Value::Data(token.clone())),
        ("AwaitingConfiguration", Value::Boolean(false)),
    ]);
    assert_eq!(mac.checkin(&set).await.status, 200);
    let r = mac.checkin(&get).await;
    assert_eq!(r.status, 200);
    let d = r.plist().expect("plist answer");
    assert_eq!(
        d.get("BootstrapToken").and_then(Value::as_data),
        Some(token.as_slice())
    );
    // Still there after the device is deleted and enrolls again.
    let (status, _) = srv
        .api(
            Method::DELETE,
            &format!("/api/v1/devices/{}", mac.udid),
            None,
        )
        .await;
    assert_eq!(status, 200);
    mac.enroll().await;
    let r = mac.checkin(&get).await;
    assert_eq!(
        r.plist().and_then(|d| d
            .get("BootstrapToken")
            .and_then(Value::as_data)
            .map(<[u8]>::to_vec)),
        Some(token)
    );
    srv.stop().await;
}

async fn check_out_stops_the_command_loop(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let out = russet_tests::SimMac::dict(&[
        ("MessageType", Value::String("CheckOut".into())),
        ("Topic", Value::String(mac.topic.clone())),
        ("UDID", Value::String(mac.udid.clone())),
    ]);
    assert_eq!(mac.checkin(&out).await.status, 200);
    let (_, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert_eq!(dev["enrolled"], json!(false));
    assert!(dev["checked_out_at"].is_string());
    let (_, list) = srv
        .api(Method::GET, "/api/v1/devices?enrolled=false", None)
        .await;
    assert_eq!(list["devices"][0]["udid"], json!(mac.udid));
    srv.stop().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
