//! Metric names and the one-line recorders every layer calls. They go through the `metrics`
//! facade: with no recorder installed (unit tests, the CLI) each call is a no-op, and
//! `server` installs the Prometheus exporter that `GET /metrics` renders. Labels are
//! `&'static str` wherever the value set is closed, so recording costs an atomic add and a
//! registry lookup, no allocation; link names and routes are the open-ended ones.
//!
//! Gauges that describe stored state (queue depth, days to expiry, pool use) are not kept
//! here up to date on the hot path: the `/metrics` handler reads them at scrape time.

use metrics::{counter, gauge, histogram};
use std::time::Duration;

pub const CHECKINS: &str = "russet_checkins_total";
pub const COMMAND_RESULTS: &str = "russet_command_results_total";
pub const QUEUE_DEPTH: &str = "russet_queue_entries";
pub const PUSHES: &str = "russet_pushes_total";
pub const APNS_LATENCY: &str = russet_apns::LATENCY_METRIC;
pub const DEP_SYNC_RUNS: &str = "russet_dep_sync_runs_total";
pub const DEP_SYNC_DURATION: &str = "russet_dep_sync_duration_seconds";
pub const DEP_SYNC_LAST_SUCCESS: &str = "russet_dep_sync_last_success_timestamp_seconds";
pub const DEP_TOKEN_DAYS: &str = "russet_dep_token_days_to_expiry";
pub const PUSH_CERT_DAYS: &str = "russet_push_certificate_days_to_expiry";
pub const SCEP: &str = "russet_scep_requests_total";
pub const HTTP_LATENCY: &str = "russet_http_request_duration_seconds";
pub const DB_POOL: &str = "russet_db_pool_connections";
pub const WEBHOOK_DELIVERIES: &str = "russet_webhook_deliveries_total";
pub const WEBHOOK_OUTBOX: &str = "russet_webhook_outbox_events";

/// Histogram buckets (seconds) for request latencies: a check-in takes milliseconds, a slow
/// PostgreSQL or APNs round trip a few hundred, a timeout 30 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets (seconds) for a DEP sync pass: one page is a second, a first sync of a large
/// organisation minutes.
pub const SYNC_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// Describe every metric once, so the exposition carries `# HELP` lines.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        CHECKINS,
        "Check-in messages, by MessageType and outcome (ok, error)"
    );
    describe_counter!(
        COMMAND_RESULTS,
        "Command results Macs reported, by RequestType and Status"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Open queue entries (one per command and Mac) by status, read at scrape time"
    );
    describe_counter!(PUSHES, "APNs pushes by outcome");
    describe_histogram!(
        APNS_LATENCY,
        metrics::Unit::Seconds,
        "One APNs request, send to answer"
    );
    describe_counter!(
        DEP_SYNC_RUNS,
        "DEP sync passes by link and outcome (ok, error)"
    );
    describe_histogram!(
        DEP_SYNC_DURATION,
        metrics::Unit::Seconds,
        "DEP sync pass duration by link"
    );
    describe_gauge!(
        DEP_SYNC_LAST_SUCCESS,
        "Unix time of the last successful DEP sync pass of this process, by link"
    );
    describe_gauge!(
        DEP_TOKEN_DAYS,
        "Days until a DEP link's server token expires (negative: expired), read at scrape time"
    );
    describe_gauge!(
        PUSH_CERT_DAYS,
        "Days until the APNs push certificate expires (negative: expired), read at scrape time"
    );
    describe_counter!(
        SCEP,
        "SCEP PKIOperations by outcome (issued, renewed, refused, malformed)"
    );
    describe_histogram!(
        HTTP_LATENCY,
        metrics::Unit::Seconds,
        "HTTP requests by listener, method, route template and status"
    );
    describe_gauge!(
        DB_POOL,
        "Database pool connections by state (in_use, idle, max), read at scrape time"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts by receiver (scheme://host:port) and outcome (delivered, \
         failed: retried later, expired: given up)"
    );
    describe_gauge!(
        WEBHOOK_OUTBOX,
        "Webhook events waiting in the outbox by receiver, read at scrape time"
    );
}

/// A check-in message was applied (`ok`) or refused (`error`).
pub fn checkin(message_type: &'static str, ok: bool) {
    counter!(CHECKINS, "message_type" => message_type, "outcome" => outcome(ok)).increment(1);
}

/// A Mac reported a command's result. `request_type` is the stored command's (`unknown` when
/// the command is not Russet's).
pub fn command_result(request_type: &str, status: &'static str) {
    counter!(COMMAND_RESULTS, "request_type" => request_type.to_owned(), "status" => status)
        .increment(1);
}

/// One push's final outcome (after retries).
pub fn push(outcome: &'static str) {
    counter!(PUSHES, "outcome" => outcome).increment(1);
}

/// One SCEP PKIOperation's outcome.
pub fn scep(outcome: &'static str) {
    counter!(SCEP, "outcome" => outcome).increment(1);
}

/// One DEP sync pass of `link`.
pub fn dep_sync(link: &str, ok: bool, took: Duration, finished_unix_secs: i64) {
    counter!(DEP_SYNC_RUNS, "link" => link.to_owned(), "outcome" => outcome(ok)).increment(1);
    histogram!(DEP_SYNC_DURATION, "link" => link.to_owned()).record(took.as_secs_f64());
    if ok {
        gauge!(DEP_SYNC_LAST_SUCCESS, "link" => link.to_owned()).set(finished_unix_secs as f64);
    }
}

/// One HTTP request answered.
pub fn http_request(
    listener: &'static str,
    method: &str,
    route: &str,
    status: u16,
    took: Duration,
) {
    histogram!(
        HTTP_LATENCY,
        "listener" => listener,
        "method" => method.to_owned(),
        "route" => route.to_owned(),
        "status" => status.to_string()
    )
    .record(took.as_secs_f64());
}

/// Scrape-time gauges.
pub fn queue_depth(status: &str, entries: i64) {
    gauge!(QUEUE_DEPTH, "status" => status.to_owned()).set(entries as f64);
}

pub fn db_pool(state: &'static str, connections: u64) {
    gauge!(DB_POOL, "state" => state).set(connections as f64);
}

pub fn push_certificate_days(days: Option<i64>) {
    match days {
        Some(d) => gauge!(PUSH_CERT_DAYS).set(d as f64),
        // No certificate: no value rather than a misleading one.
        None => gauge!(PUSH_CERT_DAYS).set(f64::NAN),
    }
}

pub fn dep_token_days(link: &str, days: i64) {
    gauge!(DEP_TOKEN_DAYS, "link" => link.to_owned()).set(days as f64);
}

/// Webhook events that reached an outcome at one receiver (named without path or query).
pub fn webhook_deliveries(receiver: &str, outcome: &'static str, events: u64) {
    counter!(WEBHOOK_DELIVERIES, "receiver" => receiver.to_owned(), "outcome" => outcome)
        .increment(events);
}

/// Scrape-time gauge.
pub fn webhook_outbox(receiver: &str, events: i64) {
    gauge!(WEBHOOK_OUTBOX, "receiver" => receiver.to_owned()).set(events as f64);
}

fn outcome(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}
