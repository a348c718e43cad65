-- FileVault escrow (issue 14). Nothing in these tables is ever deleted: not by unenrollment,
-- CheckOut, device deletion or a newer key (a superseded key is marked, kept). No foreign key
-- to devices, so a key outlives its device record and is found by serial number.

-- The escrow key pairs Macs encrypt their personal recovery keys (PRKs) to. Generation 1 is
-- made on first need; a later generation would be a new key (the older ones stay, to open
-- what was sent to them). The private key is sealed under the KEK
-- (`Sealed::FileVaultEscrowKey`).
CREATE TABLE filevault_escrow_keys (
    generation  BIGINT PRIMARY KEY NOT NULL,
    -- SHA-256 of the certificate DER, hex: the sealing context of the key.
    id          TEXT NOT NULL UNIQUE,
    cert_der    BLOB NOT NULL,
    key_sealed  BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Every PRK a Mac sent (SecurityInfo `FDE_PersonalRecoveryKeyCMS`, RotateFileVaultKey
-- `EncryptedNewRecoveryKey`), one row per distinct key. state: 'escrowed' (opened, Apple's
-- shape), 'unexpected' (opened, not Apple's shape: kept, flagged), 'undecryptable' (did not
-- open with any escrow key: the envelope is kept as received, an alert is raised).
CREATE TABLE filevault_keys (
    id               TEXT PRIMARY KEY NOT NULL,
    device_id        TEXT NOT NULL,
    serial_number    TEXT,
    state            TEXT NOT NULL,
    -- The PRK (`Sealed::FileVaultRecoveryKey`); NULL when undecryptable.
    key_sealed       BLOB,
    -- The envelope as received (`Sealed::FileVaultEnvelope`) and its SHA-256 (hex), which
    -- recognises the same envelope sent again.
    envelope_sealed  BLOB NOT NULL,
    envelope_sha256  TEXT NOT NULL,
    -- 'SecurityInfo' or 'RotateFileVaultKey', and the command that brought it.
    source           TEXT NOT NULL,
    command_uuid     TEXT,
    escrow_key_id    TEXT,
    received_at      BIGINT NOT NULL,
    -- The Mac last reported this key as its current one.
    last_reported_at BIGINT NOT NULL,
    -- The Mac accepted this key as the unlock password of a rotation: proven correct.
    verified_at      BIGINT,
    -- A newer key replaced it on the Mac (kept: an old backup may still need it).
    superseded_at    BIGINT
);
CREATE INDEX filevault_keys_serial_idx ON filevault_keys (serial_number, received_at);
CREATE INDEX filevault_keys_device_idx ON filevault_keys (device_id, received_at);

-- Rotations asked for (RotateFileVaultKey): which escrowed key unlocked it, and how it ended
-- (state: 'pending', 'rotated', 'failed').
CREATE TABLE filevault_rotations (
    command_uuid  TEXT PRIMARY KEY NOT NULL,
    device_id     TEXT NOT NULL,
    serial_number TEXT,
    key_id        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    state         TEXT NOT NULL,
    error         TEXT,
    created_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX filevault_rotations_device_idx ON filevault_rotations (device_id, created_at);
