//! Operations end to end, on SQLite and PostgreSQL: `GET /metrics` on the admin listener,
//! scraped with the admin token and with the scrape-only `--metrics-token`, parsed by a
//! Prometheus text-format parser, its counters moving by exactly what a simulated Mac did; and
//! the `--log-file`: what the server logs lands there, rotates into gzip files whose count
//! stays bounded, and a lock's PIN never appears in it.
//!
//! The metrics recorder and the log subscriber are per process (as a Prometheus target and a
//! log file are), so this file's tests take turns ([`TURN`]) and compare before/after scrapes.

use plist::Value;
use prometheus_parse::{Scrape, Value as Sample};
use reqwest::Method;
use russet_mdm::server::logging::{self, LogFile};
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::json;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SCRAPE_TOKEN: &str = "scrape-only-0123456789abcdef";

russet_tests::on_both_backends!(
    metrics_count_what_a_mac_did,
    the_log_file_rotates_into_bounded_gzip_files_without_secrets,
);

async fn get_metrics(srv: &TestServer, token: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(format!("{}/metrics", srv.admin_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("admin listener reachable");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, content_type, resp.text().await.expect("body"))
}

async fn scrape(srv: &TestServer, token: &str) -> Scrape {
    let (status, content_type, text) = get_metrics(srv, Some(token)).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&text)
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none yet).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn metrics_count_what_a_mac_did(backend: Backend) {
    let _turn = TURN.lock().await;
    let srv = TestServer::start_with(backend, &["--metrics-token", SCRAPE_TOKEN]).await;
    let before = scrape(&srv, &srv.token).await;

    // A Mac enrolls, gets a command and acknowledges it; a second command stays queued.
    let mac = srv.mac();
    mac.enroll().await;
    let uuid = srv
        .enqueue(
            &mac.udid,
            json!({"request_type": "DeviceInformation", "Queries": ["SerialNumber"]}),
        )
        .await;
    let reply = mac.idle().await;
    let (got, _, _) = reply.command().expect("a command after Idle");
    assert_eq!(got, uuid);
    let answers = SimMac::dict(&[("SerialNumber", Value::String(mac.serial.clone()))]);
    let reply = mac
        .report(
            &uuid,
            "Acknowledged",
            &[("QueryResponses", Value::Dictionary(answers))],
        )
        .await;
    assert_eq!(reply.status, 200);
    srv.enqueue(&mac.udid, json!({"request_type": "ProfileList"}))
        .await;
    // A Mac the server never saw sends a TokenUpdate: refused (not with a 401), counted.
    let stranger = srv.mac();
    let r = stranger.checkin(&stranger.token_update_message()).await;
    assert_ne!(r.status, 200);
    assert_ne!(r.status, 401, "a device never gets 401");

    // The scrape-only token reads the same exposition.
    let (status, _, after_text) = get_metrics(&srv, Some(SCRAPE_TOKEN)).await;
    assert_eq!(status, 200);
    let after = parse(&after_text);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let checkins = "russet_checkins_total";
    assert_eq!(
        delta(
            checkins,
            &[("message_type", "Authenticate"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            checkins,
            &[("message_type", "TokenUpdate"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            checkins,
            &[("message_type", "TokenUpdate"), ("outcome", "error")]
        ),
        1.0
    );
    assert_eq!(delta(checkins, &[]), 3.0);
    let results = "russet_command_results_total";
    assert_eq!(
        delta(
            results,
            &[
                ("request_type", "DeviceInformation"),
                ("status", "Acknowledged")
            ]
        ),
        1.0
    );
    assert_eq!(delta(results, &[]), 1.0);
    // Queue depth is this server's database, read at scrape time.
    let queue = "russet_queue_entries";
    assert_eq!(value(&after, queue, &[("status", "Pending")]), 1.0);
    assert_eq!(value(&after, queue, &[("status", "Sent")]), 0.0);
    assert_eq!(value(&after, queue, &[("status", "NotNow")]), 0.0);
    // Requests per route template: 3 check-ins, 2 on the command loop (Idle, the result).
    let http = "russet_http_request_duration_seconds_count";
    let checkin_ok = [
        ("listener", "device"),
        ("method", "PUT"),
        ("route", "/mdm/checkin"),
        ("status", "200"),
    ];
    assert_eq!(delta(http, &checkin_ok), 2.0);
    assert_eq!(
        delta(
            http,
            &[
                ("listener", "device"),
                ("route", "/mdm/connect"),
                ("status", "200")
            ]
        ),
        2.0
    );
    // Admin routes by template. (prometheus-parse reads label values only up to the first
    // `}`, so a template such as `/api/v1/devices/{udid}/commands` is checked in the text.)
    assert_eq!(
        delta(
            http,
            &[
                ("listener", "admin"),
                ("route", "/metrics"),
                ("status", "200")
            ]
        ),
        1.0,
        "the first scrape"
    );
    assert!(
        after_text.lines().any(
            |l| l.starts_with("russet_http_request_duration_seconds_count{")
                && l.contains(r#"route="/api/v1/devices/{udid}/commands""#)
                && l.contains(r#"method="POST""#)
                && l.contains(r#"status="201""#)
        ),
        "{after_text}"
    );
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "russet_http_request_duration_seconds"
                && matches!(&s.value, Sample::Histogram(b) if !b.is_empty())),
        "latency is a histogram with buckets"
    );
    assert!(value(&after, "russet_db_pool_connections", &[("state", "max")]) >= 1.0);
    // No push certificate yet: the gauge says so without a number.
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "russet_push_certificate_days_to_expiry"),
        "push certificate gauge present"
    );

    // Who may scrape: the admin token, the metrics token; nobody else. The metrics token
    // opens nothing else.
    assert_eq!(get_metrics(&srv, None).await.0, 401);
    assert_eq!(get_metrics(&srv, Some("wrong-token")).await.0, 401);
    let (status, _) = srv
        .api_with_token(Method::GET, "/api/v1/devices", None, Some(SCRAPE_TOKEN))
        .await;
    assert_eq!(status, 401, "the scrape token can't act");
    srv.stop().await;
}

/// The log subscriber this process writes through, installed once: a file rotated at the
/// smallest size allowed, keeping 2 rotated files.
fn log_file() -> &'static LogFile {
    static FILE: OnceLock<(tempfile::TempDir, LogFile)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tmp");
            let spec = LogFile {
                path: dir.path().join("russet.log"),
                max_size: russet_mdm::config::LOG_MAX_SIZE_MIN,
                max_files: 2,
            };
            logging::init(russet_mdm::config::LogFormat::Json, Some(&spec)).expect("log init");
            (dir, spec)
        })
        .1
}

fn gunzip(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{} is gzip", path.display());
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    text
}

async fn the_log_file_rotates_into_bounded_gzip_files_without_secrets(backend: Backend) {
    let _turn = TURN.lock().await;
    let spec = log_file();
    let srv = TestServer::start(backend).await;
    let mac = srv.mac();
    mac.enroll().await;
    // A lock with a chosen PIN: the PIN is escrowed and returned once, never logged.
    let pin = "902417";
    let (status, v) = srv
        .api(
            Method::POST,
            &format!("/api/v1/devices/{}/lock", mac.udid),
            Some(json!({"pin": pin})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let reply = mac.idle().await;
    let (uuid, request_type, _) = reply.command().expect("the lock command");
    assert_eq!(request_type, "DeviceLock");
    mac.report(&uuid, "Acknowledged", &[]).await;
    let live = std::fs::read_to_string(&spec.path).expect("log file");
    let mut everything = live.clone();
    for p in logging::rotated_files(&spec.path) {
        everything.push_str(&gunzip(&p));
    }
    assert!(
        everything.contains(&mac.udid),
        "the server's lines reach the file"
    );
    assert!(
        everything
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "JSON lines, one per event"
    );
    assert!(!everything.contains(pin), "no PIN in the log");
    assert!(
        !everything.contains(&srv.token),
        "no admin token in the log"
    );

    // Enough lines through the same subscriber to rotate several times.
    let filler = "y".repeat(400);
    for i in 0..3_000 {
        tracing::info!(i, filler = %filler, "filler");
    }
    let rotated = logging::rotated_files(&spec.path);
    assert_eq!(rotated.len(), spec.max_files, "{rotated:?}");
    for p in &rotated {
        let text = gunzip(p);
        assert!(text.len() as u64 >= spec.max_size, "{} bytes", text.len());
    }
    let live = std::fs::metadata(&spec.path).expect("live").len();
    assert!(live <= spec.max_size + 4096, "live file {live} bytes");
    srv.stop().await;
}
