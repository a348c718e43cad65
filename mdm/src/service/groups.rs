//! Groups (device collections; contract v2, "Groups"). A **static** group lists its members,
//! named by UDID or serial number; a **smart** group's members are the devices its filter
//! matches (`crate::filter`), evaluated whenever it is read, so it follows the facts Macs
//! report. A device may be in many groups. Every wave-2 feature assigns to groups, so they
//! belong to the core; the rules are here and every change is audited here.
//!
//! - A device is named by UDID or serial (errata, "Wave 2"). A UDID of a known device is kept
//!   as a UDID; a serial (of a known device, or one Russet knows only from DEP) as a serial,
//!   which follows the Mac through re-enrollment under a new UDID and names it as soon as a
//!   Mac with it enrolls. A list with any unknown name is refused whole.
//! - A smart group has no static members. A static group with members cannot become smart
//!   (its members would vanish silently); a smart group may become static (empty).
//! - Deleting a group removes its members; what features assigned to it goes with it (they
//!   hear of it through `devices_changed`).
//! - Observers hear `DeviceChange::Membership` for the devices whose membership changed.

use super::facts::stored_filter;
use super::{DeviceChange, MdmService, ServiceError};
use crate::filter::Filter;
use crate::store::groups::{GroupRecord, MemberKind, MemberRow};
use crate::timefmt::now_ms;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Up to this many devices, [`MdmService::memberships`] looks each one up.
const FEW_DEVICES: usize = 20;
/// Devices named in one add or remove.
pub const MAX_DEVICES_PER_CALL: usize = 1000;
/// Characters a group name may hold besides letters and digits (any script).
const NAME_PUNCTUATION: &str = " -_.,()&+'";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Static,
    Smart,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Static => "static",
            GroupKind::Smart => "smart",
        }
    }
}

/// A group with how many members it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub record: GroupRecord,
    pub member_count: usize,
}

impl GroupInfo {
    pub fn kind(&self) -> GroupKind {
        if self.record.filter.is_some() {
            GroupKind::Smart
        } else {
            GroupKind::Static
        }
    }
}

/// One member: a device, or (static groups) a UDID or serial that names no device yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub udid: Option<String>,
    pub serial: Option<String>,
    pub device_name: Option<String>,
    /// No device has this UDID or serial yet (a serial known only from DEP joins when its
    /// Mac enrolls).
    pub pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDetails {
    pub info: GroupInfo,
    pub members: Vec<GroupMember>,
}

impl GroupDetails {
    /// UDIDs of the member devices (not of members that name no device yet).
    fn device_ids(&self) -> BTreeSet<String> {
        self.members
            .iter()
            .filter(|m| !m.pending)
            .filter_map(|m| m.udid.clone())
            .collect()
    }
}

/// `POST /api/v1/groups`.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
    /// A filter makes a smart group.
    pub filter: Option<String>,
}

/// `PATCH /api/v1/groups/{name}`: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct GroupChange {
    pub description: Option<Option<String>>,
    pub filter: Option<Option<String>>,
}

/// What an add or remove did.
#[derive(Debug, Clone)]
pub struct MembershipChange {
    pub details: GroupDetails,
    /// The names given that were added (removed).
    pub changed: Vec<String>,
    /// The names given that were members already (were not members).
    pub unchanged: Vec<String>,
}

/// A group name: 1 to 64 letters, digits, spaces and ` - _ . , ( ) & + '`, without leading
/// or trailing spaces. Also checked by DEP profiles that name a group.
pub fn check_name(name: &str) -> Result<(), ServiceError> {
    let bad = |why: &str| {
        Err(ServiceError::BadRequest(format!(
            "group name {name:?}: {why}"
        )))
    };
    if name.trim().is_empty() {
        return bad("a group needs a name");
    }
    if name.trim() != name {
        return bad("no leading or trailing spaces");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad(&format!("at most {MAX_NAME_CHARS} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || NAME_PUNCTUATION.contains(c))
    {
        return bad(&format!(
            "letters, digits, spaces and {} only",
            NAME_PUNCTUATION.trim()
        ));
    }
    Ok(())
}

fn description(d: Option<String>) -> Result<Option<String>, ServiceError> {
    let d = d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if d.as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        return Err(ServiceError::BadRequest(format!(
            "a description has at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(d)
}

/// A smart group's filter given by an admin, checked (400 pointing at the term) and kept as
/// given. It may not name groups: a group's members would then depend on other groups', and
/// a change of one would have to ripple through the others.
fn filter_text(text: &str) -> Result<String, ServiceError> {
    let filter = Filter::parse(text)?;
    if filter.names("group") {
        return Err(ServiceError::BadRequest(
            "a smart group's filter cannot use the field group (membership of one group \
             cannot depend on another's); search with it instead"
                .into(),
        ));
    }
    Ok(filter.text().to_owned())
}

pub(super) fn smart_has_no_static_members(name: &str) -> ServiceError {
    ServiceError::Conflict(format!(
        "{name} is a smart group: its members are the devices its filter matches; devices \
         cannot be added to or removed from it (change its filter instead)"
    ))
}

/// A static group's members: each device once (by UDID and by serial alike), then the
/// members that name no device yet.
pub(super) fn static_members(rows: &[MemberRow]) -> Vec<GroupMember> {
    let mut devices = BTreeMap::new();
    let mut pending = Vec::new();
    for r in rows {
        match &r.device {
            Some(d) => {
                devices
                    .entry(d.udid.clone())
                    .or_insert_with(|| GroupMember {
                        udid: Some(d.udid.clone()),
                        serial: d.serial_number.clone(),
                        device_name: d.device_name.clone(),
                        pending: false,
                    });
            }
            None => pending.push(GroupMember {
                udid: (r.key.kind == MemberKind::Udid).then(|| r.key.value.clone()),
                serial: (r.key.kind == MemberKind::Serial).then(|| r.key.value.clone()),
                device_name: None,
                pending: true,
            }),
        }
    }
    devices.into_values().chain(pending).collect()
}

pub(super) fn device_ids(rows: &[MemberRow]) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|r| r.device.as_ref().map(|d| d.udid.clone()))
        .collect()
}

impl MdmService {
    pub(super) async fn group_record(&self, name: &str) -> Result<GroupRecord, ServiceError> {
        self.store
            .group(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no group {name}")))
    }

    /// A group with its members (a smart group's: the devices its filter matches now).
    async fn details(&self, record: GroupRecord) -> Result<GroupDetails, ServiceError> {
        let members = match &record.filter {
            None => static_members(&self.store.group_members(&record.name).await?),
            Some(text) => self
                .matching(&stored_filter(text)?)
                .await?
                .into_iter()
                .map(|f| GroupMember {
                    udid: Some(f.udid),
                    serial: f.serial_number,
                    device_name: f.device_name,
                    pending: false,
                })
                .collect(),
        };
        Ok(GroupDetails {
            info: GroupInfo {
                member_count: members.len(),
                record,
            },
            members,
        })
    }

    /// Every group with its member count. Smart groups are counted in one pass over the
    /// devices, however many there are.
    pub async fn groups(&self) -> Result<Vec<GroupInfo>, ServiceError> {
        let rows = self.store.groups().await?;
        let mut smart = Vec::new();
        for (i, (g, _)) in rows.iter().enumerate() {
            if let Some(text) = &g.filter {
                smart.push((i, stored_filter(text)?, 0usize));
            }
        }
        if !smart.is_empty() {
            let filters: Vec<&Filter> = smart.iter().map(|(_, f, _)| f).collect();
            let lookups = self.lookups(&filters, None).await?;
            // Many filters at once: the database checks none of them (see `facts::conditions`).
            self.scan_facts(None, &[], |f| {
                let f = lookups.on(&f);
                for (_, filter, n) in smart.iter_mut() {
                    if filter.matches(&f) {
                        *n += 1;
                    }
                }
                true
            })
            .await?;
        }
        let smart: HashMap<usize, usize> = smart.into_iter().map(|(i, _, n)| (i, n)).collect();
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(i, (record, n))| GroupInfo {
                member_count: smart
                    .get(&i)
                    .copied()
                    .unwrap_or_else(|| usize::try_from(n).unwrap_or(0)),
                record,
            })
            .collect())
    }

    /// One group with its members.
    pub async fn group(&self, name: &str) -> Result<GroupDetails, ServiceError> {
        let record = self.group_record(name).await?;
        self.details(record).await
    }

    /// UDIDs of the devices in a group now (what features assign to).
    pub async fn group_devices(&self, name: &str) -> Result<Vec<String>, ServiceError> {
        Ok(self.group(name).await?.device_ids().into_iter().collect())
    }

    /// Names of the groups a device is in, by name.
    pub async fn groups_of_device(&self, udid: &str) -> Result<Vec<String>, ServiceError> {
        let facts = self
            .store
            .device_facts_of(udid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {udid}")))?;
        let mut names: BTreeSet<String> = self
            .store
            .static_groups_of(udid, facts.serial_number.as_deref())
            .await?
            .into_iter()
            .collect();
        let within = std::slice::from_ref(&facts.udid);
        for g in self.store.smart_groups().await? {
            if let Some(text) = &g.filter {
                let filter = stored_filter(text)?;
                let lookups = self.lookups(&[&filter], Some(within)).await?;
                if filter.matches(&lookups.on(&facts)) {
                    names.insert(g.name);
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// For each of these devices (by UDID), which of `groups` it is in: what features that
    /// assign to groups ask. A few devices are looked up one by one; many in bulk — their
    /// facts and the static member rows naming them, a query per 500 devices, and every smart
    /// group's filter over those facts. Unknown devices and groups are left out.
    pub async fn memberships(
        &self,
        udids: &[String],
        groups: &BTreeSet<String>,
    ) -> Result<HashMap<String, BTreeSet<String>>, ServiceError> {
        let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
        if groups.is_empty() || udids.is_empty() {
            return Ok(out);
        }
        if udids.len() <= FEW_DEVICES {
            for udid in udids {
                match self.groups_of_device(udid).await {
                    Ok(names) => {
                        let mine: BTreeSet<String> =
                            names.into_iter().filter(|g| groups.contains(g)).collect();
                        out.insert(udid.clone(), mine);
                    }
                    Err(ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(out);
        }
        self.memberships_in_bulk(udids, groups).await
    }

    /// Which groups each of these devices (by UDID) is in, every group considered: the
    /// console's device list shows a page of devices with their groups in a few queries, not
    /// one per row.
    pub async fn groups_of_devices(
        &self,
        udids: &[String],
    ) -> Result<HashMap<String, BTreeSet<String>>, ServiceError> {
        let groups: BTreeSet<String> = self
            .store
            .groups()
            .await?
            .into_iter()
            .map(|(g, _)| g.name)
            .collect();
        if groups.is_empty() || udids.is_empty() {
            return Ok(HashMap::new());
        }
        self.memberships_in_bulk(udids, &groups).await
    }

    /// [`Self::memberships`] for many devices: their facts and the static member rows naming
    /// them, a query per 500 devices, and every smart group's filter over those facts.
    async fn memberships_in_bulk(
        &self,
        udids: &[String],
        groups: &BTreeSet<String>,
    ) -> Result<HashMap<String, BTreeSet<String>>, ServiceError> {
        let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
        // Only these devices' rows are read: a batch of a large fleet costs its own size, not
        // the size of the groups or of the fleet.
        let facts = self.store.device_facts_of_many(udids).await?;
        let mut by_serial: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut values: Vec<String> = Vec::with_capacity(facts.len() * 2);
        for f in &facts {
            values.push(f.udid.clone());
            if let Some(serial) = &f.serial_number {
                by_serial.entry(serial).or_default().push(&f.udid);
                values.push(serial.clone());
            }
        }
        let known: BTreeSet<&str> = facts.iter().map(|f| f.udid.as_str()).collect();
        for (group, kind, value) in self.store.static_members_naming(&values).await? {
            if !groups.contains(&group) {
                continue;
            }
            let named: Vec<&str> = match kind {
                MemberKind::Udid if known.contains(value.as_str()) => vec![value.as_str()],
                MemberKind::Udid => Vec::new(),
                MemberKind::Serial => by_serial.get(value.as_str()).cloned().unwrap_or_default(),
            };
            for udid in named {
                out.entry(udid.to_string())
                    .or_default()
                    .insert(group.clone());
            }
        }
        let mut smart: Vec<(String, Filter)> = Vec::new();
        for name in groups {
            if let Some(record) = self.store.group(name).await?
                && let Some(text) = &record.filter
            {
                smart.push((record.name.clone(), stored_filter(text)?));
            }
        }
        let filters: Vec<&Filter> = smart.iter().map(|(_, f)| f).collect();
        let ids: Vec<String> = facts.iter().map(|f| f.udid.clone()).collect();
        let lookups = self.lookups(&filters, Some(&ids)).await?;
        for f in &facts {
            let on = lookups.on(f);
            for (name, filter) in &smart {
                if filter.matches(&on) {
                    out.entry(f.udid.clone()).or_default().insert(name.clone());
                }
            }
        }
        Ok(out)
    }

    /// A new group (smart when it has a filter); audited. Names are unique regardless of case.
    pub async fn create_group(
        &self,
        new: NewGroup,
        actor: &str,
    ) -> Result<GroupDetails, ServiceError> {
        check_name(&new.name)?;
        let filter = new.filter.as_deref().map(filter_text).transpose()?;
        let now = now_ms();
        let record = GroupRecord {
            name: new.name,
            description: description(new.description)?,
            filter,
            created_at: now,
            updated_at: now,
        };
        if !self.store.insert_group(&record).await? {
            return Err(ServiceError::Conflict(format!(
                "a group named {} exists (names are unique regardless of case)",
                record.name
            )));
        }
        let details = self.details(record).await?;
        let joined: Vec<String> = details.device_ids().into_iter().collect();
        self.devices_changed(&joined, DeviceChange::Membership)
            .await;
        let r = &details.info.record;
        self.audit(
            actor,
            "group.create",
            &r.name,
            json!({
                "kind": details.info.kind().as_str(),
                "description": r.description,
                "filter": r.filter,
            }),
        )
        .await?;
        Ok(details)
    }

    /// Change a group's description or filter; audited. A static group with members cannot
    /// become smart; the devices whose membership changes with a new filter are announced.
    pub async fn update_group(
        &self,
        name: &str,
        change: GroupChange,
        actor: &str,
    ) -> Result<GroupDetails, ServiceError> {
        let old = self.group_record(name).await?;
        let description = match change.description {
            None => old.description.clone(),
            Some(d) => description(d)?,
        };
        let filter = match change.filter {
            None => old.filter.clone(),
            Some(None) => None,
            Some(Some(text)) => Some(filter_text(&text)?),
        };
        if old.filter.is_none() && filter.is_some() {
            let members = static_members(&self.store.group_members(name).await?);
            if !members.is_empty() {
                return Err(ServiceError::Conflict(format!(
                    "{name} is a static group with {} members: remove them before giving it a \
                     filter, or create a smart group",
                    members.len()
                )));
            }
        }
        let filter_changed = filter != old.filter;
        let before = if filter_changed {
            self.details(old.clone()).await?.device_ids()
        } else {
            BTreeSet::new()
        };
        let record = GroupRecord {
            description,
            filter,
            updated_at: now_ms(),
            ..old.clone()
        };
        if !self.store.update_group(&record).await? {
            return Err(ServiceError::NotFound(format!("no group {name}")));
        }
        let details = self.details(record).await?;
        if filter_changed {
            // Only the devices that joined or left: the others' groups did not change.
            let moved: Vec<String> = before
                .symmetric_difference(&details.device_ids())
                .cloned()
                .collect();
            self.devices_changed(&moved, DeviceChange::Membership).await;
        }
        let r = &details.info.record;
        self.audit(
            actor,
            "group.update",
            name,
            json!({
                "description": r.description,
                "filter": r.filter,
                "previous_filter": old.filter,
            }),
        )
        .await?;
        Ok(details)
    }

    /// Delete a group and its members; audited. Its former members are announced, so the
    /// features that assigned something to the group take it away.
    pub async fn delete_group(&self, name: &str, actor: &str) -> Result<(), ServiceError> {
        let details = self.group(name).await?;
        if !self.store.delete_group(name).await? {
            return Err(ServiceError::NotFound(format!("no group {name}")));
        }
        let former: Vec<String> = details.device_ids().into_iter().collect();
        // What features assigned to the group goes with it, then its Macs converge.
        for o in self.observers(|_| true) {
            o.group_deleted(name, actor).await;
        }
        self.devices_changed(&former, DeviceChange::Membership)
            .await;
        self.audit(
            actor,
            "group.delete",
            name,
            json!({
                "kind": details.info.kind().as_str(),
                "filter": details.info.record.filter,
                "members": details.info.member_count,
            }),
        )
        .await
    }
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
