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
//!   latest checkpoint of each trial that can still run, and every held checkpoint (pinned by an
//!   operator, or restored from by a running allocation), whatever the policy.
//! - A held checkpoint still takes its place in the rankings: holding one changes nothing else.
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
    /// Pinned, or restored from by a running allocation: kept whatever the policy.
    pub held: bool,
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
            CheckpointState::Completed if keep[idx] || c.held => kept.push((c.seq, idx)),
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

mod running;

pub use running::collectable_while_running;

#[cfg(test)]
mod tests;
