//! One request: Apple's checks in order, injections, recording, Apple's error answers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::{Connection, Injection, RecordedPush, Rejection, State, Target, lock};

/// Apple's payload limit for a remote notification.
const MAX_PAYLOAD: usize = 4096;

/// Makes hyper reset the stream (RST_STREAM) of a request caught by an injected GOAWAY.
#[derive(Debug)]
pub(super) struct StreamReset;

impl std::fmt::Display for StreamReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream reset by injected GOAWAY")
    }
}

impl std::error::Error for StreamReset {}

pub(super) type Answer = Result<Response<Full<Bytes>>, StreamReset>;

pub(super) async fn handle(
    state: Arc<State>,
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Answer {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let reject = |status: u16, reason: &str, detail: String| {
        Ok(state.reject(&path, status, reason, None, detail))
    };
    if req.method() != Method::POST {
        return reject(405, "MethodNotAllowed", format!("method {}", req.method()));
    }
    let Some(token) = path.strip_prefix("/3/device/") else {
        return reject(404, "BadPath", "path is not /3/device/<token>".into());
    };
    if token.len() < 64
        || token.len() % 2 != 0
        || !token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return reject(
            400,
            "BadDeviceToken",
            "token is not 64+ lowercase hex digits".into(),
        );
    }
    match state.take_injection(token) {
        Some(Injection::Status {
            status,
            reason,
            timestamp,
        }) => {
            return Ok(state.reject(&path, status, &reason, timestamp, "injected".into()));
        }
        Some(Injection::Delay(d)) => tokio::time::sleep(d).await,
        Some(Injection::GoAwayAfter(_)) => {
            state.goaways.fetch_add(1, Ordering::Relaxed);
            conn.goaway.notify_one();
            // Let the GOAWAY go out first, then reset this stream: the client sees its
            // in-flight request fail on a connection that is going away.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Err(StreamReset);
        }
        None => {}
    }
    let h = req.headers();
    let header = |name: &str| h.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if header("apns-push-type") != Some("mdm") {
        let got = format!("apns-push-type {:?}", header("apns-push-type"));
        return reject(400, "InvalidPushType", got);
    }
    if let Some(p) = header("apns-priority")
        && p != "10"
        && p != "5"
    {
        return reject(400, "BadPriority", format!("apns-priority {p:?}"));
    }
    if let Some(e) = header("apns-expiration")
        && e.parse::<u64>().is_err()
    {
        return reject(400, "BadExpirationDate", format!("apns-expiration {e:?}"));
    }
    if let Some(id) = header("apns-id")
        && !is_uuid(id)
    {
        return reject(400, "BadMessageId", format!("apns-id {id:?}"));
    }
    let topic = match (header("apns-topic"), &conn.cert_topic) {
        (Some(t), Some(cert)) if t != cert => {
            return reject(
                400,
                "BadTopic",
                format!("apns-topic {t:?} is not the certificate's {cert:?}"),
            );
        }
        (Some(t), _) => t.to_string(),
        (None, Some(cert)) => cert.clone(),
        (None, None) => return reject(400, "MissingTopic", "no topic at all".into()),
    };
    if let Some(expected) = &state.expected_topic
        && &topic != expected
    {
        return reject(
            400,
            "DeviceTokenNotForTopic",
            format!("token registered for {expected:?}, not {topic:?}"),
        );
    }
    let apns_id = header("apns-id")
        .map(str::to_string)
        .unwrap_or_else(|| state.new_id());
    let headers: Vec<(String, String)> = h
        .iter()
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let token = token.to_string();
    let body = match Limited::new(req.into_body(), MAX_PAYLOAD).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_large = e.is::<http_body_util::LengthLimitError>();
            return if too_large {
                reject(413, "PayloadTooLarge", format!("over {MAX_PAYLOAD} bytes"))
            } else {
                reject(400, "PayloadEmpty", format!("body unreadable: {e}"))
            };
        }
    };
    let push_magic = match mdm_payload(&body) {
        Ok(m) => m,
        Err(detail) => return reject(400, "PayloadEmpty", detail),
    };
    lock(&state.pushes).push(RecordedPush {
        token_hex: token,
        topic,
        push_magic,
        headers,
        body: body.to_vec(),
        apns_id: apns_id.clone(),
        received_at: SystemTime::now(),
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("apns-id", apns_id)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default())
}

/// The PushMagic from a body that must be exactly `{"mdm": "<string>"}`.
fn mdm_payload(body: &[u8]) -> Result<String, String> {
    if body.is_empty() {
        return Err("empty body".into());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "body is not a JSON object".to_string())?;
    if obj.len() != 1 {
        let keys: Vec<_> = obj.keys().collect();
        return Err(format!(
            "body must have exactly the key \"mdm\", has {keys:?}"
        ));
    }
    obj.get("mdm")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| "\"mdm\" missing or not a string".to_string())
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

impl State {
    fn take_injection(&self, token: &str) -> Option<Injection> {
        let mut rules = lock(&self.rules);
        let i = rules.iter().position(|r| match &r.target {
            Target::All => true,
            Target::Token(t) => t == token,
        })?;
        let rule = &mut rules[i];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        let injection = rule.injection.clone();
        if rule.sticky {
            if let Injection::GoAwayAfter(n) = injection {
                rule.skip = n;
            }
        } else {
            rules.remove(i);
        }
        Some(injection)
    }

    fn reject(
        &self,
        path: &str,
        status: u16,
        reason: &str,
        timestamp: Option<i64>,
        detail: String,
    ) -> Response<Full<Bytes>> {
        tracing::debug!(%path, %status, %reason, %detail, "fake APNs error answer");
        lock(&self.rejections).push(Rejection {
            path: path.to_string(),
            status,
            reason: reason.to_string(),
            detail,
        });
        let mut body = serde_json::json!({ "reason": reason });
        if let Some(ts) = timestamp {
            body["timestamp"] = ts.into();
        }
        Response::builder()
            .status(status)
            .header("apns-id", self.new_id())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap_or_default()
    }

    /// Apple answers with an uppercase UUID.
    fn new_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:08X}-{:04X}-4{:03X}-8000-{:012X}",
            n >> 32,
            (n >> 16) & 0xffff,
            n & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }
}
