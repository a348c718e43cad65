-- Device search (issue 13): `app = "X"` matches an app whose bundle ID or name is X, ignoring
-- case like every text comparison of the filter language (errata, "Wave 2"), so the bundle ID
-- is indexed lowercased, as the name already is (0011).
DROP INDEX inventory_apps_bundle_idx;
CREATE INDEX inventory_apps_bundle_lower_idx ON inventory_apps (lower(bundle_id), version_key);
