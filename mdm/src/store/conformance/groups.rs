//! Groups: names unique regardless of case, static members by UDID or serial resolved when
//! read (pending until a device has them), the groups of a device, and the device facts
//! filters are evaluated on.

use super::fixtures::*;
use crate::protocol::inventory::SecurityInfo;
use crate::store::dep::DepDeviceUpsert;
use crate::store::groups::{
    DeviceFactsRow, FactCondition, GroupRecord, MemberDevice, MemberKey, MemberRow,
};
use crate::store::inventory::{InventoryPart, InventoryUpdate};
use crate::store::*;

fn group(name: &str, filter: Option<&str>, now: i64) -> GroupRecord {
    GroupRecord {
        name: name.into(),
        description: Some(format!("{name} Macs")),
        filter: filter.map(str::to_owned),
        created_at: now,
        updated_at: now,
    }
}

fn counts(groups: Vec<(GroupRecord, i64)>) -> Vec<(String, i64)> {
    groups.into_iter().map(|(g, n)| (g.name, n)).collect()
}

/// (member, UDID it names) pairs, in the store's order.
fn named(rows: &[MemberRow]) -> Vec<(MemberKey, Option<String>)> {
    rows.iter()
        .map(|r| (r.key.clone(), r.device.as_ref().map(|d| d.udid.clone())))
        .collect()
}

pub(super) async fn group_names_are_unique_regardless_of_case(s: &dyn Store) {
    assert!(s.insert_group(&group("Finance", None, 1)).await.unwrap());
    assert!(!s.insert_group(&group("Finance", None, 2)).await.unwrap());
    assert!(!s.insert_group(&group("FINANCE", None, 2)).await.unwrap());
    assert!(
        s.insert_group(&group("Old Macs", Some("os_version < 14"), 3))
            .await
            .unwrap()
    );
    assert_eq!(
        s.group("Finance").await.unwrap(),
        Some(group("Finance", None, 1))
    );
    // Lookups are exact.
    assert_eq!(s.group("finance").await.unwrap(), None);
    assert_eq!(
        counts(s.groups().await.unwrap()),
        [("Finance".into(), 0), ("Old Macs".into(), 0)]
    );
    assert_eq!(
        s.smart_groups().await.unwrap(),
        [group("Old Macs", Some("os_version < 14"), 3)]
    );

    // A change keeps the name and the creation time.
    let changed = GroupRecord {
        description: None,
        filter: Some("os_version < 15".into()),
        updated_at: 9,
        ..group("Old Macs", None, 3)
    };
    assert!(s.update_group(&changed).await.unwrap());
    assert_eq!(s.group("Old Macs").await.unwrap(), Some(changed.clone()));
    assert!(
        !s.update_group(&GroupRecord {
            name: "Nope".into(),
            ..changed
        })
        .await
        .unwrap()
    );

    assert!(s.delete_group("Finance").await.unwrap());
    assert!(!s.delete_group("Finance").await.unwrap());
    assert_eq!(s.group("Finance").await.unwrap(), None);
    // The name is free again.
    assert!(s.insert_group(&group("finance", None, 10)).await.unwrap());
}

pub(super) async fn static_members_resolve_by_udid_and_serial(s: &dyn Store) {
    enroll(s, "A", 10).await;
    enroll(s, "B", 10).await;
    assert!(s.insert_group(&group("Lab", None, 1)).await.unwrap());
    let members = [
        MemberKey::udid("A"),
        // B by serial, C only known from DEP, and a UDID Russet has not seen.
        MemberKey::serial("SN-B"),
        MemberKey::serial("SN-C"),
        MemberKey::udid("D"),
        // A second time, by serial: one member.
        MemberKey::serial("SN-A"),
    ];
    assert!(s.add_group_members("Lab", &members, 20).await.unwrap());
    // Adding again changes nothing.
    assert!(s.add_group_members("Lab", &members[..2], 21).await.unwrap());
    let rows = s.group_members("Lab").await.unwrap();
    assert_eq!(
        named(&rows),
        [
            (MemberKey::serial("SN-A"), Some("A".into())),
            (MemberKey::serial("SN-B"), Some("B".into())),
            (MemberKey::serial("SN-C"), None),
            (MemberKey::udid("A"), Some("A".into())),
            (MemberKey::udid("D"), None),
        ]
    );
    assert_eq!(
        rows[1].device,
        Some(MemberDevice {
            udid: "B".into(),
            serial_number: Some("SN-B".into()),
            device_name: Some("B's Mac".into()),
        })
    );
    // A counted once, B, and the two pending members.
    assert_eq!(counts(s.groups().await.unwrap()), [("Lab".into(), 4)]);

    // C enrolls: its serial member names it now. B comes back under a new UDID: the serial
    // names both device rows.
    s.authenticate(&auth("C", "cert-C", 30)).await.unwrap();
    let mut b2 = auth("B2", "cert-B2", 31);
    b2.serial_number = Some("SN-B".into());
    s.authenticate(&b2).await.unwrap();
    let rows = s.group_members("Lab").await.unwrap();
    assert_eq!(
        named(&rows),
        [
            (MemberKey::serial("SN-A"), Some("A".into())),
            (MemberKey::serial("SN-B"), Some("B".into())),
            (MemberKey::serial("SN-B"), Some("B2".into())),
            (MemberKey::serial("SN-C"), Some("C".into())),
            (MemberKey::udid("A"), Some("A".into())),
            (MemberKey::udid("D"), None),
        ]
    );
    assert_eq!(counts(s.groups().await.unwrap()), [("Lab".into(), 5)]);

    // The groups of a device, by its UDID and by its serial.
    assert!(s.insert_group(&group("Other", None, 2)).await.unwrap());
    assert!(
        s.add_group_members("Other", &[MemberKey::udid("B2")], 40)
            .await
            .unwrap()
    );
    assert_eq!(
        s.static_groups_of("B2", Some("SN-B")).await.unwrap(),
        ["Lab", "Other"]
    );
    assert_eq!(
        s.static_groups_of("B", Some("SN-B")).await.unwrap(),
        ["Lab"]
    );
    assert_eq!(s.static_groups_of("D", None).await.unwrap(), ["Lab"]);
    assert!(s.static_groups_of("E", None).await.unwrap().is_empty());

    // Removing counts what was there; unknown members are no error.
    let gone = s
        .remove_group_members(
            "Lab",
            &[
                MemberKey::udid("A"),
                MemberKey::serial("SN-A"),
                MemberKey::udid("nope"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(gone, 2);
    assert!(
        s.static_groups_of("A", Some("SN-A"))
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting a group takes its members; a group that is gone takes none.
    assert!(s.delete_group("Lab").await.unwrap());
    assert!(s.group_members("Lab").await.unwrap().is_empty());
    assert!(s.static_groups_of("D", None).await.unwrap().is_empty());
    assert!(
        !s.add_group_members("Lab", &[MemberKey::udid("A")], 50)
            .await
            .unwrap()
    );
    assert!(s.insert_group(&group("Lab", None, 60)).await.unwrap());
    assert!(s.group_members("Lab").await.unwrap().is_empty());
}

pub(super) async fn device_facts_page_with_enrollment_and_dep_profile(s: &dyn Store) {
    enroll(s, "A", 10).await;
    s.authenticate(&auth("B", "cert-B", 10)).await.unwrap(); // never enrolled
    enroll(s, "C", 10).await;
    s.check_out("C", 11).await.unwrap();
    s.upsert_dep_devices(&[DepDeviceUpsert {
        serial_number: "SN-A".into(),
        link: "corp".into(),
        profile_uuid: Some("PROFILE-1".into()),
        op_type: Some("added".into()),
        now: 12,
        ..Default::default()
    }])
    .await
    .unwrap();
    let report = ReportRecord {
        enrollment_id: "A".into(),
        result: None,
        device_facts: Some(DeviceFacts {
            is_apple_silicon: Some(true),
            os_version: Some("15.2".into()),
            ..Default::default()
        }),
        now: 13,
    };
    s.command_report(&report).await.unwrap();
    // Inventory's facts join in: SecurityInfo and DeviceInformation's IsSupervised.
    s.save_inventory(&InventoryUpdate {
        device_id: "A".into(),
        part: InventoryPart::Security {
            facts: SecurityInfo {
                filevault_enabled: Some(true),
                sip_enabled: Some(true),
                firewall_enabled: Some(false),
                secure_boot_level: Some("full".into()),
                ..SecurityInfo::default()
            },
            json: "{}".into(),
        },
        now: 14,
        next_due_at: 100,
    })
    .await
    .unwrap();

    let a = DeviceFactsRow {
        udid: "A".into(),
        serial_number: Some("SN-A".into()),
        model: Some("Mac14,2".into()),
        model_name: Some("MacBook Air".into()),
        product_name: Some("Mac14,2".into()),
        device_name: Some("A's Mac".into()),
        os_version: Some("15.2".into()),
        build_version: Some("24B83".into()),
        is_apple_silicon: Some(true),
        enrolled: true,
        dep_profile: Some("PROFILE-1".into()),
        filevault_enabled: Some(true),
        sip_enabled: Some(true),
        firewall_enabled: Some(false),
        secure_boot_level: Some("full".into()),
        // The report at 13 is within a minute of the TokenUpdate at 10: not rewritten
        // (`rows::LAST_SEEN_GRANULARITY_MS`).
        last_seen_at: Some(10),
        ..Default::default()
    };
    let page = s.device_facts(None, 2, &[]).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0], a);
    assert_eq!(
        (
            page[1].udid.as_str(),
            page[1].enrolled,
            page[1].dep_profile.as_deref()
        ),
        ("B", false, None)
    );
    let rest = s.device_facts(Some("B"), 2, &[]).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|f| (f.udid.as_str(), f.enrolled))
            .collect::<Vec<_>>(),
        [("C", false)]
    );
    // Conditions the database checks: text ignoring case (unreported reads as ""), booleans
    // (unreported is neither true nor false; "not" includes it).
    let ids = |rows: Vec<DeviceFactsRow>| rows.into_iter().map(|f| f.udid).collect::<Vec<_>>();
    let text = |field, value: &str, equal| FactCondition::Text {
        field,
        value: value.into(),
        equal,
    };
    let flag = |field, value, equal| FactCondition::Bool {
        field,
        value,
        equal,
    };
    let with =
        |c: Vec<FactCondition>| async move { ids(s.device_facts(None, 10, &c).await.unwrap()) };
    assert_eq!(with(vec![text("serial", "sn-a", true)]).await, ["A"]);
    assert_eq!(with(vec![text("serial", "sn-a", false)]).await, ["B", "C"]);
    assert_eq!(with(vec![text("dep_profile", "", true)]).await, ["B", "C"]);
    assert_eq!(with(vec![flag("filevault", true, true)]).await, ["A"]);
    assert!(with(vec![flag("filevault", false, true)]).await.is_empty());
    assert_eq!(with(vec![flag("filevault", true, false)]).await, ["B", "C"]);
    assert_eq!(with(vec![flag("enrolled", false, true)]).await, ["B", "C"]);
    assert_eq!(
        with(vec![flag("enrolled", true, true), text("udid", "a", true)]).await,
        ["A"]
    );
    // A field without a column is not checked here (the filter still is).
    assert_eq!(
        with(vec![text("os_version", "x", true)]).await,
        ["A", "B", "C"]
    );
    assert_eq!(
        ids(s
            .device_facts(Some("A"), 10, &[flag("enrolled", false, true)])
            .await
            .unwrap()),
        ["B", "C"]
    );
    assert_eq!(s.device_facts_of("A").await.unwrap(), Some(a));
    assert_eq!(s.device_facts_of("Z").await.unwrap(), None);

    // Devices named by UDID or serial; full views by UDID.
    let names: Vec<String> = ["A", "SN-C", "SN-Z", "Z"].map(String::from).to_vec();
    assert_eq!(
        s.devices_named(&names).await.unwrap(),
        [
            ("A".into(), Some("SN-A".into())),
            ("C".into(), Some("SN-C".into()))
        ]
    );
    let views = s
        .devices_by_ids(&["C".into(), "A".into(), "Z".into()])
        .await
        .unwrap();
    assert_eq!(
        views.iter().map(|d| d.udid.as_str()).collect::<Vec<_>>(),
        ["A", "C"]
    );
    assert_eq!(views[0], s.device("A").await.unwrap().unwrap());
}
