//! Each trial's best and latest validation of its experiment's searcher metric, kept in memory
//! for the experiment and trial views.

use baton_common::proto::MetricValue;

use super::state::Cluster;
use crate::error::MasterResult;

/// The searcher metric validated at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricAt {
    /// The step.
    pub step: u64,
    /// The metric's value.
    pub value: f64,
}

impl MetricAt {
    /// In API shape, for `trial_id`.
    pub fn view(self, trial_id: u64) -> MetricValue {
        MetricValue {
            trial_id,
            step: self.step,
            value: self.value,
        }
    }
}

/// A trial's best validation of the searcher metric and its validation at the furthest step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricSummary {
    /// The best value; the earliest step among equals.
    pub best: Option<MetricAt>,
    /// The value at the furthest step validated.
    pub latest: Option<MetricAt>,
}

impl MetricSummary {
    /// Takes in a validation of the metric at `step`; a value that is not finite ranks nowhere.
    pub fn record(&mut self, step: u64, value: f64, smaller_is_better: bool) {
        if !value.is_finite() {
            return;
        }
        let at = MetricAt { step, value };
        if self.latest.is_none_or(|latest| step >= latest.step) {
            self.latest = Some(at);
        }
        if self
            .best
            .is_none_or(|best| is_better(at, best, smaller_is_better))
        {
            self.best = Some(at);
        }
    }
}

/// Whether `a` ranks above `b`: the better value, or the earlier step among equals.
pub fn is_better(a: MetricAt, b: MetricAt, smaller_is_better: bool) -> bool {
    let by_value = if smaller_is_better {
        a.value.total_cmp(&b.value)
    } else {
        b.value.total_cmp(&a.value)
    };
    by_value.then(a.step.cmp(&b.step)).is_lt()
}

impl Cluster {
    /// Takes a stored validation into its trial's metric summary.
    pub(super) fn note_validation(&mut self, trial_id: u64, step: u64, metrics_json: &str) {
        let Some(trial) = self.trials.get_mut(&trial_id) else {
            return;
        };
        let Some(experiment) = self.experiments.get(&trial.row.experiment_id) else {
            return;
        };
        let searcher = &experiment.config.searcher;
        let value = serde_json::from_str::<serde_json::Value>(metrics_json)
            .ok()
            .and_then(|metrics| metrics.get(&searcher.metric)?.as_f64());
        if let Some(value) = value {
            trial
                .metrics
                .record(step, value, searcher.smaller_is_better);
        }
    }

    /// Reads every stored validation into the trials' metric summaries.
    pub(super) fn load_metric_summaries(&mut self) -> MasterResult<()> {
        for (trial_id, row) in self.store.all_validations()? {
            self.note_validation(trial_id, row.step, &row.metrics_json);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_and_the_furthest_step() {
        let mut summary = MetricSummary::default();
        summary.record(10, 0.5, true);
        summary.record(30, 0.7, true);
        summary.record(20, 0.2, true);
        summary.record(40, 0.2, true);
        summary.record(50, f64::NAN, true);
        assert_eq!(
            summary.best,
            Some(MetricAt {
                step: 20,
                value: 0.2
            })
        );
        assert_eq!(
            summary.latest,
            Some(MetricAt {
                step: 40,
                value: 0.2
            })
        );
        let mut larger = MetricSummary::default();
        larger.record(10, 0.5, false);
        larger.record(20, 0.9, false);
        larger.record(30, 0.1, false);
        assert_eq!(
            larger.best,
            Some(MetricAt {
                step: 20,
                value: 0.9
            })
        );
        assert_eq!(
            larger.latest,
            Some(MetricAt {
                step: 30,
                value: 0.1
            })
        );
    }

    #[test]
    fn a_validation_sent_again_changes_nothing() {
        let mut summary = MetricSummary::default();
        summary.record(10, 0.5, true);
        let before = summary;
        summary.record(10, 0.5, true);
        assert_eq!(summary, before);
    }
}
