//! Which Macs have an application (the filter field `app`): the query and its SQL, written
//! once for both databases and for both places that ask it — the lookup
//! (`InventoryStore::devices_with_app`) and the device scan's `EXISTS`
//! (`groups::FactCondition::App`), so the two can never disagree on what matches.

use crate::filter::{Op, version_key};

/// Which Macs have an application: one whose bundle ID or name is `text`, or contains it,
/// ignoring case; with `versions`, one app must also satisfy every `(op, version)` on its
/// `ShortVersion`, compared as versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppQuery {
    pub text: String,
    pub contains: bool,
    /// Operators `=`, `<`, `<=`, `>`, `>=` (what the filter language allows).
    pub versions: Vec<(Op, String)>,
}

/// `text` as a `LIKE … ESCAPE '\'` pattern matching it literally, lowercased.
pub fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How the condition is evaluated, which decides how it is written (the two forms mean the
/// same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Over the whole table (the lookup): `lower(bundle_id) = ? OR lower(name) = ?`, which
    /// the expression indexes answer.
    Table,
    /// For one device's rows (the scan's correlated `EXISTS`): `? IN (lower(bundle_id),
    /// lower(name))`, which no index matches, so the database reads the device's own rows by
    /// `device_id`. Written as `Table`, SQLite drove every probe through the bundle index —
    /// all 60,000 Excel rows per device (a timeout at 100k Macs).
    Device,
}

/// Pushes the condition under which the `inventory_apps` row aliased `a` is an app `query`
/// finds (versions compared through `version_key`, which sorts as versions compare).
pub fn push_app_match<DB>(qb: &mut sqlx::QueryBuilder<DB>, query: &AppQuery, probe: Probe)
where
    DB: sqlx::Database,
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let text = query.text.to_lowercase();
    if query.contains {
        let pattern = format!("%{}%", like_literal(&text));
        qb.push("(lower(a.bundle_id) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR lower(a.name) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    } else if probe == Probe::Device {
        qb.push("(")
            .push_bind(text)
            .push(" IN (lower(a.bundle_id), lower(a.name)))");
    } else {
        qb.push("(lower(a.bundle_id) = ")
            .push_bind(text.clone())
            .push(" OR lower(a.name) = ")
            .push_bind(text)
            .push(")");
    }
    for (op, v) in &query.versions {
        // Only the operators the filter language allows on a version.
        let sql_op = match op {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            _ => "=",
        };
        qb.push(" AND a.version_key ")
            .push(sql_op)
            .push(" ")
            .push_bind(version_key(v));
    }
}
