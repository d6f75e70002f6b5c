use super::*;
use crate::config::parse_experiment_config;
use crate::config::test_support::{FS, doc};

fn searcher(spec: &str) -> String {
    doc("", spec, FS)
}

const ASHA: &str = "name: adaptive_asha, metric: loss, max_length: 1000, max_trials: 64";

#[test]
fn adaptive_asha_gets_defaults() {
    let cfg = parse_experiment_config(&searcher(&format!("{{{ASHA}}}"))).unwrap();
    let s = &cfg.searcher;
    assert_eq!(s.name, SearcherName::AdaptiveAsha);
    assert!(s.smaller_is_better);
    assert_eq!((s.max_length, s.max_trials, s.seed), (1000, Some(64), 0));
    assert_eq!((s.divisor(), s.max_rungs()), (4, 5));
    assert_eq!(s.mode(), AdaptiveMode::Standard);
    assert_eq!(s.concurrency_limit(), None);
}

#[test]
fn adaptive_asha_reads_every_knob() {
    let yaml = searcher(&format!(
        "{{{ASHA}, smaller_is_better: false, seed: 9, divisor: 3, max_rungs: 2, mode: aggressive, \
         max_concurrent_trials: 8}}"
    ));
    let s = parse_experiment_config(&yaml).unwrap().searcher;
    assert!(!s.smaller_is_better);
    assert_eq!((s.seed, s.divisor(), s.max_rungs()), (9, 3, 2));
    assert_eq!(s.mode(), AdaptiveMode::Aggressive);
    assert_eq!(s.concurrency_limit(), Some(8));
    for (mode, want) in [
        ("standard", AdaptiveMode::Standard),
        ("conservative", AdaptiveMode::Conservative),
    ] {
        let yaml = searcher(&format!("{{{ASHA}, mode: {mode}}}"));
        assert_eq!(
            parse_experiment_config(&yaml).unwrap().searcher.mode(),
            want
        );
    }
    // 0 means no limit beyond the cluster's.
    let yaml = searcher(&format!("{{{ASHA}, max_concurrent_trials: 0}}"));
    let s = parse_experiment_config(&yaml).unwrap().searcher;
    assert_eq!(s.concurrency_limit(), None);
}

#[test]
fn adaptive_asha_round_trips() {
    let yaml = searcher(&format!("{{{ASHA}, divisor: 2, mode: conservative}}"));
    let cfg = parse_experiment_config(&yaml).unwrap();
    let again = serde_norway::to_string(&cfg).unwrap();
    assert_eq!(parse_experiment_config(&again).unwrap(), cfg, "{again}");
}

#[test]
fn bad_searchers_name_the_field() {
    #[rustfmt::skip]
    let rows: Vec<(String, &str, &str)> = vec![
        // (searcher, field path, fragment of the message)
        ("{name: adaptive_asha, metric: loss, max_length: 10}".into(), "searcher.max_trials", "required by the adaptive_asha searcher"),
        ("{name: adaptive_asha, max_length: 10, max_trials: 4}".into(), "searcher.metric", "missing required field"),
        ("{name: adaptive_asha, metric: loss, max_trials: 4}".into(), "searcher.max_length", "missing required field"),
        ("{name: adaptive_asha, metric: loss, max_length: 0, max_trials: 4}".into(), "searcher.max_length", "must be at least 1 (got 0)"),
        ("{name: adaptive_asha, metric: loss, max_length: 9, max_trials: 0}".into(), "searcher.max_trials", "must be at least 1 (got 0)"),
        (format!("{{{ASHA}, divisor: 1}}"), "searcher.divisor", "must be at least 2 (got 1)"),
        (format!("{{{ASHA}, divisor: 0}}"), "searcher.divisor", "must be at least 2 (got 0)"),
        (format!("{{{ASHA}, divisor: 2.5}}"), "searcher.divisor", "2.5"),
        (format!("{{{ASHA}, max_rungs: 0}}"), "searcher.max_rungs", "must be at least 1 (got 0)"),
        (format!("{{{ASHA}, mode: fast}}"), "searcher.mode", "unknown variant `fast`"),
        (format!("{{{ASHA}, max_concurrent_trials: -1}}"), "searcher.max_concurrent_trials", "-1"),
        (format!("{{{ASHA}, bracket_rungs: [1]}}"), "searcher.bracket_rungs", "unknown field"),
        ("{name: adaptive, metric: loss, max_length: 10}".into(), "searcher.name", "unknown variant `adaptive`"),
        ("{name: random, metric: loss, max_length: 10, max_trials: 2, divisor: 3}".into(), "searcher.divisor", "only used by the adaptive_asha searcher (got name: random)"),
        ("{name: grid, metric: loss, max_length: 10, max_rungs: 3}".into(), "searcher.max_rungs", "only used by the adaptive_asha searcher (got name: grid)"),
        ("{name: single, metric: loss, max_length: 10, mode: standard}".into(), "searcher.mode", "only used by the adaptive_asha searcher (got name: single)"),
        ("{name: random, metric: loss, max_length: 10, max_trials: 2, max_concurrent_trials: 0}".into(), "searcher.max_concurrent_trials", "only used by the adaptive_asha"),
    ];
    let mut failures = Vec::new();
    for (spec, path, fragment) in rows {
        let yaml = searcher(&spec);
        match parse_experiment_config(&yaml) {
            Ok(_) => failures.push(format!("accepted: {spec}")),
            Err(err) => {
                let text = err.to_string();
                let right = err.path() == path
                    && text.starts_with(&format!("{path}: "))
                    && text.contains(fragment);
                if !right {
                    failures.push(format!(
                        "{text:?} wants {path:?} and {fragment:?} from {spec}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn names_read_as_written() {
    for name in [
        SearcherName::Single,
        SearcherName::Grid,
        SearcherName::Random,
        SearcherName::AdaptiveAsha,
    ] {
        let written = serde_json::to_value(name).unwrap();
        assert_eq!(written, serde_json::Value::from(name.as_str()));
    }
}
