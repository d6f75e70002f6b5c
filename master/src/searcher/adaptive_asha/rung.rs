//! One rung of a bracket: the results reported at its length, best first.

use std::cmp::Ordering;

use super::RequestId;

/// A trial's result at a rung.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    /// The trial.
    pub trial: RequestId,
    /// The metric, oriented so that smaller is better; `None` for a failure (ranked last).
    pub score: Option<f64>,
    /// How many results the rung had before this one.
    pub arrival: u32,
}

/// The results of one rung, best first; equal scores keep their arrival order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Rung {
    ranked: Vec<Entry>,
}

impl Rung {
    /// The results, best first.
    pub fn ranked(&self) -> &[Entry] {
        &self.ranked
    }

    /// Records a result behind every result at least as good.
    pub fn record(&mut self, trial: RequestId, score: Option<f64>) {
        let at = self.ranked.partition_point(|e| not_worse(e.score, score));
        let arrival = self.ranked.len() as u32;
        self.ranked.insert(
            at,
            Entry {
                trial,
                score,
                arrival,
            },
        );
    }
}

/// Whether a result with score `a` ranks before a later result with score `b`.
fn not_worse(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.partial_cmp(&b) != Some(Ordering::Greater),
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_rank_best_first_failures_last_ties_by_arrival() {
        let mut rung = Rung::default();
        for (id, score) in [
            (0, None),
            (1, Some(0.5)),
            (2, Some(0.1)),
            (3, Some(0.5)),
            (4, None),
        ] {
            rung.record(RequestId(id), score);
        }
        rung.record(RequestId(5), Some(0.0));
        let order: Vec<(u32, u32)> = rung
            .ranked()
            .iter()
            .map(|e| (e.trial.0, e.arrival))
            .collect();
        assert_eq!(order, [(5, 5), (2, 2), (1, 1), (3, 3), (0, 0), (4, 4)]);
    }
}
