//! The DEP sync worker: `russet_dep::sync_once` per link on the store, then the default
//! profile for newly added devices. One leader per link across servers (PostgreSQL advisory
//! lock) and one pass per link within a process.

use super::{CHUNK, DepOpError, DepResult, DepService, FAILED_RETRY_MS};
use crate::store::dep::{DepAssignOutcome, DepDeviceUpsert, DepLinkRecord};
use crate::store::{Store, StoreError};
use crate::timefmt::now_ms;
use russet_dep::{
    CursorStore, DepClient, DepDevice, DeviceSink, DeviceStatus, OpType, SyncError, SyncProgress,
    SyncReport, sync_once,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

/// Most devices auto-assigned in one pass; the rest wait for the next.
const AUTO_ASSIGN_PER_PASS: u32 = 50_000;

/// The store as the sync loop's cursor store and device sink.
struct StoreSink<'a> {
    store: &'a dyn Store,
    auto_assign: bool,
    /// `modified` records for serials Russet did not know: counted as added.
    modified_unknown: AtomicU64,
}

impl CursorStore for StoreSink<'_> {
    type Error = StoreError;

    async fn load(&self, link: &str) -> Result<Option<String>, StoreError> {
        self.store.dep_cursor(link).await
    }

    async fn save(&self, link: &str, cursor: &str) -> Result<(), StoreError> {
        self.store.save_dep_cursor(link, cursor, now_ms()).await
    }
}

impl DeviceSink for StoreSink<'_> {
    type Error = StoreError;

    async fn upsert_page(&self, link: &str, devices: &[DepDevice]) -> Result<(), StoreError> {
        let modified: Vec<String> = devices
            .iter()
            .filter(|d| d.op_type == Some(OpType::Modified))
            .map(|d| d.serial_number.clone())
            .collect();
        if !modified.is_empty() {
            let mut unknown = modified.len() as u64;
            for chunk in modified.chunks(CHUNK) {
                let known = self.store.dep_known_serials(chunk).await?;
                unknown -= known.len() as u64;
            }
            self.modified_unknown.fetch_add(unknown, Ordering::Relaxed);
        }
        let now = now_ms();
        let rows: Vec<DepDeviceUpsert> = devices
            .iter()
            .map(|d| upsert_row(link, d, self.auto_assign, now))
            .collect();
        self.store.upsert_dep_devices(&rows).await
    }
}

fn lower<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref()
        .and_then(|v| serde_json::to_value(v).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn upsert_row(link: &str, d: &DepDevice, auto_assign: bool, now: i64) -> DepDeviceUpsert {
    let deleted = d.op_type == Some(OpType::Deleted);
    let op_date_ms = d
        .op_date
        .as_deref()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    DepDeviceUpsert {
        serial_number: d.serial_number.clone(),
        link: link.to_owned(),
        model: d.model.clone(),
        description: d.description.clone(),
        color: d.color.clone(),
        asset_tag: d.asset_tag.clone(),
        os: d.os.clone(),
        device_family: d.device_family.clone(),
        profile_status: lower(&d.profile_status),
        profile_uuid: d.profile_uuid.clone().filter(|u| !u.is_empty()),
        profile_assign_time: d.profile_assign_time.clone(),
        profile_push_time: d.profile_push_time.clone(),
        device_assigned_date: d.device_assigned_date.clone(),
        device_assigned_by: d.device_assigned_by.clone(),
        op_type: lower(&d.op_type),
        op_date: d.op_date.clone(),
        op_date_ms,
        mdm_migration_deadline: d.mdm_migration_deadline.clone(),
        deleted,
        // Only devices without a profile get the default one.
        auto_assign: auto_assign && d.profile_uuid.as_deref().is_none_or(str::is_empty),
        now,
    }
}

/// What automatic assignment did in one pass.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct AutoAssignReport {
    pub profile_uuid: Option<String>,
    pub attempted: u64,
    pub success: u64,
    pub not_accessible: u64,
    pub failed: u64,
    pub throttled: u64,
    pub other: u64,
    pub error: Option<String>,
}

impl DepService {
    /// One sync pass of a link now (`dep sync`), waiting for a pass already running in this
    /// process; `Busy` when another server holds the link.
    pub async fn sync_link(
        &self,
        name: &str,
        progress: impl FnMut(SyncProgress) + Send,
    ) -> DepResult<Value> {
        let lock = self.pass_lock(name);
        let _pass = lock.lock().await;
        let link = self.link(name).await?;
        let Some(_leader) = self.store.dep_sync_leader(name).await? else {
            return Err(DepOpError::Busy(format!(
                "another Russet server is syncing DEP link {name} right now"
            )));
        };
        self.pass(&link, progress).await
    }

    /// Names of links that have a token.
    pub async fn syncable_links(&self) -> DepResult<Vec<String>> {
        Ok(self
            .store
            .dep_links()
            .await?
            .into_iter()
            .filter(|l| l.token_sealed.is_some())
            .map(|l| l.name)
            .collect())
    }

    /// One sync pass, counted and timed per link (`russet_dep_sync_*`).
    async fn pass(
        &self,
        link: &DepLinkRecord,
        progress: impl FnMut(SyncProgress) + Send,
    ) -> DepResult<Value> {
        let started = std::time::Instant::now();
        let result = self.sync_pass(link, progress).await;
        crate::telemetry::dep_sync(
            &link.name,
            result.is_ok(),
            started.elapsed(),
            now_ms().div_euclid(1000),
        );
        result
    }

    /// Set each linked token's days-to-expiry gauge (at scrape time; one query).
    pub async fn record_gauges(&self) -> DepResult<()> {
        let now = now_ms();
        for link in self.store.dep_links().await? {
            if let Some(expiry) = link.token_expiry {
                crate::telemetry::dep_token_days(&link.name, (expiry - now).div_euclid(86_400_000));
            }
        }
        Ok(())
    }

    async fn sync_pass(
        &self,
        link: &DepLinkRecord,
        progress: impl FnMut(SyncProgress) + Send,
    ) -> DepResult<Value> {
        let client = self.client(link)?;
        let started = now_ms();
        let sink = StoreSink {
            store: self.store.as_ref(),
            auto_assign: link.default_profile_uuid.is_some(),
            modified_unknown: AtomicU64::new(0),
        };
        let result = sync_once(&client, &link.name, &sink, &sink, progress).await;
        let mut report = match result {
            Ok(r) => {
                self.store
                    .record_dep_call(&link.name, None, now_ms())
                    .await?;
                r
            }
            Err(SyncError::Dep(e)) => {
                let err = self.note(&link.name, Err::<(), _>(e)).await;
                let message = err.err().map(|e| e.to_string()).unwrap_or_default();
                self.record_failure(&link.name, &message).await;
                return Err(DepOpError::Sync(message));
            }
            Err(e) => {
                self.record_failure(&link.name, &e.to_string()).await;
                return Err(DepOpError::Sync(e.to_string()));
            }
        };
        let moved = sink.modified_unknown.load(Ordering::Relaxed);
        report.added += moved;
        report.modified = report.modified.saturating_sub(moved);
        let auto = self.auto_assign(link, &client).await?;
        let summary = summary_json(&link.name, &report, &auto, started);
        self.store
            .record_dep_sync(&link.name, &summary.to_string(), now_ms())
            .await?;
        tracing::info!(
            link = %link.name,
            fetched = report.fetched,
            added = report.added,
            modified = report.modified,
            deleted = report.deleted,
            assigned = auto.success,
            "DEP sync pass done"
        );
        Ok(summary)
    }

    async fn record_failure(&self, link: &str, message: &str) {
        let summary = json!({"link": link, "ok": false, "error": message,
                             "finished_at": crate::timefmt::rfc3339(now_ms())});
        if let Err(e) = self
            .store
            .record_dep_sync(link, &summary.to_string(), now_ms())
            .await
        {
            tracing::error!(error = %e, "recording the DEP sync failure failed");
        }
        tracing::warn!(link, error = message, "DEP sync pass failed");
    }

    /// Assigns the link's default profile to devices waiting for it, in chunks of 1000.
    /// FAILED waits 24 h, THROTTLED waits Apple's `retry_after_seconds` (and ends the pass).
    async fn auto_assign(
        &self,
        link: &DepLinkRecord,
        client: &DepClient,
    ) -> DepResult<AutoAssignReport> {
        let mut report = AutoAssignReport {
            profile_uuid: link.default_profile_uuid.clone(),
            ..Default::default()
        };
        let Some(uuid) = &link.default_profile_uuid else {
            return Ok(report);
        };
        let due = self
            .store
            .dep_auto_assign_due(&link.name, now_ms(), AUTO_ASSIGN_PER_PASS)
            .await?;
        for chunk in due.chunks(CHUNK) {
            let answer = client.assign_profile(uuid, chunk).await;
            let answer = match self.note(&link.name, answer).await {
                Ok(a) => a,
                Err(e) => {
                    report.error = Some(e.to_string());
                    break;
                }
            };
            let now = now_ms();
            let outcomes = assign_outcomes(uuid, &answer.devices, answer.retry_after_seconds, now);
            for o in &outcomes {
                report.attempted += 1;
                match o.status.as_str() {
                    "SUCCESS" => report.success += 1,
                    "NOT_ACCESSIBLE" => report.not_accessible += 1,
                    "FAILED" => report.failed += 1,
                    "THROTTLED" => report.throttled += 1,
                    _ => report.other += 1,
                }
            }
            self.store.record_dep_assignments(&outcomes).await?;
            if outcomes.iter().any(|o| o.status == "THROTTLED") {
                break;
            }
        }
        Ok(report)
    }
}

/// Per-serial outcomes as stored: SUCCESS and NOT_ACCESSIBLE are settled; FAILED (and unknown
/// codes) retry after 24 h; THROTTLED after `retry_after_seconds`.
pub(crate) fn assign_outcomes(
    uuid: &str,
    devices: &std::collections::BTreeMap<String, DeviceStatus>,
    retry_after_seconds: Option<u64>,
    now: i64,
) -> Vec<DepAssignOutcome> {
    devices
        .iter()
        .map(|(serial, status)| {
            let (settled, retry_at) = match status {
                DeviceStatus::Success | DeviceStatus::NotAccessible => (true, None),
                DeviceStatus::Throttled => {
                    let secs = retry_after_seconds.unwrap_or(60).min(86_400) as i64;
                    (false, Some(now + secs * 1000))
                }
                DeviceStatus::Failed | DeviceStatus::Other(_) => {
                    (false, Some(now + FAILED_RETRY_MS))
                }
            };
            DepAssignOutcome {
                serial_number: serial.clone(),
                profile_uuid: uuid.to_owned(),
                status: status.as_str().to_owned(),
                retry_at,
                settled,
                at: now,
            }
        })
        .collect()
}

fn summary_json(link: &str, r: &SyncReport, auto: &AutoAssignReport, started: i64) -> Value {
    json!({
        "link": link,
        "ok": true,
        "fetch_pages": r.fetch_pages,
        "sync_pages": r.sync_pages,
        "fetched": r.fetched,
        "added": r.added,
        "modified": r.modified,
        "deleted": r.deleted,
        "other_ops": r.other_ops,
        "superseded": r.superseded,
        "cursor_resets": r.cursor_resets,
        "full_fetch": r.full_fetch,
        "fetched_until": r.fetched_until,
        "auto_assign": auto,
        "started_at": crate::timefmt::rfc3339(started),
        "finished_at": crate::timefmt::rfc3339(now_ms()),
        "duration_ms": now_ms() - started,
    })
}

/// The background worker of `russet serve`: every `interval`, one pass per link with a token.
/// A pass is dropped mid-way at shutdown; the cursor makes the next one resume.
pub fn spawn_worker(
    dep: Arc<DepService>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
            let work = worker_pass(&dep);
            tokio::select! {
                _ = work => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
        }
    })
}

async fn worker_pass(dep: &DepService) {
    let links = match dep.syncable_links().await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "DEP worker: listing links failed");
            return;
        }
    };
    for name in links {
        let lock = dep.pass_lock(&name);
        let Ok(_pass) = lock.try_lock() else {
            continue;
        };
        let leader = match dep.store.dep_sync_leader(&name).await {
            Ok(Some(g)) => g,
            Ok(None) => {
                tracing::debug!(link = %name, "another server leads this DEP link");
                continue;
            }
            Err(e) => {
                tracing::error!(link = %name, error = %e, "DEP worker: leader lock failed");
                continue;
            }
        };
        let result = match dep.link(&name).await {
            Ok(link) => dep.pass(&link, |_| {}).await,
            Err(e) => Err(e),
        };
        drop(leader);
        if let Err(e) = result {
            tracing::warn!(link = %name, error = %e, "DEP worker pass failed");
        }
    }
}
