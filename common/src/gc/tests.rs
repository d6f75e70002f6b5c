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
        held: false,
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
    kept.extend(completed.iter().filter(|c| c.held).map(|c| c.uuid.clone()));
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
        prop::collection::vec(
            (
                0u64..4,
                0u64..6,
                arb_metric(),
                arb_state(),
                prop::bool::weighted(0.1),
            ),
            0..40,
        ),
        prop::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(rows, can_run)| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (trial_id, step, metric, state, held))| GcCandidate {
                    uuid: format!("ckpt-{i:02}"),
                    trial_id,
                    step,
                    seq: i as u64,
                    metric,
                    state,
                    trial_can_run: can_run[trial_id as usize],
                    held: held && state == CheckpointState::Completed,
                })
                .collect()
        })
}

fn arb_policy() -> impl Strategy<Value = GcPolicy> {
    (0u64..6, 0u64..6, 0u64..6, any::<bool>()).prop_map(|(e, t, l, smaller_is_better)| GcPolicy {
        save_experiment_best: e,
        save_trial_best: t,
        save_trial_latest: l,
        smaller_is_better,
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
    fn holding_keeps_the_held_and_changes_nothing_else(
        cands in arb_candidates(),
        p in arb_policy(),
    ) {
        let unheld: Vec<GcCandidate> = cands
            .iter()
            .cloned()
            .map(|c| GcCandidate { held: false, ..c })
            .collect();
        let mut expected = kept_set(&unheld, &p);
        expected.extend(cands.iter().filter(|c| c.held).map(|c| c.uuid.clone()));
        prop_assert_eq!(kept_set(&cands, &p), expected);
    }

    #[test]
    fn selection_matches_the_reference(cands in arb_candidates(), p in arb_policy()) {
        prop_assert_eq!(kept_set(&cands, &p), reference(&cands, &p));
    }
}
