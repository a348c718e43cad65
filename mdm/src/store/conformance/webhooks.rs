//! Webhooks: the outbox is a row per event per URL, claimed with a lease (never by two claims
//! at once), retried when due, given back, brought forward when a receiver is back, expired
//! by age; and NanoMDM's TokenUpdate tally restarts at each enrollment.

use super::fixtures::*;
use crate::store::webhooks::{Lease, NewWebhookEvent};
use crate::store::*;

const A: &str = "http://a.example/hook";
const B: &str = "https://b.example/hook";

fn event(n: u32, now: i64) -> NewWebhookEvent {
    NewWebhookEvent {
        event_id: format!("event-{n}"),
        topic: "mdm.Connect".into(),
        body: format!(r#"{{"n":{n}}}"#),
        created_at: now,
    }
}

fn lease(owner: &str, until: i64) -> Lease {
    Lease {
        owner: owner.into(),
        until,
    }
}

pub(super) async fn outbox_rows_are_per_url_leased_retried_and_released(s: &dyn Store) {
    let urls = [A.to_string(), B.to_string()];
    s.enqueue_webhook(&event(1, 100), &urls).await.unwrap();
    s.enqueue_webhook(&event(2, 101), &urls).await.unwrap();
    s.enqueue_webhook(&event(3, 102), &[]).await.unwrap();
    assert_eq!(
        s.webhook_outbox_depth().await.unwrap(),
        vec![(A.to_string(), 2), (B.to_string(), 2)]
    );

    // Nothing is due before it was created; then oldest first, one attempt counted.
    assert!(
        s.claim_webhooks(A, 99, &lease("w1", 1_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let got = s
        .claim_webhooks(A, 200, &lease("w1", 1_000), 1)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id, "event-1");
    assert_eq!(got[0].url, A);
    assert_eq!(got[0].body, r#"{"n":1}"#);
    assert_eq!(got[0].created_at, 100);
    assert_eq!(got[0].attempts, 1);
    // Leased rows are not claimed again until the lease runs out.
    let rest = s
        .claim_webhooks(A, 200, &lease("w2", 1_000), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event_id, "event-2");
    assert!(
        s.claim_webhooks(A, 999, &lease("w3", 5_000), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A failure (by the holder only) reschedules; a release makes it due at once.
    s.webhook_failed(got[0].id, "someone-else", 300, "nope")
        .await
        .unwrap();
    s.webhook_failed(got[0].id, "w1", 3_000, "HTTP 503")
        .await
        .unwrap();
    s.release_webhooks(&[rest[0].id], "w2").await.unwrap();
    let again = s
        .claim_webhooks(A, 1_000, &lease("w4", 2_000), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "event-1 waits for its retry: {again:?}");
    assert_eq!(again[0].event_id, "event-2");
    assert_eq!(again[0].attempts, 1, "a release gives the attempt back");
    s.delete_webhook(again[0].id).await.unwrap();
    let retried = s
        .claim_webhooks(A, 3_000, &lease("w4", 4_000), 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].event_id, "event-1");
    assert_eq!(retried[0].attempts, 2);

    // B's rows were never touched by A's claims.
    let b = s
        .claim_webhooks(B, 200, &lease("w1", 1_000), 10)
        .await
        .unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|r| r.url == B && r.attempts == 1));

    // A receiver that is back: its rows waiting for a retry are due now (leased ones stay).
    for r in &b {
        s.webhook_failed(r.id, "w1", 900_000, "down").await.unwrap();
    }
    assert_eq!(s.webhooks_due_now(B, 5_000).await.unwrap(), 2);
    assert_eq!(
        s.claim_webhooks(B, 5_000, &lease("w1", 6_000), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.webhooks_due_now(A, 5_000).await.unwrap(),
        0,
        "A's row is leased"
    );
}

pub(super) async fn outbox_expires_by_age_whatever_the_url(s: &dyn Store) {
    s.enqueue_webhook(&event(1, 100), &[A.to_string(), B.to_string()])
        .await
        .unwrap();
    s.enqueue_webhook(&event(2, 500), &[A.to_string()])
        .await
        .unwrap();
    assert!(s.expire_webhooks(100).await.unwrap().is_empty());
    assert_eq!(
        s.expire_webhooks(200).await.unwrap(),
        vec![(A.to_string(), 1), (B.to_string(), 1)]
    );
    assert_eq!(
        s.webhook_outbox_depth().await.unwrap(),
        vec![(A.to_string(), 1)]
    );
}

pub(super) async fn concurrent_claims_never_share_a_row(s: &dyn Store) {
    let urls = [A.to_string()];
    for n in 0..60 {
        s.enqueue_webhook(&event(n, 100), &urls).await.unwrap();
    }
    let worker = |owner: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let got = s
                .claim_webhooks(A, 200, &lease(owner, 10_000), 4)
                .await
                .unwrap();
            if got.is_empty() {
                return mine;
            }
            mine.extend(got.into_iter().map(|r| r.id));
        }
    };
    let all = futures::future::join_all(["w1", "w2", "w3", "w4"].map(worker)).await;
    let mut ids: Vec<i64> = all.into_iter().flatten().collect();
    let claimed = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "a row was claimed twice");
    assert_eq!(claimed, 60, "every row claimed once");
}

pub(super) async fn token_update_tally_restarts_at_each_enrollment(s: &dyn Store) {
    assert_eq!(s.token_update_tally("D").await.unwrap(), None);
    enroll(s, "D", 10).await;
    assert!(s.token_update(&token("D:U", "D", 11)).await.unwrap());
    assert_eq!(s.token_update_tally("D").await.unwrap(), Some(1));
    assert!(s.token_update(&token("D", "D", 12)).await.unwrap());
    assert_eq!(s.token_update_tally("D").await.unwrap(), Some(2));
    assert_eq!(s.token_update_tally("D:U").await.unwrap(), Some(1));
    // Re-enrollment: the device and its user channels start over; the lifetime count does not.
    s.authenticate(&auth("D", "cert-D", 13)).await.unwrap();
    assert_eq!(s.token_update_tally("D").await.unwrap(), Some(0));
    assert_eq!(s.token_update_tally("D:U").await.unwrap(), Some(0));
    assert!(s.token_update(&token("D", "D", 14)).await.unwrap());
    assert_eq!(s.token_update_tally("D").await.unwrap(), Some(1));
    assert_eq!(s.device("D").await.unwrap().unwrap().token_update_count, 3);
}
