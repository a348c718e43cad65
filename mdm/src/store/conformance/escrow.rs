//! Escrowed secrets: unlock PINs queued with their lock/wipe command, bootstrap tokens.

use super::fixtures::*;
use crate::store::*;

fn escrow(uuid: &str, device_id: &str, request_type: &str, now: i64) -> PinEscrowRecord {
    PinEscrowRecord {
        command_uuid: uuid.into(),
        device_id: device_id.into(),
        serial_number: Some(format!("SN-{device_id}")),
        request_type: request_type.into(),
        pin_sealed: format!("sealed-{uuid}").into_bytes(),
        issued_by: "admin".into(),
        now,
    }
}

fn lock_cmd(uuid: &str, now: i64) -> NewCommand {
    NewCommand {
        request_type: "DeviceLock".into(),
        ..cmd(uuid, PRIORITY_URGENT, now)
    }
}

pub(super) async fn escrowed_pin_follows_its_command_and_outlives_the_device(s: &dyn Store) {
    enroll(s, "A", 1).await;
    enqueue(s, "inventory", PRIORITY_NORMAL, 2, &["A"]).await;
    assert!(
        s.enqueue_escrowed(&lock_cmd("L1", 3), &escrow("L1", "A", "DeviceLock", 3))
            .await
            .unwrap()
    );
    let by_serial = PinFilter {
        serial: Some("SN-A".into()),
        udid: None,
    };
    let pins = s.escrowed_pins(&by_serial).await.unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(
        (pins[0].status, pins[0].pin_sealed.as_slice()),
        (QueueStatus::Pending, &b"sealed-L1"[..])
    );

    // Urgent: the lock jumps the inventory backlog; delivery and result show on the PIN record.
    assert_eq!(next(&idle(s, "A", 4).await), Some("L1"));
    assert_eq!(
        s.escrowed_pins(&by_serial).await.unwrap()[0].delivered_at,
        Some(4)
    );
    answer(s, "A", "L1", ResultStatus::Acknowledged, 5).await;
    let pin = s.escrowed_pins(&by_serial).await.unwrap().remove(0);
    assert_eq!(
        (pin.status, pin.result_at),
        (QueueStatus::Acknowledged, Some(5))
    );

    // Nothing that removes the device removes the PIN; its state is kept as it was.
    s.check_out("A", 6).await.unwrap();
    s.authenticate(&auth("A", "cert-A", 7)).await.unwrap();
    assert!(s.delete_device("A").await.unwrap());
    let pins = s.escrowed_pins(&by_serial).await.unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(
        (pins[0].status, pins[0].delivered_at),
        (QueueStatus::Acknowledged, Some(4))
    );
    let by_udid = PinFilter {
        serial: None,
        udid: Some("A".into()),
    };
    assert_eq!(s.escrowed_pins(&by_udid).await.unwrap().len(), 1);
    let nobody = PinFilter {
        serial: Some("SN-Z".into()),
        udid: None,
    };
    assert!(s.escrowed_pins(&nobody).await.unwrap().is_empty());
}

pub(super) async fn escrow_needs_an_enrolled_device_and_is_atomic(s: &dyn Store) {
    assert!(
        !s.enqueue_escrowed(&lock_cmd("L0", 1), &escrow("L0", "ghost", "DeviceLock", 1))
            .await
            .unwrap()
    );
    enroll(s, "B", 2).await;
    s.check_out("B", 3).await.unwrap();
    assert!(
        !s.enqueue_escrowed(&lock_cmd("L1", 4), &escrow("L1", "B", "DeviceLock", 4))
            .await
            .unwrap()
    );
    let any = PinFilter {
        serial: None,
        udid: Some("B".into()),
    };
    assert!(
        s.escrowed_pins(&any).await.unwrap().is_empty(),
        "refused lock left a PIN"
    );
    assert!(
        s.command("L1").await.unwrap().is_none(),
        "refused lock left a command"
    );

    enroll(s, "C", 5).await;
    assert!(
        s.enqueue_escrowed(&lock_cmd("W1", 6), &escrow("W1", "C", "EraseDevice", 6))
            .await
            .unwrap()
    );
    assert!(
        s.enqueue_escrowed(&lock_cmd("W2", 7), &escrow("W2", "C", "EraseDevice", 7))
            .await
            .unwrap()
    );
    let pins = s
        .escrowed_pins(&PinFilter {
            serial: None,
            udid: Some("C".into()),
        })
        .await
        .unwrap();
    let order: Vec<&str> = pins.iter().map(|p| p.command_uuid.as_str()).collect();
    assert_eq!(order, vec!["W2", "W1"], "newest first");
    let canceled = s.cancel_command("W2", 8).await.unwrap();
    assert_eq!(canceled.canceled, vec!["C".to_string()]);
    let pins = s
        .escrowed_pins(&PinFilter {
            serial: None,
            udid: Some("C".into()),
        })
        .await
        .unwrap();
    assert_eq!(pins[0].status, QueueStatus::Canceled);
}

pub(super) async fn bootstrap_token_is_append_only_and_clearable(s: &dyn Store) {
    assert_eq!(s.bootstrap_token("A").await.unwrap(), None);
    s.set_bootstrap_token("A", Some(b"one"), 1).await.unwrap();
    s.set_bootstrap_token("B", Some(b"other"), 1).await.unwrap();
    assert_eq!(
        s.bootstrap_token("A").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    s.set_bootstrap_token("A", Some(b"two"), 2).await.unwrap();
    assert_eq!(
        s.bootstrap_token("A").await.unwrap().as_deref(),
        Some(&b"two"[..])
    );
    s.set_bootstrap_token("A", None, 3).await.unwrap();
    assert_eq!(s.bootstrap_token("A").await.unwrap(), None);
    s.set_bootstrap_token("A", Some(b"three"), 3).await.unwrap();
    assert_eq!(
        s.bootstrap_token("A").await.unwrap().as_deref(),
        Some(&b"three"[..])
    );
    assert_eq!(
        s.bootstrap_token("B").await.unwrap().as_deref(),
        Some(&b"other"[..])
    );
}
