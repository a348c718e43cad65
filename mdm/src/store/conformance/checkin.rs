//! Identity binding and the check-in messages: `Authenticate`, `TokenUpdate`, `CheckOut`.

use super::fixtures::*;
use crate::store::*;

pub(super) async fn authenticate_binds_identity_and_refuses_another_device(s: &dyn Store) {
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

pub(super) async fn authenticate_clears_queues_and_disables_until_token_update(s: &dyn Store) {
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

pub(super) async fn token_update_for_unknown_device_is_refused(s: &dyn Store) {
    assert!(!s.token_update(&token("X", "X", 10)).await.unwrap());
    assert!(!s.token_update(&token("X:U", "X", 10)).await.unwrap());
    assert_eq!(s.enrollment_enabled("X").await.unwrap(), None);
    assert_eq!(s.enrollment_enabled("X:U").await.unwrap(), None);
    assert!(s.device("X").await.unwrap().is_none());
}

pub(super) async fn token_update_enables_and_creates_user_channels(s: &dyn Store) {
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

pub(super) async fn check_out_disables_device_and_user_channels(s: &dyn Store) {
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
