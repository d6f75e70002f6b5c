//! Command-line arguments: `baton <noun> <verb>`.

use std::path::PathBuf;

use baton_common::master_list::MasterList;
use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

use crate::states;

/// Address of the master when neither `--master` nor `BATON_MASTER` is given.
pub const DEFAULT_MASTER: &str = "http://127.0.0.1:8090";

/// The Baton admin command line.
#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Run and inspect training on a Baton cluster"
)]
pub struct Cli {
    /// Address of the Baton master; several, separated by commas, for a leader and its standbys
    /// (the first that leads is used).
    #[arg(
        long,
        global = true,
        env = "BATON_MASTER",
        default_value = DEFAULT_MASTER,
        value_name = "URL",
        value_parser = MasterList::parse
    )]
    pub master: MasterList,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// CA certificate (PEM) to verify an https:// master with, instead of the system roots.
    #[arg(long, global = true, env = "BATON_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// Admin API token (else BATON_TOKEN, else the file ~/.config/baton/token).
    #[arg(
        long,
        global = true,
        env = "BATON_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// What to act on.
    #[command(subcommand)]
    pub command: Noun,
}

/// The nouns of the command line.
#[derive(Debug, Subcommand)]
pub enum Noun {
    /// Create, inspect and control experiments.
    #[command(subcommand)]
    Experiment(ExperimentCmd),
    /// Inspect trials, read their logs, move them between agents.
    #[command(subcommand)]
    Trial(TrialCmd),
    /// Inspect and download checkpoints.
    #[command(subcommand)]
    Checkpoint(CheckpointCmd),
    /// Inspect agents and take them in or out of scheduling.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Print a shell completion script (e.g. `source <(baton completion bash)`).
    Completion {
        /// The shell to complete in.
        shell: Shell,
    },
}

/// `baton experiment ...`
#[derive(Debug, Subcommand)]
pub enum ExperimentCmd {
    /// Create an experiment from its YAML config and a context directory of code.
    Create {
        /// The experiment config (YAML).
        config: PathBuf,
        /// Directory sent to the agents as the trial's working directory (32 MiB at most).
        context_dir: PathBuf,
    },
    /// List all experiments with their trial counts and progress.
    List {
        /// Only experiments in these states (any case; repeat it or separate with commas).
        #[arg(
            long,
            value_name = "STATE",
            value_delimiter = ',',
            ignore_case = true,
            value_parser = states::parser(states::EXPERIMENT)
        )]
        state: Vec<String>,
        /// Print CSV with raw values (times in RFC 3339).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Show an experiment and its trials.
    Describe {
        /// Experiment id.
        id: u64,
        /// Print the trials as CSV.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Cancel an experiment and kill its trials.
    Kill {
        /// Experiment id.
        id: u64,
    },
    /// Delete a COMPLETED, CANCELED or ERRORED experiment: its checkpoints from storage, then
    /// its trials, logs and metrics. Asks first on a terminal; elsewhere needs --yes.
    Delete {
        /// Experiment id.
        id: u64,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Suspend every trial of an experiment with a checkpoint.
    Pause {
        /// Experiment id.
        id: u64,
    },
    /// Resume a paused experiment.
    Activate {
        /// Experiment id.
        id: u64,
    },
    /// List the checkpoints of an experiment.
    ListCheckpoints(ListCheckpointsArgs),
    /// Change a setting of an experiment.
    #[command(subcommand)]
    Set(SetCmd),
}

/// Arguments of `baton experiment list-checkpoints`.
#[derive(Debug, Args)]
pub struct ListCheckpointsArgs {
    /// Experiment id.
    pub id: u64,
    /// Keep only the N best checkpoints by the searcher metric.
    #[arg(long, value_name = "N")]
    pub best: Option<usize>,
    /// Print CSV (uuid,trial_id,step,state,metric,size_bytes).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Include deleted checkpoints.
    #[arg(long)]
    pub all: bool,
}

/// `baton experiment set ...`
#[derive(Debug, Subcommand)]
pub enum SetCmd {
    /// Preview or apply a new checkpoint GC policy; deletes checkpoints it no longer keeps.
    ///
    /// A negative or non-integer count is a usage error (exit status 2). Without --yes the
    /// deletion is confirmed interactively, and refused when standard input is not a terminal.
    GcPolicy(GcPolicyArgs),
}

/// Arguments of `baton experiment set gc-policy`.
#[derive(Debug, Args)]
pub struct GcPolicyArgs {
    /// Experiment id.
    pub id: u64,
    /// Number of the experiment's best checkpoints to keep.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub save_experiment_best: String,
    /// Number of each trial's best checkpoints to keep.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub save_trial_best: String,
    /// Number of each trial's latest checkpoints to keep.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub save_trial_latest: String,
    /// Only show what would be kept and deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the checkpoints to delete as CSV (uuid,trial_id,step,state,metric,size_bytes).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Delete without asking for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `baton trial ...`
#[derive(Debug, Subcommand)]
pub enum TrialCmd {
    /// List the trials of an experiment.
    List {
        /// Experiment id.
        experiment_id: u64,
        /// Only trials in these states (any case; repeat it or separate with commas).
        #[arg(
            long,
            value_name = "STATE",
            value_delimiter = ',',
            ignore_case = true,
            value_parser = states::parser(states::TRIAL)
        )]
        state: Vec<String>,
        /// Print CSV with raw values.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Show a trial with its allocations and latest validation.
    Describe {
        /// Trial id.
        id: u64,
        /// Print the allocations as CSV (times in RFC 3339).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Print a trial's log lines.
    Logs {
        /// Trial id.
        id: u64,
        /// Keep printing new lines as they arrive.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only the last N lines (with -f: the last N, then new ones).
        #[arg(long, short = 'n', value_name = "N")]
        tail: Option<u64>,
    },
    /// Suspend a trial with a checkpoint and resume it on another agent.
    Move {
        /// Trial id.
        id: u64,
        /// Target agent (the scheduler chooses when omitted).
        #[arg(long, value_name = "AGENT")]
        to: Option<String>,
    },
}

/// `baton checkpoint ...`
#[derive(Debug, Subcommand)]
pub enum CheckpointCmd {
    /// Show a checkpoint and its metadata.
    Describe {
        /// Checkpoint uuid.
        uuid: String,
    },
    /// Download a checkpoint straight from checkpoint storage.
    ///
    /// The master hides storage secrets, so credentials come from your own environment
    /// (for S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, ...).
    Download(DownloadArgs),
}

/// Arguments of `baton checkpoint download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Checkpoint uuid (or give --trial and --step).
    #[arg(required_unless_present = "trial", conflicts_with_all = ["trial", "step"])]
    pub uuid: Option<String>,
    /// Trial whose checkpoint to download.
    #[arg(long, value_name = "ID", requires = "step")]
    pub trial: Option<u64>,
    /// Step of the trial's checkpoint.
    #[arg(long, value_name = "N", requires = "trial")]
    pub step: Option<u64>,
    /// Target directory (default ./checkpoint-<uuid>); must be absent or empty.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Stream the files through the master instead of reading storage directly
    /// (for users without storage credentials).
    #[arg(long)]
    pub via_master: bool,
}

/// `baton agent ...`
#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// List the agents known to the master.
    List {
        /// Print CSV with raw values (times in RFC 3339).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Stop scheduling on an agent, suspending its trials (or letting them finish with --drain).
    Disable {
        /// Agent id.
        id: String,
        /// Let running trials finish instead of suspending them.
        #[arg(long)]
        drain: bool,
    },
    /// Allow scheduling on an agent again.
    Enable {
        /// Agent id.
        id: String,
    },
}

#[cfg(test)]
mod tests {
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
}
