//! Worked examples; the property tests, the simulated cluster, its books and the reference live
//! in the submodules.

mod books;
mod props;
mod reference;
mod sim;

use super::*;
use baton_common::config::parse_experiment_config;
use serde_json::json;

use crate::searcher::propose_trials;

/// A config with a continuous and a categorical hyperparameter and this searcher.
fn config(searcher: &str) -> ExperimentConfig {
    let yaml = format!(
        "name: t\nentrypoint: python3 train.py\n\
         hyperparameters: {{lr: {{type: double, minval: 0.001, maxval: 0.1}}, \
         opt: {{type: categorical, vals: [sgd, adam]}}}}\n\
         searcher: {searcher}\ncheckpoint_storage: {{type: shared_fs, host_path: /tmp/c}}\n"
    );
    parse_experiment_config(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn report(trial: u32, length: u64, metric: f64) -> Event {
    Event::ValidationReported {
        trial: RequestId(trial),
        length,
        metric,
    }
}

fn exit(trial: u32) -> Event {
    Event::TrialExited {
        trial: RequestId(trial),
    }
}

fn train(trial: u32, until_length: u64) -> Action {
    Action::Train {
        trial: RequestId(trial),
        until_length,
    }
}

fn stop(trial: u32) -> Action {
    Action::Stop {
        trial: RequestId(trial),
    }
}

/// The actions without the hyperparameters of their creations.
fn shape(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .map(|a| match a {
            Action::Create { request_id, .. } => Action::Create {
                request_id: *request_id,
                hparams: TrialHparams::new(),
            },
            other => other.clone(),
        })
        .collect()
}

fn create(trial: u32) -> Action {
    Action::Create {
        request_id: RequestId(trial),
        hparams: TrialHparams::new(),
    }
}

#[test]
fn one_bracket_walk_through() {
    // Rungs of 1, 2 and 4 steps; four trials, all created at once.
    let cfg = config(
        "{name: adaptive_asha, metric: loss, max_length: 4, max_trials: 4, divisor: 2, \
         max_rungs: 3, mode: aggressive}",
    );
    let (mut asha, actions) = AdaptiveAsha::new(&cfg).unwrap();
    let want: Vec<Action> = (0..4).flat_map(|t| [create(t), train(t, 1)]).collect();
    assert_eq!(shape(&actions), want);
    let steps = [
        // n = 1: nobody is eligible yet.
        (report(0, 1, 0.5), vec![]),
        // n = 2: the top 1 (trial 1) goes on to 2 steps.
        (report(1, 1, 0.3), vec![train(1, 2)]),
        // A failure counts in n = 3 and ranks last; still the top 1.
        (exit(2), vec![]),
        // n = 4, complete: the top 2 are trials 3 and 1; trial 0 can never make it.
        (report(3, 1, 0.1), vec![stop(0), train(3, 2)]),
        (report(1, 2, 0.2), vec![]),
        (report(3, 2, 0.25), vec![stop(3), train(1, 4)]),
        (report(1, 4, 0.15), vec![stop(1), Action::Shutdown]),
    ];
    for (event, want) in steps {
        assert_eq!(asha.on_event(event.clone()), want, "after {event:?}");
    }
    assert_eq!(asha.on_event(report(1, 4, 0.1)), vec![]);
}

#[test]
fn a_failure_counts_in_n_and_is_never_promoted() {
    let cfg = config(
        "{name: adaptive_asha, metric: loss, max_length: 2, max_trials: 2, divisor: 2, \
         mode: aggressive}",
    );
    let (mut asha, _) = AdaptiveAsha::new(&cfg).unwrap();
    assert_eq!(asha.on_event(exit(0)), vec![]);
    assert_eq!(asha.on_event(report(1, 1, 9.0)), vec![train(1, 2)]);
    assert_eq!(
        asha.on_event(report(1, 2, 9.0)),
        vec![stop(1), Action::Shutdown]
    );
}

#[test]
fn a_nan_metric_is_a_failure_and_stops_its_trial() {
    let cfg = config(
        "{name: adaptive_asha, metric: acc, smaller_is_better: false, max_length: 2, \
         max_trials: 4, divisor: 2, mode: aggressive}",
    );
    let (mut asha, _) = AdaptiveAsha::new(&cfg).unwrap();
    // Trial 0 would rank second of four, within the top 2, yet can never be promoted.
    assert_eq!(asha.on_event(report(0, 1, f64::NAN)), vec![stop(0)]);
    assert_eq!(asha.on_event(exit(1)), vec![]);
    assert_eq!(asha.on_event(exit(2)), vec![]);
    assert_eq!(asha.on_event(report(3, 1, -5.0)), vec![train(3, 2)]);
    assert_eq!(
        asha.on_event(report(3, 2, 0.5)),
        vec![stop(3), Action::Shutdown]
    );
}

#[test]
fn larger_can_be_better() {
    let cfg = config(
        "{name: adaptive_asha, metric: acc, smaller_is_better: false, max_length: 2, \
         max_trials: 2, divisor: 2, mode: aggressive}",
    );
    let (mut asha, _) = AdaptiveAsha::new(&cfg).unwrap();
    assert_eq!(asha.on_event(report(0, 1, 0.9)), vec![]);
    assert_eq!(asha.on_event(report(1, 1, 0.7)), vec![stop(1), train(0, 2)]);
}

#[test]
fn a_concurrency_limit_holds_back_new_trials() {
    let cfg = config(
        "{name: adaptive_asha, metric: loss, max_length: 2, max_trials: 2, divisor: 2, \
         mode: aggressive, max_concurrent_trials: 1}",
    );
    let (mut asha, actions) = AdaptiveAsha::new(&cfg).unwrap();
    assert_eq!(shape(&actions), vec![create(0), train(0, 1)]);
    let next = asha.on_event(report(0, 1, 1.0));
    assert_eq!(shape(&next), vec![create(1), train(1, 1)]);
    assert_eq!(asha.on_event(report(1, 1, 2.0)), vec![stop(1), train(0, 2)]);
    assert_eq!(
        asha.on_event(report(0, 2, 0.5)),
        vec![stop(0), Action::Shutdown]
    );
}

#[test]
fn trials_are_the_random_searchers() {
    let yaml = "{name: adaptive_asha, metric: loss, max_length: 100, max_trials: 30, seed: 5}";
    let (asha, actions) = AdaptiveAsha::new(&config(yaml)).unwrap();
    let random = propose_trials(&config(&yaml.replace("adaptive_asha", "random"))).unwrap();
    let created: Vec<TrialHparams> = actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Create { hparams, .. } => Some(hparams),
            _ => None,
        })
        .collect();
    assert_eq!(created, random);
    assert!(asha.samples.is_empty());
    assert_eq!(created[0]["opt"], json!(random[0]["opt"]));
}

#[test]
fn bad_configs_name_the_field() {
    let mut cfg = config("{name: adaptive_asha, metric: loss, max_length: 10, max_trials: 4}");
    assert_eq!(
        propose_trials(&cfg).unwrap().len(),
        4,
        "every trial it may create"
    );
    let error = |cfg: &ExperimentConfig| AdaptiveAsha::new(cfg).unwrap_err().to_string();
    cfg.searcher.max_trials = Some(10_001);
    assert_eq!(
        error(&cfg),
        "searcher.max_trials: must be at most 10000 (got 10001)"
    );
    cfg.searcher.max_trials = Some(4);
    cfg.searcher.divisor = Some(1);
    assert_eq!(error(&cfg), "searcher.divisor: must be at least 2 (got 1)");
    cfg.searcher.divisor = None;
    cfg.searcher.max_rungs = Some(0);
    assert_eq!(
        error(&cfg),
        "searcher.max_rungs: must be at least 1 (got 0)"
    );
    cfg.searcher.max_rungs = None;
    cfg.searcher.max_trials = None;
    assert!(error(&cfg).starts_with("searcher.max_trials: required by the adaptive_asha"));
}
