//! Reading the master's `/metrics`: samples of the text format, and histogram quantiles over the
//! difference of two scrapes.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// The samples of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<Sample>,
}

/// `GET /metrics` from `address`.
pub async fn scrape(address: SocketAddr) -> anyhow::Result<Scrape> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: baton\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("not an HTTP response: {response:.200}"))?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "metrics answered {head}");
    Ok(Scrape::parse(body))
}

impl Scrape {
    /// Parses the text exposition format (label values without escaped quotes).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(parse_line)
            .collect();
        Self { samples }
    }

    /// The sum of the samples of `name` whose labels include every pair of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && matches(s, labels))
            .fold(0.0, |sum, s| sum + s.value)
    }

    /// A histogram's cumulative buckets (upper bound, count), summed over the series matching
    /// `labels`, minus those of `before`.
    pub fn buckets_since(
        &self,
        before: &Scrape,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Vec<(f64, f64)> {
        let bucket = format!("{name}_bucket");
        let mut bounds: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.name == bucket)
            .filter_map(|s| label(s, "le").map(parse_bound))
            .collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        bounds
            .into_iter()
            .map(|le| {
                let text = if le.is_infinite() {
                    "+Inf".to_string()
                } else {
                    le.to_string()
                };
                let mut with_le = labels.to_vec();
                with_le.push(("le", &text));
                let count =
                    self.sum_bound(&bucket, &with_le, le) - before.sum_bound(&bucket, &with_le, le);
                (le, count)
            })
            .collect()
    }

    fn sum_bound(&self, bucket: &str, labels: &[(&str, &str)], le: f64) -> f64 {
        let others = &labels[..labels.len() - 1];
        self.samples
            .iter()
            .filter(|s| s.name == bucket && matches(s, others))
            .filter(|s| label(s, "le").map(parse_bound) == Some(le))
            .map(|s| s.value)
            .sum()
    }
}

/// The `q` quantile of cumulative `buckets`, interpolated within its bucket as Prometheus's
/// `histogram_quantile` does; None without observations.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let within = (rank - lower.1) / (count - lower.1).max(f64::MIN_POSITIVE);
            return Some(lower.0 + (le - lower.0) * within);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

/// The upper bound of the highest bucket holding an observation: the largest one, at most.
pub fn max_bound(buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, count)| *count >= total && total > 0.0)
        .map(|(le, _)| *le)
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = parse_bound(value);
    let (name, labels) = match series.split_once('{') {
        None => (series.to_string(), Vec::new()),
        Some((name, rest)) => {
            let rest = rest.strip_suffix('}')?;
            let labels = rest
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once("=\"")?;
                    Some((key.to_string(), value.trim_end_matches('"').to_string()))
                })
                .collect();
            (name.to_string(), labels)
        }
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_bound(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

fn label<'a>(sample: &'a Sample, key: &str) -> Option<&'a str> {
    sample
        .labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn matches(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    labels.iter().all(|(k, v)| label(sample, k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP h A histogram.\n\
        h_bucket{command=\"a\",le=\"0.1\"} 5\n\
        h_bucket{command=\"a\",le=\"1\"} 9\n\
        h_bucket{command=\"a\",le=\"+Inf\"} 10\n\
        h_bucket{command=\"b\",le=\"0.1\"} 1\n\
        h_bucket{command=\"b\",le=\"1\"} 1\n\
        h_bucket{command=\"b\",le=\"+Inf\"} 1\n\
        g{state=\"disconnected\"} 3\n";

    #[test]
    fn histogram_quantiles_interpolate_within_buckets() {
        let now = Scrape::parse(TEXT);
        let buckets = now.buckets_since(&Scrape::default(), "h", &[("command", "a")]);
        assert_eq!(buckets, vec![(0.1, 5.0), (1.0, 9.0), (f64::INFINITY, 10.0)]);
        assert!((quantile(&buckets, 0.5).unwrap() - 0.1).abs() < 1e-9);
        assert!((quantile(&buckets, 0.7).unwrap() - 0.55).abs() < 1e-9);
        assert_eq!(max_bound(&buckets), Some(f64::INFINITY));
        let all = now.buckets_since(&Scrape::default(), "h", &[]);
        assert_eq!(all[0], (0.1, 6.0));
        assert_eq!(now.sum("g", &[("state", "disconnected")]), 3.0);
    }
}
