//! Searchers: pure functions that propose every trial's hyperparameters up front.
//!
//! `single` runs one trial, `grid` the cartesian product of grid points, `random` samples
//! `max_trials` trials from a seeded ChaCha8 generator, so the same config always gives the same
//! trials. Every trial's map holds every hyperparameter of the config.

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

/// Proposes every trial of the experiment, in a deterministic order.
pub fn propose_trials(config: &ExperimentConfig) -> Result<Vec<TrialHparams>, SearcherError> {
    for (name, hp) in &config.hyperparameters {
        hp.validate(&format!("hyperparameters.{name}"))?;
    }
    config.searcher.validate()?;
    match config.searcher.name {
        SearcherName::Single => single(config).map(|trial| vec![trial]),
        SearcherName::Grid => grid(config),
        SearcherName::Random => random(config),
    }
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
mod tests {
    use super::*;
    use baton_common::config::parse_experiment_config;
    use proptest::prelude::*;
    use serde_json::json;

    fn config(hyperparameters: &str, searcher: &str) -> ExperimentConfig {
        let yaml = format!(
            "name: t\nentrypoint: python3 train.py\nhyperparameters: {hyperparameters}\n\
             searcher: {searcher}\ncheckpoint_storage: {{type: shared_fs, host_path: /tmp/c}}\n"
        );
        parse_experiment_config(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    fn error_of(cfg: &ExperimentConfig) -> String {
        match propose_trials(cfg) {
            Ok(trials) => panic!("expected an error, got {} trials", trials.len()),
            Err(err) => err.to_string(),
        }
    }

    fn grid_config(hyperparameters: &str) -> ExperimentConfig {
        config(hyperparameters, "{name: grid, metric: loss, max_length: 5}")
    }

    #[test]
    fn single_takes_fixed_values() {
        let cfg = config(
            "{c: {a: 1}, i: {type: int, minval: 3, maxval: 9}, d: {type: double, minval: 0, maxval: 1}, \
             l: {type: log, minval: -4, maxval: -2}, k: {type: categorical, vals: [sgd, adam]}}",
            "{name: single, metric: loss, max_length: 5, max_trials: 7}",
        );
        let trials = propose_trials(&cfg).unwrap();
        assert_eq!(trials.len(), 1);
        assert_eq!(
            Value::Object(trials[0].clone()),
            json!({"c": {"a": 1}, "i": 3, "d": 0.5, "l": 0.001, "k": "sgd"})
        );
    }

    #[test]
    fn no_hyperparameters_give_one_empty_trial() {
        for searcher in ["single", "grid"] {
            let cfg = config(
                "{}",
                &format!("{{name: {searcher}, metric: m, max_length: 1}}"),
            );
            assert_eq!(propose_trials(&cfg).unwrap(), vec![Map::new()]);
        }
    }

    #[test]
    fn grid_is_the_product_in_name_order_last_fastest() {
        let cfg = grid_config(
            "{b: {type: categorical, vals: [x, y, z]}, a: {type: int, minval: 1, maxval: 2}, k: 7}",
        );
        let trials = propose_trials(&cfg).unwrap();
        let got: Vec<Value> = trials.into_iter().map(Value::Object).collect();
        let want: Vec<Value> = [(1, "x"), (1, "y"), (1, "z"), (2, "x"), (2, "y"), (2, "z")]
            .into_iter()
            .map(|(a, b)| json!({"a": a, "b": b, "k": 7}))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn grid_is_capped_at_max_trials() {
        let cfg = config(
            "{a: {type: int, minval: 0, maxval: 9}, b: {type: categorical, vals: [1, 2]}}",
            "{name: grid, metric: loss, max_length: 5, max_trials: 3}",
        );
        let trials = propose_trials(&cfg).unwrap();
        let a: Vec<Value> = trials.iter().map(|t| t["a"].clone()).collect();
        let b: Vec<Value> = trials.iter().map(|t| t["b"].clone()).collect();
        assert_eq!(
            (a, b),
            (
                vec![json!(0), json!(0), json!(1)],
                vec![json!(1), json!(2), json!(1)]
            )
        );
    }

    #[test]
    fn grid_count_spacing() {
        assert_eq!(int_points(0, 10, 3), vec![0, 5, 10]);
        assert_eq!(int_points(1, 4, 3), vec![1, 3, 4]); // 2.5 rounds up
        assert_eq!(int_points(0, 2, 10), vec![0, 1, 2]); // deduplicated
        assert_eq!(int_points(5, 9, 1), vec![5]);
        assert_eq!(int_points(i64::MIN, i64::MAX, 2), vec![i64::MIN, i64::MAX]);
        assert_eq!(float_points(0.0, 1.0, 5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(float_points(0.2, 0.9, 1), vec![0.2]);

        let cfg = grid_config(
            "{d: {type: double, minval: 0, maxval: 1, count: 3}, l: {type: log, minval: -3, maxval: -1, count: 3}, \
             two: {type: log, minval: 0, maxval: 2, base: 2, count: 3}}",
        );
        let trials = propose_trials(&cfg).unwrap();
        assert_eq!(trials.len(), 27);
        let column = |key: &str| -> Vec<f64> {
            let mut v: Vec<f64> = trials.iter().map(|t| t[key].as_f64().unwrap()).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        };
        assert_eq!(column("d"), vec![0.0, 0.5, 1.0]);
        assert_eq!(column("two"), vec![1.0, 2.0, 4.0]);
        let l = column("l");
        assert_eq!(l.len(), 3);
        for (got, want) in l.iter().zip([0.001, 0.01, 0.1]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn grid_errors_name_the_field() {
        let cases = [
            (
                "{lr: {type: double, minval: 0, maxval: 1}}",
                "hyperparameters.lr.count:",
            ),
            (
                "{lr: {type: log, minval: -3, maxval: -1}}",
                "hyperparameters.lr.count:",
            ),
            (
                "{n: {type: int, minval: 0, maxval: 100}}",
                "hyperparameters.n.count:",
            ),
            (
                "{a: {type: int, minval: 1, maxval: 100}, b: {type: int, minval: 1, maxval: 1000, count: 101}}",
                "hyperparameters: the grid has 10100 combinations",
            ),
        ];
        for (hps, want) in cases {
            let err = error_of(&grid_config(hps));
            assert!(
                err.starts_with(want),
                "{err:?} does not start with {want:?}"
            );
        }
        // Exactly 100 integers need no count; 10,000 combinations are allowed.
        let cfg = grid_config(
            "{a: {type: int, minval: 1, maxval: 100}, b: {type: int, minval: 0, maxval: 99}}",
        );
        assert_eq!(propose_trials(&cfg).unwrap().len(), 10_000);
        // An empty list is caught, whether or not the config was validated.
        let mut cfg = grid_config("{}");
        cfg.hyperparameters
            .insert("opt".into(), Hyperparameter::Categorical { vals: vec![] });
        assert!(error_of(&cfg).starts_with("hyperparameters.opt.vals:"));
    }

    #[test]
    fn random_needs_and_bounds_max_trials() {
        let mut cfg = config(
            "{}",
            "{name: random, metric: m, max_length: 1, max_trials: 1}",
        );
        cfg.searcher.max_trials = None;
        assert!(error_of(&cfg).starts_with("searcher.max_trials:"));
        cfg.searcher.max_trials = Some(10_001);
        assert!(error_of(&cfg).starts_with("searcher.max_trials:"));
    }

    const RANGES: &str = "{i: {type: int, minval: -5, maxval: 5}, d: {type: double, minval: 0.5, maxval: 2.5}, \
         l: {type: log, minval: -6, maxval: -1}, k: {type: categorical, vals: [a, b, c]}, c: 3}";

    fn random_config(seed: u64) -> ExperimentConfig {
        config(
            RANGES,
            &format!("{{name: random, metric: m, max_length: 1, max_trials: 40, seed: {seed}}}"),
        )
    }

    #[test]
    fn random_is_reproducible_and_seeded() {
        let a = propose_trials(&random_config(1)).unwrap();
        assert_eq!(a.len(), 40);
        assert_eq!(a, propose_trials(&random_config(1)).unwrap());
        assert_ne!(a, propose_trials(&random_config(2)).unwrap());
        // Samples differ between trials too.
        assert!(a.iter().any(|t| t["d"] != a[0]["d"]));
    }

    #[test]
    fn random_values_are_within_bounds() {
        let trials = propose_trials(&random_config(9)).unwrap();
        let mut seen_k = std::collections::BTreeSet::new();
        for t in &trials {
            let keys: Vec<&String> = t.keys().collect();
            assert_eq!(keys, ["c", "d", "i", "k", "l"]);
            assert!((-5..=5).contains(&t["i"].as_i64().unwrap()));
            assert!((0.5..=2.5).contains(&t["d"].as_f64().unwrap()));
            assert!((1e-6..=1e-1).contains(&t["l"].as_f64().unwrap()));
            assert_eq!(t["c"], json!(3));
            seen_k.insert(t["k"].as_str().unwrap().to_string());
        }
        assert_eq!(seen_k.len(), 3, "40 draws should reach every category");
    }

    fn sorted(a: f64, b: f64) -> (f64, f64) {
        if a <= b { (a, b) } else { (b, a) }
    }

    proptest! {
        #[test]
        fn random_values_stay_within_any_range(
            seed in any::<u64>(),
            i in (any::<i64>(), any::<i64>()),
            d in (-1e300f64..1e300, -1e300f64..1e300),
            l in (-20.0f64..20.0, -20.0f64..20.0),
            base in prop_oneof![0.05f64..0.95, 1.05f64..20.0],
            trials in 1u32..20,
        ) {
            let (imin, imax) = (i.0.min(i.1), i.0.max(i.1));
            let (dmin, dmax) = sorted(d.0, d.1);
            let (lmin, lmax) = sorted(l.0, l.1);
            let mut cfg = config("{}", "{name: random, metric: m, max_length: 1, max_trials: 1}");
            cfg.searcher.seed = seed;
            cfg.searcher.max_trials = Some(trials);
            cfg.hyperparameters.insert("i".into(), Hyperparameter::Int { minval: imin, maxval: imax, count: None });
            cfg.hyperparameters.insert("d".into(), Hyperparameter::Double { minval: dmin, maxval: dmax, count: None });
            cfg.hyperparameters.insert("l".into(), Hyperparameter::Log { minval: lmin, maxval: lmax, base, count: None });
            let proposed = propose_trials(&cfg).unwrap();
            prop_assert_eq!(proposed.len(), trials as usize);
            let (lo, hi) = sorted(base.powf(lmin), base.powf(lmax));
            for t in &proposed {
                let iv = t["i"].as_i64().unwrap();
                prop_assert!(imin <= iv && iv <= imax);
                let dv = t["d"].as_f64().unwrap();
                prop_assert!(dmin <= dv && dv <= dmax, "{} not in [{}, {}]", dv, dmin, dmax);
                let lv = t["l"].as_f64().unwrap();
                let slack = 1e-12 * hi;
                prop_assert!(lo - slack <= lv && lv <= hi + slack, "{} not in [{}, {}]", lv, lo, hi);
            }
        }

        #[test]
        fn int_grid_points_span_the_range(a in any::<i64>(), b in any::<i64>(), count in 1u32..200) {
            let (lo, hi) = (a.min(b), a.max(b));
            let points = int_points(lo, hi, count);
            prop_assert_eq!(points[0], lo);
            if count > 1 {
                prop_assert_eq!(*points.last().unwrap(), hi);
            }
            let values = (i128::from(hi) - i128::from(lo) + 1) as u128;
            prop_assert_eq!(points.len() as u128, values.min(u128::from(count)));
            prop_assert!(points.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
