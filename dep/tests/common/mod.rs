#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use russet_dep::sim::{DepSimulator, SimConfig};
use russet_dep::{CursorStore, DepClient, DepDevice, DeviceSink, OpType, RetryPolicy};

pub async fn sim(devices: usize) -> DepSimulator {
    DepSimulator::start(SimConfig {
        devices,
        ..Default::default()
    })
    .await
    .expect("simulator starts")
}

pub fn client(sim: &DepSimulator) -> DepClient {
    DepClient::new(sim.url(), sim.tokens(), "")
        .expect("client")
        .with_retry_policy(fast_retry())
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

#[derive(Debug)]
pub struct Never;
impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}
impl std::error::Error for Never {}

/// Where the in-memory stores "die" (their future never completes, so the test drops the
/// sync future there), counted in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    None,
    /// The sink receives page k but dies before storing it.
    BeforeSinkCommit(usize),
    /// The sink stores page k, then dies before the cursor is saved.
    AfterSinkCommit(usize),
    /// The cursor of page k is saved, then the process dies.
    AfterCursorSave(usize),
}

#[derive(Default)]
pub struct MemCursor {
    pub cursors: Mutex<HashMap<String, String>>,
    pub saves: AtomicUsize,
    pub kill: Mutex<Option<usize>>,
    pub killed: tokio::sync::Notify,
}

impl MemCursor {
    pub fn get(&self, link: &str) -> Option<String> {
        self.cursors.lock().expect("lock").get(link).cloned()
    }
}

impl CursorStore for MemCursor {
    type Error = Never;

    async fn load(&self, link: &str) -> Result<Option<String>, Never> {
        Ok(self.get(link))
    }

    async fn save(&self, link: &str, cursor: &str) -> Result<(), Never> {
        self.cursors
            .lock()
            .expect("lock")
            .insert(link.to_owned(), cursor.to_owned());
        let n = self.saves.fetch_add(1, Ordering::SeqCst) + 1;
        let die = { *self.kill.lock().expect("lock") == Some(n) };
        if die {
            self.killed.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// An upserting sink that counts deliveries per serial.
#[derive(Default)]
pub struct MemSink {
    pub devices: Mutex<HashMap<String, DepDevice>>,
    pub deliveries: Mutex<HashMap<String, usize>>,
    pub pages: AtomicUsize,
    pub kill_before: Mutex<Option<usize>>,
    pub kill_after: Mutex<Option<usize>>,
    pub killed: tokio::sync::Notify,
}

impl MemSink {
    pub fn len(&self) -> usize {
        self.devices.lock().expect("lock").len()
    }
    pub fn max_deliveries(&self) -> usize {
        self.deliveries
            .lock()
            .expect("lock")
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
    pub fn snapshot(&self) -> HashMap<String, DepDevice> {
        self.devices.lock().expect("lock").clone()
    }
}

impl DeviceSink for MemSink {
    type Error = Never;

    async fn upsert_page(&self, _link: &str, devices: &[DepDevice]) -> Result<(), Never> {
        let n = self.pages.fetch_add(1, Ordering::SeqCst) + 1;
        if *self.kill_before.lock().expect("lock") == Some(n) {
            self.killed.notify_one();
            std::future::pending::<()>().await;
        }
        {
            let mut map = self.devices.lock().expect("lock");
            let mut counts = self.deliveries.lock().expect("lock");
            for d in devices {
                *counts.entry(d.serial_number.clone()).or_default() += 1;
                if d.op_type == Some(OpType::Deleted) {
                    map.remove(&d.serial_number);
                } else {
                    let mut stored = d.clone();
                    stored.op_type = None;
                    stored.op_date = None;
                    map.insert(d.serial_number.clone(), stored);
                }
            }
        }
        if *self.kill_after.lock().expect("lock") == Some(n) {
            self.killed.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// The simulator's devices keyed by serial, as a sink would store them.
pub fn sim_state(sim: &DepSimulator) -> HashMap<String, DepDevice> {
    sim.devices()
        .into_iter()
        .map(|d| (d.serial_number.clone(), d))
        .collect()
}
