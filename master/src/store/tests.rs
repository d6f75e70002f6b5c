//! Every store operation, run on both backends.

use baton_common::gc::CheckpointState;

use super::testing::on_both_backends;
use super::value::params;
use super::*;
use crate::states::{ExperimentState, TrialState};

fn allocation(id: &str, trial_id: u64, started_ms: i64, gang: &str, part: u32) -> AllocationRow {
    AllocationRow {
        id: id.into(),
        trial_id,
        agent_id: format!("agent-{part}"),
        slot_ids: vec!["cpu0".into(), "cpu1".into()],
        start_step: 10,
        end_step: 10,
        exit_reason: None,
        message: String::new(),
        started_ms,
        ended_ms: 0,
        desired: "run".into(),
        gang: gang.into(),
        part_index: part,
        part_count: if gang.is_empty() { 1 } else { 3 },
    }
}

fn checkpoint(uuid: &str, experiment_id: u64, trial_id: u64, step: u64) -> CheckpointRow {
    CheckpointRow {
        seq: 0,
        uuid: uuid.into(),
        experiment_id,
        trial_id,
        allocation_id: "a".into(),
        step,
        state: CheckpointState::Completed,
        size_bytes: 1000 + step,
        metadata_json: "{}".into(),
        error: String::new(),
        created_ms: 5,
        pinned: false,
        pin_note: String::new(),
    }
}

on_both_backends! {
    fn a_failed_transaction_inside_a_batch_undoes_only_itself(store, database) {
        store.begin_batch().unwrap();
        store.insert_experiment("kept", "yaml", b"", 0).unwrap();
        let failed: StoreResult<()> = store.transaction(|store| {
            store.insert_experiment("undone", "yaml", b"", 0)?;
            Err(StoreError::Usage("undo".into()))
        });
        assert!(failed.is_err());
        store.end_batch().unwrap();
        store
            .transaction(|store| store.insert_experiment("after", "yaml", b"", 0))
            .unwrap();
        let names: Vec<String> = store
            .list_experiments()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["kept", "after"]);
    }
}

on_both_backends! {
    fn a_failed_statement_inside_a_transaction_undoes_it_and_names_the_cause(store, database) {
        store.begin_batch().unwrap();
        store.insert_experiment("kept", "yaml", b"", 0).unwrap();
        let failed = store.transaction(|store| {
            store.insert_experiment("undone", "yaml", b"", 0)?;
            store.insert_trial(999, "{}", None)
        });
        let error = failed.unwrap_err().to_string();
        assert!(error.to_lowercase().contains("foreign key"), "{error}");
        store.end_batch().unwrap();
        let names: Vec<String> = store
            .list_experiments()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["kept"]);
    }
}

on_both_backends! {
    fn an_unknown_stored_state_is_an_error_that_names_it(store, database) {
        let experiment = store.insert_experiment("e", "yaml", b"", 0).unwrap();
        let trial = store.insert_trial(experiment, "{}", None).unwrap();
        assert_eq!(store.list_trials().unwrap()[0].state, TrialState::Queued);
        store
            .execute("UPDATE trials SET state = 'DONE' WHERE id = ?1", params![trial])
            .unwrap();
        let error = store.list_trials().unwrap_err().to_string();
        assert!(error.contains("unknown trial state \"DONE\""), "{error}");
    }
}

on_both_backends! {
    fn experiments_and_agents_round_trip(store, database) {
        let context = [0u8, 1, 2, 255];
        let first = store.insert_experiment("first", "name: first", &context, 17).unwrap();
        let second = store.insert_experiment("second", "name: second", b"", 18).unwrap();
        assert!(second > first);
        store.set_experiment_state(second, ExperimentState::Paused).unwrap();
        store.set_gc_policy(second, r#"{"save_experiment_best":1}"#).unwrap();
        store.raise_storage_peak(second, 500).unwrap();
        store.raise_storage_peak(second, 300).unwrap();
        assert_eq!(
            store.list_experiments().unwrap(),
            [
                ExperimentRow {
                    id: first,
                    name: "first".into(),
                    state: ExperimentState::Active,
                    config_yaml: "name: first".into(),
                    gc_policy_json: None,
                    created_ms: 17,
                    storage_peak_bytes: 0,
                },
                ExperimentRow {
                    id: second,
                    name: "second".into(),
                    state: ExperimentState::Paused,
                    config_yaml: "name: second".into(),
                    gc_policy_json: Some(r#"{"save_experiment_best":1}"#.into()),
                    created_ms: 18,
                    storage_peak_bytes: 500,
                },
            ]
        );
        assert_eq!(store.experiment_context(first).unwrap(), context);
        let missing = store.experiment_context(second + 100).unwrap_err().to_string();
        assert!(missing.contains(&format!("experiment {}", second + 100)), "{missing}");

        assert_eq!(store.agent_state("a1").unwrap(), None);
        store.set_agent_state("a2", "disabled").unwrap();
        store.set_agent_state("a1", "draining").unwrap();
        store.set_agent_state("a1", "enabled").unwrap();
        assert_eq!(store.agent_state("a1").unwrap().as_deref(), Some("enabled"));
        assert_eq!(
            store.agent_states().unwrap(),
            [("a1".into(), "enabled".into()), ("a2".into(), "disabled".into())]
        );
    }
}

on_both_backends! {
    fn trials_allocations_and_metrics_round_trip(store, database) {
        let experiment = store.insert_experiment("e", "yaml", b"", 0).unwrap();
        let trial = store.insert_trial(experiment, r#"{"lr":0.1}"#, None).unwrap();
        let other = store.insert_trial(experiment, "{}", None).unwrap();
        let mut row = store.list_trials().unwrap()[0].clone();
        row.state = TrialState::Running;
        row.steps_completed = 40;
        row.restarts = 2;
        row.latest_checkpoint_uuid = Some("ck".into());
        row.latest_checkpoint_step = 30;
        row.error = "was slow".into();
        store.update_trial(&row).unwrap();
        assert_eq!(store.list_trials().unwrap()[0], row);
        assert_eq!(store.list_trials().unwrap()[1].id, other);

        // A later allocation of the same millisecond, and a gang's parts in part order, keep
        // their insertion order whatever their ids.
        store.insert_allocation(&allocation("z-single", trial, 100, "", 0)).unwrap();
        for part in 0..3 {
            let id = if part == 0 { "m-gang".to_string() } else { format!("m-gang.{part}") };
            store.insert_allocation(&allocation(&id, trial, 200, "m-gang", part)).unwrap();
        }
        store.insert_allocation(&allocation("a-late", trial, 200, "", 0)).unwrap();
        store.insert_allocation(&allocation("b-early", trial, 50, "", 0)).unwrap();
        let ids: Vec<String> = store
            .allocations_of_trial(trial)
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["b-early", "z-single", "m-gang", "m-gang.1", "m-gang.2", "a-late"]);

        store.set_allocation_desired("m-gang.1", "suspend:preempted").unwrap();
        let mut ended = allocation("z-single", trial, 100, "", 0);
        ended.end_step = 25;
        ended.exit_reason = Some("completed".into());
        ended.message = "done".into();
        ended.ended_ms = 150;
        store.end_allocation(&ended).unwrap();
        assert_eq!(store.allocation_by_id("z-single").unwrap(), Some(ended));
        assert_eq!(store.allocation_by_id("nope").unwrap(), None);
        let part = store.allocation_by_id("m-gang.1").unwrap().unwrap();
        assert_eq!(part.desired, "suspend:preempted");
        assert_eq!(part.slot_ids, ["cpu0", "cpu1"]);
        assert_eq!((part.part_index, part.part_count), (1, 3));
        let mut open: Vec<String> =
            store.open_allocations().unwrap().into_iter().map(|a| a.id).collect();
        open.sort();
        assert_eq!(open, ["a-late", "b-early", "m-gang", "m-gang.1", "m-gang.2"]);

        store.upsert_validation(trial, 20, r#"{"loss":2}"#).unwrap();
        store.upsert_validation(trial, 10, r#"{"loss":3}"#).unwrap();
        store.upsert_validation(trial, 20, r#"{"loss":1}"#).unwrap();
        store.upsert_training_metrics(trial, 20, r#"{"loss":1.5}"#).unwrap();
        store.upsert_training_metrics(trial, 20, r#"{"loss":1.4}"#).unwrap();
        assert_eq!(
            store.validations_of_trial(trial).unwrap(),
            [
                ValidationRow { step: 10, metrics_json: r#"{"loss":3}"#.into() },
                ValidationRow { step: 20, metrics_json: r#"{"loss":1}"#.into() },
            ]
        );
        assert!(store.validations_of_trial(other).unwrap().is_empty());
    }
}

on_both_backends! {
    fn checkpoints_round_trip_and_their_kept_bytes_are_read_apart(store, database) {
        let experiment = store.insert_experiment("e", "yaml", b"", 0).unwrap();
        let trial = store.insert_trial(experiment, "{}", None).unwrap();
        assert!(store.insert_checkpoint(&checkpoint("c1", experiment, trial, 10)).unwrap());
        assert!(store.insert_checkpoint(&checkpoint("c2", experiment, trial, 20)).unwrap());
        assert!(!store.insert_checkpoint(&checkpoint("c1", experiment, trial, 99)).unwrap());
        store.set_checkpoint_state("c1", CheckpointState::Deleted, "").unwrap();
        assert!(store.insert_checkpoint(&checkpoint("c3", experiment, trial, 10)).unwrap());
        store.set_checkpoint_state("c2", CheckpointState::Error, "storage down").unwrap();

        let listed = store.checkpoints_of_experiment(experiment).unwrap();
        let uuids: Vec<&str> = listed.iter().map(|c| c.uuid.as_str()).collect();
        assert_eq!(uuids, ["c1", "c2", "c3"]);
        assert!(listed[0].seq < listed[1].seq && listed[1].seq < listed[2].seq);
        assert_eq!(listed[1].error, "storage down");
        let errored = store.checkpoints_in_state(CheckpointState::Error).unwrap();
        assert_eq!(errored, [listed[1].clone()]);
        assert_eq!(store.checkpoint_by_uuid("c3").unwrap(), Some(listed[2].clone()));
        assert_eq!(store.checkpoint_by_uuid("c9").unwrap(), None);
        let live = store.checkpoint_by_trial_step(trial, 10).unwrap().unwrap();
        assert_eq!(live.uuid, "c3", "a live checkpoint comes before a deleted one");

        assert_eq!(
            kept_bytes_by_experiment(database).unwrap(),
            [(experiment, 1020 + 1010)]
        );
        assert_eq!(store.checkpoint_totals().unwrap(), [(experiment, 1020 + 1010, 0)]);

        store.set_checkpoint_pin("c3", true, "the model we ship").unwrap();
        let pinned = store.checkpoint_by_uuid("c3").unwrap().unwrap();
        assert!(pinned.pinned);
        assert_eq!(pinned.pin_note, "the model we ship");
        store.set_checkpoint_pin("c2", true, "").unwrap();
        assert_eq!(store.checkpoint_totals().unwrap(), [(experiment, 1020 + 1010, 2)]);
        store.set_checkpoint_pin("c3", false, "").unwrap();
        let unpinned = store.checkpoint_by_uuid("c3").unwrap().unwrap();
        assert_eq!((unpinned.pinned, unpinned.pin_note.as_str()), (false, ""));
    }
}

on_both_backends! {
    fn logs_keep_their_order_and_an_experiment_is_deleted_with_every_record(store, database) {
        let gone = store.insert_experiment("gone", "yaml", b"", 0).unwrap();
        let kept = store.insert_experiment("kept", "yaml", b"", 0).unwrap();
        let trial = store.insert_trial(gone, "{}", None).unwrap();
        let other = store.insert_trial(kept, "{}", None).unwrap();
        let lines = [
            ("stdout".to_string(), "one".to_string(), 1),
            ("stderr".to_string(), "two".to_string(), 2),
        ];
        let inserted = store.insert_logs(trial, "a1", ("", 0), &lines).unwrap();
        assert!(inserted[0].id < inserted[1].id);
        store.insert_logs(other, "a2", ("s", 7), &lines[..1]).unwrap();
        assert_eq!(store.logs_of_trial(trial).unwrap(), inserted);
        assert_eq!(inserted[1].text, "two");
        store.insert_logs(other, "a2", ("s", 8), &lines).unwrap();
        store.insert_logs(other, "a2", ("t", 1), &lines[..1]).unwrap();
        let seqs = store.last_log_seqs("a2").unwrap();
        assert_eq!((seqs["s"], seqs["t"], seqs.len()), (9, 1, 2));
        assert!(store.last_log_seqs("a1").unwrap().is_empty());

        store.insert_allocation(&allocation("a1", trial, 1, "", 0)).unwrap();
        store.upsert_validation(trial, 1, "{}").unwrap();
        store.upsert_training_metrics(trial, 1, "{}").unwrap();
        store.insert_checkpoint(&checkpoint("c1", gone, trial, 1)).unwrap();
        let exited = crate::searcher::adaptive_asha::Event::TrialExited {
            trial: crate::searcher::adaptive_asha::RequestId(0),
        };
        store.insert_searcher_event(gone, 0, &exited).unwrap();
        store.insert_searcher_event(kept, 0, &exited).unwrap();
        store.delete_experiment_records(gone).unwrap();

        let experiments: Vec<u64> =
            store.list_experiments().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(experiments, [kept]);
        assert!(store.logs_of_trial(trial).unwrap().is_empty());
        assert!(store.allocations_of_trial(trial).unwrap().is_empty());
        assert!(store.checkpoints_of_experiment(gone).unwrap().is_empty());
        assert!(store.searcher_events(gone).unwrap().is_empty());
        assert_eq!(store.logs_of_trial(other).unwrap().len(), 4);
        assert_eq!(store.searcher_events(kept).unwrap(), [exited]);
    }
}

#[test]
fn postgres_needs_an_epoch_and_never_shows_its_password() {
    let database = Database::Postgres("postgres://baton:hunter2@127.0.0.1:1/baton".into());
    let error = Store::open(&database, None).err().unwrap().to_string();
    assert!(
        error.contains("postgres://baton:***@127.0.0.1:1/baton"),
        "{error}"
    );
    assert!(error.contains("lease"), "{error}");
    let error = Store::open(&database, Some(1)).err().unwrap().to_string();
    assert!(
        error.starts_with("cannot connect to postgres://baton:***@127.0.0.1:1/baton: "),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

on_both_backends! {
    fn pages_of_logs_and_an_experiments_metrics_read_back(store, database) {
        let experiment = store.insert_experiment("e", "yaml", b"", 0).unwrap();
        let other_experiment = store.insert_experiment("o", "yaml", b"", 0).unwrap();
        let first = store.insert_trial(experiment, "{}", None).unwrap();
        let second = store.insert_trial(experiment, "{}", None).unwrap();
        let elsewhere = store.insert_trial(other_experiment, "{}", None).unwrap();
        let lines: Vec<(String, String, i64)> = (0..5)
            .map(|i| ("stdout".to_string(), format!("line {i}"), i))
            .collect();
        let inserted = store.insert_logs(first, "a1", ("", 0), &lines).unwrap();
        store.insert_logs(elsewhere, "a2", ("", 0), &lines).unwrap();
        assert_eq!(store.logs_after(first, 0, 2).unwrap(), inserted[..2]);
        assert_eq!(store.logs_after(first, inserted[1].id, 10).unwrap(), inserted[2..]);
        assert!(store.logs_after(first, inserted[4].id, 10).unwrap().is_empty());
        assert_eq!(store.logs_tail(first, 2).unwrap(), inserted[3..]);
        assert_eq!(store.logs_tail(first, 9).unwrap(), inserted);

        for (trial, step) in [(second, 2), (first, 2), (first, 1), (elsewhere, 1)] {
            let metrics = format!("{{\"loss\": {trial}.{step}}}");
            store.upsert_training_metrics(trial, step, &metrics).unwrap();
            store.upsert_validation(trial, step, &metrics).unwrap();
        }
        let keys = |rows: Vec<(u64, crate::store::ValidationRow)>| -> Vec<(u64, u64)> {
            rows.into_iter().map(|(trial, row)| (trial, row.step)).collect()
        };
        let expected = vec![(first, 1), (first, 2), (second, 2)];
        assert_eq!(keys(store.metrics_of_experiment(experiment, true).unwrap()), expected);
        assert_eq!(keys(store.metrics_of_experiment(experiment, false).unwrap()), expected);
        let all = store.all_validations().unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].1.metrics_json, format!("{{\"loss\": {first}.1}}"));
    }
}
