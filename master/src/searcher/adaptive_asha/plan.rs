//! The bracket plan of `adaptive_asha`: how many rungs, which brackets, their rung lengths and
//! how many trials each bracket gets. Exact integer arithmetic, so every platform agrees.

use baton_common::config::AdaptiveMode;

/// One bracket as planned: its rung lengths (ascending, the last is `max_length`) and its trials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BracketPlan {
    /// Steps a trial has trained when it reports at each rung.
    pub lengths: Vec<u64>,
    /// Trials this bracket creates.
    pub trials: u32,
}

/// Plans the brackets, most aggressive early stopping first. `divisor` ≥ 2, `max_rungs`,
/// `max_length` and `max_trials` ≥ 1.
pub(super) fn plan(
    mode: AdaptiveMode,
    max_rungs: u32,
    divisor: u32,
    max_length: u64,
    max_trials: u32,
) -> Vec<BracketPlan> {
    let rungs = rung_count(max_rungs, divisor, max_length, max_trials);
    let counts = bracket_rungs(mode, rungs);
    let trials = allot(max_trials, divisor, &counts);
    counts
        .iter()
        .zip(trials)
        .map(|(&count, trials)| BracketPlan {
            lengths: rung_lengths(max_length, divisor, count),
            trials,
        })
        .collect()
}

/// `max_rungs`, lowered until `divisor^(rungs - 1)` is at most `max_length` (the shortest rung
/// is at least one step and all lengths differ) and at most `max_trials` (the most aggressive
/// bracket can fill its top rung).
fn rung_count(max_rungs: u32, divisor: u32, max_length: u64, max_trials: u32) -> u32 {
    let cap = u128::from(max_length.min(u64::from(max_trials)));
    let mut rungs = 1;
    let mut power = u128::from(divisor);
    while rungs < max_rungs && power <= cap {
        rungs += 1;
        power *= u128::from(divisor);
    }
    rungs
}

/// Rung counts of the brackets by mode, most rungs first: `[r]`, `[r, r-1, …, ⌊(r-1)/2⌋+1]`
/// (⌊r/2⌋+1 brackets) or `[r, r-1, …, 1]`.
fn bracket_rungs(mode: AdaptiveMode, rungs: u32) -> Vec<u32> {
    let fewest = match mode {
        AdaptiveMode::Aggressive => rungs,
        AdaptiveMode::Standard => (rungs - 1) / 2 + 1,
        AdaptiveMode::Conservative => 1,
    };
    (fewest..=rungs).rev().collect()
}

/// Trials per bracket, in proportion to `divisor^(r-1) / r` for a bracket of `r` rungs, so that
/// every bracket gets about the same total steps; each gets at least one, the first the rest.
fn allot(max_trials: u32, divisor: u32, counts: &[u32]) -> Vec<u32> {
    let common = counts.iter().fold(1u128, |acc, &r| lcm(acc, u128::from(r)));
    let weights: Vec<u128> = counts
        .iter()
        .map(|&r| u128::from(divisor).pow(r - 1) * (common / u128::from(r)))
        .collect();
    let total: u128 = weights.iter().sum();
    let mut trials: Vec<u32> = weights
        .iter()
        .map(|w| ((u128::from(max_trials) * w / total) as u32).max(1))
        .collect();
    // The rung cap keeps every bracket's share at one trial or more, so nothing is over-allotted.
    let allotted: u32 = trials.iter().sum();
    trials[0] += max_trials - allotted;
    trials
}

/// Rung lengths of a bracket of `rungs` rungs: `max_length / divisor^(rungs-1-k)` rounded half
/// up, at least 1.
fn rung_lengths(max_length: u64, divisor: u32, rungs: u32) -> Vec<u64> {
    (0..rungs)
        .map(|k| {
            let q = u128::from(divisor).pow(rungs - 1 - k);
            ((2 * u128::from(max_length) + q) / (2 * q)).max(1) as u64
        })
        .collect()
}

fn lcm(a: u128, b: u128) -> u128 {
    a / gcd(a, b) * b
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_standard_plan() {
        let plan = plan(AdaptiveMode::Standard, 5, 4, 1000, 256);
        let lengths: Vec<&[u64]> = plan.iter().map(|b| b.lengths.as_slice()).collect();
        assert_eq!(
            lengths,
            [
                &[4, 16, 63, 250, 1000][..],
                &[16, 63, 250, 1000],
                &[63, 250, 1000]
            ]
        );
        // Weights 256/5, 64/4, 16/3 of 256 trials: 180.7, 56.5, 18.8 → 180, 56, 18; +2 to the
        // first.
        let trials: Vec<u32> = plan.iter().map(|b| b.trials).collect();
        assert_eq!(trials, [182, 56, 18]);
    }

    #[test]
    fn modes_choose_brackets() {
        assert_eq!(bracket_rungs(AdaptiveMode::Aggressive, 5), [5]);
        assert_eq!(bracket_rungs(AdaptiveMode::Standard, 5), [5, 4, 3]);
        assert_eq!(bracket_rungs(AdaptiveMode::Standard, 4), [4, 3, 2]);
        assert_eq!(bracket_rungs(AdaptiveMode::Standard, 2), [2, 1]);
        assert_eq!(bracket_rungs(AdaptiveMode::Standard, 1), [1]);
        assert_eq!(bracket_rungs(AdaptiveMode::Conservative, 3), [3, 2, 1]);
    }

    #[test]
    fn rungs_are_capped_by_length_and_trials() {
        assert_eq!(rung_count(5, 4, 1000, 10_000), 5);
        assert_eq!(rung_count(9, 4, 1000, 10_000), 5); // 4^5 = 1024 > 1000
        assert_eq!(rung_count(9, 4, 1000, 63), 3); // 4^3 = 64 > 63
        assert_eq!(rung_count(5, 2, 1, 100), 1);
        assert_eq!(rung_count(5, 4, 100, 1), 1);
        assert_eq!(rung_count(u32::MAX, u32::MAX, u64::MAX, u32::MAX), 2);
        assert_eq!(rung_lengths(10, 3, 3), [1, 3, 10]); // 1.1 and 3.3 round down
        assert_eq!(rung_lengths(5, 2, 3), [1, 3, 5]); // 1.25 down, 2.5 up
    }

    #[test]
    fn one_trial_trains_to_max_length() {
        let plan = plan(AdaptiveMode::Conservative, 5, 4, 1000, 1);
        assert_eq!(
            plan,
            [BracketPlan {
                lengths: vec![1000],
                trials: 1
            }]
        );
    }
}
