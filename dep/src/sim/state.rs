//! The simulator's in-memory DEP organisation: devices, the change log behind sync, cursors,
//! sessions, profiles, and injected failures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::SimConfig;
use super::fail::ApiFail;
use super::profile::validate_profile;
use crate::error::codes;
use crate::token::OAuthTokens;
use crate::types::{DepDevice, DeviceStatus, OpType, Profile, ProfileStatus};

/// SplitMix64: deterministic device generation from the seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn hex(&mut self, bytes: usize) -> String {
        let mut out = String::with_capacity(bytes * 2);
        while out.len() < bytes * 2 {
            out.push_str(&format!("{:016X}", self.next_u64()));
        }
        out.truncate(bytes * 2);
        out
    }
}

pub(crate) fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
pub(crate) enum CursorKind {
    /// A fetch over the devices that existed at log position `snapshot`, ordered by when they
    /// were added; `last_added` is the last one returned.
    Fetch {
        snapshot: u64,
        last_added: u64,
        done: bool,
    },
    /// Changes after log position `since`.
    Sync { since: u64 },
}

pub(crate) struct CursorState {
    kind: CursorKind,
    issued: Instant,
    expired: bool,
}

struct Event {
    seq: u64,
    record: DepDevice,
}

struct SimDevice {
    device: DepDevice,
    added_seq: u64,
}

struct Injection {
    path: String,
    status: u16,
    code: String,
    remaining: usize,
}

/// Request counters and the last headers seen (for tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Requests per path (including refused ones).
    pub requests: BTreeMap<String, u64>,
    /// Sessions issued by `/session`.
    pub sessions_issued: u64,
    pub last_user_agent: Option<String>,
    pub last_protocol_version: Option<String>,
    pub last_content_type: Option<String>,
    pub last_accept: Option<String>,
    pub last_authorization_realm: Option<String>,
}

pub(crate) struct State {
    pub cfg: SimConfig,
    pub tokens: OAuthTokens,
    pub stats: SimStats,
    rng: Rng,
    devices: HashMap<String, SimDevice>,
    order: BTreeMap<u64, String>,
    seq: u64,
    events: Vec<Event>,
    cursors: HashMap<String, CursorState>,
    sessions: HashMap<String, Instant>,
    nonces: HashSet<String>,
    pub profiles: HashMap<String, Profile>,
    assign_outcomes: HashMap<String, DeviceStatus>,
    injections: Vec<Injection>,
    activation_locked: HashSet<String>,
}

const SERIAL_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUVWXYZ";

impl State {
    pub fn new(cfg: SimConfig) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let tokens = OAuthTokens {
            consumer_key: format!("CK_{}", rng.hex(24).to_ascii_lowercase()),
            consumer_secret: format!("CS_{}", rng.hex(20).to_ascii_lowercase()),
            access_token: format!("AT_O{}", rng.hex(24).to_ascii_lowercase()),
            access_secret: format!("AS_{}", rng.hex(20).to_ascii_lowercase()),
            access_token_expiry: (OffsetDateTime::now_utc() + time::Duration::days(365))
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        };
        let mut st = State {
            tokens,
            stats: SimStats::default(),
            rng,
            devices: HashMap::with_capacity(cfg.devices),
            order: BTreeMap::new(),
            seq: 0,
            events: Vec::new(),
            cursors: HashMap::new(),
            sessions: HashMap::new(),
            nonces: HashSet::new(),
            profiles: HashMap::new(),
            assign_outcomes: HashMap::new(),
            injections: Vec::new(),
            activation_locked: HashSet::new(),
            cfg,
        };
        let date = now_rfc3339();
        for _ in 0..st.cfg.devices {
            let d = st.new_device(&date);
            st.seq += 1;
            st.order.insert(st.seq, d.serial_number.clone());
            st.devices.insert(
                d.serial_number.clone(),
                SimDevice {
                    device: d,
                    added_seq: st.seq,
                },
            );
        }
        st
    }

    fn new_device(&mut self, date: &str) -> DepDevice {
        let serial = loop {
            let mut s = String::from("C02");
            let mut r = self.rng.next_u64();
            for _ in 0..9 {
                s.push(SERIAL_ALPHABET[(r % SERIAL_ALPHABET.len() as u64) as usize] as char);
                r /= SERIAL_ALPHABET.len() as u64;
            }
            if !self.devices.contains_key(&s) {
                break s;
            }
        };
        DepDevice {
            serial_number: serial,
            model: Some("MacBook Air".into()),
            description: Some("MBA 13.6 MIDNIGHT 8C CPU 8C GPU".into()),
            color: Some("MIDNIGHT".into()),
            os: Some("OSX".into()),
            device_family: Some("Mac".into()),
            profile_status: Some(ProfileStatus::Empty),
            device_assigned_date: Some(date.to_owned()),
            device_assigned_by: Some("it-admin@example.org".into()),
            ..Default::default()
        }
    }

    fn log(&mut self, mut record: DepDevice, op: OpType) {
        self.seq += 1;
        record.op_type = Some(op);
        record.op_date = Some(now_rfc3339());
        self.events.push(Event {
            seq: self.seq,
            record,
        });
    }

    // ---- organisation changes (simulator API and endpoints) ----

    pub fn add_devices(&mut self, n: usize) -> Vec<String> {
        let date = now_rfc3339();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let d = self.new_device(&date);
            out.push(d.serial_number.clone());
            self.log(d.clone(), OpType::Added);
            self.order.insert(self.seq, d.serial_number.clone());
            self.devices.insert(
                d.serial_number.clone(),
                SimDevice {
                    device: d,
                    added_seq: self.seq,
                },
            );
        }
        out
    }

    pub fn modify(&mut self, serial: &str, f: impl FnOnce(&mut DepDevice)) -> bool {
        let Some(d) = self.devices.get_mut(serial) else {
            return false;
        };
        f(&mut d.device);
        d.device.serial_number = serial.to_owned();
        let record = d.device.clone();
        self.log(record, OpType::Modified);
        true
    }

    pub fn remove(&mut self, serial: &str) -> bool {
        let Some(d) = self.devices.remove(serial) else {
            return false;
        };
        self.order.remove(&d.added_seq);
        self.log(d.device, OpType::Deleted);
        true
    }

    pub fn devices(&self) -> Vec<DepDevice> {
        self.order
            .values()
            .filter_map(|s| self.devices.get(s).map(|d| d.device.clone()))
            .collect()
    }

    pub fn device(&self, serial: &str) -> Option<DepDevice> {
        self.devices.get(serial).map(|d| d.device.clone())
    }

    pub fn set_assign_outcome(&mut self, serial: &str, outcome: Option<DeviceStatus>) {
        match outcome {
            Some(o) => self.assign_outcomes.insert(serial.to_owned(), o),
            None => self.assign_outcomes.remove(serial),
        };
    }

    // ---- sessions, nonces, cursors, injections ----

    pub fn new_session(&mut self) -> String {
        let token = format!("{}", uuid::Uuid::new_v4().simple()).to_ascii_uppercase();
        self.sessions
            .insert(token.clone(), Instant::now() + self.cfg.session_ttl);
        self.stats.sessions_issued += 1;
        token
    }

    pub fn session_valid(&mut self, token: &str) -> bool {
        let now = Instant::now();
        self.sessions.retain(|_, exp| *exp > now);
        self.sessions.contains_key(token)
    }

    pub fn drop_session(&mut self, token: &str) {
        self.sessions.remove(token);
    }

    pub fn expire_sessions(&mut self) {
        self.sessions.clear();
    }

    /// False if the nonce was seen before (replay).
    pub fn fresh_nonce(&mut self, nonce: &str) -> bool {
        if self.nonces.len() > 100_000 {
            self.nonces.clear();
        }
        self.nonces.insert(nonce.to_owned())
    }

    pub fn expire_cursors(&mut self) {
        for c in self.cursors.values_mut() {
            c.expired = true;
        }
    }

    fn issue_cursor(&mut self, kind: CursorKind) -> String {
        let id = format!("{}{}", self.rng.hex(8), uuid::Uuid::new_v4().simple());
        self.cursors.insert(
            id.clone(),
            CursorState {
                kind,
                issued: Instant::now(),
                expired: false,
            },
        );
        id
    }

    fn lookup_cursor(&self, cursor: &str) -> Result<CursorKind, ApiFail> {
        let c = self
            .cursors
            .get(cursor)
            .ok_or_else(|| ApiFail::new(400, codes::INVALID_CURSOR))?;
        if c.expired || c.issued.elapsed() > self.cfg.cursor_ttl {
            return Err(ApiFail::new(400, codes::EXPIRED_CURSOR));
        }
        Ok(c.kind.clone())
    }

    pub fn inject(&mut self, path: &str, status: u16, code: &str, count: usize) {
        self.injections.push(Injection {
            path: path.to_owned(),
            status,
            code: code.to_owned(),
            remaining: count,
        });
    }

    pub fn clear_injections(&mut self) {
        self.injections.clear();
    }

    pub fn take_injection(&mut self, path: &str) -> Option<ApiFail> {
        let i = self
            .injections
            .iter()
            .position(|i| i.path == path && i.remaining > 0)?;
        let inj = &mut self.injections[i];
        inj.remaining -= 1;
        let fail = ApiFail::new(inj.status, &inj.code);
        if inj.remaining == 0 {
            self.injections.remove(i);
        }
        Some(fail)
    }

    fn limit(&self, limit: Option<u32>) -> usize {
        match limit {
            Some(0) | None => self.cfg.page_limit_default.clamp(1, 1000) as usize,
            Some(l) => l.min(1000) as usize,
        }
    }

    // ---- fetch and sync ----

    /// `(devices, cursor, more_to_follow)`.
    pub fn fetch(
        &mut self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<DepDevice>, String, bool), ApiFail> {
        let limit = self.limit(limit);
        let (snapshot, last_added) = match cursor.filter(|c| !c.is_empty()) {
            None => (self.seq, 0),
            Some(c) => match self.lookup_cursor(c)? {
                CursorKind::Fetch {
                    snapshot,
                    last_added,
                    done: false,
                } => (snapshot, last_added),
                // A fetch that already returned every device, or a sync cursor (which exists
                // only after a finished fetch): nothing more to fetch.
                CursorKind::Fetch { done: true, .. } | CursorKind::Sync { .. } => {
                    return Err(ApiFail::new(400, codes::EXHAUSTED_CURSOR));
                }
            },
        };
        let mut range = self.order.range(last_added + 1..=snapshot);
        let mut devices = Vec::with_capacity(limit.min(self.devices.len()));
        let mut last = last_added;
        for (seq, serial) in range.by_ref().take(limit) {
            last = *seq;
            if let Some(d) = self.devices.get(serial) {
                devices.push(d.device.clone());
            }
        }
        let more = range.next().is_some();
        let cursor = self.issue_cursor(CursorKind::Fetch {
            snapshot,
            last_added: last,
            done: !more,
        });
        Ok((devices, cursor, more))
    }

    pub fn sync(
        &mut self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<DepDevice>, String, bool), ApiFail> {
        let limit = self.limit(limit);
        let cursor = cursor
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiFail::new(400, codes::CURSOR_REQUIRED))?;
        let since = match self.lookup_cursor(cursor)? {
            CursorKind::Fetch { snapshot, .. } => snapshot,
            CursorKind::Sync { since } => since,
        };
        let start = self.events.partition_point(|e| e.seq <= since);
        let end = (start + limit).min(self.events.len());
        let devices: Vec<DepDevice> = self.events[start..end]
            .iter()
            .map(|e| e.record.clone())
            .collect();
        let next_since = if end > start {
            self.events[end - 1].seq
        } else {
            since
        };
        let more = end < self.events.len();
        let cursor = self.issue_cursor(CursorKind::Sync { since: next_since });
        Ok((devices, cursor, more))
    }

    // ---- profiles ----

    pub fn define_profile(
        &mut self,
        mut profile: Profile,
    ) -> Result<(String, BTreeMap<String, DeviceStatus>), ApiFail> {
        validate_profile(&profile)?;
        let uuid = format!("{}", uuid::Uuid::new_v4().simple()).to_ascii_uppercase();
        let serials = profile.devices.take().unwrap_or_default();
        profile.profile_uuid = Some(uuid.clone());
        self.profiles.insert(uuid.clone(), profile);
        let statuses = if serials.is_empty() {
            BTreeMap::new()
        } else {
            self.assign(&uuid, &serials)?.0
        };
        Ok((uuid, statuses))
    }

    /// `(per-serial statuses, retry_after_seconds if any THROTTLED)`.
    pub fn assign(
        &mut self,
        uuid: &str,
        serials: &[String],
    ) -> Result<(BTreeMap<String, DeviceStatus>, Option<u64>), ApiFail> {
        if uuid.is_empty() {
            return Err(ApiFail::new(400, codes::PROFILE_UUID_REQUIRED));
        }
        if serials.is_empty() {
            return Err(ApiFail::new(400, codes::DEVICE_ID_REQUIRED));
        }
        if !self.profiles.contains_key(uuid) {
            return Err(ApiFail::new(404, codes::NOT_FOUND));
        }
        let mut out = BTreeMap::new();
        let mut throttled = false;
        let now = now_rfc3339();
        for s in serials {
            let status = if !self.devices.contains_key(s) {
                DeviceStatus::NotAccessible
            } else if let Some(o) = self.assign_outcomes.get(s) {
                o.clone()
            } else {
                self.modify(s, |d| {
                    d.profile_uuid = Some(uuid.to_owned());
                    d.profile_status = Some(ProfileStatus::Assigned);
                    d.profile_assign_time = Some(now.clone());
                    d.profile_push_time = None;
                });
                DeviceStatus::Success
            };
            throttled |= status == DeviceStatus::Throttled;
            out.insert(s.clone(), status);
        }
        let retry = throttled.then_some(self.cfg.throttle_retry_after_seconds);
        Ok((out, retry))
    }

    pub fn remove_profile(
        &mut self,
        serials: &[String],
        uuid: Option<&str>,
    ) -> Result<BTreeMap<String, DeviceStatus>, ApiFail> {
        if serials.is_empty() {
            return Err(ApiFail::new(400, codes::DEVICE_ID_REQUIRED));
        }
        let mut out = BTreeMap::new();
        for s in serials {
            let status = match self.devices.get(s) {
                None => DeviceStatus::NotAccessible,
                Some(d) => {
                    let matches = match uuid.filter(|u| !u.is_empty()) {
                        Some(u) => d.device.profile_uuid.as_deref() == Some(u),
                        None => d.device.profile_uuid.is_some(),
                    };
                    if matches {
                        self.modify(s, |d| {
                            d.profile_uuid = None;
                            d.profile_status = Some(ProfileStatus::Removed);
                        });
                        DeviceStatus::Success
                    } else {
                        DeviceStatus::Failed
                    }
                }
            };
            out.insert(s.clone(), status);
        }
        Ok(out)
    }

    pub fn disown(
        &mut self,
        serials: &[String],
    ) -> Result<BTreeMap<String, DeviceStatus>, ApiFail> {
        if serials.is_empty() {
            return Err(ApiFail::new(400, codes::DEVICE_ID_REQUIRED));
        }
        Ok(serials
            .iter()
            .map(|s| {
                let st = if self.remove(s) {
                    DeviceStatus::Success
                } else {
                    DeviceStatus::NotAccessible
                };
                (s.clone(), st)
            })
            .collect())
    }

    pub fn activation_lock(&mut self, serial: &str) -> &'static str {
        if !self.devices.contains_key(serial) {
            "NOT_ACCESSIBLE"
        } else if !self.activation_locked.insert(serial.to_owned()) {
            "DEVICE_ALREADY_LOCKED"
        } else {
            "SUCCESS"
        }
    }
}
