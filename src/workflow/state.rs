//! The erasure state machine: its states, and the one table of legal
//! transitions. Every state change in the store goes through
//! [`State::check_transition`], so an illegal transition is rejected with an
//! error and never stored.
//!
//! A state names the last milestone reached; the work in progress is the
//! [`Phase`] that leads to the next milestone:
//!
//! ```text
//! Requested --finding targets--> TargetsFound --deleting objects--> S3Cleared
//!   --masking rows--> DbMasked --verifying--> Done
//! ```
//!
//! Any active state may go to Failed (which remembers where to resume) and
//! back; Cancelled is reachable only before S3 deletion has started.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where an erasure request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "serve", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Accepted; nothing touched yet.
    Requested,
    /// The manifest of rows and objects is complete.
    TargetsFound,
    /// Every object in the manifest is deleted.
    S3Cleared,
    /// Every row in the manifest is masked.
    DbMasked,
    /// Verified and recorded. Terminal.
    Done,
    /// Stopped by a permanent error or too many transient ones; `retry`
    /// resumes it from its checkpoint.
    Failed,
    /// Withdrawn before any object was deleted. Terminal.
    Cancelled,
    /// A duplicate submission folded into the subject's active request. Terminal.
    Coalesced,
}

/// The work a worker does to move a request out of an active state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Discovering rows and objects and writing the manifest (Requested -> TargetsFound).
    FindingTargets,
    /// Deleting manifest objects from S3 (TargetsFound -> S3Cleared).
    DeletingObjects,
    /// Masking manifest rows (S3Cleared -> DbMasked).
    MaskingRows,
    /// Reading back objects and rows (DbMasked -> Done).
    Verifying,
}

/// A state change that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal state transition {from} -> {to}")]
pub struct IllegalTransition {
    pub from: State,
    pub to: State,
}

impl State {
    /// Every state, in workflow order.
    pub const ALL: [State; 8] = [
        State::Requested,
        State::TargetsFound,
        State::S3Cleared,
        State::DbMasked,
        State::Done,
        State::Failed,
        State::Cancelled,
        State::Coalesced,
    ];

    /// States a worker advances; these hold the subject.
    pub const ACTIVE: [State; 4] = [
        State::Requested,
        State::TargetsFound,
        State::S3Cleared,
        State::DbMasked,
    ];

    /// The one place that says which transitions are legal.
    pub fn can_transition_to(self, to: State) -> bool {
        use State::*;
        match (self, to) {
            (Requested, TargetsFound)
            | (TargetsFound, S3Cleared)
            | (S3Cleared, DbMasked)
            | (DbMasked, Done) => true,
            // Any active state can fail, and a failed request resumes where
            // it stopped (the store checks it resumes to its own resume_state).
            (from, Failed) if from.is_active() => true,
            (Failed, to) if to.is_active() => true,
            // Cancel only before deletion: once an object is gone, the
            // erasure must finish, or the rows pointing at it would lie.
            // (TargetsFound is cancellable only while S3 deletion has not
            // started; the store checks s3_started_at.)
            (Requested | TargetsFound | Failed, Cancelled) => true,
            _ => false,
        }
    }

    /// Checks a transition, naming it in the error when it is illegal.
    pub fn check_transition(self, to: State) -> Result<(), IllegalTransition> {
        if self.can_transition_to(to) {
            Ok(())
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    /// The next milestone on the happy path, if any.
    pub fn next(self) -> Option<State> {
        match self {
            State::Requested => Some(State::TargetsFound),
            State::TargetsFound => Some(State::S3Cleared),
            State::S3Cleared => Some(State::DbMasked),
            State::DbMasked => Some(State::Done),
            _ => None,
        }
    }

    /// The work that leads out of this state, if a worker has any to do.
    pub fn phase(self) -> Option<Phase> {
        match self {
            State::Requested => Some(Phase::FindingTargets),
            State::TargetsFound => Some(Phase::DeletingObjects),
            State::S3Cleared => Some(Phase::MaskingRows),
            State::DbMasked => Some(Phase::Verifying),
            _ => None,
        }
    }

    pub fn is_active(self) -> bool {
        State::ACTIVE.contains(&self)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, State::Done | State::Cancelled | State::Coalesced)
    }

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::TargetsFound => "targets_found",
            State::S3Cleared => "s3_cleared",
            State::DbMasked => "db_masked",
            State::Done => "done",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::Coalesced => "coalesced",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of ours.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown state {0:?}; expected one of requested, targets_found, s3_cleared, db_masked, done, failed, cancelled, coalesced"
)]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::FindingTargets => "finding_targets",
            Phase::DeletingObjects => "deleting_objects",
            Phase::MaskingRows => "masking_rows",
            Phase::Verifying => "verifying",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for State {
    type Error = UnknownState;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn happy_path_is_legal_in_order_only() {
        let path = [
            State::Requested,
            State::TargetsFound,
            State::S3Cleared,
            State::DbMasked,
            State::Done,
        ];
        for pair in path.windows(2) {
            assert!(
                pair[0].can_transition_to(pair[1]),
                "{} -> {}",
                pair[0],
                pair[1]
            );
            assert!(
                !pair[1].can_transition_to(pair[0]),
                "{} -> {}",
                pair[1],
                pair[0]
            );
        }
        assert!(!State::Requested.can_transition_to(State::S3Cleared));
        assert!(!State::TargetsFound.can_transition_to(State::DbMasked));
    }

    #[test]
    fn cancel_only_before_deletion() {
        assert!(State::Requested.can_transition_to(State::Cancelled));
        assert!(State::TargetsFound.can_transition_to(State::Cancelled));
        assert!(!State::S3Cleared.can_transition_to(State::Cancelled));
        assert!(!State::DbMasked.can_transition_to(State::Cancelled));
        assert!(!State::Done.can_transition_to(State::Cancelled));
    }

    #[test]
    fn terminal_states_go_nowhere() {
        for from in [State::Done, State::Cancelled, State::Coalesced] {
            for to in State::ALL {
                assert!(from.check_transition(to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn failed_resumes_to_active_states_only() {
        for to in State::ALL {
            assert_eq!(
                State::Failed.can_transition_to(to),
                to.is_active() || to == State::Cancelled,
                "failed -> {to}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>().ok(), Some(state));
        }
        assert!("Done".parse::<State>().is_err());
    }
}
