//! Remote lock and wipe with escrowed unlock PINs, end to end with simulated Macs.

use plist::Value;
use reqwest::Method;
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::{Value as Json, json};

russet_tests::on_both_backends!(
    lock_is_delivered_with_the_returned_pin_ahead_of_the_backlog,
    wipe_guards,
    cancel_wipe_before_and_after_delivery,
    cancel_races_delivery_with_one_winner,
    pins_survive_delete_and_reenrollment_and_every_reveal_is_audited,
    no_pin_in_plaintext_in_the_database,
);

async fn post(srv: &TestServer, path: &str, body: Json) -> (u16, Json) {
    srv.api(Method::POST, path, Some(body)).await
}

async fn lock_is_delivered_with_the_returned_pin_ahead_of_the_backlog(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let backlog = srv
        .enqueue(
            &mac.udid,
            json!({"request_type": "InstalledApplicationList"}),
        )
        .await;
    let (status, v) = post(
        &srv,
        &format!("/api/v1/devices/{}/lock", mac.udid),
        json!({"message": "Return to IT", "phone_number": "+1 408 555 1010"}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let pin = v["pin"].as_str().expect("pin").to_string();
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    let uuid = v["command_uuid"].as_str().expect("uuid").to_string();

    let reply = mac.idle().await;
    let (got, rt, cmd) = reply.command().expect("a command");
    assert_eq!(
        (got.as_str(), rt.as_str()),
        (uuid.as_str(), "DeviceLock"),
        "lock jumps the backlog"
    );
    assert_eq!(
        cmd.get("PIN").and_then(Value::as_string),
        Some(pin.as_str())
    );
    assert_eq!(
        cmd.get("Message").and_then(Value::as_string),
        Some("Return to IT")
    );
    assert_eq!(
        cmd.get("PhoneNumber").and_then(Value::as_string),
        Some("+1 408 555 1010")
    );
    let reply = mac
        .report(
            &uuid,
            "Acknowledged",
            &[("MessageResult", Value::String("Success".into()))],
        )
        .await;
    assert_eq!(reply.command().map(|c| c.0), Some(backlog));

    let (_, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert_eq!(dev["lock_wipe"]["lock"]["status"], json!("Acknowledged"));
    assert!(dev["lock_wipe"]["lock"]["delivered_at"].is_string());
    assert!(
        dev["lock_wipe"]["lock"].get("pin").is_none(),
        "device view never shows the PIN"
    );
    // The command view doesn't leak it either.
    let (_, cv) = srv
        .api(Method::GET, &format!("/api/v1/commands/{uuid}"), None)
        .await;
    assert_eq!(cv["command"]["Command"]["PIN"], json!("(escrowed)"));
    assert_eq!(cv["command"]["Command"]["RequestType"], json!("DeviceLock"));

    // A given PIN is used as is; a malformed one is refused.
    let (status, v) = post(
        &srv,
        &format!("/api/v1/devices/{}/lock", mac.udid),
        json!({"pin": "042424"}),
    )
    .await;
    assert_eq!((status, v["pin"].clone()), (201, json!("042424")));
    for bad in ["12345", "1234567", "abcdef", "12 456"] {
        let (status, _) = post(
            &srv,
            &format!("/api/v1/devices/{}/lock", mac.udid),
            json!({"pin": bad}),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = post(&srv, "/api/v1/devices/NOPE/lock", json!({})).await;
    assert_eq!(status, 404);
    srv.stop().await;
}

async fn wipe_guards(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let path = format!("/api/v1/devices/{}/wipe", mac.udid);
    let (status, v) = post(&srv, &path, json!({})).await;
    assert_eq!(status, 400, "confirmation is required: {v}");
    let (status, v) = post(&srv, &path, json!({"confirm_serial": "C02WRONG0000"})).await;
    assert_eq!(status, 422, "wrong serial: {v}");
    let (status, _) = post(
        &srv,
        "/api/v1/devices/NOPE/wipe",
        json!({"confirm_serial": "X"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(
        &srv,
        &path,
        json!({"confirm_serial": mac.serial, "obliteration_behavior": "Sometimes"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/commands",
            Some(json!({"devices": [mac.udid], "command": {"request_type": "EraseDevice"}})),
        )
        .await;
    assert_eq!(
        status, 422,
        "no bulk wipe through the generic endpoint: {v}"
    );

    let (status, v) = post(&srv, &path, json!({"confirm_serial": mac.serial.to_lowercase(), "obliteration_behavior": "DoNotObliterate"})).await;
    assert_eq!(status, 201, "{v}");
    let first = v["command_uuid"].as_str().expect("uuid").to_string();
    let reply = mac.idle().await;
    let (got, rt, cmd) = reply.command().expect("wipe delivered");
    assert_eq!((got.as_str(), rt.as_str()), (first.as_str(), "EraseDevice"));
    assert_eq!(cmd.get("PIN").and_then(Value::as_string), v["pin"].as_str());
    assert_eq!(
        cmd.get("ObliterationBehavior").and_then(Value::as_string),
        Some("DoNotObliterate")
    );

    let (status, v) = post(&srv, &path, json!({"confirm_serial": mac.serial})).await;
    assert_eq!(status, 409, "already sent: {v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("already sent") && msg.contains(&first) && msg.contains('T'),
        "{msg}"
    );
    let (status, v) = post(
        &srv,
        &path,
        json!({"confirm_serial": mac.serial, "force": true}),
    )
    .await;
    assert_eq!(status, 201, "force sends another: {v}");

    // A Mac that checked out can't be wiped through MDM any more.
    let out = SimMac::dict(&[
        ("MessageType", Value::String("CheckOut".into())),
        ("Topic", Value::String(mac.topic.clone())),
        ("UDID", Value::String(mac.udid.clone())),
    ]);
    assert_eq!(mac.checkin(&out).await.status, 200);
    let (status, _) = post(
        &srv,
        &path,
        json!({"confirm_serial": mac.serial, "force": true}),
    )
    .await;
    assert_eq!(status, 409);
    srv.stop().await;
}

async fn cancel_wipe_before_and_after_delivery(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let path = format!("/api/v1/devices/{}/wipe", mac.udid);
    let (status, _) = srv.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 404, "nothing to cancel");
    let (_, v) = post(&srv, &path, json!({"confirm_serial": mac.serial})).await;
    let uuid = v["command_uuid"].as_str().expect("uuid").to_string();
    let (status, v) = srv.api(Method::DELETE, &path, None).await;
    assert_eq!(
        (status, v["canceled"].clone()),
        (200, json!([mac.udid])),
        "{v}"
    );
    assert!(
        mac.idle().await.body.is_empty(),
        "canceled wipe never reaches the Mac"
    );
    let (_, dev) = srv
        .api(Method::GET, &format!("/api/v1/devices/{}", mac.udid), None)
        .await;
    assert_eq!(dev["lock_wipe"]["wipe"]["status"], json!("Canceled"));
    assert_eq!(dev["lock_wipe"]["wipe"]["command_uuid"], json!(uuid));

    // A canceled wipe does not block a new one; once delivered it can't be canceled.
    let (status, _) = post(&srv, &path, json!({"confirm_serial": mac.serial})).await;
    assert_eq!(status, 201);
    assert!(mac.idle().await.command().is_some());
    let (status, v) = srv.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("already delivered at"),
        "{v}"
    );
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "device.wipe.cancel")
    );
    srv.stop().await;
}

async fn cancel_races_delivery_with_one_winner(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let path = format!("/api/v1/devices/{}/wipe", mac.udid);
    let (mut canceled, mut delivered) = (0, 0);
    for _ in 0..12 {
        let (status, v) = post(
            &srv,
            &path,
            json!({"confirm_serial": mac.serial, "force": true}),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        let uuid = v["command_uuid"].as_str().expect("uuid").to_string();
        let (cancel, fetch) = tokio::join!(srv.api(Method::DELETE, &path, None), mac.idle());
        let got = fetch.command().map(|c| c.0);
        match cancel.0 {
            200 => {
                assert_ne!(
                    got.as_deref(),
                    Some(uuid.as_str()),
                    "canceled AND delivered"
                );
                canceled += 1;
            }
            409 => {
                assert_eq!(
                    got.as_deref(),
                    Some(uuid.as_str()),
                    "refused cancel but not delivered"
                );
                delivered += 1;
                // Settle it so the next round starts clean.
                mac.report(&uuid, "Acknowledged", &[]).await;
            }
            other => panic!("cancel answered {other}: {}", cancel.1),
        }
    }
    assert_eq!(canceled + delivered, 12);
    srv.stop().await;
}

async fn pins_survive_delete_and_reenrollment_and_every_reveal_is_audited(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let (_, lock) = post(
        &srv,
        &format!("/api/v1/devices/{}/lock", mac.udid),
        json!({}),
    )
    .await;
    let lock_pin = lock["pin"].as_str().expect("pin").to_string();
    let (_, wipe) = post(
        &srv,
        &format!("/api/v1/devices/{}/wipe", mac.udid),
        json!({"confirm_serial": mac.serial}),
    )
    .await;
    let wipe_pin = wipe["pin"].as_str().expect("pin").to_string();
    assert!(mac.idle().await.command().is_some());

    // The admin deletes the device; the Mac comes back after the wipe under a new UDID.
    let (status, _) = srv
        .api(
            Method::DELETE,
            &format!("/api/v1/devices/{}", mac.udid),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let mut reborn = srv.mac();
    reborn.serial = mac.serial.clone();
    reborn.enroll().await;

    let (status, v) = srv
        .api(
            Method::GET,
            &format!(
                "/api/v1/unlock-pins?serial={}&reason=user%20at%20desk",
                mac.serial
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let pins: Vec<(String, String)> = v["pins"]
        .as_array()
        .expect("pins")
        .iter()
        .map(|p| {
            (
                p["request_type"].as_str().unwrap_or("").to_string(),
                p["pin"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        pins,
        vec![
            ("EraseDevice".to_string(), wipe_pin.clone()),
            ("DeviceLock".to_string(), lock_pin)
        ]
    );
    assert_eq!(v["pins"][0]["udid"], json!(mac.udid));
    // The lock was delivered (urgent commands: FIFO), the wipe not yet.
    assert_eq!(
        (
            v["pins"][1]["status"].clone(),
            v["pins"][0]["status"].clone()
        ),
        (json!("Sent"), json!("Pending")),
        "state kept after the device was deleted"
    );
    let (_, by_udid) = srv
        .api(
            Method::GET,
            &format!("/api/v1/unlock-pins?udid={}", mac.udid),
            None,
        )
        .await;
    assert_eq!(by_udid["pins"].as_array().map(Vec::len), Some(2));
    let (status, _) = srv.api(Method::GET, "/api/v1/unlock-pins", None).await;
    assert_eq!(status, 400, "a filter is required");

    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    let entries = audit["entries"].as_array().expect("entries");
    // Newest first: the earlier reveal (by serial, with a reason) is the last one.
    let reveal = entries
        .iter()
        .rev()
        .find(|e| e["action"] == "pin.reveal")
        .expect("reveal audited");
    assert_eq!(reveal["actor"], json!("admin"));
    assert_eq!(reveal["target"], json!(mac.serial));
    assert_eq!(reveal["detail"]["reason"], json!("user at desk"));
    for action in ["device.lock", "device.wipe", "device.delete"] {
        assert!(
            entries.iter().any(|e| e["action"] == action),
            "{action} audited"
        );
    }
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "pin.reveal")
            .count(),
        2
    );
    srv.stop().await;
}

async fn no_pin_in_plaintext_in_the_database(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    let pin = "839275";
    let (status, _) = post(
        &srv,
        &format!("/api/v1/devices/{}/lock", mac.udid),
        json!({"pin": pin}),
    )
    .await;
    assert_eq!(status, 201);
    // Delivered and acknowledged: the command went through every table it touches.
    let (uuid, _, _) = mac.idle().await.command().expect("lock");
    mac.report(&uuid, "Acknowledged", &[]).await;
    let hex_pin: String = pin.bytes().map(|b| format!("{b:02x}")).collect();

    let dump = srv.database_dump().await;
    assert!(!dump.is_empty());
    let contains = |needle: &[u8]| dump.windows(needle.len()).any(|w| w == needle);
    // The dump holds the lock's rows (the escrowed PIN's is keyed by the command).
    assert!(contains(uuid.as_bytes()), "the dump misses the lock's rows");
    assert!(!contains(pin.as_bytes()), "PIN in plaintext");
    assert!(!contains(hex_pin.as_bytes()), "PIN bytes in a bytea column");
    assert!(
        !contains(b"<key>PIN</key>"),
        "a command plist with the PIN stored unsealed"
    );
    assert!(
        contains(b"DeviceLock"),
        "the dump really holds the lock's records"
    );
    srv.stop().await;
}
