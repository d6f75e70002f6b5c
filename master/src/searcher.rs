//! Searchers: pure functions that propose every trial's hyperparameters up front, and the
//! [`adaptive_asha`] state machine that proposes them as results arrive.
//!
//! `single` runs one trial, `grid` the cartesian product of grid points, `random` samples
//! `max_trials` trials from a seeded ChaCha8 generator, so the same config always gives the same
//! trials. Every trial's map holds every hyperparameter of the config.

pub mod adaptive_asha;

use baton_common::config::{ConfigError, ExperimentConfig, Hyperparameter, SearcherName};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

/// Hyperparameter values of one trial, by name.
pub type TrialHparams = Map<String, Value>;

/// Most trials one experiment may propose (grid combinations or random samples).
pub const MAX_TRIALS: u64 = 10_000;

/// Most integers an int range without `count` may contribute to a grid.
pub const MAX_INT_GRID_POINTS: u64 = 100;

/// Why a searcher cannot propose trials; each message names the field to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearcherError {
    /// The config itself is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A double or log range in a grid has no `count`.
    #[error(
        "hyperparameters.{name}.count: required by the grid searcher for a {kind} range (e.g. count: 5)"
    )]
    MissingCount {
        /// Hyperparameter name.
        name: String,
        /// `double` or `log`.
        kind: &'static str,
    },
    /// An int range without `count` has too many integers for a grid.
    #[error(
        "hyperparameters.{name}.count: required by the grid searcher for an int range of more than \
         {MAX_INT_GRID_POINTS} values (got {values} values from {minval} to {maxval})"
    )]
    TooManyIntValues {
        /// Hyperparameter name.
        name: String,
        /// Number of integers in the range.
        values: u128,
        /// Smallest value.
        minval: i64,
        /// Largest value.
        maxval: i64,
    },
    /// A hyperparameter offers no value at all.
    #[error("hyperparameters.{name}.vals: there is no value to choose (got an empty list)")]
    EmptyGrid {
        /// Hyperparameter name.
        name: String,
    },
    /// The grid has more combinations than [`MAX_TRIALS`].
    #[error(
        "hyperparameters: the grid has {combinations} combinations, more than {MAX_TRIALS}; \
         lower the counts or use the random searcher"
    )]
    GridTooLarge {
        /// Number of combinations.
        combinations: u128,
    },
    /// The random searcher has no `max_trials`.
    #[error(
        "searcher.max_trials: required by the random searcher (the number of trials to sample)"
    )]
    MissingMaxTrials,
    /// More trials were asked for than [`MAX_TRIALS`].
    #[error("searcher.max_trials: must be at most {MAX_TRIALS} (got {max_trials})")]
    TooManyTrials {
        /// The requested number of trials.
        max_trials: u32,
    },
    /// A value came out as infinity or NaN.
    #[error("hyperparameters.{name}: {value} is not a finite number; narrow the range")]
    NonFinite {
        /// Hyperparameter name.
        name: String,
        /// The value.
        value: f64,
    },
}

/// Proposes every trial of the experiment, in a deterministic order; for `adaptive_asha`, every
/// trial it may create (as `random` samples them), which [`adaptive_asha::AdaptiveAsha`] creates
/// as results arrive.
pub fn propose_trials(config: &ExperimentConfig) -> Result<Vec<TrialHparams>, SearcherError> {
    validate(config)?;
    match config.searcher.name {
        SearcherName::Single => single(config).map(|trial| vec![trial]),
        SearcherName::Grid => grid(config),
        SearcherName::Random | SearcherName::AdaptiveAsha => random(config),
    }
}

/// Checks the hyperparameters and the searcher section.
fn validate(config: &ExperimentConfig) -> Result<(), SearcherError> {
    for (name, hp) in &config.hyperparameters {
        hp.validate(&format!("hyperparameters.{name}"))?;
    }
    Ok(config.searcher.validate()?)
}

/// One trial: ints take minval, doubles the midpoint, logs the midpoint exponent, lists their
/// first value.
fn single(config: &ExperimentConfig) -> Result<TrialHparams, SearcherError> {
    let mut trial = Map::new();
    for (name, hp) in &config.hyperparameters {
        let value = match hp {
            Hyperparameter::Const(value) => value.clone(),
            Hyperparameter::Int { minval, .. } => Value::from(*minval),
            Hyperparameter::Double { minval, maxval, .. } => {
                number(name, lerp(*minval, *maxval, 0.5))?
            }
            Hyperparameter::Log {
                minval,
                maxval,
                base,
                ..
            } => number(name, base.powf(lerp(*minval, *maxval, 0.5)))?,
            Hyperparameter::Categorical { vals } => match vals.first() {
                Some(first) => first.clone(),
                None => return Err(SearcherError::EmptyGrid { name: name.clone() }),
            },
        };
        trial.insert(name.clone(), value);
    }
    Ok(trial)
}

/// The cartesian product of every hyperparameter's grid points, names sorted, last name varying
/// fastest, capped at `max_trials`.
fn grid(config: &ExperimentConfig) -> Result<Vec<TrialHparams>, SearcherError> {
    // Size the grid before building any of it: counts can be large.
    let mut combinations = 1u128;
    for (name, hp) in &config.hyperparameters {
        combinations = combinations.saturating_mul(grid_size(name, hp)?);
    }
    if combinations > u128::from(MAX_TRIALS) {
        return Err(SearcherError::GridTooLarge { combinations });
    }
    let axes = config
        .hyperparameters
        .iter()
        .map(|(name, hp)| Ok((name, grid_points(name, hp)?)))
        .collect::<Result<Vec<_>, SearcherError>>()?;
    let cap = config.searcher.max_trials.map_or(combinations, u128::from);
    let mut trials = Vec::new();
    for index in 0..combinations.min(cap) {
        let mut rest = index;
        let mut trial = Map::new();
        for (name, points) in axes.iter().rev() {
            let len = points.len() as u128;
            trial.insert((*name).clone(), points[(rest % len) as usize].clone());
            rest /= len;
        }
        trials.push(trial);
    }
    Ok(trials)
}

/// How many grid points a hyperparameter has, or why it cannot be part of a grid.
fn grid_size(name: &str, hp: &Hyperparameter) -> Result<u128, SearcherError> {
    let size = match hp {
        Hyperparameter::Const(_) => 1,
        Hyperparameter::Int {
            minval,
            maxval,
            count,
        } => {
            let values = (i128::from(*maxval) - i128::from(*minval) + 1).max(1) as u128;
            match count {
                // Points closer than 1 apart round onto every integer of the range.
                Some(count) => values.min(u128::from(*count)),
                None if values > u128::from(MAX_INT_GRID_POINTS) => {
                    return Err(SearcherError::TooManyIntValues {
                        name: name.to_string(),
                        values,
                        minval: *minval,
                        maxval: *maxval,
                    });
                }
                None => values,
            }
        }
        Hyperparameter::Double { count, .. } => {
            u128::from(count.ok_or_else(|| missing_count(name, "double"))?)
        }
        Hyperparameter::Log { count, .. } => {
            u128::from(count.ok_or_else(|| missing_count(name, "log"))?)
        }
        Hyperparameter::Categorical { vals } => vals.len() as u128,
    };
    if size == 0 {
        return Err(SearcherError::EmptyGrid {
            name: name.to_string(),
        });
    }
    Ok(size)
}

/// The grid points of one hyperparameter that [`grid_size`] accepted, in increasing order (lists
/// in their own order).
fn grid_points(name: &str, hp: &Hyperparameter) -> Result<Vec<Value>, SearcherError> {
    Ok(match hp {
        Hyperparameter::Const(value) => vec![value.clone()],
        Hyperparameter::Int {
            minval,
            maxval,
            count: Some(count),
        } => int_points(*minval, *maxval, *count)
            .into_iter()
            .map(Value::from)
            .collect(),
        Hyperparameter::Int {
            minval,
            maxval,
            count: None,
        } => (*minval..=*maxval).map(Value::from).collect(),
        Hyperparameter::Double {
            minval,
            maxval,
            count,
        } => float_points(*minval, *maxval, count.unwrap_or(1))
            .into_iter()
            .map(|x| number(name, x))
            .collect::<Result<_, _>>()?,
        Hyperparameter::Log {
            minval,
            maxval,
            base,
            count,
        } => float_points(*minval, *maxval, count.unwrap_or(1))
            .into_iter()
            .map(|exponent| number(name, base.powf(exponent)))
            .collect::<Result<_, _>>()?,
        Hyperparameter::Categorical { vals } => vals.clone(),
    })
}

fn missing_count(name: &str, kind: &'static str) -> SearcherError {
    SearcherError::MissingCount {
        name: name.to_string(),
        kind,
    }
}

/// `count` evenly spaced integers from `minval` to `maxval` inclusive, rounded, without repeats.
fn int_points(minval: i64, maxval: i64, count: u32) -> Vec<i64> {
    if count <= 1 || minval >= maxval {
        return vec![minval];
    }
    let span = i128::from(maxval) - i128::from(minval);
    let steps = i128::from(count) - 1;
    if steps >= span {
        // Points at most 1 apart round onto every integer of the range.
        return (minval..=maxval).collect();
    }
    let mut points: Vec<i64> = (0..=steps)
        // Round half up: (2 * i * span + steps) / (2 * steps), exact in i128.
        .map(|i| (i128::from(minval) + (2 * i * span + steps) / (2 * steps)) as i64)
        .collect();
    points.dedup();
    points
}

/// `count` evenly spaced floats from `minval` to `maxval` inclusive (`minval` when count is 1).
fn float_points(minval: f64, maxval: f64, count: u32) -> Vec<f64> {
    if count <= 1 {
        return vec![minval];
    }
    let steps = f64::from(count - 1);
    (0..count)
        .map(|i| lerp(minval, maxval, f64::from(i) / steps))
        .collect()
}

/// `max_trials` samples from ChaCha8 seeded with `searcher.seed`, hyperparameters in name order.
fn random(config: &ExperimentConfig) -> Result<Vec<TrialHparams>, SearcherError> {
    let max_trials = config
        .searcher
        .max_trials
        .ok_or(SearcherError::MissingMaxTrials)?;
    if u64::from(max_trials) > MAX_TRIALS {
        return Err(SearcherError::TooManyTrials { max_trials });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.searcher.seed);
    (0..max_trials)
        .map(|_| {
            let mut trial = Map::new();
            for (name, hp) in &config.hyperparameters {
                trial.insert(name.clone(), sample(name, hp, &mut rng)?);
            }
            Ok(trial)
        })
        .collect()
}

fn sample(name: &str, hp: &Hyperparameter, rng: &mut ChaCha8Rng) -> Result<Value, SearcherError> {
    Ok(match hp {
        Hyperparameter::Const(value) => value.clone(),
        Hyperparameter::Int { minval, maxval, .. } => {
            Value::from(rng.random_range(*minval..=*maxval))
        }
        Hyperparameter::Double { minval, maxval, .. } => {
            number(name, lerp(*minval, *maxval, rng.random::<f64>()))?
        }
        Hyperparameter::Log {
            minval,
            maxval,
            base,
            ..
        } => number(name, base.powf(lerp(*minval, *maxval, rng.random::<f64>())))?,
        Hyperparameter::Categorical { vals } => {
            if vals.is_empty() {
                return Err(SearcherError::EmptyGrid {
                    name: name.to_string(),
                });
            }
            vals[rng.random_range(0..vals.len())].clone()
        }
    })
}

/// The point a fraction `t` (0..=1) of the way from `lo` to `hi`, without overflow, kept in range.
fn lerp(lo: f64, hi: f64, t: f64) -> f64 {
    if t <= 0.0 {
        return lo;
    }
    if t >= 1.0 {
        return hi;
    }
    (lo * (1.0 - t) + hi * t).clamp(lo, hi)
}

fn number(name: &str, value: f64) -> Result<Value, SearcherError> {
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| SearcherError::NonFinite {
            name: name.to_string(),
            value,
        })
}

#[cfg(test)]
mod tests;
