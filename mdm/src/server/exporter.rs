//! The process's Prometheus recorder: installed once as the global `metrics` recorder (every
//! `crate::telemetry` call lands in it), rendered by `GET /metrics`. One per process, as a
//! Prometheus target is a process; a second server started in the same process (tests) shares
//! it.

use crate::telemetry::{
    APNS_LATENCY, DEP_SYNC_DURATION, HTTP_LATENCY, LATENCY_BUCKETS, SYNC_BUCKETS,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histograms are drained into their buckets when nobody scrapes (otherwise their
/// samples would pile up in memory).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder's handle, installing the recorder on first use.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_LATENCY.into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(APNS_LATENCY.into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(DEP_SYNC_DURATION.into()), SYNC_BUCKETS)?
        .build_recorder();
    let handle = HANDLE.get_or_init(|| {
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => crate::telemetry::describe(),
            Err(_) => tracing::warn!("another metrics recorder is installed: /metrics stays empty"),
        }
        // A plain thread, not a task: it must outlive any one async runtime (tests start
        // several servers, each on its own runtime, in one process).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    });
    Ok(handle.clone())
}
