//! Collection while an experiment runs: the checkpoints that end-of-experiment collection deletes
//! whatever happens until then, so that deleting them early changes nothing at the end.
//!
//! A checkpoint outside its trial's latest `save_trial_latest`, its trial's best `save_trial_best`
//! and the experiment's best `save_experiment_best` can only be pushed further out by checkpoints
//! still to come, as long as the metrics that rank others above it never change. So:
//! - A checkpoint's metric is settled once its trial can no longer run, or once the trial has
//!   committed a checkpoint of a later step: a trial validates a step before it trains past it,
//!   and a validation of an earlier step reported after that is not waited for.
//! - Only settled metrics rank for "best"; an unsettled checkpoint (the latest of a trial that can
//!   still run, and any other of the same step) ranks by step only, and is kept.
//! - Held checkpoints (pinned, or restored from by a running allocation) are kept and still rank.
//! - Only COMPLETED checkpoints are selected and ranked; DELETING, DELETED and ERROR ones are left
//!   to the deletions under way, as at the end.
//!
//! Under these rules, what is deleted while running plus what the end deletes is exactly what the
//! end alone deletes on the same history (`running/tests.rs` checks it on random histories).

use std::collections::HashMap;

use super::{CheckpointState, GcCandidate, GcPolicy, select};

/// The uuids of COMPLETED checkpoints that collection at the end of the experiment will delete
/// whatever the experiment still does, in creation order.
pub fn collectable_while_running(candidates: &[GcCandidate], policy: &GcPolicy) -> Vec<String> {
    let completed = || {
        candidates
            .iter()
            .filter(|c| c.state == CheckpointState::Completed)
    };
    // Per trial: the highest step committed, and whether the trial can still run.
    let mut trials: HashMap<u64, (u64, bool)> = HashMap::new();
    for c in completed() {
        let trial = trials.entry(c.trial_id).or_insert((c.step, false));
        trial.0 = trial.0.max(c.step);
        trial.1 |= c.trial_can_run;
    }
    let view: Vec<GcCandidate> = completed()
        .map(|c| {
            let (latest_step, can_run) = trials[&c.trial_id];
            let settled = !can_run || c.step < latest_step;
            GcCandidate {
                metric: c.metric.filter(|_| settled),
                held: c.held || !settled,
                ..c.clone()
            }
        })
        .collect();
    select(&view, policy).delete
}

#[cfg(test)]
mod tests;
