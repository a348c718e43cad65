//! Inventory: parts stored with their times, partial DeviceInformation answers kept, apps
//! replaced and found by one indexed query, the change log, the sweep's paging and claims,
//! rows gone with their device.

use super::fixtures::*;
use crate::filter::Op;
use crate::protocol::inventory::{App, DeviceInformation, SecurityInfo};
use crate::store::groups::FactCondition;
use crate::store::inventory::{AppQuery, InventoryPart, InventoryUpdate, UserQuery};
use crate::store::*;
use serde_json::json;

fn device_info(os: &str, serial: &str) -> InventoryPart {
    InventoryPart::DeviceInformation {
        facts: Box::new(DeviceInformation {
            os_version: Some(os.into()),
            serial_number: Some(serial.into()),
            model: Some("Mac14,2".into()),
            is_supervised: Some(true),
            capacity_gb: Some(494.38),
            ..DeviceInformation::default()
        }),
        json: json!({"OSVersion": os, "SerialNumber": serial, "HostName": "mac.local"}),
    }
}

fn update(device: &str, part: InventoryPart, now: i64) -> InventoryUpdate {
    InventoryUpdate {
        device_id: device.into(),
        part,
        now,
        next_due_at: now + 1000,
    }
}

fn app(bundle: &str, name: &str, version: &str) -> App {
    App {
        bundle_id: Some(bundle.into()),
        name: name.into(),
        short_version: Some(version.into()),
        version: None,
        bundle_size: Some(1),
    }
}

pub(super) async fn inventory_parts_are_stored_with_their_times(s: &dyn Store) {
    enroll(s, "A", 1).await;
    assert!(s.inventory("A").await.unwrap().is_none());
    s.save_inventory(&update("A", device_info("15.1", "SN-A"), 10))
        .await
        .unwrap();
    // An admin's DeviceInformation asking one key keeps what it did not ask.
    let partial = InventoryPart::DeviceInformation {
        facts: Box::new(DeviceInformation {
            device_name: Some("Renamed".into()),
            ..DeviceInformation::default()
        }),
        json: json!({"DeviceName": "Renamed"}),
    };
    s.save_inventory(&update("A", partial, 20)).await.unwrap();
    let sec = InventoryPart::Security {
        facts: SecurityInfo {
            filevault_enabled: Some(true),
            firewall_enabled: Some(false),
            secure_boot_level: Some("full".into()),
            ..SecurityInfo::default()
        },
        json: r#"{"FDE_Enabled":true}"#.into(),
    };
    s.save_inventory(&update("A", sec, 30)).await.unwrap();
    let users = InventoryPart::Users {
        count: 2,
        logged_in: vec!["alice".into()],
        json: "[]".into(),
    };
    s.save_inventory(&update("A", users, 40)).await.unwrap();
    let row = s.inventory("A").await.unwrap().expect("a row");
    assert_eq!(row.os_version.as_deref(), Some("15.1"));
    assert_eq!(row.device_name.as_deref(), Some("Renamed"));
    assert_eq!(row.is_supervised, Some(true));
    assert_eq!(row.capacity_gb, Some(494.38));
    assert_eq!(row.device_info_at, Some(20));
    let answer: serde_json::Value =
        serde_json::from_str(row.device_info_json.as_deref().unwrap_or("")).unwrap();
    assert_eq!(answer["HostName"], "mac.local");
    assert_eq!(answer["DeviceName"], "Renamed");
    assert_eq!(row.filevault_enabled, Some(true));
    assert_eq!(row.firewall_enabled, Some(false));
    assert_eq!(row.secure_boot_level.as_deref(), Some("full"));
    assert_eq!(row.security_at, Some(30));
    assert_eq!(row.logged_in_users.as_deref(), Some("alice"));
    assert_eq!(row.users_at, Some(40));
    assert_eq!(row.apps_at, None);
    assert_eq!(row.next_due_at, Some(1040));

    // User channels, for the console user.
    assert!(s.token_update(&token("A:U1", "A", 50)).await.unwrap());
    let channels = s.user_channels("A").await.unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].user_short_name.as_deref(), Some("alice"));

    // Gone with the device.
    assert!(s.delete_device("A").await.unwrap());
    assert!(s.inventory("A").await.unwrap().is_none());
}

pub(super) async fn inventory_apps_are_replaced_and_found_by_version(s: &dyn Store) {
    enroll(s, "A", 1).await;
    enroll(s, "B", 1).await;
    enroll(s, "C", 1).await;
    let many: Vec<App> = (0..1200)
        .map(|i| app(&format!("com.example.a{i:04}"), &format!("App {i}"), "1.0"))
        .collect();
    let apps = |list: Vec<App>| InventoryPart::Applications {
        json: "[]".into(),
        apps: list,
    };
    s.save_inventory(&update("A", apps(many), 10))
        .await
        .unwrap();
    assert_eq!(s.inventory_apps("A").await.unwrap().len(), 1200);
    s.save_inventory(&update(
        "A",
        apps(vec![app("com.microsoft.Excel", "Microsoft Excel", "16.78")]),
        20,
    ))
    .await
    .unwrap();
    s.save_inventory(&update(
        "B",
        apps(vec![
            app("com.microsoft.Excel", "Microsoft Excel", "16.100"),
            App {
                bundle_id: None,
                name: "Set Info".into(),
                short_version: None,
                version: None,
                bundle_size: None,
            },
        ]),
        20,
    ))
    .await
    .unwrap();
    let a = s.inventory_apps("A").await.unwrap();
    assert_eq!(a.len(), 1, "replaced, not added");
    assert_eq!(s.inventory("A").await.unwrap().unwrap().app_count, Some(1));
    let q = |text: &str, contains: bool, versions: &[(Op, &str)]| AppQuery {
        text: text.into(),
        contains,
        versions: versions.iter().map(|(o, v)| (*o, v.to_string())).collect(),
    };
    // The lookup, and the scan's condition (`EXISTS`, its negation: every other device, C
    // with no inventory included) agree on every query.
    let found = |q: AppQuery| async move {
        let found = s.devices_with_app(&q, None).await.unwrap();
        let scan = |present| {
            let c = [FactCondition::App {
                query: q.clone(),
                present,
            }];
            async move {
                let rows = s.device_facts(None, 10, &c).await.unwrap();
                rows.into_iter().map(|f| f.udid).collect::<Vec<_>>()
            }
        };
        assert_eq!(scan(true).await, found, "{q:?}");
        let others: Vec<String> = ["A", "B", "C"]
            .into_iter()
            .filter(|u| !found.iter().any(|f| f == u))
            .map(String::from)
            .collect();
        assert_eq!(scan(false).await, others, "{q:?}");
        found
    };
    // 16.78 < 16.80 < 16.100: versions, not text; by bundle ID or name, ignoring case.
    assert_eq!(
        found(q("com.microsoft.excel", false, &[(Op::Lt, "16.80")])).await,
        ["A"]
    );
    assert_eq!(
        found(q("Microsoft Excel", false, &[(Op::Ge, "16.80")])).await,
        ["B"]
    );
    assert_eq!(
        found(q(
            "com.microsoft.Excel",
            false,
            &[(Op::Gt, "16.5"), (Op::Le, "16.78")]
        ))
        .await,
        ["A"]
    );
    assert_eq!(
        found(q("com.microsoft.Excel", false, &[(Op::Eq, "16.78.0")])).await,
        ["A"]
    );
    assert_eq!(found(q("microsoft excel", false, &[])).await, ["A", "B"]);
    assert_eq!(found(q("set info", false, &[])).await, ["B"]);
    assert!(found(q("Excel", false, &[])).await.is_empty());
    // Substrings, with LIKE's wildcards taken literally.
    assert_eq!(found(q("EXCEL", true, &[])).await, ["A", "B"]);
    assert!(found(q("e%l", true, &[])).await.is_empty());
    assert!(found(q("_", true, &[])).await.is_empty());
    // Only among the devices asked about.
    let b = ["B".to_string()];
    assert_eq!(
        s.devices_with_app(&q("microsoft excel", false, &[]), Some(&b))
            .await
            .unwrap(),
        ["B"]
    );
}

pub(super) async fn console_users_are_found_by_channel_or_user_list(s: &dyn Store) {
    enroll(s, "A", 1).await;
    enroll(s, "B", 1).await;
    enroll(s, "C", 1).await;
    // A: a user channel (its TokenUpdate's names); B: UserList says two users are logged in.
    let mut user = token("A:USER-1", "A", 2);
    user.user_short_name = Some("ana".into());
    user.user_long_name = Some("Ana Lima".into());
    assert!(s.token_update(&user).await.unwrap());
    s.save_inventory(&update(
        "B",
        InventoryPart::Users {
            count: 3,
            logged_in: vec!["bo".into(), "cy_x".into()],
            json: "[]".into(),
        },
        3,
    ))
    .await
    .unwrap();
    let q = |text: &str, contains: bool| UserQuery {
        text: text.into(),
        contains,
    };
    let found = |q: UserQuery| async move { s.devices_with_console_user(&q, None).await.unwrap() };
    assert_eq!(found(q("ANA", false)).await, ["A"]);
    assert_eq!(found(q("ana lima", false)).await, ["A"]);
    assert_eq!(found(q("bo", false)).await, ["B"]);
    assert_eq!(found(q("cy_x", false)).await, ["B"]);
    // A whole name, not part of one; `_` is literal.
    assert!(found(q("b", false)).await.is_empty());
    assert!(found(q("cyax", false)).await.is_empty());
    assert_eq!(found(q("lim", true)).await, ["A"]);
    assert_eq!(found(q("a", true)).await, ["A"]);
    let c = ["C".to_string(), "B".to_string()];
    assert_eq!(
        s.devices_with_console_user(&q("bo", false), Some(&c))
            .await
            .unwrap(),
        ["B"]
    );
}

pub(super) async fn inventory_changes_are_logged_for_facts_people_care_about(s: &dyn Store) {
    enroll(s, "A", 1).await;
    enroll(s, "A2", 1).await;
    // First sight is no change.
    let first = s
        .save_inventory(&update("A", device_info("14.6", "SN-1"), 10))
        .await
        .unwrap();
    assert!(first.is_empty());
    let fv = |on: bool| InventoryPart::Security {
        facts: SecurityInfo {
            filevault_enabled: Some(on),
            ..SecurityInfo::default()
        },
        json: "{}".into(),
    };
    s.save_inventory(&update("A", fv(false), 11)).await.unwrap();
    s.save_inventory(&update("A", device_info("14.6", "SN-1"), 12))
        .await
        .unwrap();
    let upgraded = s
        .save_inventory(&update("A", device_info("15.1", "SN-1"), 20))
        .await
        .unwrap();
    assert_eq!(upgraded.len(), 1);
    s.save_inventory(&update("A", fv(true), 30)).await.unwrap();
    let log = s.inventory_changes("A", 10).await.unwrap();
    let entries: Vec<(&str, Option<&str>, Option<&str>)> = log
        .iter()
        .map(|c| {
            (
                c.field.as_str(),
                c.old_value.as_deref(),
                c.new_value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("filevault_enabled", Some("off"), Some("on")),
            ("os_version", Some("14.6"), Some("15.1")),
        ]
    );
    assert!(
        log.iter()
            .all(|c| c.serial_number.as_deref() == Some("SN-1"))
    );
    // The same serial on another UDID: the Mac re-enrolled under a new one.
    let moved = s
        .save_inventory(&update("A2", device_info("15.1", "SN-1"), 40))
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].field, "udid");
    assert_eq!(moved[0].old_value.as_deref(), Some("A"));
    assert_eq!(moved[0].new_value.as_deref(), Some("A2"));
    // ... once.
    let again = s
        .save_inventory(&update("A2", device_info("15.1", "SN-1"), 50))
        .await
        .unwrap();
    assert!(again.is_empty());
    // The log outlives the device.
    assert!(s.delete_device("A").await.unwrap());
    assert_eq!(s.inventory_changes("A", 10).await.unwrap().len(), 2);
}

pub(super) async fn inventory_sweep_pages_through_due_macs_and_claims_them(s: &dyn Store) {
    for i in 0..25 {
        enroll(s, &format!("M{i:02}"), 1).await;
    }
    // A user channel is not a Mac to sweep; a checked-out Mac is not asked.
    assert!(s.token_update(&token("M00:U1", "M00", 2)).await.unwrap());
    s.check_out("M24", 3).await.unwrap();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = s.devices_due_for_inventory(100, &after, 10).await.unwrap();
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        after = last.clone();
        seen.extend(page);
    }
    assert_eq!(seen.len(), 24);
    assert!(!seen.contains(&"M24".to_string()));
    assert!(!seen.iter().any(|d| d.contains(':')));
    // Claimed with their next time: not due before it.
    let due: Vec<(String, i64)> = seen
        .iter()
        .enumerate()
        .map(|(i, d)| (d.clone(), 200 + i as i64))
        .collect();
    s.mark_inventory_requested(&due, 100).await.unwrap();
    assert!(
        s.devices_due_for_inventory(150, "", 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.devices_due_for_inventory(202, "", 100).await.unwrap(),
        ["M00", "M01", "M02"]
    );
    let row = s.inventory("M01").await.unwrap().unwrap();
    assert_eq!((row.requested_at, row.next_due_at), (Some(100), Some(201)));
    // An answer moves the next time on.
    s.save_inventory(&update("M00", device_info("15.1", "SN-M00"), 210))
        .await
        .unwrap();
    assert!(
        !s.devices_due_for_inventory(1000, "", 100)
            .await
            .unwrap()
            .contains(&"M00".to_string())
    );
}
