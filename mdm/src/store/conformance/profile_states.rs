//! The profile reconciler's state: commands recorded per channel, changes applied only to the
//! command they answer, outstanding ProfileLists claimed once, rows gone with their device.

use super::fixtures::*;
use crate::store::profile_states::{ProfileStateChange, QueuedProfileCommand};
use crate::store::*;

fn queued(eid: &str, identifier: &str, version: i64, command: &str) -> QueuedProfileCommand {
    QueuedProfileCommand {
        enrollment_id: eid.into(),
        device_id: eid.split(':').next().unwrap_or(eid).into(),
        identifier: identifier.into(),
        state: "pending".into(),
        version,
        payload_uuid: format!("{identifier}-v{version}"),
        command_uuid: Some(command.into()),
    }
}

fn change(identifier: &str, state: &str) -> ProfileStateChange {
    ProfileStateChange {
        identifier: identifier.into(),
        state: state.into(),
        failed: false,
        next_attempt_at: None,
        forget_command: false,
        error: None,
        if_command: None,
    }
}

pub(super) async fn profile_states_follow_commands_answers_and_devices(s: &dyn Store) {
    enroll(s, "A", 1).await;
    enroll(s, "B", 1).await;
    assert!(
        s.token_update(&token("A:U1", "A", 2)).await.unwrap(),
        "user channel"
    );
    let many: Vec<QueuedProfileCommand> = (0..1200)
        .map(|i| queued("B", &format!("p{i:04}"), 1, "CMD-B"))
        .collect();
    s.record_profile_commands(&many, 10).await.unwrap();
    s.record_profile_commands(
        &[
            queued("A", "dock", 1, "CMD-1"),
            queued("A:U1", "wallpaper", 1, "CMD-2"),
        ],
        10,
    )
    .await
    .unwrap();
    let a = s.profile_states_of_devices(&["A".into()]).await.unwrap();
    assert_eq!(
        a.iter()
            .map(|r| (
                r.enrollment_id.as_str(),
                r.identifier.as_str(),
                r.state.as_str()
            ))
            .collect::<Vec<_>>(),
        [("A", "dock", "pending"), ("A:U1", "wallpaper", "pending")],
        "device and user channels of the device"
    );
    assert_eq!(
        s.profile_states_of_devices(&["A".into(), "B".into()])
            .await
            .unwrap()
            .len(),
        1202,
        "long lists are read in chunks"
    );

    // A failure counts, waits, keeps Apple's error; an answer to an older command is ignored.
    let mut failed = change("dock", "failed");
    failed.failed = true;
    failed.next_attempt_at = Some(500);
    failed.error = Some(r#"[{"ErrorCode":4001}]"#.into());
    failed.if_command = Some("CMD-OLD".into());
    s.apply_profile_changes("A", std::slice::from_ref(&failed), 20)
        .await
        .unwrap();
    assert_eq!(
        s.profile_states_of("dock").await.unwrap()[0].state,
        "pending"
    );
    failed.if_command = Some("CMD-1".into());
    s.apply_profile_changes("A", &[failed], 20).await.unwrap();
    let dock = &s.profile_states_of("dock").await.unwrap()[0];
    assert_eq!(
        (
            dock.state.as_str(),
            dock.attempts,
            dock.next_attempt_at,
            dock.error.as_deref()
        ),
        ("failed", 1, Some(500), Some(r#"[{"ErrorCode":4001}]"#))
    );
    // The retry (same version) keeps the count; success resets it; a new version starts over.
    s.record_profile_commands(&[queued("A", "dock", 1, "CMD-3")], 30)
        .await
        .unwrap();
    let dock = &s.profile_states_of("dock").await.unwrap()[0];
    assert_eq!(
        (dock.attempts, dock.command_uuid.as_deref()),
        (1, Some("CMD-3"))
    );
    s.apply_profile_changes("A", &[change("dock", "verified")], 40)
        .await
        .unwrap();
    let dock = &s.profile_states_of("dock").await.unwrap()[0];
    assert_eq!(
        (dock.state.as_str(), dock.attempts, dock.verified_at),
        ("verified", 0, Some(40))
    );
    assert!(
        s.devices_with_profile_work(i64::MAX, 3, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let mut drift = change("dock", "pending");
    drift.forget_command = true;
    s.apply_profile_changes("A", &[drift], 50).await.unwrap();
    let dock = &s.profile_states_of("dock").await.unwrap()[0];
    assert_eq!(
        (dock.state.as_str(), dock.command_uuid.as_deref()),
        ("pending", None)
    );
    // Work waiting on time: a drift to send again, a failure whose retry is due.
    assert_eq!(s.devices_with_profile_work(0, 3, 10).await.unwrap(), ["A"]);
    let mut failed = change("p0001", "failed");
    failed.failed = true;
    failed.next_attempt_at = Some(1_000);
    s.apply_profile_changes("B", &[failed], 60).await.unwrap();
    assert_eq!(
        s.devices_with_profile_work(999, 3, 10).await.unwrap(),
        ["A"]
    );
    assert_eq!(
        s.devices_with_profile_work(1_000, 3, 10).await.unwrap(),
        ["A", "B"]
    );
    assert_eq!(
        s.devices_with_profile_work(1_000, 1, 10).await.unwrap(),
        ["A"],
        "no retry after the last attempt"
    );

    // One outstanding ProfileList per channel, until answered or stale.
    assert!(s.claim_profile_check("A", "L1", 100, 0).await.unwrap());
    assert!(!s.claim_profile_check("A", "L2", 101, 0).await.unwrap());
    assert_eq!(
        s.profile_check("A").await.unwrap(),
        Some(("L1".to_string(), 100))
    );
    assert!(
        s.claim_profile_check("A", "L3", 200, 150).await.unwrap(),
        "a stale one is replaced"
    );
    s.clear_profile_check("A", "L1").await.unwrap();
    assert!(
        s.profile_check("A").await.unwrap().is_some(),
        "L1 was not it"
    );
    s.clear_profile_check("A", "L3").await.unwrap();
    assert!(s.profile_check("A").await.unwrap().is_none());

    // Channels due for a ProfileList: verified longest ago first, none with one outstanding.
    s.apply_profile_changes("A:U1", &[change("wallpaper", "verified")], 60)
        .await
        .unwrap();
    assert_eq!(
        s.channels_to_verify(100, 10).await.unwrap(),
        ["A:U1"],
        "A's dock is pending again, B's are pending"
    );
    assert!(s.claim_profile_check("A:U1", "L4", 300, 0).await.unwrap());
    assert!(s.channels_to_verify(100, 10).await.unwrap().is_empty());

    // The rows go with the device.
    assert!(s.delete_device("A").await.unwrap());
    assert!(
        s.profile_states_of_devices(&["A".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.profile_check("A:U1").await.unwrap().is_none());
}
