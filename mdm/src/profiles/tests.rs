//! The catalog's rules on a real (in-memory SQLite) store: versions, unchanged re-uploads,
//! soft delete, assignments by UDID or serial, sealing, and the bytes a Mac gets.

use super::*;
use crate::protocol::mobileconfig::custom_settings::{self, CustomSettings};
use crate::protocol::mobileconfig::variables::{DeviceVars, Variable};
use crate::store::profiles::Target;
use crate::store::{AuthenticateRecord, DeviceView};

const RESTRICTIONS: &[u8] = include_bytes!("../../testdata/profiles/restrictions.mobileconfig");
const WIFI: &[u8] = include_bytes!("../../testdata/profiles/wifi-office.mobileconfig");
const LOGINWINDOW: &[u8] =
    include_bytes!("../../testdata/profiles/loginwindow-variables.mobileconfig");

async fn service() -> ProfileService {
    let store = crate::store::open("sqlite::memory:").await.expect("store");
    let vault = Arc::new(SecretBox::generate().expect("kek"));
    let core = Arc::new(MdmService::new(
        store.clone(),
        vault.clone(),
        crate::service::ServiceOptions::default(),
    ));
    // The groups the tests assign to (assignments name existing groups only); written to the
    // store directly, so the audit log holds only what the tests do.
    for name in ["Finance", "Design"] {
        let group = crate::store::groups::GroupRecord {
            name: name.into(),
            description: None,
            filter: None,
            created_at: 1,
            updated_at: 1,
        };
        assert!(store.insert_group(&group).await.expect("group"));
    }
    ProfileService::new(
        store,
        vault,
        core,
        ProfileSettings {
            public_url: "https://mdm.acme.example:8443/".into(),
            signer: None,
        },
    )
}

async fn add_device(s: &ProfileService, udid: &str, serial: &str) {
    s.store()
        .authenticate(&AuthenticateRecord {
            device_id: udid.into(),
            enrollment_type: "Device".into(),
            cert_hash: format!("cert-{udid}"),
            cert_not_after: None,
            topic: "com.apple.mgmt.External.test".into(),
            serial_number: Some(serial.into()),
            model: None,
            model_name: None,
            device_name: None,
            os_version: None,
            build_version: None,
            product_name: None,
            raw: b"<plist/>".to_vec(),
            now: 1,
        })
        .await
        .expect("authenticate");
}

async fn actions(s: &ProfileService) -> Vec<(String, String)> {
    s.store()
        .audit_list(100, None)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.record.action, e.record.target))
        .collect()
}

fn changed(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .replace(from, to)
        .into_bytes()
}

#[tokio::test]
async fn uploads_make_versions_and_the_same_bytes_make_none() {
    let s = service().await;
    let first = s.upload(RESTRICTIONS, "alice").await.unwrap();
    assert_eq!((first.version, first.created), (1, true));
    assert_eq!(first.detail.profile.identifier, "com.acme.restrictions");
    assert_eq!(first.warnings.len(), 1, "allowSafari is iOS-only");

    let again = s.upload(RESTRICTIONS, "alice").await.unwrap();
    assert_eq!((again.version, again.created), (1, false));

    let v2 = changed(
        RESTRICTIONS,
        "<key>allowCamera</key>\n\t\t\t<false/>",
        "<key>allowCamera</key>\n\t\t\t<true/>",
    );
    assert_ne!(v2, RESTRICTIONS);
    let second = s.upload(&v2, "bob").await.unwrap();
    assert_eq!((second.version, second.created), (2, true));
    let versions: Vec<(i64, &str)> = second
        .detail
        .versions
        .iter()
        .map(|v| (v.version, v.uploaded_by.as_str()))
        .collect();
    assert_eq!(versions, vec![(2, "bob"), (1, "alice")]);
    assert_eq!(
        actions(&s).await,
        vec![
            (
                "profile.upload".to_string(),
                "com.acme.restrictions".to_string()
            );
            3
        ]
    );
}

#[tokio::test]
async fn bad_uploads_store_nothing() {
    let s = service().await;
    let err = s.upload(b"garbage", "alice").await.unwrap_err();
    assert!(
        matches!(err, ProfileError::Profile(MobileconfigError::Invalid(_))),
        "{err}"
    );
    let mdm = include_bytes!("../../testdata/profiles/second-mdm.mobileconfig");
    let err = s.upload(mdm, "alice").await.unwrap_err();
    assert!(
        matches!(err, ProfileError::Profile(MobileconfigError::Refused(_))),
        "{err}"
    );
    // Russet's own SCEP service, named by the server's public URL.
    let scep = changed(
        WIFI,
        "<string>com.apple.wifi.managed</string>",
        "<string>com.apple.security.scep</string>",
    );
    let scep = changed(
        &scep,
        "<key>ProxyType</key>",
        "<key>PayloadContent</key><dict><key>URL</key>\
         <string>https://mdm.acme.example:8443/scep</string></dict><key>ProxyType</key>",
    );
    let err = s.upload(&scep, "alice").await.unwrap_err();
    assert!(
        err.to_string().contains("is Russet's own SCEP service"),
        "{err}"
    );
    assert!(s.upload(WIFI, "alice").await.is_ok());
    assert!(s.list(true).await.unwrap().len() == 1);
    assert_eq!(actions(&s).await.len(), 1);
}

#[tokio::test]
async fn the_body_is_sealed_and_delivered_as_uploaded() {
    let s = service().await;
    s.upload(WIFI, "alice").await.unwrap();
    let rec = s
        .store()
        .profile_version("com.acme.wifi.office", 1)
        .await
        .unwrap()
        .unwrap();
    let password = b"c0rrect-h0rse-battery-staple";
    assert!(
        !rec.body_sealed
            .windows(password.len())
            .any(|w| w == password)
    );
    assert!(!rec.has_variables && !rec.signed);
    let (bytes, signed) = s
        .deliverable_bytes("com.acme.wifi.office", 1, &DeviceVars::default())
        .await
        .unwrap();
    assert_eq!((bytes.as_slice(), signed), (WIFI, false));
    assert!(matches!(
        s.deliverable_bytes("com.acme.wifi.office", 2, &DeviceVars::default())
            .await,
        Err(ProfileError::NotFound(_))
    ));
}

#[tokio::test]
async fn variables_are_filled_in_per_device() {
    let s = service().await;
    let up = s.upload(LOGINWINDOW, "alice").await.unwrap();
    assert_eq!(up.variables, vec![Variable::Serial, Variable::DeviceName]);
    let vars = DeviceVars {
        serial: Some("C02XK1ZZJG5H".into()),
        udid: Some("UDID-1".into()),
        device_name: Some("Ana's Mac".into()),
        user_short_name: None,
    };
    let (bytes, _) = s
        .deliverable_bytes("com.acme.loginwindow", 1, &vars)
        .await
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("Ana&apos;s Mac (serial C02XK1ZZJG5H) · call $HELPDESK")
            || text.contains("Ana's Mac (serial C02XK1ZZJG5H) · call $HELPDESK"),
        "{text}"
    );
    let no_name = DeviceVars {
        device_name: None,
        ..vars
    };
    assert!(matches!(
        s.deliverable_bytes("com.acme.loginwindow", 1, &no_name)
            .await,
        Err(ProfileError::Expand(_))
    ));
}

#[tokio::test]
async fn a_signed_upload_is_delivered_byte_for_byte() {
    let s = service().await;
    let signed = russet_certs::testing::TestCa::new("Signing CA")
        .issue_device_identity("signer")
        .sign_attached(WIFI);
    let up = s.upload(&signed, "alice").await.unwrap();
    assert!(up.detail.versions[0].signed);
    let (bytes, is_signed) = s
        .deliverable_bytes("com.acme.wifi.office", 1, &DeviceVars::default())
        .await
        .unwrap();
    assert_eq!((bytes, is_signed), (signed, true));
}

#[tokio::test]
async fn custom_settings_are_stored_like_an_upload() {
    let s = service().await;
    let cs = CustomSettings {
        identifier: "com.acme.parallels".into(),
        name: "Parallels Desktop preferences".into(),
        domain: "com.parallels.Parallels Desktop".into(),
        settings: custom_settings::settings_from_json(&serde_json::json!({
            "ProductPromo.ForcePromoOff": true
        }))
        .unwrap(),
    };
    let (up, built) = s.custom_settings(&cs, "alice").await.unwrap();
    assert_eq!((up.version, up.created), (1, true));
    assert_eq!(
        up.detail.profile.payload_types(),
        vec![custom_settings::MANAGED_PREFERENCES]
    );
    // The built bytes are what is stored; uploading them again adds nothing.
    let again = s.upload(&built, "alice").await.unwrap();
    assert_eq!((again.version, again.created), (1, false));
    let entry = s.store().audit_list(10, None).await.unwrap().pop().unwrap();
    assert_eq!(
        entry.record.detail["custom_settings"]["domain"],
        "com.parallels.Parallels Desktop"
    );
}

#[tokio::test]
async fn assignments_take_udids_serials_and_group_names() {
    let s = service().await;
    s.upload(WIFI, "alice").await.unwrap();
    add_device(&s, "UDID-1", "C02SERIAL1").await;
    add_device(&s, "UDID-2", "C02SERIAL2").await;
    let id = "com.acme.wifi.office";

    let err = s
        .assign(
            id,
            &[],
            &["UDID-1".into(), "NOPE".into(), "C02NOPE".into()],
            "alice",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no device with the UDID or serial number NOPE, C02NOPE"
    );
    assert!(s.store().profile_assignments(id).await.unwrap().is_empty());

    let out = s
        .assign(
            id,
            &["Finance".into()],
            &["UDID-1".into(), "C02SERIAL2".into(), "C02SERIAL1".into()],
            "alice",
        )
        .await
        .unwrap();
    assert_eq!(
        out.changed,
        vec![
            Target::group("Finance"),
            Target::device("UDID-1"),
            Target::device("UDID-2")
        ]
    );
    let again = s
        .assign(id, &["Finance".into()], &[], "alice")
        .await
        .unwrap();
    assert!(again.changed.is_empty());
    assert_eq!(again.unchanged, vec![Target::group("Finance")]);

    // A device Russet forgot can still be unassigned by its UDID.
    s.store().delete_device("UDID-2").await.unwrap();
    let out = s
        .unassign(id, &[], &["UDID-2".into()], "bob")
        .await
        .unwrap();
    assert_eq!(out.changed, vec![Target::device("UDID-2")]);
    assert!(matches!(
        s.assign(id, &[], &[], "alice").await,
        Err(ProfileError::BadRequest(_))
    ));
    assert!(matches!(
        s.assign("com.acme.none", &["G".into()], &[], "alice").await,
        Err(ProfileError::NotFound(_))
    ));
    let acts: Vec<String> = actions(&s).await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        acts,
        vec![
            "profile.upload",
            "profile.assign",
            "profile.assign",
            "profile.unassign"
        ]
    );
}

#[tokio::test]
async fn a_groups_profiles_are_the_live_ones_assigned_to_it() {
    let s = service().await;
    s.upload(WIFI, "alice").await.unwrap();
    s.upload(RESTRICTIONS, "alice").await.unwrap();
    add_device(&s, "UDID-1", "C02SERIAL1").await;
    let wifi = "com.acme.wifi.office";
    assert!(s.group_profiles("Finance").await.unwrap().is_empty());
    s.assign(wifi, &["Finance".into()], &[], "alice")
        .await
        .unwrap();
    let other = s.list(false).await.unwrap();
    let restrictions = other
        .iter()
        .find(|p| p.identifier != wifi)
        .map(|p| p.identifier.clone())
        .unwrap();
    // Assigned to another group, or to a device only: not Finance's.
    s.assign(
        &restrictions,
        &["Design".into()],
        &["UDID-1".into()],
        "alice",
    )
    .await
    .unwrap();
    let ids = |v: Vec<crate::store::profiles::ProfileRecord>| {
        v.into_iter().map(|p| p.identifier).collect::<Vec<_>>()
    };
    assert_eq!(ids(s.group_profiles("Finance").await.unwrap()), [wifi]);
    assert_eq!(
        ids(s.group_profiles("Design").await.unwrap()),
        std::slice::from_ref(&restrictions)
    );
    assert!(
        s.group_profiles("finance").await.unwrap().is_empty(),
        "names are exact"
    );
    // A deleted profile is no group's.
    s.delete(wifi, "alice").await.unwrap();
    assert!(s.group_profiles("Finance").await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_is_soft_and_an_upload_brings_the_profile_back() {
    let s = service().await;
    s.upload(WIFI, "alice").await.unwrap();
    s.assign("com.acme.wifi.office", &["Finance".into()], &[], "alice")
        .await
        .unwrap();
    let d = s.delete("com.acme.wifi.office", "bob").await.unwrap();
    assert!(d.detail.profile.deleted_at.is_some());
    assert!(d.detail.assignments.is_empty());
    assert_eq!(d.detail.versions.len(), 1);
    assert!(matches!(
        s.delete("com.acme.wifi.office", "bob").await,
        Err(ProfileError::NotFound(_))
    ));
    assert!(s.list(false).await.unwrap().is_empty());
    assert!(matches!(
        s.assign("com.acme.wifi.office", &["Finance".into()], &[], "alice")
            .await,
        Err(ProfileError::NotFound(_))
    ));
    let entry = s.store().audit_list(1, None).await.unwrap().pop().unwrap();
    assert_eq!(entry.record.action, "profile.delete");
    assert_eq!(
        entry.record.detail["removed_assignments"]["groups"],
        serde_json::json!(["Finance"])
    );
    // The same bytes again: a new version (the deleted profile comes back).
    let back = s.upload(WIFI, "alice").await.unwrap();
    assert_eq!((back.version, back.created), (2, true));
    assert!(back.detail.profile.deleted_at.is_none());
}

/// The catalog as the reconciler sees it: what each Mac should have, and its bytes.
#[tokio::test]
async fn the_reconciler_reads_desired_profiles_and_per_channel_bytes() {
    use super::reconcile::{DesiredSource, Scope, Target as Channel};
    let s = service().await;
    s.upload(WIFI, "alice").await.unwrap();
    s.upload(LOGINWINDOW, "alice").await.unwrap();
    s.upload(RESTRICTIONS, "alice").await.unwrap();
    add_device(&s, "UDID-1", "C02SERIAL1").await;
    add_device(&s, "UDID-2", "C02SERIAL2").await;
    s.assign("com.acme.wifi.office", &[], &["UDID-1".into()], "alice")
        .await
        .unwrap();
    s.assign(
        "com.acme.loginwindow",
        &["Design".into()],
        &["C02SERIAL1".into()],
        "alice",
    )
    .await
    .unwrap();
    s.assign("com.acme.restrictions", &["Design".into()], &[], "alice")
        .await
        .unwrap();
    let d1 = s.store().device("UDID-1").await.unwrap().unwrap();
    let d2 = s.store().device("UDID-2").await.unwrap().unwrap();

    let desired = s.desired_for(&[d1.clone(), d2.clone()]).await.unwrap();
    let ids = |udid: &str| -> Vec<(String, i64, bool)> {
        desired[udid]
            .iter()
            .map(|p| (p.identifier.clone(), p.version, p.per_device))
            .collect()
    };
    assert_eq!(
        ids("UDID-1"),
        vec![
            ("com.acme.loginwindow".to_string(), 1, true),
            ("com.acme.wifi.office".to_string(), 1, false),
        ]
    );
    assert!(
        ids("UDID-2").is_empty(),
        "group assignments wait for the groups feature"
    );
    assert!(desired["UDID-1"].iter().all(|p| p.scope == Scope::System));

    // Group assignments count for the groups a device is in.
    let rows = s
        .store()
        .desired_profiles(&["UDID-2".into()], &["Design".into()])
        .await
        .unwrap();
    let groups =
        std::collections::HashMap::from([("UDID-2".to_string(), vec!["Design".to_string()])]);
    let by_device = super::desired::group_by_device(std::slice::from_ref(&d2), &groups, &rows);
    let names: Vec<&str> = by_device["UDID-2"]
        .iter()
        .map(|p| p.identifier.as_str())
        .collect();
    assert_eq!(names, vec!["com.acme.loginwindow", "com.acme.restrictions"]);

    // A profile restricted to one architecture (migration 0019) reaches only Macs inventory
    // says are of it; a Mac not known yet gets it from neither.
    assert!(
        s.store()
            .set_profile_architecture("com.acme.restrictions", Some("intel"))
            .await
            .unwrap()
    );
    let rows = s
        .store()
        .desired_profiles(&["UDID-2".into()], &["Design".into()])
        .await
        .unwrap();
    for (is_apple_silicon, expected) in [
        (None, vec!["com.acme.loginwindow"]),
        (Some(true), vec!["com.acme.loginwindow"]),
        (
            Some(false),
            vec!["com.acme.loginwindow", "com.acme.restrictions"],
        ),
    ] {
        let mac = DeviceView {
            is_apple_silicon,
            ..d2.clone()
        };
        let by_device = super::desired::group_by_device(std::slice::from_ref(&mac), &groups, &rows);
        let names: Vec<&str> = by_device["UDID-2"]
            .iter()
            .map(|p| p.identifier.as_str())
            .collect();
        assert_eq!(names, expected, "{is_apple_silicon:?}");
    }

    // The device's own values fill the variables in.
    let mut named = d1.clone();
    named.device_name = Some("Ana's Mac".into());
    let channel = Channel {
        enrollment_id: "UDID-1",
        device: &named,
        user_short_name: None,
    };
    let bytes = DesiredSource::deliverable(&s, "com.acme.loginwindow", 1, &channel)
        .await
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("(serial C02SERIAL1)"), "{text}");
    assert!(text.contains("Ana"), "{text}");
    // A Mac that never reported a name cannot get it: the reconciler is told why.
    let nameless = Channel {
        enrollment_id: "UDID-1",
        device: &d1,
        user_short_name: None,
    };
    assert!(matches!(
        DesiredSource::deliverable(&s, "com.acme.loginwindow", 1, &nameless).await,
        Err(crate::service::ServiceError::Conflict(_))
    ));
}
