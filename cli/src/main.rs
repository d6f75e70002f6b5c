//! `baton`: the admin command line of a Baton cluster.

mod agent;
mod allocations;
mod args;
mod checkpoint;
mod client;
mod completion;
mod context;
mod delete;
mod download;
mod experiment;
mod gc;
mod leader;
mod output;
mod pin;
mod search;
mod states;
mod times;
mod trial;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Noun};
use crate::client::Run;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let app = Run {
        masters: cli.master,
        json: cli.json,
        token: cli.token.or_else(client::token_from_config),
        tls: baton_common::tls::ClientTls {
            ca: cli.tls_ca,
            identity: None,
        },
    };
    let result = match cli.command {
        Noun::Experiment(cmd) => experiment::run(cmd, &app).await,
        Noun::Trial(cmd) => trial::run(cmd, &app).await,
        Noun::Checkpoint(cmd) => checkpoint::run(cmd, &app).await,
        Noun::Agent(cmd) => agent::run(cmd, &app).await,
        Noun::Completion { shell } => output::print(&completion::script(shell)).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if client::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let (message, status) = client::describe_failure(&err);
            let message = match app.masters.urls() {
                [url] => baton_common::tls::explain(url, &message),
                _ => message,
            };
            eprintln!("error: {message}");
            ExitCode::from(status)
        }
    }
}
