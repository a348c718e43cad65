//! A Mac's declaration set and Apple's DDM answers built from it: pure, no store.
//!
//! Apple (`declarative/protocol/`): `tokens` answers `{"SyncTokens": {"DeclarationsToken",
//! "Timestamp"}}`; `declaration-items` lists every declaration by kind with its `Identifier`
//! and `ServerToken`, plus the `DeclarationsToken`; `declaration/<kind>/<identifier>` is the
//! declaration itself (`Type`, `Identifier`, `ServerToken`, `Payload`). A configuration takes
//! effect only when an activation lists it (errata, wave 2), so every non-empty set carries
//! Russet's one activation, `com.apple.activation.simple`, whose `StandardConfigurations` names
//! every configuration in it.
//!
//! `ServerToken`: "Servers must compute the token over the entire declaration content"
//! (`declarationitemsresponse.yaml`) — a SHA-256 over the type, identifier and payload.
//! `DeclarationsToken`: a SHA-256 over the sorted (Identifier, ServerToken) pairs, so it
//! changes exactly when the set does, and two Macs with the same set share it.

use crate::store::ddm::OsUpdateRecord;
use serde_json::{Value, json};

/// Apple's four declaration kinds, as the `declaration-items` keys and the path segment of
/// `declaration/<kind>/<identifier>` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Activation,
    Asset,
    Configuration,
    Management,
}

impl Kind {
    /// The `declaration-items` key.
    pub fn items_key(self) -> &'static str {
        match self {
            Kind::Activation => "Activations",
            Kind::Asset => "Assets",
            Kind::Configuration => "Configurations",
            Kind::Management => "Management",
        }
    }

    /// The path segment in `declaration/<kind>/<identifier>` (and the status report's key).
    pub fn path(self) -> &'static str {
        match self {
            Kind::Activation => "activation",
            Kind::Asset => "asset",
            Kind::Configuration => "configuration",
            Kind::Management => "management",
        }
    }

    pub fn from_path(segment: &str) -> Option<Kind> {
        [
            Kind::Activation,
            Kind::Asset,
            Kind::Configuration,
            Kind::Management,
        ]
        .into_iter()
        .find(|k| k.path() == segment)
    }
}

/// Apple's declaration type for an enforced OS update.
pub const OS_UPDATE_TYPE: &str = "com.apple.configuration.softwareupdate.enforcement.specific";
/// The activation Russet generates for every non-empty set.
pub const ACTIVATION_TYPE: &str = "com.apple.activation.simple";
pub const ACTIVATION_IDENTIFIER: &str = "org.russet.activation";
/// `org.russet.os-update.<id>`: one configuration per enforced OS update.
pub const OS_UPDATE_PREFIX: &str = "org.russet.os-update.";

/// One declaration as a Mac fetches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    pub kind: Kind,
    pub declaration_type: String,
    pub identifier: String,
    pub server_token: String,
    pub payload: Value,
}

impl Declaration {
    pub fn new(kind: Kind, declaration_type: &str, identifier: &str, payload: Value) -> Self {
        let content = json!([declaration_type, identifier, payload]).to_string();
        Declaration {
            kind,
            declaration_type: declaration_type.to_string(),
            identifier: identifier.to_string(),
            server_token: short_sha256(content.as_bytes()),
            payload,
        }
    }

    /// The body of `declaration/<kind>/<identifier>`.
    pub fn to_json(&self) -> Value {
        json!({
            "Type": self.declaration_type,
            "Identifier": self.identifier,
            "ServerToken": self.server_token,
            "Payload": self.payload,
        })
    }
}

/// 32 hex digits of SHA-256: a token, not a secret.
fn short_sha256(bytes: &[u8]) -> String {
    hex::encode(&openssl::sha::sha256(bytes)[..16])
}

/// A Mac's declarations, sorted by identifier, with Russet's activation when there is any
/// configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeclarationSet {
    pub declarations: Vec<Declaration>,
}

impl DeclarationSet {
    /// The set of these declarations, and the activation that turns on every configuration
    /// among them.
    pub fn of(mut configurations: Vec<Declaration>) -> Self {
        configurations.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        configurations.dedup_by(|a, b| a.identifier == b.identifier);
        let names: Vec<&str> = configurations
            .iter()
            .filter(|c| c.kind == Kind::Configuration)
            .map(|c| c.identifier.as_str())
            .collect();
        if !names.is_empty() {
            let activation = Declaration::new(
                Kind::Activation,
                ACTIVATION_TYPE,
                ACTIVATION_IDENTIFIER,
                json!({"StandardConfigurations": names}),
            );
            configurations.push(activation);
        }
        configurations.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        DeclarationSet {
            declarations: configurations,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.declarations.is_empty()
    }

    /// The `DeclarationsToken`: over the sorted (Identifier, ServerToken) pairs.
    pub fn token(&self) -> String {
        let mut text = String::new();
        for d in &self.declarations {
            text.push_str(&d.identifier);
            text.push('\0');
            text.push_str(&d.server_token);
            text.push('\n');
        }
        short_sha256(text.as_bytes())
    }

    /// The body of `declaration-items`.
    pub fn items(&self) -> Value {
        let mut by_kind = serde_json::Map::new();
        for kind in [
            Kind::Activation,
            Kind::Asset,
            Kind::Configuration,
            Kind::Management,
        ] {
            let list: Vec<Value> = self
                .declarations
                .iter()
                .filter(|d| d.kind == kind)
                .map(|d| json!({"Identifier": d.identifier, "ServerToken": d.server_token}))
                .collect();
            by_kind.insert(kind.items_key().to_string(), Value::Array(list));
        }
        json!({"Declarations": by_kind, "DeclarationsToken": self.token()})
    }

    /// The declaration `declaration/<kind>/<identifier>` names, if this Mac has it.
    pub fn find(&self, kind: Kind, identifier: &str) -> Option<&Declaration> {
        self.declarations
            .iter()
            .find(|d| d.kind == kind && d.identifier == identifier)
    }
}

/// The body of `tokens` (and the `SyncTokens` the DeclarativeManagement command carries).
pub fn sync_tokens(token: &str, timestamp: &str) -> Value {
    json!({"SyncTokens": {"DeclarationsToken": token, "Timestamp": timestamp}})
}

/// An uploaded declaration as served (its payload was checked when uploaded; one that no
/// longer reads is left out).
pub fn uploaded(r: &crate::store::ddm::DdmDeclarationRecord) -> Option<Declaration> {
    let kind = Kind::from_path(&r.kind)?;
    let payload: Value = serde_json::from_str(&r.payload).ok()?;
    Some(Declaration::new(
        kind,
        &r.declaration_type,
        &r.identifier,
        payload,
    ))
}

/// Apple's `TargetLocalDateTime` is `yyyy-mm-ddThh:mm:ss`: a stored deadline may omit the
/// seconds.
fn local_date_time(deadline: &str) -> String {
    if deadline.len() == "YYYY-MM-DDTHH:MM".len() {
        format!("{deadline}:00")
    } else {
        deadline.to_string()
    }
}

/// The configuration that enforces an OS update.
pub fn os_update_configuration(u: &OsUpdateRecord) -> Declaration {
    let mut payload = serde_json::Map::new();
    payload.insert("TargetOSVersion".into(), json!(u.target_os_version));
    if let Some(b) = &u.target_build_version {
        payload.insert("TargetBuildVersion".into(), json!(b));
    }
    payload.insert(
        "TargetLocalDateTime".into(),
        json!(local_date_time(&u.deadline)),
    );
    if let Some(url) = &u.details_url {
        payload.insert("DetailsURL".into(), json!(url));
    }
    Declaration::new(
        Kind::Configuration,
        OS_UPDATE_TYPE,
        &format!("{OS_UPDATE_PREFIX}{}", u.id),
        Value::Object(payload),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: i64, version: &str) -> OsUpdateRecord {
        OsUpdateRecord {
            id,
            group_name: "g".into(),
            target_os_version: version.into(),
            target_build_version: None,
            deadline: "2026-12-20T18:00".into(),
            details_url: None,
            created_at: 0,
            created_by: "a".into(),
        }
    }

    #[test]
    fn an_empty_set_has_no_activation_and_a_stable_token() {
        let empty = DeclarationSet::of(Vec::new());
        assert!(empty.is_empty());
        assert_eq!(empty.token(), DeclarationSet::default().token());
        assert_eq!(
            empty.items()["Declarations"]["Activations"],
            json!([]),
            "{}",
            empty.items()
        );
    }

    #[test]
    fn the_activation_lists_every_configuration() {
        let set = DeclarationSet::of(vec![
            os_update_configuration(&update(2, "15.1")),
            os_update_configuration(&update(1, "14.7")),
        ]);
        let activation = set
            .find(Kind::Activation, ACTIVATION_IDENTIFIER)
            .expect("activation");
        assert_eq!(
            activation.payload["StandardConfigurations"],
            json!(["org.russet.os-update.1", "org.russet.os-update.2"])
        );
        let items = set.items();
        assert_eq!(
            items["Declarations"]["Configurations"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(items["DeclarationsToken"], json!(set.token()));
        let c = set
            .find(Kind::Configuration, "org.russet.os-update.1")
            .expect("configuration");
        assert_eq!(
            c.to_json()["Payload"],
            json!({"TargetOSVersion": "14.7", "TargetLocalDateTime": "2026-12-20T18:00:00"})
        );
        assert!(set.find(Kind::Asset, "org.russet.os-update.1").is_none());
    }

    #[test]
    fn the_token_changes_exactly_when_the_set_does() {
        let a = DeclarationSet::of(vec![os_update_configuration(&update(1, "14.7"))]);
        let same = DeclarationSet::of(vec![os_update_configuration(&update(1, "14.7"))]);
        assert_eq!(a.token(), same.token());
        // Another target: the configuration's ServerToken, the activation's and the set's.
        let other = DeclarationSet::of(vec![os_update_configuration(&update(1, "15.1"))]);
        assert_ne!(a.token(), other.token());
        let mut built = update(1, "14.7");
        built.target_build_version = Some("23H124".into());
        assert_ne!(
            a.token(),
            DeclarationSet::of(vec![os_update_configuration(&built)]).token()
        );
        // Order does not matter; a second configuration does.
        let two = DeclarationSet::of(vec![
            os_update_configuration(&update(1, "14.7")),
            os_update_configuration(&update(2, "15.1")),
        ]);
        let two_reversed = DeclarationSet::of(vec![
            os_update_configuration(&update(2, "15.1")),
            os_update_configuration(&update(1, "14.7")),
        ]);
        assert_eq!(two.token(), two_reversed.token());
        assert_ne!(two.token(), a.token());
        assert_ne!(a.token(), DeclarationSet::default().token());
    }

    #[test]
    fn kinds_round_trip_their_path() {
        for k in [
            Kind::Activation,
            Kind::Asset,
            Kind::Configuration,
            Kind::Management,
        ] {
            assert_eq!(Kind::from_path(k.path()), Some(k));
        }
        assert_eq!(Kind::from_path("configurations"), None);
    }
}
