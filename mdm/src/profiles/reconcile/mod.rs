//! The reconciler: for each Mac channel, compare the profiles it should have with what Russet
//! knows is on it, send InstallProfile and RemoveProfile, and move each profile's state on the
//! Mac's answers and ProfileLists. `plan.rs` holds the decisions; this module reads the inputs,
//! queues the commands in bulk and records the states.
//!
//! Triggers: an admin's change (assignment, membership, a new version: [`Reconciler::reconcile`]
//! on the devices concerned), a new enrollment or new facts ([`DeviceObserver`]), the Mac's
//! answers ([`DeviceObserver::command_result`]) and a periodic sweep ([`spawn_sweeper`]) that
//! verifies with ProfileList and retries failures whose backoff has passed.

pub mod plan;

use crate::protocol::Command;
use crate::protocol::profile_list::decode_profile_list;
use crate::protocol::report::decode_report;
use crate::service::{CommandResultEvent, MdmService, ServiceError};
use crate::store::profile_states::{ProfileStateChange, ProfileStateRow, QueuedProfileCommand};
use crate::store::{DeviceView, PRIORITY_PROFILES, ResultStatus, Store};
use crate::timefmt::now_ms;
use plan::{Action, Answer, Known, State, Wanted};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Devices read and planned at once: one InstallProfile command per profile version for each
/// batch of devices (a profile with variables: one per channel).
pub const BATCH: usize = 2_000;
/// A ProfileList asked of a channel and unanswered this long is asked again.
const CHECK_STALE_MS: i64 = 6 * 3600 * 1000;

/// Where a profile goes on a Mac: `PayloadScope` (Apple, "Profile-Specific Payload Keys").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The device channel.
    System,
    /// Each user channel of the Mac.
    User,
}

/// One profile a device should have (the newest version of a live profile assigned to it or
/// to one of its groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredProfile {
    pub identifier: String,
    pub version: i64,
    pub payload_uuid: String,
    pub scope: Scope,
    /// Its payload has per-device variables: each channel gets its own copy.
    pub per_device: bool,
}

/// Where a device is: the channel a command goes to, with whose values variables expand.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub enrollment_id: &'a str,
    pub device: &'a DeviceView,
    /// The user of a user channel.
    pub user_short_name: Option<&'a str>,
}

/// What the reconciler reads from the catalog and the groups.
#[async_trait::async_trait]
pub trait DesiredSource: Send + Sync {
    /// For each of these devices (by UDID), the profiles it should have.
    async fn desired_for(
        &self,
        devices: &[DeviceView],
    ) -> Result<HashMap<String, Vec<DesiredProfile>>, ServiceError>;

    /// The `.mobileconfig` to send for this version to this channel (variables expanded).
    async fn deliverable(
        &self,
        identifier: &str,
        version: i64,
        target: &Target<'_>,
    ) -> Result<Vec<u8>, ServiceError>;
}

/// What one reconcile pass queued.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub devices: usize,
    pub installs: usize,
    pub removals: usize,
    pub commands: usize,
}

impl ReconcileReport {
    fn log(&self) {
        if self.commands > 0 {
            tracing::info!(
                devices = self.devices,
                installs = self.installs,
                removals = self.removals,
                commands = self.commands,
                "profiles reconciled"
            );
        }
    }
}

/// The engine; what each device should have comes from a [`DesiredSource`] passed to each
/// call (the profile catalog, which owns the reconciler).
pub struct Reconciler {
    service: Arc<MdmService>,
    store: Arc<dyn Store>,
}

/// A channel a command goes to, with the version and `PayloadUUID` its state row records.
struct Item<'a> {
    target: Target<'a>,
    version: i64,
    payload_uuid: String,
}

impl Reconciler {
    pub fn new(service: Arc<MdmService>, store: Arc<dyn Store>) -> Self {
        Reconciler { service, store }
    }

    /// Make these devices' channels match what they should have: queue what is missing,
    /// outdated or due for a retry, remove what is no longer wanted. One command per profile
    /// version for all the channels that need it (one per channel when the profile has
    /// variables), recorded in bulk.
    pub async fn reconcile(
        &self,
        source: &dyn DesiredSource,
        device_ids: &[String],
    ) -> Result<ReconcileReport, ServiceError> {
        let mut report = ReconcileReport::default();
        for chunk in device_ids.chunks(BATCH) {
            self.reconcile_batch(source, chunk, None, &mut report)
                .await?;
        }
        report.log();
        Ok(report)
    }

    /// [`reconcile`](Self::reconcile) for one batch of devices. `states`: these devices'
    /// profile states when the caller has just read them and changed none (a ProfileList that
    /// confirmed what Russet knew), so they are not read a second time.
    async fn reconcile_batch(
        &self,
        source: &dyn DesiredSource,
        chunk: &[String],
        states: Option<Vec<ProfileStateRow>>,
        report: &mut ReconcileReport,
    ) -> Result<(), ServiceError> {
        let devices: Vec<DeviceView> = self
            .store
            .devices_by_ids(chunk)
            .await?
            .into_iter()
            .filter(|d| d.enrolled)
            .collect();
        if devices.is_empty() {
            return Ok(());
        }
        report.devices += devices.len();
        let desired = source.desired_for(&devices).await?;
        let states = match states {
            Some(states) => states,
            None => {
                let ids: Vec<String> = devices.iter().map(|d| d.udid.clone()).collect();
                self.store.profile_states_of_devices(&ids).await?
            }
        };
        let mut known: HashMap<&str, BTreeMap<String, Known>> = HashMap::new();
        for row in &states {
            if let Some(k) = known_of(row) {
                known
                    .entry(row.enrollment_id.as_str())
                    .or_default()
                    .insert(row.identifier.clone(), k);
            }
        }
        let now = now_ms();
        // (identifier, version) → channels to install it on; identifier → to remove it from.
        let mut installs: BTreeMap<(String, i64), Vec<Item>> = BTreeMap::new();
        let mut removals: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        let mut per_device: HashMap<(String, i64), bool> = HashMap::new();
        let empty = BTreeMap::new();
        for device in &devices {
            let wants = desired.get(&device.udid).map(Vec::as_slice).unwrap_or(&[]);
            for (target, scope) in channels(device) {
                let wanted: BTreeMap<String, Wanted> = wants
                    .iter()
                    .filter(|p| p.scope == scope)
                    .map(|p| {
                        per_device.insert((p.identifier.clone(), p.version), p.per_device);
                        let w = Wanted {
                            version: p.version,
                            payload_uuid: p.payload_uuid.clone(),
                        };
                        (p.identifier.clone(), w)
                    })
                    .collect();
                let known_here = known.get(target.enrollment_id).unwrap_or(&empty);
                for action in plan::plan(&wanted, known_here, now) {
                    match action {
                        Action::Install {
                            identifier,
                            version,
                        } => {
                            let payload_uuid = wanted
                                .get(&identifier)
                                .map(|w| w.payload_uuid.clone())
                                .unwrap_or_default();
                            installs
                                .entry((identifier, version))
                                .or_default()
                                .push(Item {
                                    target: target.clone(),
                                    version,
                                    payload_uuid,
                                });
                        }
                        Action::Remove { identifier } => {
                            // The row keeps the version it had.
                            let k = known_here.get(&identifier);
                            removals.entry(identifier).or_default().push(Item {
                                target: target.clone(),
                                version: k.map_or(0, |k| k.version),
                                payload_uuid: k.map(|k| k.payload_uuid.clone()).unwrap_or_default(),
                            });
                        }
                    }
                }
            }
        }
        let mut queued = Vec::new();
        let mut undeliverable: Vec<(String, String)> = Vec::new();
        for ((identifier, version), items) in &installs {
            report.installs += items.len();
            // A profile with variables is expanded for each channel: one command each.
            let size = if per_device
                .get(&(identifier.clone(), *version))
                .copied()
                .unwrap_or(false)
            {
                1
            } else {
                items.len()
            };
            for group in items.chunks(size) {
                let Some(first) = group.first() else { continue };
                let body = match source
                    .deliverable(identifier, *version, &first.target)
                    .await
                {
                    Ok(body) => body,
                    // This channel cannot get this version (a variable it uses has no
                    // value here): it fails, like a refusal by the Mac, and the others go on.
                    Err(ServiceError::Conflict(why)) if group.len() == 1 => {
                        undeliverable.push((first.target.enrollment_id.to_string(), why));
                        queued.extend(recorded(group, identifier, State::Failed, None));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let command = Command::install_profile(body)?;
                self.queue(&command, group).await?;
                report.commands += 1;
                queued.extend(recorded(group, identifier, State::Pending, Some(&command)));
            }
        }
        for (identifier, items) in &removals {
            report.removals += items.len();
            let command = Command::remove_profile(identifier)?;
            self.queue(&command, items).await?;
            report.commands += 1;
            queued.extend(recorded(items, identifier, State::Removing, Some(&command)));
        }
        self.store.record_profile_commands(&queued, now).await?;
        for (enrollment_id, why) in undeliverable {
            let Some(row) = queued
                .iter()
                .find(|q| q.enrollment_id == enrollment_id && q.state == "failed")
            else {
                continue;
            };
            let known = self
                .store
                .profile_states_of_devices(std::slice::from_ref(&row.device_id))
                .await?;
            let Some(state) = known
                .iter()
                .find(|k| k.enrollment_id == enrollment_id && k.identifier == row.identifier)
            else {
                continue;
            };
            let change = plan::Change {
                identifier: row.identifier.clone(),
                state: State::Failed,
                failed: true,
                forget_command: false,
                error: Some(serde_json::json!({"message": why})),
            };
            self.apply(&enrollment_id, state, change, None, now).await?;
        }
        Ok(())
    }

    /// Ask these channels for their ProfileList (managed profiles only), unless one is already
    /// outstanding. Returns how many were asked.
    pub async fn verify(&self, enrollment_ids: &[String]) -> Result<usize, ServiceError> {
        let now = now_ms();
        let mut asked = Vec::new();
        let command = Command::profile_list(Some(true))?;
        for id in enrollment_ids {
            if self
                .store
                .claim_profile_check(id, &command.command_uuid, now, now - CHECK_STALE_MS)
                .await?
            {
                asked.push(id.clone());
            }
        }
        if !asked.is_empty() {
            self.service
                .enqueue_internal(&command, &asked, PRIORITY_PROFILES, false)
                .await?;
        }
        Ok(asked.len())
    }

    async fn queue(&self, command: &Command, items: &[Item<'_>]) -> Result<(), ServiceError> {
        let ids: Vec<String> = items
            .iter()
            .map(|i| i.target.enrollment_id.to_string())
            .collect();
        // Sealed: a profile may carry a password.
        self.service
            .enqueue_internal(command, &ids, PRIORITY_PROFILES, true)
            .await?;
        Ok(())
    }

    /// A Mac's answer to an InstallProfile, RemoveProfile or ProfileList.
    pub async fn on_result(
        &self,
        source: &dyn DesiredSource,
        ev: &CommandResultEvent,
    ) -> Result<(), ServiceError> {
        match ev.request_type.as_str() {
            "ProfileList" => self.on_profile_list(source, ev).await,
            "InstallProfile" | "RemoveProfile" => self.on_answer(ev).await,
            _ => Ok(()),
        }
    }

    async fn on_answer(&self, ev: &CommandResultEvent) -> Result<(), ServiceError> {
        let states = self
            .store
            .profile_states_of_devices(std::slice::from_ref(&ev.device_id))
            .await?;
        // Only Russet's own commands have a state row naming them.
        let Some(row) = states.iter().find(|r| {
            r.enrollment_id == ev.enrollment_id
                && r.command_uuid.as_deref() == Some(&ev.command_uuid)
        }) else {
            return Ok(());
        };
        let answer = match ev.status {
            ResultStatus::Acknowledged => Answer::Acknowledged,
            ResultStatus::Error => Answer::Error,
            ResultStatus::CommandFormatError => Answer::CommandFormatError,
            ResultStatus::NotNow => Answer::NotNow,
        };
        let chain = decode_report(&ev.raw)
            .map(|r| r.error_chain)
            .unwrap_or_default();
        let codes: Vec<i64> = chain.iter().map(|e| e.error_code).collect();
        let error = (!chain.is_empty()).then(|| serde_json::json!(chain));
        let removing = ev.request_type == "RemoveProfile";
        let Some(change) = plan::after_answer(&row.identifier, removing, answer, &codes, error)
        else {
            return Ok(());
        };
        let now = now_ms();
        let installed = change.state == State::Installing;
        self.apply(&ev.enrollment_id, row, change, Some(&ev.command_uuid), now)
            .await?;
        if installed {
            // An Acknowledged is not proof: the Mac's ProfileList is.
            self.verify(std::slice::from_ref(&ev.enrollment_id)).await?;
        }
        Ok(())
    }

    async fn on_profile_list(
        &self,
        source: &dyn DesiredSource,
        ev: &CommandResultEvent,
    ) -> Result<(), ServiceError> {
        if ev.status != ResultStatus::Acknowledged {
            return Ok(());
        }
        let listed = match decode_profile_list(&ev.raw) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(enrollment_id = %ev.enrollment_id, error = %e, "unreadable ProfileList");
                return Ok(());
            }
        };
        let installed: BTreeMap<String, String> =
            listed.into_iter().map(|p| (p.identifier, p.uuid)).collect();
        let check = self.store.profile_check(&ev.enrollment_id).await?;
        let asked_at = check
            .as_ref()
            .filter(|(uuid, _)| *uuid == ev.command_uuid)
            .map(|(_, at)| *at);
        let states = self
            .store
            .profile_states_of_devices(std::slice::from_ref(&ev.device_id))
            .await?;
        let mine: Vec<&ProfileStateRow> = states
            .iter()
            .filter(|r| r.enrollment_id == ev.enrollment_id)
            .collect();
        let mut known = BTreeMap::new();
        for row in &mine {
            if let Some(mut k) = known_of(row) {
                // A command queued before this list was asked, and not in it, did not take:
                // the Mac answers a channel's commands in order (Apple, "Sending MDM commands
                // to a device"), so send it again.
                if k.state == State::Pending
                    && asked_at.is_some_and(|at| row.queued_at.is_some_and(|q| q < at))
                    && !installed.contains_key(&row.identifier)
                {
                    k.state = State::Installing;
                }
                known.insert(row.identifier.clone(), k);
            }
        }
        let now = now_ms();
        let mut changed = false;
        for change in plan::after_profile_list(&known, &installed) {
            if let Some(row) = mine.iter().find(|r| r.identifier == change.identifier) {
                self.apply(&ev.enrollment_id, row, change, None, now)
                    .await?;
                changed = true;
            }
        }
        if asked_at.is_some() {
            self.store
                .clear_profile_check(&ev.enrollment_id, &ev.command_uuid)
                .await?;
        }
        // What drifted goes back on the way now, in this session. A list that changed nothing
        // (the usual answer) leaves the states just read as they are: the plan uses them.
        let unchanged = (!changed).then_some(states);
        let mut report = ReconcileReport::default();
        self.reconcile_batch(
            source,
            std::slice::from_ref(&ev.device_id),
            unchanged,
            &mut report,
        )
        .await?;
        report.log();
        Ok(())
    }

    async fn apply(
        &self,
        enrollment_id: &str,
        row: &ProfileStateRow,
        change: plan::Change,
        if_command: Option<&str>,
        now: i64,
    ) -> Result<(), ServiceError> {
        let next_attempt_at = change
            .failed
            .then(|| plan::next_attempt_at(row.attempts + 1, now));
        if change.failed {
            tracing::warn!(
                enrollment_id,
                identifier = %row.identifier,
                attempts = row.attempts + 1,
                error = %change.error.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                "profile refused by the Mac"
            );
        }
        self.store
            .apply_profile_changes(
                enrollment_id,
                &[ProfileStateChange {
                    identifier: change.identifier,
                    state: change.state.as_str().into(),
                    failed: change.failed,
                    next_attempt_at,
                    forget_command: change.forget_command,
                    error: change.error.map(|e| e.to_string()),
                    if_command: if_command.map(str::to_string),
                }],
                now,
            )
            .await?;
        Ok(())
    }

    /// The periodic part: retries whose backoff passed and drifts to send again, then a
    /// ProfileList for channels not verified within `verify_every`.
    pub async fn sweep(
        &self,
        source: &dyn DesiredSource,
        verify_every: Duration,
    ) -> Result<(), ServiceError> {
        let now = now_ms();
        let due = self
            .store
            .devices_with_profile_work(now, plan::MAX_ATTEMPTS, 10_000)
            .await?;
        if !due.is_empty() {
            self.reconcile(source, &due).await?;
        }
        let every = i64::try_from(verify_every.as_millis()).unwrap_or(i64::MAX);
        let stale = self
            .store
            .channels_to_verify(now.saturating_sub(every), 10_000)
            .await?;
        if !stale.is_empty() {
            let asked = self.verify(&stale).await?;
            tracing::info!(asked, "periodic ProfileList");
        }
        Ok(())
    }
}

/// The stored state as the planner reads it; a row with an unknown state is left alone.
fn known_of(row: &ProfileStateRow) -> Option<Known> {
    Some(Known {
        state: State::parse(&row.state)?,
        version: row.version,
        payload_uuid: row.payload_uuid.clone(),
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        command_uuid: row.command_uuid.clone(),
    })
}

/// A device's enrolled channels with the scope of profiles each takes: its own (System),
/// then its users' (User).
fn channels(device: &DeviceView) -> Vec<(Target<'_>, Scope)> {
    let mut out = vec![(
        Target {
            enrollment_id: &device.udid,
            device,
            user_short_name: None,
        },
        Scope::System,
    )];
    for u in device.user_channels.iter().filter(|u| u.enrolled) {
        let target = Target {
            enrollment_id: &u.enrollment_id,
            device,
            user_short_name: u.user_short_name.as_deref(),
        };
        out.push((target, Scope::User));
    }
    out
}

/// The state rows of channels a command was just queued for (none: it could not be built).
fn recorded(
    items: &[Item<'_>],
    identifier: &str,
    state: State,
    command: Option<&Command>,
) -> Vec<QueuedProfileCommand> {
    items
        .iter()
        .map(|i| QueuedProfileCommand {
            enrollment_id: i.target.enrollment_id.to_string(),
            device_id: i.target.device.udid.clone(),
            identifier: identifier.to_string(),
            state: state.as_str().into(),
            version: i.version,
            payload_uuid: i.payload_uuid.clone(),
            command_uuid: command.map(|c| c.command_uuid.clone()),
        })
        .collect()
}

impl Reconciler {
    /// A ProfileList for the channels of these devices that Russet has profile states for.
    pub async fn verify_known_channels(
        &self,
        device_ids: &[String],
    ) -> Result<usize, ServiceError> {
        let states = self.store.profile_states_of_devices(device_ids).await?;
        let mut channels: Vec<String> = states.into_iter().map(|r| r.enrollment_id).collect();
        channels.sort();
        channels.dedup();
        self.verify(&channels).await
    }
}
