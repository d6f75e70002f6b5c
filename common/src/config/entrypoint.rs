//! Checks that the scripts an entrypoint names are in the context directory.

use std::collections::BTreeSet;

use super::error::{ConfigError, non_empty};

/// Checks that every script the entrypoint names (`*.py`, `*.sh`, `./…`) is in the context files.
///
/// `context_files` holds `/`-separated paths relative to the context directory.
pub fn check_entrypoint(
    entrypoint: &str,
    context_files: &BTreeSet<String>,
) -> Result<(), ConfigError> {
    non_empty("entrypoint", entrypoint)?;
    for token in entrypoint.split_whitespace() {
        let looks_like_script =
            token.ends_with(".py") || token.ends_with(".sh") || token.starts_with("./");
        // Flags, absolute paths and `NAME=value` assignments do not name context files.
        if !looks_like_script
            || token.starts_with('-')
            || token.starts_with('/')
            || token.contains('=')
        {
            continue;
        }
        let mut relative = token;
        while let Some(rest) = relative.strip_prefix("./") {
            relative = rest;
        }
        if relative.is_empty() || context_files.contains(relative) {
            continue;
        }
        let listing = if context_files.is_empty() {
            "the context directory is empty".to_string()
        } else {
            let shown: Vec<&str> = context_files.iter().take(10).map(String::as_str).collect();
            let more = context_files.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!(" ... and {more} more")
            } else {
                String::new()
            };
            format!("files: {}{tail}", shown.join(", "))
        };
        return Err(ConfigError::invalid(
            "entrypoint",
            format!("{token:?} is not in the context directory ({listing})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn entrypoint_scripts_must_be_in_the_context() {
        let context = files(&["train.py", "scripts/run.sh", "data.txt"]);
        for ok in [
            "python3 train.py",
            "python3 ./train.py --lr 0.1",
            "bash scripts/run.sh",
            "./scripts/run.sh",
            "python3 -m mypackage.main",
            "env FOO=bar.py python3 train.py --config=conf.py",
            "/usr/bin/env python3 /opt/tools/other.py train.py",
        ] {
            check_entrypoint(ok, &context).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let err = check_entrypoint("python3 missing.py", &context).unwrap_err();
        assert_eq!(err.path(), "entrypoint");
        assert_eq!(
            err.to_string(),
            "entrypoint: \"missing.py\" is not in the context directory (files: data.txt, scripts/run.sh, train.py)"
        );
        assert!(check_entrypoint("./run.sh", &context).is_err());
        assert!(
            check_entrypoint("   ", &context)
                .unwrap_err()
                .to_string()
                .starts_with("entrypoint: ")
        );
        let empty = check_entrypoint("python3 train.py", &BTreeSet::new()).unwrap_err();
        assert!(
            empty.to_string().contains("the context directory is empty"),
            "{empty}"
        );
        let many: BTreeSet<String> = (0..15).map(|i| format!("f{i:02}.txt")).collect();
        let err = check_entrypoint("python3 train.py", &many)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f09.txt ... and 5 more") && !err.contains("f10.txt"),
            "{err}"
        );
    }
}
