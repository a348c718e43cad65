//! The fleet at a glance, for the console's dashboard, and the audit log searched, for its
//! audit page (issue 18). Read only: both are counted or filtered by the database in a few
//! grouped queries, when an admin opens the page (never on a Mac's check-in).

use super::{MdmService, ServiceError};
use crate::store::AuditEntry;
use crate::store::fleet::{AuditFilter, FleetCounts};
use crate::timefmt::now_ms;

/// An enrolled Mac not seen for this many days is stale (asleep, lost, or wiped without a
/// CheckOut); the dashboard counts them.
pub const STALE_DAYS: i64 = 30;

const DAY_MS: i64 = 86_400_000;

impl MdmService {
    /// The dashboard's device figures; Macs not seen for [`STALE_DAYS`] are stale.
    pub async fn fleet_counts(&self) -> Result<FleetCounts, ServiceError> {
        let stale_before = now_ms().saturating_sub(STALE_DAYS * DAY_MS);
        Ok(self.store.fleet_counts(stale_before).await?)
    }

    /// Audit entries matching `filter`, newest first, 1 to 1000 at a time.
    pub async fn audit_search(&self, filter: AuditFilter) -> Result<Vec<AuditEntry>, ServiceError> {
        let filter = AuditFilter {
            limit: filter.limit.clamp(1, 1000),
            ..filter
        };
        Ok(self.store.audit_search(&filter).await?)
    }
}
