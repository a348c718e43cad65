//! The simulated Mac's Declarative Device Management client, as macOS runs it (Apple,
//! `declarative/protocol/`; the errata's wave-2 note): on a `DeclarativeManagement` command it
//! acknowledges, then syncs over `DeclarativeManagement` check-ins — `tokens`, and when the
//! `DeclarationsToken` differs from the one it holds, `declaration-items`, each new or changed
//! declaration (`declaration/<kind>/<identifier>`), dropping those no longer listed — and sends
//! a status report (`status`). It keeps what it installed, applies a configuration only when an
//! installed activation lists it (`StandardConfigurations`), and runs a software update the
//! way `softwareupdate.*` status items describe it. Later reports carry only what changed.

use crate::managed_mac::ManagedMac;
use crate::sim_mac::{CHECKIN_CONTENT_TYPE, Reply, SimMac};
use plist::Value as Plist;
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::ddm_state::DdmState;

pub const OS_UPDATE_TYPE: &str = "com.apple.configuration.softwareupdate.enforcement.specific";

fn cmp_versions(a: &str, b: &str) -> Ordering {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (mut x, mut y) = (parse(a), parse(b));
    let n = x.len().max(y.len());
    x.resize(n, 0);
    y.resize(n, 0);
    x.cmp(&y)
}

impl ManagedMac {
    /// One `DeclarativeManagement` check-in.
    pub async fn ddm_request(&self, endpoint: &str, data: Option<Vec<u8>>) -> Reply {
        let mut d = SimMac::dict(&[
            ("MessageType", Plist::String("DeclarativeManagement".into())),
            ("UDID", Plist::String(self.mac.udid.clone())),
            ("Endpoint", Plist::String(endpoint.into())),
        ]);
        if let Some(data) = data {
            d.insert("Data".into(), Plist::Data(data));
        }
        self.mac
            .put("/mdm/checkin", CHECKIN_CONTENT_TYPE, &SimMac::to_xml(&d))
            .await
    }

    async fn ddm_json(&self, endpoint: &str) -> Value {
        let r = self.ddm_request(endpoint, None).await;
        assert_eq!(
            r.status,
            200,
            "{endpoint}: {}",
            String::from_utf8_lossy(&r.body)
        );
        serde_json::from_slice(&r.body).expect("a JSON answer")
    }

    /// A `DeclarativeManagement` command: macOS keeps its `SyncTokens` and syncs after
    /// acknowledging.
    pub(crate) fn ddm_command(&mut self, command: &plist::Dictionary) {
        let data = command.get("Data").and_then(Plist::as_data).unwrap_or(&[]);
        let tokens: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
        self.ddm.commands.push(tokens.clone());
        self.ddm.sync_due = Some(tokens);
    }

    /// Run the sync a `DeclarativeManagement` command asked for, if any.
    pub(crate) async fn ddm_sync_if_due(&mut self) {
        if self.ddm.sync_due.take().is_some() {
            self.ddm_sync().await;
        }
    }

    /// The DDM sync: `tokens`; if the token differs, `declaration-items` and the declarations
    /// that changed; then a status report. Whether anything was fetched.
    pub async fn ddm_sync(&mut self) -> bool {
        let tokens = self.ddm_json("tokens").await;
        let token = tokens["SyncTokens"]["DeclarationsToken"]
            .as_str()
            .expect("SyncTokens.DeclarationsToken")
            .to_string();
        assert!(
            tokens["SyncTokens"]["Timestamp"].is_string(),
            "SyncTokens.Timestamp: {tokens}"
        );
        if self.ddm.token.as_deref() == Some(token.as_str()) {
            return false;
        }
        let items = self.ddm_json("declaration-items").await;
        self.ddm.item_fetches += 1;
        let mut listed = BTreeSet::new();
        for (key, path) in [
            ("Activations", "activation"),
            ("Assets", "asset"),
            ("Configurations", "configuration"),
            ("Management", "management"),
        ] {
            let list = items["Declarations"][key]
                .as_array()
                .unwrap_or_else(|| panic!("Declarations.{key} is required: {items}"));
            for item in list {
                let id = item["Identifier"].as_str().expect("Identifier").to_string();
                let server_token = item["ServerToken"].as_str().expect("ServerToken");
                listed.insert(id.clone());
                let have = self.ddm.declarations.get(&id);
                if have.and_then(|d| d["ServerToken"].as_str()) == Some(server_token) {
                    continue;
                }
                let d = self.ddm_json(&format!("declaration/{path}/{id}")).await;
                self.ddm.declaration_fetches += 1;
                assert_eq!(d["Identifier"], json!(id), "{d}");
                assert_eq!(d["ServerToken"], json!(server_token), "{d}");
                assert!(d["Type"].is_string() && d["Payload"].is_object(), "{d}");
                self.ddm.declarations.insert(id, d);
            }
        }
        self.ddm.declarations.retain(|id, _| listed.contains(id));
        self.ddm.token = Some(
            items["DeclarationsToken"]
                .as_str()
                .expect("DeclarationsToken")
                .to_string(),
        );
        // A new target starts a download; none left ends what was going on.
        match self.enforced_update() {
            Some((target, _)) if cmp_versions(&target, &self.os_version) == Ordering::Greater => {
                if matches!(self.ddm.install_state.as_str(), "" | "none") {
                    self.ddm.install_state = "downloading".into();
                }
            }
            _ => self.ddm.install_state = "none".into(),
        }
        let report = self.full_status();
        self.ddm_report(report).await;
        true
    }

    /// Whether an installed activation lists the configuration (only then is it applied).
    pub fn ddm_active(&self, identifier: &str) -> bool {
        !self.ddm.refuse.contains(identifier)
            && self.ddm.declarations.values().any(|d| {
                d["Type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("com.apple.activation."))
                    && d["Payload"]["StandardConfigurations"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|c| c == identifier))
            })
    }

    /// The OS update an active configuration enforces: (target version, deadline). With
    /// several, macOS takes the lowest version (the one due first).
    pub fn enforced_update(&self) -> Option<(String, String)> {
        self.ddm
            .declarations
            .iter()
            .filter(|(id, d)| d["Type"] == json!(OS_UPDATE_TYPE) && self.ddm_active(id))
            .filter_map(|(_, d)| {
                Some((
                    d["Payload"]["TargetOSVersion"].as_str()?.to_string(),
                    d["Payload"]["TargetLocalDateTime"].as_str()?.to_string(),
                ))
            })
            .min_by(|a, b| cmp_versions(&a.0, &b.0))
    }

    fn software_update_items(&self) -> Value {
        let mut su = json!({"install-state": self.ddm.install_state});
        if let Some((target, _)) = self.enforced_update()
            && cmp_versions(&target, &self.os_version) == Ordering::Greater
        {
            su["pending-version"] = json!({"os-version": target, "build-version": "unknown"});
        }
        if let Some(reason) = &self.ddm.failure_reason {
            su["failure-reason"] =
                json!({"count": 1, "reason": reason, "timestamp": "2026-12-04T20:00:00Z"});
        }
        su
    }

    /// Everything the Mac reports (what a first or safety-sync report carries).
    pub fn full_status(&self) -> Value {
        let mut by_kind: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (id, d) in &self.ddm.declarations {
            let t = d["Type"].as_str().unwrap_or("");
            let kind = if t.starts_with("com.apple.activation.") {
                "activations"
            } else if t.starts_with("com.apple.asset.") {
                "assets"
            } else if t.starts_with("com.apple.management.") {
                "management"
            } else {
                "configurations"
            };
            let refused = self.ddm.refuse.contains(id);
            let active = if kind == "activations" {
                !refused
            } else {
                self.ddm_active(id)
            };
            let mut state = json!({
                "identifier": id,
                "server-token": d["ServerToken"],
                "active": active,
                "valid": if refused { "invalid" } else { "valid" },
            });
            if refused {
                state["reasons"] = json!([{"code": "Error.ConfigurationCannotBeApplied",
                    "description": "The configuration cannot be applied."}]);
            }
            by_kind.entry(kind).or_default().push(state);
        }
        json!({
            "StatusItems": {
                "device": {"operating-system": {
                    "version": self.os_version, "build-version": self.build_version}},
                "softwareupdate": self.software_update_items(),
                "management": {"declarations": by_kind},
            },
            "Errors": [],
        })
    }

    /// Send a status report (full or partial), asserting it was taken.
    pub async fn ddm_report(&mut self, report: Value) {
        let r = self
            .ddm_request("status", Some(report.to_string().into_bytes()))
            .await;
        assert_eq!(
            r.status,
            200,
            "status report: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    /// The update moves on (`installing`, `prepared`, `failed` with a reason): the Mac
    /// reports only the software update items, as macOS does for a change.
    pub async fn ddm_update_progress(&mut self, install_state: &str, failure: Option<&str>) {
        self.ddm.install_state = install_state.into();
        self.ddm.failure_reason = failure.map(str::to_string);
        let report = json!({
            "StatusItems": {"softwareupdate": self.software_update_items()},
            "Errors": [],
        });
        self.ddm_report(report).await;
    }

    /// The update installed: the Mac restarts on the target and reports its new version.
    pub async fn ddm_update_installed(&mut self, build: &str) {
        if let Some((target, _)) = self.enforced_update() {
            self.os_version = target;
        }
        self.build_version = build.into();
        self.ddm.install_state = "none".into();
        self.ddm.failure_reason = None;
        let report = json!({
            "StatusItems": {
                "device": {"operating-system": {
                    "version": self.os_version, "build-version": self.build_version}},
                "softwareupdate": self.software_update_items(),
            },
            "Errors": [],
        });
        self.ddm_report(report).await;
    }
}
