//! The reconciler's decisions, as pure functions: what to send to make a Mac match what it
//! should have, and what a Mac's answers mean for each profile's state.
//!
//! The truth is what the Mac reports in `ProfileList` (Apple, "ProfileList" command: the
//! installed profiles with their `PayloadIdentifier` and `PayloadUUID`); an `Acknowledged`
//! InstallProfile only moves a profile to `installing` until a ProfileList shows it. Russet
//! never removes a profile it did not install: only profiles it has a state for are ever
//! removed.

use std::collections::{BTreeMap, BTreeSet};

/// Failed installs are retried this many times in a row, then wait for a new version or an
/// admin's action.
pub const MAX_ATTEMPTS: i64 = 3;
/// First retry after a failure; each further one waits four times longer (5, 20, 80 min).
pub const FIRST_RETRY_MS: i64 = 5 * 60 * 1000;

/// Where one profile stands on one channel of one Mac.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Wanted and not (yet) installed: an InstallProfile is queued and unanswered, or — with
    /// no command — one must be sent (a drift found by a ProfileList).
    Pending,
    /// The Mac acknowledged the install; a ProfileList has not shown it yet.
    Installing,
    /// A ProfileList showed this version (its `PayloadUUID`).
    Verified,
    /// The Mac refused the install or the removal (Apple's error chain kept).
    Failed,
    /// A RemoveProfile is queued or sent.
    Removing,
    /// Gone from the Mac.
    Removed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Installing => "installing",
            State::Verified => "verified",
            State::Failed => "failed",
            State::Removing => "removing",
            State::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => State::Pending,
            "installing" => State::Installing,
            "verified" => State::Verified,
            "failed" => State::Failed,
            "removing" => State::Removing,
            "removed" => State::Removed,
            _ => return None,
        })
    }
}

/// A profile version a channel should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub version: i64,
    /// The `PayloadUUID` a ProfileList shows once this version is installed.
    pub payload_uuid: String,
}

/// What Russet knows about one profile on one channel (its stored state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub state: State,
    pub version: i64,
    pub payload_uuid: String,
    /// Failures in a row.
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    /// The InstallProfile or RemoveProfile last queued for it.
    pub command_uuid: Option<String>,
}

/// What to send for one profile on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Install { identifier: String, version: i64 },
    Remove { identifier: String },
}

/// The plan for one channel: install what is wanted and missing, outdated or due for a retry;
/// remove what Russet installed and is no longer wanted. Profiles Russet knows nothing of are
/// never touched.
pub fn plan(
    wanted: &BTreeMap<String, Wanted>,
    known: &BTreeMap<String, Known>,
    now: i64,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for (identifier, w) in wanted {
        let install = match known.get(identifier) {
            None => true,
            Some(k) => match k.state {
                State::Removing | State::Removed => true,
                _ if k.version < w.version => true,
                State::Failed => retry_due(k, now),
                State::Pending => k.command_uuid.is_none(),
                State::Installing | State::Verified => false,
            },
        };
        if install {
            actions.push(Action::Install {
                identifier: identifier.clone(),
                version: w.version,
            });
        }
    }
    for (identifier, k) in known {
        if wanted.contains_key(identifier) {
            continue;
        }
        let remove = match k.state {
            State::Pending | State::Installing | State::Verified => true,
            State::Failed => retry_due(k, now),
            State::Removing | State::Removed => false,
        };
        if remove {
            actions.push(Action::Remove {
                identifier: identifier.clone(),
            });
        }
    }
    actions
}

fn retry_due(k: &Known, now: i64) -> bool {
    k.attempts < MAX_ATTEMPTS && k.next_attempt_at.is_none_or(|at| at <= now)
}

/// When to try again after the `attempts`-th failure in a row.
pub fn next_attempt_at(attempts: i64, now: i64) -> i64 {
    let exp = u32::try_from((attempts - 1).clamp(0, 8)).unwrap_or(0);
    now.saturating_add(FIRST_RETRY_MS.saturating_mul(4_i64.saturating_pow(exp)))
}

/// A change of one profile's state on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub identifier: String,
    pub state: State,
    /// Count a failure (and schedule the retry).
    pub failed: bool,
    /// The queued command is no longer the way there (drift): the next plan sends another.
    pub forget_command: bool,
    /// Apple's error chain, verbatim, for a failure.
    pub error: Option<serde_json::Value>,
}

/// What a ProfileList (identifier → `PayloadUUID` installed) means for the profiles Russet
/// knows on that channel. A profile that was verified, or acknowledged, and is now missing (or
/// carries another UUID) has drifted: back to `pending`, so the next plan reinstalls it. A
/// removal is confirmed by its absence.
pub fn after_profile_list(
    known: &BTreeMap<String, Known>,
    installed: &BTreeMap<String, String>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (identifier, k) in known {
        let present = installed.get(identifier);
        let shows_this_version = present.is_some_and(|u| *u == k.payload_uuid);
        let next = match k.state {
            State::Pending | State::Failed if shows_this_version => Some(State::Verified),
            State::Installing if shows_this_version => Some(State::Verified),
            State::Verified if shows_this_version => None,
            // Acknowledged (or verified) but not there: drift, or undone by hand.
            State::Installing | State::Verified => Some(State::Pending),
            State::Removing if present.is_none() => Some(State::Removed),
            // Removed, yet back (installed by hand with Russet's identifier): leave it alone.
            _ => None,
        };
        if let Some(state) = next {
            changes.push(Change {
                identifier: identifier.clone(),
                state,
                failed: false,
                forget_command: state == State::Pending,
                error: None,
            });
        }
    }
    changes
}

/// The Mac's answer to an InstallProfile or RemoveProfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Acknowledged,
    Error,
    CommandFormatError,
    /// Not now: the command stays queued and comes again; nothing changes.
    NotNow,
}

/// MCMDMErrorDomain 12013, "The profile … is not managed by MDM": a removal of a profile that
/// is not (or no longer) there.
pub const NOT_MANAGED_BY_MDM: i64 = 12013;

/// What an answer to Russet's own InstallProfile or RemoveProfile means. `error_codes` are the
/// `ErrorCode`s of the report's ErrorChain.
pub fn after_answer(
    identifier: &str,
    removing: bool,
    answer: Answer,
    error_codes: &[i64],
    error: Option<serde_json::Value>,
) -> Option<Change> {
    let (state, failed) = match (removing, answer) {
        (_, Answer::NotNow) => return None,
        (false, Answer::Acknowledged) => (State::Installing, false),
        (true, Answer::Acknowledged) => (State::Removed, false),
        (true, Answer::Error) if error_codes.contains(&NOT_MANAGED_BY_MDM) => {
            (State::Removed, false)
        }
        (_, Answer::Error | Answer::CommandFormatError) => (State::Failed, true),
    };
    Some(Change {
        identifier: identifier.to_string(),
        state,
        failed,
        forget_command: false,
        error: if failed { error } else { None },
    })
}

/// The identifiers a plan installs, removes — for logs and tests.
pub fn summary(actions: &[Action]) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let mut install = BTreeSet::new();
    let mut remove = BTreeSet::new();
    for a in actions {
        match a {
            Action::Install { identifier, .. } => install.insert(identifier.as_str()),
            Action::Remove { identifier } => remove.insert(identifier.as_str()),
        };
    }
    (install, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(items: &[(&str, i64)]) -> BTreeMap<String, Wanted> {
        items
            .iter()
            .map(|(i, v)| {
                (
                    i.to_string(),
                    Wanted {
                        version: *v,
                        payload_uuid: format!("{i}-v{v}"),
                    },
                )
            })
            .collect()
    }

    fn known(items: &[(&str, State, i64)]) -> BTreeMap<String, Known> {
        items
            .iter()
            .map(|(i, s, v)| {
                (
                    i.to_string(),
                    Known {
                        state: *s,
                        version: *v,
                        payload_uuid: format!("{i}-v{v}"),
                        attempts: 0,
                        next_attempt_at: None,
                        command_uuid: None,
                    },
                )
            })
            .collect()
    }

    fn install(i: &str, v: i64) -> Action {
        Action::Install {
            identifier: i.into(),
            version: v,
        }
    }

    fn remove(i: &str) -> Action {
        Action::Remove {
            identifier: i.into(),
        }
    }

    #[test]
    fn missing_and_outdated_profiles_are_installed_once() {
        let w = wanted(&[("a", 1), ("b", 2), ("c", 1)]);
        let mut k = known(&[("b", State::Verified, 1), ("c", State::Pending, 1)]);
        k.get_mut("c").expect("c").command_uuid = Some("queued".into());
        assert_eq!(plan(&w, &k, 0), [install("a", 1), install("b", 2)]);
        // Nothing more while they are on their way or verified.
        let mut k = known(&[
            ("a", State::Pending, 1),
            ("b", State::Installing, 2),
            ("c", State::Verified, 1),
        ]);
        k.get_mut("a").expect("a").command_uuid = Some("queued".into());
        assert!(plan(&w, &k, 0).is_empty());
        // Pending without a command (drift found by a ProfileList): send it again.
        k.get_mut("a").expect("a").command_uuid = None;
        assert_eq!(plan(&w, &k, 0), [install("a", 1)]);
    }

    #[test]
    fn only_what_russet_installed_is_removed() {
        let w = wanted(&[]);
        let k = known(&[
            ("a", State::Verified, 1),
            ("b", State::Removing, 1),
            ("c", State::Removed, 1),
            ("d", State::Pending, 1),
        ]);
        assert_eq!(plan(&w, &k, 0), [remove("a"), remove("d")]);
        // A profile removed earlier and wanted again is installed again.
        let w = wanted(&[("c", 1)]);
        assert!(plan(&w, &k, 0).contains(&install("c", 1)));
    }

    #[test]
    fn failures_are_retried_with_backoff_a_bounded_number_of_times() {
        let w = wanted(&[("a", 1)]);
        let mut k = known(&[("a", State::Failed, 1)]);
        let f = k.get_mut("a").expect("a");
        f.attempts = 1;
        f.next_attempt_at = Some(next_attempt_at(1, 1_000));
        assert!(plan(&w, &k, 1_000).is_empty(), "not before the backoff");
        assert_eq!(plan(&w, &k, 1_000 + FIRST_RETRY_MS), [install("a", 1)]);
        assert_eq!(next_attempt_at(2, 0), 4 * FIRST_RETRY_MS);
        let f = k.get_mut("a").expect("a");
        f.attempts = MAX_ATTEMPTS;
        f.next_attempt_at = Some(0);
        assert!(plan(&w, &k, i64::MAX).is_empty(), "gave up");
        // A new version starts over.
        assert_eq!(plan(&wanted(&[("a", 2)]), &k, 0), [install("a", 2)]);
    }

    #[test]
    fn a_profile_list_verifies_confirms_removals_and_finds_drift() {
        let k = known(&[
            ("acked", State::Installing, 1),
            ("queued", State::Pending, 1),
            ("kept", State::Verified, 1),
            ("gone", State::Verified, 1),
            ("old", State::Verified, 1),
            ("leaving", State::Removing, 1),
        ]);
        let installed: BTreeMap<String, String> = [
            ("acked", "acked-v1"),
            ("kept", "kept-v1"),
            ("old", "old-v0"),
            ("foreign", "x"),
        ]
        .iter()
        .map(|(i, u)| (i.to_string(), u.to_string()))
        .collect();
        let changes: BTreeMap<String, State> = after_profile_list(&k, &installed)
            .into_iter()
            .map(|c| (c.identifier, c.state))
            .collect();
        assert_eq!(
            changes,
            [
                ("acked", State::Verified),
                ("gone", State::Pending),
                ("leaving", State::Removed),
                ("old", State::Pending),
            ]
            .iter()
            .map(|(i, s)| (i.to_string(), *s))
            .collect::<BTreeMap<_, _>>(),
            "queued stays pending (not answered yet); kept is unchanged; foreign is not Russet's"
        );
    }

    #[test]
    fn answers_move_the_state() {
        let err = Some(serde_json::json!([{"ErrorCode": 4001}]));
        assert_eq!(
            after_answer("a", false, Answer::Acknowledged, &[], None).map(|c| c.state),
            Some(State::Installing)
        );
        let failed = after_answer("a", false, Answer::Error, &[4001], err.clone()).expect("change");
        assert!(failed.failed && failed.state == State::Failed && failed.error == err);
        assert_eq!(after_answer("a", false, Answer::NotNow, &[], None), None);
        assert_eq!(
            after_answer("a", true, Answer::Error, &[NOT_MANAGED_BY_MDM], err).map(|c| c.state),
            Some(State::Removed),
            "removing what is not there is done"
        );
        assert_eq!(
            after_answer("a", true, Answer::Acknowledged, &[], None).map(|c| c.state),
            Some(State::Removed)
        );
    }
}
