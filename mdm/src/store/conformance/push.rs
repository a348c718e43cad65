//! Push targets and outcomes: a command's targets read a page at a time (the fan-out to a
//! fleet never holds the fleet), and outcomes recorded in bulk.

use super::fixtures::*;
use crate::store::push::PushResultRecord;
use crate::store::*;

async fn page(s: &dyn Store, uuid: &str, after: &str, limit: u32) -> Vec<String> {
    s.push_targets_for_command(uuid, after, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.enrollment_id)
        .collect()
}

pub(super) async fn push_targets_come_in_pages_and_outcomes_are_recorded_in_bulk(s: &dyn Store) {
    for id in ["E", "B", "D", "A", "C", "F"] {
        enroll(s, id, 10).await;
    }
    enqueue(s, "c1", PRIORITY_NORMAL, 11, &["E", "B", "D", "A", "C"]).await;
    enqueue(s, "c2", PRIORITY_NORMAL, 11, &["F"]).await;
    // A's entry is answered (no longer open); D's token is dead: neither is a target.
    idle(s, "A", 12).await;
    answer(s, "A", "c1", ResultStatus::Acknowledged, 13).await;
    s.record_pushes(&[PushResultRecord {
        enrollment_id: "D".into(),
        at: 14,
        result: "Unregistered (410)".into(),
        block: Some("Unregistered (410)".into()),
    }])
    .await
    .unwrap();

    // Pages of two, in enrollment order, each after the last one read: every target once.
    assert_eq!(page(s, "c1", "", 2).await, ["B", "C"]);
    assert_eq!(page(s, "c1", "C", 2).await, ["E"]);
    assert!(page(s, "c1", "E", 2).await.is_empty());
    assert_eq!(page(s, "c1", "", 100).await, ["B", "C", "E"]);
    assert_eq!(page(s, "c2", "", 100).await, ["F"]);
    let t = &s.push_targets_for_command("c2", "", 1).await.unwrap()[0];
    assert_eq!(
        (t.push_token.as_slice(), t.push_magic.as_str()),
        (&[0xde, 0xad, 0xbe, 0xef][..], "magic")
    );

    // More outcomes than one statement records (`RECORD_CHUNK`): every one lands, a block is
    // kept until a new token, and a later success does not lift an earlier block.
    let n = crate::store::push::RECORD_CHUNK + 7;
    let mut records: Vec<PushResultRecord> = (0..n)
        .map(|i| PushResultRecord {
            enrollment_id: format!("unknown-{i}"),
            at: 20,
            result: "delivered".into(),
            block: None,
        })
        .collect();
    for (id, result, block) in [
        ("B", "delivered", None),
        ("C", "BadDeviceToken (400)", Some("BadDeviceToken (400)")),
        ("D", "delivered", None),
        ("E", "not delivered, will retry: HTTP 503", None),
    ] {
        records.push(PushResultRecord {
            enrollment_id: id.into(),
            at: 21,
            result: result.into(),
            block: block.map(str::to_string),
        });
    }
    s.record_pushes(&records).await.unwrap();
    s.record_pushes(&[]).await.unwrap();
    for (id, result, blocked) in [
        ("B", "delivered", None),
        ("C", "BadDeviceToken (400)", Some("BadDeviceToken (400)")),
        ("D", "delivered", Some("Unregistered (410)")),
        ("E", "not delivered, will retry: HTTP 503", None),
    ] {
        let d = s.device(id).await.unwrap().unwrap();
        assert_eq!(d.last_push_at, Some(21), "{id}");
        assert_eq!(d.last_push_result.as_deref(), Some(result), "{id}");
        assert_eq!(d.push_blocked.as_deref(), blocked, "{id}");
    }
    assert_eq!(page(s, "c1", "", 100).await, ["B", "E"]);
}
