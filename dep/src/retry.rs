//! Retry policy, request/response limits and the small helpers that enforce them, for the DEP
//! client.

use std::time::Duration;

use crate::error::{DepError, codes};

/// Apple's `limit` ceiling for fetch/sync and the device-list ceiling of assign.
pub const MAX_LIMIT: u32 = 1000;
/// Responses larger than this are refused (a fetch page of 1000 devices is ~0.5 MB).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Backoff for `429`, `5xx` and transport errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_delay);
        }
        let exp = self
            .initial_delay
            .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        // Jitter in [exp/2, exp].
        let half = exp / 2;
        let jitter_nanos = half.as_nanos() as u64;
        let r = if jitter_nanos == 0 {
            0
        } else {
            (uuid::Uuid::new_v4().as_u128() as u64) % jitter_nanos
        };
        half + Duration::from_nanos(r)
    }
}

pub(crate) fn check_limit(limit: Option<u32>) -> Result<(), DepError> {
    match limit {
        Some(l) if l == 0 || l > MAX_LIMIT => Err(DepError::InvalidRequest(format!(
            "limit {l} outside 1..={MAX_LIMIT}"
        ))),
        _ => Ok(()),
    }
}

pub(crate) fn check_serials(serials: &[String]) -> Result<(), DepError> {
    if serials.is_empty() {
        return Err(DepError::InvalidRequest(codes::DEVICE_ID_REQUIRED.into()));
    }
    if serials.len() > MAX_LIMIT as usize {
        return Err(DepError::InvalidRequest(format!(
            "{} serials in one call; at most {MAX_LIMIT}",
            serials.len()
        )));
    }
    Ok(())
}

pub(crate) async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, DepError> {
    let path = resp.url().path().to_owned();
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(DepError::Transport)? {
        if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(DepError::Malformed {
                endpoint: path,
                message: format!("response larger than {MAX_RESPONSE_BYTES} bytes"),
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy {
            max_retries: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for a in 0..40 {
            assert!(p.delay(a, None) <= Duration::from_secs(1));
        }
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(99))),
            Duration::from_secs(1)
        );
    }
}
