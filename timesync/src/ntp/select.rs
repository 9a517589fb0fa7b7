//! Which servers to believe: Marzullo's intersection, as in RFC 5905's selection.
//!
//! Each sample says the true time lies within `offset ± error bound`. The point covered
//! by the most of those intervals is the most believed time; the servers whose interval
//! covers it are the truechimers, the others falsetickers. A majority of the answering
//! servers must agree, so one server that lies by a year is outvoted by two honest ones;
//! two servers that disagree leave no majority, and the clock is left alone.

use std::fmt;

use thiserror::Error;

use super::sample::{Sample, Seconds};

/// The least error bound given to a sample: servers that agree within a millisecond agree
/// for every purpose of a node's clock, and timestamps on a quiet loopback are closer
/// than the clocks' own reading jitter.
pub const MIN_ERROR_BOUND: Seconds = Seconds(1_000_000);

/// The outcome of a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The truechimer with the smallest error bound (the unclamped one breaks ties): its
    /// offset is applied.
    pub chosen: Sample,
    /// How many servers agree (the chosen one included).
    pub agreeing: usize,
    /// The servers outvoted.
    pub falsetickers: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SelectError {
    #[error("no server answered")]
    NoSamples,
    #[error("the servers disagree and no majority agrees: {}", List(.0))]
    NoMajority(Vec<Sample>),
}

struct List<'a>(&'a [Sample]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} says {}", s.server, s.offset)?;
        }
        Ok(())
    }
}

fn bound(sample: &Sample) -> i64 {
    sample.error_bound().0.max(MIN_ERROR_BOUND.0)
}

/// Chooses among one sample per server.
pub fn select(samples: &[Sample]) -> Result<Selection, SelectError> {
    if samples.is_empty() {
        return Err(SelectError::NoSamples);
    }
    // Interval ends: (value, +1 for a start, -1 for an end); starts sort before ends at
    // the same value so touching intervals count as overlapping.
    let mut ends: Vec<(i64, i32)> = samples
        .iter()
        .flat_map(|s| {
            let b = bound(s);
            [
                (s.offset.0.saturating_sub(b), 1),
                (s.offset.0.saturating_add(b), -1),
            ]
        })
        .collect();
    ends.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let (mut depth, mut best_depth, mut best_point) = (0, 0, 0);
    for (value, step) in ends {
        depth += step;
        if depth > best_depth {
            best_depth = depth;
            best_point = value;
        }
    }
    let (truechimers, falsetickers): (Vec<&Sample>, Vec<&Sample>) = samples.iter().partition(|s| {
        let b = bound(s);
        s.offset.0.saturating_sub(b) <= best_point && best_point <= s.offset.0.saturating_add(b)
    });
    if truechimers.len() * 2 <= samples.len() && samples.len() > 1 {
        return Err(SelectError::NoMajority(samples.to_vec()));
    }
    let chosen = truechimers
        .iter()
        .min_by_key(|s| (bound(s), s.error_bound()))
        .map(|s| (*s).clone())
        .ok_or(SelectError::NoSamples)?;
    Ok(Selection {
        chosen,
        agreeing: truechimers.len(),
        falsetickers: falsetickers.into_iter().cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const YEAR: i64 = 365 * 86_400 * 1_000_000_000;

    fn sample(port: u16, offset: i64, delay: i64) -> Sample {
        Sample {
            server: ([127, 0, 0, 1], port).into(),
            offset: Seconds(offset),
            delay: Seconds(delay),
            stratum: 3,
            root_distance: Seconds(0),
        }
    }

    #[test]
    fn a_liar_is_outvoted_by_two_honest_servers() {
        let honest_a = sample(1, 120_000, 80_000);
        let honest_b = sample(2, 90_000, 50_000);
        let liar = sample(3, YEAR, 10_000);
        let selection = select(&[honest_a, liar.clone(), honest_b.clone()]).unwrap();
        assert_eq!(selection.agreeing, 2);
        assert_eq!(selection.chosen, honest_b);
        assert_eq!(selection.falsetickers, vec![liar]);
    }

    #[test]
    fn two_servers_that_disagree_leave_the_clock_alone() {
        let err = select(&[sample(1, 0, 1000), sample(2, YEAR, 1000)]).unwrap_err();
        assert!(matches!(err, SelectError::NoMajority(_)));
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1:2 says +31536000.000000 s"),
            "{text}"
        );
    }

    #[test]
    fn one_server_is_believed_and_none_is_an_error() {
        let only = sample(1, YEAR, 1000);
        assert_eq!(select(std::slice::from_ref(&only)).unwrap().chosen, only);
        assert_eq!(select(&[]), Err(SelectError::NoSamples));
    }

    #[test]
    fn wide_intervals_that_overlap_agree() {
        // 10 ms apart, but each with a 40 ms round trip: they agree.
        let selection =
            select(&[sample(1, 0, 40_000_000), sample(2, 10_000_000, 40_000_000)]).unwrap();
        assert_eq!(selection.agreeing, 2);
    }

    proptest! {
        #[test]
        fn a_majority_within_a_millisecond_always_wins(
            honest in proptest::collection::vec(-900_000i64..900_000, 2..6),
            liars in proptest::collection::vec(-(10 * YEAR)..(10 * YEAR), 0..2),
        ) {
            prop_assume!(liars.len() < honest.len());
            let mut all: Vec<Sample> = honest.iter().enumerate().map(|(i, o)| sample(i as u16, *o / 2, 0)).collect();
            all.extend(liars.iter().enumerate().map(|(i, o)| sample(100 + i as u16, o.saturating_add(YEAR / 100).max(YEAR / 100), 0)));
            let selection = select(&all).unwrap();
            prop_assert!(selection.chosen.offset.0.abs() < 1_000_000);
            prop_assert!(selection.agreeing >= honest.len());
        }
    }
}
