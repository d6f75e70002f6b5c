use super::*;
use clap::CommandFactory;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("baton").chain(args.iter().copied()))
}

#[test]
fn definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn negative_gc_counts_reach_validation() {
    let cli = parse(&[
        "experiment",
        "set",
        "gc-policy",
        "3",
        "--save-experiment-best",
        "-1",
        "--save-trial-best",
        "1.5",
        "--save-trial-latest",
        "2",
    ])
    .unwrap();
    let Noun::Experiment(ExperimentCmd::Set(SetCmd::GcPolicy(args))) = cli.command else {
        panic!("wrong command");
    };
    assert_eq!(args.save_experiment_best, "-1");
    assert_eq!(args.save_trial_best, "1.5");
}

#[test]
fn json_is_global_and_conflicts_with_csv() {
    assert!(parse(&["experiment", "list", "--json"]).unwrap().json);
    assert!(parse(&["--json", "agent", "list"]).unwrap().json);
    let err = parse(&["experiment", "list-checkpoints", "1", "--csv", "--json"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn state_filters_take_any_case_repeated_or_comma_separated() {
    let cli = parse(&[
        "trial",
        "list",
        "1",
        "--state",
        "running,Paused",
        "--state",
        "queued",
    ])
    .unwrap();
    let Noun::Trial(TrialCmd::List { state, .. }) = cli.command else {
        panic!("wrong command");
    };
    assert_eq!(state, ["RUNNING", "PAUSED", "QUEUED"]);
    let cli = parse(&["experiment", "list", "--state", "active"]).unwrap();
    let Noun::Experiment(ExperimentCmd::List { state, .. }) = cli.command else {
        panic!("wrong command");
    };
    assert_eq!(state, ["ACTIVE"]);
}

#[test]
fn a_bad_state_names_the_value_and_the_states() {
    let err = parse(&["experiment", "list", "--state", "runing"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(
        text.contains("invalid value 'runing' for '--state <STATE>'"),
        "{text}"
    );
    assert!(
        text.contains("ACTIVE, PAUSED, COMPLETED, CANCELED, ERRORED, DELETING"),
        "{text}"
    );
    let text = parse(&["trial", "list", "1", "--state", "ACTIVE"])
        .unwrap_err()
        .to_string();
    assert!(text.contains("QUEUED, PAUSED, STARTING, RUNNING"), "{text}");
}

#[test]
fn csv_is_offered_on_every_table_and_conflicts_with_json() {
    for args in [
        &["experiment", "list", "--csv"][..],
        &["experiment", "describe", "1", "--csv"],
        &["trial", "list", "1", "--csv"],
        &["trial", "describe", "1", "--csv"],
        &["agent", "list", "--csv"],
        &["experiment", "list-checkpoints", "1", "--csv"],
    ] {
        assert!(parse(args).is_ok(), "{args:?}");
        let with_json = [args, &["--json"]].concat();
        assert_eq!(parse(&with_json).unwrap_err().exit_code(), 2, "{args:?}");
    }
}

#[test]
fn logs_tail_and_completion_shells() {
    let cli = parse(&["trial", "logs", "3", "--tail", "5", "-f"]).unwrap();
    let Noun::Trial(TrialCmd::Logs { tail, follow, .. }) = cli.command else {
        panic!("wrong command");
    };
    assert_eq!((tail, follow), (Some(5), true));
    assert!(parse(&["trial", "logs", "3", "--tail", "-1"]).is_err());
    for shell in ["bash", "zsh", "fish"] {
        assert!(parse(&["completion", shell]).is_ok(), "{shell}");
    }
    assert_eq!(parse(&["completion", "tcsh"]).unwrap_err().exit_code(), 2);
}

#[test]
fn download_needs_uuid_or_trial_and_step() {
    assert!(parse(&["checkpoint", "download", "abc"]).is_ok());
    assert!(parse(&["checkpoint", "download", "--trial", "1", "--step", "5"]).is_ok());
    assert!(parse(&["checkpoint", "download"]).is_err());
    assert!(parse(&["checkpoint", "download", "--trial", "1"]).is_err());
    assert!(
        parse(&[
            "checkpoint",
            "download",
            "abc",
            "--trial",
            "1",
            "--step",
            "2"
        ])
        .is_err()
    );
}

#[test]
fn pins_take_a_note_and_gc_while_running_takes_a_boolean() {
    let cli = parse(&["checkpoint", "pin", "u1", "--note", "ship it"]).unwrap();
    let Noun::Checkpoint(CheckpointCmd::Pin { uuid, note }) = cli.command else {
        panic!("wrong command");
    };
    assert_eq!((uuid.as_str(), note.as_str()), ("u1", "ship it"));
    assert_eq!(parse(&["checkpoint", "unpin"]).unwrap_err().exit_code(), 2);
    let gc = |tail: &[&str]| {
        let head = [
            "experiment",
            "set",
            "gc-policy",
            "3",
            "--save-experiment-best",
            "0",
            "--save-trial-best",
            "0",
            "--save-trial-latest",
            "1",
        ];
        parse(&[&head[..], tail].concat())
    };
    let while_running = |cli: Cli| match cli.command {
        Noun::Experiment(ExperimentCmd::Set(SetCmd::GcPolicy(args))) => args.gc_while_running,
        _ => panic!("wrong command"),
    };
    assert_eq!(while_running(gc(&[]).unwrap()), None);
    assert_eq!(
        while_running(gc(&["--gc-while-running", "true"]).unwrap()),
        Some(true)
    );
    let err = gc(&["--gc-while-running", "yes"]).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
}
