//! GC selection over 1,000,000 checkpoints in 10,000 trials.
//!
//! Run with `cargo bench -p baton-common --bench gc_select`. Prints the median and minimum time of
//! `gc::select` under the policy (2, 1, 1), the keep/delete counts, and the ratio against a peer
//! measured in the same run: a plain implementation of the same rules with full sorts (whose
//! result must be identical).

use std::collections::{BTreeMap, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use baton_common::gc::{CheckpointState, GcCandidate, GcPolicy, GcSelection, select};

const CHECKPOINTS: usize = 1_000_000;
const TRIALS: u64 = 10_000;
const RUNS: usize = 7;

/// SplitMix64: deterministic pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Checkpoints in creation order, trials interleaved as they would be in a running experiment.
fn candidates() -> Vec<GcCandidate> {
    let mut rng = Rng(42);
    let mut steps = vec![0u64; TRIALS as usize];
    (0..CHECKPOINTS)
        .map(|i| {
            let trial_id = rng.next() % TRIALS;
            steps[trial_id as usize] += 100;
            let r = rng.next();
            // About 30% without a metric; the rest on a coarse grid so that ties occur.
            let metric = (r % 10 >= 3).then(|| ((r >> 8) % 100_000) as f64 / 100_000.0);
            let state = match (r >> 40) % 100 {
                0 => CheckpointState::Deleted,
                1 => CheckpointState::Error,
                _ => CheckpointState::Completed,
            };
            let seq = i as u64;
            GcCandidate {
                uuid: format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{seq:012x}",
                    (r >> 32) as u32,
                    (r >> 16) as u16,
                    trial_id % 0x1000,
                    r % 0x1000,
                ),
                trial_id,
                step: steps[trial_id as usize],
                seq,
                metric,
                state,
                trial_can_run: trial_id.is_multiple_of(10),
                held: false,
            }
        })
        .collect()
}

/// The same rules with full sorts and owned keys: the peer.
fn plain_select(candidates: &[GcCandidate], policy: &GcPolicy) -> GcSelection {
    let metric = |c: &GcCandidate| c.metric.filter(|m| !m.is_nan()).map(|m| m + 0.0);
    let rank = |list: &mut Vec<&GcCandidate>| {
        list.sort_by(|a, b| {
            let m = metric(a).unwrap().total_cmp(&metric(b).unwrap());
            let m = if policy.smaller_is_better {
                m
            } else {
                m.reverse()
            };
            m.then(a.seq.cmp(&b.seq)).then(a.uuid.cmp(&b.uuid))
        });
    };
    let completed: Vec<&GcCandidate> = candidates
        .iter()
        .filter(|c| c.state == CheckpointState::Completed)
        .collect();
    let mut keep: HashSet<String> = HashSet::new();
    let mut ranked: Vec<&GcCandidate> = completed
        .iter()
        .copied()
        .filter(|c| metric(c).is_some())
        .collect();
    rank(&mut ranked);
    keep.extend(
        ranked
            .iter()
            .take(policy.save_experiment_best as usize)
            .map(|c| c.uuid.clone()),
    );
    let mut trials: BTreeMap<u64, Vec<&GcCandidate>> = BTreeMap::new();
    for &c in &completed {
        trials.entry(c.trial_id).or_default().push(c);
    }
    for list in trials.values_mut() {
        let mut ranked: Vec<&GcCandidate> = list
            .iter()
            .copied()
            .filter(|c| metric(c).is_some())
            .collect();
        rank(&mut ranked);
        keep.extend(
            ranked
                .iter()
                .take(policy.save_trial_best as usize)
                .map(|c| c.uuid.clone()),
        );
        list.sort_by(|a, b| (b.step, b.seq, &b.uuid).cmp(&(a.step, a.seq, &a.uuid)));
        let latest = if list.iter().any(|c| c.trial_can_run) {
            policy.save_trial_latest.max(1)
        } else {
            policy.save_trial_latest
        };
        keep.extend(list.iter().take(latest as usize).map(|c| c.uuid.clone()));
    }
    let mut live: Vec<&GcCandidate> = candidates
        .iter()
        .filter(|c| c.state != CheckpointState::Deleted)
        .collect();
    live.sort_by(|a, b| (a.seq, &a.uuid).cmp(&(b.seq, &b.uuid)));
    let mut selection = GcSelection::default();
    for c in live {
        if c.state == CheckpointState::Completed && keep.contains(&c.uuid) {
            selection.keep.push(c.uuid.clone());
        } else {
            selection.delete.push(c.uuid.clone());
        }
    }
    selection
}

fn time<F: FnMut() -> GcSelection>(mut f: F) -> (Vec<Duration>, GcSelection) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = GcSelection::default();
    for _ in 0..RUNS {
        let start = Instant::now();
        let selection = black_box(f());
        times.push(start.elapsed());
        // The previous result is dropped here, outside the timed part.
        last = selection;
    }
    times.sort();
    (times, last)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let candidates = candidates();
    let policy = GcPolicy {
        save_experiment_best: 2,
        save_trial_best: 1,
        save_trial_latest: 1,
        smaller_is_better: true,
    };

    let (times, selection) = time(|| select(black_box(&candidates), black_box(&policy)));
    let (peer_times, peer) = time(|| plain_select(black_box(&candidates), black_box(&policy)));
    assert_eq!(
        selection, peer,
        "select and the plain implementation disagree"
    );

    let median = times[RUNS / 2];
    let peer_median = peer_times[RUNS / 2];
    println!(
        "gc_select: {CHECKPOINTS} checkpoints in {TRIALS} trials, policy (2, 1, 1), {RUNS} runs"
    );
    println!(
        "  select:      median {:8.1} ms  min {:8.1} ms  keep {}  delete {}",
        ms(median),
        ms(times[0]),
        selection.keep.len(),
        selection.delete.len()
    );
    println!(
        "  plain sorts: median {:8.1} ms  min {:8.1} ms",
        ms(peer_median),
        ms(peer_times[0])
    );
    println!(
        "  ratio select / plain sorts (median): {:.3}",
        median.as_secs_f64() / peer_median.as_secs_f64()
    );
}
