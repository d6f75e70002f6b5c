//! An independent reference: the bracket plan written from its definition with other arithmetic,
//! and, for a fixed arrival order, the trials each rung should promote when nothing waits for a
//! slot: those ever among the top ⌊j/divisor⌋ of the first j results, failures excluded.

use std::collections::BTreeSet;

use baton_common::config::{AdaptiveMode, ExperimentConfig};

use super::super::RequestId;
use super::books::{Arrival, Books};
use crate::searcher::propose_trials;

/// Books for a search of `config`, with the reference plan and the random searcher's trials.
pub fn books(config: &ExperimentConfig) -> Books {
    let s = &config.searcher;
    let mut random = config.clone();
    random.searcher.name = baton_common::config::SearcherName::Random;
    random.searcher.divisor = None;
    random.searcher.max_rungs = None;
    random.searcher.mode = None;
    random.searcher.max_concurrent_trials = None;
    Books::new(
        s.divisor() as usize,
        s.smaller_is_better,
        s.concurrency_limit(),
        plan(config),
        propose_trials(&random).unwrap(),
    )
}

/// Rung lengths and trials of each bracket, most rungs first.
pub fn plan(config: &ExperimentConfig) -> Vec<(Vec<u64>, u32)> {
    let s = &config.searcher;
    let d = u64::from(s.divisor());
    let trials = s.max_trials.unwrap();
    let rungs = s
        .max_rungs()
        .min(s.max_length.ilog(d) + 1)
        .min(u64::from(trials).ilog(d) + 1);
    let counts: Vec<u32> = match s.mode() {
        AdaptiveMode::Aggressive => vec![rungs],
        AdaptiveMode::Standard => (0..rungs / 2 + 1).map(|b| rungs - b).collect(),
        AdaptiveMode::Conservative => (0..rungs).map(|b| rungs - b).collect(),
    };
    // Shares T · w_b / Σ w with w = d^(r-1) / r, over the product of every r.
    let product: u128 = counts.iter().map(|&r| u128::from(r)).product();
    let weight = |r: u32| u128::from(d).pow(r - 1) * product / u128::from(r);
    let total: u128 = counts.iter().map(|&r| weight(r)).sum();
    let mut shares: Vec<u32> = counts
        .iter()
        .map(|&r| ((u128::from(trials) * weight(r) / total) as u32).max(1))
        .collect();
    shares[0] += trials - shares.iter().sum::<u32>();
    counts
        .iter()
        .zip(shares)
        .map(|(&r, share)| {
            let lengths = (0..r)
                .map(|k| {
                    let exact = s.max_length as f64 / (d as f64).powi((r - 1 - k) as i32);
                    (exact.round() as u64).max(1)
                })
                .collect();
            (lengths, share)
        })
        .collect()
}

/// The trials a rung promotes, given its results in arrival order, when promotions never wait.
pub fn promotions(arrivals: &[Arrival], divisor: usize) -> BTreeSet<RequestId> {
    let mut promoted = BTreeSet::new();
    for j in 1..=arrivals.len() {
        let mut prefix: Vec<(usize, Arrival)> = arrivals[..j].iter().copied().enumerate().collect();
        // Failures last; among results, smaller first, then earlier first.
        prefix.sort_by(|(i, a), (k, b)| {
            let key = |s: Option<f64>| (s.is_none(), s.unwrap_or(0.0));
            let (fa, sa) = key(a.score);
            let (fb, sb) = key(b.score);
            fa.cmp(&fb)
                .then(sa.partial_cmp(&sb).unwrap())
                .then(i.cmp(k))
        });
        for (_, arrival) in prefix.iter().take(j / divisor) {
            if arrival.score.is_some() {
                promoted.insert(arrival.trial);
            }
        }
    }
    promoted
}
