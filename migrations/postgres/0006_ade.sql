-- ADE (Automated Device Enrollment) in Setup Assistant. Keep in step with
-- ../sqlite/0006_ade.sql. Times are Unix milliseconds.

-- What Russet does for a DEP profile's Macs besides Apple's part: the configuration profile
-- and AccountConfiguration queued while Setup Assistant waits, and the minimum OS version.
-- Sealed (AES-256-GCM) because an attached profile or an admin account's password hash is a
-- secret.
ALTER TABLE dep_profiles ADD COLUMN setup_sealed BYTEA;

-- One row per Mac that fetched its enrollment profile with a signed MachineInfo. The setup
-- commands are queued once per enrollment: setup_queued_at is cleared when the Mac fetches
-- a profile again (it was erased and runs Setup Assistant anew).
CREATE TABLE ade_enrollments (
    udid            TEXT PRIMARY KEY NOT NULL,
    serial_number   TEXT NOT NULL,
    profile_uuid    TEXT,
    product         TEXT,
    os_version      TEXT,
    build_version   TEXT,
    requested_at    BIGINT NOT NULL,
    setup_queued_at BIGINT
);
CREATE INDEX ade_enrollments_serial_idx ON ade_enrollments (serial_number);
