//! DEP helpers shared by the end-to-end tests: a server wired to the DEP simulator, a link with
//! the simulator's token, a sync, and a typical enrollment profile.

use crate::{Backend, TestServer};
use reqwest::Method;
use russet_dep::sim::{DepSimulator, SimConfig};
use serde_json::{Value, json};

pub const PUBLIC_URL: &str = "https://mdm.example.org:8443";

/// A server on `backend` wired to a simulator of `devices` Macs.
pub async fn setup(backend: Backend, devices: usize) -> (TestServer, DepSimulator) {
    setup_with(backend, devices, &[], false).await
}

/// A link whose token is the simulator's JSON token (what `dep-sim --write-token` writes).
pub async fn linked(srv: &TestServer, sim: &DepSimulator, name: &str) {
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/links",
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let token: Value = serde_json::from_str(&sim.tokens().to_json()).expect("token JSON");
    let (status, v) = srv
        .api(
            Method::PUT,
            &format!("/api/v1/dep/links/{name}/token"),
            Some(token),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["connection"]["ok"], json!(true), "{v}");
}

/// [`linked`], one sync, and the serial numbers the simulator holds.
pub async fn linked_and_synced(srv: &TestServer, sim: &DepSimulator, name: &str) -> Vec<String> {
    linked(srv, sim, name).await;
    sync(srv, name).await;
    sim.devices()
        .iter()
        .map(|d| d.serial_number.clone())
        .collect()
}

pub async fn sync(srv: &TestServer, link: &str) -> Value {
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/dep/sync",
            Some(json!({"link": link})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["reports"][0].clone()
}

pub async fn dep_device(srv: &TestServer, serial: &str) -> Value {
    let (status, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/dep/devices?serial={serial}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["devices"][0].clone()
}

pub async fn count_devices(srv: &TestServer, query: &str) -> usize {
    let mut total = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/dep/devices?limit=1000{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, v) = srv.api(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{v}");
        total += v["devices"].as_array().map_or(0, Vec::len);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return total,
        }
    }
}

pub fn corp_profile() -> Value {
    json!({
        "profile_name": "Corp Macs",
        "is_supervised": true,
        "is_mandatory": true,
        "is_mdm_removable": false,
        "await_device_configured": true,
        "org_magic": "corp-1",
        "department": "IT",
        "support_phone_number": "+1 408 555 1010",
        "support_email_address": "support@example.org",
        "language": "en",
        "region": "US",
        "skip_setup_items": ["AppleID", "Siri", "Privacy"]
    })
}

/// Like [`setup`], with extra `russet serve` flags, and HTTPS on the device listener if `tls`.
pub async fn setup_with(
    backend: Backend,
    devices: usize,
    extra: &[&str],
    tls: bool,
) -> (TestServer, DepSimulator) {
    let sim = DepSimulator::start(SimConfig {
        devices,
        ..Default::default()
    })
    .await
    .expect("simulator starts");
    let mut args = vec!["--dep-url", sim.url(), "--public-url", PUBLIC_URL];
    args.extend_from_slice(extra);
    let srv = if tls {
        TestServer::start_tls(backend, &args).await
    } else {
        TestServer::start_with(backend, &args).await
    };
    (srv, sim)
}
