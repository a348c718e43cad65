//! Inventory's rules on a real (in-memory SQLite) store: the per-Mac offset spreads a fleet,
//! the sweep asks every due Mac once in bounded pages, answers are stored and a malformed one
//! is ignored.

use super::*;
use crate::secrets::SecretBox;
use crate::service::{CommandResultEvent, DeviceObserver};
use crate::store::{AuthenticateRecord, ResultStatus, TokenUpdateRecord};
use std::collections::HashMap;

#[test]
fn a_fleet_enrolled_in_one_minute_comes_back_spread_out() {
    let day = Duration::from_secs(86_400);
    let now = 1_700_000_000_000;
    let mut per_minute: HashMap<i64, usize> = HashMap::new();
    for i in 0..100_000 {
        let due = next_due_at(day, &format!("0000{i:04X}-0011223344556677"), now);
        // Within the interval ± an eighth.
        assert!(due >= now + 21 * 3_600_000 && due < now + 27 * 3_600_000);
        *per_minute.entry(due / 60_000).or_default() += 1;
    }
    // Six hours of minutes: about 280 a minute; never anything like 100,000.
    assert!(per_minute.len() > 350, "{} minutes", per_minute.len());
    let busiest = per_minute.values().max().copied().unwrap_or(0);
    assert!(busiest < 500, "{busiest} Macs due in one minute");
    // The same Mac, the same offset (on every node, after every restart).
    assert_eq!(next_due_at(day, "A", now), next_due_at(day, "A", now));
}

async fn service() -> (InventoryService, Arc<dyn Store>) {
    let store = crate::store::open("sqlite::memory:").await.expect("store");
    let vault = Arc::new(SecretBox::generate().expect("kek"));
    let core = Arc::new(MdmService::new(
        store.clone(),
        vault,
        crate::service::ServiceOptions::default(),
    ));
    (
        InventoryService::new(store.clone(), core, InventorySettings::default()),
        store,
    )
}

async fn enroll(store: &Arc<dyn Store>, udid: &str) {
    store
        .authenticate(&AuthenticateRecord {
            device_id: udid.into(),
            enrollment_type: "Device".into(),
            cert_hash: format!("cert-{udid}"),
            cert_not_after: None,
            topic: "com.apple.mgmt.External.test".into(),
            serial_number: Some(format!("SN-{udid}")),
            model: None,
            model_name: None,
            device_name: None,
            os_version: None,
            build_version: None,
            product_name: None,
            raw: Vec::new(),
            now: 1,
        })
        .await
        .expect("authenticate");
    assert!(
        store
            .token_update(&TokenUpdateRecord {
                enrollment_id: udid.into(),
                device_id: udid.into(),
                enrollment_type: "Device".into(),
                user_id: None,
                user_short_name: None,
                user_long_name: None,
                topic: "com.apple.mgmt.External.test".into(),
                token: vec![1],
                push_magic: "m".into(),
                unlock_token_sealed: None,
                awaiting_configuration: false,
                now: 1,
            })
            .await
            .expect("token update")
    );
}

#[tokio::test]
async fn the_sweep_asks_each_due_mac_once_and_answers_are_stored() {
    let (inv, store) = service().await;
    for i in 0..(PAGE as usize + 5) {
        enroll(&store, &format!("M{i:05}")).await;
    }
    assert_eq!(inv.sweep().await.expect("sweep"), PAGE as usize + 5);
    // Asked: not due again before the interval.
    assert_eq!(inv.sweep().await.expect("sweep"), 0);
    let queue = store.device_commands("M00000", 10).await.expect("queue");
    let mut types: Vec<&str> = queue.iter().map(|e| e.request_type.as_str()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "CertificateList",
            "DeviceInformation",
            "InstalledApplicationList",
            "SecurityInfo",
            "UserList"
        ]
    );

    let answer = |rt: &str, raw: &[u8]| CommandResultEvent {
        enrollment_id: "M00000".into(),
        device_id: "M00000".into(),
        command_uuid: "C".into(),
        request_type: rt.into(),
        status: ResultStatus::Acknowledged,
        raw: raw.into(),
    };
    inv.command_result(&answer(
        "SecurityInfo",
        include_bytes!("../../testdata/inventory/SecurityInfo-macOS-15.xml"),
    ))
    .await;
    // A malformed answer changes nothing and fails nothing.
    inv.command_result(&answer("SecurityInfo", b"<plist><dict></dict></plist>"))
        .await;
    inv.command_result(&answer("InstalledApplicationList", b"garbage"))
        .await;
    let row = store.inventory("M00000").await.expect("read").expect("row");
    assert_eq!(row.filevault_enabled, Some(true));
    assert!(row.security_at.is_some());
    assert_eq!(row.apps_at, None);
}

#[tokio::test]
async fn a_refresh_names_devices_by_udid_or_serial() {
    let (inv, store) = service().await;
    enroll(&store, "A").await;
    enroll(&store, "B").await;
    let out = inv
        .refresh(&["SN-A".into(), "B".into()], None, "admin")
        .await
        .expect("refresh");
    assert_eq!(out.queued, ["A", "B"]);
    assert!(matches!(
        inv.refresh(&["nope".into()], None, "admin").await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        inv.refresh(&[], None, "admin").await,
        Err(ServiceError::BadRequest(_))
    ));
}
