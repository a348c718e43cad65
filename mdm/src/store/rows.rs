//! Row shapes and SQL shared by both backends.
//!
//! Both dialects accept `$N` placeholders (sqlx's SQLite driver maps `$N` to `?N`), so the
//! plain `SELECT`s used to build views are written once, here.

use super::{
    AuditEntry, AuditRecord, DeviceView, EscrowedPin, QueueEntryView, QueueStatus, UserChannelView,
};
use std::collections::HashMap;

/// `list_devices` / `device_commands` / `audit_list` page size when the caller passes 0, and
/// the most one call returns.
pub(crate) const DEFAULT_LIMIT: u32 = 100;
pub(crate) const MAX_LIMIT: u32 = 1000;

pub(crate) fn clamp_limit(limit: u32) -> i64 {
    let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
    i64::from(limit.min(MAX_LIMIT))
}

/// A device joined with its device-channel enrollment (written in the same transaction as the
/// device; the LEFT JOIN only keeps a view possible without it).
pub(crate) const DEVICE_SELECT: &str = "SELECT d.id, d.enrollment_type, d.serial_number, d.model, \
     d.model_name, d.device_name, d.os_version, d.build_version, d.product_name, \
     d.identity_cert_sha256, d.identity_not_after, d.authenticated_at, d.created_at, d.updated_at, \
     d.pin_required_for_lock, d.pin_required_for_erase, d.is_apple_silicon, \
     e.topic, e.enabled, e.awaiting_configuration, e.push_token, e.push_magic, \
     e.token_update_count, e.last_token_update_at, e.last_seen_at, e.checked_out_at, \
     e.last_push_at, e.last_push_result, e.push_blocked \
     FROM devices d LEFT JOIN enrollments e ON e.id = d.id";

pub(crate) const USER_CHANNEL_COLUMNS: &str = "SELECT device_id, id, user_id, user_short_name, \
     user_long_name, enabled, last_seen_at FROM enrollments";

pub(crate) const QUEUE_SELECT: &str = "SELECT q.command_uuid, q.enrollment_id, c.request_type, \
     q.status, q.priority, q.enqueued_at, q.delivered_at, q.delivery_count, q.not_now_count, \
     q.first_not_now_at, q.result_at, q.canceled_at, q.result \
     FROM queue_entries q JOIN commands c ON c.uuid = q.command_uuid";

#[derive(sqlx::FromRow)]
pub(crate) struct DeviceRow {
    id: String,
    enrollment_type: String,
    serial_number: Option<String>,
    model: Option<String>,
    model_name: Option<String>,
    device_name: Option<String>,
    os_version: Option<String>,
    build_version: Option<String>,
    product_name: Option<String>,
    identity_cert_sha256: Option<String>,
    identity_not_after: Option<i64>,
    authenticated_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    pin_required_for_lock: Option<bool>,
    pin_required_for_erase: Option<bool>,
    is_apple_silicon: Option<bool>,
    topic: Option<String>,
    enabled: Option<bool>,
    awaiting_configuration: Option<bool>,
    push_token: Option<Vec<u8>>,
    push_magic: Option<String>,
    token_update_count: Option<i64>,
    last_token_update_at: Option<i64>,
    last_seen_at: Option<i64>,
    checked_out_at: Option<i64>,
    last_push_at: Option<i64>,
    last_push_result: Option<String>,
    push_blocked: Option<String>,
}

impl DeviceRow {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserChannelRow {
    device_id: String,
    id: String,
    user_id: Option<String>,
    user_short_name: Option<String>,
    user_long_name: Option<String>,
    enabled: bool,
    last_seen_at: Option<i64>,
}

/// Join device rows with the user channels fetched for them, keeping the device order.
pub(crate) fn device_views(devices: Vec<DeviceRow>, users: Vec<UserChannelRow>) -> Vec<DeviceView> {
    let mut by_device: HashMap<String, Vec<UserChannelView>> = HashMap::new();
    for u in users {
        by_device
            .entry(u.device_id)
            .or_default()
            .push(UserChannelView {
                enrollment_id: u.id,
                user_id: u.user_id,
                user_short_name: u.user_short_name,
                user_long_name: u.user_long_name,
                enrolled: u.enabled,
                last_seen_at: u.last_seen_at,
            });
    }
    devices
        .into_iter()
        .map(|d| DeviceView {
            user_channels: by_device.remove(&d.id).unwrap_or_default(),
            udid: d.id,
            enrollment_type: d.enrollment_type,
            serial_number: d.serial_number,
            model: d.model,
            model_name: d.model_name,
            device_name: d.device_name,
            os_version: d.os_version,
            build_version: d.build_version,
            product_name: d.product_name,
            topic: d.topic,
            enrolled: d.enabled.unwrap_or(false),
            awaiting_configuration: d.awaiting_configuration.unwrap_or(false),
            push_token: d.push_token.as_deref().map(hex),
            has_push_magic: d.push_magic.is_some(),
            token_update_count: d.token_update_count.unwrap_or(0),
            identity_cert_sha256: d.identity_cert_sha256,
            identity_not_after: d.identity_not_after,
            pin_required_for_lock: d.pin_required_for_lock,
            pin_required_for_erase: d.pin_required_for_erase,
            is_apple_silicon: d.is_apple_silicon,
            authenticated_at: d.authenticated_at,
            last_token_update_at: d.last_token_update_at,
            last_seen_at: d.last_seen_at,
            checked_out_at: d.checked_out_at,
            last_push_at: d.last_push_at,
            last_push_result: d.last_push_result,
            push_blocked: d.push_blocked,
            created_at: d.created_at,
            updated_at: d.updated_at,
        })
        .collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct QueueRow {
    command_uuid: String,
    enrollment_id: String,
    request_type: String,
    status: String,
    priority: i32,
    enqueued_at: i64,
    delivered_at: Option<i64>,
    delivery_count: i64,
    not_now_count: i64,
    first_not_now_at: Option<i64>,
    result_at: Option<i64>,
    canceled_at: Option<i64>,
    result: Option<Vec<u8>>,
}

impl TryFrom<QueueRow> for QueueEntryView {
    type Error = sqlx::Error;

    fn try_from(r: QueueRow) -> Result<Self, sqlx::Error> {
        let status = QueueStatus::parse(&r.status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown queue status {:?}", r.status).into())
        })?;
        Ok(QueueEntryView {
            command_uuid: r.command_uuid,
            enrollment_id: r.enrollment_id,
            request_type: r.request_type,
            status,
            priority: r.priority,
            enqueued_at: r.enqueued_at,
            delivered_at: r.delivered_at,
            delivery_count: r.delivery_count,
            not_now_count: r.not_now_count,
            first_not_now_at: r.first_not_now_at,
            result_at: r.result_at,
            canceled_at: r.canceled_at,
            result: r.result,
        })
    }
}

pub(crate) fn queue_views(rows: Vec<QueueRow>) -> Result<Vec<QueueEntryView>, sqlx::Error> {
    rows.into_iter().map(QueueEntryView::try_from).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    detail: String,
    address: Option<String>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = sqlx::Error;

    fn try_from(r: AuditRow) -> Result<Self, sqlx::Error> {
        let detail = serde_json::from_str(&r.detail).map_err(|e| sqlx::Error::Decode(e.into()))?;
        Ok(AuditEntry {
            id: r.id,
            record: AuditRecord {
                at: r.at,
                actor: r.actor,
                action: r.action,
                target: r.target,
                address: r.address,
                detail,
            },
        })
    }
}

pub(crate) fn audit_json(rec: &AuditRecord) -> String {
    // Serializing a `serde_json::Value` cannot fail.
    rec.detail.to_string()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Foreign-key violations that outside input can trigger (a device deleted while its check-in
/// is in flight) are answered like the device never existed.
pub(crate) fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

// ---- statements identical in both dialects ----

pub(crate) const IDENTITY_OWNER: &str =
    "SELECT device_id FROM identity_bindings WHERE cert_hash = $1";

pub(crate) const DEVICE_EXISTS: &str = "SELECT id FROM devices WHERE id = $1";

pub(crate) const ENROLLMENT_ENABLED: &str = "SELECT enabled FROM enrollments WHERE id = $1";

/// Descriptive fields keep their last known value when an `Authenticate` omits them.
pub(crate) const UPSERT_DEVICE: &str = "INSERT INTO devices (id, enrollment_type, serial_number, \
     model, model_name, device_name, os_version, build_version, product_name, \
     identity_cert_sha256, identity_not_after, authenticated_at, authenticate_raw, created_at, \
     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $12, $12) \
     ON CONFLICT (id) DO UPDATE SET enrollment_type = excluded.enrollment_type, \
     serial_number = COALESCE(excluded.serial_number, devices.serial_number), \
     model = COALESCE(excluded.model, devices.model), \
     model_name = COALESCE(excluded.model_name, devices.model_name), \
     device_name = COALESCE(excluded.device_name, devices.device_name), \
     os_version = COALESCE(excluded.os_version, devices.os_version), \
     build_version = COALESCE(excluded.build_version, devices.build_version), \
     product_name = COALESCE(excluded.product_name, devices.product_name), \
     identity_cert_sha256 = excluded.identity_cert_sha256, \
     identity_not_after = excluded.identity_not_after, \
     authenticated_at = excluded.authenticated_at, \
     authenticate_raw = excluded.authenticate_raw, updated_at = excluded.updated_at";

/// Binds the certificate unless it is bound to another device: then no row is affected (the
/// conflict check is atomic even when two processes race on the same certificate).
pub(crate) const BIND_IDENTITY: &str = "INSERT INTO identity_bindings (cert_hash, device_id, \
     bound_at) VALUES ($1, $2, $3) ON CONFLICT (cert_hash) DO UPDATE SET bound_at = \
     excluded.bound_at WHERE identity_bindings.device_id = excluded.device_id";

pub(crate) const UPSERT_DEVICE_CHANNEL: &str = "INSERT INTO enrollments (id, device_id, \
     enrollment_type, topic, enabled, created_at, updated_at) \
     VALUES ($1, $1, $2, $3, FALSE, $4, $4) ON CONFLICT (id) DO UPDATE SET \
     enrollment_type = excluded.enrollment_type, topic = excluded.topic, enabled = FALSE, \
     token_update_tally = 0, updated_at = excluded.updated_at";

pub(crate) const DISABLE_USER_CHANNELS: &str = "UPDATE enrollments SET enabled = FALSE, token_update_tally = 0, updated_at = $2 \
     WHERE device_id = $1 AND id <> $1";

/// NanoMDM clears the queue on re-enrollment: commands queued for the old enrollment would
/// otherwise run on a freshly wiped or re-provisioned device.
pub(crate) const CLEAR_QUEUES: &str = "UPDATE queue_entries SET status = 'Canceled', \
     canceled_at = $2 WHERE status IN ('Pending', 'Sent', 'NotNow') \
     AND enrollment_id IN (SELECT id FROM enrollments WHERE device_id = $1)";

/// `$1` id, `$2` device id, `$3` type, `$4..$6` user fields, `$7` topic, `$8` token,
/// `$9` push magic, `$10` unlock token, `$11` awaiting configuration, `$12` now.
pub(crate) const UPSERT_ENROLLMENT: &str = "INSERT INTO enrollments (id, device_id, \
     enrollment_type, user_id, user_short_name, user_long_name, topic, push_token, push_magic, \
     unlock_token_sealed, awaiting_configuration, enabled, token_update_count, \
     token_update_tally, last_token_update_at, last_seen_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, TRUE, 1, 1, $12, $12, $12, $12) \
     ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, \
     enrollment_type = excluded.enrollment_type, \
     user_id = COALESCE(excluded.user_id, enrollments.user_id), \
     user_short_name = COALESCE(excluded.user_short_name, enrollments.user_short_name), \
     user_long_name = COALESCE(excluded.user_long_name, enrollments.user_long_name), \
     topic = excluded.topic, push_token = excluded.push_token, push_magic = excluded.push_magic, \
     unlock_token_sealed = COALESCE(excluded.unlock_token_sealed, enrollments.unlock_token_sealed), \
     awaiting_configuration = excluded.awaiting_configuration, enabled = TRUE, \
     push_blocked = NULL, token_update_count = enrollments.token_update_count + 1, \
     token_update_tally = enrollments.token_update_tally + 1, \
     last_token_update_at = excluded.last_token_update_at, \
     last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at";

/// A device-channel check-out takes its user channels with it.
pub(crate) const CHECK_OUT: &str = "UPDATE enrollments SET enabled = FALSE, checked_out_at = $2, \
     updated_at = $2 WHERE id = $1 OR device_id IN (SELECT id FROM devices WHERE id = $1)";

/// Append-only: `sealed` is NULL when the device cleared its token.
pub(crate) const INSERT_BOOTSTRAP: &str =
    "INSERT INTO bootstrap_tokens (device_id, sealed, created_at) VALUES ($1, $2, $3)";

pub(crate) const NEWEST_BOOTSTRAP: &str =
    "SELECT sealed FROM bootstrap_tokens WHERE device_id = $1 ORDER BY id DESC LIMIT 1";

// A command report (touch the enrollment, store the result, pick and mark the next command)
// is one round trip per backend: `REPORT_BATCH` in sqlite.rs, `REPORT_STATEMENT` in
// postgres.rs.
// The rules they share: only enabled enrollments get work, and an `Idle` starts a new
// session; a result lands only on an open entry (`Pending`, `Sent`, `NotNow`); the next
// command is by priority, then FIFO, and one answered `NotNow` waits until the device starts
// a new session (an `Idle` after the `NotNow`): Apple's devices re-poll on their own only if
// `NotNow` was the last status they sent, so re-sending it in the same session would loop.

// A report writes the enrollment row only when it has something to record (the hot path's
// share of the database's work was mostly this write: a new row version, an index entry per
// index, WAL): `last_seen_at` when the stored one is older than `LAST_SEEN_GRANULARITY_MS`
// (so it may lag the truth by up to that much), and `session_started_at` on an `Idle` only
// when a `NotNow` entry waits — no other rule reads it, and an entry answered `NotNow` later
// in that session is newer than any session start written before it, so it waits as it
// should. The condition is in the statement, so it holds across processes on PostgreSQL.

/// How stale `last_seen_at` may be: a report within this long of the stored value does not
/// write it. Its readers are coarse: the push sweep (silent for an hour) and the device view.
pub(crate) const LAST_SEEN_GRANULARITY_MS: i64 = 60_000;

/// Binds a command report's parameters, the same in both backends' report statements:
/// `$1` enrollment, `$2` now, `$3` is Idle, `$4` command UUID, `$5` status, `$6` raw result,
/// `$7` is NotNow (`$4`…`$6` NULL for an `Idle`), `$8` the newest `last_seen_at` that is
/// rewritten (`$2` minus [`LAST_SEEN_GRANULARITY_MS`]).
macro_rules! bind_report {
    ($query:expr, $rec:expr) => {{
        let rec: &$crate::store::ReportRecord = $rec;
        let result = rec.result.as_ref();
        $query
            .bind(&rec.enrollment_id)
            .bind(rec.now)
            .bind(result.is_none())
            .bind(result.map(|r| r.command_uuid.as_str()))
            .bind(result.map(|r| r.status.queue_status().as_str()))
            .bind(result.map(|r| r.raw.as_slice()))
            .bind(result.is_some_and(|r| r.status == $crate::store::ResultStatus::NotNow))
            .bind(rec.now - $crate::store::rows::LAST_SEEN_GRANULARITY_MS)
    }};
}
pub(crate) use bind_report;

/// A command UUID is stored once; enqueueing it again (a retried API call) only adds targets.
pub(crate) const INSERT_COMMAND: &str = "INSERT INTO commands (uuid, request_type, payload, \
     priority, created_at, payload_sealed) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (uuid) DO NOTHING";

pub(crate) const COMMAND_HEAD: &str = "SELECT uuid, request_type, created_at, payload, \
     payload_sealed FROM commands WHERE uuid = $1";

pub(crate) const DEVICE_COMMANDS_TAIL: &str = "JOIN enrollments e ON e.id = q.enrollment_id \
     WHERE e.device_id = $1 ORDER BY q.enqueued_at DESC, q.seq DESC LIMIT $2";

pub(crate) const CANCEL_PENDING: &str = "UPDATE queue_entries SET status = 'Canceled', \
     canceled_at = $2 WHERE command_uuid = $1 AND status = 'Pending' RETURNING enrollment_id";

/// Entries the device has (or had) seen: handed out, answered, or cleared after delivery.
pub(crate) const DELIVERED_ENTRIES: &str = "SELECT enrollment_id, delivered_at FROM queue_entries \
     WHERE command_uuid = $1 AND (status NOT IN ('Pending', 'Canceled') OR delivered_at IS NOT NULL) \
     ORDER BY enrollment_id";

pub(crate) const AUDIT_INSERT: &str = "INSERT INTO audit_log \
     (at, actor, action, target, detail, address) VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const AUDIT_LIST: &str = "SELECT id, at, actor, action, target, detail, address \
     FROM audit_log \
     WHERE ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $1";

pub(crate) const SET_SETTING: &str = "INSERT INTO settings (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// DeviceInformation facts onto the device row of an enrollment; NULL parameters keep what is
/// stored.
pub(crate) const STORE_DEVICE_FACTS: &str = "UPDATE devices SET \
     pin_required_for_lock = COALESCE($2, pin_required_for_lock), \
     pin_required_for_erase = COALESCE($3, pin_required_for_erase), \
     is_apple_silicon = COALESCE($4, is_apple_silicon), \
     os_version = COALESCE($5, os_version), build_version = COALESCE($6, build_version), \
     device_name = COALESCE($7, device_name), updated_at = $8 \
     WHERE id = (SELECT device_id FROM enrollments WHERE id = $1)";

/// [`STORE_DEVICE_FACTS`] bound to an enrollment's facts (both backends).
macro_rules! store_device_facts {
    ($enrollment_id:expr, $facts:expr, $now:expr) => {
        sqlx::query($crate::store::rows::STORE_DEVICE_FACTS)
            .bind($enrollment_id)
            .bind($facts.pin_required_for_lock)
            .bind($facts.pin_required_for_erase)
            .bind($facts.is_apple_silicon)
            .bind(&$facts.os_version)
            .bind(&$facts.build_version)
            .bind(&$facts.device_name)
            .bind($now)
    };
}
pub(crate) use store_device_facts;

pub(crate) const INSERT_ESCROWED_PIN: &str = "INSERT INTO escrowed_pins (command_uuid, device_id, \
     serial_number, request_type, pin_sealed, issued_by, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Escrowed PINs with the live state of their queue entry, or the snapshot taken when the
/// device was deleted. Each backend appends its WHERE clause and the order.
pub(crate) const ESCROWED_PIN_SELECT: &str = "SELECT p.id, p.command_uuid, p.device_id, \
     p.serial_number, p.request_type, p.pin_sealed, p.issued_by, p.created_at, \
     COALESCE(q.status, p.status) AS status, COALESCE(q.delivered_at, p.delivered_at) AS delivered_at, \
     COALESCE(q.result_at, p.result_at) AS result_at \
     FROM escrowed_pins p LEFT JOIN queue_entries q \
     ON q.command_uuid = p.command_uuid AND q.enrollment_id = p.device_id";

/// Before a device row (and with it its queue) is deleted, copy each PIN's command state.
pub(crate) const SNAPSHOT_ESCROWED_PINS: &str = "UPDATE escrowed_pins SET status = q.status, \
     delivered_at = q.delivered_at, result_at = q.result_at FROM queue_entries q \
     WHERE q.command_uuid = escrowed_pins.command_uuid \
     AND q.enrollment_id = escrowed_pins.device_id AND escrowed_pins.device_id = $1";

/// Queue entries of every enrollment of a device (PostgreSQL has no foreign key to cascade
/// them, see `delete_device`).
pub(crate) const DELETE_DEVICE_QUEUES: &str = "DELETE FROM queue_entries WHERE enrollment_id IN \
     (SELECT id FROM enrollments WHERE device_id = $1)";

/// Its enrollments and identity bindings go with it (`ON DELETE CASCADE`); escrowed secrets
/// (bootstrap tokens, PINs) have no foreign key and stay.
pub(crate) const DELETE_DEVICE: &str = "DELETE FROM devices WHERE id = $1";

/// The device channel exists and is enabled (lock/wipe need a Mac that can receive them).
pub(crate) const DEVICE_CHANNEL_ENABLED: &str =
    "SELECT enabled FROM enrollments WHERE id = $1 AND device_id = $1";

#[derive(sqlx::FromRow)]
pub(crate) struct EscrowRow {
    id: i64,
    command_uuid: String,
    device_id: String,
    serial_number: Option<String>,
    request_type: String,
    pin_sealed: Vec<u8>,
    issued_by: String,
    created_at: i64,
    status: String,
    delivered_at: Option<i64>,
    result_at: Option<i64>,
}

pub(crate) fn escrow_views(rows: Vec<EscrowRow>) -> Result<Vec<EscrowedPin>, sqlx::Error> {
    rows.into_iter()
        .map(|r| {
            let status = QueueStatus::parse(&r.status).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown escrow status {:?}", r.status).into())
            })?;
            Ok(EscrowedPin {
                id: r.id,
                command_uuid: r.command_uuid,
                device_id: r.device_id,
                serial_number: r.serial_number,
                request_type: r.request_type,
                pin_sealed: r.pin_sealed,
                issued_by: r.issued_by,
                created_at: r.created_at,
                status,
                delivered_at: r.delivered_at,
                result_at: r.result_at,
            })
        })
        .collect()
}
