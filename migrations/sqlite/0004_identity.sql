-- Identity and enrollment: Russet's SCEP CA (shared by every node), issued identities,
-- one-time SCEP challenges and enrollment links. Keep in step with ../postgres/0004_identity.sql.

-- At most one row: the first node to start creates the CA, the others read it back.
CREATE TABLE scep_ca (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    cert_pem   TEXT NOT NULL,
    key_sealed BLOB NOT NULL, -- AES-256-GCM under the key-encryption key
    created_at INTEGER NOT NULL
);

-- Every identity the SCEP server issued (expiry reports, renewal audit).
CREATE TABLE issued_certificates (
    serial       TEXT PRIMARY KEY NOT NULL, -- hex
    sha256       TEXT NOT NULL UNIQUE,      -- SHA-256 hex of the certificate DER
    subject      TEXT NOT NULL,
    message_type TEXT NOT NULL,             -- PKCSReq or RenewalReq
    renewed_from TEXT,                      -- SHA-256 of the identity that signed a RenewalReq
    not_after    INTEGER NOT NULL,
    issued_at    INTEGER NOT NULL
);
CREATE INDEX issued_certificates_not_after_idx ON issued_certificates (not_after);

-- One-time challenges, one per downloaded enrollment profile. Only the SHA-256 is stored.
CREATE TABLE scep_challenges (
    hash       BLOB PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX scep_challenges_expires_idx ON scep_challenges (expires_at);

-- Enrollment links created by admins. Only the SHA-256 of the token is stored.
CREATE TABLE enroll_links (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    hash       BLOB NOT NULL UNIQUE,
    uses       INTEGER,          -- as created; NULL = unlimited
    uses_left  INTEGER,          -- NULL = unlimited
    used_count INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER,          -- NULL = never
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
