//! The `russet` binary as an admin uses it: `serve` on a fresh data dir, the CLI finding server
//! and token from that data dir, human and JSON output, one-line errors, graceful SIGTERM.

use plist::{Dictionary, Value};
use russet_certs::testing::{DeviceIdentity, TestCa};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_russet");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn cli(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUSSET_SERVER")
        .env_remove("RUSSET_TOKEN")
        .output()
        .expect("russet runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, ca: &Path, device_port: u16) -> Server {
    start_with(dir, ca, device_port, &[])
}

fn start_with(dir: &Path, ca: &Path, device_port: u16, extra: &[&str]) -> Server {
    let child = Command::new(BIN)
        .args(["serve", "--insecure-http", "--admin-listen", "127.0.0.1:0"])
        // The admin's commands are the only ones queued here (inventory, on by default, would
        // queue its own ahead of them after the enrollment); `inventory refresh` still asks.
        .args(["--inventory", "false"])
        .args(extra)
        .arg("--listen")
        .arg(format!("127.0.0.1:{device_port}"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--device-ca")
        .arg(ca)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("russet serve starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("admin-url").exists() || !dir.join("admin-token").exists() {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child }
}

fn signed_put(
    http: &reqwest::blocking::Client,
    url: &str,
    id: &DeviceIdentity,
    ct: &str,
    d: Dictionary,
) -> u16 {
    let mut body = Vec::new();
    Value::Dictionary(d)
        .to_writer_xml(&mut body)
        .expect("plist");
    http.put(url)
        .header("Content-Type", ct)
        .header("Mdm-Signature", id.sign_body(&body))
        .body(body)
        .send()
        .expect("device request")
        .status()
        .as_u16()
}

fn dict(entries: &[(&str, Value)]) -> Dictionary {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// Enroll a Mac: `Authenticate` (with `details`, e.g. its serial number) and `TokenUpdate`.
fn enroll(
    http: &reqwest::blocking::Client,
    port: u16,
    id: &DeviceIdentity,
    udid: &str,
    details: &[(&str, Value)],
) {
    let checkin = format!("http://127.0.0.1:{port}/mdm/checkin");
    let ct = "application/x-apple-aspen-mdm-checkin";
    let topic = Value::String("com.apple.mgmt.External.test".into());
    let mut auth = dict(&[
        ("MessageType", Value::String("Authenticate".into())),
        ("Topic", topic.clone()),
        ("UDID", Value::String(udid.into())),
    ]);
    auth.extend(dict(details));
    assert_eq!(signed_put(http, &checkin, id, ct, auth), 200);
    let tu = dict(&[
        ("MessageType", Value::String("TokenUpdate".into())),
        ("Topic", topic),
        ("UDID", Value::String(udid.into())),
        ("Token", Value::Data(vec![7; 32])),
        ("PushMagic", Value::String("MAGIC".into())),
    ]);
    assert_eq!(signed_put(http, &checkin, id, ct, tu), 200);
}

#[test]
fn serve_and_cli_round_trip() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let ca = TestCa::new("CLI test CA");
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write ca");
    let port = free_port();
    let mut server = start(&data, &ca_path, port);

    // Secrets on disk are owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["admin-token", "kek"] {
            let mode = std::fs::metadata(data.join(f))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} must be 0600");
        }
    }

    let out = cli(&data, &["devices", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).starts_with("UDID"), "{}", stdout(&out));

    // Errors: non-zero exit, one line on stderr.
    let out = cli(
        &data,
        &["command", "send", "NO-SUCH-MAC", "--type", "SecurityInfo"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no device NO-SUCH-MAC"), "{err}");
    let out = Command::new(BIN)
        .args(["devices", "list", "--token", "russet_wrong", "--data-dir"])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    // Enroll a Mac.
    let id = ca.issue_device_identity("cli-mac");
    let udid = "5A1E5A1E-0000-4000-8000-00000000C11A";
    let http = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    enroll(
        &http,
        port,
        &id,
        udid,
        &[
            ("SerialNumber", Value::String("C02CLITEST01".into())),
            ("DeviceName", Value::String("CLI Mac".into())),
            ("Model", Value::String("Mac14,2".into())),
            ("ModelName", Value::String("MacBook Air".into())),
        ],
    );

    let out = cli(&data, &["devices", "list"]);
    assert!(
        stdout(&out).contains(udid) && stdout(&out).contains("C02CLITEST01"),
        "{}",
        stdout(&out)
    );
    let out = cli(&data, &["devices", "show", udid]);
    assert!(stdout(&out).contains("CLI Mac"), "{}", stdout(&out));

    let out = cli(
        &data,
        &[
            "command",
            "send",
            udid,
            "--type",
            "DeviceInformation",
            "--Queries",
            "[\"SerialNumber\"]",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let uuid = v["command_uuid"].as_str().expect("uuid").to_string();

    let out = cli(&data, &["command", "status", &uuid]);
    assert!(stdout(&out).contains("Pending"), "{}", stdout(&out));
    let idle = dict(&[
        ("UDID", Value::String(udid.into())),
        ("Status", Value::String("Idle".into())),
    ]);
    assert_eq!(
        signed_put(
            &http,
            &format!("{base}/mdm/connect"),
            &id,
            "application/x-apple-aspen-mdm",
            idle
        ),
        200
    );
    let out = cli(&data, &["command", "status", &uuid, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["devices"][0]["status"], "Sent");

    // Lock: the PIN is printed, escrowed, and found again with `pin show`.
    let out = cli(&data, &["lock", udid, "--message", "Call IT"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let pin = text
        .lines()
        .find_map(|l| l.strip_prefix("Unlock PIN: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("PIN printed")
        .to_string();
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{text}"
    );
    let out = cli(&data, &["wipe", udid, "--confirm", "WRONGSERIAL"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
    let out = cli(
        &data,
        &["wipe", udid, "--confirm", "C02CLITEST01", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&data, &["wipe", "cancel", udid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        &data,
        &[
            "pin",
            "show",
            "--serial",
            "C02CLITEST01",
            "--reason",
            "helpdesk",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains(&pin) && stdout(&out).contains("EraseDevice"),
        "{}",
        stdout(&out)
    );
    let out = cli(&data, &["audit", "list"]);
    for action in [
        "device.lock",
        "device.wipe",
        "device.wipe.cancel",
        "pin.reveal",
    ] {
        assert!(stdout(&out).contains(action), "{action}: {}", stdout(&out));
    }

    // Inventory: nothing collected yet; a refresh by serial number queues it.
    let out = cli(&data, &["devices", "inventory", "C02CLITEST01"]);
    assert!(
        out.status.success() && stdout(&out).contains("Hardware (never collected)"),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&data, &["inventory", "refresh", "C02CLITEST01"]);
    assert!(
        stdout(&out).contains("Queued inventory for 1 Mac(s)."),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli(&data, &["devices", "delete", udid]);
    assert!(out.status.success());
    let out = cli(&data, &["devices", "show", udid]);
    assert!(!out.status.success());
    let out = cli(&data, &["pin", "show", "--udid", udid]);
    assert!(
        stdout(&out).contains(&pin),
        "PIN outlives the device: {}",
        stdout(&out)
    );

    // SIGTERM: graceful shutdown, exit 0.
    #[cfg(unix)]
    {
        let pid = server.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().expect("wait") {
                assert!(status.success(), "exit status {status}");
                break;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn serve_refuses_a_tls_certificate_for_another_host() {
    // Russet now terminates TLS itself; what it must refuse is a certificate that does not
    // name the --public-url host (the old "no TLS yet" refusal is gone with the identity issue).
    let tmp = tempfile::tempdir().expect("tempdir");
    let id = russet_certs::testing::TestCa::new("Operator CA")
        .issue_device_identity("wrong.example.org");
    let cert = tmp.path().join("tls.pem");
    let key = tmp.path().join("tls.key");
    std::fs::write(&cert, id.cert_pem()).expect("write");
    std::fs::write(&key, id.key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--public-url",
            "https://mdm.example.org:8443",
            "--tls-cert",
        ])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not name"), "{stderr}");
}

/// The log flags' ranges are checked at start, from a flag or the environment, and the
/// error names the allowed range; nothing is created on a refusal.
#[test]
fn serve_refuses_log_limits_out_of_range() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    /// Flags, environment, what the error must name.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (&["--log-max-size", "5MB"], &[], "200KB to 4MB"),
        (&["--log-max-size", "199KB"], &[], "200KB to 4MB"),
        (&["--log-max-size", "1GB"], &[], "200KB to 4MB"),
        (&["--log-max-files", "21"], &[], "1..=20"),
        (&[], &[("RUSSET_LOG_MAX_FILES", "0")], "1..=20"),
    ];
    for (args, env, expected) in cases {
        let out = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .envs(env.iter().copied())
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?} {env:?}: {stderr}");
    }
    assert!(!data.exists(), "refused before touching the data dir");
}

/// `--log-file`: the server's lines reach the file, in the chosen format.
#[test]
fn serve_writes_its_log_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("Device CA");
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write");
    let log = tmp.path().join("logs").join("russet.log");
    let data = tmp.path().join("data");
    let server = start_with(
        &data,
        &ca_path,
        free_port(),
        &[
            "--log-format",
            "json",
            "--log-file",
            log.to_str().expect("utf-8 path"),
            "--log-max-size",
            "200KB",
            "--log-max-files",
            "2",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("russet is serving") {
            assert!(
                text.lines()
                    .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
                "{text}"
            );
            let token = std::fs::read_to_string(data.join("admin-token")).expect("token");
            assert!(
                !text.contains(token.trim()),
                "the admin token is not logged"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no start line in the log file: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
}

/// `dep profile create` with Russet's setup flags, against `russet dep-sim`: the attached
/// profile, the AccountConfiguration file and the minimum OS reach the server; a file Apple's
/// schema refuses is a one-line error.
#[test]
fn dep_profile_create_with_setup_flags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let ca = TestCa::new("CLI test CA");
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write ca");
    let sim_port = free_port();
    let token = tmp.path().join("sim-token.json");
    let sim_listen = format!("127.0.0.1:{sim_port}");
    let mut sim = Server {
        child: Command::new(BIN)
            .args(["dep-sim", "--listen", &sim_listen, "--devices", "3"])
            .arg("--write-token")
            .arg(&token)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dep-sim starts"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !token.exists() {
        assert!(Instant::now() < deadline, "dep-sim did not come up");
        assert!(
            sim.child.try_wait().expect("wait").is_none(),
            "dep-sim exited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dep_url = format!("http://{sim_listen}");
    let _server = start_with(&data, &ca_path, free_port(), &["--dep-url", &dep_url]);
    let ok = |args: &[&str]| {
        let out = cli(&data, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    ok(&["dep", "link", "create", "corp"]);
    ok(&["dep", "link", "token", "corp", &token.display().to_string()]);

    let profile = tmp.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"profile_name": "Corp", "is_supervised": true, "is_mdm_removable": false,
            "await_device_configured": true}"#,
    )
    .expect("write profile");
    let attach = tmp.path().join("setup.mobileconfig");
    std::fs::write(
        &attach,
        "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>\
         <key>PayloadType</key><string>Configuration</string>\
         <key>PayloadIdentifier</key><string>org.example.setup</string>\
         <key>PayloadUUID</key><string>6C7F3B0A-1111-2222-3333-444455556666</string>\
         <key>PayloadContent</key><array/></dict></plist>",
    )
    .expect("write mobileconfig");
    let account = tmp.path().join("account.json");
    std::fs::write(
        &account,
        r#"{"AutoSetupAdminAccounts": [{"shortName": "ladmin", "fullName": "Local Admin",
            "passwordHash": "aGFzaA==", "hidden": true}]}"#,
    )
    .expect("write account");
    let (p, a, f) = (
        profile.display().to_string(),
        attach.display().to_string(),
        account.display().to_string(),
    );
    let out = ok(&[
        "dep",
        "profile",
        "create",
        &p,
        "--attach",
        &a,
        "--account-config",
        &f,
        "--min-os",
        "14.6",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(v["setup"]["account_configuration"], true, "{v}");
    assert_eq!(v["setup"]["min_os_version"], "14.6", "{v}");
    assert!(
        v["setup"]["attached_profile_bytes"].as_u64().unwrap_or(0) > 100,
        "{v}"
    );

    std::fs::write(
        &account,
        r#"{"AutoSetupAdminAccounts": [{"ShortName": "x"}]}"#,
    )
    .expect("write account");
    let out = cli(
        &data,
        &["dep", "profile", "create", &p, "--account-config", &f],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shortName"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// `russet group …` and `devices list --filter` against `russet serve`: static and smart
/// groups, their tables and JSON, and one-line errors (an unknown device, a bad filter with
/// its position).
#[test]
fn group_verbs_and_device_filter() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let ca = TestCa::new("CLI test CA");
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write ca");
    let port = free_port();
    let _server = start(&data, &ca_path, port);

    let id = ca.issue_device_identity("group-mac");
    let udid = "5A1E5A1E-0000-4000-8000-0000000C0DE5";
    let serial = "C02GROUPS001";
    let http = reqwest::blocking::Client::new();
    enroll(
        &http,
        port,
        &id,
        udid,
        &[
            ("SerialNumber", Value::String(serial.into())),
            ("Model", Value::String("Mac14,2".into())),
            ("OSVersion", Value::String("14.6".into())),
        ],
    );

    let ok = |args: &[&str]| {
        let out = cli(&data, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    let fails = |args: &[&str]| {
        let out = cli(&data, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        err
    };

    let text = ok(&["group", "create", "Lab Macs", "--description", "the lab"]);
    assert!(text.contains("Created static group Lab Macs"), "{text}");
    let text = ok(&["group", "add", "Lab Macs", udid]);
    assert!(text.contains("Added 1 to Lab Macs"), "{text}");
    let err = fails(&["group", "add", "Lab Macs", "C02NOSUCHMAC"]);
    assert!(err.contains("C02NOSUCHMAC") && err.contains("404"), "{err}");
    let text = ok(&["group", "create", "Old", "--filter", "os_version < 15"]);
    assert!(
        text.contains("Created smart group Old (1 members)"),
        "{text}"
    );
    let err = fails(&["group", "create", "Bad", "--filter", "modle = x"]);
    assert!(
        err.contains("position 0") && err.contains("`modle`") && err.contains("400"),
        "{err}"
    );

    let text = ok(&["group", "list"]);
    assert!(text.starts_with("NAME"), "{text}");
    for row in ["Lab Macs  static  1", "Old       smart   1"] {
        assert!(text.contains(row), "{row}: {text}");
    }
    let text = ok(&["group", "show", "Lab Macs"]);
    assert!(text.contains(udid) && text.contains(serial), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["group", "show", "Old", "--json"])).expect("json");
    assert_eq!(v["members"][0]["udid"], udid);
    let text = ok(&["devices", "show", udid]);
    assert!(text.contains("Lab Macs, Old"), "{text}");

    let text = ok(&[
        "devices",
        "list",
        "--filter",
        "os_version < 15 and model ~ mac14",
    ]);
    assert!(text.contains(udid), "{text}");
    let text = ok(&["devices", "list", "--filter", "os_version >= 15"]);
    assert!(!text.contains(udid), "{text}");
    let err = fails(&["devices", "list", "--filter", "os_version < fifteen"]);
    assert!(err.contains("position 13"), "{err}");

    let text = ok(&["group", "remove", "Lab Macs", serial]);
    assert!(text.contains("Removed 1 from Lab Macs"), "{text}");
    let text = ok(&["group", "update", "Old", "--no-filter"]);
    assert!(text.contains("static"), "{text}");
    ok(&["group", "delete", "Lab Macs"]);
    fails(&["group", "show", "Lab Macs"]);
    let text = ok(&["audit", "list"]);
    for action in [
        "group.create",
        "group.devices.add",
        "group.update",
        "group.delete",
    ] {
        assert!(text.contains(action), "{action}: {text}");
    }
}

/// `--worker-threads 1` (a one-core host has one worker by default): a Mac enrolls, is sent a
/// command, fetches and acknowledges it. Every write — the push outcome's transaction included
/// — waits for the SQLite writer's turn instead of blocking the only thread in SQLite's busy
/// handler (store/sqlite/inline.rs has the deterministic cases). Out of range is refused.
#[test]
fn serve_on_one_worker_thread() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let out = Command::new(BIN)
        .args(["serve", "--worker-threads", "0", "--data-dir"])
        .arg(&data)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1..=1024"));

    let ca = TestCa::new("CLI test CA");
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write ca");
    let port = free_port();
    let _server = start_with(&data, &ca_path, port, &["--worker-threads", "1"]);

    let id = ca.issue_device_identity("one-worker-mac");
    let udid = "5A1E5A1E-0000-4000-8000-00000000001A";
    let http = reqwest::blocking::Client::new();
    let connect = format!("http://127.0.0.1:{port}/mdm/connect");
    enroll(
        &http,
        port,
        &id,
        udid,
        &[("SerialNumber", Value::String("C02ONEWORKER".into()))],
    );

    // The report's answer: the next command's UUID, if any.
    let report = |entries: &[(&str, Value)]| -> Option<String> {
        let mut body = Vec::new();
        Value::Dictionary(dict(entries))
            .to_writer_xml(&mut body)
            .expect("plist");
        let resp = http
            .put(&connect)
            .header("Content-Type", "application/x-apple-aspen-mdm")
            .header("Mdm-Signature", id.sign_body(&body))
            .body(body)
            .send()
            .expect("device request");
        assert_eq!(resp.status().as_u16(), 200);
        let bytes = resp.bytes().expect("body");
        if bytes.is_empty() {
            return None;
        }
        let answer = Value::from_reader_xml(&bytes[..]).expect("plist answer");
        answer
            .as_dictionary()
            .and_then(|d| d.get("CommandUUID"))
            .and_then(Value::as_string)
            .map(str::to_owned)
    };
    for _ in 0..3 {
        let out = cli(&data, &["command", "send", udid, "--type", "SecurityInfo"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uuid = report(&[
            ("Status", Value::String("Idle".into())),
            ("UDID", Value::String(udid.into())),
        ])
        .expect("the command is handed out");
        let next = report(&[
            ("Status", Value::String("Acknowledged".into())),
            ("UDID", Value::String(udid.into())),
            ("CommandUUID", Value::String(uuid)),
            ("SecurityInfo", Value::Dictionary(Dictionary::new())),
        ]);
        assert_eq!(next, None, "nothing else queued");
    }
}
