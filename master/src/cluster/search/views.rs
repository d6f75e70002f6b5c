//! What users see of an adaptive search: its brackets and rungs, and why a trial waits.

use baton_common::proto;

use super::super::state::ExperimentEntry;
use crate::searcher::adaptive_asha::{RequestId, Stage};
use crate::states::TrialState;
use crate::store::TrialRow;

/// The brackets of an experiment's adaptive search (none for other searchers).
pub(in crate::cluster) fn brackets(experiment: &ExperimentEntry) -> Vec<proto::SearchBracket> {
    let Some(search) = &experiment.search else {
        return Vec::new();
    };
    search
        .asha
        .brackets()
        .into_iter()
        .map(|bracket| proto::SearchBracket {
            trials: bracket.trials,
            created: bracket.created,
            rungs: bracket
                .rungs
                .into_iter()
                .map(|rung| proto::SearchRung {
                    length: rung.length,
                    training: rung.training,
                    waiting: rung.waiting,
                    results: rung
                        .results
                        .into_iter()
                        .map(|result| proto::RungResult {
                            trial_id: search.trials.get(&result.trial).copied().unwrap_or(0),
                            metric: result.metric,
                            promoted: result.promoted,
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Why a PAUSED trial of an adaptive search waits ("" for any other trial).
pub(in crate::cluster) fn waiting_reason(experiment: &ExperimentEntry, trial: &TrialRow) -> String {
    let Some((search, id)) = experiment.search.as_ref().zip(trial.request_id) else {
        return String::new();
    };
    let Some(status) = search.asha.status(RequestId(id)) else {
        return String::new();
    };
    let rungs = search.asha.rung_lengths(status.bracket);
    let next = rungs.get(status.rung + 1);
    match (status.stage, next) {
        (Stage::Paused, Some(next)) if trial.state == TrialState::Paused => format!(
            "trained to rung {} of {} ({} steps) in bracket {}; waits to be promoted to {next} steps \
             if it ranks in the top 1/{} of the rung's results, or stopped",
            status.rung + 1,
            rungs.len(),
            status.length,
            status.bracket + 1,
            experiment.config.searcher.divisor(),
        ),
        _ => String::new(),
    }
}
