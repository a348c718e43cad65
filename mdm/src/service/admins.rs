//! Named admins, their roles, and who may do what (issue 16: the seed's Authorization
//! Manager). Each admin has its own tokens, stored only as SHA-256 hashes ([`admin_token`]);
//! revoking an admin deletes them in the same transaction, and every admin request reads the
//! tokens of active admins from the store (no cache), so a revoke on any server sharing the
//! database refuses the admin's next request.
//!
//! A role grants the permissions whose minimum role it reaches ([`Role::grants`]); which
//! permission each admin route needs is the HTTP layer's table (`http/permissions.rs`).
//! Failed tokens are counted per client address ([`FailedTokens`]).

use super::{MdmService, ServiceError, admin_token, audit};
use crate::store::admin::NewAdmin;
use crate::store::{AdminRecord, RevokeOutcome, Store, StoreError};
use crate::timefmt::now_ms;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What an admin may do, from least to most: each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything but secrets.
    Viewer,
    /// Day-to-day device work: commands, push, lock, assignments, PIN reveal.
    Operator,
    /// Everything, including wipe, admins, the push certificate, DEP and enrollment.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn grants(self, permission: Permission) -> bool {
        self >= permission.minimum_role()
    }

    /// "a viewer", "an operator", "an admin".
    fn with_article(self) -> String {
        let article = if self == Role::Viewer { "a" } else { "an" };
        format!("{article} {}", self.as_str())
    }
}

/// A permission an admin route requires; its name is what a refusal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read devices, commands, groups, profiles, inventory, DEP records, the audit log.
    Read,
    /// Queue and cancel commands, push, ask for inventory or ProfileLists, DEP sync.
    Commands,
    /// Lock a Mac (the PIN is escrowed first).
    Lock,
    /// See escrowed unlock PINs (audited).
    PinReveal,
    /// Groups and their members; assign profiles and DEP profiles.
    Assign,
    /// Erase a Mac, or cancel a pending erase.
    Wipe,
    /// Forget a device.
    DeviceDelete,
    /// Upload, build and delete configuration profiles (what Macs may be told to install).
    Profiles,
    /// Enrollment links.
    Enrollment,
    /// The APNs push certificate, its CSR, the vendor signer.
    PushCertificate,
    /// DEP links, tokens, DEP profiles, disown.
    Dep,
    /// Create, list and revoke admins.
    Admins,
    /// Enforce FileVault on a group, rotate a Mac's personal recovery key; set, rotate and
    /// clear Recovery Lock (each secret escrowed before the command exists).
    DiskSecurity,
    /// See escrowed FileVault personal recovery keys and Recovery Lock passwords (audited):
    /// whoever holds one can unlock a disk or start a Mac in recovery, so admins only.
    KeyReveal,
}

impl Permission {
    pub const ALL: [Permission; 14] = [
        Permission::Read,
        Permission::Commands,
        Permission::Lock,
        Permission::PinReveal,
        Permission::Assign,
        Permission::Wipe,
        Permission::DeviceDelete,
        Permission::Profiles,
        Permission::Enrollment,
        Permission::PushCertificate,
        Permission::Dep,
        Permission::Admins,
        Permission::DiskSecurity,
        Permission::KeyReveal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Commands => "commands",
            Permission::Lock => "lock",
            Permission::PinReveal => "pin.reveal",
            Permission::Assign => "assign",
            Permission::Wipe => "wipe",
            Permission::DeviceDelete => "devices.delete",
            Permission::Profiles => "profiles",
            Permission::Enrollment => "enrollment",
            Permission::PushCertificate => "push_certificate",
            Permission::Dep => "dep",
            Permission::Admins => "admins",
            Permission::DiskSecurity => "disk_security",
            Permission::KeyReveal => "key.reveal",
        }
    }

    /// The least role that has it.
    pub fn minimum_role(self) -> Role {
        match self {
            Permission::Read => Role::Viewer,
            Permission::Commands
            | Permission::Lock
            | Permission::PinReveal
            | Permission::Assign
            | Permission::DiskSecurity => Role::Operator,
            Permission::Wipe
            | Permission::DeviceDelete
            | Permission::Profiles
            | Permission::Enrollment
            | Permission::PushCertificate
            | Permission::Dep
            | Permission::Admins
            | Permission::KeyReveal => Role::Admin,
        }
    }

    /// "role operator or admin", for the refusal.
    fn roles_text(self) -> String {
        let roles: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| r.grants(self))
            .map(Role::as_str)
            .collect();
        format!("role {}", roles.join(" or "))
    }
}

/// Who an admin request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminIdentity {
    pub name: String,
    pub role: Role,
}

/// Why an admin request was not let in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a valid admin token is required (Authorization: Bearer <token>)")]
    Unauthenticated,
    #[error(
        "too many failed admin tokens from this address; retry in {} s",
        retry_after.as_secs().max(1)
    )]
    RateLimited { retry_after: Duration },
    /// The admin is known, its role lacks the permission.
    #[error("{what} requires the {} permission ({}); {} is {}",
        permission.name(), permission.roles_text(), who.name, who.role.with_article())]
    Forbidden {
        what: String,
        permission: Permission,
        who: AdminIdentity,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An admin just created, with its token (shown once, never stored).
#[derive(Debug, Clone)]
pub struct CreatedAdmin {
    pub admin: AdminRecord,
    pub token: String,
}

/// Names that Russet itself writes into the audit log as the actor.
const RESERVED_NAMES: [&str; 2] = ["russet", "ade"];

/// The name of the first admin, created at first start.
pub const FIRST_ADMIN: &str = "admin";

fn check_name(name: &str) -> Result<(), ServiceError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if !ok {
        return Err(ServiceError::BadRequest(
            "an admin name is 1 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
                .into(),
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(ServiceError::BadRequest(format!(
            "{name} is reserved for Russet's own entries in the audit log"
        )));
    }
    Ok(())
}

fn role_of(rec_role: &str) -> Result<Role, ServiceError> {
    Role::parse(rec_role)
        .ok_or_else(|| ServiceError::Internal(format!("stored admin role {rec_role:?}")))
}

/// The first admin (role `admin`) at first start, when the database has no admin at all:
/// its token, to print once. Existing databases got their admins from the migration.
pub async fn create_first_admin(store: &dyn Store) -> Result<Option<String>, ServiceError> {
    if !store.admins().await?.is_empty() {
        return Ok(None);
    }
    let token = admin_token::generate().map_err(crate::secrets::SecretError::from)?;
    let created = store
        .create_admin(&NewAdmin {
            name: FIRST_ADMIN,
            role: Role::Admin.as_str(),
            token_hash: &admin_token::hash(&token),
            created_by: None,
            now: now_ms(),
        })
        .await?;
    if created.is_none() {
        // Another server sharing the database made it a moment ago.
        return Ok(None);
    }
    audit::record(
        store,
        "russet",
        "admin.create",
        FIRST_ADMIN,
        json!({"role": "admin", "first_start": true}),
    )
    .await?;
    Ok(Some(token))
}

impl MdmService {
    /// The admin whose token was `presented` from `from`. Refused with 429 while the address
    /// has too many recent failures (before the token is looked at, so guessing stops); a
    /// wrong token counts as a failure and is logged with the address, never the token.
    pub async fn authenticate_admin(
        &self,
        presented: Option<&str>,
        from: Option<IpAddr>,
    ) -> Result<AdminIdentity, AuthError> {
        let now = Instant::now();
        if let Some(ip) = from
            && let Some(retry_after) = self.failed_tokens.blocked(ip, now)
        {
            return Err(AuthError::RateLimited { retry_after });
        }
        let Some(presented) = presented else {
            return Err(AuthError::Unauthenticated);
        };
        let tokens = self.store.admin_tokens().await?;
        match admin_token::find(&tokens, presented) {
            Some(t) => match Role::parse(&t.role) {
                Some(role) => Ok(AdminIdentity {
                    name: t.name.clone(),
                    role,
                }),
                None => {
                    tracing::error!(admin = %t.name, role = %t.role, "stored admin role is unknown");
                    Err(AuthError::Unauthenticated)
                }
            },
            None => {
                let failures = from.map_or(0, |ip| self.failed_tokens.failed(ip, now));
                tracing::warn!(
                    address = ?from,
                    failures_last_minute = failures,
                    "admin API: unknown or revoked token refused"
                );
                Err(AuthError::Unauthenticated)
            }
        }
    }

    /// Create an admin with a fresh token (audited; the token is in no log and no entry).
    pub async fn create_admin(
        &self,
        name: &str,
        role: &str,
        actor: &str,
    ) -> Result<CreatedAdmin, ServiceError> {
        check_name(name)?;
        let role = Role::parse(role).ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "role must be viewer, operator or admin, not {role:?}"
            ))
        })?;
        let token = admin_token::generate().map_err(crate::secrets::SecretError::from)?;
        let admin = self
            .store
            .create_admin(&NewAdmin {
                name,
                role: role.as_str(),
                token_hash: &admin_token::hash(&token),
                created_by: Some(actor),
                now: now_ms(),
            })
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "an admin named {name} exists or existed (names are never reused, so the audit log stays unambiguous)"
                ))
            })?;
        self.audit(actor, "admin.create", name, json!({"role": role.as_str()}))
            .await?;
        Ok(CreatedAdmin { admin, token })
    }

    /// Every admin, revoked ones included.
    pub async fn admins(&self) -> Result<Vec<AdminRecord>, ServiceError> {
        let all = self.store.admins().await?;
        for a in &all {
            role_of(&a.role)?;
        }
        Ok(all)
    }

    /// Revoke an admin: its tokens stop working at once, on every server sharing the
    /// database. The last active `admin` cannot be revoked (nobody could manage admins then).
    pub async fn revoke_admin(&self, name: &str, actor: &str) -> Result<(), ServiceError> {
        match self.store.revoke_admin(name, actor, now_ms()).await? {
            RevokeOutcome::Revoked => {
                self.audit(actor, "admin.revoke", name, json!({})).await?;
                Ok(())
            }
            RevokeOutcome::NotFound => Err(ServiceError::NotFound(format!("admin {name}"))),
            RevokeOutcome::AlreadyRevoked => Err(ServiceError::Conflict(format!(
                "admin {name} is already revoked"
            ))),
            RevokeOutcome::LastAdmin => Err(ServiceError::Refused(format!(
                "{name} is the last admin with the role admin; create another admin first"
            ))),
        }
    }
}

/// Refuse `who` unless its role grants `permission`; `what` names the request in the refusal
/// (`POST /api/v1/admins`).
pub fn authorize(who: &AdminIdentity, permission: Permission, what: &str) -> Result<(), AuthError> {
    if who.role.grants(permission) {
        Ok(())
    } else {
        Err(AuthError::Forbidden {
            what: what.to_string(),
            permission,
            who: who.clone(),
        })
    }
}

/// Failed admin tokens per client address: after [`FailedTokens::MAX`] failures within
/// [`FailedTokens::WINDOW`], the address is refused (429) until the oldest of them is a window
/// old. In memory, per process: each server behind a load balancer counts its own (an
/// attacker spreading over N servers gets N times the budget, still far too little against
/// 256-bit tokens). Successful requests are neither counted nor slowed.
pub struct FailedTokens {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// Addresses remembered at most; beyond that the stale ones are dropped first.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

impl Default for FailedTokens {
    fn default() -> Self {
        FailedTokens::new(FailedTokens::MAX, FailedTokens::WINDOW)
    }
}

impl FailedTokens {
    pub const MAX: usize = 10;
    pub const WINDOW: Duration = Duration::from_secs(60);

    pub fn new(max: usize, window: Duration) -> Self {
        FailedTokens {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long `ip` must wait, while it is refused.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().ok()?;
        let times = map.get_mut(&ip)?;
        self.forget_old(times, now);
        if times.len() < self.max {
            return None;
        }
        let oldest = *times.front()?;
        Some((oldest + self.window).saturating_duration_since(now))
    }

    /// Count a failure from `ip`; the failures within the window, this one included.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> usize {
        let Ok(mut map) = self.failures.lock() else {
            return 0;
        };
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(&ip) {
            let window = self.window;
            map.retain(|_, t| {
                t.back()
                    .is_some_and(|last| now.duration_since(*last) < window)
            });
            if map.len() >= MAX_TRACKED_ADDRESSES {
                map.clear();
            }
        }
        let times = map.entry(ip).or_default();
        self.forget_old(times, now);
        times.push_back(now);
        // Only the newest `max` matter for the decision.
        while times.len() > self.max {
            times.pop_front();
        }
        times.len()
    }

    fn forget_old(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_issue_says() {
        use Permission::*;
        let viewer: Vec<_> = Permission::ALL
            .into_iter()
            .filter(|p| Role::Viewer.grants(*p))
            .collect();
        assert_eq!(viewer, [Read]);
        let operator: Vec<_> = Permission::ALL
            .into_iter()
            .filter(|p| Role::Operator.grants(*p))
            .collect();
        assert_eq!(
            operator,
            [Read, Commands, Lock, PinReveal, Assign, DiskSecurity]
        );
        assert!(Permission::ALL.into_iter().all(|p| Role::Admin.grants(p)));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_refusal_names_the_permission_the_roles_and_the_admin() {
        let who = AdminIdentity {
            name: "bob".into(),
            role: Role::Viewer,
        };
        let e = authorize(
            &who,
            Permission::Commands,
            "POST /api/v1/devices/{udid}/commands",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "POST /api/v1/devices/{udid}/commands requires the commands permission \
             (role operator or admin); bob is a viewer"
        );
        let op = AdminIdentity {
            name: "carol".into(),
            role: Role::Operator,
        };
        assert_eq!(
            authorize(&op, Permission::Admins, "POST /api/v1/admins")
                .unwrap_err()
                .to_string(),
            "POST /api/v1/admins requires the admins permission (role admin); carol is an operator"
        );
        assert!(authorize(&op, Permission::Lock, "x").is_ok());
    }

    #[test]
    fn names_are_checked() {
        for ok in ["alice", "ops-bot", "j.doe@example.com", "a1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "has space",
            "ümlaut",
            "russet",
            "ade",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ten_failures_in_a_minute_block_that_address_only() {
        let limiter = FailedTokens::default();
        let t0 = Instant::now();
        let (bad, other) = (ip("192.0.2.7"), ip("2001:db8::1"));
        for i in 0..9 {
            assert_eq!(
                limiter.failed(bad, t0 + Duration::from_secs(i)),
                i as usize + 1
            );
            assert_eq!(limiter.blocked(bad, t0 + Duration::from_secs(i)), None);
        }
        limiter.failed(bad, t0 + Duration::from_secs(10));
        let wait = limiter
            .blocked(bad, t0 + Duration::from_secs(10))
            .expect("blocked after the tenth failure");
        assert_eq!(
            wait,
            Duration::from_secs(50),
            "until the first failure is a minute old"
        );
        assert_eq!(limiter.blocked(other, t0 + Duration::from_secs(10)), None);
        // A minute after the first failure, one slot is free again.
        assert_eq!(limiter.blocked(bad, t0 + Duration::from_secs(60)), None);
        limiter.failed(bad, t0 + Duration::from_secs(60));
        assert!(limiter.blocked(bad, t0 + Duration::from_secs(60)).is_some());
    }

    #[test]
    fn failures_spread_over_more_than_a_minute_never_block() {
        let limiter = FailedTokens::default();
        let t0 = Instant::now();
        let a = ip("198.51.100.1");
        for i in 0..100 {
            let t = t0 + Duration::from_secs(7 * i);
            assert_eq!(limiter.blocked(a, t), None, "failure {i}");
            limiter.failed(a, t);
        }
    }
}
