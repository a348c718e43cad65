use super::*;
use crate::store::groups::{MemberDevice, MemberKey};

#[test]
fn group_names() {
    for ok in [
        "Finance",
        "Sales EMEA",
        "Lab Macs (2024)",
        "R&D",
        "Équipe-Paris_1",
    ] {
        assert!(check_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "   ",
        " Finance",
        "Finance ",
        "a/b",
        "a\tb",
        "x\"y",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(check_name(bad), Err(ServiceError::BadRequest(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn a_device_named_twice_is_one_member_and_pending_names_follow() {
    let device = |udid: &str| {
        Some(MemberDevice {
            udid: udid.into(),
            serial_number: Some(format!("SN-{udid}")),
            device_name: None,
        })
    };
    let rows = [
        MemberRow {
            key: MemberKey::serial("SN-A"),
            device: device("A"),
        },
        MemberRow {
            key: MemberKey::serial("SN-P"),
            device: None,
        },
        MemberRow {
            key: MemberKey::udid("A"),
            device: device("A"),
        },
        MemberRow {
            key: MemberKey::udid("U-P"),
            device: None,
        },
    ];
    let members = static_members(&rows);
    assert_eq!(
        members
            .iter()
            .map(|m| (m.udid.as_deref(), m.serial.as_deref(), m.pending))
            .collect::<Vec<_>>(),
        [
            (Some("A"), Some("SN-A"), false),
            (None, Some("SN-P"), true),
            (Some("U-P"), None, true),
        ]
    );
    assert_eq!(device_ids(&rows), BTreeSet::from(["A".to_string()]));
}

mod with_a_store {
    use super::*;
    use crate::protocol::report::decode_report;
    use crate::secrets::SecretBox;
    use crate::service::{
        DeviceChange, DeviceIdentity, DeviceObserver, MdmService, ServiceOptions,
    };
    use crate::store::{AuthenticateRecord, SqliteStore, Store, TokenUpdateRecord};
    use std::sync::{Arc, Mutex};

    /// What the observers heard, in order.
    #[derive(Default)]
    struct Heard(Mutex<Vec<(Vec<String>, DeviceChange)>>);

    #[async_trait::async_trait]
    impl DeviceObserver for Heard {
        async fn devices_changed(&self, device_ids: &[String], why: DeviceChange) {
            if let Ok(mut h) = self.0.lock() {
                h.push((device_ids.to_vec(), why));
            }
        }
    }

    impl Heard {
        fn take(&self) -> Vec<(Vec<String>, DeviceChange)> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    async fn enrolled(store: &dyn Store, udid: &str, os: &str) {
        store
            .authenticate(&AuthenticateRecord {
                device_id: udid.into(),
                enrollment_type: "Device".into(),
                cert_hash: format!("cert-{udid}"),
                cert_not_after: None,
                topic: "com.apple.mgmt.External.test".into(),
                serial_number: Some(format!("SN-{udid}")),
                model: Some("Mac14,2".into()),
                model_name: Some("MacBook Air".into()),
                device_name: None,
                os_version: Some(os.into()),
                build_version: None,
                product_name: None,
                raw: Vec::new(),
                now: 1,
            })
            .await
            .unwrap();
        assert!(
            store
                .token_update(&TokenUpdateRecord {
                    enrollment_id: udid.into(),
                    device_id: udid.into(),
                    enrollment_type: "Device".into(),
                    user_id: None,
                    user_short_name: None,
                    user_long_name: None,
                    topic: "com.apple.mgmt.External.test".into(),
                    token: vec![1],
                    push_magic: "magic".into(),
                    unlock_token_sealed: None,
                    awaiting_configuration: false,
                    now: 2,
                })
                .await
                .unwrap()
        );
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A few devices are looked up one by one, many are matched group by group: both give
    /// the same memberships, static and smart, for the groups asked about only.
    #[tokio::test]
    async fn memberships_agree_for_few_and_many_devices() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("russet.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let svc = MdmService::new(
            store.clone(),
            Arc::new(SecretBox::from_key([7; 32])),
            ServiceOptions::default(),
        );
        let udids: Vec<String> = (0..30).map(|i| format!("M{i:02}")).collect();
        for (i, u) in udids.iter().enumerate() {
            let os = if i % 2 == 0 { "14.6" } else { "15.1" };
            enrolled(store.as_ref(), u, os).await;
        }
        let new = |name: &str, filter: Option<&str>| NewGroup {
            name: name.into(),
            description: None,
            filter: filter.map(str::to_owned),
        };
        svc.create_group(new("Old", Some("os_version < 15")), "t")
            .await
            .unwrap();
        svc.create_group(new("Lab", None), "t").await.unwrap();
        svc.create_group(new("Other", None), "t").await.unwrap();
        svc.add_group_devices("Lab", &ids(&["M00", "SN-M01", "M29"]), "t")
            .await
            .unwrap();
        svc.add_group_devices("Other", &ids(&["M00"]), "t")
            .await
            .unwrap();
        let asked: BTreeSet<String> = ["Old", "Lab", "Gone"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let many = svc.memberships(&udids, &asked).await.unwrap();
        let few = svc.memberships(&udids[..3], &asked).await.unwrap();
        let names = |m: &HashMap<String, BTreeSet<String>>, u: &str| -> Vec<String> {
            m.get(u)
                .map(|g| g.iter().cloned().collect())
                .unwrap_or_default()
        };
        for u in ["M00", "M01", "M02"] {
            assert_eq!(names(&many, u), names(&few, u), "{u}");
        }
        assert_eq!(
            names(&many, "M00"),
            ["Lab", "Old"],
            "Other was not asked about"
        );
        assert_eq!(names(&many, "M01"), ["Lab"]);
        assert_eq!(names(&many, "M02"), ["Old"]);
        assert_eq!(names(&many, "M29"), ["Lab"]);
        assert!(names(&many, "M03").is_empty());
    }

    /// Observers hear exactly the devices whose membership changed, and the facts a Mac
    /// reports; refusals change nothing.
    #[tokio::test]
    async fn membership_changes_are_announced_for_the_devices_they_move() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("russet.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let heard = Arc::new(Heard::default());
        let svc = MdmService::new(
            store.clone(),
            Arc::new(SecretBox::from_key([7; 32])),
            ServiceOptions::default(),
        );
        svc.observe(&(heard.clone() as Arc<dyn DeviceObserver>));
        enrolled(store.as_ref(), "A", "14.6").await;
        enrolled(store.as_ref(), "B", "15.1").await;

        let new = |name: &str, filter: Option<&str>| NewGroup {
            name: name.into(),
            description: None,
            filter: filter.map(str::to_owned),
        };
        svc.create_group(new("Lab", None), "admin").await.unwrap();
        assert!(heard.take().is_empty());
        let old = svc
            .create_group(new("Old", Some("os_version < 15")), "admin")
            .await
            .unwrap();
        assert_eq!(old.info.member_count, 1);
        assert_eq!(heard.take(), [(ids(&["A"]), DeviceChange::Membership)]);

        // By UDID and by serial; again: nothing changes, nothing is announced.
        let added = svc
            .add_group_devices("Lab", &ids(&["A", "SN-B"]), "admin")
            .await
            .unwrap();
        assert_eq!(added.changed, ["A", "SN-B"]);
        assert_eq!(heard.take(), [(ids(&["A", "B"]), DeviceChange::Membership)]);
        let again = svc
            .add_group_devices("Lab", &ids(&["SN-A", "B"]), "admin")
            .await
            .unwrap();
        assert_eq!(again.unchanged, ["SN-A", "B"]);
        assert_eq!(again.details.info.member_count, 2);
        assert!(heard.take().is_empty());
        // Refusals: a smart group, an unknown name (nothing added from the list).
        assert!(matches!(
            svc.add_group_devices("Old", &ids(&["B"]), "admin").await,
            Err(ServiceError::Conflict(_))
        ));
        assert!(matches!(
            svc.remove_group_devices("Lab", &ids(&["A", "NOPE"]), "admin")
                .await,
            Err(ServiceError::NotFound(_))
        ));
        assert_eq!(svc.group("Lab").await.unwrap().info.member_count, 2);
        assert!(heard.take().is_empty());

        // A new filter: only the device that joins is announced.
        let change = GroupChange {
            filter: Some(Some("os_version < 16".into())),
            ..GroupChange::default()
        };
        svc.update_group("Old", change, "admin").await.unwrap();
        assert_eq!(heard.take(), [(ids(&["B"]), DeviceChange::Membership)]);
        // A static group with members does not become smart.
        let change = GroupChange {
            filter: Some(Some("enrolled = true".into())),
            ..GroupChange::default()
        };
        assert!(matches!(
            svc.update_group("Lab", change, "admin").await,
            Err(ServiceError::Conflict(_))
        ));

        // A Mac reports a new OS: its facts are announced, and its smart groups follow.
        let raw = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>\
            <key>UDID</key><string>B</string><key>Status</key><string>Acknowledged</string>\
            <key>CommandUUID</key><string>C-1</string>\
            <key>QueryResponses</key><dict><key>OSVersion</key><string>26.0</string></dict>\
            </dict></plist>";
        let identity = DeviceIdentity {
            cert_sha256: "cert-B".into(),
            not_after: None,
        };
        svc.command_report(&identity, raw, decode_report(raw).unwrap())
            .await
            .unwrap();
        assert_eq!(heard.take(), [(ids(&["B"]), DeviceChange::Facts)]);
        assert_eq!(svc.group_devices("Old").await.unwrap(), ["A"]);
        assert_eq!(svc.groups_of_device("B").await.unwrap(), ["Lab"]);
        assert_eq!(svc.groups_of_device("A").await.unwrap(), ["Lab", "Old"]);

        svc.remove_group_devices("Lab", &ids(&["SN-B"]), "admin")
            .await
            .unwrap();
        assert_eq!(heard.take(), [(ids(&["B"]), DeviceChange::Membership)]);
        svc.delete_group("Lab", "admin").await.unwrap();
        assert_eq!(heard.take(), [(ids(&["A"]), DeviceChange::Membership)]);
        assert!(matches!(
            svc.delete_group("Lab", "admin").await,
            Err(ServiceError::NotFound(_))
        ));

        let actions: Vec<String> = store
            .audit_list(100, None)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|e| e.record.action)
            .collect();
        assert_eq!(
            actions,
            [
                "group.create",
                "group.create",
                "group.devices.add",
                "group.update",
                "group.devices.remove",
                "group.delete",
            ]
        );
    }
}
