//! The step policy: what the harness answers to each training report.

use baton_common::proto::StepPolicy;

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
}

impl StepTracker {
    /// A tracker for an allocation starting after `start_step`.
    pub fn new(policy: StepPolicy, start_step: u64) -> Self {
        Self {
            policy,
            last_step: start_step,
            last_validation: start_step,
            last_checkpoint: start_step,
            suspend_requested: false,
            stopped_for_suspend: false,
        }
    }

    /// The target length in steps.
    pub fn max_length(&self) -> u64 {
        self.policy.max_length
    }

    /// Asks the trial to checkpoint and stop at its next step boundary.
    pub fn request_suspend(&mut self) {
        self.suspend_requested = true;
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
        Ok(directive)
    }

    /// Records a validation.
    pub fn on_validation(&mut self, step: u64) {
        self.last_validation = self.last_validation.max(step);
    }

    /// Records a checkpoint.
    pub fn on_checkpoint(&mut self, step: u64) {
        self.last_checkpoint = self.last_checkpoint.max(step);
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
