//! Downsampling of metric series for charts.

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
}
