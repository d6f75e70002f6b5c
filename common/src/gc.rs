//! Checkpoint garbage collection: which checkpoints of an experiment to keep and which to delete.
//!
//! The selection is pure: it sees a snapshot of the experiment's checkpoint records and returns
//! two lists of uuids. The master deletes the `delete` list (storage first, then the record), and
//! `set gc-policy --dry-run` shows exactly the same selection.
//!
//! Rules:
//! - Only COMPLETED checkpoints can be kept; DELETED ones are in neither list; DELETING and ERROR
//!   ones (a deletion already decided, or one that failed and is retried) are always deleted.
//! - Checkpoints are ranked by metric in the direction of `smaller_is_better`; ties go to the
//!   earlier checkpoint (lower `seq`). A checkpoint without a metric (or with a NaN one) is never
//!   among the best.
//! - Kept = the best `save_experiment_best` of the whole experiment, the best `save_trial_best` of
//!   each trial and the latest `save_trial_latest` of each trial (by step, then by `seq`), plus the
//!   latest checkpoint of each trial that can still run, whatever the policy.
//! - Rankings only consider COMPLETED checkpoints: one already being deleted takes no place.
//! - Both lists are sorted by `seq` (then uuid), so the same snapshot always gives the same answer
//!   whatever the order of its records.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Retention policy of an experiment's checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GcPolicy {
    /// How many of the best checkpoints of the whole experiment to keep.
    pub save_experiment_best: u64,
    /// How many of the best checkpoints of each trial to keep.
    pub save_trial_best: u64,
    /// How many of the latest checkpoints (by step) of each trial to keep.
    pub save_trial_latest: u64,
    /// Whether a smaller metric is a better one.
    pub smaller_is_better: bool,
}

impl Default for GcPolicy {
    /// The defaults of `checkpoint_storage`: 0 experiment best, 1 trial best, 1 trial latest.
    fn default() -> Self {
        Self {
            save_experiment_best: 0,
            save_trial_best: 1,
            save_trial_latest: 1,
            smaller_is_better: true,
        }
    }
}

/// State of a checkpoint record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckpointState {
    /// Uploaded and committed; usable.
    Completed,
    /// Chosen for deletion; the deletion has not finished yet.
    Deleting,
    /// Removed from storage.
    Deleted,
    /// A deletion failed; it is retried.
    Error,
}

impl CheckpointState {
    /// The state's name as stored and shown: `COMPLETED`, `DELETING`, `DELETED` or `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "COMPLETED",
            Self::Deleting => "DELETING",
            Self::Deleted => "DELETED",
            Self::Error => "ERROR",
        }
    }
}

impl fmt::Display for CheckpointState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no checkpoint state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown checkpoint state {0:?} (expected COMPLETED, DELETING, DELETED or ERROR)")]
pub struct ParseCheckpointStateError(pub String);

impl FromStr for CheckpointState {
    type Err = ParseCheckpointStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "COMPLETED" => Ok(Self::Completed),
            "DELETING" => Ok(Self::Deleting),
            "DELETED" => Ok(Self::Deleted),
            "ERROR" => Ok(Self::Error),
            other => Err(ParseCheckpointStateError(other.to_owned())),
        }
    }
}

/// What GC needs to know of one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct GcCandidate {
    /// The checkpoint's uuid.
    pub uuid: String,
    /// The trial that wrote it.
    pub trial_id: u64,
    /// The step it was taken at.
    pub step: u64,
    /// Creation order within the experiment (lower = earlier).
    pub seq: u64,
    /// The searcher metric of the validation at the same step, if any.
    pub metric: Option<f64>,
    /// The record's state.
    pub state: CheckpointState,
    /// Whether the trial can still run; if any of its checkpoints says so, its latest is kept.
    pub trial_can_run: bool,
}

/// Outcome of a selection: uuids to keep and to delete, each sorted by creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcSelection {
    /// COMPLETED checkpoints that the policy keeps.
    pub keep: Vec<String>,
    /// Checkpoints to delete: unkept COMPLETED ones, and every DELETING or ERROR one.
    pub delete: Vec<String>,
}

/// A COMPLETED candidate reduced to what the rankings read, laid out contiguously per trial.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The metric, NaN when there is none; -0.0 is stored as 0.0 so that `total_cmp` ties them.
    metric: f64,
    step: u64,
    seq: u64,
    /// Index into the candidates.
    idx: usize,
}

impl Entry {
    fn has_metric(&self) -> bool {
        !self.metric.is_nan()
    }
}

/// Multiplicative hash for trial ids (not exposed to untrusted input).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Selects which checkpoints to keep and which to delete under `policy`.
pub fn select(candidates: &[GcCandidate], policy: &GcPolicy) -> GcSelection {
    let n = candidates.len();

    // Group the COMPLETED candidates by trial (dense group ids, then a counting sort).
    let mut group_ids: IdMap<u32> = IdMap::default();
    let mut group_of: Vec<u32> = Vec::with_capacity(n);
    let mut counts: Vec<usize> = Vec::new();
    let mut can_run: Vec<bool> = Vec::new();
    let mut last: Option<(u64, u32)> = None;
    for c in candidates {
        if c.state != CheckpointState::Completed {
            continue;
        }
        let g = match last {
            Some((trial, g)) if trial == c.trial_id => g,
            _ => {
                let next = u32::try_from(counts.len()).expect("fewer than 2^32 trials");
                let g = *group_ids.entry(c.trial_id).or_insert(next);
                if g == next {
                    counts.push(0);
                    can_run.push(false);
                }
                last = Some((c.trial_id, g));
                g
            }
        };
        counts[g as usize] += 1;
        can_run[g as usize] |= c.trial_can_run;
        group_of.push(g);
    }
    drop(group_ids);

    let mut offsets = Vec::with_capacity(counts.len() + 1);
    let mut total = 0;
    offsets.push(0);
    for &count in &counts {
        total += count;
        offsets.push(total);
    }
    let empty = Entry {
        metric: f64::NAN,
        step: 0,
        seq: 0,
        idx: 0,
    };
    let mut entries = vec![empty; total];
    let mut cursor = offsets[..counts.len()].to_vec();
    let completed = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.state == CheckpointState::Completed);
    for ((idx, c), &g) in completed.zip(&group_of) {
        let slot = &mut cursor[g as usize];
        entries[*slot] = Entry {
            metric: c.metric.map_or(f64::NAN, |m| m + 0.0),
            step: c.step,
            seq: c.seq,
            idx,
        };
        *slot += 1;
    }
    drop(group_of);

    let smaller = policy.smaller_is_better;
    let best_first = |a: &Entry, b: &Entry| -> Ordering {
        let by_metric = if smaller {
            a.metric.total_cmp(&b.metric)
        } else {
            b.metric.total_cmp(&a.metric)
        };
        by_metric
            .then(a.seq.cmp(&b.seq))
            .then_with(|| candidates[a.idx].uuid.cmp(&candidates[b.idx].uuid))
    };
    let latest_first = |a: &Entry, b: &Entry| -> Ordering {
        b.step
            .cmp(&a.step)
            .then(b.seq.cmp(&a.seq))
            .then_with(|| candidates[b.idx].uuid.cmp(&candidates[a.idx].uuid))
    };

    let mut keep = vec![false; n];
    let mut top = Vec::new();
    let mut mark = |top: &[Entry]| top.iter().for_each(|e| keep[e.idx] = true);

    let with_metric = |e: &&Entry| e.has_metric();
    top_k(
        entries.iter().filter(with_metric),
        policy.save_experiment_best,
        best_first,
        &mut top,
    );
    mark(&top);

    for (g, bounds) in offsets.windows(2).enumerate() {
        let trial = &entries[bounds[0]..bounds[1]];
        top_k(
            trial.iter().filter(with_metric),
            policy.save_trial_best,
            best_first,
            &mut top,
        );
        mark(&top);
        let trial_latest = policy.save_trial_latest.max(u64::from(can_run[g]));
        top_k(trial.iter(), trial_latest, latest_first, &mut top);
        mark(&top);
    }
    drop(entries);
    drop(top);

    // Both lists in creation order; the uuid settles equal `seq`s.
    let mut kept: Vec<(u64, usize)> = Vec::new();
    let mut deleted: Vec<(u64, usize)> = Vec::with_capacity(n);
    for (idx, c) in candidates.iter().enumerate() {
        match c.state {
            CheckpointState::Completed if keep[idx] => kept.push((c.seq, idx)),
            CheckpointState::Completed | CheckpointState::Deleting | CheckpointState::Error => {
                deleted.push((c.seq, idx));
            }
            CheckpointState::Deleted => {}
        }
    }
    let by_seq = |a: &(u64, usize), b: &(u64, usize)| {
        a.0.cmp(&b.0)
            .then_with(|| candidates[a.1].uuid.cmp(&candidates[b.1].uuid))
    };
    kept.sort_unstable_by(by_seq);
    deleted.sort_unstable_by(by_seq);
    let uuids = |list: Vec<(u64, usize)>| -> Vec<String> {
        list.into_iter()
            .map(|(_, idx)| candidates[idx].uuid.clone())
            .collect()
    };
    GcSelection {
        keep: uuids(kept),
        delete: uuids(deleted),
    }
}

/// Up to this many, [`top_k`] picks in one pass; beyond, with `select_nth_unstable_by`.
const SMALL_K: usize = 4;

/// Leaves in `out` the first `k` of `items` under `order` (a total order), in no given order.
fn top_k<'a, F>(items: impl Iterator<Item = &'a Entry>, k: u64, order: F, out: &mut Vec<Entry>)
where
    F: Fn(&Entry, &Entry) -> Ordering,
{
    out.clear();
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    if k == 0 {
        return;
    }
    if k <= SMALL_K {
        // `out` stays sorted; most items lose against its last one, at one comparison each.
        for e in items {
            if out.len() == k {
                if order(e, &out[k - 1]) != Ordering::Less {
                    continue;
                }
                out.pop();
            }
            let at = out.partition_point(|x| order(x, e) == Ordering::Less);
            out.insert(at, *e);
        }
    } else {
        out.extend(items);
        if k < out.len() {
            out.select_nth_unstable_by(k - 1, order);
            out.truncate(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn cand(uuid: &str, trial_id: u64, step: u64, seq: u64, metric: Option<f64>) -> GcCandidate {
        GcCandidate {
            uuid: uuid.to_owned(),
            trial_id,
            step,
            seq,
            metric,
            state: CheckpointState::Completed,
            trial_can_run: false,
        }
    }

    fn policy(e: u64, t: u64, l: u64) -> GcPolicy {
        GcPolicy {
            save_experiment_best: e,
            save_trial_best: t,
            save_trial_latest: l,
            smaller_is_better: true,
        }
    }

    /// The example of the design: trial 1 holds checkpoints 1-5, trial 2 holds 6-10.
    fn example() -> Vec<GcCandidate> {
        let metrics = [
            None,
            None,
            Some(0.6),
            Some(0.5),
            Some(0.4),
            None,
            Some(0.2),
            Some(0.3),
            None,
            None,
        ];
        metrics
            .iter()
            .enumerate()
            .map(|(i, &metric)| {
                let n = i as u64 + 1;
                let trial = if n <= 5 { 1 } else { 2 };
                let step = ((n - 1) % 5 + 1) * 100;
                cand(&n.to_string(), trial, step, n, metric)
            })
            .collect()
    }

    fn uuids(list: &[u64]) -> Vec<String> {
        list.iter().map(u64::to_string).collect()
    }

    #[test]
    fn design_example_table() {
        // (experiment best, trial best, trial latest, kept in seq order)
        let rows: &[(u64, u64, u64, &[u64])] = &[
            (0, 0, 0, &[]),
            (2, 0, 0, &[7, 8]),
            (5, 0, 0, &[3, 4, 5, 7, 8]),
            (6, 0, 0, &[3, 4, 5, 7, 8]),
            (100, 0, 0, &[3, 4, 5, 7, 8]),
            (0, 1, 0, &[5, 7]),
            (0, 3, 0, &[3, 4, 5, 7, 8]),
            (0, 4, 0, &[3, 4, 5, 7, 8]),
            (0, 100, 0, &[3, 4, 5, 7, 8]),
            (0, 0, 1, &[5, 10]),
            (0, 0, 3, &[3, 4, 5, 8, 9, 10]),
            (2, 1, 0, &[5, 7, 8]),
            (2, 0, 1, &[5, 7, 8, 10]),
            (0, 1, 1, &[5, 7, 10]),
            (2, 1, 1, &[5, 7, 8, 10]),
        ];
        let all = example();
        for &(e, t, l, kept) in rows {
            let selection = select(&all, &policy(e, t, l));
            let deleted: Vec<u64> = (1..=10).filter(|n| !kept.contains(n)).collect();
            assert_eq!(selection.keep, uuids(kept), "kept under ({e}, {t}, {l})");
            assert_eq!(
                selection.delete,
                uuids(&deleted),
                "deleted under ({e}, {t}, {l})"
            );
        }
    }

    #[test]
    fn larger_is_better_reverses_the_ranking() {
        let mut p = policy(2, 1, 0);
        p.smaller_is_better = false;
        let selection = select(&example(), &p);
        // Experiment best: 0.6 (3), 0.5 (4); trial best: 0.6 (3), 0.3 (8).
        assert_eq!(selection.keep, uuids(&[3, 4, 8]));
        assert_eq!(selection.delete, uuids(&[1, 2, 5, 6, 7, 9, 10]));
    }

    #[test]
    fn ties_go_to_the_earlier_checkpoint() {
        let all = vec![
            cand("c", 1, 300, 3, Some(0.5)),
            cand("a", 1, 100, 1, Some(0.5)),
            cand("b", 2, 200, 2, Some(0.5)),
        ];
        for smaller_is_better in [true, false] {
            let p = GcPolicy {
                smaller_is_better,
                ..policy(1, 0, 0)
            };
            assert_eq!(select(&all, &p).keep, ["a"]);
            let p = GcPolicy {
                smaller_is_better,
                ..policy(0, 1, 0)
            };
            assert_eq!(select(&all, &p).keep, ["a", "b"]);
        }
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let all = vec![
            cand("a", 1, 1, 1, Some(0.0)),
            cand("b", 1, 2, 2, Some(-0.0)),
        ];
        assert_eq!(select(&all, &policy(1, 0, 0)).keep, ["a"]);
    }

    #[test]
    fn nan_counts_as_no_metric() {
        let all = vec![
            cand("a", 1, 1, 1, Some(f64::NAN)),
            cand("b", 1, 2, 2, Some(9.0)),
            cand("c", 1, 3, 3, None),
        ];
        for smaller_is_better in [true, false] {
            let p = GcPolicy {
                smaller_is_better,
                ..policy(5, 5, 0)
            };
            let selection = select(&all, &p);
            assert_eq!(selection.keep, ["b"]);
            assert_eq!(selection.delete, ["a", "c"]);
        }
    }

    #[test]
    fn latest_ties_in_step_go_to_the_later_seq() {
        // A restart from step 100 writes another checkpoint at step 100 later on.
        let all = vec![
            cand("a", 1, 100, 1, None),
            cand("b", 1, 200, 2, None),
            cand("c", 1, 100, 3, None),
        ];
        assert_eq!(select(&all, &policy(0, 0, 1)).keep, ["b"]);
        assert_eq!(select(&all, &policy(0, 0, 2)).keep, ["b", "c"]);
    }

    #[test]
    fn a_trial_that_can_run_keeps_its_latest_checkpoint() {
        let mut all = example();
        for c in all.iter_mut().filter(|c| c.trial_id == 2) {
            c.trial_can_run = true;
        }
        let selection = select(&all, &policy(0, 0, 0));
        assert_eq!(selection.keep, ["10"]);
        assert_eq!(selection.delete, uuids(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
        // Added to what the policy keeps, not instead of it.
        assert_eq!(select(&all, &policy(0, 1, 0)).keep, uuids(&[5, 7, 10]));
        // The latest COMPLETED one: a checkpoint already being deleted is not protected.
        all[9].state = CheckpointState::Deleting;
        let selection = select(&all, &policy(0, 0, 0));
        assert_eq!(selection.keep, ["9"]);
        assert!(selection.delete.contains(&"10".to_owned()));
    }

    #[test]
    fn deleted_checkpoints_are_in_neither_list() {
        let mut all = example();
        all[6].state = CheckpointState::Deleted; // 7, the experiment's best
        all[4].state = CheckpointState::Deleted; // 5, trial 1's best and latest
        let selection = select(&all, &policy(1, 1, 1));
        assert_eq!(selection.keep, uuids(&[4, 8, 10]));
        assert_eq!(selection.delete, uuids(&[1, 2, 3, 6, 9]));
    }

    #[test]
    fn deleting_and_error_checkpoints_are_always_deleted() {
        let mut all = example();
        all[6].state = CheckpointState::Deleting; // 7, the experiment's best
        all[9].state = CheckpointState::Error; // 10, trial 2's latest
        all[9].trial_can_run = true;
        let selection = select(&all, &policy(100, 100, 100));
        assert_eq!(selection.keep, uuids(&[1, 2, 3, 4, 5, 6, 8, 9]));
        assert_eq!(selection.delete, uuids(&[7, 10]));
        let selection = select(&all, &policy(1, 0, 0));
        assert_eq!(selection.keep, ["8"]);
    }

    #[test]
    fn empty_input_selects_nothing() {
        assert_eq!(select(&[], &GcPolicy::default()), GcSelection::default());
    }

    #[test]
    fn states_round_trip_through_strings_and_serde() {
        for state in [
            CheckpointState::Completed,
            CheckpointState::Deleting,
            CheckpointState::Deleted,
            CheckpointState::Error,
        ] {
            assert_eq!(state.as_str().parse::<CheckpointState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(
                serde_json::from_str::<CheckpointState>(&json).unwrap(),
                state
            );
        }
        let err = "completed".parse::<CheckpointState>().unwrap_err();
        assert_eq!(err, ParseCheckpointStateError("completed".to_owned()));
    }

    #[test]
    fn policy_defaults_and_serde() {
        let p = GcPolicy::default();
        assert_eq!(
            p,
            GcPolicy {
                smaller_is_better: true,
                ..policy(0, 1, 1)
            }
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<GcPolicy>(&json).unwrap(), p);
    }

    // Properties over arbitrary snapshots.

    /// A straightforward restatement of the rules, with full sorts.
    fn reference(candidates: &[GcCandidate], p: &GcPolicy) -> BTreeSet<String> {
        let completed: Vec<&GcCandidate> = candidates
            .iter()
            .filter(|c| c.state == CheckpointState::Completed)
            .collect();
        let metric = |c: &GcCandidate| c.metric.filter(|m| !m.is_nan());
        let best = |list: &[&GcCandidate], k: u64| -> Vec<String> {
            let mut ranked: Vec<(f64, u64, &str)> = list
                .iter()
                .filter_map(|c| metric(c).map(|m| (m, c.seq, c.uuid.as_str())))
                .collect();
            ranked.sort_by(|a, b| {
                let m = a.0.partial_cmp(&b.0).unwrap();
                let m = if p.smaller_is_better { m } else { m.reverse() };
                m.then(a.1.cmp(&b.1)).then(a.2.cmp(b.2))
            });
            ranked
                .iter()
                .take(k as usize)
                .map(|r| r.2.to_owned())
                .collect()
        };
        let latest = |list: &[&GcCandidate], k: u64| -> Vec<String> {
            let mut ranked: Vec<(u64, u64, &str)> = list
                .iter()
                .map(|c| (c.step, c.seq, c.uuid.as_str()))
                .collect();
            ranked.sort();
            ranked
                .iter()
                .rev()
                .take(k as usize)
                .map(|r| r.2.to_owned())
                .collect()
        };
        let mut kept: BTreeSet<String> = best(&completed, p.save_experiment_best)
            .into_iter()
            .collect();
        let trials: BTreeSet<u64> = completed.iter().map(|c| c.trial_id).collect();
        for trial in trials {
            let of_trial: Vec<&GcCandidate> = completed
                .iter()
                .copied()
                .filter(|c| c.trial_id == trial)
                .collect();
            kept.extend(best(&of_trial, p.save_trial_best));
            kept.extend(latest(&of_trial, p.save_trial_latest));
            if of_trial.iter().any(|c| c.trial_can_run) {
                kept.extend(latest(&of_trial, 1));
            }
        }
        kept
    }

    fn arb_state() -> impl Strategy<Value = CheckpointState> {
        prop_oneof![
            6 => Just(CheckpointState::Completed),
            1 => Just(CheckpointState::Deleting),
            1 => Just(CheckpointState::Deleted),
            1 => Just(CheckpointState::Error),
        ]
    }

    fn arb_metric() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(f64::NAN)),
            1 => Just(Some(-0.0)),
            6 => (0u8..6).prop_map(|m| Some(f64::from(m) / 10.0)),
            1 => Just(Some(f64::INFINITY)),
        ]
    }

    /// Snapshots of up to 40 checkpoints in up to 4 trials; `seq` is the position (unique).
    fn arb_candidates() -> impl Strategy<Value = Vec<GcCandidate>> {
        (
            prop::collection::vec((0u64..4, 0u64..6, arb_metric(), arb_state()), 0..40),
            prop::collection::vec(any::<bool>(), 4),
        )
            .prop_map(|(rows, can_run)| {
                rows.into_iter()
                    .enumerate()
                    .map(|(i, (trial_id, step, metric, state))| GcCandidate {
                        uuid: format!("ckpt-{i:02}"),
                        trial_id,
                        step,
                        seq: i as u64,
                        metric,
                        state,
                        trial_can_run: can_run[trial_id as usize],
                    })
                    .collect()
            })
    }

    fn arb_policy() -> impl Strategy<Value = GcPolicy> {
        (0u64..6, 0u64..6, 0u64..6, any::<bool>()).prop_map(|(e, t, l, smaller_is_better)| {
            GcPolicy {
                save_experiment_best: e,
                save_trial_best: t,
                save_trial_latest: l,
                smaller_is_better,
            }
        })
    }

    fn kept_set(candidates: &[GcCandidate], p: &GcPolicy) -> BTreeSet<String> {
        select(candidates, p).keep.into_iter().collect()
    }

    fn without_can_run(candidates: &[GcCandidate]) -> Vec<GcCandidate> {
        candidates
            .iter()
            .cloned()
            .map(|c| GcCandidate {
                trial_can_run: false,
                ..c
            })
            .collect()
    }

    /// A deterministic shuffle (xorshift-driven Fisher-Yates).
    fn shuffled(candidates: &[GcCandidate], mut seed: u64) -> Vec<GcCandidate> {
        let mut out = candidates.to_vec();
        seed |= 1;
        for i in (1..out.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            out.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        out
    }

    proptest! {
        #[test]
        fn kept_is_the_union_of_the_three_parts(cands in arb_candidates(), p in arb_policy()) {
            let cands = without_can_run(&cands);
            let part = |e, t, l| GcPolicy {
                save_experiment_best: e,
                save_trial_best: t,
                save_trial_latest: l,
                smaller_is_better: p.smaller_is_better,
            };
            let mut union = kept_set(&cands, &part(p.save_experiment_best, 0, 0));
            union.extend(kept_set(&cands, &part(0, p.save_trial_best, 0)));
            union.extend(kept_set(&cands, &part(0, 0, p.save_trial_latest)));
            prop_assert_eq!(kept_set(&cands, &p), union);
        }

        #[test]
        fn more_to_save_never_keeps_less(
            cands in arb_candidates(),
            p in arb_policy(),
            which in 0usize..3,
            more in 1u64..4,
        ) {
            let mut bigger = p;
            match which {
                0 => bigger.save_experiment_best += more,
                1 => bigger.save_trial_best += more,
                _ => bigger.save_trial_latest += more,
            }
            let before = kept_set(&cands, &p);
            let after = kept_set(&cands, &bigger);
            prop_assert!(before.is_subset(&after), "{:?} not within {:?}", before, after);
        }

        #[test]
        fn only_completed_checkpoints_are_kept(cands in arb_candidates(), p in arb_policy()) {
            let completed: BTreeSet<String> = cands
                .iter()
                .filter(|c| c.state == CheckpointState::Completed)
                .map(|c| c.uuid.clone())
                .collect();
            prop_assert!(kept_set(&cands, &p).is_subset(&completed));
        }

        #[test]
        fn the_input_order_does_not_matter(
            cands in arb_candidates(),
            p in arb_policy(),
            seed in any::<u64>(),
        ) {
            let selection = select(&cands, &p);
            prop_assert_eq!(&select(&cands, &p), &selection);
            prop_assert_eq!(&select(&shuffled(&cands, seed), &p), &selection);
            let reversed: Vec<GcCandidate> = cands.iter().rev().cloned().collect();
            prop_assert_eq!(&select(&reversed, &p), &selection);
        }

        #[test]
        fn keep_and_delete_partition_the_live_checkpoints(
            cands in arb_candidates(),
            p in arb_policy(),
        ) {
            let selection = select(&cands, &p);
            let live: Vec<&GcCandidate> =
                cands.iter().filter(|c| c.state != CheckpointState::Deleted).collect();
            prop_assert_eq!(selection.keep.len() + selection.delete.len(), live.len());
            let mut all: BTreeSet<String> = selection.keep.iter().cloned().collect();
            all.extend(selection.delete.iter().cloned());
            let expected: BTreeSet<String> = live.iter().map(|c| c.uuid.clone()).collect();
            prop_assert_eq!(all, expected);
            // Both lists are in creation order.
            let seq_of = |u: &String| cands.iter().find(|c| &c.uuid == u).unwrap().seq;
            prop_assert!(selection.keep.windows(2).all(|w| seq_of(&w[0]) < seq_of(&w[1])));
            prop_assert!(selection.delete.windows(2).all(|w| seq_of(&w[0]) < seq_of(&w[1])));
        }

        #[test]
        fn selection_matches_the_reference(cands in arb_candidates(), p in arb_policy()) {
            prop_assert_eq!(kept_set(&cands, &p), reference(&cands, &p));
        }
    }
}
