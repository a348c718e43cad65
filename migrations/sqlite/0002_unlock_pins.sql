-- Unlock PIN escrow for DeviceLock / EraseDevice, and what Macs report about needing a PIN.
-- Keep in step with ../postgres/0002_unlock_pins.sql.

-- Never cascaded, never deleted: no foreign key. Status and times are read from the queue
-- entry while it exists and copied here (snapshot) when the device row is deleted.
CREATE TABLE escrowed_pins (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    command_uuid  TEXT NOT NULL UNIQUE,
    device_id     TEXT NOT NULL,
    serial_number TEXT,
    request_type  TEXT NOT NULL CHECK (request_type IN ('DeviceLock', 'EraseDevice')),
    pin_sealed    BLOB NOT NULL, -- AES-256-GCM under the key-encryption key
    issued_by     TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'Pending',
    delivered_at  INTEGER,
    result_at     INTEGER
);
CREATE INDEX escrowed_pins_serial_idx ON escrowed_pins (serial_number, id);
CREATE INDEX escrowed_pins_device_idx ON escrowed_pins (device_id, id);

-- From DeviceInformation results (macOS 11+/12+): NULL until the Mac reports them.
ALTER TABLE devices ADD COLUMN pin_required_for_lock BOOLEAN;
ALTER TABLE devices ADD COLUMN pin_required_for_erase BOOLEAN;
ALTER TABLE devices ADD COLUMN is_apple_silicon BOOLEAN;

-- Commands that carry a secret (the PIN inside DeviceLock / EraseDevice) are stored sealed.
ALTER TABLE commands ADD COLUMN payload_sealed BOOLEAN NOT NULL DEFAULT 0;
