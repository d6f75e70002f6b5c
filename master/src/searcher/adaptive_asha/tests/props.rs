//! Property tests: random configs, metrics, event orders, failures and kills.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::super::{Action, AdaptiveAsha};
use super::books::Books;
use super::config;
use super::reference;
use super::sim::{Behaviour, Metrics, run};
use baton_common::config::ExperimentConfig;

/// A random `adaptive_asha` config; `limit` 0 is no concurrency limit.
fn configs(limit: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = ExperimentConfig> {
    (
        (1u32..=40, 2u32..=5, 1u32..=6, 1u64..=3000),
        (prop_oneof![Just("aggressive"), Just("standard"), Just("conservative")], any::<bool>()),
        (limit, any::<u64>()),
    )
        .prop_map(|((trials, divisor, rungs, length), (mode, smaller), (limit, seed))| {
            config(&format!(
                "{{name: adaptive_asha, metric: loss, max_length: {length}, max_trials: {trials}, \
                 divisor: {divisor}, max_rungs: {rungs}, mode: {mode}, \
                 smaller_is_better: {smaller}, \
                 max_concurrent_trials: {limit}, seed: {seed}}}"
            ))
        })
}

/// Trials created in each bracket.
fn created(books: &Books) -> Vec<u64> {
    let mut counts = vec![0; books.plan.len()];
    for trial in &books.trials {
        counts[trial.bracket.unwrap()] += 1;
    }
    counts
}

/// Σ_k N_k · (ℓ_k − ℓ_{k−1}) for a bracket's rung lengths ℓ, with N_0 = `n` and
/// N_{k+1} = `next(N_k)`.
fn work_bound(lengths: &[u64], n: u64, next: impl Fn(u64) -> u64) -> u64 {
    let (mut reaching, mut previous, mut total) = (n, 0, 0);
    for &length in lengths {
        total += reaching * (length - previous);
        previous = length;
        reaching = next(reaching);
    }
    total
}

/// Promotions from each (bracket, rung) against the results it had.
fn promotion_counts(books: &Books) -> BTreeMap<(usize, usize), (u64, u64)> {
    books
        .arrivals
        .iter()
        .map(|(at, arrivals)| {
            let promoted = books.promoted.get(at).map_or(0, Vec::len);
            (*at, (arrivals.len() as u64, promoted as u64))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every rule holds in any order (the books check each action as it comes: rung lengths in
    /// order, promotions only from the current top ⌊n/η⌋ and never twice, at most `max_trials`
    /// trials, never more active than `max_concurrent_trials`, `Shutdown` last with every trial
    /// at `max_length` or stopped). Work in any order: a promoted trial had at least η − 1 worse
    /// results when promoted, and they stay worse, so a rung with n results promotes at most
    /// n − (η − 1) trials, and a bracket of n trials trains at most Σ_k N_k·(ℓ_k − ℓ_{k−1})
    /// steps with N_0 = n, N_{k+1} = N_k − (η − 1); the bound is tight for ever-improving results.
    #[test]
    fn rules_hold_in_any_order(
        config in configs(0..=6),
        fail in 0u32..30,
        kill_paused in 0u32..15,
        noise in 0u32..30,
        seed in any::<u64>(),
    ) {
        let behaviour = Behaviour { metrics: Metrics::Random, fail, kill_paused, noise };
        let run = run(&config, behaviour, seed)?;
        let books = &run.books;
        let eta = books.divisor as u64;
        for (at, (results, promoted)) in promotion_counts(books) {
            prop_assert!(promoted <= results.saturating_sub(eta - 1), "{:?}", at);
        }
        for (b, n) in created(books).into_iter().enumerate() {
            let bound = work_bound(&books.plan[b].0, n, |k| k.saturating_sub(eta - 1));
            prop_assert!(books.work[b] <= bound, "bracket {}: {} > {}", b, books.work[b], bound);
        }
    }

    /// Work as the ASHA paper bounds it. When every result at a rung is worse than the earlier
    /// ones, ASHA promotes as synchronous successive halving does: at most ⌊n_k/η⌋ from a rung
    /// with n_k results. A bracket of n trials and r rungs of lengths ℓ_k ≤ L/η^(r−1−k) + ½
    /// (ℓ_{r−1} = L) then trains at most Σ_k ⌊n/η^k⌋·(ℓ_k − ℓ_{k−1}) ≤ Σ_k (n/η^k)·ℓ_k
    /// ≤ r·n·L/η^(r−1) + n steps. With the allotment n_b ≈ T·(η^(r_b−1)/r_b)/W (W the sum of
    /// those weights, T = max_trials), each of the B brackets costs about T·L/W + n_b, and the
    /// whole search at most Σ_b (r_b·n_b·L/η^(r_b−1) + n_b) ≈ B·T·L/W + T steps.
    #[test]
    fn sorted_results_halve_like_sh(
        config in configs(0..=6),
        fail in 0u32..30,
        kill_paused in 0u32..15,
        seed in any::<u64>(),
    ) {
        let behaviour = Behaviour { metrics: Metrics::ArrivalOrdered, fail, kill_paused, noise: 0 };
        let run = run(&config, behaviour, seed)?;
        let books = &run.books;
        let eta = books.divisor as u64;
        for (at, (results, promoted)) in promotion_counts(books) {
            prop_assert!(promoted <= results / eta, "{:?}: {} of {}", at, promoted, results);
        }
        let max_length = u128::from(config.searcher.max_length);
        for (b, n) in created(books).into_iter().enumerate() {
            let lengths = &books.plan[b].0;
            let work = books.work[b];
            let halving = work_bound(lengths, n, |k| k / eta);
            prop_assert!(work <= halving, "bracket {}: {} > {}", b, work, halving);
            let rungs = lengths.len() as u32;
            let scale = u128::from(eta).pow(rungs - 1);
            let paper = u128::from(rungs) * u128::from(n) * max_length + u128::from(n) * scale;
            prop_assert!(u128::from(work) * scale <= paper, "bracket {}: {} steps", b, work);
        }
    }

    /// Without a concurrency limit or kills, each rung promotes exactly the trials that the
    /// reference finds from its arrival order, and the plan is the reference's.
    #[test]
    fn matches_the_reference(
        config in configs(0..=0),
        fail in 0u32..30,
        noise in 0u32..30,
        seed in any::<u64>(),
    ) {
        let behaviour = Behaviour { metrics: Metrics::Random, fail, kill_paused: 0, noise };
        let run = run(&config, behaviour, seed)?;
        let books = &run.books;
        let plan: Vec<(Vec<u64>, u32)> =
            run.state.brackets.iter().map(|b| (b.lengths.clone(), b.quota)).collect();
        prop_assert_eq!(&plan, &books.plan);
        for (&(bracket, rung), arrivals) in &books.arrivals {
            if rung + 1 == books.plan[bracket].0.len() {
                continue;
            }
            let want = reference::promotions(arrivals, books.divisor);
            let got = books.promoted.get(&(bracket, rung)).cloned().unwrap_or_default();
            let got: std::collections::BTreeSet<_> = got.into_iter().collect();
            prop_assert_eq!(got, want, "bracket {} rung {}", bracket, rung);
        }
    }

    /// Same config and events give the same actions and state, whether run again or replayed.
    #[test]
    fn replay_gives_the_same_actions_and_state(
        config in configs(0..=6),
        fail in 0u32..30,
        kill_paused in 0u32..15,
        noise in 0u32..30,
        seed in any::<u64>(),
    ) {
        let behaviour = Behaviour { metrics: Metrics::Random, fail, kill_paused, noise };
        let first = run(&config, behaviour, seed)?;
        let again = run(&config, behaviour, seed)?;
        // Debug forms, so that NaN metrics compare equal.
        let events = |run: &super::sim::Run| format!("{:?}", run.events);
        prop_assert_eq!(events(&first), events(&again));
        prop_assert_eq!(&first.batches, &again.batches);
        let (mut replayed, actions) = AdaptiveAsha::new(&config).unwrap();
        let mut batches = vec![actions];
        batches.extend(first.events.iter().map(|e| replayed.on_event(e.clone())));
        prop_assert_eq!(&batches, &first.batches);
        prop_assert_eq!(&replayed, &first.state);
    }

    /// Different seeds give different hyperparameters for a continuous range.
    #[test]
    fn seeds_change_hparams(config in configs(0..=6), other in any::<u64>()) {
        prop_assume!(other != config.searcher.seed);
        let mut reseeded = config.clone();
        reseeded.searcher.seed = other;
        let hparams = |config: &ExperimentConfig| -> Vec<_> {
            let (asha, actions) = AdaptiveAsha::new(config).unwrap();
            let created = actions.into_iter().filter_map(|a| match a {
                Action::Create { hparams, .. } => Some(hparams),
                _ => None,
            });
            created.chain(asha.samples).collect()
        };
        let (a, b) = (hparams(&config), hparams(&reseeded));
        prop_assert_eq!(a.len(), b.len());
        prop_assert!(a.iter().zip(&b).all(|(x, y)| x["lr"] != y["lr"]));
    }

    /// Plans for any knobs: every trial allotted, at least one per bracket, lengths rising to
    /// `max_length`, as the reference plans them.
    #[test]
    fn plans_allot_every_trial(
        mode in prop_oneof![Just("aggressive"), Just("standard"), Just("conservative")],
        trials in 1u32..=10_000,
        divisor in prop_oneof![2u32..=10, 2u32..=20_000],
        rungs in 1u32..=40,
        length in prop_oneof![1u64..=100, 1u64..=(1 << 40)],
    ) {
        let config = config(&format!(
            "{{name: adaptive_asha, metric: m, max_length: {length}, max_trials: {trials}, \
             divisor: {divisor}, max_rungs: {rungs}, mode: {mode}}}"
        ));
        let plan = reference::plan(&config);
        let searcher = &config.searcher;
        let got = super::super::plan::plan(
            searcher.mode(), rungs, divisor, length, trials,
        );
        let got: Vec<(Vec<u64>, u32)> = got.into_iter().map(|b| (b.lengths, b.trials)).collect();
        prop_assert_eq!(&got, &plan);
        prop_assert_eq!(got.iter().map(|b| b.1).sum::<u32>(), trials);
        for (lengths, share) in &got {
            prop_assert!(*share >= 1);
            prop_assert_eq!(*lengths.last().unwrap(), length);
            prop_assert!(lengths[0] >= 1 && lengths.windows(2).all(|w| w[0] < w[1]));
        }
    }
}

/// Trials created before the first result alternate between brackets by their shares.
#[test]
fn brackets_take_turns_creating() {
    let cfg = config(
        "{name: adaptive_asha, metric: m, max_length: 1000, max_trials: 256, \
         max_concurrent_trials: 7}",
    );
    let (asha, actions) = AdaptiveAsha::new(&cfg).unwrap();
    let firsts: Vec<u64> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Train { until_length, .. } => Some(*until_length),
            _ => None,
        })
        .collect();
    // Shares 182, 56, 18: each takes the next trial while its share created is the smallest.
    assert_eq!(firsts, [4, 16, 63, 4, 4, 4, 16]);
    assert_eq!(asha.active, 7);
}
