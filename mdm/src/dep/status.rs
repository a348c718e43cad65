//! Russet's status of a DEP device record — what an admin filters and counts by — decided
//! here from facts the store keeps: whether Apple says the Mac left the organisation, whether
//! a Mac with that serial is enrolled in Russet, and whether Apple lists a profile for it.

use crate::store::dep::{DepDeviceRecord, DepFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DepStatus {
    /// In DEP, no profile assigned at Apple.
    NotAssigned,
    /// A profile is assigned at Apple; the Mac has not enrolled in Russet yet.
    Assigned,
    /// A Mac with this serial number is enrolled in Russet.
    Enrolled,
    /// Apple says it left the organisation (`deleted`, or disowned by an admin).
    Disowned,
}

impl DepStatus {
    pub const ALL: [DepStatus; 4] = [
        DepStatus::NotAssigned,
        DepStatus::Assigned,
        DepStatus::Enrolled,
        DepStatus::Disowned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DepStatus::NotAssigned => "not_assigned",
            DepStatus::Assigned => "assigned",
            DepStatus::Enrolled => "enrolled",
            DepStatus::Disowned => "disowned",
        }
    }

    /// Parse a status as people type it: `not_assigned`, `Not Assigned`, `not-assigned`.
    pub fn parse(text: &str) -> Option<Self> {
        let norm = text.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        Self::ALL.into_iter().find(|s| s.as_str() == norm)
    }

    /// The rule: leaving the organisation outweighs everything; an enrolled Mac is enrolled
    /// whatever Apple's profile field says; otherwise Apple's profile decides.
    pub fn of(f: DepFacts) -> Self {
        if f.deleted {
            DepStatus::Disowned
        } else if f.enrolled {
            DepStatus::Enrolled
        } else if f.has_profile {
            DepStatus::Assigned
        } else {
            DepStatus::NotAssigned
        }
    }

    pub fn of_record(d: &DepDeviceRecord) -> Self {
        Self::of(d.facts())
    }

    /// The facts that select exactly the records of this status: the store filters by them
    /// (`None` = any), so paging and counting stay in SQL.
    pub fn selector(self) -> DepFactsSelector {
        let (deleted, enrolled, has_profile) = match self {
            DepStatus::Disowned => (true, None, None),
            DepStatus::Enrolled => (false, Some(true), None),
            DepStatus::Assigned => (false, Some(false), Some(true)),
            DepStatus::NotAssigned => (false, Some(false), Some(false)),
        };
        DepFactsSelector {
            deleted: Some(deleted),
            enrolled,
            has_profile,
        }
    }
}

pub use crate::store::dep::DepFactsSelector;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of facts lands in exactly one status, and that status's selector
    /// picks it: filtering in SQL and classifying in Rust never disagree.
    #[test]
    fn selectors_agree_with_the_rule() {
        for deleted in [false, true] {
            for enrolled in [false, true] {
                for has_profile in [false, true] {
                    let f = DepFacts {
                        deleted,
                        enrolled,
                        has_profile,
                    };
                    let picked: Vec<DepStatus> = DepStatus::ALL
                        .into_iter()
                        .filter(|s| s.selector().matches(f))
                        .collect();
                    assert_eq!(picked, vec![DepStatus::of(f)], "{f:?}");
                }
            }
        }
        assert_eq!(
            DepStatus::parse("Not Assigned"),
            Some(DepStatus::NotAssigned)
        );
        assert_eq!(DepStatus::parse("nope"), None);
    }
}
