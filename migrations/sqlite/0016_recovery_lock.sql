-- Recovery Lock passwords (Apple silicon, macOS 11.5+), escrowed with the SetRecoveryLock that
-- sets or clears them (Apple: passcode.recovery.set.yaml). Keep in step with
-- ../postgres/0016_recovery_lock.sql.

-- Never cascaded, never deleted: no foreign key to devices, so unenrollment, CheckOut and
-- device deletion leave every password readable by serial number or UDID.
-- state: pending (queued; acknowledged_at once the Mac took it) → verified (VerifyRecoveryLock
-- answered PasswordVerified, or a clear was acknowledged) / failed (the Mac refused it, or did
-- not verify it) / superseded (a later password was verified on the same Mac).
CREATE TABLE recovery_lock_passwords (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    command_uuid        TEXT NOT NULL UNIQUE, -- the SetRecoveryLock
    device_id           TEXT NOT NULL,
    serial_number       TEXT,
    kind                TEXT NOT NULL CHECK (kind IN ('set', 'clear')),
    password_sealed     BLOB NOT NULL, -- AES-256-GCM under the key-encryption key ('' for a clear)
    issued_by           TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    state               TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'verified', 'failed', 'superseded')),
    acknowledged_at     INTEGER,
    verify_command_uuid TEXT,
    settled_at          INTEGER,
    failure             TEXT
);
CREATE INDEX recovery_lock_passwords_serial_idx ON recovery_lock_passwords (serial_number, id);
CREATE INDEX recovery_lock_passwords_device_idx ON recovery_lock_passwords (device_id, id);
CREATE INDEX recovery_lock_passwords_verify_idx ON recovery_lock_passwords (verify_command_uuid);
