//! Two `russet serve` instances sharing one PostgreSQL database behave as one server.

use plist::Value;
use reqwest::Method;
use russet_certs::testing::DeviceIdentity;
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::json;

#[tokio::test]
#[cfg_attr(russet_skip_postgres, ignore = "RUSSET_TEST_SKIP_POSTGRES is set")]
async fn two_servers_on_one_postgres_behave_as_one() {
    let a = TestServer::start(Backend::Postgres).await;
    let b = a
        .start_sharing()
        .await
        .expect("server B")
        .expect("postgres");
    // The Mac enrolls through A…
    let mac_a = a.mac();
    mac_a.enroll().await;
    // …the admin works on B…
    let (status, dev) = b
        .api(
            Method::GET,
            &format!("/api/v1/devices/{}", mac_a.udid),
            None,
        )
        .await;
    assert_eq!((status, dev["enrolled"].clone()), (200, json!(true)));
    let uuid = b
        .enqueue(&mac_a.udid, json!({"request_type": "SecurityInfo"}))
        .await;
    let (_, lock) = b
        .api(
            Method::POST,
            &format!("/api/v1/devices/{}/lock", mac_a.udid),
            Some(json!({})),
        )
        .await;
    let pin = lock["pin"].as_str().expect("pin").to_string();
    // …and the Mac's next connection lands on B: same identity, same queue, same vault.
    let same_identity = DeviceIdentity {
        cert: mac_a.identity.cert.clone(),
        key: mac_a.identity.key.clone(),
    };
    let mut mac_b = SimMac::new(&b.device_url, same_identity);
    mac_b.udid = mac_a.udid.clone();
    let (first, rt, cmd) = mac_b.idle().await.command().expect("lock first");
    assert_eq!(rt, "DeviceLock");
    assert_eq!(
        cmd.get("PIN").and_then(Value::as_string),
        Some(pin.as_str()),
        "B opens what A's peer sealed"
    );
    assert_eq!(
        mac_b
            .report(&first, "Acknowledged", &[])
            .await
            .command()
            .map(|c| c.0),
        Some(uuid.clone())
    );
    assert!(
        mac_b
            .report(&uuid, "Acknowledged", &[])
            .await
            .body
            .is_empty()
    );
    let (_, v) = a
        .api(Method::GET, &format!("/api/v1/commands/{uuid}"), None)
        .await;
    assert_eq!(
        v["devices"][0]["status"],
        json!("Acknowledged"),
        "A sees B's result"
    );
    let (_, pins) = a
        .api(
            Method::GET,
            &format!("/api/v1/unlock-pins?udid={}", mac_a.udid),
            None,
        )
        .await;
    assert_eq!(pins["pins"][0]["pin"], json!(pin));
    b.stop().await;
    a.stop().await;
}
