//! What `/metrics` reads from the store at scrape time: the queue's open entries per status
//! and the connection pool's use. Kept off the hot path on purpose: a check-in never counts
//! the queue.

use super::{MdmService, ServiceError};
use crate::telemetry;

/// The open statuses, each reported (0 when absent) so a series never disappears.
const OPEN_STATUSES: [&str; 3] = ["Pending", "Sent", "NotNow"];

impl MdmService {
    /// Set the queue-depth and pool gauges from the store (one grouped count query).
    pub async fn record_gauges(&self) -> Result<(), ServiceError> {
        let depth = self.store.queue_depth().await?;
        for status in OPEN_STATUSES {
            let n = depth
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            telemetry::queue_depth(status, n);
        }
        let pool = self.store.pool_use();
        telemetry::db_pool("in_use", u64::from(pool.open.saturating_sub(pool.idle)));
        telemetry::db_pool("idle", u64::from(pool.idle));
        telemetry::db_pool("max", u64::from(pool.max));
        Ok(())
    }
}
