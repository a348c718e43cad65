//! Parallels Desktop activation per group, end to end on SQLite and PostgreSQL: simulated
//! Macs that keep the profiles they install get `com.parallels.desktop.managedprefs` with
//! `ActivationExperience` and the license key (or SSO and its texts) when their group has an
//! activation, the new settings when it changes, nothing after it is removed or for a Mac
//! outside the group. The license key is sealed: not in the database's bytes, not in any
//! answer of the admin API (activation, profile, commands, device, audit), only its last four
//! characters. Bad input is a 400 naming its field without echoing the key; a viewer reads
//! but may not set; deleting the group takes the profile away. The CLI reads the key from a
//! file.

use reqwest::Method;
use russet_mdm::cli::Command;
use russet_tests::{Backend, ManagedMac, TestServer};
use serde_json::{Value, json};

russet_tests::on_both_backends!(
    a_groups_macs_get_its_activation_and_the_key_stays_sealed,
    the_cli_sets_shows_and_removes,
);

const KEY: &str = "A1B2C3-D4E5F6-G7H8I9-J0K1L2-M3N4O5";
const DOMAIN: &str = "com.parallels.desktop.managedprefs";

fn path(group: &str) -> String {
    format!("/api/v1/groups/{group}/parallels-activation")
}

/// Parallels' managed preferences a Mac holds (the forced settings of the domain), or `None`;
/// fails if two installed profiles carry the domain.
fn parallels_prefs(mac: &ManagedMac) -> Option<plist::Dictionary> {
    let mut found: Vec<plist::Dictionary> = mac
        .profiles
        .values()
        .filter_map(|p| plist::from_bytes::<plist::Dictionary>(&p.content).ok())
        .filter_map(|top| {
            top.get("PayloadContent")?
                .as_array()?
                .first()?
                .as_dictionary()?
                .get("PayloadContent")?
                .as_dictionary()?
                .get(DOMAIN)?
                .as_dictionary()?
                .get("Forced")?
                .as_array()?
                .first()?
                .as_dictionary()?
                .get("mcx_preference_settings")?
                .as_dictionary()
                .cloned()
        })
        .collect();
    assert!(found.len() <= 1, "two activation profiles: {found:?}");
    found.pop()
}

fn key(d: &plist::Dictionary, k: &str) -> Option<String> {
    d.get(k)
        .and_then(plist::Value::as_string)
        .map(str::to_string)
}

/// A 400 whose message starts with the field and does not carry `secret`.
fn assert_bad(answer: (u16, Value), field: &str, secret: &str) {
    let (status, v) = answer;
    assert_eq!(status, 400, "{field}: {v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.starts_with(&format!("{field}:")), "{field}: {msg}");
    assert!(!v.to_string().contains(secret), "the key is echoed: {v}");
}

/// Every answer of the admin API an admin could read about this Mac and the activation.
async fn everything_readable(srv: &TestServer, mac: &ManagedMac, profile: &str) -> String {
    let mut all = String::new();
    let udid = &mac.mac.udid;
    for p in [
        path("Engineering"),
        "/api/v1/parallels-activations".to_string(),
        format!("/api/v1/profiles/{profile}"),
        format!("/api/v1/profiles/{profile}/status"),
        "/api/v1/profiles".to_string(),
        format!("/api/v1/devices/{udid}"),
        format!("/api/v1/devices/{udid}/profiles"),
        "/api/v1/audit?limit=500".to_string(),
    ] {
        all.push_str(&srv.api_ok(Method::GET, &p, None).await.to_string());
    }
    let commands = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{udid}/commands"),
            None,
        )
        .await;
    all.push_str(&commands.to_string());
    for c in commands["commands"].as_array().expect("commands") {
        let uuid = c["command_uuid"].as_str().expect("uuid");
        all.push_str(
            &srv.api_ok(Method::GET, &format!("/api/v1/commands/{uuid}"), None)
                .await
                .to_string(),
        );
    }
    all
}

async fn a_groups_macs_get_its_activation_and_the_key_stays_sealed(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut member = ManagedMac::new(srv.mac());
    let mut outsider = ManagedMac::new(srv.mac());
    for mac in [&mut member, &mut outsider] {
        mac.enroll().await;
        mac.converge().await;
    }
    srv.group_with("Engineering", &[member.mac.udid.as_str()])
        .await;
    srv.group_with("Sales", &[]).await;

    // Bad input: a 400 naming the field, never repeating the key; an unknown group is a 404.
    let engineering = path("Engineering");
    let set = |body: Value| srv.api(Method::PUT, &engineering, Some(body));
    assert_bad(
        set(json!({"experience": "license_key"})).await,
        "license_key",
        KEY,
    );
    assert_bad(
        set(json!({"experience": "license_key", "license_key": "A1B2C3 D4E5F6 G7H8I9"})).await,
        "license_key",
        "A1B2C3 D4E5F6",
    );
    assert_bad(
        set(json!({"experience": "sso", "license_key": KEY})).await,
        "license_key",
        KEY,
    );
    assert_bad(
        set(json!({"experience": "sso", "sso_texts": {"LicenseKey": "x"}})).await,
        "sso_texts",
        KEY,
    );
    assert_bad(set(json!({"experience": "trial"})).await, "experience", KEY);
    let (status, v) = set(json!({"experience": "sso", "extra": 1})).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = srv
        .api(
            Method::PUT,
            &path("Nobody"),
            Some(json!({"experience": "sso"})),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = srv.api(Method::GET, &path("Sales"), None).await;
    assert_eq!(status, 404, "{v}");

    // A license key for the group: the answer shows its last four characters only.
    let v = srv
        .api_ok(
            Method::PUT,
            &path("Engineering"),
            Some(json!({"experience": "license_key", "license_key": KEY.to_lowercase()})),
        )
        .await;
    assert_eq!(v["experience"], "license_key", "{v}");
    assert_eq!(v["activation_experience"], "License Key", "{v}");
    assert_eq!(v["license_key_hint"], "N4O5", "{v}");
    let profile = v["profile"].as_str().expect("profile").to_owned();
    assert!(
        profile.starts_with("org.russet.parallels-activation."),
        "{profile}"
    );

    // The group's Mac gets Parallels' preferences with the key (stored in capitals); the
    // other Mac gets nothing.
    member.converge().await;
    outsider.converge().await;
    let prefs = parallels_prefs(&member).expect("the member has the activation");
    assert_eq!(
        key(&prefs, "ActivationExperience").as_deref(),
        Some("License Key")
    );
    assert_eq!(key(&prefs, "LicenseKey").as_deref(), Some(KEY));
    assert!(parallels_prefs(&outsider).is_none());
    let device = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{}", member.mac.udid),
            None,
        )
        .await;
    let a = &device["parallels_activation"];
    assert_eq!(a["experience"], "license_key", "{a}");
    assert_eq!(a["group"], "Engineering", "{a}");
    assert_eq!(a["profile"], json!(profile), "{a}");
    assert_eq!(a["state"], "verified", "{a}");
    let other = srv
        .api_ok(
            Method::GET,
            &format!("/api/v1/devices/{}", outsider.mac.udid),
            None,
        )
        .await;
    assert_eq!(other["parallels_activation"], Value::Null);

    // The key is in no answer an admin can read, and not in the database's bytes.
    let readable = everything_readable(&srv, &member, &profile).await;
    assert!(readable.contains(&profile), "the reads cover the profile");
    assert!(!readable.contains(KEY), "the license key in an API answer");
    assert!(!readable.contains(&KEY.to_lowercase()));
    let dump = srv.database_dump().await;
    assert!(
        dump.windows(profile.len()).any(|w| w == profile.as_bytes()),
        "the dump holds the profile's rows"
    );
    let hex: String = KEY.bytes().map(|b| format!("{b:02x}")).collect();
    for needle in [KEY.to_string(), KEY.to_lowercase(), hex] {
        assert!(
            !dump.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the license key in the clear in the database ({needle})"
        );
    }

    // Switched to SSO with a dialog text: a new version without the key.
    srv.api_ok(
        Method::PUT,
        &path("Engineering"),
        Some(json!({"experience": "SSO",
                    "sso_texts": {"SSOWelcomeText": "Sign in with your Acme account"}})),
    )
    .await;
    member.converge().await;
    let prefs = parallels_prefs(&member).expect("still there");
    assert_eq!(key(&prefs, "ActivationExperience").as_deref(), Some("SSO"));
    assert_eq!(key(&prefs, "LicenseKey"), None);
    assert_eq!(
        key(&prefs, "SSOWelcomeText").as_deref(),
        Some("Sign in with your Acme account")
    );
    let list = srv
        .api_ok(Method::GET, "/api/v1/parallels-activations", None)
        .await;
    assert_eq!(
        list["parallels_activations"][0]["license_key_hint"],
        Value::Null,
        "{list}"
    );

    // A viewer reads but may not set or remove.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/admins",
            Some(json!({"name": "vera", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let vera = v["token"].as_str().expect("token").to_owned();
    let (status, v) = srv
        .api_with_token(
            Method::PUT,
            &path("Engineering"),
            Some(json!({"experience": "sso"})),
            Some(&vera),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    let (status, _) = srv
        .api_with_token(Method::DELETE, &path("Engineering"), None, Some(&vera))
        .await;
    assert_eq!(status, 403);
    let (status, _) = srv
        .api_with_token(Method::GET, &path("Engineering"), None, Some(&vera))
        .await;
    assert_eq!(status, 200);

    // Uploads cannot take Russet's identifiers.
    let (status, v) = srv
        .api(
            Method::POST,
            "/api/v1/profiles/custom-settings",
            Some(
                json!({"identifier": format!("{profile}.mine"), "name": "Mine",
                        "domain": DOMAIN, "settings": {"LicenseKey": "x"}}),
            ),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {v}");

    // Removed: gone from the Mac, and audited (set twice, removed once) without the key.
    let v = srv.api_ok(Method::DELETE, &path("Engineering"), None).await;
    assert_eq!(v["removed"]["group"], "Engineering", "{v}");
    member.converge().await;
    assert!(parallels_prefs(&member).is_none());
    let (status, _) = srv.api(Method::GET, &path("Engineering"), None).await;
    assert_eq!(status, 404);
    let audit = srv.api_ok(Method::GET, "/api/v1/audit", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("parallels_activation."))
        .collect();
    assert_eq!(
        actions,
        [
            "parallels_activation.remove",
            "parallels_activation.set",
            "parallels_activation.set"
        ]
    );
    assert!(!audit.to_string().contains(KEY));

    // Set again, then the group deleted: gone from the Mac and from the catalog.
    srv.api_ok(
        Method::PUT,
        &path("Engineering"),
        Some(json!({"experience": "license_key", "license_key": KEY})),
    )
    .await;
    member.converge().await;
    assert!(parallels_prefs(&member).is_some());
    srv.api_ok(Method::DELETE, "/api/v1/groups/Engineering", None)
        .await;
    member.converge().await;
    assert!(parallels_prefs(&member).is_none());
    let v = srv.api_ok(Method::GET, "/api/v1/profiles", None).await;
    assert!(!v.to_string().contains(&profile), "{v}");
    srv.stop().await;
}

/// `russet parallels-activation …` run in-process against `srv`.
async fn cli(srv: &TestServer, args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["parallels-activation"];
    argv.extend_from_slice(args);
    let Command::ParallelsActivation(cmd) = srv.cli(&argv)?.command else {
        panic!("not a parallels-activation command");
    };
    russet_mdm::cli::parallels_activation::run(cmd).await
}

async fn the_cli_sets_shows_and_removes(backend: Backend) {
    let srv = TestServer::start(backend).await;
    srv.group_with("Engineering", &[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("parallels.key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("write");
    let key_path = key_file.display().to_string();

    // The key is not taken on the command line; SSO texts only with --sso.
    assert!(
        cli(
            &srv,
            &["set", "--group", "Engineering", "--license-key", KEY]
        )
        .await
        .is_err()
    );
    assert!(
        cli(
            &srv,
            &[
                "set",
                "--group",
                "Engineering",
                "--license-key-file",
                &key_path,
                "--sso-text",
                "A=b"
            ]
        )
        .await
        .is_err()
    );
    cli(
        &srv,
        &[
            "set",
            "--group",
            "Engineering",
            "--license-key-file",
            &key_path,
        ],
    )
    .await
    .expect("set");
    let v = srv.api_ok(Method::GET, &path("Engineering"), None).await;
    assert_eq!(v["license_key_hint"], "N4O5", "{v}");
    cli(&srv, &["show", "--group", "Engineering"])
        .await
        .expect("show");
    cli(&srv, &["list", "--json"]).await.expect("list");
    cli(
        &srv,
        &[
            "set",
            "--group",
            "Engineering",
            "--sso",
            "--sso-text",
            "SSOWelcomeText=Hello",
        ],
    )
    .await
    .expect("set sso");
    let v = srv.api_ok(Method::GET, &path("Engineering"), None).await;
    assert_eq!(v["sso_texts"], json!({"SSOWelcomeText": "Hello"}), "{v}");
    // A text without '=' is refused before anything is sent.
    assert!(
        cli(
            &srv,
            &["set", "--group", "Engineering", "--sso", "--sso-text", "x"]
        )
        .await
        .is_err()
    );
    cli(&srv, &["remove", "--group", "Engineering"])
        .await
        .expect("remove");
    let (status, _) = srv.api(Method::GET, &path("Engineering"), None).await;
    assert_eq!(status, 404);
    // Removing what is not there is an error the admin sees.
    assert!(
        cli(&srv, &["remove", "--group", "Engineering"])
            .await
            .is_err()
    );
    srv.stop().await;
}
