//! FileVault escrow storage: one escrow key pair per generation (the first stored wins a
//! race), keys found by serial across UDIDs and kept after the device is deleted, a new key
//! superseding the current ones in the same transaction (never an undecryptable one), and a
//! rotation finishing once, proving the key that unlocked it.

use super::fixtures::*;
use crate::store::filevault::{
    EscrowKeyRecord, FileVaultKeyRecord, KeyFilter, KeyState, RotationRecord,
};
use crate::store::*;

fn escrow(id: &str) -> EscrowKeyRecord {
    EscrowKeyRecord {
        generation: 1,
        id: id.into(),
        cert_der: vec![0x30, 1],
        key_sealed: vec![9, 9],
        created_at: 5,
    }
}

fn key(id: &str, udid: &str, serial: Option<&str>, state: KeyState, at: i64) -> FileVaultKeyRecord {
    FileVaultKeyRecord {
        id: id.into(),
        device_id: udid.into(),
        serial_number: serial.map(str::to_string),
        state: state.as_str().into(),
        key_sealed: (state != KeyState::Undecryptable).then(|| vec![1, 2, 3]),
        envelope_sealed: vec![4, 5],
        envelope_sha256: format!("sha-{id}"),
        source: "SecurityInfo".into(),
        command_uuid: None,
        escrow_key_id: Some("E1".into()),
        received_at: at,
        last_reported_at: at,
        verified_at: None,
        superseded_at: None,
    }
}

fn serial(s: &str) -> KeyFilter {
    KeyFilter {
        serial: Some(s.into()),
        udid: None,
    }
}

fn ids(keys: &[FileVaultKeyRecord]) -> Vec<(&str, Option<i64>)> {
    keys.iter()
        .map(|k| (k.id.as_str(), k.superseded_at))
        .collect()
}

pub(super) async fn filevault_keys_are_kept_superseded_and_found_by_serial(s: &dyn Store) {
    // The escrow key pair: the first of a generation stays.
    assert!(s.filevault_escrow_keys().await.unwrap().is_empty());
    assert!(s.add_filevault_escrow_key(&escrow("E1")).await.unwrap());
    assert!(!s.add_filevault_escrow_key(&escrow("E2")).await.unwrap());
    let kept = s.filevault_escrow_keys().await.unwrap();
    assert_eq!(kept, vec![escrow("E1")]);

    enroll(s, "U1", 1).await;
    s.add_filevault_key(&key("K1", "U1", Some("SN"), KeyState::Escrowed, 10), true)
        .await
        .unwrap();
    // Garbage supersedes nothing, and is never superseded.
    s.add_filevault_key(
        &key("G", "U1", Some("SN"), KeyState::Undecryptable, 20),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&s.filevault_keys(&serial("SN")).await.unwrap()),
        [("G", None), ("K1", None)]
    );
    // The Mac re-enrolled under a new UDID and sent a new key: the old one is superseded.
    s.add_filevault_key(&key("K2", "U2", Some("SN"), KeyState::Escrowed, 30), true)
        .await
        .unwrap();
    assert_eq!(
        ids(&s.filevault_keys(&serial("SN")).await.unwrap()),
        [("K2", None), ("G", None), ("K1", Some(30))]
    );
    // By UDID: only what that UDID sent; neither: nothing.
    let by_udid = s
        .filevault_keys(&KeyFilter {
            serial: None,
            udid: Some("U1".into()),
        })
        .await
        .unwrap();
    assert_eq!(ids(&by_udid), [("G", None), ("K1", Some(30))]);
    assert!(
        s.filevault_keys(&KeyFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    // A Mac that never said its serial is named by its UDID.
    s.add_filevault_key(&key("N1", "U3", None, KeyState::Escrowed, 40), true)
        .await
        .unwrap();
    s.add_filevault_key(&key("N2", "U3", None, KeyState::Unexpected, 50), true)
        .await
        .unwrap();
    let u3 = KeyFilter {
        serial: None,
        udid: Some("U3".into()),
    };
    assert_eq!(
        ids(&s.filevault_keys(&u3).await.unwrap()),
        [("N2", None), ("N1", Some(50))]
    );
    assert_eq!(
        ids(&s.filevault_keys(&serial("SN")).await.unwrap()).len(),
        3,
        "other Macs' keys untouched"
    );

    s.filevault_key_reported("K2", 60).await.unwrap();
    let k2 = s.filevault_keys(&serial("SN")).await.unwrap().remove(0);
    assert_eq!((k2.received_at, k2.last_reported_at), (30, 60));

    // Deleting the device keeps every key.
    assert!(s.delete_device("U1").await.unwrap());
    assert_eq!(s.filevault_keys(&serial("SN")).await.unwrap().len(), 3);
}

pub(super) async fn a_rotation_finishes_once_and_proves_its_key(s: &dyn Store) {
    s.add_filevault_key(&key("K1", "U1", Some("SN"), KeyState::Escrowed, 10), true)
        .await
        .unwrap();
    let r = RotationRecord {
        command_uuid: "C1".into(),
        device_id: "U1".into(),
        serial_number: Some("SN".into()),
        key_id: "K1".into(),
        requested_by: "admin".into(),
        state: "pending".into(),
        error: None,
        created_at: 20,
        finished_at: None,
    };
    s.add_filevault_rotation(&r).await.unwrap();
    assert_eq!(s.filevault_rotation("C1").await.unwrap(), Some(r.clone()));
    assert_eq!(s.filevault_rotation("C9").await.unwrap(), None);
    assert!(
        s.finish_filevault_rotation("C1", true, None, 30)
            .await
            .unwrap()
    );
    assert!(
        !s.finish_filevault_rotation("C1", false, Some("late"), 40)
            .await
            .unwrap()
    );
    let done = s.filevault_rotations("U1").await.unwrap();
    assert_eq!(
        (
            done[0].state.as_str(),
            done[0].finished_at,
            done[0].error.as_deref()
        ),
        ("rotated", Some(30), None)
    );
    let k1 = s.filevault_keys(&serial("SN")).await.unwrap().remove(0);
    assert_eq!(k1.verified_at, Some(30));
    // A failed one proves nothing.
    let r2 = RotationRecord {
        command_uuid: "C2".into(),
        created_at: 50,
        ..r
    };
    s.add_filevault_rotation(&r2).await.unwrap();
    assert!(
        s.finish_filevault_rotation(
            "C2",
            false,
            Some("The unlock credential is incorrect. (12080)"),
            60
        )
        .await
        .unwrap()
    );
    let all = s.filevault_rotations("U1").await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.state.as_str()).collect::<Vec<_>>(),
        ["failed", "rotated"]
    );
    let k1 = s.filevault_keys(&serial("SN")).await.unwrap().remove(0);
    assert_eq!(k1.verified_at, Some(30));
}

pub(super) async fn filevault_asks_are_due_in_order_and_go_with_the_device(s: &dyn Store) {
    enroll(s, "U1", 1).await;
    enroll(s, "U2", 1).await;
    assert!(
        !s.set_filevault_ask("GONE", 0, 5).await.unwrap(),
        "no device, no ask"
    );
    assert!(s.set_filevault_ask("U2", 0, 20).await.unwrap());
    assert!(s.set_filevault_ask("U1", 0, 10).await.unwrap());
    assert_eq!(s.filevault_ask("U1").await.unwrap(), Some((0, 10)));
    assert!(s.filevault_asks_due(9, 10).await.unwrap().is_empty());
    assert_eq!(
        s.filevault_asks_due(20, 10).await.unwrap(),
        [("U1".to_string(), 0), ("U2".to_string(), 0)]
    );
    assert_eq!(s.filevault_asks_due(20, 1).await.unwrap().len(), 1);
    // Rescheduled in place.
    assert!(s.set_filevault_ask("U1", 1, 100).await.unwrap());
    assert_eq!(
        s.filevault_asks_due(50, 10).await.unwrap(),
        [("U2".to_string(), 0)]
    );
    s.clear_filevault_ask("U2").await.unwrap();
    assert!(s.filevault_asks_due(50, 10).await.unwrap().is_empty());
    assert!(s.delete_device("U1").await.unwrap());
    assert_eq!(s.filevault_ask("U1").await.unwrap(), None);
}

pub(super) async fn rotations_after_a_reveal_keep_the_first_schedule(s: &dyn Store) {
    enroll(s, "U1", 1).await;
    assert!(!s.schedule_filevault_rotation("GONE", 5).await.unwrap());
    assert!(s.schedule_filevault_rotation("U1", 10).await.unwrap());
    assert!(
        !s.schedule_filevault_rotation("U1", 99).await.unwrap(),
        "the first stands"
    );
    assert!(s.filevault_rotations_due(9, 10).await.unwrap().is_empty());
    assert_eq!(s.filevault_rotations_due(10, 10).await.unwrap(), ["U1"]);
    s.clear_filevault_rotation_due("U1").await.unwrap();
    assert!(s.filevault_rotations_due(100, 10).await.unwrap().is_empty());
}
