//! Wakes enrollments through APNs.
//!
//! Enqueueing a command hands its UUID to a worker that waits a short window, gathers every
//! enrollment that has any of the announced commands open (one push per enrollment per window,
//! however many commands arrived), and pushes them concurrently. A sweep re-pushes enrollments
//! that have open commands but have neither checked in nor been pushed for a while. The APNs
//! client is rebuilt whenever the active push certificate in the database changes, so a renewed
//! certificate takes effect on every node without a restart.

use super::SETTING_PUSH_ALERT;
use crate::secrets::{Sealed, SecretBox};
use crate::service::{Pusher, ServiceError};
use crate::store::{PushResultRecord, PushTarget, Store};
use crate::timefmt::now_ms;
use russet_apns::{ApnsClient, ApnsConfig, MdmPush, PushCertificate, PushOutcome};
use std::collections::HashMap;
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
        let mut outcomes = self.push_targets(&client, vec![target]).await;
        Ok(outcomes
            .pop()
            .map(PushReport::Sent)
            .unwrap_or(PushReport::NoTarget))
    }

    /// Push every target (deduplicated by enrollment) and record what happened.
    async fn push_targets(
        &self,
        client: &ApnsClient,
        targets: Vec<PushTarget>,
    ) -> Vec<PushOutcome> {
        let mut ids = Vec::with_capacity(targets.len());
        let pushes: Vec<MdmPush> = targets
            .into_iter()
            .map(|t| {
                ids.push(t.enrollment_id);
                MdmPush {
                    token: t.push_token,
                    push_magic: t.push_magic,
                }
            })
            .collect();
        let results = client.push_many(pushes, CONCURRENCY).await;
        let at = now_ms();
        let mut records = Vec::with_capacity(results.len());
        let mut refused = None;
        let mut outcomes = Vec::with_capacity(results.len());
        for (enrollment_id, (_, outcome)) in ids.into_iter().zip(results) {
            crate::telemetry::push(outcome_label(&outcome));
            let (result, block) = describe(&outcome);
            if let PushOutcome::CertificateRefused { reason } = &outcome {
                refused = Some(reason.clone());
            }
            records.push(PushResultRecord {
                enrollment_id,
                at,
                result,
                block,
            });
            outcomes.push(outcome);
        }
        if let Err(e) = self.store.record_pushes(&records).await {
            tracing::error!(error = %e, "recording push results failed");
        }
        if let Some(reason) = refused {
            // The whole topic is refused: every later push would fail the same way.
            tracing::error!(%reason, "APNs refuses the push certificate: renew or re-import it");
            let alert = format!("{reason} (at {})", crate::timefmt::rfc3339(at));
            if let Err(e) = self.store.set_setting(SETTING_PUSH_ALERT, &alert).await {
                tracing::error!(error = %e, "storing the APNs alert failed");
            }
        }
        outcomes
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
        let mut targets: HashMap<String, PushTarget> = HashMap::new();
        for uuid in command_uuids {
            match self.store.push_targets_for_command(uuid).await {
                Ok(found) => {
                    for t in found {
                        targets.entry(t.enrollment_id.clone()).or_insert(t);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, command_uuid = %uuid, "finding push targets failed")
                }
            }
        }
        if targets.is_empty() {
            return;
        }
        let n = targets.len();
        let outcomes = self
            .push_targets(&client, targets.into_values().collect())
            .await;
        let delivered = outcomes
            .iter()
            .filter(|o| **o == PushOutcome::Delivered)
            .count();
        tracing::info!(pushed = n, delivered, "pushed devices with new commands");
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
            self.push_targets(&client, targets).await;
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
