//! One `Store` test suite, run against every backend.
//!
//! Each case is an `async fn(&dyn Store)`; `conformance!` instantiates it for SQLite (a fresh
//! temp file) and for PostgreSQL (a fresh database per test, created through
//! `RUSSET_TEST_DATABASE_URL` and dropped afterwards; skipped when that variable is unset).

use super::*;

// ---- fixtures ----

const TOPIC: &str = "com.apple.mgmt.External.test";

fn auth(device_id: &str, cert: &str, now: i64) -> AuthenticateRecord {
    AuthenticateRecord {
        device_id: device_id.into(),
        enrollment_type: "Device".into(),
        cert_hash: cert.into(),
        cert_not_after: Some(now + 1_000_000),
        topic: TOPIC.into(),
        serial_number: Some(format!("SN-{device_id}")),
        model: Some("Mac14,2".into()),
        model_name: Some("MacBook Air".into()),
        device_name: Some(format!("{device_id}'s Mac")),
        os_version: Some("15.1".into()),
        build_version: Some("24B83".into()),
        product_name: Some("Mac14,2".into()),
        raw: b"<plist/>".to_vec(),
        now,
    }
}

/// A TokenUpdate for the device channel (`enrollment_id == device_id`) or a user channel.
fn token(enrollment_id: &str, device_id: &str, now: i64) -> TokenUpdateRecord {
    let user = enrollment_id != device_id;
    TokenUpdateRecord {
        enrollment_id: enrollment_id.into(),
        device_id: device_id.into(),
        enrollment_type: if user { "User" } else { "Device" }.into(),
        user_id: user.then(|| "USER-GUID".into()),
        user_short_name: user.then(|| "alice".into()),
        user_long_name: user.then(|| "Alice Appleseed".into()),
        topic: TOPIC.into(),
        token: vec![0xde, 0xad, 0xbe, 0xef],
        push_magic: "magic".into(),
        unlock_token_sealed: None,
        awaiting_configuration: false,
        now,
    }
}

/// Authenticate + TokenUpdate: an enrolled device with an enabled device channel.
async fn enroll(s: &dyn Store, device_id: &str, now: i64) {
    s.authenticate(&auth(device_id, &format!("cert-{device_id}"), now))
        .await
        .unwrap();
    assert!(
        s.token_update(&token(device_id, device_id, now))
            .await
            .unwrap()
    );
}

fn cmd(uuid: &str, priority: i32, now: i64) -> NewCommand {
    NewCommand {
        command_uuid: uuid.into(),
        request_type: "DeviceInformation".into(),
        payload: format!("payload-{uuid}").into_bytes(),
        payload_sealed: false,
        priority,
        now,
    }
}

async fn enqueue(s: &dyn Store, uuid: &str, priority: i32, now: i64, targets: &[&str]) {
    let targets: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
    let res = s
        .enqueue(&cmd(uuid, priority, now), &targets)
        .await
        .unwrap();
    assert!(res.iter().all(|r| r.queued), "{res:?}");
}

async fn idle(s: &dyn Store, eid: &str, now: i64) -> ReportOutcome {
    let rec = ReportRecord {
        device_facts: None,
        enrollment_id: eid.into(),
        result: None,
        now,
    };
    s.command_report(&rec).await.unwrap()
}

async fn answer(
    s: &dyn Store,
    eid: &str,
    uuid: &str,
    status: ResultStatus,
    now: i64,
) -> ReportOutcome {
    let rec = ReportRecord {
        device_facts: None,
        enrollment_id: eid.into(),
        result: Some(CommandResultRecord {
            command_uuid: uuid.into(),
            status,
            raw: format!("result-{uuid}-{now}").into_bytes(),
        }),
        now,
    };
    s.command_report(&rec).await.unwrap()
}

fn next(o: &ReportOutcome) -> Option<&str> {
    o.next.as_ref().map(|c| c.command_uuid.as_str())
}

async fn entry(s: &dyn Store, uuid: &str, eid: &str) -> QueueEntryView {
    let view = s.command(uuid).await.unwrap().expect("command exists");
    view.entries
        .into_iter()
        .find(|e| e.enrollment_id == eid)
        .expect("queue entry exists")
}

// ---- identity and check-in ----

async fn authenticate_binds_identity_and_refuses_another_device(s: &dyn Store) {
    s.authenticate(&auth("A", "h1", 10)).await.unwrap();
    assert_eq!(s.identity_owner("h1").await.unwrap().as_deref(), Some("A"));
    assert_eq!(s.identity_owner("h2").await.unwrap(), None);

    let err = s.authenticate(&auth("B", "h1", 11)).await.unwrap_err();
    assert!(matches!(err, StoreError::IdentityConflict), "{err:?}");
    assert!(
        s.device("B").await.unwrap().is_none(),
        "refused Authenticate left a device"
    );
    assert_eq!(s.identity_owner("h1").await.unwrap().as_deref(), Some("A"));

    // The same device may present the same certificate again, or a renewed one.
    s.authenticate(&auth("A", "h1", 12)).await.unwrap();
    s.authenticate(&auth("A", "h2", 13)).await.unwrap();
    let d = s.device("A").await.unwrap().unwrap();
    assert_eq!(d.authenticated_at, Some(13));
    assert_eq!(d.identity_cert_sha256.as_deref(), Some("h2"));
    assert_eq!(d.serial_number.as_deref(), Some("SN-A"));
    assert_eq!(d.created_at, 10);
    assert_eq!(d.updated_at, 13);
    assert!(!d.enrolled, "not enrolled before TokenUpdate");
    assert_eq!(s.enrollment_enabled("A").await.unwrap(), Some(false));
}

async fn authenticate_clears_queues_and_disables_until_token_update(s: &dyn Store) {
    enroll(s, "A", 10).await;
    assert!(s.token_update(&token("A:U", "A", 11)).await.unwrap());
    enqueue(s, "c1", PRIORITY_NORMAL, 12, &["A", "A:U"]).await;
    enqueue(s, "c2", PRIORITY_NORMAL, 13, &["A"]).await;
    assert_eq!(next(&idle(s, "A", 14).await), Some("c1"));

    // Re-enrollment: Sent and Pending entries on both channels are canceled.
    s.authenticate(&auth("A", "cert-A", 20)).await.unwrap();
    assert_eq!(s.enrollment_enabled("A").await.unwrap(), Some(false));
    assert_eq!(s.enrollment_enabled("A:U").await.unwrap(), Some(false));
    for (uuid, eid) in [("c1", "A"), ("c1", "A:U"), ("c2", "A")] {
        let e = entry(s, uuid, eid).await;
        assert_eq!(e.status, QueueStatus::Canceled, "{uuid} on {eid}");
        assert_eq!(e.canceled_at, Some(20));
    }
    assert!(idle(s, "A", 21).await.not_enrolled);
    assert!(!s.device("A").await.unwrap().unwrap().enrolled);

    assert!(s.token_update(&token("A", "A", 22)).await.unwrap());
    let o = idle(s, "A", 23).await;
    assert!(!o.not_enrolled);
    assert_eq!(next(&o), None, "canceled commands are never handed out");
    let d = s.device("A").await.unwrap().unwrap();
    assert!(d.enrolled);
    assert!(
        !d.user_channels[0].enrolled,
        "user channel waits for its own TokenUpdate"
    );
}

async fn token_update_for_unknown_device_is_refused(s: &dyn Store) {
    assert!(!s.token_update(&token("X", "X", 10)).await.unwrap());
    assert!(!s.token_update(&token("X:U", "X", 10)).await.unwrap());
    assert_eq!(s.enrollment_enabled("X").await.unwrap(), None);
    assert_eq!(s.enrollment_enabled("X:U").await.unwrap(), None);
    assert!(s.device("X").await.unwrap().is_none());
}

async fn token_update_enables_and_creates_user_channels(s: &dyn Store) {
    s.authenticate(&auth("A", "cert-A", 10)).await.unwrap();
    let mut tu = token("A", "A", 11);
    tu.awaiting_configuration = true;
    assert!(s.token_update(&tu).await.unwrap());
    assert!(s.token_update(&token("A", "A", 12)).await.unwrap());
    assert!(s.token_update(&token("A:U", "A", 13)).await.unwrap());

    let d = s.device("A").await.unwrap().unwrap();
    assert!(d.enrolled);
    assert!(!d.awaiting_configuration, "the latest TokenUpdate wins");
    assert_eq!(d.token_update_count, 2);
    assert_eq!(d.push_token.as_deref(), Some("deadbeef"));
    assert!(d.has_push_magic);
    assert_eq!(d.topic.as_deref(), Some(TOPIC));
    assert_eq!(d.last_token_update_at, Some(12));
    assert_eq!(d.last_seen_at, Some(12));
    assert_eq!(
        d.user_channels,
        vec![UserChannelView {
            enrollment_id: "A:U".into(),
            user_id: Some("USER-GUID".into()),
            user_short_name: Some("alice".into()),
            user_long_name: Some("Alice Appleseed".into()),
            enrolled: true,
            last_seen_at: Some(13),
        }]
    );
    assert_eq!(s.enrollment_enabled("A:U").await.unwrap(), Some(true));
}

async fn check_out_disables_device_and_user_channels(s: &dyn Store) {
    enroll(s, "A", 10).await;
    assert!(s.token_update(&token("A:U", "A", 11)).await.unwrap());

    s.check_out("A:U", 12).await.unwrap();
    assert_eq!(s.enrollment_enabled("A:U").await.unwrap(), Some(false));
    assert_eq!(s.enrollment_enabled("A").await.unwrap(), Some(true));

    assert!(s.token_update(&token("A:U", "A", 13)).await.unwrap());
    s.check_out("A", 14).await.unwrap();
    assert_eq!(s.enrollment_enabled("A").await.unwrap(), Some(false));
    assert_eq!(s.enrollment_enabled("A:U").await.unwrap(), Some(false));
    let d = s.device("A").await.unwrap().unwrap();
    assert!(!d.enrolled);
    assert_eq!(d.checked_out_at, Some(14));
    assert!(idle(s, "A", 15).await.not_enrolled);
    assert!(idle(s, "A:U", 15).await.not_enrolled);
}

// ---- command loop ----

async fn urgent_commands_first_then_fifo(s: &dyn Store) {
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
    assert_eq!(s.device("A").await.unwrap().unwrap().last_seen_at, Some(23));
}

async fn not_now_waits_for_the_next_session(s: &dyn Store) {
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

async fn sent_command_is_handed_out_again_on_next_idle(s: &dyn Store) {
    enroll(s, "A", 10).await;
    enqueue(s, "c1", PRIORITY_NORMAL, 11, &["A"]).await;
    assert_eq!(next(&idle(s, "A", 20).await), Some("c1"));
    // The device never answered (connection dropped): it gets it again.
    assert_eq!(next(&idle(s, "A", 30).await), Some("c1"));
    let c1 = entry(s, "c1", "A").await;
    assert_eq!(c1.status, QueueStatus::Sent);
    assert_eq!((c1.delivered_at, c1.delivery_count), (Some(20), 2));
}

async fn result_for_unknown_or_closed_command_is_flagged(s: &dyn Store) {
    enroll(s, "A", 10).await;
    let o = answer(s, "A", "nope", ResultStatus::Acknowledged, 11).await;
    assert!(o.unknown_command && !o.not_enrolled);

    enqueue(s, "c1", PRIORITY_NORMAL, 12, &["A"]).await;
    assert_eq!(next(&idle(s, "A", 13).await), Some("c1"));
    assert!(
        !answer(s, "A", "c1", ResultStatus::Acknowledged, 14)
            .await
            .unknown_command
    );
    // A second result for a finished command does not overwrite the first.
    assert!(
        answer(s, "A", "c1", ResultStatus::Error, 15)
            .await
            .unknown_command
    );
    let c1 = entry(s, "c1", "A").await;
    assert_eq!(
        (c1.status, c1.result_at),
        (QueueStatus::Acknowledged, Some(14))
    );
}

async fn disabled_or_unknown_enrollment_gets_no_commands(s: &dyn Store) {
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

async fn enqueue_reports_unknown_targets_in_order(s: &dyn Store) {
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

async fn enqueue_to_many_targets(s: &dyn Store) {
    let n = 300;
    let mut targets = Vec::new();
    for i in 0..n {
        let id = format!("D{i:04}");
        enroll(s, &id, 10).await;
        targets.push(id);
    }
    targets.push("missing".into());
    let res = s
        .enqueue(&cmd("bulk", PRIORITY_NORMAL, 11), &targets)
        .await
        .unwrap();
    assert_eq!(res.iter().filter(|r| r.queued).count(), n);
    assert!(!res.last().unwrap().queued);
    assert_eq!(s.command("bulk").await.unwrap().unwrap().entries.len(), n);
    assert_eq!(next(&idle(s, "D0123", 12).await), Some("bulk"));
}

async fn cancel_only_pending_entries(s: &dyn Store) {
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

async fn cancel_races_delivery_with_exactly_one_winner(s: &dyn Store) {
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

async fn device_commands_newest_first(s: &dyn Store) {
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

// ---- admin ----

async fn delete_device_keeps_escrow_and_audit(s: &dyn Store) {
    enroll(s, "A", 10).await;
    assert!(s.token_update(&token("A:U", "A", 10)).await.unwrap());
    enqueue(s, "c1", PRIORITY_NORMAL, 11, &["A", "A:U"]).await;
    s.set_bootstrap_token("A", Some(b"sealed"), 12)
        .await
        .unwrap();
    let audit = AuditRecord {
        at: 13,
        actor: "admin".into(),
        action: "device.delete".into(),
        target: "A".into(),
        detail: serde_json::json!({}),
    };
    s.audit_append(&audit).await.unwrap();

    assert!(s.delete_device("A").await.unwrap());
    assert!(s.device("A").await.unwrap().is_none());
    assert_eq!(s.enrollment_enabled("A").await.unwrap(), None);
    assert_eq!(s.enrollment_enabled("A:U").await.unwrap(), None);
    assert_eq!(s.identity_owner("cert-A").await.unwrap(), None);
    assert!(s.device_commands("A", 10).await.unwrap().is_empty());
    assert!(s.command("c1").await.unwrap().unwrap().entries.is_empty());
    assert_eq!(
        s.bootstrap_token("A").await.unwrap().as_deref(),
        Some(&b"sealed"[..])
    );
    assert_eq!(s.audit_list(10, None).await.unwrap()[0].record, audit);
    assert!(!s.delete_device("A").await.unwrap());

    // The certificate is free again; the device can come back.
    s.authenticate(&auth("B", "cert-A", 20)).await.unwrap();
    // The same Mac enrolls again: nothing of the old queue comes back with it.
    s.authenticate(&auth("A", "cert-A2", 30)).await.unwrap();
    assert!(s.token_update(&token("A", "A", 31)).await.unwrap());
    assert!(s.token_update(&token("A:U", "A", 32)).await.unwrap());
    assert!(s.device_commands("A", 10).await.unwrap().is_empty());
    assert!(s.command("c1").await.unwrap().unwrap().entries.is_empty());
}

async fn bootstrap_token_is_append_only_and_clearable(s: &dyn Store) {
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

async fn list_devices_filters_and_pages(s: &dyn Store) {
    for id in ["D1", "D2", "D3", "D4", "D5"] {
        enroll(s, id, 10).await;
    }
    s.authenticate(&auth("D6", "cert-D6", 10)).await.unwrap(); // never enrolled
    s.check_out("D2", 11).await.unwrap();
    assert!(s.token_update(&token("D1:U", "D1", 12)).await.unwrap());

    let ids = |v: Vec<DeviceView>| v.into_iter().map(|d| d.udid).collect::<Vec<_>>();
    let all = s.list_devices(&DeviceFilter::default()).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0].user_channels.len(), 1);
    assert!(all[1].user_channels.is_empty());

    let f = |f: DeviceFilter| async move { ids(s.list_devices(&f).await.unwrap()) };
    let serial = DeviceFilter {
        serial: Some("SN-D3".into()),
        ..DeviceFilter::default()
    };
    assert_eq!(f(serial).await, ["D3"]);
    let udid = DeviceFilter {
        udid: Some("D4".into()),
        ..DeviceFilter::default()
    };
    assert_eq!(f(udid).await, ["D4"]);
    let enrolled = DeviceFilter {
        enrolled: Some(true),
        ..DeviceFilter::default()
    };
    assert_eq!(f(enrolled).await, ["D1", "D3", "D4", "D5"]);
    let not_enrolled = DeviceFilter {
        enrolled: Some(false),
        ..DeviceFilter::default()
    };
    assert_eq!(f(not_enrolled).await, ["D2", "D6"]);

    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = f(DeviceFilter {
            cursor: cursor.clone(),
            limit: 4,
            ..DeviceFilter::default()
        })
        .await;
        if page.is_empty() {
            break;
        }
        cursor = page.last().cloned();
        pages.push(page);
    }
    assert_eq!(pages, [vec!["D1", "D2", "D3", "D4"], vec!["D5", "D6"]]);
    let page = f(DeviceFilter {
        enrolled: Some(true),
        cursor: Some("D3".into()),
        limit: 1,
        ..DeviceFilter::default()
    })
    .await;
    assert_eq!(page, ["D4"]);
}

async fn audit_is_newest_first_with_cursor(s: &dyn Store) {
    for i in 0..5 {
        s.audit_append(&AuditRecord {
            at: 100 + i,
            actor: "admin".into(),
            action: "command.enqueue".into(),
            target: format!("t{i}"),
            detail: serde_json::json!({ "n": i, "targets": ["A"] }),
        })
        .await
        .unwrap();
    }
    let all = s.audit_list(10, None).await.unwrap();
    let targets: Vec<&str> = all.iter().map(|e| e.record.target.as_str()).collect();
    assert_eq!(targets, ["t4", "t3", "t2", "t1", "t0"]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(
        all[0].record.detail,
        serde_json::json!({ "n": 4, "targets": ["A"] })
    );

    let page = s.audit_list(2, Some(all[1].id)).await.unwrap();
    let targets: Vec<&str> = page.iter().map(|e| e.record.target.as_str()).collect();
    assert_eq!(targets, ["t2", "t1"]);
    assert!(s.audit_list(10, Some(all[4].id)).await.unwrap().is_empty());
}

async fn settings_upsert(s: &dyn Store) {
    assert_eq!(s.setting("k").await.unwrap(), None);
    s.set_setting("k", "v1").await.unwrap();
    s.set_setting("k", "v2").await.unwrap();
    s.set_setting("other", "x").await.unwrap();
    assert_eq!(s.setting("k").await.unwrap().as_deref(), Some("v2"));
    assert_eq!(s.setting("other").await.unwrap().as_deref(), Some("x"));
}

async fn admin_tokens_roundtrip(s: &dyn Store) {
    assert!(s.admin_tokens().await.unwrap().is_empty());
    let a = s.insert_admin_token("ops", &[1; 32], 1).await.unwrap();
    let b = s.insert_admin_token("ci", &[2; 32], 2).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(
        s.admin_tokens().await.unwrap(),
        [
            AdminTokenRecord {
                id: a,
                name: "ops".into(),
                hash: vec![1; 32]
            },
            AdminTokenRecord {
                id: b,
                name: "ci".into(),
                hash: vec![2; 32]
            },
        ]
    );
}

async fn ping_and_backend(s: &dyn Store) {
    s.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&s.backend()));
}

// ---- DEP ----

use super::dep::{
    DepAssignOutcome, DepDeviceFilter, DepDeviceUpsert, DepLinkRecord, DepProfileRecord,
    DepTokenUpdate,
};

fn dep_link(name: &str, now: i64) -> DepLinkRecord {
    DepLinkRecord {
        name: name.into(),
        cert_pem: "-----BEGIN CERTIFICATE-----".into(),
        key_sealed: b"sealed-key".to_vec(),
        token_sealed: None,
        token_expiry: None,
        server_uuid: None,
        server_name: None,
        org_name: None,
        admin_id: None,
        account_json: None,
        default_profile_uuid: None,
        cursor: None,
        last_sync_at: None,
        last_sync_json: None,
        last_ok_at: None,
        last_error_code: None,
        last_error_message: None,
        last_error_at: None,
        created_at: now,
        updated_at: now,
    }
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
    .map(|d| (d.serial_number, d.russet_status))
    .collect()
}

async fn dep_link_token_cursor_and_call_outcomes(s: &dyn Store) {
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

async fn dep_upsert_is_idempotent_and_latest_op_date_wins(s: &dyn Store) {
    s.insert_dep_link(&dep_link("corp", 1)).await.unwrap();
    s.insert_dep_link(&dep_link("other", 1)).await.unwrap();
    let page: Vec<_> = (0..1200)
        .map(|i| dep_row(&format!("SN{i:05}"), "corp", None, None))
        .collect();
    s.upsert_dep_devices(&page).await.unwrap();
    s.upsert_dep_devices(&page).await.unwrap(); // a replayed page duplicates nothing
    let counts = s.dep_device_counts(Some("corp")).await.unwrap();
    assert_eq!(counts, vec![("not_assigned".to_string(), 1200)]);
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
    assert_eq!((d.deleted, d.russet_status.as_str()), (true, "disowned"));
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
        s.dep_device("SN-A").await.unwrap().unwrap().russet_status,
        "enrolled"
    );
    s.mark_assigned_for_test("SN00003").await;
    let st = dep_statuses(s, Some("corp")).await;
    assert_eq!(st.len(), 1000, "limit");
    let assigned = s
        .dep_devices(&DepDeviceFilter {
            status: Some("assigned".into()),
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

async fn dep_auto_assign_waits_after_failure_and_rearms_on_added(s: &dyn Store) {
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
            a.russet_status.as_str(),
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
        s.dep_device("C").await.unwrap().unwrap().russet_status,
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
        (a.russet_status.as_str(), a.profile_status.as_deref()),
        ("not_assigned", Some("removed"))
    );
}

async fn dep_sync_leader_is_exclusive_across_servers(s: &dyn Store) {
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

async fn ade_setup_is_claimed_once_per_enrollment(s: &dyn Store) {
    use crate::store::{AdeEnrollment, AdeSetupClaim};
    let rec = AdeEnrollment {
        udid: "ADE-1".into(),
        serial_number: "C02ADE000001".into(),
        profile_uuid: Some("PROFILE-1".into()),
        product: Some("Mac14,2".into()),
        os_version: Some("14.6".into()),
        build_version: Some("23G80".into()),
        requested_at: 1_000,
        setup_queued_at: None,
    };
    s.record_ade_enrollment(&rec).await.unwrap();
    assert_eq!(s.ade_enrollment("ADE-1").await.unwrap(), Some(rec.clone()));
    assert_eq!(
        s.claim_ade_setup("ADE-1", None, 2_000).await.unwrap(),
        AdeSetupClaim::Claimed(Some("PROFILE-1".into()))
    );
    assert_eq!(
        s.claim_ade_setup("ADE-1", None, 3_000).await.unwrap(),
        AdeSetupClaim::AlreadyQueued
    );
    let stored = s.ade_enrollment("ADE-1").await.unwrap().unwrap();
    assert_eq!(stored.setup_queued_at, Some(2_000));
    // Erased and back in Setup Assistant: a new fetch re-arms the setup.
    s.record_ade_enrollment(&AdeEnrollment {
        requested_at: 4_000,
        ..rec
    })
    .await
    .unwrap();
    assert_eq!(
        s.claim_ade_setup("ADE-1", None, 5_000).await.unwrap(),
        AdeSetupClaim::Claimed(Some("PROFILE-1".into()))
    );
    // Authenticate again (the queue was cleared): the setup is queued again.
    s.rearm_ade_setup("ADE-1").await.unwrap();
    assert_eq!(
        s.claim_ade_setup("ADE-1", None, 5_500).await.unwrap(),
        AdeSetupClaim::Claimed(Some("PROFILE-1".into()))
    );
    // No ADE fetch known: claimed once with no profile (DeviceConfigured only).
    assert_eq!(
        s.claim_ade_setup("OTHER", Some("C02OTHER"), 6_000)
            .await
            .unwrap(),
        AdeSetupClaim::Claimed(None)
    );
    assert_eq!(
        s.claim_ade_setup("OTHER", Some("C02OTHER"), 7_000)
            .await
            .unwrap(),
        AdeSetupClaim::AlreadyQueued
    );
}

// ---- harness ----

mod harness;

/// For each case: `sqlite::case` and `postgres::case`. The case runs in its own task so a
/// failing assertion still lets the harness drop the PostgreSQL database.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let db = super::harness::sqlite().await;
                    let store = db.store.clone();
                    let res = tokio::spawn(async move { super::$case(&*store).await }).await;
                    drop(db);
                    if let Err(e) = res {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(db) = super::harness::postgres().await else {
                        eprintln!(
                            "skipped: set {} to run the PostgreSQL conformance tests",
                            super::harness::PG_ENV
                        );
                        return;
                    };
                    let store = db.store.clone();
                    let res = tokio::spawn(async move { super::$case(&*store).await }).await;
                    db.drop_database().await;
                    if let Err(e) = res {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}

// ---- unlock PIN escrow ----

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

async fn escrowed_pin_follows_its_command_and_outlives_the_device(s: &dyn Store) {
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

async fn escrow_needs_an_enrolled_device_and_is_atomic(s: &dyn Store) {
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

async fn device_information_facts_land_on_the_device(s: &dyn Store) {
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

conformance!(
    escrowed_pin_follows_its_command_and_outlives_the_device,
    escrow_needs_an_enrolled_device_and_is_atomic,
    device_information_facts_land_on_the_device,
    authenticate_binds_identity_and_refuses_another_device,
    authenticate_clears_queues_and_disables_until_token_update,
    token_update_for_unknown_device_is_refused,
    token_update_enables_and_creates_user_channels,
    check_out_disables_device_and_user_channels,
    urgent_commands_first_then_fifo,
    not_now_waits_for_the_next_session,
    sent_command_is_handed_out_again_on_next_idle,
    result_for_unknown_or_closed_command_is_flagged,
    disabled_or_unknown_enrollment_gets_no_commands,
    enqueue_reports_unknown_targets_in_order,
    enqueue_to_many_targets,
    cancel_only_pending_entries,
    cancel_races_delivery_with_exactly_one_winner,
    device_commands_newest_first,
    delete_device_keeps_escrow_and_audit,
    bootstrap_token_is_append_only_and_clearable,
    list_devices_filters_and_pages,
    audit_is_newest_first_with_cursor,
    settings_upsert,
    admin_tokens_roundtrip,
    ping_and_backend,
    dep_link_token_cursor_and_call_outcomes,
    dep_upsert_is_idempotent_and_latest_op_date_wins,
    dep_auto_assign_waits_after_failure_and_rearms_on_added,
    dep_sync_leader_is_exclusive_across_servers,
    ade_setup_is_claimed_once_per_enrollment,
);
