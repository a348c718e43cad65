-- Golden images (issue 15): the corporate VM image policy Parallels Desktop offers users when
-- they create a VM (the seed guide's "golden images"). Keep in step with
-- ../postgres/0018_golden_images.sql. Times are Unix milliseconds.

-- An image per architecture, each a download URL (HTTP/HTTPS, no authentication) and its
-- SHA-256 (64 lowercase hex); at least one architecture. Names are unique regardless of case
-- (an admin types them; "Dev VM" and "dev vm" would be one image to a person).
CREATE TABLE golden_images (
    name                 TEXT PRIMARY KEY NOT NULL,
    description          TEXT,
    apple_silicon_url    TEXT,
    apple_silicon_sha256 TEXT,
    intel_url            TEXT,
    intel_sha256         TEXT,
    created_at           INTEGER NOT NULL,
    created_by           TEXT NOT NULL,
    updated_at           INTEGER NOT NULL,
    updated_by           TEXT NOT NULL,
    CHECK ((apple_silicon_url IS NULL) = (apple_silicon_sha256 IS NULL)),
    CHECK ((intel_url IS NULL) = (intel_sha256 IS NULL)),
    CHECK (apple_silicon_url IS NOT NULL OR intel_url IS NOT NULL)
);
CREATE UNIQUE INDEX golden_images_name_key ON golden_images (lower(name));

-- The groups an image is assigned to. The group is the primary key: a group holds at most one
-- golden image (the seed guide: "a group may hold only one"), enforced here, not only by the
-- service. Rows go with their image and with their group.
CREATE TABLE golden_image_groups (
    group_name  TEXT PRIMARY KEY NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,
    image_name  TEXT NOT NULL REFERENCES golden_images (name) ON DELETE CASCADE,
    assigned_at INTEGER NOT NULL,
    assigned_by TEXT NOT NULL
);
CREATE INDEX golden_image_groups_image_idx ON golden_image_groups (image_name);
