//! Which permission every admin route requires: one table, read by `require_admin` on every
//! `/api/v1` request. A route missing from it is refused to everyone (fail closed), and the
//! tests below check the table against the routes the modules register and against the
//! OpenAPI document, so a new route without a permission fails the build's tests.
//!
//! The roles that hold each permission are the service's rule (`service::admins`).

use crate::service::admins::Permission::{self, *};
use axum::http::Method;

/// `(method, path under /api/v1 as registered, permission)`.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    ("GET", "/openapi.json", Read),
    // devices
    ("GET", "/devices", Read),
    ("GET", "/devices/{udid}", Read),
    ("DELETE", "/devices/{udid}", DeviceDelete),
    // commands
    ("GET", "/devices/{udid}/commands", Read),
    ("POST", "/devices/{udid}/commands", Commands),
    ("POST", "/commands", Commands),
    ("GET", "/commands/{uuid}", Read),
    ("DELETE", "/commands/{uuid}", Commands),
    // lock, wipe, PINs
    ("POST", "/devices/{udid}/lock", Lock),
    ("POST", "/devices/{udid}/wipe", Wipe),
    ("DELETE", "/devices/{udid}/wipe", Wipe),
    ("GET", "/unlock-pins", PinReveal),
    // FileVault
    ("POST", "/filevault/enforce", DiskSecurity),
    ("GET", "/filevault-keys", KeyReveal),
    ("GET", "/devices/{udid}/filevault", Read),
    ("POST", "/devices/{udid}/filevault/rotate", DiskSecurity),
    // Recovery Lock
    ("POST", "/devices/{udid}/recovery-lock", DiskSecurity),
    ("DELETE", "/devices/{udid}/recovery-lock", DiskSecurity),
    ("POST", "/recovery-lock", DiskSecurity),
    ("GET", "/recovery-lock-passwords", KeyReveal),
    // push and the push certificate
    ("POST", "/devices/{udid}/push", Commands),
    ("GET", "/apns", Read),
    ("PUT", "/apns/certificate", PushCertificate),
    ("POST", "/apns/csr", PushCertificate),
    ("POST", "/vendor/sign", PushCertificate),
    // enrollment
    ("POST", "/enroll-links", Enrollment),
    ("GET", "/identities/expiring", Read),
    // audit
    ("GET", "/audit", Read),
    // DEP
    ("GET", "/dep/links", Read),
    ("POST", "/dep/links", Dep),
    ("GET", "/dep/links/{name}", Read),
    ("GET", "/dep/links/{name}/certificate", Read),
    ("PUT", "/dep/links/{name}/token", Dep),
    ("GET", "/dep/devices", Read),
    ("POST", "/dep/sync", Commands),
    ("GET", "/dep/profiles", Read),
    ("POST", "/dep/profiles", Dep),
    ("POST", "/dep/profiles/{uuid}/devices", Assign),
    ("DELETE", "/dep/profiles/{uuid}/devices", Assign),
    ("POST", "/dep/disown", Dep),
    // groups
    ("GET", "/groups", Read),
    ("POST", "/groups", Assign),
    ("GET", "/groups/{name}", Read),
    ("PATCH", "/groups/{name}", Assign),
    ("DELETE", "/groups/{name}", Assign),
    ("POST", "/groups/{name}/devices", Assign),
    ("DELETE", "/groups/{name}/devices", Assign),
    // golden images: the catalog is admin work (what Macs are offered, like profiles);
    // choosing which groups get an image is an operator's, like assigning a profile;
    // verify makes the server download (gigabytes, from a URL an admin chose), so it is
    // catalog work too, not a read
    // OS updates (DDM): which version a group's Macs must run is an operator's choice, like
    // assigning a profile to a group
    ("GET", "/os-updates", Read),
    ("POST", "/os-updates", Assign),
    ("DELETE", "/os-updates/{id}", Assign),
    // raw DDM declarations: content Macs get, like uploading a profile (admin work)
    ("GET", "/ddm/declarations", Read),
    ("POST", "/ddm/declarations", Profiles),
    ("DELETE", "/ddm/declarations/{identifier}", Profiles),
    ("GET", "/golden-images", Read),
    ("POST", "/golden-images", Profiles),
    ("GET", "/golden-images/{name}", Read),
    ("PATCH", "/golden-images/{name}", Profiles),
    ("DELETE", "/golden-images/{name}", Profiles),
    ("POST", "/golden-images/{name}/groups", Assign),
    ("DELETE", "/golden-images/{name}/groups", Assign),
    ("POST", "/golden-images/{name}/verify", Profiles),
    // Parallels Desktop activation per group: a license key is what Macs are given, like a
    // profile; never shown back (only its last four characters).
    ("GET", "/parallels-activations", Read),
    ("GET", "/groups/{name}/parallels-activation", Read),
    ("PUT", "/groups/{name}/parallels-activation", Profiles),
    ("DELETE", "/groups/{name}/parallels-activation", Profiles),
    // configuration profiles
    ("GET", "/profiles", Read),
    ("POST", "/profiles", Profiles),
    ("POST", "/profiles/custom-settings", Profiles),
    ("GET", "/profiles/{identifier}", Read),
    ("DELETE", "/profiles/{identifier}", Profiles),
    ("POST", "/profiles/{identifier}/assignments", Assign),
    ("DELETE", "/profiles/{identifier}/assignments", Assign),
    ("GET", "/profiles/{identifier}/status", Read),
    ("POST", "/profiles/verify", Commands),
    ("GET", "/devices/{udid}/profiles", Read),
    // inventory
    ("GET", "/devices/{udid}/inventory", Read),
    ("POST", "/inventory/refresh", Commands),
    // admins
    ("GET", "/admins", Admins),
    ("POST", "/admins", Admins),
    ("DELETE", "/admins/{name}", Admins),
];

/// The API's prefix; `ROUTES` paths are below it.
pub const PREFIX: &str = "/api/v1";

/// The permission `method` on the route template `path` (with or without [`PREFIX`]) needs;
/// `None` for a route the table does not know.
pub fn required(method: &Method, path: &str) -> Option<Permission> {
    lookup(ROUTES, method, path.strip_prefix(PREFIX).unwrap_or(path))
}

/// The permission `method` on `path` has in `table` (`(method, path, permission)` rows; the
/// console's table has the same shape).
pub fn lookup(
    table: &[(&str, &str, Permission)],
    method: &Method,
    path: &str,
) -> Option<Permission> {
    // axum answers HEAD with the GET handler.
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    table
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, perm)| *perm)
}

#[cfg(test)]
mod tests {
    use super::super::route_scan::routes_in;
    use super::*;
    use std::collections::BTreeSet;

    /// `(method, path)` of every `.route("…", get(..).post(..))` in the admin route modules'
    /// source, and in `admin.rs` (its `/api/v1` part).
    fn registered_routes() -> BTreeSet<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
        let mut out = BTreeSet::new();
        let entries = std::fs::read_dir(dir).expect("src/http");
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Device-side routers and the unauthenticated/separately-authenticated admin
            // routes (`/healthz`, `/metrics`) are not under `/api/v1`.
            if !name.ends_with(".rs")
                || [
                    "device.rs",
                    "enroll.rs",
                    "scep.rs",
                    "metrics.rs",
                    "permissions.rs",
                    "route_scan.rs",
                ]
                .contains(&name)
            {
                continue;
            }
            let src = std::fs::read_to_string(&path).expect("source");
            for (method, route) in routes_in(&src) {
                if route != "/healthz" {
                    out.insert((method, route));
                }
            }
        }
        out
    }

    #[test]
    fn the_parser_reads_wrapped_routes() {
        let src = r#"Router::new()
            .route("/a", get(list).post(create))
            .route(
                "/a/{id}",
                get(show).delete(delete_it),
            )
            .route("/b", put(set))"#;
        assert_eq!(
            routes_in(src),
            [
                ("GET".into(), "/a".into()),
                ("POST".into(), "/a".into()),
                ("GET".into(), "/a/{id}".into()),
                ("DELETE".into(), "/a/{id}".into()),
                ("PUT".into(), "/b".into()),
            ]
        );
    }

    #[test]
    fn every_registered_route_has_exactly_one_permission() {
        let registered = registered_routes();
        assert!(registered.len() > 40, "found only {registered:?}");
        let table: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(table.len(), ROUTES.len(), "a route is listed twice");
        let missing: Vec<_> = registered.difference(&table).collect();
        assert!(
            missing.is_empty(),
            "routes without a permission in http/permissions.rs: {missing:?}"
        );
        let stale: Vec<_> = table.difference(&registered).collect();
        assert!(
            stale.is_empty(),
            "permissions for routes nobody registers: {stale:?}"
        );
    }

    #[test]
    fn the_openapi_document_lists_the_same_routes() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("openapi.json")).expect("openapi.json");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let Some(rel) = path.strip_prefix(PREFIX) else {
                continue;
            };
            for (method, op) in item.as_object().expect("path item") {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                // The document names each operation's permission, as the table does.
                assert_eq!(
                    op["x-russet-permission"].as_str(),
                    required(&method, rel).map(Permission::name),
                    "x-russet-permission of {method} {path}"
                );
                documented.insert((method.to_string(), rel.to_string()));
            }
        }
        let table: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, table);
    }

    #[test]
    fn lookups_take_the_prefix_or_not_and_fail_closed() {
        assert_eq!(
            required(&Method::POST, "/api/v1/devices/{udid}/lock"),
            Some(Lock)
        );
        assert_eq!(required(&Method::GET, "/unlock-pins"), Some(PinReveal));
        assert_eq!(required(&Method::HEAD, "/api/v1/devices"), Some(Read));
        assert_eq!(required(&Method::GET, "/api/v1/nowhere"), None);
        assert_eq!(required(&Method::PATCH, "/api/v1/devices"), None);
    }

    #[test]
    fn viewers_only_read_and_reveals_need_more_than_read() {
        for (m, p, perm) in ROUTES {
            if *m != "GET" {
                assert_ne!(*perm, Read, "{m} {p} changes state: not for viewers");
            }
        }
        assert_ne!(required(&Method::GET, "/unlock-pins"), Some(Read));
        // Verify makes the server download whole images: catalog work, not a read.
        assert_eq!(
            required(&Method::POST, "/golden-images/{name}/verify"),
            Some(Profiles)
        );
    }
}
