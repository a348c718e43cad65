-- Inventory (issue 13): what each Mac reports about itself through DeviceInformation,
-- SecurityInfo, InstalledApplicationList, CertificateList and UserList (Apple's
-- `information.device.yaml`, `information.security.yaml`, `application.installed.list.yaml`,
-- `certificate.list.yaml`, `user.list.yaml`). Typed columns for what people filter on, the
-- whole answer of each part as JSON text, and when each part was collected. Rows go with
-- their device. (As in PostgreSQL, but for the change log's id and the bytewise collation of
-- version_key.)
--
-- Filter fields these columns will back (the filter language's next step; keep the names):
--   serial_number, model, os_version, build_version, apple_silicon, supervised,
--   activation_lock, filevault, firewall, sip, secure_boot, recovery_lock, app (inventory_apps).
CREATE TABLE inventory (
    device_id                 TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- DeviceInformation
    serial_number             TEXT,
    model                     TEXT,
    model_name                TEXT,
    product_name              TEXT,
    device_name               TEXT,
    os_version                TEXT,
    build_version             TEXT,
    supplemental_build_version TEXT,
    is_apple_silicon          BOOLEAN,
    is_supervised             BOOLEAN,
    activation_lock_enabled   BOOLEAN,
    capacity_gb               DOUBLE PRECISION,
    available_gb              DOUBLE PRECISION,
    battery_level             DOUBLE PRECISION,
    wifi_mac                  TEXT,
    bluetooth_mac             TEXT,
    ethernet_mac              TEXT,
    device_info_json          TEXT,
    device_info_at            BIGINT,
    -- SecurityInfo
    filevault_enabled         BOOLEAN,
    sip_enabled               BOOLEAN,
    firewall_enabled          BOOLEAN,
    secure_boot_level         TEXT,
    recovery_lock_enabled     BOOLEAN,
    bootstrap_token_allowed   TEXT,
    security_json             TEXT,
    security_at               BIGINT,
    -- InstalledApplicationList (the apps themselves: inventory_apps)
    app_count                 BIGINT,
    apps_json                 TEXT,
    apps_at                   BIGINT,
    -- CertificateList
    certificate_count         BIGINT,
    certificates_json         TEXT,
    certificates_at           BIGINT,
    -- UserList
    user_count                BIGINT,
    -- Short names of the users logged in, comma-separated (UserList `IsLoggedIn`).
    logged_in_users           TEXT,
    users_json                TEXT,
    users_at                  BIGINT,
    -- The inventory commands were last queued at; the sweep asks again at next_due_at
    -- (last answer + interval + a per-Mac offset, so Macs enrolled together spread out).
    requested_at              BIGINT,
    next_due_at               BIGINT,
    updated_at                BIGINT NOT NULL
);
CREATE INDEX inventory_due_idx ON inventory (next_due_at);
CREATE INDEX inventory_serial_idx ON inventory (serial_number);
CREATE INDEX inventory_os_idx ON inventory (os_version);
CREATE INDEX inventory_filevault_idx ON inventory (filevault_enabled);

-- One row per installed application: "which Macs have Excel < 16.80" is one indexed query on
-- (bundle_id, version_key) or (lower(name), version_key). version_key orders like
-- filter::version::compare_versions (each numeric run zero-padded), so `<` in SQL is `<`
-- between versions.
CREATE TABLE inventory_apps (
    device_id     TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    bundle_id     TEXT,
    name          TEXT NOT NULL,
    short_version TEXT,
    version       TEXT,
    version_key   TEXT,
    bundle_size   BIGINT
);
CREATE INDEX inventory_apps_device_idx ON inventory_apps (device_id);
CREATE INDEX inventory_apps_bundle_idx ON inventory_apps (bundle_id, version_key);
CREATE INDEX inventory_apps_name_idx ON inventory_apps (lower(name), version_key);

-- Facts people care about when they change: OS version and build, FileVault on/off, a serial
-- number on another UDID (re-enrollment, a new logic board). Kept after the device goes.
CREATE TABLE inventory_changes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id     TEXT NOT NULL,
    serial_number TEXT,
    field         TEXT NOT NULL,
    old_value     TEXT,
    new_value     TEXT,
    changed_at    BIGINT NOT NULL
);
CREATE INDEX inventory_changes_device_idx ON inventory_changes (device_id, id);
CREATE INDEX inventory_changes_serial_idx ON inventory_changes (serial_number);
