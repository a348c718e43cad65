//! The audit log, written by the services that make the decisions (never by a handler): who
//! did what to which device, command, link or certificate, and who saw which secret — and from
//! which client address.
//!
//! The address is request context, not a decision, so it is not threaded through every service
//! call: the admin API's authentication layer runs each request inside [`with_address`], and
//! [`record`] reads it from there. Entries written outside an admin request (background work,
//! a Mac's ADE enrollment) have none.

use crate::store::{AuditRecord, Store, StoreResult};
use crate::timefmt::now_ms;
use std::future::Future;

tokio::task_local! {
    static ADDRESS: Option<String>;
}

/// Run `f` (an admin request) with `address` as the client address of the entries it writes.
pub async fn with_address<F: Future>(address: Option<String>, f: F) -> F::Output {
    ADDRESS.scope(address, f).await
}

/// The client address of the admin request being served, if any.
pub fn current_address() -> Option<String> {
    ADDRESS.try_with(Clone::clone).ok().flatten()
}

/// Append one entry: `actor` is the admin's name, `action` a dotted verb (`device.lock`,
/// `pin.reveal`, `dep.sync`, `admin.create`, …), `target` what it was done to.
pub async fn record(
    store: &dyn Store,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> StoreResult<()> {
    store
        .audit_append(&AuditRecord {
            at: now_ms(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            address: current_address(),
            detail,
        })
        .await
}

/// Whose escrowed secrets an admin asks to see: a Mac named by serial number (every UDID it
/// had) or by UDID, and why.
#[derive(Debug, Clone, Copy)]
pub struct Reveal<'a> {
    pub serial: Option<&'a str>,
    pub udid: Option<&'a str>,
    pub reason: Option<&'a str>,
}

impl Reveal<'_> {
    /// A reveal must name the Mac.
    pub fn check(&self) -> Result<(), super::ServiceError> {
        if self.serial.is_none() && self.udid.is_none() {
            return Err(super::ServiceError::BadRequest(
                "give serial or udid".into(),
            ));
        }
        Ok(())
    }
}

/// The reason a reveal from the console must give (the API leaves it optional for scripts):
/// the audit entry then says why a secret was opened.
pub fn required_reason(reason: Option<&str>) -> Result<&str, super::ServiceError> {
    match reason.map(str::trim) {
        Some(r) if !r.is_empty() => Ok(r),
        _ => Err(super::ServiceError::BadRequest(
            "give a reason: it is kept in the audit log with the reveal".into(),
        )),
    }
}

impl super::MdmService {
    /// The audit entry of a reveal, written before anything is opened: `action` (`pin.reveal`,
    /// `filevault.key.reveal`, …), the Mac, the reason, and which secrets (`what`: their
    /// commands or IDs, never their values).
    pub(crate) async fn audit_reveal(
        &self,
        actor: &str,
        action: &str,
        who: Reveal<'_>,
        what: (&str, Vec<String>),
    ) -> Result<(), super::ServiceError> {
        let target = who.serial.or(who.udid).unwrap_or_default();
        let mut detail = serde_json::json!({
            "serial": who.serial, "udid": who.udid, "reason": who.reason,
        });
        detail[what.0] = serde_json::json!(what.1);
        self.audit(actor, action, target, detail).await
    }
}
