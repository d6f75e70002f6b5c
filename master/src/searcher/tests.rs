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
