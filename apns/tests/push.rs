//! The client against the fake APNs: what Apple answers, and what Russet makes of it.

mod common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{client, config, push, setup};
use russet_apns::fake::{Injection, Target, now_ms};
use russet_apns::{ApnsClient, ApnsConfig, PushOutcome};

#[tokio::test]
async fn a_push_arrives_exactly_as_apple_specifies() {
    let s = setup().await;
    let c = client(&s);
    let p = push(1);
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(c.push(&p).await, PushOutcome::Delivered);

    let pushes = s.fake.pushes();
    assert_eq!(pushes.len(), 1);
    let r = &pushes[0];
    assert_eq!(r.token_hex, hex::encode(&p.token));
    assert_eq!(r.token_hex.len(), 64);
    assert_eq!(r.topic, s.topic);
    assert!(r.topic.starts_with("com.apple.mgmt.External."));
    assert_eq!(r.push_magic, p.push_magic);
    assert_eq!(
        r.body,
        format!(r#"{{"mdm":"{}"}}"#, p.push_magic).into_bytes()
    );
    assert_eq!(r.header("apns-topic"), Some(s.topic.as_str()));
    assert_eq!(r.header("apns-push-type"), Some("mdm"));
    assert_eq!(r.header("apns-priority"), Some("10"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Default expiration: now + 3 days.
    let exp: u64 = r.header("apns-expiration").unwrap().parse().unwrap();
    let three_days = 3 * 24 * 3600;
    assert!(
        exp >= before + three_days && exp <= before + three_days + 60,
        "{exp}"
    );
    assert_eq!(r.apns_id.len(), 36);
    assert!(s.fake.rejections().is_empty());
}

#[tokio::test]
async fn expiration_zero_means_deliver_once() {
    let s = setup().await;
    let c = ApnsClient::new(
        &s.cert,
        ApnsConfig {
            expiration: Duration::ZERO,
            ..config(&s.fake, 1)
        },
    )
    .unwrap();
    assert_eq!(c.push(&push(1)).await, PushOutcome::Delivered);
    assert_eq!(s.fake.pushes()[0].header("apns-expiration"), Some("0"));
}

#[tokio::test]
async fn an_unregistered_token_reports_410_with_its_timestamp_and_is_not_retried() {
    let s = setup().await;
    let c = client(&s);
    let p = push(7);
    let ts = now_ms();
    s.fake.unregister(&hex::encode(&p.token), ts);
    assert_eq!(
        c.push_with_retry(&p).await,
        PushOutcome::Unregistered {
            timestamp_ms: Some(ts)
        }
    );
    assert_eq!(s.fake.requests(), 1, "a 410 is final");
    // Other tokens are unaffected.
    assert_eq!(c.push(&push(8)).await, PushOutcome::Delivered);
    let rej = s.fake.rejections();
    assert_eq!(
        (rej[0].status, rej[0].reason.as_str()),
        (410, "Unregistered")
    );
}

#[tokio::test]
async fn a_bad_device_token_is_permanent_for_that_token() {
    let s = setup().await;
    let c = client(&s);
    let p = push(2);
    s.fake.inject(
        Target::token(&p.token),
        Injection::status(400, "BadDeviceToken"),
    );
    assert_eq!(
        c.push_with_retry(&p).await,
        PushOutcome::BadToken {
            reason: "BadDeviceToken".into()
        }
    );
    assert_eq!(s.fake.requests(), 1);
    assert_eq!(s.fake.push_count(), 0);
}

#[tokio::test]
async fn a_token_apple_itself_finds_malformed_is_a_bad_token() {
    // Not injected: a 16-byte token is not 64 hex digits; the fake says so as APNs does.
    let s = setup().await;
    let c = client(&s);
    let mut p = push(3);
    p.token.truncate(16);
    assert_eq!(
        c.push_with_retry(&p).await,
        PushOutcome::BadToken {
            reason: "BadDeviceToken".into()
        }
    );
}

#[tokio::test]
async fn a_refused_certificate_stops_the_topic() {
    let s = setup().await;
    let c = client(&s);
    s.fake
        .inject(Target::All, Injection::status(403, "BadCertificate"));
    assert_eq!(
        c.push_with_retry(&push(4)).await,
        PushOutcome::CertificateRefused {
            reason: "BadCertificate".into()
        }
    );
    assert_eq!(s.fake.requests(), 1, "403 is not retried");
}

#[tokio::test]
async fn too_many_requests_is_retried_then_delivered() {
    let s = setup().await;
    let c = client(&s);
    let p = push(5);
    s.fake.inject(
        Target::token(&p.token),
        Injection::status(429, "TooManyRequests"),
    );
    // One attempt sees the 429 …
    assert!(
        matches!(c.push(&p).await, PushOutcome::Retry { reason } if reason == "TooManyRequests")
    );
    s.fake.inject(
        Target::token(&p.token),
        Injection::status(429, "TooManyRequests"),
    );
    // … with retries, the push goes through on the second attempt.
    assert_eq!(c.push_with_retry(&p).await, PushOutcome::Delivered);
    assert_eq!(s.fake.requests(), 3);
    assert_eq!(s.fake.push_count(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_delivered() {
    let s = setup().await;
    let c = client(&s);
    let p = push(6);
    s.fake
        .inject(Target::All, Injection::status(500, "InternalServerError"));
    s.fake
        .inject(Target::All, Injection::status(503, "ServiceUnavailable"));
    assert_eq!(c.push_with_retry(&p).await, PushOutcome::Delivered);
    assert_eq!(s.fake.requests(), 3);
    let reasons: Vec<_> = s.fake.rejections().into_iter().map(|r| r.status).collect();
    assert_eq!(reasons, vec![500, 503]);
}

#[tokio::test]
async fn retries_are_bounded() {
    let s = setup().await;
    let c = client(&s); // max_attempts = 4
    s.fake
        .inject_sticky(Target::All, Injection::status(503, "ServiceUnavailable"));
    assert_eq!(
        c.push_with_retry(&push(9)).await,
        PushOutcome::Retry {
            reason: "ServiceUnavailable".into()
        }
    );
    assert_eq!(s.fake.requests(), 4);
    s.fake.clear_injections();
    assert_eq!(c.push(&push(9)).await, PushOutcome::Delivered);
}

#[tokio::test]
async fn a_server_that_is_gone_is_a_transport_error_to_retry() {
    let mut s = setup().await;
    let c = client(&s);
    assert_eq!(c.push(&push(1)).await, PushOutcome::Delivered);
    s.fake.shutdown().await;
    let started = std::time::Instant::now();
    match c.push_with_retry(&push(2)).await {
        PushOutcome::Retry { reason } => assert!(reason.starts_with("transport:"), "{reason}"),
        other => panic!("expected Retry, got {other:?}"),
    }
    // Backed off between the 4 attempts (base 10 ms: at least 5 + 10 + 20 ms).
    assert!(started.elapsed() >= Duration::from_millis(35));
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let s = setup().await;
    let c = ApnsClient::new(
        &s.cert,
        ApnsConfig {
            request_timeout: Duration::from_millis(300),
            ..config(&s.fake, 1)
        },
    )
    .unwrap();
    let p = push(10);
    s.fake
        .inject(Target::All, Injection::Delay(Duration::from_secs(2)));
    assert!(matches!(c.push(&p).await, PushOutcome::Retry { .. }));
    assert_eq!(c.push_with_retry(&p).await, PushOutcome::Delivered);
}

#[tokio::test]
async fn goaway_mid_stream_fails_the_request_and_the_client_reconnects() {
    let s = setup().await;
    let c = client(&s);
    assert_eq!(c.push(&push(1)).await, PushOutcome::Delivered);
    assert_eq!(s.fake.connections(), 1);
    s.fake.inject(Target::All, Injection::GoAwayAfter(0));
    // The request caught by the GOAWAY is not processed and comes back as a transport error …
    let caught = c.push(&push(2)).await;
    assert!(
        matches!(&caught, PushOutcome::Retry { reason } if reason.starts_with("transport:")),
        "{caught:?}"
    );
    assert_eq!(s.fake.goaways(), 1);
    // … and the next push goes over a new connection.
    assert_eq!(c.push_with_retry(&push(2)).await, PushOutcome::Delivered);
    assert_eq!(s.fake.connections(), 2);
    let tokens: Vec<_> = s.fake.pushes().into_iter().map(|r| r.token_hex).collect();
    assert_eq!(
        tokens,
        vec![hex::encode(push(1).token), hex::encode(push(2).token)]
    );
}

#[tokio::test]
async fn goaway_during_a_burst_loses_and_duplicates_nothing() {
    let s = setup().await;
    let c = client(&s);
    s.fake.inject(Target::All, Injection::GoAwayAfter(150));
    let pushes: Vec<_> = (0..600).map(push).collect();
    let results = c.push_many(pushes.clone(), 200).await;
    assert!(results.iter().all(|(_, o)| *o == PushOutcome::Delivered));
    assert_eq!(s.fake.goaways(), 1);
    assert!(s.fake.connections() >= 2);
    let recorded: Vec<_> = s.fake.pushes().into_iter().map(|r| r.token_hex).collect();
    assert_eq!(recorded.len(), 600, "each push recorded exactly once");
    let unique: HashSet<_> = recorded.into_iter().collect();
    let expected: HashSet<_> = pushes.iter().map(|p| hex::encode(&p.token)).collect();
    assert_eq!(unique, expected);
}

#[tokio::test]
async fn two_thousand_concurrent_pushes_are_each_recorded_once() {
    let s = setup().await;
    let c = ApnsClient::new(&s.cert, config(&s.fake, 2)).unwrap();
    let pushes: Vec<_> = (0..2000).map(push).collect();
    let results = c.push_many(pushes.clone(), 2000).await;
    assert_eq!(results.len(), 2000);
    for ((sent, outcome), original) in results.iter().zip(&pushes) {
        assert_eq!(sent, original, "results come back in input order");
        assert_eq!(*outcome, PushOutcome::Delivered);
    }
    let recorded = s.fake.pushes();
    assert_eq!(recorded.len(), 2000);
    let by_token: std::collections::HashMap<_, _> = recorded
        .iter()
        .map(|r| (r.token_hex.clone(), r.push_magic.clone()))
        .collect();
    assert_eq!(by_token.len(), 2000, "no push recorded twice");
    for p in &pushes {
        assert_eq!(by_token.get(&hex::encode(&p.token)), Some(&p.push_magic));
    }
    // Long-lived connections: two, not one per push.
    assert_eq!(s.fake.connections(), 2);
}

#[tokio::test]
async fn the_client_is_cheap_to_share() {
    let s = setup().await;
    let c = client(&s);
    assert_eq!(c.topic(), s.topic);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.push(&push(i)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), PushOutcome::Delivered);
    }
    assert_eq!(s.fake.connections(), 1, "clones share the connection");
}
