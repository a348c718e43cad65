//! Wakes enrollments through APNs.
//!
//! Enqueueing a command hands its UUID to a worker that waits a short window, gathers every
//! enrollment that has any of the announced commands open (one push per enrollment per window,
//! however many commands arrived), and pushes them concurrently. A fleet-wide command streams
//! through: its targets are read a page at a time as the pushes need them and the outcomes are
//! recorded a page at a time while the pushes go on, so a fan-out to 100,000 Macs holds a few
//! pages, never the fleet. A sweep re-pushes enrollments that have open commands but have
//! neither checked in nor been pushed for a while. The APNs client is rebuilt whenever the
//! active push certificate in the database changes, so a renewed certificate takes effect on
//! every node without a restart.

use super::SETTING_PUSH_ALERT;
use crate::secrets::{Sealed, SecretBox};
use crate::service::{Pusher, ServiceError};
use crate::store::{PushResultRecord, PushTarget, Store};
use crate::timefmt::now_ms;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, future, stream};
use russet_apns::{ApnsClient, ApnsConfig, MdmPush, PushCertificate, PushOutcome};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, watch};

/// How long the worker waits after the first announced command for more to arrive.
const COALESCE_WINDOW: Duration = Duration::from_millis(200);
/// Pushes in flight at once (spread over the client's HTTP/2 connections).
const CONCURRENCY: usize = 512;
/// The sweep re-pushes enrollments silent (no check-in, no push) for this long.
const SWEEP_SILENCE: Duration = Duration::from_secs(3600);
const SWEEP_BATCH: u32 = 10_000;
/// Targets read, and outcomes recorded, at a time.
const PAGE: u32 = 2_000;

#[derive(Debug, Clone)]
pub struct DispatcherSettings {
    pub apns_url: String,
    pub apns_extra_ca_pem: Option<Vec<u8>>,
    /// How often the sweep runs.
    pub sweep_interval: Duration,
}

/// What a push came to, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushReport {
    Sent(PushOutcome),
    /// APNs said this token is dead; it is not pushed until the device sends a new token.
    Blocked(String),
    NoCertificate,
    /// Unknown, not enrolled, or no push token yet.
    NoTarget,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    vault: Arc<SecretBox>,
    settings: DispatcherSettings,
    /// (push certificate id, client built from it).
    client: Mutex<Option<(i64, ApnsClient)>>,
    announce: mpsc::UnboundedSender<String>,
}

impl Dispatcher {
    /// Start the worker and the sweep; both stop when `shutdown` turns true.
    pub fn start(
        store: Arc<dyn Store>,
        vault: Arc<SecretBox>,
        settings: DispatcherSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let (announce, rx) = mpsc::unbounded_channel();
        let d = Arc::new(Dispatcher {
            store,
            vault,
            settings,
            client: Mutex::new(None),
            announce,
        });
        tokio::spawn(worker(d.clone(), rx, shutdown.clone()));
        tokio::spawn(sweep(d.clone(), shutdown));
        d
    }

    /// The APNs client for the active push certificate, rebuilt when it changed.
    async fn client(&self) -> Result<Option<ApnsClient>, ServiceError> {
        let Some(rec) = self.store.active_push_certificate().await? else {
            return Ok(None);
        };
        let mut cached = self.client.lock().await;
        if let Some((id, client)) = cached.as_ref()
            && *id == rec.id
        {
            return Ok(Some(client.clone()));
        }
        let key = self.vault.open(
            Sealed::PushCertificateKey { topic: &rec.topic },
            &rec.key_sealed,
        )?;
        let cert = PushCertificate::from_pem(rec.cert_pem.as_bytes(), &key)
            .map_err(|e| ServiceError::Internal(format!("the stored push certificate: {e}")))?;
        let config = ApnsConfig {
            base_url: self.settings.apns_url.clone(),
            extra_ca_pem: self.settings.apns_extra_ca_pem.clone(),
            ..ApnsConfig::default()
        };
        let client = ApnsClient::new(&cert, config)
            .map_err(|e| ServiceError::Internal(format!("building the APNs client: {e}")))?;
        tracing::info!(topic = %rec.topic, "APNs client ready for the active push certificate");
        *cached = Some((rec.id, client.clone()));
        Ok(Some(client))
    }

    /// Push one enrollment now (admin "push" button), blocked tokens excepted.
    pub async fn push_enrollment(&self, enrollment_id: &str) -> Result<PushReport, ServiceError> {
        let Some(target) = self.store.push_target(enrollment_id).await? else {
            return Ok(PushReport::NoTarget);
        };
        if let Some(reason) = target.push_blocked {
            return Ok(PushReport::Blocked(reason));
        }
        let Some(client) = self.client().await? else {
            return Ok(PushReport::NoCertificate);
        };
        let tally = self.push_all(&client, stream::iter([target])).await;
        Ok(tally
            .last
            .map(PushReport::Sent)
            .unwrap_or(PushReport::NoTarget))
    }

    /// Push every target, at most [`CONCURRENCY`] in flight, and record what happened a page
    /// at a time while the pushes go on. The reading stays about a page ahead of the pushes
    /// (so a page read never leaves the pushes waiting), a slow APNs slows the reading, and
    /// the recording holds back the pushes only when it is two pages behind.
    async fn push_all(
        &self,
        client: &ApnsClient,
        targets: impl Stream<Item = PushTarget>,
    ) -> Tally {
        let page = PAGE as usize;
        let (ahead_tx, ahead_rx) = mpsc::channel::<PushTarget>(page);
        let read = async move {
            let mut targets = std::pin::pin!(targets);
            while let Some(t) = targets.next().await {
                if ahead_tx.send(t).await.is_err() {
                    break;
                }
            }
        };
        let (records_tx, mut records_rx) = mpsc::channel::<Vec<PushResultRecord>>(2);
        let push = async move {
            let ahead = stream::unfold(ahead_rx, |mut rx| async move {
                rx.recv().await.map(|t| (t, rx))
            });
            let outcomes = ahead
                .map(|t| {
                    let push = MdmPush {
                        token: t.push_token,
                        push_magic: t.push_magic,
                    };
                    // A task of its own, so the pushes spread over the runtime's threads.
                    let client = client.clone();
                    let task = tokio::spawn(async move { client.push_with_retry(&push).await });
                    async move {
                        let outcome = task.await.unwrap_or_else(|e| PushOutcome::Retry {
                            reason: format!("push task failed: {e}"),
                        });
                        (t.enrollment_id, outcome)
                    }
                })
                .buffer_unordered(CONCURRENCY);
            let mut outcomes = std::pin::pin!(outcomes);
            let mut tally = Tally::default();
            let mut records = Vec::with_capacity(page);
            while let Some((enrollment_id, outcome)) = outcomes.next().await {
                crate::telemetry::push(outcome_label(&outcome));
                let (result, block) = describe(&outcome);
                records.push(PushResultRecord {
                    enrollment_id,
                    at: now_ms(),
                    result,
                    block,
                });
                tally.add(outcome);
                if records.len() >= page {
                    let full = std::mem::replace(&mut records, Vec::with_capacity(page));
                    if records_tx.send(full).await.is_err() {
                        break;
                    }
                }
            }
            if !records.is_empty() {
                let _ = records_tx.send(records).await;
            }
            tally
        };
        let record = async {
            while let Some(records) = records_rx.recv().await {
                if let Err(e) = self.store.record_pushes(&records).await {
                    tracing::error!(error = %e, "recording push results failed");
                }
            }
        };
        let ((), tally, ()) = tokio::join!(read, push, record);
        if let Some(reason) = &tally.refused {
            // The whole topic is refused: every later push would fail the same way.
            tracing::error!(%reason, "APNs refuses the push certificate: renew or re-import it");
            let alert = format!("{reason} (at {})", crate::timefmt::rfc3339(now_ms()));
            if let Err(e) = self.store.set_setting(SETTING_PUSH_ALERT, &alert).await {
                tracing::error!(error = %e, "storing the APNs alert failed");
            }
        }
        tally
    }

    /// Push the enrollments that have any of these commands open.
    async fn push_commands(&self, command_uuids: &[String]) {
        let client = match self.client().await {
            Ok(Some(c)) => c,
            Ok(None) => {
                tracing::debug!(
                    "no push certificate: devices get their commands when they check in"
                );
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "APNs client unavailable");
                return;
            }
        };
        // One push per enrollment per window: with several commands, an enrollment holding
        // more than one of them is pushed for the first only.
        let several = command_uuids.len() > 1;
        let mut pushed = HashSet::new();
        let store = self.store.as_ref();
        let targets = stream::iter(command_uuids.to_vec())
            .flat_map(move |uuid| command_targets(store, uuid))
            .filter(move |t| future::ready(!several || pushed.insert(t.enrollment_id.clone())))
            .boxed();
        let tally = self.push_all(&client, targets).await;
        if tally.pushed > 0 {
            tracing::info!(
                pushed = tally.pushed,
                delivered = tally.delivered,
                "pushed devices with new commands"
            );
        }
    }

    async fn sweep_once(&self) {
        let now = now_ms();
        let silence = i64::try_from(SWEEP_SILENCE.as_millis()).unwrap_or(i64::MAX);
        let targets = match self
            .store
            .sweep_targets(now - silence, now - silence, SWEEP_BATCH)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "push sweep query failed");
                return;
            }
        };
        if targets.is_empty() {
            return;
        }
        if let Ok(Some(client)) = self.client().await {
            let n = targets.len();
            self.push_all(&client, stream::iter(targets)).await;
            tracing::info!(
                pushed = n,
                "sweep re-pushed silent devices with pending commands"
            );
        }
    }
}

impl Pusher for Dispatcher {
    fn command_enqueued(&self, command_uuid: &str) {
        // The receiver lives as long as the worker; after shutdown there is nobody to wake.
        let _ = self.announce.send(command_uuid.to_string());
    }
}

/// What a run of pushes came to.
#[derive(Debug, Default)]
struct Tally {
    pushed: usize,
    delivered: usize,
    /// APNs refused the push certificate (for one push or more).
    refused: Option<String>,
    /// The outcome of the last push to finish.
    last: Option<PushOutcome>,
}

impl Tally {
    fn add(&mut self, outcome: PushOutcome) {
        self.pushed += 1;
        match &outcome {
            PushOutcome::Delivered => self.delivered += 1,
            PushOutcome::CertificateRefused { reason } => self.refused = Some(reason.clone()),
            _ => {}
        }
        self.last = Some(outcome);
    }
}

/// The push targets of one command, read a page at a time (in enrollment order) as the pushes
/// take them. A failed read ends the stream: what was read is pushed, the rest waits for the
/// sweep.
fn command_targets(store: &dyn Store, command_uuid: String) -> BoxStream<'_, PushTarget> {
    let first = Some(String::new());
    stream::unfold(
        (command_uuid, first),
        move |(command_uuid, after)| async move {
            let after = after?;
            match store
                .push_targets_for_command(&command_uuid, &after, PAGE)
                .await
            {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = (page.len() >= PAGE as usize)
                        .then(|| page.last().map(|t| t.enrollment_id.clone()))
                        .flatten();
                    Some((stream::iter(page), (command_uuid, next)))
                }
                Err(e) => {
                    tracing::error!(error = %e, %command_uuid, "finding push targets failed");
                    None
                }
            }
        },
    )
    .flatten()
    .boxed()
}

/// A push outcome as stored on the enrollment: (result text, block reason).
/// The `outcome` label of `russet_pushes_total`.
fn outcome_label(outcome: &PushOutcome) -> &'static str {
    match outcome {
        PushOutcome::Delivered => "delivered",
        PushOutcome::Unregistered { .. } => "unregistered",
        PushOutcome::BadToken { .. } => "bad_token",
        PushOutcome::CertificateRefused { .. } => "certificate_refused",
        PushOutcome::Rejected { .. } => "rejected",
        PushOutcome::Retry { .. } => "not_delivered",
    }
}

fn describe(outcome: &PushOutcome) -> (String, Option<String>) {
    match outcome {
        PushOutcome::Delivered => ("delivered".into(), None),
        PushOutcome::Unregistered { timestamp_ms } => {
            let when = timestamp_ms
                .map(crate::timefmt::rfc3339)
                .unwrap_or_else(|| "unknown time".into());
            let why = format!("Unregistered (410) since {when}");
            (why.clone(), Some(why))
        }
        PushOutcome::BadToken { reason } => {
            let why = format!("{reason} (400)");
            (why.clone(), Some(why))
        }
        PushOutcome::CertificateRefused { reason } => {
            (format!("certificate refused: {reason}"), None)
        }
        PushOutcome::Rejected { reason } => (format!("rejected: {reason}"), None),
        PushOutcome::Retry { reason } => (format!("not delivered, will retry: {reason}"), None),
    }
}

async fn worker(
    d: Arc<Dispatcher>,
    mut rx: mpsc::UnboundedReceiver<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            _ = shutdown.changed() => return,
            next = rx.recv() => match next { Some(u) => u, None => return },
        };
        tokio::time::sleep(COALESCE_WINDOW).await;
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        batch.sort();
        batch.dedup();
        d.push_commands(&batch).await;
    }
}

async fn sweep(d: Arc<Dispatcher>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(d.settings.sweep_interval);
    tick.tick().await; // the first tick is immediate: let the server settle first
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => d.sweep_once().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_tokens_block_and_transient_failures_do_not() {
        let (_, block) = describe(&PushOutcome::Unregistered {
            timestamp_ms: Some(0),
        });
        assert_eq!(
            block.as_deref(),
            Some("Unregistered (410) since 1970-01-01T00:00:00Z")
        );
        let (_, block) = describe(&PushOutcome::BadToken {
            reason: "BadDeviceToken".into(),
        });
        assert!(block.is_some());
        for o in [
            PushOutcome::Delivered,
            PushOutcome::Retry {
                reason: "HTTP 503".into(),
            },
            PushOutcome::Rejected {
                reason: "BadPriority".into(),
            },
            PushOutcome::CertificateRefused {
                reason: "BadCertificate".into(),
            },
        ] {
            assert_eq!(describe(&o).1, None, "{o:?}");
        }
    }
}
