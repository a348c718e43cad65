-- DEP (Automated Device Enrollment): links to Apple Business/School Manager, the device records
-- they sync, and the enrollment profiles defined through them. Keep in step with
-- ../sqlite/0005_dep.sql. Times are Unix milliseconds.

CREATE TABLE dep_links (
    name                 TEXT PRIMARY KEY NOT NULL,
    cert_pem             TEXT NOT NULL,            -- uploaded to Apple; the token is encrypted to it
    key_sealed           BYTEA NOT NULL,            -- AES-256-GCM under the key-encryption key
    token_sealed         BYTEA,                     -- the OAuth token JSON, sealed
    token_expiry         BIGINT,
    server_uuid          TEXT,                     -- from /account: iss of com.apple.maid JWTs
    server_name          TEXT,
    org_name             TEXT,
    admin_id             TEXT,
    account_json         TEXT,
    default_profile_uuid TEXT,
    cursor               TEXT,
    last_sync_at         BIGINT,
    last_sync_json       TEXT,
    last_ok_at           BIGINT,
    last_error_code      TEXT,                     -- T_C_NOT_SIGNED, ACCESS_DENIED, …
    last_error_message   TEXT,
    last_error_at        BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

-- One record per serial (a device belongs to one MDM server in ABM at a time).
CREATE TABLE dep_devices (
    serial_number          TEXT PRIMARY KEY NOT NULL,
    link                   TEXT NOT NULL,
    model                  TEXT,
    description            TEXT,
    color                  TEXT,
    asset_tag              TEXT,
    os                     TEXT,
    device_family          TEXT,
    profile_status         TEXT,
    profile_uuid           TEXT,
    profile_assign_time    TEXT,
    profile_push_time      TEXT,
    device_assigned_date   TEXT,
    device_assigned_by     TEXT,
    op_type                TEXT,
    op_date                TEXT,
    op_date_ms             BIGINT,
    mdm_migration_deadline TEXT,
    deleted                BOOLEAN NOT NULL DEFAULT FALSE, -- left the org (disowned, moved away)
    auto_assign_pending    BOOLEAN NOT NULL DEFAULT FALSE,
    assign_status          TEXT,                       -- last assignment outcome from Apple
    assign_profile_uuid    TEXT,
    assign_at              BIGINT,
    assign_retry_at        BIGINT,                    -- FAILED: +24 h; THROTTLED: retry_after
    first_seen_at          BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX dep_devices_link_idx ON dep_devices (link, serial_number);
CREATE INDEX dep_devices_pending_idx ON dep_devices (link, auto_assign_pending);

-- Profiles are immutable at Apple: a change is a new profile.
CREATE TABLE dep_profiles (
    profile_uuid TEXT PRIMARY KEY NOT NULL,
    link         TEXT NOT NULL,
    profile_name TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX dep_profiles_link_idx ON dep_profiles (link, created_at);
