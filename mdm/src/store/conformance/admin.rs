//! What admins see and do: device lists and deletion, the audit log, settings, admin tokens,
//! the liveness probe.

use super::fixtures::*;
use crate::store::*;

pub(super) async fn delete_device_keeps_escrow_and_audit(s: &dyn Store) {
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
        address: Some("192.0.2.1".into()),
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

pub(super) async fn list_devices_filters_and_pages(s: &dyn Store) {
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
    // By IDs, any number of them, unknown ones left out, user channels included.
    let mut wanted: Vec<String> = (0..700).map(|i| format!("NOPE-{i}")).collect();
    wanted.extend(["D3".to_string(), "D1".to_string()]);
    let by_ids = s.devices_by_ids(&wanted).await.unwrap();
    assert_eq!(ids(by_ids.clone()), ["D1", "D3"]);
    assert_eq!(by_ids[0].user_channels.len(), 1);

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

pub(super) async fn audit_is_newest_first_with_cursor(s: &dyn Store) {
    for i in 0..5 {
        s.audit_append(&AuditRecord {
            at: 100 + i,
            actor: "admin".into(),
            action: "command.enqueue".into(),
            target: format!("t{i}"),
            address: None,
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

pub(super) async fn settings_upsert(s: &dyn Store) {
    assert_eq!(s.setting("k").await.unwrap(), None);
    s.set_setting("k", "v1").await.unwrap();
    s.set_setting("k", "v2").await.unwrap();
    s.set_setting("other", "x").await.unwrap();
    assert_eq!(s.setting("k").await.unwrap().as_deref(), Some("v2"));
    assert_eq!(s.setting("other").await.unwrap().as_deref(), Some("x"));
}

fn new_admin<'a>(name: &'a str, role: &'a str, hash: &'a [u8], now: i64) -> admin::NewAdmin<'a> {
    admin::NewAdmin {
        name,
        role,
        token_hash: hash,
        created_by: Some("root"),
        now,
    }
}

pub(super) async fn admins_and_their_tokens(s: &dyn Store) {
    assert!(s.admin_tokens().await.unwrap().is_empty());
    assert!(s.admins().await.unwrap().is_empty());
    let ops = s
        .create_admin(&new_admin("ops", "operator", &[1; 32], 1))
        .await
        .unwrap()
        .expect("created");
    let ci = s
        .create_admin(&new_admin("ci", "viewer", &[2; 32], 2))
        .await
        .unwrap()
        .expect("created");
    assert_ne!(ops.id, ci.id);
    // A taken name is refused, and nothing of the attempt is stored.
    assert_eq!(
        s.create_admin(&new_admin("ops", "admin", &[3; 32], 3))
            .await
            .unwrap(),
        None
    );
    let tokens = s.admin_tokens().await.unwrap();
    let view: Vec<(&str, &str, &[u8])> = tokens
        .iter()
        .map(|t| (t.name.as_str(), t.role.as_str(), t.hash.as_slice()))
        .collect();
    assert_eq!(
        view,
        [
            ("ops", "operator", &[1u8; 32][..]),
            ("ci", "viewer", &[2u8; 32][..])
        ]
    );
    let all = s.admins().await.unwrap();
    assert_eq!(all, [ops.clone(), ci.clone()]);
    assert_eq!(all[0].created_by.as_deref(), Some("root"));
    assert_eq!(all[0].tokens, 1);
}

pub(super) async fn revoking_drops_tokens_and_keeps_the_last_admin(s: &dyn Store) {
    for (i, (name, role)) in [("root", "admin"), ("ops", "operator"), ("boss", "admin")]
        .into_iter()
        .enumerate()
    {
        let hash = [i as u8 + 1; 32];
        s.create_admin(&new_admin(name, role, &hash, i as i64))
            .await
            .unwrap()
            .expect("created");
    }
    assert_eq!(
        s.revoke_admin("ops", "root", 10).await.unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        s.revoke_admin("ops", "root", 11).await.unwrap(),
        RevokeOutcome::AlreadyRevoked
    );
    assert_eq!(
        s.revoke_admin("nobody", "root", 11).await.unwrap(),
        RevokeOutcome::NotFound
    );
    assert_eq!(
        s.revoke_admin("root", "boss", 12).await.unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        s.revoke_admin("boss", "boss", 13).await.unwrap(),
        RevokeOutcome::LastAdmin
    );
    let names: Vec<String> = s
        .admin_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["boss"]);
    let ops = s
        .admins()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.name == "ops")
        .unwrap();
    assert_eq!(
        (ops.revoked_at, ops.revoked_by.as_deref(), ops.tokens),
        (Some(10), Some("root"), 0)
    );
    // A revoked name is not reused.
    assert_eq!(
        s.create_admin(&new_admin("ops", "viewer", &[9; 32], 20))
            .await
            .unwrap(),
        None
    );
}

pub(super) async fn ping_and_backend(s: &dyn Store) {
    s.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&s.backend()));
}
