//! What to do with a selected offset: step, slew, or refuse.
//!
//! At the first sync (boot) the clock may be anything, a dead RTC or a VM restored from
//! a year-old snapshot, and units waiting on `time-sync.target` want it right now: an
//! offset above the step threshold is stepped at once (chrony's `makestep`, ntpd's
//! 128 ms). After that the clock is kept by slewing through the kernel's PLL, which
//! never makes time jump and learns the oscillator's frequency error, so corrections
//! stay small; periodic small steps would make time jump back and forth in every log.
//! An offset beyond what the PLL takes (0.5 s) after the first sync (a resumed VM) is
//! stepped, unless only one server says so and by more than `max_step`: one server that
//! suddenly disagrees by a year is more likely wrong than the clock that agreed with it.

use std::fmt;

use crate::clock::MAX_SLEW;
use crate::ntp::sample::Seconds;
use crate::ntp::select::Selection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// At the first sync, an offset larger than this is stepped, a smaller one slewed.
    pub step_threshold: Seconds,
    /// After the first sync, the largest step that a single server may cause.
    pub max_step: Seconds,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            step_threshold: Seconds(128_000_000),
            // chrony's documented `maxchange 1000 1 2`.
            max_step: Seconds(1_000_000_000_000),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Step(Seconds),
    Slew(Seconds),
    Refuse { offset: Seconds, reason: String },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Step(by) => write!(f, "step by {by}"),
            Action::Slew(by) => write!(f, "slew by {by}"),
            Action::Refuse { offset, reason } => write!(f, "not correcting {offset}: {reason}"),
        }
    }
}

impl Policy {
    /// The action for `selection`; `synced` is whether the clock was set before.
    pub fn decide(&self, selection: &Selection, synced: bool) -> Action {
        let offset = selection.chosen.offset;
        if !synced {
            return if offset.abs() > self.step_threshold {
                Action::Step(offset)
            } else {
                Action::Slew(offset)
            };
        }
        if offset.abs() <= MAX_SLEW {
            Action::Slew(offset)
        } else if selection.agreeing < 2 && offset.abs() > self.max_step {
            Action::Refuse {
                offset,
                reason: format!(
                    "only {} says so, after the clock was set, and that is more than the \
                     largest step allowed (--max-step {})",
                    selection.chosen.server,
                    self.max_step.abs()
                ),
            }
        } else {
            Action::Step(offset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntp::sample::Sample;

    const YEAR: i64 = 365 * 86_400 * 1_000_000_000;

    fn selection(offset: i64, agreeing: usize) -> Selection {
        Selection {
            chosen: Sample {
                server: ([127, 0, 0, 1], 123).into(),
                offset: Seconds(offset),
                delay: Seconds(1000),
                stratum: 2,
                root_distance: Seconds(0),
            },
            agreeing,
            falsetickers: vec![],
        }
    }

    #[test]
    fn boot_steps_when_far_off_and_slews_when_close() {
        let policy = Policy::default();
        assert_eq!(
            policy.decide(&selection(-YEAR, 1), false),
            Action::Step(Seconds(-YEAR))
        );
        assert_eq!(
            policy.decide(&selection(200_000_000, 1), false),
            Action::Step(Seconds(200_000_000))
        );
        assert_eq!(
            policy.decide(&selection(-100_000_000, 1), false),
            Action::Slew(Seconds(-100_000_000))
        );
    }

    #[test]
    fn after_sync_a_lone_server_may_not_step_far() {
        let policy = Policy::default();
        assert_eq!(
            policy.decide(&selection(300_000_000, 1), true),
            Action::Slew(Seconds(300_000_000))
        );
        assert_eq!(
            policy.decide(&selection(5_000_000_000, 1), true),
            Action::Step(Seconds(5_000_000_000))
        );
        assert!(matches!(
            policy.decide(&selection(YEAR, 1), true),
            Action::Refuse { .. }
        ));
        // Two servers agreeing are believed.
        assert_eq!(
            policy.decide(&selection(YEAR, 2), true),
            Action::Step(Seconds(YEAR))
        );
        let strict = Policy {
            max_step: Seconds(1_000_000_000),
            ..policy
        };
        assert!(matches!(
            strict.decide(&selection(5_000_000_000, 1), true),
            Action::Refuse { .. }
        ));
    }
}
