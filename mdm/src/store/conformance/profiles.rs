//! Configuration profiles: versions append and the latest wins, deleting is soft, and
//! assignments name groups and devices.

use crate::store::profiles::*;
use crate::store::*;

fn version(identifier: &str, v: i64, now: i64) -> NewProfileVersion {
    NewProfileVersion {
        version: ProfileVersionRecord {
            identifier: identifier.into(),
            version: v,
            payload_uuid: format!("UUID-{v}"),
            name: format!("{identifier} v{v}"),
            scope: if v % 2 == 0 { "User" } else { "System" }.into(),
            payload_types: r#"["com.apple.wifi.managed"]"#.into(),
            sha256: format!("{v:064}"),
            body_sealed: vec![1, 2, 3, v as u8],
            signed: v == 2,
            has_variables: v == 1,
            uploaded_by: "admin".into(),
            created_at: now,
        },
        description: Some(format!("v{v}")),
        organization: Some("ACME".into()),
    }
}

pub(super) async fn profile_versions_append_and_the_latest_wins(s: &dyn Store) {
    assert!(s.profile("com.acme.wifi").await.unwrap().is_none());
    assert!(
        s.insert_profile_version(&version("com.acme.wifi", 1, 1_000))
            .await
            .unwrap()
    );
    // The same version again, or one that skips a number: another upload came first.
    assert!(
        !s.insert_profile_version(&version("com.acme.wifi", 1, 1_500))
            .await
            .unwrap()
    );
    assert!(
        !s.insert_profile_version(&version("com.acme.wifi", 3, 1_500))
            .await
            .unwrap()
    );
    assert!(
        s.insert_profile_version(&version("com.acme.wifi", 2, 2_000))
            .await
            .unwrap()
    );

    let p = s.profile("com.acme.wifi").await.unwrap().expect("stored");
    assert_eq!(p.latest_version, 2);
    assert_eq!(p.name, "com.acme.wifi v2");
    assert_eq!(p.scope, "User");
    assert_eq!(p.description.as_deref(), Some("v2"));
    assert_eq!(p.payload_types(), vec!["com.apple.wifi.managed"]);
    assert_eq!(
        (p.created_at, p.updated_at, p.deleted_at),
        (1_000, 2_000, None)
    );

    let versions = s.profile_versions("com.acme.wifi").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(versions[1], version("com.acme.wifi", 1, 1_000).version);
    assert!(versions[0].signed && !versions[0].has_variables);
    assert_eq!(
        s.profile_version("com.acme.wifi", 1).await.unwrap(),
        Some(version("com.acme.wifi", 1, 1_000).version)
    );
    assert_eq!(s.profile_version("com.acme.wifi", 9).await.unwrap(), None);
    assert_eq!(
        s.profiles(false)
            .await
            .unwrap()
            .iter()
            .map(|p| p.identifier.as_str())
            .collect::<Vec<_>>(),
        vec!["com.acme.wifi"]
    );
}

pub(super) async fn concurrent_uploads_of_one_identifier_store_one_version(s: &dyn Store) {
    assert!(
        s.insert_profile_version(&version("com.acme.dock", 1, 1_000))
            .await
            .unwrap()
    );
    let (first, second) = (
        version("com.acme.dock", 2, 2_000),
        version("com.acme.dock", 2, 2_001),
    );
    let (a, b) = futures::join!(
        s.insert_profile_version(&first),
        s.insert_profile_version(&second),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one upload wins");
    assert_eq!(s.profile_versions("com.acme.dock").await.unwrap().len(), 2);
}

pub(super) async fn deleting_is_soft_and_drops_the_assignments(s: &dyn Store) {
    assert!(
        s.insert_profile_version(&version("com.acme.vpn", 1, 1_000))
            .await
            .unwrap()
    );
    let targets = [Target::device("UDID-1"), Target::group("Finance")];
    s.add_profile_assignments("com.acme.vpn", &targets, 1_100)
        .await
        .unwrap()
        .expect("live profile");

    let removed = s.delete_profile("com.acme.vpn", 2_000).await.unwrap();
    let removed: Vec<Target> = removed
        .expect("deleted")
        .into_iter()
        .map(|a| a.target)
        .collect();
    assert_eq!(
        removed,
        vec![Target::group("Finance"), Target::device("UDID-1")]
    );
    assert_eq!(s.delete_profile("com.acme.vpn", 2_100).await.unwrap(), None);
    assert_eq!(
        s.delete_profile("com.acme.unknown", 2_100).await.unwrap(),
        None
    );

    let p = s.profile("com.acme.vpn").await.unwrap().expect("kept");
    assert_eq!(p.deleted_at, Some(2_000));
    assert_eq!((p.group_count, p.device_count), (0, 0));
    assert!(s.profiles(false).await.unwrap().is_empty());
    assert_eq!(s.profiles(true).await.unwrap().len(), 1);
    assert_eq!(s.profile_versions("com.acme.vpn").await.unwrap().len(), 1);
    // A deleted profile takes no assignments.
    assert_eq!(
        s.add_profile_assignments("com.acme.vpn", &targets, 2_200)
            .await
            .unwrap(),
        None
    );
    // Uploading it again brings it back, unassigned, with the history.
    assert!(
        s.insert_profile_version(&version("com.acme.vpn", 2, 3_000))
            .await
            .unwrap()
    );
    let p = s.profile("com.acme.vpn").await.unwrap().expect("back");
    assert_eq!((p.deleted_at, p.latest_version), (None, 2));
    assert!(
        s.profile_assignments("com.acme.vpn")
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn assignments_name_groups_and_devices(s: &dyn Store) {
    for id in ["com.acme.a", "com.acme.b", "com.acme.gone"] {
        assert!(
            s.insert_profile_version(&version(id, 1, 1_000))
                .await
                .unwrap()
        );
    }
    let added = s
        .add_profile_assignments(
            "com.acme.a",
            &[
                Target::group("Finance"),
                Target::device("UDID-1"),
                Target::device("UDID-2"),
            ],
            1_100,
        )
        .await
        .unwrap()
        .expect("live");
    assert_eq!(added.len(), 3);
    // Adding again only adds what is new; the first assignment keeps its time.
    let added = s
        .add_profile_assignments(
            "com.acme.a",
            &[Target::group("Finance"), Target::group("Design")],
            1_200,
        )
        .await
        .unwrap()
        .expect("live");
    assert_eq!(added, vec![Target::group("Design")]);
    let all = s.profile_assignments("com.acme.a").await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.target.clone()).collect::<Vec<_>>(),
        vec![
            Target::group("Design"),
            Target::group("Finance"),
            Target::device("UDID-1"),
            Target::device("UDID-2"),
        ]
    );
    assert_eq!(all[1].created_at, 1_100);
    let p = s.profile("com.acme.a").await.unwrap().expect("a");
    assert_eq!((p.group_count, p.device_count), (2, 2));

    let removed = s
        .remove_profile_assignments(
            "com.acme.a",
            &[Target::device("UDID-2"), Target::device("UDID-9")],
        )
        .await
        .unwrap();
    assert_eq!(removed, vec![Target::device("UDID-2")]);

    s.add_profile_assignments("com.acme.b", &[Target::group("Design")], 1_300)
        .await
        .unwrap()
        .expect("live");
    s.add_profile_assignments("com.acme.gone", &[Target::device("UDID-3")], 1_300)
        .await
        .unwrap()
        .expect("live");
    s.delete_profile("com.acme.gone", 1_400).await.unwrap();

    let desired = |devices: &'static [&'static str], groups: &'static [&'static str]| async move {
        let devices: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        s.desired_profiles(&devices, &groups)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.identifier, r.target))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        desired(&["UDID-1"], &[]).await,
        vec![("com.acme.a".to_string(), Target::device("UDID-1"))]
    );
    assert!(desired(&["UDID-2"], &[]).await.is_empty());
    assert!(
        desired(&["UDID-3"], &[]).await.is_empty(),
        "deleted profiles are wanted by no one"
    );
    assert_eq!(
        desired(&["UDID-1", "UDID-4"], &["Design", "Sales"]).await,
        vec![
            ("com.acme.a".to_string(), Target::group("Design")),
            ("com.acme.a".to_string(), Target::device("UDID-1")),
            ("com.acme.b".to_string(), Target::group("Design")),
        ]
    );
    // The row carries what the reconciler needs of the latest version.
    let row = s
        .desired_profiles(&["UDID-1".to_string()], &[])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            row.version,
            row.payload_uuid.as_str(),
            row.scope.as_str(),
            row.has_variables
        ),
        (1, "UUID-1", "System", true)
    );
    // Any number of targets.
    let many: Vec<String> = (0..2_500).map(|i| format!("UDID-{i}")).collect();
    let rows = s.desired_profiles(&many, &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
}
