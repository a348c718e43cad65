//! The DEP client against the simulator.

mod common;

use common::{client, fast_retry, sim};
use russet_dep::sim::{DepSimulator, SimConfig};
use russet_dep::types::{ActivationLockRequest, DeviceStatus, Profile, ProfileStatus};
use russet_dep::{DepClient, DepError};

fn profile() -> Profile {
    Profile {
        profile_name: "Corp Macs".into(),
        url: "https://mdm.example.org/mdm/enroll".into(),
        is_supervised: Some(true),
        is_mandatory: Some(true),
        is_mdm_removable: Some(false),
        await_device_configured: Some(true),
        org_magic: Some("corp-1".into()),
        department: Some("IT".into()),
        support_phone_number: Some("+1 408 555 1010".into()),
        support_email_address: Some("support@example.org".into()),
        language: Some("en".into()),
        region: Some("US".into()),
        skip_setup_items: Some(vec!["AppleID".into(), "Siri".into()]),
        ..Default::default()
    }
}

#[tokio::test]
async fn session_and_account_with_apples_headers() {
    let sim = sim(3).await;
    let c = client(&sim);
    let account = c.account().await.expect("account");
    assert_eq!(account.server_name.as_deref(), Some("Russet DEP simulator"));
    assert!(account.urls.iter().any(|u| u.uri == "/server/devices"));
    assert_eq!(sim.requests("/session"), 1);
    let stats = sim.stats();
    assert_eq!(stats.last_authorization_realm.as_deref(), Some("ADM"));
    assert_eq!(stats.last_protocol_version.as_deref(), Some("7"));
    assert_eq!(
        stats.last_user_agent,
        Some(format!("russet/{}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        stats.last_content_type.as_deref(),
        Some("application/json;charset=UTF8")
    );
    assert_eq!(
        stats.last_accept.as_deref(),
        Some("application/json;charset=UTF8")
    );
    // The session is reused.
    c.account().await.expect("account");
    assert_eq!(sim.requests("/session"), 1);
}

#[tokio::test]
async fn wrong_oauth_secret_is_refused() {
    let sim = sim(1).await;
    for field in 0..3 {
        let mut tokens = sim.tokens();
        match field {
            0 => tokens.consumer_secret.push('x'),
            1 => tokens.access_secret = "AS_wrong".into(),
            _ => tokens.access_token = "AT_other".into(),
        }
        let c = DepClient::new(sim.url(), tokens, "")
            .expect("client")
            .with_retry_policy(fast_retry());
        let err = c.account().await.expect_err("refused");
        assert!(err.is_unauthorized(), "{err}");
        assert_eq!(sim.requests("/account"), 0);
    }
}

#[tokio::test]
async fn missing_user_agent_is_a_400() {
    let sim = sim(1).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/account", sim.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.text().await.expect("body"), "USER_AGENT_MISSING");
}

#[tokio::test]
async fn expired_session_reauthenticates_once_and_replays() {
    let sim = sim(5).await;
    let c = client(&sim);
    c.account().await.expect("account");
    sim.expire_sessions();
    c.account().await.expect("account after re-auth");
    assert_eq!(sim.requests("/session"), 2);
    assert_eq!(sim.requests("/account"), 3);

    // depsim's 403 FORBIDDEN for a stale session is handled the same way.
    sim.inject("/account", 403, "FORBIDDEN", 1);
    c.account().await.expect("account after FORBIDDEN");
    assert_eq!(sim.requests("/session"), 3);

    // A second consecutive 401 is not replayed again.
    sim.inject("/account", 401, "UNAUTHORIZED", 2);
    let err = c.account().await.expect_err("401 twice");
    assert!(err.is_unauthorized());
}

#[tokio::test]
async fn rotated_session_header_is_adopted() {
    let sim = DepSimulator::start(SimConfig {
        devices: 50,
        rotate_sessions: true,
        ..Default::default()
    })
    .await
    .expect("sim");
    let c = client(&sim);
    for _ in 0..5 {
        c.account().await.expect("account");
    }
    c.fetch_devices(None, None).await.expect("fetch");
    // Each response killed the old token; only adoption avoids a new /session.
    assert_eq!(sim.requests("/session"), 1);
}

#[tokio::test]
async fn stale_session_as_403_forbidden_config() {
    let sim = DepSimulator::start(SimConfig {
        devices: 1,
        stale_session_status: 403,
        ..Default::default()
    })
    .await
    .expect("sim");
    let c = client(&sim);
    c.account().await.expect("account");
    sim.expire_sessions();
    c.account().await.expect("re-auth on FORBIDDEN");
    assert_eq!(sim.requests("/session"), 2);
}

#[tokio::test]
async fn terms_not_signed_and_access_denied_are_typed() {
    let sim = sim(1).await;
    let c = client(&sim);
    sim.inject("/account", 403, "T_C_NOT_SIGNED", 1);
    let err = c.account().await.expect_err("T&C");
    assert!(err.is_terms_not_signed(), "{err}");
    assert!(matches!(err, DepError::Api { status: 403, .. }));
    sim.inject("/session", 403, "ACCESS_DENIED", 1);
    c.invalidate_session();
    let err = c.account().await.expect_err("denied");
    assert!(err.is_access_denied(), "{err}");
    c.account().await.expect("recovers");
}

#[tokio::test]
async fn retries_5xx_and_429_then_gives_up() {
    let sim = sim(1).await;
    let c = client(&sim);
    sim.inject("/account", 500, "", 2);
    c.account().await.expect("success after two 500s");
    assert_eq!(sim.requests("/account"), 3);
    sim.inject("/account", 429, "TOO_MANY_REQUESTS", 1);
    sim.inject("/account", 503, "", 1);
    c.account().await.expect("success after 429 + 503");
    sim.inject("/account", 500, "", 10);
    let err = c.account().await.expect_err("bounded retries");
    assert_eq!(err.status(), Some(500));
    assert_eq!(sim.requests("/account"), 3 + 3 + 4);
    sim.clear_injections();
}

#[tokio::test]
async fn transport_errors_are_typed() {
    let sim = sim(1).await;
    let tokens = sim.tokens();
    let url = sim.url().to_owned();
    drop(sim);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let c = DepClient::new(url, tokens, "")
        .expect("client")
        .with_retry_policy(fast_retry());
    assert!(matches!(c.account().await, Err(DepError::Transport(_))));
    assert!(matches!(
        DepClient::new("not a url", common::sim(0).await.tokens(), ""),
        Err(DepError::Config(_))
    ));
}

#[tokio::test]
async fn profiles_define_get_assign_remove_disown() {
    let sim = sim(6).await;
    let c = client(&sim);
    let serials: Vec<String> = sim.devices().into_iter().map(|d| d.serial_number).collect();

    let mut p = profile();
    p.devices = Some(vec![serials[0].clone(), "C02NOTMINE00".into()]);
    let defined = c.define_profile(&p).await.expect("define");
    assert_eq!(defined.devices[&serials[0]], DeviceStatus::Success);
    assert_eq!(defined.devices["C02NOTMINE00"], DeviceStatus::NotAccessible);
    let got = c.get_profile(&defined.profile_uuid).await.expect("get");
    assert_eq!(got.profile_name, "Corp Macs");
    assert_eq!(
        got.profile_uuid.as_deref(),
        Some(defined.profile_uuid.as_str())
    );
    assert_eq!(got.skip_setup_items, p.skip_setup_items);
    assert_eq!(
        sim.device(&serials[0]).and_then(|d| d.profile_status),
        Some(ProfileStatus::Assigned)
    );

    sim.set_assign_outcome(&serials[2], Some(DeviceStatus::Failed));
    sim.set_assign_outcome(&serials[3], Some(DeviceStatus::Throttled));
    let batch = vec![
        serials[1].clone(),
        serials[2].clone(),
        serials[3].clone(),
        "C02UNKNOWN00".into(),
    ];
    let assigned = c
        .assign_profile(&defined.profile_uuid, &batch)
        .await
        .expect("assign");
    assert_eq!(assigned.profile_uuid, defined.profile_uuid);
    assert_eq!(assigned.devices[&serials[1]], DeviceStatus::Success);
    assert_eq!(assigned.devices[&serials[2]], DeviceStatus::Failed);
    assert_eq!(assigned.devices[&serials[3]], DeviceStatus::Throttled);
    assert_eq!(
        assigned.devices["C02UNKNOWN00"],
        DeviceStatus::NotAccessible
    );
    assert_eq!(assigned.retry_after_seconds, Some(60));
    assert_eq!(
        sim.device(&serials[2]).and_then(|d| d.profile_status),
        Some(ProfileStatus::Empty)
    );
    sim.mark_pushed(&serials[1]);
    assert_eq!(
        sim.device(&serials[1]).and_then(|d| d.profile_status),
        Some(ProfileStatus::Pushed)
    );

    let err = c
        .assign_profile("NOPE", &batch[..1])
        .await
        .expect_err("unknown profile");
    assert_eq!(err.status(), Some(404));

    let removed = c
        .remove_profile(
            &[
                serials[1].clone(),
                serials[4].clone(),
                "C02UNKNOWN00".into(),
            ],
            None,
        )
        .await
        .expect("remove");
    assert_eq!(removed.devices[&serials[1]], DeviceStatus::Success);
    assert_eq!(removed.devices[&serials[4]], DeviceStatus::Failed);
    assert_eq!(removed.devices["C02UNKNOWN00"], DeviceStatus::NotAccessible);
    assert_eq!(
        sim.device(&serials[1]).and_then(|d| d.profile_status),
        Some(ProfileStatus::Removed)
    );
    let removed = c
        .remove_profile(&serials[..1], Some(&defined.profile_uuid))
        .await
        .expect("remove by uuid");
    assert_eq!(removed.devices[&serials[0]], DeviceStatus::Success);

    let details = c
        .device_details(&[serials[5].clone(), "C02UNKNOWN00".into()])
        .await
        .expect("details");
    assert_eq!(
        details.devices[&serials[5]].device.model.as_deref(),
        Some("MacBook Air")
    );
    assert_eq!(
        details.devices[&serials[5]].response_status.as_deref(),
        Some("SUCCESS")
    );
    assert_eq!(
        details.devices["C02UNKNOWN00"].response_status.as_deref(),
        Some("NOT_ACCESSIBLE")
    );

    let lock = c
        .activation_lock(&ActivationLockRequest {
            device: serials[5].clone(),
            escrow_key: Some("KEY".into()),
            lost_message: None,
        })
        .await
        .expect("lock");
    assert_eq!(lock.response_status, "SUCCESS");

    let disowned = c
        .disown(&[serials[5].clone(), "C02UNKNOWN00".into()])
        .await
        .expect("disown");
    assert_eq!(disowned.devices[&serials[5]], DeviceStatus::Success);
    assert_eq!(
        disowned.devices["C02UNKNOWN00"],
        DeviceStatus::NotAccessible
    );
    assert!(sim.device(&serials[5]).is_none());
    assert_eq!(sim.devices().len(), 5);
}

#[tokio::test]
async fn profile_validation_errors_like_apple() {
    let sim = sim(1).await;
    let c = client(&sim);
    let cases: Vec<(Profile, &str)> = vec![
        (
            Profile {
                profile_name: String::new(),
                ..profile()
            },
            "CONFIG_NAME_REQUIRED",
        ),
        (
            Profile {
                profile_name: "x".repeat(126),
                ..profile()
            },
            "CONFIG_NAME_INVALID",
        ),
        (
            Profile {
                url: String::new(),
                ..profile()
            },
            "CONFIG_URL_REQUIRED",
        ),
        (
            Profile {
                url: format!("https://{}", "a".repeat(2000)),
                ..profile()
            },
            "CONFIG_URL_INVALID",
        ),
        (
            Profile {
                is_supervised: Some(false),
                ..profile()
            },
            "FLAGS_INVALID",
        ),
        (
            Profile {
                department: Some("d".repeat(126)),
                ..profile()
            },
            "DEPARTMENT_INVALID",
        ),
        (
            Profile {
                org_magic: Some("m".repeat(257)),
                ..profile()
            },
            "MAGIC_INVALID",
        ),
        (
            Profile {
                support_phone_number: Some("1".repeat(51)),
                ..profile()
            },
            "SUPPORT_PHONE_INVALID",
        ),
        (
            Profile {
                support_email_address: Some("nope".into()),
                ..profile()
            },
            "SUPPORT_EMAIL_INVALID",
        ),
    ];
    for (p, code) in cases {
        let err = c.define_profile(&p).await.expect_err(code);
        assert_eq!(err.code(), Some(code), "{err}");
        assert_eq!(err.status(), Some(400));
    }
    assert!(sim.profiles().is_empty());
}

#[tokio::test]
async fn client_side_request_checks() {
    let sim = sim(1).await;
    let c = client(&sim);
    assert!(matches!(
        c.fetch_devices(None, Some(1001)).await,
        Err(DepError::InvalidRequest(_))
    ));
    assert!(matches!(
        c.sync_devices("", None).await,
        Err(DepError::InvalidRequest(_))
    ));
    assert!(matches!(
        c.assign_profile("u", &[]).await,
        Err(DepError::InvalidRequest(_))
    ));
    let many: Vec<String> = (0..1001).map(|i| format!("S{i}")).collect();
    assert!(matches!(
        c.disown(&many).await,
        Err(DepError::InvalidRequest(_))
    ));
    assert_eq!(sim.requests("/session"), 0);
}

#[tokio::test]
async fn cursor_errors_are_typed() {
    let sim = sim(3).await;
    let c = client(&sim);
    let err = c
        .fetch_devices(Some("garbage"), None)
        .await
        .expect_err("invalid");
    assert!(err.is_cursor_invalid() && err.needs_cursor_reset());
    let page = c.fetch_devices(None, None).await.expect("fetch");
    assert!(!page.more_to_follow && page.devices.len() == 3);
    let cursor = page.cursor.expect("cursor");
    let err = c
        .fetch_devices(Some(&cursor), None)
        .await
        .expect_err("exhausted");
    assert!(err.is_cursor_exhausted());
    sim.expire_cursors();
    let err = c.sync_devices(&cursor, None).await.expect_err("expired");
    assert!(err.is_cursor_expired());
}

#[tokio::test]
async fn simulator_token_file_round_trips() {
    let sim = sim(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dep-token.json");
    sim.write_token(&path).expect("write");
    let (cert, key) = russet_dep::generate_link_keypair("sim").expect("keypair");
    let bytes = std::fs::read(&path).expect("read");
    let tokens = russet_dep::decrypt_token(&bytes, &cert, &key).expect("plain JSON token");
    assert_eq!(tokens, sim.tokens());
    assert!(tokens.consumer_key.starts_with("CK_") && tokens.access_secret.starts_with("AS_"));
    let c = DepClient::new(sim.url(), tokens, "russet-test/1").expect("client");
    c.account().await.expect("works");
    assert_eq!(
        sim.stats().last_user_agent.as_deref(),
        Some("russet-test/1")
    );
}
