//! The command loop: priority and FIFO, `NotNow` sessions, re-delivery, results, enqueue to
//! many targets, cancel (and its race with delivery), device facts stored with a report.

use super::fixtures::*;
use crate::store::*;

pub(super) async fn urgent_commands_first_then_fifo(s: &dyn Store) {
    enroll(s, "A", 10).await;
    enqueue(s, "n1", PRIORITY_NORMAL, 11, &["A"]).await;
    enqueue(s, "n2", PRIORITY_NORMAL, 12, &["A"]).await;
    enqueue(s, "u1", PRIORITY_URGENT, 13, &["A"]).await;

    let o = idle(s, "A", 20).await;
    let delivered = o.next.clone().unwrap();
    assert_eq!(delivered.command_uuid, "u1");
    assert_eq!(delivered.request_type, "DeviceInformation");
    assert_eq!(delivered.payload, b"payload-u1");
    let o = answer(s, "A", "u1", ResultStatus::Acknowledged, 21).await;
    assert!(!o.unknown_command);
    assert_eq!(next(&o), Some("n1"));
    assert_eq!(
        next(&answer(s, "A", "n1", ResultStatus::Error, 22).await),
        Some("n2")
    );
    let o = answer(s, "A", "n2", ResultStatus::CommandFormatError, 23).await;
    assert_eq!(next(&o), None);

    let u1 = entry(s, "u1", "A").await;
    assert_eq!(u1.status, QueueStatus::Acknowledged);
    assert_eq!(u1.priority, PRIORITY_URGENT);
    assert_eq!(u1.delivered_at, Some(20));
    assert_eq!(u1.delivery_count, 1);
    assert_eq!(u1.result_at, Some(21));
    assert_eq!(u1.result.as_deref(), Some(&b"result-u1-21"[..]));
    assert_eq!(entry(s, "n1", "A").await.status, QueueStatus::Error);
    assert_eq!(
        entry(s, "n2", "A").await.status,
        QueueStatus::CommandFormatError
    );
    // All within a minute of the TokenUpdate at 10: not rewritten (`LAST_SEEN_GRANULARITY_MS`).
    assert_eq!(s.device("A").await.unwrap().unwrap().last_seen_at, Some(10));
}

/// A report rewrites `last_seen_at` only once the stored value is a minute old
/// (`rows::LAST_SEEN_GRANULARITY_MS`): the check-in hot path leaves the enrollment row alone,
/// and the value lags the truth by less than a minute. A `NotNow` still waits for the next
/// session when neither the `Idle` nor anything after it wrote the row.
pub(super) async fn last_seen_is_written_at_most_once_a_minute(s: &dyn Store) {
    const MINUTE: i64 = 60_000;
    let seen = |id: &'static str| async move {
        let d = s.device("A").await.unwrap().unwrap();
        if id == "A" {
            d.last_seen_at
        } else {
            d.user_channels
                .iter()
                .find(|u| u.enrollment_id == id)
                .unwrap()
                .last_seen_at
        }
    };
    enroll(s, "A", 1_000).await;
    assert!(s.token_update(&token("A:U", "A", 1_000)).await.unwrap());
    enqueue(s, "c1", PRIORITY_NORMAL, 1_001, &["A"]).await;
    enqueue(s, "c2", PRIORITY_NORMAL, 1_002, &["A"]).await;

    assert_eq!(next(&idle(s, "A", 2_000).await), Some("c1"));
    assert_eq!(seen("A").await, Some(1_000));
    // NotNow in a session whose Idle wrote nothing: c1 is not handed out again in it.
    let o = answer(s, "A", "c1", ResultStatus::NotNow, 2_001).await;
    assert_eq!(next(&o), Some("c2"));
    let o = answer(s, "A", "c2", ResultStatus::Acknowledged, 1_000 + MINUTE - 1).await;
    assert_eq!(next(&o), None);
    assert_eq!(
        seen("A").await,
        Some(1_000),
        "less than a minute: not written"
    );

    // A minute after the stored value: written.
    assert_eq!(next(&idle(s, "A", 1_000 + MINUTE).await), Some("c1"));
    assert_eq!(seen("A").await, Some(1_000 + MINUTE));
    let o = answer(
        s,
        "A",
        "c1",
        ResultStatus::Acknowledged,
        1_000 + MINUTE + 30_000,
    )
    .await;
    assert!(!o.unknown_command && next(&o).is_none());
    assert_eq!(seen("A").await, Some(1_000 + MINUTE));
    assert_eq!(entry(s, "c1", "A").await.status, QueueStatus::Acknowledged);

    // The user channel has its own value, by the same rule.
    idle(s, "A:U", 2_000).await;
    assert_eq!(seen("A:U").await, Some(1_000));
    idle(s, "A:U", 1_000 + 2 * MINUTE).await;
    assert_eq!(seen("A:U").await, Some(1_000 + 2 * MINUTE));
    assert_eq!(seen("A").await, Some(1_000 + MINUTE));
}

pub(super) async fn not_now_waits_for_the_next_session(s: &dyn Store) {
    enroll(s, "A", 10).await;
    enqueue(s, "c1", PRIORITY_NORMAL, 11, &["A"]).await;
    enqueue(s, "c2", PRIORITY_NORMAL, 12, &["A"]).await;

    assert_eq!(next(&idle(s, "A", 20).await), Some("c1"));
    // NotNow: the same session goes on with other work, never c1 again.
    let o = answer(s, "A", "c1", ResultStatus::NotNow, 21).await;
    assert!(!o.unknown_command);
    assert_eq!(next(&o), Some("c2"));
    assert_eq!(
        next(&answer(s, "A", "c2", ResultStatus::Acknowledged, 22).await),
        None
    );
    let c1 = entry(s, "c1", "A").await;
    assert_eq!(c1.status, QueueStatus::NotNow);
    assert_eq!((c1.not_now_count, c1.first_not_now_at), (1, Some(21)));

    // The Mac's next connection starts with Idle: c1 comes back.
    assert_eq!(next(&idle(s, "A", 30).await), Some("c1"));
    let c1 = entry(s, "c1", "A").await;
    assert_eq!(c1.status, QueueStatus::Sent);
    assert_eq!((c1.delivered_at, c1.delivery_count), (Some(20), 2));

    assert_eq!(
        next(&answer(s, "A", "c1", ResultStatus::NotNow, 31).await),
        None
    );
    let c1 = entry(s, "c1", "A").await;
    assert_eq!((c1.not_now_count, c1.first_not_now_at), (2, Some(21)));
    assert_eq!(next(&idle(s, "A", 40).await), Some("c1"));
    assert_eq!(
        next(&answer(s, "A", "c1", ResultStatus::Acknowledged, 41).await),
        None
    );
    assert_eq!(entry(s, "c1", "A").await.status, QueueStatus::Acknowledged);
}

pub(super) async fn sent_command_is_handed_out_again_on_next_idle(s: &dyn Store) {
    enroll(s, "A", 10).await;
    enqueue(s, "c1", PRIORITY_NORMAL, 11, &["A"]).await;
    assert_eq!(next(&idle(s, "A", 20).await), Some("c1"));
    // The device never answered (connection dropped): it gets it again.
    assert_eq!(next(&idle(s, "A", 30).await), Some("c1"));
    let c1 = entry(s, "c1", "A").await;
    assert_eq!(c1.status, QueueStatus::Sent);
    assert_eq!((c1.delivered_at, c1.delivery_count), (Some(20), 2));
}

pub(super) async fn result_for_unknown_or_closed_command_is_flagged(s: &dyn Store) {
    enroll(s, "A", 10).await;
    let o = answer(s, "A", "nope", ResultStatus::Acknowledged, 11).await;
    assert!(o.unknown_command && !o.not_enrolled);
    assert_eq!(o.stored_request_type, None);

    enqueue(s, "c1", PRIORITY_NORMAL, 12, &["A"]).await;
    assert_eq!(next(&idle(s, "A", 13).await), Some("c1"));
    let stored = answer(s, "A", "c1", ResultStatus::Acknowledged, 14).await;
    assert!(!stored.unknown_command);
    // The stored result names its command's request type (what result observers filter on).
    assert_eq!(
        stored.stored_request_type.as_deref(),
        Some("DeviceInformation")
    );
    // A second result for a finished command does not overwrite the first.
    let again = answer(s, "A", "c1", ResultStatus::Error, 15).await;
    assert!(again.unknown_command && again.stored_request_type.is_none());
    let c1 = entry(s, "c1", "A").await;
    assert_eq!(
        (c1.status, c1.result_at),
        (QueueStatus::Acknowledged, Some(14))
    );
}

pub(super) async fn disabled_or_unknown_enrollment_gets_no_commands(s: &dyn Store) {
    s.authenticate(&auth("A", "cert-A", 10)).await.unwrap();
    enqueue(s, "c1", PRIORITY_NORMAL, 11, &["A"]).await;
    let o = idle(s, "A", 12).await;
    assert!(o.not_enrolled && o.next.is_none());
    let o = answer(s, "A", "c1", ResultStatus::Acknowledged, 13).await;
    assert!(o.not_enrolled && !o.unknown_command);
    let c1 = entry(s, "c1", "A").await;
    assert_eq!((c1.status, c1.delivery_count), (QueueStatus::Pending, 0));
    let d = s.device("A").await.unwrap().unwrap();
    assert_eq!(d.last_seen_at, None, "a refused report touches nothing");

    assert!(idle(s, "ghost", 14).await.not_enrolled);
    // Enrolling releases the queue.
    assert!(s.token_update(&token("A", "A", 15)).await.unwrap());
    assert_eq!(next(&idle(s, "A", 16).await), Some("c1"));
}

pub(super) async fn enqueue_reports_unknown_targets_in_order(s: &dyn Store) {
    enroll(s, "A", 10).await;
    enroll(s, "B", 10).await;
    let targets: Vec<String> = ["B", "nope", "A", "A:U", "A"].map(String::from).to_vec();
    let res = s
        .enqueue(&cmd("c1", PRIORITY_NORMAL, 11), &targets)
        .await
        .unwrap();
    let got: Vec<(&str, bool)> = res
        .iter()
        .map(|r| (r.enrollment_id.as_str(), r.queued))
        .collect();
    assert_eq!(
        got,
        [
            ("B", true),
            ("nope", false),
            ("A", true),
            ("A:U", false),
            ("A", true)
        ]
    );
    let view = s.command("c1").await.unwrap().unwrap();
    assert_eq!(view.request_type, "DeviceInformation");
    assert_eq!(view.payload, b"payload-c1");
    assert_eq!(view.created_at, 11);
    let eids: Vec<&str> = view
        .entries
        .iter()
        .map(|e| e.enrollment_id.as_str())
        .collect();
    assert_eq!(eids, ["A", "B"]);
    assert!(
        view.entries
            .iter()
            .all(|e| e.status == QueueStatus::Pending)
    );
    assert!(s.command("other").await.unwrap().is_none());
}

pub(super) async fn enqueue_to_many_targets(s: &dyn Store) {
    let n = 300;
    let mut targets = Vec::new();
    for i in 0..n {
        let id = format!("D{i:04}");
        enroll(s, &id, 10).await;
        targets.push(id);
    }
    // Queued a chunk at a time (`ENQUEUE_CHUNK`, 128 in tests): an unknown target and a
    // target named twice, in different chunks, answer as in one statement.
    targets.insert(200, "missing".into());
    targets.push("D0005".into());
    let res = s
        .enqueue(&cmd("bulk", PRIORITY_NORMAL, 11), &targets)
        .await
        .unwrap();
    assert_eq!(res.len(), n + 2);
    assert_eq!(res.iter().filter(|r| r.queued).count(), n + 1);
    assert_eq!(
        (res[200].enrollment_id.as_str(), res[200].queued),
        ("missing", false)
    );
    assert!(res.last().unwrap().queued);
    assert_eq!(s.command("bulk").await.unwrap().unwrap().entries.len(), n);
    assert_eq!(next(&idle(s, "D0123", 12).await), Some("bulk"));
    assert_eq!(next(&idle(s, "D0299", 12).await), Some("bulk"));
}

pub(super) async fn cancel_only_pending_entries(s: &dyn Store) {
    enroll(s, "A", 10).await;
    enroll(s, "B", 10).await;
    enqueue(s, "c1", PRIORITY_NORMAL, 11, &["A", "B"]).await;
    assert_eq!(next(&idle(s, "A", 12).await), Some("c1"));

    let out = s.cancel_command("c1", 13).await.unwrap();
    assert_eq!(out.canceled, ["B"]);
    assert_eq!(out.already_delivered, [("A".to_owned(), Some(12))]);
    assert_eq!(next(&idle(s, "B", 14).await), None);
    let b = entry(s, "c1", "B").await;
    assert_eq!((b.status, b.canceled_at), (QueueStatus::Canceled, Some(13)));
    assert_eq!(entry(s, "c1", "A").await.status, QueueStatus::Sent);

    // Canceling again changes nothing.
    let again = s.cancel_command("c1", 15).await.unwrap();
    assert!(again.canceled.is_empty());
    assert_eq!(again.already_delivered, [("A".to_owned(), Some(12))]);
    let unknown = s.cancel_command("nope", 15).await.unwrap();
    assert_eq!(unknown, CancelOutcome::default());
}

pub(super) async fn cancel_races_delivery_with_exactly_one_winner(s: &dyn Store) {
    enroll(s, "A", 10).await;
    let (mut canceled, mut delivered) = (0, 0);
    for round in 0..40i64 {
        let uuid = format!("race-{round}");
        let t = 100 + round * 10;
        enqueue(s, &uuid, PRIORITY_NORMAL, t, &["A"]).await;
        let (cancel, report) = tokio::join!(s.cancel_command(&uuid, t + 1), async {
            idle(s, "A", t + 2).await
        });
        let cancel = cancel.unwrap();
        let handed_out = next(&report) == Some(uuid.as_str());
        let won_cancel = cancel.canceled == ["A"];
        assert!(
            handed_out != won_cancel,
            "round {round}: {cancel:?} {report:?}"
        );
        let e = entry(s, &uuid, "A").await;
        if won_cancel {
            canceled += 1;
            assert!(cancel.already_delivered.is_empty());
            assert_eq!((e.status, e.delivery_count), (QueueStatus::Canceled, 0));
        } else {
            delivered += 1;
            assert_eq!(cancel.already_delivered, [("A".to_owned(), Some(t + 2))]);
            assert_eq!(e.status, QueueStatus::Sent);
            answer(s, "A", &uuid, ResultStatus::Acknowledged, t + 3).await;
        }
    }
    eprintln!("race: {canceled} canceled, {delivered} delivered");
}

pub(super) async fn device_commands_newest_first(s: &dyn Store) {
    enroll(s, "A", 10).await;
    assert!(s.token_update(&token("A:U", "A", 10)).await.unwrap());
    enroll(s, "B", 10).await;
    enqueue(s, "c1", PRIORITY_NORMAL, 11, &["A"]).await;
    enqueue(s, "c2", PRIORITY_URGENT, 12, &["A", "B"]).await;
    enqueue(s, "c3", PRIORITY_NORMAL, 12, &["A:U"]).await;
    let list = s.device_commands("A", 10).await.unwrap();
    let got: Vec<(&str, &str)> = list
        .iter()
        .map(|e| (e.command_uuid.as_str(), e.enrollment_id.as_str()))
        .collect();
    assert_eq!(got, [("c3", "A:U"), ("c2", "A"), ("c1", "A")]);
    assert_eq!(s.device_commands("A", 1).await.unwrap().len(), 1);
    assert!(s.device_commands("nope", 10).await.unwrap().is_empty());
}

pub(super) async fn device_information_facts_land_on_the_device(s: &dyn Store) {
    enroll(s, "D", 1).await;
    enqueue(s, "info", PRIORITY_NORMAL, 2, &["D"]).await;
    idle(s, "D", 3).await;
    let rec = ReportRecord {
        device_facts: Some(DeviceFacts {
            pin_required_for_lock: Some(true),
            pin_required_for_erase: Some(false),
            is_apple_silicon: None,
            os_version: Some("15.2".into()),
            build_version: None,
            device_name: None,
        }),
        enrollment_id: "D".into(),
        result: Some(CommandResultRecord {
            command_uuid: "info".into(),
            status: ResultStatus::Acknowledged,
            raw: b"r".to_vec(),
        }),
        now: 4,
    };
    s.command_report(&rec).await.unwrap();
    let d = s.device("D").await.unwrap().expect("device");
    assert_eq!(
        (
            d.pin_required_for_lock,
            d.pin_required_for_erase,
            d.is_apple_silicon
        ),
        (Some(true), Some(false), None)
    );
    assert_eq!(d.os_version.as_deref(), Some("15.2"));
    assert_eq!(
        d.build_version.as_deref(),
        Some("24B83"),
        "unreported facts are kept"
    );
}
