//! The console's reads (issue 18): the fleet's figures counted per device channel (user
//! channels and unknown devices aside), stale by the caller's cutoff, FileVault on without a
//! current escrowed key; the audit log filtered by actor, action prefix, target and time.

use super::fixtures::*;
use crate::protocol::inventory::SecurityInfo;
use crate::store::filevault::{FileVaultKeyRecord, KeyState};
use crate::store::fleet::{AuditFilter, FleetCounts};
use crate::store::inventory::{InventoryPart, InventoryUpdate};
use crate::store::*;

async fn filevault_on(s: &dyn Store, device_id: &str) {
    s.save_inventory(&InventoryUpdate {
        device_id: device_id.into(),
        part: InventoryPart::Security {
            facts: SecurityInfo {
                filevault_enabled: Some(true),
                ..SecurityInfo::default()
            },
            json: "{}".into(),
        },
        now: 50,
        next_due_at: 100,
    })
    .await
    .unwrap();
}

fn fv_key(id: &str, device_id: &str, state: KeyState) -> FileVaultKeyRecord {
    FileVaultKeyRecord {
        id: id.into(),
        device_id: device_id.into(),
        serial_number: None,
        state: state.as_str().into(),
        key_sealed: (state != KeyState::Undecryptable).then(|| vec![1, 2, 3]),
        envelope_sealed: vec![4, 5],
        envelope_sha256: format!("sha-{id}"),
        source: "SecurityInfo".into(),
        command_uuid: None,
        escrow_key_id: Some("E1".into()),
        received_at: 60,
        last_reported_at: 60,
        verified_at: None,
        superseded_at: None,
    }
}

pub(super) async fn fleet_counts_group_device_channels(s: &dyn Store) {
    assert_eq!(s.fleet_counts(0).await.unwrap(), FleetCounts::default());
    enroll(s, "A", 10).await;
    enroll(s, "B", 20).await;
    enroll(s, "C", 30).await;
    // A user channel is not a Mac.
    assert!(s.token_update(&token("A:U", "A", 10)).await.unwrap());
    s.check_out("C", 40).await.unwrap();

    let c = s.fleet_counts(15).await.unwrap();
    assert_eq!((c.enrolled, c.unenrolled, c.stale), (2, 1, 1), "{c:?}");
    let c = s.fleet_counts(1_000).await.unwrap();
    assert_eq!(c.stale, 2, "a checked-out Mac is not stale: {c:?}");
    assert_eq!((c.failed_profiles, c.failed_profile_devices), (0, 0));

    // FileVault on: unescrowed until a key that opened is kept; an undecryptable one or a
    // superseded one does not count; a checked-out Mac is not counted.
    filevault_on(s, "A").await;
    filevault_on(s, "B").await;
    filevault_on(s, "C").await;
    assert_eq!(s.fleet_counts(0).await.unwrap().filevault_unescrowed, 2);
    s.add_filevault_key(&fv_key("k1", "A", KeyState::Undecryptable), false)
        .await
        .unwrap();
    assert_eq!(s.fleet_counts(0).await.unwrap().filevault_unescrowed, 2);
    s.add_filevault_key(&fv_key("k2", "B", KeyState::Escrowed), true)
        .await
        .unwrap();
    assert_eq!(s.fleet_counts(0).await.unwrap().filevault_unescrowed, 1);
}

fn entry(at: i64, actor: &str, action: &str, target: &str) -> AuditRecord {
    AuditRecord {
        at,
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        address: None,
        detail: serde_json::json!({}),
    }
}

pub(super) async fn audit_search_filters_newest_first(s: &dyn Store) {
    for e in [
        entry(100, "alice", "device.lock", "C02ABC"),
        entry(200, "bob", "device.wipe", "C02XYZ"),
        entry(300, "alice", "dep.sync", "*"),
        entry(400, "alice", "device_x.odd", "50%_off"),
    ] {
        s.audit_append(&e).await.unwrap();
    }
    let find = |f: AuditFilter| async move {
        s.audit_search(&AuditFilter { limit: 10, ..f })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.record.at)
            .collect::<Vec<_>>()
    };
    assert_eq!(find(AuditFilter::default()).await, [400, 300, 200, 100]);
    let actor = |a: &str| AuditFilter {
        actor: Some(a.into()),
        ..AuditFilter::default()
    };
    assert_eq!(find(actor("alice")).await, [400, 300, 100]);
    assert_eq!(find(actor("ALICE")).await, Vec::<i64>::new());
    // The action is a prefix, matched literally ('_' is no wildcard).
    let action = |a: &str| AuditFilter {
        action: Some(a.into()),
        ..AuditFilter::default()
    };
    assert_eq!(find(action("device.")).await, [200, 100]);
    assert_eq!(find(action("device_")).await, [400]);
    assert_eq!(find(action("device")).await, [400, 200, 100]);
    // The target is any part, any case; '%' is literal.
    let target = |t: &str| AuditFilter {
        target: Some(t.into()),
        ..AuditFilter::default()
    };
    assert_eq!(find(target("c02")).await, [200, 100]);
    assert_eq!(find(target("50%")).await, [400]);
    assert_eq!(find(target("%")).await, [400]);
    // Time window, combined filters, and paging by id.
    let window = AuditFilter {
        since: Some(200),
        until: Some(400),
        ..AuditFilter::default()
    };
    assert_eq!(find(window).await, [300, 200]);
    let both = AuditFilter {
        actor: Some("alice".into()),
        action: Some("device.".into()),
        ..AuditFilter::default()
    };
    assert_eq!(find(both).await, [100]);
    let first = s
        .audit_search(&AuditFilter {
            limit: 2,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let next = AuditFilter {
        before: Some(first[1].id),
        ..AuditFilter::default()
    };
    assert_eq!(find(next).await, [200, 100]);
}
