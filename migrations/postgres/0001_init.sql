-- Russet storage schema (PostgreSQL). Times are Unix milliseconds. Keep in step with
-- ../sqlite/0001_init.sql: same tables, same columns, same meaning.

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
    identity_not_after   BIGINT,
    authenticated_at     BIGINT,
    authenticate_raw     BYTEA,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
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
    push_token             BYTEA,
    push_magic             TEXT,
    unlock_token_sealed    BYTEA,
    awaiting_configuration BOOLEAN NOT NULL DEFAULT FALSE,
    enabled                BOOLEAN NOT NULL DEFAULT FALSE,
    token_update_count     BIGINT NOT NULL DEFAULT 0,
    last_token_update_at   BIGINT,
    last_seen_at           BIGINT,
    session_started_at     BIGINT, -- last Idle report: NotNow'd commands wait for a newer one
    checked_out_at         BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX enrollments_device_idx ON enrollments (device_id);

CREATE TABLE identity_bindings (
    cert_hash  TEXT PRIMARY KEY NOT NULL, -- SHA-256 hex of the identity certificate DER
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    bound_at   BIGINT NOT NULL
);
CREATE INDEX identity_bindings_device_idx ON identity_bindings (device_id);

CREATE TABLE commands (
    uuid         TEXT PRIMARY KEY NOT NULL,
    request_type TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    priority     INTEGER NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE queue_entries (
    enrollment_id    TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    command_uuid     TEXT NOT NULL REFERENCES commands (uuid) ON DELETE CASCADE,
    status           TEXT NOT NULL CHECK (status IN ('Pending', 'Sent', 'NotNow', 'Acknowledged',
                                                     'Error', 'CommandFormatError', 'Canceled')),
    priority         INTEGER NOT NULL,
    -- Enqueue order (FIFO within a priority). An identity column: monotonic across processes.
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    enqueued_at      BIGINT NOT NULL,
    delivered_at     BIGINT,
    delivery_count   BIGINT NOT NULL DEFAULT 0,
    not_now_count    BIGINT NOT NULL DEFAULT 0,
    first_not_now_at BIGINT,
    last_not_now_at  BIGINT,
    result_at        BIGINT,
    result           BYTEA,
    canceled_at      BIGINT,
    PRIMARY KEY (enrollment_id, command_uuid)
);
CREATE INDEX queue_next_idx ON queue_entries (enrollment_id, status, priority DESC, seq);
CREATE INDEX queue_command_idx ON queue_entries (command_uuid);

-- Append-only escrow. No foreign key: escrowed secrets outlive the device row.
CREATE TABLE bootstrap_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id  TEXT NOT NULL,
    sealed     BYTEA, -- NULL records that the device cleared its token
    created_at BIGINT NOT NULL
);
CREATE INDEX bootstrap_tokens_device_idx ON bootstrap_tokens (device_id, id);

CREATE TABLE admin_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL -- JSON
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
