//! Static members of groups: devices named by UDID or serial number, added and removed by
//! admins, and the ADE "site assignment" (a Mac joins its DEP profile's group when it
//! enrolls). The rules of groups themselves are in `groups`.

use super::groups::{
    GroupDetails, GroupInfo, MAX_DEVICES_PER_CALL, MembershipChange, device_ids,
    smart_has_no_static_members, static_members,
};
use super::{DeviceChange, MdmService, ServiceError};
use crate::store::groups::{GroupRecord, MemberKey, MemberRow};
use crate::timefmt::now_ms;
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// Longest UDID or serial number accepted as a device name.
const MAX_DEVICE_NAME: usize = 128;

/// The devices named in an add or remove: trimmed, duplicates dropped, each a plausible
/// UDID or serial.
fn device_names(devices: &[String]) -> Result<Vec<String>, ServiceError> {
    if devices.is_empty() {
        return Err(ServiceError::BadRequest(
            "name at least one device (UDID or serial number) in \"devices\"".into(),
        ));
    }
    if devices.len() > MAX_DEVICES_PER_CALL {
        return Err(ServiceError::BadRequest(format!(
            "at most {MAX_DEVICES_PER_CALL} devices per request"
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for d in devices {
        let d = d.trim();
        if d.is_empty()
            || d.len() > MAX_DEVICE_NAME
            || d.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ServiceError::BadRequest(format!(
                "{d:?} is not a UDID or serial number"
            )));
        }
        if seen.insert(d.to_owned()) {
            out.push(d.to_owned());
        }
    }
    Ok(out)
}

/// What a name given by an admin stands for.
enum Named {
    /// A known device's UDID.
    Device(String),
    /// A serial number, with the devices that have it (none: known from DEP only).
    Serial {
        serial: String,
        devices: Vec<String>,
    },
    Unknown,
}

impl MdmService {
    /// What each name stands for: a known device's UDID first, then a serial number of
    /// known devices or of a DEP record.
    async fn resolve(&self, names: &[String]) -> Result<Vec<(String, Named)>, ServiceError> {
        let known = self.store.devices_named(names).await?;
        let udids: HashSet<&str> = known.iter().map(|(u, _)| u.as_str()).collect();
        let mut by_serial: HashMap<&str, Vec<String>> = HashMap::new();
        for (udid, serial) in &known {
            if let Some(s) = serial {
                by_serial.entry(s.as_str()).or_default().push(udid.clone());
            }
        }
        let rest: Vec<String> = names
            .iter()
            .filter(|n| !udids.contains(n.as_str()) && !by_serial.contains_key(n.as_str()))
            .cloned()
            .collect();
        let dep: HashSet<String> = if rest.is_empty() {
            HashSet::new()
        } else {
            self.store
                .dep_known_serials(&rest)
                .await?
                .into_iter()
                .collect()
        };
        Ok(names
            .iter()
            .map(|n| {
                let named = if udids.contains(n.as_str()) {
                    Named::Device(n.clone())
                } else if let Some(devices) = by_serial.get(n.as_str()) {
                    Named::Serial {
                        serial: n.clone(),
                        devices: devices.clone(),
                    }
                } else if dep.contains(n) {
                    Named::Serial {
                        serial: n.clone(),
                        devices: Vec::new(),
                    }
                } else {
                    Named::Unknown
                };
                (n.clone(), named)
            })
            .collect())
    }

    /// A static group that exists, or the refusal.
    async fn static_group(&self, name: &str) -> Result<GroupRecord, ServiceError> {
        let record = self.group_record(name).await?;
        if record.filter.is_some() {
            return Err(smart_has_no_static_members(name));
        }
        Ok(record)
    }

    /// The members' change made, announced, and audited unless nothing changed (`detail`
    /// `None`): `before` is the static member rows before it.
    async fn membership_changed(
        &self,
        record: GroupRecord,
        before: &[MemberRow],
        action: &str,
        actor: &str,
        detail: Option<serde_json::Value>,
    ) -> Result<GroupDetails, ServiceError> {
        let after = self.store.group_members(&record.name).await?;
        let moved: Vec<String> = device_ids(before)
            .symmetric_difference(&device_ids(&after))
            .cloned()
            .collect();
        self.devices_changed(&moved, DeviceChange::Membership).await;
        if let Some(detail) = detail {
            self.audit(actor, action, &record.name, detail).await?;
        }
        let members = static_members(&after);
        Ok(GroupDetails {
            info: GroupInfo {
                member_count: members.len(),
                record,
            },
            members,
        })
    }

    /// Add devices (UDIDs or serial numbers) to a static group; audited when any joins. Every
    /// name must be a known device or a serial Russet knows from DEP, or nothing is added.
    pub async fn add_group_devices(
        &self,
        name: &str,
        devices: &[String],
        actor: &str,
    ) -> Result<MembershipChange, ServiceError> {
        let record = self.static_group(name).await?;
        let names = device_names(devices)?;
        let resolved = self.resolve(&names).await?;
        let unknown: Vec<&str> = resolved
            .iter()
            .filter(|(_, n)| matches!(n, Named::Unknown))
            .map(|(n, _)| n.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "no device or DEP record has the UDID or serial number {} (nothing was added)",
                unknown.join(", ")
            )));
        }
        let before = self.store.group_members(name).await?;
        // A device is a member once, however it is named (its UDID and its serial in one
        // list included).
        let mut members = device_ids(&before);
        let before_keys: HashSet<&MemberKey> = before.iter().map(|r| &r.key).collect();
        let (mut keys, mut added, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
        for (given, named) in resolved {
            let (key, devices) = match named {
                Named::Device(udid) => (MemberKey::udid(&udid), vec![udid]),
                Named::Serial { serial, devices } => (MemberKey::serial(&serial), devices),
                Named::Unknown => continue,
            };
            if before_keys.contains(&key) || devices.iter().any(|d| members.contains(d)) {
                unchanged.push(given);
            } else {
                members.extend(devices);
                keys.push(key);
                added.push(given);
            }
        }
        if !keys.is_empty() && !self.store.add_group_members(name, &keys, now_ms()).await? {
            return Err(ServiceError::NotFound(format!("no group {name}")));
        }
        let detail = (!added.is_empty()).then(|| json!({"added": added, "unchanged": unchanged}));
        let details = self
            .membership_changed(record, &before, "group.devices.add", actor, detail)
            .await?;
        Ok(MembershipChange {
            details,
            changed: added,
            unchanged,
        })
    }

    /// Remove devices (UDIDs or serial numbers) from a static group; audited when any leaves.
    /// A device leaves whether it was added by UDID or by serial. A name that is neither a
    /// member nor known is refused, and then nothing is removed.
    pub async fn remove_group_devices(
        &self,
        name: &str,
        devices: &[String],
        actor: &str,
    ) -> Result<MembershipChange, ServiceError> {
        let record = self.static_group(name).await?;
        let names = device_names(devices)?;
        let before = self.store.group_members(name).await?;
        let before_keys: HashSet<&MemberKey> = before.iter().map(|r| &r.key).collect();
        let known = self.store.devices_named(&names).await?;
        let (mut keys, mut removed, mut not_members, mut unknown) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for given in &names {
            // The device(s) it names: by UDID first, else by serial.
            let by_udid: Vec<&(String, Option<String>)> =
                known.iter().filter(|(u, _)| u == given).collect();
            let devices = if by_udid.is_empty() {
                known
                    .iter()
                    .filter(|(_, s)| s.as_ref() == Some(given))
                    .collect()
            } else {
                by_udid
            };
            // Members that stand for it: the name itself (also when it names no device yet),
            // and each device's UDID and serial.
            let mut candidates = vec![MemberKey::udid(given), MemberKey::serial(given)];
            for (udid, serial) in &devices {
                candidates.push(MemberKey::udid(udid));
                if let Some(s) = serial {
                    candidates.push(MemberKey::serial(s));
                }
            }
            let present: Vec<MemberKey> = candidates
                .into_iter()
                .filter(|k| before_keys.contains(k))
                .collect();
            if !present.is_empty() {
                keys.extend(present);
                removed.push(given.clone());
            } else if !devices.is_empty() {
                not_members.push(given.clone());
            } else {
                unknown.push(given.clone());
            }
        }
        if !unknown.is_empty() {
            // Known from DEP only and not a member: not a member, not unknown.
            let dep: HashSet<String> = self
                .store
                .dep_known_serials(&unknown)
                .await?
                .into_iter()
                .collect();
            let (dep_only, missing): (Vec<String>, Vec<String>) =
                unknown.into_iter().partition(|n| dep.contains(n));
            if !missing.is_empty() {
                return Err(ServiceError::NotFound(format!(
                    "{} {} no member of {name}, no device and no DEP record (nothing was removed)",
                    missing.join(", "),
                    if missing.len() == 1 { "is" } else { "are" }
                )));
            }
            not_members.extend(dep_only);
        }
        keys.sort();
        keys.dedup();
        if !keys.is_empty() {
            self.store.remove_group_members(name, &keys).await?;
        }
        let detail =
            (!removed.is_empty()).then(|| json!({"removed": removed, "not_members": not_members}));
        let details = self
            .membership_changed(record, &before, "group.devices.remove", actor, detail)
            .await?;
        Ok(MembershipChange {
            details,
            changed: removed,
            unchanged: not_members,
        })
    }

    /// ADE "site assignment": a Mac enrolling through a DEP profile that names a group joins
    /// it, by serial number (a static member, pending until the Mac authenticates). Audited
    /// with the actor `ade`. A group that is gone or has become smart is skipped with a
    /// warning: an enrollment never fails over a group.
    pub(crate) async fn join_group_by_serial(
        &self,
        group: &str,
        serial: &str,
        udid: &str,
        dep_profile: &str,
    ) -> Result<(), ServiceError> {
        let Some(record) = self.store.group(group).await? else {
            tracing::warn!(
                group,
                serial,
                dep_profile,
                "the DEP profile's group is gone; the Mac joins none"
            );
            return Ok(());
        };
        if record.filter.is_some() {
            tracing::warn!(
                group,
                serial,
                dep_profile,
                "the DEP profile's group is smart now; the Mac joins it only if the filter matches"
            );
            return Ok(());
        }
        let before = self.store.group_members(group).await?;
        let key = MemberKey::serial(serial);
        let member = before.iter().any(|r| {
            r.key == key
                || r.device
                    .as_ref()
                    .is_some_and(|d| d.serial_number.as_deref() == Some(serial) || d.udid == udid)
        });
        if member {
            return Ok(());
        }
        if !self
            .store
            .add_group_members(group, std::slice::from_ref(&key), now_ms())
            .await?
        {
            return Ok(());
        }
        tracing::info!(
            group,
            serial,
            dep_profile,
            "ADE: the Mac joins its DEP profile's group"
        );
        let detail = json!({"added": [serial], "udid": udid, "dep_profile": dep_profile});
        self.membership_changed(record, &before, "group.devices.add", "ade", Some(detail))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_trimmed_deduplicated_and_checked() {
        let names = device_names(&[" C02A ".into(), "C02A".into(), "UDID-1".into()]).unwrap();
        assert_eq!(names, ["C02A", "UDID-1"]);
        assert!(device_names(&[]).is_err());
        assert!(device_names(&["two words".into()]).is_err());
        assert!(device_names(&[" ".into()]).is_err());
        assert!(device_names(&vec!["x".to_string(); MAX_DEVICES_PER_CALL + 1]).is_err());
    }
}
