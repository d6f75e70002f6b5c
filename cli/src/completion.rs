//! `baton completion SHELL`: a completion script generated from the command definitions.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::Cli;

/// The completion script of `baton` for `shell`.
pub fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "baton", &mut out);
    String::from_utf8(out).expect("completion scripts are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_complete_nouns_verbs_and_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell);
            for word in [
                "experiment",
                "list-checkpoints",
                "gc-policy",
                "trial",
                "logs",
                "tail",
                "csv",
                "state",
                "agent",
                "completion",
            ] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
        assert!(script(Shell::Bash).contains("complete -F _baton"));
        assert!(script(Shell::Zsh).starts_with("#compdef baton"));
        assert!(script(Shell::Fish).contains("complete -c baton"));
    }

    #[test]
    fn state_values_are_completed() {
        let text = script(Shell::Fish);
        assert!(text.contains("SUSPENDING"), "trial states offered");
        assert!(text.contains("DELETING"), "experiment states offered");
    }
}
