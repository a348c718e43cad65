//! Devices as the filter language sees them (`crate::filter`), and filters evaluated over the
//! fleet: device search (`GET /api/v1/devices?filter=`) and smart groups. Evaluated in Rust
//! over lean rows read a page at a time, when an admin asks: nothing is computed per check-in.

use super::devices::DevicePage;
use super::{MdmService, ServiceError};
use crate::filter::{Fact, Facts, Filter};
use crate::store::DeviceFilter;
use crate::store::groups::DeviceFactsRow;
use std::borrow::Cow;

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
            _ => Fact::Missing,
        }
    }
}

/// A filter Russet stored itself (a smart group's): it parsed when it was saved, so a failure
/// now is Russet's problem, not the admin's input.
pub(crate) fn stored_filter(text: &str) -> Result<Filter, ServiceError> {
    Filter::parse(text).map_err(|e| ServiceError::Internal(format!("stored filter {text:?}: {e}")))
}

impl MdmService {
    /// Every device after `after` (by UDID), a page at a time, to `visit`, until it answers
    /// false.
    pub(crate) async fn scan_facts(
        &self,
        after: Option<String>,
        mut visit: impl FnMut(DeviceFactsRow) -> bool,
    ) -> Result<(), ServiceError> {
        let mut after = after;
        loop {
            let page = self.store.device_facts(after.as_deref(), SCAN_PAGE).await?;
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
        let mut found = Vec::new();
        self.scan_facts(None, |f| {
            if filter.matches(&f) {
                found.push(f);
            }
            true
        })
        .await?;
        Ok(found)
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
        let plain = |f: &DeviceFactsRow| {
            filter
                .serial
                .as_ref()
                .is_none_or(|s| f.serial_number.as_ref() == Some(s))
                && filter.udid.as_ref().is_none_or(|u| &f.udid == u)
                && filter.enrolled.is_none_or(|e| f.enrolled == e)
        };
        let mut ids = Vec::new();
        self.scan_facts(filter.cursor.clone(), |f| {
            if plain(&f) && parsed.matches(&f) {
                ids.push(f.udid);
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FIELDS;

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
        };
        for f in FIELDS {
            assert_ne!(row.fact(f.name), Fact::Missing, "{}", f.name);
        }
        let filter = Filter::parse(
            "serial = s and os_version >= 15 and apple_silicon = true and dep_profile = P",
        )
        .unwrap();
        assert!(filter.matches(&row));
    }
}
