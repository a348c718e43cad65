//! DEP: links, tokens and cursors, record upserts, auto-assignment, the sync leader lock.

use super::fixtures::*;
use crate::dep::DepStatus;
use crate::store::dep::{
    DepAssignOutcome, DepDeviceFilter, DepDeviceRecord, DepDeviceUpsert, DepFacts, DepLinkRecord,
    DepProfileRecord, DepTokenUpdate,
};
use crate::store::*;

/// Russet's status of a record, from the facts the store returns.
fn status(d: &DepDeviceRecord) -> &'static str {
    DepStatus::of_record(d).as_str()
}

fn dep_link(name: &str, now: i64) -> DepLinkRecord {
    DepLinkRecord::new(
        name,
        "-----BEGIN CERTIFICATE-----".into(),
        b"sealed-key".to_vec(),
        now,
    )
}

fn dep_row(serial: &str, link: &str, op: Option<&str>, op_date_ms: Option<i64>) -> DepDeviceUpsert {
    DepDeviceUpsert {
        serial_number: serial.into(),
        link: link.into(),
        model: Some(format!("model-{}", op_date_ms.unwrap_or(0))),
        op_type: op.map(str::to_owned),
        op_date_ms,
        op_date: op_date_ms.map(|ms| ms.to_string()),
        deleted: op == Some("deleted"),
        auto_assign: true,
        now: 1,
        ..Default::default()
    }
}

async fn dep_statuses(s: &dyn Store, link: Option<&str>) -> Vec<(String, String)> {
    s.dep_devices(&DepDeviceFilter {
        link: link.map(str::to_owned),
        limit: 1000,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_iter()
    .map(|d| (status(&d).to_string(), d.serial_number))
    .map(|(st, serial)| (serial, st))
    .collect()
}

pub(super) async fn dep_link_token_cursor_and_call_outcomes(s: &dyn Store) {
    assert!(s.insert_dep_link(&dep_link("corp", 1)).await.unwrap());
    assert!(!s.insert_dep_link(&dep_link("corp", 2)).await.unwrap());
    assert!(s.dep_link("nope").await.unwrap().is_none());
    assert_eq!(s.dep_cursor("corp").await.unwrap(), None);
    s.save_dep_cursor("corp", "CURSOR-1", 3).await.unwrap();
    assert_eq!(
        s.dep_cursor("corp").await.unwrap().as_deref(),
        Some("CURSOR-1")
    );
    let update = DepTokenUpdate {
        token_sealed: b"sealed-token".to_vec(),
        token_expiry: 99,
        server_uuid: Some("UUID-1".into()),
        server_name: Some("Russet".into()),
        org_name: Some("Example".into()),
        admin_id: Some("admin@example.org".into()),
        account_json: "{}".into(),
        now: 4,
    };
    assert!(s.set_dep_link_token("corp", &update).await.unwrap());
    assert!(!s.set_dep_link_token("nope", &update).await.unwrap());
    s.record_dep_call("corp", Some(("T_C_NOT_SIGNED", "HTTP 403")), 5)
        .await
        .unwrap();
    let l = s.dep_link("corp").await.unwrap().unwrap();
    assert_eq!(l.token_sealed.as_deref(), Some(&b"sealed-token"[..]));
    assert_eq!(l.server_uuid.as_deref(), Some("UUID-1"));
    assert_eq!(l.last_error_code.as_deref(), Some("T_C_NOT_SIGNED"));
    s.record_dep_call("corp", None, 6).await.unwrap();
    s.set_dep_default_profile("corp", Some("P1"), 7)
        .await
        .unwrap();
    let l = s.dep_link("corp").await.unwrap().unwrap();
    assert_eq!((l.last_error_code, l.last_ok_at), (None, Some(6)));
    assert_eq!(l.default_profile_uuid.as_deref(), Some("P1"));
    // A new key pair drops the token and the cursor (they belong to the old key).
    assert!(
        s.replace_dep_link_key("corp", "PEM2", b"k2", 8)
            .await
            .unwrap()
    );
    let l = s.dep_link("corp").await.unwrap().unwrap();
    assert_eq!(
        (l.token_sealed, l.cursor, l.cert_pem.as_str()),
        (None, None, "PEM2")
    );
    s.insert_dep_profile(&DepProfileRecord {
        profile_uuid: "P1".into(),
        link: "corp".into(),
        profile_name: "Macs".into(),
        profile_json: "{}".into(),
        created_at: 9,
        setup_sealed: Some(vec![1, 2, 3]),
    })
    .await
    .unwrap();
    assert_eq!(s.dep_profiles(Some("corp")).await.unwrap().len(), 1);
    let p1 = s.dep_profile("P1").await.unwrap().unwrap();
    assert_eq!(p1.setup_sealed, Some(vec![1, 2, 3]));
    assert!(s.dep_profiles(Some("other")).await.unwrap().is_empty());
    assert_eq!(
        s.dep_profile("P1").await.unwrap().unwrap().profile_name,
        "Macs"
    );
    assert_eq!(s.dep_links().await.unwrap().len(), 1);
}

pub(super) async fn dep_upsert_is_idempotent_and_latest_op_date_wins(s: &dyn Store) {
    s.insert_dep_link(&dep_link("corp", 1)).await.unwrap();
    s.insert_dep_link(&dep_link("other", 1)).await.unwrap();
    let page: Vec<_> = (0..1200)
        .map(|i| dep_row(&format!("SN{i:05}"), "corp", None, None))
        .collect();
    s.upsert_dep_devices(&page).await.unwrap();
    s.upsert_dep_devices(&page).await.unwrap(); // a replayed page duplicates nothing
    let counts = s.dep_device_counts(Some("corp")).await.unwrap();
    let none = DepFacts {
        deleted: false,
        enrolled: false,
        has_profile: false,
    };
    assert_eq!(counts, vec![(none, 1200)]);
    assert_eq!(
        s.dep_known_serials(&["SN00001".into(), "NOPE".into()])
            .await
            .unwrap(),
        vec!["SN00001".to_string()]
    );

    s.upsert_dep_devices(&[dep_row("SN00001", "corp", Some("modified"), Some(200))])
        .await
        .unwrap();
    // An older record loses.
    s.upsert_dep_devices(&[dep_row("SN00001", "corp", Some("modified"), Some(100))])
        .await
        .unwrap();
    let d = s.dep_device("SN00001").await.unwrap().unwrap();
    assert_eq!(d.model.as_deref(), Some("model-200"));
    // A `deleted` from another link is not this record's; from its own link it disowns.
    s.upsert_dep_devices(&[dep_row("SN00002", "other", Some("deleted"), Some(300))])
        .await
        .unwrap();
    assert!(!s.dep_device("SN00002").await.unwrap().unwrap().deleted);
    s.upsert_dep_devices(&[dep_row("SN00002", "corp", Some("deleted"), Some(300))])
        .await
        .unwrap();
    let d = s.dep_device("SN00002").await.unwrap().unwrap();
    assert_eq!((d.deleted, status(&d)), (true, "disowned"));
    assert_eq!(
        d.model.as_deref(),
        Some("model-0"),
        "a deleted keeps the last fields"
    );

    // Enrolled: a Russet device with that serial (the fixture's serial is SN-<id>).
    s.upsert_dep_devices(&[dep_row("SN-A", "corp", None, None)])
        .await
        .unwrap();
    enroll(s, "A", 10).await;
    assert_eq!(
        status(&s.dep_device("SN-A").await.unwrap().unwrap()),
        "enrolled"
    );
    s.mark_assigned_for_test("SN00003").await;
    let st = dep_statuses(s, Some("corp")).await;
    assert_eq!(st.len(), 1000, "limit");
    let assigned = s
        .dep_devices(&DepDeviceFilter {
            facts: DepStatus::Assigned.selector(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0].serial_number, "SN00003");
    // Keyset paging covers everything exactly once.
    let mut seen = 0;
    let mut after = None;
    loop {
        let page = s
            .dep_devices(&DepDeviceFilter {
                link: Some("corp".into()),
                after: after.clone(),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        seen += page.len();
        match page.last() {
            Some(d) if page.len() == 500 => after = Some(d.serial_number.clone()),
            _ => break,
        }
    }
    assert_eq!(seen, 1201);
}

trait AssignForTest {
    async fn mark_assigned_for_test(&self, serial: &str);
}

impl AssignForTest for &dyn Store {
    async fn mark_assigned_for_test(&self, serial: &str) {
        self.record_dep_assignments(&[DepAssignOutcome {
            serial_number: serial.into(),
            profile_uuid: "P1".into(),
            status: "SUCCESS".into(),
            retry_at: None,
            settled: true,
            at: 20,
        }])
        .await
        .unwrap();
    }
}

pub(super) async fn dep_auto_assign_waits_after_failure_and_rearms_on_added(s: &dyn Store) {
    s.insert_dep_link(&dep_link("corp", 1)).await.unwrap();
    let mut no_auto = dep_row("D", "corp", None, None);
    no_auto.auto_assign = false;
    s.upsert_dep_devices(&[
        dep_row("A", "corp", Some("added"), Some(1)),
        dep_row("B", "corp", Some("modified"), Some(1)),
        dep_row("C", "corp", None, None),
        no_auto,
    ])
    .await
    .unwrap();
    assert_eq!(
        s.dep_auto_assign_due("corp", 100, 10).await.unwrap(),
        vec!["A", "B", "C"]
    );
    let outcome =
        |serial: &str, status: &str, retry_at: Option<i64>, settled: bool| DepAssignOutcome {
            serial_number: serial.into(),
            profile_uuid: "P1".into(),
            status: status.into(),
            retry_at,
            settled,
            at: 100,
        };
    s.record_dep_assignments(&[
        outcome("A", "SUCCESS", None, true),
        outcome("B", "FAILED", Some(100 + 86_400_000), false),
        outcome("C", "NOT_ACCESSIBLE", None, true),
    ])
    .await
    .unwrap();
    assert!(
        s.dep_auto_assign_due("corp", 200, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.dep_auto_assign_due("corp", 100 + 86_400_000, 10)
            .await
            .unwrap(),
        vec!["B"]
    );
    let a = s.dep_device("A").await.unwrap().unwrap();
    assert_eq!(
        (
            status(&a),
            a.profile_uuid.as_deref(),
            a.assign_status.as_deref()
        ),
        ("assigned", Some("P1"), Some("SUCCESS"))
    );
    let b = s.dep_device("B").await.unwrap().unwrap();
    assert_eq!(b.assign_status.as_deref(), Some("FAILED"));
    // A `modified` of a known device does not re-arm; leaving and coming back does.
    s.upsert_dep_devices(&[dep_row("C", "corp", Some("modified"), Some(5))])
        .await
        .unwrap();
    assert!(
        !s.dep_device("C")
            .await
            .unwrap()
            .unwrap()
            .auto_assign_pending
    );
    s.dep_mark_disowned(&["C".into()], 6).await.unwrap();
    assert_eq!(
        status(&s.dep_device("C").await.unwrap().unwrap()),
        "disowned"
    );
    s.upsert_dep_devices(&[dep_row("C", "corp", Some("added"), Some(7))])
        .await
        .unwrap();
    let c = s.dep_device("C").await.unwrap().unwrap();
    assert!(c.auto_assign_pending && !c.deleted);
    s.dep_profiles_removed(&["A".into()], 8).await.unwrap();
    let a = s.dep_device("A").await.unwrap().unwrap();
    assert_eq!(
        (status(&a), a.profile_status.as_deref()),
        ("not_assigned", Some("removed"))
    );
}

pub(super) async fn dep_sync_leader_is_exclusive_across_servers(s: &dyn Store) {
    let first = s.dep_sync_leader("corp").await.unwrap();
    assert!(first.is_some());
    let second = s.dep_sync_leader("corp").await.unwrap();
    let other_link = s.dep_sync_leader("other").await.unwrap();
    assert!(other_link.is_some());
    if s.backend() == "postgres" {
        assert!(second.is_none(), "one leader per link");
        drop(first);
        // The unlock runs on the connection's way back to the pool.
        let mut again = None;
        for _ in 0..50 {
            again = s.dep_sync_leader("corp").await.unwrap();
            if again.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(again.is_some(), "released when dropped");
    } else {
        // SQLite is one process: the DEP module serialises passes itself.
        assert!(second.is_some());
    }
}
