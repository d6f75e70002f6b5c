//! Metric series for charts: one metric's values by step, downsampled on the server.

use baton_common::proto::Validation;
use serde_json::{Value, json};

use crate::store::ValidationRow;

/// At most `max` (≥ 1) of `points`: the first, the last and evenly spaced ones between (only the
/// last when `max` is 1).
pub fn downsample<T: Clone>(points: &[T], max: usize) -> Vec<T> {
    let n = points.len();
    if n <= max {
        return points.to_vec();
    }
    if max == 1 {
        return vec![points[n - 1].clone()];
    }
    (0..max)
        .map(|i| points[i * (n - 1) / (max - 1)].clone())
        .collect()
}

/// At most `max` (≥ 1) of one metric's `(step, value)` points, in step order: the first, the last,
/// and between them the lowest and highest of each stretch of steps, so that a spike or a dip
/// survives however far the series is thinned (evenly spaced points when `max` < 4).
pub fn downsample_keeping_extremes(points: &[(u64, f64)], max: usize) -> Vec<(u64, f64)> {
    let n = points.len();
    if n <= max || max < 4 {
        return downsample(points, max);
    }
    let inner = &points[1..n - 1];
    let buckets = (max - 2) / 2;
    let mut kept = vec![points[0]];
    for b in 0..buckets {
        let stretch = &inner[b * inner.len() / buckets..(b + 1) * inner.len() / buckets];
        let by_value = |a: &&(u64, f64), b: &&(u64, f64)| a.1.total_cmp(&b.1);
        let (Some(low), Some(high)) = (
            stretch.iter().min_by(by_value),
            stretch.iter().max_by(by_value),
        ) else {
            continue;
        };
        let (first, second) = if low.0 <= high.0 {
            (low, high)
        } else {
            (high, low)
        };
        kept.push(*first);
        if second.0 != first.0 {
            kept.push(*second);
        }
    }
    kept.push(points[n - 1]);
    kept
}

/// Stored rows as API validations.
pub fn validations(rows: Vec<ValidationRow>) -> Vec<Validation> {
    rows.into_iter()
        .map(|r| Validation {
            step: r.step,
            metrics_json: r.metrics_json,
        })
        .collect()
}

/// One experiment's series of `metric`, a trial each: `(trial, [(step, value)])` in step order.
pub struct ExperimentSeries {
    /// Every metric name any point holds, sorted.
    pub metric_names: Vec<String>,
    /// Each trial's points of the metric.
    pub trials: Vec<(u64, Vec<(u64, f64)>)>,
}

/// Parses rows ordered by trial and step into each trial's points of `metric` (or, when `None`,
/// of `preferred` if any point holds it, else of the first metric name).
pub fn experiment_series(
    rows: &[(u64, ValidationRow)],
    metric: Option<&str>,
    preferred: &str,
) -> (String, ExperimentSeries) {
    let parsed: Vec<(u64, u64, serde_json::Map<String, Value>)> = rows
        .iter()
        .filter_map(
            |(trial, row)| match serde_json::from_str::<Value>(&row.metrics_json).ok()? {
                Value::Object(map) => Some((*trial, row.step, map)),
                _ => None,
            },
        )
        .collect();
    let mut metric_names: Vec<String> = parsed
        .iter()
        .flat_map(|(_, _, map)| map.keys().cloned())
        .collect();
    metric_names.sort();
    metric_names.dedup();
    let chosen = metric.map(str::to_string).unwrap_or_else(|| {
        if metric_names.iter().any(|n| n == preferred) || metric_names.is_empty() {
            preferred.to_string()
        } else {
            metric_names[0].clone()
        }
    });
    let mut trials: Vec<(u64, Vec<(u64, f64)>)> = Vec::new();
    for (trial, step, map) in &parsed {
        let Some(value) = map.get(&chosen).and_then(Value::as_f64) else {
            continue;
        };
        match trials.last_mut() {
            Some((last, points)) if last == trial => points.push((*step, value)),
            _ => trials.push((*trial, vec![(*step, value)])),
        }
    }
    (
        chosen,
        ExperimentSeries {
            metric_names,
            trials,
        },
    )
}

/// A trial's series as JSON, at most `max_points` of them: `{trial_id, total_points, points}`.
pub fn trial_series_json(trial_id: u64, points: &[(u64, f64)], max_points: usize) -> Value {
    let kept = downsample_keeping_extremes(points, max_points);
    json!({
        "trial_id": trial_id,
        "total_points": points.len(),
        "points": kept.iter().map(|(step, value)| json!([step, value])).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_first_last_and_evenly_spaced_points() {
        let points: Vec<u32> = (0..10).collect();
        assert_eq!(downsample(&points, 3), vec![0, 4, 9]);
        assert_eq!(downsample(&points, 2), vec![0, 9]);
        assert_eq!(downsample(&points, 1), vec![9]);
        assert_eq!(downsample(&points, 10), points);
        assert_eq!(downsample(&points, 1000), points);
        let many: Vec<u32> = (0..1001).collect();
        let kept = downsample(&many, 1000);
        assert_eq!(kept.len(), 1000);
        assert_eq!((kept[0], kept[999]), (0, 1000));
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn thinning_a_series_keeps_its_ends_its_spike_and_its_dip() {
        let mut points: Vec<(u64, f64)> = (1..=1000).map(|s| (s, 1.0 / s as f64)).collect();
        points[500].1 = 50.0;
        points[700].1 = -3.0;
        for max in [4, 10, 64, 999] {
            let kept = downsample_keeping_extremes(&points, max);
            assert!(kept.len() <= max, "{max}: {}", kept.len());
            assert_eq!((kept[0], kept[kept.len() - 1]), (points[0], points[999]));
            assert!(
                kept.windows(2).all(|w| w[0].0 < w[1].0),
                "{max}: steps in order"
            );
            assert!(kept.contains(&points[500]), "{max}: the spike");
            assert!(kept.contains(&points[700]), "{max}: the dip");
        }
        assert_eq!(downsample_keeping_extremes(&points[..5], 10), &points[..5]);
        assert_eq!(downsample_keeping_extremes(&points, 3).len(), 3);
        assert_eq!(downsample_keeping_extremes(&points, 1), vec![points[999]]);
    }

    fn row(trial: u64, step: u64, metrics: &str) -> (u64, ValidationRow) {
        (
            trial,
            ValidationRow {
                step,
                metrics_json: metrics.into(),
            },
        )
    }

    #[test]
    fn splits_rows_into_trials_and_picks_the_metric() {
        let rows = [
            row(1, 10, r#"{"loss": 0.5, "acc": 0.1}"#),
            row(1, 20, r#"{"loss": 0.25}"#),
            row(2, 10, r#"{"acc": 0.2}"#),
            row(3, 10, "not json"),
        ];
        let (metric, series) = experiment_series(&rows, None, "loss");
        assert_eq!(metric, "loss");
        assert_eq!(series.metric_names, ["acc", "loss"]);
        assert_eq!(series.trials, vec![(1, vec![(10, 0.5), (20, 0.25)])]);
        let (metric, series) = experiment_series(&rows, Some("acc"), "loss");
        assert_eq!(metric, "acc");
        assert_eq!(
            series.trials,
            vec![(1, vec![(10, 0.1)]), (2, vec![(10, 0.2)])]
        );
        let (metric, _) = experiment_series(&rows, None, "val_loss");
        assert_eq!(metric, "acc");
    }
}
