use baton_common::proto::StepPolicy;

use super::*;

/// A harness with `role`, its storage and allocation directories, and what it sends.
struct Fixture {
    harness: Harness,
    outbox: mpsc::UnboundedReceiver<AgentMessage>,
    uploads: mpsc::UnboundedReceiver<UploadJob>,
    _work: tempfile::TempDir,
}

impl Fixture {
    fn new(role: RankRole) -> Self {
        let work = tempfile::tempdir().unwrap();
        let storage = json!({"type": "shared_fs", "host_path": work.path().join("storage")});
        let store = CheckpointStore::from_storage_json(&storage.to_string())
            .unwrap()
            .always_staged();
        let policy = StepPolicy {
            max_length: 100,
            min_validation_period: 1,
            min_checkpoint_period: 1,
            preemption_timeout_ms: 1000,
        };
        let tracker = Arc::new(Mutex::new(StepTracker::new(policy, 0, None)));
        let (outbox_tx, outbox) = mpsc::unbounded_channel();
        let (uploads_tx, uploads) = mpsc::unbounded_channel();
        let harness = Harness::new(
            json!({}),
            tracker,
            store,
            AllocationDir::new(work.path(), "a1"),
            "a1".into(),
            outbox_tx,
            uploads_tx,
        )
        .with_role(role);
        Self {
            harness,
            outbox,
            uploads,
            _work: work,
        }
    }

    /// The harness's answer to one request line, after `init`.
    async fn call(&self, line: &str) -> Result<Value, String> {
        self.harness.handle(request::decode(line)?, &mut true).await
    }

    /// Opens a checkpoint; its uuid and directory.
    async fn start(&self, line: &str) -> (String, PathBuf) {
        let reply = self.call(line).await.unwrap();
        let uuid = reply["uuid"].as_str().unwrap().to_string();
        (uuid, PathBuf::from(reply["path"].as_str().unwrap()))
    }
}

fn role(rank_offset: u32, world_size: u32, local_world_size: u32) -> RankRole {
    RankRole {
        rank_offset,
        world_size,
        local_world_size,
    }
}

const UUID: &str = "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11";

#[tokio::test]
async fn a_worker_allocation_refuses_reports_and_writes_under_rank_0s_uuid() {
    let mut fixture = Fixture::new(role(2, 4, 2));
    for line in [
        r#"{"op":"report_training","step":1,"metrics":{"loss":1}}"#,
        r#"{"op":"report_validation","step":1,"metrics":{"loss":1}}"#,
    ] {
        let error = fixture.call(line).await.unwrap_err();
        assert!(
            error.contains(
                "refused: this allocation runs ranks 2 to 3 of 4 and only rank 0 reports"
            ),
            "{error}"
        );
    }
    assert_eq!(fixture.harness.tracker.lock().unwrap().last_step, 0);
    assert!(fixture.outbox.try_recv().is_err(), "nothing reported");
    let error = fixture
        .call(r#"{"op":"checkpoint_start","step":5}"#)
        .await
        .unwrap_err();
    assert!(error.contains("checkpoint_start needs \"uuid\""), "{error}");

    let start = format!(r#"{{"op":"checkpoint_start","step":5,"uuid":"{UUID}"}}"#);
    let (uuid, dir) = fixture.start(&start).await;
    assert_eq!(uuid, UUID);
    assert!(dir.ends_with(UUID) && dir.is_dir());
    assert_eq!(fixture.start(&start).await, (uuid.clone(), dir.clone()));
    let error = fixture
        .call(&format!(
            r#"{{"op":"checkpoint_start","step":6,"uuid":"{UUID}"}}"#
        ))
        .await
        .unwrap_err();
    assert!(error.contains("is open for step 5, not 6"), "{error}");

    let end = |rank: &str| format!(r#"{{"op":"checkpoint_end","uuid":"{UUID}","step":5{rank}}}"#);
    let error = fixture.call(&end("")).await.unwrap_err();
    assert!(error.contains("needs \"rank\""), "{error}");
    let error = fixture.call(&end(r#","rank":1"#)).await.unwrap_err();
    assert!(
        error.contains("rank 1 does not run in this allocation"),
        "{error}"
    );
    std::fs::write(dir.join("rank-3.bin"), b"3").unwrap();
    fixture.call(&end(r#","rank":3"#)).await.unwrap();
    fixture.call(&end(r#","rank":3"#)).await.unwrap();
    assert!(
        fixture.start(&start).await.1 == dir,
        "open until rank 2 ends it too"
    );
    std::fs::write(dir.join("rank-2.bin"), b"2").unwrap();
    fixture.call(&end(r#","rank":2"#)).await.unwrap();
    let jobs: Vec<(u32, u32)> = std::iter::from_fn(|| fixture.uploads.try_recv().ok())
        .map(|job| (job.local_rank, job.part_ranks))
        .collect();
    assert_eq!(jobs, [(1, 2), (0, 2)], "one job per rank, a repeat is none");
    assert!(fixture.harness.open_checkpoints.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_chiefs_allocation_chooses_uuids_and_shares_them_with_its_ranks() {
    let mut fixture = Fixture::new(role(0, 4, 2));
    let reply = fixture
        .call(r#"{"op":"report_training","step":1,"metrics":{"loss":1}}"#)
        .await
        .unwrap();
    assert_eq!(reply["checkpoint"], true);
    assert!(matches!(
        fixture.outbox.try_recv().unwrap().body,
        Some(Body::Training(_))
    ));
    let error = fixture
        .call(&format!(
            r#"{{"op":"checkpoint_start","step":1,"uuid":"{UUID}"}}"#
        ))
        .await
        .unwrap_err();
    assert!(
        error.contains(
            "is not open in this allocation: rank 0's checkpoint_start takes no \"uuid\""
        ),
        "{error}"
    );
    let (uuid, dir) = fixture.start(r#"{"op":"checkpoint_start","step":1}"#).await;
    let named = format!(r#"{{"op":"checkpoint_start","step":1,"uuid":"{uuid}"}}"#);
    assert_eq!(fixture.start(&named).await.1, dir);
    for rank in [0, 1] {
        let end = json!({"op": "checkpoint_end", "uuid": uuid, "step": 1, "rank": rank, "metadata": {"rank": rank}});
        fixture.call(&end.to_string()).await.unwrap();
    }
    let first = fixture.uploads.try_recv().unwrap();
    assert_eq!((first.local_rank, first.part_ranks), (0, 2));
    assert_eq!(first.metadata, json!({"rank": 0}));
    assert_eq!(fixture.uploads.try_recv().unwrap().local_rank, 1);
}

#[tokio::test]
async fn a_one_rank_trial_is_refused_a_uuid_and_ends_without_a_rank() {
    let mut fixture = Fixture::new(RankRole::default());
    let error = fixture
        .call(&format!(
            r#"{{"op":"checkpoint_start","step":1,"uuid":"{UUID}"}}"#
        ))
        .await
        .unwrap_err();
    assert!(
        error.contains("takes no \"uuid\" in a one-rank trial"),
        "{error}"
    );
    let (uuid, _) = fixture.start(r#"{"op":"checkpoint_start","step":1}"#).await;
    let end = format!(r#"{{"op":"checkpoint_end","uuid":"{uuid}","step":1}}"#);
    fixture.call(&end).await.unwrap();
    let job = fixture.uploads.try_recv().unwrap();
    assert_eq!((job.uuid, job.local_rank, job.part_ranks), (uuid, 0, 1));
}

#[tokio::test]
async fn init_is_answered_once_the_checkpoint_is_restored_and_refused_when_the_restore_fails() {
    let (state, watch) = watch::channel(RestoreState::Pending);
    let fixture = Fixture::new(RankRole::default());
    let harness = Arc::new(fixture.harness.with_restore(watch));
    let waiting = {
        let harness = harness.clone();
        tokio::spawn(async move { harness.handle(Request::Init, &mut false).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "init waits while the restore runs");
    state.send(RestoreState::Done).unwrap();
    assert!(waiting.await.unwrap().is_ok());

    let (state, watch) = watch::channel(RestoreState::Pending);
    let fixture = Fixture::new(RankRole::default());
    let harness = fixture.harness.with_restore(watch);
    state
        .send(RestoreState::Failed(
            "cannot restore checkpoint c1: file x changed".into(),
        ))
        .unwrap();
    let mut initialized = false;
    let refused = harness.handle(Request::Init, &mut initialized).await;
    assert_eq!(
        refused.unwrap_err(),
        "cannot restore checkpoint c1: file x changed"
    );
    assert!(
        !initialized,
        "nothing else is answered after a failed restore"
    );
}

#[tokio::test]
async fn a_validation_is_reported_and_recorded_for_a_restarted_daemon() {
    let mut fixture = Fixture::new(RankRole::default());
    std::fs::create_dir_all(&fixture.harness.dir.root).unwrap();
    fixture
        .call(r#"{"op":"report_validation","step":3,"metrics":{"loss":0.5}}"#)
        .await
        .unwrap();
    let Some(Body::Validation(sent)) = fixture.outbox.try_recv().unwrap().body else {
        panic!("a validation report is sent");
    };
    assert_eq!(sent.step, 3);
    assert_eq!(fixture.harness.dir.validation(), Some(sent));
}
