//! Parallels Desktop activation per group: one per group, set again in place (its creation
//! kept), only for a group that exists, gone with its group.

use crate::store::groups::GroupRecord;
use crate::store::parallels_activation::ParallelsActivationRecord;
use crate::store::*;

fn activation(group: &str, now: i64) -> ParallelsActivationRecord {
    ParallelsActivationRecord {
        group_name: group.into(),
        experience: "License Key".into(),
        license_key_sealed: Some(vec![1, 2, 3]),
        license_key_hint: Some("M3N4".into()),
        sso_texts: "{}".into(),
        created_at: now,
        created_by: "alice".into(),
        updated_at: now,
        updated_by: "alice".into(),
    }
}

pub(super) async fn a_group_holds_one_parallels_activation(s: &dyn Store) {
    let g = GroupRecord {
        name: "Engineering".into(),
        description: None,
        filter: None,
        created_at: 1,
        updated_at: 1,
    };
    assert!(s.insert_group(&g).await.unwrap());
    // No such group (names are exact here, like the groups API): nothing written.
    assert!(
        !s.put_parallels_activation(&activation("Nobody", 1))
            .await
            .unwrap()
    );
    assert!(
        !s.put_parallels_activation(&activation("engineering", 1))
            .await
            .unwrap()
    );
    assert!(s.parallels_activations().await.unwrap().is_empty());

    assert!(
        s.put_parallels_activation(&activation("Engineering", 1))
            .await
            .unwrap()
    );
    assert_eq!(
        s.parallels_activation("Engineering").await.unwrap(),
        Some(activation("Engineering", 1))
    );
    // Set again: the fields change, the creation stays.
    let sso = ParallelsActivationRecord {
        experience: "SSO".into(),
        license_key_sealed: None,
        license_key_hint: None,
        sso_texts: r#"{"Title":"Sign in"}"#.into(),
        created_at: 9,
        created_by: "bob".into(),
        updated_at: 9,
        updated_by: "bob".into(),
        ..activation("Engineering", 1)
    };
    assert!(s.put_parallels_activation(&sso).await.unwrap());
    let stored = s
        .parallels_activation("Engineering")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored,
        ParallelsActivationRecord {
            created_at: 1,
            created_by: "alice".into(),
            ..sso
        }
    );
    assert_eq!(s.parallels_activations().await.unwrap(), vec![stored]);

    assert!(s.delete_parallels_activation("Engineering").await.unwrap());
    assert!(!s.delete_parallels_activation("Engineering").await.unwrap());
    assert_eq!(s.parallels_activation("Engineering").await.unwrap(), None);

    // The activation goes with its group.
    assert!(
        s.put_parallels_activation(&activation("Engineering", 2))
            .await
            .unwrap()
    );
    assert!(s.delete_group("Engineering").await.unwrap());
    assert!(s.parallels_activations().await.unwrap().is_empty());
}
