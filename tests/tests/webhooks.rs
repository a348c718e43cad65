//! Webhooks end to end, on SQLite and PostgreSQL: the real server POSTs NanoMDM-shaped events
//! to real HTTP receivers on loopback (axum). A Mac enrolls, escrows a bootstrap token and
//! answers a command; the receiver checks `X-Hmac-Signature`, the topics and fields, the
//! base64 raw payloads, and that no secret left the server. A receiver that is down at first
//! gets everything once it is up, without holding back a second one; events still in the
//! outbox when the server stops are delivered by the next start.
//!
//! Retries are shortened with the hidden `--webhook-retry-min-ms` / `--webhook-retry-max-ms`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use plist::Value as Plist;
use russet_tests::{Backend, SimMac, TestServer};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

russet_tests::on_both_backends!(
    multi_thread: events_are_signed_shaped_like_nanomdm_and_carry_no_secret,
    a_receiver_that_is_down_gets_its_events_later_and_holds_back_no_other,
    events_waiting_when_the_server_stops_are_delivered_after_a_restart,
);

const KEY: &str = "webhook-test-key-0123456789";
const FAST_RETRIES: [&str; 4] = [
    "--webhook-retry-min-ms",
    "50",
    "--webhook-retry-max-ms",
    "300",
];
const UNLOCK_SECRET: &[u8] = b"UNLOCK-TOKEN-SECRET-BYTES";
const BOOTSTRAP_SECRET: &[u8] = b"BOOTSTRAP-TOKEN-SECRET-BYTES";

/// What a receiver got: the signature header and the body.
#[derive(Clone, Debug)]
struct Received {
    signature: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A webhook receiver on loopback, answering 200 to every POST.
struct Receiver {
    url: String,
    inbox: Inbox,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::start_on("127.0.0.1:0".parse().expect("addr")).await
    }

    async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("receiver binds");
        let addr = listener.local_addr().expect("addr");
        let inbox: Inbox = Arc::default();
        let app = Router::new()
            .route("/hook", post(take))
            .with_state(inbox.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            inbox,
            task,
        }
    }

    fn events(&self) -> Vec<Received> {
        self.inbox.lock().expect("inbox").clone()
    }

    /// Wait (up to 15 s) until the events received satisfy `done`; returns them.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Received> {
        for _ in 0..300 {
            let got = self.events();
            let bodies: Vec<Value> = got.iter().map(Received::json).collect();
            if done(&bodies) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let topics: Vec<Value> = self
            .events()
            .iter()
            .map(|r| r.json()["topic"].clone())
            .collect();
        panic!("{what}: the receiver at {} got only {topics:?}", self.url);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn take(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    inbox.lock().expect("inbox").push(Received {
        signature: header("x-hmac-signature"),
        content_type: header("content-type"),
        body: body.to_vec(),
    });
    StatusCode::OK
}

/// A loopback address nothing listens on (yet): a receiver that is down.
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn hmac_b64(key: &[u8], body: &[u8]) -> String {
    let pkey = openssl::pkey::PKey::hmac(key).expect("key");
    let mut s =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).expect("signer");
    s.update(body).expect("update");
    base64::engine::general_purpose::STANDARD.encode(s.sign_to_vec().expect("sign"))
}

fn topics(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["topic"].as_str()).collect()
}

fn count(events: &[Value], topic: &str) -> usize {
    topics(events).iter().filter(|t| **t == topic).count()
}

/// The raw payload of an event's `checkin_event` or `acknowledge_event`, decoded.
fn raw_payload(event: &Value) -> (Vec<u8>, plist::Dictionary) {
    let inner = if event.get("checkin_event").is_some() {
        &event["checkin_event"]
    } else {
        &event["acknowledge_event"]
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(
            inner["raw_payload"]
                .as_str()
                .expect("raw_payload is a string"),
        )
        .expect("raw_payload is base64");
    let dict = Plist::from_reader_xml(bytes.as_slice())
        .expect("raw_payload is a plist")
        .into_dictionary()
        .expect("a dictionary");
    (bytes, dict)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn outbox_store(srv: &TestServer) -> Arc<dyn russet_mdm::store::Store> {
    srv.running.as_ref().expect("running").store.clone()
}

async fn outbox_len(srv: &TestServer) -> i64 {
    outbox_store(srv)
        .webhook_outbox_depth()
        .await
        .expect("depth")
        .iter()
        .map(|(_, n)| n)
        .sum()
}

async fn events_are_signed_shaped_like_nanomdm_and_carry_no_secret(backend: Backend) {
    let receiver = Receiver::start().await;
    let mut flags = vec!["--webhook-url", &receiver.url, "--webhook-hmac-key", KEY];
    flags.extend(FAST_RETRIES);
    let srv = TestServer::start_with(backend, &flags).await;

    // Enroll with an UnlockToken, escrow a bootstrap token, answer a command.
    let mac = srv.mac();
    assert_eq!(mac.checkin(&mac.authenticate_message()).await.status, 200);
    let mut token_update = mac.token_update_message();
    token_update.insert("UnlockToken".into(), Plist::Data(UNLOCK_SECRET.to_vec()));
    assert_eq!(mac.checkin(&token_update).await.status, 200);
    let set_bootstrap = SimMac::dict(&[
        ("MessageType", Plist::String("SetBootstrapToken".into())),
        ("UDID", Plist::String(mac.udid.clone())),
        ("BootstrapToken", Plist::Data(BOOTSTRAP_SECRET.to_vec())),
        ("AwaitingConfiguration", Plist::Boolean(false)),
    ]);
    let r = mac.checkin(&set_bootstrap).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let uuid = srv
        .enqueue(&mac.udid, json!({"request_type": "ProfileList"}))
        .await;
    let reply = mac.idle().await;
    assert_eq!(reply.command().expect("a command").0, uuid);
    let r = mac
        .report(
            &uuid,
            "Acknowledged",
            &[("ProfileList", Plist::Array(vec![]))],
        )
        .await;
    assert_eq!(r.status, 200);
    // Refused messages are not events: a Mac the server never saw.
    let stranger = srv.mac();
    assert_ne!(
        stranger
            .checkin(&stranger.token_update_message())
            .await
            .status,
        200
    );

    let got = receiver
        .wait_for("five events", |e| {
            count(e, "mdm.Connect") == 2 && count(e, "mdm.SetBootstrapToken") == 1
        })
        .await;
    let events: Vec<Value> = got.iter().map(Received::json).collect();
    assert_eq!(
        topics(&events),
        [
            "mdm.Authenticate",
            "mdm.TokenUpdate",
            "mdm.SetBootstrapToken",
            "mdm.Connect",
            "mdm.Connect"
        ],
        "one event per applied message, in order (nothing for the stranger)"
    );

    // Every body signed with the key; every event its own UUID and an RFC 3339 time.
    let mut ids = std::collections::BTreeSet::new();
    for r in &got {
        assert_eq!(
            r.signature.as_deref(),
            Some(hmac_b64(KEY.as_bytes(), &r.body).as_str()),
            "X-Hmac-Signature = base64(HMAC-SHA256(key, body))"
        );
        assert!(
            r.content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            r.content_type
        );
        let e = r.json();
        let id = e["event_id"].as_str().expect("event_id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        ids.insert(id.to_string());
        let at = e["created_at"].as_str().expect("created_at");
        assert!(at.starts_with("20") && at.ends_with('Z'), "{at}");
        // No secret anywhere in what left the server, raw or base64.
        let (raw, _) = raw_payload(&e);
        for secret in [UNLOCK_SECRET, BOOTSTRAP_SECRET] {
            let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
            assert!(!contains(&raw, secret) && !contains(&raw, b64.as_bytes()));
            assert!(!contains(&r.body, b64.as_bytes()));
        }
    }
    assert_eq!(ids.len(), 5, "event IDs are unique");

    // Authenticate: the check-in event, as NanoMDM shapes it.
    let auth = &events[0];
    assert_eq!(auth["checkin_event"]["udid"], json!(mac.udid));
    assert!(auth["checkin_event"].get("enrollment_id").is_none());
    assert!(auth.get("acknowledge_event").is_none());
    let (_, d) = raw_payload(auth);
    assert_eq!(d["MessageType"].as_string(), Some("Authenticate"));
    assert_eq!(d["SerialNumber"].as_string(), Some(mac.serial.as_str()));

    // TokenUpdate: the first since enrollment; UnlockToken redacted, Token and PushMagic kept.
    let tu = &events[1];
    assert_eq!(tu["checkin_event"]["udid"], json!(mac.udid));
    assert_eq!(tu["checkin_event"]["token_update_tally"], json!(1));
    let (_, d) = raw_payload(tu);
    assert_eq!(d["UnlockToken"].as_string(), Some("(redacted)"));
    assert_eq!(d["Token"].as_data(), Some(mac.token.as_slice()));
    assert_eq!(d["PushMagic"].as_string(), Some(mac.push_magic.as_str()));

    let (_, d) = raw_payload(&events[2]);
    assert_eq!(d["BootstrapToken"].as_string(), Some("(redacted)"));

    // Command reports: mdm.Connect with the acknowledge event.
    let idle = &events[3]["acknowledge_event"];
    assert_eq!(idle["status"], "Idle");
    assert_eq!(idle["command_uuid"], "");
    assert_eq!(idle["udid"], json!(mac.udid));
    let ack = &events[4]["acknowledge_event"];
    assert_eq!(ack["status"], "Acknowledged");
    assert_eq!(ack["command_uuid"], json!(uuid));
    let (_, d) = raw_payload(&events[4]);
    assert_eq!(d["CommandUUID"].as_string(), Some(uuid.as_str()));
    assert!(d.contains_key("ProfileList"));

    // A second enrollment's TokenUpdate counts from 1 again; a follow-up counts on.
    assert_eq!(mac.checkin(&mac.token_update_message()).await.status, 200);
    assert_eq!(mac.checkin(&mac.authenticate_message()).await.status, 200);
    assert_eq!(mac.checkin(&mac.token_update_message()).await.status, 200);
    let got = receiver
        .wait_for("three more TokenUpdates", |e| {
            count(e, "mdm.TokenUpdate") == 3
        })
        .await;
    let tallies: Vec<Value> = got
        .iter()
        .map(Received::json)
        .filter(|e| e["topic"] == "mdm.TokenUpdate")
        .map(|e| e["checkin_event"]["token_update_tally"].clone())
        .collect();
    assert_eq!(tallies, [json!(1), json!(2), json!(1)]);

    // Delivered events leave the outbox.
    for _ in 0..100 {
        if outbox_len(&srv).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(outbox_len(&srv).await, 0);

    // Counted per receiver (scheme, host and port: never the path or a key).
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", srv.admin_url))
        .bearer_auth(&srv.token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let receiver_label = format!(r#"receiver="{}""#, receiver.url.trim_end_matches("/hook"));
    let sample = |name: &str, outcome: Option<&str>| -> Option<f64> {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{"))
                    && l.contains(&receiver_label)
                    && outcome.is_none_or(|o| l.contains(&format!(r#"outcome="{o}""#)))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(
        sample("russet_webhook_deliveries_total", Some("delivered")),
        Some(8.0),
        "{metrics}"
    );
    assert_eq!(
        sample("russet_webhook_outbox_events", None),
        Some(0.0),
        "{metrics}"
    );
    assert!(!metrics.contains(KEY));
    srv.stop().await;
}

async fn a_receiver_that_is_down_gets_its_events_later_and_holds_back_no_other(backend: Backend) {
    let up = Receiver::start().await;
    let down_addr = free_addr();
    let down_url = format!("http://{down_addr}/hook");
    let mut flags = vec!["--webhook-url", &up.url, "--webhook-url", &down_url];
    flags.extend(FAST_RETRIES);
    let srv = TestServer::start_with(backend, &flags).await;

    let mac = srv.mac();
    mac.enroll().await;
    let first = up
        .wait_for("the live receiver's events", |e| {
            count(e, "mdm.TokenUpdate") == 1
        })
        .await;
    // The other receiver's rows wait, retried.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        outbox_len(&srv).await,
        2,
        "two events wait for the receiver that is down"
    );

    // It comes up: it gets the same events (same IDs), once the next retry finds it.
    let late = Receiver::start_on(down_addr).await;
    let got = late
        .wait_for("the late receiver's events", |e| {
            count(e, "mdm.Authenticate") == 1 && count(e, "mdm.TokenUpdate") == 1
        })
        .await;
    let ids = |list: &[Received]| {
        let mut v: Vec<String> = list
            .iter()
            .map(|r| r.json()["event_id"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&got), ids(&first), "the same events, by event_id");
    for _ in 0..100 {
        if outbox_len(&srv).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(outbox_len(&srv).await, 0);
    srv.stop().await;
}

async fn events_waiting_when_the_server_stops_are_delivered_after_a_restart(backend: Backend) {
    let addr = free_addr();
    let url = format!("http://{addr}/hook");
    let mut flags = vec!["--webhook-url", &url];
    flags.extend(FAST_RETRIES);
    let mut srv = TestServer::start_with(backend, &flags).await;

    let mac = srv.mac();
    mac.enroll().await;
    assert_eq!(outbox_len(&srv).await, 2);
    // Let a few attempts fail first.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Stopped; the receiver comes up while no server runs; the next start delivers.
    if let Some(r) = srv.running.take() {
        r.shutdown().await;
    }
    let receiver = Receiver::start_on(addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.events().is_empty(), "nobody sends while stopped");
    srv.restart().await;
    let got = receiver
        .wait_for("events from before the restart", |e| {
            count(e, "mdm.Authenticate") == 1 && count(e, "mdm.TokenUpdate") == 1
        })
        .await;
    for r in &got {
        let e = r.json();
        assert_eq!(e["checkin_event"]["udid"], json!(mac.udid));
        assert!(r.signature.is_none(), "no key, no signature");
    }
    srv.stop().await;
}
