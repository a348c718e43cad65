//! The DEP sync loop (Apple, Device Assignment: Get a List of Devices, Sync the List of Devices),
//! independent of any database.
//!
//! One run of [`sync_once`]:
//! 1. Loads the link's cursor. Starts in the *fetch* phase (`/server/devices`, limit 1000) with
//!    it: without a cursor that is a full fetch; with one it resumes an interrupted fetch, and a
//!    finished fetch answers `EXHAUSTED_CURSOR`, which switches to the *sync* phase (NanoDEP's
//!    approach: the cursor alone does not say which phase produced it).
//! 2. Fetches until `more_to_follow` is false, then syncs (`/devices/sync`) until
//!    `more_to_follow` is false, and returns.
//! 3. `EXPIRED_CURSOR` / `INVALID_CURSOR` drop the cursor and restart with a full fetch (at most
//!    [`SyncOptions::max_cursor_resets`] times per run). Nothing is persisted for the reset
//!    itself: the first page of the new fetch overwrites the stored cursor.
//!
//! Every page is handed to the [`DeviceSink`] first, and only once the sink returned is the
//! page's cursor saved. A run killed at any point (its future dropped) therefore loses nothing:
//! the next run starts from the last saved cursor. It re-delivers at most the one page whose
//! sink call completed but whose cursor save did not; sinks must upsert by serial (idempotent),
//! or store the cursor in the same transaction as the page.
//!
//! Within a sync page the record with the latest `op_date` per serial wins (Apple may repeat a
//! serial); pages are delivered in order, so later pages win over earlier ones.
//!
//! `op_type` is passed through untouched: fetch records have none (a device of the org), sync
//! records carry `added`/`modified`/`deleted`. A `modified` record for a serial the sink has never
//! seen must be treated as `added` by the sink (the sync loop cannot know what the sink holds);
//! `deleted` means the device left the org (disowned, or moved to another MDM server).

use std::collections::HashMap;
use std::future::Future;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{DepClient, MAX_LIMIT};
use crate::cursor::CursorStore;
use crate::error::DepError;
use crate::types::{DepDevice, FetchResponse, OpType};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where the sync loop delivers device pages. The MDM server implements this on its database.
pub trait DeviceSink {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores one page. Must be an idempotent upsert by `serial_number` (a page may be
    /// re-delivered after a crash); records with `op_type == Deleted` remove the device.
    fn upsert_page(
        &self,
        link: &str,
        devices: &[DepDevice],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    /// `/server/devices`.
    Fetch,
    /// `/devices/sync`.
    Sync,
}

/// Reported after every stored page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    /// Pages stored so far in this run (1-based).
    pub pages: u64,
    /// Records in this page after de-duplication.
    pub page_devices: usize,
    /// Records stored so far in this run.
    pub total_devices: u64,
    pub more_to_follow: bool,
    pub cursor_resets: u32,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub fetch_pages: u64,
    pub sync_pages: u64,
    /// Records delivered from fetch pages.
    pub fetched: u64,
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
    /// Sync records with an `op_type` this version does not know, or none.
    pub other_ops: u64,
    /// Duplicate serials dropped within pages (older `op_date`).
    pub superseded: u64,
    /// Expired/invalid cursors that forced a full refetch.
    pub cursor_resets: u32,
    /// Whether a full fetch (no cursor) happened.
    pub full_fetch: bool,
    pub cursor: Option<String>,
    pub fetched_until: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Dep(#[from] DepError),
    #[error("cursor store: {0}")]
    Cursor(#[source] BoxError),
    #[error("device sink: {0}")]
    Sink(#[source] BoxError),
    #[error("malformed DEP page: {0}")]
    Malformed(String),
    #[error("DEP kept rejecting the cursor after {0} resets")]
    TooManyResets(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOptions {
    /// Fetch page size (Apple's maximum by default).
    pub fetch_limit: u32,
    /// Sync page size; `None` lets Apple choose.
    pub sync_limit: Option<u32>,
    pub max_cursor_resets: u32,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            fetch_limit: MAX_LIMIT,
            sync_limit: None,
            max_cursor_resets: 2,
        }
    }
}

/// One fetch+sync run with [`SyncOptions::default`]. See the module documentation.
pub async fn sync_once<C: CursorStore + Sync, S: DeviceSink + Sync>(
    client: &DepClient,
    link_name: &str,
    cursors: &C,
    sink: &S,
    progress: impl FnMut(SyncProgress) + Send,
) -> Result<SyncReport, SyncError> {
    sync_once_with(
        client,
        link_name,
        cursors,
        sink,
        SyncOptions::default(),
        progress,
    )
    .await
}

/// [`sync_once`] with explicit options.
pub async fn sync_once_with<C: CursorStore + Sync, S: DeviceSink + Sync>(
    client: &DepClient,
    link_name: &str,
    cursors: &C,
    sink: &S,
    options: SyncOptions,
    mut progress: impl FnMut(SyncProgress) + Send,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let mut cursor = cursors
        .load(link_name)
        .await
        .map_err(|e| SyncError::Cursor(Box::new(e)))?
        .filter(|c| !c.is_empty());
    let mut phase = SyncPhase::Fetch;
    let mut pages = 0u64;
    let mut total = 0u64;

    loop {
        let result = match phase {
            SyncPhase::Fetch => {
                if cursor.is_none() {
                    report.full_fetch = true;
                }
                client
                    .fetch_devices(cursor.as_deref(), Some(options.fetch_limit))
                    .await
            }
            SyncPhase::Sync => match cursor.as_deref() {
                Some(c) => client.sync_devices(c, options.sync_limit).await,
                None => {
                    phase = SyncPhase::Fetch;
                    continue;
                }
            },
        };
        let page = match result {
            Ok(page) => page,
            Err(e) if phase == SyncPhase::Fetch && e.is_cursor_exhausted() => {
                tracing::debug!(link = link_name, "fetch cursor exhausted; syncing");
                phase = SyncPhase::Sync;
                continue;
            }
            Err(e) if phase == SyncPhase::Sync && e.is_cursor_exhausted() => break,
            Err(e) if e.needs_cursor_reset() => {
                if report.cursor_resets >= options.max_cursor_resets {
                    return Err(SyncError::TooManyResets(report.cursor_resets));
                }
                report.cursor_resets += 1;
                tracing::warn!(link = link_name, error = %e, "DEP cursor rejected; full refetch");
                cursor = None;
                phase = SyncPhase::Fetch;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let FetchResponse {
            devices,
            cursor: next_cursor,
            fetched_until,
            more_to_follow,
        } = page;
        let next_cursor = next_cursor.filter(|c| !c.is_empty());
        if more_to_follow && next_cursor.is_none() {
            return Err(SyncError::Malformed(
                "more_to_follow without a cursor".into(),
            ));
        }
        let before = devices.len();
        let devices = latest_per_serial(devices);
        report.superseded += (before - devices.len()) as u64;
        if devices.iter().any(|d| d.serial_number.is_empty()) {
            return Err(SyncError::Malformed("device without serial_number".into()));
        }

        if !devices.is_empty() {
            sink.upsert_page(link_name, &devices)
                .await
                .map_err(|e| SyncError::Sink(Box::new(e)))?;
        }
        if let Some(c) = &next_cursor
            && cursor.as_deref() != Some(c)
        {
            cursors
                .save(link_name, c)
                .await
                .map_err(|e| SyncError::Cursor(Box::new(e)))?;
            cursor = Some(c.clone());
        }

        pages += 1;
        total += devices.len() as u64;
        match phase {
            SyncPhase::Fetch => {
                report.fetch_pages += 1;
                report.fetched += devices.len() as u64;
            }
            SyncPhase::Sync => {
                report.sync_pages += 1;
                for d in &devices {
                    match d.op_type {
                        Some(OpType::Added) => report.added += 1,
                        Some(OpType::Modified) => report.modified += 1,
                        Some(OpType::Deleted) => report.deleted += 1,
                        Some(OpType::Other) | None => report.other_ops += 1,
                    }
                }
            }
        }
        if fetched_until.is_some() {
            report.fetched_until = fetched_until;
        }
        progress(SyncProgress {
            phase,
            pages,
            page_devices: devices.len(),
            total_devices: total,
            more_to_follow,
            cursor_resets: report.cursor_resets,
        });
        if !more_to_follow {
            match phase {
                SyncPhase::Fetch => phase = SyncPhase::Sync,
                SyncPhase::Sync => break,
            }
        }
    }
    report.cursor = cursor;
    Ok(report)
}

fn parse_date(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Keeps, per serial, the record with the latest `op_date` (a later position wins ties and
/// unparsable dates), in the order of the kept records.
pub fn latest_per_serial(devices: Vec<DepDevice>) -> Vec<DepDevice> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(devices.len());
    let mut keep = vec![false; devices.len()];
    for (i, d) in devices.iter().enumerate() {
        match index.get(d.serial_number.as_str()).copied() {
            None => {
                index.insert(&d.serial_number, i);
                keep[i] = true;
            }
            Some(j) => {
                let old = devices[j].op_date.as_deref().and_then(parse_date);
                let new = d.op_date.as_deref().and_then(parse_date);
                let newer = match (old, new) {
                    (Some(o), Some(n)) => n >= o,
                    (Some(_), None) => false,
                    _ => true,
                };
                if newer {
                    keep[j] = false;
                    keep[i] = true;
                    index.insert(&d.serial_number, i);
                }
            }
        }
    }
    if keep.iter().all(|k| *k) {
        return devices;
    }
    devices
        .into_iter()
        .zip(keep)
        .filter_map(|(d, k)| k.then_some(d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(serial: &str, op: OpType, date: &str) -> DepDevice {
        DepDevice {
            serial_number: serial.into(),
            op_type: Some(op),
            op_date: Some(date.into()),
            ..Default::default()
        }
    }

    #[test]
    fn latest_op_date_wins_within_a_page() {
        let page = vec![
            rec("A", OpType::Added, "2026-01-01T00:00:02Z"),
            rec("B", OpType::Added, "2026-01-01T00:00:00Z"),
            rec("A", OpType::Modified, "2026-01-01T00:00:01Z"),
            rec("B", OpType::Deleted, "2026-01-01T00:00:03Z"),
        ];
        let out = latest_per_serial(page);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].serial_number, "A");
        assert_eq!(out[0].op_type, Some(OpType::Added));
        assert_eq!(out[1].op_type, Some(OpType::Deleted));
    }
}
