//! Recovery Lock passwords: escrowed with their SetRecoveryLock, verified or failed, superseded,
//! and never gone.

use super::fixtures::*;
use crate::store::recovery_lock::{
    RecoveryLockEscrow, RecoveryLockKind, RecoveryLockQueued, RecoveryLockState,
};
use crate::store::*;

fn escrow(uuid: &str, device_id: &str, kind: RecoveryLockKind, now: i64) -> RecoveryLockEscrow {
    RecoveryLockEscrow {
        command_uuid: uuid.into(),
        device_id: device_id.into(),
        serial_number: Some(format!("SN-{device_id}")),
        kind,
        password_sealed: format!("sealed-{uuid}").into_bytes(),
        issued_by: "otto".into(),
        now,
    }
}

fn set_cmd(uuid: &str, now: i64) -> NewCommand {
    NewCommand {
        request_type: "SetRecoveryLock".into(),
        payload_sealed: true,
        ..cmd(uuid, PRIORITY_NORMAL, now)
    }
}

fn verify_cmd(uuid: &str, now: i64) -> NewCommand {
    NewCommand {
        request_type: "VerifyRecoveryLock".into(),
        payload_sealed: true,
        ..cmd(uuid, PRIORITY_NORMAL, now)
    }
}

async fn queue(
    s: &dyn Store,
    uuid: &str,
    device_id: &str,
    kind: RecoveryLockKind,
    now: i64,
) -> RecoveryLockQueued {
    s.enqueue_recovery_lock(&set_cmd(uuid, now), &escrow(uuid, device_id, kind, now))
        .await
        .unwrap()
}

async fn states(s: &dyn Store, device_id: &str) -> Vec<(String, RecoveryLockState)> {
    s.recovery_lock_passwords(&PinFilter::udid(device_id))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.command_uuid, r.state))
        .collect()
}

pub(super) async fn recovery_lock_escrow_follows_set_verify_and_supersede(s: &dyn Store) {
    use RecoveryLockState::*;
    enroll(s, "A", 1).await;
    assert_eq!(
        queue(s, "S1", "A", RecoveryLockKind::Set, 2).await,
        RecoveryLockQueued::Queued
    );
    // A second change before the Mac took the first is refused, nothing written.
    assert_eq!(
        queue(s, "S1b", "A", RecoveryLockKind::Set, 2).await,
        RecoveryLockQueued::ChangeInFlight("S1".into())
    );
    assert!(s.command("S1b").await.unwrap().is_none());
    let rec = s
        .recovery_lock_passwords(&PinFilter::serial("SN-A"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            rec.kind,
            rec.state,
            rec.queue_status,
            rec.password_sealed.as_slice()
        ),
        (
            RecoveryLockKind::Set,
            Pending,
            Some(QueueStatus::Pending),
            &b"sealed-S1"[..]
        )
    );
    assert_eq!(rec.issued_by, "otto");

    // Delivered and acknowledged: the verification is queued with the acknowledgement, once.
    assert_eq!(next(&idle(s, "A", 3).await), Some("S1"));
    answer(s, "A", "S1", ResultStatus::Acknowledged, 4).await;
    assert!(
        s.recovery_lock_acknowledged("S1", Some(&verify_cmd("V1", 4)), 4)
            .await
            .unwrap()
    );
    assert!(
        !s.recovery_lock_acknowledged("S1", Some(&verify_cmd("V1b", 4)), 4)
            .await
            .unwrap(),
        "a second acknowledgement queues nothing"
    );
    assert!(s.command("V1b").await.unwrap().is_none());
    assert_eq!(next(&idle(s, "A", 5).await), Some("V1"));
    let by_verify = s
        .recovery_lock_of_command("V1")
        .await
        .unwrap()
        .expect("found by its verification");
    assert_eq!(
        (
            by_verify.command_uuid.as_str(),
            by_verify.acknowledged_at,
            by_verify.verify_command_uuid.as_deref()
        ),
        ("S1", Some(4), Some("V1"))
    );
    assert!(
        s.recovery_lock_settled("S1", Verified, None, 6)
            .await
            .unwrap()
    );
    assert!(
        !s.recovery_lock_settled("S1", Failed, Some("late"), 7)
            .await
            .unwrap(),
        "only a pending escrow settles"
    );

    // A rotation that the Mac refuses fails alone; one it takes supersedes the old password.
    assert_eq!(
        queue(s, "S2", "A", RecoveryLockKind::Set, 8).await,
        RecoveryLockQueued::Queued,
        "the first change was acknowledged: no longer in flight"
    );
    assert!(
        s.recovery_lock_settled("S2", Failed, Some("wrong current password"), 9)
            .await
            .unwrap()
    );
    assert_eq!(
        queue(s, "S3", "A", RecoveryLockKind::Set, 10).await,
        RecoveryLockQueued::Queued,
        "a failed change is not in flight"
    );
    s.recovery_lock_acknowledged("S3", Some(&verify_cmd("V3", 11)), 11)
        .await
        .unwrap();
    s.recovery_lock_settled("S3", Verified, None, 12)
        .await
        .unwrap();
    assert_eq!(
        states(s, "A").await,
        vec![
            ("S3".to_string(), Verified),
            ("S2".to_string(), Failed),
            ("S1".to_string(), Superseded),
        ]
    );
    let failed = s.recovery_lock_of_command("S2").await.unwrap().unwrap();
    assert_eq!(
        (failed.failure.as_deref(), failed.settled_at),
        (Some("wrong current password"), Some(9))
    );

    // A clear is escrowed like a set, and nothing that removes the device removes a password.
    assert_eq!(
        queue(s, "C1", "A", RecoveryLockKind::Clear, 13).await,
        RecoveryLockQueued::Queued
    );
    s.check_out("A", 14).await.unwrap();
    assert!(s.delete_device("A").await.unwrap());
    let after = s
        .recovery_lock_passwords(&PinFilter::serial("SN-A"))
        .await
        .unwrap();
    assert_eq!(after.len(), 4);
    assert_eq!(
        (after[0].kind, after[0].queue_status),
        (RecoveryLockKind::Clear, None)
    );
    assert_eq!(after[1].password_sealed, b"sealed-S3".to_vec());
}

pub(super) async fn recovery_lock_escrow_needs_an_enrolled_device_and_is_atomic(s: &dyn Store) {
    assert_eq!(
        queue(s, "S0", "ghost", RecoveryLockKind::Set, 1).await,
        RecoveryLockQueued::NotEnrolled
    );
    enroll(s, "B", 2).await;
    s.check_out("B", 3).await.unwrap();
    assert_eq!(
        queue(s, "S1", "B", RecoveryLockKind::Set, 4).await,
        RecoveryLockQueued::NotEnrolled,
        "a checked-out Mac would never get it"
    );
    assert!(
        s.recovery_lock_passwords(&PinFilter::udid("B"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.command("S1").await.unwrap().is_none(), "nothing queued");
    assert!(s.recovery_lock_of_command("S1").await.unwrap().is_none());
}

pub(super) async fn concurrent_recovery_lock_changes_queue_one(s: &dyn Store) {
    enroll(s, "C", 1).await;
    for round in 0..5 {
        let (p, q) = (format!("P{round}"), format!("Q{round}"));
        let (a, b) = tokio::join!(
            queue(s, &p, "C", RecoveryLockKind::Set, 2),
            queue(s, &q, "C", RecoveryLockKind::Set, 2)
        );
        let queued = [&a, &b]
            .iter()
            .filter(|r| ***r == RecoveryLockQueued::Queued)
            .count();
        assert_eq!(queued, 1, "round {round}: {a:?} {b:?}");
        // Settle the one that won, so the next round starts free.
        let won = if a == RecoveryLockQueued::Queued {
            &p
        } else {
            &q
        };
        s.recovery_lock_settled(won, RecoveryLockState::Failed, None, 3)
            .await
            .unwrap();
    }
}
