//! The step policy: what the harness answers to each training report.

use std::path::PathBuf;

use baton_common::proto::StepPolicy;
use serde::{Deserialize, Serialize};

/// What the trial should do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directive {
    /// Report validation metrics at this step.
    pub validate: bool,
    /// Write a checkpoint at this step.
    pub checkpoint: bool,
    /// Return after doing the above.
    pub stop: bool,
}

/// The bookkeeping that must outlive a daemon restart (the step itself is the trial's to repeat).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Durable {
    last_validation: u64,
    last_checkpoint: u64,
    suspend_requested: bool,
    stopped_for_suspend: bool,
}

/// Step bookkeeping of one allocation.
#[derive(Debug, Clone)]
pub struct StepTracker {
    policy: StepPolicy,
    /// Last step reported.
    pub last_step: u64,
    last_validation: u64,
    last_checkpoint: u64,
    suspend_requested: bool,
    /// Whether a stop was answered because of a suspend request.
    pub stopped_for_suspend: bool,
    record: Option<PathBuf>,
}

impl StepTracker {
    /// A tracker for an allocation starting after `start_step`, kept in `record` (and resumed
    /// from it when a previous daemon left it there).
    pub fn new(policy: StepPolicy, start_step: u64, record: Option<PathBuf>) -> Self {
        let durable: Durable = record
            .as_deref()
            .and_then(crate::allocation::record::read_json)
            .unwrap_or(Durable {
                last_validation: start_step,
                last_checkpoint: start_step,
                ..Durable::default()
            });
        Self {
            policy,
            last_step: start_step
                .max(durable.last_validation)
                .max(durable.last_checkpoint),
            last_validation: durable.last_validation,
            last_checkpoint: durable.last_checkpoint,
            suspend_requested: durable.suspend_requested,
            stopped_for_suspend: durable.stopped_for_suspend,
            record,
        }
    }

    fn durable(&self) -> Durable {
        Durable {
            last_validation: self.last_validation,
            last_checkpoint: self.last_checkpoint,
            suspend_requested: self.suspend_requested,
            stopped_for_suspend: self.stopped_for_suspend,
        }
    }

    /// Writes the durable part when `before` differs from it.
    fn save_if_changed(&self, before: Durable) {
        let now = self.durable();
        if now == before {
            return;
        }
        if let Some(path) = &self.record
            && let Err(e) = crate::allocation::record::write_json(path, &now)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot record step bookkeeping");
        }
    }

    /// The target length in steps.
    pub fn max_length(&self) -> u64 {
        self.policy.max_length
    }

    /// Asks the trial to checkpoint and stop at its next step boundary.
    pub fn request_suspend(&mut self) {
        let before = self.durable();
        self.suspend_requested = true;
        self.save_if_changed(before);
    }

    /// Whether a suspend was requested.
    pub fn suspend_requested(&self) -> bool {
        self.suspend_requested
    }

    /// Records a training step and decides what the trial does next.
    pub fn on_training(&mut self, step: u64) -> Result<Directive, String> {
        if step <= self.last_step {
            return Err(format!(
                "step {step} does not follow step {}: report steps in increasing order",
                self.last_step
            ));
        }
        let before = self.durable();
        self.last_step = step;
        let done = step >= self.policy.max_length;
        let due = |period: u64, last: u64| period > 0 && step - last >= period;
        let directive = Directive {
            validate: done || due(self.policy.min_validation_period, self.last_validation),
            checkpoint: done
                || self.suspend_requested
                || due(self.policy.min_checkpoint_period, self.last_checkpoint),
            stop: done || self.suspend_requested,
        };
        if self.suspend_requested && !done {
            self.stopped_for_suspend = true;
        }
        self.save_if_changed(before);
        Ok(directive)
    }

    /// Records a validation.
    pub fn on_validation(&mut self, step: u64) {
        let before = self.durable();
        self.last_validation = self.last_validation.max(step);
        self.save_if_changed(before);
    }

    /// Records a checkpoint.
    pub fn on_checkpoint(&mut self, step: u64) {
        let before = self.durable();
        self.last_checkpoint = self.last_checkpoint.max(step);
        self.save_if_changed(before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(max: u64, val: u64, ckpt: u64, start: u64) -> StepTracker {
        StepTracker::new(
            StepPolicy {
                max_length: max,
                min_validation_period: val,
                min_checkpoint_period: ckpt,
                preemption_timeout_ms: 1000,
            },
            start,
            None,
        )
    }

    #[test]
    fn periods_and_completion() {
        let mut t = tracker(10, 2, 5, 0);
        let mut seen = Vec::new();
        for step in 1..=10 {
            let d = t.on_training(step).unwrap();
            if d.validate {
                t.on_validation(step);
            }
            if d.checkpoint {
                t.on_checkpoint(step);
            }
            seen.push((d.validate, d.checkpoint, d.stop));
        }
        assert_eq!(seen[1], (true, false, false));
        assert_eq!(seen[4], (false, true, false));
        assert_eq!(seen[9], (true, true, true));
        assert_eq!(seen.iter().filter(|d| d.1).count(), 2);
    }

    #[test]
    fn suspend_checkpoints_and_stops_at_next_step() {
        let mut t = tracker(100, 0, 0, 40);
        assert_eq!(t.on_training(41).unwrap(), Directive::default());
        t.request_suspend();
        let d = t.on_training(42).unwrap();
        assert!(d.checkpoint && d.stop && !d.validate);
        assert!(t.stopped_for_suspend);
    }

    #[test]
    fn a_restarted_daemon_resumes_the_bookkeeping_it_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("tracker.json");
        let policy = tracker(100, 10, 25, 0).policy;
        let mut first = StepTracker::new(policy, 0, Some(record.clone()));
        for step in 1..=30 {
            let d = first.on_training(step).unwrap();
            if d.validate {
                first.on_validation(step);
            }
            if d.checkpoint {
                first.on_checkpoint(step);
            }
        }
        first.request_suspend();
        let mut second = StepTracker::new(policy, 0, Some(record));
        assert!(second.suspend_requested());
        assert_eq!(
            second.last_step, 30,
            "the last validation (30) bounds the steps seen"
        );
        let d = second.on_training(31).unwrap();
        assert!(d.checkpoint && d.stop);
        assert!(second.stopped_for_suspend);
    }

    #[test]
    fn steps_must_increase() {
        let mut t = tracker(100, 0, 0, 40);
        assert!(
            t.on_training(40)
                .unwrap_err()
                .contains("step 40 does not follow step 40")
        );
        t.on_training(41).unwrap();
        assert!(t.on_training(41).is_err());
    }
}
