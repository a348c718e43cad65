//! Devices as the filter language sees them (`crate::filter`), and filters evaluated over the
//! fleet: device search (`GET /api/v1/devices?filter=`) and smart groups. Evaluated in Rust
//! over lean rows read a page at a time, when an admin asks: nothing is computed per check-in.
//! The many-valued fields (`group`, `console_user`) are looked up first, one query per term
//! ([`Lookups`]); `app` terms go into the scan's page query (`EXISTS` on the indexed
//! `inventory_apps`, [`FactCondition::App`]), so a scan never reads a Mac's apps nor every
//! Mac that has one.

use super::devices::DevicePage;
use super::{MdmService, ServiceError};
use crate::filter::{Answer, Fact, Facts, Filter, Op, Term, Value};
use crate::store::DeviceFilter;
use crate::store::groups::{DeviceFactsRow, FactCondition};
use crate::store::inventory::{AppQuery, UserQuery};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Devices read per query when a filter runs over all of them.
const SCAN_PAGE: u32 = 1000;

impl Facts for DeviceFactsRow {
    fn fact(&self, field: &str) -> Fact<'_> {
        fn text(v: &Option<String>) -> Fact<'_> {
            v.as_deref()
                .map_or(Fact::Missing, |s| Fact::Text(Cow::Borrowed(s)))
        }
        match field {
            "serial" => text(&self.serial_number),
            "udid" => Fact::Text(Cow::Borrowed(&self.udid)),
            "model" => text(&self.model),
            "model_name" => text(&self.model_name),
            "product_name" => text(&self.product_name),
            "device_name" => text(&self.device_name),
            "os_version" => text(&self.os_version),
            "build_version" => text(&self.build_version),
            "enrolled" => Fact::Bool(self.enrolled),
            "apple_silicon" => self.is_apple_silicon.map_or(Fact::Missing, Fact::Bool),
            "dep_profile" => text(&self.dep_profile),
            "supervised" => self.is_supervised.map_or(Fact::Missing, Fact::Bool),
            "activation_lock" => self
                .activation_lock_enabled
                .map_or(Fact::Missing, Fact::Bool),
            "filevault" => self.filevault_enabled.map_or(Fact::Missing, Fact::Bool),
            "sip" => self.sip_enabled.map_or(Fact::Missing, Fact::Bool),
            "firewall" => self.firewall_enabled.map_or(Fact::Missing, Fact::Bool),
            "secure_boot" => text(&self.secure_boot_level),
            "recovery_lock" => self.recovery_lock_enabled.map_or(Fact::Missing, Fact::Bool),
            _ => Fact::Missing,
        }
    }
}

/// The devices each lookup term of some filters finds (by UDID), asked once per term.
#[derive(Debug, Default)]
pub(crate) struct Lookups {
    found: HashMap<Term, Found>,
}

/// What a lookup term's answer is for the devices a query reads.
#[derive(Debug)]
enum Found {
    /// The devices it finds.
    Among(HashSet<String>),
    /// The same for every device read: the page query checked the term itself.
    Checked(bool),
}

impl Lookups {
    /// A device's row as the filters see it, lookups answered.
    pub(crate) fn on<'a>(&'a self, row: &'a DeviceFactsRow) -> WithLookups<'a> {
        WithLookups { row, lookups: self }
    }
}

/// A device's facts and the answers of the lookups.
pub(crate) struct WithLookups<'a> {
    row: &'a DeviceFactsRow,
    lookups: &'a Lookups,
}

impl Facts for WithLookups<'_> {
    fn fact(&self, field: &str) -> Fact<'_> {
        self.row.fact(field)
    }

    fn lookup(&self, term: &Term) -> Option<bool> {
        self.lookups.found.get(term).map(|found| match found {
            Found::Among(udids) => udids.contains(&self.row.udid),
            Found::Checked(answer) => *answer,
        })
    }
}

/// Text fields whose values are ASCII by nature (Apple's identifiers), so SQL's `lower()`
/// agrees with the filter's lowercasing on them.
const ASCII_FIELDS: &[&str] = &[
    "serial",
    "udid",
    "model",
    "product_name",
    "dep_profile",
    "secure_boot",
];

/// What the database can check of a filter while scanning (see [`FactCondition`]): its
/// boolean terms, whole-text terms on ASCII fields and its `app` terms. The rest is the
/// filter's alone. A scan with these conditions answers the `app` terms from them
/// ([`MdmService::scan_lookups`]).
pub(crate) fn conditions(filter: &Filter) -> Vec<FactCondition> {
    filter
        .terms()
        .iter()
        .filter_map(|t| {
            if t.field.name == "app" {
                return Some(FactCondition::App {
                    query: app_query(t),
                    present: t.op != Op::Ne,
                });
            }
            if t.field.answer != Answer::Row || !matches!(t.op, Op::Eq | Op::Ne) {
                return None;
            }
            let equal = t.op == Op::Eq;
            match &t.value {
                Value::Bool(value) => Some(FactCondition::Bool {
                    field: t.field.name,
                    value: *value,
                    equal,
                }),
                Value::Text(value) if value.is_ascii() && ASCII_FIELDS.contains(&t.field.name) => {
                    Some(FactCondition::Text {
                        field: t.field.name,
                        value: value.clone(),
                        equal,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

fn term_text(term: &Term) -> (String, bool) {
    let text = match &term.value {
        Value::Text(t) | Value::Version(t) => t.clone(),
        Value::Bool(b) => b.to_string(),
    };
    (text, term.op == Op::Contains)
}

/// The apps an `app` term (with its `app_version` qualifiers) asks for.
fn app_query(term: &Term) -> AppQuery {
    let (text, contains) = term_text(term);
    AppQuery {
        text,
        contains,
        versions: term.versions.clone(),
    }
}

/// A filter Russet stored itself (a smart group's): it parsed when it was saved, so a failure
/// now is Russet's problem, not the admin's input.
pub(crate) fn stored_filter(text: &str) -> Result<Filter, ServiceError> {
    Filter::parse(text).map_err(|e| ServiceError::Internal(format!("stored filter {text:?}: {e}")))
}

impl MdmService {
    /// Answer the lookup terms of `filters`, for the devices `within` (all when `None`).
    pub(crate) async fn lookups(
        &self,
        filters: &[&Filter],
        within: Option<&[String]>,
    ) -> Result<Lookups, ServiceError> {
        let mut lookups = Lookups::default();
        self.answer_lookups(&mut lookups, filters, within).await?;
        Ok(lookups)
    }

    /// The lookups of a scan for `filter` with its [`conditions`]: the page query checked the
    /// `app` terms, so a device read has the app (`=`, `~`) or has not (`!=`); the other
    /// terms are asked.
    pub(crate) async fn scan_lookups(&self, filter: &Filter) -> Result<Lookups, ServiceError> {
        let mut lookups = Lookups::default();
        for t in filter.terms().iter().filter(|t| t.field.name == "app") {
            // `app = X and app != X` checks both and reads no device: either answer holds.
            lookups
                .found
                .insert(t.positive(), Found::Checked(t.op != Op::Ne));
        }
        self.answer_lookups(&mut lookups, &[filter], None).await?;
        Ok(lookups)
    }

    /// Asks the lookup terms of `filters` not answered yet, once each.
    async fn answer_lookups(
        &self,
        lookups: &mut Lookups,
        filters: &[&Filter],
        within: Option<&[String]>,
    ) -> Result<(), ServiceError> {
        for term in filters.iter().flat_map(|f| f.lookups()) {
            if lookups.found.contains_key(&term) {
                continue;
            }
            let (text, contains) = term_text(&term);
            let found: HashSet<String> = match term.field.name {
                "app" => self
                    .store
                    .devices_with_app(&app_query(&term), within)
                    .await?
                    .into_iter()
                    .collect(),
                "console_user" => {
                    let query = UserQuery { text, contains };
                    self.store
                        .devices_with_console_user(&query, within)
                        .await?
                        .into_iter()
                        .collect()
                }
                "group" => self.group_lookup(&text, contains, within).await?,
                other => {
                    return Err(ServiceError::Internal(format!(
                        "no lookup for the filter field {other}"
                    )));
                }
            };
            lookups.found.insert(term, Found::Among(found));
        }
        Ok(())
    }

    /// The devices (among `within`) in the groups named `text` (or whose name contains it),
    /// ignoring case. A smart group's filter never names a group (`groups::filter_text`), so
    /// this goes one level deep.
    async fn group_lookup(
        &self,
        text: &str,
        contains: bool,
        within: Option<&[String]>,
    ) -> Result<HashSet<String>, ServiceError> {
        let mut found = HashSet::new();
        for (record, _) in self.store.groups().await? {
            let name = record.name.to_lowercase();
            if !(if contains {
                name.contains(text)
            } else {
                name == text
            }) {
                continue;
            }
            match &record.filter {
                None => found.extend(
                    self.store
                        .group_members(&record.name)
                        .await?
                        .into_iter()
                        .filter_map(|m| m.device.map(|d| d.udid)),
                ),
                Some(expr) => {
                    let filter = stored_filter(expr)?;
                    if filter.names("group") {
                        return Err(ServiceError::Internal(format!(
                            "smart group {} names a group in its filter",
                            record.name
                        )));
                    }
                    let lookups = match within {
                        Some(_) => Box::pin(self.lookups(&[&filter], within)).await?,
                        None => Box::pin(self.scan_lookups(&filter)).await?,
                    };
                    let mut visit = |f: DeviceFactsRow| {
                        if filter.matches(&lookups.on(&f)) {
                            found.insert(f.udid);
                        }
                    };
                    match within {
                        Some(ids) => {
                            for f in self.store.device_facts_of_many(ids).await? {
                                visit(f);
                            }
                        }
                        None => {
                            self.scan_facts(None, &conditions(&filter), |f| {
                                visit(f);
                                true
                            })
                            .await?
                        }
                    }
                }
            }
        }
        if let Some(ids) = within {
            let ids: HashSet<&String> = ids.iter().collect();
            found.retain(|u| ids.contains(u));
        }
        Ok(found)
    }

    /// Every device after `after` (by UDID), a page at a time, to `visit`, until it answers
    /// false.
    pub(crate) async fn scan_facts(
        &self,
        after: Option<String>,
        conditions: &[FactCondition],
        mut visit: impl FnMut(DeviceFactsRow) -> bool,
    ) -> Result<(), ServiceError> {
        let mut after = after;
        loop {
            let page = self
                .store
                .device_facts(after.as_deref(), SCAN_PAGE, conditions)
                .await?;
            let more = page.len() == SCAN_PAGE as usize;
            after = page.last().map(|f| f.udid.clone());
            for facts in page {
                if !visit(facts) {
                    return Ok(());
                }
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// The devices a filter matches, by UDID.
    pub(crate) async fn matching(
        &self,
        filter: &Filter,
    ) -> Result<Vec<DeviceFactsRow>, ServiceError> {
        let lookups = self.scan_lookups(filter).await?;
        let mut found = Vec::new();
        self.scan_facts(None, &conditions(filter), |f| {
            if filter.matches(&lookups.on(&f)) {
                found.push(f);
            }
            true
        })
        .await?;
        Ok(found)
    }

    /// Devices after `after` matching the plain filters and the expression, to `visit` until
    /// it answers false.
    async fn scan_matching(
        &self,
        filter: &DeviceFilter,
        parsed: Option<&Filter>,
        mut visit: impl FnMut(DeviceFactsRow) -> bool,
    ) -> Result<(), ServiceError> {
        let lookups = match parsed {
            Some(p) => self.scan_lookups(p).await?,
            None => Lookups::default(),
        };
        let plain = |f: &DeviceFactsRow| {
            filter
                .serial
                .as_ref()
                .is_none_or(|s| f.serial_number.as_ref() == Some(s))
                && filter.udid.as_ref().is_none_or(|u| &f.udid == u)
                && filter.enrolled.is_none_or(|e| f.enrolled == e)
        };
        let mut checked = parsed.map(conditions).unwrap_or_default();
        if let Some(serial) = filter.serial.as_ref().filter(|s| s.is_ascii()) {
            checked.push(FactCondition::Text {
                field: "serial",
                value: serial.to_lowercase(),
                equal: true,
            });
        }
        if let Some(enrolled) = filter.enrolled {
            checked.push(FactCondition::Bool {
                field: "enrolled",
                value: enrolled,
                equal: true,
            });
        }
        self.scan_facts(filter.cursor.clone(), &checked, |f| {
            if plain(&f) && parsed.is_none_or(|p| p.matches(&lookups.on(&f))) {
                visit(f)
            } else {
                true
            }
        })
        .await
    }

    /// Devices matching the filter expression and the plain filters, a page at a time (at
    /// most 1000): the devices list with `?filter=`. A bad expression is an
    /// [`ServiceError::InvalidFilter`] pointing at the term.
    pub async fn search_devices(
        &self,
        filter: DeviceFilter,
        expr: &str,
    ) -> Result<DevicePage, ServiceError> {
        let parsed = Filter::parse(expr)?;
        let limit = filter.limit.clamp(1, 1000) as usize;
        let mut ids = Vec::new();
        self.scan_matching(&filter, Some(&parsed), |f| {
            ids.push(f.udid);
            ids.len() < limit
        })
        .await?;
        let next_cursor = if ids.len() == limit {
            ids.last().cloned()
        } else {
            None
        };
        Ok(DevicePage {
            devices: self.store.devices_by_ids(&ids).await?,
            next_cursor,
        })
    }

    /// Every device matching the plain filters and the expression (when one is given), with
    /// the facts filters read, in UDID order: the report an admin exports as CSV. Read a page
    /// at a time; at most [`MAX_REPORT_ROWS`].
    pub async fn device_report(
        &self,
        filter: DeviceFilter,
        expr: Option<&str>,
    ) -> Result<Vec<DeviceFactsRow>, ServiceError> {
        let parsed = match expr.filter(|e| !e.trim().is_empty()) {
            Some(e) => Some(Filter::parse(e)?),
            None => None,
        };
        let mut rows = Vec::new();
        self.scan_matching(&filter, parsed.as_ref(), |f| {
            rows.push(f);
            rows.len() < MAX_REPORT_ROWS
        })
        .await?;
        Ok(rows)
    }
}

/// Most devices in one report (a fleet this size exports in a few seconds).
pub const MAX_REPORT_ROWS: usize = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{Answer, FIELDS};

    #[test]
    fn every_filter_field_is_answered_for_a_device() {
        let row = DeviceFactsRow {
            udid: "U".into(),
            serial_number: Some("S".into()),
            model: Some("Mac14,2".into()),
            model_name: Some("MacBook Air".into()),
            product_name: Some("Mac14,2".into()),
            device_name: Some("Mac".into()),
            os_version: Some("15.1".into()),
            build_version: Some("24B83".into()),
            is_apple_silicon: Some(true),
            enrolled: true,
            dep_profile: Some("P".into()),
            is_supervised: Some(true),
            activation_lock_enabled: Some(false),
            filevault_enabled: Some(true),
            sip_enabled: Some(true),
            firewall_enabled: Some(false),
            secure_boot_level: Some("full".into()),
            recovery_lock_enabled: Some(false),
            last_seen_at: Some(1),
        };
        for f in FIELDS.iter().filter(|f| f.answer == Answer::Row) {
            assert_ne!(row.fact(f.name), Fact::Missing, "{}", f.name);
        }
        let filter = Filter::parse(
            "serial = s and os_version >= 15 and apple_silicon = true and dep_profile = P",
        )
        .unwrap();
        assert!(filter.matches(&row));
    }
}
