//! The `baton` binary against an in-process fake master: output shapes and exit statuses.

mod fake;

use fake::{baton, json_out, start, stderr, stdout};
use serde_json::json;
#[tokio::test(flavor = "multi_thread")]
async fn create_sends_config_and_context() {
    let (url, master) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "name: linreg\n").unwrap();
    let context = dir.path().join("ctx");
    std::fs::create_dir_all(context.join("__pycache__")).unwrap();
    std::fs::write(context.join("train.py"), "print('hi')").unwrap();
    std::fs::write(context.join("__pycache__/x.pyc"), "junk").unwrap();

    let out = baton(
        &url,
        &[
            "experiment",
            "create",
            config.to_str().unwrap(),
            context.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_eq!(json_out(&out), json!({"id": 42}));
    let request = master.created.lock().unwrap().clone().unwrap();
    assert_eq!(request.config_yaml, "name: linreg\n");
    let files: Vec<_> = request
        .context
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(files, ["train.py"]);

    let out = baton(
        &url,
        &[
            "experiment",
            "create",
            config.to_str().unwrap(),
            context.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(stdout(&out), "Created experiment 42\n");

    let missing = dir.path().join("missing.yaml");
    let out = baton(
        &url,
        &[
            "experiment",
            "create",
            missing.to_str().unwrap(),
            context.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.yaml"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_and_list_shapes() {
    let (url, _) = start().await;
    let value = json_out(&baton(&url, &["experiment", "describe", "1", "--json"]).await);
    assert_eq!(value["id"], 1);
    assert_eq!(value["state"], "ACTIVE");
    assert_eq!(value["trials"][0]["hparams"], json!({"lr": 0.1}));
    assert_eq!(value["trials"][0]["agent_id"], "a1");

    let out = baton(&url, &["experiment", "describe", "9"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: experiment 9 not found\n");

    let value = json_out(&baton(&url, &["experiment", "list", "--json"]).await);
    assert_eq!(value[0]["trial_count"], 1);
    assert_eq!(value[0]["trial_states"], json!({"RUNNING": 1}));
    let out = baton(&url, &["experiment", "list", "--state", "paused,completed"]).await;
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "only the header: {}",
        stdout(&out)
    );
    let out = baton(&url, &["experiment", "list", "--state", "Active", "--csv"]).await;
    assert!(
        stdout(&out).starts_with("id,name,state,trial_count,trials_completed,steps_completed,max_length,searcher,created\n1,linreg,ACTIVE,1,0,10,100,single,2023-11-14T22:13:20.000Z\n"),
        "{}",
        stdout(&out)
    );

    let value = json_out(&baton(&url, &["agent", "list", "--json"]).await);
    assert_eq!(value[0]["id"], "a1");
    assert_eq!(value[0]["slots"], 2);
    let out = baton(&url, &["agent", "disable", "a1", "--drain"]).await;
    assert_eq!(stdout(&out), "Agent a1 is draining\n");
    let out = baton(&url, &["experiment", "pause", "1"]).await;
    assert_eq!(stdout(&out), "Experiment 1 is PAUSED\n");
    let out = baton(&url, &["trial", "logs", "5"]).await;
    assert_eq!(stdout(&out), "epoch 1\nepoch 2\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_checkpoints_best_respects_direction() {
    let (url, _) = start().await;
    let value = json_out(
        &baton(
            &url,
            &[
                "experiment",
                "list-checkpoints",
                "1",
                "--best",
                "2",
                "--json",
            ],
        )
        .await,
    );
    let uuids: Vec<_> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids, ["c30", "c10"]);
    let out = baton(&url, &["experiment", "list-checkpoints", "1", "--csv"]).await;
    assert!(stdout(&out).starts_with(
        "uuid,trial_id,step,state,metric,size_bytes\nc10,5,10,COMPLETED,0.5,1048576\n"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_policy_previews_confirms_and_applies() {
    let (url, master) = start().await;
    let policy = [
        "experiment",
        "set",
        "gc-policy",
        "1",
        "--save-experiment-best",
        "1",
    ];
    let counts = ["--save-trial-best", "0", "--save-trial-latest", "1"];
    let args = |extra: &[&'static str]| [&policy[..], &counts[..], extra].concat();

    let value = json_out(&baton(&url, &args(&["--dry-run", "--json"])).await);
    assert_eq!(value, json!({"keep": ["c10"], "delete": ["c20", "c30"]}));

    let out = baton(&url, &args(&[])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refusing to delete without confirmation: pass --yes"));
    assert!(
        stdout(&out).contains("2 checkpoints to delete, 2.0 MiB in total"),
        "{}",
        stdout(&out)
    );

    let out = baton(&url, &args(&["--yes"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("Deleted 2 checkpoints\n"));

    let calls = master.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "gc 1 0 1 dry_run=true",
            "gc 1 0 1 dry_run=true",
            "gc 1 0 1 dry_run=true",
            "gc 1 0 1 dry_run=false"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_while_running_is_sent_only_when_given() {
    let (url, master) = start().await;
    let policy = [
        "experiment",
        "set",
        "gc-policy",
        "1",
        "--save-experiment-best",
        "0",
        "--save-trial-best",
        "1",
        "--save-trial-latest",
        "1",
        "--dry-run",
    ];
    for tail in [&[][..], &["--gc-while-running", "false"]] {
        let out = baton(&url, &[&policy[..], tail].concat()).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(
        *master.calls.lock().unwrap(),
        [
            "gc 0 1 1 dry_run=true",
            "gc 0 1 1 dry_run=true gc_while_running=false"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pins_show_in_lists_and_describe() {
    let (url, master) = start().await;
    let out = baton(&url, &["checkpoint", "pin", "c20", "--note", "ship it"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Checkpoint c20 (trial 5, step 20) is pinned: ship it\n"
    );
    let value = json_out(&baton(&url, &["checkpoint", "pin", "c10", "--json"]).await);
    assert_eq!(
        (value["pinned"].clone(), value["pin_note"].clone()),
        (json!(true), json!(null))
    );
    let out = baton(&url, &["checkpoint", "pin", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: checkpoint nope does not exist\n");
    let out = baton(&url, &["checkpoint", "unpin", "c20"]).await;
    assert!(
        stdout(&out).ends_with("does not keep it: it is DELETING\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        *master.calls.lock().unwrap(),
        [
            "pin c20 \"ship it\"",
            "pin c10 \"\"",
            "pin nope \"\"",
            "unpin c20"
        ]
    );

    let table = stdout(&baton(&url, &["experiment", "list-checkpoints", "1"]).await);
    assert!(
        table.starts_with("TRIAL  STEP  STATE      METRIC  SIZE     PINNED  UUID\n"),
        "{table}"
    );
    let value = json_out(&baton(&url, &["experiment", "list-checkpoints", "1", "--json"]).await);
    assert_eq!(value[0]["pinned"], false);
    let described = stdout(&baton(&url, &["checkpoint", "describe", "c10"]).await);
    assert!(described.contains("\nPinned:     no\n"), "{described}");

    let value = json_out(&baton(&url, &["experiment", "describe", "1", "--json"]).await);
    assert_eq!(value["storage_bytes"], 3 << 20);
    assert_eq!(value["storage_peak_bytes"], 5 << 20);
    let described = stdout(&baton(&url, &["experiment", "describe", "1"]).await);
    assert!(
        described.contains("\nStorage:  3.0 MiB held, 5.0 MiB at most\n"),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn experiment_delete_needs_yes_off_a_terminal() {
    let (url, master) = start().await;
    let out = baton(&url, &["experiment", "delete", "1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing to delete experiment 1 without confirmation: pass --yes"),
        "{}",
        stderr(&out)
    );
    assert!(
        master.calls.lock().unwrap().is_empty(),
        "nothing was deleted"
    );
    let out = baton(&url, &["experiment", "delete", "1", "--yes"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Deleting experiment 1: "),
        "{}",
        stdout(&out)
    );
    assert_eq!(*master.calls.lock().unwrap(), ["delete_experiment"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_come_before_contacting_the_master() {
    let unreachable = "http://127.0.0.1:1";
    let args = [
        "experiment",
        "set",
        "gc-policy",
        "1",
        "--save-experiment-best",
        "1",
        "--save-trial-best",
        "-1",
        "--save-trial-latest",
        "1",
    ];
    let out = baton(unreachable, &args).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: --save-trial-best: must be a non-negative integer (got -1)\n"
    );

    let out = baton(unreachable, &["experiment", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));

    let out = baton(unreachable, &["agent", "list"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the Baton master at http://127.0.0.1:1: "),
        "{err}"
    );
    assert!(err.contains("(set --master or BATON_MASTER)"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn download_fetches_from_storage() {
    use baton_common::storage::{CheckpointStore, CommitRequest};
    let (url, master) = start().await;
    let root = tempfile::tempdir().unwrap();
    let storage_json = json!({"type": "shared_fs", "host_path": root.path()}).to_string();
    *master.storage_json.lock().unwrap() = storage_json.clone();
    let uuid = uuid::Uuid::new_v4().to_string();
    let staging = tempfile::tempdir().unwrap();
    let written = staging.path().join(&uuid);
    std::fs::create_dir_all(written.join("sub")).unwrap();
    std::fs::write(written.join("model.bin"), [7u8; 100]).unwrap();
    std::fs::write(written.join("sub/opt.txt"), "adam").unwrap();
    let request = CommitRequest {
        uuid: uuid.clone(),
        experiment_id: 1,
        trial_id: 5,
        allocation_id: "a".into(),
        step: 10,
        hparams: json!({}),
        metadata: json!({}),
    };
    let store = CheckpointStore::from_storage_json(&storage_json).unwrap();
    let manifest = store.commit(&request, &written).await.unwrap();
    *master.metadata_json.lock().unwrap() = Some(serde_json::to_string(&manifest).unwrap());

    let target = staging.path().join("out");
    let out = baton(
        &url,
        &[
            "checkpoint",
            "download",
            &uuid,
            "-o",
            target.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = format!(
        "Downloaded checkpoint {uuid} (2 files, 104 bytes) to {}\n",
        target.display()
    );
    assert_eq!(stdout(&out), expected);
    assert_eq!(
        std::fs::read_to_string(target.join("sub/opt.txt")).unwrap(),
        "adam"
    );

    let out = baton(
        &url,
        &[
            "checkpoint",
            "download",
            &uuid,
            "-o",
            target.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already exists and is not empty"),
        "{}",
        stderr(&out)
    );

    let out = baton(
        &url,
        &[
            "checkpoint",
            "download",
            "--trial",
            "5",
            "--step",
            "7",
            "-o",
            "/nonexistent/x",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("checkpoint t5s7"), "{}", stderr(&out));
}
