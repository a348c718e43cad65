//! Reads the routes a router module registers from its source, so the permission tables
//! (`http/permissions.rs`, `console/permissions.rs`) are checked against what is served.
//! Test-only.

/// Parse `.route("PATH", get(h).post(h2))` calls, however they are wrapped.
pub fn routes_in(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let Some(args) = rest.trim_start().strip_prefix('"') else {
            panic!(
                "a route path that is not a string literal: {}",
                &rest[..40.min(rest.len())]
            );
        };
        let Some(end) = args.find('"') else { break };
        let path = args[..end].to_string();
        // The method router: up to the `)` closing `.route(`.
        let mut depth = 1;
        let mut body = String::new();
        for c in args[end + 1..].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                break;
            }
            body.push(c);
        }
        let mut seen_any = false;
        for m in ["get", "post", "put", "patch", "delete"] {
            let calls = body
                .match_indices(&format!("{m}("))
                .filter(|(at, _)| {
                    let before = body[..*at].chars().last();
                    !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                })
                .count();
            if calls > 0 {
                seen_any = true;
                out.push((m.to_uppercase(), path.clone()));
            }
        }
        assert!(seen_any, "no method found for route {path}: {body}");
    }
    out
}
