//! DDM: a Mac's token is stored (with its time) only when it differs; status reports merge
//! item by item and declaration by declaration unless full, which replaces; everything goes
//! with the device. One OS update per group, going with its group; an uploaded declaration
//! replaces one of its identifier and needs its group.

use super::fixtures::*;
use crate::store::ddm::{
    DdmDeclarationRecord, DeclarationStateRow, InsertOsUpdate, NewOsUpdate, PutDeclaration,
    StatusRecord,
};
use crate::store::groups::GroupRecord;
use crate::store::*;

fn state(device: &str, identifier: &str, valid: &str, active: bool) -> DeclarationStateRow {
    DeclarationStateRow {
        device_id: device.into(),
        identifier: identifier.into(),
        kind: "configurations".into(),
        server_token: "t".into(),
        valid: valid.into(),
        active,
        reasons: None,
        updated_at: 0,
    }
}

fn report(device: &str, full: bool, items: &[(&str, &str)], now: i64) -> StatusRecord {
    StatusRecord {
        device_id: device.into(),
        full,
        items: items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        errors: "[]".into(),
        declarations: Vec::new(),
        now,
    }
}

async fn items(s: &dyn Store, device: &str) -> Vec<(String, String)> {
    s.ddm_status_items(&[device.to_owned()])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.item, r.value))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

pub(super) async fn ddm_tokens_change_when_different_and_reports_merge(s: &dyn Store) {
    enroll(s, "MAC-1", 1).await;
    let one = ["MAC-1".to_owned()];
    s.set_ddm_tokens(&[("MAC-1".into(), "a".into())], 10)
        .await
        .unwrap();
    s.set_ddm_tokens(&[("MAC-1".into(), "a".into())], 20)
        .await
        .unwrap();
    let row = s.ddm_devices(&one).await.unwrap().remove(0);
    assert_eq!((row.token.as_str(), row.token_at), ("a", 10));
    s.set_ddm_tokens(&[("MAC-1".into(), "b".into())], 30)
        .await
        .unwrap();
    s.ddm_served("MAC-1", "b", 40).await.unwrap();
    let row = s.ddm_devices(&one).await.unwrap().remove(0);
    assert_eq!((row.token.as_str(), row.token_at), ("b", 30));
    assert_eq!(
        (row.served_token.as_deref(), row.served_at),
        (Some("b"), Some(40))
    );

    // Partial reports merge; a full one replaces.
    let mut r = report("MAC-1", false, &[("x", "1"), ("y", "2")], 50);
    r.declarations = vec![state("MAC-1", "c1", "valid", true)];
    s.store_ddm_status(&r).await.unwrap();
    let mut r = report("MAC-1", false, &[("y", "3")], 60);
    r.declarations = vec![state("MAC-1", "c2", "invalid", false)];
    s.store_ddm_status(&r).await.unwrap();
    assert_eq!(items(s, "MAC-1").await, pairs(&[("x", "1"), ("y", "3")]));
    let states = s.ddm_declaration_states(&one).await.unwrap();
    assert_eq!(states.len(), 2);
    assert!(!states[1].active);
    s.store_ddm_status(&report("MAC-1", true, &[("z", "4")], 70))
        .await
        .unwrap();
    assert_eq!(items(s, "MAC-1").await, pairs(&[("z", "4")]));
    assert!(s.ddm_declaration_states(&one).await.unwrap().is_empty());
    let row = s.ddm_devices(&one).await.unwrap().remove(0);
    assert_eq!(row.reported_at, Some(70));
    assert_eq!(row.token, "b", "a report keeps the token");

    // A Mac that only reported has a row whose token matches nothing.
    enroll(s, "MAC-2", 1).await;
    s.store_ddm_status(&report("MAC-2", false, &[("x", "1")], 80))
        .await
        .unwrap();
    let two = ["MAC-2".to_owned()];
    assert_eq!(s.ddm_devices(&two).await.unwrap()[0].token, "");

    // Everything goes with the device.
    assert!(s.delete_device("MAC-1").await.unwrap());
    assert!(s.ddm_devices(&one).await.unwrap().is_empty());
    assert!(items(s, "MAC-1").await.is_empty());
}

pub(super) async fn one_os_update_per_group_and_declarations_need_their_group(s: &dyn Store) {
    let g = GroupRecord {
        name: "Fleet".into(),
        description: None,
        filter: None,
        created_at: 1,
        updated_at: 1,
    };
    assert!(s.insert_group(&g).await.unwrap());
    let new = |group: &'static str, version: &'static str| NewOsUpdate {
        group_name: group,
        target_os_version: version,
        target_build_version: None,
        deadline: "2030-01-01T00:00:00",
        details_url: None,
        now: 1,
        by: "alice",
    };
    let InsertOsUpdate::Inserted(id) = s.insert_os_update(&new("Fleet", "15.2")).await.unwrap()
    else {
        panic!("inserted");
    };
    assert_eq!(
        s.insert_os_update(&new("Fleet", "15.3")).await.unwrap(),
        InsertOsUpdate::Taken(id)
    );
    assert_eq!(
        s.insert_os_update(&new("Nobody", "15.3")).await.unwrap(),
        InsertOsUpdate::NoGroup
    );
    let decl = |group: &str, payload: &str| DdmDeclarationRecord {
        identifier: "com.example.passcode".into(),
        group_name: group.into(),
        kind: "configuration".into(),
        declaration_type: "com.apple.configuration.passcode.settings".into(),
        payload: payload.into(),
        created_at: 1,
        created_by: "alice".into(),
    };
    assert_eq!(
        s.put_ddm_declaration(&decl("Nobody", "{}")).await.unwrap(),
        PutDeclaration::NoGroup
    );
    assert_eq!(
        s.put_ddm_declaration(&decl("Fleet", "{}")).await.unwrap(),
        PutDeclaration::Stored(None)
    );
    assert_eq!(
        s.put_ddm_declaration(&decl("Fleet", r#"{"MinimumLength":8}"#))
            .await
            .unwrap(),
        PutDeclaration::Stored(Some(decl("Fleet", "{}")))
    );
    assert_eq!(s.ddm_declarations().await.unwrap().len(), 1);
    // Both go with their group.
    assert!(s.delete_group("Fleet").await.unwrap());
    assert!(s.os_updates().await.unwrap().is_empty());
    assert!(s.ddm_declarations().await.unwrap().is_empty());
    assert_eq!(s.delete_os_update(id).await.unwrap(), None);
}
