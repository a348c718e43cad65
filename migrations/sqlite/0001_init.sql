-- Russet storage schema (SQLite). Times are Unix milliseconds. Keep in step with
-- ../postgres/0001_init.sql: same tables, same columns, same meaning.

CREATE TABLE devices (
    id                   TEXT PRIMARY KEY NOT NULL, -- device-channel ID: UDID or EnrollmentID
    enrollment_type      TEXT NOT NULL,
    serial_number        TEXT,
    model                TEXT,
    model_name           TEXT,
    device_name          TEXT,
    os_version           TEXT,
    build_version        TEXT,
    product_name         TEXT,
    identity_cert_sha256 TEXT,
    identity_not_after   INTEGER,
    authenticated_at     INTEGER,
    authenticate_raw     BLOB,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX devices_serial_idx ON devices (serial_number);

CREATE TABLE enrollments (
    id                     TEXT PRIMARY KEY NOT NULL, -- normalized enrollment ID
    device_id              TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    enrollment_type        TEXT NOT NULL,
    user_id                TEXT,
    user_short_name        TEXT,
    user_long_name         TEXT,
    topic                  TEXT NOT NULL,
    push_token             BLOB,
    push_magic             TEXT,
    unlock_token_sealed    BLOB,
    awaiting_configuration BOOLEAN NOT NULL DEFAULT 0,
    enabled                BOOLEAN NOT NULL DEFAULT 0,
    token_update_count     INTEGER NOT NULL DEFAULT 0,
    last_token_update_at   INTEGER,
    last_seen_at           INTEGER,
    session_started_at     INTEGER, -- last Idle report: NotNow'd commands wait for a newer one
    checked_out_at         INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX enrollments_device_idx ON enrollments (device_id);

CREATE TABLE identity_bindings (
    cert_hash  TEXT PRIMARY KEY NOT NULL, -- SHA-256 hex of the identity certificate DER
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    bound_at   INTEGER NOT NULL
);
CREATE INDEX identity_bindings_device_idx ON identity_bindings (device_id);

CREATE TABLE commands (
    uuid         TEXT PRIMARY KEY NOT NULL,
    request_type TEXT NOT NULL,
    payload      BLOB NOT NULL,
    priority     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE queue_entries (
    enrollment_id    TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    command_uuid     TEXT NOT NULL REFERENCES commands (uuid) ON DELETE CASCADE,
    status           TEXT NOT NULL CHECK (status IN ('Pending', 'Sent', 'NotNow', 'Acknowledged',
                                                     'Error', 'CommandFormatError', 'Canceled')),
    priority         INTEGER NOT NULL,
    seq              INTEGER NOT NULL, -- enqueue order (FIFO within a priority)
    enqueued_at      INTEGER NOT NULL,
    delivered_at     INTEGER,
    delivery_count   INTEGER NOT NULL DEFAULT 0,
    not_now_count    INTEGER NOT NULL DEFAULT 0,
    first_not_now_at INTEGER,
    last_not_now_at  INTEGER,
    result_at        INTEGER,
    result           BLOB,
    canceled_at      INTEGER,
    PRIMARY KEY (enrollment_id, command_uuid)
);
CREATE INDEX queue_next_idx ON queue_entries (enrollment_id, status, priority DESC, seq);
CREATE INDEX queue_command_idx ON queue_entries (command_uuid);
CREATE INDEX queue_seq_idx ON queue_entries (seq);

-- Append-only escrow. No foreign key: escrowed secrets outlive the device row.
CREATE TABLE bootstrap_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id  TEXT NOT NULL,
    sealed     BLOB, -- NULL records that the device cleared its token
    created_at INTEGER NOT NULL
);
CREATE INDEX bootstrap_tokens_device_idx ON bootstrap_tokens (device_id, id);

CREATE TABLE admin_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL -- JSON
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
