-- Parallels Desktop activation per group (issue 15): how Parallels Desktop on the group's Macs
-- is activated, delivered as a managed-preferences profile for Parallels' documented domain
-- com.parallels.desktop.managedprefs. Keep in step with ../sqlite/0022_parallels_activation.sql.
-- Times are Unix milliseconds.
--
-- experience: Parallels' ActivationExperience value, 'License Key' or 'SSO'.
-- license_key_sealed: the license key sealed under the KEK (secrets::Sealed::ParallelsLicenseKey,
-- bound to the group); set exactly when experience is 'License Key'. Only its last four
-- characters are kept in clear (license_key_hint), so an admin can tell two keys apart.
-- sso_texts: a JSON object of the optional SSO dialog texts (key -> string).
CREATE TABLE parallels_activations (
    group_name         TEXT PRIMARY KEY NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,
    experience         TEXT NOT NULL CHECK (experience IN ('License Key', 'SSO')),
    license_key_sealed BYTEA,
    license_key_hint   TEXT,
    sso_texts          TEXT NOT NULL DEFAULT '{}',
    created_at         BIGINT NOT NULL,
    created_by         TEXT NOT NULL,
    updated_at         BIGINT NOT NULL,
    updated_by         TEXT NOT NULL,
    CHECK ((experience = 'License Key') = (license_key_sealed IS NOT NULL))
);
