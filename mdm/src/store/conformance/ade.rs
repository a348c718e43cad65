//! ADE: the Setup Assistant commands of an enrollment are claimed once.

use crate::store::*;

pub(super) async fn ade_setup_is_claimed_once_per_enrollment(s: &dyn Store) {
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
