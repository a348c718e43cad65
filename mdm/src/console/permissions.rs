//! Which permission every console route requires: one table, read by `require_console` on
//! every request, as `http/permissions.rs` is for the API (a console action needs the same
//! permission as the API call it stands for). A route missing from it is refused to everyone
//! (fail closed); the test below checks the table against the routes the modules register.

use crate::service::admins::Permission::{self, *};
use axum::http::Method;

/// `(method, path as registered, permission)`. Sign-in and the assets need no session and
/// are not here.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    ("POST", "/signout", Read),
    ("GET", "/", Read),
    // groups, profiles, golden images, OS updates (as `/api/v1`'s)
    ("GET", "/groups", Read),
    ("POST", "/groups", Assign),
    ("GET", "/groups/{name}", Read),
    ("POST", "/groups/{name}/devices", Assign),
    ("POST", "/groups/{name}/devices/remove", Assign),
    ("POST", "/groups/{name}/delete", Assign),
    ("GET", "/profiles", Read),
    ("POST", "/profiles", Profiles),
    ("GET", "/profiles/{identifier}", Read),
    ("GET", "/profiles/{identifier}/status", Read),
    ("POST", "/profiles/{identifier}/assignments", Assign),
    ("POST", "/profiles/{identifier}/assignments/remove", Assign),
    ("POST", "/profiles/{identifier}/delete", Profiles),
    ("GET", "/golden-images", Read),
    ("POST", "/golden-images", Profiles),
    ("GET", "/golden-images/{name}", Read),
    ("POST", "/golden-images/{name}", Profiles),
    ("POST", "/golden-images/{name}/groups", Assign),
    ("POST", "/golden-images/{name}/groups/remove", Assign),
    ("POST", "/golden-images/{name}/verify", Profiles),
    ("GET", "/golden-images/{name}/verify/{job}", Read),
    ("POST", "/golden-images/{name}/delete", Profiles),
    ("GET", "/os-updates", Read),
    ("POST", "/os-updates", Assign),
    ("POST", "/os-updates/{id}/delete", Assign),
    // devices (as `GET /api/v1/devices`, `?format=csv`, `/devices/{udid}` and its actions)
    ("GET", "/devices", Read),
    ("GET", "/devices/export.csv", Read),
    ("GET", "/devices/{udid}", Read),
    ("POST", "/devices/{udid}/push", Commands),
    ("POST", "/devices/{udid}/commands", Commands),
    ("POST", "/devices/{udid}/lock", Lock),
    ("POST", "/devices/{udid}/wipe", Wipe),
    ("POST", "/devices/{udid}/wipe/cancel", Wipe),
    ("POST", "/devices/{udid}/unlock-pins", PinReveal),
    ("POST", "/devices/{udid}/filevault-keys", KeyReveal),
    ("POST", "/devices/{udid}/recovery-lock-passwords", KeyReveal),
    // the device's upkeep (as `/api/v1/inventory/refresh`, `…/filevault/rotate`,
    // `…/recovery-lock` and `DELETE /api/v1/devices/{udid}`)
    ("POST", "/devices/{udid}/inventory/refresh", Commands),
    ("POST", "/devices/{udid}/filevault/rotate", DiskSecurity),
    ("POST", "/devices/{udid}/recovery-lock", DiskSecurity),
    ("POST", "/devices/{udid}/recovery-lock/clear", DiskSecurity),
    ("POST", "/devices/{udid}/delete", DeviceDelete),
    // enrollment links (as `POST /api/v1/enroll-links`, `GET /api/v1/identities/expiring`)
    ("GET", "/enrollment", Read),
    ("POST", "/enrollment", Enrollment),
    // DEP (as `/api/v1/dep`)
    ("GET", "/dep", Read),
    ("POST", "/dep/links", Dep),
    ("GET", "/dep/links/{name}/certificate", Read),
    ("POST", "/dep/links/{name}/token", Dep),
    ("POST", "/dep/sync", Commands),
    ("GET", "/dep/sync/{run}", Read),
    ("POST", "/dep/profiles", Dep),
    ("POST", "/dep/assign", Assign),
    ("POST", "/dep/remove", Assign),
    // the push certificate (as `/api/v1/apns`)
    ("GET", "/push", Read),
    ("POST", "/push/csr", PushCertificate),
    ("POST", "/push/certificate", PushCertificate),
    // the audit log
    ("GET", "/audit", Read),
    // admins (as `/api/v1/admins`)
    ("GET", "/admins", Admins),
    ("POST", "/admins", Admins),
    ("POST", "/admins/{name}/revoke", Admins),
];

/// The permission `method` on the route template `path` needs; `None` for a route the table
/// does not know.
pub fn required(method: &Method, path: &str) -> Option<Permission> {
    crate::http::permissions::lookup(ROUTES, method, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::route_scan::routes_in;
    use std::collections::BTreeSet;

    /// Every route the console's modules register (but sign-in and assets, in `mod.rs`'s
    /// open part) has a row, and every row a route.
    #[test]
    fn every_console_route_has_a_permission() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/console");
        let mut registered = BTreeSet::new();
        for entry in std::fs::read_dir(dir).expect("src/console") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let src = std::fs::read_to_string(&path).expect("source");
            // The open routes are registered in `mod.rs` after this marker.
            let src = src.split("// open routes:").next().unwrap_or(&src);
            for route in routes_in(src) {
                registered.insert(route);
            }
        }
        let table: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            registered, table,
            "console routes and their permissions differ"
        );
    }
}
