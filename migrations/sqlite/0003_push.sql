-- APNs push state per enrollment, the push certificate (history kept) and pending CSR keys.
-- Keep in step with ../postgres/0003_push.sql.

ALTER TABLE enrollments ADD COLUMN last_push_at INTEGER;
ALTER TABLE enrollments ADD COLUMN last_push_result TEXT;
-- Set on APNs 410 Unregistered / 400 BadDeviceToken: no pushes to this token until the next
-- TokenUpdate (which brings a new token) clears it.
ALTER TABLE enrollments ADD COLUMN push_blocked TEXT;

-- The newest row is the active certificate; older rows are kept as history.
CREATE TABLE push_certificates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT NOT NULL,
    subject    TEXT NOT NULL,
    cert_pem   TEXT NOT NULL,
    key_sealed BLOB NOT NULL, -- AES-256-GCM under the key-encryption key
    not_after  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- Private keys generated for push-certificate CSRs; never exported.
CREATE TABLE push_csr_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key_sealed BLOB NOT NULL,
    csr_pem    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX enrollments_push_sweep_idx ON enrollments (enabled, last_seen_at);
